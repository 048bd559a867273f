"""The flow table as ONE self-contained HTML file (``kscc-traffic report CAPTURE… --html FILE``).

What the page holds, top to bottom:

1. a summary (captures, flows per verdict, the rules used, reader warnings);
2. the readiness checklist: every documented purpose with its status in colour *and* words;
   then, when there are any, the DNS names answered with an error (NXDOMAIN, REFUSED, …), with
   their counts (at most :data:`MAX_DNS_ERROR_ROWS` rows);
3. the charts of :mod:`kscc_traffic.plots` (verdicts per purpose, flows and bytes per purpose,
   attempts over time, clients × failing purposes) as inlined PNG images;
4. clients × purposes (worst verdict) and the server names per purpose;
5. the flagged flows, grouped by purpose, each group with what the vendor page says the port is
   for (English digest and the German original) and what to change (the rule's ``fix``);
6. every flow in a table that sorts (click a column header) and filters (text, verdict, purpose).

Offline and safe by construction:

- no external resource: CSS and the ~60 lines of JavaScript are inline, images are ``data:`` URIs;
  a Content-Security-Policy ``<meta>`` forbids every fetch (``default-src 'none'``) and allows
  only the page's own script and style, by SHA-256 hash;
- every string that reaches the HTML goes through :func:`_e` (control characters made visible as
  ``\\x1b``-style text, then :func:`html.escape` with quotes), so a capture whose SNI is
  ``<script>alert(1)</script>`` shows exactly that as text; the script reads table cells with
  ``textContent`` and never writes HTML; no packet-derived string is put into the script.

API::

    html = render_html(flows, rules, captures={"a.pcap": stats})   # -> str
    write_html("report.html", flows, rules)                          # UTF-8; a regular file atomically
"""
from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import html
import io
import os
import re
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from . import plots
from .attempts import grouped, with_summary
from .addresses import endpoint_text
from .classify import DNS_TCP_RESET
from .natadvice import copies_text
from .report import nat_copies_note, nat_copy_mask, nat_copy_rows
from .report import (AAAA_ONLY_RCODE, CUT_SHORT_REASON, REASON_TEXT, clip_ts, cut_short, dns_error_meanings, dns_error_verdicts, dns_errors,
                     console_names, dns_blocked_kinds, dns_fix, one_way_capture, ResolverAnswers, dns_reason_texts, escape_terminal, host_mismatch_reason_text, icmp_reason_text,
                     readiness, rejected_reason_text, several_captures_note, captures_without_ksc, no_ksc_capture_note, time_texts, undocumented_fix, vendor_names,
                     wrong_direction_reason_text, INBOUND_STARTS, ksc_flows, cut_unnamed, silent_proxies, no_ksc_traffic, NO_FLOWS, NOT_KSC_FIX, NOT_KSC_NOTE, JOINED_NOTE, VENDOR_NOTE, to_verify, client_details,
                     intercepted_cause, intercepted_text, unquoted_details,
                     flagged_rank, cloud_refusals, icmp_column, ksc_purposes, port_unreachable, scan_lines_of)
from .rules import Rule, RuleSet

__all__ = ["render_html", "write_html", "REASON_TEXT"]

#: DNS names with an error answer listed at most (the most frequent first)
MAX_DNS_ERROR_ROWS = 50

_STATUS_SYMBOL = {"verified": "✓", "blocked": "✕", "unexpected": "!", "port open": "?", "seen one-way": "→",
                  "not seen": "–"}
_VERDICT_SYMBOL = {"ok": "✓", "blocked": "✕", "unexpected": "!", "unclassified": "·"}

#: the badge of a flagged purpose's heading when no flow is KSC agent traffic (the headline), instead
#: of the red "blocked" the checklist does not say (newcomer 31 F3)
NOT_KSC_BADGE = "other programs' flows"
#: the line above the charts then
NOT_KSC_CHARTS = ("No flow is KSC agent traffic (see the headline): what the charts show per purpose are other "
                  "programs' flows on the purposes' ports.")
#: the line above the flagged purposes then
NOT_KSC_SECTION = ("No flow is KSC agent traffic (see the headline): the flows below are other programs' flows on "
                   "the purposes' ports. Their verdicts are the rules' (a blocked flow here is another program's "
                   "connection that failed), not the readiness of KSC: the checklist says the purposes were not seen.")

_CSS = (":root{" + "".join(f"--{k}:{c};" for k, c in plots.VERDICT_COLORS.items())
        + "--fg:#1d2327;--muted:#5f6b73;--line:#d9dee2;--bg2:#f5f7f8}") + """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--fg);margin:0;padding:0 24px 48px;max-width:1500px}
h1{font-size:24px;margin:20px 0 4px}h2{font-size:19px;margin:32px 0 8px;padding-top:8px;border-top:2px solid var(--line)}
h3{font-size:16px;margin:0 0 8px}
.meta{color:var(--muted);margin:2px 0}
nav a{margin-right:14px}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:14px 0}
.card{border:1px solid var(--line);border-radius:6px;padding:8px 14px;min-width:110px}
.card b{display:block;font-size:22px}
.card.k-blocked b{color:var(--blocked)}.card.k-unexpected b{color:var(--unexpected)}.card.k-ok b{color:var(--ok)}
table{border-collapse:collapse;margin:6px 0 14px}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
th{background:var(--bg2);position:sticky;top:0;z-index:1}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
td.name,td.detail{overflow-wrap:anywhere;min-width:14em;max-width:30em}
td.time{white-space:nowrap}
td.nowrap{white-space:nowrap}
table.checklist{width:100%}
.scroll{overflow-x:auto;max-width:100%}
.finding ul{margin:0;padding-left:18px}
.status,.verdict{display:inline-block;border-radius:4px;padding:0 7px;font-weight:600;white-space:nowrap}
.s-verified,.v-ok{background:var(--ok);color:#fff}
.s-blocked,.v-blocked{background:var(--blocked);color:#fff}
.s-unexpected,.v-unexpected{background:var(--unexpected);color:#fff}
.s-not-seen,.v-unclassified{background:#e6e9eb;color:#333}
.s-port-open,.s-seen-one-way{background:#cfe8f3;color:#0b3d52}
tr.row-blocked td:first-child{box-shadow:inset 4px 0 var(--blocked)}
tr.row-unexpected td:first-child{box-shadow:inset 4px 0 var(--unexpected)}
td.c-blocked{background:var(--blocked);color:#fff;font-weight:600}
td.c-unexpected{background:var(--unexpected);color:#fff;font-weight:600}
td.c-ok{background:#e3f1e4;color:var(--ok)}
.fix{font-weight:600}
figure{margin:10px 0 22px}figure img{max-width:100%;height:auto;border:1px solid var(--line)}
figcaption{color:var(--muted)}
.finding{border:1px solid var(--line);border-left:6px solid var(--blocked);border-radius:6px;padding:12px 16px;margin:14px 0}
.finding.f-unexpected{border-left-color:var(--unexpected)}
.finding.f-not-ksc{border-left-color:#9aa5ab}
.finding dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 14px;margin:0 0 10px}
.finding dt{color:var(--muted)}.finding dd{margin:0}
blockquote{margin:0;padding:0 0 0 10px;border-left:3px solid var(--line);font-style:italic}
.controls{display:flex;gap:10px;align-items:center;flex-wrap:wrap;margin:8px 0;position:sticky;top:0;background:#fff;padding:6px 0;z-index:2}
.controls input[type=search]{width:320px;padding:4px 6px}
th button{all:unset;cursor:pointer;font-weight:700}
th button:focus-visible{outline:2px solid #1e88e5}
th[aria-sort=ascending] button::after{content:" ▲"}th[aria-sort=descending] button::after{content:" ▼"}
.warn{color:#8a4b00}
.muted{color:var(--muted)}
"""

# Sorting and filtering of the flow table. Reads cells with textContent / data-* attributes and
# only toggles `hidden` and reorders existing rows: never builds HTML from data.
_JS = """
(function () {
  "use strict";
  var table = document.getElementById("flow-table");
  if (!table) { return; }
  var body = table.tBodies[0];
  var rows = Array.prototype.slice.call(body.rows);
  var text = rows.map(function (r) { return r.textContent.toLowerCase(); });
  rows.forEach(function (r, i) { r.dataset.index = String(i); });
  var q = document.getElementById("flow-filter");
  var vsel = document.getElementById("flow-verdict");
  var psel = document.getElementById("flow-purpose");
  var count = document.getElementById("flow-count");
  function apply() {
    var needle = q.value.trim().toLowerCase(), v = vsel.value, p = psel.value, n = 0;
    rows.forEach(function (r, i) {
      var show = (v === "" || (v === "flagged" ? (r.dataset.verdict === "blocked" || r.dataset.verdict === "unexpected") : r.dataset.verdict === v)) &&
                 (p === "*" || r.dataset.purpose === p) &&
                 (needle === "" || text[i].indexOf(needle) !== -1);
      r.hidden = !show;
      if (show) { n += 1; }
    });
    count.textContent = n + " of " + rows.length + " flows shown";
  }
  function key(row, col, numeric) {
    var cell = row.cells[col];
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent;
    if (numeric) { var x = parseFloat(raw); return isNaN(x) ? -Infinity : x; }
    return raw.toLowerCase();
  }
  var heads = Array.prototype.slice.call(table.tHead.rows[0].cells);
  heads.forEach(function (th, col) {
    var button = th.querySelector("button");
    if (!button) { return; }
    button.addEventListener("click", function () {
      var numeric = th.dataset.type === "num";
      var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
      heads.forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
      var keyed = rows.map(function (r) { return [key(r, col, numeric), Number(r.dataset.index), r]; });
      keyed.sort(function (a, b) {
        if (a[0] < b[0]) { return -dir; }
        if (a[0] > b[0]) { return dir; }
        return a[1] - b[1];
      });
      var frag = document.createDocumentFragment();
      keyed.forEach(function (k) { frag.appendChild(k[2]); });
      body.appendChild(frag);
    });
  });
  q.addEventListener("input", apply);
  vsel.addEventListener("change", apply);
  psel.addEventListener("change", apply);
  apply();
}());
"""


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _e(value) -> str:
    """Any value -> text safe inside HTML elements and quoted attributes: control characters and
    bidi overrides shown as ``\\x1b``/``\\u202e`` text, invalid UTF-8 as ``\\xff``, then
    ``& < > " '`` escaped."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return html.escape(escape_terminal(str(value)), quote=True)


def _slug(s: str) -> str:
    """An id-safe token for ``purpose-…`` anchors (rule ids are ``[a-z][a-z0-9_]*`` already)."""
    return "".join(ch if ch.isalnum() or ch in "_-" else "-" for ch in str(s)) or "none"


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def _png(fig) -> tuple[str, int, int]:
    """A matplotlib Figure -> (base64 PNG, width px, height px)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    w, h = (int(round(x)) for x in fig.get_size_inches() * 100)
    return base64.b64encode(buf.getvalue()).decode("ascii"), w, h


def _figure(fig, alt: str, caption: str, ident: str) -> str:
    data, w, h = _png(fig)
    return (f'<figure id="{_e(ident)}"><img src="data:image/png;base64,{data}" width="{w}" height="{h}" '
            f'alt="{_e(alt)}"><figcaption>{_e(caption)}</figcaption></figure>')


def _status_badge(status: str) -> str:
    cls = "s-" + status.replace(" ", "-")
    return f'<span class="status {_e(cls)}">{_e(_STATUS_SYMBOL.get(status, ""))} {_e(status)}</span>'


def _verdict_badge(verdict: str) -> str:
    return f'<span class="verdict v-{_e(_slug(verdict))}">{_e(_VERDICT_SYMBOL.get(verdict, ""))} {_e(verdict)}</span>'


def _times(flows: pd.DataFrame) -> list[str]:
    """Each flow's start as ``YYYY-MM-DD HH:MM:SS.mmm`` (UTC) text, from the exact ``ts_ns``
    (:func:`~kscc_traffic.report.time_texts`; a table without it: the float ``ts``, which may
    show a millisecond less)."""
    if not len(flows):
        return []
    if "ts_ns" in flows:
        return time_texts(flows["ts_ns"], "%Y-%m-%d %H:%M:%S.%f")
    return list(pd.to_datetime(clip_ts(flows["ts"].astype(float)), unit="s")
                .strftime("%Y-%m-%d %H:%M:%S.%f").str[:-3])


def _endpoint(host, port) -> str:
    return endpoint_text(host, port)


def _reason_list(reasons: Iterable[str], texts: Mapping[str, str] = REASON_TEXT) -> str:
    items = []
    for r in reasons:
        if r in texts:
            items.append(f"<li><b>{_e(r)}</b>: {_e(texts[r])}</li>")
        elif r:
            items.append(f"<li><b>{_e(r)}</b></li>")
    return f"<ul>{''.join(items)}</ul>" if items else ""


def _split_reasons(series: pd.Series) -> list[str]:
    out: list[str] = []
    for v in series:
        for part in str(v).split(","):
            if part and part not in out:
                out.append(part)
    return out


# --------------------------------------------------------------------------------------------
# sections
# --------------------------------------------------------------------------------------------
def _summary(flows: pd.DataFrame, rules: RuleSet, captures: Mapping[str, int], warnings: list[str],
             title: str, generated: str, charts: bool = True, dns_errors: bool = False) -> str:
    counts = flows["verdict"].value_counts() if len(flows) else pd.Series(dtype=int)
    cards = [f'<div class="card"><b>{len(flows)}</b>flows</div>']
    for v in plots.VERDICTS:
        cards.append(f'<div class="card k-{v}"><b>{int(counts.get(v, 0))}</b>{_e(v)}</div>')
    cap = ", ".join(f"{_e(name)} ({n} flows)" for name, n in captures.items()) or "none"
    meta = rules.meta
    rules_text = (f"{meta.name} {meta.version}" + (f" — {meta.source_title}" if meta.source_title else "")) \
        if meta else "custom rules"
    warn = ""
    if warnings:
        warn = ('<div class="warn"><b>Reader warnings</b><ul>'
                + "".join(f"<li>{_e(w)}</li>" for w in warnings) + "</ul></div>")
    nav = ('<nav><a href="#checklist">Readiness checklist</a>'
           + ('<a href="#dns-errors">DNS errors</a>' if dns_errors else "")
           + ('<a href="#charts">Charts</a>' if charts else "")
           + '<a href="#hosts">Clients and server names</a><a href="#flagged">Flagged flows</a>'
           '<a href="#flows">All flows</a></nav>')
    # (no flow of KSC agent traffic at all: said first, report.no_ksc_traffic)
    head = no_ksc_traffic(len(flows), int(np.count_nonzero(ksc_flows(flows, rules))) if len(flows) else 0,
                          len(captures), cut_unnamed(flows), silent_proxies(flows))
    head = head or (NO_FLOWS if not len(flows) else "")     # (no flow at all: newcomer s60 #5)
    head = f'<p class="warn headline"><b>No KSC agent traffic:</b> {_e(head)}</p>' if head else ""
    scans = scan_lines_of(flows)
    if scans:   # (each scan once, its probes not KSC traffic: kscc_traffic.scans)
        head += ('<div class="warn"><b>Scans</b><ul>' + "".join(f"<li>{_e(x)}</li>" for x in scans) + "</ul></div>")
    # (a capture holding both sides of a NAT lists each connection twice: said under the counts)
    copies = copies_text(nat_copy_rows(flows), len(flows))
    copies = f'<p class="meta nat-copies">{len(flows)} flows: {_e(copies)}</p>' if copies else ""
    return (f"<header><h1>{_e(title)}</h1>{head}"
            f'<p class="meta">Captures: {cap}</p>'
            f'<p class="meta">Rules: {_e(rules_text)} · generated {_e(generated)} · times in UTC</p>'
            f'<div class="cards">{"".join(cards)}</div>{copies}{warn}{nav}</header>')


def _checklist(chk: pd.DataFrame, rules: RuleSet, captures: int = 1, alone: str = "",
               copies: dict[str, int] | None = None, dns_blocked: int = 0) -> str:
    """The readiness checklist section; ``captures``: how many captures the flows come from (more
    than one: a line says the checklist is over them all); ``alone``: the
    :func:`~kscc_traffic.report.no_ksc_capture_note` of those without KSC agent traffic ('' none);
    ``copies``: per purpose the flows that are a NAT's translated copies of others, which the
    checklist does not count (:func:`~kscc_traffic.report.nat_copies_note` says so under it);
    ``dns_blocked``: the blocked DNS flows (name resolution is no documented purpose: a line under
    the counts points to them, newcomer s63 #8: "0 blocked" where only DNS failed)."""
    by_id = {r.id: r for r in rules.rules}
    rows = []
    for r in chk.itertuples(index=False):
        rule = by_id.get(r.rule)
        cond = f'<br><span class="muted">{_e(rule.condition)}</span>' if rule and rule.condition else ""
        flagged = r.status in ("blocked", "unexpected")
        fix = (f'<span class="fix">{_e(r.fix)}</span>' if flagged or r.status in ("port open", "seen one-way")
               or getattr(r, "status_note", "") == JOINED_NOTE or to_verify(getattr(r, "status_note", "")) else "")
        link = (f'<a href="#purpose-{_e(_slug(r.rule))}">{_e(r.rule)}</a>' if flagged else _e(r.rule))
        ports = rule.label() if rule else f"{r.transport} {r.ports}"   # (the cast shown: udp 15000 broadcast)
        # (what qualifies the status: the capture ended before an answer could come…)
        note = (f'<br><span class="muted status-note">{_e(r.status_note)}</span>'
                if getattr(r, "status_note", "") else "")
        rows.append(
            f'<tr data-rule="{_e(r.rule)}" data-status="{_e(r.status)}">'
            f'<td>{_e(r.section)}</td><td>{link}</td><td class="nowrap">{_e(ports)}</td>'
            f"<td>{_e(r.purpose_text)}{cond}</td><td>{_status_badge(r.status)}{note}</td>"
            f'<td class="num">{r.flows}</td><td class="num">{r.ok}</td><td class="num">{r.blocked}</td>'
            f'<td class="num">{r.unexpected}</td><td>{_e(r.reasons)}</td><td>{fix}</td></tr>')
    n = chk["status"].value_counts()
    line = " · ".join(f"{int(n.get(s, 0))} {s}" for s in ("verified", "blocked", "unexpected", "port open",
                                                              "seen one-way", "not seen")
                      if s not in ("port open", "seen one-way") or n.get(s, 0))
    return ('<section id="checklist"><h2>Readiness checklist</h2>'
            f'<p>Every purpose the vendor documents, judged on this traffic: {_e(line)}. '
            '"not seen" means the capture holds no such flow (not necessarily a problem: '
            "some ports are only needed in some set-ups).</p>"
            + (f'<p class="warn dns-blocked">Name resolution (not on the vendor\'s page, but every connection needs it): '
               f'{dns_blocked} blocked DNS flow{"s" if dns_blocked != 1 else ""} (see '
               '<a href="#purpose-dns">dns</a>).</p>' if dns_blocked else "")
            + (f"<p>{_e(several_captures_note(captures))}</p>" if captures > 1 else "")
            + (f'<p class="warn">{_e(alone)}</p>' if alone else "") +
            '<table class="checklist"><thead><tr><th>section</th><th>purpose</th><th>ports</th>'
            '<th>what for</th><th>status</th><th class="num">flows</th><th class="num">ok</th>'
            '<th class="num">blocked</th><th class="num">unexpected</th><th>reasons</th>'
            f'<th>what to change</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
            + (f'<p class="muted nat-copies">{_e(nat_copies_note(copies, "in the checklist"))}</p>'
               if nat_copies_note(copies or {}) else "") + "</section>")


def _dns_error_verdict_text(verdicts: Mapping[str, int], aaaa_only: bool = False) -> str:
    """What the verdicts of the DNS flows answered with an error say (``verdicts``: verdict ->
    flows, :func:`kscc_traffic.report.dns_error_verdicts`): the blocked ones ask for a name the
    agent needs, the ok ones for another name (the resolver was reached and answered) or for one
    another query or a retry got an address for, or (``aaaa_only``: a row's answer ends with
    :data:`~kscc_traffic.report.AAAA_ONLY_RCODE`) only the AAAA query of one (newcomer63 #3); e.g.
    ``"Verdicts: 2 blocked (…), 1 ok (…). "``, ``"Its verdict: blocked (…). "`` for one flow;
    '' when none is counted."""
    ok = ("the resolver was reached and answered a name the agent does not need, or one it got an address "
          "for from another query or a retry")
    if aaaa_only:
        ok = (ok.replace(", or one it got", ", one it got")
              + ", or the AAAA (IPv6 address) query alone of a name it needs (the rows marked AAAA only)")
    meaning = {"blocked": "a name the agent needs: without its address it cannot connect", "ok": ok}
    counts = {v: int(n) for v, n in verdicts.items() if int(n) > 0}
    if not counts:
        return ""
    order = sorted(counts, key=lambda v: (v not in meaning, list(meaning).index(v) if v in meaning else 0, v))
    if sum(counts.values()) == 1:
        v = order[0]
        return f"Its verdict: {v}" + (f" ({meaning[v]}). " if v in meaning else ". ")
    return "Verdicts: " + ", ".join(f"{counts[v]} {v}" + (f" ({meaning[v]})" if v in meaning else "")
                                    for v in order) + ". "


def _dns_errors(errs: pd.DataFrame, verdicts: Mapping[str, int] | None = None) -> str:
    """The DNS names answered with an error (:func:`kscc_traffic.report.dns_errors`), at most
    :data:`MAX_DNS_ERROR_ROWS`, ``verdicts`` their flows per verdict
    (:func:`kscc_traffic.report.dns_error_verdicts`; None: not told); '' when there are none."""
    if not len(errs):
        return ""
    total = int(errs["flows"].sum())
    aaaa_only = any(str(r).endswith(AAAA_ONLY_RCODE) for r in errs["rcode"].tolist())
    rows = []
    for r, meaning in zip(errs.head(MAX_DNS_ERROR_ROWS).itertuples(index=False), dns_error_meanings(errs)):
        name = _e(r.name) if r.name else '<span class="muted">(no question)</span>'
        rows.append(f'<tr><td class="name">{name}</td><td>{_e(r.rcode)}</td><td class="num">{int(r.flows)}</td>'
                    f"<td>{_e(meaning)}</td></tr>")
    note = ""
    if len(errs) > MAX_DNS_ERROR_ROWS:
        note = (f'<p class="warn">Showing {MAX_DNS_ERROR_ROWS} of {len(errs)} names; the column '
                "<code>dns_rcode</code> of <code>kscc-traffic analyze --format csv</code> has all of them.</p>")
    return ('<section id="dns-errors"><h2>DNS names answered with an error</h2>'
            f"<p>{total} DNS flow{'s' if total != 1 else ''} got an error answer instead of an address. "
            f"{_e(_dns_error_verdict_text(verdicts or {}, aaaa_only))}A client cannot connect "
            "to a name it cannot resolve: check these names and the resolver.</p>"
            '<table class="dns-errors"><thead><tr><th>name</th><th>answer</th><th class="num">flows</th>'
            f'<th>meaning</th></tr></thead><tbody>{"".join(rows)}</tbody></table>{note}</section>')


def _charts(flows: pd.DataFrame, rules: RuleSet, not_ksc: bool = False) -> str:
    """The charts section; ``not_ksc``: no flow is KSC agent traffic (the headline), a line above the
    charts says what they show per purpose are other programs' flows (newcomer 31 F3)."""
    figs = [
        (plots.chart_verdicts, "chart-verdicts", "Flows per purpose, stacked by verdict",
         "Flows per purpose and verdict: green ok, red blocked, orange unexpected, grey unclassified."),
        (plots.chart_volume, "chart-volume", "Flows and payload bytes per purpose",
         "Flows and payload bytes per purpose (bytes sent by the client and by the server)."),
        (plots.chart_timeline, "chart-timeline", "Connection attempts over time per purpose",
         "Connection attempts over time: one marker per flow (✕ blocked, ▲ unexpected); below, attempts "
         "per time slice. A firewall change or an outage shows as the moment the red begins."),
        (plots.chart_host_failures, "chart-hosts", "Clients and the purposes they fail",
         "Clients (the side that opened the connection) and the purposes they fail."),
    ]
    parts = []
    # (the flows per purpose count each connection once: a NAT's translated copies left out, as the
    # table report's flows per purpose and the checklist; said under the chart)
    copy = nat_copy_mask(flows)
    copies = flows["purpose"][copy].value_counts().to_dict() if copy.any() else {}
    for fn, ident, alt, caption in figs:
        if fn is plots.chart_verdicts and copies:
            fig = fn(flows[~copy], rules)
            caption = f"{caption} {nat_copies_note(copies, 'in this chart')}."
        else:
            fig = fn(flows, rules)
        parts.append(_figure(fig, alt, caption, ident))
    note = f'<p class="warn">{_e(NOT_KSC_CHARTS)}</p>' if not_ksc else ""
    return f'<section id="charts"><h2>Charts</h2>{note}{"".join(parts)}</section>'


def _hosts(flows: pd.DataFrame, rules: RuleSet) -> str:
    hs = plots.host_status(flows, rules, failing_only=True)
    if len(hs):
        head = "".join(f"<th>{_e(c)}</th>" for c in hs.columns)
        body = []
        for host, row in hs.iterrows():
            cells = "".join(f'<td class="c-{_e(_slug(v))}">{_e(v)}</td>' if v else "<td></td>" for v in row)
            body.append(f"<tr><th>{_e(host)}</th>{cells}</tr>")
        host_html = (f'<table class="hosts"><thead><tr><th>client</th>{head}</tr></thead>'
                     f'<tbody>{"".join(body)}</tbody></table>')
    else:
        host_html = "<p>No client has a blocked or unexpected flow.</p>"
    sn = plots.server_names(flows, rules)
    if len(sn):
        body = []
        for r in sn.itertuples(index=False):
            name = _e(r.server_name) if r.server_name else '<span class="muted">(no name seen)</span>'
            body.append(f"<tr><td>{_e(r.purpose)}</td><td class=\"name\">{name}</td><td>{_e(r.name_source)}</td>"
                        f"<td>{_e(r.addresses)}</td><td class=\"num\">{r.flows}</td><td class=\"num\">{r.ok}</td>"
                        f"<td class=\"num\">{r.blocked}</td><td class=\"num\">{r.unexpected}</td></tr>")
        names_html = ('<table class="names"><thead><tr><th>purpose</th><th>server name</th><th>from</th>'
                      '<th>addresses</th><th class="num">flows</th><th class="num">ok</th>'
                      '<th class="num">blocked</th><th class="num">unexpected</th></tr></thead>'
                      f'<tbody>{"".join(body)}</tbody></table>')
    else:
        names_html = "<p>No flow of a documented purpose.</p>"
    return ('<section id="hosts"><h2>Clients and server names</h2>'
            "<h3>Which clients fail which purposes</h3>"
            "<p>Worst verdict per client (the side that opened the connection) and purpose; only "
            f"clients and purposes with a blocked or unexpected flow.</p>{host_html}"
            "<h3>Server names per purpose</h3>"
            "<p>The names clients asked for (TLS SNI, HTTP Host, or the DNS answer the address came "
            f"from; for DNS the query) and the addresses they reached.</p>{names_html}</section>")


def _flow_name(r) -> tuple[str, str]:
    """The name a flow is shown with and where it came from: its ``server_name`` and
    ``name_source``, else, for a DNS flow, its ``query`` ("dns query"; an unanswered query has no
    other name), else nothing."""
    if r.server_name:
        return r.server_name, r.name_source
    query = getattr(r, "query", "")
    return (query, "dns query") if query else ("", r.name_source)


_FLAG_COLUMNS = ("time (UTC)", "client", "server", "server name", "verdict", "reason", "detail")


def _flagged_rows(sub: pd.DataFrame, client: bool = False) -> str:
    """The table of a finding's flows ``sub``; ``client``: no flow is KSC agent traffic (the
    headline): the details as :func:`~kscc_traffic.report.client_details` words them."""
    # (a failed attempt repeated to the same server and port: one row, its detail led by their
    # summary, attempts.grouped; the flow table below keeps a row per flow)
    sub, summaries = grouped(sub)
    times = _times(sub)
    rows = []
    details = client_details(sub) if client else sub["detail"].astype(str).tolist()
    details = [with_summary(d, x) for d, x in zip(details, summaries)]
    for t, r, detail in zip(times, sub.itertuples(index=False), details):
        rows.append(f'<tr class="row-{_e(_slug(r.verdict))}"><td class="time">{_e(t)}</td><td>{_e(_endpoint(r.orig_h, r.orig_p))}</td>'
                    f"<td>{_e(r.proto)} {_e(_endpoint(r.resp_h, r.resp_p))}</td>"
                    f'<td class="name">{_e(_flow_name(r)[0])}</td><td>{_verdict_badge(r.verdict)}</td>'
                    f'<td>{_e(r.reason)}</td><td class="detail">{_e(detail)}</td></tr>')
    head = "".join(f"<th>{c}</th>" for c in _FLAG_COLUMNS)
    return (f'<div class="scroll"><table class="flagged"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _finding(purpose: str, sub: pd.DataFrame, rule: Rule | None, fix: str | None = None,
             not_ksc: bool = False, dns_answered: int = 0, one_way: bool = False, nothing: bool = False) -> str:
    """One purpose's flagged flows; ``fix``: its "what to change" (the readiness checklist's,
    so both say the same; default: the rule's); ``not_ksc``: no flow is KSC agent traffic (the
    headline): "what to change" is :data:`~kscc_traffic.report.NOT_KSC_FIX`, whatever the purpose;
    ``dns_answered``: of the DNS queries nothing answered, those sent to a resolver that answered
    the same client (:class:`~kscc_traffic.report.ResolverAnswers` of all the flows, not only the
    flagged ``sub``); ``one_way``: the run's flows show a capture of one direction only
    (:func:`~kscc_traffic.report.one_way_capture`, of all the flows); ``nothing``: the checklist
    says there is nothing to change (:data:`~kscc_traffic.report.VENDOR_NOTE`): ``fix`` is headed
    "Nothing to change", as in the table report."""
    worst = "blocked" if (sub["verdict"] == "blocked").any() else "unexpected"
    n = len(sub)
    reasons = _split_reasons(sub["reason"])
    texts: Mapping[str, str] = REASON_TEXT
    icmp = sub["reason"].astype(str).str.split(",").str[0] == "icmp_unreachable"
    # (from the icmp_unreachable column, not the detail's words: names quoted there could hold them)
    said = port_unreachable(sub["detail"].astype(str).tolist(), icmp_column(sub))
    closed = int((icmp.to_numpy() & said[0]).sum())
    # (one carrying a cloud server's own address: most likely a firewall's, not a service to check)
    forged = int((icmp.to_numpy() & said[1]).sum())
    # (... with that server's own TTL: the server's own refusal)
    cloud_own = int((icmp.to_numpy() & cloud_refusals(sub["detail"].astype(str).tolist(), icmp_column(sub))).sum())
    if closed or forged or cloud_own:  # (a port unreachable from the destination itself: nothing listens there)
        texts = {**REASON_TEXT, "icmp_unreachable": icmp_reason_text(int(icmp.sum()), closed, forged, cloud_own)}
    no_answer = (sub["verdict"] == "blocked") & (sub["reason"].astype(str).str.split(",").str[0] == "no_answer")
    cut = int(cut_short(sub["reason"].astype(str).tolist(), sub["detail"].astype(str).tolist()).sum()) \
        if no_answer.any() else 0
    rejected = (sub["verdict"] == "blocked") & (sub["reason"].astype(str).str.split(",").str[0] == "rejected")
    if rejected.any() and purpose != "dns":   # (what answered: a reset, an HTTP refusal, a proxy…)
        texts = {**texts, "rejected": rejected_reason_text(sub.loc[rejected, "detail"].astype(str).tolist())}
    mism = sub["reason"].astype(str).str.split(",").str[0] == "host_mismatch"
    if mism.any() and "server_name" in sub:   # (Kaspersky's other services: not "not Kaspersky's")
        vendor = int((mism.to_numpy() & vendor_names(sub["server_name"].tolist())).sum())
        console = int((mism.to_numpy() & console_names(sub["server_name"].tolist())).sum()) if vendor else 0
        texts = {**texts, "host_mismatch": host_mismatch_reason_text(int(mism.sum()), vendor, console)}
    icpt = sub["reason"].astype(str).str.split(",").str[0] == "tls_intercepted"
    if icpt.any():   # (the cause the flows show, when one: newcomer s60 #10)
        texts = {**texts, "tls_intercepted": intercepted_text(intercepted_cause(unquoted_details(sub[icpt])))}
    wrong = sub["reason"].astype(str).str.split(",").str[0] == "wrong_direction"
    if wrong.any():   # (opened from outside towards a local address: not a source port in the range)
        inbound = int((wrong & sub["detail"].astype(str).str.startswith(INBOUND_STARTS)).sum())
        texts = {**texts, "wrong_direction": wrong_direction_reason_text(int(wrong.sum()), inbound, rule)}
    if rule is not None:
        head = (f"{_e(rule.id)} — {_e(rule.transport.upper())} {_e(rule.port_text)} ({_e(rule.section)})")
        cond = f"<dt>Needed</dt><dd>{_e(rule.condition)}</dd>" if rule.condition else ""
        mask = f"<dt>Host mask</dt><dd>{_e(rule.host_mask)}</dd>" if rule.host_mask else ""
        dl = (f"<dt>What the port is for</dt><dd>{_e(rule.purpose)}</dd>"
              f'<dt>German original</dt><dd><blockquote lang="de">{_e(rule.purpose_de)}</blockquote></dd>'
              f"{mask}{cond}"
              f'<dt>What to change</dt><dd class="fix">{_e(fix or rule.fix)}</dd>')
    elif purpose == "dns":
        head = "dns — name resolution (UDP/TCP 53)"
        # (a rejected query: an error or sinkhole answer, or DNS over TCP reset: told apart)
        rejected = (sub["verdict"] == "blocked") & (sub["reason"].astype(str).str.split(",").str[0] == "rejected")
        resets = int((rejected & (sub["detail"].astype(str) == DNS_TCP_RESET)).sum())
        counts = (resets, int(rejected.sum()) - resets)
        kinds = {**dns_blocked_kinds(sub), "resolver_answered": dns_answered, "one_way_capture": int(one_way)}
        texts = dns_reason_texts(reasons, *counts, kinds=kinds)
        dl = ("<dt>What the port is for</dt><dd>Name resolution. Not in the vendor's port list, but "
              "agents must resolve *.ksc.kaspersky.com and the other Kaspersky names to connect at all.</dd>"
              f'<dt>What to change</dt><dd class="fix">'
              f'{_e(dns_fix(reasons, *counts, cut=(cut, int(no_answer.sum())), kinds=kinds))}</dd>')
    else:
        head = "flows outside the documented purposes"
        dl = ("<dt>What the port is for</dt><dd>No rule of the vendor page documents these flows.</dd>"
              f'<dt>What to change</dt><dd class="fix">{_e(undocumented_fix(n))}</dd>')
    if nothing and not not_ksc:   # (Kaspersky's other services: newcomer s60 #11)
        dl = dl.replace("<dt>What to change</dt>", "<dt>Nothing to change</dt>")
    if not_ksc:   # (other programs' flows: no advice built on them, newcomer 28 F4)
        dl = re.sub(r'<dt>What to change</dt><dd class="fix">.*?</dd>',
                    lambda m: f'<dt>What to change</dt><dd class="fix">{_e(NOT_KSC_FIX)}</dd>', dl, flags=re.S)
    if cut and cut >= int(no_answer.sum()):
        # (every unanswered attempt began right before the capture ended: not "a firewall drops it")
        texts = {**texts, "no_answer": CUT_SHORT_REASON}
    if not_ksc:
        # (the checklist says "not seen" of them: no red "blocked" badge on other programs' flows,
        # newcomer 31 F3; the rows keep their verdicts)
        cls, badge = "not-ksc", f'<span class="status s-not-seen">{_e(NOT_KSC_BADGE)}</span>'
        count = f"{n} flagged flow{'s' if n != 1 else ''}{' on its port' if purpose else ''}, not KSC agent traffic"
    else:
        cls, badge = worst, _status_badge(worst)
        count = f"{n} flagged flow{'s' if n != 1 else ''}"
    return (f'<article class="finding f-{cls}" id="purpose-{_e(_slug(purpose or "none"))}">'
            f"<h3>{head} {badge} <span class=\"muted\">{count}"
            f"</span></h3><dl>{dl}<dt>Why flagged</dt><dd>{_reason_list(reasons, texts)}</dd></dl>"
            f"{_flagged_rows(sub, not_ksc)}</article>")


def _no_ksc(flows: pd.DataFrame, rules: RuleSet, captures: int) -> bool:
    """Whether the report's headline says no flow of ``flows`` (not empty) from ``captures``
    captures is KSC agent traffic (:func:`~kscc_traffic.report.no_ksc_traffic`, as
    :func:`_summary` decides it)."""
    return bool(no_ksc_traffic(len(flows), int(np.count_nonzero(ksc_flows(flows, rules))), captures,
                               cut_unnamed(flows)))


def _not_ksc(chk: pd.DataFrame | None) -> bool:
    """Whether the checklist ``chk`` (:func:`readiness`) judged no purpose because no flow is KSC
    agent traffic and a purpose's port carried other programs' flows (:data:`NOT_KSC_NOTE`)."""
    return chk is not None and "status_note" in chk and bool((chk["status_note"] == NOT_KSC_NOTE).any())


def _flagged(flows: pd.DataFrame, rules: RuleSet, chk: pd.DataFrame | None = None) -> str:
    flagged = flows[flows["verdict"].isin(["blocked", "unexpected"])] if len(flows) else flows
    if not len(flagged):
        body = "<p>Nothing is blocked or unexpected.</p>"
    else:
        by_id = {r.id: r for r in rules.rules}
        fixes = dict(zip(chk["rule"], chk["fix"])) if chk is not None and len(chk) else {}
        notes = dict(zip(chk["rule"], chk["status_note"])) if chk is not None and "status_note" in chk else {}
        # (no flow is KSC agent traffic: the checklist judged none of them, newcomer 28 F4)
        not_ksc = _not_ksc(chk)
        purposes = plots.purpose_order(flagged, rules)
        # (DNS: whether the resolver answered the client's other queries, read from all the flows)
        answered = ResolverAnswers.of(flows) if "dns" in purposes else 0
        one_way = one_way_capture(flows) if "dns" in purposes else False
        parts = []
        for p in purposes:
            key = "" if p == plots.NO_PURPOSE else p
            parts.append(_finding(key, flagged[flagged["purpose"] == key], by_id.get(key), fixes.get(key), not_ksc,
                                  answered if key == "dns" else 0, one_way, notes.get(key) == VENDOR_NOTE))
        body = "".join(parts)
        if not_ksc:
            body = f'<p class="warn">{_e(NOT_KSC_SECTION)}</p>{body}'
    return ('<section id="flagged"><h2>Flagged flows: what the documentation says and what to change</h2>'
            f"{body}</section>")


_FLOW_COLUMNS = (
    # header, type (num sorts numerically), numeric alignment
    ("time (UTC)", "num"), ("capture", ""), ("client", ""), ("server", ""), ("proto", ""),
    ("server name", ""), ("name from", ""), ("purpose", ""), ("verdict", ""), ("reason", ""),
    ("bytes out", "num"), ("bytes in", "num"), ("duration s", "num"), ("state", ""), ("detail", ""),
)


def _flow_table(flows: pd.DataFrame, rules: RuleSet, max_rows: int, client: bool = False) -> str:
    total = len(flows)
    f = flows
    note = ""
    if total > max_rows:
        bad = flows["verdict"].isin(["blocked", "unexpected"])
        # (more flagged flows than rows: the terminal table's choice, blocked ones first, then the
        # KSC agent traffic, time order inside each: flagged_rank, newcomer 30 F2)
        flagged = flows[bad]
        # (time order inside a rank, as the terminal table's TableSummary: the rows are not in time
        # order when a chunked reading wrote each flow as it ended, or for several captures)
        when = flagged["ts_ns"] if "ts_ns" in flagged else flagged["ts"]
        keep = flagged.iloc[np.lexsort((np.arange(len(flagged)), when.to_numpy(),
                                        flagged_rank(flagged, ksc_purposes(rules))))[:max_rows]]
        keep = pd.concat([keep, flows[~bad].head(max_rows - len(keep))]).sort_values("ts", kind="stable")
        f = keep
        note = (f'<p class="warn">Showing {len(f)} of {total} flows (all flagged flows first; of them, when they '
                'are more, the blocked ones first, then the KSC agent traffic); '
                "use <code>kscc-traffic analyze --format csv</code> for all of them.</p>")
    flagged_purposes = set(flows.loc[flows["verdict"].isin(["blocked", "unexpected"]), "purpose"]) if total else set()
    times = _times(f)
    rows = []
    # (no flow is KSC agent traffic, the headline: "the client", not "the agent", newcomer s60 #12)
    details = client_details(f) if client else f["detail"].astype(str).tolist() if len(f) else []
    for t, r, detail in zip(times, f.itertuples(index=False), details):
        purpose = r.purpose
        name, source = _flow_name(r)
        if purpose and purpose in flagged_purposes:
            pcell = f'<a href="#purpose-{_e(_slug(purpose))}">{_e(purpose)}</a>'
        else:
            pcell = _e(purpose)
        rows.append(
            f'<tr class="row-{_e(_slug(r.verdict))}" data-verdict="{_e(r.verdict)}" data-purpose="{_e(purpose)}">'
            f'<td class="time" data-sort="{float(r.ts):.6f}">{_e(t)}</td><td>{_e(r.capture)}</td>'
            f"<td>{_e(_endpoint(r.orig_h, r.orig_p))}</td><td>{_e(_endpoint(r.resp_h, r.resp_p))}</td>"
            f'<td>{_e(r.proto)}</td><td class="name">{_e(name)}</td><td>{_e(source)}</td>'
            f"<td>{pcell}</td><td>{_verdict_badge(r.verdict)}</td><td>{_e(r.reason)}</td>"
            f'<td class="num">{int(r.orig_bytes)}</td><td class="num">{int(r.resp_bytes)}</td>'
            f'<td class="num">{float(r.duration):.3f}</td><td>{_e(r.conn_state)}</td>'
            f'<td class="detail">{_e(detail)}</td></tr>')
    num = ' class="num"'
    head = "".join(
        f'<th{num if typ == "num" else ""} data-type="{typ or "text"}"><button type="button">{_e(h)}</button></th>'
        for h, typ in _FLOW_COLUMNS)
    purposes = plots.purpose_order(flows, rules)
    popts = "".join(
        f'<option value="{_e("" if p == plots.NO_PURPOSE else p)}">{_e(p)}</option>' for p in purposes)
    vopts = "".join(f'<option value="{v}">{v}</option>' for v in plots.VERDICTS)
    controls = ('<div class="controls">'
                '<label>Filter <input type="search" id="flow-filter" placeholder="address, name, reason…" '
                'autocomplete="off"></label>'
                '<label>Verdict <select id="flow-verdict"><option value="">all</option>'
                f'<option value="flagged">blocked or unexpected</option>{vopts}</select></label>'
                f'<label>Purpose <select id="flow-purpose"><option value="*">all</option>{popts}</select></label>'
                f'<span id="flow-count" class="muted">{len(f)} flows</span></div>')
    return ('<section id="flows"><h2>All flows</h2>'
            "<p>Click a column header to sort; type to filter (matches any cell).</p>"
            f'{note}{controls}<div class="scroll"><table id="flow-table"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div></section>')


# --------------------------------------------------------------------------------------------
# the page
# --------------------------------------------------------------------------------------------
def render_html(flows: pd.DataFrame, rules: RuleSet, *, captures: Mapping[str, object] | Iterable[str] | None = None,
                warnings: Iterable[str] = (), title: str = "KSC Cloud Console traffic report",
                generated: str | None = None, max_rows: int = 20000, charts: bool = True) -> str:
    """The whole report as one HTML document (str, UTF-8 when written).

    :param flows: flow table of :func:`kscc_traffic.analyze` (columns :data:`kscc_traffic.COLUMNS`).
    :param rules: the rules the flows were classified with.
    :param captures: the captures to list in the header, as paths or
        :class:`~kscc_traffic.capture.filesets.FileSet` (named as the ``capture`` column names
        them: :func:`kscc_traffic.analyze.capture_names` of them all; a mapping's keys are used);
        default: the ``capture`` column's values.
    :param warnings: reader warnings to show (one line each).
    :param generated: the "generated" time text (default: now, UTC, to the second).
    :param max_rows: at most this many rows in the flow table (flagged flows kept first; the charts,
        the checklist and the flagged section always cover every flow).
    :param charts: False leaves the chart images out (a smaller, faster page).
    """
    if captures is None:
        names = list(dict.fromkeys(flows["capture"])) if len(flows) else []
    else:
        from .analyze import capture_names
        from .capture.filesets import FileSet
        names = capture_names([c if isinstance(c, FileSet) else str(c) for c in captures])
    per_capture = flows["capture"].value_counts() if len(flows) else pd.Series(dtype=int)
    cap_counts = {n: int(per_capture.get(n, 0)) for n in names}
    generated = generated or _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    chk = readiness(flows, rules)
    errs = dns_errors(flows)

    body = "".join([
        _summary(flows, rules, cap_counts, list(warnings), title, generated, charts, bool(len(errs))),
        _checklist(chk, rules, flows["capture"].nunique() if len(flows) and "capture" in flows else 1,
                   no_ksc_capture_note(captures_without_ksc(flows, rules)),
                   flows["purpose"][nat_copy_mask(flows)].value_counts().to_dict() if len(flows) else {},
                   int(((flows["purpose"] == "dns") & (flows["verdict"] == "blocked")).sum()) if len(flows) else 0),
        _dns_errors(errs, dns_error_verdicts(flows)),
        _charts(flows, rules, _not_ksc(chk)) if charts else "",
        _hosts(flows, rules),
        _flagged(flows, rules, chk),
        _flow_table(flows, rules, max_rows, client=bool(len(flows)) and _no_ksc(flows, rules, len(cap_counts))),
        '<footer><p class="muted">kscc-traffic · names come from the captured packets and are shown '
        "as text.</p></footer>",
    ])
    csp = ("default-src 'none'; img-src data:; "
           f"style-src {_csp_hash(_CSS)}; script-src {_csp_hash(_JS)}; "
           "base-uri 'none'; form-action 'none'")
    return ("<!DOCTYPE html>\n"
            '<html lang="en"><head><meta charset="utf-8">'
            f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="referrer" content="no-referrer">'
            f"<title>{_e(title)}</title>"
            '<link rel="icon" href="data:,">'
            f"<style>{_CSS}</style></head>\n<body>{body}\n<script>{_JS}</script></body></html>\n")


def write_html(path: str | os.PathLike, flows: pd.DataFrame, rules: RuleSet, **kwargs) -> Path:
    """Write :func:`render_html` to ``path`` (UTF-8). A regular file (or a new name) is replaced
    atomically: a temporary file in the same directory, then renamed over ``path``, so a failed
    write leaves the previous file; a symbolic link is written through to its target, and a
    device or FIFO (``/dev/null``) is written in place, never replaced
    (:class:`kscc_traffic.outfile.ReportFile`). Keyword arguments go to :func:`render_html`.

    :returns: the path written.
    :raises OSError: the directory does not exist or is not writable, the device refuses the
        data (``/dev/full``: ENOSPC).
    """
    from .outfile import ReportFile, write_all

    path = Path(path)
    text = render_html(flows, rules, **kwargs)
    target = ReportFile(path)
    out = target.open(newline="\n")
    try:
        write_all(out, text)
    except BaseException:
        target.discard()
        raise
    target.commit()
    return path
