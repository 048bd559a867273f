"""The DNS answers a chunked analysis keeps for the flows still to come, in bounded memory.

A flow is named by the latest answer received before it started, preferring answers received
by its own originator (:mod:`kscc_traffic.names`). Flows still to come start after the *cutoff*
(:meth:`AnswerStore.advance`), so of the answers before it only two matter: the latest per
(client, address) and the latest per address. The store keeps those in two dicts and every
answer since the cutoff as it is. Memory is bounded by the distinct (client, address) pairs
plus the answers of the last few seconds; a batch's lookup (:meth:`AnswerStore.select`) costs
what the batch's flows need, not the store's size. One string object is shared per distinct
client, address and name.
"""
from __future__ import annotations

import sys
from operator import itemgetter

from .inspect import DnsAnswers

__all__ = ["AnswerStore"]


class AnswerStore:
    """DNS answers (time, client, address, name) kept across the batches of one capture.

    Used as ``prior_answers`` of :func:`kscc_traffic.analyze.analyze_batch`, which reads
    ``len(store)`` and :meth:`select`.
    """

    def __init__(self) -> None:
        # answers at or after the cutoff, in the order added: ts (epoch ns), frame, client,
        # address, name
        self._recent: list[tuple[int, int, str, str, str]] = []
        # address -> client -> (ts, frame, name): the latest per (client, address) (two levels:
        # a capture has few server addresses and many clients, and a tuple key per pair costs more)
        self._latest_pair: dict[str, dict[str, tuple[int, int, str]]] = {}
        self._pairs = 0
        self._latest_addr: dict[str, tuple[int, int, str, str]] = {}     # address -> (ts, frame, client, name)
        self._again: set = set()      # answers that may be added again (see add)
        self._cutoff: int | None = None

    def __len__(self) -> int:
        return len(self._recent) + self._pairs

    def add(self, new: DnsAnswers, again_ts=None) -> None:
        """Keep the answers of ``new`` not kept yet.

        :param again_ts: the times (epoch ns, any iterable of int) of the packets carried to the
            next batch: their answers come back with it, and only answers with one of these times
            are remembered so as to be kept once. ``None``: remember all.
        """
        # each row once, at the place of its last occurrence (as in the whole list, where the
        # last of equal rows is the one that counts: an answer of the same time and frame in
        # between does not win over it); tuples made and compared by C loops
        rows = list(zip(new.ts_ns, new.frames(), new.client, new.address, new.name))
        rows = dict.fromkeys(rows[::-1])
        seen = self._again
        if seen and rows:
            for r in seen:      # (answers of carried packets, parsed again)
                rows.pop(r, None)
        if rows:
            # kept with their texts interned (one string object per distinct text)
            intern = sys.intern
            ts, frame, client, address, name = zip(*reversed(rows))
            fresh = list(zip(ts, frame, map(intern, client), map(intern, address), map(intern, name)))
            cutoff = self._cutoff
            if cutoff is None or min(ts) >= cutoff:
                self._recent.extend(fresh)
            else:
                for row in fresh:
                    if row[0] < cutoff:
                        self._fold(row)          # a late answer: only its part in the latest counts
                    else:
                        self._recent.append(row)
        if again_ts is None:
            seen.update(rows)
        elif seen or rows:
            again = set(again_ts)
            self._again = {r for r in seen if r[0] in again}
            self._again.update([r for r in rows if r[0] in again])

    def advance(self, cutoff: int | None) -> None:
        """No flow still to come starts before ``cutoff`` (epoch ns): of the answers before it,
        keep only the latest per (client, address) and per address. ``None`` or an earlier
        cutoff than the last: nothing to do."""
        if cutoff is None or (self._cutoff is not None and cutoff <= self._cutoff):
            return
        self._cutoff = cutoff
        old = [r for r in self._recent if r[0] < cutoff]
        if not old:
            return
        self._recent = [r for r in self._recent if r[0] >= cutoff]
        old.sort(key=itemgetter(0, 1))      # time order, capture order within a time
        # The answers kept as the latest are older than the last cutoff (they were before it
        # when folded) and every answer in _recent is not (add folds what is older): each of
        # ``old`` replaces what is kept for its pair and address, so the last of each (in time
        # order) is the latest.
        latest_pair, latest_addr = self._latest_pair, self._latest_addr
        by_address: dict[str, list] = {}
        for row in old:
            by_address.setdefault(row[3], []).append(row)
        for address, rows in by_address.items():
            by_client = latest_pair.get(address)
            if by_client is None:
                by_client = latest_pair[address] = {}
            n = len(by_client)
            by_client.update({r[2]: (r[0], r[1], r[4]) for r in rows})
            self._pairs += len(by_client) - n
            ts, frame, client, _, name = rows[-1]
            latest_addr[address] = (ts, frame, client, name)

    def _fold(self, row: tuple[int, int, str, str, str]) -> None:
        ts, frame, client, address, name = row
        by_client = self._latest_pair.get(address)
        if by_client is None:
            by_client = self._latest_pair[address] = {}
        have = by_client.get(client)
        if have is None:
            self._pairs += 1
        if have is None or (ts, frame) >= have[:2]:
            by_client[client] = (ts, frame, name)
        have = self._latest_addr.get(address)
        if have is None or (ts, frame) >= have[:2]:
            self._latest_addr[address] = (ts, frame, client, name)

    def select(self, addresses, pairs=None) -> DnsAnswers:
        """The answers that can name a flow to ``addresses`` (a set of address texts): the
        latest before the cutoff per address and per (client, address) of ``pairs`` (an iterable
        of (client, address); ``None``: every pair kept for these addresses), then every answer
        since the cutoff to one of these addresses. A new object, with ``frame_no``; an
        address's latest comes after the pairs' (so it wins a tie, as the latest it is)."""
        if pairs is None:
            pairs = [(c, a) for a in addresses for c in self._latest_pair.get(a, ())]
        elif not isinstance(pairs, (set, frozenset)):
            pairs = set(pairs)
        latest_pair, latest_addr = self._latest_pair, self._latest_addr
        pair_of, empty = latest_pair.get, {}
        rows = []
        for client, address in pairs:
            v = pair_of(address, empty).get(client)
            if v is not None:
                rows.append((v[0], v[1], client, address, v[2]))
        rows.sort(key=itemgetter(0, 1))
        for a in addresses:
            v = latest_addr.get(a)
            if v is not None:
                rows.append((v[0], v[1], v[2], a, v[3]))
        rows.extend([r for r in self._recent if r[3] in addresses])
        if not rows:
            return DnsAnswers()
        ts, frame, client, address, name = zip(*rows)
        return DnsAnswers(list(ts), list(client), list(address), list(name), list(frame))

    def answers(self) -> DnsAnswers:
        """Everything kept (as :meth:`select` of every address)."""
        addresses = set(self._latest_addr) | {r[3] for r in self._recent}
        return self.select(addresses)
