"""Newcomer s58 #1: an IPv6 connection attempt the server's host refused, followed at once by the
same client's IPv4 connection to the same server name (a dual-stack client's fallback, happy
eyeballs), was ``blocked`` in the checklist and failed the run (exit status 1) while the advice
said the purpose works. The flow keeps Zeek's ``REJ`` and history; its verdict is ``ok``, paired
with the IPv4 connection in the flow table itself (whole file, small chunks, live session)."""
from __future__ import annotations

import pytest
from scapy.layers.inet import TCP
from scapy.layers.inet6 import IPv6

from chunkcmp import assert_same, whole
from pcapbuild import eth, tcp_session, udp
from test_breakit_s58_real import V6_HOST, _checklist, _dns
from kscc_traffic.classify import FALLBACK_CLEARED, FALLBACK_MEANS, FALLBACK_S, REJ_DETAIL, fallback_name
from kscc_traffic.inspect import REFUSED_NEARER

NAME = "crl3.digicert.com"
SRV4, SRV6 = "198.51.100.11", "2001:db8:c::11"


def _hops(recs, src: str, hlim: int):
    """``recs`` with the hop limit of every IPv6 packet from ``src`` set to ``hlim``."""
    for _, frame in recs:
        if IPv6 in frame and frame[IPv6].src == src:
            frame[IPv6].hlim = hlim
    return recs


def _refused6(t: float, hlim: int, port: int = 80, sport: int = 45000):
    """V6_HOST's SYN to [SRV6]:``port`` at ``t``, answered 0.5 ms later by a reset with hop limit
    ``hlim``."""
    syn = IPv6(src=V6_HOST, dst=SRV6, hlim=64) / TCP(sport=sport, dport=port, flags="S", seq=7)
    rst = IPv6(src=SRV6, dst=V6_HOST, hlim=hlim) / TCP(sport=port, dport=sport, flags="RA", seq=0, ack=8)
    return [(t, eth(syn)), (t + 0.0005, eth(rst, src="02:00:00:00:00:01", dst="02:00:00:00:00:10"))]


def _recs(v4_after: float | None = 0.001, reset_hlim: int = 63, server_hlim: int = 63, v4_name: str = NAME):
    """The DNS answer for NAME (A and AAAA), an IPv6 connection to SRV6 port 443 that worked (its
    packets' hop limit ``server_hlim``: what the reset's is compared with), the IPv6 attempt to port
    80 at 1000.01 refused by a reset of hop limit ``reset_hlim``, and an IPv4 connection to port 80
    ``v4_after`` s after it (None: none) to ``v4_name``'s address."""
    recs = _dns(NAME, [SRV4, SRV6], 1000.0, 40001, 1)
    recs += _hops(tcp_session((V6_HOST, 44000), (SRV6, 443), t0=1000.002), SRV6, server_hlim)
    recs += _refused6(1000.01, reset_hlim)
    if v4_after is not None:
        server = SRV4
        if v4_name != NAME:
            server = "203.0.113.80"
            recs += _dns(v4_name, [server], 1000.005, 40002, 2)
        recs += tcp_session(("192.0.2.10", 46000), (server, 80), t0=1000.01 + v4_after,
                            c_data=f"GET /x.crl HTTP/1.1\r\nHost: {v4_name}\r\n\r\n".encode(),
                            s_data=b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    return recs


def _port80(flows):
    return flows[(flows.proto == "tcp") & (flows.resp_p == 80)].sort_values("ts_ns").reset_index(drop=True)


def test_ipv6_refused_by_the_servers_host_then_ipv4_at_once_is_ok_with_zeeks_state(tmp_path):
    """The IPv6 attempt keeps REJ / Sr, is ok, its detail names the fallback (and the IPv4 flow's
    uid), keeps the hop-limit hint without "nothing listens on this port"; the purpose is verified; the same whole, in 512-byte chunks and in the table report's checklist."""
    flows, status, fix = _checklist(tmp_path, _recs(), "cert_check")
    t = _port80(flows)
    assert t.resp_h.tolist() == [SRV6, SRV4]
    assert t.conn_state.tolist() == ["REJ", "SF"] and t.history[0] == "Sr"
    assert t.verdict.tolist() == ["ok", "ok"] and t.reason.tolist() == ["", ""]
    assert t.detail[0] == (
        f"{FALLBACK_CLEARED}00:16:40.010 UTC, the client fell back to IPv4 0.001 s later (192.0.2.10:46000 -> "
        f"198.51.100.11:80, uid {t.uid[1]}): "
        f"{REJ_DETAIL}, and a connection to the same server name and port over IPv4 followed and connected (a "
        f"dual-stack client's fallback, happy eyeballs): {FALLBACK_MEANS}; the reset came with the server's own "
        "hop limit (63, as its packets on other connections)"), t.detail[0]
    assert "nothing listens" not in t.detail[0]
    # (a verified purpose's fix is its rule's, shown by no report)
    assert (status, fix) == ("verified", "allow outbound HTTP (TCP 80) to *.digicert.com (any address in the mask)")


def test_the_run_exits_0_and_every_output_agrees(tmp_path):
    """analyze's exit status (also --fail-on blocked), its JSON Lines and the HTML report's line."""
    import json

    from typer.testing import CliRunner     # (typer's own: click is typer's vendored copy, not installed)

    from chunkcmp import write
    from kscc_traffic.cli import app
    path = write(tmp_path, sorted(_recs(), key=lambda r: r[0]))
    run = CliRunner()
    cli = app
    table = run.invoke(cli, ["analyze", str(path)])
    assert table.exit_code == 0, table.output
    assert "0 blocked" in table.output and "refused over IPv6" not in table.output   # (no flagged flow)
    assert run.invoke(cli, ["analyze", str(path), "--fail-on", "blocked"]).exit_code == 0
    out = run.invoke(cli, ["analyze", str(path), "-f", "jsonl"])
    rows = [json.loads(x) for x in out.output.splitlines() if x.startswith("{")]
    rej = [r for r in rows if r["conn_state"] == "REJ"]
    assert [(r["verdict"], r["history"]) for r in rej] == [("ok", "Sr")]
    html = run.invoke(cli, ["report", str(path), "--html", str(tmp_path / "r.html")])
    assert html.exit_code == 0, html.output
    assert "0 blocked" in html.output


@pytest.mark.parametrize("case", ["nearer", "too_late", "other_name", "no_ipv4"])
def test_a_refusal_that_is_no_fallback_stays_blocked(tmp_path, case):
    """A reset from a device nearer than the server (hop limit 63 where the server's packets come
    with 58: a firewall refusing IPv6), an IPv4 connection beyond FALLBACK_S, to another name, or
    none: the IPv6 attempt stays blocked/rejected."""
    recs = {"nearer": lambda: _recs(server_hlim=58),
            "too_late": lambda: _recs(v4_after=FALLBACK_S + 1.0),
            "other_name": lambda: _recs(v4_name="other.example.net"),
            "no_ipv4": lambda: _recs(v4_after=None)}[case]()
    flows, status, fix = _checklist(tmp_path, recs, "cert_check")
    t = _port80(flows)
    assert t.conn_state[0] == "REJ" and (t.verdict[0], t.reason[0]) == ("blocked", "rejected")
    assert t.detail[0].startswith(REJ_DETAIL)
    assert status == "blocked"
    if case == "nearer":
        assert REFUSED_NEARER in t.detail[0]
        assert "the IPv6 path is blocked" in fix and "no fallback seen" not in fix, fix
    if case == "too_late":
        # (IPv4 to the same name worked, 3 s later: no fallback of that attempt; the advice says so
        # and does not say "nothing is to be opened" under a blocked status)
        assert fix.startswith(
            "1 of 2 flows ok, 1 blocked: this connection attempt was refused over IPv6 by a TCP reset (no sign of a "
            "device nearer than the server), and no connection over IPv4 to the same server name and port followed "
            "within 2 s (no fallback seen), while IPv4 to the same server names worked: most likely the server's "
            "host does not take TCP 80 over IPv6, and this client did not fall back to IPv4 at once"), fix
        assert "nothing is to be opened" not in fix


def test_the_fallback_is_found_across_batches(tmp_path):
    """The IPv4 connection 1.9 s after the refusal and DNS traffic every 0.25 s to 1012: in
    256-byte chunks the refused attempt leaves (5 s after its reset) in a batch before the IPv4
    connection: held until it is known, the same table as the whole file."""
    recs = _recs(v4_after=1.9)
    for k in range(48):
        recs.append(udp(("192.0.2.10", 41000 + k), ("198.51.100.53", 53), b"x" * 40, t=1000.5 + 0.25 * k))
    from chunkcmp import write
    path = write(tmp_path, sorted(recs, key=lambda r: r[0]))
    flows = assert_same(path, [256, 512, 1024])
    t = _port80(flows)
    assert t.verdict.tolist() == ["ok", "ok"] and t.detail[0].startswith(f"{FALLBACK_CLEARED}00:16:40.010 UTC")


def test_the_live_session_pairs_them_as_the_file_analysis(tmp_path, monkeypatch):
    from kscc_traffic.live.session import LiveSession
    from chunkcmp import RULES, write
    from test_live_session import _replay, assert_live_same
    path = write(tmp_path, sorted(_recs(), key=lambda r: r[0]))
    assert_live_same(path, monkeypatch, step=3)
    s = LiveSession(RULES, name=path.name)
    _replay(path, s, step=3)
    t = _port80(s.final())
    assert t.verdict.tolist() == ["ok", "ok"] and t.detail[0].startswith(FALLBACK_CLEARED)


def test_fallback_name():
    assert fallback_name("CRL3.DigiCert.com.") == "crl3.digicert.com"
    assert fallback_name("2001:db8::1") == "" and fallback_name("198.51.100.1") == ""
    assert fallback_name("") == "" and fallback_name(None) == "" and fallback_name(float("nan")) == ""


def test_whole_file_of_the_newcomers_capture_when_present():
    """The newcomer's capture (a curl to an IPv4-only server, s58 real-stack pass): exit status 0."""
    from pathlib import Path
    p = Path("/tmp/s58/real/caps/he_v4only_server.pcap")
    if not p.exists():
        pytest.skip("the s58 real-stack captures are not on this machine")
    flows, _ = whole(p)
    rej = flows[flows.conn_state == "REJ"]
    assert rej.verdict.tolist() == ["ok"] and rej.detail.iloc[0].startswith(FALLBACK_CLEARED)


# --- #2: handshake_failure answering the ClientHello: the advice follows the detail ------------------

def test_the_quick_start_samples_cipher_suite_refusal_advice_follows_the_detail():
    """blocked_agent.pcap (the README's first command): the flow's detail and the checklist say the
    same thing (the checklist said "a proxy, TLS inspection or an application-aware firewall … let
    the agent's TLS through uninspected" alone). Its ClientHello is a current offer (TLS 1.3, x25519:
    newcomer s59 #3), so both name what answered in the server's place first, not the agent's TLS
    policy (a narrow offer's advice: tests/test_newcomer_s59_advice.py)."""
    from conftest import ROOT
    from chunkcmp import RULES
    from kscc_traffic.classify import OFFER_CURRENT_SAID, SUITES_REFUSED
    from kscc_traffic.report import readiness
    flows, _ = whole(ROOT / "samples" / "captures" / "blocked_agent.pcap")
    tls = flows[(flows.purpose == "agent_connection") & (flows.verdict == "blocked")]
    assert tls.reason.tolist() == ["tls_failed"]
    assert f"handshake_failure (40): {SUITES_REFUSED}, {OFFER_CURRENT_SAID} (TLS 1.3 and 1.2, 18 cipher suites " \
           "(ECDHE AES-GCM among them), the x25519 and secp256r1 groups): not a TLS policy on the agent's device " \
           "most likely" in tls.detail.iloc[0]
    fix = readiness(flows, RULES).set_index("rule").at["agent_connection", "fix"]
    assert fix == (
        "this connection reached the server on TCP 23100-23199 (the TCP handshake completed: the port is open, "
        "nothing to open in the firewall), then the server's side accepted none of the cipher suites, key-exchange "
        "groups or signature algorithms the agent offered, though its offer was a current one, which any current "
        "server accepts (see each flow's detail): look first at what answered in the server's place, an old proxy, "
        "firewall or TLS-inspecting device (update it, or let the agent's TLS to *.ksc.kaspersky.com through it "
        "uninspected) or another server at that address; the agent's TLS settings are the unlikely cause")


def test_cipher_suite_refusals_are_counted_and_advised_apart():
    """cert_counts counts them as their own kind; cert_fix says it per kind ("1 of them: …"), and on a
    distribution point's port names both Network Agents' TLS settings."""
    from chunkcmp import RULES
    from kscc_traffic.classify import SUITES_REFUSED, VERSION_REFUSED
    from kscc_traffic.report import CERT_KINDS, SUITES_FIX_DP, cert_counts, cert_fix
    details = [f"TLS handshake aborted: server: handshake_failure (40): {SUITES_REFUSED} (…)",
               f"TLS handshake aborted: server: protocol_version (70): {VERSION_REFUSED}",
               "TLS handshake aborted: server: handshake_failure (40)"]
    counts = cert_counts(details, ["tls_failed"] * 3)
    assert CERT_KINDS == 9 and counts == (0, 0, 0, 0, 0, 0, 1, 1, 0)
    fix = cert_fix(RULES.by_id("agent_connection"), counts)
    assert fix.startswith("1 of them: the server's side accepted none of the TLS versions")
    assert "; 1 of them: the server's side accepted none of the cipher suites, key-exchange groups or signature " \
           "algorithms the agent offered (see each flow's detail): check the agent's TLS settings (a cipher-suite " \
           "policy (GPO)" in fix, fix
    # (not counted: another reason, or no explanation of the alert)
    assert cert_counts(details[:1], ["rejected"]) == (0,) * 9
    assert cert_counts(details[2:], ["tls_failed"]) == (0,) * 9
    dp = [r for r in RULES.rules if r.id == "dp_agent_connection"][0]
    assert cert_fix(dp, (0, 0, 0, 0, 0, 0, 0, 2), alone=True) == SUITES_FIX_DP


# --- #6: unexpected flows alone fail the run under the default --fail-on: a Note says so -------------

def test_unexpected_flows_alone_get_a_note_on_the_exit_status():
    """unexpected_agent.pcap (a bundled sample: host_mismatch flows, "nothing to change for the Cloud
    Console"): the status stays 1 under the default (the documented contract of --fail-on flagged),
    with one Note: line saying --fail-on blocked; none with --fail-on given, nor when something is
    blocked (blocked_agent.pcap)."""
    import subprocess
    import sys

    from conftest import ROOT
    from kscc_traffic.cli import UNEXPECTED_ONLY_LINE

    def run(name, *extra):
        p = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze",
                            str(ROOT / "samples" / "captures" / name), "-f", "jsonl", *extra],
                           capture_output=True, text=True, cwd=ROOT, timeout=120)
        return p.returncode, [x for x in p.stderr.splitlines() if x.startswith("Note:")]
    assert run("unexpected_agent.pcap") == (1, [f"Note: {UNEXPECTED_ONLY_LINE}"])
    assert run("unexpected_agent.pcap", "--fail-on", "flagged") == (1, [])
    assert run("unexpected_agent.pcap", "--fail-on", "blocked") == (0, [])
    assert run("blocked_agent.pcap") == (1, [])
