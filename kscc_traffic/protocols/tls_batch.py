"""TLS summaries of many flows at once, with numpy: the same results as :func:`.tls.summarize`.

:func:`summarize_at` takes the client and server initial streams of *n* flows as ranges of byte
buffers (one ``uint8`` array + start/end offsets per side, e.g. the concatenated buffer of
:class:`kscc_traffic.streams.Streams`; :func:`summarize_many` builds such buffers from ``bytes``,
in chunks of about :data:`CHUNK_BYTES`) and walks all flows together: the record walk is a loop
over the record index *k* whose body works on every flow that still has a *k*-th record; the
ClientHello extension walk (looking for server_name) and the ServerHello extension walk
(supported_versions) are loops over the extension index. No Python object per record or per
flow, except the server name text (decoded once per distinct name). Every read is guarded by the
stream's own bounds, so nothing past a stream's end is looked at. Where the optional C module
:mod:`._tlswalk` is built (setup.py), the same steps run compiled, one flow at a time
(:func:`_compiled`); the numpy walk (:func:`_vectorised_numpy`) is its fallback, with the same
results (``tests/test_tlswalk_compiled.py``).

Only the common shape is done this way. A flow goes to the reference :func:`.tls.summarize`
("fallback", ``TlsBatch.fallback``) when its streams show anything else:

* client: the first record is not a handshake record, or the first handshake message is not
  whole inside the first record (a ClientHello spanning records, or cut by the end of the
  stream); an SSLv2-compatible hello (first byte with the high bit set);
* server: the first accepted handshake record (:func:`.tls.summarize` rules: before the
  server's ChangeCipherSpec, or any time once the version is TLS 1.3) does not hold exactly one
  whole ServerHello — e.g. a TLS <= 1.2 flight (ServerHello + Certificate + ... ), a ServerHello
  spanning records or cut; or a second handshake record is accepted (a HelloRetryRequest
  followed by the real ServerHello);
* a walk longer than the caps (:data:`MAX_RECORDS` records per direction, :data:`MAX_EXTENSIONS`
  extensions, :data:`MAX_NAMES` server_name entries).

Everything else — record walk (which stops at the first header that is not TLS, and whose last
body may be cut), ChangeCipherSpec / application data / cleartext-alert flags with the same
ordering rules, the TLS 1.3 encrypted-alert guess, the ServerHello version (last
supported_versions extension of length 2, else legacy_version), the HelloRetryRequest random, the
cipher, and the first server_name host_name — follows :func:`.tls.summarize` exactly; the tests
(``tests/test_tls_batch.py``) compare both, flow by flow, on captures and on generated and
mutated handshakes.
"""
from __future__ import annotations

import io
from functools import partial
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from . import tls
from .dns import host_text

try:  # the record walk in C (setup.py builds it; optional)
    from . import _tlswalk
except ImportError:  # pragma: no cover - not built: the same walk in numpy
    _tlswalk = None

__all__ = ["TlsBatch", "looks_like_tls_at", "looks_like_tls_many", "summarize_at", "summarize_many",
           "summarize_reference",
           "CHUNK_BYTES", "MAX_RECORDS", "MAX_EXTENSIONS", "MAX_NAMES"]

#: bytes (client + server streams) concatenated per numpy pass; bounds the extra memory
CHUNK_BYTES = 32 << 20
#: records walked per direction before a flow is handed to the reference parser
MAX_RECORDS = 256
#: ClientHello / ServerHello extensions walked before a flow is handed to the reference parser
MAX_EXTENSIONS = 64
#: server_name list entries walked before a flow is handed to the reference parser
MAX_NAMES = 8

_PAD = bytes(8)  # after the joined streams: a safety margin only (every read is bounds-guarded)
_HRR = np.frombuffer(tls.HRR_RANDOM, np.uint8)
_K5 = np.arange(5)


@dataclass
class TlsBatch:
    """The TLS summaries of *n* flows, as arrays of length *n* (row *i* = the *i*-th pair of
    streams given). Each field is the :class:`.tls.TlsSummary` field of the same name, with
    ``-1`` for ``None`` in the integer fields:

    ``client_hello``: bool, a ClientHello was parsed (``TlsSummary.client_hello is not None``);
    ``sni``: object, its server name (``str``, escaped by :func:`.dns.host_text`) or None;
    ``version``/``cipher``: int32 wire values or -1; ``client_alert``/``server_alert``: int16
    ``(n, 2)`` (level, description) or (-1, -1); ``server_hello``, ``hello_retry``,
    ``client_encrypted_alert``, ``client_app_data``, ``server_app_data``, ``client_ccs``,
    ``server_ccs``, ``established``: bool; ``ech``: bool, the ClientHello carries an
    encrypted_client_hello extension (``ClientHello.ech``: real ECH or its GREASE, alike on the
    wire). ``certificates``: row -> DER certificates, only for
    rows with a non-empty list (TLS <= 1.2 flows, always from the reference parser).
    ``cert_request``: bool, the server sent a cleartext CertificateRequest (TLS <= 1.2);
    ``client_certs``: int16, then the certificates of the client's cleartext Certificate
    message (0: empty), -1 for ``None`` (not asked, or no such message seen). Both only from the
    reference parser: a CertificateRequest follows the ServerHello in the server's handshake
    records, which the walk hands over (a flight of several messages, or a second accepted
    handshake record), so a row it does itself has neither.
    ``fallback``: bool, the row was computed by :func:`.tls.summarize`.

    Not reported (no column uses them): the ClientHello's other fields and the ServerHello ALPN.
    """

    client_hello: np.ndarray
    sni: np.ndarray
    version: np.ndarray
    cipher: np.ndarray
    server_hello: np.ndarray
    hello_retry: np.ndarray
    client_alert: np.ndarray
    server_alert: np.ndarray
    client_encrypted_alert: np.ndarray
    client_app_data: np.ndarray
    server_app_data: np.ndarray
    client_ccs: np.ndarray
    server_ccs: np.ndarray
    established: np.ndarray
    fallback: np.ndarray
    certificates: dict[int, list[bytes]] = field(default_factory=dict)
    ech: np.ndarray | None = None
    cert_request: np.ndarray | None = None
    client_certs: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.ech is None:
            self.ech = np.zeros(len(self.version), bool)
        if self.cert_request is None:
            self.cert_request = np.zeros(len(self.version), bool)
        if self.client_certs is None:
            self.client_certs = np.full(len(self.version), -1, np.int16)

    @classmethod
    def empty(cls, n: int) -> TlsBatch:
        """*n* rows of "nothing seen" (what :func:`.tls.summarize` gives for two empty streams)."""
        def b():
            return np.zeros(n, bool)
        return cls(client_hello=b(), sni=np.full(n, None, object), version=np.full(n, -1, np.int32),
                   cipher=np.full(n, -1, np.int32), server_hello=b(), hello_retry=b(),
                   client_alert=np.full((n, 2), -1, np.int16),
                   server_alert=np.full((n, 2), -1, np.int16), client_encrypted_alert=b(),
                   client_app_data=b(), server_app_data=b(), client_ccs=b(), server_ccs=b(),
                   established=b(), fallback=b())

    def __len__(self) -> int:
        return len(self.version)

    def set_row(self, i: int, s: tls.TlsSummary) -> None:
        """Row ``i`` := the reference summary ``s`` (``fallback`` is left as it is)."""
        ch = s.client_hello
        self.client_hello[i] = ch is not None
        self.sni[i] = ch.sni if ch is not None else None
        self.ech[i] = ch is not None and ch.ech
        self.version[i] = -1 if s.version is None else s.version
        self.cipher[i] = -1 if s.cipher is None else s.cipher
        self.server_hello[i] = s.server_hello
        self.hello_retry[i] = s.hello_retry
        self.client_alert[i] = s.client_alert if s.client_alert is not None else (-1, -1)
        self.server_alert[i] = s.server_alert if s.server_alert is not None else (-1, -1)
        self.client_encrypted_alert[i] = s.client_encrypted_alert
        self.client_app_data[i] = s.client_app_data
        self.server_app_data[i] = s.server_app_data
        self.client_ccs[i] = s.client_ccs
        self.server_ccs[i] = s.server_ccs
        self.established[i] = s.established
        self.cert_request[i] = s.cert_request
        self.client_certs[i] = -1 if s.client_certificates is None else min(s.client_certificates, 0x7FFF)
        if s.certificates:
            self.certificates[i] = list(s.certificates)
        else:
            self.certificates.pop(i, None)


def summarize_reference(client_streams: Sequence[bytes], server_streams: Sequence[bytes]) -> TlsBatch:
    """:func:`.tls.summarize` flow by flow, as a :class:`TlsBatch` (the reference for
    :func:`summarize_many`; every row has ``fallback`` True).

    :param client_streams: *n* client (originator) initial streams.
    :param server_streams: the *n* server streams, same order.
    :raises ValueError: when the two sequences differ in length.
    """
    n = len(client_streams)
    if len(server_streams) != n:
        raise ValueError(f"{n} client streams but {len(server_streams)} server streams")
    out = TlsBatch.empty(n)
    out.fallback[:] = True
    for i in range(n):
        out.set_row(i, tls.summarize(client_streams[i], server_streams[i]))
    return out


def summarize_at(cbuf: np.ndarray, cstart: np.ndarray, cend: np.ndarray, sbuf: np.ndarray,
                 sstart: np.ndarray, send: np.ndarray) -> TlsBatch:
    """:func:`.tls.summarize` of *n* flows whose streams lie in byte buffers (no copy): flow *i*
    has the client stream ``cbuf[cstart[i]:cend[i]]`` and the server stream
    ``sbuf[sstart[i]:send[i]]`` (an empty range when that side sent nothing). Equal, row by row,
    to :func:`summarize_reference` of those streams.

    :param cbuf, sbuf: 1-D uint8 arrays (may be the same array, may be read-only).
    :param cstart, cend, sstart, send: int arrays (n,), ranges inside their buffer.
    :returns: a :class:`TlsBatch` of *n* rows.
    :raises ValueError: when the four range arrays differ in length.
    """
    cstart, cend, sstart, send = (np.asarray(x, np.int64) for x in (cstart, cend, sstart, send))
    n = len(cstart)
    if not (len(cend) == len(sstart) == len(send) == n):
        raise ValueError("cstart, cend, sstart and send must have the same length")
    out = TlsBatch.empty(n)
    if n == 0:
        return out
    _vectorised(out, 0, cbuf, cstart, cend, sbuf, sstart, send, {})
    fb = np.nonzero(out.fallback)[0].tolist()
    if fb:
        cmv, smv = memoryview(cbuf).cast("B"), memoryview(sbuf).cast("B")
        for i in fb:
            out.set_row(i, tls.summarize(cmv[cstart[i]:cend[i]].tobytes(),
                                         smv[sstart[i]:send[i]].tobytes()))
    return out


def summarize_many(client_streams: Sequence[bytes], server_streams: Sequence[bytes], *,
                   chunk_bytes: int = CHUNK_BYTES) -> TlsBatch:
    """:func:`.tls.summarize` of *n* flows given as ``bytes`` (see the module docstring): the
    streams are concatenated about ``chunk_bytes`` at a time and handed to the same code as
    :func:`summarize_at`. Equal, row by row, to :func:`summarize_reference`.

    :param client_streams: *n* client (originator) initial streams (``bytes``; ``b""`` when the
        client sent nothing).
    :param server_streams: the *n* server streams, same order.
    :param chunk_bytes: about how many stream bytes are concatenated per pass (memory bound; at
        least one flow per pass).
    :returns: a :class:`TlsBatch` of *n* rows.
    :raises ValueError: when the two sequences differ in length.
    """
    n = len(client_streams)
    if len(server_streams) != n:
        raise ValueError(f"{n} client streams but {len(server_streams)} server streams")
    out = TlsBatch.empty(n)
    if n == 0:
        return out
    clen = np.fromiter(map(len, client_streams), np.int64, n)
    slen = np.fromiter(map(len, server_streams), np.int64, n)
    total = np.cumsum(clen + slen)
    names: dict[bytes, str] = {}
    cjoin, sjoin = _Joiner(), _Joiner()
    lo = 0
    while lo < n:
        base = total[lo - 1] if lo else 0
        hi = max(lo + 1, int(np.searchsorted(total, base + chunk_bytes, side="right")))
        cbuf, cstart, cend = cjoin.join(client_streams[lo:hi], clen[lo:hi])
        sbuf, sstart, send = sjoin.join(server_streams[lo:hi], slen[lo:hi])
        _vectorised(out, lo, cbuf, cstart, cend, sbuf, sstart, send, names)
        del cbuf, sbuf  # views of the joiners' buffers: released before they are reused
        lo = hi
    for i in np.nonzero(out.fallback)[0].tolist():
        out.set_row(i, tls.summarize(client_streams[i], server_streams[i]))
    return out


def looks_like_tls_at(buf: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """:func:`.tls.looks_like_tls` of the streams ``buf[start[i]:end[i]]`` (bool array (n,)),
    from the first record header of each (and the next ones past empty records), on whole arrays.

    :param buf: 1-D uint8 array; :param start, end: int arrays (n,), ranges inside ``buf``.
    """
    start = np.asarray(start, np.int64)
    end = np.asarray(end, np.int64)
    out, empty = _head_looks_tls(buf, start, end, True)
    at = np.flatnonzero(empty)
    for k in range(1, tls.MAX_EMPTY_RECORDS + 1):   # streams led by empty records: the next decides
        if not at.size:
            break
        res, more = _head_looks_tls(buf, start[at] + 5 * k, end[at], False)
        out[at] = res
        at = at[more]
    return out


def _head_looks_tls(buf: np.ndarray, start: np.ndarray, end: np.ndarray, first: bool
                    ) -> tuple[np.ndarray, np.ndarray]:
    """(looks like TLS, is an empty record of another type than application data) of the record
    header at each ``start`` (bool arrays (n,)); an SSLv2-compatible hello header only when
    ``first`` (the stream's first bytes)."""
    ok = end - start >= 5
    if not ok.any():
        return ok, ok.copy()
    h = buf[np.where(ok, start, 0)[:, None] + _K5].astype(np.int64)  # rows not ok: masked below
    ct, major, minor, ln = h[:, 0], h[:, 1], h[:, 2], (h[:, 3] << 8) | h[:, 4]
    record = (ct >= tls.CT_CCS) & (ct <= tls.CT_HEARTBEAT) & (major == 3) & (minor <= 4)
    rec_ok = (ln <= tls.MAX_RECORD) & ((ln > 0) | (ct == tls.CT_APP_DATA))
    empty = ok & record & (ln == 0) & (ct != tls.CT_APP_DATA)
    if not first:                                   # past empty records: a hello's handshake record
        hello = np.zeros(len(ok), bool)
        at = np.flatnonzero(ok & (end - start >= 6) & (ct == tls.CT_HANDSHAKE))
        hello[at] = np.isin(buf[start[at] + 5], (1, 2))
        return ok & record & rec_ok & hello, empty
    v2len = ((ct & 0x7F) << 8) | major
    v2ver = ln
    sslv2 = (((ct & 0x80) != 0) & (minor == 1) & (v2len >= 9)
             & ((v2ver == 0x0002) | ((v2ver >= 0x0300) & (v2ver <= tls.TLS1_3))))
    return ok & np.where(record, rec_ok, sslv2), empty


def looks_like_tls_many(streams: Sequence[bytes]) -> np.ndarray:
    """:func:`.tls.looks_like_tls` of each stream (bool array, same length), on whole arrays."""
    n = len(streams)
    if n == 0:
        return np.zeros(0, bool)
    heads = [s[:5 * (tls.MAX_EMPTY_RECORDS + 1) + 1] for s in streams]  # (+ a hello's type byte)
    lens = np.fromiter(map(len, heads), np.int64, n)
    end = np.cumsum(lens)
    return looks_like_tls_at(np.frombuffer(b"".join(heads), np.uint8), end - lens, end)


# --------------------------------------------------------------------------- internals

def _u8(buf: np.ndarray, i: np.ndarray) -> np.ndarray:
    return buf[i].astype(np.int64)


def _u16(buf: np.ndarray, i: np.ndarray) -> np.ndarray:
    return (buf[i].astype(np.int64) << 8) | buf[i + 1]


def _u24(buf: np.ndarray, i: np.ndarray) -> np.ndarray:
    return (buf[i].astype(np.int64) << 16) | (buf[i + 1].astype(np.int64) << 8) | buf[i + 2]


class _Joiner:
    """Concatenates streams into one reused buffer (a ``BytesIO``): a fresh ``bytes`` per chunk
    would cost a page fault per 4 KiB each time, which is slower than the copy itself."""

    def __init__(self) -> None:
        self._io = io.BytesIO()

    def join(self, streams: Sequence[bytes],
             lens: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(buf, start, end)``: a uint8 view of the streams back to back (followed by at least
        8 zero bytes), and each stream's ``[start, end)`` in it. Drop ``buf`` before the next
        call (it is a view of the reused buffer)."""
        f = self._io
        f.seek(0)
        f.writelines(streams)
        f.write(_PAD)
        end = np.cumsum(lens)
        return np.frombuffer(f.getbuffer(), np.uint8), end - lens, end


def _walk(buf: np.ndarray, start: np.ndarray, end: np.ndarray,
          fallback: np.ndarray) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """The records of all streams, record index by record index, like :func:`.tls._records`.

    Yields ``(k, rows, ct, body, blen)``: the rows (indexes into ``start``/``end``) that have a
    *k*-th record, its content type, the absolute offset of its body in ``buf`` and the body's
    length as present (the last body may be cut). Rows still unfinished after
    :data:`MAX_RECORDS` records are set in ``fallback``.
    """
    off = start.copy()
    rows = np.arange(len(start))
    for k in range(MAX_RECORDS):
        o = off[rows]
        keep = o + 5 <= end[rows]
        rows, o = rows[keep], o[keep]
        if not len(rows):
            return
        ct = _u8(buf, o)
        ln = _u16(buf, o + 3)
        ok = ((ct >= tls.CT_CCS) & (ct <= tls.CT_HEARTBEAT) & (buf[o + 1] == 3) & (buf[o + 2] <= 4)
              & (ln <= tls.MAX_RECORD))
        rows, o, ct, ln = rows[ok], o[ok], ct[ok], ln[ok]
        if not len(rows):
            return
        body = o + 5
        blen = np.minimum(ln, end[rows] - body)
        yield k, rows, ct, body, blen
        off[rows] = body + ln
    left = rows[off[rows] + 5 <= end[rows]]
    fallback[left] = True


def _alerts(buf: np.ndarray, rows: np.ndarray, ct: np.ndarray, body: np.ndarray, blen: np.ndarray,
            alert: np.ndarray, ccs: np.ndarray, is13: np.ndarray) -> None:
    """First cleartext alert: a type-21 record of 1 to ``tls.MAX_ALERTS`` whole alerts (as
    present), each of level 1 or 2, before this side's CCS or with the version (so far) TLS 1.3;
    the record's first fatal alert, else its first (:func:`tls.alert_of`). ``is13`` is per
    yielded row."""
    a = np.nonzero((ct == tls.CT_ALERT) & (blen >= 2) & (blen % 2 == 0) & (blen <= 2 * tls.MAX_ALERTS))[0]
    if not len(a):
        return
    r, p, k = rows[a], body[a], blen[a] // 2
    ok = (alert[r, 0] < 0) & (~ccs[r] | is13[a])
    pick = np.full(len(a), -1, np.int64)            # the pair chosen: first fatal, else the first
    for i in range(tls.MAX_ALERTS):
        has = i < k
        lvl = np.where(has, _u8(buf, np.where(has, p + 2 * i, p)), 1)
        ok &= (lvl == 1) | (lvl == 2)
        pick = np.where((pick < 0) & has & (lvl == 2), i, pick)
    pick = np.where(pick < 0, 0, pick)
    q = p + 2 * pick
    alert[r[ok], 0] = _u8(buf, q[ok])
    alert[r[ok], 1] = buf[q[ok] + 1]


def _vectorised(out: TlsBatch, base: int, cbuf: np.ndarray, cstart: np.ndarray, cend: np.ndarray,
                sbuf: np.ndarray, sstart: np.ndarray, send: np.ndarray, names: dict[bytes, str]) -> None:
    """Rows ``base .. base+len(cstart)`` of ``out`` from the streams at ``cbuf[cstart:cend]`` and
    ``sbuf[sstart:send]``. Rows the walk does not do are only marked in ``out.fallback`` (their
    other fields are then meaningless); ``names`` caches the text of server names by their
    bytes. Compiled (:mod:`._tlswalk`, one flow at a time) when built and the buffers suit it,
    else :func:`_vectorised_numpy` (the same results: tests/test_tlswalk_compiled.py)."""
    if (_tlswalk is None or _caps() != _COMPILED_CAPS
            or not _compiled(out, base, cbuf, cstart, cend, sbuf, sstart, send, names)):
        _vectorised_numpy(out, base, cbuf, cstart, cend, sbuf, sstart, send, names)


def _caps() -> tuple[int, ...]:
    """The caps the walk uses now (as :mod:`._tlswalk`'s ``constants()`` names them)."""
    return MAX_RECORDS, MAX_EXTENSIONS, MAX_NAMES, tls.MAX_ALERTS, tls.MAX_RECORD


#: the caps compiled into :mod:`._tlswalk` (it is used only while they are those of :func:`_caps`)
_COMPILED_CAPS = () if _tlswalk is None else tuple(
    _tlswalk.constants()[k] for k in ("MAX_RECORDS", "MAX_EXTENSIONS", "MAX_NAMES", "MAX_ALERTS", "MAX_RECORD"))

#: the rows of the ``res`` array of ``_tlswalk.summarize`` (its COL_ enum), in order
_COLUMNS = ("version", "cipher", "server_hello", "hello_retry", "server_alert", None, "client_alert",
            None, "server_app_data", "server_ccs", "client_app_data", "client_ccs",
            "client_encrypted_alert", "established", "client_hello", "ech", "fallback")


def _compiled(out: TlsBatch, base: int, cbuf: np.ndarray, cstart: np.ndarray, cend: np.ndarray,
              sbuf: np.ndarray, sstart: np.ndarray, send: np.ndarray, names: dict[bytes, str]) -> bool:
    """:func:`_vectorised` by :mod:`._tlswalk`; False (``out`` unchanged) where it cannot take
    these buffers (not C-contiguous bytes, or a range outside its buffer): the numpy walk then
    does them."""
    m = len(cstart)
    res = np.empty((len(_COLUMNS), m), np.int32)
    sni = np.empty((2, m), np.int64)
    try:
        _tlswalk.summarize(cbuf, *(np.ascontiguousarray(x, np.int64) for x in (cstart, cend)),
                           sbuf, *(np.ascontiguousarray(x, np.int64) for x in (sstart, send)), res, sni)
    except (TypeError, ValueError, BufferError):
        return False
    sl = slice(base, base + m)
    for i, name in enumerate(_COLUMNS):
        if name is None:
            continue
        col = getattr(out, name)
        if col.ndim == 2:
            col[sl, 0], col[sl, 1] = res[i], res[i + 1]
        else:
            col[sl] = res[i]
    rows = np.flatnonzero(sni[1] >= 0)
    if len(names) > 65536:
        names.clear()
    out.sni[base + rows] = np.array(_tlswalk.names(cbuf, sni, rows, names, partial(_name_text, names=names)),
                                    object)
    return True


def _vectorised_numpy(out: TlsBatch, base: int, cbuf: np.ndarray, cstart: np.ndarray, cend: np.ndarray,
                      sbuf: np.ndarray, sstart: np.ndarray, send: np.ndarray, names: dict[bytes, str]) -> None:
    """:func:`_vectorised` on whole arrays with numpy: the record walk is a loop over the record
    index whose body works on every flow that still has such a record (the fallback of
    :mod:`._tlswalk`)."""
    m = len(cstart)
    sl = slice(base, base + m)
    fb = np.zeros(m, bool)

    # ---- server direction (first: the client's rules depend on the negotiated version)
    ccs = np.zeros(m, bool)
    app = np.zeros(m, bool)
    ver = np.full(m, -1, np.int64)
    cipher = np.full(m, -1, np.int64)
    sh = np.zeros(m, bool)
    hrr = np.zeros(m, bool)
    have_hs = np.zeros(m, bool)
    salert = np.full((m, 2), -1, np.int16)
    for _k, rows, ct, body, blen in _walk(sbuf, sstart, send, fb):
        is13 = ver[rows] == tls.TLS1_3
        _alerts(sbuf, rows, ct, body, blen, salert, ccs, is13)
        app[rows[ct == tls.CT_APP_DATA]] = True
        h = np.nonzero((ct == tls.CT_HANDSHAKE) & (~ccs[rows] | is13))[0]
        if len(h):
            r = rows[h]
            again = have_hs[r]
            fb[r[again]] = True  # more handshake bytes: reassembly is the reference's job
            r, p, bl = r[~again], body[h][~again], blen[h][~again]
            have_hs[r] = True
            big = bl >= 4
            fb[r[~big]] = True
            r, p, bl = r[big], p[big], bl[big]
            one_sh = (_u8(sbuf, p) == tls.HS_SERVER_HELLO) & (4 + _u24(sbuf, p + 1) == bl)
            fb[r[~one_sh]] = True
            r, p, bl = r[one_sh], p[one_sh], bl[one_sh]
            _server_hello(sbuf, p + 4, bl - 4, r, ver, cipher, sh, hrr, fb)
        ccs[rows[ct == tls.CT_CCS]] = True
    out.version[sl] = ver
    out.cipher[sl] = cipher
    out.server_hello[sl] = sh
    out.hello_retry[sl] = hrr
    out.server_alert[sl] = salert
    out.server_app_data[sl] = app
    out.server_ccs[sl] = ccs
    s_ccs, s_app = ccs, app

    # ---- client direction
    v13 = ver == tls.TLS1_3
    ccs = np.zeros(m, bool)
    app = np.zeros(m, bool)
    first_app = np.ones(m, bool)
    enc = np.zeros(m, bool)
    calert = np.full((m, 2), -1, np.int16)
    ct0 = np.full(m, -1, np.int64)
    body0 = np.zeros(m, np.int64)
    blen0 = np.zeros(m, np.int64)
    for k, rows, ct, body, blen in _walk(cbuf, cstart, cend, fb):
        if k == 0:
            ct0[rows], body0[rows], blen0[rows] = ct, body, blen
        t = np.nonzero(ct == tls.CT_APP_DATA)[0]
        if len(t):
            r = rows[t]
            fa = first_app[r]
            rf = r[fa]
            # 19 = 2-byte alert + inner content type + 16-byte AEAD tag (see tls.summarize)
            enc[rf] = v13[rf] & sh[rf] & (blen[t][fa] == 19)
            first_app[r] = False
            app[r] = True
        _alerts(cbuf, rows, ct, body, blen, calert, ccs, v13[rows])
        ccs[rows[ct == tls.CT_CCS]] = True
    out.client_alert[sl] = calert
    out.client_app_data[sl] = app
    out.client_ccs[sl] = ccs
    out.client_encrypted_alert[sl] = enc
    out.established[sl] = np.where(v13, sh & app & ~enc, (ccs & s_ccs) | (app & s_app))

    # ---- ClientHello: whole inside the first record, else the reference parses it
    nonempty = cend > cstart
    sslv2 = np.zeros(m, bool)
    sslv2[nonempty] = (cbuf[cstart[nonempty]] & 0x80) != 0
    fb |= sslv2 | ((ct0 >= 0) & (ct0 != tls.CT_HANDSHAKE))
    cand = (ct0 == tls.CT_HANDSHAKE) & ~fb
    fb |= cand & (blen0 < 4)
    r = np.nonzero(cand & (blen0 >= 4))[0]
    p, bl = body0[r], blen0[r]
    mlen = _u24(cbuf, p + 1)
    whole = 4 + mlen <= bl
    fb[r[~whole]] = True
    r, p, mlen = r[whole], p[whole], mlen[whole]
    is_ch = (_u8(cbuf, p) == tls.HS_CLIENT_HELLO) & (mlen >= 2)
    r, p, mlen = r[is_ch], p[is_ch], mlen[is_ch]
    has_ch = np.zeros(m, bool)
    has_ch[r] = True
    out.client_hello[sl] = has_ch
    sni_rows, sni_off, sni_len, ech_rows = _client_hello_sni(cbuf, p + 4, mlen, r, fb)
    out.ech[base + ech_rows] = True
    _set_names(out, base, cbuf, sni_rows, sni_off, sni_len, names)
    out.fallback[sl] = fb


def _set_names(out: TlsBatch, base: int, cbuf: np.ndarray, rows: np.ndarray, off: np.ndarray,
               length: np.ndarray, names: dict[bytes, str]) -> None:
    """``out.sni[base + rows]`` := the text of the server names at ``cbuf[off:off + length]``
    (int64 arrays of one length), through the cache ``names`` (bytes -> text; emptied past
    65,536 entries)."""
    mv = memoryview(cbuf).cast("B")
    raws = [mv[a:b].tobytes() for a, b in zip(off.tolist(), (off + length).tolist())]
    del mv
    if len(names) > 65536:
        names.clear()
    out.sni[base + rows] = np.array([names.get(x) or _name_text(x, names) for x in raws], object)


def _name_text(raw: bytes, names: dict[bytes, str]) -> str:
    """The server name text of ``raw`` (as :func:`.tls.parse_client_hello` makes it), cached."""
    names[raw] = text = host_text(raw)
    return text


def _server_hello(buf: np.ndarray, p: np.ndarray, n: np.ndarray, rows: np.ndarray, ver: np.ndarray,
                  cipher: np.ndarray, sh: np.ndarray, hrr: np.ndarray, fb: np.ndarray) -> None:
    """One whole ServerHello body per row (at ``p``, ``n`` bytes) into ``ver``/``cipher``/``sh``/
    ``hrr`` at ``rows``, like ``tls._server_hello_body`` followed by the summary's update (a
    body shorter than 2 bytes changes nothing)."""
    ok = n >= 2
    rows, p, n = rows[ok], p[ok], n[ok]
    if not len(rows):
        return
    v = _u16(buf, p)
    retry = np.zeros(len(rows), bool)
    # HelloRetryRequest random: the full 32-byte compare only where the first two bytes match
    long = np.nonzero(n >= 34)[0]
    long = long[(buf[p[long] + 2] == _HRR[0]) & (buf[p[long] + 3] == _HRR[1])]
    if len(long):
        retry[long] = (buf[p[long, None] + 2 + np.arange(32)] == _HRR).all(axis=1)
    hrr[rows[retry]] = True
    sh[rows[~retry]] = True
    c = np.full(len(rows), -1, np.int64)
    # walk: session id, cipher, compression, extensions; ``j`` = positions still walking
    j = np.nonzero(n >= 35)[0]
    i = 35 + _u8(buf, p[j] + 34)
    keep = i + 2 <= n[j]
    j, i = j[keep], i[keep]
    c[j] = _u16(buf, p[j] + i)
    i = i + 3
    keep = i + 2 <= n[j]
    j, i = j[keep], i[keep]
    ext_end = np.minimum(n[j], i + 2 + _u16(buf, p[j] + i))
    i = i + 2
    for _ in range(MAX_EXTENSIONS):
        j, i, ext_end, q, et, ln = _next_extension(buf, p, j, i, ext_end)
        if not len(j):
            break
        sv = np.nonzero((et == tls.EXT_SUPPORTED_VERSIONS) & (ln == 2))[0]
        if len(sv):
            v[j[sv]] = _u16(buf, q[sv] + 4)
        i = i + 4 + ln
    else:
        fb[rows[j[i + 4 <= ext_end]]] = True
    ver[rows] = v
    cipher[rows] = c


def _next_extension(buf: np.ndarray, p: np.ndarray, j: np.ndarray, i: np.ndarray,
                    ext_end: np.ndarray) -> tuple[np.ndarray, ...]:
    """One step of an extension walk: of the rows ``j`` (body at ``p[j]``, walk at offset ``i``,
    extensions ending at ``ext_end``), those with a whole extension header and body there, with
    ``(j, i, ext_end, q, et, ln)``: ``q`` where the extension starts, ``et`` its type, ``ln`` its
    body length. A cut extension ends a row's walk."""
    keep = i + 4 <= ext_end
    j, i, ext_end = j[keep], i[keep], ext_end[keep]
    q = p[j] + i
    et = _u16(buf, q)
    ln = _u16(buf, q + 2)
    keep = i + 4 + ln <= ext_end
    return j[keep], i[keep], ext_end[keep], q[keep], et[keep], ln[keep]


def _client_hello_sni(buf: np.ndarray, p: np.ndarray, n: np.ndarray, rows: np.ndarray,
                      fb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The server name of whole ClientHello bodies (at ``p``, ``n`` >= 2 bytes), like
    ``tls._client_hello_body``: the first server_name extension whose list yields a host_name.
    Returns ``(rows, offset, length, ech_rows)``: the name bytes for the rows that have one, and
    the rows with an encrypted_client_hello extension (``ClientHello.ech``); rows whose walk
    exceeds the caps are set in ``fb``."""
    none = np.zeros(0, np.int64)
    named = np.zeros(len(rows), bool)   # (the walk goes on after the name, for ECH)
    ech = np.zeros(len(rows), bool)
    j = np.nonzero(n >= 35)[0]
    i = 35 + _u8(buf, p[j] + 34)  # legacy_session_id
    keep = i + 2 <= n[j]
    j, i = j[keep], i[keep]
    i = i + 2 + _u16(buf, p[j] + i)  # cipher_suites
    keep = i + 1 <= n[j]
    j, i = j[keep], i[keep]
    i = i + 1 + _u8(buf, p[j] + i)  # legacy_compression_methods
    keep = i + 2 <= n[j]
    j, i = j[keep], i[keep]
    ext_end = np.minimum(n[j], i + 2 + _u16(buf, p[j] + i))
    i = i + 2
    found_j, found_off, found_len = [none], [none], [none]
    for _ in range(MAX_EXTENSIONS):
        j, i, ext_end, q, et, ln = _next_extension(buf, p, j, i, ext_end)
        if not len(j):
            break
        ech[j[et == tls.EXT_ECH]] = True
        s = np.nonzero((et == tls.EXT_SERVER_NAME) & ~named[j])[0]
        if len(s):
            hit, off, length, over = _sni_list(buf, q[s] + 4, ln[s])
            fb[rows[j[s[over]]]] = True
            found_j.append(j[s[hit]])
            found_off.append(off)
            found_len.append(length)
            named[j[s[hit | over]]] = True
        i = i + 4 + ln
    else:
        fb[rows[j[i + 4 <= ext_end]]] = True
    fj = np.concatenate(found_j)
    return rows[fj], np.concatenate(found_off), np.concatenate(found_len), rows[ech]


def _sni_list(buf: np.ndarray, q: np.ndarray,
              size: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """server_name extension bodies (at ``q``, ``size`` bytes), like ``tls._parse_sni``.
    Returns ``(hit, offset, length, over)``: ``hit`` marks bodies with a host_name entry (type 0;
    its name at ``offset``/``length``, one per hit, in order), ``over`` those with more than
    :data:`MAX_NAMES` entries before the answer."""
    k = len(q)
    hit = np.zeros(k, bool)
    over = np.zeros(k, bool)
    name_off = np.zeros(k, np.int64)
    name_len = np.zeros(k, np.int64)
    j = np.nonzero(size >= 2)[0]
    end = np.minimum(size[j], 2 + _u16(buf, q[j]))
    i = np.full(len(j), 2, np.int64)
    for _ in range(MAX_NAMES):
        keep = i + 3 <= end
        j, i, end = j[keep], i[keep], end[keep]
        if not len(j):
            break
        typ = _u8(buf, q[j] + i)
        ln = _u16(buf, q[j] + i + 1)
        keep = i + 3 + ln <= end  # a cut entry: no name
        j, i, end, typ, ln = j[keep], i[keep], end[keep], typ[keep], ln[keep]
        h = typ == 0
        hit[j[h]] = True
        name_off[j[h]] = q[j[h]] + i[h] + 3
        name_len[j[h]] = ln[h]
        j, i, end, ln = j[~h], i[~h], end[~h], ln[~h]
        i = i + 3 + ln
    else:
        over[j[i + 3 <= end]] = True
    return hit, name_off[hit], name_len[hit], over
