"""Newcomer 23: the advice, checklist and report texts say what happened (see each test)."""
from __future__ import annotations

import html as h
import re

from scapy.all import ICMP, IP, TCP
from scapy.layers.dns import DNS, DNSQR

from conftest import ROOT
from kscc_traffic import analyze, load_rules, readiness
from kscc_traffic.html_report import render_html
from kscc_traffic.report import TableSummary, render_table
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth, pcap_bytes, tcp_session, udp

RULES = load_rules()


def _write(tmp_path, name, records):
    path = tmp_path / name
    path.write_bytes(pcap_bytes(records))
    return path


def _text(html_text):
    return h.unescape(re.sub(r"<[^>]+>", " ", html_text))


def _rows(flows):
    """readiness() and the streamed summary's, each indexed by rule: both must say the same."""
    return [readiness(flows, RULES).set_index("rule"), TableSummary.of(flows).readiness(RULES).set_index("rule")]


# --- F6: the HTML's DNS-error sentence follows the verdicts ---------------------------------------
def _nxdomain(name, port, t):
    q = udp(("192.0.2.10", port), ("192.0.2.53", 53), bytes(DNS(id=port, rd=1, qd=DNSQR(qname=name))), t=t)
    a = udp(("192.0.2.53", 53), ("192.0.2.10", port),
            bytes(DNS(id=port, qr=1, rd=1, ra=1, rcode=3, qd=DNSQR(qname=name))), t=t + 0.01,
            src_mac=SERVER_MAC, dst_mac=CLIENT_MAC)
    return [q, a]


def _dns_section(flows):
    page = render_html(flows, RULES, charts=False)
    m = re.search(r'<section id="dns-errors">(.*?)</section>', page, re.S)
    return _text(m.group(1))


def test_dns_error_sentence_follows_the_verdicts(tmp_path):
    """An NXDOMAIN for a name the agent needs is blocked: the HTML must not say "Their verdict is
    ok"; with another name answered NXDOMAIN too, each verdict is counted."""
    one = analyze(_write(tmp_path, "one.pcap", _nxdomain("eu1.ksc.kaspersky.com", 41000, 1000.0)), RULES)
    assert list(zip(one.verdict, one.reason)) == [("blocked", "rejected")]
    text = _dns_section(one)
    assert "verdict is ok" not in text
    assert ("1 DNS flow got an error answer instead of an address. Its verdict: blocked (a name the agent "
            "needs: without its address it cannot connect). A client cannot connect") in text
    recs = (_nxdomain("eu1.ksc.kaspersky.com", 41000, 1000.0) + _nxdomain("eu2.ksc.kaspersky.com", 41001, 1001.0)
            + _nxdomain("www.example.com", 41002, 1002.0))
    three = analyze(_write(tmp_path, "three.pcap", recs), RULES)
    assert sorted(three.verdict) == ["blocked", "blocked", "ok"]
    assert ("3 DNS flows got an error answer instead of an address. Verdicts: 2 blocked (a name the agent needs: "
            "without its address it cannot connect), 1 ok (the resolver was reached and answered a name the agent "
            "does not need).") in _dns_section(three)
