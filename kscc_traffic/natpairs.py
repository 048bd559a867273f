"""Connections captured twice, before and after a NAT (newcomer 35 F7: ``tcpdump -i any`` on a NAT
gateway sees each of a client's connections on the inside interface, from the client, and again
on the outside one, from the gateway's address: every flow, and every count of the report, is
doubled, and nothing says why).

:class:`NatWatch` follows a capture's flows, batch by batch, and finds such pairs: two flows of
one transport protocol to the same responder address and port, from the same originator port
(a NAT that keeps the source port, as Linux masquerading and most home and office routers do
while it is free), from two originator addresses, started at most :data:`PAIR_WINDOW_NS` apart,
with the same number of originator packets and payload bytes, to a unicast address (a router
forwards no broadcast nor multicast). The earlier is the inside copy (the packet is captured as
it arrives from the client, then as it leaves translated). One ``Warning:`` per capture gives
their count and the most common address translation, when the pairs are more than a few
coincidences: only the pairs whose outside address recurs (in two pairs or more) and is one of
the :data:`OUTSIDE_ADDRESSES` most common count (a gateway has one address, or a few; a spray
of look-alike datagrams from many addresses pairs them among themselves, each address once), and
they must be :data:`MIN_PAIRS` at least, and :data:`MIN_SHARE` of the flows.
A NAT that changes the source port is not recognised (two clients' connections cannot be told
from one connection translated); the verdicts are not changed either way: each copy is judged as
the connection it is on its side.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from .text import escape_terminal

__all__ = ["NatWatch", "PAIR_WINDOW_NS", "MIN_PAIRS", "MIN_SHARE", "OUTSIDE_ADDRESSES"]

#: the longest time (ns) between the first packets of a connection's two copies (a gateway
#: forwards in microseconds; a loaded one in a few milliseconds)
PAIR_WINDOW_NS = 20_000_000
#: pairs from which a capture is said to hold connections twice
MIN_PAIRS = 2
#: the outside addresses whose pairs count: a NAT has one address, or a few (a spray of look-alike
#: datagrams from many addresses pairs them among themselves, the "outside" ones as many as the pairs)
OUTSIDE_ADDRESSES = 8
#: outside addresses counted at most (beyond, those of one pair are forgotten)
TRACKED = 16_384
#: the share of the TCP and UDP flows (both copies counted) the pairs must make at least
MIN_SHARE = 0.2
_KEYS = ("proto", "resp_h", "resp_p", "orig_p", "orig_pkts", "orig_bytes", "orig_h", "ts_ns")


class NatWatch:
    """Connections of a capture seen twice, before and after a NAT.

    :meth:`add` takes each batch of flows (a flow table with ``proto``, ``orig_h``, ``orig_p``,
    ``resp_h``, ``resp_p``, ``orig_pkts``, ``orig_bytes``, ``ts_ns`` (epoch ns)); :meth:`line`
    gives the warning line (starting with the capture's name) or None. Pairs whose copies leave
    in different batches are not counted (the two copies of a connection end together)."""

    def __init__(self) -> None:
        self.pairs = 0
        self.flows = 0                              # TCP and UDP flows seen
        self.translations: Counter = Counter()      # (inside address, outside address) -> pairs
        self._outside: Counter = Counter()          # outside address -> pairs

    def add(self, flows: pd.DataFrame) -> None:
        """Follow one batch of flows (those leaving a chunked reading, or a whole table)."""
        if not len(flows) or any(k not in flows.columns for k in _KEYS):
            return
        proto = flows["proto"].to_numpy(dtype=object)
        ports = (proto == "tcp") | (proto == "udp")
        n = int(ports.sum())
        self.flows += n
        if "cast" in flows.columns:     # (a router forwards no broadcast nor multicast: no NAT copy)
            ports &= flows["cast"].to_numpy(dtype=object) == "unicast"
            n = int(ports.sum())
        if n < 2:
            return
        # (candidates first, on integers: rows whose ports, packets and bytes another row repeats;
        # a hash collision only adds a candidate, checked exactly below)
        ints = [flows[k].to_numpy()[ports].astype(np.int64) for k in ("resp_p", "orig_p", "orig_pkts", "orig_bytes")]
        key = ((ints[0] << 16) | ints[1]) ^ (ints[2] * 1_000_003 + ints[3]) * 0x9E3779B1
        ts = flows["ts_ns"].to_numpy()[ports].astype(np.int64)
        order = np.lexsort((ts, key))
        k, t = key[order], ts[order]
        near = (k[1:] == k[:-1]) & (t[1:] - t[:-1] <= PAIR_WINDOW_NS)   # (a row and the next)
        if not near.any():
            return
        maybe = np.zeros(n, bool)
        maybe[1:] |= near
        maybe[:-1] |= near
        rows = np.flatnonzero(ports)[order[maybe]]
        # (in columns, not Python tuples: a spray of one-datagram flows makes every row a candidate)
        col = {c: flows[c].to_numpy()[rows] for c in _KEYS}
        same = [pd.factorize(col[c].astype(object))[0] if c in ("proto", "resp_h") else col[c].astype(np.int64)
                for c in _KEYS[:6]]
        host_codes, hosts = pd.factorize(col["orig_h"].astype(object))
        t = col["ts_ns"].astype(np.int64)
        # sorted by everything but the originator address (a connection's two copies side by side),
        # then by time; stable, so rows of one time keep their order
        o = np.lexsort((t, *same[::-1]))
        equal = np.ones(len(o) - 1, bool)
        for v in same:
            v = v[o]
            equal &= v[1:] == v[:-1]
        h, t = host_codes[o], t[o]
        match = equal & (h[1:] != h[:-1]) & (t[1:] - t[:-1] <= PAIR_WINDOW_NS)
        # a row pairs once: along a run of matches (row i with i + 1), the first, third, fifth…
        # (of three copies in a row, the first two), as a walk that skips a paired row would
        idx = np.arange(len(match))
        starts = np.maximum.accumulate(np.where(match & ~np.concatenate([[False], match[:-1]]), idx, 0))
        chosen = match & ((idx - starts) % 2 == 0)
        inside, outside = h[:-1][chosen], h[1:][chosen]
        if len(inside):
            self._count(hosts, inside, outside)

    def _count(self, hosts, inside: np.ndarray, outside: np.ndarray) -> None:
        """Count a batch's pairs (codes into ``hosts``) by outside address and by translation.
        Beyond :data:`TRACKED` outside addresses, those of a single pair are forgotten (then the
        least common, down to half of it), with their translations: a NAT's address recurs."""
        self.pairs += len(inside)
        (a, b), k = np.unique(np.stack([inside, outside]), axis=1, return_counts=True)
        for a, b, k in zip(a.tolist(), b.tolist(), k.tolist()):
            ins, out = str(hosts[a]), str(hosts[b])
            self._outside[out] += k
            self.translations[(ins, out)] += k
        if len(self._outside) > TRACKED:
            keep = {a: k for a, k in self._outside.items() if k > 1}
            if len(keep) > TRACKED // 2:
                keep = dict(Counter(keep).most_common(TRACKED // 2))
            self._outside = Counter(keep)
            self.translations = Counter({t: k for t, k in self.translations.items() if t[1] in keep})

    def warn(self, stats, capture: str) -> None:
        """Add :meth:`line` to ``stats`` (a :class:`~kscc_traffic.capture.stats.ReadStats`), if any."""
        line = self.line(capture)
        if line:
            stats.warn(line)

    def line(self, capture: str) -> str | None:
        """The warning line about the connections seen twice (None when they are too few): the
        pairs whose outside address is one of the :data:`OUTSIDE_ADDRESSES` most common, and in
        more than one pair (a gateway's address recurs)."""
        nat = {a: k for a, k in self._outside.most_common(OUTSIDE_ADDRESSES) if k > 1}
        pairs = sum(nat.values())
        if pairs < MIN_PAIRS or 2 * pairs < MIN_SHARE * self.flows:
            return None
        theirs = Counter({t: k for t, k in self.translations.items() if t[1] in nat})
        (inside, outside), k = min(theirs.items(), key=lambda tk: (-tk[1], tk[0]))   # (a tie: the first text)
        more = len(theirs) - 1
        others = f", and {more} other translation{'s' if more != 1 else ''}" if more else ""
        return escape_terminal(
            f"{capture}: {pairs} connection{'s were' if pairs != 1 else ' was'} captured twice, before and "
            f"after a NAT (the same ports, packets and bytes a few ms apart from two addresses; {inside} -> "
            f"{outside} {k} time{'s' if k != 1 else ''}{others}): a capture on every interface of a NAT gateway "
            "(tcpdump -i any) counts each such connection twice, once per side; capture on one interface "
            "(-i the inside one, for the clients' addresses) to count each once")
