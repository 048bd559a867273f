"""A valid capture with no packet at all (a pcap header only, a pcapng without packet blocks:
what tcpdump writes when its filter matched nothing) gives one ``Warning:`` line (breakit6: it
gave "0 flows", exit 0, and no word); the exit status stays 0, as for a capture of only non-IP
frames. A capture damaged before its first packet keeps its damage warning only."""
from __future__ import annotations

import shutil
import struct
import subprocess
import sys

import pytest

from conftest import ROOT
from pcapbuild import pcap_bytes

SAMPLES = ROOT / "samples" / "captures"
HINT = "nothing to analyse (a capture filter that matched nothing, or a capture stopped at once?)"


def _run(*args):
    return subprocess.run([sys.executable, "-m", "kscc_traffic", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


def _block(btype: int, body: bytes) -> bytes:
    return struct.pack("<II", btype, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))


def _pcapng_without_packets() -> bytes:
    return (_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))   # Section Header Block
            + _block(1, struct.pack("<HHI", 1, 0, 65535)))                    # Interface Description


@pytest.fixture
def empties(tmp_path):
    a = tmp_path / "header_only.pcap"
    a.write_bytes(pcap_bytes([]))
    b = tmp_path / "no_blocks.pcapng"
    b.write_bytes(_pcapng_without_packets())
    return a, b


@pytest.mark.parametrize("engine", ["builtin", "tshark"])
@pytest.mark.parametrize("which", [0, 1])
def test_no_packets_warns_once_and_exits_0(empties, engine, which):
    if engine == "tshark" and not shutil.which("tshark"):
        pytest.skip("tshark not installed")
    cap = empties[which]
    p = _run("analyze", cap, "--engine", engine)
    assert p.returncode == 0, p.stderr
    assert "0 flows" in p.stdout
    assert p.stderr.splitlines() == [f"Warning: {cap.name}: no packets in the capture: {HINT}"]
    p = _run("analyze", cap, "--engine", engine, "-f", "jsonl")
    assert (p.returncode, p.stdout) == (0, "")
    assert p.stderr.count("no packets in the capture") == 1


def test_with_other_captures_the_warning_names_the_empty_one(empties):
    a, _ = empties
    p = _run("analyze", a, SAMPLES / "blocked_agent.pcap", "-f", "jsonl")
    assert p.returncode == 1                                 # the other capture's blocked flows
    assert [ln for ln in p.stderr.splitlines() if "no packets" in ln] == [
        f"Warning: {a.name}: no packets in the capture: {HINT}"]


def test_html_report_warns_once(empties, tmp_path):
    a, _ = empties
    p = _run("report", a, "--html", tmp_path / "r.html")
    assert p.returncode == 0, p.stderr
    assert p.stderr.splitlines() == [f"Warning: {a.name}: no packets in the capture: {HINT}",
                                     f"Wrote {tmp_path / 'r.html'} (0 flows: 0 blocked, 0 unexpected)"]


def test_api_stats_carry_the_warning(empties):
    from kscc_traffic.analyze import analyze_file
    from kscc_traffic.rules import load_rules
    a, b = empties
    for cap in (a, b):
        res = analyze_file(cap, load_rules())
        assert len(res.flows) == 0
        assert res.warnings == [f"{cap.name}: no packets in the capture: {HINT}"]


def test_damaged_before_the_first_packet_only_says_the_damage(tmp_path):
    cap = tmp_path / "cut.pcap"
    cap.write_bytes(pcap_bytes([]) + b"\x01\x02\x03\x04\x05")
    p = _run("analyze", cap)
    # (nothing readable: unusable input, one Error line, as tshark refuses it; newcomer 18 #3)
    assert p.returncode == 2
    assert "no packets" not in p.stderr
    assert p.stderr == f"Error: {cap}: no packet could be read: file cut mid-record at offset 24: 5 of 16 " \
                       "record-header bytes present; 1 record skipped\n"


def test_non_ip_frames_only_keep_their_own_warning(tmp_path):
    arp = (b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x06"
           + bytes.fromhex("0001080006040001020000000001c0000202000000000000c0000201"))
    cap = tmp_path / "arp.pcap"
    cap.write_bytes(pcap_bytes([(1000.0, arp)]))
    p = _run("analyze", cap)
    assert p.returncode == 0
    assert "no packets" not in p.stderr and "no IP packet among its 1 frame (1 non-IP)" in p.stderr


def test_packets_cut_without_saying_so_are_warned_about(tmp_path):
    """Frames cut to 128 bytes whose original length says 128 too (pktmon's default): the IP
    length says more was sent. One warning line with the count (the snaplen warning cannot see
    them); none when the frames say they were cut (that warning covers them) or are whole
    (break-it 14 F10)."""
    from kscc_traffic.analyze import analyze_file
    from kscc_traffic.rules import load_rules
    from pcapbuild import eth, tcp_session
    recs = tcp_session(("192.0.2.10", 50000), ("203.0.113.10", 23101), c_data=b"q" * 400, s_data=b"a" * 900)
    raw = [(t, bytes(p)) for t, p in recs]
    cut = tmp_path / "cut128.pcap"
    cut.write_bytes(pcap_bytes([(t, b[:128]) for t, b in raw]))
    n = sum(len(b) > 128 for _, b in raw)
    a = analyze_file(cut, load_rules())
    lines = [w for w in a.warnings if "captured shorter than" in w]
    assert len(lines) == 1 and lines[0].startswith(f"cut128.pcap: {n} IP packets captured shorter than their IP length")
    whole = tmp_path / "whole.pcap"
    whole.write_bytes(pcap_bytes(raw))
    assert not [w for w in analyze_file(whole, load_rules()).warnings if "captured shorter" in w]
