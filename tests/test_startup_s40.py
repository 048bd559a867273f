"""What the command line's start-up leaves out (session 40, issue 5): OpenBLAS's pool of threads
(one thread: ``kscc_traffic.__main__.one_blas_thread``), rich for a JSON Lines or CSV report
written without a word, multiprocessing for a single capture. The output is the same bytes."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT

SAMPLE = ROOT / "samples" / "captures" / "blocked_agent.pcap"

#: the console script's way in; at exit, one line: the BLAS setting and the modules loaded of
#: those the start-up leaves out
RUN = """
import atexit, os, sys
def said():
    left = sorted(m for m in ("rich", "multiprocessing", "concurrent.futures.process") if m in sys.modules)
    sys.stderr.write("\\nblas=%s loaded=%s\\n" % (os.environ.get("OPENBLAS_NUM_THREADS"), ",".join(left)))
atexit.register(said)
sys.argv = ["kscc-traffic"] + sys.argv[1:]
from kscc_traffic.__main__ import main
main()
"""


def _env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    env.update(PYTHONPATH=str(ROOT), **extra)
    return env


def _run(*args: str, **env) -> subprocess.CompletedProcess:
    # (cwd: not the project, so PYTHONPATH decides which tree is imported)
    return subprocess.run([sys.executable, "-c", RUN, *args], env=_env(**env), cwd=ROOT.parent,
                          capture_output=True, text=True, timeout=120)


def _last_line(p: subprocess.CompletedProcess) -> str:
    return p.stderr.rstrip().splitlines()[-1]


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_file_report_loads_neither_rich_nor_multiprocessing(fmt, tmp_path):
    out = tmp_path / f"flows.{fmt}"
    p = _run("analyze", str(SAMPLE), "--format", fmt, "-o", str(out))
    assert p.returncode == 1, p.stderr                        # the sample has blocked flows
    assert _last_line(p) == "blas=1 loaded="
    rows = out.read_text().splitlines()
    assert len(rows) == (11 if fmt == "jsonl" else 12)        # its 11 flows (and the CSV header)


def test_the_table_and_a_warning_still_print_with_rich(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a capture\n")
    p = _run("analyze", "--lenient", str(text), str(SAMPLE))
    assert p.returncode == 1
    assert p.stderr.startswith(f"Warning: skipped {text}: not a pcap or pcapng capture")
    assert "11 flows: 4 ok, 7 blocked" in p.stdout
    assert _last_line(p) == "blas=1 loaded=rich"


def test_a_blas_setting_given_is_kept():
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        p = _run("--version", **{var: "2"})
        assert p.returncode == 0 and p.stdout.startswith("kscc-traffic ")
        assert _last_line(p) == f"blas={'2' if var == 'OPENBLAS_NUM_THREADS' else None} loaded="


def test_one_blas_thread_leaves_a_loaded_numpy_alone():
    code = ("import os, sys; from kscc_traffic.__main__ import one_blas_thread; a = one_blas_thread(); "
            "v = os.environ.pop('OPENBLAS_NUM_THREADS'); import numpy; "
            "print(a, v, one_blas_thread(), os.environ.get('OPENBLAS_NUM_THREADS'))")
    p = subprocess.run([sys.executable, "-c", code], env=_env(), cwd=ROOT.parent, capture_output=True,
                       text=True, timeout=60)
    assert p.stdout.split() == ["True", "1", "False", "None"], p.stderr
