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


# --- newcomer 35 F2: pieces of one capture with names no file-set pattern knows ----------------

from kscc_traffic.capture.filesets import PIECE_GAP_NS, unjoined_pieces  # noqa: E402

T0 = 1_764_700_000


def _handshake_split(tmp_path: Path, gap: float, names=("x-1.pcap", "x-2.pcap")):
    """A TLS-port connection whose SYN ends the first file and whose SYN-ACK starts the second."""
    e = dict(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    r = dict(src="02:00:00:00:00:02", dst="02:00:00:00:00:01")
    c2s = IP(src="192.0.2.10", dst="203.0.113.5")
    s2c = IP(src="203.0.113.5", dst="192.0.2.10")
    first = [Ether(**e) / c2s / TCP(sport=40000, dport=23101, flags="S", seq=100)]
    second = [Ether(**r) / s2c / TCP(sport=23101, dport=40000, flags="SA", seq=900, ack=101),
              Ether(**e) / c2s / TCP(sport=40000, dport=23101, flags="A", seq=101, ack=901),
              Ether(**e) / c2s / TCP(sport=40000, dport=23101, flags="FA", seq=101, ack=901),
              Ether(**r) / s2c / TCP(sport=23101, dport=40000, flags="FA", seq=901, ack=102),
              Ether(**e) / c2s / TCP(sport=40000, dport=23101, flags="A", seq=102, ack=902)]
    first[0].time = T0
    for i, p in enumerate(second):
        p.time = T0 + gap + 0.01 * i
    wrpcap(str(tmp_path / names[0]), first)
    wrpcap(str(tmp_path / names[1]), second)


def test_adjacent_pieces_with_unknown_names_are_warned_about(tmp_path):
    """Before: the SYN alone was judged blocked/no_answer, and nothing pointed to --file-set join."""
    _handshake_split(tmp_path, 0.2)
    p = _run(["analyze", "x-1.pcap", "x-2.pcap", "-f", "jsonl"], tmp_path)
    assert ("Warning: x-1.pcap and x-2.pcap look like pieces of one capture (each starts at most "
            "0.200 s after the one before ends)") in p.stderr
    assert "give --file-set join to read them as one capture" in p.stderr
    joined = _run(["analyze", "x-1.pcap", "x-2.pcap", "-f", "jsonl", "--file-set", "join"], tmp_path)
    assert "look like pieces" not in joined.stderr
    assert '"conn_state":"SF"' in joined.stdout.replace(" ", "")
    apart = _run(["analyze", "x-1.pcap", "x-2.pcap", "--file-set", "separate"], tmp_path)
    assert "look like pieces" not in apart.stderr


def test_captures_far_apart_or_overlapping_are_not_pieces(tmp_path):
    _handshake_split(tmp_path, 5.0)
    p = _run(["analyze", "x-1.pcap", "x-2.pcap"], tmp_path)
    assert "look like pieces" not in p.stderr


def test_unjoined_pieces_chains_and_gaps():
    s = 1_000_000_000
    spans = [("c", 20 * s, 30 * s), ("a", 0, None), ("b", 10 * s, 19 * s + 500_000_000),
             ("z", 10 * s, 40 * s), ("d", 30 * s + PIECE_GAP_NS, 31 * s), ("e", 40 * s, 50 * s)]
    out = unjoined_pieces(spans)
    tail = ("but are analysed one by one: connections across a cut show as partial or blocked; give "
            "--file-set join to read them as one capture")
    assert out == ["the 3 captures b .. d look like pieces of one capture (each starts at most 1.000 s "
                   "after the one before ends), " + tail,
                   "z and e look like pieces of one capture (each starts at most 0.000 s after the one "
                   "before ends), " + tail]
    many = [(f"f{i}", i * 10 * s, i * 10 * s + 9 * s + 500_000_000) for i in range(5000)]
    assert unjoined_pieces(many[::-1]) == [f"the 5000 captures f0 .. f4999 look like pieces of one capture "
                                           f"(each starts at most 0.500 s after the one before ends), " + tail]
    assert unjoined_pieces([("a", 0, 5), ("b", 3, 9)]) == []          # overlapping: two hosts at once
    assert unjoined_pieces([("a", 5, 5)]) == []


def test_steps_back_name_interfaces_written_in_batches(tmp_path):
    """Newcomer 35 F7: a two-port TAP's capture written port by port in batches goes back in time
    between batches; the warning names that cause besides a clock step."""
    e = dict(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    pkts = []
    for i, t in enumerate([10.0, 11.0, 12.0, 10.5, 11.5, 12.5]):      # port A's batch, then port B's
        p = Ether(**e) / IP(src="192.0.2.10", dst="203.0.113.5") / TCP(sport=40000 + i, dport=23101, flags="S")
        p.time = T0 + t
        pkts.append(p)
    wrpcap(str(tmp_path / "tap.pcap"), pkts)
    p = _run(["analyze", "tap.pcap"], tmp_path)
    assert ("the timestamps go back by more than 0.5 s at 1 place (the capturing host's clock stepped back, "
            "a damaged timestamp, captures appended one after the other, or several interfaces or TAP ports "
            "written in batches, each in its own time order)") in p.stderr
