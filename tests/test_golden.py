"""Golden outputs: each sample's flow table equals samples/expected/<capture>.flows.csv.

Regenerate with ``python samples/generate.py --update-expected`` and review the diff."""
from __future__ import annotations

import io

import pandas as pd
import pytest

from conftest import ROOT
from kscc_traffic import analyze

CAPTURES = ROOT / "samples" / "captures"
EXPECTED = ROOT / "samples" / "expected"
SAMPLES = sorted(p.relative_to(CAPTURES) for p in CAPTURES.rglob("*") if p.suffix in (".pcap", ".pcapng"))


@pytest.mark.parametrize("rel", SAMPLES, ids=str)
def test_flow_table_matches_golden(rel):
    expected = (EXPECTED / f"{rel}.flows.csv").read_text(encoding="utf-8")
    got = io.StringIO()
    analyze(str(CAPTURES / rel)).to_csv(got, index=False, lineterminator="\n")
    assert got.getvalue().splitlines() == expected.splitlines()


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
