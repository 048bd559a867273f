"""Newcomer report 17: where reports are written (devices, links, FIFOs, long names, ``-``),
the end of a run (Ctrl-C, ``| head``) and what ``Error:`` lines show of file names."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading

import pytest

from conftest import ROOT

SAMPLES = ROOT / "samples" / "captures"
LONG = "a" * 300


def run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "kscc_traffic", *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=cwd)


# --- 1. report --html: atomic only for a regular file or a new name --------------------------
def test_html_over_a_regular_file_is_replaced_whole(tmp_path):
    out = tmp_path / "r.html"
    out.write_text("previous")
    p = run("report", SAMPLES / "blocked_agent.pcap", "--html", out)
    assert (p.returncode, p.stderr) == (1, f"Wrote {out} (11 flows: 7 blocked, 0 unexpected)\n")
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["r.html"]   # no temporary file left


def test_html_through_a_symlink_writes_the_target_and_keeps_the_link(tmp_path):
    target = tmp_path / "target.html"
    target.write_text("old")
    link = tmp_path / "link.html"
    link.symlink_to("target.html")
    p = run("report", SAMPLES / "blocked_agent.pcap", "--html", link)
    assert (p.returncode, p.stderr) == (1, f"Wrote {link} (11 flows: 7 blocked, 0 unexpected)\n")
    assert link.is_symlink() and os.readlink(link) == "target.html"
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_html_to_a_fifo_is_written_in_place(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()))
    reader.start()
    p = run("report", SAMPLES / "blocked_agent.pcap", "--html", fifo)
    reader.join(30)
    assert (p.returncode, p.stderr) == (1, "")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)          # still the FIFO, not a file renamed over it
    assert got and got[0].startswith(b"<!DOCTYPE html>") and got[0].rstrip().endswith(b"</html>")


@pytest.mark.parametrize("minor, rc, err", [(3, 1, ""),   # a null device: written, status of the verdict
                                            (7, 2, "No space left on device")])  # a full device: Error
def test_html_to_a_device_node_keeps_the_node(tmp_path, minor, rc, err):
    # nodes made in tmp_path (never the system's /dev): c 1 3 is a null device, c 1 7 a full one
    node = tmp_path / "dev"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
    except PermissionError:
        pytest.skip("mknod needs root")
    p = run("report", SAMPLES / "blocked_agent.pcap", "--html", node)
    assert p.returncode == rc, p.stderr
    assert err in p.stderr and (not err or p.stderr.count("\n") == 1)
    st = os.lstat(node)
    assert stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1 and os.minor(st.st_rdev) == minor
    assert sorted(x.name for x in tmp_path.iterdir()) == ["dev"]


def test_write_html_api_keeps_a_device_node(tmp_path):
    from kscc_traffic import analyze, load_rules
    from kscc_traffic.html_report import write_html
    node = tmp_path / "null"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("mknod needs root")
    rules = load_rules()
    write_html(node, analyze(SAMPLES / "baseline_agent.pcap", rules), rules, charts=False)
    assert stat.S_ISCHR(os.lstat(node).st_mode)


# --- 3. paths too long: one Error line, status 2 ------------------------------------------------
@pytest.mark.parametrize("args", [
    ("analyze", SAMPLES / "blocked_agent.pcap", "-o", f"{{tmp}}/{LONG}.csv"),
    ("analyze", SAMPLES / "blocked_agent.pcap", "-o", f"{{tmp}}/{LONG}/x.csv"),
    ("report", SAMPLES / "blocked_agent.pcap", "--html", f"{{tmp}}/{LONG}.html"),
    ("analyze", SAMPLES / "blocked_agent.pcap", "--rules", f"{{tmp}}/{LONG}.toml"),
    ("rules", "--rules", f"{{tmp}}/{LONG}.toml"),
    ("live", "-i", "lo", "--duration", "1", "--write", f"{{tmp}}/{LONG}.pcapng"),
    ("live", "-i", "lo", "--duration", "1", "-o", f"{{tmp}}/{LONG}.csv"),
    ("report", f"{{tmp}}/{LONG}.pcap", "--html", "{tmp}/r.html"),
])
def test_a_path_too_long_is_one_error_line_and_status_2(tmp_path, args):
    p = run(*(str(a).replace("{tmp}", str(tmp_path)) for a in args))
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith("Error: ") and p.stderr.count("\n") == 1, p.stderr
    assert "File name too long" in p.stderr and "Traceback" not in p.stderr
    assert sorted(tmp_path.iterdir()) == []


# --- 7. file names printed literally in Error/Warning lines ------------------------------------
def test_error_lines_show_emoji_codes_and_markup_of_file_names_literally(tmp_path):
    name = tmp_path / "[red]a[/red]:x::thumbs_up:.pcap"
    p = run("analyze", name)
    assert p.returncode == 2
    assert p.stderr == f"Error: {name}: no such file\n"


def test_warning_lines_show_emoji_codes_of_file_names_literally(tmp_path):
    cut = tmp_path / ":x:cut.pcap"
    cut.write_bytes((SAMPLES / "blocked_agent.pcap").read_bytes()[:3000])
    p = run("analyze", cut)
    assert p.returncode in (0, 1)
    assert "Warning: :x:cut.pcap: " in p.stderr and "\u274c" not in p.stderr


def test_text_of_a_file_in_an_error_line_keeps_its_colons(tmp_path):
    f = tmp_path / "notes.pcap"
    f.write_text("root:x:0:0:root:/root:/bin/bash\n")
    p = run("analyze", f)
    assert p.returncode == 2
    assert p.stderr.endswith("(looks like text 'root:x:0')\n"), p.stderr


# --- 12. | head: 141 also when the whole report is one write -----------------------------------
@pytest.fixture(scope="module")
def many(tmp_path_factory):
    cap = tmp_path_factory.mktemp("many") / "many.pcap"
    subprocess.run([sys.executable, str(ROOT / "bench" / "make_capture.py"), "--packets", "20000",
                    "--out", str(cap), "--quiet"], check=True, timeout=60)
    return cap


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_reader_gone_during_one_large_write_ends_with_141(many, fmt):
    # the default chunk holds the whole capture: the rows (1.4 MB) go out in one write, which
    # the pipe takes only in part before `head` exits; that used to end with status 1 (the
    # verdict) as if the reader had read everything
    p = subprocess.Popen([sys.executable, "-m", "kscc_traffic", "analyze", str(many), "--format", fmt],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = p.stdout.readline()
    p.stdout.close()
    rc = p.wait(timeout=120)
    assert first
    assert (rc, p.stderr.read().decode()) == (141, "")


def test_write_all_raises_when_a_large_write_is_cut(tmp_path):
    import io
    from kscc_traffic.outfile import write_all

    class Short(io.RawIOBase):       # takes 100 bytes, then refuses as a closed pipe does
        def __init__(self):
            self.got = b""

        def writable(self):
            return True

        def write(self, b):
            if self.got:
                raise BrokenPipeError(32, "Broken pipe")
            self.got = bytes(b[:100])
            return 100

    raw = Short()
    out = io.TextIOWrapper(io.BufferedWriter(raw, buffer_size=1024), encoding="utf-8")
    with pytest.raises(BrokenPipeError):
        write_all(out, "x" * 100_000)
    assert raw.got == b"x" * 100


# --- 13. Ctrl-C during analyze -o FILE -----------------------------------------------------------
def _interrupt_after_first_batch(monkeypatch):
    from kscc_traffic import output
    real = output.FlowSink.add

    def add(self, flows):
        real(self, flows)
        if self.rows:
            raise KeyboardInterrupt
    monkeypatch.setattr(output.FlowSink, "add", add)


def test_interrupted_analyze_keeps_the_previous_file_and_says_so(tmp_path, monkeypatch, capsys):
    from kscc_traffic.cli import app
    out = tmp_path / "flows.csv"
    out.write_text("previous report\n")
    _interrupt_after_first_batch(monkeypatch)
    rc = app(args=["analyze", str(SAMPLES / "blocked_agent.pcap"), "-f", "csv", "-o", str(out)],
             standalone_mode=False)
    assert rc == 130
    err = capsys.readouterr().err
    assert err == f"Interrupted: {out} not written (stopped after 11 flows; its previous content is kept)\n"
    assert out.read_text() == "previous report\n"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["flows.csv"]


def test_interrupted_analyze_to_a_new_name_makes_no_file(tmp_path, monkeypatch, capsys):
    from kscc_traffic.cli import app
    out = tmp_path / "flows.jsonl"
    _interrupt_after_first_batch(monkeypatch)
    rc = app(args=["analyze", str(SAMPLES / "blocked_agent.pcap"), "-f", "jsonl", "-o", str(out)],
             standalone_mode=False)
    assert rc == 130
    assert capsys.readouterr().err == f"Interrupted: {out} not written (stopped after 11 flows; no file made)\n"
    assert sorted(tmp_path.iterdir()) == []


def test_interrupted_analyze_through_a_link_says_the_file_is_incomplete(tmp_path, monkeypatch, capsys):
    from kscc_traffic.cli import app
    target = tmp_path / "t.csv"
    link = tmp_path / "l.csv"
    link.symlink_to(target)
    _interrupt_after_first_batch(monkeypatch)
    rc = app(args=["analyze", str(SAMPLES / "blocked_agent.pcap"), "-f", "csv", "-o", str(link)],
             standalone_mode=False)
    assert rc == 130
    assert capsys.readouterr().err == f"Interrupted: {link} is incomplete (11 flows written)\n"
    assert len(target.read_text().splitlines()) == 12       # the header and the 11 rows written


def test_sigint_during_analyze_output_ends_130_with_a_line(tmp_path, many):
    import signal
    import time
    out = tmp_path / "m.csv"
    p = subprocess.Popen([sys.executable, "-m", "kscc_traffic", "analyze", str(many), "-f", "csv",
                          "--chunk-mib", "1", "-o", str(out)], cwd=ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and p.poll() is None:   # the temporary file has rows
        tmps = [x for x in tmp_path.iterdir() if x.name.startswith(".m.csv.")]
        if tmps and tmps[0].stat().st_size > 0:
            break
        time.sleep(0.01)
    p.send_signal(signal.SIGINT)
    rc = p.wait(timeout=60)
    err = p.stderr.read().decode()
    if rc != 130:
        pytest.skip(f"the run ended before the signal (status {rc})")
    assert err.startswith(f"Interrupted: {out} not written (stopped after ") and err.count("\n") == 1, err
    assert sorted(tmp_path.iterdir()) == []


# --- 14. -o - -------------------------------------------------------------------------------------
def test_output_dash_is_standard_output(tmp_path):
    p = run("analyze", SAMPLES / "blocked_agent.pcap", "-f", "csv", "-o", "-", cwd=tmp_path)
    assert p.returncode == 1, p.stderr
    assert p.stdout.startswith("ts,uid,") and len(p.stdout.splitlines()) == 12
    assert sorted(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, line", [
    (("report", SAMPLES / "blocked_agent.pcap", "--html", "-"),
     "Error: --html -: the HTML report is one file; give its name (e.g. --html report.html)\n"),
    (("live", "--duration", "1", "--write", "-"),
     "Error: --write -: the packets go to a pcapng file; give its name (e.g. --write agent.pcapng)\n"),
])
def test_dash_for_a_file_only_option_is_refused(tmp_path, args, line):
    p = run(*args, cwd=tmp_path)
    assert (p.returncode, p.stderr) == (2, line)
    assert sorted(tmp_path.iterdir()) == []


def test_a_long_valid_output_name_is_written(tmp_path):
    # 250 characters: a valid name, whose temporary name must stay within 255 as well
    out = tmp_path / ("b" * 246 + ".csv")
    p = run("analyze", SAMPLES / "blocked_agent.pcap", "-f", "csv", "-o", out)
    assert (p.returncode, p.stderr) == (1, "")
    assert len(out.read_text().splitlines()) == 12
    assert sorted(tmp_path.iterdir()) == [out]


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    out = tmp_path / "r.csv"
    out.write_text("old")
    out.chmod(0o640)
    p = run("analyze", SAMPLES / "blocked_agent.pcap", "-f", "csv", "-o", out)
    assert p.returncode == 1, p.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o640 and out.read_text().startswith("ts,uid,")


def test_rules_text_is_printed_literally(tmp_path):
    # a rules file is the user's text: markup and emoji codes in a purpose are printed as written
    text = (ROOT / "rules" / "kscc-cloud.toml").read_text(encoding="utf-8")
    text = text.replace('purpose = "The cloud Administration Server receives',
                        'purpose = "[bold red]X[/bold red] :x: The cloud Administration Server receives', 1)
    rules = tmp_path / "r.toml"
    rules.write_text(text, encoding="utf-8")
    p = run("rules", "--rules", rules)
    assert p.returncode == 0, p.stderr
    assert "[bold red]X[/bold red] :x: The cloud" in p.stdout and "\u274c" not in p.stdout


@pytest.mark.parametrize("cmd", ["analyze", "report"])
def test_an_output_under_a_file_is_one_error_line(tmp_path, cmd):
    plain = tmp_path / "plain"
    plain.write_text("x")
    out = plain / "r.out"
    args = ("-o", out) if cmd == "analyze" else ("--html", out)
    p = run(cmd, SAMPLES / "blocked_agent.pcap", *args)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and p.stderr.startswith(f"Error: {out}: "), p.stderr
    assert "Traceback" not in p.stderr and plain.read_text() == "x"


def test_report_file_of_an_unreachable_path_fails_on_open(tmp_path):
    from kscc_traffic.outfile import ReportFile
    plain = tmp_path / "plain"
    plain.write_text("x")
    target = ReportFile(plain / "r.html")          # ENOTDIR: no error yet
    with pytest.raises(NotADirectoryError):
        target.open()
    target.discard()
    assert sorted(tmp_path.iterdir()) == [plain]


@pytest.mark.parametrize("cmd", [("analyze", ""), ("report", "", "--html", "r.html"),
                                 ("analyze", SAMPLES / "blocked_agent.pcap", "")])
def test_an_empty_capture_argument_is_named_as_such(tmp_path, cmd):
    # `analyze "$CAP"` with CAP unset: was "Error: .: is a directory, not a capture file"
    p = run(*cmd, cwd=tmp_path)
    assert (p.returncode, p.stderr) == (
        2, "Error: an empty capture name (an unset shell variable?); give a pcap or pcapng file\n")
    assert p.stdout == "" and sorted(tmp_path.iterdir()) == []


def test_interrupted_while_a_batch_is_written_says_part_of_it_may_be_out(tmp_path, monkeypatch, capsys):
    """Ctrl-C while a batch is being written to a pipe or device (the reader has part of it): the
    line says so after the count of whole batches (newcomer 18 #9: '0 flows written' after 155
    lines had reached the reader)."""
    from kscc_traffic import report
    from kscc_traffic.cli import app
    real = report.write_jsonl

    def half(flows, out):
        out.write(flows.head(1).to_json(orient="records", lines=True))
        raise KeyboardInterrupt
    monkeypatch.setattr(report, "write_jsonl", half)
    target = tmp_path / "t.jsonl"
    link = tmp_path / "l.jsonl"
    link.symlink_to(target)
    # (-j 1: the batches' text is made in this process, by the patched writer)
    rc = app(args=["analyze", str(SAMPLES / "blocked_agent.pcap"), "-f", "jsonl", "-o", str(link), "-j", "1"],
             standalone_mode=False)
    assert rc == 130 and real is not report.write_jsonl
    assert capsys.readouterr().err == f"Interrupted: {link} is incomplete (0 flows written and part of the next batch)\n"


def test_interrupted_report_says_what_became_of_the_html(tmp_path, monkeypatch, capsys):
    """report stopped by Ctrl-C or SIGTERM: status 130 and one Interrupted line, the file named
    untouched (newcomer 18 #10: no line, and SIGTERM killed it with 143)."""
    import sys
    from kscc_traffic.cli import app
    an = sys.modules["kscc_traffic.analyze"]

    def stop(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(an, "analyze_file", stop)
    new = tmp_path / "r.html"
    rc = app(args=["report", str(SAMPLES / "blocked_agent.pcap"), "--html", str(new)], standalone_mode=False)
    assert rc == 130 and capsys.readouterr().err == f"Interrupted: {new} not written (no file made)\n"
    assert not new.exists()
    old = tmp_path / "old.html"
    old.write_text("previous\n")
    rc = app(args=["report", str(SAMPLES / "blocked_agent.pcap"), "--html", str(old)], standalone_mode=False)
    assert rc == 130 and capsys.readouterr().err == f"Interrupted: {old} not written (its previous content is kept)\n"
    assert old.read_text() == "previous\n"
