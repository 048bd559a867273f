/* The flow-key hashes of kscc_traffic/flows.py (_mix, the base62 digits of _uid), compiled.
 *
 *   mix(h, v, out) -> None
 *       out[i] = flows._mix_py(h, v)[i]: one splitmix64 round folding v[i] into h[i],
 *       z = v + golden + (h << 6) + (h >> 2); z ^= h; then splitmix64's finalizer (wrapping
 *       uint64 arithmetic).  h, v: C-contiguous buffers of 8-byte integers (numpy uint64 or
 *       int64: read as uint64); out: a writable C-contiguous buffer of 8-byte integers (may be h
 *       itself); all of the same length, else ValueError (out unchanged).
 *
 *   uids(h1, h2) -> list of str
 *       per row an 18-character str: 'C', the 11 base62 digits of h1[i] (least significant
 *       first), then the 6 least significant base62 digits of h2[i] (the alphabet 0-9A-Za-z):
 *       flows._uid's texts.  h1, h2: C-contiguous buffers of 8-byte integers (read as uint64) of
 *       the same length, else ValueError.
 *
 * The numpy versions (flows._mix_py, flows._uids_py) are the fallback when this module is not
 * built; tests/test_keyhash.py checks that both give the same numbers and characters.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "_buffers.h"
#include <stdint.h>
#include <string.h>

static PyObject *
mix(PyObject *self, PyObject *args)
{
    PyObject *h_o, *v_o, *out_o;
    Py_buffer h, v, out;
    PyObject *result = NULL;

    if (!PyArg_ParseTuple(args, "OOO:mix", &h_o, &v_o, &out_o))
        return NULL;
    if (get_8byte_ints(h_o, &h, "h", 0, 1) < 0)
        return NULL;
    if (get_8byte_ints(v_o, &v, "v", 0, 1) < 0)
        goto release_h;
    if (get_8byte_ints(out_o, &out, "out", 1, 1) < 0)
        goto release_v;
    if (v.len != h.len || out.len != h.len) {
        PyErr_SetString(PyExc_ValueError, "mix: arrays of different lengths");
        goto release_out;
    }
    Py_ssize_t n = h.len / 8;
    const uint64_t *H = h.buf, *V = v.buf;
    uint64_t *O = out.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t hi = H[i];
        uint64_t z = V[i] + 0x9E3779B97F4A7C15ULL + (hi << 6) + (hi >> 2);
        z ^= hi;
        z ^= z >> 30;
        z *= 0xBF58476D1CE4E5B9ULL;
        z ^= z >> 27;
        z *= 0x94D049BB133111EBULL;
        z ^= z >> 31;
        O[i] = z;
    }
    Py_END_ALLOW_THREADS
    Py_INCREF(Py_None);
    result = Py_None;
release_out:
    PyBuffer_Release(&out);
release_v:
    PyBuffer_Release(&v);
release_h:
    PyBuffer_Release(&h);
    return result;
}

static const char B62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static PyObject *
uids(PyObject *self, PyObject *args)
{
    PyObject *h1_o, *h2_o;
    Py_buffer h1, h2;
    PyObject *result = NULL;

    if (!PyArg_ParseTuple(args, "OO:uids", &h1_o, &h2_o))
        return NULL;
    if (get_8byte_ints(h1_o, &h1, "h1", 0, 1) < 0)
        return NULL;
    if (get_8byte_ints(h2_o, &h2, "h2", 0, 1) < 0)
        goto release_h1;
    Py_ssize_t n = h1.len / 8;
    if (h2.len != h1.len) {
        PyErr_SetString(PyExc_ValueError, "uids: arrays of different lengths");
        goto release_h2;
    }
    result = PyList_New(n);
    if (result == NULL)
        goto release_h2;
    const uint64_t *A = h1.buf, *B = h2.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PyUnicode_New(18, 127);
        if (t == NULL) {
            Py_CLEAR(result);
            goto release_h2;
        }
        Py_UCS1 *O = PyUnicode_1BYTE_DATA(t);
        uint64_t a = A[i], b = B[i];
        O[0] = 'C';
        for (int k = 0; k < 11; k++, a /= 62)
            O[1 + k] = (Py_UCS1)B62[a % 62];
        for (int k = 0; k < 6; k++, b /= 62)
            O[12 + k] = (Py_UCS1)B62[b % 62];
        PyList_SET_ITEM(result, i, t);
    }
release_h2:
    PyBuffer_Release(&h2);
release_h1:
    PyBuffer_Release(&h1);
    return result;
}

static PyMethodDef methods[] = {
    {"mix", mix, METH_VARARGS, "mix(h, v, out): one splitmix64 round folding v into h, into out"},
    {"uids", uids, METH_VARARGS, "uids(h1, h2): the uid text (18 characters) per row, a list of str"},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_keyhash",
    "The flow-key hashes of kscc_traffic.flows (_mix, _uid's base62 texts), compiled.",
    -1, methods
};

#ifndef KSCC_SOURCE_SHA256
#define KSCC_SOURCE_SHA256 ""   /* built without setup.py's digest */
#endif

PyMODINIT_FUNC
PyInit__keyhash(void)
{
    PyObject *m = PyModule_Create(&module);
    /* the digest of the C source this was built from (setup.py; compiled.stale() compares it) */
    if (m != NULL && PyModule_AddStringConstant(m, "source_sha256", KSCC_SOURCE_SHA256) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
