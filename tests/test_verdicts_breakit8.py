"""Verdicts of break-it 8: a connection that dies before our eyes in a capture started
mid-connection (F3), a transparent web filter answering plain HTTP (F4), QUIC to a Kaspersky
name (F8). Each capture is analysed whole, in chunks of a few records and live: the same rows."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("scapy")

from scapy.all import DNS, DNSQR, DNSRR, IP, TCP, UDP, Ether, Raw  # noqa: E402

from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.capture.decode import decode  # noqa: E402
from kscc_traffic.capture.files import read_frames  # noqa: E402
from kscc_traffic.chunked import ChunkedAnalysis  # noqa: E402
from kscc_traffic.live.session import LiveSession  # noqa: E402
from kscc_traffic.report import readiness  # noqa: E402
from kscc_traffic.rules import load_rules  # noqa: E402
from pcapbuild import pcap_bytes, tcp_session  # noqa: E402

RULES = load_rules()
AGENT, CLOUD, CRL, DNS_SRV = "192.0.2.10", "198.51.100.7", "198.51.100.90", "192.0.2.53"
ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
T0 = 1_772_442_000.0
QUIC_DETAIL = ("QUIC (HTTP/3) on UDP 443: not a documented KSC purpose (browser traffic; the agent "
               "uses TCP 443)")
DIED = "(the connection died: a firewall that dropped an idle session?)"


def _answer(t: float, i: int, name: str, addr: str) -> list[tuple[float, bytes]]:
    """A DNS query for ``name`` and its answer ``addr``."""
    q = ETH / IP(src=AGENT, dst=DNS_SRV) / UDP(sport=40000 + i, dport=53) / DNS(id=i, qd=DNSQR(qname=name))
    r = ETH / IP(src=DNS_SRV, dst=AGENT) / UDP(sport=53, dport=40000 + i) / DNS(
        id=i, qr=1, qd=DNSQR(qname=name), an=DNSRR(rrname=name, rdata=addr))
    return [(t, q), (t + 0.01, r)]


def _ticks(t: float, seconds: int) -> list[tuple[float, bytes]]:
    """Other traffic, one DNS exchange a second: the capture goes on."""
    out = []
    for i in range(seconds):
        out += _answer(t + i, 100 + i, f"x{i}.example", "192.0.2.99")
    return out


def _tcp(sport: int, server: str, dport: int):
    c = lambda **kw: ETH / IP(src=AGENT, dst=server) / TCP(sport=sport, dport=dport, **kw)  # noqa: E731
    s = lambda **kw: ETH / IP(src=server, dst=AGENT) / TCP(sport=dport, dport=sport, **kw)  # noqa: E731
    return c, s


def _three(tmp_path, recs, name: str) -> pd.DataFrame:
    """``recs`` written and analysed whole, in chunks of 300 bytes and live (packets fed in
    batches of 3 with a clock tick after each): the three tables must be equal; the whole one."""
    path = tmp_path / name
    path.write_bytes(pcap_bytes(sorted(recs, key=lambda r: r[0])))
    whole = analyze_file(path, RULES).flows.sort_values("uid").reset_index(drop=True)
    chunks = pd.concat(list(ChunkedAnalysis(path, RULES, path.name, chunk_bytes=300).batches()),
                       ignore_index=True).sort_values("uid").reset_index(drop=True)
    fr = read_frames(path)
    p = decode(fr)
    live = LiveSession(RULES, name=path.name)
    frame = p.cols["frame"]
    for k in range(0, len(fr.ts_ns), 3):
        live.ingest(p.take((frame >= k) & (frame < k + 3)))
        live.tick(int(fr.ts_ns[min(k + 2, len(fr.ts_ns) - 1)]))
    final = live.final().sort_values("uid").reset_index(drop=True)
    for other in (chunks, final):
        for col in ("uid", "purpose", "verdict", "reason", "detail"):
            assert whole[col].tolist() == other[col].tolist(), col
    return whole


def _row(flows: pd.DataFrame, port: int) -> pd.Series:
    return flows[flows["orig_p"] == port].iloc[0]


def _status(flows: pd.DataFrame, rule: str) -> str:
    chk = readiness(flows, RULES)
    return chk[chk["rule"] == rule]["status"].iloc[0]


# --- F3: a partial TCP flow the responder sent nothing in ------------------------------------------

def _midstream_unacked(sport: int, t: float, reset: bool = True) -> list[tuple[float, bytes]]:
    """Mid-connection: one 120-byte record sent 5 times with RTO back-off, never acknowledged,
    then (``reset``) the agent's RST."""
    c, _ = _tcp(sport, CLOUD, 23101)
    recs, data = [], b"\x17\x03\x03\x00\x73" + bytes(115)
    for dt in (0.0, 0.4, 1.2, 2.8, 6.0):
        recs.append((t + dt, c(flags="PA", seq=5000, ack=9000) / Raw(data)))
    if reset:
        recs.append((t + 12.4, c(flags="RA", seq=5000 + len(data), ack=9000)))
    return recs


def test_partial_flow_whose_data_is_never_acknowledged_is_blocked(tmp_path):
    """The capture starts mid-connection; the agent's data is retransmitted and never
    acknowledged, then the agent resets: nothing shows the cloud was reached, the connection died
    before our eyes (the session dropped by a firewall): blocked, and the purpose too."""
    recs = _answer(T0 - 1, 1, "eu1.ksc.kaspersky.com", CLOUD) + _midstream_unacked(52007, T0) + _ticks(T0 + 13, 5)
    flows = _three(tmp_path, recs, "unacked.pcap")
    r = _row(flows, 52007)
    assert (r["partial"], r["resp_pkts"], r["purpose"], r["verdict"], r["reason"]) == \
        (True, 0, "agent_connection", "blocked", "no_answer,partial")
    assert r["detail"] == f"capture started mid-connection; 6 packets sent, nothing came back {DIED}"
    assert _status(flows, "agent_connection") == "blocked"


def test_partial_keepalives_unanswered_are_blocked_answered_ones_ok(tmp_path):
    """Keep-alives (one old byte, as Windows sends them) every 45 s: never answered, then the
    agent's RST, blocked; each answered by an ACK, ok partial (the server is there)."""
    c, s = _tcp(52006, CLOUD, 23101)
    c2, s2 = _tcp(52005, CLOUD, 23101)
    recs = _answer(T0 - 1, 1, "eu1.ksc.kaspersky.com", CLOUD)
    for i in range(4):
        recs.append((T0 + 45 * i, c(flags="A", seq=4999, ack=9000) / Raw(b"\x00")))
        recs.append((T0 + 45 * i + 0.5, c2(flags="A", seq=7999, ack=3000) / Raw(b"\x00")))
        recs.append((T0 + 45 * i + 0.52, s2(flags="A", seq=3000, ack=8000)))
    recs.append((T0 + 136, c(flags="RA", seq=5000, ack=9000)))
    flows = _three(tmp_path, recs + _ticks(T0 + 137, 4), "keepalive.pcap")
    dead, alive = _row(flows, 52006), _row(flows, 52005)
    assert (dead["verdict"], dead["reason"]) == ("blocked", "no_answer,partial")
    assert dead["detail"] == f"capture started mid-connection; 5 packets sent, nothing came back {DIED}"
    assert (alive["verdict"], alive["reason"], alive["detail"]) == ("ok", "partial", "")


def test_lone_packet_or_short_capture_is_not_judged_and_verifies_nothing(tmp_path):
    """A lone RST of the agent (a RST needs no answer), FINs sent again after the connection was
    over (Zeek #862), and unacknowledged data when the capture ends at once: nothing came back,
    but too little is seen to call it blocked; ``unclassified`` (not judged), never a purpose
    verified."""
    c, _ = _tcp(52003, CLOUD, 23101)
    fin, _ = _tcp(52004, CLOUD, 23101)
    recs = _answer(T0 - 1, 1, "eu1.ksc.kaspersky.com", CLOUD) + [(T0, c(flags="RA", seq=10, ack=20))]
    recs += [(T0 + 0.1 + 2 ** i, fin(flags="FA", seq=30, ack=40)) for i in range(3)]
    recs += _ticks(T0 + 1, 10)
    # unacknowledged data as the capture's very last packets (1 s of them, nothing after)
    cut, _ = _tcp(52008, CLOUD, 23101)
    recs += [(T0 + 11 + dt, cut(flags="PA", seq=50, ack=60) / Raw(b"\x17\x03\x03\x00\x02hi")) for dt in (0.0, 1.0)]
    flows = _three(tmp_path, recs, "lone.pcap")
    rst, fins, late = _row(flows, 52003), _row(flows, 52004), _row(flows, 52008)
    for r in (rst, fins, late):
        assert (r["purpose"], r["verdict"], r["reason"]) == ("agent_connection", "unclassified", "partial")
    assert rst["detail"] == ("capture started mid-connection; 1 packet without data sent (FIN, RST or ACK: a "
                             "connection's end), nothing came back: not judged")
    assert fins["detail"].startswith("capture started mid-connection; 3 packets without data sent")
    assert late["detail"] == "capture started mid-connection; 2 packets sent, nothing came back: too little to judge"
    assert _status(flows, "agent_connection") == "not seen"


# --- F4: plain HTTP to a documented HTTP port, answered by a transparent web filter ----------------

def _get(sport: int, t: float, answer: bytes, host: str = "crl3.digicert.com") -> list[tuple[float, bytes]]:
    c, s = _tcp(sport, CRL, 80)
    req = f"GET /DigiCertGlobalRootG2.crl HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    cs, ss = 101, 901
    recs = [(t, c(flags="S", seq=100)), (t + 0.01, s(flags="SA", seq=900, ack=101)),
            (t + 0.02, c(flags="A", seq=cs, ack=ss)), (t + 0.03, c(flags="PA", seq=cs, ack=ss) / Raw(req))]
    cs += len(req)
    recs += [(t + 0.04, s(flags="PA", seq=ss, ack=cs) / Raw(answer))]
    ss += len(answer)
    recs += [(t + 0.05, s(flags="FA", seq=ss, ack=cs)), (t + 0.06, c(flags="FA", seq=cs, ack=ss + 1)),
             (t + 0.07, s(flags="A", seq=ss + 1, ack=cs + 1))]
    return recs


def test_direct_http_refused_by_a_web_filter_is_blocked(tmp_path):
    """A CRL fetch sent straight to the server (no proxy) answered 403 by a transparent filter is
    blocked/rejected as the same answer through an explicit proxy, and so is a failing gateway's 503;
    200, 304 and the server's own 404 or 500 are ok."""
    forbidden = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"
    recs = _answer(T0 - 1, 1, "crl3.digicert.com", CRL)
    recs += _get(57001, T0, forbidden)
    recs += _get(57002, T0 + 1, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    recs += _get(57003, T0 + 2, b"HTTP/1.1 304 Not Modified\r\n\r\n")
    recs += _get(57004, T0 + 3, b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
                 host="crl3.digicert.com:80")
    # answers of the server reached, not of a filter: the CRL is not there, the server failed
    recs += _get(57005, T0 + 3.2, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    recs += _get(57006, T0 + 3.4, b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
    # (beside an agent's connection on a KSC-only port: a certificate check alone is any program's,
    # ocsp/crl *.digicert.com being every browser's, and judges no purpose: newcomer 29 F1)
    recs += tcp_session(("192.0.2.10", 50100), ("203.0.113.10", 23101), t0=T0 - 0.5)
    flows = _three(tmp_path, recs + _ticks(T0 + 4, 2), "http403.pcap")
    r = _row(flows, 57001)
    assert (r["purpose"], r["verdict"], r["reason"], r["http_status"]) == ("cert_check", "blocked", "rejected", "403")
    assert r["detail"] == ("the server 198.51.100.90:80 answered 403 \"Forbidden\" to the request for "
                           "http://crl3.digicert.com:80 (a transparent web filter, or the server refusing it)")
    assert _row(flows, 57004)["detail"].startswith("the server 198.51.100.90:80 answered 503 \"Service Unavailable\" to the request for "
                                                   "http://crl3.digicert.com:80")
    for port in (57002, 57003, 57005, 57006):
        assert (_row(flows, port)["verdict"], _row(flows, port)["reason"]) == ("ok", "")
    assert _status(flows, "cert_check") == "blocked"


# --- F8: QUIC to UDP 443 of a Kaspersky name ------------------------------------------------------

def _quic_initial(version: int = 1, first: int = 0xC3) -> bytes:
    """A client's first QUIC datagram as it starts (RFC 9000 §17.2.2): ``first`` (long header,
    fixed bit, type Initial: 0 for version 1, 1 for version 2 = 0xD3), the version, DCID length
    8 + DCID, SCID length 0, token length 0, then padding to 1250 bytes (a client pads its
    Initial to 1200 at least)."""
    head = bytes([first]) + version.to_bytes(4, "big") + bytes([8]) + bytes(range(8)) + b"\x00\x00"
    return head + bytes(1250 - len(head))


def test_quic_to_a_kaspersky_name_is_not_unexpected(tmp_path):
    """A browser tries HTTP/3 (UDP 443) to the discovery name and falls back to TCP 443: the QUIC
    flows are not judged (the agent speaks TCP), and nothing is flagged. The same bytes that are
    no QUIC Initial, or QUIC to another port, stay undocumented_port."""
    recs = _answer(T0 - 1, 1, "eu1.ksc.kaspersky.com", CLOUD)

    def dgram(t, sport, dport, data):
        return (t, ETH / IP(src=AGENT, dst=CLOUD) / UDP(sport=sport, dport=dport) / Raw(data))
    recs += [dgram(T0 + dt, 60001, 443, _quic_initial()) for dt in (0.0, 0.3)]
    recs += [dgram(T0 + 1, 60002, 443, _quic_initial(0x6B3343CF, 0xD3))]   # (version 2)
    recs += [dgram(T0 + 2, 60003, 443, _quic_initial(first=0x01))]       # (no long header)
    recs += [dgram(T0 + 3, 60004, 8443, _quic_initial())]
    recs += [dgram(T0 + 4, 60005, 443, _quic_initial()[:600])]             # (too short for an Initial)
    flows = _three(tmp_path, recs + _ticks(T0 + 5, 2), "quic.pcap")
    for port in (60001, 60002):
        r = _row(flows, port)
        assert (r["service"], r["purpose"], r["verdict"], r["reason"], r["detail"]) == \
            ("quic", "", "unclassified", "", QUIC_DETAIL)
    for port, service in ((60003, ""), (60004, "quic"), (60005, "")):
        r = _row(flows, port)
        assert (r["service"], r["verdict"], r["reason"]) == (service, "unexpected", "undocumented_port")
    assert int(np.count_nonzero(flows["verdict"] == "unexpected")) == 3
