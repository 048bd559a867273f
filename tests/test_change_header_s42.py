"""Session 42: the head of a "What to change" entry says the reasons of a purpose's unexpected
flows apart from those of its blocked ones (``cert_check (blocked: no_answer; unexpected:
host_mismatch)``); before, the checklist's union of reasons read as causes of the blocking. The
checklist's ``reasons`` cell keeps the union (its documented meaning)."""
from __future__ import annotations

import re

from kscc_traffic import analyze, load_rules, readiness
from kscc_traffic.report import render_table
from checklistcheck import write
from pcapbuild import dns_answer as _dns, syn_attempts as _syns

RULES = load_rules()


def _entry(flows, rule: str) -> str:
    text = render_table(flows, RULES, width=400)
    change = text.split("What to change:", 1)[1]
    return re.search(rf"^  ({rule} \([^)]*\)):", change, re.M).group(1)


def test_blocked_and_unexpected_reasons_are_said_apart(tmp_path):
    recs = [_dns("ocsp.digicert.com", "198.18.1.4", 999.0, 41000),
            _dns("dnl-03.geo.kaspersky.com", "198.18.1.3", 999.1, 41001),
            *_syns(50001, "198.18.1.4", 80, 1000.0),                   # blocked: no_answer
            *_syns(50002, "198.18.1.3", 80, 1000.5, reset=True)]      # unexpected: host_mismatch
    flows = analyze(write(tmp_path, "mixed.pcap", sorted(recs, key=lambda r: r[0])), RULES)
    web = flows[flows.purpose == "cert_check"].sort_values("orig_p")
    assert list(zip(web.verdict, web.reason)) == [("blocked", "no_answer"), ("unexpected", "host_mismatch")]
    row = readiness(flows, RULES).set_index("rule").loc["cert_check"]
    assert (row.status, row.reasons) == ("blocked", "host_mismatch, no_answer")      # (the union, as documented)
    assert _entry(flows, "cert_check") == "cert_check (blocked: no_answer; unexpected: host_mismatch)"


def test_a_purpose_blocked_only_keeps_its_head(tmp_path):
    recs = [_dns("ocsp.digicert.com", "198.18.1.4", 999.0, 41000),
            _dns("eu1.ksc.kaspersky.com", "198.18.1.5", 999.1, 41001),   # (KSC traffic: advice is given)
            *_syns(50001, "198.18.1.4", 80, 1000.0), *_syns(50003, "198.18.1.4", 80, 1000.2, reset=True),
            *_syns(50004, "198.18.1.5", 23101, 1000.3)]
    flows = analyze(write(tmp_path, "blocked.pcap", sorted(recs, key=lambda r: r[0])), RULES)
    assert _entry(flows, "cert_check") == "cert_check (blocked: no_answer, rejected)"
    assert _entry(flows, "agent_connection") == "agent_connection (blocked: no_answer)"


def test_unexpected_only_keeps_its_head(tmp_path):
    recs = [_dns("dnl-03.geo.kaspersky.com", "198.18.1.3", 999.1, 41001),
            *_syns(50002, "198.18.1.3", 80, 1000.5, reset=True)]
    flows = analyze(write(tmp_path, "unexpected.pcap", sorted(recs, key=lambda r: r[0])), RULES)
    assert _entry(flows, "cert_check") == "cert_check (unexpected: host_mismatch)"
