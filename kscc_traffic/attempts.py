"""Repeated failed attempts, grouped for the human reports (the table report's flagged flows, the
HTML report's findings): an agent that retries an unanswered connection every few minutes makes
one flow per attempt (a new source port each time), listed as one row with a one-line summary,
``13 attempts from 23:00:00 to 00:00:00, every ~5 min, none answered``. The flow table itself
(JSON Lines, CSV) keeps a row per flow, as Zeek's ``conn.log`` does.

An attempt's key: its capture, client address, server address and port, transport, server name
(``server_name``, else a DNS flow's ``query``: two lookups of two names are two), purpose,
verdict ``blocked``, reason (``no_answer``, ``rejected`` or ``icmp_unreachable``: a connection
attempt or request that failed) and its detail with its numbers taken out (``SYN sent 3 times``
and ``SYN sent 2 times`` alike; a reset with a TTL hint, an attempt that fell back to IPv4, told
apart). Flows of one key are one group from :data:`MIN_GROUP` of them. Bounded memory:
:data:`MAX_KEYS` keys (the flows of later ones are not grouped), :data:`MAX_TIMES` start times per
key (the intervals of the first ones; the count, first and last of all).
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .classify import STALE_ANSWER

#: the reasons of blocked flows grouped (a connection attempt or request that failed)
ATTEMPT_REASONS = ("no_answer", "rejected", "icmp_unreachable")
#: flows of one key from which they are one group (two make "2 attempts … 5 min apart")
MIN_GROUP = 2
#: keys followed at most (a scan of thousands of ports: bounded memory; later keys not grouped)
MAX_KEYS = 4096
#: start times kept per key for its intervals (beyond, the count and the last time only)
MAX_TIMES = 256
#: how much the intervals may differ from their median (a fraction of it) to be "every ~5 min":
#: an agent's retry timer with some jitter, or the capture's own clock
REGULAR_SPREAD = 0.25

#: the words of each reason's outcome, after the attempts' times
OUTCOME = {"no_answer": "none answered", "rejected": "each refused", "icmp_unreachable": "each answered by an ICMP error"}
#: the words of ``rejected`` for DNS flows: an error answer (NXDOMAIN, SERVFAIL…), which "refused"
#: would confuse with the REFUSED answer code (newcomer63 #1)
DNS_REJECTED = "each answered with an error"
#: the words of ``rejected`` for a SYN answered by an old connection's ACK: nothing refused the
#: port (the detail says a stale connection is held on the way; newcomer63 #1)
STALE_REJECTED = "none connected"

_DIGITS = re.compile(r"\d+")


def _keys(flows: pd.DataFrame) -> np.ndarray:
    """Per row of ``flows`` (a classified flow table), its attempt key (a tuple of texts) or None
    where it is no failed attempt (not blocked, another reason, no address columns)."""
    n = len(flows)
    out = np.full(n, None, object)
    need = ("verdict", "reason", "orig_h", "resp_h", "resp_p", "proto")
    if not n or any(c not in flows for c in need):
        return out
    base = flows["reason"].astype(str).str.split(",").str[0].to_numpy(dtype=object)
    at = np.flatnonzero((flows["verdict"].to_numpy(dtype=object) == "blocked") & np.isin(base, ATTEMPT_REASONS))
    if not len(at):
        return out
    sub = flows.iloc[at]
    cols = [sub[c].astype(str).tolist() for c in ("orig_h", "resp_h", "resp_p", "proto")]
    purpose = sub["purpose"].astype(str).tolist() if "purpose" in sub else [""] * len(at)
    capture = sub["capture"].astype(str).tolist() if "capture" in sub else [""] * len(at)
    detail = [_DIGITS.sub("#", d) for d in sub["detail"].astype(str).tolist()] if "detail" in sub \
        else [""] * len(at)
    name = [f"{a}\n{b}" for a, b in zip(*(sub[c].astype(str).tolist() if c in sub else [""] * len(at)
                                        for c in ("server_name", "query")))]
    out[at] = list(zip(capture, *cols, purpose, sub["reason"].astype(str).tolist(), detail, name))
    return out


def _span(seconds: float) -> str:
    """A duration for the summary: ``3 ms``, ``45 s``, ``5 min``, ``2.5 h`` (rounded; below a
    millisecond ``<1 ms``)."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms" if seconds >= 0.0005 else "<1 ms"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h".replace(".0 h", " h")


def _clock(ts_ns: int) -> str:
    """``HH:MM:SS`` (UTC) of an epoch time in ns."""
    return pd.Timestamp(int(ts_ns), unit="ns", tz="UTC").strftime("%H:%M:%S")


def _day(ts_ns: int) -> str:
    """The ISO date (UTC) of an epoch time in ns."""
    return pd.Timestamp(int(ts_ns), unit="ns", tz="UTC").strftime("%Y-%m-%d")


def outcome_words(reason: str, purpose: str = "", detail: str = "") -> str:
    """The words of the attempts' outcome after their times: :data:`OUTCOME` of ``reason``'s
    first word (``each failed`` for another); for ``rejected`` on a DNS flow (``purpose``
    ``dns``) :data:`DNS_REJECTED`, on a flow whose ``detail`` starts with
    :data:`kscc_traffic.classify.STALE_ANSWER` :data:`STALE_REJECTED`."""
    base = str(reason).split(",")[0]
    if base == "rejected":
        if purpose == "dns":
            return DNS_REJECTED
        if str(detail).startswith(STALE_ANSWER):
            return STALE_REJECTED
    return OUTCOME.get(base, "each failed")


def summary_text(count: int, first_ns: int, last_ns: int, times_ns, reason: str, purpose: str = "",
                 detail: str = "") -> str:
    """The one-line summary of ``count`` attempts of ``reason`` (in words: :func:`outcome_words`
    of ``reason``, ``purpose`` and the first attempt's ``detail``) begun from ``first_ns`` to
    ``last_ns`` (epoch ns), ``times_ns`` the start
    times known (some or all, any order): ``13 attempts from 23:00:00 to 00:00:00 UTC, every ~5
    min, none answered``; the intervals regular (each within :data:`REGULAR_SPREAD` of their
    median, all of them known) say ``every ~``, two attempts ``5 min apart``, else ``from 10 s to 5
    min apart``. '' below :data:`MIN_GROUP`."""
    if count < MIN_GROUP:
        return ""
    outcome = outcome_words(reason, purpose, detail)
    if (last_ns - first_ns) < 1_000_000_000 and _clock(last_ns) == _clock(first_ns):
        # (all within one second: side by side, no pace to tell)
        return (f"{count} attempts at {_clock(first_ns)} UTC within {_span((last_ns - first_ns) / 1e9)}, "
                f"{outcome}")
    end = _clock(last_ns)
    if _day(last_ns) != _day(first_ns):     # (across midnight, or days apart: the last one's date too)
        end = f"{_day(last_ns)} {end}"
    if count == 2:
        return (f"2 attempts from {_clock(first_ns)} to {end} UTC, "
                f"{_span((last_ns - first_ns) / 1e9)} apart, {outcome}")
    t = np.sort(np.asarray(list(times_ns), np.int64))
    gaps = np.diff(t) / 1e9
    if len(t) == count and len(gaps):
        med = float(np.median(gaps))
        regular = med > 0 and bool(np.all(np.abs(gaps - med) <= REGULAR_SPREAD * med))
        pace = f"every ~{_span(med)}" if regular else f"from {_span(gaps.min())} to {_span(gaps.max())} apart"
    else:
        pace = f"every ~{_span((last_ns - first_ns) / 1e9 / (count - 1))} on average"
    return f"{count} attempts from {_clock(first_ns)} to {end} UTC, {pace}, {outcome}"


class AttemptGroups:
    """The failed attempts of the flows added (:meth:`add`, batch by batch), per key
    (:func:`_keys`): how many, their first and last start times and up to :data:`MAX_TIMES` of
    them; :meth:`text` says a key's summary."""

    def __init__(self) -> None:
        #: key -> [count, first ts_ns, last ts_ns, start times (list of int)]
        self.groups: dict[tuple, list] = {}

    def add(self, flows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Count the failed attempts of ``flows`` (a classified flow table with ``ts_ns``); returns
        per row its key (None: not an attempt, or a key beyond :data:`MAX_KEYS`) and whether the
        key was seen before this row (bool array): ``(keys, seen)``."""
        keys = _keys(flows)
        seen = np.zeros(len(keys), bool)
        at = [i for i, k in enumerate(keys.tolist()) if k is not None]
        if not at:
            return keys, seen
        ts = flows["ts_ns"].to_numpy(np.int64)
        for i in sorted(at, key=lambda j: (int(ts[j]), j)):
            k, t = keys[i], int(ts[i])
            g = self.groups.get(k)
            if g is None:
                if len(self.groups) >= MAX_KEYS:
                    keys[i] = None
                    continue
                self.groups[k] = [1, t, t, [t]]
                continue
            seen[i] = True
            g[0] += 1
            g[1], g[2] = min(g[1], t), max(g[2], t)
            if len(g[3]) < MAX_TIMES:
                g[3].append(t)
        return keys, seen

    def count(self, key) -> int:
        """The flows of ``key`` added (0: none, or None)."""
        g = self.groups.get(key) if key is not None else None
        return g[0] if g else 0

    def text(self, key) -> str:
        """The summary of ``key``'s attempts (:func:`summary_text`); '' when fewer than
        :data:`MIN_GROUP` or no such key."""
        g = self.groups.get(key) if key is not None else None
        if not g:
            return ""
        return summary_text(g[0], g[1], g[2], g[3], key[6], key[5], key[7])


def grouped(flows: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """``flows`` (classified, any order) with each group of failed attempts (:class:`AttemptGroups`)
    as its first row (by ``ts_ns``) only, in the order of ``flows``, and per row kept its
    summary ('' where none): what the HTML report's findings list."""
    if not len(flows) or "ts_ns" not in flows:
        return flows, [""] * len(flows)
    groups = AttemptGroups()
    keys, seen = groups.add(flows)
    keep = ~seen
    texts = [groups.text(k) for k, s in zip(keys.tolist(), keep.tolist()) if s]
    return flows[keep], texts


def with_summary(detail: str, summary: str) -> str:
    """A grouped row's detail: its summary, then the first attempt's detail (``: `` between)."""
    if not summary:
        return detail
    return f"{summary}; the first: {detail}" if detail else summary
