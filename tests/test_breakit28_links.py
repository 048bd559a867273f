"""Break-it 28, link types and encapsulations: what tshark's conversations show vs our flows.

- Mobile IPv6 route optimisation (RFC 6275): the correspondent sends to the mobile node's
  care-of address with a type 2 routing header (one segment left: the home address), the mobile
  node sends from its care-of address with a Home Address option. The transport layer of both
  ends sees the home address; Wireshark's conversations and Zeek key the connection on it. The
  decoder kept the care-of address (one flow, but between the wrong hosts, and not the flow a
  capture at the home network would show).
- ``--engine tshark`` on an Ethernet pseudowire (MPLS) whose inner destination MAC begins with
  a nibble other than 0 or 4 (b4:96:…), or whose control word Wireshark guesses wrong (a
  locally administered 02:00:… MAC): Wireshark leaves the payload as bare data, and the
  frames vanished with only the generic "no IP packet" hint; now counted in their own
  ``Warning:`` line (the builtin engine reads them).

Captures are built here with scapy and struct (addresses from the documentation ranges).
"""
from __future__ import annotations

import shutil
import struct

import pytest

pytest.importorskip("scapy")

from scapy.all import (IP, TCP, Ether, HAO, IPv6, IPv6ExtHdrDestOpt,  # noqa: E402
                       IPv6ExtHdrRouting, Raw)
from scapy.contrib.mpls import MPLS  # noqa: E402

import kscc_traffic  # noqa: E402
from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.capture._slowpath import home_address, routing_final  # noqa: E402
from decodecheck import decoded, write  # noqa: E402

RULES = kscc_traffic.load_rules()
TSHARK = shutil.which("tshark")
SNI = "eu1.ksc.kaspersky.com"
CN, COA, HOA = "2001:db8:1::10", "2001:db8:2::20", "2001:db8:3::30"


def client_hello(name: str = SNI) -> bytes:
    n = name.encode()
    ext = struct.pack("!HHHBH", 0, len(n) + 5, len(n) + 3, 0, len(n)) + n
    body = (b"\x03\x03" + bytes(range(32)) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
            + struct.pack("!H", len(ext)) + ext)
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs






# ---------------------------------------------------------------------------- Mobile IPv6
def mip6_conversation() -> list[bytes]:
    """A TLS connection from a mobile node away from home (home address HOA, care-of address
    COA) to a correspondent CN on 23101, route-optimised: 3 packets up, 2 down."""
    e = Ether(src="00:1b:21:3a:4f:10", dst="00:50:56:aa:bb:cc")
    up = lambda **kw: (e / IPv6(src=COA, dst=CN)  # noqa: E731
                       / IPv6ExtHdrDestOpt(options=[HAO(hoa=HOA)])
                       / TCP(sport=50002, dport=23101, **kw))
    dn = lambda **kw: (e / IPv6(src=CN, dst=COA)  # noqa: E731
                       / IPv6ExtHdrRouting(type=2, segleft=1, addresses=[HOA])
                       / TCP(sport=23101, dport=50002, **kw))
    ch = client_hello()
    return [bytes(x) for x in (
        up(flags="S", seq=1), dn(flags="SA", seq=9, ack=2), up(flags="A", seq=2, ack=10),
        up(flags="PA", seq=2, ack=10) / Raw(ch), dn(flags="FA", seq=10, ack=2 + len(ch)))]


def test_routing_final_reads_the_home_address_of_a_type_2_header():
    hdr = bytes(IPv6ExtHdrRouting(type=2, segleft=1, addresses=[HOA], nh=6))
    assert len(hdr) == 24 and hdr[1] == 2
    want = int.from_bytes(bytes.fromhex("20010db8000300000000000000000030"), "big")
    assert routing_final(hdr, 0, len(hdr)) == (want >> 64, want & (2**64 - 1))
    # no segment left (the packet reached the home address): the header's destination stays
    done = bytes(IPv6ExtHdrRouting(type=2, segleft=0, addresses=[HOA], nh=6))
    assert routing_final(done, 0, len(done)) is None
    # cut by the snaplen before the address's end
    assert routing_final(hdr, 0, 20) is None


def test_home_address_option_is_read_from_a_destination_options_header():
    hdr = bytes(IPv6ExtHdrDestOpt(options=[HAO(hoa=HOA)], nh=6))
    want = int.from_bytes(bytes.fromhex("20010db8000300000000000000000030"), "big")
    assert home_address(hdr, 0, len(hdr)) == (want >> 64, want & (2**64 - 1))
    assert home_address(bytes(IPv6ExtHdrDestOpt(nh=6)), 0, 8) is None   # padding only
    assert home_address(hdr, 0, 12) is None                                # cut


def test_mobile_ipv6_route_optimised_connection_is_keyed_on_the_home_address(tmp_path):
    path = write(tmp_path, "mip6.pcap", mip6_conversation())
    p = decoded(path)
    assert len(p) == 5
    flows = analyze_file(path, RULES).flows
    assert len(flows) == 1
    r = flows.iloc[0]
    assert (r["orig_h"], r["orig_p"], r["resp_h"], r["resp_p"]) == (HOA, 50002, CN, 23101)
    assert (r["orig_pkts"], r["resp_pkts"], r["sni"]) == (3, 2, SNI)
    if TSHARK:
        t = analyze_file(path, RULES, engine="tshark").flows
        assert len(t) == 1
        assert (t.iloc[0]["orig_h"], t.iloc[0]["resp_h"], t.iloc[0]["orig_pkts"],
                t.iloc[0]["resp_pkts"], t.iloc[0]["sni"]) == (HOA, CN, 3, 2, SNI)


# ---------------------------------------------------------------------------- EoMPLS, tshark
def pseudowire_frames(dst_mac: str, cw: bool) -> list[bytes]:
    outer = Ether(src="02:00:00:00:aa:01", dst="02:00:00:00:aa:02")
    inner = Ether(src="3c:fd:fe:01:02:03", dst=dst_mac)
    c, s = "192.0.2.10", "203.0.113.10"
    pkts = [IP(src=c, dst=s) / TCP(sport=50000, dport=13000, flags="S", seq=1),
            IP(src=s, dst=c) / TCP(sport=13000, dport=50000, flags="SA", seq=5, ack=2),
            IP(src=c, dst=s) / TCP(sport=50000, dport=13000, flags="A", seq=2, ack=6)]
    return [bytes(outer / MPLS(label=100, s=0) / MPLS(label=200, s=1)
                  / Raw((b"\0\0\0\0" if cw else b"") + bytes(inner / p))) for p in pkts]


@pytest.mark.parametrize("dst_mac,cw", [("b4:96:91:0a:0b:0c", False), ("02:00:00:00:00:01", False),
                                        ("02:00:00:00:00:01", True)])
def test_pseudowire_tshark_cannot_read_is_counted_by_the_tshark_engine(tmp_path, dst_mac, cw):
    path = write(tmp_path, "pw.pcap", pseudowire_frames(dst_mac, cw))
    a = analyze_file(path, RULES)
    assert len(a.flows) == 1 and a.flows.iloc[0]["orig_pkts"] + a.flows.iloc[0]["resp_pkts"] == 3
    if not TSHARK:
        pytest.skip("tshark not installed")
    t = analyze_file(path, RULES, engine="tshark")
    warn = [w for st in t.stats.values() for w in st.warnings]
    lines = [w for w in warn if "MPLS frames whose payload tshark could not read" in w]
    assert len(lines) == 1 and ": 3 MPLS frames" in lines[0], warn


def test_pseudowire_tshark_reads_gets_no_such_warning(tmp_path):
    if not TSHARK:
        pytest.skip("tshark not installed")
    path = write(tmp_path, "pw.pcap", pseudowire_frames("00:50:56:aa:bb:cc", False))
    t = analyze_file(path, RULES, engine="tshark")
    assert len(t.flows) == 1
    warn = [w for st in t.stats.values() for w in st.warnings]
    assert not [w for w in warn if "could not read past the label stack" in w]


# ---------------------------------------------------------------------------- cut UDP tunnels
def vxlan_frames() -> list[bytes]:
    """Three VXLAN datagrams (198.51.100.1:40000 -> 198.51.100.2:4789) carrying a TCP
    handshake on 13000 over IPv4 and one over IPv6 (3 + 3 packets)."""
    from scapy.all import UDP
    from scapy.layers.vxlan import VXLAN
    outer = lambda: (Ether(src="02:00:00:00:aa:01", dst="02:00:00:00:aa:02")  # noqa: E731
                     / IP(src="198.51.100.1", dst="198.51.100.2")
                     / UDP(sport=40000, dport=4789) / VXLAN(vni=5))
    inner = Ether(src="00:1b:21:3a:4f:10", dst="00:50:56:aa:bb:cc")
    out = []
    for c, s, ip in (("192.0.2.10", "203.0.113.10", IP), (C6 := "2001:db8::10", CN, IPv6)):
        out += [bytes(outer() / inner / ip(src=c, dst=s) / TCP(sport=50000, dport=13000, flags="S")),
                bytes(outer() / inner / ip(src=s, dst=c) / TCP(sport=13000, dport=50000, flags="SA")),
                bytes(outer() / inner / ip(src=c, dst=s) / TCP(sport=50000, dport=13000, flags="A"))]
    assert C6
    return out


def write_cut(tmp_path, frames, snaplen):
    """A pcap of ``frames`` as ``tcpdump -s snaplen`` writes them (caplen cut, wire length kept)."""
    recs = [struct.pack("<IIII", 1_700_000_000 + k, 0, min(len(f), snaplen), len(f)) + f[:snaplen]
            for k, f in enumerate(frames)]
    path = tmp_path / f"cut{snaplen}.pcap"
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1) + b"".join(recs))
    return path


@pytest.mark.parametrize("snaplen,outer_pkts,inner_flows", [
    (50, 6, 0),     # the inner Ethernet header cut: every datagram stays the outer UDP flow
    (74, 6, 0),     # the inner IPv4 / IPv6 headers cut before their addresses
    (90, 3, 1),     # the inner IPv4 header whole (ports kept), the IPv6 one cut
])
def test_udp_tunnel_whose_inner_headers_the_snaplen_cut_stays_the_outer_datagram(
        tmp_path, snaplen, outer_pkts, inner_flows):
    """tshark's conversations keep such a datagram as its outer UDP conversation; the decoder
    dropped it as malformed (every packet of a ``tcpdump -s 74`` on a VTEP uplink lost)."""
    path = write_cut(tmp_path, vxlan_frames(), snaplen)
    decoded(path)
    for engine in ("builtin", "tshark") if TSHARK else ("builtin",):
        a = analyze_file(path, RULES, engine=engine)
        f = a.flows
        outer = f[(f["proto"] == "udp") & (f["resp_p"] == 4789)]
        assert len(outer) == 1, (engine, f[["proto", "orig_h", "orig_p", "resp_h", "resp_p"]])
        assert int(outer.iloc[0]["orig_pkts"]) == outer_pkts, engine
        assert (outer.iloc[0]["orig_h"], outer.iloc[0]["orig_p"]) == ("198.51.100.1", 40000)
        assert len(f[f["proto"] == "tcp"]) == inner_flows, engine
        warn = [w for st in a.stats.values() for w in st.warnings]
        assert not [w for w in warn if "malformed" in w], (engine, warn)


def gre_ethernet_frames(kind: str) -> list[bytes]:
    """Three GRE packets (203.0.113.1 <-> 203.0.113.2) carrying Ethernet frames of a TCP
    handshake on 23101 (192.0.2.10 -> 198.51.100.20): GRE bridging (0x6558) plain, with a key
    and a VLAN tag inside, or ERSPAN type II."""
    from scapy.all import GRE, Dot1Q, Raw
    # (ERSPAN type II by hand: GRE with a sequence number, protocol 0x88BE, then version 1,
    # VLAN 0, session 1, index 0)
    erspan = Raw(bytes.fromhex("100088be00000001" "1000000100000000"))
    c, s, t1, t2 = "192.0.2.10", "198.51.100.20", "203.0.113.1", "203.0.113.2"
    out = []
    for flags, fwd in (("S", True), ("SA", False), ("A", True)):
        a, b = (t1, t2) if fwd else (t2, t1)
        ip = IP(src=c, dst=s) / TCP(sport=50000, dport=23101, flags=flags) if fwd else \
            IP(src=s, dst=c) / TCP(sport=23101, dport=50000, flags=flags)
        inner = Ether(src="00:1b:21:3a:4f:10", dst="00:50:56:aa:bb:cc")
        if kind == "vlan-key":
            tunnel = GRE(key_present=1, key=5, proto=0x6558) / inner / Dot1Q(vlan=77)
        elif kind == "erspan":
            tunnel = erspan / inner
        else:
            tunnel = GRE(proto=0x6558) / inner
        out.append(bytes(Ether(src="02:00:00:00:aa:01", dst="02:00:00:00:aa:02") / IP(src=a, dst=b, proto=47)
                         / tunnel / ip))
    return out


@pytest.mark.parametrize("kind", ["plain", "vlan-key", "erspan"])
@pytest.mark.parametrize("snaplen", [56, 64, 70])
def test_gre_ethernet_whose_inner_headers_the_snaplen_cut_stays_the_gre_flow(tmp_path, kind, snaplen):
    """The same for GRE carrying an Ethernet frame (bridging, ERSPAN): the GRE packets are one
    gre flow between the tunnel ends, with both engines (session 47: the tshark engine dropped
    every such packet, a layer of Ethernet between the two IP headers)."""
    frames = gre_ethernet_frames(kind)
    path = write_cut(tmp_path, frames, snaplen)
    decoded(path)
    for engine in ("builtin", "tshark") if TSHARK else ("builtin",):
        f = analyze_file(path, RULES, engine=engine).flows
        assert f["proto"].tolist() == ["gre"], (engine, f[["proto", "orig_h", "resp_h"]])
        r = f.iloc[0]
        assert (r["orig_h"], r["resp_h"], r["orig_pkts"], r["resp_pkts"]) == \
            ("203.0.113.1", "203.0.113.2", 2, 1), engine
        assert (r["orig_ip_bytes"], r["resp_ip_bytes"]) == (len(frames[0]) + len(frames[2]) - 28, len(frames[1]) - 14), engine


# ---------------------------------------------------------------------------- LOOP byte order
def test_loop_family_in_little_endian_order_is_read_or_counted(tmp_path):
    """LINKTYPE_LOOP (108) is big-endian by definition; a writer that puts the family in
    little-endian order still gives IP to the builtin engine, and tshark (which reads such a
    frame as bare data) gets a ``Warning:`` with the count instead of only "no IP packet";
    since session 57 the tshark engine dissects a copy with the family written big-endian, so
    both engines read the packets, and the line says so."""
    c, s = "192.0.2.10", "203.0.113.10"
    pkts = [IP(src=c, dst=s) / TCP(sport=50000, dport=13000, flags="S"),
            IP(src=s, dst=c) / TCP(sport=13000, dport=50000, flags="SA")]
    path = write(tmp_path, "loop.pcap", [struct.pack("<I", 2) + bytes(p) for p in pkts], 108)
    assert len(decoded(path)) == 2
    f = analyze_file(path, RULES).flows
    assert len(f) == 1 and (f.iloc[0]["orig_pkts"], f.iloc[0]["resp_pkts"]) == (1, 1)
    if not TSHARK:
        pytest.skip("tshark not installed")
    t = analyze_file(path, RULES, engine="tshark")
    warn = [w for st in t.stats.values() for w in st.warnings]
    assert [w for w in warn if ": tshark does not read the address family of 2 loopback frames as IP (2 "
            "written little-endian under LINKTYPE_LOOP, which is big-endian): it dissected instead a copy" in w], warn
    assert len(t.flows) == 1 and (t.flows.iloc[0]["orig_pkts"], t.flows.iloc[0]["resp_pkts"]) == (1, 1)
    # big-endian, as the link type defines it: read by both, no such line
    path = write(tmp_path, "loop_be.pcap", [struct.pack(">I", 2) + bytes(p) for p in pkts], 108)
    t = analyze_file(path, RULES, engine="tshark")
    assert len(t.flows) == 1
    assert not [w for st in t.stats.values() for w in st.warnings if "loopback frame" in w]
