"""Session 58 review: a reset whose TTL is *lower* than its sender's own packet (it came from
farther) is never "from nearer", whatever initial TTL the two values suggest across a boundary
(33 -> 32: 64 less 31 hops, then "32 less 0"; 65 -> 64 likewise)."""
from __future__ import annotations

import pytest
from scapy.layers.inet import TCP

from chunkcmp import write
from pcapbuild import SERVER_MAC, CLIENT_MAC, eth, ip_of
from kscc_traffic.analyze import analyze_file
from test_breakit_s58_tls import AGENT, CLOUD, RULES, _conn, _tls_row
from test_proxy_connect import _tls


def _ended_by_reset(tmp_path, server_ttl: int, rst_ttl: int, v6: bool = False, gap: float = 0.01):
    """A TLS connection that worked (handshake and data), then, ``gap`` s after its last packet,
    the server's reset with ``rst_ttl``."""
    recs = _conn(_tls(tmp_path), v6=v6, server_ttl=server_ttl, close=False)
    t = recs[-1][0] + gap
    last = None
    from scapy.layers.l2 import Ether
    for _, raw in recs:                     # (the next sequence numbers of each side)
        p = Ether(raw)
        last = p if p[TCP].sport == 23101 else last
    ip = ip_of(CLOUD[v6], AGENT[v6])
    if v6:
        ip.hlim = rst_ttl
    else:
        ip.ttl = rst_ttl
    seq = last[TCP].seq + len(bytes(last[TCP].payload))
    rst = ip / TCP(sport=23101, dport=50000, flags="RA", seq=seq, ack=last[TCP].ack)
    recs.append((t, bytes(eth(rst, src=SERVER_MAC, dst=CLIENT_MAC))))
    return write(tmp_path, recs, name=f"r{server_ttl}_{rst_ttl}_{int(v6)}_{gap:g}.pcap")


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
@pytest.mark.parametrize("server_ttl,rst_ttl", [(33, 32), (65, 64), (129, 128)])
def test_a_reset_one_hop_farther_across_an_initial_ttl_boundary_is_the_servers(tmp_path, v6, server_ttl, rst_ttl):
    r = _tls_row(analyze_file(_ended_by_reset(tmp_path, server_ttl, rst_ttl, v6), RULES).flows)
    assert r.conn_state == "RSTR"
    assert (r.verdict, r.reason) == ("ok", ""), r.detail
    assert "device on the path" not in r.detail


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
def test_a_reset_one_hop_nearer_still_a_devices(tmp_path, v6):
    """The rule kept: one hop nearer (a higher TTL) than the server's own packets."""
    r = _tls_row(analyze_file(_ended_by_reset(tmp_path, 50, 51, v6), RULES).flows)
    assert (r.verdict, r.reason) == ("blocked", "rejected"), r.detail


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
def test_a_reset_one_hop_nearer_long_after_the_servers_last_packet_is_the_servers(tmp_path, v6):
    """F2: on a connection kept for long (an agent's to the cloud), the route may be a hop shorter
    by the time its server resets it (or an IPv6 flow label rehashed onto another path): one hop
    nearer than a packet 200 s older is no device's; 3 hops still are (the older rule)."""
    r = _tls_row(analyze_file(_ended_by_reset(tmp_path, 50, 51, v6, gap=200.0), RULES).flows)
    assert (r.verdict, r.reason) == ("ok", ""), r.detail
    assert "device on the path" not in r.detail
    r = _tls_row(analyze_file(_ended_by_reset(tmp_path, 50, 53, v6, gap=200.0), RULES).flows)
    assert (r.verdict, r.reason) == ("blocked", "rejected"), r.detail
    assert "device on the path" in r.detail
