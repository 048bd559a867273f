"""Break-it 32 findings (captures built with scapy here, no binary files).

F1: a server's RST that carries text after the server had answered (RFC 1122 §4.2.2.12, a
firewall's "Connection reset by policy"): Wireshark dissects such a payload as ``tcp.reset_cause``
text, with no ``tcp.payload``, so the tshark engine took the RST's bytes for bytes the capture
lacks and warned "1 IP packet captured shorter than its IP length says … (cut by the capturing
tool without saying so …)" about a capture in which nothing was cut; the builtin engine gives no
such line. Both engines now give the same rows and the same (no) warning.

F2: a DNS answer to the agent's A question whose answer record cannot be read (its owner name a
compression pointer to itself or pointing forward, a reserved 0x40 label type, a record running
past the message's end: the malformed inputs of DNS parser bug reports) was judged as the
server's NODATA, "the DNS server gives no IPv4 address for it: no A record, as it answers",
sending the reader to the DNS zone though the server did send an A record; a resolver drops such
an answer as malformed. The verdict stays blocked/rejected (the agent gets no address); the
detail now says the answer was malformed. A real NODATA keeps its text.
"""
from __future__ import annotations

import shutil
import struct

import pytest

pytest.importorskip("scapy")

from scapy.layers.inet import IP, TCP, UDP  # noqa: E402

from chunkcmp import RULES, assert_same, write  # noqa: E402
from kscc_traffic.analyze import analyze_file  # noqa: E402
from pcapbuild import eth  # noqa: E402
from test_decode_more_encaps import client_hello, server_hello  # noqa: E402

HAVE_TSHARK = shutil.which("tshark") is not None
AGENT, CLOUD = "192.0.2.10", "203.0.113.10"


def _rst_after_answer(tmp_path, text: bytes):
    hello, answer = client_hello("eu1.ksc.kaspersky.com"), server_hello()

    def c(t, load=b"", **kw):
        return t, bytes(eth(IP(src=AGENT, dst=CLOUD) / TCP(sport=50000, dport=23100, **kw) / load))

    def s(t, load=b"", **kw):
        return t, bytes(eth(IP(src=CLOUD, dst=AGENT) / TCP(sport=23100, dport=50000, **kw) / load))
    recs = [c(1.0, flags="S", seq=999), s(1.01, flags="SA", seq=4999, ack=1000),
            c(1.02, flags="A", seq=1000, ack=5000), c(1.03, flags="PA", seq=1000, ack=5000, load=hello),
            s(1.04, flags="PA", seq=5000, ack=1000 + len(hello), load=answer),
            s(1.05, flags="R", seq=5000 + len(answer), load=text)]
    return write(tmp_path, recs, name="rst_text_after_answer.pcap")


COLS = ["conn_state", "history", "orig_bytes", "resp_bytes", "payload_cut", "verdict", "reason", "detail"]
# (t: the reset's text at the server's current number, Zeek's T, session 61)
WANT = ("RSTR", "ShADdrt", len(client_hello("eu1.ksc.kaspersky.com")), len(server_hello()), False,
        "blocked", "tls_failed",
        "TLS handshake aborted: the server reset the connection (RST, RSTR) after its own answer to the "
        "ClientHello, before the client's next flight")


@pytest.mark.parametrize("text", [b"Connection reset by policy <b>deny</b>\x1b[31m", b"\xff\xfe\x00 reset" * 20])
def test_rst_text_is_no_cut_packet_either_engine(tmp_path, text):
    """F1: the RST's text is neither data nor a cut packet: no 'captured shorter' warning (it
    failed under the tshark engine on 649be23), the same row with both engines."""
    path = _rst_after_answer(tmp_path, text)
    b = analyze_file(path, RULES)
    assert len(b.flows) == 1
    assert tuple(b.flows.iloc[0][k] for k in COLS) == WANT
    assert b.flows.iloc[0]["sni"] == "eu1.ksc.kaspersky.com"
    assert not [w for w in b.warnings if "captured shorter" in w], b.warnings
    if not HAVE_TSHARK:
        pytest.skip("tshark not installed: the tshark engine's half not run")
    t = analyze_file(path, RULES, "tshark")
    assert len(t.flows) == 1
    assert tuple(t.flows.iloc[0][k] for k in COLS) == WANT
    assert t.flows.iloc[0]["sni"] == "eu1.ksc.kaspersky.com"
    assert not [w for w in t.warnings if "captured shorter" in w], t.warnings
    assert t.warnings == b.warnings


# ------------------------------------------------------------------------------ finding 2
QNAME = b"\x03eu1\x03ksc\x09kaspersky\x03com\x00"
#: the answer record's offset: header (12) + question (name + type + class)
AN_AT = 12 + len(QNAME) + 4


def _dns_exchange(tmp_path, answer_owner: bytes | None, name: str, ancount: int = 1, rdata_len: int = 4):
    """The agent's A query for eu1.ksc.kaspersky.com and its NOERROR response with one A record
    203.0.113.10 whose owner name is ``answer_owner`` (None: no answer record, a real NODATA)."""
    q = struct.pack("!HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0) + QNAME + struct.pack("!HH", 1, 1)
    r = struct.pack("!HHHHHH", 0x4242, 0x8180, 1, ancount if answer_owner is not None else 0, 0, 0) \
        + QNAME + struct.pack("!HH", 1, 1)
    if answer_owner is not None:
        r += answer_owner + struct.pack("!HHIH", 1, 1, 60, rdata_len) + bytes([203, 0, 113, 10])
    recs = [(5.0, bytes(eth(IP(src=AGENT, dst="198.51.100.53") / UDP(sport=40000, dport=53) / q))),
            (5.01, bytes(eth(IP(src="198.51.100.53", dst=AGENT) / UDP(sport=53, dport=40000) / r)))]
    return write(tmp_path, recs, name=name)


MALFORMED = ("DNS answer NOERROR with no address for eu1.ksc.kaspersky.com: no lookup of it in the capture got "
             "an address: the answer is malformed, records in it could not be read (")
NODATA = ("DNS answer NOERROR with no address for eu1.ksc.kaspersky.com: no lookup of it in the capture got an "
          "address (the DNS server gives no IPv4 address for it: no A record, as it answers)")


@pytest.mark.parametrize("owner, ancount, rdata_len", [
    (struct.pack("!H", 0xC000 | AN_AT), 1, 4),          # a pointer to itself (a loop)
    (struct.pack("!H", 0xC000 | (AN_AT + 2)), 1, 4),    # a pointer forward
    (b"\x43abc\x00", 1, 4),                            # a reserved label type (0x40)
    (b"\xc0\x0c", 1, 40),                              # RDLENGTH past the message's end
], ids=["pointer-loop", "pointer-forward", "label-0x40", "rdata-past-end"])
def test_malformed_dns_answer_is_not_nodata(tmp_path, owner, ancount, rdata_len):
    """F2: blocked/rejected as before, but the detail says the answer was malformed, not that the
    server has no A record (it said the latter on 649be23); whole, in chunks and with tshark."""
    path = _dns_exchange(tmp_path, owner, "malformed_dns.pcap", ancount, rdata_len)
    w = assert_same(path, [80, 100])
    assert len(w) == 1
    r = w.iloc[0]
    assert (r["query"], r["dns_rcode"], r["dns_answers"], r["verdict"], r["reason"]) == \
        ("eu1.ksc.kaspersky.com", "NOERROR", "", "blocked", "rejected")
    assert r["detail"].startswith(MALFORMED), r["detail"]
    assert "no A record" not in r["detail"]
    if HAVE_TSHARK:
        t = analyze_file(path, RULES, "tshark").flows.iloc[0]
        assert (t["verdict"], t["reason"], t["detail"]) == (r["verdict"], r["reason"], r["detail"])


def test_real_nodata_keeps_its_detail(tmp_path):
    """F2's control: a NOERROR answer without any answer record is the server's NODATA, said so."""
    path = _dns_exchange(tmp_path, None, "nodata.pcap")
    w = assert_same(path, [80])
    r = w.iloc[0]
    assert (r["verdict"], r["reason"]) == ("blocked", "rejected")
    assert r["detail"].startswith(NODATA), r["detail"]


def test_well_formed_answer_is_ok(tmp_path):
    """F2's control: the same answer with its owner a pointer to the question name resolves."""
    path = _dns_exchange(tmp_path, b"\xc0\x0c", "answered.pcap")
    r = assert_same(path, [80]).iloc[0]
    assert (r["dns_answers"], r["verdict"], r["reason"], r["detail"]) == ("203.0.113.10", "ok", "", "")
