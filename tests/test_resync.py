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


def _same_in_chunks(data: bytes, whole, sizes=(64, 700, 4096)) -> None:
    for size in sizes:
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
    # … unless the interfaces' clocks are given (a torn copy shifts the blocks off that
    # boundary): then the run must also have times near the capture's, on a usable interface
    us = [(10**6, 0)]
    assert find_pcapng_block(b"\0" * 8 + tail, 0, 2, interfaces=1, clocks=us, last_sec=int(T0), **kw) == (8, None)
    assert find_pcapng_block(b"\0" * 8 + tail, 0, 2, interfaces=1, clocks=us, last_sec=None, **kw) == (8, None)
    assert find_pcapng_block(b"\0" * 8 + tail, 0, 2, interfaces=1, clocks=us,
                             last_sec=int(T0) + 30 * 86400, **kw) == (None, None)
    assert find_pcapng_block(b"\0" * 8 + tail, 0, 2, interfaces=1, clocks=[None], last_sec=int(T0), **kw) \
        == (None, None)
    # (read as ns, the µs times are 1970: not this capture's)
    assert find_pcapng_block(b"\0" * 8 + tail, 0, 2, interfaces=1, clocks=[(10**9, 0)], last_sec=int(T0),
                             **kw) == (None, None)
    # an unaligned run must begin with a block with a time: an IDB there is not taken
    assert find_pcapng_block(b"\0" * 7 + IDB + tail, 0, 0, interfaces=1, clocks=us, last_sec=int(T0), **kw) \
        == (7 + len(IDB), None)
    # the aligned offset comes first when it comes first in the file, and the other way round
    assert find_pcapng_block(b"\0" * 4 + tail + tail, 0, 0, interfaces=1, clocks=us, last_sec=int(T0),
                             **kw) == (4, None)
    # not decided in the bytes given: the unaligned candidate is kept for the next read
    assert find_pcapng_block(b"\0" * 9 + tail[:40], 0, 0, interfaces=1, clocks=us, last_sec=int(T0),
                             big=False, bound=1 << 20, at_eof=False) == (9, "more")
    # random bytes hold no run at any offset
    noise = random.Random(5).randbytes(1 << 16)
    assert find_pcapng_block(noise, 0, 0, interfaces=1, clocks=us, last_sec=int(T0), **kw) == (None, None)


def _torn(data: bytes, at: int, lost: int = 0, added: bytes = b"") -> bytes:
    return data[:at] + added + data[at + lost:]


@pytest.mark.parametrize("lost, added", [(1, b""), (2, b""), (3, b""), (50, b""), (0, b"\x5a"),
                                         (0, bytes(range(37))), (0, b"\0" * 38)])
def test_a_pcapng_torn_copy_that_shifts_the_blocks_off_4_bytes_is_read_past(lost, added):
    """(newcomer 19 F5) bytes lost or added inside a block, a number not a multiple of 4: the
    blocks after it are off the 4-byte boundary of the file and are still found, whole and in
    chunks of any size, every record after the damage read."""
    recs = _records()
    data, offs = _pcapng(recs)
    at = offs[40] + 30                       # inside block 40 (its packet bytes)
    damaged = _torn(data, at, lost, added)
    whole = read_frames(damaged)
    got = [whole.data(i) for i in range(len(whole))]
    assert got == [bytes(p) for i, (_, p) in enumerate(recs) if i != 40]
    st = whole.stats
    assert st.damage_offset is None and st.bytes_read + st.skipped_bytes == len(damaged)
    assert st.skipped_records == 1
    assert st.skipped_bytes == offs[41] - offs[40] - lost + len(added)
    assert st.warnings == [f"<bytes>: damaged Enhanced Packet Block at offset {offs[40]} (trailing length "
                           f"{struct.unpack_from('<I', damaged, offs[41] - 4)[0]} != block length "
                           f"{offs[41] - offs[40]}); {st.skipped_bytes} bytes skipped, reading resumed at "
                           f"offset {offs[41] - lost + len(added)} where whole records start again"]
    _same_in_chunks(damaged, whole, sizes=(64, 100, 333, 700, 1500, 4096))


def test_a_pcapng_torn_twice_and_a_shift_in_the_last_block_before_the_end():
    """Two shifts (3 bytes lost, then 2 added: the blocks go back and forth across the
    boundary) and a shift inside the last block (nothing after it to read: the stop is said)."""
    recs = _records()
    data, offs = _pcapng(recs)
    damaged = _torn(_torn(data, offs[70] + 20, added=b"\xee\xee"), offs[20] + 20, lost=3)
    fr = read_frames(damaged)
    assert [fr.data(i) for i in range(len(fr))] == [bytes(p) for i, (_, p) in enumerate(recs) if i not in (20, 70)]
    st = fr.stats
    assert st.skipped_records == 2 and st.bytes_read + st.skipped_bytes == len(damaged)
    assert sum("reading resumed" in w for w in st.warnings) == 2
    _same_in_chunks(damaged, fr, sizes=(64, 333, 700, 4096))
    last = _torn(data, offs[-1] + 20, lost=1)
    fr = read_frames(last)
    assert len(fr) == len(recs) - 1 and fr.stats.damage_offset == offs[-1]
    assert fr.stats.bytes_read + fr.stats.skipped_bytes == len(last)
    _same_in_chunks(last, fr)


def test_a_pcapng_torn_copy_in_ns_resolution_and_its_flows(tmp_path):
    """An interface with if_tsresol 9 (ns): the times of the blocks after the shift are read in
    the interface's units. The flows of the damaged file are the original's (the block lost
    was a data segment of one session, whose connection stays whole), whole and in chunks."""
    from chunkcmp import assert_same
    recs = _records()
    idb_ns = struct.pack("<IIHHI", 1, 28, 1, 0, 65535) + struct.pack("<HHB3x", 9, 1, 9) + struct.pack("<I", 28)
    out, offs, pos = [SHB, idb_ns], [], len(SHB) + len(idb_ns)
    for t, p in recs:
        b = _epb(round(t * 1e9), bytes(p))
        offs.append(pos)
        out.append(b)
        pos += len(b)
    data = b"".join(out)
    damaged = _torn(data, offs[40] + 30, lost=1)
    fr = read_frames(damaged)
    assert len(fr) == len(recs) - 1 and fr.stats.skipped_records == 1
    assert int(fr.ts_ns[-1]) == round(recs[-1][0] * 1e9)
    p = tmp_path / "torn.pcapng"
    p.write_bytes(damaged)
    flows = assert_same(p, (700, 4096))
    assert len(flows) == 12
    assert sorted(flows.conn_state) == ["SF"] * 12


def test_a_corpus_pcapng_with_37_bytes_inserted_is_read_past(tmp_path):
    """(newcomer 19 F5, its reproduction) 37 random bytes inserted at 30 % of the corpus's
    ns_baseline_dp.pcapng: all 22 flows come back, as with 36 or 40 bytes."""
    from conftest import shared_corpus
    from chunkcmp import whole as analysed
    src = shared_corpus("ksc") / "ns_baseline_dp.pcapng"
    data = src.read_bytes()
    o = int(len(data) * 0.3)
    for n in (37, 38, 39):
        p = tmp_path / f"ins{n}.pcapng"
        p.write_bytes(data[:o] + random.Random(1).randbytes(n) + data[o:])
        flows, a = analysed(p)
        assert len(flows) == 22, n
        assert any("reading resumed at offset" in w for w in a.warnings), a.warnings


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


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_a_length_running_past_the_end_of_the_file_with_records_after_it_is_damage(fmt):
    """A record (block) whose length field was damaged to a value that is plausible but runs
    past the end of the file (in the corpus: 6 bytes lost mid-file shifted a header so that it
    read caplen 131072): whole records start again after its header, so it is damage read past,
    not the end of a cut file (which lost the 20 sessions after it). A file really cut inside
    its last record still says so."""
    recs = _records()
    if fmt == "pcap":
        data, offs = pcap_bytes(recs), _pcap_offsets(recs)
        at, field = offs[30], offs[30] + 8            # caplen
        bad = data[:field] + struct.pack("<I", 200_000) + data[field + 4:]
    else:
        data, offs = _pcapng(recs)
        at, field = offs[30], offs[30] + 4            # block length
        bad = data[:field] + struct.pack("<I", 400_000) + data[field + 4:]
    assert len(bad) - at < 200_000
    fr = read_frames(bad)
    got = [fr.data(i) for i in range(len(fr))]
    assert got == [bytes(p) for i, (_, p) in enumerate(recs) if i != 30]
    st = fr.stats
    assert st.damage_offset is None and st.skipped_records == 1
    assert st.skipped_bytes == offs[31] - offs[30] and st.bytes_read + st.skipped_bytes == len(bad)
    kind = "record" if fmt == "pcap" else "block"
    assert st.warnings[0].startswith(f"<bytes>: damaged {kind} at offset {at} (its length runs past the end "
                                     f"of the file: {len(bad) - at} of ")
    assert st.warnings[0].endswith(f"; {offs[31] - offs[30]} bytes skipped, reading resumed at offset {offs[31]} "
                                   "where whole records start again")
    _same_in_chunks(bad, fr, sizes=(64, 700, 4096, 100_000))
    cut = data[:offs[-1] + 40]
    fr = read_frames(cut)
    assert len(fr) == len(recs) - 1 and fr.stats.damage_offset == offs[-1]
    assert "file cut mid-" in fr.stats.warnings[0]
