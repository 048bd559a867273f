"""Headers the decoder walks to reach the packet, as Wireshark does (break-it 12 F1, F4, F5):

- link-layer shims between the Ethernet header and the packet's ethertype: Cisco MetaData /
  TrustSec SGT (0x8909), VN-Tag (0x8926), 802.1BR E-Tag (0x893F), the Arista timestamp header
  (0xD28B), MACsec integrity-only (0x88E5; encrypted MACsec counted in a warning), and 802.1ah
  PBB (B-TAG 0x88A8 + I-TAG 0x88E7, read as a tunnel carrying the customer frame);
- WCCP-redirected GRE (protocol 0x883E, with or without the WCCPv2 redirect header);
- GTP-U (UDP 2152) and VXLAN-GPE (UDP 4790), decoded as their inner packet like VXLAN/Geneve.

Each capture is built here, analysed, and its flow checked value by value (5-tuple, packets and
bytes each way, SNI, verdict) for IPv4 and IPv6 inner packets; the fast and the slow path must
give identical columns (``decoded``); with tshark installed the tshark engine must give the same
flows. Damaged headers are counted as malformed, never raise.
"""
from __future__ import annotations

import struct

import pytest

pytest.importorskip("scapy")

from scapy.all import GRE, IP, UDP, Dot1Q, Ether, IPv6, Raw  # noqa: E402

import kscc_traffic  # noqa: E402
from chunkcmp import assert_same, row  # noqa: E402
from kscc_traffic.analyze import analyze_file  # noqa: E402
from pcapbuild import pcap_bytes  # noqa: E402
from test_decode_more_encaps import (  # noqa: E402
    CH, CMAC, SH, SMAC, SNI, check_tls_flow, conversation, decoded, write)
from test_decode_tunnel_link import (  # noqa: E402
    AGENT, BCAST, FLAG, INNER_VLAN, inner_packets, same_with_tshark, tunnel_warning)

RULES = kscc_traffic.load_rules()
ICV = b"\xaa" * 16


def macs(up: bool) -> bytes:
    """Destination + source addresses of a frame from the client (``up``) or the server."""
    e = bytes(Ether(dst=SMAC if up else CMAC, src=CMAC if up else SMAC, type=0x0800))
    return e[:12]


def etype(p) -> bytes:
    return b"\x86\xdd" if IPv6 in p else b"\x08\x00"


def same_as_plain(tmp_path, path, pkts) -> dict:
    """The flow of ``path`` has every column (but uid and capture) of the flow of the same
    packets captured on plain Ethernet, and that flow's verdict (the synthetic handshake ends
    before the server's Finished: ``blocked``/``tls_failed`` either way). Returns the flow."""
    plain = write(tmp_path, "plain.pcap", [bytes(Ether(src=CMAC if up else SMAC,
                                                       dst=SMAC if up else CMAC) / p)
                                           for up, p in pkts])
    a = analyze_file(path, RULES).flows
    b = analyze_file(plain, RULES).flows
    cols = [c for c in a.columns if c not in ("uid", "capture")]
    assert a[cols].to_dict("records") == b[cols].to_dict("records")
    r = a.iloc[0].to_dict()
    assert (r["purpose"], r["verdict"], r["reason"]) == \
        ("agent_connection", "blocked", "tls_failed")
    return r


# ---------------------------------------------------------------------------- link-layer shims
def cmd(p) -> bytes:            # version 1, length 1, option 0x0001 (SGT), SGT 17
    return b"\x89\x09" + struct.pack("!BBHH", 1, 1, 1, 17) + etype(p) + bytes(p)


def vntag(p) -> bytes:
    return b"\x89\x26" + struct.pack("!I", 0x00010002) + etype(p) + bytes(p)


def etag(p) -> bytes:
    return b"\x89\x3f" + b"\x00\x00\x10\x05\x00\x00" + etype(p) + bytes(p)


def arista(version: int, tslen: int):
    def f(p) -> bytes:
        return (b"\xd2\x8b" + struct.pack("!HH", 1, version) + bytes(range(tslen)) + etype(p)
                + bytes(p))
    return f


def macsec(sci: bool, short: bool = False):
    """SecTAG (TCI: SC bit when ``sci``, E and C clear), PN 1, [SCI], ethertype, packet, ICV.
    ``short``: the short length field gives the secure data length (packets under 48 bytes)."""
    def f(p) -> bytes:
        data = etype(p) + bytes(p)
        sl = len(data) if short else 0
        assert sl < 48
        tag = struct.pack("!BBI", 0x20 if sci else 0, sl, 1)
        sci_bytes = b"\x02\x00\x00\x00\x00\x0a\x00\x01" if sci else b""
        return b"\x88\xe5" + tag + sci_bytes + data + ICV
    return f


#: shim name -> (packet -> bytes after the two addresses)
SHIMS = {"cmd": cmd, "vntag": vntag, "etag": etag, "arista64": arista(0x0010, 8),
         "arista48_utc": arista(0x0120, 6), "macsec_sci": macsec(True),
         "macsec_nosci": macsec(False)}


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
@pytest.mark.parametrize("kind", sorted(SHIMS))
def test_shim_on_every_frame(tmp_path, kind, v6):
    pkts = conversation(v6)
    frames = [macs(up) + SHIMS[kind](p) for up, p in pkts]
    path = write(tmp_path, f"{kind}.pcap", frames)
    check_tls_flow(path, pkts, v6)
    r = same_as_plain(tmp_path, path, pkts)
    assert r["vlan"] == 0
    assert tunnel_warning(path) == []                   # a shim is no tunnel


@pytest.mark.parametrize("kind", ["cmd", "macsec_sci"])
def test_shim_on_the_answers_only(tmp_path, kind):
    """Only the server's frames carry the shim (a TrustSec trunk on one side of a SPAN): one
    connection, answered, ok (it was reported blocked/no_answer)."""
    pkts = conversation()
    frames = [macs(up) + (b"\x08\x00" + bytes(p) if up else SHIMS[kind](p)) for up, p in pkts]
    path = write(tmp_path, "oneway.pcap", frames)
    r = check_tls_flow(path, pkts)
    assert (r["conn_state"], r["resp_pkts"], r["resp_bytes"]) == ("SF", 3, len(SH))
    same_as_plain(tmp_path, path, pkts)


def test_shims_stacked_and_with_vlan(tmp_path):
    """VLAN tag, then CMD, then the Arista header, then a VLAN tag again: each walked in turn;
    the tags are the frame's VLANs (outer, inner)."""
    pkts = conversation()
    frames = [macs(up) + b"\x81\x00" + struct.pack("!H", 7)             # VLAN 7
              + b"\x89\x09" + struct.pack("!BBHH", 1, 1, 1, 17)             # CMD, SGT 17
              + b"\xd2\x8b" + struct.pack("!HH", 1, 0x0010) + bytes(8)      # Arista, 64-bit
              + b"\x81\x00" + struct.pack("!H", 8) + b"\x08\x00" + bytes(p)  # VLAN 8, IPv4
              for up, p in pkts]
    path = write(tmp_path, "stacked.pcap", frames)
    p = decoded(path)
    assert p.cols["vlan"].tolist() == [FLAG | 7 << 12 | 8] * len(pkts)
    r = check_tls_flow(path, pkts)
    assert (r["vlan"], r["inner_vlan"], r["verdict"], r["reason"]) == (7, 8, "blocked", "tls_failed")


def test_macsec_short_length_and_padding(tmp_path):
    """SL (secure data under 48 bytes) bounds the data: a bare ACK with Ethernet padding after
    the ICV is read whole, the padding is not taken for payload."""
    pkts = conversation()
    frames = [macs(up) + macsec(True, short=len(bytes(p)) + 2 < 48)(p) + bytes(6)
              for up, p in pkts]
    path = write(tmp_path, "macsec_sl.pcap", frames)
    check_tls_flow(path, pkts)
    same_as_plain(tmp_path, path, pkts)


@pytest.mark.parametrize("kind", ["macsec_sci", "gtpu"])
def test_cut_by_snaplen_keeps_inner_row(tmp_path, kind):
    """The snaplen cut the frame inside the ClientHello (MACsec: the ICV is missing too): the
    inner TCP row keeps its lengths from the headers, its payload what was captured."""
    up, p = conversation()[3]
    f = macs(up) + macsec(True)(p) if kind == "macsec_sci" else gtpu_frame(up, gtpu(p))
    cut = 30 + (16 if kind == "macsec_sci" else 0)
    data = bytearray(pcap_bytes([(1_700_000_000, f[:-cut])]))
    struct.pack_into("<I", data, 24 + 12, len(f))          # original length
    path = tmp_path / "cut.pcap"
    path.write_bytes(bytes(data))
    pk = decoded(path)
    assert pk.cols["dport"].tolist() == [23100] and pk.cols["ip_len"].tolist() == [len(bytes(p))]
    assert pk.cols["payload_len"].tolist() == [len(CH)]
    assert pk.cols["pl_cap"].tolist() == [len(CH) - 30]
    assert pk.payload(0) == CH[:-30]


def test_macsec_encrypted_counted_and_warned(tmp_path):
    """E bit (confidentiality) set, or C alone: the data cannot be read. Counted as not IP, in
    its own warning; the readable frames are still analysed."""
    pkts = conversation()
    enc = [macs(up) + b"\x88\xe5" + struct.pack("!BBI", 0x2C, 0, k) + bytes(8) + bytes(60) + ICV
           for k, (up, _) in enumerate(pkts)]
    c_only = (macs(True) + b"\x88\xe5" + struct.pack("!BBI", 0x24, 0, 99) + bytes(8) + bytes(60)
              + ICV)
    plain = bytes(Ether(src=CMAC, dst=SMAC) / IP(src="192.0.2.10", dst="192.0.2.20")
                  / UDP(sport=1, dport=2) / Raw(b"x" * 10))
    path = write(tmp_path, "macsec_enc.pcap", enc + [c_only, plain])
    p = decoded(path)
    assert len(p) == 1 and p.stats.non_ip == len(pkts) + 1 and p.stats.malformed == 0
    st = analyze_file(path, RULES).stats
    warn = [w for s in st.values() for w in s.warnings if "MACsec" in w]
    assert warn == [f"macsec_enc.pcap: decode: {len(pkts) + 1} MACsec frames were encrypted and "
                    "could not be read: the packets they carried are missing from the flows "
                    "(capture where the traffic is not encrypted: on the host, or on the other "
                    "side of the MACsec link)"]


def test_shims_damaged_or_unknown(tmp_path):
    """Cut inside the shim (malformed), an Arista subtype or version not read here and a MACsec
    SecTAG of version 1 (not IP, as Wireshark shows them as data), a MACsec frame too short for
    its ICV (malformed): no row, never an exception."""
    ip = bytes(conversation()[0][1])
    m = macs(True)
    frames = [m + b"\x89\x09\x01\x01\x00",                          # CMD cut
              m + b"\x89\x26\x00\x01\x00",                          # VN-Tag cut
              m + b"\x89\x3f" + bytes(6) + b"\x08",                 # E-Tag: half an ethertype
              m + b"\xd2\x8b\x00\x01\x00\x10" + bytes(4),           # Arista: timestamp cut
              m + b"\x88\xe5\x20\x00\x00\x00",                      # MACsec SecTAG cut
              m + b"\x88\xe5\x00\x00\x00\x00\x00\x01\x08\x00" + bytes(10),  # shorter than the ICV
              m + b"\x88\xe7" + bytes(10),                          # PBB I-TAG cut
              m + b"\xd2\x8b\x00\x03\x00\x20" + bytes(8) + ip,      # Arista GRE-TAP subtype
              m + b"\xd2\x8b\x00\x01\x00\x99" + bytes(8) + b"\x08\x00" + ip,   # unknown version
              m + b"\x88\xe5\x80\x00\x00\x00\x00\x01\x08\x00" + ip + ICV,      # version bit set
              m + b"\x89\x09" * 40]                                 # a shim loop
    p = decoded(write(tmp_path, "shims_bad.pcap", frames))
    assert len(p) == 0
    assert (p.stats.malformed, p.stats.non_ip) == (8, 3)


def test_shim_frames_among_plain_ones_fast_equals_slow(tmp_path):
    """Many plain frames with shimmed ones between them: the fast path leaves exactly the
    shimmed frames to the slow path (``decoded`` compares every column)."""
    frames = []
    for k in range(400):
        p = IP(src=AGENT, dst="192.0.2.20") / UDP(sport=40000 + k, dport=15000) \
            / Raw(b"a" * (k % 40))
        frames.append(bytes(Ether(src=CMAC, dst=SMAC) / p))
        if k % 5 == 0:
            frames.append(macs(True) + SHIMS[sorted(SHIMS)[k % len(SHIMS)]](p))
    p = decoded(write(tmp_path, "mixed.pcap", frames))
    assert len(p) == 480
    assert p.cols["sport"].tolist()[:3] == [40000, 40000, 40001]


# ---------------------------------------------------------------------------- PBB (802.1ah)
BMAC1, BMAC2 = "02:bb:00:00:00:01", "02:bb:00:00:00:02"


def pbb(frame, bvid: int | None = 100, isid: int = 0x12345) -> bytes:
    """Backbone addresses, B-TAG (0x88A8, B-VID; none when ``bvid`` is None), I-TAG (0x88E7,
    I-SID), the customer frame."""
    if bvid is None:
        return bytes(Ether(dst=BMAC2, src=BMAC1, type=0x88E7)) + struct.pack("!I", isid) \
            + bytes(frame)
    b = bytes(Ether(dst=BMAC2, src=BMAC1, type=0x88A8))
    return b + struct.pack("!HHI", bvid, 0x88E7, isid) + bytes(frame)


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
def test_pbb_tls_connection(tmp_path, v6):
    pkts = conversation(v6)
    frames = [pbb(Ether(dst=SMAC if up else CMAC, src=CMAC if up else SMAC) / p)
              for up, p in pkts]
    path = write(tmp_path, "pbb.pcap", frames)
    check_tls_flow(path, pkts, v6)
    r = same_as_plain(tmp_path, path, pkts)
    assert r["vlan"] == 0                               # the B-VID is the backbone's, dropped
    assert tunnel_warning(path) == [f"pbb.pcap: decode: {len(pkts)} tunnelled packets decoded as "
                                    f"their inner packet, outer headers dropped (PBB {len(pkts)})"]


@pytest.mark.parametrize("btag", [True, False], ids=["btag", "no_btag"])
@pytest.mark.parametrize("tag", [False, True], ids=["inner_untagged", "inner_vlan42"])
def test_pbb_customer_frame_gives_vlan_and_broadcast(tmp_path, tag, btag):
    """The customer frame's VLAN tag and broadcast destination (the backbone destination is a
    unicast B-MAC): the agent's broadcast is an agent broadcast, the TCP flow keys on VLAN 42;
    with or without a B-TAG (whose B-VID is dropped with the backbone header)."""
    pkts = inner_packets(tag)
    path = write(tmp_path, "pbb_l2.pcap", [pbb(f, 100 if btag else None) for _, f in pkts])
    p = decoded(path)
    want = FLAG | INNER_VLAN if tag else 0
    assert p.cols["vlan"].tolist() == [want] * len(pkts)
    assert p.cols["l2_bcast"].tolist() == [b for b, _ in pkts]
    flows = assert_same(path, [300])
    bc = row(flows, proto="udp")
    vid = INNER_VLAN if tag else 0              # (the flow table's: the VLAN ID, Zeek's vlan)
    assert (bc["cast"], bc["purpose"], bc["verdict"], bc["orig_pkts"], bc["vlan"], bc["inner_vlan"]) == \
        ("broadcast", "agent_broadcast", "ok", 2, vid, 0)
    tcp = row(flows, proto="tcp")
    assert (tcp["resp_p"], tcp["sni"], tcp["vlan"]) == (13000, SNI, vid)
    same_with_tshark(path, flows)


# ---------------------------------------------------------------------------- WCCP GRE
CACHE, ROUTER = "198.51.100.7", "198.51.100.1"
REDIRECT = b"\x00\x00\x05\x11"          # WCCPv2 redirect header: service 0, buckets 5 / 17


def wccp(p, v2: bool, outer6: bool = False) -> bytes:
    o = IPv6(src="2001:db8:ff::1", dst="2001:db8:ff::7") if outer6 else IP(src=ROUTER, dst=CACHE)
    return bytes(Ether(src=CMAC, dst=SMAC) / o / GRE(proto=0x883E)
                 / Raw((REDIRECT if v2 else b"") + bytes(p)))


@pytest.mark.parametrize("outer6", [False, True], ids=["outer4", "outer6"])
@pytest.mark.parametrize("v2", [False, True], ids=["wccp1", "wccp2"])
def test_wccp_gre_decoded_as_inner_ipv4(tmp_path, v2, outer6):
    pkts = conversation()
    path = write(tmp_path, "wccp.pcap", [wccp(p, v2, outer6) for _, p in pkts])
    check_tls_flow(path, pkts)
    assert same_as_plain(tmp_path, path, pkts)["vlan"] == 0
    assert tunnel_warning(path) == [f"wccp.pcap: decode: {len(pkts)} tunnelled packets decoded as "
                                    f"their inner packet, outer headers dropped (GRE {len(pkts)})"]


def test_wccp_one_way_redirect(tmp_path):
    """A WCCP cache's capture: the client's packets arrive GRE-redirected (WCCPv2), the answers
    leave plain: one connection, both halves (it was the responder's half only)."""
    pkts = conversation()
    frames = [wccp(p, True) if up else bytes(Ether(src=SMAC, dst=CMAC) / p) for up, p in pkts]
    path = write(tmp_path, "wccp_oneway.pcap", frames)
    r = check_tls_flow(path, pkts)
    assert (r["orig_pkts"], r["resp_pkts"], r["conn_state"]) == (5, 3, "SF")
    same_as_plain(tmp_path, path, pkts)
    assert tunnel_warning(path) == ["wccp_oneway.pcap: decode: 5 tunnelled packets decoded as "
                                    "their inner packet, outer headers dropped (GRE 5)"]


def test_gre_payload_not_decoded_is_not_counted_as_tunnelled(tmp_path):
    """GRE carrying ARP, and WCCP GRE whose payload is no IPv4 packet: no row, and no claim
    that they were decoded as their inner packet (the warning counted them before)."""
    o = Ether(src=CMAC, dst=SMAC) / IP(src=ROUTER, dst=CACHE)
    frames = [bytes(o / GRE(proto=0x0806) / Raw(bytes(28))),
              bytes(o / GRE(proto=0x883E) / Raw(REDIRECT + bytes(30))),
              bytes(o / GRE(proto=0x883E) / Raw(b"\x00"))]             # header cut
    path = write(tmp_path, "gre_not_ip.pcap", frames)
    p = decoded(path)
    assert len(p) == 0 and (p.stats.non_ip, p.stats.malformed) == (1, 2)
    assert tunnel_warning(path) == []


# ---------------------------------------------------------------------------- GTP-U
ENB, UPF = "198.18.0.1", "198.18.0.2"
#: PDU session container (TS 38.415): length 1 (4 bytes), PDU type / QFI, next type 0
PSC = b"\x01\x10\x09\x00"


def gtpu(p, flags: int = 0x30, ext: bytes = b"", first_ext: int = 0, mtype: int = 255,
         teid: int = 0x1234) -> bytes:
    """GTP-U header + ``p``: optional fields (sequence 7, N-PDU 0, next extension type) when
    any of E, S, PN is set in ``flags``, then the extension headers ``ext``."""
    opt = struct.pack("!HBB", 7, 0, first_ext) if flags & 7 else b""
    body = opt + ext + bytes(p)
    return struct.pack("!BBHI", flags, mtype, len(body), teid) + body


def gtpu_frame(up: bool, g: bytes, sport: int = 2152, dport: int = 2152) -> bytes:
    o = IP(src=ENB, dst=UPF) if up else IP(src=UPF, dst=ENB)
    return bytes(Ether(src=CMAC, dst=SMAC) / o / UDP(sport=sport, dport=dport) / Raw(g))


GTP_CASES = {
    "plain": lambda p: gtpu(p),
    "seq": lambda p: gtpu(p, 0x32),
    "pdu_session": lambda p: gtpu(p, 0x34, PSC, 0x85),
    "two_ext": lambda p: gtpu(p, 0x36, b"\x02\x01\x02\x03\x04\x05\x06\x85" + PSC, 0x40),
}


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
@pytest.mark.parametrize("case", sorted(GTP_CASES))
def test_gtpu_g_pdu_decoded_as_inner_packet(tmp_path, case, v6):
    pkts = conversation(v6)
    path = write(tmp_path, "gtpu.pcap", [gtpu_frame(up, GTP_CASES[case](p)) for up, p in pkts])
    check_tls_flow(path, pkts, v6)
    assert same_as_plain(tmp_path, path, pkts)["vlan"] == 0
    assert tunnel_warning(path) == [f"gtpu.pcap: decode: {len(pkts)} tunnelled packets decoded as "
                                    "their inner packet, outer headers dropped "
                                    f"(GTP-U {len(pkts)})"]


def test_gtpu_other_messages_stay_udp_and_damage_is_malformed(tmp_path):
    """An echo request, an end marker, GTP' (PT 0) and a G-PDU carrying no IP packet stay the
    UDP datagram between the tunnel ends; a length shorter than the optional fields and an
    extension header of length 0 or running past the datagram are malformed."""
    ip = conversation()[0][1]
    frames = [gtpu_frame(True, gtpu(b"", 0x32, mtype=1)),
              gtpu_frame(True, gtpu(b"", 0x30, mtype=254)),
              gtpu_frame(True, gtpu(ip, 0x20)),
              gtpu_frame(True, gtpu(b"\x00" * 30)),
              gtpu_frame(True, struct.pack("!BBHI", 0x32, 255, 2, 1) + bytes(4) + bytes(ip)),
              gtpu_frame(True, gtpu(ip, 0x34, b"\x00\x00\x00\x00", 0x85)),
              gtpu_frame(True, gtpu(ip, 0x34, b"\x20\x00\x00\x00", 0x85))]
    p = decoded(write(tmp_path, "gtp_odd.pcap", frames))
    assert p.cols["proto"].tolist() == [17] * 4
    assert p.cols["dport"].tolist() == [2152] * 4
    assert p.cols["src_lo"].tolist()[0] & 0xFFFFFFFF == 0xC6120001       # 198.18.0.1
    assert p.stats.malformed == 3


def test_gtpu_source_port_only(tmp_path):
    """Either port 2152 makes it GTP-U (Wireshark's udp.port), as for L2TP."""
    pkts = conversation()
    frames = [gtpu_frame(up, gtpu(p), *((40000, 2152) if up else (2152, 40000)))
              for up, p in pkts]
    path = write(tmp_path, "gtpu_ports.pcap", frames)
    check_tls_flow(path, pkts)
    same_as_plain(tmp_path, path, pkts)


# ---------------------------------------------------------------------------- VXLAN-GPE
def gpe(nxt: int, flags: int = 0x0C, vni: int = 55) -> bytes:
    return struct.pack("!BBBBI", flags, 0, 0, nxt, vni << 8)


def gpe_frame(up: bool, g: bytes) -> bytes:
    o = IP(src="192.0.2.1", dst="192.0.2.2") if up else IP(src="192.0.2.2", dst="192.0.2.1")
    return bytes(Ether(src=CMAC, dst=SMAC) / o / UDP(sport=49152, dport=4790) / Raw(g))


@pytest.mark.parametrize("payload", ["ip", "ether"])
@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
def test_vxlan_gpe_inner_connection(tmp_path, v6, payload):
    pkts = conversation(v6)
    frames = []
    for up, p in pkts:
        if payload == "ip":
            g = gpe(2 if v6 else 1) + bytes(p)
        else:
            g = gpe(3) + bytes(Ether(src=CMAC if up else SMAC, dst=SMAC if up else CMAC) / p)
        frames.append(gpe_frame(up, g))
    path = write(tmp_path, "gpe.pcap", frames)
    check_tls_flow(path, pkts, v6)
    assert same_as_plain(tmp_path, path, pkts)["vlan"] == 0
    assert tunnel_warning(path) == [f"gpe.pcap: decode: {len(pkts)} tunnelled packets decoded as "
                                    f"their inner packet, outer headers dropped "
                                    f"(VXLAN-GPE {len(pkts)})"]


def test_vxlan_gpe_inner_ethernet_vlan_and_broadcast(tmp_path):
    pkts = inner_packets(True)
    path = write(tmp_path, "gpe_l2.pcap", [gpe_frame(True, gpe(3) + bytes(f)) for _, f in pkts])
    p = decoded(path)
    assert p.cols["vlan"].tolist() == [FLAG | INNER_VLAN] * len(pkts)
    assert p.cols["l2_bcast"].tolist() == [b for b, _ in pkts]
    flows = assert_same(path, [300])
    assert row(flows, proto="udp")["purpose"] == "agent_broadcast"
    same_with_tshark(path, flows)


def test_vxlan_gpe_other_payloads_stay_udp(tmp_path):
    """NSH (4), the P bit clear, another version: the UDP datagram stays; cut IP: malformed."""
    ip = bytes(conversation()[0][1])
    frames = [gpe_frame(True, gpe(4) + bytes(24)), gpe_frame(True, gpe(1, flags=0x08) + ip),
              gpe_frame(True, gpe(1, flags=0x1C) + ip), gpe_frame(True, gpe(1) + ip[:10])]
    p = decoded(write(tmp_path, "gpe_odd.pcap", frames))
    assert p.cols["dport"].tolist() == [4790] * 3
    assert p.stats.malformed == 1


def test_broadcast_bits_of_ip_tunnels(tmp_path):
    """GTP-U, WCCP and VXLAN-GPE carrying IP have no inner link layer: vlan 0, no broadcast,
    whatever the outer frame had (as every tunnel carrying IP directly)."""
    up, p = conversation()[0]
    o = Ether(src=CMAC, dst=BCAST) / Dot1Q(vlan=99)
    frames = [bytes(o / IP(src=ENB, dst=UPF) / UDP(sport=2152, dport=2152) / Raw(gtpu(p))),
              bytes(o / IP(src=ROUTER, dst=CACHE) / GRE(proto=0x883E) / Raw(REDIRECT + bytes(p))),
              bytes(o / IP(src=ROUTER, dst=CACHE) / UDP(sport=1, dport=4790)
                    / Raw(gpe(1) + bytes(p)))]
    pk = decoded(write(tmp_path, "ip_tunnels.pcap", frames))
    assert pk.cols["vlan"].tolist() == [0, 0, 0]
    assert pk.cols["l2_bcast"].tolist() == [False] * 3
    assert pk.cols["dport"].tolist() == [23100] * 3
