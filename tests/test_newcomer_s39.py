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


def test_an_empty_output_name_is_not_called_a_directory(tmp_path):
    """`-o "$OUT"` with OUT unset: typer reads the empty name as `.`; the Error said
    `.: is a directory`, which a user who gave no `.` cannot place. Status 2, nothing written."""
    for args in (("analyze", BLOCKED, "-f", "csv", "-o", ""), ("report", BLOCKED, "--html", "")):
        p = subprocess.run([sys.executable, "-m", "kscc_traffic", *map(str, args)], capture_output=True,
                           text=True, env=ENV, timeout=120, cwd=tmp_path)
        opt = "--html" if args[0] == "report" else "--output"
        assert (p.returncode, p.stdout) == (2, "")
        assert p.stderr == (f"Error: {opt} . is the current folder (an empty name, from an unset shell "
                            f"variable?, is read so too); give a file name for {opt}\n")
    assert list(tmp_path.iterdir()) == []
    d = _cli("analyze", BLOCKED, "-o", tmp_path)     # another folder: named as before
    assert d.stderr == f"Error: {tmp_path}: is a directory; give a file name for --output\n"


def test_every_reason_is_in_the_reason_help_and_the_readme():
    """`analyze --help` listed the --reason values without dns_truncated (which the option
    accepts), and the README's reason row lacked wrong_source, dns_truncated and the scans."""
    from kscc_traffic.output import REASONS
    p = _cli("analyze", "--help")
    helptext = " ".join(p.stdout.replace("│", " ").split())
    for r in REASONS:
        assert r in helptext, r
    row = next(line for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
               if line.startswith("| `reason` |"))
    assert all(f"`{r}`" in row for r in REASONS), [r for r in REASONS if f"`{r}`" not in row]
