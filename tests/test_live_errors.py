"""``kscc-traffic live`` errors: one line on stderr with the fix, exit status 2, nothing left
running — unknown interface, no capture permission, tshark not installed, invalid filter."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

LIVE = [sys.executable, "-m", "kscc_traffic", "live"]


def _run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=60, **kw)


def _one_error_line(r) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in r.stderr
    return lines[0]


def test_list_interfaces():
    r = _run(LIVE + ["--list-interfaces"])
    assert r.returncode == 0
    assert "lo" in r.stdout.split()


def test_unknown_interface_lists_the_available_ones():
    line = _one_error_line(_run(LIVE + ["--interface", "kscct-nope0", "--duration", "1"]))
    assert "unknown interface 'kscct-nope0'" in line and "available:" in line and "lo" in line


def test_tshark_not_installed(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python3").symlink_to(sys.executable)
    env = dict(os.environ, PATH=str(bindir))
    line = _one_error_line(_run(LIVE + ["--engine", "tshark", "-i", "lo", "--duration", "1"], env=env))
    assert "tshark not found" in line and "apt-get install tshark" in line


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="needs root and setpriv to run without CAP_NET_RAW")
def test_no_capture_permission_says_sudo_or_setcap(tmp_path):
    """Root without CAP_NET_RAW (capability removed from the bounding set) cannot open a packet
    socket: the error says how to get the permission."""
    r = _run(["setpriv", "--bounding-set", "-net_raw,-net_admin", "--inh-caps", "-net_raw,-net_admin",
              *LIVE, "-i", "lo", "--duration", "1", "--write", str(tmp_path / "x.pcapng")])
    line = _one_error_line(r)
    assert "CAP_NET_RAW" in line and "sudo" in line and "setcap cap_net_raw,cap_net_admin+eip" in line


@pytest.mark.skipif(os.geteuid() != 0, reason="opening a capture socket needs root")
def test_invalid_filter():
    line = _one_error_line(_run(LIVE + ["-i", "lo", "--filter", "tcp port banana", "--duration", "1"]))
    assert "invalid capture filter" in line


def test_bad_idle_timeout():
    line = _one_error_line(_run(LIVE + ["-i", "lo", "--idle-timeout", "tcp=-1"]))
    assert "--idle-timeout" in line


@pytest.mark.parametrize("value,said", [
    ("tcp=inf", "--idle-timeout: timeout tcp: at most 31536000 seconds (365 days): a flow idle that long has ended"),
    ("udp=1e300", "--idle-timeout: timeout udp: at most 31536000 seconds (365 days)"),
    ("tcp=nan", "--idle-timeout: timeout tcp: must be more than 0 seconds"),
    ("tcp", "--idle-timeout: timeout tcp: give it as NAME=SECONDS, e.g. tcp=600"),
])
def test_an_idle_timeout_without_end_is_refused_at_start(value, said):
    # (session 41: `tcp=inf` was taken, and the capture ended in an internal OverflowError; `tcp`
    # alone said "'' is not a number of seconds") refused before any capture is opened
    line = _one_error_line(_run(LIVE + ["-i", "lo", "--duration", "1", "--idle-timeout", value]))
    assert said in line, line


def test_scapy_missing_says_how_to_install_it_from_a_clone_too():
    # `pip install -e .` (the Quick start) has no scapy: the hint names the extra for an
    # installed package and for a clone (README: Live capture)
    code = ("import sys; sys.modules['scapy'] = None; sys.argv = ['kscc-traffic', 'live', '-i', 'lo', "
            "'--duration', '1']; from kscc_traffic.cli import main; main()")
    line = _one_error_line(_run([sys.executable, "-c", code]))
    assert line.startswith("Error: the scapy engine needs scapy (")
    assert line.endswith("pip install 'kscc-traffic[live]' (in a clone of the project: pip install -e '.[live]')")
