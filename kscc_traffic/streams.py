"""The first bytes of each TCP direction, reassembled in sequence order.

Only what the application parsers need is kept: up to :data:`MAX_SEGMENTS` data segments and
:data:`MAX_BYTES` bytes per direction, which is enough for a ~2 KB TLS ClientHello split over many
segments, a TLS 1.2 server flight with its certificate chain, an HTTP request head or a few DNS
messages over TCP. Retransmitted and overlapping segments are taken once; the stream stops at the
first gap (a segment not captured).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .flows import TCP, FlowTable

MAX_SEGMENTS = 24
MAX_BYTES = 16384


@dataclass
class Streams:
    """Initial payload per flow: ``client[flow]`` and ``server[flow]`` are bytes (flow = row of the
    flow table); flows without payload are absent."""

    client: dict[int, bytes]
    server: dict[int, bytes]


def initial_streams(ft: FlowTable, flows_of_interest: np.ndarray | None = None) -> Streams:
    """Reassemble the first bytes of both directions of every TCP flow with payload.

    :param ft: the flow table with its packet mapping.
    :param flows_of_interest: optional boolean mask over flows; others are skipped.
    :returns: :class:`Streams` (bytes per flow and direction, at most MAX_BYTES each).
    """
    p = ft.packets
    c = p.cols
    sel = (ft.pkt_flow >= 0) & (c["pl_cap"] > 0) & (c["pl_off"] >= 0)
    sel &= c["proto"] == TCP  # UDP and ICMP payloads are datagrams, handled per packet
    if flows_of_interest is not None:
        sel &= np.isin(ft.pkt_flow, np.nonzero(flows_of_interest)[0])
    rows = np.nonzero(sel)[0]
    client: dict[int, bytes] = {}
    server: dict[int, bytes] = {}
    if len(rows) == 0:
        return Streams(client, server)
    fl = ft.pkt_flow[rows]
    fo = ft.pkt_from_orig[rows]
    order = np.lexsort((c["ts_ns"][rows], ~fo, fl))
    rows, fl, fo = rows[order], fl[order], fo[order]
    # keep the first MAX_SEGMENTS rows of each (flow, direction)
    grp = fl * 2 + (~fo).astype(np.int64)
    start = np.ones(len(grp), bool)
    start[1:] = grp[1:] != grp[:-1]
    pos = np.arange(len(grp)) - np.maximum.accumulate(np.where(start, np.arange(len(grp)), 0))
    keep = pos < MAX_SEGMENTS
    rows, fl, fo, grp = rows[keep], fl[keep], fo[keep], grp[keep]
    proto = c["proto"][rows]
    # data carried by a SYN (TCP Fast Open) starts one after the SYN's own sequence number
    seqs = (c["seq"][rows] + ((c["tcp_flags"][rows] & 0x02) != 0)) % (1 << 32)
    bounds = np.nonzero(np.r_[True, grp[1:] != grp[:-1], True])[0]
    for b0, b1 in zip(bounds[:-1], bounds[1:]):
        f = int(fl[b0])
        segs = [(int(seqs[i]), p.payload(int(rows[i]))) for i in range(b0, b1)]
        data = _reassemble(segs) if proto[b0] == TCP else b"".join(s for _, s in segs)[:MAX_BYTES]
        (client if fo[b0] else server)[f] = data
    return Streams(client, server)


def _reassemble(segs: list[tuple[int, bytes]]) -> bytes:
    """Order TCP segments by sequence number (mod 2**32, relative to the first) and join them,
    taking each byte once and stopping at the first gap."""
    base = segs[0][0]
    rel = sorted((((s - base) % (1 << 32)), d) for s, d in segs)
    # sequence numbers that went backwards relative to the first segment wrap to huge values:
    # treat offsets above 2**31 as before the first segment (retransmissions of older data)
    rel = [(r - (1 << 32) if r >= (1 << 31) else r, d) for r, d in rel]
    rel.sort()
    out = bytearray()
    start = rel[0][0]
    for r, d in rel:
        off = r - start
        if off > len(out):
            break  # gap: a segment is missing
        if off + len(d) > len(out):
            out += d[len(out) - off:]
        if len(out) >= MAX_BYTES:
            break
    return bytes(out[:MAX_BYTES])
