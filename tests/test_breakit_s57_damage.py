"""Session 57: the record that holds bytes lost, added or zeroed before damage in a pcap file
(break-it s56 #3), and a header read out of step just before an impossible length (s56 #2).

Bytes lost or added inside a record leave its length wrong for its bytes: the header after it
is read out of step, and the record itself holds the lost or added bytes (its frame is not the
one captured: made-up addresses, protocols 0 or 168, 0.0.0.0 to 0.0.0.0). It is left out and
counted with the damage, unless its checksums prove it whole; whatever the chunk size.
"""
from __future__ import annotations

import struct

from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

import chunkcmp
from pcapbuild import CLIENT_MAC, SERVER_MAC, pcap_bytes, tcp_session

from kscc_traffic.capture.files import iter_frames, read_frames
from kscc_traffic.capture.resync import headers_proven

T0 = 1_772_442_000
HEAD = 24


def _udp(i: int, payload: bytes = b"\xff" * 40) -> bytes:
    return bytes(Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IP(src="192.0.2.10", dst="198.51.100.5")
                 / UDP(sport=40000 + i, dport=5000) / payload)


def _capture(frames: list[bytes]) -> tuple[bytes, list[int]]:
    """The pcap of ``frames`` (one a second from T0 + 0.25 s) and each record's file offset."""
    data = pcap_bytes([(T0 + i + 0.25, f) for i, f in enumerate(frames)])
    offs = [HEAD]
    for f in frames:
        offs.append(offs[-1] + 16 + len(f))
    return data, offs[:-1]


def _ports(fr) -> list[int]:
    """The UDP/TCP source port of each frame read (Ethernet + 20-byte IPv4)."""
    return [struct.unpack_from(">H", fr.data(i), 34)[0] for i in range(len(fr))]


def _same_at_every_chunk_size(path, fr, sizes) -> None:
    for size in sizes:
        parts = list(iter_frames(path, size))
        got = [(int(t), p.data(i)) for p in parts for i, t in enumerate(p.ts_ns)]
        assert got == [(int(t), fr.data(i)) for i, t in enumerate(fr.ts_ns)], size
        assert parts[-1].stats.warnings == fr.stats.warnings, size
        assert parts[-1].stats.skipped_records == fr.stats.skipped_records, size


def _inserted(tmp_path, name="ins15.pcap"):
    """12 UDP datagrams; 15 bytes added inside the IPv4 header of the 6th (record 5)."""
    frames = [_udp(i) for i in range(12)]
    data, offs = _capture(frames)
    at = offs[5] + 16 + 14 + 4
    path = tmp_path / name
    path.write_bytes(data[:at] + b"\x11" * 15 + data[at:])
    return path, offs


def test_the_record_that_holds_added_bytes_is_left_out_and_counted(tmp_path):
    """Break-it s56 #3 (fz_ins15_in_record): 15 bytes added inside a record's IPv4 header; the
    header after it is read from that record's last bytes (a length of 4294967295), and reading
    resumed 15 bytes on. The record itself was decoded: a made-up flow (protocol 168, random
    addresses). Now it is left out, and the warning says so and counts its bytes."""
    path, offs = _inserted(tmp_path)
    fr = read_frames(path)
    assert len(fr) == 11 and _ports(fr) == [40000 + i for i in range(12) if i != 5]
    rec = 16 + len(_udp(5))                 # (98 bytes: the record, as its header says)
    d = offs[5] + rec                       # (where the header after it is read)
    assert fr.stats.warnings == [
        f"ins15.pcap: damaged record at offset {d} (caplen 4294967295 > 262144); the record before it left "
        f"out (offset {offs[5]}, {rec} bytes: it holds the lost or added bytes); {rec + 15} bytes skipped, "
        f"reading resumed at offset {d + 15} where whole records start again"]
    st = fr.stats
    assert st.skipped_records == 2 and st.records == 11
    assert st.skipped_bytes == rec + 15 and st.bytes_read + st.skipped_bytes == path.stat().st_size
    assert st.damage_offset is None
    # the flow table: the eleven datagrams' flows, none made up
    flows = chunkcmp.whole(path)[0]
    assert sorted(zip(flows.orig_h, flows.orig_p, flows.resp_h, flows.resp_p)) == \
        [("192.0.2.10", 40000 + i, "198.51.100.5", 5000) for i in range(12) if i != 5]
    assert set(flows.proto) == {"udp"}


def test_the_record_that_lost_bytes_is_left_out_in_every_chunking(tmp_path):
    """8 bytes lost inside a record's IPv4 header (fz_del8_in_record): its length takes 8 bytes of
    the next header, the headers after it read out of step. The record that lost them is left
    out, at any chunk size: also when the damage is found at the start of a read (the record
    before it is handed out only once the header after it is read and in step)."""
    frames = [_udp(i, bytes(range(40))) for i in range(16)]
    data, offs = _capture(frames)
    at = offs[6] + 16 + 14 + 8
    path = tmp_path / "del8.pcap"
    path.write_bytes(data[:at] + data[at + 8:])
    fr = read_frames(path)
    assert 40006 not in _ports(fr) and len(fr) == 14, (_ports(fr), fr.stats.warnings)
    (line,) = fr.stats.warnings
    assert f"the record before it left out (offset {offs[6]}, 98 bytes: it holds the lost or added bytes)" in line
    assert fr.stats.skipped_records == 2
    _same_at_every_chunk_size(path, fr, range(64, len(data) + 40, 7))


def test_added_bytes_found_at_every_chunk_size_and_the_flows_alike(tmp_path):
    """Chunk-size independence of the left-out record: the records and warnings at every chunk
    size from 64 bytes past the file's size (so the damage falls at every place of a read), and
    the flow table, duplicates and warnings of the chunked analysis at 200, 300 and 700."""
    path, _ = _inserted(tmp_path, "chunks.pcap")
    fr = read_frames(path)
    _same_at_every_chunk_size(path, fr, range(64, path.stat().st_size + 40))
    flows = chunkcmp.assert_same(path, [200, 300, 700])
    assert len(flows) == 11


def _lost7(tmp_path, at_byte=34):
    """bd_lost7 in small: 54-byte ACKs and 954-byte segments (payload 0xff) in turn; 7 bytes
    lost inside the TCP header of the ACK at record 10 (from its frame's byte ``at_byte``: 34,
    its ports). The header read after it (the next
    header's last 9 bytes and 7 of its frame) reads a time of 244224 s (1970-01-03), a length of
    512 and an original length of 16 MiB or more; the header after that one a length beyond the
    bound."""
    frames = []
    for i in range(20):
        if i % 2 == 0:
            frames.append(bytes(Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IP(src="192.0.2.10", dst="198.51.100.5")
                                / TCP(sport=40000, dport=13000, flags="A", seq=1000 + i, ack=77)))
        else:
            frames.append(bytes(Ether(src=SERVER_MAC, dst=CLIENT_MAC) / IP(src="198.51.100.5", dst="192.0.2.10")
                                / TCP(sport=13000, dport=40000, flags="PA", seq=77, ack=1000 + i) / (b"\xff" * 900)))
    assert {len(f) for f in frames} == {54, 954}
    data, offs = _capture(frames)
    at = offs[10] + 16 + at_byte
    path = tmp_path / "lost7.pcap"
    path.write_bytes(data[:at] + data[at + 7:])
    return path, offs


def test_a_header_read_out_of_step_before_an_impossible_length_is_the_damage(tmp_path):
    """Break-it s56 #2 (bd_lost7): the doubtful header (a time decades away from the record
    before) claimed less than the record it was read in, so no whole record hid in it, and it
    was kept as a frame: a false snaplen line, a malformed frame, a clock line, and the damage
    placed one (bogus) record late. Now the damage is at the doubtful header, in one line, and
    the ACK that lost the 7 bytes is left out with it."""
    path, offs = _lost7(tmp_path)
    fr = read_frames(path)
    d = offs[10] + 70                        # (the ACK's record as its header says: 16 + 54)
    resumed = offs[10] + 70 - 7 + 16 + 954   # (the record after the segment whose header was eaten)
    assert fr.stats.warnings == [
        f"lost7.pcap: damaged record at offset {d} (its header read out of step, bytes lost or added before "
        "it: a time decades away from the record before); the record before it left out (offset "
        f"{offs[10]}, 70 bytes: it holds the lost or added bytes); {resumed - offs[10]} bytes skipped, "
        f"reading resumed at offset {resumed} where whole records start again"]
    assert len(fr) == 18 and fr.stats.skipped_records == 2 and fr.stats.cut_frames == 0
    assert fr.ts_ns.min() >= T0 * 10**9
    _same_at_every_chunk_size(path, fr, (64, 100, 333, 700, 1000, 1500, 4096))
    flows, a = chunkcmp.whole(path)
    assert not [w for w in a.warnings if "snaplen" in w or "malformed" in w or "clock" in w], a.warnings
    assert sorted(zip(flows.orig_p, flows.resp_p)) == [(40000, 13000)]
    # the same bytes lost from the ACK's TCP checksum on: its ports and data offset read whole,
    # its IPv4 header checksum is right: kept (the damage is in fields that change nothing)
    path, offs = _lost7(tmp_path, at_byte=50)
    fr = read_frames(path)
    (line,) = fr.stats.warnings
    assert line.startswith(f"lost7.pcap: damaged record at offset {d} (its header read out of step") and \
        "left out" not in line and f"{resumed - d} bytes skipped" in line, line
    assert len(fr) == 19 and fr.stats.skipped_records == 1


def test_a_capture_with_checksum_offload_is_read_whole(tmp_path):
    """No record of an undamaged capture is left out: checksums that the NIC was to fill in
    (offload: an IPv4 header checksum of 0, TCP checksums wrong) are no damage."""
    recs = tcp_session(("192.0.2.10", 40001), ("198.51.100.5", 13000), t0=T0, c_data=b"hello" * 20,
                       s_data=b"world" * 30)
    raw = []
    for ts, pkt in recs:
        b = bytearray(bytes(pkt))
        b[24:26] = b"\0\0"                  # the IPv4 header checksum
        b[50:52] = b"\0\0"                  # the TCP checksum
        raw.append((ts, bytes(b)))
    assert not any(headers_proven(b, 1) for _, b in raw)
    path = tmp_path / "offload.pcap"
    path.write_bytes(pcap_bytes(raw))
    fr = read_frames(path)
    assert len(fr) == len(raw) and fr.stats.warnings == [] and fr.stats.skipped_records == 0
    _same_at_every_chunk_size(path, fr, (64, 100, 200, 333))
    flows = chunkcmp.assert_same(path, [200, 300, 700])
    assert len(flows) == 1 and int(flows.orig_pkts[0] + flows.resp_pkts[0]) == len(raw)


def test_a_header_whose_length_alone_is_damaged_leaves_the_record_before_it(tmp_path):
    """A record header in step (its time next to the record before's) with a length beyond the
    bound (a flipped bit): that record is lost, the one before it is whole and read; so is the
    record before bytes added just between two records, whose checksums prove it whole (the
    resync reads 3 bytes on: bd_added3)."""
    frames = [_udp(i) for i in range(12)]
    data, offs = _capture(frames)
    flipped = bytearray(data)
    flipped[offs[6] + 8:offs[6] + 12] = struct.pack("<I", 0x10000000)
    path = tmp_path / "flip.pcap"
    path.write_bytes(bytes(flipped))
    fr = read_frames(path)
    assert _ports(fr) == [40000 + i for i in range(12) if i != 6] and fr.stats.skipped_records == 1
    assert "left out" not in fr.stats.warnings[0]
    path = tmp_path / "added3.pcap"
    path.write_bytes(data[:offs[6]] + b"\xde\xad\xbe" + data[offs[6]:])
    fr = read_frames(path)
    assert _ports(fr) == [40000 + i for i in range(12)]
    (cl,) = struct.unpack_from("<I", b"\xde\xad\xbe" + data[offs[6]:], 8)
    assert fr.stats.warnings == [f"added3.pcap: damaged record at offset {offs[6]} (caplen {cl} > 262144); "
                                 f"3 bytes skipped, reading resumed at offset {offs[6] + 3} where whole records "
                                 "start again"]
    _same_at_every_chunk_size(path, fr, range(64, 1400, 9))


def test_zeros_that_begin_inside_a_record_leave_it_out(tmp_path):
    """Break-it s56 #3 (fz_zero1000_mid_record): zeros written from inside a record's IPv4 header
    on (a page of a crash): the zeros after it are read as record headers of zeros, and the
    record itself decoded as 0.0.0.0 to 0.0.0.0, protocol 0. It is left out, counted in the
    zero-region line. Zeros written between two records, after a frame padded with zeros whose
    checksums are right, leave that frame whole."""
    frames = [_udp(i, bytes(range(1, 41))) for i in range(14)]
    data, offs = _capture(frames)
    at = offs[5] + 16 + 18                  # (inside the IPv4 header: the TTL on)
    path = tmp_path / "zeros.pcap"
    path.write_bytes(data[:at] + bytes(400) + data[at + 400:])
    fr = read_frames(path)
    assert 40005 not in _ports(fr) and _ports(fr)[:5] == [40000, 40001, 40002, 40003, 40004]
    assert not any(fr.data(i)[26:34] == bytes(8) for i in range(len(fr))), "a 0.0.0.0 frame"
    zline = [w for w in fr.stats.warnings if "all-zero record headers" in w]
    assert len(zline) == 1 and zline[0].endswith(
        "skipped, and the record just before such a header left out (the zeros begin inside it: its last "
        "bytes zeros, its headers not proven by their checksums)")
    st = fr.stats
    assert st.bytes_read + st.skipped_bytes == path.stat().st_size
    _same_at_every_chunk_size(path, fr, range(64, 1700, 11))
    flows = chunkcmp.assert_same(path, [200, 300, 700])
    assert "0.0.0.0" not in set(flows.orig_h) | set(flows.resp_h) and set(flows.proto) == {"udp"}
    # zeros between two records, after a 60-byte frame padded with zeros (its checksums right)
    padded = bytes(Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IP(src="192.0.2.10", dst="198.51.100.5")
                   / UDP(sport=41000, dport=5000) / b"ab") + bytes(16)
    assert len(padded) == 60 and headers_proven(padded, 1)
    frames[5] = padded
    data, offs = _capture(frames)
    path = tmp_path / "zeros_between.pcap"
    path.write_bytes(data[:offs[6]] + bytes(4096) + data[offs[6]:])
    fr = read_frames(path)
    assert len(fr) == 14 and fr.data(5) == padded
    assert fr.stats.warnings == ["zeros_between.pcap: 256 all-zero record headers (4096 bytes of zeros: a zero-filled "
                                 "region, from a crash or a sparse copy?) skipped"]


def test_a_record_whose_payload_alone_lost_bytes_is_kept(tmp_path):
    """Bytes lost in the payload of a datagram whose IPv4 header checksum is right and whose
    UDP header is whole (its length that of the datagram): its addresses and ports are the
    captured ones, so it is kept; leaving it out would lose what the flow carried (break-it
    fuzz: a client's only data segment left out turned 'unexpected, not TLS' into 'blocked')."""
    frames = [_udp(i, bytes(range(1, 41))) for i in range(12)]
    data, offs = _capture(frames)
    at = offs[5] + 16 + 42 + 20             # (in the payload)
    path = tmp_path / "payload.pcap"
    path.write_bytes(data[:at] + data[at + 5:])
    fr = read_frames(path)
    (line,) = fr.stats.warnings
    assert "damaged record at offset" in line and "left out" not in line, line
    assert 40005 in _ports(fr) and 40006 not in _ports(fr) and fr.stats.skipped_records == 1
    _same_at_every_chunk_size(path, fr, range(64, 1400, 13))
