"""Compressed captures: ``read(n)``/``eof()``/``drain()`` readers that decompress on the fly.

Wireshark opens a capture compressed with gzip, zstd or lz4 as it opens the capture itself;
these readers give the capture readers (:mod:`kscc_traffic.capture.files`) the same, plus xz and
bzip2 (common for captures sent by mail or attached to a ticket). The format is recognised by
its first bytes (:func:`codec_of`), not by the file's name.

Each reader produces at most about ``n`` bytes per ``read(n)`` from bounded pieces of input
(no decompression bomb takes the memory), reads several concatenated streams or frames (``cat
a.pcap.gz b.pcap.gz``, pigz, pbzip2 and pzstd output), accepts zero padding after the last one
(tape blocks), and never raises on damage: a stream cut short or corrupt ends the data where it
breaks and ``problem`` says why, in one line.

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
}

#: compressed bytes given to a decompressor at a time (zstd's decompressor has no output limit:
#: its output per call is bounded by the input given)
_PIECE = 1 << 16


def codec_of(head: bytes) -> str | None:
    """The compression format whose magic ``head`` starts with (:data:`CODEC_MAGICS`), or None."""
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

    def _give(self, want: int) -> bytes:
        """Give the decompressor input; return the output (at most about ``want`` bytes)."""
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

    def _fill(self, want: int) -> None:
        while len(self._out) < want and not self._done:
            if not self._in and not self._pending():
                self._in = self._f.read(1 << 20)
                if not self._in:
                    if self._member_data and not self._d.eof:
                        self.problem = f"{self.codec} stream ends before its end marker (file cut short)"
                    self._done = True
                    break
            try:
                piece = self._give(min(max(want - len(self._out), 1), _PIECE))
            except Exception as e:   # noqa: BLE001 (zlib.error, LZMAError, OSError, zstandard.ZstdError…)
                self.problem = f"{self.codec} data corrupt ({e})"
                self._done = True
                break
            self._member_data = True
            self._out += piece
            if self._d.eof:                       # end of one stream
                rest = (self._d.unused_data or b"") + self._in
                self._in = b""
                if not rest:
                    rest = self._f.read(1 << 20)
                if not rest:
                    self._done = True
                elif rest.startswith(self._magic):     # another stream follows
                    self._d = self._new()
                    self._in = rest
                    self._member_data = False
                elif not rest.strip(b"\0") and not self._f.read(1):
                    self._done = True                 # zero padding at the end (tape blocks)
                else:
                    self.problem = f"{self.codec} stream followed by bytes that are not {self.codec} (ignored)"
                    self._done = True

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
