"""The many-ranges byte copies (kscc_traffic.capture.ranges): the compiled functions and their
Python twins give the same bytes and the same errors."""
from __future__ import annotations

import mmap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kscc_traffic.capture import ranges as R

COMPILED = R._ranges
needs_compiled = pytest.mark.skipif(COMPILED is None, reason="kscc_traffic.capture._ranges was not "
                                    "built (no C compiler at install); the Python twins are tested alone")


def _copy_impls():
    impls = [("python", R.copy_ranges_py)]
    if COMPILED is not None:
        impls.append(("compiled", COMPILED.copy_ranges))
    return impls


def _gather_impls():
    impls = [("python", R.gather_py)]
    if COMPILED is not None:
        impls.append(("compiled", COMPILED.gather))
    return impls


def _layout(k: int, seed: int):
    """k ranges of a 300 kB random source placed back to back in the destination, 5 % of them
    after a gap (the slow-path streams' holes), across join groups and Python-list blocks."""
    rng = np.random.default_rng(seed)
    src = rng.integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    length = rng.choice([0, 1, 2, 60, 1460], k).astype(np.int64)
    gap = np.where(rng.random(k) < 0.05, rng.integers(1, 50, k), 0)
    dst_at = np.cumsum(length + gap) - length
    src_at = rng.integers(0, len(src) - 1460, k).astype(np.int64)
    size = int(dst_at[-1] + length[-1]) if k else 0
    return src, dst_at, src_at, length, size


@pytest.mark.parametrize("k", [0, 1, 127, 128, 129, 3 * R._BLOCK + 77])
@pytest.mark.parametrize("name,copy", _copy_impls())
def test_copy_ranges_bytes(name, copy, k):
    src, dst_at, src_at, length, size = _layout(k, k)
    out = bytearray(size)
    copy(memoryview(out), dst_at, memoryview(src), src_at, length)
    want = bytearray(size)
    for d, s, n in zip(dst_at.tolist(), src_at.tolist(), length.tolist()):
        want[d:d + n] = src[s:s + n]
    assert out == want
    if k:
        assert any(want)  # (the check is not vacuous: random bytes were copied)


@pytest.mark.parametrize("k", [0, 1, 5000])
@pytest.mark.parametrize("name,gather", _gather_impls())
def test_gather_bytes(name, gather, k):
    src, _, src_at, length, _ = _layout(k, 1000 + k)
    got = gather(src, src_at, length)
    assert type(got) is bytes
    assert got == b"".join(src[s:s + n] for s, n in zip(src_at.tolist(), length.tolist()))
    assert len(got) == int(length.sum())


@pytest.mark.parametrize("name,copy", _copy_impls())
def test_copy_ranges_buffer_kinds(name, copy):
    """Sources and destinations of the kinds the callers pass: bytes, mmap, numpy arrays."""
    src = bytes(range(256)) * 4
    with mmap.mmap(-1, len(src)) as m:
        m[:] = src
        for source in (src, m, np.frombuffer(src, np.uint8), memoryview(src)):
            out = np.zeros(10, np.uint8)
            copy(memoryview(out), np.array([0, 4]), source, np.array([300, 1020]), np.array([4, 4]))
            assert out.tobytes() == src[300:304] + src[1020:1024] + b"\0\0"
        assert R.gather_py(m, np.array([255, 0]), np.array([2, 1])) == b"\xff\x00\x00"


@pytest.mark.parametrize("name,copy", _copy_impls())
@pytest.mark.parametrize("dst_at,src_at,length", [
    ([0], [9], [2]),      # source overrun
    ([9], [0], [2]),      # destination overrun
    ([-1], [0], [1]),     # negative offsets (a memoryview slice would wrap around)
    ([0], [-1], [1]),
    ([0], [0], [-1]),     # negative length
    ([0, 0], [0], [1]),   # arrays of different lengths
])
def test_copy_ranges_errors_copy_nothing(name, copy, dst_at, src_at, length):
    out = bytearray(10)
    with pytest.raises(ValueError):
        copy(memoryview(out), np.array(dst_at, np.int64), bytes(range(10)), np.array(src_at, np.int64),
             np.array(length, np.int64))
    assert out == bytearray(10)


@pytest.mark.parametrize("name,gather", _gather_impls())
@pytest.mark.parametrize("src_at,length", [([9], [2]), ([-1], [1]), ([0], [-1]), ([0, 1], [1])])
def test_gather_errors(name, gather, src_at, length):
    with pytest.raises(ValueError):
        gather(bytes(10), np.array(src_at, np.int64), np.array(length, np.int64))


@needs_compiled
def test_compiled_refuses_other_integer_arrays():
    """The compiled functions read native int64 only (the wrappers convert): another dtype is a
    TypeError, not a misread; a read-only destination a BufferError."""
    with pytest.raises(TypeError):
        COMPILED.gather(b"abc", np.array([0], np.int32), np.array([1], np.int64))
    with pytest.raises(TypeError):
        COMPILED.gather(b"abc", np.array([0], ">i8"), np.array([1], np.int64))
    with pytest.raises(TypeError):
        COMPILED.copy_ranges(bytearray(3), np.array([0], np.uint64), b"abc", np.array([0]), np.array([1]))
    with pytest.raises(BufferError):  # (a read-only destination)
        COMPILED.copy_ranges(b"xyz", np.array([0]), b"abc", np.array([0]), np.array([1]))
    assert R.gather(b"abcd", np.array([3, 0], np.int32), [1, 2]) == b"dab"


@needs_compiled
@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=64),
       st.lists(st.tuples(st.integers(-3, 70), st.integers(-3, 70), st.integers(-2, 20)), max_size=12))
def test_compiled_and_python_agree(src, spans):
    """Any ranges, in or out of their buffers: the same bytes or the same error, for both."""
    d = np.array([s[0] for s in spans], np.int64)
    s = np.array([s[1] for s in spans], np.int64)
    n = np.array([s[2] for s in spans], np.int64)
    results = []
    for copy in (R.copy_ranges_py, COMPILED.copy_ranges):
        out = bytearray(80)
        try:
            copy(memoryview(out), d, src, s, n)
            results.append(bytes(out))
        except ValueError as e:
            results.append(("error", str(e), bytes(out)))
    assert results[0] == results[1]
    got = []
    for gather in (R.gather_py, COMPILED.gather):
        try:
            got.append(gather(src, s, n))
        except ValueError as e:
            got.append(("error", str(e)))
    assert got[0] == got[1]


def test_wrappers_without_the_extension(monkeypatch):
    """Where the extension was not built, copy_ranges and gather run the twins (same bytes)."""
    src = bytes(range(200))
    want_gather = R.gather(src, [5, 100], [3, 2])
    out_c = bytearray(6)
    R.copy_ranges(out_c, [0, 4], src, [10, 20], [2, 2])
    monkeypatch.setattr(R, "_ranges", None)
    assert R.gather(src, [5, 100], [3, 2]) == want_gather == bytes([5, 6, 7, 100, 101])
    out_p = bytearray(6)
    R.copy_ranges(out_p, [0, 4], src, [10, 20], [2, 2])
    assert out_p == out_c == bytearray([10, 11, 0, 0, 20, 21])
