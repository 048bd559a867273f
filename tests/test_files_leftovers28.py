"""Leftovers of break-it 27 on damaged / odd files (session 28): the reserved link-type bits of a
second pcap header (captures joined with cat), a pcap record's ts_usec of a second or more under
the tshark engine, the tshark engine's copy of the readable records."""
from __future__ import annotations

import shutil
import struct

import pytest

from kscc_traffic.capture.files import read_frames
from kscc_traffic.capture.stats import ReadStats
from test_breakit27_files import T, _eth, _fcs, _padded, _pcap_fcs

tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


def _head(lt: int = 1, magic: int = 0xA1B2C3D4) -> bytes:
    return struct.pack("<IHHiIII", magic, 2, 4, 0, 0, 65535, lt)


def _recs(a: int, b: int, frac=lambda i: 0) -> bytes:
    return b"".join(struct.pack("<IIII", T + i, frac(i), len(_eth(i)), len(_eth(i))) + _eth(i)
                    for i in range(a, b))


def test_reserved_link_bits_of_a_second_pcap_header_warned():
    data = _head(1 | (3 << 16)) + _recs(0, 3) + _head(1 | (5 << 16)) + _recs(3, 6)
    fr = read_frames(data, name="j")
    assert len(fr) == 6 and [int(x) for x in fr.linktype] == [1] * 6
    assert fr.stats.warnings == [
        "j: the pcap header's link-type field 0x00030001 sets reserved bits (0x00030000): read as link type 1",
        "j: a second pcap file header at offset 222 (captures joined with 'cat'? 'mergecap' joins them): "
        "read on under it (link type 1)",
        "j: the link-type field 0x00050001 of the pcap header at offset 222 sets reserved bits "
        "(0x00050000): read as link type 1"]


@tshark
@pytest.mark.parametrize("magic, frac, unit, extra_ns", [
    (0xA1B2C3D4, 1_500_000, "ts_usec ≥ 1000000", 1_500_000_000),
    (0xA1B23C4D, 1_250_000_000, "ts_nsec ≥ 1000000000", 1_250_000_000)], ids=["usec", "nsec"])
def test_tshark_engine_fraction_of_a_second_or_more(tmp_path, magic, frac, unit, extra_ns):
    from kscc_traffic.engines.tshark import read_packets
    p = tmp_path / "frac.pcap"
    p.write_bytes(_head(magic=magic) + _recs(0, 3, lambda i: frac if i == 1 else 0))
    builtin = read_frames(p)
    pk = read_packets(p)
    want = [T * 10**9, (T + 1) * 10**9 + extra_ns, (T + 2) * 10**9]
    assert sorted(int(x) for x in builtin.ts_ns) == sorted(want)
    assert sorted(int(x) for x in pk.cols["ts_ns"]) == sorted(want)     # (tshark's 1.1500000000 read whole)
    line = f"frac.pcap: 1 record with {unit} (kept as read)"
    assert builtin.stats.warnings == [line]
    assert pk.stats.warnings == [line]


@tshark
def test_readable_copy_gives_the_count_beside_the_stats(tmp_path):
    from kscc_traffic.engines.tshark import _readable_copy
    p = tmp_path / "claim.pcap"
    p.write_bytes(_pcap_fcs([_padded(i) for i in range(6)]))
    got = _readable_copy(p, "claim.pcap", 6, tmp_path / "copy.pcapng", fcs_absent=True)
    assert isinstance(got, tuple)
    stats, absent, absent2 = got          # (absent2: those of them claiming a 2-byte FCS)
    assert absent == 6 and absent2 == 0 and stats.records == 6
    # the reader's stats carry their own fields only (no attribute added on the way)
    assert set(vars(stats)) == set(ReadStats.__dataclass_fields__)
    g = tmp_path / "genuine.pcap"
    g.write_bytes(_pcap_fcs([_padded(i) + _fcs(_padded(i)) for i in range(3)]))
    assert _readable_copy(g, "genuine.pcap", 3, tmp_path / "copy2.pcapng", fcs_absent=True) is None
