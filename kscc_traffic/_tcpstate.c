/* Zeek's TCP endpoint state machine over a batch's state events: the loop of
 * kscc_traffic/flows.py's _endpoint_states, compiled.
 *
 *   endpoint_states(flow, from_orig, flags, plen, os, rs) -> None
 *       flow, from_orig, flags, plen: C-contiguous buffers of native int64 of the same length, one
 *       entry per state event (flows.state_event_rows), sorted by flow, then time; from_orig 0
 *       or 1.  os, rs: writable C-contiguous int8 buffers (one entry per flow, every flow number
 *       below their length), the originator's and the responder's final state, updated in place
 *       (their prior states: INACTIVE).  A flow number outside them raises ValueError naming
 *       its index, and nothing is changed.
 *
 * The events are run one by one in their order (each flow's in time order), as the Python
 * fallback runs them in steps (every flow's k-th event at step k): flows do not interact, so
 * both give the same states; tests/test_tcpstate.py compares them.
 *
 *   event_rows(flow, from_orig, flags, is_tcp, plen, keep) -> None
 *       flows.state_event_rows in one pass: flow, flags, plen: C-contiguous buffers of native
 *       int64; from_orig, is_tcp: C-contiguous bool (or other 1-byte: non-zero is true) buffers;
 *       keep: a writable C-contiguous 1-byte buffer (numpy bool), all of the same length, one
 *       entry per packet in time order within each flow.  keep[i] is set to 1 for every row the
 *       endpoint state machine reads (the first of each kind per flow and direction, and the
 *       responder's first pure ACK after the originator's first FIN or RST); other entries are
 *       left as they are.  A flow number negative or above MAX_FLOW (PY_SSIZE_T_MAX / 64)
 *       raises ValueError (nothing is changed).
 *       tests/test_tcpstate.py compares it with the numpy version (flows.state_event_rows_py).
 *
 *   seq_extents(flow, from_orig, flags, is_tcp, seq, ack, plen, end, acked) -> None
 *       flows.seq_extents in three passes: flow, flags, seq, ack, plen: C-contiguous buffers of
 *       native int64; from_orig, is_tcp: 1-byte buffers (non-zero is true); end, acked: writable
 *       int64 buffers; all of the same length, one entry per packet in (flow, time) order.  Every
 *       entry of end and acked is written (-1 where not applicable).  A flow number negative
 *       or above MAX_FLOW raises ValueError (nothing is written).  tests/test_tcpstate.py compares it with the
 *       numpy version (flows.seq_extents_py).
 *
 *   history_codes(flow, from_orig, flags, is_tcp, seq, plen, max_repeats, code, keep) -> None
 *       flows.history_codes in two passes: flow, flags, seq, plen: C-contiguous native int64;
 *       from_orig, is_tcp: 1-byte buffers (non-zero is true); code: writable int64, keep:
 *       writable 1-byte (numpy bool); all of the same length.  Every entry of code (-1: no
 *       letter) and keep is written.  A flow number negative or above MAX_FLOW raises
 *       ValueError (nothing is written).  tests/test_tcpstate.py compares it with flows.history_codes_py.
 *
 *   key_order(h, o, cols, out, start) -> bool
 *       flows._flow_order's sort by key hash and its collision check, in two passes over the
 *       rows (a table of the distinct hashes, sorted): out = o[numpy.argsort(h[o],
 *       kind="stable")]; start[i] = 1 where out[i] begins a run of equal hashes, else 0; the
 *       result: whether some column of cols differs between two rows of one hash (a hash
 *       collision).  h: C-contiguous 8-byte integers (read as uint64); o: C-contiguous native
 *       int64, every entry in [0, len(h)); cols: a sequence of C-contiguous 8-byte integer
 *       buffers of h's length; out: writable int64 of o's length (not o); start: writable 1-byte
 *       of o's length; out and start sharing no memory with h, o, cols or each other; fewer
 *       than 2**31 rows (its tables: ~44 bytes a row at most).  Else ValueError (or
 *       TypeError), out and start unchanged.
 *       tests/test_flow_order_compiled.py compares it with the numpy steps.
 *
 *   quad_texts(a) -> list of str
 *       addresses.dotted_quads for flows.address_text: the dotted-quad text of each a[i] (as
 *       str(ipaddress.IPv4Address(a[i])), "198.51.100.7").  a: C-contiguous 8-byte integers
 *       read as uint64, each at most 2**32-1 (else ValueError).  tests/test_flow_order_compiled.py
 *       compares it with dotted_quads.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include "_buffers.h"
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* flows.py: INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET = range(7) */
enum { INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET };
/* TCP flag bits (flows.py: FIN, SYN, RST, ACK) */
enum { F_FIN = 0x01, F_SYN = 0x02, F_RST = 0x04, F_ACK = 0x10 };

/* The largest flow number event_rows, seq_extents and history_codes take: their tables have
 * a few cells of up to 8 bytes per flow (history_codes: 6 int64 per flow), so (flow + 1) * 48
 * bytes must not wrap a size_t, nor flow * 2 + 1 an int64 (a larger one wrote outside the
 * tables: a crash or heap corruption).  Larger ones raise ValueError. */
#define MAX_FLOW ((int64_t)(PY_SSIZE_T_MAX / 64))

static int
get_int8s(PyObject *obj, Py_buffer *view, const char *what)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    const char *f = view->format ? view->format : "B";
    if (*f == '@' || *f == '=' || *f == '<' || *f == '>' || *f == '!')
        f++;
    if (view->itemsize != 1 || strcmp(f, "b") != 0) {
        PyErr_Format(PyExc_TypeError, "%s: a writable array of int8 expected (format %s)", what,
                     view->format ? view->format : "B");
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* TCP_Endpoint::SetState: the previous state kept when the state changes */
#define SET(st, prev, v) do { if ((st) != (v)) { (prev) = (st); (st) = (v); } } while (0)

static PyObject *
endpoint_states(PyObject *self, PyObject *args)
{
    PyObject *fl_o, *io_o, *fg_o, *ln_o, *os_o, *rs_o;
    Py_buffer fl, io, fg, ln, os, rs;
    PyObject *result = NULL;
    int8_t *op = NULL, *rp = NULL;

    if (!PyArg_ParseTuple(args, "OOOOOO:endpoint_states", &fl_o, &io_o, &fg_o, &ln_o, &os_o, &rs_o))
        return NULL;
    if (get_8byte_ints(fl_o, &fl, "flow", 0, 0) < 0)
        return NULL;
    if (get_8byte_ints(io_o, &io, "from_orig", 0, 0) < 0)
        goto release_fl;
    if (get_8byte_ints(fg_o, &fg, "flags", 0, 0) < 0)
        goto release_io;
    if (get_8byte_ints(ln_o, &ln, "plen", 0, 0) < 0)
        goto release_fg;
    if (get_int8s(os_o, &os, "os") < 0)
        goto release_ln;
    if (get_int8s(rs_o, &rs, "rs") < 0)
        goto release_os;

    Py_ssize_t n = fl.len / 8, nf = os.len;
    if (io.len / 8 != n || fg.len / 8 != n || ln.len / 8 != n || rs.len != nf) {
        PyErr_SetString(PyExc_ValueError, "endpoint_states: arrays of different lengths");
        goto release_rs;
    }
    const int64_t *F = fl.buf, *IO = io.buf, *FG = fg.buf, *LN = ln.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (F[i] < 0 || F[i] >= nf) {
            PyErr_Format(PyExc_ValueError, "endpoint_states: flow number %lld (event %zd) outside 0..%zd",
                         (long long)F[i], i, nf - 1);
            goto release_rs;
        }
    }
    op = calloc(nf ? nf : 1, 1);     /* prev_state per endpoint */
    rp = calloc(nf ? nf : 1, 1);
    if (op == NULL || rp == NULL) {
        PyErr_NoMemory();
        goto release_rs;
    }
    int8_t *OS = os.buf, *RS = rs.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t f = (Py_ssize_t)F[i];
        int orig = IO[i] != 0;
        int64_t g = FG[i];
        int syn = (g & F_SYN) != 0, ack = (g & F_ACK) != 0, fin = (g & F_FIN) != 0, rst = (g & F_RST) != 0;
        /* e: this packet's sender's endpoint, p: its peer */
        int e = orig ? OS[f] : RS[f], ep = orig ? op[f] : rp[f];
        int p = orig ? RS[f] : OS[f], pp = orig ? rp[f] : op[f];
        int e0 = e;
        if (e0 == INACTIVE) {                                   /* UpdateInactiveState */
            if (syn && orig)
                SET(e, ep, ack ? SYN_ACK_SENT : SYN_SENT);
            if (syn && !orig && p == SYN_SENT)
                SET(p, pp, ESTABLISHED);
            if (syn && !orig)
                SET(e, ep, ESTABLISHED);
            if (fin)
                SET(e, ep, CLOSED);
            if (rst)
                SET(e, ep, RESET);
            if (e == INACTIVE) {
                /* a responder's pure ACK while the originator is in SYN_SENT leaves it INACTIVE */
                int skip = !orig && LN[i] <= 0 && p == SYN_SENT;
                if (!skip)
                    SET(e, ep, (ack && p == ESTABLISHED) ? ESTABLISHED : PARTIAL);
            }
        } else if (e0 == SYN_SENT || e0 == SYN_ACK_SENT) {     /* UpdateSYN_SentState */
            if (fin)
                SET(e, ep, CLOSED);
            if (rst)
                SET(e, ep, RESET);
        } else if (e0 == ESTABLISHED || e0 == PARTIAL) {        /* UpdateEstablishedState */
            if (syn && !ack && e == PARTIAL && p == INACTIVE)
                SET(e, ep, SYN_SENT);
            if (fin && !rst) {
                SET(e, ep, CLOSED);
                if (p == RESET && pp == CLOSED)                 /* the peer's FIN then RST */
                    SET(p, pp, CLOSED);
            }
            if (rst)
                SET(e, ep, RESET);
        } else if (e0 == CLOSED) {                              /* UpdateClosedState */
            if (rst && p != CLOSED)
                SET(e, ep, RESET);
        }                                                       /* (UpdateResetState: nothing) */
        if (orig) {
            OS[f] = (int8_t)e; op[f] = (int8_t)ep; RS[f] = (int8_t)p; rp[f] = (int8_t)pp;
        } else {
            RS[f] = (int8_t)e; rp[f] = (int8_t)ep; OS[f] = (int8_t)p; op[f] = (int8_t)pp;
        }
    }
    Py_INCREF(Py_None);
    result = Py_None;
release_rs:
    free(op);
    free(rp);
    PyBuffer_Release(&rs);
release_os:
    PyBuffer_Release(&os);
release_ln:
    PyBuffer_Release(&ln);
release_fg:
    PyBuffer_Release(&fg);
release_io:
    PyBuffer_Release(&io);
release_fl:
    PyBuffer_Release(&fl);
    return result;
}

/* A C-contiguous buffer of 1-byte items (numpy bool, int8, uint8); writable if asked. */
static int
get_bytes1(PyObject *obj, Py_buffer *view, const char *what, int writable)
{
    if (PyObject_GetBuffer(obj, view, (writable ? PyBUF_WRITABLE : 0) | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    if (view->itemsize != 1) {
        PyErr_Format(PyExc_TypeError, "%s: an array of 1-byte items (bool) expected (format %s)", what,
                     view->format ? view->format : "B");
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* The buffers `v` of the `count` arrays `o` (1-byte items where `one_byte`, else 8-byte
 * integers; writable from index `first_writable` on), all of one length: that length, or -1 with
 * an error set.  `*held` counts the buffers taken, for the caller to release. */
static Py_ssize_t
get_columns(PyObject **o, Py_buffer *v, int count, const char *const *names, const int *one_byte,
            int first_writable, const char *fname, int *held)
{
    for (*held = 0; *held < count; (*held)++) {
        int k = *held, wr = k >= first_writable;
        if ((one_byte[k] ? get_bytes1(o[k], &v[k], names[k], wr)
                         : get_8byte_ints(o[k], &v[k], names[k], wr, 0)) < 0)
            return -1;
    }
    Py_ssize_t n = v[0].len / v[0].itemsize;
    for (int k = 1; k < count; k++) {
        if (v[k].len / v[k].itemsize != n) {
            PyErr_Format(PyExc_ValueError, "%s: arrays of different lengths", fname);
            return -1;
        }
    }
    return n;
}

/* per flow: bits 0..5 the originator's kinds seen, 6..11 the responder's, then: */
#define CLOSED_O 0x1000     /* the originator sent a FIN or RST */
#define POST_R   0x2000     /* the responder's pure ACK after it was taken */

static PyObject *
event_rows(PyObject *self, PyObject *args)
{
    PyObject *fl_o, *io_o, *fg_o, *tc_o, *ln_o, *kp_o;
    Py_buffer fl, io, fg, tc, ln, kp;
    PyObject *result = NULL;
    uint16_t *seen = NULL;

    if (!PyArg_ParseTuple(args, "OOOOOO:event_rows", &fl_o, &io_o, &fg_o, &tc_o, &ln_o, &kp_o))
        return NULL;
    if (get_8byte_ints(fl_o, &fl, "flow", 0, 0) < 0)
        return NULL;
    if (get_bytes1(io_o, &io, "from_orig", 0) < 0)
        goto release_fl;
    if (get_8byte_ints(fg_o, &fg, "flags", 0, 0) < 0)
        goto release_io;
    if (get_bytes1(tc_o, &tc, "is_tcp", 0) < 0)
        goto release_fg;
    if (get_8byte_ints(ln_o, &ln, "plen", 0, 0) < 0)
        goto release_tc;
    if (get_bytes1(kp_o, &kp, "keep", 1) < 0)
        goto release_ln;

    Py_ssize_t n = fl.len / 8;
    if (io.len != n || fg.len / 8 != n || tc.len != n || ln.len / 8 != n || kp.len != n) {
        PyErr_SetString(PyExc_ValueError, "event_rows: arrays of different lengths");
        goto release_kp;
    }
    const int64_t *F = fl.buf, *FG = fg.buf, *LN = ln.buf;
    const unsigned char *IO = io.buf, *TC = tc.buf;
    unsigned char *K = kp.buf;
    int64_t nf = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (F[i] < 0 || F[i] > MAX_FLOW) {
            PyErr_Format(PyExc_ValueError, "event_rows: flow number %lld (row %zd) %s",
                         (long long)F[i], i, F[i] < 0 ? "negative" : "too large");
            goto release_kp;
        }
        if (F[i] >= nf)
            nf = F[i] + 1;
    }
    seen = calloc(nf ? (size_t)nf : 1, sizeof(uint16_t));
    if (seen == NULL) {
        PyErr_NoMemory();
        goto release_kp;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!TC[i] || LN[i] < 0)                /* not TCP, or a cut TCP header: no event */
            continue;
        int64_t g = FG[i];
        int syn = (g & F_SYN) != 0, ack = (g & F_ACK) != 0, fin = (g & F_FIN) != 0, rst = (g & F_RST) != 0;
        int plain = !syn && !fin && !rst;
        unsigned kinds = (syn && !ack ? 1u : 0u) | (syn && ack ? 2u : 0u) | (fin ? 4u : 0u)
                         | (rst ? 8u : 0u) | (plain && LN[i] <= 0 ? 16u : 0u) | (plain && LN[i] > 0 ? 32u : 0u);
        int orig = IO[i] != 0;
        uint16_t *s = &seen[F[i]];
        unsigned mine = orig ? kinds : kinds << 6;
        if (mine & ~(unsigned)*s)
            K[i] = 1;
        *s |= (uint16_t)mine;
        if (!orig && (kinds & 16u) && (*s & CLOSED_O) && !(*s & POST_R)) {
            K[i] = 1;
            *s |= POST_R;
        }
        if (orig && (fin || rst))
            *s |= CLOSED_O;
    }
    Py_INCREF(Py_None);
    result = Py_None;
release_kp:
    free(seen);
    PyBuffer_Release(&kp);
release_ln:
    PyBuffer_Release(&ln);
release_tc:
    PyBuffer_Release(&tc);
release_fg:
    PyBuffer_Release(&fg);
release_io:
    PyBuffer_Release(&io);
release_fl:
    PyBuffer_Release(&fl);
    return result;
}

/* distinct SYN ISNs of a (flow, direction) seq_extents looks at for its start */
#define SEQ_ISNS 8

/* (v - b) modulo 2^32 when below 2^31 (v at or after b in sequence space), else -1 */
static inline int64_t
rel32(int64_t v, int64_t b)
{
    uint64_t r = ((uint64_t)v - (uint64_t)b) & 0xFFFFFFFFu;
    return r < 0x80000000u ? (int64_t)r : -1;
}

static PyObject *
seq_extents(PyObject *self, PyObject *args)
{
    PyObject *o[9];
    Py_buffer v[9];
    int held = 0;
    PyObject *result = NULL;
    int64_t *base = NULL, *base_at = NULL, *ack_at = NULL;
    /* per group, up to SEQ_ISNS distinct SYN ISNs + 1, the first and the last SYN's position with each */
    int64_t *isn = NULL, *isn_at = NULL, *isn_last = NULL;
    unsigned char *have = NULL, *seen = NULL, *nisn = NULL, *isn_acked = NULL, *last_k = NULL;
    static const char *const names[9] = {"flow", "from_orig", "flags", "is_tcp", "seq", "ack", "plen", "end", "acked"};
    static const int one_byte[9] = {0, 1, 0, 1, 0, 0, 0, 0, 0};

    if (!PyArg_ParseTuple(args, "OOOOOOOOO:seq_extents", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6],
                          &o[7], &o[8]))
        return NULL;
    Py_ssize_t n = get_columns(o, v, 9, names, one_byte, 7, "seq_extents", &held);
    if (n < 0)
        goto done;
    const int64_t *F = v[0].buf, *FG = v[2].buf, *SQ = v[4].buf, *AK = v[5].buf, *LN = v[6].buf;
    const unsigned char *IO = v[1].buf, *TC = v[3].buf;
    int64_t *END = v[7].buf, *ACKED = v[8].buf;
    int64_t gmax = -1, gall = -1;            /* the largest group: of the rows used, of all TCP rows */
    for (Py_ssize_t i = 0; i < n; i++) {
        if (F[i] < 0 || F[i] > MAX_FLOW) {
            PyErr_Format(PyExc_ValueError, "seq_extents: flow number %lld (row %zd) %s",
                         (long long)F[i], i, F[i] < 0 ? "negative" : "too large");
            goto done;
        }
        if (!TC[i])
            continue;
        int64_t g = F[i] * 2 + (IO[i] ? 0 : 1);
        if (g > gall)
            gall = g;
        if (LN[i] >= 0 && g > gmax)
            gmax = g;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        END[i] = ACKED[i] = -1;
    if (gmax < 0) {
        Py_INCREF(Py_None);
        result = Py_None;
        goto done;
    }
    size_t nb = (size_t)gmax + 2, ns = (size_t)(gall + 1 > (int64_t)nb ? gall + 1 : (int64_t)nb);
    base = calloc(nb, sizeof(int64_t));
    base_at = calloc(nb, sizeof(int64_t));
    ack_at = calloc(nb, sizeof(int64_t));
    have = calloc(nb, 1);
    seen = calloc(ns, 1);
    isn = calloc(nb * SEQ_ISNS, sizeof(int64_t));
    isn_at = calloc(nb * SEQ_ISNS, sizeof(int64_t));
    isn_last = calloc(nb * SEQ_ISNS, sizeof(int64_t));
    nisn = calloc(nb, 1);
    isn_acked = calloc(nb * SEQ_ISNS, 1);
    last_k = calloc(nb, 1);
    if (!base || !base_at || !ack_at || !have || !seen || !isn || !isn_at || !isn_last || !nisn || !isn_acked
            || !last_k) {
        PyErr_NoMemory();
        goto done;
    }
    /* the start of each (flow, direction): the ISN + 1 of its last SYN the other side
     * acknowledged (ISN + 1 as an acknowledgement number), else of its last SYN, from the first
     * SYN with that ISN on (the first SEQ_ISNS distinct ISNs of a direction are looked at); else
     * its first packet's seq; the other side's acknowledgements count from its last SYN on
     * (positions counted along the rows used: TCP with a header, plen >= 0) */
    int64_t pos = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!TC[i])
            continue;
        int64_t g = F[i] * 2 + (IO[i] ? 0 : 1);
        seen[g] = 1;
        if (LN[i] < 0)
            continue;
        if (FG[i] & F_SYN) {
            uint64_t b = ((uint64_t)SQ[i] + 1) & 0xFFFFFFFFu;
            int k = 0;
            while (k < nisn[g] && (uint64_t)isn[g * SEQ_ISNS + k] != b)
                k++;
            if (k == nisn[g] && k < SEQ_ISNS) {
                isn[g * SEQ_ISNS + k] = (int64_t)b;
                isn_at[g * SEQ_ISNS + k] = pos;
                nisn[g]++;
            }
            if (k < nisn[g]) {                /* (the last SYN with each ISN looked at) */
                isn_last[g * SEQ_ISNS + k] = pos;
                last_k[g] = (unsigned char)(k + 1);
            }
            ack_at[g] = pos;                  /* (the peer's acknowledgements count from the last SYN on) */
        } else if (!have[g] && !nisn[g]) {
            base[g] = SQ[i];
            base_at[g] = ack_at[g] = pos;
            have[g] = 1;
        }
        pos++;
    }
    /* which ISNs the other side acknowledged */
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!TC[i] || LN[i] < 0)
            continue;
        int64_t fl = FG[i], u = (F[i] * 2 + (IO[i] ? 0 : 1)) ^ 1;
        if ((fl & F_RST) || !(fl & F_ACK) || AK[i] == 0 || u >= (int64_t)nb || !nisn[u])
            continue;
        uint64_t a = (uint64_t)AK[i] & 0xFFFFFFFFu;
        for (int k = 0; k < nisn[u]; k++)
            if ((uint64_t)isn[u * SEQ_ISNS + k] == a)
                isn_acked[u * SEQ_ISNS + k] = 1;
    }
    /* the ISN of the last SYN acknowledged, else of the last SYN */
    for (size_t g = 0; g < nb; g++) {
        if (!last_k[g])
            continue;
        int k = last_k[g] - 1;
        int64_t latest = -1;
        for (int j = 0; j < nisn[g]; j++)
            if (isn_acked[g * SEQ_ISNS + j] && isn_last[g * SEQ_ISNS + j] > latest) {
                latest = isn_last[g * SEQ_ISNS + j];
                k = j;
            }
        base[g] = isn[g * SEQ_ISNS + k];
        base_at[g] = isn_at[g * SEQ_ISNS + k];
        have[g] = 2;
    }
    /* a direction none of whose packets was captured: the other side's first acknowledgement */
    pos = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!TC[i] || LN[i] < 0)
            continue;
        int64_t fl = FG[i], u = (F[i] * 2 + (IO[i] ? 0 : 1)) ^ 1;
        if (!(fl & F_RST) && (fl & F_ACK) && AK[i] != 0 && !seen[u] && !have[u]) {
            base[u] = AK[i];
            base_at[u] = ack_at[u] = pos - 1; /* (that acknowledgement itself counts: 0 bytes) */
            have[u] = 1;
        }
        pos++;
    }
    pos = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!TC[i] || LN[i] < 0)
            continue;
        int64_t fl = FG[i], g = F[i] * 2 + (IO[i] ? 0 : 1), peer = g ^ 1;
        int ok = (fl & F_RST) == 0;
        uint64_t e = (uint64_t)SQ[i] + ((fl & F_SYN) != 0) + (uint64_t)LN[i] + ((fl & F_FIN) != 0);
        /* (a SYN with another ISN than the start's, a stale answer's: none of this space) */
        int other_isn = (fl & F_SYN) && ((((uint64_t)SQ[i] + 1) ^ (uint64_t)base[g]) & 0xFFFFFFFFu);
        END[i] = ok && !other_isn && pos >= base_at[g] ? rel32((int64_t)e, base[g]) : -1;
        int acking = ok && (fl & F_ACK) && AK[i] != 0;
        ACKED[i] = acking && have[peer] && pos > ack_at[peer] ? rel32(AK[i], base[peer]) : -1;
        pos++;
    }
    Py_INCREF(Py_None);
    result = Py_None;
done:
    free(base);
    free(base_at);
    free(ack_at);
    free(have);
    free(seen);
    free(isn);
    free(isn_at);
    free(isn_last);
    free(nisn);
    free(isn_acked);
    free(last_k);
    while (held > 0)
        PyBuffer_Release(&v[--held]);
    return result;
}

static PyObject *
history_codes(PyObject *self, PyObject *args)
{
    PyObject *o[8];
    Py_buffer v[8];
    long long max_repeats;
    int held = 0;
    PyObject *result = NULL;
    int64_t *last_at = NULL, *last_v = NULL, *count = NULL, *last_open = NULL;
    unsigned char *once = NULL, *cst = NULL;
    static const char *const names[8] = {"flow", "from_orig", "flags", "is_tcp", "seq", "plen", "code", "keep"};
    static const int one_byte[8] = {0, 1, 0, 1, 0, 0, 0, 1};

    if (!PyArg_ParseTuple(args, "OOOOOOLOO:history_codes", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5],
                          &max_repeats, &o[6], &o[7]))
        return NULL;
    Py_ssize_t n = get_columns(o, v, 8, names, one_byte, 6, "history_codes", &held);
    if (n < 0)
        goto done;
    const int64_t *F = v[0].buf, *FG = v[2].buf, *SQ = v[4].buf, *LN = v[5].buf;
    const unsigned char *IO = v[1].buf, *TC = v[3].buf;
    int64_t *CODE = v[6].buf;
    unsigned char *KEEP = v[7].buf;
    int64_t fmax = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (F[i] < 0 || F[i] > MAX_FLOW) {
            PyErr_Format(PyExc_ValueError, "history_codes: flow number %lld (row %zd) %s",
                         (long long)F[i], i, F[i] < 0 ? "negative" : "too large");
            goto done;
        }
        if (F[i] > fmax)
            fmax = F[i];
    }
    size_t ng = (size_t)(fmax + 1) * 2;       /* (flow, direction) groups */
    size_t cells = ng > 0 ? ng * 3 : 1;       /* (group, kind) cells */
    last_at = malloc(cells * sizeof(int64_t));
    last_v = calloc(cells, sizeof(int64_t));
    count = calloc(cells, sizeof(int64_t));
    once = calloc(ng > 0 ? ng : 1, 1);
    cst = calloc(ng > 0 ? ng : 1, 1);
    last_open = malloc((ng > 0 ? ng : 1) * sizeof(int64_t));
    if (!last_at || !last_v || !count || !once || !cst || !last_open) {
        PyErr_NoMemory();
        goto done;
    }
    for (size_t k = 0; k < cells; k++)
        last_at[k] = -1;
    for (size_t k = 0; k < (ng > 0 ? ng : 1); k++)
        last_open[k] = -1;
    /* each row's kind of single letter (S/H 0, F 1, R 2; -1 none), and the last row of each
     * (group, kind) */
#define KIND(fl, tcp) \
    (!(tcp) ? -1 : ((((fl) & F_SYN) != 0) + (((fl) & F_FIN) != 0) + (((fl) & F_RST) != 0)) != 1 ? -1 \
     : ((fl) & F_SYN) ? 0 : ((fl) & F_FIN) ? 1 : 2)
    /* CLOSE_STEP: a direction's state for Zeek's SYN letters (cst: 0 no packet yet, 1 open, 2
     * closed: it sent a FIN or RST, 3 its first packet was a RST alone, which Zeek's init_endpoint
     * treats as open for ever); a row of a cut TCP header (plen < 0) is no packet (Zeek skips it) */
#define CLOSE_STEP(c, fl, tcp, ln) \
    do { \
        if ((tcp) && (ln) >= 0) { \
            int c_syn = ((fl) & F_SYN) != 0, c_fin = ((fl) & F_FIN) != 0, c_rst = ((fl) & F_RST) != 0; \
            if ((c) == 0) \
                (c) = c_rst && !c_syn && !c_fin ? 3 : (c_fin || c_rst) ? 2 : 1; \
            else if ((c) == 1 && (c_fin || c_rst)) \
                (c) = 2; \
        } \
    } while (0)
    for (Py_ssize_t i = 0; i < n; i++) {
        int kind = KIND(FG[i], TC[i]);
        size_t g = (size_t)F[i] * 2 + (IO[i] ? 0 : 1);
        if (kind >= 0)
            last_at[g * 3 + kind] = i;
        if (kind == 0 && cst[g] != 2)
            last_open[g] = i;
        CLOSE_STEP(cst[g], FG[i], TC[i], LN[i]);
    }
    memset(cst, 0, ng > 0 ? ng : 1);
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t fl = FG[i];
        int tcp = TC[i] != 0, d = IO[i] ? 0 : 1;
        size_t g = (size_t)F[i] * 2 + d;
        int syn = (fl & F_SYN) != 0, ack = (fl & F_ACK) != 0, fin = (fl & F_FIN) != 0, rst = (fl & F_RST) != 0;
        int bits = syn + fin + rst;
        int none = tcp && bits == 0;
        int64_t code = -1;
        int keep = 0;
        /* A, D, I, Q: once per direction (history_events' columns 2, 3, 6, 7) */
        int j = none && ack && LN[i] <= 0 ? 2 : (none || !tcp) && LN[i] > 0 ? 3
                : tcp && fin && rst ? 6 : tcp && bits > 1 ? 7 : -1;
        if (j >= 0 && !(once[g] & (1u << (j & 7)))) {
            once[g] |= (unsigned char)(1u << (j & 7));
            code = j + 8 * d;
        }
        int kind = KIND(fl, tcp);
        if (kind >= 0) {
            size_t k = g * 3 + kind;
            uint64_t val = (uint64_t)SQ[i] & 0xFFFFFFFFu;
            if (kind == 1)
                val = (val + (uint64_t)(LN[i] > 0 ? LN[i] : 0)) & 0xFFFFFFFFu;
            int writes = count[k] == 0 ? 1 : (int64_t)val != last_v[k];
            /* (count[k] == 0: the group's first row; every first row writes, so a group with
             * rows has count >= 1 after it) */
            /* a SYN or SYN-ACK again from a direction that has not closed writes nothing: Zeek's
             * init_endpoint restarts its sequence space at it, so its relative number is 0 as the
             * first one's was (only after a FIN or RST is it compared) */
            if (kind == 0 && count[k] > 0 && cst[g] != 2)
                writes = 0;
            if (kind == 0 && last_open[g] == i)
                keep = 1;
            last_v[k] = (int64_t)val;
            if (writes)
                count[k]++;
            int within = count[k] <= 1 + max_repeats;
            if (writes && within) {
                code = (kind == 0 ? (ack ? 1 : 0) : kind == 1 ? 4 : 5) + 8 * d;
                keep = 1;
            }
            if (last_at[k] == i && within)
                keep = 1;
        }
        CODE[i] = code;
        KEEP[i] = (unsigned char)(keep || code >= 0);
        CLOSE_STEP(cst[g], fl, tcp, LN[i]);
    }
#undef KIND
#undef CLOSE_STEP
    Py_INCREF(Py_None);
    result = Py_None;
done:
    free(last_at);
    free(last_v);
    free(count);
    free(once);
    free(cst);
    free(last_open);
    while (held > 0)
        PyBuffer_Release(&v[--held]);
    return result;
}

/* key_order's groups, sorted by hash (distinct within the batch): the hash with its group, so
 * that placing the groups reads neither h again nor the table (h may be written meanwhile: by
 * another thread, the GIL being released, and it must not send a probe to an empty slot) */
struct group_hash {
    uint64_t hash;
    int32_t group;
};

static int
cmp_group_hash(const void *a, const void *b)
{
    uint64_t x = ((const struct group_hash *)a)->hash, y = ((const struct group_hash *)b)->hash;
    if (x != y)
        return (x > y) - (x < y);
    int32_t g = ((const struct group_hash *)a)->group, k = ((const struct group_hash *)b)->group;
    return (g > k) - (g < k);
}

static PyObject *
key_order(PyObject *self, PyObject *args)
{
    PyObject *h_o, *o_o, *cols_o, *out_o, *st_o, *seq = NULL;
    Py_buffer h, o, out, st;
    Py_buffer *cv = NULL;
    Py_ssize_t held = 0, nc = 0;
    PyObject *result = NULL;
    int32_t *table = NULL, *grep = NULL, *gcount = NULL, *row_group = NULL;   /* (rows < 2**31) */
    struct group_hash *sorted = NULL;

    if (!PyArg_ParseTuple(args, "OOOOO:key_order", &h_o, &o_o, &cols_o, &out_o, &st_o))
        return NULL;
    if (get_8byte_ints(h_o, &h, "h", 0, 1) < 0)
        return NULL;
    if (get_8byte_ints(o_o, &o, "o", 0, 0) < 0)
        goto release_h;
    if (get_8byte_ints(out_o, &out, "out", 1, 0) < 0)
        goto release_o;
    if (PyObject_GetBuffer(st_o, &st, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS) < 0)
        goto release_out;
    Py_ssize_t n = o.len / 8, m = h.len / 8;
    if (out.len != o.len || st.itemsize != 1 || st.len != n) {
        PyErr_SetString(PyExc_ValueError, "key_order: out (int64) and start (1-byte) must have o's length");
        goto release_st;
    }
    if (buffers_overlap(&out, &o) || buffers_overlap(&out, &h) || buffers_overlap(&st, &o)
        || buffers_overlap(&st, &h) || buffers_overlap(&st, &out)) {
        PyErr_SetString(PyExc_ValueError, "key_order: out or start shares memory with o, h or each other");
        goto release_st;
    }
    if (n >= INT32_MAX || m >= INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "key_order: 2**31 rows or more");
        goto release_st;
    }
    seq = PySequence_Tuple(cols_o);   /* (a copy: a list could change while its buffers are taken) */
    if (seq == NULL)
        goto release_st;
    nc = PyTuple_GET_SIZE(seq);
    cv = PyMem_Calloc(nc ? (size_t)nc : 1, sizeof(Py_buffer));
    if (cv == NULL) {
        PyErr_NoMemory();
        goto release_seq;
    }
    while (held < nc) {
        if (get_8byte_ints(PyTuple_GET_ITEM(seq, held), &cv[held], "cols", 0, 1) < 0)
            goto release_cols;
        held++;
        if (cv[held - 1].len / 8 != m) {
            PyErr_SetString(PyExc_ValueError, "key_order: a column of another length than h");
            goto release_cols;
        }
        if (buffers_overlap(&cv[held - 1], &out) || buffers_overlap(&cv[held - 1], &st)) {
            PyErr_SetString(PyExc_ValueError, "key_order: out or start shares memory with a column");
            goto release_cols;
        }
    }
    const uint64_t *H = h.buf;
    const int64_t *O = o.buf;
    int64_t *R = out.buf;
    unsigned char *S = st.buf;
    size_t cap = 16;
    while (cap < 2 * (size_t)n)
        cap <<= 1;
    table = malloc(cap * sizeof(int32_t));
    grep = malloc(((size_t)n + 1) * sizeof(int32_t));
    gcount = malloc(((size_t)n + 1) * sizeof(int32_t));
    row_group = malloc(((size_t)n + 1) * sizeof(int32_t));
    sorted = malloc(((size_t)n + 1) * sizeof(struct group_hash));
    if (!table || !grep || !gcount || !row_group || !sorted) {
        PyErr_NoMemory();
        goto release_cols;
    }
    int differ = 0;
    Py_ssize_t bad = -1;
    int64_t bad_value = 0;
    Py_BEGIN_ALLOW_THREADS
    const uint64_t mask = cap - 1;
    for (size_t s = 0; s < cap; s++)
        table[s] = -1;
    int32_t ng = 0;
    /* each row's group (its hash), in time order; a row's key compared with its group's first */
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t oi = O[i];   /* checked where it is used (another thread may write o meanwhile) */
        if (oi < 0 || oi >= m) {
            bad = i;
            bad_value = oi;
            break;
        }
        int32_t r = (int32_t)oi;
        uint64_t k = H[r];
        size_t s = (size_t)(k & mask);
        int32_t g;
        for (;;) {
            g = table[s];
            if (g < 0) {
                g = ng++;
                table[s] = g;
                grep[g] = r;
                gcount[g] = 0;
                break;
            }
            if (H[grep[g]] == k)
                break;
            s = (s + 1) & mask;
        }
        gcount[g]++;
        row_group[i] = g;
        if (!differ) {
            int32_t f = grep[g];
            for (Py_ssize_t c = 0; c < nc; c++) {
                const uint64_t *K = cv[c].buf;
                if (K[r] != K[f]) {
                    differ = 1;
                    break;
                }
            }
        }
    }
    /* groups by increasing hash: each group's first position (in gcount's place) */
    if (bad < 0) {
        for (int32_t g = 0; g < ng; g++) {
            sorted[g].hash = H[grep[g]];
            sorted[g].group = g;
        }
        qsort(sorted, (size_t)ng, sizeof(struct group_hash), cmp_group_hash);
        int32_t at = 0;
        memset(S, 0, (size_t)n);
        for (int32_t j = 0; j < ng; j++) {
            int32_t g = sorted[j].group;
            int32_t c = gcount[g];
            gcount[g] = at;
            S[at] = 1;
            at += c;
        }
        for (Py_ssize_t i = 0; i < n; i++)
            R[gcount[row_group[i]]++] = O[i];
    }
    Py_END_ALLOW_THREADS
    if (bad >= 0)
        PyErr_Format(PyExc_ValueError, "key_order: o[%zd] = %lld out of range", bad, (long long)bad_value);
    else
        result = PyBool_FromLong(differ);
release_cols:
    free(table);
    free(grep);
    free(gcount);
    free(row_group);
    free(sorted);
    while (held > 0)
        PyBuffer_Release(&cv[--held]);
    PyMem_Free(cv);
release_seq:
    Py_XDECREF(seq);
release_st:
    PyBuffer_Release(&st);
release_out:
    PyBuffer_Release(&out);
release_o:
    PyBuffer_Release(&o);
release_h:
    PyBuffer_Release(&h);
    return result;
}

static PyObject *
quad_texts(PyObject *self, PyObject *args)
{
    PyObject *a_o;
    Py_buffer a;
    PyObject *result = NULL;

    if (!PyArg_ParseTuple(args, "O:quad_texts", &a_o))
        return NULL;
    if (get_8byte_ints(a_o, &a, "a", 0, 1) < 0)
        return NULL;
    Py_ssize_t n = a.len / 8;
    const uint64_t *A = a.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (A[i] > 0xFFFFFFFFu) {
            PyErr_Format(PyExc_ValueError, "quad_texts: a[%zd] is no IPv4 address", i);
            goto release_a;
        }
    }
    result = PyList_New(n);
    if (result == NULL)
        goto release_a;
    for (Py_ssize_t i = 0; i < n; i++) {
        char buf[16];
        int len = 0;
        for (int s = 24; s >= 0; s -= 8) {
            unsigned v = (unsigned)(A[i] >> s) & 0xFFu;
            if (v >= 100)
                buf[len++] = (char)('0' + v / 100);
            if (v >= 10)
                buf[len++] = (char)('0' + v / 10 % 10);
            buf[len++] = (char)('0' + v % 10);
            if (s)
                buf[len++] = '.';
        }
        PyObject *t = PyUnicode_FromStringAndSize(buf, len);
        if (t == NULL) {
            Py_CLEAR(result);
            goto release_a;
        }
        PyList_SET_ITEM(result, i, t);
    }
release_a:
    PyBuffer_Release(&a);
    return result;
}

static PyMethodDef methods[] = {


    {"endpoint_states", endpoint_states, METH_VARARGS,
     "endpoint_states(flow, from_orig, flags, plen, os, rs): Zeek's TCP endpoint states, in place"},
    {"event_rows", event_rows, METH_VARARGS,
     "event_rows(flow, from_orig, flags, is_tcp, plen, keep): the rows the state machine reads, set in keep"},
    {"seq_extents", seq_extents, METH_VARARGS,
     "seq_extents(flow, from_orig, flags, is_tcp, seq, ack, plen, end, acked): flows.seq_extents, "
     "written into end and acked"},
    {"history_codes", history_codes, METH_VARARGS,
     "history_codes(flow, from_orig, flags, is_tcp, seq, plen, max_repeats, code, keep): "
     "flows.history_codes, written into code and keep"},
    {"key_order", key_order, METH_VARARGS,
     "key_order(h, o, cols, out, start): o ordered stably by h[o] into out, each hash's first "
     "position set in start; whether cols differ within a hash"},
    {"quad_texts", quad_texts, METH_VARARGS,
     "quad_texts(a): the dotted-quad text of each IPv4 address (0 ... 2**32-1), a list of str"},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_tcpstate",
    "Zeek's TCP endpoint state machine over state events (kscc_traffic.flows._endpoint_states), compiled.",
    -1, methods
};

#ifndef KSCC_SOURCE_SHA256
#define KSCC_SOURCE_SHA256 ""   /* built without setup.py's digest */
#endif

PyMODINIT_FUNC
PyInit__tcpstate(void)
{
    PyObject *m = PyModule_Create(&module);
    /* the digest of the C source this was built from (setup.py; compiled.stale() compares it) */
    if (m != NULL && PyModule_AddStringConstant(m, "source_sha256", KSCC_SOURCE_SHA256) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
