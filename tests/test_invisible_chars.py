"""Invisible and format characters in untrusted text (breakit6): a zero-width space before a
name (``\\u200beu1.ksc.kaspersky.com``) showed as ``eu1.ksc.kaspersky.com is not a host name``.
Every Unicode format character (category Cf) and the other default-ignorable code points are
escaped as control characters are: in packet names (``text_from_bytes``) and in every output
(``escape_terminal``: table, HTML, warning lines, capture names)."""
from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import unicodedata

import pytest

from kscc_traffic.protocols.dns import text_from_bytes
from kscc_traffic.text import CONTROL, escape_terminal, name_text
from pcapbuild import pcap_bytes, tcp_session
from test_hostile_captures import client_hello, tls_record

ZWSP_NAME = "\u200beu1.ksc.kaspersky.com"
# (a host name: every byte above 0x7F as \xNN, the zero-width space's three UTF-8 bytes)
ESCAPED = "\\xe2\\x80\\x8beu1.ksc.kaspersky.com"


@pytest.mark.parametrize("raw,shown", [
    ("\u200beu1.ksc.kaspersky.com", "\\u200beu1.ksc.kaspersky.com"),   # zero-width space
    ("eu1\u200c.\u200dksc", "eu1\\u200c.\\u200dksc"),                    # zero-width (non-)joiner
    ("eu\u00ad1", "eu\\xad1"),                                          # soft hyphen (< U+0100: \\xNN)
    ("\ufeffa\u2060b\u2061c\u2062d\u2063e\u2064f", "\\ufeffa\\u2060b\\u2061c\\u2062d\\u2063e\\u2064f"),
    ("a\u202eb\u2066c\u2069d\u200ee\u200ff", "a\\u202eb\\u2066c\\u2069d\\u200ee\\u200ff"),  # bidi, as before
    ("x\u180ey\u034fz\u3164w\ufe0fv", "x\\u180ey\\u034fz\\u3164w\\ufe0fv"),  # other invisible ones
    ("tag\U000e0041\U000e007f", "tag\\U000e0041\\U000e007f"),         # tag characters: 8 digits
    ("a\x1b[31mb\x85c\u2028d", "a\\x1b[31mb\\x85c\\u2028d"),         # controls, as before
    ("eu1.ksc.kaspersky.com", "eu1.ksc.kaspersky.com"),
    ("a\tb\x7f", "a\\x09b\\x7f"),
    ("naïve ünïcode 日本語 😀", "naïve ünïcode 日本語 😀"),            # visible text stays
    # space separators other than the ASCII space (break-it 7 E): a trailing ideographic or
    # no-break space must not read as the bare name
    ("eu1.ksc.kaspersky.com\u3000", "eu1.ksc.kaspersky.com\\u3000"),
    ("eu1.ksc.kaspersky.com\xa0", "eu1.ksc.kaspersky.com\\xa0"),
    ("a\u2009b\u202fc\u205fd\u1680e f", "a\\u2009b\\u202fc\\u205fd\\u1680e f"),
])
def test_escape_terminal(raw, shown):
    assert escape_terminal(raw) == shown


def test_escape_terminal_ascii_fast_path_keeps_the_text():
    s = "eu1.ksc.kaspersky.com is not a host name"
    assert escape_terminal(s) is s
    assert escape_terminal(None) == "" and escape_terminal(23101) == "23101"


@pytest.mark.parametrize("raw,text", [
    ("\u200beu1.ksc.kaspersky.com", "\\u200beu1.ksc.kaspersky.com"),
    ("eu\u00ad1", "eu\\u00ad1"),                  # above U+007F as \\uNNNN (\\xNN is a byte here)
    ("\ufeffx\u2060y", "\\ufeffx\\u2060y"),
    ("tag\U000e0041", "tag\\U000e0041"),
    ("\\u200b", "\\\\u200b"),                     # the text of a real backslash differs
])
def test_text_from_bytes(raw, text):
    assert text_from_bytes(raw.encode("utf-8")) == text


def test_every_space_separator_but_the_ascii_space_is_escaped():
    zs = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Zs"]
    assert " " in zs and len(zs) > 10
    assert [hex(ord(ch)) for ch in zs if bool(CONTROL.fullmatch(ch)) == (ch == " ")] == []


def test_every_format_character_is_escaped():
    cf = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf"]
    assert len(cf) > 150
    missed = [hex(ord(ch)) for ch in cf if not CONTROL.fullmatch(ch)
              or ch in escape_terminal(ch) or ch in text_from_bytes(ch.encode("utf-8"))]
    assert missed == []
    # and nothing visible is: letters, digits, punctuation, spaces, symbols of the BMP
    # (space separators other than the ASCII space are escaped too: Zs)
    visible = [hex(c) for c in range(0xA0, 0x10000) if unicodedata.category(chr(c))[0] in "LNPSZ"
               and unicodedata.category(chr(c)) not in ("Zl", "Zp", "Zs") and CONTROL.fullmatch(chr(c))
               and c not in (0x115F, 0x1160, 0x3164, 0xFFA0, 0x17B4, 0x17B5)]   # Hangul fillers, Khmer
    assert visible == []


def test_capture_name_with_zero_width_space():
    assert name_text("agent\u200b.pcap") == "agent\\u200b.pcap"


@pytest.fixture(scope="module")
def zwsp_capture(tmp_path_factory):
    """A TLS connection to 23101 whose SNI starts with a zero-width space."""
    p = tmp_path_factory.mktemp("zwsp") / "zwsp.pcap"
    hello = tls_record(22, client_hello(ZWSP_NAME.encode("utf-8"), big=False))
    p.write_bytes(pcap_bytes(tcp_session(("192.0.2.10", 50001), ("203.0.113.20", 23101), c_data=hello)))
    return p


def _run(*args):
    env = dict(os.environ, COLUMNS="400")
    return subprocess.run([sys.executable, "-m", "kscc_traffic", *args], capture_output=True, timeout=120, env=env)


def test_zero_width_space_in_every_output(zwsp_capture, tmp_path):
    r = _run("analyze", str(zwsp_capture), "-f", "jsonl")
    assert r.returncode == 1, r.stderr
    (row,) = [json.loads(line) for line in r.stdout.decode("utf-8").splitlines()]
    assert (row["sni"], row["server_name"], row["reason"]) == (ESCAPED, ESCAPED, "host_mismatch")
    assert row["detail"].startswith(ESCAPED + " is not a host name")

    r = _run("analyze", str(zwsp_capture), "-f", "csv")
    (cells,) = list(csv.DictReader(io.StringIO(r.stdout.decode("utf-8"))))
    assert (cells["sni"], cells["server_name"]) == (ESCAPED, ESCAPED)
    assert cells["detail"].startswith(ESCAPED + " is not a host name")

    r = _run("analyze", str(zwsp_capture))
    table = r.stdout.decode("utf-8")
    assert ESCAPED + " is not a host name" in table

    html = tmp_path / "r.html"
    r = _run("report", str(zwsp_capture), "--html", str(html))
    assert r.returncode == 1, r.stderr
    page = html.read_text("utf-8")
    assert ESCAPED + " is not a host name" in page

    for out in (table, page, r.stdout.decode("utf-8")):
        assert "\u200b" not in out


@pytest.mark.parametrize("raw, text", [
    (b"eu1\xc2\xa0ksc.kaspersky.com", "eu1\\xc2\\xa0ksc.kaspersky.com"),   # no-break space
    (b"eu1.ksc\xe2\x80\x8b.com", "eu1.ksc\\xe2\\x80\\x8b.com"),            # zero-width space
    (b"\xc2\x85ksc.com", "\\xc2\\x85ksc.com"),                             # C1 control (NEL)
    (b"a\\u00a0b", "a\\\\u00a0b"),                                         # the text "\u00a0" itself
])
def test_host_names_show_every_byte_above_0x7f_as_hex(raw, text):
    # newcomer 20 F12: an escaped invisible character showed as \u00a0, not its bytes as Zeek logs them
    from kscc_traffic.protocols.dns import host_text, text_from_bytes
    from kscc_traffic.protocols.http import split_host_port
    assert host_text(raw) == text
    assert split_host_port(text_from_bytes(raw + b":443")) == (text, 443)
