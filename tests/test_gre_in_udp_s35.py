"""GRE in UDP (RFC 8086, UDP 4754): Wireshark (packet-gre.c, on either port) reads the GRE header
and the packet inside; the builtin decoder kept the outer UDP datagram between the tunnel
endpoints, so the connection inside (the one to classify) never appeared, while the tshark
engine gave it. As for LISP and MPLS in UDP (test_breakit31_files), the port alone is no proof: a
GRE header of version 0 without reserved bits, then an IP packet (directly, after MPLS labels or
in an Ethernet frame) captured whole that fits the datagram, else the datagram stays UDP."""
from __future__ import annotations

import struct

import pytest

pytest.importorskip("scapy")

from scapy.all import DNS, DNSQR, IP, UDP, Ether  # noqa: E402

from decodecheck import decoded, write  # noqa: E402
from test_breakit30_files import handshake  # noqa: E402
from test_breakit31_files import (C4, C6, ENGINES, INNER_MAC, RTR1, RTR2, S4, S6, flows_of, in_udp,  # noqa: E402
                                  mpls, tunnel_lines)

GRE_UDP = 4754


def gre(p: bytes, ptype: int, key: int | None = None, seq: int | None = None, csum: bool = False,
        flags: int = 0) -> bytes:
    """A GRE header (RFC 2784/2890: C, K, S bits and their fields) of ``ptype``, then ``p``."""
    f = flags | (0x8000 if csum else 0) | (0x2000 if key is not None else 0) | (0x1000 if seq is not None else 0)
    h = struct.pack("!HH", f, ptype)
    if csum:
        h += b"\0\0\0\0"
    if key is not None:
        h += struct.pack("!I", key)
    if seq is not None:
        h += struct.pack("!I", seq)
    return h + p


def _v(p: bytes) -> int:
    return 0x86DD if p[0] >> 4 == 6 else 0x0800


WRAPS = {
    "ip": lambda p: gre(p, _v(p)),
    "key_seq_csum": lambda p: gre(p, _v(p), key=7, seq=1, csum=True),
    "mpls": lambda p: gre(mpls(p), 0x8847),
    "ether": lambda p: gre(bytes(Ether(**INNER_MAC, type=_v(p))) + p, 0x6558),
}


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
@pytest.mark.parametrize("kind", sorted(WRAPS))
def test_gre_in_udp_gives_the_inner_connection(tmp_path, kind, v6):
    frames = [in_udp(WRAPS[kind](p), GRE_UDP, k != 1) for k, p in enumerate(handshake(v6))]
    path = write(tmp_path, f"{kind}.pcap", frames)
    p = decoded(path)
    assert len(p) == 4 and p.stats.non_ip == 0 and p.stats.malformed == 0
    c, s = (C6, S6) if v6 else (C4, S4)
    for engine in ENGINES:
        rows, warn = flows_of(path, engine)
        assert rows == [("tcp", c, 50000, s, 13000, 3, 1)], engine
        assert tunnel_lines(warn) == ["decode: 4 tunnelled packets decoded as their inner packet, "
                                      "outer headers dropped (GRE 4)"], (engine, warn)


def _too_long(p: bytes) -> bytes:
    b = bytearray(p)
    b[2:4] = struct.pack("!H", len(p) + 100)
    return bytes(b)


@pytest.mark.parametrize("body", [
    gre(_too_long(handshake()[0]), 0x0800),                 # the inner datagram does not fit
    gre(handshake()[0][:16], 0x0800),                       # its header cut short
    gre(handshake()[0], 0x0800, flags=1),                   # GRE version 1 (PPTP's): not in UDP
    gre(handshake()[0], 0x0800, flags=0x4000),              # routing present (RFC 1701)
    gre(handshake()[0], 0x88B5),                            # another protocol type
    gre(bytes(Ether(**INNER_MAC, type=0x0806)) + bytes(28), 0x6558),   # an ARP frame inside
    b"\x00\x00\x08\x00",                                    # a GRE header and nothing after it
    b"ordinary datagram to port 4754, nothing like GRE",
], ids=["too_long", "cut", "version1", "routing", "other_type", "ether_arp", "empty", "data"])
def test_port_alone_is_no_gre(tmp_path, body):
    """Traffic on 4754 whose payload is no GRE header carrying an IP packet that fits stays the
    UDP datagram, with both engines (Wireshark dissects any payload there as GRE: the tshark
    engine asks what the builtin decoder asks)."""
    path = write(tmp_path, "udp.pcap", [in_udp(body, GRE_UDP)])
    p = decoded(path)
    assert len(p) == 1 and p.cols["proto"].tolist() == [17] and p.cols["dport"].tolist() == [GRE_UDP]
    for engine in ENGINES:
        rows, warn = flows_of(path, engine)
        assert [r[:5] for r in rows] == [("udp", RTR1, 61000, RTR2, GRE_UDP)], engine
        assert tunnel_lines(warn) == [], engine


def test_a_client_port_4754_elsewhere_stays_udp(tmp_path):
    """A DNS query from source port 4754 (a client port some systems give) is DNS, not GRE."""
    frame = bytes(Ether(src="02:00:00:00:aa:01", dst="02:00:00:00:aa:02") / IP(src=RTR1, dst=RTR2)
                  / UDP(sport=GRE_UDP, dport=53) / DNS(rd=1, qd=DNSQR(qname="www.example.com")))
    path = write(tmp_path, "dns.pcap", [frame])
    p = decoded(path)
    assert p.cols["sport"].tolist() == [GRE_UDP] and p.cols["dport"].tolist() == [53]
    rows, warn = flows_of(path, "builtin")
    assert [r[:5] for r in rows] == [("udp", RTR1, GRE_UDP, RTR2, 53)] and tunnel_lines(warn) == []
