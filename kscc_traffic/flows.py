"""Packets -> bidirectional flows (connections), with Zeek conn.log columns.

A flow is keyed by the 5-tuple (plus the VLAN stack and the IP version: an IPv6 packet between
IPv4-mapped addresses is not the IPv4 packet of the same numbers) in both directions. Within one
key, a new flow starts at a SYN whose sequence number differs from the key's previous SYN (port
reuse; not a simultaneous open's second SYN, see :func:`_simultaneous_open`), at a SYN with the
same ISN sent again after a RST and accepted (:func:`_answered_retry`) or after a FIN from each
side (:func:`_after_fins`), at a flow's first SYN after packets of another connection on the key
(:func:`_syn_after_other`: the capture began inside an earlier connection from the same port), at a
SYN-ACK at another number than the one before from the only side heard (:func:`_synack_reuse`:
backscatter), and after an idle gap longer than the protocol's inactivity timeout (Zeek's defaults: TCP 5 min, UDP 1 min,
ICMP 1 min), and, once a TCP connection has closed (FIN both ways, or RST), at a packet more than
:data:`CLOSE_DELAY_NS` (5 s, Zeek's ``tcp_close_delay``) after the one before. Every flow therefore
ends by a rule that looks only backwards in time, so a capture can be analysed in chunks and a
flow summarised once it can no longer grow (:mod:`kscc_traffic.chunked`). (The accepted retry
reads the answer after the SYN: a closed flow is held until :data:`CLOSE_DELAY_NS` after its last
packet, the retried SYN, so an answer within that delay is seen.)

The originator is, in this order: the sender of the flow's first SYN; the receiver of its first
SYN-ACK; for flows whose start was not captured, the side whose port is not a server port (a
documented or well-known port is the responder); else the sender of the first packet.

Duplicated frames (span ports, mirrored twice; pktmon writing a packet at each component: same
direction, same IP id, same TCP seq/ack/flags and lengths as the packet before them in that
direction, less than :data:`DUP_WINDOW_NS` apart) count once; they are reported in
``FlowTable.duplicates``. Two such packets at one time that is no clock (:func:`no_clock`: 0,
or clamped; or two times of the epoch's first 10 ms, as Simple Packet Blocks without any clock
reading get) are copies only when the second is the very next frame of the file and an IPv4 id
proves it: a capture whose clock is frozen keeps its retransmissions.
A data segment equal to one of the first ones of its flow and direction, IP id and checksum
included, whose data the peer acknowledged before it came, is such a copy written late
(:data:`DUP_LATE_NS`, :func:`_late_copies`), not a retransmission.

Everything here works on whole columns (numpy); no Python object per packet.
"""
from __future__ import annotations

import hashlib
import ipaddress
import re
import sys
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from .addresses import dotted_quads, ipv6_text
from .capture.files import TS_MAX_NS
from .capture.packets import Packets
from .columns import Columns

try:  # the endpoint state machine's loop in C (setup.py builds it; optional)
    from . import _tcpstate
except ImportError:  # pragma: no cover - not built: the same steps in numpy
    _tcpstate = None
try:  # the flow-key hash rounds and uid digits in C (setup.py builds it; optional)
    from . import _keyhash
except ImportError:  # pragma: no cover - not built: the same arithmetic in numpy
    _keyhash = None

TCP, UDP, ICMP, ICMP6 = 6, 17, 1, 58
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

#: inactivity timeouts in nanoseconds, by IP protocol (Zeek's tcp/udp/icmp_inactivity_timeout)
IDLE_TIMEOUT_NS = {TCP: 300 * 10**9, UDP: 60 * 10**9, ICMP: 60 * 10**9, ICMP6: 60 * 10**9}
DEFAULT_IDLE_NS = 60 * 10**9
#: UDP flows to or from these ports (Zeek's DNS analyzer's: DNS 53, NetBIOS name service 137, mDNS
#: 5353, LLMNR 5355) end after :data:`DNS_IDLE_NS` without a packet (Zeek's ``dns_session_timeout``:
#: its DNS analyzer removes such a connection after 10 s idle), not the 60 s of other UDP flows
DNS_PORTS = (53, 137, 5353, 5355)
DNS_IDLE_NS = 10 * 10**9
#: a TCP connection that closed (FIN both ways, or a RST) ends when the next packet of its 5-tuple
#: comes more than this later (Zeek's tcp_close_delay / tcp_reset_delay: 5 s)
CLOSE_DELAY_NS = 5 * 10**9
#: two identical frames closer than this are one packet seen twice (IPv4 with a non-zero IP id)
DUP_WINDOW_NS = 50_000_000
#: ... and without an IP id to compare (IPv6, or IPv4 id 0)
DUP_WINDOW_NOID_NS = 1_000_000
#: a data segment equal in every header field (a non-zero IPv4 id and the transport checksum
#: included) and payload to one of its flow and direction before it, whose data the peer had
#: acknowledged before it came, at most this much later, is the same datagram captured again (a
#: span port or a second capture interface writing its copy late, other packets between them),
#: not a retransmission (:func:`_late_copies`)
DUP_LATE_NS = 2 * 10**9
#: a SYN-ACK stamped at most this much before the SYN it acknowledges is taken as sent after it,
#: its side's clock behind (:func:`_synack_after_syn`): two capture interfaces whose clocks differ
#: slightly (a two-port tap, a multi-NIC capture merged in time order)
SKEW_MAX_NS = 5_000_000

#: the time range (epoch ns) of a classic pcap record whose 32-bit seconds field is at its
#: largest (0xFFFFFFFF: 2106-02-07 06:28:15 UTC), where a device clamps the times it cannot write
_U32_SECONDS_CEIL_NS = (0xFFFFFFFF * 10**9, 0x1_0000_0000 * 10**9)


#: the span (ns) from the epoch whose times are no clock reading (:func:`no_clock`): ten million
#: Simple Packet Blocks timed 1 ns apart, and not the first 10 ms of a trace timed from 0 (ns-3,
#: text2pcap), whose packets then keep their duplicate rule (review s53 #3)
NO_CLOCK_SPAN_NS = 10_000_000


def forwarded_copies(cols: dict[str, np.ndarray], dup_of: np.ndarray | None,
                     counted_before: np.ndarray | None = None) -> int:
    """Of the duplicates ``dup_of`` marks (int64 array, one per row of the packet columns ``cols``:
    the row of the packet each copies, -1 for the others; None: no duplicate), how many are a
    packet the capturing host forwarded: captured as it arrived and again as it left (``l2_out``
    differs: a Linux cooked capture's packet types 0 and 4, ``tcpdump -i any`` on a router or
    firewall), its TTL (IPv6 hop limit) one lower as it left. Rows of ``counted_before`` (bool
    array like ``dup_of``: copies counted by an earlier batch, :func:`build_flows`' ``copies``)
    are not counted again. 0 without ``l2_out`` or ``ttl`` columns."""
    if dup_of is None or "l2_out" not in cols or "ttl" not in cols:
        return 0
    out, ttl = cols["l2_out"], cols["ttl"].astype(np.int64)
    cp = other_way_copies(dup_of, out)
    if counted_before is not None and len(cp):
        cp = cp[~counted_before[cp]]
    if not len(cp):
        return 0
    og = dup_of[cp]
    leaving = np.where(out[cp], cp, og)             # (the copy that left, the one that came in)
    came = np.where(out[cp], og, cp)
    fwd = (ttl[leaving] >= 0) & (ttl[leaving] + 1 == ttl[came])
    return int(np.count_nonzero(fwd))


def other_way_copies(dup_of: np.ndarray, l2_out: np.ndarray) -> np.ndarray:
    """The rows (sorted int64 array) of the duplicates ``dup_of`` marks (one per packet row: the row
    each copies, -1 for the others) that were captured the other way than the packet they copy
    (``l2_out``, bool per row: leaving the capturing host, or arriving): a forwarded packet's."""
    cp = np.flatnonzero(dup_of >= 0)
    return cp[l2_out[cp] != l2_out[dup_of[cp]]]


def no_clock(ts: np.ndarray) -> np.ndarray:
    """Bool array: each time (int64 epoch ns) is no clock reading but a value standing for
    none: 0 (the epoch: a NIC or tool that writes no time) or within the epoch's first
    :data:`NO_CLOCK_SPAN_NS` (the times the reader gives Simple Packet Blocks of a capture without
    any clock reading, 1 ns apart: break-it s53 fuzz #4), the reader's clamp
    (:data:`~kscc_traffic.capture.files.TS_MAX_NS` either way: a time beyond the years
    1823-2116) or the last second a classic pcap record's 32-bit seconds can hold (a device
    clamping its times to it). Packets stamped so share their time without having been sent
    at one instant."""
    ts = np.asarray(ts, np.int64)
    lo, hi = _U32_SECONDS_CEIL_NS
    return (((ts >= 0) & (ts < NO_CLOCK_SPAN_NS)) | (ts >= TS_MAX_NS) | (ts <= -TS_MAX_NS)
            | ((ts >= lo) & (ts < hi)))


def content_rows(cols, rows=slice(None)) -> np.ndarray:
    """Per packet row (of ``rows``; bool array): the row's captured payload is application
    content to inspect: ``pl_cap`` > 0, ``pl_off`` >= 0, and the packet is not a TCP RST. The
    data of a RST is not part of the stream (RFC 9293 §3.5.3: a reset is processed without its
    text; RFC 1122 §4.2.2.12 allows diagnostic text in it): Zeek leaves it out of the content it
    analyses and Wireshark shows it apart ("RST with data", ``tcp.reset_cause``, no
    ``tcp.payload``), so neither engine reads it as the server's first bytes nor counts it
    as a segment the snaplen cut. It still counts in ``payload_len`` (the history's ``d``)."""
    cap, off = cols["pl_cap"][rows], cols["pl_off"][rows]
    rst = (cols["proto"][rows] == TCP) & ((cols["tcp_flags"][rows] & RST) != 0)
    return (cap > 0) & (off >= 0) & ~rst


PROTO_NAMES = {TCP: "tcp", UDP: "udp", ICMP: "icmp", ICMP6: "icmp", 132: "sctp", 47: "gre",
               50: "esp", 51: "ah", 2: "igmp", 89: "ospf", 112: "vrrp"}

#: name -> (dtype, unit, meaning) of the flow table's first columns (build_flows'), in output order
FLOW_COLUMNS: Columns = Columns({
    "ts": ("float64", "s, epoch", "time of the flow's first packet"),
    "uid": ("object", "", "unique flow id, stable for the same capture ('C' + 17 base62)"),
    "orig_h": ("object", "", "originator address (the side that opened the flow)"),
    "orig_p": ("int64", "", "originator port; ICMP: type of the first message; -1 when unknown"),
    "resp_h": ("object", "", "responder address"),
    "resp_p": ("int64", "", "responder port; ICMP: the counterpart type of the first message when it is a request or reply (echo 8 <-> 0, as Zeek), else its code; -1 when unknown"),
    "proto": ("object", "", "transport: tcp, udp, icmp, or another IP protocol name/number"),
    "service": ("object", "", "application protocol recognised in the payload: ssl, http, dns, http,ssl (TLS "
                "inside an HTTP CONNECT tunnel), quic (UDP: a QUIC Initial first), or ''"),
    "duration": ("float64", "s", "last packet time minus first packet time; TCP, as Zeek: once both sides "
                 "sent a FIN or RST, the packets after the one that closed the second side do not count "
                 "(the last ACK, FINs sent again, a late RST)"),
    "orig_pkts": ("int64", "packets", "packets from the originator (duplicates excluded)"),
    "orig_bytes": ("int64", "bytes", "transport payload bytes from the originator (TCP: from sequence numbers, as Zeek)"),
    "resp_pkts": ("int64", "packets", "packets from the responder"),
    "resp_bytes": ("int64", "bytes", "transport payload bytes from the responder (TCP: from sequence numbers, as Zeek)"),
    "conn_state": ("object", "", "Zeek connection state (S0, S1, SF, REJ, S2, S3, RSTO, RSTR, RSTOS0, RSTRH, SH, SHR, OTH)"),
    "history": ("object", "", "Zeek history letters (upper case: originator; ^: direction inferred)"),
    "orig_ip_bytes": ("int64", "bytes", "IP bytes from the originator (from the IP length field)"),
    "resp_ip_bytes": ("int64", "bytes", "IP bytes from the responder"),
    "vlan": ("int64", "", "802.1Q/802.1ad VLAN ID of the flow's first packet, outer tag (0..4095; 0 untagged, "
             "where Zeek leaves the field unset), as Zeek's vlan"),
    "inner_vlan": ("int64", "", "VLAN ID of the inner tag of a double-tagged (QinQ) first packet, the innermost "
                   "one of a deeper stack (0 with one tag or none, where Zeek leaves it unset), as Zeek's inner_vlan"),
    "cast": ("object", "", "unicast, broadcast (limited or directed) or multicast"),
    "partial": ("bool", "", "TCP: the originator's SYN was not captured (the flow started before the capture)"),
    "icmp_unreachable": ("object", "", "ICMP/ICMPv6 error quoting this flow, e.g. 'administratively prohibited (3/13) from 203.0.113.1', 'port unreachable (3/3) from 203.0.113.10, the destination itself' (sent by the quoted datagram's destination: nothing listens there), ' with its own TTL (52, as its earlier packets)' before ', the destination itself' when it came with the TTL (hop limit) of that address's earlier packets (its own stack's: icmpttl.own_ttl_evidence), or ', sent by the client itself, refusing the server's late answer (the client had stopped listening)' when that destination is the flow's originator (no delivery error: judged by the answer): destination unreachable, time exceeded in transit, parameter problem; after '; ' (or alone) a path-MTU error, ICMP fragmentation needed (3/4) or ICMPv6 packet too big (2/0), then a fragment reassembly timeout (ICMP 11/1, ICMPv6 3/1: the destination had the first fragment, not all), which change no verdict (unreachable.find_errors)"),
    "ts_ns": ("int64", "ns, epoch", "time of the flow's first packet, exact"),
})


@dataclass
class FlowTable:
    """Flows plus the per-packet mapping used by later stages.

    ``flows``: DataFrame with the columns of :data:`FLOW_COLUMNS` (one row per flow).
    ``pkt_flow``: int64 array, for each row of ``packets`` the flow row it belongs to
    (-1: not part of any flow, e.g. an ICMP error attached elsewhere or a duplicate).
    ``pkt_from_orig``: bool array, the packet was sent by the flow's originator.
    ``duplicates``: number of duplicated frames dropped.
    ``dup_of``: int64 array, for each dropped duplicate the row of the packet it copies (same
    flow and direction), -1 for every other row (None when nothing was dropped).
    ``seq_bytes``: int64 array (len(flows), 2): per TCP flow the (originator, responder) payload
    bytes from sequence numbers (:func:`tcp_payload_bytes`), -1 for other flows (None when there
    is no TCP flow); ``byte_sums``: the same shape, the payload bytes summed packet by packet
    (what ``orig_bytes``/``resp_bytes`` are for the other flows).
    ``vlan_stack``: int64 array (len(flows)): per flow the whole VLAN stack of its first packet,
    encoded as the packets' ``vlan`` column (:func:`kscc_traffic.capture._slowpath.vlan_value`),
    the part of the flow key the ``vlan`` and ``inner_vlan`` columns (:func:`vlan_ids`) tell
    only in part for three tags or more; None for a table made otherwise (:func:`vlan_key`
    then rebuilds it from those columns).
    ``side_ttl``: int16 array (len(flows), 2): per flow the IP TTL (IPv6 hop limit) of the
    originator's first packet and of the responder's, -1 when that side sent none or its TTL is
    unknown; None for a table made otherwise. ``first_ip_id``: int32 array (len(flows)): per flow
    the IPv4 identification of its first packet, -1 for IPv6 or unknown; None likewise.
    ``first_isn``: int64 array (len(flows)): per TCP flow whose first packet is the originator's
    SYN (no ACK), that SYN's sequence number (its ISN, 0 to 2**32-1; a NAT that translates ports
    keeps it, most do), -1 for the others; None likewise.
    ``idle_before``: int64 array (len(flows)): per TCP flow that began because its 5-tuple had been
    silent longer than the idle timeout (:data:`IDLE_TIMEOUT_NS`: a connection going on after an
    idle time, split off as Zeek splits it) while its earlier part was open
    (:data:`GOING_ON_STATES`), that silence in ns; 0 for the others; None likewise.
    """

    flows: pd.DataFrame
    packets: Packets
    pkt_flow: np.ndarray
    pkt_from_orig: np.ndarray
    duplicates: int = 0
    dup_of: np.ndarray | None = None
    seq_bytes: np.ndarray | None = None
    byte_sums: np.ndarray | None = None
    vlan_stack: np.ndarray | None = None
    side_ttl: np.ndarray | None = None
    first_ip_id: np.ndarray | None = None
    idle_before: np.ndarray | None = None
    first_isn: np.ndarray | None = None


def dns_flows(proto: np.ndarray, port_a: np.ndarray, port_b: np.ndarray) -> np.ndarray:
    """Bool array: UDP (``proto`` 17) with either port in :data:`DNS_PORTS` (the flows whose
    inactivity timeout is :data:`DNS_IDLE_NS`)."""
    # (a comparison per port: np.isin's set-up costs more than these on a batch's packets)
    port_a, port_b = np.asarray(port_a), np.asarray(port_b)
    out = np.asarray(proto) == UDP
    on = np.zeros(out.shape, bool)
    for p in DNS_PORTS:
        on |= port_a == p
        on |= port_b == p
    return out & on


def _default_server_port(proto: np.ndarray, port: np.ndarray) -> np.ndarray:
    return (port >= 0) & (port < 1024)


#: address texts already made (bounded; cleared when full)
_ADDRESS_CACHE: dict[tuple[int, int], str] = {}
_ADDRESS_CACHE_MAX = 1 << 16


def _one_address(h: int, l: int) -> str:
    t = _ADDRESS_CACHE.get((h, l))
    if t is None:
        if h == 0 and (l >> 32) == 0xFFFF:
            t = str(ipaddress.IPv4Address(l & 0xFFFFFFFF))
        else:
            t = ipv6_text((h << 64) | l)
        if len(_ADDRESS_CACHE) >= _ADDRESS_CACHE_MAX:
            _ADDRESS_CACHE.clear()
        _ADDRESS_CACHE[(h, l)] = t
    return t


def _mapped(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Bool array: the 128-bit address is in ::ffff:0:0/96 (how IPv4 addresses are stored)."""
    return (hi == 0) & ((lo >> np.uint64(32)) == np.uint64(0xFFFF))


def address_text(hi: np.ndarray, lo: np.ndarray, v6: np.ndarray | None = None) -> np.ndarray:
    """128-bit addresses (IPv4 stored as ::ffff:a.b.c.d) -> object array of address strings.

    ``v6``: bool array, True where the address is one of an IPv6 packet (the ``ipver`` column
    is 6); such an address in ::ffff:0:0/96 is written as IPv6 (``::ffff:198.51.100.7``, as
    Wireshark), not as the IPv4 address of the same numbers. None: every address in
    ::ffff:0:0/96 is IPv4."""
    if not len(hi):
        return np.zeros(0, object)
    hi = np.asarray(hi, np.uint64)
    lo = np.asarray(lo, np.uint64)
    if v6 is not None:
        m = np.asarray(v6, bool)
        if m.any():
            m = m & _mapped(hi, lo)
            if m.any():
                out = address_text(hi, lo)
                out[m] = ["::ffff:" + t for t in out[m].tolist()]
                return out
    if not hi.any():  # IPv4 (and ::/64): one 64-bit key
        ulo, inv = np.unique(lo, return_inverse=True)
        uhi = np.zeros(len(ulo), np.uint64)
    else:
        uniq, inv = np.unique(np.stack([hi, lo], axis=1), axis=0, return_inverse=True)
        uhi, ulo = uniq[:, 0], uniq[:, 1]
    four = _mapped(uhi, ulo)
    texts = np.empty(len(ulo), dtype=object)
    if four.any():
        texts[four] = _quads(ulo[four] & np.uint64(0xFFFFFFFF))
    if not four.all():
        other = np.flatnonzero(~four)
        texts[other] = [_one_address(h, l) for h, l in zip(uhi[other].tolist(), ulo[other].tolist())]
    return texts[inv.reshape(-1)]


def _quads(a: np.ndarray) -> np.ndarray:
    """IPv4 addresses (uint64 array, each below 2**32) -> object array of their dotted-quad
    texts: :mod:`._tcpstate`'s ``quad_texts`` (one C loop) when built, else
    :func:`kscc_traffic.addresses.dotted_quads` (the same texts: tests/test_flow_order_compiled.py)."""
    compiled = getattr(_tcpstate, "quad_texts", None)
    if compiled is None:
        return dotted_quads(a)
    out = np.empty(len(a), object)
    out[:] = compiled(np.ascontiguousarray(a, np.uint64))
    return out


def repeated(value, n: int) -> np.ndarray:
    """Object array of ``n`` references to the one object ``value`` (a text: what a masked
    assignment of it makes). ``np.full(n, text, dtype=object)`` makes a new copy of the text per
    row, which costs more to build, and then to hash and compare, than the array itself."""
    out = np.empty(n, dtype=object)
    out.fill(value)
    return out


def label_index(names) -> pd.Index:
    """Column labels as an ``object`` Index. pandas 3 makes text labels its Arrow-backed
    ``str`` dtype, through which every column read and every column added goes: on a table of
    a batch's size (4,000 rows, 56 columns) a read costs ~1.7 times and an added column ~5
    times what they cost with ``object`` labels, and the pipeline reads and adds a few hundred
    per batch. The same labels, only their Index's dtype differs (the output table's are built
    anew by ``analyze._schema``)."""
    return pd.Index(list(names), dtype=object)


#: pandas' constructor from a list of arrays without checks (a private classmethod, in pandas
#: 1.x to 3.x): None where it is gone, then :func:`frame_of` builds the frame the public way
_FROM_ARRAYS = getattr(pd.DataFrame, "_from_arrays", None)


def frame_of(columns: dict[str, np.ndarray], index: pd.Index | None = None) -> pd.DataFrame:
    """A frame of the 1-D numpy arrays ``columns`` (label -> array, all of one length ``n``;
    dtype kinds b, i, u, f or O), each column of its array's dtype (an object array stays
    ``object``, never pandas 3's inferred ``str``), labels an ``object`` Index
    (:func:`label_index`), ``index`` (default ``RangeIndex(n)``).

    Made by pandas' ``DataFrame._from_arrays`` (~4 times faster than the constructor from a dict
    of Series on a batch's flow table: no inference or checks per column) where pandas has it
    and every array is of those kinds, else as ``pd.DataFrame`` of a dict of Series (numbers as
    they are): the same frame (tests/test_frame_of_s33.py). The columns of a :class:`ColumnRows`
    are taken as they are (``pandas.api.internals.create_dataframe_from_blocks``), not copied: the
    same frame, sharing their memory. Raises ValueError on arrays of different lengths (the
    public way)."""
    arrays = list(columns.values())
    n = len(arrays[0]) if arrays else (0 if index is None else len(index))
    index = pd.RangeIndex(n) if index is None else index
    labels = label_index(columns.keys())
    if all(isinstance(a, np.ndarray) and a.ndim == 1 and a.dtype.kind in "biufO" and len(a) == len(index)
           for a in arrays):
        if isinstance(columns, ColumnRows) and _FROM_BLOCKS is not None:
            return _FROM_BLOCKS(_row_blocks(columns.blocks, arrays), index=index, columns=labels)
        if _FROM_ARRAYS is not None:
            return _FROM_ARRAYS(arrays, columns=labels, index=index, dtype=None, verify_integrity=False)
    return _frame_of_public(columns, index)


#: pandas' constructor from its blocks as they are (pandas.api.internals, pandas 3): None where
#: it is gone, then :func:`frame_of` copies a :class:`ColumnRows`' columns as any others
_FROM_BLOCKS = getattr(getattr(getattr(pd, "api", None), "internals", None), "create_dataframe_from_blocks", None)

#: the dtype of a :class:`ColumnRows` column by the type of its fill value (bool before int: a
#: bool is an int)
_FILL_DTYPES = ((bool, np.dtype(bool)), (int, np.dtype(np.int64)), (float, np.dtype(np.float64)),
                (str, np.dtype(object)), (type(None), np.dtype(object)))


#: bytes of a :class:`ColumnRows` block at most (at least one column each): on a batch of many
#: flows its columns of one dtype are a few blocks, not one (a spray's batch of ~92,000 flows:
#: 49 text columns, 34 MiB): the heap, whose freed memory is kept (chunked._tune_malloc), then
#: finds room for them among what earlier batches freed instead of growing (-15 MiB of the
#: spray's peak resident size, whose allocations were as large)
BLOCK_BYTES = 8 << 20


class ColumnRows(dict):
    """Columns of a frame still to be filled in, for :func:`frame_of`: a ``dict`` label -> 1-D
    array of ``n`` values, made at once from ``fills`` (label -> the value every row starts
    with: ``str`` or None -> ``object``, the one object in every row as :func:`repeated` makes
    it; ``bool``; ``int`` -> int64; ``float`` -> float64; or a 1-D numpy array of ``n`` values,
    copied, of its dtype; TypeError for another type). The columns of one dtype are the rows of
    one 2-D array (:attr:`blocks`, in the order of ``fills``; a few of at most
    :data:`BLOCK_BYTES` each on a large table), the layout pandas keeps them in, so
    :func:`frame_of` makes them a frame's blocks as they are: a frame of them all is not built
    by copying each column into a new block while the columns are still there (on a UDP spray's
    batch of ~92,000 flows the 73 columns ``inspect_flows`` adds are 45 MiB, which were so
    briefly held twice: the run's peak).

    Fill a column in place (``rows[label][at] = value``); one replaced by another array, added,
    or popped is fine too: :func:`frame_of` copies what is not a row of :attr:`blocks`, and a
    frame's block is then a slice of rows (no copy), the rows no column is left in kept unused.
    The frame shares the arrays' memory: write no column once it is made."""

    def __init__(self, n: int, fills: dict):
        super().__init__()
        by_dtype: dict[np.dtype, list] = {}
        for label, value in fills.items():
            dtype = value.dtype if isinstance(value, np.ndarray) else \
                next((d for t, d in _FILL_DTYPES if isinstance(value, t)), None)
            if dtype is None:
                raise TypeError(f"ColumnRows: no column dtype for a {type(value).__name__} fill ({label!r})")
            by_dtype.setdefault(dtype, []).append(label)
        rows = {}
        #: the 2-D arrays (columns, n) whose rows the columns are: of one dtype each, of at
        #: most BLOCK_BYTES (one per dtype on a small table)
        self.blocks: list[np.ndarray] = []
        for dtype, labels in by_dtype.items():
            per = max(1, BLOCK_BYTES // max(1, n * dtype.itemsize))     # (columns a block)
            for at in range(0, len(labels), per):
                block = np.empty((len(labels[at:at + per]), n), dtype)
                self.blocks.append(block)
                for i, label in enumerate(labels[at:at + per]):
                    value = fills[label]
                    if isinstance(value, np.ndarray):
                        block[i] = value
                    else:
                        block[i].fill(value)
                    rows[label] = block[i]
        self.update((label, rows[label]) for label in fills)


def _row_of(a: np.ndarray, block: np.ndarray) -> int | None:
    """Which row of the 2-D array ``block`` the 1-D array ``a`` is (a view of all of it), or None
    (also when empty: every row of an empty block starts at one address)."""
    if a.dtype != block.dtype or a.shape != block.shape[1:] or a.strides != block.strides[1:] or not a.size:
        return None
    r, rest = divmod(a.__array_interface__["data"][0] - block.__array_interface__["data"][0], block.strides[0])
    return r if rest == 0 and 0 <= r < len(block) else None


def _row_blocks(blocks: list[np.ndarray], arrays: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """The blocks of a frame of the columns ``arrays`` (1-D, of one length), as pandas'
    ``create_dataframe_from_blocks`` takes them ((2-D values, the columns' positions)): each run
    of consecutive rows of one of ``blocks`` (:class:`ColumnRows`) that are columns, in the
    order of their rows, a slice of it (not copied); the other columns (and a row given twice)
    copied into one new block per dtype, as pandas' constructor stacks them."""
    owner = {id(b): b for b in blocks}
    found: dict[int, list[tuple[int, int]]] = {}
    loose: dict[np.dtype, list[int]] = {}
    used = set()
    for j, a in enumerate(arrays):
        b = owner.get(id(a.base))
        r = _row_of(a, b) if b is not None else None
        if r is None or (id(b), r) in used:
            loose.setdefault(a.dtype, []).append(j)
        else:
            used.add((id(b), r))
            found.setdefault(id(b), []).append((r, j))
    out = []
    for key, got in found.items():
        got.sort()
        start = 0
        for k in range(1, len(got) + 1):
            if k == len(got) or got[k][0] != got[k - 1][0] + 1:
                out.append((owner[key][got[start][0]:got[k - 1][0] + 1],
                            np.array([j for _, j in got[start:k]], np.intp)))
                start = k
    for dtype, at in loose.items():
        stacked = np.empty((len(at), len(arrays[at[0]])), dtype)
        for i, j in enumerate(at):
            stacked[i] = arrays[j]
        out.append((stacked, np.array(at, np.intp)))
    return out


def arrays_of(frame: pd.DataFrame, names=None) -> dict:
    """The columns ``names`` (default every column) of ``frame`` as 1-D numpy arrays, label ->
    array in the order of ``names``: each what ``frame[name].to_numpy()`` gives (the column's own
    dtype; read-only, sharing the frame's memory where it does), the inverse of :func:`frame_of`.

    Reading a column of a wide frame costs ~35 µs in pandas 3 (a Series is made for it); this
    takes them all from pandas' blocks at ~1 µs each, so it pays from a handful of columns. A
    column that is no numpy block (an extension dtype), a frame with repeated labels, or a
    pandas without blocks is read the public way (tests/test_table_helpers_s39.py checks both give the
    same arrays). Raises KeyError for a name not in ``frame``."""
    names = list(frame.columns) if names is None else list(names)
    labels = frame.columns
    got: dict = {}
    blocks = getattr(getattr(frame, "_mgr", None), "blocks", None)
    if blocks is not None and labels.is_unique and len(names) > 4:
        wanted = set(names)
        label_at = labels.tolist()
        try:
            for blk in blocks:
                vals = blk.values
                if not isinstance(vals, np.ndarray) or vals.ndim != 2:
                    continue
                # (as to_numpy's view of a frame's column: read-only; one view of the block made
                # so, its rows views of it: a flag set per block, not per column)
                view = None
                for j, loc in enumerate(blk.mgr_locs.as_array.tolist()):
                    if label_at[loc] in wanted:
                        if view is None:
                            view = vals.view()
                            view.flags.writeable = False
                        got[label_at[loc]] = view[j]
        except (AttributeError, TypeError, IndexError):
            got = {}
    return {k: got[k] if k in got else frame[k].to_numpy() for k in names}


#: pandas' hash-table membership test (``ismember``, a private function of pandas 1.x to 3.x):
#: None where it is gone, then :func:`isin_texts` looks each cell up in a set
_ISMEMBER = getattr(getattr(getattr(pd, "_libs", None), "hashtable", None), "ismember", None)


def isin_texts(values: np.ndarray, texts) -> np.ndarray:
    """``np.isin(values, list(texts))`` (bool array like the 1-D ``values``) for a few texts
    ``texts`` (an iterable of ``str``): for an ``object`` array (a text column) each cell is
    looked up in a hash table, ~3 to 7 times faster than numpy's comparison of every cell with
    each text (a batch's text columns are read so a dozen times); other arrays, and cells that
    cannot be hashed, go to ``np.isin``: the same result."""
    texts = list(texts)
    if values.dtype != object or values.ndim != 1 or not len(values) \
            or not all(type(t) is str for t in texts):
        return np.isin(values, texts)
    try:
        if _ISMEMBER is not None:
            return np.asarray(_ISMEMBER(values, np.array(texts, dtype=object)), dtype=bool)
        look = frozenset(texts)
        return np.fromiter(map(look.__contains__, values.tolist()), bool, len(values))
    except TypeError:  # (an unhashable cell)
        return np.isin(values, texts)


def _frame_of_public(columns: dict[str, np.ndarray], index: pd.Index) -> pd.DataFrame:
    """:func:`frame_of` through the public constructor (the way it was built before)."""
    frame = pd.DataFrame({k: v if v.dtype.kind in "biuf" else pd.Series(v, dtype=v.dtype, index=index, copy=False)
                          for k, v in columns.items()}, index=index)
    frame.columns = label_index(frame.columns)
    return frame


def _proto_names(proto: np.ndarray) -> np.ndarray:
    """IP protocol numbers -> names (tcp, udp, icmp…, else the number as text)."""
    u, inv = np.unique(proto, return_inverse=True)
    names = np.array([PROTO_NAMES.get(int(p), str(int(p))) for p in u], dtype=object)
    return names[inv.reshape(-1)] if len(proto) else np.zeros(0, object)


def _cast(dst_hi: np.ndarray, dst_lo: np.ndarray, l2_bcast: np.ndarray, v6: np.ndarray | None = None,
          tcp: np.ndarray | bool = False) -> np.ndarray:
    """unicast / broadcast / multicast for each packet destination (``v6``: as
    :func:`address_text`; ``tcp``: TCP's, for :func:`_may_be_directed`)."""
    v4 = _mapped(dst_hi, dst_lo)
    if v6 is not None:
        v4 &= ~np.asarray(v6, bool)
    a4 = (dst_lo & np.uint64(0xFFFFFFFF)).astype(np.uint64)
    first = a4 >> np.uint64(24)
    mc4 = v4 & (first >= 224) & (first <= 239)
    # limited broadcast, or a link-layer broadcast (a directed broadcast x.y.z.255 is only one on a
    # /24: without the link layer saying so, it may be an ordinary host of a larger network) to an
    # address that is some subnet's broadcast address (:func:`_may_be_directed`; a unicast address
    # in a link-layer broadcast frame, which hosts discard (RFC 1122 §3.3.6) and scapy writes when
    # it finds no MAC address, stays unicast: its verdict is the IP address's)
    bc4 = v4 & ((a4 == np.uint64(0xFFFFFFFF)) | (l2_bcast & _may_be_directed(a4, tcp)))
    mc6 = ~v4 & ((dst_hi >> np.uint64(56)) == np.uint64(0xFF))
    out = repeated("unicast", len(dst_hi))
    out[bc4 & ~mc4] = "broadcast"
    out[mc4 | mc6] = "multicast"
    return out


def _may_be_directed(a4: np.ndarray, tcp: np.ndarray | bool = False) -> np.ndarray:
    """Whether each IPv4 address (as integers) sent to in a link-layer broadcast frame may be the
    directed broadcast address of a subnet, whose host part is all ones: its two lowest bits are
    (a /30 or wider; a /31 has no broadcast address, RFC 3021). 203.0.113.5 is no subnet's
    broadcast address, 192.0.2.255 and 192.0.2.127 may be. For TCP (``tcp``, per address or
    one for all) only x.y.z.255: no stack sends a SYN to a broadcast address, so such frames are
    crafted (scapy with no MAC found) or a wrong address typed as the server's, whose common
    mistake is a /24-or-wider network's .255 (not 203.0.113.7)."""
    a = np.asarray(a4).astype(np.int64)
    return ((a & 3) == 3) & (~np.asarray(tcp, bool) | ((a & 0xFF) == 0xFF))


#: at most this many link-layer broadcast destinations are kept as evidence (a capture has a few:
#: its subnets' broadcast addresses; a flood of forged ones must not hold memory)
MAX_BROADCAST_ADDRESSES = 4096


#: ICMP request/reply types and their counterparts (Zeek's ICMP4_counterpart, ICMP6_counterpart):
#: echo, timestamp, information, router solicitation/advertisement, address mask; ICMPv6 echo,
#: router and neighbor solicitation/advertisement, MLD query/report, node information, home agent
#: address discovery
ICMP4_COUNTERPART = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 10: 9, 9: 10, 17: 18, 18: 17}
ICMP6_COUNTERPART = {128: 129, 129: 128, 133: 134, 134: 133, 135: 136, 136: 135, 130: 131, 131: 130,
                     139: 140, 140: 139, 144: 145, 145: 144}


def icmp_ports(proto: np.ndarray, icmp_type: np.ndarray, icmp_code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (originator, responder) "ports" Zeek gives an ICMP or ICMPv6 message (``proto`` 1 or
    58, per row): its type, and the counterpart type of a request or reply
    (:data:`ICMP4_COUNTERPART`, :data:`ICMP6_COUNTERPART`: an echo request 8 and its reply 0 key
    alike, one flow) or else its code (a one-way message: a redirect 5/1, a source quench 4/0 and
    a time exceeded 11/0 from one router are three flows). int64 arrays."""
    t = np.asarray(icmp_type, np.int64)
    code = np.asarray(icmp_code, np.int64)
    other = code.copy()
    v6 = np.asarray(proto) == ICMP6
    for table, rows in ((ICMP4_COUNTERPART, ~v6), (ICMP6_COUNTERPART, v6)):
        for a, b in table.items():
            other[rows & (t == a)] = b
    return t, other


def broadcast_evidence(cols: dict[str, np.ndarray], prior: dict[int, int] | None = None) -> dict[int, int]:
    """What packets in ``cols`` (a :class:`Packets`' columns) show of IPv4 broadcast addresses,
    each with the first such packet's ``frame``, merged with ``prior`` (the same from earlier
    batches of the capture: the earlier one wins): address (a 32-bit integer) -> frame for
    an address packets were sent to as a link-layer broadcast (``l2_bcast``; not
    255.255.255.255 nor multicast, broadcast anyway, nor one that is no subnet's broadcast
    address, :func:`_may_be_directed`), and ``~address`` (a negative key) ->
    ``ts_ns`` of the first packet an address ending in .255 sent itself (a host, not a
    broadcast address: break-it 20 F2)."""
    out = dict(prior) if prior else {}
    v4 = cols["ipver"] == 4
    src = (cols["src_lo"][v4] & np.uint64(0xFFFFFFFF)).astype(np.int64)
    host = (src & 0xFF) == 0xFF
    if host.any():
        _merge_first(out, ~src[host], cols["ts_ns"][v4][host])
    m = cols["l2_bcast"] & v4
    if m.any():
        a = (cols["dst_lo"][m] & np.uint64(0xFFFFFFFF)).astype(np.int64)
        f = cols["frame"][m]
        first = a >> 28
        tcp = cols["proto"][m] == TCP if "proto" in cols else False
        keep = (a != 0xFFFFFFFF) & ((first < 14) | (first > 14)) & _may_be_directed(a, tcp)   # (not 224.0.0.0/4)
        _merge_first(out, a[keep], f[keep])
    return out


def _merge_first(out: dict[int, int], a: np.ndarray, f: np.ndarray) -> None:
    """Keys ``a`` with frames ``f`` into ``out`` (in place): each key's first frame, at most
    :data:`MAX_BROADCAST_ADDRESSES` keys."""
    if len(a):
        o = np.lexsort((f, a))
        a, f = a[o], f[o]
        head = np.ones(len(a), bool)
        head[1:] = a[1:] != a[:-1]
        a, f = a[head], f[head]         # (each address once, with its first frame)
        known = np.isin(a, np.fromiter(out, np.int64, len(out))) if out else np.zeros(len(a), bool)
        for addr, frame in zip(a[known].tolist(), f[known].tolist()):
            out[addr] = min(out[addr], frame)
        room = max(MAX_BROADCAST_ADDRESSES - len(out), 0)
        out.update(zip(a[~known][:room].tolist(), f[~known][:room].tolist()))


def _sent_cast(cast: np.ndarray, cand: np.ndarray, o_lo: np.ndarray, r_lo: np.ndarray,
               last_frame: np.ndarray, evidence: dict[int, int], last_ts: np.ndarray) -> np.ndarray:
    """The cast of IPv4 flows whose originator's datagrams were sent by the capturing host
    with no link-layer destination recorded (``cand``: SLL/SLL2 packet type 4, ``l2_out``; the
    others are left as they are): broadcast when the destination is the broadcast address of a
    subnet of /24 or larger that holds the sender (all host bits 1, at least the last 8:
    192.0.2.10 -> 192.0.2.255, 10.1.0.3 -> 10.1.255.255; Linux sends those as link-layer
    broadcasts), or when another packet of the capture before the flow's last one
    (``evidence``: address -> first ``frame``, :func:`broadcast_evidence`) was a link-layer
    broadcast to it (a copy received from another host: SLL packet type 1). Otherwise it stays
    unicast: a host of a larger network may end in .255; so is an address that sent a packet
    itself up to :data:`DEFAULT_IDLE_NS` after the flow's last one (``evidence``'s ``~address``
    keys: no broadcast address sends; a chunked reading has read that far when the flow
    leaves, so it sees what the whole file shows). (``cand`` leaves out TCP and flows the destination answered: no broadcast address
    accepts a connection or sends.)"""
    if not cand.any():
        return cast
    src = (o_lo & np.uint64(0xFFFFFFFF)).astype(np.int64)
    dst = (r_lo & np.uint64(0xFFFFFFFF)).astype(np.int64)
    diff = src ^ dst
    # the fewest host bits that can hold both addresses' difference: at least 8
    _, exp = np.frexp(diff.astype(np.float64))
    bits = np.maximum(exp.astype(np.int64), 8)
    ones = (np.int64(1) << bits) - 1
    subnet = (diff != 0) & (bits <= 24) & ((dst & ones) == ones) & ((dst >> 28) != 14)
    seen = host = np.zeros(len(cast), bool)
    if evidence:
        keys = np.fromiter(evidence, np.int64, len(evidence))
        frames = np.fromiter(evidence.values(), np.int64, len(evidence))
        o = np.argsort(keys)
        keys, frames = keys[o], frames[o]

        def known(k, until):
            at = np.minimum(np.searchsorted(keys, k), len(keys) - 1)
            return (keys[at] == k) & (frames[at] <= until)
        seen, host = known(dst, last_frame), known(~dst, last_ts + DEFAULT_IDLE_NS)
    out = cast.copy()
    out[cand & (subnet | seen) & ~host] = "broadcast"
    return out


_B62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", np.uint8)


_GOLDEN, _MUL1, _MUL2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S2, _S6, _S27, _S30, _S31 = (np.uint64(k) for k in (2, 6, 27, 30, 31))


def _mix(h: np.ndarray, v: np.ndarray) -> np.ndarray:
    """One splitmix64 round folding ``v`` into ``h``: a new uint64 array of their length (``h``:
    uint64; ``v``: uint64 or int64, read as uint64; of either byte order, any strides; neither
    changed). Compiled (:mod:`._keyhash`, given C-contiguous native copies where needed) when
    built, else :func:`_mix_py` (the same numbers: tests/test_keyhash.py)."""
    if _keyhash is None:
        return _mix_py(h, v)
    out = np.empty(len(h), np.uint64)
    _keyhash.mix(_native(h), _native(v), out)
    return out


def _native(a: np.ndarray) -> np.ndarray:
    """``a`` as a C-contiguous array of its dtype in the machine's byte order (itself when it is)."""
    a = np.ascontiguousarray(a)
    return a if a.dtype.isnative else a.astype(a.dtype.newbyteorder("="))


def _mix_py(h: np.ndarray, v: np.ndarray) -> np.ndarray:
    """One splitmix64 round folding ``v`` into ``h`` (uint64, wrapping arithmetic): a new array,
    ``h ^ (v + golden + (h << 6) + (h >> 2))`` then splitmix64's finalizer, computed in place in
    two arrays (the temporaries of the plain expression cost more than the arithmetic)."""
    z = v.astype(np.uint64)      # (a copy: worked on in place)
    t = h << _S6
    with np.errstate(over="ignore"):
        z += _GOLDEN
        z += t
        np.right_shift(h, _S2, out=t)
        z += t
        z ^= h
        for shift, mul in ((_S30, _MUL1), (_S27, _MUL2)):
            np.right_shift(z, shift, out=t)
            z ^= t
            z *= mul
        np.right_shift(z, _S31, out=t)
        z ^= t
    return z


def _uid(seed: str, *parts: np.ndarray) -> np.ndarray:
    """Zeek-style uids ('C' + 17 base62 characters) derived from the flow's key parts and the
    capture name: stable for the same capture, computed on whole columns."""
    n = len(parts[0]) if parts else 0
    s = int.from_bytes(hashlib.blake2b(seed.encode("utf-8", "surrogateescape"), digest_size=16).digest(), "big")
    h1 = np.full(n, s & 0xFFFFFFFFFFFFFFFF, np.uint64)
    h2 = np.full(n, s >> 64, np.uint64)
    for p in parts:
        v = p.astype(np.int64, copy=False).view(np.uint64) if p.dtype.kind != "u" \
            else p.astype(np.uint64, copy=False)
        h1 = _mix(h1, v)
        h2 = _mix(h2, v ^ np.uint64(0x5DEECE66D))
    if _keyhash is None:
        return _uids_py(h1, h2)
    out = np.empty(n, object)
    out[:] = _keyhash.uids(h1, h2)
    return out


def _uids_py(h1: np.ndarray, h2: np.ndarray) -> np.ndarray:
    """:func:`_uid`'s texts (object array of str, 18 characters each) from its two hashes
    (uint64, n each): 'C', the 11 base62 digits of ``h1`` (least significant first), the 6
    lowest of ``h2``. The fallback of :mod:`._keyhash`'s ``uids``."""
    n = len(h1)
    chars = np.empty((n, 18), np.uint8)
    chars[:, 0] = ord("C")
    for i in range(11):  # 62**11 > 2**64
        chars[:, 1 + i] = _B62[(h1 % np.uint64(62)).astype(np.intp)]
        h1 = h1 // np.uint64(62)
    for i in range(6):
        chars[:, 12 + i] = _B62[(h2 % np.uint64(62)).astype(np.intp)]
        h2 = h2 // np.uint64(62)
    return chars.view("S18").ravel().astype(str).astype(object)


def _key_hash(cols, n: int) -> np.ndarray:
    """One 64-bit hash (uint64 per row) of the integer columns ``cols`` (``n`` rows)."""
    h = np.zeros(n, np.uint64)
    for k in cols:
        h = _mix(h, k.astype(np.int64, copy=False).view(np.uint64) if k.dtype.kind != "u"
                 else k.astype(np.uint64, copy=False))
    return h


def _flow_order(key_cols, ts, tie_keys) -> tuple[np.ndarray, np.ndarray]:
    """Sort packets by flow key, then time, then content (for equal timestamps).

    Sorting on one 64-bit hash of the key (a stable argsort by time, then by hash: compiled, one
    pass filling a table of the distinct hashes and one placing the rows) instead of a lexsort over
    every key column; rows whose key and time tie are ordered by ``tie_keys`` (least significant
    first). A hash collision is detected (key columns differ inside a run of equal hashes) and
    answered with the exact lexsort.

    A tie key is an array over the packets, or a callable ``f(order, key_start, rows)`` giving
    the key of the tying rows only (``rows``: their positions along ``order``, the permutation
    by key and time, whose keys begin where ``key_start`` is True): what costs a look at a whole
    key is only computed when some of its packets tie.

    :returns: (order, key_start): the permutation and, along it, where each distinct key begins.
    """
    n = len(ts)
    h = _key_hash(key_cols, n)
    o = np.argsort(ts, kind="stable")
    if _compiled_order(key_cols, o):
        # (the same order, starts and answer as the numpy steps below, from a table of the
        # distinct hashes: tests/test_flow_order_compiled.py)
        by_hash, start = np.empty(n, np.int64), np.empty(n, bool)
        collision = _tcpstate.key_order(h, o, key_cols, by_hash, start)
        o = by_hash
    else:
        o = o[np.argsort(h[o], kind="stable")]
        hs = h[o]
        start = np.r_[True, hs[1:] != hs[:-1]] if n else np.zeros(0, bool)
        same_hash = ~start[1:]
        collision = any(np.any(same_hash & (ko[1:] != ko[:-1])) for ko in (k[o] for k in key_cols))
    if collision:                                  # collision: fall back to the exact sort
        o = np.lexsort((ts,) + tuple(reversed(key_cols)))
        start = _group_starts([k[o] for k in key_cols])
    tss = ts[o]
    tie = ~start[1:] & (tss[1:] == tss[:-1])
    if tie.any():
        gid = np.cumsum(np.r_[True, ~tie]) - 1
        in_tie = np.bincount(gid)[gid] > 1
        rows = np.nonzero(in_tie)[0]
        sub = o[rows]
        keys = tuple(k(o, start, rows) if callable(k) else k[sub] for k in tie_keys)
        o[rows] = sub[np.lexsort(keys + (gid[rows],))]
    return o, start


def _synack_after_syn(order: np.ndarray, key_start: np.ndarray, o_flags: np.ndarray, ts: np.ndarray,
                      seq: np.ndarray, src_first: np.ndarray, cols: dict, idx: np.ndarray) -> bool:
    """Reorder (in place) ``order``, the flow order of :func:`_flow_order` (``key_start`` its key
    starts, ``o_flags`` the TCP flags along it), where a SYN-ACK comes before the SYN it answers:
    a capture of two interfaces whose clocks differ slightly (a two-port tap, one direction on
    each; a multi-NIC capture merged in time order) stamps an answer before its question, which
    cannot be (Wireshark's analysis is confused by it; Zeek flips such a connection's roles).

    A SYN-ACK is matched with the next SYN (no ACK) of its 5-tuple after it, from the other side,
    that it acknowledges (its ack is the SYN's sequence number + 1, or + 1 + the SYN's payload
    length: TCP Fast Open) and that is stamped at most :data:`SKEW_MAX_NS` later. The clock of
    the SYN-ACK's side is then behind by at least that much (the largest such lead in the key):
    the key's packets from that side are ordered as if stamped that much later (the SYN first at
    an equal time), the rest of the order kept. The times themselves are not changed (each
    packet keeps its own). ``ts``, ``seq``, ``src_first`` are over the used packets, which are
    rows ``idx`` of the packet columns ``cols``. Keys without such a pair keep their order.
    Returns whether ``order`` changed."""
    if len(order) < 2:
        return False
    # (the SYN-ACKs and SYNs first: a few positions, on which the rest is read)
    anysyn = np.flatnonzero(o_flags & SYN)
    hs = o_flags[anysyn] & (ACK | RST)
    sa, syn = anysyn[hs == ACK], anysyn[hs == 0]
    if not len(sa) or not len(syn):
        return False
    j = np.searchsorted(syn, sa)
    has = j < len(syn)
    sa, q = sa[has], syn[j[has]]
    if not len(sa):
        return False
    a, b = order[sa], order[q]
    dt = ts[b] - ts[a]
    near = (dt > 0) & (dt <= SKEW_MAX_NS) & (src_first[a] != src_first[b])
    if not near.any():
        return False
    sa, q, a, b, dt = sa[near], q[near], a[near], b[near], dt[near]
    starts = np.flatnonzero(key_start)
    ends = np.r_[starts[1:], len(order)]
    key = np.searchsorted(starts, sa, "right") - 1     # (each SYN-ACK's key; the SYN in it too?)
    off = (cols["ack"][idx[a]].astype(np.int64) - seq[b].astype(np.int64) - 1) & 0xFFFFFFFF
    ok = ((q < ends[key])
          & ((off == 0) | (off == np.maximum(cols["payload_len"][idx[b]].astype(np.int64), 0))))
    if not ok.any():
        return False
    k, side, lead = key[ok], src_first[a[ok]], dt[ok]
    # per key (``k`` is sorted: positions along the flow order): the largest lead, and the side
    # behind (the SYN-ACKs' side)
    first = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    keys = k[first]
    shift = np.zeros(len(starts), np.int64)
    shift[keys] = np.maximum.reduceat(lead, first)
    behind = np.zeros(len(starts), bool)
    behind[keys] = side[first]
    # those keys' positions (each key's a run along the order), sorted again at once: by key,
    # then the time with the lead added to the late side's, the SYN's side first, the order
    span = np.zeros(len(starts), bool)
    span[keys] = True
    kid = np.repeat(np.arange(len(starts)), ends - starts)
    pos = np.flatnonzero(span[kid])
    seg, kp = order[pos], kid[pos]
    late = src_first[seg] == behind[kp]
    t = ts[seg] + np.where(late, shift[kp], 0)
    order[pos] = seg[np.lexsort((pos, late, t, kp))]
    return True


def _compiled_order(key_cols, o: np.ndarray) -> bool:
    """Whether :func:`_flow_order` sorts by hash and checks for collisions with
    :mod:`._tcpstate`'s ``key_order``: built (with it), ``o`` (the time order) native int64 of
    fewer than 2**31 - 1 rows and every key column a C-contiguous native array of 8-byte
    integers. Else the numpy steps (the same order and answer: tests/test_flow_order_compiled.py)."""
    if _tcpstate is None or not hasattr(_tcpstate, "key_order"):
        return False
    if o.dtype != np.int64 or len(o) >= 2**31 - 1:
        return False
    return all(k.dtype.kind in "iu" and k.dtype.itemsize == 8 and k.dtype.isnative
               and k.flags.c_contiguous for k in key_cols)


def _port_client_side(proto: np.ndarray, a_p: np.ndarray, b_p: np.ndarray,
                      server_port: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """Which side of a 5-tuple its ports say is the client: int array, +1 side A (port ``a_p``),
    -1 side B, 0 undecided. The side not on a server port (``server_port``: documented, or below
    1024) while the other is; both or neither being, the side on a port >= 1024 while the
    other's is below 1024 (ports -1: not captured)."""
    a_srv, b_srv = server_port(proto, a_p), server_port(proto, b_p)
    low_b = (b_p >= 0) & (b_p < 1024) & (a_p >= 1024)
    low_a = (a_p >= 0) & (a_p < 1024) & (b_p >= 1024)
    return np.where(b_srv & ~a_srv, 1, np.where(a_srv & ~b_srv, -1,
                    np.where(low_b, 1, np.where(low_a, -1, 0))))


def _exchange_progress(o: np.ndarray, key_start: np.ndarray, rows: np.ndarray, *, ts: np.ndarray,
                       is_tcp: np.ndarray, flags: np.ndarray, seq: np.ndarray, ack: np.ndarray,
                       src_first: np.ndarray) -> np.ndarray:
    """Tie key of :func:`build_flows` (a callable tie key of :func:`_flow_order`): for the rows
    ``rows`` (positions along ``o``) of TCP packets that share their key and timestamp, how far
    the exchange had got when each was sent (int64; 0 for the other rows): its sequence number
    in its own direction's space plus its acknowledgement number in the other's, both relative
    to the group (32-bit differences from one of the group's packets of that direction, so a
    sequence space wrapping past 2^32 inside the group is followed).

    A packet that answers another (acknowledges its bytes) has got further than it, whichever
    side sent it: a client's next flight that acknowledges the server's answer comes after that
    answer, a pure ACK after the data it acknowledges. So a coarse clock (1 s, 10 ms, 15.6 ms
    ticks), or a tool that stamps a whole exchange with one time, keeps the order the
    connection had, from the packets' content alone (never their place in the file). Packets
    that answer nothing of each other keep the next tie keys' order (the client's first). A
    packet without ACK (a SYN, some resets) counts only its sequence number."""
    out = np.zeros(len(rows), np.int64)
    r = o[rows]
    tcp = is_tcp[r]
    if not tcp.any():
        return out
    tss = ts[r]
    # the tie groups along ``rows``: consecutive positions with one key and one timestamp
    new = np.r_[True, (rows[1:] != rows[:-1] + 1) | key_start[rows[1:]] | (tss[1:] != tss[:-1])]
    g = np.cumsum(new) - 1
    d = (~src_first[r]).astype(np.int64)             # 0: sent by side A, 1: by side B
    gd = g * 2 + d
    ng = int(g[-1]) + 1
    s32 = seq[r].astype(np.int64) & 0xFFFFFFFF
    a32 = ack[r].astype(np.int64) & 0xFFFFFFFF
    # a base per group and direction: the sequence number of one of its TCP packets (which one
    # does not matter: the differences only compare packets of one group, which spans far less
    # than 2^31 of either space, so another base shifts them all alike)
    base = np.full(2 * ng, -1, np.int64)
    t = np.flatnonzero(tcp)
    base[gd[t]] = s32[t]

    def rel(v: np.ndarray, b: np.ndarray) -> np.ndarray:  # signed 32-bit difference v - b
        return ((v - b + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)

    own = rel(s32, np.maximum(base[gd], 0))
    other = base[(g * 2 + (1 - d))]
    has_ack = tcp & ((flags[r] & ACK) != 0) & (other >= 0)
    # (no packet of the other direction in the group: acknowledgements compare only within one
    # direction, where the sequence numbers already order them)
    out[tcp] = own[tcp]
    out[has_ack] += rel(a32[has_ack], other[has_ack])
    return out


def _server_side_key(o: np.ndarray, key_start: np.ndarray, rows: np.ndarray, *, packets: Packets,
                     idx: np.ndarray, syn_rank: np.ndarray, src_first: np.ndarray, proto: np.ndarray,
                     a_p: np.ndarray, b_p: np.ndarray, sp: np.ndarray, dp: np.ndarray,
                     server_port: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """Tie key of :func:`build_flows` (a callable tie key of :func:`_flow_order`): for the rows
    ``rows`` (positions along ``o``), 0 when the packet comes from its key's client side, 1 from
    its server side, so that among packets of one timestamp the client's come first.

    The client side of a key is decided from the key's packets as a set (never their order in
    the file): for TCP the only side that sent a SYN without ACK, else the side that did not
    send the only SYN-ACK; else the side whose port is not a server port (``server_port``) while
    the other's is, or, both or neither being, whose port is >= 1024 while the other's is below.
    Undecided (DNS between two port 53s, both sides' SYNs…): a DNS message on port 53 by its QR
    bit (a query is the client's), else the packet towards the higher port last (the former
    rule). The arrays are over ``build_flows``' rows ``idx`` of ``packets`` (``syn_rank``: 0 a
    TCP SYN without ACK, 1 a SYN-ACK)."""
    kid = np.empty(len(o), np.int64)
    kid[o] = np.cumsum(key_start) - 1                  # per packet, the number of its key
    r = o[rows]
    kr = kid[r]
    need = np.zeros(int(kid[o[-1]]) + 1, bool)         # the keys with packets that tie
    need[kr] = True
    cid = np.cumsum(need) - 1                          # key -> index among those
    nk = int(cid[-1]) + 1

    def sent(rank: int) -> np.ndarray:                 # (nk, 2): side A / side B sent one
        at = np.flatnonzero(syn_rank == rank)
        at = at[need[kid[at]]]
        out = np.zeros((nk, 2), bool)
        out[cid[kid[at]], (~src_first[at]).astype(np.intp)] = True
        return out

    syn, synack = sent(0), sent(1)
    # a_client: +1 A is the client, -1 B is, 0 undecided
    a_client = np.where(syn[:, 0] != syn[:, 1], np.where(syn[:, 0], 1, -1), 0)
    a_client = np.where((a_client == 0) & (synack[:, 0] != synack[:, 1]), np.where(synack[:, 0], -1, 1),
                        a_client)
    first = o[np.flatnonzero(key_start)[need]]         # a packet of each such key
    a_client = np.where(a_client == 0, _port_client_side(proto[first], a_p[first], b_p[first], server_port),
                        a_client)

    ac = a_client[cid[kr]]
    out = (src_first[r] != (ac > 0)).astype(np.int8)
    und = np.flatnonzero(ac == 0)
    if len(und):
        u = r[und]
        out[und] = dp[u] > sp[u]
        # DNS (port 53 both sides): a query (QR bit 0) is the client's, a response not
        dns = und[(proto[u] == UDP) & ((sp[u] == 53) | (dp[u] == 53))]
        if len(dns):
            g = idx[r[dns]]
            off, cap = packets.cols["pl_off"][g], packets.cols["pl_cap"][g]
            whole = (off >= 0) & (cap >= 12)           # a whole DNS header captured
            if whole.any():
                out[dns[whole]] = np.frombuffer(packets.buf, np.uint8)[off[whole] + 2] >> 7
    return out


def _split_after_close(new_flow: np.ndarray, ts: np.ndarray, flags: np.ndarray, is_tcp: np.ndarray,
                       from_a: np.ndarray) -> None:
    """Mark (in place, in ``new_flow``) the rows that start a new TCP connection because the one
    before had closed — FIN from both sides, or a RST — and this packet comes more than
    :data:`CLOSE_DELAY_NS` after the previous packet of the 5-tuple (Zeek removes a closed
    connection after ``tcp_close_delay``; what comes later is a new connection). Rows are sorted
    by flow key then time; ``new_flow`` marks flow starts so far.

    Unlike Zeek (``TCPSessionAdapter::IsReuse``), a SYN with the *same* sequence number after a
    FIN or RST does not start a new connection: it is the same connection attempt retried (a
    Windows client retries a SYN answered by a RST twice, from the same port with the same ISN),
    one flow ``REJ`` with its three SYNs, as Wireshark shows it, rather than three; unless the
    retry is accepted (:func:`_answered_retry`: then it is a new flow, as in Zeek). A SYN
    with another ISN does start one (see the port-reuse rule in :func:`build_flows`)."""
    fin = is_tcp & ((flags & FIN) != 0)
    rst = is_tcp & ((flags & RST) != 0)
    late = np.zeros(len(ts), bool)
    late[1:] = (ts[1:] - ts[:-1]) > CLOSE_DELAY_NS
    late &= is_tcp
    if not (late.any() and (fin.any() or rst.any())):
        return
    counts = [np.cumsum(m) - m for m in (fin & from_a, fin & ~from_a, rst)]  # events before row
    for _ in range(len(ts)):
        flow_of = np.cumsum(new_flow) - 1
        starts = np.nonzero(new_flow)[0]
        seen = [(c - c[starts][flow_of]) > 0 for c in counts]
        cand = np.nonzero(((seen[0] & seen[1]) | seen[2]) & late & ~new_flow)[0]
        if len(cand) == 0:
            return
        # only the first such row of each flow: the rows after it belong to the new connection,
        # whose own state is known only in the next round
        new_flow[first_rows(flow_of, cand)[1]] = True


def _answered_retry(p: np.ndarray, q: np.ndarray, new: np.ndarray, key_id: np.ndarray, flags: np.ndarray,
                    is_tcp: np.ndarray, from_a: np.ndarray, seq: np.ndarray, ack: np.ndarray,
                    bound: np.ndarray) -> np.ndarray:
    """Which SYNs ``q`` (rows along the flow order, ``p`` the SYN without ACK before each; ``new``:
    already a new connection by its ISN) sent again with the same ISN after a RST (from either
    side, rows between ``p`` and ``q``: a refused SYN, or the client's own reset of a stale
    answer, an RFC 5961 challenge ACK or a SYN-ACK for another number) were accepted: before the
    5-tuple's next RST or next flow start (``bound``, bool per row: a key's first row, an idle
    gap, a SYN with another ISN), the other side answered with a SYN-ACK acknowledging the SYN
    (ISN + 1), or the SYN's sender went on with a packet that acknowledges something, neither
    SYN nor RST, from ISN + 1 on (it had a SYN-ACK, lost by the capture; in SYN-SENT a TCP
    sends only resets). A SYN sent again meanwhile without a RST (the SYN-ACK lost on the path)
    does not end the wait. Such a retry starts a new flow, as Zeek's ``IsReuse`` does for any
    SYN after a RST: the attempt before it stays ``REJ`` or ``RSTO`` and the accepted one ends
    as it did (``SF``), the same rows whether the retry came within :data:`CLOSE_DELAY_NS` or
    later. Retries never accepted stay one flow with the attempt they retry (``REJ`` with its
    SYNs, as Wireshark shows it). ``seq``/``ack`` per row (int64, 32-bit values). Bool array
    like ``q``."""
    out = np.zeros(len(q), bool)
    n = len(flags)
    if not len(q):
        return out
    fl = np.asarray(flags, np.int64)
    tcp = np.asarray(is_tcp, bool)
    rst = tcp & ((fl & RST) != 0)
    rc = np.cumsum(rst)
    cand = (key_id[q] == key_id[p]) & ~new & ((rc[q - 1] - rc[p]) > 0)
    if not cand.any():
        return out
    at = np.flatnonzero(cand)
    qc = q[at]
    # the wait ends at the next RST or flow start after the SYN
    stops = np.flatnonzero(rst | np.asarray(bound, bool))
    k = np.searchsorted(stops, qc, "right")
    end = np.where(k < len(stops), stops[np.minimum(k, len(stops) - 1)], n)
    fa = np.asarray(from_a, bool)
    want = (np.asarray(seq, np.int64)[qc] + 1) & 0xFFFF_FFFF
    synack = tcp & ((fl & (SYN | ACK)) == (SYN | ACK))
    went_on = tcp & ((fl & (SYN | RST | ACK)) == ACK)
    ok = np.zeros(len(qc), bool)
    # (the first such packet after the SYN, of the other side / of the SYN's sender)
    for mask, other, good in ((synack, True, lambda r, w: np.asarray(ack, np.int64)[r] == w),
                              (went_on, False,
                               lambda r, w: ((np.asarray(seq, np.int64)[r] - w) & 0xFFFF_FFFF) < (1 << 31))):
        for side in (True, False):
            m = (fa[qc] != side) if other else (fa[qc] == side)
            if not m.any():
                continue
            rows = np.flatnonzero(mask & (fa == side))
            if not len(rows):
                continue
            j = np.searchsorted(rows, qc[m], "right")
            r = rows[np.minimum(j, len(rows) - 1)]
            hit = (j < len(rows)) & (r < end[m])
            hit[hit] = good(r[hit], want[m][hit])
            ok[np.flatnonzero(m)[hit]] = True
    out[at] = ok
    return out


def _after_fins(p: np.ndarray, q: np.ndarray, new: np.ndarray, key_id: np.ndarray, flags: np.ndarray,
                is_tcp: np.ndarray, from_a: np.ndarray) -> np.ndarray:
    """Which SYNs ``q`` (rows along the flow order, ``p`` the SYN without ACK before each on the
    same 5-tuple; ``new``: already a new connection by its ISN) came with the same ISN after a
    FIN from each side (rows between ``p`` and ``q``): the connection ``p`` opened was closed, so
    ``q`` opens another, however soon and whatever answers it, as Zeek's ``IsReuse`` has any
    SYN after a closed connection (break-it s53 TCP pass #2: an embedded stack's or a load
    balancer's same ISN 2 s after a FIN close was merged into the closed connection, its
    failure hidden and the byte counts overwritten). (After a RST, a same-ISN SYN is the refused
    attempt retried: :func:`_answered_retry`.) Bool array like ``q``."""
    if not len(q):
        return np.zeros(0, bool)
    fl = np.asarray(flags, np.int64)
    fin = np.asarray(is_tcp, bool) & ((fl & FIN) != 0)
    fa = np.asarray(from_a, bool)
    fin_a, fin_b = np.cumsum(fin & fa), np.cumsum(fin & ~fa)
    return ((key_id[q] == key_id[p]) & ~new & (fin_a[q - 1] - fin_a[p] > 0) & (fin_b[q - 1] - fin_b[p] > 0))


#: a SYN is of the connection whose packets came before it on its 5-tuple when their sequence
#: or acknowledgement numbers are within this many bytes after its ISN (:func:`_syn_after_other`)
SYN_NEAR = 1 << 20


def _syn_after_other(si: np.ndarray, new_flow: np.ndarray, flags: np.ndarray, from_a: np.ndarray,
                     seq: np.ndarray, ack: np.ndarray) -> np.ndarray:
    """The rows (positions along the flow order) of SYNs without ACK (``si``: all such rows,
    increasing) that start a new connection because packets of another one came before them in
    their flow (``new_flow``: bool per row, the flow starts so far): the flow's first SYN, not its
    first row, whose sequence number is near neither its side's first packet in the flow (that
    packet's sequence number 0 to :data:`SYN_NEAR` after the SYN's, as a data packet or ACK of
    the connection captured before its SYN) nor the other side's first packet's
    acknowledgement (that packet with ACK, acknowledging the SYN's number + 1 to
    :data:`SYN_NEAR` after it, as a SYN-ACK or RST captured before the SYN it answers). Zeek's
    ``TCPSessionAdapter::IsReuse`` makes such a SYN a new connection (any SYN once the
    connection closed; before, one whose number is not the originator's start): the capture
    began inside a connection on the 5-tuple, which ended (or died), and the client then opened
    a new one from the same port; without the split the new connection took the old one's
    letters, bytes and fate (``DdFfAShFf``, ``RSTR``, judged on the old bytes). ``flags``,
    ``from_a`` (side A sent it), ``seq``, ``ack``: per row. Int64 array of rows."""
    si = np.asarray(si, np.int64)
    if not len(si):
        return np.zeros(0, np.int64)
    fid = np.cumsum(new_flow) - 1
    fa = np.asarray(from_a, bool)
    _, q = first_rows(fid, si)                      # each flow's first SYN
    q = q[~new_flow[q]]
    if not len(q):
        return q
    n = len(fid)
    side = fid * 2 + (~fa).astype(np.int64)
    first = np.full(2 * (int(fid[-1]) + 1), n, np.int64)
    k, r = first_rows(side, np.arange(n))
    first[k] = r
    f = fid[q]
    own = first[f * 2 + (~fa[q]).astype(np.int64)]
    other = first[f * 2 + fa[q].astype(np.int64)]
    sq = np.asarray(seq, np.int64)
    ak = np.asarray(ack, np.int64)
    fl = np.asarray(flags, np.int64)
    near = np.zeros(len(q), bool)
    m = own < q
    near[m] = ((sq[own[m]] - sq[q[m]]) & 0xFFFF_FFFF) <= SYN_NEAR
    m = (other < q) & ((fl[np.minimum(other, n - 1)] & ACK) != 0)
    near[m] |= ((ak[other[m]] - sq[q[m]] - 1) & 0xFFFF_FFFF) <= SYN_NEAR
    return q[~near]


def _synack_reuse(new_flow: np.ndarray, flags: np.ndarray, is_tcp: np.ndarray, from_a: np.ndarray,
                  seq: np.ndarray) -> np.ndarray:
    """The rows (positions along the flow order; int64 array, increasing) of SYN-ACKs that start
    a new flow: a SYN-ACK (SYN and ACK, neither FIN nor RST) at another sequence number than the
    SYN-ACK before it in its flow (``new_flow``: bool per row, the flow starts so far), from the
    same side, in a flow every packet of which up to it came from that side (no SYN, no answer:
    backscatter, the SYN-ACKs of servers answering SYNs forged with this address). Zeek's
    ``TCPSessionAdapter::IsReuse`` takes a SYN-ACK as a new connection while the originator is
    INACTIVE (has sent nothing) and its number is not the responder's start (the SYN-ACK
    before's: ``init_endpoint`` restarts it at each SYN); the same ISN sent again (a
    retransmission) stays. (Zeek does so where the sender is its responder, a likely server
    port; here a lone SYN-ACK's receiver is always the originator.) ``flags``, ``is_tcp``,
    ``from_a`` (side A sent it), ``seq``: per row."""
    fl = np.asarray(flags, np.int64)
    sa = np.flatnonzero(np.asarray(is_tcp, bool) & ((fl & (SYN | ACK | FIN | RST)) == (SYN | ACK)))
    if len(sa) < 2:
        return np.zeros(0, np.int64)
    fa = np.asarray(from_a, bool)
    sq = np.asarray(seq, np.int64)
    p, q = sa[:-1], sa[1:]
    # (the few pairs from one side at two numbers first: most captures have none)
    cand = (fa[p] == fa[q]) & (((sq[p] ^ sq[q]) & 0xFFFF_FFFF) != 0)
    if not cand.any():
        return np.zeros(0, np.int64)
    p, q = p[cand], q[cand]
    starts = np.flatnonzero(np.asarray(new_flow, bool))
    st = starts[np.searchsorted(starts, q, side="right") - 1]     # (q's flow's first row)
    ca = np.r_[0, np.cumsum(fa)]                    # (rows from side A before each position)
    a_rows = ca[q + 1] - ca[st]
    one_side = np.where(fa[q], a_rows == q + 1 - st, a_rows == 0)
    return q[(p >= st) & one_side]


def _simultaneous_open(p: np.ndarray, q: np.ndarray, cand: np.ndarray, from_a: np.ndarray) -> np.ndarray:
    """Which SYNs ``q`` (rows along the flow order, each with ``p`` the SYN without ACK before
    it on the same 5-tuple; only where ``cand``) are the other side's SYN of a simultaneous open
    (RFC 9293 §3.5: both sides send a SYN, then both a SYN-ACK): sent from the other side than
    ``p`` by a side that has sent nothing since ``p`` (the first side still waits for an
    answer). Such a SYN is part of the connection ``p`` opened, as Wireshark has it (one TCP
    conversation), not a new one. ``from_a``: per row, sent from side A. Bool array like ``q``.

    The connection's history then has both SYNs and neither SYN-ACK (``Ss``…: a side's SYN-ACK
    after its SYN writes no letter, as in Zeek, whose ``init_endpoint`` restarts an unclosed
    side's sequence space at each SYN: :func:`history_codes`) and its endpoints
    are established by the peer's SYN (Zeek's ``UpdateInactiveState``), so a completed one is
    ``SF``. (Zeek's ``TCPSessionAdapter::IsReuse`` itself would start a new connection at such
    a SYN, with the weird ``SYN_seq_jump``: its ``simultaneous_open`` branch is not reached in
    this order of packets.)"""
    out = np.zeros(len(q), bool)
    turned = cand & (from_a[q] != from_a[p])
    if not turned.any():
        return out
    at = np.flatnonzero(turned)
    pa, qa = p[at], q[at]
    n_a = np.cumsum(from_a, dtype=np.int64)            # rows from side A up to each row
    a_between = n_a[qa - 1] - n_a[pa]                  # rows from A strictly between the SYNs
    from_q_side = np.where(from_a[qa], a_between, (qa - pa - 1) - a_between)
    out[at] = from_q_side == 0
    return out


def first_rows(key: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Of the rows ``at`` (positions into ``key``, in any order), the first one (in the order of
    ``at``) with each distinct value of ``key``: ``(values, rows)``, two arrays by increasing
    value; the same as ``v, i = np.unique(key[at], return_index=True); (v, at[i])``.

    For integer keys that are small non-negative numbers (flow or flow-and-direction numbers:
    below 4 per row plus 4096) one slot per value, written in reverse order (a repeated index
    keeps the last value assigned), instead of sorting; else ``np.unique``."""
    k = key[at]
    if len(k) == 0 or k.dtype.kind not in "iu" or k.min() < 0 or k.max() >= 4 * len(k) + 4096:
        v, i = np.unique(k, return_index=True)
        return v, at[i]
    slot = np.full(int(k.max()) + 1, -1, np.int64)
    slot[k[::-1]] = at[::-1]
    v = np.flatnonzero(slot >= 0)
    return v.astype(k.dtype, copy=False), slot[v]


def _group_starts(sorted_key: list[np.ndarray]) -> np.ndarray:
    """Boolean array: row i starts a new run of equal keys (rows already sorted by key)."""
    n = len(sorted_key[0])
    start = np.zeros(n, bool)
    if n:
        start[0] = True
        for k in sorted_key:
            start[1:] |= k[1:] != k[:-1]
    return start


#: the internal column of the analysis's flow tables (never written out) holding
#: :attr:`FlowTable.vlan_stack`: read it with :func:`vlan_key`
VLAN_STACK = "vlan_stack"
#: the internal columns holding :attr:`FlowTable.side_ttl`, the TTL of the originator's and of
#: the responder's first packet (what tells a NAT gateway's copy of a connection, the side it
#: forwarded one hop less: :mod:`kscc_traffic.natpairs`)
ORIG_TTL, RESP_TTL = "orig_ttl", "resp_ttl"
#: the internal column holding, per flow, the TTL (hop limit) of the responder's first packet as
#: captured leaving the capturing host (``l2_out``: its own when captured so, else its forwarded
#: copy's that left, a duplicate dropped), -1 when none was (arrived only, no responder packet, or
#: a capture that records no direction): a refused IPv6 attempt's reset and the IPv4 fallback's
#: SYN-ACK compared as the copies leaving a router's ``tcpdump -i any``, like for like
#: (:func:`kscc_traffic.classify.family_fallbacks`; :func:`kscc_traffic.inspect.resp_ttl_leaving`)
RESP_TTL_OUT = "resp_ttl_out"
#: the internal column holding :attr:`FlowTable.first_ip_id` (a NAT keeps a packet's IPv4
#: identification: :mod:`kscc_traffic.natpairs`)
FIRST_IP_ID = "first_ip_id"
#: the internal column holding :attr:`FlowTable.first_isn` (a NAT that changes the source port
#: keeps the SYN's ISN: :mod:`kscc_traffic.natpairs`)
FIRST_ISN = "first_isn"
#: the internal column holding :attr:`FlowTable.idle_before` in seconds (float): a TCP flow that
#: goes on with a connection after its 5-tuple was silent past the idle timeout
#: (:func:`kscc_traffic.classify.idle_note`; a chunked reading fills it in for a flow whose
#: earlier part left in an earlier batch: :class:`kscc_traffic.chunked.IdleSplits`)
IDLE_BEFORE = "idle_before_s"
#: the connection states (Zeek's) of a TCP flow that was established and not closed: only such a
#: connection goes on after an idle time (:attr:`FlowTable.idle_before`; OTH: one seen without
#: its handshake)
GOING_ON_STATES = ("S1", "S2", "S3", "OTH")
#: the bit a tagged frame's VLAN stack value has (:func:`kscc_traffic.capture._slowpath.vlan_value`)
VLAN_TAGGED = 1 << 24
#: the bit offsets of the VLAN IDs in a VLAN stack value, innermost first (12 bits each)
_VLAN_FIELDS = (0, 12, 25, 37, 49)


def vlan_ids(stack) -> tuple[np.ndarray, np.ndarray]:
    """VLAN stack values (int64 array-like: the packets' ``vlan`` column,
    :func:`kscc_traffic.capture._slowpath.vlan_value`) -> ``(vlan, inner_vlan)``, two int64 arrays
    of VLAN IDs (0..4095) as Zeek logs them (``policy/protocols/conn/vlan-logging.zeek``, its
    VLAN analyzer: the first tag with a VLAN ID other than 0 is ``vlan``, every later tag
    overwrites ``inner_vlan``): ``vlan`` the outermost tag's ID (a priority tag, VID 0, outside
    it skipped), ``inner_vlan`` the innermost tag's when the stack has more than that one, else
    0. 0 stands for Zeek's unset field (802.1Q's VID 0 is no VLAN): an untagged frame is
    ``(0, 0)``, VLAN 100 alone ``(100, 0)``, QinQ 200 outside 100 ``(200, 100)``, three tags
    300, 200, 100 ``(300, 100)`` (the tags between are in neither; they stay in the flow key)."""
    s = np.asarray(stack, dtype=np.int64)
    fields = [(s >> b) & 4095 for b in reversed(_VLAN_FIELDS)]     # outermost first
    outer = fields[-1].copy()
    for f in reversed(fields[:-1]):                                # (the outermost last: it wins)
        outer = np.where(f != 0, f, outer)
    out_of_inner = np.zeros(s.shape, bool)
    for f in fields[:-1]:
        out_of_inner |= f != 0
    inner = np.where(out_of_inner, fields[-1], 0)
    untagged = (s & VLAN_TAGGED) == 0
    return np.where(untagged, 0, outer), np.where(untagged, 0, inner)


def vlan_key(flows: pd.DataFrame) -> np.ndarray | None:
    """The VLAN part of each flow's key (int64 array, one per row), what the packets' ``vlan``
    column holds (:func:`kscc_traffic.capture._slowpath.vlan_value`): the table's internal
    ``vlan_stack`` column when it has one (the analysis adds it: :attr:`FlowTable.vlan_stack`),
    else made from its ``vlan`` and ``inner_vlan`` columns (0 where ``inner_vlan`` is absent):
    exact for up to two tags with VLAN IDs other than 0, which is what such a table can tell.
    None when the table has neither ``vlan_stack`` nor ``vlan``."""
    if VLAN_STACK in flows.columns:
        return flows[VLAN_STACK].to_numpy(dtype=np.int64)
    if "vlan" not in flows.columns:
        return None
    outer = flows["vlan"].to_numpy(dtype=np.int64) & 4095
    inner = flows["inner_vlan"].to_numpy(dtype=np.int64) & 4095 if "inner_vlan" in flows.columns \
        else np.zeros(len(flows), np.int64)
    return np.where(inner != 0, VLAN_TAGGED | outer << 12 | inner,
                    np.where(outer != 0, VLAN_TAGGED | outer, 0))


def _one_way_vlans_joined(vlan: np.ndarray, tuple_cols: tuple, src_first: np.ndarray) -> np.ndarray:
    """The VLAN part of each packet's flow key (int64 per packet): its ``vlan``, except where a
    5-tuple (``tuple_cols``) is seen on several VLAN stacks each carrying one direction only,
    both directions in all (a mirror that tags one direction, or each with another VLAN): there
    the smallest of them, so the two halves are one connection.

    A 5-tuple on several stacks each with both directions stays apart (the same connection
    replayed on other VLANs, overlapping address spaces, a router on a stick seeing every
    packet twice), as Suricata's and Zeek's VLAN-aware keys do.
    """
    n = len(vlan)
    if n == 0 or not (vlan != vlan[0]).any():
        return vlan
    h = _key_hash(tuple_cols, n)
    t = pd.DataFrame({"h": h, "v": vlan, "d": src_first.astype(np.int8)})
    per = t.groupby(["h", "v"], sort=False)["d"].agg(["min", "max"])
    one_way = per["min"] == per["max"]
    g = per.assign(one_way=one_way).groupby(level="h", sort=False).agg(
        stacks=("one_way", "size"), all_one_way=("one_way", "all"), lo=("min", "min"), hi=("max", "max"))
    join = g.index[(g["stacks"] > 1) & g["all_one_way"] & (g["lo"] != g["hi"])]
    if not len(join):
        return vlan
    smallest = t[t["h"].isin(join)].groupby("h", sort=False)["v"].min()
    out = vlan.copy()
    sel = np.isin(h, join.to_numpy())
    out[sel] = smallest.reindex(h[sel]).to_numpy()
    return out


def build_flows(packets: Packets, server_port: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
                exclude: np.ndarray | None = None, seed: str = "",
                carried: np.ndarray | None = None, copies: np.ndarray | None = None,
                broadcasts: dict[int, int] | None = None, tw_extra: np.ndarray | None = None) -> FlowTable:
    """Assemble bidirectional flows from decoded packets.

    :param packets: decoded packets (see :class:`kscc_traffic.capture.packets.Packets`).
    :param server_port: ``f(proto, port) -> bool array`` telling whether a port is a server port
        (documented by the rules, or well known); used to orient flows whose start was not seen.
        Default: ports below 1024.
    :param exclude: boolean mask of packets to leave out of flows (e.g. ICMP errors that are
        attached to the flow they quote).
    :param seed: text mixed into the flow uids (the capture's name), so uids differ per capture.
    :param carried: boolean mask of packets an earlier batch already found not to be copies (the
        packets a chunked analysis carries from batch to batch, see :mod:`kscc_traffic.chunked`):
        two of them next to each other in flow order are never a packet and its copy (the
        packets that were between them may be gone); a packet is still compared with a carried
        one before it, and a carried packet with a new one before it.
    :param copies: boolean mask of packets already counted as duplicates (a chunked analysis
        carries the last ones of a flow, so that the next packet is compared with them): dropped
        as duplicates again (unless first of their 5-tuple here) but not counted in
        ``FlowTable.duplicates``.
    :param broadcasts: IPv4 addresses earlier batches of the capture saw as link-layer broadcast
        destinations, each with its first ``frame`` (:func:`broadcast_evidence`): with this
        batch's, they make a flow the capturing host sent to that address a broadcast
        (:func:`_sent_cast`). None: only this batch's.
    :param tw_extra: int64 array (len(packets), 2) or None: per packet, the zero-window and
        retransmission events (Zeek's ``W`` and ``T``) of its flow and direction after it that are
        no longer among ``packets`` (a chunked analysis's summary, :func:`tw_codes`), so the
        scaled letters come at the same events. None: none.
    :returns: a :class:`FlowTable`; ``flows`` has exactly the :data:`FLOW_COLUMNS` columns, in
        time order of the first packet. An empty input gives an empty frame with the full schema.
    """
    server_port = server_port or _default_server_port
    n = len(packets)
    pkt_flow = np.full(n, -1, np.int64)
    pkt_from_orig = np.zeros(n, bool)
    c = packets.cols
    use = np.ones(n, bool) if exclude is None else ~exclude
    idx = np.nonzero(use)[0]
    if len(idx) == 0:
        return FlowTable(empty_flows(), packets, pkt_flow, pkt_from_orig, 0, vlan_stack=np.zeros(0, np.int64),
                         side_ttl=np.zeros((0, 2), np.int16), first_ip_id=np.zeros(0, np.int32),
                         idle_before=np.zeros(0, np.int64), first_isn=np.zeros(0, np.int64))

    # the used packets' values: every packet's (the columns themselves, read only) when none is left out
    pick = idx if len(idx) < n else slice(None)
    proto = c["proto"][pick].astype(np.int64)
    sh, sl, dh, dl = c["src_hi"][pick], c["src_lo"][pick], c["dst_hi"][pick], c["dst_lo"][pick]
    # the IP version is part of the key: an IPv6 packet between IPv4-mapped addresses
    # (::ffff:a.b.c.d) is not the IPv4 packet of the same numbers (IPv4 is stored so). Only
    # IPv6 packets whose two addresses have their upper 64 bits 0 get another key value (the
    # others' keys, hence the order of flows starting at the same time, stay as they were)
    proto_v = proto
    v6 = c["ipver"][pick] == 6
    if v6.any():
        low6 = v6 & ((sh | dh) == 0)
        if low6.any():
            proto_v = proto | (low6.astype(np.int64) << 8)
    sp, dp = c["sport"][pick].astype(np.int64), c["dport"][pick].astype(np.int64)
    icmp_row = ((proto == ICMP) | (proto == ICMP6)) & (c["icmp_type"][pick] >= 0)
    if icmp_row.any():
        # ICMP: keyed by type and counterpart type (or code) as Zeek does (icmp_ports)
        sp[icmp_row], dp[icmp_row] = icmp_ports(proto[icmp_row], c["icmp_type"][pick][icmp_row],
                                                c["icmp_code"][pick][icmp_row])
    vlan = c["vlan"][pick]
    ts = c["ts_ns"][pick]
    flags = c["tcp_flags"][pick].astype(np.int64)
    seq = c["seq"][pick]
    is_tcp = proto == TCP

    # canonical endpoint order: A is the lexicographically smaller (addr, port)
    src_first = (sh < dh) | ((sh == dh) & ((sl < dl) | ((sl == dl) & (sp <= dp))))
    a_hi = np.where(src_first, sh, dh)
    a_lo = np.where(src_first, sl, dl)
    b_hi = np.where(src_first, dh, sh)
    b_lo = np.where(src_first, dl, sl)
    a_p = np.where(src_first, sp, dp)
    b_p = np.where(src_first, dp, sp)

    # within one key, time order; packets with equal timestamps are ordered by content (SYN before
    # SYN-ACK before the rest, FIN after the rest and RST last; in between the packets from the
    # key's client side first (the side that sent the only SYN, or a client port to a server
    # port: see _server_side_key; a DNS query before its response), then flags, sequence
    # numbers…), never by their place in the file, so the result does not depend on how a
    # capture tool ordered simultaneous packets (and copies of one packet end up next to each
    # other). With coarse timestamps (1 s, 10 ms) whole exchanges tie: they still come in the
    # order a connection has them
    syn_rank = np.where(is_tcp & ((flags & (SYN | ACK)) == SYN), 0,
                        np.where(is_tcp & ((flags & (SYN | ACK)) == (SYN | ACK)), 1, 2))
    end_rank = np.where(is_tcp & ((flags & RST) != 0), 2, np.where(is_tcp & ((flags & FIN) != 0), 1, 0))

    def from_server(o: np.ndarray, key_start: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return _server_side_key(o, key_start, rows, packets=packets, idx=idx, syn_rank=syn_rank,
                                src_first=src_first, proto=proto, a_p=a_p, b_p=b_p, sp=sp, dp=dp,
                                server_port=server_port)
    def progress(o: np.ndarray, key_start: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return _exchange_progress(o, key_start, rows, ts=ts, is_tcp=is_tcp, flags=flags, seq=seq,
                                  ack=c["ack"][pick], src_first=src_first)
    tie_keys = (c["ip_len"][pick], c["icmp_type"][pick], c["payload_len"][pick], c["ack"][pick], seq,
                src_first, flags, from_server, progress, end_rank, syn_rank)
    key_cols = (_one_way_vlans_joined(vlan, (proto_v, a_hi, a_lo, b_hi, b_lo, a_p, b_p), src_first),
                proto_v, a_hi, a_lo, b_hi, b_lo, a_p, b_p)
    order, key_start = _flow_order(key_cols, ts, tie_keys)
    o_flags = flags[order]
    if _synack_after_syn(order, key_start, o_flags, ts, seq, src_first, c, idx):
        o_flags = flags[order]
    o_ts = ts[order]
    o_tcp = is_tcp[order]
    o_seq = seq[order]
    o_src_first = src_first[order]

    # duplicates: same header fields as the previous row of the same key and direction (not
    # merely the previous row: a copy written after the other side's answer, as pktmon writes
    # a packet at each stack component it crosses, is one too), very close in time
    dup = np.zeros(len(order), bool)
    # ``dord``: positions in flow order regrouped by direction within each key, time order kept;
    # ``dfirst``: (per position) the first of its key and direction
    # (a group is a key and direction: its first position is where the group changes, not where
    # its key starts, which may be in the other direction's group: a key whose SYN-ACK was moved
    # after its SYN begins with the other side, and its first group then followed the last group
    # of the key before it unseen, two keys' packets compared as copies; s57)
    group = np.cumsum(key_start) * 2 + o_src_first
    dord = np.argsort(group, kind="stable")
    dfirst = np.zeros(len(order), bool)
    if len(order):
        g = group[dord]
        dfirst[dord] = np.r_[True, g[1:] != g[:-1]]
    if len(order) > 1:
        at = idx[order[dord]]                          # (the packets' rows in that order)
        same = ~dfirst[dord][1:]
        ip_id = c["ip_id"][at]
        for col in ("seq", "ack", "tcp_flags", "ip_len", "payload_len", "ip_id", "icmp_type"):
            if col not in c:
                continue
            v = c[col][at]
            same &= v[1:] == v[:-1]
        dts = o_ts[dord]
        dt = dts[1:] - dts[:-1]
        has_id = ip_id[1:] > 0
        if "l4_sum" in c:
            # the transport checksum must match too, unless the IP id already proves the copy: a
            # capture point before the NIC's checksum offload (pktmon's upper components) sees
            # the packet with another checksum than one after it
            s4 = c["l4_sum"][at]
            same &= (s4[1:] == s4[:-1]) | has_id
        # (a packet of the other side between them: only a copy written within the same
        # instant, DUP_WINDOW_NOID_NS, as pktmon writes them; later, the answer between them
        # makes it a retransmission, however equal: a stack that keeps the IP id, RFC 6864)
        apart = (dord[1:] - dord[:-1]) != 1
        same &= np.where(has_id & ~apart, dt <= DUP_WINDOW_NS, dt <= DUP_WINDOW_NOID_NS)
        if "frame" in c:
            # (two packets at one time that is no clock (break-it 21 F10: a NIC that writes no
            # time, every record 0, or times clamped to one value): the time cannot tell a copy
            # from a retransmission, so the file must: a copy only when written next to what it
            # copies, the very next frame, and proven by an IP id; else a frozen clock made the
            # SYN retries of an S0 flow one packet. At an ordinary time shared by both (a coarse
            # clock, a span port writing its copies after the whole exchange), as before)
            # (both times no clock reading, equal or not: Simple Packet Blocks are given 1 ns apart)
            frozen = no_clock(dts[1:]) & no_clock(dts[:-1])
            if frozen.any():
                fr = c["frame"][at]
                same &= ~frozen | ((fr[1:] - fr[:-1] == 1) & has_id)
        if carried is not None:
            # two carried packets were compared in an earlier batch with what was between them
            jd = carried[at]
            same &= ~(jd[1:] & jd[:-1])
        # the few candidates left: their captured payloads must be equal too (distinct non-first
        # fragments of one datagram, or packets without a transport checksum, share every header)
        # (a row without a captured transport checksum — a non-first fragment, a cut header —
        # is never proven to be a copy)
        if "l4_sum" in c:
            l4 = c["l4_sum"][at][1:]
            # proof of a copy: an IP id, or a real (non-zero) transport checksum
            same &= (l4 >= 0) & (has_id | (l4 > 0))
        for j in np.nonzero(same)[0]:
            r1, r0 = int(at[j + 1]), int(at[j])
            if packets.payload(r1) != packets.payload(r0):
                same[j] = False
        dup[dord[1:][same]] = True
    forced = 0
    if copies is not None and len(order):
        known = copies[idx[order]] & ~dfirst           # (counted by the batch they came in)
        dup |= known
        forced = int(np.count_nonzero(known))
    # a duplicate never starts or splits anything: drop it now (remembering what it copies:
    # the kept row before it of its key and direction; a key's first row of a direction is
    # never a copy, so the search stays in its group)
    keep = ~dup
    dup_of = None
    if dup.any():
        kd = keep[dord]
        pos = np.maximum.accumulate(np.where(kd, np.arange(len(order)), 0))
        dd = ~kd
        dup_of = np.full(n, -1, np.int64)
        dup_of[idx[order[dord[dd]]]] = idx[order[dord[pos[dd]]]]
    order, key_start0 = order[keep], key_start[keep]
    # recompute key starts on kept rows (a dropped row never starts a key, so starts survive)
    key_start = key_start0
    o_ts, o_flags, o_tcp, o_seq, o_src_first = (o_ts[keep], o_flags[keep], o_tcp[keep],
                                                o_seq[keep], o_src_first[keep])
    o_proto = proto[order]
    at = idx[order]                                    # (the kept packets' rows in flow order)

    # split keys into flows: idle gap, or a new SYN (different ISN) on a used 5-tuple
    new_flow = key_start.copy()
    gap = np.zeros(len(order), bool)
    if len(order) > 1:
        timeout = np.full(len(order), DEFAULT_IDLE_NS, np.int64)
        for p, t in IDLE_TIMEOUT_NS.items():
            timeout[o_proto == p] = t
        timeout[dns_flows(o_proto, a_p[order], b_p[order])] = DNS_IDLE_NS
        gap[1:] = (o_ts[1:] - o_ts[:-1]) > timeout[1:]
        new_flow |= gap
        syn_only = o_tcp & ((o_flags & (SYN | ACK)) == SYN)
        si = np.nonzero(syn_only)[0]
        if len(si) > 1:
            key_id = np.cumsum(key_start) - 1
            p, q = si[:-1], si[1:]                     # each SYN after the first, the one before
            new = (key_id[q] == key_id[p]) & (o_seq[q] != o_seq[p])   # (a retransmission keeps the ISN)
            simul = _simultaneous_open(p, q, new, o_src_first)
            new_flow[q[new & ~simul]] = True
            new_flow[q[_answered_retry(p, q, new, key_id, o_flags, o_tcp, o_src_first, o_seq,
                                       c["ack"][at], new_flow)]] = True
            new_flow[q[_after_fins(p, q, new, key_id, o_flags, o_tcp, o_src_first)]] = True
        if len(si):
            new_flow[_syn_after_other(si, new_flow, o_flags, o_src_first, o_seq, c["ack"][at])] = True
        new_flow[_synack_reuse(new_flow, o_flags, o_tcp, o_src_first, o_seq)] = True
        _split_after_close(new_flow, o_ts, o_flags, o_tcp, o_src_first)
    flow_of = np.cumsum(new_flow) - 1  # per kept sorted row
    nflows = int(flow_of[-1]) + 1 if len(flow_of) else 0
    starts = np.nonzero(new_flow)[0]
    # per flow: how long its 5-tuple had been silent when a TCP flow began after the idle timeout
    # (a connection going on after the silence, when it sent no SYN), 0 for the others
    idle_before = np.zeros(nflows, np.int64)
    cont = starts[gap[starts] & ~key_start[starts] & o_tcp[starts]]
    idle_before[flow_of[cont]] = o_ts[cont] - o_ts[cont - 1]

    # orientation per flow: first SYN sender, else first SYN-ACK receiver, else port heuristics
    # (a SYN-ACK with FIN or RST set too is no answer to a SYN but an invalid probe, Zeek's ``I``
    # or ``Q``: its sender is no responder, and Zeek keeps it the originator unless its port is a
    # likely server port, which the port heuristics below give too)
    syn_rows = np.nonzero(o_tcp & ((o_flags & (SYN | ACK)) == SYN))[0]
    synack_rows = np.nonzero(o_tcp & ((o_flags & (SYN | ACK | FIN | RST)) == (SYN | ACK)))[0]
    orig_is_a = np.zeros(nflows, bool)
    decided = np.zeros(nflows, bool)
    has_syn = np.zeros(nflows, bool)
    has_synack = np.zeros(nflows, bool)
    if len(syn_rows):
        f, first = first_rows(flow_of, syn_rows)
        orig_is_a[f] = o_src_first[first]
        decided[f] = True
        has_syn[f] = True
    if len(synack_rows):
        f, first = first_rows(flow_of, synack_rows)
        has_synack[f] = True
        m = ~decided[f]
        orig_is_a[f[m]] = ~o_src_first[first[m]]
        decided[f[m]] = True
    # port heuristics for the rest
    heads = order[starts]                    # (each flow's first packet, of the used ones)
    fa_p = a_p[heads]
    fb_p = b_p[heads]
    fproto = o_proto[starts]
    first_from_a = o_src_first[starts]
    fa_hi, fa_lo = a_hi[heads], a_lo[heads]
    fb_hi, fb_lo = b_hi[heads], b_lo[heads]
    fv6 = c["ipver"][at[starts]] == 6
    # a broadcast/multicast address is never the originator
    a_group = _cast(fa_hi, fa_lo, np.zeros(nflows, bool), fv6) != "unicast"
    b_group = _cast(fb_hi, fb_lo, np.zeros(nflows, bool), fv6) != "unicast"
    by_port = _port_client_side(fproto, fa_p, fb_p, server_port)
    by_port[(fproto == ICMP) | (fproto == ICMP6)] = 0   # (type numbers, not ports: the first sender)
    heur = np.where(by_port != 0, by_port > 0, first_from_a)
    # a UDP flow only one side of which sent: the sender is the originator unless its port is
    # a well-known one (a DNS or NTP answer whose request was not captured, as Zeek's likely
    # server ports); a documented high port as its source is a port the OS or a NAT picked
    # (15001 -> 4500 is not "a datagram to 15001")
    n_from_a = np.bincount(flow_of, weights=o_src_first, minlength=nflows)
    one_way = (n_from_a == 0) | (n_from_a == np.diff(np.append(starts, len(order))))
    sender_p = np.where(first_from_a, fa_p, fb_p)
    heur = np.where(one_way & (fproto == UDP) & (sender_p >= 1024), first_from_a, heur)
    heur = np.where(b_group & ~a_group, True, heur)
    heur = np.where(a_group & ~b_group, False, heur)
    orig_is_a = np.where(decided, orig_is_a, heur)

    from_orig = o_src_first == orig_is_a[flow_of]

    # late copies: a data segment written again after its data was acknowledged (a span port's
    # or a second interface's copy delayed past DUP_WINDOW_NS, other packets between them)
    n_late = 0
    late = _late_copies(packets, at, flow_of, from_orig, o_flags, o_tcp, o_seq, o_ts, carried)
    if late is not None:
        cp, og = late
        n_late = len(cp)
        if dup_of is None:
            dup_of = np.full(n, -1, np.int64)
        dup_of[at[cp]] = at[og]
        left = np.ones(len(order), bool)
        left[cp] = False          # (never a flow's first row: its original is before it in its flow)
        order, new_flow, flow_of, from_orig = order[left], new_flow[left], flow_of[left], from_orig[left]
        o_ts, o_flags, o_tcp, o_seq, o_src_first, o_proto = (o_ts[left], o_flags[left], o_tcp[left],
                                                             o_seq[left], o_src_first[left], o_proto[left])
        at = at[left]
        starts = np.nonzero(new_flow)[0]

    # per-flow aggregates
    o_len = c["payload_len"][at].astype(np.int64)
    o_iplen = c["ip_len"][at].astype(np.int64)
    ones = np.ones(len(order), np.int64)
    orig_pkts = np.bincount(flow_of, weights=from_orig * ones, minlength=nflows).astype(np.int64)
    resp_pkts = np.bincount(flow_of, weights=~from_orig * ones, minlength=nflows).astype(np.int64)
    pl = np.maximum(o_len, 0)
    orig_bytes = np.bincount(flow_of, weights=pl * from_orig, minlength=nflows).astype(np.int64)
    resp_bytes = np.bincount(flow_of, weights=pl * ~from_orig, minlength=nflows).astype(np.int64)
    seq_bytes = byte_sums = own_reset = None
    if o_tcp.any():
        # TCP: from sequence numbers, as Zeek (retransmissions and keep-alive probes are not new
        # bytes; data acknowledged but not captured is)
        own_reset = after_own_reset(flow_of, from_orig, o_flags, o_tcp, o_len)
        seq_o, seq_r = _seq_bytes(flow_of, from_orig, o_flags, o_tcp, o_seq, c["ack"][at], o_len,
                                  nflows, own_reset)
        tcp_flow = np.zeros(nflows, bool)
        tcp_flow[flow_of[o_tcp]] = True
        seq_bytes = np.where(tcp_flow[:, None], np.stack([seq_o, seq_r], axis=1), -1)
        byte_sums = np.stack([orig_bytes, resp_bytes], axis=1)
        orig_bytes, resp_bytes = tcp_payload_bytes(seq_bytes, byte_sums).T
    orig_ipb = np.bincount(flow_of, weights=o_iplen * from_orig, minlength=nflows).astype(np.int64)
    resp_ipb = np.bincount(flow_of, weights=o_iplen * ~from_orig, minlength=nflows).astype(np.int64)
    first_ts = o_ts[starts]
    ends = np.append(starts[1:], len(order)) - 1
    last_ts = o_ts[ends]
    # (the flow's real last packet stays its end for everything else: the close delay, idle
    # timeouts, the quiet time after it; only ``duration`` stops at the close, as Zeek's)
    dur_end = tcp_duration_end(flow_of, from_orig, o_flags, o_tcp, o_ts, last_ts)

    # flags seen per direction
    def _any(mask: np.ndarray) -> np.ndarray:
        out = np.zeros(nflows, bool)
        out[flow_of[mask]] = True
        return out

    tcp_f = o_tcp
    syn_o = _any(tcp_f & from_orig & ((o_flags & (SYN | ACK)) == SYN))
    any_r = resp_pkts > 0
    is_tcp_flow = fproto == TCP

    history = _history(flow_of, from_orig, o_flags, o_tcp, o_seq, history_plen(o_proto, o_len), nflows,
                       flipped=~(first_from_a == orig_is_a),
                       win=c["tcp_win"][at] if "tcp_win" in c else None, reset=own_reset,
                       tw_extra=tw_extra[at] if tw_extra is not None else None)
    os_, rs_ = _endpoint_states(flow_of, from_orig, o_flags, tcp_f, o_len, nflows)
    # (Zeek's REJ after both sides' resets asks for both endpoints' sizes 0: sequence space, so
    # a RST's payload is not in it; a keep-alive's old byte acknowledged is; and no payload on
    # a packet without RST: data whose count a later SYN-ACK restarted (seq_extents) still
    # counts in Zeek, whose endpoint ignores a SYN once it is reset; data a side sent after its
    # own RST does not, as Zeek's size leaves it out (after_own_reset): a client's RST to the
    # SYN-ACK, its data after it, the server's RST is Zeek's REJ, which classify judges by its
    # SYN-ACK, not as a SYN answered by a reset: zeek63)
    unsized = own_reset if own_reset is not None else np.zeros(len(o_len), bool)
    no_payload = (orig_bytes == 0) & (resp_bytes == 0) & ~_any(tcp_f & (o_len > 0) & ((o_flags & RST) == 0)
                                                               & ~unsized)
    state = _conn_state(is_tcp_flow, fproto == UDP, os_, rs_, no_payload, history, any_r, orig_pkts > 0)
    # (a connection goes on after an idle time only when its earlier part was open: established
    # and not closed; after a refused, unanswered or closed one, a stray packet is no such flow)
    went_idle = np.flatnonzero(idle_before > 0)
    if len(went_idle):
        idle_before[went_idle[~np.isin(state[went_idle - 1], GOING_ON_STATES)]] = 0

    # orient endpoints
    o_hi = np.where(orig_is_a, fa_hi, fb_hi)
    o_lo = np.where(orig_is_a, fa_lo, fb_lo)
    r_hi = np.where(orig_is_a, fb_hi, fa_hi)
    r_lo = np.where(orig_is_a, fb_lo, fa_lo)
    o_p = np.where(orig_is_a, fa_p, fb_p)
    r_p = np.where(orig_is_a, fb_p, fa_p)
    # ICMP: Zeek reports the first message's type and its counterpart type (or code) as the ports
    icmp_flow = (fproto == ICMP) | (fproto == ICMP6)
    if icmp_flow.any():
        o_type = c["icmp_type"][at[starts]].astype(np.int64)
        o_code = c["icmp_code"][at[starts]].astype(np.int64)
        o_other = np.where(o_type >= 0, icmp_ports(fproto, np.maximum(o_type, 0), o_code)[1], o_code)
        o_p = np.where(icmp_flow, o_type, o_p)
        r_p = np.where(icmp_flow, o_other, r_p)
    l2b = c["l2_bcast"][at]
    l2b_flow = np.zeros(nflows, bool)
    l2b_flow[flow_of[l2b & from_orig]] = True
    cast = _cast(r_hi, r_lo, l2b_flow, fv6, tcp=is_tcp_flow)
    if "l2_out" in c:
        sent = c["l2_out"][at] & ~l2b & from_orig
        if sent.any():
            sent_flow = np.zeros(nflows, bool)
            sent_flow[flow_of[sent]] = True
            last_frame = c["frame"][at[ends]]     # (of the flow's last packet)
            # (not TCP, nor a flow the destination answered: a broadcast address neither
            # accepts a connection nor sends)
            # (nor DNS: no lookup goes to a broadcast address; an unanswered one to a resolver
            # at x.y.z.255 of a larger network stays a failed lookup: review s52 #1)
            cand = sent_flow & (cast == "unicast") & ~fv6 & ~is_tcp_flow & ~any_r & (r_p != 53)
            cast = _sent_cast(cast, cand, o_lo, r_lo, last_frame, broadcast_evidence(c, broadcasts), last_ts)
    # (an IPv6 flow between IPv4-mapped addresses gets another uid than the IPv4 flow of the
    # same numbers; every other uid as before)
    uid_proto = np.where(fv6 & _mapped(fa_hi, fa_lo) & _mapped(fb_hi, fb_lo), fproto | 0x600, fproto)
    partial = is_tcp_flow & ~syn_o  # the originator's SYN was not captured

    # flows in time order of their first packet (each column taken in that order)
    time_order = np.argsort(first_ts, kind="stable")
    rank = np.empty(nflows, np.int64)
    rank[time_order] = np.arange(nflows)
    def text(values) -> np.ndarray:
        return repeated(values, nflows) if isinstance(values, str) else np.asarray(values, object)[time_order]

    def num(values: np.ndarray) -> np.ndarray:
        return values[time_order]

    stack = vlan[heads].astype(np.int64)
    outer_vlan, inner_vlan = vlan_ids(stack)
    flows = frame_of({
        "ts": num(first_ts / 1e9),
        "uid": text(_uid(seed, vlan[heads], uid_proto, fa_hi, fa_lo, fa_p, fb_hi, fb_lo, fb_p, first_ts)),
        "orig_h": text(address_text(o_hi, o_lo, fv6)),
        "orig_p": num(o_p.astype(np.int64)),
        "resp_h": text(address_text(r_hi, r_lo, fv6)),
        "resp_p": num(r_p.astype(np.int64)),
        "proto": text(_proto_names(fproto)),
        "service": text(""),
        "duration": num((dur_end - first_ts) / 1e9),
        "orig_pkts": num(orig_pkts),
        "orig_bytes": num(orig_bytes),
        "resp_pkts": num(resp_pkts),
        "resp_bytes": num(resp_bytes),
        "conn_state": text(state),
        "history": text(history),
        "orig_ip_bytes": num(orig_ipb),
        "resp_ip_bytes": num(resp_ipb),
        "vlan": num(outer_vlan),
        "inner_vlan": num(inner_vlan),
        "cast": text(cast),
        "partial": num(partial),
        "icmp_unreachable": text(""),
        "ts_ns": num(first_ts),
    })
    if seq_bytes is not None:
        seq_bytes, byte_sums = seq_bytes[time_order], byte_sums[time_order]
    pkt_flow[at] = rank[flow_of]
    pkt_from_orig[at] = from_orig
    return FlowTable(flows, packets, pkt_flow, pkt_from_orig, int(dup.sum()) - forced + n_late, dup_of, seq_bytes,
                     byte_sums, num(stack), num(_side_ttl(c["ttl"], at, flow_of, from_orig, nflows)),
                     num(c["ip_id"][at[starts]].astype(np.int32)), num(idle_before),
                     num(_first_isn(c, at[starts])))


def _first_isn(c: dict, first: np.ndarray) -> np.ndarray:
    """:attr:`FlowTable.first_isn` from the packet columns ``c`` and each flow's first packet row
    ``first``: int64, the sequence number of a first packet that is a TCP SYN without ACK, else -1."""
    flags = c["tcp_flags"][first].astype(np.int64)
    syn = (c["proto"][first] == TCP) & ((flags & (SYN | ACK)) == SYN)
    return np.where(syn, c["seq"][first].astype(np.int64) & 0xFFFFFFFF, -1)


def _side_ttl(ttl: np.ndarray, at: np.ndarray, flow_of: np.ndarray, from_orig: np.ndarray, nflows: int) -> np.ndarray:
    """:attr:`FlowTable.side_ttl`: int16 (nflows, 2), per flow the TTL of the originator's first
    packet and of the responder's (-1: none); ``at`` the packets' rows in flow order, ``flow_of``
    and ``from_orig`` per such row."""
    out = np.full((nflows, 2), -1, np.int16)
    if len(at):
        v, r = first_rows(flow_of * 2 + ~from_orig, np.arange(len(at)))
        out[v >> 1, v & 1] = ttl[at[r]]
    return out


#: odd multipliers of :func:`_late_copies`' hash of a row's flow and direction, sequence number
_K_G = np.uint64(0x9E3779B97F4A7C15)
_K_S = np.uint64(0xC2B2AE3D27D4EB4F)


def _late_copies(packets: Packets, at: np.ndarray, flow_of: np.ndarray, from_orig: np.ndarray,
                 flags: np.ndarray, is_tcp: np.ndarray, seq: np.ndarray, ts: np.ndarray,
                 carried: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Late copies among the kept rows of :func:`build_flows` (``at``: their packet rows in flow
    order; ``flow_of``, ``from_orig``, ``flags``, ``is_tcp``, ``seq``, ``ts`` per row): ``(copies,
    originals)``, int arrays of positions in that order (each copy's original before it in its
    flow), or None when there are none.

    A copy is a TCP data segment (its payload captured; no SYN, no RST) equal to an earlier row of
    its flow and direction in sequence and acknowledgement numbers, flags, IP and payload lengths,
    a non-zero IPv4 id and a real (non-zero) transport checksum, and in its captured payload, at
    most :data:`DUP_LATE_NS` after it, sent when its sender had already sent later data (a
    furthest sequence end beyond the copy's) and the peer had acknowledged its data (its sequence
    end, FIN included) in a packet before it. Wireshark calls such a segment a *TCP Spurious
    Retransmission* (its data acknowledged already) and Zeek writes a ``T`` for it; with the
    same IP id and checksum (the same TCP options and window) it is the one datagram captured
    twice, which a stack does not send again: Linux and Windows give each packet they send,
    retransmissions included, a new id, and a retransmission's TCP timestamp differs. A spurious
    retransmission with a new id (a sender whose acknowledgements were lost) stays one, and so
    does an equal segment whose data was not acknowledged before it (a stack that keeps the id,
    RFC 6864: a real retransmission, the sign of a blocked path, is never taken for a copy).

    The original must be among the first ``MAX_SEGMENTS`` rows with payload of its flow and
    direction, and not be further back than :data:`DUP_LATE_NS`, so that a chunked or live
    analysis, which carries those rows of an open flow with their payload and the packets that
    make each direction's furthest acknowledgement (:func:`kscc_traffic.chunked._summarise`),
    finds the same copies; a row ``carried`` from an earlier batch was judged there."""
    from .streams import MAX_SEGMENTS
    c = packets.cols
    n = len(at)
    if n < 2 or "l4_sum" not in c or "ip_id" not in c:
        return None
    ip_id = c["ip_id"][at]
    l4 = c["l4_sum"][at]
    cand = is_tcp & ((flags & (SYN | RST)) == 0) & (ip_id > 0) & (l4 > 0)
    ci = np.flatnonzero(cand)
    if len(ci) < 2:
        return None
    g = flow_of.astype(np.int64) * 2 + ~from_orig
    # (first the rows whose flow, direction, sequence number, IP id and checksum hash like another's:
    # in traffic without copies, none; one sort of one column)
    with np.errstate(over="ignore"):
        h = ((g[ci].astype(np.uint64) * _K_G) ^ (seq[ci].astype(np.uint64) * _K_S)
             ^ (ip_id[ci].astype(np.uint64) << np.uint64(16)) ^ l4[ci].astype(np.uint64))
    hs = np.sort(h)
    twice = hs[1:][hs[1:] == hs[:-1]]
    if not len(twice):
        return None
    ci = ci[np.isin(h, twice)]
    ci = ci[content_rows(c, at[ci])]
    if len(ci) < 2:
        return None
    content = content_rows(c, at)
    plen = c["payload_len"][at]
    ack = c["ack"][at]
    cols = (g, seq, ack, flags, c["ip_len"][at], plen, ip_id, l4)
    o = ci[np.lexsort((ci,) + tuple(v[ci] for v in reversed(cols)))]
    same = np.ones(len(o) - 1, bool)
    for v in cols:
        same &= v[o][1:] == v[o][:-1]
    if not same.any():
        return None
    # each row's group's first row (its original: the earliest of equal rows)
    k = np.arange(len(o))
    first = o[np.maximum.accumulate(np.where(np.r_[True, ~same], k, 0))]
    cp, og = o[1:][same], first[1:][same]
    # (every copy of one original is compared with that original, not with another copy)
    ok = (ts[cp] - ts[og] >= 0) & (ts[cp] - ts[og] <= DUP_LATE_NS)
    if carried is not None:
        ok &= ~carried[at[cp]]
    cp, og = cp[ok], og[ok]
    if not len(cp):
        return None
    # acknowledged before: the peer's furthest acknowledgement up to the copy reaches its end
    fl = np.unique(flow_of[cp])
    rows = np.flatnonzero(np.isin(flow_of, fl))
    end, acked = seq_extents(flow_of[rows], from_orig[rows], flags[rows], is_tcp[rows], seq[rows],
                             ack[rows], plen[rows])
    dense = np.searchsorted(fl, flow_of[rows]).astype(np.int64)
    span = int(max(end.max(), acked.max(), 0)) + 2
    top = np.empty((2, len(rows)), np.int64)      # acknowledgements sent by the originator, the responder
    far = np.empty((2, len(rows)), np.int64)      # sequence ends of the originator, the responder
    for d, side in enumerate((True, False)):
        mine = from_orig[rows] == side
        for out, val in ((top, acked), (far, end)):
            v = np.where(mine, val, -1) + 1 + dense * span
            out[d] = np.maximum.accumulate(v) - dense * span - 1
    at_rows = np.searchsorted(rows, cp)
    own = np.where(from_orig[cp], 0, 1)
    e = end[at_rows]
    # the peer acknowledged its data, and the sender had sent later data (it moved on: the same
    # bytes sent again at once after their acknowledgement may be a stack's retransmission that
    # keeps the IP id, RFC 6864)
    ok = (e >= 0) & (top[1 - own, at_rows] >= e) & (far[own, at_rows] > e)
    cp, og = cp[ok], og[ok]
    if len(cp):
        # the captured payloads equal too
        eq = np.fromiter((packets.payload(int(a)) == packets.payload(int(b))
                          for a, b in zip(at[cp].tolist(), at[og].tolist())), bool, len(cp))
        cp, og = cp[eq], og[eq]
    if len(cp):
        # the original's rank among its flow and direction's rows with payload, the copies left
        # out (as a chunked analysis, which dropped them, counts; a copy before an original is
        # one of an earlier original, so of a rank below it: a copy too)
        pos = np.flatnonzero(content)
        pos = pos[~np.isin(pos, cp)]
        so = pos[np.argsort(g[pos], kind="stable")]
        gs = g[so]
        kk = np.arange(len(so))
        rank = np.full(n, MAX_SEGMENTS, np.int64)
        rank[so] = kk - np.maximum.accumulate(np.where(np.r_[True, gs[1:] != gs[:-1]], kk, 0))
        first = rank[og] < MAX_SEGMENTS
        cp, og = cp[first], og[first]
    return (cp, og) if len(cp) else None


def tcp_duration_end(flow_of: np.ndarray, from_orig: np.ndarray, flags: np.ndarray, is_tcp: np.ndarray,
                     ts: np.ndarray, last_ts: np.ndarray) -> np.ndarray:
    """Per flow, the time (int64, ns, like ``ts``) its ``duration`` runs to, as Zeek's:
    ``last_ts`` (the time of its last packet, one per flow), except for a TCP flow each of
    whose sides sent a FIN or a RST (any packet with either flag, FIN+RST and SYN+FIN
    included): the time of the packet that made the second side's first one (the later of
    the two sides' first FIN-or-RST times), packets after it not counted.

    Zeek's ``TCPSessionAdapter::Process`` moves the connection's last time
    (``Conn()->SetLastTime``) on each packet only while one endpoint has not closed
    (``! orig->did_close || ! resp->did_close``, read before the packet updates the state
    machine, so the closing packet itself counts); an endpoint's ``did_close`` is set
    (``ConnectionClosed``) by its first FIN or RST in whatever state. So the last ACK of a
    four-way close, FINs sent again, a late RST do not lengthen ``duration`` (Zeek's
    ``Conn::Info$duration``: "will not include the final ACK", zeek/zeek #846, #2622). Only
    both sides count: after a RST from one side, the other side's packets still do (until its
    own FIN or RST). Not modelled: Zeek defers ``did_close`` while its reassembler still
    waits for data before the FIN (a gap in the captured stream: ``DataPending``), counting a
    few more packets then.

    Rows sorted by flow, then time (``build_flows``' order; ``flow_of``, ``from_orig``,
    ``flags``, ``is_tcp``, ``ts`` per row). Returns an int64 array like ``last_ts``."""
    end = np.asarray(last_ts, np.int64).copy()
    fr = np.asarray(is_tcp, bool) & ((np.asarray(flags, np.int64) & (FIN | RST)) != 0)
    if not fr.any():
        return end
    never = np.iinfo(np.int64).max
    first = np.full((len(end), 2), never, np.int64)
    np.minimum.at(first, (flow_of[fr], (~np.asarray(from_orig, bool)[fr]).astype(np.intp)), ts[fr])
    both = (first < never).all(axis=1)
    end[both] = np.minimum(first[both].max(axis=1), end[both])
    return end


# Zeek TCP endpoint states (TCP_Endpoint.h EndpointState), in Zeek's numbering
INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET = range(7)


#: payload bytes per direction from which sequence numbers (modulo 2^32) are no longer trusted
#: to tell the size: the sum of the payloads is reported instead
_SEQ_TRUST = 1 << 30


def carried_data(flows: pd.DataFrame) -> np.ndarray:
    """Per row of a flow table (``orig_bytes``, ``resp_bytes``, ``partial``, ``proto``), whether
    the flow carried data: bool array (len(flows),). ``orig_bytes`` or ``resp_bytes`` > 0, except
    that for a TCP flow whose start was not captured (``partial``) one byte is not enough: the
    sizes start at the first packet's sequence number (Zeek's too), so a keep-alive probe at
    SND.NXT - 1 (Linux: 0 bytes, Windows: 1 old byte) acknowledged by the peer makes a size of
    1 without any new byte (a connection idle all along)."""
    if not len(flows):
        return np.zeros(0, bool)
    ob = flows["orig_bytes"].to_numpy(np.int64)
    rb = flows["resp_bytes"].to_numpy(np.int64)
    part = flows["partial"].to_numpy(bool) & (flows["proto"].to_numpy(dtype=object) == "tcp")
    least = np.where(part, 1, 0)
    return (ob > least) | (rb > least)


def tcp_payload_bytes(seq_bytes: np.ndarray, sums: np.ndarray) -> np.ndarray:
    """``orig_bytes``/``resp_bytes`` (int64 array like ``sums``, (n, 2)): the sizes from sequence
    numbers (``seq_bytes``, Zeek's way) where there are some (>= 0) and the payloads summed
    (``sums``) stay below :data:`_SEQ_TRUST`, else the sums (UDP, ICMP; a TCP direction whose
    sequence numbers may have wrapped)."""
    return np.where((seq_bytes >= 0) & (sums < _SEQ_TRUST), seq_bytes, sums)


def resent(ft: "FlowTable") -> np.ndarray:
    """Per flow of ``ft`` and direction (bool array (n, 2): originator, responder): TCP payload
    bytes sent more than once (the payloads summed exceed the size from sequence numbers:
    retransmissions, keep-alive probes). All False when ``ft`` has no TCP sizes."""
    if ft.seq_bytes is None:
        return np.zeros((len(ft.flows), 2), bool)
    return (ft.seq_bytes >= 0) & (ft.byte_sums > ft.seq_bytes)


def _seq_bytes(flow_of, from_orig, flags, is_tcp, seq, ack, plen, nflows,
               reset=None) -> tuple[np.ndarray, np.ndarray]:
    """Per flow, (originator, responder) payload bytes as Zeek's ``TCP_Endpoint::Size``: the
    furthest of the endpoint's own sequence end (not of a packet sent after its own RST:
    :func:`after_own_reset`) and the peer's acknowledgement, from the start of its data
    (:func:`seq_extents`), less the FIN octet when the endpoint sent a FIN (not on a RST). 0 for
    a direction without packets. int64 arrays (nflows,). ``reset``: :func:`after_own_reset` of
    these rows when known (None: computed)."""
    end, acked = seq_extents(flow_of, from_orig, flags, is_tcp, seq, ack, plen)
    # (a side's own sequence numbers after its RST are not trusted: Zeek's update_last_seq)
    if reset is None:
        reset = after_own_reset(flow_of, from_orig, flags, is_tcp, plen)
    end = np.where(reset, -1, end)
    g = flow_of.astype(np.int64) * 2 + (~np.asarray(from_orig, bool))
    size = np.zeros(2 * nflows, np.int64)
    np.maximum.at(size, g, end)
    peer = g ^ 1
    np.maximum.at(size, peer, acked)
    # (the FIN octet of a FIN that is not on a RST: seq_extents leaves RST packets out, so a
    # FIN+RST put no octet there to remove; Zeek counts its FIN octet and removes it: the same)
    fin = np.zeros(2 * nflows, bool)
    fin[g[is_tcp & ((flags & (FIN | RST)) == FIN)]] = True
    size = np.where(fin & (size > 0), size - 1, size)
    return size[0::2], size[1::2]


def after_own_reset(flow_of: np.ndarray, from_orig: np.ndarray, flags: np.ndarray, is_tcp: np.ndarray,
                    plen: np.ndarray) -> np.ndarray:
    """Per packet (rows sorted by flow, then time), whether its side was in Zeek's RESET state
    when it came: it sent a RST before (a packet with RST; a TCP row with a cut header, ``plen`` <
    0, is no packet), whose own sequence numbers Zeek no longer trusts (``update_last_seq``:
    "don't trust any subsequent sequence numbers"), so data it sends after its reset adds
    nothing to its size (``orig_bytes``/``resp_bytes``; the peer's acknowledgements of it still
    do, as Zeek's ``update_ack_seq``). As Zeek's endpoint state machine
    (``TCPSessionAdapter::UpdateClosedState``, ``UpdateEstablishedState``): a side's first RST
    changes nothing when that side and its peer had both sent a FIN before it (both CLOSED); a
    side that sent a FIN, then a RST (or both in its first packet, which Zeek takes as a FIN,
    then a RST), is CLOSED again from the peer's first FIN after that RST (a FIN without RST,
    not the peer's first packet, the peer not closed before: "actually normal termination").
    Not modelled (the per-packet state machine would tell them apart: tests compare it): a
    FIN or FIN+RST sent from SYN_SENT / SYN_ACK_SENT (only SYNs sent), and the peer's FIN while
    it is still INACTIVE after pure ACKs, when the other side is RESET from CLOSED; and Zeek
    taking a FIN's number when the side's last sequence number is its SYN's.

    ``flow_of`` (flow number per row), ``from_orig`` (bool or 0/1), ``flags``, ``is_tcp``,
    ``plen`` arrays of one length; returns a bool array of that length. Whole columns, no
    per-packet Python work."""
    n = len(flow_of)
    spans = _reset_spans(flow_of, from_orig, flags, is_tcp, plen)
    if spans is None:
        return np.zeros(n, bool)
    g, start, stop = spans
    pos = np.arange(n, dtype=np.int64)
    pk = np.asarray(is_tcp, bool) & (np.asarray(plen) >= 0)
    return pk & (pos > start[g]) & (pos < stop[g])


def _reset_spans(flow_of: np.ndarray, from_orig: np.ndarray, flags: np.ndarray, is_tcp: np.ndarray,
                 plen: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Where each side is in Zeek's RESET state (:func:`after_own_reset`, the same arguments):
    ``(g, start, stop)``, ``g`` the side of each row (flow * 2 + 1 for the responder, int64 (n,)),
    ``start``/``stop`` per side (int64 arrays indexed by ``g``): the side is RESET after the row
    ``start`` (its RST) and before the row ``stop`` (the peer's FIN that makes it CLOSED again;
    int64 max: never; ``start`` int64 max: never RESET). None when no packet has RST."""
    n = len(flow_of)
    if n == 0:
        return None
    fl = np.asarray(flags, np.int64)
    pk = np.asarray(is_tcp, bool) & (np.asarray(plen) >= 0)
    rst = pk & ((fl & RST) != 0)
    if not rst.any():
        return None
    fin = pk & ((fl & FIN) != 0)
    fin_only = fin & ~rst
    g = np.asarray(flow_of, np.int64) * 2 + (~np.asarray(from_orig, bool)).astype(np.int64)
    m = int(g.max()) + 2
    never = np.iinfo(np.int64).max

    def first(mask: np.ndarray) -> np.ndarray:
        a = np.full(m, never, np.int64)
        k, r = first_rows(g, np.flatnonzero(mask))      # (rows in time order per side)
        a[k] = r
        return a

    r, f, fo, a = first(rst), first(fin), first(fin_only), first(pk)
    grp = np.unique(g[rst])                   # (the sides that sent a RST)
    p = grp ^ 1
    rd, rp, fd, fp = r[grp], r[p], f[grp], f[p]
    # the earlier RST of the two sides: changes nothing when both had sent a FIN before it
    earlier = rd < rp
    eff = ~((fd < rd) & (fp < rd))
    # the later one: the peer is CLOSED then if it sent a FIN and (its own RST before changed
    # nothing, or was undone by this side's first FIN after it)
    p_eff = ~((fp < rp) & (fd < rp))
    # (a side RESET from CLOSED: its FIN before its RST, or both in its first packet, which
    # UpdateInactiveState takes as a FIN, then a RST)
    p_fin_first = (fp < rp) | ((fp == rp) & (a[p] == rp))
    d_fin_first = (fd < rd) | ((fd == rd) & (a[grp] == rd))
    p_restored = p_fin_first & (rp < fo[grp]) & (fo[grp] < rd) & (a[grp] < fo[grp])
    p_closed = (fp < rd) & (~((rp < rd) & p_eff) | p_restored)
    eff = np.where(earlier, eff, ~((fd < rd) & p_closed))
    # undone: this side had sent a FIN before its RST and the peer's first FIN comes after it
    # (a FIN without RST, before any RST of the peer's, not the peer's first packet: Zeek's
    # UpdateEstablishedState)
    undo = np.where(d_fin_first & (fo[p] > rd) & (fo[p] == fp) & (fp < rp) & (a[p] < fp), fo[p], never)
    start = np.full(m, never, np.int64)
    stop = np.full(m, never, np.int64)
    start[grp[eff]] = rd[eff]
    stop[grp[eff]] = undo[eff]
    return g, start, stop


#: distinct SYN ISNs per (flow, direction) :func:`seq_extents` looks at for its start (as the
#: compiled one, ``SEQ_ISNS`` in ``_tcpstate.c``)
SEQ_ISNS = 8
#: the largest flow number :mod:`._tcpstate`'s seq_extents and history_codes take (their tables
#: have cells per flow number up to the largest; above it they raise ValueError, and
#: :func:`seq_extents` / :func:`history_codes` run the numpy versions): ``sys.maxsize // 64``, as
#: _tcpstate.c's MAX_FLOW
COMPILED_MAX_FLOW = sys.maxsize // 64


def seq_extents(flow_of: np.ndarray, from_orig: np.ndarray, flags: np.ndarray, is_tcp: np.ndarray,
                seq: np.ndarray, ack: np.ndarray, plen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per packet, where it puts its endpoint's sequence space, as Zeek's ``TCP_Endpoint::Size``
    reads it: ``(end, acked)``, int64 arrays (len(flow_of),), in bytes relative to the start of
    the data of (flow, direction) (the SYN's ISN + 1, or the first packet's sequence number when
    the SYN was not captured; for a direction none of whose packets was captured (none at all,
    not even one whose TCP header the snaplen cut), the other
    direction's first acknowledgement number, as Zeek's ``init_peer`` takes it: what the other
    side acknowledged of it from there counts).

    ``end``: for a TCP packet that is not a RST, ``seq + SYN + payload + FIN`` relative to its own
    direction's start (the FIN octet included, as Zeek's last_seq); ``acked``: for a TCP packet
    with ACK that is not a RST, its acknowledgement number relative to the *other* direction's
    start (what it acknowledges of the peer's data). -1 where not applicable or before the start
    (sequence numbers compared modulo 2^32 within half the space).

    Rows are in (flow, time) order (``build_flows``' order, or ``chunked._summarise``'s): the
    ISN of the last SYN the other side acknowledged (an acknowledgement number of ISN + 1; else
    of the last SYN; of the first :data:`SEQ_ISNS` distinct ISNs of the direction), from the
    first SYN with that ISN on (a copy of it sets nothing; a stale answer's ISN, never
    acknowledged, neither), or else the first packet, of each (flow, direction) sets its start
    (the other side's acknowledgements of it count from its last SYN on, whatever its ISN); an
    acknowledgement number 0 is ignored. A packet whose TCP header was cut by the snaplen
    (``plen`` < 0: flags and sequence numbers not captured) is left out: -1, -1.

    Compiled (:mod:`._tcpstate`'s ``seq_extents``, three passes over the rows) when built and
    every flow number is non-negative and at most :data:`COMPILED_MAX_FLOW`, else
    :func:`seq_extents_py` (the same numbers: ``tests/test_tcpstate.py``; it raises MemoryError
    or ValueError for a flow number too large for its per-flow tables).
    """
    n = len(flow_of)
    # (getattr: a _tcpstate built before it had seq_extents runs the numpy version)
    compiled = getattr(_tcpstate, "seq_extents", None)
    if compiled is None or n == 0 or not 0 <= int(np.min(flow_of)) <= int(np.max(flow_of)) <= COMPILED_MAX_FLOW:
        return seq_extents_py(flow_of, from_orig, flags, is_tcp, seq, ack, plen)
    end = np.empty(n, np.int64)
    acked = np.empty(n, np.int64)
    compiled(np.ascontiguousarray(flow_of, np.int64), np.ascontiguousarray(from_orig, bool),
             np.ascontiguousarray(flags, np.int64), np.ascontiguousarray(is_tcp, bool),
             np.ascontiguousarray(seq, np.int64), np.ascontiguousarray(ack, np.int64),
             np.ascontiguousarray(plen, np.int64), end, acked)
    return end, acked


def seq_extents_py(flow_of: np.ndarray, from_orig: np.ndarray, flags: np.ndarray, is_tcp: np.ndarray,
                   seq: np.ndarray, ack: np.ndarray, plen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`seq_extents` in numpy (the fallback of :mod:`._tcpstate`'s ``seq_extents``); the
    same arguments and result."""
    n = len(flow_of)
    end = np.full(n, -1, np.int64)
    acked = np.full(n, -1, np.int64)
    # (a packet whose TCP header the snaplen cut, payload_len < 0, puts nothing anywhere)
    rows = np.flatnonzero(np.asarray(is_tcp, bool) & (np.asarray(plen) >= 0))
    if not len(rows):
        return end, acked
    g = flow_of[rows].astype(np.int64) * 2 + (~np.asarray(from_orig[rows], bool))
    fl = flags[rows].astype(np.int64)
    sq = seq[rows].astype(np.int64)
    syn = (fl & SYN) != 0
    # start per group: the ISN + 1 of its last SYN the other side acknowledged (a SYN-ACK sent
    # again with another ISN, by a SYN cookie or SYN proxy, restarts the count, as Zeek; a stale
    # answer's ISN, never acknowledged, does not: break-it s50), else of its last SYN, from the
    # first SYN with that ISN on (a copy of it, even after the connection closed, restarts
    # nothing); of each direction's first SEQ_ISNS distinct ISNs; else its first packet's seq
    base = np.zeros(int(g.max()) + 2, np.int64)
    base_at = np.zeros(len(base), np.int64)      # position (in rows) of the packet that set it
    # (and from where the peer's acknowledgements count: the last SYN, any ISN: an answer to an
    # attempt before it, a stale connection's ACK, is none of this one's)
    ack_at = np.zeros(len(base), np.int64)
    have = np.zeros(len(base), bool)
    ak = ack[rows].astype(np.int64)
    ok = (fl & RST) == 0
    acking = ok & ((fl & ACK) != 0) & (ak != 0)
    at = np.flatnonzero(syn)
    if len(at):
        u, last = first_rows(g, at[::-1])            # (the first in reverse order: the last)
        ack_at[u] = last
        key = g[at] * (1 << 32) + ((sq[at] + 1) & 0xFFFF_FFFF)
        uk, first_i = np.unique(key, return_index=True)
        o = np.lexsort((first_i, uk >> 32))          # (each group's ISNs in order of first sight)
        ug = (uk >> 32)[o]
        k = np.arange(len(o))
        rank = k - np.maximum.accumulate(np.where(np.r_[True, ug[1:] != ug[:-1]], k, 0))
        kept = np.sort(uk[o][rank < SEQ_ISNS])
        valid = np.isin(key, kept)
        acked_keys = ((g[acking] ^ 1) * (1 << 32) + (ak[acking] & 0xFFFF_FFFF))
        isn_acked = valid & np.isin(key, acked_keys)
        chosen = np.zeros(len(base), np.int64)
        u, last = first_rows(g[at], np.flatnonzero(valid)[::-1])
        chosen[u] = key[last]
        u, last = first_rows(g[at], np.flatnonzero(isn_acked)[::-1])
        chosen[u] = key[last]
        grp = np.unique(g[at])
        base[grp] = chosen[grp] & 0xFFFF_FFFF
        base_at[grp] = at[first_i[np.searchsorted(uk, chosen[grp])]]   # (its first SYN)
        have[grp] = True
    u, first = first_rows(g, np.arange(len(g)))
    nosyn = ~have[u]
    base[u[nosyn]] = sq[first[nosyn]]
    base_at[u[nosyn]] = ack_at[u[nosyn]] = first[nosyn]
    have[u] = True
    # a direction without a packet in the capture (one direction captured: a mirror of one
    # direction, asymmetric routing) starts where the other side's first acknowledgement puts it
    # (its ISN taken as that number - 1, as Zeek's init_peer guesses it), so the bytes the other
    # side acknowledged of it count ("acknowledged but not captured")
    # (a direction whose packets all had their TCP header cut by the snaplen was captured: its
    # bytes stay unknown, as before)
    tcp_all = np.flatnonzero(np.asarray(is_tcp, bool))
    g_all = flow_of[tcp_all].astype(np.int64) * 2 + (~np.asarray(from_orig[tcp_all], bool))
    seen = np.zeros(max(len(base), int(g_all.max()) + 1), bool)
    seen[g_all] = True
    at = np.flatnonzero(acking & ~have[g ^ 1] & ~seen[g ^ 1])
    if len(at):
        u, first = first_rows(g ^ 1, at)
        base[u] = ak[first]
        base_at[u] = ack_at[u] = first - 1     # (that acknowledgement itself counts: 0 bytes)
        have[u] = True
    half, mod = 1 << 31, (1 << 32) - 1

    def rel(v: np.ndarray, b: np.ndarray) -> np.ndarray:
        r = (v - b) & mod
        return np.where(r < half, r, -1)

    e = sq + syn + np.maximum(plen[rows].astype(np.int64), 0) + ((fl & FIN) != 0)
    pos = np.arange(len(rows))
    # (only from the start on: packets before a SYN sent again with another ISN count for nothing)
    # (nor a SYN with another ISN than the start's, a stale answer's: none of this space)
    other_isn = syn & ((((sq + 1) ^ base[g]) & 0xFFFF_FFFF) != 0)
    end[rows] = np.where(ok & ~other_isn & (pos >= base_at[g]), rel(e, base[g]), -1)
    peer = g ^ 1
    # (an acknowledgement number 0 is no acknowledgement: a stray ACK, as Zeek ignores it)
    has_ack = acking & have[peer] & (pos > ack_at[peer])
    acked[rows] = np.where(has_ack, rel(ak, base[peer]), -1)
    return end, acked


def state_event_rows(flow_of: np.ndarray, from_orig: np.ndarray, flags: np.ndarray, is_tcp: np.ndarray,
                     plen: np.ndarray) -> np.ndarray:
    """Boolean mask of the packets :func:`_endpoint_states` reads (rows sorted by flow, then time).

    Zeek's endpoint state machine changes state only on the first packet of a few kinds per
    direction (every later one of the same kind finds the endpoint in a state that ignores it):
    the first SYN, SYN-ACK, FIN, RST, packet without SYN/FIN/RST and without payload, and such a
    packet with payload; plus, from the responder, the first packet without flags or payload after
    the originator's first FIN or RST (Zeek keeps a responder INACTIVE on a pure ACK while the
    originator is in SYN_SENT; the next one after that counts). A packet whose TCP header was
    cut by the snaplen (``plen`` < 0) is none of these (Zeek skips it: ``truncated_header``).

    :param flow_of: flow number per row (integers).
    :param from_orig: per row, whether the originator sent it: a bool or any integer array (non-zero
        is true).
    :param flags: TCP flags per row (integers); ``is_tcp``: bool or integer array (non-zero: TCP);
        ``plen``: payload bytes per row (integers, -1 for a cut header). All of the same length.
    :returns: a bool array of that length.

    Compiled (:mod:`._tcpstate`'s ``event_rows``, one pass) when built and every flow number is
    non-negative, else :func:`state_event_rows_py` (the same rows: ``tests/test_tcpstate.py``)."""
    n = len(flow_of)
    keep = np.zeros(n, bool)
    if n == 0:
        return keep
    flow_of = np.asarray(flow_of)
    if _tcpstate is None or int(flow_of.min()) < 0:
        return state_event_rows_py(flow_of, from_orig, flags, is_tcp, plen)
    _tcpstate.event_rows(np.ascontiguousarray(flow_of, np.int64), np.ascontiguousarray(from_orig, bool),
                         np.ascontiguousarray(flags, np.int64), np.ascontiguousarray(is_tcp, bool),
                         np.ascontiguousarray(plen, np.int64), keep)
    return keep


def state_event_rows_py(flow_of: np.ndarray, from_orig: np.ndarray, flags: np.ndarray, is_tcp: np.ndarray,
                        plen: np.ndarray) -> np.ndarray:
    """:func:`state_event_rows` in numpy (the fallback of :mod:`._tcpstate`'s ``event_rows``);
    the same arguments and result."""
    n = len(flow_of)
    keep = np.zeros(n, bool)
    if n == 0:
        return keep
    flow_of = np.asarray(flow_of)
    flags = np.asarray(flags, np.int64)
    plen = np.asarray(plen)
    from_orig = np.asarray(from_orig, bool)    # (an int8 0/1 array too: ~ and & on it are not logical)
    tcp = np.asarray(is_tcp, bool) & (plen >= 0)   # (a cut TCP header: no event)
    syn, ack = (flags & SYN) != 0, (flags & ACK) != 0
    fin, rst = (flags & FIN) != 0, (flags & RST) != 0
    plain = tcp & ~syn & ~fin & ~rst
    kinds = (tcp & syn & ~ack, tcp & syn & ack, tcp & fin, tcp & rst, plain & (plen <= 0), plain & (plen > 0))
    fd = flow_of.astype(np.int64) * 2 + (~from_orig).astype(np.int64)
    for m in kinds:
        at = np.nonzero(m)[0]
        if len(at):
            keep[first_rows(fd, at)[1]] = True
    close_o = tcp & from_orig & (fin | rst)
    if close_o.any():
        nf = int(flow_of.max()) + 1
        first_close = np.full(nf, n, np.int64)
        np.minimum.at(first_close, flow_of[close_o], np.nonzero(close_o)[0])
        at = np.nonzero(kinds[4] & ~from_orig & (np.arange(n) > first_close[flow_of]))[0]
        if len(at):
            keep[first_rows(flow_of, at)[1]] = True
    return keep


def _endpoint_states(flow_of, from_orig, flags, is_tcp, plen, nflows) -> tuple[np.ndarray, np.ndarray]:
    """Zeek's final TCP endpoint states per flow (originator, responder), by Zeek's endpoint
    state machine (``TCPSessionAdapter::UpdateStateMachine`` and its ``Update*State`` functions,
    src/packet_analysis/protocol/tcp/TCPSessionAdapter.cc) run over the packets
    :func:`state_event_rows` picks: at most 13 per flow, so it is a few vectorised steps over all
    flows at once (step k handles every flow's k-th such packet). Rows sorted by flow, then time.

    Not modelled: Zeek's SYN/SYN-ACK reversal (a responder's SYN with the ISN of an originator
    that sent a SYN-ACK makes Zeek flip the roles); the originator here is the one
    :func:`build_flows` chose.

    Compiled (:mod:`._tcpstate`, the events run one by one) when built, else
    :func:`_endpoint_states_py` (the same states: ``tests/test_tcpstate.py``)."""
    ev = np.nonzero(state_event_rows(flow_of, from_orig, flags, is_tcp, plen))[0]
    if _tcpstate is None or len(ev) == 0:
        return _endpoint_states_py(flow_of, from_orig, flags, plen, nflows, ev)
    os_ = np.zeros(nflows, np.int8)
    rs_ = np.zeros(nflows, np.int8)
    _tcpstate.endpoint_states(np.ascontiguousarray(flow_of[ev], np.int64),
                              np.asarray(from_orig, bool)[ev].astype(np.int64),
                              np.ascontiguousarray(np.asarray(flags)[ev], np.int64),
                              np.ascontiguousarray(np.asarray(plen)[ev], np.int64), os_, rs_)
    return os_, rs_


def _endpoint_states_py(flow_of, from_orig, flags, plen, nflows, ev) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_endpoint_states` in numpy steps (step k: every flow's k-th event of ``ev``, the
    rows :func:`state_event_rows` picks): the fallback of :mod:`._tcpstate`."""
    os_ = np.zeros(nflows, np.int8)   # state
    rs_ = np.zeros(nflows, np.int8)
    op_ = np.zeros(nflows, np.int8)   # prev_state (TCP_Endpoint::SetState keeps it)
    rp_ = np.zeros(nflows, np.int8)
    if len(ev) == 0:
        return os_, rs_
    fl_all = flow_of[ev]
    st = np.r_[True, fl_all[1:] != fl_all[:-1]]
    i = np.arange(len(ev))
    rank = i - np.maximum.accumulate(np.where(st, i, 0))
    flags = np.asarray(flags, np.int64)
    for k in range(int(rank.max()) + 1):
        r = ev[rank == k]
        fl, io, fg, ln = flow_of[r], np.asarray(from_orig[r], bool), flags[r], plen[r]
        syn, ack, fin, rst = (fg & SYN) != 0, (fg & ACK) != 0, (fg & FIN) != 0, (fg & RST) != 0
        e = np.where(io, os_[fl], rs_[fl])
        ep = np.where(io, op_[fl], rp_[fl])
        p = np.where(io, rs_[fl], os_[fl])
        pp = np.where(io, rp_[fl], op_[fl])

        def set_e(mask, new):
            nonlocal e, ep
            ch = mask & (e != new)
            ep = np.where(ch, e, ep)
            e = np.where(ch, new, e)

        def set_p(mask, new):
            nonlocal p, pp
            ch = mask & (p != new)
            pp = np.where(ch, p, pp)
            p = np.where(ch, new, p)

        e0 = e.copy()
        # UpdateInactiveState
        b = e0 == INACTIVE
        set_e(b & syn & io, np.where(ack, SYN_ACK_SENT, SYN_SENT))
        set_p(b & syn & ~io & (p == SYN_SENT), ESTABLISHED)
        set_e(b & syn & ~io, ESTABLISHED)
        set_e(b & fin, CLOSED)
        set_e(b & rst, RESET)
        still = b & (e == INACTIVE)
        # a responder's pure ACK while the originator is in SYN_SENT leaves it INACTIVE
        skip = still & ~io & (ln <= 0) & (p == SYN_SENT)
        est = ack & (p == ESTABLISHED)
        set_e(still & ~skip & est, ESTABLISHED)
        set_e(still & ~skip & ~est, PARTIAL)
        # UpdateSYN_SentState
        b = (e0 == SYN_SENT) | (e0 == SYN_ACK_SENT)
        set_e(b & fin, CLOSED)
        set_e(b & rst, RESET)
        # UpdateEstablishedState
        b = (e0 == ESTABLISHED) | (e0 == PARTIAL)
        set_e(b & syn & ~ack & (e == PARTIAL) & (p == INACTIVE), SYN_SENT)
        f = b & fin & ~rst
        set_e(f, CLOSED)
        set_p(f & (p == RESET) & (pp == CLOSED), CLOSED)  # the peer's FIN then RST: normal close
        set_e(b & rst, RESET)
        # UpdateClosedState: a RST after both sides' FINs changes nothing
        set_e((e0 == CLOSED) & rst & (p != CLOSED), RESET)
        # (UpdateResetState changes nothing)
        os_[fl] = np.where(io, e, p)
        op_[fl] = np.where(io, ep, pp)
        rs_[fl] = np.where(io, p, e)
        rp_[fl] = np.where(io, pp, ep)
    return os_, rs_


#: Zeek's conn_state(): an originator RESET with an inactive responder is RSTOS0 when the
#: history matches this (Zeek compares ``/\^?S[^HAFGIQ]*R.*/ == c$history``: the whole string)
_RSTOS0_HISTORY = re.compile(r"\^?S[^HAFGIQ]*R.*")


def _conn_state(is_tcp, is_udp, os_, rs_, no_payload, history, any_r, any_o) -> np.ndarray:
    """Zeek's ``conn_state()`` (scripts/base/protocols/conn/main.zeek) from the two endpoints'
    final states (:func:`_endpoint_states`), the history and, for REJ after an originator's RST,
    whether both endpoints' sizes are 0 (``no_payload``: Zeek's ``c$orig$size == 0 &&
    c$resp$size == 0``, sequence-space sizes: ``orig_bytes``/``resp_bytes``)."""
    o_inactive = (os_ == INACTIVE) | (os_ == PARTIAL)
    r_inactive = (rs_ == INACTIVE) | (rs_ == PARTIAL)
    o_reset, r_reset = os_ == RESET, rs_ == RESET
    rstos0 = np.zeros(len(is_tcp), bool)
    cand = np.nonzero(is_tcp & ~r_reset & o_reset & r_inactive)[0]
    if len(cand):
        rstos0[cand] = [bool(_RSTOS0_HISTORY.fullmatch(h)) for h in np.asarray(history, object)[cand]]
    # (indices into _STATES: one text object per state, not one per flow)
    tcp_state = np.select(
        [r_reset & ((os_ == SYN_SENT) | (os_ == SYN_ACK_SENT) | (o_reset & no_payload)),
         r_reset & o_inactive,
         r_reset,
         o_reset & r_inactive & rstos0,
         o_reset & r_inactive,
         o_reset,
         (rs_ == CLOSED) & (os_ == CLOSED),
         (os_ == CLOSED) & r_inactive,
         os_ == CLOSED,
         (rs_ == CLOSED) & o_inactive,
         rs_ == CLOSED,
         (os_ == SYN_SENT) & (rs_ == INACTIVE),
         (os_ == ESTABLISHED) & (rs_ == ESTABLISHED)],
        np.arange(len(_STATES)), _OTH)
    # UDP: Zeek reports S0 (originator only), SHR (responder only), SF (both); ICMP and the rest OTH
    udp_state = np.where(any_o & any_r, _SF, np.where(any_o, _S0, _SHR))
    return _STATES[np.where(is_tcp, tcp_state, np.where(is_udp, udp_state, _OTH))]


#: the states :func:`_conn_state` gives, in the order of its TCP conditions
_STATES = np.array(["REJ", "RSTRH", "RSTR", "RSTOS0", "OTH", "RSTO", "SF", "SH", "S2", "SHR", "S3", "S0", "S1"],
                   dtype=object)
_OTH, _SF, _S0, _SHR = (int(np.flatnonzero(_STATES == s)[0]) for s in ("OTH", "SF", "S0", "SHR"))


_LETTERS = "SHADFRIQ"  # Zeek's history letters this table writes (the originator's; lower case: responder's)

#: at most this many ``S``/``H``, ``F`` and ``R`` letters each per direction (Zeek writes one
#: again for every such packet with another sequence number than the last one; Zeek has no
#: limit, the table keeps the first ones)
MAX_HISTORY_REPEATS = 4


def history_events(flags: np.ndarray, is_tcp: np.ndarray, plen: np.ndarray) -> np.ndarray:
    """Per packet, which kinds of Zeek history events it is (bool array (n, 8), columns in the
    order of ``SHADFRIQ``): SYN and SYN-ACK (the only one of SYN/FIN/RST set), pure ACK and data
    (none of SYN/FIN/RST set: Zeek's ``D`` is never written for the payload of a SYN, FIN or
    RST; any other protocol's packet with payload is ``D``), any FIN, any RST (columns 4 and 5: the packets that close a direction, whatever else
    they carry), FIN+RST (``I``), SYN with FIN or RST but not both FIN and RST (``Q``). A TCP
    packet whose header was cut by the snaplen (``plen`` -1, flags 0) is none. The letters
    themselves, with Zeek's repeats: :func:`history_codes`."""
    flags = np.asarray(flags, np.int64)
    is_tcp = np.asarray(is_tcp, bool)
    ev = np.zeros((len(flags), len(_LETTERS)), bool)
    syn = (flags & SYN) != 0
    ack = (flags & ACK) != 0
    fin = (flags & FIN) != 0
    rst = (flags & RST) != 0
    bits = syn.astype(np.int8) + fin + rst
    none = is_tcp & (bits == 0)
    ev[:, 0] = is_tcp & syn & ~ack & (bits == 1)
    ev[:, 1] = is_tcp & syn & ack & (bits == 1)
    ev[:, 2] = none & ack & (plen <= 0)
    ev[:, 3] = (none | ~is_tcp) & (plen > 0)     # (UDP: D for every datagram, as Zeek: history_plen)
    ev[:, 4] = is_tcp & fin
    ev[:, 5] = is_tcp & rst
    ev[:, 6] = is_tcp & fin & rst
    ev[:, 7] = is_tcp & (bits > 1) & ~(fin & rst)
    return ev


def history_plen(proto: np.ndarray, plen: np.ndarray) -> np.ndarray:
    """The payload lengths the history rules read (``plen`` argument of :func:`history_events`,
    :func:`history_codes`, :meth:`HistoryState.step`), per packet (int64 array; ``proto`` the IP
    protocol numbers, ``plen`` the payload lengths, -1 for a cut TCP header): a TCP segment's own,
    1 for every UDP datagram (Zeek's UDP analyzer writes ``D``/``d`` for each, an empty one too:
    ``UDP.cc`` ``CheckHistory`` whatever its length), -1 for any other protocol's packet (Zeek's
    ICMP connections have no history; an ICMP error carried with its TCP or UDP flow writes none)."""
    proto = np.asarray(proto)
    plen = np.asarray(plen, np.int64)
    return np.where(proto == TCP, plen, np.where(proto == UDP, 1, -1))


def history_codes(flow_of: np.ndarray, from_orig: np.ndarray, flags: np.ndarray, is_tcp: np.ndarray,
                  seq: np.ndarray, plen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per packet (rows sorted by flow, then time), the history letter it writes, as Zeek's
    ``TCPSessionAdapter::UpdateHistory``: ``(code, keep)``, int64 array (n,) (index into
    ``SHADFRIQ``, + 8 for the responder; -1: no letter) and a bool mask of the packets an
    analysis in pieces (``chunked``) must keep to write the same letters.

    Zeek's rules: a packet with exactly one of SYN/FIN/RST writes ``S`` (``H`` with ACK), ``F``
    or ``R``: the first of its kind per direction (SYN and SYN-ACK are one kind), and again
    whenever its sequence number (for a FIN: the sequence number after its payload) differs
    from that of the direction's previous packet of the kind (at most
    :data:`MAX_HISTORY_REPEATS` times) — for ``S``/``H`` only once the direction has closed
    (:func:`_closed_before`: before, Zeek's ``init_endpoint`` restarts its sequence space at
    each SYN, whose relative number is 0 as the first one's was); FIN+RST writes ``I``, SYN with FIN or RST ``Q``; a
    packet with none of them writes ``D`` when it carries payload, else ``A`` when it has ACK;
    ``I``, ``Q``, ``D``, ``A`` only once per direction.

    Compiled (:mod:`._tcpstate`'s ``history_codes``, two passes over the rows) when built and
    every flow number is non-negative and at most :data:`COMPILED_MAX_FLOW`, else
    :func:`history_codes_py` (the same codes and mask: ``tests/test_tcpstate.py``)."""
    n = len(flow_of)
    # (getattr: a _tcpstate built before it had history_codes runs the numpy version)
    compiled = getattr(_tcpstate, "history_codes", None)
    if compiled is None or n == 0 or not 0 <= int(np.min(flow_of)) <= int(np.max(flow_of)) <= COMPILED_MAX_FLOW:
        return history_codes_py(flow_of, from_orig, flags, is_tcp, seq, plen)
    code = np.empty(n, np.int64)
    keep = np.empty(n, bool)
    compiled(np.ascontiguousarray(flow_of, np.int64), np.ascontiguousarray(from_orig, bool),
             np.ascontiguousarray(flags, np.int64), np.ascontiguousarray(is_tcp, bool),
             np.ascontiguousarray(seq, np.int64), np.ascontiguousarray(plen, np.int64),
             MAX_HISTORY_REPEATS, code, keep)
    return code, keep


def history_codes_py(flow_of: np.ndarray, from_orig: np.ndarray, flags: np.ndarray, is_tcp: np.ndarray,
                     seq: np.ndarray, plen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`history_codes` in numpy (the fallback of :mod:`._tcpstate`'s ``history_codes``);
    the same arguments and result."""
    n = len(flow_of)
    code = np.full(n, -1, np.int64)
    keep = np.zeros(n, bool)
    if n == 0:
        return code, keep
    ev = history_events(flags, is_tcp, plen)
    d = (~np.asarray(from_orig, bool)).astype(np.int64)
    fd = np.asarray(flow_of, np.int64) * 2 + d
    # once per direction: A, D, I, Q
    for j in (2, 3, 6, 7):
        at = np.flatnonzero(ev[:, j])
        if len(at):
            first = first_rows(fd, at)[1]
            code[first] = j + len(_LETTERS) * d[first]
    # S/H, F, R: the first of the kind and every one whose sequence number changed (S/H: only
    # once the direction has closed, _closed_before)
    single = (ev[:, 0] | ev[:, 1], ev[:, 4] & ~ev[:, 5] & ~ev[:, 7], ev[:, 5] & ~ev[:, 4] & ~ev[:, 7])
    sq = np.asarray(seq, np.int64) & 0xFFFF_FFFF
    closed = _closed_before(fd, flags, is_tcp, plen)
    for kind, m in enumerate(single):
        at = np.flatnonzero(m)
        if not len(at):
            continue
        g = fd[at]
        o = np.argsort(g, kind="stable")       # (rows are in (flow, time) order already)
        at, g = at[o], g[o]
        v = sq[at]
        if kind == 1:
            v = (v + np.maximum(np.asarray(plen)[at].astype(np.int64), 0)) & 0xFFFF_FFFF
        start = np.r_[True, g[1:] != g[:-1]]
        last = np.r_[g[1:] != g[:-1], True]
        writes = start | np.r_[False, v[1:] != v[:-1]]
        last_open = np.zeros(len(at), bool)
        if kind == 0:
            # (Zeek's init_endpoint restarts an unclosed direction's sequence space at its SYN,
            # whose relative number is then 0 as the first one's was: no letter)
            writes &= start | closed[at]
            # (the last one before the direction closed: the number a later one is compared with)
            last_open = ~closed[at] & (last | np.r_[closed[at][1:], True])
        w = np.cumsum(writes)
        first_w = np.maximum.accumulate(np.where(start, w - 1, 0))
        nth = w - first_w            # 1 for the first letter of the group
        ok = writes & (nth <= 1 + MAX_HISTORY_REPEATS)
        keep[at[last_open]] = True
        letter = np.where(kind == 0, np.where((np.asarray(flags)[at] & ACK) != 0, 1, 0), 4 if kind == 1 else 5)
        code[at[ok]] = letter[ok] + len(_LETTERS) * d[at[ok]]
        keep[at[ok | (last & (nth <= 1 + MAX_HISTORY_REPEATS))]] = True
    keep |= code >= 0
    return code, keep


def _closed_before(fd: np.ndarray, flags: np.ndarray, is_tcp: np.ndarray, plen: np.ndarray) -> np.ndarray:
    """Per row (``fd``: flow * 2 + direction per row, rows in time order within each flow),
    whether its direction had closed before it, for Zeek's repeated ``S``/``H``: it had sent a
    packet with FIN or RST (Zeek's endpoint is then CLOSED or RESET, where ``init_endpoint`` no
    longer restarts the sequence space at a SYN), unless its first packet was a RST alone (RESET
    from INACTIVE, where it still does). A TCP row with a cut header (``plen`` < 0) is no packet
    (Zeek skips it). Bool array like ``fd``."""
    fd = np.asarray(fd, np.int64)
    n = len(fd)
    if n == 0:
        return np.zeros(0, bool)
    fl = np.asarray(flags, np.int64)
    pk = np.asarray(is_tcp, bool) & (np.asarray(plen) >= 0)
    syn, fin, rst = (fl & SYN) != 0, (fl & FIN) != 0, (fl & RST) != 0
    o = np.argsort(fd, kind="stable")
    g = fd[o]
    start = np.r_[True, g[1:] != g[:-1]]
    closing = (pk & (fin | rst))[o]
    before = np.cumsum(closing) - closing          # closing packets of the group before the row
    base = np.maximum.accumulate(np.where(start, before, 0))
    gid = np.cumsum(start) - 1
    # the group's first packet a RST alone: never closed for this
    never = np.zeros(int(gid[-1]) + 1, bool)
    pk_o = np.flatnonzero(pk[o])
    if len(pk_o):
        _, first = first_rows(gid, pk_o)
        r = o[first]
        never[gid[first]] = rst[r] & ~syn[r] & ~fin[r]
    out = np.empty(n, bool)
    out[o] = ((before - base) > 0) & ~never[gid]
    return out


#: Zeek's largest sequence jump a SYN's or RST's number is trusted with (``TOO_LARGE_SEQ_DELTA``)
_TOO_LARGE_SEQ_DELTA = 1 << 20


def _int32(v: np.ndarray) -> np.ndarray:
    """``v`` (int64) as a signed 32-bit difference: in [-2**31, 2**31)."""
    return ((v + (1 << 31)) & 0xFFFF_FFFF) - (1 << 31)


def _segment_cummax(v: np.ndarray, seg: np.ndarray) -> np.ndarray:
    """Running maximum of ``v`` (int64, each within ±2**41) restarting at each new value of
    ``seg`` (non-decreasing int64): int64 array like ``v``. Whole columns (in blocks of 2**20
    segments, so the offsets stay in int64)."""
    out = np.empty(len(v), np.int64)
    if not len(v):
        return out
    seg = seg - seg[0]
    span = np.int64(1) << 43
    lo = 0
    while lo < len(v):
        base = int(seg[lo])
        hi = int(np.searchsorted(seg, base + (1 << 20), "left"))
        off = (seg[lo:hi] - base) * span
        out[lo:hi] = np.maximum.accumulate(v[lo:hi] + off) - off
        lo = hi
    return out


def retransmission_events(flow_of: np.ndarray, from_orig: np.ndarray, flags: np.ndarray, is_tcp: np.ndarray,
                          seq: np.ndarray, plen: np.ndarray, reset: np.ndarray | None = None,
                          holders: bool = False):
    """Per packet (rows in time order within each flow: sorted by flow, or flows interleaved),
    whether Zeek counts it as a retransmission (``TCPSessionAdapter`` ``update_last_seq``:
    ``DidRxmit``, the ``T`` letter): a TCP packet with
    payload whose sequence end (its number + payload + SYN + FIN; a RST's payload is not in the
    sequence space) does not pass its side's last sequence number (``LastSeq``: the furthest end
    its side's packets reached), its side not in the RESET state (``reset``: :func:`after_own_reset`,
    computed when None). So a retransmission, a keep-alive probe carrying the byte before the
    side's next, a RST carrying payload at the side's current number, a TCP Fast Open SYN's data
    (``init_endpoint`` sets ``LastSeq`` to the SYN's end first). Not a FIN while the side's last
    number is still its start + 1 (Zeek takes that FIN's number whatever it is), nor a SYN or RST
    more than 2**20 from the last number (Zeek trusts neither way; such a SYN or RST does not move
    the last number either). A SYN of a side that has not closed (:func:`_closed_before`) starts
    its sequence space again (``init_endpoint``). Sequence numbers are compared as Zeek does, by
    their signed 32-bit differences (across 2**32 without a wrong answer), followed from packet to
    packet of the side (a RST's number from the packet before it). A TCP row whose header the
    snaplen cut (``plen`` < 0) is no packet. Bool array (n,). Whole columns, no per-packet Python
    work. ``holders``: ``(events, held)``, ``held`` (int64 (n, 2), -1 where none) per event the
    rows a subset of the rows must keep for it to be one in it too: the one that set its side's
    last number before it, and the one that started that sequence space (:mod:`kscc_traffic.chunked`)."""
    n = len(flow_of)
    out = np.zeros(n, bool)
    held = np.full((n if holders else 0, 2), -1, np.int64)
    plen = np.asarray(plen, np.int64)
    pk = np.asarray(is_tcp, bool) & (plen >= 0)
    if n == 0 or not (pk & (plen > 0)).any():
        return (out, held) if holders else out
    fl_all = np.asarray(flags, np.int64)
    d_all = (~np.asarray(from_orig, bool)).astype(np.int64)
    flow = np.asarray(flow_of, np.int64)
    if reset is None:
        reset = after_own_reset(flow_of, from_orig, flags, is_tcp, plen)
    far = _TOO_LARGE_SEQ_DELTA
    for d in (0, 1):
        r = np.flatnonzero(pk & (d_all == d))     # (one side's packets: in (flow, time) order)
        if not len(r) or not (plen[r] > 0).any():
            continue
        f = flow[r]
        if len(f) > 1 and (f[1:] < f[:-1]).any():   # (rows in time order, flows interleaved)
            o = np.argsort(f, kind="stable")
            r, f = r[o], f[o]
        fl = fl_all[r]
        syn, fin, rst = (fl & SYN) != 0, (fl & FIN) != 0, (fl & RST) != 0
        pl = plen[r]
        sq = np.asarray(seq, np.int64)[r] & 0xFFFF_FFFF
        seg = pl + syn + fin - np.where(rst, pl, 0)
        first = np.r_[True, f[1:] != f[:-1]]
        # positions: each packet's number as the signed 32-bit step from the packet of its side
        # before it (a RST's trusted by none after it: each is taken from the last non-RST)
        k = np.arange(len(r))
        gstart = np.maximum.accumulate(np.where(first, k, 0))
        if rst.any():
            nr = ~rst
            prev_nr = np.maximum.accumulate(np.where(nr, k, -1))        # (the row itself when not RST)
            before = np.r_[-1, prev_nr[:-1]]                           # the last non-RST before the row
            before = np.where(before >= gstart, before, -1)
            step = np.where(nr & (before >= 0), _int32(sq - sq[np.maximum(before, 0)]), 0)
            pos_nr = np.cumsum(step)                                   # (the running sum of non-RST steps)
            pos = pos_nr - pos_nr[gstart]
            # a RST: from the non-RST packet before it (or the side's first packet, number 0)
            ref = np.where(before >= 0, before, gstart)
            rst_pos = np.where(before >= 0, pos[np.maximum(before, 0)], 0) + _int32(sq - sq[ref])
            rst_pos = np.where((before < 0) & (k == gstart), 0, rst_pos)
            pos = np.where(nr, pos, rst_pos)
        else:       # (the same without RST: each step from the row before)
            step = _int32(sq - np.r_[sq[:1], sq[:-1]])
            step[first] = 0
            pos = np.cumsum(step)
            pos -= pos[gstart]
        pos = np.clip(pos, -(1 << 40), 1 << 40)
        end = pos + seg
        # the sequence space starts at the side's first packet and again at each SYN of a side
        # not closed (Zeek's init_endpoint: no FIN or RST sent before, unless its first packet
        # was a RST alone; _closed_before): LastSeq is then that SYN's end (a first packet without
        # SYN: its own number); "start + 1" is that SYN's number + 1 (the first number)
        reinit = first
        again = syn & ~first
        if again.any():
            closing = (fin | rst).astype(np.int64)
            cc = np.cumsum(closing) - closing
            closed = ((cc - cc[gstart]) > 0) & ~(rst & ~syn & ~fin)[gstart]
            reinit = first | (again & ~closed)
        epoch = np.cumsum(reinit) - 1
        at0 = np.flatnonzero(reinit)
        last0 = np.where(syn[at0], end[at0], pos[at0])[epoch]
        start1 = np.where(syn[at0], pos[at0] + 1, pos[at0])[epoch]
        rs = reset[r]
        none = np.int64(-(1 << 42))
        loose = (syn & ~reinit) | rst        # (trusted only within 2**20 of the last number)

        def last_before(contrib: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            c = np.where(contrib, end, none)
            run = _segment_cummax(c, epoch)
            prev = np.r_[none, run[:-1]]
            prev = np.where(reinit, none, prev)
            return np.maximum(prev, last0), c, run

        lb, c, run = last_before(~rs & ~loose)
        near = np.ones(len(r), bool)
        if loose.any():
            near = np.abs(end - lb) <= far
            lb, c, run = last_before(~rs & (~loose | near))
            near = np.abs(end - lb) <= far
        t = (pl > 0) & ~rs & (end <= lb) & ~(loose & ~near) & ~(fin & (lb == start1))
        out[r[t]] = True
        if holders and t.any():
            # the last row up to each that set the running maximum (in its sequence space), and
            # each space's first row
            setter = np.maximum.accumulate(np.where((c == run) & (c > none), k, -1))
            ti = np.flatnonzero(t)
            h = np.where(ti > 0, setter[np.maximum(ti - 1, 0)], -1)
            e0 = at0[epoch[ti]]
            held[r[ti], 0] = np.where(h >= e0, r[np.maximum(h, 0)], -1)
            held[r[ti], 1] = r[e0]
    return (out, held) if holders else out


def zero_window_events(flow_of: np.ndarray, from_orig: np.ndarray, flags: np.ndarray, is_tcp: np.ndarray,
                       plen: np.ndarray, win: np.ndarray | None, reset: np.ndarray | None = None) -> np.ndarray:
    """Per packet (rows sorted by flow, then time), whether Zeek counts it as a zero window
    (``update_window``: ``ZeroWindow``, the ``W`` letter): a TCP packet advertising a window of 0
    (0 after scaling too: a scale shifts a non-zero 16-bit window to a non-zero one), without RST,
    its side not in the RESET state (``reset``: :func:`after_own_reset`, computed when None) and its
    peer not CLOSED (it sent a FIN before and is not RESET since: "there's no relevant window at
    that point"). ``win`` the TCP window fields (None: no packet has one, none counts). A TCP row
    whose header the snaplen cut (``plen`` < 0) is no packet. Bool array (n,)."""
    n = len(flow_of)
    if n == 0 or win is None:
        return np.zeros(n, bool)
    fl = np.asarray(flags, np.int64)
    w = np.asarray(is_tcp, bool) & (np.asarray(plen) >= 0) & (np.asarray(win) == 0) & ((fl & RST) == 0)
    if not w.any():
        return w
    if reset is None:
        reset = after_own_reset(flow_of, from_orig, flags, is_tcp, plen)
    w &= ~reset
    g = np.asarray(flow_of, np.int64) * 2 + (~np.asarray(from_orig, bool)).astype(np.int64)
    pk = np.asarray(is_tcp, bool) & (np.asarray(plen) >= 0)
    fin = pk & ((fl & FIN) != 0)
    if fin.any() and w.any():
        never = np.iinfo(np.int64).max
        first_fin = np.full(int(g.max()) + 2, never, np.int64)
        k, at = first_rows(g, np.flatnonzero(fin))
        first_fin[k] = at
        pos = np.arange(n, dtype=np.int64)
        peer = g ^ 1
        closed = first_fin[peer] < pos
        spans = _reset_spans(flow_of, from_orig, flags, is_tcp, plen)
        if spans is not None:
            _, start, stop = spans
            # (a peer RESET is not CLOSED; its RST before this packet, not yet undone by this
            # side's FIN: the state machine runs after the window is read)
            closed &= ~((start[peer] < pos) & (pos <= stop[peer]))
        w &= ~closed
    return w


#: 1, 10, 100 … (the counts at which Zeek's ScaledHistoryEntry writes a letter)
_POWERS_OF_10 = np.array([10 ** i for i in range(19)], np.int64)


def tcp_segments(is_tcp: np.ndarray, win: np.ndarray | None) -> np.ndarray:
    """``is_tcp`` (bool per row) without the rows that have no TCP header of their own: a window
    field of -1 (``win``, the ``tcp_win`` column; None: every row has one), a fragment never
    reassembled that is not the datagram's first (the decoders' -1 for "no TCP header")."""
    is_tcp = np.asarray(is_tcp, bool)
    return is_tcp if win is None else is_tcp & (np.asarray(win) >= 0)


def scaled_events(fd: np.ndarray, events: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
    """Of the ``events`` rows (bool array, rows in time order within each ``fd``: flow * 2 +
    direction), those that write their letter: Zeek's ``ScaledHistoryEntry`` writes it at the
    1st, 10th, 100th, 1000th … event of its kind per direction (so it may come again).
    ``extra``: per row, the events of its kind and direction it stands for after it, no longer
    among the rows (int64, a chunked reading's summary: none of them wrote a letter); None: none.
    Bool array like ``events``."""
    out = np.zeros(len(events), bool)
    at = np.flatnonzero(events)
    if not len(at):
        return out
    g = np.asarray(fd, np.int64)[at]
    o = np.argsort(g, kind="stable")
    gg, at = g[o], at[o]
    wt = np.ones(len(at), np.int64) if extra is None else 1 + np.asarray(extra, np.int64)[at]
    run = np.cumsum(wt)
    first = np.r_[True, gg[1:] != gg[:-1]]
    upto = run - np.maximum.accumulate(np.where(first, run - wt, 0))    # (its last event's count)
    since = upto - wt + 1                                                # (its own event's)
    out[at[_POWERS_OF_10[np.searchsorted(_POWERS_OF_10, since)] <= upto]] = True
    return out


def tw_codes(flow_of: np.ndarray, from_orig: np.ndarray, flags: np.ndarray, is_tcp: np.ndarray,
             seq: np.ndarray, plen: np.ndarray, win: np.ndarray | None,
             reset: np.ndarray | None = None, extra: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per packet (rows sorted by flow, then time), whether it writes Zeek's ``W`` (zero window,
    :func:`zero_window_events`) and whether it writes ``T`` (retransmission,
    :func:`retransmission_events`), each at the 1st, 10th, 100th … event of its kind per direction
    (:func:`scaled_events`; lower case for the responder): ``(w, t)`` bool arrays (n,). A packet
    writes them after its :func:`history_codes` letter, ``W`` before ``T`` (Zeek's
    ``update_history``, ``update_window``, then ``update_last_seq``). ``extra``: int64 (n, 2) or
    None, the ``W`` and ``T`` events each row stands for after it (:func:`scaled_events`). A TCP
    row without a TCP header (``win`` -1: a fragment never reassembled that is not the first, whose
    bytes Zeek never sees as a segment) writes neither."""
    is_tcp = tcp_segments(is_tcp, win)
    if reset is None and len(flow_of):
        reset = after_own_reset(flow_of, from_orig, flags, is_tcp, plen)
    fd = np.asarray(flow_of, np.int64) * 2 + (~np.asarray(from_orig, bool)).astype(np.int64)
    ex = (None, None) if extra is None else (extra[:, 0], extra[:, 1])
    w = scaled_events(fd, zero_window_events(flow_of, from_orig, flags, is_tcp, plen, win, reset), ex[0])
    t = scaled_events(fd, retransmission_events(flow_of, from_orig, flags, is_tcp, seq, plen, reset), ex[1])
    return w, t


def _history(flow_of, from_orig, flags, is_tcp, seq, plen, nflows, flipped, win=None, reset=None,
             tw_extra=None) -> np.ndarray:
    """Zeek history per flow (object array of str): the letters :func:`history_codes` gives and
    the ``W`` and ``T`` letters of :func:`tw_codes` (``win``: the TCP window fields, None: no
    ``W``; ``reset``: :func:`after_own_reset` when known; ``tw_extra``: the events each row stands
    for, :func:`tw_codes`' ``extra``), in time order (a packet's own letter,
    then its ``W``, then its ``T``), after a ``^`` where ``flipped``.

    Built as a (flows x width) byte matrix viewed as fixed-width strings: no per-event Python
    work."""
    code, _ = history_codes(flow_of, from_orig, flags, is_tcp, seq, plen)
    rows = np.flatnonzero(code >= 0)
    cd = code[rows]
    w, t = tw_codes(flow_of, from_orig, flags, is_tcp, seq, plen, win, reset, tw_extra)
    if w.any() or t.any():
        d = (~np.asarray(from_orig, bool)).astype(np.int64)
        wr, tr = np.flatnonzero(w), np.flatnonzero(t)
        # (codes past the SHADFRIQ ones: W, T, then w, t: _HISTORY_CHARS)
        sub = np.concatenate([np.zeros(len(rows), np.int64), np.ones(len(wr), np.int64),
                              np.full(len(tr), 2, np.int64)])
        cd = np.concatenate([cd, _TW_CODE + 2 * d[wr], _TW_CODE + 1 + 2 * d[tr]])
        rows = np.concatenate([rows, wr, tr])
        o = np.argsort(rows * 3 + sub, kind="stable")
        rows, cd = rows[o], cd[o]
    lead = np.asarray(flipped, bool)
    fl = np.asarray(flow_of, np.int64)[rows]
    o = np.argsort(fl, kind="stable")
    fl, cd = fl[o], cd[o]
    start = np.r_[True, fl[1:] != fl[:-1]] if len(fl) else np.zeros(0, bool)
    i = np.arange(len(fl))
    rank = i - np.maximum.accumulate(np.where(start, i, 0)) if len(fl) else i
    width = 1 + (int(rank.max()) + 1 if len(rank) else 0)
    chars = np.zeros((nflows, width), np.uint8)
    chars[lead, 0] = ord("^")
    if len(fl):
        chars[fl, lead[fl].astype(np.int64) + rank] = _HISTORY_CHARS[cd]
    # (each distinct history made text once: a batch's few thousand flows have a few dozen)
    distinct, inv = np.unique(chars.view(f"S{width}").ravel(), return_inverse=True)
    texts = np.empty(len(distinct), object)
    texts[:] = [b.decode("ascii") for b in distinct.tolist()]
    return texts[inv.reshape(-1)]


#: history event code (letter index, + len(_LETTERS) for the responder) -> its byte
_HISTORY_CHARS = np.frombuffer((_LETTERS + _LETTERS.lower() + "WTwt").encode(), np.uint8)
#: the code of the originator's ``W`` in :data:`_HISTORY_CHARS` (+1 ``T``, +2 ``w``, +3 ``t``)
_TW_CODE = 2 * len(_LETTERS)


class HistoryState:
    """The letters :func:`history_codes` writes, one packet at a time (a live capture's flow,
    whose packets come one by one): the same rules, state kept per direction.

    ``step(d, flags, is_tcp, seq, plen)`` for each packet of the flow in time order (``d``: 0 or
    1, the packet's direction, any fixed numbering; ``flags`` its TCP flags, ``seq`` its sequence
    number, ``plen`` its payload length, -1 when the snaplen cut its TCP header) returns the
    letter it writes, as :func:`history_codes`' code (index into ``SHADFRIQ`` + 8 for ``d`` 1),
    or -1. A set of a flow's packets that holds every packet writing a letter writes the same
    letters as all of them (a packet that writes none repeats the last one's sequence number of
    its kind, or comes after the last letter of its kind), provided it also holds each side's
    last SYN / SYN-ACK before that side's first FIN or RST: the number a later SYN of the closed
    side is compared with (:func:`history_codes` keeps it; a live flow keeps SYN packets while
    its flag-packet budget lasts)."""

    __slots__ = ("once", "last", "count", "closed")

    def __init__(self) -> None:
        self.once = [0, 0]                  # per direction: bits of the A, D, I, Q letters written
        self.last: list = [None] * 6        # per (direction, kind S/H, F, R): the last packet's number
        self.count = [0] * 6                # ... and its letters written
        self.closed = [0, 0]                # per direction: 0 no packet, 1 open, 2 closed, 3 first a RST

    def step(self, d: int, flags: int, is_tcp: bool, seq: int, plen: int) -> int:
        """The code of the letter this packet writes (see the class), -1 for none."""
        syn, fin, rst = bool(flags & SYN), bool(flags & FIN), bool(flags & RST)
        closed = self.closed[d] == 2       # (before this packet: _closed_before)
        if is_tcp and plen >= 0:
            if self.closed[d] == 0:
                self.closed[d] = 3 if rst and not syn and not fin else (2 if fin or rst else 1)
            elif self.closed[d] == 1 and (fin or rst):
                self.closed[d] = 2
        bits = syn + fin + rst
        if not is_tcp or bits == 0:
            j = 3 if plen > 0 else (2 if is_tcp and flags & ACK else -1)
            if j < 0 or (not is_tcp and j != 3):
                return -1
        elif bits == 1:
            kind = 0 if syn else (1 if fin else 2)
            v = ((seq + max(plen, 0)) if fin else seq) & 0xFFFF_FFFF
            k = 3 * d + kind
            prev, self.last[k] = self.last[k], v
            if (prev is not None and (prev == v or (kind == 0 and not closed))) or self.count[k] > MAX_HISTORY_REPEATS:
                return -1
            self.count[k] += 1
            letter = (1 if flags & ACK else 0) if syn else (4 if fin else 5)
            return letter + len(_LETTERS) * d
        else:
            j = 6 if fin and rst else 7
        if self.once[d] & (1 << j):
            return -1
        self.once[d] |= 1 << j
        return j + len(_LETTERS) * d


#: the scaled letters (Zeek's zero window and retransmission, :func:`tw_codes`): what a side's
#: packets were, not which kinds it sent (a ``T`` comes with a ``D`` or a flag letter before it,
#: a ``W`` with the letter of its packet's kind)
_SCALED_LETTERS = str.maketrans("", "", "TWtw")


def history_core(history: str) -> str:
    """``history`` without Zeek's scaled ``T``/``W`` letters (and lower case): the letters of the
    kinds of packets each side sent, for rules that compare a whole history (``"S"``, ``"Q"``,
    ``"Sh"``). ``"ShADTadFf"`` -> ``"ShADadFf"``."""
    return history.translate(_SCALED_LETTERS)


def history_plain(history: str) -> str:
    """``history`` with Zeek's multi-flag letters written as the single letters of their flags
    (``I``: ``FR``, ``Q``: ``S``; lower case likewise) and without the scaled ``T``/``W``
    (:func:`history_core`), for rules that ask "did this side send a FIN / RST / SYN" with ``in``
    or compare the letters a side sent. ``"ShADdTI"`` -> ``"ShADdFR"``."""
    return history_core(history).replace("I", "FR").replace("i", "fr").replace("Q", "S").replace("q", "s")


def both_sides_closed(history: str) -> bool:
    """Whether a TCP flow's Zeek ``history`` shows a FIN or a RST from each side (a letter of
    ``FRIQ`` in upper and in lower case: every packet with FIN or RST writes one, the first of
    its kind per direction at least): the flow whose ``duration`` stops at the packet that
    closed the second side (:func:`tcp_duration_end`). ``"ShADadFfR"`` -> True, ``"ShADR"`` ->
    False."""
    return any(ch in history for ch in "FRIQ") and any(ch in history for ch in "friq")


def empty_flows() -> pd.DataFrame:
    """A flow table with no rows and the full :data:`FLOW_COLUMNS` schema."""
    return pd.DataFrame({k: pd.Series(dtype=v[0]) for k, v in FLOW_COLUMNS.items()})
