"""The compiled record walks (kscc_traffic/capture/_walk.c) against their Python twins.

The reader uses the C loops when the extension was built and the Python loops otherwise; both
must give the same offsets and the same stop position on any bytes: well-framed records, damaged
lengths, cuts anywhere, both byte orders. Then, end to end, every corpus file and every damaged
variant of a sample reads to the same frames and warnings either way.
"""
from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import shared_corpus
from kscc_traffic.capture import files
from kscc_traffic.capture.files import MAX_BLOCK_BYTES, _PcapngParser, _PcapParser, read_frames
from kscc_traffic.errors import CaptureError

pytestmark = pytest.mark.skipif(files._walk is None,
                                reason="kscc_traffic.capture._walk not built (no C compiler at install)")

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "captures"


def _pcap_parser(order: str, hdr_len: int = 16) -> _PcapParser:
    magic = {("<", 16): b"\xd4\xc3\xb2\xa1", (">", 16): b"\xa1\xb2\xc3\xd4",
             ("<", 24): b"\x34\xcd\xb2\xa1", (">", 24): b"\xa1\xb2\xcd\x34"}[order, hdr_len]
    head = magic + struct.pack(order + "HHiIII", 2, 4, 0, 0, 65535, 1)
    return _PcapParser(head, "t")


def _pcapng_parser(order: str) -> _PcapngParser:
    bom = b"\x4d\x3c\x2b\x1a" if order == "<" else b"\x1a\x2b\x3c\x4d"
    shb = struct.pack(order + "II", 0x0A0D0D0A, 28) + bom + struct.pack(order + "HHqI", 1, 0, -1, 28)
    return _PcapngParser(shb, "t", True)


# pieces of a pcap buffer: a record (header + data) with a caplen of choice, or raw bytes
pcap_piece = st.one_of(
    st.tuples(st.just("rec"), st.integers(0, 300)),
    st.tuples(st.just("huge"), st.integers(0, 2**32 - 1)),   # a damaged caplen, any value
    st.tuples(st.just("raw"), st.binary(max_size=40)),
)


def _pcap_bytes(order: str, hdr_len: int, pieces) -> bytes:
    out = bytearray()
    for kind, v in pieces:
        if kind == "raw":
            out += v
        else:
            cl = v
            out += struct.pack(order + "IIII", 1, 2, cl, cl) + b"\0" * (hdr_len - 16)
            out += b"\xab" * (min(cl, 300))
    return bytes(out)


@settings(max_examples=400, deadline=None)
@given(order=st.sampled_from("<>"), hdr_len=st.sampled_from((16, 24)),
       pieces=st.lists(pcap_piece, max_size=12), cut=st.integers(0, 4000), start=st.integers(0, 30))
def test_pcap_offsets_same_as_python(order, hdr_len, pieces, cut, start):
    p = _pcap_parser(order, hdr_len)
    buf = _pcap_bytes(order, hdr_len, pieces)[:cut]
    got = p._offsets(buf, start)
    want = p._offsets_py(buf, start)
    assert (list(got[0]), got[1], got[2]) == (list(want[0]), want[1], want[2])


def _walk_result(p: _PcapParser, buf: bytes, start: int, at_eof: bool, pure: bool):
    """``p.walk``'s position, need, stop and columns, with the compiled walk or without it."""
    saved = files._walk
    if pure:
        files._walk = None
    try:
        w = p.walk(buf, start, at_eof, 100)
    finally:
        files._walk = saved
    return (w.pos, w.need, w.stop, {k: (v.dtype.str, v.tolist()) for k, v in w.cols.items()})


@settings(max_examples=300, deadline=None)
@given(order=st.sampled_from("<>"), hdr_len=st.sampled_from((16, 24)),
       pieces=st.lists(pcap_piece, max_size=12), cut=st.integers(0, 4000), start=st.integers(0, 30),
       at_eof=st.booleans(), stamps=st.lists(st.integers(0, 2**32 - 1), min_size=4, max_size=4))
def test_pcap_records_same_as_python(order, hdr_len, pieces, cut, start, at_eof, stamps):
    # the header fields the compiled walk reads on its way (pcap_records) are the ones the
    # Python reader gathers afterwards: the same columns, dtypes included, from any bytes
    p = _pcap_parser(order, hdr_len)
    buf = bytearray(_pcap_bytes(order, hdr_len, pieces))
    pos = 0
    for kind, v in pieces:     # (other times and original lengths than _pcap_bytes writes)
        if kind != "raw":
            struct.pack_into(order + "II", buf, pos, stamps[0] ^ v, stamps[1])
            struct.pack_into(order + "I", buf, pos + 12, stamps[2] if v % 3 else stamps[3])
            pos += hdr_len + min(v, 300)
        else:
            pos += len(v)
    buf = bytes(buf[:cut])
    start = min(start, len(buf))        # (the reader never walks from past its buffer)
    fast = _walk_result(p, buf, start, at_eof, pure=False)
    assert fast == _walk_result(p, buf, start, at_eof, pure=True)


def test_pcap_records_reads_the_header_fields():
    p = _pcap_parser(">")
    rec = struct.pack(">IIII", 1_700_000_000, 999_999, 4, 2**31 + 5) + b"abcd"
    # a last record overrunning the buffer is in the offsets (the walk takes it back); its
    # original length, past the end, reads 0
    offs, heads, pos, cl = p._records(rec + rec[:14], 0)
    assert (list(offs), pos, cl) == ([0, 20], 40, -1)
    assert heads.tolist() == [[1_700_000_000, 999_999, 4, 2**31 + 5], [1_700_000_000, 999_999, 4, 0]]
    w = p.walk(rec + rec, 0, True, 0)
    assert w.cols["ts_ns"].tolist() == [1_700_000_000_999_999_000] * 2
    assert w.cols["wirelen"].tolist() == [2**31 - 1] * 2       # clamped to int32
    assert p.notes["wirelen_clamped"] == 2


def test_pcap_offsets_stops_at_damage_and_past_end():
    p = _pcap_parser("<")
    rec = struct.pack("<IIII", 1, 2, 4, 4) + b"abcd"
    bad = struct.pack("<IIII", 1, 2, p.bound + 1, 9)
    offs, pos, cl = p._offsets(rec + rec + bad + rec, 0)
    assert (list(offs), pos, cl) == ([0, 20], 40, p.bound + 1)
    offs, pos, cl = p._offsets(rec + rec[:-2], 0)   # second record's data overruns
    assert (list(offs), pos, cl) == ([0, 20], 40, -1)
    offs, pos, cl = p._offsets(rec + rec[:11], 0)   # 11 bytes of a header: not a record
    assert (list(offs), pos, cl) == ([0], 20, -1)


# pieces of a pcapng buffer: well-framed EPBs, EPBs with a wrong trailer / bad length, other
# blocks, raw bytes
def _block(order: str, btype: int, body: int, trail_delta: int = 0, blen: int | None = None) -> bytes:
    n = 12 + body if blen is None else blen
    return (struct.pack(order + "II", btype, n) + b"\x5a" * max(body, 0)
            + struct.pack(order + "I", n + trail_delta))


pcapng_piece = st.one_of(
    st.tuples(st.just("epb"), st.integers(20, 200).map(lambda b: b & ~3)),
    st.tuples(st.just("badtrail"), st.integers(20, 60).map(lambda b: b & ~3)),
    st.tuples(st.just("other"), st.integers(0, 40).map(lambda b: b & ~3)),
    st.tuples(st.just("odd"), st.integers(20, 41)),          # length not a multiple of 4
    st.tuples(st.just("raw"), st.binary(max_size=24)),
)


def _pcapng_bytes(order: str, pieces) -> bytes:
    out = bytearray()
    for kind, v in pieces:
        if kind == "epb":
            out += _block(order, 6, v)
        elif kind == "badtrail":
            out += _block(order, 6, v, trail_delta=4)
        elif kind == "other":
            out += _block(order, 5, v)
        elif kind == "odd":
            out += _block(order, 6, v, blen=12 + v)
        else:
            out += v
    return bytes(out)


@settings(max_examples=400, deadline=None)
@given(order=st.sampled_from("<>"), pieces=st.lists(pcapng_piece, max_size=12),
       cut=st.integers(0, 3000), start=st.integers(0, 16))
def test_pcapng_epb_run_same_as_python(order, pieces, cut, start):
    p = _pcapng_parser(order)
    buf = _pcapng_bytes(order, pieces)[:cut]
    a, b = files.array("q"), files.array("q")
    assert p._epb_run(buf, start, a) == p._epb_run_py(buf, start, b)
    assert list(a) == list(b)


def test_pcapng_epb_run_needs_the_next_header():
    p = _pcapng_parser("<")
    epb = _block("<", 6, 20)
    a = files.array("q")
    # the last EPB is followed by fewer than 8 bytes: it is left to the careful path
    assert p._epb_run(epb + epb + b"\0" * 7, 0, a) == 32 and list(a) == [0]
    a = files.array("q")
    assert p._epb_run(epb + epb + _block("<", 6, 20, blen=MAX_BLOCK_BYTES + 4), 0, a) == 64
    assert list(a) == [0, 32]


def _outcome(data: bytes, monkeypatch, pure: bool):
    """What reading ``data`` gives: the frames' columns and stats, or the error raised."""
    with monkeypatch.context() as m:
        if pure:
            m.setattr(files, "_walk", None)
        try:
            fr = read_frames(data)
        except CaptureError as e:
            return ("error", type(e).__name__, str(e))
    return ({c: getattr(fr, c).tolist() for c in ("ts_ns", "linktype", "offset", "caplen", "wirelen")},
            fr.stats)


def _same_either_way(data: bytes, monkeypatch) -> bool:
    """Both walks give the same; True when there were frames to compare."""
    fast = _outcome(data, monkeypatch, pure=False)
    assert fast == _outcome(data, monkeypatch, pure=True)
    return fast[0] != "error"


def _captures() -> list[Path]:
    corpus = shared_corpus("")
    return sorted(p for p in corpus.rglob("*") if p.is_file()
                  and p.suffix in (".pcap", ".pcapng", ".cap", ".gz", ".ntar"))


def test_corpus_reads_the_same_either_way(monkeypatch):
    paths = _captures()
    assert len(paths) > 20
    assert sum(_same_either_way(p.read_bytes(), monkeypatch) for p in paths) > 20


def test_damaged_samples_read_the_same_either_way(monkeypatch):
    rng = random.Random(20261129)
    paths = sorted(SAMPLES.glob("*.pcap*"))
    assert paths, "samples/captures is generated by samples/generate.py and kept in the repo"
    done = 0
    for path in paths:
        data = path.read_bytes()
        for _ in range(15):
            d = bytearray(data)
            what = rng.randrange(3)
            if what == 0:                              # cut anywhere after the header
                d = d[:rng.randrange(24, len(d) + 1)]
            elif what == 1:                            # flip bytes
                for _ in range(rng.randrange(1, 6)):
                    d[rng.randrange(24, len(d))] ^= 1 << rng.randrange(8)
            else:                                      # splice a piece elsewhere
                i, j = sorted(rng.randrange(24, len(d)) for _ in range(2))
                k = rng.randrange(24, len(d))
                d[k:k] = d[i:j]
            done += _same_either_way(bytes(d), monkeypatch)
    assert done > 100
