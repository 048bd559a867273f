"""ICMP/ICMPv6 quoted datagrams, built with scapy."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import (ICMPv6DestUnreach, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,
                                IPv6ExtHdrHopByHop)

from kscc_traffic.protocols.icmp import Quoted, describe, is_unreachable, quoted_datagram


def icmp_payload(pkt) -> bytes:
    """The bytes after the 8-byte ICMP header, as Packets.payload() gives them."""
    return bytes(pkt)[8:]


def test_ipv4_port_unreachable_quoting_udp():
    orig = IP(src="10.1.2.3", dst="203.0.113.5") / UDP(sport=53000, dport=13291) / (b"x" * 40)
    err = ICMP(type=3, code=3) / bytes(orig)
    q = quoted_datagram(icmp_payload(err), 4)
    assert q == Quoted(4, "10.1.2.3", "203.0.113.5", 17, 53000, 13291)
    assert is_unreachable(4, 3, 3) and describe(4, 3, 3) == "port unreachable"


def test_ipv4_admin_prohibited_tcp_syn_truncated_to_8_bytes_with_options():
    orig = IP(src="192.168.0.10", dst="198.51.100.20", options=b"\x01\x01\x01\x00") / \
        TCP(sport=49152, dport=443, flags="S")
    raw = bytes(orig)
    ihl = (raw[0] & 0x0F) * 4
    assert ihl == 24
    err = ICMP(type=3, code=13) / raw[: ihl + 8]
    q = quoted_datagram(icmp_payload(err), 4)
    assert (q.src, q.dst, q.proto, q.sport, q.dport) == ("192.168.0.10", "198.51.100.20", 6,
                                                         49152, 443)
    assert is_unreachable(4, 3, 13) and describe(4, 3, 13) == "administratively prohibited"


def test_ipv4_non_first_fragment_and_short_quotes():
    orig = IP(src="10.0.0.1", dst="10.0.0.2", frag=100, proto=17) / (b"\x00" * 16)
    q = quoted_datagram(bytes(orig), 4)
    assert q.proto == 17 and q.sport is None and q.dport is None
    whole = bytes(IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1, dport=2))
    assert quoted_datagram(whole[:19], 4) is None
    assert quoted_datagram(whole[:20], 4).sport is None
    assert quoted_datagram(whole[:24], 4).dport == 2
    assert quoted_datagram(whole, 6) is None  # version mismatch


def test_icmpv6_quoting_ipv6_with_extension_headers():
    orig = (IPv6(src="2001:db8::10", dst="2001:db8:1::53") / IPv6ExtHdrHopByHop()
            / IPv6ExtHdrDestOpt() / UDP(sport=5353, dport=53) / b"q")
    err = ICMPv6DestUnreach(code=4) / bytes(orig)
    q = quoted_datagram(icmp_payload(err), 6)
    assert q == Quoted(6, "2001:db8::10", "2001:db8:1::53", 17, 5353, 53)
    assert is_unreachable(6, 1, 4) and describe(6, 1, 4) == "port unreachable"
    assert describe(6, 1, 1) == "administratively prohibited"
    plain = IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(sport=40000, dport=8061)
    raw = bytes(plain)[:48]
    q = quoted_datagram(raw, 6)
    assert (q.proto, q.sport, q.dport) == (6, 40000, 8061)


def test_icmpv6_fragment_header():
    first = bytes(IPv6(src="::1", dst="::2") / IPv6ExtHdrFragment(offset=0, m=1)
                  / UDP(sport=7, dport=9))
    assert quoted_datagram(first, 6).dport == 9
    later = bytes(IPv6(src="::1", dst="::2") / IPv6ExtHdrFragment(offset=10, nh=17) / (b"\0" * 8))
    q = quoted_datagram(later, 6)
    assert q.proto == 17 and q.sport is None
    cut = bytes(IPv6(src="::1", dst="::2") / IPv6ExtHdrHopByHop() / UDP(sport=7, dport=9))[:41]
    q = quoted_datagram(cut, 6)
    assert q.proto == 0 and q.sport is None


def test_describe_and_is_unreachable():
    assert not is_unreachable(4, 3, 4)  # fragmentation needed: path MTU, not unreachability
    assert describe(4, 3, 4) == "fragmentation needed and DF set"
    assert not is_unreachable(4, 11, 0) and describe(4, 11, 0) == "TTL exceeded in transit"
    assert not is_unreachable(6, 2, 0) and describe(6, 2, 0) == "packet too big"
    assert describe(4, 3, 1) == "host unreachable"
    assert describe(6, 1, 0) == "no route to destination"
    assert describe(4, 3, 99) == "destination unreachable (code 99)"
    assert describe(4, 42, 1) == "ICMP type 42 code 1"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), st.sampled_from([4, 6, 0]))
def test_random_bytes_never_raise(data, ver):
    for d in (data, bytes([0x45]) + data, bytes([0x60]) + data):
        q = quoted_datagram(d, ver)
        assert q is None or q.ipver == ver
