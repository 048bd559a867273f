"""A NOERROR answer with no address (NODATA) is judged by the question it answered (review 29).

Session 28 judged every NODATA answer for a needed name ``blocked`` when no lookup of that name
in the capture got an address, whatever was asked. Only an A question (or an AAAA one asked over
IPv6, by an agent that may have no IPv4) tells that the agent gets no address: an AAAA NODATA
asked over IPv4 is what every IPv4-only name answers (its A answer, cached, is not in the capture),
and an HTTPS/SVCB (type 65/64) or TXT NODATA asks for no address at all (macOS and browsers ask
HTTPS records beside A/AAAA). The flow's ``dns_asked`` (internal) holds the A / AAAA bits of the
questions its responses answered; whole-file, chunked and live readings agree, also when the A
question comes in a later response of the same flow (another chunk; the live session keeping
only the packets it needs).

Captures built here with scapy; addresses from the documentation ranges."""
from __future__ import annotations

import pytest
from scapy.layers.dns import DNS, DNSQR

from chunkcmp import assert_same, write
from kscc_traffic.classify import DNS_NO_ADDRESS
from kscc_traffic.inspect import DNS_ASKED_A, DNS_ASKED_AAAA, asked_bits
from test_dns_nodata_n28 import NAME, V4, V6, _dns, _filler, _lookup
from test_live_session import assert_live_same

HTTPS, SVCB, TXT = 65, 64, 16


def test_asked_bits():
    assert asked_bits([1, 28, 65, 16, -1]).tolist() == [DNS_ASKED_A, DNS_ASKED_AAAA, 0, 0, 0]


@pytest.mark.parametrize("qtype, ip", [("AAAA", V4), (HTTPS, V4), (HTTPS, V6), (SVCB, V6), (TXT, V4)])
def test_nodata_to_no_address_question_alone_stays_ok(tmp_path, monkeypatch, qtype, ip):
    recs = sum((_lookup(100.0 + 2 * i, qtype, 53020 + i, ip, qid=0x100 + i) for i in range(2)), [])
    path = write(tmp_path, recs + _filler(90.0, 120.0))
    w = assert_same(path, [4096])
    assert_live_same(path, monkeypatch, step=7)
    d = _dns(w)
    assert d.verdict.tolist() == ["ok", "ok"]
    assert d.detail.tolist() == ["", ""]


@pytest.mark.parametrize("qtype, ip, family, record", [
    ("A", V4, "IPv4", "A"), ("A", V6, "IPv4", "A"), ("AAAA", V6, "IPv6", "AAAA")])
def test_nodata_to_an_address_question_names_the_record(tmp_path, qtype, ip, family, record):
    path = write(tmp_path, _lookup(100.0, qtype, 53030, ip, qid=7))
    d = _dns(assert_same(path, [1024]))
    assert d.verdict.tolist() == ["blocked"]
    assert d.detail[0].startswith(f"{DNS_NO_ADDRESS}{NAME}: no lookup of it in the capture got an address (the "
                                  f"DNS server gives no {family} address for it: no {record} record, as it answers)")


def _same_flow(t, qtypes, ip=V4, port=53040):
    """Lookups of NAME from one source port (one flow), 3 s apart, each answered NODATA."""
    return sum((_lookup(t + 3 * i, q, port, ip, qid=0x200 + i) for i, q in enumerate(qtypes)), [])


@pytest.mark.parametrize("qtypes, verdict", [((HTTPS, "AAAA", "A"), "blocked"), ((HTTPS, "AAAA"), "ok"),
                                             (("A", HTTPS, HTTPS), "blocked")])
def test_the_a_question_later_in_the_flow_counts_in_chunks_and_live(tmp_path, monkeypatch, qtypes, verdict):
    # (the flow's later responses in other chunks; the live session keeps 2 packets a flow whole,
    # then only those that add to the DNS columns)
    path = write(tmp_path, _same_flow(100.0, qtypes) + _filler(90.0, 120.0))
    w = assert_same(path, [4096, 8192])
    assert_live_same(path, monkeypatch, step=5)
    d = _dns(w)
    assert d.verdict.tolist() == [verdict]


def _answers(t, qtypes, rcode, port=53050, ip=V4):
    """Lookups of NAME from one port (one flow), 0.3 s apart, each answered ``rcode`` with no
    address."""
    out = []
    for i, q in enumerate(qtypes):
        (tq, pq), (tr, pr) = _lookup(t + 0.3 * i, q, port, ip, qid=0x300 + i)
        pr[DNS].rcode = rcode
        out += [(tq, pq), (tr, pr)]
    return out


@pytest.mark.parametrize("first, last, rcode, verdict, detail", [
    # past the segments the live session keeps of every flow (streams.MAX_SEGMENTS), it keeps a
    # DNS response only for what it adds: the A question's NODATA decides (dns_asked) ...
    (HTTPS, "A", 0, "blocked", f"{DNS_NO_ADDRESS}{NAME}: "),
    (HTTPS, "AAAA", 0, "ok", ""),
    # ... and so does an error to another question than AAAA (dns_error_aaaa_only)
    ("AAAA", "A", 2, "blocked", f"DNS answer SERVFAIL for {NAME}; the agent needs this name"),
    ("AAAA", "AAAA", 2, "ok", f"DNS answer SERVFAIL for {NAME}: only its AAAA")])
def test_live_keeps_the_response_that_decides_past_its_kept_segments(tmp_path, monkeypatch, first, last, rcode,
                                                                     verdict, detail):
    path = write(tmp_path, _answers(100.0, [first] * 26 + [last], rcode) + _filler(99.0, 110.0, step=1.0))
    w = assert_same(path, [8192])
    assert_live_same(path, monkeypatch, step=9)
    d = _dns(w)
    assert d.verdict.tolist() == [verdict]
    assert d.detail[0].startswith(detail), d.detail[0]
