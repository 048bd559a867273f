"""The live view of ``kscc-traffic live``.

On a terminal (stderr is a TTY): a rich ``Live`` display refreshed every second with the
capture's counters (packets, packets/s, packets dropped by the kernel, active and summarised
flows), flows per documented purpose with their live verdicts (``pending`` = an attempt still
waiting for its answer) and the latest flagged flows with their reason (on a terminal narrower
than :data:`NARROW_COLUMNS`, one line per flow: time, server, purpose, reason; the client from
:data:`CLIENT_COLUMNS`). It is transient: the final report replaces it.

Elsewhere (pipes, CI, log files): one line on stderr when the capture starts, one line per flow
that becomes blocked or unexpected, as it happens, e.g.::

    12:00:03 UTC blocked no_answer tcp 192.0.2.10:40512 -> 203.0.113.10:27200 activation: SYN sent 3 times, no answer

IPv6 endpoints are bracketed: ``[2001:db8::10]:40512``.

Times of day are UTC, as in the final report, the HTML report and the notebook (labelled so).
Strings from packets (names) are escaped like the report does.
"""
from __future__ import annotations

import time
from typing import Optional

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..addresses import endpoint_text
from ..report import escape_terminal
from .session import LIVE_VERDICTS

__all__ = ["LiveView", "render", "event_line"]

_STYLE = {"ok": "green", "pending": "cyan", "blocked": "bold red", "unexpected": "yellow",
          "unclassified": "dim"}


def _clock(ev: dict) -> str:
    """The time of day (UTC, to the second) of an event's ``ts`` (epoch seconds)."""
    return time.strftime("%H:%M:%S", time.gmtime(float(ev.get("ts", 0) or 0)))


def event_line(ev: dict) -> str:
    """One line for a flow that became blocked/unexpected (see the module docstring)."""
    when = _clock(ev)
    purpose = ev.get("purpose") or "-"
    name = escape_terminal(ev.get("server_name") or "")
    detail = escape_terminal(ev.get("detail") or "")
    where = (f"{ev['proto']} {escape_terminal(endpoint_text(ev['orig_h'], ev['orig_p']))} -> "
             f"{escape_terminal(endpoint_text(ev['resp_h'], ev['resp_p']))}")
    return (f"{when} UTC {ev['verdict']} {ev['reason'] or '-'} {where} {purpose}"
            f"{' (' + name + ')' if name else ''}{': ' + detail if detail else ''}")


def _count(n, word: str) -> str:
    """``1 packet``, ``0 packets``, ``2 packets``."""
    return f"{n} {word}{'' if n == 1 else 's'}"


#: below this many columns the latest flagged flows are shown one line each (time, server,
#: purpose, the reason in the verdict's colour; the client too from :data:`CLIENT_COLUMNS`; no
#: name, no box), cut with "…" rather than wrapped over several lines
NARROW_COLUMNS = 150
#: from this many columns the one-line rows show the client too
CLIENT_COLUMNS = 110

def render(status: dict, counts: dict, events, width: Optional[int] = None) -> Group:
    """The live display: ``status`` (interface, engine, elapsed s, packets, pps, dropped,
    active, summarised), ``counts`` ((purpose, live verdict) -> flows), ``events`` (latest
    flagged flows, dicts as :func:`event_line` takes); ``width`` (columns of the terminal,
    None: wide) below :data:`NARROW_COLUMNS`: one line per flagged flow."""
    dropped = status.get("dropped")
    head = Text(
        f"kscc-traffic live · {status.get('interface')} ({status.get('engine')}) · "
        f"{int(status.get('elapsed', 0)) // 60:02d}:{int(status.get('elapsed', 0)) % 60:02d} · "
        f"{_count(status.get('packets', 0), 'packet')}, {_count(round(status.get('pps', 0)), 'packet')}/s, "
        f"{'?' if dropped is None else dropped} dropped by the kernel · "
        f"{status.get('active', 0)} active flows, {status.get('summarised', 0)} summarised",
        style="bold")
    t = Table(title="Flows per purpose (live)", title_justify="left")
    t.add_column("purpose")
    t.add_column("flows", justify="right")
    for v in LIVE_VERDICTS:
        t.add_column(v, justify="right", style=_STYLE[v])
    purposes = sorted({p for p, _ in counts})
    for p in purposes:
        row = [counts.get((p, v), 0) for v in LIVE_VERDICTS]
        t.add_row(Text(escape_terminal(p or "(none)")), str(sum(row)), *(str(x) for x in row))
    if width is not None and width < NARROW_COLUMNS:
        client = width >= CLIENT_COLUMNS
        f = Table(title="Latest flagged flows (a wider terminal shows " + ("names)" if client else "clients and names)"),
                  title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
        f.add_column("UTC", no_wrap=True, min_width=8)
        for col in (("client",) if client else ()) + ("server", "purpose", "reason"):
            f.add_column(col, no_wrap=True, overflow="ellipsis")
        for ev in list(events)[-10:][::-1]:
            f.add_row(_clock(ev),
                      *((Text(escape_terminal(endpoint_text(ev['orig_h'], ev['orig_p']))),) if client else ()),
                      Text(f"{ev['proto']} {escape_terminal(endpoint_text(ev['resp_h'], ev['resp_p']))}"),
                      Text(escape_terminal(ev.get("purpose") or "-")),
                      Text(ev.get("reason") or ev["verdict"], style=_STYLE.get(ev["verdict"], "")))
        return Group(head, t, f)
    f = Table(title="Latest flagged flows", title_justify="left")
    for col in ("time (UTC)", "client", "server", "name", "purpose", "verdict", "reason"):
        f.add_column(col, overflow="fold")
    for ev in list(events)[-10:][::-1]:
        f.add_row(_clock(ev),
                  Text(escape_terminal(endpoint_text(ev['orig_h'], ev['orig_p']))),
                  Text(f"{ev['proto']} {escape_terminal(endpoint_text(ev['resp_h'], ev['resp_p']))}"),
                  Text(escape_terminal(ev.get("server_name") or "")),
                  Text(ev.get("purpose") or "-"),
                  Text(ev["verdict"], style=_STYLE.get(ev["verdict"], "")),
                  Text(ev.get("reason") or ""))
    return Group(head, t, f)


class LiveView:
    """Shows the capture while it runs (see the module docstring).

    :param console: where to draw (default: stderr).
    :param interactive: force the TTY display on/off (default: ``console.is_terminal``).
    """

    def __init__(self, console: Optional[Console] = None, interactive: Optional[bool] = None) -> None:
        self.console = console or Console(stderr=True, highlight=False, emoji=False)
        self.interactive = self.console.is_terminal if interactive is None else interactive
        self._live: Optional[Live] = None

    def started(self, interface: str, engine: str, bpf: str, write: Optional[str]) -> None:
        """The capture is running: one line with ``interface``, ``engine``, the ``write`` file and
        ``bpf``, the capture filter as it is to be shown (a summary of the default one unless ``live
        -v``: :func:`kscc_traffic.live.run.default_filter_summary`)."""
        self.console.print(
            Text(f"Capturing on {interface} (engine {engine}"
                 f"{', writing ' + write if write else ''}); filter: {bpf or '(none)'}"),
            soft_wrap=True)
        if self.interactive:
            self._live = Live(console=self.console, auto_refresh=False, transient=True)
            self._live.start()

    def event(self, ev: dict) -> None:
        """A flow became blocked or unexpected."""
        if not self.interactive:
            self.console.print(Text(event_line(ev)), soft_wrap=True)

    def update(self, status: dict, counts: dict, events) -> None:
        """Redraw (terminal only)."""
        if self._live is not None:
            self._live.update(render(status, counts, events, self.console.width), refresh=True)

    def stop(self) -> None:
        """Remove the display."""
        if self._live is not None:
            self._live.stop()
            self._live = None
