"""Newcomer pass s60, findings #1 and #2: DNS advice that follows what the capture shows.

#1: a capture holding one direction only (every TCP flow's packets acknowledge the other side's,
which are not in it) warned that "a DNS query's answer too" may be missing, yet its unanswered
DNS query was advised "allow DNS (UDP and TCP 53) …": now :func:`kscc_traffic.report.dns_one_way_fix`
(capture both directions before changing DNS), in the terminal (whole and chunked) and HTML alike.

#2: queries answered by ICMP port unreachable from the resolver's own address (nothing listens
on 53 there: a wrong resolver address, its DNS service stopped) were advised "allow DNS" in the
firewall: now :func:`kscc_traffic.report.dns_closed_fix` (the address and the service).
"""
from __future__ import annotations

import html

from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import ICMP, IP, TCP, UDP

from chunkcmp import RULES, write
from pcapbuild import CLIENT_MAC, SERVER_MAC, dns_answer, eth, syn_attempts

from kscc_traffic.analyze import analyze_file
from kscc_traffic.html_report import render_html
from kscc_traffic.report import dns_closed_fix, dns_one_way_fix, one_way_capture, render_table

CLIENT, RESOLVER, SERVER = "192.0.2.10", "192.0.2.53", "203.0.113.10"
NAME = "eu1.ksc.kaspersky.com"
ALLOW_DNS = "allow DNS (UDP and TCP 53) from the clients to their resolver"


def _query(port: int, t: float):
    q = DNS(id=port, rd=1, qd=DNSQR(qname=NAME))
    return t, eth(IP(src=CLIENT, dst=RESOLVER) / UDP(sport=port, dport=53) / q)


def _outbound_only(port: int, sport: int, t: float):
    """The agent's side of a TLS connection (SYN, its ACK of an unseen SYN-ACK, its data, its ACK
    of 3,000 unseen bytes, its FIN): none of the server's packets."""
    seq, ack = 1000, 5001
    c = lambda flags, data=b"", **kw: eth(IP(src=CLIENT, dst=SERVER) / TCP(sport=sport, dport=port, flags=flags,  # noqa: E731
                                                                              **kw) / data)
    return [(t, c("S", seq=seq)), (t + 0.02, c("A", seq=seq + 1, ack=ack)),
            (t + 0.03, c("PA", b"\x16\x03\x01\x00\x05hello", seq=seq + 1, ack=ack)),
            (t + 0.10, c("A", seq=seq + 11, ack=ack + 3000)), (t + 0.20, c("FA", seq=seq + 11, ack=ack + 3000))]


def _one_way_capture_recs(answered_dns: bool = False):
    recs = [_query(41000, 1000.0)]
    if answered_dns:
        other = "ksn-a.kaspersky-labs.com"
        q = DNS(id=41001, rd=1, qd=DNSQR(qname=other))
        recs += [(1000.5, eth(IP(src=CLIENT, dst=RESOLVER) / UDP(sport=41001, dport=53) / q)),
                 dns_answer(other, "198.51.100.7", 1000.51, port=41001)]
    recs += _outbound_only(23101, 50600, 1001.0) + _outbound_only(27201, 50601, 1002.0)
    return sorted(recs, key=lambda r: r[0])


def _dns_line(text: str) -> str:
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if line.lstrip().startswith("dns (blocked"))
    return " ".join(line.strip() for line in lines[at:at + 3])


def _advised_instead_of_allow_dns(flows, fix: str) -> None:
    """The table's DNS entry and the HTML report's both give ``fix``, not the plain "allow DNS"
    advice (ALLOW_DNS) beside it."""
    text = render_table(flows, RULES, width=400)
    assert " ".join(fix.split()) in " ".join(_dns_line(text).split()) and ALLOW_DNS not in text.replace(fix, "")
    page = html.unescape(render_html(flows, RULES))
    assert fix in page and ALLOW_DNS not in page.replace(fix, "")


def test_an_unanswered_query_in_a_one_way_capture_is_not_advised_as_a_firewall_rule(tmp_path):
    path = write(tmp_path, _one_way_capture_recs())
    a = analyze_file(path, RULES)
    flows = a.flows
    dns = flows[flows.purpose == "dns"].iloc[0]
    assert (dns.verdict, dns.reason) == ("blocked", "no_answer")      # (the verdict stays: its answer is unseen)
    assert sorted(flows[flows.proto == "tcp"].reason) == ["one_way", "one_way"]
    assert one_way_capture(flows)
    assert dns_one_way_fix(1) == (
        "1 query was unanswered in this capture, which holds one direction only (no TCP flow has packets both ways, "
        "and the agent's packets acknowledge answers that are not in it: see the Warning): their answers may have "
        "come; capture both directions (on the agent itself) before changing DNS")
    _advised_instead_of_allow_dns(flows, dns_one_way_fix(1))


def test_the_chunked_report_says_the_same(tmp_path):
    from kscc_traffic.chunked import ChunkedAnalysis
    from kscc_traffic.report import TableSummary, _dns_advice
    path = write(tmp_path, _one_way_capture_recs())
    run = ChunkedAnalysis(path, RULES, path.name, chunk_bytes=300)
    summary = TableSummary()
    for part in run.batches():
        summary.add(part)
    assert _dns_advice(summary) == (["no_answer"], dns_one_way_fix(1))


def test_an_answered_query_or_a_two_way_flow_keeps_allow_dns(tmp_path):
    # (a DNS answer in the capture: the return direction is there; the unanswered one is judged,
    # here as a query to a resolver that answered the client's other one)
    flows = analyze_file(write(tmp_path, _one_way_capture_recs(answered_dns=True)), RULES).flows
    assert not one_way_capture(flows)
    text = render_table(flows, RULES, width=400)
    assert "unanswered by a resolver that answered other queries" in _dns_line(text)
    assert "holds one direction only (no TCP flow" not in text
    # (one TCP flow answered, an unanswered SYN beside it: not a one-way capture)
    recs = sorted([_query(41000, 1000.0)] + syn_attempts(50700, SERVER, 23101, 1001.0)
                  + syn_attempts(50701, SERVER, 23102, 1001.5, reset=True), key=lambda r: r[0])
    flows = analyze_file(write(tmp_path, recs, "b.pcap"), RULES).flows
    assert not one_way_capture(flows)
    assert ALLOW_DNS in render_table(flows, RULES, width=400)


def _refused_by_the_resolver(n: int = 3, router: str | None = None):
    recs = []
    for i in range(n):
        t, q = _query(41000 + i, 1000.0 + i)
        err = IP(src=router or RESOLVER, dst=CLIENT) / ICMP(type=3, code=3 if router is None else 13) / bytes(q[IP])[:28]
        recs += [(t, q), (t + 0.001, eth(err, src=SERVER_MAC, dst=CLIENT_MAC))]
    return recs


def test_port_unreachable_from_the_resolver_itself_is_advised_as_its_address_or_service(tmp_path):
    flows = analyze_file(write(tmp_path, _refused_by_the_resolver()), RULES).flows
    assert (flows.reason == "icmp_unreachable").sum() == 3
    assert dns_closed_fix(3) == (
        "3 queries were answered by ICMP port unreachable from the resolver's own address: nothing listens on port 53 "
        "there, or a firewall rejects the queries in its name: check the DNS server address the agents are given "
        "(DHCP, their network settings) and that a DNS service runs on that host; if it does, a reject rule refuses "
        "them (the resolver's own firewall, or a router's on the path): allow DNS (UDP and TCP 53) from the clients "
        "to it there")
    _advised_instead_of_allow_dns(flows, dns_closed_fix(3))


def test_a_routers_administrative_refusal_keeps_allow_dns(tmp_path):
    # (ICMP communication administratively prohibited (3/13) from a router: a filter on the path)
    flows = analyze_file(write(tmp_path, _refused_by_the_resolver(2, router="192.0.2.1")), RULES).flows
    assert (flows.reason == "icmp_unreachable").sum() == 2
    text = render_table(flows, RULES, width=400)
    assert ALLOW_DNS in _dns_line(text) and "resolver's own address" not in text


def test_an_nxdomain_is_counted_and_advised_apart(tmp_path):
    # (newcomer s60 #7: SERVFAILs counted, the NXDOMAIN beside them only in the generic advice)
    from kscc_traffic.report import dns_blocked_kinds, dns_nxdomain_fix, dns_servfail_fix
    recs = []
    for i, rcode in enumerate((2, 2, 3)):
        t, q = _query(41000 + i, 1000.0 + 10 * i)
        ans = DNS(id=41000 + i, qr=1, rcode=rcode, qd=DNSQR(qname=NAME))
        recs += [(t, q), (t + 0.01, eth(IP(src=RESOLVER, dst=CLIENT) / UDP(sport=53, dport=41000 + i) / ans,
                                         src=SERVER_MAC, dst=CLIENT_MAC))]
    flows = analyze_file(write(tmp_path, recs), RULES).flows
    kinds = dns_blocked_kinds(flows)
    assert (kinds["servfail"], kinds["nxdomain"]) == (2, 1)
    line = _dns_line(render_table(flows, RULES, width=400))
    assert dns_servfail_fix(2) in line and dns_nxdomain_fix(1) in line
    assert dns_nxdomain_fix(1).startswith("1 query was answered NXDOMAIN: the resolver says the name does not exist")
    assert "make the resolver answer the names the agent needs" not in line   # (every error answer counted)
