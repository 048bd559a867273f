"""The tshark engine (Wireshark's dissectors -> Packets) against the builtin engine: the same flow
table, flow by flow and column by column, on the labelled corpus (../shared/corpus/ksc) and
the bundled samples; its errors are one line with the fix."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, shared_corpus
from kscc_traffic.analyze import analyze_file
from kscc_traffic.errors import CaptureError, EngineError, UnsupportedFormat
from kscc_traffic.rules import load_rules

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None,
                                reason="tshark is not installed (apt-get install tshark)")

RULES = load_rules()
SAMPLES = sorted(p for p in (ROOT / "samples" / "captures").rglob("*.pcap*")
                 if not p.name.endswith(".json"))


def _compare(path: Path) -> None:
    a = analyze_file(path, RULES).flows.sort_values("uid").reset_index(drop=True)
    b = analyze_file(path, RULES, engine="tshark").flows.sort_values("uid").reset_index(drop=True)
    assert list(a["uid"]) == list(b["uid"]), path.name
    for col in a.columns:
        left, right = a[col].tolist(), b[col].tolist()
        bad = [(a.at[i, "uid"], x, y) for i, (x, y) in enumerate(zip(left, right)) if x != y]
        assert not bad, (path.name, col, bad[:3])


def test_corpus_same_flows_both_engines():
    """Every file of ../shared/corpus/ksc: identical flow tables (all columns)."""
    corpus = shared_corpus("ksc")
    files = sorted(p for p in corpus.iterdir() if p.suffix in (".pcap", ".pcapng"))
    assert len(files) >= 7
    for f in files:
        _compare(f)


@pytest.mark.parametrize("path", SAMPLES, ids=[p.name for p in SAMPLES])
def test_samples_same_flows_both_engines(path):
    _compare(path)


def test_missing_and_not_a_capture(tmp_path):
    with pytest.raises(CaptureError, match="no such file"):
        analyze_file(tmp_path / "nope.pcap", RULES, engine="tshark")
    junk = tmp_path / "junk.pcap"
    junk.write_bytes(b"this is not a capture at all" * 10)
    with pytest.raises(UnsupportedFormat, match="junk.pcap"):
        analyze_file(junk, RULES, engine="tshark")


@pytest.mark.parametrize("fmt, what", [("snoop", "a snoop file"), ("netmon2", "Network Monitor 2.x")])
def test_formats_only_wireshark_reads(tmp_path, fmt, what):
    """A snoop file (Check Point fw monitor) or a Network Monitor capture (Windows): the built-in
    reader refuses it in one line saying --engine tshark reads it; the tshark engine gives the
    same flows as the pcap it was converted from, and the same exit status."""
    src = ROOT / "samples" / "captures" / "blocked_agent.pcap"
    conv = tmp_path / f"agent.{fmt}"
    subprocess.run(["editcap", "-F", fmt, str(src), str(conv)], check=True, capture_output=True, timeout=60)
    with pytest.raises(UnsupportedFormat, match=f"{what}.*use --engine tshark"):
        analyze_file(conv, RULES)
    want = analyze_file(src, RULES, engine="tshark").flows
    got = analyze_file(conv, RULES, engine="tshark").flows
    cols = ["orig_h", "orig_p", "resp_h", "resp_p", "conn_state", "history", "verdict", "reason", "detail"]
    assert got[cols].values.tolist() == want[cols].values.tolist() and len(got) == 11
    run = [sys.executable, "-m", "kscc_traffic", "analyze", "-f", "jsonl", str(conv)]
    a = subprocess.run(run, capture_output=True, text=True, timeout=60)
    b = subprocess.run(run + ["--engine", "tshark"], capture_output=True, text=True, timeout=60)
    assert (a.returncode, b.returncode) == (2, 1)
    assert "use --engine tshark" in a.stderr and len(b.stdout.splitlines()) == 11


def test_unknown_engine():
    with pytest.raises(EngineError, match="unknown engine"):
        analyze_file(ROOT / "samples" / "captures" / "blocked_agent.pcap", RULES, engine="wireshark")


def _env_without_tshark(tmp_path: Path) -> dict:
    """PATH with only a folder holding a link to this Python: no tshark, no dumpcap."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "python3").symlink_to(sys.executable)
    env = dict(os.environ)
    env["PATH"] = str(bindir)
    return env


def test_cli_tshark_not_installed(tmp_path):
    """No tshark on PATH: exit 2, one line saying how to install it."""
    env = _env_without_tshark(tmp_path)
    r = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", "--engine", "tshark",
                        str(ROOT / "samples" / "captures" / "blocked_agent.pcap")],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: tshark not found")
    assert "apt-get install tshark" in lines[0]


def test_cli_engine_tshark_exit_codes():
    """analyze --engine tshark: same report and exit status as the builtin engine."""
    f = ROOT / "samples" / "captures" / "blocked_agent.pcap"
    a = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", "-f", "csv", str(f)],
                       capture_output=True, text=True, timeout=60)
    b = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", "-f", "csv", "--engine",
                        "tshark", str(f)], capture_output=True, text=True, timeout=60)
    assert a.returncode == b.returncode == 1
    assert sorted(a.stdout.splitlines()) == sorted(b.stdout.splitlines())


def test_fragments_without_their_first_agree(tmp_path):
    """IP fragments after the first of a TCP segment whose first fragment is not in the capture
    (newcomer 16 N12): one row without ports, its bytes not a TCP segment's start, so nothing
    is said of its protocol and nothing was cut (the builtin engine said 'other' from the middle
    of the segment, the tshark engine that its payload was cut)."""
    from scapy.layers.inet import IP, TCP, fragment
    from scapy.layers.l2 import Ether
    from pcapbuild import pcap_bytes
    seg = IP(src="192.0.2.10", dst="198.51.100.20", id=77) / TCP(sport=50000, dport=23101, flags="PA") / (
        b"\x16\x03\x01" + bytes(2000))
    frags = fragment(seg, fragsize=600)
    recs = [(1.0 + i * 0.001, Ether(src="02:00:00:00:00:10", dst="02:00:00:00:00:01") / f)
            for i, f in enumerate(frags[1:])]
    path = tmp_path / "frags.pcap"
    path.write_bytes(pcap_bytes(recs))
    _compare(path)
    (r,) = analyze_file(path, RULES).flows.to_dict("records")
    assert (r["proto"], r["orig_p"], r["resp_p"], r["orig_pkts"]) == ("tcp", -1, -1, len(frags) - 1)
    assert (r["client_proto"], bool(r["payload_cut"])) == ("", False)


def test_no_ip_packet_is_said_by_both_engines(tmp_path):
    """Frames none of which is IP (ARP only; a link type written wrong in the header): both
    engines say so in the same warning line (the tshark engine said nothing; break-it 14 F8)."""
    from scapy.all import ARP, Ether, wrpcap
    path = tmp_path / "arp_only.pcap"
    wrpcap(str(path), [Ether(src="02:00:00:00:00:01", dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="192.0.2.10", pdst=f"192.0.2.{k}")
                       for k in range(1, 6)])
    want = ("arp_only.pcap: no IP packet among its 5 frames (5 non-IP): nothing to analyse (a capture on the "
            "wrong interface, or of another link type?)")
    for engine in ("builtin", "tshark"):
        a = analyze_file(path, RULES, engine=engine)
        assert len(a.flows) == 0 and want in a.warnings, (engine, a.warnings)


def test_a_clock_step_back_is_said_by_both_engines(tmp_path):
    """A record stamped 30 s before the one before it (the host's clock stepped back): the same
    warning line with both engines (the tshark engine said nothing; break-it 14 F7)."""
    from pcapbuild import pcap_bytes, udp
    recs = [udp(("192.0.2.10", 40000 + k), ("203.0.113.53", 53), b"q" * 30, t=t)
            for k, t in enumerate((1000.0, 1001.0, 971.0, 972.0))]
    path = tmp_path / "step.pcap"
    path.write_bytes(pcap_bytes(recs))
    for engine in ("builtin", "tshark"):
        lines = [w for w in analyze_file(path, RULES, engine=engine).warnings if "go back" in w]
        assert len(lines) == 1 and lines[0].startswith("step.pcap: the timestamps go back by more than 0.5 s at 1 place "), \
            (engine, lines)
