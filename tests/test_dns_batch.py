"""The columnar DNS reader (:mod:`kscc_traffic.protocols.dns_batch`) against the reference parser
(:func:`kscc_traffic.protocols.dns.parse_message` + :func:`~kscc_traffic.protocols.dns.resolved_names`),
message by message: built messages of every shape it takes or hands on, their mutations and cuts,
and the DNS datagrams of the shared corpus; then :func:`kscc_traffic.inspect._dns_messages` with and
without it."""
from __future__ import annotations

import random
import struct

import numpy as np
import pytest

from conftest import shared_corpus
from kscc_traffic import inspect as insp
from kscc_traffic.protocols import dns, dns_batch


def wire_name(name: str) -> bytes:
    out = b""
    for label in name.split("."):
        if label:
            raw = label.encode("latin-1")
            out += bytes([len(raw)]) + raw
    return out + b"\0"


def rr(owner: bytes, rtype: int, rdata: bytes, ttl: int = 300) -> bytes:
    return owner + struct.pack("!HHIH", rtype, 1, ttl, len(rdata)) + rdata


def message(qname: str, answers: list[bytes], *, tid: int = 7, response: bool = True, rcode: int = 0,
            qtype: int = 1, qd: int = 1, extra: bytes = b"") -> bytes:
    flags = (0x8180 if response else 0x0100) | rcode
    head = struct.pack("!HHHHHH", tid, flags, qd, len(answers), 0, 1 if extra else 0)
    q = b"".join(wire_name(qname) + struct.pack("!HH", qtype, 1) for _ in range(qd))
    return head + q + b"".join(answers) + extra


PTR = b"\xc0\x0c"
OPT = b"\0" + struct.pack("!HHIH", 41, 1232, 0, 0)


def reference(data: bytes):
    """(valid, is_response, rcode (responses), qname, qtype, pairs) as inspect reads them."""
    m = dns.parse_message(data)
    if m is None:
        return (False, False, 0, "", -1, [])
    q = m.questions[0] if m.questions else ("", -1)
    return (True, m.is_response, m.rcode if m.is_response else 0, q[0], q[1],
            dns.resolved_names(m) if m.is_response else [])


def batch_results(msgs: list[bytes]):
    ln = np.array([len(m) for m in msgs], np.int64)
    end = np.cumsum(ln)
    s = dns_batch.parse_simple(b"".join(msgs) + bytes(16), end - ln, end)
    out = []
    for i in range(len(msgs)):
        if not s.simple[i]:
            out.append(None)
            continue
        pairs = [(a, s.qname[i]) for a in s.pair_addr[s.pair_msg == i].tolist()]
        out.append((bool(s.valid[i]), bool(s.is_response[i]) if s.valid[i] else False,
                    int(s.rcode[i]) if s.is_response[i] else 0,
                    s.qname[i], int(s.qtype[i]), pairs))
    return out


def compare(msgs: list[bytes]) -> int:
    """Assert every message read by the batch equals the reference; the number it read."""
    got = batch_results(msgs)
    n = 0
    for m, g in zip(msgs, got):
        if g is None:
            continue
        n += 1
        assert g == reference(m), m.hex()
    return n


A1, A2 = bytes([203, 0, 113, 10]), bytes([203, 0, 113, 11])
AAAA = bytes.fromhex("20010db8000000000000000000000001")


def test_common_shapes_are_read_as_the_reference_reads_them():
    msgs = [
        message("eu1.ksc.kaspersky.com", [], response=False),                         # query
        message("eu1.ksc.kaspersky.com", [], response=False, extra=OPT),              # query + EDNS
        message("eu1.ksc.kaspersky.com", [rr(PTR, 1, A1), rr(PTR, 1, A2)]),           # compressed
        message("EU1.Ksc.Kaspersky.COM", [rr(wire_name("EU1.Ksc.Kaspersky.COM"), 1, A1)]),  # uncompressed
        message("host-1.example_x.net", [rr(PTR, 28, AAAA), rr(PTR, 1, A1), rr(PTR, 1, A1)]),  # dup address
        message("a.example", [rr(PTR, 1, b"\1\2\3")]),                                # A with 3 bytes
        message("a.example", [rr(PTR, 16, b"\x05hello"), rr(PTR, 1, A2)]),             # TXT then A
        message("a.example", [], rcode=3),                                             # NXDOMAIN
        message("a.example", [], rcode=2, qtype=28),                                   # SERVFAIL, AAAA
        message("a.example", [rr(PTR, 1, A1)], response=False),                        # a query with an answer
        b"\0" * 11,                                                                    # too short
    ]
    assert compare(msgs) == len(msgs)
    got = batch_results(msgs)
    assert got[2][5] == [("203.0.113.10", "eu1.ksc.kaspersky.com"), ("203.0.113.11", "eu1.ksc.kaspersky.com")]
    assert got[3][5] == [("203.0.113.10", "EU1.Ksc.Kaspersky.COM")]
    assert got[4][5] == [("2001:db8::1", "host-1.example_x.net"), ("203.0.113.10", "host-1.example_x.net")]
    assert got[5][5] == [] and got[6][5] == [("203.0.113.11", "a.example")]
    assert got[7][2] == 3 and got[10][0] is False


def test_other_shapes_are_left_to_the_reference():
    cname = message("www.example", [rr(PTR, 5, wire_name("cdn.example")), rr(wire_name("cdn.example"), 1, A1)])
    msgs = [
        cname,                                                                   # CNAME chain
        message("a.example", [rr(wire_name("b.example"), 1, A1)]),               # another owner
        message("a.example", [rr(b"\xc0\x0e", 1, A1)]),                          # pointer elsewhere
        message("caf\xe9.example", [rr(PTR, 1, A1)]),                            # byte > 0x7F
        message("a b.example", [rr(PTR, 1, A1)]),                                # space
        message("a.example", [], qd=2),                                          # two questions
        message("a.example", [], qd=0),                                          # no question
        message("", [rr(PTR, 1, A1)]),                                           # the root
        message("a.example", [rr(PTR, 1, A1)])[:-2],                             # answer cut
        message("a.example", [])[:-3],                                           # question cut
        message("a.example", [rr(PTR, 1, A1)] * (dns_batch.MAX_ANSWERS + 1)),    # many answers
    ]
    assert compare(msgs) == 0
    # (the reference still reads them: the CNAME's address is named after the question)
    assert reference(cname)[5] == [("203.0.113.10", "www.example")]


def test_mutated_and_cut_messages_agree_with_the_reference():
    rng = random.Random(25)
    base = [
        message("eu1.ksc.kaspersky.com", [rr(PTR, 1, A1), rr(PTR, 28, AAAA)], extra=OPT),
        message("ocsp.digicert.com", [rr(wire_name("ocsp.digicert.com"), 1, A2)]),
        message("ksn-a.kaspersky.com", [], response=False, extra=OPT),
        message("dnl-03.geo.kaspersky.com", [rr(PTR, 5, wire_name("x.cdn.example")),
                                             rr(b"\xc0\x2a", 1, A1)]),
    ]
    msgs = []
    for _ in range(3000):
        m = bytearray(rng.choice(base))
        for _ in range(rng.randint(0, 3)):
            m[rng.randrange(len(m))] = rng.choice((0, 1, 4, 5, 0x0C, 0x1C, 0xC0, 0x3F, 0x80, 0xFF,
                                                   rng.randrange(256)))
        if rng.random() < 0.3:
            m = m[:rng.randrange(len(m) + 1)]
        msgs.append(bytes(m))
    read = compare(msgs)
    assert 1000 < read < len(msgs)      # (both kinds are exercised)


def test_corpus_dns_datagrams_agree_with_the_reference():
    from kscc_traffic.capture.files import read_frames
    from kscc_traffic.capture.decode import decode
    msgs = []
    for path in sorted(p for sub in ("public", "ksc") for p in shared_corpus(sub).rglob("*.pcap*")):
        try:
            pk = decode(read_frames(path))
        except Exception:
            continue
        c = pk.cols
        rows = np.flatnonzero((c["proto"] == 17) & ((c["sport"] == 53) | (c["dport"] == 53))
                              & (c["pl_cap"] > 0) & (c["pl_off"] >= 0))
        b = bytes(pk.buf)
        msgs += [b[int(c["pl_off"][i]):int(c["pl_off"][i]) + int(c["pl_cap"][i])] for i in rows.tolist()]
    if not msgs:
        pytest.skip("no DNS datagrams in the corpus")
    assert compare(msgs) > len(msgs) // 2


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_dns_messages_equal_with_and_without_the_batch(monkeypatch, seed):
    """inspect._dns_messages gives the same per-message fields and pairs either way, on a packet
    buffer holding every kind above (ids differ, as in a capture); seed 3: queries only (no
    pair at all)."""
    rng = random.Random(seed)
    kinds = [message("eu1.ksc.kaspersky.com", [], response=False)] if seed == 3 else [
        message("eu1.ksc.kaspersky.com", [], response=False),
        message("eu1.ksc.kaspersky.com", [rr(PTR, 1, A1), rr(PTR, 1, A2)]),
        message("www.example", [rr(PTR, 5, wire_name("cdn.example")), rr(wire_name("cdn.example"), 1, A1)]),
        message("caf\xe9.example", [rr(PTR, 1, A2)]),
        message("a.example", [], rcode=3, qtype=28),
        b"\1\2\3",
    ]
    msgs = [struct.pack("!H", rng.randrange(65536)) + rng.choice(kinds)[2:] for _ in range(300)]

    class P:                         # (what _dns_messages reads of a Packets)
        pass
    p = P()
    p.buf = b"".join(msgs)
    ln = np.array([len(m) for m in msgs], np.int64)
    p.cols = {"pl_off": np.cumsum(ln) - ln, "pl_cap": ln}
    rows = np.arange(len(msgs))
    got = insp._dns_messages(p, rows)
    monkeypatch.setattr(insp, "DNS_BATCH", False)
    want = insp._dns_messages(p, rows)
    for f in ("kid", "valid", "is_resp", "has_q", "qname", "rc", "n_res", "addr_text", "qtype"):
        assert getattr(got, f).tolist() == getattr(want, f).tolist(), f
    assert (got.addrs, got.addr_flat, got.name_flat) == (want.addrs, want.addr_flat, want.name_flat)
    assert (sum(got.n_res) > 0 and got.valid.sum() < len(got.valid)) or (seed == 3 and not got.addr_flat)
