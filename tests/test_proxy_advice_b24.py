"""The readiness checklist's advice for flows through an explicit HTTP proxy (break-it 24 F2-F4):

- a proxy that answered 2xx opened the tunnel: a TLS failure inside it gets the TLS advice, not
  "a proxy that refused or failed them" (F2);
- an interception inside the tunnel: the capture shows TCP to the proxy only, so no "reached the
  server … the port is open"; the proxy (named) made the connection and most likely inspects it
  itself (F3);
- one flow is "this connection … it", not "these connections" (cosmetics).

Captures built here with scapy (test_proxy_connect's helpers: real TLS 1.2 handshakes)."""
from __future__ import annotations

import pandas as pd
import pytest

from kscc_traffic import analyze
from kscc_traffic.report import TableSummary, readiness
from kscc_traffic.rules import load_rules
from test_proxy_connect import OK_200, _connect, _records, _tls, _write

RULES = load_rules()
PROXY = "10.0.0.1:3128"
REFUSED = ("went through an HTTP proxy that refused or failed {} (detail: 407 = the proxy wants authentication, "
           "403 = its policy denies the target): let the agent reach *.ksc.kaspersky.com on TCP 23100-23199 "
           "through the proxy (a CONNECT, or a plain HTTP request), or exempt it from the proxy")
TUNNEL = (f"went through the proxy {PROXY}, which opened the CONNECT tunnel (a 2xx answer; the capture shows TCP to "
          "the proxy only: the proxy made the connection to the server)")
INSPECTS = (", then the TLS handshake was aborted on a TLS-inspecting proxy's certificate (see each flow's detail): "
            f"the proxy {PROXY} most likely inspects it itself: exempt *.ksc.kaspersky.com from that proxy's SSL "
            "inspection")


def _fixes(flows, rule="agent_connection"):
    """The fix of ``rule`` from readiness() and from the table report's TableSummary (the same)."""
    a = readiness(flows, RULES).set_index("rule").loc[rule]
    b = TableSummary.of(flows).readiness(RULES).set_index("rule").loc[rule]
    assert a.fix == b.fix and a.status == b.status
    return a.status, a.fix


def _alert_in_tunnel(tmp_path):
    # CONNECT -> 200 -> ClientHello -> the server's fatal handshake_failure alert, the server closes
    hello = _tls(tmp_path)[0]
    return _records([_connect(), OK_200, hello, ("s", bytes.fromhex("15030300020228"))], close="s")


def _closed_in_tunnel(tmp_path):
    # CONNECT -> 200 -> ClientHello -> the proxy closes (its own connection to the server failed?)
    return _records([_connect(), OK_200, _tls(tmp_path)[0]], close="s")


@pytest.mark.parametrize("make", [_alert_in_tunnel, _closed_in_tunnel])
def test_tls_failed_after_the_proxy_said_200_is_not_a_proxy_refusal(tmp_path, make):
    flows = analyze(str(_write(tmp_path, make(tmp_path))))
    row = flows[flows.proto == "tcp"].iloc[0]
    assert (row.http_status, row.verdict, row.reason) == ("200", "blocked", "tls_failed")
    status, fix = _fixes(flows)
    assert status == "blocked"
    assert fix == (f"this connection {TUNNEL}, then the TLS handshake failed (see each flow's detail): inside the "
                   "tunnel, the proxy itself (its SSL inspection, or its own connection to the server failing) or a "
                   "firewall or TLS inspection behind it: let the agent's TLS to *.ksc.kaspersky.com through "
                   "uninspected (exempt *.ksc.kaspersky.com from that proxy's SSL inspection, if it inspects) and "
                   f"check that the proxy {PROXY} reaches *.ksc.kaspersky.com on TCP 23100-23199"), fix
    assert "refused or failed" not in fix


def test_interception_inside_the_tunnel_names_the_proxy(tmp_path):
    flows = analyze(str(_write(tmp_path, _records([_connect(), OK_200, *_tls(tmp_path, verify=True)]))))
    row = flows[flows.proto == "tcp"].iloc[0]
    assert (row.http_status, row.verdict, row.reason) == ("200", "blocked", "tls_intercepted")
    status, fix = _fixes(flows)
    assert fix == f"this connection {TUNNEL}{INSPECTS}", fix
    # (the capture shows no TCP handshake with the server: nothing says its port is open)
    assert "reached the server" not in fix and "nothing to open" not in fix


def test_refused_and_intercepted_counted_apart(tmp_path):
    recs = (_records([_connect(), ("s", b"HTTP/1.1 407 Auth\r\nContent-Length: 0\r\n\r\n")], port=50000)
            + _records([_connect(), OK_200, *_tls(tmp_path, verify=True)], port=50001, t0=100.5))
    flows = analyze(str(_write(tmp_path, recs)))
    assert sorted(flows[flows.proto == "tcp"].reason) == ["rejected", "tls_intercepted"]
    status, fix = _fixes(flows)
    assert fix == f"1 of these 2 connections {REFUSED.format('it')}; the other one {TUNNEL}{INSPECTS}", fix


@pytest.mark.parametrize("n", [1, 2])
def test_one_refused_connection_is_this_connection(tmp_path, n):
    answer = ("s", b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    recs = sum((_records([_connect(), answer], port=50000 + i, t0=100 + i) for i in range(n)), [])
    flows = analyze(str(_write(tmp_path, recs)))
    status, fix = _fixes(flows)
    assert fix == ("this connection " + REFUSED.format("it") if n == 1 else
                   "these 2 connections " + REFUSED.format("them")), fix


def test_tables_fed_to_readiness_count_what_the_proxy_answered():
    # a table fed to readiness() without http_status: a tls_intercepted flow through a proxy (its
    # tunnel was opened) is still not one the proxy refused, as before
    base = {"ts_ns": 0, "purpose": "agent_connection", "verdict": "blocked", "resp_h": "10.0.0.1", "resp_p": 3128,
            "proxy_target": "eu1.ksc.kaspersky.com:23101", "detail": ""}
    flows = pd.DataFrame([dict(base, reason="rejected"), dict(base, reason="tls_intercepted")])
    status, fix = _fixes(flows)
    assert fix == f"1 of these 2 connections {REFUSED.format('it')}; the other one {TUNNEL}{INSPECTS}", fix
    # the same with http_status: 407 refused, 200 passed; a tls_failed after 200 is no refusal either
    flows = pd.DataFrame([dict(base, reason="rejected", http_status="407"),
                          dict(base, reason="tls_failed", http_status="200")])
    status, fix = _fixes(flows)
    assert fix.startswith(f"1 of these 2 connections {REFUSED.format('it')}; the other one {TUNNEL}, then the TLS "
                          "handshake failed"), fix
