"""Break-it round 18: findings F9 and F11 fixed (see each test)."""
from __future__ import annotations

import shutil
import struct

import pytest
from scapy.layers.inet import IP, UDP

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
    told apart from a host without other evidence)."""
    path = _write(tmp_path, linktype, [
        (1000.0, OUTGOING, ME, _dgram("192.0.2.10", "192.0.2.255", 51001)),
        (1001.0, OUTGOING, ME, _dgram("10.1.0.3", "10.1.255.255", 51002)),
        (1002.0, OUTGOING, ME, _dgram("10.1.5.3", "10.1.0.255", 51003)),
        (1003.0, OUTGOING, ME, _dgram("192.0.2.10", "192.0.2.127", 51004)),
        (1004.0, HOST, OTHER, _dgram("192.0.2.20", "192.0.2.10", 51005))])
    flows = _flows(path, engine)
    got = [(r.resp_h, r.cast, r.purpose, r.verdict) for r in flows.itertuples()]
    assert got == [("192.0.2.255", "broadcast", "agent_broadcast", "ok"),
                   ("10.1.255.255", "broadcast", "agent_broadcast", "ok"),
                   ("10.1.0.255", "unicast", "gateway_udp", "ok"),
                   ("192.0.2.127", "unicast", "gateway_udp", "ok"),
                   ("192.0.2.10", "unicast", "gateway_udp", "ok")]


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
