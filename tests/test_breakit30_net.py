"""Break-it 30 (network scenarios of real troubleshooting captures): findings fixed.

F1. A ClientHello with an Encrypted ClientHello extension (ECH, 0xfe0d) sends the ECH provider's
public name as its SNI, the name asked being encrypted: such a flow on a KSC port was
``host_mismatch`` "public.example.net is not under *.ksc.kaspersky.com" without a word of ECH
(the parser saw the extension, nothing carried it to the judgement). The detail now says so
(hedged: a browser's GREASE ECH looks the same), and names the DNS name the address was looked
up as when it is under the mask. The vectorised TLS path reports ``ech`` as the reference does.

Captures built with scapy; each compared whole-file vs. chunked."""
from __future__ import annotations

import struct

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

from chunkcmp import assert_same, row, write
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
