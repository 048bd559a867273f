"""Break-it s38 (net): a proxy that opened the CONNECT tunnel (200) and then closed or reset it
after the agent's ClientHello, no byte from the server: the detail names the proxy
(``classify._proxy_closed_tunnel``), not a bare "connection closed"; the client closing first
keeps the plain wording."""
from __future__ import annotations

import pytest

from chunkcmp import assert_same
from test_proxy_connect import OK_200, _connect, _records, _tls, _write


@pytest.mark.parametrize("close,how,state", [("s", "closed", "SF"), ("r", "reset", "RSTR")])
def test_proxy_closing_the_tunnel_after_the_hello_is_named(tmp_path, close, how, state):
    hello = ("c", _tls(tmp_path)[0][1])
    w = assert_same(_write(tmp_path, _records([_connect(), OK_200, hello], close=close)), [150, 400])
    r = w[w["proto"] == "tcp"].iloc[0]
    assert (r["verdict"], r["reason"], r["conn_state"]) == ("blocked", "tls_failed", state)
    assert r["detail"] == (f"TLS handshake aborted: the proxy 10.0.0.1:3128 {how} the tunnel ({state}) "
                           "without a byte from the server")


def test_client_closing_first_keeps_the_plain_wording(tmp_path):
    hello = ("c", _tls(tmp_path)[0][1])
    w = assert_same(_write(tmp_path, _records([_connect(), OK_200, hello], close="c")), [150])
    r = w[w["proto"] == "tcp"].iloc[0]
    assert "the proxy" not in r["detail"]


def _cases(tmp_path):
    """One capture: six CONNECTs to the same proxy from six client ports, each answered 200:
    the proxy closing / resetting the empty tunnel at once, after 3.5 s idle, the client
    closing first, the proxy closing / resetting after the ClientHello."""
    hello = ("c", _tls(tmp_path)[0][1])
    recs = []
    for k, (parts, close) in enumerate([([], "s"), ([], "r"), ([("w", 3.5)], "s"), ([], "c"),
                                        ([hello], "s"), ([hello], "r")]):
        recs += _records([_connect(), OK_200, *parts], port=50000 + k, t0=100.0 + 10 * k, close=close)
    return _write(tmp_path, recs, name="six.pcap")


EMPTY = ("TLS handshake not started: the proxy 10.0.0.1:3128 opened the tunnel of CONNECT "
         "eu1.ksc.kaspersky.com:23101 (200), then {how} it ({state}) {t} s after that answer, "
         "before the client sent its ClientHello (the proxy failing to reach the target, or refusing it after all)")


def test_an_empty_tunnel_closed_by_the_proxy_at_once_is_blocked(tmp_path):
    w = assert_same(_cases(tmp_path), [150, 400, 4096]).sort_values("orig_p")
    got = list(zip(w["orig_p"], w["verdict"], w["reason"], w["conn_state"]))
    assert got == [(50000, "blocked", "tls_failed", "SF"), (50001, "blocked", "tls_failed", "RSTR"),
                   (50002, "ok", "", "SF"), (50003, "ok", "", "SF"),
                   (50004, "blocked", "tls_failed", "SF"), (50005, "blocked", "tls_failed", "RSTR")]
    d = w["detail"].tolist()
    # (1 ms between packets: from the proxy's 200 to its FIN or RST; s39 counts from the 200, not
    # from the connection's start)
    assert d[0] == EMPTY.format(how="closed", state="SF", t="0.001")
    assert d[1] == EMPTY.format(how="reset", state="RSTR", t="0.001")
    # (nothing went through those two tunnels: the port answered the proxy, the TLS is not shown; s54)
    from kscc_traffic.classify import TUNNEL_EMPTY
    assert d[2] == TUNNEL_EMPTY and d[3] == TUNNEL_EMPTY
    assert d[4].startswith("TLS handshake aborted: the proxy 10.0.0.1:3128 closed the tunnel (SF)")


def test_its_grouped_judgement_equals_the_per_row_one(tmp_path):
    import pandas as pd
    from kscc_traffic import analyze
    from kscc_traffic.rules import load_rules
    from test_classify_fast import assert_same as assert_same_as_reference
    flows = analyze(str(_cases(tmp_path)))
    assert_same_as_reference(flows.drop(columns=["purpose", "verdict", "reason", "detail"]), load_rules())
    assert pd.Series(flows["proxy_target"] != "").sum() == 6


def test_the_advice_names_the_proxy_that_opened_the_tunnel(tmp_path):
    import subprocess
    import sys
    path = _write(tmp_path, _records([_connect(), OK_200], close="r"), name="one.pcap")
    out = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", str(path)], capture_output=True,
                         text=True, env={**__import__("os").environ, "COLUMNS": "400"}).stdout
    assert ("agent_connection (blocked: tls_failed): this connection went through the proxy 10.0.0.1:3128, which "
            "opened the CONNECT tunnel") in out
    assert "check that the proxy 10.0.0.1:3128 reaches *.ksc.kaspersky.com on TCP 23100-23199" in out


# --- DNS over UDP: a truncated answer (TC) with no address, no retry over TCP answered ---------

def _udp_lookup(t, port, tc, qid, name="eu1.ksc.kaspersky.com", ip=("192.0.2.10", "203.0.113.53")):
    from scapy.layers.dns import DNS, DNSQR
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    q = Ether() / IP(src=ip[0], dst=ip[1]) / UDP(sport=port, dport=53) / DNS(id=qid, rd=1, qd=DNSQR(qname=name))
    r = (Ether() / IP(src=ip[1], dst=ip[0]) / UDP(sport=53, dport=port)
         / DNS(id=qid, qr=1, rd=1, ra=1, tc=tc, rcode=0, qd=DNSQR(qname=name)))
    return [(t, q), (t + 0.02, r)]


def _tcp_lookup(t, port, qid, answered, name="eu1.ksc.kaspersky.com", ip=("192.0.2.10", "203.0.113.53"),
                an=None, rcode=0):
    """The same question over TCP 53: answered (``rcode``, the records ``an``; default one
    address), or refused by a RST."""
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    c, s = ip

    def p(src, dst, sp, dp, **kw):
        load = kw.pop("load", b"")
        return Ether() / IP(src=src, dst=dst) / TCP(sport=sp, dport=dp, **kw) / load
    if not answered:
        return [(t, p(c, s, port, 53, flags="S", seq=1)), (t + 0.01, p(s, c, 53, port, flags="RA", seq=0, ack=2))]
    q = bytes(DNS(id=qid, rd=1, qd=DNSQR(qname=name)))
    if an is None:
        an = DNSRR(rrname=name, ttl=60, rdata="203.0.113.7")
    a = bytes(DNS(id=qid, qr=1, rd=1, ra=1, rcode=rcode, qd=DNSQR(qname=name), an=an))
    q, a = len(q).to_bytes(2, "big") + q, len(a).to_bytes(2, "big") + a
    return [(t, p(c, s, port, 53, flags="S", seq=1)), (t + 0.01, p(s, c, 53, port, flags="SA", seq=100, ack=2)),
            (t + 0.02, p(c, s, port, 53, flags="A", seq=2, ack=101)),
            (t + 0.03, p(c, s, port, 53, flags="PA", seq=2, ack=101, load=q)),
            (t + 0.04, p(s, c, 53, port, flags="PA", seq=101, ack=2 + len(q), load=a)),
            (t + 0.05, p(c, s, port, 53, flags="FA", seq=2 + len(q), ack=101 + len(a))),
            (t + 0.06, p(s, c, 53, port, flags="FA", seq=101 + len(a), ack=3 + len(q))),
            (t + 0.07, p(c, s, port, 53, flags="A", seq=3 + len(q), ack=102 + len(a)))]


def _filler(t0, t1, step=0.25):
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    out, t = [], t0
    while t < t1:
        out.append((t, Ether() / IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=40000, dport=40001) / (b"x" * 600)))
        t += step
    return out


TRUNCATED = ("DNS answer NOERROR with no address for eu1.ksc.kaspersky.com: the answer was truncated (TC flag set: "
             "too large for UDP) and no lookup of it in the capture got an address: the client must ask again over "
             "TCP, and no such retry was answered (DNS over TCP, port 53/TCP, blocked to the resolver, or not tried); "
             "the agent needs this name: without its address it cannot connect (allow DNS over TCP, port 53/TCP, "
             "from the clients to their resolver)")


@pytest.mark.parametrize("retry", ["none", "reset"])
def test_a_truncated_answer_without_a_tcp_retry_answered_is_dns_truncated(tmp_path, monkeypatch, retry):
    from chunkcmp import write
    from test_live_session import assert_live_same
    recs = _udp_lookup(100.0, 53020, 1, 0x100) + (_tcp_lookup(100.1, 53021, 0x100, False) if retry == "reset" else [])
    path = write(tmp_path, recs + _filler(90.0, 120.0))
    w = assert_same(path, [4096, 16384])
    assert_live_same(path, monkeypatch, step=7)
    d = w[(w["purpose"] == "dns") & (w["proto"] == "udp")].iloc[0]
    assert (d["verdict"], d["reason"], d["dns_rcode"], d["dns_answers"]) == ("blocked", "dns_truncated", "NOERROR", "")
    assert d["detail"] == TRUNCATED


def test_a_tcp_retry_answered_makes_it_ok(tmp_path):
    from chunkcmp import write
    recs = _udp_lookup(100.0, 53020, 1, 0x100) + _tcp_lookup(100.1, 53021, 0x100, True)
    w = assert_same(write(tmp_path, recs + _filler(90.0, 120.0)), [4096, 16384])
    d = w[w["purpose"] == "dns"].sort_values("ts_ns")
    assert list(zip(d["proto"], d["verdict"], d["reason"])) == [("udp", "ok", ""), ("tcp", "ok", "")]


def test_an_empty_answer_not_truncated_stays_rejected(tmp_path):
    from chunkcmp import write
    w = assert_same(write(tmp_path, _udp_lookup(100.0, 53020, 0, 0x100)), [4096])
    d = w[w["purpose"] == "dns"].iloc[0]
    assert (d["verdict"], d["reason"]) == ("blocked", "rejected")
    assert "truncated" not in d["detail"]


def test_the_advice_says_to_allow_dns_over_tcp(tmp_path):
    import os
    import subprocess
    import sys
    from chunkcmp import write
    path = write(tmp_path, _udp_lookup(100.0, 53020, 1, 0x100))
    out = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", str(path)], capture_output=True, text=True,
                         env={**os.environ, "COLUMNS": "400"}).stdout
    assert ("dns (blocked: dns_truncated): the resolver's answer was truncated (too large for UDP) and no retry over "
            "TCP got an address: allow DNS over TCP (port 53/TCP) from the clients to their resolver") in out, out
