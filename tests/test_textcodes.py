"""The compiled text-column coding (kscc_traffic._textcodes, built by setup.py) against its
numpy/pandas fallback (classify._str_codes_py) and pandas.factorize: the same codes and texts on
any column; and the callers (classify._factorize, report._json_factorize) the same with and
without the compiled module."""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

import kscc_traffic.classify  # noqa: F401 (the module, not the function the package exports)
import kscc_traffic.report  # noqa: F401

classify = sys.modules["kscc_traffic.classify"]
report = sys.modules["kscc_traffic.report"]
_textcodes = pytest.importorskip("kscc_traffic._textcodes")

# texts that differ only in a trailing NUL, a case or a combining mark, as packets may carry them
_TEXTS = st.sampled_from(["", "a", "a\x00", "\x00", "A", "tcp", "udp", "é", "e\u0301", "x" * 40, "\ud800"])
_CELLS = st.one_of(_TEXTS, st.text(max_size=6))


def _column(cells: list, shared: bool) -> np.ndarray:
    """An object array of ``cells``; with ``shared``, equal texts one object (as a coded column
    taken back to its rows gives them), else each cell its own copy where the text allows."""
    out = np.empty(len(cells), dtype=object)
    out[:] = cells if shared else [c if type(c) is not str else "".join(list(c)) for c in cells]
    return out


@settings(max_examples=400, deadline=None)
@given(st.lists(_CELLS, max_size=60), st.booleans())
def test_compiled_codes_are_the_pandas_codes(cells, shared):
    values = _column(cells, shared)
    got = classify._str_codes(values)
    want = classify._str_codes_py(values)
    c, u = pd.factorize(values)
    assert got is not None and want is not None
    for codes, distinct in (got, want):
        assert codes.dtype == np.int64 and distinct.dtype == object
        assert codes.tolist() == c.tolist()
        assert distinct.tolist() == list(u) and all(type(t) is str for t in distinct.tolist())
        assert distinct[codes].tolist() == cells


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_CELLS, st.none(), st.booleans(), st.floats(allow_nan=True), st.integers(0, 3)),
                max_size=30))
def test_a_cell_that_is_no_str_gives_none(cells):
    values = _column(cells, True)
    expect_none = not all(type(c) is str for c in cells)
    assert (classify._str_codes(values) is None) == expect_none
    assert (classify._str_codes_py(values) is None) == expect_none


def test_str_subclass_is_no_str():
    """A str subclass (numpy's str_) is left to pandas, as other objects are."""
    values = _column(["a", np.str_("a"), "b"], True)
    assert classify._str_codes(values) is None and classify._str_codes_py(values) is None


def test_codes_checks_its_arguments():
    with pytest.raises(ValueError):
        _textcodes.codes(["a", "b"], np.zeros(3, np.int64))
    with pytest.raises(TypeError):
        _textcodes.codes(["a"], np.zeros(1, np.int32))
    with pytest.raises(TypeError):
        _textcodes.codes(np.array(["a"], dtype=object), np.zeros(1, np.int64))   # (a list only)
    ro = np.zeros(1, np.int64)
    ro.setflags(write=False)
    with pytest.raises((BufferError, ValueError)):
        _textcodes.codes(["a"], ro)
    assert ro.tolist() == [0]
    out = np.full(4, -7, np.int64)
    assert _textcodes.codes(["b", "a", "b", "b"], out) == ["b", "a"] and out.tolist() == [0, 1, 0, 0]
    assert _textcodes.codes([], np.zeros(0, np.int64)) == []


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(_CELLS, st.none(), st.booleans()), max_size=40), st.booleans())
def test_callers_same_without_the_module(cells, shared):
    """classify._factorize and report._json_factorize: the same codes and distinct values with
    the compiled coding and with the fallback, on columns of str, of bool, or mixed, missing
    values included; and pandas' codes where pandas gives them."""
    values = _column(cells, shared)
    saved = classify._textcodes
    try:
        with_c = (classify._factorize(values), report._json_factorize(values))
        classify._textcodes = None
        without = (classify._factorize(values), report._json_factorize(values))
    finally:
        classify._textcodes = saved
    for a, b in zip(with_c, without):
        assert (a is None) == (b is None)
        if a is not None:
            assert a[0].tolist() == b[0].tolist() and list(a[1]) == list(b[1])
    got = with_c[1]
    c, u = pd.factorize(values)
    assert got[0].tolist() == c.tolist() and list(got[1]) == list(u)


def test_factorize_first_value_with_trailing_nul():
    """A first text ending in NUL is not taken for the same text without it (numpy's string
    scalar drops trailing NULs: the fallback compares Python objects), in both versions."""
    values = _column(["a\x00", "a", "b", "a\x00"], True)
    for mod in (_textcodes, None):
        saved = classify._textcodes
        classify._textcodes = mod
        try:
            codes, distinct = classify._factorize(values)
        finally:
            classify._textcodes = saved
        assert codes.tolist() == [0, 1, 2, 0] and distinct.tolist() == ["a\x00", "a", "b"]
    mixed = _column(["a\x00", "a", True], True)      # (not all str: the compared path)
    codes, distinct = classify._factorize(mixed)
    assert codes.tolist() == [0, 1, 2] and distinct.tolist() == ["a\x00", "a", True]
