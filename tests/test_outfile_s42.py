"""Session 42 report-file fixes. An existing report file this process may not write (``0444``,
another user's) is refused as a shell's ``>`` refuses it, not replaced by a new file renamed over
it; a file on a kernel file system (``/sys`` as root, where no new file can be made beside it) is
never written in place; ``report --html`` and ``live --write`` into a missing folder say so in
``analyze -o``'s words."""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from conftest import ROOT
from kscc_traffic import outfile
from kscc_traffic.live.run import LiveOptions, run_live
from kscc_traffic.rules import load_rules
from kscc_traffic.errors import EngineError
from kscc_traffic.outfile import ReportFile, kernel_file_system

CAP = ROOT / "samples" / "captures" / "baseline_agent.pcap"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def run(*args):
    return subprocess.run([sys.executable, "-m", "kscc_traffic", *map(str, args)], stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=300, cwd=ROOT, env=ENV)


def error_line(p) -> str:
    lines = p.stderr.decode().splitlines()
    assert p.returncode == 2 and len(lines) == 1, p.stderr
    return lines[0]


# --- a file this process may not write ---------------------------------------------------------

def test_a_file_that_may_not_be_written_is_refused_and_kept(tmp_path, monkeypatch):
    target = tmp_path / "old.jsonl"
    target.write_text("old\n")
    target.chmod(0o444)
    real_open = os.open

    def refusing(path, flags, *a, **k):
        if os.fspath(path) == str(target) and flags & (os.O_WRONLY | os.O_RDWR):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return real_open(path, flags, *a, **k)
    monkeypatch.setattr(os, "open", refusing)
    with pytest.raises(PermissionError) as e:
        ReportFile(target).open()
    assert e.value.strerror == ("no permission to write the file (its permissions: 0444); remove it or "
                                "make it writable first")
    assert target.read_text() == "old\n" and os.listdir(tmp_path) == ["old.jsonl"]


def test_a_writable_file_is_still_replaced_with_its_permissions(tmp_path):
    target = tmp_path / "old.jsonl"
    target.write_text("old\n")
    target.chmod(0o640)
    rf = ReportFile(target)
    rf.open().write("new\n")
    rf.commit()
    assert target.read_text() == "new\n" and oct(target.stat().st_mode & 0o777) == "0o640"


@pytest.fixture
def shared_folder():
    """A folder any user may write in (pytest's tmp_path is root's alone)."""
    d = tempfile.mkdtemp(prefix="kscc-s42-")
    os.chmod(d, 0o777)
    yield d
    subprocess.run(["rm", "-rf", d], check=True)


def _open_as_nobody(path: str) -> str:
    """``ReportFile(path).open()`` in a forked child running as user nobody (65534): "opened", or
    the strerror it raised. (A fork, not the CLI: the interpreter may live where nobody may not go.)"""
    import kscc_traffic.text  # noqa: F401  (imported before the fork: the child reads no module)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                rf = ReportFile(path)
                rf.open().write("new\n")
                rf.commit()
                out = "opened"
            except OSError as e:
                out = e.strerror or str(e)
            os.write(w, out.encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode()
    os.waitpid(pid, 0)
    return out


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become user nobody (65534)")
def test_a_read_only_report_file_is_refused_for_a_user_as_a_shell_does(shared_folder):
    target = os.path.join(shared_folder, "old.jsonl")
    with open(target, "w") as f:
        f.write("old\n")
    os.chmod(target, 0o444)
    os.chown(target, 65534, 65534)
    shell = subprocess.run(["sh", "-c", f"echo x > {target}"], capture_output=True, user=65534)
    assert shell.returncode != 0        # (what the report file does is what the shell does)
    assert _open_as_nobody(target) == ("no permission to write the file (its permissions: 0444); remove it or "
                                       "make it writable first")
    assert open(target).read() == "old\n" and os.listdir(shared_folder) == ["old.jsonl"]
    os.chown(target, 0, 0)              # another user's file, writable by its owner only
    os.chmod(target, 0o644)
    assert _open_as_nobody(target).startswith("no permission to write the file (its permissions: 0644)")
    os.chown(target, 65534, 65534)      # nobody's own and writable: replaced
    assert _open_as_nobody(target) == "opened"
    assert open(target).read() == "new\n" and os.listdir(shared_folder) == ["old.jsonl"]


# --- kernel file systems ---------------------------------------------------------------------------

@pytest.mark.skipif(not os.path.isfile("/proc/self/mountinfo"), reason="needs Linux /proc")
def test_kernel_file_systems_are_known_by_their_mount(tmp_path):
    assert kernel_file_system("/proc") == "proc"
    if os.path.isdir("/sys/kernel"):
        assert kernel_file_system("/sys/kernel") == "sysfs"
    assert kernel_file_system(str(tmp_path)) is None
    assert kernel_file_system(str(tmp_path / "absent")) is None


def test_an_existing_file_on_a_kernel_file_system_is_not_written_in_place(tmp_path, monkeypatch):
    """(as root in /sys: the folder takes no new file, EACCES, while its files take writes)"""
    target = tmp_path / "setting"
    target.write_text("0\n")

    def fail(*a, **k):
        raise OSError(errno.EACCES, os.strerror(errno.EACCES))
    monkeypatch.setattr(tempfile, "mkstemp", fail)
    monkeypatch.setattr(outfile, "kernel_file_system", lambda folder: "sysfs" if folder == str(tmp_path) else None)
    with pytest.raises(PermissionError) as e:
        ReportFile(target).open()
    assert e.value.strerror == (f"folder {tmp_path} is on sysfs, a kernel file system: its files are the "
                                "kernel's settings, not reports")
    assert target.read_text() == "0\n"


# --- a missing folder, said alike -----------------------------------------------------------------

def test_html_into_a_missing_folder_says_it_as_analyze_does(tmp_path):
    target = tmp_path / "no" / "r.html"
    assert error_line(run("report", CAP, "--html", target)) == (
        f"Error: {target}: folder {tmp_path / 'no'} does not exist")
    assert error_line(run("analyze", CAP, "-o", target)) == (
        f"Error: {target}: folder {tmp_path / 'no'} does not exist")


def test_live_write_into_a_missing_folder_from_python(tmp_path):
    target = tmp_path / "no" / "c.pcapng"
    with pytest.raises(EngineError) as e:
        run_live(LiveOptions(rules=load_rules(), interface="lo", write=target, duration=0.1))
    assert str(e.value) == f"{target}: folder {tmp_path / 'no'} does not exist"


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("chattr"), reason="needs root and chattr")
def test_an_immutable_report_file_stops_the_run_before_the_analysis(tmp_path):
    target = tmp_path / "old.jsonl"
    target.write_text("old\n")
    if subprocess.run(["chattr", "+i", str(target)], capture_output=True).returncode:
        pytest.skip("the file system takes no immutable flag")
    try:
        line = error_line(run("analyze", CAP, "-f", "jsonl", "-o", target))
    finally:
        subprocess.run(["chattr", "-i", str(target)], check=True)
    assert line == f"Error: {target}: cannot write: Operation not permitted"
    assert target.read_text() == "old\n" and os.listdir(tmp_path) == ["old.jsonl"]
