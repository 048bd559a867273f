"""The compiled steps of flows._flow_order and flows.address_text (kscc_traffic._tcpstate's
key_order and quad_texts, built by setup.py) against their numpy fallbacks: the same order, key
starts, collision answer and address texts on any input, hostile ones included (colliding
hashes, out-of-range positions, wrong lengths); and flows.dns_flows against np.isin."""
from __future__ import annotations

import ipaddress

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kscc_traffic import flows
from kscc_traffic.addresses import dotted_quads

_tcpstate = pytest.importorskip("kscc_traffic._tcpstate")
if not hasattr(_tcpstate, "key_order"):
    pytest.skip("kscc_traffic._tcpstate built before key_order", allow_module_level=True)


def _numpy_steps(h, o, cols):
    """The numpy steps key_order replaces: (order, start, collision)."""
    o = o[np.argsort(h[o], kind="stable")]
    hs = h[o]
    start = np.r_[True, hs[1:] != hs[:-1]] if len(o) else np.zeros(0, bool)
    same = ~start[1:]
    collision = any(bool(np.any(same & (k[o][1:] != k[o][:-1]))) for k in cols)
    return o, start, collision


_ROWS = st.integers(0, 60).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 3), min_size=n, max_size=n),            # key column values (few)
    st.lists(st.integers(0, 3), min_size=n, max_size=n),
    st.lists(st.sampled_from([0, 1, 2**63, 2**64 - 1]), min_size=n, max_size=n),  # raw hashes
    st.lists(st.integers(0, 4), min_size=n, max_size=n)))            # times (many ties)


@settings(max_examples=400, deadline=None)
@given(_ROWS, st.booleans())
def test_key_order_is_the_numpy_steps(rows, hashed):
    """Hashes from the keys (no collision) or arbitrary ones (collisions, one hash for several
    keys, 0 and 2**64-1): the same permutation, starts and collision answer."""
    a, b, raw, t = rows
    cols = (np.array(a, np.int64), np.array(b, np.uint64))
    n = len(a)
    h = flows._key_hash(cols, n) if hashed else np.array(raw, np.uint64)
    o = np.argsort(np.array(t, np.int64), kind="stable").astype(np.int64)
    out, start = np.full(n, -7, np.int64), np.zeros(n, bool)
    got = _tcpstate.key_order(h, o, cols, out, start)
    want_o, want_start, want_c = _numpy_steps(h, o, cols)
    assert out.tolist() == want_o.tolist()
    assert start.tolist() == want_start.tolist()
    assert got is want_c
    if hashed:
        assert got is False


def test_key_order_finds_a_collision():
    """Two keys of one hash, their rows interleaved in time: a collision (so _flow_order
    falls back to the exact lexsort); one key per hash: none."""
    cols = (np.array([5, 6, 5, 6], np.int64),)
    o = np.arange(4, dtype=np.int64)
    out, start = np.empty(4, np.int64), np.empty(4, bool)
    assert _tcpstate.key_order(np.array([9, 9, 9, 9], np.uint64), o, cols, out, start) is True
    assert out.tolist() == [0, 1, 2, 3] and start.tolist() == [True, False, False, False]
    assert _tcpstate.key_order(np.array([9, 3, 9, 3], np.uint64), o, cols, out, start) is False
    assert out.tolist() == [1, 3, 0, 2] and start.tolist() == [True, False, True, False]


@settings(max_examples=200, deadline=None)
@given(_ROWS)
def test_flow_order_with_and_without_the_compiled_steps(rows):
    """_flow_order's (order, key_start) are the same through key_order and through numpy,
    tie keys and all (the keys' colliding case goes to the lexsort either way)."""
    a, b, _raw, t = rows
    cols = (np.array(a, np.int64), np.array(b, np.int64))
    ts = np.array(t, np.int64)
    tie = (np.arange(len(a), dtype=np.int64)[::-1].copy(),)
    o1, s1 = flows._flow_order(cols, ts, tie)
    saved = flows._tcpstate
    try:
        flows._tcpstate = None
        o2, s2 = flows._flow_order(cols, ts, tie)
    finally:
        flows._tcpstate = saved
    assert o1.tolist() == o2.tolist() and s1.tolist() == s2.tolist()


def test_flow_order_other_dtypes_take_numpy(monkeypatch):
    """A key column that is not 8-byte integers (int32 ports) takes the numpy steps."""
    cols = (np.array([3, 1, 3], np.int32), np.array([1, 1, 1], np.int64))
    assert not flows._compiled_order(cols, np.arange(3, dtype=np.int64))
    assert flows._compiled_order((cols[1],), np.arange(3, dtype=np.int64))
    monkeypatch.setattr(_tcpstate, "key_order", None, raising=False)
    o, s = flows._flow_order(cols, np.zeros(3, np.int64), ())
    assert int(s.sum()) == 2 and sorted(o.tolist()) == [0, 1, 2]
    assert abs(o.tolist().index(0) - o.tolist().index(2)) == 1     # (one key: next to each other)


def test_key_order_bad_arguments_raise_and_change_nothing():
    h = np.array([1, 2, 3], np.uint64)
    cols = (np.array([1, 2, 3], np.int64),)
    out, start = np.full(3, -1, np.int64), np.zeros(3, bool)
    with pytest.raises(ValueError, match="out of range"):
        _tcpstate.key_order(h, np.array([0, 3, 1], np.int64), cols, out, start)
    with pytest.raises(ValueError, match="out of range"):
        _tcpstate.key_order(h, np.array([0, -1, 1], np.int64), cols, out, start)
    with pytest.raises(ValueError, match="length"):
        _tcpstate.key_order(h, np.arange(3, dtype=np.int64), (np.zeros(2, np.int64),), out, start)
    with pytest.raises(ValueError, match="length"):
        _tcpstate.key_order(h, np.arange(3, dtype=np.int64), cols, np.zeros(2, np.int64), start)
    o = np.arange(3, dtype=np.int64)
    with pytest.raises(ValueError, match="out or start shares memory with o"):
        _tcpstate.key_order(h, o, cols, o, start)
    with pytest.raises(TypeError, match="int64"):
        _tcpstate.key_order(h, np.arange(3, dtype=np.int32), cols, out, start)  # (int64 expected)
    assert out.tolist() == [-1, -1, -1] and start.tolist() == [False] * 3
    e_out, e_start = np.zeros(0, np.int64), np.zeros(0, bool)
    assert _tcpstate.key_order(h, np.zeros(0, np.int64), cols, e_out, e_start) is False


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 2**32 - 1), max_size=40))
def test_quad_texts_are_dotted_quads(addresses):
    a = np.array(addresses, np.uint64)
    got = _tcpstate.quad_texts(a)
    assert all(type(t) is str for t in got)
    assert got == dotted_quads(a).tolist() == [str(ipaddress.IPv4Address(x)) for x in addresses]
    assert flows._quads(a).tolist() == got


def test_quad_texts_bad_input():
    with pytest.raises(ValueError, match="no IPv4 address"):
        _tcpstate.quad_texts(np.array([1, 2**32], np.uint64))
    with pytest.raises(TypeError, match="8-byte"):
        _tcpstate.quad_texts(np.array([1], np.uint32))
    assert _tcpstate.quad_texts(np.zeros(0, np.uint64)) == []


def test_address_text_without_the_module(monkeypatch):
    hi = np.array([0, 0, 0, 0x20010DB800000000], np.uint64)
    lo = np.array([0xFFFF_C0000201, 0xFFFF_00000000, 0xFFFF_FFFFFFFF, 1], np.uint64)
    want = ["192.0.2.1", "0.0.0.0", "255.255.255.255", "2001:db8::1"]
    assert flows.address_text(hi, lo).tolist() == want
    monkeypatch.setattr(flows, "_tcpstate", None)
    assert flows.address_text(hi, lo).tolist() == want


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([1, 6, 17, 58]), st.sampled_from(flows.DNS_PORTS + (-1, 0, 443, 5354)),
                          st.integers(-1, 65535)), max_size=40))
def test_dns_flows_is_the_isin_test(rows):
    proto = np.array([r[0] for r in rows], np.int64)
    a = np.array([r[1] for r in rows], np.int64)
    b = np.array([r[2] for r in rows], np.int32)
    ports = np.array(flows.DNS_PORTS)
    want = (proto == 17) & (np.isin(a, ports) | np.isin(b, ports))
    got = flows.dns_flows(proto, a, b)
    assert got.dtype == bool and got.tolist() == want.tolist()
