"""Break-it s39 (net): the leftovers of s38's verdict work.

1. A CONNECT tunnel the proxy opened (2xx) and closed or reset at once, before the client's first
   byte: the 3 s are counted from the proxy's 2xx answer (the segment that completed its head),
   not from the connection's start, so a slow proxy that answers after 5 s and closes at once is
   named too; a 2xx head split over segments and an HTTP/1.0 200 with more header fields alike.
"""
from __future__ import annotations

import pytest

from chunkcmp import assert_same
from test_proxy_connect import OK_200, _connect, _records, _write

SLOW = ("TLS handshake not started: the proxy 10.0.0.1:3128 opened the tunnel of CONNECT "
        "eu1.ksc.kaspersky.com:23101 (200), then {how} it ({state}) {t} s after that answer, "
        "before the client sent its ClientHello (the proxy failing to reach the target, or refusing it after all)")


def _tcp(w):
    return w[w["proto"] == "tcp"].sort_values("orig_p")


@pytest.mark.parametrize("close,how,state", [("s", "closed", "SF"), ("r", "reset", "RSTR")])
def test_a_slow_proxy_closing_the_tunnel_at_once_is_named(tmp_path, monkeypatch, close, how, state):
    from test_live_session import assert_live_same
    # the proxy answers 200 5 s after the CONNECT, then closes/resets 1 ms later
    recs = _records([_connect(), ("w", 5.0), OK_200], close=close)
    path = _write(tmp_path, recs)
    w = assert_same(path, [150, 400])
    assert_live_same(path, monkeypatch, step=2)
    r = _tcp(w).iloc[0]
    assert r["duration"] > 5.0
    assert (r["verdict"], r["reason"], r["conn_state"]) == ("blocked", "tls_failed", state)
    assert r["detail"] == SLOW.format(how=how, state=state, t="0.001")


def test_a_slow_proxy_whose_tunnel_stays_open_then_idles_out_is_ok(tmp_path):
    # answered after 5 s, then 3.5 s of an idle tunnel before the proxy closes it: an idle
    # timeout, not a refusal; and the one answered at once, closed 3.5 s later, the same
    recs = (_records([_connect(), ("w", 5.0), OK_200, ("w", 3.5)], close="s")
            + _records([_connect(), OK_200, ("w", 3.5)], port=50001, t0=120.0, close="s"))
    w = _tcp(assert_same(_write(tmp_path, recs), [150, 400]))
    assert list(zip(w["verdict"], w["reason"], w["detail"])) == [("ok", "", ""), ("ok", "", "")]


@pytest.mark.parametrize("answer", [
    # (the head in two segments, the second one after 5 s: the tunnel opened only then)
    [("s", b"HTTP/1.1 200 Connection established\r\n"), ("w", 5.0), ("s", b"\r\n")],
    [("s", b"HTTP/1.1 200 Conn"), ("s", b"ection established\r\nProxy-Agent: x\r\n"), ("s", b"\r\n")],
    # (HTTP/1.0, more header fields, as Squid and others answer)
    [("s", b"HTTP/1.0 200 Connection established\r\nProxy-agent: Squid/5.7\r\nVia: 1.1 proxy (squid)\r\n"
           b"Connection: keep-alive\r\n\r\n")],
], ids=["split-late", "split-three", "http10-headers"])
def test_other_shapes_of_the_2xx_answer(tmp_path, answer):
    w = assert_same(_write(tmp_path, _records([_connect(), *answer], close="s")), [150, 400])
    r = _tcp(w).iloc[0]
    assert (r["http_status"], r["verdict"], r["reason"]) == ("200", "blocked", "tls_failed")
    assert r["detail"] == SLOW.format(how="closed", state="SF", t="0.001")


def test_the_grouped_judgement_equals_the_per_row_one(tmp_path):
    from kscc_traffic import analyze
    from kscc_traffic.rules import load_rules
    from test_classify_fast import assert_same as assert_same_as_reference
    recs = []
    for k, (parts, close) in enumerate([([("w", 5.0), OK_200], "s"), ([("w", 5.0), OK_200], "r"),
                                        ([("w", 5.0), OK_200, ("w", 3.5)], "s"), ([OK_200], "s"),
                                        ([("w", 1.0), OK_200, ("w", 3.2)], "s"),
                                        ([("w", 1.0), OK_200, ("w", 2.5)], "s"),
                                        # (the same duration, to the µs: the 200 at once, closed 5 s
                                        # later, and the 200 after 5 s, closed at once)
                                        ([OK_200, ("w", 5.0)], "s"), ([("w", 5.0), OK_200], "s")]):
        recs += _records([_connect(), *parts], port=50000 + k, t0=100.0 + 20 * k, close=close)
    flows = analyze(str(_write(tmp_path, recs)))
    got = _tcp(flows)
    # (the last: 3.5 s from the connection's start, 2.5 s from the 200: blocked)
    assert list(got["verdict"]) == ["blocked", "blocked", "ok", "blocked", "ok", "blocked", "ok", "blocked"]
    assert got["duration"].iloc[6] == got["duration"].iloc[7]
    assert_same_as_reference(flows.drop(columns=["purpose", "verdict", "reason", "detail"]), load_rules())


# --- 2. DNS: a truncated UDP answer made good by another lookup says so -----------------------

RETRIED_TCP = ("DNS answer truncated over UDP for eu1.ksc.kaspersky.com (TC flag set: too large for UDP); "
               "a lookup of it over TCP (port 53/TCP) got an address: the retry over TCP works")
RETRIED_UDP = ("DNS answer truncated over UDP for eu1.ksc.kaspersky.com (TC flag set: too large for UDP); "
               "another lookup of it in the capture got an address, none over TCP (no retry over TCP seen)")


def _answered_udp(t, port, qid, name="eu1.ksc.kaspersky.com", ip=("192.0.2.10", "203.0.113.53")):
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    q = Ether() / IP(src=ip[0], dst=ip[1]) / UDP(sport=port, dport=53) / DNS(id=qid, rd=1, qd=DNSQR(qname=name))
    r = (Ether() / IP(src=ip[1], dst=ip[0]) / UDP(sport=53, dport=port)
         / DNS(id=qid, qr=1, rd=1, ra=1, qd=DNSQR(qname=name), an=DNSRR(rrname=name, ttl=60, rdata="203.0.113.7")))
    return [(t, q), (t + 0.02, r)]


@pytest.mark.parametrize("tcp", [True, False], ids=["tcp-retry", "udp-lookup"])
def test_a_truncated_answer_made_good_says_how(tmp_path, monkeypatch, tcp):
    from chunkcmp import write
    from test_breakit_s38_net import _filler, _tcp_lookup, _udp_lookup
    from test_live_session import assert_live_same
    retry = _tcp_lookup(100.1, 53021, 0x100, True) if tcp else _answered_udp(100.1, 53021, 0x101)
    # (the filler spreads them over chunks: the retry leaves in a batch before the truncated
    # answer, held to the end, is judged: DNS_RESOLVED / DNS_RESOLVED_TCP)
    path = write(tmp_path, _udp_lookup(100.0, 53020, 1, 0x100) + retry + _filler(90.0, 120.0))
    w = assert_same(path, [4096, 16384])
    assert_live_same(path, monkeypatch, step=7)
    d = w[w["purpose"] == "dns"].sort_values("ts_ns")
    assert list(zip(d["proto"], d["verdict"], d["reason"])) == [("udp", "ok", ""), ("tcp" if tcp else "udp", "ok", "")]
    assert d["detail"].tolist() == [RETRIED_TCP if tcp else RETRIED_UDP, ""]


def test_an_empty_answer_made_good_keeps_no_detail(tmp_path):
    # (not truncated: a dual-stack host's empty answer beside an answered one stays as it was)
    from chunkcmp import write
    from test_breakit_s38_net import _tcp_lookup, _udp_lookup
    w = assert_same(write(tmp_path, _udp_lookup(100.0, 53020, 0, 0x100) + _tcp_lookup(100.1, 53021, 0x100, True)),
                    [4096])
    d = w[w["purpose"] == "dns"].sort_values("ts_ns")
    assert list(zip(d["verdict"], d["detail"])) == [("ok", ""), ("ok", "")]
