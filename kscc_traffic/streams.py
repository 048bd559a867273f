"""The first bytes of each TCP direction, reassembled in sequence order.

Only what the application parsers need is kept: up to :data:`MAX_SEGMENTS` data segments and
:data:`MAX_BYTES` bytes per direction, which is enough for a ~2 KB TLS ClientHello split over many
segments, a TLS 1.2 server flight with its certificate chain, an HTTP request head or a few DNS
messages over TCP. Retransmitted and overlapping segments are taken once; the stream stops at the
first gap (a segment not captured).

Which segments: the TCP packets of a flow (``FlowTable.pkt_flow`` >= 0) with captured payload
(``pl_cap`` > 0, ``pl_off`` >= 0; not a RST, whose data is not content:
:func:`~kscc_traffic.flows.content_rows`), per (flow, direction) the first :data:`MAX_SEGMENTS`
of them in timestamp order (ties: capture order). Data carried by a SYN (TCP Fast Open) starts at the SYN's
sequence number + 1.

How (fast path / slow path): most directions are *simple*: their segments, in timestamp order, are
contiguous in sequence space (``seq[i+1] == seq[i] + len[i]`` mod 2**32, so no retransmission,
overlap, reordering or gap; sequence wrap-around is fine). Their stream is the concatenation of
the payloads cut at :data:`MAX_BYTES`; it is found with whole-array numpy operations and copied
into the result (:func:`kscc_traffic.capture.ranges.copy_ranges`, compiled where built). Every other direction goes through
:func:`_reassemble`, segment by segment, as before. Both give the bytes
:func:`_initial_streams_reference` (the former per-direction implementation, kept for the tests)
gives.

Result representation (:class:`Streams`)
----------------------------------------
One concatenated buffer plus one row per stream (stream = a (flow, direction) with payload):

- ``buf``: read-only 1-D ``numpy.uint8`` array, all streams back to back (``buf.tobytes()`` or
  ``memoryview(buf)`` for the bytes);
- ``flow``: int64 array (n,), the flow row (row of ``FlowTable.flows``) of each stream;
- ``from_orig``: bool array (n,), True for the client (originator -> responder) direction;
- ``start``, ``end``: int64 arrays (n,), stream ``i`` is ``buf[start[i]:end[i]]``.

Rows are sorted by (``flow``, client before server); each (flow, direction) appears at most once;
streams are stored in row order without gaps: ``start[0] == 0``, ``start[i+1] == end[i]``,
``end[-1] == len(buf)``. Lengths are 1..MAX_BYTES (0 only if a payload's recorded extent lies
outside ``Packets.buf``, which the decoder never produces).

``Streams.spans(flows, client)`` gives the ``(start, end)`` arrays of one direction of any flow
rows (``(0, 0)`` where a flow has none), for batch parsers that work on ``buf`` directly.

``Streams.client`` / ``Streams.server`` are read-only mappings flow row (int) -> bytes over the
same buffer (:class:`StreamMap`; read like a dict of the same content: ``[f]``, ``get``, ``in``,
iteration, ``len``, ``items``, ``==`` with a dict); each lookup copies out a new ``bytes``. Flows
without payload in a direction are absent from that mapping. They are built on first use, so a
consumer of ``buf``/``start``/``end`` alone never pays for them.

Cost: on the 1 M-packet benchmark capture (0.53 M data segments, 95 k streams, 397 MB of stream
bytes, no direction on the slow path) about 0.1 s of numpy work plus 0.05 s of copying (0.3 s
without the compiled copy); ``buf`` holds all the stream bytes at once (like the former dicts did).
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .capture.ranges import copy_ranges
from .flows import TCP, FlowTable, content_rows

MAX_SEGMENTS = 24
MAX_BYTES = 16384
#: :attr:`Streams.cut_why`: the direction had more than :data:`MAX_SEGMENTS` data segments or
#: more than :data:`MAX_BYTES` bytes (the inspection's limit: the capture holds the rest); its
#: reassembly stopped at a gap, a segment not captured, with data beyond it; one of its first
#: segments was cut short by the snaplen (the strongest cause is kept)
CUT_LIMIT, CUT_GAP, CUT_SNAPLEN = 1, 2, 3

_MOD = 1 << 32
#: ``x & _MASK`` is ``x % _MOD`` of an integer array (two's complement: negative ones too),
#: some 20 times faster than numpy's remainder of int64 (an integer division per element)
_MASK = _MOD - 1


class StreamMap(Mapping):
    """Read-only mapping flow row (int) -> stream bytes of one direction, over a shared buffer.

    Reads like a ``dict`` of the same content: ``m[f]`` (``KeyError`` for a flow without a
    stream), ``get``, ``in``, ``len``, iteration in ascending flow order, ``keys`` / ``items`` /
    ``values``, ``==`` with any mapping. Each value access copies the bytes out (a new ``bytes``
    object), so holding the mapping costs no memory beyond the shared buffer and a small index.
    """

    __slots__ = ("_mv", "_where")

    def __init__(self, buf: np.ndarray, flow: np.ndarray, start: np.ndarray, end: np.ndarray):
        """:param buf: uint8 array (m,), the concatenated streams.
        :param flow: int array (k,), flow rows (distinct).
        :param start: int array (k,); :param end: int array (k,): byte range of each in ``buf``.
        """
        self._mv = memoryview(buf).cast("B")
        self._where: dict[int, tuple[int, int]] = dict(
            zip(flow.tolist(), zip(start.tolist(), end.tolist())))

    def __getitem__(self, flow: int) -> bytes:
        s, e = self._where[flow]
        return self._mv[s:e].tobytes()

    def get(self, flow: int, default=None):
        """The stream of ``flow``, or ``default`` when it has none."""
        w = self._where.get(flow)
        return default if w is None else self._mv[w[0]:w[1]].tobytes()

    def __contains__(self, flow: object) -> bool:
        return flow in self._where

    def __iter__(self) -> Iterator[int]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def __repr__(self) -> str:
        return f"<StreamMap: {len(self)} streams>"


@dataclass(eq=False, repr=False)
class Streams:
    """Initial payload per flow and direction, concatenated (layout: module docstring).

    ``buf`` read-only uint8 array (total bytes,); ``flow`` int64 (n,); ``from_orig`` bool (n,);
    ``start``/``end`` int64 (n,) byte offsets into ``buf``. ``client`` / ``server`` map a flow
    row to the bytes of that direction (read-only mappings; flows without payload absent).
    """

    buf: np.ndarray
    flow: np.ndarray
    from_orig: np.ndarray
    start: np.ndarray
    end: np.ndarray
    #: bool (n,): the stream stopped before that direction's data did (see :func:`initial_streams`);
    #: None when not known
    cut: np.ndarray | None = None
    #: int8 (n,): why, where ``cut``: :data:`CUT_SNAPLEN`, else :data:`CUT_GAP`, else
    #: :data:`CUT_LIMIT`; 0 where not cut; None when not known
    cut_why: np.ndarray | None = None

    @classmethod
    def empty(cls) -> "Streams":
        """No streams (all arrays of length 0)."""
        buf = np.zeros(0, np.uint8)
        buf.flags.writeable = False
        return cls(buf, np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, np.int64),
                   np.zeros(0, np.int64), np.zeros(0, bool), np.zeros(0, np.int8))

    def __len__(self) -> int:
        return len(self.flow)

    def __repr__(self) -> str:
        return f"<Streams: {len(self)} streams, {len(self.buf)} bytes>"

    def spans(self, flows: np.ndarray, client: bool) -> tuple[np.ndarray, np.ndarray]:
        """Byte ranges in ``buf`` of one direction of the given flows, without a Python loop.

        :param flows: int array (k,) of flow rows (any order, repeats allowed).
        :param client: True for the client (originator) direction, False for the server's.
        :returns: ``(start, end)``, int64 arrays (k,): ``buf[start[i]:end[i]]`` is the stream of
            ``flows[i]`` in that direction; ``start == end == 0`` (empty) when it has none.
        """
        flows = np.asarray(flows, np.int64)
        if len(self.flow) == 0:
            return np.zeros(len(flows), np.int64), np.zeros(len(flows), np.int64)
        key = self.flow * 2 + (~self.from_orig)
        want = flows * 2 + (0 if client else 1)
        i = np.minimum(np.searchsorted(key, want), len(key) - 1)
        hit = key[i] == want
        return np.where(hit, self.start[i], 0), np.where(hit, self.end[i], 0)

    @cached_property
    def client(self) -> StreamMap:
        """Client (originator -> responder) direction: flow row -> bytes."""
        m = self.from_orig
        return StreamMap(self.buf, self.flow[m], self.start[m], self.end[m])

    @cached_property
    def server(self) -> StreamMap:
        """Server (responder -> originator) direction: flow row -> bytes."""
        m = ~self.from_orig
        return StreamMap(self.buf, self.flow[m], self.start[m], self.end[m])


def initial_streams(ft: FlowTable, flows_of_interest: np.ndarray | None = None) -> Streams:
    """Reassemble the first bytes of both directions of every TCP flow with payload.

    Parameters
    ----------
    ft:
        The flow table with its packet mapping (``pkt_flow``, ``pkt_from_orig`` and
        ``packets``: columns ``ts_ns``, ``proto``, ``tcp_flags``, ``seq``, ``pl_off``,
        ``pl_cap`` and the payload buffer).
    flows_of_interest:
        Optional boolean mask over flows (shape (n_flows,), or shorter: flows past its end
        count as not of interest); other flows are skipped.

    Returns
    -------
    Streams
        At most :data:`MAX_BYTES` bytes per flow and direction, the same bytes as
        :func:`_initial_streams_reference`. Never raises on packet data (inconsistent sequence
        numbers or payload offsets only send a direction to the slow path).

        ``cut`` says, per stream, that the bytes stop before the direction's data did, so a
        parser that finds no end (of a TLS handshake, say) has not seen one: the direction had
        more than :data:`MAX_SEGMENTS` data segments or more than :data:`MAX_BYTES` bytes, one
        of its first segments was cut short by the snaplen (``pl_cap < payload_len``), or its
        reassembly stopped at a gap (a segment not captured) with data beyond it. (Only the
        first MAX_SEGMENTS data segments and the count of the others are read, which is what a
        chunked analysis carries of a flow.)
    """
    p = ft.packets
    c = p.cols
    pf = ft.pkt_flow
    sel = (pf >= 0) & content_rows(c)   # (not a RST's text: flows.content_rows)
    sel &= c["proto"] == TCP  # UDP and ICMP payloads are datagrams, handled per packet
    rows = np.nonzero(sel)[0]
    if flows_of_interest is not None and len(rows):
        want = np.asarray(flows_of_interest).astype(bool, copy=False)
        fl = pf[rows]
        inside = fl < len(want)
        inside[inside] = want[fl[inside]]
        rows = rows[inside]
    if len(rows) == 0:
        return Streams.empty()

    # group = (flow, direction), client first; within a group timestamp order, ties capture order
    fo = np.asarray(ft.pkt_from_orig[rows], bool)
    grp = pf[rows].astype(np.int64) * 2 + (~fo).astype(np.int64)
    ts = c["ts_ns"][rows]
    if bool((ts[1:] >= ts[:-1]).all()):
        order = stable_order(grp)  # rows already in time order: same as lexsort
    else:
        order = np.lexsort((ts, grp))
    rows, grp = rows[order], grp[order]
    first = np.ones(len(rows), bool)
    first[1:] = grp[1:] != grp[:-1]
    gs = np.nonzero(first)[0]
    # keep the first MAX_SEGMENTS rows of each group
    pos = np.arange(len(rows)) - np.repeat(gs, np.diff(np.r_[gs, len(rows)]))
    keep = pos < MAX_SEGMENTS
    cut = np.diff(np.r_[gs, len(rows)]) > MAX_SEGMENTS     # per group: segments left unread
    why = np.where(cut, CUT_LIMIT, 0).astype(np.int8)
    if not keep.all():
        rows, grp, first = rows[keep], grp[keep], first[keep]
        gs = np.nonzero(first)[0]
    n, ng = len(rows), len(gs)
    gid = np.cumsum(first) - 1                      # group of each row
    seqs = (c["seq"][rows] + ((c["tcp_flags"][rows] & 0x02) != 0)) & _MASK
    lens = c["pl_cap"][rows].astype(np.int64)
    offs = c["pl_off"][rows].astype(np.int64)
    if "payload_len" in c:      # a segment cut short by the snaplen
        short = c["payload_len"][rows].astype(np.int64) > lens
        if short.any():
            cut[gid[short]] = True
            why[gid[short]] = CUT_SNAPLEN
    excl = np.cumsum(lens) - lens
    before = excl - excl[gs][gid]                   # payload bytes of the group before this row

    mv = memoryview(p.buf).cast("B")
    # simple group: every segment continues the previous one; payload inside the buffer; offsets
    # small enough that _reassemble would not read them as negative (always true in practice)
    bad = (offs + lens > len(mv)) | (before >= 1 << 31)
    bad[1:] |= ~first[1:] & (seqs[1:] != (seqs[:-1] + lens[:-1]) & _MASK)
    slow = np.zeros(ng, bool)
    slow[gid[bad]] = True
    # a direction whose SYN is there starts at its SYN's sequence number + 1: a first segment
    # before that (old data, or forged) goes through _reassemble, which leaves those bytes out;
    # one after it (the first data segments not captured) too: MAX_BYTES counts from the anchor
    # (a first segment another one repeats at the same sequence number: a capture whose numbers
    # never advance, which no stream placement reads; not started at the SYN's number, _at_syn)
    same = np.add.reduceat((seqs == seqs[gs][gid]).astype(np.int64), gs)   # (groups are contiguous runs)
    anchor = _anchors(ft, grp[gs], seqs[gs], np.where(same > 1, 0, lens[gs]))
    slow |= (anchor >= 0) & (((seqs[gs] - anchor) & _MASK) != 0)

    # stream lengths: simple groups = their payload cut at MAX_BYTES; the others reassembled first
    total = np.add.reduceat(lens, gs)
    glen = np.minimum(total, MAX_BYTES)
    over = (total > MAX_BYTES) & ~slow      # (the slow groups: past the gap or MAX_BYTES below)
    cut |= over
    why[over & (why == 0)] = CUT_LIMIT
    slow_groups = np.nonzero(slow)[0].tolist()
    slow_data = []
    if slow_groups:
        bounds = np.r_[gs, n].tolist()
        for g in slow_groups:
            a = int(anchor[g])
            data, more = _place([(int(seqs[i]), p.payload(int(rows[i])))
                                 for i in range(bounds[g], bounds[g + 1])], a if a >= 0 else None)
            glen[g] = len(data)
            slow_data.append(data)
            if more and why[g] != CUT_SNAPLEN:
                # (past MAX_BYTES placed whole, else a gap: a segment not captured)
                why[g] = CUT_LIMIT if len(data) >= MAX_BYTES else CUT_GAP
            cut[g] = cut[g] or more
    end = np.cumsum(glen)
    start = end - glen

    out = np.empty(int(end[-1]), np.uint8)
    om = memoryview(out)
    # simple groups: each segment's first ``take`` bytes (0 once MAX_BYTES is reached) to its place
    take = np.clip(MAX_BYTES - before, 0, lens)
    use = (take > 0) & ~slow[gid]
    dst = start[gid[use]] + before[use]
    copy_ranges(om, dst, mv, offs[use], take[use])
    for g, data in zip(slow_groups, slow_data):
        om[int(start[g]):int(end[g])] = data
    out.flags.writeable = False
    head = grp[gs]
    return Streams(out, head >> 1, (head & 1) == 0, start, end, cut, why)


def stable_order(key: np.ndarray) -> np.ndarray:
    """``np.argsort(key, kind="stable")`` of a non-negative int array (n,) (int64 positions),
    as one plain sort of the distinct keys ``key * n + position`` (several times faster than
    numpy's stable argsort) when those fit in int64."""
    n = len(key)
    if n == 0:
        return np.zeros(0, np.int64)
    key = np.asarray(key, np.int64)
    if int(key.min()) < 0 or int(key.max()) >= (1 << 62) // n:
        return np.argsort(key, kind="stable")
    return np.sort(key * n + np.arange(n, dtype=np.int64)) % n


def _reassemble(segs: list[tuple[int, bytes]], anchor: int | None = None) -> bytes:
    """The stream of :func:`_place` (its bytes only)."""
    return _place(segs, anchor)[0]


def _place(segs: list[tuple[int, bytes]], anchor: int | None = None) -> tuple[bytes, bool]:
    """Place TCP segments by sequence number (mod 2**32) from ``anchor`` on and join them,
    starting at the first byte placed and stopping at the first gap after it. A byte sent more
    than once with different values keeps the value of its first copy in ``segs`` order (time
    order, capture order for equal times), as Zeek's reassembler and Wireshark do: a later
    segment cannot rewrite what came first (a forged retransmission of a ClientHello cannot
    change its SNI).

    :param segs: (sequence number of the first byte, payload) per segment, in time order,
        non-empty list.
    :param anchor: the sequence number of the direction's first byte (its SYN's + 1), or None
        (no SYN seen: the first segment's). Bytes before it (half the sequence space back) are
        old data, as for Zeek: a segment written later with a sequence number below the start
        of the stream cannot put its bytes in front of it.
    :returns: (at most :data:`MAX_BYTES` bytes, whether a segment reaches past them: the
        direction had more, beyond a gap or MAX_BYTES).
    """
    base = segs[0][0] if anchor is None else anchor
    out, have = bytearray(), bytearray()    # the bytes from base on, and 1 where a byte is taken
    far = 0                                 # the furthest end of a segment from base
    for s, d in segs:
        off = (s - base) % (1 << 32)
        if off >= 1 << 31:                  # before base: only what reaches past it counts
            off -= 1 << 32
            d = d[-off:] if len(d) > -off else b""
            off = 0
        if d:
            far = max(far, off + len(d))
        end = min(off + len(d), MAX_BYTES)
        if end <= off:
            continue
        if end > len(out):
            out += bytes(end - len(out))
            have += bytes(end - len(have))
        i = off
        while i < end:      # each run of bytes not taken yet in [off, end)
            j = have.find(1, i, end)
            j = end if j < 0 else j
            if j > i:
                out[i:j] = d[i - off:j - off]
                have[i:j] = b"\x01" * (j - i)
            i = have.find(0, j, end)
            if i < 0:
                break
    first = have.find(1)                    # (the stream's first byte may not be the anchor's)
    if first < 0:
        return b"", far > 0
    gap = have.find(0, first)
    data = bytes(out[first:] if gap < 0 else out[first:gap])
    return data, far > first + len(data)


#: a direction's first data segment at its SYN's own sequence number (not + 1) with more than this
#: many bytes starts the stream there: a capture crafted without advancing the sequence numbers
#: (scapy's ``seq=0`` on every segment), whose first byte would be cut off (a ClientHello no longer
#: read). No stack sends data there; a keep-alive probe before any data (1 byte at the ISN, Windows)
#: has at most this many and is still left out; so is a first segment another one of the direction
#: repeats at that number (numbers that never advance: no placement reads such a stream).
AT_SYN_MIN = 1

#: a SYN's sequence number + 1 anchors a direction's stream when its first data segment is at
#: most this far (bytes, either way) from it (a capture may hold SYN-ACKs with another ISN: a SYN
#: proxy, a retransmitted answer of another attempt)
ANCHOR_RANGE = 1 << 20


def _syn_rows(ft: FlowTable) -> tuple[np.ndarray, np.ndarray]:
    """The SYN packets of the flows: (their rows, their (flow row * 2 + 0 for the client
    direction, 1 for the server's) group)."""
    c, pf = ft.packets.cols, ft.pkt_flow
    rows = np.flatnonzero((pf >= 0) & (c["proto"] == TCP) & ((c["tcp_flags"] & 0x02) != 0))
    return rows, pf[rows].astype(np.int64) * 2 + (~np.asarray(ft.pkt_from_orig[rows], bool))


def _anchors(ft: FlowTable, groups: np.ndarray, first_seq: np.ndarray, first_len: np.ndarray) -> np.ndarray:
    """int64 array (len(groups),): the stream start of each (flow, direction) group of
    ``groups`` (ascending, distinct) whose first data segment begins at ``first_seq`` with
    ``first_len`` bytes: the SYN sequence number + 1 nearest to it within :data:`ANCHOR_RANGE`
    (the latest SYN among equally near ones), the first segment's own start where that is the
    SYN's sequence number itself (:func:`_at_syn`), -1 where none (the first segment starts the
    stream). :func:`_anchor` of :func:`_syn_anchors`, on whole arrays."""
    out = np.full(len(groups), -1, np.int64)
    rows, grp = _syn_rows(ft)
    if not len(rows) or not len(groups):
        return out
    at = np.minimum(np.searchsorted(groups, grp), len(groups) - 1)
    mine = groups[at] == grp
    rows, at = rows[mine], at[mine]
    c = ft.packets.cols
    v = (c["seq"][rows].astype(np.int64) + 1) & _MASK
    d = (np.asarray(first_seq, np.int64)[at] - v) & _MASK
    d = np.abs(np.where(d >= 1 << 31, d - _MOD, d))
    near = d <= ANCHOR_RANGE
    rows, at, v, d = rows[near], at[near], v[near], d[near]
    if len(rows):
        o = np.lexsort((-rows, -c["ts_ns"][rows], d, at))      # per group: nearest, then latest
        first = np.r_[True, at[o][1:] != at[o][:-1]]
        out[at[o][first]] = v[o][first]
        fs = np.asarray(first_seq, np.int64)
        at_syn = (out >= 0) & (((out - 1) & _MASK) == fs) & (np.asarray(first_len) > AT_SYN_MIN)
        out[at_syn] = fs[at_syn]
    return out


def _syn_anchors(ft: FlowTable) -> dict[int, list[int]]:
    """(flow row * 2 + 0 for the client direction, 1 for the server's) -> the distinct sequence
    numbers + 1 of the direction's SYNs, latest first, for each direction with a SYN among the
    packets: where its data may start (:func:`_anchor`; the per-direction reference of
    :func:`_anchors`)."""
    rows, grp = _syn_rows(ft)
    c = ft.packets.cols
    out: dict[int, list[int]] = {}
    o = np.lexsort((rows, c["ts_ns"][rows], grp))[::-1]     # per group, latest first
    for g, v in zip(grp[o].tolist(), ((c["seq"][rows[o]].astype(np.int64) + 1) % (1 << 32)).tolist()):
        got = out.setdefault(g, [])
        if v not in got:
            got.append(v)
    return out


def _anchor(candidates: list[int] | None, first_seq: int, first_len: int = 0) -> int | None:
    """The stream start of a direction whose first data segment (in time order) begins at
    ``first_seq`` with ``first_len`` bytes: the SYN sequence number + 1 among ``candidates``
    (latest first) nearest to it, if within :data:`ANCHOR_RANGE`, or ``first_seq`` itself when
    that is the SYN's own sequence number (:data:`AT_SYN_MIN`); else None (the first segment
    starts the stream)."""
    best = None
    for a in candidates or ():
        d = (first_seq - a) % (1 << 32)
        d = d - (1 << 32) if d >= 1 << 31 else d
        if abs(d) <= ANCHOR_RANGE and (best is None or abs(d) < best[0]):
            best = (abs(d), a)
    if best is not None and (best[1] - 1) % (1 << 32) == first_seq and first_len > AT_SYN_MIN:
        return first_seq
    return None if best is None else best[1]


def _initial_streams_reference(ft: FlowTable, flows_of_interest: np.ndarray | None = None,
                               ) -> tuple[dict[int, bytes], dict[int, bytes]]:
    """The former per-direction implementation of :func:`initial_streams`, kept as the reference
    the tests compare the vectorised one with (slow: one Python loop per direction).

    :returns: (client, server): dicts flow row -> bytes, flows without payload absent.
    """
    p = ft.packets
    c = p.cols
    sel = (ft.pkt_flow >= 0) & content_rows(c)
    sel &= c["proto"] == TCP
    if flows_of_interest is not None:
        sel &= np.isin(ft.pkt_flow, np.nonzero(flows_of_interest)[0])
    rows = np.nonzero(sel)[0]
    client: dict[int, bytes] = {}
    server: dict[int, bytes] = {}
    if len(rows) == 0:
        return client, server
    fl = ft.pkt_flow[rows]
    fo = ft.pkt_from_orig[rows]
    order = np.lexsort((c["ts_ns"][rows], ~fo, fl))
    rows, fl, fo = rows[order], fl[order], fo[order]
    grp = fl * 2 + (~fo).astype(np.int64)
    start = np.ones(len(grp), bool)
    start[1:] = grp[1:] != grp[:-1]
    pos = np.arange(len(grp)) - np.maximum.accumulate(np.where(start, np.arange(len(grp)), 0))
    keep = pos < MAX_SEGMENTS
    rows, fl, fo, grp = rows[keep], fl[keep], fo[keep], grp[keep]
    proto = c["proto"][rows]
    seqs = (c["seq"][rows] + ((c["tcp_flags"][rows] & 0x02) != 0)) % (1 << 32)
    bounds = np.nonzero(np.r_[True, grp[1:] != grp[:-1], True])[0]
    anchors = _syn_anchors(ft)
    for b0, b1 in zip(bounds[:-1], bounds[1:]):
        f = int(fl[b0])
        segs = [(int(seqs[i]), p.payload(int(rows[i]))) for i in range(b0, b1)]
        alone = sum(1 for q, _ in segs if q == segs[0][0]) == 1
        a = _anchor(anchors.get(f * 2 + int(not fo[b0])), segs[0][0], len(segs[0][1]) if alone else 0)
        data = _reassemble(segs, a) if proto[b0] == TCP else b"".join(s for _, s in segs)[:MAX_BYTES]
        (client if fo[b0] else server)[f] = data
    return client, server
