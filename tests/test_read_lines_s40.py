"""The capture-level warning lines say what happened to all of the frames in plain words: a
capture whose frames are all encrypted or compressed (MPPE in PPTP, 802.11 Protected) is not
called one "on the wrong interface" (the line above says why they were not read), and a count
that is every frame says so ("all 3 frames were cut", not "3 of the 3 frames")."""
from __future__ import annotations

import shutil
import struct

import pytest

from kscc_traffic.analyze import analyze_file
from kscc_traffic.rules import load_rules
from pcapbuild import eth, pcap_bytes, tcp_session
from test_ppp_sealed_s39 import _pptp

RULES = load_rules()
ENGINES = ["builtin"] + (["tshark"] if shutil.which("tshark") else [])
WRONG_IFACE = "a capture on the wrong interface"


def _no_ip_lines(a) -> list[str]:
    return [w for w in a.warnings if "IP packet among" in w]


@pytest.mark.parametrize("engine", ENGINES)
def test_a_capture_of_mppe_only_is_not_blamed_on_the_interface(tmp_path, engine):
    recs = [(1.0 + 0.01 * i, _pptp(b"\x00\xfd", bytes(range(40)) * 2, 7, i + 1, i % 2 == 0)) for i in range(6)]
    path = tmp_path / "vpn.pcap"
    path.write_bytes(pcap_bytes(recs))
    a = analyze_file(path, RULES, engine=engine)
    assert _no_ip_lines(a) == ["vpn.pcap: no readable IP packet among its 6 frames (6 encrypted or compressed, "
                               "as said above): nothing to analyse"]
    assert any("6 PPP frames compressed or encrypted" in w for w in a.warnings)
    assert len(a.flows) == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_sealed_beside_other_non_ip_keeps_the_interface_hint_with_the_count(tmp_path, engine):
    """2 MPPE frames and 3 ARP frames: the ARP frames are still a sign of the wrong interface."""
    from scapy.all import ARP, Ether
    recs = [(1.0 + 0.01 * i, _pptp(b"\x00\xfd", bytes(range(40)), 7, i + 1, True)) for i in range(2)]
    recs += [(2.0 + 0.01 * i, bytes(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst="192.0.2.9"))) for i in range(3)]
    path = tmp_path / "mixed.pcap"
    path.write_bytes(pcap_bytes(recs))
    a = analyze_file(path, RULES, engine=engine)
    assert _no_ip_lines(a) == ["mixed.pcap: no IP packet among its 5 frames (5 non-IP, 2 of them encrypted or "
                               f"compressed): nothing to analyse ({WRONG_IFACE}, or of another link type?)"]


def test_a_capture_of_protected_802_11_only_is_not_blamed_on_the_interface(tmp_path):
    """802.11 data frames with the Protected bit (WPA2 without keys), link type 105: the built-in
    engine counts them in a line of their own, and the no-IP line points to it."""
    from scapy.all import Dot11, Raw
    frame = bytes(Dot11(type=2, subtype=0, FCfield="to_DS+protected", addr1="02:00:00:00:00:01",
                        addr2="02:00:00:00:00:02", addr3="02:00:00:00:00:03") / Raw(bytes(range(64))))
    path = tmp_path / "wpa.pcap"
    path.write_bytes(pcap_bytes([(1.0 + i, frame) for i in range(3)], linktype=105))
    a = analyze_file(path, RULES)
    assert any("3 802.11 data frames were encrypted (Protected)" in w for w in a.warnings)
    assert _no_ip_lines(a) == ["wpa.pcap: no readable IP packet among its 3 frames (3 encrypted or compressed, "
                               "as said above): nothing to analyse"]


def _cut_pcap(path, frames, keep: int) -> None:
    """A pcap (Ethernet) whose records keep the first ``keep`` bytes of each frame, with the
    frame's whole length as the original length."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, keep, 1)]
    for i, f in enumerate(frames):
        out.append(struct.pack("<IIII", 1000 + i, 0, min(keep, len(f)), len(f)) + f[:keep])
    path.write_bytes(b"".join(out))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("n,want", [(1, "the only frame was"), (2, "all 2 frames were")])
def test_a_snaplen_cut_of_every_frame_says_so(tmp_path, engine, n, want):
    sess = [bytes(p) for _, p in tcp_session(("198.18.0.10", 50000), ("203.0.113.10", 23101),
                                             c_data=b"\x16\x03\x01" + bytes(200))]
    data = [f for f in sess if len(f) > 100][:1] * n      # (the ClientHello segment, n copies)
    path = tmp_path / "cut.pcap"
    _cut_pcap(path, data, 80)
    a = analyze_file(path, RULES, engine=engine)
    cut = [w for w in a.warnings if "cut by the snaplen" in w]
    assert cut == [f"cut.pcap: {want} cut by the snaplen (at most 80 bytes kept of a frame): TLS, HTTP and "
                   "DNS checks see only the bytes kept (column payload_cut)"]


def test_some_frames_cut_keep_the_count_of_the_whole():
    from kscc_traffic.capture.stats import _of_frames
    assert [_of_frames(1, 6), _of_frames(2, 6), _of_frames(6, 6), _of_frames(1, 1)] == [
        "1 of the 6 frames was", "2 of the 6 frames were", "all 6 frames were", "the only frame was"]
