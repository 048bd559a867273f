"""Session 61: Zeek's ``T`` (retransmission) and ``W`` (zero window) history letters. Expected
strings reasoned from Zeek's source (zeek/zeek, src/packet_analysis/protocol/tcp/TCPSessionAdapter.cc
and src/analyzer/protocol/tcp/TCP_Endpoint.cc):

- ``Process`` runs ``update_history`` (the packet's own letter), then ``update_window`` (``W``:
  a window of 0, not on a RST, the peer not CLOSED, the side not RESET), then ``update_last_seq``
  (``T``: ``delta_last <= 0 && len > 0``, the packet's sequence end against the side's
  ``LastSeq``; a RST's payload is not in its sequence length, so a RST carrying payload at the
  side's current number is one; ``init_endpoint`` sets ``LastSeq`` to a SYN's end, so a TCP Fast
  Open SYN's data is one; a side RESET is not).
- ``DidRxmit``/``ZeroWindow`` write through ``ScaledHistoryEntry``: at the 1st, 10th, 100th …
  event per direction, upper case for the originator.

Each case: the whole-file analysis, the chunked one (``--chunk-mib``: tests/chunkcmp.py), the
numpy steps without the compiled ``_tcpstate``, the tshark engine and a live session replay
agree. Copies of a packet (the same IP id) are duplicates the analysis drops, so every packet
here has its own IP id, as a real retransmission has."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

pytest.importorskip("scapy")

from scapy.layers.inet import IP, TCP  # noqa: E402

from chunkcmp import assert_same, write  # noqa: E402
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth  # noqa: E402
from test_live_session import assert_live_same  # noqa: E402

from kscc_traffic import flows as F  # noqa: E402
from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.rules import load_rules  # noqa: E402

C, S = ("192.0.2.10", 50000), ("203.0.113.10", 23101)
RULES = load_rules()
WRAP = 2 ** 32 - 10          # an ISN 10 before the sequence numbers wrap


def _records(steps, t0=1000.0, gap=0.01):
    """(ts, frame) per step ``(side 'c'/'s', flags, seq[, ack[, data[, window]]])``, each with its
    own IP id (not a copy), window 8192 unless given; a step ``("wait", s)`` adds ``s`` seconds
    before the next packet."""
    out = []
    for k, st in enumerate(steps):
        if st[0] == "wait":
            t0 += st[1]
            continue
        side, flags, seq = st[:3]
        ack = st[3] if len(st) > 3 else 0
        data = st[4] if len(st) > 4 else b""
        win = st[5] if len(st) > 5 else 8192
        (sh, sp), (dh, dp) = (C, S) if side == "c" else (S, C)
        p = IP(src=sh, dst=dh, id=k + 1) / TCP(sport=sp, dport=dp, flags=flags, seq=seq, ack=ack, window=win)
        src, dst = (CLIENT_MAC, SERVER_MAC) if side == "c" else (SERVER_MAC, CLIENT_MAC)
        out.append((t0 + k * gap, eth(p / data if data else p, src=src, dst=dst)))
    return out


HS = [("c", "S", 1000), ("s", "SA", 5000, 1001), ("c", "A", 1001, 5001)]
HELLO = ("c", "PA", 1001, 5001, b"hello")
_BULK = []       # 300 segments of 100 bytes, every third one's predecessor sent again, the
for _k in range(300):   # server's ACK every fourth, its window 0 on every other one of those
    _BULK.append(("c", "PA", 1001 + 100 * _k, 5001, b"x" * 100))
    if _k % 3 == 2:
        _BULK.append(("c", "PA", 1001 + 100 * (_k - 1), 5001, b"x" * 100))
    if _k % 4 == 0:
        _BULK.append(("s", "A", 5001, 1101 + 100 * _k, b"", 0 if _k % 8 == 0 else 500))

#: name -> (packets, history)
CASES = {
    # the ClientHello-like 5 bytes sent twice before the ACK: T after D; then the server's data
    # and both FINs
    "data_retransmission": (HS + [HELLO, HELLO, ("s", "A", 5001, 1006), ("s", "PA", 5001, 1006, b"hi"),
                                  ("c", "A", 1006, 5003), ("s", "FA", 5003, 1006), ("c", "FA", 1006, 5004),
                                  ("s", "A", 5004, 1007)], "ShADTadfF"),
    # sent again until the end of the capture (never acknowledged): one T for 4 events
    "retransmitted_until_the_end": (HS + [HELLO] * 5, "ShADT"),
    # 10 retransmissions: T at the 1st and the 10th
    "ten_retransmissions": (HS + [HELLO] * 11, "ShADTT"),
    # ... 9: only the 1st
    "nine_retransmissions": (HS + [HELLO] * 10, "ShADT"),
    # a keep-alive probe: the byte before the side's next (seq - 1, 1 byte): its end is LastSeq
    "keep_alive_probe": (HS + [HELLO, ("s", "A", 5001, 1006), ("c", "A", 1005, 5001, b"\0"),
                               ("s", "A", 5001, 1006)], "ShADaT"),
    # the responder's data sent again: t
    "responder_retransmission": (HS + [HELLO, ("s", "PA", 5001, 1006, b"hi"), ("s", "PA", 5001, 1006, b"hi"),
                                       ("c", "A", 1006, 5003)], "ShADdt"),
    # the server's window 0 (w), the client's probe (T), the window 0 again (2nd event: no
    # letter), open; the server's data, the client's window 0 (W)
    "zero_window": (HS + [HELLO, ("s", "A", 5001, 1006, b"", 0), ("c", "A", 1005, 5001, b"\0"),
                          ("s", "A", 5001, 1006, b"", 0), ("s", "A", 5001, 1006, b"", 100),
                          ("s", "PA", 5001, 1006, b"hi"), ("c", "A", 1006, 5003, b"", 0)], "ShADawTdW"),
    # a RST with window 0: no W
    "rst_window_zero": (HS + [HELLO, ("s", "RA", 5001, 1006, b"", 0)], "ShADr"),
    # the peer (client) sent its FIN: it is CLOSED, a window 0 then is no W
    "zero_window_after_peer_fin": (HS + [HELLO, ("c", "FA", 1006, 5001), ("s", "A", 5001, 1007, b"", 0)],
                                   "ShADFa"),
    # a RST carrying payload at the side's current number: its payload is not in the sequence
    # space, so its end does not pass LastSeq: r, then t
    "rst_with_payload": (HS + [HELLO, ("s", "A", 5001, 1006), ("s", "RA", 5001, 1006, b"bye!")], "ShADart"),
    # data across the 2**32 wrap, then the segment that crossed it sent again: one T only
    "sequence_wrap": ([("c", "S", WRAP), ("s", "SA", 5000, WRAP + 1), ("c", "A", WRAP + 1, 5001),
                       ("c", "PA", WRAP + 1, 5001, b"a" * 8), ("c", "PA", WRAP + 9, 5001, b"b" * 8),
                       ("c", "PA", 7, 5001, b"c" * 8), ("s", "A", 5001, 15),
                       ("c", "PA", WRAP + 9, 5001, b"b" * 8), ("c", "PA", 15, 5001, b"d" * 8),
                       ("s", "A", 5001, 23)], "ShADaT"),
    # ... no retransmission across the wrap: no T
    "sequence_wrap_no_retransmission": ([("c", "S", WRAP), ("s", "SA", 5000, WRAP + 1), ("c", "A", WRAP + 1, 5001),
                                         ("c", "PA", WRAP + 1, 5001, b"a" * 8),
                                         ("c", "PA", WRAP + 9, 5001, b"b" * 8),
                                         ("c", "PA", 7, 5001, b"c" * 8), ("s", "A", 5001, 15)], "ShADa"),
    # a TCP Fast Open SYN with data: init_endpoint puts LastSeq at its end first: S, then T
    "tfo_syn": ([("c", "S", 1000, 0, b"hi"), ("s", "SA", 5000, 1003), ("c", "A", 1003, 5001)], "SThA"),
    # 30 segments (past the payload segments a live session keeps), the last one sent again 3
    # times, 160 s (more than half the TCP idle timeout: a live session then keeps the packet
    # before, the 3rd retransmission, which it had counted on the 1st), 6 more, the server's ACK,
    # 3 more: the 10th retransmission after the ACK
    "retransmissions_across_a_pause": (HS + [("c", "PA", 1001 + 100 * k, 5001, b"x" * 100) for k in range(30)]
                                       + [("c", "PA", 3901, 5001, b"x" * 100)] * 3 + [("wait", 160)]
                                       + [("c", "PA", 3901, 5001, b"x" * 100)] * 6 + [("s", "A", 5001, 4001)]
                                       + [("c", "PA", 3901, 5001, b"x" * 100)] * 3, "ShADTaT"),
    # 100 retransmissions and 38 windows of 0 in a bulk transfer: T at the 1st, 10th, 100th,
    # w at the 1st and 10th, each where its event came (what a chunked reading summarises)
    "bulk": (HS + _BULK + [("c", "FA", 31001, 5001), ("s", "FA", 5001, 31002), ("c", "A", 31002, 5002)],
             "ShADawTTwTFf"),
}


def _path(tmp_path, name):
    return write(tmp_path, _records(CASES[name][0]), name=name + ".pcap")


@pytest.mark.parametrize("name", sorted(CASES))
def test_history_whole_and_chunked(tmp_path, name):
    path = _path(tmp_path, name)
    f = analyze_file(path, RULES).flows
    assert list(f.history) == [CASES[name][1]]
    # (no packet taken for a copy)
    assert list(f.orig_pkts + f.resp_pkts) == [sum(st[0] != "wait" for st in CASES[name][0])]
    w = assert_same(path, (200, 400, 1000))
    assert list(w.history) == [CASES[name][1]]


@pytest.mark.parametrize("name", sorted(CASES))
def test_history_numpy_fallback(tmp_path, monkeypatch, name):
    path = _path(tmp_path, name)
    monkeypatch.setattr(F, "_tcpstate", None)
    assert list(analyze_file(path, RULES).flows.history) == [CASES[name][1]]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark (Wireshark) not installed")
@pytest.mark.parametrize("name", sorted(CASES))
def test_history_tshark_engine(tmp_path, name):
    f = analyze_file(_path(tmp_path, name), RULES, engine="tshark").flows
    assert list(f.history) == [CASES[name][1]]


@pytest.mark.parametrize("name", sorted(CASES))
def test_history_live(tmp_path, monkeypatch, name):
    path = _path(tmp_path, name)
    for step in (1, 3):
        assert_live_same(path, monkeypatch, step=step)


def test_bulk_chunked_summarises_events(tmp_path):
    """The bulk transfer read in small chunks: the events not carried are counted on the ones
    carried (the letters still at the 10th and 100th), and the carried packets stay few."""
    from chunkcmp import chunked
    path = _path(tmp_path, "bulk")
    flows, run = chunked(path, 2000)
    assert list(flows.history) == [CASES["bulk"][1]]
    assert run.max_carried < 200 < len(CASES["bulk"][0])


def test_scaled_events_with_carried_counts():
    """``scaled_events``: a row standing for events after it writes its letter when its own
    event's count is a power of 10."""
    fd = np.zeros(5, np.int64)
    ev = np.array([True, True, False, True, True])
    assert F.scaled_events(fd, ev).tolist() == [True, False, False, False, False]
    # the 2nd row stands for 7 more (2..9), so the 4th row is the 10th
    extra = np.array([0, 7, 0, 0, 0], np.int64)
    assert F.scaled_events(fd, ev, extra).tolist() == [True, False, False, True, False]
    # another direction counts on its own
    fd2 = np.array([0, 1, 1, 0, 1], np.int64)
    assert F.scaled_events(fd2, np.ones(5, bool)).tolist() == [True, True, False, False, False]


def test_history_readers_ignore_scaled_letters():
    """Rules that compare a whole history read it without T/W (``history_core``), and
    ``history_plain`` drops them."""
    assert F.history_core("ShADTadTfFW") == "ShADadfF"
    assert F.history_plain("SThwI") == "ShFR"
    assert F.history_core("SW") == "S"


def _random_steps(seed: int) -> list:
    """A connection of random data, retransmissions (of the last segments), windows of 0,
    keep-alive probes and pauses each way, maybe closed with FINs."""
    import random
    rnd = random.Random(seed)
    steps = list(HS)
    cn, sn = 1001, 5001
    sent_c, sent_s = [], []
    for _ in range(rnd.randint(60, 160)):
        r = rnd.random()
        if r < 0.35:
            steps.append(("c", "PA", cn, sn, b"x" * 50))
            sent_c.append(cn)
            cn += 50
        elif r < 0.5 and sent_c:
            steps.append(("c", "PA", rnd.choice(sent_c[-5:]), sn, b"x" * 50))
        elif r < 0.6:
            steps.append(("s", "PA", sn, cn, b"y" * 30))
            sent_s.append(sn)
            sn += 30
        elif r < 0.68 and sent_s:
            steps.append(("s", "PA", rnd.choice(sent_s[-3:]), cn, b"y" * 30))
        elif r < 0.78:
            steps.append(("s", "A", sn, cn, b"", rnd.choice([0, 0, 100])))
        elif r < 0.84:
            steps.append(("c", "A", cn, sn, b"", rnd.choice([0, 200])))
        elif r < 0.88:
            steps.append(("c", "A", cn - 1, sn, b"\0"))
        elif r < 0.90:
            steps.append(("wait", rnd.choice([1, 160])))
        else:
            steps.append(("s", "A", sn, cn))
    if rnd.random() < 0.5:
        steps += [("c", "FA", cn, sn), ("s", "A", sn, cn + 1, b"", rnd.choice([0, 10])), ("s", "FA", sn, cn + 1),
                  ("c", "A", cn + 1, sn + 1)]
    return steps


@pytest.mark.parametrize("seed", [5, 6, 10, 26])
def test_random_connections_chunked_and_live_agree(tmp_path, monkeypatch, seed):
    """Random connections (letters at the 10th events among the others): the chunked reading at
    small chunks and a live session keeping 2 packets per flow write the whole-file history."""
    from chunkcmp import chunked
    path = write(tmp_path, _records(_random_steps(seed)), name=f"r{seed}.pcap")
    want = list(analyze_file(path, RULES).flows.history)
    assert len(want) == 1 and sum(want[0].count(ch) for ch in "TtWw") >= 6
    for cb in (700, 2500):
        assert list(chunked(path, cb)[0].history) == want
    assert_live_same(path, monkeypatch, step=5)
