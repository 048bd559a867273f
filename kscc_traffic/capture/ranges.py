"""Many byte ranges copied at once: the payload gathers of the hot path.

Two operations on byte buffers with int64 arrays of offsets and lengths:

- :func:`copy_ranges` — ``dst[dst_at[i]:dst_at[i] + length[i]] = src[src_at[i]:src_at[i] + length[i]]``
  for every ``i``, in order (used to build the TCP streams, :mod:`kscc_traffic.streams`);
- :func:`gather` — the ranges of ``src`` back to back as one new ``bytes`` (used to keep the
  payloads of carried packets, :meth:`kscc_traffic.capture.packets.Packets.compact`).

numpy has no many-ranges copy (a byte-index gather needs an index eight times the size of the
bytes), so both are compiled (:mod:`._ranges`, optional, built from ``_ranges.c`` by ``setup.py``):
one ``memcpy`` per range, about 0.05 s for the 1 M-packet benchmark's 0.5 M ranges and 400 MB.
Where the extension was not built, the Python twins :func:`copy_ranges_py` and :func:`gather_py`
give the same bytes and raise the same errors (``tests/test_ranges.py`` compares them), a few
times slower.
"""
from __future__ import annotations

import numpy as np

try:   # the loops compiled (optional: the twins below give the same result)
    from . import _ranges
except ImportError:  # pragma: no cover - depends on the build
    _ranges = None

__all__ = ["copy_ranges", "gather", "copy_ranges_py", "gather_py"]

_JOIN = 128          # ranges joined per copy in copy_ranges_py
_BLOCK = _JOIN << 9  # ranges per block of Python int lists (a multiple of _JOIN)


def _int64(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int64)


def _outside(buf_len: int, at: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Per range ``[at[i], at[i] + length[i])``: not inside ``range(buf_len)`` (negative offsets
    and lengths included)."""
    return (length < 0) | (at < 0) | (at > buf_len - length)


def _check(bad: np.ndarray) -> None:
    """ValueError naming the first range of ``bad`` (bool array), as the compiled functions."""
    if bad.any():
        raise ValueError(f"range {int(np.argmax(bad))} outside its buffer")


def copy_ranges(dst, dst_at, src, src_at, length) -> None:
    """``dst[dst_at[i]:dst_at[i] + length[i]] = src[src_at[i]:src_at[i] + length[i]]`` for every
    ``i``, in order.

    :param dst: a writable contiguous byte buffer (bytearray, numpy uint8 array, memoryview).
    :param src: a contiguous byte buffer (bytes, mmap, numpy uint8 array, memoryview).
    :param dst_at, src_at, length: int arrays of the same shape (k,): byte offsets and counts.
    :raises ValueError: a range is not inside its buffer, or the arrays differ in length;
        nothing is copied then.
    """
    dst_at, src_at, length = _int64(dst_at), _int64(src_at), _int64(length)
    if _ranges is not None:
        _ranges.copy_ranges(dst, dst_at, src, src_at, length)
    else:  # pragma: no cover - depends on the build (the twin is tested directly)
        copy_ranges_py(dst, dst_at, src, src_at, length)


def gather(src, src_at, length) -> bytes:
    """The ranges ``src[src_at[i]:src_at[i] + length[i]]`` back to back, as one new ``bytes``
    of ``length.sum()`` bytes.

    :param src: a contiguous byte buffer; :param src_at, length: int arrays of the same shape.
    :raises ValueError: a range is not inside ``src``, or the arrays differ in length.
    """
    src_at, length = _int64(src_at), _int64(length)
    if _ranges is not None:
        return _ranges.gather(src, src_at, length)
    return gather_py(src, src_at, length)  # pragma: no cover - depends on the build


def copy_ranges_py(dst, dst_at: np.ndarray, src, src_at: np.ndarray, length: np.ndarray) -> None:
    """:func:`copy_ranges` in Python: ranges that are back to back in ``dst`` are joined
    ``_JOIN`` at a time (``bytes.join`` of memoryview slices, a small block that stays in cache)
    and each block copied once, ~0.3-0.7 µs per range."""
    dst_at, src_at, length = _int64(dst_at), _int64(src_at), _int64(length)
    k = len(length)
    if len(dst_at) != k or len(src_at) != k:
        raise ValueError("dst_at, src_at and length differ in length")
    dst, src = memoryview(dst).cast("B"), memoryview(src).cast("B")
    _check(_outside(len(dst), dst_at, length) | _outside(len(src), src_at, length))
    if k == 0:
        return
    cut = np.zeros(k, bool)
    cut[::_JOIN] = True
    cut[1:] |= dst_at[1:] != dst_at[:-1] + length[:-1]
    starts = np.nonzero(cut)[0]
    ends = np.r_[starts[1:], k]
    src_end = src_at + length
    join = b"".join
    for lo in range(0, k, _BLOCK):  # the Python int lists one block at a time (memory)
        hi = min(k, lo + _BLOCK)
        s0 = src_at[lo:hi].tolist()
        s1 = src_end[lo:hi].tolist()
        a, b = np.searchsorted(starts, [lo, hi])
        for z0, z1, d in zip((starts[a:b] - lo).tolist(), (ends[a:b] - lo).tolist(),
                             dst_at[starts[a:b]].tolist()):
            piece = join([src[i:j] for i, j in zip(s0[z0:z1], s1[z0:z1])])
            dst[d:d + len(piece)] = piece


def gather_py(src, src_at: np.ndarray, length: np.ndarray) -> bytes:
    """:func:`gather` in Python: one ``bytes.join`` of memoryview slices."""
    src_at, length = _int64(src_at), _int64(length)
    if len(src_at) != len(length):
        raise ValueError("src_at and length differ in length")
    mv = memoryview(src).cast("B")
    _check(_outside(len(mv), src_at, length))
    return b"".join([mv[o:o + n] for o, n in zip(src_at.tolist(), length.tolist())])
