"""Variants of real traffic no earlier session tested (session 35 helper `variants`), in
captures built with scapy, whole file and in chunks alike.

1. An agent behind a blocking firewall trying 30 cloud addresses on one port within 5 minutes, no
   DNS lookup captured (its names cached, or looked up over HTTPS): its system retries each
   unanswered SYN (Windows 0, 1, 3 s; Linux 1, 2, 4, 8 s with the program's 20 s timeout):
   ``blocked``/``no_answer`` as any unanswered connection, no address scan (it was one before:
   the probes of a sweep send one SYN per address). A sweep of 30 addresses, one SYN each, stays
   an address scan, beside the agent's retried attempts on the same port.
"""
from __future__ import annotations

from scapy.layers.inet import TCP

from chunkcmp import assert_same, write
from pcapbuild import eth, ip_of

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
