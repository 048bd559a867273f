"""Session 31, newcomer 2: two wrong verdicts on crafted captures (scapy-built here).

F1: a zero-window tarpit (Windows-style 1-byte probes, 0x16: the ClientHello's first byte) that
ends with the server's RST or FIN after ~15 s was ``unexpected``/``not_tls`` ("first bytes 16"),
while the same capture without the close is ``blocked``/``no_answer`` "window stayed closed (0)"
(inspect._window_closed refused any FIN/RST as the responder's last packet; its FIN octet also
counted as data). A reset sooner than CLOSED_THEN_SHUT_S stays a server's refusal
(test_breakit31_tcp.test_a_reset_after_the_closed_window_is_not_said_closed).

F2: the ClientHello lost by the capture, the server's ServerHello + Certificate captured, the
client answering with a cleartext fatal alert (bad_certificate + RST, handshake_failure + FIN)
was ``ok``; with the ClientHello captured it is ``blocked``/``tls_failed`` "TLS handshake
aborted: client: …". The client's captured bytes start with the alert record (client_proto tls),
so no start_lost was set and no ``ssl`` service either: the handshake branch was skipped.

Each test compares the whole-file analysis with chunked readings (chunkcmp) and the tshark
engine where installed; each fails on 5c3bc0c.
"""
from __future__ import annotations

import shutil

import pytest

from chunkcmp import RULES, assert_same, row, write
from test_breakit31_tcp import HELLO, _dn, _tarpit, _up
from test_tls_batch import ext, rec, server_hello

from kscc_traffic.analyze import analyze_file
from kscc_traffic.classify import WINDOW_CLOSED

HAVE_TSHARK = shutil.which("tshark") is not None


def _tshark_row(path) -> dict:
    a = analyze_file(path, RULES, engine="tshark")
    return row(a.flows, proto="tcp").to_dict()


def _check(tmp_path, recs, want: tuple, detail: str) -> None:
    """The capture ``recs`` judged ``want`` (verdict, reason, conn_state) with ``detail``, whole,
    in chunks and (when installed) by the tshark engine."""
    p = write(tmp_path, recs)
    w = assert_same(p, [300, 700])
    r = row(w, proto="tcp").to_dict()
    assert (r["verdict"], r["reason"], r["conn_state"]) == want
    assert r["detail"] == detail
    if HAVE_TSHARK:
        t = _tshark_row(p)
        assert (t["verdict"], t["reason"], t["conn_state"], t["detail"]) == want[:2] + (want[2], detail)


# F1 ------------------------------------------------------------------------------------------

def _tarpit_then(close: str, port: int = 23101) -> list:
    """:func:`_tarpit` with 1-byte probes (0x16), then the server's ``close`` (R or FA) 1 s
    after the last probe's zero-window answer (at 17.01 s)."""
    recs = _tarpit(HELLO[:1], port=port)
    recs.append(_dn(17.01, close, 5001, 1001, win=0, port=port))
    return recs


@pytest.mark.parametrize("port", [23101, 443])
@pytest.mark.parametrize("close,state", [("R", "RSTR"), ("RA", "RSTR"), ("FA", "S3")])
def test_a_tarpit_ending_with_a_server_close_is_a_closed_window(tmp_path, close, state, port):
    # (fails on 5c3bc0c: unexpected/not_tls "... first bytes 16 ...")
    # (session 32: the detail says how the connection then ended, test_fixdetails_s32)
    end = {"RSTR": "; then the server reset the connection (RSTR)", "S3": "; then the server closed the connection (FIN, S3)"}
    _check(tmp_path, _tarpit_then(close, port), ("blocked", "no_answer", state),
           WINDOW_CLOSED.format(s="16.0") + end[state])


def test_a_tarpit_without_a_close_is_unchanged(tmp_path):
    _check(tmp_path, _tarpit(HELLO[:1]), ("blocked", "no_answer", "S1"), WINDOW_CLOSED.format(s="16.0"))


def test_a_quick_reset_on_a_closed_window_is_not_said_closed(tmp_path):
    # (the server's RST 1.2 s after its SYN-ACK: under CLOSED_THEN_SHUT_S, a refusal)
    recs = _tarpit(HELLO[:1])[:5] + [_dn(1.2, "R", 5001, 0, win=0)]
    w = assert_same(write(tmp_path, recs), [300, 700])
    assert "window stayed closed" not in row(w, proto="tcp")["detail"]


def test_a_server_fin_after_its_data_is_no_closed_window(tmp_path):
    # (the server sent a byte before its FIN: it was no tarpit, whatever its windows)
    recs = _tarpit(HELLO[:1]) + [_dn(17.0, "PA", 5001, 1001, b"x", win=0), _dn(17.01, "FA", 5002, 1001, win=0)]
    w = assert_same(write(tmp_path, recs), [300, 700])
    assert "window stayed closed" not in row(w, proto="tcp")["detail"]


# F2 ------------------------------------------------------------------------------------------

def _chlost_client_alert(alert: int, close: str) -> list:
    """A handshake; the ClientHello (``HELLO``) not captured, the server acknowledging it and
    sending ServerHello + Certificate (TLS 1.2); the client's cleartext fatal alert ``alert``,
    then its ``close`` (RA or FA, the server answering a FIN)."""
    n = len(HELLO)
    sh = rec(22, server_hello([])) + rec(22, b"\x0b" + (1000).to_bytes(3, "big") + bytes(1000))
    al = rec(21, bytes([2, alert]))
    c = 1001 + n
    recs = [_up(0, "S", 1000), _dn(.01, "SA", 5000, 1001), _up(.02, "A", 1001, 5001),
            _dn(.05, "PA", 5001, c, sh), _up(.06, "PA", c, 5001 + len(sh), al)]
    if close == "RA":
        return recs + [_up(.07, "RA", c + len(al), 5001 + len(sh))]
    return recs + [_up(.07, "FA", c + len(al), 5001 + len(sh)), _dn(.08, "FA", 5001 + len(sh), c + len(al) + 1),
                   _up(.09, "A", c + len(al) + 1, 5002 + len(sh))]


@pytest.mark.parametrize("alert,name,close,state", [(42, "bad_certificate", "RA", "RSTO"),
                                                    (40, "handshake_failure", "FA", "SF")])
def test_a_client_alert_after_a_lost_client_hello_is_blocked(tmp_path, alert, name, close, state):
    # (fails on 5c3bc0c: ok, no detail)
    _check(tmp_path, _chlost_client_alert(alert, close), ("blocked", "tls_failed", state),
           f"TLS handshake aborted: client: {name} ({alert})")


def test_the_same_with_the_client_hello_captured_is_unchanged(tmp_path):
    # (g4 of the newcomer: handshake_failure and a FIN)
    recs = _chlost_client_alert(40, "FA")
    recs.insert(3, _up(.03, "PA", 1001, 5001, HELLO))
    _check(tmp_path, recs, ("blocked", "tls_failed", "SF"), "TLS handshake aborted: client: handshake_failure (40)")


def test_a_lost_client_hello_then_application_data_stays_ok(tmp_path):
    # (the control: no alert, the client's next records sent: the handshake went on)
    n = len(HELLO)
    sh = rec(22, server_hello([ext(43, b"\x03\x04")])) + rec(23, bytes(200))
    c = 1001 + n
    recs = [_up(0, "S", 1000), _dn(.01, "SA", 5000, 1001), _up(.02, "A", 1001, 5001),
            _dn(.05, "PA", 5001, c, sh), _up(.06, "PA", c, 5001 + len(sh), rec(23, bytes(50))),
            _dn(.07, "A", 5001 + len(sh), c + 55)]
    w = assert_same(write(tmp_path, recs), [300, 700])
    r = row(w, proto="tcp").to_dict()
    assert (r["verdict"], r["reason"], r["detail"]) == ("ok", "", "")
