"""Session 27 review of the ICMP error handling (break-it 25 leftovers): protocol unreachable
(3/2) is most likely a reject rule's, said with the port advice; host precedence violation
(3/14) and precedence cutoff (3/15) refuse the packets' IP precedence, not the port (their
own advice, no port to open)."""
from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP

from chunkcmp import whole
from test_icmp_errors_breakit25 import ALLOW, _agent_fix, _syn_error
from kscc_traffic.unreachable import NOT_REFUSALS, REJECTS


@pytest.mark.parametrize("code", [14, 15])
def test_precedence_errors_advise_the_marking_not_the_port(tmp_path, code):
    flows, _ = whole(_syn_error(tmp_path, False, ICMP(type=3, code=code)))
    assert flows["verdict"].tolist() == ["blocked"]
    status, fix = _agent_fix(flows)
    assert status == "blocked" and ALLOW not in fix, fix
    assert fix == (f"this flow was answered by ICMP {NOT_REFUSALS['precedence'][1]}, not a firewall's refusal: "
                   f"{NOT_REFUSALS['precedence'][3]}; no port is to be opened")
    assert flows["detail"].iloc[0].endswith(f"from 192.0.2.1: {NOT_REFUSALS['precedence'][2]}")


def test_protocol_unreachable_names_a_reject_rule_and_keeps_the_port(tmp_path):
    flows, _ = whole(_syn_error(tmp_path, False, ICMP(type=3, code=2)))
    assert flows["detail"].iloc[0] == ("answered by ICMP protocol unreachable (3/2) from 192.0.2.1: "
                                       f"{REJECTS['protocol'][2]}")
    status, fix = _agent_fix(flows)
    assert status == "blocked"
    assert fix.startswith(f"this flow was answered by ICMP protocol unreachable (3/2): {REJECTS['protocol'][3]}: "
                          + ALLOW), fix


def test_no_reset_hint_on_a_traceroute_probe(tmp_path):
    """tcptraceroute: a SYN with TTL 3 (time exceeded), again with TTL 9 (the server's SYN-ACK),
    the client's own stack resets with its usual TTL 64: no device on the path sent that reset."""
    from scapy.layers.inet import IP, TCP
    from chunkcmp import write
    from pcapbuild import CLIENT_MAC, SERVER_MAC, eth
    c, s, r = "192.0.2.10", "203.0.113.40", "192.0.2.1"
    syn = IP(src=c, dst=s, ttl=3) / TCP(sport=42000, dport=23101, flags="S", seq=1000)
    back = dict(src=SERVER_MAC, dst=CLIENT_MAC)
    recs = [(1000.0, bytes(eth(syn))),
            (1000.01, bytes(eth(IP(src=r, dst=c) / ICMP(type=11, code=0) / bytes(syn)[:28], **back))),
            (1001.0, bytes(eth(IP(src=c, dst=s, ttl=9) / TCP(sport=42000, dport=23101, flags="S", seq=1000)))),
            (1001.03, bytes(eth(IP(src=s, dst=c, ttl=50) / TCP(sport=23101, dport=42000, flags="SA", seq=5000,
                                                              ack=1001), **back))),
            (1001.031, bytes(eth(IP(src=c, dst=s, ttl=64) / TCP(sport=42000, dport=23101, flags="R", seq=1001))))]
    flows, _ = whole(write(tmp_path, recs))
    tcp = flows[flows["proto"] == "tcp"]
    assert tcp["icmp_unreachable"].tolist() == ["TTL exceeded in transit (11/0) from 192.0.2.1, sent with TTL 3 "
                                                "(a traceroute probe)"]
    assert "reset came with" not in tcp["detail"].iloc[0], tcp["detail"].iloc[0]
