"""The readiness checklist on an 80-column terminal (newcomer 31 F10): its headers folded
("sec/tio/n", "transport/p/orts") and every "not seen" wrapped over two lines, doubling the table's
height; now short headers ("§", "ports") and the status whole when it fits."""
from __future__ import annotations

from conftest import ROOT
from kscc_traffic import analyze, load_rules
from kscc_traffic.report import render_table

RULES = load_rules()
SAMPLE = ROOT / "samples" / "captures" / "blocked_agent.pcap"


def _checklist(width: int) -> list[str]:
    text = render_table(analyze(SAMPLE), RULES, width=width)
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("Readiness checklist"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("└"))
    return lines[start:end + 1]


def test_checklist_at_80_columns_keeps_headers_and_status_whole():
    lines = _checklist(80)
    assert max(map(len, lines)) <= 80
    header = [c.strip() for c in lines[2].strip("┃").split("┃")]
    assert header == ["§", "purpose", "ports", "status", "flows", "reasons"]
    rows = [ln for ln in lines if ln.startswith("│")]
    cells = [[c.strip() for c in ln.strip("│").split("│")] for ln in rows]
    seen = {c[1]: c[3] for c in cells if c[1]}
    assert seen["mobile_connection"] == "not seen" and seen["agent_connection"] == "blocked"
    assert not any(c[3] in ("not", "seen") for c in cells)
    # (one line per purpose but those whose ports label wraps: 15 purposes, 6 two-line labels)
    assert len(rows) == 15 + 6


def test_checklist_wide_keeps_its_full_headers():
    header = [c.strip() for c in _checklist(200)[2].strip("┃").split("┃")]
    assert header == ["section", "purpose", "transport/ports", "status", "flows", "reasons"]
