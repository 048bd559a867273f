"""Session 62, leftovers of the capture reader and decoder, each compared with tshark 4.0 (the
tests that run it skip without it) and decoded by every path (compiled fast path, its numpy
twin, the slow path: :func:`_every_path`).

1. pcapng Simple Packet Block on an interface of snaplen 0 (none): captured length = the
   original length (pcapng §4.4); a block too short for it is damaged (tshark 4.0 stops there:
   "total block length … of an SPB is too small"). Already right: pinned here.
2. IPv6 payload length 0 with a Jumbo Payload option below 65,536 (RFC 2675 §3: invalid;
   tshark: malformed): was read as a packet of that length; now skipped with its own warning.
   A payload length that is not 0 beside the option stays the packet's length (tshark alike).
3. Linux cooked (SLL, SLL2) records of a netlink monitor (ARPHRD type 824, ``nlmon``): a
   protocol field of 0x0800 was decoded as IPv4; now not IP, whatever the field (tshark: netlink).
4. IPv4 under ethertype 0x86DD is malformed, IPv6 under 0x0800 read as IPv6 (tshark alike;
   docs/analyze.md): already right, the three paths agree.
5. pcapng ``if_fcslen``: read as tshark 4.0 reads it (0, 2, 4 bytes; 16, 32 bits); other
   values get a warning line and the frames are read whole.
6. A pcap record whose captured length was damaged to a value within the bound, above its
   original length: the records it swallowed were lost (470 in a corpus file); now reading
   resumes after its original length. Random damage over a corpus file never yields a record
   that is not in the file.
"""
from __future__ import annotations

import random
import shutil
import struct
import subprocess
import zlib

import numpy as np
import pytest

pytest.importorskip("scapy")

from scapy.layers.inet import IP, TCP  # noqa: E402
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop, Jumbo  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402

from kscc_traffic.capture import decode as dec  # noqa: E402
from kscc_traffic.capture.decode import DecodeCounters, decode  # noqa: E402
from kscc_traffic.capture.files import fcs_option_bytes, read_frames  # noqa: E402
from kscc_traffic.capture.frames import LT_FCS, LT_FCS2  # noqa: E402
from kscc_traffic.capture.packets import PACKET_COLUMNS  # noqa: E402
from conftest import shared_corpus  # noqa: E402
from pcapbuild import pcap_bytes  # noqa: E402

TSHARK = shutil.which("tshark")
MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}
C4, S4, C6, S6 = "192.0.2.10", "203.0.113.10", "2001:db8::10", "2001:db8::20"


def _block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<II", btype, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))


def _shb() -> bytes:
    return _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))


def _idb(linktype: int, snaplen: int, options: bytes = b"") -> bytes:
    return _block(1, struct.pack("<HHI", linktype, 0, snaplen) + options
                  + (struct.pack("<HH", 0, 0) if options else b""))


def _opt(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _epb(data: bytes, ts_us: int) -> bytes:
    return _block(6, struct.pack("<IIIII", 0, ts_us >> 32, ts_us & 0xFFFFFFFF, len(data), len(data)) + data)


def _spb(data: bytes, wirelen: int) -> bytes:
    return _block(3, struct.pack("<I", wirelen) + data)


def _every_path(frames, monkeypatch):
    """Packets of ``frames`` decoded by the compiled fast path, its numpy twin and the slow path,
    which must agree column by column and in their counts; with the counters' warning lines."""
    out = []
    for compiled, fast in ((True, True), (False, True), (True, False)):
        monkeypatch.setattr(dec, "_compiled", compiled)
        c = DecodeCounters()
        p = decode(frames, fast=fast, counters=c)
        out.append((p, c))
    (p0, c0) = out[0]
    for p, c in out[1:]:
        for k in PACKET_COLUMNS:
            np.testing.assert_array_equal(p0.cols[k], p.cols[k], err_msg=k)
        assert (p.stats.non_ip, p.stats.malformed, c.warnings()) == (p0.stats.non_ip, p0.stats.malformed,
                                                                      c0.warnings())
    return p0, c0


def _tshark(path, *fields: str) -> list[list[str]]:
    res = subprocess.run([TSHARK, "-n", "-r", str(path), "-T", "fields", *[a for f in fields for a in ("-e", f)]],
                         capture_output=True, text=True, timeout=60)
    return [line.split("\t") for line in res.stdout.splitlines()]


def _syn(sport: int, v6: bool = False) -> bytes:
    ip = IPv6(src=C6, dst=S6) if v6 else IP(src=C4, dst=S4)
    return bytes(Ether(**MACS) / ip / TCP(sport=sport, dport=443, flags="S", seq=1000))


# ---------------------------------------------------------------------------- 1. SPB, snaplen 0
def test_simple_packet_block_on_an_interface_without_snaplen_keeps_its_original_length(tmp_path):
    frame = _syn(40000)
    data = (_shb() + _idb(1, 0) + _spb(frame, len(frame))            # padded to 4 bytes: 54 -> 56
            + _spb(frame + b"\0" * 6, len(frame))                      # body longer: the original length
            + _spb(frame[:40], len(frame))                             # body too short: damaged
            + _spb(frame, len(frame)))
    fr = read_frames(data)
    assert fr.caplen.tolist() == [54, 54, 54] and fr.wirelen.tolist() == [54, 54, 54]
    assert [fr.data(i) for i in range(3)] == [frame] * 3
    assert fr.stats.malformed == 1
    if TSHARK:
        # (tshark 4.0 reads well-formed ones alike; it stops at the second, longer than its
        # padded packet: "total block lengths … don't match", and at the third, too short)
        path = tmp_path / "spb0.pcapng"
        path.write_bytes(_shb() + _idb(1, 0) + _spb(frame, len(frame)) + _spb(frame, len(frame)))
        assert _tshark(path, "frame.cap_len", "tcp.srcport") == [["54", "40000"], ["54", "40000"]]


# ---------------------------------------------------------------------------- 2. jumbograms
def _jumbo(sport: int, jumbo_len: int, plen: int) -> bytes:
    return bytes(Ether(**MACS) / IPv6(src=C6, dst=S6, plen=plen, nh=0)
                 / IPv6ExtHdrHopByHop(nh=6, options=[Jumbo(jumboplen=jumbo_len)])
                 / TCP(sport=sport, dport=443, flags="S"))


def test_an_invalid_jumbo_payload_option_is_malformed_with_its_own_warning(tmp_path, monkeypatch):
    frames = [_jumbo(40001, 100, 0), _jumbo(40002, 65535, 0),   # plen 0, option below 65,536
              _jumbo(40003, 70000, 0),                          # a jumbogram (cut by the frame)
              _jumbo(40004, 28, 28), _jumbo(40005, 70000, 28),  # plen not 0: the packet's length
              _syn(40006, v6=True)]
    path = tmp_path / "jumbo.pcap"
    path.write_bytes(pcap_bytes([(1_700_000_000 + k, f) for k, f in enumerate(frames)]))
    p, c = _every_path(read_frames(path), monkeypatch)
    assert p.cols["frame"].tolist() == [2, 3, 4, 5]
    assert p.cols["sport"].tolist() == [40003, 40004, 40005, 40006]
    assert p.cols["ip_len"].tolist() == [40 + 70000, 68, 68, 60]
    assert p.stats.malformed == 2 and c.bad_jumbo == 2
    assert c.warnings() == ["decode: 2 IPv6 packets with an invalid Jumbo Payload option (a jumbogram length "
                            "below 65,536 where the payload length is 0; receivers discard such packets) "
                            "skipped as malformed"]
    if TSHARK:
        rows = _tshark(path, "tcp.srcport", "_ws.malformed")
        assert [r[0] for r in rows] == ["", "", "40003", "40004", "40005", "40006"]
        assert all(r[1] for r in rows[:2])


# ---------------------------------------------------------------------------- 3. nlmon records
def _sll(hatype: int, proto: int, payload: bytes) -> bytes:
    return struct.pack(">HHH8sH", 0, hatype, 0, b"", proto) + payload


def _sll2(hatype: int, proto: int, payload: bytes) -> bytes:
    return struct.pack(">HHIHBB8s", proto, 0, 1, hatype, 0, 0, b"") + payload


@pytest.mark.parametrize("linktype,cook", [(113, _sll), (276, _sll2)], ids=["sll", "sll2"])
def test_netlink_monitor_records_are_not_ip_whatever_their_protocol_field(tmp_path, monkeypatch, linktype, cook):
    ip4 = bytes(IP(src=C4, dst=S4) / TCP(sport=40010, dport=443, flags="S"))
    nlmsg = struct.pack("<IHHII", 40, 16, 0, 1, 0) + bytes(ip4[:24])   # a netlink header, then bytes
    frames = [cook(824, 0x0800, ip4), cook(824, 0x86DD, ip4), cook(824, 0, nlmsg), cook(824, 4, nlmsg),
              cook(824, 16, nlmsg), cook(1, 0x0800, ip4)]
    path = tmp_path / "nlmon.pcap"
    path.write_bytes(pcap_bytes([(1_700_000_000 + k, f) for k, f in enumerate(frames)], linktype))
    p, _ = _every_path(read_frames(path), monkeypatch)
    assert p.cols["frame"].tolist() == [5]
    assert p.stats.non_ip == 5 and p.stats.malformed == 0
    if TSHARK and linktype == 113:
        rows = _tshark(path, "frame.protocols", "ip.src")
        assert all("netlink" in r[0] and not r[1] for r in rows[:5]) and rows[5][1] == C4


# ---------------------------------------------------------------------------- 4. ethertype vs version
@pytest.mark.parametrize("linktype", [1, 113])
def test_an_ip_version_other_than_the_ethertype_says_is_read_alike_on_every_path(tmp_path, monkeypatch, linktype):
    ip4 = bytes(IP(src=C4, dst=S4) / TCP(sport=40020, dport=443, flags="S"))
    ip6 = bytes(IPv6(src=C6, dst=S6) / TCP(sport=40021, dport=443, flags="S"))

    def link(et: int, ip: bytes) -> bytes:
        return (bytes(Ether(type=et, **MACS))[:14] if linktype == 1 else _sll(1, et, b"")) + ip
    frames = [link(0x86DD, ip4), link(0x0800, ip6), link(0x0800, ip4)]
    path = tmp_path / "versions.pcap"
    path.write_bytes(pcap_bytes([(1_700_000_000 + k, f) for k, f in enumerate(frames)], linktype))
    p, c = _every_path(read_frames(path), monkeypatch)
    # (IPv4 under 0x86DD: malformed; IPv6 under 0x0800: IPv6, as Wireshark and Zeek read it)
    assert p.cols["frame"].tolist() == [1, 2] and p.cols["ipver"].tolist() == [6, 4]
    assert p.stats.malformed == 1
    if TSHARK:
        assert [r[0] for r in _tshark(path, "tcp.srcport")] == ["", "40021", "40020"]


# ---------------------------------------------------------------------------- 5. if_fcslen
def test_fcs_option_values_as_tshark_reads_them():
    assert [fcs_option_bytes(v) for v in (0, 2, 4, 16, 32)] == [0, 2, 4, 2, 4]
    assert all(fcs_option_bytes(v) == -1 for v in (1, 3, 5, 6, 7, 8, 12, 24, 31, 33, 64, 200, 255))


@pytest.mark.parametrize("value,flag,odd", [(4, LT_FCS, False), (32, LT_FCS, False), (2, LT_FCS2, False),
                                            (16, LT_FCS2, False), (0, 0, False), (8, 0, True),
                                            (3, 0, True), (255, 0, True)])
def test_if_fcslen_in_bytes_or_bits(tmp_path, monkeypatch, value, flag, odd):
    frame = _syn(40030)
    data = (_shb() + _idb(1, 0, _opt(13, bytes([value])))
            + _epb(frame + struct.pack("<I", zlib.crc32(frame)), 1_700_000_000_000_000)
            + _epb(frame[:-2] + b"\0\0", 1_700_000_001_000_000))        # (a second, different frame)
    fr = read_frames(data)
    assert fr.linktype.tolist() == [1 | flag] * 2
    odd_lines = [w for w in fr.stats.warnings if "if_fcslen" in w]
    assert odd_lines == ([f"<bytes>: 1 Interface Description Block with an FCS length (if_fcslen) no link layer "
                          "has (not 0, 2 or 4 bytes, nor 16 or 32 bits): ignored, the frames are read whole"]
                         if odd else [])
    p, _ = _every_path(fr, monkeypatch)
    assert p.cols["sport"].tolist()[:1] == [40030]        # (analysed, whatever the option says)
    if TSHARK and value in (4, 32):
        path = tmp_path / f"fcs{value}.pcapng"
        path.write_bytes(data)
        fcs = int.from_bytes(struct.pack("<I", zlib.crc32(frame)), "big")    # (as tshark shows it)
        assert _tshark(path, "eth.fcs")[0] == [f"0x{fcs:08x}"]


# ---------------------------------------------------------------------------- 6. resync
def _records(n: int = 60) -> list[tuple[float, bytes]]:
    # (record 50 carries 300 bytes of zeros: a header read there is all zeros, as the skipped
    # zero-filled regions of a crashed capture are)
    return [(1_700_000_000 + k * 0.01, _syn(41000 + k)[:54] + (bytes(300) if k == 50 else bytes([k]) * (k % 7)))
            for k in range(n)]


def test_a_captured_length_damaged_within_the_bound_swallows_no_records():
    """A corpus file (dnscrypt…, record 19's caplen 94 read 257,465) lost the 470 records after
    the damaged one: its length ended in zeros that read as a zero-filled region, the record
    before those (the damaged one) was left out and reading resumed after them. Now the record
    whose captured length is above its original one, where no record starts at its end but
    records start after its original length, is the damage: reading resumes there."""
    recs = _records()
    data = bytearray(pcap_bytes(recs))
    offs, p = [], 24
    for _, f in recs:
        offs.append(p)
        p += 16 + len(f)
    # record 20's caplen damaged to a value within the bound that ends in record 50's zeros
    struct.pack_into("<I", data, offs[20] + 8, offs[50] + 16 + 60 - offs[20] - 16)
    fr = read_frames(bytes(data))
    got = [fr.data(i) for i in range(len(fr))]
    assert got == [f for k, (_, f) in enumerate(recs) if k != 20]
    assert fr.stats.skipped_records == 1 and fr.stats.skipped_bytes == offs[21] - offs[20]
    assert fr.stats.warnings[0].startswith(f"<bytes>: damaged record at offset {offs[20]} (its captured length "
                                           f"{offs[50] + 60 - offs[20]} above its original length "
                                           f"{len(recs[20][1])} and no record where it ends")
    for size in (64, 1000, 4096):                         # (read in chunks: the same)
        from kscc_traffic.capture.files import iter_frames
        parts = list(iter_frames(bytes(data), size))
        assert [bytes(f.data(i)) for f in parts for i in range(len(f))] == got


def test_random_damage_to_a_corpus_file_never_reads_a_record_the_file_does_not_hold():
    """Property (measured over 1,500 trials a file in session 62, none failing): bytes over one
    record header (or the start of its data) replaced by random ones; every record read is one
    of the file's at its own offset and length, and at most the damaged record, the one before
    it (when the damage may lie in it) and those the damaged one's bytes hold are lost."""
    path = shared_corpus("public") / "skype_many-flows.pcap"
    if not path.exists():
        pytest.skip(f"{path} not present")
    data = path.read_bytes()
    fr = read_frames(data)
    offs, cls = fr.offset.tolist(), fr.caplen.tolist()
    known = dict(zip(offs, cls))
    rng = random.Random(62)
    for _ in range(40):
        k = rng.randrange(1, len(offs) - 1)
        at = offs[k] - 16 + rng.randrange(0, 16)
        n = rng.randrange(1, 24)
        bad = bytearray(data)
        bad[at:at + n] = rng.randbytes(n)
        got = read_frames(bytes(bad))
        pairs = list(zip(got.offset.tolist(), got.caplen.tolist()))
        assert all(known.get(o) == c or o == offs[k] for o, c in pairs), (k, at, n)
        assert len(set(offs) - {o for o, _ in pairs}) <= 2, (k, at, n)
