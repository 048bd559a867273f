"""A TLS handshake whose end is not in the bytes inspected (``payload_cut``) is judged from its
packets: established when the client's next flight and the server's answer to it are there
(inspect._went_on), failed when not.

Real TLS 1.2 handshakes (Python's ssl, in memory) put into TCP sessions, then: a server flight
larger than streams.MAX_BYTES, a capture with a small snaplen: ``ok``, established. Real failures
(an alert, also one past the cut, a closed connection, a server that never answered) stay
``blocked / tls_failed``. Also: a certificate pattern ``*.ksc.kaspersky.com`` answering a
ClientHello without SNI is under the rule's mask."""
from __future__ import annotations

import ssl
import struct

import pandas as pd
import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from kscc_traffic import analyze
from kscc_traffic.streams import MAX_BYTES, MAX_SEGMENTS
from test_protocols_tls import run_handshake

CLIENT, SERVER = ("192.0.2.10", 50000), ("203.0.113.10", 23101)
SNI = "eu1.ksc.kaspersky.com"


def _session(parts, close=True):
    """(ts, frame) of a TCP connection: handshake, then ``parts`` = [(side 'c'/'s', bytes)], one
    segment each, then FIN both ways."""
    seq = {"c": 1000, "s": 5000}
    out, t = [], 100.0

    def seg(side, flags, data=b""):
        nonlocal t
        src, dst = (CLIENT, SERVER) if side == "c" else (SERVER, CLIENT)
        other = "s" if side == "c" else "c"
        pkt = Ether(src="02:00:00:00:00:10", dst="02:00:00:00:00:01") / IP(src=src[0], dst=dst[0]) / TCP(sport=src[1], dport=dst[1], flags=flags,
                                                         seq=seq[side], ack=seq[other] if "A" in flags else 0) / data
        out.append((t, pkt))
        t += 0.001
        seq[side] += len(data) + (1 if "S" in flags or "F" in flags else 0)

    seg("c", "S")
    seg("s", "SA")
    seg("c", "A")
    for side, data in parts:
        seg(side, "PA", data)
    if close:
        seg("c", "FA")
        seg("s", "FA")
        seg("c", "A")
    return out


def _write(path, records, snaplen=65535):
    """A classic pcap of ``records``, each frame cut to ``snaplen`` bytes (caplen < wirelen)."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1)]
    for ts, pkt in records:
        data = bytes(pkt)
        us = round(ts * 1e6)
        cap = data[:snaplen]
        out.append(struct.pack("<IIII", us // 10**6, us % 10**6, len(cap), len(data)) + cap)
    path.write_bytes(b"".join(out))
    return path


def _flights(data: bytes) -> list[bytes]:
    """TLS records of a direction, one per element (each sent as its own segment)."""
    out, off = [], 0
    while off + 5 <= len(data):
        n = 5 + int.from_bytes(data[off + 3:off + 5], "big")
        out.append(data[off:off + n])
        off += n
    return out


def _handshake(tmp_path, names=("*.ksc.kaspersky.com",), **kw):
    cs, ss, err = run_handshake(tmp_path, ssl.TLSVersion.TLSv1_2, kw.pop("sni", SNI), list(names), **kw)
    return cs, ss, err


def _one(path):
    flows = analyze(str(path))
    tcp = flows[flows["proto"] == "tcp"]
    assert len(tcp) == 1, tcp
    return tcp.iloc[0]


def _interleaved(cs: bytes, ss: bytes):
    """Client and server records in handshake order: client first flight, server first flight,
    client's second, server's second, then the rest."""
    c, s = _flights(cs), _flights(ss)
    # ClientHello | server flight up to ServerHelloDone | client CKE+CCS+Finished(+data) | server CCS+Finished(+data)
    ccs_c = next(i for i, r in enumerate(c) if r[0] == 20)
    ccs_s = next(i for i, r in enumerate(s) if r[0] == 20)
    return ([("c", c[0])] + [("s", r) for r in s[:ccs_s]] + [("c", b"".join(c[1:]))]
            + [("s", b"".join(s[ccs_s:]))]) if ccs_c >= 1 else None


def test_server_flight_larger_than_inspected_is_not_a_failure(tmp_path):
    # a certificate with enough names to make the server's first flight exceed MAX_BYTES
    names = ["*.ksc.kaspersky.com"] + [f"n{i:04d}-padding-name.ksc.kaspersky.com" for i in range(700)]
    cs, ss, err = _handshake(tmp_path, names)
    assert err is None
    server_first = sum(len(r) for r in _flights(ss) if r[0] == 22)
    assert server_first > MAX_BYTES  # (the case is what it says)
    parts = _interleaved(cs, ss)
    # the big flight goes in 1400-byte segments
    split = []
    for side, data in parts:
        if side == "s" and len(data) > 1400:
            split += [("s", data[i:i + 1400]) for i in range(0, len(data), 1400)]
        else:
            split.append((side, data))
    r = _one(_write(tmp_path / "big.pcap", _session(split)))
    assert r["conn_state"] == "SF" and r["sni"] == SNI
    assert r["tls_established"] and r["payload_cut"]      # (the packets show it went on)
    assert (r["verdict"], r["reason"], r["detail"]) == ("ok", "", "")


def test_client_hello_in_more_segments_than_read(tmp_path):
    """Only the first MAX_SEGMENTS + 1 data segments per direction are read (what a chunked
    analysis keeps): a ClientHello spread over more leaves no room to see the next flight there,
    so the server's acknowledgements of it tell it (break-it 18 F1: it was judged failed)."""
    cs, ss, err = _handshake(tmp_path)
    assert err is None
    parts = _interleaved(cs, ss)
    hello = parts[0][1]
    tiny = [("c", hello[i:i + 1]) for i in range(MAX_SEGMENTS + 6)] + [("c", hello[MAX_SEGMENTS + 6:])]
    r = _one(_write(tmp_path / "tiny.pcap", _session(tiny + parts[1:])))
    assert r["payload_cut"] and r["tls_established"]
    assert (r["verdict"], r["reason"], r["detail"]) == ("ok", "", "")


@pytest.mark.parametrize("snaplen", [96, 128, 200])
def test_snaplen_capture_of_a_working_handshake(tmp_path, snaplen):
    cs, ss, err = _handshake(tmp_path)
    assert err is None
    r = _one(_write(tmp_path / f"s{snaplen}.pcap", _session(_interleaved(cs, ss)), snaplen=snaplen))
    assert r["payload_cut"] and r["tls_established"]
    assert r["verdict"] == "ok", (r["reason"], r["detail"])
    # the same connection captured whole: a handshake seen to its end, nothing cut
    whole = _one(_write(tmp_path / "whole.pcap", _session(_interleaved(cs, ss))))
    assert whole["tls_established"] and not whole["payload_cut"]
    assert (whole["verdict"], whole["detail"]) == ("ok", "")


def test_real_failures_stay_failures(tmp_path):
    # the client rejects the certificate: its alert is seen (a certificate the client does not
    # trust, for the name asked: what a TLS-inspecting proxy presents)
    cs, ss, err = _handshake(tmp_path, verify=True)
    assert err is not None
    c, s = _flights(cs), _flights(ss)
    parts = [("c", c[0])] + [("s", b"".join(s))] + [("c", b"".join(c[1:]))]
    r = _one(_write(tmp_path / "alert.pcap", _session(parts)))
    assert r["tls_alert"] == "client: unknown_ca (48)" and not r["payload_cut"]
    # (the handshake aborted: the agent cannot connect; newcomer 23 F2)
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_intercepted")
    # ... even when the flight was too long to inspect whole
    names = ["*.ksc.kaspersky.com"] + [f"n{i:04d}-padding-name.ksc.kaspersky.com" for i in range(700)]
    cs, ss, err = _handshake(tmp_path, names, verify=True)
    assert err is not None
    c, s = _flights(cs), _flights(ss)
    big = b"".join(s)
    parts = [("c", c[0])] + [("s", big[i:i + 1400]) for i in range(0, len(big), 1400)] + [("c", b"".join(c[1:]))]
    r = _one(_write(tmp_path / "alert_big.pcap", _session(parts)))
    assert r["payload_cut"] and r["tls_alert"] == "client: unknown_ca (48)"
    # (its certificate past the bytes inspected: a proxy's or the server's own, not told; s54 #3)
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed")
    # (the capture holds it, past the 16 KiB inspected: said so, not "cut by the snaplen"; fp s55 #9)
    assert "the server's certificate is past what is inspected of its flight (its first 24 segments, at most 16 KiB), " \
        "so whose it was is not read here" in r["detail"], r["detail"]
    # the server answers, the client closes without a word; every byte was seen
    cs, ss, err = _handshake(tmp_path)
    c, s = _flights(cs), _flights(ss)
    ccs_s = next(i for i, x in enumerate(s) if x[0] == 20)
    r = _one(_write(tmp_path / "closed.pcap", _session([("c", c[0]), ("s", b"".join(s[:ccs_s]))])))
    assert not r["payload_cut"]
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed")
    # (who closed, newcomer 23 F20)
    assert r["detail"].startswith("TLS handshake aborted: the client closed the connection (FIN, SF) after the "
                                  "server's last flight (its certificate, for *.ksc.kaspersky.com issued by "
                                  "CN=*.ksc.kaspersky.com, seen)")
    # the server never sends a byte: the ClientHello's segments beyond what is inspected do not
    # make that a "not seen"
    hello = c[0]
    tiny = [("c", hello[i:i + 1]) for i in range(MAX_SEGMENTS + 6)] + [("c", hello[MAX_SEGMENTS + 6:])]
    r = _one(_write(tmp_path / "mute.pcap", _session(tiny)))
    assert r["payload_cut"] and int(r["resp_bytes"]) == 0
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed")


@pytest.mark.parametrize("names,verdict,reason", [
    (("*.ksc.kaspersky.com",), "ok", ""),
    (("proxy.corp.example", "*.ksc.kaspersky.com"), "ok", ""),  # any of its names under the mask
    (("*.kaspersky.com",), "unexpected", "host_mismatch"),      # not below ksc.kaspersky.com
    (("proxy.corp.example",), "unexpected", "host_mismatch"),
])
def test_no_sni_certificate_pattern_under_the_mask(tmp_path, names, verdict, reason):
    cs, ss, err = _handshake(tmp_path, names, sni=None)
    assert err is None
    r = _one(_write(tmp_path / "nosni.pcap", _session(_interleaved(cs, ss))))
    assert r["sni"] == "" and r["tls_established"]
    assert (r["verdict"], r["reason"]) == (verdict, reason), r["detail"]


@pytest.mark.parametrize("chunk", [600, 2048, 8192])
def test_chunked_analysis_sees_the_same_cut(tmp_path, chunk):
    """A chunked analysis carries one data segment more than the streams read (chunked._summarise),
    so a direction with more segments than MAX_SEGMENTS is cut there too."""
    from chunkcmp import chunked, whole
    cs, ss, err = _handshake(tmp_path)
    parts = _interleaved(cs, ss)
    hello = parts[0][1]
    tiny = [("c", hello[i:i + 1]) for i in range(MAX_SEGMENTS + 6)] + [("c", hello[MAX_SEGMENTS + 6:])]
    # then a long run of packets without payload, so the segments past MAX_SEGMENTS are carried
    # (summarised) over several chunk boundaries before the end
    more = [(side, b"") for _ in range(40) for side in "cs"]
    path = _write(tmp_path / "long.pcap", _session(tiny + parts[1:] + more))
    w, _ = whole(path)
    c, _ = chunked(path, chunk)
    cols = ["uid", "payload_cut", "tls_established", "verdict", "reason", "detail", "orig_pkts", "resp_pkts"]
    pd.testing.assert_frame_equal(w[cols], c[cols])
    assert bool(w["payload_cut"].iloc[0]) and w["verdict"].iloc[0] == "ok"
    assert bool(w["tls_established"].iloc[0])


def test_cut_hello_answered_by_a_proxy_page_is_still_a_failure(tmp_path):
    """The 'not seen to its end' rule needs the server to answer in TLS: a proxy's HTTP 403 to a
    ClientHello cut by the snaplen stays blocked (found by a newcomer's pass): a filter's refusal
    in cleartext HTTP where TLS is documented, its status quoted (break-it 8 F5; it was
    ``tls_failed``, "connection closed"); a 400 is ``not_tls``."""
    cs, ss, err = _handshake(tmp_path)
    hello = _flights(cs)[0]
    page = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    r = _one(_write(tmp_path / "proxy.pcap", _session([("c", hello), ("s", page)]), snaplen=200))
    assert r["payload_cut"] and r["server_proto"] == "http"
    assert (r["verdict"], r["reason"], r["http_status"]) == ("blocked", "rejected", "403")
    assert r["detail"] == ("the server answered HTTP 403 to the ClientHello where TLS is documented: "
                           "a web filter's refusal or a failing gateway")
    page = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    r = _one(_write(tmp_path / "plain.pcap", _session([("c", hello), ("s", page)]), snaplen=200))
    assert (r["verdict"], r["reason"], r["http_status"]) == ("unexpected", "not_tls", "400")
    assert r["detail"] == "the server answered HTTP (400) to the ClientHello where TLS is documented"


def test_a_few_bytes_under_an_old_snaplen_are_not_called_cleartext(tmp_path):
    """tcpdump's old 68-byte default leaves a TLS segment a couple of payload bytes: read as the
    start of TLS, not 'not_tls'; the handshake went on, so ok."""
    cs, ss, err = _handshake(tmp_path)
    r = _one(_write(tmp_path / "s56.pcap", _session(_interleaved(cs, ss)), snaplen=56))
    assert r["payload_cut"] and r["client_proto"] == "tls"   # (the start of a TLS record, break-it 10 F4)
    assert r["verdict"] == "ok", (r["reason"], r["detail"])


@pytest.mark.parametrize("snaplen", [96, 200])
def test_snaplen_capture_of_a_rejected_handshake_is_a_failure(tmp_path, snaplen):
    """The client rejects the certificate: its alert is past the cut (or cut itself), but no next
    flight follows the server's, so the handshake did not go on (found by a newcomer's pass)."""
    cs, ss, err = _handshake(tmp_path, verify=True)
    assert err is not None
    c, s = _flights(cs), _flights(ss)
    parts = [("c", c[0]), ("s", b"".join(s)), ("c", b"".join(c[1:]))]
    r = _one(_write(tmp_path / f"rej{snaplen}.pcap", _session(parts), snaplen=snaplen))
    assert r["payload_cut"] and not r["tls_established"]
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed")


def test_lost_segment_then_server_alert_is_a_failure(tmp_path):
    """A server segment not captured (a gap), then the server's alert: the client's flight is
    there but the server's answer to it is an alert, smaller than SERVER_NEXT_BYTES."""
    cs, ss, err = _handshake(tmp_path)
    c, s = _flights(cs), _flights(ss)
    ccs_s = next(i for i, x in enumerate(s) if x[0] == 20)
    flight = b"".join(s[:ccs_s])
    rec = _session([("c", c[0]), ("s", flight[:300]), ("s", flight[300:]), ("c", b"".join(c[1:])),
                    ("s", bytes([21, 3, 3, 0, 2, 2, 51]))])
    del rec[5]          # the server's second segment (after SYN, SYN-ACK, ACK, hello, first) was not captured
    r = _one(_write(tmp_path / "gap.pcap", rec))
    assert r["payload_cut"] and not r["tls_established"]
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed")


@pytest.mark.skipif(not __import__("shutil").which("tshark"), reason="tshark is not installed")
def test_tshark_engine_warns_about_the_snaplen_too(tmp_path):
    """The same warning line (count of cut frames, bytes kept) with ``--engine tshark``."""
    from kscc_traffic.analyze import analyze_file
    cs, ss, err = _handshake(tmp_path)
    path = _write(tmp_path / "s128.pcap", _session(_interleaved(cs, ss)), snaplen=128)
    from kscc_traffic.rules import load_rules
    rules = load_rules()
    ours, theirs = analyze_file(path, rules), analyze_file(path, rules, "tshark")
    ours, theirs = ours.stats[str(path)], theirs.stats[str(path)]
    cut = [w for w in ours.warnings if "cut by the snaplen" in w]
    assert len(cut) == 1 and "at most 128 bytes kept" in cut[0]
    assert [w for w in theirs.warnings if "cut by the snaplen" in w] == cut
    assert theirs.cut_frames == ours.cut_frames > 0
