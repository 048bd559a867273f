"""The type of the column tables :data:`kscc_traffic.COLUMNS` and :data:`kscc_traffic.FLOW_COLUMNS`
(a module of its own: :mod:`kscc_traffic.flows` defines the one, :mod:`kscc_traffic.analyze` the
other from it)."""
from __future__ import annotations

import inspect

__all__ = ["Columns"]

_CLASS_DOC = """A table's columns, in order: ``name -> (dtype, unit, description)``, a ``dict`` of 3-tuples
    of ``str``.

    ``dtype`` is the pandas dtype of the column (``object`` for text: Python ``str`` values, ``''``
    when empty; ``int64``, ``float64``, ``bool``), ``unit`` its unit ('' when none: ``s``,
    ``s, epoch``, ``ns, epoch``, ``bytes``, ``packets``…), ``description`` one sentence on what it
    holds. :data:`kscc_traffic.COLUMNS` holds every column of the flow table of
    :func:`kscc_traffic.analyze`; :data:`kscc_traffic.FLOW_COLUMNS` the first of them, the Zeek
    ``conn.log``-like ones :func:`kscc_traffic.build_flows` makes (``ts`` … ``ts_ns``). Read one
    with ``kscc_traffic.COLUMNS["verdict"][2]``, or all with
    ``pd.DataFrame.from_dict(kscc_traffic.COLUMNS, orient="index", columns=["dtype", "unit",
    "description"])``. The README's "The flow table" section lists them, and docs/flow-table.md
    describes each at length (Zeek ``conn.log`` names and meanings, then what kscc-traffic adds).

    A table's own ``__doc__`` (what ``help(kscc_traffic.FLOW_COLUMNS)`` shows) is this text followed
    by :meth:`Columns.describe`: its columns, made from the table's entries when asked."""


class _Doc:
    """``Columns.__doc__``: the class's docstring read on the class, that text and the table's
    columns (:meth:`Columns.describe`) read on a table, so that ``help(table)`` lists them (pydoc
    documents an instance with a docstring of its own as data: its repr, then that docstring)."""

    def __get__(self, table, owner=None) -> str:
        return _CLASS_DOC if table is None else f"{inspect.cleandoc(_CLASS_DOC)}\n\n{table.describe()}"


class Columns(dict):
    __slots__ = ()
    __doc__ = _Doc()  # type: ignore[assignment]

    def describe(self) -> str:
        """The table's columns as text, made from its entries (str): a heading line
        ``Columns (N): name  dtype [unit]: description``, then per column, in order, a line
        ``name  dtype [unit]`` (no brackets when the unit is '') and its description indented
        under it."""
        lines = [f"Columns ({len(self)}): name  dtype [unit]: description"]
        for name, (dtype, unit, description) in self.items():
            lines.append(f"  {name}  {dtype}{f' [{unit}]' if unit else ''}")
            lines.append(f"      {description}")
        return "\n".join(lines)
