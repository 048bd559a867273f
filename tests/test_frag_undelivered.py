"""A datagram the capture holds only in part (an IP fragment dropped on the way: break-it 15
F9) was never delivered: its bytes are not read as DNS (no rcode, no answer, no name for later
flows), a DNS query whose only answers are such datagrams is blocked/no_answer, and a UDP purpose
says so too; the packets still count in their flow. Both engines, IPv4 and IPv6, whole file and
chunked."""
from __future__ import annotations

import shutil

import pytest

pytest.importorskip("scapy")

from scapy.all import (  # noqa: E402
    DNS, DNSQR, DNSRR, IP, IPv6, UDP, fragment, fragment6, IPv6ExtHdrFragment, Raw)

from chunkcmp import assert_same, write  # noqa: E402
from pcapbuild import eth, tcp_session  # noqa: E402

from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.capture.decode import decode  # noqa: E402
from kscc_traffic.capture.files import read_frames  # noqa: E402
from kscc_traffic.rules import load_rules  # noqa: E402

RULES = load_rules()
AGENT, RESOLVER, SERVER = "192.0.2.10", "198.51.100.53", "203.0.113.10"
A6, R6, S6 = "2001:db8:1::10", "2001:db8:1::53", "2001:db8:2::10"
NAME = "eu1.ksc.kaspersky.com"
T0 = 1_764_500_000.0
ENGINES = ["builtin"] + (["tshark"] if shutil.which("tshark") else [])


def _answer(v6: bool, ident: int = 7):
    """A DNS answer for NAME big enough to be sent in fragments (a large TXT section)."""
    return DNS(id=ident, qr=1, rd=1, ra=1, qd=DNSQR(qname=NAME, qtype="AAAA" if v6 else "A"),
               an=DNSRR(rrname=NAME, type="AAAA" if v6 else "A", rdata=S6 if v6 else SERVER),
               ar=DNSRR(rrname=NAME, type="TXT", rdata=["x" * 250] * 8))


def _capture(v6: bool, keep):
    """The agent asks NAME 3 times; each answer is sent in IP fragments of which ``keep``
    (a slice) reach the capture; then the agent connects to the address in the answer."""
    recs = []
    a, r, s = (A6, R6, S6) if v6 else (AGENT, RESOLVER, SERVER)
    for k in range(3):
        t = T0 + 2 * k
        q = DNS(id=7, rd=1, qd=DNSQR(qname=NAME, qtype="AAAA" if v6 else "A"))
        if v6:
            recs.append((t, eth(IPv6(src=a, dst=r) / UDP(sport=53100, dport=53) / q)))
            big = IPv6(src=r, dst=a) / IPv6ExtHdrFragment(id=100 + k) / UDP(sport=53, dport=53100) / _answer(v6)
            frags = fragment6(big, 1280)
        else:
            recs.append((t, eth(IP(src=a, dst=r) / UDP(sport=53100, dport=53) / q)))
            big = IP(src=r, dst=a, id=100 + k) / UDP(sport=53, dport=53100) / _answer(v6)
            frags = fragment(big, fragsize=1480)
        assert len(frags) >= 2
        recs += [(t + 0.01 + i * 0.001, eth(f)) for i, f in enumerate(frags[keep])]
    recs += tcp_session((a, 50500), (s, 23101), t0=T0 + 7, c_data=b"\x16\x03\x01" + bytes(40))
    return recs


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_dns_answer_missing_a_fragment_is_no_answer(tmp_path, v6, engine):
    path = write(tmp_path, _capture(v6, slice(0, 1)))
    a = analyze_file(path, RULES, engine=engine)
    f = a.flows
    dns = f[(f.proto == "udp") & (f.resp_p == 53)].iloc[0]
    assert (dns.purpose, dns.verdict, dns.reason) == ("dns", "blocked", "no_answer")
    assert (dns.dns_rcode, dns.dns_answers) == ("", "")
    assert dns.detail.startswith("DNS query without an answer: the 3 packets that came back were IP "
                                 "fragments of answers never captured whole")
    assert (dns.orig_pkts, dns.resp_pkts, dns.conn_state) == (3, 3, "SF")   # still counted
    tcp = f[f.proto == "tcp"].iloc[0]
    assert tcp.dns_name == "" and tcp.server_name == ""         # no name from the lost answers
    assert not any("shorter than their IP length" in w for w in a.warnings)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
def test_dns_answer_whole_still_answers(tmp_path, v6, engine):
    """All fragments there, last first: the answer is read and names the connection."""
    path = write(tmp_path, _capture(v6, slice(None, None, -1)))
    f = analyze_file(path, RULES, engine=engine).flows
    dns = f[(f.proto == "udp") & (f.resp_p == 53)].iloc[0]
    assert (dns.verdict, dns.dns_rcode, dns.dns_answers) == ("ok", "NOERROR", S6 if v6 else SERVER)
    assert f[f.proto == "tcp"].iloc[0].dns_name == NAME


def test_unreassembled_rows_carry_no_payload(tmp_path):
    path = write(tmp_path, _capture(False, slice(0, 1)))
    for fast in (True, False):
        p = decode(read_frames(path), fast=fast)
        u = p["unreassembled"]
        assert int(u.sum()) == 3
        assert (p["pl_off"][u] == -1).all() and (p["pl_cap"][u] == 0).all()
        assert (p["sport"][u] == 53).all() and (p["payload_len"][u] == 1472).all()
        assert not p["unreassembled"][~u].any() and (p["pl_cap"][~u & (p["payload_len"] > 0)] > 0).all()


def test_chunked_same_as_whole(tmp_path):
    path = write(tmp_path, _capture(False, slice(0, 1)) + [
        (T0 + 20 + k, r[1]) for k, r in enumerate(_capture(True, slice(0, 1)))])
    w = assert_same(path, [2000, 5000])
    assert (w[w.resp_p == 53].verdict == "blocked").all()


@pytest.mark.parametrize("engine", ENGINES)
def test_udp_reply_in_part_is_no_reply(tmp_path, engine):
    """KSN proxy UDP 15111: each reply arrives without its last fragment: blocked/no_answer, and
    a later reply that arrives whole makes it answered again."""
    recs = []
    for k in range(2):
        recs.append((T0 + k, eth(IP(src=AGENT, dst="192.0.2.50") / UDP(sport=40000, dport=15111) / Raw(b"q" * 40))))
        big = IP(src="192.0.2.50", dst=AGENT, id=200 + k) / UDP(sport=15111, dport=40000) / Raw(b"r" * 3000)
        recs.append((T0 + k + 0.01, eth(fragment(big, fragsize=1480)[0])))
    f = analyze_file(write(tmp_path, recs), RULES, engine=engine).flows.iloc[0]
    assert (f.purpose, f.verdict, f.reason) == ("dp_ksn_proxy_udp", "blocked", "no_answer")
    assert f.detail.startswith("UDP request without a reply: the 2 packets that came back were IP fragments")
    whole = IP(src="192.0.2.50", dst=AGENT, id=300) / UDP(sport=15111, dport=40000) / Raw(b"r" * 30)
    f = analyze_file(write(tmp_path, recs + [(T0 + 3, eth(whole))], "b.pcap"), RULES, engine=engine).flows.iloc[0]
    assert (f.verdict, f.detail) == ("ok", "")


def _v6_answer_capture(tamper):
    """The agent asks NAME over IPv6; the answer comes in 2 fragments changed by ``tamper``
    (fragments -> fragments sent); then the agent connects to the address in the answer."""
    q = DNS(id=9, rd=1, qd=DNSQR(qname=NAME, qtype="AAAA"))
    big = IPv6(src=R6, dst=A6) / IPv6ExtHdrFragment(id=900) / UDP(sport=53, dport=53200) / _answer(True, 9)
    frags = fragment6(big, 1280)
    assert len(frags) == 2
    recs = [(T0, eth(IPv6(src=A6, dst=R6) / UDP(sport=53200, dport=53) / q))]
    recs += [(T0 + 0.01 + i * 0.001, eth(f)) for i, f in enumerate(tamper(frags))]
    return recs + tcp_session((A6, 50600), (S6, 23101), t0=T0 + 1, c_data=b"\x16\x03\x01" + bytes(40))


def _next_header_59(frags):
    frags[1][IPv6ExtHdrFragment].nh = 59
    return frags


def _overlapping(frags):
    fh = frags[1][IPv6ExtHdrFragment]
    data = bytes(fh.payload)
    evil = IPv6(src=R6, dst=A6) / IPv6ExtHdrFragment(nh=17, id=900, offset=fh.offset - 2, m=0) \
        / Raw(b"\xee" * 16 + data)
    return [frags[0], evil]


def test_ipv6_later_fragment_next_header_ignored(tmp_path):
    """RFC 8200 §4.5 (break-it 25 F8): the second fragment's Next Header (59) does not count: the
    answer is reassembled and read (builtin; Wireshark 4.0 dissects the reassembled datagram
    by the completing fragment's Next Header: see engines/tshark.py)."""
    path = write(tmp_path, _v6_answer_capture(_next_header_59))
    a = analyze_file(path, RULES)
    f = a.flows
    assert sorted(f.proto) == ["tcp", "udp"]                  # no flow of protocol 59
    dns = f[f.resp_p == 53].iloc[0]
    assert (dns.verdict, dns.dns_rcode, dns.dns_answers, dns.resp_pkts) == ("ok", "NOERROR", S6, 1)
    assert f[f.proto == "tcp"].iloc[0].dns_name == NAME
    assert not any("fragment" in w for w in a.warnings)
    assert_same(path, [1500, 4000])


def test_ipv6_overlapping_fragments_answer_not_delivered(tmp_path):
    """RFC 5722 (break-it 25 F9): the receiver drops an IPv6 datagram whose fragments overlap:
    the answer never reached the agent (builtin; Wireshark reassembles it, first copy kept)."""
    path = write(tmp_path, _v6_answer_capture(_overlapping))
    a = analyze_file(path, RULES)
    f = a.flows
    dns = f[(f.proto == "udp") & (f.resp_p == 53)].iloc[0]
    assert (dns.verdict, dns.reason, dns.dns_rcode, dns.dns_answers) == ("blocked", "no_answer", "", "")
    assert (dns.resp_pkts, dns.resp_bytes) == (1, 1224)      # the first fragment (1232 - UDP 8)
    assert f[f.proto == "tcp"].iloc[0].dns_name == ""
    assert any("1 IPv6 datagram had overlapping fragments and was dropped whole" in w
               for w in a.warnings), a.warnings
    assert any("2 IP fragments could not be reassembled" in w for w in a.warnings), a.warnings
    assert_same(path, [1500, 4000])
