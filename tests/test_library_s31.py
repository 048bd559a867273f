"""The notebook user's view of the library (session 31): the checklist's text columns are
``object`` as the flow table's, the column tables document themselves in ``help()``, and the
tables the notebook shows keep "$…$" of names from packets from being typeset by MathJax even
where a front end ignores the tables' ``mathjax_ignore`` class (jupyterlab#17935)."""
from __future__ import annotations

import pydoc
import warnings
from pathlib import Path

import pandas as pd
import pytest

import kscc_traffic as kt

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "captures" / "blocked_agent.pcap"
CHECKLIST_TEXT = ["rule", "transport", "ports", "section", "purpose_text", "status", "status_note", "reasons", "fix"]


@pytest.fixture(scope="module")
def flows():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kt.CaptureWarning)
        return kt.analyze(SAMPLE)


@pytest.mark.parametrize("rows", [True, False])
def test_readiness_text_columns_are_object_as_the_flow_table(flows, rows):
    # the flow table's text columns are object (COLUMNS says so); readiness gave pandas' default
    # string dtype ("str" under pandas 3), so a merge or concat of the two changed dtypes and
    # `checklist.dtypes` disagreed with the flow table's
    chk = kt.readiness(flows if rows else flows.iloc[:0])
    assert list(chk.columns) == ["rule", "transport", "ports", "section", "purpose_text", "status",
                                 "status_note", "flows", "ok", "blocked", "unexpected", "reasons", "fix"]
    assert {c: str(chk[c].dtype) for c in CHECKLIST_TEXT} == dict.fromkeys(CHECKLIST_TEXT, "object")
    assert {c: str(chk[c].dtype) for c in ("flows", "ok", "blocked", "unexpected")} == dict.fromkeys(
        ("flows", "ok", "blocked", "unexpected"), "int64")
    assert all(type(v) is str for c in CHECKLIST_TEXT for v in chk[c])
    assert (chk["status"] == "blocked").sum() == (6 if rows else 0)


def test_flow_columns_documents_itself_in_help():
    # help(kscc_traffic.FLOW_COLUMNS) showed dict's own help ("dict() -> new empty dictionary"):
    # now the same documented type as COLUMNS, still a dict, the first columns of COLUMNS
    for table in (kt.FLOW_COLUMNS, kt.COLUMNS):
        text = pydoc.render_doc(table, renderer=pydoc.plaintext)
        assert "name -> (dtype, unit, description)" in text and "new empty dictionary" not in text
        assert "FLOW_COLUMNS" in text and "build_flows" in text
        assert isinstance(table, dict) and type(table).__name__ == "Columns"
    assert list(kt.COLUMNS)[:len(kt.FLOW_COLUMNS)] == list(kt.FLOW_COLUMNS)
    assert kt.FLOW_COLUMNS["ts_ns"] == ("int64", "ns, epoch", "time of the flow's first packet, exact")
    assert dict(kt.FLOW_COLUMNS) == {k: kt.COLUMNS[k] for k in kt.FLOW_COLUMNS}


@pytest.mark.parametrize("name", ["classify", "dns_advice"])
def test_classify_and_dns_advice_say_what_they_return_and_raise(name):
    doc = getattr(kt, name).__doc__
    assert ":returns:" in doc and ":raises" in doc, name

