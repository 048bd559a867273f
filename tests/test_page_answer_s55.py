"""A certificate check answered by a page (break-it s54 icept #7a): a CRL or OCSP request on port 80
answered `200 OK` with an HTML page (a web filter's block page, a captive portal's login page
served with a success status) was `cert_check ok` and the checklist said verified, though no CRL
or OCSP response came back. Such an answer is now blocked/rejected as a filter's refusal; the
real answers (application/pkix-crl, application/ocsp-response) and pages asked for stay ok."""
from __future__ import annotations

import shutil

import pytest

pytest.importorskip("scapy")

from kscc_traffic import load_rules  # noqa: E402
from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.protocols import http  # noqa: E402
from kscc_traffic.report import readiness  # noqa: E402
from pcapbuild import pcap_bytes, tcp_session  # noqa: E402

AGENT, CRL, PROXY = "192.0.2.10", "203.0.113.20", "198.51.100.8"
RULES = load_rules()
PAGE = b"<!DOCTYPE html><html><head><title>Blocked</title></head><body>Access denied</body></html>"
CRL_GET = b"GET /DigiCertGlobalRootG2.crl HTTP/1.1\r\nHost: crl3.digicert.com\r\nUser-Agent: agent\r\n\r\n"
OCSP_POST = (b"POST / HTTP/1.1\r\nHost: ocsp.digicert.com\r\nContent-Type: application/ocsp-request\r\n"
             b"Content-Length: 83\r\n\r\n" + b"\x30\x51" + bytes(81))


def answer(ctype: str | None, body: bytes = PAGE, status: str = "200 OK") -> bytes:
    head = f"HTTP/1.1 {status}\r\n" + (f"Content-Type: {ctype}\r\n" if ctype is not None else "")
    return head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body


def judged(tmp_path, c_data: bytes, s_data: bytes, server=(CRL, 80), engine="builtin", extra=()):
    if engine == "tshark" and not shutil.which("tshark"):
        pytest.skip("tshark not installed")
    recs = tcp_session((AGENT, 50024), server, t0=1000.0, c_data=c_data, s_data=s_data) + list(extra)
    path = tmp_path / "c.pcap"
    path.write_bytes(pcap_bytes(sorted(recs, key=lambda r: r[0])))
    flows = analyze_file(str(path), RULES, engine=engine).flows
    row = flows[flows.resp_p == server[1]].iloc[0]
    return row, flows


@pytest.mark.parametrize("engine", ["builtin", "tshark"])
def test_a_crl_answered_by_an_html_page_is_a_filters_page(tmp_path, engine):
    row, _ = judged(tmp_path, CRL_GET, answer("text/html; charset=UTF-8"), engine=engine)
    assert (row.purpose, row.verdict, row.reason) == ("cert_check", "blocked", "rejected")
    assert row.detail == (f"the server {CRL}:80 answered 200 to the request for http://crl3.digicert.com:80 (a "
                          "transparent web filter or captive portal: an HTML page (text/html) where a certificate "
                          "revocation list (CRL) was asked for, its block or login page served in the server's place)")


def test_an_ocsp_post_answered_by_a_page_without_content_type(tmp_path):
    row, _ = judged(tmp_path, OCSP_POST, answer(None, b"\r\n  <html><body>login</body></html>"))
    assert (row.verdict, row.reason) == ("blocked", "rejected")
    assert "an HTML page (text/html, no Content-Type) where an OCSP response was asked for" in row.detail


@pytest.mark.parametrize("ctype,body", [("application/pkix-crl", b"\x30\x82\x01\x00"),
                                        ("application/octet-stream", b"\x30\x82\x01\x00"),
                                        (None, b"\x30\x82\x01\x00")])
def test_the_real_answers_stay_ok(tmp_path, ctype, body):
    row, _ = judged(tmp_path, CRL_GET, answer(ctype, body))
    assert (row.verdict, row.reason, row.detail) == ("ok", "", "")


def test_an_ocsp_response_stays_ok(tmp_path):
    row, _ = judged(tmp_path, OCSP_POST, answer("application/ocsp-response", b"\x30\x03\x0a\x01\x00"))
    assert (row.verdict, row.reason, row.detail) == ("ok", "", "")


def test_a_page_asked_for_is_a_page(tmp_path):
    # (www.digicert.com/ is a page: nothing was asked that a page could replace)
    req = b"GET / HTTP/1.1\r\nHost: www.digicert.com\r\n\r\n"
    row, _ = judged(tmp_path, req, answer("text/html"))
    assert (row.verdict, row.reason, row.detail) == ("ok", "", "")


def test_through_a_proxy_in_absolute_form(tmp_path):
    req = b"GET http://crl3.digicert.com/DigiCertGlobalRootG2.crl HTTP/1.1\r\nHost: crl3.digicert.com\r\n\r\n"
    row, _ = judged(tmp_path, req, answer("text/html"), server=(PROXY, 3128))
    assert (row.purpose, row.verdict, row.reason) == ("cert_check", "blocked", "rejected")
    assert row.detail.startswith(f"the proxy {PROXY}:3128 answered 200 to the request for "
                                 "http://crl3.digicert.com:80 (the proxy's web filter or a captive portal: an HTML "
                                 "page (text/html) where a certificate revocation list (CRL) was asked for")
    # (the advice is the proxy's URL filter, not a port to open; review s55 #1)
    from test_newcomer30_findings import _hello
    ksc = tcp_session((AGENT, 50100), ("203.0.113.10", 23101), t0=1001.0, c_data=_hello(b"eu1.ksc.kaspersky.com"))
    row, flows = judged(tmp_path, req, answer("text/html"), server=(PROXY, 3128), extra=ksc)
    fix = readiness(flows, RULES).set_index("purpose").loc["cert_check"].fix
    assert "went through an HTTP proxy that refused or failed it: 200 with its own HTML page where a CRL" in fix
    assert "allow *.digicert.com in the proxy's URL filter" in fix and "allow outbound" not in fix


def test_the_advice_says_a_page_answered(tmp_path):
    from test_newcomer30_findings import _hello
    ksc = tcp_session((AGENT, 50100), ("203.0.113.10", 23101), t0=1001.0, c_data=_hello(b"eu1.ksc.kaspersky.com"))
    row, flows = judged(tmp_path, CRL_GET, answer("text/html"), extra=ksc)
    fix = readiness(flows, RULES).set_index("purpose").loc["cert_check"].fix
    assert "answered HTTP 200 on TCP 80, which is open" in fix
    assert ("a 2xx answer that is an HTML page where a CRL, an OCSP response or a CA certificate was asked for is a "
            "filter's block page") in fix


def test_what_a_page_is(tmp_path):
    assert http.page_media_type(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\x1b[31m\r\n\r\n") == ""
    assert http.page_media_type(b"HTTP/1.1 200 OK\r\nContent-Type: TEXT/HTML ; charset=x\r\n\r\n<p>") == "text/html"
    assert http.page_media_type(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: "
                                b"application/xhtml+xml\r\n\r\n<html/>") == "application/xhtml+xml"
    assert http.page_media_type(b"HTTP/1.1 200 OK\r\nContent-Ty") == ""
    # (an empty type: the body decides)
    assert http.page_media_type(b"HTTP/1.1 200 OK\r\nContent-Type:\r\n\r\n<html>") == "text/html, no Content-Type"


def test_the_answer_judged_is_the_last_after_a_proxy_login(tmp_path):
    # (a 407 login page, the request asked again, then the outcome: its type is what counts)
    req = b"GET http://crl3.digicert.com/DigiCertGlobalRootG2.crl HTTP/1.1\r\nHost: crl3.digicert.com\r\n\r\n"
    auth = req.replace(b"\r\n\r\n", b"\r\nProxy-Authorization: Basic eDp5\r\n\r\n")
    login = answer("text/html", b"<html>login</html>", status="407 Proxy Authentication Required")
    for outcome, verdict in ((answer("application/pkix-crl", b"\x30\x82"), "ok"), (answer("text/html"), "blocked")):
        row, _ = judged(tmp_path, req + auth, login + outcome, server=(PROXY, 3128))
        assert (row.http_status, row.verdict) == ("200", verdict)


def test_chunked_reading_agrees(tmp_path):
    # (http_page from what a chunked reading keeps of a flow: the head in tiny segments)
    from chunkcmp import assert_same
    from pcapbuild import pcap_bytes
    recs = []
    for i, (req, resp) in enumerate(((CRL_GET, answer("text/html")), (OCSP_POST, answer("application/ocsp-response",
                                                                                       b"\x30\x03\x0a\x01\x00")))):
        recs += tcp_session((AGENT, 50024 + i), (CRL, 80), t0=1000.0 + i, c_data=req, s_data=resp)
    path = tmp_path / "k.pcap"
    path.write_bytes(pcap_bytes(sorted(recs, key=lambda r: r[0])))
    w = assert_same(path, [200, 700])
    assert sorted(w["verdict"][w["resp_p"] == 80].tolist()) == ["blocked", "ok"]


@pytest.mark.parametrize("resp", [
    answer("text/html", b"\x30\x82\x01\x0a" + bytes(20)),                # a DER CRL a server mislabels
    answer("text/html", b"-----BEGIN X509 CRL-----\nMIIB\n"),           # PEM
    answer("text/html", b""),                                           # no body (Content-Length: 0)
    b"HTTP/1.1 204 No Content\r\nContent-Type: text/html\r\n\r\n",      # a 204 carries none
])
def test_what_no_page_is(tmp_path, resp):
    # (fp s55 #1, #3: a CRL served as text/html, or no body at all, is no block page)
    row, _ = judged(tmp_path, CRL_GET, resp)
    assert "block or login page" not in row.detail


def test_a_head_answer_has_no_page(tmp_path):
    head = CRL_GET.replace(b"GET ", b"HEAD ", 1)
    resp = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5000\r\n\r\n"
    row, _ = judged(tmp_path, head, resp)
    assert (row.verdict, row.detail) == ("ok", "")


def test_a_later_request_refused_on_the_same_connection(tmp_path):
    # (break-it s55 tls #6: only the first answer of a keep-alive connection was judged)
    from chunkcmp import assert_same
    second = CRL_GET.replace(b"/DigiCertGlobalRootG2.crl", b"/DigiCertTLSRSASHA2562020CA1.crl")
    crl = answer("application/pkix-crl", b"\x30\x82\x01\x00")
    row, flows = judged(tmp_path, CRL_GET + second, crl + answer("text/html", b"<html>no</html>", "403 Forbidden"))
    assert (row.verdict, row.reason) == ("blocked", "rejected")
    assert row.detail.startswith(f"the server {CRL}:80 answered 403 to the request for "
                                 "http://crl3.digicert.com:80/DigiCertTLSRSASHA2562020CA1.crl (a transparent web "
                                 "filter, or the server refusing it), the 2nd request on this connection, after 200 "
                                 "to the first")
    assert_same(tmp_path / "c.pcap", [200, 700])
    # (a 404 later is the server's own answer: ok, as a first one is)
    row, _ = judged(tmp_path, CRL_GET + second, crl + answer("text/html", b"<html>x</html>", "404 Not Found"))
    assert (row.verdict, row.detail) == ("ok", "")


def test_later_answers():
    c = (b"GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyzHEAD /c HTTP/1.1\r\n\r\n"
         b"GET /d HTTP/1.1\r\n\r\n")
    s = (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 403 F\r\n"
         b"Transfer-Encoding: chunked\r\n\r\n2\r\nno\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"
         b"HTTP/1.1 503 Busy\r\n\r\n")
    assert http.later_answers(c, s) == [(2, 403, "/b"), (3, 200, "/c"), (4, 503, "/d")]
    assert http.later_answers(c, s[:20]) == [] and http.later_answers(b"\x16\x03", b"") == []
