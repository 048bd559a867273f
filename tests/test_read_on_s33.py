"""Chunked reading of a plain capture file reads each chunk once (session 33 speed work):
``capture.files._FileReader.read_on`` reads the start of the record a chunk cut again from the
file instead of joining it to the next read, giving the bytes ``tail + read(n)`` gives; the
chunks of :func:`iter_frames` are the records of :func:`read_frames`, whatever the chunk size."""
from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kscc_traffic.capture import files
from kscc_traffic.capture.files import iter_frames, read_frames


def _pcap(sizes: list[int]) -> bytes:
    """A classic pcap (Ethernet) whose records have captured lengths ``sizes``, each record's
    bytes its index repeated (so a wrong offset shows), times 1, 2, 3… s."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i, n in enumerate(sizes):
        out.append(struct.pack("<IIII", i + 1, 0, n, n) + bytes([i % 251]) * n)
    return b"".join(out)


def _frames(chunks) -> tuple[list[bytes], np.ndarray]:
    data, ts = [], []
    for fr in chunks:
        buf = bytes(fr.buf)
        data += [buf[o:o + n] for o, n in zip(fr.offset.tolist(), fr.caplen.tolist())]
        ts.append(np.asarray(fr.ts_ns))
    return data, (np.concatenate(ts) if ts else np.zeros(0, np.int64))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 3000), min_size=1, max_size=40), st.integers(64, 5000))
def test_chunks_are_the_whole_files_records(tmp_path_factory, sizes, chunk):
    path = tmp_path_factory.mktemp("ro") / "x.pcap"
    path.write_bytes(_pcap(sizes))
    whole = read_frames(str(path))
    want, want_ts = _frames([whole])
    got, got_ts = _frames(iter_frames(str(path), chunk))
    assert got == want
    assert [len(d) for d in got] == sizes
    assert got_ts.tolist() == want_ts.tolist() == [(i + 1) * 10**9 for i in range(len(sizes))]


def test_read_on_reads_the_tail_again_from_the_file(tmp_path):
    path = tmp_path / "b.bin"
    path.write_bytes(bytes(range(256)) * 4)
    with open(path, "rb") as f:
        r = files._FileReader(f)
        first = r.read(100)
        out = r.read_on(first[-7:], 50)
        assert out == first[-7:] + bytes(range(256))[100:150]
        assert f.tell() == 150
        assert r.read_on(b"", 10) == bytes(range(150, 160))


def test_read_on_keeps_its_tail_when_the_file_changed_under_it(tmp_path):
    path = tmp_path / "c.bin"
    path.write_bytes(b"a" * 100 + b"b" * 100)
    with open(path, "rb") as f:
        r = files._FileReader(f)
        head = r.read(100)
        with open(path, "r+b") as w:      # the bytes already read are rewritten
            w.write(b"z" * 100)
        out = r.read_on(head[-10:], 20)
    assert out == b"a" * 10 + b"b" * 20


def test_read_on_without_seeking_joins(tmp_path):
    class NoSeek(io.BytesIO):
        def seekable(self):
            return False
    r = files._FileReader(NoSeek(b"0123456789"))
    assert r.read(4) == b"0123"
    assert r.read_on(b"23", 3) == b"23456"
