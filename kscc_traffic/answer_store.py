"""The DNS answers a chunked analysis keeps for the flows still to come, in bounded memory.

A flow is named by the latest answer received before it started, preferring answers received
by its own originator (:mod:`kscc_traffic.names`). Flows still to come start after the *cutoff*
(:meth:`AnswerStore.advance`), so of the answers before it only two matter: the latest per
(client, address) and the latest per address. The store keeps those as *slots* (one per
(client, address) pair: time and frame in two int64 arrays, client and name in two lists), an
address's latest being one of its pairs' slots, and every answer since the cutoff as it is. One
string object is shared per distinct client, address and name. Memory grows with the distinct
(client, address) pairs (~350 bytes each with their texts, see :data:`MAX_PAIRS`) plus the
answers of the last few seconds; a batch's lookup (:meth:`AnswerStore.select`) costs what the
batch's flows need, not the store's size. Past :data:`MAX_PAIRS` pairs the oldest are forgotten
(:attr:`AnswerStore.dropped`, warned about by the chunked analysis).

A flow's name under the host mask of a rule documenting its port wins over a later other one
(:func:`kscc_traffic.names._dns_names`): given the rules' masks (``masks``), the store also keeps,
per mask, the latest answer under it per (client, address) and per address where that is not the
latest answer itself: an answer under a mask is remembered when a later one not under it takes
its place (a CDN's other name looked up later), so an address answered under one name all along
costs nothing more.
"""
from __future__ import annotations

import sys
from array import array
from operator import itemgetter

import numpy as np

from .inspect import DnsAnswers


def _masks_of(name, masks):
    """:func:`kscc_traffic.names.masks_of` (imported on first use: names imports this module's
    users)."""
    from .names import masks_of
    return masks_of(name, masks)

__all__ = ["AnswerStore", "MAX_PAIRS"]

#: (client, address) pairs kept at most (their latest answers before the cutoff): past it the
#: oldest quarter is forgotten (flows still to come to those addresses are then named by no
#: answer), so a day of a resolver's or gateway's traffic, whose clients and addresses grow all
#: day, stays bounded: ~350 bytes a pair with its texts, ~350 MB at most (break-it 21 F2: it was
#: ~720 bytes a pair, never freed)
MAX_PAIRS = 1_000_000


class AnswerStore:
    """DNS answers (time, client, address, name) kept across the batches of one capture.

    Used as ``prior_answers`` of :func:`kscc_traffic.analyze.analyze_batch`, which reads
    ``len(store)`` and :meth:`select`.

    :param max_pairs: (client, address) pairs kept at most (default :data:`MAX_PAIRS`).
    :param masks: host masks (:func:`kscc_traffic.names.host_masks` of the rules) whose latest
        answers are kept too, per (client, address, mask) and (address, mask).
    """

    def __init__(self, max_pairs: int | None = None, masks: tuple[str, ...] = ()) -> None:
        self.masks = tuple(masks)
        # (client, address) -> {mask: (ts, frame, name)}; address -> {mask: (ts, frame, client,
        # name)}: the latest answer before the cutoff whose name is under the mask
        self._pref_pair: dict[tuple, dict] = {}
        self._pref_addr: dict[str, dict] = {}
        self._masks_of: dict[str, tuple] = {}      # name -> the masks it is under (a cache)
        # answers at or after the cutoff, in the order added: ts (epoch ns), frame, client,
        # address, name
        self._recent: list[tuple[int, int, str, str, str]] = []
        # the latest answer per (client, address) before the cutoff, one slot each: time (epoch
        # ns), frame, client, name
        self._ts = array("q")
        self._frame = array("q")
        self._client: list[str] = []
        self._name: list[str] = []
        # address -> the slot of its latest answer; for an address answered to more than one
        # client, also address -> client -> slot (most addresses have one client: no dict then,
        # that one pair being the address's latest)
        self._addr: dict[str, int] = {}
        self._multi: dict[str, dict[str, int]] = {}
        self._again: set = set()      # answers that may be added again (see add)
        self._cutoff: int | None = None
        self.max_pairs = MAX_PAIRS if max_pairs is None else max_pairs
        #: (client, address) pairs forgotten past ``max_pairs``, and the time (epoch ns) of the
        #: latest answer among them
        self.dropped = 0
        self.dropped_until_ns: int | None = None

    @property
    def _pairs(self) -> int:
        return len(self._ts)

    def __len__(self) -> int:
        return len(self._recent) + len(self._ts)

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
                        self._fold_masked([row])   # (and in the latest under its masks)
                    else:
                        self._recent.append(row)
                self._prune()
        if again_ts is None:
            seen.update(rows)
        elif seen or rows:
            again = set(again_ts)
            self._again = {r for r in seen if r[0] in again}
            self._again.update([r for r in rows if r[0] in again])

    def advance(self, cutoff: int | None) -> None:
        """No flow still to come starts before ``cutoff`` (epoch ns): of the answers before it,
        keep only the latest per (client, address) and per address (past :attr:`max_pairs`
        pairs, forget the oldest). ``None`` or an earlier cutoff than the last: nothing to do."""
        if cutoff is None or (self._cutoff is not None and cutoff <= self._cutoff):
            return
        self._cutoff = cutoff
        old = [r for r in self._recent if r[0] < cutoff]
        if not old:
            return
        self._recent = [r for r in self._recent if r[0] >= cutoff]
        old.sort(key=itemgetter(0, 1))      # time order, capture order within a time
        # (the last of each pair and address in that order is its latest: see _fold's >=)
        self._fold_all(old)
        self._prune()

    def _left(self, ts: int, frame: int, client: str, address: str, name: str, new: str, pair: bool) -> None:
        """The answer (``ts``, ``frame``, ``client``, ``address``, ``name``) is no longer its
        address's latest (and, ``pair``, nor its pair's), an answer named ``new`` taking its place:
        it stays the latest under each of its masks that ``new`` is not under, when no later one
        under it was kept (so of each mask the latest answer is kept: the slot's, or this one)."""
        seen = self._masks_of
        ms = seen.get(name)
        if ms is None:
            ms = seen[name] = _masks_of(name, self.masks)
        if not ms:
            return
        now = seen.get(new)
        if now is None:
            now = seen[new] = _masks_of(new, self.masks)
        for m in ms:
            if m in now:
                continue
            if pair:
                d = self._pref_pair.setdefault((client, address), {})
                old = d.get(m)
                if old is None or (ts, frame) >= old[:2]:
                    d[m] = (ts, frame, name)
            d = self._pref_addr.setdefault(address, {})
            old = d.get(m)
            if old is None or (ts, frame) >= old[:2]:
                d[m] = (ts, frame, client, name)

    def _fold_masked(self, rows: list) -> None:
        """Of ``rows`` (late answers, before the cutoff when they came), those whose name is under
        one of :attr:`masks` replace the latest under it per (client, address) and per address
        when not older (a tie: the one folded last wins, as :meth:`_fold`): a late answer older
        than its pair's latest may still be the latest under a mask."""
        if not self.masks:
            return
        pair, addr, seen, masks = self._pref_pair, self._pref_addr, self._masks_of, self.masks
        for ts, frame, client, address, name in rows:
            ms = seen.get(name)
            if ms is None:
                ms = seen[name] = _masks_of(name, masks)
            for m in ms:
                d = pair.setdefault((client, address), {})
                old = d.get(m)
                if old is None or (ts, frame) >= old[:2]:
                    d[m] = (ts, frame, name)
                d = addr.setdefault(address, {})
                old = d.get(m)
                if old is None or (ts, frame) >= old[:2]:
                    d[m] = (ts, frame, client, name)

    def _fold(self, row: tuple[int, int, str, str, str]) -> None:
        """``row`` replaces its pair's latest and its address's latest when not older (a tie:
        the one folded last wins)."""
        self._fold_all([row])

    def _fold_all(self, rows: list) -> None:
        """:meth:`_fold` of each of ``rows`` in turn: the same steps, written out in one loop with
        the store's containers bound to locals (the bench capture's chunked run folds ~65,000
        answers, each a method call and a dozen attribute reads in :meth:`_fold`)."""
        T, F, C, N = self._ts, self._frame, self._client, self._name
        addr, multi = self._addr, self._multi
        addr_get, multi_get = addr.get, multi.get
        t_append, f_append, c_append, n_append = T.append, F.append, C.append, N.append
        masked, left = bool(self.masks), self._left
        if len(self._masks_of) > 1 << 16:
            self._masks_of.clear()
        for ts, frame, client, address, name in rows:
            s = addr_get(address)
            if s is None:                       # (_slot)
                t_append(ts)
                f_append(frame)
                c_append(client)
                n_append(name)
                addr[address] = len(T) - 1
                continue
            by_client = multi_get(address)
            if by_client is None:
                if C[s] == client:              # the address's one pair
                    if (ts, frame) >= (T[s], F[s]):
                        if masked and N[s] != name:
                            left(T[s], F[s], client, address, N[s], name, True)
                        T[s], F[s], N[s] = ts, frame, name
                    continue
                by_client = multi[address] = {C[s]: s}
            p = by_client.get(client)
            if p is None:
                t_append(ts)
                f_append(frame)
                c_append(client)
                n_append(name)
                p = by_client[client] = len(T) - 1
            elif (ts, frame) >= (T[p], F[p]):
                if masked and N[p] != name:
                    left(T[p], F[p], client, address, N[p], name, True)
                T[p], F[p], N[p] = ts, frame, name
            else:
                continue                        # (older than its pair's: older than the address's)
            if p != s and (ts, frame) >= (T[s], F[s]):
                if masked and N[s] != name:     # (s stays its pair's latest)
                    left(T[s], F[s], C[s], address, N[s], name, False)
                addr[address] = p

    def _prune(self) -> None:
        """Past :attr:`max_pairs` pairs: forget those whose latest answer is older than what
        keeps three quarters of them (an address's latest is its newest pair: an address goes
        whole or keeps its latest)."""
        n = len(self._ts)
        if n <= self.max_pairs:
            return
        ts = np.frombuffer(self._ts, dtype=np.int64)
        keep_n = max(1, self.max_pairs * 3 // 4)
        limit = int(np.partition(ts, n - keep_n)[n - keep_n])     # the keep_n-th latest time
        keep = ts >= limit
        gone = ~keep
        self.dropped += int(np.count_nonzero(gone))
        latest_gone = int(ts[gone].max()) if gone.any() else None
        if latest_gone is not None:
            self.dropped_until_ns = latest_gone if self.dropped_until_ns is None else \
                max(self.dropped_until_ns, latest_gone)
        new_of = np.cumsum(keep) - 1                            # old slot -> new slot
        kept = np.flatnonzero(keep)
        self._ts = array("q", ts[kept].tobytes())
        self._frame = array("q", np.frombuffer(self._frame, dtype=np.int64)[kept].tobytes())
        client, name = self._client, self._name
        self._client = [client[i] for i in kept.tolist()]
        self._name = [name[i] for i in kept.tolist()]
        new_of = new_of.tolist()
        keep = keep.tolist()
        addr: dict[str, int] = {}
        multi: dict[str, dict[str, int]] = {}
        for address, s in self._addr.items():
            if not keep[s]:
                continue                        # (its latest gone: all its pairs are older)
            addr[address] = new_of[s]
            by_client = self._multi.get(address)
            if by_client is not None:
                left = {c: new_of[p] for c, p in by_client.items() if keep[p]}
                if len(left) > 1:
                    multi[address] = left
        self._addr, self._multi = addr, multi
        for d in (self._pref_pair, self._pref_addr):
            if len(d) > self.max_pairs:         # (the oldest quarter of the masked latest too)
                t = np.fromiter((max(v[0] for v in by.values()) for by in d.values()), np.int64, len(d))
                keep_n = max(1, self.max_pairs * 3 // 4)
                cut = int(np.partition(t, len(t) - keep_n)[len(t) - keep_n])
                for k in [k for k, by in d.items() if max(v[0] for v in by.values()) < cut]:
                    del d[k]

    def known(self, addresses) -> set:
        """The addresses among ``addresses`` (an iterable of address texts) the store holds an
        answer for (what :meth:`select` can find anything for)."""
        recent = {r[3] for r in self._recent}
        has = self._addr
        return {a for a in addresses if a in has or a in recent}

    def select(self, addresses, pairs=None) -> DnsAnswers:
        """The answers that can name a flow to ``addresses`` (a set of address texts): the
        latest before the cutoff per address and per (client, address) of ``pairs`` (an iterable
        of (client, address); ``None``: every pair kept for these addresses), then every answer
        since the cutoff to one of these addresses. A new object, with ``frame_no``; an
        address's latest comes after the pairs' (so it wins a tie, as the latest it is)."""
        T, F, C, N = self._ts, self._frame, self._client, self._name
        addr_of, multi_of = self._addr.get, self._multi.get
        rows = []
        if pairs is None:
            for a in addresses:
                by_client = multi_of(a)
                if by_client is not None:
                    rows.extend([(T[p], F[p], c, a, N[p]) for c, p in by_client.items()])
                else:
                    s = addr_of(a)
                    if s is not None:
                        rows.append((T[s], F[s], C[s], a, N[s]))
        else:
            if not isinstance(pairs, (set, frozenset)):
                pairs = set(pairs)
            for client, address in pairs:
                by_client = multi_of(address)
                if by_client is not None:
                    p = by_client.get(client)
                else:
                    p = addr_of(address)
                    if p is not None and C[p] != client:
                        p = None
                if p is not None:
                    rows.append((T[p], F[p], client, address, N[p]))
        rows.sort(key=itemgetter(0, 1))
        if self._pref_addr:
            # the latest answers under a mask first, those that are not a latest answer kept
            # (which comes after them: it wins a tie)
            masked = []
            pref_addr, pref_pair = self._pref_addr.get, self._pref_pair
            for a in addresses:
                by = pref_addr(a)
                if by is not None:
                    s = addr_of(a)
                    latest = (T[s], F[s], C[s], N[s]) if s is not None else None
                    masked.extend([(v[0], v[1], v[2], a, v[3]) for v in by.values() if v != latest])
            got = pref_pair.get
            for c, a in (pairs if pairs is not None else [k for k in pref_pair if k[1] in addresses]):
                by = got((c, a))
                if by is not None:
                    masked.extend([(v[0], v[1], c, a, v[2]) for v in by.values()])
            if masked:
                masked.sort(key=itemgetter(0, 1))
                rows = masked + rows
        for a in addresses:
            s = addr_of(a)
            if s is not None:
                rows.append((T[s], F[s], C[s], a, N[s]))
        rows.extend([r for r in self._recent if r[3] in addresses])
        if not rows:
            return DnsAnswers()
        ts, frame, client, address, name = zip(*rows)
        return DnsAnswers(list(ts), list(client), list(address), list(name), list(frame))

    def warning(self, name: str) -> str | None:
        """The warning line (starting with the capture's ``name``) about the pairs forgotten
        past :attr:`max_pairs`, or None."""
        if not self.dropped:
            return None
        from datetime import datetime, timezone
        until = datetime.fromtimestamp(self.dropped_until_ns / 1e9, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        return (f"{name}: {self.dropped} DNS answers forgotten (their (client, address) pairs' latest, "
                f"the last at {until} UTC): the analysis keeps at most {self.max_pairs:,} pairs "
                "(kscc_traffic.answer_store.MAX_PAIRS, ~350 MB), the oldest go; a flow that started later to one of "
                "their addresses, with no newer answer for it, has no dns_name")

    def answers(self) -> DnsAnswers:
        """Everything kept (as :meth:`select` of every address)."""
        addresses = set(self._addr) | {r[3] for r in self._recent}
        return self.select(addresses)
