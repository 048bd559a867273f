"""File sets: one capture split into several files by the tool that wrote it, read as one.

A troubleshooting capture left running is rarely one file. dumpcap (Wireshark, tshark) with
``-b filesize:…``/``-b duration:…``/``-b files:N`` (a ring buffer) and ``editcap -c``/``-i``
write ``<prefix>_<number>_<YYYYMMDDhhmmss>.<ext>`` (``<prefix>_<YYYYMMDDhhmmss>_<number>.<ext>``
with dumpcap's ``-b nametimenum:2``; ``<prefix>_<number>.<ext>`` from editcap when the packets
have no time); ``tcpdump -C`` writes ``x.pcap``,
``x.pcap1``, ``x.pcap2``… (``x.pcap0``, ``x.pcap00``… with ``-W``, which reuses the names
when it wraps). Analysed file by file, a connection whose SYN is the last packet of one file and
whose SYN-ACK is the first of the next looks unanswered (blocked); read one after the other, as
Wireshark's *File Set* and ``mergecap -a`` do, it is the connection it was.

:func:`group_file_sets` finds such sets among the captures of a run (``auto``), or makes all of
them one (``join``: files split by another tool, ``tcpdump -G``'s own names), or none
(``separate``); :func:`iter_capture` reads a :class:`FileSet` as :func:`~.files.iter_frames`
reads one file. Flows, uids and verdicts are then those of the files concatenated in that order
(what ``mergecap -a -w one.pcapng <files>`` gives), the ``capture`` column names the set
``<first file> .. <last file>``, and each file's reading warnings keep its own name.
"""
from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import CaptureError, CorruptCapture
from ..text import name_text, path_text
from .files import STDIN, STDIN_TEXT, is_stdin, iter_frames
from .frames import Frames, concat_frames
from .stats import ReadStats

__all__ = ["FileSet", "MODES", "PIECE_GAP_NS", "group_file_sets", "iter_capture", "unjoined_pieces"]

#: how the captures of a run are grouped (see :func:`group_file_sets`)
MODES = ("auto", "join", "separate")

# dumpcap / tshark -b, editcap -c/-i: <prefix>_<5+ digit number>_<YYYYMMDDhhmmss><.ext…>;
# dumpcap -b nametimenum:2 (Wireshark 4.2+): <prefix>_<YYYYMMDDhhmmss>_<number><.ext…>;
# editcap for packets without a time: <prefix>_<number><.ext…>
_EXT = r"(?P<ext>(?:\.[A-Za-z0-9]+)*)$"
_DUMPCAP = (re.compile(r"^(?P<prefix>.+)_(?P<num>\d{5,})_(?P<time>\d{14,})" + _EXT, re.DOTALL),
            re.compile(r"^(?P<prefix>.+)_(?P<time>\d{14})_(?P<num>\d{5,})" + _EXT, re.DOTALL),
            re.compile(r"^(?P<prefix>.+)_(?P<num>\d{5,})" + _EXT, re.DOTALL))
# tcpdump -C: <name.ext><number> (no number for the first file unless -W was given)
_TCPDUMP = re.compile(r"^(?P<base>.*\.[A-Za-z][A-Za-z0-9]*?)(?P<num>\d*)$", re.DOTALL)


@dataclass(frozen=True)
class FileSet:
    """Files read one after the other, in this order, as one capture.

    :param paths: the files (at least one), in the order their packets were written.
    :param kind: what made them: ``dumpcap`` (ring buffer / file set), ``tcpdump`` (``-C``) or
        ``join`` (``--file-set join``).
    """

    paths: tuple[Path, ...]
    kind: str = "join"

    def __str__(self) -> str:
        """``<first path> .. <last file name>`` (as written in lines naming the set)."""
        first, last = self.paths[0], self.paths[-1]
        return f"{os.fspath(first)} .. {last.name}" if len(self.paths) > 1 else os.fspath(first)

    def size(self) -> int:
        """Bytes of all its files (0 for a file that cannot be read)."""
        total = 0
        for p in self.paths:
            try:
                total += p.stat().st_size
            except OSError:
                pass
        return total


def _first_ts(path: Path) -> int | None:
    """Epoch ns of the file's first record, None when it has none or cannot be read."""
    try:
        for fr in iter_frames(path, 1 << 16):
            return int(fr.ts_ns[0]) if len(fr) else None
    except (CaptureError, OSError):
        return None
    return None


#: the suffix a compressed copy of a member adds (gzip, xz, bzip2, zstd, lz4)
_COMPRESSED = re.compile(r"\.(gz|xz|bz2|zst|lz4)$", re.IGNORECASE)


def _member(path: Path) -> tuple | None:
    """(kind, key, number, time in the name as a number) when the file's name is one of a file set's, else None."""
    name = path.name
    for form, pattern in enumerate(_DUMPCAP):
        m = pattern.match(name)
        if m:
            # (editcap mixes forms 0 and 2; members compressed later keep their set: .gz…)
            key = (str(path.parent), m["prefix"], _COMPRESSED.sub("", m["ext"]), form == 1)
            return "dumpcap", key, int(m["num"]), int(m.groupdict().get("time") or 0)
    m = _TCPDUMP.match(name)
    if m:
        return "tcpdump", (str(path.parent), m["base"]), int(m["num"]) if m["num"] else -1, 0
    return None


def _dumpcap_runs(members: list[tuple[Path, int, int]]) -> list[list[tuple[Path, int, int]]]:
    """A prefix's files as dumpcap runs, in number order. When a number comes twice (dumpcap
    numbers each run from 1), in order of the time in their names (then number; more than 14
    digits for a year past 9999, as editcap names a file after a damaged timestamp), a new run
    starting where the number does not go up."""
    if len({m[1] for m in members}) == len(members):
        return [sorted(members, key=lambda m: m[1])]
    members = sorted(members, key=lambda m: (m[2], m[1]))
    runs: list[list] = []
    for m in members:
        if runs and m[1] > runs[-1][-1][1]:
            runs[-1].append(m)
        else:
            runs.append([m])
    return runs


def _by_first_packet(paths: Sequence[Path]) -> list[Path]:
    """``paths`` in order of their first packet's time (files without one last, in given order)."""
    stamps = [_first_ts(p) for p in paths]
    order = sorted(range(len(paths)), key=lambda i: (stamps[i] is None, stamps[i] or 0, i))
    return [paths[i] for i in order]


def group_file_sets(paths: Sequence[Path], mode: str = "auto") -> tuple[list, list[str]]:
    """The captures of one run as units of analysis: each a :class:`pathlib.Path` (a file on its
    own) or a :class:`FileSet` (files read one after the other as one capture).

    - ``auto``: files named as one dumpcap ring buffer / file set (same folder, prefix and
      extension; one run: numbers going up with the time in the names) or as one ``tcpdump -C``
      set (``x.pcap``, ``x.pcap1``…; at least two files) are a set, in number order (dumpcap) or
      in order of their first packet (tcpdump, whose ``-W`` reuses names). A set whose first
      packets do not come in that order is left as separate files, with a warning. A set
      missing numbers in the middle (a file deleted) is joined, with a warning.
    - ``join``: all of ``paths`` are one set, in order of their first packet.
    - ``separate``: every file on its own.

    A path given again (a folder and a file of it) starts another layer, grouped on its own: a
    set given twice is two sets. Units come in the order their first file was given. Reading is limited to each grouped file's first record.

    :returns: (units, warning lines).
    :raises ValueError: an unknown ``mode``.
    """
    if mode not in MODES:
        raise ValueError(f"unknown file-set mode {mode!r} (choose {', '.join(MODES)})")
    paths = [Path(p) for p in paths]
    if mode == "separate" or len(paths) < 2:
        return list(paths), []
    if mode == "join":
        ordered = _by_first_packet(paths)
        return [FileSet(tuple(ordered), "join")], []
    # a path given again (a folder and a file of it, a folder twice) starts another layer: each
    # layer is grouped on its own, so a set given twice is two sets, and a file given again is
    # not pulled out of its set
    occurrence, count = [], {}
    for p in paths:
        k = os.path.abspath(p)
        occurrence.append(count.get(k, 0))
        count[k] = occurrence[-1] + 1
    groups: dict[tuple, list] = {}
    for i, p in enumerate(paths):
        m = _member(p)
        if m is not None:
            groups.setdefault((m[0], m[1], occurrence[i]), []).append((i, m[2], m[3]))
    set_at: dict[int, FileSet | None] = {}    # position of a grouped path -> its set (None: a later file)
    first_given: dict[int, int] = {}          # id of a set -> position of the earliest of its files
    warnings: list[str] = []
    dropped: set[int] = set()                 # copies of a member (not read)
    for (kind, _key, _layer), members in groups.items():
        if kind == "dumpcap":
            # a member kept twice, as it is and compressed (gzip -k): one of them is read
            seen_at: dict[tuple, int] = {}
            for m in sorted(members, key=lambda m: (bool(_COMPRESSED.search(paths[m[0]].name)), paths[m[0]].name)):
                if (m[1], m[2]) in seen_at:
                    dropped.add(m[0])
                    warnings.append(f"{path_text(paths[m[0]])}: the same member of a file set as "
                                    f"{path_text(paths[seen_at[(m[1], m[2])]])} (a compressed copy?): not read again")
                else:
                    seen_at[(m[1], m[2])] = m[0]
            members = [m for m in members if m[0] not in dropped]
            runs = _dumpcap_runs(members)
        else:
            runs = [members] if len(members) > 1 and any(m[1] >= 0 for m in members) else []
        for run in runs:
            if len(run) < 2:
                continue
            if kind == "dumpcap":
                order = [m[0] for m in run]
            else:
                by_path = {paths[m[0]]: m[0] for m in run}
                order = [by_path[q] for q in _by_first_packet([paths[m[0]] for m in run])]
            files = [paths[i] for i in order]
            fs = FileSet(tuple(files), kind)
            if kind == "dumpcap":
                stamps = [_first_ts(q) for q in files]
                known = [t for t in stamps if t is not None]
                if any(b < a for a, b in zip(known, known[1:])):
                    warnings.append(f"{path_text(fs)}: named as one file set, but their first packets are "
                                    "not in the order of the names: each file is analysed on its own "
                                    "(--file-set join reads them as one capture, in time order)")
                    continue
                nums = [m[1] for m in run]
                gaps = [n for a, b in zip(nums, nums[1:]) for n in range(a + 1, b)]
                if gaps:
                    shown = ", ".join(str(n) for n in gaps[:5]) + (", …" if len(gaps) > 5 else "")
                    warnings.append(f"{path_text(fs)}: file number{'s' if len(gaps) > 1 else ''} {shown} of "
                                    "the set missing: connections across the gap may show as blocked or "
                                    "split")
            set_at[order[0]] = fs
            first_given[id(fs)] = min(order)
            for i in order[1:]:
                set_at[i] = None
    # each unit where the earliest of its files was given
    units: list[tuple[int, object]] = []
    for i, p in enumerate(paths):
        if i in dropped:
            continue
        if i not in set_at:
            units.append((i, p))
        elif set_at[i] is not None:
            units.append((first_given[id(set_at[i])], set_at[i]))
    units.sort(key=lambda u: u[0])
    return [u for _, u in units], warnings


#: the longest gap (ns) between one capture's last frame and another's first for the two to look
#: like pieces of one capture (a rotation by time, ``editcap -c``: the next packet; a person
#: restarting tcpdump takes longer)
PIECE_GAP_NS = 1_000_000_000


def unjoined_pieces(spans: Sequence[tuple[str, int | None, int | None]]) -> list[str]:
    """Warning lines for captures analysed one by one that look like pieces of one capture: one
    starts (its earliest frame) at most :data:`PIECE_GAP_NS` after another ends (its latest
    frame), and not before. Names no file-set pattern knows (``tcpdump -G`` with ``%H%M%S``,
    files renamed after ``editcap -c``) are read separately, so connections across the cut show
    as partial, or as blocked (a SYN whose SYN-ACK is in the next file) (newcomer 35 F2):
    the line points to ``--file-set join``.

    :param spans: (name as shown, first frame epoch ns, last frame epoch ns) per capture; None
        times (no frame) are left out.
    :returns: one line per chain of such pieces, in time order; [] when there is none.
    """
    timed = sorted((first, last, name) for name, first, last in spans
                   if first is not None and last is not None and last >= first)
    # each capture's piece before it: the one that ended latest, at most PIECE_GAP_NS before it began
    done, open_ = [], []                    # chains; those whose last capture may still be followed
    for c in timed:
        # (timed by first frame: a chain that ended more than the gap before c never continues)
        keep = []
        for ch in open_:
            (keep if ch[-1][1] >= c[0] - PIECE_GAP_NS else done).append(ch)
        open_ = keep
        before = [ch for ch in open_ if ch[-1][1] <= c[0]]
        if before:
            chain = max(before, key=lambda ch: ch[-1][1])
            chain.append(c)
        else:
            open_.append([c])
    out = []
    for chain in sorted(done + open_, key=lambda ch: ch[0][0]):
        if len(chain) > 1:
            names = (f"{chain[0][2]} and {chain[1][2]}" if len(chain) == 2 else
                     f"the {len(chain)} captures {chain[0][2]} .. {chain[-1][2]}")
            gap = max(chain[i + 1][0] - chain[i][1] for i in range(len(chain) - 1)) / 1e9
            out.append(f"{names} look like pieces of one capture (each starts at most {gap:.3f} s "
                       "after the one before ends), but are analysed one by one: connections across "
                       "a cut show as partial or blocked; give --file-set join to read them as one capture")
    return out


def iter_capture(source, chunk_bytes: int, *, name: str | None = None,
                 room: Callable[[], int] | None = None, records: int | None = None) -> Iterator[Frames]:
    """:func:`~.files.iter_frames` of a file, or of a :class:`FileSet`'s files one after the other.

    For a set, chunks come file after file; the small ones (less than half of ``chunk_bytes``: a
    file's last chunk, a ring buffer of small files) are joined with the next file's first ones up
    to ``chunk_bytes`` (:func:`~.frames.concat_frames`), since each chunk costs a batch of the
    analysis (220 files of 50 packets were 220 batches, ten times the CPU time of the one file
    they were cut from); ``frames.last`` is
    set only on the last file's last chunk; every chunk's ``stats`` is one :class:`ReadStats`
    holding the sum of the files read so far (their warnings keep each file's own name), complete
    once the iterator is exhausted. A file of the set that cannot be read at all (not a capture,
    header cut, ``cannot read: Permission denied``) is skipped with a warning line naming it and
    why (one between two others: connections across it may show as blocked or split); when none
    can be read, the first one's error is
    raised. A file whose reading fails after some of its chunks were handed out (``OSError``: an
    I/O error) keeps those chunks' counters in the stats, with a warning line saying after how
    many records and bytes it stopped; the set's next file is read on.

    ``source`` :data:`~.files.STDIN` reads standard input as a stream (:func:`_iter_stdin`).
    ``room``: as :func:`~.files.iter_frames`' (a single file only; a set's chunks get none).
    ``records``: as :func:`~.files.iter_frames`' (a set's chunks joined up to that many too).

    :raises kscc_traffic.errors.CaptureError: as :func:`~.files.iter_frames` (first ``next()``).
    """
    if is_stdin(source):
        yield from _iter_stdin(chunk_bytes, name, records)
        return
    if not isinstance(source, FileSet):
        yield from iter_frames(source, chunk_bytes, name=name, room=room, records=records)
        return
    total, done = ReadStats(), ReadStats()
    first_error: CaptureError | None = None
    read_any = False
    n = len(source.paths)
    held: list[Frames] = []     # small chunks waiting to be joined with the next ones
    held_bytes = held_records = 0
    most = records or sys.maxsize
    for k, p in enumerate(source.paths):
        mine = None
        try:
            for fr in iter_frames(p, chunk_bytes, name=name_text(p.name), records=records):
                mine = fr.stats
                _sum_into(total, done, mine)
                fr.stats = total
                fr.last = fr.last and k == n - 1
                if len(fr) or (k == n - 1 and not read_any):
                    read_any = True
                    size = len(fr.buf)
                    if held and (held_bytes + size > chunk_bytes or held_records + len(fr) > most):
                        yield concat_frames(held)
                        held, held_bytes, held_records = [], 0, 0
                    held.append(fr)
                    held_bytes += size
                    held_records += len(fr)
                    if fr.last or held_bytes * 2 >= chunk_bytes or held_records * 2 >= most:
                        yield concat_frames(held)
                        held, held_bytes, held_records = [], 0, 0
        except (CaptureError, OSError) as e:
            why = e if isinstance(e, CaptureError) else e.strerror or e
            if mine is not None:
                # a read error after some chunks: their frames were handed out and analysed, so
                # the file's counters so far stay in the set's stats
                done.merge(mine)
                done.warn(f"{name_text(p.name)}: reading stopped after {mine.records} record"
                          f"{'s' if mine.records != 1 else ''} ({mine.bytes_read} bytes; part of "
                          f"{name or path_text(source)}): {why}; the rest of the file is not analysed")
                continue
            if not isinstance(e, CaptureError):
                why = f"cannot read: {why}"      # (Permission denied: the file is there)
            if first_error is None:
                first_error = e if isinstance(e, CaptureError) else CaptureError(f"{path_text(p)}: {why}")
            gap = "; connections across it may show as blocked or split" if 0 < k < n - 1 else ""
            done.warn(f"{name_text(p.name)}: skipped (part of {name or path_text(source)}): {why}{gap}")
            continue
        if mine is not None:
            done.merge(mine)
    if held:
        yield concat_frames(held)   # (the set's last file could not be read to its end)
        held = []
    if not read_any:
        if first_error is not None:
            raise first_error
        return
    _sum_into(total, done, None)   # (the stats of every file, complete now)


def _iter_stdin(chunk_bytes: int, name: str | None, records: int | None = None) -> Iterator[Frames]:
    """:func:`~.files.iter_frames` of standard input (:data:`~.files.STDIN`), its first chunk
    judged as a file is before it is read (``analyze.check_capture``, which reads a file's first
    record and then the file again: a stream is read once): damage before its first record is
    an error. Its errors name it ``standard input`` (an empty one: nothing came in)."""
    name = name or "stdin"
    chunks = iter_frames(STDIN, chunk_bytes, name=name, records=records)
    try:
        first = next(chunks, None)
    except CaptureError as e:
        text = str(e)
        if not text.startswith(name + ": "):
            raise                                   # (it names standard input already: closed)
        text = text[len(name) + 2:]
        if text.startswith("empty file"):
            text = ("empty: nothing came in (did the capturing program fail? its own error is above; "
                    "tcpdump writes to a pipe with -w -)")
        raise type(e)(f"{STDIN_TEXT}: {text}") from None
    if first is None:
        return
    st = first.stats
    if st.records == 0 and st.damage_offset is not None:
        # (as check_capture says of a file: nothing of it can be analysed)
        why = st.warnings[0] if st.warnings else f"damage at offset {st.damage_offset}"
        if not why.startswith(STDIN_TEXT):        # (a cut names standard input, damage the capture)
            why = why.split(": ", 1)[-1]
        stream = st.stream_problem()
        if stream and st.warnings and stream != st.warnings[0]:
            why += f"; {stream.split(': ', 1)[-1]}"
        raise CorruptCapture(f"{STDIN_TEXT}: no packet could be read: {why}")
    yield first
    yield from chunks


def _sum_into(total: ReadStats, done: ReadStats, current: ReadStats | None) -> None:
    """``total`` (in place) = ``done`` + ``current``."""
    fresh = ReadStats()
    for f in fresh.__dataclass_fields__:
        setattr(total, f, getattr(fresh, f))
    total.merge(done)
    if current is not None:
        total.merge(current)
