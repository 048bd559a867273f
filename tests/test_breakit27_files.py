"""Break-it 27 on damaged / odd capture files: a pcapng Interface Description Block with a wrong
trailing length (F1), a second Section Header Block with a damaged byte-order magic (F2), a
header claiming an FCS the frames do not carry (F3). The files are built here, byte by byte."""
from __future__ import annotations

import struct
import zlib

import pytest

from kscc_traffic.capture.decode import decode
from kscc_traffic.capture.files import iter_frames, read_frames
from kscc_traffic.capture.frames import LT_FCS

T = 1_764_000_000


def _ip_udp(i: int, payload: bytes = b"x" * 8) -> bytes:
    udp = struct.pack(">HHHH", 10000 + i, 9999, 8 + len(payload), 0) + payload
    return struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), i, 0, 64, 17, 0,
                       bytes([192, 0, 2, 10]), bytes([198, 51, 100, 1])) + udp


def _eth(i: int, payload: bytes = b"x" * 8) -> bytes:
    return bytes.fromhex("001122334455" "66778899aabb" "0800") + _ip_udp(i, payload)


def _block(btype: int, body: bytes, o: str = "<", trailer: int | None = None) -> bytes:
    n = 12 + len(body)
    return struct.pack(o + "II", btype, n) + body + struct.pack(o + "I", n if trailer is None else trailer)


def _shb(o: str = "<", bom: bytes | None = None) -> bytes:
    b = bytearray(_block(0x0A0D0D0A, struct.pack(o + "IHHq", 0x1A2B3C4D, 1, 0, -1), o))
    if bom is not None:
        b[8:12] = bom
    return bytes(b)


def _idb(o: str = "<", trailer: int | None = None, options: bytes = b"") -> bytes:
    return _block(1, struct.pack(o + "HHI", 1, 0, 0) + options, o, trailer)


def _epbs(n0: int, n1: int, o: str = "<", frame=_eth) -> bytes:
    out = b""
    for i in range(n0, n1):
        d = frame(i)
        ts = (T + i) * 10**6
        out += _block(6, struct.pack(o + "IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(d), len(d))
                      + d + b"\0" * (-len(d) % 4), o)
    return out


def _ports(frames) -> list[int]:
    p = decode(frames)
    return sorted(int(x) for x in p.cols["sport"])


# --- F1: an IDB whose trailing length alone is wrong --------------------------------------

BAD_IDB = _idb(trailer=0x99999999)


@pytest.mark.parametrize("chunk", [None, 40])
def test_first_idb_bad_trailer_read_with_warning(chunk):
    data = _shb() + BAD_IDB + _epbs(0, 5)
    fr = (read_frames(data, name="f1") if chunk is None
          else _joined(iter_frames(data, chunk, name="f1")))
    assert len(fr) == 5
    assert [int(x) for x in fr.linktype] == [1] * 5
    assert fr.stats.skipped_records == 0 and fr.stats.damage_offset is None
    assert [w for w in fr.stats.warnings if "Interface Description Block" in w] == [
        "f1: 1 Interface Description Block with a damaged trailing length (first at offset 28) "
        "read by its leading length (the blocks after it are well framed)"]
    assert _ports(fr) == [10000, 10001, 10002, 10003, 10004]


def _joined(chunks):
    from kscc_traffic.capture.frames import Frames
    import numpy as np
    cs = list(chunks)
    buf = b"".join(bytes(c.buf) for c in cs)
    offs, at = [], 0
    for c in cs:
        offs.append(np.asarray(c.offset) + at)
        at += len(c.buf)
    return Frames(buf, np.concatenate([c.ts_ns for c in cs]), np.concatenate([c.linktype for c in cs]),
                  np.concatenate(offs), np.concatenate([c.caplen for c in cs]),
                  np.concatenate([c.wirelen for c in cs]), cs[-1].stats)


def test_second_section_idb_bad_trailer():
    data = _shb() + _idb() + _epbs(0, 3) + _shb() + BAD_IDB + _epbs(3, 6)
    fr = read_frames(data, name="f1b")
    assert len(fr) == 6
    assert fr.stats.skipped_records == 0
    assert any("damaged trailing length (first at offset 328)" in w for w in fr.stats.warnings)
    assert _ports(fr) == list(range(10000, 10006))


def test_idb_bad_trailer_and_garbage_after_still_stops():
    # the leading length does not lead to a well-framed block: damage, as before
    data = _shb() + BAD_IDB + b"\x55" * 64
    fr = read_frames(data, name="f1c")
    assert len(fr) == 0 and fr.stats.damage_offset == 28
    assert any(w.startswith("f1c: damaged Interface Description Block at offset 28 (trailing length "
                            "2576980377 != block length 20)") for w in fr.stats.warnings)


# --- F2: a second SHB with a damaged byte-order magic, the other order than section 1 -------

@pytest.mark.parametrize("chunk", [None, 32, 302])
def test_second_shb_bad_bom_order_from_lengths(chunk):
    data = (_shb(">") + _idb(">") + _epbs(0, 3, ">") + _shb("<", bom=b"\0\0\0\0") + _idb()
            + _epbs(3, 6))
    fr = (read_frames(data, name="f2") if chunk is None
          else _joined(iter_frames(data, chunk, name="f2")))
    assert len(fr) == 6
    assert fr.stats.skipped_records == 0 and fr.stats.damage_offset is None
    assert any(w == "f2: 1 Section Header Block with a damaged byte-order magic (first at offset 300) "
               "read as little-endian, the order in which its block lengths agree"
               for w in fr.stats.warnings)
    assert _ports(fr) == list(range(10000, 10006))


# --- F3: a header claiming an FCS the frames do not carry -----------------------------------

def _padded(i: int) -> bytes:
    return _eth(i, b"q" * 30)


def test_pcapng_fcslen_claim_without_fcs_read():
    opt = struct.pack("<HH", 13, 1) + b"\x04\0\0\0" + struct.pack("<HH", 0, 0)
    data = _shb() + _idb(options=opt) + _epbs(0, 6, frame=_padded)
    fr = read_frames(data, name="f3")
    assert all(int(x) & LT_FCS for x in fr.linktype)
    p = decode(fr)
    assert sorted(int(x) for x in p.cols["sport"]) == list(range(10000, 10006))
    assert p.stats.malformed == 0
    assert [w for w in p.stats.warnings if "FCS" in w] == [
        "decode: 6 frames the file says end with a 4-byte FCS (pcap header FCS bits, pcapng if_fcslen "
        "or epb_flags) carry none (the check fails and the packet fills the frame, or every frame "
        "fails it): the header's claim taken as wrong, read without an FCS"]


def _pcap_fcs(frames: list[bytes]) -> bytes:
    lt = 1 | (1 << 26) | (2 << 28)               # FCS bits: an FCS of 4 bytes
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, lt)
    for i, f in enumerate(frames):
        out += struct.pack("<IIII", T + i, 0, len(f), len(f)) + f
    return out


def test_pcap_fcs_bits_without_fcs_read():
    fr = read_frames(_pcap_fcs([_padded(i) for i in range(6)]), name="f3b")
    p = decode(fr)
    assert sorted(int(x) for x in p.cols["sport"]) == list(range(10000, 10006))
    assert p.stats.malformed == 0
    assert any(w.startswith("decode: 6 frames the file says end with a 4-byte FCS") for w in p.stats.warnings)


def _fcs(f: bytes) -> bytes:
    return struct.pack("<I", zlib.crc32(f) & 0xFFFFFFFF)


def test_genuine_bad_fcs_among_good_still_skipped():
    frames = [_padded(i) + (_fcs(_padded(i)) if i != 2 else b"\1\2\3\4") for i in range(5)]
    p = decode(read_frames(_pcap_fcs(frames), name="g"))
    assert sorted(int(x) for x in p.cols["sport"]) == [10000, 10001, 10003, 10004]
    assert p.stats.malformed == 1
    assert not any("carry none" in w or "carries none" in w for w in p.stats.warnings)
    assert any("1 with an FCS that does not match its bytes" in w for w in p.stats.warnings)


def test_all_bad_fcs_frames_with_fcs_room_stay_skipped_when_few():
    # two frames, both failing, their IP packet leaving room for the 4 bytes: not enough to
    # call the header wrong (damaged in the air, as a monitor capture keeps them)
    frames = [_padded(i) + b"\1\2\3\4" for i in range(2)]
    p = decode(read_frames(_pcap_fcs(frames), name="h"))
    assert len(p.cols["sport"]) == 0
    assert p.stats.malformed == 2


# --- F6: an EPB / SHB option whose length runs past its block --------------------------------

def _epb_badopt(i: int) -> bytes:
    d = _eth(i)
    ts = (T + i) * 10**6
    body = (struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(d), len(d)) + d + b"\0" * (-len(d) % 4)
            + struct.pack("<HH", 2, 100) + b"\0\0\0\0")
    return _block(6, body)


def test_epb_option_overrun_warned_with_count():
    data = _shb() + _idb() + _epbs(0, 2) + _epb_badopt(2) + _epb_badopt(3) + _epbs(4, 6)
    fr = read_frames(data, name="f6")
    assert len(fr) == 6
    assert fr.stats.warnings == ["f6: 2 Enhanced Packet Block options overrun their block (first at "
                                 "offset 296); the rest of those options ignored (the packets are read)"]


def test_shb_option_overrun_warned():
    body = struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + struct.pack("<HH", 4, 500) + b"abcd"
    fr = read_frames(_block(0x0A0D0D0A, body) + _idb() + _epbs(0, 4), name="f6b")
    assert len(fr) == 4
    assert fr.stats.warnings == ["f6b: 1 Section Header Block option overruns its block (first at "
                                 "offset 24); the rest of those options ignored"]


# --- F8: reserved bits of the pcap link-type field; standard input ---------------------------

def test_pcap_reserved_link_bits_warned():
    head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1 | (3 << 16))
    recs = b"".join(struct.pack("<IIII", T + i, 0, len(_eth(i)), len(_eth(i))) + _eth(i) for i in range(3))
    fr = read_frames(head + recs, name="f8")
    assert [int(x) for x in fr.linktype] == [1, 1, 1]
    assert fr.stats.warnings == ["f8: the pcap header's link-type field 0x00030001 sets reserved bits "
                                 "(0x00030000): read as link type 1"]


def test_analyze_dash_reads_standard_input(tmp_path, monkeypatch):
    # (break-it 27 F8 said that it was not read; session 28 reads it: tests/test_stdin_capture.py)
    from typer.testing import CliRunner

    from kscc_traffic.cli import app
    monkeypatch.chdir(tmp_path)
    p = CliRunner().invoke(app, ["analyze", "-", "--engine", "tshark"], input=b"")
    assert p.exit_code == 2
    assert p.stderr.startswith("Error: standard input: --engine tshark reads only a file")


# --- F4: an empty file, tshark engine as the built-in one ------------------------------------

@pytest.mark.skipif(__import__("shutil").which("tshark") is None, reason="tshark not installed")
def test_tshark_engine_empty_file_is_an_error(tmp_path):
    from kscc_traffic.engines.tshark import read_packets
    from kscc_traffic.errors import CaptureError
    p = tmp_path / "empty.pcap"
    p.write_bytes(b"")
    with pytest.raises(CaptureError, match=r"^empty\.pcap: empty file \(0 bytes\), no capture header$"):
        read_packets(p)
    with pytest.raises(CaptureError, match=r"empty file \(0 bytes\)"):
        read_frames(p)


# --- F5: pcap seconds of 2^31 and more are unsigned, with either engine ---------------------

@pytest.mark.skipif(__import__("shutil").which("tshark") is None, reason="tshark not installed")
def test_tshark_engine_reads_pcap_seconds_unsigned(tmp_path):
    from kscc_traffic.engines.tshark import read_packets
    head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    secs = [T, T + 1, 0xFFFFFFFF]               # (the last with µs 0xffffffff too)
    recs = b"".join(struct.pack("<IIII", s, s if s == 0xFFFFFFFF else 0, len(_eth(i)), len(_eth(i))) + _eth(i)
                    for i, s in enumerate(secs))
    p = tmp_path / "allones.pcap"
    p.write_bytes(head + recs)
    pk = read_packets(p)
    last = 0xFFFFFFFF * 10**9 + 0xFFFFFFFF * 1000
    assert sorted(int(x) for x in read_frames(p).ts_ns) == [T * 10**9, (T + 1) * 10**9, last]
    assert sorted(int(x) for x in pk.cols["ts_ns"]) == [T * 10**9, (T + 1) * 10**9, last]
    assert any("tshark gives 1 of the 3 packets times before 1970" in w for w in pk.stats.warnings)


def test_bad_bom_shb_not_all_read_yet_reads_on():
    from kscc_traffic.capture.files import _PcapngParser
    data = (_shb(">") + _idb(">") + _epbs(0, 3, ">") + _shb("<", bom=b"\0\0\0\0") + _idb()
            + _epbs(3, 6))
    part = data[:320]                                    # (the second SHB, at 300, cut)
    p = _PcapngParser(part, "f2c", False)
    w = p.walk(part, 0, False, 0)
    assert (w.pos, w.stop, w.need >= 12) == (300, None, True)


@pytest.mark.skipif(__import__("shutil").which("tshark") is None, reason="tshark not installed")
def test_tshark_engine_reads_frames_without_the_claimed_fcs(tmp_path):
    from kscc_traffic.engines.tshark import read_packets
    p = tmp_path / "claim.pcap"
    p.write_bytes(_pcap_fcs([_padded(i) for i in range(6)]))
    pk = read_packets(p)
    assert sorted(int(x) for x in pk.cols["sport"]) == list(range(10000, 10006))
    assert pk.stats.malformed == 0
    assert any(w.startswith("claim.pcap: decode: 6 frames the file says end with a 4-byte FCS")
               for w in pk.stats.warnings)
    # a genuine bad FCS among good ones: skipped, as the built-in engine does
    g = tmp_path / "genuine.pcap"
    g.write_bytes(_pcap_fcs([_padded(i) + (_fcs(_padded(i)) if i != 2 else b"\1\2\3\4") for i in range(5)]))
    pg = read_packets(g)
    assert sorted(int(x) for x in pg.cols["sport"]) == [10000, 10001, 10003, 10004]
    assert pg.stats.malformed == 1


# --- leftover: the "reading stopped there" line after a damaged region read past ------------

def test_stop_after_a_damaged_region_counts_what_was_read():
    # a damaged region read past, then damage with nothing whole after it: the line said
    # "0 records and the 60 bytes…" as if nothing had been read; it counts the records read
    data = _shb() + _idb() + _epbs(0, 5) + b"\xff" * 37 + _epbs(5, 10) + b"\xee" * 60
    for fr in (read_frames(data, name="s"), list(iter_frames(data, 64, name="s"))[-1]):
        assert fr.stats.records == 10
        assert fr.stats.warnings[-1] == (
            "s: damaged block type 0xeeeeeeee at offset 925 (block length 4008636142 is not a multiple "
            "of 4); reading stopped there: the 60 bytes from there on skipped (10 records read before it)")
