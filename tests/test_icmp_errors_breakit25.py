"""ICMP errors, break-it 25: the checklist's advice follows the error (F1: a routing loop, extension
headers dropped, the source address refused… are not a firewall's refusal: no port to open); a
path-MTU error (ICMPv6 packet too big, ICMP 3/4) is attached to the flow it quotes, informational,
and the detail says when its sender still sent packets as large after it (F3); a traceroute probe
(a SYN with a small hop limit answered by time exceeded) is unclassified, not blocked (F4); a
quote of a tunnel's packet (6in4, IP-in-IP, GRE) is read for its inner packet (F5); a quote cut
before the ports is attached to the one flow between its addresses open then (F6). Whole =
chunked = tshark engine = grouped judgement."""
from __future__ import annotations

import shutil

import pytest
from scapy.all import GRE
from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.inet6 import (ICMPv6DestUnreach, ICMPv6PacketTooBig, ICMPv6ParamProblem, ICMPv6TimeExceeded,
                                IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop)

from chunkcmp import assert_same, whole, write
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth
from test_classify_fast import assert_same as assert_same_as_reference
from kscc_traffic.analyze import analyze_file, analyze_packets
from kscc_traffic.capture.decode import decode
from kscc_traffic.capture.files import read_frames
from kscc_traffic.classify import CLASS_COLUMNS
from kscc_traffic.protocols.icmp import is_too_big, quoted_datagram
from kscc_traffic.report import TableSummary, readiness
from kscc_traffic.rules import load_rules
from kscc_traffic.unreachable import NOT_REFUSALS

RULES = load_rules()
C6, R6, S6 = "2001:db8:1::10", "2001:db8:1::1", "2001:db8:cc::40"
C4, R4, S4 = "192.0.2.10", "192.0.2.1", "203.0.113.40"
ALLOW = "allow outbound TCP 23100-23199"


def _check_same(path, tshark: bool = True) -> None:
    """Whole = chunked (small chunks) = tshark engine (unless not ``tshark``); grouped judgement =
    per-row."""
    assert_same(path, [400, 1500, 4096])
    table, _ = analyze_packets(decode(read_frames(path)), RULES, path.name, internal=True)
    assert_same_as_reference(table.drop(columns=list(CLASS_COLUMNS)), RULES)
    if tshark and shutil.which("tshark"):
        a = analyze_file(path, RULES).flows.sort_values("uid").reset_index(drop=True)
        b = analyze_file(path, RULES, engine="tshark").flows.sort_values("uid").reset_index(drop=True)
        for col in a.columns:
            assert a[col].tolist() == b[col].tolist(), col


def _agent_fix(flows) -> tuple[str, str]:
    """(status, what to change) of agent_connection, by readiness and by TableSummary (equal)."""
    r = readiness(flows, RULES)
    row = r[r["rule"] == "agent_connection"].iloc[0]
    s = TableSummary()
    s.add(flows)
    r2 = s.readiness(RULES)
    row2 = r2[r2["rule"] == "agent_connection"].iloc[0]
    assert (row["status"], row["fix"]) == (row2["status"], row2["fix"])
    return row["status"], row["fix"]


def _syn_error(tmp_path, v6: bool, err, sender=None, n=2, **syn_kw):
    """``n`` SYNs to the agent port, each answered by ``err`` (an ICMP(v6) layer) quoting it."""
    c, r, s = (C6, R6, S6) if v6 else (C4, R4, S4)
    ip = (lambda a, b, **k: IPv6(src=a, dst=b, **k)) if v6 else (lambda a, b, **k: IP(src=a, dst=b, **k))
    syn = ip(c, s, **syn_kw) / TCP(sport=51000, dport=23101, flags="S", seq=100)
    recs = []
    for k in range(n):
        recs.append((1000.0 + k, bytes(eth(syn))))
        recs.append((1000.003 + k, bytes(eth(ip(sender or r, c) / err / bytes(syn), src=SERVER_MAC, dst=CLIENT_MAC))))
    return write(tmp_path, recs)


# --- F1: the advice follows the error ------------------------------------------------------------

NOT_REFUSED = [
    (True, ICMPv6DestUnreach(code=2), "source"), (True, ICMPv6DestUnreach(code=5), "source"),
    (True, ICMPv6DestUnreach(code=6), "reject_route"), (True, ICMPv6DestUnreach(code=7), "source_route"),
    (True, ICMPv6DestUnreach(code=8), "headers"), (True, ICMPv6TimeExceeded(code=0), "loop"),
    (True, ICMPv6ParamProblem(code=0), "headers"), (True, ICMPv6ParamProblem(code=1, ptr=40), "headers"),
    (True, ICMPv6ParamProblem(code=3), "headers"),
    (False, ICMP(type=11, code=0), "loop"), (False, ICMP(type=12, code=0), "headers"),
    (False, ICMP(type=3, code=5), "source_route"),
]


@pytest.mark.parametrize("v6,err,kind", NOT_REFUSED, ids=lambda x: str(x).replace(" ", ""))
def test_advice_of_an_error_that_is_no_refusal(tmp_path, v6, err, kind):
    path = _syn_error(tmp_path, v6, err)
    flows, _ = whole(path)
    assert flows["verdict"].tolist() == ["blocked"]
    status, fix = _agent_fix(flows)
    assert status == "blocked"
    assert ALLOW not in fix, fix
    assert fix == (f"this flow was answered by ICMP {NOT_REFUSALS[kind][1]}, not a firewall's refusal: "
                   f"{NOT_REFUSALS[kind][3]}; no port is to be opened")
    assert NOT_REFUSALS[kind][2] in flows["detail"].iloc[0]


@pytest.mark.parametrize("v6,err", [(True, ICMPv6DestUnreach(code=1)), (False, ICMP(type=3, code=13)),
                                    (False, ICMP(type=3, code=9)), (False, ICMP(type=3, code=10))],
                         ids=["v6-1/1", "v4-3/13", "v4-3/9", "v4-3/10"])
def test_advice_of_a_refusal_opens_the_port(tmp_path, v6, err):
    path = _syn_error(tmp_path, v6, err)
    flows, _ = whole(path)
    status, fix = _agent_fix(flows)
    assert status == "blocked" and fix.startswith(ALLOW), fix


def test_advice_of_mixed_errors(tmp_path):
    """A refusal and a routing loop: the port advice, and the loop's for the one flow."""
    recs = []
    for i, err in enumerate((ICMPv6DestUnreach(code=1), ICMPv6TimeExceeded(code=0))):
        syn = IPv6(src=C6, dst=S6) / TCP(sport=51000 + i, dport=23101, flags="S", seq=100)
        recs.append((1000.0 + i, bytes(eth(syn))))
        recs.append((1000.003 + i, bytes(eth(IPv6(src=R6, dst=C6) / err / bytes(syn), src=SERVER_MAC,
                                             dst=CLIENT_MAC))))
    flows, _ = whole(write(tmp_path, recs))
    status, fix = _agent_fix(flows)
    assert fix.startswith(ALLOW)
    assert fix.endswith(f"; 1 of them was answered by ICMP time exceeded in transit (not a firewall's refusal): "
                        f"{NOT_REFUSALS['loop'][3]}")


# --- F3: packet too big / fragmentation needed -----------------------------------------------------

def _ptb_capture(tmp_path, v6: bool, honoured: bool, quote: int = 1232):
    """Handshake, a 1440-byte segment answered by a path-MTU error (MTU 1280), then the client
    either sends smaller segments (``honoured``; acknowledged, closed) or the 1440-byte one again
    four times (each answered by the error again) and resets after 9 s."""
    c, r, s = (C6, R6, S6) if v6 else (C4, R4, S4)
    ip = (lambda a, b: IPv6(src=a, dst=b)) if v6 else (lambda a, b: IP(src=a, dst=b, flags="DF"))
    recs = []

    def up(t, **kw):
        p = ip(c, s) / TCP(sport=52000, dport=23101, **kw)
        recs.append((t, bytes(eth(p))))
        return p

    def dn(t, **kw):
        recs.append((t, bytes(eth(ip(s, c) / TCP(sport=23101, dport=52000, **kw), src=SERVER_MAC, dst=CLIENT_MAC))))

    def err(t, pkt):
        e = ICMPv6PacketTooBig(mtu=1280) if v6 else ICMP(type=3, code=4, nexthopmtu=1280)
        recs.append((t, bytes(eth(ip(r, c) / e / bytes(pkt)[:quote], src=SERVER_MAC, dst=CLIENT_MAC))))

    hello = b"\x16\x03\x01\x07\x00\x01\x00\x06\xfc\x03\x03" + bytes(1429)
    up(1000.0, flags="S", seq=1000)
    dn(1000.03, flags="SA", seq=5000, ack=1001)
    up(1000.031, flags="A", seq=1001, ack=5001)
    big = ip(c, s) / TCP(sport=52000, dport=23101, flags="PA", seq=1001, ack=5001) / hello
    recs.append((1000.032, bytes(eth(big))))
    err(1000.033, big)
    if honoured:
        recs.append((1000.06, bytes(eth(ip(c, s) / TCP(sport=52000, dport=23101, flags="A", seq=1001, ack=5001)
                                        / hello[:1200]))))
        recs.append((1000.061, bytes(eth(ip(c, s) / TCP(sport=52000, dport=23101, flags="PA", seq=2201,
                                                        ack=5001) / hello[1200:]))))
        dn(1000.09, flags="A", seq=5001, ack=1001 + len(hello))
        up(1002.0, flags="FA", seq=1001 + len(hello), ack=5001)
        dn(1002.03, flags="FA", seq=5001, ack=1002 + len(hello))
        up(1002.031, flags="A", seq=1002 + len(hello), ack=5002)
    else:
        for dt in (0.3, 0.9, 2.1, 4.5):
            recs.append((1000.0 + dt, bytes(eth(big))))
            err(1000.001 + dt, big)
        up(1009.0, flags="RA", seq=1001 + len(hello), ack=5001)
    return write(tmp_path, recs), (len(bytes(big)))


@pytest.mark.parametrize("v6", [True, False], ids=["v6", "v4"])
def test_too_big_ignored_is_told(tmp_path, v6):
    path, size = _ptb_capture(tmp_path, v6, honoured=False)
    _check_same(path)
    flows, _ = whole(path)
    assert flows["proto"].tolist() == ["tcp"]         # no ICMP flow of its own
    f = flows.iloc[0]
    # (newcomer 33 F2: RFC 4890 is cited for ICMPv6 only; IPv4's path MTU discovery is RFC 1191)
    name, what = (("packet too big (2/0)", "ICMPv6 type 2 (RFC 4890 §4.3.1: it must not be filtered; IPv6 path "
                   "MTU discovery, RFC 8201, depends on it)") if v6
                  else ("fragmentation needed and DF set (3/4)", "ICMP type 3 code 4 (path MTU discovery, RFC 1191, "
                        "depends on it)"))
    sender = R6 if v6 else R4
    assert f["icmp_unreachable"] == f"{name} from {sender}, after which the client still sent {size}-byte packets"
    assert f["verdict"] == "blocked" and f["reason"] != "icmp_unreachable"
    assert f["detail"].endswith(
        f"; ICMP {name} from {sender} reached the capture point, yet the client still sent {size}-byte packets "
        f"after it (as large as the one it quoted): a host firewall on the client dropping {what}, or an MTU/MSS "
        "to fix on a tunnel or link on the path (lower the interface MTU, or clamp the TCP MSS)"), f["detail"]


@pytest.mark.parametrize("v6", [True, False], ids=["v6", "v4"])
def test_too_big_honoured_is_informational(tmp_path, v6):
    path, _ = _ptb_capture(tmp_path, v6, honoured=True)
    _check_same(path)
    flows, _ = whole(path)
    assert flows["proto"].tolist() == ["tcp"]
    f = flows.iloc[0]
    assert f["icmp_unreachable"] == (f"packet too big (2/0) from {R6}" if v6
                                     else f"fragmentation needed and DF set (3/4) from {R4}")
    assert f["reason"] != "icmp_unreachable" and "reached the capture point" not in f["detail"]
    assert "packet too big" not in f["detail"] and "fragmentation needed" not in f["detail"]


def test_is_too_big():
    assert is_too_big(6, 2, 0) and is_too_big(4, 3, 4)
    assert not is_too_big(4, 3, 3) and not is_too_big(6, 1, 4) and not is_too_big(6, 3, 0)


# --- F4: a traceroute probe ---------------------------------------------------------------------------

@pytest.mark.parametrize("v6", [True, False], ids=["v6", "v4"])
def test_tcp_traceroute_is_not_blocked(tmp_path, v6):
    c, s = (C6, S6) if v6 else (C4, S4)
    recs = []
    t, sp = 1000.0, 40000
    for hl in range(1, 5):
        for _ in range(2):
            hop = f"2001:db8:{hl}::1" if v6 else f"198.51.100.{hl}"
            syn = (IPv6(src=c, dst=s, hlim=hl) if v6 else IP(src=c, dst=s, ttl=hl)) / \
                TCP(sport=sp, dport=23101, flags="S", seq=1000 + sp)
            recs.append((t, bytes(eth(syn))))
            if hl < 4:
                err = (IPv6(src=hop, dst=c) / ICMPv6TimeExceeded(code=0) if v6
                       else IP(src=hop, dst=c) / ICMP(type=11, code=0)) / bytes(syn)
                recs.append((t + 0.001 * hl, bytes(eth(err, src=SERVER_MAC, dst=CLIENT_MAC))))
            else:
                ip = IPv6(src=s, dst=c) if v6 else IP(src=s, dst=c)
                recs.append((t + 0.03, bytes(eth(ip / TCP(sport=23101, dport=sp, flags="SA", seq=5, ack=1001 + sp),
                                                 src=SERVER_MAC, dst=CLIENT_MAC))))
                recs.append((t + 0.0301, bytes(eth((IPv6(src=c, dst=s, hlim=hl) if v6 else IP(src=c, dst=s, ttl=hl))
                                                   / TCP(sport=sp, dport=23101, flags="R", seq=1001 + sp)))))
            sp += 1
            t += 0.05
    path = write(tmp_path, recs)
    _check_same(path)
    flows, _ = whole(path)
    probes = flows[flows["orig_p"] < 40006]
    assert probes["verdict"].unique().tolist() == ["unclassified"]
    assert probes["reason"].unique().tolist() == [""]
    field, name = ("hop limit", "hop limit exceeded in transit (3/0)") if v6 else ("TTL", "TTL exceeded in transit (11/0)")
    hop = "2001:db8:2::1" if v6 else "198.51.100.2"
    assert probes["detail"].tolist()[2] == (f"a traceroute probe: its {field} (2) ran out at {hop} (ICMP {name}): it "
                                            "shows the path, not whether the port is open")
    assert flows[flows["orig_p"] >= 40006]["verdict"].tolist() == ["ok", "ok"]
    status, fix = _agent_fix(flows)
    assert status != "blocked" and ALLOW not in fix


def test_routing_loop_is_not_a_probe(tmp_path):
    """The agent's own SYN (hop limit 64) answered by time exceeded: blocked, the loop's advice."""
    path = _syn_error(tmp_path, True, ICMPv6TimeExceeded(code=0), hlim=64)
    flows, _ = whole(path)
    assert (flows["verdict"].iloc[0], flows["reason"].iloc[0]) == ("blocked", "icmp_unreachable")
    assert _agent_fix(flows)[1].startswith("this flow was answered by ICMP time exceeded in transit")


# --- F5: a tunnel's packet quoted -----------------------------------------------------------------------

def _tunnel_capture(tmp_path, outer):
    """An IPv6 SYN sent twice through ``outer`` (a function: inner packet -> tunnel packet), each
    answered by ICMPv4 3/13 (or ICMPv6 1/1 for an IPv6 outer header) quoting the tunnel packet."""
    syn = IPv6(src=C6, dst="2001:db8:cc::61") / TCP(sport=50005, dport=23105, flags="S", seq=1)
    recs = []
    for k in range(2):
        o = outer(syn)
        recs.append((1000.0 + k, bytes(eth(o))))
        if IPv6 in o and o[IPv6] is o:
            err = IPv6(src="2001:db8:f::fe", dst=o.src) / ICMPv6DestUnreach(code=1) / bytes(o)[:1232]
        else:
            err = IP(src="192.0.2.254", dst=o.src) / ICMP(type=3, code=13) / bytes(o)[:len(o) - len(syn) + 60]
        recs.append((1000.002 + k, bytes(eth(err, src=SERVER_MAC, dst=CLIENT_MAC))))
    return write(tmp_path, recs)


@pytest.mark.parametrize("outer", [
    lambda p: IP(src="192.0.2.1", dst="198.51.100.1") / p,
    lambda p: IP(src="192.0.2.1", dst="198.51.100.1") / GRE(proto=0x86DD) / p,
    lambda p: IP(src="192.0.2.1", dst="198.51.100.1") / GRE(proto=0x86DD, key_present=1, key=7) / p,
    lambda p: IPv6(src="2001:db8:f::1", dst="2001:db8:f::2") / p,
], ids=["6in4", "gre", "gre-key", "6in6"])
def test_error_quoting_a_tunnel_packet(tmp_path, outer):
    path = _tunnel_capture(tmp_path, outer)
    _check_same(path)
    flows, _ = whole(path)
    assert flows["proto"].tolist() == ["tcp"], flows[["proto", "orig_h", "resp_h"]]
    f = flows.iloc[0]
    assert (f["verdict"], f["reason"]) == ("blocked", "icmp_unreachable")
    assert f["icmp_unreachable"].startswith("administratively prohibited (")


def test_quoted_tunnel_unit():
    inner = IP(src="10.0.0.1", dst="10.0.0.2") / TCP(sport=1234, dport=23101)
    q = quoted_datagram(bytes(IP(src="192.0.2.1", dst="198.51.100.1") / inner), 4)
    assert (q.ipver, q.src, q.dst, q.proto, q.sport, q.dport, q.tunnel) == (4, "10.0.0.1", "10.0.0.2", 6, 1234,
                                                                          23101, (4,))
    # the quote ends inside the inner header: the outer datagram is what is known
    q = quoted_datagram(bytes(IP(src="192.0.2.1", dst="198.51.100.1") / inner)[:30], 4)
    assert (q.src, q.proto, q.sport, q.tunnel) == ("192.0.2.1", 4, None, ())


# --- F6: a quote cut before the ports -------------------------------------------------------------------

def _cut_capture(tmp_path, other: bool):
    syn = IPv6(src=C6, dst="2001:db8:cc::a1") / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / \
        TCP(sport=50003, dport=27201, flags="S", seq=5)
    recs = []
    if other:   # another TCP connection between the same addresses, open at the time
        syn2 = IPv6(src=C6, dst="2001:db8:cc::a1") / TCP(sport=50004, dport=27202, flags="S", seq=9)
        recs.append((999.5, bytes(eth(syn2))))
        recs.append((1001.5, bytes(eth(syn2))))
    for k in range(2):
        recs.append((1000.0 + k, bytes(eth(syn))))
        recs.append((1000.002 + k, bytes(eth(IPv6(src=R6, dst=C6) / ICMPv6DestUnreach(code=1) / bytes(syn)[:58],
                                             src=SERVER_MAC, dst=CLIENT_MAC))))
    return write(tmp_path, sorted(recs))


def test_quote_cut_before_the_ports(tmp_path):
    path = _cut_capture(tmp_path, other=False)
    # (not the tshark engine: its quote is rebuilt from the dissected headers, and Wireshark
    # dissects no TCP header in 2 bytes: the protocol is not known)
    _check_same(path, tshark=False)
    flows, _ = whole(path)
    assert flows["proto"].tolist() == ["tcp"]
    f = flows.iloc[0]
    assert (f["verdict"], f["reason"]) == ("blocked", "icmp_unreachable")
    assert f["detail"] == (f"answered by ICMP administratively prohibited (1/1) from {R6} (its quote stops before "
                           "the ports: the only TCP flow between these addresses then)")


def test_quote_cut_before_the_ports_two_flows(tmp_path):
    """Two TCP flows between the addresses open then: the quote cannot tell which; not attached."""
    path = _cut_capture(tmp_path, other=True)
    flows, _ = whole(path)
    assert sorted(flows["proto"].tolist()) == ["icmp", "tcp", "tcp"]
    assert (flows["icmp_unreachable"] == "").all()


@pytest.mark.parametrize("v6", [True, False], ids=["v6", "v4"])
def test_too_big_live(tmp_path, monkeypatch, v6):
    """A live session (its default head of packets kept whole per flow) gives analyze's table."""
    from test_live_session import assert_live_same
    path, _ = _ptb_capture(tmp_path, v6, honoured=False)
    assert_live_same(path, monkeypatch, step=3, head_packets=64)
