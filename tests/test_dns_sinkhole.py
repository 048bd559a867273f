"""DNS answers (``dns_answers``) and sinkholes: a NOERROR answer with an address nothing can
connect to (0.0.0.0, ::) or this very host (127.0.0.1, ::1) is how DNS filters block a name; for a
name the agent needs it is blocked/rejected (ok for other names), is told in ``detail`` and listed
with the DNS error answers, the same whole, in chunks and over TCP."""
from __future__ import annotations

import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP

from chunkcmp import RULES, assert_same, write
from kscc_traffic.classify import sinkhole_address
from kscc_traffic.report import TableSummary, dns_errors, render_table
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth, udp
from test_classify_fast import assert_same as assert_same_as_reference
from test_dns_rcode import _tcp_msg

C, RES = "192.0.2.10", "203.0.113.53"

#: (name, answer records (type, address)) of the lookups, over UDP (ports 50000+)
CASES = [("eu1.ksc.kaspersky.com", [("A", "0.0.0.0")]),
         ("eu2.ksc.kaspersky.com", [("A", "127.0.0.1")]),
         ("eu3.ksc.kaspersky.com", [("AAAA", "::")]),
         ("eu4.ksc.kaspersky.com", [("A", "203.0.113.10"), ("A", "203.0.113.11"), ("A", "203.0.113.10")]),
         ("eu5.ksc.kaspersky.com", [])]


def _resp(name, txid, records):
    an = [DNSRR(rrname=name, type=t, rdata=a) for t, a in records]
    return DNS(id=txid, qr=1, rd=1, ra=1, qd=DNSQR(qname=name), an=an or None)


def _capture(tmp_path):
    recs, t = [], 1000.0
    for i, (name, records) in enumerate(CASES):
        recs.append(udp((C, 50000 + i), (RES, 53), bytes(DNS(id=i, rd=1, qd=DNSQR(qname=name))), t=t))
        recs.append(udp((RES, 53), (C, 50000 + i), bytes(_resp(name, i, records)), t=t + 0.01,
                        src_mac=SERVER_MAC, dst_mac=CLIENT_MAC))
        t += 1
    # the first over TCP as well (client port 51000)
    name, records = CASES[0]
    c2s = lambda **kw: eth(IP(src=C, dst=RES) / TCP(sport=51000, dport=53, **kw))  # noqa: E731
    s2c = lambda **kw: eth(IP(src=RES, dst=C) / TCP(sport=53, dport=51000, **kw),  # noqa: E731
                           src=SERVER_MAC, dst=CLIENT_MAC)
    q, a = _tcp_msg(DNS(id=77, rd=1, qd=DNSQR(qname=name))), _tcp_msg(_resp(name, 77, records))
    recs += [(t, c2s(flags="S", seq=100)), (t + 0.01, s2c(flags="SA", seq=900, ack=101)),
             (t + 0.02, c2s(flags="PA", seq=101, ack=901) / q),
             (t + 0.03, s2c(flags="PA", seq=901, ack=101 + len(q)) / a),
             (t + 0.04, c2s(flags="FA", seq=101 + len(q), ack=901 + len(a))),
             (t + 0.05, s2c(flags="FA", seq=901 + len(a), ack=102 + len(q))),
             (t + 0.06, c2s(flags="A", seq=102 + len(q), ack=902 + len(a)))]
    return write(tmp_path, [(ts, bytes(p)) for ts, p in recs])


def test_answers_and_sinkholes_whole_chunked_and_over_tcp(tmp_path):
    flows = assert_same(_capture(tmp_path), [300, 700, 1500])
    got = {int(r.orig_p): (r.dns_answers, r.verdict, r.detail) for r in flows.itertuples()}
    hole = ": a sinkhole address (nowhere, or the client itself), as a DNS filter answers for a name it blocks"
    need = "; the agent needs this name: without its address it cannot connect (fix the resolver or the DNS filter)"
    assert got == {
        50000: ("0.0.0.0", "blocked", "DNS answer 0.0.0.0 for eu1.ksc.kaspersky.com" + hole + need),
        50001: ("127.0.0.1", "blocked", "DNS answer 127.0.0.1 for eu2.ksc.kaspersky.com" + hole + need),
        50002: ("::", "blocked", "DNS answer :: for eu3.ksc.kaspersky.com" + hole + need),
        50003: ("203.0.113.10;203.0.113.11", "ok", ""),             # distinct, in answer order
        # (NOERROR with no address, the only lookup of a needed name: blocked; newcomer 28 F2)
        50004: ("", "blocked", "DNS answer NOERROR with no address for eu5.ksc.kaspersky.com: no lookup of it in the "
                "capture got an address (the DNS server gives no IPv4 address for it: no A record, as "
                "it answers); the agent needs this name: without its address it cannot connect (fix the resolver or "
                "the DNS filter)"),
        51000: ("0.0.0.0", "blocked", "DNS answer 0.0.0.0 for eu1.ksc.kaspersky.com" + hole + need),
    }
    # the table report lists them with the DNS error answers
    errs = dns_errors(flows)
    assert sorted(zip(errs.name, errs.rcode, errs.flows)) == [
        ("eu1.ksc.kaspersky.com", "sinkhole 0.0.0.0", 2), ("eu2.ksc.kaspersky.com", "sinkhole 127.0.0.1", 1),
        ("eu3.ksc.kaspersky.com", "sinkhole ::", 1)]
    assert TableSummary.of(flows).dns_errors().equals(errs)
    text = render_table(flows, RULES)
    assert "sinkhole 0.0.0.0" in text and "a DNS filter blocks the name" in text
    # grouped judgement equals the per-row one
    assert_same_as_reference(flows.drop(columns=["purpose", "verdict", "reason", "detail"]), RULES)


@pytest.mark.parametrize("answers, hole", [("0.0.0.0", "0.0.0.0"), ("203.0.113.1;127.0.0.1", "127.0.0.1"),
                                           ("127.0.0.2", ""), ("127.0.0.53", ""),   # a blocklist's answer
                                           ("::1", "::1"), ("::ffff:0.0.0.0", "::ffff:0.0.0.0"),
                                           ("2001:db8::1", ""), ("", ""), ("10.0.0.0", ""), ("1.27.0.0.1", "")])
def test_sinkhole_address(answers, hole):
    assert sinkhole_address(answers) == hole
