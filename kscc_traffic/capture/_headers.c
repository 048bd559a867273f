/* The fixed-offset header decode of kscc_traffic/capture/decode.py's fast path, compiled.
 *
 *   fast_rows(b, off, cap, lt, rows, out, has_row, nonip, etclass, tpid, v4slow, v6slow, fam,
 *             dport_slow, sport_slow, llc) -> None
 *
 * does, one frame at a time, what decode._chunk does with numpy over a chunk of frames (the
 * numpy path is the fallback when this module is not built, and tests/test_headers_compiled.py
 * checks that both give the same rows on the samples and on random bytes):
 *
 *   b        the capture bytes (uint8 buffer, len(b) >= 96: decode calls the fast path only then)
 *   off, cap, lt   int64 per frame: record offset into b, captured length, link type
 *   rows     bool per frame: frames of a fast link type to decode (others: no row, not counted)
 *   out      tuple of the 25 writable columns of decode's ROW_FIELDS, in that order, each of
 *            len(off) items of PACKET_COLUMNS' dtype; written only at frames given a row
 *   has_row, nonip   bool per frame, written at every frame: given a row here / counted not IP
 *   etclass  int8[65536]: ethertype -> 1 IPv4, 2 IPv6, 3 not IP, 0 the slow path (decode._ETCLASS)
 *   tpid     bool[65536]: VLAN tag protocol ids (decode._TPID)
 *   v4slow, v6slow   bool[256]: IP protocols / next headers left to the slow path
 *   fam      int8[256]: NULL/LOOP address family -> IP version (decode._FAM)
 *   dport_slow, sport_slow   bool[65536]: UDP ports whose datagrams go to the slow path
 *   llc      bool[65536]: Ethernet type/length values of an LLC header (802.3 lengths, JUMBO_LLC)
 *
 * The tables come from decode.py, so the two paths share them.  A frame whose 96-byte window
 * (_WH) would pass the end of b is left to the slow path, as in _chunk.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define WH 96
#define NFIELDS 25
#define V4MAPPED 0xFFFF00000000ULL

static inline uint32_t be16(const unsigned char *p) { return ((uint32_t)p[0] << 8) | p[1]; }
static inline uint32_t be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t be64(const unsigned char *p) { return ((uint64_t)be32(p) << 32) | be32(p + 4); }

/* ROW_FIELDS order, with each column's item size and numpy kind ('i' signed, 'u' unsigned,
 * 'b' bool) */
static const struct { const char *name; int size; char kind; } FIELDS[NFIELDS] = {
    {"vlan", 8, 'i'}, {"ipver", 1, 'u'}, {"src_hi", 8, 'u'}, {"src_lo", 8, 'u'}, {"dst_hi", 8, 'u'},
    {"dst_lo", 8, 'u'}, {"proto", 1, 'u'}, {"sport", 4, 'i'}, {"dport", 4, 'i'},
    {"icmp_type", 2, 'i'}, {"icmp_code", 2, 'i'}, {"tcp_flags", 2, 'u'}, {"seq", 8, 'i'},
    {"ack", 8, 'i'}, {"tcp_win", 4, 'i'}, {"ip_id", 4, 'i'}, {"ip_len", 4, 'i'}, {"ttl", 2, 'i'},
    {"payload_len", 4, 'i'}, {"pl_off", 8, 'i'}, {"pl_cap", 4, 'i'}, {"l2_bcast", 1, 'b'},
    {"l2_out", 1, 'b'}, {"l4_sum", 4, 'i'}, {"unreassembled", 1, 'b'}};
enum { F_VLAN, F_IPVER, F_SRC_HI, F_SRC_LO, F_DST_HI, F_DST_LO, F_PROTO, F_SPORT, F_DPORT,
       F_ICMP_TYPE, F_ICMP_CODE, F_TCP_FLAGS, F_SEQ, F_ACK, F_TCP_WIN, F_IP_ID, F_IP_LEN, F_TTL,
       F_PAYLOAD_LEN, F_PL_OFF, F_PL_CAP, F_L2_BCAST, F_L2_OUT, F_L4_SUM, F_UNREASSEMBLED };

/* the buffer format's kind: 'i', 'u', 'b' or 0 */
static char
kind_of(const Py_buffer *v)
{
    const char *f = v->format ? v->format : "B";
    const uint16_t one = 1;
    if (*f == '@' || *f == '=' || (*f == '<' && *(const unsigned char *)&one == 1))
        f++;
    if (f[0] == 0 || f[1] != 0)
        return 0;
    if (*f == '?')
        return 'b';
    if (strchr("bhilq", *f))
        return 'i';
    if (strchr("BHILQ", *f))
        return 'u';
    return 0;
}

/* obj's buffer: C-contiguous, `len` items of `size` bytes of kind `kind` ('i', 'u', 'b'; 'x':
 * a byte buffer of any kind), writable if asked.  0, or -1 with TypeError / ValueError set. */
static int
get_buf(PyObject *obj, Py_buffer *v, const char *what, Py_ssize_t len, int size, char kind, int writable)
{
    if (PyObject_GetBuffer(obj, v, (writable ? PyBUF_WRITABLE : 0) | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    char k = kind_of(v);
    if (v->itemsize != size || (kind == 'x' ? k == 0 : k != kind)) {
        PyErr_Format(PyExc_TypeError, "%s: %d-byte items of kind %c expected (format %s)", what, size,
                     kind, v->format ? v->format : "B");
        PyBuffer_Release(v);
        return -1;
    }
    if (len >= 0 && v->len / size != len) {
        PyErr_Format(PyExc_ValueError, "%s: %zd items expected, %zd given", what, len, v->len / size);
        PyBuffer_Release(v);
        return -1;
    }
    return 0;
}

#define W(f, T, val) (((T *)col[f])[i] = (T)(val))

static PyObject *
fast_rows(PyObject *self, PyObject *args)
{
    PyObject *ob, *ooff, *ocap, *olt, *orows, *oout, *ohas, *ononip, *oet, *otpid, *ov4, *ov6, *ofam,
        *odps, *osps, *ollc;
    if (!PyArg_ParseTuple(args, "OOOOOO!OOOOOOOOOO", &ob, &ooff, &ocap, &olt, &orows, &PyTuple_Type,
                          &oout, &ohas, &ononip, &oet, &otpid, &ov4, &ov6, &ofam, &odps, &osps, &ollc))
        return NULL;
    if (PyTuple_GET_SIZE(oout) != NFIELDS) {
        PyErr_Format(PyExc_ValueError, "out: %d columns expected", NFIELDS);
        return NULL;
    }
    Py_buffer vb, voff, vcap, vlt, vrows, vhas, vnonip, vet, vtpid, vv4, vv6, vfam, vdps, vsps, vllc;
    Py_buffer vout[NFIELDS];
    Py_buffer *held[15 + NFIELDS];
    int nheld = 0;
    PyObject *ret = NULL;
#define GET(o, v, what, len, size, kind, wr) \
    do { if (get_buf(o, &v, what, len, size, kind, wr) < 0) goto done; held[nheld++] = &v; } while (0)
    GET(ob, vb, "b", -1, 1, 'x', 0);
    GET(ooff, voff, "off", -1, 8, 'i', 0);
    Py_ssize_t n = voff.len / 8;
    GET(ocap, vcap, "cap", n, 8, 'i', 0);
    GET(olt, vlt, "lt", n, 8, 'i', 0);
    GET(orows, vrows, "rows", n, 1, 'b', 0);
    GET(ohas, vhas, "has_row", n, 1, 'b', 1);
    GET(ononip, vnonip, "nonip", n, 1, 'b', 1);
    GET(oet, vet, "etclass", 65536, 1, 'i', 0);
    GET(otpid, vtpid, "tpid", 65536, 1, 'b', 0);
    GET(ov4, vv4, "v4slow", 256, 1, 'b', 0);
    GET(ov6, vv6, "v6slow", 256, 1, 'b', 0);
    GET(ofam, vfam, "fam", 256, 1, 'i', 0);
    GET(odps, vdps, "dport_slow", 65536, 1, 'b', 0);
    GET(osps, vsps, "sport_slow", 65536, 1, 'b', 0);
    GET(ollc, vllc, "llc", 65536, 1, 'b', 0);
    char *col[NFIELDS];
    for (int f = 0; f < NFIELDS; f++) {
        GET(PyTuple_GET_ITEM(oout, f), vout[f], FIELDS[f].name, n, FIELDS[f].size, FIELDS[f].kind, 1);
        col[f] = vout[f].buf;
    }
#undef GET
    {
        const unsigned char *b = vb.buf;
        const int64_t nb = vb.len;
        const int64_t *off = voff.buf, *cap = vcap.buf, *lt = vlt.buf;
        const unsigned char *rows = vrows.buf;
        unsigned char *has = vhas.buf, *nonip = vnonip.buf;
        const signed char *etclass = vet.buf, *fam = vfam.buf;
        const unsigned char *tpid = vtpid.buf, *v4slow = vv4.buf, *v6slow = vv6.buf;
        const unsigned char *dport_slow = vdps.buf, *sport_slow = vsps.buf;
        const unsigned char *llc = vllc.buf;

        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) {
            const int64_t o = off[i], c = cap[i];
            has[i] = 0;
            nonip[i] = 0;
            if (!rows[i] || o < 0 || o > nb - WH)
                continue;
            const unsigned char *H = b + o;
            /* ---- link layer: kind (4 / 6 expected, 9 from the version nibble, 0 slow path) */
            int kind = 0, bcast = 0, out = 0, ni = 0;
            int64_t l3 = 0, vlan = 0;
            const int64_t L = lt[i];
            if (L == 1) {
                uint32_t et = be16(H + 12);
                l3 = 14;
                if (tpid[et]) {
                    const int64_t vid1 = be16(H + 14) & 0xFFF, vid2 = be16(H + 18) & 0xFFF,
                                  vid3 = be16(H + 22) & 0xFFF;
                    const uint32_t et1 = be16(H + 16), et2 = be16(H + 20), et3 = be16(H + 24);
                    const int t2 = tpid[et1], t3 = t2 && tpid[et2], t4 = t3 && tpid[et3];
                    const int64_t flag = (int64_t)1 << 24;
                    if (t3) {
                        et = et3;
                        l3 += 12;
                        vlan = flag | (vid2 << 12) | vid3 | (vid1 << 25);
                    } else if (t2) {
                        et = et2;
                        l3 += 8;
                        vlan = flag | (vid1 << 12) | vid2;
                    } else {
                        et = et1;
                        l3 += 4;
                        vlan = flag | vid1;
                    }
                    if (t4)
                        et = 0x8100;                /* more than 3 tags: slow path */
                    if (vid1 == 0 && (!t2 || vid2 == 0) && (!t3 || vid3 == 0))
                        vlan = 0;
                }
                bcast = be32(H) == 0xFFFFFFFFu && be16(H + 4) == 0xFFFF;
                const int cls = etclass[et];
                const int full = c >= l3;
                kind = full && cls == 1 ? 4 : full && cls == 2 ? 6 : 0;
                ni = full && cls == 3;
                if (llc[et]) {                      /* an LLC header, not SNAP: not IP */
                    const unsigned char *p = H + (l3 < WH - 3 ? l3 : WH - 3);
                    const int snap = p[0] == 0xAA && p[1] == 0xAA && p[2] == 0x03;
                    if (c >= l3 + 3 && !snap)
                        ni = 1;
                }
            } else if (L == 113 || L == 276) {
                l3 = L == 113 ? 16 : 20;
                const int cls = etclass[L == 113 ? be16(H + 14) : be16(H)];
                const int full = c >= l3;
                kind = full && cls == 1 ? 4 : full && cls == 2 ? 6 : 0;
                ni = full && cls == 3;
                bcast = L == 113 ? be16(H) == 1 : H[10] == 1;
                out = L == 113 ? be16(H) == 4 : H[10] == 4;
                if ((L == 113 ? be16(H + 2) : be16(H + 8)) == 824) {
                    kind = 0;                       /* nlmon (ARPHRD_NETLINK): never IP */
                    ni = full;
                }
            } else if (L == 0 || L == 108) {
                l3 = 4;
                const int good = H[1] == 0 && H[2] == 0 && (H[0] == 0 || H[3] == 0) && c >= 4;
                kind = good ? fam[H[0] | H[3]] : 0;
                out = 1;                            /* no link-layer destination (_slowpath.NO_L2_DST) */
            } else {
                kind = 9;                           /* raw IP: the version nibble decides */
                out = 1;
            }
            nonip[i] = (unsigned char)ni;
            if (kind == 0)
                continue;
            /* ---- IP header at l3 (l3 <= 26: inside the window) */
            const unsigned char *G = H + l3;
            const int ver = G[0] >> 4;
            if (kind == 9)
                kind = ver;
            const int64_t l3cap = c - l3;
            int is6, proto;
            int64_t l4, ip_len;
            if (kind == 4 && ver == 4) {
                const int64_t ihl = (int64_t)(G[0] & 15) << 2, tot = be16(G + 2);
                if (!(ihl == 20 && l3cap >= ihl && tot >= ihl && (be16(G + 6) & 0x3FFF) == 0 && !v4slow[G[9]]))
                    continue;
                is6 = 0;
                proto = G[9];
                l4 = ihl;
                ip_len = tot;
            } else if (kind == 6 && ver == 6) {
                const int64_t plen6 = be16(G + 4);
                if (!(l3cap >= 40 && plen6 > 0 && !v6slow[G[6]]))
                    continue;
                is6 = 1;
                proto = G[6];
                l4 = 40;
                ip_len = 40 + plen6;
            } else {
                continue;
            }
            const int64_t ip_pl = ip_len - l4, a4 = o + l3 + l4, l4cap = l3cap - l4;
            /* ---- transport header at l3 + l4 (<= 66: inside the window) */
            const unsigned char *T = H + l3 + l4;
            const int tcp = proto == 6, udp = proto == 17, icmp = proto == 1 || proto == 58;
            const uint32_t sport = be16(T), dport = be16(T + 2), ulen = be16(T + 4);
            const int64_t doff = (int64_t)(T[12] >> 4) << 2;
            if (tcp && (l4cap < 20 || doff < 20 || doff > ip_pl))
                continue;
            if (udp && (l4cap < 8 || ip_pl < 8 || dport_slow[dport] || sport_slow[sport]))
                continue;
            if (icmp && (l4cap < 8 || ip_pl < 8))
                continue;
            const int64_t plen = tcp ? ip_pl - doff
                                     : udp ? (ulen >= 8 && ulen <= ip_pl ? (int64_t)ulen - 8 : ip_pl - 8)
                                           : icmp ? ip_pl - 8 : ip_pl;
            const int64_t hoff = tcp ? doff : (udp || icmp) ? 8 : 0;
            const int64_t ploff = a4 + hoff;
            const int64_t rest = o + c - ploff;
            const int64_t plcap = plen < rest ? plen : rest;
            const int hasp = plcap > 0;

            W(F_VLAN, int64_t, vlan);
            W(F_IPVER, uint8_t, is6 ? 6 : 4);
            if (is6) {
                W(F_SRC_HI, uint64_t, be64(G + 8));
                W(F_DST_HI, uint64_t, be64(G + 24));
                W(F_SRC_LO, uint64_t, be64(G + 16));
                W(F_DST_LO, uint64_t, be64(G + 32));
            } else {
                W(F_SRC_HI, uint64_t, 0);
                W(F_DST_HI, uint64_t, 0);
                W(F_SRC_LO, uint64_t, V4MAPPED | be32(G + 12));
                W(F_DST_LO, uint64_t, V4MAPPED | be32(G + 16));
            }
            W(F_PROTO, uint8_t, proto);
            W(F_SPORT, int32_t, tcp || udp ? (int32_t)sport : -1);
            W(F_DPORT, int32_t, tcp || udp ? (int32_t)dport : -1);
            W(F_ICMP_TYPE, int16_t, icmp ? T[0] : -1);
            W(F_ICMP_CODE, int16_t, icmp ? T[1] : -1);
            W(F_TCP_FLAGS, uint16_t, tcp ? ((T[12] & 1) << 8) | T[13] : 0);
            W(F_SEQ, int64_t, tcp ? (int64_t)be32(T + 4) : 0);
            W(F_ACK, int64_t, tcp ? (int64_t)be32(T + 8) : 0);
            W(F_TCP_WIN, int32_t, tcp ? (int32_t)be16(T + 14) : -1);
            W(F_IP_ID, int32_t, is6 ? -1 : (int32_t)be16(G + 4));
            W(F_IP_LEN, int32_t, ip_len);
            W(F_TTL, int16_t, is6 ? G[7] : G[8]);
            W(F_PAYLOAD_LEN, int32_t, plen);
            W(F_PL_OFF, int64_t, hasp ? ploff : -1);
            W(F_PL_CAP, int32_t, hasp ? plcap : 0);
            W(F_L2_BCAST, uint8_t, bcast);
            W(F_L2_OUT, uint8_t, out);
            W(F_L4_SUM, int32_t, tcp ? (int32_t)be16(T + 16) : udp ? (int32_t)be16(T + 6)
                                                             : icmp ? (int32_t)be16(T + 2) : -1);
            W(F_UNREASSEMBLED, uint8_t, 0);
            has[i] = 1;
        }
        Py_END_ALLOW_THREADS
    }
    Py_INCREF(Py_None);
    ret = Py_None;
done:
    while (nheld > 0)
        PyBuffer_Release(held[--nheld]);
    return ret;
}

static PyMethodDef methods[] = {
    {"fast_rows", fast_rows, METH_VARARGS,
     "fast_rows(b, off, cap, lt, rows, out, has_row, nonip, etclass, tpid, v4slow, v6slow, fam, "
     "dport_slow, sport_slow, llc): decode._chunk's header decode of every frame in `rows`, compiled "
     "(see the module's source)."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_headers",
    "The fast path's fixed-offset header decode (kscc_traffic.capture.decode._chunk), compiled.",
    -1, methods};

#ifndef KSCC_SOURCE_SHA256
#define KSCC_SOURCE_SHA256 ""   /* built without setup.py's digest */
#endif

PyMODINIT_FUNC
PyInit__headers(void)
{
    PyObject *m = PyModule_Create(&module);
    /* the digest of the C source this was built from (setup.py; compiled.stale() compares it) */
    if (m != NULL && PyModule_AddStringConstant(m, "source_sha256", KSCC_SOURCE_SHA256) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
