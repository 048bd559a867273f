"""merge_in_time's numpy join (timeorder._merged_columns) against pandas' concat + stable sort: the
same rows, values (the same objects in object columns), dtypes and labels, on tables of every
column kind, columns only one side has, ties in time; and tables it leaves to pandas."""
import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from kscc_traffic.timeorder import _merged_columns, merge_in_time


def _pandas_merge(flows, rows):
    both = pd.concat([flows, rows], ignore_index=True)
    return both.sort_values("ts_ns", kind="stable").reset_index(drop=True)


def _same(got, want):
    assert list(got.columns) == list(want.columns)
    assert got.index.equals(pd.RangeIndex(len(want)))
    for c in want.columns:
        g, w = got[c], want[c]
        assert g.dtype == w.dtype, c
        if w.dtype == object:
            # (the same objects, or equal ones of one type where pandas boxes numbers; NaN where
            # pandas fills a lacking column)
            assert all(a is b or (type(a) is type(b) and not isinstance(a, (str, tuple)) and a == b)
                       or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))
                       for a, b in zip(g.tolist(), w.tolist())), c
        else:
            assert np.array_equal(g.to_numpy(), w.to_numpy(), equal_nan=w.dtype.kind == "f"), c


_TEXTS = ["", "tcp", "udp", "198.51.100.7", "a\x00b", "é\u0301", None, ("x", 1)]


def _frame(n, ts, cols, draw):
    out = {"ts_ns": np.array(ts, np.int64)}
    for name, kind in cols:
        if kind == "i":
            out[name] = np.array(draw(st.lists(st.integers(-2**63, 2**63 - 1), min_size=n, max_size=n)), np.int64)
        elif kind == "f":
            out[name] = np.array(draw(st.lists(st.floats(allow_nan=True), min_size=n, max_size=n)), float)
        elif kind == "b":
            out[name] = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), bool)
        else:
            vals = draw(st.lists(st.sampled_from(_TEXTS), min_size=n, max_size=n))
            col = np.empty(n, object)
            col[:] = vals if n else []
            out[name] = col
    frame = pd.DataFrame({k: pd.Series(v, dtype=v.dtype) for k, v in out.items()})
    frame.columns = pd.Index(list(frame.columns), dtype=object)
    return frame


@st.composite
def _tables(draw):
    kinds = draw(st.lists(st.sampled_from("ifbO"), min_size=1, max_size=6))
    cols = [(f"c{i}", k) for i, k in enumerate(kinds)]
    n = draw(st.integers(1, 30))
    m = draw(st.integers(0, 8))
    ts = sorted(draw(st.lists(st.integers(0, 20), min_size=n, max_size=n)))
    rts = draw(st.lists(st.integers(0, 20), min_size=m, max_size=m))
    flows = _frame(n, ts, cols, draw)
    # (the held rows: an object column of their own, as a holder's retry column)
    rows = _frame(m, rts, cols + [("extra", "O")], draw)
    return flows, rows


@settings(max_examples=200, deadline=None)
@given(_tables())
def test_numpy_join_is_pandas_join(tables):
    flows, rows = tables
    assert _merged_columns([flows, rows]) is not None
    _same(merge_in_time(flows, rows), _pandas_merge(flows, rows))


def test_ties_keep_flows_first_and_lacking_object_column_is_nan():
    flows = pd.DataFrame({"ts_ns": np.array([10, 30, 30, 50], np.int64), "uid": ["a", "b", "c", "d"]},
                         index=[7, 8, 9, 10]).astype({"uid": object})
    rows = pd.DataFrame({"ts_ns": np.array([30, 5, 60], np.int64), "uid": ["x", "y", "z"],
                         "extra": [("e", 1), None, "e3"]}).astype({"uid": object, "extra": object})
    assert _merged_columns([flows, rows]) is not None
    out = merge_in_time(flows, rows)
    assert out["uid"].tolist() == ["y", "a", "b", "c", "x", "d", "z"]
    assert out["extra"].tolist()[4] == ("e", 1) and out["extra"].tolist()[0] is None
    assert all(isinstance(v, float) and math.isnan(v) for v in out["extra"].tolist()[1:4])
    _same(out, _pandas_merge(flows, rows))
    # (the labels an object Index, as flows.label_index makes them)
    assert out.columns.dtype == object


def test_left_to_pandas_when_a_lacking_column_is_no_object_or_float():
    # (pandas makes an int column lacking in one side float, a bool one object: its own rules)
    flows = pd.DataFrame({"ts_ns": np.array([1, 3], np.int64), "n": np.array([1, 2], np.int64)})
    rows = pd.DataFrame({"ts_ns": np.array([2], np.int64), "n": np.array([5], np.int64),
                         "k": np.array([7], np.int64), "b": np.array([True])})
    assert _merged_columns([flows, rows]) is None
    out = merge_in_time(flows, rows)
    assert out["n"].tolist() == [1, 5, 2] and out["k"].dtype == float and out["b"].dtype == object
    _same(out, _pandas_merge(flows, rows))


def test_left_to_pandas_when_dtypes_differ_or_extension():
    flows = pd.DataFrame({"ts_ns": np.array([1, 3], np.int64), "v": np.array([1, 2], np.int64)})
    rows = pd.DataFrame({"ts_ns": np.array([2], np.int64), "v": np.array([0.5])})
    assert _merged_columns([flows, rows]) is None
    _same(merge_in_time(flows, rows), _pandas_merge(flows, rows))
    flows = pd.DataFrame({"ts_ns": np.array([1, 3], np.int64), "p": pd.array([1, None], dtype="UInt16")})
    rows = pd.DataFrame({"ts_ns": np.array([2], np.int64), "p": pd.array([9], dtype="UInt16")})
    assert _merged_columns([flows, rows]) is None
    out = merge_in_time(flows, rows)
    assert out["p"].dtype == "UInt16" and out["p"].tolist() == [1, 9, pd.NA]


def test_arguments_unchanged():
    flows = pd.DataFrame({"ts_ns": np.array([4, 8], np.int64), "u": np.array(["a", "b"], object)}, index=[3, 4])
    rows = pd.DataFrame({"ts_ns": np.array([6], np.int64), "u": np.array(["c"], object)}, index=[9])
    merge_in_time(flows, rows)
    assert flows.index.tolist() == [3, 4] and rows.index.tolist() == [9]
    assert flows["u"].tolist() == ["a", "b"] and rows["u"].tolist() == ["c"]


@settings(max_examples=100, deadline=None)
@given(_tables(), _tables())
def test_several_row_tables_join_as_one(a, b):
    # (a holder's released rows from two held parts: as if concatenated first; columns of one
    # label and different dtypes in the two are left to pandas)
    flows, rows = a
    more = b[1]
    _same(merge_in_time(flows, rows, more), _pandas_merge(flows, pd.concat([rows, more], ignore_index=True)))
