"""The type of the column tables :data:`kscc_traffic.COLUMNS` and :data:`kscc_traffic.FLOW_COLUMNS`
(a module of its own: :mod:`kscc_traffic.flows` defines the one, :mod:`kscc_traffic.analyze` the
other from it)."""
from __future__ import annotations

__all__ = ["Columns"]


class Columns(dict):
    """A table's columns, in order: ``name -> (dtype, unit, description)``, a ``dict`` of 3-tuples
    of ``str``.

    ``dtype`` is the pandas dtype of the column (``object`` for text: Python ``str`` values, ``''``
    when empty; ``int64``, ``float64``, ``bool``), ``unit`` its unit ('' when none: ``s``,
    ``s, epoch``, ``ns, epoch``, ``bytes``, ``packets``…), ``description`` one sentence on what it
    holds. :data:`kscc_traffic.COLUMNS` holds every column of the flow table of
    :func:`kscc_traffic.analyze`; :data:`kscc_traffic.FLOW_COLUMNS` the first of them, the Zeek
    ``conn.log``-like ones :func:`kscc_traffic.build_flows` makes (``ts`` … ``ts_ns``). Read one
    with ``kscc_traffic.COLUMNS["verdict"][2]``, or all with
    ``pd.DataFrame.from_dict(kscc_traffic.COLUMNS, orient="index", columns=["dtype", "unit",
    "description"])``; docs/flow-table.md describes each column at length (the README lists them)
    (Zeek ``conn.log`` names and meanings, then what kscc-traffic adds)."""

    __slots__ = ()
