"""Decoder leftovers of break-it 15 (F11), each end to end with both engines where tshark is
installed, and the fast path held equal to the slow path:

- an Ethernet frame carried directly in IPv6 (IP protocol 143, SRv6 End.DX2/End.DT2), after a
  Segment Routing Header or without one, is a tunnel: the inner packet with the inner frame's
  VLAN and broadcast destination, counted in the tunnel warning;
- VXLAN on Linux's default port 8472 is read as VXLAN only when it plainly is (flags 0x08,
  reserved bytes zero, an IPv4/IPv6 header that fits inside): other datagrams there stay UDP;
- a pcap record whose original length is 0xFFFFFFFF is clamped, not counted as cut;
- IPsec ESP packets (protocol 50) are counted in one warning line.
"""
from __future__ import annotations

import shutil
import struct

import pytest

pytest.importorskip("scapy")

from scapy.all import IP, TCP, UDP, Dot1Q, Ether, IPv6, Raw  # noqa: E402
from scapy.layers.inet6 import IPv6ExtHdrSegmentRouting  # noqa: E402
from scapy.layers.ipsec import ESP  # noqa: E402
from scapy.layers.vxlan import VXLAN  # noqa: E402

import kscc_traffic  # noqa: E402
from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.capture.files import read_frames  # noqa: E402
from kscc_traffic.chunked import ChunkedAnalysis  # noqa: E402
from pcapbuild import pcap_bytes, tcp_session  # noqa: E402
from test_decode_more_encaps import client_hello, server_hello  # noqa: E402
from test_decode_more_encaps import decoded as _decoded  # noqa: E402  (fast path = slow path)

RULES = kscc_traffic.load_rules()
#: a TLS 1.2 handshake both sides ended with ChangeCipherSpec (established)
CCS = b"\x14\x03\x03\x00\x01\x01"
CH, SH = client_hello("eu1.ksc.kaspersky.com") + CCS, server_hello() + CCS
TSHARK = shutil.which("tshark")
T0 = 1_764_500_000.0
AGENT, SERVER = "192.0.2.10", "203.0.113.10"
OUTER = ("198.51.100.1", "198.51.100.2")
OUTER6 = ("2001:db8:a::1", "2001:db8:b::1")
NEAR, FAR = "02:00:00:00:01:01", "02:00:00:00:01:02"
FLOW = ["proto", "orig_h", "orig_p", "resp_h", "resp_p", "orig_pkts", "resp_pkts", "orig_bytes",
        "resp_bytes", "orig_ip_bytes", "resp_ip_bytes", "conn_state", "vlan", "inner_vlan", "cast", "purpose",
        "verdict"]


def _session():
    """(ts, IPv4/TCP) of a whole agent connection (a TLS 1.2 handshake for
    eu1.ksc.kaspersky.com), both sides closed: 8 packets, 5 from the agent."""
    return [(t, p[IP]) for t, p in tcp_session((AGENT, 50000), (SERVER, 23101), t0=T0,
                                                c_data=CH, s_data=SH)]


def _up(pkt) -> bool:
    return pkt[IP].src == AGENT


def _write(tmp_path, name, recs):
    p = tmp_path / name
    p.write_bytes(pcap_bytes(recs))
    return p


def _flows(path, engine="builtin"):
    a = analyze_file(path, RULES, engine=engine)
    return a.flows.sort_values(["orig_h", "orig_p"]).reset_index(drop=True), a.warnings


def _both(path):
    """Flows and warnings of the builtin engine; the tshark engine's flows are the same."""
    f, w = _flows(path)
    if TSHARK:
        t, _ = _flows(path, "tshark")
        assert t[FLOW].to_dict("records") == f[FLOW].to_dict("records")
    return f, w


def _agent_ok(f, vlan=0, cast="unicast", inner_vlan=0):
    assert len(f) == 1
    r = f.iloc[0]
    assert (r.proto, r.orig_h, r.orig_p, r.resp_h, r.resp_p) == ("tcp", AGENT, 50000, SERVER, 23101)
    assert (r.orig_pkts, r.resp_pkts, r.orig_bytes, r.resp_bytes) == (5, 3, len(CH), len(SH))
    assert r.sni == "eu1.ksc.kaspersky.com"
    assert (r.conn_state, r.purpose, r.verdict, r.vlan, r.inner_vlan, r.cast) == \
        ("SF", "agent_connection", "ok", vlan, inner_vlan, cast)


# ------------------------------------------------------------------ SRv6 / IP protocol 143
def _srv6(pkt, srh: bool, tag: int = 0, dst=None):
    """The frame ``pkt`` (IPv4) in an Ethernet frame (VLAN ``tag``) carried in IPv6 protocol
    143, behind a Segment Routing Header (Segments Left 0) when ``srh``."""
    up = _up(pkt)
    inner = Ether(src=NEAR if up else FAR, dst=dst or (FAR if up else NEAR))
    inner = inner / Dot1Q(vlan=tag) / pkt if tag else inner / pkt
    a, b = OUTER6 if up else OUTER6[::-1]
    if srh:
        o = IPv6(src=a, dst=b, nh=43) / IPv6ExtHdrSegmentRouting(
            nh=143, addresses=[b], segleft=0, lastentry=0) / Raw(bytes(inner))
    else:
        o = IPv6(src=a, dst=b, nh=143) / Raw(bytes(inner))
    return Ether(src="02:00:00:00:09:01", dst="02:00:00:00:09:02") / Dot1Q(vlan=99) / o


def test_srv6_ethernet_with_and_without_srh_is_a_tunnel(tmp_path):
    """IPv6 next header 143 (RFC 8986 End.DX2): the inner Ethernet frame's packet is the row,
    with that frame's VLAN (20, not the outer 99); counted as "Ethernet-in-IP". It was two
    protocol-143 flows between the SRv6 nodes, without a warning."""
    recs = [(t, _srv6(p, srh=k % 2 == 0, tag=20)) for k, (t, p) in enumerate(_session())]
    path = _write(tmp_path, "srv6.pcap", recs)
    p = _decoded(path)
    assert p.cols["proto"].tolist() == [6] * 8
    assert set(p.cols["vlan"].tolist()) == {1 << 24 | 20}
    f, w = _both(path)
    _agent_ok(f, vlan=20)
    assert "decode: 8 tunnelled packets decoded as their inner packet, outer headers dropped " \
        "(Ethernet-in-IP 8)" in [x.split(": ", 1)[1] for x in w]


def test_srv6_ethernet_broadcast_inside_is_the_inner_frames(tmp_path):
    """The inner frame's broadcast destination makes the cast, not the outer frame's."""
    syn = IP(src=AGENT, dst="192.0.2.255") / UDP(sport=15000, dport=15000) / Raw(b"k" * 20)
    path = _write(tmp_path, "srv6b.pcap", [(T0, _srv6(syn, srh=False, dst="ff:ff:ff:ff:ff:ff"))])
    p = _decoded(path)
    assert (p.cols["proto"].tolist(), p.cols["l2_bcast"].tolist(), p.cols["dport"].tolist()) == \
        ([17], [True], [15000])
    f, _ = _both(path)
    assert (f.iloc[0].resp_p, f.iloc[0].cast) == (15000, "broadcast")


# ------------------------------------------------------------------ VXLAN on port 8472
def _vx(k, pkt, port=8472, header=None, tag=0):
    up = _up(pkt)
    inner = Ether(src=NEAR if up else FAR, dst=FAR if up else NEAR)
    inner = inner / Dot1Q(vlan=tag) / pkt if tag else inner / pkt
    vx = header if header is not None else bytes(VXLAN(vni=42, flags=0x08))
    a, b = OUTER if up else OUTER[::-1]
    return Ether(src="02:00:00:00:09:01", dst="02:00:00:00:09:02") / IP(src=a, dst=b) / \
        UDP(sport=40000 + k, dport=port) / Raw(vx + bytes(inner))


def test_vxlan_on_linux_port_8472_is_decoded(tmp_path):
    """Linux's default VXLAN port (flannel; ``ip link add … type vxlan`` without dstport): the
    agent connection inside is seen, with the inner VLAN, by both engines (tshark told
    ``-d udp.port==8472,vxlan``). It was 8 one-packet udp 8472 flows, unclassified."""
    recs = [(t, _vx(k, p, tag=7)) for k, (t, p) in enumerate(_session())]
    path = _write(tmp_path, "vx.pcap", recs)
    p = _decoded(path)
    assert p.cols["proto"].tolist() == [6] * 8
    f, w = _both(path)
    _agent_ok(f, vlan=7)
    assert "decode: 8 tunnelled packets decoded as their inner packet, outer headers dropped " \
        "(VXLAN 8)" in [x.split(": ", 1)[1] for x in w]


def _not_vxlan_payloads():
    ip = bytes(IP(src="192.0.2.1", dst="192.0.2.2") / UDP(sport=1, dport=2) / Raw(b"z" * 8))
    eth = bytes(12) + b"\x08\x00"
    return [
        b"\x08\x00\x00\x01" + b"\x00\x00\x2a\x00" + eth + ip,     # reserved byte 3 set
        b"\x08\x00\x01\x00" + b"\x00\x00\x2a\x00" + eth + ip,     # reserved byte 2 set
        b"\x08\x00\x00\x00" + b"\x00\x00\x2a\x05" + eth + ip,     # reserved byte 7 set
        b"\x88\x01\x00\x00" + b"\x00\x00\x2a\x00" + eth + ip,     # G flag, a GBP flag bit unknown
        b"\x0c" + bytes(7) + eth + ip,                            # another flag than I (and G)
        b"\x08" + bytes(7) + bytes(12) + b"\x90\x00" + ip,        # not IP inside (0x9000)
        b"\x08" + bytes(7) + eth + ip[:2] + struct.pack("!H", 200) + ip[4:],   # IP too long
        b"\x08" + bytes(7) + eth + b"\x65" + ip[1:],              # IPv4 ethertype, version 6
        b"\x08" + bytes(7) + eth + ip[:10],                       # IP header cut
        b"\x08\x00\x00\x00",                                      # shorter than VXLAN
    ]


def test_other_udp_8472_traffic_stays_udp(tmp_path):
    """Datagrams to 8472 that are not plainly VXLAN carrying IP stay the UDP datagrams they
    are, with their payload, in both engines; and a real VXLAN datagram from source port 8472
    (to another port) is not read as VXLAN either (only the destination port counts)."""
    pls = _not_vxlan_payloads()
    recs = [(T0 + k, Ether(src=NEAR, dst=FAR) / IP(src="192.0.2.20", dst="198.51.100.30")
             / UDP(sport=50500 + k, dport=8472) / Raw(pl)) for k, pl in enumerate(pls)]
    syn = IP(src=AGENT, dst=SERVER) / TCP(sport=50000, dport=23101, flags="S", seq=1)
    rev = _vx(0, syn)
    rev[UDP].sport, rev[UDP].dport = 8472, 40000
    recs.append((T0 + 20, rev))
    path = _write(tmp_path, "notvx.pcap", recs)
    p = _decoded(path)
    assert p.cols["proto"].tolist() == [17] * (len(pls) + 1)
    assert p.cols["payload_len"].tolist() == [len(x) for x in pls] + [len(bytes(rev[UDP].payload))]
    f, w = _both(path)
    assert f.proto.tolist() == ["udp"] * (len(pls) + 1)
    assert sorted(f.resp_p.tolist()) == [8472] * len(pls) + [40000]
    assert f.orig_bytes.tolist() == [len(x) for x in pls] + [len(bytes(rev[UDP].payload))]
    assert not any("tunnelled" in x for x in w)


def test_vxlan_8472_over_ipv6_with_ipv6_inside(tmp_path):
    """IPv6 outside and inside; the fit check reads the IPv6 payload length."""
    c6, s6 = "2001:db8:1::10", "2001:db8:2::10"
    pk = [IPv6(src=c6, dst=s6) / TCP(sport=50000, dport=23101, flags="S", seq=1),
          IPv6(src=s6, dst=c6) / TCP(sport=23101, dport=50000, flags="SA", seq=9, ack=2)]
    recs = []
    for k, x in enumerate(pk):
        inner = bytes(Ether(src=NEAR, dst=FAR) / x)
        a, b = OUTER6 if k == 0 else OUTER6[::-1]
        recs.append((T0 + k * 0.01, Ether(src=NEAR, dst=FAR) / IPv6(src=a, dst=b)
                     / UDP(sport=41000, dport=8472) / Raw(bytes(VXLAN(vni=1, flags=0x08)) + inner)))
    path = _write(tmp_path, "vx6.pcap", recs)
    p = _decoded(path)
    assert p.cols["proto"].tolist() == [6, 6]
    f, _ = _both(path)
    assert (f.iloc[0].proto, f.iloc[0].orig_h, f.iloc[0].resp_p, f.iloc[0].conn_state) == \
        ("tcp", c6, 23101, "S1")


# ------------------------------------------------------------------ clamped original length
def test_clamped_original_length_is_not_a_snaplen_cut(tmp_path):
    """A record whose original length field is 0xFFFFFFFF: one warning that it was clamped, and
    no "cut by the snaplen" line (the record was whole), with either engine."""
    recs = [(t, Ether(src=NEAR, dst=FAR) / p) for t, p in _session()]
    data = pcap_bytes(recs)
    # the 4th record's orig_len (its header: 24-byte file header + the records before it)
    at = 24 + sum(16 + len(bytes(p)) for _, p in recs[:3]) + 12
    data = data[:at] + struct.pack("<I", 0xFFFFFFFF) + data[at + 4:]
    path = tmp_path / "wl.pcap"
    path.write_bytes(data)
    fr = read_frames(path)
    assert (fr.wirelen[3], fr.stats.cut_frames) == (2**31 - 1, 0)
    for engine in ("builtin", "tshark") if TSHARK else ("builtin",):
        f, w = _flows(path, engine)
        _agent_ok(f)
        assert w == ["wl.pcap: 1 record with an original length above 2147483647 (clamped to it)"], \
            (engine, w)


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_an_implausible_original_length_is_not_a_snaplen_cut_either(tmp_path, fmt):
    """An original length of 128 MiB or more (random bytes where a record header's last field
    was: a record header cut by bytes inserted into the file) is a damaged field too, kept as
    read: one line counts it, and no "cut by the snaplen" line (a newcomer found both lines side
    by side on such a file, session 47), with either engine."""
    recs = [(t, Ether(src=NEAR, dst=FAR) / p) for t, p in _session()]
    if fmt == "pcap":
        data = pcap_bytes(recs)
        at = 24 + sum(16 + len(bytes(p)) for _, p in recs[:3]) + 12
        data = data[:at] + struct.pack("<I", 287_054_307) + data[at + 4:]
    else:
        from test_capture_files import end_of_options, epb, idb, shb, tsresol
        blocks = [epb("<", 0, round(t * 1e9), bytes(p)) for t, p in recs]
        b = bytearray(blocks[3])
        struct.pack_into("<I", b, 24, 287_054_307)          # the EPB's original packet length
        blocks[3] = bytes(b)
        data = shb("<") + idb("<", 1, 0, tsresol("<", 9) + end_of_options("<")) + b"".join(blocks)
    path = tmp_path / f"wl.{fmt}"
    path.write_bytes(data)
    fr = read_frames(path)
    assert (int(fr.wirelen[3]), fr.stats.cut_frames) == (287_054_307, 0)
    for engine in ("builtin", "tshark") if TSHARK else ("builtin",):
        f, w = _flows(path, engine)
        _agent_ok(f)
        assert w == [f"wl.{fmt}: 1 record with an original length of 134217728 bytes or more (a damaged "
                     "length field: kept as read, not counted as cut by the snaplen)"], (engine, w)


def test_a_real_snaplen_cut_is_still_counted(tmp_path):
    recs = [(t, Ether(src=NEAR, dst=FAR) / p) for t, p in _session()]
    data = pcap_bytes(recs)
    at = 24 + sum(16 + len(bytes(p)) for _, p in recs[:3]) + 12
    data = data[:at] + struct.pack("<I", 9000) + data[at + 4:]     # "9000 bytes on the wire"
    path = tmp_path / "cut.pcap"
    path.write_bytes(data)
    assert read_frames(path).stats.cut_frames == 1
    _, w = _flows(path)
    assert any("1 of the 8 frames was cut by the snaplen" in x for x in w)


# ------------------------------------------------------------------ IPsec ESP
def test_esp_packets_are_counted_in_one_warning(tmp_path):
    """ESP (protocol 50) stays an esp row (nothing decoded inside), and one warning line gives
    the count, with either engine, whole or in chunks."""
    recs = [(T0 + k, Ether(src=NEAR, dst=FAR) / IP(src=OUTER[0], dst=OUTER[1])
             / ESP(spi=0x1001, seq=k + 1, data=b"\xaa" * 64)) for k in range(3)]
    recs.append((T0 + 5, Ether(src=FAR, dst=NEAR) / IPv6(src=OUTER6[1], dst=OUTER6[0])
                 / ESP(spi=0x2002, seq=1, data=b"\xbb" * 48)))
    recs += [(t + 10, Ether(src=NEAR, dst=FAR) / p) for t, p in _session()]
    path = _write(tmp_path, "esp.pcap", recs)
    p = _decoded(path)
    assert p.cols["proto"].tolist()[:4] == [50] * 4
    want = ("esp.pcap: decode: 4 IPsec ESP packets (IP protocol 50, or in UDP 4500) were encrypted: the "
            "connections inside cannot be seen nor classified (shown as esp flows, or UDP 4500 ones "
            "through a NAT, between the VPN endpoints; capture where the traffic is not encrypted: on "
            "the host, or inside "
            "the VPN gateway)")
    f, w = _both(path)
    assert f.proto.tolist() == ["tcp", "esp", "esp"]
    assert f[f.proto == "esp"].orig_pkts.tolist() == [3, 1]
    assert f[f.proto == "esp"].verdict.tolist() == ["unclassified"] * 2
    assert w.count(want) == 1
    if TSHARK:
        assert _flows(path, "tshark")[1].count(want) == 1
    run = ChunkedAnalysis(path, RULES, "esp.pcap", chunk_bytes=600)     # several chunks
    assert sum(len(b) for b in run.batches()) == 3
    assert run.stats.warnings.count(want) == 1


def test_esp_in_udp_4500_is_counted_ike_and_keepalives_are_not(tmp_path):
    """NAT traversal (RFC 3948): ESP in UDP 4500 (a non-zero SPI first) counts with the ESP
    packets; IKE on 4500 (after the 4-byte non-ESP marker, zero) and the 1-byte NAT keepalive
    (0xFF) do not."""
    def udp4500(t, data, back=False):
        src, dst = (OUTER[1], OUTER[0]) if back else OUTER
        return (t, Ether(src=NEAR, dst=FAR) / IP(src=src, dst=dst) / UDP(sport=4500, dport=4500) / data)
    recs = [udp4500(T0, struct.pack("!II", 0x1001, 1) + b"\xaa" * 40),
            udp4500(T0 + 1, struct.pack("!II", 0x2002, 1) + b"\xbb" * 40, back=True),
            udp4500(T0 + 2, b"\x00\x00\x00\x00" + b"\x11" * 28 + b"\x2e\x20\x23\x08" + bytes(8)),  # IKE
            udp4500(T0 + 3, b"\xff")]                                                               # keepalive
    path = _write(tmp_path, "natt.pcap", recs)
    want = ("natt.pcap: decode: 2 IPsec ESP packets (IP protocol 50, or in UDP 4500) were encrypted: the "
            "connections inside cannot be seen nor classified (shown as esp flows, or UDP 4500 ones "
            "through a NAT, between the VPN endpoints; capture where the traffic is not encrypted: on "
            "the host, or inside "
            "the VPN gateway)")
    f, w = _both(path)
    assert w.count(want) == 1
    if TSHARK:
        assert _flows(path, "tshark")[1].count(want) == 1


def test_dns_from_source_port_4500_is_not_esp(tmp_path):
    """A DNS query whose random source port fell on 4500, and its answer, are DNS (the lower
    port, 53, decides, as Wireshark tries it first): no ESP warning; ESP from a NAT's random port
    to 4500 still counts."""
    from scapy.layers.dns import DNS, DNSQR
    q = DNS(id=9, rd=1, qd=DNSQR(qname="eu1.ksc.kaspersky.com"))
    recs = [(T0, Ether(src=NEAR, dst=FAR) / IP(src=OUTER[0], dst=OUTER[1]) / UDP(sport=4500, dport=53) / q),
            (T0 + 0.01, Ether(src=FAR, dst=NEAR) / IP(src=OUTER[1], dst=OUTER[0]) / UDP(sport=53, dport=4500)
             / DNS(id=9, qr=1, qd=q.qd))]
    path = _write(tmp_path, "dns4500.pcap", recs)
    f, w = _both(path)
    assert not [x for x in w if "ESP" in x]
    assert f["query"].tolist() == ["eu1.ksc.kaspersky.com"]
    nat = [(T0, Ether(src=NEAR, dst=FAR) / IP(src=OUTER[0], dst=OUTER[1]) / UDP(sport=61001, dport=4500)
            / (struct.pack("!II", 0x1001, 1) + b"\xaa" * 40))]
    assert any("1 IPsec ESP packet " in x for x in _both(_write(tmp_path, "nat.pcap", nat))[1])


def test_vxlan_gbp_on_8472_is_decoded(tmp_path):
    """Newcomer 20 F7: the Group Based Policy extension (Linux ``gbp``: flags 0x88, the D/A
    flags and a policy ID in bytes 1-3) on 8472 is VXLAN too, in both engines."""
    header = b"\x88\x40\x00\x2a" + b"\x00\x00\x2a\x00"
    recs = [(t, _vx(k, p, header=header)) for k, (t, p) in enumerate(_session())]
    path = _write(tmp_path, "gbp.pcap", recs)
    p = _decoded(path)
    assert p.cols["proto"].tolist() == [6] * 8
    f, _ = _both(path)
    _agent_ok(f)
