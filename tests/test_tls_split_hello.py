"""A ClientHello larger than one TCP segment (a post-quantum key share, X25519MLKEM768, adds
1,216 bytes) is what some firewalls and proxies fail on: a failed handshake's detail says when
the ClientHello was split (session 18 leftover)."""
from __future__ import annotations

import struct

import pytest

from chunkcmp import assert_same, whole, write
from test_breakit16_findings import _dn, _up
from test_tls_batch import client_hello, ext, rec, sni_ext

SPLIT = ("the ClientHello was 1,555 bytes in 2 segments: some firewalls and proxies fail on a ClientHello "
         "split across segments (a post-quantum key share, X25519MLKEM768, makes it this large)")


def _hello(pq: bool) -> bytes:
    share = struct.pack("!HH", 29, 32) + bytes(32)
    if pq:
        share = struct.pack("!HH", 0x11EC, 1216) + bytes(1216) + share
    exts = [sni_ext([(0, b"eu1.ksc.kaspersky.com")]), ext(43, b"\x02\x03\x04"),
            ext(51, struct.pack("!H", len(share)) + share), ext(21, bytes(200))]
    return rec(22, client_hello(exts), 0x0301)


def _refused(hello: bytes):
    """The ClientHello in segments of at most 1448 bytes, then the server's RST."""
    t, cs, ss = 1000.0, 700001, 900001
    recs = [_up(t, flags="S", seq=cs - 1), _dn(t + .01, flags="SA", seq=ss - 1, ack=cs),
            _up(t + .02, flags="A", seq=cs, ack=ss)]
    for k in range(0, len(hello), 1448):
        recs.append(_up(t + .03 + k / 1e6, hello[k:k + 1448], flags="PA", seq=cs + k, ack=ss))
    recs.append(_dn(t + .05, flags="RA", seq=ss, ack=cs + len(hello)))
    return recs


@pytest.mark.parametrize("pq", [True, False], ids=["split", "one-segment"])
def test_a_refused_split_client_hello_says_it_was_split(tmp_path, pq):
    hello = _hello(pq)
    assert (len(hello) == 1555) == pq
    path = write(tmp_path, _refused(hello))
    flows, _ = whole(path)
    (r,) = flows.to_dict("records")
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed")
    # (who closed and when, newcomer 23 F20)
    assert r["detail"] == ("TLS handshake aborted: the server reset the connection (RST, RSTR) 0.02 s after the "
                           "ClientHello, before the server sent a byte" + (f"; {SPLIT}" if pq else ""))
    assert_same(path, [200, 700])
