"""Break-it 29, inputs modelled on public bug reports (scapy, dpkt, Zeek, Wireshark/libpcap):
what tshark's conversations (and Zeek's conn.log) show vs our flows.

- Ethertype 0x8870 ("jumbo frame" LLC, IEEE 802.3 draft; Wireshark's ``ETHERTYPE_JUMBO_LLC``,
  the ethertype scapy gives an ``Ether()/LLC()`` frame): an LLC/SNAP header follows in place of
  an 802.3 length field. Wireshark reads the IP packet inside; we counted every such frame as
  not IP ("no IP packet among its frames") and lost the connection.

Captures are built here with scapy and struct (addresses from the documentation ranges).
"""
from __future__ import annotations

import shutil
import struct

import numpy as np
import pytest

pytest.importorskip("scapy")

from scapy.all import IP, TCP, Ether, Raw  # noqa: E402

import kscc_traffic  # noqa: E402
from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.capture.decode import decode  # noqa: E402
from kscc_traffic.capture.files import read_frames  # noqa: E402
from kscc_traffic.capture.packets import PACKET_COLUMNS  # noqa: E402
from pcapbuild import pcap_bytes  # noqa: E402

RULES = kscc_traffic.load_rules()
TSHARK = shutil.which("tshark")
C, S = "192.0.2.10", "203.0.113.10"


def write(tmp_path, name, frames, linktype=1):
    path = tmp_path / name
    path.write_bytes(pcap_bytes([(1_700_000_000 + k * 0.01, f) for k, f in enumerate(frames)],
                                linktype))
    return path


def decoded(path):
    """Packets of ``path``; the fast and the slow path must agree column for column."""
    fr = read_frames(path)
    p, q = decode(fr), decode(fr, fast=False)
    for k in PACKET_COLUMNS:
        np.testing.assert_array_equal(p.cols[k], q.cols[k], err_msg=k)
    return p


def handshake() -> list:
    """SYN, SYN-ACK, ACK, 5 bytes of data from the client: IP packets, no link layer."""
    return [IP(src=C, dst=S) / TCP(sport=50000, dport=13000, flags="S", seq=100),
            IP(src=S, dst=C) / TCP(sport=13000, dport=50000, flags="SA", seq=500, ack=101),
            IP(src=C, dst=S) / TCP(sport=50000, dport=13000, flags="A", seq=101, ack=501),
            IP(src=C, dst=S) / TCP(sport=50000, dport=13000, flags="PA", seq=101, ack=501)
            / Raw(b"hello")]


# ---------------------------------------------------------------------------- 0x8870 LLC
def jumbo_llc(ip_pkt, oui: bytes = b"\x00\x00\x00", ethertype: int = 0x0800) -> bytes:
    return (bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=0x8870))
            + b"\xaa\xaa\x03" + oui + struct.pack("!H", ethertype) + bytes(ip_pkt))


def test_jumbo_llc_ethertype_carries_ip(tmp_path):
    path = write(tmp_path, "jumbo_llc.pcap", [jumbo_llc(p) for p in handshake()])
    p = decoded(path)
    assert len(p) == 4
    a = analyze_file(path, RULES)
    f = a.flows
    assert len(f) == 1
    r = f.iloc[0]
    assert (r["orig_h"], r["orig_p"], r["resp_h"], r["resp_p"]) == (C, 50000, S, 13000)
    assert (r["orig_pkts"], r["resp_pkts"], r["orig_bytes"], r["history"]) == (3, 1, 5, "ShAD")
    assert not [w for st in a.stats.values() for w in st.warnings if "no IP packet" in w]


def test_jumbo_llc_not_snap_is_not_ip(tmp_path):
    """An 0x8870 frame of another LLC (STP's 42 42 03) stays a non-IP frame, as after an
    802.3 length field."""
    stp = bytes(Ether(type=0x8870)) + b"\x42\x42\x03" + b"\x00" * 35
    path = write(tmp_path, "jumbo_stp.pcap", [stp, jumbo_llc(handshake()[0])])
    assert len(decoded(path)) == 1
    a = analyze_file(path, RULES)
    assert len(a.flows) == 1 and a.flows.iloc[0]["orig_pkts"] == 1
