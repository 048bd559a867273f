"""Port scans and address scans told from the flow table, so that their probes are not judged
as KSC traffic (newcomer 32 F3: a capture taken while a security scanner ran said "blocked" for
every documented port the scanner tried).

As Zeek's ``policy/misc/scan.zeek`` (notices ``Scan::Port_Scan`` and ``Scan::Address_Scan``),
a scan is one originator's failed or empty connection attempts counted per target within a time
window: distinct responder ports of one host (a port scan: ``nmap -sS``/``-sT``, a vulnerability
scanner) or distinct hosts on one port (an address scan, a sweep: ``masscan -p23101 10.0.0.0/24``).

A *probe* (:func:`probe_mask`) is a TCP flow the originator began with a SYN (its start
captured), with no payload byte either way, lasting at most :data:`PROBE_MAX_S`, that ended as a
probe does: unanswered (``S0``, ``SH``), refused (``REJ``), reset by the originator before or
after the responder's SYN-ACK (``RSTOS0``; ``RSTO`` with history ``ShR``: a half-open SYN scan),
or connected and closed at once (``RSTO``/``RSTR``/``SF`` within :data:`CONNECT_PROBE_S`: a
connect() scan). For the address scan the probe also has no ``server_name``: the originator did
not look the responder up (a sweep goes to addresses; a program behind a proxy or a NAT, a
browser, an agent trying the cloud's addresses, connects to names).

A probe is part of a scan when both hold (:func:`scan_kinds`):

- some window of :data:`SCAN_WINDOW_S` holding it holds probes of its originator to
  :data:`PORT_SCAN_PORTS` or more distinct ports of its responder (port scan), or to
  :data:`ADDRESS_SCAN_HOSTS` or more distinct hosts on its port (address scan);
- the originator's TCP attempts (any flow it began with a SYN, whatever became of it) to that
  host (on that port) that began from :data:`SCAN_WINDOW_S` before the probe to 5 s after its
  last packet (a probe closed by a reset: ``CLOSE_DELAY_NS``) or 300 s after it (an unanswered
  one: the TCP idle timeout) reach the same count. This is what is known when the probe's row
  leaves a chunked reading (:mod:`kscc_traffic.chunked`: a flow leaves that long after its last
  packet at the soonest), so only such probes wait there for the rest of their window, and a
  capture without scans leaves every row as soon as before. It means the first refused probes
  of a slow scan (fewer than 15 ports in the 5 s after them: nmap ``-T1``/``-T2``) are judged
  as any flow.

A probe in both kinds is a port-scan probe. Its row becomes ``unclassified`` (not judged), reason
``port_scan`` or ``address_scan``, purpose '' (not KSC traffic), the detail saying how it ended
and which documented purpose its port has (:func:`kscc_traffic.classify._note_scans`); the
report says each scan once (:func:`scan_lines`).
"""
from __future__ import annotations

from collections import Counter
from typing import Optional

import numpy as np
import pandas as pd

from .flows import CLOSE_DELAY_NS, IDLE_TIMEOUT_NS, TCP, history_plain

#: the window (s) in which a scan's probes are counted: Zeek's ``Scan::port_scan_interval`` and
#: ``Scan::addr_scan_interval`` (5 min; "a higher interval will detect slower scanners, but may
#: also yield more false positives")
SCAN_WINDOW_S = 300.0
SCAN_WINDOW_NS = int(SCAN_WINDOW_S * 1e9)
#: distinct ports of one host probed in the window that make a port scan: Zeek's
#: ``Scan::port_scan_threshold`` (15). An agent tries a handful of documented ports of a server
#: (23101, 443, 27201, 29201, 1443 of the cloud; 13000, 13111, 13295, 17111 of a distribution
#: point: 4-5 each), and retries one port many times (one distinct port): far below
PORT_SCAN_PORTS = 15
#: distinct hosts probed on one port in the window that make an address scan: Zeek's
#: ``Scan::addr_scan_threshold`` (25). Agents connect to a few cloud addresses by name (named
#: probes do not count), and a distribution point is connected to (the agents are the
#: originators, each probing one host): never near
ADDRESS_SCAN_HOSTS = 25
#: a probe lasts at most this long (s): scanners give up on a port within seconds (nmap's
#: largest round-trip timeout is 10 s, masscan sends one SYN); a connect() that retries its SYN
#: for a minute and more (Linux: 63 s, 127 s) is a program's
PROBE_MAX_S = 30.0
#: a probe that connected (SYN-ACK acknowledged) closed within this (s) with no data: a
#: connect() scan closes at once
CONNECT_PROBE_S = 1.0
PORT_SCAN = "port_scan"
ADDRESS_SCAN = "address_scan"
#: the internal column by which a chunked reading gives each leaving row its scan (a kind, or ''
#: for none; None where not decided): :class:`ScanWatch`
SCAN_COLUMN = "scan_probe"

#: states a probe ends in without a connection (no duration limit but :data:`PROBE_MAX_S`)
_UNCONNECTED = frozenset(("S0", "SH", "REJ", "RSTOS0", "RSTRH", "SHR", "OTH"))
#: states of a probe that connected (or was answered by a SYN-ACK), closed within CONNECT_PROBE_S
_CONNECTED = frozenset(("RSTO", "RSTR", "SF", "S2", "S3"))
_NEED = ("proto", "ts_ns", "duration", "orig_h", "resp_h", "resp_p", "conn_state", "history",
         "orig_bytes", "resp_bytes")
_MIX = np.uint64(0x9E3779B97F4A7C15)


def _col(flows: pd.DataFrame, name: str, default, dtype=object) -> np.ndarray:
    if name in flows.columns:
        return flows[name].to_numpy(dtype=dtype)
    return np.full(len(flows), default, dtype=dtype)


def attempt_mask(flows: pd.DataFrame) -> np.ndarray:
    """Per flow (bool): a TCP attempt — a TCP flow whose originator began it with a SYN, its start
    captured (not ``partial``): what the second condition of a scan counts. All False when the
    table lacks a column of the flow table it reads (``proto``, ``history``…)."""
    n = len(flows)
    if not n or any(c not in flows.columns for c in _NEED):
        return np.zeros(n, bool)
    tcp = _col(flows, "proto", "") == "tcp"
    partial = _col(flows, "partial", False, bool) if "partial" in flows.columns else np.zeros(n, bool)
    out = tcp & ~partial
    h_codes, h_names = pd.factorize(flows["history"].to_numpy(dtype=object), use_na_sentinel=False)
    starts = np.array([history_plain(str(h) if isinstance(h, str) else "").lstrip("^").startswith("S")
                       for h in h_names.tolist()] + [False], bool)
    return out & starts[h_codes]


def _possible(flows: pd.DataFrame, att: np.ndarray) -> np.ndarray:
    """Per flow (bool): an attempt that carried no payload byte and lasted at most
    :data:`PROBE_MAX_S` (a probe, or a flow still open that may end as one)."""
    empty = (_col(flows, "orig_bytes", 0, np.float64) <= 0) & (_col(flows, "resp_bytes", 0, np.float64) <= 0)
    dur = np.nan_to_num(_col(flows, "duration", 0.0, np.float64), nan=0.0)
    return att & empty & (dur <= PROBE_MAX_S)


def probe_mask(flows: pd.DataFrame, att: np.ndarray | None = None) -> np.ndarray:
    """Per flow (bool): a scan probe's shape (module docstring): an attempt (:func:`attempt_mask`)
    with no payload either way, at most :data:`PROBE_MAX_S` long, ended unanswered, refused or
    reset (``S0``, ``SH``, ``REJ``, ``RSTOS0``…), or connected and closed within
    :data:`CONNECT_PROBE_S` (``RSTO``, ``RSTR``, ``SF``). ``att``: :func:`attempt_mask`, when known."""
    att = attempt_mask(flows) if att is None else att
    if not att.any():
        return att
    state = _col(flows, "conn_state", "")
    dur = np.nan_to_num(_col(flows, "duration", 0.0, np.float64), nan=0.0)
    ended = np.isin(state, list(_UNCONNECTED)) | (np.isin(state, list(_CONNECTED)) & (dur <= CONNECT_PROBE_S))
    return _possible(flows, att) & ended


def _still_possible(flows: pd.DataFrame, att: np.ndarray) -> np.ndarray:
    """Per open flow (bool): may still end as a probe (:func:`probe_mask` of what it will be):
    an attempt with no payload so far, not longer than PROBE_MAX_S, not connected for longer
    than CONNECT_PROBE_S."""
    state = _col(flows, "conn_state", "")
    dur = np.nan_to_num(_col(flows, "duration", 0.0, np.float64), nan=0.0)
    return _possible(flows, att) & (np.isin(state, list(_UNCONNECTED)) | (dur <= CONNECT_PROBE_S))


def _hashes(values: np.ndarray) -> np.ndarray:
    return pd.util.hash_array(np.asarray([str(v) for v in values.tolist()], dtype=object)) if len(values) \
        else np.zeros(0, np.uint64)


class _Keys:
    """The key and value arrays of some flows: ``pkey`` (originator, responder, VLAN) and its
    value ``pval`` (the port), ``akey`` (originator, port, VLAN) and ``aval`` (the responder's
    hash), ``ts`` (ns), ``named`` (a ``server_name``)."""

    __slots__ = ("pkey", "pval", "akey", "aval", "ts", "named")

    def __init__(self, flows: pd.DataFrame | None = None, at: np.ndarray | None = None) -> None:
        if flows is None:
            z = np.zeros(0, np.uint64)
            self.pkey, self.pval, self.akey, self.aval = z, np.zeros(0, np.int64), z, z
            self.ts, self.named = np.zeros(0, np.int64), np.zeros(0, bool)
            return
        sub = flows.iloc[at] if at is not None else flows
        oh, rh = _hashes(_col(sub, "orig_h", "")), _hashes(_col(sub, "resp_h", ""))
        vl = _hashes(_col(sub, "vlan", 0)) if "vlan" in sub.columns else np.zeros(len(sub), np.uint64)
        port = sub["resp_p"].to_numpy(np.int64)
        with np.errstate(over="ignore"):
            base = oh * _MIX + vl
            self.pkey = (base * _MIX) ^ rh
            self.akey = (base * _MIX) ^ (port.astype(np.uint64) + np.uint64(1) << np.uint64(40))
        self.pval, self.aval = port, rh
        self.ts = sub["ts_ns"].to_numpy(np.int64)
        named = _col(sub, "server_name", "")
        self.named = np.fromiter((isinstance(x, str) and x != "" for x in named.tolist()), bool, len(sub))

    def take(self, mask: np.ndarray) -> "_Keys":
        out = _Keys()
        for k in self.__slots__:
            setattr(out, k, getattr(self, k)[mask])
        return out

    @staticmethod
    def join(parts: list["_Keys"]) -> "_Keys":
        out = _Keys()
        parts = [p for p in parts if len(p.ts)]
        if parts:
            for k in _Keys.__slots__:
                setattr(out, k, np.concatenate([getattr(p, k) for p in parts]))
        return out


def _distinct_enough(key: np.ndarray, val: np.ndarray, wanted: np.ndarray, threshold: int) -> np.ndarray:
    """The keys of ``wanted`` that have ``threshold`` or more distinct values in all (a bound:
    only those need a look window by window)."""
    if not len(key):
        return np.zeros(0, np.uint64)
    sel = np.isin(key, wanted)
    if not sel.any():
        return np.zeros(0, np.uint64)
    pairs = pd.DataFrame({"k": key[sel], "v": val[sel]}).drop_duplicates()
    sizes = pairs.groupby("k", sort=False).size()
    return sizes.index[sizes.to_numpy() >= threshold].to_numpy(np.uint64)


def _warm(att_key, att_ts, att_val, q_key, q_from, q_to, threshold: int) -> np.ndarray:
    """Per query: ``threshold`` or more distinct values among the attempts of its key begun in
    [q_from, q_to] (ns)."""
    out = np.zeros(len(q_key), bool)
    hot = _distinct_enough(att_key, att_val, np.unique(q_key), threshold)
    if not len(hot):
        return out
    sel = np.isin(att_key, hot)
    k, t, v = att_key[sel], att_ts[sel], att_val[sel]
    order = np.lexsort((t, k))
    k, t, v = k[order], t[order], v[order]
    for i in np.flatnonzero(np.isin(q_key, hot)).tolist():
        lo, hi = np.searchsorted(k, q_key[i], "left"), np.searchsorted(k, q_key[i], "right")
        a = lo + np.searchsorted(t[lo:hi], q_from[i], "left")
        b = lo + np.searchsorted(t[lo:hi], q_to[i], "right")
        out[i] = b - a >= threshold and len(np.unique(v[a:b])) >= threshold
    return out


def _scan_starts(t: np.ndarray, v: np.ndarray, threshold: int) -> np.ndarray:
    """The starts (ns, ascending) of the windows [start, start + SCAN_WINDOW_NS] that begin at a
    probe (``t`` ascending, ``v`` their values) and hold ``threshold`` or more distinct values."""
    counts: Counter = Counter()
    out, r, n = [], 0, len(t)
    tl, vl = t.tolist(), v.tolist()
    for i in range(n):
        while r < n and tl[r] <= tl[i] + SCAN_WINDOW_NS:
            counts[vl[r]] += 1
            r += 1
        if len(counts) >= threshold:
            out.append(tl[i])
        counts[vl[i]] -= 1
        if not counts[vl[i]]:
            del counts[vl[i]]
    return np.asarray(out, np.int64)


def _in_scan(pr_key, pr_ts, pr_val, q_key, q_ts, threshold: int) -> np.ndarray:
    """Per query: in a window of SCAN_WINDOW_NS holding ``threshold`` or more distinct values among
    the probes of its key."""
    out = np.zeros(len(q_key), bool)
    hot = _distinct_enough(pr_key, pr_val, np.unique(q_key), threshold)
    for key in hot.tolist():
        sel = pr_key == np.uint64(key)
        order = np.argsort(pr_ts[sel], kind="stable")
        starts = _scan_starts(pr_ts[sel][order], pr_val[sel][order], threshold)
        if not len(starts):
            continue
        at = np.flatnonzero(q_key == np.uint64(key))
        j = np.searchsorted(starts, q_ts[at], "right") - 1
        ok = j >= 0
        out[at[ok]] = q_ts[at][ok] <= starts[j[ok]] + SCAN_WINDOW_NS
    return out


def _leads(flows: pd.DataFrame, at: np.ndarray) -> np.ndarray:
    """Per row ``at``: the latest start (ns) of the attempts the second condition counts: its
    last packet (ts + duration) plus the time a flow of its kind stays open after its last packet
    (:mod:`kscc_traffic.chunked`: ``CLOSE_DELAY_NS``, 5 s, for a connection closed by a RST or FINs
    both ways; the TCP idle timeout, 300 s, for the others: an unanswered SYN)."""
    ts = flows["ts_ns"].to_numpy(np.int64)[at]
    dur = np.nan_to_num(flows["duration"].to_numpy(np.float64)[at], nan=0.0).clip(min=0.0)
    hist = flows["history"].to_numpy(dtype=object)[at]
    closed = np.fromiter((_closed(str(h) if isinstance(h, str) else "") for h in hist.tolist()), bool, len(at))
    return ts + (dur * 1e9).astype(np.int64) + np.where(closed, CLOSE_DELAY_NS, IDLE_TIMEOUT_NS[TCP])


def _closed(history: str) -> bool:
    """A TCP history closed as chunked's ``_closed_and_idle`` reads it (a RST, or FINs both ways)."""
    h = history_plain(history)
    return "R" in h or "r" in h or ("F" in h and "f" in h)


def scan_kinds(flows: pd.DataFrame) -> np.ndarray:
    """Per flow (object array of ``str``): :data:`PORT_SCAN` or :data:`ADDRESS_SCAN` for a probe
    that is part of a scan (module docstring), '' for the others, judged on the whole table
    (one capture: rows of another ``capture`` are other scans). A :data:`SCAN_COLUMN` of the
    table (a chunked reading's decision, which saw the rows of other batches) is taken where it
    holds text. All '' when a column of the flow table is missing."""
    n = len(flows)
    out = np.full(n, "", dtype=object)
    if not n:
        return out
    if SCAN_COLUMN in flows.columns:
        given = flows[SCAN_COLUMN].to_numpy(dtype=object)
        for i in np.flatnonzero(given != "").tolist():
            if isinstance(given[i], str) and given[i] in (PORT_SCAN, ADDRESS_SCAN):
                out[i] = given[i]
        return out
    if "capture" in flows.columns and flows["capture"].nunique() > 1:
        for _, g in flows.groupby("capture", sort=False).indices.items():
            out[g] = scan_kinds(flows.iloc[g].drop(columns="capture"))
        return out
    att = attempt_mask(flows)
    probe = probe_mask(flows, att)
    if probe.sum() < PORT_SCAN_PORTS:
        return out
    a = _Keys(flows, np.flatnonzero(att))
    at = np.flatnonzero(probe)
    p = _Keys(flows, at)
    lead = _leads(flows, at)
    out[at] = decide(a, p, p, lead, None)
    return out


def _warms(attempts: _Keys, queries: _Keys, lead: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per query: the second condition (module docstring) for a port scan, for an address scan."""
    warm_p = _warm(attempts.pkey, attempts.ts, attempts.pval, queries.pkey, queries.ts - SCAN_WINDOW_NS, lead,
                   PORT_SCAN_PORTS)
    warm_a = _warm(attempts.akey, attempts.ts, attempts.aval, queries.akey,
                   queries.ts - SCAN_WINDOW_NS, lead, ADDRESS_SCAN_HOSTS) & ~queries.named
    return warm_p, warm_a


def decide(attempts: _Keys, probes: _Keys, queries: _Keys, lead: np.ndarray, _unused=None) -> np.ndarray:
    """Per query (probe rows): its kind, '' for none (both conditions, module docstring), the
    windows taken as complete (the whole table)."""
    out = np.full(len(queries.ts), "", dtype=object)
    if not len(queries.ts):
        return out
    warm_p, warm_a = _warms(attempts, queries, lead)
    if warm_p.any():
        inp = _in_scan(probes.pkey, probes.ts, probes.pval, queries.pkey[warm_p], queries.ts[warm_p], PORT_SCAN_PORTS)
        out[np.flatnonzero(warm_p)[inp]] = PORT_SCAN
    rest = warm_a & (out == "")
    if rest.any():
        pu = probes.take(~probes.named)
        ina = _in_scan(pu.akey, pu.ts, pu.aval, queries.akey[rest], queries.ts[rest], ADDRESS_SCAN_HOSTS)
        out[np.flatnonzero(rest)[ina]] = ADDRESS_SCAN
    return out


class ScanWatch:
    """The scans of a capture read in chunks (:mod:`kscc_traffic.chunked`), decided as
    :func:`scan_kinds` decides them on the whole table. Each leaving row gets its
    :data:`SCAN_COLUMN`: '' at once for a row that is no probe, or a probe whose second condition
    (the attempts up to 5 s after its last packet: all known when it leaves) does not hold; the
    other probes are held until their kind is known: a window holding them reached the count
    among the probes that left, or the capture's clock is past their start plus
    :data:`SCAN_WINDOW_S` and no flow that may still end as a probe of their key, begun in the
    window, is open (then ''). So the attempts of every flow that left in the last
    ``KEEP_NS`` are remembered (their keys and start: 40 bytes each) and the probes among them;
    at most :data:`MAX_HELD` rows are held (beyond, a probe leaves with what is known then)."""

    #: rows held at most (bounded memory)
    MAX_HELD = 65_536
    #: how long (ns) the attempts and probes that left are remembered: a probe leaves at most the
    #: TCP idle timeout (300 s) after its last packet, PROBE_MAX_S after its start, and looks a
    #: window back; the held rows' windows besides
    KEEP_NS = 2 * SCAN_WINDOW_NS + int(PROBE_MAX_S * 1e9) + 360 * 10**9

    def __init__(self) -> None:
        self.att = _Keys()
        self.pr = _Keys()
        self.held: Optional[pd.DataFrame] = None
        self.warm = (np.zeros(0, bool), np.zeros(0, bool))

    @property
    def count(self) -> int:
        return 0 if self.held is None else len(self.held)

    def step(self, out: pd.DataFrame, open_flows: pd.DataFrame, clock: Optional[int], last: bool) -> pd.DataFrame:
        """``out`` (the leaving rows, unfinished) with :data:`SCAN_COLUMN` set, less the probes
        held, plus the held rows whose kind is now known (every one when ``last``); in time order
        of first packet when a held row joins. ``open_flows``: the batch's flows that stay open
        (flow columns); ``clock``: the capture's clock (ns; None: nothing is known to be over)."""
        if len(out) and all(c in out.columns for c in _NEED):
            out = out.copy() if SCAN_COLUMN not in out.columns else out
            col = np.full(len(out), "", dtype=object)
            att = attempt_mask(out)
            probe = probe_mask(out, att)
            if att.any():
                self.att = _Keys.join([self.att, _Keys(out, np.flatnonzero(att))])
            keep = np.ones(len(out), bool)
            if probe.any():
                at = np.flatnonzero(probe)
                q = _Keys(out, at)
                self.pr = _Keys.join([self.pr, q])
                opened = self._open_attempts(open_flows, out["orig_h"].to_numpy(dtype=object)[at], False)
                wp, wa = _warms(_Keys.join([self.att, opened]), q, _leads(out, at))
                hold = wp | wa
                room = self.MAX_HELD - self.count
                if hold.any() and room > 0:
                    rows = np.flatnonzero(hold)[:room]
                    part = out.iloc[at[rows]]
                    self.held = part if self.held is None else pd.concat([self.held, part])
                    self.warm = (np.concatenate([self.warm[0], wp[rows]]), np.concatenate([self.warm[1], wa[rows]]))
                    keep[at[rows]] = False
                    hold[rows] = False
                if hold.any():      # (more than MAX_HELD: what is known now)
                    col[at] = decide(self.att, self.pr, q, _leads(out, at))
            out[SCAN_COLUMN] = pd.Series(col, dtype=object, index=out.index)
            if not keep.all():
                out = out[keep]
        if self.held is not None:
            out = self._release(out, open_flows, clock, last)
        if clock is not None:
            cut = clock - self.KEEP_NS
            if self.held is not None and len(self.held):
                cut = min(cut, int(self.held["ts_ns"].min()) - SCAN_WINDOW_NS)
            self.att = self.att.take(self.att.ts >= cut)
            self.pr = self.pr.take(self.pr.ts >= cut)
        return out

    @staticmethod
    def _open_attempts(open_flows: pd.DataFrame, origins, possible: bool) -> _Keys:
        """The keys of the open flows that are attempts (``possible``: that may still end as
        probes) of the originators ``origins``."""
        if not len(open_flows) or any(c not in open_flows.columns for c in _NEED):
            return _Keys()
        mine = open_flows[open_flows["orig_h"].isin(pd.unique(np.asarray(origins, dtype=object))).to_numpy()]
        if not len(mine):
            return _Keys()
        att = attempt_mask(mine)
        if possible:
            att = _still_possible(mine, att)
        return _Keys(mine, np.flatnonzero(att))

    def _release(self, out: pd.DataFrame, open_flows: pd.DataFrame, clock: Optional[int], last: bool) -> pd.DataFrame:
        held = self.held
        q = _Keys(held)
        wp, wa = self.warm
        port_yes = np.zeros(len(held), bool)
        addr_yes = np.zeros(len(held), bool)
        if wp.any():
            port_yes[wp] = _in_scan(self.pr.pkey, self.pr.ts, self.pr.pval, q.pkey[wp], q.ts[wp], PORT_SCAN_PORTS)
        if wa.any():
            pu = self.pr.take(~self.pr.named)
            addr_yes[wa] = _in_scan(pu.akey, pu.ts, pu.aval, q.akey[wa], q.ts[wa], ADDRESS_SCAN_HOSTS)
        if last:
            over_p = over_a = np.ones(len(held), bool)
        else:
            late = (q.ts + SCAN_WINDOW_NS < clock) if clock is not None else np.zeros(len(held), bool)
            opened = self._open_attempts(open_flows, held["orig_h"].to_numpy(dtype=object), True)
            over_p = late & ~self._near(opened.pkey, opened.ts, q.pkey, q.ts)
            over_a = late & ~self._near(opened.akey, opened.ts, q.akey, q.ts)
        port_done = port_yes | ~wp | over_p
        addr_done = addr_yes | ~wa | over_a
        kind = np.full(len(held), "", dtype=object)
        kind[port_yes] = PORT_SCAN
        kind[~port_yes & port_done & addr_yes] = ADDRESS_SCAN
        go = port_yes | (port_done & addr_done)
        if not go.any():
            return out
        leave = held[go].copy()
        leave[SCAN_COLUMN] = pd.Series(kind[go], dtype=object, index=leave.index)
        self.held = held[~go] if (~go).any() else None
        self.warm = (wp[~go], wa[~go])
        both = pd.concat([out, leave], ignore_index=True) if len(out) else leave.reset_index(drop=True)
        return both.sort_values("ts_ns", kind="stable").reset_index(drop=True)

    @staticmethod
    def _near(key: np.ndarray, ts: np.ndarray, q_key: np.ndarray, q_ts: np.ndarray) -> np.ndarray:
        """Per query: an open flow of its key begun within SCAN_WINDOW_NS of its start."""
        out = np.zeros(len(q_key), bool)
        if not len(key):
            return out
        for i in np.flatnonzero(np.isin(q_key, key)).tolist():
            t = ts[key == q_key[i]]
            out[i] = bool(((t >= q_ts[i] - SCAN_WINDOW_NS) & (t <= q_ts[i] + SCAN_WINDOW_NS)).any())
        return out
