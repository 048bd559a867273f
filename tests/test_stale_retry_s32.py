"""A SYN answered by a stale connection (an RFC 5961 challenge ACK, a SYN-ACK for another number),
reset by the client, then sent again with the same ISN and accepted, is a stale connection
cleared, not a failure (session 32; the split into two flows of session 31 made the short reset
flow ``blocked``/``rejected``: the checklist said "1 of 2 flows ok, 1 blocked", the client red and
``analyze`` exited 1 although the same connect() worked a moment later).

The reset flow keeps its Zeek-like ``conn_state``/``history`` (``RSTOS0``, ``SaR``) and becomes
``ok``, reason '', its detail naming the retry (as a proxy's 407 answered by an accepted retry);
a ``host_mismatch`` keeps its verdict and says so instead of "the connection itself failed".
A retry that failed, came from another ISN or port, or came later than
:data:`~kscc_traffic.classify.STALE_RETRY_S`, leaves the reset flow as it was. Whole file,
chunks (the retry in a later batch), the tshark engine, the live session and the command line
(``-j 2``, exit status) alike."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from checklistcheck import checklists
from chunkcmp import RULES, assert_same, chunked, write
from test_synretry_s31 import ISN_C, ISN_S, V4, _capture, _pkt

from kscc_traffic.classify import STALE_ANSWER, STALE_CLEARED, STALE_RETRY_S

ROOT = Path(__file__).resolve().parents[1]


def _cleared(w, retry_s: float):
    """The reset flow (row 0) is ``ok``, its detail naming the accepted retry (row 1)."""
    a, b = w.iloc[0], w.iloc[1]
    assert (a.conn_state, a.history, a.verdict, a.reason) == ("RSTOS0", "SaR", "ok", ""), dict(a)
    assert (b.verdict, b.reason, b.tls_established) == ("ok", "", True), dict(b)
    assert a.detail == (f"{STALE_CLEARED}: the client reset the old connection's answer to its SYN and the SYN "
                        f"sent again at 00:16:{40 + retry_s:06.3f} UTC ({retry_s:.1f} s later, on {b.uid}) connected"), \
        a.detail


@pytest.mark.parametrize("retry", [3.0, 13.0])
def test_a_reset_attempt_whose_retry_connected_is_ok(tmp_path, retry):
    """Whole and in chunks; 13 s: after the close delay, the reset flow leaves its batch before
    the retry is read (held until it is)."""
    path = write(tmp_path, _capture(retry=retry))
    w = assert_same(path, [150, 300, 600, 1200])
    assert len(w) == 2
    _cleared(w, retry)
    for table in checklists(w):
        row = table.loc[w.iloc[1].purpose]
        assert (row["status"], row["blocked"], row["ok"]) == ("verified", 0, 2), dict(row)


def test_the_retry_in_a_later_batch_matches_whole_file_at_every_chunk_size(tmp_path, monkeypatch):
    """The retry 13 s after the attempt, a long TLS pause: every chunk size from 100 bytes gives
    the whole file's rows. The attempt does leave a batch before the retry's: not held back, it
    leaves alone and stays blocked."""
    path = write(tmp_path, _capture(retry=13.0, pause=8.0))
    w = assert_same(path, list(range(100, 1700, 100)))
    _cleared(w, 13.0)
    from kscc_traffic import chunked as ch
    monkeypatch.setattr(ch._StaleRetries, "hold", lambda self, flows, seen=None: flows)
    parts = list(ch.ChunkedAnalysis(path, RULES, path.name, chunk_bytes=300).batches())
    assert [len(p) for p in parts] == [1, 1]
    assert (parts[0].iloc[0].conn_state, parts[0].iloc[0].verdict) == ("RSTOS0", "blocked")


@pytest.mark.parametrize("kw", [{"retry": 8.0, "server_rst": True}, {"retry": STALE_RETRY_S + 5}],
                         ids=["retry-refused", "retry-too-late"])
def test_a_retry_refused_or_too_late_leaves_the_attempt_blocked(tmp_path, kw):
    path = write(tmp_path, _capture(**kw))
    w = assert_same(path, [150, 300, 600])
    assert len(w) == 2
    a = w.iloc[0]
    assert (a.conn_state, a.history, a.verdict, a.reason) == ("RSTOS0", "SaR", "blocked", "rejected"), dict(a)
    assert a.detail.startswith(STALE_ANSWER), a.detail
    if kw.get("server_rst"):
        assert (w.iloc[1].conn_state, w.iloc[1].verdict) == ("REJ", "blocked")


def _other_retry(isn: int, port: int) -> list:
    """The stale answer and its reset on port 50001 (ISN_C), then a SYN (``isn``) from ``port``
    3 s later, accepted, and closed (FINs both ways)."""
    (c, _), s = V4
    hosts = ((c, port), s)
    recs = [_pkt(V4, 1000.0, True, "S", ISN_C), _pkt(V4, 1000.02, False, "A", 555000, 123456789),
            _pkt(V4, 1000.021, True, "R", 123456789)]
    t = 1003.0
    recs += [_pkt(hosts, t, True, "S", isn), _pkt(hosts, t + .02, False, "SA", ISN_S, isn + 1),
             _pkt(hosts, t + .03, True, "A", isn + 1, ISN_S + 1), _pkt(hosts, t + .04, True, "FA", isn + 1, ISN_S + 1),
             _pkt(hosts, t + .05, False, "FA", ISN_S + 1, isn + 2), _pkt(hosts, t + .06, True, "A", isn + 2, ISN_S + 2)]
    return recs


@pytest.mark.parametrize("isn,port", [(ISN_C + 5000, 50001), (ISN_C, 50002)], ids=["other-isn", "other-port"])
def test_a_connection_with_another_isn_or_port_is_no_retry(tmp_path, isn, port):
    path = write(tmp_path, _other_retry(isn, port))
    w = assert_same(path, [150, 300])
    assert [(r.conn_state, r.history, r.verdict, r.reason) for r in w.itertuples()] == [
        ("RSTOS0", "SaR", "blocked", "rejected"), ("SF", "ShAFf", "ok", "")]
    assert w.iloc[0].detail.startswith(STALE_ANSWER)


def test_tshark_engine_the_same(tmp_path):
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    from kscc_traffic.analyze import analyze_file
    for retry in (3.0, 13.0):
        path = write(tmp_path, _capture(retry=retry), f"r{retry:g}.pcap")
        t = analyze_file(path, RULES, engine="tshark").flows.sort_values("ts_ns").reset_index(drop=True)
        _cleared(t, retry)


def test_live_session_the_same(tmp_path):
    """The live session's final table (each flow classified apart, then the table)."""
    from kscc_traffic.live import session as live
    from test_synretry_s31 import _replay_ticking
    for retry in (3.0, 13.0):
        path = write(tmp_path, _capture(retry=retry), f"r{retry:g}.pcap")
        s = live.LiveSession(RULES, name=path.name)
        _replay_ticking(path, s)
        _cleared(s.final().sort_values("ts_ns").reset_index(drop=True), retry)


def test_command_line_exit_status_and_jobs(tmp_path):
    """``analyze -j 2`` over two captures whose retries connected exits 0 (nothing blocked); with
    a capture whose retry was refused, 1."""
    good = [write(tmp_path, _capture(retry=r), f"good{r:g}.pcap") for r in (3.0, 13.0)]
    bad = write(tmp_path, _capture(retry=8.0, server_rst=True), "bad.pcap")

    def run(*args):
        return subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", *map(str, args), "--format", "jsonl"],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
    p = run(*good, "-j", "2")
    assert p.returncode == 0, p.stderr[-500:]
    lines = [ln for ln in p.stdout.splitlines() if '"conn_state":"RSTOS0"' in ln]
    assert len(lines) == 2 and all('"verdict":"ok"' in ln and STALE_CLEARED in ln for ln in lines), lines
    # (exit 1 for a blocked flow only with KSC agent traffic in the captures: the good one's SNI)
    p = run(good[0], bad, "-j", "2")
    assert p.returncode == 1, p.stderr[-500:]
    assert '"conn_state":"REJ"' in p.stdout


@pytest.mark.parametrize("isn,port", [(ISN_C + 5000, 50001), (ISN_C, 50002)], ids=["other-isn", "other-port"])
def test_live_session_a_connection_with_another_isn_or_port_is_no_retry(tmp_path, isn, port):
    """The live session pairs the reset attempt with its retry by the SYN's ISN too (its table
    keeps the internal ``syn_isn``; without it a new connect() reusing the port within
    STALE_RETRY_S, another ISN, cleared the attempt live but not in the file's analysis: review
    of session 33); what it returns has the output's columns only."""
    from kscc_traffic.analyze import COLUMNS
    from kscc_traffic.live import session as live
    from test_synretry_s31 import _replay_ticking
    path = write(tmp_path, _other_retry(isn, port))
    s = live.LiveSession(RULES, name=path.name)
    _replay_ticking(path, s)
    snap = s.snapshot()
    got = s.final().sort_values("ts_ns").reset_index(drop=True)
    assert list(got.columns) == list(COLUMNS) and list(snap.columns) == list(COLUMNS)
    assert [(r.conn_state, r.history, r.verdict, r.reason) for r in got.itertuples()] == [
        ("RSTOS0", "SaR", "blocked", "rejected"), ("SF", "ShAFf", "ok", "")]
    assert got.iloc[0].detail.startswith(STALE_ANSWER), got.iloc[0].detail
