"""Link types of Ethernet frames behind a capture device's or a switch chip's own header:
Hilscher netANALYZER (240), its transparent mode (241: preamble and SFD before the frame), and the
Linux DSA switch tags (281 DSA_TAG_BRCM, 282 DSA_TAG_BRCM_PREPEND, 284 DSA_TAG_DSA, 285
DSA_TAG_EDSA: a capture on an OpenWrt router's conduit interface); and Cisco HDLC and Frame Relay
with a direction byte before them (205, 206). Before session 47 each was "N frames of
unsupported link type … skipped", nothing analysed.

Each case: a whole TLS connection built with scapy, wrapped, written as a pcap; its one flow checked
value by value (5-tuple, packets and bytes each way, SNI, SF), the fast and the slow path equal
(``decoded``), and with tshark installed the tshark engine equal where Wireshark reads the link
type (it shows netANALYZER transparent-mode frames as raw data, and tshark 4.0 reads neither the
DSA types nor 205/206 in a pcap file: "network type 205 unknown or unsupported").
"""
from __future__ import annotations

import shutil
import struct
import subprocess

import pytest

pytest.importorskip("scapy")

from scapy.all import IP, TCP, Dot1Q, Ether  # noqa: E402

from test_decode_more_encaps import (  # noqa: E402
    CLIENT, ETH, FLOW_KEYS, check_tls_flow, conversation, decoded, only_flow, write)

TSHARK = shutil.which("tshark")


def ether(ip: bytes, v6: bool, dst: str = ETH.dst) -> bytes:
    return bytes(Ether(src=ETH.src, dst=dst, type=0x86DD if v6 else 0x0800)) + ip


def fcs(frame: bytes) -> bytes:
    import zlib
    return frame + struct.pack("<I", zlib.crc32(frame))


def netana(frame: bytes, status: int = 0, transparent: bool = False, version: int = 1,
           kind: int = 0, preamble: bytes = b"\x55" * 7 + b"\xd5") -> bytes:
    """A netANALYZER record: the status word (error bits, transparent bit, version, port 0, the
    frame's length, version 2's type), then (transparent mode) the preamble and SFD, the frame
    and its FCS."""
    body = fcs(frame)
    word = status | (0x200 if transparent else 0) | version << 10 | (len(body) & 0xFFF) << 16 | kind << 28
    return struct.pack("<I", word) + (preamble if transparent else b"") + body


def brcm(frame: bytes) -> bytes:          # the tag between the source address and the type
    return frame[:12] + b"\x20\x00\x00\x01" + frame[12:]


def marvell(frame: bytes, tagged_vid: int | None = None, edsa: bool = False) -> bytes:
    # TO_CPU (code 0), source device 0, source port 3; Tagged bit with the VID when given
    b0 = 0x20 if tagged_vid is not None else 0x00
    tag = bytes([b0, 3 << 3]) + struct.pack(">H", tagged_vid or 0)
    return frame[:12] + (b"\xda\xda\x00\x00" if edsa else b"") + tag + frame[12:]


CASES = {
    "netanalyzer": (240, lambda p, v6: netana(ether(p, v6)), True),
    "netanalyzer-v2": (240, lambda p, v6: netana(ether(p, v6), version=2), True),
    "netanalyzer-too-long-and-preamble-flags": (240, lambda p, v6: netana(ether(p, v6), status=0xC8), True),
    "netanalyzer-transparent": (241, lambda p, v6: netana(ether(p, v6), transparent=True), False),
    "netanalyzer-transparent-short-preamble": (
        241, lambda p, v6: netana(ether(p, v6), status=0x40, transparent=True, preamble=b"\x55\x55\xd5"), False),
    "dsa-brcm": (281, lambda p, v6: brcm(ether(p, v6)), False),
    "dsa-brcm-prepend": (282, lambda p, v6: b"\x20\x00\x00\x01" + ether(p, v6), False),
    "dsa-marvell": (284, lambda p, v6: marvell(ether(p, v6)), False),
    "dsa-marvell-edsa": (285, lambda p, v6: marvell(ether(p, v6), edsa=True), False),
    # a direction byte (0 sent, 1 received: either is read) before Cisco HDLC / Frame Relay
    "c_hdlc_with_dir": (205, lambda p, v6: b"\x01\x0f\x00" + (b"\x86\xdd" if v6 else b"\x08\x00") + p, False),
    "frelay_with_dir": (206, lambda p, v6: b"\x00\x04\x01\x03" + (b"\x8e" if v6 else b"\xcc") + p, False),
}


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_tls_flow_behind_the_device_header(tmp_path, case, v6, monkeypatch):
    lt, wrap, wireshark_reads = CASES[case]
    pkts = conversation(v6)
    path = write(tmp_path, f"{case}.pcap", [wrap(bytes(p), v6) for _, p in pkts], lt)
    if not wireshark_reads:
        import test_decode_more_encaps
        monkeypatch.setattr(test_decode_more_encaps, "TSHARK", None)
    r = check_tls_flow(path, pkts, v6=v6)
    assert r["purpose"] == "agent_connection" and r["vlan"] == 0
    p = decoded(path)
    assert not any("unsupported link type" in w for w in p.stats.warnings)
    assert p.cols["ip_len"].tolist() == [len(bytes(x)) for _, x in pkts]   # the FCS is not IP bytes


@pytest.mark.skipif(not TSHARK, reason="tshark is not installed")
def test_wireshark_reads_no_packet_in_a_transparent_mode_frame(tmp_path):
    """Why the transparent-mode cases are not compared with the tshark engine: Wireshark's
    packet-netanalyzer.c hands such a frame to the data dissector (checked here, so that the
    day it reads them the comparison is added)."""
    pkts = conversation()
    path = write(tmp_path, "t.pcap", [netana(ether(bytes(p), False), transparent=True) for _, p in pkts], 241)
    out = subprocess.run([TSHARK, "-r", str(path), "-T", "fields", "-e", "ip.src"], capture_output=True,
                         text=True, timeout=60).stdout
    assert out.split() == []


def test_marvell_tagged_bit_gives_the_frames_vlan(tmp_path):
    """The Tagged bit: the switch took the 802.1Q tag off and keeps its VID in the DSA tag; the
    flow's VLAN is that VID, both ways, as with the 802.1Q tag itself."""
    pkts = conversation()
    dot1q = decoded(write(tmp_path, "q.pcap", [bytes(ETH / Dot1Q(vlan=42) / p) for _, p in pkts], 1))
    assert set(dot1q.cols["vlan"].tolist()) != {0}
    for lt, edsa in ((284, False), (285, True)):
        path = write(tmp_path, f"v{lt}.pcap", [marvell(ether(bytes(p), False), 42, edsa) for _, p in pkts], lt)
        assert decoded(path).cols["vlan"].tolist() == dot1q.cols["vlan"].tolist()
        r = only_flow(path)
        assert (r["vlan"], r["orig_pkts"], r["resp_pkts"], r["conn_state"]) == (42, 5, 3, "SF")


def test_damaged_gpio_and_other_records_beside_a_good_one(tmp_path):
    """A netANALYZER frame whose status says FCS error, MII RX_ER, alignment, SFD or runt is
    damaged (its bytes are not what was sent: skipped, in ``malformed``, named in the damaged
    warning); a GPIO event and a version-2 buffer-state or time-tick entry are not IP; a cut
    header or a transparent frame without its SFD is malformed. The good frame is analysed."""
    ip = bytes(IP(src=CLIENT, dst="203.0.113.10") / TCP(sport=50000, dport=13000, flags="S"))
    fr = ether(ip, False)
    cases = {240: [("malformed", netana(fr, status=0x04)), ("malformed", netana(fr, status=0x01)),
                   ("malformed", netana(fr, status=0x02)), ("malformed", netana(fr, status=0x10)),
                   ("malformed", netana(fr, status=0x20)),
                   ("non_ip", struct.pack("<I", 0x100 | 1 << 10) + bytes(20)),
                   ("non_ip", netana(b"\x01" * 20, version=2, kind=2)),
                   ("non_ip", netana(b"\x01" * 20, version=2, kind=3)),
                   ("malformed", b"\x00\x04")],
             241: [("malformed", netana(fr, transparent=True, preamble=b"\x55" * 7)),
                   ("malformed", netana(fr, transparent=True, preamble=b"\x55" * 7 + b"\xd4"))],
             281: [("malformed", brcm(fr)[:16])],
             284: [("malformed", marvell(fr)[:17])],
             285: [("malformed", marvell(fr, edsa=True)[:21])]}
    good = {240: netana(fr), 241: netana(fr, transparent=True), 281: brcm(fr), 284: marvell(fr),
            285: marvell(fr, edsa=True)}
    for lt, bad in cases.items():
        for counter, frame in bad:
            p = decoded(write(tmp_path, f"bad{lt}.pcap", [frame, good[lt]], lt))
            assert len(p) == 1 and p.cols["dport"].tolist() == [13000], (lt, counter, frame[:8].hex())
            assert getattr(p.stats, counter) == 1, (lt, counter, frame[:8].hex())
    p = decoded(write(tmp_path, "fcs.pcap", [netana(fr, status=0x04), good[240]], 240))
    assert any("damaged" in w for w in p.stats.warnings), p.stats.warnings


def test_link_layer_broadcast_behind_the_tags(tmp_path):
    ip = bytes(IP(src=CLIENT, dst="10.0.0.255") / TCP(sport=50000, dport=13000, flags="S"))
    bc, uc = ether(ip, False, dst="ff:ff:ff:ff:ff:ff"), ether(ip, False)
    for lt, wrap in ((240, netana), (281, brcm), (282, lambda f: b"\x00" * 4 + f), (284, marvell),
                     (285, lambda f: marvell(f, edsa=True))):
        p = decoded(write(tmp_path, f"b{lt}.pcap", [wrap(bc), wrap(uc)], lt))
        assert p.cols["l2_bcast"].tolist() == [True, False], lt
