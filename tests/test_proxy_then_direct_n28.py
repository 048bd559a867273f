"""The checklist's advice when a proxy refused the agent and the agent then tried direct (newcomer 28):

- F1: the proxy answered 407 (or 403) to CONNECT, then the agent's own direct SYN was reset (or
  dropped): "what to change" gives the proxy's advice first (the agent's configured path), then
  the direct attempt's firewall advice, not the firewall advice alone; in the terminal report,
  the HTML report and the several-captures checklist alike;
- F8: the proxy's advice says what the status seen calls for: a 407, the proxy account in the
  agent's proxy settings (or no authentication for the agent); a 403, the target allowed on the
  proxy; not one generic "407 = …, 403 = …" for both.

Captures built here with scapy (test_proxy_connect's helpers), addresses from the documentation
ranges."""
from __future__ import annotations

import html
import os
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from kscc_traffic import analyze
from kscc_traffic.html_report import render_html
from kscc_traffic.report import TableSummary, readiness
from kscc_traffic.rules import load_rules
from test_proxy_connect import CLIENT, _connect, _records, _write

RULES = load_rules()
ROOT = Path(__file__).resolve().parents[1]
PROXY = ("198.51.100.8", 8080)
SERVER = "203.0.113.10"
ALLOW = RULES.by_id("agent_connection").fix
REFUSED = "went through an HTTP proxy that refused or failed it: "
AUTH = ("407 (the proxy wants authentication): set the proxy account (user name and password) in the agent's proxy "
        "settings (Kaspersky Security Center: the Network Agent's proxy server settings, in its properties or its "
        "policy), or let the proxy allow the agent without authentication for *.ksc.kaspersky.com")
DENIED = "403 (the proxy's policy denies the target): allow *.ksc.kaspersky.com:23100-23199 on the proxy"
ANSWERS = {"407": b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"p\"\r\n"
                  b"Content-Length: 0\r\n\r\n",
           "403": b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"}


def _direct(how: str, port=51999, t0=102.0):
    """The agent's direct attempt to SERVER:23101 after the proxy refused: its SYN reset
    (``reset``) or sent 4 times unanswered (``dropped``)."""
    syn = Ether(src="02:00:00:00:00:10", dst="02:00:00:00:00:01") / IP(src=CLIENT, dst=SERVER, ttl=64) \
        / TCP(sport=port, dport=23101, flags="S", seq=700)
    if how == "reset":
        rst = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:10") / IP(src=SERVER, dst=CLIENT, ttl=50) \
            / TCP(sport=23101, dport=port, flags="RA", seq=0, ack=701)
        return [(t0, syn), (t0 + 0.02, rst)]
    return [(t0 + dt, syn) for dt in (0.0, 1.0, 3.0, 7.0)]


def _capture(tmp_path, status: str, how: str, name="p.pcap"):
    recs = _records([_connect(), ("s", ANSWERS[status])], port=53003, proxy=PROXY, close="s") + _direct(how)
    return _write(tmp_path, recs, name)


def _fix(flows):
    """The agent_connection fix of readiness() and of the table report's TableSummary (the same)."""
    a = readiness(flows, RULES).set_index("rule").loc["agent_connection"]
    b = TableSummary.of(flows).readiness(RULES).set_index("rule").loc["agent_connection"]
    assert (a.fix, a.status) == (b.fix, b.status)
    assert a.status == "blocked"
    return a.fix


def _terminal(*paths, chunk=None):
    """The "What to change" lines of the terminal report (wide enough for no wrapping)."""
    env = dict(os.environ, COLUMNS="4000", PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", *map(str, paths),
                        *(["--chunk-mib", str(chunk)] if chunk else [])],
                       capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert p.returncode == 1, p.stderr
    return p.stdout


@pytest.mark.parametrize("status, how", [("407", "reset"), ("403", "dropped")])
def test_proxy_refusal_then_direct_attempt_gives_both_advices(tmp_path, status, how):
    flows = analyze(str(_capture(tmp_path, status, how)))
    tcp = flows[flows.proto == "tcp"].sort_values("ts_ns")
    assert tcp.verdict.tolist() == ["blocked", "blocked"]
    assert tcp.reason.tolist() == ["rejected", "rejected" if how == "reset" else "no_answer"]
    assert (tcp.proxy_target != "").tolist() == [True, False]
    want = (f"1 of these 2 connections {REFUSED}{AUTH if status == '407' else DENIED}; the other one was blocked "
            f"going direct (through no proxy): {ALLOW}")
    assert _fix(flows) == want
    # the HTML report's checklist and finding say the same
    page = html.unescape(render_html(flows, RULES))
    assert page.count(want) == 2, page
    # the terminal report, whole and chunked
    path = tmp_path / "p.pcap"
    for out in (_terminal(path), _terminal(path, chunk=1)):
        assert f"agent_connection (blocked: {', '.join(sorted(set(tcp.reason)))}): {want}" in out, out


def test_several_captures_checklist_gives_each_proxy_advice_then_the_direct_one(tmp_path):
    a = _capture(tmp_path, "407", "reset", "a.pcap")
    b = _capture(tmp_path, "403", "dropped", "b.pcap")
    out = _terminal(a, b)
    assert (f"agent_connection (blocked: no_answer, rejected): blocked in a.pcap and b.pcap: 2 of these 4 "
            f"connections went through an HTTP proxy that refused or failed them: {AUTH}; {DENIED}; the 2 others "
            f"were blocked going direct (through no proxy): {ALLOW}") in out, out


@pytest.mark.parametrize("status", ["407", "403"])
def test_proxy_refusal_alone_says_what_its_status_calls_for(tmp_path, status):
    flows = analyze(str(_write(tmp_path, _records([_connect(), ("s", ANSWERS[status])], port=53003, proxy=PROXY,
                                                  close="s"))))
    fix = _fix(flows)
    assert fix == f"this connection {REFUSED}{AUTH if status == '407' else DENIED}"
    assert "407 = " not in fix and "403 = " not in fix


def test_proxy_silence_or_502_keeps_the_general_advice(tmp_path):
    # a 502 (the proxy could not reach the server): neither an account nor a policy to change
    recs = _records([_connect(), ("s", b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")], port=53003,
                    proxy=PROXY, close="s")
    fix = _fix(analyze(str(_write(tmp_path, recs))))
    assert fix == (f"this connection {REFUSED}502 (see each flow's detail): let the agent reach *.ksc.kaspersky.com "
                   "on TCP 23100-23199 through the proxy (a CONNECT, or a plain HTTP request), or exempt it from the "
                   "proxy")
