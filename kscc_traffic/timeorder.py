"""Rows of flow tables put back in time order: what a holder of flows (:mod:`kscc_traffic.chunked`,
:mod:`kscc_traffic.scans`) lets go joins the rows leaving with a batch."""
from __future__ import annotations

import pandas as pd

__all__ = ["merge_in_time", "ties_by_uid"]


def ties_by_uid(flows: pd.DataFrame) -> pd.DataFrame:
    """``flows`` (a flow table in time order of first packet: ``ts_ns`` int64, not decreasing; a
    ``uid`` text column) with the rows of one ``ts_ns`` in order of their ``uid`` (which the flow's
    key and the capture's name give, whatever the engine or the order the analysis found the flows
    in: the builtin engine's held flows, DNS lookups answered without data, join a batch after the
    others, the tshark engine's do not; s57 bugs #4); ``flows`` itself when no two rows share a
    time (the usual case: no copy). Rows of different times keep their order; the index is a
    fresh :class:`pandas.RangeIndex` when rows moved."""
    import numpy as np

    n = len(flows)
    if n < 2 or "uid" not in flows.columns:
        return flows
    ts = flows["ts_ns"].to_numpy()
    tie = ts[1:] == ts[:-1]
    if not tie.any():
        return flows
    at = np.flatnonzero(np.r_[tie, False] | np.r_[False, tie])      # (rows sharing their time)
    _, rank = np.unique(flows["uid"].to_numpy(dtype=object)[at].astype(str), return_inverse=True)
    o = at[np.lexsort((rank, ts[at]))]
    if (o == at).all():
        return flows
    perm = np.arange(n)
    perm[at] = o
    return flows.iloc[perm].reset_index(drop=True)


def merge_in_time(flows: pd.DataFrame, rows: pd.DataFrame, *more: pd.DataFrame) -> pd.DataFrame:
    """``flows`` and ``rows`` (flow tables with an int64 ``ts_ns`` column, ns since the epoch) as
    one table in time order of first packet: a stable sort by ``ts_ns``, so rows of one
    timestamp keep their order, those of ``flows`` first. The columns are the union of both
    (``flows``' first, in order; a column one lacks is NaN in its rows, as :func:`pandas.concat`
    gives), the index a fresh :class:`pandas.RangeIndex`. Neither argument is changed. Tables
    ``more`` join as if concatenated to ``rows`` first.

    Plain tables (:func:`_merged_columns`) are joined column by column in numpy (a batch's
    leaving rows and the few a holder lets go: ~1.5 times faster than ``concat`` +
    ``sort_values``, two copies of every column; each column written once to its rows'
    places), the others by pandas: the same values and dtypes."""
    tables = [flows, rows, *more]
    if len(flows):
        both = _merged_columns(tables)
        if both is not None:
            return both
    if more:
        rows = pd.concat([rows, *more], ignore_index=True)
    both = pd.concat([flows, rows], ignore_index=True) if len(flows) else rows.reset_index(drop=True)
    return both.sort_values("ts_ns", kind="stable").reset_index(drop=True)


def _merged_columns(tables: list[pd.DataFrame]) -> pd.DataFrame | None:
    """:func:`merge_in_time` of plain tables in numpy: unique text labels, every column a numpy
    array of kind b, i, u, f or O, a column of several tables of the same dtype in each, a column
    some lack ``object`` or float in the others (NaN in the lacking ones' rows, as pandas fills
    them), ``ts_ns`` int64 in each. None for any other tables (pandas joins them then). The
    labels are an ``object`` Index (:func:`~kscc_traffic.flows.label_index`; pandas' join makes
    them ``str``): the same labels."""
    import numpy as np

    from .flows import arrays_of, frame_of

    labels: list = []
    seen: set = set()
    for t in tables:
        if not t.columns.is_unique or "ts_ns" not in t.columns:
            return None
        for c in t.columns.tolist():
            if c not in seen:
                if not isinstance(c, str):
                    return None
                seen.add(c)
                labels.append(c)
    got = [arrays_of(t) for t in tables]
    sizes = [len(t) for t in tables]
    out = {}
    for c in labels:
        # (one dtype among the tables that have the column, each array 1-D numpy; looked at in
        # one loop: a batch's ~90 columns are merged every batch)
        have = [a.get(c) for a in got]
        dtype, lacking = None, False
        for x in have:
            if x is None:
                lacking = True
            elif not isinstance(x, np.ndarray) or x.ndim != 1 or (dtype is not None and x.dtype != dtype):
                return None
            else:
                dtype = x.dtype
        if dtype.kind not in "biufO" or (lacking and dtype.kind not in "fO"):
            return None
        out[c] = (dtype, have)
    ts = out["ts_ns"][1]
    if ts[0].dtype != np.int64:
        return None
    # each table's rows' places in the merged table (the inverse of the stable order), then each
    # column written there table by table: one copy of its values, not a concatenation and a take
    total = sum(sizes)
    order = np.argsort(np.concatenate(ts), kind="stable")
    dest = np.empty(total, np.intp)
    dest[order] = np.arange(total, dtype=np.intp)
    bounds = np.cumsum([0, *sizes]).tolist()
    places = [dest[lo:hi] for lo, hi in zip(bounds, bounds[1:])]
    fill = [(i, at) for i, at in enumerate(places) if len(at)]    # (the tables with rows)
    merged = {}
    for c, (dtype, have) in out.items():
        col = np.empty(total, dtype)
        for i, at in fill:
            x = have[i]
            col[at] = np.nan if x is None else x
        merged[c] = col
    return frame_of(merged)
