"""The finished flows classified (and rendered) in a worker process while the next chunk is read
(kscc_traffic.finishing, ChunkedAnalysis(worker=True), output.Render): the same flows and the
same report bytes as in one process."""
from __future__ import annotations

import io
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from kscc_traffic.chunked import ChunkedAnalysis
from kscc_traffic.finishing import MAX_WAITING, Finisher
from kscc_traffic.output import FlowSink, Render, Rendered
from kscc_traffic.rules import load_rules

from conftest import shared_corpus

ROOT = Path(__file__).resolve().parents[1]
CAPS = ROOT / "samples" / "captures"
RULES = load_rules()
FORK = "fork" in multiprocessing.get_all_start_methods()
needs_fork = pytest.mark.skipif(not FORK, reason="no fork on this platform: the finisher runs inline")


def _batches(path: Path, **kw) -> list:
    run = ChunkedAnalysis(path, RULES, path.name, chunk_bytes=2048, **kw)
    return list(run.batches())


def _children() -> set[int]:
    """PIDs of this process's live children (Linux /proc)."""
    me = str(os.getpid())
    out = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            if fields[1] == me and fields[0] != "Z":
                out.add(int(d.name))
    return out


@needs_fork
@pytest.mark.parametrize("name", ["baseline_agent.pcap", "blocked_agent.pcap", "baseline_dp.pcapng"])
def test_worker_gives_the_same_batches(name):
    path = CAPS / name
    here = _batches(path)
    there = _batches(path, worker=True)
    # (baseline_agent's flows leave in more batches than wait in the worker at once)
    assert len(here) > (MAX_WAITING if name == "baseline_agent.pcap" else 0)
    assert [len(b) for b in there] == [len(b) for b in here]
    for a, b in zip(here, there):
        pd.testing.assert_frame_equal(a, b)


@needs_fork
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_rendered_batches_write_the_same_report(fmt):
    path = CAPS / "baseline_agent.pcap"
    frames, texts = io.StringIO(), io.StringIO()
    a = FlowSink(fmt, frames, RULES, None)
    for b in _batches(path):
        a.add(b)
    a.close()
    b_sink = FlowSink(fmt, texts, RULES, None)
    rendered = _batches(path, worker=True, render=b_sink.render())
    assert all(isinstance(r, Rendered) for r in rendered)
    for r in rendered:
        b_sink.add(r)
    b_sink.close()
    assert texts.getvalue() == frames.getvalue()
    assert b_sink.rows == a.rows == sum(r.rows for r in rendered) > 10
    assert b_sink.flagged == a.flagged
    if fmt == "csv":    # one header line, not one per batch
        assert texts.getvalue().count("uid,") == 1


def test_render_flags_blocked_batches():
    path = CAPS / "blocked_agent.pcap"
    flows = pd.concat(_batches(path), ignore_index=True)
    r = Render("jsonl")(flows)
    assert r.flagged and r.rows == len(flows) == r.text.count("\n")
    ok = flows[flows["verdict"] == "ok"]
    assert len(ok) and not Render("jsonl")(ok).flagged
    with pytest.raises(ValueError):
        Render("table")
    sink = FlowSink("csv", io.StringIO(), RULES, None)
    with pytest.raises(ValueError):
        sink.add(r)                         # a JSON Lines batch given to the CSV report


class _Boom:
    """A render that fails on the worker's side."""

    def __call__(self, flows):
        raise RuntimeError("render failed")


@needs_fork
def test_a_failure_in_the_worker_reaches_the_reader_and_stops_it():
    before = _children()
    with pytest.raises(RuntimeError, match="render failed"):
        _batches(CAPS / "baseline_agent.pcap", worker=True, render=_Boom())
    assert _children() <= before


@needs_fork
def test_stopping_early_stops_the_worker():
    before = _children()
    run = ChunkedAnalysis(CAPS / "baseline_agent.pcap", RULES, "b", chunk_bytes=2048, worker=True)
    it = run.batches()
    first = next(it)
    assert len(first) > 0
    assert _children() - before              # the worker is there while batches are read
    it.close()
    assert _children() <= before


class _Judged:
    """A render that hands out, from the worker, its judgement cache's counts with the batch."""

    def __call__(self, flows):
        from kscc_traffic.finishing import _worker_state
        judged = _worker_state["judged"]
        return flows, judged.hits, judged.misses, _worker_state["rules"] == RULES


@needs_fork
def test_the_worker_keeps_its_judgements_from_batch_to_batch():
    # (the flows of a capture not finished yet, analyze_batch(finish=False) rows, in one batch)
    run = ChunkedAnalysis(CAPS / "baseline_agent.pcap", RULES, "b")
    (unfinished, end), = list(run._leaving())
    first, = Finisher(RULES, "b").put(unfinished.copy(), end)
    with Finisher(RULES, "b", render=_Judged(), worker=True) as fin:
        # (the same batch twice)
        got = list(fin.put(unfinished.copy(), end)) + list(fin.put(unfinished.copy(), end)) + list(fin.drain())
    (a, hits_a, misses_a, same_a), (b, hits_b, misses_b, same_b) = got
    assert same_a and same_b                    # (the parent's rules, inherited by the fork)
    assert misses_a > 1 and hits_a == 0         # the first batch judged ...
    assert misses_b == misses_a and hits_b == misses_a  # ... the second found every group judged
    pd.testing.assert_frame_equal(a, first)
    pd.testing.assert_frame_equal(b, first)


def test_without_a_worker_nothing_is_forked_nor_rendered():
    before = _children()
    fin = Finisher(RULES, "x", render=Render("jsonl"))
    with fin:
        assert _children() <= before
    got = _batches(CAPS / "baseline_agent.pcap", render=Render("jsonl"))
    assert got and all(isinstance(b, pd.DataFrame) for b in got)


@needs_fork
def test_cli_one_core_or_two_same_bytes(tmp_path):
    cap = CAPS / "baseline_agent.pcap"
    outs = {}
    for jobs in ("1", "2"):
        for fmt in ("jsonl", "csv"):
            p = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", str(cap), "-f", fmt,
                                "-j", jobs, "--chunk-mib", "1"], capture_output=True, text=True)
            assert p.returncode in (0, 1), p.stderr
            outs[jobs, fmt] = p.stdout
    assert outs["1", "jsonl"] == outs["2", "jsonl"] and outs["1", "jsonl"].count("\n") > 10
    assert outs["1", "csv"] == outs["2", "csv"]


class _HalfThenInterrupt(io.StringIO):
    """A stream whose reader is interrupted in the middle of a write (Ctrl-C)."""

    def write(self, text):
        super().write(text[: len(text) // 2])
        raise KeyboardInterrupt


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_interrupted_while_rendered_text_is_written_says_so(fmt):
    # the CLI's "part of the next batch" line reads FlowSink.writing (test_newcomer17_outputs for
    # a batch written in this process)
    flows = pd.concat(_batches(CAPS / "blocked_agent.pcap"), ignore_index=True)
    out = _HalfThenInterrupt()
    sink = FlowSink(fmt, out, RULES, None)
    with pytest.raises(KeyboardInterrupt):
        sink.add(Render(fmt)(flows))
    assert sink.writing and sink.rows == 0 and 0 < len(out.getvalue())



def _same_with_worker(caps: list[Path]) -> None:
    # same batches as in one process, in small chunks (many batches, flows carried between them)
    for path in caps:
        here = _batches(path)
        there = _batches(path, worker=True)
        assert [len(b) for b in there] == [len(b) for b in here], path.name
        for a, b in zip(here, there):
            pd.testing.assert_frame_equal(a, b, obj=path.name)


@needs_fork
def test_worker_gives_the_same_on_every_sample():
    caps = sorted(p for p in CAPS.glob("*.pcap*") if not p.name.endswith(".json"))
    assert len(caps) >= 8
    _same_with_worker(caps)


@needs_fork
def test_worker_gives_the_same_on_every_corpus_capture():
    caps = sorted(p for p in shared_corpus("").glob("*/*.pcap*") if not p.name.endswith(".json"))
    assert len(caps) >= 20
    _same_with_worker(caps)


@needs_fork
def test_a_capture_that_cannot_be_read_leaves_no_worker(tmp_path):
    from kscc_traffic.errors import CaptureError
    bad = tmp_path / "cut.pcap"
    bad.write_bytes((CAPS / "baseline_agent.pcap").read_bytes()[:20])    # cut in its header
    before = _children()
    with pytest.raises(CaptureError):
        ChunkedAnalysis(bad, RULES, "cut", worker=True).first_chunk()
    assert _children() <= before


class _Die:
    """A render that kills the worker it runs in (as the kernel's OOM killer would)."""

    def __call__(self, flows):
        import signal
        os.kill(os.getpid(), signal.SIGKILL)


@needs_fork
def test_a_worker_killed_gives_a_one_line_error():
    from kscc_traffic.errors import WorkerError
    before = _children()
    with pytest.raises(WorkerError, match=r"^b\.pcap: the process classifying its flows stopped .* -j 1"):
        list(ChunkedAnalysis(CAPS / "baseline_agent.pcap", RULES, "b.pcap", chunk_bytes=2048, worker=True,
                             render=_Die()).batches())
    assert _children() <= before


@needs_fork
@pytest.mark.parametrize("jobs, two", [(None, False), (1, False), (2, True), (4, True)])
def test_one_capture_gets_a_worker_only_when_asked(jobs, two):
    from kscc_traffic.parallel import analyze_each
    before = _children()
    (r,) = analyze_each([CAPS / "baseline_agent.pcap"], RULES, jobs=jobs)
    try:
        assert r._source.worker is two
        assert bool(_children() - before) is two     # (forked when the capture was opened)
    finally:
        flows = list(r.batches())
    assert flows and _children() <= before          # (and gone once its batches were read)


@needs_fork
def test_a_batch_file_that_cannot_be_written_is_said_as_such(tmp_path):
    # break-it 17 F2: a full /tmp or a file size limit read as "standard output: cannot write"
    import resource
    cap = CAPS / "baseline_agent.pcap"

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))    # (stdout is a pipe: no limit)

    p = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", str(cap), "-f", "jsonl", "-j", "2",
                        "--chunk-mib", "1"], capture_output=True, text=True, preexec_fn=small_files,
                       env={**os.environ, "TMPDIR": str(tmp_path)}, cwd=tmp_path)
    assert p.returncode == 2
    assert p.stderr.startswith("Error: baseline_agent.pcap: the second process cannot write its finished "
                               f"flows to {tmp_path}/kscc-traffic-")
    assert "File too large" in p.stderr and "-j 1" in p.stderr and "Traceback" not in p.stderr
    assert list(tmp_path.iterdir()) == []               # (its folder removed)


@needs_fork
def test_the_batch_folder_goes_with_a_killed_reader(tmp_path):
    # break-it 17 F3: kill -9 of the reading process left /tmp/kscc-traffic-*/ behind
    import signal
    import time
    code = ("import sys, time; from pathlib import Path; from kscc_traffic.chunked import ChunkedAnalysis; "
            "from kscc_traffic.rules import load_rules; "
            "run = ChunkedAnalysis(Path(sys.argv[1]), load_rules(), 'b', chunk_bytes=2048, worker=True); "
            "it = run.batches(); next(it); print('ready', flush=True); time.sleep(60)")
    p = subprocess.Popen([sys.executable, "-c", code, str(CAPS / "baseline_agent.pcap")], stdout=subprocess.PIPE,
                         text=True, env={**os.environ, "TMPDIR": str(tmp_path)}, cwd=tmp_path)
    try:
        assert p.stdout.readline().strip() == "ready"
        assert [d.name[:13] for d in tmp_path.iterdir()] == ["kscc-traffic-"]
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
        for _ in range(100):                # (the worker gets SIGTERM from the kernel, then cleans up)
            if not list(tmp_path.iterdir()):
                break
            time.sleep(0.05)
        assert list(tmp_path.iterdir()) == []
    finally:
        p.kill()
