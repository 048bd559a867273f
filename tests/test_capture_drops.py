"""Packets the capture tool dropped, as pcapng Interface Statistics Blocks report them
(``isb_ifdrop`` §4.6.1 option 5, ``isb_osdrop`` option 7): one warning with the count, so an
unanswered SYN is not read as a block by the network when the capture lost its answer. The
packets that were written are all analysed."""
from __future__ import annotations

import struct

import pytest

pytest.importorskip("scapy")

from scapy.all import IP, TCP, Ether  # noqa: E402

import kscc_traffic  # noqa: E402
from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.capture.files import iter_frames, read_frames  # noqa: E402
from kscc_traffic.live.pcapng_writer import PcapngWriter  # noqa: E402

RULES = kscc_traffic.load_rules()
SYN = bytes(Ether(src="02:00:00:00:00:10", dst="02:00:00:00:00:01")
            / IP(src="198.51.100.7", dst="203.0.113.10") / TCP(sport=50000, dport=23101, flags="S"))


def drop_lines(stats) -> list[str]:
    return [w for w in stats.warnings if "dropped" in w]


def test_isb_ifdrop_from_our_writer(tmp_path):
    path = tmp_path / "live.pcapng"
    with PcapngWriter(path, interface="eth0") as w:
        w.write(1_700_000_000_000_000_000, 1, SYN)
        w.close(ts_ns=1_700_000_001_000_000_000, received=1234, dropped=37)
    fr = read_frames(path)
    assert len(fr) == 1
    (line,) = drop_lines(fr.stats)
    assert "37 packets dropped" in line and "interface 0: 37 (isb_ifdrop)" in line
    a = analyze_file(path, RULES)
    assert len(a.flows) == 1 and a.flows["conn_state"].tolist() == ["S0"]
    assert sum("37 packets dropped" in w for w in a.warnings) == 1
    # read in small chunks: the same single line
    for chunk in iter_frames(path, 64):
        pass
    assert drop_lines(chunk.stats) == [line]


def _block(order: str, btype: int, body: bytes) -> bytes:
    n = 12 + len(body)
    return struct.pack(order + "II", btype, n) + body + struct.pack(order + "I", n)


def _opt(order: str, code: int, value: bytes) -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _pcapng(order: str, isbs: list[tuple[int, dict[int, int]]], ifaces: int = 2) -> bytes:
    shb = _block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    idbs = b"".join(_block(order, 1, struct.pack(order + "HHI", 1, 0, 65535)) for _ in range(ifaces))
    epb = _block(order, 6, struct.pack(order + "IIIII", 0, 0, 1000, len(SYN), len(SYN))
                 + SYN + b"\0" * (-len(SYN) % 4))
    out = shb + idbs + epb
    for ifid, opts in isbs:
        body = struct.pack(order + "III", ifid, 0, 2000)
        body += b"".join(_opt(order, c, struct.pack(order + "Q", v)) for c, v in opts.items())
        out += _block(order, 5, body + _opt(order, 0, b""))
    return out


@pytest.mark.parametrize("order", ["<", ">"], ids=["little", "big"])
def test_isb_counts_per_interface(tmp_path, order):
    """Cumulative counters: the largest per interface and option counts (a tool writing two
    blocks for one interface does not double it); ifdrop and osdrop are told apart; an ISB
    naming an undefined interface, or with an absurd (all-ones) count, is ignored."""
    isbs = [(0, {5: 3, 4: 100}), (0, {5: 10}), (1, {7: 4}), (7, {5: 99}), (1, {5: (1 << 64) - 1})]
    path = tmp_path / "drops.pcapng"
    path.write_bytes(_pcapng(order, isbs))
    fr = read_frames(path)
    assert len(fr) == 1
    (line,) = drop_lines(fr.stats)
    assert "14 packets dropped" in line
    assert "interface 0: 10 (isb_ifdrop); interface 1: 4 (isb_osdrop)" in line


def test_no_drops_no_warning(tmp_path):
    path = tmp_path / "clean.pcapng"
    path.write_bytes(_pcapng("<", [(0, {4: 1, 5: 0, 7: 0})]))
    assert drop_lines(read_frames(path).stats) == []


def test_the_tshark_engine_says_the_file_oddities_the_builtin_reader_says(tmp_path):
    """Break-it s50 (inputs #2, #3): with ``--engine tshark`` the dropped packets an Interface
    Statistics Block reports, records longer than the snaplen and fractions of a second of a
    second or more were not said (or counted otherwise): the engine takes those lines from the
    built-in reader's walk of the file, the same lines."""
    import shutil
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed (apt-get install tshark)")
    path = tmp_path / "drops.pcapng"
    path.write_bytes(_pcapng("<", [(0, {5: 7})]))
    ours = [w for w in analyze_file(path, RULES).warnings if "dropped" in w]
    theirs = [w for w in analyze_file(path, RULES, engine="tshark").warnings if "dropped" in w]
    assert len(ours) == 1 and "7 packets dropped" in ours[0] and theirs == ours
    # (a pcap whose header says snaplen 40 and whose records hold the whole SYN)
    pcap = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 40, 1) + b"".join(
        struct.pack("<IIII", 1000 + k, 0, len(SYN), len(SYN)) + SYN for k in range(2))
    (tmp_path / "snap.pcap").write_bytes(pcap)
    ours = [w for w in analyze_file(tmp_path / "snap.pcap", RULES).warnings if "snaplen 40" in w]
    theirs = [w for w in analyze_file(tmp_path / "snap.pcap", RULES, engine="tshark").warnings if "snaplen 40" in w]
    assert ours == ["snap.pcap: 2 records longer than the header's snaplen 40 (kept)"] and theirs == ours
