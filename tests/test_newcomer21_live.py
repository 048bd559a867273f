"""Newcomer 21: live capture findings.

F2: a TLS handshake whose server sent nothing for TLS_SILENCE_S (3 s) or more after the
ClientHello (or after the client's next flight) and that was then closed, by either side, keeps
the live line's diagnosis in the final report with the time and who closed (it said "TLS
handshake aborted: connection closed (S2)" or "client: decode_error (50)", blaming a close or the
client). The shapes of the tester's captures live6, live12, live21 and live23, built here; whole
file, small chunks and the tshark engine agree."""
from __future__ import annotations

import shutil

import pytest

pytest.importorskip("scapy")

from kscc_traffic.analyze import analyze_file  # noqa: E402
from chunkcmp import assert_same  # noqa: E402
from test_decode_more_encaps import client_hello  # noqa: E402
from test_tls_stall import FLIGHT12, KEX12, RULES, T0, _by_port, _Conv, _write  # noqa: E402

HELLO = client_hello("eu1.ksc.kaspersky.com")
#: a cleartext fatal alert decode_error (50)
DECODE_ERROR = bytes.fromhex("15030300020232")
#: a cleartext fatal alert handshake_failure (40)
HANDSHAKE_FAILURE = bytes.fromhex("15030300020228")


def _close(c: _Conv, t: float, side: str, flags: str = "FA", data: bytes = b"", ack: int | None = None) -> _Conv:
    """A FIN (or RST: ``flags`` 'R'/'RA') from ``side`` at ``t``, after ``data`` when given; a FIN
    takes a sequence number."""
    other = "s" if side == "c" else "c"
    p = c._pkt(side, flags, c.seq[side], c.seq[other] if ack is None else ack)
    from scapy.all import Raw
    c.recs.append((t, p / Raw(data) if data else p))
    c.seq[side] += len(data) + ("F" in flags)
    return c


def _silent_servers() -> list[_Conv]:
    """50101 (live6): hello acknowledged, the server closes 8 s later, the client answers that
    FIN with a decode_error alert, the server resets. 50102 (live12): the client gives up after
    4 s, the server closes 4 s later. 50103 (live21): the client gives up after 6 s and sends its
    FIN again, never acknowledged. 50104 (live23): TLS 1.2 answered, the client's key exchange
    flight sent again and again, never acknowledged; the server closes 10 s after it. 50105: the
    server resets 5 s after the hello."""
    t = T0
    a = _Conv(t, 50101).send(t + 0.03, "c", HELLO).send(t + 0.04, "s")
    _close(a, t + 8.03, "s")
    a.send(t + 8.034, "c", DECODE_ERROR)
    _close(a, t + 8.035, "s", "R", ack=0)
    b = _Conv(t, 50102).send(t + 0.03, "c", HELLO).send(t + 0.04, "s")
    _close(b, t + 4.03, "c")
    b.send(t + 4.04, "s")
    _close(b, t + 8.03, "s")
    b.send(t + 8.04, "c")
    c = _Conv(t, 50103).send(t + 0.03, "c", HELLO).send(t + 0.04, "s")
    _close(c, t + 6.03, "c")
    for k in range(1, 4):
        c.recs.append((t + 6.03 + 0.2 * k, c._pkt("c", "FA", c.seq["c"] - 1, c.seq["s"])))
    d = _Conv(t, 50104).send(t + 0.03, "c", HELLO).send(t + 0.04, "s", FLIGHT12).send(t + 0.05, "c", KEX12)
    for k in range(1, 6):
        d.send(t + 0.05 + 0.2 * 2 ** k, "c", KEX12, seq=d.seq["c"] - len(KEX12))
    unacked = d.seq["c"] - len(KEX12)
    _close(d, t + 10.05, "s", ack=unacked)
    d.send(t + 10.06, "c")
    e = _Conv(t, 50105).send(t + 0.03, "c", HELLO).send(t + 0.04, "s")
    _close(e, t + 5.03, "s", "RA")
    # (skype_many-flows.pcap's shape: more client data 1 s after the hello, never acknowledged;
    # the silence counts from the hello)
    f = _Conv(t, 50106).send(t + 0.03, "c", HELLO).send(t + 0.04, "s")
    f.send(t + 1.03, "c", bytes(50), ack=901)
    _close(f, t + 6.03, "c")
    return [a, b, c, d, e, f]


def _aborted() -> list[_Conv]:
    """Not a silence: 50111 the server closes 1 s after the hello; 50112 the server answers the
    hello 5 s later with a handshake_failure alert and closes; 50113 the client sends a
    decode_error alert 5 s after its hello and then closes (the client aborted)."""
    t = T0
    a = _Conv(t, 50111).send(t + 0.03, "c", HELLO).send(t + 0.04, "s")
    _close(a, t + 1.03, "s")
    a.send(t + 1.04, "c")
    _close(a, t + 1.05, "c")
    b = _Conv(t, 50112).send(t + 0.03, "c", HELLO).send(t + 0.04, "s")
    b.send(t + 5.03, "s", HANDSHAKE_FAILURE)
    _close(b, t + 5.031, "s")
    _close(b, t + 5.04, "c")
    c = _Conv(t, 50113).send(t + 0.03, "c", HELLO).send(t + 0.04, "s")
    c.send(t + 5.03, "c", DECODE_ERROR)
    _close(c, t + 5.031, "c")
    _close(c, t + 5.04, "s")
    return [a, b, c]


def test_silent_server_then_closed_keeps_the_live_diagnosis(tmp_path):
    path = _write(tmp_path, _silent_servers(), 0, "silent_closed.pcap")
    v = _by_port(analyze_file(path, RULES).flows)
    hello = "ClientHello not answered: no byte from the server for"
    assert v[50101] == ("blocked", "tls_failed", f"{hello} 8.0 s, then the server closed (the client's "
                        "decode_error (50) alert answered that close)")
    assert v[50102] == ("blocked", "tls_failed", f"{hello} 4.0 s, then the client closed")
    assert v[50103] == ("blocked", "tls_failed", f"{hello} 6.0 s, then the client closed")
    assert v[50104] == ("blocked", "tls_failed", "TLS handshake not completed: the server sent nothing for "
                        "10.0 s after the client's ClientKeyExchange/ChangeCipherSpec/Finished, then the "
                        "server closed")
    assert v[50105] == ("blocked", "tls_failed", f"{hello} 5.0 s, then the server reset the connection")
    assert v[50106] == ("blocked", "tls_failed", f"{hello} 6.0 s, then the client closed")
    # in small chunks: the same table, every column
    w = assert_same(path, [400, 1500])
    assert (w["reason"] == "tls_failed").sum() == 6


def test_aborted_handshakes_keep_their_detail(tmp_path):
    path = _write(tmp_path, _aborted(), 0, "aborted.pcap")
    v = _by_port(analyze_file(path, RULES).flows)
    # (who closed and when, newcomer 23 F20)
    assert v[50111] == ("blocked", "tls_failed", "TLS handshake aborted: the server closed the connection (FIN, SF) "
                        "1.00 s after the ClientHello, before the server sent a byte")
    # (answering the ClientHello itself: nothing offered was acceptable, break-it s55 tls #7)
    # (its ClientHello offers one suite and no group: a narrow offer, the agent's policy first;
    # newcomer s59 #3)
    assert v[50112] == ("blocked", "tls_failed", "TLS handshake aborted: server: handshake_failure (40): the server's "
                        "side accepts none of the cipher suites, key-exchange groups or signature algorithms the client "
                        "offered, and the offer is a narrow one (TLS 1.2 at most, 1 cipher suite, no ECDHE AES-GCM "
                        "suite, no key-exchange group named): a TLS policy on the agent's device restricting them most "
                        "likely (a cipher-suite GPO or FIPS mode, an old operating system), or a device answering in "
                        "the server's place")
    assert v[50113] == ("blocked", "tls_failed", "TLS handshake aborted: client: decode_error (50)")
    assert_same(path, [400])


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_silent_server_then_closed_tshark_engine_agrees(tmp_path):
    path = _write(tmp_path, _silent_servers() + _aborted(), 0, "both.pcap")
    a = analyze_file(path, RULES).flows.sort_values("uid").reset_index(drop=True)
    b = analyze_file(path, RULES, engine="tshark").flows.sort_values("uid").reset_index(drop=True)
    assert a[["uid", "verdict", "reason", "detail"]].values.tolist() == \
        b[["uid", "verdict", "reason", "detail"]].values.tolist()
    assert (a["reason"] == "tls_failed").sum() == 9


def test_live_replay_ends_as_the_file(tmp_path, monkeypatch):
    """Replayed into a live session a frame a batch (a tick after each): the final table is the
    file's, these details included, with the packets kept by default and with 2 a flow."""
    from kscc_traffic.live import session as S
    from test_live_session import assert_live_same
    path = _write(tmp_path, _silent_servers() + _aborted(), 0, "live.pcap")
    assert_live_same(path, monkeypatch, step=1, head_packets=S.HEAD_PACKETS)
    assert_live_same(path, monkeypatch, step=3, head_packets=2)


# F5: a second Ctrl-C (or SIGTERM) while live builds its report: the Interrupted line of analyze,
# the previous --output content kept, and where the capture is

def _live_result(path):
    from kscc_traffic.live.run import LiveResult
    flows = analyze_file(path, RULES).flows
    return LiveResult(flows, 40, 40, 0, "signal", "lo", "scapy", path.name, "tcp")


def test_live_interrupted_while_building_the_report(tmp_path, monkeypatch, capsys):
    from kscc_traffic.cli import app
    from kscc_traffic.live import run as R

    def stopped(opts, view=None):
        raise KeyboardInterrupt
    monkeypatch.setattr(R, "run_live", stopped)
    out, cap = tmp_path / "r.jsonl", tmp_path / "live15.pcapng"
    out.write_text("previous\n")
    # (stopped before the capture file was made: no capture named)
    rc = app(args=["live", "-i", "lo", "-f", "jsonl", "-o", str(out), "--write", str(cap)], standalone_mode=False)
    assert rc == 130
    assert capsys.readouterr().err == (f"Interrupted: {out} not written (stopped before the report was built; its "
                                       f"previous content is kept); no capture was written to {cap}\n")
    cap.write_bytes(b"")
    rc = app(args=["live", "-i", "lo", "-f", "jsonl", "-o", str(out), "--write", str(cap)], standalone_mode=False)
    assert rc == 130
    assert capsys.readouterr().err == (f"Interrupted: {out} not written (stopped before the report was built; its "
                                       f"previous content is kept); the capture is in {cap}: kscc-traffic "
                                       f"analyze {cap}\n")
    assert out.read_text() == "previous\n"
    rc = app(args=["live", "-i", "lo"], standalone_mode=False)
    assert rc == 130
    assert capsys.readouterr().err == ("Interrupted: stopped before the report was built: nothing written to "
                                       "standard output; the packets were not kept (--write FILE.pcapng keeps "
                                       "them)\n")


def test_live_interrupted_while_writing_the_report(tmp_path, monkeypatch, capsys):
    from kscc_traffic import output
    from kscc_traffic.cli import app
    from kscc_traffic.live import run as R
    sample = _write(tmp_path, _silent_servers(), 0, "s.pcap")
    monkeypatch.setattr(R, "run_live", lambda opts, view=None: _live_result(sample))
    real = output.FlowSink.add

    def add(self, flows):
        real(self, flows)
        raise KeyboardInterrupt
    monkeypatch.setattr(output.FlowSink, "add", add)
    out, cap = tmp_path / "r.csv", tmp_path / "x y.pcapng"
    cap.write_bytes(b"")
    out.write_text("previous\n")
    rc = app(args=["live", "-i", "lo", "-f", "csv", "-o", str(out), "--write", str(cap)], standalone_mode=False)
    assert rc == 130
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("Captured 40 packets on lo (scapy), 0 dropped by the kernel; stopped by signal")
    assert err[1:] == [f"Interrupted: {out} not written (stopped after 6 flows; its previous content is kept); "
                       f"the capture is in {cap}: kscc-traffic analyze '{cap}'"]
    assert out.read_text() == "previous\n"


# F6: --count stops the capture before a tick saw the last flows: their live lines come anyway

def _fake_source(frames):
    from kscc_traffic.live.sources import Batch

    class Source:
        engine = "fake"

        def __init__(self):
            self.left = list(frames)

        def start(self):
            pass

        def read(self, timeout):
            out, self.left = self.left, []
            return Batch(frames=out)

        def stop(self):
            pass

        def drain(self):
            return Batch()

        def ended(self):
            return None

        def delivered_ns(self):
            return None

        def stats(self):
            return 2, 0

        def close(self):
            pass
    return Source()


def test_count_stop_still_gives_the_live_line(monkeypatch):
    """A SYN answered by a RST (2 packets) and --count 2: the rejected flow's line before the
    report, as with --duration or Ctrl-C (one line, not again for the same flow)."""
    from scapy.all import IP, TCP, Ether
    from kscc_traffic.live import run as R
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    syn = eth / IP(src="192.0.2.10", dst="203.0.113.10") / TCP(sport=40001, dport=29201, flags="S", seq=1)
    rst = eth / IP(src="203.0.113.10", dst="192.0.2.10") / TCP(sport=29201, dport=40001, flags="RA", seq=0, ack=2)
    t = int(T0 * 1e9)
    frames = [(t, 1, bytes(syn), len(syn)), (t + 1_000_000, 1, bytes(rst), len(rst)),
              (t + 2_000_000, 1, bytes(syn), len(syn))]
    monkeypatch.setattr(R, "open_source", lambda engine, iface, bpf: _fake_source(frames))
    events = []

    class View(R.LiveView):
        def event(self, ev):
            events.append(ev)
    res = R.run_live(R.LiveOptions(rules=RULES, interface="lo", count=2), view=View(interactive=False))
    assert (res.captured, res.stop_reason) == (2, "count")
    assert [(e["orig_p"], e["resp_p"], e["verdict"], e["reason"]) for e in events] == \
        [(40001, 29201, "blocked", "rejected")]
    assert res.flows[["verdict", "reason"]].values.tolist() == [["blocked", "rejected"]]


# F7: live -i any: one clear line with what to do instead, both engines

@pytest.mark.parametrize("engine", ["scapy", "tshark"])
def test_interface_any_says_what_to_do(engine):
    import subprocess
    import sys
    from kscc_traffic.live.sources import list_interfaces
    if "any" in list_interfaces():
        pytest.skip("an interface named any exists here")
    r = subprocess.run([sys.executable, "-m", "kscc_traffic", "live", "-i", "any", "--engine", engine,
                        "--duration", "1"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("Error: live captures one interface at a time: 'any' (every interface, as "
                               "tcpdump -i any) is not supported; available: ")
    assert lines[0].endswith("Run live once per interface, or capture every interface with `sudo tcpdump -i "
                             "any -w agent.pcap \"$(kscc-traffic rules --bpf --no-vlan)\"` and run "
                             "`kscc-traffic analyze agent.pcap` (cooked captures are read)")


# F8: --write x.pcap writes pcapng: a Warning line says so

def test_write_with_a_pcap_name_warns(tmp_path, monkeypatch, capsys):
    from kscc_traffic.cli import app
    from kscc_traffic.live import run as R
    sample = _write(tmp_path, _aborted(), 0, "s.pcap")
    monkeypatch.setattr(R, "run_live", lambda opts, view=None: _live_result(sample))
    cap = tmp_path / "x.pcap"
    rc = app(args=["live", "-i", "lo", "-f", "csv", "-o", str(tmp_path / "r.csv"), "--write", str(cap)],
             standalone_mode=False)
    assert rc == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (f"Warning: {cap}: written in pcapng format whatever its name says (tools that go by the "
                      f"extension may expect pcap): name it .pcapng, or convert it afterwards with `editcap -F "
                      f"pcap {cap} OUT.pcap`")
    rc = app(args=["live", "-i", "lo", "-f", "csv", "-o", str(tmp_path / "r.csv"), "--write",
                   str(tmp_path / "x.pcapng")], standalone_mode=False)
    assert rc == 1 and not [x for x in capsys.readouterr().err.splitlines() if x.startswith("Warning")]
