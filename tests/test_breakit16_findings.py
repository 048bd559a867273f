"""Break-it round 16: findings fixed (see each test)."""
from __future__ import annotations

import pytest
from scapy.layers.inet import TCP

from chunkcmp import assert_same, whole, write
from pcapbuild import eth, ip_of
from test_classify_fast import assert_same as assert_same_as_reference
from kscc_traffic.rules import load_rules

RULES = load_rules()
C, S = ("192.0.2.10", 50000), ("203.0.113.10", 23101)


def _up(t, data=b"", **kw):
    return t, bytes(eth(ip_of(C[0], S[0]) / TCP(sport=C[1], dport=S[1], **kw) / data))


def _dn(t, data=b"", **kw):
    return t, bytes(eth(ip_of(S[0], C[0]) / TCP(sport=S[1], dport=C[1], **kw) / data,
                        src="02:00:00:00:00:01", dst="02:00:00:00:00:10"))


def _wrong_answers(kind: str, rounds: int = 3, then_ok: bool = False):
    """The agent's SYN (ISN 700000) answered by a bare ACK of an old connection (``kind``
    'ack') or by a SYN-ACK acknowledging another number ('synack'); the agent resets each
    answer (RFC 9293 §3.10.7.3) and tries again 1 s later."""
    recs, t = [], 1000.0
    for _ in range(rounds):
        recs.append(_up(t, flags="S", seq=700000))
        if kind == "ack":
            recs.append(_dn(t + .01, flags="A", seq=123456, ack=555555))
        else:
            recs.append(_dn(t + .01, flags="SA", seq=900000, ack=12345))
        recs.append(_up(t + .02, flags="R", seq=555555 if kind == "ack" else 12345))
        t += 1
    if then_ok:
        recs += [_up(t, flags="S", seq=700000), _dn(t + .01, flags="SA", seq=900000, ack=700001),
                 _up(t + .02, flags="A", seq=700001, ack=900001),
                 _up(t + .03, b"\x16\x03\x01\x00\x01x", flags="PA", seq=700001, ack=900001),
                 _dn(t + .04, flags="A", seq=900001, ack=700007)]
    return recs


@pytest.mark.parametrize("kind, words", [
    ("ack", "the SYN was answered only by an ACK of another connection (an RFC 5961 challenge ACK"),
    ("synack", "the SYN was answered by a SYN-ACK acknowledging another sequence number than the SYN's"),
])
def test_a_syn_answered_by_a_packet_that_does_not_acknowledge_it_is_blocked(tmp_path, kind, words):
    """F2: the agent resets such an answer and never connects: it was ``ok`` (``RSTOS0 SaR``,
    ``RSTO ShR``) and verified the purpose."""
    path = write(tmp_path, _wrong_answers(kind))
    flows, _ = whole(path)
    (r,) = flows.to_dict("records")
    assert (r["verdict"], r["reason"]) == ("blocked", "rejected")
    assert r["detail"].startswith(words) and r["detail"].endswith(": no connection was made")
    assert_same(path, [200, 400])
    assert_same_as_reference(flows, RULES)


def test_a_retry_that_gets_a_real_syn_ack_is_ok(tmp_path):
    path = write(tmp_path, _wrong_answers("ack", rounds=1, then_ok=True))
    (r,) = whole(path)[0].to_dict("records")
    assert (r["history"], r["verdict"], r["reason"]) == ("SaRhAD", "ok", "")


def test_a_half_open_scan_stays_ok(tmp_path):
    """SYN, a SYN-ACK acknowledging it, RST: the port answered (a scan, a health check)."""
    recs = [_up(1000.0, flags="S", seq=700000), _dn(1000.01, flags="SA", seq=900000, ack=700001),
            _up(1000.02, flags="R", seq=700001)]
    (r,) = whole(write(tmp_path, recs))[0].to_dict("records")
    assert (r["conn_state"], r["verdict"]) == ("RSTO", "ok")
