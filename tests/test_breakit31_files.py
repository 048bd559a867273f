"""Break-it 31, encapsulations tshark's conversations read and the builtin decoder did not.

- LISP data plane (UDP 4341, RFC 9300): an 8-byte header, then the IPv4/IPv6 packet between the
  endpoint identifiers. The decoder kept the outer UDP datagram between the tunnel routers (the
  connection inside, the one to classify, never appeared); Wireshark (packet-lisp-data.c, on
  either port) dissects the inner packet.
- MPLS in UDP (UDP 6635, RFC 7510) and VXLAN-GPE with next protocol 5 (MPLS): likewise the outer
  datagram was the row; Wireshark (packet-mpls.c) reads the label stack and the packet after it.
- An Ethernet frame after ethertype 0x6558 (Linux's ETH_P_TEB): the LINUX_SLL/SLL2 header of a
  capture on a GRE device whose tunnel carries Ethernet (hatype 778, ARPHRD_IPGRE) gives it:
  every frame was "not IP" (a capture of nothing but such frames: "no IP packet ... nothing to
  analyse"); Wireshark reads the frame (its ethertype table maps 0x6558 to Ethernet).

For LISP and MPLS in UDP the port alone is no proof (a client's ephemeral port may be 4341 or
6635): the inner IP header must be captured whole and its datagram fit the UDP one, else the
datagram stays UDP (with both engines).

Captures are built here with scapy and struct (addresses from the documentation ranges).
"""
from __future__ import annotations

import shutil
import struct

import pytest

pytest.importorskip("scapy")

from scapy.all import ARP, IP, TCP, UDP, Dot1Q, Ether, IPv6, Raw  # noqa: E402

import kscc_traffic  # noqa: E402
from kscc_traffic.analyze import analyze_file  # noqa: E402
from decodecheck import decoded, write  # noqa: E402
from test_breakit30_files import handshake  # noqa: E402  (the same TCP exchange)

RULES = kscc_traffic.load_rules()
TSHARK = shutil.which("tshark")
ENGINES = ("builtin", "tshark") if TSHARK else ("builtin",)
C4, S4 = "192.0.2.10", "203.0.113.10"
C6, S6 = "2001:db8::10", "2001:db8:1::10"
RTR1, RTR2 = "198.51.100.1", "198.51.100.2"
OUTER_MAC = dict(src="02:00:00:00:aa:01", dst="02:00:00:00:aa:02")
INNER_MAC = dict(src="00:1b:21:3a:4f:10", dst="00:50:56:aa:bb:cc")
#: LISP data header: N and L flags, nonce 1, locator status bits 1
LISP = bytes([0x88, 0, 0, 1, 0, 0, 0, 1])


def flows_of(path, engine: str = "builtin"):
    a = analyze_file(path, RULES, engine=engine)
    rows = sorted((r.proto, r.orig_h, int(r.orig_p), r.resp_h, int(r.resp_p), int(r.orig_pkts),
                   int(r.resp_pkts)) for r in a.flows.itertuples())
    return rows, [w for st in a.stats.values() for w in st.warnings]


def tunnel_lines(warnings: list[str]) -> list[str]:
    return [w.split(": ", 1)[1] for w in warnings if "tunnelled packets" in w]


def in_udp(body: bytes, port: int, up: bool = True) -> bytes:
    """``body`` in UDP between the two tunnel routers: to ``port`` (``up``), else from it (the
    reply direction: Wireshark reads either port)."""
    o = IP(src=RTR1, dst=RTR2) / UDP(sport=61000, dport=port) if up else \
        IP(src=RTR2, dst=RTR1) / UDP(sport=port, dport=61000)
    return bytes(Ether(**OUTER_MAC) / o / Raw(body))


def mpls(p: bytes, labels: int = 2) -> bytes:
    """``p`` after ``labels`` MPLS labels (the last with the bottom-of-stack bit)."""
    return b"".join(struct.pack("!I", ((100 + k) << 12) | ((k == labels - 1) << 8) | 64)
                    for k in range(labels)) + p


def gpe(p: bytes, nxt: int) -> bytes:
    """A VXLAN-GPE header (P flag, next protocol ``nxt``, VNI 1) then ``p``."""
    return bytes([0x0C, 0, 0, nxt, 0, 0, 1, 0]) + p


# ---------------------------------------------------------------------------- UDP tunnels
TUNNELS = {
    "lisp": (lambda p, up: in_udp(LISP + p, 4341, up), "LISP"),
    "mpls_udp": (lambda p, up: in_udp(mpls(p), 6635, up), "MPLS-in-UDP"),
    "gpe_mpls": (lambda p, up: in_udp(gpe(mpls(p, 1), 5), 4790), "VXLAN-GPE"),
}


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
@pytest.mark.parametrize("kind", sorted(TUNNELS))
def test_udp_tunnel_gives_the_inner_connection(tmp_path, kind, v6):
    """Before (9ea40cb): one UDP flow between the routers, no tunnel line; after: the TCP
    connection inside, with both engines, and the tunnel counted under its name."""
    wrap, name = TUNNELS[kind]
    # (the server's reply comes back from the tunnel port: the other direction of the tunnel)
    frames = [wrap(p, k != 1) for k, p in enumerate(handshake(v6))]
    path = write(tmp_path, f"{kind}.pcap", frames)
    p = decoded(path)
    assert len(p) == 4 and p.stats.non_ip == 0 and p.stats.malformed == 0
    assert set(p.cols["vlan"].tolist()) == {0} and not p.cols["l2_bcast"].any()
    c, s = (C6, S6) if v6 else (C4, S4)
    for engine in ENGINES:
        rows, warn = flows_of(path, engine)
        assert rows == [("tcp", c, 50000, s, 13000, 3, 1)], engine
        assert tunnel_lines(warn) == ["decode: 4 tunnelled packets decoded as their inner packet, "
                                      f"outer headers dropped ({name} 4)"], (engine, warn)


def _too_long(p: bytes) -> bytes:
    """``p`` (IPv4) with a total length beyond the bytes that follow it."""
    b = bytearray(p)
    b[2:4] = struct.pack("!H", len(p) + 100)
    return bytes(b)


@pytest.mark.parametrize("port,body", [
    (4341, LISP + _too_long(handshake()[0])),             # the inner datagram does not fit
    (4341, LISP + handshake()[0][:16]),                   # its header cut short
    (4341, LISP + bytes(Ether(**INNER_MAC) / Raw(handshake()[0]))),   # not IP after the header
    (4341, b"\x45" * 40),                                 # plain data that begins like IPv4
    (6635, mpls(_too_long(handshake()[0]))),
    (6635, struct.pack("!I", 100 << 12) * 6),             # labels without a bottom of stack
    (6635, mpls(bytes(Ether(**INNER_MAC) / Raw(handshake()[0])))),   # a pseudowire: stays UDP
    (6635, b"ordinary datagram to port 6635, nothing like MPLS"),
], ids=["lisp_too_long", "lisp_cut", "lisp_ether", "lisp_data", "mpls_too_long", "mpls_no_bos",
        "mpls_pw", "mpls_data"])
def test_port_alone_is_no_tunnel(tmp_path, port, body):
    """Traffic on 4341/6635 whose payload is no LISP/MPLS packet carrying IP that fits stays the
    UDP datagram (with both engines), as the LISP control port 4342 does."""
    frames = [in_udp(body, port), in_udp(LISP + handshake()[0], 4342)]
    path = write(tmp_path, "udp.pcap", frames)
    p = decoded(path)
    assert len(p) == 2 and p.cols["proto"].tolist() == [17, 17]
    assert p.cols["dport"].tolist() == [port, 4342]
    for engine in ENGINES:
        rows, warn = flows_of(path, engine)
        assert [r[:5] for r in rows] == sorted([("udp", RTR1, 61000, RTR2, port),
                                                ("udp", RTR1, 61000, RTR2, 4342)]), engine
        assert tunnel_lines(warn) == [], (engine, warn)


# ---------------------------------------------------------------------------- ethertype 0x6558
def sll(p: bytes, pkttype: int = 0, v2: bool = False) -> bytes:
    """``p`` (an Ethernet frame) under a LINUX_SLL (or SLL2) header of a GRE device: hatype 778,
    protocol 0x6558, no address."""
    if v2:
        return struct.pack("!HHIHBB8s", 0x6558, 0, 3, 778, pkttype, 0, bytes(8)) + p
    return struct.pack("!HHH8sH", pkttype, 778, 0, bytes(8), 0x6558) + p


@pytest.mark.parametrize("v2", [False, True], ids=["sll", "sll2"])
def test_sll_of_a_gre_device_carrying_ethernet(tmp_path, v2):
    """Before (9ea40cb): every frame not IP, nothing analysed; after: the connection, the inner
    frame's VLAN tag and broadcast destination, the SLL's 'sent by this host'."""
    frames = []
    for k, p in enumerate(handshake()):
        mac = dict(src=INNER_MAC["src"], dst="ff:ff:ff:ff:ff:ff" if k == 3 else INNER_MAC["dst"])
        frames.append(sll(bytes(Ether(**mac) / Dot1Q(vlan=30, type=0x0800) / Raw(p)), 4 if k != 1 else 0, v2))
    frames.append(sll(bytes(Ether(**INNER_MAC) / ARP()), 0, v2))
    frames.append(sll(b"\x00\x50\x56", 0, v2))              # a frame cut in its addresses
    path = write(tmp_path, "gre_dev.pcap", frames, linktype=276 if v2 else 113)
    p = decoded(path)
    assert len(p) == 4 and (p.stats.non_ip, p.stats.malformed) == (1, 1)
    native = decoded(write(tmp_path, "native.pcap", [bytes(Ether(**INNER_MAC) / Dot1Q(vlan=30)
                                                           / IP(src=C4, dst=S4) / TCP())]))
    assert p.cols["vlan"].tolist() == [int(native.cols["vlan"][0])] * 4
    assert p.cols["l2_bcast"].tolist() == [False, False, False, True]
    assert p.cols["l2_out"].tolist() == [True, False, True, True]
    for engine in ENGINES:
        rows, warn = flows_of(path, engine)
        assert rows == [("tcp", C4, 50000, S4, 13000, 3, 1)], engine
        assert tunnel_lines(warn) == [], (engine, warn)


def test_ethernet_in_ethernet_nesting_is_bounded(tmp_path):
    """Ethertype 0x6558 frames inside one another: read to a depth of 16, beyond that the frame
    is too deep (counted, no recursion without end)."""
    def nest(k: int) -> bytes:
        return (bytes(Ether(**OUTER_MAC, type=0x6558)) * k
                + bytes(Ether(**INNER_MAC) / IP(src=C4, dst=S4) / TCP(sport=50000, dport=13000)))
    p = decoded(write(tmp_path, "nest.pcap", [nest(16), nest(17), nest(2000)]))
    assert p.cols["frame"].tolist() == [0]
    assert p.stats.malformed == 2 and any("nested deeper" in w for w in p.stats.warnings)


# ---------------------------------------------------------------------------- GRE keepalives
def test_gre_keepalive_is_the_gre_packet(tmp_path):
    """A Cisco GRE keepalive (router 1 -> 2: GRE carrying the IPv4 packet 2 -> 1 that carries a
    GRE header of protocol type 0, which router 2 sends back as it is) and an empty GRE packet
    of type 0. Before (9ea40cb): "malformed" (the empty protocol 0 read as an LLC header) or not
    IP, no row; after: the GRE packet (2 -> 1 for the keepalive) is the row, as tshark shows it."""
    out = IP(src=RTR1, dst=RTR2, proto=47) / Raw(struct.pack("!HH", 0, 0x0800))
    back = IP(src=RTR2, dst=RTR1, proto=47) / Raw(struct.pack("!HH", 0, 0))
    frames = [bytes(Ether(**OUTER_MAC) / out / back), bytes(Ether(**OUTER_MAC) / back)]
    path = write(tmp_path, "keepalive.pcap", frames)
    p = decoded(path)
    assert len(p) == 2 and (p.stats.non_ip, p.stats.malformed) == (0, 0)
    assert p.cols["proto"].tolist() == [47, 47] and p.cols["payload_len"].tolist() == [4, 4]
    for engine in ENGINES:
        rows, warn = flows_of(path, engine)
        assert rows == [("gre", RTR2, -1, RTR1, -1, 2, 0)], (engine, rows)
        assert tunnel_lines(warn) == ["decode: 1 tunnelled packets decoded as their inner packet, "
                                      "outer headers dropped (GRE 1)"], (engine, warn)


# ---------------------------------------------------------------------------- tshark engine
def _vxlan(p: bytes, dport: int = 4789) -> bytes:
    return in_udp(bytes([0x08, 0, 0, 0, 0, 0, 1, 0]) + p, dport)


@pytest.mark.skipif(not TSHARK, reason="tshark is not installed")
def test_tunnel_carrying_no_ip_is_not_ip_with_both_engines(tmp_path):
    """ARP in VXLAN, GRE and Geneve, an ARP in VXLAN-GPE: the builtin decoder drops a tunnelled
    packet's outer headers, so the frame is not IP; the tshark engine kept the outer datagram as
    a row (before, 9ea40cb: a UDP flow to 4789 ... and a GRE flow with this engine only)."""
    arp = bytes(Ether(**INNER_MAC) / ARP())
    frames = [_vxlan(arp),
              bytes(Ether(**OUTER_MAC) / IP(src=RTR1, dst=RTR2, proto=47)
                    / Raw(struct.pack("!HH", 0, 0x6558) + arp)),
              bytes(Ether(**OUTER_MAC) / IP(src=RTR1, dst=RTR2, proto=47)
                    / Raw(struct.pack("!HH", 0, 0x0806) + bytes(28))),
              in_udp(bytes([0, 0, 0x65, 0x58, 0, 0, 1, 0]) + arp, 6081),
              in_udp(gpe(arp, 3), 4790),
              _vxlan(bytes(Ether(**INNER_MAC, type=0x0800) / Raw(handshake()[0])))]    # (IP inside: a row)
    path = write(tmp_path, "no_ip.pcap", frames)
    p = decoded(path)
    assert len(p) == 1 and p.stats.non_ip == 5
    for engine in ENGINES:
        rows, _ = flows_of(path, engine)
        assert rows == [("tcp", C4, 50000, S4, 13000, 1, 0)], (engine, rows)


@pytest.mark.skipif(not TSHARK, reason="tshark is not installed")
@pytest.mark.parametrize("v6", [False, True], ids=["ipip", "ip6ip6"])
def test_inner_packet_of_a_reassembled_outer_datagram(tmp_path, v6):
    """IP-in-IP whose outer datagram was fragmented (the inner one whole once reassembled): the
    tshark engine gave the inner packet the reassembled outer length (before, 9ea40cb: ip_len
    288 or 348 instead of the inner datagram's 248 / 328)."""
    from scapy.all import IPv6ExtHdrFragment, fragment, fragment6
    if v6:
        inner = IPv6(src=C6, dst=S6) / UDP(sport=40002, dport=53) / Raw(b"y" * 200)
        frags = fragment6(IPv6(src="2001:db8:ff::1", dst="2001:db8:ff::2") / IPv6ExtHdrFragment()
                          / inner, 150)
    else:
        inner = IP(src=C4, dst=S4) / UDP(sport=40002, dport=53) / Raw(b"y" * 300)
        frags = fragment(IP(src=RTR1, dst=RTR2, proto=4) / inner, 120)
    path = write(tmp_path, "frag.pcap", [bytes(Ether(**OUTER_MAC) / f) for f in frags])
    p = decoded(path)
    assert p.cols["ip_len"].tolist() == [len(inner)]
    from kscc_traffic.engines.tshark import read_packets
    t = read_packets(path)
    assert t.cols["ip_len"].tolist() == [len(inner)]
    assert t.cols["payload_len"].tolist() == p.cols["payload_len"].tolist()


def _block(kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


def _epb(p: bytes, t_us: int, opts: bytes = b"") -> bytes:
    pad = b"\0" * (-len(p) % 4)
    return _block(6, struct.pack("<IIIII", 0, t_us >> 32, t_us & 0xFFFFFFFF, len(p), len(p)) + p
                  + pad + opts)


@pytest.mark.skipif(not TSHARK, reason="tshark is not installed")
def test_damaged_mark_survives_the_tshark_engines_copy(tmp_path):
    """A pcapng whose first packet the capture marks damaged (epb_flags: CRC error) and whose
    second carries an epb_flags option of a wrong length: tshark stops at the second, so the
    engine dissects a copy of what the built-in reader reads. Before (9ea40cb) the copy lost
    the damage mark: the damaged frame was a flow with this engine only."""
    t0 = 1_700_000_000_000_000
    frames = [bytes(Ether(**INNER_MAC) / IP(src=C4, dst=S4) / TCP(sport=50000 + k, dport=13000,
                                                                   flags="S")) for k in range(2)]
    crc = struct.pack("<HHIHH", 2, 4, 1 << 24, 0, 0)
    bad = struct.pack("<HH", 2, 12) + bytes(12) + struct.pack("<HH", 0, 0)
    path = tmp_path / "flags.pcapng"
    path.write_bytes(_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
                     + _block(1, struct.pack("<HHI", 1, 0, 0))
                     + _epb(frames[0], t0, crc) + _epb(frames[1], t0 + 1000, bad))
    expect = [("tcp", C4, 50001, S4, 13000, 1, 0)]
    for engine in ENGINES:
        rows, warn = flows_of(path, engine)
        assert rows == expect, (engine, rows)
        assert sum("marks as damaged" in w for w in warn) == 1, (engine, warn)


@pytest.mark.skipif(not TSHARK, reason="tshark is not installed")
def test_tunnel_ports_as_source_port_only_stay_udp(tmp_path):
    """A datagram from port 4789, 6081 or 4790 to another port (a service on that port
    answering, say) that looks like VXLAN, Geneve or VXLAN-GPE carrying IP: the builtin decoder
    reads these tunnels by their destination port only, so it stays UDP; Wireshark reads them
    by either port, and the tshark engine took the inner packet (before, 9ea40cb)."""
    syn = handshake()[0]
    frame = bytes(Ether(**INNER_MAC, type=0x0800) / Raw(syn))
    bodies = [(4789, bytes([0x08, 0, 0, 0, 0, 0, 1, 0]) + frame),
              (6081, bytes([0, 0, 0x65, 0x58, 0, 0, 1, 0]) + frame),
              (4790, gpe(syn, 1))]
    path = write(tmp_path, "sport.pcap", [in_udp(b, port, up=False) for port, b in bodies])
    p = decoded(path)
    assert p.cols["proto"].tolist() == [17, 17, 17]
    for engine in ENGINES:
        rows, warn = flows_of(path, engine)
        assert [r[:5] for r in rows] == sorted(("udp", RTR2, port, RTR1, 61000)
                                               for port, _ in bodies), (engine, rows)
        assert tunnel_lines(warn) == [], (engine, warn)
