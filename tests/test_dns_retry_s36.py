"""A failed lookup that a retry made good (newcomer 36 F1): a SERVFAIL or REFUSED answer, or a query
nothing answered, followed by a lookup of the same name by the same client that got an address,
was ``blocked`` (exit status 1, "make the resolver answer…" / "allow DNS…" advised) although the
agent then connected. Now it is ``ok``, its detail keeping what failed and naming the lookup that
made it good (a retry, or the same question asked of another server that answered: Windows'
fan-out to its other DNS servers), when that lookup got an address of a type asked, ended no
sooner than the failed one began and began at most ``DNS_RETRY_S`` after it ended. A failure no
lookup made good stays ``blocked``; whole, in small chunks (the two flows leaving with different
batches too) and with the tshark engine."""
from __future__ import annotations

import re
import shutil

import pandas as pd
import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR

from chunkcmp import RULES, assert_same, chunked, row, whole, write
from kscc_traffic import chunked as chunked_mod
from kscc_traffic.analyze import analyze_file
from kscc_traffic.classify import AAAA_OVER_IPV6, DNS_RETRY_S, OTHER_SOURCE
from kscc_traffic.report import dns_advice
from pcapbuild import CLIENT_MAC, SERVER_MAC, udp

NAME = "eu1.ksc.kaspersky.com"
C, R1, R2, ADDR = "192.0.2.10", "192.0.2.1", "192.0.2.2", "203.0.113.10"
C6, R6, ADDR6 = "2001:db8:1::10", "2001:db8:1::1", "2001:db8:cafe::10"
FAIL_TAIL = "; the agent needs this name: without its address it cannot connect (fix the resolver or the DNS filter)"
#: (SERVFAIL: what the report advises for it, s39-net2)
SERVFAIL_TAIL = ("; the agent needs this name: without its address it cannot connect (the resolver failed "
                 "upstream, it got no answer from the servers it asks: let the resolver's own lookups out (UDP and "
                 "TCP 53) and check its forwarders)")
RETRY_TAIL = "the failure passed, the name resolved"


def _q(txid, qtype="A", name=NAME):
    return bytes(DNS(id=txid, rd=1, qd=DNSQR(qname=name, qtype=qtype)))


def _r(txid, qtype="A", addr=ADDR, name=NAME, rcode=0):
    an = DNSRR(rrname=name, type=qtype, rdata=addr, ttl=60) if addr else []
    return bytes(DNS(id=txid, qr=1, rd=1, ra=1, rcode=rcode, qd=DNSQR(qname=name, qtype=qtype), an=an))


def query(port, txid, t, server=R1, client=C, qtype="A", name=NAME):
    return udp((client, port), (server, 53), _q(txid, qtype, name), t=t)


def answer(port, txid, t, server=R1, client=C, qtype="A", addr=ADDR, name=NAME, rcode=0):
    return udp((server, 53), (client, port), _r(txid, qtype, addr, name, rcode), t=t, src_mac=SERVER_MAC,
               dst_mac=CLIENT_MAC)


def lookup(port, txid, t, server=R1, client=C, qtype="A", addr=ADDR, name=NAME, rcode=0, after=0.02):
    """A query and its answer ``after`` s later."""
    return [query(port, txid, t, server, client, qtype, name),
            answer(port, txid, t + after, server, client, qtype, addr, name, rcode)]


def filler(t0, t1, step=0.25):
    """Datagrams of another host (not DNS) every ``step`` s: the capture's clock moves, chunk by chunk."""
    out, t, k = [], t0, 0
    while t < t1:
        out.append(udp(("192.0.2.77", 50000 + k % 7), ("198.51.100.7", 9999), b"f" * 40, t=t))
        t += step
        k += 1
    return out


def cap(tmp_path, recs, name="c.pcap"):
    return write(tmp_path, sorted(recs, key=lambda r: r[0]), name)


def dns_rows(fl):
    return fl[fl["resp_p"] == 53]


def test_servfail_then_a_retry_that_got_an_address_is_ok(tmp_path):
    """newcomer 36 g5_servfail_then_ok_long: SERVFAIL after 2 s, the same name asked again 0.1 s
    later and answered, the agent connects: no blocked DNS flow, no DNS advice."""
    recs = lookup(40100, 1, 1000.0, rcode=2, addr=None, after=2.0) + lookup(40101, 2, 1002.1)
    fl, _ = whole(cap(tmp_path, recs))
    f, s = row(fl, orig_p=40100), row(fl, orig_p=40101)
    assert (f["purpose"], f["verdict"], f["reason"], f["dns_rcode"]) == ("dns", "ok", "", "SERVFAIL")
    assert f["detail"] == (f"DNS answer SERVFAIL for {NAME}; a retry 2.1 s later got an address (flow {s['uid']}): "
                           f"{RETRY_TAIL}")
    assert FAIL_TAIL not in f["detail"] and SERVFAIL_TAIL not in f["detail"]
    assert (fl["verdict"] == "blocked").sum() == 0
    assert dns_advice(fl, RULES) is None


def test_the_report_no_longer_advises_dns(tmp_path):
    from kscc_traffic.cli import app
    from typer.testing import CliRunner
    recs = lookup(40100, 1, 1000.0, rcode=2, addr=None, after=2.0) + lookup(40101, 2, 1002.1)
    path = cap(tmp_path, recs)
    res = CliRunner().invoke(app, ["analyze", str(path)], env={"COLUMNS": "400"})
    assert res.exit_code == 0, res.output
    assert "dns (blocked" not in res.output and "make the resolver answer" not in res.output
    # (the HTML report's DNS errors: the SERVFAIL listed, its verdict ok for that reason)
    from checklistcheck import page_text
    from kscc_traffic.html_report import render_html
    page = render_html(whole(path)[0], RULES, charts=False)
    section = page_text(re.search(r'<section id="dns-errors">(.*?)</section>', page, re.S).group(1))
    assert ("1 DNS flow got an error answer instead of an address. Its verdict: ok (the resolver was reached and "
            "answered a name the agent does not need, or one it got an address for from another query or a "
            "retry).") in section
    assert "Nothing is blocked or unexpected." in page


def test_refused_then_another_server_answered(tmp_path):
    """g10_refused_then_other: REFUSED from the first resolver, the second gave an address."""
    recs = lookup(40202, 0x17, 1000.0, rcode=5, addr=None, after=0.01) + lookup(40203, 0x18, 1000.02, server=R2,
                                                                                  after=0.01)
    fl, _ = whole(cap(tmp_path, recs))
    f, s = row(fl, orig_p=40202), row(fl, orig_p=40203)
    assert (f["verdict"], f["reason"]) == ("ok", "")
    assert f["detail"] == (f"DNS answer REFUSED for {NAME}; a retry of {R2} 0.02 s later got an address "
                           f"(flow {s['uid']}): {RETRY_TAIL}")


def test_a_port_unreachable_then_the_other_server(tmp_path):
    """The first resolver answered by ICMP port unreachable (its DNS service down), the second
    gave an address 0.01 s later."""
    from scapy.layers.inet import ICMP, IP, UDP
    from pcapbuild import eth
    quoted = IP(src=C, dst=R1) / UDP(sport=40120, dport=53) / DNS(_q(0x21))
    recs = [query(40120, 0x21, 1000.0),
            (1000.001, eth(IP(src=R1, dst=C) / ICMP(type=3, code=3) / quoted, src=SERVER_MAC, dst=CLIENT_MAC))]
    recs += lookup(40121, 0x22, 1000.011, server=R2)
    fl, _ = whole(cap(tmp_path, recs))
    f, s = row(fl, orig_p=40120), row(fl, orig_p=40121)
    assert (f["purpose"], f["verdict"], f["reason"]) == ("dns", "ok", "")
    assert f["detail"].startswith("DNS query answered by ICMP port unreachable")
    assert f["detail"].endswith(f"; a retry of {R2} 0.011 s later got an address (flow {s['uid']}): {RETRY_TAIL}")


def test_a_lost_query_retried_a_second_later(tmp_path):
    """g5_lost_query_retry: the first query unanswered, the retry 1 s later answered."""
    recs = [query(40110, 0x0b, 1000.0)] + lookup(40111, 0x0c, 1001.0)
    fl, _ = whole(cap(tmp_path, recs))
    f, s = row(fl, orig_p=40110), row(fl, orig_p=40111)
    assert (f["purpose"], f["verdict"], f["reason"], f["conn_state"]) == ("dns", "ok", "", "S0")
    assert f["detail"] == f"DNS query without an answer; a retry 1.0 s later got an address (flow {s['uid']}): {RETRY_TAIL}"


def test_the_copy_windows_sends_to_its_second_server(tmp_path):
    """g5_secondary_silent_long: the primary answers after 1.2 s; the copy sent to the second
    resolver after 1 s (same port, same ID) gets no answer: the client had its answer."""
    recs = [query(40104, 5, 1000.0), query(40104, 5, 1001.0, server=R2), answer(40104, 5, 1001.2)]
    fl, _ = whole(cap(tmp_path, recs))
    f, s = row(fl, orig_p=40104, resp_h=R2), row(fl, orig_p=40104, resp_h=R1)
    assert (f["verdict"], f["reason"]) == ("ok", "")
    assert f["detail"] == (f"DNS query without an answer; the same name, asked of {R1} 1.0 s before, got an address "
                           f"0.2 s after this query (flow {s['uid']}): the client had its answer (Windows asks its "
                           "other DNS servers the same question when the first is slow)")


def test_only_a_lookup_that_could_be_a_retry_makes_a_failure_good(tmp_path):
    """Of five SERVFAILs, only the one whose name the same client got an address for within
    DNS_RETRY_S after it is ok: not one answered before it, nor too late, nor another client's,
    nor another name's (nor a sinkhole address)."""
    other = "ksn-a.kaspersky.com"
    recs = (
        # (ok: the retry 9 s after the failure's answer)
        lookup(41000, 1, 1000.0, rcode=2, addr=None, after=0.5) + lookup(41001, 2, 1009.5)
        # (blocked: the address came before the failure, then 11 s after it)
        + lookup(41010, 3, 1100.0) + lookup(41011, 4, 1101.0, rcode=2, addr=None, after=0.5)
        + lookup(41012, 5, 1101.5 + DNS_RETRY_S + 1.0)
        # (blocked: another client got it; another name got one; a sinkhole answer)
        + lookup(41020, 6, 1200.0, rcode=2, addr=None) + lookup(41021, 7, 1201.0, client="192.0.2.11")
        + lookup(41022, 8, 1201.0, name=other) + lookup(41023, 9, 1202.0, addr="0.0.0.0"))
    fl, _ = whole(cap(tmp_path, recs))
    assert row(fl, orig_p=41000)["verdict"] == "ok"
    for port in (41011, 41020):
        f = row(fl, orig_p=port)
        assert (f["verdict"], f["reason"], f["detail"]) == ("blocked", "rejected", f"DNS answer SERVFAIL for {NAME}"
                                                                                  f"{SERVFAIL_TAIL}")
    assert dns_advice(fl, RULES)["blocked"] == 3      # (the two failures and the sinkhole answer)


def test_the_address_type_asked_must_come(tmp_path):
    """An AAAA lookup that failed, asked over IPv6 (an IPv6-only agent needs it): an A answer
    does not make it good, an AAAA one does; an A lookup that failed is not made good by an AAAA
    answer alone."""
    recs = (lookup(42000, 1, 1000.0, client=C6, server=R6, qtype="AAAA", rcode=2, addr=None)
            + lookup(42001, 2, 1001.0, client=C6, server=R6, addr=ADDR)
            + lookup(42010, 3, 1100.0, client=C6, server=R6, qtype="AAAA", rcode=2, addr=None)
            + lookup(42011, 4, 1101.0, client=C6, server=R6, qtype="AAAA", addr=ADDR6)
            + lookup(42020, 5, 1200.0, rcode=2, addr=None) + lookup(42021, 6, 1201.0, qtype="AAAA", addr=ADDR6)
            + [query(42030, 7, 1300.0)] + lookup(42031, 8, 1301.0, qtype="AAAA", addr=ADDR6)
            + [query(42040, 9, 1400.0)] + lookup(42041, 10, 1401.0))
    fl, _ = whole(cap(tmp_path, recs))
    f = row(fl, orig_p=42000)
    assert (f["verdict"], f["detail"]) == ("blocked", f"DNS answer SERVFAIL for {NAME}: {AAAA_OVER_IPV6}")
    f, s = row(fl, orig_p=42010), row(fl, orig_p=42011)
    assert (f["verdict"], f["detail"]) == ("ok", f"DNS answer SERVFAIL for {NAME}; a retry 1.0 s later got an "
                                                 f"address (flow {s['uid']}): {RETRY_TAIL}")
    assert row(fl, orig_p=42020)["verdict"] == "blocked"
    assert (row(fl, orig_p=42030)["verdict"], row(fl, orig_p=42040)["verdict"]) == ("blocked", "ok")


def test_an_answer_from_another_address_stays_wrong_source(tmp_path):
    """A query answered only from another address stays blocked/wrong_source (the resolver's
    setup is wrong) even when a retry got an address; that dropped answer makes no other failure
    good (a query of the same name lost beside it); a lost query retried is ok beside them."""
    recs = ([query(43000, 1, 1000.0), answer(43000, 1, 1000.001, server="192.0.2.99")]
            + [query(43001, 2, 1000.0005)]
            + [query(43010, 3, 1100.0), answer(43010, 3, 1100.001, server="192.0.2.99")] + lookup(43011, 4, 1102.0)
            + [query(43020, 5, 1200.0)] + lookup(43021, 6, 1200.5) + filler(1300.0, 1300.1))
    fl, _ = whole(cap(tmp_path, recs))
    for port in (43000, 43010):
        f = row(fl, orig_p=port, resp_h=R1)
        assert (f["verdict"], f["reason"]) == ("blocked", "wrong_source")
        assert f["detail"].startswith(OTHER_SOURCE)
    assert tuple(row(fl, orig_p=43001)[["verdict", "reason"]]) == ("blocked", "no_answer")
    assert row(fl, orig_p=43020)["verdict"] == "ok"


def test_search_suffix_nxdomain_and_nodata_unchanged(tmp_path):
    """NXDOMAIN for the name with the search suffix (a name no agent needs: ok with its detail)
    and an empty AAAA answer beside the A one stay as they were; a failure made good beside them."""
    recs = (lookup(44000, 0x15, 1000.0, name=f"{NAME}.corp.example", rcode=3, addr=None, after=0.01)
            + lookup(44001, 0x16, 1000.02, after=0.01)
            + [query(44002, 0x17, 1000.05, qtype="AAAA"), answer(44002, 0x17, 1000.06, qtype="AAAA", addr=None)]
            + lookup(44003, 0x18, 1100.0, rcode=2, addr=None) + lookup(44004, 0x19, 1100.5))
    fl, _ = whole(cap(tmp_path, recs))
    assert tuple(row(fl, orig_p=44000)[["verdict", "reason", "detail"]]) == (
        "ok", "", f"DNS answer NXDOMAIN for {NAME}.corp.example")
    assert tuple(row(fl, orig_p=44002)[["verdict", "reason", "detail"]]) == ("ok", "", "")
    assert row(fl, orig_p=44003)["verdict"] == "ok"


def _crossing(net_client=C):
    """Failed lookups and the lookups that make them good leaving with different batches: a lost
    query whose retry's flow stays open long after (its client port asks again and again); a
    failure sent again from its port after the retry's flow ended (the retry leaves first); the
    fan-out; a failure nothing makes good."""
    recs = [query(45000, 1, 1000.0)]
    recs += lookup(45001, 2, 1001.0)
    recs += [query(45001, 2 + k, 1003.0 + 3 * k, name="x.example") for k in range(8)]     # (open till ~1035)
    recs += [query(45010, 20, 1100.0), query(45010, 20, 1108.0)] + lookup(45011, 21, 1100.5)
    recs += [query(45020, 30, 1200.0), query(45020, 30, 1201.0, server=R2), answer(45020, 30, 1201.2)]
    recs += lookup(45030, 40, 1300.0, rcode=2, addr=None)
    recs += filler(999.0, 1330.0, step=0.5)
    return recs


def test_chunked_equals_whole_also_across_batches(tmp_path):
    path = cap(tmp_path, _crossing(), "chunks.pcap")
    fl = assert_same(path, [300, 700, 2000])
    assert row(fl, orig_p=45000)["verdict"] == "ok"
    assert row(fl, orig_p=45010)["verdict"] == "ok"
    assert row(fl, orig_p=45020, resp_h=R2)["verdict"] == "ok"
    assert row(fl, orig_p=45030)["verdict"] == "blocked"


def test_the_chunks_do_split_them_without_holding(tmp_path, monkeypatch):
    """(The capture above does cross batches: with nothing held nor remembered, chunks of 300
    bytes judge the lost query whose retry was still open without it, and the one sent again
    after its retry left without that retry.)"""
    path = cap(tmp_path, _crossing(), "split.pcap")
    parts, _ = chunked(path, 300)
    assert row(parts, orig_p=45000)["verdict"] == row(parts, orig_p=45010)["verdict"] == "ok"
    monkeypatch.setattr(chunked_mod._DnsRetries, "step", lambda self, flows, pending, clock, last: flows)
    parts, _ = chunked(path, 300)
    assert row(parts, orig_p=45000)["verdict"] == row(parts, orig_p=45010)["verdict"] == "blocked"


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_the_tshark_engine_agrees(tmp_path):
    recs = (lookup(46000, 1, 1000.0, rcode=2, addr=None, after=2.0) + lookup(46001, 2, 1002.1)
            + [query(46010, 3, 1010.0)] + lookup(46011, 4, 1011.0)
            + [query(46020, 5, 1020.0), query(46020, 5, 1021.0, server=R2), answer(46020, 5, 1021.2)]
            + lookup(46030, 6, 1030.0, rcode=5, addr=None) + filler(1050.0, 1050.1))
    path = cap(tmp_path, recs, "ts.pcap")
    cols = ["uid", "purpose", "verdict", "reason", "detail"]
    a = analyze_file(path, RULES).flows[cols].reset_index(drop=True)
    b = analyze_file(path, RULES, engine="tshark").flows[cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert a[a["purpose"] == "dns"]["verdict"].tolist() == ["ok"] * 6 + ["blocked"]
