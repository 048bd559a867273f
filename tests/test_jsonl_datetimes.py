"""JSONL of a table with datetime/timedelta columns (a notebook user's ``pd.to_datetime(ts_ns)``):
the epoch nanoseconds pandas' ``date_format="epoch"`` writes, without pandas 3's deprecation
warning (which a datetime index alone draws too)."""
import io
import warnings

import pandas as pd
import pytest

from kscc_traffic import report


def _frame() -> pd.DataFrame:
    df = pd.DataFrame({
        "uid": ["C1", "C2", "C3"],
        "t": pd.to_datetime([1_000_000_001, None, 3], unit="ns"),
        "d": pd.to_timedelta([5, 6, None], unit="s"),
        "z": pd.to_datetime([0, 1, 2], unit="s", utc=True).tz_convert("Europe/Berlin"),
        "ms": pd.to_datetime([0, 1, 2], unit="ms").astype("datetime64[ms]"),
    })
    df.index = pd.to_datetime([10, 20, 30], unit="s")
    return df


def test_datetime_columns_are_epoch_nanoseconds_without_a_warning():
    out = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report.write_jsonl(_frame(), out)
    assert out.getvalue().splitlines() == [
        '{"uid":"C1","t":1000000001,"d":5000000000,"z":0,"ms":0}',
        '{"uid":"C2","t":null,"d":6000000000,"z":1000000000,"ms":1000000}',
        '{"uid":"C3","t":3,"d":null,"z":2000000000,"ms":2000000}',
    ]


def test_same_text_as_pandas_epoch_format():
    df = _frame()
    out = io.StringIO()
    report.write_jsonl(df, out)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = df.reset_index(drop=True).to_json(orient="records", lines=True, **report._JSON_ARGS)
    assert out.getvalue() == (want if want.endswith("\n") else want + "\n")


def test_the_callers_table_is_not_changed():
    df = _frame()
    before = df.copy()
    report.write_jsonl(df, io.StringIO())
    pd.testing.assert_frame_equal(df, before)
    assert df["t"].dtype.kind == "M"


@pytest.mark.parametrize("kind", ["M", "m"])
def test_all_missing_column(kind):
    col = pd.Series([pd.NaT, pd.NaT], dtype="datetime64[ns]" if kind == "M" else "timedelta64[ns]")
    out = io.StringIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report.write_jsonl(pd.DataFrame({"uid": ["a", "b"], "x": col}), out)
    assert out.getvalue() == '{"uid":"a","x":null}\n{"uid":"b","x":null}\n'
