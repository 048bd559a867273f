"""``kscc-traffic analyze -``: a capture read from standard input, as a stream (tcpdump -w - |,
zcat |, ssh host tcpdump -U -w - |), chunk by chunk, with the output the same bytes in a file give.
Through the real entry point, standard input a real pipe or file descriptor."""
from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT

SAMPLES = ROOT / "samples" / "captures"
#: (this checkout's code also from another folder)
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def run(*args, stdin=subprocess.DEVNULL, input=None, cwd=ROOT):
    if input is not None:
        stdin = None
    return subprocess.run([sys.executable, "-m", "kscc_traffic", *map(str, args)], stdin=stdin,
                          input=input, capture_output=True, timeout=300, cwd=cwd, env=ENV)


def _same_as_file(tmp_path, data: bytes, *extra) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    """(the run on ``data`` piped in, the run on the same bytes in a file named ``stdin``, the
    name standard input's capture gets: its uids and ``capture`` column)."""
    f = tmp_path / "stdin"
    f.write_bytes(data)
    piped = run("analyze", "-", "-f", "jsonl", *extra, input=data)
    by_path = run("analyze", f, "-f", "jsonl", *extra)
    return piped, by_path


@pytest.mark.parametrize("sample", ["baseline_agent.pcap", "baseline_dp.pcapng", "blocked_agent.pcap"])
def test_pipe_gives_the_file_s_report(tmp_path, sample):
    data = (SAMPLES / sample).read_bytes()
    piped, by_path = _same_as_file(tmp_path, data)
    assert piped.returncode == by_path.returncode and piped.returncode in (0, 1), piped.stderr
    assert piped.stdout.count(b"\n") > 5
    assert hashlib.md5(piped.stdout).digest() == hashlib.md5(by_path.stdout).digest()
    assert b'"capture":"stdin"' in piped.stdout
    assert piped.stderr == by_path.stderr


def test_compressed_pipe_read_as_the_file(tmp_path):
    data = (SAMPLES / "baseline_agent.pcap").read_bytes()
    piped, by_path = _same_as_file(tmp_path, gzip.compress(data))
    assert piped.stdout == by_path.stdout and piped.stdout.count(b"\n") > 5
    assert piped.returncode == by_path.returncode


def test_many_chunks_same_flows(tmp_path):
    # 20,000 packets (~10 MB) read 1 MiB at a time: flows across chunk boundaries as from the file
    cap = tmp_path / "big.pcap"
    subprocess.run([sys.executable, str(ROOT / "bench" / "make_capture.py"), "--packets", "20000",
                    "--out", str(cap), "--quiet"], check=True, timeout=120)
    piped, by_path = _same_as_file(tmp_path, cap.read_bytes(), "--chunk-mib", "1")
    assert piped.returncode == by_path.returncode
    assert piped.stdout.count(b"\n") > 1000
    assert piped.stdout == by_path.stdout


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump not installed")
def test_tcpdump_write_to_pipe(tmp_path):
    src = SAMPLES / "baseline_agent.pcap"
    tcpdump = subprocess.Popen(["tcpdump", "-r", str(src), "-w", "-"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    p = run("analyze", "-", "-f", "jsonl", stdin=tcpdump.stdout)
    tcpdump.stdout.close()
    tcpdump.wait(timeout=60)
    f = tmp_path / "stdin"
    shutil.copy(src, f)
    assert p.stdout == run("analyze", f, "-f", "jsonl").stdout
    assert p.stdout.count(b"\n") > 5


def test_pipe_ending_mid_record_warns_and_analyses_what_came(tmp_path):
    data = (SAMPLES / "baseline_agent.pcap").read_bytes()[:30000]
    piped, by_path = _same_as_file(tmp_path, data)
    assert piped.returncode == by_path.returncode
    assert piped.stdout == by_path.stdout and piped.stdout.count(b"\n") >= 5
    assert piped.stderr.decode().splitlines() == [
        "Warning: standard input ended mid-record at offset 29154: 846 of 1530 bytes present; "
        "1 record skipped (66 records read before it, all analysed)"]
    assert by_path.stderr.decode().startswith("Warning: stdin: file cut mid-record at offset 29154")


def _error_line(p) -> str:
    lines = p.stderr.decode().splitlines()
    assert p.returncode == 2 and len(lines) == 1, p.stderr
    assert p.stdout == b""
    return lines[0]


def test_empty_stdin_is_one_error_line():
    assert _error_line(run("analyze", "-", input=b"")).startswith(
        "Error: standard input: empty: nothing came in")
    assert _error_line(run("analyze", "-")).startswith("Error: standard input: empty")   # /dev/null


def test_not_a_capture_and_cut_header_on_stdin():
    assert _error_line(run("analyze", "-", input=b"hello\n")) == (
        "Error: standard input: not a pcap or pcapng capture: magic bytes 68 65 6c 6c (looks like text 'hello\\n')")
    head = (SAMPLES / "baseline_agent.pcap").read_bytes()
    assert "header" in _error_line(run("analyze", "-", input=head[:10]))
    # damage before the first record: nothing can be analysed (as a file's check says)
    assert _error_line(run("analyze", "-", input=head[:40])).startswith(
        "Error: standard input: no packet could be read: standard input ended mid-record at offset 24")


def test_closed_stdin():
    p = subprocess.run([sys.executable, "-c", "import os, sys; os.close(0); from kscc_traffic.cli import main; "
                        "main(['analyze', '-'])"], capture_output=True, cwd=ROOT, timeout=120)
    assert _error_line(p) == "Error: standard input: cannot read: it is closed"


def test_terminal_stdin_is_refused_not_waited_on():
    import pty
    master, slave = pty.openpty()
    try:
        p = run("analyze", "-", stdin=slave)
    finally:
        os.close(master)
        os.close(slave)
    assert _error_line(p) == ("Error: standard input is a terminal: pipe a capture in (tcpdump -w - … | "
                              "kscc-traffic analyze -), or give a capture file")


def test_what_needs_a_file_is_said_in_one_line():
    line = _error_line(run("analyze", "-", SAMPLES / "blocked_agent.pcap", input=b""))
    assert line.startswith("Error: standard input is analysed only on its own, not beside other captures")
    line = _error_line(run("analyze", "-", "--engine", "tshark", input=b""))
    assert line.startswith("Error: standard input: --engine tshark reads only a file (tshark's passes read it more than once)")


def test_a_file_named_dash_is_given_as_dot_slash(tmp_path):
    shutil.copy(SAMPLES / "blocked_agent.pcap", tmp_path / "-")
    p = run("analyze", "./-", "-f", "jsonl", cwd=tmp_path)
    assert p.returncode == 1 and b'"capture":"-"' in p.stdout
    # "-" alone is standard input, even with that file there
    assert _error_line(run("analyze", "-", input=b"", cwd=tmp_path)).startswith("Error: standard input: empty")


def test_report_from_stdin(tmp_path):
    html = tmp_path / "r.html"
    p = run("report", "-", "--html", html, input=(SAMPLES / "blocked_agent.pcap").read_bytes())
    assert p.returncode == 1, p.stderr
    assert "stdin" in html.read_text()


def _waits_on_pipe(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/wchan") as f:
            return "pipe" in f.read()
    except OSError:
        pytest.skip("no /proc/PID/wchan to tell when the command waits on its pipe")


def test_interrupted_while_waiting_on_the_pipe(tmp_path):
    out = tmp_path / "flows.jsonl"
    r, w = os.pipe()
    p = subprocess.Popen([sys.executable, "-m", "kscc_traffic", "analyze", "-", "-f", "jsonl", "-o", str(out)],
                         stdin=r, stderr=subprocess.PIPE, cwd=ROOT, env=ENV)
    os.close(r)
    try:
        os.write(w, (SAMPLES / "baseline_agent.pcap").read_bytes())
        # waiting for the rest of its first chunk: its report's temporary file made, reading the pipe
        deadline = time.monotonic() + 60
        while not (any(x.name.startswith(".flows.jsonl") for x in tmp_path.iterdir())
                   and _waits_on_pipe(p.pid)):
            assert time.monotonic() < deadline and p.poll() is None
            time.sleep(0.05)
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=60) == 130
    finally:
        os.close(w)
        if p.poll() is None:
            p.kill()
    lines = p.stderr.read().decode().splitlines()
    p.stderr.close()
    assert len(lines) == 1 and lines[0].startswith(
        f"Interrupted: {out} not written (stopped after 0 flows; no file made); to stop a capture piped in")
    assert not out.exists()


def test_dev_stdin_by_name_is_the_same_stream():
    data = (SAMPLES / "blocked_agent.pcap").read_bytes()
    dash = run("analyze", "-", "-f", "jsonl", input=data)
    named = run("analyze", "/dev/stdin", "-f", "jsonl", input=data)
    assert named.returncode == dash.returncode == 1
    assert named.stdout == dash.stdout and named.stdout.count(b"\n") > 5
    line = _error_line(run("analyze", "/dev/stdin", SAMPLES / "blocked_agent.pcap", input=b""))
    assert line.startswith("Error: standard input is analysed only on its own")


def test_a_pipe_that_gives_a_few_bytes_at_a_time(tmp_path):
    # (ssh, a slow link: reads give what has come; the compressed format is told from the first
    # bytes all the same, and records across the pieces are read whole)
    src = tmp_path / "src.gz"
    src.write_bytes(gzip.compress((SAMPLES / "blocked_agent.pcap").read_bytes()))
    trickle = ("import os, sys, time\n"
               f"d = open({str(src)!r}, 'rb').read()\n"
               "for i in range(0, len(d), 7):\n"
               "    os.write(1, d[i:i + 7])\n"
               "    if i < 64: time.sleep(0.05)\n")
    writer = subprocess.Popen([sys.executable, "-c", trickle], stdout=subprocess.PIPE)
    p = run("analyze", "-", "-f", "jsonl", stdin=writer.stdout)
    writer.stdout.close()
    assert writer.wait(timeout=60) == 0
    f = tmp_path / "stdin"
    shutil.copy(src, f)
    by_path = run("analyze", f, "-f", "jsonl")
    assert p.returncode == by_path.returncode == 1, p.stderr
    assert p.stdout == by_path.stdout and p.stdout.count(b"\n") > 5


def test_check_capture_of_stdin_reads_nothing_of_a_live_pipe():
    """``check_capture(STDIN)`` read the stream's first chunk: the bytes it read were missing from
    the analysis that followed, and on a pipe that stays open (a live ``tcpdump -w -``) it waited
    for more. It now reads none: every byte written is still there for the reader after it."""
    data = (SAMPLES / "blocked_agent.pcap").read_bytes()
    child = ("import hashlib, os, sys\n"
             "from kscc_traffic.analyze import check_capture\n"
             "from kscc_traffic.capture.files import STDIN\n"
             "check_capture(STDIN)\n"
             "print('checked', flush=True)\n"
             "got = b''\n"
             f"while len(got) < {len(data)}:\n"
             f"    b = os.read(0, {len(data)} - len(got))\n"
             "    if not b: break\n"
             "    got += b\n"
             "print(len(got), hashlib.md5(got).hexdigest(), flush=True)\n")
    r, w = os.pipe()
    p = subprocess.Popen([sys.executable, "-c", child], stdin=r, stdout=subprocess.PIPE, text=True,
                         cwd=ROOT, env=ENV)
    os.close(r)
    try:
        os.write(w, data)          # (and the pipe stays open: a capture still running)
        try:
            p.wait(timeout=90)     # (it waited here for more until the pipe was closed)
        except subprocess.TimeoutExpired:
            pass
    finally:
        os.close(w)
        p.wait(timeout=60)
    lines = p.stdout.read().split("\n")
    p.stdout.close()
    assert lines == ["checked", f"{len(data)} {hashlib.md5(data).hexdigest()}", ""]


def test_damage_on_a_pipe_still_open_is_read_past_when_records_come_again(tmp_path):
    """After damage in a stream the reader looks for where whole records start again, reading on
    (for records, not to count what it skips: ``drain`` is called only at the stream's end), so
    a run does not end while the pipe is open; the records that come after the damage are
    analysed and the bytes skipped counted exactly, as for the same bytes in a file. (Stopping
    at the damage with "at least N bytes" would lose them.)"""
    import struct
    data = (SAMPLES / "baseline_agent.pcap").read_bytes()
    off = 24
    for _ in range(20):                          # (20 whole records, then the damage)
        off += 16 + struct.unpack_from("<I", data, off + 8)[0]
    damaged = data[:off] + b"\xff" * 5000 + data[off:]
    r, w = os.pipe()
    p = subprocess.Popen([sys.executable, "-m", "kscc_traffic", "analyze", "-", "-f", "jsonl"], stdin=r,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=ENV)
    os.close(r)
    try:
        os.write(w, damaged[:off + 5000])
        deadline = time.monotonic() + 90
        while not _waits_on_pipe(p.pid):         # (read all that came: waiting for more)
            assert time.monotonic() < deadline and p.poll() is None
            time.sleep(0.05)
        time.sleep(0.5)
        assert p.poll() is None and _waits_on_pipe(p.pid)
        os.write(w, damaged[off + 5000:])
    finally:
        os.close(w)
    out, err = p.communicate(timeout=120)
    f = tmp_path / "stdin"
    f.write_bytes(damaged)
    by_path = run("analyze", f, "-f", "jsonl")
    assert p.returncode == by_path.returncode == 0, err
    assert out == by_path.stdout and out.count(b"\n") == 18
    assert err.decode().splitlines() == [
        f"Warning: stdin: damaged record at offset {off} (caplen 4294967295 > 262144); 5000 bytes skipped, "
        f"reading resumed at offset {off + 5000} where whole records start again"]
