"""Session 41 message fixes. ``--output`` / ``--html`` where no file can be made gives the real
reason, naming the folder (``-o /proc/version`` said "No such file or directory": /proc answers
ENOENT to the creation of the temporary file written beside the report), and what works like a
shell's ``>`` still does (/dev/null, /dev/stdout, a FIFO). Standard input is named "standard
input" in the lines about it, not ``-`` or ``/dev/stdin`` ("Error: -: --engine tshark …")."""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import tempfile
import threading

import pytest

from conftest import ROOT
from kscc_traffic.outfile import ReportFile

SAMPLES = ROOT / "samples" / "captures"
CAP = SAMPLES / "baseline_agent.pcap"
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def run(*args, input=None, stdin=subprocess.DEVNULL):
    return subprocess.run([sys.executable, "-m", "kscc_traffic", *map(str, args)],
                          stdin=None if input is not None else stdin, input=input,
                          capture_output=True, timeout=300, cwd=ROOT, env=ENV)


def error_line(p) -> str:
    lines = p.stderr.decode().splitlines()
    assert p.returncode == 2 and len(lines) == 1, p.stderr
    assert p.stdout == b""
    return lines[0]


# --- where the report cannot go --------------------------------------------------------------

@pytest.mark.skipif(not os.path.isfile("/proc/version"), reason="needs Linux /proc")
def test_output_into_proc_names_the_folder_not_a_missing_file():
    assert error_line(run("analyze", CAP, "-o", "/proc/version")) == (
        "Error: /proc/version: cannot write: folder /proc does not allow creating a file; the report "
        "replaces the file with a new one written beside it")
    assert error_line(run("analyze", CAP, "-f", "jsonl", "-o", "/proc/kscc-new.jsonl")) == (
        "Error: /proc/kscc-new.jsonl: cannot write: folder /proc does not allow creating a file")
    assert error_line(run("report", CAP, "--html", "/proc/kscc-new.html")) == (
        "Error: /proc/kscc-new.html: cannot write the report (folder /proc does not allow creating a file)")
    with open("/proc/version") as f:
        assert f.read().startswith("Linux")


def _mkstemp_failing(monkeypatch, code):
    def fail(*a, **k):
        raise OSError(code, os.strerror(code))
    monkeypatch.setattr(tempfile, "mkstemp", fail)


@pytest.mark.parametrize("code, why", [
    (errno.EACCES, "no permission to create a file in folder {d}"),
    (errno.EROFS, "folder {d} is on a read-only file system"),
    (errno.EPERM, "cannot create a file in folder {d}: Operation not permitted"),
    (errno.ENOSPC, "cannot create a file in folder {d}: No space left on device"),
    (errno.ENOENT, "folder {d} does not allow creating a file"),
])
def test_a_new_report_file_that_cannot_be_made_says_why(tmp_path, monkeypatch, code, why):
    _mkstemp_failing(monkeypatch, code)
    with pytest.raises(OSError) as e:
        ReportFile(tmp_path / "new.jsonl").open()
    assert e.value.errno == code
    assert e.value.strerror == why.format(d=tmp_path)
    assert os.listdir(tmp_path) == []


def test_an_existing_file_in_a_folder_that_takes_no_new_file_is_written_in_place(tmp_path, monkeypatch):
    """(a writable file in a 0555 folder, as a user who is not root: written in place, as before)"""
    target = tmp_path / "old.jsonl"
    target.write_text("old\n")
    _mkstemp_failing(monkeypatch, errno.EACCES)
    rf = ReportFile(target)
    rf.open().write("new\n")
    rf.commit()
    assert target.read_text() == "new\n" and not rf.atomic


def test_missing_folder_named_when_it_vanished_before_the_file_was_made(tmp_path, monkeypatch):
    gone = tmp_path / "gone"
    _mkstemp_failing(monkeypatch, errno.ENOENT)
    with pytest.raises(FileNotFoundError) as e:
        ReportFile(gone / "x.jsonl").open()
    assert e.value.strerror == f"folder {gone} does not exist"


def test_output_to_a_directory_or_into_a_missing_folder(tmp_path):
    assert error_line(run("analyze", CAP, "-o", tmp_path)) == (
        f"Error: {tmp_path}: is a directory; give a file name for --output")
    assert error_line(run("analyze", CAP, "-o", tmp_path / "no" / "x.jsonl")) == (
        f"Error: {tmp_path / 'no' / 'x.jsonl'}: folder {tmp_path / 'no'} does not exist")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("mount"),
                    reason="needs root and unshare(1) for a read-only bind mount")
def test_output_into_a_read_only_mount(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "old.jsonl").write_text("old\n")
    cmd = (f"mount --bind -o ro {ro} {ro} || exit 99; "
           f"{sys.executable} -m kscc_traffic analyze {CAP} -f jsonl -o {ro}/new.jsonl; echo rc=$? >&2; "
           f"{sys.executable} -m kscc_traffic analyze {CAP} -f jsonl -o {ro}/old.jsonl; echo rc=$? >&2")
    p = subprocess.run(["unshare", "-m", "sh", "-c", cmd], capture_output=True, timeout=300, cwd=ROOT, env=ENV)
    if p.returncode == 99:
        pytest.skip("no bind mount here")
    assert p.stderr.decode().splitlines() == [
        f"Error: {ro}/new.jsonl: cannot write: folder {ro} is on a read-only file system", "rc=2",
        f"Error: {ro}/old.jsonl: cannot write: Read-only file system", "rc=2"]
    assert (ro / "old.jsonl").read_text() == "old\n"


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("chattr"), reason="needs root and chattr")
def test_output_into_an_immutable_folder(tmp_path):
    imm = tmp_path / "imm"
    imm.mkdir()
    if subprocess.run(["chattr", "+i", str(imm)], capture_output=True).returncode:
        pytest.skip("the file system takes no immutable flag")
    try:
        line = error_line(run("analyze", CAP, "-f", "jsonl", "-o", imm / "x.jsonl"))
    finally:
        subprocess.run(["chattr", "-i", str(imm)], check=True)
    assert line == f"Error: {imm}/x.jsonl: cannot write: cannot create a file in folder {imm}: Operation not permitted"


def test_devices_and_a_fifo_are_written_in_place(tmp_path):
    whole = run("analyze", CAP, "-f", "jsonl")
    assert whole.stdout.count(b"\n") > 5
    null = run("analyze", CAP, "-f", "jsonl", "-o", "/dev/null")
    assert null.returncode == whole.returncode and null.stdout == b"" and null.stderr == whole.stderr
    out = run("analyze", CAP, "-f", "jsonl", "-o", "/dev/stdout")
    assert out.returncode == whole.returncode and out.stdout == whole.stdout
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    p = run("analyze", CAP, "-f", "jsonl", "-o", fifo)
    reader.join(60)
    assert p.returncode == whole.returncode and got == [whole.stdout]
    assert os.listdir(tmp_path) == ["fifo"]


# --- standard input named so ------------------------------------------------------------------

def test_tshark_engine_on_standard_input():
    want = ("Error: standard input: --engine tshark reads only a file (tshark's passes read it more than "
            "once); save the capture to a file first (… > cap.pcap), or use the built-in engine")
    data = CAP.read_bytes()
    assert error_line(run("analyze", "-", "--engine", "tshark", input=data)) == want
    assert error_line(run("analyze", "/dev/stdin", "--engine", "tshark", input=data)) == want


def test_standard_input_beside_another_capture():
    want = ("Error: standard input is analysed only on its own, not beside other captures (each is checked "
            "before any is analysed, so read twice; a pipe is read once): save it to a file first "
            "(… > cap.pcap) to analyse them together")
    assert error_line(run("analyze", "-", CAP, input=b"")) == want
    assert error_line(run("analyze", CAP, "/dev/stdin", input=b"")) == want
    assert error_line(run("report", "-", CAP, "--html", "/dev/null", input=b"")) == want


# (standard input closed or a terminal: tests/test_stdin_capture.py)


def test_a_pipe_cut_mid_record_is_named_once():
    data = CAP.read_bytes()
    p = run("analyze", "-", "-f", "jsonl", input=data[:30000])
    assert p.stdout.count(b"\n") >= 5
    assert p.stderr.decode().splitlines() == [
        "Warning: standard input ended mid-record at offset 29154: 846 of 1530 bytes present; "
        "1 record skipped (66 records read before it, all analysed)"]
    # before the first record: an error, the cut said once too
    assert error_line(run("analyze", "-", input=data[:40])) == (
        "Error: standard input: no packet could be read: standard input ended mid-record at offset 24: "
        "16 of 97 bytes present; 1 record skipped")
