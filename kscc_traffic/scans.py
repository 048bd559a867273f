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
after the responder's SYN-ACK (``RSTOS0``; ``RSTO`` with history ``ShR``: a half-open SYN scan) or
never acknowledging it (``S1`` with history ``Sh``: the scanner's reset not captured),
or connected and closed at once (``RSTO``/``RSTR``/``SF`` within :data:`CONNECT_PROBE_S`: a
connect() scan). A probe has no ``server_name``: the originator did not look the responder up
(a scan goes to addresses; a program behind a proxy or a NAT, a browser, an agent trying the
cloud's addresses, connects to names; an agent that looked up the cloud's name and tries 16 ports
of its range, "ANY port in each range" as the vendor page says, is no port scan: break-it s57
bugs #1). For the address scan its SYN was also sent once
(a sweep sends one SYN per address; an agent behind a blocking firewall, its names cached or
looked up over HTTPS, tries the cloud's addresses one after the other, its system retrying each
unanswered SYN: 1, 2, 4… s; those stay ``blocked``); and the originator did not try that host
and port again within :data:`RETRIED_S` after a refusal (``REJ``), nor was it such a try: an
agent behind a firewall that refuses with resets tries the cloud's addresses one after the other,
then again (a program's connect() retry, from another source port), while a scanner does not try
a refused port again (those stay ``blocked``/``rejected``). The probes a retry could still change
are not counted until it is known: a chunked reading holds an address-scan probe until the
retries of the probes in its window are known (RETRIED_S after a refused one, no attempt on its
host and port begun before it still open).

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

import functools
import warnings
from bisect import bisect_right
from collections import Counter
from typing import Callable, Optional

import numpy as np
import pandas as pd

from .flows import CLOSE_DELAY_NS, IDLE_TIMEOUT_NS, TCP, history_plain, isin_texts
from .timeorder import merge_in_time

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
#: a host the originator tried again on the same port within this (s) after a refusal (Zeek's
#: ``REJ``), or before it within this after one, is no address-scan probe: a program's connect()
#: retry (an agent behind a firewall that refuses with resets, trying the cloud's addresses one
#: after the other, then again); scanners do not try a refused port again within their window
#: (nmap retries an unanswered probe, not a refused one; a sweep sends one SYN per address)
RETRIED_S = SCAN_WINDOW_S
RETRIED_NS = int(RETRIED_S * 1e9)
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
#: the columns :meth:`ScanWatch.step` reads from the flows that stay open
OPEN_COLUMNS = (*_NEED, "partial", "vlan", "server_name", "orig_pkts")


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
    at = np.flatnonzero(out)
    if not len(at):
        return out
    # (each distinct history read once: a batch's flows share a few)
    seen: dict = {}
    codes = np.fromiter((seen.setdefault(h, len(seen)) for h in flows["history"].to_numpy(dtype=object)[at].tolist()),
                        np.int64, len(at))
    starts = np.array([history_plain(h if isinstance(h, str) else "").lstrip("^").startswith("S") for h in seen],
                      bool)
    out[at] = starts[codes]
    return out


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
    ended = isin_texts(state, _UNCONNECTED) | (isin_texts(state, _CONNECTED) & (dur <= CONNECT_PROBE_S)) \
        | _unacknowledged(flows, state)
    return _possible(flows, att) & ended


def _unacknowledged(flows: pd.DataFrame, state: np.ndarray) -> np.ndarray:
    """Per flow (bool): ``S1`` whose originator never acknowledged the SYN-ACK (history ``Sh``: a
    half-open probe whose reset was not sent or not captured; a program's connect() acknowledges it)."""
    out = state == "S1"
    if out.any():
        hist = flows["history"].to_numpy(dtype=object)
        for i in np.flatnonzero(out).tolist():
            h = history_plain(hist[i] if isinstance(hist[i], str) else "").lstrip("^")
            out[i] = "A" not in h and "D" not in h
    return out


def _still_possible(flows: pd.DataFrame, att: np.ndarray) -> np.ndarray:
    """Per open flow (bool): may still end as a probe (:func:`probe_mask` of what it will be):
    an attempt with no payload so far, not longer than PROBE_MAX_S, not connected for longer
    than CONNECT_PROBE_S."""
    state = _col(flows, "conn_state", "")
    dur = np.nan_to_num(_col(flows, "duration", 0.0, np.float64), nan=0.0)
    return _possible(flows, att) & (isin_texts(state, _UNCONNECTED) | (dur <= CONNECT_PROBE_S)
                                    | _unacknowledged(flows, state))


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


def _rows(flows: pd.DataFrame, at: np.ndarray) -> list[tuple]:
    """The rows ``at`` as ``(ts_ns, orig_h, resp_h, resp_p, vlan, named, refused)`` tuples;
    ``named``: :data:`_NAMED` (a ``server_name``: neither a port-scan nor an address-scan probe),
    :data:`_RETRIED` (a SYN sent again, :func:`_syn_retried`: no address-scan probe), else 0;
    ``refused``: its SYN answered by a reset (``REJ``, so far)."""
    if not len(at):
        return []
    ts = flows["ts_ns"].to_numpy(np.int64)[at].tolist()
    oh = flows["orig_h"].to_numpy(dtype=object)[at].tolist()
    rh = flows["resp_h"].to_numpy(dtype=object)[at].tolist()
    rp = flows["resp_p"].to_numpy(np.int64)[at].tolist()
    vl = flows["vlan"].to_numpy(dtype=object)[at].tolist() if "vlan" in flows.columns else [0] * len(at)
    names = flows["server_name"].to_numpy(dtype=object)[at].tolist() if "server_name" in flows.columns \
        else [""] * len(at)
    again = _syn_retried(flows, at).tolist()
    rej = (_col(flows, "conn_state", "")[at] == "REJ").tolist()
    return [(t, o, r, p, v, _NAMED if isinstance(n, str) and n != "" else _RETRIED if a else 0, j)
            for t, o, r, p, v, n, a, j in zip(ts, oh, rh, rp, vl, names, again, rej)]


#: a probe's ``named`` (:func:`_rows`): its originator looked the responder up (``server_name``):
#: a program connecting to a name, no probe of either scan (an agent trying 16 ports of the
#: cloud's range after looking up its name, break-it s57 bugs #1: "the infrastructure may use
#: ANY port in each range", §A)
_NAMED = 2
#: ... its SYN sent again by its system (:func:`_syn_retried`): no address-scan probe
_RETRIED = 1


def _syn_retried(flows: pd.DataFrame, at: np.ndarray) -> np.ndarray:
    """Per row ``at`` (bool): its originator sent nothing but its SYN, more than once (history
    ``S`` or ``Sr`` with two or more packets from the originator): a program's connect() whose
    system retransmitted the unanswered SYN (Linux 1, 2, 4… s; Windows 1 or 3 s, then twice that).
    Not an address-scan probe: a sweep sends one SYN per address (masscan, zmap; nmap sends a
    retry as a new probe from another source port); one run with ``masscan --retries``, which
    sends its SYN again from the same port, is judged as any flow."""
    if "orig_pkts" not in flows.columns:
        return np.zeros(len(at), bool)
    out = flows["orig_pkts"].to_numpy(np.float64)[at] >= 2
    if out.any():
        hist = flows["history"].to_numpy(dtype=object)[at]
        for i in np.flatnonzero(out).tolist():
            h = hist[i] if isinstance(hist[i], str) else ""
            out[i] = set(ch for ch in history_plain(h) if ch.isupper()) == {"S"}
    return out


def _scan_starts(items: list[tuple[int, object]], threshold: int) -> list[int]:
    """The starts (ns, ascending) of the windows [start, start + SCAN_WINDOW_NS] that begin at a
    probe (``items``: (ts_ns, value), any order) and hold ``threshold`` or more distinct values."""
    items = sorted(items, key=lambda x: x[0])
    counts: Counter = Counter()
    out, r, n = [], 0, len(items)
    for i in range(n):
        while r < n and items[r][0] <= items[i][0] + SCAN_WINDOW_NS:
            counts[items[r][1]] += 1
            r += 1
        if len(counts) >= threshold:
            out.append(items[i][0])
        v = items[i][1]
        counts[v] -= 1
        if not counts[v]:
            del counts[v]
    return out


_K1 = np.uint64(0x9E3779B97F4A7C15)
_K2 = np.uint64(0xC2B2AE3D27D4EB4F)


def _hash_of(values: list) -> np.ndarray:
    """Python's hash of each value (a text's is cached in the object: cheap), as uint64."""
    return np.fromiter(map(hash, values), np.int64, len(values)).view(np.uint64)


class _Attempts:
    """Attempts as arrays: ``pkey`` (originator, responder, VLAN), ``akey`` (originator, port,
    VLAN), ``ts`` (ns), ``port``, ``host`` (the responder's hash), ``rej`` (refused: ``REJ``):
    what the second condition counts, and what tells a refused probe retried
    (:data:`RETRIED_S`), kept in numpy (every TCP attempt of a capture passes here)."""

    __slots__ = ("pkey", "akey", "ts", "port", "host", "rej")

    def __init__(self, rows: list[tuple] | None = None) -> None:
        rows = rows or []
        n = len(rows)
        if n:
            ts, oh, rh, port, vl, _, rej = zip(*rows)
            o, r, v = _hash_of(list(oh)), _hash_of(list(rh)), _hash_of(list(vl))
            p = np.asarray(port, np.int64)
            self._keys(o, r, v, p)
            self.ts, self.port, self.host = np.asarray(ts, np.int64), p, r
            self.rej = np.asarray(rej, bool)
        else:
            z = np.zeros(0, np.uint64)
            self.pkey, self.akey, self.host = z, z, z
            self.ts, self.port = np.zeros(0, np.int64), np.zeros(0, np.int64)
            self.rej = np.zeros(0, bool)

    @classmethod
    def of(cls, flows: pd.DataFrame, at: np.ndarray) -> "_Attempts":
        """The rows ``at`` of ``flows``."""
        out = cls()
        if not len(at):
            return out
        o = _hash_of(flows["orig_h"].to_numpy(dtype=object)[at].tolist())
        r = _hash_of(flows["resp_h"].to_numpy(dtype=object)[at].tolist())
        v = _hash_of(flows["vlan"].to_numpy(dtype=object)[at].tolist()) if "vlan" in flows.columns \
            else np.zeros(len(at), np.uint64)
        p = flows["resp_p"].to_numpy(np.int64)[at]
        out._keys(o, r, v, p)
        out.ts, out.port, out.host = flows["ts_ns"].to_numpy(np.int64)[at], p, r
        out.rej = _col(flows, "conn_state", "")[at] == "REJ"
        return out

    def _keys(self, o, r, v, p) -> None:
        with np.errstate(over="ignore"):
            base = (o * _K1) ^ (v * _K2)
            self.pkey = (base * _K2) ^ r
            self.akey = (base * _K1) ^ p.astype(np.uint64)

    def take(self, mask: np.ndarray) -> "_Attempts":
        out = _Attempts()
        for k in self.__slots__:
            setattr(out, k, getattr(self, k)[mask])
        return out

    @staticmethod
    def join(parts: list["_Attempts"]) -> "_Attempts":
        out = _Attempts()
        parts = [p for p in parts if len(p.ts)]
        if len(parts) == 1:
            return parts[0]
        if parts:
            for k in _Attempts.__slots__:
                setattr(out, k, np.concatenate([getattr(p, k) for p in parts]))
        return out


def _warm_all(att: _Attempts, q: _Attempts, q_named: np.ndarray, lead: np.ndarray,
              bound: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per query (probes ``q``): the second condition (module docstring) for a port scan, for an
    address scan, among the attempts ``att``: the attempts of the query's key begun from its
    start less :data:`SCAN_WINDOW_NS` to its ``lead`` (ns, per query, inclusive) hold the count of
    distinct ports (hosts) or more. ``bound``: per query, at most how many attempts its
    port-scan and address-scan keys have (fewer than the count: not looked at). Two bool arrays
    (len(q.ts),); both False for the named probes (``q_named`` :data:`_NAMED`), the address
    scan's for those whose SYN was sent again too (:data:`_RETRIED`).

    O((attempts + queries) log): the attempts of the keys asked sorted by (key, time) once; per
    key, where a window starting at each attempt first holds the count (:func:`_reach`, one
    pass), and per query its window's first and last attempt by binary search (a 20,000-host
    sweep: one key, 20,000 queries, each once, not each against all attempts)."""
    out = []
    for j, (key, qkey, val, threshold) in enumerate((("pkey", q.pkey, "port", PORT_SCAN_PORTS),
                                                     ("akey", q.akey, "host", ADDRESS_SCAN_HOSTS))):
        res = np.zeros(len(q.ts), bool)
        if bound is not None:
            qkey = np.where(bound[j] >= threshold, qkey, np.uint64(0))
            if not qkey.any():
                out.append(res)
                continue
        akeys = getattr(att, key)
        sel = np.isin(akeys, qkey)
        if sel.sum() >= threshold:
            k, t, v = akeys[sel], att.ts[sel], getattr(att, val)[sel]
            o = np.lexsort((t, k))
            k, t, v = k[o], t[o], v[o]
            uk, first, counts = np.unique(k, return_index=True, return_counts=True)
            hot = counts >= threshold
            qi = np.flatnonzero(np.isin(qkey, uk[hot]) & (qkey != 0))
            g = np.searchsorted(uk, qkey[qi])
            by = np.argsort(g, kind="stable")
            qi, g = qi[by], g[by]
            cuts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]]) if len(g) else np.zeros(0, np.int64)
            for c0, c1 in zip(cuts.tolist(), np.r_[cuts[1:], len(g)].tolist()):
                gi = int(g[c0])
                s, e = int(first[gi]), int(first[gi] + counts[gi])
                reach = _reach(v[s:e].tolist(), threshold)
                qs = qi[c0:c1]
                a = np.searchsorted(t[s:e], q.ts[qs] - SCAN_WINDOW_NS, "left")
                b = np.searchsorted(t[s:e], lead[qs], "right")
                inside = a < e - s
                res[qs[inside]] = b[inside] >= reach[a[inside]]
        out.append(res)
    return out[0] & (q_named != _NAMED), out[1] & (q_named == 0)


def _reach(values: list, threshold: int) -> np.ndarray:
    """Per start ``a`` in ``values`` (one key's attempts' ports or hosts, in time order): the
    least end ``r`` (exclusive) such that ``values[a:r]`` holds ``threshold`` distinct values, or
    the largest int64 where none does (int64 array, len(values)). Non-decreasing in ``a``, so one
    pass of two pointers."""
    n = len(values)
    out = np.full(n, np.iinfo(np.int64).max, np.int64)
    counts: dict = {}
    r = distinct = 0
    for a in range(n):
        while distinct < threshold and r < n:
            x = values[r]
            c = counts.get(x, 0)
            counts[x] = c + 1
            distinct += c == 0
            r += 1
        if distinct < threshold:
            break                   # (nor from any later start)
        out[a] = r
        x = values[a]
        c = counts[x] - 1
        if c:
            counts[x] = c
        else:
            del counts[x]
            distinct -= 1
    return out


def _akey_of(o, port: int, v) -> np.uint64:
    """The address-scan key hash (:attr:`_Attempts.akey`) of ``(orig_h, port, vlan)``."""
    a = _Attempts()
    a._keys(_hash_of([o]), np.zeros(1, np.uint64), _hash_of([v]), np.asarray([port], np.int64))
    return a.akey[0]


class _Moment:
    """What is known, at a moment of a chunked reading, of the retries of refused probes
    (:data:`RETRIED_S`): ``clock`` (ns; None: nothing is known to be over), ``final`` (everything is
    over: a whole table, a chunked reading's last batch), ``opened`` (the attempts of the flows
    still open: their starts are known, not their ends); and, per address-scan key, what
    :meth:`_Memory.address_status` found (a cache for this moment)."""

    __slots__ = ("clock", "final", "opened", "cache")

    def __init__(self, clock: Optional[int] = None, final: bool = True, opened: "_Attempts | None" = None) -> None:
        self.clock, self.final = clock, final
        self.opened = opened if opened is not None else _Attempts()
        self.cache: dict = {}

    def over(self, t: int) -> bool:
        """Whether the capture's clock is past ``t`` (ns): every attempt begun by then is known."""
        return self.final or (self.clock is not None and self.clock > t)


class _Memory:
    """Probes per key: ``(orig_h, resp_h, vlan)`` -> [(ts_ns, port)] (port scans, probes to a
    host not looked up by name only),
    ``(orig_h, port, vlan)`` -> [(ts_ns, resp_h, refused)] (address scans, unnamed probes only);
    and the attempts (:class:`_Attempts`)."""

    def __init__(self) -> None:
        self.att = _Attempts()
        self._parts: list[_Attempts] = []
        # attempts remembered per port-scan and address-scan key, counted in buckets of the key's
        # low bits (keys sharing a bucket add up: an upper bound, what the look needs)
        self.count_p = np.zeros(self.BUCKETS, np.int32)
        self.count_a = np.zeros(self.BUCKETS, np.int32)
        self.pr_p: dict[tuple, list] = {}
        self.pr_a: dict[tuple, list] = {}
        self._starts: dict[tuple, list[int]] = {}

    def attempts(self) -> _Attempts:
        if self._parts:
            self.att = _Attempts.join([self.att, *self._parts])
            self._parts = []
        return self.att

    #: buckets of the attempt counts (:meth:`bound`)
    BUCKETS = 1 << 18
    _MASK = np.uint64(BUCKETS - 1)

    def add_attempts(self, att: _Attempts) -> None:
        """Remember attempts."""
        if len(att.ts):
            self._parts.append(att)
            np.add.at(self.count_p, (att.pkey & self._MASK).astype(np.int64), 1)
            np.add.at(self.count_a, (att.akey & self._MASK).astype(np.int64), 1)

    def bound(self, q: _Attempts, opened: _Attempts) -> tuple[np.ndarray, np.ndarray]:
        """Per query: at least as many as the attempts remembered and open of its port-scan key, of
        its address-scan key."""
        bp = self.count_p[(q.pkey & self._MASK).astype(np.int64)].astype(np.int64)
        ba = self.count_a[(q.akey & self._MASK).astype(np.int64)].astype(np.int64)
        if len(opened.ts):
            bp += np.isin(q.pkey, opened.pkey) * len(opened.ts)
            ba += np.isin(q.akey, opened.akey) * len(opened.ts)
        return bp, ba

    def add(self, rows: list[tuple], probes: bool) -> None:
        """Remember ``rows`` (:func:`_rows`) as attempts, or as probes."""
        if not rows:
            return
        if not probes:
            self.add_attempts(_Attempts(rows))
            return
        for t, o, r, port, v, named, rej in rows:
            if named != _NAMED:
                self.pr_p.setdefault((o, r, v), []).append((t, port))
            if not named:
                self.pr_a.setdefault((o, port, v), []).append((t, r, rej))
        self._starts.clear()

    def prune(self, cut: int) -> None:
        """Forget what began before ``cut`` (ns)."""
        att = self.attempts()
        gone = att.ts < cut
        if gone.any():
            np.subtract.at(self.count_p, (att.pkey[gone] & self._MASK).astype(np.int64), 1)
            np.subtract.at(self.count_a, (att.akey[gone] & self._MASK).astype(np.int64), 1)
            self.att = att.take(~gone)
        for d in (self.pr_p, self.pr_a):
            for k in [k for k, v in d.items() if v[0][0] < cut or v[-1][0] < cut]:
                kept = [x for x in d[k] if x[0] >= cut]
                if kept:
                    d[k] = kept
                else:
                    del d[k]
        self._starts.clear()

    def in_scan(self, row: tuple, moment: Optional[_Moment] = None) -> tuple[bool, bool]:
        """The first condition for a port scan, for an address scan, among the probes remembered;
        for an address scan only among the probes not retried (:meth:`address_status`) whose
        retries are known at ``moment`` (default: everything is over), and never for a probe
        retried or whose retries are not known yet."""
        t, o, r, port, v, named, _ = row
        out = []
        for kind, d, key, threshold in ((PORT_SCAN, self.pr_p, (o, r, v), PORT_SCAN_PORTS),
                                        (ADDRESS_SCAN, self.pr_a, (o, port, v), ADDRESS_SCAN_HOSTS)):
            lst = d.get(key, ())
            if (kind == ADDRESS_SCAN and named) or named == _NAMED or len(lst) < threshold:
                out.append(False)
                continue
            if kind == ADDRESS_SCAN:
                moment = moment if moment is not None else _Moment()
                usable, flags, _, starts = self.address_status(key, moment)
                excluded, known = flags.get((t, r), (False, True))
                if excluded or not known or len(usable) < threshold:
                    out.append(False)
                    continue
                if starts is None:
                    starts = _scan_starts(usable, threshold)
                    moment.cache[key] = moment.cache[key][:3] + (starts,)
            else:
                starts = self._starts.get((kind, key))
                if starts is None:
                    starts = self._starts[(kind, key)] = _scan_starts(lst, threshold)
            j = bisect_right(starts, t) - 1
            out.append(j >= 0 and t <= starts[j] + SCAN_WINDOW_NS)
        return out[0], out[1]

    def address_status(self, key: tuple, moment: _Moment) -> tuple:
        """Of the address-scan key ``key`` (``(orig_h, port, vlan)``) at ``moment``: ``(usable,
        flags, pending, starts)``: the probes ``(ts_ns, resp_h)`` that count (not retried, known
        so), per probe ``(ts_ns, resp_h)`` ``(retried, known)``, the sorted starts of the probes
        not known yet, and None (the window starts of ``usable``, filled in by :meth:`in_scan`).

        A probe is retried (:data:`RETRIED_S`) when it was refused and the originator began another
        attempt on the same host and port within RETRIED_S after it (one that left, or one still
        open), or when an attempt on them refused began within RETRIED_S before it. It is known
        not retried once retried it cannot become: an unrefused one when no attempt on its host
        and port begun within RETRIED_S before it is still open (it may still be refused), a
        refused one besides when the clock is past RETRIED_S after it. So what counts at a moment
        only grows as the reading goes on, and equals the whole table's once everything in its
        windows is known."""
        got = moment.cache.get(key)
        if got is not None:
            return got
        lst = self.pr_a.get(key, [])
        akey = _akey_of(*key)
        att = self.attempts()
        sel = np.flatnonzero(att.akey == akey)
        a_ts, a_host, a_rej = att.ts[sel], att.host[sel], att.rej[sel]
        op = moment.opened
        osel = np.flatnonzero(op.akey == akey) if len(op.ts) else sel[:0]
        o_ts, o_host = op.ts[osel], op.host[osel]
        hosts = _hash_of([x[1] for x in lst]).tolist()
        # (the hosts attempted more than once: only their probes may be retried)
        uh, cnt = np.unique(a_host, return_counts=True)
        multi = set(uh[cnt >= 2].tolist()) | set(o_host.tolist())
        part: dict = {}
        if multi:
            for i in np.flatnonzero(np.isin(a_host, np.fromiter(multi, np.uint64, len(multi)))).tolist():
                part.setdefault(int(a_host[i]), ([], []))[0].append((int(a_ts[i]), bool(a_rej[i])))
            for t, h in zip(o_ts.tolist(), o_host.tolist()):
                part.setdefault(int(h), ([], []))[1].append(int(t))
        usable, flags, pending = [], {}, []
        for (t, r, rej), h in zip(lst, hosts):
            left, still = part.get(h, ((), ()))
            later = any(t < x <= t + RETRIED_NS for x, _ in left) or any(t < x <= t + RETRIED_NS for x in still)
            excluded = (rej and later) or any(j and t - RETRIED_NS <= x < t for x, j in left)
            known = excluded or (not any(t - RETRIED_NS <= x < t for x in still)
                                 and (not rej or moment.over(t + RETRIED_NS)))
            flags[(t, r)] = (excluded, known)
            if not known:
                pending.append(t)
            elif not excluded:
                usable.append((t, r))
        got = moment.cache[key] = (usable, flags, sorted(pending), None)
        return got

    def address_known(self, key: tuple, moment: _Moment, lo: int, hi: int) -> bool:
        """Whether the retries of every probe of the address-scan key ``key`` begun in
        [``lo``, ``hi``] (ns) are known at ``moment`` (:meth:`address_status`)."""
        if key not in self.pr_a:
            return True
        pending = self.address_status(key, moment)[2]
        j = bisect_right(pending, hi) - 1
        return j < 0 or pending[j] < lo


def _kind(warm: tuple[bool, bool], inscan: tuple[bool, bool]) -> str:
    if warm[0] and inscan[0]:
        return PORT_SCAN
    if warm[1] and inscan[1]:
        return ADDRESS_SCAN
    return ""


def scan_kinds(flows: pd.DataFrame) -> np.ndarray:
    """Per flow (object array of ``str``): :data:`PORT_SCAN` or :data:`ADDRESS_SCAN` for a probe
    that is part of a scan (module docstring), '' for the others, judged on the whole table
    (one capture: rows of another ``capture`` are other scans). A :data:`SCAN_COLUMN` of the
    table (a chunked reading's decision, which saw the rows of other batches) is taken instead
    when the table has one. All '' when a column of the flow table is missing."""
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
    mem = _Memory()
    mem.add_attempts(_Attempts.of(flows, np.flatnonzero(att)))
    at = np.flatnonzero(probe)
    rows = _rows(flows, at)
    mem.add(rows, True)
    wp, wa = _warm_all(mem.attempts(), _Attempts(rows), np.fromiter((r[5] for r in rows), np.int8, len(rows)),
                       _leads(flows, at))
    moment = _Moment()
    for j in np.flatnonzero(wp | wa).tolist():
        out[at[j]] = _kind((bool(wp[j]), bool(wa[j])), mem.in_scan(rows[j], moment))
    return out


class ScanWatch:
    """The scans of a capture read in chunks (:mod:`kscc_traffic.chunked`), decided as
    :func:`scan_kinds` decides them on the whole table. Each leaving row gets its
    :data:`SCAN_COLUMN`: '' at once for a row that is no probe, or a probe whose second condition
    (the attempts begun up to its lead: all known when it leaves) does not hold; the other probes
    are held until their kind is known: a window holding them reached the count among the probes
    that left, or the capture's clock is past their start plus :data:`SCAN_WINDOW_S` and no flow
    that may still end as a probe of their key, begun in the window, is open, and (an
    address-scan probe) the retries of the probes of its window are known (:data:`RETRIED_S`;
    :meth:`_Memory.address_status`: a window counts the probes known not retried, so it only
    grows) (then ''). So the
    attempts and probes of the flows that left in the last :attr:`KEEP_NS` are remembered (per
    key, a tuple each); at most :data:`MAX_HELD` rows are held (beyond, a probe leaves with what
    is known then)."""

    #: rows held at most (bounded memory)
    MAX_HELD = 65_536
    #: how long (ns) the attempts and probes that left are remembered: a probe leaves at most the
    #: TCP idle timeout (300 s) after its last packet, PROBE_MAX_S after its start, and looks a
    #: window back, and its window's probes RETRIED_S further back for their retries; the held
    #: rows' windows besides
    KEEP_NS = 2 * SCAN_WINDOW_NS + RETRIED_NS + int(PROBE_MAX_S * 1e9) + 360 * 10**9
    #: batches between two sweeps of what is remembered
    PRUNE_EVERY = 16

    def __init__(self) -> None:
        self.mem = _Memory()
        self.held: Optional[pd.DataFrame] = None
        self.held_rows: list[tuple] = []
        self.held_warm: list[tuple[bool, bool]] = []
        self._steps = 0

    @property
    def count(self) -> int:
        """Rows held back (probes whose scan is not known yet)."""
        return len(self.held_rows)

    def step(self, out: pd.DataFrame, open_flows: pd.DataFrame | Callable[[], pd.DataFrame], clock: Optional[int],
             last: bool) -> pd.DataFrame:
        """``out`` (the leaving rows, unfinished) with :data:`SCAN_COLUMN` set, less the probes
        held, plus the held rows whose kind is now known (every one when ``last``); in time order
        of first packet when a held row joins. ``open_flows``: the batch's flows that stay open
        (flow columns, :data:`OPEN_COLUMNS` read), or a function that makes them (called only
        when they are needed: a batch without probes nor held rows reads none); ``clock``: the
        capture's clock (ns; None: nothing is known to be over)."""
        self._steps += 1
        open_flows = functools.cache(open_flows) if callable(open_flows) else (lambda frame=open_flows: frame)
        if len(out) and all(c in out.columns for c in _NEED):
            col = np.full(len(out), "", dtype=object)
            att = attempt_mask(out)
            probe = probe_mask(out, att)
            self.mem.add_attempts(_Attempts.of(out, np.flatnonzero(att)))
            keep = np.ones(len(out), bool)
            if probe.any():
                at = np.flatnonzero(probe)
                rows = _rows(out, at)
                self.mem.add(rows, True)
                q = _Attempts(rows)
                named = np.fromiter((r[5] for r in rows), np.int8, len(rows))
                # (the open flows' attempts only for the originators whose remembered attempts and
                # open flows may reach a count: most probes are an agent's few failed attempts)
                n_open = self._open_counts(open_flows())
                bp, ba = self.mem.bound(q, _Attempts())
                near = [r[1] for r, c1, c2 in zip(rows, bp.tolist(), ba.tolist())
                        if max(c1 - PORT_SCAN_PORTS, c2 - ADDRESS_SCAN_HOSTS) + n_open.get(r[1], 0) >= 0]
                opened = self._open(open_flows(), set(near), False) if near else _Attempts()
                wp, wa = (_warm_all(_Attempts.join([self.mem.attempts(), opened]), q, named, _leads(out, at),
                                    self.mem.bound(q, opened))
                          if near else (np.zeros(len(rows), bool), np.zeros(len(rows), bool)))
                now = _Moment()     # (beyond MAX_HELD: what is known now)
                for j in np.flatnonzero(wp | wa).tolist():
                    row, warm = rows[j], (bool(wp[j]), bool(wa[j]))
                    if self.count < self.MAX_HELD:
                        keep[at[j]] = False
                        self.held_rows.append(row)
                        self.held_warm.append(warm)
                    else:       # (more than MAX_HELD: what is known now)
                        col[at[j]] = _kind(warm, self.mem.in_scan(row, now))
                if not keep.all():
                    part = out[~keep]
                    self.held = part if self.held is None else pd.concat([self.held, part])
            out = out.copy(deep=False)
            with warnings.catch_warnings():
                # (a table of many columns added one by one upstream: pandas warns of its blocks on
                # each insert past 100, on stderr; one column added here, no consolidating copy of
                # every batch for it; review s60 #4)
                warnings.simplefilter("ignore", pd.errors.PerformanceWarning)
                out[SCAN_COLUMN] = pd.Series(col, dtype=object, index=out.index)
            if not keep.all():
                out = out[keep]
        if self.held_rows:
            out = self._release(out, open_flows(), clock, last)
        if clock is not None and self._steps % self.PRUNE_EVERY == 0:
            cut = clock - self.KEEP_NS
            if self.held_rows:
                # (what tells the held rows' windows, and their probes' retries)
                cut = min(cut, min(r[0] for r in self.held_rows) - SCAN_WINDOW_NS - RETRIED_NS)
            self.mem.prune(cut)
        return out

    @staticmethod
    def _open_counts(open_flows: pd.DataFrame) -> Counter:
        """Open flows per originator (an upper bound of its open attempts)."""
        if not len(open_flows) or "orig_h" not in open_flows.columns:
            return Counter()
        return Counter(open_flows["orig_h"].to_numpy(dtype=object).tolist())

    @staticmethod
    def _open_rows(open_flows: pd.DataFrame, origins: set, possible: bool) -> list[tuple]:
        """The open flows of the originators ``origins`` that are attempts (``possible``: that may
        still end as probes), as :func:`_rows`."""
        if not len(open_flows) or not origins or any(c not in open_flows.columns for c in _NEED):
            return []
        mine = open_flows[open_flows["orig_h"].isin(origins).to_numpy()]
        if not len(mine):
            return []
        att = attempt_mask(mine)
        if possible:
            att = _still_possible(mine, att)
        return _rows(mine, np.flatnonzero(att))

    def _open(self, open_flows: pd.DataFrame, origins: set, possible: bool) -> _Attempts:
        return _Attempts(self._open_rows(open_flows, origins, possible))

    def _release(self, out: pd.DataFrame, open_flows: pd.DataFrame, clock: Optional[int], last: bool) -> pd.DataFrame:
        opened: tuple[dict, dict] = ({}, {})
        origins = {r[1] for r in self.held_rows}
        for t, o, r, port, v, _, _ in ([] if last else self._open_rows(open_flows, origins, True)):
            opened[0].setdefault((o, r, v), []).append((t, port))
            opened[1].setdefault((o, port, v), []).append((t, r))
        # (the retries of refused probes known now: every open attempt of the held rows' originators)
        moment = _Moment(clock, last, None if last else self._open(open_flows, origins, False))
        go, kinds = [], []
        for row, warm in zip(self.held_rows, self.held_warm):
            t, o, r, port, v, _, _ = row
            yes = self.mem.in_scan(row, moment)
            late = last or (clock is not None and t + SCAN_WINDOW_NS < clock)
            over_p = late and not any(abs(x - t) <= SCAN_WINDOW_NS for x, _ in opened[0].get((o, r, v), ()))
            over_a = late and not any(abs(x - t) <= SCAN_WINDOW_NS for x, _ in opened[1].get((o, port, v), ())) \
                and (not warm[1] or self.mem.address_known((o, port, v), moment, t - SCAN_WINDOW_NS,
                                                           t + SCAN_WINDOW_NS))
            port_yes = warm[0] and yes[0]
            addr_yes = warm[1] and yes[1]
            port_done = port_yes or not warm[0] or over_p
            addr_done = addr_yes or not warm[1] or over_a
            go.append(port_yes or (port_done and addr_done))
            kinds.append(PORT_SCAN if port_yes else ADDRESS_SCAN if addr_yes else "")
        go_a = np.asarray(go, bool)
        if not go_a.any():
            return out
        held = self.held
        leave = held[go_a]      # (a new frame: copy-on-write, pandas >= 3)
        leave[SCAN_COLUMN] = pd.Series([k for k, g in zip(kinds, go) if g], dtype=object, index=leave.index)
        self.held = held[~go_a] if (~go_a).any() else None
        self.held_rows = [x for x, g in zip(self.held_rows, go) if not g]
        self.held_warm = [x for x, g in zip(self.held_warm, go) if not g]
        return merge_in_time(out, leave)
