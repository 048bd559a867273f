"""Break-it 24 F8: a ClientHello split into more TCP segments than are inspected, then reset,
in a capture that kept every byte: the detail says the segments, not the snaplen, left it
unread; the post-quantum note only for a ClientHello large enough to hold such a key share."""
from __future__ import annotations

from chunkcmp import assert_same, whole, write
from test_breakit16_findings import _dn, _up
from test_tls_split_hello import _hello

from kscc_traffic.classify import PQ_HELLO_BYTES
from kscc_traffic.streams import MAX_SEGMENTS


def _split(hello: bytes, size: int):
    """The ClientHello in segments of ``size`` bytes, then the server's RST (TTL as the rest)."""
    t, cs, ss = 1000.0, 700001, 900001
    recs = [_up(t, flags="S", seq=cs - 1), _dn(t + .01, flags="SA", seq=ss - 1, ack=cs),
            _up(t + .02, flags="A", seq=cs, ack=ss)]
    for k in range(0, len(hello), size):
        recs.append(_up(t + .03 + k / 1e6, hello[k:k + size], flags="PA", seq=cs + k, ack=ss))
    recs.append(_dn(t + .05, flags="RA", seq=ss, ack=cs + len(hello)))
    return recs


def test_a_client_hello_in_too_many_segments_is_not_cut_by_the_snaplen(tmp_path):
    hello = _hello(False)
    assert len(hello) < PQ_HELLO_BYTES and len(hello) // 5 > MAX_SEGMENTS + 1
    path = write(tmp_path, _split(hello, 5))
    flows, _ = whole(path)
    (r,) = flows.to_dict("records")
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed")
    assert r["detail"] == (
        # (who closed and when, as for a ClientHello read whole: session 33)
        "TLS handshake aborted: the server reset the connection (RST, RSTR) 0.02 s after the ClientHello, before the "
        "server sent a byte (the ClientHello in more "
        f"than {MAX_SEGMENTS} TCP segments, more than are inspected: judged from the TCP packets); the "
        f"ClientHello was {len(hello)} bytes in more than {MAX_SEGMENTS + 1} segments: some firewalls and proxies "
        "fail on a ClientHello split across segments")
    assert "snaplen" not in r["detail"] and "post-quantum" not in r["detail"]
    assert_same(path, [200, 700])


def test_a_small_split_client_hello_gets_no_post_quantum_note(tmp_path):
    hello = _hello(False)
    path = write(tmp_path, _split(hello, 200))
    flows, _ = whole(path)
    (r,) = flows.to_dict("records")
    assert r["detail"].endswith(f"; the ClientHello was {len(hello)} bytes in 2 segments: some firewalls and "
                                "proxies fail on a ClientHello split across segments")
