"""IP fragment reassembly for the decoder's slow path (IPv4 and IPv6).

A bounded table of datagrams in progress, keyed by what the caller gives: ``(4, src, dst, proto,
id, vlan)`` for IPv4 (RFC 791), ``(6, src, dst, id, vlan)`` for IPv6 (RFC 8200 §4.5: the Next
Header of the fragments after the first does not count, as in Linux's key).
Fragments may arrive in any order. Each fragment's *declared* byte range (from its IP header)
decides completeness; its *captured* bytes (snaplen may cut a fragment) fill the reassembled
buffer, so a datagram whose fragments were cut is complete but only its contiguous captured
prefix is returned as payload.

Overlapping fragments: by default (IPv4, where Windows and Linux differ) the first copy of each
byte wins; the datagram is flagged and counted once in :attr:`Reassembler.overlapping`. With
``drop_overlaps`` (IPv6: RFC 5722 §4, RFC 8200 §4.5) the whole datagram is given up on instead,
the fragment that overlaps included: its fragments are flushed as standalone rows (counted in
``incomplete``) and the datagram once in :attr:`Reassembler.overlap_dropped`; a fragment of it
that comes later starts a new datagram (as Linux does once it has dropped the queue). Two last
fragments (More Fragments clear) that end the datagram at different lengths count as an overlap;
with ``drop_overlaps`` so does a fragment reaching past the end the last fragment sets (either
arriving first), as Linux drops such a datagram as corrupt.
An exact repeat of a fragment already held (same range, same bytes: e.g. a duplicated frame) is
dropped and counted in ``duplicates`` either way (RFC 5722 lets a node drop exact duplicates), and
so is one of a datagram completed at most :data:`RECENT_NS` before (a span port or a second
capture interface writing its copy of the completing fragment after it: without this the copy
started a datagram of its own that never completed, a phantom flow of "lost" fragments; s54).

Fragments that never complete a datagram (end of capture, table full, timeout, too many
fragments) are handed back as their *standalone rows* (computed by the caller when the fragment
arrived) through :attr:`Reassembler.flushed`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: datagrams in progress at most; the oldest is flushed when a new one would exceed this
MAX_DATAGRAMS = 4096
#: fragments per datagram at most (a 64 KiB datagram in 8-byte fragments would be 8192)
MAX_FRAGMENTS = 1024
#: a datagram not completed within this many nanoseconds of its first fragment is flushed
TIMEOUT_NS = 30_000_000_000
#: largest reassembled datagram payload, bytes (IPv4 offset 65528 + a fragment of <= 65515)
MAX_TOTAL = 131_072
#: captured fragment bytes held at most; the oldest datagrams are flushed beyond this
MAX_HELD_BYTES = 64 * 1024 * 1024
#: a fragment equal to one of a datagram completed at most this many nanoseconds before (same key,
#: range and bytes) is a copy of it (flows.DUP_LATE_NS: a copy written late)
RECENT_NS = 2 * 10**9


@dataclass
class _Frag:
    offset: int          # byte offset of the fragment data in the datagram payload
    length: int          # declared data length (from the IP header), bytes
    data: bytes          # captured data bytes (<= length)
    row: Any             # standalone row of this fragment, emitted if never reassembled


@dataclass
class _Datagram:
    first_ts: int
    frags: list[_Frag] = field(default_factory=list)
    total: int | None = None     # payload length, known once the last fragment (MF=0) arrived
    declared: int = 0            # sum of the fragments' declared lengths, bytes
    held: int = 0                # sum of the fragments' captured lengths, bytes
    head: Any = None             # caller's header info, from the fragment at offset 0
    overlap: bool = False


@dataclass
class Completed:
    """A datagram whose fragments cover ``[0, total)``.

    ``data`` is the contiguous captured prefix of the payload (``len(data) <= total``);
    ``head`` is what the caller passed with the offset-0 fragment.
    """

    head: Any
    total: int
    data: bytes


class Reassembler:
    """Bounded reassembly table. Feed fragments in capture order with :meth:`add`."""

    def __init__(self, max_datagrams: int = MAX_DATAGRAMS, timeout_ns: int = TIMEOUT_NS,
                 max_fragments: int = MAX_FRAGMENTS) -> None:
        self.max_datagrams = max_datagrams
        self.timeout_ns = timeout_ns
        self.max_fragments = max_fragments
        self.table: dict[tuple, _Datagram] = {}
        # datagrams completed lately: key -> (time completed, {(offset, length, hash of bytes)}),
        # in completion order, at most max_datagrams
        self.recent: dict[tuple, tuple[int, set[tuple[int, int, int]]]] = {}
        self.held = 0                     # captured bytes held in the table
        self.flushed: list[Any] = []      # standalone rows of fragments given up on
        self.overlapping = 0              # datagrams with overlapping fragments (first copy kept)
        self.overlap_dropped = 0          # datagrams given up on for overlapping fragments
        self.duplicates = 0               # exact repeats of a held fragment, dropped
        self.reassembled = 0              # datagrams completed
        self.incomplete = 0               # fragments flushed without reassembly

    def _flush(self, key: tuple) -> None:
        dg = self.table.pop(key)
        self.held -= dg.held
        self.flushed.extend(f.row for f in dg.frags)
        self.incomplete += len(dg.frags)

    def add(self, key: tuple, ts: int, offset: int, more: bool, length: int, data: bytes,
            row: Any, head: Any, drop_overlaps: bool = False) -> Completed | None:
        """Add one fragment; return the datagram if this fragment completed it.

        ``offset``/``length``: the fragment's place in the payload (bytes, from its header);
        ``data``: its captured bytes; ``row``: its standalone row; ``head``: header info kept
        from the offset-0 fragment (``None`` for the others); ``drop_overlaps``: a fragment
        that overlaps another of the datagram (not an exact repeat) gives the whole datagram
        up (RFC 5722), else the first copy of each byte is kept.
        """
        dg = self.table.get(key)
        if dg is None and key in self.recent:
            done_ts, parts = self.recent[key]
            if abs(ts - done_ts) <= RECENT_NS and (offset, length, hash(data)) in parts:
                self.duplicates += 1
                return None
        if dg is not None and ts - dg.first_ts > self.timeout_ns:
            self._flush(key)
            dg = None
        if dg is None:
            # expire stale datagrams (oldest first), then make room
            while self.table:
                k0 = next(iter(self.table))
                if ts - self.table[k0].first_ts > self.timeout_ns or \
                        len(self.table) >= self.max_datagrams or self.held > MAX_HELD_BYTES:
                    self._flush(k0)
                else:
                    break
            dg = self.table[key] = _Datagram(first_ts=ts)
        end = offset + length
        overlap = False
        for f in dg.frags:
            if offset < f.offset + f.length and f.offset < end:
                if f.offset == offset and f.length == length and f.data == data and \
                        (more or dg.total == end):
                    self.duplicates += 1
                    return None
                overlap = True
                break
        if not more:
            if dg.total is None:
                dg.total = end
            elif dg.total != end:
                overlap = True
        if drop_overlaps and not overlap:
            # bytes past the end the last fragment sets (Linux: corruption, the datagram dropped)
            if more:
                overlap = dg.total is not None and end > dg.total
            else:
                overlap = any(f.offset + f.length > end for f in dg.frags)
        if overlap and drop_overlaps:
            dg.frags.append(_Frag(offset, length, data, row))
            dg.held += len(data)
            self.held += len(data)
            self._flush(key)
            self.overlap_dropped += 1
            return None
        if overlap and not dg.overlap:
            dg.overlap = True
            self.overlapping += 1
        if offset == 0 and dg.head is None:
            dg.head = head
        dg.frags.append(_Frag(offset, length, data, row))
        dg.declared += length
        dg.held += len(data)
        self.held += len(data)
        if len(dg.frags) > self.max_fragments or end > MAX_TOTAL:
            self._flush(key)
            return None
        if dg.total is None or dg.head is None or dg.declared < dg.total:
            return None
        # declared ranges must cover [0, total)
        covered = 0
        for f in sorted(dg.frags, key=lambda f: f.offset):
            if f.offset > covered:
                return None
            covered = max(covered, f.offset + f.length)
            if covered >= dg.total:
                break
        if covered < dg.total:
            return None
        del self.table[key]
        self.held -= dg.held
        self.reassembled += 1
        self._remember(key, ts, dg)
        return Completed(dg.head, dg.total, _assemble(dg))

    def _remember(self, key: tuple, ts: int, dg: _Datagram) -> None:
        """Keep what tells a later copy of one of ``dg``'s fragments (completed at ``ts``)."""
        self.recent.pop(key, None)
        while self.recent:
            k0 = next(iter(self.recent))
            if len(self.recent) >= self.max_datagrams or ts - self.recent[k0][0] > RECENT_NS:
                del self.recent[k0]
            else:
                break
        self.recent[key] = (ts, {(f.offset, f.length, hash(f.data)) for f in dg.frags})

    def finish(self) -> None:
        """Give up on every datagram still open (end of capture)."""
        for key in list(self.table):
            self._flush(key)


def _assemble(dg: _Datagram) -> bytes:
    """Captured payload prefix of a complete datagram; the first copy of each byte wins."""
    total = dg.total or 0
    out = bytearray(total)
    # write in reverse arrival order so that earlier fragments overwrite later ones
    for f in reversed(dg.frags):
        if f.offset < total:
            out[f.offset:min(total, f.offset + len(f.data))] = f.data[:total - f.offset]
    # contiguous captured prefix
    have = 0
    for lo, hi in sorted((f.offset, f.offset + len(f.data)) for f in dg.frags):
        if lo > have:
            break
        have = max(have, hi)
    return bytes(out[:min(have, total)])
