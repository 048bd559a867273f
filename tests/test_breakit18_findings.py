"""Break-it round 18: findings F9 and F11 fixed (see each test)."""
from __future__ import annotations

import shutil
import struct

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP

from chunkcmp import assert_same, row
from pcapbuild import pcap_bytes
from kscc_traffic.analyze import analyze_file
from kscc_traffic.capture.decode import decode
from kscc_traffic.capture.files import read_frames
from kscc_traffic.rules import load_rules

RULES = load_rules()
HAVE_TSHARK = shutil.which("tshark") is not None
ENGINES = ["builtin", pytest.param("tshark", marks=pytest.mark.skipif(not HAVE_TSHARK, reason="no tshark"))]
ME, OTHER = b"\x02\0\0\0\0\x0a", b"\x02\0\0\0\0\x0b"
OUTGOING, BROADCAST, HOST = 4, 1, 0


def _cooked(linktype: int, ptype: int, mac: bytes, l3: bytes) -> bytes:
    """``l3`` (an IPv4 datagram) behind a LINUX_SLL (113) or LINUX_SLL2 (276) header of packet
    type ``ptype``, as ``tcpdump -i any`` writes it (the source address only)."""
    if linktype == 113:
        return struct.pack(">HHH8sH", ptype, 1, 6, mac + b"\0\0", 0x800) + l3
    return struct.pack(">HHIHBB8s", 0x800, 0, 3, 1, ptype, 6, mac + b"\0\0") + l3


def _dgram(src: str, dst: str, sport: int, dport: int = 15000) -> bytes:
    return bytes(IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / (b"k" * 60))


def _write(tmp_path, linktype, recs, name="c.pcap"):
    p = tmp_path / name
    p.write_bytes(pcap_bytes([(t, _cooked(linktype, pt, mac, l3)) for t, pt, mac, l3 in recs], linktype))
    return p


def _flows(path, engine):
    return assert_same(path, [150, 300]) if engine == "builtin" else analyze_file(path, RULES, engine).flows


@pytest.mark.parametrize("linktype", [113, 276], ids=["sll", "sll2"])
def test_the_cooked_header_tells_which_frames_the_capturing_host_sent(tmp_path, linktype):
    """F9: ``l2_out`` is packet type 4 (OUTGOING), on the fast and the slow path; the other
    types are not (1 BROADCAST gives ``l2_bcast``)."""
    path = _write(tmp_path, linktype, [
        (1000.0, OUTGOING, ME, _dgram("192.0.2.10", "192.0.2.255", 51001)),
        (1000.1, BROADCAST, OTHER, _dgram("192.0.2.11", "192.0.2.255", 51000)),
        (1000.2, HOST, OTHER, _dgram("192.0.2.11", "192.0.2.10", 51002)),
        # (IPv4 options: the slow path)
        (1000.3, OUTGOING, ME, bytes(IP(src="192.0.2.10", dst="192.0.2.11", options=b"\x01\x01\x01\x00")
                                     / UDP(sport=51003, dport=15000) / b"x"))])
    fr = read_frames(path)
    for fast in (True, False):
        c = decode(fr, fast=fast).cols
        assert c["l2_out"].tolist() == [True, False, False, True], fast
        assert c["l2_bcast"].tolist() == [False, True, False, False], fast


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("linktype", [113, 276], ids=["sll", "sll2"])
def test_a_datagram_the_agent_sent_to_its_subnets_broadcast_is_the_agents_broadcast(tmp_path, linktype, engine):
    """F9: on ``-i any`` the agent's own datagram to 192.0.2.255:15000 (packet type 4: no
    link-layer destination) was ``unicast`` ``gateway_udp``, "data from the connection gateway".
    The broadcast address of a subnet of /24 or larger that holds the sender is a broadcast
    (Linux sends it as one): 192.0.2.255 from 192.0.2.10, 10.1.255.255 from 10.1.0.3 (a /16).
    An address that is no such broadcast of the sender's stays unicast: 10.1.0.255 from
    10.1.5.3 (another /24, or a host of a /16), 192.0.2.127 from 192.0.2.10 (a /25's, not
    told apart from a host without other evidence); an address that answers (a host), or a
    TCP connection (no broadcast address takes one), stays unicast."""
    path = _write(tmp_path, linktype, [
        (1000.0, OUTGOING, ME, _dgram("192.0.2.10", "192.0.2.255", 51001)),
        (1001.0, OUTGOING, ME, _dgram("10.1.0.3", "10.1.255.255", 51002)),
        (1002.0, OUTGOING, ME, _dgram("10.1.5.3", "10.1.0.255", 51003)),
        (1003.0, OUTGOING, ME, _dgram("192.0.2.10", "192.0.2.127", 51004)),
        (1004.0, HOST, OTHER, _dgram("192.0.2.20", "192.0.2.10", 51005)),
        # an address that answers is a host (10.2.0.255 of a /16), whatever it ends in
        (1005.0, OUTGOING, ME, _dgram("10.2.0.3", "10.2.0.255", 51006)),
        (1005.1, HOST, OTHER, _dgram("10.2.0.255", "10.2.0.3", 15000, 51006)),
        # and no broadcast address takes a TCP connection
        (1006.0, OUTGOING, ME, bytes(IP(src="192.0.2.10", dst="192.0.2.255") / TCP(sport=51007, dport=15000)))])
    flows = _flows(path, engine)
    got = [(r.resp_h, r.cast, r.purpose, r.resp_pkts) for r in flows.itertuples()]
    assert got == [("192.0.2.255", "broadcast", "agent_broadcast", 0),
                   ("10.1.255.255", "broadcast", "agent_broadcast", 0),
                   ("10.1.0.255", "unicast", "gateway_udp", 0),
                   ("192.0.2.127", "unicast", "gateway_udp", 0),
                   ("192.0.2.10", "unicast", "gateway_udp", 0),
                   ("10.2.0.255", "unicast", "gateway_udp", 1),
                   ("192.0.2.255", "unicast", "", 0)]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("linktype", [113, 276], ids=["sll", "sll2"])
def test_a_received_broadcast_to_the_same_address_makes_the_sent_one_a_broadcast(tmp_path, linktype, engine):
    """F9: another agent's datagram to 192.0.2.127 received as a link-layer broadcast (packet
    type 1) shows the address is the subnet's broadcast (a /25): the agent's own datagrams to
    it, sent after that frame or while their flow goes on, are broadcasts too. A received copy
    only after the sent flow ended is not read back (the flow was judged by then: the same in
    chunks and whole)."""
    path = _write(tmp_path, linktype, [
        (1000.0, BROADCAST, OTHER, _dgram("192.0.2.11", "192.0.2.127", 51000)),
        (1001.0, OUTGOING, ME, _dgram("192.0.2.10", "192.0.2.127", 51001)),
        # (sent first, the received copy during the flow)
        (1002.0, OUTGOING, ME, _dgram("192.0.2.10", "192.0.2.127", 51002)),
        (1002.5, BROADCAST, OTHER, _dgram("192.0.2.12", "192.0.2.127", 51003)),
        (1003.0, OUTGOING, ME, _dgram("192.0.2.10", "192.0.2.127", 51002)),
        # another address: its received copy comes after the sent flow's last datagram
        (1004.0, OUTGOING, ME, _dgram("192.0.2.10", "192.0.2.63", 51004)),
        (1005.0, BROADCAST, OTHER, _dgram("192.0.2.13", "192.0.2.63", 51005))])
    flows = _flows(path, engine)
    got = [(r.orig_p, r.cast, r.purpose) for r in flows.itertuples()]
    assert got == [(51000, "broadcast", "agent_broadcast"), (51001, "broadcast", "agent_broadcast"),
                   (51002, "broadcast", "agent_broadcast"), (51003, "broadcast", "agent_broadcast"),
                   (51004, "unicast", "gateway_udp"), (51005, "broadcast", "agent_broadcast")]
    assert row(flows, orig_p=51002).orig_pkts == 2


def test_a_broadcast_in_an_earlier_chunk_is_evidence_for_a_later_one(tmp_path):
    """F9: the evidence is carried from chunk to chunk: a received broadcast to 192.0.2.127,
    then many unrelated datagrams, then the agent's own datagram to that address."""
    recs = [(1000.0, BROADCAST, OTHER, _dgram("192.0.2.11", "192.0.2.127", 51000))]
    recs += [(1000.1 + k * 0.01, HOST, OTHER, _dgram("198.51.100.7", "192.0.2.10", 40000 + k, 5353))
             for k in range(40)]
    recs.append((1002.0, OUTGOING, ME, _dgram("192.0.2.10", "192.0.2.127", 51001)))
    flows = assert_same(_write(tmp_path, 276, recs), [200, 400, 1000])
    assert row(flows, orig_p=51001).cast == "broadcast" and row(flows, orig_p=51001).purpose == "agent_broadcast"


def test_an_ethernet_frame_keeps_the_cast_its_destination_address_gives(tmp_path):
    """F9: the link layer that records a destination decides: an Ethernet unicast to
    192.0.2.255 (a host of a larger network) stays unicast, whatever the capture holds."""
    from pcapbuild import eth
    recs = [(1000.0, bytes(eth(IP(src="192.0.2.11", dst="192.0.2.255") / UDP(sport=51000, dport=15000) / b"x",
                               dst="ff:ff:ff:ff:ff:ff"))),
            (1001.0, bytes(eth(IP(src="192.0.2.10", dst="192.0.2.255") / UDP(sport=51001, dport=15000) / b"x")))]
    p = tmp_path / "e.pcap"
    p.write_bytes(pcap_bytes(recs))
    flows = assert_same(p, [100])
    assert [(r.orig_p, r.cast, r.purpose) for r in flows.itertuples()] == \
        [(51000, "broadcast", "agent_broadcast"), (51001, "unicast", "gateway_udp")]


# ---------------------------------------------------------------------------------------------
# F11: ICMP flows keyed by type and counterpart type (or code), as Zeek

def _icmp_recs():
    from pcapbuild import eth
    from scapy.layers.inet import ICMP, TCP
    from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6ND_NA, ICMPv6ND_NS, IPv6
    agent, server, router = "192.0.2.10", "203.0.113.10", "192.0.2.1"
    up = IP(src=agent, dst=server) / TCP(sport=50014, dport=23101, flags="S", seq=100)
    quote = bytes(up)[:28]
    recs = [(1000.0, eth(up)),
            (1000.1, eth(IP(src=server, dst=agent) / TCP(sport=23101, dport=50014, flags="SA", seq=900, ack=101))),
            (1000.2, eth(IP(src=agent, dst=server) / TCP(sport=50014, dport=23101, flags="A", seq=101, ack=901))),
            (1001.0, eth(IP(src=router, dst=agent) / ICMP(type=4, code=0) / quote)),
            (1001.1, eth(IP(src=router, dst=agent) / ICMP(type=5, code=1, gw="192.0.2.2") / quote)),
            (1001.2, eth(IP(src=router, dst=agent) / ICMP(type=11, code=0) / quote)),
            (1002.0, eth(IP(src=agent, dst=router) / ICMP(type=8, id=7, seq=1) / b"ping")),
            (1002.01, eth(IP(src=router, dst=agent) / ICMP(type=0, id=7, seq=1) / b"ping")),
            (1002.5, eth(IP(src=agent, dst=router) / ICMP(type=13, id=8))),
            (1002.51, eth(IP(src=router, dst=agent) / ICMP(type=14, id=8))),
            (1003.0, eth(IPv6(src="2001:db8::10", dst="2001:db8::1") / ICMPv6EchoRequest(id=3))),
            (1003.01, eth(IPv6(src="2001:db8::1", dst="2001:db8::10") / ICMPv6EchoReply(id=3))),
            (1003.5, eth(IPv6(src="2001:db8::10", dst="2001:db8::1") / ICMPv6ND_NS(tgt="2001:db8::1"))),
            (1003.51, eth(IPv6(src="2001:db8::1", dst="2001:db8::10") / ICMPv6ND_NA(tgt="2001:db8::1")))]
    return [(t, bytes(p)) for t, p in recs]


@pytest.mark.parametrize("engine", ENGINES)
def test_icmp_messages_key_by_type_and_counterpart_or_code(tmp_path, engine):
    """F11: a source quench (4/0) and a redirect (5/1) from one router to one host were one ICMP
    flow of 2 packets. Zeek keys ICMP by type and, for a request or reply, the counterpart type
    (echo 8 <-> 0, timestamp 13 <-> 14, ICMPv6 echo 128 <-> 129, neighbor solicitation 135 <->
    136: one flow each way), else the code. The time exceeded (11/0) quoting the TCP connection
    stays attached to it."""
    p = tmp_path / "icmp.pcap"
    p.write_bytes(pcap_bytes(_icmp_recs()))
    flows = _flows(p, engine)
    got = [(r.proto, r.orig_h, r.orig_p, r.resp_h, r.resp_p, r.orig_pkts, r.resp_pkts) for r in flows.itertuples()]
    assert got == [("tcp", "192.0.2.10", 50014, "203.0.113.10", 23101, 2, 1),
                   ("icmp", "192.0.2.1", 4, "192.0.2.10", 0, 1, 0),
                   ("icmp", "192.0.2.1", 5, "192.0.2.10", 1, 1, 0),
                   ("icmp", "192.0.2.10", 8, "192.0.2.1", 0, 1, 1),
                   ("icmp", "192.0.2.10", 13, "192.0.2.1", 14, 1, 1),
                   ("icmp", "2001:db8::10", 128, "2001:db8::1", 129, 1, 1),
                   ("icmp", "2001:db8::10", 135, "2001:db8::1", 136, 1, 1)]
    assert row(flows, proto="tcp").icmp_unreachable == "TTL exceeded in transit (11/0) from 192.0.2.1"
    assert len(set(flows["uid"])) == len(flows)


def test_icmp_ports_follow_zeek():
    """F11: ``icmp_ports`` gives Zeek's conn.log id.orig_p/id.resp_p for ICMP and ICMPv6."""
    from kscc_traffic.flows import icmp_ports
    import numpy as np
    t, o = icmp_ports(np.array([1, 1, 1, 1, 1, 58, 58, 58]), np.array([8, 0, 3, 11, 17, 128, 1, 136]),
                      np.array([0, 0, 13, 1, 0, 0, 4, 0]))
    assert t.tolist() == [8, 0, 3, 11, 17, 128, 1, 136]
    assert o.tolist() == [0, 8, 13, 1, 18, 129, 4, 135]


# ---------------------------------------------------------------------------------------------
# F11: records of captured length 0 are empty records, not a snaplen cut

def _blk(kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


def _epb(us: int, data: bytes, wirelen: int) -> bytes:
    return _blk(6, struct.pack("<IIIII", 0, us >> 32, us & 0xFFFFFFFF, len(data), wirelen) + data)


def _empty_records_capture(tmp_path, cut: bool = False):
    """Three UDP datagrams whole, two EPBs of captured length 0 (original length 60) between
    them; with ``cut`` one more datagram cut to 40 of its 150 bytes."""
    from pcapbuild import eth
    frames = [bytes(eth(IP(src="192.0.2.10", dst="203.0.113.53") / UDP(sport=40000 + k, dport=53) / (b"q" * 20)))
              for k in range(3)]
    blocks = [_blk(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)),
              _blk(1, struct.pack("<HHI", 1, 0, 65535)),
              _epb(1_000_000_000, frames[0], len(frames[0])), _epb(1_000_000_100, b"", 60),
              _epb(1_000_000_200, frames[1], len(frames[1])), _epb(1_000_000_300, b"", 60),
              _epb(1_000_000_400, frames[2], len(frames[2]))]
    if cut:
        big = bytes(eth(IP(src="192.0.2.10", dst="203.0.113.53") / UDP(sport=40009, dport=53) / (b"q" * 108)))
        blocks.append(_epb(1_000_000_500, big[:40], len(big)))
    p = tmp_path / "empty.pcapng"
    p.write_bytes(b"".join(blocks))
    return p


EMPTY_LINE = ("empty.pcapng: 2 of the {n} frames were empty records (captured length 0: no byte of the packet "
              "kept by the tool that wrote the file; not a snaplen cut): nothing in them to analyse")


@pytest.mark.parametrize("engine", ENGINES)
def test_records_of_captured_length_0_are_empty_records_not_a_snaplen_cut(tmp_path, engine):
    """F11: EPBs of captured length 0 were "cut by the snaplen (at most 0 bytes kept of a
    frame)", and the builtin decoder counted them as malformed too (the tshark engine said
    nothing of them). Both engines now count them as empty records in a line of their own; a
    real cut is still told, with its own count and length."""
    a = analyze_file(_empty_records_capture(tmp_path), RULES, engine)
    assert len(a.flows) == 3
    assert a.warnings == [EMPTY_LINE.format(n=5)]
    (st,) = a.stats.values()
    assert (st.empty_records, st.cut_frames, st.malformed) == (2, 0, 0)
    a = analyze_file(_empty_records_capture(tmp_path, cut=True), RULES, engine)
    assert a.warnings[:2] == [
        "empty.pcapng: 1 of the 6 frames was cut by the snaplen (at most 40 bytes kept of a frame): TLS, HTTP "
        "and DNS checks see only the bytes kept (column payload_cut)", EMPTY_LINE.format(n=6)]
    (st,) = a.stats.values()
    assert (st.empty_records, st.cut_frames, st.cut_caplen) == (2, 1, 40)


def test_empty_records_are_counted_once_in_chunks(tmp_path):
    """F11: the chunked reading counts them as the whole-file one (each chunk's records once)."""
    p = _empty_records_capture(tmp_path)
    assert_same(p, [120, 200])
    st = read_frames(p).stats
    assert (st.records, st.empty_records, st.cut_frames) == (5, 2, 0)
    assert decode(read_frames(p)).stats.malformed == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_a_sent_datagram_whose_destination_sends_an_icmp_error_is_not_a_broadcast(tmp_path, engine):
    """Break-it 20 F1: 198.18.0.255 is a host of a /16 (198.18.0.0/15 here): the datagram the
    agent sent it on ``-i any`` looks like a /24 broadcast, but the port unreachable came from
    198.18.0.255 itself, and no broadcast address sends: unicast, ``gateway_udp`` blocked by
    the destination's own refusal (it was ``agent_broadcast``, "allow inbound UDP 15000
    broadcast"). The same datagram without the error stays a broadcast."""
    sent = _dgram("198.18.0.10", "198.18.0.255", 51001)
    err = bytes(IP(src="198.18.0.255", dst="198.18.0.10") / ICMP(type=3, code=3) / sent[:28])
    path = _write(tmp_path, 113, [(1000.0, OUTGOING, ME, sent), (1000.01, HOST, OTHER, err)])
    f = _flows(path, engine)
    u = f[f["proto"] == "udp"].iloc[0]
    assert (u.cast, u.purpose, u.verdict, u.reason) == ("unicast", "gateway_udp", "blocked", "icmp_unreachable")
    assert u.icmp_unreachable == "port unreachable (3/3) from 198.18.0.255, the destination itself"
    alone = _flows(_write(tmp_path, 113, [(1000.0, OUTGOING, ME, sent)], "alone.pcap"), engine)
    assert (alone.iloc[0].cast, alone.iloc[0].purpose) == ("broadcast", "agent_broadcast")


@pytest.mark.parametrize("engine", ENGINES)
def test_an_address_that_sends_is_a_host_not_a_broadcast(tmp_path, engine):
    """Break-it 20 F2: 198.18.0.255 (a host of the /15) that sends packets of its own, before
    or up to 60 s after the agent's datagram to it, is a host: the datagram is unicast
    (gateway_udp), not the agents' broadcast, in every batch split (chunked == whole file).
    One that sends only later (100 s) leaves the datagram a broadcast (198.18.3.255: a /22's)."""
    path = _write(tmp_path, 113, [
        (1000.0, OUTGOING, ME, _dgram("198.18.0.10", "198.18.0.255", 51001)),
        (1001.0, HOST, OTHER, _dgram("198.18.0.255", "198.18.0.10", 52000, 50000)),
        (1200.0, OUTGOING, ME, _dgram("198.18.0.10", "198.18.3.255", 51002)),
        (1300.0, HOST, OTHER, _dgram("198.18.3.255", "198.18.0.10", 52001, 50001))])
    f = _flows(path, engine)
    casts = {(r.resp_h, r.resp_p): (r.cast, r.purpose) for r in f.itertuples(index=False)}
    assert casts[("198.18.0.255", 15000)] == ("unicast", "gateway_udp")
    assert casts[("198.18.3.255", 15000)] == ("broadcast", "agent_broadcast")
