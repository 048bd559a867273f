"""UDP flows of name services (port 53, 137, 5353, 5355) end after 10 s without a packet, as Zeek's
DNS analyzer removes them (``dns_session_timeout``); other UDP flows after 60 s. The same in the
whole-file analysis, in chunks and in a live session."""
from __future__ import annotations

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, UDP

from chunkcmp import RULES, assert_same, write
from kscc_traffic.live.session import LiveSession, Timeouts
from pcapbuild import eth
from test_live_session import _replay

C, S = "198.18.0.7", "192.0.2.53"


def exchange(t, tid, sport=40000, dport=53, name="eu1.ksc.kaspersky.com"):
    q = eth(IP(src=C, dst=S) / UDP(sport=sport, dport=dport) / DNS(id=tid, rd=1, qd=DNSQR(qname=name)))
    a = eth(IP(src=S, dst=C) / UDP(sport=dport, dport=sport) / DNS(
        id=tid, qr=1, rd=1, ra=1, qd=DNSQR(qname=name), an=DNSRR(rrname=name, rdata="203.0.113.10")))
    return [(t, q), (t + 0.01, a)]


def capture():
    """From one source port: exchanges 5 s apart (one flow), then 11 s later (a new one), then
    30 s later (a third); the same gaps on a non-DNS UDP port stay one flow (60 s)."""
    recs = []
    for t, tid in ((1000.0, 1), (1005.0, 2), (1016.1, 3), (1046.2, 4)):
        recs += exchange(t, tid)
        recs += exchange(t, tid, sport=40001, dport=15000)
    return sorted(recs, key=lambda r: r[0])


def test_dns_flows_split_after_10s_idle_other_udp_after_60s(tmp_path):
    path = write(tmp_path, capture())
    flows = assert_same(path, [700, 1500])
    dns = flows[flows["resp_p"] == 53].sort_values("ts")
    other = flows[flows["resp_p"] == 15000]
    assert dns["orig_pkts"].tolist() == [2, 1, 1]
    assert [round(t, 1) for t in dns["ts"].tolist()] == [1000.0, 1016.1, 1046.2]
    assert dns["query"].tolist() == ["eu1.ksc.kaspersky.com"] * 3
    assert dns["dns_answers"].tolist() == ["203.0.113.10"] * 3
    assert other["orig_pkts"].tolist() == [4]


def test_live_session_ends_dns_flows_after_10s(tmp_path):
    path = write(tmp_path, capture())
    s = LiveSession(RULES, name=path.name)
    _replay(path, s, step=2)
    final = s.final()
    assert sorted(final[final["resp_p"] == 53]["orig_pkts"].tolist()) == [1, 1, 2]
    assert final[final["resp_p"] == 15000]["orig_pkts"].tolist() == [4]
    t = Timeouts.parse(["dns=30"])
    assert t.idle_ns(17, (40000, 53)) == 30 * 10**9 and t.idle_ns(17, (40000, 15000)) == 60 * 10**9
    assert t.idle_ns(6, (40000, 53)) == 300 * 10**9
