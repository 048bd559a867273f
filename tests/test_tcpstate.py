"""The compiled TCP endpoint state machine (kscc_traffic._tcpstate, built by setup.py) against its
numpy fallback (flows._endpoint_states_py): the same final states on any events."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kscc_traffic import flows
from kscc_traffic.flows import (ACK, FIN, RST, SYN, _endpoint_states, _endpoint_states_py, state_event_rows,
                                state_event_rows_py)

_tcpstate = pytest.importorskip("kscc_traffic._tcpstate")

#: flag combinations, the odd ones included (SYN+FIN, FIN+RST, SYN+RST, none)
_FLAGS = [SYN, SYN | ACK, ACK, FIN | ACK, FIN, RST, RST | ACK, FIN | RST, SYN | FIN, SYN | RST, 0, 0x18]


def _compiled(flow, orig, flags, plen, nflows):
    os_, rs_ = np.zeros(nflows, np.int8), np.zeros(nflows, np.int8)
    _tcpstate.endpoint_states(flow.astype(np.int64), orig.astype(np.int64), flags.astype(np.int64),
                              plen.astype(np.int64), os_, rs_)
    return os_, rs_


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.booleans(), st.sampled_from(_FLAGS), st.integers(-1, 3)),
                max_size=60))
def test_compiled_states_are_the_numpy_steps_states(events):
    """Any events (sorted by flow, each flow's in the given order): the same originator and
    responder states, event by event in C as in numpy steps."""
    events = sorted(events, key=lambda e: e[0])        # (stable: each flow's order kept)
    nflows = 6
    flow = np.array([e[0] for e in events], np.int64)
    orig = np.array([e[1] for e in events], bool)
    flags = np.array([e[2] for e in events], np.int64)
    plen = np.array([e[3] for e in events], np.int64)
    want = _endpoint_states_py(flow, orig, flags, plen, nflows, np.arange(len(events)))
    got = _compiled(flow, orig, flags, plen, nflows)
    assert [a.tolist() for a in got] == [a.tolist() for a in want]


def test_known_states_and_the_fallback_through_endpoint_states(monkeypatch):
    """A handshake then both FINs (flow 0: CLOSED / CLOSED), a SYN refused by a reset (flow 1:
    SYN_SENT / RESET), a SYN alone (flow 2: SYN_SENT / INACTIVE), with and without the module."""
    flow = np.array([0, 0, 0, 0, 0, 1, 1, 2], np.int64)
    orig = np.array([1, 0, 1, 1, 0, 1, 0, 1], bool)
    flags = np.array([SYN, SYN | ACK, ACK, FIN | ACK, FIN | ACK, SYN, RST | ACK, SYN], np.int64)
    plen = np.zeros(8, np.int64)
    tcp = np.ones(8, bool)
    got = _endpoint_states(flow, orig, flags, tcp, plen, 3)
    assert [a.tolist() for a in got] == [[flows.CLOSED, flows.SYN_SENT, flows.SYN_SENT],
                                         [flows.CLOSED, flows.RESET, flows.INACTIVE]]
    monkeypatch.setattr(flows, "_tcpstate", None)
    assert [a.tolist() for a in _endpoint_states(flow, orig, flags, tcp, plen, 3)] == [a.tolist() for a in got]


def test_bad_arguments_raise_and_change_nothing():
    os_, rs_ = np.zeros(2, np.int8), np.zeros(2, np.int8)
    one = np.array([SYN], np.int64)
    with pytest.raises(ValueError, match="flow number 2"):
        _tcpstate.endpoint_states(np.array([2], np.int64), np.ones(1, np.int64), one, np.zeros(1, np.int64),
                                  os_, rs_)
    with pytest.raises(TypeError, match="int64"):
        _tcpstate.endpoint_states(np.array([0], np.int32), np.ones(1, np.int64), one, np.zeros(1, np.int64),
                                  os_, rs_)
    with pytest.raises(ValueError, match="lengths"):
        _tcpstate.endpoint_states(np.array([0, 1], np.int64), np.ones(1, np.int64), one, np.zeros(1, np.int64),
                                  os_, rs_)
    assert os_.tolist() == [0, 0] and rs_.tolist() == [0, 0]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.booleans(), st.sampled_from(_FLAGS + [0x118]),
                          st.integers(-1, 3), st.booleans()), max_size=80),
       st.booleans(), st.sampled_from([bool, np.int8, np.int64]))
def test_compiled_event_rows_are_the_numpy_rows(rows, by_flow, orig_type):
    """Any rows (sorted by flow or not; TCP or not; cut headers, plen -1): the compiled one-pass
    event_rows keeps exactly the rows of the numpy state_event_rows_py, whatever the integer or
    bool type of from_orig and is_tcp."""
    if by_flow:
        rows = sorted(rows, key=lambda r: r[0])
    flow = np.array([r[0] for r in rows], np.int64)
    orig = np.array([r[1] for r in rows], bool).astype(orig_type)
    flags = np.array([r[2] for r in rows], np.int64)
    plen = np.array([r[3] for r in rows], np.int64)
    tcp = np.array([r[4] for r in rows], bool).astype(orig_type)
    want = state_event_rows_py(flow, orig.astype(bool), flags, tcp.astype(bool), plen)
    assert state_event_rows_py(flow, orig, flags, tcp, plen).tolist() == want.tolist()
    assert state_event_rows(flow, orig, flags, tcp, plen).tolist() == want.tolist()


def test_event_rows_known_rows_and_int8_from_orig(monkeypatch):
    """Flow 0: SYN, SYN-ACK, ACK, ACK with data, a second data packet (not read), the
    originator's FIN, the responder's pure ACK after it (read: it may move the responder), a
    second such ACK (not read), the originator's RST (read); flow 1: a UDP row (never read).
    from_orig as int8 0/1 (it used to index rows by fancy indexing: a ValueError once the
    originator closed twice), and the same without the module."""
    flow = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 1], np.int64)
    orig = np.array([1, 0, 1, 1, 1, 1, 0, 0, 1, 1], np.int8)
    flags = np.array([SYN, SYN | ACK, ACK, ACK, ACK, FIN | ACK, ACK, ACK, RST, 0], np.int64)
    plen = np.array([0, 0, 0, 5, 5, 0, 0, 0, 0, 9], np.int64)
    tcp = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, 0], bool)
    want = [True, True, True, True, False, True, True, False, True, False]
    assert state_event_rows(flow, orig, flags, tcp, plen).tolist() == want
    monkeypatch.setattr(flows, "_tcpstate", None)
    assert state_event_rows(flow, orig, flags, tcp, plen).tolist() == want
    assert state_event_rows(flow, orig.astype(bool), flags, tcp, plen).tolist() == want


def test_event_rows_bad_arguments_raise_and_change_nothing():
    keep = np.zeros(1, bool)
    one = np.array([SYN], np.int64)
    with pytest.raises(ValueError, match="negative"):
        _tcpstate.event_rows(np.array([-1], np.int64), np.ones(1, bool), one, np.ones(1, bool),
                             np.zeros(1, np.int64), keep)
    with pytest.raises(ValueError, match="lengths"):
        _tcpstate.event_rows(np.array([0, 0], np.int64), np.ones(1, bool), one, np.ones(1, bool),
                             np.zeros(1, np.int64), keep)
    with pytest.raises(TypeError, match="1-byte"):
        _tcpstate.event_rows(np.array([0], np.int64), np.ones(1, np.int64), one, np.ones(1, bool),
                             np.zeros(1, np.int64), keep)
    assert keep.tolist() == [False]
    # (a negative flow number: the numpy version, through state_event_rows)
    assert state_event_rows(np.array([-1, -1]), np.array([1, 1], bool), np.array([SYN, SYN]),
                            np.ones(2, bool), np.zeros(2, np.int64)).tolist() == [True, False]


_SEQ = st.one_of(st.integers(0, 40), st.integers(2**32 - 20, 2**32 - 1), st.integers(2**31 - 10, 2**31 + 10),
                 st.integers(0, 2**32 - 1))


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0, 1, 2, 3, 7, 40]), st.booleans(), st.sampled_from(_FLAGS + [0x118]),
                          _SEQ, st.one_of(st.just(0), _SEQ), st.integers(-1, 30), st.booleans()), max_size=80),
       st.booleans(), st.sampled_from([(bool, np.int64, np.int64), (np.int8, np.uint16, np.int32)]))
def test_compiled_seq_extents_are_the_numpy_extents(rows, by_flow, types):
    """Any rows (by flow or not; TCP or not; cut headers, plen -1; SYNs sent again with another
    ISN; acknowledgement numbers 0; sequence numbers wrapping past 2**32 or half of it; one
    direction not captured; flow numbers with gaps), any integer types: the compiled
    seq_extents gives exactly the numpy seq_extents_py's ends and acknowledgements."""
    orig_type, flags_type, plen_type = types
    if by_flow:
        rows = sorted(rows, key=lambda r: r[0])
    flow = np.array([r[0] for r in rows], np.int64)
    orig = np.array([r[1] for r in rows], bool).astype(orig_type)
    flags = np.array([r[2] for r in rows], np.int64).astype(flags_type)
    seq = np.array([r[3] for r in rows], np.int64)
    ack = np.array([r[4] for r in rows], np.int64)
    plen = np.array([r[5] for r in rows], np.int64).astype(plen_type)
    tcp = np.array([r[6] for r in rows], bool).astype(orig_type)
    want_end, want_acked = flows.seq_extents_py(flow, orig.astype(bool), flags, tcp.astype(bool), seq, ack, plen)
    got_end, got_acked = flows.seq_extents(flow, orig, flags, tcp, seq, ack, plen)
    assert got_end.dtype == got_acked.dtype == np.int64
    assert got_end.tolist() == want_end.tolist() and got_acked.tolist() == want_acked.tolist()


def test_seq_extents_known_values_with_and_without_the_module(monkeypatch):
    """A connection: SYN (ISN 1000), SYN-ACK (ISN 2**32 - 2, its space wraps), the client's
    ACK with 10 bytes, the server's 5 bytes, the client's FIN; then a flow whose originator's
    packets were not captured (its server's first ACK, 700, starts that space) and a UDP row.
    Ends and acknowledgements are relative to each direction's ISN + 1 (the SYN's own end: 0)."""
    flow = np.array([0, 0, 0, 0, 0, 1, 1, 2], np.int64)
    orig = np.array([1, 0, 1, 0, 1, 0, 0, 1], bool)
    flags = np.array([SYN, SYN | ACK, ACK, ACK, FIN | ACK, ACK, ACK, 0], np.int64)
    seq = np.array([1000, 2**32 - 2, 1001, 2**32 - 1, 1011, 50, 60, 0], np.int64)
    ack = np.array([0, 1001, 2**32 - 1, 1011, 4, 700, 710, 0], np.int64)
    plen = np.array([0, 0, 10, 5, 0, 10, 0, 9], np.int64)
    tcp = np.array([1, 1, 1, 1, 1, 1, 1, 0], bool)
    want_end = [0, 0, 10, 5, 11, 10, 10, -1]
    want_acked = [-1, 0, 0, 10, 5, 0, 10, -1]
    for module in (flows._tcpstate, None):
        monkeypatch.setattr(flows, "_tcpstate", module)
        end, acked = flows.seq_extents(flow, orig, flags, tcp, seq, ack, plen)
        assert end.tolist() == want_end and acked.tolist() == want_acked


def test_seq_extents_bad_arguments_raise():
    one = np.ones(1, np.int64)
    out = [np.zeros(1, np.int64), np.zeros(1, np.int64)]
    with pytest.raises(ValueError, match="negative"):
        _tcpstate.seq_extents(-one, np.ones(1, bool), one, np.ones(1, bool), one, one, one, *out)
    with pytest.raises(ValueError, match="lengths"):
        _tcpstate.seq_extents(np.zeros(2, np.int64), np.ones(1, bool), one, np.ones(1, bool), one, one, one, *out)
    with pytest.raises(TypeError):
        _tcpstate.seq_extents(one, np.ones(1, np.int64), one, np.ones(1, bool), one, one, one, *out)
    assert [o.tolist() for o in out] == [[0], [0]]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0, 1, 33]), st.booleans(),
                          st.sampled_from(_FLAGS + [0x118, RST | FIN | ACK, SYN | FIN | RST, FIN | ACK, FIN | ACK, RST]),
                          st.one_of(st.integers(0, 9), st.integers(2**32 - 3, 2**32 + 2)), st.integers(-1, 4),
                          st.sampled_from([True, True, True, False])),
                max_size=120),
       st.booleans(), st.sampled_from([(bool, np.int64, np.int64), (np.int8, np.uint16, np.int32)]))
def test_compiled_history_codes_are_the_numpy_codes(rows, by_flow, types):
    """Any rows (by flow or not; TCP or not; cut headers; SYNs, FINs and RSTs repeated with the
    same or another sequence number, past MAX_HISTORY_REPEATS; sequence numbers around 2**32; flow
    numbers with gaps), any integer types: the compiled history_codes gives exactly the numpy
    history_codes_py's letters and kept rows."""
    orig_type, flags_type, plen_type = types
    # (bursts: a few rows sent 7 times more with new sequence numbers, past MAX_HISTORY_REPEATS)
    rows = rows + [(r[0], r[1], r[2], r[3] + k, r[4], r[5]) for r in rows[:4] for k in range(1, 8)]
    if by_flow:
        rows = sorted(rows, key=lambda r: r[0])
    rows = rows + rows[: len(rows) // 2]                   # (repeats: the same packets again)
    flow = np.array([r[0] for r in rows], np.int64)
    orig = np.array([r[1] for r in rows], bool).astype(orig_type)
    flags = np.array([r[2] for r in rows], np.int64).astype(flags_type)
    seq = np.array([r[3] for r in rows], np.int64)
    plen = np.array([r[4] for r in rows], np.int64).astype(plen_type)
    tcp = np.array([r[5] for r in rows], bool).astype(orig_type)
    want_code, want_keep = flows.history_codes_py(flow, orig.astype(bool), flags, tcp.astype(bool), seq, plen)
    code, keep = flows.history_codes(flow, orig, flags, tcp, seq, plen)
    assert code.dtype == np.int64 and keep.dtype == bool
    assert code.tolist() == want_code.tolist() and keep.tolist() == want_keep.tolist()


def test_history_codes_known_letters_with_and_without_the_module(monkeypatch):
    """A flow: SYN, SYN again (same ISN: no letter, but the last SYN is kept), SYN-ACK, ACK, data,
    more data (no letter), the originator's FIN, then its FIN sent six times more with new
    sequence numbers (letters up to MAX_HISTORY_REPEATS repeats: 'F' five times in all; the last
    two FINs neither write nor are kept), and a UDP datagram of another flow ('D')."""
    f = [0] * 13 + [1]
    orig = [1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]
    flags = [SYN, SYN, SYN | ACK, ACK, ACK, ACK, FIN | ACK] + [FIN | ACK] * 6 + [0]
    seq = [9, 9, 70, 10, 10, 15, 20] + [21 + k for k in range(6)] + [0]
    plen = [0, 0, 0, 0, 5, 5, 0] + [0] * 6 + [3]
    tcp = [1] * 13 + [0]
    args = (np.array(f, np.int64), np.array(orig, bool), np.array(flags, np.int64), np.array(tcp, bool),
            np.array(seq, np.int64), np.array(plen, np.int64))
    letters = "SHADFRIQ" + "shadfriq"
    for module in (flows._tcpstate, None):
        monkeypatch.setattr(flows, "_tcpstate", module)
        code, keep = flows.history_codes(*args)
        assert "".join(letters[c] for c in code if c >= 0) == "ShADFFFFFD"
        assert keep.tolist() == [True, True, True, True, True, False, True, True, True, True, True,
                                 False, False, True]


#: a run of the compiled functions on two rows, flow 0 and the given flow number, in a child
#: process (a write outside the tables crashes it, not the test run): prints the error raised
_HUGE_FLOW = """
import sys, numpy as np
from kscc_traffic import _tcpstate
F = np.array([0, int(sys.argv[2])], np.int64)
one, tcp = np.ones(2, bool), np.ones(2, bool)
flags, seq = np.array([2, 16], np.int64), np.array([100, 101], np.int64)
ack, plen = np.array([0, 5], np.int64), np.zeros(2, np.int64)
a, b = np.full(2, 7, np.int64), np.full(2, 7, np.int64)
try:
    if sys.argv[1] == "seq_extents":
        _tcpstate.seq_extents(F, one, flags, tcp, seq, ack, plen, a, b)
    elif sys.argv[1] == "history_codes":
        _tcpstate.history_codes(F, one, flags, tcp, seq, plen, 4, a, np.zeros(2, bool))
    else:
        _tcpstate.event_rows(F, one, flags, tcp, plen, np.zeros(2, bool))
except Exception as e:
    print(type(e).__name__, e, a.tolist(), b.tolist())
"""


@pytest.mark.parametrize("func, flow", [
    ("seq_extents", 2**62),             # flow * 2 wraps negative: seen[g] written before the tables
    ("seq_extents", 2**63 - 1),
    ("history_codes", 2**63 - 1),       # (flow + 1) * 6 cells wraps a size_t: heap corruption
    ("history_codes", 3074457345618258602),
    ("event_rows", 2**63 - 1),          # flow + 1 overflows an int64
])
def test_huge_flow_numbers_raise_instead_of_writing_outside_the_tables(func, flow):
    """A flow number whose tables' size would wrap (the C code sized them from the largest flow
    number, (flow + 1) * 2 groups, * 3 cells: wrapped to a few bytes, or flow * 2 negative) raises
    ValueError 'too large' and writes nothing (was a segmentation fault or 'double free or
    corruption' on 649be23)."""
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=root, PYTHONDONTWRITEBYTECODE="1")
    r = subprocess.run([sys.executable, "-c", _HUGE_FLOW, func, str(flow)], capture_output=True, text=True,
                       timeout=120, env=env, cwd=root)
    assert r.returncode == 0, (r.returncode, r.stderr[-300:])
    assert r.stdout.startswith(f"ValueError {func}: flow number {flow} (row 1) too large"), r.stdout
    assert r.stdout.rstrip().endswith("[7, 7] [7, 7]")     # (nothing written)


def test_large_flow_numbers_below_the_limit_still_work():
    """Gaps in flow numbers stay allowed: flow 1000 beside flow 0 gives the numpy version's values."""
    flow = np.array([0, 0, 1000, 1000], np.int64)
    orig = np.array([1, 0, 1, 0], bool)
    flags = np.array([SYN, SYN | ACK, SYN, RST | ACK], np.int64)
    seq = np.array([5, 90, 7, 0], np.int64)
    ack = np.array([0, 6, 0, 8], np.int64)
    plen = np.zeros(4, np.int64)
    tcp = np.ones(4, bool)
    end, acked = flows.seq_extents(flow, orig, flags, tcp, seq, ack, plen)
    want = flows.seq_extents_py(flow, orig, flags, tcp, seq, ack, plen)
    assert end.tolist() == want[0].tolist() == [0, 0, 0, -1]
    assert acked.tolist() == want[1].tolist() == [-1, 0, -1, -1]
    code, _ = flows.history_codes(flow, orig, flags, tcp, seq, plen)
    assert "".join("SHADFRIQshadfriq"[c] for c in code if c >= 0) == "ShSr"


def test_flow_numbers_above_the_compiled_limit_run_the_numpy_versions():
    """flows.history_codes / seq_extents hand flow numbers above COMPILED_MAX_FLOW to the numpy
    versions (the compiled ones raise ValueError there): history_codes_py needs no per-flow table,
    so its letters come; seq_extents_py's tables cannot be allocated (an error, no crash)."""
    flow = np.array([0, 0, flows.COMPILED_MAX_FLOW + 1], np.int64)
    orig = np.array([1, 0, 1], bool)
    flags = np.array([SYN, SYN | ACK, SYN], np.int64)
    seq = np.array([5, 9, 7], np.int64)
    plen = np.zeros(3, np.int64)
    tcp = np.ones(3, bool)
    code, keep = flows.history_codes(flow, orig, flags, tcp, seq, plen)
    assert "".join("SHADFRIQshadfriq"[c] for c in code if c >= 0) == "ShS" and keep.all()
    with pytest.raises((MemoryError, ValueError)):
        flows.seq_extents(flow, orig, flags, tcp, seq, seq, plen)


def test_a_copy_of_the_syn_restarts_no_count(monkeypatch):
    """Break-it s50: a connection's SYN captured once more after it closed (a late copy, same
    ISN) left the originator's 10 bytes uncounted (the last SYN set the start, so only packets
    after it counted); a SYN-ACK sent again with another ISN (a SYN cookie) still restarts the
    responder's count, and a SYN with the same ISN after it keeps the new start. The other side's
    acknowledgements of a direction count from its last SYN on, as before (a stale connection's
    ACK before a SYN sent again acknowledges nothing of it: test_synretry_s31)."""
    flow = np.zeros(9, np.int64)
    orig = np.array([1, 0, 1, 0, 0, 1, 0, 1, 1], bool)
    flags = np.array([SYN, SYN | ACK, ACK, SYN | ACK, ACK, FIN | ACK, FIN | ACK, ACK, SYN], np.int64)
    seq = np.array([2**32 - 1, 500, 0, 900, 901, 10, 906, 11, 2**32 - 1], np.int64)
    ack = np.array([0, 0, 501, 0, 10, 901, 11, 907, 0], np.int64)
    plen = np.array([0, 0, 10, 0, 5, 0, 0, 0, 0], np.int64)
    tcp = np.ones(9, bool)
    want_end = [0, -1, 10, 0, 5, 11, 6, 11, 0]
    want_acked = [-1, -1, -1, -1, -1, 0, -1, 6, -1]
    for module in (flows._tcpstate, None):
        monkeypatch.setattr(flows, "_tcpstate", module)
        end, acked = flows.seq_extents(flow, orig, flags, tcp, seq, ack, plen)
        assert end.tolist() == want_end and acked.tolist() == want_acked


def test_the_acknowledged_isn_sets_the_start(monkeypatch):
    """Break-it s50 (a regression the corpus showed: rawip-lt101_tfo_tls13_synretx.pcap): SYN-ACKs
    of two ISNs alternating (a stale answer's, never acknowledged, and the server's, the client
    acknowledging its ISN + 1), the last one the stale ISN: the server's data counts from the
    acknowledged ISN (the last SYN-ACK's, as before, made it 0; the first of its last ISN's run
    read it as 1.18 GB). Without any acknowledged ISN the last SYN's still counts."""
    A, B = 3212050950, 97572840
    flow = np.zeros(8, np.int64)
    orig = np.array([1, 0, 0, 0, 1, 0, 0, 1], bool)
    flags = np.array([SYN, SYN | ACK, SYN | ACK, SYN | ACK, ACK, ACK, SYN | ACK, ACK], np.int64)
    seq = np.array([100, A, B, A, 101, B + 1, A, 101], np.int64)
    ack = np.array([0, 101, 101, 101, B + 1, 101, 101, B + 1441], np.int64)
    plen = np.array([0, 0, 0, 0, 0, 1440, 0, 0], np.int64)
    tcp = np.ones(8, bool)
    want_end = [0, -1, 0, -1, 0, 1440, -1, 0]
    for module in (flows._tcpstate, None):
        monkeypatch.setattr(flows, "_tcpstate", module)
        end, acked = flows.seq_extents(flow, orig, flags, tcp, seq, ack, plen)
        assert end.tolist() == want_end, module
        # (the client's acknowledgements of the server count from its last SYN-ACK on)
        assert acked.tolist()[7] == 1440 and acked.tolist()[4] == -1
