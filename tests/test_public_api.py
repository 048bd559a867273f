"""The public surface is deliberate: names appear or disappear only on purpose, and every column
and command is documented in the README."""
from __future__ import annotations

import kscc_traffic
from conftest import ROOT

EXPECTED_API = {
    "COLUMNS", "FLOW_COLUMNS", "Analysis", "analyze", "analyze_file", "analyze_files", "read_flows", "decode",
    "read_frames", "build_flows", "classify", "readiness", "dns_advice", "load_rules", "RuleSet",
    "KsccTrafficError", "CaptureError", "UnsupportedFormat", "TruncatedCapture", "CorruptCapture",
    "RulesError", "EngineError", "CaptureWarning",
    "purpose_breakdown", "host_status", "server_names", "attempts_over_time", "chart_verdicts",
    "chart_volume", "chart_timeline", "chart_host_failures", "style_readiness", "style_table",
}


def test_public_names_are_pinned():
    assert set(kscc_traffic.__all__) == EXPECTED_API
    for name in kscc_traffic.__all__:
        assert getattr(kscc_traffic, name) is not None


def test_public_callables_have_docstrings():
    for name in kscc_traffic.__all__:
        obj = getattr(kscc_traffic, name)
        if callable(obj):
            assert (obj.__doc__ or "").strip(), name


def test_every_output_column_is_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [c for c in kscc_traffic.COLUMNS if f"`{c}`" not in readme]
    assert not missing, f"columns not in README.md: {missing}"


def test_every_command_is_documented_in_the_readme():
    from kscc_traffic.cli import app
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    names = [c.name or c.callback.__name__ for c in app.registered_commands]
    assert names
    for n in names:
        assert f"kscc-traffic {n}" in readme, n
