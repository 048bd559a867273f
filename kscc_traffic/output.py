"""The analyze command's report, written while flows arrive batch by batch.

JSONL and CSV rows are written as each batch of finished flows arrives (so a capture of any size
is reported in bounded memory; rows come batch by batch, each batch in time order). The table
report needs every flow only for its counts: :class:`~kscc_traffic.report.TableSummary` keeps the
counts per purpose and verdict, the reasons, and the first flagged flows, and is printed at the end.
"""
from __future__ import annotations

import io
from typing import IO, Callable

import pandas as pd

from .rules import RuleSet

__all__ = ["FlowSink"]


class FlowSink:
    """Report writer for flows given batch by batch.

    :param format: ``table``, ``jsonl`` or ``csv``.
    :param out: text stream the report goes to.
    :param rules: the documented purposes (table report).
    :param console: ``f(out) -> rich.console.Console`` for the table report.
    """

    def __init__(self, format: str, out: IO[str], rules: RuleSet, console: Callable) -> None:
        from .report import TableSummary
        self.format = format
        self.out = out
        self.rules = rules
        self.console = console
        self.rows = 0
        #: a batch was being written when the run stopped (Ctrl-C): part of it may have been read
        self.writing = False
        self.flagged = False
        self.summary = TableSummary() if format == "table" else None
        self._header = False

    def add(self, flows: pd.DataFrame) -> None:
        """Write (or count) one batch of flows (columns :data:`kscc_traffic.analyze.COLUMNS`).

        :raises OSError: the output cannot be written.
        """
        from .outfile import write_all
        from .report import write_csv, write_jsonl
        if len(flows) and not self.flagged:
            self.flagged = bool(flows["verdict"].isin(["blocked", "unexpected"]).any())
        self.writing = self.format != "table" and len(flows) > 0
        if self.format == "jsonl":
            write_jsonl(flows, self.out)
        elif self.format == "csv":
            if not self._header:
                write_csv(flows, self.out)
                self._header = True
            elif len(flows):
                # later batches: the same CSV without its header line
                buf = io.StringIO()
                write_csv(flows, buf)
                text = buf.getvalue()
                write_all(self.out, text[text.index("\n") + 1:])
        else:
            self.summary.add(flows)
        self.rows += len(flows)
        self.writing = False

    def close(self, warnings=()) -> None:
        """Finish the report (the table is printed now).

        :raises OSError: the output cannot be written.
        """
        from .report import print_summary
        if self.format == "csv" and not self._header:
            from .analyze import _schema
            self.add(_schema(pd.DataFrame()))
        if self.summary is not None:
            print_summary(self.summary, self.rules, self.console(self.out))
