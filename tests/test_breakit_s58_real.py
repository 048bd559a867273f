"""Session 58: the real-stack break-it pass (curl, dnsmasq, tinyproxy, nftables in network
namespaces, s57 findings #8-#12), each crafted here with scapy."""
from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from chunkcmp import assert_same
from kscc_traffic import analyze
from kscc_traffic.classify import PROXY_CREDENTIALS_REFUSED, PROXY_WANTS_LOGIN, proxy_login
from kscc_traffic.report import TableSummary, readiness
from test_proxy_connect import OK_200, RULES, _records, _tls, _write

# --- #8: a proxy answering 401 (not 407) to a CONNECT ---------------------------------------------

#: tinyproxy 1.11's answer to a CONNECT without (or with wrong) credentials under BasicAuth
TINY_401 = ("s", b"HTTP/1.0 401 Unauthorized\r\nServer: tinyproxy/1.11.1\r\nWWW-Authenticate: Basic "
                 b"realm=\"tinyproxy\"\r\nContent-Type: text/html\r\nContent-Length: 0\r\n\r\n")
TARGET = "eu1.ksc.kaspersky.com:443"


def _connect(auth: bytes = b"", target=TARGET):
    extra = b"Proxy-Authorization: " + auth + b"\r\n" if auth else b""
    return ("c", f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n".encode() + extra + b"\r\n")


def _fix(flows, rule="discovery"):
    """The fix of ``rule`` by readiness() and by the table report's TableSummary (the same)."""
    a = readiness(flows, RULES).set_index("rule").loc[rule]
    b = TableSummary.of(flows).readiness(RULES).set_index("rule").loc[rule]
    assert (a.fix, a.status) == (b.fix, b.status)
    return a.status, a.fix


def _tcp(flows):
    return flows[flows["proto"] == "tcp"].sort_values("ts_ns").reset_index(drop=True)


def test_proxy_login_is_a_407_or_a_401_to_a_connect():
    assert proxy_login("407", "a.example:443") and proxy_login("407", "http://a.example/x")
    assert proxy_login("401", "a.example:443")
    assert not proxy_login("401", "http://a.example/crl")       # (maybe the origin server's, passed on)
    assert not proxy_login("403", "a.example:443") and not proxy_login("401", "")


def test_a_401_to_a_connect_that_carried_basic_credentials_says_they_were_refused(tmp_path):
    """s57 #8 (tinyproxy, curl -x http://wrong:creds@…): the detail said only 'answered 401', the
    advice 'let the agent reach … through the proxy'; now the refused credentials, as for a 407."""
    path = _write(tmp_path, _records([_connect(b"Basic d3Jvbmc6Y3JlZHM="), TINY_401], close="s"))
    t = _tcp(analyze(str(path)))
    assert (t.at[0, "verdict"], t.at[0, "reason"]) == ("blocked", "rejected")
    assert t.at[0, "detail"] == ("the proxy 10.0.0.1:3128 answered 401 \"Unauthorized\" to CONNECT "
                                 f"{TARGET} carrying credentials (Proxy-Authorization: Basic): "
                                 f"{PROXY_CREDENTIALS_REFUSED}")
    status, fix = _fix(t)
    assert status == "blocked"
    assert fix.startswith("this connection went through an HTTP proxy that refused or failed it: 401 to requests "
                          "that carried the agent's credentials (the proxy refused them): check the account"), fix
    assert "let the agent reach" not in fix
    assert_same(path, [1024])


def test_a_401_to_a_connect_without_credentials_asks_for_the_proxy_account(tmp_path):
    path = _write(tmp_path, _records([_connect(), TINY_401], close="s"))
    t = _tcp(analyze(str(path)))
    assert (t.at[0, "verdict"], t.at[0, "reason"]) == ("blocked", "rejected")
    assert t.at[0, "detail"].endswith(f" to CONNECT {TARGET} without credentials: {PROXY_WANTS_LOGIN}")
    status, fix = _fix(t)
    assert fix.startswith("this connection went through an HTTP proxy that refused or failed it: 401 (the proxy "
                          "wants authentication): set the proxy account"), fix


def test_a_401_to_a_connect_then_an_accepted_retry_is_an_authentication_round(tmp_path):
    """No credentials, 401, then a new connection with credentials accepted: a round (as a 407)."""
    recs = (_records([_connect(), TINY_401], port=50000, close="s")
            + _records([_connect(b"Basic cmlnaHQ6Y3JlZHM="), OK_200, *_tls(tmp_path)], port=50001, t0=100.5))
    path = _write(tmp_path, recs)
    t = _tcp(analyze(str(path)))
    assert t["verdict"].tolist() == ["ok", "ok"]
    assert t.at[0, "detail"] == (f"proxy authentication round; the retry on {t.at[1, 'uid']} was accepted (the "
                                 f"proxy 10.0.0.1:3128 answered 401 to CONNECT {TARGET})")
    assert _fix(t)[0] == "verified"
    assert_same(path, [1024, 4096])


@pytest.mark.parametrize("code", ["401", "407"])
def test_basic_credentials_refused_then_another_account_accepted_is_no_round(tmp_path, code):
    """Basic takes one request: the proxy refused the account the agent sent, whatever a retry with
    another one got (the s57 capture: wrong credentials, then right ones 28 ms later)."""
    answer = TINY_401 if code == "401" else ("s", TINY_401[1].replace(b"401 Unauthorized",
                                                                      b"407 Proxy Authentication Required"))
    recs = (_records([_connect(b"Basic d3Jvbmc6Y3JlZHM="), answer], port=50000, close="s")
            + _records([_connect(b"Basic cmlnaHQ6Y3JlZHM="), OK_200, *_tls(tmp_path)], port=50001, t0=100.5))
    path = _write(tmp_path, recs)
    t = _tcp(analyze(str(path)))
    assert t["verdict"].tolist() == ["blocked", "ok"]
    assert t.at[0, "detail"].endswith(PROXY_CREDENTIALS_REFUSED)
    assert_same(path, [1024, 4096])


def test_a_401_to_a_plain_request_through_a_proxy_is_no_login(tmp_path):
    """GET http://… through a proxy answered 401: maybe the origin server's, passed on: no
    credentials advice."""
    get = ("c", b"GET http://crl3.digicert.com/x.crl HTTP/1.1\r\nHost: crl3.digicert.com\r\n\r\n")
    path = _write(tmp_path, _records([get, TINY_401], close="s"))
    t = _tcp(analyze(str(path)))
    assert PROXY_WANTS_LOGIN not in t.at[0, "detail"] and PROXY_CREDENTIALS_REFUSED not in t.at[0, "detail"]


# --- #11: A answered and AAAA refused in one DNS flow (glibc's one socket) ------------------------

@pytest.mark.parametrize("order", ["a_first", "aaaa_first"])
def test_one_flow_with_a_answered_and_aaaa_refused_says_only_the_aaaa(tmp_path, order):
    """s57 #11 (dnsmasq with an A-only host record, no upstream: AAAA REFUSED): the ok flow's detail
    said "DNS answer REFUSED for ksn-a…" and the "DNS names answered with an error" table REFUSED,
    as though the name had been refused; only its AAAA query was, the A answer came in the same
    flow. Whole and in small chunks, the table report and the HTML alike."""
    from test_breakit16_findings import A_RR, _dns_pair

    from kscc_traffic.classify import A_ANSWERED_HERE, AAAA_ONLY
    from kscc_traffic.html_report import render_html
    from kscc_traffic.report import dns_errors, render_table
    name = "ksn-a.ksc.kaspersky.com"
    a, aaaa = _dns_pair(name, 1, 0, 40001, 1000.0, 1, A_RR), _dns_pair(name, 28, 5, 40001, 1000.0005, 2)
    recs = a + aaaa if order == "a_first" else aaaa + a
    path = _write(tmp_path, sorted(recs, key=lambda r: r[0]))
    flows = assert_same(path, [256])
    r = flows.iloc[0]
    assert len(flows) == 1 and (r.dns_rcode, r.verdict, r.reason) == ("REFUSED", "ok", "")
    assert r.detail == (f"DNS answer REFUSED for {name}: {AAAA_ONLY}; {A_ANSWERED_HERE}: an agent connects over "
                        "IPv4 with that answer (an IPv6-only network would need the AAAA one)")
    assert dns_errors(flows).values.tolist() == [[name, "REFUSED (AAAA only)", 1]]
    text = render_table(flows, RULES, width=400)
    assert "REFUSED (AAAA only)" in text
    assert ("the resolver refuses to answer this client or this name, for the AAAA (IPv6 address) query only: an "
            "agent connects over IPv4 with the A answer") in text
    assert "REFUSED (AAAA only)" in render_html(flows, RULES, charts=False)


def test_a_refused_with_aaaa_answered_in_one_flow_is_no_aaaa_only_error(tmp_path):
    """The contrast: the A query refused in the flow (the AAAA answered NOERROR, no address): no
    "AAAA only" in the detail nor the table."""
    from test_breakit16_findings import _dns_pair

    from kscc_traffic.report import dns_errors
    name = "ksn-a.ksc.kaspersky.com"
    recs = _dns_pair(name, 1, 5, 40001, 1000.0, 1) + _dns_pair(name, 28, 0, 40001, 1000.0005, 2)
    flows = analyze(str(_write(tmp_path, sorted(recs, key=lambda r: r[0]))))
    assert "AAAA" not in flows.iloc[0].detail and flows.iloc[0].verdict == "blocked"
    assert dns_errors(flows).values.tolist() == [[name, "REFUSED", 1]]


def test_a_name_faking_the_aaaa_only_words_does_not_change_the_table():
    """The table's "AAAA only" is read from the detail's start rebuilt from the flow's own rcode
    and query: a query name holding the words changes nothing."""
    import pandas as pd

    from kscc_traffic.report import dns_errors
    q = "x.example: only its AAAA (IPv6 address) query; y"
    t = pd.DataFrame({"query": [q], "dns_rcode": ["REFUSED"], "dns_answers": [""], "verdict": ["ok"],
                      "detail": [f"DNS answer REFUSED for {q}"]})
    assert dns_errors(t).values.tolist() == [[q, "REFUSED", 1]]
