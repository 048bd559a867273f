"""Audit of session 25 (a network admin checking verdicts and advice against the vendor page):
each test builds a small capture and checks what the flow's detail, the checklist and the HTML say."""
from __future__ import annotations

import pytest
from scapy.all import ICMP, IP, TCP
from scapy.layers.inet6 import IPv6

from kscc_traffic import analyze, load_rules, readiness
from kscc_traffic.report import icmp_reason_text, render_table
from conftest import ROOT
from pcapbuild import CLIENT_MAC, SERVER_MAC, dns_answer as _dns, eth, syn_attempts as _syns, tcp_session
from checklistcheck import checklists as _rows, finding as _finding, write as _write

RULES = load_rules()


def _syn_icmp(client_port, server, port, sender, code, t, client="192.0.2.10"):
    """A SYN from ``client`` to ``server``:``port`` answered by ICMP 3/``code`` from ``sender``."""
    syn = IP(src=client, dst=server) / TCP(sport=client_port, dport=port, flags="S", seq=7)
    err = IP(src=sender, dst=client) / ICMP(type=3, code=code) / bytes(syn)[:28]
    return [(t, eth(syn)), (t + 0.01, eth(err, src=SERVER_MAC, dst=CLIENT_MAC))]


# --- 1: a port unreachable carrying a cloud server's own address: the detail says forged ----------
CLOUD_DETAIL = ("answered by ICMP port unreachable (3/3) from 203.0.113.10, the cloud server's own address: most "
                "likely forged by a firewall on the path (a reject rule answers in the name of the address it "
                "blocks); if no firewall rejects it, the cloud server refused the port")


def test_a_cloud_servers_port_unreachable_detail_says_forged_not_nothing_listens(tmp_path):
    flows = analyze(_write(tmp_path, "cloud.pcap", _syn_icmp(50000, "203.0.113.10", 23101, "203.0.113.10", 3,
                                                             1000.0)), RULES)
    (r,) = flows.itertuples()
    assert (r.purpose, r.verdict, r.reason) == ("agent_connection", "blocked", "icmp_unreachable")
    assert r.icmp_unreachable == "port unreachable (3/3) from 203.0.113.10, the destination itself"
    assert r.detail == CLOUD_DETAIL
    assert "nothing listens" not in r.detail and "host's own firewall" not in r.detail
    # the advice is still the cloud's (the flow counted by its new detail)
    for row in _rows(flows):
        assert row.loc["agent_connection", "fix"].startswith(
            "this flow was answered by ICMP port unreachable carrying the cloud server's own address, refusing TCP "
            "23101 on 203.0.113.10: most likely forged by a firewall on the path")
    finding = _finding(flows, "agent_connection")
    assert "icmp_unreachable : an ICMP port unreachable carrying the cloud server's own address answered" in finding
    assert "check that the service" not in finding


def test_on_premises_and_local_addresses_keep_nothing_listens(tmp_path):
    """A distribution point (§C), and a cloud purpose's port on a local address (no cloud server
    is there: a host of the customer's), keep "nothing listens there" and the service advice."""
    dp = analyze(_write(tmp_path, "dp.pcap", _syn_icmp(50000, "192.0.2.20", 13111, "192.0.2.20", 3, 1000.0)), RULES)
    assert list(dp.detail) == ["answered by ICMP port unreachable (3/3) from 192.0.2.20, the destination itself: the "
                               "packet arrived, but nothing listens on that port there (the service is not running), "
                               "or the host's own firewall rejects it"]
    # one cloud flow forged, one to a local address with nothing listening: each counted, each advised
    recs = (_syn_icmp(50000, "203.0.113.10", 23101, "203.0.113.10", 3, 1000.0)
            + _syn_icmp(50001, "10.0.0.5", 23102, "10.0.0.5", 3, 1001.0, client="10.0.0.10"))
    both = analyze(_write(tmp_path, "both.pcap", recs), RULES)
    assert sorted(both.detail.str.contains("nothing listens on that port there")) == [False, True]
    for row in _rows(both):
        assert row.loc["agent_connection", "fix"] == (
            RULES.by_id("agent_connection").fix + "; 1 of them was answered by ICMP port unreachable carrying the "
            "cloud server's own address (TCP 23101 on 203.0.113.10): most likely forged by a firewall on the path; "
            "if none does, report the server and port (TCP 23101 on 203.0.113.10) to Kaspersky support; 1 of them "
            "was answered by the destination host itself with ICMP port unreachable (nothing listens there): check "
            "that the service for it is running and listening on TCP 23100-23199 there (the cloud Administration "
            "Server receives connections from Administration Agents and secondary Administration Servers)")
    finding = _finding(both, "agent_connection")
    assert ("icmp_unreachable : 1 of them: the destination host itself answered with ICMP port unreachable: the "
            "packet arrived, but nothing listens on that port there") in finding
    assert "; 1 of them: an ICMP port unreachable carrying the cloud server's own address answered" in finding


def test_icmp_reason_text_counts_each_kind():
    assert icmp_reason_text(2, 0, 0).startswith("a router or firewall answered")
    assert icmp_reason_text(2, 0, 2).startswith("an ICMP port unreachable carrying the cloud server's own address")
    assert icmp_reason_text(3, 1, 0).startswith("a router or firewall answered with an ICMP error")
    assert "; 1 of them: the destination host itself answered" in icmp_reason_text(3, 1, 0)
    assert icmp_reason_text(2, 1, 1).startswith("1 of them: the destination host itself answered")


# --- 2: a connection to a Kaspersky name outside the mask that failed: not "nothing to change" -----
FAILED_ADVICE = ("this flow on TCP 80 went to a name outside *.digicert.com: Kaspersky names not on the KSC Cloud "
                 "Console port page (its other services: updates, KSN, licensing…), not this purpose's servers; it "
                 "failed (no answer, a reset, an ICMP error or an aborted TLS handshake: see each flow's detail): "
                 "a firewall or proxy on the path blocks that Kaspersky service, which the agent may need: allow it as "
                 "that service's own port list says (it is not a Cloud Console port)")


@pytest.mark.parametrize("reset, how", [
    (False, "(no_answer): SYN sent 3 times, no answer"),
    (True, "(rejected): the SYN was answered by a TCP reset"),
])
def test_a_failed_connection_to_a_kaspersky_name_outside_the_mask_says_it_failed(tmp_path, reset, how):
    recs = [_dns("dnl-03.geo.kaspersky.com", "198.18.1.3", 999.0)] + _syns(50000, "198.18.1.3", 80, 1000.0, reset)
    flows = analyze(_write(tmp_path, "dnl.pcap", recs), RULES)
    web = flows[flows.purpose == "cert_check"]
    # (the verdict stays unexpected/host_mismatch: not this purpose's traffic, so cert_check is not blocked)
    assert list(zip(web.verdict, web.reason, web.detail)) == [
        ("unexpected", "host_mismatch", f"dnl-03.geo.kaspersky.com is not under *.digicert.com; the connection "
                                        f"itself failed {how}")]
    for row in _rows(flows):
        assert (row.loc["cert_check", "status"], row.loc["cert_check", "fix"]) == ("unexpected", FAILED_ADVICE)
    assert "nothing to change" not in FAILED_ADVICE
    assert FAILED_ADVICE in _finding(flows, "cert_check")


def test_an_answered_kaspersky_name_keeps_nothing_to_change_and_another_name_counts_its_failure(tmp_path):
    from test_newcomer23_advice import _http
    ok = analyze(_write(tmp_path, "ok.pcap", _http("dnl-03.geo.kaspersky.com", 1000.0, server="198.18.1.3")), RULES)
    assert "failed" not in ok.detail.iloc[0]
    for row in _rows(ok):
        assert row.loc["cert_check", "fix"].endswith("nothing to change for the Cloud Console (those services "
                                                     "have their own port list)")
    # another program's name, unanswered, next to the answered Kaspersky one: counted
    recs = (_http("dnl-03.geo.kaspersky.com", 1000.0, server="198.18.1.3")
            + [_dns("www.example.com", "198.51.100.7", 1009.0)] + _syns(50001, "198.51.100.7", 80, 1010.0))
    mixed = analyze(_write(tmp_path, "mixed.pcap", recs), RULES)
    for row in _rows(mixed):
        assert row.loc["cert_check", "fix"] == (
            "these flows on TCP 80 went to names outside *.digicert.com: not this purpose's servers (1 of them "
            "Kaspersky names not on the KSC Cloud Console port page (its other services: updates, KSN, licensing…))."
            " If an agent made the others, check the Administration Server address, DNS and proxy it uses; else "
            "they are another program's traffic; 1 of them failed (no answer, a reset, an ICMP error or an aborted "
            "TLS handshake: see each flow's detail)")


# --- 3: cert_check is plain HTTP: its "port open" speaks of an HTTP request, not a TLS handshake ---
def test_cert_check_port_open_and_no_name_speak_of_http(tmp_path):
    from test_newcomer23_advice import _http
    from kscc_traffic.report import NOT_KSC_NOTE
    # alone, such a flow is no KSC agent traffic: no purpose is judged on it (newcomer 28 F4) ...
    alone = analyze(_write(tmp_path, "alone.pcap", _http("198.51.100.99", 1000.0)), RULES)
    for row in _rows(alone):
        assert (row.loc["cert_check", "status"], row.loc["cert_check", "status_note"],
                row.loc["cert_check", "fix"]) == ("not seen", NOT_KSC_NOTE, "")
    # ... beside an agent's connection (a KSC-only port), it is judged and its advice worded
    agent = tcp_session(("192.0.2.10", 50100), ("203.0.113.10", 23101), t0=990.0,
                        c_data=b"\x16\x03\x01\x00\x05hello", s_data=b"\x16\x03\x03\x00\x05there")
    flows = analyze(_write(tmp_path, "lit.pcap", agent + _http("198.51.100.99", 1000.0)), RULES)
    for row in _rows(flows):
        assert (row.loc["cert_check", "status"], row.loc["cert_check", "fix"]) == ("port open", (
            "1 flow on TCP 80 answered, but none named a server (no host name in an HTTP Host header or DNS answer "
            "seen): they may be another program's traffic. To verify the purpose, capture from the agent's start "
            "(its DNS lookup and HTTP request to *.digicert.com)"))
    blocked = analyze(_write(tmp_path, "syn80.pcap", agent + _syns(50000, "198.51.100.98", 80, 1000.0)), RULES)
    for row in _rows(blocked):
        assert row.loc["cert_check", "fix"].startswith(
            "no name was seen for this server (no DNS answer or host name in an HTTP Host header): it may be")
    # discovery (HTTPS on 443) keeps the TLS wording
    tls = analyze(_write(tmp_path, "443.pcap", agent + tcp_session(("192.0.2.10", 50002), ("198.51.100.97", 443),
                                                                    c_data=b"\x16\x03\x01\x00\x05hello",
                                                                    s_data=b"\x16\x03\x03\x00\x05there")), RULES)
    for row in _rows(tls):
        assert row.loc["discovery", "fix"].endswith("(no SNI, DNS answer or certificate seen): they may be another "
                                                    "program's traffic. To verify the purpose, capture from the "
                                                    "agent's start (its DNS lookup and TLS handshake to "
                                                    "*.ksc.kaspersky.com)")


# --- 4: the checklist's cells wrap on a narrow terminal: nothing cut ------------------------------
def _checklist(out):
    """(purpose id -> its reasons cell, its fragments joined; the checklist's lines) of a report."""
    lines = out[out.index("Readiness checklist"):].splitlines()
    end = next(i for i, x in enumerate(lines) if x.startswith("└"))
    cells, rows = {}, []
    for line in lines[:end]:
        if not line.startswith("│"):
            continue
        parts = [x.strip() for x in line.split("│")[1:-1]]
        if parts[1]:
            rows.append([parts[1], []])
        rows[-1][1].append(parts[5])
    for rule, pieces in rows:
        cells[rule] = pieces
    return cells, lines[:end + 1]


@pytest.mark.parametrize("width", [60, 80, 100, 200])
def test_the_checklist_reasons_wrap_instead_of_being_cut(tmp_path, width):
    recs = (_syn_icmp(50000, "203.0.113.13", 1443, "192.0.2.1", 13, 1000.0)
            + [(1001.0 + k, eth(IP(src="192.0.2.10", dst="203.0.113.13") / TCP(sport=50001, dport=1443, flags="S",
                                                                                seq=7))) for k in (0, 1, 3)]
            + [_dns("dnl-03.geo.kaspersky.com", "198.18.1.3", 1009.0)] + _syns(50002, "198.18.1.3", 80, 1010.0))
    flows = analyze(_write(tmp_path, "narrow.pcap", recs), RULES)
    want = readiness(flows, RULES).set_index("rule")["reasons"]
    assert want["ksn"] == "icmp_unreachable, no_answer" and want["cert_check"] == "host_mismatch"
    cells, lines = _checklist(render_table(flows, RULES, width=width))
    assert not any("…" in x for x in lines)
    assert max(len(x) for x in lines) <= width and all(x.endswith(("┓", "┃", "┩", "│", "┘")) for x in lines[1:])
    for rule, pieces in cells.items():
        assert "".join(pieces).replace(" ", "") == want[rule].replace(" ", ""), rule
    if width >= 100:   # (wide enough: every reason whole on its line, no word broken)
        assert cells["ksn"] in (["icmp_unreachable,", "no_answer"], ["icmp_unreachable, no_answer"])
        assert cells["cert_check"] == ["host_mismatch"]
    # the audit's case: the blocked sample on an 80-column terminal ("icmp_unrea…" before): whole there
    sample = analyze(ROOT / "samples" / "captures" / "blocked_agent.pcap", RULES)
    cells, lines = _checklist(render_table(sample, RULES, width=width))
    assert not any("…" in x for x in lines) and max(len(x) for x in lines) <= width
    want = readiness(sample, RULES).set_index("rule")["reasons"]
    for rule, pieces in cells.items():
        assert "".join(pieces).replace(" ", "") == want[rule].replace(" ", ""), rule
    if width >= 80:
        assert cells["ksn"] == cells["dp_ksn_proxy_udp"] == ["icmp_unreachable"]


# --- 5: a connection opened from outside to a cloud server's port on a local address ---------------
def _tls_session(client, server, t0):
    return tcp_session(client, server, t0=t0, c_data=b"\x16\x03\x01\x00\x05hello", s_data=b"\x16\x03\x03\x00\x05there")


INBOUND_DETAIL = ("an inbound connection: opened from outside (203.0.113.10, not a local address) to "
                  "192.168.1.10:23101, a local address, on a port the cloud server listens on (agent_connection): "
                  "the cloud server is never at a local address and never connects to agents, so this is not an "
                  "agent's connection to the cloud (a port forwarding to this host, or another program listening "
                  "on the port?)")


def test_a_connection_from_outside_to_a_cloud_port_on_a_local_address_is_wrong_direction(tmp_path):
    flows = analyze(_write(tmp_path, "in.pcap", _tls_session(("203.0.113.10", 50000), ("192.168.1.10", 23101),
                                                             1000.0)), RULES)
    assert list(zip(flows.purpose, flows.verdict, flows.reason, flows.detail)) == [
        ("agent_connection", "unexpected", "wrong_direction", INBOUND_DETAIL)]
    for row in _rows(flows):
        assert (row.loc["agent_connection", "status"], row.loc["agent_connection", "fix"]) == ("unexpected", (
            "this flow on TCP 23100-23199 was opened from outside towards an agent's address on a cloud server's port "
            "(an inbound connection: the cloud server is never at a local address and never connects to agents): a "
            "port forwarding to that host, or another program listening there; nothing to open for it (close such "
            "a port forwarding if it is not wanted)"))
    assert ("wrong_direction : the connection was opened from outside towards an agent's address on a cloud server's "
            "port") in _finding(flows, "agent_connection")
    # an unanswered SYN from outside: not "blocked" (nothing to open for it), the same wrong direction
    syns = [(1000.0 + k, eth(IP(src="198.51.100.5", dst="10.1.2.3") / TCP(sport=50001, dport=27201, flags="S",
                                                                           seq=7))) for k in (0, 1, 3)]
    unanswered = analyze(_write(tmp_path, "in_syn.pcap", syns), RULES)
    assert list(zip(unanswered.purpose, unanswered.verdict, unanswered.reason)) == [
        ("activation", "unexpected", "wrong_direction")]
    # IPv6: a unique local address answering, opened from a global one
    syn6 = IPv6(src="2001:db8::5", dst="fd00::10") / TCP(sport=50002, dport=23101, flags="S", seq=7)
    six = analyze(_write(tmp_path, "in6.pcap", [(1000.0, eth(syn6))]), RULES)
    assert list(six.reason) == ["wrong_direction"]


@pytest.mark.parametrize("client, server, port", [
    ("192.168.1.10", "203.0.113.10", 23101),   # the agent's own connection out
    ("192.0.2.10", "203.0.113.10", 23101),     # documentation ranges: neither is local
    ("203.0.113.10", "192.0.2.10", 23101),     # ... whichever way
    ("10.0.0.10", "10.0.0.20", 23101),         # both local (a lab, a relay): nothing shows the direction
    ("203.0.113.10", "192.168.1.10", 443),     # a web server behind a port forwarding: any web server's port
])
def test_other_directions_and_addresses_are_not_told_wrong(tmp_path, client, server, port):
    flows = analyze(_write(tmp_path, "x.pcap", _tls_session((client, 50000), (server, port), 1000.0)), RULES)
    assert list(flows.verdict) == ["ok"] and list(flows.reason) == [""]


def test_a_capture_started_mid_connection_is_not_told_wrong(tmp_path):
    """(no SYN captured: which side opened it is not seen)"""
    recs = _tls_session(("203.0.113.10", 50000), ("192.168.1.10", 23101), 1000.0)[3:]
    flows = analyze(_write(tmp_path, "mid.pcap", recs), RULES)
    assert "wrong_direction" not in set(flows.reason)
