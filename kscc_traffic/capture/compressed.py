"""Compressed captures: ``read(n)``/``eof()``/``drain()`` readers that decompress on the fly.

Wireshark opens a capture compressed with gzip, zstd or lz4 as it opens the capture itself;
these readers give the capture readers (:mod:`kscc_traffic.capture.files`) the same, plus xz and
bzip2 (common for captures sent by mail or attached to a ticket). The format is recognised by
its first bytes (:func:`codec_of`), not by the file's name.

Each reader produces at most about ``n`` bytes per ``read(n)`` from bounded pieces of input
(no decompression bomb takes the memory), reads several concatenated streams or frames (``cat
a.pcap.gz b.pcap.gz``, pigz, pbzip2 and pzstd output, zstd skippable frames skipped), accepts
zero padding between streams and after the last one (xz stream padding, tape blocks), and never
raises on damage: a stream cut short or corrupt ends the data where it
breaks and ``problem`` says why, in one line.

Corrupt data: a decompressor raises on the call that meets the damage and that call's output is
lost (up to 64 KiB: the calls' output ends at multiples of 64 KiB of the stream, whatever the
reader asks for, so that the same bytes come out in any chunking). The stream is then
decompressed again from its last checkpoint (gzip: a copy of the decompressor every 8 MiB of
output; the other formats' decompressors cannot be copied: the start of the stream) up to where
the data broke, the output near it in pieces of :data:`_NEAR` bytes, so the data before the
damage is given whole but for at most that much (:meth:`DecompressingReader._recover`; it needs
a file that can seek, as files and bytes can). The bytes between the damage and where the
decompressor notices it are given as it decodes them (garbage, as ``zcat`` writes them): the
capture reader reads past them as damage.
Nothing after the damage is given: a gzip (deflate), xz, zstd or lz4 stream cannot be
decompressed past it, and bzip2's blocks after it are not searched for (``bzip2recover`` does).

lz4's legacy frame format (``lz4 -l``) is recognised only to say, in ``problem``, how to convert it.

zstd needs the ``zstandard`` package and lz4 the ``lz4`` package (both dependencies of
kscc-traffic); without them the reader says which package to install.
"""
from __future__ import annotations

import bz2
import lzma
import zlib
from typing import BinaryIO, Callable

__all__ = ["CODEC_MAGICS", "codec_of", "open_decompressing"]

#: first bytes of each compressed format read -> its name
CODEC_MAGICS: dict[bytes, str] = {
    b"\x1f\x8b": "gzip",
    b"\xfd7zXZ\x00": "xz",
    b"BZh": "bzip2",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"\x04\x22\x4d\x18": "lz4",
    # lz4's legacy frame format (``lz4 -l``): recognised to say how to convert it
    b"\x02\x21\x4c\x18": "lz4-legacy",
    # zstd skippable frames (0x184D2A50..5F; pzstd writes one before each frame)
    **{bytes([0x50 + i]) + b"\x2a\x4d\x18": "zstd" for i in range(16)},
}

#: compressed bytes given to a decompressor at a time (zstd's decompressor has no output limit:
#: its output per call is bounded by the input given)
_PIECE = 1 << 16
#: after corrupt data, the output is decompressed again near the damage in pieces of this many
#: bytes (the most that can still be lost before the damage)
_NEAR = 32
#: gzip: a copy of the decompressor is kept every this many bytes of output (where decompressing
#: again after damage starts from)
_CHECKPOINT = 8 << 20


def _is_skippable(head: bytes) -> bool:
    """True when ``head`` starts with a zstd skippable frame's magic (0x184D2A50..5F, as pzstd
    writes one before each frame)."""
    return len(head) >= 4 and head[0] & 0xF0 == 0x50 and head[1:4] == b"\x2a\x4d\x18"


def codec_of(head: bytes) -> str | None:
    """The compression format whose magic ``head`` starts with (:data:`CODEC_MAGICS`; a zstd
    skippable frame counts as zstd, lz4's legacy frame as "lz4-legacy"), or None."""
    return next((name for magic, name in CODEC_MAGICS.items() if head.startswith(magic)), None)


def _zstd_factory() -> Callable:
    import zstandard
    return zstandard.ZstdDecompressor().decompressobj


def _lz4_factory() -> Callable:
    import lz4.frame
    return lz4.frame.LZ4FrameDecompressor


#: format -> (function returning a factory of one-stream decompressors, the package it needs)
_FACTORIES: dict[str, tuple[Callable[[], Callable], str | None]] = {
    "gzip": (lambda: lambda: zlib.decompressobj(wbits=31), None),
    "xz": (lambda: lzma.LZMADecompressor, None),
    "bzip2": (lambda: bz2.BZ2Decompressor, None),
    "zstd": (_zstd_factory, "zstandard"),
    "lz4": (_lz4_factory, "lz4"),
}


class DecompressingReader:
    """``read(n)``/``eof()``/``drain()`` over a compressed file of format ``codec``
    (:data:`CODEC_MAGICS`), several streams one after the other allowed.

    ``problem``: None, or one line saying why the data ended early (cut short, corrupt, bytes
    after the last stream that are not another stream, the package the format needs missing).
    """

    def __init__(self, f: BinaryIO, codec: str) -> None:
        self._f = f
        self.codec = codec
        self.problem: str | None = None
        self._in = b""           # compressed bytes not yet given to the decompressor
        self._out = bytearray()  # decompressed bytes not yet returned
        self._done = False
        self._member_data = False
        if codec == "lz4-legacy":
            self.problem = ("lz4 legacy frame format (lz4 -l) is not read: convert it with "
                            "'lz4 -d FILE OUT' (then 'lz4 OUT' for the current frame format if wanted)")
            self._done = True
            return
        make, package = _FACTORIES[codec]
        try:
            self._new = make()
        except ImportError:
            self.problem = (f"{codec}-compressed: the Python package '{package}' is needed to read it "
                            f"(pip install {package}), or decompress it first")
            self._done = True
            return
        self._d = self._new()
        self._magic = next(m for m, c in CODEC_MAGICS.items() if c == codec)
        try:
            self._pos = f.tell()    # file offset read to
        except (OSError, ValueError):
            self._pos = 0
        self._stream_out = 0        # bytes the current stream has given
        self._ok = self._pos        # compressed bytes given to the decompressor without error, to here
        # where decompressing again after damage starts: (decompressor copy or None for a new one,
        # file offset, the stream's output there)
        self._ck: tuple = (None, self._pos, 0)

    def file_pos(self) -> int:
        """Bytes of the compressed file read so far (its offset)."""
        return self._pos

    def _read_in(self, n: int) -> bytes:
        data = self._f.read(n)
        self._pos += len(data)
        return data

    def _give(self, want: int) -> bytes:
        """Give the decompressor input; return the output (at most ``want`` bytes; zstd: what
        :data:`_PIECE` bytes of input give)."""
        d = self._d
        if self.codec == "gzip":
            piece = d.decompress(self._in, want)
            # (at a stream's end zlib puts what follows in unused_data, and when the output
            # limit was reached on the way also in unconsumed_tail: taken once)
            self._in = b"" if d.eof else d.unconsumed_tail
            return piece
        if self.codec == "zstd":
            data, self._in = self._in[:_PIECE], self._in[_PIECE:]
            return d.decompress(data)
        # xz, bzip2, lz4: the decompressor keeps the input it has not used yet
        if d.needs_input:
            data, self._in = self._in, b""
        else:
            data = b""
        return d.decompress(data, want)

    def _pending(self) -> bool:
        """True when the decompressor holds output it gives without more input."""
        return self.codec in ("xz", "bzip2", "lz4") and not self._d.needs_input and not self._d.eof

    def _skip_between(self) -> bool:
        """Before a stream: drop zstd skippable frames and zero padding (xz stream padding)
        from ``self._in``, reading more as needed. False when the file ends there (or what
        follows is not a stream: ``problem`` says so)."""
        while True:
            if len(self._in) < 8:
                more = self._read_in(1 << 20)
                if more:
                    self._in += more
                    continue
                if not self._in.strip(b"\0"):
                    self._in = b""
                    return False
            if self._in[:1] == b"\0":
                self._in = self._in.lstrip(b"\0")
                continue
            if self.codec == "zstd" and _is_skippable(self._in):
                skip = 8 + int.from_bytes(self._in[4:8], "little")
                while len(self._in) < skip:
                    more = self._read_in(max(skip - len(self._in), 1 << 16))
                    if not more:
                        self.problem = "zstd skippable frame cut short (file cut short)"
                        self._in = b""
                        return False
                    self._in += more
                self._in = self._in[skip:]
                continue
            break
        if not self._in.startswith(self._magic):
            self.problem = f"{self.codec} stream followed by bytes that are not {self.codec} (ignored)"
            self._in = b""
            return False
        self._ok = self._pos - len(self._in)
        self._ck = (None, self._ok, 0)
        return True

    def _fill(self, want: int) -> None:
        while len(self._out) < want and not self._done:
            if not self._member_data and self._stream_out == 0 and not self._pending():
                if not self._skip_between():
                    self._done = True
                    break
            if not self._in and not self._pending():
                self._in = self._read_in(1 << 20)
                if not self._in:
                    if self._member_data and not self._d.eof:
                        self.problem = f"{self.codec} stream ends before its end marker (file cut short)"
                    self._done = True
                    break
            try:
                # (the output cut at multiples of _PIECE of the stream whatever ``want``: where a
                # call meets damage, and so what is given before it, is the same in any chunking)
                piece = self._give(_PIECE - self._stream_out % _PIECE)
            except Exception as e:   # noqa: BLE001 (zlib.error, LZMAError, OSError, zstandard.ZstdError…)
                self._recover(e)
                self._done = True
                break
            self._member_data = True
            self._out += piece
            self._stream_out += len(piece)
            self._ok = self._pos - len(self._in)
            if self.codec == "gzip" and self._stream_out - self._ck[2] >= _CHECKPOINT and not self._d.eof:
                self._ck = (self._d.copy(), self._ok, self._stream_out)
            if self._d.eof:                       # end of one stream
                rest = (self._d.unused_data or b"") + self._in
                self._in = b""
                if not rest:
                    rest = self._read_in(1 << 20)
                if not rest:
                    self._done = True
                elif rest.startswith(self._magic) or rest[:1] == b"\0" or (
                        self.codec == "zstd" and _is_skippable(rest)):
                    # another stream follows (after zero padding: xz stream padding; or zstd
                    # skippable frames): _skip_between drops them, the file may end there
                    self._d = self._new()
                    self._in = rest
                    self._member_data = False
                    self._stream_out = 0
                    self._ok = self._pos - len(rest)
                    self._ck = (None, self._ok, 0)
                elif not rest.strip(b"\0") and not self._read_in(1):
                    self._done = True                 # zero padding at the end (tape blocks)
                else:
                    self.problem = f"{self.codec} stream followed by bytes that are not {self.codec} (ignored)"
                    self._done = True

    def _recover(self, err: Exception) -> None:
        """The stream's data is corrupt (``err``, raised by the call that met the damage, whose
        output is lost): decompress it again from its checkpoint, the output before the bytes
        already given dropped, then in pieces of :data:`_NEAR` bytes up to the damage, and add
        what comes before it to the output. ``problem`` says where the data broke."""
        codec, d_ck, ck_pos, made = self.codec, *self._ck
        target, ok = self._stream_out, self._ok     # output given, input given without error
        got = bytearray()
        where = ok
        try:
            if codec == "bzip2":
                raise ValueError   # (a bzip2 block is checked once given whole: a damaged one is garbage)
            self._f.seek(ck_pos)
            d = d_ck.copy() if d_ck is not None else self._new()
            pos, left = ck_pos, b""       # (gzip: input the decompressor gave back)
            while True:
                limit = min(target - made, _PIECE) if made < target else _NEAR - made % _NEAR
                if left:
                    data, left = left, b""
                elif codec in ("xz", "bzip2", "lz4") and not d.needs_input:
                    data = b""
                else:
                    n = min(ok - pos, _PIECE) if pos < ok else (1 if codec in ("gzip", "zstd") else 64)
                    data = self._f.read(n)
                    if not data:
                        break
                    pos += len(data)
                where = pos
                out = d.decompress(data) if codec == "zstd" else d.decompress(data, limit)
                if codec == "gzip":
                    left = d.unconsumed_tail
                if made + len(out) > target:
                    got += out[max(target - made, 0):]
                made += len(out)
                if d.eof or len(got) > 4 * _PIECE:     # (not met again: give what was found)
                    break
        except Exception:   # noqa: BLE001 (the damage met again, or the file cannot seek)
            pass
        self._out += got
        try:
            size = self._f.seek(0, 2)
        except (OSError, ValueError):
            size = None
        made = target + len(got)
        if codec == "bzip2":
            self.problem = (f"bzip2 data corrupt ({err}): the {made} bytes of the stream decompressed before "
                            "it are read, the rest is not (bzip2recover may save the blocks after the damage)"
                            if made else f"bzip2 data corrupt ({err}): bzip2recover may save the blocks after the damage")
            return
        at = f", met at compressed offset {where} of {size}" if size is not None and size >= where else ""
        rest = (f", the {size - where} compressed bytes after it are not (a {codec} stream cannot be "
                "decompressed past damage)" if size is not None and size - where > 8 else "")
        before = f"the {made} bytes of the stream decompressed before it are read" if made else "nothing before it"
        if made and "check" in str(err).lower():
            before += " (the check covers the whole stream: the damaged bytes may be anywhere in it)"
        self.problem = f"{codec} data corrupt ({err}){at}: {before}{rest}"

    def read(self, n: int) -> bytes:
        self._fill(n)
        out = bytes(self._out[:n])
        del self._out[:n]
        return out

    def eof(self) -> bool:
        self._fill(1)
        return not self._out

    def drain(self) -> int:
        """Decompress to the end; return the number of bytes skipped."""
        n = len(self._out)
        self._out.clear()
        while not self._done:
            self._fill(1 << 20)
            n += len(self._out)
            self._out.clear()
        return n


def open_decompressing(f: BinaryIO, head: bytes) -> DecompressingReader | None:
    """A :class:`DecompressingReader` over ``f`` when ``head`` (its first bytes) is the magic of
    a compressed format, else None."""
    codec = codec_of(head)
    return DecompressingReader(f, codec) if codec else None
