"""IPv6 routing headers (break-it 15 F6): a packet whose routing header still has segments left
is keyed on its final destination (type 0: the last address of the list; type 4, an SRv6 Segment
Routing Header: Segment List[0]), as Zeek does and as the destination's transport sees it (the
checksum pseudo-header, RFC 8200 §8.1). Before, the agent's packets to the first segment and the
server's answers from the final one were two flows: a blocked one and a partial one."""
from __future__ import annotations

import ipaddress
import shutil

import pytest

pytest.importorskip("scapy")

from scapy.all import (  # noqa: E402
    ICMPv6DestUnreach, IPv6, IPv6ExtHdrRouting, IPv6ExtHdrSegmentRouting, TCP, Ether)

from pcapbuild import eth, pcap_bytes, tcp_session  # noqa: E402

from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.capture.decode import decode  # noqa: E402
from kscc_traffic.capture.files import read_frames  # noqa: E402
from kscc_traffic.protocols.icmp import quoted_datagram  # noqa: E402
from kscc_traffic.rules import load_rules  # noqa: E402

RULES = load_rules()
C6, S6, SID = "2001:db8:1::10", "2001:db8:2::10", "2001:db8:ff::1"
T0 = 1_764_500_000.0
ENGINES = ["builtin"] + (["tshark"] if shutil.which("tshark") else [])


def _rh0(segleft=1):
    return IPv6ExtHdrRouting(type=0, addresses=[S6], segleft=segleft)


def _srh(segleft=1):
    return IPv6ExtHdrSegmentRouting(addresses=[S6, SID], segleft=segleft, lastentry=1)


def _routed(recs, rh):
    """``recs`` of a TCP session with every client packet sent to SID with routing header
    ``rh()`` naming S6 as the final destination."""
    out = []
    for ts, pkt in recs:
        ip = pkt[IPv6]
        if ip.src == C6:
            pkt = Ether(src=pkt.src, dst=pkt.dst) / IPv6(src=C6, dst=SID) / rh() / ip.payload.copy()
        out.append((ts, pkt))
    return out


def _session(rh, tmp_path, name):
    recs = _routed(tcp_session((C6, 50000), (S6, 23101), t0=T0, c_data=b"\x16\x03\x01" + bytes(60),
                               s_data=b"\x16\x03\x03" + bytes(60)), rh)
    p = tmp_path / name
    p.write_bytes(pcap_bytes(recs))
    return p


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("rh", [_rh0, _srh], ids=["rh0", "srh"])
def test_connection_with_routing_header_is_one_flow(tmp_path, rh, engine):
    path = _session(rh, tmp_path, f"{rh.__name__}.pcap")
    f = analyze_file(path, RULES, engine=engine).flows
    assert len(f) == 1, f[["orig_h", "resp_h", "conn_state", "verdict"]]
    r = f.iloc[0]
    assert (r.orig_h, r.resp_h, r.resp_p, r.conn_state, r.orig_pkts, r.resp_pkts) == \
        (C6, S6, 23101, "SF", 5, 3)
    assert r.purpose == "agent_connection" and r.verdict != "blocked"


def _dst(p, i=0):
    return str(ipaddress.IPv6Address((int(p["dst_hi"][i]) << 64) | int(p["dst_lo"][i])))


@pytest.mark.parametrize("rh, final", [
    (lambda: _rh0(1), S6), (lambda: _srh(1), S6),
    # no segment left: the header's destination is the final one already
    (lambda: _rh0(0), SID), (lambda: _srh(0), SID),
    # Mobile IPv6 (type 2, one segment left): its home address, as Wireshark's conversations
    # and Zeek key it (the other direction's Home Address option is read too: break-it 28)
    (lambda: IPv6ExtHdrRouting(type=2, addresses=[S6], segleft=1), S6),
    (lambda: IPv6ExtHdrRouting(type=2, addresses=[S6], segleft=0), SID),
])
def test_decoder_final_destination(tmp_path, rh, final):
    pkt = eth(IPv6(src=C6, dst=SID) / rh() / TCP(sport=50000, dport=23101, flags="S"))
    p = tmp_path / "one.pcap"
    p.write_bytes(pcap_bytes([(T0, pkt)]))
    fr = read_frames(p)
    for fast in (True, False):
        d = decode(fr, fast=fast)
        assert len(d) == 1 and _dst(d) == final and int(d["dport"][0]) == 23101


def test_cut_routing_header_keeps_the_header_destination(tmp_path):
    """A routing header the snaplen cut before its address: the header's destination."""
    raw = bytes(eth(IPv6(src=C6, dst=SID) / _rh0() / TCP(sport=50000, dport=23101, flags="S")))
    p = tmp_path / "cut.pcap"
    p.write_bytes(pcap_bytes([(T0, raw[:14 + 40 + 16])]))
    d = decode(read_frames(p))
    assert len(d) == 1 and _dst(d) == SID


@pytest.mark.parametrize("engine", ENGINES)
def test_icmp_error_quoting_a_routed_syn_is_attached(tmp_path, engine):
    """An ICMPv6 error quoting a SYN that carries the routing header names the final destination
    too (the quote is read with the decoder's rule), so it is attached to the one flow."""
    syn = IPv6(src=C6, dst=SID) / _rh0() / TCP(sport=50000, dport=23101, flags="S", seq=1)
    q = quoted_datagram(bytes(syn), 6)
    assert (q.dst, q.dport) == (S6, 23101)
    recs = []
    for k in range(3):
        recs.append((T0 + k, eth(syn)))
        recs.append((T0 + k + 0.01, eth(IPv6(src="2001:db8:1::1", dst=C6) / ICMPv6DestUnreach(code=1) / bytes(syn))))
    p = tmp_path / "icmp.pcap"
    p.write_bytes(pcap_bytes(recs))
    f = analyze_file(p, RULES, engine=engine).flows
    assert len(f) == 1
    r = f.iloc[0]
    assert (r.resp_h, r.verdict, r.reason) == (S6, "blocked", "icmp_unreachable")
    assert "2001:db8:1::1" in r.icmp_unreachable
