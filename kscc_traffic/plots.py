"""Pictures of a flow table: summary tables and matplotlib charts, shared by the notebook
(``notebooks/traffic_breakdown.ipynb``) and the HTML report (:mod:`kscc_traffic.html_report`).

Every function takes the flow table of :func:`kscc_traffic.analyze` (columns
:data:`kscc_traffic.COLUMNS`) and, optionally, the :class:`~kscc_traffic.RuleSet` (only used to
order purposes as the vendor page does). Tables are plain :class:`pandas.DataFrame`\\ s; charts
are :class:`matplotlib.figure.Figure` objects made without ``pyplot`` (no global state, no GUI
backend): ``fig.savefig(...)`` them, or display them in Jupyter after ``%matplotlib inline``.

Purposes are the ``purpose`` column: a rule id, ``dns``, or ``(none)`` for flows no rule covers
(shown as :data:`NO_PURPOSE`). Times are UTC. Bytes are transport payload bytes
(``orig_bytes`` + ``resp_bytes``).

Strings from packets (server names) are returned as they are in the tables: untrusted text.
pandas' HTML output escapes them; :func:`style_readiness` and the HTML report escape explicitly.
matplotlib would read ``$…$`` in a label as mathematics, so chart labels escape ``$``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import numpy as np
import pandas as pd

from .report import NO_PURPOSE, clip_ts, text_filled

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure
    from pandas.io.formats.style import Styler

    from .rules import RuleSet

__all__ = [
    "VERDICTS", "VERDICT_COLORS", "STATUS_COLORS", "NO_PURPOSE",
    "purpose_order", "purpose_breakdown", "host_status", "server_names", "attempts_over_time",
    "chart_verdicts", "chart_volume", "chart_timeline", "chart_host_failures", "style_readiness", "style_table",
]

#: verdicts in display order (worst first after ok, so stacked bars read ok → problems)
VERDICTS: tuple[str, ...] = ("ok", "blocked", "unexpected", "unclassified")
#: one colour per verdict (also used by the HTML report's CSS)
VERDICT_COLORS: dict[str, str] = {"ok": "#2e7d32", "blocked": "#c62828", "unexpected": "#e68a00",
                                  "unclassified": "#9e9e9e"}
#: one colour per readiness status
STATUS_COLORS: dict[str, str] = {"verified": "#2e7d32", "blocked": "#c62828", "unexpected": "#e68a00",
                                 "port open": "#5b9bb5", "seen one-way": "#5b9bb5", "not seen": "#9e9e9e"}
# label for flows without a purpose (``purpose == ''``): NO_PURPOSE, report's (one label in every text output)

_MARKERS = {"ok": "o", "blocked": "X", "unexpected": "^", "unclassified": "."}
_SIZES = {"ok": 22, "blocked": 70, "unexpected": 60, "unclassified": 14}
_SEVERITY = {"blocked": 3, "unexpected": 2, "ok": 1, "unclassified": 0}


# --------------------------------------------------------------------------------------------
# tables
# --------------------------------------------------------------------------------------------
def _purposes(flows: pd.DataFrame) -> pd.Series:
    """The ``purpose`` column with '' replaced by :data:`NO_PURPOSE`."""
    return flows["purpose"].fillna("").astype(str).replace("", NO_PURPOSE)


def _text_index(name: str) -> pd.Index:
    """An empty index of text labels named ``name``, of the dtype a table's text column gives
    once made text (``str`` under pandas 3, ``object`` before)."""
    return pd.Index(pd.Series([], dtype=object).astype(str), name=name)


def purpose_order(flows: pd.DataFrame, rules: "RuleSet | None" = None) -> list[str]:
    """Purposes present in ``flows``: the rules' order first (as on the vendor page), then any
    other purpose alphabetically, then ``dns``, then :data:`NO_PURPOSE`.

    :returns: list of purpose labels, length = number of distinct purposes in ``flows``.
    """
    present = set(_purposes(flows)) if len(flows) else set()
    ordered = [r.id for r in rules.rules if r.id in present] if rules is not None else []
    tail = [p for p in ("dns", NO_PURPOSE) if p in present]
    rest = sorted(present - set(ordered) - set(tail))
    return ordered + rest + tail


def purpose_breakdown(flows: pd.DataFrame, rules: "RuleSet | None" = None) -> pd.DataFrame:
    """Flows, verdicts and bytes per purpose.

    :returns: DataFrame indexed by purpose (order of :func:`purpose_order`), columns ``flows``
        (count), ``ok``, ``blocked``, ``unexpected``, ``unclassified`` (flow counts per verdict),
        ``orig_bytes``, ``resp_bytes``, ``bytes`` (payload bytes sent by the originator, by the
        responder, both), ``clients`` (distinct originator addresses); every column ``int64``,
        the index of text labels (``str`` under pandas 3), named ``purpose``; the same columns,
        dtypes and index type with no row (no flows).
    :raises KeyError: ``flows`` lacks ``purpose``, ``verdict``, ``orig_h``, ``orig_bytes`` or
        ``resp_bytes``.
    """
    cols = ["flows", *VERDICTS, "orig_bytes", "resp_bytes", "bytes", "clients"]
    if not len(flows):   # (the index's dtype as with rows: labels made text as _purposes makes them)
        return pd.DataFrame({c: np.zeros(0, np.int64) for c in cols}, index=_text_index("purpose"))
    f = flows.assign(purpose=_purposes(flows))
    counts = f.groupby("purpose")["verdict"].value_counts().unstack(fill_value=0)
    counts = counts.reindex(columns=list(VERDICTS), fill_value=0)
    g = f.groupby("purpose")
    out = counts.assign(
        orig_bytes=g["orig_bytes"].sum(), resp_bytes=g["resp_bytes"].sum(),
        clients=g["orig_h"].nunique())
    out.insert(0, "flows", counts.sum(axis=1))
    out["bytes"] = out["orig_bytes"] + out["resp_bytes"]
    out = out.reindex(purpose_order(flows, rules))[cols].astype("int64")
    out.index.name = "purpose"
    out.columns.name = None
    return out


def host_status(flows: pd.DataFrame, rules: "RuleSet | None" = None, *,
                failing_only: bool = True) -> pd.DataFrame:
    """Which clients fail which purposes.

    Rows are originators (``orig_h``, the side that opened the connection), columns purposes
    (order of :func:`purpose_order`, ``dns`` included, :data:`NO_PURPOSE` left out). A cell is the
    worst verdict of that client's flows for that purpose: ``blocked`` > ``unexpected`` > ``ok``;
    ``''`` when the client had no such flow.

    :param failing_only: keep only clients with at least one blocked or unexpected flow, and only
        purposes where some client failed.
    :returns: DataFrame of strings, shape (clients, purposes), index named ``client``, columns
        named ``purpose`` (both text labels; shape (0, 0) when no client qualifies); rows sorted by
        number of failing flows (descending), then address.
    :raises KeyError: ``flows`` lacks ``purpose``, ``verdict`` or ``orig_h``.
    """
    f = flows[_purposes(flows) != NO_PURPOSE] if len(flows) else flows
    if not len(f):
        return pd.DataFrame(index=_text_index("client"), columns=_text_index("purpose"), dtype=object)
    f = f.assign(sev=f["verdict"].map(_SEVERITY).fillna(0).astype(int),
                 failing=f["verdict"].isin(["blocked", "unexpected"]))
    worst = f.groupby(["orig_h", "purpose"])["sev"].max().unstack()
    names = {v: k for k, v in _SEVERITY.items()}
    table = worst.apply(lambda col: col.map(lambda s: "" if pd.isna(s) else names[int(s)])).astype(object)
    fails = f.groupby("orig_h")["failing"].sum()
    order = [p for p in purpose_order(f, rules) if p in table.columns]
    table = table[order]
    if failing_only:
        table = table.loc[fails[fails > 0].index]
        bad = [c for c in table.columns if table[c].isin(["blocked", "unexpected"]).any()]
        table = table[bad]
    key = pd.DataFrame({"n": fails.reindex(table.index).fillna(0).to_numpy(), "h": table.index},
                       index=table.index)
    table = table.loc[key.sort_values(["n", "h"], ascending=[False, True]).index]
    table.index.name, table.columns.name = "client", "purpose"
    return table


def server_names(flows: pd.DataFrame, rules: "RuleSet | None" = None) -> pd.DataFrame:
    """The server names each purpose resolved to (documented purposes and ``dns`` only).

    One row per (purpose, server name): ``purpose``, ``server_name`` (the name the client asked
    for; ``''`` when none was seen), ``name_source`` (``sni``/``http_host``/``dns``, joined with
    ``,`` when several), ``addresses`` (distinct responder addresses, ``,``-joined, at most 5 then
    ``…``), ``flows``, ``ok``, ``blocked``, ``unexpected`` (counts). For ``dns`` flows the name is
    the query. Strings are untrusted packet text. A table read back from the tool's CSV with
    ``pd.read_csv`` works as well: a missing text value is taken as empty text.

    :returns: DataFrame, index 0…n-1, rows in purpose order then by flow count (descending);
        the four text columns ``object`` of Python ``str``, as the flow table's and
        :func:`kscc_traffic.readiness`'s (not pandas 3's ``str`` dtype), the counts ``int64``,
        also with no row.
    :raises ValueError: ``flows`` lacks a column it reads (``purpose``, ``verdict``,
        ``server_name``, ``query``, ``name_source``, ``resp_h``; the message names them).
    """
    cols = ["purpose", "server_name", "name_source", "addresses", "flows", "ok", "blocked", "unexpected"]
    missing = [c for c in ("purpose", "verdict", "server_name", "query", "name_source", "resp_h") if c not in flows]
    if missing:
        raise ValueError(f"server_names: the flow table has no column {', '.join(map(repr, missing))} (a table of "
                         "kscc_traffic.analyze, see kscc_traffic.COLUMNS)")
    # (a table read back from the tool's CSV: an empty cell is NaN there, empty text here)
    flows = text_filled(flows, ("purpose", "verdict", "server_name", "query", "name_source", "resp_h"))
    f = flows[_purposes(flows) != NO_PURPOSE] if len(flows) else flows
    if not len(f):   # (the dtypes as with rows: text, then int64 counts)
        return pd.DataFrame({c: pd.Series([], dtype=object) if i < 4 else np.zeros(0, np.int64)
                             for i, c in enumerate(cols)})
    name = f["server_name"].where(f["server_name"] != "", f["query"])
    f = f.assign(name=name.fillna(""))

    def addrs(s: pd.Series) -> str:
        u = list(dict.fromkeys(s))
        return ", ".join(u[:5]) + (", …" if len(u) > 5 else "")

    rows = []
    order = {p: i for i, p in enumerate(purpose_order(f, rules))}
    for (purpose, nm), g in f.groupby(["purpose", "name"], sort=False):
        v = g["verdict"].value_counts()
        rows.append({"purpose": purpose, "server_name": nm,
                     "name_source": ",".join(sorted(set(g["name_source"]) - {""})),
                     "addresses": addrs(g["resp_h"]), "flows": len(g),
                     "ok": int(v.get("ok", 0)), "blocked": int(v.get("blocked", 0)),
                     "unexpected": int(v.get("unexpected", 0))})
    out = pd.DataFrame(rows, columns=cols).astype(dict.fromkeys(cols[:4], object))
    out["_o"] = out["purpose"].map(order)
    return out.sort_values(["_o", "flows", "server_name"], ascending=[True, False, True]) \
        .drop(columns="_o").reset_index(drop=True)


def attempts_over_time(flows: pd.DataFrame, rules: "RuleSet | int | None" = None, bins: int = 60) -> pd.DataFrame:
    """Connection attempts per time bin and verdict (the lower panel of :func:`chart_timeline`).

    :param rules: taken as by the other helpers (``attempts_over_time(flows, rules)``) and not
        used: the counts are per verdict over every flow, whatever its purpose. An ``int`` here
        is ``bins`` (this function's earlier signature was ``(flows, bins)``).
    :param bins: number of equal-width bins over the capture's span, from the first flow's
        first packet to the last flow's (at least 1; a span of 0 is taken as 1 s).
    :returns: DataFrame indexed by bin start (a ``DatetimeIndex`` named ``time``, dtype
        ``datetime64[ns, UTC]``, exact nanoseconds from ``ts_ns``: the first bin starts at the
        first flow's ``ts_ns``), columns the :data:`VERDICTS` (``int64`` flow counts); with no
        flows, no rows and the same index type, columns and dtypes. For bins of a fixed length
        (flows per minute) resample instead: ``flows.set_index(pd.to_datetime(flows["ts_ns"],
        unit="ns", utc=True)).resample("1min").size()``.
    :raises KeyError: ``flows`` (with a row) lacks ``verdict``, or both ``ts_ns`` and ``ts`` (a
        table without ``ts_ns``, an older CSV read back, is binned by its float ``ts``).
    """
    if isinstance(rules, (int, np.integer)) and not isinstance(rules, bool):
        bins = int(rules)
    bins = max(1, int(bins))
    if not len(flows):
        out = pd.DataFrame({v: np.zeros(0, np.int64) for v in VERDICTS},
                           index=pd.DatetimeIndex([], dtype="datetime64[ns, UTC]", name="time"))
        return out
    ts = _ts_ns(flows)
    lo, hi = int(ts.min()), int(ts.max())
    if hi <= lo:
        hi = lo + 10**9
    # (integer edges: the float seconds of an epoch time carry ~0.2 µs of rounding, which showed
    # as bin starts such as 09:00:00.200000048)
    span = hi - lo
    edges = np.array([lo + span * k // bins for k in range(bins + 1)], dtype=np.int64)
    idx = np.clip(np.searchsorted(edges, ts, side="right") - 1, 0, bins - 1)
    out = pd.DataFrame({"bin": idx, "verdict": flows["verdict"].to_numpy()}) \
        .groupby("bin")["verdict"].value_counts().unstack(fill_value=0)
    out = out.reindex(index=range(bins), columns=list(VERDICTS), fill_value=0).astype("int64")
    out.index = pd.DatetimeIndex(pd.to_datetime(edges[:-1], unit="ns", utc=True), name="time")
    out.columns.name = None
    return out


def _ts_ns(flows: pd.DataFrame) -> np.ndarray:
    """The flows' first-packet times as int64 nanoseconds since the epoch: ``ts_ns`` (exact),
    else ``ts`` (float seconds, clipped to what pandas can show) for a table without it."""
    if "ts_ns" in flows:
        return np.maximum(flows["ts_ns"].to_numpy(np.int64), np.iinfo(np.int64).min + 1)
    return np.round(clip_ts(flows["ts"].to_numpy(float)) * 1e9).astype(np.int64)


# --------------------------------------------------------------------------------------------
# charts
# --------------------------------------------------------------------------------------------
def _label(s, limit: int = 40) -> str:
    """A string safe as a matplotlib label: no control characters, ``$`` not read as maths, at
    most ``limit`` characters (then ``…``)."""
    s = "" if s is None else str(s)
    if len(s) > limit:
        s = s[:limit - 1] + "…"
    s = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" if ord(ch) < 0x100
                else f"\\u{ord(ch):04x}" for ch in s)
    s = s.encode("utf-8", "backslashreplace").decode("utf-8")
    return s.replace("$", r"\$")


def _figure(width: float, height: float) -> "Figure":
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _whole_numbers(axis) -> None:
    """Ticks of a count axis (flows, attempts) at whole numbers only: no "0.5 flows" tick when
    the counts are small (newcomer 31 F14); ``axis``: a matplotlib ``Axis``."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))


def _empty(fig: "Figure", text: str = "no flows") -> "Figure":
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#666")
    ax.set_axis_off()
    return fig


def chart_verdicts(flows: pd.DataFrame, rules: "RuleSet | None" = None) -> "Figure":
    """Stacked horizontal bars: flows per purpose, split by verdict (ok / blocked / unexpected /
    unclassified). Size about 9 × (1.2 + 0.32 per purpose) inches.

    :returns: a :class:`matplotlib.figure.Figure` (a text "no flows" on an empty table).
    :raises ImportError: matplotlib is not installed (``pip install 'kscc-traffic[notebook]'``).
    :raises KeyError: ``flows`` lacks ``purpose``, ``verdict``, ``orig_h``, ``orig_bytes`` or
        ``resp_bytes`` (as :func:`purpose_breakdown`)."""
    b = purpose_breakdown(flows, rules)
    fig = _figure(9, 1.4 + 0.32 * max(len(b), 1))
    if not len(b):
        return _empty(fig)
    ax = fig.add_subplot()
    y = np.arange(len(b))
    left = np.zeros(len(b))
    for v in VERDICTS:
        n = b[v].to_numpy(float)
        if n.any():
            ax.barh(y, n, left=left, color=VERDICT_COLORS[v], label=v, height=0.7)
        left += n
    ax.set_yticks(y, [_label(p) for p in b.index])
    ax.invert_yaxis()
    ax.set_xlabel("flows")
    _whole_numbers(ax.xaxis)
    ax.set_title("Flows per purpose and verdict", loc="left")
    fig.legend(loc="outside right upper", fontsize="small", frameon=False)
    ax.grid(axis="x", alpha=0.3)
    ax.set_axisbelow(True)
    return fig


def chart_volume(flows: pd.DataFrame, rules: "RuleSet | None" = None) -> "Figure":
    """Two panels side by side, one bar per purpose: flows (count) and payload bytes (sent by the
    originator / by the responder, stacked; log-scaled when the values span > 3 decades).

    :returns: a :class:`matplotlib.figure.Figure`; raises as :func:`chart_verdicts`."""
    b = purpose_breakdown(flows, rules)
    fig = _figure(10, 1.4 + 0.32 * max(len(b), 1))
    if not len(b):
        return _empty(fig)
    ax1, ax2 = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(b))
    ax1.barh(y, b["flows"], color="#546e7a", height=0.7)
    ax1.set_yticks(y, [_label(p) for p in b.index])
    ax1.invert_yaxis()
    ax1.set_xlabel("flows")
    _whole_numbers(ax1.xaxis)
    ax1.set_title("Flows per purpose", loc="left")
    ax2.barh(y, b["orig_bytes"], color="#1e88e5", height=0.7, label="sent by client (originator)")
    ax2.barh(y, b["resp_bytes"], left=b["orig_bytes"], color="#90caf9", height=0.7,
             label="sent by server (responder)")
    pos = b["bytes"][b["bytes"] > 0]
    if len(pos) and pos.max() / pos.min() > 1000:
        ax2.set_xscale("symlog", linthresh=1)
    ax2.set_xlabel("payload bytes")
    ax2.set_title("Bytes per purpose", loc="left")
    fig.legend(loc="outside lower center", ncols=2, fontsize="small", frameon=False)
    for ax in (ax1, ax2):
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
    return fig


def chart_timeline(flows: pd.DataFrame, rules: "RuleSet | None" = None, bins: int = 60) -> "Figure":
    """Connection attempts over time (UTC).

    Top panel: one row per purpose, one marker per flow at its first packet (``ts``): ok ●,
    blocked ✕ (red), unexpected ▲ (orange), unclassified · (grey). Bottom panel: attempts per
    time bin (``bins`` bins over the capture), stacked by verdict — a firewall change or an outage
    shows as the moment the red begins.

    :returns: a :class:`matplotlib.figure.Figure` (x axis: UTC times of ``ts``; the bins of
        :func:`attempts_over_time`).
    :raises ImportError: matplotlib is not installed.
    :raises KeyError: ``flows`` lacks ``purpose``, ``verdict`` or ``ts``.
    """
    order = purpose_order(flows, rules)
    fig = _figure(10, 2.6 + 0.3 * max(len(order), 1))
    if not len(flows):
        return _empty(fig)
    import matplotlib.dates as mdates

    ax, axh = fig.subplots(2, 1, sharex=True, height_ratios=[max(len(order), 2) * 0.3, 1.4])
    when = pd.to_datetime(clip_ts(flows["ts"].to_numpy(float)), unit="s").to_numpy()
    ypos = {p: i for i, p in enumerate(order)}
    y = _purposes(flows).map(ypos).to_numpy(float)
    verdict = flows["verdict"].to_numpy()
    for v in VERDICTS:
        m = verdict == v
        if m.any():
            ax.scatter(when[m], y[m], marker=_MARKERS[v], s=_SIZES[v], color=VERDICT_COLORS[v],
                       alpha=0.85 if v != "ok" else 0.6, linewidths=0.4, label=v,
                       zorder=3 if v in ("blocked", "unexpected") else 2)
    ax.set_yticks(range(len(order)), [_label(p) for p in order])
    ax.set_ylim(len(order) - 0.5, -0.5)
    ax.grid(alpha=0.3)
    ax.set_axisbelow(True)
    ax.set_title("Connection attempts over time", loc="left")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small", frameon=False)

    counts = attempts_over_time(flows, rules, bins)
    x = mdates.date2num(counts.index.tz_convert(None).to_numpy())   # (UTC, as naive times)
    width = (x[1] - x[0]) if len(x) > 1 else 1 / 86400
    bottom = np.zeros(len(counts))
    for v in VERDICTS:
        n = counts[v].to_numpy(float)
        if n.any():
            axh.bar(x, n, width=width, bottom=bottom, align="edge", color=VERDICT_COLORS[v],
                    linewidth=0)
        bottom += n
    axh.set_ylabel("attempts")
    _whole_numbers(axh.yaxis)
    axh.grid(axis="y", alpha=0.3)
    axh.set_axisbelow(True)
    loc = mdates.AutoDateLocator()
    axh.xaxis.set_major_locator(loc)
    # ticks within a minute show the whole time of day (09:00:05, not a bare "05" that reads as
    # nothing in particular); minutes and hours as ConciseDateFormatter's defaults
    axh.xaxis.set_major_formatter(mdates.ConciseDateFormatter(
        loc, formats=["%Y", "%b", "%d", "%H:%M", "%H:%M", "%H:%M:%S.%f"],
        zero_formats=["", "%Y", "%b", "%b-%d", "%H:%M", "%H:%M:%S.%f"]))
    axh.set_xlabel("time (UTC)")
    return fig


def chart_host_failures(flows: pd.DataFrame, rules: "RuleSet | None" = None, max_clients: int = 40) -> "Figure":
    """Grid of clients (rows, originator address) × purposes (columns): the worst verdict of the
    client's flows for the purpose, coloured (red blocked, orange unexpected, green ok), with the
    number of failing flows in the cell. Only clients and purposes with a failure; at most
    ``max_clients`` clients (those with the most failing flows).

    :returns: a :class:`matplotlib.figure.Figure` (a text on a table without failures).
    :raises ImportError: matplotlib is not installed.
    :raises KeyError: ``flows`` lacks ``purpose``, ``verdict`` or ``orig_h``."""
    table = host_status(flows, rules, failing_only=True)
    shown = table.head(max_clients)
    fig = _figure(max(7.0, 2.2 + 0.6 * len(shown.columns)), 2.2 + 0.3 * max(len(shown), 1))
    if not len(shown):
        return _empty(fig, "no client has a blocked or unexpected flow")
    from matplotlib.colors import ListedColormap

    ax = fig.add_subplot()
    sev = shown.apply(lambda c: c.map(lambda s: _SEVERITY.get(s, -1) if s else -1)).to_numpy(float)
    cmap = ListedColormap(["#ffffff", VERDICT_COLORS["unclassified"], VERDICT_COLORS["ok"],
                           VERDICT_COLORS["unexpected"], VERDICT_COLORS["blocked"]])
    ax.imshow(sev + 1, cmap=cmap, vmin=0, vmax=4, aspect="auto", interpolation="nearest")
    f = flows[flows["verdict"].isin(["blocked", "unexpected"])]
    n = f.assign(purpose=_purposes(f)).groupby(["orig_h", "purpose"]).size()
    for i, host in enumerate(shown.index):
        for j, purpose in enumerate(shown.columns):
            k = int(n.get((host, purpose), 0))
            if k:
                ax.text(j, i, str(k), ha="center", va="center", color="white", fontsize="small",
                        fontweight="bold")
    ax.set_xticks(range(len(shown.columns)), [_label(p) for p in shown.columns], rotation=35, ha="right")
    ax.set_yticks(range(len(shown)), [_label(h) for h in shown.index])
    ax.set_xticks(np.arange(-0.5, len(shown.columns)), minor=True)
    ax.set_yticks(np.arange(-0.5, len(shown)), minor=True)
    ax.grid(which="minor", color="white", linewidth=2)
    ax.tick_params(which="minor", length=0)
    more = f" (top {max_clients} of {len(table)})" if len(table) > max_clients else ""
    ax.set_title(f"Clients failing purposes{more}\n"
                 "red blocked · orange unexpected · green ok · number = failing flows",
                 loc="left", fontsize="medium")
    return fig


# --------------------------------------------------------------------------------------------
# styled readiness checklist
# --------------------------------------------------------------------------------------------
def style_readiness(checklist: pd.DataFrame, columns: Iterable[str] | None = None) -> "Styler | pd.DataFrame":
    """The readiness checklist (:func:`kscc_traffic.readiness`) as a pandas ``Styler``: the
    ``status`` cell coloured (green verified, red blocked, orange unexpected, grey not seen), rows
    in the checklist's order, every cell HTML-escaped and no ``$…$`` in it read as mathematics by
    Jupyter's MathJax (each ``$`` is shown as itself: names from packets are untrusted text).

    A ``Styler`` needs ``jinja2`` (``pip install 'kscc-traffic[notebook]'``); without it the same
    columns and rows come back as a plain DataFrame (index 0…n-1; its HTML is escaped by pandas),
    without colours, with one :class:`UserWarning` saying so.

    :param checklist: the table of :func:`kscc_traffic.readiness`.

    :param columns: columns to show (default: section, rule, transport, ports, status,
        status_note, flows, ok, blocked, unexpected, reasons, fix; a column the checklist lacks is
        left out).
    :returns: a ``pandas.io.formats.style.Styler``, or without jinja2 a DataFrame.
    """
    cols = list(columns or ["section", "rule", "transport", "ports", "status", "status_note", "flows", "ok",
                            "blocked", "unexpected", "reasons", "fix"])
    t = checklist[[c for c in cols if c in checklist.columns]]
    try:
        import jinja2  # noqa: F401  (pandas' Styler renders with it)
    except ImportError:
        import warnings
        warnings.warn("style_readiness: jinja2 is not installed, the checklist is shown without "
                      "colours (pip install jinja2, or 'kscc-traffic[notebook]')", UserWarning,
                      stacklevel=2)
        return t.reset_index(drop=True)

    def colour(v: str) -> str:
        c = STATUS_COLORS.get(v)
        return f"background-color: {c}; color: white; font-weight: bold" if c else ""

    # every cell HTML-escaped, then each "$" in an element of its own: Jupyter typesets the HTML
    # output with MathJax, which read "$…$" of a name from packets as mathematics (the text then
    # shows as something else: "$x^2$" as x²); MathJax pairs delimiters only within one run of
    # text, so a "$" alone in its <span> stays a "$". The table also carries MathJax's classes
    # for content not to typeset (pandas' option styler.html.mathjax = False), which not every
    # front end reads
    st = t.style.format(_no_maths, escape="html").hide(axis="index")
    st = st.set_table_attributes('class="tex2jax_ignore mathjax_ignore"')
    if "status" in t.columns:
        st = st.map(colour, subset=["status"])
    return st.set_table_styles([{"selector": "td, th", "props": [("text-align", "left")]}], overwrite=False)


def _no_maths(value) -> str:
    """A cell's text (already HTML-escaped) with each ``$`` in a ``<span>`` of its own, which
    MathJax cannot pair with another ``$`` into mathematics."""
    return str(value).replace("$", "<span>$</span>")


def style_table(table: pd.DataFrame, *, max_rows: int | None = -1, max_colwidth: int | None = -1,
                hide_index: bool = False) -> "Styler | pd.DataFrame":
    """Any table (the flow table or rows and columns of it, :func:`server_names`, a part of the
    checklist…) as a pandas ``Styler`` for Jupyter that shows names from packets as text: every
    text cell, row label and column label HTML-escaped and each ``$`` in it in an element of its
    own, so that no ``$…$`` of an SNI, DNS query or HTTP Host is typeset as mathematics by
    Jupyter's MathJax, also in a front end that ignores the ``tex2jax_ignore mathjax_ignore``
    classes the table carries (JupyterLab 4 has been reported to: jupyterlab/jupyterlab#17935;
    ``pd.set_option("display.html.use_mathjax", False)`` gives pandas' own tables only the
    classes). Numbers, times and booleans are formatted as the ``Styler`` does (floats to
    ``styler.format.precision`` decimals, 6 by default); the values themselves are not changed.

    A ``Styler`` needs ``jinja2`` (``pip install 'kscc-traffic[notebook]'``); without it the
    same rows and columns come back as a DataFrame (whose HTML pandas escapes, its ``$`` left to
    the classes), with one :class:`UserWarning` saying so.

    :param table: a DataFrame; not changed.
    :param max_rows: show at most this many rows, the first ones, with a caption saying how many
        there are (a ``Styler`` writes every row it is given: 100 000 flows would make a page
        the browser cannot show); None: every row; default (-1): pandas' ``display.max_rows``
        option, as pandas' own table.
    :param max_colwidth: cut a text cell longer than this many characters to that many, the
        last one ``…``; None: never; default (-1): pandas' ``display.max_colwidth`` option.
    :param hide_index: leave the row labels out (the index 0…n-1 of a table says nothing).
    :returns: a ``pandas.io.formats.style.Styler`` of ``min(len(table), max_rows)`` rows and the
        table's columns (shape (0, n) for an empty table), or without jinja2 a DataFrame of those.
    :raises TypeError: ``table`` is not a DataFrame (a Series: ``series.to_frame()``).
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"style_table: a pandas DataFrame, not {type(table).__name__} "
                        "(a Series: series.to_frame())")
    if max_rows == -1:
        max_rows = pd.get_option("display.max_rows")
    if max_colwidth == -1:
        max_colwidth = pd.get_option("display.max_colwidth")
    total = len(table)
    shown = table if max_rows is None or total <= max_rows else table.head(max(int(max_rows), 0))
    try:
        import jinja2  # noqa: F401  (pandas' Styler renders with it)
    except ImportError:
        import warnings
        warnings.warn("style_table: jinja2 is not installed, the table is a plain DataFrame "
                      "(pip install jinja2, or 'kscc-traffic[notebook]')", UserWarning, stacklevel=2)
        return shown

    def text(value) -> str:
        import html

        s = str(value)
        if max_colwidth is not None and len(s) > max_colwidth:
            s = s[:max(int(max_colwidth) - 1, 0)] + "…"
        return _no_maths(html.escape(s))

    textual = [j for j, d in enumerate(shown.dtypes)
               if d == object or isinstance(d, (pd.StringDtype, pd.CategoricalDtype))]
    # the axes' names ("client", "purpose"; any text in a table of one's own): pandas' Styler
    # writes them into the HTML as they are, neither escaped nor formatted
    shown = shown.copy(deep=False)
    shown.index = shown.index.set_names([None if n is None else text(n) for n in shown.index.names])
    shown.columns = shown.columns.set_names([None if n is None else text(n) for n in shown.columns.names])
    st = shown.style
    if textual:
        # (a missing value, NaN in a table read back from CSV, shown as pandas shows it)
        st = st.format(text, subset=pd.IndexSlice[:, shown.columns[textual]], na_rep="NaN")
    st = st.format_index(text, axis=0).format_index(text, axis=1)
    if hide_index:
        st = st.hide(axis="index")
    if len(shown) < total:
        st = st.set_caption(f"the first {len(shown)} of {total} rows")
    st = st.set_table_attributes('class="tex2jax_ignore mathjax_ignore"')
    return st.set_table_styles([{"selector": "td, th", "props": [("text-align", "left"), ("vertical-align", "top")]}],
                               overwrite=False)
