"""The notebook user's view of the library (session 30): the table helpers' dtypes stay the same
with and without rows, the time bins are exact UTC times, and no "$…$" of a name from packets is
typeset as mathematics by Jupyter's MathJax in the styled checklist."""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import kscc_traffic as kt

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "captures" / "blocked_agent.pcap"


@pytest.fixture(scope="module")
def flows():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kt.CaptureWarning)
        return kt.analyze(SAMPLE)


def _shape(t: pd.DataFrame):
    return (list(t.columns), [str(d) for d in t.dtypes], str(t.index.dtype), t.index.name,
            str(t.columns.dtype), t.columns.name)


@pytest.mark.parametrize("helper", ["purpose_breakdown", "server_names", "attempts_over_time"])
def test_table_helpers_same_columns_and_dtypes_without_rows(flows, helper):
    # an empty capture (or a filter leaving no flow) gave object columns for the counts of
    # server_names and attempts_over_time, a RangeIndex instead of attempts_over_time's times,
    # and an int64 purpose index for purpose_breakdown: a concat or a merge with another
    # capture's table changed dtypes, and .dt / resample on the empty one failed
    fn = getattr(kt, helper)
    full, empty = fn(flows), fn(flows.iloc[:0])
    assert len(full) and not len(empty)
    assert _shape(empty) == _shape(full)


def test_host_status_without_rows_has_text_labels(flows):
    full, empty = kt.host_status(flows), kt.host_status(flows.iloc[:0])
    assert len(full) and empty.shape == (0, 0)
    assert (empty.index.name, empty.columns.name) == (full.index.name, full.columns.name) == ("client", "purpose")
    assert str(empty.index.dtype) == str(full.index.dtype) and str(empty.columns.dtype) == str(full.columns.dtype)


def test_attempts_over_time_exact_utc_bin_starts(flows):
    # the bin starts were tz-naive and computed from float epoch seconds: 09:00:00.200000048
    # instead of 09:00:00.2; now datetime64[ns, UTC] from the exact ts_ns
    t = kt.attempts_over_time(flows, bins=60)
    assert str(t.index.dtype) == "datetime64[ns, UTC]" and t.index.name == "time"
    lo, hi = int(flows["ts_ns"].min()), int(flows["ts_ns"].max())
    want = [lo + (hi - lo) * k // 60 for k in range(60)]
    assert t.index.as_unit("ns").asi8.tolist() == want
    assert t.index[0] == pd.Timestamp(lo, unit="ns", tz="UTC")
    assert all(d == "int64" for d in t.dtypes.astype(str))
    assert int(t.to_numpy().sum()) == len(flows)
    assert t.loc[t.index[0], "blocked"] == (flows["ts_ns"] < want[1]).where(flows["verdict"] == "blocked", False).sum()
    # it lines up with the analyst's own resample of the same times (both UTC-aware)
    per_min = flows.set_index(pd.to_datetime(flows["ts_ns"], unit="ns", utc=True)).resample("1min").size()
    assert t.index[0].floor("1min") == per_min.index[0]


def test_attempts_over_time_without_ts_ns_column(flows):
    # a table read back from an older CSV without ts_ns: the float ts is used
    t = kt.attempts_over_time(flows.drop(columns="ts_ns"), bins=4)
    assert str(t.index.dtype) == "datetime64[ns, UTC]" and int(t.to_numpy().sum()) == len(flows)


def test_style_readiness_shows_dollar_signs_as_text_not_maths(flows):
    pytest.importorskip("jinja2", reason="jinja2 (pandas Styler) is in the test extra")
    checklist = kt.readiness(flows).copy()
    checklist.loc[checklist.index[0], "fix"] = "$\\\\color{red}{x}^2$ <b>"
    out = kt.style_readiness(checklist).to_html()
    table = re.search(r"<table[^>]*>", out).group(0)
    assert "tex2jax_ignore" in table and "mathjax_ignore" in table
    cell = re.search(r"<td[^>]*>([^<]*<span>\$</span>.*?)</td>", out).group(1)
    assert cell == "<span>$</span>\\\\color{red}{x}^2<span>$</span> &lt;b&gt;"
    # no two "$" in one run of text (MathJax pairs delimiters only there)
    for run in re.split(r"<[^>]+>", out):
        assert run.count("$") <= 1, run
