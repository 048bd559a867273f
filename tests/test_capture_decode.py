"""Tests for kscc_traffic.capture.decode: link types, VLANs, IPv4/IPv6, transports, tunnels,
fragments, cut frames; fast path == slow path everywhere; agreement with a scapy reference on
the shared corpus."""
from __future__ import annotations

import functools
import ipaddress
import random
import struct
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("scapy")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from scapy.all import (  # noqa: E402
    ARP, DNS, DNSQR, DNSRR, GRE, ICMP, IP, LLC, SNAP, STP, TCP, UDP, VXLAN, CookedLinux,
    CookedLinuxV2, Dot1AD, Dot1Q, Dot3, Dot11, Dot11Beacon, Ether, GRE_PPTP, ICMPv6DestUnreach,
    IPerror, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting,
    PPP, PPPoE, RadioTap, Raw, UDPerror, fragment, fragment6)
from scapy.contrib.mpls import MPLS  # noqa: E402

from kscc_traffic.capture.decode import decode  # noqa: E402
from kscc_traffic.capture.frames import Frames  # noqa: E402
from kscc_traffic.capture.packets import PACKET_COLUMNS, Packets  # noqa: E402

from reference_decoder import (  # noqa: E402
    decoded_fields, frames_from_records, link_fields, link_reference, read_capture, reference)

from conftest import SHARED  # noqa: E402
CORPUS = SHARED / "corpus"
TS = 1_700_000_000_000_000_000
M1, M2 = "02:00:00:00:00:01", "02:00:00:00:00:02"
BCAST = "ff:ff:ff:ff:ff:ff"
V4 = IP(src="192.0.2.10", dst="203.0.113.5")
V6 = IPv6(src="2001:db8::10", dst="2001:db8::53")
SEG = TCP(sport=40000, dport=443, flags="PA", seq=1000, ack=2000) / Raw(b"hello")


# ---------------------------------------------------------------------------- helpers
def dec(frames: Frames) -> Packets:
    """decode(), checked against the slow path on the same input (identical columns)."""
    p = decode(frames)
    q = decode(frames, fast=False)
    assert set(p.cols) == set(PACKET_COLUMNS)
    for k, dt in PACKET_COLUMNS.items():
        assert p.cols[k].dtype == np.dtype(dt), k
        np.testing.assert_array_equal(p.cols[k], q.cols[k], err_msg=k)
    assert bytes(p.buf) == bytes(q.buf)
    assert (p.stats.non_ip, p.stats.malformed, p.stats.ip_packets, p.stats.warnings) == \
        (q.stats.non_ip, q.stats.malformed, q.stats.ip_packets, q.stats.warnings)
    assert p.stats.ip_packets == len(p)
    return p


def frames(*items) -> Frames:
    """Frames from scapy packets (Ether ...) or (linktype, bytes) pairs, 1 µs apart."""
    recs = []
    for k, it in enumerate(items):
        if isinstance(it, tuple):
            recs.append((TS + k * 1000, it[0], bytes(it[1])))
        else:
            recs.append((TS + k * 1000, 1, bytes(it)))
    return frames_from_records(recs)


def one(*items) -> dict:
    """Decode and return the single row as {column: python value}."""
    p = dec(frames(*items))
    assert len(p) == 1, (len(p), p.stats)
    row = {k: v[0].item() for k, v in p.cols.items()}
    row["payload"] = p.payload(0)
    return row


def addr(hi: int, lo: int) -> str:
    if hi == 0 and lo >> 32 == 0xFFFF:
        return str(ipaddress.IPv4Address(lo & 0xFFFFFFFF))
    return str(ipaddress.IPv6Address(hi << 64 | lo))


def eth(*layers, dst=M2):
    pkt = Ether(dst=dst, src=M1)
    for layer in layers:
        pkt = pkt / layer
    return pkt


def core(row: dict) -> tuple:
    return (addr(row["src_hi"], row["src_lo"]), addr(row["dst_hi"], row["dst_lo"]),
            row["proto"], row["sport"], row["dport"])


# ---------------------------------------------------------------------------- link types
def test_ethernet_ipv4_tcp_all_fields():
    tcp = TCP(sport=40000, dport=443, flags=0x118, seq=7, ack=9, options=[("NOP", None)] * 4)
    r = one(eth(V4 / tcp / Raw(b"hello")))
    assert core(r) == ("192.0.2.10", "203.0.113.5", 6, 40000, 443)
    assert (r["ipver"], r["vlan"], r["l2_bcast"], r["frame"], r["ts_ns"]) == (4, 0, False, 0, TS)
    assert (r["tcp_flags"], r["seq"], r["ack"]) == (0x118, 7, 9)      # NS bit as 0x100
    assert (r["icmp_type"], r["icmp_code"], r["ip_id"]) == (-1, -1, 1)
    assert (r["ip_len"], r["payload_len"], r["pl_cap"]) == (20 + 24 + 5, 5, 5)
    assert r["payload"] == b"hello"
    assert r["pl_off"] == 14 + 20 + 24


def test_ethernet_broadcast_flag():
    r = one(eth(V4 / UDP(sport=137, dport=137) / Raw(b"x" * 10), dst=BCAST))
    assert r["l2_bcast"] is True and r["payload_len"] == 10


@pytest.mark.parametrize("lt", [101, 12, 14, 228])
def test_raw_ipv4_link_types(lt):
    r = one((lt, V4 / SEG))
    assert core(r) == ("192.0.2.10", "203.0.113.5", 6, 40000, 443)


@pytest.mark.parametrize("lt", [101, 12, 14, 229])
def test_raw_ipv6_link_types(lt):
    r = one((lt, V6 / UDP(sport=5353, dport=53) / Raw(b"q")))
    assert core(r) == ("2001:db8::10", "2001:db8::53", 17, 5353, 53)
    assert (r["ipver"], r["ip_id"], r["ip_len"], r["payload_len"]) == (6, -1, 49, 1)


def test_raw_228_reads_ipv6_by_its_version_nibble():
    """(as Wireshark's IP dissector: a tool that wrote the IPv4-only raw type for IPv6 packets)"""
    p = dec(frames((228, V6 / SEG), (229, V4 / SEG), (228, b"\x70" + bytes(19))))
    assert len(p) == 2 and p.stats.malformed == 1
    assert sorted(p.cols["ipver"].tolist()) == [4, 6]


def test_linux_sll_broadcast_packet_type():
    r = one((113, CookedLinux(pkttype=1, proto=0x0800) / V4 / SEG))
    assert core(r) == ("192.0.2.10", "203.0.113.5", 6, 40000, 443) and r["l2_bcast"] is True
    r = one((113, CookedLinux(pkttype=0, proto=0x86DD) / V6 / SEG))
    assert core(r)[:2] == ("2001:db8::10", "2001:db8::53") and r["l2_bcast"] is False


def test_linux_sll2():
    r = one((276, CookedLinuxV2(proto=0x0800, pkttype=1) / V4 / SEG))
    assert core(r) == ("192.0.2.10", "203.0.113.5", 6, 40000, 443) and r["l2_bcast"] is True


@pytest.mark.parametrize("order", ["<I", ">I"])
@pytest.mark.parametrize("fam6", [10, 24, 28, 30])
def test_null_both_byte_orders(order, fam6):
    r4 = one((0, struct.pack(order, 2) + bytes(V4 / SEG)))
    assert core(r4) == ("192.0.2.10", "203.0.113.5", 6, 40000, 443)
    r6 = one((0, struct.pack(order, fam6) + bytes(V6 / SEG)))
    assert core(r6)[:2] == ("2001:db8::10", "2001:db8::53") and r6["ipver"] == 6


def test_null_unknown_family_is_not_ip():
    p = dec(frames((0, struct.pack("<I", 7) + bytes(V4 / SEG))))
    assert len(p) == 0 and p.stats.non_ip == 1


def test_loop_network_byte_order():
    r = one((108, struct.pack(">I", 2) + bytes(V4 / SEG)))
    assert core(r) == ("192.0.2.10", "203.0.113.5", 6, 40000, 443)
    r = one((108, struct.pack(">I", 24) + bytes(V6 / SEG)))
    assert r["ipver"] == 6 and r["dport"] == 443


def test_ppp_and_ppp_hdlc():
    assert one((9, b"\x00\x21" + bytes(V4 / SEG)))["dport"] == 443
    assert one((9, b"\xff\x03\x00\x57" + bytes(V6 / SEG)))["ipver"] == 6
    assert one((9, b"\x21" + bytes(V4 / SEG)))["sport"] == 40000      # compressed protocol
    assert one((50, b"\xff\x03\x00\x21" + bytes(V4 / SEG)))["dport"] == 443
    assert one((50, b"\x0f\x00\x08\x00" + bytes(V4 / SEG)))["dport"] == 443  # Cisco HDLC


def test_ieee802_11_data_frame_to_ds():
    # ToDS: the destination is addr3
    wifi = Dot11(type=2, subtype=0, FCfield=1, addr1="02:00:00:00:00:0a", addr2=M1, addr3=BCAST)
    r = one((105, wifi / LLC() / SNAP() / V4 / UDP(sport=68, dport=67) / Raw(b"d")))
    assert core(r) == ("192.0.2.10", "203.0.113.5", 17, 68, 67) and r["l2_bcast"] is True


def test_radiotap_qos_data_and_beacon():
    qos = Dot11(type=2, subtype=8, addr1=M2, addr2=M1, addr3=M2) / Raw(b"\x00\x00")
    r = one((127, RadioTap() / qos / LLC() / SNAP() / V4 / SEG))
    assert core(r) == ("192.0.2.10", "203.0.113.5", 6, 40000, 443)
    beacon = RadioTap() / Dot11(type=0, subtype=8, addr1=BCAST, addr2=M1, addr3=M1) / Dot11Beacon()
    p = dec(frames((127, beacon)))
    assert len(p) == 0 and p.stats.non_ip == 1 and p.stats.malformed == 0


def test_unknown_link_type_counted_with_one_warning():
    p = dec(frames((147, b"\x00" * 60), (147, b"\x01" * 60), (1, eth(V4 / SEG)), (9999, b"x")))
    assert len(p) == 1
    assert p.stats.unsupported_linktypes == {147: 2, 9999: 1}
    assert ("decode: 2 frames of unsupported link type 147 skipped (--engine tshark reads more link "
            "types)") in p.stats.warnings
    assert sum("unsupported link type" in w for w in p.stats.warnings) == 2
    assert ("decode: 1 frame of unsupported link type 9999 skipped (--engine tshark reads more link "
            "types)") in p.stats.warnings
    q = dec(frames((220, b"\x00" * 40), (1, eth(V4 / SEG))))
    assert "decode: 1 frame of link type 220 (USB: no IP traffic) skipped" in q.stats.warnings


def test_mixed_link_types_keep_frame_order():
    p = dec(frames((113, CookedLinux(proto=0x0800) / V4 / SEG), eth(ARP()), (0, struct.pack(
        "<I", 2) + bytes(V4 / UDP(sport=1, dport=2))), (127, b"\x00"), eth(V6 / SEG)))
    assert p["frame"].tolist() == [0, 2, 4]
    assert p["ts_ns"].tolist() == [TS, TS + 2000, TS + 4000]
    assert p["proto"].tolist() == [6, 17, 6]
    assert (p.stats.non_ip, p.stats.malformed) == (1, 1)


# ---------------------------------------------------------------------------- VLAN / L2 stacks
def test_vlan_single_tag():
    r = one(eth(Dot1Q(vlan=100), V4 / SEG))
    assert r["vlan"] == 1 << 24 | 100 and r["dport"] == 443


def test_vlan_two_tags_qinq_88a8():
    r = one(Ether(dst=M2, src=M1, type=0x88A8) / Dot1AD(vlan=10) / Dot1Q(vlan=20) / V4 / SEG)
    assert r["vlan"] == 1 << 24 | 10 << 12 | 20 and r["dport"] == 443


def test_vlan_three_tags_9100_88a8_8100():
    pkt = Ether(dst=M2, src=M1, type=0x9100) / Dot1Q(vlan=5, type=0x88A8) / \
        Dot1Q(vlan=10, type=0x8100) / Dot1Q(vlan=20) / V4 / SEG
    r = one(pkt)
    assert r["vlan"] == 1 << 24 | 10 << 12 | 20 | 5 << 25 and r["dport"] == 443


def test_vlan_five_tags_slow_path():
    pkt = Ether(dst=M2, src=M1, type=0x8100)
    for vid in (1, 2, 3, 4):
        pkt = pkt / Dot1Q(vlan=vid, type=0x8100)
    r = one(pkt / Dot1Q(vlan=5) / V4 / SEG)
    assert r["vlan"] == 1 << 24 | 4 << 12 | 5 | 3 << 25 | 2 << 37 | 1 << 49


def test_vlan_priority_tag_counts_as_untagged_but_inner_zero_stays_distinct():
    assert one(eth(Dot1Q(vlan=0, prio=5), V4 / SEG))["vlan"] == 0
    assert one(Ether(dst=M2, src=M1, type=0x88A8) / Dot1AD(vlan=7) / Dot1Q(vlan=0) / V4 / SEG)[
        "vlan"] == 1 << 24 | 7 << 12


def test_pppoe_session_ipv4_and_ipv6():
    r = one(eth(PPPoE(sessionid=3) / PPP(proto=0x0021) / V4 / SEG))
    assert core(r) == ("192.0.2.10", "203.0.113.5", 6, 40000, 443)
    r = one(eth(Dot1Q(vlan=9) / PPPoE(sessionid=3) / PPP(proto=0x0057) / V6 / SEG))
    assert r["ipver"] == 6 and r["vlan"] == 1 << 24 | 9


def test_pppoe_lcp_is_not_ip():
    p = dec(frames(eth(PPPoE(sessionid=3) / PPP(proto=0xC021) / Raw(b"\x09\x01\x00\x08abcd"))))
    assert len(p) == 0 and p.stats.non_ip == 1


def test_mpls_label_stack():
    r = one(eth(MPLS(label=16, s=0) / MPLS(label=17, s=1) / V4 / SEG))
    assert core(r) == ("192.0.2.10", "203.0.113.5", 6, 40000, 443)
    r = one(eth(MPLS(label=16, s=1) / V6 / UDP(sport=1, dport=2)))
    assert r["ipver"] == 6 and r["dport"] == 2


def test_8023_llc_snap_ip_and_stp_not_ip():
    r = one(Dot3(dst=M2, src=M1) / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(code=0x0800) / V4
            / UDP(sport=9, dport=10))
    assert core(r) == ("192.0.2.10", "203.0.113.5", 17, 9, 10)
    p = dec(frames(Dot3(dst="01:80:c2:00:00:00", src=M1) / LLC(dsap=0x42, ssap=0x42, ctrl=3)
                   / STP(), eth(ARP())))
    assert len(p) == 0 and p.stats.non_ip == 2 and p.stats.malformed == 0


# ---------------------------------------------------------------------------- IPv4 / IPv6
def test_ipv4_options():
    r = one(eth(IP(src="192.0.2.10", dst="203.0.113.5", options=b"\x94\x04\x00\x00" * 3)
                / UDP(sport=5, dport=6) / Raw(b"abc")))
    assert (r["sport"], r["dport"], r["ip_len"], r["payload"]) == (5, 6, 32 + 11, b"abc")


def test_ipv4_bad_header_is_malformed():
    raw = bytearray(bytes(eth(V4 / SEG)))
    raw[14] = 0x44                                              # IHL 4 < 5
    p = dec(frames((1, bytes(raw)), (1, bytes(eth(V4 / SEG))[:20])))
    assert len(p) == 0 and p.stats.malformed == 2


def _ipv4_with(opts: bytes, ihl_words: int | None = None, more: bytes = b"") -> bytes:
    """An Ethernet frame of V4 / SEG whose IPv4 header carries ``opts`` and says ``ihl_words``
    (default: its real length), total length and checksum set to match (a header damaged that way
    passes the checksum test); ``more``: bytes added to the TCP payload."""
    from conftest import inet_checksum
    seg = bytes(V4 / SEG)[20:] + more
    hdr = bytearray(bytes(V4 / SEG)[:20]) + opts
    hdr[0] = 0x40 | (ihl_words if ihl_words is not None else len(hdr) // 4)
    hdr[2:4] = struct.pack(">H", len(hdr) + len(seg))
    hdr[10:12] = b"\0\0"
    hdr[10:12] = struct.pack(">H", inet_checksum(bytes(hdr)))
    return bytes(eth(V4 / SEG))[:14] + bytes(hdr) + seg


@pytest.mark.parametrize("opts, ihl_words", [
    (b"", 15),                                  # IHL 15, no option: the TCP header read as options
    (b"\x07\x00\x00\x00", None),                # record route, length 0
    (b"\x44\x28\x05\x00", None),                # timestamp of length 40 in 4 bytes
    (b"\x01\x01\x01\x83", None),                # NOPs, then an option without its length byte
])
def test_ipv4_options_that_do_not_parse_are_malformed(opts, ihl_words):
    """(break-it 18 F7) IPv4 options that do not parse — an IHL larger than the header (the
    transport header and payload read as options), an option length below 2 or past the header —
    make the datagram malformed in both decoder paths, with one warning line naming the cause,
    instead of a TCP row read from the wrong place (a phantom flow on made-up ports)."""
    good = bytes(eth(V4 / SEG))
    p = dec(frames((1, _ipv4_with(opts, ihl_words, bytes(range(64)))), (1, good)))
    assert len(p) == 1 and p.cols["sport"][0] == 40000 and p.stats.malformed == 1
    assert [w for w in p.stats.warnings if "IPv4" in w] == [
        "decode: 1 IPv4 packet whose header options do not parse (an option length below 2 or past "
        "the header length: a damaged header length or options; receivers drop such packets) "
        "skipped as malformed: what follows the header cannot be located"]
    assert not any("too short or inconsistent" in w for w in p.stats.warnings)


@pytest.mark.parametrize("opts", [
    b"\x07\x27\x28" + b"\x01" * 36 + b"\x00",    # record route, full (39 bytes), end of options
    b"\x01\x01\x00\xff",                          # NOPs, end of options, then anything
    b"\x94\x04\x00\x00" * 2,                      # router alert twice
])
def test_ipv4_options_that_parse_still_decoded(opts):
    r = one((1, _ipv4_with(opts)))
    assert (r["proto"], r["sport"], r["dport"], r["ip_len"], r["payload"]) == \
        (6, 40000, 443, 20 + len(opts) + 25, b"hello")


def test_ppp_van_jacobson_tcp_counted_and_warned():
    """(break-it 18 F8) PPP frames of Van Jacobson compressed (0x002d) and uncompressed (0x002f)
    TCP, with and without the HDLC address/control bytes: not read, counted in ``non_ip`` and
    in one warning line with their count (they were dropped without a word); the IP frame
    beside them decoded."""
    vjc = b"\xff\x03\x00\x2d" + bytes([0x20, 0x12, 0x34, 0x05]) + b"payload"
    vjc2 = b"\x00\x2d" + bytes([0x00, 0xab, 0xcd]) + b"more"
    vjuc = b"\xff\x03\x00\x2f" + bytes(V4 / SEG)
    ip = b"\xff\x03\x00\x21" + bytes(V4 / SEG)
    p = dec(frames((9, vjc), (9, vjc2), (9, vjuc), (9, ip)))
    assert len(p) == 1 and p.cols["sport"][0] == 40000
    assert (p.stats.non_ip, p.stats.malformed) == (3, 0)
    assert [w for w in p.stats.warnings if "Van Jacobson" in w] == [
        "decode: 3 PPP frames of Van Jacobson compressed TCP (PPP protocol 0x002d/0x002f, RFC 1144) were "
        "not read: the TCP segments they carried are missing from the flows (turn VJ compression off on "
        "the PPP link, e.g. pppd's novj, or capture on the host)"]


def test_ipv6_hbh_dstopts_routing_tcp():
    pkt = eth(V6 / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / IPv6ExtHdrRouting() / SEG)
    r = one(pkt)
    assert core(r) == ("2001:db8::10", "2001:db8::53", 6, 40000, 443)
    assert (r["payload_len"], r["payload"], r["ip_len"]) == (5, b"hello", 40 + 8 + 8 + 8 + 25)


def test_ipv6_next_header_132_has_no_ports():
    sctp = Raw(b"\x0b\x59\x0b\x59" + b"\0" * 8)
    r = one(eth(IPv6(src="2001:db8::1", dst="2001:db8::2", nh=132) / sctp))
    assert (r["proto"], r["sport"], r["dport"], r["payload_len"]) == (132, -1, -1, 12)
    r = one(eth(IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrDestOpt(nh=132) / sctp))
    assert (r["proto"], r["sport"], r["dport"]) == (132, -1, -1)


def test_ipv6_no_next_header_59():
    r = one(eth(IPv6(src="2001:db8::1", dst="2001:db8::2", nh=59)))
    assert (r["proto"], r["sport"], r["payload_len"], r["pl_off"]) == (59, -1, 0, -1)


def test_ipv6_nonfirst_fragment_alone_has_no_ports():
    big = V6 / IPv6ExtHdrFragment(id=77) / UDP(sport=53, dport=5000) / Raw(b"z" * 300)
    frags = fragment6(big, 200)
    assert len(frags) >= 2
    p = dec(frames(eth(frags[1])))
    assert len(p) == 1
    assert (p["proto"][0], p["sport"][0], p["dport"][0]) == (17, -1, -1)
    p = dec(frames(eth(frags[0])))                    # a lone first fragment keeps its ports
    assert (p["sport"][0], p["dport"][0]) == (53, 5000)


def test_ipv6_fragments_reassembled():
    big = V6 / IPv6ExtHdrFragment(id=78) / UDP(sport=53, dport=5000) / Raw(b"z" * 300)
    frags = fragment6(big, 200)
    p = dec(frames(*[eth(f) for f in reversed(frags)]))
    assert len(p) == 1 and p["frame"][0] == len(frags) - 1
    assert (p["sport"][0], p["dport"][0], p["payload_len"][0]) == (53, 5000, 300)
    assert p.payload(0) == b"z" * 300 and p["ip_len"][0] == 40 + 308


@pytest.mark.parametrize("order", ["in order", "reversed"])
@pytest.mark.parametrize("fast", [True, False])
def test_ipv6_later_fragment_next_header_does_not_count(order, fast):
    """RFC 8200 §4.5: only the offset-0 fragment's Next Header counts (Linux keys reassembly on
    (id, src, dst)): a later fragment saying 59 (No Next Header) still completes the datagram."""
    big = V6 / IPv6ExtHdrFragment(id=79) / UDP(sport=53, dport=5000) / Raw(b"n" * 300)
    frags = fragment6(big, 250)
    assert len(frags) == 2
    frags[1][IPv6ExtHdrFragment].nh = 59
    items = [eth(f) for f in (frags if order == "in order" else frags[::-1])]
    p = decode(frames(*items), fast=fast)
    assert len(p) == 1 and p["frame"][0] == 1 and not p["unreassembled"][0]
    assert (p["proto"][0], p["sport"][0], p["dport"][0], p["payload_len"][0]) == (17, 53, 5000, 300)
    assert p.payload(0) == b"n" * 300
    assert not any("fragment" in w for w in p.stats.warnings)


@pytest.mark.parametrize("fast", [True, False])
def test_ipv6_overlapping_fragments_drop_the_datagram(fast):
    """RFC 5722: an IPv6 datagram with overlapping fragments is dropped whole by the receiver:
    no reassembled row, each fragment its own row marked unreassembled, without payload; a
    later fragment of it starts afresh (never completed here); counted and warned about."""
    big = V6 / IPv6ExtHdrFragment(id=80) / UDP(sport=53, dport=5000) / Raw(b"o" * 300)
    f0, f1 = fragment6(big, 250)
    fh = f1[IPv6ExtHdrFragment]
    data = bytes(fh.payload)
    evil = V6 / IPv6ExtHdrFragment(nh=17, id=80, offset=fh.offset - 1, m=0) / Raw(b"E" * 8 + data)
    p = decode(frames(eth(f0), eth(evil), eth(f1)), fast=fast)
    assert p["frame"].tolist() == [0, 1, 2]
    assert p["unreassembled"].tolist() == [True, True, True]
    assert p["sport"].tolist() == [53, -1, -1] and (p["pl_cap"] == 0).all()
    w = p.stats.warnings
    assert ("decode: 1 IPv6 datagram had overlapping fragments and was dropped whole, as the "
            "receiver does (RFC 5722): nothing in it reached an application (its fragments are "
            "counted below as not reassembled)") in w, w
    assert any(x.startswith("decode: 3 IP fragments could not be reassembled") for x in w), w
    assert not any("first copy" in x for x in w)
    # the same fragments without the overlapping one: reassembled
    p = decode(frames(eth(f0), eth(f1)), fast=fast)
    assert len(p) == 1 and p.payload(0) == b"o" * 300


def test_ipv6_exact_duplicate_fragment_is_not_an_overlap():
    big = V6 / IPv6ExtHdrFragment(id=81) / UDP(sport=53, dport=5000) / Raw(b"d" * 300)
    f0, f1 = fragment6(big, 250)
    p = dec(frames(eth(f0), eth(f0), eth(f1)))
    assert p["frame"].tolist() == [2] and p.payload(0) == b"d" * 300
    assert any("1 duplicate IP fragments ignored" in w for w in p.stats.warnings)
    assert not any("overlapping" in w for w in p.stats.warnings)


def test_ipv6_fragments_ending_the_datagram_twice_drop_it():
    """Two last fragments (M clear) that end the datagram at different lengths: an overlap."""
    big = V6 / IPv6ExtHdrFragment(id=82) / UDP(sport=53, dport=5000) / Raw(b"t" * 300)
    f0, f1 = fragment6(big, 250)
    fh = f1[IPv6ExtHdrFragment]
    short = V6 / IPv6ExtHdrFragment(nh=17, id=82, offset=fh.offset + 4, m=0) / Raw(b"s" * 8)
    p = dec(frames(eth(f0), eth(f1), eth(short)))
    assert p["frame"].tolist() == [1, 2] and p.payload(0) == b"t" * 300   # complete before
    assert p["unreassembled"].tolist() == [False, True]   # (a new datagram, never completed)
    p = dec(frames(eth(short), eth(f1), eth(f0)))
    assert p["unreassembled"].tolist() == [True, True, True]
    assert any("1 IPv6 datagram had overlapping" in w for w in p.stats.warnings)


def test_ipv4_fragments_reverse_order_dns_answer():
    dns = DNS(id=7, qr=1, qd=DNSQR(qname="example.com"),
              an=DNSRR(rrname="example.com", rdata="192.0.2.1") / DNSRR(
                  rrname="example.com", type="TXT", rdata="t" * 200) / DNSRR(
                  rrname="example.com", type="TXT", rdata="u" * 200))
    dgram = IP(src="203.0.113.53", dst="192.0.2.10", id=4242) / UDP(sport=53, dport=33333) / dns
    frags = fragment(dgram, fragsize=304)
    assert len(frags) == 2
    p = dec(frames(eth(V4 / SEG), eth(frags[1]), eth(frags[0]), eth(V4 / SEG)))
    assert p["frame"].tolist() == [0, 2, 3]
    r = {k: v[1].item() for k, v in p.cols.items()}
    assert core(r) == ("203.0.113.53", "192.0.2.10", 17, 53, 33333)
    assert (r["ts_ns"], r["ip_id"], r["ip_len"]) == (TS + 2000, 4242, len(bytes(dgram)))
    assert p.payload(1) == bytes(dns) and r["payload_len"] == len(bytes(dns))
    assert r["pl_off"] >= len(frames(eth(V4 / SEG)).buf)      # in the extra buffer
    assert p.payload(0) == b"hello" and p.payload(2) == b"hello"   # capture offsets unchanged
    assert not any("overlapping" in w for w in p.stats.warnings)


def test_ipv4_fragments_interleaved_datagrams_and_vlan_in_key():
    a = fragment(IP(src="10.0.0.1", dst="10.0.0.2", id=1) / UDP(sport=1, dport=2)
                 / Raw(b"a" * 100), fragsize=64)
    b = fragment(IP(src="10.0.0.1", dst="10.0.0.2", id=1) / UDP(sport=3, dport=4)
                 / Raw(b"b" * 100), fragsize=64)
    items = [eth(Dot1Q(vlan=5), a[0]), eth(Dot1Q(vlan=6), b[1]), eth(Dot1Q(vlan=5), a[1]),
             eth(Dot1Q(vlan=6), b[0])]
    p = dec(frames(*items))
    assert p["frame"].tolist() == [2, 3]
    assert p["sport"].tolist() == [1, 3] and p["vlan"].tolist() == [1 << 24 | 5, 1 << 24 | 6]
    assert p.payload(0) == b"a" * 100 and p.payload(1) == b"b" * 100


def test_overlapping_fragments_flagged_first_copy_kept():
    hdr = dict(src="10.0.0.1", dst="10.0.0.2", id=9, proto=17)
    udp = bytes(UDP(sport=7, dport=8, len=8 + 24)) + b"A" * 24       # 32 bytes of payload
    f1 = IP(flags="MF", frag=0, **hdr) / Raw(udp[:16])
    f2 = IP(flags="MF", frag=1, **hdr) / Raw(b"X" * 16)               # bytes 8..24: overlap
    f3 = IP(frag=2, **hdr) / Raw(udp[16:])
    p = dec(frames(eth(f1), eth(f2), eth(f3)))
    assert len(p) == 1 and (p["sport"][0], p["dport"][0]) == (7, 8)
    assert p.payload(0) == udp[8:16] + b"X" * 8 + udp[24:]         # first copy of 8..16 kept
    assert "decode: 1 IP datagrams had overlapping fragments (first copy of each byte kept)" \
        in p.stats.warnings


def test_duplicate_fragment_ignored():
    frags = fragment(IP(src="10.0.0.1", dst="10.0.0.2", id=3) / UDP(sport=1, dport=2)
                     / Raw(b"d" * 100), fragsize=64)
    p = dec(frames(eth(frags[0]), eth(frags[0]), eth(frags[1])))
    assert p["frame"].tolist() == [2] and p.payload(0) == b"d" * 100
    assert any("1 duplicate IP fragments" in w for w in p.stats.warnings)


def test_incomplete_fragments_become_rows():
    frags = fragment(IP(src="10.0.0.1", dst="10.0.0.2", id=5) / TCP(sport=21, dport=2000)
                     / Raw(b"f" * 200), fragsize=64)
    p = dec(frames(*[eth(f) for f in frags[:-1]]))          # the last fragment is missing
    assert p["frame"].tolist() == list(range(len(frags) - 1))
    assert p["sport"].tolist() == [21] + [-1] * (len(frags) - 2)
    assert p["proto"].tolist() == [6] * (len(frags) - 1)
    assert p["payload_len"].tolist()[1:] == [64] * (len(frags) - 2)
    assert any("could not be reassembled" in w for w in p.stats.warnings)


def test_fragments_too_far_apart_in_time_are_not_reassembled():
    frags = fragment(IP(src="10.0.0.1", dst="10.0.0.2", id=6) / UDP(sport=1, dport=2)
                     / Raw(b"t" * 100), fragsize=64)
    f = frames(*[eth(x) for x in frags])
    f.ts_ns[1] += 31_000_000_000                       # > 30 s after the first fragment
    p = dec(f)
    assert p["frame"].tolist() == [0, 1] and p["sport"].tolist() == [1, -1]


def test_reassembly_table_is_bounded():
    from kscc_traffic.capture._ipfrag import Reassembler

    r = Reassembler(max_datagrams=2)
    for k in range(3):                                 # 3 open datagrams: the oldest goes
        assert r.add(("d", k), k, 0, True, 8, b"x" * 8, f"row{k}", "head") is None
    assert r.flushed == ["row0"] and len(r.table) == 2
    done = r.add(("d", 2), 5, 8, False, 4, b"yyyy", "row2b", None)
    assert done is not None and done.data == b"x" * 8 + b"yyyy" and done.head == "head"
    r.finish()
    assert r.flushed == ["row0", "row1"] and r.incomplete == 2 and r.reassembled == 1


def test_tso_zero_total_length_uses_captured_length():
    raw = bytearray(bytes(eth(V4 / SEG)))
    raw[16:18] = b"\x00\x00"
    r = one((1, bytes(raw)))
    assert (r["ip_len"], r["payload_len"], r["dport"]) == (45, 5, 443)


# ---------------------------------------------------------------------------- transports
def test_snaplen_cut_tcp_keeps_ports_and_header_ip_len():
    full = bytes(eth(V4 / TCP(sport=25, dport=60000, flags="A") / Raw(b"m" * 1000)))
    r = one((1, full[:68]))
    assert core(r) == ("192.0.2.10", "203.0.113.5", 6, 25, 60000)
    assert (r["ip_len"], r["payload_len"], r["pl_cap"]) == (1040, 1000, 14)
    assert r["payload"] == b"m" * 14 and r["tcp_flags"] == 0x10
    r = one((1, full[:14 + 20 + 6]))                   # only 6 TCP bytes captured
    assert (r["sport"], r["dport"], r["seq"], r["tcp_flags"]) == (25, 60000, 0, 0)
    assert r["ip_len"] == 1040
    assert (r["pl_off"], r["pl_cap"]) == (-1, 0)
    r = one((1, full[:14 + 20 + 3]))                   # ports not captured
    assert (r["proto"], r["sport"], r["dport"]) == (6, -1, -1)


def test_udp_length_inconsistent_falls_back_to_ip_length():
    r = one(eth(V4 / UDP(sport=1, dport=2, len=4000) / Raw(b"p" * 12)))
    assert (r["payload_len"], r["payload"]) == (12, b"p" * 12)
    r = one(eth(V4 / UDP(sport=1, dport=2, len=12) / Raw(b"p" * 12)))   # UDP length shorter
    assert (r["payload_len"], r["payload"]) == (4, b"pppp")


def test_ethernet_padding_not_in_payload():
    r = one((1, bytes(eth(V4 / UDP(sport=1, dport=2) / Raw(b"ab"))) + b"\0" * 16))
    assert (r["payload_len"], r["pl_cap"], r["payload"]) == (2, 2, b"ab")


def test_icmp_error_payload_is_quoted_datagram():
    quoted = IPerror(src="192.0.2.10", dst="203.0.113.53") / UDPerror(sport=5000, dport=53)
    r = one(eth(IP(src="203.0.113.53", dst="192.0.2.10") / ICMP(type=3, code=3) / quoted))
    assert (r["proto"], r["icmp_type"], r["icmp_code"], r["sport"]) == (1, 3, 3, -1)
    assert r["payload"] == bytes(quoted)
    r = one(eth(V6 / ICMPv6DestUnreach(code=4) / IPv6(src="2001:db8::53", dst="2001:db8::10")
                / UDP(sport=1, dport=2)))
    assert (r["proto"], r["icmp_type"], r["icmp_code"]) == (58, 1, 4)


def test_other_protocol_payload_is_ip_payload():
    r = one(eth(IP(src="10.0.0.1", dst="224.0.0.22", proto=2) / Raw(b"\x22" + b"\0" * 7)))
    assert (r["proto"], r["sport"], r["payload_len"]) == (2, -1, 8)
    assert r["payload"] == b"\x22" + b"\0" * 7


# ---------------------------------------------------------------------------- tunnels
INNER = IP(src="172.16.0.1", dst="172.16.0.2") / TCP(sport=1234, dport=80, flags="S")
OUTER = IP(src="198.51.100.1", dst="198.51.100.2")


def test_gre_ipv4_emits_inner_packet():
    p = dec(frames(eth(OUTER / GRE() / INNER)))
    assert len(p) == 1
    r = {k: v[0].item() for k, v in p.cols.items()}
    assert core(r) == ("172.16.0.1", "172.16.0.2", 6, 1234, 80) and r["tcp_flags"] == 2
    assert any("GRE 1" in w for w in p.stats.warnings)


def test_gre_keyed_and_transparent_ethernet_bridging():
    keyed = OUTER / GRE(key_present=1, key=5, seqnum_present=1) / INNER
    assert core(one(eth(keyed)))[3:] == (1234, 80)
    teb = OUTER / GRE(proto=0x6558) / Ether(dst=BCAST, src=M1) / Dot1Q(vlan=33) / INNER
    r = one(eth(teb))             # the bridged frame's VLAN and broadcast destination, not the outer's
    assert core(r)[3:] == (1234, 80) and r["vlan"] == 1 << 24 | 33 and r["l2_bcast"] is True
    r = one(eth(Dot1Q(vlan=7) / OUTER / GRE(proto=0x6558) / Ether(dst=M2, src=M1) / INNER,
                dst=BCAST))
    assert r["vlan"] == 0 and r["l2_bcast"] is False


def test_pptp_enhanced_gre_with_ppp():
    pptp = OUTER / GRE_PPTP(seqnum_present=1, call_id=7) / PPP() / INNER
    assert core(one(eth(pptp))) == ("172.16.0.1", "172.16.0.2", 6, 1234, 80)
    ack_only = OUTER / GRE_PPTP(seqnum_present=0, acknum_present=1, call_id=7, payload_len=0)
    p = dec(frames(eth(ack_only)))
    assert len(p) == 0 and p.stats.non_ip == 1


def test_vxlan_emits_inner_packet():
    vx = OUTER / UDP(sport=50000, dport=4789) / VXLAN(vni=42) / Ether(dst=M2, src=M1) / INNER
    r = one(eth(vx))
    assert core(r) == ("172.16.0.1", "172.16.0.2", 6, 1234, 80)


def test_l2tp_data_emits_inner_and_control_stays_udp():
    l2tp = b"\x00\x02" + b"\x00\x01\x00\x02" + b"\xff\x03\x00\x21" + bytes(INNER)
    r = one(eth(OUTER / UDP(sport=1701, dport=1701) / Raw(l2tp)))
    assert core(r) == ("172.16.0.1", "172.16.0.2", 6, 1234, 80)
    ctrl = b"\xc8\x02\x00\x0c\x00\x01\x00\x00\x00\x00\x00\x00"
    r = one(eth(OUTER / UDP(sport=1701, dport=1701) / Raw(ctrl)))
    assert core(r) == ("198.51.100.1", "198.51.100.2", 17, 1701, 1701)


def test_ip_in_ip():
    assert core(one(eth(IP(src="198.51.100.1", dst="198.51.100.2", proto=4) / INNER)))[:2] == \
        ("172.16.0.1", "172.16.0.2")
    r = one(eth(IP(src="198.51.100.1", dst="198.51.100.2", proto=41) / V6 / SEG))
    assert r["ipver"] == 6 and r["dport"] == 443


def test_fragmented_gre_tunnel_reassembled_then_unwrapped():
    outer = IP(src="198.51.100.1", dst="198.51.100.2", id=99) / GRE() / IP(
        src="172.16.0.1", dst="172.16.0.2") / UDP(sport=4, dport=5) / Raw(b"g" * 200)
    p = dec(frames(*[eth(f) for f in fragment(outer, fragsize=96)]))
    assert len(p) == 1 and core({k: v[0].item() for k, v in p.cols.items()}) == \
        ("172.16.0.1", "172.16.0.2", 17, 4, 5)
    assert p.payload(0) == b"g" * 200


# ---------------------------------------------------------------------------- robustness
def test_empty_and_tiny_inputs():
    assert len(dec(Frames.empty())) == 0
    p = dec(frames((1, b""), (1, b"\x00" * 13), (113, b"\x00" * 15), (276, b"\x00"), (0, b"\x02"),
                   (101, b""), (127, b"\x00\x00\x08")))
    # the two records of captured length 0 hold nothing: not malformed (the reader counts them as
    # ReadStats.empty_records, break-it 18 F11); the five others are too short for their link type
    assert len(p) == 0 and p.stats.malformed == 5 and p.stats.non_ip == 0


def test_offsets_not_in_buffer_are_malformed():
    f = frames(eth(V4 / SEG), eth(V4 / SEG))
    f.offset[1] = len(f.buf) - 10
    p = dec(f)
    assert len(p) == 1 and p.stats.malformed == 1


def test_input_stats_not_modified():
    f = frames((147, b"\x00"), eth(ARP()))
    decode(f)
    assert f.stats.unsupported_linktypes == {} and f.stats.warnings == [] and f.stats.non_ip == 0


def test_memoryview_buffer():
    f = frames(eth(V4 / SEG), *[eth(f) for f in fragment(IP(src="10.0.0.1", dst="10.0.0.2", id=8)
                                                         / UDP(sport=1, dport=2)
                                                         / Raw(b"v" * 100), fragsize=64)])
    f.buf = memoryview(f.buf)
    p = dec(f)
    assert len(p) == 2 and p.payload(0) == b"hello" and p.payload(1) == b"v" * 100


def test_chunk_boundaries_and_large_mixed_input():
    rng = random.Random(5)
    pool = [(1, eth(V4 / SEG)), (1, eth(Dot1Q(vlan=3), V6 / UDP(sport=1, dport=2))),
            (1, eth(ARP())), (1, eth(V4 / ICMP())), (113, CookedLinux(proto=0x0800) / V4 / SEG),
            (1, eth(V6 / IPv6ExtHdrHopByHop() / SEG)), (1, bytes(eth(V4 / SEG))[:30])]
    pool = [(lt, bytes(x)) for lt, x in pool]
    kinds = [rng.randrange(len(pool)) for _ in range(20000)]      # > 2 chunks of 8192
    p = dec(frames(*[pool[k] for k in kinds]))
    assert p.stats.ip_packets + p.stats.non_ip + p.stats.malformed == 20000
    expect_rows = [i for i, k in enumerate(kinds) if k not in (2, 6)]
    assert p["frame"].tolist() == expect_rows
    assert p.stats.non_ip == kinds.count(2) and p.stats.malformed == kinds.count(6)


@functools.cache
def _seed_frames() -> list[tuple[int, bytes]]:
    v4, v6 = V4 / SEG, V6 / UDP(sport=1, dport=2) / Raw(b"xy")
    return [
        (1, bytes(eth(v4))), (1, bytes(eth(Dot1Q(vlan=4), v6))),
        (1, bytes(Ether(dst=M2, src=M1, type=0x88A8) / Dot1AD(vlan=1) / Dot1Q(vlan=2) / v4)),
        (1, bytes(eth(PPPoE(sessionid=1) / PPP(proto=0x21) / v4))),
        (1, bytes(eth(MPLS(s=1) / v4))), (1, bytes(eth(OUTER / GRE() / INNER))),
        (1, bytes(eth(OUTER / UDP(sport=9, dport=4789) / VXLAN() / Ether() / INNER))),
        (1, bytes(eth(V6 / IPv6ExtHdrHopByHop() / IPv6ExtHdrRouting() / SEG))),
        (1, bytes(eth(fragment(IP(src="1.1.1.1", dst="2.2.2.2") / UDP() / Raw(b"r" * 80),
                               fragsize=48)[0]))),
        (113, bytes(CookedLinux(proto=0x86DD) / v6)), (276, bytes(CookedLinuxV2(proto=0x800) / v4)),
        (0, struct.pack(">I", 2) + bytes(v4)), (101, bytes(v6)),
        (127, bytes(RadioTap() / Dot11(type=2, addr1=M1, addr2=M2, addr3=M2) / LLC() / SNAP()
                    / v4)),
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.integers(0, 13), st.lists(st.tuples(st.integers(0, 79),
                                                                  st.integers(0, 255)), max_size=4),
                          st.integers(0, 300), st.sampled_from([0, 1, 9, 50, 101, 105, 108, 113,
                                                                127, 228, 229, 276, 147])),
                min_size=1, max_size=40))
def test_mutated_frames_never_raise_and_paths_agree(spec):
    seeds = _seed_frames()
    recs = []
    for k, (si, flips, cut, lt) in enumerate(spec):
        lt0, data = seeds[si]
        data = bytearray(data)
        for pos, val in flips:
            if pos < len(data):
                data[pos] = val
        data = bytes(data[:cut]) if cut < len(data) else bytes(data)
        recs.append((TS + k, lt0 if k % 3 else lt, data))
    p = dec(frames_from_records(recs))
    assert p.stats.ip_packets + p.stats.non_ip + p.stats.malformed \
        + sum(p.stats.unsupported_linktypes.values()) <= len(recs)


# ---------------------------------------------------------------------------- corpus
def _corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.glob("*/*.pcap*") if not p.name.endswith(".json"))


def _read(path: Path) -> Frames:
    try:
        return read_capture(path)
    except Exception as exc:                # unreadable header: nothing to decode
        pytest.skip(f"{path.name}: not readable ({type(exc).__name__})")


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"shared corpus not found at {CORPUS}")
@pytest.mark.parametrize("path", _corpus_files(), ids=lambda p: p.name)
def test_corpus_matches_scapy_reference_and_slow_path(path):
    fr = _read(path)
    p = dec(fr)                                         # fast path == slow path
    ours, ref = decoded_fields(p), reference(fr)
    diff = {k: (ours.get(k), ref.get(k)) for k in set(ours) | set(ref) if ours.get(k) != ref.get(k)}
    assert not diff, sorted(diff.items())[:5]
    ours, ref = link_fields(p), link_reference(fr)      # vlan, l2_bcast of Ethernet frames
    diff = {k: (ours.get(k), v) for k, v in ref.items() if ours.get(k) != v}
    assert not diff, sorted(diff.items())[:5]


CORPUS_EXPECT = {
    # file: (rows, non_ip, malformed, substring of a decode warning or None)
    "vlan-qinq_http80.pcap": (42, 0, 0, None),
    "gre_dns_icmp-unreach.pcap": (40, 0, 0, "GRE 40"),
    "vxlan_http80.pcap": (12, 0, 0, "VXLAN 12"),
    "ipv4-frag_tcp.pcap": (5, 0, 0, "5 IP fragments could not be reassembled"),
    "pppoe-over-qinq_tls443.pcap": (86, 0, 0, None),
    # (its one frame, a management frame, ends with an FCS, radiotap flag 0x10, that does not
    # match its bytes: Wireshark with wlan.check_checksum says "Bad" too)
    "radiotap_cut-short.pcap": (0, 0, 1, "1 frame the capture marks as damaged"),
    "bad_caplen-gt-snaplen.pcap": (0, 0, 1, "malformed"),
    "8021ad-88a8_arp.pcap": (0, 2, 0, None),
}


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"shared corpus not found at {CORPUS}")
@pytest.mark.parametrize("name", sorted(CORPUS_EXPECT))
def test_corpus_counts(name):
    fr = _read(CORPUS / "public" / name)
    p = dec(fr)
    rows, non_ip, malformed, warn = CORPUS_EXPECT[name]
    assert (len(p), p.stats.non_ip - fr.stats.non_ip, p.stats.malformed - fr.stats.malformed) \
        == (rows, non_ip, malformed)
    if warn:
        assert any(warn in w for w in p.stats.warnings if w.startswith("decode:")), p.stats.warnings


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"shared corpus not found at {CORPUS}")
def test_corpus_vlan_values():
    p = dec(_read(CORPUS / "public" / "vlan-qinq_http80.pcap"))
    assert set(p["vlan"].tolist()) == {0, 1 << 24 | 42, 1 << 24 | 10 << 12 | 20}
    p = dec(_read(CORPUS / "public" / "pppoe-over-qinq_tls443.pcap"))
    assert len(set(p["vlan"].tolist())) == 1 and p["vlan"][0] >> 24 == 1


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"shared corpus not found at {CORPUS}")
def test_corpus_dns_fragments_reassembled():
    fr = _read(CORPUS / "public" / "dns_udp-tcp_ecs_cname_aaaa_ipfrag.pcap")
    p = dec(fr)
    big = np.flatnonzero(p["pl_off"] >= len(fr.buf))
    assert len(big) >= 1
    for i in big.tolist():
        assert p["sport"][i] == 53 and p["payload_len"][i] == p["pl_cap"][i] > 1400
        assert len(p.payload(i)) == p["payload_len"][i]
