"""Explicit-proxy verdicts a break-it review found wrong (F2-F4), built with scapy as in
test_proxy_connect (whose helpers are reused).

F2: a ``407`` whose body is sent with ``Transfer-Encoding: chunked`` (legal HTTP/1.1), then the
CONNECT asked again with credentials on the same connection: the answer to the last CONNECT
counts, as with a Content-Length body.

F3: the host mask is checked on the CONNECT host *and* on the SNI asked inside the tunnel: a
CONNECT to eu1.ksc.kaspersky.com:23101 whose ClientHello asks evil.example is host_mismatch, as
the same TLS sent directly is; the detail says which name is outside.
"""
from __future__ import annotations

import pytest

from kscc_traffic.protocols.http import exchange
from test_hostile_captures import client_hello, tls_record
from test_proxy_connect import OK_200, SNI, TARGET, _connect, _one, _records, _sub, _tls

AUTH_AGAIN = ("c", f"CONNECT {TARGET} HTTP/1.1\r\nHost: {TARGET}\r\nProxy-Authorization: Basic a2w6cHc=\r\n\r\n"
              .encode())
PROXY_407 = b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"p\"\r\n"


# -- F2: chunked bodies ------------------------------------------------------------------------

CHUNKED_BODIES = {
    "one chunk": b"5\r\nhello\r\n0\r\n\r\n",
    "extensions and trailer": b"5;name=v\r\nhello\r\n1a ; x\r\n<html>login needed</html>\r\n0;end\r\n"
                              b"X-Trailer: 1\r\n\r\n",
    "upper-case hex, bare LF": b"A\nabcdefghij\n0\n\n",
}


@pytest.mark.parametrize("body", CHUNKED_BODIES.values(), ids=CHUNKED_BODIES.keys())
def test_407_with_a_chunked_body_then_login_opens_the_tunnel(tmp_path, body):
    auth = ("s", PROXY_407 + b"Transfer-Encoding: chunked\r\n\r\n" + body)
    r = _one(tmp_path, _records([_connect(), auth, AUTH_AGAIN, OK_200, *_tls(tmp_path)]))
    assert (r["http_status"], r["proxy_target"], r["service"]) == ("200", TARGET, "http,ssl")
    assert (r["sni"], r["tls_established"], r["client_proto"], r["server_proto"]) == (SNI, True, "tls", "tls")
    assert (r["purpose"], r["verdict"], r["reason"], r["detail"]) == ("agent_connection", "ok", "", "")


def test_chunked_body_over_several_segments(tmp_path):
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (b"<html>", b"x" * 300, b"</html>")) + b"0\r\n\r\n"
    head = PROXY_407 + b"Transfer-Encoding: gzip, chunked\r\n\r\n"
    parts = [("s", head + body[:7]), ("s", body[7:200]), ("s", body[200:])]
    r = _one(tmp_path, _records([_connect(), *parts, AUTH_AGAIN, OK_200, *_tls(tmp_path)]))
    assert (r["http_status"], r["tls_established"], r["verdict"]) == ("200", True, "ok")


def test_chunked_body_not_fully_captured_stays_the_refusal(tmp_path):
    # the last-chunk never comes (the proxy closes): the 407 is the last answer seen
    auth = ("s", PROXY_407 + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
    r = _one(tmp_path, _records([_connect(), auth], close="s"))
    assert (r["http_status"], r["purpose"], r["verdict"], r["reason"]) == (
        "407", "agent_connection", "blocked", "rejected")
    assert r["detail"] == f"the proxy 10.0.0.1:3128 answered 407 to CONNECT {TARGET}"


def test_407_without_length_on_a_keep_alive_connection(tmp_path):
    """Neither Content-Length nor chunked: taken as an empty body (lenient), so a login on the same
    connection is still followed to its 200; a body that is no next answer ends the walk at the
    407 (behaviour kept from before the chunked walk)."""
    bare = ("s", PROXY_407 + b"\r\n")
    r = _one(tmp_path, _records([_connect(), bare, AUTH_AGAIN, OK_200, *_tls(tmp_path)]))
    assert (r["http_status"], r["tls_established"], r["verdict"]) == ("200", True, "ok")
    html = ("s", PROXY_407 + b"Connection: close\r\n\r\n<html>login</html>")
    r = _one(_sub(tmp_path, "1"), _records([_connect(), html], close="s"))
    assert (r["http_status"], r["verdict"], r["reason"]) == ("407", "blocked", "rejected")


def test_exchange_steps_over_chunked_bodies():
    connect = b"CONNECT h:1 HTTP/1.1\r\n\r\n"
    ok = b"HTTP/1.1 200 OK\r\n\r\n"

    def answer(te: bytes, body: bytes):
        server = PROXY_407 + b"Transfer-Encoding: " + te + b"\r\n\r\n" + body + ok + b"\x16\x03\x03"
        return exchange(connect + connect + b"\x16\x03\x01", server, connect=True)

    head = len(PROXY_407) + len(b"Transfer-Encoding: chunked\r\n\r\n")
    body = b"5\r\nhello\r\n0\r\nA: b\r\n\r\n"
    assert answer(b"chunked", body) == (200, 2 * len(connect), head + len(body) + len(ok))
    assert answer(b"Chunked", b"0\r\n\r\n")[0] == 200
    # not a chunked body after all, cut, a coding other than chunked last (body to the close)
    assert answer(b"chunked", b"5\r\nhelloXX0\r\n\r\n") == (407, None, None)
    assert answer(b"chunked", b"5\r\nhel") == (407, None, None)
    assert answer(b"chunked", b"fffffffffffffff\r\nx") == (407, None, None)
    assert answer(b"gzip", b"0\r\n\r\n") == (407, None, None)


# -- F3: the SNI inside the tunnel -------------------------------------------------------------

def test_sni_outside_the_mask_inside_a_connect_tunnel_is_host_mismatch(tmp_path):
    r = _one(tmp_path, _records([_connect(), OK_200, *_tls(tmp_path, ("evil.example",), sni="evil.example")]))
    assert (r["proxy_target"], r["http_status"], r["sni"], r["tls_established"]) == (
        TARGET, "200", "evil.example", True)
    assert (r["purpose"], r["verdict"], r["reason"]) == ("agent_connection", "unexpected", "host_mismatch")
    assert r["detail"] == f"SNI evil.example (inside CONNECT {TARGET}) is not under *.ksc.kaspersky.com"
    # the same TLS sent directly: the same verdict
    d = _one(_sub(tmp_path, "1"), _records(_tls(tmp_path, ("evil.example",), sni="evil.example"),
                                           proxy=("203.0.113.50", 23101)))
    assert (d["proxy_target"], d["purpose"], d["verdict"], d["reason"]) == (
        "", "agent_connection", "unexpected", "host_mismatch")


def test_connect_host_outside_is_named_before_an_sni_under_the_mask(tmp_path):
    target = "cloud.example.net:23101"
    r = _one(tmp_path, _records([_connect(target), OK_200, *_tls(tmp_path)]))
    assert (r["proxy_target"], r["sni"]) == (target, SNI)
    assert (r["verdict"], r["reason"]) == ("unexpected", "host_mismatch")
    assert r["detail"] == "CONNECT host cloud.example.net is not under *.ksc.kaspersky.com"


def test_connect_to_an_address_is_judged_by_the_sni(tmp_path):
    target = "203.0.113.50:23101"
    r = _one(tmp_path, _records([_connect(target), OK_200, *_tls(tmp_path, ("evil.example",), sni="evil.example")]))
    assert (r["purpose"], r["verdict"], r["reason"]) == ("agent_connection", "unexpected", "host_mismatch")
    assert r["detail"] == f"SNI evil.example (inside CONNECT {target}) is not under *.ksc.kaspersky.com"
    r = _one(_sub(tmp_path, "1"), _records([_connect(target), OK_200, *_tls(tmp_path)]))
    assert (r["purpose"], r["verdict"], r["reason"]) == ("agent_connection", "ok", "")


def test_hostile_sni_inside_the_tunnel_is_escaped_in_the_detail(tmp_path):
    hello = tls_record(22, client_hello("\u202eevil\x1b.ksc.kaspersky.com".encode()))
    r = _one(tmp_path, _records([_connect(), OK_200, ("c", hello)]))
    assert r["sni"] == "\\u202eevil\\x1b.ksc.kaspersky.com"
    assert (r["purpose"], r["verdict"], r["reason"]) == ("agent_connection", "unexpected", "host_mismatch")
    assert r["detail"].startswith("SNI \\u202eevil\\x1b.ksc.kaspersky.com (inside CONNECT")
    assert "is not a host name" in r["detail"] and "\u202e" not in r["detail"] and "\x1b" not in r["detail"]
