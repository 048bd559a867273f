"""Newcomer pass s60, finding #4: several captures, one of them from the wrong machine.

Alone, a capture without KSC agent traffic gets the "No KSC agent traffic" headline; analysed
with an agent's capture, its browser flow on 443 counted as a blocked ``discovery`` flow and
nothing said that capture held no KSC traffic. The table and HTML reports now name such a
capture under the checklist (:func:`kscc_traffic.report.captures_without_ksc`,
:func:`~kscc_traffic.report.no_ksc_capture_note`), whole and batch by batch alike.
"""
from __future__ import annotations

import html

import pandas as pd

from chunkcmp import RULES, write
from pcapbuild import dns_answer, syn_attempts, tcp_session, udp

from kscc_traffic.analyze import analyze_file
from kscc_traffic.chunked import ChunkedAnalysis
from kscc_traffic.html_report import render_html
from kscc_traffic.report import TableSummary, captures_without_ksc, no_ksc_capture_note, render_table

AGENT, BROWSER, SERVER, WEB = "192.0.2.10", "192.0.2.77", "203.0.113.10", "198.51.100.80"


def _agent(tmp_path):
    from scapy.layers.dns import DNS, DNSQR
    q = DNS(id=41000, rd=1, qd=DNSQR(qname="eu1.ksc.kaspersky.com"))
    recs = [udp((AGENT, 41000), ("192.0.2.53", 53), bytes(q), t=1000.0),
            dns_answer("eu1.ksc.kaspersky.com", SERVER, 1000.01)]
    recs += tcp_session((AGENT, 50100), (SERVER, 23101), t0=1000.1)
    return write(tmp_path, recs, "agent.pcap")


def _browser(tmp_path, name="browser.pcap"):
    # (a workstation's browser: one HTTPS connection, one SYN to 443 nothing answered)
    recs = tcp_session((BROWSER, 50200), (WEB, 443), t0=2000.0) + syn_attempts(50201, WEB, 443, 2001.0, client=BROWSER)
    return write(tmp_path, sorted(recs, key=lambda r: r[0]), name)


def _both(paths):
    frames = []
    for p in paths:
        f = analyze_file(p, RULES).flows
        frames.append(f.assign(capture=p.name))
    return pd.concat(frames, ignore_index=True)


def test_a_capture_without_ksc_traffic_among_others_is_named(tmp_path):
    agent, browser = _agent(tmp_path), _browser(tmp_path)
    flows = _both([agent, browser])
    assert (flows[flows.capture == "browser.pcap"].purpose == "discovery").sum() == 2
    assert captures_without_ksc(flows, RULES) == ["browser.pcap"]
    note = no_ksc_capture_note(["browser.pcap"])
    assert note == ("Note: browser.pcap holds no KSC agent traffic (no flow to a Kaspersky name or on a port only KSC "
                    "uses): taken on another machine than the agent, or at another time? The checklist counts its "
                    "flows with the others' (other programs' flows on a purpose's port): analyse it on its own for "
                    "its own checklist.")
    text = " ".join(line.strip() for line in render_table(flows, RULES, width=400).splitlines())
    assert note in text
    assert note in html.unescape(render_html(flows, RULES))


def test_the_summary_added_batch_by_batch_names_the_same_captures(tmp_path):
    agent, browser, other = _agent(tmp_path), _browser(tmp_path), _browser(tmp_path, "browser2.pcap")
    summary = TableSummary()
    for p in (browser, agent, other):                      # (the wrong one first, too)
        for part in ChunkedAnalysis(p, RULES, p.name, chunk_bytes=300).batches():
            summary.add(part.assign(capture=p.name))
    assert summary.captures_without_ksc(RULES) == ["browser.pcap", "browser2.pcap"]
    assert no_ksc_capture_note(["browser.pcap", "browser2.pcap"]).startswith(
        "Note: browser.pcap, browser2.pcap hold no KSC agent traffic")


def test_no_note_for_one_capture_nor_when_none_holds_ksc_traffic(tmp_path):
    agent, browser, other = _agent(tmp_path), _browser(tmp_path), _browser(tmp_path, "browser2.pcap")
    assert captures_without_ksc(_both([agent]), RULES) == []
    # (none holds KSC traffic: the run's headline says it of them all)
    flows = _both([browser, other])
    assert captures_without_ksc(flows, RULES) == []
    text = render_table(flows, RULES, width=400)
    assert "No KSC agent traffic" in text and "holds no KSC agent traffic" not in text
    assert no_ksc_capture_note([]) == ""


def test_an_ipv6_only_agents_blocked_purpose_is_advised_over_ipv6(tmp_path):
    # (newcomer s60 #8: every flow of the purpose over IPv6 and none worked: a firewall keeps its
    # IPv6 rules apart, the advice says which family; table, batch by batch and HTML alike)
    from kscc_traffic.report import readiness
    from scapy.layers.inet import TCP
    from pcapbuild import eth, ip_of

    def unanswered(sport, server, port, t, client="2001:db8::10"):
        syn = eth(ip_of(client, server) / TCP(sport=sport, dport=port, flags="S", seq=7))
        return [(t + k, syn) for k in (0, 1, 3)]
    recs = unanswered(50300, "2001:db8:1::10", 23101, 1000.0) + unanswered(50301, "2001:db8:1::10", 23102, 1010.0)
    path = write(tmp_path, recs, "v6.pcap")
    flows = analyze_file(path, RULES).flows
    want = "allow outbound TCP 23100-23199 over IPv6 to *.ksc.kaspersky.com"
    assert readiness(flows, RULES).set_index("rule").at["agent_connection", "fix"].startswith(want)
    summary = TableSummary()
    for part in ChunkedAnalysis(path, RULES, path.name, chunk_bytes=300).batches():
        summary.add(part)
    assert summary.readiness(RULES).set_index("rule").at["agent_connection", "fix"].startswith(want)
    # (one over IPv4 among them: the families differ, no family named)
    recs += unanswered(50302, "203.0.113.10", 23103, 1020.0, client="192.0.2.10")
    flows = analyze_file(write(tmp_path, recs, "mixed.pcap"), RULES).flows
    assert readiness(flows, RULES).set_index("rule").at["agent_connection", "fix"].startswith(
        "allow outbound TCP 23100-23199 to *.ksc.kaspersky.com")
