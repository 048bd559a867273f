"""Newcomer session 39: what a support engineer new to the tool met following the README."""
from __future__ import annotations

import os
import subprocess
import sys

from conftest import ROOT

BLOCKED = ROOT / "samples" / "captures" / "blocked_agent.pcap"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "kscc_traffic", *map(str, args)],
                          capture_output=True, text=True, env=ENV, timeout=120)


def test_format_html_says_where_the_html_report_is():
    """`analyze --format html` (the HTML report is `report --html`): the usage error says so,
    status 2, nothing on stdout; other bad formats keep click's plain message."""
    p = _cli("analyze", BLOCKED, "--format", "HTML")
    assert (p.returncode, p.stdout) == (2, "")
    assert p.stderr.splitlines()[0] == (
        "Error: Invalid value for '--format' / '-f': 'HTML' is not one of 'table', 'jsonl', 'csv'; "
        "the HTML report is `kscc-traffic report CAPTURE --html FILE`")
    q = _cli("analyze", BLOCKED, "-f", "xml")
    assert q.returncode == 2 and "HTML report" not in q.stderr
