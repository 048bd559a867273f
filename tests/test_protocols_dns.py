"""DNS parser: messages built with scapy and by hand (compression, loops, cuts, TCP framing)."""
from __future__ import annotations

import struct
import time

from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.dns import DNS, DNSQR, DNSRR

from kscc_traffic.protocols.dns import (
    TYPE_A,
    TYPE_AAAA,
    TYPE_CNAME,
    parse_message,
    parse_tcp_stream,
    resolved_names,
    text_from_bytes,
)


def name(s: str) -> bytes:
    out = b""
    for lab in s.split("."):
        out += bytes([len(lab)]) + lab.encode()
    return out + b"\x00"


def header(ident=0x1234, flags=0x8180, qd=1, an=0, ns=0, ar=0):
    return struct.pack("!HHHHHH", ident, flags, qd, an, ns, ar)


def rr(owner: bytes, rtype: int, rdata: bytes, ttl=300) -> bytes:
    return owner + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


def cname_chain_msg():
    return DNS(id=7, qr=1, rd=1, ra=1, qd=[DNSQR(qname="ksc.example.com", qtype="A")], an=[
        DNSRR(rrname="ksc.example.com", type="CNAME", rdata="edge.cdn.example.net", ttl=30),
        DNSRR(rrname="edge.cdn.example.net", type="CNAME", rdata="e1.cdn.example.net", ttl=30),
        DNSRR(rrname="e1.cdn.example.net", type="A", rdata="192.0.2.7", ttl=60),
        DNSRR(rrname="e1.cdn.example.net", type="AAAA", rdata="2001:db8::7", ttl=60),
    ])


def test_scapy_cname_chain_plain_and_compressed():
    pkt = cname_chain_msg()
    for raw in (bytes(pkt), bytes(pkt.compress())):
        msg = parse_message(raw)
        assert msg is not None and msg.is_response and msg.id == 7 and msg.rcode == 0
        assert not msg.partial and not msg.truncated
        assert msg.questions == [("ksc.example.com", TYPE_A)]
        assert [r.rtype for r in msg.answers] == [TYPE_CNAME, TYPE_CNAME, TYPE_A, TYPE_AAAA]
        assert msg.answers[0].value == "edge.cdn.example.net"
        assert msg.answers[2].value == "192.0.2.7" and msg.answers[2].ttl == 60
        assert resolved_names(msg) == [("192.0.2.7", "ksc.example.com"),
                                       ("2001:db8::7", "ksc.example.com")]


def test_hand_built_compressed_cname_target_and_owner():
    # question "api.example.org" at offset 12; the CNAME rdata is "lb" + pointer to
    # "example.org" inside the question; the A records' owners point into that rdata
    off_q = 12
    body = header(an=3) + name("api.example.org") + struct.pack("!HH", 1, 1)
    lb_rdata_off = len(body) + 2 + 10
    body += rr(struct.pack("!H", 0xC000 | off_q), TYPE_CNAME,
               b"\x02lb" + struct.pack("!H", 0xC000 | (off_q + 4)))
    body += rr(struct.pack("!H", 0xC000 | lb_rdata_off), TYPE_A, bytes([198, 51, 100, 9]))
    body += rr(struct.pack("!H", 0xC000 | lb_rdata_off), TYPE_A, bytes([198, 51, 100, 10]))
    m = parse_message(body)
    assert m.answers[0].value == "lb.example.org"
    assert m.answers[1].name == "lb.example.org"
    assert resolved_names(m) == [("198.51.100.9", "api.example.org"),
                                 ("198.51.100.10", "api.example.org")]


def _heads_and_loop(with_question: bool) -> bytes:
    body = header(qd=int(with_question), an=5)
    if with_question:
        body += name("q.example") + struct.pack("!HH", 1, 1)
    body += rr(name("Alias.Example"), TYPE_CNAME, name("real.example"))
    body += rr(name("real.example"), TYPE_A, bytes([10, 0, 0, 1]))
    body += rr(name("x.loop"), TYPE_CNAME, name("y.loop"))
    body += rr(name("y.loop"), TYPE_CNAME, name("x.loop"))
    body += rr(name("y.loop"), TYPE_A, bytes([10, 0, 0, 2]))
    return body


def test_chain_heads_and_cname_loop_without_a_question():
    m = parse_message(_heads_and_loop(False))
    assert len(m.answers) == 5
    got = resolved_names(m)
    assert ("10.0.0.1", "Alias.Example") in got
    assert ("10.0.0.2", "y.loop") in got and len(got) == 2


def test_records_that_do_not_answer_the_question_name_nothing():
    """A stub resolver (glibc's getanswer_r) skips address records whose chain does not reach
    the name asked: none of these answer q.example."""
    m = parse_message(_heads_and_loop(True))
    assert len(m.answers) == 5 and resolved_names(m) == []


def test_an_address_for_another_name_does_not_name_the_flow_whatever_its_place():
    """F2 of a break-it pass: the answer to eu1.ksc.kaspersky.com also holds
    evil.example.net A <the same address>; the name asked wins, before or after it."""
    q = name("eu1.ksc.kaspersky.com")
    for evil_first in (False, True):
        recs = [rr(b"\xc0\x0c", TYPE_A, bytes([203, 0, 113, 10])),
                rr(name("evil.example.net"), TYPE_A, bytes([203, 0, 113, 10]))]
        if evil_first:
            recs.reverse()
        m = parse_message(header(an=2) + q + struct.pack("!HH", 1, 1) + b"".join(recs))
        assert resolved_names(m) == [("203.0.113.10", "eu1.ksc.kaspersky.com")]


def test_https_record_between_a_records():
    q = name("ksc.example.com")
    svcb = struct.pack("!H", 1) + b"\x00" + struct.pack("!HH", 1, 3) + b"\x02h2"
    body = header(an=3) + q + struct.pack("!HH", 1, 1)
    body += rr(b"\xc0\x0c", TYPE_A, bytes([203, 0, 113, 1]))
    body += rr(b"\xc0\x0c", 65, svcb)
    body += rr(b"\xc0\x0c", TYPE_A, bytes([203, 0, 113, 2]))
    m = parse_message(body)
    assert [r.rtype for r in m.answers] == [TYPE_A, 65, TYPE_A]
    assert m.answers[1].value == svcb
    assert resolved_names(m) == [("203.0.113.1", "ksc.example.com"),
                                 ("203.0.113.2", "ksc.example.com")]


def test_compression_loop_rejected_without_hang():
    body = header(an=2) + name("ok.example") + struct.pack("!HH", 1, 1)
    loop_at = len(body)
    # owner name: label "a" then a pointer back to itself -> a.a.a.a... loop
    body += b"\x01a" + struct.pack("!H", 0xC000 | loop_at) + struct.pack("!HHIH", 1, 1, 5, 4)
    body += bytes([192, 0, 2, 1])
    body += rr(b"\xc0\x0c", TYPE_A, bytes([192, 0, 2, 2]))
    t = time.perf_counter()
    m = parse_message(body)
    assert time.perf_counter() - t < 0.5
    assert m.bad_names == 1
    assert [r.value for r in m.answers] == ["192.0.2.2"]
    # a pointer to itself and a forward pointer
    for ptr in (12, 40):
        bad = header(qd=1) + struct.pack("!H", 0xC000 | ptr) + struct.pack("!HH", 1, 1)
        m = parse_message(bad)
        assert m is not None and m.questions == [] and m.bad_names == 1


def test_pure_pointer_chain_hop_limit():
    # the rdata of an unknown-type record holds 100 pointers, each to the previous one, the first
    # to the question name; an owner name entering that chain at its end needs > 64 hops
    body = bytearray(header(qd=1, an=2) + name("deep.example") + struct.pack("!HH", 1, 1))
    chain_start = len(body) + 1 + 10
    chain = bytearray()
    prev = 12
    for _ in range(100):
        here = chain_start + len(chain)
        chain += struct.pack("!H", 0xC000 | prev)
        prev = here
    body += rr(b"\x00", 99, bytes(chain))
    body += rr(struct.pack("!H", 0xC000 | prev), TYPE_A, bytes([1, 2, 3, 4]))
    body += rr(struct.pack("!H", 0xC000 | (chain_start + 2 * 60)), TYPE_A, bytes([1, 2, 3, 5]))
    # again after the shallow entry has been read (the per-message suffix cache must still
    # count the hops behind a cached suffix)
    body += rr(struct.pack("!H", 0xC000 | prev), TYPE_A, bytes([1, 2, 3, 6]))
    body[7] = 4
    m = parse_message(bytes(body))
    assert m.bad_names == 2 and not m.partial
    assert [(r.name, r.value) for r in m.answers[1:]] == [("deep.example", "1.2.3.5")]


def test_truncated_message_keeps_whole_records():
    raw = bytes(cname_chain_msg().compress())
    full = parse_message(raw)
    for cut in range(12, len(raw)):
        m = parse_message(raw[:cut])
        assert m.partial
        assert m.answers == full.answers[: len(m.answers)]
    # cut in the middle of the AAAA rdata: the CNAMEs and the A survive
    m = parse_message(raw[:-3])
    assert [r.rtype for r in m.answers] == [TYPE_CNAME, TYPE_CNAME, TYPE_A]
    assert resolved_names(m) == [("192.0.2.7", "ksc.example.com")]
    assert parse_message(raw[:11]) is None


def test_tcp_stream_two_messages_split_anywhere():
    q = DNS(id=1, rd=1, qd=[DNSQR(qname="ksc.example.com", qtype="AAAA")])
    a = cname_chain_msg()
    stream = b"".join(struct.pack("!H", len(bytes(m))) + bytes(m) for m in (q, a))
    msgs = parse_tcp_stream(stream)
    assert [m.id for m in msgs] == [1, 7]
    assert not msgs[0].is_response and msgs[1].is_response
    assert resolved_names(msgs[0]) == []
    # the caller concatenates segments; any cut gives every whole message + a partial last one
    for cut in range(len(stream) + 1):
        got = parse_tcp_stream(stream[:cut])
        whole = [m for m in got if not m.partial]
        assert [m.id for m in whole] == [1, 7][: len(whole)]
        assert all(not m.partial for m in got[:-1])
    assert parse_tcp_stream(stream + b"\x00") == msgs


def test_name_text_escaping():
    body = header(qd=1) + b"\x07ksc.bad\x02x\xff\x00" + struct.pack("!HH", 1, 1)
    m = parse_message(body)
    assert m.questions == [("ksc\\.bad.x\\xff", 1)]
    assert text_from_bytes(b"a\\b\x01") == "a\\\\b\\x01"
    root = parse_message(header(qd=1) + b"\x00" + struct.pack("!HH", 2, 1))
    assert root.questions == [(".", 2)]


def test_name_text_escapes_c1_and_bidi_unambiguously():
    # a right-to-left override would show "eu1.ksc.kaspersky.com\u202emoc.live" spoofed in a
    # spreadsheet; C1 controls act as terminal controls (NEL, CSI)
    assert text_from_bytes("ok\u202emoc.lave".encode()) == "ok\\u202emoc.lave"
    assert text_from_bytes("a\u2066b\u2028c\u200fd\u061ce".encode()) == "a\\u2066b\\u2028c\\u200fd\\u061ce"
    assert text_from_bytes("x\x85y\x9bz".encode()) == "x\\u0085y\\u009bz"
    # the byte 0x85 (not UTF-8) and the character U+0085 stay different texts
    assert text_from_bytes(b"x\x85") == "x\\x85" != text_from_bytes("x\x85".encode())
    assert text_from_bytes("é.kaspersky.com".encode()) == "é.kaspersky.com"     # letters stay


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_raise(data):
    for d in (data, header(qd=2, an=3, ns=1, ar=1) + data):
        m = parse_message(d)
        resolved_names(m)
    parse_tcp_stream(data)


_BASE = bytes(cname_chain_msg().compress())


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_message_never_raises(d):
    base = bytearray(_BASE)
    for _ in range(d.draw(st.integers(0, 6))):
        i = d.draw(st.integers(0, len(base) - 1))
        base[i] = d.draw(st.integers(0, 255))
    m = parse_message(bytes(base[: d.draw(st.integers(0, len(base)))]))
    for a, n in resolved_names(m):
        assert isinstance(a, str) and isinstance(n, str)
