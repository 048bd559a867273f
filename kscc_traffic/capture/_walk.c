/* The two record-walk loops of kscc_traffic/capture/files.py, compiled.
 *
 * Each function does exactly what its pure-Python twin in files.py does (the twin is the
 * fallback when this module is not built, and tests/test_walk_compiled.py checks that both
 * give the same result on the same bytes), only without one interpreter round per record:
 *
 *   pcap_offsets(buf, pos, hdr_len, bound, big_endian) -> (offsets, pos, caplen)
 *       classic pcap: the offsets of the records from `pos` on, each record header's captured
 *       length read at +8.  Stops when fewer than 12 bytes are left at `pos` (caplen == -1), or
 *       at a record whose captured length is > bound (caplen = that length, `pos` = its offset,
 *       not in offsets).  A last record whose data overruns the buffer IS in offsets, and `pos`
 *       is then past the end: the caller takes it back, as the Python loop does.
 *
 *   pcap_records(buf, pos, hdr_len, bound, big_endian) -> (offsets, heads, pos, caplen)
 *       pcap_offsets, and the four 32-bit fields of each record header in `heads` (native
 *       uint32 values, 4 per record: ts seconds, ts fraction, captured length, original length)
 *       read while the walk is at the record, which files.py would otherwise gather from the
 *       buffer afterwards (_PcapParser._columns).  A field past the end of the buffer (only
 *       possible for a last record that overruns it, which the caller takes back) reads 0.
 *
 *   pcapng_epb_run(buf, pos, max_block, big_endian) -> (offsets, pos)
 *       pcapng: the run of well-framed Enhanced Packet Blocks from `pos` on (type 6,
 *       32 <= length <= max_block, length % 4 == 0, trailing length == length, and the 12 bytes
 *       of trailing length + next block header inside the buffer).  Stops at the first block
 *       that is not one; `pos` is its offset.
 *
 * offsets: bytes holding native int64 values (numpy.frombuffer(offsets, numpy.int64)).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static inline uint32_t
rd32(const unsigned char *p, int big)
{
    /* by bytes, so the host's own byte order does not matter (compilers make it one load) */
    if (big)
        return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
    return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0];
}

/* A growable int64 vector, turned into a bytes object at the end. */
typedef struct {
    int64_t *v;
    Py_ssize_t n, cap;
} vec;

static int
vec_push(vec *a, int64_t x)
{
    if (a->n == a->cap) {
        Py_ssize_t cap = a->cap ? a->cap * 2 : 4096;
        int64_t *v = PyMem_Realloc(a->v, (size_t)cap * sizeof(int64_t));
        if (v == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = x;
    return 0;
}

static PyObject *
vec_bytes(vec *a)
{
    PyObject *b = PyBytes_FromStringAndSize((const char *)a->v, a->n * (Py_ssize_t)sizeof(int64_t));
    PyMem_Free(a->v);
    a->v = NULL;
    return b;
}

static PyObject *
pcap_offsets(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t pos, hdr_len;
    long long bound;
    int big;
    if (!PyArg_ParseTuple(args, "y*nnLp", &view, &pos, &hdr_len, &bound, &big))
        return NULL;
    const unsigned char *buf = view.buf;
    Py_ssize_t end = view.len;
    vec offs = {NULL, 0, 0};
    long long stop_cl = -1;
    if (pos < 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "pos < 0");
        return NULL;
    }
    /* pos may run past the end (a record overrunning the buffer): compare without overflow */
    while (pos <= end - 12) {
        uint32_t cl = rd32(buf + pos + 8, big);
        if ((long long)cl > bound) {
            stop_cl = cl;
            break;
        }
        if (vec_push(&offs, pos) < 0) {
            PyMem_Free(offs.v);
            PyBuffer_Release(&view);
            return NULL;
        }
        pos += hdr_len + (Py_ssize_t)cl;
    }
    PyBuffer_Release(&view);
    PyObject *b = vec_bytes(&offs);
    if (b == NULL)
        return NULL;
    return Py_BuildValue("NnL", b, pos, stop_cl);
}

static PyObject *
pcap_records(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t pos, hdr_len;
    long long bound;
    int big;
    if (!PyArg_ParseTuple(args, "y*nnLp", &view, &pos, &hdr_len, &bound, &big))
        return NULL;
    const unsigned char *buf = view.buf;
    Py_ssize_t end = view.len;
    vec offs = {NULL, 0, 0};
    /* the header fields, two uint32 per int64 slot: (sec, frac), (caplen, wirelen) */
    vec heads = {NULL, 0, 0};
    long long stop_cl = -1;
    if (pos < 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "pos < 0");
        return NULL;
    }
    while (pos <= end - 12) {
        uint32_t cl = rd32(buf + pos + 8, big);
        if ((long long)cl > bound) {
            stop_cl = cl;
            break;
        }
        uint32_t f[4];
        f[0] = rd32(buf + pos, big);
        f[1] = rd32(buf + pos + 4, big);
        f[2] = cl;
        f[3] = pos <= end - 16 ? rd32(buf + pos + 12, big) : 0;
        int64_t w0, w1;
        memcpy(&w0, f, 8);
        memcpy(&w1, f + 2, 8);
        if (vec_push(&offs, pos) < 0 || vec_push(&heads, w0) < 0 || vec_push(&heads, w1) < 0) {
            PyMem_Free(offs.v);
            PyMem_Free(heads.v);
            PyBuffer_Release(&view);
            return NULL;
        }
        pos += hdr_len + (Py_ssize_t)cl;
    }
    PyBuffer_Release(&view);
    PyObject *b = vec_bytes(&offs);
    if (b == NULL) {
        PyMem_Free(heads.v);
        return NULL;
    }
    PyObject *h = vec_bytes(&heads);
    if (h == NULL) {
        Py_DECREF(b);
        return NULL;
    }
    return Py_BuildValue("NNnL", b, h, pos, stop_cl);
}

static PyObject *
pcapng_epb_run(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t pos;
    long long maxb;
    int big;
    if (!PyArg_ParseTuple(args, "y*nLp", &view, &pos, &maxb, &big))
        return NULL;
    const unsigned char *buf = view.buf;
    Py_ssize_t end = view.len;
    vec offs = {NULL, 0, 0};
    if (pos < 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "pos < 0");
        return NULL;
    }
    if (pos <= end - 8) {
        uint32_t btype = rd32(buf + pos, big), blen = rd32(buf + pos + 4, big);
        while (btype == 6 && blen >= 32 && (long long)blen <= maxb && !(blen & 3)) {
            /* trailing length of this block + header of the next: 12 bytes at pos + blen - 4 */
            if (pos + (Py_ssize_t)blen - 4 > end - 12)
                break;
            const unsigned char *t = buf + pos + blen - 4;
            if (rd32(t, big) != blen)
                break;
            if (vec_push(&offs, pos) < 0) {
                PyMem_Free(offs.v);
                PyBuffer_Release(&view);
                return NULL;
            }
            pos += blen;
            btype = rd32(t + 4, big);
            blen = rd32(t + 8, big);
        }
    }
    PyBuffer_Release(&view);
    PyObject *b = vec_bytes(&offs);
    if (b == NULL)
        return NULL;
    return Py_BuildValue("Nn", b, pos);
}

static PyMethodDef methods[] = {
    {"pcap_offsets", pcap_offsets, METH_VARARGS,
     "pcap_offsets(buf, pos, hdr_len, bound, big_endian) -> (offsets: bytes of int64, pos, caplen)\n\n"
     "Record offsets of a classic pcap buffer from pos on (see the module source)."},
    {"pcap_records", pcap_records, METH_VARARGS,
     "pcap_records(buf, pos, hdr_len, bound, big_endian) -> (offsets: bytes of int64, heads: bytes of\n"
     "uint32 (4 per record), pos, caplen)\n\n"
     "pcap_offsets with each record header's four fields (see the module source)."},
    {"pcapng_epb_run", pcapng_epb_run, METH_VARARGS,
     "pcapng_epb_run(buf, pos, max_block, big_endian) -> (offsets: bytes of int64, pos)\n\n"
     "Offsets of the run of well-framed Enhanced Packet Blocks from pos on."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_walk",
    "Compiled record walks of pcap / pcapng buffers (twins of the loops in files.py).",
    -1, methods,
};

#ifndef KSCC_SOURCE_SHA256
#define KSCC_SOURCE_SHA256 ""   /* built without setup.py's digest */
#endif

PyMODINIT_FUNC
PyInit__walk(void)
{
    PyObject *m = PyModule_Create(&module);
    /* the digest of the C source this was built from (setup.py; compiled.stale() compares it) */
    if (m != NULL && PyModule_AddStringConstant(m, "source_sha256", KSCC_SOURCE_SHA256) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
