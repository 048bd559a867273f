"""Connections captured twice, before and after a NAT (newcomer 35 F7: `tcpdump -i any` on a NAT
gateway counted each agent connection twice, from the client's and from the gateway's address,
with no word). kscc_traffic.natpairs says so in one warning line per capture, whole and chunked
alike, and stays silent for two clients' connections that merely look alike."""
from __future__ import annotations

import pytest

pytest.importorskip("scapy")

from kscc_traffic import load_rules  # noqa: E402
from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.chunked import ChunkedAnalysis  # noqa: E402
from kscc_traffic.natpairs import NatWatch  # noqa: E402
from pcapbuild import pcap_bytes, tcp_session, udp  # noqa: E402

INSIDE, OUTSIDE, KSC = "192.0.2.10", "198.51.100.129", "203.0.113.10"


def both_sides(t0: float, port: int, inside: str = INSIDE, outside: str = OUTSIDE, out_port: int | None = None,
               lag: float = 0.00007):
    """One connection as a gateway's every interface sees it: inside, then translated."""
    data = dict(c_data=b"\x16\x03\x01\x00\x05hello", s_data=b"\x16\x03\x03\x00\x02ok")
    return (tcp_session((inside, port), (KSC, 23101), t0=t0, **data)
            + tcp_session((outside, out_port or port), (KSC, 23101), t0=t0 + lag, **data))


def _write(tmp_path, records, name="gw.pcap"):
    path = tmp_path / name
    path.write_bytes(pcap_bytes(sorted(records, key=lambda r: r[0])))
    return path


def lines(path) -> list[str]:
    a = analyze_file(str(path))
    return [w for st in a.stats.values() for w in st.warnings if "captured twice" in w]


def test_connections_seen_before_and_after_nat_are_said(tmp_path):
    recs = [r for k in range(3) for r in both_sides(1000.0 + 5 * k, 40000 + k)]
    path = _write(tmp_path, recs)
    assert lines(path) == [
        "gw.pcap: 3 connections were captured twice, before and after a NAT (the same ports, packets and bytes a "
        f"few ms apart from two addresses; {INSIDE} -> {OUTSIDE} 3 times): a capture on every interface of a NAT "
        "gateway (tcpdump -i any) counts each such connection twice, once per side; capture on one interface (-i "
        "the inside one, for the clients' addresses) to count each once"]
    a = analyze_file(str(path))
    assert len(a.flows) == 6                      # (the flows themselves are kept: each side is judged)


def test_said_the_same_in_chunks(tmp_path):
    recs = [r for k in range(10) for r in both_sides(1000.0 + 30 * k, 41000 + k)]
    path = _write(tmp_path, recs)
    whole = lines(path)
    ca = ChunkedAnalysis(path, load_rules(), "gw.pcap", chunk_bytes=4096)
    for _ in ca.batches():
        pass
    assert [w for w in ca.stats.warnings if "captured twice" in w] == whole
    assert whole and "10 connections were captured twice" in whole[0]


def test_look_alikes_are_not_pairs(tmp_path):
    # another source port after the NAT (a NAT that changes ports: not recognised), too late, one pair only,
    # and pairs a small share of the flows
    port_changed = [r for k in range(3) for r in both_sides(1000.0 + 5 * k, 40000 + k, out_port=50000 + k)]
    assert lines(_write(tmp_path, port_changed, "a.pcap")) == []
    late = [r for k in range(3) for r in both_sides(1000.0 + 5 * k, 40000 + k, lag=0.5)]
    assert lines(_write(tmp_path, late, "b.pcap")) == []
    one = both_sides(1000.0, 40000)
    assert lines(_write(tmp_path, one, "c.pcap")) == []
    crowd = [r for k in range(2) for r in both_sides(1000.0 + 5 * k, 40000 + k)]
    crowd += [r for k in range(20) for r in tcp_session((f"192.0.2.{100 + k}", 45000 + k), (KSC, 23101), t0=1100.0 + k)]
    assert lines(_write(tmp_path, crowd, "d.pcap")) == []           # 4 of 24 flows: below MIN_SHARE


def test_a_spray_from_many_addresses_is_no_nat(tmp_path):
    # session 48: look-alike datagrams (one port, one size, one target) from consecutive addresses a
    # millisecond apart paired among themselves, each "outside" address once: 1 M of them said
    # "499,991 connections captured twice", and their Python tuples were the run's peak memory
    recs = [udp((f"198.18.{i >> 8}.{i & 255}", 40000), (KSC, 15000), b"x" * 18, t=1000 + i * 0.001)
            for i in range(400)]
    assert lines(_write(tmp_path, recs, "spray.pcap")) == []
    # a gateway's copies among them are still said (its one outside address recurs)
    gw = [r for k in range(150) for r in both_sides(1001.0 + 0.002 * k, 42000 + k)]
    got = lines(_write(tmp_path, recs + gw, "both.pcap"))
    assert len(got) == 1 and got[0].startswith(f"both.pcap: 150 connections were captured twice") \
        and f"{INSIDE} -> {OUTSIDE} 150 times)" in got[0]


def test_broadcasts_are_no_nat(tmp_path):
    # agents' gateway broadcasts (UDP 15000, one size) from two agents a few ms apart: a router
    # forwards no broadcast, so no NAT copy
    recs = [r for k in range(5) for r in (
        udp((INSIDE, 15000 + k), ("255.255.255.255", 15000), b"k" * 40, t=1000.0 + k, dst_mac="ff:ff:ff:ff:ff:ff"),
        udp((OUTSIDE, 15000 + k), ("255.255.255.255", 15000), b"k" * 40, t=1000.002 + k, dst_mac="ff:ff:ff:ff:ff:ff"))]
    assert lines(_write(tmp_path, recs, "bcast.pcap")) == []
    unicast = [r for k in range(5) for r in (
        udp((INSIDE, 15000 + k), (KSC, 15000), b"k" * 40, t=1000.0 + k),
        udp((OUTSIDE, 15000 + k), (KSC, 15000), b"k" * 40, t=1000.002 + k))]
    assert "5 connections were captured twice" in lines(_write(tmp_path, unicast, "ucast.pcap"))[0]


def test_copies_pair_in_twos(tmp_path):
    # three copies of a connection a few ms apart: the first two pair, the third is alone; four: two pairs
    def copies(k, n):
        return [r for j in range(n) for r in tcp_session((f"198.51.100.{130 + j}", 43000 + k), (KSC, 23101),
                                                          t0=1000.0 + 5 * k + 0.002 * j)]
    w = NatWatch()
    three = analyze_file(str(_write(tmp_path, [r for k in range(4) for r in copies(k, 3)], "three.pcap"))).flows
    w.add(three)
    assert w.pairs == 4 and w.translations == {("198.51.100.130", "198.51.100.131"): 4}
    w = NatWatch()
    four = analyze_file(str(_write(tmp_path, [r for k in range(4) for r in copies(k, 4)], "four.pcap"))).flows
    w.add(four)
    assert w.pairs == 8 and w.translations == {("198.51.100.130", "198.51.100.131"): 4,
                                               ("198.51.100.132", "198.51.100.133"): 4}


def test_memory_stays_bounded_and_a_gateway_after_a_spray_is_still_found(monkeypatch):
    # beyond TRACKED outside addresses the single ones are forgotten: a gateway's recurring address stays
    import numpy as np
    import pandas as pd
    from kscc_traffic import natpairs
    monkeypatch.setattr(natpairs, "TRACKED", 64)

    def table(origins, t0):
        n = len(origins)
        return pd.DataFrame({"proto": ["udp"] * n, "resp_h": [KSC] * n, "resp_p": [15000] * n,
                             "orig_p": [40000 + i // 2 for i in range(n)], "orig_pkts": [1] * n,
                             "orig_bytes": [18] * n, "orig_h": origins,
                             "ts_ns": t0 + np.arange(n, dtype=np.int64) * 1_000_000, "cast": ["unicast"] * n})
    w = NatWatch()
    for b in range(5):      # a spray: 500 pairs, each "outside" address once
        w.add(table([f"198.18.{b}.{i}" for i in range(200)], b * 10**12))
        assert len(w._outside) <= 64
    w.add(table([x for i in range(30) for x in (f"192.0.2.{i + 1}", OUTSIDE)], 10**13))
    assert w.pairs == 530 and w._outside[OUTSIDE] == 30 and len(w._outside) <= 64
    w.flows = 100
    assert "30 connections were captured twice" in w.line("gw.pcap")
    assert "192.0.2.1 -> 198.51.100.129 1 time, and 29 other translations" in w.line("gw.pcap")
