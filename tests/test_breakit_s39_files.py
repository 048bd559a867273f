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


# ------------------------------------------------------------------ compressed, tshark engine
def _fake_tshark(tmp_path: Path, *, refuse_suffix: str | None = None) -> Path:
    """A stand-in tshark that notes each run in ``runs.txt``; it refuses (as tshark does a
    file it cannot open) every file, or only those whose name ends with ``refuse_suffix``,
    running the real tshark for the others."""
    runs = tmp_path / "runs.txt"
    real = shutil.which("tshark") or "/bin/false"
    script = tmp_path / "tshark"
    cond = "true" if refuse_suffix is None else f'case "$r" in *{refuse_suffix}) true;; *) false;; esac'
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{runs}"\n'
        'r=""; prev=""; for a in "$@"; do [ "$prev" = "-r" ] && r="$a"; prev="$a"; done\n'
        f'if {cond}; then echo "tshark: The file \\"$r\\" isn\'t a capture file in a format TShark '
        'understands." >&2; exit 2; fi\n'
        f'exec "{real}" "$@"\n')
    script.chmod(0o755)
    return script


def _lz4_legacy(data: bytes) -> bytes:
    block = pytest.importorskip("lz4.block")
    comp = block.compress(data, store_size=False)
    return struct.pack("<II", 0x184C2102, len(comp)) + comp


def test_lz4_legacy_refused_by_tshark_engine_itself(tmp_path):
    from kscc_traffic.engines.tshark import read_packets
    from kscc_traffic.errors import TruncatedCapture
    p = tmp_path / "c.pcap.lz4"
    p.write_bytes(_lz4_legacy(_pcap_of(_syn_frames(5))))
    fake = _fake_tshark(tmp_path)
    with pytest.raises(TruncatedCapture) as e:
        read_packets(p, str(fake))
    assert str(e.value) == ("c.pcap.lz4: lz4 legacy frame format (lz4 -l) is not read: convert it with "
                            "'lz4 -d FILE OUT' (then 'lz4 OUT' for the current frame format if wanted); "
                            "no capture data")
    assert not (tmp_path / "runs.txt").exists()      # (tshark was not asked)


@pytest.mark.skipif(not HAVE_TSHARK, reason="tshark is not installed")
def test_lz4_legacy_same_error_both_engines(tmp_path):
    p = tmp_path / "c.pcap.lz4"
    p.write_bytes(_lz4_legacy(_pcap_of(_syn_frames(3))))
    lines = []
    for engine in ("builtin", "tshark"):
        r = _analyze(tmp_path, p, "--engine", engine)
        assert r.returncode == 2
        got = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith("Running as")]
        assert len(got) == 1, r.stderr
        lines.append(got[0])
    assert lines[0] == lines[1]
    assert "convert it with 'lz4 -d FILE OUT'" in lines[0]


def _compress(codec: str, data: bytes) -> bytes:
    import bz2
    import gzip
    import lzma
    if codec == "gzip":
        return gzip.compress(data)
    if codec == "xz":
        return lzma.compress(data)
    if codec == "bzip2":
        return bz2.compress(data)
    if codec == "zstd":
        return pytest.importorskip("zstandard").ZstdCompressor().compress(data)
    return pytest.importorskip("lz4.frame").compress(data)


@pytest.mark.skipif(not HAVE_TSHARK, reason="tshark is not installed")
@pytest.mark.parametrize("codec", ["gzip", "xz", "bzip2", "zstd", "lz4"])
def test_compressed_capture_tshark_engine_as_builtin(tmp_path, codec):
    # (tshark opens gzip, zstd and lz4 itself; xz and bzip2 it does not: the engine decompresses
    # them first, without a word, as the built-in engine reads them)
    p = tmp_path / f"c.pcap.{codec}"
    p.write_bytes(_compress(codec, _pcap_of(_syn_frames(6))))
    outs = []
    for engine in ("builtin", "tshark"):
        r = _analyze(tmp_path, p, "--engine", engine, out=f"{engine}.jsonl")
        assert "Error" not in r.stderr, r.stderr
        assert _warnings(r.stderr) == [], r.stderr
        outs.append((tmp_path / f"{engine}.jsonl").read_text())
    assert outs[0] == outs[1]
    assert len(outs[0].splitlines()) == 6


@pytest.mark.skipif(not HAVE_TSHARK, reason="tshark is not installed")
def test_xz_cut_short_tshark_engine_says_where_data_ends(tmp_path):
    from kscc_traffic.engines.tshark import read_packets
    pcap = _pcap_of(_syn_frames(8))
    whole = _compress("xz", pcap)
    p = tmp_path / "cut.pcap.xz"
    p.write_bytes(whole[:len(whole) - 40])
    pk = read_packets(p)
    assert 0 < pk.stats.records < 8
    ends = [w for w in pk.stats.warnings if "capture data ends at offset" in w]
    assert len(ends) == 1 and ends[0].startswith("cut.pcap.xz: xz stream ends before its end marker"), \
        pk.stats.warnings
    assert not any("kscc-traffic-" in w for w in pk.stats.warnings)   # (no temporary file named)
    assert pk.stats.bytes_read == p.stat().st_size


@pytest.mark.skipif(not HAVE_TSHARK, reason="tshark is not installed")
def test_zstd_with_a_tshark_without_zstd_is_decompressed_first(tmp_path):
    from kscc_traffic.engines.tshark import read_packets
    p = tmp_path / "c.pcap.zst"
    p.write_bytes(_compress("zstd", _pcap_of(_syn_frames(5))))
    fake = _fake_tshark(tmp_path, refuse_suffix=".zst")
    pk = read_packets(p, str(fake))
    assert pk.stats.records == 5
    assert sorted(pk.cols["sport"].tolist()) == [40000, 40001, 40002, 40003, 40004]
    assert pk.stats.warnings == []


# ------------------------------------------------------------------ Apple PKTAP (258, USER2 149)
def _pktap(frame: bytes, hlen: int = 108, type_next: int = 1, dlt: int = 1, room: int | None = None) -> bytes:
    """``frame`` after an Apple ``struct pktap_header`` (little-endian: pth_length ``hlen``,
    pth_type_next, pth_dlt, pth_ifname "en0", the rest zero) of ``room`` bytes (default
    ``hlen``)."""
    return struct.pack("<III24s", hlen, type_next, dlt, b"en0").ljust(hlen if room is None else room, b"\0") + frame


def _pktap_v2(frame: bytes) -> bytes:
    """``frame`` after a kernel ``struct pktap_v2_hdr`` (1-byte pth_length 64, offsets of the
    interface and command names, 16-bit pth_dlt 1, pth_flags with PTH_FLAG_V2_HDR at offset 36)."""
    h = struct.pack("<BBBBBBHHHHHIIIiiI", 64, 0, 0, 40, 56, 0, 1, 14, 0, 6, 6, 2, 0, 0, 100, 100, 0x80000)
    return h.ljust(40, b"\0") + b"en0".ljust(16, b"\0") + b"curl".ljust(8, b"\0") + frame


def _analysed(path: Path, engine: str = "builtin"):
    from kscc_traffic.analyze import analyze_file
    from kscc_traffic.rules import load_rules
    r = analyze_file(path, load_rules(), engine=engine)
    return r, next(iter(r.stats.values()))


@pytest.mark.parametrize("linktype", [258, 149])
@pytest.mark.parametrize("hlen, type_next", [(40, 1), (107, 1), (108, 0), (108, 2)])
def test_pktap_header_not_one_gives_no_packet(tmp_path, linktype, hlen, type_next):
    # (Wireshark: a pth_length under 108 is "Header length is too short", a pth_type_next other
    # than 1 has no packet after it: nothing is read past the header; the builtin decoder read
    # the frame after any header of 12 bytes or more, of any type, under link type 258)
    p = tmp_path / "pktap.pcap"
    p.write_bytes(_pcap_of([_pktap(f, hlen, type_next) for f in _syn_frames(4)], linktype))
    r, st = _analysed(p)
    assert len(r.flows) == 0
    assert (st.records, st.ip_packets, st.non_ip) == (4, 0, 4)


@pytest.mark.parametrize("linktype", [258, 149])
def test_pktap_156_byte_header_read(tmp_path, linktype):
    # (recent macOS: pth_flowid, pth_ipproto, pth_tstamp, pth_uuid, pth_euuid after the 108
    # bytes; the frame starts at pth_length)
    p = tmp_path / "pktap.pcap"
    p.write_bytes(_pcap_of([_pktap(f, 156) for f in _syn_frames(3)], linktype))
    r, st = _analysed(p)
    assert sorted(r.flows["orig_p"].tolist()) == [40000, 40001, 40002]
    assert set(r.flows["resp_h"]) == {"203.0.113.5"}
    assert (st.ip_packets, st.non_ip, st.malformed) == (3, 0, 0)


@pytest.mark.skipif(not HAVE_TSHARK, reason="tshark is not installed")
@pytest.mark.parametrize("linktype", [258, 149])
def test_pktap_engines_agree(tmp_path, linktype):
    # (tshark reads an unconfigured USER2 as PKTAP, as macOS's tcpdump writes it)
    fr = _syn_frames(7)
    frames = [_pktap(fr[0]), _pktap(fr[1], 156), _pktap(fr[2], 200), _pktap_v2(fr[3]),
              _pktap(fr[4], type_next=0), _pktap(fr[5], hlen=60), _pktap(fr[6], dlt=101, hlen=108)[:108]
              + fr[6][14:]]
    p = tmp_path / "mix.pcap"
    p.write_bytes(_pcap_of(frames, linktype))
    (a, sa), (b, sb) = _analysed(p), _analysed(p, "tshark")
    cols = ["uid", "orig_h", "orig_p", "resp_h", "resp_p", "proto", "conn_state", "history"]
    assert a.flows.sort_values("uid")[cols].values.tolist() == b.flows.sort_values("uid")[cols].values.tolist()
    assert sorted(a.flows["orig_p"].tolist()) == [40000, 40001, 40002, 40006]
    assert (sa.ip_packets, sa.non_ip + sa.malformed) == (sb.ip_packets, sb.non_ip + sb.malformed) == (4, 3)
