"""The compiled TCP endpoint state machine (kscc_traffic._tcpstate, built by setup.py) against its
numpy fallback (flows._endpoint_states_py): the same final states on any events."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kscc_traffic import flows
from kscc_traffic.flows import ACK, FIN, RST, SYN, _endpoint_states, _endpoint_states_py

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
