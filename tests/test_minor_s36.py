"""Session 36 minor findings of newcomer 35 (F6b, F7): the hint of an unreadable capture among
several, and link types that carry no IP named as such instead of pointing to the tshark engine."""
import os
import subprocess
import sys
from pathlib import Path

from scapy.all import IP, TCP, Ether, wrpcap

from kscc_traffic.capture.decode import NON_IP_LINKTYPES

ROOT = Path(__file__).resolve().parents[1]


def _run(args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "kscc_traffic", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def _capture(path: Path) -> None:
    wrpcap(str(path), [Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
                       / IP(src="192.0.2.10", dst="203.0.113.5") / TCP(sport=40000, dport=23101, flags="S")])


def test_an_unreadable_file_among_several_names_lenient(tmp_path):
    """`analyze *` in a folder holding notes.txt: the Error: line says how to read the others."""
    _capture(tmp_path / "a.pcap")
    (tmp_path / "notes.txt").write_text("hello\n")
    p = _run(["analyze", "a.pcap", "notes.txt"], tmp_path)
    assert p.returncode == 2
    assert p.stderr.startswith("Error: notes.txt: not a pcap or pcapng capture")
    assert "--lenient skips what cannot be read and analyses the others" in p.stderr
    p = _run(["analyze", "--lenient", "a.pcap", "notes.txt"], tmp_path)
    assert p.returncode == 1, p.stderr             # the SYN without answer: blocked
    assert "Warning: skipped notes.txt" in p.stderr
    assert "--lenient skips" not in p.stderr


def test_one_unreadable_file_alone_has_no_hint(tmp_path):
    (tmp_path / "notes.txt").write_text("hello\n")
    p = _run(["analyze", "notes.txt"], tmp_path)
    assert p.returncode == 2
    assert "--lenient" not in p.stderr


def test_usb_frames_are_named_and_not_sent_to_tshark(tmp_path):
    """A USB (220) capture beside an Ethernet one: no IP there, so no tshark-engine hint."""
    import struct
    import time

    usb = tmp_path / "usb.pcap"
    hdr = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 220)
    rec = b"".join(struct.pack("<IIII", int(time.time()), i, 64, 64) + b"\x80" * 64 for i in range(3))
    usb.write_bytes(hdr + rec)
    p = _run(["analyze", "usb.pcap"], tmp_path)
    assert "decode: 3 frames of link type 220 (USB: no IP traffic) skipped" in p.stderr
    assert "--engine tshark" not in p.stderr
    assert NON_IP_LINKTYPES[201] == "Bluetooth" and NON_IP_LINKTYPES[227] == "CAN bus"
    assert 1 not in NON_IP_LINKTYPES and 147 not in NON_IP_LINKTYPES   # (USER0 may carry IP)
