"""Capture names: unique within one run, the same whatever ``-j`` and the order of the files, a
file analysed alone keeps its file name (and so its uids); escaped in every output and in every
warning line (kscc_traffic.analyze.capture_names, kscc_traffic.text.name_text)."""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from conftest import ROOT
from kscc_traffic.analyze import analyze_file, analyze_files, capture_names
from kscc_traffic.capture.stats import ReadStats
from kscc_traffic.parallel import analyze_each
from kscc_traffic.rules import load_rules
from kscc_traffic.text import name_text, path_text

SAMPLE = ROOT / "samples" / "captures" / "blocked_agent.pcap"
GOLDEN = ROOT / "samples" / "expected" / "blocked_agent.pcap.flows.csv"
RULES = load_rules()
#: a file name with ESC, a newline, HTML and a formula start
EVIL = "=cmd\x1b[31m\n<b>x.pcap"
EVIL_TEXT = "=cmd\\x1b[31m\\x0a<b>x.pcap"


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "kscc_traffic", *map(str, args)], capture_output=True,
                          text=True, timeout=300, cwd=cwd, errors="surrogateescape")


def jsonl(p) -> list[dict]:
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


@pytest.fixture
def twins(tmp_path):
    """d1/blocked_agent.pcap and d2/blocked_agent.pcap: the same file name and the same packets
    (d2's header's unused ``sigfigs`` field set: the same bytes would be one capture given twice,
    read once, newcomer 33 #3)."""
    for d in ("d1", "d2"):
        (tmp_path / d).mkdir()
        shutil.copy(SAMPLE, tmp_path / d / SAMPLE.name)
    data = bytearray(SAMPLE.read_bytes())
    assert data[:4] in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4") and data[12:16] == bytes(4)
    data[12] = 1
    (tmp_path / "d2" / SAMPLE.name).write_bytes(bytes(data))
    return tmp_path


def golden_uids() -> list[str]:
    with open(GOLDEN, newline="", encoding="utf-8") as f:
        return [r["uid"] for r in csv.DictReader(f)]


# --- the naming rule ---------------------------------------------------------------------------

def test_names_file_name_when_unique_else_shortest_distinct_end(tmp_path):
    assert capture_names(["x.pcap"]) == ["x.pcap"]
    assert capture_names(["d1/x.pcap", "d2/x.pcap", "y.pcap"]) == ["d1/x.pcap", "d2/x.pcap", "y.pcap"]
    assert capture_names(["d2/x.pcap", "d1/x.pcap"]) == ["d2/x.pcap", "d1/x.pcap"]
    assert capture_names(["a/b/x.pcap", "c/b/x.pcap", "d/e/x.pcap"]) == ["a/b/x.pcap", "c/b/x.pcap", "e/x.pcap"]
    assert capture_names(["/a/x.pcap", "/b/a/x.pcap"]) == ["/a/x.pcap", "b/a/x.pcap"]
    # relative and absolute spellings of the same folders compare as the same place
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        assert capture_names([tmp_path / "d1" / "x.pcap", "d2/x.pcap"]) == ["d1/x.pcap", "d2/x.pcap"]
        # the same file given twice: told apart by a count
        assert capture_names(["x.pcap", "./x.pcap"]) == ["x.pcap", "x.pcap (2)"]
        assert capture_names(["d1/x.pcap", "d1/x.pcap", "d2/x.pcap"]) == ["d1/x.pcap", "d1/x.pcap (2)", "d2/x.pcap"]
    finally:
        os.chdir(cwd)


def test_names_are_escaped_and_stay_distinct():
    assert capture_names([EVIL]) == [EVIL_TEXT]
    assert capture_names([f"n/{EVIL}", f"m/{EVIL}"]) == [f"n/{EVIL_TEXT}", f"m/{EVIL_TEXT}"]
    # a literal backslash is doubled, so "\x1b" typed out and a real ESC give different names
    assert capture_names(["a/\\x1b.pcap", "a/\x1b.pcap"]) == ["\\\\x1b.pcap", "\\x1b.pcap"]
    assert name_text("a\u202eb\x85c\udcff.pcap") == "a\\u202eb\\x85c\\xff.pcap"   # bidi, C1, not UTF-8
    assert name_text("plain-name_1.pcapng") == "plain-name_1.pcapng"
    assert path_text(f"dir\n/{EVIL}") == f"dir\\x0a/{EVIL_TEXT}"


def test_warning_lines_cannot_carry_control_characters():
    st = ReadStats()
    st.warn("a\x1b[2Jb\nc: damaged")
    assert st.warnings == ["a\\x1b[2Jb\\x0ac: damaged"]


# --- same file name in two folders ---------------------------------------------------------------

def test_same_file_name_in_two_folders_distinct_names_and_uids(twins):
    runs = {}
    for jobs in (1, 2):
        for order in (("d1", "d2"), ("d2", "d1")):
            p = cli("analyze", *(f"{d}/{SAMPLE.name}" for d in order), "--format", "jsonl", "-j", jobs,
                    cwd=twins)
            assert p.returncode == 1, p.stderr
            rows = jsonl(p)
            runs[jobs, order] = {(r["capture"], r["uid"]) for r in rows}
            assert [r["capture"] for r in rows][0] == f"{order[0]}/{SAMPLE.name}"   # rows file by file
    first = runs[1, ("d1", "d2")]
    assert all(r == first for r in runs.values())
    by = {c: {u for cc, u in first if cc == c} for c in ("d1/blocked_agent.pcap", "d2/blocked_agent.pcap")}
    assert set(c for c, _ in first) == set(by)
    n = len(golden_uids())
    assert len(by["d1/blocked_agent.pcap"]) == len(by["d2/blocked_agent.pcap"]) == n == 11
    assert not by["d1/blocked_agent.pcap"] & by["d2/blocked_agent.pcap"]
    # and neither is the single-file run's uids (those are seeded with the bare file name)
    assert not (by["d1/blocked_agent.pcap"] | by["d2/blocked_agent.pcap"]) & set(golden_uids())


def test_a_file_analysed_alone_keeps_its_file_name_and_uids(twins):
    p = cli("analyze", f"d1/{SAMPLE.name}", "--format", "jsonl", cwd=twins)
    rows = jsonl(p)
    assert {r["capture"] for r in rows} == {"blocked_agent.pcap"}
    assert [r["uid"] for r in rows] == golden_uids()
    # and the other twin, skipped as unreadable, does not change that
    (twins / "d2" / SAMPLE.name).write_bytes(b"not a capture at all")
    p = cli("analyze", f"d1/{SAMPLE.name}", f"d2/{SAMPLE.name}", "--format", "jsonl", "--lenient", cwd=twins)
    assert "Warning: skipped d2/blocked_agent.pcap: " in p.stderr
    rows = jsonl(p)
    assert {r["capture"] for r in rows} == {"blocked_agent.pcap"}
    assert [r["uid"] for r in rows] == golden_uids()


@pytest.mark.parametrize("jobs", [1, 2])
def test_library_names_each_capture_of_the_run(twins, jobs):
    paths = [twins / "d2" / SAMPLE.name, twins / "d1" / SAMPLE.name]
    got = list(analyze_each(paths, RULES, jobs=jobs))
    assert [r.name for r in got] == ["d2/blocked_agent.pcap", "d1/blocked_agent.pcap"]
    for r in got:
        flows = pd.concat(list(r.batches()), ignore_index=True)
        assert set(flows["capture"]) == {r.name}
    a = analyze_files(paths, RULES)
    assert list(dict.fromkeys(a.flows["capture"])) == ["d2/blocked_agent.pcap", "d1/blocked_agent.pcap"]
    assert a.flows["uid"].is_unique
    assert list(analyze_file(paths[0], RULES).flows["uid"]) == golden_uids()


def test_html_report_lists_both_captures(twins):
    out = twins / "r.html"
    p = cli("report", f"d1/{SAMPLE.name}", f"d2/{SAMPLE.name}", "--html", out, cwd=twins)
    assert p.returncode == 1, p.stderr
    page = out.read_text("utf-8")
    assert "Captures: d1/blocked_agent.pcap (11 flows), d2/blocked_agent.pcap (11 flows)" in page


# --- escaped in every output -----------------------------------------------------------------------

@pytest.fixture
def evil(tmp_path):
    """A capture named EVIL whose last record is cut (a warning line names it), beside a plain one."""
    data = SAMPLE.read_bytes()
    (tmp_path / EVIL).write_bytes(data[:-7])
    shutil.copy(SAMPLE, tmp_path / "plain.pcap")
    return tmp_path


def _no_raw_controls(text: str) -> None:
    bad = [hex(ord(c)) for c in text if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) <= 0x9F]
    assert bad == []


def test_evil_name_in_table_and_warning(evil):
    p = cli("analyze", EVIL, "plain.pcap", cwd=evil)
    assert p.returncode == 1, p.stderr
    _no_raw_controls(p.stdout + p.stderr)
    assert f"Captures: {EVIL_TEXT} (11 flows), plain.pcap (11 flows)" in p.stdout
    assert "┃ capture " in p.stdout                      # flagged flows say which capture
    assert p.stderr == (f"Warning: {EVIL_TEXT}: file cut mid-record at offset 3443: 90 of 97 bytes "
                        "present; 1 record skipped\n")


def test_evil_name_in_csv_jsonl_and_html(evil):
    p = cli("analyze", EVIL, "--format", "csv", cwd=evil)
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    assert len(rows) == 11
    assert {r["capture"] for r in rows} == {"'" + EVIL_TEXT}      # formula guard on top of escaping
    _no_raw_controls(p.stdout.replace("\n", ""))
    assert p.stderr.startswith(f"Warning: {EVIL_TEXT}: ")
    p = cli("analyze", EVIL, "--format", "jsonl", cwd=evil)
    assert {r["capture"] for r in jsonl(p)} == {EVIL_TEXT}
    out = evil / "r.html"
    p = cli("report", EVIL, "--html", out, cwd=evil)
    page = out.read_text("utf-8")
    assert "=cmd\\x1b[31m\\x0a&lt;b&gt;x.pcap" in page and "<b>x.pcap" not in page
    assert "\x1b" not in page
    assert p.stderr.startswith(f"Warning: {EVIL_TEXT}: ")


def test_evil_path_in_error_lines(tmp_path):
    p = cli("analyze", f"no\x1b]0;t\x07/{EVIL}", cwd=tmp_path)
    assert p.returncode == 2
    assert p.stderr == f"Error: no\\x1b]0;t\\x07/{EVIL_TEXT}: no such file\n"
    (tmp_path / EVIL).write_bytes(b"\x00" * 64)
    p = cli("analyze", EVIL, cwd=tmp_path)
    assert p.returncode == 2
    assert p.stderr.startswith(f"Error: {EVIL_TEXT}: ") and p.stderr.count("\n") == 1
    _no_raw_controls(p.stderr)


# --- decoder warnings name their capture -----------------------------------------------------------

def _gre_capture(path, port: int = 50000) -> None:
    scapy = pytest.importorskip("scapy.all")
    from pcapbuild import pcap_bytes, tcp_session
    recs = []
    for t, pkt in tcp_session(("10.0.0.5", port), ("203.0.113.10", 23100), c_data=b"hello"):
        outer = scapy.Ether() / scapy.IP(src="198.51.100.1", dst="198.51.100.2") / scapy.GRE() / pkt[scapy.IP]
        recs.append((t, outer))
    path.write_bytes(pcap_bytes(recs))


def test_decoder_warnings_name_their_capture(tmp_path):
    for d, port in (("a", 50000), ("b", 50001)):      # (not the same bytes: newcomer 33 #3)
        (tmp_path / d).mkdir()
        _gre_capture(tmp_path / d / "gre.pcap", port)
    shutil.copy(SAMPLE, tmp_path / "plain.pcap")
    for jobs in (1, 2):
        p = cli("analyze", "a/gre.pcap", "plain.pcap", "b/gre.pcap", "-j", jobs, cwd=tmp_path)
        assert p.returncode == 1, p.stderr
        assert p.stderr.splitlines() == [
            f"Warning: {d}/gre.pcap: decode: 7 tunnelled packets decoded as their inner packet, "
            "outer headers dropped (GRE 7)" for d in ("a", "b")]
    a = analyze_file(tmp_path / "a" / "gre.pcap", RULES)
    assert a.warnings == ["gre.pcap: decode: 7 tunnelled packets decoded as their inner packet, "
                          "outer headers dropped (GRE 7)"]
