"""The link layer of a tunnelled packet, and Teredo.

- A tunnel that carries a whole Ethernet frame (ERSPAN II/III, VXLAN, Geneve and GRE with
  protocol type 0x6558, Ethernet over MPLS with and without control word): the packet's
  ``vlan`` and ``l2_bcast`` are the inner frame's (its 802.1Q tags, its broadcast destination),
  never the outer frame's. So an agent broadcast to 192.0.2.255:15000 mirrored through ERSPAN is
  ``cast=broadcast``, purpose ``agent_broadcast`` (it was ``unicast``/``gateway_udp``: the outer
  frame, addressed to the collector, is unicast), and the flow key holds the inner VLAN.
- A tunnel that carries IP directly (IP-in-IP, GRE and Geneve with protocol type IPv4, PPP in
  L2TP, Teredo) gives the packet no link layer: ``vlan`` 0 and ``l2_bcast`` False, whatever the
  outer frame had, as a raw-IP capture of the same packets.
- Teredo (RFC 4380, UDP port 3544): IPv6 after an optional authentication header and origin
  indication is decoded as its IPv6 packet, counted in the "tunnelled packets" warning; other
  UDP traffic on port 3544 stays UDP.

Each capture is built here with scapy, analysed by the builtin decoder (fast path checked
against the slow path), whole and in chunks, and with tshark when installed; the scapy reference
(``reference_decoder``) is checked on the same frames where scapy dissects them the same way.
"""
from __future__ import annotations

import shutil
import struct

import pytest

pytest.importorskip("scapy")

from scapy.all import (  # noqa: E402
    GRE, IP, TCP, UDP, VXLAN, Dot1Q, Ether, IPv6, Raw)
from scapy.contrib.erspan import ERSPAN_II, ERSPAN_III  # noqa: E402
from scapy.contrib.geneve import GENEVE  # noqa: E402

import kscc_traffic  # noqa: E402
from chunkcmp import assert_same, row  # noqa: E402
from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.capture.files import read_frames  # noqa: E402
from pcapbuild import pcap_bytes  # noqa: E402
from test_decode_more_encaps import client_hello, decoded, write  # noqa: E402 (fast = slow path check)
from reference_decoder import (  # noqa: E402
    decoded_fields, link_fields, link_reference, reference)

RULES = kscc_traffic.load_rules()
TSHARK = shutil.which("tshark")

BCAST = "ff:ff:ff:ff:ff:ff"
#: RFC 7042 documentation addresses (an OUI Wireshark knows: its pseudowire heuristic needs one)
AMAC, DMAC, RMAC = "00:00:5e:00:53:0a", "00:00:5e:00:53:14", "00:00:5e:00:53:01"
OMAC1, OMAC2 = "02:00:00:00:00:01", "02:00:00:00:00:02"
AGENT, DP, SUBNET_BCAST = "192.0.2.10", "192.0.2.20", "192.0.2.255"
O1, O2 = "198.51.100.1", "198.51.100.2"
OUTER_VLAN, INNER_VLAN = 99, 42
FLAG = 1 << 24
SNI = "eu1.ksc.kaspersky.com"


CH = client_hello()


# ---------------------------------------------------------------------------- inner traffic
def inner_packets(tag: bool) -> list[tuple[bool, object]]:
    """(broadcast frame?, inner Ethernet frame) of: an agent's broadcast to the subnet
    (192.0.2.255:15000, Ethernet broadcast) twice, and a TCP connection agent -> DP port 13000
    with a ClientHello (unicast frames). ``tag``: every inner frame carries VLAN 42."""
    def eth(dst, src):
        e = Ether(dst=dst, src=src)
        return e / Dot1Q(vlan=INNER_VLAN) if tag else e
    up = lambda **kw: eth(DMAC, AMAC) / IP(src=AGENT, dst=DP) / TCP(sport=50000, dport=13000, **kw)  # noqa: E731
    dn = lambda **kw: eth(AMAC, DMAC) / IP(src=DP, dst=AGENT) / TCP(sport=13000, dport=50000, **kw)  # noqa: E731
    bc = lambda n: eth(BCAST, AMAC) / IP(src=AGENT, dst=SUBNET_BCAST, id=n) \
        / UDP(sport=52116, dport=15000) / Raw(b"\x00" * 124)  # noqa: E731
    return [(True, bc(1)), (True, bc(2)),
            (False, up(flags="S", seq=100)), (False, dn(flags="SA", seq=900, ack=101)),
            (False, up(flags="A", seq=101, ack=901)),
            (False, up(flags="PA", seq=101, ack=901) / Raw(CH))]


def outer_eth(tag: bool = True, dst: str = OMAC2):
    e = Ether(dst=dst, src=OMAC1)
    return e / Dot1Q(vlan=OUTER_VLAN) if tag else e


def mpls(label: int = 100) -> bytes:
    return struct.pack("!I", label << 12 | 0x100 | 64)


#: tunnels that carry an Ethernet frame: frame -> the frame with the tunnel around it. The
#: ERSPAN headers' own VLAN field (7: the mirrored port's VLAN) is not read, the frame's tags are
L2_TUNNELS = {
    "erspan2": lambda f: bytes(outer_eth() / IP(src=O1, dst=O2)
                               / GRE(seqnum_present=1, sequence_number=1)
                               / ERSPAN_II(vlan=7, session_id=3) / f),
    "erspan3": lambda f: bytes(outer_eth() / IP(src=O1, dst=O2) / GRE(seqnum_present=1)
                               / ERSPAN_III(vlan=7, session_id=3) / f),
    "vxlan": lambda f: bytes(outer_eth() / IP(src=O1, dst=O2) / UDP(sport=49152, dport=4789)
                             / VXLAN(vni=42) / f),
    "geneve": lambda f: bytes(outer_eth() / IP(src=O1, dst=O2) / UDP(sport=49153, dport=6081)
                              / GENEVE(proto=0x6558, vni=9, optionlen=2)
                              / Raw(struct.pack("!HBB", 0x0102, 0x80, 1) + b"\xaa\xbb\xcc\xdd")
                              / f),
    "gre_teb": lambda f: bytes(outer_eth() / IP(src=O1, dst=O2) / GRE(proto=0x6558) / f),
    "eompls_cw": lambda f: _eompls(f, True),
    "eompls_nocw": lambda f: _eompls(f, False),
}


def _eompls(f, cw: bool) -> bytes:
    """Outer Ethernet + VLAN 99 + one MPLS label (bottom of stack) + [control word] + frame."""
    head = bytes(Ether(dst=OMAC2, src=OMAC1, type=0x8100)) + struct.pack("!HH", OUTER_VLAN, 0x8847)
    return head + mpls() + (b"\0\0\0\0" if cw else b"") + bytes(f)


#: flow columns both engines must agree on
FLOW_KEYS = ("uid", "vlan", "inner_vlan", "proto", "orig_h", "orig_p", "resp_h", "resp_p", "orig_pkts",
             "resp_pkts", "orig_bytes", "resp_bytes", "orig_ip_bytes", "resp_ip_bytes", "cast",
             "sni", "conn_state", "purpose", "verdict", "reason")


def same_with_tshark(path, flows) -> None:
    if not TSHARK:
        return
    ta = analyze_file(path, RULES, engine="tshark")
    t = ta.flows
    # (the "tunnelled packets" line too: newcomer 20 F14, the tshark engine had none)
    assert [w for w in ta.warnings if "tunnelled" in w] == tunnel_warning(path)
    key = ["proto", "orig_h", "orig_p", "resp_h", "resp_p"]
    a = flows.sort_values(key).reset_index(drop=True)
    b = t.sort_values(key).reset_index(drop=True)
    assert len(a) == len(b), (a[key], b[key])
    for k in FLOW_KEYS:
        assert a[k].tolist() == b[k].tolist(), (k, a[k].tolist(), b[k].tolist())


def tunnel_warning(path) -> list[str]:
    st = analyze_file(path, RULES).stats
    return [w for s in st.values() for w in s.warnings if "tunnelled" in w]


# ---------------------------------------------------------------------------- Ethernet in a tunnel
@pytest.mark.parametrize("tag", [False, True], ids=["inner_untagged", "inner_vlan42"])
@pytest.mark.parametrize("kind", sorted(L2_TUNNELS))
def test_inner_ethernet_gives_vlan_and_broadcast(tmp_path, kind, tag):
    """Outer frame: unicast to the collector, VLAN 99. Inner: the agent's broadcast frames and
    a unicast TCP connection, untagged or in VLAN 42. Every row has the inner frame's VLAN and
    broadcast flag; the broadcast flow is an agent broadcast."""
    pkts = inner_packets(tag)
    if kind == "eompls_nocw":
        # without a control word, a destination address beginning with 0xf is read as a frame
        # only by the builtin decoder (Wireshark shows data): keep the broadcast out of the
        # engine comparison below, it is checked alone in test_eompls_without_cw_broadcast
        pkts = [(b, f) for b, f in pkts if not b]
    frames = [L2_TUNNELS[kind](f) for _, f in pkts]
    path = write(tmp_path, f"{kind}.pcap", frames)
    p = decoded(path)
    assert len(p) == len(pkts)
    want_vlan = FLAG | INNER_VLAN if tag else 0
    assert p.cols["vlan"].tolist() == [want_vlan] * len(pkts)
    assert p.cols["l2_bcast"].tolist() == [b for b, _ in pkts]
    flows = assert_same(path, [300, 700])
    # (the flow table's columns: the inner frame's VLAN ID, Zeek's vlan; no second tag)
    assert set(flows["vlan"]) == {INNER_VLAN if tag else 0} and set(flows["inner_vlan"]) == {0}
    tcp = row(flows, proto="tcp")
    assert (tcp["orig_h"], tcp["resp_h"], tcp["resp_p"], tcp["cast"], tcp["sni"]) == \
        (AGENT, DP, 13000, "unicast", SNI)
    if kind != "eompls_nocw":
        bc = row(flows, proto="udp")
        assert (bc["orig_h"], bc["orig_p"], bc["resp_h"], bc["resp_p"]) == \
            (AGENT, 52116, SUBNET_BCAST, 15000)
        assert (bc["cast"], bc["purpose"], bc["verdict"], bc["orig_pkts"]) == \
            ("broadcast", "agent_broadcast", "ok", 2)
    name = {"erspan2": "GRE", "erspan3": "GRE", "gre_teb": "GRE", "vxlan": "VXLAN",
            "geneve": "Geneve"}.get(kind, "MPLS-PW")
    assert tunnel_warning(path) == [
        f"{kind}.pcap: decode: {len(pkts)} tunnelled packets decoded as their inner packet, "
        f"outer headers dropped ({name} {len(pkts)})"]
    same_with_tshark(path, flows)
    if kind != "eompls_nocw":   # scapy takes a label then 00 00 for a control word
        fr = read_frames(path)
        assert decoded_fields(p) == reference(fr)
        assert link_fields(p) == link_reference(fr)


def test_same_connection_native_and_mirrored_keys_alike(tmp_path):
    """The TCP connection seen on the wire in VLAN 42 and again through ERSPAN (outer VLAN 99):
    one key, so the mirrored copies are the same flow's duplicates, not a second flow."""
    pkts = inner_packets(True)
    native = [bytes(f) for _, f in pkts]
    mirrored = [L2_TUNNELS["erspan2"](f) for _, f in pkts]
    frames = [x for pair in zip(native, mirrored) for x in pair]
    path = write(tmp_path, "native_and_erspan.pcap", frames)
    flows = assert_same(path, [400])
    assert len(flows) == 2 and set(flows["vlan"]) == {INNER_VLAN}
    bc = row(flows, proto="udp")
    assert (bc["cast"], bc["purpose"], bc["orig_pkts"]) == ("broadcast", "agent_broadcast", 2)
    tcp = row(flows, proto="tcp")
    assert (tcp["orig_pkts"], tcp["resp_pkts"], tcp["sni"]) == (3, 1, SNI)
    assert analyze_file(path, RULES).duplicates == len(pkts)


def test_eompls_without_cw_broadcast(tmp_path):
    """A broadcast frame on an Ethernet pseudowire without control word (first byte 0xff: no
    IP version, no control word) is still read as Ethernet; a label followed by something that
    is not Ethernet stays not IP."""
    pkts = [f for b, f in inner_packets(True) if b]
    junk = _eompls(Raw(b"\xf0" + bytes(40)), False)
    path = write(tmp_path, "eompls_nocw_bcast.pcap", [_eompls(f, False) for f in pkts] + [junk])
    p = decoded(path)
    assert len(p) == 2 and p.stats.non_ip == 1
    assert p.cols["l2_bcast"].tolist() == [True, True]
    assert p.cols["vlan"].tolist() == [FLAG | INNER_VLAN] * 2
    r = row(assert_same(path, [200]), proto="udp")
    assert (r["cast"], r["purpose"], r["vlan"]) == ("broadcast", "agent_broadcast", INNER_VLAN)


def test_eompls_control_word_or_not(tmp_path):
    """First nibble 0 after the label: a control word when the ethertype after it is known,
    else a frame whose destination begins with 0; a VLAN tag right after the addresses means no
    control word (the tag's inner ethertype would also fit a control word)."""
    f_plain = Ether(dst="02:00:00:00:00:14", src="02:00:00:00:00:0a") / IP(src=AGENT, dst=DP) \
        / UDP(sport=1, dport=2) / Raw(b"p" * 20)
    f_tag = Ether(dst="02:00:00:00:00:14", src="02:00:00:00:00:0a") / Dot1Q(vlan=5) \
        / IP(src=AGENT, dst=DP) / UDP(sport=3, dport=4) / Raw(b"q" * 20)
    # a frame after a control word whose source address holds 08 00 where an ethertype would be
    f_cw = Ether(dst="00:00:5e:00:53:14", src="00:00:08:00:53:0a") / IP(src=AGENT, dst=DP) \
        / UDP(sport=5, dport=6) / Raw(b"r" * 20)
    frames = [_eompls(f_plain, False), _eompls(f_tag, False), _eompls(f_cw, True),
              _eompls(f_plain, True)]
    path = write(tmp_path, "eompls_cw.pcap", frames)
    p = decoded(path)
    assert p.cols["sport"].tolist() == [1, 3, 5, 1]
    assert p.cols["vlan"].tolist() == [0, FLAG | 5, 0, 0]
    fr = read_frames(path)
    assert decoded_fields(p) == reference(fr)           # scapy: 02... is no control word
    assert link_fields(p) == link_reference(fr)


@pytest.mark.parametrize("kind", ["ipip", "gre_ip", "geneve_ip", "l2tp"])
def test_tunnel_carrying_ip_has_no_link_layer(tmp_path, kind):
    """Outer frame broadcast (!) and in VLAN 99; the tunnel carries IP (IP-in-IP, GRE and
    Geneve with protocol type IPv4, PPP in L2TP): the inner packets get
    vlan 0 and no broadcast flag, exactly as the same packets captured as raw IP. So the
    directed broadcast to 192.0.2.255 is told one by its address alone (the sender's /24's
    broadcast address, no link-layer destination recorded: break-it s52 formats #1; it was
    unicast, gateway_udp), as in the raw-IP capture."""
    pkts = inner_packets(False)
    ips = [f[IP] for _, f in pkts]
    wrap = {
        "ipip": lambda i: outer_eth(dst=BCAST) / IP(src=O1, dst=O2, proto=4) / i,
        "gre_ip": lambda i: outer_eth(dst=BCAST) / IP(src=O1, dst=O2) / GRE(proto=0x0800) / i,
        "geneve_ip": lambda i: outer_eth(dst=BCAST) / IP(src=O1, dst=O2)
        / UDP(sport=1, dport=6081) / GENEVE(proto=0x0800) / i,
        # L2TPv2 data message (flags 0x0002, tunnel 1, session 2) carrying PPP (ff 03, IPv4)
        "l2tp": lambda i: outer_eth(dst=BCAST) / IP(src=O1, dst=O2) / UDP(sport=1701, dport=1701)
        / Raw(b"\x00\x02\x00\x01\x00\x02\xff\x03\x00\x21" + bytes(i)),
    }[kind]
    path = write(tmp_path, f"{kind}.pcap", [bytes(wrap(i)) for i in ips])
    raw = write(tmp_path, "raw.pcap", [bytes(i) for i in ips], linktype=101)
    p = decoded(path)
    assert p.cols["vlan"].tolist() == [0] * len(ips)
    assert p.cols["l2_bcast"].tolist() == [False] * len(ips)
    flows = assert_same(path, [300])
    want = analyze_file(raw, RULES).flows
    cols = [c for c in flows.columns if c not in ("uid", "capture")]
    assert flows[cols].to_dict("records") == want[cols].to_dict("records")
    bc = row(flows, proto="udp")
    assert (bc["cast"], bc["purpose"]) == ("broadcast", "agent_broadcast")
    same_with_tshark(path, flows)
    fr = read_frames(path)
    assert decoded_fields(p) == reference(fr)
    assert link_fields(p) == link_reference(fr)


# ---------------------------------------------------------------------------- Teredo
TEREDO_CLIENT, V6_SERVER = "2001:0:c633:6401:8000:f227:3d4b:fdf5", "2001:db8:cc::10"
TSERVER, TCLIENT4 = "198.51.100.1", "203.0.113.7"


def auth_header(idv: bytes = b"", auth: bytes = b"") -> bytes:
    """RFC 4380 §5.1.1 authentication encapsulation: indicator 0x0001, ID-len, AU-len, client
    identifier, authentication value, nonce (8), confirmation (1)."""
    return struct.pack("!HBB", 1, len(idv), len(auth)) + idv + auth + b"\x11" * 8 + b"\x00"


def origin_indication(port: int = 40000, addr: bytes = bytes([203, 0, 113, 7])) -> bytes:
    """Indicator 0x0000, then the client's mapped port and IPv4 address, each bit inverted."""
    return struct.pack("!HH", 0, port ^ 0xFFFF) + bytes(b ^ 0xFF for b in addr)


def teredo_conversation() -> list[tuple[bool, object]]:
    """(from client?, IPv6 packet): a TCP connection client -> server port 13000 with a
    ClientHello, and a DNS-like UDP exchange."""
    up = lambda **kw: IPv6(src=TEREDO_CLIENT, dst=V6_SERVER) / TCP(sport=50001, dport=13000, **kw)  # noqa: E731
    dn = lambda **kw: IPv6(src=V6_SERVER, dst=TEREDO_CLIENT) / TCP(sport=13000, dport=50001, **kw)  # noqa: E731
    return [(True, up(flags="S", seq=10)), (False, dn(flags="SA", seq=70, ack=11)),
            (True, up(flags="A", seq=11, ack=71)), (True, up(flags="PA", seq=11, ack=71) / Raw(CH)),
            (True, IPv6(src=TEREDO_CLIENT, dst=V6_SERVER) / UDP(sport=50002, dport=53)
             / Raw(b"\x12\x34" + bytes(30))),
            (False, IPv6(src=V6_SERVER, dst=TEREDO_CLIENT) / UDP(sport=53, dport=50002)
             / Raw(b"\x12\x34\x81\x80" + bytes(40)))]


def teredo_frame(up: bool, p, head: bytes = b"", vlan: bool = True) -> bytes:
    o = outer_eth(tag=vlan)
    if up:
        u = IP(src=TCLIENT4, dst=TSERVER) / UDP(sport=40000, dport=3544)
    else:
        u = IP(src=TSERVER, dst=TCLIENT4) / UDP(sport=3544, dport=40000)
    return bytes(o / u / Raw(head + bytes(p)))


@pytest.mark.parametrize("head", ["none", "origin", "auth", "auth_id_origin"])
def test_teredo_decoded_as_inner_ipv6(tmp_path, head):
    h = {"none": b"", "origin": origin_indication(), "auth": auth_header(),
         "auth_id_origin": auth_header(b"client-7", b"\x01" * 20) + origin_indication()}[head]
    pkts = teredo_conversation()
    # the same Teredo headers on every frame, either way (in RFC 4380 the server adds the
    # origin indication, a client may authenticate; the decoder does not ask who sent what)
    frames = [teredo_frame(up, p, h) for up, p in pkts]
    path = write(tmp_path, "teredo.pcap", frames)
    p = decoded(path)
    assert p.cols["ipver"].tolist() == [6] * 6
    assert p.cols["proto"].tolist() == [6, 6, 6, 6, 17, 17]
    assert p.cols["ip_len"].tolist() == [len(bytes(x)) for _, x in pkts]
    assert p.cols["vlan"].tolist() == [0] * 6 and not p.cols["l2_bcast"].any()
    assert p.payload(3) == CH
    flows = assert_same(path, [300, 700])
    assert len(flows) == 2
    t = row(flows, proto="tcp")
    assert (t["orig_h"], t["orig_p"], t["resp_h"], t["resp_p"], t["sni"], t["orig_pkts"],
            t["resp_pkts"], t["orig_bytes"]) == \
        (TEREDO_CLIENT, 50001, V6_SERVER, 13000, SNI, 3, 1, len(CH))
    assert t["orig_ip_bytes"] == sum(len(bytes(x)) for up, x in pkts[:4] if up)
    u = row(flows, proto="udp")
    assert (u["orig_h"], u["resp_h"], u["resp_p"], u["orig_bytes"], u["resp_bytes"]) == \
        (TEREDO_CLIENT, V6_SERVER, 53, 32, 44)
    assert tunnel_warning(path) == [
        "teredo.pcap: decode: 6 tunnelled packets decoded as their inner packet, outer headers "
        "dropped (Teredo 6)"]
    same_with_tshark(path, flows)
    fr = read_frames(path)
    assert decoded_fields(p) == reference(fr)
    assert link_fields(p) == link_reference(fr)


def test_teredo_bubble_and_either_port(tmp_path):
    """A bubble (IPv6, no next header, payload length 0) from the client's port to the server's
    3544 and back: IPv6 rows of protocol 59."""
    bubble = IPv6(src=TEREDO_CLIENT, dst="2001:0:c633:6401::1", nh=59)
    path = write(tmp_path, "bubble.pcap", [teredo_frame(True, bubble),
                                           teredo_frame(False, bubble, origin_indication())])
    p = decoded(path)
    assert p.cols["ipver"].tolist() == [6, 6] and p.cols["proto"].tolist() == [59, 59]
    assert p.cols["ip_len"].tolist() == [40, 40] and p.cols["payload_len"].tolist() == [0, 0]
    fr = read_frames(path)
    assert decoded_fields(p) == reference(fr)


def test_other_udp_3544_traffic_stays_udp(tmp_path):
    """UDP on port 3544 that is not an IPv6 packet filling the datagram stays the UDP datagram
    (no tunnel counted): a DNS answer to a client that took 3544 as its source port, whose id
    begins with 6 (an IPv6 version nibble); an IPv6 packet followed by 2 more bytes; an origin
    indication followed by IPv4; an IPv6 header cut by the snaplen... the UDP length is what
    counts, so the cut one stays UDP as well."""
    v6 = bytes(teredo_conversation()[4][1])
    dns = b"\x61\x00\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + b"\x03www\x00\x00\x01\x00\x01" \
        + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\xc0\x00\x02\x01"
    frames = [bytes(outer_eth(False) / IP(src="203.0.113.53", dst=AGENT) / UDP(sport=53, dport=3544)
                    / Raw(dns)),
              bytes(outer_eth(False) / IP(src=TCLIENT4, dst=TSERVER) / UDP(sport=40000, dport=3544)
                    / Raw(v6 + b"xx")),
              bytes(outer_eth(False) / IP(src=TSERVER, dst=TCLIENT4) / UDP(sport=3544, dport=40000)
                    / Raw(origin_indication() + bytes(IP(src=O1, dst=O2) / UDP())))]
    path = write(tmp_path, "not_teredo.pcap", frames)
    p = decoded(path)
    assert p.cols["ipver"].tolist() == [4, 4, 4]
    assert p.cols["sport"].tolist() == [53, 40000, 3544]
    assert p.cols["dport"].tolist() == [3544, 3544, 40000]
    assert p.cols["payload_len"].tolist() == [len(dns), len(v6) + 2, 8 + 28]
    assert p.payload(0) == dns
    assert tunnel_warning(path) == []
    flows = analyze_file(path, RULES).flows
    assert sorted(flows["proto"]) == ["udp"] * 2           # 40000 <-> 3544 both ways: one flow
    assert sorted(flows["resp_p"]) == [53, 3544]
    same_with_tshark(path, flows)


def test_teredo_cut_by_snaplen_keeps_inner_row(tmp_path):
    """The UDP length, not the captured bytes, says whether the IPv6 packet fills the datagram:
    a Teredo frame cut inside the inner TCP payload still gives the inner packet."""
    up, p = teredo_conversation()[3]
    f = teredo_frame(up, p, origin_indication())
    data = bytearray(pcap_bytes([(1_700_000_000, f[:-20])]))
    struct.pack_into("<I", data, 24 + 12, len(f))
    path = tmp_path / "teredo_cut.pcap"
    path.write_bytes(bytes(data))
    pk = decoded(path)
    assert pk.cols["ipver"].tolist() == [6] and pk.cols["dport"].tolist() == [13000]
    assert pk.cols["payload_len"].tolist() == [len(CH)]
    assert pk.cols["pl_cap"].tolist() == [len(CH) - 20]
    assert decoded_fields(pk) == reference(read_frames(path))


def test_teredo_rows_take_the_fast_paths_place(tmp_path):
    """Many ordinary frames and Teredo frames mixed: the fast path leaves exactly the UDP 3544
    frames to the slow path and the columns equal the slow path's (``decoded`` checks)."""
    frames = []
    for k in range(300):
        frames.append(bytes(Ether(src=AMAC, dst=DMAC) / IP(src=AGENT, dst=DP)
                            / UDP(sport=40000 + k, dport=15000) / Raw(b"a" * (k % 50))))
        if k % 7 == 0:
            up, p = teredo_conversation()[k % 6]
            frames.append(teredo_frame(up, p))
    p = decoded(write(tmp_path, "mixed.pcap", frames))
    assert int((p.cols["ipver"] == 6).sum()) == 43
