"""Newcomer 21: the advice, checklist and report texts say what happened (see each test)."""
from __future__ import annotations

import html as h
import re

from scapy.all import IP, TCP

from conftest import ROOT
from kscc_traffic import analyze, load_rules, readiness
from kscc_traffic.html_report import render_html
from kscc_traffic.report import REASON_TEXT, TableSummary, render_table
from pcapbuild import eth, tcp_session
from checklistcheck import write as _write

SAMPLES = ROOT / "samples" / "captures"
RULES = load_rules()


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
    # (the sample's first intercepted flow, whose client refused the certificate, is blocked:
    # newcomer 23 F2; its advice is the inspection's, not the firewall's)
    assert sorted(zip(act.verdict, act.reason)) == [("blocked", "no_answer"), ("blocked", "tls_intercepted"),
                                                    ("ok", ""), ("unexpected", "tls_intercepted")]
    # (two captures: where the blocked ones are, newcomer 26 F4; the exclusion from inspection said
    # once, for the blocked ones, newcomer 26, duplicated advice)
    want = ("1 of 4 flows ok, 2 blocked, 1 unexpected (1 tls_intercepted). For the blocked ones (in "
            "intercepted_tls12.pcap and mixed.pcap): "
            + RULES.by_id("activation").fix + "; 1 of them reached the server (the TCP handshake completed), then "
            "the TLS handshake failed: a proxy, TLS inspection or an application-aware firewall in the path (see "
            "each flow's detail): let the agent's TLS to *.ksc.kaspersky.com through uninspected (1 of them aborted "
            "on a TLS-inspecting proxy's certificate: exclude these names from inspection). For the unexpected one: "
            "this connection on TCP 27200-27299 was answered (the port is open for it): tls_intercepted: a "
            "TLS-inspecting proxy's certificate, as for the blocked ones (see there)")
    assert want.count("exclude these names from inspection") == 1
    for chk in (readiness(flows, RULES), TableSummary.of(flows).readiness(RULES)):
        row = chk.set_index("rule").loc["activation"]
        assert (row.status, row.ok, row.blocked, row.unexpected) == ("blocked", 1, 2, 1)
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
    # (s60: an NXDOMAIN advised as such, newcomer s60 #7)
    from kscc_traffic.report import dns_nxdomain_fix
    fix = dns_nxdomain_fix(1)
    why = ("rejected : the resolver said the name does not exist (NXDOMAIN): a DNS filter, a local zone for the "
           "domain or a mistyped name")
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
    assert ("a local zone for the domain or a mistyped name; a TCP reset answered a DNS over TCP query: a firewall "
            "rejects TCP 53, or the resolver takes no DNS over TCP") in page
    # only the reset: no advice about error answers
    only = flows[flows.proto == "tcp"]
    page = _dns_finding(render_html(only, RULES, charts=False))
    assert "make the resolver answer" not in page and "resolver answered with an error" not in page
    assert f"What to change  {reset} (answers too large for UDP need it)  Why flagged" in page


# --- F4: a port unreachable from the destination itself: nothing listens there --------------------
def _unreachable(tmp_path, sender, icmp, v6=False):
    """A datagram from the connection gateway to an agent's UDP 15000 (IPv4, or IPv6 with
    ``v6``), answered by ``icmp`` (an ICMP layer) from ``sender``."""
    from scapy.layers.inet import UDP
    from scapy.layers.inet6 import IPv6
    gw, agent = ("2001:db8::20", "2001:db8::10") if v6 else ("198.51.100.20", "198.51.100.10")
    dgram = (IPv6(src=gw, dst=agent) if v6 else IP(src=gw, dst=agent)) / UDP(sport=15000, dport=15000) / (b"x" * 40)
    err = (IPv6(src=sender, dst=gw) if v6 else IP(src=sender, dst=gw)) / icmp / bytes(dgram)
    return _write(tmp_path, "unreach.pcap", [(1000.0, eth(dgram)), (1000.001, eth(err))])


def test_a_port_unreachable_from_the_destination_says_nothing_listens(tmp_path):
    from scapy.layers.inet import ICMP
    from scapy.layers.inet6 import ICMPv6DestUnreach
    for v6, sender, icmp, code in ((False, "198.51.100.10", ICMP(type=3, code=3), "3/3"),
                                   (True, "2001:db8::10", ICMPv6DestUnreach(code=4), "1/4")):
        flows = analyze(_unreachable(tmp_path, sender, icmp, v6), RULES)
        (r,) = flows.itertuples()
        assert (r.purpose, r.verdict, r.reason) == ("gateway_udp", "blocked", "icmp_unreachable")
        assert r.icmp_unreachable == f"port unreachable ({code}) from {sender}, the destination itself"
        assert r.detail == (f"answered by ICMP port unreachable ({code}) from {sender}, the destination itself: "
                            "the packet arrived, but nothing listens on that port there (the service is not "
                            "running), or the host's own firewall rejects it")
        want = ("this flow was answered by the destination host itself with ICMP port unreachable: UDP 15000 "
                "reached it, but nothing listens there: check that the service for it is running and listening "
                "on UDP 15000 there (receiving data from the connection gateway (managing client devices); the "
                "service: the Network Agent service, klnagent); if it is, the host's own firewall rejects it: " + RULES.by_id("gateway_udp").fix)
        for chk in (readiness(flows, RULES), TableSummary.of(flows).readiness(RULES)):
            assert chk.set_index("rule").loc["gateway_udp", "fix"] == want
        page = render_html(flows, RULES, charts=False)
        assert _html_fixes(page)["gateway_udp"] == want
        assert ("<b>icmp_unreachable</b>: the destination host itself answered with ICMP port unreachable: the "
                "packet arrived, but nothing listens on that port there") in page
        assert "a router or firewall answered" not in page


def test_a_routers_unreachable_keeps_the_firewall_advice(tmp_path):
    """3/13 (administratively prohibited) from the destination, 3/3 from a router: a refusal on
    the way, the rule's firewall advice as before."""
    from scapy.layers.inet import ICMP
    for sender, code in (("198.51.100.10", 13), ("198.51.100.1", 3)):
        flows = analyze(_unreachable(tmp_path, sender, ICMP(type=3, code=code)), RULES)
        (r,) = flows.itertuples()
        assert r.icmp_unreachable.endswith(f"({3}/{code}) from {sender}") and "nothing listens" not in r.detail
        assert readiness(flows, RULES).set_index("rule").loc["gateway_udp", "fix"] == RULES.by_id("gateway_udp").fix
        assert f"<b>icmp_unreachable</b>: {h.escape(REASON_TEXT['icmp_unreachable'])}" in \
            render_html(flows, RULES, charts=False)


# --- F11: attempts_over_time takes the rules as the other helpers do --------------------------------
def test_attempts_over_time_takes_rules_like_the_other_helpers():
    import kscc_traffic as kt
    flows = analyze(SAMPLES / "blocked_agent.pcap", RULES)
    default = kt.attempts_over_time(flows)
    assert default.shape == (60, 4) and int(default.to_numpy().sum()) == len(flows)
    assert default.equals(kt.attempts_over_time(flows, RULES))
    by_rules = kt.attempts_over_time(flows, RULES, bins=5)
    assert by_rules.shape == (5, 4) and int(by_rules.to_numpy().sum()) == len(flows)
    assert by_rules.equals(kt.attempts_over_time(flows, 5))        # (the earlier (flows, bins) call)
    assert by_rules.equals(kt.attempts_over_time(flows, bins=5))
    assert list(by_rules.columns) == ["ok", "blocked", "unexpected", "unclassified"]


# --- F9: seen one-way does not tell a capture on the receiving device to capture there -------------
def test_seen_one_way_does_not_assume_the_capture_was_elsewhere(tmp_path):
    from pcapbuild import udp
    recs = [udp(("198.51.100.20", 15000), ("198.51.100.255", 15000), b"x" * 40, t=1000.0,
                dst_mac="ff:ff:ff:ff:ff:ff")]
    flows = analyze(_write(tmp_path, "bcast.pcap", recs), RULES)
    row = readiness(flows, RULES).set_index("rule").loc["agent_broadcast"]
    assert row.status == "seen one-way"
    assert row.fix == ("1 flow on UDP 15000 seen, none answered (no answer is expected): this capture shows that "
                       "they were sent, not that they were received (one taken on a receiving device shows that "
                       "they reached its interface; its host firewall may still drop them). To verify, check on a "
                       "receiving device (a capture there, if this is not one, and its firewall log); what it "
                       "needs: " + RULES.by_id("agent_broadcast").fix)
    assert "To verify, capture on a receiving device" not in render_html(flows, RULES, charts=False)


# --- F10: purposes a custom capture filter leaves out are not plain "not seen" ---------------------
def test_a_custom_filter_marks_the_purposes_it_leaves_out():
    import io

    from kscc_traffic.live.filtercheck import purposes_outside
    from kscc_traffic.output import FlowSink
    from kscc_traffic.report import FILTERED_OUT
    from rich.console import Console
    ids = [r.id for r in RULES.rules]
    # (27201 is in activation's range 27200-27299; 15000 is two purposes' port)
    assert purposes_outside(RULES, "tcp port 27201 or udp port 15000") == \
        [i for i in ids if i not in ("activation", "gateway_udp", "agent_broadcast")]
    assert purposes_outside(RULES, "tcp") == ["gateway_udp", "agent_broadcast", "dp_multicast", "dp_ksn_proxy_udp"]
    assert purposes_outside(RULES, "tcp or udp") == []
    assert purposes_outside(RULES, "host 203.0.113.99") is None       # no purpose passes: cannot tell
    assert purposes_outside(RULES, "port ((") is None                  # does not compile

    flows = analyze(SAMPLES / "blocked_agent.pcap", RULES)
    seen = set(flows.purpose)

    def table(flt):
        buf = io.StringIO()
        sink = FlowSink("table", buf, RULES, lambda o: Console(file=o, width=200, color_system=None), flt)
        sink.add(flows)
        sink.close()
        return buf.getvalue()

    text = table("tcp")
    rows = {ln.split("│")[2].strip(): ln.split("│") for ln in text.splitlines() if ln.count("│") == 7}
    udp = ["gateway_udp", "agent_broadcast", "dp_multicast", "dp_ksn_proxy_udp"]
    gone = [r for r in udp if r not in seen]
    assert gone == ["gateway_udp", "agent_broadcast", "dp_multicast"]      # (the sample has a 15111 flow)
    for rule, cells in rows.items():
        assert (cells[4].strip(), cells[6].strip() == FILTERED_OUT) == (
            ("not seen", True) if rule in gone else (cells[4].strip(), False)), cells
    assert rows["dp_ksn_proxy_udp"][4].strip() == "blocked"
    assert ("Note: captured with a custom filter ('tcp'): 3 purposes not seen have no port it lets through "
            f"({FILTERED_OUT}): not seen says nothing about them") in text
    assert "Note: captured with a custom filter ('host 203.0.113.99'): a purpose not seen may have been " \
           "filtered out, not absent" in table("host 203.0.113.99")
    plain = table(None)
    assert FILTERED_OUT not in plain and "custom filter" not in plain


def test_live_with_a_custom_filter_says_what_it_left_out():
    """``live --filter`` in a namespace of its own (nothing captured): the table marks the
    purposes whose ports the filter drops and adds the note."""
    import sys

    import pytest

    import netns
    why = netns.why_unavailable()
    if why:
        pytest.skip(why)
    ns = netns.new_ns("f10")
    try:
        r = netns.run_in(ns, [sys.executable, "-m", "kscc_traffic", "live", "-i", "lo", "--filter",
                              "tcp port 27201 or udp port 15000", "--duration", "1"], timeout=60, check=False,
                         cwd=ROOT)
    finally:
        netns.delete_ns(ns)
    assert r.returncode == 0, r.stderr
    out = " ".join(r.stdout.split())
    assert out.count("│ not seen │ 0 │ filtered out by the capture filter │") == 12
    assert "│ activation │ tcp 27200-27299 │ not seen │ 0 │ │" in out
    assert ("Note: captured with a custom filter ('tcp port 27201 or udp port 15000'): 12 purposes not seen have "
            "no port it lets through (filtered out by the capture filter): not seen says nothing about them") in out


# --- F12: the live view on a narrow terminal: one line per flagged flow ----------------------------
def test_the_live_view_fits_a_narrow_terminal():
    import io

    from rich.console import Console

    from kscc_traffic.live.view import render
    evs = [{"ts": 1772442000.0 + k, "proto": "tcp", "orig_h": "2001:db8:21::10", "orig_p": 45692,
            "resp_h": "203.0.113.99", "resp_p": 23101 + k, "verdict": "blocked", "reason": "icmp_unreachable",
            "purpose": "agent_connection", "server_name": "eu1.ksc.kaspersky.com", "detail": "x"} for k in range(3)]
    for width, client in ((80, False), (120, True)):
        buf = io.StringIO()
        Console(file=buf, width=width, color_system=None).print(
            render({"interface": "v21c", "engine": "scapy", "packets": 9, "pps": 1.0},
                   {("agent_connection", "blocked"): 3}, evs, width))
        lines = buf.getvalue().splitlines()
        assert max(len(ln) for ln in lines) <= width
        rows = [ln for ln in lines if "tcp 203.0.113.99:231" in ln]
        assert [ln.split()[0] for ln in rows] == ["09:00:02", "09:00:01", "09:00:00"]   # one line each
        assert all(ln.split()[-2:] == ["agent_connection", "icmp_unreachable"] for ln in rows)
        assert all(("[2001:db8:21::10]:45692" in ln) == client for ln in rows)
        assert "eu1.ksc.kaspersky.com" not in buf.getvalue()
    # (no width: the full table, as before)
    buf = io.StringIO()
    Console(file=buf, width=200, color_system=None).print(render({}, {}, evs))
    assert "eu1.ksc.kaspersky.com" in buf.getvalue() and "time (UTC)" in buf.getvalue()
