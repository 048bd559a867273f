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
from kscc_traffic.cli import UNEXPECTED_ONLY_LINE
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


_ROW_COLS = ("frame", "proto", "sport", "dport", "icmp_type", "icmp_code", "ip_len", "payload_len",
             "pl_cap", "l4_sum", "tcp_win")


def _rows(path: Path) -> tuple[list, list]:
    """The packet rows of both engines (builtin, tshark): tuples of :data:`_ROW_COLS`, sorted."""
    from kscc_traffic.capture.decode import decode
    from kscc_traffic.capture.files import iter_frames
    from kscc_traffic.engines.tshark import read_packets

    def of(p):
        return [tuple(int(p.cols[c][i]) for c in _ROW_COLS) for i in range(len(p))]
    a = [r for fr in iter_frames(path) for r in of(decode(fr))]
    return sorted(a), sorted(of(read_packets(path)))


def _short_lines(path: Path, engine: str) -> list[str]:
    return [w for w in analyze_file(path, RULES, engine=engine).warnings if "captured shorter than" in w]


def _icmp_frag_packets():
    """Whole packets: ICMP echo (v4, v6), NDP, ICMP errors quoting a SYN (v4, v6), an ESP
    packet; and UDP datagrams to 15001 in fragments of which only the first (v4, v6: ``first``)
    or only the later ones (two other datagrams: ``rest``) are kept."""
    from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
    from scapy.layers.inet6 import (ICMPv6DestUnreach, ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6ND_NS,
                                    ICMPv6NDOptSrcLLAddr, IPv6, IPv6ExtHdrFragment, fragment6)
    from scapy.layers.l2 import Ether
    e = Ether(src="02:00:00:00:00:10", dst="02:00:00:00:00:01")
    syn = IP(src="192.0.2.10", dst="203.0.113.13") / TCP(sport=50000, dport=23101, flags="S")
    syn6 = IPv6(src="2001:db8:1::10", dst="2001:db8:2::13") / TCP(sport=50000, dport=23101, flags="S")
    pkts = [e / IP(src="192.0.2.10", dst="203.0.113.10") / ICMP(type=8) / (b"p" * 56),
            e / IP(src="203.0.113.10", dst="192.0.2.10") / ICMP(type=0) / (b"p" * 56),
            e / IPv6(src="2001:db8:1::10", dst="2001:db8:2::10") / ICMPv6EchoRequest(data=b"p" * 56),
            e / IPv6(src="2001:db8:2::10", dst="2001:db8:1::10") / ICMPv6EchoReply(data=b"p" * 56),
            e / IPv6(src="2001:db8:1::10", dst="ff02::1:ff00:1") / ICMPv6ND_NS(tgt="2001:db8:1::1")
            / ICMPv6NDOptSrcLLAddr(lladdr="02:00:00:00:00:10"),
            e / IP(src="192.0.2.1", dst="192.0.2.10") / ICMP(type=3, code=13) / bytes(syn),
            e / IPv6(src="2001:db8:1::1", dst="2001:db8:1::10") / ICMPv6DestUnreach(code=1) / bytes(syn6),
            e / IP(src="192.0.2.10", dst="198.51.100.1", proto=50) / (b"\0\0\0\x01\0\0\0\x01" + b"e" * 80)]
    big = UDP(sport=15001, dport=15001) / (b"m" * 3000)

    def v4(i):
        return fragment(IP(src="192.0.2.50", dst="239.255.0.1", id=i) / big, fragsize=1000)

    def v6(i):
        return fragment6(IPv6(src="2001:db8:1::50", dst="ff05::1:3") / IPv6ExtHdrFragment(id=i) / big, 1280)
    first = [e / v4(7)[0], e / v6(9)[0]]
    rest = [e / f for f in v4(8)[1:] + v6(10)[1:]]      # (other datagrams: never completed)
    return pkts, first, rest


def test_icmp_and_fragments_are_not_said_cut(tmp_path):
    """Whole ICMP/ICMPv6 packets (echo, NDP, errors), ESP, and IP fragments never reassembled:
    no 'captured shorter than their IP length' warning with either engine (the tshark engine
    gave no bytes for their payloads, so every one was counted: break-it 15 F1), and the same
    packet rows (payload_len, pl_cap…) and flows as the builtin decoder."""
    pkts, first, rest = _icmp_frag_packets()
    path = tmp_path / "whole.pcap"
    from pcapbuild import pcap_bytes
    path.write_bytes(pcap_bytes([(1000.0 + 0.01 * k, p) for k, p in enumerate(pkts + first + rest)]))
    a, b = _rows(path)
    assert a == b
    assert len(a) == len(pkts) + len(first) + len(rest)
    assert _short_lines(path, "builtin") == _short_lines(path, "tshark") == []
    _compare(path)
    # (the bundled sample's two ICMP unreachables)
    assert _short_lines(ROOT / "samples" / "captures" / "blocked_agent.pcap", "tshark") == []


def test_packets_cut_without_saying_so_counted_alike(tmp_path):
    """The same packets cut to 70 bytes whose original length says 70 too (pktmon-like): both
    engines count the same packets shorter than their IP length (the tshark engine took
    Wireshark's TCP length, which stops at the frame's end, and counted no TCP segment)."""
    from pcapbuild import pcap_bytes, tcp_session
    pkts, first, rest = _icmp_frag_packets()
    sess = [p for _, p in tcp_session(("192.0.2.10", 50000), ("203.0.113.10", 23101),
                                      c_data=b"q" * 400, s_data=b"a" * 900)]
    allp = pkts + first + rest + sess
    path = tmp_path / "cut70.pcap"
    path.write_bytes(pcap_bytes([(1000.0 + 0.01 * k, bytes(p)[:70]) for k, p in enumerate(allp)]))
    a, b = _rows(path)
    assert a == b
    n = sum(len(bytes(p)) > 70 for p in pkts + sess)   # (fragments never reassembled: no payload)
    want = [f"cut70.pcap: {n} IP packets captured shorter than their IP length says, though the frames "
            "claim to be whole"]
    for engine in ("builtin", "tshark"):
        assert [w[:len(want[0])] for w in _short_lines(path, engine)] == want, engine


def test_ipv6_fragments_never_reassembled_as_the_builtin(tmp_path):
    """IPv6 fragments whose datagram is never completed: the protocol is the fragment header's
    next header (UDP), not 44, and the first fragment gives the ports (break-it 15 F10); the
    later ones alone make the same flow without ports as with the builtin engine, with the same
    detail. Both engines say the fragments could not be reassembled."""
    from pcapbuild import pcap_bytes
    _, first, rest = _icmp_frag_packets()
    for name, pk in (("first.pcap", first), ("rest.pcap", rest)):
        path = tmp_path / name
        path.write_bytes(pcap_bytes([(1000.0 + 0.01 * k, p) for k, p in enumerate(pk)]))
        _compare(path)
        flows = analyze_file(path, RULES, engine="tshark").flows
        assert sorted(flows["proto"]) == ["udp", "udp"]
        ports = sorted(zip(flows["orig_p"], flows["resp_p"]))
        assert ports == ([(15001, 15001)] * 2 if name == "first.pcap" else [(-1, -1)] * 2)
        if name == "rest.pcap":
            assert all(d.startswith("this flow's packets are later IP fragments of UDP datagrams never captured "
                                    "whole") for d in flows["detail"])
        want = f"{name}: decode: {len(pk)} IP fragments could not be reassembled (kept as one row each"
        lines = [[w for w in analyze_file(path, RULES, engine=engine).warnings if w.startswith(want)]
                 for engine in ("builtin", "tshark")]
        assert len(lines[0]) == 1 and lines[0] == lines[1]


@pytest.mark.parametrize("kind", ["json", "png", "elf"])
def test_files_tshark_opens_that_are_no_capture(tmp_path, kind):
    """A JSON document, an image or a program, which tshark opens as one frame of the whole
    file: refused in one Error line, exit 2, as the builtin engine does (the tshark engine said
    'no IP packet among its 1 frame' and exited 0: break-it 15 F2)."""
    import struct
    import zlib
    if kind == "json":
        data, shown = b'{"a": 1}\n', "a JSON document"
    elif kind == "png":
        def chunk(t, d):
            return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
        data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(b"\0\0")) + chunk(b"IEND", b""))
        shown = "a file of type png"
    else:
        data, shown = Path(sys.executable).resolve().read_bytes(), "a file of type elf"
        if not data.startswith(b"\x7fELF"):
            pytest.skip("the Python binary is not ELF")
    path = tmp_path / f"file.{kind}"
    path.write_bytes(data)
    # (the path as given, as every Error line names a capture: newcomer 26)
    want = f"{path}: not a packet capture: tshark reads it as {shown} (its content as 1 frame, no packet)"
    with pytest.raises(UnsupportedFormat) as e:
        analyze_file(path, RULES, engine="tshark")
    assert str(e.value) == want
    good = ROOT / "samples" / "captures" / "blocked_agent.pcap"
    run = [sys.executable, "-m", "kscc_traffic", "analyze", "-f", "jsonl", "--engine", "tshark"]
    r = subprocess.run(run + [str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip().splitlines() == [f"Error: {path}: not a packet capture: tshark reads it as {shown} "
                                             "(its content as 1 frame, no packet)"]
    # beside a capture: refused before any output, as the builtin engine refuses it; --lenient skips it
    r = subprocess.run(run + [str(good), str(path)], capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stdout) == (2, "")
    r = subprocess.run(run + ["--lenient", str(good), str(path)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and len(r.stdout.splitlines()) == 11


def test_timestamps_beyond_int64_said_by_both_engines(tmp_path):
    """A pcapng interface whose if_tsoffset puts every time beyond the range kept (years 1823-2116):
    the same warning line with both engines (break-it 15 F11)."""
    import struct
    from pcapbuild import udp

    def block(kind, body):
        body += b"\0" * (-len(body) % 4)
        return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)
    opts = struct.pack("<HHq", 14, 8, 1 << 62) + struct.pack("<HH", 0, 0)     # if_tsoffset 2^62 s
    out = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)),
           block(1, struct.pack("<HHI", 1, 0, 0) + opts)]
    for k in range(3):
        d = bytes(udp(("192.0.2.10", 40000 + k), ("203.0.113.53", 53), b"q" * 30)[1])
        out.append(block(6, struct.pack("<IIIII", 0, 0, 1000 + k, len(d), len(d)) + d))
    path = tmp_path / "tsoff.pcapng"
    path.write_bytes(b"".join(out))
    want = "tsoff.pcapng: 3 timestamps beyond the years 1823-2116 that times are kept in (moved inside it, keeping their order and the time between them)"
    for engine in ("builtin", "tshark"):
        assert want in analyze_file(path, RULES, engine=engine).warnings, engine


def _ring_member(t0: int, port: int) -> bytes:
    """A pcapng (SHB with a 120-byte comment, IDB, EPBs) of one answered TCP connection."""
    import struct
    from pcapbuild import tcp_session

    def block(kind: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)
    comment = b"c" * 120
    shb = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
                + struct.pack("<HH", 1, len(comment)) + comment + b"\0\0\0\0")
    out = [shb, block(1, struct.pack("<HHI", 1, 0, 0))]
    for t, pkt in tcp_session(("192.0.2.10", port), ("203.0.113.10", 13000), t0=t0, c_data=b"hi", s_data=b"yo"):
        d, us = bytes(pkt), round(t * 1e6)
        out.append(block(6, struct.pack("<IIIII", 0, us >> 32, us & 0xFFFFFFFF, len(d), len(d)) + d))
    return b"".join(out)


@pytest.mark.parametrize("keep", [8, 12, 30, 100, 155])
def test_a_pcapng_cut_inside_its_section_header_same_error_both_engines(tmp_path, keep):
    """(newcomer 19 F3) A pcapng cut inside its Section Header Block (156 bytes here) is a
    one-frame "file-pcapng" to tshark (or "not a capture file"): the tshark engine gives the
    built-in reader's error, by the API and by the CLI (exit 2, one line)."""
    from kscc_traffic.errors import TruncatedCapture
    p = tmp_path / "cut.pcapng"
    p.write_bytes(_ring_member(1_764_500_000, 40000)[:keep])
    errors = []
    for engine in ("builtin", "tshark"):
        with pytest.raises(TruncatedCapture) as e:
            analyze_file(p, RULES, engine=engine)
        errors.append(str(e.value))
    assert errors[0] == errors[1]
    # (named by the path as given: absolute here, relative to the command line below; newcomer 26)
    assert errors[0].startswith(f"{p}: file ends inside the pcapng Section Header Block (")
    assert (f"({keep} of at least 28 bytes)" if keep < 28 else f"{keep} of 156 bytes of the Section Header Block") \
        in errors[0]
    r = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", "--engine", "tshark", "cut.pcapng"],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [f"Error: cut.pcapng{errors[0][len(str(p)):]}"]


def test_a_ring_member_cut_inside_its_header_is_skipped_alike(tmp_path):
    """The last file of a dumpcap ring cut to 30 bytes (the host crashed as dumpcap opened it):
    both engines skip it with the same warning and name the set by its readable files."""
    d = tmp_path / "ring"
    d.mkdir()
    for i in range(3):
        data = _ring_member(1_764_500_000 + 10 * i, 40000 + i)
        (d / f"x_{i + 1:05d}_20251130100{i}00.pcapng").write_bytes(data if i < 2 else data[:30])
    out = {}
    for engine in ("builtin", "tshark"):
        r = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", "--engine", engine, "-f", "csv",
                            "ring"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
        out[engine] = r
    b, t = out["builtin"], out["tshark"]
    assert b.returncode == t.returncode == 1      # (cleartext on 13000: not_tls)
    assert b.stderr == t.stderr
    assert t.stderr.strip().splitlines() == [
        "Warning: skipped ring/x_00003_20251130100200.pcapng: file ends inside the pcapng Section Header "
        "Block (file cut mid-block at offset 0: 30 of 156 bytes of the Section Header Block present) (a file "
        "of ring/x_00001_20251130100000.pcapng .. x_00003_20251130100200.pcapng; its other files are read)",
        f"Note: {UNEXPECTED_ONLY_LINE}"]      # (the not_tls flow alone makes the status 1)
    rows_b, rows_t = sorted(b.stdout.splitlines()[1:]), sorted(t.stdout.splitlines()[1:])
    assert rows_b == rows_t and len(rows_t) == 2
    assert all("x_00001_20251130100000.pcapng .. x_00002_20251130100100.pcapng" in row for row in rows_t)


def test_time_exceeded_and_parameter_problem_quotes_agree(tmp_path):
    """ICMP time exceeded (11/0) and parameter problem (12/0), ICMPv6 time exceeded (3/0) and
    parameter problem (4/1), each quoting the IP header + 8 bytes of unanswered SYNs: the tshark
    engine attaches them to the flow they quote, as the builtin engine does ('routing loop',
    'a router drops what it cannot parse'), instead of 'SYN sent N times, no answer' plus an
    ICMP flow (it rebuilt quotes of ICMP 3 / ICMPv6 1 only: break-it 18 F4)."""
    from scapy.layers.inet import ICMP, IP, TCP
    from scapy.layers.inet6 import ICMPv6ParamProblem, ICMPv6TimeExceeded, IPv6
    from scapy.layers.l2 import Ether
    from pcapbuild import pcap_bytes
    e = Ether(src="02:00:00:00:00:10", dst="02:00:00:00:00:01")
    recs, t = [], 1000.0
    cases = [(4, 50020, ICMP(type=11, code=0), "TTL exceeded in transit (11/0) from 198.51.100.7"),
             (4, 50021, ICMP(type=12, code=0), "parameter problem (12/0) from 198.51.100.7"),
             (6, 50030, ICMPv6TimeExceeded(code=0), "hop limit exceeded in transit (3/0) from 2001:db8:ff::7"),
             (6, 50031, ICMPv6ParamProblem(code=1, ptr=40), "parameter problem (4/1) from 2001:db8:ff::7")]
    for ver, sport, err, _ in cases:
        if ver == 4:
            syn = IP(src="192.0.2.10", dst="203.0.113.10") / TCP(sport=sport, dport=23101, flags="S", seq=7)
            back = IP(src="198.51.100.7", dst="192.0.2.10") / err / bytes(syn)[:28]
        else:
            syn = IPv6(src="2001:db8:1::10", dst="2001:db8:2::10") / TCP(sport=sport, dport=23101, flags="S", seq=7)
            back = IPv6(src="2001:db8:ff::7", dst="2001:db8:1::10") / err / bytes(syn)[:48]
        for k in range(3):
            recs += [(t, e / syn), (t + 0.01, e / back)]
            t += 1.0
    path = tmp_path / "ttl.pcap"
    path.write_bytes(pcap_bytes(recs))
    _compare(path)
    a, b = _rows(path)
    assert a == b
    flows = analyze_file(path, RULES, engine="tshark").flows.sort_values("orig_p")
    assert flows["proto"].tolist() == ["tcp"] * 4
    assert flows["icmp_unreachable"].tolist() == [c[3] for c in cases]
    assert set(flows["reason"]) == {"icmp_unreachable"}
    assert "a routing loop" in flows["detail"].iloc[0]


def _commented_pcapng(recs, comments: dict[int, list[bytes]]) -> bytes:
    """A pcapng (µs times) of ``recs`` ((ts, packet or bytes)); EPB number k carries the
    ``opt_comment`` options ``comments[k]``."""
    import struct

    def block(kind: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)

    def opt(code: int, v: bytes) -> bytes:
        return struct.pack("<HH", code, len(v)) + v + b"\0" * (-len(v) % 4)
    out = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)), block(1, struct.pack("<HHI", 1, 0, 0))]
    for k, (t, pkt) in enumerate(recs):
        d, us = bytes(pkt), round(t * 1e6)
        d_opts = b"".join(opt(1, c) for c in comments.get(k, [])) + (struct.pack("<HH", 0, 0) if k in comments else b"")
        out.append(block(6, struct.pack("<IIIII", 0, us >> 32, us & 0xFFFFFFFF, len(d), len(d))
                         + d + b"\0" * (-len(d) % 4) + d_opts))
    return b"".join(out)


def test_packet_comments_are_not_expert_info(tmp_path):
    """pcapng packet comments reading like Wireshark's expert message 'IPv4 total length exceeds
    packet length (N bytes)' (also among other pieces after a comma): the tshark engine takes
    no bytes, no cut payload and no 'captured shorter' warning from them (Wireshark lists
    comments among its expert messages; the engine read them as the IP layer's own: break-it 18
    F5). A packet really shorter than its IP length, commented with the very message, is still
    counted once, as with the builtin engine."""
    from pcapbuild import tcp_session
    msg = b"IPv4 total length exceeds packet length (20 bytes)"
    recs = tcp_session(("192.0.2.10", 50000), ("203.0.113.10", 23101), c_data=b"\x16\x03\x01" + bytes(60))
    # (0 SYN, 1 SYN-ACK, 2 ACK, 3 client data, 4 client FIN, 5 server FIN, 6 ACK)
    path = tmp_path / "spoof.pcapng"
    path.write_bytes(_commented_pcapng(recs, {5: [msg], 3: [b"note," + msg, msg]}))
    _compare(path)
    (r,) = analyze_file(path, RULES, engine="tshark").flows.to_dict("records")
    assert (r["orig_bytes"], r["resp_bytes"], bool(r["payload_cut"]), r["history"]) == (63, 0, False, "ShADFf")
    for engine in ("builtin", "tshark"):
        assert _short_lines(path, engine) == [], engine
    # the client's data packet really cut 10 bytes short of its IP length, with the same comment
    cut = list(recs)
    cut[3] = (cut[3][0], bytes(cut[3][1])[:-10])
    path = tmp_path / "cut.pcapng"
    path.write_bytes(_commented_pcapng(cut, {3: [b"IPv4 total length exceeds packet length (93 bytes)", msg]}))
    _compare(path)
    a, b = _rows(path)
    assert a == b
    for engine in ("builtin", "tshark"):
        (w,) = _short_lines(path, engine)
        assert w.startswith("cut.pcapng: 1 IP packet captured shorter than its IP length says"), (engine, w)


def test_picosecond_interface_times_as_the_builtin_reader(tmp_path):
    """A pcapng interface with if_tsresol 10^-12 (picoseconds: hardware capture cards) and an
    if_tsoffset: tshark 4.0 misreads the times (break-it 18 F6: times off by tens of ms, the
    history reordered). The tshark engine's flows have the built-in reader's times; when tshark
    gave other times, one warning line says so and that the built-in reader's are used."""
    import struct
    from pcapbuild import tcp_session

    def block(kind: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)
    off = 1772442000
    opts = struct.pack("<HH", 9, 1) + b"\x0c\0\0\0" + struct.pack("<HHq", 14, 8, off) + struct.pack("<HH", 0, 0)
    out = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)), block(1, struct.pack("<HHI", 1, 0, 0) + opts)]
    recs = tcp_session(("192.0.2.10", 50000), ("203.0.113.10", 13000), t0=0.05, c_data=b"q" * 300,
                       s_data=b"a" * 900)
    for t, pkt in recs:
        d, raw = bytes(pkt), round(t * 1e6) * 10**6        # (ps)
        out.append(block(6, struct.pack("<IIIII", 0, raw >> 32, raw & 0xFFFFFFFF, len(d), len(d)) + d))
    path = tmp_path / "ps.pcapng"
    path.write_bytes(b"".join(out))
    _compare(path)
    a = analyze_file(path, RULES, engine="tshark")
    (r,) = a.flows.to_dict("records")
    assert r["ts_ns"] == (off * 10**9 + 50_000_000) and r["history"] == "ShADdFf"
    # (to the server's FIN: the client's last ACK after both FINs does not count, as in Zeek)
    assert abs(r["duration"] - (recs[-2][0] - recs[0][0])) < 1e-9
    shown = subprocess.run(["tshark", "-r", str(path), "-T", "fields", "-e", "frame.time_epoch"],
                           capture_output=True, text=True, timeout=60).stdout.split()
    wrong = sum(abs(float(x) - (off + t)) > 1e-6 for x, (t, _) in zip(shown, recs))
    lines = [w for w in a.warnings if "other times than" in w]
    if wrong:
        assert lines == [f"ps.pcapng: tshark gives {wrong} of the {len(recs)} packets other times than the "
                         f"file's interface timestamps say (by up to {lines[0].split('by up to ')[1].split(' s;')[0]} s; "
                         "tshark 4.0 misreads a pcapng if_tsresol finer than a nanosecond): the built-in "
                         "reader's times are used"]
    else:
        assert lines == []


def test_ipv4_header_length_too_large_is_malformed_in_both_engines(tmp_path):
    """(break-it 18 F7) The client's data packet with IHL 15 and no option (its TCP header and
    payload read as options), checksum right: no phantom TCP flow on made-up ports (it was
    'unexpected/undocumented_port', exit 1), the packet skipped as malformed with the same
    warning line by both engines; the real connection keeps its other packets."""
    from conftest import inet_checksum
    from pcapbuild import pcap_bytes, tcp_session
    recs = tcp_session(("192.0.2.10", 54103), ("203.0.113.10", 23101), c_data=b"\x16\x03\x01" + bytes(514),
                       s_data=b"a" * 900)
    raw = bytearray(bytes(recs[3][1]))
    raw[14] = 0x4F
    raw[24:26] = b"\0\0"
    raw[24:26] = inet_checksum(bytes(raw[14:34])).to_bytes(2, "big")
    recs[3] = (recs[3][0], bytes(raw))
    path = tmp_path / "ihl15.pcap"
    path.write_bytes(pcap_bytes(recs))
    _compare(path)
    want = ("ihl15.pcap: decode: 1 IPv4 packet whose header options do not parse (an option length below 2 "
            "or past the header length: a damaged header length or options; receivers drop such packets) "
            "skipped as malformed: what follows the header cannot be located")
    for engine in ("builtin", "tshark"):
        a = analyze_file(path, RULES, engine=engine)
        (r,) = a.flows.to_dict("records")
        assert (r["orig_p"], r["resp_p"], r["orig_pkts"], r["resp_pkts"]) == (54103, 23101, 4, 3), engine
        assert want in a.warnings, (engine, a.warnings)


def test_ppp_van_jacobson_tcp_said_by_both_engines(tmp_path):
    """(break-it 18 F8) A PPP capture (link type 9) whose connection's data packets are Van
    Jacobson compressed TCP (protocol 0x002d): both engines give the same flows and the same
    warning line counting the frames not read (they were dropped without a word)."""
    from pcapbuild import pcap_bytes, tcp_session
    recs = []
    for k, (t, pkt) in enumerate(tcp_session(("192.0.2.10", 50000), ("203.0.113.10", 23101),
                                             c_data=b"q" * 300, s_data=b"a" * 900)):
        ipb = bytes(pkt)[14:]
        if k in (3, 4):         # the data packets: a VJ compressed header + the payload
            recs.append((t, b"\xff\x03\x00\x2d" + bytes([0x10, 0x07]) + bytes(2) + ipb[40:]))
        else:
            recs.append((t, b"\xff\x03\x00\x21" + ipb))
    path = tmp_path / "vj.pcap"
    path.write_bytes(pcap_bytes(recs, linktype=9))
    _compare(path)
    want = ("vj.pcap: decode: 2 PPP frames of Van Jacobson compressed TCP (PPP protocol 0x002d/0x002f, "
            "RFC 1144) were not read: the TCP segments they carried are missing from the flows (turn VJ "
            "compression off on the PPP link, e.g. pppd's novj, or capture on the host)")
    for engine in ("builtin", "tshark"):
        a = analyze_file(path, RULES, engine=engine)
        assert [w for w in a.warnings if "Van Jacobson" in w] == [want], engine
        (r,) = a.flows.to_dict("records")
        assert (r["orig_pkts"], r["resp_pkts"]) == (4, 2), engine


def test_tshark_message_quoting_a_file_name_with_a_newline(tmp_path):
    """(break-it 18 F11) A capture cut short whose file name holds an ESC sequence and a newline:
    tshark's message quotes the name, and the warning gave only the part after the newline; the
    name in it is now escaped as in the rest of the line, so the whole message is kept."""
    from pcapbuild import pcap_bytes, tcp_session
    data = pcap_bytes(tcp_session(("192.0.2.10", 50000), ("203.0.113.10", 13000), c_data=b"q" * 300))
    path = tmp_path / "evil\x1b[31mRED\x1b[0m\nFAKE: line.pcap"
    path.write_bytes(data[:-10])
    lines = [w for w in analyze_file(path, RULES, engine="tshark").warnings if "tshark stopped" in w]
    assert lines == ["evil\\x1b[31mRED\\x1b[0m\\x0aFAKE: line.pcap: tshark stopped reading after 6 frames: tshark: "
                     f'The file "{tmp_path}/evil\\x1b[31mRED\\x1b[0m\\x0aFAKE: line.pcap" appears to have been cut '
                     "short in the middle of a packet."]


def test_fcs_length_longer_than_the_frames_both_engines_read_them(tmp_path):
    """break-it 22 F6: a pcapng interface whose if_fcslen (200 bytes) is longer than its frames:
    tshark reads every frame as malformed, and the tshark engine dropped the S0 flow's SYNs
    without a word while the built-in engine read them. Both engines now read the frames
    without an FCS (tshark dissects the built-in reader's copy), give the same flows and the
    same warning line counting them. (Session 62: if_fcslen 200 is read as Wireshark 4.0 reads
    it, bits, 25 bytes, which no link layer's FCS has: the line now says so; the frames are
    still read whole by both engines.)"""
    import struct
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.l2 import Ether

    def block(kind, body):
        body += b"\0" * (-len(body) % 4)
        return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)

    def epb(ts_us, d):
        return block(6, struct.pack("<IIIII", 0, ts_us >> 32, ts_us & 0xFFFFFFFF, len(d), len(d)) + d)
    eth = Ether(src="02:00:00:00:00:10", dst="02:00:00:00:00:01")
    syns = [bytes(eth / IP(src="192.0.2.10", dst="203.0.113.10", id=i + 1)
                  / TCP(sport=50000, dport=13000, flags="S", seq=1000)) for i in range(3)]
    dns = bytes(eth / IP(src="192.0.2.10", dst="198.51.100.53") / UDP(sport=40000, dport=53) / (b"q" * 20))
    t0 = 1_764_590_400_000_000
    path = tmp_path / "fcslen200.pcapng"
    path.write_bytes(block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
                     + block(1, struct.pack("<HHI", 1, 0, 0) + struct.pack("<HH", 13, 1) + b"\xc8\0\0\0"
                             + struct.pack("<HH", 0, 0))
                     + b"".join(epb(t0 + i * 1_000_000, d) for i, d in enumerate(syns + [dns])))
    _compare(path)
    line = ("fcslen200.pcapng: 1 Interface Description Block with an FCS length (if_fcslen) no link layer "
            "has (not 0, 2 or 4 bytes, nor 16 or 32 bits): ignored, the frames are read whole")
    for engine in ("builtin", "tshark"):
        a = analyze_file(path, RULES, engine=engine)
        warnings = [w for st in a.stats.values() for w in st.warnings]
        assert any(w.startswith(line) for w in warnings), (engine, warnings)
        f = a.flows
        assert sorted(f.orig_pkts.tolist()) == [1, 3], engine
        assert f.loc[f.resp_p == 13000, "conn_state"].tolist() == ["S0"], engine


def _big_segments_pcap(mode: str, snaplen: int = 262144) -> bytes:
    """Raw IPv6 (link type 101): a TCP connection whose server sends 3 segments of 70,000 bytes
    with payload length 0: ``mode`` 'hbh' with a hop-by-hop Jumbo Payload option (RFC 2675),
    'bigtcp' without one (Linux BIG TCP / GSO as captured on the host). ``snaplen``: bytes kept
    of each frame (the records give the original length)."""
    import struct
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import IPv6
    c, s = "2001:db8:1::10", "2001:db8:2::20"

    def seg(src, dst, sp, dp, fl, seq, ack, data=b""):
        return bytes(IPv6(src=src, dst=dst) / TCP(sport=sp, dport=dp, flags=fl, seq=seq, ack=ack) / data)
    recs = [seg(c, s, 50001, 23101, "S", 100, 0), seg(s, c, 23101, 50001, "SA", 900, 101),
            seg(c, s, 50001, 23101, "A", 101, 901)]
    seq = 901
    for _ in range(3):
        raw = bytearray(seg(s, c, 23101, 50001, "A", seq, 101)) + b"J" * 70000   # (checksum not redone)
        raw[4:6] = b"\0\0"
        if mode == "hbh":
            nh = raw[6]
            raw[6] = 0
            raw[40:40] = bytes([nh, 0, 0xC2, 4]) + struct.pack(">I", len(raw) - 40 + 8)
        recs.append(bytes(raw))
        seq += 70000
    recs += [seg(c, s, 50001, 23101, "A", 101, seq), seg(c, s, 50001, 23101, "FA", 101, seq),
             seg(s, c, 23101, 50001, "FA", seq, 102), seg(c, s, 50001, 23101, "A", 102, seq + 1)]
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 101)]
    for k, r in enumerate(recs):
        cap = r[:snaplen]
        out.append(struct.pack("<IIII", 1000, k * 1000, len(cap), len(r)) + cap)
    return b"".join(out)


@pytest.mark.parametrize("snaplen", [262144, 200])
@pytest.mark.parametrize("mode", ["hbh", "bigtcp"])
def test_payload_length_zero_read_as_the_builtin(tmp_path, mode, snaplen):
    """Break-it 25 F7 (a, b): an IPv6 jumbogram's size is its Jumbo Payload option's (not 40 +
    a payload length of 0); a BIG TCP segment (payload length 0, no option) is the rest of the
    frame (ipv6.tso_support), one flow, as the builtin decoder reads them."""
    path = tmp_path / f"{mode}_{snaplen}.pcap"
    path.write_bytes(_big_segments_pcap(mode, snaplen))
    _compare(path)
    f = analyze_file(path, RULES, engine="tshark").flows
    assert len(f) == 1
    r = f.iloc[0]
    extra = 8 if mode == "hbh" else 0
    assert (r.resp_pkts, r.resp_bytes) == (5, 3 * 70000)
    assert r.resp_ip_bytes == 3 * (40 + extra + 20 + 70000) + 2 * 60     # (+ SYN-ACK, FIN)


def test_an_optional_preference_tshark_does_not_know_is_dropped(tmp_path, monkeypatch):
    """An older tshark without one of OPTIONAL_PREFS: the file is read without it."""
    from kscc_traffic.engines import tshark as ts
    monkeypatch.setattr(ts, "OPTIONAL_PREFS", ["-o", "ipv6.kscc_no_such_pref:TRUE", *ts.OPTIONAL_PREFS])
    monkeypatch.setattr(ts, "_unknown_prefs", set())
    path = tmp_path / "bigtcp.pcap"
    path.write_bytes(_big_segments_pcap("bigtcp"))
    f = analyze_file(path, RULES, engine="tshark").flows
    assert ts._unknown_prefs == {"ipv6.kscc_no_such_pref"}
    assert len(f) == 1 and f.iloc[0].resp_pkts == 5          # ipv6.tso_support still used


def _raw_mixed(linktype: int) -> Path:
    """Records of raw IP link type ``linktype`` (228: IPv4, 229: IPv6) holding an IPv6 DNS
    exchange and an IPv4 TCP connection (a tool that wrote the wrong raw type)."""
    from pcapbuild import pcap_bytes
    from scapy.layers.dns import DNS, DNSQR
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    c6, r6, c4, s4 = "2001:db8:1::10", "2001:db8:1::53", "192.0.2.10", "203.0.113.10"
    q = DNS(id=5, rd=1, qd=DNSQR(qname="eu1.ksc.kaspersky.com"))
    pk = [IPv6(src=c6, dst=r6) / UDP(sport=55000, dport=53) / q,
          IPv6(src=r6, dst=c6) / UDP(sport=53, dport=55000) / DNS(id=5, qr=1, qd=q.qd),
          IP(src=c4, dst=s4) / TCP(sport=50002, dport=23101, flags="S", seq=1),
          IP(src=s4, dst=c4) / TCP(sport=23101, dport=50002, flags="SA", seq=9, ack=2),
          IP(src=c4, dst=s4) / TCP(sport=50002, dport=23101, flags="A", seq=2, ack=10)]
    return pcap_bytes([(1000.0 + k * .01, p) for k, p in enumerate(pk)], linktype=linktype)


def test_ipv6_under_the_raw_ipv4_link_type_is_no_tunnel(tmp_path):
    """Break-it 25 F7 (d): IPv6 packets under LINKTYPE_IPV4 (228), which Wireshark's IPv4
    dissector hands to IPv6 by their version: read as the builtin reads them, no 'IP-in-IP'
    tunnel said."""
    path = tmp_path / "raw228.pcap"
    path.write_bytes(_raw_mixed(228))
    _compare(path)
    a = analyze_file(path, RULES, engine="tshark")
    assert sorted(a.flows["proto"]) == ["tcp", "udp"]
    assert not [w for w in a.warnings if "tunnel" in w], a.warnings


def test_ipv4_under_the_raw_ipv6_link_type_is_said(tmp_path):
    """Break-it 25 F7 (c): IPv4 packets under LINKTYPE_IPV6 (229), which tshark 4.0 reads as
    malformed IPv6: the builtin reads them; the tshark engine counts them in a warning instead
    of losing them silently."""
    path = tmp_path / "raw229.pcap"
    path.write_bytes(_raw_mixed(229))
    assert sorted(analyze_file(path, RULES).flows["proto"]) == ["tcp", "udp"]
    a = analyze_file(path, RULES, engine="tshark")
    assert sorted(a.flows["proto"]) == ["udp"]
    assert ("raw229.pcap: 3 frames of the raw IPv6 link type (229) hold an IPv4 packet, which tshark "
            "reads as a malformed IPv6 header: they are missing from the flows of this engine; the "
            "builtin engine (the default, without --engine tshark) reads them by their version "
            "nibble") in a.warnings, a.warnings
