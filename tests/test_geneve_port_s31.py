"""Other traffic on UDP port 6081 is not Geneve (newcomer 2 31 F5): a DNS answer to a client
port 6081 was taken for a Geneve header (a transaction ID below 0x4000, flags 0x8180 read as a
protocol type), then skipped as malformed or counted as not IP: the query looked unanswered
(blocked, no_answer) where tshark shows both packets. A Geneve header has its reserved bits zero
(RFC 8926 §3.4), a protocol type the payload is read for, and options within the datagram; else
the datagram is the UDP row it is. Real Geneve: tests/test_decode_more_encaps.py."""
from __future__ import annotations

import pytest
from scapy.all import DNS, DNSQR, DNSRR, IP, UDP, Ether

import kscc_traffic
from decodecheck import write
from kscc_traffic.analyze import analyze_file

RULES = kscc_traffic.load_rules()
C, R = "192.0.2.10", "198.51.100.53"


def _exchange(txid: int, answers: int, rcode: int = 0) -> list[bytes]:
    q = DNS(id=txid, rd=1, qd=DNSQR(qname="eu1.ksc.kaspersky.com"))
    a = DNS(id=txid, qr=1, rd=1, ra=1, rcode=rcode, qd=DNSQR(qname="eu1.ksc.kaspersky.com"),
            an=[DNSRR(rrname="eu1.ksc.kaspersky.com", rdata="203.0.113.10")] if answers else [])
    return [bytes(Ether() / IP(src=C, dst=R) / UDP(sport=6081, dport=53) / q),
            bytes(Ether() / IP(src=R, dst=C) / UDP(sport=53, dport=6081) / a)]


@pytest.mark.parametrize("txid, answers, rcode", [(0x0100, 1, 0), (0x0040, 0, 3), (0x3f00, 0, 3), (0x0000, 0, 0)])
def test_dns_answer_to_client_port_6081_is_an_answer(tmp_path, txid, answers, rcode):
    # (on 5c3bc0c: "frames too short or inconsistent to decode (malformed) skipped" or not IP,
    # the flow S0-like with resp_pkts 0, dns blocked no_answer)
    path = write(tmp_path, "dns6081.pcap", _exchange(txid, answers, rcode))
    a = analyze_file(path, RULES)
    flows = a.flows
    assert len(flows) == 1, flows
    r = flows.iloc[0]
    assert (r["orig_p"], r["resp_p"], r["orig_pkts"], r["resp_pkts"]) == (6081, 53, 1, 1)
    assert not (r["verdict"] == "blocked" and r["reason"] == "no_answer")
    assert not [w for w in a.warnings if "malformed" in w or "not IP" in w], a.warnings


TSHARK = __import__("shutil").which("tshark")


@pytest.mark.skipif(not TSHARK, reason="tshark is not installed")
@pytest.mark.parametrize("txid, answers, rcode", [(0x0100, 1, 0), (0x0040, 0, 3)])
def test_dns_answer_to_client_port_6081_with_the_tshark_engine(tmp_path, txid, answers, rcode):
    """The same exchange through the tshark engine: one flow, both packets (Wireshark reads the
    DNS port first here, the lower one)."""
    path = write(tmp_path, "dns6081.pcap", _exchange(txid, answers, rcode))
    a = analyze_file(path, RULES, engine="tshark")
    r = a.flows.iloc[0]
    assert len(a.flows) == 1 and (r["orig_p"], r["resp_p"], r["orig_pkts"], r["resp_pkts"]) == (6081, 53, 1, 1)


def _ksn_exchange() -> list[bytes]:
    """A client's UDP datagram from port 6081 to a distribution point's KSN proxy (UDP 15111) and
    the answer back to 6081: not Geneve (the answer's first byte 0x9b: version 2; the request's
    reserved byte 7 set), as a datagram between a high port and 6081 reads in Wireshark, which
    dissects the lower port first (Geneve, whatever the bytes)."""
    c, s = "192.0.2.10", "198.51.100.20"
    return [bytes(Ether() / IP(src=c, dst=s) / UDP(sport=6081, dport=15111) / (bytes.fromhex("5a3c0102") + bytes(range(40)))),
            bytes(Ether() / IP(src=s, dst=c) / UDP(sport=15111, dport=6081) / (bytes.fromhex("9b21aa55") + bytes(range(60)))),
            # (reserved bits of the flags byte set, protocol type IPv4: not Geneve either)
            bytes(Ether() / IP(src=s, dst=c) / UDP(sport=15111, dport=6081)
                  / (bytes.fromhex("00010800000001") + b"\0" + bytes(IP(src="203.0.113.1", dst="203.0.113.2") / UDP())))]


@pytest.mark.parametrize("engine", ["builtin"] + (["tshark"] if TSHARK else []))
def test_an_answer_to_client_port_6081_that_is_no_geneve_is_the_answer(tmp_path, engine):
    # (tshark engine on 649be23: the answers dropped as a Geneve tunnel carrying no IP packet,
    # the flow S0 resp_pkts 0, blocked no_answer 'UDP request without a reply'; the builtin
    # decoder kept them since c8f6c0a)
    path = write(tmp_path, "ksn6081.pcap", _ksn_exchange())
    a = analyze_file(path, RULES, engine=engine)
    assert len(a.flows) == 1, a.flows
    r = a.flows.iloc[0]
    assert (r["orig_p"], r["resp_p"], r["orig_pkts"], r["resp_pkts"]) == (6081, 15111, 1, 2)
    assert r["verdict"] != "blocked"
    assert not [w for w in a.warnings if "Geneve" in w or "not IP" in w], a.warnings
