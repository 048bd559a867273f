"""Wildcard patterns the shell did not expand (newcomer 35 F6: Windows' cmd and PowerShell pass
``*.pcap`` as it is: ``Error: *.pcap: no such file``) are expanded by the command line, in name
order; a file whose own name holds such characters is that file."""
from __future__ import annotations

import shutil
import subprocess
import sys

from conftest import ROOT

SAMPLE = ROOT / "samples" / "captures" / "blocked_agent.pcap"
OTHER = ROOT / "samples" / "captures" / "baseline_agent.pcap"


def _run(cwd, *args):
    return subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", *args, "-f", "csv"], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_an_unexpanded_pattern_reads_the_files_it_matches(tmp_path):
    shutil.copy(SAMPLE, tmp_path / "a.pcap")
    shutil.copy(OTHER, tmp_path / "b.pcap")
    (tmp_path / "notes.txt").write_text("not a capture")
    r = _run(tmp_path, "*.pcap")
    assert r.returncode == 1, r.stderr
    captures = {line.rsplit(",", 1)[-1] for line in r.stdout.splitlines()[1:]}
    assert captures == {"a.pcap", "b.pcap"}, r.stdout[-500:]
    r = _run(tmp_path, "[ab].pcap", "--file-set", "separate")
    assert r.returncode == 1 and {line.rsplit(",", 1)[-1] for line in r.stdout.splitlines()[1:]} == {"a.pcap", "b.pcap"}


def test_a_pattern_matching_nothing_and_a_file_named_like_a_pattern(tmp_path):
    r = _run(tmp_path, "*.pcapng")
    assert r.returncode == 2 and r.stderr == "Error: *.pcapng: no such file, and no file matches it\n"
    shutil.copy(SAMPLE, tmp_path / "[x].pcap")
    shutil.copy(OTHER, tmp_path / "x.pcap")
    r = _run(tmp_path, "[x].pcap")          # (the file of that name, not x.pcap the pattern matches)
    assert r.returncode == 1 and {line.rsplit(",", 1)[-1] for line in r.stdout.splitlines()[1:]} == {"[x].pcap"}
