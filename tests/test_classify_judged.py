"""classify's judgement cache (classify.JudgementCache, session 30): judgements kept from batch to
batch of one analysis give what judging again gives, are never shared between two analyses (nor
across rules), and are bounded in number."""
from __future__ import annotations

import importlib
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT
from kscc_traffic import load_rules
from kscc_traffic.classify import CLASS_COLUMNS, JudgementCache, _verdict_groups, classified, classify

analyze_module = importlib.import_module("kscc_traffic.analyze")

RULES = load_rules()
SAMPLES = ROOT / "samples" / "captures"
BUNDLED = ROOT / "rules" / "kscc-cloud.toml"


def table(name: str) -> pd.DataFrame:
    """The flows of a sample capture as classify gets them again (class columns dropped)."""
    return analyze_module.analyze_file(SAMPLES / name, RULES).flows.drop(columns=list(CLASS_COLUMNS))


def moved_agent_ports(tmp_path: Path):
    """The bundled rules with the agents' connection ports moved (23100-23199 -> 23300-23399):
    a flow to 23101 is no longer the documented agent connection."""
    text = BUNDLED.read_text(encoding="utf-8")
    assert 'ports = "23100-23199"' in text
    path = tmp_path / "moved.toml"
    path.write_text(text.replace('ports = "23100-23199"', 'ports = "23300-23399"'), encoding="utf-8")
    return load_rules(path)


def verdict_at(flows: pd.DataFrame, port: int) -> list[str]:
    return flows.loc[flows["resp_p"] == port, "verdict"].tolist()


def test_kept_judgements_give_what_judging_again_gives():
    tables = [table(n) for n in ("baseline_agent.pcap", "blocked_agent.pcap", "unexpected_agent.pcap",
                                 "ipv6_agent.pcap", "intercepted_tls12.pcap")]
    judged = JudgementCache()
    for round_ in range(2):
        for t in tables:
            pd.testing.assert_frame_equal(classify(t, RULES, judged=judged), classify(t, RULES))
        if round_ == 0:
            first_hits, held = judged.hits, len(judged)
    groups = sum(int(_verdict_groups(t, RULES).max()) + 1 for t in tables)
    # the second round found every TCP/UDP group (each table has at most one other group)
    assert judged.hits - first_hits >= groups - len(tables)
    assert len(judged) == held > 0


def test_other_rules_are_not_answered_from_the_cache(tmp_path):
    moved = moved_agent_ports(tmp_path)
    t = table("baseline_agent.pcap")
    judged = JudgementCache()
    first = classify(t, RULES, judged=judged)
    assert verdict_at(first, 23101) == ["ok"]
    again = classify(t, moved, judged=judged)
    pd.testing.assert_frame_equal(again, classify(t, moved))
    assert verdict_at(again, 23101) != ["ok"]       # (the test could fail: the rules matter here)
    # and back: the same rules object as at first, judged anew (what moved held is gone)
    pd.testing.assert_frame_equal(classify(t, RULES, judged=judged), first)
    assert judged.hits == 0


def test_two_analyses_in_one_process_share_no_judgement(tmp_path, monkeypatch):
    moved = moved_agent_ports(tmp_path)
    caches = []

    def spy(flows, rules, capture_end_ns=None, judged=None):
        caches.append(judged)
        return classify(flows, rules, capture_end_ns, judged=judged)

    def spy_classified(flows, rules, capture_end_ns=None, judged=None):
        caches.append(judged)
        return classified(flows, rules, capture_end_ns, judged=judged)

    monkeypatch.setattr(analyze_module, "classify", spy)
    monkeypatch.setattr(analyze_module, "classified", spy_classified)
    path = SAMPLES / "baseline_agent.pcap"
    runs = [analyze_module.analyze_file(path, r).flows for r in (RULES, moved, RULES)]
    assert [verdict_at(f, 23101) for f in runs] == [["ok"], ["unexpected"], ["ok"]]
    # each analysis classified with a cache of its own (one batch each here)
    assert len(caches) == 3 and all(isinstance(c, JudgementCache) for c in caches)
    assert len({id(c) for c in caches}) == 3
    pd.testing.assert_frame_equal(runs[0], runs[2])


def test_cache_is_bounded():
    t = table("baseline_agent.pcap")
    assert _verdict_groups(t, RULES).max() + 1 > 3
    judged = JudgementCache(most=3)
    for _ in range(2):
        pd.testing.assert_frame_equal(classify(t, RULES, judged=judged), classify(t, RULES))
        assert len(judged) == 3
    with pytest.raises(ValueError):
        JudgementCache(most=0)
