"""The compiled flow-key hashes (kscc_traffic._keyhash, built by setup.py) against their numpy
fallbacks (flows._mix_py, flows._uids_py): the same numbers and uid texts on any input."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kscc_traffic import flows

_keyhash = pytest.importorskip("kscc_traffic._keyhash")

_U64 = st.integers(0, 2**64 - 1)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_U64, _U64), max_size=50), st.booleans())
def test_compiled_mix_is_the_numpy_mix(pairs, signed):
    """Any uint64 h and v (v as uint64 or as the int64 of the same bits): the same round."""
    h = np.array([p[0] for p in pairs], np.uint64)
    v = np.array([p[1] for p in pairs], np.uint64)
    if signed:
        v = v.view(np.int64)
    want = flows._mix_py(h, v)
    got = flows._mix(h, v)
    assert got.dtype == np.uint64 and got.tolist() == want.tolist()
    assert h.tolist() == [p[0] for p in pairs]           # (the inputs are not changed)


def test_mix_known_value():
    """splitmix64's finalizer of golden + 1 (h = 0, v = 1): 0x910a2dec89025cc1, the first output
    of splitmix64 seeded with 1 (Vigna's reference generator), in both versions."""
    h, v = np.zeros(1, np.uint64), np.ones(1, np.uint64)
    assert flows._mix(h, v).tolist() == flows._mix_py(h, v).tolist() == [0x910A2DEC89025CC1]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_U64, _U64), max_size=50))
def test_compiled_uids_are_the_numpy_uids(pairs):
    h1 = np.array([p[0] for p in pairs], np.uint64)
    h2 = np.array([p[1] for p in pairs], np.uint64)
    got = _keyhash.uids(h1, h2)
    want = flows._uids_py(h1, h2)
    assert want.dtype == object and all(type(t) is str for t in got)
    assert got == want.tolist()


def test_uids_known_digits():
    """h1 = 61 + 62 * 10 ('z' then 'A' then zeros), h2 = 2**64 - 1 (its 6 lowest base62 digits,
    least significant first, by Python integers: 'FYHA61')."""
    h1, h2 = np.array([61 + 62 * 10], np.uint64), np.array([2**64 - 1], np.uint64)
    assert _keyhash.uids(h1, h2) == flows._uids_py(h1, h2).tolist() == ["CzA000000000" + "FYHA61"]


def test_uids_and_flow_order_without_the_module(monkeypatch):
    """_uid and _flow_order give the same uids and order with and without the compiled module."""
    rng = np.random.default_rng(7)
    parts = (rng.integers(0, 4096, 200), rng.integers(0, 2**63, 200, dtype=np.int64),
             rng.integers(0, 2**64 - 1, 200, dtype=np.uint64), rng.integers(-1, 65536, 200).astype(np.int32))
    ts = rng.integers(0, 5, 200).astype(np.int64)
    uids = flows._uid("seed.pcap", *parts)
    order = flows._flow_order(parts, ts, ())
    monkeypatch.setattr(flows, "_keyhash", None)
    assert flows._uid("seed.pcap", *parts).tolist() == uids.tolist()
    o2 = flows._flow_order(parts, ts, ())
    assert o2[0].tolist() == order[0].tolist() and o2[1].tolist() == order[1].tolist()
    assert all(len(u) == 18 and u[0] == "C" for u in uids)


def test_bad_arguments_raise_and_change_nothing():
    out = np.zeros(2, np.uint64)
    with pytest.raises(ValueError, match="lengths"):
        _keyhash.mix(np.zeros(2, np.uint64), np.zeros(1, np.uint64), out)
    with pytest.raises(TypeError, match="8-byte"):
        _keyhash.mix(np.zeros(2, np.uint64), np.zeros(2, np.int32), out)
    assert out.tolist() == [0, 0]
    with pytest.raises(ValueError, match="lengths"):
        _keyhash.uids(np.zeros(2, np.uint64), np.zeros(1, np.uint64))
    assert _keyhash.uids(np.zeros(0, np.uint64), np.zeros(0, np.uint64)) == []
