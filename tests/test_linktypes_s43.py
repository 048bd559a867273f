"""Session 43: LINKTYPE_JUNIPER_ETHER (178), what a Juniper router or SRX firewall writes
(``monitor traffic interface … write-file``). Each frame starts with Juniper's header, read as
Wireshark's packet-juniper.c reads it: the magic ``MGC``, a flags byte (0x80: extension TLVs
follow, their total length in 2 bytes; 0x02: no link header), then the Ethernet frame, or,
without link header, a little-endian protocol number and the packet (IP, MPLS, Ethernet). A
frame without the magic is Ethernet from its first byte (older JUNOS wrote none). Before, every
frame of this link type was skipped as unsupported."""
from __future__ import annotations

import shutil
import struct
import subprocess
import sys

import pytest

pytest.importorskip("scapy")

from scapy.all import Ether  # noqa: E402
from scapy.contrib.mpls import MPLS  # noqa: E402

import kscc_traffic  # noqa: E402
from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.capture.decode import LINKTYPE_NAMES, SUPPORTED_LINKTYPES  # noqa: E402
from conftest import ROOT  # noqa: E402
from decodecheck import decoded, write  # noqa: E402
from test_linktypes_s42 import _handshake  # noqa: E402  (SYN, SYN-ACK, ACK to 23101, IP bytes)

RULES = kscc_traffic.load_rules()
TSHARK = shutil.which("tshark")
COLS = ["orig_h", "orig_p", "resp_h", "resp_p", "proto", "conn_state", "history", "orig_pkts", "resp_pkts",
        "purpose", "verdict"]
#: two extension TLVs (interface index 7, logical interface 9; little-endian below type 128)
TLVS = bytes([1, 4]) + struct.pack("<I", 7) + bytes([4, 4]) + struct.pack("<I", 9)


def _eth(p: bytes, v6=False) -> bytes:
    return bytes(Ether(src="00:00:5e:00:53:01", dst="00:00:5e:00:53:02", type=0x86DD if v6 else 0x0800)) + p


def _no_l2(proto: int, p: bytes, ext: bool = False) -> bytes:
    """A Juniper frame without link header: protocol number ``proto`` (little-endian), then ``p``."""
    head = b"MGC\x82" + struct.pack(">H", len(TLVS)) + TLVS if ext else b"MGC\x02"
    return head + struct.pack("<I", proto) + p


#: name -> (frames of the handshake, IPv6): each read as one S1 connection to 23101
CASES = {
    "ethernet": (lambda: [b"MGC\x01" + _eth(p) for p in _handshake()], False),
    "ethernet, extension TLVs": (lambda: [b"MGC\x81" + struct.pack(">H", len(TLVS)) + TLVS + _eth(p)
                                          for p in _handshake()], False),
    "ethernet, IPv6": (lambda: [b"MGC\x00" + _eth(p, True) for p in _handshake(True)], True),
    "no link header, IPv4": (lambda: [_no_l2(2, p) for p in _handshake()], False),
    "no link header, IPv6": (lambda: [_no_l2(6, p) for p in _handshake(True)], True),
    "no link header, extension TLVs": (lambda: [_no_l2(2, p, ext=True) for p in _handshake()], False),
    "no link header, MPLS": (lambda: [_no_l2(5, bytes(MPLS(label=16, s=1, ttl=64)) + p) for p in _handshake()], False),
    "no link header, Ethernet": (lambda: [_no_l2(204, _eth(p)) for p in _handshake()], False),
    "no magic (older JUNOS): Ethernet": (lambda: [_eth(p) for p in _handshake()], False),
}


@pytest.mark.parametrize("case", list(CASES))
def test_juniper_ether_frames_are_read(tmp_path, case):
    make, v6 = CASES[case]
    path = write(tmp_path, "juniper.pcap", make(), linktype=178)
    p = decoded(path)                                  # (fast and slow paths agree)
    assert (len(p), p.stats.non_ip, p.stats.malformed) == (3, 0, 0)
    flows = analyze_file(path, RULES).flows
    assert len(flows) == 1
    (r,) = flows.itertuples()
    assert (r.orig_p, r.resp_p, r.conn_state, r.history, r.orig_pkts, r.resp_pkts, r.purpose) == (
        50000, 23101, "S1", "ShA", 2, 1, "agent_connection")
    assert r.resp_h == ("2001:db8::5" if v6 else "203.0.113.5")


def test_juniper_ether_is_named_and_supported():
    assert 178 in SUPPORTED_LINKTYPES and LINKTYPE_NAMES[178] == "JUNIPER_ETHER"


def test_a_protocol_that_is_no_ip_is_counted_not_read(tmp_path):
    # (10: CLNP, an OSI packet; 99: no protocol Juniper defines)
    frames = [_no_l2(10, _handshake()[0]), _no_l2(99, _handshake()[0]), _no_l2(2, _handshake()[0])]
    p = decoded(write(tmp_path, "j.pcap", frames, linktype=178))
    assert (len(p), p.stats.non_ip, p.stats.malformed) == (1, 2, 0)


def test_cut_frames_are_counted_never_an_exception(tmp_path):
    frame = b"MGC\x83" + struct.pack(">H", len(TLVS)) + TLVS + struct.pack("<I", 2) + _handshake()[0]
    path = write(tmp_path, "cut.pcap", [frame[:n] for n in range(0, 40)] + [frame], linktype=178)
    p = decoded(path)
    assert p.stats.empty_records + p.stats.non_ip + p.stats.malformed + len(p) == 41
    assert len(p) >= 1
    out = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", str(path), "-f", "jsonl"],
                         capture_output=True, cwd=ROOT, timeout=120)
    assert out.returncode in (0, 1) and b"Traceback" not in out.stderr
    assert b"unsupported link type" not in out.stderr and b"23101" in out.stdout


@pytest.mark.skipif(TSHARK is None, reason="needs tshark")
@pytest.mark.parametrize("case", list(CASES))
def test_both_engines_give_the_same_flows(tmp_path, case):
    path = write(tmp_path, "juniper.pcap", CASES[case][0](), linktype=178)
    a = analyze_file(path, RULES).flows
    b = analyze_file(path, RULES, engine="tshark").flows
    assert len(a) == 1 and a[COLS].to_dict("records") == b[COLS].to_dict("records")
