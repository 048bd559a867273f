"""Newcomer report 17: what the reports say (CSV = JSON Lines numbers, IPv6 endpoints, the same
"what to change" in the table and the HTML, advice matching the reason, the DNS query name)."""
from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys

import pandas as pd

from conftest import ROOT
from kscc_traffic import analyze, load_rules, readiness
from kscc_traffic.html_report import render_html
from kscc_traffic.report import REASON_TEXT, SUITES_CURRENT_FIX, render_table

SAMPLES = ROOT / "samples" / "captures"
RULES = load_rules()


def run(*args):
    return subprocess.run([sys.executable, "-m", "kscc_traffic", *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


# --- 8. CSV and JSON Lines hold the same ts and duration -----------------------------------------
def test_csv_numbers_are_those_of_json_lines():
    c = run("analyze", SAMPLES / "baseline_agent.pcap", "-f", "csv")
    j = run("analyze", SAMPLES / "baseline_agent.pcap", "-f", "jsonl")
    rows = list(csv.DictReader(io.StringIO(c.stdout)))
    lines = j.stdout.splitlines()
    assert len(rows) == len(lines) > 0
    for row, line in zip(rows, lines):
        for key in ("ts", "duration"):   # the very text of the JSON number
            assert row[key] == re.search(rf'"{key}":([^,]+),', line).group(1), (key, row[key], line)
    by_uid = {r["uid"]: r for r in rows}
    first = json.loads(lines[0])
    assert by_uid["CxmqNGF7VJb9NawSTs"]["ts"] == "1772442002.55"   # was 1772442002.5500002
    assert first["ts"] == float(rows[0]["ts"])


# --- 9. IPv6 endpoints in brackets -----------------------------------------------------------------
def test_table_brackets_ipv6_endpoints():
    text = render_table(analyze(SAMPLES / "ipv6_agent.pcap", RULES), RULES, width=220)
    assert "[2001:db8:a::10]:52743" in text and "tcp [2001:db8:cc::10]:27201" in text
    assert "2001:db8:cc::10:27201" not in text


def test_live_lines_bracket_ipv6_endpoints_and_count_packets_in_words():
    from rich.console import Console

    from kscc_traffic.live.view import event_line, render
    ev = {"ts": 1772442000.0, "proto": "tcp", "orig_h": "2001:db8:a::10", "orig_p": 52743,
          "resp_h": "2001:db8:cc::10", "resp_p": 27201, "verdict": "blocked", "reason": "no_answer",
          "purpose": "activation", "server_name": "", "detail": "SYN sent 3 times, no answer"}
    assert event_line(ev) == ("09:00:00 UTC blocked no_answer tcp [2001:db8:a::10]:52743 -> "
                              "[2001:db8:cc::10]:27201 activation: SYN sent 3 times, no answer")
    buf = io.StringIO()
    Console(file=buf, width=200, color_system=None).print(
        render({"interface": "eth0", "engine": "scapy", "packets": 1, "pps": 1.2, "dropped": 0}, {}, [ev]))
    out = buf.getvalue()
    assert "1 packet, 1 packet/s," in out
    assert "[2001:db8:a::10]:52743" in out and "tcp [2001:db8:cc::10]:27201" in out


# --- 5. what to change ---------------------------------------------------------------------------
def _fixes(flows):
    return dict(zip(*readiness(flows, RULES)[["rule", "fix"]].to_numpy().T))


def _html_fixes(html):
    return {m.group(1): m.group(2) for m in re.finditer(
        r'<article class="finding[^"]*" id="purpose-([a-z_]+)">.*?(?:What|Nothing) to change</dt><dd class="fix">(.*?)</dd>',
        html, re.S)}


def test_html_flagged_section_gives_the_checklists_advice():
    import html as h
    flows = analyze(SAMPLES / "unexpected_agent.pcap", RULES)
    fixes = _fixes(flows)
    shown = _html_fixes(render_html(flows, RULES, charts=False))
    assert set(shown) >= {"discovery", "cert_check", "agent_connection", "dp_agent_connection"}
    for rule, text in shown.items():
        assert h.unescape(text) == fixes[rule], rule
    assert fixes["discovery"].startswith("this flow on TCP 443 went to a name outside *.ksc.kaspersky.com")
    # (Kaspersky's other service: headed "Nothing to change", newcomer s60 #11)
    assert '<article class="finding f-unexpected" id="purpose-discovery">' in render_html(flows, RULES, charts=False)
    assert re.search(r'id="purpose-discovery">(?:(?!</article>).)*<dt>Nothing to change</dt>',
                     render_html(flows, RULES, charts=False), re.S)


def test_intercepted_and_cleartext_flows_get_the_reasons_advice_not_the_firewall():
    fixes = _fixes(analyze(SAMPLES / "intercepted_tls12.pcap", RULES))
    # (the client that refused the proxy's certificate could not connect: blocked, newcomer 23 F2;
    # both get the inspection advice, neither the firewall's)
    # (the cause the details show, not every possible one: newcomer s60 #10)
    intercepted = ("the server certificate is not for the name asked and was issued by a TLS-inspection CA (a "
                   "product's or device's: each flow's detail names it): a TLS-inspecting proxy sits in the path; "
                   "exclude these names from inspection (*.ksc.kaspersky.com)")
    assert fixes["activation"] == (
        "0 of 2 flows ok, 1 blocked, 1 unexpected (1 tls_intercepted). For the blocked one: this connection "
        "reached the server on TCP 27200-27299 (the TCP handshake completed: the port is open, nothing to open "
        "in the firewall), then the TLS handshake was aborted on a TLS-inspecting proxy's certificate (see each "
        f"flow's detail): tls_intercepted: {intercepted}. For the unexpected one: this connection on TCP "
        "27200-27299 was answered (the port is open for it): tls_intercepted: a TLS-inspecting proxy's "
        "certificate, as for the blocked one (see there)")   # (said once: newcomer 26, duplicated advice)
    fixes = _fixes(analyze(SAMPLES / "unexpected_agent.pcap", RULES))
    # (a cleartext answer may be a filter's refusal: no "nothing to open"; newcomer 19 F19)
    assert fixes["dp_agent_connection"] == ("this connection on TCP 13000 was answered (the port is open): "
                                            "not_tls: " + REASON_TEXT["not_tls"])
    # (the flow to ksc-eu1.example.net on 23101, a KSC-only port, is the agent's own: pointed at
    # another server, said first; newcomer 27 F3)
    assert fixes["agent_connection"] == (
        "1 of 3 flows ok, 2 unexpected: the agent is configured with another Administration Server address "
        "(ksc-eu1.example.net, on TCP 23100-23199, ports only a KSC agent uses; 1 flow): check the address in "
        "the agent's settings / installation package (it must be a name under *.ksc.kaspersky.com). For the "
        "other one: this connection on TCP 23100-23199 was answered (the port is open): not_tls: "
        + REASON_TEXT["not_tls"])
    assert not any("allow" in f for r, f in fixes.items() if r in ("dp_agent_connection", "agent_connection"))


def test_a_partly_blocked_purpose_says_how_many_flows_were_ok():
    flows = pd.concat([analyze(SAMPLES / "baseline_agent.pcap", RULES),
                       analyze(SAMPLES / "blocked_agent.pcap", RULES)], ignore_index=True)
    sub = flows[flows.purpose == "agent_connection"]
    ok, n = int((sub.verdict == "ok").sum()), len(sub)
    bl = int((sub.verdict == "blocked").sum())
    assert ok and bl
    chk = readiness(flows, RULES).set_index("rule")
    assert chk.loc["agent_connection", "status"] == "blocked"
    # (its blocked flows are tls_failed: the port is open, the advice is not to open it; newcomer 18 #5;
    # two captures: where the blocked flows are, the ok ones in the other, newcomer 26 F4)
    assert chk.loc["agent_connection", "fix"] == (
        f"{ok} of {n} flows ok, {bl} blocked (in blocked_agent.pcap; the others worked, in another capture: "
        "compare the machines, addresses and ports): "
        f"{'this connection' if bl == 1 else f'these {bl} connections'} reached the server on TCP 23100-23199 "
        "(the TCP handshake completed: the port is open, nothing to open in the firewall), then "
        + SUITES_CURRENT_FIX.format(mask="*.ksc.kaspersky.com"))
    # (the sample's ClientHello is a current offer: what answered in the server's place first, s59)
    assert chk.loc["agent_connection", "fix"].endswith("the agent's TLS settings are the unlikely cause")
    text = render_table(flows, RULES, width=400)
    assert f"agent_connection (blocked: tls_failed): {ok} of {n} flows ok, {bl} blocked" in text


def test_a_purpose_blocked_over_ipv6_only_says_so(tmp_path):
    """Dual stack with the IPv6 path blackholed: the agent's IPv6 SYNs go unanswered, its IPv4
    connection works. The purpose is blocked (one path failing), and its fix names the family
    that fails (break-it 13 W6), in the grouped checklist and the table report."""
    from pcapbuild import eth, pcap_bytes, tcp_session
    from scapy.all import IPv6, TCP
    syn6 = [(1000.0 + k, eth(IPv6(src="2001:db8::10", dst="2001:db8:1::10") /
                             TCP(sport=50000, dport=23101, flags="S", seq=7))) for k in (0, 1, 3)]
    recs = syn6 + tcp_session(("192.0.2.10", 50001), ("203.0.113.10", 23101), t0=1010.0)
    path = tmp_path / "dual.pcap"
    path.write_bytes(pcap_bytes(recs))
    flows = analyze(path, RULES)
    assert sorted(zip(flows.resp_h, flows.verdict)) == [("2001:db8:1::10", "blocked"), ("203.0.113.10", "ok")]
    why = ("1 of 2 flows ok, 1 blocked (all blocked over IPv6, the ok ones over IPv4: the IPv6 path is blocked; "
           "allow the ports for IPv6 too, or check its routes; a dual-stack agent tries IPv6 first): ")
    assert readiness(flows, RULES).set_index("rule").loc["agent_connection", "fix"] == \
        why + "allow outbound TCP 23100-23199 over IPv6 to *.ksc.kaspersky.com (the whole range and any address in " \
              "the mask; both can change)"
    assert why in render_table(flows, RULES, width=400)


# --- 10. the unanswered DNS query's name in the HTML -----------------------------------------------
def test_html_shows_the_name_of_an_unanswered_dns_query():
    flows = analyze(SAMPLES / "blocked_agent.pcap", RULES)
    page = render_html(flows, RULES, charts=False)
    dns = re.search(r'<article class="finding[^"]*" id="purpose-dns">(.*?)</article>', page, re.S).group(1)
    assert '<td class="name">eu2.ksc.kaspersky.com</td>' in dns
    table = page[page.index('id="flow-table"'):]
    assert '<td class="name">eu2.ksc.kaspersky.com</td><td>dns query</td>' in table


# --- 14. the timeline's time axis -------------------------------------------------------------------
def test_timeline_ticks_are_times_of_day():
    import matplotlib
    matplotlib.use("Agg")
    from kscc_traffic import chart_timeline
    fig = chart_timeline(analyze(SAMPLES / "blocked_agent.pcap", RULES), RULES)
    fig.canvas.draw()
    ax = fig.axes[-1]
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels and all(re.fullmatch(r"\d\d:\d\d(:\d\d(\.\d+)?)?", x) for x in labels), labels
    assert any(re.fullmatch(r"09:00:\d\d", x) for x in labels), labels
    assert ax.get_xlabel() == "time (UTC)"


def test_unnamed_failures_on_a_shared_port_say_no_name_was_seen(tmp_path):
    """SYNs to an unnamed server on 443 unanswered (no DNS, no SNI): discovery stays blocked (an
    agent with its DNS answer cached looks the same), but its advice says no name was seen and it
    may be another program's (newcomer 18 #1); with the name seen (a DNS answer) it is the rule's."""
    from pcapbuild import eth, pcap_bytes, udp
    from scapy.all import DNS, DNSQR, DNSRR, IP, TCP
    syns = [(1000.0 + k, eth(IP(src="192.0.2.10", dst="198.51.100.77") / TCP(sport=50000, dport=443, flags="S", seq=7)))
            for k in (0, 1, 3)]
    # alone in a capture they are no KSC agent traffic: no purpose is judged on them (newcomer 28 F4) ...
    from pcapbuild import tcp_session
    from kscc_traffic.report import NOT_KSC_NOTE
    alone = tmp_path / "alone.pcap"
    alone.write_bytes(pcap_bytes(syns))
    row = readiness(analyze(alone, RULES), RULES).set_index("rule").loc["discovery"]
    assert (row["status"], row["status_note"], row["fix"]) == ("not seen", NOT_KSC_NOTE, "")
    # ... beside an agent's connection (a KSC-only port) they are discovery's, blocked, nameless
    agent = tcp_session(("192.0.2.10", 50100), ("203.0.113.10", 23101), t0=990.0)
    path = tmp_path / "unnamed.pcap"
    path.write_bytes(pcap_bytes(agent + syns))
    fix = readiness(analyze(path, RULES), RULES).set_index("rule").loc["discovery", "fix"]
    assert fix == ("no name was seen for this server (no DNS answer, SNI or certificate): it may be another program's, "
                   "or the agent's with its DNS answer cached (capture from the agent's start to tell); if the "
                   "agent's: " + RULES.by_id("discovery").fix)
    ans = DNS(id=1, qr=1, qd=DNSQR(qname="discovery.ksc.kaspersky.com"),
              an=DNSRR(rrname="discovery.ksc.kaspersky.com", rdata="198.51.100.77"))
    named = tmp_path / "named.pcap"
    named.write_bytes(pcap_bytes([udp(("192.0.2.53", 53), ("192.0.2.10", 40000), bytes(ans), t=999.0)] + syns))
    chk = readiness(analyze(named, RULES), RULES).set_index("rule")
    assert (chk.loc["discovery", "status"], chk.loc["discovery", "fix"]) == ("blocked", RULES.by_id("discovery").fix)
