"""Newcomer 23: the advice, checklist and report texts say what happened (see each test)."""
from __future__ import annotations

import html as h
import re
import warnings

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


# --- F15: the cast is shown (gateway_udp and agent_broadcast differ) -------------------------------
def test_rules_listing_and_checklist_show_the_cast(tmp_path):
    from typer.testing import CliRunner

    from kscc_traffic.cli import app
    out = CliRunner().invoke(app, ["rules"], env={"COLUMNS": "250"}).output
    cells = {c[0]: c for c in ([x.strip() for x in re.split("[│┃]", line)[1:-1]]
                                for line in out.splitlines() if len(re.findall("[│┃]", line)) > 5)}
    assert cells["id"][:6] == ["id", "section", "transport", "ports", "cast", "protocol"]
    assert cells["gateway_udp"][2:5] == ["udp", "15000", "unicast"]
    assert cells["agent_broadcast"][2:5] == ["udp", "15000", "broadcast"]
    assert cells["dp_multicast"][2:5] == ["udp", "15001", "multicast"]
    with warnings.catch_warnings():   # (the checklist of no flows: "no packets in the capture")
        warnings.simplefilter("ignore")
        empty = analyze(_write(tmp_path, "none.pcap", []), RULES)
    table = render_table(empty, RULES, width=200)
    ports = {line.split("│")[2].strip(): line.split("│")[3].strip() for line in table.splitlines()
             if line.count("│") >= 7 and "§" in line}
    assert (ports["gateway_udp"], ports["agent_broadcast"], ports["dp_multicast"], ports["agent_connection"]) == (
        "udp 15000", "udp 15000 broadcast", "udp 15001 multicast", "tcp 23100-23199")
    page = render_html(empty, RULES, charts=False)
    assert '<tr data-rule="agent_broadcast" data-status="not seen"><td>§B</td><td>agent_broadcast</td>' \
           '<td class="nowrap">udp 15000 broadcast</td>' in page


# --- F16: the mobile range's fix has the page's range note -----------------------------------------
def test_every_range_fix_says_any_port_and_address_can_be_used():
    ranges = [r for r in RULES.rules if r.port_lo != r.port_hi]
    assert [r.id for r in ranges] == ["agent_connection", "mobile_connection", "activation", "klsctunnel"]
    for r in ranges:
        assert "(the whole range and any address in the mask; both can change" in r.fix, r.id
    assert RULES.by_id("mobile_connection").fix == (
        "allow outbound TCP 23700-23799 to *.ksc.kaspersky.com from mobile devices (the whole range and any "
        "address in the mask; both can change; only needed if mobile devices are managed)")


# --- F4: an IP literal names no server (port open, not verified) -----------------------------------
def _http(host, t0, port=80, status=b"200 OK", server="198.51.100.99", cport=50790):
    req = b"GET / HTTP/1.1\r\n" + (b"Host: " + host.encode() + b"\r\n" if host else b"") + b"\r\n"
    return tcp_session(("192.0.2.10", cport), (server, port), t0=t0, c_data=req,
                       s_data=b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n\r\n")


def test_an_ip_literal_in_the_host_header_does_not_verify_cert_check(tmp_path):
    literal = analyze(_write(tmp_path, "lit.pcap", _http("198.51.100.99", 1000.0)), RULES)
    assert list(zip(literal.purpose, literal.verdict, literal.server_name)) == [("cert_check", "ok", "198.51.100.99")]
    named = analyze(_write(tmp_path, "named.pcap", _http("crl3.digicert.com", 1000.0)), RULES)
    assert list(zip(named.purpose, named.verdict, named.server_name)) == [("cert_check", "ok", "crl3.digicert.com")]
    for row in _rows(literal):
        assert row.loc["cert_check", "status"] == "port open"
        assert row.loc["cert_check", "fix"].startswith("1 flow on TCP 80 answered, but none named a server")
    for row in _rows(named):
        assert row.loc["cert_check", "status"] == "verified"
    # a blocked flow named by an IP literal is "no name seen" as well
    from kscc_traffic.report import _names_a_server
    assert _names_a_server(["198.51.100.99", "[2001:db8::99]", "", "crl3.digicert.com"]).tolist() == [
        False, False, False, True]
