"""Newcomer 31's findings on the table and HTML reports' presentation: the flows per purpose and the
HTML flagged headings of a capture with no KSC agent traffic (F3), ``ok`` beside the checklist's
"seen one-way" (F13), the flagged flows' groups (F12), whole-number ticks of the count charts (F14).
Each test crafts its own capture; the corpus captures the newcomer ran are checked when present."""
from __future__ import annotations

import html as h
import io
import re

import numpy as np
import pytest

pytest.importorskip("scapy")

from rich.console import Console  # noqa: E402

from chunkcmp import write  # noqa: E402
from conftest import shared_corpus  # noqa: E402
from kscc_traffic import analyze  # noqa: E402
from kscc_traffic.html_report import render_html  # noqa: E402
from kscc_traffic.report import print_table, render_table  # noqa: E402
from kscc_traffic.rules import load_rules  # noqa: E402
from pcapbuild import udp  # noqa: E402
from test_newcomer27_advice import _rej, _up  # noqa: E402
from test_newcomer30_flagged import _workstation  # noqa: E402

RULES = load_rules()
NOT_KSC_TITLE = ("Flows per purpose: other programs' flows on the purposes' ports, not KSC agent traffic "
                 "(see the headline)")


def _flat(text: str) -> str:
    return " ".join(text.split())


def _web(tmp_path, ksc: bool = False):
    """A browser's three nameless HTTPS attempts never answered (discovery, blocked) and a DNS
    query never answered (dns, blocked); ``ksc``: and a refused SYN to TCP 23101 (KSC traffic)."""
    recs = [_up(1.0 + k, 40030 + k, 443, flags="S", seq=100, dst=f"198.51.100.{80 + k}") for k in range(3)]
    recs += [(t, bytes(p)) for t, p in [udp(("192.0.2.10", 41000), ("192.0.2.53", 53), bytes.fromhex(
        "12340100000100000000000003777777076578616d706c6503636f6d0000010001"), t=0.5)]]
    if ksc:
        recs += _rej(5.0, 40040, 23101, 63)
    return analyze(write(tmp_path, sorted(recs), name="ksc.pcap" if ksc else "web.pcap"))


# --- F3: no KSC agent traffic: the purposes' counts and HTML headings say whose flows they are ----

def test_purpose_table_title_says_other_programs_flows_without_ksc_traffic(tmp_path):
    """Fails on main 9ea40cb: the title was "Flows per purpose" alone above "discovery 3 │ 0 │ 3"
    while the checklist said "not seen (no KSC flow…)". The flow table's purposes and verdicts are
    the rules' as before; with one KSC flow the title is the plain one."""
    flows = _web(tmp_path)
    assert sorted(zip(flows["purpose"], flows["verdict"])) == [("discovery", "blocked")] * 3 + [("dns", "blocked")]
    text = _flat(render_table(flows, RULES, width=400))
    assert text.startswith("No KSC agent traffic:")
    assert f"{NOT_KSC_TITLE} ┏" in text
    assert "│ discovery │ 3 │ 0 │ 3 │ 0 │ 0 │" in text
    flows = _web(tmp_path, ksc=True)
    text = _flat(render_table(flows, RULES, width=400))
    assert "Flows per purpose ┏" in text and "other programs' flows on the purposes' ports" not in text


def test_html_flagged_heading_has_no_blocked_badge_on_other_programs_flows(tmp_path):
    """Fails on main 9ea40cb: "discovery — TCP 443 (§A) ✕ blocked 3 flagged flows" under a checklist
    saying "not seen". Now a grey "other programs' flows" badge, the count says not KSC agent
    traffic, a line above the purposes and the charts says so; the rows keep their blocked
    verdicts (badges and the flow table's data-verdict). With a KSC flow: the red badge as before."""
    page = render_html(flows := _web(tmp_path), RULES)
    heads = re.findall(r"<h3>(discovery — .*?|dns — .*?)</h3>", page)
    assert len(heads) == 2 and all("s-blocked" not in x for x in heads), heads
    assert h.unescape(re.sub(r"<[^>]+>", "", heads[0])) == \
        "discovery — TCP 443 (§A) other programs' flows 3 flagged flows on its port, not KSC agent traffic"
    assert '<article class="finding f-not-ksc" id="purpose-discovery">' in page
    text = h.unescape(page)
    assert "the flows below are other programs' flows on the purposes' ports" in text
    assert "what the charts show per purpose are other programs' flows" in text
    assert page.count('data-verdict="blocked"') == len(flows) == 4
    assert page.count('<span class="verdict v-blocked">') == 2 * 4   # (flagged rows and flow table)
    page = render_html(_web(tmp_path, ksc=True), RULES, charts=False)
    assert re.search(r'<h3>discovery — TCP 443 \(§A\) <span class="status s-blocked">✕ blocked</span> '
                     r'<span class="muted">3 flagged flows</span></h3>', page)
    assert "f-not-ksc" not in page.split("</style>", 1)[1] and "other programs&#x27; flows on the" not in page


def test_corpus_nmap_and_skype_say_other_programs_flows():
    """The newcomer's two captures: nmap's probes of 80/443 and Skype's flows (no KSC traffic)."""
    d = shared_corpus("public")
    text = _flat(render_table(analyze(str(d / "rst-refused_nmap-vsn.pcap")), RULES, width=250))
    assert f"{NOT_KSC_TITLE} ┏" in text and "│ cert_check │ 11 │ 3 │ 8 │" in text
    page = render_html(analyze(str(d / "skype_many-flows.pcap")), RULES, charts=False)
    assert "s-blocked" not in "".join(re.findall(r"<h3>.*?</h3>", page))
    assert ("discovery — TCP 443 (§A) other programs' flows 33 flagged flows on its port, not KSC agent "
            "traffic") in h.unescape(re.sub(r"<[^>]+>", "", page))


# --- F13: "ok" in the flows per purpose beside the checklist's "seen one-way" ------------------------

def test_one_way_purposes_ok_flows_are_explained_under_the_purpose_table(tmp_path):
    """Fails on main 9ea40cb: "agent_broadcast 2 │ 2 ok" and, below, "seen one-way", nothing said of
    the two. Now a line under the flows per purpose says what each means. No such purpose: no line."""
    recs = [udp((f"192.0.2.{10 + i}", 15000), ("192.0.2.255", 15000), b"x" * 40, t=1000.0 + 5 * i,
                dst_mac="ff:ff:ff:ff:ff:ff") for i in range(2)]
    flows = analyze(write(tmp_path, [(t, bytes(p)) for t, p in recs], name="bc.pcap"))
    assert list(zip(flows["purpose"], flows["verdict"])) == [("agent_broadcast", "ok")] * 2
    text = _flat(render_table(flows, RULES, width=400))
    note = ("agent_broadcast: ok = each flow is as the rules document it; the checklist's seen one-way = the "
            "capture holds one direction only, so it cannot show that the other side received them (see To verify)")
    assert "│ agent_broadcast │ 2 │ 2 │ 0 │ 0 │ 0 │ └" in text and f"┘ {note} Readiness checklist" in text
    assert "│ agent_broadcast │ udp 15000 broadcast │ seen one-way │ 2 │" in text
    assert "ok = each flow" not in _flat(render_table(_web(tmp_path, ksc=True), RULES, width=400))


def test_corpus_midstream_agent_one_way_note():
    flows = analyze(str(shared_corpus("ksc") / "crafted_midstream_agent.pcap"))
    text = _flat(render_table(flows, RULES, width=250))
    assert ("gateway_udp, agent_broadcast, dp_multicast: ok = each flow is as the rules document it; the "
            "checklist's seen one-way") in text


# --- F12: the flagged flows' groups marked ------------------------------------------------------------

def _console_text(flows, width, max_flagged=40) -> str:
    buf = io.StringIO()
    print_table(flows, RULES, Console(file=buf, width=width, color_system=None, force_terminal=False),
                max_flagged=max_flagged)
    return buf.getvalue()


def test_flagged_groups_are_marked_in_the_table_and_the_compact_list(tmp_path):
    """Fails on main 9ea40cb: blocked, KSC agent traffic and other flows were listed one after the
    other, each in time order, nothing between them (a later group's earlier time read as a list
    out of time order). Now a line between groups and the order said under the table; in the
    compact list each group's name before its first flow."""
    flows = analyze(str(_workstation(tmp_path, blocked=1, browsing=3)))
    text = _console_text(flows, 250)
    table = text[text.index("Flagged flows (5)"):]
    lines = table.splitlines()
    rows = [i for i, x in enumerate(lines) if re.match(r"│ \d\d:\d\d:\d\d\.\d{3} ", x)]
    seps = [i for i, x in enumerate(lines) if x.startswith("├")]
    assert len(rows) == 5 and seps == [rows[1] - 1, rows[2] - 1], table
    assert ("In groups (a line between them): blocked (1), then KSC agent traffic (1), then other flows (3); "
            "time order inside each group") in _flat(table)
    compact = _flat(_console_text(flows, 100))
    assert ("Flagged flows (5) In groups: blocked (1), then KSC agent traffic (1), then other flows (3); time "
            "order inside each group — blocked — ") in compact
    assert compact.index("— KSC agent traffic —") < compact.index("— other flows —")
    # one group: nothing added
    one = _flat(render_table(_web(tmp_path), RULES, width=400))
    assert "In groups" not in one and "├" not in one[one.index("Flagged flows"):]


def test_corpus_ns_unexpected_agent_groups():
    flows = analyze(str(shared_corpus("ksc") / "ns_unexpected_agent.pcap"))
    text = _console_text(flows, 250)
    assert "In groups (a line between them): KSC agent traffic (4), then other flows (1)" in _flat(text)
    lines = text[text.index("Flagged flows"):].splitlines()
    at = next(i for i, x in enumerate(lines) if "crl.example.com" in x)
    assert lines[at - 1].startswith("├") and "11:06:44.074" in lines[at]


# --- F14: whole-number ticks on the count axes ---------------------------------------------------------

def test_count_axes_have_whole_number_ticks(tmp_path):
    """Fails on main 9ea40cb: with 1-3 flows per purpose the flows axis had ticks at 0.5, 1.5, 2.5."""
    pytest.importorskip("matplotlib")
    from kscc_traffic import plots
    flows = analyze(str(_workstation(tmp_path, blocked=1, browsing=2)))
    checked = 0
    for fig, which in ((plots.chart_verdicts(flows, RULES), [("x", 0)]),
                       (plots.chart_volume(flows, RULES), [("x", 0)]),
                       (plots.chart_timeline(flows, RULES), [("y", 1)])):
        fig.canvas.draw() if hasattr(fig.canvas, "draw") else None
        for axis, k in which:
            ax = fig.axes[k]
            lo, hi = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
            ticks = [t for t in (ax.get_xticks() if axis == "x" else ax.get_yticks()) if lo <= t <= hi]
            assert len(ticks) >= 2 and np.allclose(ticks, np.round(ticks)), (fig.axes[k].get_title(), ticks)
            checked += 1
    assert checked == 3
