"""Retried connections misjudged until session 36 (helper `retries`), in captures built with
scapy, whole file and in chunks alike.

1. A SYN refused by the server's own reset, then, more than REFUSED_RETRY_S later (too late to
   clear the refused attempt: it stays ``blocked``/``rejected``), a connection to the same server
   and port that worked, from this client or another: the server restarted. The advice said
   "nothing listens on this port there (a wrong port?…) Check first the port the agent is set to
   use", wrong when the same server and port accepted a connection in the capture: it now says
   when the port was refused and when accepted (the service was down or restarting). The same
   whether the report is built from the whole table or batch by batch (a chunked reading).
2. An agent behind a firewall that refuses with resets, trying 30 cloud addresses on one port
   (each attempt refused, then tried again from another source port, as a program's connect()
   retry): ``blocked``/``rejected``, no address scan (19 of its 90 flows were one). A scanner
   does not try a refused port of a host again: a sweep of one SYN per address stays an address
   scan beside the agent, a port scan stays a port scan.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from scapy.layers.inet import TCP

from chunkcmp import RULES, assert_same, chunked, write
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth, ip_of

from kscc_traffic.report import TableSummary, readiness

C, C2, S, S2 = "192.0.2.10", "192.0.2.11", "203.0.113.10", "203.0.113.11"


def _pkt(t, c, s, sp, dp, up, flags, seq, ack=0, data=b""):
    """One TCP packet of the connection ``c``:``sp`` -> ``s``:``dp`` (``up``: from ``c``)."""
    src, dst, sport, dport = (c, s, sp, dp) if up else (s, c, dp, sp)
    macs = {} if up else {"src": SERVER_MAC, "dst": CLIENT_MAC}
    return t, bytes(eth(ip_of(src, dst) / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack) / data,
                        **macs))


def _refused(t, c, s, sp, dp):
    """A SYN answered by the server's reset (TTL 64, as its other packets)."""
    return [_pkt(t, c, s, sp, dp, True, "S", 1000), _pkt(t + .02, c, s, sp, dp, False, "RA", 0, 1001)]


def _connection(t, c, s, sp, dp):
    """A TCP connection (a handshake, no data: as Test-NetConnection's) closed with FINs."""
    return [_pkt(t, c, s, sp, dp, True, "S", 5000), _pkt(t + .02, c, s, sp, dp, False, "SA", 9000, 5001),
            _pkt(t + .021, c, s, sp, dp, True, "A", 5001, 9001), _pkt(t + .06, c, s, sp, dp, True, "FA", 5001, 9001),
            _pkt(t + .07, c, s, sp, dp, False, "FA", 9001, 5002), _pkt(t + .071, c, s, sp, dp, True, "A", 5002, 9002)]


def _fixes(path: Path, chunk_bytes: list[int]) -> list[str]:
    """The agent_connection advice: readiness() of the whole table, TableSummary of it, and
    TableSummary of each chunked reading's batches added one by one (as the table report)."""
    w = assert_same(path, chunk_bytes)
    out = [readiness(w, RULES).set_index("rule").loc["agent_connection", "fix"],
           TableSummary.of(w).readiness(RULES).set_index("rule").loc["agent_connection", "fix"]]
    from kscc_traffic.chunked import ChunkedAnalysis
    for cb in chunk_bytes:
        s = TableSummary(rules=RULES)
        for part in ChunkedAnalysis(path, RULES, path.name, chunk_bytes=cb).batches():
            s.add(part)
        out.append(s.readiness(RULES).set_index("rule").loc["agent_connection", "fix"])
    return out


RESTARTED = "the service was down or restarting"


def test_a_refusal_then_an_accepted_connection_long_after_is_a_restart_not_a_wrong_port(tmp_path):
    for later in (31.0, 200.0):
        recs = _refused(1000.0, C, S, 50001, 23100) + _connection(1000.0 + later, C, S, 50100, 23100)
        path = write(tmp_path, recs, f"r{later:g}.pcap")
        w = assert_same(path, [150, 400])
        assert [(r.conn_state, r.verdict, r.reason) for r in w.itertuples()] == [
            ("REJ", "blocked", "rejected"), ("SF", "ok", "")]
        at = pd.Timestamp(1000 + later, unit="s").strftime("%H:%M:%S")
        for fix in _fixes(path, [150, 400]):
            assert "Check first the port" not in fix, fix
            assert (f"the port was refused at 00:16:40.000 UTC and accepted at {at}.000 UTC ({S} TCP 23100): "
                    f"{RESTARTED}") in fix, fix
            assert fix.startswith("1 of 2 flows ok, 1 blocked (the others worked: compare clients, addresses and "
                                  "ports): this connection attempt was answered by a TCP reset with the server's "
                                  "own TTL (as its packets on other connections), but "), fix


def test_accepted_first_then_refused_from_another_client(tmp_path):
    # (the service stopped: another agent's connection earlier, this one refused 2 minutes later)
    recs = _connection(1000.0, C2, S, 40000, 23100) + _refused(1120.0, C, S, 50001, 23100)
    fixes = _fixes(write(tmp_path, recs), [150, 400])
    for fix in fixes:
        assert "Check first the port" not in fix, fix
        assert (f"the port was accepted at 00:16:40.000 UTC and refused at 00:18:40.000 UTC ({S} TCP 23100): "
                f"{RESTARTED}") in fix, fix


def test_refusals_while_the_port_accepted_other_connections_are_no_restart(tmp_path):
    # (connections before, between and after, one of them the refused client's own: not a
    # restart alone, not a wrong port)
    recs = (_connection(995.0, C, S, 39999, 23100) + _connection(1000.0, C2, S, 40000, 23100)
            + _refused(1010.0, C, S, 50001, 23100) + _connection(1020.0, C2, S, 40001, 23100)
            + _refused(1030.0, C, S, 50002, 23100) + _connection(1040.0, C2, S, 40002, 23100))
    for fix in _fixes(write(tmp_path, recs), [150, 400, 900]):
        assert "Check first the port" not in fix and RESTARTED not in fix, fix
        assert ("these 2 connection attempts were answered by a TCP reset with the server's own TTL (as its packets "
                "on other connections), but the port was refused 2 times from 00:16:50.000 to 00:17:10.000 UTC while "
                f"it accepted 4 other connections from 00:16:35.000 to 00:17:20.000 UTC ({S} TCP 23100): the service "
                "refused some connections while it accepted others: overloaded or restarting, a load balancer in "
                "front of it with a backend that refuses, or a host firewall that rejects some clients (the port is "
                "right)") in fix, fix


def test_refusals_of_one_client_while_the_port_accepted_another_are_that_clients(tmp_path):
    """s51 scenario pass #5: a gateway capture of two agents, one refused again and again with the
    server's TTL over 40 s, the other accepted before, between and after: it was "the service refused some
    connections while it accepted others: overloaded or restarting…"; every refusal was of the
    client the port never accepted: the server (or a firewall copying its TTL) rejects that
    client's address. A single refusal, or a refused client the port also accepted, keeps the
    intermittent advice (the test above)."""
    recs = (_connection(1000.0, C2, S, 40000, 23100) + _refused(1010.0, C, S, 50001, 23100)
            + _connection(1020.0, C2, S, 40001, 23100) + _refused(1050.0, C, S, 50002, 23100)
            + _connection(1060.0, C2, S, 40002, 23100))
    for fix in _fixes(write(tmp_path, recs), [150, 400, 900]):
        assert "Check first the port" not in fix and RESTARTED not in fix and "overloaded" not in fix, fix
        assert fix.endswith(
            "these 2 connection attempts were answered by a TCP reset with the server's own TTL (as its packets "
            "on other connections), but the port was refused 2 times from 00:16:50.000 to 00:17:30.000 UTC, each "
            f"time to {C}, while it accepted 3 connections of other clients ({C2}) from 00:16:40.000 to "
            f"00:17:40.000 UTC ({S} TCP 23100): the server, or a firewall in front of it that copies its TTL, "
            "rejects these clients' address (a source address allow list without them, or without the NAT address "
            "they leave by) (the port is right): check which source addresses the server's host firewall and the "
            "firewalls or load balancer in front of it let through to this port, and the address these clients "
            "leave by"), fix
    one = (_connection(1000.0, C2, S, 40000, 23100) + _refused(1010.0, C, S, 50001, 23100)
           + _connection(1020.0, C2, S, 40001, 23100))
    for fix in _fixes(write(tmp_path, one, "one.pcap"), [150, 400]):
        assert "overloaded or restarting" in fix and "each time to" not in fix, fix
    # (a burst of refusals within 30 s, other clients accepted around it: maybe a restart; review s52 #4)
    burst = (_connection(1000.0, C2, S, 40000, 23100) + _refused(1010.0, C, S, 50001, 23100)
             + _refused(1011.0, C, S, 50002, 23100) + _connection(1020.0, C2, S, 40001, 23100))
    for fix in _fixes(write(tmp_path, burst, "burst.pcap"), [150, 400]):
        assert "overloaded or restarting" in fix and "each time to" not in fix, fix


def test_a_refusal_whose_server_accepted_only_another_port_keeps_the_port_advice(tmp_path):
    recs = _refused(1000.0, C, S, 50001, 23100) + _connection(1100.0, C, S, 50100, 13000)
    for fix in _fixes(write(tmp_path, recs), [150, 400]):
        assert "Check first the port the agent is set to use" in fix and RESTARTED not in fix, fix


def test_two_servers_refused_one_accepted_later(tmp_path):
    recs = (_refused(1000.0, C, S, 50001, 23100) + _refused(1001.0, C, S2, 50002, 23100)
            + _connection(1100.0, C, S, 50100, 23100) + _connection(1101.0, C, S2, 50101, 13000))
    for fix in _fixes(write(tmp_path, sorted(recs, key=lambda r: r[0])), [150, 400, 900]):
        assert "Check first the port the agent is set to use" in fix, fix
        assert fix.endswith(f"; 1 of them: the port was refused at 00:16:40.000 UTC and accepted at 00:18:20.000 "
                            f"UTC ({S} TCP 23100): {RESTARTED}"), fix


# 2. an agent's refused attempts retried, beside a sweep and a port scan

def _tries(n, schedule, port, t0=1000.0, gap=8.0, net="203.0.113", origin=C, sport=50000):
    """``n`` addresses of ``net`` tried one after the other, ``gap`` s apart, each at the offsets
    ``schedule`` (s), each try a new connect() (another source port) refused by a reset."""
    recs = []
    for k in range(n):
        for j, d in enumerate(schedule):
            recs += _refused(t0 + k * gap + d, origin, f"{net}.{k + 1}", sport + 10 * k + j, port)
    return recs


def _later(t=2500.0):
    """A connection long after (the capture's clock moves on: held rows leave on time)."""
    return _connection(t, C2, "198.51.100.200", 40000, 443)


def test_an_agent_retrying_refused_attempts_to_30_addresses_is_not_an_address_scan(tmp_path):
    for name, schedule, gap in (("fast", (0, 1, 3), 8.0), ("slow", (0, 60, 180), 3.0)):
        recs = sorted(_tries(30, schedule, 23101, gap=gap) + _later(), key=lambda r: r[0])
        w = assert_same(write(tmp_path, recs, name + ".pcap"), [300, 1500, 6000])
        w = w[w.resp_p == 23101]
        assert len(w) == 90 and set(w.conn_state) == {"REJ"}, name
        assert w.groupby(["verdict", "reason"]).size().to_dict() == {("blocked", "rejected"): 90}, name
        assert set(w.purpose) == {"agent_connection"}, name


def test_a_refused_sweep_beside_the_agent_stays_an_address_scan(tmp_path):
    # (the same originator and port: the sweep's one SYN per address, within 3 s (each refused
    # probe looks 5 s ahead for the count: scans.py), the agent's tries again)
    sweep = []
    for k in range(30):
        sweep += _refused(1000.2 + .1 * k, C, f"198.51.100.{k + 1}", 41000 + k, 23101)
    agent = _tries(30, (0, 1, 3), 23101, t0=1000.5, gap=4.0)
    w = assert_same(write(tmp_path, sorted(sweep + agent + _later(), key=lambda r: r[0])), [300, 900, 2500, 6000])
    w = w[w.resp_p == 23101]
    swept = w[w.resp_h.str.startswith("198.51.100.")]
    tried = w[w.resp_h.str.startswith("203.0.113.")]
    assert len(swept) == 30 and len(tried) == 90
    assert set(swept.reason) == {"address_scan"} and set(swept.verdict) == {"unclassified"}
    assert set(tried.reason) == {"rejected"} and set(tried.verdict) == {"blocked"}


def test_a_port_scan_probing_refused_ports_twice_stays_a_port_scan(tmp_path):
    # (a second pass over 40 closed ports of one host: still a port scan, whatever the retries)
    recs = []
    for rnd in range(2):
        for k, p in enumerate(range(20000, 20040)):
            recs += _refused(1000.0 + rnd * 30 + k * .05, C, S, 40000 + rnd * 100 + k, p)
    w = assert_same(write(tmp_path, sorted(recs + _later(), key=lambda r: r[0])), [600, 2000])
    w = w[w.resp_h == S]
    assert len(w) == 80 and set(w.reason) == {"port_scan"}


def test_documented():
    from conftest import documentation
    from kscc_traffic.report import INTERMITTENT
    text = " ".join(documentation().split())
    assert RESTARTED in text and INTERMITTENT in text
    assert "is a program's connect() retry: `blocked`, reason `rejected`; a scanner does not try a refused port again" \
        in text
