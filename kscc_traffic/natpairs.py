"""Connections captured twice, before and after a NAT (newcomer 35 F7: ``tcpdump -i any`` on a NAT
gateway sees each of a client's connections on the inside interface, from the client, and again
on the outside one, from the gateway's address: every flow, and every count of the report, is
doubled, and nothing says why).

:class:`NatWatch` follows a capture's flows, batch by batch, and finds such pairs: two flows of
one transport protocol to the same responder address and port, from the same originator port
(a NAT that keeps the source port, as Linux masquerading and most home and office routers do
while it is free), from two originator addresses, started at most :data:`PAIR_WINDOW_NS` apart,
with the same number of originator packets and payload bytes. The earlier is the inside copy
(the packet is captured as it arrives from the client, then as it leaves translated). One
``Warning:`` per capture gives their count and the most common address translation, when the
pairs are more than a few coincidences (:data:`MIN_PAIRS`, and :data:`MIN_SHARE` of the flows).
A NAT that changes the source port is not recognised (two clients' connections cannot be told
from one connection translated); the verdicts are not changed either way: each copy is judged as
the connection it is on its side.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from .text import escape_terminal

__all__ = ["NatWatch", "PAIR_WINDOW_NS", "MIN_PAIRS", "MIN_SHARE"]

#: the longest time (ns) between the first packets of a connection's two copies (a gateway
#: forwards in microseconds; a loaded one in a few milliseconds)
PAIR_WINDOW_NS = 20_000_000
#: pairs from which a capture is said to hold connections twice
MIN_PAIRS = 2
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

    def add(self, flows: pd.DataFrame) -> None:
        """Follow one batch of flows (those leaving a chunked reading, or a whole table)."""
        if not len(flows) or any(k not in flows.columns for k in _KEYS):
            return
        proto = flows["proto"].to_numpy(dtype=object)
        ports = (proto == "tcp") | (proto == "udp")
        n = int(ports.sum())
        self.flows += n
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
        values = [flows[k].to_numpy(dtype=object)[rows].tolist() for k in _KEYS]
        # (sorted by everything but the originator address: a connection's two copies side by side)
        cand = sorted(zip(*values), key=lambda r: (str(r[0]), str(r[1]), *r[2:6], r[7]))
        i = 0
        while i < len(cand) - 1:
            a, b = cand[i], cand[i + 1]
            if a[:6] == b[:6] and a[6] != b[6] and b[7] - a[7] <= PAIR_WINDOW_NS:
                self.pairs += 1
                self.translations[(str(a[6]), str(b[6]))] += 1
                i += 2                      # (a row pairs once: of three copies in a row, the first two)
            else:
                i += 1

    def warn(self, stats, capture: str) -> None:
        """Add :meth:`line` to ``stats`` (a :class:`~kscc_traffic.capture.stats.ReadStats`), if any."""
        line = self.line(capture)
        if line:
            stats.warn(line)

    def line(self, capture: str) -> str | None:
        """The warning line about the connections seen twice (None when they are too few)."""
        if self.pairs < MIN_PAIRS or 2 * self.pairs < MIN_SHARE * self.flows:
            return None
        (inside, outside), k = self.translations.most_common(1)[0]
        more = len(self.translations) - 1
        others = f", and {more} other translation{'s' if more != 1 else ''}" if more else ""
        return escape_terminal(
            f"{capture}: {self.pairs} connection{'s were' if self.pairs != 1 else ' was'} captured twice, before and "
            f"after a NAT (the same ports, packets and bytes a few ms apart from two addresses; {inside} -> "
            f"{outside} {k} time{'s' if k != 1 else ''}{others}): a capture on every interface of a NAT gateway "
            "(tcpdump -i any) counts each such connection twice, once per side; capture on one interface "
            "(-i the inside one, for the clients' addresses) to count each once")
