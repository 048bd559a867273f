"""Variants of real traffic no earlier session tested (session 35 helper `variants`), in
captures built with scapy, whole file and in chunks alike.

1. An agent behind a blocking firewall trying 30 cloud addresses on one port within 5 minutes, no
   DNS lookup captured (its names cached, or looked up over HTTPS): its system retries each
   unanswered SYN (Windows 0, 1, 3 s; Linux 1, 2, 4, 8 s with the program's 20 s timeout):
   ``blocked``/``no_answer`` as any unanswered connection, no address scan (it was one before:
   the probes of a sweep send one SYN per address). A sweep of 30 addresses, one SYN each, stays
   an address scan, beside the agent's retried attempts on the same port.
2. IPv6 scans: a SYN scan of 200 ports of one IPv6 host, a sweep of 40 hosts of 2001:db8::/64 on
   23101: told as the IPv4 ones (kind, detail, the report's line; the tshark engine alike).
"""
from __future__ import annotations

import shutil

import pytest
from scapy.layers.inet import TCP

from chunkcmp import RULES, assert_same, write
from pcapbuild import eth, ip_of

from kscc_traffic.analyze import analyze_file
from kscc_traffic.report import TableSummary, scan_lines
from test_scans_s33 import _probe

AGENT = "192.0.2.10"


def _syn(t, c, s, sp, dp, seq=100):
    return t, bytes(eth(ip_of(c, s) / TCP(sport=sp, dport=dp, flags="S", seq=seq)))


def _tries(n, schedule, port, t0=1000.0, gap=8.0, net="203.0.113", sport=50000, origin=AGENT):
    """``n`` addresses of ``net`` tried one after the other, ``gap`` s apart, each SYN sent at
    the offsets ``schedule`` (s) from one source port."""
    return [_syn(t0 + k * gap + d, origin, f"{net}.{k + 1}", sport + k, port, 1000 + k)
            for k in range(n) for d in schedule]


def test_an_agent_retrying_syns_to_30_cloud_addresses_is_blocked_not_an_address_scan(tmp_path):
    for name, schedule, port, purpose in (("windows", (0, 1, 3), 23101, "agent_connection"),
                                          ("linux", (0, 1, 3, 7, 15), 443, "discovery")):
        recs = sorted(_tries(30, schedule, port), key=lambda r: r[0])
        w = assert_same(write(tmp_path, recs, name + ".pcap"), [1500, 6000])
        assert len(w) == 30, name
        assert set(w.conn_state) == {"S0"} and set(w.orig_pkts) == {len(schedule)}, name
        assert set(w.verdict) == {"blocked"} and set(w.reason) == {"no_answer"}, (name, set(w.reason))
        assert set(w.purpose) == {purpose}, (name, set(w.purpose))
        assert set(w.detail) == {f"SYN sent {len(schedule)} times, no answer"}, (name, set(w.detail))


def test_a_sweep_of_30_addresses_stays_an_address_scan_beside_an_agents_retries(tmp_path):
    sweep = _tries(30, (0,), 23101, t0=1000.0, gap=0.05, net="198.51.100", sport=41000)
    agent = _tries(30, (0, 1, 3), 23101, t0=1000.5, gap=8.0)
    # (the same originator: the sweep's one-SYN probes make the scan, the retried attempts stay blocked)
    w = assert_same(write(tmp_path, sorted(sweep + agent, key=lambda r: r[0])), [1500, 6000])
    assert len(w) == 60
    swept = w[w.resp_h.str.startswith("198.51.100.")]
    tried = w[w.resp_h.str.startswith("203.0.113.")]
    assert set(swept.reason) == {"address_scan"} and set(swept.verdict) == {"unclassified"}
    assert set(swept.purpose) == {""}
    assert set(tried.reason) == {"no_answer"} and set(tried.verdict) == {"blocked"}
    assert set(tried.purpose) == {"agent_connection"}


def test_tshark_engine_the_same_for_the_agent_and_the_sweep(tmp_path):
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    sweep = _tries(30, (0,), 23101, t0=1000.0, gap=0.05, net="198.51.100", sport=41000)
    agent = _tries(30, (0, 1, 3), 23101, t0=1000.5, gap=8.0)
    path = write(tmp_path, sorted(sweep + agent, key=lambda r: r[0]))
    t = analyze_file(path, RULES, engine="tshark").flows
    b = analyze_file(path, RULES).flows
    assert t.groupby("reason").size().to_dict() == {"address_scan": 30, "no_answer": 30}
    assert sorted(t.detail) == sorted(b.detail)


S6, V6 = "2001:db8::9", "2001:db8:1::5"


def test_ipv6_port_scan_and_address_sweep_as_the_ipv4_ones(tmp_path):
    recs = []
    for k, p in enumerate(list(range(1, 190)) + [443, 1443, 13000, 13111, 13295, 17111, 23101, 23102, 23700, 27201,
                                                29201]):
        recs += _probe(1000 + k * .016, S6, V6, 40000, p, ("closed", "filtered", "open")[k % 3])
    w = assert_same(write(tmp_path, sorted(recs, key=lambda r: r[0]), "p6.pcap"), [1500, 6000])
    assert len(w) == 200 and set(w.reason) == {"port_scan"} and set(w.verdict) == {"unclassified"}
    assert w[w.resp_p == 23101].detail.iloc[0].startswith(
        f"a port scan probe from {S6}: one of 15 or more ports of {V6} probed within 300 s (")
    assert scan_lines(TableSummary.of(w, rules=RULES)) == [
        f"a port scan from {S6}: 200 ports of {V6} in 3.2 s (12 documented KSC ports among them), not counted as KSC "
        "traffic (200 probes, reason port_scan)"]
    recs = []
    for k in range(40):
        recs += _probe(1000 + k * .01, S6, f"2001:db8::{k + 0x100:x}", 41000, 23101, ("closed", "filtered")[k % 2])
    w = assert_same(write(tmp_path, sorted(recs, key=lambda r: r[0]), "a6.pcap"), [1500, 6000])
    assert len(w) == 40 and set(w.reason) == {"address_scan"} and set(w.purpose) == {""}
    assert w.detail.iloc[0] == (f"an address scan probe from {S6}: one of 25 or more hosts on TCP 23101 probed within "
                                "300 s (closed: the SYN was answered by a reset); TCP 23101 is the documented port of "
                                "agent_connection, not counted as KSC traffic")
    assert scan_lines(TableSummary.of(w, rules=RULES)) == [
        f"an address scan from {S6}: 40 hosts on TCP 23101 in 0.4 s (a documented KSC port), not counted as KSC "
        "traffic (40 probes, reason address_scan)"]
    if shutil.which("tshark") is not None:
        for name in ("p6.pcap", "a6.pcap"):
            t = analyze_file(tmp_path / name, RULES, engine="tshark").flows
            b = analyze_file(tmp_path / name, RULES).flows
            assert sorted(t.detail) == sorted(b.detail), name
