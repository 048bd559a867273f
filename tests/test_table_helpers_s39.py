"""merge_in_time (the held rows a holder lets go put back in time order) and _StaleRetries._near
(which leaving rows may be a held row's retry)."""
import numpy as np
import pandas as pd

from kscc_traffic.chunked import _RefusedRetries, _StaleRetries
from kscc_traffic.flows import VLAN_STACK
from kscc_traffic.timeorder import merge_in_time


def test_merge_in_time_stable_flows_first_on_ties():
    flows = pd.DataFrame({"ts_ns": np.array([10, 30, 30, 50], np.int64), "uid": ["a", "b", "c", "d"]},
                         index=[7, 8, 9, 10])
    rows = pd.DataFrame({"ts_ns": np.array([30, 5, 60], np.int64), "uid": ["x", "y", "z"],
                         "extra": ["e1", "e2", "e3"]}, index=[0, 1, 2])
    out = merge_in_time(flows, rows)
    assert out["uid"].tolist() == ["y", "a", "b", "c", "x", "d", "z"]
    assert out["ts_ns"].dtype == np.int64
    assert list(out.columns) == ["ts_ns", "uid", "extra"]
    assert out.index.equals(pd.RangeIndex(7))
    # (a column flows lack: NaN in their rows, as pandas.concat gives)
    extra = out["extra"].tolist()
    assert extra[0] == "e2" and extra[4] == "e1" and extra[6] == "e3"
    assert all(pd.isna(extra[i]) for i in (1, 2, 3, 5))
    # (neither argument changed)
    assert flows.index.tolist() == [7, 8, 9, 10] and len(rows.columns) == 3


def test_merge_in_time_no_flows_sorts_rows():
    rows = pd.DataFrame({"ts_ns": np.array([3, 1, 2], np.int64), "uid": ["c", "a", "b"]}, index=[5, 6, 7])
    out = merge_in_time(rows.iloc[:0], rows)
    assert out["uid"].tolist() == ["a", "b", "c"] and out.index.equals(pd.RangeIndex(3))


def _frame(rows):
    cols = ("orig_h", "orig_p", "resp_h", "resp_p")
    df = pd.DataFrame(rows, columns=cols)
    df[VLAN_STACK] = 0
    return df


def test_near_needs_port_and_client_of_a_held_row():
    s = _StaleRetries()
    s.keys[s._key(("198.18.0.1", 40000, "203.0.113.5", 23101, 0))] = 1
    s.keys[s._key(("198.18.0.2", 40001, "203.0.113.5", 23101, 0))] = 1
    df = _frame([("198.18.0.1", 40000, "203.0.113.5", 23101),     # the held key itself
                 ("198.18.0.9", 40000, "203.0.113.5", 23101),     # the port, another client
                 ("198.18.0.2", 40000, "203.0.113.5", 23101),     # a held client with the other's port
                 ("198.18.0.1", 41000, "203.0.113.5", 23101)])    # the client, another port
    assert s._near(df).tolist() == [True, False, True, False]


def test_near_refused_retries_keys_on_server_port():
    r = _RefusedRetries()
    r.keys[r._key(("198.18.0.1", "203.0.113.5", 23101, 0))] = 1
    df = _frame([("198.18.0.1", 50000, "203.0.113.5", 23101),
                 ("198.18.0.1", 50001, "203.0.113.5", 443),
                 ("198.18.0.3", 50002, "203.0.113.5", 23101)])
    assert r._near(df).tolist() == [True, False, False]
    assert r._near(df.iloc[:0]).tolist() == []


def _wide():
    n = 5
    df = pd.DataFrame({"i": np.arange(n, dtype=np.int64), "f": np.linspace(0, 1, n), "b": np.arange(n) % 2 == 0,
                       "o": pd.Series(["a", "b", None, "d", "e"], dtype=object),
                       "s": pd.Series(["x", "y", "z", None, "w"], dtype="str"),
                       "n": pd.array([1, None, 3, 4, 5], dtype="Int64"),
                       "c": pd.Categorical(["p", "q", "p", "q", "p"]),
                       "u": np.arange(n, dtype=np.uint16), "o2": pd.Series([1, "t", 2.5, None, b"x"], dtype=object)})
    df["late"] = np.arange(n) * 10          # (a column added afterwards: a block of its own)
    return df


def _same(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    assert all((x is y) or (x == y) or (pd.isna(x) and pd.isna(y)) for x, y in zip(a.tolist(), b.tolist()))


def test_arrays_of_gives_what_to_numpy_gives():
    from kscc_traffic.flows import arrays_of
    df = _wide()
    got = arrays_of(df)
    assert list(got) == list(df.columns)
    for c in df.columns:
        _same(got[c], df[c].to_numpy())
        # (a view of the frame's memory read-only, as to_numpy's; an extension column's a copy)
        assert got[c].flags.writeable == df[c].to_numpy().flags.writeable
    assert np.shares_memory(got["i"], df["i"].to_numpy())
    some = arrays_of(df, ["late", "o", "i", "s", "f", "n"])
    assert list(some) == ["late", "o", "i", "s", "f", "n"]
    _same(some["late"], np.arange(5) * 10)
    # (a few columns, repeated labels: the public way, the same arrays)
    _same(arrays_of(df, ["f", "i"])["f"], df["f"].to_numpy())
    dup = df[["i", "f", "o"]].copy()
    dup.columns = ["i", "i", "o"]
    assert arrays_of(dup, ["o"])["o"].tolist() == ["a", "b", None, "d", "e"]
    try:
        arrays_of(df, ["i", "f", "b", "o", "nope"])
    except KeyError:
        pass
    else:
        raise AssertionError("a missing column must raise KeyError")


def test_arrays_of_leaves_the_frame_writable_and_unchanged():
    from kscc_traffic.flows import arrays_of
    df = _wide()
    before = df.copy()
    arrays_of(df)
    df.loc[0, "i"] = 99                      # (the frame itself still writable)
    assert df["i"].tolist()[0] == 99 and before["i"].tolist()[0] == 0
    pd.testing.assert_frame_equal(df.drop(columns="i"), before.drop(columns="i"))
