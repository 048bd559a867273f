"""Newcomer 29's findings F2, F5, F6, on captures built here with scapy:

- F2: a SYN answered by a reset (REJ) is told by the reset's TTL against the server's packets on
  other connections whether those came before or after it (an agent tries 23101 first and 443
  later): whole file, chunked (the refused flow held until the server's packet comes) and live
  analyses alike (inspect._refused_hints, chunked._Refused, LiveSession._refused_wait);
- F5: a CONNECT or attempt on a connection both sides closed gets no "the capture ended … maybe
  before an answer could come" note (nothing more can come on it), nor the checklist's
  "blocked (the capture ended before an answer could come)"; a proxy's 403 to a CONNECT to an IP
  address names that address in the advice;
- F6: a ClientHello split across segments whose later segment the server never acknowledged
  (it acknowledged the first) says so: a path dropping that segment."""
from __future__ import annotations

import pytest
from scapy.all import IP, TCP, UDP

from chunkcmp import assert_same, whole, write
from kscc_traffic import load_rules, readiness
from kscc_traffic.report import TableSummary
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth

AGENT, SERVER = "192.0.2.10", "203.0.113.10"
RULES = load_rules()


def _up(t, sport, dport, data=b"", dst=SERVER, **kw):
    return t, bytes(eth(IP(src=AGENT, dst=dst, ttl=64) / TCP(sport=sport, dport=dport, **kw) / data))


def _dn(t, sport, dport, ttl, data=b"", src=SERVER, **kw):
    return t, bytes(eth(IP(src=src, dst=AGENT, ttl=ttl) / TCP(sport=sport, dport=dport, **kw) / data,
                        src=SERVER_MAC, dst=CLIENT_MAC))


def _refused(t, sport, ttl):
    """A SYN to 23101 answered by a reset with TTL ``ttl``."""
    return [_up(t, sport, 23101, flags="S", seq=900), _dn(t + .001, 23101, sport, ttl, flags="RA", seq=0, ack=901)]


def _session(t, sport, ttl):
    """A short working connection to 443 whose server's packets come with TTL ``ttl``."""
    return [_up(t, sport, 443, flags="S", seq=100),
            _dn(t + .01, 443, sport, ttl, flags="SA", seq=500, ack=101),
            _up(t + .02, sport, 443, flags="A", seq=101, ack=501),
            _dn(t + .04, 443, sport, ttl, b"x" * 10, flags="PA", seq=501, ack=101),
            _up(t + .05, sport, 443, flags="FA", seq=101, ack=511),
            _dn(t + .06, 443, sport, ttl, flags="FA", seq=511, ack=102),
            _up(t + .07, sport, 443, flags="A", seq=102, ack=512)]


def _filler(t0, t1):
    """A datagram a second from the agent to an undocumented port between ``t0`` and ``t1``: packets
    that move a chunked reading's clock, so that a refused flow leaves before a later session."""
    return [(t, bytes(eth(IP(src=AGENT, dst="198.51.100.7") / UDP(sport=5000, dport=9999) / b"f")))
            for t in range(int(t0), int(t1))]


OWN = ("the SYN was answered by a TCP reset; the reset came with the server's own TTL (52, as its packets on other "
       "connections): most likely the server's own answer: nothing listens on this port there (a wrong port? the "
       "service down?), or its host firewall rejects it (a firewall on the path that copies the server's TTL "
       "looks the same)")
NEARER = ("the SYN was answered by a TCP reset; the reset came from a device 13 hops nearer than the server (TTL 254 "
          "vs 50 on the server's packets on other connections): a firewall refuses the port")


def _details(flows, port=23101):
    return flows.loc[flows["resp_p"] == port, "detail"].tolist()


@pytest.mark.parametrize("later", [False, True], ids=["server-heard-first", "server-heard-later"])
def test_reset_hint_does_not_depend_on_packet_order(tmp_path, later):
    """The same packets, the 443 session before or after the two refused SYNs (newcomer 29 F2:
    s12 vs s14): the same hint, the same advice, whole and in chunks that let the refused flows
    leave before the session is read."""
    s = 60.0 if later else 1.0
    r = 1.0 if later else 60.0
    recs = sorted(_session(s, 40000, 52) + _refused(r, 40001, 52) + _refused(r + 1, 40002, 52) + _filler(3, 58))
    path = write(tmp_path, recs)
    flows = assert_same(path, [300, 700, 1500])
    assert _details(flows) == [OWN, OWN]
    fix = readiness(flows, RULES).set_index("rule").loc["agent_connection", "fix"]
    assert "nothing listens on this port there (a wrong port? the service down?), or its host firewall rejects it" \
        in fix, fix


def test_nearer_device_told_by_a_later_packet(tmp_path):
    """A firewall's reset (TTL 254) before any packet of the server (TTL 50, later): a device
    13 hops nearer, in every reading."""
    recs = sorted(_refused(1.0, 40001, 254) + _session(30.0, 40000, 50) + _filler(2, 28))
    flows = assert_same(write(tmp_path, recs), [300, 700])
    assert _details(flows) == [NEARER]


def test_reset_from_an_address_never_heard_otherwise(tmp_path):
    """A reset from an address that sent nothing else: no hint (held to the capture's end in a
    chunked reading, then let go as it was)."""
    recs = sorted(_refused(1.0, 40001, 52) + _filler(2, 28))
    flows = assert_same(write(tmp_path, recs), [200, 500])
    assert _details(flows) == ["the SYN was answered by a TCP reset"]


def test_live_session_gives_the_later_hint(tmp_path, monkeypatch):
    """A live session (ticks between the packets, the refused flows' close timeout passing before
    the server's session) gives analyze's rows."""
    from test_live_session import assert_live_same
    recs = sorted(_refused(1.0, 40001, 52) + _refused(2.0, 40002, 52) + _session(60.0, 40000, 52))
    path = write(tmp_path, recs)
    flows, _ = whole(path)
    assert _details(flows) == [OWN, OWN]
    assert_live_same(path, monkeypatch, step=2)


# ---------------------------------------------------------------------------------------- F5
def _proxy_flows(tmp_path, parts, close, name):
    from test_proxy_connect import _records, _write
    from kscc_traffic import analyze
    return analyze(str(_write(tmp_path, _records(parts, close=close, gap=0.01), name=name)))


@pytest.mark.parametrize("close", ["c", "r"], ids=["fin-both", "proxy-rst"])
def test_closed_connect_gets_no_capture_ended_note(tmp_path, close):
    """A CONNECT the client and the proxy both closed (or the proxy reset) 0.06 s after it began,
    the capture ending there: nothing more can come on that connection, so no "the capture ended
    … maybe before an answer could come" note, and the checklist says "blocked", not "blocked
    (the capture ended before an answer could come)" (newcomer 29 F5: s18)."""
    from test_proxy_connect import _connect
    flows = _proxy_flows(tmp_path, [_connect("eu1.ksc.kaspersky.com:27201")], close, f"{close}.pcap")
    (r,) = flows.to_dict("records")
    assert r["verdict"] == "blocked", r
    assert "the capture ended" not in r["detail"], r["detail"]
    if close == "c":
        assert r["detail"] == ("the proxy 10.0.0.1:3128 did not answer CONNECT eu1.ksc.kaspersky.com:27201; the "
                               "client gave up after 0.05 s")
    for table in (readiness(flows, RULES), TableSummary.of(flows).readiness(RULES)):
        row = table.set_index("rule").loc["activation"]
        assert row["status"] == "blocked" and row.get("status_note", "") == "", dict(row)


def test_open_connect_at_the_capture_end_keeps_its_note(tmp_path):
    """A CONNECT the client closed but the proxy did not, the capture ending right after: the
    proxy may still answer or close: the note stays (and the client's 0.04 s is not rounded to 0.0)."""
    from test_proxy_connect import _connect, _records, _write
    from kscc_traffic import analyze
    recs = _records([_connect("eu1.ksc.kaspersky.com:27201")], close="", gap=0.01)
    from scapy.all import Ether
    last_t, last = recs[-1]
    fin = last.copy()
    fin[TCP].flags = "FA"
    fin[TCP].seq = last[TCP].seq + len(last[TCP].payload)
    fin[TCP].remove_payload()
    del fin[IP].len, fin[IP].chksum, fin[TCP].chksum
    flows = analyze(str(_write(tmp_path, recs + [(last_t + 0.01, Ether(bytes(fin)))], name="open.pcap")))
    (r,) = flows.to_dict("records")
    assert (r["verdict"], r["reason"]) == ("blocked", "no_answer"), r["detail"]
    assert r["detail"].endswith("the client gave up after 0.04 s; the capture ended 0.040 s after its first "
                                "packet, maybe before an answer could come"), r["detail"]


def test_403_to_a_connect_to_an_address_names_it(tmp_path):
    """A proxy's 403 to CONNECT 203.0.113.10:29201 (an IP address): the advice names that
    address and port, not only the purpose's name mask."""
    from test_proxy_connect import _connect
    deny = ("s", b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    flows = _proxy_flows(tmp_path, [_connect("203.0.113.10:29201"), deny], "s", "ip403.pcap")
    (r,) = flows.to_dict("records")
    assert (r["verdict"], r["reason"]) == ("blocked", "rejected"), r["detail"]
    want = ("403 (the proxy's policy denies the target): allow *.ksc.kaspersky.com:29200-29299 on the proxy; the "
            "agent asked it for 203.0.113.10:29201, an address, not a name, which a rule for the names does not "
            "cover: allow that address and port too (or set the agent to connect by name)")
    a = readiness(flows, RULES).set_index("rule").loc["klsctunnel", "fix"]
    b = TableSummary.of(flows).readiness(RULES).set_index("rule").loc["klsctunnel", "fix"]
    assert a == b and a.endswith(want), a
    # (a CONNECT to a name: the mask alone, as before)
    flows = _proxy_flows(tmp_path, [_connect("eu1.ksc.kaspersky.com:29201"), deny], "s", "name403.pcap")
    a = readiness(flows, RULES).set_index("rule").loc["klsctunnel", "fix"]
    assert a.endswith("allow *.ksc.kaspersky.com:29200-29299 on the proxy"), a


# ---------------------------------------------------------------------------------------- F6
def _client_hello(total: int, sni: bytes = b"eu1.ksc.kaspersky.com") -> bytes:
    """A TLS 1.3-style ClientHello record of ``total`` bytes (padded with extension 21)."""
    name = b"\x00" + len(sni).to_bytes(2, "big") + sni
    sni_ext = b"\x00\x00" + (len(name) + 2).to_bytes(2, "big") + (len(name)).to_bytes(2, "big") + name
    versions = b"\x00\x2b\x00\x03\x02\x03\x04"
    head = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
    fixed = 5 + 4 + len(head) + 2 + len(sni_ext) + len(versions) + 4
    pad = b"\x00\x15" + (total - fixed).to_bytes(2, "big") + bytes(total - fixed)
    exts = sni_ext + versions + pad
    body = head + len(exts).to_bytes(2, "big") + exts
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    rec = b"\x16\x03\x01" + len(hs).to_bytes(2, "big") + hs
    assert len(rec) == total
    return rec


def _split_hello(first: int, total: int = 1810, acked_all: bool = False):
    """A handshake to 23101, a ``total``-byte ClientHello in two segments (``first`` bytes, then
    the rest), the server acknowledging the first only (``acked_all``: both, never answering),
    the rest sent again 5 times, then the client's reset."""
    ch = _client_hello(total)
    a, b = ch[:first], ch[first:]
    recs = [_up(1.0, 50777, 23101, flags="S", seq=1000), _dn(1.03, 23101, 50777, 50, flags="SA", seq=5000, ack=1001),
            _up(1.031, 50777, 23101, flags="A", seq=1001, ack=5001),
            _up(1.032, 50777, 23101, a, flags="A", seq=1001, ack=5001),
            _up(1.033, 50777, 23101, b, flags="PA", seq=1001 + first, ack=5001),
            _dn(1.063, 23101, 50777, 50, flags="A", seq=5001, ack=1001 + (total if acked_all else first))]
    t, dt = 1.033, 0.3
    for _ in range(5 if not acked_all else 0):
        t += dt
        dt *= 2
        recs.append(_up(t, 50777, 23101, b, flags="PA", seq=1001 + first, ack=5001))
    recs.append(_up(t + 2 if not acked_all else 12.0, 50777, 23101, flags="RA", seq=1001 + total, ack=5001))
    return recs


def test_split_hello_whose_later_segment_is_never_acknowledged(tmp_path):
    """Newcomer 29 F6 (s15): 1,400 + 410 bytes, the server acknowledging the first only: the
    detail says the rest was never acknowledged, a path dropping that (smaller) segment, not
    "no byte from the server"; whole = chunked."""
    flows = assert_same(write(tmp_path, _split_hello(1400)), [400, 1500])
    (r,) = flows.to_dict("records")
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed"), r["detail"]
    assert r["detail"] == (
        "ClientHello never wholly received: it was 1,810 bytes in 2 segments, of which the server acknowledged only "
        "the first 1,400 bytes; the rest (410 bytes), sent again, was never acknowledged: something on the path "
        "drops the later segment: a firewall or proxy failing on a ClientHello split across segments (that "
        "segment, 410 bytes, is no larger than the 1,400 delivered: no MTU problem); then the connection closed "
        "(RSTO)")   # (no post-quantum note: this ClientHello is padded, it has no key share; break-it 30 F2)


def test_split_hello_whose_larger_segment_is_lost_names_the_mtu(tmp_path):
    """300 + 1,510 bytes, the larger later segment never acknowledged: an MTU/MSS problem named."""
    flows, _ = whole(write(tmp_path, _split_hello(300)))
    (r,) = flows.to_dict("records")
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed"), r["detail"]
    assert ("of which the server acknowledged only the first 300 bytes; the rest (1,510 bytes), sent again, was "
            "never acknowledged: something on the path drops the later, larger segment (1,510 bytes vs 300 "
            "delivered): an MTU/MSS problem") in r["detail"], r["detail"]


def test_split_hello_acknowledged_whole_keeps_its_wording(tmp_path):
    """The server acknowledged the whole ClientHello and never answered: the detail says so as
    before (no byte from the server), with the split's note."""
    flows, _ = whole(write(tmp_path, _split_hello(1400, acked_all=True)))
    (r,) = flows.to_dict("records")
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed"), r["detail"]
    assert r["detail"].startswith("ClientHello not answered: no byte from the server for "), r["detail"]
    assert "acknowledged only" not in r["detail"] and "the ClientHello was 1,810 bytes in 2 segments" in r["detail"]


def test_split_hello_live_equals_whole(tmp_path, monkeypatch):
    """A live session keeping few packets per flow words the split ClientHello as analyze does."""
    from test_live_session import assert_live_same
    assert_live_same(write(tmp_path, _split_hello(1400)), monkeypatch, step=3)
