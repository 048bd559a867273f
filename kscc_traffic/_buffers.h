/* The buffer check shared by the compiled parts of kscc_traffic (capture/_ranges.c, _tcpstate.c,
 * _keyhash.c): each is built on its own, so it is a static function of each. */
#ifndef KSCC_BUFFERS_H
#define KSCC_BUFFERS_H

#include <Python.h>
#include <stdint.h>
#include <string.h>

/* obj's buffer into view: C-contiguous native 8-byte integers, numpy int64 (format l or q,
 * perhaps after "@", "=" or, on a little-endian host, "<") and, with unsigned_ok, uint64 (L, Q);
 * writable if asked.  0, or -1 with an exception set (TypeError for another format, nothing
 * held; BufferError for a read-only one asked writable). */
static int
get_8byte_ints(PyObject *obj, Py_buffer *view, const char *what, int writable, int unsigned_ok)
{
    if (PyObject_GetBuffer(obj, view, (writable ? PyBUF_WRITABLE : 0) | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    const char *f = view->format ? view->format : "B";
    const uint16_t one = 1;
    if (*f == '@' || *f == '=' || (*f == '<' && *(const unsigned char *)&one == 1))
        f++;
    int ok = view->itemsize == 8
             && (strcmp(f, "l") == 0 || strcmp(f, "q") == 0
                 || (unsigned_ok && (strcmp(f, "L") == 0 || strcmp(f, "Q") == 0)));
    if (!ok) {
        PyErr_Format(PyExc_TypeError, "%s: an array of native %s expected (format %s)", what,
                     unsigned_ok ? "8-byte integers" : "int64", view->format ? view->format : "B");
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* Whether the memory of two buffers overlaps (a writable output must not share bytes with an
 * input the code reads offsets or indexes from: a write would change them after their check). */
static inline int
buffers_overlap(const Py_buffer *a, const Py_buffer *b)
{
    const char *a0 = a->buf, *b0 = b->buf;
    return a->len > 0 && b->len > 0 && a0 < b0 + b->len && b0 < a0 + a->len;
}

#endif
