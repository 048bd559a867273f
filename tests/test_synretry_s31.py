"""A SYN answered by a stale connection's bare ACK (an RFC 5961 challenge ACK), the client's RST,
then the same SYN (same port, same ISN) again within the close delay, accepted by a SYN-ACK
(newcomer of session 31: corpus synretx-unanswered_443-80_mixed.pcap, client port 57558;
tls-san_many-flows_ocsp.pcap, ports 59621, 59819, 60045, 60064).

The retry stayed in the reset flow (``RSTO``, history ``SaRhAD``, the server's bytes 0, "TLS
handshake aborted: the client reset the connection") and, when the server paused longer than
the close delay, its rest became a ``partial`` flow of its own (``^dAfDFr``): with a rule whose
host mask matched, ``blocked``/``tls_failed`` for a handshake that worked. A same-ISN SYN after
a RST that is accepted starts a new flow, whoever sent the RST, as Zeek (``IsReuse``: any SYN
after a close) and as the README says: a short reset flow, then the connection as it went.
Whole file, chunks, the live session and the tshark engine alike."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from scapy.layers.inet import TCP

from chunkcmp import RULES, assert_same, write
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth, ip_of
from test_breakit16_findings import FINISHED13
from test_tls_batch import SV13, client_hello, ext, rec, server_hello, sni_ext

NAME = "eu1.ksc.kaspersky.com"
CH = rec(22, client_hello([sni_ext([(0, NAME.encode())]), ext(43, b"\x02\x03\x04")]), 0x0301)
SH = rec(22, server_hello([SV13])) + rec(20, b"\x01") + rec(23, bytes(700))
ISN_C, ISN_S, FOREIGN = 700000, 900000, 123456789
V4 = (("192.0.2.10", 50001), ("203.0.113.10", 443))
V6 = (("2001:db8::10", 50001), ("2001:db8:1::10", 443))


def _pkt(hosts, t, up, flags, seq, ack=0, data=b""):
    (c, cp), (s, sp) = hosts
    src, dst, sport, dport = (c, s, cp, sp) if up else (s, c, sp, cp)
    macs = {} if up else {"src": SERVER_MAC, "dst": CLIENT_MAC}
    return t, bytes(eth(ip_of(src, dst) / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack) / data,
                        **macs))


def _capture(hosts=V4, retry=3.0, synack="ok", stale="ack", pause=8.0, server_rst=False, rounds=1, again=0):
    """SYN (ISN_C); a stale answer (``stale`` 'ack': a bare ACK of another number, 'synack': a
    SYN-ACK acknowledging another number); the client's RST; the same SYN ``retry`` s later.
    ``synack``: 'ok' answered, 'lost' not captured (the client's ACK follows), 'resent' lost on
    the path (the client sends its SYN once more 1 s later, that one is answered). Then a TLS
    1.3 handshake whose server flight comes ``pause`` s after the ClientHello, and FINs both
    ways. ``server_rst``: the server resets the retry instead (nothing after). ``rounds``: SYNs
    answered so and reset before the retry, 1 s apart; ``again``: the stale answer and its reset
    that many times more in each round."""
    def up(t, f, s, a=0, d=b""):
        return _pkt(hosts, t, True, f, s, a, d)

    def dn(t, f, s, a=0, d=b""):
        return _pkt(hosts, t, False, f, s, a, d)

    t, recs = 1000.0, []
    for k in range(rounds):
        recs.append(up(t + k, "S", ISN_C))
        recs.append(dn(t + k + .02, "A", 555000, FOREIGN) if stale == "ack" else
                    dn(t + k + .02, "SA", 555000, FOREIGN))
        recs.append(up(t + k + .021, "R", FOREIGN))
        for j in range(again):
            recs += [dn(t + k + .1 + j / 10, "A", 555000, FOREIGN), up(t + k + .101 + j / 10, "R", FOREIGN)]
    t += rounds - 1 + retry
    recs.append(up(t, "S", ISN_C))
    if server_rst:
        recs.append(dn(t + .02, "RA", 0, ISN_C + 1))
        return recs
    if synack == "resent":
        t += 1.0
        recs.append(up(t, "S", ISN_C))
    if synack != "lost":
        recs.append(dn(t + .02, "SA", ISN_S, ISN_C + 1))
    c, s = ISN_C + 1, ISN_S + 1
    recs += [up(t + .021, "A", c, s), up(t + .022, "PA", c, s, CH)]
    c += len(CH)
    recs.append(dn(t + .045, "A", s, c))
    t += .045 + pause
    recs += [dn(t, "PA", s, c, SH), up(t + .001, "A", c, s + len(SH))]
    s += len(SH)
    recs += [up(t + .01, "PA", c, s, FINISHED13), dn(t + .03, "A", s, c + len(FINISHED13))]
    c += len(FINISHED13)
    recs += [up(t + .04, "FA", c, s), dn(t + .06, "FA", s, c + 1), up(t + .061, "A", c + 1, s + 1)]
    return recs


#: the reset attempt: SYN, the stale ACK, the client's RST (``ok`` since session 32: its retry
#: connected, a stale connection cleared; tests/test_stale_retry_s32.py)
RESET = {"conn_state": "RSTOS0", "history": "SaR", "orig_pkts": 2, "resp_pkts": 1, "orig_bytes": 0,
         "resp_bytes": 0, "verdict": "ok", "reason": ""}
#: the accepted retry, read whole
ACCEPTED = {"conn_state": "SF", "orig_bytes": len(CH) + len(FINISHED13), "resp_bytes": len(SH),
            "tls_established": True, "sni": NAME, "verdict": "ok", "reason": ""}
COLS = sorted(set(RESET) | set(ACCEPTED) | {"history", "orig_pkts", "resp_pkts"})

CASES = {
    # (capture arguments, history of the accepted flow, its packets orig/resp)
    "v4-3s": ({}, "ShADadFf", 7, 5),
    "v6-3s": ({"hosts": V6}, "ShADadFf", 7, 5),
    "v4-3s-no-pause": ({"pause": 0.5}, "ShADadFf", 7, 5),
    "synack-not-captured": ({"synack": "lost"}, "SADadFf", 7, 4),
    "synack-lost-syn-resent": ({"synack": "resent"}, "ShADadFf", 8, 5),
    "stale-synack-then-accepted": ({"stale": "synack"}, "ShADadFf", 7, 5),
    "retry-after-6s": ({"retry": 6.0}, "ShADadFf", 7, 5),
    "three-stale-rounds": ({"rounds": 3}, "ShADadFf", 7, 5),
    "stale-ack-answered-4-times": ({"again": 3}, "ShADadFf", 7, 5),
}


def _rows(flows):
    return [{k: (r[k].item() if hasattr(r[k], "item") else r[k]) for k in COLS} for _, r in flows.iterrows()]


def _want(case: str) -> list[dict]:
    """The two rows of ``case`` (columns COLS), in time order: the reset attempt (no TLS, no
    SNI: its ClientHello is the retry's) and the accepted retry."""
    kw, hist, opk, rpk = CASES[case]
    first = dict(RESET, sni="", tls_established=False)
    if kw.get("stale") == "synack":
        first.update(conn_state="RSTO", history="ShR")
    if kw.get("rounds"):
        first.update(orig_pkts=2 * kw["rounds"], resp_pkts=kw["rounds"])
    if kw.get("again"):
        first.update(orig_pkts=2 + kw["again"], resp_pkts=1 + kw["again"])
    return [first, {**ACCEPTED, "history": hist, "orig_pkts": opk, "resp_pkts": rpk}]


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_accepted_same_isn_retry_after_a_reset_is_a_flow_of_its_own(tmp_path, case):
    kw = CASES[case][0]
    path = write(tmp_path, _capture(**kw))
    w = assert_same(path, [150, 300, 600, 1200])
    assert _rows(w) == _want(case)
    assert w.iloc[0]["detail"].startswith("stale connection cleared: the client reset the old connection's answer "
                                          "to its SYN and the SYN sent again at ")
    assert w.iloc[0]["detail"].endswith(f"on {w.iloc[1]['uid']}) connected")
    # (the server's flight ``pause`` s after the ClientHello, 0.023 s after it otherwise: 5 s or
    # more is said in the ok flow's detail since session 61, newcomer #5)
    from kscc_traffic.classify import SLOW_HELLO_S, slow_hello_text
    wait = 0.023 + kw.get("pause", 8.0)
    assert w.iloc[1]["detail"] == (slow_hello_text(wait) if wait >= SLOW_HELLO_S else "")


def test_a_retry_the_server_resets_stays_with_the_attempt(tmp_path):
    """Not accepted: one flow, the attempt and its retry (as Wireshark; Zeek would make two)."""
    w = assert_same(write(tmp_path, _capture(server_rst=True)), [150, 300])
    assert [(r.conn_state, r.history, r.orig_pkts, r.resp_pkts, r.verdict, r.reason) for r in w.itertuples()] == [
        ("REJ", "SaRr", 3, 2, "blocked", "rejected")]


def test_stale_answers_retried_stay_one_flow(tmp_path):
    """Retries answered by stale SYN-ACKs (another number) and reset each time, never accepted:
    one flow (break-it 16 F2), also when the SYN-ACK of the last one is the right one's number
    for another ISN."""
    recs = []
    for k in range(3):
        t = 1000.0 + k
        recs += [_pkt(V4, t, True, "S", ISN_C), _pkt(V4, t + .01, False, "SA", 555000, FOREIGN),
                 _pkt(V4, t + .02, True, "R", FOREIGN)]
    w = assert_same(write(tmp_path, recs), [150, 300])
    assert [(r.conn_state, r.history, r.orig_pkts, r.verdict) for r in w.itertuples()] == [("RSTO", "ShR", 6, "blocked")]


def _replay_ticking(path, session):
    """Each frame ingested alone, and the session's clock ticked as ``kscc-traffic live`` does,
    once a second of capture time, also while no packet comes (a server's pause)."""
    import numpy as np
    from kscc_traffic.capture.decode import decode
    from kscc_traffic.capture.files import read_frames
    from kscc_traffic.capture.frames import Frames
    fr = read_frames(path)
    clock = int(fr.ts_ns[0])
    for i in range(len(fr)):
        t = int(fr.ts_ns[i])
        while clock + 10**9 < t:
            clock += 10**9
            session.tick(clock)
        idx = np.arange(i, i + 1)
        p = decode(Frames(fr.buf, fr.ts_ns[idx], fr.linktype[idx], fr.offset[idx], fr.caplen[idx], fr.wirelen[idx]))
        p.cols["frame"] = idx[p.cols["frame"]]
        session.ingest(p)
        session.tick(t)
        clock = t


@pytest.mark.parametrize("case", ["v4-3s", "v6-3s", "synack-not-captured", "synack-lost-syn-resent",
                                  "stale-synack-then-accepted", "three-stale-rounds",
                                  "stale-ack-answered-4-times"])
def test_live_session_splits_the_same(tmp_path, monkeypatch, case):
    """The live session (ticked each second of capture time): the reset attempt ended by the
    accepted retry is no closed connection any more: it was evicted 5 s after its last packet
    during the server's pause, whose flight then became a flow of its own."""
    from kscc_traffic.live import session as live
    from test_live_session import _assert_same, _replay
    path = write(tmp_path, _capture(**CASES[case][0]), f"{case}.pcap")
    for head in (2, 8):
        monkeypatch.setattr(live, "HEAD_PACKETS", head)
        s = live.LiveSession(RULES, name=path.name)
        _replay_ticking(path, s)
        got = s.final()
        _assert_same(path, got)
        assert _rows(got.sort_values("ts_ns")) == _want(case)
        s = live.LiveSession(RULES, name=path.name)
        _replay(path, s, step=3)
        _assert_same(path, s.final())


@pytest.mark.parametrize("case", ["v4-3s", "v6-3s", "synack-lost-syn-resent"])
def test_tshark_engine_splits_the_same(tmp_path, case):
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    from kscc_traffic.analyze import analyze_file
    path = write(tmp_path, _capture(**CASES[case][0]))
    t = analyze_file(path, RULES, engine="tshark").flows.sort_values("ts_ns").reset_index(drop=True)
    assert _rows(t) == _want(case)


CORPUS = Path(os.environ.get("KSCC_CORPUS", Path(__file__).resolve().parents[1].parent / "shared" / "corpus"))


#: per corpus capture, client port -> (conn_state, history) of its flows in time order
CORPUS_RETRIES = {
    "synretx-unanswered_443-80_mixed.pcap": {57558: [("RSTOS0", "SaR"), ("SF", "ShADadfFr")]},
    "tls-san_many-flows_ocsp.pcap": {
        59621: [("RSTOS0", "SaR"), ("SF", "ShADadFf")],
        59622: [("RSTOS0", "SaR"), ("SF", "ShADadFf")],     # (retried after 13 s: right before)
        59691: [("RSTOS0", "SaR"), ("S1", "ShADad")],
        59819: [("RSTOS0", "SaR"), ("RSTO", "ShADadtR")],   # (t: segments out of order, Zeek's T)
        59949: [("RSTOS0", "SaR"), ("SF", "ShADadFf")],
        60036: [("RSTOS0", "SaR"), ("S1", "ShADad")],
        60045: [("RSTOS0", "SaR"), ("S3", "ShAf")],
        60064: [("RSTOS0", "SaR"), ("S3", "ShADadf")],
        60093: [("RSTOS0", "SaR"), ("RSTO", "ShADadtR")],   # (t: segments out of order, Zeek's T)
    },
}


@pytest.mark.parametrize("name", sorted(CORPUS_RETRIES))
def test_corpus_retries(name):
    path = CORPUS / "public" / name
    if not path.exists():
        pytest.skip("the shared corpus is not there (../shared beside the checkout, or KSCC_SHARED=/path/to/shared)")
    from kscc_traffic.analyze import analyze_file
    f = analyze_file(path, RULES).flows
    f = f[f.proto == "tcp"].sort_values("ts_ns")
    got = {p: list(zip(g.conn_state, g.history)) for p, g in f[f.orig_p.isin(list(CORPUS_RETRIES[name]))].groupby("orig_p")}
    assert got == CORPUS_RETRIES[name]
    assert not f[f.orig_p.isin(list(CORPUS_RETRIES[name]))].reason.str.contains("partial").any()
    if name.startswith("synretx"):
        r = f[f.orig_p == 57558].iloc[1]
        assert (r.tls_established, r.orig_bytes, r.resp_bytes, r.sni) == (True, 673, 4339, "ssl.gstatic.com")
