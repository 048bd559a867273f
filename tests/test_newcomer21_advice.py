"""Newcomer 21: the advice, checklist and report texts say what happened (see each test)."""
from __future__ import annotations

import html as h
import re

from scapy.all import IP, TCP

from conftest import ROOT
from kscc_traffic import analyze, load_rules, readiness
from kscc_traffic.html_report import render_html
from kscc_traffic.report import REASON_TEXT, TableSummary, render_table
from pcapbuild import eth, pcap_bytes, tcp_session

SAMPLES = ROOT / "samples" / "captures"
RULES = load_rules()


def _write(tmp_path, name, records):
    path = tmp_path / name
    path.write_bytes(pcap_bytes(records))
    return path


def _html_fixes(text):
    return {m.group(1): h.unescape(m.group(2)) for m in re.finditer(
        r'<article class="finding[^"]*" id="purpose-([a-z_]+)">.*?What to change</dt><dd class="fix">(.*?)</dd>',
        text, re.S)}


# --- F1: a purpose with blocked and intercepted flows -----------------------------------------------
def test_blocked_and_intercepted_flows_each_get_their_count_and_advice(tmp_path):
    """activation: 2 flows re-signed by a TLS-inspecting proxy (the sample), 1 SYN unanswered, 1
    bare handshake that worked. The fix counts every kind, gives the firewall advice for the
    blocked one and the TLS-inspection advice for the intercepted ones, and does not say "the
    others worked"; the same text in readiness(), the summary, the table and the HTML."""
    syns = [(1772442100.0 + k, eth(IP(src="192.0.2.10", dst="203.0.113.10") /
                                   TCP(sport=50000, dport=27201, flags="S", seq=7))) for k in (0, 1, 3)]
    recs = syns + tcp_session(("192.0.2.10", 50001), ("203.0.113.10", 27201), t0=1772442110.0)
    flows = analyze([SAMPLES / "intercepted_tls12.pcap", _write(tmp_path, "mixed.pcap", recs)], RULES)
    act = flows[flows.purpose == "activation"]
    assert sorted(zip(act.verdict, act.reason)) == [("blocked", "no_answer"), ("ok", ""),
                                                    ("unexpected", "tls_intercepted"),
                                                    ("unexpected", "tls_intercepted")]
    want = ("1 of 4 flows ok, 1 blocked, 2 unexpected (2 tls_intercepted). For the blocked one: "
            + RULES.by_id("activation").fix + ". For the unexpected ones: these 2 connections on TCP "
            "27200-27299 were answered (the port is open for them): tls_intercepted: "
            + REASON_TEXT["tls_intercepted"] + " (*.ksc.kaspersky.com)")
    assert "exclude these names from inspection" in want
    for chk in (readiness(flows, RULES), TableSummary.of(flows).readiness(RULES)):
        row = chk.set_index("rule").loc["activation"]
        assert (row.status, row.ok, row.blocked, row.unexpected) == ("blocked", 1, 1, 2)
        assert row.fix == want
    assert "the others worked" not in render_table(flows, RULES, width=2000)
    assert f"activation (blocked: no_answer, tls_intercepted): {want}" in render_table(flows, RULES, width=2000)
    assert _html_fixes(render_html(flows, RULES, charts=False))["activation"] == want


def test_the_others_worked_only_when_they_all_did(tmp_path):
    """1 ok, 1 blocked and nothing else: "the others worked" is still said (the test above: not
    when some of the others were unexpected)."""
    syns = [(1000.0 + k, eth(IP(src="192.0.2.10", dst="203.0.113.10") /
                             TCP(sport=50000, dport=23101, flags="S", seq=7))) for k in (0, 1, 3)]
    recs = syns + tcp_session(("192.0.2.10", 50001), ("203.0.113.10", 23101), t0=1010.0)
    flows = analyze(_write(tmp_path, "two.pcap", recs), RULES)
    fix = readiness(flows, RULES).set_index("rule").loc["agent_connection", "fix"]
    assert fix == ("1 of 2 flows ok, 1 blocked (the others worked: compare clients, addresses and ports): "
                   + RULES.by_id("agent_connection").fix)


# --- F3: DNS reasons told by what happened --------------------------------------------------------
def _dns_capture(tmp_path, reset: bool):
    """An NXDOMAIN over UDP for a name the agent needs; with ``reset``, also a DNS over TCP SYN
    answered by a reset."""
    from scapy.layers.dns import DNS, DNSQR

    from pcapbuild import CLIENT_MAC, SERVER_MAC, udp
    name = "eu2.ksc.kaspersky.com"
    recs = [udp(("192.0.2.10", 41207), ("203.0.113.53", 53), bytes(DNS(id=7, rd=1, qd=DNSQR(qname=name))), t=1000.0),
            udp(("203.0.113.53", 53), ("192.0.2.10", 41207),
                bytes(DNS(id=7, qr=1, rd=1, ra=1, rcode=3, qd=DNSQR(qname=name))), t=1000.01,
                src_mac=SERVER_MAC, dst_mac=CLIENT_MAC)]
    if reset:
        recs += [(1001.0, eth(IP(src="192.0.2.10", dst="203.0.113.53") / TCP(sport=51000, dport=53, flags="S", seq=9))),
                 (1001.01, eth(IP(src="203.0.113.53", dst="192.0.2.10") / TCP(sport=53, dport=51000, flags="RA",
                                                                              seq=0, ack=10),
                               src=SERVER_MAC, dst=CLIENT_MAC))]
    return _write(tmp_path, f"dns{int(reset)}.pcap", recs)


def _dns_finding(text):
    m = re.search(r'<article class="finding[^"]*" id="purpose-dns">(.*?)</article>', text, re.S)
    return h.unescape(re.sub(r"<[^>]+>", " ", m.group(1)))


def test_an_nxdomain_is_told_as_the_resolvers_answer_not_a_tcp_reset(tmp_path):
    flows = analyze(_dns_capture(tmp_path, reset=False), RULES)
    assert list(zip(flows.verdict, flows.reason, flows.dns_rcode)) == [("blocked", "rejected", "NXDOMAIN")]
    fix = ("make the resolver answer the names the agent needs (*.ksc.kaspersky.com and the other Kaspersky "
           "names): an error or sinkhole answer means a DNS filter, split DNS or an upstream failure (see the DNS "
           "names answered with an error)")
    why = ("rejected : the resolver answered with an error (NXDOMAIN, SERVFAIL, REFUSED…) or a sinkhole address "
           "for a name the agent needs: without its address the agent cannot connect")
    page = _dns_finding(render_html(flows, RULES, charts=False))
    assert f"What to change  {fix}  Why flagged" in page and why in page
    assert "TCP reset" not in page and "allow TCP 53" not in page
    table = render_table(flows, RULES, width=2000)
    assert f"  dns (blocked: rejected): {fix}\n" in table and "TCP reset" not in table


def test_a_dns_over_tcp_reset_is_told_as_such(tmp_path):
    flows = analyze(_dns_capture(tmp_path, reset=True), RULES)
    assert sorted(zip(flows.proto, flows.reason, flows.detail.str[:31])) == [
        ("tcp", "rejected", "DNS over TCP rejected with RST"), ("udp", "rejected", "DNS answer NXDOMAIN for eu2.ksc")]
    page = _dns_finding(render_html(flows, RULES, charts=False))
    reset = "1 DNS over TCP query was answered by a TCP reset: allow TCP 53 to the resolver"
    assert reset in page and reset in render_table(flows, RULES, width=2000)
    assert ("the agent cannot connect; a TCP reset answered a DNS over TCP query: a firewall rejects TCP 53, or "
            "the resolver takes no DNS over TCP") in page
    # only the reset: no advice about error answers
    only = flows[flows.proto == "tcp"]
    page = _dns_finding(render_html(only, RULES, charts=False))
    assert "make the resolver answer" not in page and "resolver answered with an error" not in page
    assert f"What to change  {reset} (answers too large for UDP need it)  Why flagged" in page
