"""Flow table -> what people read: a rich table, JSON Lines, CSV, a readiness checklist.

Every string that comes from packets (SNI, HTTP Host, DNS names) is untrusted:

- terminal output: control characters and escape sequences are shown as ``\\x1b``-style text and
  cells are rich ``Text`` objects, so ``[bold]``-like markup in a name is printed, not obeyed;
- CSV: a cell starting with ``=``, ``+``, ``-``, ``@``, tab or CR gets a leading ``'`` (the OWASP
  advice against formula injection);
- JSON Lines: always valid UTF-8; bytes that were not UTF-8 appear as ``\\xff`` text.
"""
from __future__ import annotations

import csv
import io
import re
from typing import IO, Iterable

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .rules import RuleSet

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

STATUS_ORDER = ("blocked", "unexpected", "verified", "not seen")

#: pandas timestamps end in 2262 and start in 1677; capture times beyond (damaged files, clamped
#: by the reader) are shown at those ends instead of raising
TS_LIMIT_S = 9.2e9


def clip_ts(seconds):
    """Epoch seconds (scalar or array) clipped to what pandas can turn into a timestamp."""
    return np.clip(seconds, -TS_LIMIT_S, TS_LIMIT_S)


def clean_utf8(s: str) -> str:
    """Undecodable bytes (kept as surrogates by ``surrogateescape``) -> ``\\xNN`` text, any other
    lone surrogate -> ``\\uNNNN`` text, so the result always encodes as UTF-8."""
    if not isinstance(s, str):
        return s
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return "".join(f"\\x{ord(ch) - 0xDC00:02x}" if 0xDC80 <= ord(ch) <= 0xDCFF
                       else f"\\u{ord(ch):04x}" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in s)


def escape_terminal(s) -> str:
    """Control characters and terminal escape sequences -> visible ``\\xNN`` text."""
    s = clean_utf8("" if s is None else str(s))
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                        else f"\\u{ord(m.group()):04x}", s)


def escape_csv(value):
    """Neutralise spreadsheet formulas in a CSV cell (strings only)."""
    if isinstance(value, str):
        value = clean_utf8(value)
        if value.startswith(_FORMULA_START):
            return "'" + value
    return value


def _clean_frame(flows: pd.DataFrame) -> pd.DataFrame:
    """Text columns made encodable as UTF-8 (see :func:`clean_utf8`); a column is checked with one
    encode of all its values and only mapped cell by cell when that fails."""
    out = flows
    for col in flows.columns:
        if flows[col].dtype != object:
            continue
        values = flows[col].tolist()
        try:
            "\x00".join(v for v in values if isinstance(v, str)).encode("utf-8")
        except UnicodeEncodeError:
            if out is flows:
                out = flows.copy()
            out[col] = [clean_utf8(v) for v in values]
    return out


def write_jsonl(flows: pd.DataFrame, out: IO[str]) -> None:
    """One JSON object per flow, all columns, UTF-8 (undecodable bytes as ``\\xNN`` text)."""
    if len(flows) == 0:
        return
    text = _clean_frame(flows).to_json(orient="records", lines=True, force_ascii=False,
                                       double_precision=15, date_unit="ns")
    out.write(text if text.endswith("\n") else text + "\n")


def write_csv(flows: pd.DataFrame, out: IO[str]) -> None:
    """CSV with a header row; formula-looking cells neutralised."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(list(flows.columns))
    for row in flows.itertuples(index=False):
        w.writerow([escape_csv(v) for v in row])


def readiness(flows: pd.DataFrame, rules: RuleSet) -> pd.DataFrame:
    """One row per documented purpose: ``rule`` (id), ``ports``, ``section``, ``status``
    (verified / blocked / unexpected / not seen), ``flows``, ``ok``, ``blocked``, ``unexpected``,
    ``reasons`` (the distinct reasons seen), ``fix`` (what to change, from the rule)."""
    rows = []
    for r in rules.rules:
        sub = flows[flows["purpose"] == r.id] if len(flows) else flows
        counts = sub["verdict"].value_counts() if len(sub) else pd.Series(dtype=int)
        ok, bl, un = (int(counts.get(k, 0)) for k in ("ok", "blocked", "unexpected"))
        status = "blocked" if bl else "unexpected" if un else "verified" if ok else "not seen"
        reasons = sorted({x.split(",")[0] for x in sub["reason"] if x and x != "partial"}) if len(sub) else []
        rows.append({"rule": r.id, "transport": r.transport, "ports": r.port_text, "section": r.section,
                     "purpose_text": r.purpose, "status": status, "flows": len(sub), "ok": ok,
                     "blocked": bl, "unexpected": un, "reasons": ", ".join(reasons), "fix": r.fix})
    return pd.DataFrame(rows)


_STATUS_STYLE = {"verified": "green", "blocked": "bold red", "unexpected": "yellow", "not seen": "dim"}
_VERDICT_STYLE = {"ok": "green", "blocked": "bold red", "unexpected": "yellow", "unclassified": "dim"}


def print_table(flows: pd.DataFrame, rules: RuleSet, console: Console, warnings: Iterable[str] = (),
                max_flagged: int = 40) -> None:
    """The default human report: flows per purpose, the readiness checklist, the flagged flows."""
    t = Table(title="Flows per purpose", title_justify="left")
    for col in ("purpose", "flows", "ok", "blocked", "unexpected", "unclassified"):
        t.add_column(col, justify="left" if col == "purpose" else "right")
    if len(flows):
        g = flows.assign(purpose=flows["purpose"].replace("", "(none)")) \
            .groupby("purpose")["verdict"].value_counts().unstack(fill_value=0)
        for purpose, row in g.iterrows():
            t.add_row(Text(escape_terminal(purpose)), str(int(row.sum())),
                      *(str(int(row.get(v, 0))) for v in ("ok", "blocked", "unexpected", "unclassified")))
    console.print(t)

    chk = readiness(flows, rules)
    c = Table(title="Readiness checklist (documented purposes)", title_justify="left")
    for col in ("section", "purpose", "transport/ports", "status", "flows", "reasons"):
        c.add_column(col)
    for r in chk.itertuples(index=False):
        c.add_row(r.section, r.rule, f"{r.transport} {r.ports}",
                  Text(r.status, style=_STATUS_STYLE[r.status]), str(r.flows), r.reasons)
    console.print(c)
    todo = chk[chk.status.isin(["blocked", "unexpected"])]
    if len(todo):
        console.print(Text("What to change:", style="bold"))
    for r in todo.itertuples(index=False):
        console.print(Text(f"  {r.rule} ({r.status}: {r.reasons}): {r.fix}"))

    flagged = flows[flows["verdict"].isin(["blocked", "unexpected"])] if len(flows) else flows
    if len(flagged):
        f = Table(title=f"Flagged flows ({len(flagged)})", title_justify="left")
        for col in ("time", "client", "server", "name", "purpose", "verdict", "reason", "detail"):
            f.add_column(col, overflow="fold")
        for r in flagged.head(max_flagged).itertuples(index=False):
            f.add_row(pd.Timestamp(float(clip_ts(r.ts)), unit="s").strftime("%H:%M:%S.%f")[:-3],
                      Text(f"{r.orig_h}:{r.orig_p}"),
                      Text(f"{r.proto} {r.resp_h}:{r.resp_p}"),
                      Text(escape_terminal(r.server_name or r.query)),
                      Text(r.purpose or "-"),
                      Text(r.verdict, style=_VERDICT_STYLE.get(r.verdict, "")),
                      Text(r.reason), Text(escape_terminal(r.detail)))
        console.print(f)
        if len(flagged) > max_flagged:
            console.print(f"… {len(flagged) - max_flagged} more flagged flows (use --format csv or jsonl)")
    total = len(flows)
    counts = flows["verdict"].value_counts() if total else {}
    console.print(Text(f"{total} flows: " + ", ".join(f"{int(counts.get(v, 0))} {v}" for v in
                                                     ("ok", "blocked", "unexpected", "unclassified"))))


def render_table(flows: pd.DataFrame, rules: RuleSet, width: int = 160) -> str:
    """The table report as plain text (no colour), e.g. for tests and files."""
    buf = io.StringIO()
    print_table(flows, rules, Console(file=buf, width=width, color_system=None, force_terminal=False))
    return buf.getvalue()
