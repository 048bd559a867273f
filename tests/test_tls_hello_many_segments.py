"""A ClientHello split into more TCP segments than are inspected (streams.MAX_SEGMENTS + 1 per
direction), as DPI-evasion tools do (SpoofDPI's ``-window-size``, GoodbyeDPI, zapret): the
client's inspected segments end before the server's answer, so whether the handshake went on is
read from the server's acknowledgements (inspect._went_on), in every analysis alike (break-it 18
F1: a working connection was ``blocked``/``tls_failed`` "no next flight ... cut by the snaplen")."""
from __future__ import annotations

import pandas as pd
import pytest

from chunkcmp import RULES, assert_same
from kscc_traffic.analyze import analyze_file
from kscc_traffic.streams import MAX_SEGMENTS
from test_tls_view_cut import _flights, _handshake, _interleaved, _one, _session, _write

WINDOW = ("the ClientHello in more than 24 TCP segments, more than are inspected: judged from the TCP "
          "packets and the server's acknowledgements")


def _pieces(hello: bytes, n: int) -> list[tuple[str, bytes]]:
    """``hello`` in ``n`` client segments of nearly equal size."""
    cuts = [len(hello) * k // n for k in range(n + 1)]
    return [("c", hello[a:b]) for a, b in zip(cuts, cuts[1:])]


@pytest.mark.parametrize("n", [MAX_SEGMENTS, MAX_SEGMENTS + 1, MAX_SEGMENTS + 2, 40])
def test_a_working_handshake_after_a_hello_in_many_segments_is_ok(tmp_path, n):
    cs, ss, err = _handshake(tmp_path)
    assert err is None
    parts = _interleaved(cs, ss)
    pieces = _pieces(parts[0][1], n)
    assert len(pieces) == n
    path = _write(tmp_path / f"n{n}.pcap", _session(pieces + parts[1:]))
    r = _one(path)
    assert r["sni"] == "eu1.ksc.kaspersky.com"
    assert r["payload_cut"] and r["tls_established"]     # (the client sent more than 24 data segments)
    assert (r["verdict"], r["reason"], r["detail"]) == ("ok", "", "")
    assert_same(path, [900, 3000])


def test_the_tshark_engine_agrees(tmp_path):
    cs, ss, err = _handshake(tmp_path)
    parts = _interleaved(cs, ss)
    path = _write(tmp_path / "t.pcap", _session(_pieces(parts[0][1], 30) + parts[1:]))
    a = analyze_file(path, RULES).flows
    b = analyze_file(path, RULES, engine="tshark").flows
    cols = ["uid", "payload_cut", "tls_established", "verdict", "reason", "detail"]
    pd.testing.assert_frame_equal(a[cols].reset_index(drop=True), b[cols].reset_index(drop=True))
    assert a["verdict"].tolist() == ["ok"]


def test_no_next_flight_after_a_hello_in_many_segments_stays_failed(tmp_path):
    """The server answers, the client sends nothing more and closes (a certificate it did not
    like, say): still ``tls_failed``, the detail saying why the bytes were not read (not the
    snaplen: every frame is whole)."""
    cs, ss, err = _handshake(tmp_path)
    c, s = _flights(cs), _flights(ss)
    ccs_s = next(i for i, x in enumerate(s) if x[0] == 20)
    path = _write(tmp_path / "f.pcap", _session(_pieces(c[0], 30) + [("s", b"".join(s[:ccs_s]))]))
    r = _one(path)
    assert r["payload_cut"] and not r["tls_established"]
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed")
    assert r["detail"].startswith("TLS handshake aborted: connection closed (SF) with no next flight from "
                                  f"the client after the server's answer ({WINDOW})")
    assert "snaplen" not in r["detail"]
    # (the segments counted are those read: every analysis says the same)
    size = len(c[0])
    assert f"; the ClientHello was {size:,} bytes in more than 25 segments: some firewalls" in r["detail"]
    assert_same(path, [900, 3000])


def test_a_next_flight_the_server_never_acknowledged_does_not_count(tmp_path):
    """The client's next flight is sent but the server acknowledges none of it (dropped on its
    way) and closes: not a handshake that went on."""
    cs, ss, err = _handshake(tmp_path)
    c, s = _flights(cs), _flights(ss)
    ccs_s = next(i for i, x in enumerate(s) if x[0] == 20)
    recs = _session(_pieces(c[0], 30) + [("s", b"".join(s[:ccs_s])), ("c", b"".join(c[1:]))])
    # the server's FIN acknowledges only the ClientHello: the flight never arrived
    ts, fin = recs[-2]
    assert fin["TCP"].flags == "FA"
    fin["TCP"].ack -= len(b"".join(c[1:]))
    del fin["IP"].chksum, fin["TCP"].chksum
    path = _write(tmp_path / "d.pcap", recs)
    r = _one(path)
    assert not r["tls_established"]
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed")
    assert WINDOW in r["detail"]
    assert_same(path, [900, 3000])
