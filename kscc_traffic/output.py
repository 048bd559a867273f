"""The analyze command's report, written while flows arrive batch by batch.

JSONL and CSV rows are written as each batch of finished flows arrives (so a capture of any size
is reported in bounded memory; rows come batch by batch, each batch in time order). The table
report needs every flow only for its counts: :class:`~kscc_traffic.report.TableSummary` keeps the
counts per purpose and verdict, the reasons, and the first flagged flows, and is printed at the end.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import IO, Callable, Union

import pandas as pd

from .rules import RuleSet

__all__ = ["FlowFilter", "FlowSink", "Render", "Rendered", "REASONS", "VERDICTS"]

#: the verdicts a flow can get (column ``verdict``)
VERDICTS = ("ok", "blocked", "unexpected", "unclassified")
#: the reasons a flow can get (column ``reason``: one of them, or several joined by commas,
#: ``partial`` added when the start was not captured; README's column table)
REASONS = ("no_answer", "rejected", "icmp_unreachable", "tls_failed", "tls_intercepted", "not_tls",
           "host_mismatch", "wrong_direction", "undocumented_port", "not_unicast", "one_way", "port_scan",
           "address_scan", "wrong_source", "dns_truncated", "partial")
#: how a filter names an empty purpose or reason
NONE = "none"

#: verdicts that make the run's exit status say "something to look at"
FLAGGED_VERDICTS = ("blocked", "unexpected")
#: ``--fail-on`` choice -> the verdicts that make the exit status 1 (``blocked``: a script that
#: asks "is anything blocked?" on a workstation capture, whose browser traffic on 80/443 to
#: other hosts is ``unexpected``/``host_mismatch``)
FAIL_ON = {"flagged": FLAGGED_VERDICTS, "blocked": ("blocked",)}
#: the ``--fail-on`` condition that holds when no flow is KSC agent traffic (the report's "No KSC
#: agent traffic" headline, no flow at all included: a capture taken on the wrong machine, a
#: ``live`` run that captured nothing)
NO_KSC = "no-ksc"
#: every ``--fail-on`` condition, in the order the help gives them
FAIL_ON_CHOICES = (*FAIL_ON, NO_KSC)


def fail_on_set(fail_on) -> frozenset:
    """The ``--fail-on`` conditions of ``fail_on``: one name, a comma list (``"flagged,no-ksc"``)
    or an iterable of either; a frozenset of names of :data:`FAIL_ON_CHOICES` (not checked here:
    :func:`fails` raises KeyError for another)."""
    parts = [fail_on] if isinstance(fail_on, str) else list(fail_on)
    return frozenset(v.strip() for x in parts for v in x.split(",") if v.strip())


def flagged_verdicts(flows: pd.DataFrame) -> frozenset:
    """The verdicts of :data:`FLAGGED_VERDICTS` among ``flows`` (a flow table with a ``verdict``
    column): a frozenset of str, empty for none."""
    if not len(flows):
        return frozenset()
    return frozenset(v for v in FLAGGED_VERDICTS if (flows["verdict"] == v).any())


def fails(verdicts, fail_on="flagged", ksc: bool = True) -> bool:
    """Whether flagged ``verdicts`` (:func:`flagged_verdicts`) make the exit status 1 under
    ``--fail-on fail_on`` (its conditions, :func:`fail_on_set`: keys of :data:`FAIL_ON` and
    :data:`NO_KSC`, any one that holds fails; KeyError for another). ``ksc`` False: no flow is KSC
    agent traffic (the report's "No KSC agent traffic" headline,
    :func:`kscc_traffic.report.no_ksc_traffic`, or no flow at all): the flagged flows are other
    programs', never a failure (newcomer 28 F4), and only :data:`NO_KSC` fails (newcomer 28 F5)."""
    wanted = fail_on_set(fail_on)
    listed = [FAIL_ON[w] for w in sorted(wanted - {NO_KSC})]
    if not ksc:
        return NO_KSC in wanted
    return any(v in verdicts for vs in listed for v in vs)


def ksc_seen(flows: pd.DataFrame, purposes: frozenset) -> bool:
    """Whether a flow of ``flows`` is KSC agent traffic (:func:`kscc_traffic.report.ksc_flows`):
    its ``purpose`` among ``purposes`` (:func:`kscc_traffic.report.ksc_purposes`, looked at first:
    vectorised), else a name that says so (:func:`kscc_traffic.report.ksc_named`: under
    kaspersky.com; read only then)."""
    if not len(flows):
        return False
    if "purpose" in flows and flows["purpose"].isin(purposes).any():
        return True
    from .report import ksc_named
    return bool(ksc_named(flows).any())


@dataclass(frozen=True)
class FlowFilter:
    """Which flows' rows a report writes (``analyze --verdict/--purpose/--reason``): those whose
    ``verdict`` is in ``verdicts``, whose ``purpose`` is in ``purposes`` and one of whose
    comma-separated ``reason`` parts is in ``reasons`` (:data:`NONE` stands for an empty purpose
    or reason); an empty set lets any value through. Values are not checked here (the command
    line checks them against :data:`VERDICTS`, the rules' purposes and :data:`REASONS`).
    Picklable (applied in a worker process by :class:`Render`)."""

    verdicts: frozenset = frozenset()
    purposes: frozenset = frozenset()
    reasons: frozenset = frozenset()

    def __bool__(self) -> bool:
        return bool(self.verdicts or self.purposes or self.reasons)

    def __call__(self, flows: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``flows`` (a flow table with ``verdict``, ``purpose`` and ``reason``) that
        pass, in their order (``flows`` itself when the filter is empty or every row passes)."""
        if not self or not len(flows):
            return flows
        keep = pd.Series(True, index=flows.index)
        if self.verdicts:
            keep &= flows["verdict"].isin(self.verdicts)
        if self.purposes:
            keep &= flows["purpose"].replace("", NONE).isin(self.purposes)
        if self.reasons:
            parts = flows["reason"].astype(str).replace("", NONE).str.split(",")
            keep &= parts.map(lambda rs: any(r in self.reasons for r in rs)).astype(bool)
        return flows if keep.all() else flows[keep.to_numpy()]

    def text(self) -> str:
        """The filter as its options: ``--verdict blocked --purpose ksn``."""
        return " ".join(f"--{opt} {','.join(sorted(vals))}" for opt, vals in
                        (("verdict", self.verdicts), ("purpose", self.purposes), ("reason", self.reasons)) if vals)


@dataclass(frozen=True)
class Rendered:
    """One batch of flows as report text (:class:`Render`): ``format`` (``jsonl`` or ``csv``),
    ``text`` (JSON Lines, or CSV with its header line), ``rows`` (flows written), ``flagged``
    (the verdicts of :data:`FLAGGED_VERDICTS` among all the batch's flows, those a
    :class:`FlowFilter` left out too: frozenset of str), ``flagged_rows`` (flows of those
    verdicts, written or not), ``ksc`` (a flow of the batch, written or not, is KSC agent traffic:
    :func:`ksc_seen`; True when not known)."""

    format: str
    text: str
    rows: int
    flagged: frozenset
    flagged_rows: int = 0
    ksc: bool = True


@dataclass(frozen=True)
class Render:
    """``Render(format)(flows) -> Rendered``: a batch's JSON Lines or CSV text, made where the batch
    is finished (a worker process: :class:`kscc_traffic.finishing.Finisher`), so the process that
    reads the capture only writes it out.
    ``format``: ``jsonl`` or ``csv``; ``keep``: the rows written (:class:`FlowFilter`; None: all);
    ``ksc_purposes``: the rules' KSC-only purposes (:func:`kscc_traffic.report.ksc_purposes`), for
    :attr:`Rendered.ksc` (None: not told, True).

    :raises ValueError: another format (the table needs the flows themselves).
    """

    format: str
    keep: FlowFilter | None = None
    ksc_purposes: frozenset | None = None

    def __post_init__(self) -> None:
        if self.format not in ("jsonl", "csv"):
            raise ValueError(f"no text rendering for the {self.format!r} report")

    def __call__(self, flows: pd.DataFrame) -> Rendered:
        from .report import write_csv, write_jsonl
        buf = io.StringIO()
        shown = self.keep(flows) if self.keep else flows
        (write_jsonl if self.format == "jsonl" else write_csv)(shown, buf)
        return Rendered(self.format, buf.getvalue(), len(shown), flagged_verdicts(flows), _flagged_rows(flows),
                        True if self.ksc_purposes is None else ksc_seen(flows, self.ksc_purposes))


def _flagged_rows(flows: pd.DataFrame, listed: tuple = FLAGGED_VERDICTS) -> int:
    """How many of ``flows`` are blocked or unexpected (or of another verdict of ``listed``)."""
    return int(flows["verdict"].isin(listed).sum()) if len(flows) else 0


class FlowSink:
    """Report writer for flows given batch by batch.

    :param format: ``table``, ``jsonl`` or ``csv``.
    :param out: text stream the report goes to.
    :param rules: the documented purposes (table report).
    :param console: ``f(out) -> rich.console.Console`` for the table report.
    :param capture_filter: a custom capture filter the flows were captured with (``live
        --filter``): the table says which purposes not seen it leaves out
        (:func:`kscc_traffic.report.print_summary`).
    :param keep: the flows whose rows are written (:class:`FlowFilter`: JSONL and CSV rows, the
        table's flagged flows, with a line saying how many of the flagged flows it shows); the
        table's counts and readiness checklist, and :meth:`fails`, are of all flows. None: all.
    """

    def __init__(self, format: str, out: IO[str], rules: RuleSet, console: Callable,
                 capture_filter: str | None = None, keep: FlowFilter | None = None) -> None:
        from .report import TableSummary
        self.capture_filter = capture_filter
        self.keep = keep if keep else None
        #: blocked or unexpected flows among all flows added (a filter's line says how many it shows)
        self.flagged_all = 0
        self._shown = TableSummary(rules=rules) if format == "table" and self.keep else None
        #: the verdicts whose flows the table lists: the flagged ones, and those ``--verdict``
        #: asks for explicitly (``--verdict unclassified``: those flows, not "0 of 0")
        self.listed = FLAGGED_VERDICTS + tuple(sorted(v for v in (self.keep.verdicts if self.keep else ())
                                                      if v not in FLAGGED_VERDICTS))
        if self._shown is not None:
            self._shown.listed = self.listed
        self.format = format
        self.out = out
        self.rules = rules
        self.console = console
        self.rows = 0
        #: a batch was being written when the run stopped (Ctrl-C): part of it may have been read
        self.writing = False
        #: the verdicts of :data:`FLAGGED_VERDICTS` written so far (set of str): :meth:`fails`
        self.verdicts: set = set()
        self.summary = TableSummary(rules=rules) if format == "table" else None
        self._header = False
        #: a flow added so far is KSC agent traffic (:func:`ksc_seen`): else :meth:`fails` is False
        self.ksc = False
        from .report import ksc_purposes
        self._ksc_purposes = frozenset(ksc_purposes(rules))

    @property
    def flagged(self) -> bool:
        """A flow written so far is blocked or unexpected."""
        return bool(self.verdicts)

    def fails(self, fail_on="flagged") -> bool:
        """Whether the flows written so far make the exit status 1 under ``--fail-on fail_on``
        (:func:`fails`: when none of them is KSC agent traffic, only with :data:`NO_KSC`)."""
        return fails(self.verdicts, fail_on, self.ksc)

    def render(self) -> Render | None:
        """What a batch can be made into before it reaches :meth:`add` (in the process that
        finishes it): :class:`Render` of this report's format, None for the table."""
        return Render(self.format, self.keep, self._ksc_purposes) if self.format in ("jsonl", "csv") else None

    def add(self, flows: Union[pd.DataFrame, Rendered]) -> None:
        """Write (or count) one batch of flows (columns :data:`kscc_traffic.analyze.COLUMNS`), or
        its text made by :meth:`render` (JSON Lines, CSV: the same bytes either way).

        :raises OSError: the output cannot be written.
        """
        from .outfile import write_all
        from .report import write_csv, write_jsonl
        if isinstance(flows, Rendered):
            self._add_text(flows)
            return
        if len(self.verdicts) < len(FLAGGED_VERDICTS):
            self.verdicts |= flagged_verdicts(flows)
        if not self.ksc:
            self.ksc = ksc_seen(flows, self._ksc_purposes)
        if self.keep:
            self.flagged_all += _flagged_rows(flows, self.listed)
            if self.summary is not None:
                self.summary.add(flows)           # (counts and checklist: every flow)
                shown = self.keep(flows)
                self._shown.add(shown[shown["verdict"].isin(self.listed)] if len(shown) else shown)
                self.rows += len(shown)
                return
            flows = self.keep(flows)
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

    def _add_text(self, r: Rendered) -> None:
        from .outfile import write_all
        if r.format != self.format:
            raise ValueError(f"a {r.format} batch given to the {self.format} report")
        self.verdicts |= r.flagged
        self.ksc = self.ksc or r.ksc
        self.flagged_all += r.flagged_rows
        text = r.text
        if self.format == "csv":
            if self._header:
                text = text[text.index("\n") + 1:] if r.rows else ""
            self._header = True
        self.writing = bool(r.rows)
        if text:
            write_all(self.out, text)
        self.rows += r.rows
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
            if self._shown is not None:   # the flagged flows kept, the counts of all
                self.summary.listed_from(self._shown)
            console = self.console(self.out)
            print_summary(self.summary, self.rules, console, self.capture_filter)
            if self._shown is not None:
                from rich.text import Text
                what = "Flagged flows" if self.listed == FLAGGED_VERDICTS else \
                    f"Flagged and {' and '.join(self.listed[len(FLAGGED_VERDICTS):])} flows"
                console.print(Text(f"{what} shown: {self._shown.flagged_total} of {self.flagged_all} "
                                   f"({self.keep.text()}); the counts and the checklist are of all flows"))
