"""Damage in the middle of a capture is read past: the reader finds where whole records start
again (a run of plausible pcap records / pcapng blocks, as pcapfix does) and reads on, whole and
in chunks alike; all-zero pcap record headers (a zero-filled page) are not records."""
from __future__ import annotations

import random
import struct

import pytest

from pcapbuild import pcap_bytes, tcp_session, udp

from kscc_traffic.analyze import check_capture
from kscc_traffic.capture.files import iter_frames, read_frames
from kscc_traffic.capture.resync import CHAIN, find_pcap_record, find_pcapng_block

T0 = 1_764_500_000.0


def _records(n_sessions=12):
    recs = []
    for i in range(n_sessions):
        recs += tcp_session(("192.0.2.10", 50000 + i), ("203.0.113.10", 23101), t0=T0 + i,
                            c_data=b"q" * (40 + i), s_data=b"r" * (900 + 7 * i))
    return recs


def _epb(ts_us: int, data: bytes) -> bytes:
    pad = b"\0" * (-len(data) % 4)
    body = struct.pack("<IIIII", 0, ts_us >> 32, ts_us & 0xFFFFFFFF, len(data), len(data)) + data + pad
    n = 12 + len(body)
    return struct.pack("<II", 6, n) + body + struct.pack("<I", n)


SHB = struct.pack("<IIIHHq", 0x0A0D0D0A, 28, 0x1A2B3C4D, 1, 0, -1) + struct.pack("<I", 28)
IDB = struct.pack("<IIHHI", 1, 20, 1, 0, 65535) + struct.pack("<I", 20)


def _pcapng(recs) -> tuple[bytes, list[int]]:
    """The file and each record's block offset."""
    out, offs, pos = [SHB, IDB], [], len(SHB) + len(IDB)
    for t, p in recs:
        b = _epb(round(t * 1e6), bytes(p))
        offs.append(pos)
        out.append(b)
        pos += len(b)
    return b"".join(out), offs


def _pcap_offsets(recs) -> list[int]:
    offs, pos = [], 24
    for _, p in recs:
        offs.append(pos)
        pos += 16 + len(bytes(p))
    return offs


def _same_in_chunks(data: bytes, whole) -> None:
    for size in (64, 700, 4096):
        parts = list(iter_frames(data, size))
        got = [(int(t), p.data(i)) for p in parts for i, t in enumerate(p.ts_ns)]
        assert got == [(int(t), whole.data(i)) for i, t in enumerate(whole.ts_ns)], size
        assert parts[-1].stats.warnings == whole.stats.warnings


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
@pytest.mark.parametrize("shift", [0, 6, 1000])
def test_a_zero_filled_region_is_read_past(fmt, shift):
    """4 KiB of zeros written over the file from record 40 on (plus ``shift`` bytes): every
    record that starts after the zeros is read again."""
    recs = _records()
    if fmt == "pcap":
        data, offs = pcap_bytes(recs), _pcap_offsets(recs)
    else:
        data, offs = _pcapng(recs)
    at = offs[40] + shift
    damaged = data[:at] + b"\0" * 4096 + data[at + 4096:]
    whole = read_frames(damaged)
    ends = offs[1:] + [len(data)]
    before = [bytes(p) for (_, p), e in zip(recs, ends) if e <= at]
    after = [bytes(p) for (_, p), o in zip(recs, offs) if o >= at + 4096]
    got = [whole.data(i) for i in range(len(whole))]
    assert got[:len(before)] == before and got[len(got) - len(after):] == after
    # (a pcap record whose header begins before the zeros is read, its bytes zeroed: no more)
    assert len(got) - len(before) - len(after) == (1 if fmt == "pcap" and at > offs[len(before)] else 0)
    st = whole.stats
    assert st.damage_offset is None and st.bytes_read + st.skipped_bytes == len(damaged)
    assert any("reading resumed at offset" in w for w in st.warnings), st.warnings
    if fmt == "pcap":   # the zeros read as 16-byte headers are said as such, not as frames
        assert any("all-zero record headers" in w and "zero-filled region" in w for w in st.warnings)
    _same_in_chunks(damaged, whole)


def test_random_garbage_is_read_past_and_a_lone_fake_header_is_not_followed():
    recs = _records()
    data, offs = pcap_bytes(recs), _pcap_offsets(recs)
    rnd = random.Random(7)
    garbage = bytes(rnd.getrandbits(8) for _ in range(3000))
    # one plausible-looking record header in the garbage, followed by more garbage
    fake = struct.pack("<IIII", int(T0) + 3, 5, 64, 64)
    garbage = garbage[:500] + fake + garbage[516:]
    damaged = data[:offs[30] + 5] + garbage + data[offs[30] + 5 + 3000:]
    whole = read_frames(damaged)
    first_after = next(i for i, o in enumerate(offs) if o >= offs[30] + 5 + 3000)
    got = [whole.data(i) for i in range(len(whole))]
    assert got[:30] == [bytes(p) for _, p in recs[:30]]
    assert got[-(len(recs) - first_after):] == [bytes(p) for _, p in recs[first_after:]]
    _same_in_chunks(damaged, whole)


def test_find_pcap_record_needs_a_run_and_says_when_it_needs_more_bytes():
    recs = _records(2)
    data = pcap_bytes(recs)
    offs = _pcap_offsets(recs)
    kw = dict(big=False, hdr_len=16, ns=False, bound=262144, last_sec=int(T0))
    body = data[24:]
    assert find_pcap_record(b"\xee" * 5 + body, 0, at_eof=True, **kw) == (5, None)
    # the run goes past the bytes given: read more (not decided yet)
    cut = b"\xee" * 5 + body[:offs[CHAIN - 1] - 24 + 10]
    assert find_pcap_record(cut, 0, at_eof=False, **kw) == (5, "more")
    # the same bytes at the end of the file: the run is cut, no record there
    assert find_pcap_record(cut, 0, at_eof=True, **kw) == (None, None)
    # a run that ends exactly at the end of the file is whole
    assert find_pcap_record(cut[:-10], 0, at_eof=True, **kw) == (5, None)
    # a time far from the capture's: not a record
    assert find_pcap_record(b"\xee" * 5 + body, 0, at_eof=True, **{**kw, "last_sec": int(T0) + 30 * 86400}) \
        == (None, None)


def test_find_pcapng_block_checks_the_trailing_length_and_the_interface():
    recs = _records(2)
    data, offs = _pcapng(recs)
    tail = data[offs[0]:]
    kw = dict(big=False, bound=1 << 20, at_eof=True)
    assert find_pcapng_block(b"\0" * 8 + tail, 0, 0, interfaces=1, **kw) == (8, None)
    # an EPB naming interface 3 where the section has 1 is not a block to read on from
    assert find_pcapng_block(b"\0" * 8 + tail, 0, 0, interfaces=0, **kw) == (None, None)
    # blocks start on 4-byte boundaries of the file: offset 8 of a buffer that starts at 2 is not one
    assert find_pcapng_block(b"\0" * 8 + tail, 0, 2, interfaces=1, **kw) == (None, None)


def test_damage_right_after_the_file_header_is_not_the_end(tmp_path):
    """Damage before the first record used to make the capture unusable; what follows is read."""
    recs = _records(3)
    data = pcap_bytes(recs)
    damaged = data[:24] + struct.pack("<IIII", 0, 0, 0xFFFFFFF0, 0xFFFFFFF0) + b"\x99" * 40 + data[24:]
    p = tmp_path / "d.pcap"
    p.write_bytes(damaged)
    check_capture(p)
    fr = read_frames(p)
    assert len(fr) == len(recs) and fr.stats.skipped_bytes == 56


def test_a_capture_with_udp_only_after_the_damage():
    recs = [udp(("192.0.2.10", 40000 + i), ("192.0.2.255", 15000), b"x" * 30, t=T0 + i) for i in range(8)]
    data, offs = pcap_bytes(recs), _pcap_offsets(recs)
    damaged = data[:offs[2]] + b"\0" * 7 + data[offs[3]:]
    fr = read_frames(damaged)
    assert len(fr) == 7 and fr.data(2) == bytes(recs[3][1])


def test_zeros_right_after_the_header_ending_inside_a_record_are_read_past():
    """(newcomer 19 F4) zeros from the file header on, ending inside a record: the last zero bytes
    and the record's tail read as one empty record must not become the time the records after
    are compared with."""
    recs = _records()
    data, offs = pcap_bytes(recs), _pcap_offsets(recs)
    for end in range(offs[3] + 1, offs[3] + 17):
        damaged = data[:24] + b"\0" * (end - 24) + data[end:]
        fr = read_frames(damaged)
        after = [bytes(p) for (_, p), o in zip(recs, offs) if o >= end]
        got = [fr.data(i) for i in range(len(fr))]
        assert got[len(got) - len(after):] == after, end


def test_the_tshark_engine_reads_the_copy_past_a_zero_filled_page(tmp_path):
    """(newcomer 19 F14) tshark counts a zero-filled page's headers as frames and stops at the
    misaligned record after it, having read more frames than the built-in reader keeps: the
    tshark engine still dissects the built-in reader's records past the damage."""
    import shutil
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed (apt-get install tshark)")
    from kscc_traffic.analyze import analyze_file
    from kscc_traffic.rules import load_rules
    recs = _records()
    data, offs = pcap_bytes(recs), _pcap_offsets(recs)
    at = offs[40] + 6
    p = tmp_path / "z.pcap"
    p.write_bytes(data[:at] + b"\0" * 4096 + data[at + 4096:])
    rules = load_rules()
    b, t = analyze_file(p, rules), analyze_file(p, rules, "tshark")
    assert len(t.flows) == len(b.flows) == 10       # (the sessions after the zeros included)
    assert sorted(t.flows.history) == sorted(b.flows.history)
    assert any("dissected instead a copy" in w for w in t.warnings)
