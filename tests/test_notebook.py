"""notebooks/traffic_breakdown.ipynb runs top to bottom in a real Jupyter kernel (nbclient +
ipykernel) on a bundled sample and on the shared corpus, and is committed without outputs.

The capture is injected papermill-style: a cell tagged ``injected-parameters`` right after the
cell tagged ``parameters``. The kernel is this interpreter (``sys.executable``), registered under a
private kernel name in a temporary ``JUPYTER_PATH``, so another ``python3`` kernelspec on the
machine cannot be picked by mistake.
"""
from __future__ import annotations

import html

import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

import kscc_traffic

ROOT = Path(__file__).resolve().parents[1]
from conftest import SHARED  # noqa: E402
NOTEBOOK = ROOT / "notebooks" / "traffic_breakdown.ipynb"
SAMPLE = ROOT / "samples" / "captures" / "blocked_agent.pcap"
CORPUS = SHARED / "corpus" / "ksc" / "ns_blocked_agent.pcap"
KERNEL = "kscc-traffic-test"


def test_committed_without_outputs():
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert code, "no code cells"
    for c in code:
        assert c["outputs"] == [] and c["execution_count"] is None, c["source"][:1]
    assert [c for c in code if "parameters" in c["metadata"].get("tags", [])], "no cell tagged parameters"
    # the notebook uses the public API only
    src = "".join("".join(c["source"]) for c in code)
    assert not re.search(r"kscc_traffic\.\w+\.|from kscc_traffic\.|kt\._", src)
    used = set(re.findall(r"\bkt\.(\w+)", src))
    assert used <= set(kscc_traffic.__all__) | {"COLUMNS"}, used - set(kscc_traffic.__all__)


def _hostile_checklist():
    """The blocked sample's checklist with a hostile text in the first row's fix."""
    rules = kscc_traffic.load_rules()
    checklist = kscc_traffic.readiness(kscc_traffic.analyze(SAMPLE, rules), rules).copy()
    checklist.loc[checklist.index[0], "fix"] = "<script>alert(1)</script>"
    return checklist


def test_style_readiness_colours_and_escapes():
    pytest.importorskip("jinja2", reason="jinja2 (pandas Styler) is in the test extra")
    checklist = _hostile_checklist()
    st = kscc_traffic.style_readiness(checklist)
    assert type(st).__name__ == "Styler"
    out = st.to_html()
    assert "<script>" not in out and "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert "background-color: #c62828" in out                      # a blocked status, red
    assert out.count("<tr>") == len(checklist) + 1                   # header + one per rule


def test_style_readiness_without_jinja2_is_a_plain_table(monkeypatch):
    # pandas' Styler needs jinja2: without it style_readiness raised "AttributeError: The
    # '.style' accessor requires jinja2" (a notebook run stopped at the checklist). Now the same
    # rows and columns, no colours, one warning; still escaped in HTML
    checklist = _hostile_checklist()
    monkeypatch.setitem(sys.modules, "jinja2", None)      # import jinja2 -> ImportError
    with pytest.warns(UserWarning, match="jinja2 is not installed"):
        t = kscc_traffic.style_readiness(checklist)
    assert list(t.columns) == ["section", "rule", "transport", "ports", "status", "status_note", "flows", "ok",
                               "blocked", "unexpected", "reasons", "fix"]
    assert t["rule"].tolist() == checklist["rule"].tolist()
    assert t["status"].tolist() == checklist["status"].tolist()
    assert "blocked" in t["status"].tolist()
    out = t._repr_html_()
    assert "<script>" not in out and "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    with pytest.warns(UserWarning):
        assert list(kscc_traffic.style_readiness(checklist, ["rule", "status"]).columns) == ["rule", "status"]


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    pytest.importorskip("nbclient", reason="nbclient is in the test extra: pip install -e '.[test]'")
    pytest.importorskip("ipykernel", reason="ipykernel is in the test extra: pip install -e '.[test]'")
    pytest.importorskip("jinja2", reason="jinja2 (pandas Styler) is in the test extra")
    spec = tmp_path_factory.mktemp("jupyter") / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "kscc-traffic test", "language": "python"}))
    mp = pytest.MonkeyPatch()
    mp.setenv("JUPYTER_PATH", str(spec.parent.parent))
    mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    yield
    mp.undo()


def _run(capture: Path | list[Path] | None, cwd: Path = NOTEBOOK.parent):
    """Execute the notebook in ``cwd`` with ``capture`` (a path or a list of them) injected
    (None: its default); returns the executed notebook."""
    import nbformat
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    value = [str(c) for c in capture] if isinstance(capture, list) else str(capture)
    cell = nbformat.v4.new_code_cell(f"# Injected parameters\ncapture = {value!r}\n")
    cell.metadata["tags"] = ["injected-parameters"]
    if capture is not None:
        nb.cells.insert(at + 1, cell)
    # IPC transport: unix sockets, no TCP ports on a shared machine
    sockets = tempfile.mkdtemp(prefix="kscc-ipc-")  # short: unix socket paths are limited to ~100 bytes
    try:
        # the connection file in the same folder: jupyter_client leaves it behind otherwise
        # (a /tmp/tmpXXXX.json per run)
        km = KernelManager(kernel_name=KERNEL, transport="ipc", ip=os.path.join(sockets, "k"),
                           connection_file=os.path.join(sockets, "kernel.json"))
        NotebookClient(nb, km=km, kernel_name=KERNEL, timeout=180, startup_timeout=60, allow_errors=False,
                       resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
    return nb


def _tagged(nb, tag: str):
    return [c for c in nb.cells if tag in c.metadata.get("tags", [])]


def _text(cell) -> str:
    out = []
    for o in cell.outputs:
        data = o.get("data", {})
        out.append(data.get("text/html") or data.get("text/plain") or o.get("text", ""))
    return "\n".join(out)


def _checklist_rows(cell) -> dict[str, str]:
    """rule -> status, read from the styled checklist's HTML (a <tr> per rule)."""
    html = _text(cell)
    rows = {}
    for tr in re.findall(r"<tr>(.*?)</tr>", html, re.S):
        cells = [re.sub(r"<[^>]+>", "", td).strip() for td in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
        if len(cells) > 4:
            rows[cells[1]] = cells[4]  # section, rule, transport, ports, status, …
    return rows


def _table_rows(cell) -> list[list[str]]:
    """The data cells of each row of the DataFrame table a cell shows, HTML-unescaped."""
    return [[html.unescape(re.sub(r"<[^>]+>", "", td)).strip() for td in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
            for tr in re.findall(r"<tr>(.*?)</tr>", _text(cell), re.S) if "<td" in tr]


def _dns_failed(flows):
    """(query, dns_rcode, dns_answers, verdict, reason) of the DNS flows the DNS errors section
    lists: blocked ones first (file order), then the other error answers (NXDOMAIN… or sinkhole)."""
    dns = flows[flows["purpose"] == "dns"]
    error = ~dns["dns_rcode"].isin(["", "NOERROR"]) | dns["detail"].str.contains("sinkhole address", regex=False)
    rows = [tuple(r) for r in dns[["query", "dns_rcode", "dns_answers", "verdict", "reason"]].itertuples(index=False)]
    blocked = [r for r, b in zip(rows, dns["verdict"] == "blocked") if b]
    return blocked + [r for r, b, e in zip(rows, dns["verdict"] == "blocked", error) if e and not b]


def _check_dns_errors(nb, flows) -> list[tuple]:
    """The DNS errors section lists exactly the failed lookups (query … reason per row)."""
    cell = _tagged(nb, "dns-errors")[0]
    want = _dns_failed(flows)
    got = [tuple(r[4:9]) for r in _table_rows(cell)]
    assert got == want
    if not want:
        assert "No DNS lookup failed" in _text(cell)
    return got


def _check(nb, capture: Path):
    rules = kscc_traffic.load_rules()
    flows = kscc_traffic.analyze(capture, rules)
    expected = dict(zip(*kscc_traffic.readiness(flows, rules)[["rule", "status"]].to_numpy().T))

    # the checklist the notebook shows says what the library says, rule by rule
    assert _checklist_rows(_tagged(nb, "checklist")[0]) == expected
    assert "blocked" in expected.values()

    charts = _tagged(nb, "chart")
    assert len(charts) == 4
    for c in charts:
        assert any("image/png" in o.get("data", {}) for o in c.outputs), c.source

    # flows per purpose: the breakdown table's counts
    table = _text(_tagged(nb, "breakdown")[0])
    for purpose, n in flows[flows.purpose != ""].groupby("purpose").size().items():
        assert re.search(rf"<th>{purpose}</th>\s*<td>{n}</td>", table), purpose

    # which clients fail: every client with a blocked flow is listed
    hosts = _text(_tagged(nb, "hosts")[0])
    for h in set(flows.loc[flows.verdict == "blocked", "orig_h"]):
        assert f"<th>{h}</th>" in hosts
    # the fix of each blocked purpose is shown (the checklist's: the rule's, or the advice of
    # its reasons, e.g. a TLS handshake failed on an open port)
    fixes = _text(_tagged(nb, "fixes")[0])
    fix_of = dict(zip(*kscc_traffic.readiness(flows, rules)[["rule", "fix"]].to_numpy().T))
    for rule, status in expected.items():
        if status == "blocked":
            assert html.escape(fix_of[rule].split(" (")[0]) in fixes, rule
    # DNS (no checklist row) too, when lookups failed: the terminal report's advice (newcomer 29 F8)
    dns = kscc_traffic.dns_advice(flows, rules)
    rows = {r[0]: r for r in _table_rows(_tagged(nb, "fixes")[0])}
    assert ("dns" in rows) is (dns is not None) is bool((flows.purpose.eq("dns") & flows.verdict.eq("blocked")).any())
    if dns is not None:
        assert rows["dns"][1:] == ["53", "blocked", dns["reasons"], dns["fix"]], rows["dns"]
    names = _text(_tagged(nb, "names")[0])
    for n in set(flows.loc[flows.name_source == "sni", "server_name"]):
        assert n in names
    _check_dns_errors(nb, flows)


def test_notebook_runs_on_bundled_sample(kernel_env):
    nb = _run(SAMPLE)
    _check(nb, SAMPLE)
    status = _checklist_rows(_tagged(nb, "checklist")[0])
    assert {status[r] for r in ("agent_connection", "activation", "klsctunnel", "ksn")} == {"blocked"}
    # the one failed lookup of the sample: eu2's query never answered
    assert _check_dns_errors(nb, kscc_traffic.analyze(SAMPLE)) == [
        ("eu2.ksc.kaspersky.com", "", "", "blocked", "no_answer")]
    # names from packets are untrusted: the tables showing them are marked for Jupyter's MathJax
    # not to typeset ("$…$" in an SNI or query shown as mathematics); the checklist too (session 30)
    for tag in ("checklist", "flagged", "names", "dns-errors", "hosts"):
        assert re.search(r'<table[^>]*class="[^"]*\btex2jax_ignore mathjax_ignore\b', _text(_tagged(nb, tag)[0])), tag


def test_dns_errors_section_lists_error_answers_and_sinkholes(kernel_env, tmp_path):
    # no bundled sample has an error answer or a sinkhole for a name the agent needs (only
    # hostile_names.pcap an NXDOMAIN for another name): the captures of test_dns_rcode
    # (NXDOMAIN, REFUSED, an unanswered query, over UDP and TCP) and test_dns_sinkhole
    # (0.0.0.0, 127.0.0.1, ::) are analysed with it, as the notebook takes a list of captures
    import test_dns_rcode
    import test_dns_sinkhole
    (tmp_path / "r").mkdir()
    (tmp_path / "s").mkdir()
    # (and a needed name's HTTPS (type 65) lookups answered with no address: no NODATA for its
    # addresses, not listed; newc-a, session 28)
    import test_dns_nodata_n28 as nd
    from chunkcmp import write
    (tmp_path / "h").mkdir()
    https = write(tmp_path / "h", sum((nd._lookup(50.0 + i, nd.HTTPS, 53090 + i, name="eu6.ksc.kaspersky.com",
                                                  qid=i) for i in range(2)), []), name="https.pcap")
    caps = [test_dns_rcode._capture(tmp_path / "r"), test_dns_sinkhole._capture(tmp_path / "s"),
            ROOT / "samples" / "captures" / "hostile_names.pcap", https]
    nb = _run(caps)
    flows = kscc_traffic.analyze(caps)
    got = _check_dns_errors(nb, flows)
    assert sorted(got) == sorted([
        ("eu1.ksc.kaspersky.com", "NXDOMAIN", "", "blocked", "rejected"),        # UDP and TCP
        ("eu1.ksc.kaspersky.com", "NXDOMAIN", "", "blocked", "rejected"),
        ("eu2.ksc.kaspersky.com", "REFUSED", "", "blocked", "rejected"),
        ("eu2.ksc.kaspersky.com", "REFUSED", "", "blocked", "rejected"),
        ("eu4.ksc.kaspersky.com", "", "", "blocked", "no_answer"),                # UDP only
        ("eu1.ksc.kaspersky.com", "NOERROR", "0.0.0.0", "blocked", "rejected"),   # sinkholes
        ("eu1.ksc.kaspersky.com", "NOERROR", "0.0.0.0", "blocked", "rejected"),
        ("eu2.ksc.kaspersky.com", "NOERROR", "127.0.0.1", "blocked", "rejected"),
        ("eu3.ksc.kaspersky.com", "NOERROR", "::", "blocked", "rejected"),
        # a needed name whose every lookup got no address (NODATA: newcomer 28 F2)
        ("eu5.ksc.kaspersky.com", "NOERROR", "", "blocked", "rejected"),
        ("nul\\x00tab\\x09cr\\x0dlf\\x0a.example.net", "NXDOMAIN", "", "ok", "")])  # another name
    assert [r[3] for r in got] == ["blocked"] * 10 + ["ok"]                      # blocked first
    assert (flows["query"] == "eu6.ksc.kaspersky.com").sum() == 2       # (analysed, not listed)
    out = _text(_tagged(nb, "dns-errors")[0])
    assert "the agent needs this name" in out and "a sinkhole address" in out


@pytest.mark.skipif(not CORPUS.exists(), reason=f"{CORPUS} is absent (../shared is not checked out here)")
def test_notebook_runs_on_shared_corpus(kernel_env):
    nb = _run(CORPUS)
    _check(nb, CORPUS)
    status = _checklist_rows(_tagged(nb, "checklist")[0])
    assert status["discovery"] == "verified" and status["dp_push"] == "blocked"


def test_default_capture_found_from_any_folder_times_exact_utc(kernel_env, tmp_path):
    # papermill runs the kernel where it was started, not in notebooks/: the default capture
    # ("../samples/…") was not found from the repository root. Now the default (None) is the
    # bundled sample wherever the kernel runs. The flagged flows' times come from ts_ns, in UTC:
    # the first blocked flow starts at 09:00:00.050 exactly (the float ts showed .049999952)
    nb = _run(None, cwd=tmp_path)
    _check(nb, SAMPLE)
    flagged = _text(_tagged(nb, "flagged")[0])
    # (a kt.style_table: its cells carry ids and classes, session 31)
    assert re.search(r"<td[^>]*>2026-03-02 09:00:00\.050(000)?\+00:00</td>", flagged), flagged
    assert "09:00:00.049" not in flagged


def test_capture_file_name_is_text_not_markdown_and_unanswered_query_shown(kernel_env, tmp_path):
    # newcomer 17 #6: the first cell put the file name into Markdown in a code span; a backtick
    # ended the span and an <img onerror> in the name became HTML. #10: the flagged table shows
    # the query of the unanswered DNS flow (eu2.ksc.kaspersky.com)
    cap = tmp_path / "x`<img src=x onerror=alert(1)>`*bold*\x1b.pcap"
    cap.write_bytes(SAMPLE.read_bytes())
    nb = _run(cap)
    head = next(c for c in nb.cells if c.cell_type == "code" and "display(HTML(" in c.source)
    html = _text(head)
    assert ("<b>11 flows</b> from 1 capture (<code>x`&lt;img src=x onerror=alert(1)&gt;`*bold*\\x1b.pcap"
            "</code>): 4 ok, 7 blocked, 0 unexpected, 0 unclassified") in html, html
    assert "<img" not in html and "text/markdown" not in str(head.outputs)
    flagged = _text(_tagged(nb, "flagged")[0])
    assert "eu2.ksc.kaspersky.com" in flagged and re.search(r"<th[^>]*>query</th>", flagged)


def test_notebook_reads_a_folder_as_the_command_line(kernel_env, tmp_path):
    # newcomer 22 F6: capture = "<folder>" ended in "CaptureError: …: is a directory"; now a folder
    # is read as `kscc-traffic analyze DIR` reads it: its captures (a ring buffer as one), the
    # entries not read named in a warning the notebook shows
    import test_filesets
    d = tmp_path / "customer"
    test_filesets._write(d, test_filesets.DUMPCAP, test_filesets._records())
    shutil.copy(SAMPLE, d / "blocked_agent.pcap")
    (d / "notes.txt").write_text("x")
    (d / "pc2").mkdir()
    nb = _run(d)
    _check(nb, d)
    head = next(c for c in nb.cells if c.cell_type == "code" and "display(HTML(" in c.source)
    ring = f"{test_filesets.DUMPCAP[0]} .. {test_filesets.DUMPCAP[2]}"
    assert (f"<b>15 flows</b> from 2 captures (<code>blocked_agent.pcap</code>, <code>{ring}</code>): "
            "8 ok, 7 blocked, 0 unexpected, 0 unclassified") in _text(head), _text(head)
    said = "".join(o.get("text", "") for o in head.outputs if o.get("name") == "stderr")
    assert (f"CaptureWarning: {d}: not read: pc2/ (a folder: give it as its own argument); "
            "notes.txt (not a capture)") in said, said


def test_notebook_runs_on_a_proxy_refusal_direct_attempt_and_another_server(kernel_env, tmp_path):
    """Newcomer 30 F1: the capture whose advice raised a TypeError (a proxy's 403, a direct SYN
    unanswered, TLS to another server's name and to another Kaspersky name on 23102): the notebook
    runs, its checklist and fixes are the library's."""
    from test_newcomer30_findings import FOUR, _capture
    capture = Path(_capture(tmp_path, FOUR))
    nb = _run(capture)
    _check(nb, capture)
    fixes = html.unescape(_text(_tagged(nb, "fixes")[0]))
    assert "the agent is configured with another Administration Server address (ksc.other.example" in fixes


def test_names_with_dollar_signs_and_markup_are_text_in_every_table(kernel_env, tmp_path):
    """Session 31: pandas' tables only carry MathJax's classes for content not to typeset, which
    JupyterLab 4 has been reported to ignore (jupyterlab#17935): an SNI "$x^2$.ksc.kaspersky.com"
    showed as mathematics in the names, DNS errors, fixes and flagged tables. Now no run of text of
    any HTML output holds two "$" (MathJax pairs delimiters only within one), markup and control
    characters stay text, and the names are still there to read."""
    from test_library_s31 import dollar_capture, maths_runs
    nb = _run(dollar_capture(tmp_path))
    flows = kscc_traffic.analyze(tmp_path / "dollar_names.pcap")
    shown = {}
    for c in nb.cells:
        for o in c.get("outputs", []):
            out = o.get("data", {}).get("text/html")
            if out:
                assert not maths_runs(out), (c.source[:40], maths_runs(out)[:3])
                assert "<script>" not in out and "\x1b" not in out and "\u202e" not in out
                shown[tuple(c.metadata.get("tags", [])) or c.source[:20]] = html.unescape(re.sub(r"<[^>]+>", "", out))
    for n in ("$x^2$.ksc.kaspersky.com", "<script>alert(1)</script>.example", "\\x1b[31mred\\x1b[0m.example",
              "rtl\\xe2\\x80\\xaemoc.elgoog.example", "$$E=mc^2$$.example", "$a$b$.digicert.com"):
        assert n in set(flows["server_name"]) | set(flows["query"]), n
        assert n in shown[("flagged",)] and n in shown[("names",)], n
    assert "$x^2$.ksc.kaspersky.com" in shown[("dns-errors",)] and "$x^2$.ksc.kaspersky.com" in shown[("fixes",)]
