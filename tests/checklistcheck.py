"""Test helpers shared by the advice and checklist test files (audit 25, newcomers 21, 23, 26):
records written as a pcap, the readiness checklist as both its makers say it, and the HTML
report's finding for one purpose as plain text."""
from __future__ import annotations

import html
import re

from kscc_traffic import load_rules, readiness
from kscc_traffic.html_report import render_html
from kscc_traffic.report import TableSummary
from pcapbuild import pcap_bytes

#: the bundled rules, which these helpers judge with
RULES = load_rules()


def write(tmp_path, name: str, records):
    """``records`` ([(ts, frame bytes)], in that order) as the pcap ``tmp_path/name``; its path."""
    path = tmp_path / name
    path.write_bytes(pcap_bytes(records))
    return path


def page_text(html_text: str) -> str:
    """An HTML fragment's text: tags replaced by spaces, entities unescaped."""
    return html.unescape(re.sub(r"<[^>]+>", " ", html_text))


def checklists(flows) -> list:
    """[readiness(), the streamed TableSummary's readiness] of ``flows``, each indexed by rule:
    both must say the same."""
    return [readiness(flows, RULES).set_index("rule"), TableSummary.of(flows).readiness(RULES).set_index("rule")]


def finding(flows, rule: str) -> str:
    """The text of the HTML report's finding (``<article id="purpose-RULE">``) for ``rule``."""
    page = render_html(flows, RULES, charts=False)
    return page_text(re.search(rf'id="purpose-{rule}">(.*?)</article>', page, re.S).group(1))
