"""Review of session 33 (what session 32 landed).

A ClientHello whose first segment is 1-4 bytes (its TLS record header itself split, as
DPI-evasion tools such as zapret or GoodbyeDPI split a ClientHello at its first bytes) was no
split at all for ``hello_split`` (it read the record's length from the first segment alone): when
the server acknowledged only those bytes and never the rest, sent again, the detail said
"ClientHello not answered: no byte from the server for 15.0 s", not that the rest never got
through. And a lost later segment no larger than the 536 bytes every path carries (RFC 9293's
default MSS) was named "an MTU/MSS problem" when it was larger than those delivered (88 bytes vs
1). Whole file, chunks and the live session alike."""
from __future__ import annotations

import pytest

from chunkcmp import RULES, assert_same, write
from test_synretry_s31 import CH, ISN_C, ISN_S, V4, _pkt, _replay_ticking

from kscc_traffic.inspect import MIN_MSS


def _split_hello(first: int, rest_segments: int = 1, acked: int | None = None) -> list:
    """A TLS ClientHello (``CH``, 89 bytes) in a first segment of ``first`` bytes and the rest in
    ``rest_segments`` segments; the server acknowledges only the first ``acked`` bytes (default:
    the first segment), sends nothing, the client sends the rest twice more, then resets 15 s on."""
    def up(t, f, s, a=0, d=b""):
        return _pkt(V4, t, True, f, s, a, d)

    def dn(t, f, s, a=0, d=b""):
        return _pkt(V4, t, False, f, s, a, d)
    c = ISN_C + 1
    acked = first if acked is None else acked
    recs = [up(1000.0, "S", ISN_C), dn(1000.01, "SA", ISN_S, c), up(1000.02, "A", c, ISN_S + 1),
            up(1000.03, "PA", c, ISN_S + 1, CH[:first]), dn(1000.04, "A", ISN_S + 1, c + acked)]
    rest = CH[first:]
    step = -(-len(rest) // rest_segments)
    for k in range(3):
        for i in range(0, len(rest), step):
            recs.append(up(1000.05 + k + i / 1e4, "PA", c + first + i, ISN_S + 1, rest[i:i + step]))
    recs.append(up(1015.0, "R", c + len(CH), 0))
    return recs


def _detail(first: int, acked: int, lost: int) -> str:
    return (f"ClientHello never wholly received: it was 89 bytes in {1 + (89 - first + lost - 1) // lost} segments, "
            f"of which the server acknowledged only the first {acked} byte{'s' if acked != 1 else ''}; the rest "
            f"({89 - acked} bytes), sent again, was never acknowledged: something on the path drops the later "
            f"segment: a firewall or proxy failing on a ClientHello split across segments (that segment, {lost} "
            f"bytes, is no larger than the {MIN_MSS} bytes every path carries: no MTU problem); then the "
            f"connection closed (RSTO)")


@pytest.mark.parametrize("first", [1, 2, 4, 5, 20])
def test_a_hello_whose_header_is_split_and_whose_rest_never_got_through(tmp_path, first):
    path = write(tmp_path, _split_hello(first))
    w = assert_same(path, [150, 300, 600])
    r = w.iloc[0]
    assert (r.conn_state, r.history, r.client_proto, r.verdict, r.reason) == \
        ("RSTO", "ShADaTR", "tls", "blocked", "tls_failed"), dict(r)    # (T: the rest sent again, session 61)
    assert r.detail == _detail(first, first, 89 - first), r.detail


def test_the_live_session_the_same(tmp_path):
    from kscc_traffic.live import session as live
    path = write(tmp_path, _split_hello(1))
    s = live.LiveSession(RULES, name=path.name)
    _replay_ticking(path, s)
    r = s.final().iloc[0]
    assert (r.verdict, r.reason, r.detail) == ("blocked", "tls_failed", _detail(1, 1, 88)), r.detail


def test_a_header_split_over_three_segments_is_read_from_them(tmp_path):
    """16 | 03 01 | the rest: the record's length is read across the first three segments."""
    def up(t, f, s, a=0, d=b""):
        return _pkt(V4, t, True, f, s, a, d)

    def dn(t, f, s, a=0, d=b""):
        return _pkt(V4, t, False, f, s, a, d)
    c = ISN_C + 1
    recs = [up(1000.0, "S", ISN_C), dn(1000.01, "SA", ISN_S, c), up(1000.02, "A", c, ISN_S + 1),
            up(1000.03, "PA", c, ISN_S + 1, CH[:1]), up(1000.031, "PA", c + 1, ISN_S + 1, CH[1:3]),
            dn(1000.04, "A", ISN_S + 1, c + 3)]
    for k in range(3):
        recs.append(up(1000.05 + k, "PA", c + 3, ISN_S + 1, CH[3:]))
    recs.append(up(1015.0, "R", c + len(CH), 0))
    w = assert_same(write(tmp_path, recs), [200, 400])
    assert w.iloc[0].detail == _detail(1, 3, 86).replace("in 2 segments", "in 3 segments"), w.iloc[0].detail


def test_a_stale_attempt_held_to_a_last_batch_of_no_packet(tmp_path, monkeypatch):
    """A stale connection's reset attempt with no retry, held by chunked._StaleRetries while
    the capture's clock stays in its window, then only ARP frames to the end: the last batch has
    no packet and releases it (chunked's empty-last-batch path): ``blocked``/``rejected`` as in
    the whole file, at every chunk size."""
    from scapy.layers.l2 import ARP, Ether

    import kscc_traffic.chunked as ch
    from kscc_traffic.classify import STALE_ANSWER
    from test_synretry_s31 import _capture
    arp = [(1012.0 + i / 100, bytes(Ether(src="02:00:00:00:00:10", dst="ff:ff:ff:ff:ff:ff")
                                     / ARP(psrc="192.0.2.10", pdst="192.0.2.1"))) for i in range(60)]
    path = write(tmp_path, _capture(retry=3.0)[:3] + arp)
    calls = []
    release = ch._StaleRetries.release

    def spy(self, flows, open_flows, clock, last):
        calls.append((len(flows), clock, last, sum(map(len, self.held))))
        return release(self, flows, open_flows, clock, last)
    monkeypatch.setattr(ch._StaleRetries, "release", spy)
    w = assert_same(path, [300, 600, 1000])
    assert len(w) == 1 and (w.iloc[0].conn_state, w.iloc[0].verdict, w.iloc[0].reason) == ("RSTOS0", "blocked", "rejected")
    assert w.iloc[0].detail.startswith(STALE_ANSWER)
    assert (0, None, True, 1) in calls      # (released by the last batch, which had no packet)


@pytest.mark.parametrize("compiled", [True, False])
def test_flow_order_on_a_hash_collision_is_the_exact_sort(monkeypatch, compiled):
    """Every key hashing alike (monkeypatched): _flow_order answers the collision with the
    exact lexsort by key then time, its key starts where the key changes (compiled key_order and
    the numpy steps alike)."""
    import numpy as np

    from kscc_traffic import flows
    monkeypatch.setattr(flows, "_key_hash", lambda cols, n: np.zeros(n, np.uint64))
    if not compiled:
        monkeypatch.setattr(flows, "_compiled_order", lambda cols, o: False)
    a = np.array([3, 1, 3, 2, 1, 3], np.int64)
    b = np.array([0, 5, 0, 0, 4, 1], np.int64)
    ts = np.array([50, 40, 10, 30, 20, 60], np.int64)
    o, start = flows._flow_order([a, b], ts, ())
    assert o.tolist() == [4, 1, 3, 2, 0, 5]         # (1,4) (1,5) (2,0) (3,0)@10 (3,0)@50 (3,1)
    assert start.tolist() == [True, True, True, True, False, True]


def test_stale_retries_takes_the_retry_another_batch_found():
    """classify.stale_retries: a reset attempt whose retry is not in the table takes the
    ``stale_retry`` column's (ts_ns, uid) (chunked: the retry left with another batch), and a
    retry in the table first; no column, no retry: None."""
    import numpy as np
    import pandas as pd

    from kscc_traffic.classify import STALE_ANSWER, STALE_RETRY, stale_retries
    row = dict(proto="tcp", ts_ns=10**12, duration=0.02, orig_h="192.0.2.10", orig_p=50001,
               resp_h="203.0.113.10", resp_p=443, conn_state="RSTOS0", history="SaR", syn_isn=7)
    flows_ = pd.DataFrame([dict(row, uid="Ca")])
    res = np.array([["agent", "blocked", "rejected", STALE_ANSWER + "only by an ACK"]], object)
    assert stale_retries(flows_, res) == [None]
    flows_[STALE_RETRY] = pd.Series([(10**12 + 3 * 10**9, "Cb")], dtype=object)
    assert stale_retries(flows_, res) == [(10**12 + 3 * 10**9, "Cb")]
    retry = dict(row, uid="Cc", ts_ns=10**12 + 2 * 10**9, conn_state="SF", history="ShADadFf")
    both = pd.concat([flows_, pd.DataFrame([dict(retry, **{STALE_RETRY: None})])], ignore_index=True)
    res2 = np.vstack([res, [["agent", "ok", "", ""]]]).astype(object)
    assert stale_retries(both, res2) == [(10**12 + 2 * 10**9, "Cc"), None]


def test_a_stale_attempts_retry_held_back_by_another_hold_is_remembered(tmp_path, monkeypatch):
    """chunked: the retry of a stale connection's reset attempt is looked for among every row
    leaving a batch, also those another hold keeps back (here a proxy's 407, held by _AuthRounds
    for its own retry): the attempt leaves with the 407 connection's (ts_ns, uid) in its
    ``stale_retry`` column, as the whole file pairs them (it was None: the 407 never passed
    through _StaleRetries.hold). (The attempt to a proxy port is ``unclassified``, its verdict
    the same either way with today's rules.)"""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    import kscc_traffic.chunked as ch
    from kscc_traffic.classify import STALE_RETRY
    from test_proxy_auth_retry import CHALLENGE
    from test_proxy_connect import CLIENT, PROXY, _connect, _records, _write

    def pkt(t, up, flags, seq, ack=0):
        src, dst = ((CLIENT, 50000), PROXY) if up else (PROXY, (CLIENT, 50000))
        macs = ("02:00:00:00:00:10", "02:00:00:00:00:01") if up else ("02:00:00:00:00:01", "02:00:00:00:00:10")
        return (t, Ether(src=macs[0], dst=macs[1]) / IP(src=src[0], dst=dst[0])
                / TCP(sport=src[1], dport=dst[1], flags=flags, seq=seq, ack=ack))
    # (_records' client ISN is 1000: the retry's SYN the attempt's)
    recs = [pkt(100.0, True, "S", 1000), pkt(100.02, False, "A", 777, 123456789), pkt(100.021, True, "R", 123456789)]
    recs += _records([_connect(), CHALLENGE], port=50000, t0=103.0, close="s")
    path = _write(tmp_path, recs)
    left = []
    release = ch._StaleRetries.release

    def spy(self, flows, open_flows, clock, last):
        out = release(self, flows, open_flows, clock, last)
        if STALE_RETRY in out.columns:
            left.extend(x for x in out[STALE_RETRY].tolist() if isinstance(x, tuple) or x is None)
        return out
    monkeypatch.setattr(ch._StaleRetries, "release", spy)
    w = assert_same(path, [300, 1000])
    retry = w[(w.proto == "tcp") & (w.http_status == "407")].iloc[0]
    # (one release of the attempt per chunked run: at least the whole-size, 300 and 1000 ones)
    assert len(left) >= 3 and set(left) == {(int(retry.ts_ns), retry.uid)}, left


def test_live_lines_judge_a_stale_attempt_alone_the_report_with_its_retry(tmp_path):
    """What docs/live.md says: the live session's line (its event) for a stale connection's reset
    attempt says ``blocked``/``rejected`` (judged alone, when it closed), its final table ``ok``
    (judged with the retry that connected 13 s later)."""
    from conftest import documentation

    from kscc_traffic.classify import STALE_ANSWER, STALE_CLEARED
    from kscc_traffic.live import session as live
    from test_synretry_s31 import _capture
    path = write(tmp_path, _capture(retry=13.0))
    s = live.LiveSession(RULES, name=path.name)
    _replay_ticking(path, s)
    first = [e for e in s.events if e["detail"].startswith(STALE_ANSWER)]
    assert [(e["verdict"], e["reason"]) for e in first] == [("blocked", "rejected")]
    f = s.final().sort_values("ts_ns").reset_index(drop=True)
    assert (f.iloc[0].verdict, f.iloc[0].uid) == ("ok", first[0]["uid"]) and f.iloc[0].detail.startswith(STALE_CLEARED)
    text = " ".join(documentation().split())
    assert "a SYN answered by a stale connection whose same-ISN retry connected" in text
