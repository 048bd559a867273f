"""Lone damaged timestamps: a record stamped far from the records around it, which agree with each
other (a bit flipped in a timestamp, a NIC that stamped 0 for one packet, a record stamped in 1970
or days ahead). Read as it is, such a packet is sorted away from its connection: its flow splits in
two, the first part missing a segment the peer acknowledged (break-it s56 link pass #1: a working
connection then read ``blocked``). Wireshark shows it in file order, and Zeek, which reads in file
order, keeps it in its connection. Here it takes the time of the record before it, so it is
analysed in file order; :mod:`kscc_traffic.chunked` says how many were.

Only a stamp that cannot be right is mended: one more than :data:`AHEAD_NS` ahead of the record
before it and of the one after it (no packet is written before it is captured), or more than
:data:`BEHIND_NS` behind both (a capture tool that writes packets late, from a buffer such as
pktmon's, writes them seconds or minutes late, not a day), or behind both and before the year 2000
while they are not (a stamp of 0 or from 1970); the two records before it and the one
after it within :data:`AGREE_NS` of each other (records that alternate between two clocks, two
interfaces of a pcapng each with its own, are no lone stamps: review s56 #2). Records are decided
one after another, each against the times the ones before it have once mended (review s56 #1)."""
from __future__ import annotations

import numpy as np

__all__ = ["AHEAD_NS", "BEHIND_NS", "BEFORE_NS", "AGREE_NS", "LoneStamps", "mend_lone_stamps"]

#: a lone stamp is more than this far (ns) ahead of the records before and after it ...
AHEAD_NS = 60 * 10**9
#: ... or more than this far (ns) behind both
BEHIND_NS = 86_400 * 10**9
#: ... or behind both and before 2000 while they are not (stamped 0, or in 1970: a NIC without a
#: hardware time, a damaged header)
BEFORE_NS = 946_684_800 * 10**9
#: ... which, and the record before the one before it, are within this (ns) of each other
AGREE_NS = 10 * 10**9


class LoneStamps:
    """Mends the lone damaged stamps of a capture's records read in chunks, in file order
    (:meth:`feed` each chunk's times). A record's stamp is decided with the record after it: a
    chunk's last record waits for the next chunk (:attr:`pending`), or for the end (never
    mended then)."""

    __slots__ = ("before", "pending")

    def __init__(self) -> None:
        #: the mended times (int ns) of the (at most two) records before :attr:`pending`
        self.before: list[int] = []
        #: the time (int ns, as read) of the last record fed, not decided yet; None: none
        self.pending: int | None = None

    def feed(self, ts: np.ndarray, final: bool = False) -> tuple[int | None, np.ndarray, int]:
        """Decide the pending record and the records ``ts`` (int64 ns, file order) but the last
        (all of them when ``final``: the capture's last records). Returns (the pending record's
        time, mended or as read: None when there was none; ``ts`` mended, a new array when any
        was, else ``ts`` itself; how many records were mended, the pending one included)."""
        t = np.asarray(ts, np.int64)
        head = [] if self.pending is None else [self.pending]
        k0 = len(self.before)
        full = np.concatenate((np.array(self.before + head, np.int64), t))
        cand = np.flatnonzero(np.abs(np.diff(full)) > AHEAD_NS) + 1 if len(full) > 1 else np.zeros(0, np.int64)
        changed = 0
        for j in cand.tolist():
            if j < max(2, k0) or j >= len(full) - 1:
                continue
            p2, p1, x, nx = (int(v) for v in full[j - 2:j + 2])
            if abs(p1 - p2) <= AGREE_NS and abs(nx - p1) <= AGREE_NS \
                    and (x - max(p1, nx) > AHEAD_NS or min(p1, nx) - x > BEHIND_NS
                         or (x < BEFORE_NS <= min(p1, nx) and min(p1, nx) - x > AHEAD_NS)):
                full[j] = p1
                changed += 1
        decided = int(full[k0]) if head else None
        out = full[k0 + len(head):]
        if not changed or not bool((out != t).any()):
            out = t
        if final:
            self.before, self.pending = [], None
        elif len(full):
            self.before = [int(v) for v in full[max(0, len(full) - 3):len(full) - 1]]
            self.pending = int(t[-1]) if len(t) else self.pending
        return decided, out, changed


def mend_lone_stamps(cols: dict[str, np.ndarray]) -> int:
    """Give each packet of a frame with a lone damaged stamp (:class:`LoneStamps`, over the
    frames' times in file order, ``cols["frame"]``) the time of the frame before it, in
    ``cols["ts_ns"]`` (int64 ns, changed in place: a :class:`~kscc_traffic.capture.packets.Packets`'
    columns, the packets of one frame sharing its time); returns how many frames were."""
    frame = np.asarray(cols["frame"], np.int64)
    order = np.argsort(frame, kind="stable")
    f, t = frame[order], np.asarray(cols["ts_ns"], np.int64)[order]
    first = np.flatnonzero(np.r_[True, f[1:] != f[:-1]])
    _, new, changed = LoneStamps().feed(t[first], final=True)
    if not changed:
        return 0
    run = np.diff(np.r_[first, len(f)])
    fix = np.repeat(new != t[first], run)
    cols["ts_ns"][order[fix]] = np.repeat(new, run)[fix]
    return changed
