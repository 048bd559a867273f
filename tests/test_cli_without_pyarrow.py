"""The command line keeps pandas from loading pyarrow (``kscc_traffic.__main__.leave_out_pyarrow``):
~40 MiB and ~0.2 s of start-up it never uses. Its output must be the same bytes as with pyarrow
loaded (pandas then holds text columns in Arrow), which library users in a notebook get."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CAPTURES = ROOT / "samples" / "captures"

# the console script's own path (kscc_traffic.__main__:main), with a line at exit saying whether
# pyarrow was loaded; FORCE: pyarrow imported first, as in a notebook that uses it
RUN = """
import atexit, sys
atexit.register(lambda: sys.stderr.write("\\npyarrow-loaded=%s\\n" % (sys.modules.get("pyarrow") is not None)))
if sys.argv[1] == "FORCE":
    import pyarrow
sys.argv = ["kscc-traffic"] + sys.argv[2:]
from kscc_traffic.__main__ import main
main()
"""


def _run(mode: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", RUN, mode, *args], cwd=ROOT, capture_output=True,
                          timeout=120)


def test_the_command_line_does_not_load_pyarrow():
    p = _run("PLAIN", "analyze", str(CAPTURES / "blocked_agent.pcap"), "--format", "jsonl")
    assert p.returncode == 1, p.stderr                       # the sample has blocked flows
    assert p.stderr.decode().rstrip().endswith("pyarrow-loaded=False")
    assert len(p.stdout.splitlines()) == 11                  # its 11 flows, written all the same


def test_leave_out_pyarrow_leaves_a_loaded_pandas_alone():
    code = ("import sys, pandas; from kscc_traffic.__main__ import leave_out_pyarrow; "
            "print(leave_out_pyarrow(), sys.modules.get('pyarrow', 'absent') is None)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.stdout.split() == ["False", "False"], out.stderr


@pytest.mark.parametrize("sample", ["blocked_agent.pcap", "hostile_names.pcap", "ipv6_agent.pcap",
                                    "intercepted_tls12.pcap", "baseline_dp.pcapng"])
@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_output_is_the_same_bytes_with_and_without_pyarrow(sample, fmt):
    pytest.importorskip("pyarrow", reason="pyarrow not installed (the test extra brings it): "
                                          "nothing to compare with")
    args = ("analyze", str(CAPTURES / sample), "--format", fmt)
    plain, forced = _run("PLAIN", *args), _run("FORCE", *args)
    assert plain.stderr.decode().rstrip().endswith("pyarrow-loaded=False")
    assert forced.stderr.decode().rstrip().endswith("pyarrow-loaded=True")
    assert plain.returncode == forced.returncode
    assert len(plain.stdout) > 500
    assert plain.stdout == forced.stdout
