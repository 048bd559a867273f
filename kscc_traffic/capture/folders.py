"""A folder given as a capture: the capture files in it, and one line saying what else was not read.

``kscc-traffic analyze DIR``, ``report DIR`` and ``kscc_traffic.analyze("DIR")`` read the same
files of a folder (:func:`expand_folders`): its regular files whose first bytes are a pcap, pcapng
or compressed file's, in name order, not its subfolders (as ``mergecap``, ``tshark -r`` and
``zeek -r`` take files, and Wireshark's *File Set* looks in one folder: a subfolder such as
``old/`` or another machine's capture is read only when it is named). Nothing is left out without
a word: each folder with entries that are not read gets one warning line naming them and why (a
subfolder, an archive to extract, a capture format the built-in reader does not read, a pipe or
device, an empty file, other files, hidden files).

A file that cannot be opened (``Permission denied``) is not left out: nobody can tell whether it
is a capture, so it stays among the folder's files and fails as it would given by name (the
command line's ``Error:``, status 2, or ``--lenient``'s ``Warning: skipped …``; a ring buffer's
member that cannot be read is skipped from its set with a warning naming it and the reason).
"""
from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path

from ..errors import CaptureError
from ..text import name_text, path_text
from .compressed import CODEC_MAGICS, open_decompressing

__all__ = ["CAPTURE_MAGICS", "KNOWN_HEAD_BYTES", "expand_folders", "folder_captures", "known_format"]

#: first bytes of the files read as captures: pcap (µs, ns, both orders, "modified"), pcapng, compressed
CAPTURE_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d",
                  b"\x34\xcd\xb2\xa1", b"\xa1\xb2\xcd\x34", b"\x0a\x0d\x0d\x0a", *CODEC_MAGICS)

_EXTRACT = ("extract it first", "extract them first")
_TSHARK = ("give it by name with --engine tshark, or convert it: editcap -F pcapng IN OUT",
           "give them by name with --engine tshark, or convert them: editcap -F pcapng IN OUT")
#: (first bytes, offset) -> (kind, what one is, what several are, what to do with one, with several)
_KNOWN: tuple[tuple[bytes, int, str, str, str, tuple[str, str]], ...] = (
    (b"PK\x03\x04", 0, "zip", "a zip archive", "zip archives", _EXTRACT),
    (b"PK\x05\x06", 0, "zip", "a zip archive", "zip archives", _EXTRACT),
    (b"7z\xbc\xaf\x27\x1c", 0, "7z", "a 7z archive", "7z archives", _EXTRACT),
    (b"Rar!\x1a\x07", 0, "rar", "a rar archive", "rar archives", _EXTRACT),
    (b"MSCF\0\0\0\0", 0, "cab", "a cab archive", "cab archives", _EXTRACT),
    (b"ustar", 257, "tar", "a tar archive", "tar archives", _EXTRACT),
    (b"RTSS", 0, "netmon1", "a Microsoft Network Monitor 1.x file", "Microsoft Network Monitor 1.x files", _TSHARK),
    (b"GMBU", 0, "netmon2", "a Microsoft Network Monitor 2.x file", "Microsoft Network Monitor 2.x files", _TSHARK),
    (b"snoop\0\0\0", 0, "snoop", "a snoop file", "snoop files", _TSHARK),
    (b"TRSNIFF data", 0, "sniffer", "a Sniffer file", "Sniffer files", _TSHARK),
)
#: the first bytes of a file that :func:`known_format` needs (a tar header's ``ustar`` at 257)
KNOWN_HEAD_BYTES = 262


def known_format(head: bytes) -> tuple[str, str, str] | None:
    """What a file that is no capture is, from its first bytes ``head`` (at least
    :data:`KNOWN_HEAD_BYTES` of them to tell a tar archive; a compressed file's decompressed
    ones: a ``.tar.gz`` is a tar archive): ``(kind, what one is, what to do with it)``, e.g.
    ``("tar", "a tar archive", "extract it first")``, or None for none of the archives (zip, 7z,
    rar, cab, tar) and capture formats only ``--engine tshark`` reads (Network Monitor, snoop,
    Sniffer) known here. One test for a folder's entries and for a file given by name
    (:func:`kscc_traffic.capture.files.read_frames`'s error)."""
    for magic, at, kind, one, _, todo in _KNOWN:
        if head[at:at + len(magic)] == magic:
            return kind, one, todo[0]
    return None


#: the other reasons an entry is not read: kind -> (what one is, what several are, what to do)
_OTHER = {
    "folder": ("a folder", "folders", ("give it as its own argument", "give each as its own argument")),
    "special": ("not a regular file", "not regular files", ("a pipe, socket or device", "pipes, sockets or devices")),
    "link": ("a broken link", "broken links", ("its target is missing or it loops", "their targets are missing or they loop")),
    "nested": ("compressed twice", "files compressed twice", ("decompress it once first", "decompress them once first")),
    "empty": ("empty", "empty files", ("", "")),
    "other": ("not a capture", "files not captures", ("", "")),
    "hidden": ("hidden", "hidden files", ("", "")),
}
#: names shown per kind before "…"
SHOWN = 3


def _kind_of(entry: os.DirEntry) -> str | None:
    """Why the folder's ``entry`` is not read (a key of :data:`_KNOWN`'s kinds or :data:`_OTHER`),
    or None: it is read (a capture, or a file that cannot be opened, which fails when read)."""
    if entry.name.startswith("."):
        return "hidden"
    try:
        st = os.stat(entry.path)           # (following a link: a link to a capture is read)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ELOOP) and entry.is_symlink():
            return "link"                  # (a stale latest.pcap after a ring rotated: no capture)
        return None                        # (fails when read, as given by name)
    if stat.S_ISDIR(st.st_mode):
        return "folder"
    if not stat.S_ISREG(st.st_mode):
        return "special"                   # (never opened: a FIFO would wait for a writer)
    try:
        with open(entry.path, "rb") as f:
            head = f.read(KNOWN_HEAD_BYTES)
            if not head:
                return "empty"
            if any(head.startswith(m) for m in CODEC_MAGICS):
                # compressed: what is inside (a .tar.gz is an archive, a .log.gz no capture)
                f.seek(0)
                inner = open_decompressing(f, head)
                data = inner.read(KNOWN_HEAD_BYTES)
                if any(data.startswith(m) for m in CODEC_MAGICS):
                    return "nested"        # (compressed twice: the reader takes one layer)
                if inner.problem is not None or any(data.startswith(m) for m in CAPTURE_MAGICS):
                    return None            # (a capture, or damage: said when it is read)
                if not data:
                    return "empty"         # (the compression of an empty file, as given by name)
                head = data
    except OSError:
        return None
    if any(head.startswith(m) for m in CAPTURE_MAGICS):
        return None
    known = known_format(head)
    return known[0] if known else "other"


def _describe(kind: str, names: list[str]) -> str:
    """``agent7.zip (a zip archive: extract it first)`` / ``2 folders (a/, b/: give each as its
    own argument)``: ``names`` escaped already."""
    known = next((k for k in _KNOWN if k[2] == kind), None)
    one, several, todo = (known[3], known[4], known[5]) if known else _OTHER[kind]
    if len(names) == 1:
        return f"{names[0]} ({one}{': ' + todo[0] if todo[0] else ''})"
    shown = ", ".join(names[:SHOWN]) + (", …" if len(names) > SHOWN else "")
    return f"{len(names)} {several} ({shown}{': ' + todo[1] if todo[1] else ''})"


def folder_captures(folder: str | os.PathLike, given: frozenset[str] = frozenset()) -> tuple[list[Path], str | None]:
    """The files of ``folder`` read as captures, in name order, and the warning line naming
    every other entry (None when there is none).

    Read: regular files (or links to them) whose first bytes are a pcap or pcapng file's, also
    compressed (gzip, xz, bzip2, zstd, lz4: the first bytes decompressed; a compressed file that
    breaks before them is read, its damage said then), and files that cannot be opened (they
    fail when read, as given by name). A compressed archive (``.tar.gz``) or other compressed
    file (``.log.gz``) is not read. Not read,
    each named in the line with why, by kind in this order: subfolders, archives (zip, 7z, rar,
    cab, tar: extract them first), capture formats only ``--engine tshark`` reads (Network
    Monitor, snoop, Sniffer: given by name), pipes/sockets/devices, broken links (a target missing,
    or a loop), files compressed twice, empty files, other files, hidden
    files (their names starting with ``.``); at most :data:`SHOWN` names per kind, then ``…``.
    Names are escaped text (:func:`kscc_traffic.text.name_text`). A subfolder whose absolute
    path is in ``given`` (given as its own argument too: ``analyze dir dir/*/``) is not named.

    :raises kscc_traffic.errors.CaptureError: the folder cannot be listed (the OS error), or
        holds no file read as a capture (the message then ends with what was not read).
    """
    shown = path_text(folder)
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as e:
        raise CaptureError(f"{shown}: cannot list the folder: {e.strerror or e}") from None
    found: list[Path] = []
    skipped: dict[str, list[str]] = {}
    for entry in entries:
        kind = _kind_of(entry)
        if kind == "folder" and os.path.abspath(entry.path) in given:
            continue
        if kind is None:
            found.append(Path(folder) / entry.name)
        else:
            skipped.setdefault(kind, []).append(name_text(entry.name) + ("/" if kind == "folder" else ""))
    order = ["folder", *dict.fromkeys(k[2] for k in _KNOWN), "special", "link", "nested", "empty", "other", "hidden"]
    parts = [_describe(k, skipped[k]) for k in order if k in skipped]
    if not found:
        raise CaptureError(f"{shown}: is a directory with no capture file in it (pcap, pcapng, compressed)"
                           + (f"; not read: {'; '.join(parts)}" if parts else ""))
    return found, (f"{shown}: not read: {'; '.join(parts)}" if parts else None)


def expand_folders(paths: Iterable[str | os.PathLike],
                   skip: Callable[[str], None] | None = None) -> tuple[list[Path], list[str]]:
    """``paths`` with each folder replaced by its captures (:func:`folder_captures`), in the
    order given; other paths kept as they are (a missing file fails when read). A subfolder
    given as a path of its own is not named in its parent's line.

    A file given more than once (a folder twice, a folder and one of its files) is read once,
    at its first place, and named in a line of its own.

    :returns: (paths, one warning line per folder with entries not read, and the line of the
        files given more than once).
    :param skip: called with the message of a folder that cannot be listed or holds no capture
        (``--lenient``: a ``Warning: skipped …`` line), which is then left out; None: raise.
    :raises kscc_traffic.errors.CaptureError: a folder that cannot be listed or holds no capture,
        an empty path (without ``skip``).
    """
    paths = list(paths)
    given = frozenset(os.path.abspath(p) for p in paths if isinstance(p, (str, os.PathLike)))
    out: list[Path] = []
    notes: list[str] = []
    for p in paths:
        if isinstance(p, (str, os.PathLike)) and not os.fspath(p):
            # (Path('') is the current folder: an empty name is no capture; newcomer s55 #11)
            message = "no capture given: the path is empty"
            if skip is None:
                raise CaptureError(message)
            skip(message)
            continue
        # (False for a name the system refuses, too long…: said when it is read, one line)
        if not isinstance(p, (str, os.PathLike)) or not os.path.isdir(p):
            out.append(Path(p) if isinstance(p, (str, os.PathLike)) else p)
            continue
        try:
            found, note = folder_captures(p, given)
        except CaptureError as e:
            if skip is None:
                raise
            skip(str(e))
            continue
        out += found
        if note and note not in notes:     # (a folder given twice: its line once)
            notes.append(note)
    return _once(out, notes)


def _once(paths: list, notes: list[str]) -> tuple[list, list[str]]:
    """``paths`` with each file kept at its first place only (the same file, by device and
    inode, or by absolute path when it cannot be looked at: a folder given twice, a folder and
    one of its files, a link and its target), a line added to ``notes`` naming what was given
    more than once: its flows would be counted twice (break-it 20 F10)."""
    seen: set = set()
    out, twice = [], []
    for p in paths:
        if not isinstance(p, (str, os.PathLike)):
            out.append(p)
            continue
        try:
            st = os.stat(p)
            key = (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else os.path.abspath(p)
        except OSError:
            key = os.path.abspath(p)
        if key in seen:
            if p not in twice:
                twice.append(p)
            continue
        seen.add(key)
        out.append(p)
    if twice:
        names = ", ".join(path_text(p) for p in twice[:SHOWN]) + (", …" if len(twice) > SHOWN else "")
        notes.append(f"{len(twice)} capture{'s' if len(twice) != 1 else ''} given more than once "
                     f"(directly or in a folder), read once: {names}")
    return _same_content(out, notes)


#: the bytes read at each end of a file to tell captures of the same size apart
_END_BLOCK = 1 << 16
#: the block size of the byte-by-byte comparison of two files whose ends agree
_CMP_BLOCK = 1 << 20
#: the pcapng blocks walked looking for a packet block before a file is taken to hold packets
_BLOCKS_WALKED = 4096


def _same_content(paths: list, notes: list[str]) -> tuple[list, list[str]]:
    """``paths`` without the files whose bytes are those of a file before them (a copy under
    another name given beside it: ``analyze a.pcap copy_of_a.pcap``; its flows would be counted
    twice, newcomer 33), a line added to ``notes`` naming each copy and the file it copies.

    Cheap: only regular files (not standard input, a pipe, a device) of the same size holding a
    packet (:func:`_holds_packets`: a ring buffer's files holding only their headers are the same
    bytes, and reading them changes nothing) are compared; first a hash of their first and last
    64 KiB, then, when those agree, the two files block by block, stopping at the first
    difference (no file is read whole unless it is a copy). A file that cannot be read is kept
    (it fails, or is skipped, when read)."""
    by_size: dict[int, list[int]] = {}
    for i, p in enumerate(paths):
        if not isinstance(p, (str, os.PathLike)) or os.fspath(p) == "/dev/stdin":
            continue
        try:
            st = os.stat(p)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_size > 0:
            by_size.setdefault(st.st_size, []).append(i)
    copies: dict[int, int] = {}
    for size, idx in by_size.items():
        if len(idx) < 2:
            continue
        firsts: dict[bytes, list[int]] = {}
        for i in idx:
            ends = _ends_hash(paths[i], size)
            if ends is None or not _holds_packets(paths[i], size):
                continue
            kept = firsts.setdefault(ends, [])
            for k in kept:
                if _same_bytes(paths[k], paths[i]):
                    copies[i] = k
                    break
            else:
                kept.append(i)
    if not copies:
        return paths, notes
    out = [p for i, p in enumerate(paths) if i not in copies]
    shown = [f"{path_text(paths[i])} (the bytes of {path_text(paths[k])})" for i, k in sorted(copies.items())]
    notes.append(f"{len(copies)} capture{'s' if len(copies) != 1 else ''} with the same bytes as another one given "
                 f"(a copy under another name), read once: {', '.join(shown[:SHOWN])}"
                 + (", …" if len(shown) > SHOWN else ""))
    return out, notes


def _ends_hash(path, size: int) -> bytes | None:
    """A hash of the first and last :data:`_END_BLOCK` bytes of ``path`` (``size`` bytes long);
    None when it cannot be read."""
    import hashlib
    try:
        with open(path, "rb") as f:
            h = hashlib.blake2b(f.read(_END_BLOCK), digest_size=16)
            if size > _END_BLOCK:
                f.seek(max(_END_BLOCK, size - _END_BLOCK))
                h.update(f.read(_END_BLOCK))
            return h.digest()
    except OSError:
        return None


def _same_bytes(a, b) -> bool:
    """Whether files ``a`` and ``b`` (of the same size) hold the same bytes: compared block by
    block, stopping at the first difference; False when either cannot be read."""
    try:
        with open(a, "rb") as fa, open(b, "rb") as fb:
            while True:
                x = fa.read(_CMP_BLOCK)
                if x != fb.read(_CMP_BLOCK):
                    return False
                if not x:
                    return True
    except OSError:
        return False


def _holds_packets(path, size: int) -> bool:
    """Whether ``path`` (``size`` bytes) may hold a packet: a pcap file longer than its 24-byte
    header; a pcapng file with a packet block (enhanced, simple, obsolete) among its first
    :data:`_BLOCKS_WALKED` blocks (only the block headers are read); any other file (compressed…)
    True. False for a header-only file (a ring buffer's just-opened file) or one that cannot be read."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if head[:4] in CAPTURE_MAGICS[:6]:      # (pcap, nanosecond pcap, Kuznetzov's)
                return size > 24
            if head[:4] != b"\x0a\x0d\x0d\x0a" or len(head) < 12:
                return True
            order = "<" if head[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
            at = 0
            for _ in range(_BLOCKS_WALKED):
                f.seek(at)
                h = f.read(8)
                if len(h) < 8:
                    return False
                kind, length = int.from_bytes(h[:4], "little" if order == "<" else "big"), \
                    int.from_bytes(h[4:8], "little" if order == "<" else "big")
                if kind == 0x0A0D0D0A:       # (a section: its own byte order)
                    f.seek(at + 8)
                    bom = f.read(4)
                    order = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">"
                    length = int.from_bytes(h[4:8], "little" if order == "<" else "big")
                if kind in (2, 3, 6):
                    return True
                if length < 12:
                    return True             # (damaged: let the reader say so)
                at += length
            return True
    except OSError:
        return False
