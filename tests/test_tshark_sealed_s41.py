"""The tshark engine counts encrypted 802.11 data frames (the Protected bit) and encrypted MACsec
frames (SecTAG E or C bit) as the built-in engine does: a line saying they could not be read, and
a capture of nothing else is not called one "on the wrong interface" (session 41; before, only
the built-in engine counted them and ``--engine tshark`` gave that hint). The stderr lines and
the flows of both engines are the same."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

pytestmark = pytest.mark.skipif(not shutil.which("tshark"), reason="tshark not installed")
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
A = dict(addr1="00:11:22:33:44:55", addr2="00:11:22:33:44:66", addr3="00:11:22:33:44:77")
E = dict(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
PROTECTED = ("decode: {} 802.11 data frame{} encrypted (Protected) and could not be read: the packets {} "
             "carried are missing from the flows (capture on the wired side, or decrypt first: "
             "Wireshark's 802.11 decryption keys, then File > Export)")
MACSEC = ("decode: {} MACsec frame{} encrypted and could not be read: the packets {} carried are missing "
          "from the flows (capture where the traffic is not encrypted: on the host, or on the other side "
          "of the MACsec link)")


def both(path) -> tuple[list[str], bytes]:
    """(the stderr lines, the JSONL) of the two engines, asserted the same."""
    got = []
    for engine in ("builtin", "tshark"):
        p = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", str(path), "-f", "jsonl",
                            "--engine", engine], capture_output=True, timeout=300, cwd=ROOT, env=ENV)
        assert p.returncode in (0, 1), p.stderr
        got.append((p.stderr.decode().splitlines(), p.stdout, p.returncode))
    assert got[0] == got[1]
    return got[0][0], got[0][1]


def _syn():
    from scapy.all import IP, TCP
    return IP(src="192.0.2.1", dst="198.51.100.2") / TCP(sport=1234, dport=13000, flags="S")


def _secure(tci: int, data: bytes) -> bytes:
    """A MACsec SecTAG (TCI/AN ``tci``, SL 0, PN 1, an SCI when the SC bit 0x20 is set), ``data``, the ICV."""
    return bytes([tci, 0]) + (1).to_bytes(4, "big") + (bytes(8) if tci & 0x20 else b"") + data + bytes(16)


@pytest.mark.parametrize("radiotap", [False, True])
def test_protected_802_11_only(tmp_path, radiotap):
    from scapy.all import Dot11, RadioTap, Raw, wrpcap
    frames = [Dot11(type=2, subtype=0, FCfield="to_DS+protected", **A) / Raw(bytes(range(64))) for _ in range(3)]
    path = tmp_path / "wpa.pcap"
    wrpcap(str(path), [RadioTap() / f for f in frames] if radiotap else frames, linktype=127 if radiotap else 105)
    lines, out = both(path)
    assert lines == ["Warning: wpa.pcap: " + PROTECTED.format(3, "s were", "they"),
                     "Warning: wpa.pcap: no readable IP packet among its 3 frames (3 encrypted or compressed, "
                     "as said above): nothing to analyse"]
    assert out == b""


def test_protected_802_11_beside_what_is_not_counted(tmp_path):
    """Protected data and QoS data are counted; a protected null-function frame and a protected
    management frame (802.11w) carry no packet and are not; a plain data frame is read."""
    from scapy.all import LLC, SNAP, Dot11, Dot11QoS, Raw, wrpcap
    body = Raw(bytes(range(48)))
    frames = [Dot11(type=2, subtype=0, FCfield=0x41, **A) / body,
              Dot11(type=2, subtype=8, FCfield=0x41, **A) / Dot11QoS() / body,
              Dot11(type=2, subtype=4, FCfield=0x41, **A),
              Dot11(type=0, subtype=13, FCfield=0x40, **A) / body,
              Dot11(type=2, subtype=0, FCfield=0x01, **A) / LLC() / SNAP() / _syn()]
    path = tmp_path / "mix.pcap"
    wrpcap(str(path), frames, linktype=105)
    lines, out = both(path)
    assert lines == ["Warning: mix.pcap: " + PROTECTED.format(2, "s were", "they")]
    assert out.count(b"\n") == 1 and b'"resp_p":13000' in out


def test_encrypted_macsec_only(tmp_path):
    from scapy.all import Ether, Raw, wrpcap
    path = tmp_path / "macsec.pcap"
    wrpcap(str(path), [Ether(**E, type=0x88E5) / Raw(_secure(0x2C, bytes(range(60)))) for _ in range(4)])
    lines, out = both(path)
    assert lines == ["Warning: macsec.pcap: " + MACSEC.format(4, "s were", "they"),
                     "Warning: macsec.pcap: no readable IP packet among its 4 frames (4 encrypted or compressed, "
                     "as said above): nothing to analyse"]
    assert out == b""


def test_encrypted_macsec_beside_integrity_only_and_plain(tmp_path):
    """E|C with and without an SCI, and after a VLAN tag, are counted; integrity-only MACsec
    (E and C clear) is read, as plain IP is."""
    from scapy.all import UDP, Dot1Q, Ether, IP, Raw, wrpcap
    frames = [Ether(**E, type=0x88E5) / Raw(_secure(0x2C, bytes(40))),
              Ether(**E) / Dot1Q(vlan=5, type=0x88E5) / Raw(_secure(0x0C, bytes(40))),
              Ether(**E, type=0x88E5) / Raw(_secure(0x20, b"\x08\x00" + bytes(_syn()))),
              Ether(**E) / IP(src="192.0.2.1", dst="198.51.100.3") / UDP(sport=5000, dport=53)]
    path = tmp_path / "mix.pcap"
    wrpcap(str(path), frames)
    lines, out = both(path)
    assert lines == ["Warning: mix.pcap: " + MACSEC.format(2, "s were", "they")]
    assert out.count(b"\n") == 2 and b'"resp_p":13000' in out and b'"resp_p":53' in out


def test_one_of_each_said_in_the_singular(tmp_path):
    from scapy.all import Dot11, Ether, Raw, wrpcap
    w, m = tmp_path / "w.pcap", tmp_path / "m.pcap"
    wrpcap(str(w), [Dot11(type=2, subtype=0, FCfield=0x41, **A) / Raw(bytes(30))], linktype=105)
    wrpcap(str(m), [Ether(**E, type=0x88E5) / Raw(_secure(0x08, bytes(30)))])
    assert both(w)[0][0] == "Warning: w.pcap: " + PROTECTED.format(1, " was", "it")
    assert both(m)[0][0] == "Warning: m.pcap: " + MACSEC.format(1, " was", "it")
