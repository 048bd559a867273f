"""Host names from packets are ASCII on the wire: other bytes are shown as ``\\xNN`` (as Zeek logs
them), so a homoglyph cannot pass for the real name; and a name that is no host name is not one
the agent needs (break-it 15 F11)."""
from __future__ import annotations

import struct

import pytest

from pcapbuild import pcap_bytes, tcp_session, udp

from kscc_traffic.analyze import analyze_file
from kscc_traffic.protocols import dns
from kscc_traffic.protocols.http import parse_request
from kscc_traffic.rules import load_rules

RULES = load_rules()
AGENT, RESOLVER, SERVER = "192.0.2.10", "198.51.100.53", "203.0.113.10"
CYRILLIC = "eu1.ksc.k\u0430spersky.com"            # a Cyrillic а in "kaspersky"
IDEOGRAPHIC = "eu1\u3002ksc.kaspersky.com"          # U+3002, which IDNA maps to a dot


def _wire_name(name: str) -> bytes:
    return b"".join(bytes([len(lab)]) + lab for lab in (x.encode() for x in name.split("."))) + b"\0"


def _nxdomain(tmp_path, name: str):
    q = _wire_name(name) + struct.pack("!HH", 1, 1)
    query = struct.pack("!6H", 7, 0x0100, 1, 0, 0, 0) + q
    answer = struct.pack("!6H", 7, 0x8183, 1, 0, 0, 0) + q
    recs = [udp((AGENT, 40001), (RESOLVER, 53), query, t=1000.0),
            udp((RESOLVER, 53), (AGENT, 40001), answer, t=1000.01)]
    p = tmp_path / "d.pcap"
    p.write_bytes(pcap_bytes(recs))
    return analyze_file(p, RULES).flows.iloc[0]


@pytest.mark.parametrize("name, shown", [
    (CYRILLIC, "eu1.ksc.k\\xd0\\xb0spersky.com"),
    (IDEOGRAPHIC, "eu1\\xe3\\x80\\x82ksc.kaspersky.com"),
    ("\uff45u1.ksc.kaspersky.com", "\\xef\\xbd\\x85u1.ksc.kaspersky.com"),
])
def test_a_dns_name_that_is_no_host_name_is_shown_escaped_and_not_needed(tmp_path, name, shown):
    r = _nxdomain(tmp_path, name)
    assert r.query == shown
    assert (r.verdict, r.reason) == ("ok", "")
    assert r.detail == f"DNS answer NXDOMAIN for {shown}"


def test_a_forged_name_under_the_vendor_domain_is_not_needed_but_the_real_one_is(tmp_path):
    r = _nxdomain(tmp_path, "=cmd|' /C calc'!A0.ksc.kaspersky.com")
    assert (r.verdict, r.reason) == ("ok", "")
    r = _nxdomain(tmp_path, "eu1.ksc.kaspersky.com")
    assert (r.verdict, r.reason) == ("blocked", "rejected")
    assert "the agent needs this name" in r.detail


def test_sni_and_http_host_bytes_above_0x7f_are_escaped(tmp_path):
    from test_decode_more_encaps import client_hello
    recs = tcp_session((AGENT, 50003), (SERVER, 23101), t0=1000.0, c_data=client_hello(CYRILLIC))
    p = tmp_path / "t.pcap"
    p.write_bytes(pcap_bytes(recs))
    r = analyze_file(p, RULES).flows.iloc[0]
    assert r.sni == r.server_name == "eu1.ksc.k\\xd0\\xb0spersky.com"
    assert r.reason == "host_mismatch"
    req = parse_request(f"GET / HTTP/1.1\r\nHost: {CYRILLIC}:80\r\n\r\n".encode())
    assert (req.host, req.port) == ("eu1.ksc.k\\xd0\\xb0spersky.com", 80)
    req = parse_request(f"CONNECT {IDEOGRAPHIC}:23101 HTTP/1.1\r\n\r\n".encode())
    assert req.host == "eu1\\xe3\\x80\\x82ksc.kaspersky.com"


def test_host_text_is_one_text_per_bytes():
    """Every byte above 0x7F, valid UTF-8 or not, is \\xNN; a backslash is doubled, so a name
    written with a literal "\\xd0" differs from the byte."""
    assert dns.host_text("k\u0430".encode()) == "k\\xd0\\xb0"
    assert dns.host_text(b"k\xd0") == "k\\xd0"
    assert dns.host_text(b"k\\xd0") == "k\\\\xd0"
    assert dns.host_text("\u202e".encode()) == "\\xe2\\x80\\xae"   # (a bidi control: its bytes too)
    assert dns.host_text(b"eu1.ksc.kaspersky.com") == "eu1.ksc.kaspersky.com"
