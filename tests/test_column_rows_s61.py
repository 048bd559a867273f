"""``flows.ColumnRows`` (session 61, memory): columns made as the rows of a few 2-D blocks, which
``flows.frame_of`` takes as the frame's blocks as they are. The frame is the one the same
columns give as separate arrays (filled in place, replaced, popped, added, a row under two
labels), shares the rows' memory instead of copying them, and ``inspect_flows`` tables are the
same with and without pandas' ``create_dataframe_from_blocks``."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT
from kscc_traffic import flows as flows_mod
from kscc_traffic.flows import ColumnRows, frame_of
from test_frame_of_s33 import _same

FILLS = {"i": st.integers(-2**63, 2**63 - 1), "f": st.floats(allow_nan=True, allow_infinity=True),
         "b": st.booleans(), "O": st.sampled_from(["", "tcp", "é\\x00", None])}


def _copied(cols: dict) -> pd.DataFrame:
    """The frame of ``cols``' arrays as separate arrays (each copied into a block by pandas)."""
    return frame_of({k: np.array(v) for k, v in cols.items()})


def _blocks(frame: pd.DataFrame) -> list[tuple[str, int]]:
    return sorted((str(b.dtype), b.shape[0]) for b in frame._mgr.blocks)


def test_fills_give_each_column_its_dtype_and_value():
    rows = ColumnRows(3, {"a": "", "b": False, "c": -1, "d": -1.0, "e": None, "f": np.array([3, 1, 2], np.int16),
                          "g": "x"})
    assert list(rows) == list("abcdefg")
    assert {k: str(v.dtype) for k, v in rows.items()} == {"a": "object", "b": "bool", "c": "int64", "d": "float64",
                                                         "e": "object", "f": "int16", "g": "object"}
    assert rows["a"].tolist() == ["", "", ""] and rows["e"].tolist() == [None] * 3 and rows["g"].tolist() == ["x"] * 3
    assert rows["b"].tolist() == [False] * 3 and rows["c"].tolist() == [-1] * 3 and rows["d"].tolist() == [-1.0] * 3
    assert rows["f"].tolist() == [3, 1, 2]
    # (a text fill: the one object in every row, as flows.repeated makes it)
    assert len({id(x) for x in rows["g"].tolist()}) == 1
    # one block per dtype, the columns its rows in the order given
    assert sorted((str(b.dtype), b.shape) for b in rows.blocks) == [
        ("bool", (1, 3)), ("float64", (1, 3)), ("int16", (1, 3)), ("int64", (1, 3)), ("object", (3, 3))]
    text = next(b for b in rows.blocks if b.dtype == object)
    assert np.shares_memory(rows["e"], text) and text[1].tolist() == [None] * 3


def test_a_fill_of_another_type_is_refused():
    with pytest.raises(TypeError, match="bytes fill"):
        ColumnRows(2, {"a": "", "b": b"x"})


def test_frame_takes_the_rows_as_they_are():
    n = 6
    rows = ColumnRows(n, {"sni": "", "n": 0, "cut": False, "rtt": -1.0, "why": "", "seen": np.arange(n) * 2})
    rows["sni"][[1, 4]] = ["a.example", "é"]
    rows["n"][2] = 7
    rows["cut"][5] = True
    want = _copied(rows)
    got = frame_of(rows, pd.RangeIndex(n))
    _same(got, want)
    for k, v in rows.items():
        assert np.shares_memory(got[k].to_numpy(), v), k
    # the block layout of the copying way: one block per dtype
    assert _blocks(got) == _blocks(want) == [("bool", 1), ("float64", 1), ("int64", 2), ("object", 2)]


def test_columns_replaced_popped_added_or_given_twice():
    n = 5
    rows = ColumnRows(n, {"a": "", "b": "", "c": "", "d": "", "x": 0, "y": 0})
    rows["b"] = np.array(list("vwxyz"), object)       # (replaced: its row is left out)
    rows.pop("d")                                      # (its row left out: the block ends before it)
    rows["c"][0] = "first"
    rows["e"] = np.arange(n, dtype=np.int64)           # (added)
    rows["x2"] = rows["x"]                             # (one row under two labels: copied once)
    want = _copied(rows)
    got = frame_of(rows)
    _same(got, want)
    assert list(got.columns) == ["a", "b", "c", "x", "y", "e", "x2"]
    assert np.shares_memory(got["a"].to_numpy(), rows["a"]) and np.shares_memory(got["c"].to_numpy(), rows["c"])
    assert np.shares_memory(got["x"].to_numpy(), rows["x"])
    assert not np.shares_memory(got["b"].to_numpy(), rows["b"])
    assert not np.shares_memory(got["x2"].to_numpy(), rows["x"])
    # a and c are rows 0 and 2 of the text block: two slices of it (b's row between them unused);
    # x and y one slice of the int64 block; b, and e with x2, copied into a block per dtype
    assert _blocks(got) == [("int64", 2), ("int64", 2), ("object", 1), ("object", 1), ("object", 1)]


def test_blocks_of_at_most_block_bytes(monkeypatch):
    monkeypatch.setattr(flows_mod, "BLOCK_BYTES", 3 * 4 * 8)     # (3 int64 columns of 4 rows)
    rows = ColumnRows(4, {f"c{j}": j for j in range(7)} | {"t": ""})
    assert [b.shape for b in rows.blocks] == [(3, 4), (3, 4), (1, 4), (1, 4)]
    got = frame_of(rows)
    _same(got, _copied(rows))
    assert _blocks(got) == [("int64", 1), ("int64", 3), ("int64", 3), ("object", 1)]
    assert got["c5"].tolist() == [5] * 4
    # (a column larger than the bound: a block of its own)
    monkeypatch.setattr(flows_mod, "BLOCK_BYTES", 8)
    assert [b.shape for b in ColumnRows(4, {"a": 1, "b": 2}).blocks] == [(1, 4), (1, 4)]


def test_without_pandas_blocks_constructor_the_columns_are_copied(monkeypatch):
    rows = ColumnRows(3, {"a": "", "b": 1})
    want = frame_of(rows)
    monkeypatch.setattr(flows_mod, "_FROM_BLOCKS", None)
    got = frame_of(rows)
    _same(got, want)
    assert not np.shares_memory(got["a"].to_numpy(), rows["a"])


@st.composite
def edited_rows(draw):
    n = draw(st.integers(0, 12))
    kinds = draw(st.lists(st.sampled_from("ifbO"), min_size=1, max_size=9))
    fills = {f"c{j}": draw(FILLS[k]) for j, k in enumerate(kinds)}
    if draw(st.booleans()):
        fills["arr"] = np.arange(n, dtype=np.int32)
    rows = ColumnRows(n, fills)
    for label in list(rows):
        what = draw(st.sampled_from(["keep", "set", "replace", "pop"]))
        if what == "set" and n:
            rows[label][draw(st.integers(0, n - 1))] = rows[label][0]
        elif what == "replace":
            rows[label] = np.array(rows[label][::-1])
        elif what == "pop":
            rows.pop(label)
    return n, rows


@settings(max_examples=200, deadline=None)
@given(edited_rows())
def test_frame_of_rows_is_the_frame_of_their_arrays(case):
    n, rows = case
    idx = pd.RangeIndex(4, 4 + n)
    got = frame_of(rows, idx)
    _same(got, frame_of({k: np.array(v) for k, v in rows.items()}, idx))


SAMPLES = sorted(p for p in (ROOT / "samples" / "captures").iterdir() if p.suffix in (".pcap", ".pcapng"))


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_inspected_tables_the_same_without_blocks_taken_as_they_are(path, monkeypatch):
    from kscc_traffic import decode, load_rules, read_frames
    from kscc_traffic.analyze import analyze_batch
    rules = load_rules(ROOT / "rules" / "kscc-cloud.toml")
    try:
        packets = decode(read_frames(str(path)))
    except Exception as e:  # (a sample that is an unreadable capture on purpose)
        pytest.skip(f"{path.name}: {e}")
    fast = analyze_batch(packets, rules, path.name).flows
    monkeypatch.setattr(flows_mod, "_FROM_BLOCKS", None)
    slow = analyze_batch(packets, rules, path.name).flows
    assert len(fast) > 0
    _same(fast, slow)
