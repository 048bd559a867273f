"""Newcomer 29's findings on the report's wording and layout (F4, F7, F8, F9, F10), one section each;
each test crafts its own capture."""
from __future__ import annotations

import re

import subprocess
import sys

import pytest

pytest.importorskip("scapy")

from conftest import ROOT, documentation  # noqa: E402
from kscc_traffic import analyze, readiness  # noqa: E402
from kscc_traffic.html_report import render_html  # noqa: E402
from kscc_traffic.report import TableSummary, render_table  # noqa: E402
from kscc_traffic.rules import load_rules  # noqa: E402
from pcapbuild import pcap_bytes, tcp_session  # noqa: E402
from test_decode_more_encaps import client_hello  # noqa: E402

RULES = load_rules()
CLIENT, SERVER = "192.0.2.10", "203.0.113.10"


def _run(path, *args, columns=250):
    return subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", str(path), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120,
                          env={"COLUMNS": str(columns), "PATH": ""})


def _flat(text: str) -> str:
    return " ".join(text.split())


# --- F4: a captive portal's redirect of the ClientHello -------------------------------------------

def _portal(tmp_path, extra=()):
    """An agent's ClientHello on TCP 23102 answered by a captive portal's 302 (and ``extra`` records)."""
    redirect = b"HTTP/1.1 302 Found\r\nLocation: http://portal.example.com/login\r\nContent-Length: 0\r\n\r\n"
    recs = tcp_session((CLIENT, 50993), (SERVER, 23102), c_data=client_hello("eu1.ksc.kaspersky.com"),
                       s_data=redirect) + list(extra)
    path = tmp_path / "portal.pcap"
    path.write_bytes(pcap_bytes(sorted(recs, key=lambda r: r[0])))
    return path


def test_a_captive_portals_redirect_gets_portal_advice_not_tls_inspection(tmp_path):
    """Newcomer 29 F4: the redirect was advised as a failed TLS handshake ("a proxy, TLS
    inspection … let the agent's TLS … through uninspected"); a captive portal wants
    authenticating, or the agent's traffic exempted from it."""
    path = _portal(tmp_path)
    flows = analyze(str(path))
    assert (flows["verdict"].tolist(), flows["reason"].tolist()) == (["blocked"], ["rejected"])
    for chk in (readiness(flows, RULES), TableSummary.of(flows).readiness(RULES)):
        row = chk.set_index("rule").loc["agent_connection"]
        assert row["status"] == "blocked"
        fix = row["fix"]
        assert "uninspected" not in fix and "TLS inspection" not in fix, fix
        assert fix == ("this connection reached the server on TCP 23100-23199 (the TCP handshake completed: the "
                       "port is open), then an HTTP redirect (302) answered its ClientHello instead of the TLS "
                       "handshake: a captive portal or web filter in the path sends it to its own page (see each "
                       "flow's detail). Authenticate this network in the portal (or have its owner do it), or "
                       "exempt the agent's traffic (*.ksc.kaspersky.com, TCP 23100-23199) from the portal or "
                       "filter; no port is to be opened"), fix
    html = render_html(flows, RULES)
    assert "a redirect (301, 302, 303, 307, 308) sent the ClientHello to a captive portal" in html, html
    # blocked: --fail-on blocked counts it (the agent cannot connect)
    assert _run(path, "--fail-on", "blocked").returncode == 1


def test_a_redirect_beside_a_failed_tls_handshake_is_said_apart(tmp_path):
    """One redirect and one ClientHello reset by the server: both advised."""
    reset = tcp_session((CLIENT, 50994), (SERVER, 23101), t0=1001.0, c_data=client_hello("eu1.ksc.kaspersky.com"),
                        close=False)
    from scapy.all import Ether, IP, TCP
    reset.append((1001.2, Ether() / IP(src=SERVER, dst=CLIENT, ttl=52) / TCP(sport=23101, dport=50994, flags="R",
                                                                            seq=5001)))
    flows = analyze(str(_portal(tmp_path, reset)))
    assert sorted(flows["verdict"]) == ["blocked", "blocked"]
    fix = readiness(flows, RULES).set_index("rule").loc["agent_connection", "fix"]
    assert "; 1 of them was answered by an HTTP redirect (302): a captive portal or web filter" in fix, fix
    assert fix == TableSummary.of(flows).readiness(RULES).set_index("rule").loc["agent_connection", "fix"]


def test_readme_counts_a_captive_portals_redirect_as_blocked():
    text = _flat(documentation())
    assert "also a captive portal's answer to the ClientHello" not in text
    assert "a captive portal's redirect of the ClientHello counts too (`blocked`/`rejected`" in text


# --- F7: the Cloud Console server on a port the page does not document for it ---------------------

def _console_on_80(tmp_path, answered: bool):
    """An agent's connection on TCP 23101 and eu1.ksc.kaspersky.com (looked up) on TCP 80: an HTTP
    request answered 200 (``answered``), else a SYN never answered."""
    from scapy.all import DNS, DNSQR, DNSRR, IP, TCP
    from pcapbuild import eth, udp
    dns = DNS(id=7, qr=1, rd=1, ra=1, qd=DNSQR(qname="eu1.ksc.kaspersky.com"),
              an=DNSRR(rrname="eu1.ksc.kaspersky.com", type="A", rdata=SERVER, ttl=60))
    recs = [udp(("192.0.2.53", 53), (CLIENT, 41000), bytes(dns), t=999.0)]
    recs += tcp_session((CLIENT, 50100), (SERVER, 23101), t0=1000.0)
    if answered:
        recs += tcp_session((CLIENT, 50200), (SERVER, 80), t0=1002.0,
                            c_data=b"GET / HTTP/1.1\r\nHost: eu1.ksc.kaspersky.com\r\n\r\n",
                            s_data=b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    else:
        recs += [(1002.0 + k, eth(IP(src=CLIENT, dst=SERVER) / TCP(sport=50200, dport=80, flags="S", seq=9)))
                 for k in (0, 1, 3)]
    path = tmp_path / f"console80_{int(answered)}.pcap"
    path.write_bytes(pcap_bytes(sorted(recs, key=lambda r: r[0])))
    return analyze(str(path))


@pytest.mark.parametrize("answered", [True, False])
def test_the_cloud_console_server_on_an_undocumented_port_is_not_another_service(tmp_path, answered):
    """Newcomer 29 F7: eu1.ksc.kaspersky.com on TCP 80 was "Kaspersky names not on the KSC Cloud
    Console port page (its other services …)": *.ksc.kaspersky.com is on the page; what is not is
    the port."""
    flows = _console_on_80(tmp_path, answered)
    row80 = flows[flows["resp_p"] == 80].iloc[0]
    assert (row80["purpose"], row80["verdict"], row80["reason"]) == ("cert_check", "unexpected", "host_mismatch")
    for chk in (readiness(flows, RULES), TableSummary.of(flows).readiness(RULES)):
        fix = chk.set_index("rule").loc["cert_check", "fix"]
        assert "Kaspersky names not on the KSC Cloud Console port page" not in fix, fix
        assert "its other services" not in fix and "that Kaspersky service" not in fix, fix
        assert fix.startswith("this flow on TCP 80 went to the Cloud Console server (*.ksc.kaspersky.com) on a "
                              "port the KSC Cloud Console port page does not document for it"), fix
        assert ("it failed" in fix) is (not answered), fix   # (one flow: newcomer 30 F5)
    html = render_html(flows, RULES)
    assert "Kaspersky names not on the KSC Cloud Console port page" not in html
    assert "the Cloud Console server (*.ksc.kaspersky.com) on a port the KSC Cloud Console port page does not " \
           "document for it" in html


def test_readme_tells_the_cloud_consoles_names_on_another_port_apart():
    text = _flat(documentation())
    assert "the Cloud Console's own names, `eu1.ksc.kaspersky.com` on 80 say, are told as the Cloud Console " \
           "server on a port the page does not document for it" in text


# --- F8: DNS advice: the table, the HTML report and the notebook say the same -----------------------

def test_dns_advice_is_the_tables_and_the_html_reports(tmp_path):
    """Newcomer 29 F8: DNS has no checklist row but advice under "What to change"; the notebook's
    advice table lacked it. kscc_traffic.dns_advice gives the same advice (the notebook shows it:
    tests/test_notebook.py)."""
    import kscc_traffic
    from scapy.all import DNS, DNSQR
    from pcapbuild import udp
    q = DNS(id=9, rd=1, qd=DNSQR(qname="eu1.ksc.kaspersky.com"))
    recs = [udp((CLIENT, 41000), ("192.0.2.53", 53), bytes(q), t=999.0)]
    recs += tcp_session((CLIENT, 50100), (SERVER, 23101), t0=1000.0)
    path = tmp_path / "dns.pcap"
    path.write_bytes(pcap_bytes(sorted(recs, key=lambda r: r[0])))
    flows = analyze(str(path))
    adv = kscc_traffic.dns_advice(flows)
    assert adv is not None and (adv["rule"], adv["status"], adv["reasons"]) == ("dns", "blocked", "no_answer")
    assert adv["fix"].startswith("allow DNS (UDP and TCP 53) from the clients to their resolver"), adv["fix"]
    assert set(adv) >= set(readiness(flows, RULES).columns)
    table = _flat(render_table(flows, RULES, width=400))
    assert f"dns (blocked: no_answer): {adv['fix']}" in table
    import html as h
    assert h.escape(adv["fix"]) in render_html(flows, RULES)
    # nothing blocked in DNS: None
    ok = flows[flows["purpose"] != "dns"]
    assert kscc_traffic.dns_advice(ok, RULES) is None


# --- F9: no address or name cut mid-word between 120 and ~175 columns ----------------------------

def _v6_blocked(tmp_path):
    """eu1.ksc.kaspersky.com over IPv6: a SYN to [2001:db8:ffff::10]:23101 never answered."""
    from scapy.all import DNS, DNSQR, DNSRR, IPv6, TCP
    from pcapbuild import eth, udp
    dns = DNS(id=3, qr=1, rd=1, ra=1, qd=DNSQR(qname="eu1.ksc.kaspersky.com", qtype="AAAA"),
              an=DNSRR(rrname="eu1.ksc.kaspersky.com", type="AAAA", rdata="2001:db8:ffff::10", ttl=60))
    recs = [udp(("192.0.2.53", 53), (CLIENT, 41000), bytes(dns), t=999.0)]
    recs += [(1000.0 + k, eth(IPv6(src="2001:db8::10", dst="2001:db8:ffff::10")
                               / TCP(sport=50555, dport=23101, flags="S", seq=7), ) ) for k in (0, 1, 3, 7)]
    path = tmp_path / "v6.pcap"
    path.write_bytes(pcap_bytes(recs))
    return path


@pytest.mark.parametrize("columns", [125, 160])
def test_the_flagged_flows_never_cut_an_address_or_a_name(tmp_path, columns):
    """Newcomer 29 F9: at 125 and 160 columns the table printed ``eu1.ksc.kasper|sky.com`` and
    ``[2001:db8:fff|f::10]:23101``: one block per flow instead, every value whole on its line."""
    p = _run(_v6_blocked(tmp_path), columns=columns)
    assert p.returncode == 1, p.stderr
    out = p.stdout
    assert max(map(len, out.splitlines())) <= columns
    assert "┏━" not in out.split("Flagged flows")[1], out
    lines = out.split("Flagged flows (1)")[1].splitlines()
    # (session 32: a capture not of today has its date on a line of its own first)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \(UTC\)", lines[1]), lines
    lines = lines[1:]
    assert "[2001:db8::10]:50555 -> tcp [2001:db8:ffff::10]:23101  eu1.ksc.kaspersky.com" in lines[1], lines
    assert lines[2].split() == ["agent_connection", "blocked", "no_answer"], lines


def test_a_wide_terminal_keeps_the_table_whole(tmp_path):
    p = _run(_v6_blocked(tmp_path), columns=250)
    part = p.stdout.split("Flagged flows (1)")[1]
    assert "┏━" in part
    row = next(x for x in part.splitlines() if "2001:db8::10" in x)
    assert [c.strip() for c in row.split("│")[2:8]] == [
        "[2001:db8::10]:50555", "tcp [2001:db8:ffff::10]:23101", "eu1.ksc.kaspersky.com", "agent_connection",
        "blocked", "no_answer"]


# --- F10: --help is a flag; the live section says to wait for "Capturing on" ------------------------

@pytest.mark.parametrize("command", [[], ["analyze"], ["report"], ["live"], ["rules"]])
def test_help_shows_no_value_placeholder(command):
    """Newcomer 29 F10: ``kscc-traffic --help`` listed ``--help <bool>``."""
    p = subprocess.run([sys.executable, "-m", "kscc_traffic", *command, "--help"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120, env={"COLUMNS": "120", "PATH": ""})
    assert p.returncode == 0, p.stderr
    line = next(x for x in p.stdout.splitlines() if "--help" in x)
    assert "<bool>" not in p.stdout and "BOOLEAN" not in line, line
    assert line.split("│")[1].split() == ["--help", "Show", "this", "message", "and", "exit."], line


def test_readme_says_to_wait_for_capturing_on():
    text = _flat(documentation())
    assert "Wait for that line before starting the agent (or the traffic to test)" in text
