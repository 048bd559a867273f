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


def test_checklist_keeps_its_right_border_at_every_width(tmp_path):
    """A capture whose checklist has a status of 12 characters ("seen one-way") and reasons
    "no_answer, rejected": at 80 columns rich narrowed status below its minimum and then cropped
    the table's right edge (the reasons cut, no border). Every checklist line now ends with a
    border and fits the width."""
    import pytest
    pytest.importorskip("scapy")
    from scapy.all import IPv6, TCP, UDP, Ether, Raw, wrpcap

    a, b = "2001:db8::10", "2001:db8::20"
    ps = [Ether() / IPv6(src=a, dst=b) / TCP(sport=40001, dport=23102, flags="S"),
          Ether() / IPv6(src=b, dst=a) / TCP(sport=23102, dport=40001, flags="RA", ack=1)]
    ps += [Ether() / IPv6(src=a, dst="2001:db8::30") / TCP(sport=40002, dport=23103, flags="S")
           for _ in range(4)]
    ps.append(Ether(dst="33:33:00:00:00:01") / IPv6(src=a, dst="ff02::1") / UDP(sport=40003, dport=15001)
              / Raw(b"x" * 20))
    for i, p in enumerate(ps):
        p.time = 1_700_000_000 + i
    cap = tmp_path / "v6.pcap"
    wrpcap(str(cap), ps)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for width in (60, 70, 78, 79, 80, 81, 82, 90, 100, 130):
        env["COLUMNS"] = str(width)
        r = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", str(cap)], capture_output=True,
                           text=True, env=env, timeout=120)
        assert r.returncode == 1, r.stderr
        lines = r.stdout.splitlines()
        start = lines.index(next(x for x in lines if x.startswith("Readiness checklist")))
        table = lines[start + 1:]
        table = table[:next(i for i, x in enumerate(table) if x.startswith("└")) + 1]
        assert len(table) > 15
        assert all(len(x) <= width and x[-1] in "┓┃┩│┘" for x in table), (width, table)
        if width >= 78:        # (narrower, every cell but the purpose folds: "no_a/nswe/r,")
            assert any("one-way" in x for x in table) and any("no_answer," in x for x in table)
