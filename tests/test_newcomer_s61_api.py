"""Session 61 newcomer pass (#2): the notebook helpers take the tool's own CSV read back with
``pd.read_csv`` (empty text cells read as NaN), as their docstrings and the README promise."""
import io
from pathlib import Path

import pandas as pd

import kscc_traffic
from kscc_traffic.report import write_csv

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "captures"


def _csv_round_trip(flows: pd.DataFrame) -> pd.DataFrame:
    buf = io.StringIO()
    write_csv(flows, buf)
    buf.seek(0)
    return pd.read_csv(buf)


def test_dns_advice_reads_a_read_csv_table_with_empty_answers():
    # blocked_agent.pcap: a DNS query nothing answered (dns_rcode and dns_answers empty: NaN once
    # read back) beside blocked agent connections; an AttributeError ('float' object has no
    # attribute 'split', classify.sinkhole_address) before
    flows = kscc_traffic.analyze(SAMPLES / "blocked_agent.pcap")
    # and an answer without an address (NOERROR, no record: every empty AAAA answer), as in the
    # newcomer's NAT64 capture: its dns_answers cell reads back as NaN beside NOERROR
    ok = flows.index[(flows["purpose"] == "dns") & (flows["dns_rcode"] == "NOERROR")][0]
    flows.loc[ok, "dns_answers"] = ""
    back = _csv_round_trip(flows)
    assert back.loc[ok, "dns_rcode"] == "NOERROR" and pd.isna(back.loc[ok, "dns_answers"])
    want = kscc_traffic.dns_advice(flows)
    assert want is not None and want["status"] == "blocked" and want["blocked"] == 1
    assert kscc_traffic.dns_advice(back) == want


def test_print_summary_of_a_read_csv_table_matches_the_tools_own():
    from rich.console import Console
    from kscc_traffic.report import TableSummary, print_summary
    from kscc_traffic.rules import load_rules
    flows = kscc_traffic.analyze(SAMPLES / "blocked_agent.pcap")
    rules = load_rules()
    texts = []
    for table in (flows, _csv_round_trip(flows)):
        console = Console(file=io.StringIO(), width=200, color_system=None)
        print_summary(TableSummary.of(table, 40, rules), rules, console)
        texts.append(console.file.getvalue())
    assert "What to change" in texts[0] and "dns" in texts[0]
    assert texts[1] == texts[0]
