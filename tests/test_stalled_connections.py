"""TCP connections a firewall broke after they opened (break-it 13, real Linux stacks behind
nftables): the originator's last bytes sent again and never acknowledged (an idle session the
firewall dropped; a TLS 1.3 client's Finished never delivered), a SYN-ACK that never reached the
originator (a capture on the server's side of the filter), a SYN proxy resetting right after the
handshake. Each was ``ok``; each is ``blocked`` now, whole = chunked = grouped judgement, and
what a working connection does (one loss, then an acknowledgement) stays ``ok``."""
from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP

from chunkcmp import assert_same, whole, write
from pcapbuild import eth, ip_of
from test_classify_fast import assert_same as assert_same_as_reference
from kscc_traffic.rules import load_rules

RULES = load_rules()
C, S = ("192.0.2.10", 50000), ("198.51.100.20", 23101)


def _up(t, data=b"", **kw):
    return t, bytes(eth(ip_of(C[0], S[0]) / TCP(sport=C[1], dport=S[1], **kw) / data))


def _dn(t, data=b"", **kw):
    return t, bytes(eth(ip_of(S[0], C[0]) / TCP(sport=S[1], dport=C[1], **kw) / data,
                        src="02:00:00:00:00:01", dst="02:00:00:00:00:10"))


REC = b"\x17\x03\x03\x00\x3b" + bytes(59)      # a 64-byte TLS record


def _opened(t=1.0):
    """Handshake, one request and its answer: (records, client seq, server seq, next time)."""
    recs = [_up(t, flags="S", seq=1000), _dn(t + .01, flags="SA", seq=5000, ack=1001),
            _up(t + .02, flags="A", seq=1001, ack=5001), _up(t + .03, REC, flags="PA", seq=1001, ack=5001),
            _dn(t + .04, REC, flags="PA", seq=5001, ack=1065), _up(t + .05, flags="A", seq=1065, ack=5065)]
    return recs, 1065, 5065, t + .06


def _stalled(acked_at: int | None, sends: int = 6, idle: float = 30.0):
    """After ``idle`` seconds the client sends a record again ``sends`` times (1, 2, 4… s apart);
    ``acked_at``: the send after which the server acknowledges it (None: never)."""
    recs, c, s, t = _opened()
    t += idle
    for k in range(sends):
        recs.append(_up(t, REC, flags="PA", seq=c, ack=s))
        if acked_at == k:
            recs.append(_dn(t + .01, flags="A", seq=s, ack=c + len(REC)))
            break
        t += 2 ** k
    return recs


@pytest.mark.parametrize("acked_at, want", [(None, ("blocked", "no_answer")), (1, ("ok", "")), (0, ("ok", ""))],
                         ids=["never", "after-a-loss", "at-once"])
def test_last_bytes_sent_again_and_never_acknowledged(tmp_path, acked_at, want):
    path = write(tmp_path, _stalled(acked_at))
    flows, _ = whole(path)
    (r,) = flows.to_dict("records")
    assert (r["verdict"], r["reason"]) == want, r["detail"]
    if want[0] == "blocked":
        assert r["detail"] == ("the connection stalled: the responder acknowledged none of the originator's last "
                               "bytes, sent again, in the 31.0 s after their first sending (a firewall that dropped "
                               "the connection: an idle session timed out, a path broken)")
    assert_same(path, [1024, 4096])
    assert_same_as_reference(flows, RULES)


def test_stall_at_the_capture_end_needs_3_s(tmp_path):
    """Sent twice 1 s apart, the capture ends with them: too soon to call; when the capture
    goes on 3 s after them (another flow's packet), blocked."""
    recs, c, s, t = _opened()
    recs += [_up(t + 10, REC, flags="PA", seq=c, ack=s), _up(t + 11, REC, flags="PA", seq=c, ack=s)]
    (r,) = whole(write(tmp_path, recs, name="short.pcap"))[0].to_dict("records")
    assert r["verdict"] == "ok"
    other = [(t + 15, bytes(eth(ip_of("192.0.2.11", "198.51.100.20") / TCP(sport=40000, dport=23101, flags="S"))))]
    flows, _ = whole(write(tmp_path, recs + other, name="longer.pcap"))
    r = flows[flows["orig_p"] == C[1]].iloc[0]
    assert (r["verdict"], r["reason"]) == ("blocked", "no_answer")
    assert "in the 3 s or more after their first sending, the capture going on" in r["detail"]


@pytest.mark.parametrize("syns, want", [(3, ("blocked", "no_answer")), (1, ("ok", ""))])
def test_syn_ack_never_acknowledged(tmp_path, syns, want):
    """Seen from the server's side: the client sends its SYN again and again, each answered by a
    SYN-ACK it never acknowledges. One SYN and one SYN-ACK only (a scan with a spoofed source)
    stays not failed. (The SYNs come over 7 routers, TTL 57: captured on the client's host, TTL
    64 as sent, the client's own host dropped the answers: tests/test_hostdrop_s36.py.)"""
    recs = []
    for k in range(syns):
        syn = (1.0 + 3 * k, bytes(eth(IP(src=C[0], dst=S[0], ttl=57) / TCP(sport=C[1], dport=S[1], flags="S",
                                                                            seq=1000))))
        recs += [syn, _dn(1.01 + 3 * k, flags="SA", seq=5000, ack=1001)]
    recs.append(_dn(12.0, flags="SA", seq=5000, ack=1001))
    path = write(tmp_path, recs)
    flows, _ = whole(path)
    (r,) = flows.to_dict("records")
    assert r["history"] == "Sh"
    assert (r["verdict"], r["reason"]) == want, r["detail"]
    if want[0] == "blocked":
        assert r["detail"].startswith(f"the SYN-ACK never reached the originator: it sent its SYN {syns} times")
    assert_same_as_reference(flows, RULES)


@pytest.mark.parametrize("tail, want", [
    ([_dn(1.05, flags="R", seq=5001)], ("blocked", "rejected")),
    # the client closes first, then the server's reset: not the server refusing it
    ([_up(1.05, flags="FA", seq=1001, ack=5001), _dn(1.06, flags="R", seq=5001)], ("ok", "")),
])
def test_reset_right_after_the_handshake(tmp_path, tail, want):
    recs = [_up(1.0, flags="S", seq=1000), _dn(1.01, flags="SA", seq=5000, ack=1001),
            _up(1.02, flags="A", seq=1001, ack=5001)] + tail
    flows, _ = whole(write(tmp_path, recs))
    (r,) = flows.to_dict("records")
    assert (r["verdict"], r["reason"]) == want, (r["history"], r["detail"])
    assert_same_as_reference(flows, RULES)


def test_live_gives_analyze_rows(tmp_path, monkeypatch):
    """A live session keeping few packets per flow judges the stalled connection as analyze."""
    from test_live_session import assert_live_same
    recs = _stalled(None, sends=8)
    recs += [(r[0] + 100, r[1]) for r in _stalled(1)]      # (and a working one, later)
    assert_live_same(write(tmp_path, sorted(recs, key=lambda r: r[0])), monkeypatch, step=3)


def test_responder_bytes_never_acknowledged(tmp_path):
    """Seen from the server's side of a filter dropping its answers: the server sends its data
    again and again, the client acknowledges none of it: stalled (the roles named). When the
    client had closed or reset the connection, its silence is no stall (a lossy close: ok)."""
    recs, c, s, t = _opened()
    recs.append(_up(t, REC, flags="PA", seq=c, ack=s))
    for k in range(6):
        recs.append(_dn(t + .01 + 2 ** k - 1, REC, flags="PA", seq=s, ack=c + len(REC)))
    flows, _ = whole(write(tmp_path, recs, name="srv.pcap"))
    (r,) = flows.to_dict("records")
    assert (r["verdict"], r["reason"]) == ("blocked", "no_answer"), r["detail"]
    assert r["detail"].startswith("the connection stalled: the originator acknowledged none of the responder's")
    assert_same_as_reference(flows, RULES)
    # the client reset the connection before: no stall
    closed = recs[:-6] + [_up(t + .005, flags="R", seq=c + len(REC))] + recs[-6:]
    flows, _ = whole(write(tmp_path, closed, name="closed.pcap"))
    assert not flows["detail"].str.contains("stalled").any(), flows[["history", "detail"]]


@pytest.mark.parametrize("server_side", [False, True], ids=["server-window-closed", "agent-window-closed"])
def test_zero_window_probes_answered_are_no_stall(tmp_path, server_side):
    """Break-it 16 F1: a receiver whose window is closed acknowledges none of the probed byte but
    answers every zero-window probe (RFC 9293 §3.8.6.1, a Windows-style probe of 1 new byte):
    the path works, the connection is ``ok``, not "stalled"; the same probes left unanswered
    (the receiver gone) stay ``blocked``."""
    recs, c, s, t = _opened()
    snd, rcv = (_dn, _up) if server_side else (_up, _dn)
    mine, theirs = (s, c) if server_side else (c, s)
    recs.append(snd(t, b"x" * 1400, flags="PA", seq=mine, ack=theirs))
    recs.append(rcv(t + .01, flags="A", seq=theirs, ack=mine + 1400, window=0))
    mine += 1400
    t += .2
    answered = list(recs)
    for k in range(6):
        probe = snd(t, b"y", flags="PA", seq=mine, ack=theirs)
        answered += [probe, rcv(t + .01, flags="A", seq=theirs, ack=mine, window=0)]
        recs.append(probe)
        t += 0.2 * 2 ** k
    for records, want in ((answered, ("ok", "")), (recs, ("blocked", "no_answer"))):
        path = write(tmp_path, records)
        flows, _ = whole(path)
        (r,) = flows.to_dict("records")
        assert (r["conn_state"], r["verdict"], r["reason"]) == ("S1",) + want, r["detail"]
        assert_same(path, [300, 700])


def test_zero_window_probes_the_last_one_unanswered_and_keepalives(tmp_path):
    """Newcomer 20 F1, F2: the probes answered but the capture ends right after the last one
    (its ACK not captured): still ``ok``. The data sent again and never acknowledged while the
    server's only later packet is a keep-alive (one byte behind its sequence end): stalled."""
    recs, c, s, t = _opened()
    recs.append(_up(t, b"x" * 1400, flags="PA", seq=c, ack=s))
    recs.append(_dn(t + .01, flags="A", seq=s, ack=c + 1400, window=0))
    c += 1400
    t += .3
    for k in range(6):
        recs.append(_up(t, b"y", flags="PA", seq=c, ack=s))
        if k < 5:
            recs.append(_dn(t + .01, flags="A", seq=s, ack=c, window=0))
        t += 0.3 * 2 ** k
    path = write(tmp_path, recs, name="cut.pcap")
    (r,) = whole(path)[0].to_dict("records")
    assert (r["verdict"], r["reason"]) == ("ok", ""), r["detail"]
    assert_same(path, [300, 700])
    recs, c, s, t = _opened()
    for k in range(4):
        recs.append(_up(t + 30 + 2 ** k, REC, flags="PA", seq=c, ack=s))
    recs.append(_dn(t + 50, flags="A", seq=s - 1, ack=c))          # a keep-alive
    path = write(tmp_path, recs, name="ka.pcap")
    (r,) = whole(path)[0].to_dict("records")
    assert (r["verdict"], r["reason"]) == ("blocked", "no_answer")
    assert_same(path, [300, 700])
