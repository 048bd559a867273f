"""A TLS ClientHello (or an HTTP CONNECT) the server acknowledges and then never answers, while
the capture goes on: ``blocked`` once the capture is known to have run TLS_SILENCE_S (3 s)
after the flow's last packet — not only when the flow itself lasted that long (a hello resent,
the client giving up). The same in one batch, in small chunks, and live (a hanging handshake
is reported while capturing, and the final table equals the file's)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("scapy")

from scapy.all import DNS, DNSQR, IP, TCP, UDP, Ether, Raw  # noqa: E402

from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.chunked import ChunkedAnalysis  # noqa: E402
from kscc_traffic.capture.decode import decode  # noqa: E402
from kscc_traffic.capture.files import read_frames  # noqa: E402
from kscc_traffic.live.pcapng_writer import PcapngWriter  # noqa: E402
from kscc_traffic.live.session import LiveSession  # noqa: E402
from kscc_traffic.rules import load_rules  # noqa: E402
from pcapbuild import pcap_bytes  # noqa: E402
from test_decode_more_encaps import client_hello  # noqa: E402

RULES = load_rules()
AGENT, CLOUD, PROXY, DNS_SRV = "192.0.2.10", "203.0.113.23", "192.0.2.1", "192.0.2.53"
ETH = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
T0 = 1_772_442_000.0


def _conn(t: float, sport: int, server: str, dport: int, data: bytes) -> list[tuple[float, bytes]]:
    """Handshake, one data segment from the client, the server's bare ACK of it."""
    c = lambda **kw: ETH / IP(src=AGENT, dst=server) / TCP(sport=sport, dport=dport, **kw)  # noqa: E731
    s = lambda **kw: ETH / IP(src=server, dst=AGENT) / TCP(sport=dport, dport=sport, **kw)  # noqa: E731
    return [(t, c(flags="S", seq=100)), (t + 0.01, s(flags="SA", seq=900, ack=101)),
            (t + 0.02, c(flags="A", seq=101, ack=901)),
            (t + 0.03, c(flags="PA", seq=101, ack=901) / Raw(data)),
            (t + 0.04, s(flags="A", seq=901, ack=101 + len(data)))]


def _dns_tick(t: float, i: int) -> list[tuple[float, bytes]]:
    q = ETH / IP(src=AGENT, dst=DNS_SRV) / UDP(sport=41000 + i, dport=53) / DNS(id=i, qd=DNSQR(qname=f"x{i}.example"))
    r = ETH / IP(src=DNS_SRV, dst=AGENT) / UDP(sport=53, dport=41000 + i) / DNS(id=i, qr=1, qd=DNSQR(qname=f"x{i}.example"))
    return [(t, q), (t + 0.01, r)]


def _capture(tmp_path, after_s: float):
    """A hello to 23101 and a CONNECT to a proxy, both acknowledged and never answered, then
    ``after_s`` seconds of other traffic (a DNS exchange a second)."""
    recs = _conn(T0, 54003, CLOUD, 23101, client_hello("eu1.ksc.kaspersky.com"))
    recs += _conn(T0 + 0.1, 54004, PROXY, 3128, b"CONNECT eu1.ksc.kaspersky.com:23101 HTTP/1.1\r\n\r\n")
    for i in range(int(after_s)):
        recs += _dns_tick(T0 + 1 + i, i)
    path = tmp_path / f"stall{after_s:g}.pcap"
    path.write_bytes(pcap_bytes(sorted(recs, key=lambda r: r[0])))
    return path


def _row_after(tmp_path, recs, seconds: int, name: str, port: int):
    """``recs`` then ``seconds`` s of other traffic (a DNS exchange a second), written and
    analysed: the row of the flow from client port ``port``."""
    recs = list(recs)
    for i in range(seconds):
        recs += _dns_tick(T0 + 1 + i, i)
    path = tmp_path / name
    path.write_bytes(pcap_bytes(recs))
    flows = analyze_file(path, RULES).flows
    return flows[flows["orig_p"] == port].iloc[0]


def _verdicts(flows) -> dict[int, tuple[str, str, str]]:
    tcp = flows[flows["proto"] == "tcp"]
    return {int(r.orig_p): (r.verdict, r.reason, r.detail) for r in tcp.itertuples()}


def test_hanging_hello_and_connect_are_blocked(tmp_path):
    path = _capture(tmp_path, 20)
    v = _verdicts(analyze_file(path, RULES).flows)
    assert v[54003] == ("blocked", "tls_failed", "ClientHello not answered: no byte from the server for "
                        "3 s or more, the capture going on")
    assert v[54004] == ("blocked", "no_answer", "the proxy 192.0.2.1:3128 did not answer CONNECT "
                        "eu1.ksc.kaspersky.com:23101 for 3 s or more, the capture going on")
    # read in chunks of a few records: the same table
    whole = analyze_file(path, RULES).flows
    run = ChunkedAnalysis(path, RULES, path.name, chunk_bytes=300)
    small = pd.concat(list(run.batches()), ignore_index=True)
    assert len(small) == len(whole)
    key = ["uid", "verdict", "reason", "detail"]
    assert whole[key].sort_values("uid").values.tolist() == small[key].sort_values("uid").values.tolist()


def test_capture_ending_soon_after_the_hello_keeps_it_ok(tmp_path):
    """Two seconds of capture after the last packet: not known to be unanswered."""
    path = _capture(tmp_path, 2)
    v = _verdicts(analyze_file(path, RULES).flows)
    assert v[54003][:2] == ("ok", "") and v[54004][:2] == ("ok", "")


def test_live_reports_the_hanging_hello_and_ends_as_the_file(tmp_path):
    path = _capture(tmp_path, 20)
    fr = read_frames(path)
    p = decode(fr)
    events = []
    s = LiveSession(RULES, name=path.name, on_event=events.append)
    ts = fr.ts_ns
    # the two connections, then a tick 1 s later: nothing yet
    first = p.cols["frame"] < 10
    s.ingest(p.take(first))
    s.tick(int(ts[9]) + 10**9)
    assert not [e for e in events if e["verdict"] == "blocked"]
    # 3.5 s after: both reported while capturing
    s.tick(int(ts[9]) + 3_500_000_000)
    got = {(e["orig_p"], e["reason"]) for e in events if e["verdict"] == "blocked"}
    assert got == {(54003, "tls_failed"), (54004, "no_answer")}
    s.ingest(p.take(~first))
    final = s.final().sort_values("uid").reset_index(drop=True)
    ref = analyze_file(path, RULES).flows.sort_values("uid").reset_index(drop=True)
    for col in ref.columns:
        assert ref[col].tolist() == final[col].tolist(), col
    assert int(np.count_nonzero(final["verdict"] == "blocked")) == 2


def test_tunnel_whose_answer_was_not_captured_is_not_silent(tmp_path):
    """CONNECT answered 200, the ClientHello in the tunnel, then the server's flight (3000 bytes)
    missing from the capture but acknowledged by the client, which goes on: the server did
    answer (its bytes after the proxy's answer head count by sequence numbers, as for a direct
    flow), so ``ok`` — not "ClientHello not answered" (break-it 7 A)."""
    hello = client_hello("eu1.ksc.kaspersky.com")
    answer = b"HTTP/1.1 200 Connection established\r\n\r\n"
    connect = b"CONNECT eu1.ksc.kaspersky.com:23101 HTTP/1.1\r\nHost: eu1.ksc.kaspersky.com:23101\r\n\r\n"
    c = lambda **kw: ETH / IP(src=AGENT, dst=PROXY) / TCP(sport=50002, dport=3128, **kw)  # noqa: E731
    s = lambda **kw: ETH / IP(src=PROXY, dst=AGENT) / TCP(sport=3128, dport=50002, **kw)  # noqa: E731
    cs, ss = 101, 901
    recs = [(T0, c(flags="S", seq=100)), (T0 + 0.01, s(flags="SA", seq=900, ack=101)),
            (T0 + 0.02, c(flags="A", seq=cs, ack=ss)),
            (T0 + 0.03, c(flags="PA", seq=cs, ack=ss) / Raw(connect))]
    cs += len(connect)
    recs += [(T0 + 0.04, s(flags="PA", seq=ss, ack=cs) / Raw(answer))]
    ss += len(answer)
    recs += [(T0 + 0.05, c(flags="PA", seq=cs, ack=ss) / Raw(hello))]
    cs += len(hello)
    recs += [(T0 + 0.06, s(flags="A", seq=ss, ack=cs))]
    ss += 3000                                   # (the server's flight, not captured)
    recs += [(T0 + 0.10, c(flags="PA", seq=cs, ack=ss) / Raw(b"\x14\x03\x03\x00\x01\x01")),
             (T0 + 0.11, s(flags="A", seq=ss, ack=cs + 6))]
    r = _row_after(tmp_path, recs, 10, "tunnel_lost.pcap", 50002)
    assert (r["purpose"], r["verdict"], r["http_status"], r["resp_bytes"]) == \
        ("agent_connection", "ok", "200", len(answer) + 3000)


def _pcapng_with_end(tmp_path, recs, end_s: float | None, name: str):
    """``recs`` written by the project's live pcapng writer; ``end_s`` (s after T0) as the time
    its statistics block says the capture stopped (None: no statistics block)."""
    path = tmp_path / name
    with PcapngWriter(path, interface="eth0") as w:
        for t, pkt in recs:
            w.write(round(t * 1e9), 1, bytes(pkt))
        w.close(ts_ns=None if end_s is None else round((T0 + end_s) * 1e9))
    return path


def test_pcapng_statistics_block_tells_how_long_the_capture_ran(tmp_path):
    """The hello acknowledged and never answered is the capture's last packet; dumpcap (and
    `live --write`) write an Interface Statistics Block when the capture stops: its isb_endtime
    20 s later says the capture went on, so the hello is blocked; without it, or with an end
    more than a day later (a wrong clock), it stays ok. A SYN left unanswered just before the
    last packet gets no "the capture ended … maybe before an answer" note when the block says
    the capture ran 20 s more (break-it 7 B)."""
    syn = ETH / IP(src=AGENT, dst=CLOUD) / TCP(sport=54010, dport=27201, flags="S", seq=7)
    recs = [(T0 - 0.5, syn)] + _conn(T0, 54003, CLOUD, 23101, client_hello("eu1.ksc.kaspersky.com"))

    def row(path, port):
        f = analyze_file(path, RULES).flows
        return f[f["orig_p"] == port].iloc[0]

    ran_on = _pcapng_with_end(tmp_path, recs, 20.0, "ran_on.pcapng")
    assert read_frames(ran_on).stats.end_ns == round((T0 + 20.0) * 1e9)
    assert (row(ran_on, 54003)["verdict"], row(ran_on, 54003)["reason"]) == ("blocked", "tls_failed")
    assert "the capture ended" not in row(ran_on, 54010)["detail"]
    for end, name in ((None, "no_isb.pcapng"), (2 * 86400.0, "bad_clock.pcapng")):
        p = _pcapng_with_end(tmp_path, recs, end, name)
        assert row(p, 54003)["verdict"] == "ok"
        assert "the capture ended 0.5" in row(p, 54010)["detail"]


def test_statistics_block_in_microseconds_under_a_nanosecond_resolution(tmp_path):
    """dumpcap 4.0 writes its Interface Statistics Block times in µs although its interfaces
    say ns (if_tsresol 9): read as ns they fall in January 1970. They are read as µs, so the
    capture's 20 s after the hello count as with a right block."""
    recs = _conn(T0, 54003, CLOUD, 23101, client_hello("eu1.ksc.kaspersky.com"))
    path = tmp_path / "dumpcap40.pcapng"
    with PcapngWriter(path, interface="eth0") as w:
        for t, pkt in recs:
            w.write(round(t * 1e9), 1, bytes(pkt))
        w.close(ts_ns=round((T0 + 20.0) * 1e6))            # µs, as dumpcap 4.0.17 writes them
    assert read_frames(path).stats.end_ns == round((T0 + 20.0) * 1e6) * 1000
    r = analyze_file(path, RULES).flows.iloc[0]
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed")


def test_live_final_equals_the_analysis_of_its_written_file(tmp_path):
    recs = _conn(T0, 54003, CLOUD, 23101, client_hello("eu1.ksc.kaspersky.com"))
    end_ns = round((T0 + 20.0) * 1e9)
    path = _pcapng_with_end(tmp_path, recs, 20.0, "live.pcapng")
    s = LiveSession(RULES, name=path.name)
    s.ingest(decode(read_frames(path)))
    s.tick(round((T0 + 1) * 1e9))
    live = s.final(end_ns=end_ns).sort_values("uid").reset_index(drop=True)
    ref = analyze_file(path, RULES).flows.sort_values("uid").reset_index(drop=True)
    for col in ref.columns:
        assert ref[col].tolist() == live[col].tolist(), col
    assert live["verdict"].tolist() == ["blocked"]


def test_proxy_get_unanswered_while_the_capture_goes_on(tmp_path):
    """A plain request in absolute-form to a proxy, acknowledged and never answered, the capture
    going on: blocked like a CONNECT, its detail naming the request."""
    get = b"GET http://crl3.digicert.com/x.crl HTTP/1.1\r\nHost: crl3.digicert.com\r\n\r\n"
    r = _row_after(tmp_path, _conn(T0, 54020, PROXY, 8080, get), 6, "get.pcap", 54020)
    assert (r["purpose"], r["verdict"], r["reason"], r["proxy_target"]) == \
        ("cert_check", "blocked", "no_answer", "http://crl3.digicert.com:80")
    assert r["detail"] == ("the proxy 192.0.2.1:8080 did not answer the request for http://crl3.digicert.com:80 "
                           "for 3 s or more, the capture going on")
