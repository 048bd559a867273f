"""Incremental analysis of a live capture, with Zeek-like eviction so memory stays flat.

Packets arrive in batches (:meth:`LiveSession.ingest`, ``Packets`` whose ``frame`` column is the
capture-wide frame index). The session keys them into flows exactly as
:func:`kscc_traffic.flows.build_flows` does — 5-tuple + VLAN stack, both directions; a new flow
after an idle gap or at a SYN with a new ISN on a used 5-tuple (a SYN with the same ISN sent again
after a RST and accepted is one too: one active flow here, whose connection state starts again
there, :meth:`_Flow.retry_step`, and two rows) — and keeps, per *active* flow,
the packet rows (as compact numpy records) and payload bytes the analysis needs. Every
:meth:`LiveSession.tick` (once a second in ``kscc-traffic live``) re-runs the shared pipeline
(:func:`kscc_traffic.analyze.analyze_packets`) on the flows that changed, so flags, names and
verdicts are the same as ``kscc-traffic analyze`` gives for the same packets; uids too, when
``name`` is the file name the capture is written to.

Memory per active flow is bounded:

- the first :data:`HEAD_PACKETS` packets are kept whole; after them only packets that add
  something the analysis reads: each packet that writes a Zeek history letter (the first A, D,
  I, Q per direction, the first S/H, F, R and each at another sequence number:
  :class:`~kscc_traffic.flows.HistoryState`), SYN/FIN/RST packets (at most :data:`MAX_FLAG_PACKETS`), the first
  :data:`~kscc_traffic.streams.MAX_SEGMENTS` payload segments per direction (what TLS/HTTP
  inspection reads) and one more (it says there were more: ``Streams.cut``), the DNS response
  datagrams that ``dns_rcode`` and ``dns_answers`` read (the first, the first that is not
  NOERROR, each that brings an address first: ``_Flow.dns_brings``, at most
  :data:`~kscc_traffic.inspect.MAX_DNS_ANSWERS` + 2), ICMP errors quoting the
  flow (at most :data:`MAX_ICMP_ERRORS`), each direction's first TCP packet after the other
  direction reached further in its sequence space (a duplicate acknowledgement: what
  ``inspect._mtu_holes`` reads). Of the other TCP packets, per direction, the one
  that reaches furthest in the sequence space and the one that acknowledges furthest are held
  (as records without payload) so that ``orig_bytes``/``resp_bytes`` come from sequence numbers
  as in the analysis of the file, and the last data packet, the last FIN without data and
  the first data packet reaching the furthest data end (bytes sent again at the end:
  ``inspect._stalled``). The packet before one that comes more than half the flow's
  idle timeout after its last kept packet is kept too (at most
  :data:`MAX_BRIDGED`): the flow built again from the kept packets is split only where the
  capture had such a gap (``_Flow.bridge_gap``). The other packets only add to counters (packets, payload
  bytes, IP bytes per direction, last time); each direction's counters go into the analysis on
  its last kept packet (``analyze_batch(weights=...)``, as a chunked reading carries them), so
  inspect and classify see the flow's true counts (the bytes sent again at the end of a long
  connection: ``inspect._stalled``); the last time stretches the row's duration afterwards. DNS
  answers in them are parsed on arrival.
- TCP payload kept per segment is cut at :data:`~kscc_traffic.streams.MAX_BYTES`.

Flows leave the active set (their final row goes to a :class:`FlowLog`, spilled to a temporary
file past ``spill_rows`` rows) when finished or idle, like Zeek's timeouts
(:class:`Timeouts`): TCP closed (FIN both ways, or RST) ``close`` seconds after its last
packet; otherwise after ``tcp``/``udp``/``icmp``/``other`` seconds without packets. Past
``max_flows`` active flows the least recently seen are evicted first. A packet arriving for an
evicted flow starts a new flow (a late ACK after ``close`` seconds then shows as a partial flow,
as in Zeek).

Live verdicts: a flow the pipeline would call ``blocked`` / ``no_answer`` (SYN without answer,
UDP request without reply) is ``pending`` while it is younger than ``no_answer_timeout``
seconds and still active; after that it is reported blocked (:attr:`LiveSession.events`) while
the capture goes on. The final table (:meth:`LiveSession.final`) is what ``analyze`` reports.
"""
from __future__ import annotations

import collections
import os
import pickle
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Optional

import numpy as np
import pandas as pd

from ..analyze import COLUMNS, _schema, analyze_packets
from ..inspect import SENT_KEY, StraySynAcks, address_ttls, cloud_openers, cloud_ports
from ..capture.packets import PACKET_COLUMNS, Packets
from ..classify import END_MARGIN_S, TLS_SILENCE_S, classify, note_auth_rounds
from ..flows import (_SEQ_TRUST, ACK, RESP_TTL, RESP_TTL_OUT, VLAN_STACK, DEFAULT_IDLE_NS, DNS_IDLE_NS, DNS_PORTS, FIN, ICMP, ICMP6, IDLE_TIMEOUT_NS, RST, SYN, TCP, UDP,
                     SYN_NEAR, HistoryState, address_text, both_sides_closed, icmp_ports, vlan_key)
from ..idlesplits import HeldIdleSplits
from ..inspect import MAX_DNS_ANSWERS, DnsAnswers
from ..protocols import dns
from ..rules import RuleSet
from ..streams import MAX_BYTES, MAX_SEGMENTS
from ..unreachable import find_errors

__all__ = ["Timeouts", "LiveSession", "FlowLog", "HEAD_PACKETS", "LIVE_VERDICTS"]

#: packets kept whole at the start of every flow
HEAD_PACKETS = 64
#: packets of a flow kept at most to bridge a gap between two kept ones
#: (``_Flow.bridge_gap``: one each half idle timeout of a long flow, ~17,000 a day for DNS, ~580 for TCP); past
#: them such a gap splits the flow built again from the kept packets, as before
MAX_BRIDGED = 4096
#: SYN/FIN/RST packets kept after the head, per flow
MAX_FLAG_PACKETS = 32
#: packets of a TCP flow kept after its first RST (a same-ISN SYN retried there and accepted
#: starts a new flow: :meth:`_Flow.retry_step`; the attempt before it is then a flow of its own,
#: with no packet summarised into the counters of the flow after it; as chunked.AFTER_CLOSE)
MAX_AFTER_RESET = 64
#: ICMP errors kept per flow
MAX_ICMP_ERRORS = 16
#: DNS answers remembered per address (for names of flows that start later)
MAX_ANSWERS_PER_ADDRESS = 32
#: addresses remembered from DNS answers
MAX_ANSWER_ADDRESSES = 50_000
#: verdicts shown live, in display order
LIVE_VERDICTS = ("ok", "pending", "blocked", "unexpected", "unclassified")

_REC = np.dtype([(k, v) for k, v in PACKET_COLUMNS.items()])
_DUP_WINDOW_NS = 50_000_000
_DUP_WINDOW_NOID_NS = 1_000_000


#: the longest idle timeout ``--idle-timeout`` takes (s: 365 days; ``inf`` and larger numbers are
#: refused at start-up, not met as an overflow when a flow's end is computed in ns)
MAX_TIMEOUT_S = 365 * 86400


@dataclass
class Timeouts:
    """Inactivity timeouts, seconds (Zeek's defaults: tcp 300, udp 60, icmp 60, and dns 10 for UDP
    to or from a name service port, :data:`~kscc_traffic.flows.DNS_PORTS`: Zeek's
    ``dns_session_timeout``), and the delay after which a closed TCP connection (FIN both ways or
    RST) is summarised (Zeek's ``tcp_close_delay``/``tcp_reset_delay``: 5 s)."""

    tcp: float = IDLE_TIMEOUT_NS[TCP] / 1e9
    udp: float = IDLE_TIMEOUT_NS[UDP] / 1e9
    icmp: float = IDLE_TIMEOUT_NS[ICMP] / 1e9
    other: float = 60.0
    close: float = 5.0
    dns: float = DNS_IDLE_NS / 1e9

    def idle_ns(self, proto: int, ports: tuple = ()) -> int:
        """Inactivity timeout of IP protocol ``proto``, nanoseconds; ``ports``: the flow's two
        ports (a UDP flow with one in :data:`~kscc_traffic.flows.DNS_PORTS` gets ``dns``)."""
        if proto == UDP and any(p in DNS_PORTS for p in ports):
            return int(self.dns * 1e9)
        s = {TCP: self.tcp, UDP: self.udp, ICMP: self.icmp, ICMP6: self.icmp}.get(proto, self.other)
        return int(s * 1e9)

    @classmethod
    def parse(cls, items: Iterable[str]) -> "Timeouts":
        """From ``NAME=SECONDS`` strings (names: tcp, udp, icmp, other, close, dns).

        :raises ValueError: unknown name, no ``=``, or a value that is not a number of seconds
            more than 0 and at most :data:`MAX_TIMEOUT_S` (``inf`` included: a flow must end).
        """
        t = cls()
        for item in items:
            name, eq, val = item.partition("=")
            name = name.strip().lower()
            if name not in ("tcp", "udp", "icmp", "other", "close", "dns"):
                raise ValueError(f"unknown timeout {name!r} (tcp, udp, icmp, other, close, dns)")
            if not eq:
                raise ValueError(f"timeout {name}: give it as NAME=SECONDS, e.g. {name}=600")
            try:
                v = float(val)
            except ValueError:
                raise ValueError(f"timeout {name}: {val!r} is not a number of seconds") from None
            if not v > 0:
                raise ValueError(f"timeout {name}: must be more than 0 seconds")
            if not v <= MAX_TIMEOUT_S:
                raise ValueError(f"timeout {name}: at most {MAX_TIMEOUT_S} seconds (365 days): a flow idle that "
                                 "long has ended")
            setattr(t, name, v)
        return t


class _Flow:
    __slots__ = ("fid", "key", "tkey", "proto", "first_ts", "last_ts", "recs", "pays", "npay",
                 "nflag", "nerr", "hist", "extra", "last_sig", "syn_seq", "fin", "rst",
                 "aliases", "dirty", "dns_resp", "dns_err", "dns_addrs", "dns_kept", "fr", "plain0", "quiet_at",
                 "syn_dir", "since_syn", "fend", "fack", "paysum", "ndata", "top_end", "after_top",
                 "fafter", "flast", "top_data", "kept_ts", "bridge", "nbridge", "rst_since_syn", "retry", "nreset",
                 "stand", "tfirst", "own_reset", "synack", "tw_last", "tw_n", "tw_at", "tw_x", "tw_held",
                 "tw_moved")

    def __init__(self, fid: int, key: tuple, tkey: tuple, ts: int) -> None:
        self.fid = fid
        self.key = key
        self.tkey = tkey
        self.proto = key[1]
        self.first_ts = ts
        self.last_ts = ts
        self.recs: list[bytes] = []
        self.pays: list[bytes] = []
        self.npay = [0, 0]            # kept payload segments per direction (0: a->b, 1: b->a)
        self.ndata = [0, 0]           # kept data segments per direction, captured or not
        self.nflag = 0
        self.nerr = 0
        self.hist = HistoryState()    # the history letters written so far (flows.history_codes' rules)
        self.extra = [0, 0, 0, 0, 0, 0]  # pkts, bytes, ip bytes of a->b, then of b->a
        self.last_sig: Optional[tuple] = None
        self.syn_seq: Optional[int] = None
        self.syn_dir = -1             # direction of the last SYN without ACK (-1: none yet)
        self.tfirst: list = [None, None]  # per direction: its first TCP packet's (seq, ack or None)
        self.synack: Optional[tuple] = None  # the last SYN-ACK's (direction, seq) (flows._synack_reuse)
        self.since_syn = [False, False]   # a packet sent since that SYN, per direction
        self.fin = [False, False]
        self.rst = False
        self.aliases: list[tuple] = []
        self.dirty = True
        self.dns_resp = False         # a DNS response datagram is among the kept packets
        self.dns_err = False          # ... one whose RCODE is not NOERROR
        self.dns_addrs: dict[str, None] = {}  # the answer addresses of those kept (dns_answers)
        self.dns_kept: set = set()    # ... kinds of them kept: ("err", not AAAA), ("q", A or AAAA)
        self.fr = [False, False]      # a FIN or RST sent, per direction
        # per direction: 0 no RST sent, 1 in Zeek's RESET state (its later sequence ends count
        # for nothing: flows.after_own_reset), 2 sent a RST, not (or no longer) RESET
        self.own_reset = [0, 0]
        # a TCP packet without SYN/FIN/RST or payload kept, per direction: the first, and the
        # first after the other direction's FIN/RST (what Zeek's endpoint state machine reads:
        # flows.state_event_rows)
        self.plain0 = [0, 0]
        # the last_ts of the flow when it was last analysed knowing the capture went on
        # TLS_SILENCE_S after it (a ClientHello or CONNECT left unanswered is judged then)
        self.quiet_at: Optional[int] = None
        # TCP, per direction: the packet not kept that reaches furthest in the sequence space
        # (``fend``) and the one that acknowledges furthest (``fack``), as [sequence end or
        # acknowledgement number, record, payload bytes, IP bytes] (the same list when one
        # packet is both): they are analysed with the kept ones, so orig_bytes/resp_bytes come
        # from sequence numbers as in the analysis of the file (flows._seq_bytes); every other
        # packet not kept only adds to ``extra``
        self.fend: list[Optional[list]] = [None, None]
        self.fack: list[Optional[list]] = [None, None]
        self.paysum = [0, 0]          # TCP payload bytes per direction, every packet but copies
        # TCP, per direction: the furthest sequence end so far (seq + SYN + payload + FIN, mod
        # 2^32; None: none yet), whether its next packet stands for "the first after the other
        # direction's furthest packet" (the other direction reached further since its last one),
        # and that packet when not kept, held as ``fend`` (a duplicate acknowledgement there
        # tells inspect._mtu_holes that later bytes arrived; chunked._summarise keeps it too)
        self.top_end: list[Optional[int]] = [None, None]
        self.after_top = [False, False]
        self.fafter: list[Optional[list]] = [None, None]
        # TCP, per direction: its last data packet, its last FIN without data (no SYN, RST) and
        # its first data packet reaching its furthest data end (``top_data``: seq + SYN + payload,
        # mod 2^32) when not kept, held as ``fend`` (3 slots per direction; inspect._stalled:
        # bytes sent again at the end, or new ones; chunked._summarise keeps them too)
        self.flast: list[Optional[list]] = [None] * 6
        self.top_data: list[Optional[int]] = [None, None]
        # the time of the last packet kept, and the last packet not kept since then (counted in
        # ``extra``, or held for TCP sequence numbers: ``fend``/``fack``/``fafter``), as
        # [time, record, payload, direction, payload bytes, IP bytes, the held list or None]:
        # kept too (:meth:`bridge_gap`) when the next packet comes more than half the idle
        # timeout after the last kept one, so that the flow built again from the kept packets
        # has no gap longer than its idle timeout that the capture did not have (a DNS flow, or
        # a TCP connection kept up by keep-alives, split there: review of session 29)
        self.kept_ts = ts
        self.bridge: Optional[list] = None
        self.nbridge = 0              # packets kept so (at most MAX_BRIDGED)
        # a same-ISN SYN sent again after a RST, waiting to be accepted (:meth:`retry_step`):
        # [direction, ISN + 1, the other side's first SYN-ACK seen, the sender's first ACK seen]
        self.rst_since_syn = False    # a RST since the last SYN without ACK
        self.retry: Optional[list] = None
        self.nreset = 0               # packets kept after a RST (at most MAX_AFTER_RESET)
        # per direction, the index in ``recs`` of its last packet kept (not an ICMP error quoting
        # the flow, nor a packet kept by :meth:`_restart`; -1: none yet): the stand-in that
        # carries the counters of that direction's packets not kept (``extra``) into the analysis
        # (``analyze_batch(weights=...)``, as chunked._summarise's stand-ins), so inspect sees
        # the flow's true packet and byte counts (bytes sent again: ``inspect._stalled``)
        self.stand = [-1, -1]
        # Zeek's W and T events (flows.tw_codes), per direction: its last sequence number (Zeek's
        # LastSeq, mod 2^32; None: no packet yet), whether the packet that set it was kept (else
        # it is held as ``fend``: kept when a retransmission is, flows.retransmission_events'
        # holders), and per kind (W, T) and direction (index 2 * kind + d) the events so far and
        # the index in ``recs`` of the last one kept; ``tw_x``: index in ``recs`` -> the [W, T]
        # events not kept after it (analyze_batch(tw_extra=...), as chunked._summarise's)
        self.tw_last: list[Optional[int]] = [None, None]
        self.tw_held = [True, True]
        self.tw_moved = [False, False]    # ... and whether it moved since it was set at its start
        self.tw_n = [0, 0, 0, 0]
        self.tw_at = [-1, -1, -1, -1]
        self.tw_x: dict[int, list] = {}

    def dns_brings(self, msg: dns.DnsMessage) -> bool:
        """Whether DNS response ``msg`` of this flow brings something to ``dns_rcode`` or
        ``dns_answers`` that the responses kept so far do not (its first response, its first
        that is not NOERROR and its first such to another question than AAAA
        (``dns_error_aaaa_only``), its first to an A and to an AAAA question (``dns_asked``), an
        address not yet answered, up to :data:`~kscc_traffic.inspect.MAX_DNS_ANSWERS`: what
        :func:`kscc_traffic.inspect.dns_response_rows` keeps); counts it as kept if so."""
        brings = not self.dns_resp
        self.dns_resp = True
        if msg.rcode and not self.dns_err:
            brings = self.dns_err = True
        qtype = msg.questions[0][1] if msg.questions else -1
        kinds = []
        if msg.rcode and qtype != dns.TYPE_AAAA:
            kinds.append(("err", 0))
        if qtype in (dns.TYPE_A, dns.TYPE_AAAA):
            kinds.append(("q", qtype))
        for k in kinds:
            if k not in self.dns_kept:
                self.dns_kept.add(k)
                brings = True
        have = self.dns_addrs
        if len(have) < MAX_DNS_ANSWERS:
            for a, _ in dns.resolved_names(msg):
                if a not in have:
                    have[a] = None
                    brings = True
                    if len(have) >= MAX_DNS_ANSWERS:
                        break
        return brings

    def bridge_gap(self, t: int, half_idle: int) -> None:
        """Keep the packet held in :attr:`bridge` (moved from the counters ``extra`` to the kept
        records) when a packet at ``t`` (ns) comes more than ``half_idle`` (ns) after the last
        kept one: between two kept packets of the flow there is then no gap longer than
        ``half_idle`` but one the capture itself had (the packet before the second is kept)."""
        b = self.bridge
        if b is None or t - self.kept_ts <= half_idle:
            return
        self.bridge = None
        self.nbridge += 1
        bt, rec, payload, d, plen, iplen, held, tw = b
        self.stand[d] = len(self.recs)
        if tw is not None:
            # (its W/T events, counted on the kept event before each unless still held: its own
            # now; and the packet that set its side's last sequence number, when it did)
            kinds, targets, further = tw
            still = held is not None and any(held is x for x in (*self.fend, *self.fack, *self.fafter, *self.flast))
            for j, at in zip(kinds, targets):
                if at >= 0 and not still:
                    self.tw_x[at][j] -= 1
                self.tw_at[2 * j + d] = len(self.recs)
            if further:
                self.tw_held[d] = True
        self.recs.append(rec)
        if tw is not None and 1 in tw[0]:
            self.tw_keep(d)
        self.pays.append(payload)
        self.kept_ts = bt
        if plen > 0:
            self.ndata[d] += 1
            if payload:
                self.npay[d] += 1
        if held is not None and any(held is x for x in (*self.fend, *self.fack, *self.fafter, *self.flast)):
            # (a TCP packet still held for the sequence numbers (:meth:`float_tcp`,
            # :meth:`hold_after`, :meth:`hold_last`): kept now, so held no more and never counted)
            for slots in (self.fend, self.fack, self.fafter, self.flast):
                for k in range(len(slots)):
                    if slots[k] is held:
                        slots[k] = None
            return
        e = self.extra
        e[3 * d] -= 1
        e[3 * d + 1] -= max(plen, 0)
        e[3 * d + 2] -= iplen

    @property
    def closed(self) -> bool:
        return self.rst or (self.fin[0] and self.fin[1])

    def syn_near(self, d: int, isn: int) -> bool:
        """Whether a SYN from direction ``d`` with sequence number ``isn``, the flow's first SYN,
        is of the connection whose packets the flow holds (:func:`kscc_traffic.flows._syn_after_other`:
        the side's first packet at most SYN_NEAR after the ISN, or the other side's first one
        acknowledging ISN + 1 to SYN_NEAR after it; a flow without TCP packets: yes), else a new
        connection on the 5-tuple."""
        own, other = self.tfirst[d], self.tfirst[1 - d]
        if own is None and other is None:
            return True
        if own is not None and ((own[0] - isn) & 0xFFFF_FFFF) <= SYN_NEAR:
            return True
        return other is not None and other[1] is not None and ((other[1] - isn - 1) & 0xFFFF_FFFF) <= SYN_NEAR

    def retry_step(self, d: int, fg: int, seq: int, ack: int) -> bool:
        """:func:`kscc_traffic.flows._answered_retry` packet by packet, for a TCP packet of
        direction ``d`` (flags ``fg``, sequence and acknowledgement numbers ``seq``/``ack``),
        before :attr:`syn_seq` takes a SYN's number: a SYN without ACK with the ISN of the one
        before, after a RST, waits for an answer until the next RST; the first SYN-ACK of the
        other side acknowledging it (ISN + 1), or the first packet of its sender that
        acknowledges something, neither SYN nor RST, from ISN + 1 on, accepts it. The analysis
        of the kept packets then starts a new flow at that SYN: the connection state here starts
        again (:meth:`_restart`), so the attempt's RST neither closes the accepted connection
        (summarised 5 s after its last packet) nor keeps its packets from being kept. True when
        accepted."""
        if fg & RST:
            self.rst_since_syn = True
            self.retry = None
            return False
        if (fg & (SYN | ACK)) == SYN:
            if self.rst_since_syn and self.syn_seq is not None and seq == self.syn_seq:
                self.retry = [d, (seq + 1) & 0xFFFF_FFFF, False, False]
            self.rst_since_syn = False
            return False
        r = self.retry
        if r is None:
            return False
        ok = False
        if d != r[0] and (fg & (SYN | ACK)) == (SYN | ACK) and not r[2]:
            r[2] = True
            ok = ack == r[1]
        elif d == r[0] and (fg & (SYN | RST | ACK)) == ACK and not r[3]:
            r[3] = True
            ok = ((seq - r[1]) & 0xFFFF_FFFF) < (1 << 31)
        if ok:
            self._restart()
        return ok

    def _restart(self) -> None:
        """A new connection on this 5-tuple (an accepted retry, :meth:`retry_step`): its close,
        history letters, first plain ACKs, payload segments and sequence extents are counted
        from here; the packets held for the sequence numbers so far are kept (they belong to the
        attempt before, a flow of its own in the analysis)."""
        self.retry = None
        self.rst = False
        self.fin = [False, False]
        self.fr = [False, False]
        self.own_reset = [0, 0]
        self.plain0 = [0, 0]
        self.hist = HistoryState()
        self.npay = [0, 0]
        self.ndata = [0, 0]
        self.nreset = 0
        for x in self.floating():
            self.recs.append(x[1])
            self.pays.append(b"")
        self.fend, self.fack, self.fafter = [None, None], [None, None], [None, None]
        self.flast = [None] * 6
        self.top_data = [None, None]
        self.top_end = [None, None]
        self.after_top = [False, False]
        self.tw_last = [None, None]
        self.tw_held = [True, True]
        self.tw_moved = [False, False]

    @property
    def has_extra(self) -> bool:
        return any(self.extra) or max(self.paysum) >= _SEQ_TRUST

    def floating(self) -> list[list]:
        """The packets not kept that stand for their direction's sequence extent (``fend``,
        ``fack``), follow the other direction's furthest packet (``fafter``) or are its last data
        packet, last FIN without data or first data packet reaching its furthest data end (``flast``), each once, as [end, record, payload bytes, IP bytes,
        ack] lists."""
        out: list[list] = []
        for x in (*self.fend, *self.fack, *self.fafter, *self.flast):
            if x is not None and not any(x is y for y in out):
                out.append(x)
        return out

    def _release(self, d: int, old: list) -> None:
        """Held packets of direction ``d`` replaced: each that no longer stands for anything
        goes to the counters (``extra``)."""
        seen: list[list] = []
        for x in old:
            if x is None or x is self.fend[d] or x is self.fack[d] or x is self.fafter[d] \
                    or any(x is y for y in self.flast[3 * d:3 * d + 3]) or any(x is y for y in seen):
                continue
            seen.append(x)
            if len(x) > 5:      # (its W/T events: on the kept event before each, as when not held)
                for j, at in zip(*x[5]):
                    if at >= 0:
                        self.tw_x.setdefault(at, [0, 0])[j] += 1
            e = self.extra
            e[3 * d] += 1
            e[3 * d + 1] += max(x[2], 0)
            e[3 * d + 2] += x[3]

    def tw_events(self, d: int, fg: int, seq: int, plen: int, win: int) -> tuple[bool, bool, bool]:
        """Zeek's zero-window and retransmission events of a TCP packet of direction ``d`` (not a
        copy; called before its FIN/RST changes this flow's state), as
        :func:`kscc_traffic.flows.zero_window_events` and
        :func:`~kscc_traffic.flows.retransmission_events` tell them packet by packet: ``(w, t,
        further)``, ``further``: it set its side's last sequence number."""
        if plen < 0:
            return False, False, False
        reset = self.own_reset[d] == 1
        w = win == 0 and not fg & RST and not reset and not (self.fin[1 - d] and self.own_reset[1 - d] != 1)
        syn, fin, rst = bool(fg & SYN), bool(fg & FIN), bool(fg & RST)
        end = (seq + plen + syn + fin - (plen if rst else 0)) & 0xFFFF_FFFF
        last = self.tw_last[d]
        if last is None or (syn and not self.fr[d]):
            last = end if syn else seq & 0xFFFF_FFFF
            self.tw_last[d] = last
            self.tw_held[d] = True        # (that packet is kept: a first packet, a SYN)
            # (Zeek's "LastSeq == StartSeq + 1": not so after a SYN's data, TCP Fast Open)
            self.tw_moved[d] = syn and plen > 0
        delta = ((end - last + (1 << 31)) & 0xFFFF_FFFF) - (1 << 31)
        t = further = False
        if (syn or rst) and abs(delta) > (1 << 20):
            pass
        elif fin and not self.tw_moved[d]:
            self.tw_last[d] = end
            further = True
        elif reset:
            pass
        elif delta > 0:
            self.tw_last[d] = end
            self.tw_moved[d] = further = True
        elif plen > 0:
            t = True
        return w, t, further

    def tw_keep(self, d: int) -> None:
        """A retransmission of direction ``d`` is kept: so is the packet that set its side's last
        sequence number (held as ``fend`` when not kept: kept now, as :meth:`_restart` keeps
        held packets)."""
        if self.tw_held[d]:
            return
        x = self.fend[d]
        self.tw_held[d] = True
        if x is None:
            return
        self.recs.append(x[1])
        self.pays.append(b"")
        for slots in (self.fend, self.fack, self.fafter, self.flast):
            for k in range(len(slots)):
                if slots[k] is x:
                    slots[k] = None

    def hold_after(self, d: int, mine: Optional[list]) -> None:
        """The packet of direction ``d`` that follows the other direction's furthest packet:
        held (``mine``, as :meth:`float_tcp` holds one) or kept (None)."""
        old = self.fafter[d]
        self.fafter[d] = mine
        self._release(d, [old])

    def hold_last(self, d: int, which: int, mine: Optional[list]) -> None:
        """The last data packet of direction ``d`` (``which`` 0; 1: its last FIN without data, 2:
        its first data packet reaching its furthest data end): held (``mine``, as
        :meth:`float_tcp` holds one) or kept (None)."""
        k = 3 * d + which
        old = self.flast[k]
        self.flast[k] = mine
        self._release(d, [old])

    def float_tcp(self, d: int, rec: bytes, end: int, ack: int, plen: int, iplen: int,
                  reset: bool = False) -> Optional[list]:
        """The packet held (an [end, record, payload bytes, IP bytes, ack] list) when a TCP
        packet not kept (direction ``d``; ``end``: its sequence number + SYN + payload + FIN,
        mod 2^32; ``ack``: its acknowledgement number, -1 without one) reaches further than the
        ones held for its direction: then it is held instead, and a held one that no longer
        stands for anything goes to the counters (``extra``); else None. ``reset``: its side
        was in Zeek's RESET state (:func:`kscc_traffic.flows.after_own_reset`), so only its
        acknowledgement may reach further (its sequence end counts for nothing)."""
        fe, fa = self.fend[d], self.fack[d]
        further_end = not reset and (fe is None or 0 < ((end - fe[0]) & 0xFFFF_FFFF) < (1 << 31))
        further_ack = ack >= 0 and (fa is None or 0 < ((ack - fa[4]) & 0xFFFF_FFFF) < (1 << 31))
        if not (further_end or further_ack):
            return None
        mine = [end, rec, plen, iplen, ack]
        old = []
        if further_end:
            old.append(fe)
            self.fend[d] = mine
        if further_ack:
            old.append(fa)
            self.fack[d] = mine
        self._release(d, old)
        return mine


#: the internal column the live table and :class:`FlowLog` keep beside :data:`~kscc_traffic.analyze.COLUMNS`
#: (the SYN's ISN: a stale connection's reset attempt cleared only by a retry of the same ISN, as
#: :func:`kscc_traffic.classify.stale_retries` pairs them); left out of what the session returns
_ISN = "syn_isn"
#: ... and the scheme of the credentials a proxy's login answer refused (internal ``proxy_auth``: a
#: refused Basic account is no authentication round, :func:`kscc_traffic.classify.proxy_auth_retries`)
_AUTH = "proxy_auth"
#: ... and :data:`~kscc_traffic.flows.RESP_TTL`, the TTL of the responder's first packet (a refused
#: IPv6 attempt's reset and the SYN-ACK of the IPv4 connection after it: whether its reset came
#: from nearer than the server, :func:`kscc_traffic.classify.family_fallbacks`), and
#: :data:`~kscc_traffic.flows.RESP_TTL_OUT`, that packet's as it left the capturing host; left out likewise


class FlowLog:
    """Rows of summarised (evicted) flows. Up to ``spill_rows`` rows stay in memory; past that
    they are pickled to a temporary file (Zeek writes conn.log; we keep ours to print the final
    report). Counts per (purpose, verdict) are kept in memory for the live view."""

    def __init__(self, spill_rows: int = 2_000) -> None:
        self.spill_rows = spill_rows
        self._parts: list[pd.DataFrame] = []
        self._mem_rows = 0
        self._file: Optional[str] = None
        self.rows = 0
        self.counts: collections.Counter = collections.Counter()

    def add(self, rows: pd.DataFrame) -> None:
        """Append final rows (columns :data:`kscc_traffic.analyze.COLUMNS`, and :data:`_ISN`, :data:`_AUTH`,
        :data:`~kscc_traffic.flows.RESP_TTL`, :data:`~kscc_traffic.flows.RESP_TTL_OUT`)."""
        if not len(rows):
            return
        self._parts.append(rows)
        self._mem_rows += len(rows)
        self.rows += len(rows)
        for (p, v), n in rows.groupby(["purpose", "verdict"]).size().items():
            self.counts[(p, v)] += int(n)
        if self._mem_rows >= self.spill_rows:
            self._spill()

    def _spill(self) -> None:
        if not self._parts:
            return
        if self._file is None:
            fd, self._file = tempfile.mkstemp(prefix="kscc-traffic-flows-", suffix=".pickle")
            os.close(fd)
        with open(self._file, "ab") as f:
            pickle.dump(pd.concat(self._parts, ignore_index=True), f,
                        protocol=pickle.HIGHEST_PROTOCOL)
        self._parts = []
        self._mem_rows = 0

    def frame(self) -> pd.DataFrame:
        """All rows, in time order of their first packet."""
        parts = []
        if self._file is not None:
            with open(self._file, "rb") as f:
                while True:
                    try:
                        parts.append(pickle.load(f))
                    except EOFError:
                        break
        parts += self._parts
        if not parts:
            return _schema(pd.DataFrame())
        out = pd.concat(parts, ignore_index=True)
        return out.sort_values("ts_ns", kind="stable").reset_index(drop=True)

    def close(self) -> None:
        """Delete the spill file."""
        if self._file is not None:
            try:
                os.unlink(self._file)
            except OSError:
                pass
            self._file = None


def _text(hi: int, lo: int, v6: bool = False) -> str:
    """Address text (``v6``: of an IPv6 packet, see :func:`kscc_traffic.flows.address_text`)."""
    return str(address_text(np.array([hi], np.uint64), np.array([lo], np.uint64), np.array([v6]))[0])


def _addr_ints(text: str) -> tuple[int, int]:
    import ipaddress
    a = ipaddress.ip_address(text)
    if a.version == 4:
        return 0, 0xFFFF_0000_0000 | int(a)
    n = int(a)
    return n >> 64, n & 0xFFFF_FFFF_FFFF_FFFF


def _tkey(vlan: int, proto: int, ta: str, pa: int, tb: str, pb: int) -> tuple:
    if proto in (ICMP, ICMP6):
        return (vlan, "icmp", frozenset((ta, tb)))
    return (vlan, proto, frozenset(((ta, pa), (tb, pb))))


class LiveSession:
    """Incremental flow analysis of a live capture (see the module docstring).

    :param rules: the documented purposes.
    :param name: capture name for the ``capture`` column and uid seed (use the file name the
        capture is written to, so uids match ``kscc-traffic analyze`` of that file).
    :param no_answer_timeout: seconds a connection attempt may stay unanswered before it is
        reported blocked while the capture runs.
    :param timeouts: eviction timeouts (:class:`Timeouts`).
    :param max_flows: active flows kept at most; the least recently seen are evicted first.
    :param spill_rows: summarised rows kept in memory before spilling to a temporary file.
    :param on_event: called with a dict (``ts``, ``uid``, ``proto``, ``orig_h``, ``orig_p``,
        ``resp_h``, ``resp_p``, ``purpose``, ``verdict``, ``reason``, ``detail``,
        ``server_name``) when a flow is first seen blocked or unexpected.
    """

    def __init__(self, rules: RuleSet, name: str = "live", no_answer_timeout: float = 3.0,
                 timeouts: Timeouts | None = None, max_flows: int = 20_000,
                 spill_rows: int = 2_000,
                 on_event: Optional[Callable[[dict], None]] = None) -> None:
        self.rules = rules
        self.name = name
        self.no_answer_ns = int(no_answer_timeout * 1e9)
        self.timeouts = timeouts or Timeouts()
        self.max_flows = max_flows
        self.on_event = on_event
        self.log = FlowLog(spill_rows)
        self.active: dict[tuple, _Flow] = {}
        self._by_fid: dict[int, _Flow] = {}
        self._next_fid = 0
        self.table = _schema(pd.DataFrame()).assign(**{_ISN: pd.Series(dtype="int64"), _AUTH: pd.Series(dtype=object),
                                                       RESP_TTL: pd.Series(dtype="int64"),
                                                       RESP_TTL_OUT: pd.Series(dtype="int64"),
                                                       "_fid": pd.Series(dtype="int64")})
        self._answers: dict[str, collections.deque] = {}
        self._answer_seen: set = set()
        self._announced: dict[str, set] = {}
        self.events: collections.deque = collections.deque(maxlen=50)
        self.packets = 0          # IP packets ingested
        self.dropped_rows = 0     # packets summarised into counters (not kept)
        self.duplicates = 0
        self.evicted = 0
        self.now_ns = 0
        #: when the capture ended (epoch ns), set by :meth:`final`: the last analyses read it
        self._end_ns: int | None = None
        #: each address's first TCP packet that is no reset nor SYN-ACK (inspect.AddressTtls, from
        #: inspect.address_ttls): what a SYN answered by a reset is compared with, whatever flows
        #: were evicted since
        self._ttls: Mapping = {}
        #: each address's first SYN to a cloud server's port (inspect.cloud_openers): what tells a
        #: connection opened towards an agent, whatever flows were evicted since
        self._openers = None
        #: the SYN-ACKs no SYN of their own flow asked for (inspect.StraySynAcks): what tells an
        #: unanswered SYN answered from another address, whatever flows were evicted since
        self._strays = StraySynAcks()
        #: the open TCP connections that left idle, whose 5-tuple may go on after the silence
        #: (the detail's idle note, as a file's analysis writes it: kscc_traffic.classify.idle_note)
        self._went_idle = HeldIdleSplits()
        self._ports = cloud_ports(rules)

    # ------------------------------------------------------------------------- ingest
    def ingest(self, packets: Packets) -> None:
        """Add decoded packets (in capture order; ``frame`` = capture-wide frame index)."""
        n = len(packets)
        if n == 0:
            return
        c = packets.cols
        self._ttls = address_ttls(c, self._ttls)
        self._openers = cloud_openers(c, self._ports, self._openers)
        order = np.argsort(c["frame"], kind="stable")
        recs = np.empty(n, _REC)
        for k in PACKET_COLUMNS:
            recs[k] = c[k][order]
        errors = {}
        for e in find_errors(packets):
            errors[int(np.nonzero(order == e.row)[0][0])] = e
        sh, sl, dh, dl = (recs[k] for k in ("src_hi", "src_lo", "dst_hi", "dst_lo"))
        sp, dp = recs["sport"].astype(np.int64), recs["dport"].astype(np.int64)
        icmp = ((recs["proto"] == ICMP) | (recs["proto"] == ICMP6)) & (recs["icmp_type"] >= 0)
        if icmp.any():     # (keyed by type and counterpart or code, as flows.build_flows)
            sp[icmp], dp[icmp] = icmp_ports(recs["proto"][icmp], recs["icmp_type"][icmp], recs["icmp_code"][icmp])
        src_first = (sh < dh) | ((sh == dh) & ((sl < dl) | ((sl == dl) & (sp <= dp))))
        a_hi = np.where(src_first, sh, dh).tolist()
        a_lo = np.where(src_first, sl, dl).tolist()
        b_hi = np.where(src_first, dh, sh).tolist()
        b_lo = np.where(src_first, dl, sl).tolist()
        a_p = np.where(src_first, sp, dp).tolist()
        b_p = np.where(src_first, dp, sp).tolist()
        vlan = recs["vlan"].tolist()
        v6 = (recs["ipver"] == 6).tolist()
        proto = recs["proto"].tolist()
        ts = recs["ts_ns"].tolist()
        flags = recs["tcp_flags"].tolist()
        seq = recs["seq"].tolist()
        ack = recs["ack"].tolist()
        plen = recs["payload_len"].tolist()
        win = recs["tcp_win"].tolist()
        iplen = recs["ip_len"].tolist()
        ipid = recs["ip_id"].tolist()
        ityp = recs["icmp_type"].tolist()
        l4 = recs["l4_sum"].tolist()
        sf = src_first.tolist()
        pl_off = recs["pl_off"].tolist()
        pl_cap = recs["pl_cap"].tolist()
        buf = packets.buf
        srt = recs.tobytes()
        size = _REC.itemsize
        for i in range(n):
            t = ts[i]
            if t > self.now_ns:
                self.now_ns = t
            self.packets += 1
            pr = proto[i]
            # (the IP version last: an IPv6 packet between IPv4-mapped addresses is another flow)
            key = (vlan[i], pr, a_hi[i], a_lo[i], b_hi[i], b_lo[i], a_p[i], b_p[i], v6[i])
            payload = bytes(buf[pl_off[i]:pl_off[i] + pl_cap[i]]) if pl_off[i] >= 0 else b""
            err = errors.get(i)
            if err is not None:
                fl = self._quoted_flow(err)
                if fl is not None and fl.nerr < MAX_ICMP_ERRORS:
                    fl.nerr += 1
                    fl.recs.append(srt[i * size:(i + 1) * size])
                    fl.pays.append(payload)
                    fl.dirty = True
                    ta = _text(a_hi[i], a_lo[i], v6[i])
                    tb = _text(b_hi[i], b_lo[i], v6[i])
                    alias = _tkey(vlan[i], pr, ta, -1, tb, -1)
                    if alias not in fl.aliases:
                        fl.aliases.append(alias)
                    continue
            fl = self.active.get(key)
            is_tcp = pr == TCP
            fg = flags[i] if is_tcp else 0
            syn_only = is_tcp and (fg & (SYN | ACK)) == SYN
            d = 0 if sf[i] else 1
            if fl is not None:
                # (a SYN from the side that sent nothing since the other side's SYN: a
                # simultaneous open, the same connection, as flows._simultaneous_open)
                if t - fl.last_ts > self.timeouts.idle_ns(pr, (a_p[i], b_p[i])) or (
                        syn_only and fl.syn_seq is not None and seq[i] != fl.syn_seq
                        and not (d != fl.syn_dir and not fl.since_syn[d])) or (
                        syn_only and fl.syn_seq is None and not fl.syn_near(d, int(seq[i]))) or (
                        # (a SYN-ACK at another number than the one before, from the only side
                        # that sent anything: backscatter, a new connection as flows._synack_reuse)
                        is_tcp and (fg & (SYN | ACK | FIN | RST)) == (SYN | ACK) and fl.synack is not None
                        and fl.synack[0] == d and fl.synack[1] != seq[i] and fl.tfirst[1 - d] is None):
                    self._finalize([fl], now=t)
                    fl = None
            if fl is None:
                fl = self._new_flow(key, t)
            if is_tcp and fl.tfirst[d] is None:
                fl.tfirst[d] = (int(seq[i]), int(ack[i]) if fg & ACK else None)
            if is_tcp and (fg & (SYN | ACK | FIN | RST)) == (SYN | ACK):
                fl.synack = (d, seq[i])
            first_since_syn = False
            if is_tcp:
                fl.retry_step(d, fg, seq[i], ack[i])
            if syn_only:
                fl.syn_seq = seq[i]
                fl.syn_dir = d
                fl.since_syn = [False, False]
            elif fl.syn_dir >= 0 and not fl.since_syn[d]:
                fl.since_syn[d] = first_since_syn = True
            # Zeek's W and T events (flows.tw_codes; a copy is none: build_flows drops it)
            tw_ev = None
            if is_tcp and win[i] >= 0:     # (a TCP header: flows.tcp_segments)
                last = fl.last_sig
                copy = last is not None and last[0][:9] == (d, seq[i], ack[i], fg, iplen[i], plen[i], ipid[i],
                                                             ityp[i], l4[i] if ipid[i] <= 0 else -2) \
                    and l4[i] >= 0 and (ipid[i] > 0 or l4[i] > 0) \
                    and t - last[1] <= (_DUP_WINDOW_NS if ipid[i] > 0 else _DUP_WINDOW_NOID_NS) \
                    and last[0][9] == hash(payload)
                if not copy:
                    tw_ev = fl.tw_events(d, fg, seq[i], plen[i], win[i])
            if is_tcp and plen[i] >= 0 and fg & (FIN | RST):
                # (flows.after_own_reset: a side's first RST makes it RESET unless both sides had
                # sent a FIN; a FIN of the peer's, its first, after it undoes a RESET that
                # followed this side's own FIN)
                if fg & RST and not fl.own_reset[d]:
                    fl.own_reset[d] = 2 if fl.fin[d] and fl.fin[1 - d] else 1
                if not fg & RST and not fl.fin[d] and fl.own_reset[1 - d] == 1 and fl.fin[1 - d] \
                        and not fl.own_reset[d]:
                    fl.own_reset[1 - d] = 2
            if is_tcp:
                if fg & FIN:
                    fl.fin[d] = True
                if fg & RST:
                    fl.rst = True
                if fg & (FIN | RST):
                    fl.fr[d] = True
            if fl.bridge is not None and fl.nbridge < MAX_BRIDGED:
                fl.bridge_gap(t, self._half_idle(pr, a_p[i], b_p[i]))
            # a packet that writes a history letter in its direction (Zeek's rules: the first S/H,
            # F, R and each one at another sequence number, the first A, D, I, Q: flows.HistoryState)
            letter = fl.hist.step(d, fg, is_tcp, seq[i], plen[i] if is_tcp else (1 if pr == UDP else -1)) >= 0
            keep = len(fl.recs) < HEAD_PACKETS or letter or first_since_syn
            if is_tcp and not fg & (SYN | FIN | RST) and plen[i] <= 0:
                stage = 2 if fl.fr[1 - d] else 1
                if fl.plain0[d] < stage:
                    fl.plain0[d] = stage
                    keep = True
            after = is_tcp and fl.after_top[d]
            further_data = False
            if is_tcp:
                fl.after_top[d] = False
                if plen[i] > 0 and not fg & RST:
                    de = (seq[i] + (1 if fg & SYN else 0) + plen[i]) & 0xFFFF_FFFF
                    td = fl.top_data[d]
                    if td is None or fg & SYN or 0 < ((de - td) & 0xFFFF_FFFF) < (1 << 31):
                        fl.top_data[d] = de
                        further_data = True
                if plen[i] >= 0 and not fg & RST:
                    e_ = (seq[i] + (1 if fg & SYN else 0) + max(plen[i], 0) + (1 if fg & FIN else 0)) & 0xFFFF_FFFF
                    te = fl.top_end[d]
                    # (after a SYN the count may start again: flows.seq_extents takes the ISN of the
                    # last SYN the other side acknowledged, so what follows a SYN is kept)
                    if te is None or fg & SYN or 0 < ((e_ - te) & 0xFFFF_FFFF) < (1 << 31):
                        fl.top_end[d] = e_
                        fl.after_top[1 - d] = True
            if not keep and fg & (SYN | FIN | RST) and fl.nflag < MAX_FLAG_PACKETS:
                keep = True
                fl.nflag += 1
            if not keep and is_tcp and fl.rst and fl.nreset < MAX_AFTER_RESET:
                keep = True
                fl.nreset += 1
            if not keep and plen[i] > 0 and (fl.npay[d] <= MAX_SEGMENTS or fl.ndata[d] <= MAX_SEGMENTS):
                keep = True   # (one more than the streams read: Streams.cut; inspect._went_on)
            tw_kinds = ()
            if tw_ev is not None and (tw_ev[0] or tw_ev[1]):
                tw_kinds = [j for j in (0, 1) if tw_ev[j]]
                for j in tw_kinds:
                    fl.tw_n[2 * j + d] += 1
                    nth = fl.tw_n[2 * j + d]
                    if nth == 10 ** (len(str(nth)) - 1):     # (Zeek writes it at the 1st, 10th, 100th …)
                        keep = True
            msg = None
            if pr == UDP and len(payload) >= 12 and payload[2] & 0x80 and (a_p[i] == 53 or b_p[i] == 53):
                msg = dns.parse_message(payload)
                if msg is not None and msg.is_response and fl.dns_brings(msg):
                    keep = True   # what dns_rcode / dns_answers read
            # (what flows.build_flows compares to find a copy: headers, transport checksum unless
            # an IP id proves the copy, bytes)
            sig = (d, seq[i], ack[i], fg, iplen[i], plen[i], ipid[i], ityp[i], l4[i] if ipid[i] <= 0 else -2,
                   hash(payload))
            occupies = is_tcp and not fg & RST and (plen[i] > 0 or fg & FIN)
            fin_only = bool(fg & FIN) and plen[i] <= 0
            if keep:
                if after:
                    fl.hold_after(d, None)   # (kept: a packet held for it before stands for nothing)
                if occupies:
                    fl.hold_last(d, int(fin_only), None)
                if further_data:
                    fl.hold_last(d, 2, None)
                if is_tcp:
                    fl.paysum[d] += max(plen[i], 0)
                if plen[i] > 0:
                    fl.ndata[d] += 1
                if plen[i] > 0 and payload:
                    if pr == TCP:
                        payload = payload[:MAX_BYTES] if fl.npay[d] <= MAX_SEGMENTS else b""
                    fl.npay[d] += 1
                rec = srt[i * size:(i + 1) * size]
                fl.stand[d] = len(fl.recs)
                for j in tw_kinds:
                    fl.tw_at[2 * j + d] = len(fl.recs)
                if tw_ev is not None and tw_ev[2]:
                    fl.tw_held[d] = True
                fl.recs.append(rec)
                if tw_ev is not None and tw_ev[1]:
                    fl.tw_keep(d)
                fl.pays.append(payload)
                fl.kept_ts = t
                fl.bridge = None
            else:
                last = fl.last_sig
                # a copy is proven by an IP id or a real transport checksum (as build_flows)
                if last is not None and last[0] == sig and l4[i] >= 0 and (ipid[i] > 0 or l4[i] > 0) \
                        and t - last[1] <= (_DUP_WINDOW_NS if ipid[i] > 0 else _DUP_WINDOW_NOID_NS):
                    self.duplicates += 1
                    fl.last_sig = (sig, t)
                    if after:     # (a copy stands for nothing: the next packet does)
                        fl.after_top[d] = True
                    continue
                else:
                    self.dropped_rows += 1
                    # (its W/T events: counted on the kept event before each, unless it is held
                    # for the sequence numbers below, analysed with the kept packets: then when
                    # it is released, _Flow._release)
                    targets = [fl.tw_at[2 * j + d] for j in tw_kinds]
                    if tw_ev is not None and tw_ev[2]:
                        fl.tw_held[d] = False
                    if is_tcp:
                        fl.paysum[d] += max(plen[i], 0)
                    end_i = (seq[i] + max(plen[i], 0) + (1 if fg & FIN else 0)) & 0xFFFF_FFFF
                    ack_i = ack[i] if fg & ACK and ack[i] else -1
                    held = None
                    if is_tcp and not fg & (SYN | RST):
                        # (after its own RST a side's sequence end counts for nothing: only its
                        # acknowledgement may stand for something)
                        held = fl.float_tcp(d, srt[i * size:(i + 1) * size], end_i, ack_i, plen[i], iplen[i],
                                            fl.own_reset[d] == 1)
                    if after:
                        if held is None:
                            held = [end_i, srt[i * size:(i + 1) * size], plen[i], iplen[i], ack_i]
                        fl.hold_after(d, held)
                    if occupies and not fg & SYN:
                        if held is None:
                            held = [end_i, srt[i * size:(i + 1) * size], plen[i], iplen[i], ack_i]
                        fl.hold_last(d, int(fin_only), held)
                    if further_data and not fg & SYN:
                        if held is None:
                            held = [end_i, srt[i * size:(i + 1) * size], plen[i], iplen[i], ack_i]
                        fl.hold_last(d, 2, held)
                    if tw_kinds:
                        if held is not None:
                            held.append((tw_kinds, targets))
                            if 1 in tw_kinds:
                                fl.tw_keep(d)
                        else:
                            for j, at_ in zip(tw_kinds, targets):
                                if at_ >= 0:
                                    fl.tw_x.setdefault(at_, [0, 0])[j] += 1
                    if held is None:
                        e = fl.extra
                        e[3 * d] += 1
                        e[3 * d + 1] += max(plen[i], 0)
                        e[3 * d + 2] += iplen[i]
                    # (a TCP payload past the segments the streams read is kept empty, as when the
                    # packet is kept for another reason; a packet held for the sequence numbers
                    # is bridged too: a connection sending data each 160 s, more than half the
                    # TCP idle timeout, was split where the capture had no gap)
                    fl.bridge = [t, srt[i * size:(i + 1) * size], b"" if is_tcp else payload, d,
                                 plen[i], iplen[i], held,
                                 (tw_kinds, targets, bool(tw_ev[2])) if tw_ev is not None else None]
                    if pr == UDP and payload and (a_p[i] == 53 or b_p[i] == 53):
                        self._dns_payload(t, self._dst_text(recs, i), payload, msg)
            fl.last_sig = (sig, t)
            fl.last_ts = max(fl.last_ts, t)
            fl.dirty = True
        if len(self.active) > self.max_flows:
            self._evict_oldest(len(self.active) - self.max_flows + self.max_flows // 10)

    def _dst_text(self, recs, i: int) -> str:
        return _text(int(recs["dst_hi"][i]), int(recs["dst_lo"][i]), bool(recs["ipver"][i] == 6))

    def _new_flow(self, key: tuple, ts: int) -> _Flow:
        vlan, pr, ah, al, bh, bl, ap, bp, v6 = key
        tkey = _tkey(vlan, pr, _text(ah, al, v6), ap, _text(bh, bl, v6), bp)
        fl = _Flow(self._next_fid, key, tkey, ts)
        self._next_fid += 1
        self.active[key] = fl
        self._by_fid[fl.fid] = fl
        return fl

    def _quoted_flow(self, e) -> Optional[_Flow]:
        try:
            sh, sl = _addr_ints(e.src)
            dh, dl = _addr_ints(e.dst)
        except ValueError:
            return None
        pr = TCP if e.proto == "tcp" else UDP
        v6 = ":" in e.src      # (an IPv6 datagram's text, even between IPv4-mapped addresses)
        if (sh, sl, e.sport) <= (dh, dl, e.dport):
            key = (e.vlan, pr, sh, sl, dh, dl, e.sport, e.dport, v6)
        else:
            key = (e.vlan, pr, dh, dl, sh, sl, e.dport, e.sport, v6)
        return self.active.get(key)

    # ------------------------------------------------------------------------- DNS names
    def _dns_payload(self, ts: int, client: str, payload: bytes, msg=None) -> None:
        """Learn the answers of a DNS datagram not kept (``msg``: ``payload`` parsed, when it
        already was)."""
        if msg is None:
            msg = dns.parse_message(payload)
        if msg is None or not msg.is_response:
            return
        a = DnsAnswers()
        a.add(ts, client, msg)
        self._learn(a)

    def _learn(self, answers: DnsAnswers) -> None:
        for item in zip(answers.ts_ns, answers.client, answers.address, answers.name):
            if item in self._answer_seen:
                continue
            dq = self._answers.get(item[2])
            if dq is None:
                if len(self._answers) >= MAX_ANSWER_ADDRESSES:
                    old = next(iter(self._answers))
                    for x in self._answers.pop(old):
                        self._answer_seen.discard((x[0], x[1], old, x[2]))
                dq = self._answers[item[2]] = collections.deque()
            if len(dq) >= MAX_ANSWERS_PER_ADDRESS:
                x = dq.popleft()
                self._answer_seen.discard((x[0], x[1], item[2], x[2]))
            dq.append((item[0], item[1], item[3]))
            self._answer_seen.add(item)

    def _prior(self, flows: list[_Flow]) -> DnsAnswers:
        out = DnsAnswers()
        seen = set()
        for fl in flows:
            for ta in fl.tkey[2]:
                addr = ta[0] if isinstance(ta, tuple) else ta
                if addr in seen:
                    continue
                seen.add(addr)
                for ts, client, name in self._answers.get(addr, ()):
                    out.ts_ns.append(ts)
                    out.client.append(client)
                    out.address.append(addr)
                    out.name.append(name)
        return out

    # ------------------------------------------------------------------------- analysis
    def _analyze(self, flows: list[_Flow]) -> pd.DataFrame:
        """Run the pipeline on ``flows``; returns their rows with a ``_fid`` column."""
        flows = [f for f in flows if f.recs]
        if not flows:
            return self.table.iloc[0:0]
        held = [f.floating() for f in flows]
        raw = b"".join(b"".join(f.recs) + b"".join(x[1] for x in h) for f, h in zip(flows, held))
        arr = np.frombuffer(raw, _REC)
        pays = [p for f, h in zip(flows, held) for p in (*f.pays, *(b"" for _ in h))]
        lens = np.fromiter((len(p) for p in pays), np.int64, len(pays))
        offs = np.cumsum(lens) - lens
        cols = {k: arr[k].copy() for k in PACKET_COLUMNS}
        cols["pl_off"] = np.where(lens > 0, offs, -1).astype(np.int64)
        cols["pl_cap"] = lens.astype(np.int32)
        weights, given = self._weights(flows, held, len(pays))
        tw_extra = None
        base = 0
        for f, h in zip(flows, held):
            for at, x in f.tw_x.items():
                if tw_extra is None:
                    tw_extra = np.zeros((len(pays), 2), np.int64)
                tw_extra[base + at] = x
            base += len(f.recs) + len(h)
        order = np.argsort(cols["frame"], kind="stable")
        cols = {k: v[order] for k, v in cols.items()}
        packets = Packets(b"".join(pays), cols)
        learnt = DnsAnswers()
        table, _ = analyze_packets(packets, self.rules, self.name, prior_answers=self._prior(flows),
                                   answers_out=learnt, capture_end_ns=self._end_ns,
                                   observed_until_ns=self._observed(), internal=True, ttls=self._ttls, openers=self._openers, strays=self._strays,
                                   weights=weights[order] if weights is not None else None,
                                   tw_extra=tw_extra[order] if tw_extra is not None else None,
                                   idle_marks=self._went_idle)
        self._learn(learnt)
        # rows -> flows: by key (and first packet time), aliases for foreign ICMP errors
        by_key: dict[tuple, list[_Flow]] = {}
        for f in flows:
            by_key.setdefault(f.tkey, []).append(f)
            for a in f.aliases:
                by_key.setdefault(a, []).append(f)
        for v in by_key.values():
            v.sort(key=lambda f: f.first_ts)
        fids = np.empty(len(table), np.int64)
        protos = {"tcp": TCP, "udp": UDP}
        for r, (vl, pr, oh, op, rh, rp, t) in enumerate(zip(
                vlan_key(table).tolist(), table["proto"].tolist(), table["orig_h"].tolist(),
                table["orig_p"].tolist(), table["resp_h"].tolist(), table["resp_p"].tolist(),
                table["ts_ns"].tolist())):
            if pr == "icmp":
                k = (vl, "icmp", frozenset((oh, rh)))
            else:
                pnum = protos.get(pr)
                if pnum is None:
                    try:
                        pnum = int(pr)
                    except ValueError:
                        pnum = next((f.proto for f in flows if f.tkey[2] == frozenset(((oh, op), (rh, rp)))), -1)
                k = (vl, pnum, frozenset(((oh, op), (rh, rp))))
            cands = by_key.get(k) or []
            best = None
            for f in cands:
                if f.first_ts <= t or best is None:
                    best = f
            fids[r] = best.fid if best is not None else flows[0].fid
        table = table.assign(_fid=fids)
        adjust = [f for f in flows if f.has_extra]
        if adjust:
            table = self._adjust(table, adjust, given)
        if _ISN not in table.columns:
            table[_ISN] = -1
        if _AUTH not in table.columns:
            table[_AUTH] = pd.Series([""] * len(table), dtype=object, index=table.index)
        for c in (RESP_TTL, RESP_TTL_OUT):
            if c not in table.columns:
                table[c] = -1
        return table[list(COLUMNS) + [_ISN, _AUTH, RESP_TTL, RESP_TTL_OUT, "_fid"]]

    @staticmethod
    def _weights(flows: list[_Flow], held: list[list], n: int) -> tuple[Optional[np.ndarray], dict]:
        """The weights (:func:`~kscc_traffic.analyze.analyze_batch`) of the ``n`` packets
        :meth:`_analyze` builds of ``flows`` (each flow's kept records, then its held ones,
        ``held``; before they are sorted by frame): each direction's counters of packets not kept
        (``_Flow.extra``: packets, payload bytes, IP bytes) on its stand-in (``_Flow.stand``), so
        the flows are inspected and classified with their true counts (bytes sent again past the
        kept segments: ``inspect._stalled``), as in a chunked reading. Returns (the int64 array
        (n, 3), or None when no flow has such counters; fid -> per direction (0: a->b, 1: b->a),
        whether its counters are in the weights: :meth:`_adjust` adds the others afterwards)."""
        w = None
        given: dict[int, tuple[bool, bool]] = {}
        base = 0
        for f, h in zip(flows, held):
            given[f.fid] = (f.stand[0] >= 0, f.stand[1] >= 0)
            for d in (0, 1):
                e = f.extra[3 * d:3 * d + 3]
                if f.stand[d] >= 0 and any(e):
                    if w is None:
                        w = np.zeros((n, 3), np.int64)
                    w[base + f.stand[d]] = e
            base += len(f.recs) + len(h)
        return w, given

    def _adjust(self, table: pd.DataFrame, flows: list[_Flow],
                given: Optional[Mapping[int, tuple]] = None) -> pd.DataFrame:
        """Add the counters of packets not kept to each flow's last row (those not given to the
        analysis as weights: ``given``, :meth:`_weights`), stretch its duration to its last
        packet, then classify again (``table`` with the columns classify reads that the output
        has not: ``analyze_packets(internal=True)``; the time since each flow's last packet,
        ``quiet_s``, from its last packet, kept or not)."""
        rows, done = [], []
        for f in flows:
            idx = np.nonzero(table["_fid"].to_numpy() == f.fid)[0]
            if not len(idx):
                continue
            i = idx[np.argmax(table["ts_ns"].to_numpy()[idx])]
            rows.append(i)
            done.append(f)
            a_text = _text(f.key[2], f.key[3], f.key[8])
            orig_is_a = table.at[i, "orig_h"] == a_text and (
                f.proto in (ICMP, ICMP6) or int(table.at[i, "orig_p"]) == f.key[6])
            o, r = (0, 3) if orig_is_a else (3, 0)
            # (the counters of a direction given to the analysis as weights are in the row
            # already, and so are its TCP bytes and orig_resent: added here only those of a
            # direction that has no packet kept to carry them, as before s41)
            g = given.get(f.fid, (False, False)) if given else (False, False)
            e = [0 if g[k // 3] else x for k, x in enumerate(f.extra)]
            table.at[i, "orig_pkts"] += e[o]
            table.at[i, "orig_ip_bytes"] += e[o + 2]
            table.at[i, "resp_pkts"] += e[r]
            table.at[i, "resp_ip_bytes"] += e[r + 2]
            if f.proto == TCP:
                # (from sequence numbers, the packets held for them included: as the analysis
                # of the file, which sums the payloads instead past _SEQ_TRUST)
                for col, dd in (("orig_bytes", 0 if orig_is_a else 1), ("resp_bytes", 1 if orig_is_a else 0)):
                    if f.paysum[dd] >= _SEQ_TRUST and not g[dd]:
                        table.at[i, col] = f.paysum[dd]
                # (the originator sent some bytes again: its payloads add up to more than its
                # sequence numbers span, as analyze_batch's orig_resent)
                od = 0 if orig_is_a else 1
                if "orig_resent" in table.columns and not g[od] \
                        and f.paysum[od] > int(table.at[i, "orig_bytes"]):
                    table.at[i, "orig_resent"] = True
            else:
                table.at[i, "orig_bytes"] += e[o + 1]
                table.at[i, "resp_bytes"] += e[r + 1]
            # (a TCP connection both of whose sides closed among the packets kept, the first
            # FIN or RST of each side always is: its duration stops at that close, as Zeek's and
            # the analysis of the file (flows.tcp_duration_end); the packets not kept after it
            # do not lengthen it)
            if not (f.proto == TCP and both_sides_closed(str(table.at[i, "history"]))):
                table.at[i, "duration"] = max(float(table.at[i, "duration"]),
                                              (f.last_ts - int(table.at[i, "ts_ns"])) / 1e9)
        if rows:
            sub = table.loc[rows].drop(columns=["purpose", "verdict", "reason", "detail"])
            obs = self._observed()
            sub["quiet_s"] = [min(max(obs - f.last_ts, 0) / 1e9, TLS_SILENCE_S) for f in done]
            sub = classify(sub, self.rules, self._end_ns)
            for k in ("purpose", "verdict", "reason", "detail"):
                table.loc[rows, k] = sub[k].to_numpy()
        return table

    def _refresh(self) -> None:
        dirty = [f for f in self.active.values() if f.dirty]
        if not dirty:
            return
        new = self._analyze(dirty)
        ids = {f.fid for f in dirty}
        for f in dirty:
            f.dirty = False
        keep = self.table[~self.table["_fid"].isin(ids)]
        self.table = pd.concat([keep, new], ignore_index=True) if len(keep) else new.reset_index(drop=True)

    # ------------------------------------------------------------------------- eviction
    def _finalize(self, flows: list[_Flow], announce: bool = True, now: int | None = None) -> None:
        """Summarise ``flows``: their rows leave the table for the log (announced unless not
        ``announce``). ``now`` (epoch ns), when they leave at that time: the TCP connections among
        them silent past the idle timeout then and not closed are remembered
        (:class:`~kscc_traffic.idlesplits.HeldIdleSplits`), so one going on later after the
        silence is said to, as in a file's analysis."""
        if not flows:
            return
        if any(f.dirty for f in flows):
            self._refresh_some([f for f in flows if f.dirty])
        ids = {f.fid for f in flows}
        mask = self.table["_fid"].isin(ids).to_numpy()
        rows = self.table[mask]
        self.table = self.table[~mask].reset_index(drop=True)
        self._remember_idle(rows, flows, now)
        if announce:
            self._announce(rows, final=True)
        for uid in rows["uid"].tolist():
            self._announced.pop(uid, None)
        self.log.add(rows.drop(columns=["_fid"]))
        for f in flows:
            if self.active.get(f.key) is f:
                del self.active[f.key]
            self._by_fid.pop(f.fid, None)
            self.evicted += 1

    def _remember_idle(self, rows: pd.DataFrame, flows: list[_Flow], now: int | None) -> None:
        """Of ``rows`` (the table's rows of ``flows``, leaving): drop what
        :attr:`_went_idle` holds for them, and remember the last row of each TCP flow not closed
        and silent past its idle timeout at ``now`` (epoch ns; None: none is)."""
        if not len(rows):
            return
        by_fid = {f.fid: f for f in flows}
        fid = rows["_fid"].to_numpy(np.int64)
        keyed = rows.assign(**{VLAN_STACK: np.array([int(by_fid[x].key[0]) if x in by_fid else 0
                                                     for x in fid.tolist()], np.int64)})
        self._went_idle.forget(keyed)
        if now is None:
            return
        idle = {f.fid for f in flows if f.proto == TCP and not f.closed
                and now - f.last_ts > self.timeouts.idle_ns(f.proto, (f.key[6], f.key[7]))}
        if not idle:
            return
        ts = rows["ts_ns"].to_numpy(np.int64)
        last: dict[int, int] = {}
        for k, (x, t) in enumerate(zip(fid.tolist(), ts.tolist())):
            if x in idle and (x not in last or t >= ts[last[x]]):
                last[x] = k
        at = np.array(sorted(last.values()), np.int64)
        self._went_idle.add(keyed.iloc[at].reset_index(drop=True),
                            np.array([by_fid[int(x)].last_ts for x in fid[at].tolist()], np.int64),
                            np.ones(len(at), bool))

    def _refresh_some(self, flows: list[_Flow]) -> None:
        new = self._analyze(flows)
        ids = {f.fid for f in flows}
        for f in flows:
            f.dirty = False
        keep = self.table[~self.table["_fid"].isin(ids)]
        self.table = pd.concat([keep, new], ignore_index=True) if len(keep) else new.reset_index(drop=True)

    def _evict_oldest(self, n: int) -> None:
        victims = sorted(self.active.values(), key=lambda f: f.last_ts)[:max(n, 0)]
        self._finalize(victims)

    def _expire(self, now: int) -> None:
        close_ns = int(self.timeouts.close * 1e9)
        done = [f for f in self.active.values()
                if (f.closed and now - f.last_ts > close_ns)
                or now - f.last_ts > self.timeouts.idle_ns(f.proto, (f.key[6], f.key[7]))]
        self._finalize(self._refused_wait(done), now=now)

    #: refused flows (REJ) kept active at most while they wait for their reset's sender's other packet
    MAX_REFUSED_WAITING = 4096

    def _refused_wait(self, done: list) -> list:
        """``done`` (flows to finalise) less the refused ones (conn_state REJ) whose reset's sender
        sent no other packet yet (:attr:`_ttls`): they stay active, judged again once one comes or
        the capture ends (:func:`kscc_traffic.inspect._refused_hints` compares the reset's TTL
        with that packet's, before or after it: newcomer 29 F2), at most
        :data:`MAX_REFUSED_WAITING` of them (the oldest are evicted as any flow). The refused
        ones whose sender is known now are analysed again before they go."""
        if not done or not len(self.table):
            return done
        t = self.table
        rej = t["conn_state"].to_numpy(dtype=object) == "REJ"
        if not rej.any():
            return done
        resp = dict(zip(t["_fid"].to_numpy()[rej].tolist(), t["resp_h"].to_numpy(dtype=object)[rej].tolist()))
        waiting = sum(1 for f in self.active.values() if f.fid in resp) - sum(1 for f in done if f.fid in resp)
        out = []
        for f in done:
            h = resp.get(f.fid)
            if h is None:
                out.append(f)
                continue
            try:
                key = (6 if ":" in h else 4, *_addr_ints(h))
            except ValueError:
                out.append(f)
                continue
            # (its sender's packets captured arriving or leaving this host: inspect.SENT_KEY)
            sent_key = (key[0] + SENT_KEY, *key[1:])
            if key in self._ttls or sent_key in self._ttls or waiting >= self.MAX_REFUSED_WAITING:
                f.dirty = True          # (its sender's packet may have come since it was analysed)
                out.append(f)
            else:
                waiting += 1
        return out

    def _half_idle(self, proto: int, pa: int, pb: int) -> int:
        """Half the shorter of a flow's idle timeouts (ns): the session's (:class:`Timeouts`) and
        the one :func:`~kscc_traffic.flows.build_flows` splits the kept packets at
        (:data:`~kscc_traffic.flows.DNS_IDLE_NS` for a UDP flow on a DNS port, else
        :data:`~kscc_traffic.flows.IDLE_TIMEOUT_NS`); ``pa``, ``pb``: its ports."""
        dns_port = proto == UDP and (pa in DNS_PORTS or pb in DNS_PORTS)
        split = DNS_IDLE_NS if dns_port else IDLE_TIMEOUT_NS.get(proto, DEFAULT_IDLE_NS)
        return min(split, self.timeouts.idle_ns(proto, (pa, pb))) // 2

    # ------------------------------------------------------------------------- live view
    def _observed(self) -> int:
        """Until when the capture is known to have run (epoch ns): its end once known, else
        the newest packet or clock tick."""
        return self._end_ns if self._end_ns is not None else self.now_ns

    def _mark_quiet(self, now: int) -> None:
        """Mark for analysis the active flows that may be a ClientHello or CONNECT left without
        answer (judged ok so far, TCP, a TLS hello, a proxy target or plain HTTP), or a partial TCP flow the
        responder sent nothing in (not judged so far: it may have died before our eyes,
        :func:`kscc_traffic.classify._partial_silence`), once the capture has gone on
        TLS_SILENCE_S after their last packet (once per last packet)."""
        t = self.table
        if not len(t):
            return
        verdict, tcp = t["verdict"].to_numpy(dtype=object), t["proto"].to_numpy(dtype=object) == "tcp"
        maybe = tcp & (((verdict == "ok")
                        & (np.isin(t["service"].to_numpy(dtype=object), ["ssl", "http,ssl", "http"])
                           | (t["proxy_target"].to_numpy(dtype=object) != "")))
                       | ((verdict == "unclassified") & t["partial"].to_numpy(dtype=bool)
                          & (t["resp_pkts"].to_numpy() == 0)))
        wait = int(TLS_SILENCE_S * 1e9)
        for fid in t["_fid"].to_numpy()[maybe].tolist():
            f = self._by_fid.get(fid)
            if f is not None and f.quiet_at != f.last_ts and now - f.last_ts >= wait:
                f.quiet_at = f.last_ts
                f.dirty = True

    def _live_verdicts(self, table: pd.DataFrame, now: int) -> np.ndarray:
        v = table["verdict"].to_numpy(dtype=object).copy()
        if len(v):
            young = (now - table["ts_ns"].to_numpy()) < self.no_answer_ns
            noans = np.array([r.startswith("no_answer") for r in table["reason"].tolist()], bool)
            v[(v == "blocked") & noans & young] = "pending"
        return v

    def _announce(self, rows: pd.DataFrame, final: bool = False) -> None:
        if not len(rows):
            return
        verdicts = rows["verdict"].to_numpy() if final else self._live_verdicts(rows, self.now_ns)
        for i in np.nonzero(np.isin(verdicts, ["blocked", "unexpected"]))[0]:
            r = rows.iloc[int(i)]
            seen = self._announced.get(r["uid"])
            if seen is not None and (final or r["reason"] in seen):
                continue
            self._announced.setdefault(r["uid"], set()).add(r["reason"])
            ev = {k: r[k] for k in ("ts", "uid", "proto", "orig_h", "orig_p", "resp_h", "resp_p",
                                   "purpose", "verdict", "reason", "detail", "server_name")}
            ev["seen_at"] = time.time()
            self.events.append(ev)
            if self.on_event is not None:
                self.on_event(ev)

    def tick(self, now_ns: int | None = None) -> None:
        """Analyse the flows that changed, evict finished and idle ones, report flows that became
        blocked/unexpected (``now_ns``: epoch ns until when every captured packet has been
        ingested, the capture's clock — the source's :meth:`~kscc_traffic.live.sources.Source.delivered_ns`;
        default: the wall clock; never earlier than the newest packet)."""
        now = max(now_ns if now_ns is not None else time.time_ns(), self.now_ns)
        self.now_ns = now
        self._mark_quiet(now)
        self._refresh()
        self._expire(now)
        self._announce(self.table)

    def snapshot(self) -> pd.DataFrame:
        """Every flow seen so far (summarised and active) with its *live* verdict
        (``pending`` for unanswered attempts younger than ``no_answer_timeout``); columns:
        :data:`kscc_traffic.analyze.COLUMNS`. Active flows reflect the last :meth:`tick`."""
        act = self.table.drop(columns=["_fid"]).copy()
        act["verdict"] = self._live_verdicts(act, self.now_ns)
        done = self.log.frame()
        out = pd.concat([done, act], ignore_index=True) if len(done) else act
        # (a proxy's 407 and the accepted retry on another connection: classified apart here)
        out = note_auth_rounds(out.sort_values("ts_ns", kind="stable").reset_index(drop=True))
        return out.drop(columns=[_ISN, _AUTH, RESP_TTL, RESP_TTL_OUT], errors="ignore")

    def counts(self) -> dict[tuple[str, str], int]:
        """(purpose, live verdict) -> flows, summarised and active (cheap: no table copy)."""
        out = collections.Counter(self.log.counts)
        if len(self.table):
            v = self._live_verdicts(self.table, self.now_ns)
            for p, x in zip(self.table["purpose"].tolist(), v.tolist()):
                out[(p, x)] += 1
        return dict(out)

    def final(self, end_ns: int | None = None) -> pd.DataFrame:
        """Summarise every active flow and return the whole flow table, as ``kscc-traffic
        analyze`` reports it (no ``pending``), in time order of the first packet. A flow blocked
        or unexpected that had no event yet (``on_event``) gets one now.

        :param end_ns: when the capture ended (epoch ns; default: its newest packet or clock
            tick, :attr:`now_ns`): a ``no_answer`` attempt that began less than
            :data:`~kscc_traffic.classify.END_MARGIN_S` before it says so in its ``detail``, as
            in the analysis of a file (:func:`kscc_traffic.classify.classify`).
        """
        self._end_ns = end_ns if end_ns is not None else self.now_ns
        late = self._end_ns - int(END_MARGIN_S * 1e9)
        rej = set(self.table["_fid"].to_numpy()[self.table["conn_state"].to_numpy(dtype=object) == "REJ"].tolist()) \
            if len(self.table) else set()
        for f in self.active.values():
            if f.first_ts >= late or f.fid in rej:
                f.dirty = True       # analysed again, now that the end (and every packet: a REJ's hint) is known
        self._mark_quiet(self._end_ns + int(TLS_SILENCE_S * 1e9))   # (whatever the end says)
        self._refresh()
        # (a flow that turns blocked or unexpected only now, --count stopping the capture before
        # a tick saw it: its line too, as every other such flow had, before the report)
        self._finalize(list(self.active.values()))
        # (a proxy's 407 answered by an accepted retry on another connection: each flow was
        # classified when it changed, the two apart; judged across the table as classify does;
        # a stale connection's reset attempt and its retry by their SYN's ISN: the internal _ISN)
        return note_auth_rounds(self.log.frame()).drop(columns=[_ISN, _AUTH, RESP_TTL, RESP_TTL_OUT], errors="ignore")

    def close(self) -> None:
        """Release the spill file."""
        self.log.close()
