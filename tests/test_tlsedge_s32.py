"""Session 32, s32-tls-edge: the TLS record starts test_fixdetails_s32 F1 left out.

E1: a client whose whole stream is a TLS handshake record never finished (its 5-byte header
``16 03 01 00 54`` alone, or 6 or more bytes of a ClientHello cut short by the client, not by the
snaplen, too few for a ClientHello to be read) was ``ok`` with an empty detail when the
connection was then reset or closed: it is ``blocked``/``tls_failed`` "TLS handshake aborted: …",
the detail saying what the client sent of how long a record; still open: ``ok`` with that detail.

E2: a server whose whole answer to a ClientHello is 1-4 bytes starting a TLS record header
(``16``, ``15 03 03``…) was called bytes "that are not TLS" (server_proto ``other``): it is TLS
(server_proto ``tls``), the detail saying it is too few bytes to tell what the server would send.

Each capture is judged whole, in chunks and (when installed) by the tshark engine
(test_fixdetails_s32._check).
"""
from __future__ import annotations

import pytest

from chunkcmp import assert_same, row, write
from test_breakit31_tcp import HELLO, _dn, _up
from test_fixdetails_s32 import _check, _first_bytes

from kscc_traffic.classify import TLS_RECORD_CUT, TLS_RECORD_START_SERVER
from kscc_traffic.inspect import tls_record_cut_parse, tls_record_cut_text

HEADER = b"\x16\x03\x01\x00\x54"
SAID5 = ("the client sent only the header (5 bytes: 16 03 01 00 54) of a TLS handshake record announcing 84 bytes, "
         f"none of its body: {TLS_RECORD_CUT}")


def test_the_hello_starts_with_the_header():
    # (the cases below cut this ClientHello: a 84-byte body after its header)
    assert HELLO[:5] == HEADER and len(HELLO) == 89


@pytest.mark.parametrize("end,want,did", [
    ("R", ("blocked", "tls_failed", "RSTR"), "the server reset the connection (RST, RSTR)"),
    ("cR", ("blocked", "tls_failed", "RSTO"), "the client reset the connection (RST, RSTO)"),
    ("FA", ("blocked", "tls_failed", "SF"), "the server closed the connection (FIN, SF)")])
def test_a_lone_record_header_then_a_close_is_an_aborted_handshake(tmp_path, end, want, did):
    # (fails on s32-today: ok with an empty detail)
    _check(tmp_path, _first_bytes(HEADER, end), want,
           f"TLS handshake aborted: {did}; {SAID5}, and the server sent no byte")


def test_a_lone_record_header_on_an_open_connection_says_so(tmp_path):
    _check(tmp_path, _first_bytes(HEADER, ""), ("ok", "", "S1"),
           f"{SAID5}; nothing more came from either side (the connection still open)")


@pytest.mark.parametrize("k,shown", [(6, "16 03 01 00 54 01"), (8, "16 03 01 00 54 01 00 00"),
                                     (9, "16 03 01 00 54 01 00 00 …")])
def test_a_client_hello_cut_short_by_the_client_then_a_reset(tmp_path, k, shown):
    _check(tmp_path, _first_bytes(HELLO[:k], "R"), ("blocked", "tls_failed", "RSTR"),
           f"TLS handshake aborted: the server reset the connection (RST, RSTR); the client sent only {k} bytes "
           f"({shown}) of a TLS handshake record of 89 bytes (a 84-byte body after its 5-byte header): "
           f"{TLS_RECORD_CUT}, and the server sent no byte")


def test_a_client_hello_long_enough_to_read_stays_a_client_hello(tmp_path):
    # (read as a ClientHello, service ssl: judged as one, the wait before the reset quoted)
    _check(tmp_path, _first_bytes(HELLO[:40], "R"), ("blocked", "tls_failed", "RSTR"),
           "TLS handshake aborted: the server reset the connection (RST, RSTR) 0.97 s after the ClientHello, "
           "before the server sent a byte")


def test_a_whole_record_is_not_a_record_cut_short(tmp_path):
    p = write(tmp_path, _first_bytes(HELLO, "R"))
    r = row(assert_same(p, [300]), proto="tcp")
    assert r["detail"].startswith("TLS handshake aborted: the server reset the connection (RST, RSTR) 0.97 s after")
    assert TLS_RECORD_CUT not in r["detail"]


def test_record_cut_text_round_trip():
    assert tls_record_cut_text(HEADER, 5) == "16 03 01 00 54 /5"
    assert tls_record_cut_text(HELLO[:8], 40) == "16 03 01 00 54 01 00 00 … /40"
    assert tls_record_cut_parse("16 03 01 00 54 01 00 00 … /40") == ("16 03 01 00 54 01 00 00 …", 40, 84)
    for other in ("16 03 01", "16", "", "47 45 54 20", "16 03 zz 00 54 /5", "16 03 01 00 54 /x"):
        assert tls_record_cut_parse(other) is None, other


def _answered(data: bytes, end: str, port: int = 23101) -> list:
    """Handshake, the whole ClientHello, the server's ``data``, the client's ACK, then ``end``:
    ``R`` the server's RST at 1 s, ``''`` nothing more."""
    n, m = 1001 + len(HELLO), 5001 + len(data)
    recs = [_up(0, "S", 1000, port=port), _dn(.01, "SA", 5000, 1001, port=port), _up(.02, "A", 1001, 5001, port=port),
            _up(.03, "PA", 1001, 5001, HELLO, port=port), _dn(.04, "PA", 5001, n, data, port=port),
            _up(.05, "A", n, m, port=port)]
    if end == "R":
        recs.append(_dn(1.0, "R", m, 0, port=port))
    return recs


SERVER = [(b"\x16", "1 byte (16)"), (b"\x15\x03\x03", "3 bytes (15 03 03)"), (b"\x16\x03\x03\x00", "4 bytes (16 03 03 00)")]


@pytest.mark.parametrize("data,said", SERVER)
def test_a_server_answering_a_tls_record_start_then_reset(tmp_path, data, said):
    # (fails on s32-today: "... the server answered with bytes that are not TLS (...)")
    _check(tmp_path, _answered(data, "R"), ("blocked", "tls_failed", "RSTR"),
           "TLS handshake aborted: the server reset the connection (RST, RSTR) after its own answer to the "
           f"ClientHello, before the client's next flight; the server answered with only {said}, "
           f"{TLS_RECORD_START_SERVER}")


@pytest.mark.parametrize("data,said", SERVER[:2])
def test_a_server_answering_a_tls_record_start_on_an_open_connection(tmp_path, data, said):
    p = write(tmp_path, _answered(data, ""))
    r = row(assert_same(p, [300]), proto="tcp")
    assert (r["verdict"], r["reason"], r["server_proto"]) == ("ok", "", "tls")
    assert r["detail"] == f"the server answered with only {said}, {TLS_RECORD_START_SERVER}"
    _check(tmp_path, _answered(data, ""), ("ok", "", "S1"), r["detail"])


def test_a_server_answering_other_bytes_stays_not_tls(tmp_path):
    _check(tmp_path, _answered(b"\x00\x01\x02", "R"), ("blocked", "tls_failed", "RSTR"),
           "TLS handshake aborted: the server reset the connection (RST, RSTR) after its own answer to the "
           "ClientHello, before the client's next flight; the server answered with bytes that are not TLS "
           "(3 bytes: 00 01 02)")


@pytest.mark.parametrize("k", [5, 9])
def test_a_record_whose_rest_the_capture_lost_is_not_cut_by_the_client(tmp_path, k):
    # the server acknowledged the whole ClientHello, the capture kept only its first k bytes: not
    # "cut short by the client" (what it is then judged stays as before this branch)
    n = 1001 + len(HELLO)
    recs = [_up(0, "S", 1000), _dn(.01, "SA", 5000, 1001), _up(.02, "A", 1001, 5001),
            _up(.03, "PA", 1001, 5001, HELLO[:k]), _dn(.05, "A", 5001, n), _dn(1.0, "R", 5001, 0)]
    r = row(assert_same(write(tmp_path, recs), [300]), proto="tcp")
    assert r["conn_state"] == "RSTR"
    assert TLS_RECORD_CUT not in r["detail"] and "the client sent only" not in r["detail"]
