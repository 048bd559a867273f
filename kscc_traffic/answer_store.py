"""The DNS answers a chunked analysis keeps for the flows still to come, in bounded memory.

A long capture has many answers, but a flow that starts later can only be named by the latest
answer per (client, address) and the latest per address (:mod:`kscc_traffic.names`). The store
keeps those (once it has doubled in size since it last pruned, so pruning costs O(1) amortised
per answer), indexes its rows by address so a batch's lookup costs what the batch's flows need
rather than the store's size, and shares one string object per distinct client, address and
name.
"""
from __future__ import annotations

import sys

import numpy as np

from .inspect import DnsAnswers

__all__ = ["AnswerStore"]


class AnswerStore:
    """DNS answers (time, client, address, name) kept across the batches of one capture.

    Used as ``prior_answers`` of :func:`kscc_traffic.analyze.analyze_batch`: ``len(store)`` and
    :meth:`select` are what it reads.
    """

    #: answers kept before the first pruning
    MIN_PRUNE = 10_000

    def __init__(self) -> None:
        self._ts: list[int] = []
        self._client: list[str] = []
        self._address: list[str] = []
        self._name: list[str] = []
        self._rows: dict[str, list[int]] = {}    # address -> its rows, in store order
        self._recent: set = set()                 # rows of answers that may be added again
        self._pruned_at = 0                       # size after the last prune

    def __len__(self) -> int:
        return len(self._ts)

    def add(self, new: DnsAnswers, again_ts=None) -> None:
        """Keep the answers of ``new`` not kept yet.

        :param again_ts: the times (epoch ns, any iterable of int) of the packets carried to the
            next batch: their answers come back with it, and only answers with one of these times
            are remembered for de-duplication. ``None``: remember all (until the next prune).
        """
        intern = sys.intern
        seen = self._recent
        for row in zip(new.ts_ns, new.client, new.address, new.name):
            if row in seen:
                continue
            seen.add(row)
            ts, client, address, name = row
            address = intern(address)
            self._rows.setdefault(address, []).append(len(self._ts))
            self._ts.append(ts)
            self._client.append(intern(client))
            self._address.append(address)
            self._name.append(intern(name))
        if again_ts is not None and seen:
            again = set(again_ts)
            self._recent = {r for r in seen if r[0] in again}

    def select(self, addresses) -> DnsAnswers:
        """The answers whose address is in ``addresses``, in store order (a new object)."""
        rows: list[int] = []
        for a in addresses:
            r = self._rows.get(a)
            if r:
                rows.extend(r)
        rows.sort()
        return DnsAnswers([self._ts[i] for i in rows], [self._client[i] for i in rows],
                          [self._address[i] for i in rows], [self._name[i] for i in rows])

    def answers(self) -> DnsAnswers:
        """Everything kept, in store order (a new object)."""
        return DnsAnswers(list(self._ts), list(self._client), list(self._address), list(self._name))

    def prune(self, before_ns: int | None) -> None:
        """Forget what no flow still to come can use. Flows still open keep the names they got
        (``known_names`` of :func:`~kscc_traffic.analyze.analyze_batch`); flows still to come
        start after ``before_ns`` (epoch ns), so of the answers before it only the latest per
        (client, address) and the latest per address can name them. Done when the store has
        doubled since the last time (amortised)."""
        n = len(self._ts)
        if before_ns is None or n == 0 or n < 2 * max(self._pruned_at, self.MIN_PRUNE):
            return
        ts = np.array(self._ts, np.int64)
        address = _codes(self._address)
        client = _codes(self._client)
        order = np.lexsort((np.arange(n), ts))         # time order, store order within a time
        old = order[ts[order] < before_ns]
        keep = np.zeros(n, bool)
        keep[ts >= before_ns] = True
        for key in (client[old] * (int(address.max()) + 1) + address[old], address[old]):
            # the last of each key in time order
            _, last = np.unique(key[::-1], return_index=True)
            keep[old[len(old) - 1 - last]] = True
        rows = order[keep[order]].tolist()
        self._ts = [self._ts[i] for i in rows]
        self._client = [self._client[i] for i in rows]
        self._address = [self._address[i] for i in rows]
        self._name = [self._name[i] for i in rows]
        self._rows = {}
        for i, a in enumerate(self._address):
            self._rows.setdefault(a, []).append(i)
        self._pruned_at = len(self._ts)


def _codes(values: list) -> np.ndarray:
    """Each value -> an integer code (equal values, equal codes)."""
    ids: dict = {}
    return np.fromiter((ids.setdefault(v, len(ids)) for v in values), np.int64, len(values))
