"""HTTP request-line / Host parsing."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kscc_traffic.protocols.http import (
    looks_like_http_request,
    looks_like_http_response,
    parse_request,
    response_status,
    split_host_port,
)


def test_host_with_port():
    r = parse_request(b"POST /api/v1 HTTP/1.1\r\nHost: ksc.example.com:13292\r\n"
                      b"Content-Length: 0\r\n\r\nbody")
    assert (r.method, r.target, r.version) == ("POST", "/api/v1", "HTTP/1.1")
    assert r.host == "ksc.example.com" and r.port == 13292
    assert r.complete and r.header("content-length") == "0"


def test_lower_case_header_and_ipv6_literal():
    r = parse_request(b"GET / HTTP/1.0\nuser-agent: x\nhost:   [2001:db8::1]:8080  \n\n")
    assert r.host == "2001:db8::1" and r.port == 8080 and r.complete
    r = parse_request(b"GET / HTTP/1.1\r\nhOsT: [::1]\r\n")
    assert r.host == "::1" and r.port is None and not r.complete


def test_absolute_form_target_wins():
    r = parse_request(b"GET http://user:pw@Proxy.Example.net:3128/x?y=1 HTTP/1.1\r\n"
                      b"Host: other.example\r\n\r\n")
    assert r.host == "Proxy.Example.net" and r.port == 3128
    r = parse_request(b"CONNECT ksc.example.com:443 HTTP/1.1\r\nHost: ksc.example.com:443\r\n\r\n")
    assert r.method == "CONNECT" and r.host == "ksc.example.com" and r.port == 443


def test_no_host():
    r = parse_request(b"GET /index.html HTTP/1.1\r\n\r\n")
    assert r.host is None and r.port is None and r.complete


def test_tls_and_binary_not_http():
    tls_record = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40
    assert parse_request(tls_record) is None and not looks_like_http_request(tls_record)
    assert not looks_like_http_response(tls_record)
    assert parse_request(b"SSH-2.0-OpenSSH_9.6\r\n") is None
    assert parse_request(b"GET / HTTP/2.0\r\n\r\n") is None
    assert parse_request(b"get / HTTP/1.1\r\n\r\n") is None
    assert parse_request(b"GETX / HTTP/1.1\r\n\r\n") is None
    assert parse_request(b"GET  / HTTP/1.1\r\n\r\n") is None
    assert parse_request(b"GET / HTTP/1.1") is None  # request line not finished yet


def test_response():
    assert looks_like_http_response(b"HTTP/1.1 200 OK\r\n")
    assert response_status(b"HTTP/1.0 404 Not Found\r\n") == 404
    assert not looks_like_http_response(b"HTTP/1.1 2000 OK\r\n")
    assert not looks_like_http_response(b"GET / HTTP/1.1\r\n")


def test_split_host_port():
    assert split_host_port("example.com") == ("example.com", None)
    assert split_host_port("example.com:99999") == ("example.com", None)
    assert split_host_port("2001:db8::2") == ("2001:db8::2", None)
    assert split_host_port("[fe80::1%eth0]:80") == ("fe80::1%eth0", 80)
    assert split_host_port("") == (None, None)


def test_untrusted_host_escaped():
    r = parse_request(b"GET / HTTP/1.1\r\nHost: a\xff\x01b\r\n\r\n")
    assert r.host == "a\\xff\\x01b"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_never_raise(data):
    for d in (data, b"GET " + data, b"GET / HTTP/1.1\r\nHost: " + data):
        r = parse_request(d)
        assert r is None or isinstance(r.method, str)
        looks_like_http_response(d)


def test_userinfo_is_kept_where_it_cannot_be_userinfo():
    """Break-it 15 F11: a Host header or a CONNECT target cannot carry userinfo (RFC 9110 §7.2,
    §9.3.6): the text is kept as sent (and is no host name), as Wireshark shows it; only an
    absolute-form URI's userinfo is dropped."""
    r = parse_request(b"GET /x HTTP/1.1\r\nHost: evil.example@crl3.digicert.com\r\n\r\n")
    assert (r.host, r.port) == ("evil.example@crl3.digicert.com", None)
    r = parse_request(b"CONNECT evil.example@eu1.ksc.kaspersky.com:23101 HTTP/1.1\r\n\r\n")
    assert (r.host, r.port) == ("evil.example@eu1.ksc.kaspersky.com", 23101)
    r = parse_request(b"GET http://u@crl3.digicert.com/x HTTP/1.1\r\nHost: crl3.digicert.com\r\n\r\n")
    assert (r.host, r.port) == ("crl3.digicert.com", None)
