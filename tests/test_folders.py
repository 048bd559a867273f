"""A folder given as a capture (newcomer 22 F1, F4, F6, F9): the same files for the command line
and the API, and every entry that is not read named in one warning line per folder; a file that
cannot be opened fails as given by name (exit 2, or skipped with --lenient), a ring buffer's
member that cannot be opened is named with the reason, not called missing."""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import warnings
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT
from test_filesets import DUMPCAP, _records, _write

import kscc_traffic
from kscc_traffic.capture.folders import expand_folders, folder_captures
from kscc_traffic.errors import CaptureError, CaptureWarning

SAMPLES = ROOT / "samples" / "captures"
BLOCKED, BASELINE = SAMPLES / "blocked_agent.pcap", SAMPLES / "baseline_agent.pcap"
#: the command line and the API run from this tree (not an installed copy)
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _cli(*args, prefix=()):
    return subprocess.run([*prefix, sys.executable, "-m", "kscc_traffic", *map(str, args)],
                          capture_output=True, text=True, timeout=180, cwd=ROOT, env=ENV)


def _rows(p):
    return [json.loads(line) for line in p.stdout.splitlines()]


def _customer(tmp_path: Path) -> Path:
    """A customer's folder: a clean capture, another machine's folder holding the blocked one, a
    zip and a tar with the blocked one inside, a Network Monitor file, an empty file, a FIFO,
    notes, a hidden file, and a file name with an escape sequence in it."""
    d = tmp_path / "customer"
    d.mkdir()
    shutil.copy(BASELINE, d / "baseline_agent.pcap")
    (d / "pc-accounting").mkdir()
    shutil.copy(BLOCKED, d / "pc-accounting" / "blocked_agent.pcap")
    with zipfile.ZipFile(d / "agent7.zip", "w") as z:
        z.write(BLOCKED, "agent7.pcap")
    with tarfile.open(d / "agent8.tar", "w") as t:
        t.add(BLOCKED, "agent8.pcap")
    (d / "agent9.cap").write_bytes(b"GMBU" + bytes(60))
    (d / "agent10.pcapng").write_bytes(b"")
    os.mkfifo(d / "live.fifo")
    (d / "notes.txt").write_text("the firewall was changed on Monday\n")
    (d / "evil\x1b[31m.txt").write_text("x")
    (d / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    return d


NOT_READ = ("not read: pc-accounting/ (a folder: give it as its own argument); "
            "agent7.zip (a zip archive: extract it first); agent8.tar (a tar archive: extract it first); "
            "agent9.cap (a Microsoft Network Monitor 2.x file: give it by name with --engine tshark, or "
            "convert it: editcap -F pcapng IN OUT); live.fifo (not a regular file: a pipe, socket or device); "
            "agent10.pcapng (empty); 2 files not captures (evil\\x1b[31m.txt, notes.txt); .DS_Store (hidden)")


def test_a_folder_names_every_entry_it_does_not_read(tmp_path):
    d = _customer(tmp_path)
    p = _cli("analyze", "-f", "jsonl", d)
    # (the blocked captures were not read: status 0, but the line says so)
    assert p.returncode == 0
    assert p.stderr == f"Warning: {d}: {NOT_READ}\n"
    assert {r["capture"] for r in _rows(p)} == {"baseline_agent.pcap"}
    # the table says it too (on stderr, as other reader warnings), the HTML report in its warnings
    t = _cli("analyze", d)
    assert t.returncode == 0 and t.stderr == p.stderr and "0 blocked" in t.stdout
    html = tmp_path / "r.html"
    r = _cli("report", d, "--html", html)
    assert r.returncode == 0 and r.stderr == p.stderr + f"Wrote {html} (18 flows: 0 blocked, 0 unexpected)\n"
    page = html.read_text(encoding="utf-8")
    assert "Reader warnings" in page and "pc-accounting/ (a folder: give it as its own argument)" in page
    assert "evil\\x1b[31m.txt" in page and "\x1b" not in page
    # the subfolder given as its own argument is read, and the run is flagged
    both = _cli("analyze", "-f", "jsonl", d, d / "pc-accounting")
    assert both.returncode == 1
    assert {r["capture"] for r in _rows(both)} == {"baseline_agent.pcap", "blocked_agent.pcap"}
    assert sum(r["verdict"] == "blocked" for r in _rows(both)) == 7
    assert both.stderr == f"Warning: {d}: {NOT_READ.replace('pc-accounting/ (a folder: give it as its own argument); ', '')}\n"


def test_the_api_reads_a_folder_as_the_command_line(tmp_path):
    """(F6) analyze(folder) and the notebook refused a folder: 'is a directory'."""
    d = _customer(tmp_path)
    shutil.copy(BLOCKED, d / "blocked_agent.pcap")
    _write(d, DUMPCAP, _records())
    cli = _cli("analyze", "-f", "jsonl", d)
    assert cli.returncode == 1
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        flows = kscc_traffic.analyze(d)
    lines = [str(w.message) for w in seen if issubclass(w.category, CaptureWarning)]
    assert lines[0] == f"{d}: {NOT_READ}"
    assert set(flows["capture"]) == {"baseline_agent.pcap", "blocked_agent.pcap", f"{DUMPCAP[0]} .. {DUMPCAP[2]}"}
    assert sorted(zip(flows["uid"], flows["verdict"])) == sorted((r["uid"], r["verdict"]) for r in _rows(cli))
    assert len(flows) == 11 + len(kscc_traffic.analyze(BASELINE)) + 4
    a = kscc_traffic.analyze_files([d])
    assert a.stats[""].warnings[0] == f"{d}: {NOT_READ}"
    # a folder among files, a list, a Path: the same rows
    assert len(kscc_traffic.analyze([str(d), BLOCKED])) \
        == len(flows)       # (the folder holds a copy of BLOCKED: read once, newcomer 33 #3)
    other = tmp_path / "other_blocked.pcap"
    other.write_bytes(BLOCKED.read_bytes()[:-1] + bytes([BLOCKED.read_bytes()[-1] ^ 1]))
    assert len(kscc_traffic.analyze([str(d), other])) == len(flows) + 11


def test_a_folder_without_captures_says_what_it_skipped(tmp_path):
    """(F9) 'is a directory with no capture file in it' did not say it skipped notes.txt."""
    d = tmp_path / "txtonly"
    d.mkdir()
    (d / "notes.txt").write_text("x")
    for n in ("pc1", "pc2", "pc3", "pc4"):
        (d / n).mkdir()
    want = (f"{d}: is a directory with no capture file in it (pcap, pcapng, compressed); not read: "
            "4 folders (pc1/, pc2/, pc3/, …: give each as its own argument); notes.txt (not a capture)")
    p = _cli("analyze", d)
    assert (p.returncode, p.stdout, p.stderr) == (2, "", f"Error: {want}\n")
    with pytest.raises(CaptureError) as e:
        kscc_traffic.analyze(d)
    assert str(e.value) == want
    empty = tmp_path / "empty"
    empty.mkdir()
    assert _cli("analyze", empty).stderr == \
        f"Error: {empty}: is a directory with no capture file in it (pcap, pcapng, compressed)\n"


def test_broken_links_of_a_folder_are_named_not_read(tmp_path):
    """Break-it 20 F9: a link whose target is missing (a stale latest.pcap after a ring buffer
    rotated) or that loops cannot be a capture: named in the folder's warning line, the other
    captures read, status as they give (it stopped the run with status 2). Given by name, each
    is still an Error. (Files that cannot be opened for another reason fail as given by name:
    test_permission_denied_in_a_folder_and_in_a_ring_buffer, without root's rights.)"""
    d = tmp_path / "d"
    d.mkdir()
    shutil.copy(BASELINE, d / "a.pcap")
    os.symlink("loop.pcap", d / "loop.pcap")
    os.symlink(tmp_path / "gone.pcap", d / "latest.pcap")
    p = _cli("analyze", "-f", "jsonl", d)
    assert p.returncode == 0, p.stderr
    assert p.stderr == (f"Warning: {d}: not read: 2 broken links (latest.pcap, loop.pcap: their targets "
                        f"are missing or they loop)\n")
    assert {r["capture"] for r in _rows(p)} == {"a.pcap"}
    by_name = _cli("analyze", d / "a.pcap", d / "loop.pcap")
    assert (by_name.returncode, by_name.stderr) == (2, f"Error: {d / 'loop.pcap'}: Too many levels of symbolic links "
                                                    "(--lenient skips what cannot be read and analyses the others)\n")
    assert len(kscc_traffic.analyze(d)) == len(_rows(p))


def test_expand_folders_keeps_files_and_order(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    import gzip
    shutil.copy(BASELINE, d / "b.pcap")
    # (not the bytes of b.pcap: a copy under another name is read once, newcomer 33 #3)
    (d / "a.pcap.gz").write_bytes(gzip.compress(BASELINE.read_bytes()))
    assert folder_captures(d) == ([d / "a.pcap.gz", d / "b.pcap"], None)
    got, notes = expand_folders([BLOCKED, str(d), tmp_path / "missing.pcap"])
    assert got == [BLOCKED, d / "a.pcap.gz", d / "b.pcap", tmp_path / "missing.pcap"] and notes == []


def _unprivileged():
    """The command prefix under which a mode-000 file cannot be read: none for an ordinary user;
    for root, setpriv dropping the capabilities that let root read any file (skip without it)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("root reads any file, and setpriv (util-linux) is not there to drop that right")
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search",
            "--inh-caps=-dac_override,-dac_read_search", "--"]


def _check_unreadable(path: Path, prefix) -> None:
    p = subprocess.run([*prefix, sys.executable, "-c", f"open({str(path)!r}, 'rb')"], capture_output=True,
                       text=True, timeout=60)
    if "PermissionError" not in p.stderr:
        pytest.skip(f"a mode-000 file stays readable here ({p.returncode}): cannot test Permission denied")


def test_permission_denied_in_a_folder_and_in_a_ring_buffer(tmp_path):
    """(F1) an unreadable capture in a folder was left out without a word (exit 0, '0 blocked');
    (F4) an unreadable ring-buffer member was 'file number 2 of the set missing'."""
    prefix = _unprivileged()
    d = tmp_path / "exit0"
    d.mkdir()
    shutil.copy(BASELINE, d / "baseline_agent.pcap")
    shutil.copy(BLOCKED, d / "dp_blocked.pcap")
    (d / "dp_blocked.pcap").chmod(0)
    _check_unreadable(d / "dp_blocked.pcap", prefix)
    p = _cli("analyze", d, prefix=prefix)
    assert (p.returncode, p.stdout) == (2, "")
    assert p.stderr == (f"Error: {d / 'dp_blocked.pcap'}: cannot read: Permission denied "
                        "(--lenient skips what cannot be read and analyses the others)\n")   # (newcomer 39)
    p = _cli("analyze", "--lenient", "-f", "jsonl", d, prefix=prefix)
    assert p.returncode == 0 and {r["capture"] for r in _rows(p)} == {"baseline_agent.pcap"}
    assert p.stderr == f"Warning: skipped {d / 'dp_blocked.pcap'}: cannot read: Permission denied\n"

    ring = tmp_path / "ring"
    paths = _write(ring, DUMPCAP, _records())
    paths[1].chmod(0)
    # (break-it 20 F11: no damage of the capture, so it fails as a file on its own does; it was a
    # warning, and the connection across files 1-2 was judged blocked, exit 1)
    why = (f"{paths[1]}: cannot read: Permission denied (a file of {paths[0]} .. {DUMPCAP[2]}; without it "
           "connections across it may show as blocked or split)")
    p = _cli("analyze", "-f", "jsonl", ring, prefix=prefix)
    assert (p.returncode, p.stdout, p.stderr) == (2, "", f"Error: {why}\n")
    p = _cli("analyze", "--lenient", "-f", "jsonl", ring, prefix=prefix)
    assert p.returncode == 1      # (the connection across files 1-2 lost its answer)
    assert "missing" not in p.stderr
    assert p.stderr == f"Warning: skipped {why}\n"
    assert {r["capture"] for r in _rows(p)} == {f"{DUMPCAP[0]} .. {DUMPCAP[2]}"} and len(_rows(p)) == 4
    # the API: the same flows, the member named with the reason
    code = ("import json, warnings, kscc_traffic as k\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            f"    f = k.analyze({str(ring)!r})\n"
            "print(json.dumps([sorted(f['uid']), [str(x.message) for x in w]]))\n")
    api = subprocess.run([*prefix, sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=ROOT, env=ENV)
    uids, lines = json.loads(api.stdout)
    assert uids == sorted(r["uid"] for r in _rows(p))
    assert lines == [f"{DUMPCAP[1]}: skipped (part of {DUMPCAP[0]} .. {DUMPCAP[2]}): cannot read: "
                     "Permission denied; connections across it may show as blocked or split"]


def test_compressed_entries_by_what_is_inside(tmp_path):
    """A compressed capture is read; a .tar.gz is an archive and a .log.gz no capture (both
    stopped the run before: 'not a pcap or pcapng capture', exit 2); one that breaks before its
    first bytes is read, its damage said then."""
    import gzip
    d = tmp_path / "d"
    d.mkdir()
    (d / "agent.pcap.gz").write_bytes(gzip.compress(BASELINE.read_bytes()))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        t.add(BLOCKED, "x/blocked_agent.pcap")
    (d / "logs.tar.gz").write_bytes(buf.getvalue())
    (d / "app.log.xz").write_bytes(__import__("lzma").compress(b"log line\n"))
    assert folder_captures(d) == ([d / "agent.pcap.gz"], f"{d}: not read: logs.tar.gz (a tar archive: "
                                  "extract it first); app.log.xz (not a capture)")
    (d / "cut.pcap.gz").write_bytes(gzip.compress(BASELINE.read_bytes())[:12])
    assert folder_captures(d)[0] == [d / "agent.pcap.gz", d / "cut.pcap.gz"]
    # (break-it 20 F12) the compression of an empty file is empty, as given by name, not "not a capture"
    (d / "none.pcap.gz").write_bytes(gzip.compress(b""))
    assert folder_captures(d)[1].endswith("; none.pcap.gz (empty); app.log.xz (not a capture)")


def test_a_capture_compressed_twice_is_named_in_a_folder_and_explained_by_name(tmp_path):
    """Break-it 20 F7: a pcap gzipped twice (the reader takes off one layer) passed the folder's
    check (its first layer held gzip's magic, taken for a capture) and then stopped the whole
    run with status 2: it is named, not read; given by name its error says what it is."""
    import gzip
    d = tmp_path / "d"
    d.mkdir()
    shutil.copy(BASELINE, d / "a.pcap")
    (d / "b.pcap.gz.gz").write_bytes(gzip.compress(gzip.compress(BASELINE.read_bytes())))
    p = _cli("analyze", "-f", "jsonl", d)
    assert p.returncode == 0, p.stderr
    assert p.stderr == f"Warning: {d}: not read: b.pcap.gz.gz (compressed twice: decompress it once first)\n"
    assert {r["capture"] for r in _rows(p)} == {"a.pcap"}
    by_name = _cli("analyze", d / "b.pcap.gz.gz")
    assert by_name.returncode == 2
    assert by_name.stderr.startswith(f"Error: {d / 'b.pcap.gz.gz'}: not a pcap or pcapng capture: magic bytes 1f 8b")
    assert by_name.stderr.endswith("(compressed twice, the inner layer gzip: decompress it once first)\n")


def test_a_capture_given_more_than_once_is_read_once(tmp_path):
    """Break-it 20 F10: a folder given twice, or a folder and one of its files, counted the
    flows two or three times without a word: each file is read once, at its first place, and
    a line names what was given more than once."""
    d = tmp_path / "d"
    d.mkdir()
    shutil.copy(BASELINE, d / "a.pcap")
    once = _rows(_cli("analyze", "-f", "jsonl", d))
    p = _cli("analyze", "-f", "jsonl", d, d / "a.pcap", d)
    assert p.returncode == 0
    assert len(_rows(p)) == len(once) == 18
    assert p.stderr == f"Warning: 1 capture given more than once (directly or in a folder), read once: {d / 'a.pcap'}\n"
    assert len(kscc_traffic.analyze([d, d / "a.pcap"])) == 18


def test_lenient_skips_a_folder_without_captures(tmp_path):
    """Break-it 20 F8: --lenient skips what cannot be read at all, a folder without any capture
    (or one that cannot be listed) included: a `Warning: skipped …` line, the other captures
    read (it stopped the run with status 2); without --lenient still an Error."""
    empty = tmp_path / "empty"
    empty.mkdir()
    why = f"{empty}: is a directory with no capture file in it (pcap, pcapng, compressed)"
    strict = _cli("analyze", empty, BASELINE)
    assert (strict.returncode, strict.stderr) == (2, f"Error: {why} (--lenient skips what cannot be read and "
                                                    "analyses the others)\n")
    p = _cli("analyze", "--lenient", "-f", "jsonl", empty, BASELINE)
    assert (p.returncode, p.stderr, len(_rows(p))) == (0, f"Warning: skipped {why}\n", 18)
    alone = _cli("analyze", "--lenient", empty)
    assert (alone.returncode, alone.stderr) == (2, f"Warning: skipped {why}\nError: no capture could be read\n")
    html = tmp_path / "r.html"
    r = _cli("report", "--lenient", empty, BASELINE, "--html", html)
    assert r.returncode == 0 and f"skipped {why}" in html.read_text(encoding="utf-8")


def test_an_archive_given_by_name_is_named_as_in_a_folder(tmp_path):
    """Newcomer 26 #6: a tar or tar.gz given by name said "looks like text 'blocked_'" (its first
    file's name) where the folder scan says "a tar archive"; a zip said "(a zip archive (extract
    it first))". One test (known_format) for both, the same words."""
    import gzip
    from kscc_traffic.capture.folders import known_format
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        t.add(BLOCKED, arcname="blocked_agent.pcap")    # (the archive starts with the name)
    (tmp_path / "a.tar").write_bytes(buf.getvalue())
    (tmp_path / "a.tar.gz").write_bytes(gzip.compress(buf.getvalue()))
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as z:
        z.write(BLOCKED, "blocked_agent.pcap")
    assert known_format(buf.getvalue()[:262]) == ("tar", "a tar archive", "extract it first")
    assert known_format(buf.getvalue()[:200]) is None      # (ustar is at 257)
    head = buf.getvalue()[:4].hex(" ")
    for name, magic in (("a.tar", head), ("a.tar.gz", head), ("a.zip", "50 4b 03 04")):
        kind = "zip" if name.endswith("zip") else "tar"
        p = _cli("analyze", tmp_path / name)
        assert p.returncode == 2
        assert p.stderr == (f"Error: {tmp_path / name}: not a pcap or pcapng capture: magic bytes {magic} "
                            f"(a {kind} archive: extract it first)\n")
    p = _cli("analyze", "-f", "jsonl", tmp_path)
    assert p.stderr == (f"Error: {tmp_path}: is a directory with no capture file in it (pcap, pcapng, compressed); "
                        "not read: a.zip (a zip archive: extract it first); 2 tar archives (a.tar, a.tar.gz: "
                        "extract them first)\n")


def test_a_damaged_file_in_a_folder_names_lenient(tmp_path):
    """Newcomer 39: `analyze DIR` (one argument) with one unreadable capture among several in the
    folder stopped with an Error that did not say --lenient reads the others (it did for
    `analyze a.pcap b.pcap`); with --lenient the others are analysed."""
    import struct
    d = tmp_path / "d"
    d.mkdir()
    shutil.copy(BASELINE, d / "a.pcap")
    # a pcapng Section Header Block whose trailing length (99) is not its length (28)
    (d / "b.pcapng").write_bytes(struct.pack("<4sII HHq I", b"\n\r\r\n", 28, 0x1A2B3C4D, 1, 0, -1, 99))
    strict = _cli("analyze", d)
    assert strict.returncode == 2
    assert strict.stderr.startswith(f"Error: {d / 'b.pcapng'}: ")
    assert strict.stderr.endswith(" (--lenient skips what cannot be read and analyses the others)\n")
    html = _cli("report", d, "--html", tmp_path / "r.html")
    assert html.returncode == 2 and html.stderr.endswith("analyses the others)\n")
    p = _cli("analyze", "--lenient", "-f", "jsonl", d)
    assert p.returncode == 0 and p.stderr.startswith(f"Warning: skipped {d / 'b.pcapng'}: ")
    assert {r["capture"] for r in _rows(p)} == {"a.pcap"}
    alone = _cli("analyze", d / "b.pcapng")     # one file: no "others" to speak of
    assert alone.returncode == 2 and "--lenient" not in alone.stderr
