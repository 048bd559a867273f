"""Break-it round 24 (interception and middleboxes): a decoy ClientHello (F7)."""
from __future__ import annotations

from scapy.layers.inet import IP, TCP

from chunkcmp import assert_same, row, whole, write
from pcapbuild import eth
from test_classify_fast import assert_same as assert_same_as_reference
from test_decode_more_encaps import client_hello, server_hello
from kscc_traffic.protocols.tls import hello_copies
from kscc_traffic.rules import load_rules

RULES = load_rules()
AGENT, CLOUD = "192.0.2.10", "203.0.113.10"
REAL = "eu1.ksc.kaspersky.com"
DECOY = "www.example.com\x1bxxxxx"          # (same length; a control byte, escaped in the note)
DECOY_TEXT = "www.example.com\\x1bxxxxx"


def _decoy_first(first: str, second: str, ttl_first: int = 3, ttl_second: int = 128):
    """A TLS connection to 23101 whose ClientHello is sent twice at the same sequence number,
    first with SNI ``first`` and TTL ``ttl_first`` (a DPI-evasion tool's decoy, zapret-style:
    it dies on the way), then ``second`` with ``ttl_second``; the server answers and the
    connection closes."""
    def c(t, load=b"", ttl=128, **kw):
        return t, bytes(eth(IP(src=AGENT, dst=CLOUD, ttl=ttl) / TCP(sport=50604, dport=23101, **kw) / load))

    def s(t, load=b"", **kw):
        return t, bytes(eth(IP(src=CLOUD, dst=AGENT, ttl=52) / TCP(sport=23101, dport=50604, **kw) / load))

    h1, h2, sh = client_hello(first), client_hello(second), server_hello()
    return [c(1.0, flags="S", seq=99), s(1.01, flags="SA", seq=499, ack=100), c(1.02, flags="A", seq=100, ack=500),
            c(1.03, flags="PA", seq=100, ack=500, load=h1, ttl=ttl_first),
            c(1.031, flags="PA", seq=100, ack=500, load=h2, ttl=ttl_second),
            s(1.05, flags="PA", seq=500, ack=100 + len(h2), load=sh),
            c(1.06, flags="FA", seq=100 + len(h2), ack=500 + len(sh)),
            s(1.07, flags="FA", seq=500 + len(sh), ack=101 + len(h2)),
            c(1.08, flags="A", seq=101 + len(h2), ack=501 + len(sh))]


def test_two_different_client_hellos_for_the_same_bytes_are_named_in_the_detail(tmp_path):
    """F7 (break-it 24 r04): a decoy ClientHello with a small TTL and another SNI, then the real
    one. The first copy's SNI is read, as Zeek and Wireshark reassemble (break-it 4 F1), but it
    was trusted silently; the detail now names both copies, their TTLs and SNIs (escaped), whole
    and in chunks. The same ClientHello sent twice (a plain retransmission) gets no note."""
    path = write(tmp_path, _decoy_first(DECOY, REAL))
    flows, _ = whole(path)
    r = row(flows, resp_p=23101)
    assert r["sni"] == DECOY_TEXT
    note = (f"two different ClientHellos were sent for the same bytes: the first copy (TTL 3) names {DECOY_TEXT}, "
            f"a later one (TTL 128) {REAL}; the SNI read is the first copy's, as Zeek (rexmit_inconsistency) and "
            "Wireshark reassemble the stream: a DPI-evasion tool's decoy (a copy whose small TTL expires before "
            "the server) or a forged segment")
    assert r["detail"].endswith("; " + note), r["detail"]
    assert "\x1b" not in r["detail"]
    assert (r["verdict"], r["reason"]) == ("unexpected", "host_mismatch")
    assert_same(path, [250, 500])
    assert_same_as_reference(flows, RULES)
    # the other way round: the real name first, a later copy with another name: ok, with the note
    path = write(tmp_path, _decoy_first(REAL, DECOY, 128, 5), name="real_first.pcap")
    r = row(whole(path)[0], resp_p=23101)
    assert r["sni"] == REAL
    assert "the first copy (TTL 128) names eu1.ksc.kaspersky.com, a later one (TTL 5) " + DECOY_TEXT in r["detail"]
    # a plain retransmission of the same ClientHello: nothing to say
    path = write(tmp_path, _decoy_first(REAL, REAL, 128, 128), name="same.pcap")
    r = row(whole(path)[0], resp_p=23101)
    assert "ClientHellos" not in r["detail"]


def test_hello_copies_reads_both_copies():
    h1, h2 = client_hello(DECOY), client_hello(REAL)
    assert hello_copies([(0, h1, 3), (0, h2, 64)]) == (DECOY_TEXT, 3, REAL, 64)
    # the decoy in the second segment only: the TTLs are those of the copies holding the SNI
    assert hello_copies([(0, h2[:50], 64), (50, h1[50:], 3), (50, h2[50:], 64)]) == (DECOY_TEXT, 3, REAL, 64)
    # a decoy differing before the SNI only (same name): nothing to say
    assert hello_copies([(0, h2[:40].replace(b"\x03\x03", b"\x03\x01", 1), 3), (0, h2, 64)]) is None
    assert hello_copies([(0, h2, 64), (0, h2, 64)]) is None
    assert hello_copies([(0, h2[:50], 64), (50, h2[50:], 64)]) is None
    assert hello_copies([]) is None


# --- F11: an ICMP error quoting a NAT's outside address --------------------------------------

def _nat_icmp(to: str = AGENT, sport: int = 61000):
    """The agent's SYN (192.0.2.10:50418 -> 203.0.113.10:23101) three times, each answered by an
    ICMP administratively prohibited (3/13) from a firewall past a NAT, sent to ``to`` and
    quoting the SYN as the NAT sent it: source 198.18.0.1:``sport`` (break-it 24 m18)."""
    from scapy.layers.inet import ICMP, IPerror
    recs = []
    for i in range(3):
        t = 1.0 + i
        syn = IP(src=AGENT, dst=CLOUD, ttl=128) / TCP(sport=50418, dport=23101, flags="S", seq=4242)
        outside = IP(src="198.18.0.1", dst=CLOUD, ttl=127) / TCP(sport=sport, dport=23101, flags="S", seq=4242)
        err = IP(src="198.51.100.254", dst=to, ttl=254) / ICMP(type=3, code=13) / IPerror(bytes(outside)[:28])
        recs += [(t, bytes(eth(syn))), (t + .001, bytes(eth(err)))]
    return recs


def test_an_icmp_error_quoting_the_nats_outside_address_is_matched(tmp_path):
    """F11 (break-it 24 m18): the firewall's 3/13 quoted the NAT's outside address and port, so
    it matched no flow (an ICMP flow of its own) and the SYNs read as unanswered. Sent to the
    flow's originator and quoting its protocol, server address and port, it is the flow's error,
    and the text says the quote carries the NAT's outside address; whole and in chunks."""
    path = write(tmp_path, _nat_icmp())
    flows, _ = whole(path)
    assert flows["proto"].tolist() == ["tcp"]            # (no ICMP flow left over)
    r = row(flows, resp_p=23101)
    text = ("administratively prohibited (3/13) from 198.51.100.254, its quote carrying the source "
            "198.18.0.1:61000 instead of the client's 192.0.2.10:50418: a NAT's outside address (the NAT passed "
            "the error back without translating the quoted header)")
    assert r["icmp_unreachable"] == text
    assert (r["verdict"], r["reason"], r["detail"]) == ("blocked", "icmp_unreachable", "answered by ICMP " + text)
    assert_same(path, [150, 300])
    # a NAT keeping the port: only the address is named
    path = write(tmp_path, _nat_icmp(sport=50418), name="port_kept.pcap")
    r = row(whole(path)[0], resp_p=23101)
    assert ", its quote carrying the source 198.18.0.1 instead of the client's 192.0.2.10: " in r["icmp_unreachable"]
    # sent to another host than the flow's originator: not this flow's
    path = write(tmp_path, _nat_icmp(to="192.0.2.99"), name="other.pcap")
    flows, _ = whole(path)
    assert row(flows, proto="tcp")["icmp_unreachable"] == ""
    assert (flows["proto"] == "icmp").sum() == 1
