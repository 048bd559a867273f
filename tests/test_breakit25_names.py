"""Break-it round 25 (IPv6 / dual stack): names, DNS and address families (F10, F11, F12)."""
from __future__ import annotations

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import TCP, UDP

from chunkcmp import assert_same, row, whole, write
from pcapbuild import eth, ip_of
from test_classify_fast import assert_same as assert_same_as_reference
from kscc_traffic.addresses import embedded_ipv4, ipv4_forms, ipv6_text
from kscc_traffic.classify import AAAA_OVER_IPV6
from kscc_traffic.rules import load_rules

RULES = load_rules()
NAME = "eu1.ksc.kaspersky.com"
C6, R6 = "2001:db8:1::10", "2001:db8:1::53"
C4, R4 = "192.0.2.10", "198.51.100.53"


def _dns(client, resolver, sport, qname, qtype, t, txid, answers=(), rcode=0):
    """A query and its response: [(ts, frame)]; ``answers``: [(type, rdata)]."""
    an = [DNSRR(rrname=qname, type=rtype, ttl=60, rdata=rdata) for rtype, rdata in answers]
    q = eth(ip_of(client, resolver) / UDP(sport=sport, dport=53) / DNS(id=txid, rd=1, qd=DNSQR(qname=qname, qtype=qtype)))
    r = eth(ip_of(resolver, client) / UDP(sport=53, dport=sport)
            / DNS(id=txid, qr=1, rd=1, ra=1, rcode=rcode, qd=DNSQR(qname=qname, qtype=qtype), an=an))
    return [(t, bytes(q)), (t + 0.01, bytes(r))]


def _syns(client, server, sport, dport, t, times=(0, 1, 3)):
    return [(t + dt, bytes(eth(ip_of(client, server) / TCP(sport=sport, dport=dport, flags="S", seq=1000))))
            for dt in times]


def _session(client, server, sport, dport, t):
    """SYN, SYN-ACK, ACK, 6 bytes each way, FIN both ways: an answered connection (``SF``)."""
    c = lambda **kw: bytes(eth(ip_of(client, server) / TCP(sport=sport, dport=dport, **kw)))  # noqa: E731
    s = lambda **kw: bytes(eth(ip_of(server, client) / TCP(sport=dport, dport=sport, **kw)))  # noqa: E731
    return [(t, c(flags="S", seq=100)), (t + .01, s(flags="SA", seq=500, ack=101)),
            (t + .02, c(flags="A", seq=101, ack=501)),
            (t + .03, bytes(eth(ip_of(client, server) / TCP(sport=sport, dport=dport, flags="PA", seq=101, ack=501)
                                / b"hello!"))),
            (t + .04, bytes(eth(ip_of(server, client) / TCP(sport=dport, dport=sport, flags="PA", seq=501, ack=107)
                                / b"world!"))),
            (t + .05, c(flags="FA", seq=107, ack=507)), (t + .06, s(flags="FA", seq=507, ack=108)),
            (t + .07, c(flags="A", seq=108, ack=508))]


def _write(tmp_path, recs, name="c.pcap"):
    return write(tmp_path, sorted(recs, key=lambda r: r[0]), name=name)


# --- F10: an AAAA lookup failing on an IPv6-only network ------------------------------------

def test_aaaa_error_asked_over_ipv6_is_blocked_and_fails_the_run(tmp_path):
    """F10 (break-it 25 s18): an IPv6-only agent (the capture holds no IPv4) asks A and AAAA from
    separate ports; the A is answered, the AAAA gets SERVFAIL (DNS64 failing) and no connection
    follows. The AAAA flows were ``ok`` and the run exited 0; asked over IPv6 they are blocked
    (rejected, as an A failure is) and the detail names the address family. The same pair
    asked over IPv4 stays ``ok`` (a dual-stack host connects with the A answer)."""
    recs = []
    for k in range(2):
        recs += _dns(C6, R6, 55100 + k, NAME, "A", 1000.0 + 5 * k, 10 + k, [("A", "203.0.113.120")])
        recs += _dns(C6, R6, 55200 + k, NAME, "AAAA", 1000.001 + 5 * k, 20 + k, rcode=2)
    recs += _dns(C4, R4, 40001, NAME, "A", 1020.0, 30, [("A", "203.0.113.120")])
    recs += _dns(C4, R4, 40002, NAME, "AAAA", 1020.001, 31, rcode=2)
    path = _write(tmp_path, recs)
    flows, _ = whole(path)
    for port in (55200, 55201):
        r = row(flows, orig_p=port)
        assert (r["dns_rcode"], r["purpose"], r["verdict"], r["reason"]) == ("SERVFAIL", "dns", "blocked", "rejected")
        assert r["detail"] == f"DNS answer SERVFAIL for {NAME}: {AAAA_OVER_IPV6}"
        assert "IPv6-only" in r["detail"] and "DNS64" in r["detail"] and "AAAA record" in r["detail"]
    for port in (55100, 55101, 40001):
        assert row(flows, orig_p=port)["verdict"] == "ok"
    r = row(flows, orig_p=40002)
    assert (r["verdict"], r["reason"]) == ("ok", "")
    assert r["detail"].endswith("only its AAAA (IPv6 address) query; an agent connects over IPv4 with the A "
                                "answer (an IPv6-only network would need it)")
    assert_same(path, [300, 700])
    assert_same_as_reference(flows, RULES)
    from typer.testing import CliRunner

    from kscc_traffic.cli import app
    p = CliRunner().invoke(app, ["analyze", str(path), "--format", "jsonl", "--jobs", "1"], catch_exceptions=False)
    assert p.exit_code == 1, p.stderr


# --- F11: address text -------------------------------------------------------------------

#: (address in the packet, its text as tshark 4.0 writes it: glibc inet_ntop, RFC 5952 §5)
TEXTS = [("::c000:20b", "::192.0.2.11"), ("::1:0", "::0.1.0.0"), ("::a:b", "::0.10.0.11"),
         ("::ffff:0:c000:20c", "::ffff:0:c000:20c"), ("2001:db8:1:0:0:5efe:c000:20d", "2001:db8:1::5efe:c000:20d"),
         ("64:ff9b::c000:20f", "64:ff9b::c000:20f"), ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),
         ("2001:db8::aaaa:0:0:1", "2001:db8::aaaa:0:0:1"), ("::2", "::2"), ("::100", "::100"), ("::1", "::1"),
         ("::ffff", "::ffff"), ("::ffff:0:0", "::ffff:0.0.0.0"), ("::ffff:c000:210", "::ffff:192.0.2.16")]


def test_address_text_is_wiresharks_everywhere(tmp_path):
    """F11 (break-it 25 s16): an IPv4-compatible address (``::c000:20b``) was written in hex
    where tshark and RFC 5952 §5 write ``::192.0.2.11``. The flow's address, a DNS answer's and
    the text join (the answer names the flow) agree."""
    for packed, text in TEXTS:
        import ipaddress
        assert ipv6_text(int(ipaddress.IPv6Address(packed))) == text, packed
        assert ipv6_text(ipaddress.IPv6Address(packed).packed) == text, packed
    recs = []
    for i, (packed, _) in enumerate(TEXTS):
        recs += _syns(C6, packed, 50000 + i, 23101, 1000.0 + i, times=(0,))
    recs += _dns(C6, R6, 55000, NAME, "AAAA", 999.0, 7, [("AAAA", "::c000:20b")])
    path = _write(tmp_path, recs)
    flows, _ = whole(path)
    got = {int(r["orig_p"]) - 50000: r["resp_h"] for r in flows.to_dict("records") if r["proto"] == "tcp"}
    assert [got[i] for i in range(len(TEXTS))] == [t for _, t in TEXTS]
    assert row(flows, orig_p=55000)["dns_answers"] == "::192.0.2.11"
    assert row(flows, orig_p=50000)["dns_name"] == NAME


# --- F12: names through NAT64 / DNS64 / mapped answers -------------------------------------

def test_embedded_ipv4_forms():
    assert embedded_ipv4("203.0.113.5") == "203.0.113.5"
    assert embedded_ipv4("::ffff:203.0.113.5") == "203.0.113.5"
    assert embedded_ipv4("64:ff9b::cb00:7105") == "203.0.113.5"
    assert embedded_ipv4("64:ff9b:1::cb00:7105") is None        # (a network-specific prefix: not known)
    assert embedded_ipv4("2001:db8::cb00:7105") is None
    assert embedded_ipv4("eu1.ksc.kaspersky.com") is None
    assert ipv4_forms("64:ff9b::cb00:7105") == ("203.0.113.5", "::ffff:203.0.113.5", "64:ff9b::cb00:7105")
    assert ipv4_forms("2001:db8::1") == ()


def test_translated_answers_name_the_flows(tmp_path):
    """F12 (break-it 25 s08): a flow to 64:ff9b::cb00:710e (464XLAT: the CLAT's address, the A
    answer 203.0.113.14 to the agent's own) had no dns_name, nor one over IPv4 to 203.0.113.15
    after a mapped AAAA answer ``::ffff:203.0.113.15``; a flow to 203.0.113.16 after a DNS64
    answer 64:ff9b::cb00:7110 likewise. An answer for the very address still wins over a
    translated one, even an older one; an address in another prefix gets no name. The same
    whole and in small chunks (the chunked analysis keeps the answers for the other forms)."""
    recs = []
    recs += _dns(C6, R6, 55003, "eu3.ksc.kaspersky.com", "A", 1000.0, 5, [("A", "203.0.113.14")])
    recs += _session("2001:db8:1::c1a7", "64:ff9b::cb00:710e", 50004, 23101, 1000.05)
    recs += _dns(C6, R6, 55004, "eu4.ksc.kaspersky.com", "AAAA", 1010.0, 6, [("AAAA", "::ffff:203.0.113.15")])
    recs += _session(C4, "203.0.113.15", 50005, 23101, 1010.05)
    recs += _dns(C6, R6, 55005, "eu6.ksc.kaspersky.com", "AAAA", 1020.0, 7, [("AAAA", "64:ff9b::cb00:7110")])
    recs += _syns(C4, "203.0.113.16", 50006, 23101, 1020.05)
    # exact beats translated: AAAA 64:ff9b::cb00:7111 for eu7 first, then A 203.0.113.17 for eu8
    recs += _dns(C6, R6, 55007, "eu7.ksc.kaspersky.com", "AAAA", 1030.0, 8, [("AAAA", "64:ff9b::cb00:7111")])
    recs += _dns(C6, R6, 55008, "eu8.ksc.kaspersky.com", "A", 1031.0, 9, [("A", "203.0.113.17")])
    recs += _syns(C6, "64:ff9b::cb00:7111", 50007, 23101, 1032.0)
    # another prefix: not translated
    recs += _dns(C6, R6, 55009, "eu9.ksc.kaspersky.com", "A", 1040.0, 10, [("A", "203.0.113.18")])
    recs += _syns(C6, "2001:db8:64::cb00:7112", 50009, 23101, 1040.05)
    path = _write(tmp_path, recs)
    flows, _ = whole(path)
    want = {50004: "eu3.ksc.kaspersky.com", 50005: "eu4.ksc.kaspersky.com", 50006: "eu6.ksc.kaspersky.com",
            50007: "eu7.ksc.kaspersky.com", 50009: ""}
    for port, name in want.items():
        r = row(flows, orig_p=port)
        assert r["dns_name"] == name, (port, r["dns_name"])
        assert (r["server_name"], r["name_source"]) == ((name, "dns") if name else ("", "")), port
    assert row(flows, orig_p=50006)["verdict"] == "blocked"
    assert_same(path, [600, 1500])
