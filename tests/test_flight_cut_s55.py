"""A server's first flight lost on the way (break-it s55 tls #1): the ServerHello arrived, the rest of
the flight (the certificate, full-size segments) never did, and the client gave up after waiting
10-30 s with a FIN or RST and no alert. That was told as the client refusing the server's
certificate ("how an agent refuses a certificate it does not trust…", advised as TLS inspection or
the agent's root certificates), though the client never had one. Now the detail says what of the
flight is missing and how long the client waited, and the advice is the path MTU's."""
from __future__ import annotations

import struct

import pandas as pd
import pytest

pytest.importorskip("scapy")

from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.chunked import ChunkedAnalysis  # noqa: E402
from kscc_traffic.protocols.tls import HRR_RANDOM, flight_short  # noqa: E402
from kscc_traffic.report import MTU_FIX, readiness  # noqa: E402
from kscc_traffic.rules import load_rules  # noqa: E402
from test_decode_more_encaps import client_hello  # noqa: E402
from test_tls_stall import CCS, T0, _V13, _Conv, _handshake, _record, _server_hello, _write  # noqa: E402

RULES = load_rules()
HELLO = client_hello("eu1.ksc.kaspersky.com")
SH13 = _record(22, _server_hello(exts=_V13, cipher=0x1301)) + CCS
SH12 = _record(22, _server_hello())
HRR13 = _record(22, _server_hello(HRR_RANDOM, _V13, 0x1301)) + CCS
LOST = ("the rest was lost on the way (the client never had the rest of the server's flight): packets lost, most often "
        "full-size segments lost, a path-MTU black hole? (ICMP 'fragmentation needed'/'packet too big' filtered)")


def _conv(sport: int, server: list[bytes], wait: float, close: str = "F", acked: int | None = None) -> _Conv:
    """The agent's ClientHello, the server's segments ``server`` (each acknowledged), then after
    ``wait`` s the client's FIN (``close`` 'F') or RST ('R'); ``acked``: what the client's close
    acknowledges instead of the bytes captured (a capture that missed segments the client had)."""
    c = _Conv(T0, sport)
    c.send(T0 + 0.03, "c", HELLO)
    t = T0 + 0.05
    for seg in server:
        c.send(t, "s", seg)
        c.send(t + 0.001, "c")
        t += 0.002
    ack = c.seq["s"] if acked is None else acked
    flags = "FA" if close == "F" else "RA"
    c.recs.append((t + wait, c._pkt("c", flags, c.seq["c"], ack)))
    return c


def _judged(tmp_path, *convs, seconds: int = 40):
    path = _write(tmp_path, list(convs), seconds, "f.pcap")
    flows = analyze_file(path, RULES).flows
    tcp = flows[flows["proto"] == "tcp"].set_index("orig_p")
    return path, flows, tcp


def test_tls13_server_hello_alone_then_the_client_gives_up(tmp_path):
    _, flows, tcp = _judged(tmp_path, _conv(50001, [SH13], 10.0))
    row = tcp.loc[50001]
    assert (row.purpose, row.verdict, row.reason) == ("agent_connection", "blocked", "tls_failed")
    assert row.detail == ("TLS handshake aborted: the client closed the connection (FIN, S2) 10.0 s after the "
                          "server's first flight stopped short (no encrypted record came after its ServerHello, "
                          "where TLS 1.3 sends the certificate), sending nothing itself, no alert either: " + LOST)
    fix = readiness(flows, RULES).set_index("purpose").loc["agent_connection"].fix
    assert MTU_FIX in fix and "certificate" not in fix.split(MTU_FIX)[0]


def test_tls13_record_cut_reset(tmp_path):
    # the encrypted flight's record announces 3,000 bytes; 1,200 of them arrived (one segment)
    enc = struct.pack("!BHH", 23, 0x0303, 3000) + bytes(1200)
    _, _, tcp = _judged(tmp_path, _conv(50002, [SH13, enc], 20.0, close="R"))
    row = tcp.loc[50002]
    assert (row.verdict, row.reason) == ("blocked", "tls_failed")
    assert row.detail.startswith("TLS handshake aborted: the client reset the connection (RST, RSTO) 20.0 s after "
                                 "the server's first flight stopped short (its last record, of 3,005 bytes, arrived "
                                 "only in part: 1,205 bytes), sending nothing itself")


def test_tls12_without_server_hello_done(tmp_path):
    _, flows, tcp = _judged(tmp_path, _conv(50003, [SH12], 15.0))
    row = tcp.loc[50003]
    assert (row.verdict, row.reason) == ("blocked", "tls_failed")
    assert ("(the rest of its flight never came after its ServerHello (no ServerHelloDone, nor a resumed session's "
            "ChangeCipherSpec))") in row.detail
    assert row.detail.endswith(LOST)


def test_what_the_client_acknowledged_the_capture_missed(tmp_path):
    # the client's close acknowledges 1,400 bytes more than were captured: it had them (a capture
    # that dropped packets), so nothing is said of a loss on the way
    c = _conv(50004, [SH13], 10.0)
    c2 = _conv(50004, [SH13], 10.0, acked=c.seq["s"] + 1400)
    _, _, tcp = _judged(tmp_path, c2)
    assert "stopped short" not in tcp.loc[50004].detail


def test_a_client_closing_at_once_did_not_wait(tmp_path):
    _, _, tcp = _judged(tmp_path, _conv(50005, [SH13], 0.2))
    detail = tcp.loc[50005].detail
    assert tcp.loc[50005].verdict == "blocked" and "stopped short" not in detail


@pytest.mark.parametrize("flight", [SH13 + _record(23, bytes(900)), SH12 + _record(22, _handshake(14, b""))])
def test_a_whole_flight_refused_is_still_a_refusal(tmp_path, flight):
    # (waiting 10 s, past the 1 s the client must wait: the flight itself judged whole)
    _, _, tcp = _judged(tmp_path, _conv(50006, [flight], 10.0))
    detail = tcp.loc[50006].detail
    assert "stopped short" not in detail and tcp.loc[50006].verdict == "blocked"


def test_a_certificate_that_came_is_said(tmp_path):
    # (TLS 1.2: the certificate arrived whole, the record after it cut: the client had the
    # certificate, not the rest; review s55 #5)
    from test_client_cert_s36 import _certificate, certificate
    flight = SH12 + _record(22, certificate(_certificate("eu1.ksc.kaspersky.com"))) + struct.pack("!BHH", 22, 0x0303, 300) + bytes(100)
    _, _, tcp = _judged(tmp_path, _conv(50007, [flight], 10.0))
    detail = tcp.loc[50007].detail
    assert "its last record, of 305 bytes, arrived only in part: 105 bytes" in detail
    assert "(the client had its certificate, for eu1.ksc.kaspersky.com, not the rest of the flight)" in detail


def test_chunked_reading_agrees(tmp_path):
    enc = struct.pack("!BHH", 23, 0x0303, 3000) + bytes(1200)
    convs = [_conv(50011, [SH13], 10.0), _conv(50012, [SH13, enc], 20.0, close="R"), _conv(50013, [SH12], 15.0)]
    path, flows, _ = _judged(tmp_path, *convs)
    small = pd.concat(list(ChunkedAnalysis(path, RULES, path.name, chunk_bytes=300).batches()), ignore_index=True)
    key = ["uid", "verdict", "reason", "detail"]
    assert flows[key].sort_values("uid").values.tolist() == small[key].sort_values("uid").values.tolist()
    assert sum("stopped short" in d for d in small["detail"]) == 3


@pytest.mark.parametrize("stream,version,said", [
    (SH13, 0x0304, "no encrypted record came after its ServerHello, where TLS 1.3 sends the certificate"),
    (SH13 + _record(23, bytes(40)), 0x0304, ""),
    (SH13[:7], 0x0304, "its last record, of 55 bytes, arrived only in part: 7 bytes"),
    (SH12 + _record(22, _handshake(14, b"")), 0x0303, ""),
    (SH12 + CCS + _record(22, bytes(40)), 0x0303, ""),                      # a resumed session
    (SH12 + b"\x16\x03", 0x0303, "its last record's header arrived only in part, 2 of 5 bytes"),
    (SH12, 0x0301, ""),                                                     # TLS 1.0: the client may refuse it
    (HRR13 + SH13, 0x0304, "no encrypted record came after its ServerHello"),  # after a HelloRetryRequest
    (HRR13, 0x0304, ""),
    (SH13 + b"\x15\x03\x03\x00\x02\x02\x28", 0x0304, ""),                    # an alert: told as such
    (b"HTTP/1.1 200 OK\r\n\r\n", 0x0304, ""),
    (b"", None, ""),
])
def test_flight_short(stream, version, said):
    got = flight_short(stream, version)
    assert got.startswith(said) if said else got == ""
