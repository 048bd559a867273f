"""Live analysis of long TCP connections (s41): a connection with more data segments than a live
session keeps of a flow (the first :data:`~kscc_traffic.streams.MAX_SEGMENTS` per direction, and
the first :data:`~kscc_traffic.live.session.HEAD_PACKETS` packets) whose last bytes are sent again
3+ times and never acknowledged is the stall the analysis of the file reports (``blocked`` /
``no_answer`` and the stall's detail), because the session hands what the packets it did not keep
stand for to the analysis (``analyze_batch(weights=...)``, as a chunked reading does), not after
it; a connection as long without a stall stays ``ok``. IPv4 and IPv6, sequence numbers wrapping
past 2^32 in the middle of the connection; whole file = chunked (small chunks, batches of 5
records) = live (default head, a head of 2 packets), every column."""
from __future__ import annotations

import pandas as pd
import pytest
from scapy.layers.inet import TCP

from chunkcmp import assert_same, chunked, whole, write
from pcapbuild import eth, ip_of
from test_live_session import _assert_same, _replay
from kscc_traffic import chunked as chunked_mod
from kscc_traffic.live import session as S
from kscc_traffic.live.session import LiveSession
from kscc_traffic.rules import load_rules

RULES = load_rules()
REC = b"\x17\x03\x03\x00\x3b" + bytes(59)      # a 64-byte TLS application-data record
M32 = 0xFFFFFFFF
#: an agent and the cloud Administration Server's port (kscc-ports §A: 23100-23199, TCP/TLS)
ADDRS = {4: (("192.0.2.10", 50000), ("203.0.113.20", 23101)),
         6: (("2001:db8::10", 50000), ("2001:db8:1::20", 23101))}
STALL = ("the connection stalled: the {silent} acknowledged none of the {sender}'s last bytes, sent again, "
         "in the {gap} s after their first sending (a firewall that dropped the connection: an idle session timed "
         "out, a path broken)")


def _conn(rounds: int, end: str, ver: int = 4, isn_c: int = 1000, isn_s: int = 5000) -> tuple[list, float | None]:
    """One agent connection's records ((ts, frame bytes)): a handshake, ``rounds`` rounds (the
    agent's record, the server's record acknowledging it, the agent's ACK: ``rounds`` data
    segments each way, all acknowledged), then ``end``:

    - ``stall``: a last record of the agent sent again 4 times (1, 2, 4, 8 s apart), never acknowledged;
    - ``resp_stall``: a last record of the server sent again 4 times, never acknowledged;
    - ``quiet``: a last record of the agent acknowledged, then 20 s later a bare ACK of the agent;
    - ``spurious``: the agent's record sent again once though the server had acknowledged it
      (an RTO fired too soon), then a round more, acknowledged: normal progress.

    Returns the records and, for a stall, the seconds its detail tells (from the first sending
    of the last record to its last sending)."""
    (ch, cp), (sh, sp) = ADDRS[ver]
    recs: list = []
    t = 1.0

    def up(data=b"", dt=.01, **kw):
        nonlocal t
        p = ip_of(ch, sh) / TCP(sport=cp, dport=sp, window=64240, **kw) / data
        if ver == 4:
            p.id = 100 + len(recs)
        recs.append((round(t, 6), bytes(eth(p))))
        t += dt

    def dn(data=b"", dt=.01, **kw):
        nonlocal t
        p = ip_of(sh, ch) / TCP(sport=sp, dport=cp, window=64240, **kw) / data
        if ver == 4:
            p.id = 100 + len(recs)
        recs.append((round(t, 6), bytes(eth(p, src="02:00:00:00:00:01", dst="02:00:00:00:00:10"))))
        t += dt

    c, s = (isn_c + 1) & M32, (isn_s + 1) & M32
    up(flags="S", seq=isn_c)
    dn(flags="SA", seq=isn_s, ack=c)
    up(flags="A", seq=c, ack=s)

    def round_():
        nonlocal c, s
        up(REC, flags="PA", seq=c, ack=s)
        c = (c + len(REC)) & M32
        dn(REC, flags="PA", seq=s, ack=c)
        s = (s + len(REC)) & M32
        up(flags="A", seq=c, ack=s)

    for _ in range(rounds):
        round_()
    gap = None
    if end in ("stall", "resp_stall"):
        t_first = t
        send = up if end == "stall" else dn
        seq, other = (c, s) if end == "stall" else (s, c)
        for k in range(5):        # (the first sending, then 4 more: 1, 2, 4, 8 s later)
            send(REC, flags="PA", seq=seq, ack=other, dt=2 ** k if k < 4 else .01)
        gap = t - .01 - t_first
    elif end == "quiet":
        round_()
        t += 20
        up(flags="A", seq=c, ack=s)
    elif end == "spurious":
        seq = c
        round_()
        up(REC, flags="PA", seq=seq, ack=s)       # (acknowledged already: spurious)
        round_()
    else:
        raise ValueError(end)
    return recs, gap


def _want(end: str, gap: float | None) -> tuple:
    if end == "stall":
        return "blocked", "no_answer", STALL.format(silent="responder", sender="originator", gap=f"{gap:.1f}")
    if end == "resp_stall":
        return "blocked", "no_answer", STALL.format(silent="originator", sender="responder", gap=f"{gap:.1f}")
    return "ok", "", ""


def _verdict(flows: pd.DataFrame) -> tuple:
    (r,) = flows.to_dict("records")
    return r["verdict"], r["reason"], r["detail"]


def _live(path, monkeypatch, step: int, head: int | None) -> tuple[LiveSession, pd.DataFrame]:
    """``path`` replayed into a live session, ``step`` frames a batch and a tick after each
    (``head``: the packets kept whole at a flow's start, None: the default); the session and its
    final table."""
    if head is not None:
        monkeypatch.setattr(S, "HEAD_PACKETS", head)
    s = LiveSession(RULES, name=path.name)
    _replay(path, s, step=step)
    return s, s.final()


#: (end, IP version, the agent's ISN, the server's ISN): 40 rounds each (40 data segments each
#: way, more than the 25 a live session keeps, and 120 packets, more than its head of 64)
CASES = [("stall", 4, 1000, 5000), ("stall", 6, 1000, 5000),
         # (both sides' sequence numbers wrapping past 2^32 in the middle of the rounds)
         ("stall", 4, M32 - 1000, M32 - 300), ("stall", 6, M32 - 2000, M32 - 10),
         ("resp_stall", 4, 1000, 5000), ("resp_stall", 6, M32 - 2000, M32 - 1000),
         ("quiet", 4, 1000, 5000), ("quiet", 6, M32 - 1000, M32 - 300),
         ("spurious", 4, 1000, 5000), ("spurious", 6, M32 - 1000, M32 - 300)]
IDS = [f"{e}-v{v}-{'wrap' if i > M32 // 2 else 'low'}" for e, v, i, _ in CASES]


@pytest.mark.parametrize("end, ver, isn_c, isn_s", CASES, ids=IDS)
def test_long_connection_whole_file_verdict(tmp_path, end, ver, isn_c, isn_s):
    """The reference: the analysis of the file (every packet) calls the stall a stall, and the
    connections without one ok, with every packet and byte counted."""
    recs, gap = _conn(40, end, ver, isn_c, isn_s)
    flows, a = whole(write(tmp_path, recs))
    assert a.duplicates == 0
    r = flows.iloc[0]
    assert r["orig_pkts"] + r["resp_pkts"] == len(recs)
    # (the bytes sent again: Zeek's T, or t for the responder's, session 61)
    history = {"stall": "ShADdT", "resp_stall": "ShADdt", "quiet": "ShADd", "spurious": "ShADdT"}[end]
    assert (r["resp_p"], r["purpose"], r["conn_state"], r["history"]) == (23101, "agent_connection", "S1", history)
    assert (":" in r["orig_h"]) == (ver == 6)
    # (the bytes by sequence numbers: 40 rounds and the last record, or two more rounds)
    n_c = {"stall": 41, "resp_stall": 40, "quiet": 41, "spurious": 42}[end]
    n_s = {"stall": 40, "resp_stall": 41, "quiet": 41, "spurious": 42}[end]
    assert (r["orig_bytes"], r["resp_bytes"]) == (64 * n_c, 64 * n_s)
    assert _verdict(flows) == _want(end, gap)


@pytest.mark.parametrize("end, ver, isn_c, isn_s", CASES, ids=IDS)
def test_long_connection_chunked_same(tmp_path, monkeypatch, end, ver, isn_c, isn_s):
    """In chunks of a few packets and in batches of 5 records: the table of the whole file."""
    recs, _ = _conn(40, end, ver, isn_c, isn_s)
    path = write(tmp_path, recs)
    flows = assert_same(path, [700, 2000, 6000])
    monkeypatch.setattr(chunked_mod, "BATCH_RECORDS", 5)
    monkeypatch.setattr(chunked_mod, "BATCH_PACKETS", 0)
    small, _ = chunked(path, path.stat().st_size * 4 + 4096)
    pd.testing.assert_frame_equal(small, flows)


@pytest.mark.parametrize("head", [None, 2], ids=["head-64", "head-2"])
@pytest.mark.parametrize("end, ver, isn_c, isn_s", CASES, ids=IDS)
def test_long_connection_live_same(tmp_path, monkeypatch, end, ver, isn_c, isn_s, head):
    """Live, 7 frames a batch with a tick after each, most packets summarised into counters:
    the verdict and detail of the whole file (the stall found though the packets sent again at
    the end are past the ones kept), and every other column too."""
    recs, gap = _conn(40, end, ver, isn_c, isn_s)
    path = write(tmp_path, recs)
    s, got = _live(path, monkeypatch, 7, head)
    assert s.dropped_rows > 0           # (packets summarised: the counters reach the analysis)
    assert _verdict(got) == _want(end, gap)
    _assert_same(path, got)


@pytest.mark.parametrize("ver, isn_c", [(4, 1000), (6, M32 - 1000)], ids=["v4-low", "v6-wrap"])
def test_live_reports_the_stall_while_capturing(tmp_path, ver, isn_c):
    """The stall is reported while the capture goes on (an event, the live verdict blocked), not
    only in the final table; the connection as long without a stall raises no event."""
    for end in ("stall", "quiet"):
        recs, gap = _conn(40, end, ver, isn_c, 5000)
        path = write(tmp_path, recs, name=f"{end}.pcap")
        events: list = []
        s = LiveSession(RULES, name=path.name, on_event=events.append)
        _replay(path, s, step=7)
        s.tick(s.now_ns + 4 * 10**9)      # (the capture went on: the silence after the last sending)
        snap = s.snapshot()
        assert len(snap) == 1
        if end == "stall":
            assert _verdict(snap) == _want(end, gap)
            # (announced once, at the first tick that saw it: its detail tells the seconds until
            # the last sending then, 1 + 2 s after the first one, the second resend)
            assert [(e["verdict"], e["reason"], e["detail"], int(e["resp_p"])) for e in events] == \
                [("blocked", "no_answer", STALL.format(silent="responder", sender="originator", gap="3.0"), 23101)]
        else:
            assert _verdict(snap) == ("ok", "", "") and not events


def test_live_long_connection_keeps_few_packets(tmp_path, monkeypatch):
    """Memory stays bounded: of a stalled connection of 400 rounds (1,208 packets) the session
    keeps about the head and the segments the streams read (77), yet finds the stall."""
    recs, gap = _conn(400, "stall")
    path = write(tmp_path, recs)
    kept = []
    orig = LiveSession._analyze

    def spy(self, flows):
        kept.append(max((len(f.recs) + len(f.floating()) for f in flows if f.recs), default=0))
        return orig(self, flows)

    monkeypatch.setattr(LiveSession, "_analyze", spy)
    s, got = _live(path, monkeypatch, 50, None)
    assert _verdict(got) == _want("stall", gap)
    assert got.iloc[0]["orig_pkts"] + got.iloc[0]["resp_pkts"] == len(recs)
    assert max(kept) < 120, max(kept)
    _assert_same(path, got)
