"""A dual-stack agent whose IPv6 attempts go unanswered while IPv4 works, the last IPv6 attempt
cut by the capture's end (newcomer 35 F5): the advice said "the others worked: compare clients,
addresses and ports" instead of naming the family that fails, because one blocked flow was an
attempt the capture cut short (its family then no longer counted). The cut flows' family is known
when every blocked flow is of one family: the split is said, by the table report and the grouped
checklist alike."""
from __future__ import annotations

from kscc_traffic import analyze, load_rules, readiness
from kscc_traffic.report import render_table

RULES = load_rules()


def test_ipv6_blocked_ipv4_ok_with_the_last_attempt_cut(tmp_path):
    from pcapbuild import eth, pcap_bytes, tcp_session
    from scapy.all import TCP, IPv6
    syn6 = [(1000.0 + 10 * k, eth(IPv6(src="2001:db8::10", dst="2001:db8:1::10") /
                                  TCP(sport=50000 + k, dport=23101, flags="S", seq=7))) for k in range(3)]
    ok4 = []
    for k in range(3):
        ok4 += tcp_session(("192.0.2.10", 51000 + k), ("203.0.113.10", 23101), t0=1000.25 + 10 * k)
    path = tmp_path / "dual.pcap"
    path.write_bytes(pcap_bytes(sorted(syn6 + ok4, key=lambda r: r[0])))
    flows = analyze(path, RULES)
    six = flows[flows.resp_h == "2001:db8:1::10"]
    assert list(six.verdict) == ["blocked"] * 3 and "maybe before an answer" in six.detail.iloc[-1]
    why = ("3 of 6 flows ok, 3 blocked (all blocked over IPv6, the ok ones over IPv4: the IPv6 path is blocked; "
           "allow the ports for IPv6 too, or check its routes; a dual-stack agent tries IPv6 first): ")
    fix = readiness(flows, RULES).set_index("rule").loc["agent_connection", "fix"]
    assert fix.startswith(why), fix
    assert why in render_table(flows, RULES, width=400)


def test_mixed_families_among_the_blocked_still_compare(tmp_path):
    """Blocked flows of both families (one IPv4 attempt unanswered too): no family named."""
    from pcapbuild import eth, pcap_bytes, tcp_session
    from scapy.all import IP, TCP, IPv6
    recs = [(1000.0, eth(IPv6(src="2001:db8::10", dst="2001:db8:1::10") / TCP(sport=50000, dport=23101, flags="S"))),
            (1005.0, eth(IP(src="192.0.2.10", dst="203.0.113.11") / TCP(sport=50001, dport=23101, flags="S"))),
            (1020.0, eth(IPv6(src="2001:db8::10", dst="2001:db8:1::10") / TCP(sport=50002, dport=23101, flags="S")))]
    recs += tcp_session(("192.0.2.10", 51000), ("203.0.113.10", 23101), t0=1010.0)
    path = tmp_path / "mixed.pcap"
    path.write_bytes(pcap_bytes(sorted(recs, key=lambda r: r[0])))
    fix = readiness(analyze(path, RULES), RULES).set_index("rule").loc["agent_connection", "fix"]
    assert "all blocked over" not in fix and "the others worked: compare clients, addresses and ports" in fix
