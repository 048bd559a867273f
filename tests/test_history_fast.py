"""The vectorised Zeek history builder (flows._history) against the simple per-event loop it
replaced."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from kscc_traffic.flows import _LETTERS, _history, history_events


def _history_reference(flow_of, from_orig, flags, is_tcp, plen, nflows, flipped):
    ev = history_events(flags, is_tcp, plen)
    hist = ["^" if f else "" for f in flipped]
    seen = set()
    for r in range(len(flags)):           # packets in time order
        for j in range(ev.shape[1]):
            if ev[r, j]:
                key = (int(flow_of[r]), bool(from_orig[r]), j)
                if key not in seen:
                    seen.add(key)
                    hist[flow_of[r]] += _LETTERS[j] if from_orig[r] else _LETTERS[j].lower()
    return hist


packets = st.lists(st.tuples(st.integers(0, 5), st.booleans(), st.integers(0, 0x3F), st.booleans(),
                             st.integers(-1, 3)), max_size=80)


@settings(max_examples=300, deadline=None)
@given(packets, st.lists(st.booleans(), min_size=6, max_size=6))
def test_history_equals_the_per_event_loop(pk, flipped):
    flow_of = np.array([p[0] for p in pk], np.int64)
    from_orig = np.array([p[1] for p in pk], bool)
    flags = np.array([p[2] for p in pk], np.int64)
    is_tcp = np.array([p[3] for p in pk], bool)
    plen = np.array([p[4] for p in pk], np.int64)
    flipped = np.array(flipped, bool)
    got = _history(flow_of, from_orig, flags, is_tcp, plen, 6, flipped)
    assert got.dtype == object
    assert got.tolist() == _history_reference(flow_of, from_orig, flags, is_tcp, plen, 6, flipped)


def test_every_event_both_ways_fits():
    # all 12 events of one flow, after the flipped mark: the longest history there is
    n = 12
    flow_of = np.zeros(n, np.int64)
    from_orig = np.array([True] * 6 + [False] * 6)
    flags = np.array([0x02, 0x12, 0x10, 0x18, 0x01, 0x04] * 2)
    plen = np.array([0, 0, 0, 5, 0, 0] * 2)
    got = _history(flow_of, from_orig, flags, np.ones(n, bool), plen, 1, np.array([True]))
    assert got.tolist() == ["^SHADFRshadfr"]
