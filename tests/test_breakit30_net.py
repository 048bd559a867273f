"""Break-it 30 (network scenarios of real troubleshooting captures): findings fixed.

F1. A ClientHello with an Encrypted ClientHello extension (ECH, 0xfe0d) sends the ECH provider's
public name as its SNI, the name asked being encrypted: such a flow on a KSC port was
``host_mismatch`` "public.example.net is not under *.ksc.kaspersky.com" without a word of ECH
(the parser saw the extension, nothing carried it to the judgement). The detail now says so
(hedged: a browser's GREASE ECH looks the same), and names the DNS name the address was looked
up as when it is under the mask. The vectorised TLS path reports ``ech`` as the reference does.
F2. A split ClientHello of 1,300 bytes or more was said to be that large for an X25519MLKEM768
key share, whatever it held: now only when its key share has a post-quantum group (named).

Captures built with scapy; each compared whole-file vs. chunked."""
from __future__ import annotations

import struct

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from chunkcmp import assert_same, row, whole, write
from test_tls_batch import assert_same as assert_batch_same
from test_tls_batch import client_hello, ext, rec, server_hello, sni_ext

from kscc_traffic.classify import ECH_NOTE

MC, MS = "02:00:00:00:00:10", "02:00:00:00:00:01"
C, S = "192.0.2.10", "203.0.113.10"
ECH = ext(0xFE0D, b"\x00" + struct.pack("!HHBH", 1, 1, 5, 32) + bytes(32) + struct.pack("!H", 64) + bytes(64))
KEYS = [ext(43, b"\x02\x03\x04"), ext(51, struct.pack("!HHH", 34, 29, 32) + bytes(32))]


def _hello(name: str, ech: bool = True, ech_first: bool = False) -> bytes:
    exts = [sni_ext([(0, name.encode())])] + KEYS
    if ech:
        exts = [ECH] + exts if ech_first else exts + [ECH]
    return rec(22, client_hello(exts, ciphers=b"\x13\x01"), 0x0301)


def _conn(port: int, hello: bytes, t: float = 100.0, sport: int = 50001) -> list:
    """A handshake to S:``port``, the ClientHello, a TLS 1.3 ServerHello and encrypted records."""
    def up(dt, flags, seq, ack=0, data=b""):
        return t + dt, bytes(Ether(src=MC, dst=MS) / IP(src=C, dst=S) / TCP(sport=sport, dport=port, flags=flags,
                                                                          seq=seq, ack=ack) / data)

    def dn(dt, flags, seq, ack, data=b""):
        return t + dt, bytes(Ether(src=MS, dst=MC) / IP(src=S, dst=C, ttl=54) / TCP(sport=port, dport=sport,
                                                                                   flags=flags, seq=seq, ack=ack) / data)
    sh = rec(22, server_hello([ext(43, b"\x03\x04")])) + rec(23, bytes(200))
    n = len(hello)
    return [up(0, "S", 1000), dn(.01, "SA", 5000, 1001), up(.02, "A", 1001, 5001), up(.03, "PA", 1001, 5001, hello),
            dn(.05, "PA", 5001, 1001 + n, sh), up(.06, "PA", 1001 + n, 5001 + len(sh), rec(23, bytes(50)))]


def _dns(t: float, name: str) -> list:
    q = DNS(id=7, rd=1, qd=DNSQR(qname=name))
    a = DNS(id=7, qr=1, rd=1, ra=1, qd=DNSQR(qname=name), an=DNSRR(rrname=name, type="A", ttl=60, rdata=S))
    return [(t, bytes(Ether(src=MC, dst=MS) / IP(src=C, dst="198.51.100.53") / UDP(sport=40000, dport=53) / q)),
            (t + .01, bytes(Ether(src=MS, dst=MC) / IP(src="198.51.100.53", dst=C) / UDP(sport=53, dport=40000) / a))]


def test_ech_outer_name_is_said(tmp_path):
    w = assert_same(write(tmp_path, _conn(23101, _hello("public.example.net"))), [200, 500])
    r = row(w, proto="tcp").to_dict()
    assert (r["verdict"], r["reason"], r["sni"]) == ("unexpected", "host_mismatch", "public.example.net")
    assert r["detail"] == ("public.example.net is not under *.ksc.kaspersky.com"
                           + ECH_NOTE.format(sni="public.example.net"))
    assert "Encrypted ClientHello (ECH)" in r["detail"]


def test_ech_with_the_address_looked_up_as_a_cloud_name(tmp_path):
    recs = _dns(99.0, "eu1.ksc.kaspersky.com") + _conn(443, _hello("public.example.net", ech_first=True))
    w = assert_same(write(tmp_path, recs), [200, 500])
    r = row(w, proto="tcp").to_dict()
    assert (r["verdict"], r["reason"], r["dns_name"]) == ("unexpected", "host_mismatch", "eu1.ksc.kaspersky.com")
    assert r["detail"].endswith("; the address was looked up as eu1.ksc.kaspersky.com, under *.ksc.kaspersky.com: "
                                "the encrypted name may be that one")


def test_no_ech_no_note(tmp_path):
    w = assert_same(write(tmp_path, _conn(23101, _hello("public.example.net", ech=False))), [200])
    r = row(w, proto="tcp").to_dict()
    assert r["detail"] == "public.example.net is not under *.ksc.kaspersky.com"


def test_the_batch_path_reports_ech_as_the_reference():
    # ECH after or before the SNI, twice the SNI, none: the vectorised walk goes on after the name
    twice = rec(22, client_hello([sni_ext([(0, b"a.example")]), sni_ext([(0, b"b.example")]), ECH]), 0x0301)
    cs = [_hello("x.example"), _hello("x.example", ech_first=True), _hello("x.example", ech=False), twice]
    b = assert_batch_same(cs, [b""] * len(cs))
    assert b.ech.tolist() == [True, True, False, True]
    assert b.sni.tolist() == ["x.example", "x.example", "x.example", "a.example"]
    assert not b.fallback.any()


# F2. A ClientHello split across segments was said to be "this large" for "a post-quantum key
# share, X25519MLKEM768" whenever it had 1,300 bytes or more, whatever made it large (padding, a
# long session ticket, ECH): only a key share of a post-quantum group found in it says so now,
# and names that group.

def _split_unacked(share: bytes, pad: int = 0, port: int = 23101) -> list:
    """A ClientHello (key share ``share``, padding ``pad`` bytes) in 1,000-byte segments; the
    server acknowledges the first, never the rest, which the client sends again twice."""
    exts = [sni_ext([(0, b"eu1.ksc.kaspersky.com")]), ext(43, b"\x02\x03\x04"),
            ext(51, struct.pack("!H", len(share)) + share)] + ([ext(21, bytes(pad))] if pad else [])
    h = rec(22, client_hello(exts, ciphers=b"\x13\x01"), 0x0301)

    def up(t, flags, seq, data=b""):
        return t, bytes(Ether(src=MC, dst=MS) / IP(src=C, dst=S) / TCP(sport=50100, dport=port, flags=flags,
                                                                      seq=seq, ack=5001) / data)
    recs = [up(1.0, "S", 1000), (1.01, bytes(Ether(src=MS, dst=MC) / IP(src=S, dst=C, ttl=54) / TCP(
        sport=port, dport=50100, flags="SA", seq=5000, ack=1001))), up(1.02, "A", 1001)]
    parts = [(1001 + k, h[k:k + 1000]) for k in range(0, len(h), 1000)]
    recs += [up(1.03 + i / 1000, "PA", seq, d) for i, (seq, d) in enumerate(parts)]
    recs.append((1.05, bytes(Ether(src=MS, dst=MC) / IP(src=S, dst=C, ttl=54) / TCP(
        sport=port, dport=50100, flags="A", seq=5001, ack=2001))))
    recs += [up(1.5 + i, "PA", seq, d) for i in range(2) for seq, d in parts[1:]]
    return recs


X25519 = struct.pack("!HH", 29, 32) + bytes(32)


def test_a_split_hello_with_a_pq_key_share_says_so(tmp_path):
    w = assert_same(write(tmp_path, _split_unacked(struct.pack("!HH", 0x11EC, 1216) + bytes(1216) + X25519)),
                    [300, 1500])
    r = row(w, proto="tcp").to_dict()
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed")
    assert r["detail"].startswith("ClientHello never wholly received: it was 1,351 bytes in 2 segments, of which")
    assert r["detail"].endswith("(a post-quantum key share, X25519MLKEM768, makes it this large)")


def test_a_split_hello_names_its_pq_group(tmp_path):
    share = struct.pack("!HH", 0x11EB, 1249) + bytes(1249)
    r = row(whole_flows(tmp_path, _split_unacked(share)), proto="tcp").to_dict()
    assert r["detail"].endswith("(a post-quantum key share, SecP256r1MLKEM768, makes it this large)")


def test_a_padded_split_hello_is_not_said_to_have_a_pq_key_share(tmp_path):
    r = row(whole_flows(tmp_path, _split_unacked(X25519, pad=1300)), proto="tcp").to_dict()
    assert r["detail"].startswith("ClientHello never wholly received: it was 1,435 bytes in 2 segments, of which")
    assert "post-quantum" not in r["detail"]


def whole_flows(tmp_path, recs):
    """The whole-file flows of ``recs``."""
    return whole(write(tmp_path, recs))[0]


# F3. A ClientHello whose first segment was captured after a later one (reordered on the way to
# the capture), the server resetting the connection, was "not_tls: cleartext where TLS is
# documented": the first data segment *in time* (the ClientHello's middle) decided the client's
# bytes were "other", and no deeper look followed (the server sent nothing). Likewise a stream
# whose first segment was never captured (a capture drop; the server acknowledged it and answered
# in TLS) read as cleartext. Now a direction whose earliest data segment does not start right
# after its SYN is looked at from its start (reordered), or its bytes are unknown ('' and
# ``payload_cut``: judged from the packets) when no captured segment starts there.

def _hello_in_segments(order: list[int], answer: str) -> list:
    """A 1,537-byte ClientHello in 300-byte segments sent in ``order`` (indices; a missing one
    never captured), then the server's ``answer``: 'rst' or 'tls' (a ServerHello and data)."""
    h = rec(22, client_hello([sni_ext([(0, b"eu1.ksc.kaspersky.com")])] + KEYS + [ext(21, bytes(1400))],
                             ciphers=b"\x13\x01"), 0x0301)
    sport, port = 50200, 23101

    def up(t, flags, seq, ack=0, data=b""):
        return t, bytes(Ether(src=MC, dst=MS) / IP(src=C, dst=S) / TCP(sport=sport, dport=port, flags=flags,
                                                                      seq=seq, ack=ack) / data)

    def dn(t, flags, seq, ack, data=b""):
        return t, bytes(Ether(src=MS, dst=MC) / IP(src=S, dst=C, ttl=54) / TCP(sport=port, dport=sport, flags=flags,
                                                                              seq=seq, ack=ack) / data)
    recs = [up(1.0, "S", 1000), dn(1.01, "SA", 5000, 1001), up(1.02, "A", 1001, 5001)]
    recs += [up(1.03 + k / 1000, "PA", 1001 + i * 300, 5001, h[i * 300:(i + 1) * 300]) for k, i in enumerate(order)]
    end = 1001 + len(h)
    if answer == "rst":
        return recs + [dn(1.05, "RA", 5001, end)]
    sh = rec(22, server_hello([ext(43, b"\x03\x04")])) + rec(23, bytes(300))
    return recs + [dn(1.05, "PA", 5001, end, sh), up(1.06, "PA", end, 5001 + len(sh), rec(23, bytes(60)))]


def test_a_reordered_client_hello_is_read_from_its_start(tmp_path):
    w = assert_same(write(tmp_path, _hello_in_segments([1, 0, 2, 3, 4, 5], "rst")), [300, 1000])
    r = row(w, proto="tcp").to_dict()
    assert (r["client_proto"], r["sni"], r["payload_cut"]) == ("tls", "eu1.ksc.kaspersky.com", False)
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed")
    assert r["detail"] == ("TLS handshake aborted: the server reset the connection (RST, RSTR) 0.02 s after the "
                           "ClientHello, before the server sent a byte")


def test_a_stream_whose_start_was_not_captured_is_not_cleartext(tmp_path):
    w = assert_same(write(tmp_path, _hello_in_segments([1, 2, 3, 4, 5], "tls")), [300, 1000])
    r = row(w, proto="tcp").to_dict()
    assert (r["client_proto"], r["server_proto"], r["payload_cut"]) == ("", "tls", True)
    assert (r["verdict"], r["reason"]) == ("ok", "")


def test_a_stream_whose_start_was_not_captured_then_reset(tmp_path):
    r = row(whole_flows(tmp_path, _hello_in_segments([1, 2, 3, 4, 5], "rst")), proto="tcp").to_dict()
    assert (r["client_proto"], r["payload_cut"]) == ("", True)
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed")


def test_cleartext_from_the_start_is_still_cleartext(tmp_path):
    # (the control: a client whose first segment, right after its SYN, is not TLS)
    recs = _hello_in_segments([], "rst")
    t, syn = recs[2]
    recs.insert(3, (1.03, bytes(Ether(src=MC, dst=MS) / IP(src=C, dst=S) / TCP(sport=50200, dport=23101, flags="PA",
                                                                              seq=1001, ack=5001) / b"hello there\r\n")))
    r = row(whole_flows(tmp_path, recs), proto="tcp").to_dict()
    assert (r["client_proto"], r["verdict"], r["reason"]) == ("other", "unexpected", "not_tls")


def test_a_real_capture_whose_server_start_was_not_captured():
    # skype_many-flows.pcap, 192.168.1.34:50036 -> 157.56.52.44:443: the server's first 79 bytes
    # are not in the capture (Wireshark: "Previous segment(s) not captured"); its FIN segment
    # from byte 80 on is no "other" protocol's start. The client never acknowledged them (its
    # ACK stays at the server's first byte): lost on the path, not by the capture, so the flow
    # is judged from its packets without the payload_cut mark (a path-MTU black hole looks the
    # same: test_pmtu_blackhole)
    from conftest import shared_corpus
    path = shared_corpus("public") / "skype_many-flows.pcap"
    w = whole(path)[0]
    r = row(w, orig_p=50036, resp_p=443).to_dict()
    assert (r["client_proto"], r["server_proto"], r["payload_cut"]) == ("tls", "", False)
