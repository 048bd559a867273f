"""One capture file analysed in chunks, in bounded memory.

The file is read :func:`~kscc_traffic.capture.files.iter_frames` chunk by chunk (about
:data:`CHUNK_BYTES` each). Each chunk is decoded and joined to the packets *carried* from the
chunks before (the packets of flows that were still open); the whole pipeline
(:func:`kscc_traffic.analyze.analyze_batch`) runs on that batch, and every flow that can no longer
grow is summarised and handed out. A flow can no longer grow once the capture's clock has passed
its end by more than the flow rules allow (:mod:`kscc_traffic.flows`, every rule looks only
backwards in time): its last packet plus the protocol's inactivity timeout (TCP 300 s, UDP/ICMP
60 s), or plus :data:`~kscc_traffic.flows.CLOSE_DELAY_NS` (5 s) for a TCP connection that closed
(FIN both ways, or RST). The packets of the other flows are carried to the next batch, with a
buffer of their own holding only their payload bytes, so a chunk's bytes are freed once it is
done; the reader leaves room before the next chunk's records for those bytes (:func:`_join`),
so the chunk is not copied to put them in front. A chunk holds about :data:`CHUNK_RECORDS`
records at most (small packets are read in shorter chunks: ``records`` of
:func:`~kscc_traffic.capture.files.iter_frames`), and is analysed in parts: a batch takes at
most :data:`BATCH_PACKETS` packets, the carried ones included (:func:`_batch_limit`). The
capture's clock is the time of the chunk's last packets in file order, less :data:`REORDER_NS`
for captures whose packets are slightly out of time order (merged interfaces). A chunk's last
records (those of its last :data:`HOLD_NS` and of its last timestamp, cut where the records are
in time order: :func:`_time_cut`; up to :data:`HOLD_FRAMES`) wait for the next chunk: packets
of one timestamp are ordered by their content, and a packet is a duplicate of the one before it
in that order. Carried packets are not compared again as copies of each other (the packets
between them may be gone); a new packet is compared with the carried one before it, kept
whole for that (the duplicates dropped at an open flow's last timestamp are carried too,
marked as counted: a frame written again and again is a copy of the copy before it).

So the flows, their uids, states, names and verdicts are those of the whole-file analysis; the
difference is the order in which flows come out: batch by batch (a flow leaves when it is
finished), each batch in time order of first packet. Memory is about one chunk and a batch's columns plus the open
flows' packets plus the DNS answers that can still name a flow (the open flows keep the names
they got), plus the frames of IP datagrams (and 802.11 MSDUs) whose fragments straddle a chunk
boundary: those frames alone, wherever they are in the chunk, are decoded again with the next
chunk, keeping their frame numbers (:func:`_hold_fragments`: at most
:data:`HOLD_FRAGMENT_BYTES` and :data:`HOLD_FRAGMENT_FRAMES`, the oldest datagrams given up on
beyond them, counted and warned about; a datagram no fragment still to come can complete, its first fragment more than the
reassembly timeout before the capture's clock, is given up on then, as the whole-file decode
does). Until then the capture's clock (for the flows) is not later than their stamps, so the
flow of a fragment never reassembled is still open when its row comes. What is not carried over
a chunk boundary: an ICMP error that arrives after the flow it quotes was summarised (it becomes
an ICMP flow of its own, as when the quoted flow was never seen).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Iterator, Mapping, Optional

import numpy as np
import pandas as pd

from .analyze import analyze_batch, capture_end, duplicates_note, one_way_counts
from .idlesplits import IdleSplits
from .lookups import LookupsWatch
from .natpairs import NatWatch
from .capture.decode import DecodeCounters, FcsClaim, SumClaim, decode, fcs_waiting
from .capture.filesets import iter_capture
from .capture.frames import Frames, concat_frames
from .capture.packets import Packets, short_payloads
from .capture.stats import ReadStats
from .flows import ACK, CLOSE_DELAY_NS, forwarded_copies, other_way_copies, FIN, DEFAULT_IDLE_NS, DNS_IDLE_NS, ICMP, ICMP6, IDLE_TIMEOUT_NS, PROTO_NAMES, \
    RESP_TTL, RESP_TTL_OUT, RST, TCP, UDP, VLAN_STACK, arrays_of, broadcast_evidence, content_rows, dns_flows, history_plain, isin_texts
from .inspect import (DNS_KEYS, REFUSED_WAIT, AddressTtls, lone_reset_hint, StraySynAcks, address_ttls, cloud_openers, cloud_ports, dns_response_rows,
                      refused_hint, truncated_answer)
from .answer_store import AnswerStore
from .classify import (AUTH_RETRY_S, DNS_ANSWERED_TCP, DNS_RESOLVED, DNS_RESOLVED6, DNS_RESOLVED_TCP, DNS_RETRY, SEEN_IPV4, DNS_RETRY_S, FALLBACK, FALLBACK_S, PROXY_RETRY, REFUSED_RETRY, REFUSED_RETRY_S,
                       STALE_RETRY, STALE_RETRY_S, OTHER_SOURCE_S, _CONNECTED_STATES, _agent_name, _proxy_passed_on, _str_codes, proxy_login,
                       address_families, asked_families, endpoints_text, fallback_name, other_client_after, other_source_answers,
                       pick_dns_retry, retry_connected,
                       usable_address, usable_address6, wrong_source_answers)
from .addresses import shows_ipv4
from .finishing import Finisher
from .names import DNS_SLACK_NS, ORIG_CLOUD_NAME, host_masks
from .rules import RuleSet
from .scans import OPEN_COLUMNS, ScanWatch
from .stamps import LoneStamps
from .timeorder import merge_in_time, ties_by_uid

__all__ = ["CHUNK_BYTES", "REORDER_NS", "ChunkedAnalysis"]

#: bytes of the capture read per chunk (a chunk of the bench's ~500-byte packets is one batch of
#: ~67,000: fewer batches, each with a fixed cost of ~40 ms of pandas calls, and a third fewer
#: packets of open flows analysed again; see BATCH_PACKETS for chunks of smaller packets)
CHUNK_BYTES = 32 << 20
#: how far (ns) a packet may come before an earlier packet in time and still join its flow
REORDER_NS = 2 * 10**9
#: records at the end of a chunk whose oldest timestamp sets the capture's clock
CLOCK_FRAMES = 256
#: of those, records stamped more than this (ns) before their median do not set it: a few
#: far-off stamps (zero timestamps of a NIC without hardware time, a clock stepped back) would
#: hold every flow in memory (break-it 21 F4: 0.5 % of records stamped 0, 2.1 GiB and 138 s)
CLOCK_OUTLIER_NS = 60 * 10**9
#: records of a batch at most when the packets carried from the batch before are many
#: (:func:`_batch_limit`): a chunk of more is analysed in equal parts (each flow costs its
#: row's columns until it leaves, so a chunk of small packets each of its own flow, a scan or
#: a UDP spray, would take memory by the number of its records, not by its bytes: break-it 21
#: F1, 16 MiB of 60-byte datagrams, 970 MiB)
BATCH_RECORDS = 40_000
#: packets analysed in a batch at most, the carried ones included, above BATCH_RECORDS new
#: ones (:func:`_batch_limit`): the bench's batches take a whole 32 MiB chunk (~67,000 records
#: and ~7,500 carried), a UDP spray's (50,000 one-datagram flows carried a minute) stay at
#: BATCH_RECORDS new ones, as the memory of a batch follows the packets and flows it analyses
BATCH_PACKETS = 80_000
#: records a chunk holds at most, about (:func:`~kscc_traffic.capture.files.iter_frames`'
#: ``records``): a chunk of small packets is read shorter than :data:`CHUNK_BYTES` (a UDP spray
#: of 60-byte datagrams: 32 MiB are 400,000 records, held while five batches are analysed)
CHUNK_RECORDS = BATCH_PACKETS
#: a chunk (or what is left of it) of at most this many times the new records a batch takes
#: (:func:`_batch_limit`) is one batch, not cut in two halves (the 10 M bench: ~18,000 packets
#: carried, 67,000 records a chunk)
PART_SLACK = 1.25
#: a record stamped this much (ns) before the record written before it is a step back of the
#: clock (counted in ChunkedAnalysis.steps_back, warned about)
STEP_BACK_NS = 500 * 10**6
#: a record stamped this much (ns) after every record written before it is a jump forward of the
#: clock (an appliance whose clock starts in 2000 then synced, a suspended VM; counted in
#: ChunkedAnalysis.jumps_forward, warned about): connections open across it are split, as their
#: idle timeout passes (break-it 21 F7). One day: a capture may be silent for hours
JUMP_FORWARD_NS = 86_400 * 10**9
#: packets of a flow always carried whole (see :func:`_summarise`)
HEAD_PACKETS = 8
#: time slot (ns) whose first and last packet of each closed TCP connection are carried (less
#: than the close delay; open flows use half their idle timeout), so no gap appears that was
#: not there
BUCKET_NS = 2 * 10**9
#: packets of a closed TCP connection kept whole after the close (see :func:`_summarise`)
AFTER_CLOSE = 64
#: a chunk's records stamped less than this (ns) before its last one wait for the next chunk
#: (with at most HOLD_FRAMES records): a record written after records stamped later is still
#: put in its place for duplicates (see :func:`_time_cut`)
HOLD_NS = 1_000_000
#: a chunk's last frames decoded with the next chunk when stamped as its last one (at most this
#: many frames: see :func:`_time_cut`)
HOLD_FRAMES = 4096
#: captured bytes at most of the frames held for the next chunk because they hold fragments of
#: a datagram still incomplete (:func:`_hold_fragments`); beyond it (or
#: :data:`HOLD_FRAGMENT_FRAMES`) the oldest datagrams are
#: given up on (counted in ChunkedAnalysis.fragments_not_held, warned about). The decoder's own
#: table holds at most :data:`~kscc_traffic.capture._ipfrag.MAX_DATAGRAMS` datagrams
HOLD_FRAGMENT_BYTES = 16 << 20
#: and frames at most (each chunk decodes the held frames again until their datagram completes
#: or times out: this bounds that work, tiny fragments of a hostile capture included)
HOLD_FRAGMENT_FRAMES = 32_768
#: decodes at most of a chunk's frames less the held ones (a fragment that was a copy of a held
#: one, or overlapped it, opens a datagram of its own once that one is held: held too)
HOLD_ROUNDS = 4


def _file_bytes(st: ReadStats) -> int:
    """Bytes of the capture file read so far (a compressed file's own bytes, not those it gives)."""
    return st.file_bytes_read if st.file_bytes_read is not None else st.bytes_read


def jumps_forward(ts: np.ndarray, prev_max: Optional[int] = None) -> tuple[int, int, Optional[int]]:
    """Jumps forward of the clock in ``ts`` (int64 ns, file order), after records whose latest
    stamp was ``prev_max`` (None: none before): records stamped more than :data:`JUMP_FORWARD_NS`
    after every record before them. (Against the latest so far, not the record before: a record
    stamped 0 among others is a step back, not also a jump forward when the clock comes back.)
    Returns (count, the largest jump in ns or 0, the latest stamp so far)."""
    if not len(ts):
        return 0, 0, prev_max
    t = ts.astype(np.int64, copy=False)
    run = np.maximum.accumulate(t)
    if prev_max is not None:
        run = np.maximum(run, prev_max)
        before = np.concatenate(([prev_max], run[:-1]))
    else:
        before = run[:-1]
        t = t[1:]
    # (no overflow: stamps are kept within 2^62 ns of 1970)
    gaps = t - before
    jump = gaps > JUMP_FORWARD_NS
    k = int(np.count_nonzero(jump))
    return k, (int(gaps[jump].max()) if k else 0), int(run[-1])


def _idle_by_name() -> dict[str, int]:
    out: dict[str, int] = {}
    for num, t in IDLE_TIMEOUT_NS.items():
        out.setdefault(PROTO_NAMES.get(num, str(num)), t)
    return out


@dataclass
class ChunkedAnalysis:
    """Analysis of one capture in chunks (see the module docstring).

    Iterate :meth:`batches` for the finished flows (DataFrames with the columns of
    :data:`kscc_traffic.analyze.COLUMNS`); once it is exhausted, :attr:`stats` holds the reader
    and decoder counters of the whole file and :attr:`duplicates` the frames counted once.

    :param path: the capture file, or a :class:`~kscc_traffic.capture.filesets.FileSet` (its
        files read one after the other as one capture).
    :param rules: the documented purposes.
    :param name: capture name (``capture`` column, uid seed, and the start of each warning line;
        escaped text, see :func:`kscc_traffic.analyze.capture_names`).
    :param chunk_bytes: bytes read per chunk.
    :param progress: called with the number of file bytes read so far, after each chunk.
    :raises kscc_traffic.errors.CaptureError: from the first chunk, as :func:`read_frames`.
    """

    path: object
    rules: RuleSet
    name: str = ""
    chunk_bytes: int = CHUNK_BYTES
    progress: Optional[Callable[[int], None]] = None
    stats: ReadStats = field(default_factory=ReadStats)
    duplicates: int = 0
    #: of :attr:`duplicates`, the packets the capturing host forwarded (:func:`~kscc_traffic.flows.forwarded_copies`)
    forwarded: int = 0
    #: most packets carried between two chunks (open flows), for the benchmark's figures
    max_carried: int = 0
    #: packets older than the capture's clock when they arrived (see :data:`REORDER_NS`)
    late_packets: int = 0
    #: places where a record is stamped more than :data:`STEP_BACK_NS` before the one before it
    steps_back: int = 0
    #: records whose lone damaged stamp took the time of the record before them (stamps.py)
    mended_stamps: int = 0
    #: places where a record is stamped more than :data:`JUMP_FORWARD_NS` after every record
    #: before it (:func:`jumps_forward`), and the largest such jump (ns)
    jumps_forward: int = 0
    largest_jump_ns: int = 0
    #: IP packets with fewer transport payload bytes captured than their IP length says
    #: (:meth:`ReadStats.warn_short_packets`)
    short_packets: int = 0
    #: frames holding fragments of datagrams incomplete at a chunk boundary that were not held
    #: for the next chunk (more than :data:`HOLD_FRAGMENT_BYTES` or :data:`HOLD_FRAGMENT_FRAMES`
    #: of them at once): their
    #: datagrams are not reassembled (warned about)
    fragments_not_held: int = 0
    #: classify the finished flows in a worker process while the next chunk is read
    #: (:class:`~kscc_traffic.finishing.Finisher`); the result is the same
    worker: bool = False
    #: applied to each finished batch in the worker (only when there is one), its result handed
    #: out instead of the DataFrame: see :class:`~kscc_traffic.finishing.Finisher`
    render: Optional[Callable] = None
    _chunks: Optional[Iterator] = field(default=None, repr=False)
    _fin: Optional[Finisher] = field(default=None, repr=False)
    _first: object = field(default=None, repr=False)
    #: bytes the next chunk read is to leave free before its records: the carried packets' and
    #: the waiting records' (:func:`_join` puts them there instead of copying the chunk)
    _room: int = field(default=0, repr=False)

    def first_chunk(self) -> None:
        """Open the file and read its first chunk now (so that a file that cannot be read at
        all raises here, before any output is written).

        :raises kscc_traffic.errors.CaptureError: as :func:`~kscc_traffic.capture.files.read_frames`.
        """
        if self._chunks is None:
            if self.worker and self._fin is None:
                # the worker is forked now, before any of the capture is read: it shares this
                # process's modules, not a chunk's bytes (and its collector skips them: _tune_gc)
                _tune_malloc()
                _tune_gc()
                self._fin = Finisher(self.rules, self.name, self.render, worker=True)
            try:
                self._chunks = iter_capture(self.path, self.chunk_bytes, name=self.name or None,
                                            room=lambda: self._room, records=CHUNK_RECORDS)
                self._first = next(self._chunks, None)
            except BaseException:
                if self._fin is not None:     # (no batch will come: the worker goes now)
                    self._fin.close()
                    self._fin = None
                raise

    def _clock_steps(self, t: np.ndarray, prev_ts: int | None, prev_max: int | None) -> tuple[int | None, int | None]:
        """Count the steps back and jumps forward of the clock in ``t`` (int64 ns, the next
        records in file order; ``prev_ts`` the record before them, ``prev_max`` the latest stamp
        before them, None: none) into :attr:`steps_back`, :attr:`jumps_forward` and
        :attr:`largest_jump_ns`; returns the new ``(prev_ts, prev_max)``."""
        if not len(t):
            return prev_ts, prev_max
        back = np.count_nonzero(t[1:] < t[:-1] - STEP_BACK_NS)
        back += prev_ts is not None and int(t[0]) < prev_ts - STEP_BACK_NS
        self.steps_back += int(back)
        k, big, prev_max = jumps_forward(t, prev_max)
        self.jumps_forward += k
        self.largest_jump_ns = max(self.largest_jump_ns, big)
        return int(t[-1]), prev_max

    def batches(self) -> Iterator[pd.DataFrame]:
        """Finished flows, batch by batch (each in time order of first packet): DataFrames, or
        what :attr:`render` makes of them in the worker.

        :raises kscc_traffic.errors.WorkerError: the finishing worker (:attr:`worker`) died
            (killed, out of memory).
        """
        self.first_chunk()
        fin, self._fin = self._fin or Finisher(self.rules, self.name), None
        try:
            for flows, end in self._leaving():
                # (flows of one time in order of uid, as the tshark engine's: timeorder.ties_by_uid)
                yield from fin.put(ties_by_uid(flows), end)
                del flows       # (not kept while the next batch is analysed)
            yield from fin.drain()
        finally:
            fin.close()

    def _leaving(self) -> Iterator[tuple[pd.DataFrame, Optional[int]]]:
        """The flows that leave, batch by batch, not finished yet (rows of
        ``analyze_batch(finish=False).flows``), each with the capture's end when they are its last
        (for :func:`kscc_traffic.analyze.finish_flows`), else None."""
        self.first_chunk()
        _tune_malloc()
        _tune_gc()
        chunks, pending = self._chunks, self._first
        self._first = None
        carry: Packets | None = None
        carry_w = np.zeros((0, 3), np.int64)    # per carried packet: what it stands for (analyze_batch weights)
        carry_tw = np.zeros((0, 2), np.int64)   # ... and the W and T events after it (analyze_batch tw_extra)
        carry_copy = np.zeros(0, bool)          # per carried packet: a duplicate, counted already
        carry_known = np.full(0, None, object)  # per carried packet: its flow's (dns_name, orig_cloud_name), once final
        store = AnswerStore(masks=host_masks(self.rules))
        auth = _AuthRounds()                # a proxy's 407s held until their retry can be known
        nodata = _NoAddress(self.rules)     # DNS flows with no address for a needed name: held to the end
        refused = _Refused()                # refused SYNs whose reset's sender sent nothing else yet
        stale = _StaleRetries()             # SYNs answered by a stale connection: held until their retry is known
        scans = ScanWatch()                 # scan probes: held until their scan is known (scans.py)
        retried = _RefusedRetries()         # refused SYNs (REJ): held until a later connection's state is known
        fallen = _FamilyFallbacks()         # refused IPv6 SYNs (REJ): held until an IPv4 fallback's state is known
        other = _OtherSource()              # one-way DNS flows: held while their answer from another address may come
        dretry = _DnsRetries()              # failed lookups: held while a lookup that makes them good may come
        broadcasts: dict[int, int] = {}     # link-layer broadcast destinations seen (flows.broadcast_evidence)
        ttls: Mapping = {}                  # each address's first packet that is no reset nor SYN-ACK (inspect.AddressTtls)
        openers = None                      # each address's first SYN to a cloud server's port (inspect.cloud_openers)
        strays = StraySynAcks()             # SYN-ACKs no SYN of their flow asked for (inspect.add_stray_synacks)
        ports = cloud_ports(self.rules)
        frame_base = 0                      # records read so far: the next one's number (Frames.number)
        recent_read = np.zeros(0, np.int64)     # the last CLOCK_FRAMES records read: their stamps
        counters = DecodeCounters()
        ip_packets = non_ip = 0
        reader_stats: ReadStats | None = None
        tail = None
        last = False
        prev_clock = None
        cap_end = np.iinfo(np.int64).min
        cap_start = np.iinfo(np.int64).max
        prev_ts = None                      # the last record's timestamp (steps back)
        prev_max = None                     # the latest timestamp so far (jumps forward)
        stamps = LoneStamps()               # lone damaged timestamps mended (stamps.py)
        loose = None                        # the number of the last record read, its stamp not decided yet
        one_way = np.zeros(3, np.int64)     # TCP flows: all, both ways, seen one way (warn_one_way)
        lookups = LookupsWatch()            # Kaspersky names resolved, no connection after them
        nat = NatWatch()                    # connections captured before and after a NAT
        went_idle = IdleSplits()            # open TCP connections that left idle: one may go on later
        shared = None                       # (carry, buffer): a joined chunk's buffer that starts with carry's
        fcs_claim = FcsClaim()              # the file's FCS claim taken as wrong or not: decided once
        sum_claim = SumClaim()              # the file's TCP checksums taken as its packets' or not: decided once

        def then_end():
            # (no name here keeps a part handed out: the caller frees its bytes when done; the
            # rest of its chunk is split when the next batch is due, by the packets carried then)
            nonlocal pending
            rest, pending = pending, None
            while True:
                if rest is None:
                    # (the reader leaves room for the bytes _join puts before the chunk's)
                    self._room = _room_for(carry, tail)
                    rest = next(chunks, None)
                    if rest is None:
                        break
                two = list(_first_part(rest, _batch_limit(len(carry) if carry is not None else 0), PART_SLACK))
                rest = two.pop()
                yield two.pop()             # (no name keeps it while the batch is analysed)
            yield None                      # the end: what is still open is finished

        for frames in then_end():
            if frames is not None and frames.last and tail is None:
                last = True                 # the reader says so: no end batch needed
            elif last:
                break                       # the end batch after a last chunk: nothing left
            else:
                last = frames is None
            if frames is None:
                if stamps.pending is not None:      # (the file's last record: nothing after it)
                    prev_ts, prev_max = self._clock_steps(np.array([stamps.pending], np.int64), prev_ts, prev_max)
                    stamps.pending, loose = None, None
                frames, tail = (tail, None) if tail is not None else (Frames.empty(), None)
            else:
                frames = replace(frames, number=np.arange(frame_base, frame_base + len(frames), dtype=np.int64))
                frame_base += len(frames)
                reader_stats = frames.stats
                t = np.asarray(frames.ts_ns, np.int64)
                if len(t):
                    # lone damaged stamps (stamps.py) take the time of the record before them; the
                    # last record before this chunk is decided now that the one after it is known
                    # (held in ``tail`` by _time_cut when it was stamped far off), this chunk's last
                    # one with the next chunk
                    raw = stamps.pending
                    decided, t, k = stamps.feed(t, final=bool(frames.last))
                    self.mended_stamps += k
                    if decided is not None and decided != raw and tail is not None and len(tail) \
                            and int(tail.number[-1]) == loose:
                        mended = np.array(tail.ts_ns, np.int64)
                        mended[-1] = decided
                        tail = replace(tail, ts_ns=mended)
                    if t is not frames.ts_ns:
                        frames = replace(frames, ts_ns=t)
                    loose = None if frames.last else int(frames.number[-1])
                    # (the steps back and jumps forward of the records decided, in file order)
                    done = len(t) if frames.last else len(t) - 1
                    counted = np.concatenate((np.array([] if decided is None else [decided], np.int64), t[:done]))
                    prev_ts, prev_max = self._clock_steps(counted, prev_ts, prev_max)
                recent_read = np.concatenate([recent_read, np.asarray(t[-CLOCK_FRAMES:], np.int64)])[-CLOCK_FRAMES:]
                prefix = carry.buf if carry is not None and len(carry) else b""
                if tail is not None or (len(prefix) and frames.room == len(prefix)):
                    # (the carried packets' bytes first: the batch's buffer is then this one;
                    # written into the room the reader left, when it left theirs)
                    frames, tail = _join(tail, frames, prefix), None
                    if len(prefix):
                        shared = (carry, frames.buf)
            full = frames
            cut = len(full)
            if not last:
                # the records of the chunk's last timestamp (and those written before them but
                # stamped later) wait for the next chunk: packets of one timestamp are put in flow
                # order by their content, not by their place in the file, and a packet is a copy
                # of the one before it in that order (flows.build_flows)
                j = _time_cut(full.ts_ns)
                if len(full) - j <= HOLD_FRAMES:
                    if j == 0:      # all of it waits for the next chunk
                        tail = full
                        continue
                    cut = j
            now = np.arange(cut)                # the records of full decoded now
            frames = _take(full, now) if cut < len(full) else full
            if not last and len(full) <= HOLD_FRAMES and fcs_waiting(frames, fcs_claim):
                # too few frames checked yet to decide the file's FCS claim (decode.FcsClaim):
                # they wait for the next chunk's, as the whole file reads them
                tail = full
                continue
            mine = DecodeCounters()
            pk = decode(frames, counters=mine, fcs_claim=fcs_claim, sum_claim=sum_claim)
            if not last:
                wait = np.arange(cut, len(full))
                if mine.open_fragments:
                    # datagrams whose fragments straddle the chunk boundary: their frames (only
                    # those) are decoded again with the next chunk, keeping their numbers
                    clock_now = _clock(recent_read) - REORDER_NS if len(recent_read) else None
                    now, held, pk, mine, dropped = _hold_fragments(full, now, pk, mine, clock_now,
                                                                       fcs_claim=fcs_claim, sum_claim=sum_claim)
                    self.fragments_not_held += dropped
                    if len(held):
                        frames = _take(full, now)
                        wait = np.concatenate([held, wait])     # (held < cut: still in capture order)
                tail = _take(full, wait) if len(wait) else None
                if not len(now):    # all of it waits for the next chunk
                    continue
            counters.merge(mine)
            self.short_packets += short_payloads(pk.cols)
            if len(pk):   # (the capture's last timestamp, for the last batch's verdicts)
                cap_end = max(cap_end, int(pk.cols["ts_ns"].max()))
                cap_start = min(cap_start, int(pk.cols["ts_ns"].min()))   # (a clock that never moved)
            ip_packets += len(pk)
            non_ip += pk.stats.non_ip - frames.stats.non_ip
            if len(pk):     # (each record's number in the capture: some waited for a later chunk)
                pk.cols["frame"] = frames.number[pk.cols["frame"]]
            # the capture's clock: packets still to come are not older than the oldest of this
            # chunk's last CLOCK_FRAMES records (less REORDER_NS), so far-off timestamps of a
            # few records do not move it
            recent = [t for t in (frames.ts_ns[-CLOCK_FRAMES:], tail.ts_ns if tail is not None else None)
                      if t is not None and len(t)]
            clock = _clock(np.concatenate(recent)) - REORDER_NS if recent else None
            if prev_clock is not None and len(pk):
                late = int(np.count_nonzero(pk.cols["ts_ns"] < prev_clock))
                if late:
                    self.late_packets += late
            if shared is not None and shared[0] is carry and pk.buf is shared[1] and len(pk):
                batch = Packets.concat_shared(carry, pk)    # (pk.buf starts with carry.buf's bytes)
            else:
                batch = Packets.concat([carry, pk] if carry is not None else [pk])
            shared = None
            # the chunk's bytes are held by the batch alone (a copy when packets were carried):
            # the records that wait for the next chunk take theirs out of it
            if tail is not None:
                tail = _own(tail)
            del pk, frames, full
            if len(batch) == 0:
                carry = None
                carry_w, carry_known = np.zeros((0, 3), np.int64), np.full(0, None, object)
                carry_tw = np.zeros((0, 2), np.int64)
                carry_copy = np.zeros(0, bool)
                if last:
                    if auth.held or nodata.held or refused.held or stale.held or scans.count or other.held or dretry.held \
                            or retried.held or fallen.held:
                        # (a proxy's 407s held for a retry: none came)
                        out = scans.step(pd.DataFrame(), pd.DataFrame(), None, True) if scans.count else pd.DataFrame()
                        out = stale.hold(refused.hold(nodata.hold(auth.hold(out, None))))
                        out = auth.release(out, pd.DataFrame(), None, True) if auth.held else out
                        out = refused.release(nodata.release(out, True), ttls, True)
                        out = other.release(stale.release(out, pd.DataFrame(), None, True), [], True)
                        # (as a batch's: every row let go passes the refused-retry and the fallback
                        # holders, not only when they held rows already; an IPv6 attempt the hint
                        # holder kept to the end meets here the IPv4 fallback that left before)
                        out = retried.hold(out)
                        out = retried.release(out, [], None, True) if retried.held else out
                        out = fallen.hold(out)
                        out = fallen.release(out, [], None, True) if fallen.held else out
                        out = dretry.step(out, [], None, True)
                        lookups.add(out)
                        yield _cut_end(out, reader_stats), capture_end(cap_end, reader_stats)
                    break
                continue
            n_new = len(batch) - len(carry_w)
            weights = np.concatenate([carry_w, np.zeros((n_new, 3), np.int64)])
            tw_extra = np.concatenate([carry_tw, np.zeros((n_new, 2), np.int64)])
            # (the carried packets were found not to be copies with what was between them, or to
            # be copies: counted then)
            carried = np.arange(len(batch)) < len(carry_w)
            copies = np.concatenate([carry_copy, np.zeros(n_new, bool)])
            known = np.concatenate([carry_known, np.full(n_new, None, object)])
            end = capture_end(cap_end, reader_stats) if last else cap_end
            ends = {}

            def leaving(flows: pd.DataFrame, last_ts: np.ndarray) -> np.ndarray:
                # the flows that leave with this batch (the others are carried to the next one
                # and judged there: analyze_batch inspects and classifies only these, and calls
                # this before inspecting, so only flow columns are read: history, proto)
                nf = len(flows)
                final = np.ones(nf, bool)
                closed, idle = np.zeros(nf, bool), np.zeros(nf, np.int64)
                if not last and nf:
                    closed, idle = _closed_and_idle(flows)
                    timeout = np.where(closed, CLOSE_DELAY_NS, idle)
                    final = last_ts < clock - timeout if clock is not None else np.zeros(nf, bool)
                ends.update(final=final, closed=closed, idle=idle)
                return final

            b = analyze_batch(batch, self.rules, self.name, prior_answers=store, weights=weights,
                              known=known, capture_end_ns=end if last else None,
                              observed_until_ns=end if last else clock, carried=carried, copies=copies,
                              broadcasts=broadcasts, judge=leaving, finish=False, ttls=ttls, openers=openers,
                              tw_extra=tw_extra,
                              strays=strays)
            broadcasts = broadcast_evidence(batch.cols, broadcasts)
            ttls = address_ttls(batch.cols, ttls)
            openers = cloud_openers(batch.cols, ports, openers)
            self.duplicates += b.duplicates
            self.forwarded += forwarded_copies(batch.cols, b.dup_of, copies)
            flows = b.flows
            final, closed, idle = ends["final"], ends["closed"], ends["idle"]
            # (the packets to carry first: the batch's packets are then freed before the leaving
            # rows are taken out of the flow table; the peak of a spray of one-datagram flows was
            # _summarise's with both alive: -15 to -20 MiB)
            if last:
                carry = None
            else:
                keep = (b.pkt_flow >= 0) & ~final[np.maximum(b.pkt_flow, 0)]
                # (weights: as analyze_batch left them, those of dropped copies moved)
                rows, trim, carry_w, carry_copy, carry_tw = _summarise(batch, b, np.nonzero(keep)[0], weights, closed,
                                                                       idle, tw_extra)
                # the names of flows still open are kept (once every answer that may name them has
                # been seen): the answers that gave them can go
                # (and a name once kept stays: the clock can go back with late packets)
                started = flows["ts_ns"].to_numpy() + DNS_SLACK_NS < (clock if clock is not None else 0)
                had = np.nonzero((known != None) & (b.pkt_flow >= 0))[0]  # noqa: E711 (element-wise)
                started[b.pkt_flow[had]] = True
                f = np.maximum(b.pkt_flow[rows], 0)     # (copies: -1, no name carried)
                names = np.fromiter(zip(flows["dns_name"].to_numpy(dtype=object)[f].tolist(),
                                        flows[ORIG_CLOUD_NAME].to_numpy(dtype=object)[f].tolist()), object, len(f))
                carry_known = np.where(started[f] & ~carry_copy, names, None)
                carry = batch.compact(rows)
                if trim.any():
                    carry.cols["pl_cap"][trim] = 0
                self.max_carried = max(self.max_carried, len(carry))
                # DNS answers: the ones of this batch's DNS packets that leave with their flows are
                # kept; those of carried DNS packets come again with the next batch
                # (only the carried packets' answers can come again)
                store.add(b.answers, again_ts=carry.cols["ts_ns"][~carry_copy].tolist())
                store.advance(clock - REORDER_NS - DNS_SLACK_NS if clock is not None else None)
            left_ts = b.last_ts[:len(flows)][final]     # (the leaving flows' last packets)
            del batch, b
            leaving_rows = None     # (handed out once the batch is freed)
            if final.any() or auth.held or nodata.held or refused.held or stale.held or retried.held or fallen.held \
                    or scans.count or other.held or dretry.held:
                # (the leaving rows taken once: a boolean take of every column)
                out = flows[final] if not final.all() else flows
                # (a connection going on after it left idle in an earlier batch: said so, not
                # "started mid-connection"; then this batch's idle ones remembered)
                went_idle.mark(out)
                if not last:
                    went_idle.add(out, left_ts, ~closed[final])
                one_way += one_way_counts(out)
                nat.add(out)
                # (scans first: a probe another holder keeps back is an attempt the others' windows count;
                # the retries of held stale attempts looked for among every leaving row: also
                # those the other holds keep back, a 407 or a DNS flow answered NODATA)
                out = scans.step(out, lambda: flows.loc[~final, [c for c in OPEN_COLUMNS if c in flows.columns]],
                                 clock, last)
                out = stale.hold(refused.hold(nodata.hold(auth.hold(out, clock))), out)
                if auth.held:
                    # (of the flows staying open, only what tells a retry still possible)
                    out = auth.release(out, flows.loc[~final, ["proto", "orig_h", "resp_h", "resp_p", "ts_ns"]],
                                       clock, last)
                if nodata.held and last:
                    out = nodata.release(out, last)
                if refused.held:
                    out = refused.release(out, ttls, last)
                if stale.held:
                    # (of the flows staying open, only what tells a retry still possible)
                    out = stale.release(out, flows.loc[~final, list(_StaleRetries.KEY) + ["proto", "ts_ns"]],
                                        clock, last)
                # (after the other holders: a REJ row the hint holder let go now is held here, and
                # every leaving row is seen once as a possible retry; the rows they still hold may
                # be retries, not known yet, as the flows staying open)
                out = retried.hold(out)
                if retried.held:
                    out = retried.release(out, [(flows, ~final), *(part for h in (auth, refused, stale)
                                                                    for part in h.held)], clock, last)
                # (after the refused attempts' retries: a REJ row over IPv6 they let go is held here for
                # its IPv4 fallback; the rows the others still hold may be that fallback, not known yet)
                out = fallen.hold(out, elsewhere=[part for h in (auth, refused, stale, retried) for part in h.held])
                if fallen.held:
                    out = fallen.release(out, [(flows, ~final), *(part for h in (auth, refused, stale, retried)
                                                                   for part in h.held)], clock, last)
                # (last: a DNS query and its answer from another address judged together; after
                # the others, whose held DNS flows, answered with no address, may be partners)
                # (not ``pending``: then_end's nonlocal, a cell that kept this batch's flow table
                # alive through the next batch's analysis, +90 MiB on a spray of one-packet flows)
                staying = [(flows, ~final), *nodata.held]
                out = other.hold(out, staying)
                if other.held:
                    out = other.release(out, staying, last)
                del staying
                # (after the query and its answer from another address: a failed lookup held
                # while the lookup that makes it good may still come)
                out = dretry.step(out, [(flows, ~final), *other.held], clock, last)
                # (each row once, as it is yielded: a query and its answer from another address together)
                lookups.add(out)
                if len(out):
                    leaving_rows = out
                del out
            # (the flow table freed before its leaving rows are finished:
            # -50 MiB while a spray's 40,000 one-datagram flows are classified)
            del flows, left_ts
            if leaving_rows is not None:
                yield (_cut_end(leaving_rows, reader_stats) if last else leaving_rows), (end if last else None)
                leaving_rows = None
            if self.progress is not None and reader_stats is not None:
                self.progress(_file_bytes(reader_stats))
            if last:
                break
            prev_clock = clock
        st = ReadStats()
        if reader_stats is not None:
            st.merge(reader_stats)
        st.ip_packets = ip_packets
        st.non_ip += non_ip
        st.sealed += counters.sealed
        st.malformed += counters.malformed
        for lt, c in counters.unsupported.items():
            st.unsupported_linktypes[lt] = st.unsupported_linktypes.get(lt, 0) + c
        for line in counters.warnings():    # ("decode: …": which capture it is about)
            st.warn(f"{self.name}: {line}" if self.name else line)
        st.warn_empty(self.name)
        st.warn_no_ip(self.name)
        st.warn_short_packets(self.name, self.short_packets)
        if self.late_packets:
            st.warn(f"{self.name}: {self.late_packets} packet{'s' if self.late_packets != 1 else ''} "
                    f"written more than {REORDER_NS // 10**9} s out of time order across a chunk "
                    "boundary; a flow they belong to may show as split (its first part then as blocked), "
                    "and a DNS answer among them may not name the flows it would have. Put the capture in "
                    "time order first (Wireshark's reordercap IN OUT; mergecap without -a), or give "
                    "--chunk-mib more than the file's size")
        st.warn_lone_stamps(self.name, self.mended_stamps)
        st.warn_steps_back(self.name, self.steps_back, STEP_BACK_NS)
        st.warn_jumps_forward(self.name, self.jumps_forward, JUMP_FORWARD_NS, self.largest_jump_ns)
        if store.warning(self.name):
            st.warn(store.warning(self.name))
        st.warn_frozen_clock(self.name, ip_packets, cap_end - cap_start if ip_packets else 0)
        st.warn_one_way(self.name, *one_way.tolist())
        lookups.warn(st, self.name)
        nat.warn(st, self.name)
        st.nat_syns = nat.sample()
        if self.fragments_not_held:
            k = self.fragments_not_held
            st.warn(f"{self.name}: {k} IP fragment{'s' if k != 1 else ''} of datagrams still incomplete at "
                    f"a chunk boundary {'were' if k != 1 else 'was'} not held for the next chunk (more than "
                    f"{HOLD_FRAGMENT_BYTES >> 20} MiB or {HOLD_FRAGMENT_FRAMES} frames of such fragments at "
                    f"once): {'their' if k != 1 else 'its'} datagrams were not reassembled. Give --chunk-mib "
                    "more than the file's size to reassemble them")
        if self.duplicates:
            st.warn(duplicates_note(self.name, self.duplicates, self.forwarded))
        self.stats = st


#: passed-on requests to proxies remembered per (client, proxy, port, target) for the 407s of
#: flows still open (:class:`_AuthRounds`): at most this many each, for at most this long (ns)
AUTH_PASSES_KEPT = 64
AUTH_PASSES_NS = 3600 * 10**9


class _AuthRounds:
    """A proxy's 407 whose retry on another connection the proxy accepted is an authentication
    round (:func:`kscc_traffic.classify.proxy_auth_retries`), also when the two flows leave with
    different batches. A leaving TCP flow through a proxy answered 407 is held back until no
    retry can still come: the capture's clock past its end plus
    :data:`~kscc_traffic.classify.AUTH_RETRY_S`, and no flow of the same client to the same proxy
    begun in that window still open (its answer is not known until it leaves); it then leaves
    with that batch, its :data:`~kscc_traffic.classify.PROXY_RETRY` column naming a retry seen in
    any batch. The requests the proxies passed on are remembered for that (at most
    :data:`AUTH_PASSES_KEPT` per client, proxy and target, begun less than
    :data:`AUTH_PASSES_NS` before the clock: a 407 connection open longer than that before
    its retry left is judged on the retries of its own batch only). The last batch releases
    every held row. A 407 held behind a long connection of its client to the proxy (any one begun
    in its window may be the retry) leaves when that connection does: later, with its verdict."""

    def __init__(self) -> None:
        self.held: list[pd.DataFrame] = []      # rows held back (unfinished rows)
        self.passes: dict[tuple, list[tuple[int, str]]] = {}   # key -> [(ts_ns, uid)] passed on

    def hold(self, flows: pd.DataFrame, clock: Optional[int]) -> pd.DataFrame:
        """``flows`` (the leaving rows, unfinished) less the proxy 407s among them, which are
        held (:meth:`release` lets them go); the requests the proxies passed on among them are
        remembered. ``clock``: the capture's clock (ns), for forgetting old ones (None: kept)."""
        if "proxy_target" in flows.columns and len(flows):
            # (the columns read at once, ~1 µs each: flows.arrays_of; the rows through a proxy
            # then by position, no frame taken: most batches have none)
            names = ("orig_h", "resp_h", "resp_p", "proxy_target", "http_status", "ts_ns", "uid")
            cols = arrays_of(flows, (*names, "proto"))
            at = np.flatnonzero((np.asarray(cols["proxy_target"], object) != "")
                                & (np.asarray(cols["proto"], object) == "tcp"))
            for oh, rh, rp, tg, st, ts, uid in zip(*(cols[c][at].tolist() for c in names)):
                if _proxy_passed_on(str(tg), str(st or "")):
                    got = self.passes.setdefault((oh, rh, int(rp), tg), [])
                    got.append((int(ts), str(uid)))
                    del got[:-AUTH_PASSES_KEPT]
            ask = np.zeros(len(flows), bool)
            ask[at] = [proxy_login(st, tg) for st, tg in zip(cols["http_status"][at].tolist(),
                                                             cols["proxy_target"][at].tolist())]
            if ask.any():
                self.held.append(flows[ask])
                flows = flows[~ask]
        if clock is not None:
            for k in [k for k, v in self.passes.items() if v[-1][0] < clock - AUTH_PASSES_NS]:
                del self.passes[k]
        return flows

    def release(self, flows: pd.DataFrame, open_flows: pd.DataFrame, clock: Optional[int],
                last: bool) -> pd.DataFrame:
        """``flows`` (leaving now) with the held rows no retry can still come for (every one
        when ``last``), their :data:`~kscc_traffic.classify.PROXY_RETRY` filled in; in time order
        of first packet. ``open_flows``: the batch's flows that stay open (flow columns)."""
        if not self.held:
            return flows
        held = pd.concat(self.held, ignore_index=True)
        window = AUTH_RETRY_S * 1e9
        dur = np.nan_to_num(held["duration"].to_numpy(float), nan=0.0).clip(min=0.0)
        end = held["ts_ns"].to_numpy(np.int64) + (dur * 1e9).astype(np.int64) + int(window)
        go = np.full(len(held), bool(last))
        if not last and clock is not None:
            go = end < clock
            if go.any() and len(open_flows):
                o = open_flows[open_flows["proto"].to_numpy(dtype=object) == "tcp"]
                starts: dict[tuple, list[int]] = {}
                for oh, rh, rp, t in zip(*(o[c].tolist() for c in ("orig_h", "resp_h", "resp_p", "ts_ns"))):
                    starts.setdefault((oh, rh, int(rp)), []).append(int(t))
                for i, (oh, rh, rp, ts) in enumerate(zip(*(held[c].tolist() for c in (
                        "orig_h", "resp_h", "resp_p", "ts_ns")))):
                    if go[i] and any(int(ts) < t <= end[i] for t in starts.get((oh, rh, int(rp)), ())):
                        go[i] = False
        if not go.any():
            return flows
        out = held[go]          # (a new frame: copy-on-write, pandas >= 3)
        retry = []
        for i, oh, rh, rp, tg, ts in zip(np.flatnonzero(go).tolist(), *(out[c].tolist() for c in (
                "orig_h", "resp_h", "resp_p", "proxy_target", "ts_ns"))):
            cand = [(t, u) for t, u in self.passes.get((oh, rh, int(rp), tg), ()) if int(ts) < t <= end[i]]
            retry.append(min(cand)[1] if cand else "")
        out[PROXY_RETRY] = pd.Series(retry, dtype=object, index=out.index)
        self.held = [held[~go]] if (~go).any() else []
        return merge_in_time(flows, out)


class _NoAddress:
    """A DNS flow answered NOERROR with no address for a name the agent needs is ``blocked``
    only when no lookup of that name in the whole capture got an address
    (:func:`kscc_traffic.classify._note_resolved`; newcomer 28 F2), so such a flow is held back
    to the capture's end, then leaves with the last batch, its
    :data:`~kscc_traffic.classify.DNS_RESOLVED` column True when a lookup in any batch got a
    usable address for its name (:data:`~kscc_traffic.classify.DNS_RESOLVED_TCP` when one over
    TCP did: a truncated answer's retry; :data:`~kscc_traffic.classify.DNS_ANSWERED_TCP` when one
    over TCP got any answer). A UDP flow whose truncated answer held some address for such a
    name is held back too, so that its note (no retry over TCP answered,
    :func:`kscc_traffic.classify._note_truncated_partial`) reads the whole capture. Only the
    needed names that got one are remembered."""

    def __init__(self, rules: RuleSet) -> None:
        self.rules = rules
        self.held: list[pd.DataFrame] = []      # rows held back (unfinished rows)
        self.resolved: set[str] = set()         # needed names some lookup got an address for
        self.resolved_tcp: set[str] = set()     # ... some lookup over TCP got an address for
        self.answered_tcp: set[str] = set()     # ... some lookup over TCP got an answer for
        self.resolved6: set[str] = set()        # ... some lookup got an IPv6 address for
        self.seen_v4 = False                    # some flow of the capture is IPv4
        self._needed: dict[str, bool] = {}      # name -> needed (_agent_name), found once

    def _need(self, name: str) -> bool:
        if name not in self._needed:
            self._needed[name] = _agent_name(name, self.rules)
        return self._needed[name]

    def hold(self, flows: pd.DataFrame) -> pd.DataFrame:
        """``flows`` (the leaving rows, unfinished) less the DNS flows answered NOERROR with no
        address for a needed name, and the UDP ones whose truncated answer held an address for
        one, which are held (:meth:`release`); the needed names the others got an address for
        are remembered."""
        if not self.seen_v4 and len(flows):
            # (stops at the first IPv4 flow: a capture with IPv4 is read once, an IPv6-only one
            # per batch; classify._note_resolved)
            self.seen_v4 = shows_ipv4(flows)
        if not len(flows) or "query" not in flows.columns or "dns_answers" not in flows.columns:
            return flows
        # (the columns read at once, ~1 µs each: flows.arrays_of)
        cols = arrays_of(flows, ("query", "dns_answers", "dns_rcode",
                                 *(c for c in ("proto", "dns_asked") if c in flows.columns)))
        query = np.asarray(cols["query"], object)
        asked = np.flatnonzero(query != "")
        if not len(asked):
            return flows
        answers = np.asarray(cols["dns_answers"], object)[asked]
        rcode = np.asarray(cols["dns_rcode"], object)[asked]
        tcp = (np.asarray(cols["proto"], object)[asked] == "tcp") if "proto" in cols \
            else np.zeros(len(asked), bool)
        for q in set(query[asked][tcp & (rcode != "")].tolist()):
            name = str(q).lower().rstrip(".")
            if name not in self.answered_tcp and self._need(name):
                self.answered_tcp.add(name)
        empty = answers == ""
        # (each distinct name, answer and transport looked at once: most DNS flows repeat a few)
        for q, a, t in set(zip(query[asked][~empty].tolist(), answers[~empty].tolist(), tcp[~empty].tolist())):
            name = str(q).lower().rstrip(".")
            if (name not in self.resolved or (t and name not in self.resolved_tcp) or name not in self.resolved6) \
                    and isinstance(a, str) and usable_address(a) and self._need(name):
                self.resolved.add(name)
                if t:
                    self.resolved_tcp.add(name)
                if usable_address6(a):
                    self.resolved6.add(name)
        keep = np.zeros(len(flows), bool)
        at = asked[empty & (rcode == "NOERROR")]
        if len(at):
            keep[at] = [self._need(str(q).lower().rstrip(".")) for q in query[at].tolist()]
        if "dns_asked" in cols:
            # (a truncated UDP answer holding some address: its note, no retry over TCP answered,
            # waits for the whole capture too: classify._note_truncated_partial; the TC bit looked
            # at only on the UDP rows answered NOERROR with some answer)
            cut = asked[~empty & ~tcp & (rcode == "NOERROR")]
            bits = np.asarray(cols["dns_asked"], object)[cut]
            cut = cut[np.array([truncated_answer(b) for b in bits.tolist()], bool)] if len(cut) else cut
            if len(cut):
                got = np.asarray(cols["dns_answers"], object)[cut].tolist()
                keep[cut] = [isinstance(a, str) and usable_address(a) and self._need(str(q).lower().rstrip("."))
                             for q, a in zip(query[cut].tolist(), got)]
        if keep.any():
            self.held.append(flows[keep])
            flows = flows[~keep]
        return flows

    def release(self, flows: pd.DataFrame, last: bool) -> pd.DataFrame:
        """``flows`` (leaving now) with every held row when ``last`` (else ``flows``), their
        :data:`~kscc_traffic.classify.DNS_RESOLVED`, ``DNS_RESOLVED_TCP``, ``DNS_ANSWERED_TCP``,
        ``DNS_RESOLVED6`` and ``SEEN_IPV4`` filled in; in time order of first packet."""
        if not self.held or not last:
            return flows
        held = pd.concat(self.held, ignore_index=True)
        self.held = []
        names = [str(q).lower().rstrip(".") for q in held["query"].tolist()]   # (each normalised once)
        for col, known in ((DNS_RESOLVED, self.resolved), (DNS_RESOLVED_TCP, self.resolved_tcp),
                           (DNS_ANSWERED_TCP, self.answered_tcp), (DNS_RESOLVED6, self.resolved6)):
            held[col] = pd.Series([q in known for q in names], dtype=object, index=held.index)
        held[SEEN_IPV4] = pd.Series([self.seen_v4] * len(held), dtype=object, index=held.index)
        return merge_in_time(flows, held)


class _Refused:
    """A SYN answered by a reset (Zeek's REJ) is told by its reset's TTL against the first other
    packet its sender sent anywhere in the capture, before or after it
    (:func:`kscc_traffic.inspect._refused_hints`; newcomer 29 F2). Such a flow whose sender sent
    nothing else in the batches read so far (its :data:`~kscc_traffic.inspect.REFUSED_WAIT`
    column) is held back until a later batch brings a packet of that sender, or to the capture's
    end, then leaves with the hint that packet gives (``reset_hint``). At most
    :data:`MAX_HELD` rows are held (beyond, they leave without waiting: no hint)."""

    #: rows held at most (a scan refused by thousands of hosts never heard otherwise: bounded memory)
    MAX_HELD = 65_536

    def __init__(self) -> None:
        self.held: list[pd.DataFrame] = []      # rows held back (unfinished rows)
        self._count = 0

    def hold(self, flows: pd.DataFrame) -> pd.DataFrame:
        """``flows`` (the leaving rows, unfinished) less those waiting for a packet of their reset's
        sender, which are held (:meth:`release`) while fewer than :data:`MAX_HELD` are."""
        if not len(flows) or REFUSED_WAIT not in flows.columns or self._count >= self.MAX_HELD:
            return flows
        # (None, or a tuple: compared as objects, no Python loop over a batch's rows; then the few
        # others looked at: a tuple, not a NaN of a row that lacked the column)
        wait = flows[REFUSED_WAIT].to_numpy(dtype=object)
        keep = np.asarray(wait != None, bool)  # noqa: E711
        for i in np.flatnonzero(keep).tolist():
            keep[i] = isinstance(wait[i], tuple)
        if not keep.any():
            return flows
        at = np.flatnonzero(keep)[:self.MAX_HELD - self._count]
        keep[:] = False
        keep[at] = True
        self.held.append(flows[keep])
        self._count += len(at)
        return flows[~keep]

    def release(self, flows: pd.DataFrame, ttls: Mapping, last: bool) -> pd.DataFrame:
        """``flows`` (leaving now) with the held rows whose reset's sender ``ttls`` (the first packet
        of each address so far, :func:`kscc_traffic.inspect.address_ttls`) now holds, every held
        row when ``last``, their ``reset_hint`` completed; in time order of first packet."""
        if not self.held:
            return flows
        waits = [w for part in self.held for w in part[REFUSED_WAIT].tolist()]
        # (every held row's sender looked up in one AddressTtls.find, not one lookup per row and
        # batch: ~0.1 ms each, a scan refused by 65,536 hosts cost ~7 s a batch)
        table = AddressTtls.of(ttls)
        ok = np.fromiter((isinstance(w, tuple) for w in waits), bool, len(waits))
        keys = [w if o else (0, 0, 0, -1) for w, o in zip(waits, ok.tolist())]
        at = table.find(np.fromiter((k[0] for k in keys), np.int64, len(keys)),
                        np.fromiter((k[1] for k in keys), np.uint64, len(keys)),
                        np.fromiter((k[2] for k in keys), np.uint64, len(keys)))
        found = ok & (at >= 0)
        go = found | bool(last)
        if not go.any():
            return flows
        held = pd.concat(self.held, ignore_index=True)
        out = held[go]          # (a new frame: copy-on-write, pandas >= 3)
        hint = out["reset_hint"].to_numpy(dtype=object).copy()
        rows = np.flatnonzero(go)
        for i, k in enumerate(rows.tolist()):
            if not ok[k]:
                continue
            ver, _, _, ttl = keys[k][:4]
            # (its sender sent nothing else in the whole capture: the reset's own TTL alone, against
            # the other hosts', lone_reset_hint)
            # (no destination kept: no SYN of the originator's captured, no refused attempt)
            t = refused_hint(ver, ttl, int(table.ttl[at[k]])) if found[k] else \
                lone_reset_hint(ver, ttl, table, keys[k][4:6]) if len(keys[k]) >= 6 else ""
            if t:
                hint[i] = f"{hint[i]}; {t}" if hint[i] else t
        out["reset_hint"] = pd.Series(hint, dtype=object, index=out.index)
        out[REFUSED_WAIT] = pd.Series([None] * len(out), dtype=object, index=out.index)
        self.held = [held[~go]] if (~go).any() else []
        self._count = int(np.count_nonzero(~go))
        return merge_in_time(flows, out)


class _StaleRetries:
    """A SYN answered by a stale connection, reset by the client, whose retry on the same 5-tuple
    connected is a stale connection cleared (:func:`kscc_traffic.classify.stale_retries`), also
    when the two flows leave with different batches (a retry after the close delay). A leaving
    TCP flow whose SYN was answered so (``syn_answer``) is held back until its retry is known:
    one that connected left (and no other flow on its 5-tuple begun between them is still open),
    or the capture's clock is past its end plus :data:`~kscc_traffic.classify.STALE_RETRY_S`
    and no flow on its 5-tuple begun in that window is still open; it then leaves with that
    batch, its :data:`~kscc_traffic.classify.STALE_RETRY` column giving ``(ts_ns, uid)`` of that
    retry (None: none). The retry never leaves before the attempt (it begins after the
    attempt's reset, and a closed flow leaves :data:`~kscc_traffic.flows.CLOSE_DELAY_NS` after
    its last packet at the soonest), so only the leaving flows on a held row's 5-tuple are
    remembered. The last batch releases every held row; at most :data:`MAX_HELD` rows are
    held (beyond, they leave without waiting: judged with the retries of their own batch).
    :class:`_RefusedRetries` does the same for a refused SYN and any later connection of its
    client to the same server and port."""

    #: rows held at most (bounded memory: a scan answered by stale connections everywhere)
    MAX_HELD = 65_536
    #: the columns that tell a 5-tuple apart (as stale_retries reads them, ``capture`` aside: one
    #: per run; the whole VLAN stack, the analysis's internal column, not the output's ``vlan``)
    KEY = ("orig_h", "orig_p", "resp_h", "resp_p", VLAN_STACK)
    #: where in KEY the port whose flows may be retries is (first a numpy look at leaving flows)
    PORT = 1
    #: the window after a held row's end in which a retry may begin (s)
    WINDOW_S = STALE_RETRY_S
    #: the internal column that gives the retry found
    COLUMN = STALE_RETRY
    #: whether a retry sends the held SYN again (the same ``syn_isn``)
    SAME_ISN = True
    #: held frames (one per batch that held rows) kept apart at most; beyond, joined into one
    PARTS = 8
    #: columns besides KEY that :meth:`_near` reads
    ALSO: tuple = ()
    #: the column whose value a remembered retry keeps beside its time and uid (its SYN's ISN,
    #: what :attr:`SAME_ISN` compares); and whether :attr:`COLUMN` gives it as a third item
    THIRD = "syn_isn"
    CARRY = False
    #: a further column whose value a remembered retry keeps (and :attr:`COLUMN` gives as a fourth
    #: item when :attr:`CARRY`); None: none (-1 kept)
    FOURTH: Optional[str] = None
    #: whether a remembered retry also keeps its client (``orig_h``) and its endpoints as the
    #: table shows them (``orig_h:orig_p -> resp_h:resp_p``), and :attr:`COLUMN` gives them (with
    #: whether another client connected on the key in the window: :attr:`CARRY`)
    ENDPOINTS = False

    def __init__(self) -> None:
        self.held: list[pd.DataFrame] = []      # rows held back (unfinished rows)
        self.keys: dict[tuple, int] = {}        # key of a held row -> rows held on it
        self.count = 0                          # rows held (the sum of keys' values)
        # key -> [(ts_ns, uid, THIRD, FOURTH, client, endpoints)] connected
        self.retries: dict[tuple, list[tuple[int, str, int, int, str, str]]] = {}

    @classmethod
    def _key(cls, values) -> tuple:
        return tuple(int(v) if c.endswith("_p") or c == VLAN_STACK else v for c, v in zip(cls.KEY, values))

    def _near(self, flows: pd.DataFrame, cols: Optional[Mapping] = None) -> np.ndarray:
        """Per row of ``flows``, bool: its port (:attr:`PORT` of :attr:`KEY`) and ``orig_h`` are a
        held row's (the rows whose key may be a held one's, found in numpy). ``cols``: those two
        columns of ``flows`` read already (label -> array), else read here."""
        port = self.KEY[self.PORT]
        ports = np.fromiter({k[self.PORT] for k in self.keys}, np.int64)
        col = cols[port] if cols is not None else flows[port].to_numpy()
        # (kind "sort" for integer ports: numpy's default for a few held ports compares each of
        # them with every row, ~4 times slower on a batch's flows)
        near = np.isin(col, ports, kind="sort" if col.dtype.kind in "iu" else None)
        at = np.flatnonzero(near)
        if len(at):
            # (the client looked up only on the rows whose port is a held row's: a few of a batch)
            hosts = {k[0] for k in self.keys}
            hs = (cols["orig_h"] if cols is not None else flows["orig_h"].to_numpy(dtype=object))[at].tolist()
            near[at] = np.fromiter((h in hosts for h in hs), bool, len(hs))
        return near

    def _holds(self, flows: pd.DataFrame) -> Optional[np.ndarray]:
        """Per leaving row, bool: held (a TCP flow whose SYN a stale connection answered); None
        when the table cannot tell (no ``syn_answer``)."""
        if "syn_answer" not in flows.columns:
            return None
        return (flows["syn_answer"].to_numpy(dtype=object) != "") & (flows["proto"].to_numpy(dtype=object) == "tcp")

    def hold(self, flows: pd.DataFrame, seen: Optional[pd.DataFrame] = None) -> pd.DataFrame:
        """``flows`` (the leaving rows, unfinished) less the rows to hold (:meth:`_holds`), which
        are held (:meth:`release`); the flows of ``seen`` (every row leaving now, those other holds
        keep back included; default ``flows``) that connected on the key of a held row are
        remembered as retries."""
        seen = flows if seen is None else seen
        keep = self._holds(flows) if len(flows) and all(c in flows.columns for c in self.KEY) else None
        room = self.MAX_HELD - self.count
        at = np.flatnonzero(keep)[:room] if keep is not None and room > 0 else ()
        if len(at):
            # (rows taken by position: the held ones, then the others; each key column read once)
            self.held.append(flows.iloc[at])
            cols = arrays_of(flows, self.KEY)
            for k in zip(*(cols[c][at].tolist() for c in self.KEY)):
                k = self._key(k)
                self.keys[k] = self.keys.get(k, 0) + 1
            self.count += len(at)
            rest = np.ones(len(flows), bool)
            rest[at] = False
            flows = flows.iloc[np.flatnonzero(rest)]
        self._remember(seen)
        return flows

    def _remember(self, seen: pd.DataFrame) -> None:
        """The flows of ``seen`` that connected on the key of a held row, remembered as retries
        (a held row itself never connected: its SYN was answered by a stale connection or refused)."""
        if self.keys and len(seen) and all(c in seen.columns for c in (*self.KEY, "proto")):
            # (the columns read at once, ~1 µs each: flows.arrays_of; the rows then only the few
            # near a held key, no frame taken)
            ends = ("orig_h", "orig_p", "resp_h", "resp_p") if self.ENDPOINTS else ()
            names = list(dict.fromkeys([*self.KEY, "proto", *self.ALSO, *(
                c for c in ("conn_state", "ts_ns", "uid", "history", "syn_answer", self.THIRD, self.FOURTH, *ends)
                if c is not None and c in seen.columns)]))
            cols = arrays_of(seen, names)
            for c in (self.KEY[0], *self.ALSO):
                cols[c] = np.asarray(cols[c], object)
            cand = self._near(seen, cols) & (np.asarray(cols["proto"], object) == "tcp")
            if "conn_state" in cols:
                # (of a connection that connected: retry_connected reads it again)
                cand &= isin_texts(np.asarray(cols["conn_state"], object), _CONNECTED_STATES)
            cand = np.flatnonzero(cand)
            if len(cand):
                n = len(cand)
                isn = cols[self.THIRD][cand].astype(np.int64) if self.THIRD in cols else np.full(n, -1)
                fourth = cols[self.FOURTH][cand].astype(np.int64) \
                    if self.FOURTH is not None and self.FOURTH in cols else np.full(n, -1)
                answer = cols["syn_answer"][cand].tolist() if "syn_answer" in cols else [""] * n
                if ends and all(c in cols for c in ends):
                    client = [str(x) for x in cols["orig_h"][cand].tolist()]
                    shown = [endpoints_text(*v) for v in zip(*(cols[c][cand].tolist() for c in ends))]
                else:
                    client = shown = [""] * n
                for values, ts, uid, cs, h, a, s, e, c, w in zip(
                        zip(*(cols[c][cand].tolist() for c in self.KEY)),
                        cols["ts_ns"][cand].tolist(), cols["uid"][cand].tolist(),
                        cols["conn_state"][cand].tolist(), cols["history"][cand].tolist(), answer, isn.tolist(),
                        fourth.tolist(), client, shown):
                    k = self._key(values)
                    if k in self.keys and retry_connected(cs, h, a):
                        self.retries.setdefault(k, []).append((int(ts), str(uid), int(s), int(e), c, w))

    def release(self, flows: pd.DataFrame, open_flows: pd.DataFrame, clock: Optional[int],
                last: bool) -> pd.DataFrame:
        """``flows`` (leaving now) with the held rows whose retry is known (every one when
        ``last``), their :attr:`COLUMN` filled in; in time order of first packet. ``open_flows``:
        the flows that may still be retries, not known yet (``KEY``, ``proto``, ``ts_ns``): a
        frame, or a list of frames or ``(frame, bool mask of its rows)``: the batch's flows that
        stay open, and rows other holders keep back."""
        if not self.held:
            return flows
        # (the held parts read in numpy, not joined: the rows held a batch before mostly leave now
        # and those held now stay, so most batches take no rows and join no frames; parts of
        # other columns, or too many, joined into one)
        parts = self.held
        if len(parts) > self.PARTS or any(not p.columns.equals(parts[0].columns) for p in parts[1:]):
            parts = [pd.concat(parts, ignore_index=True)]
        need = [*self.KEY, "duration", "ts_ns", *(["syn_isn"] if "syn_isn" in parts[0].columns else [])]
        cols = [arrays_of(p, need) for p in parts]

        def column(c):
            return np.concatenate([a[c] for a in cols]) if len(cols) > 1 else cols[0][c]
        n = sum(len(p) for p in parts)
        dur = np.nan_to_num(np.asarray(column("duration"), float), nan=0.0).clip(min=0.0)
        ts = np.asarray(column("ts_ns"), np.int64)
        end = ts + (dur * 1e9).astype(np.int64) + int(self.WINDOW_S * 1e9)
        isn = np.asarray(column("syn_isn"), np.int64) if "syn_isn" in need else np.full(n, -1)
        keys = [self._key(v) for v in zip(*(column(c).tolist() for c in self.KEY))]
        starts: dict[tuple, list[int]] = {}
        for part in (open_flows if isinstance(open_flows, list) else [(open_flows, None)]):
            o, mask = part if isinstance(part, tuple) else (part, None)
            if not len(o):
                continue
            # (only the open flows on a held row's port and client: numpy first, the keys then;
            # no copy of the frame, its columns read at once: flows.arrays_of)
            cols = arrays_of(o, [*self.KEY, "proto", *self.ALSO, "ts_ns"])
            for c in (self.KEY[0], *self.ALSO):
                cols[c] = np.asarray(cols[c], object)
            at = self._near(o, cols) & (np.asarray(cols["proto"], object) == "tcp")
            if mask is not None:
                at &= mask
            at = np.flatnonzero(at)
            if not len(at):
                continue
            for v, t in zip(zip(*(cols[c][at].tolist() for c in self.KEY)), cols["ts_ns"][at].tolist()):
                k = self._key(v)
                if k in self.keys:
                    starts.setdefault(k, []).append(int(t))
        go = np.full(n, bool(last))
        found: list = [None] * n
        # (per key, its retries in order of (ts_ns, uid) and the open flows' starts sorted: the
        # first retry after a held row, and an open flow begun in its window, found by bisection;
        # a key of _FamilyFallbacks is a server name, whose connections on a gateway's capture
        # may be most of the capture's: no scan of them per held row)
        ordered: dict[tuple, tuple[list, list, list]] = {}
        for k in set(keys):
            got = sorted(self.retries.get(k, ()), key=lambda x: (x[0], x[1]))
            ordered[k] = (got, [x[0] for x in got], other_client_after([x[4] for x in got]))
        for k in starts:
            starts[k].sort()
        for i, k in enumerate(keys):
            got, at_ts, other = ordered[k]
            t0, t1 = int(ts[i]), int(end[i])
            for x in range(bisect.bisect_right(at_ts, t0), len(got)):
                t, u, s, e, c, w = got[x]
                if t > t1:
                    break
                if not self.SAME_ISN or s == isn[i] >= 0:
                    # (another client's connection on the key in the window too: said so, not
                    # taken for this one's fallback as a fact)
                    shared = self.ENDPOINTS and other[x] >= 0 and got[other[x]][0] <= t1
                    found[i] = ((t, u, s, e, w, bool(shared)) if self.ENDPOINTS else (t, u, s, e)) \
                        if self.CARRY else (t, u)
                    break
            if last:
                continue
            # (a flow on the key still open that began before the retry found, or in the
            # window when none was: it may be the first retry, its state not known yet)
            st = starts.get(k, ())
            x = bisect.bisect_right(st, t0)
            if found[i] is not None:
                waiting = x < len(st) and st[x] < found[i][0]
            else:
                waiting = x < len(st) and st[x] <= t1
            go[i] = not waiting and (found[i] is not None or (clock is not None and end[i] < clock))
        if not go.any():
            self.held = parts
            return flows
        outs, stay, lo = [], [], 0
        for p in parts:
            g, lo = go[lo:lo + len(p)], lo + len(p)
            if not len(p):
                continue
            if g.all():
                outs.append(p)
            elif g.any():
                outs.append(p[g])
                stay.append(p[~g])
            else:
                stay.append(p)
        # (each part's rows with the column, a frame of their own: copy-on-write, pandas >= 3;
        # joined to the leaving rows at once, not first to each other)
        got, at = [found[i] for i in np.flatnonzero(go).tolist()], 0
        for j, o in enumerate(outs):
            outs[j] = o = o.copy(deep=False)
            o[self.COLUMN] = pd.Series(got[at:at + len(o)], dtype=object, index=o.index)
            at += len(o)
        self.count -= int(np.count_nonzero(go))
        for i in np.flatnonzero(go).tolist():
            self.keys[keys[i]] -= 1
            if not self.keys[keys[i]]:
                del self.keys[keys[i]]
                self.retries.pop(keys[i], None)
        self.held = stay
        return merge_in_time(flows, *outs)


class _OtherSource:
    """A UDP DNS query nothing answered and its answer from another address (reason
    ``wrong_source``: :func:`kscc_traffic.classify._note_other_source`) are judged together,
    also when the two flows would leave with different batches. A leaving UDP DNS flow whose
    packets all went one way (its :data:`~kscc_traffic.inspect.DNS_KEYS` column set: queries
    alone, or answers alone) is held back while a flow that may be its partner has not left:
    a UDP flow of the same client address and port to or from port 53 of another address whose
    packets so far all went one way, begun no later than
    :data:`~kscc_traffic.classify.OTHER_SOURCE_S` after the held flow's last packet, still open
    or held by another holder, and so are the rows of the same client whose windows overlap its
    own (chained: they leave together); it then leaves with that batch. No partner can begin later:
    a DNS flow leaves :data:`~kscc_traffic.flows.DNS_IDLE_NS` (10 s, more than
    ``OTHER_SOURCE_S``) after its last packet, when the capture's clock is past that. So a flow
    nothing may pair with leaves at once (a plain unanswered query: no change of the batches).
    The last batch releases every held row; at most :data:`MAX_HELD` rows are held (beyond,
    they leave without waiting: judged with the flows of their own batch)."""

    #: rows held at most (bounded memory: a client asking from one port again and again)
    MAX_HELD = 65_536

    def __init__(self) -> None:
        self.held: list[pd.DataFrame] = []      # rows held back (unfinished rows)

    @staticmethod
    def _one_way(flows: pd.DataFrame, mask: Optional[np.ndarray] = None) -> tuple[np.ndarray, list, np.ndarray]:
        """Per row of ``flows``: a UDP flow with port 53 on one side whose packets so far all went
        one way (bool; only among the rows of ``mask`` when given); its client (address, port:
        the side that is not port 53) and server address per row (the rows that are not such a
        flow: None); and the row's last packet plus :data:`~kscc_traffic.classify.OTHER_SOURCE_S` (ns)."""
        n = len(flows)
        if not n or not all(c in flows.columns for c in ("proto", "orig_h", "orig_p", "resp_h", "resp_p",
                                                         "orig_pkts", "resp_pkts", "ts_ns", "duration")):
            return np.zeros(n, bool), [None] * n, np.zeros(n, np.int64)
        c = arrays_of(flows, ("proto", "orig_h", "orig_p", "resp_h", "resp_p", "orig_pkts", "resp_pkts",
                              "ts_ns", "duration"))
        op, rp = c["orig_p"].astype(np.int64, copy=False), c["resp_p"].astype(np.int64, copy=False)
        opk, rpk = c["orig_pkts"].astype(np.int64, copy=False), c["resp_pkts"].astype(np.int64, copy=False)
        one = ((c["proto"].astype(object, copy=False) == "udp") & ((op == 53) | (rp == 53))
               & ((opk == 0) | (rpk == 0)))
        if mask is not None:
            one &= np.asarray(mask, bool)
        who: list = [None] * n
        at = np.flatnonzero(one)
        if len(at):
            oh, rh = c["orig_h"].astype(object, copy=False), c["resp_h"].astype(object, copy=False)
            for i in at.tolist():
                who[i] = ((rh[i], int(rp[i])), oh[i]) if rp[i] != 53 else ((oh[i], int(op[i])), rh[i])
        dur = np.nan_to_num(c["duration"].astype(float, copy=False), nan=0.0).clip(min=0.0)
        end = c["ts_ns"].astype(np.int64, copy=False) + (dur * 1e9).astype(np.int64) + int(OTHER_SOURCE_S * 1e9)
        return one, who, end

    def _waiting(self, rows: pd.DataFrame, pending: list, ways: Optional[tuple] = None) -> np.ndarray:
        """Per row of ``rows`` (held or leaving candidates), bool: a flow of ``pending`` (frames,
        or ``(frame, bool mask)``: the flows still open, and rows other holders keep back) may
        be its partner. ``ways``: :meth:`_one_way` of ``rows`` when found already."""
        out = np.zeros(len(rows), bool)
        one, who, end = ways if ways is not None else self._one_way(rows)
        clients = {who[i][0] for i in np.flatnonzero(one).tolist()}
        if not clients:
            return out
        # per client (address, port): the earliest pending flow's (start, server) and the
        # earliest of another server's (one pass, whatever the number of flows)
        first: dict[tuple, list] = {}
        for part in pending:
            o, mask = part if isinstance(part, tuple) else (part, None)
            if not len(o):
                continue
            o_one, o_who, _ = self._one_way(o, mask)
            ts = o["ts_ns"].to_numpy(np.int64)
            for j in np.flatnonzero(o_one).tolist():
                client, server = o_who[j]
                if client not in clients:
                    continue
                t = int(ts[j])
                best = first.setdefault(client, [None, None])
                if best[0] is None or t < best[0][0]:
                    if best[0] is not None and best[0][1] != server:
                        best[1] = best[0]
                    best[0] = (t, server)
                elif server != best[0][1] and (best[1] is None or t < best[1][0]):
                    best[1] = (t, server)
        for i in np.flatnonzero(one).tolist():
            best = first.get(who[i][0])
            if best is not None:
                near = best[0] if best[0][1] != who[i][1] else best[1]
                out[i] = near is not None and near[0] <= end[i]
        return out

    def _stuck(self, rows: pd.DataFrame, pending: list) -> np.ndarray:
        """Per row of ``rows`` (held rows and leaving candidates), bool: to hold back. A row a
        flow of ``pending`` may pair with (:meth:`_waiting`) is, and with it every row of the
        same client whose window (its first packet to its last plus
        :data:`~kscc_traffic.classify.OTHER_SOURCE_S`) overlaps its own, chained: rows that may
        pair leave together."""
        ways = self._one_way(rows)      # (once: _waiting reads it too)
        stuck = self._waiting(rows, pending, ways)
        one, who, end = ways
        ts = rows["ts_ns"].to_numpy(np.int64) if len(rows) else np.zeros(0, np.int64)
        groups: dict[tuple, list[int]] = {}
        for i in np.flatnonzero(one).tolist():
            groups.setdefault(who[i][0], []).append(i)
        for idx in groups.values():
            if len(idx) < 2:
                continue
            idx.sort(key=lambda i: (int(ts[i]), i))
            part, reach = [idx[0]], int(end[idx[0]])
            for i in idx[1:] + [None]:
                if i is not None and int(ts[i]) <= reach:
                    part.append(i)
                    reach = max(reach, int(end[i]))
                    continue
                if stuck[part].any():
                    stuck[part] = True
                if i is not None:
                    part, reach = [i], int(end[i])
        return stuck

    def hold(self, flows: pd.DataFrame, pending: list) -> pd.DataFrame:
        """``flows`` (the leaving rows, unfinished) less those to hold back (:meth:`_stuck`, with
        the rows held already), which are held (:meth:`release`)."""
        if not len(flows) or DNS_KEYS not in flows.columns:
            return flows
        cand = (flows[DNS_KEYS].to_numpy(dtype=object) != "") & (flows["proto"].to_numpy(dtype=object) == "udp")
        if not cand.any():
            return flows
        at = np.flatnonzero(cand)
        rows = flows.iloc[at]
        k = sum(len(h) for h in self.held)
        if k:
            rows = pd.concat([*self.held, rows], ignore_index=True)
        keep = np.zeros(len(flows), bool)
        keep[at[self._stuck(rows, pending)[k:]]] = True
        room = self.MAX_HELD - k
        if keep.any() and room > 0:
            keep[np.flatnonzero(keep)[room:]] = False
            self.held.append(flows[keep])
            return flows[~keep]
        return flows

    def release(self, flows: pd.DataFrame, pending: list, last: bool) -> pd.DataFrame:
        """``flows`` (leaving now) with the held rows no longer held back (:meth:`_stuck`; every
        one when ``last``); in time order of first packet."""
        if not self.held:
            return flows
        held = self.held[0].reset_index(drop=True) if len(self.held) == 1 else pd.concat(self.held, ignore_index=True)
        go = np.ones(len(held), bool) if last else ~self._stuck(held, pending)
        if not go.any():
            self.held = [held]
            return flows
        out = held[go]
        self.held = [held[~go]] if (~go).any() else []
        return merge_in_time(flows, out)


class _Cols:
    """A frame's columns as numpy arrays, each read once (a column of a wide frame costs tens of
    µs to read): ``c("orig_p")``; ports, counts and ``ts_ns`` int64, ``duration`` float, the
    others objects."""

    _TYPES = {"orig_p": np.int64, "resp_p": np.int64, "ts_ns": np.int64, "orig_pkts": np.int64,
              "resp_pkts": np.int64, "duration": float}

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.arrays: Optional[dict[str, np.ndarray]] = None
        self.got: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.frame)

    def has(self, *names: str) -> bool:
        """Whether the frame has every column of ``names``."""
        return all(n in self.frame.columns for n in names)

    def __call__(self, name: str) -> np.ndarray:
        if name not in self.got:
            if self.arrays is None:
                # (every column taken at once at the first read: ~1 µs each, flows.arrays_of)
                self.arrays = arrays_of(self.frame) if self.frame.columns.is_unique else {}
            a = self.arrays.get(name)
            self.got[name] = (self.frame[name].to_numpy(self._TYPES.get(name, object)) if a is None
                              else a.astype(self._TYPES.get(name, object), copy=False))
        return self.got[name]


def _among(values: np.ndarray, wanted: set) -> np.ndarray:
    """bool per item of ``values`` (an object array): in ``wanted`` (a set; pandas' isin costs
    ~2 ms to set up for a set of a few hundred addresses, this a few µs per item)."""
    return np.fromiter((v in wanted for v in values.tolist()), bool, len(values))


class _DnsRetries:
    """A failed lookup (an error answer, none, an ICMP error) that a lookup of the same name by
    the same client made good is ``ok`` (:func:`kscc_traffic.classify._note_dns_retries`), also
    when the two flows leave with different batches. A leaving DNS flow with a question and
    neither a NOERROR answer nor a usable address (a failed lookup as far as its columns tell:
    the judgement comes later) gets its :data:`~kscc_traffic.classify.DNS_RETRY` column from the
    lookups remembered (the one found; None: none). A lookup that may make it good has begun by
    then (it begins at most :data:`~kscc_traffic.classify.DNS_RETRY_S` after the failed flow's
    last packet, and a DNS flow leaves :data:`~kscc_traffic.flows.DNS_IDLE_NS`, no less, after
    it), but it may still be open: the failed flow is held back while a DNS flow of its client
    begun by then has not left (still open, or held by :class:`_OtherSource`), and leaves with
    the batch after. So a failed lookup with no other DNS flow of its client open leaves at once
    (no change of the batches). The lookups that got a usable address (their query and answer
    in the flow: answers alone, from another address than asked, which the client drops, are
    not counted) are remembered (client, name, first and last packet, uid, server, address
    types) when their client has a DNS flow still to leave (open, or held), until every flow
    still to leave began after their last packet. A query paired with its answer from another
    address (``wrong_source``) is not held (the pair leaves together: :class:`_OtherSource`).
    The last batch releases every held row; at most :data:`MAX_HELD` rows are held (beyond, they
    leave at once, with the lookups seen so far) and :data:`MAX_KEPT` lookups remembered
    (beyond, those that ended first are forgotten)."""

    #: rows held at most (bounded memory: a resolver down, every query failing, a busy client)
    MAX_HELD = 65_536
    #: lookups remembered at most (bounded memory: a long DNS flow still open keeps them all)
    MAX_KEPT = 1 << 18

    def __init__(self) -> None:
        self.held: list[pd.DataFrame] = []      # rows held back (unfinished rows)
        # the lookups remembered, column by column (numpy arrays: client, name, uid, server
        # objects; first and last packet ns, address types int64)
        self.kept: dict[str, np.ndarray] = {c: np.zeros(0, np.int64 if c in ("ts", "end", "fam") else object)
                                            for c in ("client", "name", "ts", "end", "uid", "server", "fam")}

    @staticmethod
    def _dns(c: "_Cols") -> np.ndarray:
        """Per row: a DNS flow (port 53 on either side, UDP or TCP)."""
        if not len(c) or not c.has("proto", "orig_p", "resp_p"):
            return np.zeros(len(c), bool)
        proto = c("proto")
        return ((c("resp_p") == 53) | (c("orig_p") == 53)) & ((proto == "udp") | (proto == "tcp"))

    @staticmethod
    def _clients(c: "_Cols", at: Optional[np.ndarray] = None) -> np.ndarray:
        """Per row (of ``at`` when given): its client as a DNS flow
        (:func:`~kscc_traffic.classify.dns_client`)."""
        op, rp, oh, rh = c("orig_p"), c("resp_p"), c("orig_h"), c("resp_h")
        if at is not None:
            op, rp, oh, rh = op[at], rp[at], oh[at], rh[at]
        return np.where((op == 53) & (rp != 53), rh, oh)

    @staticmethod
    def _ends(c: "_Cols", at: Optional[np.ndarray] = None) -> np.ndarray:
        """Per row (of ``at`` when given): its last packet (ns)."""
        dur, ts = c("duration"), c("ts_ns")
        if at is not None:
            dur, ts = dur[at], ts[at]
        return ts + (np.nan_to_num(dur, nan=0.0).clip(min=0.0) * 1e9).astype(np.int64)

    def _remember(self, c: "_Cols", dns: np.ndarray, clients: set) -> None:
        """Remember the lookups of the leaving rows ``c`` (``dns``: their DNS flows) that got a
        usable address in a flow holding their query too (as
        :func:`~kscc_traffic.classify._note_dns_retries` counts them: no answer alone, from
        another address than asked), of the ``clients`` only (those with a DNS flow still to
        leave: only theirs may be failed lookups these make good)."""
        if not clients:
            return
        query, answers = c("query"), c("dns_answers")
        at = np.flatnonzero((query != "") & (answers != "") & dns & (c("orig_pkts") > 0) & (c("resp_pkts") > 0))
        if not len(at):
            return
        client = self._clients(c, at)
        mine = _among(client, clients)
        at, client = at[mine], client[mine]
        if not len(at):
            return
        bits = np.array([address_families(a) for a in answers[at].tolist()], np.int64)
        at, client, bits = at[bits > 0], client[bits > 0], bits[bits > 0]
        if not len(at):
            return
        oh = c("orig_h")[at]
        new = {"client": client, "name": query[at],     # (as asked: compared case-insensitively when looked up)
               "ts": c("ts_ns")[at], "end": self._ends(c, at), "uid": c("uid")[at],
               "server": np.where(client == oh, c("resp_h")[at], oh), "fam": bits}
        self.kept = {k: np.concatenate([self.kept[k], new[k]]) for k in self.kept}
        if len(self.kept["end"]) > self.MAX_KEPT:
            keep = np.sort(np.argsort(self.kept["end"], kind="stable")[-self.MAX_KEPT:])
            self.kept = {k: v[keep] for k, v in self.kept.items()}

    @staticmethod
    def _failed(c: "_Cols", dns: np.ndarray, paired: np.ndarray) -> np.ndarray:
        """Per leaving row, bool: a failed lookup as far as its columns tell (a DNS flow with a
        question, no NOERROR answer, no usable address), not one of ``paired``."""
        out = (c("query") != "") & dns & ~paired
        if out.any():
            out &= c("dns_rcode") != "NOERROR"
        at = np.flatnonzero(out)
        if len(at):
            out[at] = [not (isinstance(a, str) and usable_address(a)) for a in c("dns_answers")[at].tolist()]
        return out

    def _retries(self, c: "_Cols", at: np.ndarray) -> list:
        """Per row ``at`` (positions) of ``c`` (failed lookups leaving now): the remembered
        lookup that makes it good (:func:`~kscc_traffic.classify.pick_dns_retry`), or None."""
        k = self.kept
        if not len(k["end"]):
            return [None] * len(at)
        client = self._clients(c, at)
        names = [str(q).lower().rstrip(".") for q in c("query")[at].tolist()]
        near: dict[tuple, list] = {}
        sel = np.flatnonzero(_among(k["client"], set(client.tolist())))
        for cl, n, t, e, u, s, f in zip(*(k[x][sel].tolist() for x in ("client", "name", "ts", "end", "uid",
                                                                        "server", "fam"))):
            near.setdefault((cl, str(n).lower().rstrip(".")), []).append((int(e), str(u), int(t), int(f), s))
        ts, end = c("ts_ns")[at], self._ends(c, at)
        asked = c("dns_asked")[at].tolist() if c.has("dns_asked") else [None] * len(at)
        keys = c(DNS_KEYS)[at].tolist() if c.has(DNS_KEYS) else [""] * len(at)
        out = []
        for i, (cl, n, u) in enumerate(zip(client.tolist(), names, c("uid")[at].tolist())):
            got = near.get((cl, n))
            out.append(pick_dns_retry(got, int(ts[i]), int(end[i]), str(u), asked_families(asked[i], keys[i]))
                       if got else None)
        return out

    def _pending(self, pending: list) -> tuple[np.ndarray, np.ndarray]:
        """(clients, first packets ns) of the DNS flows of ``pending`` (frames, or ``(frame,
        bool mask)``): those that may still leave later."""
        clients, starts = [], []
        for part in pending:
            o, mask = part if isinstance(part, tuple) else (part, None)
            if not len(o):
                continue
            c = _Cols(o)
            sel = self._dns(c)
            if mask is not None:
                sel &= np.asarray(mask, bool)
            at = np.flatnonzero(sel)
            if len(at):
                clients.append(self._clients(c, at))
                starts.append(c("ts_ns")[at])
        if not clients:
            return np.zeros(0, object), np.zeros(0, np.int64)
        return np.concatenate(clients), np.concatenate(starts)

    def _waiting(self, c: "_Cols", at: np.ndarray, pend: tuple) -> np.ndarray:
        """Per row ``at`` (positions) of ``c`` (failed lookups), bool: a DNS flow of ``pend``
        (:meth:`_pending`) of its client begun at most :data:`~kscc_traffic.classify.DNS_RETRY_S`
        after its last packet: it may make it good once it leaves."""
        out = np.zeros(len(at), bool)
        if not len(at) or not len(pend[0]):
            return out
        client = self._clients(c, at)
        until = self._ends(c, at) + int(DNS_RETRY_S * 1e9)
        mine = _among(pend[0], set(client.tolist()))
        first: dict = {}
        for cl, t in zip(pend[0][mine].tolist(), pend[1][mine].tolist()):
            if cl not in first or t < first[cl]:
                first[cl] = t
        for i, cl in enumerate(client.tolist()):
            t = first.get(cl)
            out[i] = t is not None and t <= until[i]
        return out

    def step(self, flows: pd.DataFrame, pending: list, clock: Optional[int], last: bool) -> pd.DataFrame:
        """``flows`` (the leaving rows, unfinished), the failed lookups among them with their
        :data:`~kscc_traffic.classify.DNS_RETRY` filled in (where a lookup made them good), less
        those a lookup still open may make good, which are held; with the held rows no such
        lookup can come for any more (every one when ``last``); in time order of first packet
        when rows were held or released. ``pending``: the flows that may still leave later
        (frames, or ``(frame, bool mask)``: the flows staying open, the rows :class:`_OtherSource`
        holds); ``clock``: the capture's clock (ns; None: nothing forgotten)."""
        c = _Cols(flows)
        fresh = np.zeros(len(flows), bool)
        dns = None
        if len(flows) and c.has("query", "dns_answers", "dns_rcode"):
            dns = self._dns(c)
            if dns.any():
                paired = np.zeros(len(flows), bool)
                if c.has(DNS_KEYS) and ((c(DNS_KEYS) != "") & (c("orig_pkts") == 0)).any():
                    # (answers alone in a flow: maybe from another address than asked, paired with
                    # their query, wrong_source: the query judged with its answer, not held)
                    dropped = wrong_source_answers(flows)
                    if dropped.any():
                        queries = ((c(DNS_KEYS) != "") & (c("proto") == "udp") & (c("resp_p") == 53)
                                   & (c("resp_pkts") == 0))
                        paired[list(other_source_answers(flows, queries))] = True
                fresh = self._failed(c, dns, paired)
            else:
                dns = None
        pend = self._pending(pending) if not last else (np.zeros(0, object), np.zeros(0, np.int64))
        at = np.flatnonzero(fresh)
        hold = np.zeros(len(flows), bool)
        if len(at) and not last:
            room = self.MAX_HELD - sum(len(h) for h in self.held)
            wait = np.flatnonzero(self._waiting(c, at, pend))[:max(room, 0)]
            hold[at[wait]] = True
        if dns is not None and not last:
            # (the lookups of clients with a DNS flow still to leave, a held one among them)
            clients = set(pend[0].tolist())
            for h in self.held:
                clients.update(self._clients(_Cols(h)).tolist())
            if hold.any():
                clients.update(self._clients(c, np.flatnonzero(hold)).tolist())
            self._remember(c, dns, clients)
        out = flows
        if hold.any():
            self.held.append(flows[hold])
            out = flows[~hold]
            fresh = fresh[~hold]
        released = None
        if self.held:
            rows = self.held[0].reset_index(drop=True) if len(self.held) == 1 else pd.concat(self.held,
                                                                                         ignore_index=True)
            rc = _Cols(rows)
            go = np.ones(len(rows), bool) if last else ~self._waiting(rc, np.arange(len(rows)), pend)
            self.held = [rows[~go]] if (~go).any() else []
            if go.any():
                released = rows[go]     # (a new frame: copy-on-write, pandas >= 3)
                released[DNS_RETRY] = pd.Series(self._retries(rc, np.flatnonzero(go)), dtype=object,
                                                index=released.index)
        at = np.flatnonzero(fresh)
        if len(at):
            found = self._retries(_Cols(out) if out is not flows else c, at)
            if any(r is not None for r in found):
                col = np.full(len(out), None, object)
                col[at] = found
                out = out.assign(**{DNS_RETRY: col})
        self._forget(pend, clock)
        if released is not None:
            out = pd.concat([out, released], ignore_index=True) if len(out) else released.reset_index(drop=True)
        if released is not None or hold.any():
            out = out.sort_values("ts_ns", kind="stable").reset_index(drop=True)
        return out

    def _forget(self, pend: tuple, clock: Optional[int]) -> None:
        """Forget the remembered lookups that ended before every flow that may still leave
        began: the DNS flows of ``pend`` (:meth:`_pending`) and the rows held, and the capture's
        ``clock`` (later flows begin after it; None: nothing forgotten)."""
        if clock is None or not len(self.kept["end"]):
            return
        bound = min([int(clock), *([int(pend[1].min())] if len(pend[1]) else []),
                     *(int(h["ts_ns"].min()) for h in self.held if len(h))])
        keep = self.kept["end"] >= bound
        if not keep.all():
            self.kept = {c: v[keep] for c, v in self.kept.items()}


class _RefusedRetries(_StaleRetries):
    """A SYN answered by a TCP reset (Zeek's ``REJ``) that a connection of the same client to the
    same server address and port followed is a passing refusal
    (:func:`kscc_traffic.classify.refused_retries`), also when the two flows leave with
    different batches: a leaving ``REJ`` flow is held back as :class:`_StaleRetries` holds a
    stale connection's reset attempt, keyed by client, server address and port (any source
    port: an application's retry is a new connect()), for
    :data:`~kscc_traffic.classify.REFUSED_RETRY_S`, its
    :data:`~kscc_traffic.classify.REFUSED_RETRY` column then giving ``(ts_ns, uid)`` of the
    first such connection that connected (None: none)."""

    KEY = ("orig_h", "resp_h", "resp_p", VLAN_STACK)    # (the whole VLAN stack, as _StaleRetries)
    PORT = 2
    WINDOW_S = REFUSED_RETRY_S
    COLUMN = REFUSED_RETRY
    SAME_ISN = False

    def _holds(self, flows: pd.DataFrame) -> Optional[np.ndarray]:
        """Per leaving row, bool: held (a TCP flow in Zeek's ``REJ`` state)."""
        if "conn_state" not in flows.columns:
            return None
        return (flows["conn_state"].to_numpy(dtype=object) == "REJ") & (flows["proto"].to_numpy(dtype=object) == "tcp")


class _FamilyFallbacks(_StaleRetries):
    """An IPv6 connection attempt refused by a TCP reset (Zeek's ``REJ``) that a connection over
    IPv4 to the same server name and port followed is a dual-stack client's fallback
    (:func:`kscc_traffic.classify.family_fallbacks`), also when the two flows leave with
    different batches: a leaving ``REJ`` flow over IPv6 with a server name is held back as
    :class:`_StaleRetries` holds a stale connection's reset attempt, keyed by server name (lower
    case: :func:`~kscc_traffic.classify.fallback_name`), port and VLAN stack, for
    :data:`~kscc_traffic.classify.FALLBACK_S`, its :data:`~kscc_traffic.classify.FALLBACK` column
    then giving ``(ts_ns, uid, resp_ttl, resp_ttl_out)`` of the first such IPv4 connection that
    connected (None: none; ``resp_ttl``, its SYN-ACK's TTL, which family_fallbacks compares the
    reset's hop limit with; ``resp_ttl_out``, that SYN-ACK's as it left the capturing host,
    :data:`~kscc_traffic.flows.RESP_TTL_OUT`, compared with the reset's so where both left it).
    An IPv4 connection still open is waited for when the analysis has named it (from DNS, as
    every flow still open is); one named only by its own TLS or HTTP once it leaves, with no DNS
    answer for it in the capture, is not (the refused attempt, named by DNS alone, then had an
    answer naming both addresses in most captures)."""

    KEY = ("server_name", "resp_p", VLAN_STACK)
    PORT = 1
    WINDOW_S = FALLBACK_S
    COLUMN = FALLBACK
    SAME_ISN = False
    ALSO = ("resp_h",)
    THIRD = RESP_TTL    # (the fallback's SYN-ACK TTL: family_fallbacks compares the reset's with it)
    FOURTH = RESP_TTL_OUT   # (... and as it left the capturing host: a router's -i any)
    CARRY = True
    ENDPOINTS = True    # (the detail names it as the table shows it; another client's in the window told)

    #: connections remembered on a key beyond twice the attempts held or expected on it (plus this)
    #: before the ones no such attempt can take first are forgotten (:meth:`_prune`)
    SLACK = 64

    def __init__(self) -> None:
        super().__init__()
        self.expect: dict[tuple, int] = {}      # keys of the rows other holders keep back (hold)
        self.expect_ts: dict[tuple, list[int]] = {}     # ... their first packets (ns), per key
        self.pruned = 0                         # connections forgotten by _prune (none could be taken)

    @classmethod
    def _key(cls, values) -> tuple:
        name, port, stack = values
        return (fallback_name(name), int(port), int(stack))

    def hold(self, flows: pd.DataFrame, seen: Optional[pd.DataFrame] = None,
             elsewhere: Iterable[pd.DataFrame] = ()) -> pd.DataFrame:
        """As :meth:`_StaleRetries.hold`; ``elsewhere``: the frames of rows other holders keep
        back (a refused attempt waiting for its reset's hint or its retry): their IPv6 ``REJ``
        rows reach this holder later, so the IPv4 connections leaving meanwhile on their keys are
        remembered too (the fallback may leave before the refused attempt reaches this one)."""
        expect: dict[tuple, int] = {}
        expect_ts: dict[tuple, list[int]] = {}
        for part in elsewhere:
            keep = self._holds(part) if len(part) and all(c in part.columns for c in (*self.KEY, "ts_ns")) else None
            at = np.flatnonzero(keep) if keep is not None else ()
            if len(at):
                cols = arrays_of(part, [*self.KEY, "ts_ns"])
                for v, t in zip(zip(*(cols[c][at].tolist() for c in self.KEY)), cols["ts_ns"][at].tolist()):
                    k = self._key(v)
                    expect[k] = 0
                    expect_ts.setdefault(k, []).append(int(t))
        self.expect, self.expect_ts = expect, expect_ts
        try:
            return super().hold(flows, seen)
        finally:
            self.expect, self.expect_ts = {}, {}

    def _remember(self, seen: pd.DataFrame) -> None:
        """As :meth:`_StaleRetries._remember`, for the keys of the rows held here and of those
        other holders keep back (:attr:`expect`)."""
        if not self.expect:
            super()._remember(seen)
        else:
            saved = self.keys
            self.keys = {**self.expect, **saved}
            try:
                super()._remember(seen)
            finally:
                self.keys = saved
        self._prune()

    def _prune(self) -> None:
        """Forget, on each key whose remembered connections (:attr:`retries`) outnumber twice
        the attempts held (:attr:`held`) or expected (:attr:`expect_ts`) on it plus
        :data:`SLACK`, the connections none of those attempts can take: only the first one
        that began after an attempt began (in order of ``(ts_ns, uid)``, as :meth:`release` takes
        it) can be its fallback. A refused attempt waits here (or in another holder, expected)
        to the capture's end when its IPv6 address sends nothing else, and a gateway's clients
        connect to that name all along: without this, every one of those connections was kept
        (review s59 #8). An attempt neither held nor expected has left this holder, or has not
        left the flow table yet: it began before its reset, which comes before the fallback's
        handshake ends, so it leaves no later than the connections that can be its fallback, with
        them or before (as :meth:`_StaleRetries._remember` assumes for every key). Counted in
        :attr:`pruned`."""
        big = [k for k, got in self.retries.items()
               if len(got) > 2 * (self.keys.get(k, 0) + len(self.expect_ts.get(k, ()))) + self.SLACK]
        if not big:
            return
        starts: dict[tuple, list[int]] = {k: list(self.expect_ts.get(k, ())) for k in big}
        for part in self.held:
            if not len(part):
                continue
            cols = arrays_of(part, [*self.KEY, "ts_ns"])
            for v, t in zip(zip(*(cols[c].tolist() for c in self.KEY)), cols["ts_ns"].tolist()):
                k = self._key(v)
                if k in starts:
                    starts[k].append(int(t))
        for k in big:
            got = sorted(self.retries[k], key=lambda x: (x[0], x[1]))
            at_ts = [x[0] for x in got]
            other = other_client_after([x[4] for x in got])
            first = {i for i in (bisect.bisect_right(at_ts, t) for t in starts[k]) if i < len(got)}
            # (and the first of another client after each: what tells a capture of several clients)
            keep = sorted(first | {other[i] for i in first if other[i] >= 0})
            self.pruned += len(got) - len(keep)
            self.retries[k] = [got[i] for i in keep]

    def _near(self, flows: pd.DataFrame, cols: Optional[Mapping] = None) -> np.ndarray:
        """Per row of ``flows``, bool: over IPv4 (``resp_h`` without a colon), on a held row's port
        and with a held row's server name (the candidates for a fallback)."""
        ports = np.fromiter({k[self.PORT] for k in self.keys}, np.int64)
        col = cols["resp_p"] if cols is not None else flows["resp_p"].to_numpy()
        near = np.isin(col, ports, kind="sort" if col.dtype.kind in "iu" else None)
        at = np.flatnonzero(near)
        if len(at):
            names = {k[0] for k in self.keys}
            rh = (cols["resp_h"] if cols is not None else flows["resp_h"].to_numpy(dtype=object))[at].tolist()
            sn = (cols["server_name"] if cols is not None else flows["server_name"].to_numpy(dtype=object))[at].tolist()
            near[at] = np.fromiter((":" not in str(h) and fallback_name(n) in names for h, n in zip(rh, sn)),
                                   bool, len(at))
        return near

    def _holds(self, flows: pd.DataFrame) -> Optional[np.ndarray]:
        """Per leaving row, bool: held (a TCP flow over IPv6 in Zeek's ``REJ`` state, or ``S0``: an
        attempt nothing answered, whose fallback is told too, with a server name)."""
        if any(c not in flows.columns for c in ("conn_state", "resp_h", "server_name")):
            return None
        state = flows["conn_state"].to_numpy(dtype=object)
        out = ((state == "REJ") | (state == "S0")) & (flows["proto"].to_numpy(dtype=object) == "tcp")
        at = np.flatnonzero(out)
        if len(at):
            rh = flows["resp_h"].to_numpy(dtype=object)[at].tolist()
            sn = flows["server_name"].to_numpy(dtype=object)[at].tolist()
            out[at] = [":" in str(h) and bool(fallback_name(n)) for h, n in zip(rh, sn)]
        return out


def _closed_and_idle(flows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per flow: whether it is a closed TCP connection (FIN both ways, or RST, in its history),
    and its protocol's inactivity timeout (ns; a DNS flow's :data:`~kscc_traffic.flows.DNS_IDLE_NS`)."""
    # (a FIN+RST packet's letter I/i is both, as build_flows' split reads its flags:
    # flows.history_plain)
    # (judged once per distinct history: most flows of a batch share a few)
    history = flows["history"].to_numpy(dtype=object)
    found = _str_codes(history)     # (compiled when built: the same codes as pandas for str)
    h_codes, h_names = found if found is not None else pd.factorize(history, use_na_sentinel=False)
    plain = [history_plain(str(h)) for h in h_names.tolist()]
    closed = np.array([("R" in h or "r" in h or ("F" in h and "f" in h)) for h in plain], bool)[h_codes] \
        if len(plain) else np.zeros(len(h_codes), bool)
    hist = h_codes
    proto = flows["proto"].to_numpy(dtype=object)
    tcp = proto == "tcp"
    # (numpy on the few distinct protocol names: pandas' map/fillna cost more than the rest)
    found = _str_codes(proto)
    codes, names = found if found is not None else pd.factorize(proto)
    by_name = _idle_by_name()
    per_name = np.array([by_name.get(p, DEFAULT_IDLE_NS) for p in names.tolist()] + [DEFAULT_IDLE_NS], np.int64)
    idle = per_name[codes]          # (code -1, a missing name: the last entry, the default)
    if len(hist):
        dns = dns_flows(np.where(proto == "udp", UDP, 0), flows["orig_p"].to_numpy(np.int64),
                        flows["resp_p"].to_numpy(np.int64))
        idle[dns] = DNS_IDLE_NS
    return (tcp & closed) if len(hist) else np.zeros(0, bool), idle


def _summarise(batch: Packets, b, rows: np.ndarray, weights: np.ndarray, closed: np.ndarray,
               idle: np.ndarray, tw_extra: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Of the packets ``rows`` (those of flows still open), the ones to carry to the next batch,
    which of those can go without their payload bytes, the carried packets' weights
    (:func:`~kscc_traffic.analyze.analyze_batch`), and which of them are duplicates (dropped
    ones at a flow's last timestamp, later than its last packet: the next packet may be a copy of
    them; weight 0, not among ``rows``), and the carried packets' ``tw_extra`` (Zeek's ``W`` and
    ``T`` events after each, no longer carried: :func:`~kscc_traffic.flows.build_flows`; the
    packets' own so far given as ``tw_extra``, (len(batch), 2), None: none): the others' counts (and weights) are added
    to the weights of the first carried packet of their flow and direction that is not an ICMP
    error, so the flow's row comes out the same. Kept, per flow, everything a flow rule or a
    column reads:

    - the first :data:`HEAD_PACKETS` packets, and the first packet of each direction;
    - the first packet of each Zeek history event per direction (S H A D F R: history, state,
      orientation), the packets Zeek's endpoint state machine reads
      (:func:`~kscc_traffic.flows.state_event_rows`: conn_state), the last SYN and the last
      SYN-ACK per direction (port reuse; :func:`~kscc_traffic.flows._synack_reuse`) and the first packet of each direction after each SYN (simultaneous open),
      the first link-layer broadcast, the first packet that is not a fragment never
      reassembled (:func:`kscc_traffic.inspect._unreassembled`);
    - the first :data:`~kscc_traffic.streams.MAX_SEGMENTS` packets with payload per direction
      (what stream reassembly, TLS and HTTP read), and one more (it tells that the direction had
      more than those: ``Streams.cut``); as many TCP data segments per direction, captured or not
      (what ``inspect._went_on`` reads);
    - the first and last packet of every time slot of half the idle timeout (:data:`BUCKET_NS`
      once a TCP connection closed), so no gap between kept packets is longer than one that was
      there (idle timeouts, the close delay), and the flow's last packet (duration), every
      packet at its last timestamp and at each direction's last timestamp with its payload (the
      next packets may be copies of them: :func:`~kscc_traffic.flows.build_flows` compares a
      packet with the one before it in its direction);
    - ICMP errors attached to the flow, and each direction's first packet and first packet
      with payload after each (:func:`kscc_traffic.unreachable.packet_evidence`);
    - the DNS response datagrams that ``dns_rcode`` and ``dns_answers`` read, whatever came
      before them (:func:`kscc_traffic.inspect.dns_response_rows`: the flow's first response,
      its first that is not NOERROR, and those that bring an address first; at most
      :data:`~kscc_traffic.inspect.MAX_DNS_ANSWERS` + 2);
    - the first :data:`AFTER_CLOSE` packets after a TCP connection closed (a new connection on
      the same 5-tuple, whose SYN may come late).
    - each zero-window and retransmission event (Zeek's ``W``, ``T``:
      :func:`~kscc_traffic.flows.tw_codes`) that writes its letter, and for each retransmission
      the packet that set its side's last sequence number before it; the events not kept are
      counted on the kept event of their kind and direction before them (``tw_extra``).
    - for TCP, the packet with the furthest sequence end and the one with the furthest
      acknowledgement per direction, and every packet at a direction's first timestamp (what
      the byte counts read: :func:`~kscc_traffic.flows.seq_extents`; the furthest end again
      among the packets not sent after their side's own RST, :func:`~kscc_traffic.flows.after_own_reset`),
      and each direction's
      first acknowledgement (the other direction's start when none of its packets was
      captured), and its last data packet and last FIN without data (a retransmission at the
      end: ``inspect._stalled``); and each direction's
      first packet after the other direction's first reaching its furthest sequence end, and
      after its first data segment reaching its furthest data byte (a duplicate
      acknowledgement there tells ``inspect._mtu_holes`` that later bytes arrived).

    TCP payload bytes are kept only for the first MAX_SEGMENTS + 1 payload packets per direction
    and the packets at the flow's last timestamp. So a flow costs at most about two packets per BUCKET_NS after
    its start per slot, whatever its rate (a bulk transfer, a long-lived agent connection).
    """
    from .flows import (after_own_reset, first_rows, history_codes, history_events, history_plen, seq_extents,
                        state_event_rows)
    from .streams import MAX_SEGMENTS
    n = len(rows)
    if n == 0:
        return rows, np.zeros(0, bool), np.zeros((0, 3), np.int64), np.zeros(0, bool), np.zeros((0, 2), np.int64)
    c = batch.cols
    f = b.pkt_flow[rows]
    dns_resp = dns_response_rows(batch, rows, f)   # (in capture order, before the sort)
    ts = c["ts_ns"][rows]
    o = np.lexsort((ts, f))
    rows, f, ts, dns_resp = rows[o], f[o], ts[o], dns_resp[o]
    d = (~b.pkt_from_orig[rows]).astype(np.int64)
    proto = c["proto"][rows]
    tcp = proto == TCP
    err = (proto == ICMP) | (proto == ICMP6)
    if err.any():   # (an ICMP error attached to a TCP/UDP flow; the flows' protocols compared once each)
        fp = b.flows["proto"].to_numpy(dtype=object)
        err &= ((fp == "tcp") | (fp == "udp"))[f]
    start = np.r_[True, f[1:] != f[:-1]]
    end = np.r_[f[1:] != f[:-1], True]
    idx = np.arange(n)
    rank = idx - np.maximum.accumulate(np.where(start, idx, 0))
    keep = (rank < HEAD_PACKETS) | end | err | dns_resp
    if err.any():
        # each direction's first packet, and first packet with payload, after each ICMP error
        # (unreachable.packet_evidence: a path-MTU error its sender ignored)
        plen_ = c["payload_len"][rows]
        for dd in (0, 1):
            for m in (~err & (d == dd), ~err & (d == dd) & (plen_ > 0)):
                mpos = np.flatnonzero(m)
                for i in np.flatnonzero(err).tolist():
                    k = int(np.searchsorted(mpos, i, "right"))
                    while k < len(mpos) and f[mpos[k]] == f[i] and ts[mpos[k]] <= ts[i]:
                        k += 1
                    if k < len(mpos) and f[mpos[k]] == f[i]:
                        keep[mpos[k]] = True

    def first_of(key: np.ndarray, mask: np.ndarray) -> np.ndarray:
        out = np.zeros(n, bool)
        at = np.nonzero(mask)[0]
        if len(at):
            out[first_rows(key, at)[1]] = True
        return out

    fd = f * 2 + d
    keep |= first_of(fd, np.ones(n, bool))
    stand_in = first_of(fd, ~err)   # carries the counts of its flow and direction's packets that go
    keep |= stand_in
    hplen = history_plen(proto, c["payload_len"][rows])
    ev = history_events(c["tcp_flags"][rows], tcp, hplen)
    for j in range(ev.shape[1]):
        keep |= first_of(fd, ev[:, j])
    # the packets that write a history letter again (Zeek's repeated S/F/R: flows.history_codes)
    keep |= history_codes(f, d == 0, c["tcp_flags"][rows], tcp, c["seq"][rows], hplen)[1]
    # the packets Zeek's endpoint state machine reads (conn_state)
    keep |= state_event_rows(f, d == 0, c["tcp_flags"][rows], tcp, c["payload_len"][rows])
    keep |= first_of(fd, c["l2_bcast"][rows])
    if "l2_out" in c:   # (a datagram the capturing host sent: flows._sent_cast)
        keep |= first_of(fd, c["l2_out"][rows] & ~c["l2_bcast"][rows])
    if "unreassembled" in c:
        # each direction's first datagram that arrived whole, and first TCP data segment that did
        # (inspect._unreassembled)
        frag = c["unreassembled"][rows]
        if frag.any():
            keep |= first_of(fd, ~frag)
            keep |= first_of(fd, ~frag & tcp & (c["payload_len"][rows] > 0))
    # every packet after a TCP connection closed (FIN both ways, or RST), up to AFTER_CLOSE per
    # flow: a new connection on the same 5-tuple whose SYN is written late starts there
    fin, rst = ev[:, 4], ev[:, 5]
    whole = np.zeros(n, bool)       # kept with their payload whatever their rank
    if fin.any() or rst.any():
        nf = int(f.max()) + 1
        never = np.iinfo(np.int64).max
        t_rst = np.full(nf, never, np.int64)
        np.minimum.at(t_rst, f[rst], ts[rst])
        t_fin = np.full((nf, 2), never, np.int64)
        np.minimum.at(t_fin, (f[fin], d[fin]), ts[fin])
        close_t = np.minimum(t_rst, t_fin.max(axis=1))
        after = np.nonzero(ts > close_t[f])[0]
        if len(after):
            g = f[after]   # rows are in (flow, time) order: rank within the flow's after-close rows
            gs = np.r_[True, g[1:] != g[:-1]]
            k = np.arange(len(after))
            whole[after[(k - np.maximum.accumulate(np.where(gs, k, 0))) < AFTER_CLOSE]] = True
            keep |= whole
    # every packet at the flow's last timestamp (ICMP errors aside: not in build_flows' order),
    # with its payload: the next batch's packets are compared with the one before them in flow
    # order (flows.build_flows: a copy of it?), and among packets of one timestamp that order is
    # by their content
    # (and likewise every packet at each direction's last timestamp: a copy is compared with the
    # packet before it in its direction, which the other side's answer may have followed)
    nf = int(f.max()) + 1
    last_t = np.full(nf, np.iinfo(np.int64).min, np.int64)
    np.maximum.at(last_t, f[~err], ts[~err])
    last_td = np.full(2 * nf, np.iinfo(np.int64).min, np.int64)
    np.maximum.at(last_td, fd[~err], ts[~err])
    whole |= ~err & ((ts == last_t[f]) | (ts == last_td[fd]))
    keep |= whole
    # and the duplicates dropped at their flow and direction's last timestamp when later than
    # its last packet (a packet written again and again: each copy is one of the copy before it)
    copies = np.zeros(0, np.int64)
    if b.dup_of is not None:
        copies = np.flatnonzero(b.dup_of >= 0)
        fo = b.pkt_flow[b.dup_of[copies]]
        open_ = np.zeros(max(nf, len(b.flows)), bool)
        open_[f] = True
        mine = (fo >= 0) & open_[np.maximum(fo, 0)]
        copies, fo = copies[mine], fo[mine]
        if len(copies):
            t_cp = c["ts_ns"][copies]
            fdo = fo * 2 + (~b.pkt_from_orig[b.dup_of[copies]]).astype(np.int64)
            top = np.full(2 * max(nf, int(fo.max()) + 1), np.iinfo(np.int64).min, np.int64)
            top[:len(last_td)] = last_td
            np.maximum.at(top, fdo, t_cp)
            copies = copies[t_cp == top[fdo]]
    if tcp.any():
        # what the TCP byte counts read (flows.seq_extents): the furthest sequence end and
        # acknowledgement per direction, and the packets that set a direction's start when it
        # has no SYN (all those at its first timestamp: the flow order breaks such ties)
        s_end, s_ack = seq_extents(f, d == 0, c["tcp_flags"][rows], tcp, c["seq"][rows], c["ack"][rows],
                                   c["payload_len"][rows])
        # (and the furthest end that counts in the byte sizes: not after the side's own RST,
        # flows.after_own_reset, which a furthest end sent after it may hide)
        s_count = np.where(after_own_reset(f, d == 0, c["tcp_flags"][rows], tcp, c["payload_len"][rows]), -1, s_end)
        top = np.empty(int(fd.max()) + 1, np.int64)
        for v in (s_end, s_ack, s_count):
            top.fill(-1)
            np.maximum.at(top, fd, v)
            keep |= first_of(fd, (v >= 0) & (v == top[fd]))
        first_t = np.full(len(top), np.iinfo(np.int64).max, np.int64)
        np.minimum.at(first_t, fd, ts)
        keep |= tcp & (ts == first_t[fd])
        # each direction's first acknowledgement: where the other direction starts when none of
        # its packets was captured (seq_extents; inspect's acked_unseen)
        fl_ = c["tcp_flags"][rows].astype(np.int64)
        keep |= first_of(fd, tcp & ((fl_ & ACK) != 0) & ((fl_ & RST) == 0) & (c["ack"][rows] != 0))
        # each direction's last data packet and last FIN without data (inspect._stalled: bytes
        # sent again at the end, or new ones)
        data_ = c["payload_len"][rows] > 0
        for occ in (data_, ~data_ & ((fl_ & FIN) != 0)):
            at = np.flatnonzero(occ & (s_end >= 0))[::-1]
            if len(at):
                keep[first_rows(fd, at)[1]] = True
        # each direction's first packet after the other's first reaching its furthest sequence
        # end (inspect._mtu_holes: a duplicate acknowledgement, later bytes arrived)
        top_end = np.full(len(top) + 1, -1, np.int64)
        np.maximum.at(top_end, fd, s_end)
        reach = np.full(len(top_end), n, np.int64)
        at = (s_end >= 0) & (s_end == top_end[fd])
        np.minimum.at(reach, fd[at], idx[at])
        keep |= first_of(fd, tcp & (idx > reach[fd ^ 1]))
        # and after the other's first data segment reaching its furthest data byte (the
        # same where it sent no FIN after it; inspect._mtu_holes, a sender that gave up)
        d_end = np.where((c["payload_len"][rows] > 0) & (s_end >= 0),
                         s_end - ((fl_ & FIN) != 0), -1)
        top_end.fill(-1)
        np.maximum.at(top_end, fd, d_end)
        reach.fill(n)
        at = (d_end >= 0) & (d_end == top_end[fd])
        np.minimum.at(reach, fd[at], idx[at])
        keep |= first_of(fd, tcp & (idx > reach[fd ^ 1]))
        keep |= first_of(fd, at)        # (that segment itself: inspect._stalled, a FIN may reach further)
    if ev[:, 1].any():  # last SYN-ACK per direction: a SYN-ACK at another number may start a flow
        # (flows._synack_reuse)
        keep[first_rows(fd, np.nonzero(ev[:, 1])[0][::-1])[1]] = True
    syn = ev[:, 0]
    if syn.any():  # last SYN per direction: first_of on the reversed order
        at = np.nonzero(syn)[0][::-1]
        keep[first_rows(fd, at)[1]] = True
        # the first packet of each direction after each SYN: a SYN from the side that sent
        # nothing since the SYN before it is a simultaneous open, not a new connection
        # (flows._simultaneous_open); rows are in (flow, time) order, so a row's last SYN is in
        # its flow or it is after its flow's first packets (kept anyway)
        since = np.maximum.accumulate(np.where(syn, idx, -1))
        keep |= first_of((since + 1) * 2 + d, tcp)
    def rank_in(mask: np.ndarray) -> np.ndarray:
        """Per row, its rank among the ``mask`` rows of its flow and direction, in time order
        (MAX_SEGMENTS where not ``mask``)."""
        rank = np.full(n, MAX_SEGMENTS, np.int64)
        at = np.nonzero(mask)[0]
        if len(at):
            g = fd[at]
            oo = np.lexsort((at, g))
            gg = g[oo]
            gs = np.r_[True, gg[1:] != gg[:-1]]
            k = np.arange(len(oo))
            rank[at[oo]] = k - np.maximum.accumulate(np.where(gs, k, 0))
        return rank

    pay = content_rows(c, rows)
    pay_rank = rank_in(pay)
    # (one more than the streams read: it tells them the direction had more, Streams.cut)
    keep |= pay & (pay_rank <= MAX_SEGMENTS)
    # and as many TCP data segments, captured or not (what inspect._went_on reads: they differ
    # where the snaplen left some without a byte)
    data = tcp & (c["payload_len"][rows] > 0)
    if (data & ~pay).any():
        keep |= data & (rank_in(data) <= MAX_SEGMENTS)
    # time slots: BUCKET_NS once a TCP connection closed (the close delay counts from then),
    # else half the protocol's idle timeout
    width = np.where(closed, BUCKET_NS, np.maximum(idle // 2, BUCKET_NS))[f]
    slot = ts // width
    fs_start = start | np.r_[True, slot[1:] != slot[:-1]]
    fs_end = end | np.r_[slot[1:] != slot[:-1], True]
    keep |= fs_start | fs_end
    if b.dup_of is not None and "l2_out" in c:
        # the copies captured the other way (a packet the capturing host forwarded: arriving, and
        # leaving one hop lower) of each direction's first TCP packet and first MAX_SEGMENTS + 1
        # TCP data segments: what inspect._reset_hints compares a reset captured that way with
        # (its _ttl_as_sent; a router's own reset only leaves)
        other = other_way_copies(b.dup_of, c["l2_out"])
        if len(other):
            refs = rows[first_of(fd, tcp) | (data & (rank_in(data) <= MAX_SEGMENTS))]
            copies = np.union1d(copies, other[np.isin(b.dup_of[other], refs)])
    tw = _tw_summary(c, rows, f, d, tcp, keep, tw_extra)
    w = np.take(weights, rows, axis=0)     # (a copy; faster than weights[rows] for 2-D rows)
    gone = ~keep
    if gone.any():
        pl = np.maximum(c["payload_len"][rows][gone].astype(np.int64), 0)
        ipb = c["ip_len"][rows][gone].astype(np.int64)
        add = np.stack([np.ones(len(pl), np.int64), pl, ipb], axis=1) + w[gone]
        # each gone packet's stand-in: the first non-error packet of its (flow, direction)
        at = np.nonzero(stand_in)[0]
        at = at[np.argsort(fd[at])]
        to = at[np.searchsorted(fd[at], fd[gone])]
        np.add.at(w, to, add)
    kept = np.nonzero(keep)[0]
    trim = tcp[kept] & pay[kept] & (pay_rank[kept] > MAX_SEGMENTS) & ~end[kept] & ~whole[kept]
    out_rows = np.concatenate([rows[kept], copies])
    trim = np.concatenate([trim, np.zeros(len(copies), bool)])
    w = np.concatenate([w[kept], np.zeros((len(copies), 3), np.int64)])
    tw = np.concatenate([tw[kept], np.zeros((len(copies), 2), np.int64)])
    copy = np.arange(len(out_rows)) >= len(kept)
    order = np.argsort(out_rows, kind="stable")   # back to capture order
    return out_rows[order], trim[order], w[order], copy[order], tw[order]


def _tw_summary(c: dict, rows: np.ndarray, f: np.ndarray, d: np.ndarray, tcp: np.ndarray, keep: np.ndarray,
                tw_extra: np.ndarray | None) -> np.ndarray:
    """For :func:`_summarise` (``rows`` of the batch ``c`` in (flow ``f``, time) order, ``d`` their
    direction, ``keep`` what it keeps so far, widened here in place): Zeek's zero-window and
    retransmission events (:func:`~kscc_traffic.flows.tw_codes`) that write their letter are
    kept, and the packet each retransmission needs to be one among the kept rows
    (:func:`~kscc_traffic.flows.retransmission_events`' holders); the events not kept go to
    the kept event of their kind and direction before them (it stands for them: the first
    event writes its letter, so there is one). Returns the rows' ``tw_extra`` (int64 (n, 2))."""
    from .flows import after_own_reset, retransmission_events, scaled_events, tcp_segments, zero_window_events
    n = len(rows)
    tw = np.zeros((n, 2), np.int64) if tw_extra is None else np.take(tw_extra, rows, axis=0)
    win = c["tcp_win"][rows] if "tcp_win" in c else None
    tcp = tcp_segments(tcp, win)
    if not tcp.any():
        return tw
    fl, plen = c["tcp_flags"][rows], c["payload_len"][rows]
    reset = after_own_reset(f, d == 0, fl, tcp, plen)
    fd = f * 2 + d
    ev_w = zero_window_events(f, d == 0, fl, tcp, plen, win, reset)
    ev_t, held = retransmission_events(f, d == 0, fl, tcp, c["seq"][rows], plen, reset, holders=True)
    for j, ev in enumerate((ev_w, ev_t)):
        if ev.any():
            keep |= scaled_events(fd, ev, tw[:, j])
    # (a kept retransmission, for a letter or any other reason, is one again only with the packet
    # that set its side's last number before it: not one more kept row per retransmission)
    h = held[ev_t & keep].ravel()
    keep[h[h >= 0]] = True
    for j, ev in enumerate((ev_w, ev_t)):
        if not ev.any():
            continue
        at = np.flatnonzero(ev)
        at = at[np.argsort(fd[at], kind="stable")]
        kept_ev = keep[at]
        k = np.arange(len(at))
        to = np.maximum.accumulate(np.where(kept_ev, k, -1))
        gone = np.flatnonzero(~kept_ev & (to >= 0))
        gone = gone[fd[at[to[gone]]] == fd[at[gone]]]
        if len(gone):
            np.add.at(tw[:, j], at[to[gone]], 1 + tw[at[gone], j])
            tw[at[gone], j] = 0
    return tw


#: glibc malloc settings for a chunked analysis (mallopt parameters)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
MMAP_THRESHOLD = 32 << 20    # glibc's largest (heap_max / 2 on 64-bit)
TRIM_THRESHOLD = 256 << 20


def _tune_malloc() -> None:
    """Keep the memory of one batch for the next (glibc only; elsewhere a no-op).

    Each batch allocates and frees the same large arrays again (a chunk's bytes, columns of a
    few MB). By default glibc gives blocks from 128 KiB up their own ``mmap`` and returns them
    on ``free``, and gives back the top of the heap, so the next batch takes the same pages
    again, zero-filled: about 500,000 page faults and 1.5-2 s of system time per million
    packets. With blocks below ``MMAP_THRESHOLD`` taken from the heap and freed heap kept up to
    ``TRIM_THRESHOLD``, the pages are reused (about 50,000 faults). The peak resident size is
    about the same (1 M packets: 237 MiB either way; 10 M: 268 instead of 255 MiB, the heap's
    fragmentation settling after ~120 batches and staying flat). Larger blocks than glibc's
    largest threshold (32 MiB: a 32 MiB chunk and the room before it) are taken from the heap too
    (``M_MMAP_MAX`` 0): mapped, each batch faulted its pages in again (1 M packets: 0.9 s of
    system time instead of 0.4 s). Process-wide and set once (the settings only concern how
    freed memory is kept and reused)."""
    global _TUNED
    if _TUNED:
        return
    _TUNED = True
    try:
        import ctypes
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    # (blocks above the largest threshold too: a 32 MiB chunk joined to the carried packets'
    # bytes; glibc still maps one when the heap cannot grow)
    mallopt(_M_MMAP_MAX, 0)


_TUNED = False

#: Python's cyclic garbage collector during a chunked analysis (gc.set_threshold): the youngest
#: generation collected every this many allocations, then as the default for the older ones
GC_THRESHOLD = (10000, 20, 100)


def _tune_gc() -> None:
    """Make the cyclic garbage collector's passes cheap (once per process).

    The objects alive before the first batch (the modules and everything they made, pandas'
    included: a few hundred thousand) are moved out of the collector's sight (``gc.freeze``:
    they stay alive as they would anyway), and the youngest generation is collected every
    :data:`GC_THRESHOLD` allocations instead of 700. Each full collection otherwise went over
    all of them again: on the 1 M-packet benchmark ~0.3 s of ~5.5 s CPU (median of five
    alternating runs each: 5.59 -> 5.26 s), the output the same. Cyclic garbage of the analysis
    is still collected; the peak resident size does not change (237 MiB either way)."""
    global _GC_TUNED
    if _GC_TUNED:
        return
    _GC_TUNED = True
    import gc
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


_GC_TUNED = False


def _time_cut(ts: np.ndarray, limit: int = HOLD_FRAMES) -> int:
    """Where to cut a chunk's records (``ts``: their timestamps, int64 array) so that the ones
    after the cut can wait for the next chunk: the last place, at most ``limit`` records from
    the end and after the last step back of the clock (a record stamped more than
    :data:`STEP_BACK_NS` before the one before it: what follows it is late anyway), before which
    every record is stamped earlier than every record from it on (a capture slightly out of time
    order is cut where its records are in order), and before the records of the last
    :data:`HOLD_NS` too where there is such a place (a record of the next chunk may be stamped a
    little before them); without any, where the run of records stamped as the last one begins
    (a run longer than ``limit``: ``len(ts) - limit - 1`` or less). An index into ``ts``: 0 when
    all of them wait, or when empty."""
    n = len(ts)
    if n == 0:
        return 0
    back = np.flatnonzero(ts[1:] < ts[:-1] - STEP_BACK_NS)
    s = int(back[-1]) + 1 if len(back) else 0
    lo = max(n - limit, s)
    top = np.maximum.accumulate(ts[s:])
    # for each place j from lo on: the latest record before it (since s), the earliest from it
    before = np.r_[np.iinfo(np.int64).min, top[:-1]][lo - s:]
    after = np.minimum.accumulate(ts[lo:][::-1])[::-1]
    ok = before < after
    near = ok & (before < int(top[-1]) - HOLD_NS)
    at = np.flatnonzero(near if near.any() else ok)
    if len(at):
        return lo + int(at[-1])
    lo = max(n - limit - 1, 0)
    other = np.flatnonzero(ts[lo:] != ts[-1])
    return lo + int(other[-1]) + 1 if len(other) else lo


def _clock(ts: np.ndarray) -> int:
    """The oldest of the timestamps ``ts`` (epoch ns, not empty) that is not more than
    :data:`CLOCK_OUTLIER_NS` before their median (the capture's clock, before REORDER_NS)."""
    med = int(np.median(ts))
    near = ts[ts >= med - CLOCK_OUTLIER_NS]
    return int(near.min()) if len(near) else med


def _batch_limit(carried: int) -> int:
    """New records a batch takes at most when ``carried`` packets are carried into it:
    :data:`BATCH_PACKETS` in all, never fewer than :data:`BATCH_RECORDS` new ones (a batch's
    cost follows its carried packets too: fewer new ones would analyse them more often)."""
    return max(BATCH_RECORDS, BATCH_PACKETS - carried)


def _slice(frames: Frames, i: int, j: int, view: memoryview) -> Frames:
    """Records ``i`` to ``j - 1`` of ``frames`` over a view of only the bytes they need (``view``:
    of ``frames.buf``); ``last`` when they end ``frames`` and it is last. The first records of
    a chunk with room before them (``frames.room``) keep its buffer and room (:func:`_join`)."""
    if i == 0 and frames.room:
        return Frames(frames.buf, frames.ts_ns[:j], frames.linktype[:j], frames.offset[:j], frames.caplen[:j],
                      frames.wirelen[:j], frames.stats, last=frames.last and j == len(frames), room=frames.room)
    off, cap = frames.offset[i:j], frames.caplen[i:j]
    lo = int(off.min())
    hi = int((off + cap).max())
    return Frames(view[lo:hi], frames.ts_ns[i:j], frames.linktype[i:j], off - lo, cap,
                  frames.wirelen[i:j], frames.stats, last=frames.last and j == len(frames))


def _first_part(frames: Frames, most: int, slack: float = 1.0) -> tuple[Frames, Frames | None]:
    """The first of ``frames``' (a chunk's, or its rest's) records as one batch takes them, and
    the rest (None: none): all of them when at most ``most`` times ``slack``, else the first of
    the equal consecutive parts of at most ``most`` records the chunk would be cut in. Each part
    has its own view of the bytes it needs (a part joined to the next chunk copies its own
    bytes, not the chunk's); ``last`` only on the last part; the reader's ``stats`` shared."""
    n = len(frames)
    if n <= most * slack:
        return frames, None
    j = -(-n // -(-n // most))              # (n in ceil(n / most) parts, the first the largest)
    view = memoryview(frames.buf)
    return _slice(frames, 0, j, view), _slice(frames, j, n, view)


def _take(frames: Frames, at) -> Frames:
    """Records ``at`` of ``frames`` (an index array or slice; same buffer, their numbers kept)."""
    return Frames(frames.buf, frames.ts_ns[at], frames.linktype[at], frames.offset[at],
                  frames.caplen[at], frames.wirelen[at], frames.stats,
                  number=frames.number[at] if frames.number is not None else None)


def _own_plan(frames: Frames) -> tuple[str, int]:
    """How :func:`_own` makes ``frames``' buffer: ``("same" | "span" | "each", its length)``."""
    if not len(frames):
        return "each", 0
    off = np.asarray(frames.offset, np.int64)
    cap = np.asarray(frames.caplen, np.int64)
    lo, hi = int(off.min()), int((off + cap).max())
    if isinstance(frames.buf, bytes) and lo == 0 and hi == len(frames.buf):
        return "same", hi       # (its own already)
    size = int(cap.sum())
    if hi - lo <= 2 * size + (64 << 10):
        return "span", hi - lo
    return "each", size


def _own(frames: Frames) -> Frames:
    """``frames`` with a buffer of their own: their records' bytes copied out of the chunk's, so
    that holding a few records does not hold the whole chunk (records scattered over it, as held
    fragments are, each copied on its own)."""
    how, _ = _own_plan(frames)
    if how == "same":
        return frames
    if not len(frames):
        return replace(frames, buf=b"", offset=np.zeros(0, np.int64), room=0)
    off = np.asarray(frames.offset, np.int64)
    cap = np.asarray(frames.caplen, np.int64)
    if how == "span":
        lo, hi = int(off.min()), int((off + cap).max())
        return replace(frames, buf=bytes(frames.buf[lo:hi]), offset=off - lo, room=0)
    view = memoryview(frames.buf)
    start = np.concatenate(([0], np.cumsum(cap)[:-1])).astype(np.int64)
    buf = b"".join(view[o:o + c] for o, c in zip(off.tolist(), cap.tolist()))
    return replace(frames, buf=buf, offset=start, room=0)


def _room_for(carry: Packets | None, head: Frames | None) -> int:
    """The bytes :func:`_join` puts before the next chunk's records: the carried packets'
    (``carry.buf``) and those of the records waiting for it (``head``, as :func:`_own` makes
    them)."""
    n = len(carry.buf) if carry is not None and len(carry) else 0
    return n + (_own_plan(head)[1] if head is not None else 0)


def _join(head: Frames | None, frames: Frames, prefix=b"") -> Frames:
    """``head``'s records (copied out of their chunk's buffer; None: none) followed by
    ``frames``' (numbers joined too when both have them), in one buffer that starts with the
    bytes of ``prefix`` (bytes-like; no record points into them): the buffer of the packets
    carried to the batch, so that :meth:`~kscc_traffic.capture.packets.Packets.concat_shared`
    need not copy the chunk once more. When ``frames.room`` is just what ``prefix`` and
    ``head``'s bytes take (:func:`_room_for`), they are written there, in ``frames``' buffer:
    the chunk is not copied; else a new buffer. ``last`` is False (a joined chunk's own flag is
    set by the caller)."""
    own = _own(head) if head is not None else None
    k = len(prefix) + (len(own.buf) if own is not None else 0)
    if not frames.room or frames.room != k or not isinstance(frames.buf, bytearray):
        parts = [own, frames] if own is not None else [frames]
        return replace(concat_frames(parts, prefix), last=False, room=0)
    buf, lp = frames.buf, len(prefix)
    buf[:lp] = prefix
    if own is None or not len(own):
        return replace(frames, last=False, room=0)
    buf[lp:k] = own.buf
    numbers = (own.number, frames.number)
    cat = np.concatenate
    return Frames(buf, cat([own.ts_ns, frames.ts_ns]), cat([own.linktype, frames.linktype]),
                  cat([np.asarray(own.offset, np.int64) + lp, np.asarray(frames.offset, np.int64)]),
                  cat([own.caplen, frames.caplen]), cat([own.wirelen, frames.wirelen]), frames.stats,
                  last=False, number=cat(numbers) if all(n is not None for n in numbers) else None)


def _hold_fragments(full: Frames, now: np.ndarray, pk: Packets, mine: DecodeCounters,
                    clock: Optional[int], limit: Optional[int] = None,
                    fcs_claim: Optional[FcsClaim] = None, sum_claim: Optional[SumClaim] = None):
    """Take out of a chunk's decode the frames holding fragments of datagrams it left incomplete,
    so that they are decoded again with the next chunk (and reassembled there, or given up on as
    the whole-file decode does: the decoder's rows are the same, their frame numbers kept).

    :param full: the chunk's records (those held from before first).
    :param now: int64 indices into ``full`` (ascending) of the records decoded.
    :param pk, mine: their decode and its counters (``mine.open_fragments``: the datagrams left
        incomplete, by frame index into ``frames``).
    :param clock: the capture's clock (epoch ns: records still to come are not stamped before
        it; None: unknown): a datagram no fragment stamped from then on can complete (its first
        fragment more than the reassembly timeout before) is not held, as the whole-file decode
        gives it up.
    :param limit: captured bytes held at most (default :data:`HOLD_FRAGMENT_BYTES`; frames at
        most: :data:`HOLD_FRAGMENT_FRAMES`): beyond it the datagrams whose first fragment came
        first are not held.
    :returns: (the indices into ``full`` decoded now, those held (ascending), the decode and
        counters of the records decoded now, the number of frames given up on for the limit).
    """
    limit = HOLD_FRAGMENT_BYTES if limit is None else limit
    cap = np.asarray(full.caplen, np.int64)
    held = np.zeros(0, np.int64)
    used = n_held = 0
    dropped = np.zeros(0, np.int64)
    for _ in range(HOLD_ROUNDS):
        groups = [(exp, fr) for exp, fr in mine.open_fragments
                  if fr and (clock is None or exp >= clock)]
        if not groups:
            break
        # (newest first: a datagram opened last is the likeliest to complete)
        groups.sort(key=lambda g: g[0], reverse=True)
        take = []
        for exp, fr in groups:
            at = np.unique(now[np.asarray(fr, np.int64)])
            size = int(cap[at].sum())
            if used + size > limit or n_held + len(at) > HOLD_FRAGMENT_FRAMES:
                dropped = np.union1d(dropped, at)
                continue
            used += size
            n_held += len(at)
            take.append(at)
        if not take:
            break
        new = np.unique(np.concatenate(take))
        held = np.union1d(held, new)
        now = np.setdiff1d(now, new, assume_unique=True)
        frames = _take(full, now)
        mine = DecodeCounters()
        pk = decode(frames, counters=mine, fcs_claim=fcs_claim, sum_claim=sum_claim)
    return now, held, pk, mine, len(dropped)


def _cut_end(flows: pd.DataFrame, stats) -> pd.DataFrame:
    """``flows`` (the capture's last leaving rows) with the internal
    :data:`~kscc_traffic.classify.CUT_END_COLUMN` set when the file was cut mid-record (``stats``:
    the reader's :class:`~kscc_traffic.capture.stats.ReadStats`, or None), as
    :func:`kscc_traffic.analyze.analyze_batch` sets it for a whole-file reading; else as they are."""
    if stats is None or not getattr(stats, "cut_end", False) or not len(flows):
        return flows
    from .classify import CUT_END_COLUMN
    return flows.assign(**{CUT_END_COLUMN: True})
