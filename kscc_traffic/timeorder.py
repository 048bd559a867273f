"""Rows of flow tables put back in time order: what a holder of flows (:mod:`kscc_traffic.chunked`,
:mod:`kscc_traffic.scans`) lets go joins the rows leaving with a batch."""
from __future__ import annotations

import pandas as pd

__all__ = ["merge_in_time"]


def merge_in_time(flows: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """``flows`` and ``rows`` (flow tables with an int64 ``ts_ns`` column, ns since the epoch) as
    one table in time order of first packet: a stable sort by ``ts_ns``, so rows of one
    timestamp keep their order, those of ``flows`` first. The columns are the union of both
    (``flows``' first, in order; a column one lacks is NaN in its rows, as :func:`pandas.concat`
    gives), the index a fresh :class:`pandas.RangeIndex`. Neither argument is changed.

    Plain tables (:func:`_merged_columns`) are joined column by column in numpy (a batch's
    leaving rows and the few a holder lets go: ~3 times faster than ``concat`` + ``sort_values``,
    two copies of every column), the others by pandas: the same values and dtypes."""
    if len(flows):
        both = _merged_columns(flows, rows)
        if both is not None:
            return both
    both = pd.concat([flows, rows], ignore_index=True) if len(flows) else rows.reset_index(drop=True)
    return both.sort_values("ts_ns", kind="stable").reset_index(drop=True)


def _merged_columns(flows: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame | None:
    """:func:`merge_in_time` of two plain tables in numpy: unique text labels, every column a
    numpy array of kind b, i, u, f or O, a column in both of the same dtype in both, a column
    one lacks ``object`` or float in the other (NaN in the lacking one's rows, as pandas fills
    them), ``ts_ns`` int64 in both. None for any other tables (pandas joins them then). The
    labels are an ``object`` Index (:func:`~kscc_traffic.flows.label_index`; pandas' join makes
    them ``str``): the same labels."""
    import numpy as np

    from .flows import arrays_of, frame_of

    fc, rc = flows.columns, rows.columns
    if not (fc.is_unique and rc.is_unique) or "ts_ns" not in fc or "ts_ns" not in rc:
        return None
    labels = fc.tolist()
    labels += [c for c in rc.tolist() if c not in fc]
    if not all(isinstance(c, str) for c in labels):
        return None
    a, b = arrays_of(flows), arrays_of(rows)
    n, m = len(flows), len(rows)
    out = {}
    for c in labels:
        x, y = a.get(c), b.get(c)
        if x is None or y is None:
            have = x if x is not None else y
            if not isinstance(have, np.ndarray) or have.ndim != 1 or have.dtype.kind not in "fO":
                return None
            gap = np.full(m if y is None else n, np.nan, have.dtype)
            out[c] = (x, gap) if y is None else (gap, y)
            continue
        if not (isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and x.ndim == y.ndim == 1
                and x.dtype == y.dtype and x.dtype.kind in "biufO"):
            return None
        out[c] = (x, y)
    ts = out["ts_ns"]
    if ts[0].dtype != np.int64:
        return None
    order = np.argsort(np.concatenate(ts), kind="stable")
    return frame_of({c: np.concatenate(p).take(order) for c, p in out.items()})
