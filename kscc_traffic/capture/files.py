"""Capture container formats (pcap, pcapng) -> :class:`~kscc_traffic.capture.frames.Frames`.

Two entry points:

- :func:`read_frames` reads a whole capture into one ``Frames`` (``buf`` = the whole file).
- :func:`iter_frames` yields the same records in chunks of about ``chunk_bytes`` bytes, for
  bounded memory on multi-GB files (each chunk's ``buf`` holds only that chunk's bytes).

Both run the same record walk, so they return identical records. Formats read:

- pcap: magic ``a1b2c3d4`` (µs) and ``a1b23c4d`` (ns) in both byte orders, and the "modified"
  (Kuznetzov) pcap ``a1b2cd34`` (µs, 24-byte record headers). Version 2.x, and DG/UX's 543.0
  (another major version above 2, a damaged header's, read as 2.4 with a warning, as Wireshark does);
  a record header's two lengths read as libpcap reads them: the original length first in 2.0-2.2
  and 543.0, the smaller one as the captured length in 2.3 (those files walked in Python).
  The link type is the low 16 bits of the header's link-type field (the upper bits carry FCS
  information). ``thiszone`` is ignored (as libpcap does); timestamps are UTC as written.
- pcapng (draft-ietf-opsawg-pcapng): Section Header Blocks (§4.1; any number of sections, each
  with its own byte order and interfaces), Interface Description Blocks (§4.2; ``if_tsresol``
  10^-n and 2^-n, ``if_tsoffset``), Enhanced Packet Blocks (§4.3), Simple Packet Blocks (§4.4:
  no timestamp, so each is timed 1 ns after the packet before it, from 0 when none had a time
  before, keeping the file order; counted in one warning line, :func:`no_timestamp_note`),
  obsolete Packet Blocks (Appendix A). Other blocks (NRB, ISB, DSB, custom, unknown) are
  skipped.
- either of them compressed with gzip, xz, bzip2, zstd or lz4 (recognised by its magic),
  decompressed on the fly (:mod:`kscc_traffic.capture.compressed`).

Tolerance policy. A file that is not a capture raises :class:`UnsupportedFormat`; a file that
ends inside its header raises :class:`TruncatedCapture`; a damaged file header raises
:class:`CorruptCapture`. Damage *after* the header never raises: the reader keeps every record
before the damage and reads on where whole records start again (:mod:`.resync`: a run of
plausible records or blocks, as ``pcapfix`` finds them), counting the bytes skipped in
``stats.skipped_bytes`` / ``stats.skipped_records`` with one warning line; when none starts
again it stops there and sets ``stats.damage_offset`` too. One exception: a file damaged by a
text-mode transfer (FTP ASCII mode wrote each LF byte as CR LF, shifting every record after the
first LF; or a line break added before the file header) raises :class:`CorruptCapture` saying
so, when a pcap's first damage lies in its first :data:`ASCII_PROBE_BYTES` and its records read
right with each CR LF read as LF (:func:`_ascii_mode_pcap`; not repaired: the file must be
fetched again). pcap record headers that are all
zeros (a zero-filled region) are not records: they are counted in one warning line. A pcapng packet block that is well framed
(length and trailing length agree) but unusable (unknown interface, captured length beyond the
block) is skipped and counted in ``stats.malformed``; reading goes on after it. Oddities that do
not stop reading (record longer than the snaplen, ``ts_usec`` ≥ 10^6, original length shorter
than the captured length, …) are kept as read and summed up in one warning line per kind at the
end of the file.

The walk never allocates from a length field: every length is checked against a sanity bound
and against the bytes present before it is used, and the position only moves forward.
"""
from __future__ import annotations

import io
import os
import struct
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

from ..errors import CaptureAccessError, CaptureError, CorruptCapture, TruncatedCapture, UnsupportedFormat
from ..text import name_text
from .compressed import CODEC_MAGICS, DecompressingReader, open_decompressing
from .folders import KNOWN_HEAD_BYTES, known_format
from .resync import CHAIN as RESYNC_CHAIN
from .resync import MORE, find_pcap_record, find_pcapng_block, headers_proven
from .frames import LT_DAMAGED, LT_FCS, LT_FCS2, LT_MASK, Frames
from .stats import WIRELEN_DAMAGED, ReadStats, wirelen_damaged_note

try:   # the record-walk loops compiled (optional: the Python loops below give the same result)
    from . import _walk
except ImportError:  # pragma: no cover - depends on the build
    _walk = None

__all__ = ["read_frames", "iter_frames", "MAX_RECORD_BYTES", "MAX_SNAPLEN_BYTES", "MAX_BLOCK_BYTES",
           "STDIN", "is_stdin"]

#: A record may always be this long (bytes), whatever the header's snaplen (libpcap's maximum).
MAX_RECORD_BYTES = 262144
#: A file snaplen above MAX_RECORD_BYTES raises the record bound up to this (bytes).
MAX_SNAPLEN_BYTES = 16 << 20
#: pcapng: longest block accepted (bytes); a longer one is treated as damage.
MAX_BLOCK_BYTES = 64 << 20

_INT32_MAX = 2**31 - 1
#: the timestamps kept (epoch ns): 2**62 - 1 either way, years 1823 to 2116, so that the
#: difference of any two (a flow's duration, a gap) and a few seconds added fit int64; a time
#: beyond is brought inside (:func:`fold_ts`) and counted (break-it 22 F1: an if_tsoffset near
#: -2**63 ns crashed the analysis, and mixed with ordinary times gave durations of -7.45e9 s)
TS_MAX_NS = 2**62 - 1
TS_MIN_NS = -TS_MAX_NS
#: how a warning names that range
TS_RANGE_TEXT = "beyond the years 1823-2116 that times are kept in"
#: the span (ns, 2**59: about 18 years) at each end of the kept range a time beyond it is folded
#: into (:func:`fold_ts`)
TS_FOLD_NS = 2**59
#: how a warning says what was done to such times (:func:`fold_ts`)
TS_FOLDED_TEXT = "moved inside it, keeping their order and the time between them"


def fold_ts(v: int) -> int:
    """A time (epoch ns, a Python int of any size) inside the kept range: itself when it is in
    [:data:`TS_MIN_NS`, :data:`TS_MAX_NS`], else folded into the range's last (first, below it)
    :data:`TS_FOLD_NS` by its value modulo that span: times beyond it less than 18 years apart
    keep their order and their differences (a SYN sent again 1 s later stays 1 s later, not a
    copy of the first: session 62's testers, a pcapng stamped in the year 2300), unless they
    straddle a multiple of the span; the same value gives the same time whatever else the
    capture holds (a chunked reading's batches agree)."""
    if TS_MIN_NS <= v <= TS_MAX_NS:
        return v
    if v > TS_MAX_NS:
        return TS_MAX_NS - TS_FOLD_NS + 1 + v % TS_FOLD_NS
    return TS_MIN_NS + v % TS_FOLD_NS
_INT64_MAX, _INT64_MIN = TS_MAX_NS, TS_MIN_NS

# ---------------------------------------------------------------------------------------------
# Sources


class _BytesReader:
    """``read(n)``/``eof()`` over an in-memory buffer; a read of everything returns it uncopied."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0
        self.problem: str | None = None

    def read(self, n: int) -> bytes:
        if self._pos == 0 and n >= len(self._data):
            self._pos = len(self._data)
            return self._data
        out = self._data[self._pos:self._pos + n]
        self._pos += len(out)
        return out

    def eof(self) -> bool:
        return self._pos >= len(self._data)

    def drain(self) -> int:
        n = len(self._data) - self._pos
        self._pos = len(self._data)
        return n


class _FileReader:
    """``read(n)``/``eof()`` over a buffered binary file."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self.problem: str | None = None

    def read(self, n: int) -> bytes:
        return self._f.read(n)

    def read_on(self, tail: bytes, n: int, room: int = 0) -> bytes | bytearray:
        """``tail + read(n)``, where ``tail`` is the last bytes read (the start of a record the
        previous chunk cut): read again with them from the file when it can seek, so that the
        chunk is made once (a copy of a 16 MiB chunk to put a few bytes before it costs more
        CPU than reading it: a new buffer's pages); the bytes read again must be ``tail``
        (else, a file rewritten under us, as it was). ``room`` > 0: a bytearray whose first
        ``room`` bytes are zeros left free for the caller (:func:`iter_frames`' ``room``), the
        bytes after them read into it in place."""
        k = len(tail)
        if room > 0 and hasattr(self._f, "readinto"):
            buf = bytearray(room + k + n)
            mv = memoryview(buf)
            mv[room:room + k] = tail
            got, at = 0, room + k
            try:
                while got < n:
                    r = self._f.readinto(mv[at + got:])
                    if not r:
                        break
                    got += r
            finally:
                mv.release()
            if got < n:
                del buf[at + got:]
            return buf
        if k and getattr(self._f, "seekable", lambda: False)():
            try:
                self._f.seek(-k, os.SEEK_CUR)
            except (OSError, ValueError):
                return tail + self._f.read(n)
            out = self._f.read(k + n)
            if out[:k] == tail:
                return out
            return tail + out[k:]   # (not the bytes we had: keep ours, then what follows them)
        return tail + self._f.read(n)

    def eof(self) -> bool:
        return not self._f.peek(1)  # type: ignore[attr-defined]

    def drain(self) -> int:
        """Skip to the end of the file; return the number of bytes skipped."""
        try:
            here = self._f.tell()
            size = os.fstat(self._f.fileno()).st_size
            self._f.seek(0, os.SEEK_END)
            return max(size - here, 0)
        except (OSError, AttributeError, ValueError):
            n = 0
            while b := self._f.read(1 << 20):
                n += len(b)
            return n


#: the path that stands for standard input (the command line's ``-``): :func:`iter_frames` reads
#: file descriptor 0 front to back as a stream, chunk by chunk (a pipe: ``tcpdump -w - |
#: kscc-traffic analyze -``, ``zcat x.pcap.gz | …``), never seeking and never reading it twice
STDIN = "/dev/stdin"
#: how a stream read from standard input is named in error lines
STDIN_TEXT = "standard input"


def is_stdin(source) -> bool:
    """Whether ``source`` (a str or path; anything else: False) is :data:`STDIN`."""
    return isinstance(source, (str, os.PathLike)) and os.fspath(source) == STDIN


class _Stream:
    """Standard input as a binary file read front to back (a pipe, a socket, a terminal or a
    file): ``read(n)`` returns ``n`` bytes unless the stream ends first (a pipe's reads, which give
    what has come so far, are repeated), ``peek(1)`` at least one byte, b"" at its end; ``tell``
    and ``seek`` raise :class:`io.UnsupportedOperation` (an ``OSError``), as for any pipe, so that
    the readers never count on reading a byte twice. ``head``: the first bytes, already read (to
    tell the format), given back first."""

    def __init__(self, f: BinaryIO, head: bytes) -> None:
        self._f, self._head = f, head

    def read(self, n: int = -1) -> bytes:
        if not self._head:
            return self._f.read(n)
        if n < 0:
            out, self._head = self._head + self._f.read(), b""
            return out
        out, self._head = self._head[:n], self._head[n:]
        if len(out) < n:
            out += self._f.read(n - len(out))
        return out

    def peek(self, n: int = 1) -> bytes:
        return self._head or self._f.peek(n)  # type: ignore[attr-defined]

    def tell(self) -> int:
        raise io.UnsupportedOperation(f"{STDIN_TEXT} cannot seek")

    def seek(self, *args) -> int:
        raise io.UnsupportedOperation(f"{STDIN_TEXT} cannot seek")

    def fileno(self) -> int:
        return self._f.fileno()

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "_Stream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _open_stdin() -> tuple[_Stream, _FileReader | DecompressingReader]:
    """Standard input (a copy of file descriptor 0, so that closing it leaves fd 0 open) as a
    :class:`_Stream` and its reader (decompressing when its first bytes are a compressed
    format's).

    :raises CaptureAccessError: standard input is closed (``<&-``) or cannot be read.
    """
    try:
        f = open(os.dup(0), "rb", buffering=1 << 20)
    except OSError as e:
        raise CaptureAccessError(f"{STDIN_TEXT}: cannot read: it is closed ({e.strerror or e})") from None
    try:
        head = f.read(8)       # (a pipe may give fewer at a time: read() waits for 8 or the end)
    except OSError as e:
        f.close()
        raise CaptureAccessError(f"{STDIN_TEXT}: cannot read: {e.strerror or e}") from None
    s = _Stream(f, head)
    return s, open_decompressing(s, head) or _FileReader(s)


def _source_name(source: str | os.PathLike[str] | bytes) -> str:
    """The text naming ``source`` in warnings and errors: its file name, escaped (:func:`name_text`)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    return name_text(os.path.basename(os.fspath(source)) or os.fspath(source))


# ---------------------------------------------------------------------------------------------
# Walk results


@dataclass
class _Stop:
    """Why a walk stopped before the end of the file (damage or cut)."""

    offset: int            # absolute file offset of the damaged / cut record or block
    what: str              # text for the warning line (after "<name>: ")
    records: int           # records lost at this point (1 when a record is known to be lost)
    cut: bool = False      # True: the file simply ends inside this record / block
    before: int = 0        # bytes of the record before it left out with the damage (pcap: it
                           # holds the bytes lost or added, :meth:`_PcapParser._leave_out_before`)


@dataclass
class _Walk:
    """Result of ``parser.walk(buf, pos, at_eof, base)``, the one record walk of both readers.

    The walk reads the complete records / blocks in ``buf[pos:]`` and returns their columns
    (offsets relative to ``buf``), ``pos`` = the first byte not consumed, and either ``stop``
    (damage, or at end of file a cut record) or, when ``buf`` simply ends inside a record and
    ``at_eof`` is false, ``need`` = the bytes needed from ``pos`` to read it. ``base`` is the
    file offset of ``buf[0]`` (for messages). Every decision depends only on the record's own
    bytes, the records just after it and ``at_eof``, so any chunking gives the same records: a
    pcap walk that may go on hands out a record only once the whole header after it is read
    and found in step (the record before damage is left out with it, :class:`_PcapParser`), the
    last one and any before a doubtful header are walked again with the next bytes.
    """

    pos: int                              # first byte not consumed (relative to buf)
    need: int = 0                         # bytes needed from ``pos`` to go on (0: any)
    stop: _Stop | None = None
    cols: dict[str, np.ndarray] = field(default_factory=dict)


#: LINKTYPE_ERF: each record begins with an Endace ERF header, whose first 8 bytes are its time
LINKTYPE_ERF = 197


def _erf_times(buf, data_off: np.ndarray, caplen: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """The times (int64 ns) of pcap records of link type ERF: the ERF header's timestamp (64
    bits little-endian: seconds in the high 32, a binary fraction of a second in the low 32,
    rounded to the nearest ns), which Wireshark reads for such records in a pcap file rather
    than the record header's (some writers put a wrong fraction there, or only microseconds);
    ``ts`` (the record headers' times) where the record is too short to hold an ERF header.
    ``data_off``: int64 offsets of the records' data in ``buf``; ``caplen``: their lengths."""
    ok = np.asarray(caplen) >= 16
    if not ok.any():
        return ts
    b = np.frombuffer(buf, np.uint8)
    at = data_off[ok]
    raw = np.zeros(len(at), np.uint64)
    for k in range(8):
        raw |= b[at + k].astype(np.uint64) << np.uint64(8 * k)
    frac = raw & np.uint64(0xFFFF_FFFF)
    ns = (frac * np.uint64(1_000_000_000) + np.uint64(1 << 31)) >> np.uint64(32)
    out = ts.copy()
    out[ok] = (raw >> np.uint64(32)).astype(np.int64) * 1_000_000_000 + ns.astype(np.int64)
    return out


#: an ERF header's flags byte (offset 9): bit 4, "RX error" (the card received the frame with
#: an error: a CRC error, a frame shorter or longer than allowed)
ERF_RX_ERROR = 0x10


def _erf_rx_errors(buf, data_off: np.ndarray, caplen: np.ndarray) -> np.ndarray:
    """Per record of link type ERF (bool): its ERF header's flags say "RX error" (:data:`ERF_RX_ERROR`:
    Wireshark's ``erf.flags.rxe``), i.e. the frame's bytes are not the bytes sent, as a pcapng
    ``epb_flags`` CRC error says; False for a record too short to hold the flags byte.
    ``data_off``: int64 offsets of the records' data in ``buf``; ``caplen``: their lengths."""
    ok = np.asarray(caplen) >= 16
    out = np.zeros(len(ok), bool)
    if ok.any():
        flags = np.frombuffer(buf, np.uint8)[np.asarray(data_off)[ok] + 9]
        out[ok] = (flags & ERF_RX_ERROR) != 0
    return out


def _empty_cols() -> dict[str, np.ndarray]:
    return {"ts_ns": np.zeros(0, np.int64), "linktype": np.zeros(0, np.int32),
            "offset": np.zeros(0, np.int64), "caplen": np.zeros(0, np.int32),
            "wirelen": np.zeros(0, np.int32)}


def _clamp_wirelen(wl: np.ndarray, notes: dict[str, int]) -> np.ndarray:
    """uint32 original lengths -> int32 column (values above INT32_MAX clamped, counted; those
    from :data:`~.stats.WIRELEN_DAMAGED` below it counted as damaged, kept)."""
    high = wl >= WIRELEN_DAMAGED                # (one pass when every length is plausible)
    if high.any():
        nbig = int(np.count_nonzero(wl > _INT32_MAX))
        odd = int(np.count_nonzero(high)) - int(np.count_nonzero(wl >= _INT32_MAX))
        if odd:
            notes["wirelen_damaged"] = notes.get("wirelen_damaged", 0) + odd
        if nbig:
            notes["wirelen_clamped"] = notes.get("wirelen_clamped", 0) + nbig
            wl = np.minimum(wl, _INT32_MAX)
    return wl.astype(np.int32)


def _empty_parts() -> tuple[np.ndarray, ...]:
    """No packet blocks: (iface index, raw ts, data offset, caplen, wirelen, is-SPB, link-type
    flag bits, FCS length), each empty."""
    return (np.zeros(0, np.int32), np.zeros(0, np.uint64), np.zeros(0, np.int64),
            np.zeros(0, np.uint32), np.zeros(0, np.uint32), np.zeros(0, bool),
            np.zeros(0, np.int32), np.zeros(0, np.int32))


#: options of one Enhanced Packet Block walked at most looking for ``epb_flags``
_EPB_MAX_OPTIONS = 32
#: ``epb_flags`` (pcapng §4.3.1): bit 24 of the link-layer-dependent errors, CRC error
EPB_CRC_ERROR = 1 << 24


def _epb_flag_bits(v: np.ndarray, p: np.ndarray, cl: np.ndarray, blen: np.ndarray,
                   order: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The ``Frames.linktype`` flag bits (int32, one per block) the ``epb_flags`` option of the
    Enhanced Packet Blocks at ``p`` gives: :data:`~.frames.LT_DAMAGED` for a CRC error (bit
    24), :data:`~.frames.LT_FCS` for an FCS length (bits 5-8) of 4 bytes; 0 without the option;
    and that FCS length (int32 bytes, one per block; 0: none given); the offsets in the
    buffer (int64) of the options whose length runs past their block (the rest of that
    block's options ignored, its packet kept); and the ``epb_dropcount`` of each block (int64,
    0 without it: the packets lost between the one before and this one, §4.3.1; xdpdump writes
    it).
    ``v``: the buffer's uint32 view at every byte (:func:`_u32_view`) in the section's byte
    order; ``cl``/``blen``: the blocks' captured and block lengths (a block whose captured
    length runs past its end has no options). The options (code, length, value padded to 4 bytes)
    follow the packet data; they are walked for all the blocks at once, one option per step,
    at most :data:`_EPB_MAX_OPTIONS` (a block without options costs one comparison)."""
    n = len(p)
    bits = np.zeros(n, np.int32)
    fcs = np.zeros(n, np.int32)
    drops = np.zeros(n, np.int64)
    overrun = []
    if not n:
        return bits, fcs, np.zeros(0, np.int64), drops
    cl = cl.astype(np.int64)
    q = p + 28 + ((cl + 3) & ~3)
    end = p + blen - 4
    act = np.flatnonzero(q + 4 <= end)
    q, end = q[act], end[act]
    for _ in range(_EPB_MAX_OPTIONS):
        if not len(act):
            break
        w = v[q].astype(np.int64)
        code, olen = (w & 0xFFFF, w >> 16) if order == "<" else (w >> 16, w & 0xFFFF)
        nxt = q + 4 + ((olen + 3) & ~3)
        fl = (code == 2) & (olen == 4) & (nxt <= end)
        if fl.any():
            val = v[q[fl] + 4].astype(np.int64)
            b = np.where(val & EPB_CRC_ERROR, LT_DAMAGED, 0) \
                | np.where(((val >> 5) & 0xF) == 4, LT_FCS, 0)
            bits[act[fl]] = b
            fcs[act[fl]] = (val >> 5) & 0xF
        dc = (code == 4) & (olen == 8) & (nxt <= end)
        if dc.any():
            lo_, hi_ = v[q[dc] + 4].astype(np.int64), v[q[dc] + 8].astype(np.int64)
            val = (hi_ << 32) | lo_ if order == "<" else (lo_ << 32) | hi_
            drops[act[dc]] = np.where((val >= 0) & (val < 1 << 48), val, 0)   # (all ones: no count)
        over = (code != 0) & (q + 4 + olen > end)
        if over.any():
            overrun.append(q[over])
        more = (code != 0) & (nxt + 4 <= end)
        act, q, end = act[more], nxt[more], end[more]
    return bits, fcs, (np.concatenate(overrun) if overrun else np.zeros(0, np.int64)), drops


def _option_overrun(buf: bytes, p: int, end: int, order: str) -> int | None:
    """The offset in ``buf`` of the first option in ``buf[p:end]`` (§3.5: code, length, value
    padded to 4 bytes, up to opt_endofopt) whose length runs past ``end``, or None."""
    opt = struct.Struct(order + "HH").unpack_from
    while p + 4 <= end:
        code, olen = opt(buf, p)
        if code == 0:
            return None
        if p + 4 + olen > end:
            return p
        p += 4 + ((olen + 3) & ~3)
    return None


def _u32_view(buf: bytes | memoryview, order: str) -> np.ndarray:
    """A read-only uint32 view of ``buf`` at *every byte offset* (stride 1): ``v[o]`` is the
    32-bit word starting at byte ``o``. Used to gather record-header fields without copies."""
    return np.ndarray(shape=(len(buf) - 3,), dtype=np.dtype(order + "u4"), buffer=buf,
                      strides=(1,))


# ---------------------------------------------------------------------------------------------
# pcap

# magic as stored in the file -> (byte order, ns per fraction unit, record header bytes, label)
_PCAP_MAGICS: dict[bytes, tuple[str, int, int, str]] = {
    b"\xd4\xc3\xb2\xa1": ("<", 1000, 16, "pcap µs"),
    b"\xa1\xb2\xc3\xd4": (">", 1000, 16, "pcap µs"),
    b"\x4d\x3c\xb2\xa1": ("<", 1, 16, "pcap ns"),
    b"\xa1\xb2\x3c\x4d": (">", 1, 16, "pcap ns"),
    b"\x34\xcd\xb2\xa1": ("<", 1000, 24, "modified pcap µs"),
    b"\xa1\xb2\xcd\x34": (">", 1000, 24, "modified pcap µs"),
}
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"
#: the hint for a capture format Wireshark reads and the built-in reader does not
_TSHARK_READS = ", which the built-in reader does not read: use --engine tshark, or convert it: editcap -F pcapng IN OUT"
#: what the UnsupportedFormat message says of a format Wireshark reads (by kind of
#: :func:`~kscc_traffic.capture.folders.known_format`; an archive: "a zip archive: extract it first")
_TSHARK_HINTS = {
    "netmon1": "a Microsoft Network Monitor 1.x file" + _TSHARK_READS,
    "netmon2": "a Microsoft Network Monitor 2.x file" + _TSHARK_READS,
    "snoop": "a snoop file (Solaris, Check Point fw monitor)" + _TSHARK_READS,
    "sniffer": "a Sniffer file" + _TSHARK_READS,
}

#: what a line about a file damaged by a text-mode transfer says (FTP ASCII mode writes each LF
#: byte as CR LF: a pcapng file's first bytes, a pcap file's records, are no longer where they were)
ASCII_MODE_TEXT = ("the file looks transferred in FTP ASCII mode (each LF byte became CR LF): "
                   "transfer it again in binary mode")
#: bytes of the start of a pcap file kept to tell that damage (:func:`_ascii_mode_pcap`)
ASCII_PROBE_BYTES = 1 << 18
#: records that must follow one another after the damage once CR LF is read as LF
_ASCII_CHAIN = 4


#: records in a row read out of step before :meth:`_PcapParser._out_of_step` calls it damage
STEP_RUN = 4
#: seconds between two records' times called "decades away" (about 9.5 years): a header read out
#: of step, not a clock stepped
DECADES_S = 3 * 10**8
#: seconds after the epoch below which a record's time tells no tear from a clock being set
#: (a header read a few bytes off gives microseconds, below 10**6, for seconds)
NEAR_EPOCH_S = 3 * 365 * 86400


class _PcapParser:
    """Record walk of a classic pcap file (header: 24 bytes; record header 16, or 24 for the
    modified format).

    Damage found at a header read out of step (bytes lost or added before it: :meth:`_out_of_step`,
    or a length beyond the bound in a header whose time or fraction is nonsense:
    :meth:`_stepped_at`) is in the record before that header too: that record is left out and
    counted with the damage unless its checksums prove its headers (:meth:`_leave_out_before`). So
    that it is still at hand when the damage is found at the start of the next bytes, a walk that
    may go on hands out no record before the whole header after it is read and in step (the last
    one, and one before a doubtful header, are walked again with the next bytes): the records
    are the same whatever the chunk size."""

    kind = "pcap"

    def __init__(self, head: bytes, name: str) -> None:
        order, mult, hdr_len, label = _PCAP_MAGICS[head[:4]]
        if len(head) < 24:
            raise TruncatedCapture(
                f"{name}: file ends inside the {label} file header ({len(head)} of 24 bytes)")
        major, minor, _zone, _sigfigs, snaplen, lt_field = struct.unpack_from(
            order + "HHiIII", head, 4)
        # (543.0: DG/UX tcpdump's files, the 2.x layout, which libpcap and Wireshark read too;
        # another major version above 2, which no writer uses (a damaged header: one bit of 2.4
        # flipped makes 3.4), is read as 2.4 with a warning, as Wireshark reads it; below 2 none)
        self.odd_version = major > 2 and (major, minor) != (543, 0)
        if major < 2:
            raise UnsupportedFormat(
                f"{name}: {label} version {major}.{minor} is not supported (2.0 and later are)")
        if self.odd_version:
            minor = 4
        self.name = name
        self.order = order
        self.mult = mult
        self.head = bytes(head[:24])
        #: the writer of a pcap variant whose record headers are longer (:func:`_pcap_variant`),
        #: None: the format the magic names
        self.variant: str | None = None
        #: the file offset from which this parser reads records in the byte order opposite to the
        #: file header's (:func:`_flipped_parser`), None: the header's own
        self.flipped_from: int | None = None
        # (a microsecond file whose first records all hold nanoseconds: :meth:`_units`)
        self.units_open = mult == 1000
        self.nano_in_usec = 0      # (records looked at, when read as nanoseconds: :meth:`_units`)
        self.hdr_len = hdr_len
        self.start = 24
        self.version = (major, minor)
        self.header_version = struct.unpack_from(order + "HH", head, 4)
        self.snaplen = snaplen
        self.linktype = lt_field & 0xFFFF
        # the FCS bits (P: bit 26; FCS length in 16-bit words: bits 28-31, libpcap's
        # LT_FCS_LENGTH): 4 bytes of FCS end every frame (LT_FCS: the decoder checks them), or 2
        # bytes (LT_FCS2, Ethernet alone, as Wireshark applies it: taken off unchecked)
        words = lt_field >> 28 if lt_field & 0x0400_0000 else 0
        self.lt_col = self.linktype | (LT_FCS if words == 2 else
                                       LT_FCS2 if words == 1 and self.linktype == 1 else 0)
        self.bound = max(MAX_RECORD_BYTES, snaplen if snaplen <= MAX_SNAPLEN_BYTES else 0)
        self.notes: dict[str, int] = {}
        #: (file offset where the last walk stopped, seconds of its last record): the record
        #: before the next walk's first, when that walk starts there (:meth:`_out_of_step`)
        self._last: tuple[int, int | None] = (-1, None)
        self.malformed = 0         # pcap has no record that can be skipped and read past
        # the order of the two lengths in a record header, as libpcap's sf-pcap.c reads them:
        # original length first in versions 2.0-2.2 and DG/UX's 543.0 ("swapped"), either in 2.3
        # (the smaller one is the captured length), captured length first from 2.4 on
        self.swap = "yes" if major == 543 or minor < 3 else "maybe" if minor == 3 else "no"
        self.cut_in_step = False     # (the last cut of _out_of_step a damaged length's: _swallower)
        if self.swap == "yes":
            self._caplen_at = struct.Struct(order + "12xI").unpack_from
        elif self.swap == "maybe":
            both = struct.Struct(order + "8xII").unpack_from
            self._caplen_at = lambda b, at: (min(both(b, at)),)
        else:
            self._caplen_at = struct.Struct(order + "8xI").unpack_from

    def walk(self, buf: bytes, pos: int, at_eof: bool, base: int) -> _Walk:
        """Walk the records in ``buf[pos:]`` (contract: :class:`_Walk`)."""
        end = len(buf)
        hdr_len = self.hdr_len
        caplen_at = self._caplen_at
        start = base + pos
        offs, heads, pos, cl = self._records(buf, pos)
        if self.units_open and not self._units(buf, offs, heads,
                                               at_eof or cl >= 0 or end - (start - base) >= NANO_UNITS_BYTES):
            # (the first NANO_UNITS_MIN records decide the file's unit, however it is cut in chunks:
            # twice the bytes asked for until they are in, or NANO_UNITS_BYTES)
            start_pos = start - base
            return _Walk(start_pos, 2 * (end - start_pos) + 1, None, _empty_cols())
        stop: _Stop | None = None
        if cl >= 0:
            stop = _Stop(base + pos, f"damaged record at offset {base + pos} "
                         f"(caplen {cl} > {self.bound})", 1)
        # (a doubtful record among the last STEP_RUN of a walk that may go on is walked again
        # with the next bytes: whether it was read out of step is decided with the records after
        # it, in the same walk however the file is cut in chunks)
        hold = None
        stepped = False             # (the stop's header read out of step: bytes lost or added before it)
        if len(offs) and self.swap == "no":
            # (records read out of step after bytes lost or added: :meth:`_out_of_step`)
            cut, tail = self._out_of_step(buf, offs, heads, start, base, at_eof, stop is not None)
            if stop is None and not at_eof:
                hold = tail
            if cut is not None:
                k, why = cut
                if why is None and stop is None and not at_eof:
                    hold = k if hold is None else min(k, hold)      # (decided with the next bytes)
                elif why is None:               # (the walk stopped after it: decided with more bytes)
                    k = max(k - 1, 0)           # (and the record before it, left out if it is damage)
                    pos = offs[k]
                    del offs[k:]
                    self._remember(buf, offs, heads, base + pos)
                    return _Walk(pos, end - pos + 1, None, self._columns(buf, offs, heads))
                else:
                    pos = offs[k]
                    del offs[k:]
                    stop = _Stop(base + pos, f"damaged record at offset {base + pos} ({why})", 1)
                    stepped = not self.cut_in_step
                    hold = None
        need = 0
        if stop is None and not at_eof and len(offs):
            # a record is handed out once the whole header after it is read and in step: whether
            # bytes were lost or added in it is told by that header (:meth:`_leave_out_before`)
            if hold is not None:
                hold = max(hold - 1, 0)         # (the record before a doubtful header waits with it)
            if (pos if pos <= end else offs[-1]) + hdr_len > end:
                last = max(len(offs) - (1 if pos <= end else 2), 0)
                if hold is None or last < hold:
                    hold = last
                    need = pos + hdr_len - offs[last]       # (its bytes and the header after it)
        if hold is not None and hold < len(offs):
            pos = offs[hold]
            del offs[hold:]
            self._remember(buf, offs, heads, base + pos)
            return _Walk(pos, max(need, 0 if offs else end - pos + 1), None, self._columns(buf, offs, heads))
        if stop is not None and len(offs) and (stepped or self._stepped_at(buf, pos, offs, heads)):
            stop = self._leave_out_before(buf, offs, heads, stop, base)
        if stop is None and pos > end:           # last record not (all) in buf
            pos = offs.pop()
            cl = caplen_at(buf, pos)[0]
            need = hdr_len + cl
            if at_eof:
                stop = _Stop(base + pos, f"file cut mid-record at offset {base + pos}: "
                             f"{end - pos} of {need} bytes present", 1, cut=True)
        elif stop is None and pos < end:         # less than 12 bytes of a record header
            need = hdr_len
            if at_eof:
                stop = _Stop(base + pos, f"file cut mid-record at offset {base + pos}: "
                             f"{end - pos} of {hdr_len} record-header bytes present", 1, cut=True)
        self._remember(buf, offs, heads, base + pos)
        return _Walk(pos, need, stop, self._columns(buf, offs, heads))

    def _stepped_at(self, buf, p: int, offs: array, heads: np.ndarray | None) -> bool:
        """Whether the header at ``buf[p]`` where the walk stopped on a length beyond the bound
        was read out of step, after the records ``offs`` (bytes lost or added before it, so in
        the record before it): its time more than :data:`~.resync.WINDOW_S` from that record's
        (not a zero time, nor a record's time near the epoch, :data:`NEAR_EPOCH_S`) or its
        fraction a second or more. A header in step whose length alone is damaged (a bit flipped,
        a record longer than the bound) is not: the record before it is whole."""
        from .resync import WINDOW_S
        sec, frac = struct.unpack_from(self.order + "II", buf, p)
        if sec == 0 and frac == 0:
            return False
        if frac >= 1_000_000_000 // self.mult:
            return True
        ref = self._sec_at(buf, offs[-1], heads, len(offs) - 1)
        return ref >= NEAR_EPOCH_S and abs(sec - ref) > WINDOW_S

    def _leave_out_before(self, buf, offs: array, heads: np.ndarray | None, stop: _Stop, base: int) -> _Stop:
        """The record before damage found at a header read out of step (the last of ``offs``)
        left out: the bytes lost or added before that header are in it (its length took bytes of
        the next record, or left some of its own), so its frame is not the one captured (made-up
        addresses and protocols, break-it s56 #3). Returns ``stop`` counting it (one record more,
        ``before`` its bytes, said in the warning line). Kept: a record whose checksums prove its
        headers (:func:`~.resync.headers_proven`: the bytes were lost or added just at its end,
        or in its payload alone: the flow keeps its packet), and a record header of zeros (a
        zero-filled region: :func:`_drop_zero_headers` decides about the record before those)."""
        k = len(offs) - 1
        at = offs[k]
        if heads is not None:
            row = heads[k]
            zero = not row.any()
            cl = int(row[2])
        else:
            zero = not any(bytes(buf[at:at + 16]))
            cl = self._caplen_at(buf, at)[0]
        if zero or headers_proven(memoryview(buf)[at + self.hdr_len:at + self.hdr_len + cl], self.linktype):
            return stop
        del offs[k:]
        size = self.hdr_len + cl
        return _Stop(stop.offset, f"{stop.what}; the record before it left out (offset {base + at}, {size} bytes: "
                     "it holds the lost or added bytes)", stop.records + 1, before=size)

    def _units(self, buf, offs: array, heads: np.ndarray | None, last: bool) -> bool:
        """Decided once, on the file's first :data:`NANO_UNITS_MIN` records: a microsecond pcap
        (magic a1b2c3d4) whose first records' ts_usec are all a million or more and below 10^9
        holds nanoseconds (a writer's mistake, tcpdump's --nano confused: each 10 ms step read as
        10 s split connections; links s54 #5; a random nanosecond fraction is below a million one
        time in a thousand): read so from then on (:attr:`mult` 1), and said
        (:attr:`nano_in_usec`: the records looked at, all of them). Any record before that with
        an ordinary fraction decides at once (every ordinary file, on its first record). False
        while the walk holds fewer records, all nanosecond-like, and more may come (``last``
        False: the walk waits for more bytes, so every chunking decides alike); a file with fewer
        is read as its magic says."""
        n = min(len(offs), NANO_UNITS_MIN)
        if n == 0:          # (no record yet: decided with the first ones, or none at all)
            self.units_open = not last
            return last
        if heads is not None:
            frac = heads[:n, 1].astype(np.int64)
        else:
            v = _u32_view(buf, self.order)
            frac = v[np.frombuffer(offs, np.int64)[:n] + 4].astype(np.int64)
        nano = bool(((frac >= 1_000_000) & (frac < 1_000_000_000)).all())
        if nano and n < NANO_UNITS_MIN and not last:
            return False
        self.units_open = False
        if nano and n == NANO_UNITS_MIN:
            self.mult = 1
            self.nano_in_usec = n
        return True

    def _remember(self, buf, offs: array, heads: np.ndarray | None, next_at: int) -> None:
        """Keep the seconds of the walk's last record, for the walk that starts at ``next_at``."""
        if len(offs):
            self._last = (next_at, self._sec_at(buf, offs[-1], heads, len(offs) - 1))
        elif self._last[0] != next_at:
            self._last = (next_at, None)

    def _sec_at(self, buf, off: int, heads: np.ndarray | None, k: int) -> int:
        """The seconds of the record at ``off`` (row ``k`` of ``heads`` when given)."""
        return int(heads[k, 0]) if heads is not None else struct.unpack_from(self.order + "I", buf, off)[0]

    def _out_of_step(self, buf, offs: array, heads: np.ndarray | None, start: int, base: int, at_eof: bool,
                     stopped: bool) -> tuple[tuple[int, str | None] | None, int | None]:
        """:meth:`_out_of_step_far`, and before its cut (or without one) the first record whose
        captured length is damaged (:meth:`_swallower`): ``(cut, tail)`` as there;
        ``self.cut_in_step`` says the cut is the latter's (its header in step: the record before
        it is whole, not left out)."""
        cut, tail = self._out_of_step_far(buf, offs, heads, start, base, at_eof, stopped)
        sw = self._swallower(buf, offs, heads, at_eof)
        self.cut_in_step = sw is not None and (cut is None or sw[0] < cut[0])
        if self.cut_in_step:
            return sw, tail
        return cut, tail

    def _swallower(self, buf, offs: array, heads: np.ndarray | None, at_eof: bool) -> tuple[int, str] | None:
        """The first record of ``offs`` whose captured length is a damaged field that swallows
        the records after it (a caplen within the bound, so the walk reads on): ``(k, why)``, or
        None. Such a record's captured length is above its original length, no run of plausible
        records (:func:`~.resync.pcap_records_at`) starts where that length ends, and one starts
        where its original length ends: reading resumes after the damage at the records it
        would swallow, not past them (a 94-byte record whose caplen read 257,465 lost the next
        470 records; tshark stops at such a file). Only records with an original length below
        the captured one are looked at (rare: none in an undamaged capture but a few writers')."""
        o = np.frombuffer(offs, np.int64)
        n = int(np.searchsorted(o, len(buf) - 16, side="right")) if len(o) and o[-1] + 16 > len(buf) else len(o)
        if not n:
            return None
        if heads is not None:
            h = heads[:n].astype(np.int64)
            sec, cl, wl = h[:, 0], h[:, 2], h[:, 3]
        else:
            v = _u32_view(buf, self.order)
            o = o[:n]
            sec, cl, wl = (v[o + d].astype(np.int64) for d in (0, 8, 12))
        from .resync import pcap_records_at
        kw = dict(big=self.order == ">", hdr_len=self.hdr_len, ns=self.mult == 1, bound=self.bound)
        for k in np.flatnonzero((wl < cl) & (wl > 0)).tolist()[:16]:
            at, ref = int(o[k]) + self.hdr_len, int(sec[k])
            if at + int(cl[k]) + self.hdr_len > len(buf):
                continue        # (decided with the bytes after it; past the file's end: walk() says so)
            if pcap_records_at(buf, at + int(cl[k]), last_sec=ref, at_eof=at_eof, **kw) is not False:
                continue
            if pcap_records_at(buf, at + int(wl[k]), last_sec=ref, at_eof=at_eof, **kw):
                return k, (f"its captured length {int(cl[k])} above its original length {int(wl[k])} "
                           "and no record where it ends: a damaged length")
        return None

    def _out_of_step_far(self, buf, offs: array, heads: np.ndarray | None, start: int, base: int, at_eof: bool,
                         stopped: bool) -> tuple[tuple[int, str | None] | None, int | None]:
        """Where records in ``offs`` begin to be read out of step (bytes lost or added before a
        record header, a torn copy: every header after it read a few bytes off, as nonsense that
        still chains, break-it s53 fuzz #1 and #2): ``(k, why)`` to cut the walk at record ``k``
        as damage (``why``: the warning's words), ``(k, None)`` to stop before it and decide
        with more bytes, or None. A candidate is a record whose seconds are more than
        :data:`~.resync.WINDOW_S` from the record's before it (its fraction not below a second
        or its original length below its captured length too), not a zero time (a NIC without
        a clock), followed by :data:`STEP_RUN` - 1 records as odd against that record, *and*
        from which :func:`~.resync.find_pcap_record` finds whole records again within those
        records' bytes near that time (a clock that jumped is not read past: its records chain
        well and no record near the old time is hidden in them). When the walk stopped on a
        length beyond the bound (``stopped``), the records just before that stop are checked
        the same way, fewer of them needed: a doubtful header that swallowed whole records, or
        (no whole record within its bytes needed) one whose time is decades
        (:data:`DECADES_S`) from the record before and whose run reaches that stop (a header
        read a few bytes off that claims less than the record it is read in, break-it s56 #2).
        Second: the first of the last :data:`STEP_RUN` records that is such a candidate, or None
        (a walk that may go on walks it again with the next bytes)."""
        o = np.frombuffer(offs, np.int64)
        # (a last record whose header is not all in ``buf`` is not looked at)
        n = int(np.searchsorted(o, len(buf) - 16, side="right")) if len(o) and o[-1] + 16 > len(buf) else len(o)
        o = o[:n]
        if not n:
            return None, None
        if heads is not None:
            h = heads[:n].astype(np.int64)
            sec, frac, cl, wl = h[:, 0], h[:, 1], h[:, 2], h[:, 3]
        else:
            v = _u32_view(buf, self.order)
            sec, frac, cl, wl = (v[o + d].astype(np.int64) for d in (0, 4, 8, 12))
        last_off, last_sec = self._last
        prev = np.empty(n, np.int64)
        prev[1:] = sec[:-1]
        prev[0] = last_sec if last_off == start and last_sec is not None else sec[0]
        from .resync import WINDOW_S
        frac_max = 1_000_000_000 // self.mult
        zero = (sec == 0) & (frac == 0)
        odd = (frac >= frac_max) | (wl < cl)
        far_any = (np.abs(sec - prev) > WINDOW_S) & ~zero
        jump = np.flatnonzero(far_any)
        # (the first of the last STEP_RUN records that is odd or far from the one before: a walk
        # that may go on holds it back, to be decided with the records after it)
        doubt = np.flatnonzero((far_any | odd)[max(0, n - STEP_RUN):])
        tail = int(doubt[0]) + max(0, n - STEP_RUN) if len(doubt) else None
        if stopped and n:
            jump = np.union1d(jump, np.arange(max(0, n - STEP_RUN + 1), n))
        for k in jump.tolist()[:64]:
            ref = int(prev[k])
            if ref < NEAR_EPOCH_S:
                # (a clock near the epoch, a device without one set yet: headers read a few bytes
                # off look as near to it (microseconds for seconds), so nothing tells a tear from
                # the clock being set; review s53 #1)
                continue
            run = np.arange(k, min(n, k + STEP_RUN))
            far = (np.abs(sec[run] - ref) > WINDOW_S) & ~zero[run]
            bad = far | odd[run]
            if not bad[0] or not (far.any() or odd[run].all()):
                continue
            if len(run) < STEP_RUN and not (stopped or at_eof):
                return (k, None), tail          # (the rest of the run not in these bytes yet)
            if not bad.all():
                continue
            decades = far[0] and abs(int(sec[k]) - ref) > DECADES_S
            if not (stopped and decades and k + len(run) == n):
                # (a header decades away right before a length the reader cannot take is damage
                # as it is, break-it s56 #2: one that claims less than the record it is read in
                # hides no whole record; else whole records must be found within the run's bytes)
                last = int(o[run[-1]]) + self.hdr_len + int(cl[run[-1]])
                hit, more = find_pcap_record(buf, int(o[k]) + 1, big=self.order == ">", hdr_len=self.hdr_len,
                                             ns=self.mult == 1, bound=self.bound, last_sec=ref, at_eof=at_eof)
                if more is not None and hit is not None and hit < last:
                    return (k, None), tail          # (a candidate's records run past these bytes)
                if not (more is None and hit is not None and hit < last):
                    continue
            what = ("its header read out of step, bytes lost or added before it" if len(run) == 1 else
                    f"its header and the {len(run) - 1} after it read out of step, bytes lost or added before it")
            if far[0]:
                why = f"a time {'decades' if decades else 'days'} away from the record before"
            elif frac[k] >= frac_max:
                why = "a fraction of a second of a second or more"
            else:
                why = "an original length below its captured length"
            return (k, f"{what}: {why}"), tail
        return None, tail

    def _records(self, buf: bytes, pos: int) -> tuple[array, np.ndarray | None, int, int]:
        """:meth:`_offsets`, with the record headers' fields when the compiled walk read them on
        the way: ``(offsets, heads, pos, caplen)``, ``heads`` a uint32 array (records, 4) of
        ts seconds, ts fraction, captured and original length (a row past the offsets' end is
        a record taken back), or None (:meth:`_columns` then gathers them from ``buf``)."""
        records = getattr(_walk, "pcap_records", None)
        if self.swap != "no":       # (an old version's lengths: the Python walk reads them)
            offs, pos, cl = self._offsets_py(buf, pos)
            return offs, None, pos, cl
        if records is None:
            offs, pos, cl = self._offsets(buf, pos)
            return offs, None, pos, cl
        raw, heads, pos, cl = records(buf, pos, self.hdr_len, self.bound, self.order == ">")
        offs = array("q")
        offs.frombytes(raw)
        return offs, np.frombuffer(heads, np.uint32).reshape(-1, 4), pos, cl

    def _offsets(self, buf: bytes, pos: int) -> tuple[array, int, int]:
        """The record offsets from ``pos`` on: (offsets, position where the walk stopped, the
        captured length there when it is > the sanity bound, else -1). Stops once fewer than
        12 bytes are left at the position. A last record whose data overruns ``buf`` is in the
        offsets, and the position is then past the end. Compiled (:mod:`._walk`) when built."""
        if _walk is not None:
            raw, pos, cl = _walk.pcap_offsets(buf, pos, self.hdr_len, self.bound, self.order == ">")
            offs = array("q")
            offs.frombytes(raw)
            return offs, pos, cl
        return self._offsets_py(buf, pos)

    def _offsets_py(self, buf: bytes, pos: int) -> tuple[array, int, int]:
        """:meth:`_offsets` in Python (the fallback, and the compiled loop's reference)."""
        hdr_len = self.hdr_len
        bound = self.bound
        caplen_at = self._caplen_at
        offs = array("q")
        app = offs.append
        # The hot loop: one unpack, one compare, one append per record, and no bounds test:
        # the unpack raises struct.error once fewer than 12 bytes are left at ``pos`` (or
        # ``pos`` is past the end).
        try:
            while True:
                cl = caplen_at(buf, pos)[0]
                if cl > bound:
                    return offs, pos, cl
                app(pos)
                pos += hdr_len + cl
        except struct.error:
            pass
        return offs, pos, -1

    def _columns(self, buf: bytes, offs: array, heads: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The frame columns of the records at ``offs``: their header fields taken from
        ``heads`` (:meth:`_records`, rows beyond ``len(offs)`` ignored) or, when None, gathered
        from ``buf`` (the same values)."""
        n = len(offs)
        if n == 0:
            return _empty_cols()
        o = np.frombuffer(offs, np.int64)
        if heads is not None:
            h = heads[:n]
            sec, frac, cl, wl = h[:, 0], h[:, 1], h[:, 2], h[:, 3]
        else:
            v = _u32_view(buf, self.order)
            sec = v[o]
            frac = v[o + 4]
            cl = v[o + 8]
            wl = v[o + 12]
            if self.swap != "no":   # (the original length first: always, or where it is the larger)
                flip = np.ones(n, bool) if self.swap == "yes" else cl > wl
                cl, wl = np.where(flip, wl, cl), np.where(flip, cl, wl)
        notes = self.notes
        ts = sec.astype(np.int64) * 1_000_000_000 + frac.astype(np.int64) * self.mult
        lt = np.full(n, self.lt_col, np.int32)
        if self.linktype == LINKTYPE_ERF:
            ts = _erf_times(buf, o + self.hdr_len, cl, ts)
            lt[_erf_rx_errors(buf, o + self.hdr_len, cl)] |= LT_DAMAGED
        nfrac = int(np.count_nonzero(frac >= 1_000_000_000 // self.mult))
        if nfrac:
            notes["frac_over"] = notes.get("frac_over", 0) + nfrac
        if self.snaplen:
            nover = int(np.count_nonzero(cl > self.snaplen))
            if nover:
                notes["over_snaplen"] = notes.get("over_snaplen", 0) + nover
        nshort = int(np.count_nonzero(wl < cl))
        if nshort:
            notes["wirelen_short"] = notes.get("wirelen_short", 0) + nshort
        if self.flipped_from is not None:
            notes["flipped"] = notes.get("flipped", 0) + n
        return {"ts_ns": ts, "linktype": lt,
                "offset": o + self.hdr_len, "caplen": cl.astype(np.int32),
                "wirelen": _clamp_wirelen(wl, notes)}

    def summary(self) -> list[str]:
        """Warning lines (without the file name) for oddities counted over the whole file."""
        n = self.notes
        out = []
        if self.odd_version and self.flipped_from is None:
            out.append("file header's version {}.{} is none libpcap writes (2.4 is; a damaged header?): "
                       "read as 2.4, as Wireshark reads it".format(*self.header_version))
        if self.flipped_from is not None:
            out.append(flipped_note(n.get("flipped", 0), self.flipped_from, self.order))
        if self.variant is not None and self.flipped_from is None:
            out.append(f"records with {self.hdr_len}-byte headers, the pcap variant {self.variant} tcpdump wrote "
                       f"(the {self.hdr_len - 16} bytes after the standard 16 skipped), as Wireshark tells it "
                       "from its first records: read so")
        if n.get("over_snaplen"):
            out.append(f"{_records(n['over_snaplen'])} longer than the header's snaplen "
                       f"{self.snaplen} (kept)")
        if self.nano_in_usec:
            looked = self.nano_in_usec
            out.append(f"the file says microseconds (magic a1b2c3d4), but {looked:,} of its first {looked:,} records have "
                       "a ts_usec of a million or more, all below 10^9: nanoseconds (a writer's mistake), read as such")
        if n.get("frac_over"):
            unit = "ts_usec ≥ 1000000" if self.mult == 1000 else "ts_nsec ≥ 1000000000"
            out.append(f"{_records(n['frac_over'])} with {unit} (kept as read)")
        out.extend(_common_notes(n))
        return out


def _plural(k: int, noun: str) -> str:
    """``1 record``, ``2 records`` (warning lines)."""
    return f"{k} {noun}{'' if k == 1 else 's'}"


def _records(k: int) -> str:
    return _plural(k, "record")


def _common_notes(n: dict[str, int]) -> list[str]:
    out = []
    if n.get("wirelen_short"):
        out.append(f"{_records(n['wirelen_short'])} whose original length is below the captured "
                   "length (kept as read)")
    if n.get("wirelen_damaged"):
        out.append(wirelen_damaged_note(n["wirelen_damaged"]))
    if n.get("wirelen_clamped"):
        out.append(f"{_records(n['wirelen_clamped'])} with an original length above {_INT32_MAX} "
                   "(clamped to it)")
    return out


# ---------------------------------------------------------------------------------------------
# pcapng

_SHB, _IDB, _PB, _SPB, _NRB, _ISB, _EPB = 0x0A0D0D0A, 1, 2, 3, 4, 5, 6
_BLOCK_NAMES = {_SHB: "Section Header Block", _IDB: "Interface Description Block",
                _PB: "Packet Block", _SPB: "Simple Packet Block", _NRB: "Name Resolution Block",
                _ISB: "Interface Statistics Block", _EPB: "Enhanced Packet Block",
                0x0A: "Decryption Secrets Block", 0xBAD: "Custom Block",
                0x40000BAD: "Custom Block"}
_PACKET_BLOCKS = (_PB, _SPB, _EPB)
#: block types read past without a word, as they carry no packet: Name Resolution, Interface
#: Statistics (read: isb_ifdrop…), systemd Journal Export (9), Decryption Secrets (0x0A) and
#: Custom Blocks; any other type not read is counted (``unknown_block``) and said in a warning
_QUIET_BLOCKS = frozenset({_SHB, _IDB, _PB, _SPB, _NRB, _ISB, _EPB, 9, 0x0A, 0xBAD, 0x40000BAD,
                           # (registered types of other tools, no packets: IRIG timestamp 7, ARINC 429 8,
                           # Hone 0x101-0x102, Sysdig 0x201-0x213, Apple's process information 0x80000001)
                           7, 8, 0x101, 0x102, *range(0x201, 0x214), 0x80000001})
_BOM_LE = b"\x4d\x3c\x2b\x1a"
_BOM_BE = b"\x1a\x2b\x3c\x4d"


#: an Interface Statistics Block time under a ns if_tsresol earlier than this (epoch ns: 1973-03)
#: is µs (a dumpcap 4.0 capture: 2026 in µs reads as 1970-01-21 in ns)
_ISB_US_BEFORE_NS = 10**17
#: records a microsecond pcap's first walk must hold for their fractions to tell nanoseconds
#: (:meth:`_PcapParser._units`)
NANO_UNITS_MIN = 16
#: bytes read at most for them (records of tens of MiB: fewer decide)
NANO_UNITS_BYTES = 32 << 20
#: the pcapng fields that count packets the capture dropped (:attr:`_PcapngParser.drops` keys)
_DROP_FIELDS = {5: "isb_ifdrop", 7: "isb_osdrop", 4: "epb_dropcount", 2: "drops_count of obsolete Packet Blocks"}


@dataclass(frozen=True, slots=True)
class _Iface:
    """One pcapng interface description (IDB): link type, snaplen (0 = none) and timestamp
    rule. Immutable: interfaces described alike share one (:class:`_IfaceTable`)."""

    linktype: int
    snaplen: int
    res_base: int = 10         # if_tsresol: 10 (10^-res_exp s) or 2 (2^-res_exp s)
    res_exp: int = 6
    offset_s: int = 0          # if_tsoffset, seconds
    valid: bool = True
    fcslen: int = 0            # if_fcslen, bytes (0: none given; fcs_option_bytes)

    @property
    def bound(self) -> int:
        return max(MAX_RECORD_BYTES, self.snaplen if self.snaplen <= MAX_SNAPLEN_BYTES else 0)


def _grown(a: np.ndarray, n: int) -> np.ndarray:
    """``a`` itself when it has room for index ``n``, else a copy twice as long (zeros after)."""
    if n < len(a):
        return a
    return np.concatenate([a, np.zeros(len(a), a.dtype)])


#: Interface Description Blocks remembered by their bytes, at most (the same bytes read once)
_IDB_CACHE = 4096


class _IfaceTable:
    """The interfaces of a pcapng file (every section's, in file order: global index).

    Interfaces described alike (same link type, snaplen, if_tsresol, if_tsoffset, FCS length)
    share one :class:`_Iface`, a *description*: per interface the table keeps only the index of
    its description (int32, in an array grown by doubling), so a file with 1,000,000 Interface
    Description Blocks costs 4 bytes per interface, not one object each (break-it 21 F8: 389 MiB),
    and adding one and gathering the columns of records are O(1) per interface / per record (a
    file with 20,000 IDBs read in 64-byte chunks rebuilt the columns at every walk: quadratic).
    Per description: ``linktype`` int32, ``snaplen`` int64 (0 = none), ``bound`` int64 (largest
    captured length accepted, bytes; -1 for an unusable interface), ``rule`` int32 (index into
    ``rules``: descriptions with the same timestamp rule (if_tsresol, if_tsoffset) share one),
    ``fcslen`` int32 (if_fcslen, bytes; 0 = none given).
    """

    def __init__(self) -> None:
        self.descs: list[_Iface] = []        # the distinct descriptions
        self._desc_of: dict[_Iface, int] = {}
        self.rules: list[_Iface] = []        # one description per distinct timestamp rule
        self._rule_of: dict[tuple[int, int, int], int] = {}
        self._desc = np.zeros(16, np.int32)  # per interface: index into descs
        self._n = 0
        self._last: _Iface | None = None     # the last description added, and its index
        self._last_desc = -1
        self._cols = {"linktype": np.zeros(16, np.int32), "snaplen": np.zeros(16, np.int64),
                      "bound": np.zeros(16, np.int64), "rule": np.zeros(16, np.int32),
                      "fcslen": np.zeros(16, np.int32)}

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> _Iface:
        """The description of interface ``i`` (0 <= i < len; IndexError otherwise)."""
        if not 0 <= i < self._n:
            raise IndexError(i)
        return self.descs[self._desc[i]]

    def append(self, itf: _Iface, count: int = 1) -> None:
        """Add ``count`` interfaces described by ``itf`` (the first one's global index: the
        table's length before)."""
        d = self._last_desc if itf is self._last else self._desc_of.get(itf)
        if d is None:
            d = self._desc_of[itf] = len(self.descs)
            key = (itf.res_base, itf.res_exp, itf.offset_s)
            rule = self._rule_of.get(key)
            if rule is None:
                rule = self._rule_of[key] = len(self.rules)
                self.rules.append(itf)
            c = self._cols
            for k in c:
                c[k] = _grown(c[k], d)
            c["linktype"][d], c["snaplen"][d], c["rule"][d] = itf.linktype, itf.snaplen, rule
            c["bound"][d] = itf.bound if itf.valid else -1
            c["fcslen"][d] = itf.fcslen
            self.descs.append(itf)
        self._last, self._last_desc = itf, d
        n = self._n
        while n + count > len(self._desc):
            self._desc = _grown(self._desc, len(self._desc))
        if count == 1:
            self._desc[n] = d
        else:
            self._desc[n:n + count] = d
        self._n = n + count

    def take(self, name: str, index: np.ndarray) -> np.ndarray:
        """Column ``name`` of the interfaces at ``index`` (global indices, each < len): an array
        shaped as ``index``, of the column's dtype (see the class docstring)."""
        return self._cols[name][self._desc[index]]

    def section(self, start: int, stop: int) -> list[_Iface]:
        """The descriptions of interfaces ``start`` to ``stop - 1`` (one list entry each)."""
        return [self.descs[d] for d in self._desc[start:stop].tolist()]


def _raw_to_ns(raw: np.ndarray, itf: _Iface, notes: dict[str, int]) -> np.ndarray:
    """pcapng 64-bit timestamps (uint64, units of the interface's if_tsresol, §4.2) -> int64
    epoch ns, exact (floor for resolutions finer than 1 ns), plus ``if_tsoffset``. Values that
    do not fit int64 are clamped and counted."""
    off_ns = itf.offset_s * 1_000_000_000
    e = itf.res_exp
    if e > (19 if itf.res_base == 10 else 63) and len(raw):
        # (a unit so small that 2^64 of them span under 2 s: no real clock counts so; a damaged
        # if_tsresol, most likely; the times are still read as it says)
        notes["tsresol_extreme"] = notes.get("tsresol_extreme", 0) + len(raw)
    if _INT64_MIN <= off_ns <= _INT64_MAX:
        room = _INT64_MAX - max(off_ns, 0)          # largest ns value that may still be added
        if itf.res_base == 10 and e <= 9:
            mult = 10 ** (9 - e)
            if int(raw.max(initial=0)) <= room // mult:
                return raw.astype(np.int64) * mult + off_ns
        elif itf.res_base == 10:
            if e - 9 <= 19:                          # 10^19 < 2^64
                ns = raw // np.uint64(10 ** (e - 9))
                if int(ns.max(initial=0)) <= room:
                    return ns.astype(np.int64) + off_ns
        elif e <= 34:
            # raw * 1e9 / 2^e without overflow: whole seconds, then the fraction
            # (r < 2^e, so r * 1e9 < 2^34 * 1e9 < 2^64)
            q = raw >> np.uint64(e)
            r = raw & np.uint64((1 << e) - 1)
            frac = (r * np.uint64(1_000_000_000)) >> np.uint64(e)
            if int(q.max(initial=0)) <= (room - 10**9) // 10**9:
                return q.astype(np.int64) * 1_000_000_000 + frac.astype(np.int64) + off_ns
    # rare: overflow or an exotic resolution -> exact Python integers, clamped
    out = np.empty(len(raw), np.int64)
    nclamp = 0
    for i, x in enumerate(raw.tolist()):
        if itf.res_base == 10:
            v = x * 10 ** (9 - e) if e <= 9 else x // 10 ** (e - 9)
        else:
            v = (x * 1_000_000_000) >> e
        v += off_ns
        if v > _INT64_MAX or v < _INT64_MIN:
            nclamp += 1
            v = fold_ts(v)
        out[i] = v
    if nclamp:
        notes["ts_clamped"] = notes.get("ts_clamped", 0) + nclamp
    return out


class _PcapngParser:
    """Block walk of a pcapng file (draft-ietf-opsawg-pcapng §3-§4)."""

    kind = "pcapng"

    def __init__(self, head: bytes, name: str, at_eof: bool) -> None:
        if len(head) < 12 or (len(head) < 28 and at_eof):
            raise TruncatedCapture(f"{name}: file ends inside the pcapng Section Header Block "
                                   f"({len(head)} of at least 28 bytes)")
        bom = head[8:12]
        if bom not in (_BOM_LE, _BOM_BE):
            # (a damaged byte-order magic: the order in which the block's two lengths agree, as for
            # a later section's, when exactly one does; the walk says so: break-it s53 fuzz #3)
            fits = [o for o in ("<", ">") if 28 <= struct.unpack_from(o + "I", head, 4)[0] <= len(head) - 4
                    and struct.unpack_from(o + "I", head, struct.unpack_from(o + "I", head, 4)[0] - 4)[0]
                    == struct.unpack_from(o + "I", head, 4)[0]]
            if len(fits) != 1:
                raise CorruptCapture(f"{name}: pcapng Section Header Block with a bad byte-order "
                                     f"magic {bom.hex(' ')} (expected 1a 2b 3c 4d in either order)")
            bom = _BOM_LE if fits[0] == "<" else _BOM_BE
        order = "<" if bom == _BOM_LE else ">"
        if len(head) >= 28:
            major, minor = struct.unpack_from(order + "HH", head, 12)
            if major != 1:
                raise UnsupportedFormat(f"{name}: pcapng version {major}.{minor} is not "
                                        "supported (only 1.x)")
        self.name = name
        self.start = 0
        self.ifaces = _IfaceTable()
        self.sec_base = 0          # global index of the current section's interface 0
        self.sec_n = 0             # interfaces defined so far in the current section
        self.sections = 0
        self.last_ts = 0           # ts of the last record with a time (for Simple Packet Blocks)
        self.spb_run = 0           # Simple Packet Blocks read since that record
        self.unknown_types: set[int] = set()   # block types not read (at most 64 kept: the warning)
        self.records = 0           # packet records read so far
        self.notes: dict[str, int] = {}
        self.first_off: dict[str, int] = {}
        #: (global interface index, ISB option code 5 ifdrop / 7 osdrop, EPB option code 4
        #: epb_dropcount summed, 2: the obsolete Packet Block's drops_count summed) -> packets dropped
        self.drops: dict[tuple[int, int], int] = {}
        #: latest end of capture an ISB gives (isb_endtime, else its timestamp), epoch ns
        self.end_ns: int | None = None
        self._set_order(order)

    @property
    def malformed(self) -> int:
        """Packet blocks skipped so far (undefined interface, a Simple Packet Block with no
        interface 0, bad captured length)."""
        return (self.notes.get("unknown_iface", 0) + self.notes.get("spb_no_iface", 0)
                + self.notes.get("malformed_block", 0))

    def _set_order(self, order: str) -> None:
        self.order = order
        #: IDB bytes -> (interface, oddity), in this byte order: see _read_idb
        self._idb_cache: dict[bytes, tuple[_Iface, tuple[str, int] | None]] = {}
        self._u32 = struct.Struct(order + "I").unpack_from
        self._hdr = struct.Struct(order + "II").unpack_from
        self._tail3 = struct.Struct(order + "III").unpack_from
        self._pb = struct.Struct(order + "HHIIII").unpack_from

    def _note(self, key: str, offset: int, count: int = 1) -> None:
        """Count ``count`` oddities of kind ``key``; remember the lowest file offset."""
        self.notes[key] = self.notes.get(key, 0) + count
        self.first_off[key] = min(self.first_off.get(key, offset), offset)

    def _read_idb(self, buf: bytes, pos: int, length: int, base: int, copies: int = 1) -> _Iface:
        """Interface Description Block (§4.2) at ``buf[pos:pos + length]``: link type, snaplen,
        if_tsresol, if_tsoffset, if_fcslen. Blocks with the same bytes are read once
        (:data:`_IDB_CACHE`: a file may hold a million alike, break-it 21 F8); the oddities of
        each are still counted, ``copies`` times (the number of identical blocks from ``pos``)."""
        body = bytes(buf[pos + 8:pos + length - 4])
        hit = self._idb_cache.get(body)
        if hit is None:
            hit = self._parse_idb(body, length)
            if len(self._idb_cache) < _IDB_CACHE:
                self._idb_cache[body] = hit
        itf, oddity = hit
        if oddity is not None:
            self._note(oddity[0], base + pos + oddity[1], copies)
        return itf

    def _parse_idb(self, body: bytes, length: int) -> tuple[_Iface, tuple[str, int] | None]:
        """The interface an IDB's ``body`` (its bytes after the type and length, before the
        trailing length) describes, and its oddity (note key, offset from the block's start) or
        None."""
        order = self.order
        if length < 20:
            return _Iface(-1, 0, valid=False), ("short_idb", 0)
        linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", body, 0)
        lt, res_base, res_exp, offset_s, fcslen = linktype, 10, 6, 0, 0
        oddity = None
        p, end = 8, len(body)
        opt = struct.Struct(order + "HH").unpack_from
        seen: set[int] = set()
        while p + 4 <= end:                       # options (§3.5): code, length, value, pad
            code, olen = opt(body, p)
            if code == 0:                         # opt_endofopt
                break
            if p + 4 + olen > end:
                oddity = ("option_overrun", p + 8)
                break
            # (each option at most once, §4.2; one given again is ignored: the first counts,
            # as in Wireshark)
            if code == 9 and olen >= 1 and code not in seen:      # if_tsresol
                v = body[p + 4]
                res_base, res_exp = (2, v & 0x7F) if v & 0x80 else (10, v)
                seen.add(code)
            elif code == 14 and olen >= 8 and code not in seen:   # if_tsoffset, signed seconds
                (offset_s,) = struct.unpack_from(order + "q", body, p + 4)
                seen.add(code)
            elif code == 13 and olen >= 1 and code not in seen:   # if_fcslen
                fcslen = fcs_option_bytes(body[p + 4])
                seen.add(code)
                if fcslen < 0:                    # a length no link layer has: read whole
                    oddity = oddity or ("fcslen_odd", p + 8)
                    fcslen = 0
                elif fcslen == 4 and linktype <= LT_MASK:
                    lt = linktype | LT_FCS        # if_fcslen 4: the frames end with an FCS
                elif fcslen == 2 and linktype == 1:
                    lt = linktype | LT_FCS2       # if_fcslen 2 (Ethernet): a 2-byte FCS, as tshark takes it
            p += 4 + ((olen + 3) & ~3)
        return _Iface(lt, snaplen, res_base, res_exp, offset_s, fcslen=fcslen), oddity

    def _framed_at(self, buf: bytes, q: int, at_eof: bool, order: str,
                   unpadded: bool = False, rounded: bool = False) -> tuple[bool | None, int]:
        """Whether a well-framed block starts at ``buf[q]`` (§3.1: a known block type, a sane
        length repeated after its body; a Section Header Block in its own byte order) or the
        file ends there: ``(True|False, 0)``, or ``(None, bytes needed from q)`` when ``buf``
        ends before it can be told and more of the file follows. ``unpadded``: a length that
        is not a multiple of 4 is sane too (a writer that leaves out the padding); ``rounded``:
        so is one whose block, padded, spans the length rounded up to a multiple of 4 (its
        trailing length there)."""
        end = len(buf)
        if q == end:
            return (True, 0) if at_eof else (None, 12)
        if q + 12 > end:
            return (False, 0) if at_eof else (None, 12)
        btype, n = struct.unpack_from(order + "II", buf, q)
        if btype == _SHB:
            bom = buf[q + 8:q + 12]
            if bom not in (_BOM_LE, _BOM_BE):
                return False, 0
            order = "<" if bom == _BOM_LE else ">"
            (n,) = struct.unpack_from(order + "I", buf, q + 4)
        elif btype not in _BLOCK_NAMES and btype not in (9,):
            return False, 0
        if n < 12 or (n & 3 and not (unpadded or rounded)) or n > MAX_BLOCK_BYTES:
            return False, 0
        span = (n + 3) & ~3 if rounded else n
        if q + span > end:
            return (False, 0) if at_eof else (None, span)
        return struct.unpack_from(order + "I", buf, q + span - 4)[0] == n, 0

    def _overlong_at(self, buf: bytes, pos: int, blen: int, at_eof: bool,
                     order: str) -> tuple[bool | None, int]:
        """Whether the block at ``buf[pos]``, whose length ``blen`` is 4 bytes more than the
        block: its trailing length (``blen`` or ``blen - 4``) stands at ``pos + blen - 8`` and a
        well-framed block (or the file's end) at ``pos + blen - 4``: ``(True|False, 0)``, or
        ``(None, bytes needed from pos + blen)`` when ``buf`` ends before it can be told."""
        if blen < 16 or pos + blen - 4 > len(buf):
            return False, 0
        if struct.unpack_from(order + "I", buf, pos + blen - 8)[0] not in (blen, blen - 4):
            return False, 0
        q = pos + blen - 4
        ok, more = self._framed_at(buf, q, at_eof, order)
        if ok is False and q + 12 <= len(buf):
            # (the next block over-long too: its trailing length 4 bytes early as well)
            btype, n = struct.unpack_from(order + "II", buf, q)
            if (btype in _BLOCK_NAMES and 16 <= n <= MAX_BLOCK_BYTES and not n & 3):
                if q + n - 4 > len(buf):
                    return (False, 0) if at_eof else (None, n)
                ok = struct.unpack_from(order + "I", buf, q + n - 8)[0] in (n, n - 4)
        return ok, (max(more - 4, 1) if ok is None else 0)

    def _unpadded_at(self, buf: bytes, pos: int, blen: int, at_eof: bool,
                     order: str) -> tuple[bool | None, int, int]:
        """Whether the block at ``buf[pos]``, of length ``blen`` (not a multiple of 4), is framed
        without its padding: its trailing length is ``blen`` and a block follows at ``pos + blen``
        (:meth:`_framed_at`, unpadded too) or the file ends there; or padded as if its length were
        rounded up to a multiple of 4 (its trailing length ``blen`` there, a block after it: a
        writer that pads the block but writes the unpadded length, which Wireshark reads by
        rounding it up): ``(True|False, 0, bytes the block spans)``, or ``(None, bytes needed
        from pos, 0)`` when ``buf`` ends before it can be told."""
        ok, more, span = self._spanning(buf, pos, blen, blen, at_eof, order)
        if ok is not False:
            return ok, more, span
        return self._spanning(buf, pos, blen, (blen + 3) & ~3, at_eof, order)

    def _spanning(self, buf: bytes, pos: int, blen: int, span: int, at_eof: bool,
                  order: str) -> tuple[bool | None, int, int]:
        """:meth:`_unpadded_at` of the block at ``buf[pos]`` read as ``span`` bytes (``blen``:
        unpadded; else its length rounded up): its trailing length ``blen`` at their end, a block
        after them (:meth:`_framed_at`, lengths so written too) or the file's end."""
        if pos + span > len(buf):
            return (False, 0, 0) if at_eof else (None, span + 12, 0)
        if struct.unpack_from(order + "I", buf, pos + span - 4)[0] != blen:
            return False, 0, 0
        ok, more = self._framed_at(buf, pos + span, at_eof, order, unpadded=span == blen, rounded=span != blen)
        return ok, (span + more if ok is None else 0), (span if ok else 0)

    def _read_isb(self, buf: bytes, pos: int, length: int, sec_base: int, sec_n: int) -> None:
        """Interface Statistics Block (§4.6): the packets the interface (``isb_ifdrop``) and the
        capture's buffer (``isb_osdrop``) dropped, kept per interface as the largest count seen
        (the counters run from the capture's start; a tool may write several blocks)."""
        if length < 24:
            return
        (ifid,) = self._u32(buf, pos + 8)
        if ifid >= sec_n:
            return
        itf = self.ifaces[sec_base + ifid]
        hi, lo = self._hdr(buf, pos + 12)
        stamp = (hi << 32) | lo
        p, end = pos + 20, pos + length - 4
        opt = struct.Struct(self.order + "HH").unpack_from
        u64 = struct.Struct(self.order + "Q").unpack_from
        while p + 4 <= end:
            code, olen = opt(buf, p)
            if code == 0 or p + 4 + olen > end:
                break
            if code == 3 and olen == 8:           # isb_endtime: (high, low) as the block's own
                hi, lo = self._hdr(buf, p + 4)
                stamp = (hi << 32) | lo
            if code in (5, 7) and olen == 8:      # isb_ifdrop, isb_osdrop
                key, v = (sec_base + ifid, code), u64(buf, p + 4)[0]
                if v < 1 << 48:                       # (all ones and the like: no count)
                    self.drops[key] = max(self.drops.get(key, 0), v)
            p += 4 + ((olen + 3) & ~3)
        if stamp and itf.valid:
            ns = int(_raw_to_ns(np.array([stamp], np.uint64), itf, {})[0])
            if itf.res_base == 10 and itf.res_exp == 9 and 0 < ns < _ISB_US_BEFORE_NS:
                # dumpcap 4.0 writes its ISB times in µs whatever the interface's if_tsresol:
                # under a ns resolution they read as January 1970
                ns *= 1000
            self.end_ns = ns if self.end_ns is None else max(self.end_ns, ns)

    def walk(self, buf: bytes, pos: int, at_eof: bool, base: int) -> _Walk:
        """Walk the blocks in ``buf[pos:]`` (contract: :class:`_Walk`).

        Enhanced Packet Blocks take a fast path: the loop checks only their framing (type,
        length, trailing length: §3.1) and notes where they are; their fields are gathered and
        checked afterwards with numpy (:meth:`_epb_columns`). Every other block, and an EPB
        that fails a framing check, goes through the full checks one by one.
        """
        end = len(buf)
        epbs = array("q")                 # positions of Enhanced Packet Blocks
        eapp = epbs.append
        # segments: (first index in epbs, section's interface 0 global index, interfaces
        # defined, 1 for big endian), as arrays (a million IDBs: a million segments)
        # (a new segment when the interfaces or the section change; the last one replaced
        # when no EPB belongs to it)
        seg_i0, seg_base, seg_n = array("q", [0]), array("q", [self.sec_base]), array("q", [self.sec_n])
        seg_big = array("b", [self.order == ">"])
        segs = (seg_i0, seg_base, seg_n, seg_big)
        O_if, O_hi, O_lo = array("i"), array("I"), array("I")  # Simple / obsolete Packet Blocks
        O_off, O_cl, O_wl, O_spb = array("q"), array("I"), array("I"), array("b")
        u32, hdr = self._u32, self._hdr
        ifaces = self.ifaces
        sec_base, sec_n = self.sec_base, self.sec_n
        maxb = MAX_BLOCK_BYTES
        need = 0
        stop: _Stop | None = None
        while True:
            # fast path: a run of well-framed EPBs
            pos = self._epb_run(buf, pos, epbs)
            # slow path: one block of any kind, every check spelled out
            left = end - pos
            if left < 12:
                if left == 0:
                    break
                need = 12
                if at_eof:
                    stop = _Stop(base + pos, f"file cut mid-block at offset {base + pos}: "
                                 f"{left} of at least 12 block-header bytes present", 0, cut=True)
                break
            btype, blen = hdr(buf, pos)
            if btype == 1 and 20 <= blen <= left and not blen & 3 and blen <= maxb \
                    and u32(buf, pos + blen - 4)[0] == blen:
                # a well-framed Interface Description Block, and the copies of it that follow
                # (a file may hold a million alike: break-it 21 F8), added at once
                block, q = buf[pos:pos + blen], pos + blen
                while buf[q:q + blen] == block:
                    q += blen
                k = (q - pos) // blen
                ifaces.append(self._read_idb(buf, pos, blen, base, k), k)
                sec_n += k
                if seg_i0[-1] == len(epbs):
                    seg_base[-1], seg_n[-1], seg_big[-1] = sec_base, sec_n, self.order == ">"
                else:
                    seg_i0.append(len(epbs)); seg_base.append(sec_base); seg_n.append(sec_n)
                    seg_big.append(self.order == ">")
                pos = q
                continue
            new_order = self.order
            if btype == _SHB:
                bom = buf[pos + 8:pos + 12]
                if bom not in (_BOM_LE, _BOM_BE):
                    # a damaged byte-order magic: the order in which the block's leading and
                    # trailing lengths agree and the next block is well framed (break-it 27 F2)
                    fits = []
                    for o in ("<", ">"):
                        (n,) = struct.unpack_from(o + "I", buf, pos + 4)
                        if not 28 <= n <= maxb or n & 3:
                            continue
                        if n > left:
                            if not at_eof:      # (not all read yet: read on first)
                                fits.append((o, n, (None, 12)))
                        elif struct.unpack_from(o + "I", buf, pos + n - 4)[0] == n:
                            fits.append((o, n, self._framed_at(buf, pos + n, at_eof, o)))
                    if any(f[2][0] is None for f in fits):
                        need = max(f[1] + f[2][1] for f in fits)
                        break
                    fits = [f for f in fits if f[2][0]]
                    if len(fits) != 1:
                        stop = _Stop(base + pos, f"damaged Section Header Block at offset {base + pos}"
                                     f" (byte-order magic {bom.hex(' ')})", 0)
                        break
                    new_order = fits[0][0]
                    self._note("bad_bom_le" if new_order == "<" else "bad_bom_be", base + pos)
                else:
                    new_order = "<" if bom == _BOM_LE else ">"
                (blen,) = struct.unpack_from(new_order + "I", buf, pos + 4)
            lost = 1 if btype in _PACKET_BLOCKS else 0
            bad = None
            rounded = False
            bname = _BLOCK_NAMES.get(btype) or f"block type 0x{btype:08x}"
            if blen < 12 or blen % 4:
                bad = f"block length {blen} is {'< 12' if blen < 12 else 'not a multiple of 4'}"
                if blen >= (28 if btype == _SHB else 12) and blen <= maxb:
                    # a block whose writer left out the padding (§3.1 asks for a length that is
                    # a multiple of 4; some writers give the body's own length): read when its
                    # trailing length repeats it and a well-framed block (or the file's end)
                    # follows it, as every block after it then is; Wireshark refuses the file
                    ok, more, span = self._unpadded_at(buf, pos, blen, at_eof, new_order)
                    if ok is None:
                        need = more
                        break
                    if ok:
                        bad = None
                        if span != blen:        # (padded: its trailing length holds blen)
                            blen, rounded = span, True
                            self._note("rounded", base + pos)
                        else:
                            self._note("unpadded", base + pos)
            elif blen > maxb:
                bad = f"block length {blen} > {maxb}"
            elif btype == _SHB and blen < 28:
                bad = f"block length {blen} < 28"
            if bad:
                stop = _Stop(base + pos, f"damaged {bname} at offset {base + pos} ({bad})", lost)
                break
            if blen > left and at_eof and blen - 4 == left and self._overlong_at(buf, pos, blen, True,
                                                                                    new_order)[0]:
                blen -= 4                       # the last block 4 bytes over-long (etl2pcapng 1.4.0)
                self._note("overlong", base + pos)
                shortened = True
            else:
                shortened = False
            if blen > left:
                need = blen
                if at_eof:
                    stop = _Stop(base + pos, f"file cut mid-block at offset {base + pos}: "
                                 f"{left} of {blen} bytes of the {bname} present", lost, cut=True)
                break
            (trail,) = struct.unpack_from(new_order + "I", buf, pos + blen - 4)
            if shortened or rounded:
                trail = blen
            if trail != blen and blen >= 16:
                # a block whose length is 4 bytes more than the block (etl2pcapng 1.4.0 writes
                # so): its trailing length 4 bytes early and a well-framed block (or the file's
                # end) 4 bytes early too; read by the shorter length, counted in one warning
                ok, more = self._overlong_at(buf, pos, blen, at_eof, new_order)
                if ok is None:
                    need = blen + more
                    break
                if ok:
                    blen -= 4
                    trail = blen
                    self._note("overlong", base + pos)
            if trail != blen:
                # an Interface Description Block whose trailing length alone is wrong (its
                # leading length leads to a well-framed block) is read, with a warning: the
                # packets after it need it (break-it 27 F1; Wireshark-tolerant readers do so);
                # the file's first Section Header Block likewise, when a block follows it (break-it
                # s53 fuzz #3: one bit of it made an intact file unusable; a later one is read past
                # as damage, its blocks after it read on in the section before)
                first_shb = btype == _SHB and base + pos == 0 and blen >= 28 and pos + blen + 12 <= len(buf)
                ok, more = (self._framed_at(buf, pos + blen, at_eof, new_order if btype == _SHB else self.order)
                            if (btype == _IDB and blen >= 20) or first_shb else (False, 0))
                if ok is None:
                    need = blen + more
                    break
                if not ok:
                    stop = _Stop(base + pos, f"damaged {bname} at offset {base + pos} (trailing "
                                 f"length {trail} != block length {blen})", lost)
                    break
                self._note("shb_trailer" if btype == _SHB else "idb_trailer", base + pos)
            if btype == _EPB:
                if blen < 32:
                    self._note("malformed_block", base + pos)
                else:
                    eapp(pos)
            elif btype == _SPB:
                if sec_n == 0:                  # (an SPB names no interface: it is interface 0's)
                    self._note("spb_no_iface", base + pos)
                elif not ifaces[sec_base].valid:
                    self._note("unknown_iface", base + pos)
                elif blen < 16:
                    self._note("malformed_block", base + pos)
                else:
                    (wl,) = u32(buf, pos + 8)
                    snap = ifaces[sec_base].snaplen
                    cl = min(wl, snap) if snap else wl  # §4.4: min(snaplen, original length)
                    if cl > blen - 16:
                        # (its block too short for the bytes it must hold: damaged, as Wireshark
                        # says, not an empty record or a snaplen cut)
                        self._note("malformed_block", base + pos)
                    else:
                        O_if.append(sec_base); O_hi.append(0); O_lo.append(0); O_off.append(pos + 12)
                        O_cl.append(cl); O_wl.append(wl); O_spb.append(1)
            elif btype == _PB:
                if blen < 32:
                    self._note("malformed_block", base + pos)
                else:
                    ifid, drops, hi, lo, cl, wl = self._pb(buf, pos + 8)
                    if ifid >= sec_n or not ifaces[sec_base + ifid].valid:
                        self._note("unknown_iface", base + pos)
                    elif cl > blen - 32 or cl > ifaces[sec_base + ifid].bound:
                        self._note("malformed_block", base + pos)
                    else:
                        if drops and drops != 0xFFFF:   # (the packets lost before this one; 0xFFFF: not known)
                            key = (sec_base + ifid, 2)
                            self.drops[key] = self.drops.get(key, 0) + drops
                        O_if.append(sec_base + ifid); O_hi.append(hi); O_lo.append(lo)
                        O_off.append(pos + 28); O_cl.append(cl); O_wl.append(wl); O_spb.append(0)
            elif btype == _ISB:
                self._read_isb(buf, pos, blen, sec_base, sec_n)
            elif btype == _IDB:                 # (one shorter than 20 bytes: unusable)
                ifaces.append(self._read_idb(buf, pos, blen, base))
                sec_n += 1
                if seg_i0[-1] == len(epbs):
                    seg_base[-1], seg_n[-1], seg_big[-1] = sec_base, sec_n, self.order == ">"
                else:
                    seg_i0.append(len(epbs)); seg_base.append(sec_base); seg_n.append(sec_n)
                    seg_big.append(self.order == ">")
            elif btype == _SHB:
                major, minor = struct.unpack_from(new_order + "HH", buf, pos + 12)
                if major != 1:
                    stop = _Stop(base + pos, f"Section Header Block at offset {base + pos} has "
                                 f"unsupported version {major}.{minor}", 0)
                    break
                if new_order != self.order:
                    self._set_order(new_order)
                    u32, hdr = self._u32, self._hdr
                at = _option_overrun(buf, pos + 24, pos + blen - 4, new_order)
                if at is not None:
                    self._note("shb_option_overrun", base + at)
                sec_base, sec_n = len(ifaces), 0
                self.sections += 1
                if seg_i0[-1] == len(epbs):
                    seg_base[-1], seg_n[-1], seg_big[-1] = sec_base, sec_n, self.order == ">"
                else:
                    seg_i0.append(len(epbs)); seg_base.append(sec_base); seg_n.append(sec_n)
                    seg_big.append(self.order == ">")
            elif btype not in _QUIET_BLOCKS:
                # (a block type this reader does not read: skipped as pcapng §3.1 says, counted)
                self._note("unknown_block", base + pos)
                if len(self.unknown_types) < 64:
                    self.unknown_types.add(btype)
            pos += blen
        self.sec_base, self.sec_n = sec_base, sec_n
        parts = [self._epb_columns(buf, epbs, segs, base)]
        if len(O_if):
            parts.append((np.frombuffer(O_if, np.int32),
                          (np.frombuffer(O_hi, np.uint32).astype(np.uint64) << np.uint64(32))
                          | np.frombuffer(O_lo, np.uint32).astype(np.uint64),
                          np.frombuffer(O_off, np.int64), np.frombuffer(O_cl, np.uint32),
                          np.frombuffer(O_wl, np.uint32), np.frombuffer(O_spb, np.int8) != 0,
                          np.zeros(len(O_if), np.int32),
                          ifaces.take("fcslen", np.frombuffer(O_if, np.int32))))
        return _Walk(pos, need, stop, self._columns(parts, buf))

    def _epb_run(self, buf: bytes, pos: int, epbs: array) -> int:
        """Append to ``epbs`` the positions of the run of well-framed Enhanced Packet Blocks
        from ``pos`` on (type 6, 32 <= length <= MAX_BLOCK_BYTES, a multiple of 4, trailing
        length equal, and the next block's header in ``buf``); return where the run stops.
        Compiled (:mod:`._walk`) when built."""
        if _walk is not None:
            raw, pos = _walk.pcapng_epb_run(buf, pos, MAX_BLOCK_BYTES, self.order == ">")
            epbs.frombytes(raw)
            return pos
        return self._epb_run_py(buf, pos, epbs)

    def _epb_run_py(self, buf: bytes, pos: int, epbs: array) -> int:
        """:meth:`_epb_run` in Python (the fallback, and the compiled loop's reference)."""
        hdr, tail3, eapp, maxb = self._hdr, self._tail3, epbs.append, MAX_BLOCK_BYTES
        # No bounds test: an unpack past the end of buf raises struct.error, and the run
        # stops there. One unpack per block: its trailing length together with the next
        # block's header.
        try:
            btype, blen = hdr(buf, pos)
            while btype == 6 and 32 <= blen <= maxb and not blen & 3:
                trail, next_type, next_len = tail3(buf, pos + blen - 4)
                if trail != blen:
                    break
                eapp(pos)
                pos += blen
                btype, blen = next_type, next_len
        except struct.error:
            pass
        return pos

    def _epb_columns(self, buf: bytes, epbs: array, segs: tuple[array, array, array, array],
                     base: int) -> tuple[np.ndarray, ...]:
        """Fields of the Enhanced Packet Blocks at ``epbs`` (§4.3), gathered with numpy for all
        the blocks at once (one pass per byte order, not one per segment: a file that alternates
        IDBs and EPBs has as many segments as blocks, break-it 21 F8). ``segs``: arrays (first
        index in ``epbs``, the section's interface 0 global index, interfaces defined, 1 for big
        endian) of the segments (same section, same interfaces defined), in order; a block
        belongs to the last segment starting at or before it. Blocks naming an undefined
        interface or with a captured length beyond the block / the sanity bound are dropped and
        counted in the notes. Returns (iface index, raw ts, data offset, caplen, wirelen, spb,
        link-type flag bits)."""
        p = np.frombuffer(epbs, np.int64)
        n = len(p)
        if not n:
            return _empty_parts()
        s_i0, s_base, s_n, s_big = (np.frombuffer(a, dt) for a, dt in
                                    zip(segs, (np.int64, np.int64, np.int64, np.int8)))
        if len(s_i0) == 1:
            sbase, sn, big = s_base, s_n, s_big
        else:
            seg = np.searchsorted(s_i0, np.arange(n), side="right") - 1
            sbase, sn, big = s_base[seg], s_n[seg], s_big[seg]
        at = (4, 8, 12, 16, 20, 24)                  # blen, ifid, ts high, ts low, caplen, wirelen
        if (s_big == s_big[0]).all():               # (one byte order: the usual file)
            order = ">" if s_big[0] else "<"
            v = _u32_view(buf, order)
            fields = [v[p + a] for a in at]
            ltbits, efcs, over, drops = _epb_flag_bits(v, p, fields[4], fields[0].astype(np.int64), order)
            if len(over):
                self._note("epb_option_overrun", base + int(over.min()), len(over))
        else:
            fields = [np.empty(n, np.uint32) for _ in at]
            ltbits, efcs, drops = np.empty(n, np.int32), np.empty(n, np.int32), np.zeros(n, np.int64)
            for b, order in ((0, "<"), (1, ">")):
                sel = np.flatnonzero(big == b)
                v = _u32_view(buf, order)
                ps = p[sel]
                for col, a in zip(fields, at):
                    col[sel] = v[ps + a]
                ltbits[sel], efcs[sel], over, drops[sel] = _epb_flag_bits(v, ps, fields[4][sel],
                                                                          fields[0][sel].astype(np.int64), order)
                if len(over):
                    self._note("epb_option_overrun", base + int(over.min()), len(over))
        blen_u, ifid_u, hi, lo, cl, wl = fields
        blen, ifid = blen_u.astype(np.int64), ifid_u.astype(np.int64)
        known = ifid < sn
        g = np.where(known, sbase + ifid, 0)
        gbound = self.ifaces.take("bound", g)
        known &= gbound >= 0
        if drops.any():     # (epb_dropcount: the packets lost before each block, summed per interface)
            at_d = np.flatnonzero((drops > 0) & known)
            ifs, inv = np.unique(g[at_d], return_inverse=True)
            for i, total in zip(ifs.tolist(), np.bincount(inv, weights=drops[at_d]).tolist()):
                key = (int(i), 4)
                self.drops[key] = self.drops.get(key, 0) + int(total)
        ok = known & (cl <= blen - 32) & (cl <= gbound)
        if not ok.all():
            for key, badmask in (("unknown_iface", ~known), ("malformed_block", known & ~ok)):
                nb = int(np.count_nonzero(badmask))
                if nb:
                    self._note(key, base + int(p[badmask][0]), nb)
            p, g, cl, wl, hi, lo, ltbits, efcs = p[ok], g[ok], cl[ok], wl[ok], hi[ok], lo[ok], \
                ltbits[ok], efcs[ok]
        raw = (hi.astype(np.uint64) << np.uint64(32)) | lo.astype(np.uint64)
        # the FCS length: the block's epb_flags when they give one, else the interface's if_fcslen
        fcs = np.where(efcs > 0, efcs, self.ifaces.take("fcslen", g))
        return (g.astype(np.int32), raw, p + 28, cl, wl, np.zeros(len(p), bool), ltbits, fcs)

    def _columns(self, parts: list[tuple[np.ndarray, ...]], buf) -> dict[str, np.ndarray]:
        """Frames columns from (iface index, raw ts, data offset, caplen, wirelen, is-SPB,
        link-type flag bits, FCS length) parts, in file order; ``buf``: the bytes the data
        offsets are in (an ERF record's flags are read there)."""
        if len(parts) == 1:
            gi, raw, off, cl, wl, spb, ltbits, fcs = parts[0]
        else:
            gi, raw, off, cl, wl, spb, ltbits, fcs = (np.concatenate(c) for c in zip(*parts))
            order = np.argsort(off, kind="stable")
            gi, raw, off, cl, wl, spb, ltbits, fcs = gi[order], raw[order], off[order], cl[order], \
                wl[order], spb[order], ltbits[order], fcs[order]
        n = len(gi)
        if n == 0:
            return _empty_cols()
        ts = np.zeros(n, np.int64)
        has_ts = ~spb
        ifaces = self.ifaces
        # records grouped by their interface's timestamp rule, each group converted at once
        # (one sort of the records: not one pass over them per interface, as before)
        at_ts = np.flatnonzero(has_ts)
        rule = ifaces.take("rule", gi[at_ts])
        if len(at_ts) == n and (rule == rule[0]).all():
            ts = _raw_to_ns(raw, ifaces.rules[int(rule[0])], self.notes)
        elif len(at_ts):
            order = np.argsort(rule, kind="stable")
            rule, at_ts = rule[order], at_ts[order]
            cuts = np.flatnonzero(rule[1:] != rule[:-1]) + 1
            for a, b in zip([0, *cuts.tolist()], [*cuts.tolist(), len(rule)]):
                sel = at_ts[a:b]
                ts[sel] = _raw_to_ns(raw[sel], ifaces.rules[int(rule[a])], self.notes)
        self.records += n
        if spb.any():
            # Simple Packet Blocks carry no time (§4.4): the time of the last record that has
            # one (0 when none has) plus 1 ns per Simple Packet Block since it, so that they
            # keep their file order (equal times would be ordered by content: flows._flow_order)
            at = np.arange(n)
            idx = np.maximum.accumulate(np.where(spb, -1, at))
            prev = np.where(idx >= 0, ts[np.maximum(idx, 0)], self.last_ts)
            step = np.where(idx >= 0, at - idx, at + 1 + self.spb_run)
            ts = np.where(spb, np.where(prev > _INT64_MAX - step, _INT64_MAX, prev + step), ts)
            nspb = int(np.count_nonzero(spb))
            self.notes["no_ts"] = self.notes.get("no_ts", 0) + nspb
            if idx[-1] >= 0:
                self.last_ts, self.spb_run = int(ts[idx[-1]]), int(n - 1 - idx[-1])
            else:
                self.spb_run += n
        else:
            self.last_ts, self.spb_run = int(ts[-1]), 0
        snap = ifaces.take("snaplen", gi)
        nover = int(np.count_nonzero((snap > 0) & (cl > snap)))
        if nover:
            self.notes["over_snaplen"] = self.notes.get("over_snaplen", 0) + nover
        nshort = int(np.count_nonzero(wl < cl))
        if nshort:
            self.notes["wirelen_short"] = self.notes.get("wirelen_short", 0) + nshort
        over = fcs > cl
        if over.any():
            # an FCS longer than the frame (if_fcslen / epb_flags): a wrong length field, not an
            # FCS; the frame is read without one (break-it 22 F6: tshark reads it as malformed)
            self.notes["fcs_overlong"] = self.notes.get("fcs_overlong", 0) + int(np.count_nonzero(over))
            self.notes["fcs_overlong_max"] = max(self.notes.get("fcs_overlong_max", 0), int(fcs[over].max()))
        lt = ifaces.take("linktype", gi)
        if ltbits.any():
            lt = np.where(lt >= 0, lt | ltbits, lt)   # (not an unusable interface's -1)
        erf = np.flatnonzero((lt & LT_MASK) == LINKTYPE_ERF)
        if len(erf):
            lt[erf[_erf_rx_errors(buf, off[erf], cl[erf])]] |= LT_DAMAGED
        return {"ts_ns": ts, "linktype": lt, "offset": off.astype(np.int64),
                "caplen": cl.astype(np.int32), "wirelen": _clamp_wirelen(wl, self.notes)}

    def summary(self) -> list[str]:
        """Warning lines (without the file name) for oddities counted over the whole file."""
        n, f = self.notes, self.first_off
        out = []
        if n.get("unknown_iface"):
            out.append(f"{_plural(n['unknown_iface'], 'packet block')} "
                       f"{'names' if n['unknown_iface'] == 1 else 'name'} an interface not defined in "
                       f"{'its' if n['unknown_iface'] == 1 else 'their'} section (first at offset {f['unknown_iface']}); skipped")
        if n.get("spb_no_iface"):
            k = n["spb_no_iface"]
            out.append(f"{_plural(k, 'Simple Packet Block')} before any Interface Description Block of "
                       f"{'its' if k == 1 else 'their'} section (first at offset {f['spb_no_iface']}): a Simple "
                       "Packet Block is interface 0's, which gives its link type, and there was none; skipped")
        if n.get("unknown_block"):
            k = n["unknown_block"]
            kinds = sorted(self.unknown_types)
            types = ", ".join(f"0x{t:08x}" for t in kinds[:4]) + (f" and {len(kinds) - 4} more types" if len(kinds) > 4 else "")
            out.append(f"{_plural(k, 'block')} of a type this reader does not know ({types}; first at offset "
                       f"{f['unknown_block']}) skipped, as pcapng asks: a damaged block type (a packet block's?), "
                       "or a newer writer's block")
        if n.get("malformed_block"):
            out.append(f"{_plural(n['malformed_block'], 'malformed packet block')} (captured length beyond "
                       f"the block or the sanity bound; first at offset "
                       f"{f['malformed_block']}); skipped")
        if n.get("fcslen_odd"):
            out.append(fcslen_odd_note(n["fcslen_odd"]))
        if n.get("short_idb"):
            out.append(f"{_plural(n['short_idb'], 'Interface Description Block')} too short to read "
                       f"(first at offset {f['short_idb']}); their packets skipped")
        if n.get("unpadded"):
            k = n["unpadded"]
            out.append(f"{_plural(k, 'block')} without the padding pcapng asks for (a length that is not "
                       f"a multiple of 4, first at offset {f['unpadded']}) read by "
                       f"{'its' if k == 1 else 'their'} length, as the blocks after "
                       f"{'it' if k == 1 else 'them'} are well framed (the tool that wrote the file leaves "
                       "the padding out; Wireshark refuses such a file)")
        if n.get("rounded"):
            k = n["rounded"]
            out.append(f"{_plural(k, 'block')} whose block length is not a multiple of 4 though the block "
                       f"is padded to one (first at offset {f['rounded']}) read by "
                       f"{'its' if k == 1 else 'their'} length rounded up, as Wireshark reads "
                       f"{'it' if k == 1 else 'them'}: the blocks after {'it' if k == 1 else 'them'} are "
                       "well framed")
        if n.get("overlong"):
            k = n["overlong"]
            out.append(f"{_plural(k, 'block')} whose block length is 4 bytes more than the block "
                       f"(first at offset {f['overlong']}) read by {'its' if k == 1 else 'their'} "
                       "trailing length, as the blocks after them are well framed (etl2pcapng 1.4.0 "
                       "writes such files)")
        if n.get("shb_trailer"):
            out.append(f"{_plural(n['shb_trailer'], 'Section Header Block')} with a damaged "
                       f"trailing length (first at offset {f['shb_trailer']}) read by "
                       f"{'its' if n['shb_trailer'] == 1 else 'their'} leading length (the blocks "
                       "after it are well framed)")
        if n.get("idb_trailer"):
            out.append(f"{_plural(n['idb_trailer'], 'Interface Description Block')} with a damaged "
                       f"trailing length (first at offset {f['idb_trailer']}) read by "
                       f"{'its' if n['idb_trailer'] == 1 else 'their'} leading length (the blocks "
                       "after it are well framed)")
        for key, order in (("bad_bom_le", "little"), ("bad_bom_be", "big")):
            if n.get(key):
                out.append(f"{_plural(n[key], 'Section Header Block')} with a damaged byte-order "
                           f"magic (first at offset {f[key]}) read as {order}-endian, the order in "
                           "which its block lengths agree")
        if n.get("option_overrun"):
            out.append(f"{_plural(n['option_overrun'], 'interface option')} "
                       f"{'overruns its' if n['option_overrun'] == 1 else 'overrun their'} block (first at "
                       f"offset {f['option_overrun']}); the rest of those options ignored")
        for key, what in (("epb_option_overrun", "Enhanced Packet Block option"),
                          ("shb_option_overrun", "Section Header Block option")):
            if n.get(key):
                out.append(f"{_plural(n[key], what)} {'overruns its' if n[key] == 1 else 'overrun their'} "
                           f"block (first at offset {f[key]}); the rest of those options ignored"
                           + (" (the packets are read)" if key[0] == "e" else ""))
        if n.get("over_snaplen"):
            out.append(f"{_records(n['over_snaplen'])} longer than their interface's snaplen "
                       "(kept)")
        if n.get("ts_clamped"):
            out.append(f"{_plural(n['ts_clamped'], 'timestamp')} {TS_RANGE_TEXT} ({TS_FOLDED_TEXT})")
        if n.get("tsresol_extreme"):
            k = n["tsresol_extreme"]
            out.append(f"{_records(k)} on interfaces whose if_tsresol is finer than 10^-19 s or 2^-63 s "
                       "(a 64-bit timestamp then spans under 2 s: a damaged option, most likely): "
                       f"{'their' if k != 1 else 'its'} times are read as it says, all within seconds of "
                       "1970-01-01 00:00:00 UTC, so flow times and durations are not real")
        lost = sum(self.drops.values())
        if lost:
            where = "; ".join(f"interface {i}: {v:,} ({_DROP_FIELDS[code]})"
                              for (i, code), v in sorted(self.drops.items()) if v)
            out.append(f"the capture tool reports {lost:,} packet{'s' if lost != 1 else ''} dropped, not "
                       f"written to the file ({where}): flows may miss packets, and a connection shown "
                       "as unanswered or with gaps may be the capture's loss, not the network's")
        if n.get("fcs_overlong"):
            out.append(fcs_overlong_note(n["fcs_overlong"], n["fcs_overlong_max"]))
        if n.get("no_ts"):
            out.append(no_timestamp_note(n["no_ts"], self.records))
        out.extend(_common_notes(n))
        return out


def fcs_option_bytes(value: int) -> int:
    """The FCS length in bytes a pcapng ``if_fcslen`` option's ``value`` gives, or -1 when it is
    none a link layer has.

    The pcapng draft says the option counts bits, and gives 4 as its example; writers put bytes
    (4: Ethernet's FCS) and some bits (32). Read as Wireshark 4.0 reads it (tshark, measured
    over 1-255: below 8 a count of bytes, from 8 on of bits): 0, 2 and 4 are bytes, 16 and 32
    bits (2 and 4 bytes). Any other value (1, 3, 8, 255…) gives an FCS of no link layer: -1."""
    if value in (0, 2, 4):
        return value
    if value in (16, 32):
        return value // 8
    return -1


def fcslen_odd_note(count: int) -> str:
    """The warning line (without the file name) for ``count`` pcapng Interface Description
    Blocks whose ``if_fcslen`` gives a length no link layer has (:func:`fcs_option_bytes`):
    ignored, their frames read whole."""
    s = "s" if count != 1 else ""
    return (f"{count:,} Interface Description Block{s} with an FCS length (if_fcslen) {FCSLEN_ODD_TEXT} "
            "(not 0, 2 or 4 bytes, nor 16 or 32 bits): ignored, the frames are read whole")


#: the words by which :func:`fcslen_odd_note`'s line is found among the warnings
FCSLEN_ODD_TEXT = "no link layer has"


def fcs_overlong_note(count: int, longest: int) -> str:
    """The warning line (without the file name) for ``count`` pcapng records whose FCS length
    (the interface's ``if_fcslen``, or the block's ``epb_flags``) is longer than the record's
    captured bytes (``longest``: the largest such length, bytes). The built-in reader reads them
    without an FCS; the tshark engine gives the same line (and reads them so too)."""
    s = "s" if count != 1 else ""
    return (f"{count:,} frame{s} whose FCS length in the file (if_fcslen or epb_flags, up to {longest} "
            f"bytes) {FCS_OVERLONG_TEXT}: a wrong length, the frame{s} read without an FCS "
            "(Wireshark shows such frames as malformed)")


#: the words by which :func:`fcs_overlong_note`'s line is found among the warnings
FCS_OVERLONG_TEXT = "is longer than the frame itself"


def no_timestamp_note(count: int, records: int, what: str = "packets in Simple Packet Blocks") -> str:
    """The warning line (without the file name) for ``count`` of ``records`` packets that carry
    no timestamp (pcapng Simple Packet Blocks, §4.4): each is timed 1 ns after the last packet
    with a time (after 0, 1970-01-01, when none came before), so they keep their file order.
    The tshark engine gives the same line (``what``: how the packets are named, plural; one
    packet is said in the singular)."""
    one = count == 1
    if one:
        what = _SINGULAR.get(what, what)
    said = f"{count:,} {what} {'carries' if one else 'carry'} no timestamp"
    if count == records:
        return (f"{said} (every packet of the capture): {'it is' if one else 'each is'} "
                "timed 1 ns after the packet before it, from 1970-01-01 00:00:00 UTC, so "
                f"{'it keeps its' if one else 'they keep their'} file order; flow times and durations are not real, the time rules (3 s "
                "without an answer, idle timeouts, the 5 s close delay) cannot apply, and no flow ends "
                "by time, so a large capture's flows are all held in memory")
    return (f"{said}: {'it is' if one else 'each is'} timed 1 ns after the packet before "
            f"it, so {'it keeps its' if one else 'they keep their'} file order; the times and durations of "
            f"{'its flow are' if one else 'their flows are'} approximate (from 1970-01-01 00:00:00 UTC when no "
            f"packet before {'it' if one else 'them'} has a time)")


#: :func:`no_timestamp_note`'s names of the packets, for one packet
_SINGULAR = {"packets in Simple Packet Blocks": "packet in a Simple Packet Block", "frames": "frame"}


# ---------------------------------------------------------------------------------------------
# Driver


def _sniff(head: bytes, name: str, at_eof: bool) -> _PcapParser | _PcapngParser:
    """Pick the parser from the first bytes; raise for non-captures and truncated headers."""
    if not head:
        raise TruncatedCapture(f"{name}: empty file (0 bytes), no capture header")
    m = head[:4]
    if m in _PCAP_MAGICS:
        return _PcapParser(head, name)
    if m == _PCAPNG_MAGIC:
        return _PcapngParser(head, name, at_eof)
    if len(head) < 4 and any(k.startswith(head) for k in (*_PCAP_MAGICS, _PCAPNG_MAGIC)):
        raise TruncatedCapture(f"{name}: file ends inside the capture header "
                               f"({len(head)} bytes: {head.hex(' ')})")
    _text_mode_header(head, name)
    known = known_format(head)
    hint = None if known is None else _TSHARK_HINTS.get(known[0], f"{known[1]}: {known[2]}")
    if hint is None:
        # (a compressed file is read decompressed: these first bytes are of a second layer)
        hint = next((f"compressed twice, the inner layer {codec}: decompress it once first"
                     for k, codec in CODEC_MAGICS.items() if head.startswith(k)), None)
    if hint is None and name.lower().endswith(".etl"):
        # (an ETW trace has no fixed magic: its name tells it; newcomer 27 F8)
        hint = ("a Windows event trace (.etl from pktmon or netsh trace), not a capture: convert it first, "
                "`pktmon etl2pcap FILE.etl --out FILE.pcapng` (netsh trace files: Microsoft's etl2pcapng)")
    if hint is None:
        text = head[:8].decode("latin-1")
        printable = all(32 <= ord(c) < 127 or c in "\r\n\t" for c in text)
        hint = f"looks like text {text[:8]!r}" if printable else \
            "neither pcap nor pcapng, plain or compressed; if Wireshark opens it, use --engine tshark"
    raise UnsupportedFormat(f"{name}: not a pcap or pcapng capture: magic bytes "
                            f"{head[:4].hex(' ')} ({hint})")


def _text_mode_header(head: bytes, name: str) -> None:
    """Raise :class:`CorruptCapture` naming a text-mode transfer when the first bytes of a file
    that are no capture magic are one changed by it: a pcapng Section Header Block's ``0a 0d 0d
    0a`` with each LF written as CR LF (``0d 0a 0d 0d 0d 0a``: FTP ASCII mode from Unix to
    Windows) or each CR LF as LF (``0a 0d 0a``: the other way), or a line break (CR LF or LF)
    before a pcap or pcapng file header (a transfer or a web upload that added one). The data is
    not repaired: the file must be fetched again."""
    magics = (*_PCAP_MAGICS, _PCAPNG_MAGIC)
    if head.startswith(b"\r\n\r\r\r\n"):
        raise CorruptCapture(f"{name}: {ASCII_MODE_TEXT} (magic bytes {head[:6].hex(' ')}: a pcapng "
                             "file starts 0a 0d 0d 0a)")
    if head.startswith(b"\n\r\n") and not head.startswith(_PCAPNG_MAGIC):
        raise CorruptCapture(f"{name}: the file looks transferred in ASCII mode (each CR LF became LF): "
                             f"transfer it again in binary mode (magic bytes {head[:4].hex(' ')}: a pcapng "
                             "file starts 0a 0d 0d 0a)")
    for brk, text in ((b"\r\n", "CR LF"), (b"\n", "LF")):
        if head.startswith(brk) and head[len(brk):len(brk) + 4] in magics:
            raise CorruptCapture(f"{name}: a line break ({text}) before the capture's file header (magic bytes "
                                 f"{head[:4].hex(' ')}): the file was changed in transfer (FTP ASCII mode, or "
                                 "a web upload that added a line break): transfer it again in binary mode")


def _ascii_mode_pcap(head: bytes, damage: int, complete: bool) -> bool:
    """Whether the pcap file starting with ``head`` (its first bytes, the file header on), whose
    records stop following one another at file offset ``damage`` (a length beyond the bound, a
    record running past the end), reads right once every CR LF after the magic is read as LF:
    FTP ASCII mode wrote each LF byte as CR LF, shifting every record after the first LF in a
    record or header. Right: the file header is a pcap 2.x header and the records from it on
    are plausible (as :mod:`.resync` judges one: a length within the bound and at most the
    original length, a fraction below a second, times within :data:`~.resync.WINDOW_S` of
    the first) and follow one another past where ``damage`` lies once undone, for
    :data:`_ASCII_CHAIN` records or to the very end of the file (``complete``: ``head`` is the
    whole file). False when no CR LF comes before the damaged record's header ends."""
    from .resync import WINDOW_S

    if damage > len(head) or b"\r\n" not in head[4:damage + 24]:
        return False
    fixed = head[:4] + head[4:].replace(b"\r\n", b"\n")
    if len(fixed) < 24:
        return False
    try:
        p = _PcapParser(fixed[:24], "")
    except CaptureError:
        return False
    at = damage - head[4:damage].count(b"\r\n")     # the damaged record's place once undone
    hdr = struct.Struct(p.order + "IIII").unpack_from
    frac_max = 10**9 if p.mult == 1 else 10**6
    pos, after, first = 24, 0, None
    while pos + p.hdr_len <= len(fixed):
        sec, frac, cl, ol = hdr(fixed, pos)
        first = sec if first is None else first
        if not (0 < cl <= p.bound and cl <= ol <= 16 << 20 and frac < frac_max and abs(sec - first) <= WINDOW_S):
            return False
        after += pos >= at
        pos += p.hdr_len + cl
        if after >= _ASCII_CHAIN:
            return True
    return complete and after > 0 and pos == len(fixed)


class _Probe:
    """A reader (as :func:`_run` takes) that keeps a copy of the first :data:`ASCII_PROBE_BYTES`
    bytes read through it (``head``), for :func:`_ascii_mode_pcap`."""

    def __init__(self, reader) -> None:
        self._reader = reader
        self.head = bytearray()

    def read(self, n: int) -> bytes:
        b = self._reader.read(n)
        if len(self.head) < ASCII_PROBE_BYTES:
            self.head += b[:ASCII_PROBE_BYTES - len(self.head)]
        return b

    def read_on(self, tail: bytes, n: int, room: int = 0) -> tuple[bytes | bytearray, int]:
        """``tail + read(n)`` (``tail``: the last bytes read), through the reader's ``read_on``
        when it has one (:meth:`_FileReader.read_on`) and the head is complete; with the free
        bytes it left before them (``room`` asked for, when that reader can: else 0)."""
        read_on = getattr(self._reader, "read_on", None)
        can_room = room > 0 and isinstance(self._reader, _FileReader)
        if read_on is None or len(self.head) < ASCII_PROBE_BYTES:
            if can_room:    # (the first 256 KiB: a copy, small, that their head is kept)
                buf = bytearray(room)
                buf += tail
                buf += self.read(n)
                return buf, room
            return tail + self.read(n), 0
        if can_room:
            return read_on(tail, n, room), room
        return read_on(tail, n), 0

    def __getattr__(self, key):
        return getattr(self._reader, key)


def _frames_from(buf: bytes, w: _Walk, stats: ReadStats, room: int = 0) -> Frames:
    c = w.cols
    return Frames(buf, c["ts_ns"], c["linktype"], c["offset"], c["caplen"], c["wirelen"], stats, room=room)


def _count_walk(stats: ReadStats, w: _Walk) -> None:
    """Add a walk's records to ``stats``: their number, those cut by the snaplen, the latest time."""
    n = len(w.cols["ts_ns"])
    stats.records += n
    if n:
        _count_cut(stats, w.cols["caplen"], w.cols["wirelen"])
        ts = w.cols["ts_ns"]
        if stats.first_frame_ns is None:     # (the earliest of the first chunk with a time)
            timed = ts[ts > 0]
            if len(timed):
                stats.saw_frame(int(timed.min()))
        stats.saw_frame(int(ts.max()))


#: the pcap magics as a little-endian read of their 4 bytes gives them (a record header whose
#: ts_sec is one of these is a file header: years 2055-2083, never a packet's)
_PCAP_MAGIC_WORDS = np.array([struct.unpack("<I", m)[0] for m in _PCAP_MAGICS], np.uint32)


def _is_shb(data, q: int) -> bool:
    """Whether a pcapng Section Header Block begins at ``data[q]`` (its type and a byte-order magic)."""
    return bytes(data[q:q + 4]) == _PCAPNG_MAGIC and bytes(data[q + 8:q + 12]) in (_BOM_LE, _BOM_BE)


def _pcap_header_at(parser, data: bytes, start: int, w: _Walk) -> int | None:
    """Where a second capture's file header begins in ``data`` (``cat a.pcap b.pcap``, also a
    pcapng file after a pcap one or a pcap file after a pcapng one: break-it s52 formats #3): in a
    pcap walk from ``start``, a pcap header or a pcapng Section Header Block at a record the walk
    read (its first 16 bytes read as a record header) or where the walk stopped as damage; in a
    pcapng walk, a pcap header where it stopped as damage (a pcapng file after a pcapng one is a
    new section of it). None when there is none."""
    if not isinstance(parser, _PcapParser):
        if (w.stop is not None or w.need) and bytes(data[w.pos:w.pos + 4]) in _PCAP_MAGICS:
            return w.pos        # (its "block length" damage, or a cut block or one to read on for)
        return None
    heads = w.cols["offset"] - parser.hdr_len
    if len(heads):
        words = _u32_view(data, "<")[heads]
        hit = np.flatnonzero(np.isin(words, _PCAP_MAGIC_WORDS)
                             | (words == struct.unpack("<I", _PCAPNG_MAGIC)[0]))
        hit = [int(heads[k]) for k in hit.tolist()
               if bytes(data[heads[k]:heads[k] + 4]) in _PCAP_MAGICS or _is_shb(data, int(heads[k]))]
        if hit:
            return hit[0]
    if w.stop is not None:
        for q in range(min(w.pos, len(data) - 4), max(w.pos - 2 * parser.hdr_len, start) - 1, -1):
            if bytes(data[q:q + 4]) in _PCAP_MAGICS or _is_shb(data, q):
                return q
    return None


def _seek_records(parser, data, start: int, at_eof: bool, base: int, last_ns: int | None):
    """Where whole records start again in ``data`` from ``start`` after damage (see
    :mod:`.resync`): ``(offset, None)``, ``(keep_from, MORE)`` or ``(None, None)``."""
    if isinstance(parser, _PcapParser):
        return find_pcap_record(data, start, big=parser.order == ">", hdr_len=parser.hdr_len,
                                ns=parser.mult == 1, bound=parser.bound,
                                last_sec=None if last_ns is None else last_ns // 10**9, at_eof=at_eof)
    section = parser.ifaces.section(parser.sec_base, parser.sec_base + parser.sec_n)
    clocks = [(itf.res_base ** itf.res_exp, itf.offset_s) if itf.valid else None for itf in section]
    return find_pcapng_block(data, start, base, big=parser.order == ">", bound=MAX_BLOCK_BYTES,
                             interfaces=parser.sec_n, at_eof=at_eof, clocks=clocks,
                             last_sec=None if last_ns is None else last_ns // 10**9)


#: the pcap header's link-type field bits that are reserved (draft-ietf-opsawg-pcap §4: 10 bits
#: above the link type, and the bit between the P flag and the FCS length)
_PCAP_LT_RESERVED = 0x0BFF_0000


def odd_fcs_words(head: bytes) -> int:
    """The FCS length (in 16-bit words, libpcap's ``LT_FCS_LENGTH``) a pcap file header
    (``head``, its first 24 bytes) gives with the P bit set when it is none the reader takes: not
    0, 1 (2 bytes, :data:`~.frames.LT_FCS2`) nor 2 (4 bytes, :data:`~.frames.LT_FCS`); else 0
    (also for a pcapng file or too few bytes)."""
    magic = bytes(head[:4])
    if len(head) < 24 or magic not in _PCAP_MAGICS:
        return 0
    (field,) = struct.unpack_from(_PCAP_MAGICS[magic][0] + "I", head, 20)
    words = field >> 28 if field & 0x0400_0000 else 0
    return words if words > 2 else 0


def odd_fcs_note(words: int) -> str:
    """The warning line (without the file name) for a pcap header whose FCS bits give ``words``
    (:func:`odd_fcs_words`)."""
    return (f"the pcap header's FCS bits say every frame ends with a {16 * words}-bit FCS (FCS length {words}, "
            "in 16-bit words), which no link layer has (16 or 32 bits): a damaged header, ignored; the frames "
            "are read whole")


def _reserved_link_bits(parser: "_PcapParser", head: bytes, name: str, offset: int = 0) -> str | None:
    """The warning line for a pcap header (``head``, its 24 bytes; at file ``offset``: a second
    header of captures joined with ``cat``) whose link-type field sets reserved bits (read as the
    link type in its low 16 bits, as tshark does), or None."""
    (field,) = struct.unpack_from(parser.order + "I", head, 20)
    if not field & _PCAP_LT_RESERVED:
        return None
    what = (f"the pcap header's link-type field 0x{field:08x}" if not offset else
            f"the link-type field 0x{field:08x} of the pcap header at offset {offset}")
    return (f"{name}: {what} sets reserved bits "
            f"(0x{field & _PCAP_LT_RESERVED:08x}): read as link type {parser.linktype}")


#: the pcap variants whose record headers hold more than the 16 standard bytes (the standard ones
#: first, then the variant's), by magic kind: (record header bytes, what writes them), tried in
#: this order when the file's first records do not follow one another with the standard header,
#: as Wireshark's libpcap reader tries them (libpcap_try_variants)
_PCAP_VARIANTS = {
    16: ((24, "Red Hat 6.1's (the SS990417 patch)"), (20, "Nokia IPSO's")),
    24: ((28, "SuSE 6.3's (the SS990915 patch)"),),
}


def _pcap_variant(parser: "_PcapParser", data, at_eof: bool):
    """The record header length and writer of a pcap variant (:data:`_PCAP_VARIANTS`) whose
    records ``data`` (the file's first bytes) hold: when the first records do not follow one
    another with the header the magic implies (a run of :data:`~.resync.CHAIN` plausible
    records, or to the end of the file: :func:`~.resync.pcap_records_at`) and do with the
    variant's. None: the magic's own header (also when neither reads, damage then says it);
    an int when more bytes are needed to tell and may come: the length ``data`` must reach
    (those records' bytes: the first chunk of a file read in small chunks grows no further)."""
    from .resync import CHAIN, pcap_records_at
    caplen = struct.Struct(parser.order + "8xI").unpack_from

    def reads(hdr_len: int):
        ok = pcap_records_at(data, parser.start, big=parser.order == ">", hdr_len=hdr_len,
                             ns=parser.mult == 1, bound=parser.bound, last_sec=None, at_eof=at_eof)
        if ok is not None:
            return ok
        p = parser.start                    # (where the bytes of the run end)
        for _ in range(CHAIN):
            if p + hdr_len > len(data):
                return p + hdr_len
            p += hdr_len + caplen(data, p)[0]
            if p > len(data):
                return p
        return len(data) + 1
    def records(hdr_len: int) -> int:
        """Records (up to CHAIN) of the run, once it reads."""
        p, k = parser.start, 0
        while k < CHAIN and p + hdr_len <= len(data):
            p += hdr_len + caplen(data, p)[0]
            k += 1
        return k
    own = reads(parser.hdr_len)
    if not isinstance(own, bool):
        return own
    if own or len(data) <= parser.start:
        return None
    for hdr_len, writer in _PCAP_VARIANTS.get(parser.hdr_len, ()):
        ok = reads(hdr_len)
        if not isinstance(ok, bool):
            return ok
        if ok and records(hdr_len) >= 2:   # (not one record and a few bytes after it)
            return hdr_len, writer
    return None


def flipped_note(k: int, offset: int, order: str) -> str:
    """The warning line (without the file name) for ``k`` pcap records from file ``offset`` on
    written in the byte order ``order`` (``"<"`` or ``">"``), the opposite of the file header's
    (:func:`_flipped_parser`)."""
    mine, theirs = ("little", "big") if order == "<" else ("big", "little")
    return (f"{_records(k)} from offset {offset} on {'is' if k == 1 else 'are'} written in {mine}-endian byte "
            f"order, not the {theirs}-endian of the file header (a writer's mistake, or captures joined "
            f"without the second one's header): read in {mine}-endian order (Wireshark stops there)")


def _flipped_parser(parser: "_PcapParser", data, q: int, at_eof: bool, last_ns: int | None,
                    name: str) -> "_PcapParser | None | str":
    """A parser reading the records at ``data[q]`` (where ``parser``'s walk stopped on damage)
    in the byte order opposite to ``parser``'s, when a run of plausible records in that order
    starts there (:func:`~.resync.pcap_records_at`: a record header whose fields were written
    little-endian under a big-endian file header, or the reverse); None when not; ``MORE`` (the
    string) when the bytes given end before that can be told and more may come."""
    from .resync import pcap_records_at
    if len(parser.head) < 24:
        return None
    other = ">" if parser.order == "<" else "<"
    ok = pcap_records_at(data, q, big=other == ">", hdr_len=parser.hdr_len, ns=parser.mult == 1,
                         bound=parser.bound, last_sec=None if last_ns is None else last_ns // 10**9,
                         at_eof=at_eof)
    if ok is None:
        return MORE
    if not ok:
        return None
    fields = struct.unpack_from(parser.order + "HHiIII", parser.head, 4)
    head = parser.head[:4][::-1] + struct.pack(other + "HHiIII", *fields)
    flipped = _PcapParser(head, name)
    flipped.mult, flipped.units_open, flipped.nano_in_usec = parser.mult, False, 0
    flipped.hdr_len, flipped.variant = parser.hdr_len, parser.variant
    flipped.flipped_from = q
    if parser.flipped_from is not None:      # (back to the header's own order)
        flipped.flipped_from = None
    return flipped


def _note_resync(stats: ReadStats, st: _Stop, resumed: int, name: str) -> None:
    """Damage read past: the bytes skipped (with those of a record before it left out,
    ``st.before``) and one warning line."""
    k = resumed - st.offset + st.before
    stats.skipped_bytes += k
    stats.skipped_records += st.records
    stats.warn(f"{name}: {st.what}; {k} byte{'s' if k != 1 else ''} skipped, reading resumed at offset "
               f"{resumed} where whole records start again")


def _drop_zero_headers(w: _Walk, data, parser: "_PcapParser") -> tuple[int, int, int]:
    """Remove from ``w`` (walked in ``data``) the pcap records whose header is all zeros (time
    0, no byte captured or on the wire: a zero-filled region from a crash or a sparse copy, read
    as records), and a record just before such a header (in ``w`` or at ``w.pos``) whose last
    byte is zero too and whose checksums do not prove its headers (:func:`~.resync.headers_proven`):
    the zeros begin inside it (made-up addresses, 0.0.0.0 to 0.0.0.0: break-it s56 #3); zeros
    written between two records leave the record before them whole. Returns ``(headers of
    zeros, records left out before them, their bytes)``."""
    c = w.cols
    n = len(c["caplen"])
    z = (c["caplen"] == 0) & (c["wirelen"] == 0) & (c["ts_ns"] == 0)
    k = int(np.count_nonzero(z))
    hdr_len = parser.hdr_len
    ends = c["offset"] + c["caplen"]
    # (the record before a header of zeros: one before a dropped one, or the last, before w.pos)
    before = np.flatnonzero(~z[:-1] & z[1:]).tolist() if k else []
    if n and not z[-1] and ends[-1] + hdr_len <= len(data) and \
            not any(bytes(data[ends[-1]:ends[-1] + hdr_len])):
        before.append(n - 1)
    cut = [i for i in before if c["caplen"][i] > 0 and data[ends[i] - 1] == 0
           and not headers_proven(memoryview(data)[c["offset"][i]:ends[i]], int(c["linktype"][i]))]
    size = sum(hdr_len + int(c["caplen"][i]) for i in cut)
    if k or cut:
        z[cut] = True
        w.cols = {key: v[~z] for key, v in c.items()}
    return k, len(cut), size


def _run(reader: _BytesReader | _FileReader | DecompressingReader, name: str,
         chunk_bytes: int, stream: bool = False, room: Callable[[], int] | None = None,
         records: int | None = None) -> Iterator[Frames]:
    """The one record walk behind read_frames and iter_frames (``stream``: ``reader`` reads
    standard input, :data:`STDIN`; ``room``, ``records``: as :func:`iter_frames`')."""
    stats = ReadStats()
    reader = probe = _Probe(reader)
    data = reader.read(max(min(chunk_bytes, FIRST_READ) if records else chunk_bytes, 64))
    at_eof = reader.eof()
    if reader.problem and not data:
        raise TruncatedCapture(f"{name}: {reader.problem}; no capture data")
    if not at_eof and len(data) < KNOWN_HEAD_BYTES and not data.startswith((*_PCAP_MAGICS, _PCAPNG_MAGIC)):
        # no capture: enough bytes for the error to tell what it is (a tar archive's ustar at 257)
        data += reader.read(KNOWN_HEAD_BYTES - len(data))
        at_eof = reader.eof()
    parser = _sniff(data, name, at_eof)
    if isinstance(parser, _PcapParser):
        variant = _pcap_variant(parser, data, at_eof)
        while isinstance(variant, int):         # (the bytes needed to tell: read just those)
            data = bytes(data) + reader.read(max(variant - len(data), 1))
            at_eof = reader.eof()
            variant = _pcap_variant(parser, data, at_eof)
        if variant is not None:
            parser.hdr_len, parser.variant = variant
        line = _reserved_link_bits(parser, data, name)
        if line:
            stats.warn(line)
        if odd_fcs_words(data):
            stats.warn(f"{name}: {odd_fcs_note(odd_fcs_words(data))}")
    first_parser = parser          # (FTP ASCII-mode damage is looked for under it, once)
    base = 0                       # file offset of data[0]
    pos = parser.start
    yielded = False
    pending = None                 # records before a second pcap header, in this buffer
    seeking: _Stop | None = None   # damage: looking for where whole records start again
    zeros = 0                      # all-zero pcap record headers dropped
    zero_cut = 0                   # records before them left out (the zeros begin inside them)
    recent = np.zeros(0, np.int64)  # the times of the last records read (see _reference_ns)
    grow = chunk_bytes             # the next read's size (grows while walks find no record)
    free = 0                       # data's first bytes left free (iter_frames' room): no record there
    while True:
        if seeking is not None:
            hit, more = _seek_records(parser, data, pos, at_eof, base, _reference_ns(recent))
            if hit is not None and more is None:
                _note_resync(stats, seeking, base + hit, name)
                seeking, pos = None, hit
            elif more is not None and not at_eof:
                # not decided in these bytes: hand out what was read, then read on from ``hit``
                if pending is not None and len(pending["ts_ns"]):
                    out = _frames_from(data, _Walk(pos, cols=pending), stats)
                    yielded = True
                    yield out
                pending = None
                base += hit
                stats.bytes_read = base - stats.skipped_bytes
                data = bytes(memoryview(data)[hit:]) + reader.read(max(chunk_bytes, 1 << 16))
                at_eof = reader.eof()
                pos = free = 0
                continue
            else:   # no whole record after the damage: reading stops there, as before
                w = _Walk(len(data), stop=seeking, cols=_empty_cols())
                seeking = None
                if pending is not None:
                    w.cols, pending = pending, None     # (counted when walked)
                n = len(w.cols["ts_ns"])
                if zeros or zero_cut:
                    stats.warn(zero_note(name, zeros, parser.hdr_len, zero_cut))
                _record_stop(stats, w.stop, name, parser.kind, base + len(data) + reader.drain(), stream)
                yield from _finish(reader, parser, stats, name, data, w, n, yielded, base)
                return
        malformed_before = parser.malformed
        notes_before = dict(parser.notes)
        w = parser.walk(data, pos, at_eof, base)
        cut = size = 0
        if isinstance(parser, _PcapParser) and len(w.cols["ts_ns"]):
            k, cut, size = _drop_zero_headers(w, data, parser)
            zeros += k
        q = _pcap_header_at(parser, data, pos, w)
        if q is not None:
            # a second pcap file header where a record should start: files joined with cat
            # (mergecap is the right tool). The records before it are walked again (the
            # header's bytes read as a record counted oddities that are not there)
            shb = _is_shb(data, q)
            head = bytes(data[q:q + (28 if shb else 24)])
            try:
                parser_next = (None if len(head) < (28 if shb else 24) else
                               _PcapngParser(head, name, at_eof) if shb else _PcapParser(head, name))
            except CaptureError:
                parser_next = None
            if parser_next is not None or not at_eof:
                parser.notes = notes_before
                w = parser.walk(memoryview(data)[:q], pos, True, base)
                if parser_next is None:          # (its 24 bytes not all read yet: read on first)
                    w.pos, w.stop, w.need = q, None, 28 if shb else 24
            if parser_next is not None:
                # the records before it wait for the next ones of this buffer (one Frames per
                # buffer); reading goes on under the new header
                _count_walk(stats, w)
                pending = w.cols if pending is None else {k: np.concatenate([pending[k], w.cols[k]]) for k in pending}
                for line in parser.summary():
                    stats.warn(f"{name}: {line}")
                was, parser = parser.kind, parser_next
                if shb:
                    stats.warn(f"{name}: a pcapng file at offset {base + q} after the {was} records (captures "
                               "joined with 'cat'? 'mergecap' joins them): read on as pcapng")
                    pos = q
                    continue
                stats.warn(f"{name}: a second pcap file header at offset {base + q} (captures joined with "
                           f"'cat'? 'mergecap' joins them): read on under it (link type {parser.linktype})"
                           if was == "pcap" else
                           f"{name}: a pcap file header at offset {base + q} after the pcapng blocks (captures "
                           f"joined with 'cat'? 'mergecap' joins them): read on under it (link type {parser.linktype})")
                line = _reserved_link_bits(parser, head, name, base + q)   # (each header's, not the first's alone)
                if line:
                    stats.warn(line)
                pos = q + 24
                continue
        if w.stop is not None and isinstance(parser, _PcapParser):
            # records written in the other byte order from there on (a writer's mistake, captures
            # joined without the second header): read on in that order (also where the walk took
            # such a header's length for a record cut by the end of the file: 256 read as 65536)
            q = w.stop.offset - base
            real = (w.cols["caplen"] > 0) & (w.cols["ts_ns"] > 0)
            ref = _reference_ns(np.concatenate([recent, w.cols["ts_ns"][real][-255:]])[-255:])
            flipped = _flipped_parser(parser, data, q, at_eof, ref, name)
            while flipped == MORE:
                data = bytes(data) + reader.read(max(chunk_bytes, 1 << 18))
                at_eof = reader.eof()
                flipped = _flipped_parser(parser, data, q, at_eof, ref, name)
            if flipped is not None:
                flipped.flipped_from = None if flipped.flipped_from is None else base + q
                # (the records before it walked again up to it: the stop may have left out the
                # record before it as holding lost bytes)
                parser.notes = notes_before
                w = parser.walk(memoryview(data)[:q], pos, True, base)
                _count_walk(stats, w)
                pending = w.cols if pending is None else {k: np.concatenate([pending[k], w.cols[k]]) for k in pending}
                for line in parser.summary():
                    stats.warn(f"{name}: {line}")
                parser, pos = flipped, q
                continue
        stats.malformed += parser.malformed - malformed_before
        if cut:         # (records before headers of zeros left out: counted as skipped)
            zero_cut += cut
            stats.skipped_records += cut
            stats.skipped_bytes += size
        _count_walk(stats, w)
        real = (w.cols["caplen"] > 0) & (w.cols["ts_ns"] > 0)
        if real.any():
            recent = np.concatenate([recent, w.cols["ts_ns"][real][-255:]])[-255:]
        if pending is not None:
            w.cols = {k: np.concatenate([pending[k], w.cols[k]]) for k in pending}
            pending = None
        if w.stop is not None and w.stop.cut and w.stop.offset > 0 and at_eof and \
                _seek_records(parser, data, w.stop.offset - base + 1, True, base, _reference_ns(recent))[0] is not None:
            # a record or block "cut" by the end of the file with whole records after its start:
            # its length is damage (bytes lost before it shifted a header), not a cut file
            kind = "record" if parser.kind == "pcap" else "block"
            w.stop = _Stop(w.stop.offset, f"damaged {kind} at offset {w.stop.offset} (its length runs past the "
                           f"end of the file: {w.stop.what.split(': ', 1)[-1]})", w.stop.records)
        if w.stop is not None and parser is first_parser and isinstance(parser, _PcapParser):
            first_parser = None
            if b"\r\n" in probe.head[4:w.stop.offset + 24]:
                if not at_eof and len(probe.head) < ASCII_PROBE_BYTES:
                    data = bytes(data) + reader.read(ASCII_PROBE_BYTES - len(probe.head))
                    free = 0
                    at_eof = reader.eof()
                complete = at_eof and len(probe.head) == base + len(data)
                if _ascii_mode_pcap(bytes(probe.head), w.stop.offset, complete):
                    raise CorruptCapture(f"{name}: {ASCII_MODE_TEXT} (its records stop following one another at "
                                         f"offset {w.stop.offset} and read right with each CR LF read as LF)")
        if w.stop is not None and not w.stop.cut:
            # damage: read on where whole records start again (the records before it wait)
            seeking, pending, pos = w.stop, w.cols, w.stop.offset - base + 1
            continue
        n = len(w.cols["ts_ns"])
        if w.stop is None and not at_eof:
            tail = data[w.pos:]
            out = [_frames_from(data, w, stats, free)] if n else []
            del data    # while the chunk is out, only its Frames hold it (freed when they go)
            if out:
                yielded = True
                stats.bytes_read = base + w.pos - stats.skipped_bytes
                yield out.pop()
            base += w.pos
            # a stretch without packets (a million Interface Description Blocks before the first,
            # break-it 21 F8: 333,000 walks of 64 bytes for check_capture) is read in growing
            # pieces, up to _QUIET_READ_MAX, so that the walks stay few; any chunking gives the
            # same records
            grow = _read_size(chunk_bytes, records, n, w.pos - pos) if n else \
                min(max(grow * 2, chunk_bytes), max(chunk_bytes, _QUIET_READ_MAX))
            want = max(grow, w.need) - len(tail)
            data, free = reader.read_on(tail, max(want, 1), room() if room is not None else 0)
            at_eof = reader.eof()
            # (the offsets are data's: its first ``free`` bytes stand before the file's next ones)
            pos = free
            base -= free
            continue
        # last chunk: complete the stats before handing it out
        if zeros or zero_cut:
            stats.warn(zero_note(name, zeros, parser.hdr_len, zero_cut))
        if w.stop is not None:
            _record_stop(stats, w.stop, name, parser.kind, base + len(data) + reader.drain(), stream)
        else:
            stats.bytes_read = base + w.pos - stats.skipped_bytes
        yield from _finish(reader, parser, stats, name, data, w, n, yielded, base, free)
        return


#: largest read (bytes) after walks that found no record (a stretch of blocks without packets)
_QUIET_READ_MAX = 1 << 20
#: first read (bytes) when chunks are also bounded in records (:func:`iter_frames`' ``records``):
#: the records' size is not known yet
FIRST_READ = 4 << 20


def _read_size(chunk_bytes: int, records: int | None, n: int, walked: int) -> int:
    """The next read's size (bytes) after a walk of ``n`` records over ``walked`` bytes:
    ``chunk_bytes``, or less when ``records`` is given: about ``records`` records of the size
    the walk found (not below :data:`_QUIET_READ_MAX`)."""
    if not records or n <= 0:
        return chunk_bytes
    return min(chunk_bytes, max(_QUIET_READ_MAX, records * max(walked, 1) // n))


def _reference_ns(recent: np.ndarray) -> int | None:
    """The time the records after damage are compared with: the median of the last records read
    that hold bytes and a time (``recent``, whatever the chunks), so that a few garbage records
    read just before the damage, or a header of zeros and packet bytes read as an empty record,
    do not set it; None (any time but 0 will do) when fewer than a run of them were read
    (damage read as one or two records right after the file header)."""
    return int(np.median(recent)) if len(recent) >= RESYNC_CHAIN else None


def zero_note(name: str, k: int, hdr_len: int, cut: int = 0) -> str:
    """The warning line about ``k`` all-zero record headers of ``hdr_len`` bytes each skipped (a
    zero-filled region), and ``cut`` records before them left out (the zeros begin inside them:
    :func:`_drop_zero_headers`), for the capture ``name``."""
    line = (f"{name}: {k} all-zero record header{'s' if k != 1 else ''} ({k * hdr_len} bytes of zeros: a "
            "zero-filled region, from a crash or a sparse copy?) skipped")
    if cut:
        line += (f", and the {'record' if cut == 1 else f'{cut} records'} just before such a header left out "
                 "(the zeros begin inside it: its last bytes zeros, its headers not proven by their checksums)")
    return line


def _finish(reader, parser, stats: ReadStats, name: str, data, w: _Walk, n: int, yielded: bool,
            base: int, free: int = 0) -> Iterator[Frames]:
    """The last chunk of :func:`_run`, its stats completed first."""
    if reader.problem:
        stats.warn(f"{name}: {reader.problem}; capture data ends at offset "
                   f"{base + len(data)}")
    for line in parser.summary():
        stats.warn(f"{name}: {line}")
    stats.warn_cut(name)
    stats.warn_empty_records(name)
    stats.end_ns = getattr(parser, "end_ns", None)
    if n or not yielded:
        last = _frames_from(data, w, stats, free)
        last.last = True
        yield last


def _count_cut(stats: ReadStats, caplen: np.ndarray, wirelen: np.ndarray) -> None:
    """Count the records cut by the snaplen (more than a 4-byte FCS short) into ``stats``, and
    those 1 to 4 bytes short (``fcs_short``: an FCS left off); not
    those whose original length is a damaged field (:data:`~kscc_traffic.capture.stats.WIRELEN_DAMAGED`
    or more: not a cut), nor those that hold no byte (captured length 0: counted
    as ``empty_records``)."""
    empty = caplen <= 0
    if empty.any():
        stats.empty_records += int(np.count_nonzero(empty))
    short = (wirelen.astype(np.int64) - caplen > 4) & (wirelen < WIRELEN_DAMAGED) & ~empty
    if short.any():
        stats.cut_frames += int(np.count_nonzero(short))
        stats.cut_caplen = max(stats.cut_caplen, int(caplen[short].max()))
    fcs = (wirelen.astype(np.int64) > caplen) & ~short & (wirelen < WIRELEN_DAMAGED) & ~empty
    if fcs.any():
        stats.fcs_short += int(np.count_nonzero(fcs))


def _record_stop(stats: ReadStats, st: _Stop, name: str, kind: str, total: int, stream: bool = False) -> None:
    """Put a damage / cut stop into the stats (one warning line, saying how many records were read
    before it); ``total``: the file's size (bytes); ``stream``: read from standard input (a cut
    is the stream's end, not the file's)."""
    if st.offset == 0 and st.cut and kind == "pcapng":
        raise TruncatedCapture(f"{name}: file ends inside the pcapng Section Header Block "
                               f"({st.what})")
    stats.damage_offset = st.offset
    stats.cut_end = bool(st.cut)
    # (less what damage read past skipped, and a record before it left out with it)
    stats.bytes_read = st.offset - st.before - stats.skipped_bytes
    stats.skipped_bytes += total - st.offset + st.before
    stats.skipped_records += st.records
    lost = f"{st.records} record{'s' if st.records != 1 else ''}"
    read = f"{_records(stats.records)} read before it"
    if st.cut and stream:
        # (a pipe that ended mid-record: the capturing program stopped, or the connection broke)
        # (the line names it standard input alone: "stdin: standard input ended…" said it twice)
        what = st.what.replace("file cut", f"{STDIN_TEXT} ended", 1)
        line = what if what.startswith(STDIN_TEXT) else f"{name}: {what}"
        stats.warn(f"{line}; {lost} skipped" + (f" ({read}, all analysed)" if stats.records else ""))
    elif st.cut:
        stats.warn(f"{name}: {st.what}; {lost} skipped")
    else:
        # (what was read is counted: "0 records" alone read as if nothing was, break-it 27)
        lost = f"{lost} and the " if st.records else "the "
        stats.warn(f"{name}: {st.what}; reading stopped there: {lost}{total - st.offset} bytes from "
                   f"there on skipped ({read})")


def _open_path(path: str | os.PathLike[str]) -> tuple[BinaryIO, _FileReader | DecompressingReader]:
    if is_stdin(path):
        return _open_stdin()
    f = open(path, "rb")
    return f, open_decompressing(f, f.peek(8)[:8]) or _FileReader(f)


def read_frames(source: str | os.PathLike[str] | bytes, *, name: str | None = None) -> Frames:
    """Read a whole pcap / pcapng capture into one :class:`Frames`.

    Parameters
    ----------
    source : str, os.PathLike or bytes
        Path of a capture file, or the file's bytes. A compressed capture (gzip, xz, bzip2,
        zstd, lz4: :mod:`kscc_traffic.capture.compressed`) is decompressed first.
    name : str, optional
        The text that names the capture in warning and error lines (default: the file's name,
        escaped by :func:`kscc_traffic.text.name_text`; ``<bytes>`` for bytes).

    Returns
    -------
    Frames
        One row per record, in file order (n = ``len(frames)``): ``ts_ns`` int64 (n,) epoch
        nanoseconds, exact (a pcapng Simple Packet Block has none: the last timed record's + 1 ns
        per Simple Packet Block since); ``linktype`` int32 (n,) LINKTYPE_* of the record's interface;
        ``offset`` int64 (n,) where the record's captured bytes start in ``buf`` (bytes);
        ``caplen`` int32 (n,) captured bytes; ``wirelen`` int32 (n,) original length, bytes
        (clamped to 2^31-1). ``buf`` is the whole (decompressed) file as ``bytes``. ``stats``:
        ``records``, ``bytes_read`` (file bytes consumed; compressed: decompressed bytes),
        ``damage_offset`` (offset where reading stopped, else None), ``skipped_bytes``,
        ``skipped_records``, ``malformed`` (pcapng packet blocks skipped) and ``warnings``.

    Raises
    ------
    UnsupportedFormat
        Not a pcap/pcapng file (message gives the magic bytes seen), or an unsupported version
        (pcap major below 2, as Wireshark reads: another above 2 is read as 2.4 with a warning;
        pcapng major ≠ 1).
    TruncatedCapture
        The file ends inside its file header (pcap: 24 bytes; pcapng: the first Section Header
        Block, draft-ietf-opsawg-pcapng §4.1), including a 0-byte file.
    CorruptCapture
        The first pcapng Section Header Block has a bad byte-order magic; the file was damaged by
        a text-mode transfer (FTP ASCII mode; a line break before the file header: see the
        module docstring).
    OSError
        The path cannot be read.

    Damage after the header does not raise; see the module docstring.
    """
    name = _source_name(source) if name is None else name
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = source if isinstance(source, bytes) else bytes(source)
    else:
        with open(source, "rb") as f:
            data = f.read()
    problem = None
    packed = open_decompressing(io.BytesIO(data), data[:8])
    if packed is not None:
        data = packed.read(1 << 62)
        problem = packed.problem
    whole = _BytesReader(data)
    whole.problem = problem
    return next(_run(whole, name, len(data) + 1))


def iter_frames(source: str | os.PathLike[str] | bytes,
                chunk_bytes: int = 64 << 20, *, name: str | None = None,
                room: Callable[[], int] | None = None, records: int | None = None) -> Iterator[Frames]:
    """Read a pcap / pcapng capture in chunks of about ``chunk_bytes`` bytes.

    Yields the same records as :func:`read_frames`, in order, split over several
    :class:`Frames`. Each chunk's ``buf`` holds only that chunk's bytes (``bytes``, about
    ``chunk_bytes`` long, more when one record or block is longer) and its ``offset`` column
    is relative to that ``buf``. Columns, units and errors are those of :func:`read_frames`;
    the errors are raised by the first ``next()``.

    Stats: all chunks share ONE :class:`ReadStats` object (``chunk.stats`` is the same object
    for every chunk). Its counters grow as chunks are read; it is complete once the iterator is
    exhausted. (The reader sees the end of the file before it hands out the last chunk, so the
    damage line and the end-of-file summary warnings are normally already there when the last
    chunk arrives.) Chunks with no records are not yielded, except that a file with no readable
    record yields one empty chunk, so its stats can be seen.

    Memory: about two chunks at a time, plus one record/block when it is longer than a chunk
    (bounded by 16 MiB for a pcap record and ``MAX_BLOCK_BYTES`` for a pcapng block). After a
    stretch of the file without packets (pcapng blocks such as Interface Description Blocks),
    reads grow up to 1 MiB (when ``chunk_bytes`` is smaller), so one chunk may be that long.

    Parameters
    ----------
    source : str, os.PathLike or bytes
        As for :func:`read_frames` (compressed captures decompressed on the fly). :data:`STDIN`
        (``/dev/stdin``) reads file descriptor 0 as a stream, front to back, in chunks (a pipe;
        memory as above): the same records as the same bytes in a file give, a stream that ends
        mid-record said as such, with the number of records read before it; damage in a
        compressed stream loses up to 64 KiB before it (a file is read again near the damage, a
        pipe cannot be). :class:`CaptureAccessError` when it is closed.
    chunk_bytes : int
        Target chunk size in bytes (default 64 MiB; values below 64 are raised to 64).
    name : str, optional
        As for :func:`read_frames`.
    room : callable, optional
        Called before each chunk after the first is read from a file (not a compressed one, nor
        a stream): the bytes to leave free before its records, so that the caller can put other
        bytes there without copying the chunk (:mod:`kscc_traffic.chunked` puts the carried
        packets' bytes there). The chunk's ``room`` says how many it got (0: none; ``buf`` is
        then a ``bytearray`` whose first ``room`` bytes are zeros).
    records : int, optional
        About the most records a chunk holds: the first read is then at most
        :data:`FIRST_READ` bytes, and each next one about ``records`` records of the size the
        chunk before had (at least 1 MiB, at most ``chunk_bytes``): a capture of small packets
        (a scan, a UDP spray: 32 MiB of 60-byte datagrams is ~400,000 records) comes in
        smaller chunks, so that a chunk is not held while many batches are analysed.
    """
    name = _source_name(source) if name is None else name
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        packed = open_decompressing(io.BytesIO(data), data[:8])
        yield from _run(packed or _BytesReader(data), name, max(chunk_bytes, 64), records=records)
        return
    stream = is_stdin(source)
    f, reader = _open_path(source)
    with f:
        if not isinstance(reader, DecompressingReader):
            yield from _run(reader, name, max(chunk_bytes, 64), stream, None if stream else room, records)
            return
        for fr in _run(reader, name, max(chunk_bytes, 64), stream, records=records):
            fr.stats.file_bytes_read = reader.file_pos()    # (the progress bar's: break-it 21 F9)
            yield fr
