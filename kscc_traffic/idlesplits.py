"""TCP connections that go on after an idle time, across the batches of a chunked reading.

The idle timeout (:data:`kscc_traffic.flows.IDLE_TIMEOUT_NS`, 300 s for TCP, as Zeek's
``tcp_inactivity_timeout``) splits a connection silent for longer into two flows; the second has
no SYN, so it reads as a capture started mid-connection. Within one batch
:func:`kscc_traffic.flows.build_flows` knows the silence (:attr:`FlowTable.idle_before
<kscc_traffic.flows.FlowTable>`); in a chunked reading the first part has often left memory by
then (it left *because* it was idle). :class:`IdleSplits` remembers the 5-tuples of the open TCP
connections that left that way, and fills the internal column
:data:`~kscc_traffic.flows.IDLE_BEFORE` of a later flow on one of them that began without a SYN,
before it is judged (:func:`kscc_traffic.classify.idle_note`), so whole and chunked readings say
the same (break-it s50 #2).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .flows import GOING_ON_STATES, IDLE_BEFORE, IDLE_TIMEOUT_NS, TCP, VLAN_STACK

__all__ = ["HeldIdleSplits", "IdleSplits"]


class IdleSplits:
    """The open TCP connections that left a chunked reading by the idle timeout, by 5-tuple.

    :meth:`add` takes the flows leaving a batch (a flow table with ``proto``, ``orig_h``,
    ``orig_p``, ``resp_h``, ``resp_p``, ``conn_state``, and the internal ``vlan_stack`` when it has
    it), the time of each one's last packet (epoch ns, int64) and which of them left because they
    were idle; :meth:`mark` fills :data:`~kscc_traffic.flows.IDLE_BEFORE` (seconds, float) of the
    flows of a later batch that go on with one of them; any later flow on a remembered 5-tuple
    ends what is remembered of it (a new connection on it, a stray packet after that one). At most
    :data:`MAX_KEPT` 5-tuples are remembered (the oldest forgotten first, ~20 MiB when full):
    bounded memory whatever the capture; a connection going on past that many others that went
    idle is read as begun before the capture."""

    #: 5-tuples remembered at most
    MAX_KEPT = 131_072

    def __init__(self) -> None:
        self.last: dict[int, int] = {}      # hash of a 5-tuple (either direction) -> its last packet, epoch ns

    def __len__(self) -> int:
        return len(self.last)

    @staticmethod
    def _keys(flows: pd.DataFrame, rows: np.ndarray) -> list[int]:
        """The direction-free 5-tuples (with the VLAN stack) of ``flows``' ``rows``, hashed (one
        int each: what is remembered stays small; equal within the process, which is all a
        reading needs)."""
        cols = [flows[c].to_numpy(dtype=object)[rows].tolist() for c in ("orig_h", "orig_p", "resp_h", "resp_p")]
        vlan = (flows[VLAN_STACK].to_numpy()[rows].tolist() if VLAN_STACK in flows.columns
                else [0] * len(rows))
        out = []
        for a, ap, b, bp, v in zip(*cols, vlan):
            one, two = (str(a), int(ap)), (str(b), int(bp))
            out.append(hash((v, *(one + two if one <= two else two + one))))
        return out

    def add(self, flows: pd.DataFrame, last_ts: np.ndarray, idle: np.ndarray) -> None:
        """Remember the TCP connections among ``flows`` that left because they were ``idle`` (bool
        per row) while established and not closed (:data:`GOING_ON_STATES`), with ``last_ts``
        (int64 epoch ns per row)."""
        if not len(flows) or not idle.any() or "conn_state" not in flows.columns:
            return
        rows = np.flatnonzero(idle & (flows["proto"].to_numpy(dtype=object) == "tcp")
                              & np.isin(flows["conn_state"].to_numpy(dtype=object), GOING_ON_STATES))
        if not len(rows):
            return
        for key, t in zip(self._keys(flows, rows), np.asarray(last_ts)[rows].tolist()):
            self.last.pop(key, None)        # (re-inserted: the newest last)
            self.last[key] = int(t)
        while len(self.last) > self.MAX_KEPT:
            del self.last[next(iter(self.last))]

    def mark(self, flows: pd.DataFrame) -> None:
        """Fill in place :data:`~kscc_traffic.flows.IDLE_BEFORE` of each TCP flow of ``flows``
        that began without a SYN (``partial``) on a remembered 5-tuple after its last packet and
        has no value there yet: the silence between them (seconds). The first flow on a
        remembered 5-tuple after it, whatever it is, makes it forgotten. A table without the
        column or the flow columns: nothing."""
        if not self.last or not len(flows) or IDLE_BEFORE not in flows.columns or "partial" not in flows.columns:
            return
        idle = flows[IDLE_BEFORE].to_numpy(dtype=float)
        rows = np.flatnonzero(flows["proto"].to_numpy(dtype=object) == "tcp")
        if not len(rows):
            return
        first = flows["ts_ns"].to_numpy(np.int64)[rows]
        o = np.argsort(first, kind="stable")        # (in time order: the first flow after it counts)
        rows, first = rows[o], first[o]
        going = (flows["partial"].to_numpy()[rows] != 0) & ~(idle[rows] > 0)
        at, gaps = [], []
        for i, key, t, g in zip(rows.tolist(), self._keys(flows, rows), first.tolist(), going.tolist()):
            before = self.last.get(key)
            if before is not None and before < t:
                del self.last[key]
                if g:
                    at.append(i)
                    gaps.append((t - before) / 1e9)
        if at:
            idle = idle.copy()
            idle[at] = gaps
            flows[IDLE_BEFORE] = idle


class HeldIdleSplits(IdleSplits):
    """:class:`IdleSplits` for a live session (:mod:`kscc_traffic.live.session`), which analyses a
    flow again each time it changed: the silence :meth:`mark` found before a flow is held, by
    5-tuple and first packet (``ts_ns``), and given to it again at each later :meth:`mark` until
    :meth:`forget` drops it (the flow left the session). Only a silence longer than the TCP idle
    timeout of a file's analysis (:data:`~kscc_traffic.flows.IDLE_TIMEOUT_NS`, 300 s) is given,
    the one :func:`kscc_traffic.classify.idle_note` names: a session run with a shorter
    ``--idle-timeout`` splits at shorter ones, which a file's analysis would not. At most
    :data:`IdleSplits.MAX_KEPT` flows are held (the oldest dropped first)."""

    def __init__(self) -> None:
        super().__init__()
        self.held: dict[tuple[int, int], float] = {}   # (5-tuple hash, first packet ns) -> silence, s

    def mark(self, flows: pd.DataFrame) -> None:
        """:meth:`IdleSplits.mark`, the silences held for ``flows`` given again, those found now
        held; a silence not longer than the TCP idle timeout left out (0)."""
        if not len(flows) or IDLE_BEFORE not in flows.columns or "partial" not in flows.columns:
            return
        tcp = np.flatnonzero(flows["proto"].to_numpy(dtype=object) == "tcp")
        if not len(tcp) or not (self.last or self.held):
            return
        before = flows[IDLE_BEFORE].to_numpy(dtype=float).copy()
        super().mark(flows)
        idle = flows[IDLE_BEFORE].to_numpy(dtype=float).copy()
        ts = flows["ts_ns"].to_numpy(np.int64)
        floor = IDLE_TIMEOUT_NS[TCP] / 1e9
        for i, key in zip(tcp.tolist(), self._keys(flows, tcp)):
            at = (key, int(ts[i]))
            if idle[i] > 0 and not before[i] > 0:       # (found now)
                if idle[i] > floor:
                    self.held[at] = float(idle[i])
                else:
                    idle[i] = 0.0
            elif at in self.held and not idle[i] > 0:
                idle[i] = self.held[at]
        while len(self.held) > self.MAX_KEPT:
            del self.held[next(iter(self.held))]
        flows[IDLE_BEFORE] = idle

    def forget(self, flows: pd.DataFrame) -> None:
        """Drop what is held for ``flows`` (rows leaving the session; the flow columns, ``ts_ns``
        and the internal ``vlan_stack`` when there is one): nothing is given to them again."""
        if not self.held or not len(flows) or "ts_ns" not in flows.columns:
            return
        rows = np.arange(len(flows))
        ts = flows["ts_ns"].to_numpy(np.int64)
        for i, key in zip(rows.tolist(), self._keys(flows, rows)):
            self.held.pop((key, int(ts[i])), None)
