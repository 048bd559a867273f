"""Chunks bounded in records as well as bytes (session 48, issue 5's memory goal on a UDP spray):
``iter_frames(records=N)`` reads its first chunk short (``FIRST_READ``) and each next one about N
records of the size the chunk before had (never more than ``chunk_bytes``), so that 32 MiB of
60-byte datagrams (~400,000 records) is not one chunk held while five batches are analysed. The
records are those of the whole file whatever the bound; captures of ordinary packets keep their
byte-sized chunks."""
from __future__ import annotations

import struct

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kscc_traffic import chunked, load_rules
from kscc_traffic.capture import files
from kscc_traffic.capture.filesets import FileSet, iter_capture
from kscc_traffic.capture.files import iter_frames, read_frames


def _pcap(sizes: list[int], t0: int = 1) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i, n in enumerate(sizes):
        out.append(struct.pack("<IIII", t0 + i, 0, n, n) + bytes([i % 251]) * n)
    return b"".join(out)


def _records(chunks) -> tuple[list[bytes], list[int], list[int]]:
    data, ts, per = [], [], []
    for fr in chunks:
        buf = bytes(fr.buf)
        data += [buf[o:o + n] for o, n in zip(fr.offset.tolist(), fr.caplen.tolist())]
        ts += np.asarray(fr.ts_ns).tolist()
        per.append(len(fr))
    return data, ts, per


@pytest.fixture
def small_minimums(monkeypatch):
    """The reads' floors scaled down with the test files (1 MiB and 4 MiB on real captures)."""
    monkeypatch.setattr(files, "_QUIET_READ_MAX", 512)
    monkeypatch.setattr(files, "FIRST_READ", 4096)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 1500), min_size=1, max_size=300), st.integers(64, 20000), st.integers(1, 200))
def test_the_records_are_the_whole_files_whatever_the_bound(tmp_path_factory, sizes, chunk, records):
    path = tmp_path_factory.mktemp("cr") / "x.pcap"
    path.write_bytes(_pcap(sizes))
    want, want_ts, _ = _records([read_frames(str(path))])
    with pytest.MonkeyPatch.context() as mp:    # (the reads' floors scaled down, as small_minimums)
        mp.setattr(files, "_QUIET_READ_MAX", 512)
        mp.setattr(files, "FIRST_READ", 4096)
        got, got_ts, _ = _records(iter_frames(str(path), chunk, records=records))
    assert got == want and got_ts == want_ts


def test_small_packets_come_in_chunks_of_about_the_bound(tmp_path, small_minimums):
    path = tmp_path / "spray.pcap"
    path.write_bytes(_pcap([60] * 5000))                # 76 bytes a record
    _, _, per = _records(iter_frames(str(path), 1 << 20, records=500))
    assert sum(per) == 5000
    assert per[0] == 4096 // 76                          # the first read: FIRST_READ bytes
    assert all(450 <= n <= 510 for n in per[1:-1]), per     # then ~500 records a chunk
    _, _, whole = _records(iter_frames(str(path), 1 << 20))
    assert whole == [5000]                               # without the bound: one chunk of the 380 kB


def test_large_packets_keep_byte_sized_chunks(tmp_path, small_minimums):
    path = tmp_path / "bulk.pcap"
    path.write_bytes(_pcap([1400] * 2000))
    _, _, bounded = _records(iter_frames(str(path), 64 << 10, records=500))
    _, _, plain = _records(iter_frames(str(path), 64 << 10))
    assert bounded[0] == 4096 // 1416 and max(plain) == max(bounded) == (64 << 10) // 1416
    assert sum(bounded) == sum(plain) == 2000


def test_a_file_sets_joined_chunks_keep_the_bound(tmp_path, small_minimums):
    paths = []
    for k in range(6):
        p = tmp_path / f"ring_{k:05d}.pcap"
        p.write_bytes(_pcap([60] * 300, t0=1 + 300 * k))
        paths.append(p)
    _, ts, per = _records(iter_capture(FileSet(tuple(paths)), 1 << 20, records=500))
    assert ts == [(1 + i) * 10**9 for i in range(1800)]
    assert max(per) <= 500 and sum(per) == 1800
    _, _, joined = _records(iter_capture(FileSet(tuple(paths)), 1 << 20))
    assert joined == [1800]                              # by bytes alone: the six files in one chunk


def test_a_spray_in_record_bounded_chunks_gives_the_whole_files_flows(tmp_path, small_minimums, monkeypatch):
    from pcapbuild import pcap_bytes, udp
    recs = [udp((f"198.18.{i >> 8 & 255}.{i & 255}", 1024 + i % 50000), ("203.0.113.5", 15000), b"x" * 18,
                t=1000 + i * 0.05) for i in range(3000)]
    path = tmp_path / "spray.pcap"
    path.write_bytes(pcap_bytes(recs))
    rules = load_rules()

    def run(records):
        monkeypatch.setattr(chunked, "CHUNK_RECORDS", records)
        ca = chunked.ChunkedAnalysis(path, rules, path.name, chunk_bytes=1 << 20)
        flows = pd.concat(list(ca.batches()), ignore_index=True)
        return flows.sort_values(["ts_ns", "uid"], kind="stable").reset_index(drop=True), ca

    whole, w = run(10**9)
    parts, c = run(300)
    assert len(whole) == 3000
    pd.testing.assert_frame_equal(parts, whole)
    assert c.stats.warnings == w.stats.warnings and c.stats.records == 3000
