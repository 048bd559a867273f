"""The readiness checklist's advice for flows through an explicit HTTP proxy (break-it 24 F2-F4):

- a proxy that answered 2xx opened the tunnel: a TLS failure inside it gets the TLS advice, not
  "a proxy that refused or failed them" (F2);
- an interception inside the tunnel: the capture shows TCP to the proxy only, so no "reached the
  server … the port is open"; the proxy (named) made the connection and most likely inspects it
  itself (F3);
- blocked direct attempts while the ok ones went through a proxy: the proxy path works, the
  direct one is blocked (F4);
- one flow is "this connection … it", not "these connections" (cosmetics).

Captures built here with scapy (test_proxy_connect's helpers: real TLS 1.2 handshakes)."""
from __future__ import annotations

import pandas as pd
import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from kscc_traffic import analyze
from kscc_traffic.report import TableSummary, readiness
from kscc_traffic.rules import load_rules
from test_proxy_connect import CLIENT, OK_200, _connect, _records, _tls, _write

RULES = load_rules()
PROXY = "10.0.0.1:3128"
ALLOW = RULES.by_id("agent_connection").fix
REFUSED = ("went through an HTTP proxy that refused or failed {} (detail: 407 = the proxy wants authentication, "
           "403 = its policy denies the target): let the agent reach *.ksc.kaspersky.com on TCP 23100-23199 "
           "through the proxy (a CONNECT, or a plain HTTP request), or exempt it from the proxy")
# (what the proxy answered known: the advice for it; newcomer 28 F8)
REFUSED_403 = ("went through an HTTP proxy that refused or failed {}: 403 (the proxy's policy denies the target): "
               "allow *.ksc.kaspersky.com:23100-23199 on the proxy")
REFUSED_407 = ("went through an HTTP proxy that refused or failed {}: 407 (the proxy wants authentication): set the "
               "proxy account (user name and password) in the agent's proxy settings (Kaspersky Security Center: the "
               "Network Agent's proxy server settings, in its properties or its policy), or let the proxy allow the "
               "agent without authentication for *.ksc.kaspersky.com")
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
                   "tunnel, the proxy itself (its SSL inspection or policy, or its own connection to the server "
                   "failing) or a firewall or TLS inspection behind it: let the agent's TLS to *.ksc.kaspersky.com "
                   "through uninspected (exempt *.ksc.kaspersky.com from that proxy's SSL inspection, if it inspects) and "
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
    # (a 403: a 407 whose client got the same target through the proxy 0.5 s later, as here, was
    # an authentication round, ok: test_proxy_auth_retry)
    recs = (_records([_connect(), ("s", b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")], port=50000)
            + _records([_connect(), OK_200, *_tls(tmp_path, verify=True)], port=50001, t0=100.5))
    flows = analyze(str(_write(tmp_path, recs)))
    assert sorted(flows[flows.proto == "tcp"].reason) == ["rejected", "tls_intercepted"]
    status, fix = _fixes(flows)
    assert fix == f"1 of these 2 connections {REFUSED_403.format('it')}; the other one {TUNNEL}{INSPECTS}", fix


@pytest.mark.parametrize("n", [1, 2])
def test_one_refused_connection_is_this_connection(tmp_path, n):
    answer = ("s", b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    recs = sum((_records([_connect(), answer], port=50000 + i, t0=100 + i) for i in range(n)), [])
    flows = analyze(str(_write(tmp_path, recs)))
    status, fix = _fixes(flows)
    assert fix == ("this connection " + REFUSED_403.format("it") if n == 1 else
                   "these 2 connections " + REFUSED_403.format("them")), fix


def _syns(dst="203.0.113.10", port=50700, times=(200.0, 201.0, 203.0, 207.0)):
    """A direct connection attempt to dst:23101 whose SYN (sent len(times) times) nobody answers."""
    return [(t, Ether(src="02:00:00:00:00:10", dst="02:00:00:00:00:01") / IP(src=CLIENT, dst=dst)
             / TCP(sport=port, dport=23101, flags="S", seq=77)) for t in times]


def _syn_ack(dst="203.0.113.10", port=50701, t=210.0):
    """A direct connection to dst:23101 that completed, with a byte each way (ok)."""
    out, seq = [], {"c": 1, "s": 9}

    def seg(side, flags, data=b""):
        src, to = (CLIENT, dst) if side == "c" else (dst, CLIENT)
        sp, dp = (port, 23101) if side == "c" else (23101, port)
        other = "s" if side == "c" else "c"
        out.append((t + len(out) * 0.001, Ether() / IP(src=src, dst=to)
                    / TCP(sport=sp, dport=dp, flags=flags, seq=seq[side], ack=seq[other] if "A" in flags else 0)
                    / data))
        seq[side] += len(data) + (1 if "S" in flags or "F" in flags else 0)
    for side, flags in (("c", "S"), ("s", "SA"), ("c", "A")):
        seg(side, flags)
    return out


def test_direct_blocked_while_the_proxy_path_works(tmp_path):
    recs = _syns() + _records([_connect(), OK_200, *_tls(tmp_path)], port=50706, t0=210.0)
    flows = analyze(str(_write(tmp_path, recs)))
    tcp = flows[flows.proto == "tcp"]
    assert sorted(zip(tcp.verdict, tcp.proxy_target != "")) == [("blocked", False), ("ok", True)]
    status, fix = _fixes(flows)
    assert fix == ("1 of 2 flows ok, 1 blocked (all blocked direct, the ok ones through the proxy 10.0.0.1:3128: the "
                   "proxy path works, the direct path is blocked): configure the agent (Network Agent's proxy "
                   f"settings) to use the proxy for all its connections, or open the direct path: {ALLOW}"), fix


def test_direct_blocked_and_direct_ok_is_no_proxy_split(tmp_path):
    # both direct: the split is not about the proxy ("the others worked"), nor with one more
    # direct ok flow beside the proxied one
    flows = analyze(str(_write(tmp_path, _syns() + _syn_ack())))
    status, fix = _fixes(flows)
    assert fix == f"1 of 2 flows ok, 1 blocked (the others worked: compare clients, addresses and ports): {ALLOW}"
    recs = _syns() + _syn_ack() + _records([_connect(), OK_200, *_tls(tmp_path)], port=50706, t0=220.0)
    status, fix = _fixes(analyze(str(_write(tmp_path, recs, "b.pcap"))))
    assert fix.startswith("2 of 3 flows ok, 1 blocked (the others worked") and "proxy" not in fix, fix


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
    assert fix.startswith(f"1 of these 2 connections {REFUSED_407.format('it')}; the other one {TUNNEL}, then the TLS "
                          "handshake failed"), fix


def _batched(flows):
    """The agent_connection fix of the table report fed one flow at a time, and of the whole table."""
    summary = TableSummary()
    for i in range(len(flows)):
        summary.add(flows.iloc[[i]])
    return (summary.readiness(RULES).set_index("rule").loc["agent_connection", "fix"],
            readiness(flows, RULES).set_index("rule").loc["agent_connection", "fix"])


def test_table_report_batches_add_the_paths_up(tmp_path):
    # the table report counts batch by batch: the proxied ok flow in one batch, the blocked direct
    # one in another still make the proxy-path split, as the whole table does
    proxied = _records([_connect(), OK_200, *_tls(tmp_path)], port=50706, t0=210.0)
    batched, whole = _batched(analyze(str(_write(tmp_path, _syns() + proxied))))
    assert batched == whole and "the proxy path works, the direct path is blocked" in whole, whole
    # and an interception in another tunnel beside them: "the others worked", the tunnel's own advice
    intercepted = _records([_connect(), OK_200, *_tls(tmp_path, verify=True)], port=50707, t0=215.0)
    batched, whole = _batched(analyze(str(_write(tmp_path, _syns() + proxied + intercepted, "b.pcap"))))
    assert batched == whole
    assert whole.startswith("1 of 3 flows ok, 2 blocked (the others worked"), whole
    assert f"; 1 of them {TUNNEL}{INSPECTS}" in whole, whole


def test_http_refusal_inside_the_tunnel_is_the_tunnel_advice(tmp_path):
    # CONNECT -> 200, then a 403 in HTTP answers the ClientHello inside the tunnel: the proxy passed
    # the CONNECT on; what refused the TLS is inside (the proxy's policy on the name it read, or a
    # filter behind it): not "a proxy that refused or failed it"
    refusal = ("s", b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    flows = analyze(str(_write(tmp_path, _records([_connect(), OK_200, _tls(tmp_path)[0], refusal], close="s"))))
    row = flows[flows.proto == "tcp"].iloc[0]
    assert (row.http_status, row.verdict, row.reason) == ("200", "blocked", "rejected")
    status, fix = _fixes(flows)
    assert fix.startswith(f"this connection {TUNNEL}, then the TLS handshake failed (see each flow's detail): inside "
                          "the tunnel, the proxy itself (its SSL inspection or policy"), fix
    assert "refused or failed" not in fix
