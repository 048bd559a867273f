/* The text-column coding of kscc_traffic/classify.py (_str_codes: what classify._factorize and
 * report._json_factorize do for a column of str), compiled.
 *
 *   codes(values, out) -> list of str, or None
 *       values: a list; out: a writable C-contiguous buffer of native int64 of the same length
 *       (else ValueError, out unchanged).  When every item of values is a str (exactly: no
 *       subclass), out[i] is the number of values[i] among the distinct texts in order of first
 *       appearance (equal texts, whatever their objects, one number), and the list of those
 *       texts is returned: pandas.factorize's codes and uniques for such a column.  None when an
 *       item is anything else (out partly written then: the caller falls back on pandas).
 *
 * One pass: an item that is the same object as the item before it takes its number without a
 * lookup (a column made of few texts repeats the same objects), else a dict of the texts seen
 * (str hashes are cached by the str itself) gives it.  The numpy/pandas version
 * (classify._str_codes_py) is the fallback when this module is not built;
 * tests/test_textcodes.py checks that both give the same codes and texts.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "_buffers.h"
#include <stdint.h>

static PyObject *
codes(PyObject *self, PyObject *args)
{
    PyObject *values, *out_o;
    Py_buffer out;
    PyObject *result = NULL, *seen = NULL, *distinct = NULL;

    if (!PyArg_ParseTuple(args, "O!O:codes", &PyList_Type, &values, &out_o))
        return NULL;
    if (get_8byte_ints(out_o, &out, "out", 1, 0) < 0)
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(values);
    if (out.len / 8 != n) {
        PyErr_SetString(PyExc_ValueError, "codes: values and out of different lengths");
        goto release;
    }
    seen = PyDict_New();
    distinct = PyList_New(0);
    if (seen == NULL || distinct == NULL)
        goto release;
    int64_t *O = out.buf;
    PyObject *prev = NULL;
    int64_t prev_code = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        /* (values is ours for the call: no Python code runs that could change it, str hashing
         * and comparison being C; the size is read again all the same) */
        if (i >= PyList_GET_SIZE(values)) {
            PyErr_SetString(PyExc_RuntimeError, "codes: values changed size");
            goto release;
        }
        PyObject *v = PyList_GET_ITEM(values, i);
        if (v == prev) {
            O[i] = prev_code;
            continue;
        }
        if (!PyUnicode_CheckExact(v)) {
            Py_INCREF(Py_None);
            result = Py_None;
            goto release;
        }
        PyObject *c = PyDict_GetItemWithError(seen, v);   /* (borrowed) */
        int64_t code;
        if (c != NULL) {
            code = PyLong_AsLongLong(c);
        } else {
            if (PyErr_Occurred())
                goto release;
            code = PyList_GET_SIZE(distinct);
            PyObject *k = PyLong_FromLongLong(code);
            if (k == NULL)
                goto release;
            int bad = PyDict_SetItem(seen, v, k) < 0 || PyList_Append(distinct, v) < 0;
            Py_DECREF(k);
            if (bad)
                goto release;
        }
        O[i] = code;
        prev = v;
        prev_code = code;
    }
    result = distinct;
    distinct = NULL;
release:
    Py_XDECREF(seen);
    Py_XDECREF(distinct);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"codes", codes, METH_VARARGS,
     "codes(values, out): each str of the list values numbered by first appearance into out; "
     "the distinct texts (a list), or None when an item is no str"},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_textcodes",
    "The text-column coding of kscc_traffic.classify (_str_codes), compiled.",
    -1, methods
};

#ifndef KSCC_SOURCE_SHA256
#define KSCC_SOURCE_SHA256 ""   /* built without setup.py's digest */
#endif

PyMODINIT_FUNC
PyInit__textcodes(void)
{
    PyObject *m = PyModule_Create(&module);
    /* the digest of the C source this was built from (setup.py; compiled.stale() compares it) */
    if (m != NULL && PyModule_AddStringConstant(m, "source_sha256", KSCC_SOURCE_SHA256) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
