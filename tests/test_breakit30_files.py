"""Break-it 30, encapsulations tshark's conversations read and the builtin decoder did not.

- GRE with the R (routing present) bit of RFC 1701: the checksum/offset field and a list of
  Source Route Entries (ended by one of family 0 and length 0) come before the payload. The
  decoder called every such packet "not IP" (the TCP connection inside vanished, and the
  GRE packet itself too); Wireshark (packet-gre.c) walks the entries and dissects the inner
  packet.
- The Network Service Header (RFC 8300, service function chaining: ethertype 0x894F, or a GRE
  protocol type) in front of IPv4, IPv6, Ethernet or MPLS: counted as non-IP (a capture on a
  service-function link: "no IP packet ... nothing to analyse"); Wireshark (packet-nsh.c) reads
  the inner packet.

Captures are built here with scapy and struct (addresses from the documentation ranges).
"""
from __future__ import annotations

import shutil
import struct

import pytest

pytest.importorskip("scapy")

from scapy.all import IP, TCP, Dot1Q, Ether, IPv6, Raw  # noqa: E402
from scapy.contrib.mpls import MPLS  # noqa: E402

import kscc_traffic  # noqa: E402
from kscc_traffic.analyze import analyze_file  # noqa: E402
from decodecheck import decoded, write  # noqa: E402

RULES = kscc_traffic.load_rules()
TSHARK = shutil.which("tshark")
C4, S4 = "192.0.2.10", "203.0.113.10"
C6, S6 = "2001:db8::10", "2001:db8:1::10"
OUTER_MAC = dict(src="02:00:00:00:aa:01", dst="02:00:00:00:aa:02")
INNER_MAC = dict(src="00:1b:21:3a:4f:10", dst="00:50:56:aa:bb:cc")


def handshake(v6: bool = False, port: int = 13000) -> list[bytes]:
    """A TCP handshake client -> server:``port`` and 3 bytes of data: 3 packets up, 1 down."""
    ip, c, s = (IPv6, C6, S6) if v6 else (IP, C4, S4)
    return [bytes(ip(src=c, dst=s) / TCP(sport=50000, dport=port, flags="S", seq=1)),
            bytes(ip(src=s, dst=c) / TCP(sport=port, dport=50000, flags="SA", seq=9, ack=2)),
            bytes(ip(src=c, dst=s) / TCP(sport=50000, dport=port, flags="A", seq=2, ack=10)),
            bytes(ip(src=c, dst=s) / TCP(sport=50000, dport=port, flags="PA", seq=2, ack=10)
                  / Raw(b"abc"))]


def ethertype(p: bytes) -> int:
    return 0x86DD if p[0] >> 4 == 6 else 0x0800


def flows_of(path, engine: str = "builtin"):
    a = analyze_file(path, RULES, engine=engine)
    f = a.flows
    rows = sorted((r.proto, r.orig_h, int(r.orig_p), r.resp_h, int(r.resp_p), int(r.orig_pkts),
                   int(r.resp_pkts)) for r in f.itertuples())
    return rows, [w for st in a.stats.values() for w in st.warnings]


def tunnel_lines(warnings: list[str]) -> list[str]:
    return [w.split(": ", 1)[1] for w in warnings if "tunnelled packets" in w]


# ---------------------------------------------------------------------------- GRE routing
def gre_routing(p: bytes, sres: list[tuple[int, bytes]], flags: int = 0x4000,
                end: bool = True) -> bytes:
    """``p`` in GRE with the R bit (and ``flags``' others): checksum/offset, key and sequence
    fields as the flags say, then the Source Route Entries ``sres`` ((family, routing
    information)) and the terminating null entry (unless ``end`` is False)."""
    hdr = struct.pack("!HH", flags, ethertype(p)) + b"\0\0\0\0"
    hdr += b"\0\0\0\x07" * (((flags >> 13) & 1) + ((flags >> 12) & 1))
    for af, info in sres:
        hdr += struct.pack("!HBB", af, 0, len(info)) + info
    if end:
        hdr += b"\0\0\0\0"
    outer = IP(src="198.51.100.1", dst="198.51.100.2", proto=47) if p[0] >> 4 == 4 else \
        IPv6(src="2001:db8:ff::1", dst="2001:db8:ff::2", nh=47)
    return bytes(Ether(**OUTER_MAC) / outer / Raw(hdr + p))


@pytest.mark.parametrize("flags,sres,v6", [
    (0x4000, [(0x0800, bytes([198, 51, 100, 9, 198, 51, 100, 10]))], False),   # R alone: IP SRE
    (0xF000, [(0x0800, bytes([198, 51, 100, 9])), (0xFFFF, b"\x00\x01")], False),  # C R K S, 2
    (0x4000, [], True),                                                 # only the null entry
])
def test_gre_with_source_routing_entries_gives_the_inner_connection(tmp_path, flags, sres, v6):
    path = write(tmp_path, "gre_r.pcap", [gre_routing(p, sres, flags) for p in handshake(v6)])
    p = decoded(path)
    assert len(p) == 4 and p.stats.non_ip == 0 and p.stats.malformed == 0
    c, s = (C6, S6) if v6 else (C4, S4)
    engines = ("builtin", "tshark") if TSHARK else ("builtin",)
    for engine in engines:
        rows, warn = flows_of(path, engine)
        assert rows == [("tcp", c, 50000, s, 13000, 3, 1)], engine
        assert tunnel_lines(warn) == ["decode: 4 tunnelled packets decoded as their inner packet, "
                                      "outer headers dropped (GRE 4)"], (engine, warn)


def test_gre_source_routing_list_without_its_end_is_malformed(tmp_path):
    """An entry list that runs to the datagram's end without the null entry (the IP datagram
    whole, its length field right): malformed, not a row."""
    hdr = struct.pack("!HH", 0x4000, 0x0800) + b"\0\0\0\0" + struct.pack("!HBB", 0x0800, 0, 4)
    frames = [bytes(Ether(**OUTER_MAC) / IP(src="198.51.100.1", dst="198.51.100.2", proto=47)
                    / Raw(hdr + bytes([198, 51, 100, k]))) for k in range(4)]
    p = decoded(write(tmp_path, "gre_r_cut.pcap", frames))
    assert len(p) == 0 and p.stats.malformed == 4


# ---------------------------------------------------------------------------- NSH
def nsh(payload: bytes, nxt: int, md_type: int = 2, words: int = 6, version: int = 0,
        fill: int | None = None) -> bytes:
    """A Network Service Header of length ``words`` 4-byte words (2 base/service path words and
    the context headers or metadata: ``fill`` words of zeros, by default what the length says)
    with next protocol ``nxt``, then ``payload``."""
    base = struct.pack("!HBB", (version << 14) | (63 << 6) | words, md_type, nxt)
    fill = max(words - 2, 0) if fill is None else fill
    return base + struct.pack("!I", (10 << 8) | 255) + bytes(4 * fill) + payload


def nsh_frames(kind: str, v6: bool = False) -> list[bytes]:
    out = []
    for p in handshake(v6):
        if kind == "ip":
            body = nsh(p, 2 if v6 else 1)
        elif kind == "md1-ip":
            body = nsh(p, 2 if v6 else 1, md_type=1, words=6)
        elif kind == "ether":
            body = nsh(bytes(Ether(**INNER_MAC) / Dot1Q(vlan=30, type=ethertype(p)) / Raw(p)), 3)
        elif kind == "mpls":
            body = nsh(bytes(MPLS(label=100, s=1, ttl=64) / Raw(p)), 5)
        out.append(bytes(Ether(**OUTER_MAC, type=0x894F) / Raw(body)))
    return out


@pytest.mark.parametrize("kind,v6", [("ip", False), ("ip", True), ("md1-ip", False),
                                     ("ether", False), ("mpls", True)])
def test_nsh_over_ethernet_gives_the_inner_connection(tmp_path, kind, v6):
    path = write(tmp_path, f"nsh_{kind}.pcap", nsh_frames(kind, v6))
    p = decoded(path)
    assert len(p) == 4 and p.stats.non_ip == 0 and p.stats.malformed == 0
    native = decoded(write(tmp_path, "native.pcap", [bytes(Ether(**INNER_MAC) / Dot1Q(vlan=30)
                                                           / IP(src=C4, dst=S4) / TCP())]))
    assert set(p.cols["vlan"].tolist()) == ({int(native.cols["vlan"][0])} if kind == "ether"
                                            else {0})
    c, s = (C6, S6) if v6 else (C4, S4)
    rows, warn = flows_of(path)
    assert rows == [("tcp", c, 50000, s, 13000, 3, 1)]
    assert tunnel_lines(warn) == ["decode: 4 tunnelled packets decoded as their inner packet, "
                                  "outer headers dropped (NSH 4)"], warn
    if TSHARK and kind != "mpls":   # (Wireshark 4.0's NSH dissector has no MPLS next protocol)
        trows, twarn = flows_of(path, "tshark")
        assert trows == rows
        assert tunnel_lines(twarn) == tunnel_lines(warn), twarn


def test_nsh_in_gre_counts_as_gre(tmp_path):
    frames = [bytes(Ether(**OUTER_MAC) / IP(src="198.51.100.1", dst="198.51.100.2", proto=47)
                    / Raw(struct.pack("!HH", 0, 0x894F) + nsh(p, 1))) for p in handshake()]
    path = write(tmp_path, "gre_nsh.pcap", frames)
    p = decoded(path)
    assert len(p) == 4
    rows, warn = flows_of(path)
    assert rows == [("tcp", C4, 50000, S4, 13000, 3, 1)]
    assert tunnel_lines(warn) == ["decode: 4 tunnelled packets decoded as their inner packet, "
                                  "outer headers dropped (GRE 4)"]


@pytest.mark.parametrize("mangle,non_ip,malformed", [
    (dict(version=1), 4, 0),            # an unknown NSH version: not read
    (dict(nxt=4), 4, 0),                # NSH in NSH (or an experimental next protocol)
    (dict(words=1), 0, 4),              # a length shorter than the base headers
    (dict(words=40, fill=4), 0, 4),     # a length past the frame's end
])
def test_nsh_that_cannot_be_read_is_counted(tmp_path, mangle, non_ip, malformed):
    kw = dict(nxt=1) | mangle
    frames = [bytes(Ether(**OUTER_MAC, type=0x894F) / Raw(nsh(p, **kw))) for p in handshake()]
    p = decoded(write(tmp_path, "nsh_bad.pcap", frames))
    assert len(p) == 0
    assert (p.stats.non_ip, p.stats.malformed) == (non_ip, malformed)
