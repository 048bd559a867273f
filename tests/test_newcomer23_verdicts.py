"""Newcomer 23 F8, F19, F20: verdicts and details checked against the vendor's page.

- F8: cleartext sent by the client on a TLS port: the detail says so and quotes its first bytes.
- F19: a host_mismatch named by the server's certificate says so.
- F20: a handshake closed without an alert says who closed, and after what.

Real TLS 1.2 handshakes (Python's ssl in memory, ``test_protocols_tls.run_handshake``) in TCP
sessions built with scapy."""
from __future__ import annotations

import ssl

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from test_protocols_tls import run_handshake
from test_tls_view_cut import _flights, _write

from kscc_traffic import analyze
from kscc_traffic.analyze import analyze_packets
from kscc_traffic.capture.decode import decode
from kscc_traffic.capture.files import read_frames
from kscc_traffic.classify import CLIENT_CLEARTEXT
from kscc_traffic.rules import load_rules
from test_classify_fast import assert_same
from chunkcmp import assert_same as assert_same_chunked

RULES = load_rules()
AGENT, CLOUD, DP = "192.0.2.10", "203.0.113.10", "192.0.2.20"
SNI = "eu1.ksc.kaspersky.com"


def _session(parts, client=(AGENT, 50000), server=(CLOUD, 23101), close="c", t0=100.0):
    """(ts, frame) of a TCP connection: handshake, ``parts`` = [(side 'c'/'s', bytes)] one
    segment each, then FIN both ways, ``close`` ('c' or 's') first."""
    seq = {"c": 1000, "s": 5000}
    out, t = [], t0

    def seg(side, flags, data=b""):
        nonlocal t
        src, dst = (client, server) if side == "c" else (server, client)
        other = "s" if side == "c" else "c"
        pkt = Ether(src="02:00:00:00:00:10", dst="02:00:00:00:00:01") / IP(src=src[0], dst=dst[0]) / TCP(
            sport=src[1], dport=dst[1], flags=flags, seq=seq[side], ack=seq[other] if "A" in flags else 0) / data
        out.append((t, pkt))
        t += 0.001
        seq[side] += len(data) + (1 if "S" in flags or "F" in flags else 0)

    seg("c", "S")
    seg("s", "SA")
    seg("c", "A")
    for side, data in parts:
        seg(side, "PA", data)
    first, second = (("c", "s") if close == "c" else ("s", "c"))
    seg(first, "FA")
    seg(second, "FA")
    seg(first, "A")
    return out


def _tls12(tmp_path, sni=SNI, names=(SNI,), **kw):
    """(client records, server records) of a TLS 1.2 handshake (``verify``: the client refuses
    the self-signed certificate with an alert)."""
    cs, ss, err = run_handshake(tmp_path, ssl.TLSVersion.TLSv1_2, sni, list(names), **kw)
    return _flights(cs), _flights(ss), err


def _first_flight(s):
    """The server's records up to its ServerHelloDone (before its ChangeCipherSpec)."""
    ccs = next((i for i, r in enumerate(s) if r[0] == 20), len(s))
    return b"".join(s[:ccs])


def _complete(c, s, **kw):
    """A whole TLS 1.2 handshake: the client's and the server's records in handshake order."""
    ccs = next(i for i, r in enumerate(s) if r[0] == 20)
    return _session([("c", c[0]), ("s", b"".join(s[:ccs])), ("c", b"".join(c[1:])), ("s", b"".join(s[ccs:]))],
                    **kw)


def _flows(tmp_path, records, name="c.pcap"):
    path = _write(tmp_path / name, records)
    flows = analyze(str(path))
    return flows[flows["purpose"] != "dns"].reset_index(drop=True), path


def _internal(path):
    """The flow table with the internal columns classify reads (for the grouped-path check)."""
    table, _ = analyze_packets(decode(read_frames(path)), RULES, path.name, internal=True)
    return table


# --- F20: who closed the handshake -------------------------------------------------------------


def test_the_client_closing_after_the_servers_certificate_is_told(tmp_path):
    """s34: no alert, the client closes after the server's first flight."""
    c, s, _ = _tls12(tmp_path, names=("*.ksc.kaspersky.com", SNI))
    flows, path = _flows(tmp_path, _session([("c", c[0]), ("s", _first_flight(s))]))
    r = flows.iloc[0]
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed")
    assert r["detail"] == ("TLS handshake aborted: the client closed the connection (FIN, SF) after the server's "
                           "last flight (its certificate, for *.ksc.kaspersky.com, seen), sending nothing after it, "
                           "no alert either: how an agent refuses a certificate it does not trust without saying "
                           "so (a TLS-inspecting proxy's?)")
    assert_same(_internal(path))
    assert_same_chunked(path, [500])      # (a chunked or live analysis: the same detail)


def test_the_server_closing_after_the_client_hello_is_told(tmp_path):
    c, _, _ = _tls12(tmp_path)
    flows, _ = _flows(tmp_path, _session([("c", c[0])], close="s"))
    r = flows.iloc[0]
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed")
    # (0.001 s between the ClientHello and the server's FIN: its wait, to the hundredth)
    assert r["detail"] == ("TLS handshake aborted: the server closed the connection (FIN, SF) 0.00 s after the "
                           "ClientHello, before the server sent a byte")


# --- F19: the name from the certificate --------------------------------------------------------


def test_a_host_mismatch_named_by_the_certificate_says_so(tmp_path):
    """s25: no SNI, no DNS: the certificate's name is outside the mask."""
    c, s, _ = _tls12(tmp_path, sni=None, names=("www.example.com",))
    flows, _ = _flows(tmp_path, _complete(c, s))
    r = flows.iloc[0]
    assert (r["server_name"], r["verdict"], r["reason"]) == ("", "unexpected", "host_mismatch")
    assert r["detail"] == "www.example.com is not under *.ksc.kaspersky.com (from the server's certificate)"


# --- F8: the client's cleartext ----------------------------------------------------------------


@pytest.mark.parametrize("data, quoted", [
    (b"GET / HTTP/1.1\r\nHost: eu1.ksc.kaspersky.com:23101\r\n\r\n",
     'an HTTP request, "GET / HTTP/1.1\\x0d\\x0aHost: eu1.ksc.kaspersky.…"'),
    (bytes(range(1, 41)), "bytes that are no valid TLS record nor HTTP, first bytes 01 02 03 04 05 06 07 08"),
    # (untrusted text: a terminal escape is escaped, never passed on)
    (b"\x1b]0;owned\x07 hello there, this is text\n",
     'bytes that are no valid TLS record nor HTTP, "\\x1b]0;owned\\x07 hello there, this is text"'),
])
def test_the_clients_cleartext_is_quoted(tmp_path, data, quoted):
    """s03/s03b: the client (not a server or proxy) sent cleartext on a TLS port."""
    flows, path = _flows(tmp_path, _session([("c", data), ("s", b"HTTP/1.1 200 OK\r\n\r\n")]))
    r = flows.iloc[0]
    assert (r["purpose"], r["verdict"], r["reason"]) == ("agent_connection", "unexpected", "not_tls")
    assert r["detail"] == (f"{CLIENT_CLEARTEXT}: {quoted} (not an agent's TLS: another program, or something on "
                           "the way rewriting the agent's connection)")
    assert_same(_internal(path))
    assert_same_chunked(path, [200])      # (the client's first bytes kept by a chunked analysis too)


def test_a_server_answering_a_client_hello_in_http_keeps_its_detail(tmp_path):
    """s40 (not the client's cleartext): unchanged, the server's answer quoted."""
    c, _, _ = _tls12(tmp_path)
    flows, _ = _flows(tmp_path, _session([("c", c[0]), ("s", b"HTTP/1.1 302 Found\r\nLocation: x\r\n\r\n")],
                                         close="s"))
    r = flows.iloc[0]
    assert (r["verdict"], r["reason"]) == ("unexpected", "not_tls")
    assert r["detail"] == "the server answered HTTP (302) to the ClientHello where TLS is documented"
