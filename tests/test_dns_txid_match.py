"""A DNS response counts as an answer only when it matches a query of its flow by transaction ID
and question (name case-insensitively, 0x20 case randomisation, and type), as a stub resolver
accepts it and Wireshark/Zeek pair them (break-it 18 F3: a forwarder answering with ID 0,
AdguardTeam/dnsproxy#402, dnscrypt-proxy#1178, made DNS ``ok``; a wrong-ID NXDOMAIN was
``rejected``; an answer to another question named later flows). Over UDP and TCP, the same whole
and in chunks and with the tshark engine."""
from __future__ import annotations

import struct

import pandas as pd
import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR

from chunkcmp import RULES, assert_same, write
from kscc_traffic.analyze import analyze_file
from kscc_traffic.inspect import DNS_MATCH_PACKETS
from pcapbuild import CLIENT_MAC, SERVER_MAC, tcp_session, udp

C, RES, ADDR = "192.0.2.10", "203.0.113.53", "203.0.113.10"
NAME = "eu1.ksc.kaspersky.com"
TAIL = ("a resolver or DNS proxy answering with the wrong transaction ID, or for another question "
        "(the client drops such answers)")


def _q(name, txid, qtype="A"):
    return bytes(DNS(id=txid, rd=1, qd=DNSQR(qname=name, qtype=qtype)))


def _r(name, txid, rcode=0, addr=ADDR, owner=None):
    an = [DNSRR(rrname=owner or name, type="A", rdata=addr, ttl=60)] if addr else []
    return bytes(DNS(id=txid, qr=1, rd=1, ra=1, rcode=rcode, qd=DNSQR(qname=name), an=an))


def _lookup(port, pairs, t=1000.0):
    """UDP datagrams of client port ``port``: (query bytes, response bytes) pairs, 5 s apart."""
    out = []
    for q, r in pairs:
        out.append(udp((C, port), (RES, 53), q, t=t))
        if r is not None:
            out.append(udp((RES, 53), (C, port), r, t=t + 0.001, src_mac=SERVER_MAC, dst_mac=CLIENT_MAC))
        t += 5
    return out


def _connect(t, port=50100):
    """A TCP connection to ADDR:23101 (SYN, SYN-ACK, ACK, no data)."""
    return tcp_session((C, port), (ADDR, 23101), t0=t)


def _flows(path):
    return analyze_file(path, RULES).flows.sort_values("ts_ns", kind="stable").reset_index(drop=True)


def test_a_forwarder_answering_with_id_0_is_no_answer(tmp_path):
    recs = _lookup(43100, [(_q(NAME, 0xD1E3), _r(NAME, 0)), (_q(NAME, 0x5A5A), _r(NAME, 0))])
    path = write(tmp_path, recs, "id0.pcap")
    (r,) = _flows(path).to_dict("records")
    assert (r["dns_rcode"], r["dns_answers"]) == ("", "")
    assert (r["verdict"], r["reason"]) == ("blocked", "no_answer")
    assert r["detail"] == (
        "DNS query without an answer the client accepts: 2 responses matching no query of the flow (the "
        "first: ID 0x0000 for eu1.ksc.kaspersky.com A, a transaction ID no query had; asked: ID 0xd1e3 for "
        "eu1.ksc.kaspersky.com A, ID 0x5a5a for eu1.ksc.kaspersky.com A): " + TAIL)
    assert_same(path, [200, 400])


def test_a_wrong_id_nxdomain_is_not_rejected_and_names_nothing(tmp_path):
    recs = _lookup(43101, [(_q(NAME, 7), _r(NAME, 9, rcode=3, addr=None))])
    recs += _lookup(43102, [(_q(NAME, 8), _r("evil.example", 8))], t=1002.0)
    recs += _connect(1003.0)
    path = write(tmp_path, sorted(recs, key=lambda x: x[0]), "wrong.pcap")
    fl = _flows(path)
    nx, other, tcp = fl.to_dict("records")
    assert (nx["dns_rcode"], nx["verdict"], nx["reason"]) == ("", "blocked", "no_answer")
    assert "1 response matching no query of the flow (the first: ID 0x0009 for eu1.ksc.kaspersky.com A, " \
           "a transaction ID no query had; asked: ID 0x0007 for eu1.ksc.kaspersky.com A)" in nx["detail"]
    assert (other["dns_answers"], other["verdict"], other["reason"]) == ("", "blocked", "no_answer")
    assert "(the first: ID 0x0008 for evil.example A, another question than asked; asked: ID 0x0008 for " \
           "eu1.ksc.kaspersky.com A)" in other["detail"]
    # the answer for evil.example names nothing: the connection to its address is not evil.example's
    assert tcp["server_name"] == "" and tcp["reason"] != "host_mismatch"
    assert_same(path, [300, 700])


@pytest.mark.parametrize("asked", ["eU1.KsC.kasPersky.COM", NAME])
def test_matching_answers_still_count_case_randomised_too(tmp_path, asked):
    """0x20: the client asks in mixed case, the resolver answers in the case asked (or in
    another: the name is compared case-insensitively); a wrong-ID copy beside it changes nothing."""
    recs = _lookup(43103, [(_q(asked, 0x1234), _r(NAME, 0x1234))])
    recs.append(udp((RES, 53), (C, 43103), _r(NAME, 0), t=1000.002, src_mac=SERVER_MAC, dst_mac=CLIENT_MAC))
    recs += _connect(1001.0)
    path = write(tmp_path, sorted(recs, key=lambda x: x[0]), "ok.pcap")
    d, tcp = _flows(path).to_dict("records")
    assert (d["dns_rcode"], d["dns_answers"], d["verdict"], d["detail"]) == ("NOERROR", ADDR, "ok", "")
    assert tcp["server_name"] == NAME
    assert_same(path, [300])


def test_a_response_to_the_other_type_does_not_match(tmp_path):
    recs = _lookup(43104, [(_q(NAME, 5, qtype="AAAA"), _r(NAME, 5))])
    (r,) = _flows(write(tmp_path, recs, "type.pcap")).to_dict("records")
    assert r["reason"] == "no_answer" and "ID 0x0005 for eu1.ksc.kaspersky.com A, another question" in r["detail"]


def test_answers_alone_and_late_answers_are_read_as_before(tmp_path):
    """A capture of the answers alone (no query to match) names what it can; in a flow of more
    than DNS_MATCH_PACKETS packets (one source port for everything) the responses after its
    first DNS_MATCH_PACKETS packets count as they come, those among them are matched."""
    only = [udp((RES, 53), (C, 43105), _r(NAME, 0), t=1000.0, src_mac=SERVER_MAC, dst_mac=CLIENT_MAC)]
    (r,) = _flows(write(tmp_path, only, "only.pcap")).to_dict("records")
    assert (r["dns_answers"], r["detail"]) == (ADDR, "")
    n = DNS_MATCH_PACKETS // 2
    late = _lookup(43106, [(_q(NAME, k + 1), _r(NAME, 0)) for k in range(n)]
                   + [(_q(NAME, 99), _r(NAME, 0, addr="203.0.113.99"))])
    path = write(tmp_path, late, "late.pcap")
    (r,) = _flows(path).to_dict("records")
    # (the last answer, the 10th packet, counts; the first four were strays)
    assert (r["dns_rcode"], r["dns_answers"], r["verdict"], r["detail"]) == ("NOERROR", "203.0.113.99", "ok", "")
    assert_same(path, [200, 400])
    good = _lookup(43107, [(_q(NAME, k + 1), _r(NAME, k + 1)) for k in range(n + 1)])
    path = write(tmp_path, good, "good.pcap")
    (r,) = _flows(path).to_dict("records")
    assert (r["dns_rcode"], r["dns_answers"], r["verdict"]) == ("NOERROR", ADDR, "ok")
    assert_same(path, [200, 400])


def _tcp_msg(m: bytes) -> bytes:
    return struct.pack("!H", len(m)) + m


def test_dns_over_tcp_too(tmp_path):
    recs = tcp_session((C, 51000), (RES, 53), t0=1000.0, c_data=_tcp_msg(_q(NAME, 0x4242)),
                       s_data=_tcp_msg(_r(NAME, 0)))
    # (the good lookup later than DNS_RETRY_S after the bad one: no retry that made it good)
    recs += tcp_session((C, 51001), (RES, 53), t0=1020.0, c_data=_tcp_msg(_q(NAME, 0x4343)),
                        s_data=_tcp_msg(_r(NAME.upper(), 0x4343)))
    path = write(tmp_path, recs, "tcp.pcap")
    bad, good = _flows(path).to_dict("records")
    assert (bad["dns_rcode"], bad["verdict"], bad["reason"]) == ("", "blocked", "no_answer")
    assert "1 response matching no query of the flow (the first: ID 0x0000 for eu1.ksc.kaspersky.com A" in bad["detail"]
    assert (good["dns_rcode"], good["dns_answers"], good["verdict"]) == ("NOERROR", ADDR, "ok")
    assert_same(path, [300, 900])


def test_the_tshark_engine_agrees(tmp_path):
    recs = _lookup(43117, [(_q(NAME, 0xD1E3), _r(NAME, 0))])
    # (later than DNS_RETRY_S after the first: no retry that made it good)
    recs += _lookup(43108, [(_q(NAME, 7), _r(NAME, 7))], t=1020.0)
    path = write(tmp_path, sorted(recs, key=lambda x: x[0]), "ts.pcap")
    cols = ["uid", "dns_rcode", "dns_answers", "verdict", "reason", "detail"]
    a = analyze_file(path, RULES).flows[cols].reset_index(drop=True)
    b = analyze_file(path, RULES, engine="tshark").flows[cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert a["reason"].tolist() == ["no_answer", ""]
