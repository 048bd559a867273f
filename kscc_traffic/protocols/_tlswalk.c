/* The TLS record walk of kscc_traffic/protocols/tls_batch.py (_vectorised and the functions it
 * calls: _walk, _alerts, _server_hello, _next_extension, _client_hello_sni, _sni_list), compiled:
 * one flow at a time, the same steps and the same caps, so the same results.
 *
 *   summarize(cbuf, cstart, cend, sbuf, sstart, send, res, sni) -> None
 *       Flow i has the client stream cbuf[cstart[i]:cend[i]] and the server stream
 *       sbuf[sstart[i]:send[i]].  cbuf, sbuf: C-contiguous buffers of bytes (1-byte items, may be
 *       read-only, may be the same); cstart, cend, sstart, send: C-contiguous int64 buffers of
 *       one length n; res: a writable C-contiguous int32 buffer of NCOL * n items, filled as
 *       NCOL rows of n (see the COL_ names below: version, cipher, the alerts' level and
 *       description or -1, and 0/1 flags); sni: a writable C-contiguous int64 buffer of 2 * n
 *       items, filled as two rows of n: the absolute offset of the server name's bytes in cbuf
 *       and their length, or -1 / -1 where the flow has none.
 *       ValueError (res and sni unchanged) when the lengths differ, a range is not inside its
 *       buffer (0 <= start <= end <= len) or res or sni shares memory with another argument;
 *       TypeError for a buffer of another item size/format.  (A range that another thread makes
 *       bad during the call: ValueError, res and sni partly written.)
 *
 *   names(cbuf, sni, rows, cache, make) -> list of str
 *       the server names of those rows, through a dict bytes -> text (see names below).
 *
 * Every read is inside the flow's own stream (the checks are those of the numpy version). The
 * numpy version (tls_batch._vectorised_numpy) is the fallback when this module is not built;
 * tests/test_tlswalk_compiled.py checks that both give the same results.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "../_buffers.h"
#include <stdint.h>
#include <string.h>

/* keep in step with tls.py / tls_batch.py (the Python side checks them at import) */
#define MAX_RECORDS 256
#define MAX_EXTENSIONS 64
#define MAX_NAMES 8
#define MAX_ALERTS 8
#define MAX_RECORD ((1 << 14) + 2048)
#define CT_CCS 20
#define CT_ALERT 21
#define CT_HANDSHAKE 22
#define CT_APP_DATA 23
#define CT_HEARTBEAT 24
#define HS_CLIENT_HELLO 1
#define HS_SERVER_HELLO 2
#define EXT_SERVER_NAME 0
#define EXT_SUPPORTED_VERSIONS 43
#define EXT_ECH 0xFE0D
#define TLS1_3 0x0304

enum {
    COL_VERSION, COL_CIPHER, COL_SERVER_HELLO, COL_HELLO_RETRY,
    COL_SALERT_LEVEL, COL_SALERT_DESC, COL_CALERT_LEVEL, COL_CALERT_DESC,
    COL_SERVER_APP, COL_SERVER_CCS, COL_CLIENT_APP, COL_CLIENT_CCS,
    COL_CLIENT_ENC_ALERT, COL_ESTABLISHED, COL_CLIENT_HELLO, COL_ECH, COL_FALLBACK,
    NCOL
};

static const unsigned char HRR[32] = {
    0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
    0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C};

static inline int64_t u16(const unsigned char *b, int64_t i) { return ((int64_t)b[i] << 8) | b[i + 1]; }
static inline int64_t u24(const unsigned char *b, int64_t i)
{
    return ((int64_t)b[i] << 16) | ((int64_t)b[i + 1] << 8) | b[i + 2];
}

/* The next record of a walk at *off (stream end e), like tls_batch._walk's step: 1 with its
 * content type, body offset and body length as present (cut at e), or 0 (no whole header, or a
 * header that is not TLS). */
static inline int
next_record(const unsigned char *b, int64_t off, int64_t e, int *ct, int64_t *body, int64_t *blen,
            int64_t *ln)
{
    if (off + 5 > e)
        return 0;
    int c = b[off];
    int64_t l = u16(b, off + 3);
    if (!(c >= CT_CCS && c <= CT_HEARTBEAT && b[off + 1] == 3 && b[off + 2] <= 4 && l <= MAX_RECORD))
        return 0;
    *ct = c;
    *body = off + 5;
    *ln = l;
    *blen = l < e - *body ? l : e - *body;
    return 1;
}

/* tls_batch._alerts for one record: the first cleartext alert into alert[0..1]. */
static inline void
alerts(const unsigned char *b, int ct, int64_t p, int64_t blen, int32_t *alert, int ccs, int is13)
{
    if (!(ct == CT_ALERT && blen >= 2 && blen % 2 == 0 && blen <= 2 * MAX_ALERTS))
        return;
    if (!(alert[0] < 0 && (!ccs || is13)))
        return;
    int64_t k = blen / 2, pick = -1;
    for (int64_t i = 0; i < k; i++) {
        int lvl = b[p + 2 * i];
        if (lvl != 1 && lvl != 2)
            return;
        if (pick < 0 && lvl == 2)
            pick = i;
    }
    if (pick < 0)
        pick = 0;
    alert[0] = b[p + 2 * pick];
    alert[1] = b[p + 2 * pick + 1];
}

/* tls_batch._server_hello for one whole ServerHello body at p, n bytes. */
static void
server_hello(const unsigned char *b, int64_t p, int64_t n, int64_t *ver, int64_t *cipher, int *sh,
             int *hrr, int *fb)
{
    if (n < 2)
        return;
    int64_t v = u16(b, p);
    int retry = n >= 34 && memcmp(b + p + 2, HRR, 32) == 0;
    if (retry)
        *hrr = 1;
    else
        *sh = 1;
    int64_t c = -1;
    if (n >= 35) {
        int64_t i = 35 + b[p + 34];
        if (i + 2 <= n) {
            c = u16(b, p + i);
            i += 3;
            if (i + 2 <= n) {
                int64_t ext_end = i + 2 + u16(b, p + i);
                if (ext_end > n)
                    ext_end = n;
                i += 2;
                int x;
                for (x = 0; x < MAX_EXTENSIONS; x++) {
                    if (i + 4 > ext_end)
                        break;
                    int64_t et = u16(b, p + i), ln = u16(b, p + i + 2);
                    if (i + 4 + ln > ext_end)
                        break;
                    if (et == EXT_SUPPORTED_VERSIONS && ln == 2)
                        v = u16(b, p + i + 4);
                    i += 4 + ln;
                }
                if (x == MAX_EXTENSIONS && i + 4 <= ext_end)
                    *fb = 1;
            }
        }
    }
    *ver = v;
    *cipher = c;
}

/* tls_batch._sni_list: 1 = a host_name entry (at *off, *len), 2 = over MAX_NAMES, 0 = none. */
static int
sni_list(const unsigned char *b, int64_t q, int64_t size, int64_t *off, int64_t *len)
{
    if (size < 2)
        return 0;
    int64_t end = 2 + u16(b, q);
    if (end > size)
        end = size;
    int64_t i = 2;
    for (int x = 0; x < MAX_NAMES; x++) {
        if (i + 3 > end)
            return 0;
        int typ = b[q + i];
        int64_t ln = u16(b, q + i + 1);
        if (i + 3 + ln > end)
            return 0;
        if (typ == 0) {
            *off = q + i + 3;
            *len = ln;
            return 1;
        }
        i += 3 + ln;
    }
    return i + 3 <= end ? 2 : 0;
}

/* tls_batch._client_hello_sni for one whole ClientHello body at p, n (>= 2) bytes. */
static void
client_hello_sni(const unsigned char *b, int64_t p, int64_t n, int64_t *sni_off, int64_t *sni_len,
                 int *ech, int *fb)
{
    if (n < 35)
        return;
    int64_t i = 35 + b[p + 34];
    if (i + 2 > n)
        return;
    i = i + 2 + u16(b, p + i);
    if (i + 1 > n)
        return;
    i = i + 1 + b[p + i];
    if (i + 2 > n)
        return;
    int64_t ext_end = i + 2 + u16(b, p + i);
    if (ext_end > n)
        ext_end = n;
    i += 2;
    int named = 0, x;
    for (x = 0; x < MAX_EXTENSIONS; x++) {
        if (i + 4 > ext_end)
            break;
        int64_t et = u16(b, p + i), ln = u16(b, p + i + 2);
        if (i + 4 + ln > ext_end)
            break;
        if (et == EXT_ECH)
            *ech = 1;
        if (et == EXT_SERVER_NAME && !named) {
            int64_t off = 0, len = 0;
            int got = sni_list(b, p + i + 4, ln, &off, &len);
            if (got == 2)
                *fb = 1;
            if (got == 1) {
                *sni_off = off;
                *sni_len = len;
            }
            named = got != 0;
        }
        i += 4 + ln;
    }
    if (x == MAX_EXTENSIONS && i + 4 <= ext_end)
        *fb = 1;
}

/* One flow: tls_batch._vectorised's steps for row i. */
static void
one_flow(const unsigned char *cb, int64_t cs, int64_t ce, const unsigned char *sb, int64_t ss,
         int64_t se, int32_t *res, Py_ssize_t n, Py_ssize_t r, int64_t *sni)
{
    int fb = 0;
    /* ---- server direction */
    int s_ccs = 0, s_app = 0, sh = 0, hrr = 0, have_hs = 0;
    int64_t ver = -1, cipher = -1;
    int32_t salert[2] = {-1, -1};
    int64_t off = ss;
    int k, ct;
    int64_t body, blen, ln;
    for (k = 0; k < MAX_RECORDS; k++) {
        if (!next_record(sb, off, se, &ct, &body, &blen, &ln))
            break;
        int is13 = ver == TLS1_3;
        alerts(sb, ct, body, blen, salert, s_ccs, is13);
        if (ct == CT_APP_DATA)
            s_app = 1;
        if (ct == CT_HANDSHAKE && (!s_ccs || is13)) {
            if (have_hs)
                fb = 1;  /* more handshake bytes: reassembly is the reference's job */
            else {
                have_hs = 1;
                if (blen < 4)
                    fb = 1;
                else if (sb[body] == HS_SERVER_HELLO && 4 + u24(sb, body + 1) == blen)
                    server_hello(sb, body + 4, blen - 4, &ver, &cipher, &sh, &hrr, &fb);
                else
                    fb = 1;
            }
        }
        if (ct == CT_CCS)
            s_ccs = 1;
        off = body + ln;
    }
    if (k == MAX_RECORDS && off + 5 <= se)
        fb = 1;

    /* ---- client direction */
    int v13 = ver == TLS1_3;
    int c_ccs = 0, c_app = 0, first_app = 1, enc = 0;
    int32_t calert[2] = {-1, -1};
    int ct0 = -1;
    int64_t body0 = 0, blen0 = 0;
    off = cs;
    for (k = 0; k < MAX_RECORDS; k++) {
        if (!next_record(cb, off, ce, &ct, &body, &blen, &ln))
            break;
        if (k == 0) {
            ct0 = ct;
            body0 = body;
            blen0 = blen;
        }
        if (ct == CT_APP_DATA) {
            if (first_app)
                enc = v13 && sh && blen == 19;  /* 2-byte alert + inner type + 16-byte tag */
            first_app = 0;
            c_app = 1;
        }
        alerts(cb, ct, body, blen, calert, c_ccs, v13);
        if (ct == CT_CCS)
            c_ccs = 1;
        off = body + ln;
    }
    if (k == MAX_RECORDS && off + 5 <= ce)
        fb = 1;
    int established = v13 ? (sh && c_app && !enc) : ((c_ccs && s_ccs) || (c_app && s_app));

    /* ---- ClientHello: whole inside the first record, else the reference parses it */
    int has_ch = 0, ech = 0;
    int64_t sni_off = -1, sni_len = -1;
    if (ce > cs && (cb[cs] & 0x80))
        fb = 1;  /* SSLv2-compatible hello */
    if (ct0 >= 0 && ct0 != CT_HANDSHAKE)
        fb = 1;
    if (ct0 == CT_HANDSHAKE && !fb) {
        if (blen0 < 4)
            fb = 1;
        else {
            int64_t mlen = u24(cb, body0 + 1);
            if (4 + mlen > blen0)
                fb = 1;
            else if (cb[body0] == HS_CLIENT_HELLO && mlen >= 2) {
                has_ch = 1;
                client_hello_sni(cb, body0 + 4, mlen, &sni_off, &sni_len, &ech, &fb);
            }
        }
    }

    res[COL_VERSION * n + r] = (int32_t)ver;
    res[COL_CIPHER * n + r] = (int32_t)cipher;
    res[COL_SERVER_HELLO * n + r] = sh;
    res[COL_HELLO_RETRY * n + r] = hrr;
    res[COL_SALERT_LEVEL * n + r] = salert[0];
    res[COL_SALERT_DESC * n + r] = salert[1];
    res[COL_CALERT_LEVEL * n + r] = calert[0];
    res[COL_CALERT_DESC * n + r] = calert[1];
    res[COL_SERVER_APP * n + r] = s_app;
    res[COL_SERVER_CCS * n + r] = s_ccs;
    res[COL_CLIENT_APP * n + r] = c_app;
    res[COL_CLIENT_CCS * n + r] = c_ccs;
    res[COL_CLIENT_ENC_ALERT * n + r] = enc;
    res[COL_ESTABLISHED * n + r] = established;
    res[COL_CLIENT_HELLO * n + r] = has_ch;
    res[COL_ECH * n + r] = ech;
    res[COL_FALLBACK * n + r] = fb;
    sni[r] = sni_off;
    sni[n + r] = sni_len;
}

/* obj's buffer: C-contiguous, items of `itemsize` bytes whose format (after a byte-order mark
 * that means native) is one of `formats`; writable if asked.  0, or -1 with an exception set. */
static int
get_items(PyObject *obj, Py_buffer *view, const char *what, Py_ssize_t itemsize, const char *formats,
          int writable)
{
    if (PyObject_GetBuffer(obj, view, (writable ? PyBUF_WRITABLE : 0) | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    const char *f = view->format ? view->format : "B";
    const uint16_t one = 1;
    if (*f == '@' || *f == '=' || (*f == '<' && *(const unsigned char *)&one == 1))
        f++;
    if (view->itemsize != itemsize || f[0] == '\0' || f[1] != '\0' || strchr(formats, f[0]) == NULL) {
        PyErr_Format(PyExc_TypeError, "%s: a C-contiguous buffer of %zd-byte items (%s) expected (format %s)",
                     what, itemsize, formats, view->format ? view->format : "B");
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static PyObject *
summarize(PyObject *self, PyObject *args)
{
    PyObject *o[8];
    static const char *names[8] = {"cbuf", "cstart", "cend", "sbuf", "sstart", "send", "res", "sni"};
    Py_buffer v[8];
    int got = 0;
    PyObject *result = NULL;

    if (!PyArg_ParseTuple(args, "OOOOOOOO:summarize", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7]))
        return NULL;
    for (; got < 8; got++) {
        int rc;
        if (got == 0 || got == 3)
            rc = get_items(o[got], &v[got], names[got], 1, "Bbc?", 0);
        else if (got == 6)
            rc = get_items(o[got], &v[got], names[got], 4, "il", 1);
        else
            rc = get_8byte_ints(o[got], &v[got], names[got], got == 7, 0);
        if (rc < 0)
            goto done;
    }
    Py_ssize_t n = v[1].len / 8;
    if (v[2].len / 8 != n || v[4].len / 8 != n || v[5].len / 8 != n) {
        PyErr_SetString(PyExc_ValueError, "summarize: cstart, cend, sstart and send differ in length");
        goto done;
    }
    if (v[6].len / 4 != NCOL * n || v[7].len / 8 != 2 * n) {
        PyErr_Format(PyExc_ValueError, "summarize: res must hold %d x %zd and sni 2 x %zd items", NCOL, n, n);
        goto done;
    }
    /* res and sni are written row by row while the inputs are read: sharing bytes with a range
     * array would change a range after its check (a read outside the buffer) */
    for (int w = 6; w < 8; w++)
        for (int k = 0; k < 8; k++)
            if (k != w && buffers_overlap(&v[w], &v[k])) {
                PyErr_Format(PyExc_ValueError, "summarize: %s shares memory with %s", names[w], names[k]);
                goto done;
            }
    const int64_t *cs = v[1].buf, *ce = v[2].buf, *ss = v[4].buf, *se = v[5].buf;
    const int64_t clen = v[0].len, slen = v[3].len;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!(0 <= cs[i] && cs[i] <= ce[i] && ce[i] <= clen && 0 <= ss[i] && ss[i] <= se[i] && se[i] <= slen)) {
            PyErr_Format(PyExc_ValueError, "summarize: the ranges of row %zd are not inside their buffers", i);
            goto done;
        }
    }
    const unsigned char *cb = v[0].buf, *sb = v[3].buf;
    int32_t *res = v[6].buf;
    int64_t *sni = v[7].buf;
    Py_ssize_t bad = -1;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        /* each range read once and checked again where it is used: another thread may write the
         * range arrays while the GIL is released */
        int64_t a = cs[i], b = ce[i], c = ss[i], d = se[i];
        if (!(0 <= a && a <= b && b <= clen && 0 <= c && c <= d && d <= slen)) {
            bad = i;
            break;
        }
        one_flow(cb, a, b, sb, c, d, res, n, i, sni);
    }
    Py_END_ALLOW_THREADS
    if (bad >= 0) {
        PyErr_Format(PyExc_ValueError, "summarize: the ranges of row %zd changed during the call", bad);
        goto done;
    }
    Py_INCREF(Py_None);
    result = Py_None;
done:
    while (got-- > 0)
        PyBuffer_Release(&v[got]);
    return result;
}

/* names(cbuf, sni, rows, cache, make) -> list of str
 *     for row rows[j], the text of its server name bytes cbuf[sni[0][r]:sni[0][r] + sni[1][r]]:
 *     the dict cache's (bytes -> text) where it holds a non-empty str for them, else make(bytes)
 *     (which is to add it to the cache: a name seen again is then found there). sni as filled
 *     by summarize (2 x n int64); rows: C-contiguous int64 row numbers, each in [0, n) with
 *     sni[1][r] >= 0 and its bytes inside cbuf, else ValueError; make's errors pass through;
 *     TypeError when make gives something else than a str. */
static PyObject *
names(PyObject *self, PyObject *args)
{
    PyObject *buf_o, *sni_o, *rows_o, *cache, *make;
    Py_buffer b, s, r;
    PyObject *values = NULL, *result = NULL;

    if (!PyArg_ParseTuple(args, "OOOO!O:names", &buf_o, &sni_o, &rows_o, &PyDict_Type, &cache, &make))
        return NULL;
    if (get_items(buf_o, &b, "cbuf", 1, "Bbc?", 0) < 0)
        return NULL;
    if (get_8byte_ints(sni_o, &s, "sni", 0, 0) < 0)
        goto release_b;
    if (get_8byte_ints(rows_o, &r, "rows", 0, 0) < 0)
        goto release_s;
    Py_ssize_t n = s.len / 16, k = r.len / 8;
    if (s.len != 16 * n) {
        PyErr_SetString(PyExc_ValueError, "names: sni must hold 2 x n items");
        goto release_r;
    }
    const int64_t *off = s.buf, *len = (const int64_t *)s.buf + n, *rows = r.buf;
    for (Py_ssize_t j = 0; j < k; j++) {
        int64_t i = rows[j];
        if (!(0 <= i && i < n && len[i] >= 0 && off[i] >= 0 && off[i] <= b.len && len[i] <= b.len - off[i])) {
            PyErr_Format(PyExc_ValueError, "names: row %zd has no name inside cbuf", j);
            goto release_r;
        }
    }
    values = PyList_New(k);
    if (values == NULL)
        goto release_r;
    const char *cb = b.buf;
    for (Py_ssize_t j = 0; j < k; j++) {
        /* checked again where used: make (Python code) may have written sni or rows since */
        int64_t i = rows[j];
        if (!(0 <= i && i < n && len[i] >= 0 && off[i] >= 0 && off[i] <= b.len && len[i] <= b.len - off[i])) {
            PyErr_Format(PyExc_ValueError, "names: row %zd has no name inside cbuf (sni or rows changed during the call)", j);
            goto fail;
        }
        PyObject *raw = PyBytes_FromStringAndSize(cb + off[i], (Py_ssize_t)len[i]);  /* (off, len: checked) */
        if (raw == NULL)
            goto fail;
        PyObject *text = PyDict_GetItemWithError(cache, raw);  /* borrowed */
        if (text != NULL && PyUnicode_Check(text) && PyUnicode_GET_LENGTH(text) > 0)
            Py_INCREF(text);
        else if (text == NULL && PyErr_Occurred())
            text = NULL;
        else {
            text = PyObject_CallOneArg(make, raw);
            if (text != NULL && !PyUnicode_Check(text)) {
                PyErr_SetString(PyExc_TypeError, "names: make did not give a str");
                Py_CLEAR(text);
            }
        }
        Py_DECREF(raw);
        if (text == NULL)
            goto fail;
        PyList_SET_ITEM(values, j, text);
    }
    result = values;
    values = NULL;
fail:
    Py_XDECREF(values);
release_r:
    PyBuffer_Release(&r);
release_s:
    PyBuffer_Release(&s);
release_b:
    PyBuffer_Release(&b);
    return result;
}

static PyObject *
constants(PyObject *self, PyObject *unused)
{
    return Py_BuildValue("{s:i,s:i,s:i,s:i,s:i,s:i}", "MAX_RECORDS", MAX_RECORDS, "MAX_EXTENSIONS",
                         MAX_EXTENSIONS, "MAX_NAMES", MAX_NAMES, "MAX_ALERTS", MAX_ALERTS,
                         "MAX_RECORD", MAX_RECORD, "NCOL", NCOL);
}

static PyMethodDef methods[] = {
    {"summarize", summarize, METH_VARARGS,
     "summarize(cbuf, cstart, cend, sbuf, sstart, send, res, sni): tls_batch's record walk of n flows "
     "into res (int32, NCOL x n) and sni (int64, 2 x n: offset, length or -1)"},
    {"names", names, METH_VARARGS,
     "names(cbuf, sni, rows, cache, make): the server names of rows, from the cache or make(bytes)"},
    {"constants", constants, METH_NOARGS, "the caps and NCOL compiled in, as a dict"},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_tlswalk",
    "The TLS record walk of kscc_traffic.protocols.tls_batch, compiled.",
    -1, methods
};

#ifndef KSCC_SOURCE_SHA256
#define KSCC_SOURCE_SHA256 ""   /* built without setup.py's digest */
#endif

PyMODINIT_FUNC
PyInit__tlswalk(void)
{
    PyObject *m = PyModule_Create(&module);
    /* the digest of the C source this was built from (setup.py; compiled.stale() compares it) */
    if (m != NULL && PyModule_AddStringConstant(m, "source_sha256", KSCC_SOURCE_SHA256) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
