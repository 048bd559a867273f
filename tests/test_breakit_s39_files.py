"""Capture files and odd inputs (session 39): a FIFO named on the command line (the error
says to give it on standard input, which reads it), lz4's legacy frame format and xz/bzip2
captures with the tshark engine, Apple PKTAP headers (link types 258 and 149) read as
Wireshark reads them, TZSP in either direction and its other encapsulations. Bytes are built
in the test."""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HAVE_TSHARK = shutil.which("tshark") is not None


def _syn_frames(n: int, port0: int = 40000) -> list[bytes]:
    """``n`` Ethernet frames: TCP SYNs 198.51.100.1:port0+i -> 203.0.113.5:13000."""
    out = []
    for i in range(n):
        tcp = struct.pack("!HHIIBBHHH", port0 + i, 13000, 1000 + i, 0, 5 << 4, 0x02, 64240, 0, 0)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i, 0, 64, 6, 0,
                         bytes([198, 51, 100, 1]), bytes([203, 0, 113, 5]))
        out.append(b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + tcp)
    return out


def _pcap_of(frames: list[bytes], linktype: int = 1) -> bytes:
    """A classic little-endian µs pcap of ``frames`` (one a second from 1700000000)."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)]
    for i, f in enumerate(frames):
        out.append(struct.pack("<IIII", 1_700_000_000 + i, 0, len(f), len(f)) + f)
    return b"".join(out)


def _run(args: list[str], **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "kscc_traffic", *args], capture_output=True, text=True,
                          env=env, timeout=180, **kw)


def _analyze(tmp_path: Path, p: Path | str, *extra: str, out: str = "out.jsonl") -> subprocess.CompletedProcess:
    return _run(["analyze", str(p), "-f", "jsonl", "-o", str(tmp_path / out), *extra])


def _flows(tmp_path: Path, out: str = "out.jsonl") -> list[dict]:
    p = tmp_path / out
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]


def _warnings(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("Warning:")]


# ------------------------------------------------------------------ a FIFO: standard input
def test_fifo_error_names_standard_input_and_stdin_reads_it(tmp_path):
    fifo = tmp_path / "live cap.fifo"
    os.mkfifo(fifo)
    r = _analyze(tmp_path, fifo)
    assert r.returncode == 2
    line = r.stderr.strip()
    assert "not a regular file" in line
    assert line.endswith(f"or give it on standard input: kscc-traffic analyze - < '{fifo}'"), line
    # what the error says works: the FIFO read as standard input
    data = _pcap_of(_syn_frames(4))

    def feed():
        with open(fifo, "wb") as w:
            w.write(data)
    t = threading.Thread(target=feed)
    t.start()
    with open(fifo, "rb") as rd:
        r = _run(["analyze", "-", "-f", "jsonl", "-o", str(tmp_path / "out.jsonl")], stdin=rd)
    t.join(10)
    assert "Error" not in r.stderr, r.stderr
    flows = _flows(tmp_path)
    assert sorted(f["orig_p"] for f in flows) == [40000, 40001, 40002, 40003]
    assert {f["resp_h"] for f in flows} == {"203.0.113.5"}


def test_fifo_error_with_tshark_engine_does_not_offer_standard_input(tmp_path):
    # (the tshark engine reads files only: no hint it would refuse)
    from kscc_traffic.analyze import _check_source
    from kscc_traffic.errors import CaptureError
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    with pytest.raises(CaptureError, match="not a regular file") as e:
        _check_source(fifo, magic=False)
    assert "standard input" not in str(e.value)
    with pytest.raises(CaptureError, match="not a regular file") as e:
        _check_source(tmp_path / "f", magic=True)
    assert str(e.value).endswith(f"kscc-traffic analyze - < {fifo}")
