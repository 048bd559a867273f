"""Captures cut by a snaplen at or just after the TCP headers (break-it 10, F1, F2, F4): the
ClientHello is unreadable (no byte of it, ``16 03``, or 10 bytes), yet what the packets show
still decides. A failed handshake (the server's alert, or the server closing without a byte)
is ``tls_failed`` as in the whole capture; a handshake whose packets show it went on stays ok;
``payload_cut`` says the payload was not inspected; two bytes ``16 03`` read as the start of
TLS, a cut ``HTTP/1.1 4`` as HTTP. The chunked analysis gives the same rows."""
from __future__ import annotations

import struct

import pytest

from chunkcmp import chunked, whole
from pcapbuild import eth, ip_of
from scapy.layers.inet import TCP
from test_decode_more_encaps import client_hello

CLIENT, SERVER = ("192.0.2.10", 50200), ("198.51.100.20", 23101)
CLIENT6, SERVER6 = ("2001:db8:1::10", 50200), ("2001:db8:2::20", 23101)
ALERT = b"\x15\x03\x03\x00\x02\x02\x31"          # fatal access_denied (49)


def _opened(v6: bool):
    """A connection to 23101 up to the client's ClientHello: ``(up, dn, frames, client seq,
    server seq, next ts)``, ``up``/``dn`` making a client's/server's frame from TCP fields."""
    (ch, cp), (sh, sp) = (CLIENT6, SERVER6) if v6 else (CLIENT, SERVER)
    up = lambda **kw: eth(ip_of(ch, sh) / TCP(sport=cp, dport=sp, **kw))  # noqa: E731
    dn = lambda **kw: eth(ip_of(sh, ch) / TCP(sport=sp, dport=cp, **kw),  # noqa: E731
                          src="02:00:00:00:00:01", dst="02:00:00:00:00:10")
    hello = client_hello("eu1.ksc.kaspersky.com")
    c, s, t = 1001, 5001, 1000.0
    out = [(t, up(flags="S", seq=1000)), (t + .01, dn(flags="SA", seq=5000, ack=c)),
           (t + .02, up(flags="A", seq=c, ack=s)), (t + .03, up(flags="PA", seq=c, ack=s) / hello)]
    return up, dn, out, c + len(hello), s, t + .04


def _conversation(kind: str, v6: bool = False):
    """(ts, frame) of a TLS connection to 23101: ``alert`` (ClientHello, the server's fatal
    alert, the server closes), ``fin`` (ClientHello acknowledged, the server closes without a
    byte), ``alert_open`` (the alert, acknowledged, and the capture ends with the connection
    open), ``ok`` (ClientHello, 1200 bytes of server handshake, 150 from the client, 250 from
    the server, then both close), ``http`` (the server answers ``HTTP/1.1 403 Forbidden``)."""
    up, dn, out, c, s, t = _opened(v6)
    flights = {"alert": [(False, ALERT)], "alert_open": [(False, ALERT)], "fin": [],
               "ok": [(False, b"\x16\x03\x03" + struct.pack("!H", 1195) + bytes(1195)),
                      (True, b"\x17\x03\x03" + struct.pack("!H", 145) + bytes(145)),
                      (False, b"\x17\x03\x03" + struct.pack("!H", 245) + bytes(245))],
               "http": [(False, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")]}[kind]
    for from_client, data in flights:
        if from_client:
            out.append((t, up(flags="PA", seq=c, ack=s) / data))
            c += len(data)
        else:
            out.append((t, dn(flags="PA", seq=s, ack=c) / data))
            s += len(data)
        t += .01
    if kind == "fin":
        out.append((t, dn(flags="A", seq=s, ack=c)))
        t += .01
    if kind == "alert_open":    # the client acknowledges the alert; nobody closes (capture ends)
        return out + [(t, up(flags="A", seq=c, ack=s))]
    out += [(t, dn(flags="FA", seq=s, ack=c)), (t + .01, up(flags="FA", seq=c, ack=s + 1)),
            (t + .02, dn(flags="A", seq=s + 1, ack=c + 1))]
    return out


def _write(tmp_path, recs, keep_payload: int | None, name: str = "c.pcap"):
    """A pcap of ``recs`` whose TCP segments keep ``keep_payload`` payload bytes (None: whole),
    as ``tcpdump -s`` cuts them (caplen < wirelen)."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for ts, pkt in recs:
        data = bytes(pkt)
        hdr = len(data) - len(bytes(pkt[TCP].payload))
        cap = data if keep_payload is None else data[:hdr + keep_payload]
        us = round(ts * 1e6)
        out.append(struct.pack("<IIII", us // 10**6, us % 10**6, len(cap), len(data)) + cap)
    p = tmp_path / name
    p.write_bytes(b"".join(out))
    return p


def _many(conversation, n: int = 40):
    """``n`` conversations (``conversation(i)``: (ts, frame) of the i-th), each from its own client
    port (40000 + i) and started 0.5 s after the one before, in time order."""
    recs = []
    for i in range(n):
        for ts, p in conversation(i):
            p = p.copy()
            if p[TCP].sport == 50200:
                p[TCP].sport = 40000 + i
            else:
                p[TCP].dport = 40000 + i
            recs.append((ts + i * 0.5, p))
    return sorted(recs, key=lambda x: x[0])


def _row(path):
    flows, _ = whole(path)
    assert len(flows) == 1
    return flows.iloc[0]


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
@pytest.mark.parametrize("keep", [None, 0, 2, 10], ids=["whole", "cut0", "cut2", "cut10"])
@pytest.mark.parametrize("kind", ["alert", "alert_open", "fin"])
def test_failed_handshake_is_tls_failed_whatever_the_snaplen(tmp_path, kind, keep, v6):
    """The server's alert or its close without a byte is tls_failed, cut or not (it was ok when
    the ClientHello was cut to 10 bytes or fewer)."""
    r = _row(_write(tmp_path, _conversation(kind, v6), keep))
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed")
    assert bool(r["payload_cut"]) == (keep is not None)
    if keep is not None:
        assert "cut by the snaplen" in r["detail"] or keep >= 7 and kind == "alert"
    if kind != "fin" and (keep is None or keep >= 7):
        assert r["tls_alert"] == "server: access_denied (49)"
    if kind == "alert_open" and keep is not None and keep < 7:
        # (the alert's bytes cut, the connection open: its size tells it, break-it 11 #5)
        assert "answered the ClientHello with 7 bytes, a cleartext alert's size" in r["detail"]
    # (bytes from sequence numbers: the whole hello, the 7-byte alert or nothing)
    assert int(r["resp_bytes"]) == (0 if kind == "fin" else 7)


@pytest.mark.parametrize("keep", [0, 2, 10], ids=["cut0", "cut2", "cut10"])
def test_handshake_that_went_on_stays_ok(tmp_path, keep):
    r = _row(_write(tmp_path, _conversation("ok"), keep))
    assert (r["verdict"], r["reason"]) == ("ok", "")
    assert bool(r["payload_cut"])


def test_headers_only_sets_payload_cut_and_reads_no_protocol(tmp_path):
    """No payload byte captured: payload_cut (F2), nothing said of the protocols."""
    r = _row(_write(tmp_path, _conversation("ok"), 0))
    assert bool(r["payload_cut"]) and (r["client_proto"], r["server_proto"]) == ("", "")
    assert int(r["orig_bytes"]) > 0 and int(r["resp_bytes"]) == 1200 + 250


def test_few_bytes_read_as_what_they_start(tmp_path):
    """Two bytes ``16 03`` (a 68-byte snaplen with TCP timestamps) are the start of TLS, not
    'other' (F4); 10 bytes ``HTTP/1.1 4`` the start of an HTTP answer: not TLS where TLS is
    documented."""
    r = _row(_write(tmp_path, _conversation("ok"), 2))
    assert (r["client_proto"], r["server_proto"]) == ("tls", "tls")
    r = _row(_write(tmp_path, _conversation("http"), 10))
    assert (r["client_proto"], r["server_proto"]) == ("tls", "http")
    assert (r["verdict"], r["reason"]) == ("unexpected", "not_tls")
    assert r["detail"].endswith("(its status line cut by the snaplen)")
    # (a payload that does not start like TLS or HTTP stays 'other')
    r = _row(_write(tmp_path, [(t, p) for t, p in _conversation("http")], None))
    assert (r["verdict"], r["reason"]) == ("blocked", "rejected")


@pytest.mark.parametrize("kind", ["alert", "alert_open", "fin", "ok"])
def test_chunked_gives_the_same_rows(tmp_path, kind):
    """Many such connections, analysed whole and in small chunks: the same rows."""
    path = _write(tmp_path, _many(lambda i: _conversation(kind, v6=bool(i % 2))), 0)
    a, _ = whole(path)
    b, _ = chunked(path, 4096)
    assert len(a) == 40
    cols = ["uid", "verdict", "reason", "detail", "payload_cut", "orig_bytes", "resp_bytes", "history"]
    assert a[cols].equals(b[cols])
    want = {"alert": "tls_failed", "alert_open": "tls_failed", "fin": "tls_failed", "ok": ""}[kind]
    assert set(a["reason"]) == {want}


@pytest.mark.parametrize("kind", ["alert", "alert_open", "ok"])
def test_live_gives_the_same_rows(tmp_path, monkeypatch, kind):
    """Replayed into a live session keeping 2 packets whole per flow: analyze's table."""
    from test_live_session import assert_live_same
    assert_live_same(_write(tmp_path, _conversation(kind), 0, name=f"{kind}.pcap"), monkeypatch, step=3)


def _talk(flights, closer: str, wait: float = 0.0):
    """(ts, frame) of a TLS connection to 23101 whose bytes after the ClientHello are
    ``flights`` ((from_client, size)), then, ``wait`` seconds later, ``closer`` (client/server)
    sends FIN first and the other side answers with its own."""
    up, dn, out, c, s, t = _opened(False)
    for from_client, size in flights:
        data = b"\x17\x03\x03" + struct.pack("!H", size - 5) + bytes(size - 5)
        if from_client:
            out.append((t, up(flags="PA", seq=c, ack=s) / data))
            c += size
        else:
            out.append((t, dn(flags="PA", seq=s, ack=c) / data))
            s += size
        t += .01
    t += wait
    if closer == "client":
        out += [(t, up(flags="FA", seq=c, ack=s)), (t + .01, dn(flags="FA", seq=s, ack=c + 1)),
                (t + .02, up(flags="A", seq=c + 1, ack=s + 1))]
    else:
        out += [(t, dn(flags="FA", seq=s, ack=c)), (t + .01, up(flags="FA", seq=c, ack=s + 1)),
                (t + .02, dn(flags="A", seq=s + 1, ack=c + 1))]
    return out


SERVER_FLIGHT = [(False, 1400), (False, 1400), (False, 1500)]      # TLS 1.3: ServerHello … Finished
HRR = [(False, 99), (True, 319)]                # a HelloRetryRequest, the second ClientHello


@pytest.mark.parametrize("keep", [0, 2], ids=["cut0", "cut2"])
@pytest.mark.parametrize("case, flights, closer, wait, want", [
    # TLS 1.3 health check without tickets: the client's Finished (80 B), then it closes: ok
    ("tls13_health_check", SERVER_FLIGHT + [(True, 80)], "client", 0.0, ("ok", "")),
    # a resumed session closed by the server with a close_notify (31 B): not judged
    ("server_close_notify", [(False, 140), (True, 51), (False, 31)], "server", 0.0, ("unclassified", "")),
    # nothing from the server for 5 s after the client's flight, then the client closes: a TLS 1.2
    # answer dropped or a TLS 1.3 session left idle: not judged
    ("client_gives_up", SERVER_FLIGHT + [(True, 93)], "client", 5.0, ("unclassified", "")),
    # the client answers the server's flight with no more than an alert (a certificate it rejects)
    ("client_alert", SERVER_FLIGHT + [(True, 7)], "client", 0.0, ("blocked", "tls_failed")),
    # the server answers the client's flight with a cleartext alert (7 B: no encrypted record
    # is that short), whoever closes then
    ("server_alert_after_flight", SERVER_FLIGHT + [(True, 93), (False, 7)], "client", 0.0,
     ("blocked", "tls_failed")),
    # … and a TLS 1.3 close_notify (24 B) after the client's own: a health check, ok
    ("close_notify_both", SERVER_FLIGHT + [(True, 80), (True, 24), (False, 24)], "client", 0.0, ("ok", "")),
    # the server closes without one byte
    ("server_silent_close", [], "server", 0.0, ("blocked", "tls_failed")),
    # TLS 1.3 HelloRetryRequest (99 B), the second ClientHello, the server's flight, then the
    # client's 7-byte cleartext alert and its close: a certificate rejected (break-it 11 #3; the
    # HRR round made it look like a handshake that went on)
    ("hrr_client_alert", HRR + SERVER_FLIGHT + [(True, 7)], "client", 0.0, ("blocked", "tls_failed")),
    # … and the same round with the client's Finished (80 B): a health check, ok
    ("hrr_health_check", HRR + SERVER_FLIGHT + [(True, 80)], "client", 0.0, ("ok", "")),
    # the client's last flight in two segments whose second is 7 bytes: one flight of 1467, ok
    ("split_last_flight", SERVER_FLIGHT + [(True, 80), (False, 300), (True, 1460), (True, 7)], "client", 0.0,
     ("ok", "")),
])
def test_handshake_end_cut_judged_from_packets(tmp_path, keep, case, flights, closer, wait, want):
    """Break-it 11: a TLS 1.3 handshake is over once the client's Finished is sent; the server
    owing nothing after it, a connection closed then is no failure (it was tls_failed at every
    headers-only cut). Only what no working connection does is tls_failed."""
    r = _row(_write(tmp_path, _talk(flights, closer, wait), keep, name=f"{case}.pcap"))
    assert (r["verdict"], r["reason"]) == want, r["detail"]
    if want[0] == "unclassified":
        assert r["detail"].endswith("not judged")


def _dropped_flight(acked: bool, close: str | None):
    """(ts, frame) of a TLS 1.2 connection to 23101: the server's flight (ServerHello …
    ServerHelloDone), the client's ClientKeyExchange/ChangeCipherSpec/Finished (126 B) sent 4
    times over 6 s, the server silent; ``acked``: the server acknowledged it (else it never
    reached the server); ``close``: None (the capture ends with the connection open), ``rst``
    (the client resets it), ``fin`` (the client closes, the server answers)."""
    up, dn, out, c, s, t = _opened(False)
    for size in (1400, 1400, 300):
        out.append((t, dn(flags="PA", seq=s, ack=c) / (b"\x16\x03\x03" + struct.pack("!H", size - 5)
                                                        + bytes(size - 5))))
        s += size
        t += .01
    flight = b"\x16\x03\x03\x00\x79" + bytes(121)
    out.append((t, up(flags="A", seq=c, ack=s)))
    for k in range(4):
        out.append((t + 2 * k, up(flags="PA", seq=c, ack=s) / flight))
        if acked and k == 0:
            out.append((t + .01, dn(flags="A", seq=s, ack=c + len(flight))))
    t += 7
    if close == "rst":
        out.append((t, up(flags="R", seq=c + len(flight))))
    elif close == "fin":
        top = c + len(flight) if acked else c
        out += [(t, up(flags="FA", seq=c + len(flight), ack=s)), (t + .01, dn(flags="FA", seq=s, ack=top)),
                (t + .02, up(flags="A", seq=c + len(flight) + 1, ack=s + 1))]
    return out


@pytest.mark.parametrize("keep", [0, 2, 10], ids=["cut0", "cut2", "cut10"])
@pytest.mark.parametrize("acked, close, want", [
    # the flight never acknowledged, the server silent: dropped on its way (break-it 11 #4)
    (False, None, ("blocked", "tls_failed")),
    (False, "rst", ("blocked", "tls_failed")),
    (False, "fin", ("blocked", "tls_failed")),
    # acknowledged, then silence: a TLS 1.3 session left idle has the same packets: not failed
    (True, None, ("ok", "")),
    (True, "fin", ("unclassified", "")),
])
def test_client_flight_never_acknowledged(tmp_path, keep, acked, close, want):
    r = _row(_write(tmp_path, _dropped_flight(acked, close), keep))
    assert (r["verdict"], r["reason"]) == want, r["detail"]
    if want[1] == "tls_failed":
        assert "after the client's next flight" in r["detail"] and "acknowledged" in r["detail"]


def test_new_blind_rules_same_in_chunks_and_live(tmp_path, monkeypatch):
    """The HRR alert, the split last flight and the dropped flight (open and reset), 8 times
    each, cut to headers only: chunked in small chunks and live give analyze's rows."""
    from test_live_session import assert_live_same
    convs = [_talk(HRR + SERVER_FLIGHT + [(True, 7)], "client"),
             _talk(SERVER_FLIGHT + [(True, 80), (False, 300), (True, 1460), (True, 7)], "client"),
             _dropped_flight(False, None), _dropped_flight(False, "rst"), _dropped_flight(True, None)]
    path = _write(tmp_path, _many(lambda i: convs[i % len(convs)]), 0)
    a, _ = whole(path)
    b, _ = chunked(path, 4096)
    assert len(a) == 40
    cols = ["uid", "verdict", "reason", "detail", "payload_cut", "orig_bytes", "resp_bytes", "history"]
    assert a[cols].equals(b[cols])
    assert a["reason"].value_counts().to_dict() == {"tls_failed": 24, "": 16}
    assert_live_same(path, monkeypatch, step=7)
