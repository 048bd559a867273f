"""A TLS handshake the server leaves hanging after its first flight (break-it 8 F2), and a
ClientHello answered in cleartext HTTP (break-it 8 F5).

F2: the server answered the ClientHello (a TLS 1.2 ServerHello…ServerHelloDone, or a TLS 1.3
HelloRetryRequest), the client sent its next flight (ClientKeyExchange/ChangeCipherSpec/Finished,
or a second ClientHello), and the server only acknowledged it: ``blocked``/``tls_failed`` once
TLS_SILENCE_S (3 s) passed after that flight — the flow lasting that long, or the capture
going on — in one batch, in small chunks and live alike. A handshake the server went on with
(its encrypted TLS 1.3 flight, or its answer acknowledged by the client but not captured) is
not."""
from __future__ import annotations

import struct

import pandas as pd
import pytest

pytest.importorskip("scapy")

from scapy.all import DNS, DNSQR, IP, TCP, UDP, Ether, Raw  # noqa: E402

from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.chunked import ChunkedAnalysis  # noqa: E402
from kscc_traffic.protocols.tls import HRR_RANDOM  # noqa: E402
from kscc_traffic.rules import load_rules  # noqa: E402
from pcapbuild import pcap_bytes  # noqa: E402
from test_decode_more_encaps import client_hello  # noqa: E402

RULES = load_rules()
AGENT, CLOUD, DNS_SRV = "192.0.2.10", "203.0.113.23", "192.0.2.53"
ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
T0 = 1_772_442_000.0
CCS = b"\x14\x03\x03\x00\x01\x01"


def _record(ct: int, body: bytes) -> bytes:
    return struct.pack("!BHH", ct, 0x0303, len(body)) + body


def _handshake(mt: int, body: bytes) -> bytes:
    return bytes([mt]) + len(body).to_bytes(3, "big") + body


def _server_hello(random: bytes = bytes(range(32)), exts: bytes = b"", cipher: int = 0xC02F) -> bytes:
    body = b"\x03\x03" + random + b"\x00" + struct.pack("!HB", cipher, 0) + struct.pack("!H", len(exts)) + exts
    return _handshake(2, body)


#: TLS 1.2: ServerHello + ServerHelloDone (no certificate: the handshake is what is looked at)
FLIGHT12 = _record(22, _server_hello() + _handshake(14, b""))
#: the client's ClientKeyExchange, ChangeCipherSpec and (encrypted) Finished
KEX12 = _record(22, _handshake(16, b"\x20" + bytes(32))) + CCS + _record(22, bytes(40))
#: the server's ChangeCipherSpec and Finished
FIN12 = CCS + _record(22, bytes(40))
_V13 = struct.pack("!HHH", 43, 2, 0x0304)
HRR = _record(22, _server_hello(HRR_RANDOM, _V13 + struct.pack("!HHH", 51, 2, 0x001D), 0x1301)) + CCS
#: TLS 1.3: ServerHello, then the encrypted flight (EncryptedExtensions…Finished) as application data
FLIGHT13 = _record(22, _server_hello(exts=_V13, cipher=0x1301)) + CCS + _record(23, bytes(900))


class _Conv:
    """One TCP connection AGENT:sport -> CLOUD:dport with consistent sequence numbers:
    ``send(t, side, data)`` ('c' or 's'; ``data`` b'' for a bare ACK)."""

    def __init__(self, t: float, sport: int, dport: int = 23101):
        self.sport, self.dport = sport, dport
        self.seq = {"c": 101, "s": 901}
        self.recs = [(t, self._pkt("c", "S", 100, 0)), (t + 0.01, self._pkt("s", "SA", 900, 101)),
                     (t + 0.02, self._pkt("c", "A", 101, 901))]

    def _pkt(self, side: str, flags: str, seq: int, ack: int):
        if side == "c":
            return ETH / IP(src=AGENT, dst=CLOUD) / TCP(sport=self.sport, dport=self.dport, flags=flags,
                                                       seq=seq, ack=ack)
        return ETH / IP(src=CLOUD, dst=AGENT) / TCP(sport=self.dport, dport=self.sport, flags=flags,
                                                   seq=seq, ack=ack)

    def send(self, t: float, side: str, data: bytes = b"", seq: int | None = None, ack: int | None = None):
        other = "s" if side == "c" else "c"
        p = self._pkt(side, "PA" if data else "A", self.seq[side] if seq is None else seq,
                      self.seq[other] if ack is None else ack)
        self.recs.append((t, p / Raw(data) if data else p))
        if seq is None:
            self.seq[side] += len(data)
        return self


def _dns_tick(t: float, i: int):
    q = ETH / IP(src=AGENT, dst=DNS_SRV) / UDP(sport=41000 + i, dport=53) / DNS(id=i, qd=DNSQR(qname=f"x{i}.example"))
    r = ETH / IP(src=DNS_SRV, dst=AGENT) / UDP(sport=53, dport=41000 + i) / DNS(id=i, qr=1, qd=DNSQR(qname=f"x{i}.example"))
    return [(t, q), (t + 0.01, r)]


def _write(tmp_path, convs, seconds: int, name: str):
    """The connections, then ``seconds`` s of other traffic (a DNS exchange a second)."""
    recs = [r for c in convs for r in c.recs]
    for i in range(seconds):
        recs += _dns_tick(T0 + 1 + i, i)
    path = tmp_path / name
    path.write_bytes(pcap_bytes(sorted(recs, key=lambda r: r[0])))
    return path


def _by_port(flows) -> dict[int, tuple[str, str, str]]:
    tcp = flows[flows["proto"] == "tcp"]
    return {int(r.orig_p): (r.verdict, r.reason, r.detail) for r in tcp.itertuples()}


def _stalls(t: float = T0) -> list[_Conv]:
    """50001: TLS 1.2 left hanging after the client's key exchange flight; 50002: TLS 1.3 left
    hanging after the second ClientHello; 50003: TLS 1.3 whose server answered with its
    encrypted flight (the client has not sent its Finished yet); 50004: TLS 1.2 whose server's
    ChangeCipherSpec/Finished was not captured but is acknowledged by the client; 50005: TLS 1.2
    completed."""
    hello = client_hello("eu1.ksc.kaspersky.com")
    return [
        _Conv(t, 50001).send(t + 0.03, "c", hello).send(t + 0.05, "s", FLIGHT12)
        .send(t + 0.07, "c", KEX12).send(t + 0.09, "s"),
        _Conv(t, 50002).send(t + 0.03, "c", hello).send(t + 0.05, "s", HRR)
        .send(t + 0.07, "c", hello).send(t + 0.09, "s"),
        _Conv(t, 50003).send(t + 0.03, "c", hello).send(t + 0.05, "s", FLIGHT13[:200])
        .send(t + 0.06, "c", CCS).send(t + 0.07, "s", FLIGHT13[200:]).send(t + 0.08, "c"),
        _Conv(t, 50004).send(t + 0.03, "c", hello).send(t + 0.05, "s", FLIGHT12)
        .send(t + 0.07, "c", KEX12).send(t + 0.09, "s").send(t + 0.12, "c", ack=901 + len(FLIGHT12) + len(FIN12)),
        _Conv(t, 50005).send(t + 0.03, "c", hello).send(t + 0.05, "s", FLIGHT12)
        .send(t + 0.07, "c", KEX12).send(t + 0.09, "s", FIN12).send(t + 0.11, "c"),
    ]


def test_handshake_left_hanging_after_the_servers_first_flight(tmp_path):
    path = _write(tmp_path, _stalls(), 10, "stall.pcap")
    flows = analyze_file(path, RULES).flows
    v = _by_port(flows)
    going_on = ", the capture going on"
    assert v[50001] == ("blocked", "tls_failed", "TLS handshake not completed: the server sent nothing for 3 s "
                        "or more after the client's ClientKeyExchange/ChangeCipherSpec/Finished" + going_on)
    assert v[50002] == ("blocked", "tls_failed", "TLS handshake not completed: the server sent nothing for 3 s "
                        "or more after the client's second ClientHello (after a HelloRetryRequest)" + going_on)
    assert v[50003] == ("ok", "", "") and v[50004] == ("ok", "", "") and v[50005] == ("ok", "", "")
    # the server's first flight was answered: these are not "ClientHello not answered"
    row = flows[flows["orig_p"] == 50002].iloc[0]
    assert (row["resp_bytes"], row["tls_established"]) == (len(HRR), False)
    # in chunks of a few records: the same table
    run = ChunkedAnalysis(path, RULES, path.name, chunk_bytes=300)
    small = pd.concat(list(run.batches()), ignore_index=True)
    key = ["uid", "verdict", "reason", "detail"]
    assert flows[key].sort_values("uid").values.tolist() == small[key].sort_values("uid").values.tolist()
    # two seconds of capture after the server's acknowledgements: not known to hang
    short = _write(tmp_path, _stalls(), 2, "short.pcap")
    assert {p: v[0] for p, v in _by_port(analyze_file(short, RULES).flows).items()} == \
        {50001: "ok", 50002: "ok", 50003: "ok", 50004: "ok", 50005: "ok"}


def test_handshake_hanging_while_the_flow_lasts(tmp_path):
    """The client sends its key exchange flight again 4.5 s later and the server acknowledges
    it again: the wait counts from the first sending (a retransmission is no new flight), the
    flow itself lasting past 3 s; the capture then ends (no quiet time needed)."""
    c = _Conv(T0, 50011).send(T0 + 0.03, "c", client_hello("eu1.ksc.kaspersky.com")) \
        .send(T0 + 0.05, "s", FLIGHT12).send(T0 + 0.07, "c", KEX12).send(T0 + 0.09, "s")
    c.send(T0 + 4.57, "c", KEX12, seq=c.seq["c"] - len(KEX12)).send(T0 + 4.59, "s")
    path = _write(tmp_path, [c], 0, "stall_long.pcap")
    assert _by_port(analyze_file(path, RULES).flows)[50011] == (
        "blocked", "tls_failed", "TLS handshake not completed: the server sent nothing for 4.5 s after "
        "the client's ClientKeyExchange/ChangeCipherSpec/Finished")


def test_live_reports_the_hanging_handshakes_and_ends_as_the_file(tmp_path, monkeypatch):
    """Live: nothing 1 s after the server's acknowledgements, both hanging handshakes reported
    3.5 s after, while capturing; replayed a frame a batch (a tick after each) the final table
    is the file's (with the packets the session keeps by default: a client ACK of bytes not
    captured, summarised into counters when only 2 packets a flow are kept, would not count
    them)."""
    from kscc_traffic.capture.decode import decode
    from kscc_traffic.capture.files import read_frames
    from kscc_traffic.live import session as S
    from test_live_session import assert_live_same
    path = _write(tmp_path, _stalls(), 10, "stall_live.pcap")
    p = decode(read_frames(path))
    events = []
    s = S.LiveSession(RULES, name=path.name, on_event=events.append)
    tcp = p.cols["proto"] == 6
    s.ingest(p.take(tcp))
    last = int(p.cols["ts_ns"][tcp].max())
    s.tick(last + 10**9)
    assert not [e for e in events if e["verdict"] == "blocked"]
    s.tick(last + 3_500_000_000)
    assert {(e["orig_p"], e["reason"]) for e in events if e["verdict"] == "blocked"} == \
        {(50001, "tls_failed"), (50002, "tls_failed")}
    assert_live_same(path, monkeypatch, step=1, head_packets=S.HEAD_PACKETS)


def test_clienthello_answered_in_http(tmp_path):
    """A web server (or captive portal) on the TLS port answers the ClientHello ``400`` and
    closes: cleartext HTTP where TLS is documented (not a TLS failure), with its status; the
    same when it answers ``100 Continue`` first and leaves the connection open (a redirect then:
    a captive portal's, blocked/rejected, its Location after the 1xx read)."""
    hello = client_hello("eu1.ksc.kaspersky.com")
    bad = b"HTTP/1.1 400 Bad Request\r\nServer: nginx\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    a = _Conv(T0, 50021).send(T0 + 0.03, "c", hello).send(T0 + 0.05, "s", bad)
    b = _Conv(T0, 50022).send(T0 + 0.03, "c", hello).send(
        T0 + 0.05, "s", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 302 Found\r\nLocation: http://portal.example/\r\n\r\n")
    fin_s = a._pkt("s", "FA", a.seq["s"], a.seq["c"])
    fin_c = a._pkt("c", "FA", a.seq["c"], a.seq["s"] + 1)
    a.recs += [(T0 + 0.06, fin_s), (T0 + 0.07, fin_c), (T0 + 0.08, a._pkt("s", "A", a.seq["s"] + 1, a.seq["c"] + 1))]
    path = _write(tmp_path, [a, b], 1, "http_answer.pcap")
    flows = analyze_file(path, RULES).flows
    rows = flows[flows["proto"] == "tcp"].set_index("orig_p")
    assert rows.loc[50021, ["client_proto", "server_proto", "http_status", "verdict", "reason", "detail"]].tolist() \
        == ["tls", "http", "400", "unexpected", "not_tls",
            "the server answered HTTP (400) to the ClientHello where TLS is documented"]
    assert rows.loc[50022, ["http_status", "verdict", "reason", "detail"]].tolist() \
        == ["302", "blocked", "rejected", "the server answered HTTP 302 to the ClientHello where TLS is documented: a "
            "redirect to http://portal.example/ (a captive portal or web filter?)"]   # (break-it 24 F12)
