"""Newcomer 32: findings of a newcomer on a clean clone (see each test)."""
from __future__ import annotations

from scapy.all import DNS, DNSQR, DNSRR, ICMP, IP, UDP

from kscc_traffic import analyze, load_rules
from pcapbuild import eth
from checklistcheck import write as _write

RULES = load_rules()


# --- F1: a port unreachable sent by the flow's own client about the server's late answer -------
def _late_answer(tmp_path):
    """A client 192.0.2.10:40000 asks two resolvers, takes the first answer and refuses the slower
    one's with ICMP port unreachable (3/3) quoting that answer (resolver → client)."""
    q = DNS(id=7, rd=1, qd=DNSQR(qname="example.com"))
    a = DNS(id=7, qr=1, rd=1, ra=1, qd=DNSQR(qname="example.com"),
            an=DNSRR(rrname="example.com", rdata="203.0.113.80"))
    recs = []
    for k, res in enumerate(("198.51.100.53", "198.51.100.54")):
        recs.append((1000.0 + k * 0.0001, eth(IP(src="192.0.2.10", dst=res) / UDP(sport=40000, dport=53) / q)))
    fast = IP(src="198.51.100.53", dst="192.0.2.10") / UDP(sport=53, dport=40000) / a
    slow = IP(src="198.51.100.54", dst="192.0.2.10") / UDP(sport=53, dport=40000) / a
    err = IP(src="192.0.2.10", dst="198.51.100.54") / ICMP(type=3, code=3) / bytes(slow)
    recs += [(1000.03, eth(fast)), (1000.2, eth(slow)), (1000.2001, eth(err))]
    return _write(tmp_path, "late.pcap", recs)


def test_a_client_refusing_a_late_answer_is_not_the_server_unreachable(tmp_path):
    from kscc_traffic.unreachable import FROM_DESTINATION, delivery_error
    flows = analyze(_late_answer(tmp_path), RULES).set_index("resp_h")
    slow, fast = flows.loc["198.51.100.54"], flows.loc["198.51.100.53"]
    assert slow.icmp_unreachable == ("port unreachable (3/3) from 192.0.2.10, sent by the client itself, refusing "
                                     "the server's late answer (the client had stopped listening)")
    assert not slow.icmp_unreachable.endswith(FROM_DESTINATION)
    assert (slow.verdict, slow.reason, slow.detail) == ("ok", "", "")
    assert (fast.verdict, fast.icmp_unreachable) == ("ok", "")
    # (classify never sees it as an error that the datagram did not arrive)
    assert delivery_error(slow.icmp_unreachable) == ""
    assert delivery_error(slow.icmp_unreachable + "; packet too big (2/0) from 2001:db8::1") == ""
    assert delivery_error("port unreachable (3/3) from 198.51.100.54" + FROM_DESTINATION) \
        == "port unreachable (3/3) from 198.51.100.54" + FROM_DESTINATION
