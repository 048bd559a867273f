"""Session 57: the tshark engine's leftovers of the s56 break-it pass on link types and damaged
files (findings #4, #6, #7, #8): for the same file, both engines give the same flows and the same
kinds of warning lines."""
import gzip
import shutil
import struct

import pytest

from kscc_traffic import load_rules

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None,
                                  reason="tshark (Wireshark) not installed: the tshark engine is compared here")

CLIENT, SERVER = "198.51.100.7", "192.0.2.10"
CLIENT6, SERVER6 = "2001:db8::7", "2001:db8::10"
T0 = 1_700_000_000.0


def _both(path):
    """{engine: Analysis} of ``path`` by the builtin and the tshark engine."""
    from kscc_traffic.analyze import analyze_file
    return {e: analyze_file(path, load_rules(), engine=e) for e in ("builtin", "tshark")}


def _said_once_by_both(path, marker: str, start: str) -> dict:
    """{engine: Analysis} of ``path`` (:func:`_both`), asserting that each engine gives one
    warning line holding ``marker``, starting with ``start``, and the same flows."""
    runs = _both(path)
    for engine, a in runs.items():
        lines = [w for w in a.warnings if marker in w]
        assert len(lines) == 1 and lines[0].startswith(start), (engine, a.warnings)
    assert _rows(runs["builtin"]) == _rows(runs["tshark"])
    return runs


def _rows(a, cols=("proto", "orig_h", "orig_p", "resp_h", "resp_p", "orig_pkts", "orig_bytes", "resp_pkts",
                   "conn_state", "history", "verdict")):
    return sorted(tuple(str(v) for v in r) for r in a.flows[list(cols)].values.tolist())


def _fragments(v6: bool):
    """The Ethernet frames of one UDP 15000 datagram (64 bytes of payload) in 3 fragments."""
    from pcapbuild import eth
    from scapy.layers.inet import IP, UDP, fragment
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, fragment6
    if v6:
        pkt = IPv6(src=CLIENT6, dst=SERVER6) / IPv6ExtHdrFragment(id=9) / UDP(sport=33333, dport=15000) / (b"A" * 100)
        return [eth(f) for f in fragment6(pkt, 96)]
    pkt = IP(src=CLIENT, dst=SERVER, id=0x1092) / UDP(sport=33333, dport=15000) / (b"A" * 64)
    return [eth(f) for f in fragment(pkt, fragsize=32)]


@needs_tshark
@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("how", ["each", "set"])
def test_fragments_captured_twice_are_one_datagram_with_both_engines(tmp_path, v6, how):
    """Break-it s56 #4: a SPAN port that copies each frame (``each``: every fragment twice, 0.1 ms
    apart), or the whole set captured again 3 ms later (``set``). The tshark engine made a flow of
    "later fragments never captured whole" out of the copy of the last fragment (Wireshark
    completes the datagram before it), and counted an IPv6 datagram seen twice twice (no IP id
    for the frame dedup). Both engines now give one datagram and the builtin's line."""
    from pcapbuild import pcap_bytes
    frags = _fragments(v6)
    assert len(frags) == 3
    if how == "each":
        recs = [(T0 + i * 0.0002 + c * 0.0001, f) for i, f in enumerate(frags) for c in (0, 1)]
    else:
        recs = [(T0 + i * 0.001, f) for i, f in enumerate(frags + frags)]
    path = tmp_path / "dup.pcap"
    path.write_bytes(pcap_bytes(recs))
    runs = _both(path)
    for engine, a in runs.items():
        assert "dup.pcap: decode: 3 duplicate IP fragments ignored" in a.warnings, (engine, a.warnings)
        assert not any("could not be reassembled" in w or "duplicated frame" in w for w in a.warnings), \
            (engine, a.warnings)
        assert _rows(a) == [("udp", CLIENT6 if v6 else CLIENT, "33333", SERVER6 if v6 else SERVER, "15000", "1",
                             "100" if v6 else "64", "0", "S0", "D", "ok")], engine
    assert _rows(runs["builtin"]) == _rows(runs["tshark"])


@needs_tshark
def test_a_fragment_seen_again_with_other_bytes_is_no_copy(tmp_path):
    """The copy test asks for the same bytes: the last fragment again with other bytes after the
    datagram completed is a fragment of its own (never completed), with both engines."""
    from pcapbuild import pcap_bytes
    from scapy.layers.inet import IP
    from scapy.packet import Raw
    frags = _fragments(False)
    last = frags[-1].copy()
    last[IP].remove_payload()
    last[IP].add_payload(Raw(b"B" * (len(bytes(frags[-1][IP].payload)))))
    path = tmp_path / "other.pcap"
    path.write_bytes(pcap_bytes([(T0 + i * 0.001, f) for i, f in enumerate(frags + [last])]))
    runs = _both(path)
    for engine, a in runs.items():
        assert "other.pcap: decode: 1 IP fragments could not be reassembled (kept as one row each; their " \
               "datagrams never arrived whole, so nothing in them is read as DNS, TLS or HTTP)" in a.warnings, \
            (engine, a.warnings)
        assert not any("duplicate" in w for w in a.warnings), (engine, a.warnings)
        assert len(a.flows) == 2, engine
    assert _rows(runs["builtin"]) == _rows(runs["tshark"])


@needs_tshark
def test_overlapping_fragments_are_said_by_both_engines(tmp_path):
    """Break-it s56 #7: a second fragment at an offset that overlaps the first, with other bytes:
    the builtin engine's "overlapping fragments (first copy of each byte kept)" line, which the
    tshark engine did not print; the first copy's ports with both."""
    from pcapbuild import eth, pcap_bytes
    from scapy.layers.inet import IP, UDP, fragment
    from scapy.packet import Raw
    pkt = IP(src=CLIENT, dst=SERVER, id=0x1092) / UDP(sport=33333, dport=15000) / (b"A" * 64)
    fr = fragment(pkt, fragsize=32)
    over = fr[0].copy()             # (offset 0 again, other bytes: other ports)
    over.payload = Raw(b"\x11\x11\x22\x22" + bytes(fr[0].payload)[4:])
    del over.len, over.chksum
    recs = [(T0, eth(fr[0])), (T0 + 0.001, eth(over))] + [(T0 + 0.002 + i * 0.001, eth(f)) for i, f in enumerate(fr[1:])]
    path = tmp_path / "overlap.pcap"
    path.write_bytes(pcap_bytes(recs))
    runs = _both(path)
    for engine, a in runs.items():
        assert "overlap.pcap: decode: 1 IP datagrams had overlapping fragments (first copy of each byte kept)" \
            in a.warnings, (engine, a.warnings)
        assert _rows(a) == [("udp", CLIENT, "33333", SERVER, "15000", "1", "64", "0", "S0", "D", "ok")], engine


@needs_tshark
@pytest.mark.parametrize("ulen", [0, 4])
def test_a_udp_length_below_8_is_not_blamed_on_the_capture_tool(tmp_path, ulen):
    """Break-it s56 #6: a whole UDP datagram whose length field is 0 or 4. Wireshark dissects
    nothing after the header ("Bad length value"), and the tshark engine took the 20 bytes of
    payload for bytes the capture cut ("captured shorter than its IP length … pktmon's 128-byte
    default?"). The builtin engine says nothing: the IP packet is whole. Now neither does."""
    from pcapbuild import eth, pcap_bytes
    from scapy.layers.inet import IP, UDP
    raw = bytearray(bytes(IP(src=CLIENT, dst=SERVER) / UDP(sport=33333, dport=15000) / (b"A" * 20)))
    raw[24:26] = struct.pack(">H", ulen)
    path = tmp_path / "ulen.pcap"
    path.write_bytes(pcap_bytes([(T0, eth(IP(bytes(raw))))]))
    runs = _both(path)
    for engine, a in runs.items():
        assert not any("captured shorter" in w for w in a.warnings), (engine, a.warnings)
        assert _rows(a) == [("udp", CLIENT, "33333", SERVER, "15000", "1", "20", "0", "S0", "D", "ok")], engine


def _syn_then(bad: bytes):
    """A SYN, SYN-ACK and ACK towards 23101, then ``bad`` (an IPv4 packet) in a frame of its own."""
    from pcapbuild import eth, pcap_bytes
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    a, s = "192.0.2.10", "203.0.113.10"
    recs = [(T0, eth(IP(src=a, dst=s) / TCP(sport=40000, dport=23101, flags="S", seq=1))),
            (T0 + 0.01, eth(IP(src=s, dst=a) / TCP(sport=23101, dport=40000, flags="SA", seq=9, ack=2))),
            (T0 + 0.02, eth(IP(src=a, dst=s) / TCP(sport=40000, dport=23101, flags="A", seq=2, ack=10))),
            (T0 + 0.03, Ether(src="02:00:00:00:00:10", dst="02:00:00:00:00:01", type=0x0800) / bad)]
    return pcap_bytes(recs)


def _bad_header(kind: str) -> bytes:
    from scapy.layers.inet import IP, TCP
    raw = bytearray(bytes(IP(src="192.0.2.10", dst="203.0.113.10") / TCP(sport=40000, dport=23101, flags="A",
                                                                         seq=2, ack=10)))
    if kind == "ihl4":
        raw[0] = 0x44
    elif kind == "ihl15":
        raw[0] = 0x4F
    elif kind == "totlen10":
        raw[2:4] = struct.pack(">H", 10)
    elif kind == "version5":
        raw[0] = 0x55
    elif kind == "tcp_doff3":
        raw[32] = 0x30
    return bytes(raw)


@needs_tshark
@pytest.mark.parametrize("kind", ["ihl4", "ihl15", "totlen10", "version5", "tcp_doff3"])
def test_a_malformed_header_is_said_by_both_engines(tmp_path, kind):
    """Break-it s56 #7: an IPv4 header length of 4 or 15 (in a 40-byte packet), a total length
    of 10, version 5 under ethertype 0x0800, a TCP data offset of 3: the builtin engine's
    "malformed" line, which the tshark engine (which skipped the frame alike) did not print."""
    path = tmp_path / "bad.pcap"
    path.write_bytes(_syn_then(_bad_header(kind)))
    runs = _both(path)
    for engine, a in runs.items():
        assert "bad.pcap: decode: 1 frame too short or inconsistent to decode (malformed) skipped" in a.warnings, \
            (engine, a.warnings)
    assert _rows(runs["builtin"]) == _rows(runs["tshark"])
    assert [r[5] for r in _rows(runs["tshark"])] == ["2"]          # (the SYN and the ACK)


def _pcapng(blocks: list[tuple[int, bytes]]) -> bytes:
    def block(kind: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)
    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(1, struct.pack("<HHI", 1, 0, 0) + struct.pack("<HH", 9, 1) + b"\x06\0\0\0" + struct.pack("<HH", 0, 0))
    for kind, body in blocks:
        out += block(kind, body)
    return out


def _epb(ts: float, frame) -> tuple[int, bytes]:
    data = bytes(frame)
    us = round(ts * 1e6)
    return 6, struct.pack("<IIIII", 0, us >> 32, us & 0xFFFFFFFF, len(data), len(data)) + data + b"\0" * (-len(data) % 4)


@needs_tshark
def test_unknown_pcapng_blocks_are_said_by_both_engines(tmp_path):
    """Break-it s56 #7: two blocks of types no reader knows between the packets: tshark skips
    them without a word; the builtin reader's line is now the tshark engine's too (it is read off
    the file, as the other container notes are)."""
    from pcapbuild import tcp_session
    recs = tcp_session(("192.0.2.10", 50000), ("192.0.2.20", 13000), t0=T0)
    blocks = [_epb(t, p) for t, p in recs[:2]] + [(0x0BADBEEF, b"\1\2\3\4"), (0x40001234, b"")] \
        + [_epb(t, p) for t, p in recs[2:]]
    path = tmp_path / "blocks.pcapng"
    path.write_bytes(_pcapng(blocks))
    runs = _said_once_by_both(path, "of a type this reader does not know",
                              "blocks.pcapng: 2 blocks of a type this reader does not know (0x0badbeef, 0x40001234; "
                              "first at offset ")
    assert len(runs["tshark"].flows) == 1


@needs_tshark
def test_a_gzip_stream_whose_check_fails_is_said_by_both_engines(tmp_path):
    """Break-it s56 #7: a gzip capture whose CRC-32 does not match its data: the builtin reader's
    "gzip data corrupt (…)" line is now the tshark engine's too; the packets are the same."""
    from pcapbuild import pcap_bytes, tcp_session
    data = bytearray(gzip.compress(pcap_bytes(tcp_session(("192.0.2.10", 50000), ("192.0.2.20", 13000), t0=T0))))
    data[-8] ^= 0xFF                # (the CRC-32 of the trailer)
    path = tmp_path / "crc.pcap.gz"
    path.write_bytes(bytes(data))
    _said_once_by_both(path, "gzip data corrupt (", "crc.pcap.gz: gzip data corrupt (")


@needs_tshark
def test_a_gzip_stream_cut_short_is_said_by_both_engines(tmp_path):
    """A gzip capture cut inside its deflate data: tshark says the file "appears to have been
    cut short in the middle of a packet"; the builtin reader's line that the gzip stream ends
    before its end marker (as the tshark engine already gave it for xz and bzip2, which it
    decompresses itself) is now added, with the same packets read."""
    from pcapbuild import pcap_bytes, tcp_session
    recs = tcp_session(("192.0.2.10", 50000), ("192.0.2.20", 13000), t0=T0, c_data=b"x" * 900, s_data=b"y" * 900)
    data = gzip.compress(pcap_bytes(recs))
    path = tmp_path / "cut.pcap.gz"
    path.write_bytes(data[:len(data) - 30])
    _said_once_by_both(path, "gzip stream ends before its end marker",
                       "cut.pcap.gz: gzip stream ends before its end marker (file cut short); capture data ends at offset ")


def _loopback(linktype: int, family6: int, order: str) -> bytes:
    """A capture of link type ``linktype`` (0 NULL, 108 LOOP): an IPv4 and an IPv6 TCP
    connection attempt refused, the families written in ``order`` ("<" or ">"), IPv6 as
    ``family6``."""
    from pcapbuild import pcap_bytes
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    pkts = [IP(src="192.0.2.10", dst="192.0.2.20") / TCP(sport=50000, dport=13000, flags="S", seq=1),
            IP(src="192.0.2.20", dst="192.0.2.10") / TCP(sport=13000, dport=50000, flags="RA", ack=2),
            IPv6(src="2001:db8::10", dst="2001:db8::20") / TCP(sport=50010, dport=13000, flags="S", seq=1),
            IPv6(src="2001:db8::20", dst="2001:db8::10") / TCP(sport=13000, dport=50010, flags="RA", ack=2)]
    return pcap_bytes([(T0 + i * 0.01, struct.pack(order + "I", 2 if p.version == 4 else family6) + bytes(p))
                       for i, p in enumerate(pkts)], linktype=linktype)


@needs_tshark
@pytest.mark.parametrize("linktype, family6, order, said", [
    (0, 23, "<", "23: Windows' AF_INET6, which Wireshark reads as IPX"),
    (0, 10, "<", "10: Linux's AF_INET6"),
    (0, 23, ">", "23: Windows' AF_INET6, which Wireshark reads as IPX"),
    (108, 24, "<", "2 written little-endian under LINKTYPE_LOOP, which is big-endian; "
                   "24 written little-endian under LINKTYPE_LOOP, which is big-endian"),
], ids=["null-23", "null-10", "null-23-be", "loop-le"])
def test_loopback_families_wireshark_does_not_read_are_read_by_both_engines(tmp_path, linktype, family6, order, said):
    """Break-it s56 #8: LINKTYPE_NULL with IPv6 as family 23 (Windows' AF_INET6, which Wireshark
    reads as IPX) or 10 (Linux's, which it does not know): the tshark engine lost the IPv6 flow,
    silently for 23, blaming a little-endian LOOP header for 10. It now dissects a copy with the
    family written as Wireshark reads it (as it did not for a little-endian LOOP header either),
    so both engines give the same flows, and says so in one line."""
    path = tmp_path / "lo.pcap"
    path.write_bytes(_loopback(linktype, family6, order))
    runs = _both(path)
    assert not runs["builtin"].warnings
    assert _rows(runs["builtin"]) == _rows(runs["tshark"])
    assert [r[1] for r in _rows(runs["tshark"])] == ["192.0.2.10", "2001:db8::10"]
    k = 4 if linktype == 108 else 2
    assert runs["tshark"].warnings == [
        f"lo.pcap: tshark does not read the address family of {k} loopback frames as IP ({said}): it dissected "
        "instead a copy of the 4 records the built-in reader reads in the file, with the family written as "
        "Wireshark reads it (2 for IPv4, 24 for IPv6; big-endian under LINKTYPE_LOOP), so both engines read them"]


@needs_tshark
def test_a_loopback_family_of_the_other_ip_version_is_malformed_with_both_engines(tmp_path):
    """Break-it s56 #8, made-up input: family 24 (AF_INET6) on IPv4 packets and 2 on IPv6 ones.
    The builtin decoder asks the version its family names and skips all as malformed; the tshark
    engine read the IPv6 ones (Wireshark's IPv4 dissector hands them on) and blamed a
    little-endian LOOP header for the others. Both now skip them as malformed."""
    from pcapbuild import pcap_bytes
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    pkts = [(24, IP(src="192.0.2.10", dst="192.0.2.20") / TCP(sport=50000, dport=13000, flags="S")),
            (2, IPv6(src="2001:db8::10", dst="2001:db8::20") / TCP(sport=50010, dport=13000, flags="S"))]
    path = tmp_path / "mix.pcap"
    path.write_bytes(pcap_bytes([(T0 + i, struct.pack("<I", fam) + bytes(p)) for i, (fam, p) in enumerate(pkts)],
                                linktype=0))
    runs = _both(path)
    for engine, a in runs.items():
        assert "mix.pcap: decode: 2 frames too short or inconsistent to decode (malformed) skipped" in a.warnings, \
            (engine, a.warnings)
        assert not any("loopback" in w for w in a.warnings), (engine, a.warnings)
        assert len(a.flows) == 0, engine


def test_loopback_header_rewrite_keeps_what_wireshark_reads():
    """:func:`_loop_header` (no tshark needed): only a family the builtin decoder reads as IP and
    Wireshark does not is rewritten; under LOOP big-endian, under NULL in the header's order."""
    from kscc_traffic.engines.tshark import _loop_header, loop_families_text
    le, be = (lambda v: struct.pack("<I", v)), (lambda v: struct.pack(">I", v))
    assert _loop_header(0, le(23)) == le(24)
    assert _loop_header(0, be(10)) == be(24)
    assert _loop_header(0, le(2)) is None and _loop_header(0, le(30)) is None and _loop_header(0, be(24)) is None
    assert _loop_header(108, le(2)) == be(2)
    assert _loop_header(108, le(28)) == be(28)
    assert _loop_header(108, le(23)) == be(24)
    assert _loop_header(108, be(2)) is None
    assert _loop_header(0, le(7)) is None          # (OSI: neither engine's IP)
    assert _loop_header(0, b"\x17\x00\x00\x17") is None
    assert _loop_header(1, le(23)) is None and _loop_header(0, b"\x17") is None
    assert loop_families_text({23: 1, -2: 3, 10: 1}) == (
        "10: Linux's AF_INET6; 23: Windows' AF_INET6, which Wireshark reads as IPX; "
        "2 written little-endian under LINKTYPE_LOOP, which is big-endian")
