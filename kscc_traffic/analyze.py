"""The whole pipeline: capture file(s) -> classified flow table."""
from __future__ import annotations

import os
import stat
import warnings
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .addresses import ipv4_forms
from .capture.files import STDIN_TEXT, is_stdin, iter_frames, read_frames
from .capture.filesets import FileSet, group_file_sets
from .capture.folders import CAPTURE_MAGICS, KNOWN_HEAD_BYTES, expand_folders
from .capture.packets import short_payloads
from .capture.stats import ReadStats
from .errors import CaptureAccessError, CaptureError, CaptureWarning, CorruptCapture
from .classify import _JUDGE_COLUMNS, _RETRY_COLUMNS, CLASS_COLUMNS, CUT_END_COLUMN, TLS_SILENCE_S, classified, classify
from .columns import Columns
from .flows import (FIRST_IP_ID, FIRST_ISN, FLOW_COLUMNS, forwarded_copies, IDLE_BEFORE, ORIG_TTL, RESP_TTL, RESP_TTL_OUT, VLAN_STACK, arrays_of, build_flows, label_index,
                    repeated, resent, tcp_payload_bytes)
from .inspect import (APP_COLUMNS, DnsAnswers, StraySynAcks, add_stray_synacks, cloud_ports, dns_flows, inspect_flows,
                      resp_ttl_leaving)
from .names import NAME_COLUMNS, assign_names
from .rules import RuleSet, load_rules
from .stamps import mend_lone_stamps
from .text import name_text, path_text
from .timeorder import ties_by_uid
from .icmpttl import own_ttl_evidence
from .unreachable import attach, attach_nat_quotes, find_errors, packet_evidence

#: the flow table's columns (:class:`Columns`: name -> (dtype, unit, description))
COLUMNS: Columns = Columns({
    **FLOW_COLUMNS, **APP_COLUMNS, **NAME_COLUMNS, **CLASS_COLUMNS,
    "capture": ("object", "", "name of the capture the flow was read from: its file name, or the "
                "shortest end of its path that tells it from the other captures of the same run "
                "(capture_names), escaped (kscc_traffic.text.name_text)"),
})
#: the text columns of :data:`COLUMNS`, in order
_TEXT_NAMES = [k for k, (dtype, _, _) in COLUMNS.items() if dtype == "object"]
#: their positions in :data:`COLUMNS`, and per other dtype ``(dtype, names, positions)``: the
#: blocks of :func:`_schema`'s frame
_TEXT_AT = np.array([i for i, (dtype, _, _) in enumerate(COLUMNS.values()) if dtype == "object"], np.intp)
_NUMBER_BLOCKS = [(np.dtype(d), [k for k, (dtype, _, _) in COLUMNS.items() if dtype == d],
                   np.array([i for i, (dtype, _, _) in enumerate(COLUMNS.values()) if dtype == d], np.intp))
                  for d in dict.fromkeys(dtype for dtype, _, _ in COLUMNS.values() if dtype != "object")]
#: pandas' constructor of a frame from its blocks (pandas.api.internals, public since pandas 3.0):
#: None where it is gone, then :func:`_schema` builds the frame through the public constructors
_FROM_BLOCKS = getattr(getattr(getattr(pd, "api", None), "internals", None), "create_dataframe_from_blocks", None)

WELL_KNOWN_LIMIT = 1024


@dataclass
class Analysis:
    """Result of analysing captures (:func:`analyze_file`, :func:`analyze_files`).

    ``flows``: the flow table, one row per flow, exactly the columns of :data:`COLUMNS` in order
    with their dtypes (the same with no row: an empty capture gives an empty table of those
    columns), index 0…n-1, rows in order of ``ts_ns`` within each capture.
    ``stats``: :class:`~kscc_traffic.capture.stats.ReadStats` per capture (records read, skipped,
    warning lines…), keyed by the path as given (``str(path)``; ``""`` for the notes on what a
    folder held that was not read).
    ``duplicates``: duplicated frames counted once (a span port's copies), over all captures."""

    flows: pd.DataFrame
    stats: dict[str, ReadStats] = field(default_factory=dict)
    duplicates: int = 0

    @property
    def warnings(self) -> list[str]:
        """Every warning line of :attr:`stats`, in order (what :func:`analyze` issues as
        :class:`~kscc_traffic.errors.CaptureWarning` s and the command line prints)."""
        return [w for s in self.stats.values() for w in s.warnings]


def server_port_fn(rules: RuleSet):
    """``f(proto, port) -> bool array``: the port is documented by a rule or is well known."""
    ranges = [(6 if r.transport == "tcp" else 17, r.port_lo, r.port_hi) for r in rules.rules]

    def server_port(proto: np.ndarray, port: np.ndarray) -> np.ndarray:
        out = (port >= 0) & (port < WELL_KNOWN_LIMIT)
        for p, lo, hi in ranges:
            out |= (proto == p) & (port >= lo) & (port <= hi)
        return out

    return server_port


def analyze_packets(packets, rules: RuleSet, name: str = "", *, prior_answers: DnsAnswers | None = None,
                    answers_out: DnsAnswers | None = None,
                    capture_end_ns: int | None = None,
                    observed_until_ns: int | None = None,
                    internal: bool = False, ttls: dict | None = None,
                    weights: np.ndarray | None = None, openers=None,
                    strays=None, tw_extra: np.ndarray | None = None, idle_marks=None) -> tuple[pd.DataFrame, int]:
    """Decoded packets -> classified flow table (columns: :data:`COLUMNS`) and the number of
    duplicated frames dropped.

    :param internal: also the columns classify read that the output has not, and the flows'
        whole VLAN stacks, ``vlan_stack``, each side's first TTL, ``orig_ttl``, ``resp_ttl``, and the
        first packet's IPv4 identification, ``first_ip_id`` (after :data:`COLUMNS`:
        :attr:`Batch.internal`), so some rows can be classified again and matched with their
        packets' keys.

    :param prior_answers: DNS answers seen before these packets (e.g. by a live capture that
        already evicted the DNS flows); used for names together with the packets' own answers.
    :param answers_out: when given, the DNS answers found in these packets are appended to it.
    :param capture_end_ns: the capture's last timestamp (ns) when these are its last packets
        (:func:`kscc_traffic.classify.classify`); also ``observed_until_ns`` when that is None.
    :param observed_until_ns: see :func:`analyze_batch`.
    :param ttls: see :func:`analyze_batch` (a live session's: the first packet each address sent).
    :param openers: see :func:`analyze_batch` (a live session's).
    :param strays: see :func:`analyze_batch` (a live session's, added to in place).
    :param weights: see :func:`analyze_batch` (a live session's: what each direction's packets
        not kept stand for, on one kept packet of that direction).
    :param tw_extra: see :func:`analyze_batch` (a live session's: the zero-window and
        retransmission events not kept, on the kept event before them).
    :param idle_marks: see :func:`analyze_batch` (a live session's
        :class:`~kscc_traffic.idlesplits.HeldIdleSplits`).
    """
    b = analyze_batch(packets, rules, name, prior_answers=prior_answers, capture_end_ns=capture_end_ns,
                      observed_until_ns=observed_until_ns if observed_until_ns is not None else capture_end_ns,
                      ttls=ttls, weights=weights, openers=openers, strays=strays, tw_extra=tw_extra,
                      idle_marks=idle_marks)
    if answers_out is not None:
        answers_out.extend(b.answers)
    if internal and b.internal is not None and len(b.internal.columns):
        return pd.concat([b.flows, b.internal], axis=1), b.duplicates
    return b.flows, b.duplicates


@dataclass
class Batch:
    """What :func:`analyze_batch` returns.

    ``flows``: classified flow table (columns :data:`COLUMNS`), in time order of first packet
    (with ``analyze_batch(judge=...)``, only the rows it marked inspected and classified).
    ``pkt_flow``: int64 array, one per packet row: the row of ``flows`` the packet belongs to
    (an ICMP error attached to the flow it quotes included), -1 for duplicates.
    ``pkt_from_orig``: bool array, one per packet row: sent by its flow's originator.
    ``answers``: the DNS answers found in these packets. ``duplicates``: frames counted once.
    ``last_ts``: int64 array, one per flow: the time (epoch ns) of its last packet among these.
    ``dup_of``: int64 array, one per packet row: for a duplicate the row of the packet it copies
    (:attr:`kscc_traffic.flows.FlowTable.dup_of`), else -1 (None when there is no duplicate).
    """

    flows: pd.DataFrame
    pkt_flow: np.ndarray
    answers: DnsAnswers
    duplicates: int
    pkt_from_orig: np.ndarray | None = None
    last_ts: np.ndarray | None = None
    #: the columns classify read that are not in the output (``orig_resent``, ``went_on``, …:
    #: classify's judge columns outside :data:`COLUMNS`) and ``vlan_stack`` (each flow's whole
    #: VLAN stack, :attr:`kscc_traffic.flows.FlowTable.vlan_stack`), ``orig_ttl``, ``resp_ttl``
    #: (:attr:`~kscc_traffic.flows.FlowTable.side_ttl`) and ``first_ip_id``, one row per row of
    #: ``flows``: what a caller that changes some counters and classifies again needs (the live
    #: session)
    internal: pd.DataFrame | None = None
    dup_of: np.ndarray | None = None

#: the counters a packet's ``weights`` row (``analyze_batch(weights=...)``) adds to its flow, on
#: the side of the packet's direction: packets, payload bytes, IP bytes
WEIGHT_COUNTERS = (("orig_pkts", "resp_pkts"), ("orig_bytes", "resp_bytes"), ("orig_ip_bytes", "resp_ip_bytes"))


def analyze_batch(packets, rules: RuleSet, name: str = "", *,
                  prior_answers: DnsAnswers | None = None, weights: np.ndarray | None = None,
                  known: np.ndarray | None = None, capture_end_ns: int | None = None,
                  observed_until_ns: int | None = None, carried: np.ndarray | None = None,
                  copies: np.ndarray | None = None, broadcasts: dict[int, int] | None = None,
                  judge: Callable[[pd.DataFrame, np.ndarray], np.ndarray] | None = None,
                  finish: bool = True, ttls: dict | None = None, openers=None,
                  strays: StraySynAcks | None = None, tw_extra: np.ndarray | None = None,
                  idle_marks=None, cut_end: bool = False) -> Batch:
    """Decoded packets -> :class:`Batch` (the classified flows and which flow each packet is in).

    :param cut_end: with ``capture_end_ns``: the file was cut mid-record after these packets
        (:attr:`~kscc_traffic.capture.stats.ReadStats.cut_end`): an unanswered attempt at its end
        is said to have maybe had its answer in that lost record (:data:`~kscc_traffic.classify.LOST_RECORD`).

    :param prior_answers: DNS answers seen before these packets, used for names together with
        the packets' own answers: a :class:`~kscc_traffic.inspect.DnsAnswers` or an
        :class:`~kscc_traffic.answer_store.AnswerStore` (anything with ``len`` and ``select``).
    :param weights: int64 array (len(packets), 3): per packet, the packets, payload bytes and IP
        bytes of packets of the same flow and direction that are no longer among ``packets``
        (summarised by :mod:`kscc_traffic.chunked`; the weights of a packet dropped as a
        duplicate are moved, in place, to the packet it copies); added to the packet's flow's counters
        (:data:`WEIGHT_COUNTERS`) before it is inspected and classified. Tied to a packet, not
        to a flow id, so they follow the flow whatever its uid becomes (an earlier packet read
        later changes the uid) and its orientation.
    :param tw_extra: int64 array (len(packets), 2): per packet, the zero-window and retransmission
        events of its flow and direction after it no longer among ``packets`` (Zeek's scaled ``W``
        and ``T`` letters: :func:`kscc_traffic.flows.build_flows`); None: none.
    :param known: object array (len(packets)): a ``dns_name`` found for the packet's flow in an
        earlier batch (see :func:`kscc_traffic.names.assign_names`), None where none.
    :param capture_end_ns: the capture's last timestamp (ns) when this is its last batch: see
        :func:`kscc_traffic.classify.classify`.
    :param observed_until_ns: a time (epoch ns) the capture is known to have run until (its end,
        or the clock of a chunked reading): how long it went on after each flow's last packet,
        up to :data:`~kscc_traffic.classify.TLS_SILENCE_S`, is the flows' ``quiet_s`` (float
        seconds, not an output column), so a ClientHello or CONNECT the server acknowledged and
        never answered is ``blocked`` once the capture went on long enough. None: 0 (unknown).
    :param carried: bool array (len(packets)): packets an earlier batch already found not to be
        duplicates (:func:`kscc_traffic.flows.build_flows`), e.g. the packets
        :mod:`kscc_traffic.chunked` carries; None: none.
    :param copies: bool array (len(packets)): packets an earlier batch already counted as
        duplicates, carried so that the next packets are compared with them: dropped again, not
        counted again (:func:`kscc_traffic.flows.build_flows`); None: none.
    :param broadcasts: IPv4 addresses earlier batches saw as link-layer broadcast destinations,
        with their first frame (:func:`kscc_traffic.flows.broadcast_evidence`), for the cast of
        datagrams the capturing host sent (:func:`kscc_traffic.flows.build_flows`); None: none.
    :param judge: ``f(flows, last_ts) -> bool array`` (one per flow, in the order of
        :attr:`Batch.flows`; ``last_ts`` as :attr:`Batch.last_ts`, ICMP errors attached
        included), called before the flows are inspected: ``flows`` has the columns of
        :data:`~kscc_traffic.flows.FLOW_COLUMNS` (``icmp_unreachable`` filled in, ``service``
        '' until inspected) and ``orig_resent``, ``tcp_hdr_cut``; none of the application, name
        or class columns. Only the flows it marks are inspected and classified (and every DNS
        flow inspected: its answers name the others); the others' ``service`` and
        :data:`~kscc_traffic.inspect.APP_COLUMNS` are at their defaults, their ``server_name``
        and ``name_source`` from DNS only (``dns_name`` as
        without ``judge``), their :data:`~kscc_traffic.classify.CLASS_COLUMNS` '' (a chunked
        reading judges only the flows that leave with the batch; the others' packets are
        carried and analysed again with the next). None: every flow.
    :param finish: False: the flows are named but not classified, and ``Batch.flows`` has every
        column the analysis made (those of :data:`COLUMNS` but :data:`~kscc_traffic.classify.CLASS_COLUMNS`
        and ``capture``, plus the ones classify reads), in no fixed dtype; :func:`finish_flows`
        turns any of its rows into output rows (a chunked reading does that for the flows that
        leave, maybe in another process). ``Batch.internal`` is None.
    :param ttls: the first packet each address sent in earlier batches of the capture
        (:func:`kscc_traffic.inspect.address_ttls`), for the hint of a SYN answered by a reset
        (whose TTL is compared with the address's earlier packets); None: none.
    :param openers: the first SYN to a cloud server's port each address sent in earlier batches
        (:func:`kscc_traffic.inspect.cloud_openers`), for telling a connection opened towards an
        agent; None: none.
    :param strays: the SYN-ACKs no SYN of their own flow asked for in earlier batches
        (:class:`kscc_traffic.inspect.StraySynAcks`); those of these packets are added to it (in
        place), for telling an unanswered SYN that was answered from another address. None: a new
        one, of these packets alone.
    :param idle_marks: the TCP connections of earlier batches that left idle and may go on in
        these packets: anything with ``mark(flows)`` filling the flows' internal
        :data:`~kscc_traffic.flows.IDLE_BEFORE` in place before they are judged (a live session's
        :class:`~kscc_traffic.idlesplits.HeldIdleSplits`); None: none.
    """
    errors = find_errors(packets)
    exclude = np.zeros(len(packets), bool)
    exclude[[e.row for e in errors]] = True
    ft = build_flows(packets, server_port_fn(rules), exclude=exclude, seed=name, carried=carried,
                     copies=copies, broadcasts=broadcasts, tw_extra=tw_extra)
    if weights is not None:
        if ft.dup_of is not None:
            # a weighted packet dropped as a copy hands its weights to what it copies (in place,
            # so the caller carries them on with that packet)
            moved = np.nonzero((ft.dup_of >= 0) & weights.any(axis=1))[0]
            np.add.at(weights, ft.dup_of[moved], weights[moved])
            weights[moved] = 0
        _add_weights(ft, weights)
    _add_key_columns(ft)
    if idle_marks is not None:
        idle_marks.mark(ft.flows)
    # (for classify, not a column of the output: the originator sent some bytes again)
    ft.flows["orig_resent"] = resent(ft)[:, 0]
    # (for classify too: a TCP flow none of whose packets had its TCP header captured whole)
    ft.flows["tcp_hdr_cut"] = _tcp_headers_cut(ft)
    known_names = None
    if known is not None:
        at = np.nonzero((ft.pkt_flow >= 0) & (known != None))[0]  # noqa: E711 (element-wise)
        uid = ft.flows["uid"].to_numpy(dtype=object)
        known_names = dict(zip(uid[ft.pkt_flow[at]].tolist(), known[at].tolist()))
    pkt_flow = ft.pkt_flow.copy()
    matched: list[tuple[int, int]] = []
    flows, unmatched = attach(ft.flows, errors, matched)
    if unmatched:   # (a quote a NAT did not translate back: break-it 24 F11)
        flows, unmatched = attach_nat_quotes(flows, unmatched, packets, matched)
    for row, f in matched:
        pkt_flow[row] = f
    # (what the flows' own packets tell of their errors: a traceroute probe, a too-big ignored)
    flows = packet_evidence(flows, errors, matched, packets, pkt_flow)
    # (a port unreachable from the destination with its own TTL: the server's own refusal)
    flows = own_ttl_evidence(flows, errors, matched, packets, ttls)
    extra = None
    if unmatched:
        # errors quoting a flow we never saw stay visible as ICMP flows of their own
        only = np.ones(len(packets), bool)
        only[[e.row for e in unmatched]] = False
        extra = build_flows(packets, exclude=only, seed=name + "#icmp", carried=carried)
        _add_key_columns(extra)
        if weights is not None:
            _add_weights(extra, weights)
        base = len(flows)
        hit = extra.pkt_flow >= 0
        pkt_flow[hit] = extra.pkt_flow[hit] + base
        order = np.argsort(np.r_[flows["ts_ns"].to_numpy(), extra.flows["ts_ns"].to_numpy()], kind="stable")
        rank = np.empty(len(order), np.int64)
        rank[order] = np.arange(len(order))
        pkt_flow = np.where(pkt_flow >= 0, rank[np.maximum(pkt_flow, 0)], -1)
    last_ts = np.full(len(flows) + (len(extra.flows) if extra is not None else 0), np.iinfo(np.int64).min,
                      np.int64)
    inb = pkt_flow >= 0
    np.maximum.at(last_ts, pkt_flow[inb], packets.cols["ts_ns"][inb])
    leave = look = None
    if judge is not None:
        leave = np.asarray(judge(flows if extra is None else _in_order(flows, extra.flows, order), last_ts), bool)
        # only the flows judged are inspected, and every DNS flow: its answers name the others
        look = (leave if extra is None else leave[rank[:len(flows)]]) | dns_flows(flows)
    if strays is None:
        strays = StraySynAcks()
    add_stray_synacks(ft, strays)
    flows, answers = inspect_flows(replace(ft, flows=flows), look, ttls=ttls, opener_ports=cloud_ports(rules),
                                   openers=openers, strays=strays, final=capture_end_ns is not None)
    if extra is not None:
        # (inspected as the others are: no payload, so every application column at its default,
        # not NaN, which reads as True in a bool column)
        extra_flows, _ = inspect_flows(extra)
        flows = _in_order(flows, extra_flows, order)
    flows["quiet_s"] = _quiet_after(last_ts, observed_until_ns)
    used = answers
    if prior_answers is not None and len(prior_answers):
        used = DnsAnswers()
        # only the answers that can name one of these flows (a long capture's store is large)
        used.extend(_prior_for(flows, prior_answers))
        used.extend(answers)
    flows = assign_names(flows, used, known=known_names or None, rules=rules)
    pkt_from_orig = ft.pkt_from_orig.copy()
    if matched:
        pkt_from_orig[[r for r, _ in matched]] = False
    if not finish:
        return Batch(flows, pkt_flow, answers, ft.duplicates, pkt_from_orig, last_ts, None, ft.dup_of)
    if cut_end and capture_end_ns is not None:
        # (the file cut mid-record: its last record, lost, may have held an answer; classify says so)
        flows[CUT_END_COLUMN] = True
    flows = classify(flows, rules, capture_end_ns) if judge is None else \
        _classify_some(flows, rules, capture_end_ns, leave)
    flows["capture"] = pd.Series(repeated(name, len(flows)), index=flows.index)
    keep = [c for c in (*_JUDGE_COLUMNS, *_RETRY_COLUMNS, VLAN_STACK, ORIG_TTL, RESP_TTL, RESP_TTL_OUT, FIRST_IP_ID,
                             FIRST_ISN, IDLE_BEFORE)
            if c not in COLUMNS and c in flows.columns]
    internal = flows[keep].reset_index(drop=True)
    return Batch(_schema(flows), pkt_flow, answers, ft.duplicates, pkt_from_orig, last_ts, internal, ft.dup_of)


def _add_key_columns(ft) -> None:
    """Add to ``ft.flows`` (a :class:`~kscc_traffic.flows.FlowTable`'s, in place) the internal
    columns, never written out, that match its flows with others: ``vlan_stack``, the whole VLAN
    stack of the flow key, which the output's vlan and inner_vlan tell only in part (what the ICMP
    errors, the stale-connection retries and a live session match flows by); ``orig_ttl``,
    ``resp_ttl``, ``first_ip_id`` and ``first_isn``, what tells a NAT gateway's copy of a connection
    (:mod:`kscc_traffic.natpairs`); ``resp_ttl_out``, the responder's first TTL as captured
    leaving the capturing host (:func:`~kscc_traffic.inspect.resp_ttl_leaving`: a refused IPv6
    attempt's reset compared like for like with its IPv4 fallback's SYN-ACK on a router's
    ``tcpdump -i any``); and ``idle_before_s``, how long a TCP flow's 5-tuple was
    silent before it when the idle timeout split it off (:data:`~kscc_traffic.flows.IDLE_BEFORE`)."""
    ft.flows[VLAN_STACK] = ft.vlan_stack
    ft.flows[ORIG_TTL], ft.flows[RESP_TTL] = ft.side_ttl.T
    ft.flows[RESP_TTL_OUT] = resp_ttl_leaving(ft)
    ft.flows[FIRST_IP_ID] = ft.first_ip_id
    ft.flows[FIRST_ISN] = ft.first_isn if ft.first_isn is not None else np.full(len(ft.flows), -1, np.int64)
    ft.flows[IDLE_BEFORE] = (ft.idle_before if ft.idle_before is not None
                             else np.zeros(len(ft.flows), np.int64)) / 1e9


def _prior_for(flows: pd.DataFrame, prior) -> DnsAnswers:
    """The answers of ``prior`` (``analyze_batch``'s ``prior_answers``: anything with ``select``)
    that can name one of ``flows``: ``prior.select(addresses, pairs)`` with ``addresses`` the
    flows' responder addresses (``resp_h`` texts) and the other forms of the IPv4 address each
    carries (:func:`~kscc_traffic.addresses.ipv4_forms`: NAT64, mapped), ``pairs`` the flows'
    (originator, responder) and (originator, other form) pairs. When ``prior`` has ``known``
    (:meth:`~kscc_traffic.answer_store.AnswerStore.known`), only the other forms it holds answers
    for make pairs (a pair of an address it has no answer for selects nothing): the ~3,500
    IPv4 pairs of a batch of the 1 M packet bench then make none more instead of ~7,000."""
    resp = flows["resp_h"].tolist()
    pairs = set(zip(flows["orig_h"].tolist(), resp))
    addresses = set(resp)
    forms = {a: ipv4_forms(a) for a in addresses if isinstance(a, str)}
    others = {f for fs in forms.values() for f in fs}
    known = getattr(prior, "known", None)
    held = known(others) if known is not None else others
    extra = {a: [f for f in fs if f != a and f in held] for a, fs in forms.items()}
    extra = {a: fs for a, fs in extra.items() if fs}
    if extra:
        pairs |= {(c, f) for c, a in pairs if a in extra for f in extra[a]}
    return prior.select(addresses | others, pairs)


def finish_flows(flows: pd.DataFrame, rules: RuleSet, name: str = "",
                 capture_end_ns: int | None = None, judged=None) -> pd.DataFrame:
    """Rows of an unfinished :attr:`Batch.flows` (``analyze_batch(finish=False)``) -> output
    rows: classified (:func:`kscc_traffic.classify.classify` with ``capture_end_ns``), the
    ``capture`` column ``name``, exactly :data:`COLUMNS` with their dtypes (a new frame, index
    0..n-1). A row's output depends on that row alone (but a proxy's 407, judged with the
    accepted retry on another connection among ``flows``, or named in its ``proxy_retry``
    column: :func:`kscc_traffic.classify.proxy_auth_retries`), so any subset of a batch gets what
    classifying the whole batch gives its rows. Pure and picklable (a chunked reading may run
    it in a worker process: :mod:`kscc_traffic.finishing`). ``judged``: the analysis's
    :class:`~kscc_traffic.classify.JudgementCache` (its earlier batches' judgements), if any."""
    if flows.columns.is_unique:
        # (the classes straight into the output's blocks, not added to the batch's table first)
        flows, res = classified(flows.reset_index(drop=True), rules, capture_end_ns, judged)
        extra = {k: res[:, j] for j, k in enumerate(CLASS_COLUMNS)}
        extra["capture"] = repeated(name, len(flows))
        return _schema(flows, extra)
    flows = classify(flows.reset_index(drop=True), rules, capture_end_ns) if judged is None else \
        classify(flows.reset_index(drop=True), rules, capture_end_ns, judged=judged)
    flows["capture"] = pd.Series(repeated(name, len(flows)), index=flows.index)
    return _schema(flows)


def _classify_some(flows: pd.DataFrame, rules: RuleSet, capture_end_ns: int | None,
                   judged: np.ndarray) -> pd.DataFrame:
    """``classify(flows)`` where ``judged`` (bool, one per row) is True, '' in the
    :data:`~kscc_traffic.classify.CLASS_COLUMNS` of the other rows. A row's verdict depends on
    that row alone (but a proxy's 407, judged with the judged rows: the retry of a chunked
    reading's 407 is found by :mod:`kscc_traffic.chunked`), so the judged rows get what
    classifying the whole table gives them."""
    if judged.all():
        return classify(flows, rules, capture_end_ns)
    at = np.flatnonzero(judged)
    part = classify(flows.iloc[at].reset_index(drop=True), rules, capture_end_ns) if len(at) else None
    out = flows.copy(deep=False)
    for k in CLASS_COLUMNS:
        col = np.full(len(flows), "", dtype=object)
        if part is not None:
            col[at] = part[k].to_numpy(dtype=object)
        out[k] = pd.Series(col, dtype=object, index=out.index)
    return out


def _tcp_headers_cut(ft) -> np.ndarray:
    """Per flow of ``ft`` (a :class:`~kscc_traffic.flows.FlowTable`), bool: a TCP flow none of
    whose packets had its TCP header captured whole (the snaplen cut each one inside its 20 fixed
    bytes: ``payload_len`` -1), so its flags, state and bytes are unknown."""
    c = ft.packets.cols
    cut = np.zeros(len(ft.flows), bool)
    at = np.flatnonzero(c["payload_len"] < 0)      # (only such TCP rows have it: usually none)
    at = at[(c["proto"][at] == 6) & (ft.pkt_flow[at] >= 0)]
    if not len(at):
        return cut
    cut[ft.pkt_flow[at]] = True
    pf = ft.pkt_flow
    whole = (pf >= 0) & (c["proto"] == 6) & (c["payload_len"] >= 0)
    cut[pf[whole]] = False
    return cut


#: a time the file gives for its capture's end (a pcapng Interface Statistics Block, a frame that
#: is not IP) is believed when it is at most this long (ns) after the last IP packet (later: a
#: wrong clock)
STOP_AFTER_NS = 24 * 3600 * 10**9


def capture_end(last_packet_ns: int, stats: ReadStats | None) -> int:
    """The capture's end (epoch ns) for the verdicts on the flows still open at its end.

    The last IP packet's time ``last_packet_ns``, or a later time the file gives: a frame
    that is not IP (``stats.last_frame_ns``: an ARP request 5 s after an unanswered SYN shows
    the capture ran on) or the capture's own end (``stats.end_ns``: a pcapng Interface
    Statistics Block), each when at most :data:`STOP_AFTER_NS` after ``last_packet_ns``.
    """
    end = last_packet_ns
    if stats is not None:
        for later in (stats.last_frame_ns, stats.end_ns):
            if later is not None and last_packet_ns <= later <= last_packet_ns + STOP_AFTER_NS:
                end = max(end, later)
    return end


def _quiet_after(last_ts: np.ndarray, until_ns: int | None) -> np.ndarray:
    """Per flow, seconds from its last packet (``last_ts``, epoch ns) to ``until_ns``, within
    [0, TLS_SILENCE_S] (float64; zeros when ``until_ns`` is None). Capped so that the value does
    not depend on how far the capture is known to go on: every reading (whole file, chunks, live)
    knows at least that much for a flow it hands out (their timeouts are longer)."""
    if until_ns is None or len(last_ts) == 0:
        return np.zeros(len(last_ts))
    gap = (int(until_ns) - np.maximum(last_ts, int(until_ns) - 10**12)) / 1e9   # (no overflow)
    return np.clip(gap, 0.0, TLS_SILENCE_S)


def _in_order(flows: pd.DataFrame, extra: pd.DataFrame, order: np.ndarray) -> pd.DataFrame:
    """The rows of ``flows`` then those of ``extra`` (the flows of ICMP errors that quote no flow
    seen: :func:`analyze_batch`) in one new table, in ``order`` (positions in that concatenation:
    time order of first packet)."""
    both = pd.concat([flows, extra.assign(orig_resent=False, tcp_hdr_cut=False)], ignore_index=True)
    return both.iloc[order].reset_index(drop=True)


def _add_weights(ft, weights: np.ndarray) -> None:
    """Add ``weights`` (see :func:`analyze_batch`) to the flows' counters, in place."""
    at = np.nonzero(weights.any(axis=1) & (ft.pkt_flow >= 0))[0]
    if not len(at):
        return
    flows = ft.flows
    f, side = ft.pkt_flow[at], ft.pkt_from_orig[at]
    for j, (o_col, r_col) in enumerate(WEIGHT_COUNTERS):
        if o_col == "orig_bytes" and ft.seq_bytes is not None:
            # TCP bytes come from sequence numbers; the summed payloads (with what the weights
            # stand for) only tell whether those can be trusted
            sums = ft.byte_sums.copy()
            for k, mine in ((0, side), (1, ~side)):
                np.add.at(sums[:, k], f[mine], weights[at[mine], j])
            ft.byte_sums = sums
            both = tcp_payload_bytes(ft.seq_bytes, sums)
            flows[o_col], flows[r_col] = both[:, 0], both[:, 1]
            continue
        for col, mine in ((o_col, side), (r_col, ~side)):
            v = flows[col].to_numpy(np.int64).copy()
            np.add.at(v, f[mine], weights[at[mine], j])
            flows[col] = v


def _schema(flows: pd.DataFrame, extra: dict | None = None) -> pd.DataFrame:
    """``flows`` with exactly :data:`COLUMNS`, in order, with their dtypes (text columns
    ``object`` with '' for missing values; absent columns filled with '' / 0). A new frame.
    ``extra``: columns (name -> 1-D array of ``len(flows)`` values) put in place of those of
    ``flows``, as if assigned to it first (``flows``' column labels must then be unique).

    The text columns go through one 2-D object array (one scan finds whether any cell is not
    text; only then are the missing ones looked for), and the frame is built from one block per
    dtype (``pandas.api.internals.create_dataframe_from_blocks``; without it, a numeric frame and
    a text frame joined): per-column work on a few thousand rows costs more in pandas' overhead
    than in the data.
    Only the columns of :data:`COLUMNS` are read (a batch has ~35 others), through ``object``
    labels when they are unique (pandas 3's ``str`` labels cost more per column read)."""
    n = len(flows)
    if flows.columns.is_unique:
        if flows.columns.dtype != object:
            flows = flows.copy(deep=False)          # (shallow: only the labels change)
            flows.columns = label_index(flows.columns)
        have = set(flows.columns.tolist())
        got = arrays_of(flows, [k for k in COLUMNS if k in have and (extra is None or k not in extra)])
    else:
        if extra:
            raise ValueError("extra columns for a table whose column labels are not unique")
        got = dict(flows.items())
    if extra:
        got.update(extra)
    text = np.empty((len(_TEXT_NAMES), n), dtype=object)
    for i, k in enumerate(_TEXT_NAMES):
        col = got.get(k)
        text[i] = "" if col is None else col if isinstance(col, np.ndarray) else col.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(text.reshape(-1), skipna=False) not in ("string", "empty"):
        text[pd.isna(text)] = ""
    if _FROM_BLOCKS is not None:
        # (one block per dtype, each filled row by row, and the text block as it is: the frame
        # the constructors below give, without their per-column work)
        blocks = [(text, _TEXT_AT)]
        for dtype, names, at in _NUMBER_BLOCKS:
            block = np.zeros((len(names), n), dtype)
            for i, k in enumerate(names):
                if k in got:
                    block[i] = (got[k] if isinstance(got[k], np.ndarray) else got[k].to_numpy()).astype(dtype, copy=False)
            blocks.append((block, at))
        return _FROM_BLOCKS(blocks, index=pd.RangeIndex(n), columns=pd.Index(list(COLUMNS)))
    numbers = {k: ((got[k] if isinstance(got[k], np.ndarray) else got[k].to_numpy()).astype(dtype, copy=False)
                   if k in got else np.zeros(n, dtype))
               for k, (dtype, _, _) in COLUMNS.items() if dtype != "object"}
    both = pd.concat([pd.DataFrame(numbers),
                      pd.DataFrame(text.T, columns=_TEXT_NAMES, dtype=object, copy=False)], axis=1)
    return both[list(COLUMNS)]


#: first bytes of the files we read: pcap (µs, ns, both orders, "modified"), pcapng, compressed
_MAGICS = CAPTURE_MAGICS


def _shell_word(path) -> str:
    """``path`` quoted for a POSIX shell (:func:`shlex.quote`), or ``FILE`` when its text has
    characters :func:`kscc_traffic.text.path_text` escapes (control characters…): a command line
    shown in an error, never a name to paste blindly."""
    import shlex
    text = os.fspath(path)
    text = text if isinstance(text, str) else text.decode("utf-8", "replace")
    return shlex.quote(text) if path_text(text) == text else "FILE"


def _check_source(path, magic: bool = True) -> None:
    """Refuse what is not a capture before reading it whole: a missing path, a directory, a FIFO
    or device (``/dev/urandom`` would never end; with the built-in engine, ``magic``, the error
    says to give it on standard input instead, ``kscc-traffic analyze - < PATH``, which reads a
    stream once; the tshark engine reads files only), or (``magic``) a file whose first bytes
    are no pcap/pcapng/gzip magic (not with the tshark engine, which reads every format
    Wireshark reads: snoop, Network Monitor, NetScaler, ERF…).

    :data:`~kscc_traffic.capture.files.STDIN` (the command line's ``-``) is read as a stream,
    nothing of it before: refused only when it is closed or a terminal (nobody piped a capture).

    :raises CaptureError: with a one-line message naming the file.
    """
    if is_stdin(path):
        try:
            os.fstat(0)
        except OSError:
            raise CaptureAccessError(f"{STDIN_TEXT}: cannot read: it is closed") from None
        if os.isatty(0):
            raise CaptureError(f"{STDIN_TEXT} is a terminal: pipe a capture in (tcpdump -w - … | "
                               "kscc-traffic analyze -), or give a capture file")
        return
    if not os.fspath(path):
        # (Path('') is the current folder: "." is a directory said of an empty name; newcomer s55 #11)
        raise CaptureError("no capture given: the path is empty")
    p = Path(path)
    shown = path_text(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise CaptureError(f"{shown}: no such file") from None
    except OSError as e:
        raise CaptureAccessError(f"{shown}: {e.strerror or e}") from None
    if stat.S_ISDIR(st.st_mode):
        raise CaptureError(f"{shown}: is a directory, not a capture file")
    if not stat.S_ISREG(st.st_mode):
        raise CaptureError(f"{shown}: not a regular file (a pipe or device); save the capture to a file first"
                           + (f", or give it on standard input: kscc-traffic analyze - < {_shell_word(path)}"
                              if magic else ""))
    try:
        with open(p, "rb") as fh:
            head = fh.read(KNOWN_HEAD_BYTES)   # (enough to tell a tar archive)
    except OSError as e:
        raise CaptureAccessError(f"{shown}: cannot read: {e.strerror or e}") from None
    if magic and len(head) >= 4 and not any(head.startswith(m) for m in _MAGICS):
        try:
            read_frames(head, name=shown)  # raises UnsupportedFormat with the magic seen
        except CaptureError as e:
            raise type(e)(str(e)) from None
        raise CaptureError(f"{shown}: not a pcap or pcapng file")


def check_capture(path: str | os.PathLike, engine: str = "builtin") -> None:
    """Fail now if ``path`` cannot be analysed at all (missing, a directory or device, not a
    capture, its file header cut, damage before its first record), reading no more than its
    first record; :data:`~kscc_traffic.capture.files.STDIN` is not read at all (only refused
    when closed or a terminal). With the ``tshark``
    engine, whether it is a regular file and, when it is no pcap/pcapng/compressed file, that
    tshark does not read it as a file holding no packets (JSON, an image…: its first frame is
    dissected); tshark reads formats the built-in reader does not, and says itself what it
    cannot read.

    A :class:`~kscc_traffic.capture.filesets.FileSet` fails when none of its files can be
    analysed (the error of its first file); one that cannot is skipped when the set is read, with
    a warning.

    :raises kscc_traffic.errors.CaptureError: with a one-line message naming the file.
    :raises OSError: the file cannot be read.
    """
    if isinstance(path, FileSet):
        errors = []
        for p in path.paths:
            try:
                return check_capture(p, engine)
            except (CaptureError, OSError) as e:
                errors.append(e)
        raise errors[0]
    _check_source(path, magic=engine != "tshark")
    if is_stdin(path):
        # (a stream is read once: its first bytes read here would be missing from the analysis,
        # and on a live pipe this would wait for a first record; its first chunk is judged as it
        # is read, filesets._iter_stdin)
        return
    if engine == "tshark":
        # (a JSON document, an image… that tshark opens as one frame: not a capture)
        from .engines.tshark import check_is_capture
        check_is_capture(path, magics=_MAGICS, name=path_text(path))
    else:
        first = next(iter_frames(path, 64, name=path_text(path)), None)
        st = first.stats if first is not None else None
        if st is not None and st.records == 0 and st.damage_offset is not None:
            # damage before any record: nothing of it can be analysed (as tshark says)
            why = st.warnings[0].split(": ", 1)[-1] if st.warnings else f"damage at offset {st.damage_offset}"
            stream = st.stream_problem()
            if stream and stream != st.warnings[0]:
                # (the offset is one of the decompressed data: say that the compressed file was cut)
                why += f"; {stream.split(': ', 1)[-1]}"
            raise CorruptCapture(f"{path_text(path)}: no packet could be read: {why}")


def capture_names(paths) -> list[str]:
    """The name of each capture of one run (the ``capture`` column, the uid seed, warning lines),
    in the order of ``paths``.

    A capture is named by its file name when no other path of the run has the same file name;
    else by the shortest end of its (absolute) path that no other path with that file name
    shares: ``d1/x.pcap`` and ``d2/x.pcap``, ``a/b/x.pcap`` beside ``c/b/x.pcap``. The same path
    given more than once (``x.pcap``, ``./x.pcap``) is named ``x.pcap``, ``x.pcap (2)``…. A name
    depends only on the set of paths, not on their order; a capture analysed alone is named by its
    file name, so its uids are those of a single-file run. Names are escaped text
    (:func:`kscc_traffic.text.name_text`, applied to each path part; parts joined by ``/``).
    A :class:`~kscc_traffic.capture.filesets.FileSet` is named ``<its first file's name> ..
    <its last file's file name>``, its first file named as a path among the others.
    """
    sets = {i: p for i, p in enumerate(paths) if isinstance(p, FileSet)}
    if sets:
        names = capture_names([p.paths[0] if isinstance(p, FileSet) else p for p in paths])
        for i, fs in sets.items():
            if len(fs.paths) > 1:
                names[i] = f"{names[i]} .. {name_text(fs.paths[-1].name)}"
        return names
    raw = [os.fsdecode(p) if isinstance(p, bytes) else os.fspath(p) for p in paths]
    parts = [Path(os.path.abspath(p)).parts for p in raw]
    base = [ps[-1] if ps else r for ps, r in zip(parts, raw)]
    by_base: dict[str, list[int]] = {}
    for i, b in enumerate(base):
        by_base.setdefault(b, []).append(i)
    names = [name_text(b) for b in base]
    for group in by_base.values():
        distinct = list(dict.fromkeys(parts[i] for i in group))
        if len(distinct) < 2:
            continue
        chosen: dict[tuple, str] = {}
        todo, k = distinct, 2
        while todo:   # the paths not told apart yet: one more part of their end
            count = Counter(q[-k:] for q in distinct)
            rest = []
            for ps in todo:
                if count[ps[-k:]] > 1 and k < len(ps):
                    rest.append(ps)
                elif k < len(ps):
                    chosen[ps] = "/".join(name_text(x) for x in ps[-k:])
                else:   # nothing shorter than the whole path: its anchor ('/') kept once
                    chosen[ps] = path_text(ps[0]) + "/".join(name_text(x) for x in ps[1:])
            todo, k = rest, k + 1
        for i in group:
            names[i] = chosen[parts[i]]
    seen: dict[tuple, int] = {}
    for i, ps in enumerate(parts):
        n = seen[ps] = seen.get(ps, 0) + 1
        if n > 1:
            names[i] = f"{names[i]} ({n})"
    return names


def analyze_file(path: str | os.PathLike, rules: RuleSet | None = None, engine: str = "builtin", *,
                 name: str | None = None) -> Analysis:
    """Analyse one capture file.

    :param engine: ``builtin`` (default: our reader and decoder) or ``tshark`` (Wireshark's
        dissectors through ``tshark``, :mod:`kscc_traffic.engines.tshark`); both feed the same
        flow/inspection/classification stages.
    :raises kscc_traffic.errors.CaptureError: the file is missing, not a capture, or its header is
        cut (damage after the header only adds warnings to ``Analysis.stats``).
    :raises kscc_traffic.errors.EngineError: ``engine`` is unknown, or tshark is not installed.
    :param name: the capture's name (``capture`` column, uid seed; default: its file name,
        escaped); :func:`analyze_files` names each of several captures by :func:`capture_names`.
    ``path`` may be a :class:`~kscc_traffic.capture.filesets.FileSet` (files read one after
    the other as one capture; ``stats`` then keyed by ``str(path)``).

    :returns: :class:`Analysis`: ``flows`` with the columns and dtypes of :data:`COLUMNS`
        (whichever engine, however many chunks the file was read in, and with no row for a
        capture without IP flows), ``stats`` keyed by ``str(path)``.
    """
    rules = rules or load_rules()
    parts: list[pd.DataFrame] = []
    run = open_analysis(path, rules, engine, name=name)
    parts = list(run.batches())
    flows = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0] if parts else _schema(pd.DataFrame())
    if len(parts) > 1:
        flows = flows.sort_values("ts_ns", kind="stable").reset_index(drop=True)
    return Analysis(flows, {str(path): run.stats}, run.duplicates)


def open_analysis(path: str | os.PathLike, rules: RuleSet, engine: str = "builtin", *,
                  chunk_bytes: int | None = None, progress=None, name: str | None = None,
                  worker: bool = False, render=None):
    """Check ``path`` and return an object whose ``batches()`` yields the finished flows batch
    by batch (DataFrames with :data:`COLUMNS`); once exhausted, its ``stats`` (ReadStats, with a
    warning line for duplicated frames) and ``duplicates`` are complete.

    ``worker`` (builtin engine): the flows are classified in a second process while the next
    chunk is read (:class:`kscc_traffic.finishing.Finisher`: faster on two cores or more, one
    more Python process in memory). ``render``: ``render(flows)`` (picklable) applied to each
    batch of the builtin engine (in that process), its result handed out instead (e.g.
    :class:`kscc_traffic.output.Render`: the report's text); the tshark engine's one batch comes
    as a DataFrame.

    ``builtin``: :class:`kscc_traffic.chunked.ChunkedAnalysis` (bounded memory);
    ``tshark``: the whole file through tshark, one batch.

    ``name``: the capture's name (``capture`` column, uid seed, warning lines; default: its
    file name, :func:`capture_names` of the path alone).

    ``path`` may be a :class:`~kscc_traffic.capture.filesets.FileSet`: its files are read one
    after the other as one capture (the tshark engine dissects each and joins the packets).

    :raises kscc_traffic.errors.CaptureError: as :func:`analyze_file` (from this call).
    :raises kscc_traffic.errors.EngineError: unknown engine, or tshark not installed.
    """
    if isinstance(path, FileSet):
        check_capture(path, "tshark")   # (each file's format: when it is read)
    else:
        _check_source(path, magic=engine != "tshark")
    if name is None:
        name = capture_names([path])[0]
    if engine == "tshark":
        try:
            packets = _tshark_packets(path, name)
        except CaptureError as e:
            raise as_given(e, name, path) from None
        return _WholeFile(packets, rules, name)
    if engine != "builtin":
        from .errors import EngineError
        raise EngineError(f"unknown engine {engine!r} (choose builtin or tshark)")
    from .chunked import CHUNK_BYTES, ChunkedAnalysis
    run = ChunkedAnalysis(path, rules, name, chunk_bytes=chunk_bytes or CHUNK_BYTES, progress=progress,
                          worker=worker, render=render)
    try:
        run.first_chunk()  # reading errors (not a capture, cut header) raise here, not mid-iteration
    except CaptureError as e:
        raise as_given(e, name, path) from None
    return run


def as_given(e: CaptureError, name: str, path) -> CaptureError:
    """``e`` (raised by the reader, which names the capture ``name``: its file name) naming
    ``path`` as it was given instead (:func:`kscc_traffic.text.path_text`), as the checks
    before reading (:func:`check_capture`) and the command line's ``Error:`` lines name it: one
    file, one text, whichever step found the problem (newcomer 26: ``empty.pcap: empty file``
    beside ``/tmp/…/notes.pcap: not a pcap…``). The same exception class; ``e`` itself when
    its text does not start with ``name``."""
    text, shown = str(e), path_text(path)
    if not name or shown == name or not text.startswith(name + ": "):
        return e
    return type(e)(shown + text[len(name):])


def _tshark_packets(path, name: str):
    """The tshark engine's packets of a file, or of a file set's files one after the other
    (frame numbers running on; a file tshark cannot read is skipped with a warning)."""
    from .engines.tshark import read_packets
    from .capture.packets import Packets
    if not isinstance(path, FileSet):
        return read_packets(path, name=name)
    parts, stats, base, first_error = [], ReadStats(), 0, None
    for p in path.paths:
        try:
            pk = read_packets(p, name=name_text(p.name))
        except CaptureError as e:
            first_error = first_error or e
            stats.warn(f"{name_text(p.name)}: skipped (part of {name}): {e}")
            continue
        if len(pk):
            pk.cols["frame"] = pk.cols["frame"] + base
        base += pk.stats.records
        stats.merge(pk.stats)
        parts.append(pk)
    if not parts:
        raise first_error
    return Packets.concat(parts, stats)


class _WholeFile:
    """Decoded packets of a whole capture as one batch (the tshark engine)."""

    def __init__(self, packets, rules: RuleSet, name: str) -> None:
        self.packets, self.rules, self.name = packets, rules, name
        self.stats = packets.stats
        self.duplicates = 0

    def batches(self):
        """The whole capture's finished flow rows, as one batch (a one-item iterator of a
        DataFrame of :data:`COLUMNS`), and its warnings added to :attr:`stats`."""
        ts = self.packets.cols["ts_ns"] if len(self.packets) else None
        from .chunked import JUMP_FORWARD_NS, STEP_BACK_NS, jumps_forward
        c = self.packets.cols
        short = short_payloads(c)
        # (lone damaged stamps take the time of the frame before them, as the built-in reader's
        # records do: stamps.py)
        mended = mend_lone_stamps(c) if len(self.packets) else 0
        # (the IP packets' times in file order: the steps back of the clock, as the built-in reader
        # counts them over its records)
        t = c["ts_ns"][np.argsort(c["frame"], kind="stable")] if len(self.packets) else c["ts_ns"]
        steps = int(np.count_nonzero(t[1:] < t[:-1] - STEP_BACK_NS))
        jumps, largest, _ = jumps_forward(t)
        end = capture_end(int(ts.max()), self.stats) if ts is not None else None
        b = analyze_batch(self.packets, self.rules, self.name, capture_end_ns=end, observed_until_ns=end,
                          cut_end=self.stats.cut_end)
        flows, self.duplicates = b.flows, b.duplicates
        if b.internal is not None and len(b.internal.columns):
            flows = pd.concat([b.flows, b.internal], axis=1)
        forwarded = forwarded_copies(c, b.dup_of)
        one_way = one_way_counts(flows)
        from .natpairs import NatWatch
        nat = NatWatch()
        nat.add(flows)                  # (before the internal columns go: TTLs, IP IDs)
        from .classify import note_nat_copies
        note_nat_copies(flows)          # (classified already: the copies' details said here)
        flows = flows[[c for c in flows.columns if c in COLUMNS]] if len(flows.columns) > len(COLUMNS) else flows
        self.packets = None
        self.stats.warn_no_ip(self.name)
        self.stats.warn_short_packets(self.name, short)
        self.stats.warn_lone_stamps(self.name, mended)
        self.stats.warn_steps_back(self.name, steps, STEP_BACK_NS)
        self.stats.warn_jumps_forward(self.name, jumps, JUMP_FORWARD_NS, largest)
        self.stats.warn_frozen_clock(self.name, len(t), int(t.max()) - int(t.min()) if len(t) else 0)
        self.stats.warn_one_way(self.name, *one_way.tolist())
        from .lookups import LookupsWatch
        lookups = LookupsWatch()
        lookups.add(flows)
        lookups.warn(self.stats, self.name)
        nat.warn(self.stats, self.name)
        self.stats.nat_syns = nat.sample()
        _note_duplicates(self.stats, self.name, self.duplicates, forwarded)
        yield ties_by_uid(flows)        # (flows of one time in order of uid, as the builtin engine's)


def one_way_counts(flows: pd.DataFrame) -> np.ndarray:
    """Of a flow table (with the internal column ``acked_unseen`` when it has one: ``inspect``):
    int64 array [TCP flows, those with packets both ways, those seen one way whose one side's
    packets acknowledge the other's, none of which was captured: a responder's SYN-ACK or data,
    or the originator's acknowledgement after its SYN or going on by more than a byte] (what
    :meth:`ReadStats.warn_one_way` reads, summed over a capture's batches)."""
    if not len(flows):
        return np.zeros(3, np.int64)
    tcp = flows["proto"].to_numpy(dtype=object) == "tcp"
    both = tcp & (flows["orig_pkts"].to_numpy() > 0) & (flows["resp_pkts"].to_numpy() > 0)
    seen = np.zeros(len(flows), bool)
    if "acked_unseen" in flows:
        unseen = flows["acked_unseen"].to_numpy(dtype=object)
        # (the originator's acknowledgements prove something only after its SYN, the SYN-ACK's,
        # or when they go on: an ACK scan's lone ACKs prove nothing)
        proof = ~flows["partial"].to_numpy(dtype=bool) | (flows["resp_bytes"].to_numpy() > 1)
        seen = tcp & ((unseen == "orig") | ((unseen == "resp") & proof))
    return np.array([np.count_nonzero(tcp), np.count_nonzero(both), np.count_nonzero(seen)], np.int64)


def duplicates_note(name: str, dups: int, forwarded: int = 0) -> str | None:
    """The warning line about ``dups`` duplicated frames counted once in capture ``name`` (None
    when ``dups`` is 0); ``forwarded`` of them (:func:`kscc_traffic.flows.forwarded_copies`) were
    a packet the capturing host forwarded, captured arriving and leaving (a capture on a router
    or firewall): the line says so, and that a reset is compared with the packets captured as it
    was (:data:`kscc_traffic.inspect.SENT_KEY`)."""
    if not dups:
        return None
    line = f"{name}: {dups} duplicated frame{'s' if dups != 1 else ''} counted once"
    if forwarded:
        line += (f" ({forwarded} of them packets the capturing host forwarded, captured as they came in and "
                 "again as they left one hop lower: a capture on a router or firewall, tcpdump -i any; a TCP "
                 "reset is compared with its sender's packets captured the same way, so that one the router "
                 "sent itself is not taken for the server's)")
    return line


def _note_duplicates(stats: ReadStats, name: str, dups: int, forwarded: int = 0) -> None:
    line = duplicates_note(name, dups, forwarded)
    if line:
        stats.warn(line)


def analyze_files(paths, rules: RuleSet | None = None, engine: str = "builtin", *,
                  file_sets: str = "auto") -> Analysis:
    """Analyse several captures; their flows are concatenated (column ``capture`` names each,
    :func:`capture_names`: unique within the call). ``engine``: as for :func:`analyze_file`.
    ``stats`` is keyed by each path as given (by its capture name for a path given again).

    A folder among ``paths`` stands for the capture files in it, as on the command line
    (:func:`kscc_traffic.capture.folders.folder_captures`: pcap, pcapng or compressed files by
    their first bytes, in name order, not its subfolders; a file in it that cannot be opened
    is read like one given by name, so it raises); the line naming what else it held and was
    not read (subfolders, archives, other files…) goes into ``stats`` under ``""``.

    ``file_sets``: ``auto`` reads the files of one ring buffer or file set (dumpcap's
    ``x_00001_20261130101500.pcapng``…, ``tcpdump -C``'s ``x.pcap``, ``x.pcap1``…) as one
    capture, ``join`` reads all of ``paths`` as one, ``separate`` each on its own
    (:func:`kscc_traffic.capture.filesets.group_file_sets`; its warnings go into ``stats``
    under ``""``).

    :returns: :class:`Analysis`: ``flows`` the captures' tables one after the other (index
        0…n-1, the columns and dtypes of :data:`COLUMNS`), ``stats`` per capture.
    :raises ValueError: an unknown ``file_sets`` mode.
    :raises kscc_traffic.errors.CaptureError: a capture cannot be read at all, a folder cannot be
        listed or holds no capture file (the message names what it holds).
    """
    rules = rules or load_rules()
    paths, notes = expand_folders(paths)
    paths, set_notes = group_file_sets(paths, file_sets)
    notes += set_notes
    parts, stats, dups = [], {}, 0
    if notes:
        stats[""] = ReadStats(warnings=list(notes))
    syns = []               # (capture name, its candidate SYNs): kscc_traffic.natpairs.across_captures
    for p, name in zip(paths, capture_names(paths)):
        a = analyze_file(p, rules, engine, name=name)
        parts.append(a.flows)
        syns += [(name, st.nat_syns) for st in a.stats.values() if st is not None]
        for key, st in a.stats.items():
            stats[key if key not in stats else name] = st
        dups += a.duplicates
    if len(paths) > 1:
        # (two captures that are the two sides of a NAT, analysed apart: said)
        from .natpairs import across_captures
        nat = across_captures(syns)
        if nat:
            stats.setdefault("", ReadStats()).warnings.extend(nat)
    flows = pd.concat(parts, ignore_index=True) if parts else _schema(pd.DataFrame())
    return Analysis(flows, stats, dups)


def analyze(path: str | os.PathLike | list, rules: str | os.PathLike | RuleSet | None = None, *,
            file_sets: str = "auto") -> pd.DataFrame:
    """Analyse capture(s) and return the classified flow table.

    :param path: a pcap/pcapng file (also compressed) or a folder, or a list of them; a folder
        stands for the capture files in it, as on the command line (:func:`analyze_files`:
        not its subfolders; what it holds that is not read is said in a
        :class:`~kscc_traffic.errors.CaptureWarning`).
    :param file_sets: how a list's files are grouped into captures (``auto``: a ring buffer's or
        file set's files are one capture; ``join``; ``separate``): :func:`analyze_files`.
    :param rules: a rules file, a loaded :class:`RuleSet`, or None for the bundled KSC Cloud rules.
    :returns: DataFrame, one row per flow (index 0…n-1, in order of ``ts_ns`` within each
        capture, the captures one after the other), exactly the columns of :data:`COLUMNS` in
        order with their dtypes (Zeek conn.log names: ``ts`` float epoch seconds, ``ts_ns``
        int64 epoch nanoseconds, ``duration`` seconds, ``*_bytes`` bytes, ``*_pkts`` packets;
        plus ``server_name``, ``name_source``, ``purpose``, ``verdict``, ``reason``…): text
        columns ``object`` of Python ``str`` (``''`` when empty, never NaN), counts ``int64``, no
        categorical or nullable dtype; the same columns and dtypes with no row (a capture without
        IP flows, an empty list).
    :raises ValueError: an unknown ``file_sets`` mode.
    :raises kscc_traffic.errors.CaptureError: a file cannot be read at all (also one in a folder
        given: ``Permission denied``), a folder holds no capture file or cannot be listed.
    :raises kscc_traffic.errors.RulesError: the rules file is invalid.
    Damage after a file's header is not an error: what was skipped is reported as one
    :class:`kscc_traffic.errors.CaptureWarning` per line (``analyze_files(...).stats`` has the counts).
    """
    rs = rules if isinstance(rules, RuleSet) else load_rules(rules)
    paths = path if isinstance(path, (list, tuple)) else [path]
    result = analyze_files(paths, rs, file_sets=file_sets)
    for line in result.warnings:
        warnings.warn(line, CaptureWarning, stacklevel=2)
    return result.flows


def read_flows(source, format: str | None = None) -> pd.DataFrame:
    """Read back a flow table written by ``kscc-traffic analyze --format csv`` (or ``jsonl``),
    each column of :data:`COLUMNS` with its documented dtype, as :func:`analyze` returns it.

    ``pandas.read_csv`` alone infers the dtypes from the cells: ``http_status`` (text, ``'200'``,
    ``''`` when none) comes back as ``float64`` (``200.0``, ``NaN``), or ``int64`` when every flow
    has one; any text column empty everywhere (``tls_alert``, ``proxy_target``…) as ``float64``
    ``NaN``; one whose cells all look like numbers (a ``query`` or ``sni`` of digits) as numbers;
    and the text columns as pandas 3's ``str``. Here every text column is ``object`` of Python
    ``str`` (``""`` when empty, never ``NaN``), the numbers ``int64``/``float64`` and the flags
    ``bool``, so ``flows.http_status == "407"`` and the table helpers work alike on both.
    Columns that are not in :data:`COLUMNS` are kept as pandas reads them; a column of
    :data:`COLUMNS` the file lacks is not added. Cells the CSV guarded against spreadsheet
    formulas keep their leading ``'`` (``'=cmd|…``), as written.

    :param source: a path or a file-like object, as ``pandas.read_csv`` takes.
    :param format: ``"csv"`` or ``"jsonl"``; default: ``"jsonl"`` for a path ending in
        ``.jsonl``/``.json``/``.ndjson``, else ``"csv"``.
    :returns: DataFrame, one row per flow, index 0…n-1, the file's columns in its order.
    :raises ValueError: ``format`` is neither, or a column of :data:`COLUMNS` holds a value
        that is not of its dtype (a file that is not the tool's flow table).
    """
    if format is None:
        name = str(source) if isinstance(source, (str, os.PathLike)) else ""
        format = "jsonl" if name.lower().endswith((".jsonl", ".json", ".ndjson")) else "csv"
    if format == "csv":
        text = {k: str for k in _TEXT_NAMES}
        flows = pd.read_csv(source, dtype=text, keep_default_na=False)
    elif format == "jsonl":
        flows = pd.read_json(source, lines=True, dtype=False)
    else:
        raise ValueError(f"read_flows: format must be 'csv' or 'jsonl', not {format!r}")
    cols = {}
    for k in flows.columns:
        if k not in COLUMNS:
            continue
        dtype = COLUMNS[k][0]
        col = flows[k]
        try:
            if dtype == "object":
                values = col.to_numpy(dtype=object)
                missing = pd.isna(values)
                if missing.any():
                    values[missing] = ""
                cols[k] = pd.Series([v if isinstance(v, str) else str(v) for v in values.tolist()],
                                    index=flows.index, dtype=object)
            elif dtype == "bool" and col.dtype != bool:
                cols[k] = col.map({"True": True, "False": False, True: True, False: False}).astype(bool)
            else:
                cols[k] = col.astype(dtype)
        except (TypeError, ValueError) as e:
            raise ValueError(f"read_flows: column {k!r} is not {dtype} ({e})") from None
    return flows.assign(**cols) if cols else flows
