"""Break-it 23 F5: a TLS handshake the client reset (or closed), the server's packets coming only
after that: what the server sent after the close answered nothing the client had.

The detail read "the client reset the connection … after the client's next flight, which the
server had not answered, and the server sent more after it" for a ClientHello the server had not
answered at all (its bytes after the reset counted as an answer before it). The server's bytes
before the close are now an internal column (``tls_close_served``, ``inspect._close_waits``).
Captures built with scapy around a real TLS 1.2 handshake; the grouped judgement is compared
with the per-row one, the chunked analysis with the whole-file one."""
from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from chunkcmp import assert_same as assert_same_chunked
from pcapbuild import CLIENT_MAC, SERVER_MAC
from test_classify_fast import assert_same
from test_newcomer23_verdicts import AGENT, CLOUD, _first_flight, _internal, _tls12
from test_tls_view_cut import _write

from kscc_traffic import analyze


@pytest.fixture(scope="module")
def hello_and_flight(tmp_path_factory):
    c, s, _ = _tls12(tmp_path_factory.mktemp("tls"))
    return c[0], _first_flight(s)


def _conn(steps, t0=100.0):
    """(ts, frame): ``steps`` [(t, side 'c'/'s', flags, payload[, seq])] after t0, sequence numbers
    tracked (an explicit ``seq`` sends again and does not advance them)."""
    seq = {"c": 1000, "s": 5000}
    out = []
    for t, side, flags, data, *again in steps:
        src, dst = ((AGENT, 50000), (CLOUD, 23101)) if side == "c" else ((CLOUD, 23101), (AGENT, 50000))
        other = "s" if side == "c" else "c"
        pkt = (Ether(src=CLIENT_MAC if side == "c" else SERVER_MAC, dst=SERVER_MAC if side == "c" else CLIENT_MAC)
               / IP(src=src[0], dst=dst[0])
               / TCP(sport=src[1], dport=dst[1], flags=flags, seq=again[0] if again else seq[side],
                     ack=seq[other] if "A" in flags else 0) / data)
        out.append((t0 + t, pkt))
        if not again:
            seq[side] += len(data) + (1 if "S" in flags or "F" in flags else 0)
    return out


def _judged(tmp_path, steps):
    path = _write(tmp_path / "c.pcap", _conn(steps))
    flows = analyze(str(path))
    flows = flows[flows["purpose"] != "dns"].reset_index(drop=True)
    assert len(flows) == 1
    internal = _internal(path)
    assert_same(internal)
    assert_same_chunked(path, [700])
    r = flows.iloc[0]
    served = int(internal[internal["resp_p"] == 23101].iloc[0]["tls_close_served"])
    return r["history"], served, (r["verdict"], r["reason"], r["detail"])


def _hello(ch):
    return [(0, "c", "S", b""), (0.01, "s", "SA", b""), (0.02, "c", "A", b""), (0.03, "c", "PA", ch)]


def test_server_flight_only_after_the_clients_reset(tmp_path, hello_and_flight):
    """ClientHello, the client's RST 0.57 s later, then the server's whole flight: the client
    reset a ClientHello not answered yet (was "after the client's next flight, which the server
    had not answered, and the server sent more after it")."""
    ch, flight = hello_and_flight
    hist, served, got = _judged(tmp_path, _hello(ch) + [(0.6, "c", "RA", b""), (0.7, "s", "PA", flight)])
    assert (hist, served) == ("ShADRd", 0)
    assert got == ("blocked", "tls_failed", "TLS handshake aborted: the client reset the connection (RST, RSTO) "
                   "0.57 s after the ClientHello, before the server sent a byte, and the server sent its first "
                   "bytes only after it")


def test_server_ack_before_and_flight_after_the_clients_reset(tmp_path, hello_and_flight):
    """The server acknowledged the ClientHello (no byte of its own) before the reset: the same."""
    ch, flight = hello_and_flight
    hist, served, got = _judged(tmp_path, _hello(ch) + [(0.04, "s", "A", b""), (0.6, "c", "RA", b""),
                                                         (0.7, "s", "PA", flight)])
    assert (hist, served) == ("ShADaRd", 0)
    assert got[2] == ("TLS handshake aborted: the client reset the connection (RST, RSTO) 0.57 s after the "
                      "ClientHello, before the server sent a byte, and the server sent its first bytes only after it")


def test_server_flight_cut_by_the_clients_reset(tmp_path, hello_and_flight):
    """Half the server's flight, the client's RST, the other half: the client reset while the
    answer was coming (not "after the server's last flight (its certificate seen)": the client
    had not all of it)."""
    ch, flight = hello_and_flight
    half = len(flight) // 2
    hist, served, got = _judged(tmp_path, _hello(ch) + [(0.05, "s", "PA", flight[:half]), (0.06, "c", "RA", b""),
                                                         (0.07, "s", "PA", flight[half:])])
    assert (hist, served) == ("ShADdR", half)
    assert got == ("blocked", "tls_failed", f"TLS handshake aborted: the client reset the connection (RST, RSTO) "
                   f"while the server's answer was still coming ({half:,} bytes of it before the RST, more after "
                   "it), sending nothing itself, no alert either")


def test_server_flight_sent_again_after_the_clients_reset_is_no_more(tmp_path, hello_and_flight):
    """The server's whole flight, the client's RST, the flight sent again (no new byte): the
    client reset after the server's flight, its certificate seen (unchanged)."""
    ch, flight = hello_and_flight
    hist, served, got = _judged(tmp_path, _hello(ch) + [(0.05, "s", "PA", flight), (0.06, "c", "RA", b""),
                                                         (0.3, "s", "PA", flight, 5001)])
    assert (hist, served) == ("ShADdRt", len(flight))     # (t: the flight sent again, Zeek's T, session 61)
    assert got[2] == ("TLS handshake aborted: the client reset the connection (RST, RSTO) after the server's last "
                      "flight (its certificate, for eu1.ksc.kaspersky.com issued by CN=eu1.ksc.kaspersky.com, seen), "
                      "sending nothing after it, no alert either: how an agent refuses a certificate it does not trust without saying so (a "
                      "TLS-inspecting proxy's?)")


@pytest.mark.parametrize("flags, then", [("RA", "reset the connection"), ("FA", "closed")])
def test_clienthello_unanswered_for_seconds_then_the_server_after_the_close(tmp_path, hello_and_flight, flags, then):
    """No answer for 3.57 s, the client's RST (or FIN), then the server's flight: the ClientHello
    not answered (was "after the client's next flight ... and the server sent more after it")."""
    ch, flight = hello_and_flight
    hist, served, got = _judged(tmp_path, _hello(ch) + [(3.6, "c", flags, b""), (3.7, "s", "PA", flight)])
    assert served == 0
    assert got == ("blocked", "tls_failed", f"ClientHello not answered: no byte from the server for 3.6 s, then the "
                   f"client {then} (the server's first bytes came only after it)")


# --- a FIN+RST in one packet (history I) closes the handshake too ---------------------------------


def test_finrst_after_the_servers_flight_is_the_clients_reset(tmp_path, hello_and_flight):
    """The client's FIN+RST after the server's flight (history ``I``, no F nor R letter): who
    closed is told, as for its RST (inspect read only F/R letters: "connection closed (RSTO)")."""
    ch, flight = hello_and_flight
    hist, served, got = _judged(tmp_path, _hello(ch) + [(0.05, "s", "PA", flight), (0.06, "c", "FRA", b"")])
    assert (hist, served) == ("ShADdI", len(flight))
    assert got[2] == ("TLS handshake aborted: the client reset the connection (RST, RSTO) after the server's last "
                      "flight (its certificate, for eu1.ksc.kaspersky.com issued by CN=eu1.ksc.kaspersky.com, seen), "
                      "sending nothing after it, no alert either: how an agent refuses a certificate it does not trust without saying so (a "
                      "TLS-inspecting proxy's?)")


def test_finrst_after_seconds_of_silence_is_the_unanswered_clienthello(tmp_path, hello_and_flight):
    ch, _ = hello_and_flight
    hist, served, got = _judged(tmp_path, _hello(ch) + [(3.6, "c", "FRA", b"")])
    assert (hist, served) == ("ShADI", 0)
    assert got == ("blocked", "tls_failed", "ClientHello not answered: no byte from the server for 3.6 s, then the "
                   "client reset the connection")
