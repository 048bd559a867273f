"""Session 41 newcomer findings: warning lines read as English for a count of one."""
from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "kscc_traffic", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def _pcap(linktype: int, frames: list[bytes]) -> bytes:
    """A little-endian microsecond pcap of ``frames`` (1 s apart) with link type ``linktype``."""
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, linktype)
    for i, f in enumerate(frames):
        out += struct.pack("<IIII", 1_700_000_000 + i, 0, len(f), len(f)) + f
    return out


def _block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def test_one_frame_of_an_unsupported_or_non_ip_link_type_is_singular(tmp_path):
    for lt, want in ((147, "decode: 1 frame of unsupported link type 147 skipped (--engine tshark "
                           "reads more link types)"),
                     (220, "decode: 1 frame of link type 220 (USB: no IP traffic) skipped")):
        p = tmp_path / f"lt{lt}.pcap"
        p.write_bytes(_pcap(lt, [b"\x00" * 60]))
        r = _cli("analyze", str(p), "--format", "jsonl")
        assert f"Warning: {p.name}: {want}" in r.stderr.splitlines(), r.stderr
        p.write_bytes(_pcap(lt, [b"\x00" * 60, b"\x01" * 60]))
        r = _cli("analyze", str(p), "--format", "jsonl")
        assert f"Warning: {p.name}: {want.replace('1 frame ', '2 frames ')}" in r.stderr.splitlines(), r.stderr


def test_one_packet_block_of_an_undefined_interface_is_singular(tmp_path):
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = _block(1, struct.pack("<HHI", 1, 0, 65535))
    epb = _block(6, struct.pack("<IIIII", 7, 0, 0, 60, 60) + b"\x00" * 60)    # interface 7 of 1
    p = tmp_path / "iface7.pcapng"
    p.write_bytes(shb + idb + epb)
    r = _cli("analyze", str(p), "--format", "jsonl")
    want = (f"Warning: {p.name}: 1 packet block names an interface not defined in its section "
            f"(first at offset {len(shb) + len(idb)}); skipped")
    assert want in r.stderr.splitlines(), r.stderr
