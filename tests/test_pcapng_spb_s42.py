"""Session 42: a pcapng Simple Packet Block (SPB) before any Interface Description Block of its
section. An SPB names no interface (it is interface 0's, whose IDB gives its link type), so the
warning said wrongly that it "names an interface not defined in its section"; it now says what
is missing. Packets after the IDB are still read. (And one packet without a timestamp is said
in the singular: "1 packets in Simple Packet Blocks carry" before.)"""
from __future__ import annotations

import struct

import pytest

pytest.importorskip("scapy")

from scapy.all import IP, TCP, Ether  # noqa: E402

import kscc_traffic  # noqa: E402
from kscc_traffic.analyze import analyze_file  # noqa: E402

RULES = kscc_traffic.load_rules()


def _block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def _spb(frame: bytes) -> bytes:
    return _block(3, struct.pack("<I", len(frame)) + frame)


SYN = bytes(Ether(src="00:00:5e:00:53:01", dst="00:00:5e:00:53:02") / IP(src="192.0.2.10", dst="203.0.113.5")
            / TCP(sport=50000, dport=23101, flags="S", seq=1))
SHB = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
IDB = _block(1, struct.pack("<HHI", 1, 0, 65535))


@pytest.mark.parametrize("before", [1, 3])
def test_simple_packet_blocks_before_the_interface_are_said_as_such(tmp_path, before):
    path = tmp_path / "spb.pcapng"
    path.write_bytes(SHB + _spb(SYN) * before + IDB + _spb(SYN))
    a = analyze_file(path, RULES)
    plural = "1 Simple Packet Block" if before == 1 else f"{before} Simple Packet Blocks"
    their = "its" if before == 1 else "their"
    assert a.warnings[1] == ("spb.pcapng: 1 packet in a Simple Packet Block carries no timestamp (every packet "
                             "of the capture): it is timed 1 ns after the packet before it, from 1970-01-01 "
                             "00:00:00 UTC, so it keeps its file order; flow times and durations are not real, the "
                             "time rules (3 s without an answer, idle timeouts, the 5 s close delay) cannot apply, "
                             "and no flow ends by time, so a large capture's flows are all held in memory")
    assert a.warnings[:1] == [f"spb.pcapng: {plural} before any Interface Description Block of {their} section "
                          f"(first at offset {len(SHB)}): a Simple Packet Block is interface 0's, which gives its "
                          "link type, and there was none; skipped"]
    (r,) = a.flows.itertuples()                     # (the SPB after the IDB is read)
    assert (r.resp_p, r.conn_state, r.orig_pkts) == (23101, "S0", 1)


def test_an_enhanced_packet_block_of_an_undefined_interface_keeps_its_words(tmp_path):
    epb = _block(6, struct.pack("<IIIII", 7, 0, 0, len(SYN), len(SYN)) + SYN)
    path = tmp_path / "epb.pcapng"
    path.write_bytes(SHB + IDB + epb)
    assert analyze_file(path, RULES).warnings[0] == (
        f"epb.pcapng: 1 packet block names an interface not defined in its section (first at offset "
        f"{len(SHB) + len(IDB)}); skipped")
