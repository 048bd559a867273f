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
from pcapbuild import pcap_bytes, tcp_session  # noqa: E402

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
