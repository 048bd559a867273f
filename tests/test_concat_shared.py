"""The chunked reading's one-copy batch buffer (chunked._join with the carried packets' bytes
first, then Packets.concat_shared) against the plain Packets.concat it replaces: the same rows,
the same payload bytes; and a chunked analysis that takes that path gives the whole file's flows.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import chunkcmp
from kscc_traffic.capture.decode import decode
from kscc_traffic.capture.files import read_frames
from kscc_traffic.capture.packets import PACKET_COLUMNS, Packets

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "captures"


def _payloads(p: Packets) -> list[bytes]:
    return [p.payload(i) if p.cols["pl_off"][i] >= 0 else b"" for i in range(len(p))]


def test_concat_shared_gives_what_concat_gives():
    frames = read_frames(SAMPLES / "baseline_agent.pcap")
    pk = decode(frames)
    assert len(pk) > 20
    half = len(pk) // 2
    # the carried packets: every other one of the first half, with a buffer of their own
    carry = pk.compact(np.arange(0, half, 2))
    rest = pk.take(np.arange(half, len(pk)))
    want = Packets.concat([carry, rest])
    # the same rows, with the rest's bytes in a buffer that starts with carry's bytes
    buf = bytes(carry.buf) + bytes(rest.buf)
    cols = dict(rest.cols)
    cols["pl_off"] = np.where(rest.cols["pl_off"] >= 0, rest.cols["pl_off"] + len(carry.buf), -1)
    moved = Packets(buf, cols, rest.stats)
    got = Packets.concat_shared(carry, moved)
    assert got.buf is buf
    assert _payloads(got) == _payloads(want)
    assert sum(len(x) for x in _payloads(got)) > 100
    for k in PACKET_COLUMNS:
        if k != "pl_off":
            assert got.cols[k].dtype == want.cols[k].dtype
            assert np.array_equal(got.cols[k], want.cols[k]), k
    with pytest.raises(ValueError):
        Packets.concat_shared(carry.take(np.zeros(0, np.int64)), moved)


def test_chunked_reading_takes_the_shared_buffer_and_gives_the_whole_files_flows(monkeypatch):
    calls = []
    real = Packets.concat_shared.__func__

    def counting(cls, head, rest):
        calls.append((len(head), len(rest)))
        return real(cls, head, rest)

    monkeypatch.setattr(Packets, "concat_shared", classmethod(counting))
    path = SAMPLES / "baseline_agent.pcap"
    w = chunkcmp.assert_same(path, [4096, 20_000])
    assert len(w) > 5
    assert calls, "no batch took the one-copy buffer"
