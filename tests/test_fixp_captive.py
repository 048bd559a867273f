"""Break-it 24 F12: a ClientHello answered by an HTTP redirect (a captive portal or web
filter sending the browser to its page) leaves the agent unable to connect: ``blocked``/
``rejected`` as a filter's 403/511 is, the detail naming the Location (escaped); directly and
inside a CONNECT tunnel. A 400 (a transparent proxy, a web server) stays ``not_tls``."""
from __future__ import annotations

import pytest

from chunkcmp import assert_same
from kscc_traffic import analyze
from kscc_traffic.protocols.http import response_location
from kscc_traffic.rules import load_rules
from test_classify_fast import assert_same as assert_same_as_reference
from test_proxy_connect import OK_200, TARGET, _connect, _one, _records, _tls, _write

RULES = load_rules()
DIRECT = ("203.0.113.10", 23101)


@pytest.mark.parametrize("status", ["301", "302", "303", "307", "308"])
def test_a_redirect_to_the_client_hello_is_a_refusal(tmp_path, monkeypatch, status):
    hello = _tls(tmp_path)[0]
    answer = (f"HTTP/1.1 {status} Moved\r\nLocation: http://portal.example/login?x=\x1b[31m\r\n"
              "Content-Length: 0\r\n\r\n").encode()
    records = _records([hello, ("s", answer)], proxy=DIRECT, close="s")
    r = _one(tmp_path, records)
    assert (r["verdict"], r["reason"], r["http_status"]) == ("blocked", "rejected", status)
    assert r["detail"] == (f"the server answered HTTP {status} to the ClientHello where TLS is documented: a "
                           "redirect to http://portal.example/login?x=\\x1b[31m (a captive portal or web filter?)")
    path = _write(tmp_path, records, name="again.pcap")
    assert_same(path, [1024, 4096])
    assert_same_as_reference(analyze(str(path)), RULES)
    from test_live_session import assert_live_same
    assert_live_same(path, monkeypatch, step=2)


def test_a_redirect_inside_the_tunnel_and_without_location(tmp_path):
    hello = _tls(tmp_path)[0]
    answer = b"HTTP/1.1 302 Found\r\nLocation: https://filter.example/block\r\nContent-Length: 0\r\n\r\n"
    r = _one(tmp_path, _records([_connect(), OK_200, hello, ("s", answer)], close="s"))
    assert (r["http_status"], r["proxy_target"]) == ("200", TARGET)
    assert (r["verdict"], r["reason"], r["detail"]) == (
        "blocked", "rejected", "the server answered HTTP 302 to the ClientHello inside the CONNECT tunnel where "
        "TLS is documented: a redirect to https://filter.example/block (a captive portal or web filter?)")
    (tmp_path / "b").mkdir()
    r = _one(tmp_path / "b", _records([hello, ("s", b"HTTP/1.1 307 Temporary Redirect\r\n\r\n")], proxy=DIRECT,
                                      close="s"))
    assert (r["verdict"], r["reason"]) == ("blocked", "rejected")
    assert r["detail"].endswith("a redirect (its Location not read) (a captive portal or web filter?)")


def test_other_cleartext_answers_stay_not_tls(tmp_path):
    hello = _tls(tmp_path)[0]
    r = _one(tmp_path, _records([hello, ("s", b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")],
                                proxy=DIRECT, close="s"))
    assert (r["verdict"], r["reason"]) == ("unexpected", "not_tls")


@pytest.mark.parametrize("data, want", [
    (b"HTTP/1.1 302 Found\r\nServer: x\r\nLocation: http://a.example/\r\n\r\n", "http://a.example/"),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 301 Moved\r\nlocation:  https://b.example/ \r\n\r\n",
     "https://b.example/"),
    (b"HTTP/1.1 302 Found\r\nLocation: http://cut", None),            # (its line cut)
    (b"HTTP/1.1 302 Found\r\nLocation: http://c.example/\r\nX: y", "http://c.example/"),
    (b"HTTP/1.1 302 Found\r\nLocation: " + b"x" * 300 + b"\r\n\r\n", "x" * 200 + "…"),
    (b"HTTP/1.1 200 OK\r\n\r\n", None),
    (b"\x16\x03\x03", None),
])
def test_response_location(data, want):
    assert response_location(data) == want


@pytest.mark.parametrize("inside, answer, quoted, said", [
    (b"GET / HTTP/1.1\r\nHost: eu1.ksc.kaspersky.com\r\n\r\n", b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
     'an HTTP request, "GET / HTTP/1.1\\x0d\\x0aHost: eu1.ksc.kaspersky.…"', " (answered HTTP 400 in it)"),
    (b"hello\x1b[31m", None, 'bytes that are no valid TLS record nor HTTP, "hello\\x1b[31m"', ""),
])
def test_cleartext_inside_a_tunnel_is_quoted(tmp_path, monkeypatch, inside, answer, quoted, said):
    """Break-it 24 F9: the client's cleartext inside the CONNECT tunnel gets the quoted detail of
    a direct connection, naming the tunnel and the answer in it."""
    parts = [_connect(), OK_200, ("c", inside)] + ([("s", answer)] if answer else [])
    records = _records(parts, close="s")
    r = _one(tmp_path, records)
    assert (r["verdict"], r["reason"], r["http_status"]) == ("unexpected", "not_tls", "200")
    assert r["detail"] == (f"the client sent cleartext, not a TLS ClientHello, where TLS is documented: {quoted}, "
                           f"inside the tunnel of CONNECT {TARGET} through the proxy 10.0.0.1:3128{said} (not an "
                           "agent's TLS: another program, or something on the way rewriting the agent's connection)")
    path = _write(tmp_path, records, name="again.pcap")
    assert_same(path, [1024, 4096])
    assert_same_as_reference(analyze(str(path)), RULES)
    from test_live_session import assert_live_same
    assert_live_same(path, monkeypatch, step=2)
