"""A live session past a flow's first HEAD_PACKETS packets keeps only those that bring something
(a DNS response of a new kind or with a new address, an ICMP error, ...). The flow table is built
again from the packets kept, and a DNS (UDP) flow is split there at a gap longer than its idle
timeout (10 s): a response kept long after the last kept packet, the packets between dropped
into counters, made a second flow that the file's analysis does not have (review of session 29:
a DNS flow on one source port asking HTTPS records each second, then an A record; or a
round-robin name answered with a new address). The gap between two kept packets of a flow that
is not TCP is now never longer than half its idle timeout unless the capture's own gap was: the
packet before the one kept is kept too (LiveSession: ``_Flow.bridge``)."""
from __future__ import annotations

import pytest
from scapy.all import DNS, DNSQR, DNSRR, IP, TCP, UDP, Raw

from chunkcmp import write
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth
from test_live_session import _assert_same, _replay
from kscc_traffic.live.session import HEAD_PACKETS, LiveSession
from kscc_traffic.rules import load_rules

RULES = load_rules()
AGENT, RESOLVER = "192.0.2.10", "198.51.100.53"
NAME = "eu1.ksc.kaspersky.com"


def _up(t, flags, seq, ack, data=b""):
    """(t, frame) of the agent's connection to 203.0.113.10:13000, agent to server."""
    return t, eth(IP(src=AGENT, dst="203.0.113.10") / TCP(sport=50000, dport=13000, flags=flags, seq=seq, ack=ack)
                  / Raw(data))


def _dn(t, flags, seq, ack, data=b""):
    """(t, frame) of the same connection, server to agent."""
    return t, eth(IP(src="203.0.113.10", dst=AGENT) / TCP(sport=13000, dport=50000, flags=flags, seq=seq, ack=ack)
                  / Raw(data), src=SERVER_MAC, dst=CLIENT_MAC)


def _lookups(kinds, answers=None):
    """One query a second from one source port and its answer; ``kinds``: the question types,
    ``answers``: the A record of each (None: NODATA)."""
    recs = []
    for k, qt in enumerate(kinds):
        t = 10.0 + k
        an = [DNSRR(rrname=NAME, type="A", rdata=answers[k])] if answers and answers[k] else []
        recs.append((t, eth(IP(src=AGENT, dst=RESOLVER) / UDP(sport=40000, dport=53)
                            / DNS(id=k, rd=1, qd=DNSQR(qname=NAME, qtype=qt)))))
        recs.append((t + .01, eth(IP(src=RESOLVER, dst=AGENT) / UDP(sport=53, dport=40000)
                                  / DNS(id=k, qr=1, ra=1, qd=DNSQR(qname=NAME, qtype=qt), an=an),
                                  src=SERVER_MAC, dst=CLIENT_MAC)))
    return recs


def _live(path, step=7):
    s = LiveSession(RULES, name=path.name)
    _replay(path, s, step=step)
    return s.final()


@pytest.mark.parametrize("late", [HEAD_PACKETS // 2 + 20, HEAD_PACKETS // 2 + 50])
def test_a_late_a_question_keeps_one_dns_flow(tmp_path, late):
    """HTTPS questions a second (NODATA), then an A one answered NODATA long after the packets
    kept whole: one flow, blocked for the A record, as analyze says."""
    kinds = ["HTTPS"] * (late + 5)
    kinds[late] = "A"
    path = write(tmp_path, _lookups(kinds))
    got = _live(path)
    dns = got[got["resp_p"] == 53]
    assert len(dns) == 1, dns[["ts", "verdict", "detail"]].to_string()
    assert dns["verdict"].iloc[0] == "blocked"
    assert "no A record" in dns["detail"].iloc[0]
    _assert_same(path, got)


def test_a_late_new_address_keeps_one_dns_flow(tmp_path):
    """A round-robin name answered with one address, then another one: one flow whose answers
    are both addresses, as analyze says."""
    n = HEAD_PACKETS // 2 + 40
    answers = ["203.0.113.5"] * n
    answers[n - 3] = "203.0.113.6"
    path = write(tmp_path, _lookups(["A"] * n, answers))
    got = _live(path)
    dns = got[got["resp_p"] == 53]
    assert len(dns) == 1, dns[["ts", "dns_answers"]].to_string()
    assert set(dns["dns_answers"].iloc[0].split(";")) == {"203.0.113.5", "203.0.113.6"}
    _assert_same(path, got)


def test_a_real_gap_still_splits(tmp_path):
    """A gap longer than the DNS idle timeout in the capture itself: two flows, live as analyze."""
    recs = _lookups(["A"] * (HEAD_PACKETS // 2 + 10), ["203.0.113.5"] * (HEAD_PACKETS // 2 + 10))
    later = [(t + 30, p) for t, p in _lookups(["A"] * 3, ["203.0.113.5"] * 3)]
    path = write(tmp_path, recs + [(t + recs[-1][0], p) for t, p in later])
    got = _live(path)
    assert (got["resp_p"] == 53).sum() == 2
    _assert_same(path, got)


def test_a_connection_kept_up_by_keep_alives_stays_one(tmp_path):
    """A TCP connection (the agent's to its server) whose 40 exchanges are followed by a
    keep-alive each 60 s for 20 minutes, then closed: one SF connection, live as analyze (the
    keep-alives after the packets kept whole add only to counters: the close came 1,150 s after
    the last kept packet, more than the 300 s TCP idle timeout, and made a second, partial flow)."""
    up, dn = _up, _dn
    recs = [up(0, "S", 100, 0), dn(.01, "SA", 500, 101), up(.02, "A", 101, 501)]
    cs, ss, t = 101, 501, 1.0
    for _ in range(40):
        recs += [up(t, "PA", cs, ss, b"x" * 100), dn(t + .01, "PA", ss, cs + 100, b"y" * 100)]
        cs, ss = cs + 100, ss + 100
        recs.append(up(t + .02, "A", cs, ss))
        t += 1
    for _ in range(20):
        t += 60
        recs += [up(t, "A", cs - 1, ss, b"\0"), dn(t + .01, "A", ss, cs)]
    t += 10
    recs += [up(t, "FA", cs, ss), dn(t + .01, "FA", ss, cs + 1), up(t + .02, "A", cs + 1, ss + 1)]
    path = write(tmp_path, recs)
    got = _live(path, step=5)
    assert got["conn_state"].tolist() == ["SF"], got[["ts", "conn_state", "history"]].to_string()
    assert got["history"].tolist() == ["ShADdTaTFf"]    # (the keep-alives: Zeek's T at the 1st and 10th)
    _assert_same(path, got)


@pytest.mark.parametrize("gap", [160.0, 290.0])
def test_a_connection_sending_data_less_often_than_its_idle_timeout_stays_one(tmp_path, gap):
    """A TCP connection that sends a few bytes each way every ``gap`` s (more than half the 300 s
    TCP idle timeout, less than all of it) past the packets kept whole, then closes: one SF
    connection, live as analyze. Its data segments past the head are held for the sequence
    numbers (each replacing the one before), not counted only: they were never bridged, and the
    flow built again from the kept packets was split in two at the gap before the held ones."""
    up, dn = _up, _dn
    recs = [up(0, "S", 100, 0), dn(.01, "SA", 500, 101), up(.02, "A", 101, 501)]
    cs, ss, t = 101, 501, 1.0
    for _ in range(HEAD_PACKETS // 2 + 10):
        recs += [up(t, "PA", cs, ss, b"x" * 10), dn(t + .01, "PA", ss, cs + 10, b"y" * 10)]
        cs, ss = cs + 10, ss + 10
        t += gap
    recs += [up(t, "FA", cs, ss), dn(t + .01, "FA", ss, cs + 1), up(t + .02, "A", cs + 1, ss + 1)]
    path = write(tmp_path, recs)
    got = _live(path, step=5)
    assert got["conn_state"].tolist() == ["SF"], got[["ts", "conn_state", "history"]].to_string()
    assert got["orig_bytes"].tolist() == [10 * (HEAD_PACKETS // 2 + 10)]
    _assert_same(path, got)
