"""An ERF record whose header flags say "RX error" (bit 4 of the flags byte: the DAG card
received the frame with an error, a CRC error) is a frame the capture marks damaged, as a pcapng
``epb_flags`` CRC error or radiotap's bad-FCS flag: skipped and counted ("flagged by the
capture"), in a pcap of link type ERF and in a pcapng interface of that link type, by both
engines (Wireshark: ``erf.flags.rxe``). Before, its bytes were read as sent."""
from __future__ import annotations

import struct

import pytest

pytest.importorskip("scapy")

from kscc_traffic.capture.files import read_frames  # noqa: E402
from kscc_traffic.capture.frames import LT_DAMAGED  # noqa: E402
from decodecheck import decoded  # noqa: E402
from pcapbuild import pcap_bytes  # noqa: E402
from test_breakit33_files import erf, erf_eth  # noqa: E402
from test_decode_wlan_damage import damaged_lines, needs_tshark, tshark_packets, udp  # noqa: E402

ERF = 197


def rx_error(record: bytes, flags: int = 0x10) -> bytes:
    """``record`` (an ERF record) with ``flags`` set in its flags byte."""
    return record[:9] + bytes([record[9] | flags]) + record[10:]


def _records() -> list[bytes]:
    # (the damaged one's bytes name another port: what a CRC error may have changed)
    return [rx_error(erf(udp(23103), 22)), erf(udp(23101), 22),
            rx_error(erf_eth(udp(23105), False)), erf_eth(udp(23101, b"y" * 40), False),
            rx_error(erf(udp(23107), 22), 0x20)]      # a DS error (the card's own): read


def _pcap(records: list[bytes]) -> bytes:
    return pcap_bytes([(1_700_000_000 + k * 0.01, r) for k, r in enumerate(records)], ERF)


def _pcapng(records: list[bytes]) -> bytes:
    def block(t: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        return struct.pack("<II", t, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))
    out = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)), block(1, struct.pack("<HHI", ERF, 0, 0))]
    for k, r in enumerate(records):
        t = 1_700_000_000_000_000 + k * 10_000
        out.append(block(6, struct.pack("<IIIII", 0, t >> 32, t & 0xFFFFFFFF, len(r), len(r)) + r))
    return b"".join(out)


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_an_erf_rx_error_is_a_damaged_frame(fmt):
    data = (_pcap if fmt == "pcap" else _pcapng)(_records())
    fr = read_frames(data)
    assert fr.linktype.tolist() == [ERF | LT_DAMAGED, ERF, ERF | LT_DAMAGED, ERF, ERF]
    p = decoded(data)
    assert p["dport"].tolist() == [23101, 23101, 23107] and p["frame"].tolist() == [1, 3, 4]
    assert p.stats.malformed == 2
    assert "decode: 2 frames the capture marks as damaged (bad FCS/CRC error) skipped (2 flagged by the capture)" \
        in damaged_lines(p.stats)[0]


def test_a_record_too_short_for_its_flags_is_malformed_as_before():
    data = _pcap([rx_error(erf(udp(23101), 22))[:9], erf(udp(23101), 22)])
    assert read_frames(data).linktype.tolist() == [ERF, ERF]
    p = decoded(data)
    assert p["frame"].tolist() == [1] and p.stats.malformed == 1 and not damaged_lines(p.stats)


@needs_tshark
def test_the_tshark_engine_skips_the_same_erf_frames(tmp_path):
    for name, data in (("erf.pcap", _pcap(_records())), ("erf.pcapng", _pcapng(_records()))):
        ours = decoded(data)
        theirs = tshark_packets(tmp_path, data, name)
        assert theirs["dport"].tolist() == ours["dport"].tolist() == [23101, 23101, 23107], name
        assert theirs["frame"].tolist() == ours["frame"].tolist() == [1, 3, 4], name
