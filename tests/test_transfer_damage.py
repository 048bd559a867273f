"""Captures damaged by a text-mode transfer (FTP ASCII mode: each LF byte written as CR LF; a
line break added before the file header): one line that says so, and no "wrong interface" hint
when reading stopped early at damage (newcomer 26 #2)."""
from __future__ import annotations

import gzip
import struct
import subprocess
import sys

import pytest

from conftest import ROOT
from kscc_traffic.capture.files import ASCII_MODE_TEXT, iter_frames, read_frames
from kscc_traffic.capture.stats import ReadStats
from kscc_traffic.errors import CorruptCapture

SAMPLES = ROOT / "samples" / "captures"


def run(*args):
    return subprocess.run([sys.executable, "-m", "kscc_traffic", *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def _crlf(b: bytes) -> bytes:
    return b.replace(b"\n", b"\r\n")


def test_a_pcap_sent_in_ftp_ascii_mode_is_an_error_naming_it(tmp_path):
    """blocked_agent.pcap with each LF written as CR LF: was "damaged record at offset 121 …",
    a "wrong interface" hint, 0 flows and exit 0."""
    cap = tmp_path / "crlf.pcap"
    cap.write_bytes(_crlf((SAMPLES / "blocked_agent.pcap").read_bytes()))
    p = run("analyze", cap)
    assert p.returncode == 2, p.stderr
    assert p.stderr == (f"Error: {cap}: {ASCII_MODE_TEXT} (its records stop following one another at offset 121 "
                        "and read right with each CR LF read as LF)\n")
    assert p.stdout == ""


@pytest.mark.parametrize("chunk", [64, 4096, 1 << 24])
def test_the_reader_raises_whatever_the_chunk_size(chunk):
    data = _crlf((SAMPLES / "blocked_agent.pcap").read_bytes())
    with pytest.raises(CorruptCapture, match="FTP ASCII mode"):
        list(iter_frames(data, chunk, name="x.pcap"))
    with pytest.raises(CorruptCapture, match="FTP ASCII mode"):
        list(iter_frames(gzip.compress(data), chunk, name="x.pcap.gz"))


def test_damage_that_is_no_text_transfer_reads_on_as_before():
    """CR LF pairs in the packets before other damage do not make it FTP ASCII mode: with CR LF
    read as LF the records do not read right, so the damage line stays the reader's."""
    from pcapbuild import pcap_bytes
    pkt = b"\x00" * 14 + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\x00" * 20
    data = bytearray(pcap_bytes([(1000.0 + i, pkt) for i in range(8)]))
    rec = 16 + len(pkt)
    at = 24 + 5 * rec
    data[at + 8:at + 12] = struct.pack("<I", 0x7FFF0000)    # the 6th record's caplen
    fr = read_frames(bytes(data), name="x.pcap")
    assert fr.stats.warnings[0].startswith(f"x.pcap: damaged record at offset {at} (caplen 2147418112 > 262144)")
    assert len(fr) == 7      # (the two after it read again where whole records start)
    assert read_frames(pcap_bytes([(1000.0 + i, pkt) for i in range(8)])).stats.warnings == []


def test_a_line_break_before_the_header_and_ascii_pcapng_are_named(tmp_path):
    pcap = (SAMPLES / "blocked_agent.pcap").read_bytes()
    for head, want in ((b"\r\n" + pcap, "a line break (CR LF) before the capture's file header (magic bytes 0d 0a d4 c3)"),
                       (b"\n" + pcap, "a line break (LF) before the capture's file header (magic bytes 0a d4 c3 b2)"),
                       (_crlf(b"\x0a\x0d\x0d\x0a" + struct.pack("<I", 28) + b"\x4d\x3c\x2b\x1a"),
                        ASCII_MODE_TEXT + " (magic bytes 0d 0a 0d 0d 0d 0a: a pcapng file starts 0a 0d 0d 0a)")):
        cap = tmp_path / "x.pcap"
        cap.write_bytes(head)
        p = run("analyze", cap)
        assert p.returncode == 2
        assert p.stderr.startswith(f"Error: {cap}: {want}"), p.stderr
        assert "transfer it again in binary mode" in p.stderr


def test_no_wrong_interface_hint_when_reading_stopped_at_damage():
    st = ReadStats(records=1, non_ip=1, damage_offset=121)
    st.warn_no_ip("x.pcap")
    assert st.warnings == ["x.pcap: no IP packet among the 1 frame read before the damage at offset 121 "
                           "(1 non-IP): nothing to analyse"]
    st = ReadStats(records=3, non_ip=3)
    st.warn_no_ip("x.pcap")
    assert "wrong interface" in st.warnings[0]


def test_a_capture_that_cannot_be_read_is_named_by_its_path_as_given(tmp_path):
    """Newcomer 26: the API said `empty.pcap: empty file` (the reader's name) but
    `/tmp/…/notes.pcap: not a pcap…` (the check before reading); errors found while reading
    (an ASCII-mode pcap whose damage lies past the first record) named the file name on the
    command line too. One text: the path as given, escaped."""
    import kscc_traffic
    from kscc_traffic.errors import CaptureError, TruncatedCapture
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    with pytest.raises(TruncatedCapture) as e:
        kscc_traffic.analyze(str(empty))
    assert str(e.value) == f"{empty}: empty file (0 bytes), no capture header"
    # damage found past the first record: the check before reading passes, the analysis fails
    from pcapbuild import pcap_bytes
    from kscc_traffic.analyze import check_capture
    data = pcap_bytes([(1000.0 + i, b"\x00" * 60 + (b"\n" * 3 if i >= 5 else b"")) for i in range(12)])
    cap = tmp_path / "later\x1b.pcap"
    cap.write_bytes(_crlf(data))
    check_capture(cap)     # (its first records read right: the check before reading passes)
    shown = str(tmp_path) + "/later\\x1b.pcap"
    with pytest.raises(CaptureError) as e:
        kscc_traffic.analyze(cap)
    assert str(e.value).startswith(f"{shown}: {ASCII_MODE_TEXT} (its records stop following one another at offset ")
    for jobs in ("1", "2"):
        p = run("analyze", "-j", jobs, cap, SAMPLES / "blocked_agent.pcap")
        assert p.returncode == 2
        assert p.stderr.startswith(f"Error: {shown}: {ASCII_MODE_TEXT}"), p.stderr
