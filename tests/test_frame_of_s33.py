"""``flows.frame_of`` (pandas' ``DataFrame._from_arrays``, session 33 speed work) gives the frame
the public constructor gives (``flows._frame_of_public``, the way build_flows and
inspect._with_columns built their frames before): the same columns, dtypes, labels (an
``object`` Index), index and values; and build_flows / inspect_flows give the same tables
either way."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT
from kscc_traffic import flows as flows_mod
from kscc_traffic.analyze import analyze_batch, server_port_fn
from kscc_traffic import load_rules

KINDS = {
    "i": st.integers(-2**63, 2**63 - 1),
    "f": st.floats(allow_nan=True, allow_infinity=True),
    "b": st.booleans(),
    "O": st.sampled_from(["", "tcp", "S0", "é\\x00", None, 5, "eu1.ksc.example"]),
}
DTYPES = {"i": np.int64, "f": np.float64, "b": bool, "O": object}


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    assert a.columns.dtype == b.columns.dtype
    assert a.index.equals(b.index) and type(a.index) is type(b.index)
    assert list(a.dtypes) == list(b.dtypes)
    pd.testing.assert_frame_equal(a, b, check_exact=True)


@st.composite
def column_sets(draw):
    n = draw(st.integers(0, 30))
    kinds = draw(st.lists(st.sampled_from("ifbO"), min_size=1, max_size=8))
    cols = {}
    for j, k in enumerate(kinds):
        cols[f"c{j}"] = np.array(draw(st.lists(KINDS[k], min_size=n, max_size=n)), dtype=DTYPES[k])
    uint = draw(st.booleans())
    if uint:
        cols["u"] = np.arange(n, dtype=np.uint16)
    return cols


@settings(max_examples=200, deadline=None)
@given(column_sets())
def test_frame_of_is_the_public_constructors_frame(cols):
    n = len(next(iter(cols.values())))
    fast = flows_mod.frame_of(cols)
    _same(fast, flows_mod._frame_of_public(cols, pd.RangeIndex(n)))
    idx = pd.RangeIndex(10, 10 + n)
    _same(flows_mod.frame_of(cols, idx), flows_mod._frame_of_public(cols, idx))
    # an object column stays object (pandas 3 would infer its str dtype from the public
    # constructor given a bare array)
    assert fast.columns.dtype == object
    for k, v in cols.items():
        assert fast[k].dtype == v.dtype


def test_frame_of_takes_the_public_way_without_the_private_constructor(monkeypatch):
    cols = {"a": np.array(["x", "y"], object), "b": np.array([1, 2], np.int64)}
    want = flows_mod.frame_of(cols)
    monkeypatch.setattr(flows_mod, "_FROM_ARRAYS", None)
    _same(flows_mod.frame_of(cols), want)
    with pytest.raises(ValueError):
        flows_mod.frame_of({"a": np.zeros(2), "b": np.zeros(3)})


SAMPLES = sorted(p for p in (ROOT / "samples" / "captures").iterdir() if p.suffix in (".pcap", ".pcapng"))


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_tables_the_same_without_the_private_constructor(path, monkeypatch):
    from kscc_traffic import decode, read_frames
    rules = load_rules(ROOT / "rules" / "kscc-cloud.toml")
    try:
        packets = decode(read_frames(str(path)))
    except Exception as e:  # (a sample that is an unreadable capture on purpose)
        pytest.skip(f"{path.name}: {e}")
    fast = analyze_batch(packets, rules, path.name).flows
    monkeypatch.setattr(flows_mod, "_FROM_ARRAYS", None)
    slow = analyze_batch(packets, rules, path.name).flows
    assert len(fast) > 0
    _same(fast, slow)


def test_with_columns_keeps_the_tables_columns_without_copying_them():
    """Session 48: ``inspect._with_columns`` joins the new columns to the table's own blocks (its
    caller's FlowTable keeps the table alive: a frame of them all at once held it twice, +54 MiB
    on a spray's 90,000 flows); the frame is the one columns set one by one give."""
    from kscc_traffic.inspect import _with_columns
    n = 5
    flows = flows_mod.frame_of({"ts": np.arange(n) / 2, "uid": np.array([f"C{i}" for i in range(n)], object),
                                "service": np.full(n, "", object), "orig_p": np.arange(n, dtype=np.int64),
                                "partial": np.zeros(n, bool)}, pd.RangeIndex(3, 3 + n))
    service = np.array(["ssl", "", "dns", "", "http"], object)
    cols = {"sni": np.array(["a", "b", "", "", "é"], object), "rtt": np.linspace(0, 1, n),
            "retries": np.arange(n, dtype=np.int64) * 2, "hello": np.ones(n, bool)}
    got = _with_columns(flows, service, cols)
    want = flows.copy()
    want["service"] = pd.Series(service, dtype=object, index=want.index)
    for k, v in cols.items():
        want[k] = pd.Series(v, dtype=v.dtype, index=want.index)
    _same(got, want)
    assert got.columns.tolist() == ["ts", "uid", "service", "orig_p", "partial", "sni", "rtt", "retries", "hello"]
    assert np.shares_memory(got["ts"].to_numpy(), flows["ts"].to_numpy())
    assert np.shares_memory(got["orig_p"].to_numpy(), flows["orig_p"].to_numpy())
    got.loc[3, "orig_p"] = 99                        # (copy on write: the table is not changed)
    assert flows.loc[3, "orig_p"] == 0 and flows["service"].tolist() == [""] * n
