"""Golden outputs: each sample's flows as ``kscc-traffic analyze <capture> --format csv`` writes
them equal samples/expected/<capture>.flows.csv, byte for byte.

Regenerate with ``python samples/generate.py --out /tmp/x --update-expected`` (it runs that
command line on every capture) and review the diff."""
from __future__ import annotations

import csv
import subprocess
import sys

import pandas as pd
import pytest

from conftest import ROOT
from kscc_traffic import analyze

CAPTURES = ROOT / "samples" / "captures"
EXPECTED = ROOT / "samples" / "expected"
SAMPLES = sorted(p.relative_to(CAPTURES) for p in CAPTURES.rglob("*") if p.suffix in (".pcap", ".pcapng"))


@pytest.fixture(scope="module")
def cli_rows(tmp_path_factory) -> tuple[str, dict[str, list[str]]]:
    """The command line run once on every sample (``--format csv``): its header line and its
    row lines by capture name (each capture's rows in its own order: the report goes file by
    file, and a capture is named by its file name, as when analysed alone)."""
    out = tmp_path_factory.mktemp("golden") / "samples.csv"
    p = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", *(str(CAPTURES / r) for r in SAMPLES),
                        "--format", "csv", "--output", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 1 and p.stderr == "", p.stderr     # (some samples are blocked)
    header, *lines = out.read_text(encoding="utf-8").splitlines()
    at = next(csv.reader([header])).index("capture")
    by: dict[str, list[str]] = {}
    for line in lines:   # (one line per row: control characters in names are written as text)
        by.setdefault(next(csv.reader([line]))[at], []).append(line)
    assert sorted(by) == sorted(r.name for r in SAMPLES)
    return header, by


@pytest.mark.parametrize("rel", SAMPLES, ids=str)
def test_csv_report_matches_golden(rel, cli_rows):
    header, by = cli_rows
    expected = (EXPECTED / f"{rel}.flows.csv").read_text(encoding="utf-8").splitlines()
    assert [header, *by[rel.name]] == expected


@pytest.mark.parametrize("rel", SAMPLES, ids=str)
def test_library_flows_match_golden(rel):
    """kscc_traffic.analyze() gives the flows of the golden file (the CSV writes the same values
    as text: ts rounded to the µs, formulas quoted): each flow's key, times and judgement."""
    keep = ["uid", "ts_ns", "orig_h", "orig_p", "resp_h", "resp_p", "proto", "conn_state",
            "history", "purpose", "verdict", "reason"]
    got = analyze(str(CAPTURES / rel))[keep].astype(str).reset_index(drop=True)
    want = pd.read_csv(EXPECTED / f"{rel}.flows.csv", dtype=str, keep_default_na=False)[keep]
    pd.testing.assert_frame_equal(got, want, obj=str(rel))


def test_same_traffic_on_every_link_layer_gives_the_same_flows():
    """Ethernet, 802.1Q, QinQ, Linux SLL2, raw IP and BSD loopback copies of one exchange."""
    keep = ["ts", "orig_h", "orig_p", "resp_h", "resp_p", "proto", "service", "orig_pkts", "orig_bytes",
            "resp_pkts", "resp_bytes", "conn_state", "history", "server_name", "purpose", "verdict", "reason"]
    tables = {p.name: pd.read_csv(p, keep_default_na=False)[keep]
              for p in sorted((EXPECTED / "linktypes").glob("*.csv"))}
    assert len(tables) == 6
    first = next(iter(tables.values()))
    assert len(first) >= 2
    for name, t in tables.items():
        pd.testing.assert_frame_equal(t, first, obj=name)
