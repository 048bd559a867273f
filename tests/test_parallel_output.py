"""Several captures in worker processes, merged in the order given; the report written batch by
batch (kscc_traffic.parallel, kscc_traffic.output)."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kscc_traffic.analyze import analyze_file
from kscc_traffic.output import FlowSink
from kscc_traffic.parallel import analyze_each
from kscc_traffic.report import TableSummary, print_summary, render_table, write_csv, write_jsonl
from kscc_traffic.rules import load_rules
from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
CAPS = ROOT / "samples" / "captures"
FILES = [CAPS / "blocked_agent.pcap", CAPS / "baseline_agent.pcap", CAPS / "unexpected_agent.pcap"]
RULES = load_rules()


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "kscc_traffic", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd)


@pytest.mark.parametrize("jobs", [1, 2])
def test_each_file_in_order_equals_one_by_one(jobs):
    got = list(analyze_each(FILES, RULES, jobs=jobs))
    assert [r.path for r in got] == FILES
    for r, path in zip(got, FILES):
        assert r.error is None
        flows = pd.concat(list(r.batches()), ignore_index=True)
        ref = analyze_file(path, RULES)
        pd.testing.assert_frame_equal(flows.reset_index(drop=True), ref.flows)
        assert r.stats.records == ref.stats[str(path)].records
        assert r.stats.warnings == ref.stats[str(path)].warnings


def test_worker_errors_are_one_line_results(tmp_path):
    bad = tmp_path / "not-a-capture.pcap"
    bad.write_bytes(b"hello world, not a capture at all")
    got = list(analyze_each([FILES[0], bad], RULES, jobs=2))
    assert got[0].error is None and len(pd.concat(list(got[0].batches()))) > 0
    assert got[1].error and "not-a-capture.pcap" in got[1].error and "\n" not in got[1].error
    assert list(got[1].batches()) == []


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_cli_parallel_output_equals_sequential(tmp_path, fmt):
    outs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"j{jobs}.{fmt}"
        r = _cli("analyze", *FILES, "-f", fmt, "-j", jobs, "-o", out)
        assert r.returncode == 1, r.stderr  # the blocked sample is flagged
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    total = sum(len(analyze_file(p, RULES).flows) for p in FILES)
    lines = outs[0].decode().splitlines()
    assert len(lines) == total + (1 if fmt == "csv" else 0)
    if fmt == "csv":
        assert sum(1 for line in lines if line.startswith("ts,uid,")) == 1


def test_sink_writes_one_csv_header_and_the_same_rows_as_one_table():
    flows = analyze_file(FILES[0], RULES).flows
    a, b = flows.iloc[:10], flows.iloc[10:]
    for fmt, writer in (("csv", write_csv), ("jsonl", write_jsonl)):
        out = io.StringIO()
        sink = FlowSink(fmt, out, RULES, lambda o: None)
        sink.add(a)
        sink.add(b)
        sink.close()
        ref = io.StringIO()
        writer(flows, ref)
        assert out.getvalue() == ref.getvalue()
        assert sink.flagged


def test_table_summary_in_batches_equals_whole_table():
    flows = pd.concat([analyze_file(p, RULES).flows for p in FILES], ignore_index=True)
    flows = flows.sort_values("ts_ns", kind="stable").reset_index(drop=True)
    s = TableSummary(max_flagged=5)
    for i in range(0, len(flows), 7):
        s.add(flows.iloc[i:i + 7])
    buf = io.StringIO()
    print_summary(s, RULES, Console(file=buf, width=160, color_system=None, force_terminal=False))
    whole = io.StringIO()
    print_summary(TableSummary.of(flows, 5), RULES, Console(file=whole, width=160, color_system=None,
                                                             force_terminal=False))
    assert buf.getvalue() == whole.getvalue()
    assert s.total == len(flows)
    flagged = flows[flows["verdict"].isin(["blocked", "unexpected"])]
    assert s.flagged_total == len(flagged)
    # (newcomer 30 F2: blocked first, then KSC agent traffic, then the rest; time order in each)
    from kscc_traffic.report import flagged_rank, ksc_purposes
    rank = flagged_rank(flagged, ksc_purposes(RULES))
    first = flagged.iloc[np.lexsort((flagged["ts_ns"].to_numpy(), rank))].head(5)
    assert list(s.flagged["uid"]) == list(first["uid"])
    assert list(s.flagged["verdict"]) == sorted(s.flagged["verdict"], key=lambda v: v != "blocked")
    assert f"Flagged flows ({len(flagged)})" in buf.getvalue()
    assert render_table(flows, RULES).count("Readiness checklist") == 1


def test_cli_lenient_skips_a_bad_file_and_reports_the_rest(tmp_path):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"\xd4\xc3\xb2\xa1" + b"\x00" * 5)  # pcap magic, header cut
    r = _cli("analyze", FILES[1], bad, "-f", "jsonl")
    assert r.returncode == 2 and r.stdout == ""
    assert "bad.pcap" in r.stderr and "Traceback" not in r.stderr
    r = _cli("analyze", FILES[1], bad, "-f", "jsonl", "--lenient")
    assert r.returncode in (0, 1)
    assert len(r.stdout.splitlines()) == len(analyze_file(FILES[1], RULES).flows)
    assert "skipped" in r.stderr and "bad.pcap" in r.stderr


def _small_files():
    import resource
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))    # (stdout and stderr are pipes: no limit)


@pytest.mark.parametrize("lenient", [False, True])
def test_a_full_temporary_folder_with_several_captures_names_the_folder(tmp_path, lenient):
    # break-it 21 F6: "Error: <capture>: No space left on device" (status 2 blamed the capture),
    # and with --lenient the readable captures were skipped ("Warning: skipped …")
    import os
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    args = [sys.executable, "-m", "kscc_traffic", "analyze", *map(str, FILES), "-f", "jsonl", "-j", "2"]
    p = subprocess.run(args + (["--lenient"] if lenient else []), capture_output=True, text=True,
                       preexec_fn=_small_files, env=env, cwd=tmp_path)
    assert p.returncode == 2
    assert p.stderr.startswith("Error: blocked_agent.pcap: the process analysing it cannot write its finished "
                               f"flows to {tmp_path} (File too large); make room there (TMPDIR chooses the "
                               "folder) or analyse with -j 1\n")
    assert "skipped" not in p.stderr and "Traceback" not in p.stderr
    assert p.stdout == ""                                 # (the first capture's rows never came)
    assert list(tmp_path.iterdir()) == []                 # (no temporary file left behind)
    # the advice holds: with -j 1 nothing goes through the temporary folder
    ok = subprocess.run(args[:-2] + ["-j", "1"], capture_output=True, text=True, preexec_fn=_small_files,
                        env=env, cwd=tmp_path)
    assert ok.returncode == 1 and "Error" not in ok.stderr
    assert {json.loads(line)["capture"] for line in ok.stdout.splitlines()} == {f.name for f in FILES}


def test_a_full_temporary_folder_is_not_skipped_by_lenient_with_one_capture(tmp_path):
    import os
    p = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", str(FILES[1]), "-f", "jsonl", "-j", "2",
                        "--chunk-mib", "1", "--lenient"], capture_output=True, text=True,
                       preexec_fn=_small_files, env={**os.environ, "TMPDIR": str(tmp_path)}, cwd=tmp_path)
    assert p.returncode == 2
    assert p.stderr.startswith("Error: baseline_agent.pcap: the second process cannot write its finished "
                               f"flows to {tmp_path}/kscc-traffic-")
    assert "skipped" not in p.stderr and "no capture could be read" not in p.stderr
