"""A SYN answered by a TCP reset (Zeek's REJ) that a connection of the same client to the same
server address and port followed within :data:`~kscc_traffic.classify.REFUSED_RETRY_S` is a
passing refusal (session 33): the refused attempt was real (a server restarting, a load
balancer briefly without a backend) but the service worked right after, so it is not "KSC
blocked": ``ok``, reason '', its detail ``refused at <time> UTC, the retry <s> s later
connected (on <uid>): …`` keeping which device sent the reset (as a stale connection's reset
attempt whose retry connected: tests/test_stale_retry_s32.py). Attempts refused again and again
with no connection after them stay ``blocked``/``rejected``; so does one whose only later
connection came too late, or went to another port or server. Whole file, chunks (the retry in a
later batch), the live session and the command line's exit status alike."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from checklistcheck import checklists
from chunkcmp import assert_same, write
from test_synretry_s31 import CH, FINISHED13, SH, _pkt

from kscc_traffic.classify import REFUSED_CLEARED, REFUSED_RETRY_S, REJ_DETAIL

ROOT = Path(__file__).resolve().parents[1]
C, S = "192.0.2.10", "203.0.113.10"


def _capture(retry=3.0, port=23100, refused=1, retry_refused=False, retry_port=None, retry_server=S):
    """``refused`` SYNs from ports 50001… to ``S``:``port``, 1 s apart, each answered by a RST;
    then, ``retry`` s after the last, a connection from port 50100 to ``retry_server``:
    ``retry_port`` (default ``port``): refused too (``retry_refused``) or a TLS 1.3 handshake
    and FINs both ways."""
    recs, t = [], 1000.0
    for k in range(refused):
        hosts = ((C, 50001 + k), (S, port))
        recs += [_pkt(hosts, t + k, True, "S", 1000), _pkt(hosts, t + k + .02, False, "RA", 0, 1001)]
    t += refused - 1 + retry
    hosts = ((C, 50100), (retry_server, retry_port or port))
    recs.append(_pkt(hosts, t, True, "S", 5000))
    if retry_refused:
        return recs + [_pkt(hosts, t + .02, False, "RA", 0, 5001)]
    c, s = 5001, 9001
    recs += [_pkt(hosts, t + .02, False, "SA", 9000, 5001), _pkt(hosts, t + .021, True, "A", c, s),
             _pkt(hosts, t + .022, True, "PA", c, s, CH)]
    c += len(CH)
    recs += [_pkt(hosts, t + .05, False, "PA", s, c, SH), _pkt(hosts, t + .051, True, "A", c, s + len(SH))]
    s += len(SH)
    recs.append(_pkt(hosts, t + .06, True, "PA", c, s, FINISHED13))
    c += len(FINISHED13)
    return recs + [_pkt(hosts, t + .07, True, "FA", c, s), _pkt(hosts, t + .08, False, "FA", s, c + 1),
                   _pkt(hosts, t + .081, True, "A", c + 1, s + 1)]


def _detail(start: float, later: float, uid: str) -> str:
    """The detail of an attempt refused at 00:16:<start> whose retry came ``later`` s after it."""
    return (f"{REFUSED_CLEARED}00:16:{start:06.3f} UTC, the retry {later:.1f} s later connected (on {uid}): "
            f"{REJ_DETAIL}, a later connection from this client to the same address and port was accepted (its TCP "
            "handshake completed: the service restarting, a load balancer briefly without a backend?); the reset "
            "came with the server's own TTL (64, as its packets on other connections)")


@pytest.mark.parametrize("retry", [3.0, 13.0, 25.0])
def test_a_refused_attempt_whose_retry_connected_is_ok(tmp_path, retry):
    """3 s: in the same batch; 13 and 25 s: past the close delay, the refused flow leaves its
    batch before the retry is read (held until it is), at every chunk size."""
    path = write(tmp_path, _capture(retry=retry))
    w = assert_same(path, list(range(100, 1600, 150)))
    a, b = w.iloc[0], w.iloc[1]
    assert (a.conn_state, a.history, a.purpose, a.verdict, a.reason) == ("REJ", "Sr", "agent_connection", "ok", "")
    assert (b.conn_state, b.verdict, b.tls_established) == ("SF", "ok", True)
    assert a.detail == _detail(40.0, retry, b.uid), a.detail
    for table in checklists(w):
        row = table.loc["agent_connection"]
        assert (row["status"], row["ok"], row["blocked"]) == ("verified", 2, 0), dict(row)


def test_several_refusals_then_a_connection(tmp_path):
    """Three attempts refused 1 s apart, the fourth connected 3 s after the last: each refused one
    names that connection, counted from its own SYN."""
    path = write(tmp_path, _capture(refused=3))
    w = assert_same(path, [150, 400, 900])
    uid = w.iloc[3].uid
    assert [(r.conn_state, r.verdict, r.reason) for r in w.itertuples()] == [("REJ", "ok", "")] * 3 + [("SF", "ok", "")]
    assert [r.detail for r in w.itertuples()][:3] == [_detail(40.0, 5.0, uid), _detail(41.0, 4.0, uid),
                                                      _detail(42.0, 3.0, uid)]


@pytest.mark.parametrize("kw", [{"retry_refused": True}, {"retry_refused": True, "refused": 4},
                                {"retry": REFUSED_RETRY_S + 5}, {"retry_port": 23101},
                                {"retry_server": "203.0.113.11"}],
                         ids=["retry-refused", "all-five-refused", "too-late", "other-port", "other-server"])
def test_refusals_not_followed_by_a_connection_stay_blocked(tmp_path, kw):
    path = write(tmp_path, _capture(**kw))
    w = assert_same(path, [150, 400])
    refused = w[w.conn_state == "REJ"]
    assert len(refused) == kw.get("refused", 1) + bool(kw.get("retry_refused"))
    assert set(refused.verdict) == {"blocked"} and set(refused.reason) == {"rejected"}
    assert all(d.startswith(REJ_DETAIL) for d in refused.detail), list(refused.detail)


def test_live_session_the_same(tmp_path):
    """The live session's final table (each flow classified apart, then the table)."""
    from kscc_traffic.live import session as live
    from chunkcmp import RULES
    from test_synretry_s31 import _replay_ticking
    for retry in (3.0, 13.0):
        path = write(tmp_path, _capture(retry=retry), f"r{retry:g}.pcap")
        s = live.LiveSession(RULES, name=path.name)
        _replay_ticking(path, s)
        f = s.final().sort_values("ts_ns").reset_index(drop=True)
        assert (f.iloc[0].verdict, f.iloc[0].reason) == ("ok", "")
        assert f.iloc[0].detail == _detail(40.0, retry, f.iloc[1].uid)


def test_command_line_exit_status(tmp_path):
    """Nothing blocked when the retry connected: exit 0 (``-j 2`` too); refused again: exit 1."""
    good = write(tmp_path, _capture(retry=13.0), "good.pcap")
    bad = write(tmp_path, _capture(retry_refused=True, refused=2), "bad.pcap")

    def run(*args):
        return subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", *map(str, args), "--format", "jsonl"],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
    p = run(good, "-j", "2")
    assert p.returncode == 0, p.stderr[-500:]
    assert sum('"conn_state":"REJ"' in ln and '"verdict":"ok"' in ln and REFUSED_CLEARED in ln
               for ln in p.stdout.splitlines()) == 1, p.stdout
    p = run(good, bad)
    assert p.returncode == 1, p.stderr[-500:]


def test_tshark_engine_the_same(tmp_path):
    import shutil
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    from kscc_traffic.analyze import analyze_file
    from chunkcmp import RULES
    for retry in (3.0, 13.0):
        path = write(tmp_path, _capture(retry=retry), f"r{retry:g}.pcap")
        t = analyze_file(path, RULES, engine="tshark").flows.sort_values("ts_ns").reset_index(drop=True)
        assert (t.iloc[0].conn_state, t.iloc[0].verdict) == ("REJ", "ok")
        assert t.iloc[0].detail == _detail(40.0, retry, t.iloc[1].uid)


def test_split_file_set_the_same(tmp_path):
    """The refused attempt in one file of a ring buffer, the connection in the next: the rows of
    the whole capture (the detail naming the connection by its uid in the set)."""
    from kscc_traffic.analyze import analyze_files
    from chunkcmp import RULES
    from pcapbuild import pcap_bytes
    recs = _capture(retry=13.0)
    a, b = tmp_path / "ring_00001_20260302090000.pcap", tmp_path / "ring_00002_20260302090010.pcap"
    a.write_bytes(pcap_bytes(recs[:2]))
    b.write_bytes(pcap_bytes(recs[2:]))
    f = analyze_files([a, b], RULES).flows.sort_values("ts_ns").reset_index(drop=True)
    assert list(f.conn_state) == ["REJ", "SF"]
    assert (f.iloc[0].verdict, f.iloc[0].reason) == ("ok", "")
    assert f.iloc[0].detail == _detail(40.0, 13.0, f.iloc[1].uid)
