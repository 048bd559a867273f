"""Break-it 29 (interception, proxies and IPv6 as a support engineer meets them): findings fixed.

F1. A TCP Fast Open SYN carrying the ClientHello (RFC 7413) answered by a SYN-ACK that accepts
the data (acknowledging the SYN's sequence number + 1 + its payload length, §4.2) was read as a
SYN-ACK "acknowledging another sequence number than the SYN's" (a stale answer, ``syn_answer``):
``rejected`` with a wrong detail and the ClientHello's bytes zeroed (``orig_bytes`` 0).
F2. Once accepted, the same connection reset (or closed) by the responder was "reset right after
the handshake, before any data (a SYN proxy ...)": Zeek writes no ``D`` for a SYN's payload, so
the history says nothing was sent, but ``orig_bytes`` and the SNI say the ClientHello was: it is
a TLS handshake aborted after the ClientHello, as when the ClientHello rides its own segment.
F3. An IPv6 proxy's address and port were written ``2001:db8:1::1:3128`` in the details (a 403/407
refusal, an authentication round, a tunnel, a wrong direction, an inbound connection): that reads
as one IPv6 address; it is ``[2001:db8:1::1]:3128`` (RFC 3986, as ``addresses.endpoint_text``
writes it and the report's advice already did).

Captures built with scapy; each compared whole-file vs. chunked, and the grouped judgement with
the per-row one."""
from __future__ import annotations

import struct

import pandas as pd
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from chunkcmp import assert_same, row, write
from test_classify_fast import assert_same as assert_same_as_reference
from test_newcomer23_verdicts import _internal
from test_tls_batch import client_hello, ext, rec, sni_ext
from test_tls_view_cut import _write

from kscc_traffic.classify import classify, inbound_detail
from kscc_traffic.rules import load_rules

RULES = load_rules()
C, S = ("192.0.2.10", 50001), ("203.0.113.10", 23101)
CI, SI = 100000, 500000          # the client's and the server's ISN
TFO = [("MSS", 1460), ("TFO", b"\x01\x02\x03\x04\x05\x06\x07\x08")]
HELLO = rec(22, client_hello([sni_ext([(0, b"eu1.ksc.kaspersky.com")]), ext(43, b"\x02\x03\x04"),
                              ext(51, struct.pack("!HHH", 34, 29, 32) + bytes(32))], ciphers=b"\x13\x01\x13\x02"),
            0x0301)
N = len(HELLO)


def _up(t, flags, seq, ack=0, data=b"", **kw):
    return t, bytes(Ether(src="02:00:00:00:00:10", dst="02:00:00:00:00:01") / IP(src=C[0], dst=S[0])
                    / TCP(sport=C[1], dport=S[1], flags=flags, seq=seq, ack=ack, **kw) / data)


def _dn(t, flags, seq, ack=0, data=b"", ttl=54):
    return t, bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:10") / IP(src=S[0], dst=C[0], ttl=ttl)
                    / TCP(sport=S[1], dport=C[1], flags=flags, seq=seq, ack=ack) / data)


def _tfo(end, ack=CI + 1 + N, ttl=54):
    """The ClientHello on the SYN, a SYN-ACK acknowledging ``ack``, the client's ACK, then the
    responder's ``end``: 'rst' (its RST, TTL ``ttl``) or 'fin' (its FIN, the client's FIN at once)."""
    recs = [_up(100.0, "S", CI, data=HELLO, options=TFO), _dn(100.01, "SA", SI, ack),
            _up(100.02, "A", ack, SI + 1)]
    if end == "rst":
        recs.append(_dn(100.03, "RA", SI + 1, ack, ttl=ttl))
    else:
        recs += [_dn(100.03, "FA", SI + 1, ack), _up(100.04, "FA", ack, SI + 2), _dn(100.05, "A", SI + 2, ack + 1)]
    return recs


def _one(tmp_path, recs):
    w = assert_same(write(tmp_path, recs), [150, 400])
    return row(w, proto="tcp").to_dict()


def test_a_tfo_syn_ack_accepting_the_data_is_not_a_stale_answer(tmp_path):
    # F1 + F2: the SYN-ACK acknowledges the SYN and its 133 bytes; then the server's RST
    r = _one(tmp_path, _tfo("rst"))
    # (T: the SYN's data, as Zeek's init_endpoint puts LastSeq at the SYN's end, session 61)
    assert (r["history"], r["conn_state"], r["sni"]) == ("SThAr", "RSTR", "eu1.ksc.kaspersky.com")
    assert r["orig_bytes"] == N == 133           # (was 0: the "stale" answer's counts zeroed)
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed")
    assert r["detail"] == ("TLS handshake aborted: the server reset the connection (RST, RSTR) 0.03 s after the "
                           "ClientHello, before the server sent a byte")


def test_a_tfo_connection_reset_by_a_device_on_the_path(tmp_path):
    # the reset with another TTL than the SYN-ACK's: the device on the path named, as without TFO
    r = _one(tmp_path, _tfo("rst", ttl=250))
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed")
    assert r["detail"].startswith("TLS handshake aborted: a reset in the server's name ended the connection "
                                  "(RST, RSTR) 0.03 s after the ClientHello, before the server sent a byte; "
                                  "the reset in the server's name came with TTL 250, its SYN-ACK with 54")
    assert "before any data" not in r["detail"]


def test_a_tfo_connection_the_server_closed(tmp_path):
    # F2 with the responder's FIN: not "closed right after the handshake, before the client sent a byte"
    r = _one(tmp_path, _tfo("fin"))
    assert r["history"] == "SThAfFa" and r["orig_bytes"] == N     # (T: the SYN's data, session 61)
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed")
    assert "before the client sent a byte" not in r["detail"]
    assert r["detail"].startswith("TLS handshake aborted: the server closed the connection (FIN")


def test_a_syn_ack_acknowledging_neither_end_is_still_stale(tmp_path):
    # (a SYN-ACK acknowledging a number that is neither the SYN's + 1 nor + 1 + its data: stale)
    recs = [_up(100.0, "S", CI, data=HELLO, options=TFO), _dn(100.01, "SA", SI, CI + 7777),
            _up(100.02, "R", CI + 7777)]
    r = _one(tmp_path, recs)
    assert (r["verdict"], r["reason"]) == ("blocked", "rejected")
    assert "acknowledging another sequence number than the SYN's" in r["detail"]


def test_a_refused_tfo_cookie_is_the_syn_acknowledged(tmp_path):
    # the server takes the SYN but not its data (ack = ISN + 1): the SYN answered all the same
    recs = [_up(100.0, "S", CI, data=HELLO, options=TFO), _dn(100.01, "SA", SI, CI + 1),
            _up(100.02, "A", CI + 1, SI + 1), _dn(100.03, "RA", SI + 1, CI + 1)]
    r = _one(tmp_path, recs)
    assert "another sequence number" not in r["detail"]
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed")


def test_the_grouped_judgement_keys_the_syn_payload(tmp_path):
    # two flows alike but for the payload on the SYN (history ShAr both): judged apart, as per row
    table = _internal(_write(tmp_path / "c.pcap", _tfo("rst")))
    table = table[table["proto"] == "tcp"]
    rows = pd.concat([table] * 2, ignore_index=True)
    for k, v in (("orig_bytes", [N, 0]), ("sni", ["eu1.ksc.kaspersky.com", ""]), ("client_proto", ["tls", ""])):
        rows[k] = v
    assert_same_as_reference(rows)
    got = classify(rows, RULES)
    assert got["reason"].tolist() == ["tls_failed", "rejected"]
    assert got["detail"].iloc[1].startswith("the responder reset the connection right after the handshake, before any data")


# --- F3: an IPv6 proxy's address and port ---------------------------------------------------------

P6, A6 = ("2001:db8:1::1", 3128), "2001:db8:1::10"
REQ = b"CONNECT eu1.ksc.kaspersky.com:23101 HTTP/1.1\r\nHost: eu1.ksc.kaspersky.com:23101\r\n\r\n"


def _v6(t, side, flags, seq, ack=0, data=b"", sport=50806):
    src, dst = ((A6, sport), P6) if side == "c" else (P6, (A6, sport))
    return t, bytes(Ether(src="02:00:00:00:00:10", dst="02:00:00:00:00:01") / IPv6(src=src[0], dst=dst[0])
                    / TCP(sport=src[1], dport=dst[1], flags=flags, seq=seq, ack=ack) / data)


def _asked(t, answer, sport, req=REQ):
    """A CONNECT to the IPv6 proxy answered ``answer``, then both sides' FIN."""
    c, s = 1000, 9000
    return [_v6(t, "c", "S", c - 1, sport=sport), _v6(t + .01, "s", "SA", s - 1, c, sport=sport),
            _v6(t + .02, "c", "A", c, s, sport=sport), _v6(t + .03, "c", "PA", c, s, req, sport=sport),
            _v6(t + .04, "s", "PA", s, c + len(req), answer, sport=sport),
            _v6(t + .05, "c", "FA", c + len(req), s + len(answer), sport=sport),
            _v6(t + .06, "s", "FA", s + len(answer), c + len(req) + 1, sport=sport),
            _v6(t + .07, "c", "A", c + len(req) + 1, s + len(answer) + 1, sport=sport)]


def test_an_ipv6_proxys_refusal_brackets_its_address(tmp_path):
    w = assert_same(write(tmp_path, _asked(100.0, b"HTTP/1.1 403 Forbidden\r\n\r\n", 50806)), [300])
    r = row(w, proto="tcp").to_dict()
    assert (r["verdict"], r["reason"]) == ("blocked", "rejected")
    assert r["detail"] == "the proxy [2001:db8:1::1]:3128 answered 403 \"Forbidden\" to CONNECT eu1.ksc.kaspersky.com:23101"


def test_an_ipv6_proxys_authentication_round_brackets_its_address(tmp_path):
    auth = REQ[:-2] + b"Proxy-Authorization: Basic eDp5\r\n\r\n"
    recs = (_asked(100.0, b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=x\r\n\r\n",
                   50806)
            + _asked(101.0, b"HTTP/1.1 200 Connection established\r\n\r\n", 50807, auth))
    w = assert_same(write(tmp_path, recs), [400])
    r = row(w, orig_p=50806).to_dict()
    assert r["verdict"] == "ok"
    assert r["detail"].endswith("(the proxy [2001:db8:1::1]:3128 answered 407 to CONNECT eu1.ksc.kaspersky.com:23101)")
    assert "2001:db8:1::1:3128" not in r["detail"]


def test_an_inbound_connection_to_an_ipv6_address_brackets_it():
    d = inbound_detail("2001:db8:9::5", "fd00::10", 23101, "agent_connection")
    assert " to [fd00::10]:23101, a local address, on a port the cloud server listens on (agent_connection)" in d
