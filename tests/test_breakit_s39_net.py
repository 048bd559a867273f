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
    # (nothing went through either tunnel: the port answered the proxy, the TLS is not shown; s54)
    from kscc_traffic.classify import TUNNEL_EMPTY
    assert list(zip(w["verdict"], w["reason"], w["detail"])) == [("ok", "", TUNNEL_EMPTY), ("ok", "", TUNNEL_EMPTY)]


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


# --- 3. DNS advice: REFUSED, SERVFAIL and responses matching no query advised for what they are --

NAME = "eu1.ksc.kaspersky.com"


def _lookups(specs, t0=100.0):
    """UDP lookups of NAME from 192.0.2.10 to 203.0.113.53, one client port each: ``specs`` of
    ('rcode', n) (answered with that rcode, no address), ('id', 0) (answered with another
    transaction ID), ('question', 0) (answered for another name, same ID), ('none', 0)
    (unanswered)."""
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    out = []
    for k, (kind, rcode) in enumerate(specs):
        t, port, qid = t0 + 2 * k, 52000 + k, 0x200 + k
        up = Ether() / IP(src="192.0.2.10", dst="203.0.113.53") / UDP(sport=port, dport=53)
        down = Ether() / IP(src="203.0.113.53", dst="192.0.2.10") / UDP(sport=53, dport=port)
        out.append((t, up / DNS(id=qid, rd=1, qd=DNSQR(qname=NAME))))
        if kind == "rcode":
            out.append((t + 0.01, down / DNS(id=qid, qr=1, rd=1, ra=1, rcode=rcode, qd=DNSQR(qname=NAME))))
        elif kind in ("id", "question"):
            name = NAME if kind == "id" else "other.example"
            out.append((t + 0.01, down / DNS(id=qid + 0x1000 if kind == "id" else qid, qr=1, rd=1, ra=1,
                                             qd=DNSQR(qname=name),
                                             an=DNSRR(rrname=name, ttl=60, rdata="203.0.113.7"))))
    # (the capture goes on: nothing is cut short by its end)
    from test_breakit_s38_net import _filler
    return out + _filler(t0 - 1, t0 + 2 * len(specs) + 5)


def _reports(tmp_path, specs):
    """(the terminal report's 'dns (blocked: …)' entry, whitespace collapsed; the HTML report's
    text, tags and whitespace collapsed; dns_advice's fix) of a capture of ``_lookups(specs)``."""
    import html
    import re
    from chunkcmp import write
    from kscc_traffic.analyze import analyze_file
    from kscc_traffic.html_report import render_html
    from kscc_traffic.report import dns_advice, render_table
    from kscc_traffic.rules import load_rules
    rules = load_rules()
    flows = analyze_file(write(tmp_path, _lookups(specs)), rules).flows
    text = " ".join(render_table(flows, rules, width=400).split())
    entry = text.split("dns (blocked: ", 1)[1]
    entry = "dns (blocked: " + re.split(r" (?:To verify:|DNS names answered with an error \(\d+ flows?\)|Flagged flows)", entry)[0]
    page = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", render_html(flows, rules, charts=False))).split())
    return entry, page, dns_advice(flows, rules)["fix"], flows


def test_refused_advises_a_resolver_that_serves_the_client(tmp_path):
    from kscc_traffic.report import dns_refused_fix
    entry, page, fix, flows = _reports(tmp_path, [("rcode", 5)])
    d = flows[flows["purpose"] == "dns"].iloc[0]
    assert (d["verdict"], d["reason"], d["dns_rcode"]) == ("blocked", "rejected", "REFUSED")
    want = ("1 query was answered REFUSED: the resolver refuses recursion for this client (it serves only other "
            "networks, or answers only for its own zones): set the clients to a resolver that serves them, or allow "
            "them on this one (a DNS filter set to refuse the names it blocks answers so too)")
    assert dns_refused_fix(1) == want
    assert entry == f"dns (blocked: rejected): {want}"
    assert fix == want
    assert f"What to change {want}" in page
    assert "the resolver refused the query (REFUSED): it does not serve recursion to this client" in page
    assert "make the resolver answer the names" not in page + entry and "allow DNS" not in entry


def test_servfail_advises_the_resolvers_upstream(tmp_path):
    entry, page, fix, _ = _reports(tmp_path, [("rcode", 2), ("rcode", 2)])
    want = ("2 queries were answered SERVFAIL: the resolver failed upstream, it got no answer from the servers it "
            "asks (its own DNS to the internet or to its forwarders blocked or down, or a DNSSEC validation "
            "failure): let the resolver's own lookups out (UDP and TCP 53) and check its forwarders")
    assert entry == f"dns (blocked: rejected): {want}" and fix == want
    assert f"What to change {want}" in page
    assert "the resolver failed upstream (SERVFAIL)" in page


def test_refused_beside_nxdomain_advises_each(tmp_path):
    # (s60: the NXDOMAIN advised apart too, newcomer s60 #7; the generic advice only for other errors)
    from kscc_traffic.report import dns_nxdomain_fix
    entry, page, fix, _ = _reports(tmp_path, [("rcode", 5), ("rcode", 3)])
    assert entry.startswith("dns (blocked: rejected): 1 query was answered REFUSED: the resolver refuses recursion")
    assert f"; {dns_nxdomain_fix(1)}" in entry and fix in entry
    assert "make the resolver answer the names the agent needs" not in entry
    assert "the resolver said the name does not exist (NXDOMAIN)" in page
    assert "the resolver answered with an error (NXDOMAIN, SERVFAIL, REFUSED…)" not in page


@pytest.mark.parametrize("kind,said,why", [
    ("id", "1 query was answered only with a transaction ID no query had", "by transaction ID"),
    ("question", "1 query was answered only for another question than asked (another name or type)", "by question"),
])
def test_responses_matching_no_query_say_what_mismatched(tmp_path, kind, said, why):
    entry, page, fix, flows = _reports(tmp_path, [(kind, 0)])
    d = flows[(flows["purpose"] == "dns") & (flows["orig_p"] == 52000)].iloc[0]
    assert (d["verdict"], d["reason"]) == ("blocked", "no_answer")
    want = (f"{said}, which the client drops (see the flagged DNS flows): a DNS proxy, NAT or firewall on the path "
            "rewriting DNS (or answering for the resolver) does it, the answers do come back: fix or bypass that "
            "device, or point the clients at a resolver reached without it")
    assert entry == f"dns (blocked: no_answer): {want}" and fix == want
    assert "allow DNS (UDP and TCP 53)" not in entry + page
    assert f"What to change {want}" in page
    assert (f"responses came, but none matched its query ({why}), and the client drops them: a DNS proxy, NAT or "
            "firewall on the path rewriting DNS") in page


def test_a_mismatch_beside_an_unanswered_query_advises_both(tmp_path):
    entry, page, fix, _ = _reports(tmp_path, [("id", 0), ("none", 0)])
    assert entry.startswith("dns (blocked: no_answer): allow DNS (UDP and TCP 53) from the clients to their "
                            "resolver, and the resolver's own lookups; 1 query was answered only with a transaction ID")
    assert "the query got no answer: a firewall drops DNS to the resolver, or the resolver is unreachable or down; " \
           "or responses came, but none matched its query (by transaction ID)" in page


def test_the_kinds_summed_over_batches_equal_the_whole_tables(tmp_path):
    # (the terminal report's summary is added batch by batch: the same advice as the whole table's)
    from kscc_traffic.report import TableSummary, _dns_advice, dns_blocked_kinds
    _, _, fix, flows = _reports(tmp_path, [("rcode", 5), ("rcode", 2), ("id", 0), ("question", 0), ("none", 0),
                                           ("rcode", 3)])
    assert dns_blocked_kinds(flows) == {"refused": 1, "servfail": 1, "mismatch_id": 1, "mismatch_question": 1,
                                        "mismatch_cut": 0, "no_answer": 3, "v6_only": 0, "fragments": 0, "icmp": 0,
                                        "icmp_closed": 0, "nxdomain": 1, "nxdomain_vendor": 1}
    s = TableSummary()
    for i in range(0, len(flows), 2):
        s.add(flows.iloc[i:i + 2])
    assert _dns_advice(s)[1] == fix


# --- 4. dns_truncated: where the agent really ends without an address ------------------------
# (RFC 2181 §9: a truncated answer may hold part of an RRset, and the client is to ignore it and
# ask again over TCP: glibc, systemd-resolved, c-ares, musl 1.2.4 do; whether a client whose TCP
# retry failed uses the partial records differs (c-ares' IGNTC, Windows' ACCEPT_TRUNCATED option,
# old musl): a TC answer with addresses stays ok, not judged by what the client did next. An
# error answer with TC (NXDOMAIN, SERVFAIL) is judged by its error; a CNAME chain without the
# address (a long CNAME filling the 512 bytes) is no address.)

def _udp_tc(t, port, qid, rcode=0, an=None, tc=1, name=NAME):
    from scapy.layers.dns import DNS, DNSQR
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    q = Ether() / IP(src="192.0.2.10", dst="203.0.113.53") / UDP(sport=port, dport=53) / DNS(id=qid, rd=1,
                                                                                            qd=DNSQR(qname=name))
    r = (Ether() / IP(src="203.0.113.53", dst="192.0.2.10") / UDP(sport=53, dport=port)
         / DNS(id=qid, qr=1, rd=1, ra=1, tc=tc, rcode=rcode, qd=DNSQR(qname=name), an=an or []))
    return [(t, q), (t + 0.02, r)]


def _tcp_answer(t, port, qid, an=None, rcode=0, name=NAME):
    """A DNS over TCP lookup of ``name`` answered ``rcode`` with the records ``an``."""
    from test_breakit_s38_net import _tcp_lookup
    return _tcp_lookup(t, port, qid, True, name=name, an=an or [], rcode=rcode)


def _dns_rows(tmp_path, recs, monkeypatch=None):
    from chunkcmp import write
    from test_breakit_s38_net import _filler
    path = write(tmp_path, sorted(recs + _filler(90.0, 120.0), key=lambda r: r[0]))
    w = assert_same(path, [4096, 16384])
    if monkeypatch is not None:
        from test_live_session import assert_live_same
        assert_live_same(path, monkeypatch, step=7)
    return w[w["purpose"] == "dns"].sort_values("ts_ns")


def test_a_truncated_cname_chain_without_the_address_is_dns_truncated(tmp_path):
    from scapy.layers.dns import DNSRR
    cname = DNSRR(rrname=NAME, type="CNAME", ttl=60, rdata="a" * 60 + ".edge.example.net")
    d = _dns_rows(tmp_path, _udp_tc(100.0, 53030, 0x300, an=cname)).iloc[0]
    assert (d["verdict"], d["reason"], d["dns_answers"]) == ("blocked", "dns_truncated", "")


def test_a_truncated_answer_with_part_of_the_addresses_stays_ok(tmp_path):
    from scapy.layers.dns import DNSRR
    an = [DNSRR(rrname=NAME, ttl=60, rdata="203.0.113.7"), DNSRR(rrname=NAME, ttl=60, rdata="203.0.113.8")]
    d = _dns_rows(tmp_path, _udp_tc(100.0, 53031, 0x301, an=an)).iloc[0]
    assert (d["verdict"], d["reason"], d["dns_answers"]) == ("ok", "", "203.0.113.7;203.0.113.8")


@pytest.mark.parametrize("rcode,name", [(3, "NXDOMAIN"), (2, "SERVFAIL")])
def test_a_truncated_error_answer_is_judged_by_its_error(tmp_path, rcode, name):
    d = _dns_rows(tmp_path, _udp_tc(100.0, 53032, 0x302, rcode=rcode)).iloc[0]
    assert (d["verdict"], d["reason"], d["dns_rcode"]) == ("blocked", "rejected", name)
    assert d["detail"].startswith(f"DNS answer {name} for {NAME}; the agent needs this name")


def test_a_tcp_retry_answered_without_an_address_is_no_dns_over_tcp_problem(tmp_path, monkeypatch):
    # the truncated answer asked again over TCP, answered there NOERROR with no address: DNS over
    # TCP works, the name has no address: the UDP flow is no dns_truncated (whose advice, allow
    # TCP 53, would be wrong) but the NODATA the TCP answer shows
    d = _dns_rows(tmp_path, _udp_tc(100.0, 53033, 0x303) + _tcp_answer(100.1, 53034, 0x303), monkeypatch)
    assert list(zip(d["proto"], d["verdict"], d["reason"])) == [("udp", "blocked", "rejected"),
                                                             ("tcp", "blocked", "rejected")]
    udp, tcp = d["detail"].tolist()
    assert tcp.startswith(f"DNS answer NOERROR with no address for {NAME}: no lookup of it in the capture got an "
                          "address (the DNS server gives no IPv4 address for it: no A record, as it answers)")
    assert udp == (f"{tcp}; this answer over UDP was truncated (TC flag set), and a lookup of it over TCP (port 53/TCP) "
                   "was answered, with no address either: DNS over TCP works")
