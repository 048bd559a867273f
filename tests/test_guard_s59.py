"""Session 59's IPv6 fallback rule (classify.family_fallbacks, chunked._FamilyFallbacks): the
bounds and guards added after its review (/tmp/s59/rev/FINDINGS.md items 5 and 8)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from test_newcomer_s58_verdicts import NAME, SRV4, SRV6


def _rows(ts, v6: bool, first: int = 0) -> pd.DataFrame:
    """Flow rows to NAME port 80: refused IPv6 attempts (``v6``) or IPv4 connections that connected."""
    from kscc_traffic.flows import VLAN_STACK
    n = len(ts)
    return pd.DataFrame({
        "proto": "tcp", "uid": [f"C{first + i:06d}" for i in range(n)], "ts_ns": np.asarray(ts, np.int64),
        "duration": 0.0005 if v6 else 0.08, "resp_h": SRV6 if v6 else SRV4, "resp_p": 80, VLAN_STACK: 0,
        "conn_state": "REJ" if v6 else "SF", "history": "Sr" if v6 else "ShADdFf", "server_name": NAME})


def test_the_fallback_holder_forgets_the_connections_no_waiting_attempt_can_take():
    """Review s59 #8: a refused IPv6 attempt another holder keeps to the capture's end (its reset's
    hint waits for a packet of its IPv6 address) made _FamilyFallbacks remember every IPv4
    connection to its name in every batch until then (a gateway's clients connect to it all
    day). Now only the first connection after each attempt held or expected is kept: 200
    batches of 50 connections each leave at most SLACK + 2 remembered, and the attempts (the
    one waiting from the start, and two that join it later) still find the same fallbacks."""
    from kscc_traffic.chunked import _FamilyFallbacks
    from kscc_traffic.classify import FALLBACK
    t0 = 1_000 * 10**9
    waiting = _rows([t0], True)                     # (kept back by another holder all along)
    # (two more kept back from batch 150 on, begun among batch 150's connections, as an attempt
    # the other holder keeps is expected here before its fallback leaves)
    late = t0 + 10**7 + (150 * 50 + np.array([10, 30])) * 10**8 + 5 * 10**7
    h = _FamilyFallbacks()
    key = (NAME, 80, 0)
    first = 1
    for b in range(200):
        ts = t0 + 10**7 + (b * 50 + np.arange(50)) * 10**8   # (one every 0.1 s)
        kept = waiting if b < 150 else pd.concat([waiting, _rows(late, True, 90_000)], ignore_index=True)
        assert len(h.hold(_rows(ts, False, first), elsewhere=[kept])) == 50
        first += 50
        assert len(h.retries.get(key, ())) <= _FamilyFallbacks.SLACK + 2 * len(kept), b
    assert h.pruned >= 200 * 50 - _FamilyFallbacks.SLACK - 6
    rest = h.hold(kept)                             # (the other holder lets them go at the end)
    assert len(rest) == 0 and h.count == 3
    out = h.release(rest, [], None, True).sort_values("ts_ns")
    assert [x[:2] for x in out[FALLBACK]] == [(t0 + 10**7, "C000001"),
                                      (int(late[0]) + 5 * 10**7, f"C{1 + 150 * 50 + 11:06d}"),
                                      (int(late[1]) + 5 * 10**7, f"C{1 + 150 * 50 + 31:06d}")]
    assert h.count == 0 and not h.retries


def _nearer_recs(v4_ttl: int, reset_hlim: int = 63, filler: int = 0):
    """The DNS answer for NAME (A and AAAA) to 192.0.2.10; the IPv6 attempt to [SRV6]:80 at 1000.01
    refused by a reset of hop limit ``reset_hlim``, SRV6 sending nothing else (nothing of its
    own to compare the reset with); 1 ms later an IPv4 connection to SRV4:80 (Host NAME) whose
    server packets come with TTL ``v4_ttl``; ``filler`` DNS-like datagrams every 0.25 s after it
    (so that small chunks split them)."""
    from scapy.layers.inet import IP

    from pcapbuild import tcp_session, udp
    from test_newcomer_s58_verdicts import _dns, _refused6
    recs = _dns(NAME, [SRV4, SRV6], 1000.0, 40001, 1) + _refused6(1000.01, reset_hlim)
    v4 = tcp_session(("192.0.2.10", 46000), (SRV4, 80), t0=1000.011,
                     c_data=f"GET /x.crl HTTP/1.1\r\nHost: {NAME}\r\n\r\n".encode(),
                     s_data=b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    for _, frame in v4:
        if frame[IP].src == SRV4:
            frame[IP].ttl = v4_ttl
    recs += v4
    recs += [udp(("192.0.2.10", 41000 + k), ("198.51.100.53", 53), b"x" * 40, t=1000.5 + 0.25 * k)
             for k in range(filler)]
    return sorted(recs, key=lambda r: r[0])


def _port80(flows):
    return flows[(flows.proto == "tcp") & (flows.resp_p == 80)].sort_values("ts_ns").reset_index(drop=True)


def test_a_reset_hops_nearer_than_the_ipv4_servers_answer_is_no_fallback(tmp_path, monkeypatch):
    """Review s59 #5 (a site firewall that resets IPv6 on a gateway capture, the server's IPv6
    address sending nothing else to compare the reset with): the reset came with hop limit 63
    (1 hop), the IPv4 server's SYN-ACK with TTL 50 (14 hops): a device 13 hops nearer than the
    server refused the attempt, and the IPv4 connection passed it: no fallback, blocked with
    that hint (it was ok, "the client fell back to IPv4"). The same whole, in small chunks, in
    the live session and from the CLI (builtin, --chunk-mib 1, tshark)."""
    import json
    import shutil

    from typer.testing import CliRunner

    from chunkcmp import RULES, assert_same, write
    from kscc_traffic.classify import REJ_DETAIL
    from kscc_traffic.cli import app
    from kscc_traffic.inspect import REFUSED_NEARER
    from kscc_traffic.live.session import LiveSession
    from test_live_session import _replay, assert_live_same
    path = write(tmp_path, _nearer_recs(50, filler=40))
    flows = assert_same(path, [256, 512, 1024])
    t = _port80(flows)
    assert t.resp_h.tolist() == [SRV6, SRV4]
    assert t.verdict.tolist() == ["blocked", "ok"] and t.reason[0] == "rejected"
    assert t.detail[0] == (
        f"{REJ_DETAIL}; the reset came from a device 13 hops {REFUSED_NEARER}hop limit 63 vs TTL 50 on its answer "
        f"over IPv4 to the same name and port, {t.uid[1]}): a firewall refuses the port over IPv6 (the IPv4 "
        "connection that followed passed that device: only IPv6 is refused there)"), t.detail[0]
    assert_live_same(path, monkeypatch, step=3)
    s = LiveSession(RULES, name=path.name)
    _replay(path, s, step=3)
    live = _port80(s.final())
    assert live.verdict.tolist() == ["blocked", "ok"] and live.detail[0] == t.detail[0]
    run = CliRunner()
    engines = [[], ["--chunk-mib", "1"]] + ([["--engine", "tshark"]] if shutil.which("tshark") else [])
    for extra in engines:
        out = run.invoke(app, ["analyze", str(path), "-f", "jsonl", *extra])
        rows = [json.loads(x) for x in out.output.splitlines() if x.startswith("{")]
        rej = [r for r in rows if r["conn_state"] == "REJ"]
        assert [(r["verdict"], r["detail"]) for r in rej] == [("blocked", t.detail[0])], extra


def test_a_reset_a_hop_or_two_nearer_than_the_ipv4_servers_answer_is_still_a_fallback(tmp_path):
    """The two families' paths to one server may differ by a hop or two: a reset 2 hops nearer
    than the IPv4 server's SYN-ACK (63 vs 61), or farther (63 vs 64), is the server host's refusal
    still; the client fell back (ok), as before."""
    from chunkcmp import assert_same, write
    from kscc_traffic.classify import FALLBACK_CLEARED
    for ttl in (61, 64):
        path = write(tmp_path, _nearer_recs(ttl, filler=8), name=f"c{ttl}.pcap")
        t = _port80(assert_same(path, [512]))
        assert t.verdict.tolist() == ["ok", "ok"] and t.detail[0].startswith(FALLBACK_CLEARED), (ttl, t.detail[0])


def test_a_reset_as_sent_while_the_ipv4_answer_crossed_a_router_is_no_fallback(tmp_path):
    """Real-stack s59 #1: the agent's own router rejected IPv6 with a reset, which came with hop
    limit 64 (as sent: no router between it and the capture) while the IPv4 server's SYN-ACK
    came with 63 (one router): the capture's gateway refused it, no fallback (it was ok: only
    1 hop nearer, under FALLBACK_NEARER_HOPS). A reset of 63 beside an answer of 62, or both as
    sent (a capture on the server), is still a fallback."""
    from chunkcmp import assert_same, write
    from kscc_traffic.classify import FALLBACK_CLEARED, REJ_DETAIL
    from kscc_traffic.inspect import REFUSED_NEARER
    path = write(tmp_path, _nearer_recs(63, reset_hlim=64, filler=8), name="r64.pcap")
    t = _port80(assert_same(path, [512]))
    assert t.verdict.tolist() == ["blocked", "ok"] and t.reason[0] == "rejected"
    assert t.detail[0].startswith(f"{REJ_DETAIL}; the reset came from a device 1 hop {REFUSED_NEARER}hop limit 64 "
                                  "vs TTL 63 on its answer over IPv4"), t.detail[0]
    for reset, ttl in ((63, 62), (64, 64)):
        path = write(tmp_path, _nearer_recs(ttl, reset_hlim=reset, filler=8), name=f"f{reset}_{ttl}.pcap")
        t = _port80(assert_same(path, [512]))
        assert t.verdict.tolist() == ["ok", "ok"] and t.detail[0].startswith(FALLBACK_CLEARED), (reset, ttl, t.detail[0])
