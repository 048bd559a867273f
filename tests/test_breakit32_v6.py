"""Break-it v6 (session 32: IPv6 and dual-stack agent connections in network namespaces).

F1. A TLS handshake that failed because the server's full-size segments never reached the agent
(a path-MTU black hole: ICMPv6 packet too big dropped on the path; the flow's detail says "a
path-MTU black hole?") was advised in the checklist as "a proxy, TLS inspection or an
application-aware firewall in the path: let the agent's TLS through uninspected": the advice now
says what the detail says (let ICMPv6 type 2 / ICMP 3/4 through, or fix the MTU / clamp the MSS),
alone or beside other blocked flows, the same from readiness() and the streamed summary.
F2. A SYN answered by ICMPv6 address unreachable (1/3) or no route (1/0), or ICMP host unreachable
(3/1), sent from the server's own address (``nft … reject with icmpv6 type addr-unreachable`` on the
server, or a firewall answering in its name) was advised "answered … from a router: no route to the
destination, an ARP/neighbour failure …": a router answers from its own address. The advice now
says it came from the server's own address (a reject rule); from another address as before.

Captures built with scapy (IPv6, 2001:db8::/32)."""
from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6

from checklistcheck import checklists, write
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth, ip_of
from test_tls_batch import client_hello, rec, sni_ext
from kscc_traffic.analyze import analyze_file
from kscc_traffic.report import MTU_FIX, ROUTE_OWN

C, S = "2001:db8:1::21", "2001:db8:2::17"
HELLO = rec(22, client_hello([sni_ext([(0, b"discovery.ksc.kaspersky.com")])]), 0x0301)


def _black_hole(sport: int, dport: int, t0: float, server: str = S) -> list:
    """A ClientHello to ``server``:``dport`` whose answer's first full-size segment (1428 bytes
    over IPv6) never arrives, a later one does (SACKed); the agent gives up with a FIN."""
    recs = []

    def up(t, data=b"", **kw):
        recs.append((t0 + t, bytes(eth(ip_of(C, server) / TCP(sport=sport, dport=dport, **kw) / data))))

    def dn(t, data=b"", **kw):
        recs.append((t0 + t, bytes(eth(ip_of(server, C) / TCP(sport=dport, dport=sport, **kw) / data,
                                       src=SERVER_MAC, dst=CLIENT_MAC))))
    ci, si = 1000, 5000
    up(0.0, flags="S", seq=ci)
    dn(0.01, flags="SA", seq=si, ack=ci + 1)
    up(0.02, flags="A", seq=ci + 1, ack=si + 1)
    up(0.03, HELLO, flags="PA", seq=ci + 1, ack=si + 1)
    c = ci + 1 + len(HELLO)
    dn(0.04, flags="A", seq=si + 1, ack=c)
    dn(0.07, bytes(570), flags="PA", seq=si + 1 + 1428, ack=c)
    up(0.071, flags="A", seq=c, ack=si + 1)
    up(5.05, flags="FA", seq=c, ack=si + 1)
    dn(5.1, flags="A", seq=si + 1 + 1998, ack=c + 1)
    return recs


def _refused(sport: int, dport: int, t0: float) -> list:
    """A SYN to the server's ``dport`` answered by a TCP reset."""
    return [(t0, bytes(eth(ip_of(C, S) / TCP(sport=sport, dport=dport, flags="S", seq=7)))),
            (t0 + 0.01, bytes(eth(ip_of(S, C) / TCP(sport=dport, dport=sport, flags="RA", seq=0, ack=8),
                                  src=SERVER_MAC, dst=CLIENT_MAC)))]


def _fixes(tmp_path, name, recs, rule):
    flows = analyze_file(write(tmp_path, name, recs)).flows
    got = [c.loc[rule, "fix"] for c in checklists(flows)]
    assert got[0] == got[1]
    return flows, got[0]


@pytest.mark.parametrize("port,rule", [(443, "discovery"), (23101, "agent_connection")])
def test_black_hole_alone_is_advised_as_one(tmp_path, port, rule):
    flows, fix = _fixes(tmp_path, "bh.pcap", _black_hole(50001, port, 100.0), rule)
    tcp = flows[flows["proto"] == "tcp"].iloc[0]
    assert (tcp["verdict"], tcp["reason"]) == ("blocked", "tls_failed")
    assert "a path-MTU black hole?" in tcp["detail"]
    assert fix.endswith(f"then the TLS handshake failed: {MTU_FIX}")
    assert "proxy" not in fix and "uninspected" not in fix
    assert "ICMPv6 packet too big (type 2)" in fix


def test_black_hole_beside_a_reset_is_named_apart(tmp_path):
    recs = sorted(_black_hole(50001, 23101, 100.0) + _black_hole(50002, 23101, 110.0, server="2001:db8:2::18")
                  + _refused(50003, 23102, 120.0))
    _, fix = _fixes(tmp_path, "mixed.pcap", recs, "agent_connection")
    assert "; 2 of them reached the server (the TCP handshake completed), then the TLS handshake failed: " \
           + MTU_FIX in fix
    assert "uninspected" not in fix


def _unreachable(sport: int, server: str, sender: str, code: int, t0: float, dport: int = 29201) -> list:
    """A SYN to ``server``:``dport`` answered by an ICMP(v6) destination unreachable ``code``
    (ICMPv6 type 1, ICMP type 3) from ``sender``, quoting it."""
    syn = ip_of(C if ":" in server else "192.0.2.20", server) / TCP(sport=sport, dport=dport, flags="S", seq=7)
    if ":" in server:
        err = IPv6(src=sender, dst=C) / ICMPv6DestUnreach(code=code) / bytes(syn)
    else:
        err = IP(src=sender, dst="192.0.2.20") / ICMP(type=3, code=code) / bytes(syn)
    return [(t0, bytes(eth(syn))), (t0 + 0.01, bytes(eth(err, src=SERVER_MAC, dst=CLIENT_MAC)))]


@pytest.mark.parametrize("server,code", [("2001:db8:2::15", 3), ("2001:db8:2::14", 0), ("203.0.113.10", 1)],
                         ids=["v6-addr-unreach", "v6-no-route", "v4-host-unreach"])
def test_route_error_from_the_server_itself_is_a_reject_rule(tmp_path, server, code):
    flows, fix = _fixes(tmp_path, "own.pcap", _unreachable(50001, server, server, code, 100.0), "klsctunnel")
    tcp = flows[flows["proto"] == "tcp"].iloc[0]
    assert (tcp["verdict"], tcp["reason"]) == ("blocked", "icmp_unreachable")
    assert tcp["detail"].endswith(f"({1 if ':' in server else 3}/{code}) from {server}")
    assert fix.startswith(f"this flow was answered by ICMP network, host or address unreachable (or no route) "
                          f"{ROUTE_OWN}: allow outbound TCP 29200-29299")
    assert "from a router" not in fix


def test_route_error_from_a_router_and_from_the_server_said_apart(tmp_path):
    recs = sorted(_unreachable(50001, "2001:db8:2::15", "2001:db8:2::15", 3, 100.0)
                  + _unreachable(50002, "2001:db8:2::16", "2001:db8:1::1", 3, 101.0))
    _, fix = _fixes(tmp_path, "both.pcap", recs, "klsctunnel")
    assert "; 1 of them was answered by ICMP network or host unreachable (or no route) from a router: " in fix
    assert fix.endswith(f"; 1 of them was answered by ICMP network, host or address unreachable (or no route) "
                        f"{ROUTE_OWN}")
    # from a router alone: as before
    _, fix = _fixes(tmp_path, "router.pcap", _unreachable(50002, "2001:db8:2::16", "2001:db8:1::1", 3, 101.0),
                    "klsctunnel")
    assert fix.startswith("this flow was answered by ICMP network or host unreachable (or no route) from a router")
