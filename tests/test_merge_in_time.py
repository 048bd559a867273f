"""chunked.merge_in_time against what each holder's release did before: pd.concat then a stable
sort on ts_ns, a RangeIndex (the numpy path and the pandas path give the same frame)."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from kscc_traffic.chunked import merge_in_time


def _reference(flows: pd.DataFrame, out: pd.DataFrame) -> pd.DataFrame:
    both = pd.concat([flows, out], ignore_index=True) if len(flows) else out.reset_index(drop=True)
    return both.sort_values("ts_ns", kind="stable").reset_index(drop=True)


def _same(got: pd.DataFrame, ref: pd.DataFrame) -> None:
    # (labels and their order compared; the label Index's own dtype aside: frame_of keeps labels
    # an object Index where pandas 3's concat infers str)
    assert got.columns.tolist() == ref.columns.tolist()
    pd.testing.assert_frame_equal(got, ref, check_exact=True, check_index_type=True, check_column_type=False)


def _frame(ts, uid_prefix, extra=None, index=None):
    n = len(ts)
    cols = {"ts_ns": np.asarray(ts, np.int64),
            "uid": np.array([f"{uid_prefix}{i}" for i in range(n)], dtype=object),
            "resp_p": np.arange(n, dtype=np.int64) + 23100,
            "duration": np.linspace(0.0, 1.0, n),
            "local_orig": np.arange(n) % 2 == 0}
    if extra:
        cols.update(extra)
    frame = pd.DataFrame(cols)
    for c, v in cols.items():
        if isinstance(v, np.ndarray) and v.dtype == object:
            frame[c] = pd.Series(v, dtype=object)
    if index is not None:
        frame.index = index
    return frame


def test_equal_times_keep_flows_rows_first_and_a_column_only_out_has_is_nan_in_flows_rows():
    flows = _frame([10, 20, 30], "F")
    out = _frame([20, 5], "O", extra={"refused_retry": np.array([(20, "C1"), None], dtype=object)})
    got = merge_in_time(flows, out)
    _same(got, _reference(flows, out))
    assert got["uid"].tolist() == ["O1", "F0", "F1", "O0", "F2"]
    assert got["refused_retry"].iloc[0] is None and got["refused_retry"].iloc[3] == (20, "C1")
    assert np.isnan(got["refused_retry"].iloc[1]) and got["refused_retry"].dtype == object
    assert isinstance(got.index, pd.RangeIndex)


def test_a_column_only_flows_has_and_a_non_range_index():
    flows = _frame([3, 1], "F", extra={"scan": np.array(["port_scan", ""], dtype=object)},
                   index=pd.Index([7, 9]))
    out = _frame([2], "O", index=pd.Index([4]))
    got = merge_in_time(flows, out)
    _same(got, _reference(flows, out))
    # (the rows of flows are not sorted among themselves here: the sort is over both)
    assert got["uid"].tolist() == ["F1", "O0", "F0"]


@pytest.mark.parametrize("case", ["dtype differs", "numeric only in out", "extension dtype", "empty flows"])
def test_what_the_numpy_path_does_not_take_goes_through_pandas_the_same(case):
    flows = _frame([1, 4], "F")
    out = _frame([2, 3], "O")
    if case == "dtype differs":
        out["resp_p"] = out["resp_p"].astype(float)
    elif case == "numeric only in out":
        out["orig_pkts"] = np.array([1, 2], np.int64)
    elif case == "extension dtype":
        flows["resp_p"] = flows["resp_p"].astype("Int64")
        out["resp_p"] = out["resp_p"].astype("Int64")
    else:
        flows = flows.iloc[:0]
    _same(merge_in_time(flows, out), _reference(flows, out))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=12), st.lists(st.integers(0, 5), min_size=1, max_size=12),
       st.booleans())
def test_any_times_the_same_as_pandas(a, b, extra):
    flows = _frame(a, "F")
    out = _frame(b, "O", extra={"stale_retry": np.array([None] * len(b), dtype=object)} if extra else None)
    _same(merge_in_time(flows, out), _reference(flows, out))
