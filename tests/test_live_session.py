"""The live session without a network: captures replayed frame batch by frame batch into
:class:`LiveSession` give the same flow table as ``analyze`` on the file; unanswered attempts
are ``pending`` until --no-answer-timeout, then reported blocked while capturing; finished and
idle flows are evicted and a long flow keeps a bounded number of packets. Also the pcapng
writer and the live-view rendering."""
from __future__ import annotations

import io
import shutil
import subprocess
import struct
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, shared_corpus
from kscc_traffic.analyze import analyze_file
from kscc_traffic.capture.decode import decode
from kscc_traffic.capture.files import read_frames
from kscc_traffic.capture.frames import Frames
from kscc_traffic.live import session as S
from kscc_traffic.live.pcapng_writer import PcapngWriter
from kscc_traffic.live.session import LiveSession, Timeouts
from kscc_traffic.live.view import event_line, render
from kscc_traffic.report import write_jsonl
from kscc_traffic.rules import load_rules

RULES = load_rules()
SAMPLES = ROOT / "samples" / "captures"


def _replay(path: Path, session: LiveSession, step: int = 60, tick_each: bool = True) -> None:
    fr = read_frames(path)
    for s0 in range(0, len(fr), step):
        idx = np.arange(s0, min(s0 + step, len(fr)))
        sub = Frames(fr.buf, fr.ts_ns[idx], fr.linktype[idx], fr.offset[idx], fr.caplen[idx],
                     fr.wirelen[idx])
        p = decode(sub)
        p.cols["frame"] = idx[p.cols["frame"]]
        session.ingest(p)
        if tick_each:
            session.tick(int(fr.ts_ns[idx[-1]]))


def _assert_same(path: Path, live) -> None:
    """The live table has analyze's flows, value for value, and the same JSON Lines text (what
    ``live -f jsonl`` and ``analyze -f jsonl`` write: dtypes included, e.g. ``ts`` to 6 decimals)."""
    ref = analyze_file(path, RULES).flows.sort_values("uid").reset_index(drop=True)
    got = live.sort_values("uid").reset_index(drop=True)
    assert list(ref["uid"]) == list(got["uid"]), path.name
    for col in ref.columns:
        bad = [(u, x, y) for u, x, y in zip(ref["uid"], ref[col], got[col]) if x != y]
        assert not bad, (path.name, col, bad[:3])
    texts = []
    for table in (ref, got):
        buf = io.StringIO()
        write_jsonl(table, buf)
        texts.append(buf.getvalue())
    assert texts[0] == texts[1], path.name


def assert_live_same(path: Path, monkeypatch, step: int, head_packets: int = 2) -> None:
    """``path`` replayed into a live session (``step`` frames a batch, a tick after each, at
    most ``head_packets`` packets kept per flow, the rest summarised): the table of analyze."""
    monkeypatch.setattr(S, "HEAD_PACKETS", head_packets)
    s = LiveSession(RULES, name=path.name)
    _replay(path, s, step=step)
    _assert_same(path, s.final())


def _corpus_and_samples() -> list[Path]:
    files = [p for p in SAMPLES.glob("*.pcap*") if not p.name.endswith(".json")]
    try:
        files += [p for p in shared_corpus("ksc").iterdir() if p.suffix in (".pcap", ".pcapng")]
    except pytest.skip.Exception:
        pass
    return sorted(files)


@pytest.mark.parametrize("path", _corpus_and_samples(), ids=lambda p: p.name)
def test_replay_equals_analyze(path):
    """Batches of 60 frames, a tick after each (evictions included): same table as analyze."""
    s = LiveSession(RULES, name=path.name)
    _replay(path, s)
    _assert_same(path, s.final())


def test_replay_with_summarised_packets(monkeypatch):
    """Even when almost every packet is summarised into counters (head of 2 packets), the flow
    table is the same on real-stack captures."""
    monkeypatch.setattr(S, "HEAD_PACKETS", 2)
    path = SAMPLES / "baseline_agent.pcap"
    s = LiveSession(RULES, name=path.name)
    _replay(path, s)
    assert s.dropped_rows > 0
    _assert_same(path, s.final())


def test_pending_then_blocked_while_capturing():
    """A SYN without answer is pending for --no-answer-timeout seconds, then reported blocked
    (an event) before the capture ends; a reset is reported at once."""
    path = SAMPLES / "blocked_agent.pcap"
    fr = read_frames(path)
    events = []
    s = LiveSession(RULES, name=path.name, no_answer_timeout=3.0, on_event=events.append)
    # frames 12..15: the SYN to 27201 at t=1.05 and its retransmissions (1 s, 2 s, 4 s later)
    p = decode(fr)
    first_syn = int(fr.ts_ns[12])
    s.ingest(p.take(p.cols["frame"] <= 12))
    s.tick(first_syn + 500_000_000)
    snap = s.snapshot()
    row = snap[snap["ts_ns"] == first_syn].iloc[0]
    assert row["verdict"] == "pending" and row["reason"] == "no_answer"
    assert not [e for e in events if e["reason"] == "no_answer"]
    s.tick(first_syn + 3_100_000_000)
    noans = [e for e in events if e["reason"] == "no_answer"]
    assert len(noans) == 1 and noans[0]["verdict"] == "blocked" and noans[0]["resp_p"] == 27201
    assert "blocked no_answer tcp 192.0.2.10:" in event_line(noans[0])
    s.tick(first_syn + 3_500_000_000)
    assert len([e for e in events if e["reason"] == "no_answer"]) == 1   # announced once
    counts = s.counts()
    assert counts.get(("activation", "blocked"), 0) >= 1


def test_idle_and_closed_flows_are_evicted():
    """Closed TCP flows leave after `close` seconds, others after their idle timeout; the final
    table still has them all."""
    path = SAMPLES / "baseline_agent.pcap"
    s = LiveSession(RULES, name=path.name, timeouts=Timeouts(tcp=2, udp=2, icmp=2, close=0.5))
    _replay(path, s, step=20)
    s.tick(s.now_ns + 10 * 10**9)
    assert len(s.active) == 0 and s.evicted > 0
    # short timeouts may split a connection whose packets come later (as Zeek does); every
    # connection is still there
    key = ["proto", "orig_h", "orig_p", "resp_h", "resp_p"]
    ref = set(map(tuple, analyze_file(path, RULES).flows[key].values.tolist()))
    got = set(map(tuple, s.final()[key].values.tolist()))
    assert ref <= got


def _frame(seq: int, flags: int, payload: bytes, src_first: bool) -> bytes:
    """Ethernet + IPv4 + TCP (no checksums) between 192.0.2.10:40000 and 203.0.113.10:23101."""
    a, b = bytes([192, 0, 2, 10]), bytes([203, 0, 113, 10])
    sp, dp = (40000, 23101) if src_first else (23101, 40000)
    src, dst = (a, b) if src_first else (b, a)
    tcp = struct.pack("!HHIIBBHHH", sp, dp, seq, 0, 5 << 4, flags, 65535, 0, 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), seq & 0xFFFF or 1, 0, 64, 6, 0, src, dst)
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + tcp


def test_long_flow_memory_is_bounded():
    """10 000 data packets on one connection: the session keeps a bounded number of them and
    the counters still add up (orig_pkts, orig_bytes)."""
    frames = [_frame(1000, 0x02, b"", True), _frame(5000, 0x12, b"", False),
              _frame(1001, 0x10, b"", True)]
    n = 10_000
    frames += [_frame(1001 + 100 * i, 0x18, b"x" * 100, True) for i in range(n)]
    t0 = 1_700_000_000 * 10**9
    s = LiveSession(RULES, name="long")
    for k in range(0, len(frames), 1000):
        chunk = frames[k:k + 1000]
        cap = np.array([len(f) for f in chunk], np.int32)
        fr = Frames(b"".join(chunk), t0 + np.arange(k, k + len(chunk), dtype=np.int64) * 1000,
                    np.ones(len(chunk), np.int32), (np.cumsum(cap) - cap).astype(np.int64), cap, cap)
        p = decode(fr)
        p.cols["frame"] = p.cols["frame"] + k
        s.ingest(p)
        s.tick(t0 + (k + len(chunk)) * 1000)
    (fl,) = s.active.values()
    assert len(fl.recs) <= S.HEAD_PACKETS + S.MAX_FLAG_PACKETS + 2 * 24 + 12
    out = s.final()
    assert len(out) == 1
    row = out.iloc[0]
    assert row["orig_pkts"] == n + 2 and row["orig_bytes"] == 100 * n and row["resp_pkts"] == 1


def test_timeouts_parse():
    t = Timeouts.parse(["tcp=10", "close=1"])
    assert (t.tcp, t.udp, t.close) == (10, 60, 1)
    with pytest.raises(ValueError, match="unknown timeout"):
        Timeouts.parse(["sctp=3"])
    with pytest.raises(ValueError, match="more than 0"):
        Timeouts.parse(["udp=0"])


def test_render_live_view():
    from rich.console import Console
    ev = {"ts": 1.0, "uid": "C1", "proto": "tcp", "orig_h": "192.0.2.10", "orig_p": 1,
          "resp_h": "203.0.113.10", "resp_p": 27200, "purpose": "activation", "verdict": "blocked",
          "reason": "no_answer", "detail": "SYN sent 2 times", "server_name": "a\x1b[31m"}
    c = Console(width=200, record=True, color_system=None)
    c.print(render({"interface": "eth0", "engine": "scapy", "elapsed": 61, "packets": 10, "pps": 2.0,
                    "dropped": 0, "active": 1, "summarised": 3},
                   {("activation", "blocked"): 1, ("discovery", "pending"): 2}, [ev]))
    text = c.export_text()
    assert "01:01" in text and "0 dropped by the kernel" in text
    assert "activation" in text and "pending" in text and "no_answer" in text
    assert "\x1b[31m" not in text and "\\x1b" in text


# ------------------------------------------------------------------------------ pcapng writer
def test_pcapng_writer_roundtrip(tmp_path):
    """Frames written are read back identically (ns timestamps, link types, wire lengths), by us
    and by capinfos/tshark; the statistics block carries received/dropped."""
    src = read_frames(SAMPLES / "baseline_dp.pcapng")
    path = tmp_path / "w.pcapng"
    w = PcapngWriter(path, interface="eth0")
    for i in range(len(src)):
        w.write(int(src.ts_ns[i]), int(src.linktype[i]), src.data(i), int(src.wirelen[i]))
        if i == 5:
            w.flush()
            mid = read_frames(path)           # valid at any moment: whole blocks only
            assert len(mid) == 6 and not mid.stats.warnings
    w.close(ts_ns=int(src.ts_ns[-1]), received=len(src) + 3, dropped=3)
    back = read_frames(path)
    assert len(back) == len(src) == w.packets
    assert np.array_equal(back.ts_ns, src.ts_ns) and np.array_equal(back.wirelen, src.wirelen)
    assert all(back.data(i) == src.data(i) for i in range(len(src)))
    if shutil.which("capinfos"):
        r = subprocess.run(["capinfos", "-c", "-M", str(path)], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and f"Number of packets:   {len(src)}" in r.stdout
    if shutil.which("tshark"):
        r = subprocess.run(["tshark", "-r", str(path), "-q", "-z", "io,stat,0"], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0
        assert not [x for x in r.stderr.splitlines() if x and not x.startswith("Running as user")]


def _long_connection_pcap(path: Path, with_syn: bool) -> None:
    """A TCP connection of ~500 packets both ways: 200 client segments of 100 bytes each acked,
    300 bytes from the server every 10th round, a retransmission (round 50 sends round 40's
    segment again), two segments out of order (rounds 120/121), client segments of rounds 60-79
    not captured but acknowledged, FIN both ways. ``with_syn=False``: the capture starts after
    the handshake (a partial flow)."""
    from scapy.layers.inet import IP, TCP as T
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap
    c, s = ("192.0.2.10", 40000), ("203.0.113.10", 23101)
    pkts, t = [], 1_700_000_000.0

    def add(src, flags, seq, ack, data=b""):
        nonlocal t
        a, b = (c, s) if src == "c" else (s, c)
        p = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src=a[0], dst=b[0]) / T(sport=a[1], dport=b[1], flags=flags, seq=seq,
                                                  ack=ack) / data
        p.time = t
        t += 0.01
        pkts.append(p)

    cs, ss = 1001, 5001
    if with_syn:
        add("c", "S", 1000, 0)
        add("s", "SA", 5000, 1001)
        add("c", "A", cs, ss)
    sent = {}
    order = [i for i in range(200)]
    order[120], order[121] = 121, 120
    for i in order:
        seq = cs + 100 * i
        sent[i] = seq
        if not 60 <= i < 80:
            add("c", "PA", seq, ss, b"x" * 100)
        if i == 50:
            add("c", "PA", sent[40], ss, b"x" * 100)
        add("s", "A", ss, cs + 100 * (i + 1) if i != 120 else cs + 100 * 120)
        if i % 10 == 9:
            add("s", "PA", ss, cs + 100 * (i + 1), b"y" * 300)
            ss += 300
    end = cs + 100 * 200
    add("c", "FA", end, ss)
    add("s", "FA", ss, end + 1)
    add("c", "A", end + 1, ss + 1)
    wrpcap(str(path), pkts)


@pytest.mark.parametrize("head", [2, 64])
@pytest.mark.parametrize("with_syn", [True, False])
def test_long_connection_bytes_as_analyze(tmp_path, monkeypatch, head, with_syn):
    """A long connection whose packets are mostly summarised (retransmission, reordering, data
    acknowledged but not captured, FIN both ways): orig_bytes/resp_bytes from sequence numbers,
    packets and IP bytes are analyze's, not the sequence extent plus the summarised payloads
    again (they were counted twice)."""
    path = tmp_path / "long.pcap"
    _long_connection_pcap(path, with_syn)
    ref = analyze_file(path, RULES).flows
    assert len(ref) == 1
    # (the reference itself: 200 segments of 100 bytes, 20 of 300; rounds 60-79 acknowledged)
    assert (int(ref["orig_bytes"][0]), int(ref["resp_bytes"][0])) == (20_000, 6_000)
    assert_live_same(path, monkeypatch, step=7, head_packets=head)


def _scapy_pcap(path: Path, steps) -> None:
    """``steps``: (from_client, flags, seq, ack, payload) between 192.0.2.10:40001 and
    203.0.113.10:23101, 0.1 s apart."""
    from scapy.layers.inet import IP, TCP as T
    from scapy.layers.l2 import Ether
    from scapy.utils import wrpcap
    pkts = []
    for k, (up, flags, seq, ack, data) in enumerate(steps):
        a, b = (("192.0.2.10", 40001), ("203.0.113.10", 23101))[::1 if up else -1]
        p = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src=a[0], dst=b[0]) / T(
            sport=a[1], dport=b[1], flags=flags, seq=seq, ack=ack) / data
        p.time = 1_700_000_000 + 0.1 * k
        pkts.append(p)
    wrpcap(str(path), pkts)


def test_summarised_flow_keeps_what_classify_reads(tmp_path, monkeypatch):
    """A flow whose packets are mostly summarised is classified again with the columns the
    analysis read that the output has not (orig_resent: the originator sent bytes again), not
    without them: a capture started mid-connection, 40 segments of new data then the last one
    sent 20 times more over 2 s with nothing back is blocked/no_answer, as analyze says."""
    steps = [(True, "PA", 1000 + 100 * i, 5000, b"x" * 100) for i in range(40)]
    steps += [(True, "PA", 1000 + 100 * 39, 5000, b"x" * 100)] * 20
    path = tmp_path / "resent.pcap"
    _scapy_pcap(path, steps)
    ref = analyze_file(path, RULES).flows
    assert (ref["verdict"][0], ref["reason"][0]) == ("blocked", "no_answer,partial")
    assert_live_same(path, monkeypatch, step=5)


def test_event_lines_and_display_give_the_time_of_day_in_utc(monkeypatch):
    # the live lines used the local time unlabelled while the final report is UTC: now both
    # UTC, and said so (a time zone far from UTC shows the difference)
    import time as _time
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    _time.tzset()
    try:
        ev = {"ts": 1772442000.05, "verdict": "blocked", "reason": "no_answer", "proto": "tcp",
              "orig_h": "192.0.2.10", "orig_p": 40512, "resp_h": "203.0.113.10", "resp_p": 27200,
              "purpose": "activation", "server_name": "", "detail": ""}
        assert event_line(ev) == ("09:00:00 UTC blocked no_answer tcp 192.0.2.10:40512 -> "
                                  "203.0.113.10:27200 activation")
        from rich.console import Console
        buf = Console(file=io.StringIO(), width=200, color_system=None)
        buf.print(render({}, {}, [ev]))
        text = buf.file.getvalue()
        assert "time (UTC)" in text and "09:00:00" in text and "18:00:00" not in text
    finally:
        monkeypatch.undo()
        _time.tzset()
