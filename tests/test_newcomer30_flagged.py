"""Newcomer 30's findings on the flagged flows' list (F2) and the checklist of the multicast and
broadcast purposes (F6); each test crafts its own capture."""
from __future__ import annotations

import io
import re
import subprocess
import sys

import pytest

pytest.importorskip("scapy")

from rich.console import Console  # noqa: E402

from conftest import ROOT  # noqa: E402
from kscc_traffic import analyze, readiness  # noqa: E402
from kscc_traffic.html_report import render_html  # noqa: E402
from kscc_traffic.report import TableSummary, print_table  # noqa: E402
from kscc_traffic.rules import load_rules  # noqa: E402
from pcapbuild import eth, ip_of, pcap_bytes, tcp_session, udp  # noqa: E402
from scapy.layers.inet import TCP  # noqa: E402
from test_decode_more_encaps import client_hello  # noqa: E402

RULES = load_rules()
CLIENT, CLOUD = "192.0.2.50", "203.0.113.10"


def _syns(port: int, sport: int, t0: float):
    """An agent's connection attempt to the cloud on ``port``: its SYN sent 4 times, no answer."""
    return [(t0 + dt, eth(ip_of(CLIENT, CLOUD) / TCP(sport=sport, dport=port, flags="S", seq=7)))
            for dt in (0, 1, 3, 7)]


def _workstation(tmp_path, blocked=1, browsing=45):
    """A workstation: ``browsing`` browser connections to 443 (host_mismatch) from t=1000 every 2 s,
    one TLS connection on TCP 23101 naming another server (unexpected, KSC port) at t=1090, and
    ``blocked`` unanswered attempts to 23101, 23102… from t=1050."""
    recs = []
    for i in range(browsing):
        recs += tcp_session((CLIENT, 50000 + i), (f"198.18.0.{i + 1}", 443), t0=1000.0 + 2 * i,
                            c_data=client_hello("www.example.com"), s_data=b"\x16\x03\x03\x00\x01\x00")
    recs += tcp_session((CLIENT, 49000), (CLOUD, 23101), t0=1090.0, c_data=client_hello("www.example.com"),
                        s_data=b"\x16\x03\x03\x00\x01\x00")
    for k in range(blocked):
        # (each to its own port: attempts repeated to one port are one row, attempts.py, session 62)
        recs += _syns(23101 + k, 51000 + k, 1050.0 + 0.1 * k)
    path = tmp_path / "ws.pcap"
    path.write_bytes(pcap_bytes(sorted(recs, key=lambda r: r[0])))
    return path


def _table(flows, width=250, max_flagged=40) -> str:
    buf = io.StringIO()
    print_table(flows, RULES, Console(file=buf, width=width, color_system=None, force_terminal=False),
                max_flagged=max_flagged)
    return buf.getvalue()


def _listed(text: str) -> list[tuple[str, str]]:
    """(server, verdict) of each row of the flagged flows' table, in order."""
    rows = re.findall(r"│ \d\d:\d\d:\d\d\.\d{3} │ [^│]+│ tcp (\S+) +│[^│]*│[^│]*│ (\w+) ", text)
    return rows


def test_a_cut_flagged_list_shows_blocked_then_ksc_then_the_rest(tmp_path):
    """Newcomer 30 F2: the first 40 flagged flows by time were all the browser's host_mismatch
    rows; the blocked attempts to 23101 appeared nowhere. Now the blocked ones come first, then
    the KSC agent traffic (a KSC port), then the rest, in time order inside each."""
    flows = analyze(str(_workstation(tmp_path)))
    assert flows["verdict"].value_counts().to_dict() == {"unexpected": 46, "blocked": 1}
    text = _table(flows)
    rows = _listed(text)
    assert len(rows) == 40, text
    assert rows[0] == (f"{CLOUD}:23101", "blocked"), rows[:3]
    assert rows[1] == (f"{CLOUD}:23101", "unexpected"), rows[:3]
    # the rest in time order: the browser's first 38 connections
    assert [s for s, _ in rows[2:]] == [f"198.18.0.{i + 1}:443" for i in range(38)]
    assert "… 7 more flagged flows (use --format csv or jsonl)" in text


def test_the_cut_line_counts_the_blocked_flows_left_out(tmp_path):
    """More blocked flows than the list holds: the line under it says how many of those left
    out are blocked and names --verdict blocked."""
    flows = analyze(str(_workstation(tmp_path, blocked=3, browsing=4)))
    assert (flows["verdict"] == "blocked").sum() == 3
    text = " ".join(_table(flows, max_flagged=2).split())
    assert ("… 6 more flagged flows, 1 of them blocked (--verdict blocked lists the blocked ones; all of them: "
            "--format csv or jsonl)") in text, text
    s = TableSummary.of(flows, 2, RULES)
    assert s.flagged["verdict"].tolist() == ["blocked", "blocked"]
    assert s.flagged["ts_ns"].is_monotonic_increasing


def test_batches_keep_the_same_choice(tmp_path):
    """A summary fed batch by batch (as analyze's output does) lists the same flows."""
    flows = analyze(str(_workstation(tmp_path))).sort_values("ts_ns", kind="stable")
    whole = TableSummary.of(flows, 40, RULES)
    parts = TableSummary(40, RULES)
    for i in range(0, len(flows), 7):
        parts.add(flows.iloc[i:i + 7])
    assert parts.flagged["uid"].tolist() == whole.flagged["uid"].tolist()
    assert parts.flagged_blocked == whole.flagged_blocked == 1


def test_cli_table_lists_the_blocked_flow(tmp_path):
    """The newcomer's command: the blocked attempt is listed, first."""
    path = _workstation(tmp_path)
    r = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", str(path)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120, env={"COLUMNS": "250", "PATH": ""})
    assert r.returncode == 1, r.stderr
    rows = _listed(r.stdout)
    assert rows[0] == (f"{CLOUD}:23101", "blocked"), r.stdout


def test_html_flow_table_cut_keeps_the_blocked_flows(tmp_path):
    """The HTML report's flow table, cut to fewer rows than the flagged flows, keeps the blocked
    one and the KSC one (as the terminal table does)."""
    flows = analyze(str(_workstation(tmp_path)))
    page = render_html(flows, RULES, max_rows=5, charts=False)
    table = page[page.index('id="flows"'):]
    assert table.count(f"{CLOUD}:23101") == 2, table[:3000]
    assert "Showing 5 of" in page


# --- F6: broadcasts to the distribution point's multicast port ----------------------------------

def _dp_casts(tmp_path, multicast=True, broadcasts=8):
    """A distribution point's multicast to 239.255.0.1:15001 (when ``multicast``) and ``broadcasts``
    agents' broadcasts to 192.0.2.255:15001."""
    recs = []
    if multicast:
        recs.append(udp(("192.0.2.20", 40000), ("239.255.0.1", 15001), t=1000.0, dst_mac="01:00:5e:7f:00:01"))
    for i in range(broadcasts):
        recs.append(udp((f"192.0.2.{100 + i}", 40001 + i), ("192.0.2.255", 15001), t=1001.0 + i,
                        dst_mac="ff:ff:ff:ff:ff:ff"))
    path = tmp_path / "dp.pcap"
    path.write_bytes(pcap_bytes(recs))
    return path


def _checklists(flows):
    return [readiness(flows, RULES).set_index("rule"), TableSummary.of(flows).readiness(RULES).set_index("rule")]


def test_broadcasts_to_15001_are_counted_apart_from_the_multicast(tmp_path):
    """Newcomer 30 F6: "seen one-way, 9 flows on UDP 15001" counted 1 multicast and 8 broadcasts
    as the distribution point's multicast; the broadcasts are not the documented delivery."""
    flows = analyze(str(_dp_casts(tmp_path)))
    dp = flows[flows["purpose"] == "dp_multicast"]
    assert sorted(dp["cast"].tolist()) == ["broadcast"] * 8 + ["multicast"]
    for chk in _checklists(flows):
        row = chk.loc["dp_multicast"]
        assert (row["status"], row["flows"]) == ("seen one-way", 9)
        assert row["fix"].startswith(
            "1 flow on UDP 15001 multicast seen, none answered (no answer is expected; 8 other flows on the port "
            "were sent as broadcasts, not the multicast the page documents: another application's datagrams?, "
            "not counted here): "), row["fix"]


def test_broadcasts_alone_to_15001_do_not_make_the_multicast_advice(tmp_path):
    """Only broadcasts on 15001: the multicast purpose is not seen (a note says what was), and
    no IGMP-snooping advice follows from them."""
    flows = analyze(str(_dp_casts(tmp_path, multicast=False, broadcasts=1)))
    for chk in _checklists(flows):
        row = chk.loc["dp_multicast"]
        assert (row["status"], row["status_note"], row["flows"]) == (
            "not seen", "1 broadcast to the port, not the documented multicast", 1)
    text = " ".join(_table(flows).split())
    assert "not seen (1 broadcast to the port, not the documented multicast)" in text, text
    assert "IGMP snooping" not in text and "To verify" not in text, text


def test_html_flow_table_cut_keeps_the_earliest_of_a_rank_whatever_the_row_order(tmp_path):
    """The flagged flows of one rank that the HTML flow table keeps when cut are the earliest, as the
    terminal table's (flagged_rank, time order inside each rank), also when the table's rows are not
    in time order (a chunked reading writes a flow when it ends; several captures): they were the
    first rows of the table."""
    flows = analyze(str(_workstation(tmp_path, blocked=0, browsing=12)))
    backwards = flows.iloc[::-1].reset_index(drop=True)
    page = render_html(backwards, RULES, max_rows=4, charts=False)
    table = page[page.index('id="flows"'):]
    # (the KSC flow on 23101 first, then the three earliest browser connections)
    assert table.count(f"{CLOUD}:23101") == 1, table[:3000]
    kept = [i for i in range(1, 13) if f"198.18.0.{i}:443" in table]
    assert kept == [1, 2, 3], kept
