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


def _black_hole(tmp_path, with_error: bool):
    """Break-it 25 s07 B (with ``with_error``) and C: a 1440-byte segment and the rest of a large
    ClientHello; the server acknowledges nothing of it (a duplicate ACK after the rest); the big
    segment sent again 4 times over 4.5 s, each time answered by ICMPv6 packet too big (or not at
    all); the client resets after 9 s."""
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import ICMPv6PacketTooBig, IPv6
    from chunkcmp import write
    from pcapbuild import CLIENT_MAC, SERVER_MAC, eth
    c, r, s = "2001:db8:1::10", "2001:db8:1::1", "2001:db8:cc::40"
    back = dict(src=SERVER_MAC, dst=CLIENT_MAC)
    hello = b"\x16\x03\x01\x07\x00\x01\x00\x06\xfc\x03\x03" + bytes(1789)
    recs = []

    def up(t, seq, flags="PA", data=b""):
        p = IPv6(src=c, dst=s) / TCP(sport=52000, dport=23101, flags=flags, seq=seq, ack=5001) / data
        recs.append((t, bytes(eth(p))))
        return p

    def err(t, pkt):
        if with_error:
            recs.append((t, bytes(eth(IPv6(src=r, dst=c) / ICMPv6PacketTooBig(mtu=1280) / bytes(pkt)[:1232],
                                      **back))))

    recs.append((1000.0, bytes(eth(IPv6(src=c, dst=s) / TCP(sport=52000, dport=23101, flags="S", seq=1000)))))
    recs.append((1000.03, bytes(eth(IPv6(src=s, dst=c) / TCP(sport=23101, dport=52000, flags="SA", seq=5000,
                                                             ack=1001), **back))))
    up(1000.031, 1001, "A")
    big = up(1000.032, 1001, data=hello[:1440])
    up(1000.0321, 2441, data=hello[1440:])
    err(1000.033, big)
    recs.append((1000.06, bytes(eth(IPv6(src=s, dst=c) / TCP(sport=23101, dport=52000, flags="A", seq=5001,
                                                             ack=1001), **back))))
    for dt in (0.3, 0.9, 2.1, 4.5):
        up(1000.0 + dt, 1001, data=hello[:1440])
        err(1000.001 + dt, big)
    up(1009.0, 1001 + len(hello), "RA")
    return write(tmp_path, recs)


@pytest.mark.parametrize("with_error", [True, False], ids=["error-seen", "error-filtered"])
def test_black_hole_hint_names_the_error_captured(tmp_path, with_error):
    """Break-it 25 s07 B: the black hole's hint no longer says the path-MTU errors were filtered
    when one of the flow's was captured (C, none captured, keeps it)."""
    from chunkcmp import assert_same
    from kscc_traffic.unreachable import MTU_FILTERED
    path = _black_hole(tmp_path, with_error)
    assert_same(path, [400, 1500, 4096])
    flows, _ = whole(path)
    detail = flows[flows["proto"] == "tcp"]["detail"].iloc[0]
    hole = "the client's 1440 bytes from offset 1 were never acknowledged though later bytes arrived"
    assert hole in detail, detail
    if with_error:
        assert MTU_FILTERED not in detail
        # (named once: break-it s62 #8 saw it twice in a row)
        assert ("full-size segments lost, a path-MTU black hole?; ICMP packet too big (2/0) from "
                "2001:db8:1::1 reached the capture point, yet the client still sent 1500-byte packets") in detail
        assert detail.count("ICMP packet too big (2/0) from 2001:db8:1::1") == 1
    else:
        assert f"full-size segments lost, a path-MTU black hole?{MTU_FILTERED}" in detail


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
def test_error_quoting_a_later_fragment_is_not_called_cut(tmp_path, v6):
    """An ICMP error quoting the second fragment of a UDP datagram: no ports (it is no transport
    header), yet the quote is whole: the text says it quotes a later fragment, not that it stops
    before the ports; it goes to the one UDP flow between the addresses."""
    from scapy.all import fragment
    from scapy.layers.inet import IP, UDP
    from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6, IPv6ExtHdrFragment, fragment6
    from chunkcmp import write
    from pcapbuild import CLIENT_MAC, SERVER_MAC, eth
    from test_icmp_errors_breakit25 import _check_same
    from kscc_traffic.unreachable import LATER_FRAGMENT
    c, s, r = ("2001:db8:1::10", "2001:db8:cc::40", "2001:db8:1::1") if v6 else \
        ("192.0.2.10", "203.0.113.40", "192.0.2.1")
    if v6:
        big = IPv6(src=c, dst=s) / IPv6ExtHdrFragment(id=777) / UDP(sport=43000, dport=15111) / (b"x" * 3000)
        frags = fragment6(big, 1280)
        err = IPv6(src=r, dst=c) / ICMPv6DestUnreach(code=1) / bytes(frags[1])[:1232]
    else:
        big = IP(src=c, dst=s, id=777) / UDP(sport=43000, dport=15111) / (b"x" * 3000)
        frags = fragment(big, fragsize=1400)
        err = IP(src=r, dst=c) / ICMP(type=3, code=13) / bytes(frags[1])[:28]
    recs = [(1000.0 + i * 1e-4, bytes(eth(f))) for i, f in enumerate(frags)]
    recs.append((1000.01, bytes(eth(err, src=SERVER_MAC, dst=CLIENT_MAC))))
    path = write(tmp_path, recs)
    _check_same(path)
    flows, _ = whole(path)
    assert flows["proto"].tolist() == ["udp"]
    name = "administratively prohibited (1/1)" if v6 else "administratively prohibited (3/13)"
    assert flows["icmp_unreachable"].iloc[0] == f"{name} from {r}" + LATER_FRAGMENT.format(proto="UDP")
    assert "its quote stops before the ports" not in flows["detail"].iloc[0]


def test_traceroute_probe_with_a_quote_cut_before_the_ports(tmp_path):
    """A probe's time exceeded whose quote holds the IP header only: still a traceroute probe
    (unclassified), not a routing loop's 'a traceroute probe): a routing loop …'."""
    from scapy.layers.inet import IP, TCP
    from chunkcmp import write
    from pcapbuild import CLIENT_MAC, SERVER_MAC, eth
    syn = IP(src="192.0.2.10", dst="203.0.113.40", ttl=3) / TCP(sport=42000, dport=23101, flags="S", seq=1000)
    err = IP(src="192.0.2.1", dst="192.0.2.10") / ICMP(type=11, code=0) / bytes(syn)[:20]
    flows, _ = whole(write(tmp_path, [(1000.0, bytes(eth(syn))),
                                      (1000.01, bytes(eth(err, src=SERVER_MAC, dst=CLIENT_MAC)))]))
    assert flows["proto"].tolist() == ["tcp"]
    assert flows["verdict"].tolist() == ["unclassified"]
    assert flows["detail"].iloc[0] == ("a traceroute probe: its TTL (3) ran out at 192.0.2.1 (ICMP TTL exceeded in "
                                       "transit (11/0)): it shows the path, not whether the port is open")


def test_too_big_then_data_in_flight_is_not_ignoring_it(tmp_path):
    """A capture taken on the path, 10 ms from the client: a router beyond it answers the first
    of a burst of 1440-byte segments with packet too big; the segments the client sent before
    the error reached it pass the capture point after the error; then the client sends the data
    again in smaller segments. It honoured the error: no 'still sent … packets' (it said so from
    the new data in flight), as the quoted segment was never sent again as large."""
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import ICMPv6PacketTooBig, IPv6
    from chunkcmp import write
    from pcapbuild import CLIENT_MAC, SERVER_MAC, eth
    from test_icmp_errors_breakit25 import _check_same
    c, r, s = "2001:db8:1::10", "2001:db8:2::1", "2001:db8:cc::40"
    back = dict(src=SERVER_MAC, dst=CLIENT_MAC)

    def seg(src, dst, sp, dp, flags, seq, ack, data=b""):
        return IPv6(src=src, dst=dst) / TCP(sport=sp, dport=dp, flags=flags, seq=seq, ack=ack) / data

    body = b"\x16\x03\x01\x40\x00\x01\x00\x3f\xfc\x03\x03" + bytes(1429 + 1440 * 30)
    recs = [(1000.0, bytes(eth(seg(c, s, 52000, 23101, "S", 1000, 0)))),
            (1000.03, bytes(eth(seg(s, c, 23101, 52000, "SA", 5000, 1001), **back))),
            (1000.05, bytes(eth(seg(c, s, 52000, 23101, "A", 1001, 5001))))]
    first = None
    for i in range(20):
        p = seg(c, s, 52000, 23101, "A", 1001 + i * 1440, 5001, body[i * 1440:(i + 1) * 1440])
        first = first or p
        recs.append((1000.06 + i * .001, bytes(eth(p))))
    recs.append((1000.0605, bytes(eth(IPv6(src=r, dst=c) / ICMPv6PacketTooBig(mtu=1280) / bytes(first)[:1232],
                                      **back))))
    for i in range(24):
        recs.append((1000.081 + i * .001, bytes(eth(seg(c, s, 52000, 23101, "A", 1001 + i * 1220, 5001,
                                                        body[i * 1220:(i + 1) * 1220])))))
    recs.append((1000.2, bytes(eth(seg(s, c, 23101, 52000, "A", 5001, 1001 + 24 * 1220), **back))))
    recs.sort(key=lambda x: x[0])
    path = write(tmp_path, recs)
    _check_same(path)
    flows, _ = whole(path)
    assert flows["icmp_unreachable"].tolist() == [f"packet too big (2/0) from {r}"]
    assert "reached the capture point" not in flows["detail"].iloc[0]
