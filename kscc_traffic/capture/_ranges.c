/* Many byte ranges copied in one call: the loops of kscc_traffic/capture/ranges.py, compiled.
 *
 *   copy_ranges(dst, dst_at, src, src_at, length) -> None
 *       dst[dst_at[i]:dst_at[i] + length[i]] = src[src_at[i]:src_at[i] + length[i]] for every i,
 *       in order.  dst: a writable contiguous buffer; src: a contiguous buffer (bytes, mmap,
 *       numpy array...); dst_at, src_at, length: C-contiguous buffers of native int64 of the same
 *       length (numpy int64 arrays).  A range not inside its buffer (or a negative offset or
 *       length) raises ValueError naming its index, and nothing is copied.  The copying runs
 *       without the GIL.
 *
 *   gather(src, src_at, length) -> bytes
 *       the ranges src[src_at[i]:src_at[i] + length[i]] back to back, as one new bytes object.
 *       A range not inside src raises ValueError (nothing is copied).
 *
 * The Python twins (ranges.copy_ranges_py, ranges.gather_py) are the fallback when this module
 * is not built, and tests/test_ranges.py checks that both give the same bytes and errors.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "../_buffers.h"
#include <stdint.h>
#include <string.h>

static PyObject *
copy_ranges(PyObject *self, PyObject *args)
{
    PyObject *dst_o, *dst_at_o, *src_o, *src_at_o, *len_o;
    Py_buffer dst, src, da, sa, ln;
    PyObject *result = NULL;

    if (!PyArg_ParseTuple(args, "OOOOO:copy_ranges", &dst_o, &dst_at_o, &src_o, &src_at_o, &len_o))
        return NULL;
    if (PyObject_GetBuffer(dst_o, &dst, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    if (PyObject_GetBuffer(src_o, &src, PyBUF_C_CONTIGUOUS) < 0)
        goto release_dst;
    if (get_8byte_ints(dst_at_o, &da, "dst_at", 0, 0) < 0)
        goto release_src;
    if (get_8byte_ints(src_at_o, &sa, "src_at", 0, 0) < 0)
        goto release_da;
    if (get_8byte_ints(len_o, &ln, "length", 0, 0) < 0)
        goto release_sa;

    Py_ssize_t k = ln.len / 8;
    if (da.len / 8 != k || sa.len / 8 != k) {
        PyErr_SetString(PyExc_ValueError, "dst_at, src_at and length differ in length");
        goto release_all;
    }
    const int64_t *d = (const int64_t *)da.buf, *s = (const int64_t *)sa.buf, *n = (const int64_t *)ln.buf;
    unsigned char *out = (unsigned char *)dst.buf;
    const unsigned char *in = (const unsigned char *)src.buf;
    int64_t dlen = (int64_t)dst.len, slen = (int64_t)src.len;
    Py_ssize_t i;

    for (i = 0; i < k; i++) {
        int64_t a = d[i], b = s[i], m = n[i];
        if (m < 0 || a < 0 || b < 0 || a > dlen - m || b > slen - m) {
            PyErr_Format(PyExc_ValueError, "range %zd outside its buffer", i);
            goto release_all;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    for (i = 0; i < k; i++)
        memmove(out + d[i], in + s[i], (size_t)n[i]);
    Py_END_ALLOW_THREADS
    result = Py_None;
    Py_INCREF(result);
release_all:
    PyBuffer_Release(&ln);
release_sa:
    PyBuffer_Release(&sa);
release_da:
    PyBuffer_Release(&da);
release_src:
    PyBuffer_Release(&src);
release_dst:
    PyBuffer_Release(&dst);
    return result;
}

static PyObject *
gather(PyObject *self, PyObject *args)
{
    PyObject *src_o, *src_at_o, *len_o;
    Py_buffer src, sa, ln;
    PyObject *result = NULL;

    if (!PyArg_ParseTuple(args, "OOO:gather", &src_o, &src_at_o, &len_o))
        return NULL;
    if (PyObject_GetBuffer(src_o, &src, PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    if (get_8byte_ints(src_at_o, &sa, "src_at", 0, 0) < 0)
        goto release_src;
    if (get_8byte_ints(len_o, &ln, "length", 0, 0) < 0)
        goto release_sa;

    Py_ssize_t k = ln.len / 8, i;
    if (sa.len / 8 != k) {
        PyErr_SetString(PyExc_ValueError, "src_at and length differ in length");
        goto release_all;
    }
    const int64_t *s = (const int64_t *)sa.buf, *n = (const int64_t *)ln.buf;
    int64_t slen = (int64_t)src.len, total = 0;
    for (i = 0; i < k; i++) {
        if (n[i] < 0 || s[i] < 0 || s[i] > slen - n[i] || total > PY_SSIZE_T_MAX - n[i]) {
            PyErr_Format(PyExc_ValueError, "range %zd outside its buffer", i);
            goto release_all;
        }
        total += n[i];
    }
    result = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    if (result == NULL)
        goto release_all;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    const unsigned char *in = (const unsigned char *)src.buf;
    Py_BEGIN_ALLOW_THREADS
    for (i = 0; i < k; i++) {
        memcpy(out, in + s[i], (size_t)n[i]);
        out += n[i];
    }
    Py_END_ALLOW_THREADS
release_all:
    PyBuffer_Release(&ln);
release_sa:
    PyBuffer_Release(&sa);
release_src:
    PyBuffer_Release(&src);
    return result;
}

static PyMethodDef methods[] = {
    {"copy_ranges", copy_ranges, METH_VARARGS,
     "copy_ranges(dst, dst_at, src, src_at, length) -> None\n\n"
     "dst[dst_at[i]:dst_at[i] + length[i]] = src[src_at[i]:src_at[i] + length[i]] for every i "
     "(int64 arrays; ValueError for a range outside its buffer, nothing copied)."},
    {"gather", gather, METH_VARARGS,
     "gather(src, src_at, length) -> bytes\n\n"
     "The ranges src[src_at[i]:src_at[i] + length[i]] back to back (ValueError for a range "
     "outside src, nothing copied)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_ranges",
    "Many byte ranges copied in one call (twins of kscc_traffic.capture.ranges).",
    -1, methods,
};

#ifndef KSCC_SOURCE_SHA256
#define KSCC_SOURCE_SHA256 ""   /* built without setup.py's digest */
#endif

PyMODINIT_FUNC
PyInit__ranges(void)
{
    PyObject *m = PyModule_Create(&module);
    /* the digest of the C source this was built from (setup.py; compiled.stale() compares it) */
    if (m != NULL && PyModule_AddStringConstant(m, "source_sha256", KSCC_SOURCE_SHA256) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
