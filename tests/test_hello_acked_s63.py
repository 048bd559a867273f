"""Newcomer s63 #5 (an MTU black hole): the server acknowledged the agent's ClientHello, then none
of its answer arrived (its full-size ServerHello and certificate segments lost where the path's
MTU is smaller) until the agent reset the connection 30 s later. The advice named only a proxy,
TLS inspection or an application-aware firewall; it now names the lost full-size packets first
(report.hello_acked, report.HELLO_ACKED_FIX), in whole and chunked readings alike."""
from __future__ import annotations

from pcapbuild import step_records
from test_breakit_s58_real import _checklist
from test_newcomer30_findings import _hello

HELLO = _hello(b"eu1.ksc.kaspersky.com")


def _session(t0: float, sport: int, acked: bool = True):
    """A TCP handshake to 198.51.100.10:23101, the ClientHello, the server's bare ACK of it
    (``acked``), then nothing from the server until the client's RST 30 s later."""
    client, server = ("192.0.2.10", sport), ("198.51.100.10", 23101)
    end = 1001 + len(HELLO)
    steps = [("c", "S", 1000), ("s", "SA", 5000, 1001), ("c", "A", 1001, 5001), ("c", "PA", 1001, 5001, HELLO)]
    if acked:
        steps.append(("s", "A", 5001, end))
    return (step_records(steps, t0=t0, gap=0.01, client=client, server=server)
            + step_records([("c", "R", end)], t0=t0 + 30.0, client=client, server=server))


def test_a_clienthello_acknowledged_then_unanswered_advises_the_path_mtu_first(tmp_path):
    recs = _session(1000.0, 50000) + _session(1100.0, 50001)
    flows, status, fix = _checklist(tmp_path, recs, "agent_connection")
    tcp = flows[flows.proto == "tcp"]
    assert tcp.reason.tolist() == ["tls_failed"] * 2 and set(tcp.history) == {"ShADaR"}
    assert status == "blocked"
    assert fix == ("these 2 connections reached the server on TCP 23100-23199 (the TCP handshake completed: the "
                   "port is open), then the TLS handshake failed: the server acknowledged the ClientHello, then none "
                   "of its answer arrived (see each flow's detail): its first full-size packets (the ServerHello "
                   "and certificate) lost on the way, a path-MTU black hole (let ICMP fragmentation needed, type 3 "
                   "code 4, and ICMPv6 packet too big through, or lower the MTU / clamp the TCP MSS on a smaller "
                   "tunnel or link: a VPN, PPPoE), or a proxy, TLS inspection or an application-aware firewall "
                   "dropping the answer: let the agent's TLS to *.ksc.kaspersky.com through uninspected"), fix


def test_a_clienthello_never_acknowledged_keeps_the_inspection_advice(tmp_path):
    """No ACK of the ClientHello (it did not arrive, or a device took it): the advice as before."""
    recs = _session(1000.0, 50000, acked=False) + _session(1100.0, 50001)
    _, _, fix = _checklist(tmp_path, recs, "agent_connection")
    assert "path-MTU black hole" not in fix
    assert "a proxy, TLS inspection or an application-aware firewall in the path" in fix, fix
