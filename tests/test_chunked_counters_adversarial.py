"""Adversarial captures for the chunked analysis (kscc_traffic.chunked) after the packets of open
flows are summarised into per-packet "weights" (``_summarise``, ``analyze._add_weights``): the
flow table read in tiny chunks must equal the whole-file one (kscc_traffic.analyze.analyze_file),
every column (counters, duration, state, history, uid, orientation, verdict, ICMP text, names).

Tests marked ``xfail(strict=True)`` are differences found (their reasons give the values seen);
the others are regression tests for shapes that agree today."""
from __future__ import annotations


import pandas as pd
import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw


from chunkcmp import assert_same, chunked as _chunked, row as _row, whole as _whole, write as _write
from pcapbuild import eth, ip_of, tcp_session

C, S = "198.18.0.1", "203.0.113.5"
C6, S6 = "2001:db8::1", "2001:db8::5"
ROUTER = "192.0.2.1"
SIZES = (700, 1500, 4096, 3333)


# ---------------------------------------------------------------------------------------------
# helpers

def _assert_same(path, sizes=SIZES):
    return assert_same(path, sizes)


def _c2s(h=(C, S), sp=40000, dp=443, **kw):
    return eth(ip_of(h[0], h[1]) / TCP(sport=sp, dport=dp, **kw))


def _s2c(h=(C, S), sp=40000, dp=443, **kw):
    return eth(ip_of(h[1], h[0]) / TCP(sport=dp, dport=sp, **kw), src="02:00:00:00:00:01",
               dst="02:00:00:00:00:10")


def _long_tcp(n=200, t0=1000.0, step=0.05, cl=100, sl=300, h=(C, S), sp=40000, close=True,
              rst_at=None, isn_c=1000, isn_s=5000):
    """A handshake, n rounds of client data / server data (+ a pure ACK every third round),
    then FIN both ways (or a server RST at round ``rst_at``). Distinct IP ids: no duplicates."""
    ipid = [0]

    def ided(p):
        ipid[0] += 1
        if IP in p:
            p[IP].id = ipid[0]
        return p

    r = [(t0, _c2s(h, sp, flags="S", seq=isn_c)),
         (t0 + .01, _s2c(h, sp, flags="SA", seq=isn_s, ack=isn_c + 1)),
         (t0 + .02, _c2s(h, sp, flags="A", seq=isn_c + 1, ack=isn_s + 1))]
    cs, ss = isn_c + 1, isn_s + 1
    t = t0 + .03
    for i in range(n):
        if rst_at is not None and i == rst_at:
            r.append((t, _s2c(h, sp, flags="R", seq=ss)))
            return [(a, ided(b)) for a, b in r]
        if cl:
            r.append((t, _c2s(h, sp, flags="PA", seq=cs, ack=ss) / Raw(b"c" * cl)))
            cs += cl
            t += step
        if sl:
            r.append((t, _s2c(h, sp, flags="PA", seq=ss, ack=cs) / Raw(b"s" * sl)))
            ss += sl
            t += step
        if i % 3 == 0:
            r.append((t, _c2s(h, sp, flags="A", seq=cs, ack=ss)))
            t += step
    if close:
        r += [(t, _c2s(h, sp, flags="FA", seq=cs, ack=ss)),
              (t + .01, _s2c(h, sp, flags="FA", seq=ss, ack=cs + 1)),
              (t + .02, _c2s(h, sp, flags="A", seq=cs + 1, ack=ss + 1))]
    return [(a, ided(b)) for a, b in r]


def _udp(src, to, sp, dp, data, t, ipid, **kw):
    return (t, eth(IP(src=src, dst=to, id=ipid) / UDP(sport=sp, dport=dp) / Raw(data), **kw))


# ---------------------------------------------------------------------------------------------
# shapes that agree today (regression tests)

def test_long_bidirectional_tcp(tmp_path):
    whole = _assert_same(_write(tmp_path, _long_tcp(n=80)), sizes=(700, 3333))
    r = _row(whole, orig_p=40000)
    assert (r.orig_bytes, r.resp_bytes, r.conn_state, r.history) == (8000, 24000, "SF", "ShADdFf")
    assert (r.orig_pkts, r.resp_pkts) == (111, 82)


def test_bulk_one_way_and_still_open(tmp_path):
    whole = _assert_same(_write(tmp_path, _long_tcp(n=80, cl=1200, sl=0, close=False)), sizes=(2048, 5000))
    r = _row(whole, orig_p=40000)
    assert (r.orig_bytes, r.resp_bytes, r.conn_state) == (96000, 0, "S1")
    assert (r.orig_pkts, r.resp_pkts) == (109, 1)


def test_rst_mid_transfer_and_ipv6(tmp_path):
    recs = _long_tcp(n=60, rst_at=45) + _long_tcp(n=40, h=(C6, S6), sp=40001, t0=1001.0)
    whole = _assert_same(_write(tmp_path, sorted(recs, key=lambda r: r[0])), sizes=(700, 3333))
    r = _row(whole, orig_p=40000)
    assert (r.conn_state, r.resp_pkts, r.resp_bytes) == ("RSTR", 47, 13500)
    r6 = _row(whole, orig_p=40001)
    assert (r6.orig_h, r6.conn_state, r6.orig_bytes) == (C6, "SF", 4000)


def test_late_syn_flips_orientation(tmp_path):
    recs = _long_tcp(n=100, step=0.003)
    syn = recs.pop(0)
    recs.insert(60, syn)   # the SYN written after 60 packets (0.2 s late)
    whole = _assert_same(_write(tmp_path, recs), sizes=(700, 2048))
    r = _row(whole, orig_p=40000)
    assert (r.orig_h, r.history, r.conn_state, r.orig_pkts) == (C, "ShADdFf", "SF", 138)


@pytest.mark.parametrize("gap", [59.9, 60.1])
def test_udp_idle_gap_around_timeout(tmp_path, gap):
    recs, t = [], 1000.0
    for i in range(40):
        recs.append(_udp(C, S, 5000, 15000, b"x" * (50 + i), t, i + 1))
        recs.append(_udp(S, C, 15000, 5000, b"y" * 30, t + 0.001, i + 100))
        t += 0.05
    t += gap
    for i in range(40):
        recs.append(_udp(C, S, 5000, 15000, b"z" * (20 + i), t, i + 300))
        t += 0.05
    whole = _assert_same(_write(tmp_path, recs), sizes=(700, 2048))
    assert len(whole) == (1 if gap < 60 else 2)
    assert whole["orig_pkts"].sum() == 80 and whole["resp_pkts"].sum() == 40


@pytest.mark.parametrize("gap", [299.9, 300.1])
def test_tcp_idle_gap_around_timeout(tmp_path, gap):
    recs = _long_tcp(n=30, step=0.01, close=False)
    t = recs[-1][0] + gap
    cs, ss = 1001 + 100 * 30, 5001 + 300 * 30
    for i in range(30):
        recs.append((t, _c2s(flags="PA", seq=cs, ack=ss) / Raw(b"k" * 10)))
        cs += 10
        t += 0.01
    recs += [(t, _c2s(flags="FA", seq=cs, ack=ss)), (t + .01, _s2c(flags="FA", seq=ss, ack=cs + 1))]
    whole = _assert_same(_write(tmp_path, recs), sizes=(700, 2048))
    assert len(whole) == (1 if gap < 300 else 2)
    assert whole["orig_bytes"].sum() == 3300


def test_vlan_tagged_long_connection(tmp_path):
    recs = [(t, Ether(bytes(p)[:12] + b"\x81\x00\x00\x64" + bytes(p)[12:])) for t, p in _long_tcp(n=60)]
    whole = _assert_same(_write(tmp_path, recs), sizes=(700, 2048))
    r = _row(whole, orig_p=40000)
    assert (r.vlan, r.inner_vlan, r.orig_bytes, r.resp_bytes, r.conn_state) == (100, 0, 6000, 18000, "SF")


def test_broadcast_and_multicast_agent_ports(tmp_path):
    recs, t = [], 1000.0
    for i in range(80):
        recs.append(_udp("198.18.0.9", "255.255.255.255", 15001, 15001, b"b" * 60, t, i + 1,
                         dst="ff:ff:ff:ff:ff:ff"))
        recs.append(_udp("198.18.0.9", "224.0.0.251", 15000, 15000, b"m" * 70, t + 0.5, i + 1000))
        t += 1.0
    whole = _assert_same(_write(tmp_path, recs), sizes=(700, 2048))
    b = _row(whole, resp_h="255.255.255.255")
    m = _row(whole, resp_h="224.0.0.251")
    assert (b.orig_pkts, b.orig_bytes, m.orig_pkts, m.orig_bytes) == (80, 4800, 80, 5600)


def test_zero_payload_ack_flood_and_retransmissions(tmp_path):
    recs = _long_tcp(n=20, step=0.01, close=False)
    t = recs[-1][0]
    cs, ss = 1001 + 2000, 5001 + 6000
    for i in range(150):
        p = _s2c(flags="A", seq=ss, ack=cs)
        p[IP].id = 1000 + i
        recs.append((t, p))
        t += 0.002
    for i in range(60):   # the same segment again and again (distinct IP ids: not copies)
        p = _c2s(flags="PA", seq=cs, ack=ss) / Raw(b"r" * 100)
        p[IP].id = 2000 + i
        recs.append((t, p))
        t += 0.01
    whole = _assert_same(_write(tmp_path, recs), sizes=(700, 2048))
    r = _row(whole, orig_p=40000)
    # (bytes from sequence numbers, as Zeek: the 60 copies of one segment are 100 new bytes)
    assert (r.orig_pkts, r.resp_pkts, r.orig_bytes, r.resp_bytes) == (89, 171, 2100, 6000)


def test_udp_flows_with_icmp_errors_v4_and_v6(tmp_path):
    recs, t = [], 1000.0
    for i in range(60):
        q = IP(src=C, dst=S, id=1 + i) / UDP(sport=5001, dport=15000) / Raw(b"q" * 30)
        recs.append((t, eth(q)))
        t += 0.01
        if i % 2 == 0:   # the first packet of the responder side is an error quoting the flow
            recs.append((t, eth(IP(src=ROUTER, dst=C, id=500 + i) / ICMP(type=3, code=3) / bytes(q)[:28])))
            t += 0.01
        if i > 20:
            recs.append((t, eth(IP(src=S, dst=C, id=900 + i) / UDP(sport=15000, dport=5001) / Raw(b"r" * 20))))
            t += 0.01
        q6 = IPv6(src=C6, dst=S6) / UDP(sport=5002, dport=15000) / Raw(b"q" * 30)
        recs.append((t, eth(q6)))
        if i % 3 == 0:
            recs.append((t + 0.001, eth(IPv6(src="2001:db8::fe", dst=C6) / ICMPv6DestUnreach(code=4) / bytes(q6))))
        t += 0.01
    whole = _assert_same(_write(tmp_path, recs), sizes=(700, 2048))
    r = _row(whole, orig_p=5001)
    assert (r.orig_pkts, r.resp_pkts, r.resp_bytes) == (60, 39, 780)
    assert r.icmp_unreachable.startswith("port unreachable") or "(3/3)" in r.icmp_unreachable
    r6 = _row(whole, orig_p=5002)
    assert (r6.orig_pkts, r6.resp_pkts) == (60, 0) and "(1/4)" in r6.icmp_unreachable


def test_port_reuse_after_close_within_and_beyond_close_delay(tmp_path):
    recs = []
    for k, d in enumerate((3.0, 7.0)):
        sp = 41000 + k
        r1 = _long_tcp(n=25, step=0.01, sp=sp, t0=1000.0 + 20 * k)
        r2 = _long_tcp(n=25, step=0.01, sp=sp, t0=r1[-1][0] + d, isn_c=60000, isn_s=80000)
        recs += r1 + r2
    whole = _assert_same(_write(tmp_path, sorted(recs, key=lambda r: r[0])), sizes=(700, 3333))
    assert len(whole) == 4
    assert (whole["conn_state"] == "SF").all() and (whole["orig_bytes"] == 2500).all()


def test_tcp_segments_in_ipv4_fragments(tmp_path):
    out = []
    for t, p in _long_tcp(n=40, cl=1500, sl=0, step=0.01):
        if len(p[IP]) > 1000:
            out += [(t, eth(f)) for f in fragment(IP(bytes(p[IP])), fragsize=600)]
        else:
            out.append((t, p))
    whole = _assert_same(_write(tmp_path, out), sizes=(700, 2048))
    r = _row(whole, orig_p=40000)
    assert (r.orig_bytes, r.conn_state) == (60000, "SF")


# ---------------------------------------------------------------------------------------------
# differences found by a break-it session (fixed ones are plain tests now; xfail strict: still open)

def _unmatched_errors(tmp_path):
    """60 ICMP port unreachables (0.1 s apart) quoting a UDP flow that is not in the capture:
    they form one ICMP flow of their own."""
    recs = []
    for i in range(60):
        q = IP(src=C, dst="203.0.113.7", id=500 + i) / UDP(sport=5000, dport=15000) / Raw(b"q" * 8)
        recs.append((1000.0 + i * 0.1, eth(IP(src=ROUTER, dst=C, id=i + 1) / ICMP(type=3, code=3)
                                           / bytes(q)[:28])))
    return _write(tmp_path, recs)


def test_unmatched_icmp_errors_whole_file_values(tmp_path):
    whole, _ = _whole(_unmatched_errors(tmp_path))
    r = _row(whole, proto="icmp")
    assert (r.orig_h, r.resp_h, r.orig_pkts, r.orig_bytes, r.orig_ip_bytes) == (ROUTER, C, 60, 1680, 3360)


# (was lost: the '#icmp' flows of analyze_batch did not get the weights)
def test_unmatched_icmp_errors_keep_their_counts(tmp_path):
    p = _unmatched_errors(tmp_path)
    parts, _ = _chunked(p, 700)
    r = _row(parts, proto="icmp")
    assert (r.orig_pkts, r.orig_bytes, r.orig_ip_bytes) == (60, 1680, 3360)
    _assert_same(p)


def _reused_port_late_syn(tmp_path):
    """A closed connection, then a new one on the same 5-tuple 1 s later whose SYN is written
    30 ms late (after its SYN-ACK, ACK and first data segment: merged interfaces)."""
    r1 = tcp_session((C, 40000), (S, 443), t0=1000.0, c_data=b"a" * 10, s_data=b"b" * 10)
    r2 = tcp_session((C, 40000), (S, 443), t0=1001.0, isn_c=90000, isn_s=70000, c_data=b"c" * 20,
                     s_data=b"d" * 30)
    syn = r2.pop(0)
    r2.insert(3, syn)
    return _write(tmp_path, r1 + r2)


def test_reused_port_late_syn_whole_file_values(tmp_path):
    whole, a = _whole(_reused_port_late_syn(tmp_path))
    assert a.warnings == []
    assert whole[["resp_pkts", "conn_state", "history"]].values.tolist() == [
        [3, "SF", "ShADdFf"], [3, "SF", "ShADdFf"]]
    # chunk sizes whose boundary does not fall between the SYN-ACK and the late SYN agree
    for cb in (700, 1500, 2048):
        parts, run = _chunked(_reused_port_late_syn(tmp_path), cb)
        pd.testing.assert_frame_equal(parts, whole)
        assert run.stats.warnings == []


# (was wrong: the new connection's first packets were summarised into the closed one; packets after a close are now kept whole)
def test_reused_port_late_syn_in_next_chunk(tmp_path):
    p = _reused_port_late_syn(tmp_path)
    whole, _ = _whole(p)
    for cb in (750, 800, 900):
        parts, run = _chunked(p, cb)
        assert run.stats.warnings == []
        assert parts[["resp_pkts", "conn_state", "history"]].values.tolist() == [
            [3, "SF", "ShADdFf"], [3, "SF", "ShADdFf"]], cb
        pd.testing.assert_frame_equal(parts, whole)


def _udp_run_with_copy(tmp_path, copy_of, at):
    """40 UDP datagrams 10 ms apart (distinct ids), a byte-identical copy of datagram ``copy_of``
    with timestamp ``at`` written after them (< 0.5 s out of order), then 5 more datagrams."""
    recs, t = [], 1000.0
    for i in range(40):
        recs.append(_udp(C, S, 5000, 15000, b"x" * (40 + i), t, 1 + i))
        t += 0.01
    recs.append((at, recs[copy_of][1]))
    for i in range(5):
        recs.append(_udp(C, S, 5000, 15000, b"y" * 10, t, 100 + i))
        t += 0.01
    return _write(tmp_path, recs)


def test_copy_of_first_datagram_whole_file_values(tmp_path):
    whole, a = _whole(_udp_run_with_copy(tmp_path, 0, 999.995))
    r = _row(whole, orig_p=5000)
    assert (r.orig_pkts, r.orig_bytes, r.orig_ip_bytes, a.duplicates) == (45, 2430, 3690, 1)


# (was lost: a weighted packet dropped as a copy now hands its weights to what it copies)
def test_copy_of_stand_in_with_earlier_timestamp(tmp_path):
    p = _udp_run_with_copy(tmp_path, 0, 999.995)
    parts, run = _chunked(p, 700)
    assert run.stats.warnings == ["c.pcap: 1 duplicated frame counted once"]
    r = _row(parts, orig_p=5000)
    assert (r.orig_pkts, r.orig_bytes, r.orig_ip_bytes) == (45, 2430, 3690)
    _assert_same(p)


@pytest.mark.xfail(strict=True, reason=(
    "a copy (+1 ms, written 0.1 s late in the next chunk) of a datagram that was summarised away "
    "is not recognised as a duplicate (its original is no longer among the packets), so it is "
    "counted; no warning about it. chunk 700: orig_pkts 46 / orig_bytes 2500 / orig_ip_bytes 3788 "
    "instead of 45 / 2430 / 3690, duplicates 0 instead of 1"))
def test_late_copy_of_summarised_datagram(tmp_path):
    p = _udp_run_with_copy(tmp_path, 30, 1000.301)
    whole, a = _whole(p)
    r = _row(whole, orig_p=5000)
    assert (r.orig_pkts, r.orig_bytes, r.orig_ip_bytes, a.duplicates) == (45, 2430, 3690, 1)
    parts, run = _chunked(p, 700)
    r = _row(parts, orig_p=5000)
    assert (r.orig_pkts, r.orig_bytes, r.orig_ip_bytes, run.duplicates) == (45, 2430, 3690, 1)
