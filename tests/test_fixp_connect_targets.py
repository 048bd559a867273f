"""Break-it 24 F10: a CONNECT whose target is not a host name (markup, control bytes, spaces)
is kept, escaped, and judged as the same text asked as an SNI is: ``host_mismatch`` "not a host
name", with the proxy's answer; a leading ``[`` is an IPv6 literal only when it parses as one."""
from __future__ import annotations

import pytest

from kscc_traffic import analyze
from kscc_traffic.protocols.http import connect_target, looks_like_http_request, parse_request, split_host_port
from kscc_traffic.rules import load_rules
from test_classify_fast import assert_same as assert_same_as_reference
from test_proxy_connect import _one, _records, _write

RULES = load_rules()


@pytest.mark.parametrize("line, target", [
    (b"CONNECT [bold]eu1[/bold].ksc.kaspersky.com:23101 HTTP/1.1\r\n", "[bold]eu1[/bold].ksc.kaspersky.com:23101"),
    (b"CONNECT <img src=x onerror=alert(1)>.ksc.kaspersky.com:23101 HTTP/1.1\r\n",
     "<img src=x onerror=alert(1)>.ksc.kaspersky.com:23101"),
    (b"CONNECT eu1.ksc.kaspersky.com<b>\x1b[2J\xe2\x80\xae:23101 HTTP/1.1\r\n",
     "eu1.ksc.kaspersky.com<b>\\x1b[2J\\xe2\\x80\\xae:23101"),
    (b"CONNECT [2001:db8::1]:23101 HTTP/1.1\r\n", "[2001:db8::1]:23101"),
    (b"CONNECT eu1.ksc.kaspersky.com:23101 HTTP/1.1\r\n", "eu1.ksc.kaspersky.com:23101"),
])
def test_connect_targets_are_kept_escaped(line, target):
    data = line + b"Host: x\r\n\r\n"
    assert looks_like_http_request(data)
    assert connect_target(parse_request(data)) == target


def test_only_connect_lines_may_hold_spaces():
    assert not looks_like_http_request(b"GET /a b HTTP/1.1\r\n\r\n")
    assert not looks_like_http_request(b"CONNECT a.example:443 HTTP/1.1 extra\r\n")
    assert not looks_like_http_request(b"CONNECT  a.example:443 HTTP/1.1\r\n")     # (two spaces)
    # (the last " HTTP/1.x" of the line ends the target)
    assert parse_request(b"CONNECT a HTTP/1.1 b:443 HTTP/1.1\r\n\r\n").target == "a HTTP/1.1 b:443"


@pytest.mark.parametrize("text, want", [
    ("[::1]:80", ("::1", 80)),
    ("[2001:db8::1]", ("2001:db8::1", None)),
    ("[bold]x.example:443", ("[bold]x.example", 443)),
    ("[1.2.3.4]:80", ("[1.2.3.4]", 80)),                 # (not an IPv6 literal: text)
    ("[::1]x:80", ("[::1]x:80", None)),
])
def test_a_bracket_is_an_ipv6_literal_only_when_it_parses_as_one(text, want):
    assert split_host_port(text) == want


@pytest.mark.parametrize("target, status, shown", [
    (b"[bold]eu1[/bold].ksc.kaspersky.com:23101", "403", "[bold]eu1[/bold].ksc.kaspersky.com"),
    (b"<img src=x onerror=alert(1)>.ksc.kaspersky.com:23101", "407", "<img src=x onerror=alert(1)>.ksc.kaspersky.com"),
    (b"eu1.ksc.kaspersky.com\x1b[2J\xe2\x80\xae:23101", "403", "eu1.ksc.kaspersky.com\\x1b[2J\\xe2\\x80\\xae"),
])
def test_a_hostile_connect_target_is_judged_not_a_host_name(tmp_path, target, status, shown):
    records = _records([("c", b"CONNECT " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
                        ("s", f"HTTP/1.1 {status} No\r\nContent-Length: 0\r\n\r\n".encode())], close="s")
    r = _one(tmp_path, records)
    assert r["proxy_target"] == f"{shown}:23101"
    assert (r["purpose"], r["verdict"], r["reason"]) == ("agent_connection", "unexpected", "host_mismatch")
    assert r["detail"] == (f"CONNECT host {shown} is not a host name (characters no host name has: forged or "
                           f"damaged); the connection itself failed (rejected): the proxy 10.0.0.1:3128 answered "
                           f"{status} \"No\" to CONNECT {shown}:23101")
    assert_same_as_reference(analyze(str(_write(tmp_path, records, name="again.pcap"))), RULES)
