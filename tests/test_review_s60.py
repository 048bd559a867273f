"""Review s60: the one-direction DNS advice over several captures, and the NXDOMAIN advice for an
AAAA question asked over IPv6 whose A question was answered.

#1: a normal capture's unanswered DNS query, analysed with a one-way capture, was advised "in this
capture, which holds one direction only … their answers may have come" (the counts were summed
over the run): each capture must hold one direction only for that advice.
#2: an AAAA-only NXDOMAIN asked over IPv6 (the A question answered: the name exists) was advised
"the resolver says the name does not exist … a wrong server name set on the agent (mistyped)".
"""
from __future__ import annotations

import html

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import UDP
from scapy.layers.inet6 import IPv6

from chunkcmp import RULES, write
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth, pcap_bytes, syn_attempts
from test_newcomer_s60_dns import ALLOW_DNS, NAME, SERVER, _dns_line, _one_way_capture_recs, _query

from kscc_traffic.analyze import analyze_file
from kscc_traffic.chunked import ChunkedAnalysis
from kscc_traffic.html_report import render_html
from kscc_traffic.report import (TableSummary, _dns_advice, dns_blocked_kinds, dns_nxdomain_fix, one_way_capture,
                                 render_table)

ONE_WAY_SAID = "which holds one direction only"


def _two_captures(tmp_path):
    one_way = write(tmp_path, [r for r in _one_way_capture_recs() if r[0] != 1000.0], "oneway.pcap")
    normal = write(tmp_path, sorted([_query(41000, 1000.0)] + syn_attempts(50000, SERVER, 23101, 1001.0),
                                    key=lambda r: r[0]), "normal.pcap")
    return one_way, normal


def test_a_normal_captures_unanswered_query_beside_a_one_way_capture_keeps_allow_dns(tmp_path):
    import pandas as pd
    paths = _two_captures(tmp_path)
    flows = pd.concat([analyze_file(p, RULES).flows for p in paths], ignore_index=True)
    assert set(flows.capture) == {"oneway.pcap", "normal.pcap"}
    assert (flows[flows.purpose == "dns"].capture == "normal.pcap").all()
    assert not one_way_capture(flows)
    line = _dns_line(render_table(flows, RULES, width=400))
    assert ALLOW_DNS in line and ONE_WAY_SAID not in line
    page = html.unescape(render_html(flows, RULES))
    assert ALLOW_DNS in page and ONE_WAY_SAID not in page
    # (batch by batch, as --chunk-mib: the same)
    summary = TableSummary()
    for p in paths:
        for part in ChunkedAnalysis(p, RULES, p.name, chunk_bytes=300).batches():
            summary.add(part)
    why, fix = _dns_advice(summary)
    assert why == ["no_answer"] and fix.startswith(ALLOW_DNS) and ONE_WAY_SAID not in fix


def test_two_one_way_captures_keep_the_one_way_advice(tmp_path):
    import pandas as pd
    a = write(tmp_path, _one_way_capture_recs(), "a.pcap")
    b = write(tmp_path, [(t + 50, f) for t, f in _one_way_capture_recs()], "b.pcap")
    flows = pd.concat([analyze_file(p, RULES).flows for p in (a, b)], ignore_index=True)
    assert one_way_capture(flows)
    line = _dns_line(render_table(flows, RULES, width=400))
    assert "2 queries were unanswered in this capture, which holds one direction only" in line
    assert ALLOW_DNS not in line


def _aaaa_nxdomain_over_ipv6(tmp_path):
    c6, r6 = "2001:db8::10", "2001:db8::53"
    def ask(port, qtype):
        return eth(IPv6(src=c6, dst=r6) / UDP(sport=port, dport=53) / DNS(id=port, rd=1, qd=DNSQR(qname=NAME, qtype=qtype)))
    def say(port, qtype, rcode, an=None):
        return eth(IPv6(src=r6, dst=c6) / UDP(sport=53, dport=port)
                   / DNS(id=port, qr=1, rcode=rcode, qd=DNSQR(qname=NAME, qtype=qtype), an=an),
                   src=SERVER_MAC, dst=CLIENT_MAC)
    recs = [(1000.0, ask(41000, "A")), (1000.01, say(41000, "A", 0, DNSRR(rrname=NAME, type="A", ttl=60,
                                                                             rdata=SERVER))),
            (1000.0, ask(41001, "AAAA")), (1000.012, say(41001, "AAAA", 3))]
    p = tmp_path / "aaaa.pcap"
    p.write_bytes(pcap_bytes(sorted(recs, key=lambda r: r[0])))
    return p


def test_an_aaaa_only_nxdomain_over_ipv6_is_not_advised_as_a_name_that_does_not_exist(tmp_path):
    flows = analyze_file(_aaaa_nxdomain_over_ipv6(tmp_path), RULES).flows
    dns = flows[(flows.purpose == "dns") & (flows.verdict == "blocked")]
    assert len(dns) == 1 and dns.iloc[0].dns_rcode == "NXDOMAIN"
    assert dns_blocked_kinds(flows)["nxdomain"] == 0
    line = _dns_line(render_table(flows, RULES, width=400))
    assert dns_nxdomain_fix(1) not in line and "mistyped" not in line
    assert "make the resolver answer the names the agent needs" in line
    assert "mistyped" not in html.unescape(render_html(flows, RULES)).split("DNS names answered")[0]


def _syn6(port: int, sport: int, t: float):
    from scapy.layers.inet import TCP
    f = eth(IPv6(src="2001:db8::10", dst="2001:db8:1::10") / TCP(sport=sport, dport=port, flags="S", seq=7))
    return [(t + k, f) for k in (0, 1, 3)]


def test_an_all_ipv6_purpose_on_a_host_that_uses_ipv4_too_is_not_advised_over_ipv6_alone(tmp_path):
    # (#3: a dual-stack host's IPv6 attempts to the agent ports unanswered, its IPv4 activation
    # connection working: the IPv4 rule for 23100-23199 is untested, not "passes already")
    from pcapbuild import dns_answer, tcp_session
    recs = ([_query(41000, 999.0), dns_answer(NAME, SERVER, 999.01)] + _syn6(23101, 50000, 1000.0)
            + _syn6(23101, 50001, 1010.0) + tcp_session(("192.0.2.10", 50003), (SERVER, 27201), t0=1001.0,
                                                        c_data=b"\x16\x03\x01\x00\x05hello", s_data=b"\x16\x03\x03\x00\x05world"))
    path = write(tmp_path, sorted(recs, key=lambda r: r[0]), "dual.pcap")
    flows = analyze_file(path, RULES).flows
    text = render_table(flows, RULES, width=400)
    assert "allow outbound TCP 23100-23199 to *.ksc.kaspersky.com" in text and "over IPv6" not in text
    assert "over IPv6" not in html.unescape(render_html(flows, RULES))
    summary = TableSummary()
    for part in ChunkedAnalysis(path, RULES, path.name, chunk_bytes=300).batches():
        summary.add(part)
    chk = summary.readiness(RULES)
    fix = chk[chk.rule == "agent_connection"].fix.iloc[0]
    assert fix.startswith("allow outbound TCP 23100-23199 to ") and "over IPv6" not in fix
    # (the IPv6 attempts alone: an IPv6-only capture keeps "over IPv6")
    only = write(tmp_path, _syn6(23101, 50000, 1000.0) + _syn6(23101, 50001, 1010.0), "v6.pcap")
    assert "allow outbound TCP 23100-23199 over IPv6 to " in render_table(analyze_file(only, RULES).flows, RULES,
                                                                           width=400)


def test_no_pandas_performance_warning_on_stderr(tmp_path):
    # (#4: icmp-port-unreach.pcap's leaving rows held 101 column blocks once s60 added a column:
    # "PerformanceWarning: DataFrame is highly fragmented" printed by the scan step's insert)
    import subprocess
    import sys
    from conftest import shared_corpus
    path = shared_corpus("public") / "icmp-port-unreach.pcap"
    run = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", str(path), "-f", "jsonl", "-o",
                          str(tmp_path / "out.jsonl")], capture_output=True, text=True)
    assert run.returncode in (0, 1), run.stderr
    assert "PerformanceWarning" not in run.stderr
    assert (tmp_path / "out.jsonl").stat().st_size > 0


def test_an_nxdomain_for_another_vendors_name_is_not_advised_as_kasperskys_zone(tmp_path):
    # (#5: ocsp.digicert.com, the certificate check's name, answered NXDOMAIN was advised "a local zone
    # for kaspersky.com … a wrong server name set on the agent … the Administration Server address")
    from test_newcomer_s60_dns import RESOLVER
    from pcapbuild import dns_answer, tcp_session
    other = "ocsp.digicert.com"
    from scapy.layers.inet import IP
    q = DNS(id=41005, rd=1, qd=DNSQR(qname=other))
    a = DNS(id=41005, qr=1, rcode=3, qd=DNSQR(qname=other))
    recs = [(1000.0, eth(IP(src="192.0.2.10", dst=RESOLVER) / UDP(sport=41005, dport=53) / q)),
            (1000.01, eth(IP(src=RESOLVER, dst="192.0.2.10") / UDP(sport=53, dport=41005) / a, src=SERVER_MAC,
                          dst=CLIENT_MAC)),
            _query(41000, 1000.1), dns_answer(NAME, SERVER, 1000.11)]
    recs += tcp_session(("192.0.2.10", 50000), (SERVER, 23101), t0=1001.0, c_data=b"\x16\x03\x01\x00\x05hello",
                        s_data=b"\x16\x03\x03\x00\x05world")
    flows = analyze_file(write(tmp_path, sorted(recs, key=lambda r: r[0])), RULES).flows
    kinds = dns_blocked_kinds(flows)
    assert (kinds["nxdomain"], kinds["nxdomain_vendor"]) == (1, 0)
    line = _dns_line(render_table(flows, RULES, width=400))
    assert dns_nxdomain_fix(1, 0) in line
    assert dns_nxdomain_fix(1, 0) == (
        "1 query was answered NXDOMAIN: the resolver says the name does not exist: a DNS filter answering so, or a "
        "local zone on the resolver for the name's domain (split DNS): check the resolver's zones and filtering for "
        "the names (see the DNS names answered with an error)")
    assert "kaspersky.com on the resolver" not in line and "Administration Server address" not in line
    assert dns_nxdomain_fix(2, 2) == dns_nxdomain_fix(2)          # (Kaspersky names: as s60 said)
