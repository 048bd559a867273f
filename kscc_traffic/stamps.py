"""Lone damaged timestamps: a record stamped far from the records on both sides of it, which agree
with each other (a bit flipped in a timestamp, a NIC that stamped 0 for one packet, a record
stamped in 1970 or days ahead). Read as it is, such a packet is sorted away from its connection:
its flow splits in two, the first part missing a segment the peer acknowledged (break-it s56
link pass #1: a working connection then read ``blocked``). Wireshark shows it in file order, and
Zeek, which reads in file order, keeps it in its connection. Here it takes the time of the record
before it, so it is analysed in file order; :mod:`kscc_traffic.chunked` says how many were."""
from __future__ import annotations

import numpy as np

__all__ = ["FAR_NS", "AGREE_NS", "lone_stamps", "lone_stamp", "mend_lone_stamps"]

#: a lone stamp is more than this far (ns) from the records before and after it
FAR_NS = 60 * 10**9
#: ... which are at most this far (ns) from each other
AGREE_NS = 10 * 10**9


def lone_stamp(before: int | None, ts: int, after: int | None) -> bool:
    """Whether a record stamped ``ts`` (int ns) between records stamped ``before`` and ``after``
    (None: no record there) is a lone damaged stamp: more than :data:`FAR_NS` from both, which are
    within :data:`AGREE_NS` of each other. A first or last record (a neighbour missing) is not."""
    if before is None or after is None:
        return False
    return abs(ts - before) > FAR_NS and abs(after - ts) > FAR_NS and abs(after - before) <= AGREE_NS


def lone_stamps(ts: np.ndarray, before: int | None = None) -> np.ndarray:
    """Positions (int64 array, ascending) of the records of ``ts`` (int64 ns, file order) with a
    lone damaged stamp (:func:`lone_stamp`), the record before the first one stamped ``before``
    (None: none), the last record never (its next is not in ``ts``: the caller decides it with
    the next one, :func:`lone_stamp`). Two such records in a row are not (each has a far
    neighbour)."""
    t = np.asarray(ts, np.int64)
    n = len(t)
    if before is not None:
        if n < 2:
            return np.zeros(0, np.int64)
        prev, mid, nxt = np.concatenate((np.array([before], np.int64), t[:n - 2])), t[:n - 1], t[1:]
        shift = 0
    else:
        if n < 3:
            return np.zeros(0, np.int64)
        prev, mid, nxt = t[:n - 2], t[1:n - 1], t[2:]
        shift = 1
    far = (np.abs(mid - prev) > FAR_NS) & (np.abs(nxt - mid) > FAR_NS) & (np.abs(nxt - prev) <= AGREE_NS)
    return np.flatnonzero(far) + shift


def mend_lone_stamps(cols: dict[str, np.ndarray]) -> int:
    """Give each packet of a frame with a lone damaged stamp (:func:`lone_stamps` of the frames'
    times in file order, ``cols["frame"]``) the time of the frame before it, in ``cols["ts_ns"]``
    (int64 ns, changed in place: a :class:`~kscc_traffic.capture.packets.Packets`' columns, the
    packets of one frame sharing its time); returns how many frames were."""
    frame = np.asarray(cols["frame"], np.int64)
    order = np.argsort(frame, kind="stable")
    f, t = frame[order], np.asarray(cols["ts_ns"], np.int64)[order]
    first = np.flatnonzero(np.r_[True, f[1:] != f[:-1]])
    at = lone_stamps(t[first])
    if not len(at):
        return 0
    # (each packet of such a frame: the time of the frame before it)
    run = np.diff(np.r_[first, len(f)])
    fix = np.zeros(len(first), bool)
    fix[at] = True
    new = t[first].copy()
    new[at] = t[first][at - 1]
    packets = np.repeat(fix, run)
    cols["ts_ns"][order[packets]] = np.repeat(new, run)[packets]
    return len(at)
