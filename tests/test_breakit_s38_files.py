"""Odd real-world capture files (session 38): zstd skippable frames (pzstd), xz stream padding,
lz4's legacy frame format. Bytes are built in the test."""
from __future__ import annotations

import io
import json
import lzma
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from kscc_traffic.capture.compressed import DecompressingReader, codec_of

ROOT = Path(__file__).resolve().parent.parent


def _pcap(n: int, port0: int = 40000) -> bytes:
    """A classic pcap (Ethernet) of ``n`` TCP SYNs 198.51.100.1:port0+i -> 203.0.113.5:13000."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for i in range(n):
        tcp = struct.pack("!HHIIBBHHH", port0 + i, 13000, 1000 + i, 0, 5 << 4, 0x02, 64240, 0, 0)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i, 0, 64, 6, 0,
                         bytes([198, 51, 100, 1]), bytes([203, 0, 113, 5]))
        frame = b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + tcp
        out.append(struct.pack("<IIII", 1_700_000_000 + i, 0, len(frame), len(frame)) + frame)
    return b"".join(out)


def _skippable(payload: bytes, n: int = 0) -> bytes:
    return struct.pack("<II", 0x184D2A50 + n, len(payload)) + payload


def _read_all(data: bytes) -> tuple[bytes, str | None]:
    r = DecompressingReader(io.BytesIO(data), codec_of(data[:8]))
    out = bytearray()
    while True:
        piece = r.read(4096)
        if not piece:
            break
        out += piece
    return bytes(out), r.problem


def _analyze(tmp_path: Path, name: str, data: bytes) -> subprocess.CompletedProcess:
    p = tmp_path / name
    p.write_bytes(data)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", str(p), "-f", "jsonl",
                           "-o", str(tmp_path / "out.jsonl")], capture_output=True, text=True,
                          env=env, timeout=120)


def _flows(tmp_path: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines() if line.strip()]


def _zstd_pzstd_like(parts: list[bytes]) -> bytes:
    """Each part a zstd frame preceded by a skippable frame of its 4-byte size (as pzstd writes)."""
    zstandard = pytest.importorskip("zstandard")
    out = b""
    for i, part in enumerate(parts):
        frame = zstandard.ZstdCompressor().compress(part)
        out += _skippable(struct.pack("<I", len(frame)), i % 16) + frame
    return out


def test_zstd_skippable_frames_read_whole():
    pcap = _pcap(60)
    data = _zstd_pzstd_like([pcap[:1000], pcap[1000:2500], pcap[2500:]]) + _skippable(b"trailer", 15)
    assert codec_of(data[:8]) == "zstd"
    out, problem = _read_all(data)
    assert out == pcap
    assert problem is None


def test_zstd_skippable_frame_cut_short_is_named():
    pcap = _pcap(10)
    data = _zstd_pzstd_like([pcap]) + struct.pack("<II", 0x184D2A51, 100) + b"x" * 10
    out, problem = _read_all(data)
    assert out == pcap
    assert problem == "zstd skippable frame cut short (file cut short)"


def test_zstd_pzstd_capture_analysed(tmp_path):
    pcap = _pcap(40)
    r = _analyze(tmp_path, "c.pcap.zst", _zstd_pzstd_like([pcap[:1500], pcap[1500:]]))
    assert "Error" not in r.stderr, r.stderr   # (exit 1: unanswered SYNs are blocked)
    flows = _flows(tmp_path)
    assert len(flows) == 40
    assert "magic" not in r.stderr


def test_xz_stream_padding_and_second_stream():
    pcap = _pcap(30)
    a, b = pcap[:1200], pcap[1200:]
    data = lzma.compress(a) + b"\0" * 8 + lzma.compress(b) + b"\0" * 12
    out, problem = _read_all(data)
    assert out == pcap
    assert problem is None


def test_xz_padding_then_garbage_is_named():
    pcap = _pcap(5)
    out, problem = _read_all(lzma.compress(pcap) + b"\0" * 4 + b"GARBAGE!")
    assert out == pcap
    assert problem == "xz stream followed by bytes that are not xz (ignored)"


def test_xz_padded_capture_analysed(tmp_path):
    pcap = _pcap(25)
    data = lzma.compress(pcap[:900]) + b"\0" * 4 + lzma.compress(pcap[900:]) + b"\0" * 4
    r = _analyze(tmp_path, "c.pcap.xz", data)
    assert "Error" not in r.stderr, r.stderr   # (exit 1: unanswered SYNs are blocked)
    assert len(_flows(tmp_path)) == 25
    assert "not xz" not in r.stderr


def test_lz4_legacy_clear_error(tmp_path):
    block = pytest.importorskip("lz4.block")
    pcap = _pcap(5)
    comp = block.compress(pcap, store_size=False)
    data = struct.pack("<I", 0x184C2102) + struct.pack("<I", len(comp)) + comp
    assert codec_of(data[:8]) == "lz4-legacy"
    r = _analyze(tmp_path, "c.pcap.lz4", data)
    assert r.returncode != 0
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    assert "lz4 legacy frame format (lz4 -l) is not read" in lines[0]
    assert "'lz4 -d FILE OUT'" in lines[0]
    assert "Traceback" not in r.stderr


def _pktap_pcap(linktype: int, n: int, *, hlen: int = 108, type_next: int = 1) -> bytes:
    """A pcap of link type ``linktype`` (149 USER2 or 258 PKTAP) whose frames are Apple PKTAP
    headers (pth_length, pth_type_next, pth_dlt = 1 Ethernet, pth_ifname "en0", LE) over the
    Ethernet frames of :func:`_pcap`."""
    plain = _pcap(n)
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)]
    pos = 24
    while pos < len(plain):
        ts, us, caplen, wire = struct.unpack_from("<IIII", plain, pos)
        frame = plain[pos + 16:pos + 16 + caplen]
        pos += 16 + caplen
        hdr = struct.pack("<III24s", hlen, type_next, 1, b"en0").ljust(hlen, b"\0")
        out.append(struct.pack("<IIII", ts, us, len(hdr) + caplen, len(hdr) + wire) + hdr + frame)
    return b"".join(out)


@pytest.mark.parametrize("linktype", [149, 258])
def test_pktap_inner_ethernet_read(tmp_path, linktype):
    r = _analyze(tmp_path, "pktap.pcap", _pktap_pcap(linktype, 12))
    assert "Error" not in r.stderr, r.stderr
    flows = _flows(tmp_path)
    assert len(flows) == 12
    assert "skipped" not in r.stderr


def test_user2_not_pktap_skipped_with_count(tmp_path):
    # (a USER2 capture whose header is not PKTAP's: its frames are someone's own format)
    r = _analyze(tmp_path, "user2.pcap", _pktap_pcap(149, 7, type_next=9))
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "out.jsonl").exists() or _flows(tmp_path) == []
    assert "7 frames" in r.stderr, r.stderr


def _pcapng_overlong(n: int, *, trail_too: bool = False, overlong_idb: bool = False) -> bytes:
    """A pcapng (SHB, IDB Ethernet, ``n`` EPBs of :func:`_pcap`'s frames) whose EPBs' block
    lengths are 4 bytes more than the block, as etl2pcapng 1.4.0 writes them (``trail_too``:
    the trailing length is over-long too; else it is the true length)."""
    def block(btype: int, body: bytes, over: bool) -> bytes:
        true = 12 + len(body)
        lead = true + 4 if over else true
        trail = lead if (over and trail_too) else true
        return struct.pack("<II", btype, lead) + body + struct.pack("<I", trail)
    out = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1), False),
           block(1, struct.pack("<HHI", 1, 0, 65535), overlong_idb)]
    plain = _pcap(n)
    pos = 24
    while pos < len(plain):
        ts, us, caplen, wire = struct.unpack_from("<IIII", plain, pos)
        frame = plain[pos + 16:pos + 16 + caplen]
        pos += 16 + caplen
        t = ts * 1_000_000 + us
        body = struct.pack("<IIIII", 0, t >> 32, t & 0xFFFFFFFF, caplen, wire) + frame
        body += b"\0" * (-len(body) % 4)
        out.append(block(6, body, True))
    return b"".join(out)


@pytest.mark.parametrize("trail_too", [False, True])
def test_pcapng_overlong_blocks_read_with_one_warning(tmp_path, trail_too):
    r = _analyze(tmp_path, "etl.pcapng", _pcapng_overlong(9, trail_too=trail_too, overlong_idb=True))
    assert "Error" not in r.stderr, r.stderr
    assert len(_flows(tmp_path)) == 9
    warn = [ln for ln in r.stderr.splitlines() if "4 bytes more than the block" in ln]
    assert len(warn) == 1, r.stderr
    assert "10 blocks whose block length is 4 bytes more than the block (first at offset 28)" in warn[0]
    assert "etl2pcapng 1.4.0" in warn[0]


def _tzsp_pcap(n: int, *, encap: int = 1) -> bytes:
    """A pcap whose frames are UDP 192.0.2.9:40001 -> 192.0.2.10:37008 datagrams (a MikroTik
    sniffer streaming to a collector) carrying TZSP (version 1, type 0, encapsulation ``encap``,
    a padding tag and the end tag) over :func:`_pcap`'s Ethernet frames."""
    plain = _pcap(n)
    out = [plain[:24]]
    pos = 24
    while pos < len(plain):
        ts, us, caplen, wire = struct.unpack_from("<IIII", plain, pos)
        inner = plain[pos + 16:pos + 16 + caplen]
        pos += 16 + caplen
        payload = struct.pack("!BBH", 1, 0, encap) + b"\x00\x01" + inner
        udp = struct.pack("!HHHH", 40001, 37008, 8 + len(payload), 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                         bytes([192, 0, 2, 9]), bytes([192, 0, 2, 10]))
        frame = b"\x06" * 6 + b"\x08" * 6 + b"\x08\x00" + ip + udp
        out.append(struct.pack("<IIII", ts, us, len(frame), len(frame)) + frame)
    return b"".join(out)


def test_tzsp_ethernet_read_as_tunnel(tmp_path):
    r = _analyze(tmp_path, "tzsp.pcap", _tzsp_pcap(6))
    assert "Error" not in r.stderr, r.stderr
    flows = _flows(tmp_path)
    assert len(flows) == 6
    text = json.dumps(flows)
    assert "203.0.113.5" in text and "37008" not in text
    assert "decode: 6 tunnelled packets decoded as their inner packet, outer headers dropped (TZSP 6)" \
        in r.stderr, r.stderr


def test_tzsp_80211_stays_udp(tmp_path):
    r = _analyze(tmp_path, "tzsp11.pcap", _tzsp_pcap(4, encap=18))
    assert "Error" not in r.stderr, r.stderr
    flows = _flows(tmp_path)
    assert len(flows) == 1
    assert "37008" in json.dumps(flows)
    assert "tunnelled" not in r.stderr
    # (session 39: counted and said, no longer dropped without a word)
    assert "4 TZSP packets carrying frames of a kind not read (802.11 (encapsulation 18) 4)" in r.stderr


def test_tzsp_tshark_engine_agrees(tmp_path):
    import shutil
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed: the tshark engine cannot be compared")
    p = tmp_path / "tzsp.pcap"
    p.write_bytes(_tzsp_pcap(5))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    outs = []
    for engine in ("builtin", "tshark"):
        o = tmp_path / f"{engine}.jsonl"
        r = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", str(p), "--engine", engine,
                            "-f", "jsonl", "-o", str(o)], capture_output=True, text=True, env=env, timeout=120)
        assert "(TZSP 5)" in r.stderr, r.stderr
        outs.append(o.read_text())
    assert outs[0] == outs[1]
