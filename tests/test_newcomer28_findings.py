"""Newcomer 28 findings (their captures' shapes, built here with scapy).

F9: ``live`` printed the whole default capture filter (~2,000 characters) at every start; it now
says how many ports it covers and where to see it whole, unless ``-v``.
"""
from __future__ import annotations

import sys

import pytest

import netns
from kscc_traffic.live.run import default_filter, default_filter_summary
from kscc_traffic.rules import load_rules

REASON = netns.why_unavailable()


def test_default_filter_summary_counts_the_rules_ports():
    rules = load_rules()
    ports = {(r.transport, r.port_range) for r in rules.rules}
    bpf = default_filter(rules, (8080, 23101))
    text = default_filter_summary(rules, (8080, 23101), vlan=True, chars=len(bpf))
    # (23101 is in a rule's range: nothing added; 8080 is)
    assert text == (f"the default: the rules' {len(ports)} ports/ranges, proxy port 8080, DNS, ICMP, IP fragments, "
                    f"untagged, VLAN and QinQ frames ({len(bpf):,} characters: "
                    "`kscc-traffic rules --bpf --proxy-port 8080` prints it, `live -v` shows it here)")
    assert len(ports) == 14 and len(text) < 250 < len(bpf)


@pytest.mark.skipif(REASON is not None, reason=REASON or "")
@pytest.mark.parametrize("verbose", [False, True])
def test_live_start_line_summarises_the_default_filter(tmp_path, verbose):
    """The ``Capturing on lo`` line: the filter's summary, or (``-v``) the filter itself."""
    ns = netns.new_ns("lo")
    err = tmp_path / "err.txt"
    try:
        with open(err, "w") as fe, open(tmp_path / "out.jsonl", "w") as fo:
            p = netns.popen_in(ns, [sys.executable, "-m", "kscc_traffic", "live", "-i", "lo", "--duration", "1",
                                    "--format", "jsonl", *(["-v"] if verbose else [])], stdout=fo, stderr=fe)
        try:
            rc = p.wait(60)
        finally:
            netns.stop_process(p)
    finally:
        netns.delete_ns(ns)
    first = err.read_text().splitlines()[0]
    assert rc == 0, err.read_text()
    assert first.startswith("Capturing on lo (engine scapy); filter: ")
    bpf = default_filter(load_rules())
    if verbose:
        assert first.endswith(bpf)
    else:
        assert "portrange" not in first and len(first) < 300, first
        assert first.endswith(f"({len(bpf):,} characters: `kscc-traffic rules --bpf` prints it, "
                              "`live -v` shows it here)"), first
