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
    gives), the index a fresh :class:`pandas.RangeIndex`. Neither argument is changed."""
    both = pd.concat([flows, rows], ignore_index=True) if len(flows) else rows.reset_index(drop=True)
    return both.sort_values("ts_ns", kind="stable").reset_index(drop=True)
