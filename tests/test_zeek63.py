"""Session 63 (zeek63): Zeek conn_state/history leftovers, checked against Zeek's source (zeek/zeek
src/packet_analysis/protocol/tcp/TCPSessionAdapter.cc ``update_history`` and the ``Update*State``
functions, TCP.cc ``WantConnection``, scripts/base/protocols/conn/main.zeek ``conn_state()``).

Each capture is read whole and in chunks (``tests/chunkcmp.py``), and replayed into a live session."""
from __future__ import annotations

import pytest

pytest.importorskip("scapy")

from chunkcmp import assert_same, write  # noqa: E402
from test_live_session import assert_live_same  # noqa: E402
from test_zeek_audit_s62 import A, B, _tcp  # noqa: E402

#: name -> (steps, orig_p, conn_state, history, verdict, reason, words the detail holds)
CASES = {
    # 1. a SYN answered only by a bare ACK acknowledging it (no SYN-ACK, no reset): Zeek ``Sa`` S0
    # (the responder's pure ACK leaves it INACTIVE while the originator is SYN_SENT); was ok with
    # no detail
    "ack_only": ([("c", "S", A), ("s", "A", B, A + 1)],
                 50000, "S0", "Sa", "blocked", "rejected", "bare ACKs acknowledging it, never by a SYN-ACK"),
    "ack_only_retried": ([("c", "S", A), ("s", "A", B, A + 1), ("wait", 1), ("c", "S", A), ("s", "A", B, A + 1),
                          ("wait", 2), ("c", "S", A), ("s", "A", B, A + 1)],
                         50000, "S0", "Sa", "blocked", "rejected", "challenge ACK"),
    # ... the client giving up after it with a RST (Zeek RSTOS0: /^?S[^HAFGIQ]*R.*/, the a being
    # lower case) or a FIN then a RST (OTH: the F breaks that pattern, Zeek's own baseline SaFR)
    "ack_only_then_rst": ([("c", "S", A), ("s", "A", B, A + 1), ("c", "R", A + 1)],
                          50000, "RSTOS0", "SaR", "blocked", "rejected", "never by a SYN-ACK"),
    "ack_only_then_fin_rst": ([("c", "S", A), ("s", "A", B, A + 1), ("c", "FA", A + 1, B), ("c", "R", A + 2)],
                              50000, "OTH", "SaFR", "blocked", "rejected", "never by a SYN-ACK"),
    # 2. a lone packet with SYN, ACK, FIN and RST from the client's port: no SYN-ACK (Zeek writes
    # I for any FIN+RST; WantConnection keeps its sender the originator, 50000 being no likely
    # server port; SYN_ACK_SENT, CLOSED, RESET with the responder inactive: OTH); was taken as the
    # server's SYN-ACK (^i RSTRH, originator 23101)
    "safr_from_client": ([("c", "SAFR", A, B + 1)],
                         50000, "OTH", "I", "unclassified", "partial", "capture started mid-connection"),
    # ... answered by the server's RST: both RESET, no bytes: REJ (was ^iR REJ, originator 23101)
    "safr_from_client_reset": ([("c", "SAFR", A, B + 1), ("s", "R", B + 1)],
                               50000, "REJ", "Ir", "unclassified", "partial", "only resets"),
    # a SYN, then the client's own SYN+FIN+RST, nothing back: Zeek OTH (the I keeps it from
    # RSTOS0); an attempt without an answer, as SR is (was ok with no detail)
    "syn_then_own_xmas": ([("c", "S", A), ("c", "SAFR", A, B + 1)],
                          50000, "OTH", "SI", "blocked", "no_answer", "connection attempt without an answer (2 packets"),
    # a SYN answered by SYN+ACK+FIN+RST: Zeek RSTR (its SYN makes the originator ESTABLISHED, then
    # the responder CLOSED, RESET); a reset, no SYN-ACK (was ok with no detail)
    "syn_answered_xmas": ([("c", "S", A), ("s", "SAFR", B, A + 1)],
                          50000, "RSTR", "Si", "blocked", "rejected", "the SYN was answered by a TCP reset"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_zeek63_cases(tmp_path, name):
    steps, orig_p, state, history, verdict, reason, said = CASES[name]
    w = assert_same(write(tmp_path, _tcp(steps), f"{name}.pcap"), (150,))
    assert len(w) == 1
    r = w.iloc[0]
    assert (int(r.orig_p), r.conn_state, r.history, r.verdict, r.reason) == (orig_p, state, history, verdict, reason)
    assert said in r.detail, r.detail


@pytest.mark.parametrize("name", sorted(CASES))
def test_zeek63_live_same(tmp_path, monkeypatch, name):
    path = write(tmp_path, _tcp(CASES[name][0]), f"{name}.pcap")
    assert_live_same(path, monkeypatch, step=1)


def test_ack_only_why_flagged():
    """The HTML report's *Why flagged* for such a flow names the bare ACK, not a TCP reset."""
    from kscc_traffic.classify import ACK_ONLY_ANSWER
    from kscc_traffic.report import REJECTED_TEXT, rejected_kind
    assert rejected_kind(ACK_ONLY_ANSWER) == "ack_only"
    assert "bare ACK" in REJECTED_TEXT["ack_only"]


#: 3. a connection silent for 600 s, then going on (no SYN): the idle timeout (300 s) splits it;
#: the second flow's detail says it goes on with the connection (classify.idle_note) in every path
IDLE = [("c", "S", A), ("s", "SA", B, A + 1), ("c", "A", A + 1, B + 1), ("c", "PA", A + 1, B + 1, b"x" * 10),
        ("s", "A", B + 1, A + 11), ("wait", 600), ("c", "PA", A + 11, B + 1, b"z" * 10), ("s", "A", B + 1, A + 21),
        ("c", "FA", A + 21, B + 1), ("s", "FA", B + 1, A + 22), ("c", "A", A + 22, B + 2)]


@pytest.mark.parametrize("step", [1, 2, 100])
def test_live_idle_note(tmp_path, monkeypatch, step):
    """Before: the live table's second flow lacked the note (*capture started mid-connection*
    instead), the file's analysis and the chunked reading wrote it. ``step`` frames a batch (a
    tick after each: the first part leaves by the tick's idle expiry or by the next packet)."""
    from kscc_traffic.classify import IDLE_GOES_ON
    path = write(tmp_path, _tcp(IDLE), "idle.pcap")
    w = assert_same(path, (150, 400))
    assert len(w) == 2 and w.iloc[1].detail.startswith(f"{IDLE_GOES_ON} 600.1 s without a packet"), w.iloc[1].detail
    assert_live_same(path, monkeypatch, step=step)


def test_live_idle_note_not_after_a_closed_connection(tmp_path, monkeypatch):
    """A stray ACK 600 s after a connection closed by FINs both ways is no connection going on:
    no note, live as in the file."""
    from kscc_traffic.classify import IDLE_GOES_ON
    steps = [("c", "S", A), ("s", "SA", B, A + 1), ("c", "A", A + 1, B + 1), ("c", "FA", A + 1, B + 1),
             ("s", "FA", B + 1, A + 2), ("c", "A", A + 2, B + 2), ("wait", 600), ("c", "A", A + 2, B + 2)]
    path = write(tmp_path, _tcp(steps), "closed.pcap")
    w = assert_same(path, (150,))
    assert len(w) == 2 and IDLE_GOES_ON not in w.iloc[1].detail
    assert_live_same(path, monkeypatch, step=1)


def test_live_idle_note_after_expiry(tmp_path, monkeypatch):
    """The first part leaves by the tick's idle expiry (the capture's clock 301 s past its last
    packet, nothing captured meanwhile), not by the packet after the silence: still said."""
    import numpy as np
    from kscc_traffic.capture.decode import decode
    from kscc_traffic.capture.files import read_frames
    from kscc_traffic.capture.frames import Frames
    from kscc_traffic.live import session as S
    from test_live_session import RULES, _assert_same
    monkeypatch.setattr(S, "HEAD_PACKETS", 2)
    path = write(tmp_path, _tcp(IDLE), "idle.pcap")
    fr = read_frames(path)
    s = S.LiveSession(RULES, name=path.name)
    for part in (np.arange(0, 5), np.arange(5, len(fr))):
        sub = Frames(fr.buf, fr.ts_ns[part], fr.linktype[part], fr.offset[part], fr.caplen[part], fr.wirelen[part])
        p = decode(sub)
        p.cols["frame"] = part[p.cols["frame"]]
        s.ingest(p)
        s.tick(int(fr.ts_ns[part[-1]]) + (301 * 10**9 if part[0] == 0 else 0))
        if part[0] == 0:
            assert not s.active            # (expired by the tick)
    _assert_same(path, s.final())


def test_rej_after_own_reset_and_data(tmp_path, monkeypatch):
    """4. The client's RST to the SYN-ACK, a byte it sent after that RST, the server's RST: Zeek's
    sizes leave that byte out (``update_last_seq`` trusts no sequence number of a side after its
    own RST), both 0, so ``conn_state()`` gives REJ (was RSTR here). The SYN was answered by a
    SYN-ACK: the flow is judged on what the client sent, not as a SYN answered by a reset."""
    steps = [("c", "S", A), ("s", "SA", B, A + 1), ("c", "R", A + 1), ("c", "PA", A + 1, B + 1, b"x"), ("s", "R", B + 1)]
    path = write(tmp_path, _tcp(steps), "rej.pcap")
    w = assert_same(path, (150,))
    r = w.iloc[0]
    assert (len(w), r.conn_state, r.history, int(r.orig_bytes), int(r.resp_bytes)) == (1, "REJ", "ShRDr", 0, 0)
    assert (r.verdict, r.reason) == ("unexpected", "not_tls") and "answered by a TCP reset" not in r.detail
    assert_live_same(path, monkeypatch, step=1)


def test_rej_with_and_without_synack_judged_apart(tmp_path):
    """Flows judged once per group of alike rows (classify._verdict_keys): a REJ whose SYN a
    SYN-ACK answered and a SYN refused by a reset are never one group."""
    rej = [("c", "S", A), ("s", "SA", B, A + 1), ("c", "R", A + 1), ("c", "PA", A + 1, B + 1, b"x"), ("s", "R", B + 1)]
    refused = [("c", "S", A + 50), ("s", "RA", 0, A + 51)]
    recs = _tcp(rej, sport=50000) + _tcp(refused, sport=50001, t0=1001.0) + _tcp(refused, sport=50002, t0=1002.0) \
        + _tcp(rej, sport=50003, t0=1003.0)
    w = assert_same(write(tmp_path, recs, "both.pcap"), (150,))
    got = sorted((int(r.orig_p), r.conn_state, r.history, r.reason) for r in w.itertuples())
    assert got == [(50000, "REJ", "ShRDr", "not_tls"), (50001, "REJ", "Sr", "rejected"),
                   (50002, "REJ", "Sr", "rejected"), (50003, "REJ", "ShRDr", "not_tls")]


@pytest.mark.parametrize("gap, said", [(100, False), (600, True)])
def test_live_idle_note_with_a_shorter_idle_timeout(tmp_path, gap, said):
    """A session run with ``--idle-timeout tcp=60`` splits a connection silent for 100 s, which a
    file's analysis does not: no note there (the note names the 300 s timeout); after 600 s it
    says it, as the file's analysis does."""
    import numpy as np
    from kscc_traffic.capture.decode import decode
    from kscc_traffic.capture.files import read_frames
    from kscc_traffic.capture.frames import Frames
    from kscc_traffic.classify import IDLE_GOES_ON
    from kscc_traffic.live import session as S
    from test_live_session import RULES
    steps = [("wait", gap) if s == ("wait", 600) else s for s in IDLE]
    path = write(tmp_path, _tcp(steps), "idle.pcap")
    fr = read_frames(path)
    s = S.LiveSession(RULES, name=path.name, timeouts=S.Timeouts.parse(["tcp=60"]))
    for k in range(len(fr)):
        idx = np.arange(k, k + 1)
        p = decode(Frames(fr.buf, fr.ts_ns[idx], fr.linktype[idx], fr.offset[idx], fr.caplen[idx], fr.wirelen[idx]))
        p.cols["frame"] = idx[p.cols["frame"]]
        s.ingest(p)
        s.tick(int(fr.ts_ns[k]))
    t = s.final().sort_values("ts").reset_index(drop=True)
    assert len(t) == 2
    assert t.iloc[1].detail.startswith(IDLE_GOES_ON) == said, t.iloc[1].detail
