"""A needed KSC name whose every lookup in the capture got no address (newcomer 28 F2).

NOERROR answers with no address (NODATA) for eu1.ksc.kaspersky.com, AAAA from an IPv6-only
agent or A from an IPv4 one, and no connection after: the run said "3 flows: 3 ok". Now such a
DNS flow is ``blocked``/``rejected`` (detail :data:`~kscc_traffic.classify.DNS_NO_ADDRESS`, the
DNS64/NAT64 advice when asked over IPv6), unless another lookup of that name in the capture got
an address (a dual-stack host: its AAAA empty, its A answered): then it stays ``ok``. Whole-file
and chunked readings agree (the answer may come in another chunk than the empty one).

Captures built here with scapy; addresses from the documentation ranges."""
from __future__ import annotations

import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from chunkcmp import assert_same, write
from kscc_traffic.classify import DNS_NO_ADDRESS
from test_live_session import assert_live_same

NAME = "eu1.ksc.kaspersky.com"
V4 = ("192.0.2.10", "203.0.113.53")
V6 = ("2001:db8:1::10", "2001:db8:2::53")


def _lookup(t, qtype, port, ip=V4, name=NAME, address=None, qid=0x100):
    """A query and its NOERROR answer (with ``address`` when given, else none: NODATA)."""
    net = IPv6 if ":" in ip[0] else IP
    q = Ether() / net(src=ip[0], dst=ip[1]) / UDP(sport=port, dport=53) / DNS(id=qid, rd=1, qd=DNSQR(qname=name,
                                                                                                     qtype=qtype))
    an = DNSRR(rrname=name, type=qtype, ttl=60, rdata=address) if address else []
    r = (Ether() / net(src=ip[1], dst=ip[0]) / UDP(sport=53, dport=port)
         / DNS(id=qid, qr=1, rd=1, ra=1, rcode=0, qd=DNSQR(qname=name, qtype=qtype), an=an))
    return [(t, q), (t + 0.02, r)]


def _filler(t0, t1, step=0.25):
    """UDP datagrams between two other hosts: the capture spans several chunks."""
    out, t = [], t0
    while t < t1:
        out.append((t, Ether() / IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=40000, dport=40001)
                    / (b"x" * 600)))
        t += step
    return out


def _dns(flows):
    return flows[flows.purpose == "dns"].reset_index(drop=True)


@pytest.mark.parametrize("qtype, ip", [("AAAA", V6), ("A", V4)])
def test_every_lookup_without_an_address_is_blocked(tmp_path, monkeypatch, qtype, ip):
    recs = sum((_lookup(100.0 + 2 * i, qtype, 53020 + i, ip, qid=0x100 + i) for i in range(3)), [])
    path = write(tmp_path, recs + _filler(90.0, 120.0))
    w = assert_same(path, [4096, 16384])
    assert_live_same(path, monkeypatch, step=7)
    d = _dns(w)
    assert d.verdict.tolist() == ["blocked"] * 3
    assert d.reason.tolist() == ["rejected"] * 3
    assert all(x.startswith(f"{DNS_NO_ADDRESS}{NAME}: no lookup of it in the capture got an address") for x in d.detail)
    # (asked over IPv6: the agent may have no IPv4; DNS64/NAT64 said only then)
    assert all(("DNS64 with a NAT64 gateway" in x) == (ip == V6) for x in d.detail), d.detail.tolist()


@pytest.mark.parametrize("answered_first", [True, False])
def test_dual_stack_empty_aaaa_beside_an_answered_a_stays_ok(tmp_path, monkeypatch, answered_first):
    # the two lookups far apart (other chunks), in either order; the live session's final table too
    a = _lookup(100.0 if answered_first else 115.0, "A", 53040, V4, address="203.0.113.10", qid=1)
    aaaa = _lookup(115.0 if answered_first else 100.0, "AAAA", 53041, V4, qid=2)
    path = write(tmp_path, a + aaaa + _filler(90.0, 130.0))
    w = assert_same(path, [4096, 16384])
    assert_live_same(path, monkeypatch, step=7)
    d = _dns(w)
    assert d.verdict.tolist() == ["ok", "ok"]
    assert d.detail.tolist() == ["", ""]


def test_names_the_agent_does_not_need_stay_ok_and_are_told_apart(tmp_path):
    # the same answers but for the name: only the needed one is blocked (judged apart)
    recs = (_lookup(100.0, "A", 53050, V4, name="www.example.com", qid=1)
            + _lookup(100.5, "A", 53051, V4, qid=2))
    d = _dns(assert_same(write(tmp_path, recs), [2048]))
    by = dict(zip(d["query"], d["verdict"]))
    assert by == {"www.example.com": "ok", NAME: "blocked"}
