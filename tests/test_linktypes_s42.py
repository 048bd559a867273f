"""Session 42: two more link types in the built-in engine. LINKTYPE_MPLS (219: the frame is an
MPLS label stack, then the packet; read by the slow path's MPLS code, IP or an Ethernet
pseudowire after the bottom label) and DLT 11 (BSD's number for ATM RFC 1483 in older files,
LLC/SNAP then the packet, as LINKTYPE_ATM_RFC1483 100; Wireshark reads 11 so too). Before,
both were "unsupported link type" and every frame was skipped. And LINKTYPE_DOCSIS (143: a cable
modem's or CMTS's capture): the DOCSIS MAC header, its HCS checked, then a packet PDU's Ethernet
frame; other frames are not IP, a header with a wrong HCS is malformed (Wireshark reads nothing
after it either)."""
from __future__ import annotations

import shutil
import struct
import subprocess
import sys

import pytest

pytest.importorskip("scapy")

from scapy.all import IP, TCP, Ether, IPv6, Raw  # noqa: E402
from scapy.contrib.mpls import MPLS  # noqa: E402

import kscc_traffic  # noqa: E402
from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.capture.decode import LINKTYPE_NAMES, SUPPORTED_LINKTYPES  # noqa: E402
from conftest import ROOT  # noqa: E402
from decodecheck import decoded, write  # noqa: E402

RULES = kscc_traffic.load_rules()
TSHARK = shutil.which("tshark")
SNAP_IP = b"\xaa\xaa\x03\x00\x00\x00\x08\x00"          # LLC/SNAP, ethertype IPv4


def _handshake(v6=False):
    """SYN, SYN-ACK, ACK of 192.0.2.10:50000 -> 203.0.113.5:23101 (or over IPv6), IP bytes."""
    c, s = ("2001:db8::10", "2001:db8::5") if v6 else ("192.0.2.10", "203.0.113.5")
    ip = IPv6 if v6 else IP
    return [bytes(ip(src=c, dst=s) / TCP(sport=50000, dport=23101, flags="S", seq=100)),
            bytes(ip(src=s, dst=c) / TCP(sport=23101, dport=50000, flags="SA", seq=900, ack=101)),
            bytes(ip(src=c, dst=s) / TCP(sport=50000, dport=23101, flags="A", seq=101, ack=901))]


def _mpls(pkt: bytes, labels=(16, 17)) -> bytes:
    """``pkt`` under an MPLS label stack (the last label bottom-of-stack)."""
    out = b""
    for k, lab in enumerate(labels):
        out += bytes(MPLS(label=lab, s=int(k == len(labels) - 1), ttl=64))
    return out + pkt


def _one_flow(path):
    flows = analyze_file(path, RULES).flows
    assert len(flows) == 1
    (r,) = flows.itertuples()
    return r


@pytest.mark.parametrize("v6", [False, True])
def test_mpls_link_type_219_is_read(tmp_path, v6):
    path = write(tmp_path, "mpls.pcap", [_mpls(p) for p in _handshake(v6)], linktype=219)
    p = decoded(path)                                  # (fast and slow paths agree)
    assert len(p) == 3 and p.stats.non_ip == 0 and p.stats.malformed == 0
    r = _one_flow(path)
    assert (r.orig_p, r.resp_p, r.proto, r.conn_state, r.history, r.purpose) == (
        50000, 23101, "tcp", "S1", "ShA", "agent_connection")
    assert r.resp_h == ("2001:db8::5" if v6 else "203.0.113.5")


def test_mpls_link_type_219_with_an_ethernet_pseudowire(tmp_path):
    frames = [_mpls(b"\x00\x00\x00\x00" + bytes(Ether(src="00:00:5e:00:53:01", dst="00:00:5e:00:53:02") / Raw(p[0:0]))
                    [:12] + b"\x08\x00" + p, labels=(16,)) for p in _handshake()]
    r = _one_flow(write(tmp_path, "pw.pcap", frames, linktype=219))
    assert (r.resp_p, r.conn_state) == (23101, "S1")


@pytest.mark.parametrize("lt", [11, 100])
def test_atm_rfc1483_as_bsd_dlt_11_reads_as_100(tmp_path, lt):
    path = write(tmp_path, "atm.pcap", [SNAP_IP + p for p in _handshake()], linktype=lt)
    p = decoded(path)
    assert len(p) == 3 and p.stats.non_ip == 0
    r = _one_flow(path)
    assert (r.orig_h, r.resp_h, r.resp_p, r.conn_state) == ("192.0.2.10", "203.0.113.5", 23101, "S1")


def test_the_new_link_types_are_named_and_supported():
    assert {11, 143, 219} <= SUPPORTED_LINKTYPES
    assert LINKTYPE_NAMES[219] == "MPLS" and LINKTYPE_NAMES[143] == "DOCSIS" and LINKTYPE_NAMES[11].startswith("ATM_RFC1483")


@pytest.mark.parametrize("lt, frame", [(219, _mpls(_handshake()[0])), (11, SNAP_IP + _handshake()[0])])
def test_cut_frames_are_counted_never_an_exception(tmp_path, lt, frame):
    cuts = [frame[:n] for n in range(0, 28)]
    path = write(tmp_path, "cut.pcap", cuts + [frame], linktype=lt)
    p = decoded(path)
    assert p.stats.empty_records + p.stats.non_ip + p.stats.malformed + len(p) == len(cuts) + 1
    assert len(p) >= 1                                  # (the whole frame is still read)
    flows = analyze_file(path, RULES).flows
    assert 23101 in set(flows.resp_p)
    out = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", str(path), "-f", "jsonl"],
                         capture_output=True, cwd=ROOT, timeout=120)
    assert out.returncode in (0, 1) and b"Traceback" not in out.stderr
    assert b"unsupported link type" not in out.stderr


@pytest.mark.skipif(TSHARK is None, reason="needs tshark")
def test_dlt_11_gives_the_same_flow_in_both_engines(tmp_path):
    path = write(tmp_path, "atm11.pcap", [SNAP_IP + p for p in _handshake()], linktype=11)
    a = analyze_file(path, RULES).flows
    b = analyze_file(path, RULES, engine="tshark").flows
    cols = ["orig_h", "orig_p", "resp_h", "resp_p", "proto", "conn_state", "history", "orig_pkts", "resp_pkts",
            "purpose", "verdict", "reason"]
    assert a[cols].to_dict("records") == b[cols].to_dict("records")


# --- DOCSIS (143) --------------------------------------------------------------------------------

from kscc_traffic.capture._slowpath import docsis_hcs  # noqa: E402


def _docsis(eth: bytes, ehdr: bytes = b"", crc: bool = True, fc: int = 0x00, hcs_ok: bool = True) -> bytes:
    """A DOCSIS MAC frame holding the Ethernet frame ``eth`` (its CRC after it when ``crc``)."""
    import zlib
    if crc:
        eth += struct.pack("<I", zlib.crc32(eth))
    hdr = bytes([fc | (1 if ehdr else 0), len(ehdr)]) + struct.pack(">H", len(ehdr) + len(eth)) + ehdr
    return hdr + struct.pack("<H", docsis_hcs(hdr) ^ (0 if hcs_ok else 1)) + eth


def _eth(p: bytes) -> bytes:
    return bytes(Ether(src="00:00:5e:00:53:01", dst="00:00:5e:00:53:02", type=0x0800)) + p


def test_docsis_hcs_is_crc16_x25_as_wireshark_checks_it():
    # (Wireshark: "Bad checksum [should be 0x0762]" for the header 00 00 00 3a: the bytes 07 62)
    assert struct.pack("<H", docsis_hcs(bytes.fromhex("0000003a"))) == bytes.fromhex("0762")


def test_docsis_packet_pdus_are_read_and_other_frames_counted(tmp_path):
    syn, synack, ack = _handshake()
    frames = [_docsis(_eth(syn)), _docsis(_eth(synack), ehdr=b"\x13\x01\x02\x03"), _docsis(_eth(ack), crc=False),
              _docsis(_eth(ack), fc=0xC0),                  # MAC management: not IP
              _docsis(_eth(ack), hcs_ok=False)]             # a damaged header: not read
    path = write(tmp_path, "docsis.pcap", frames, linktype=143)
    p = decoded(path)
    assert (len(p), p.stats.non_ip, p.stats.malformed) == (3, 1, 1)
    r = _one_flow(path)
    assert (r.orig_h, r.resp_p, r.conn_state, r.history, r.orig_pkts, r.resp_pkts) == (
        "192.0.2.10", 23101, "S1", "ShA", 2, 1)


def test_docsis_cut_frames_are_counted_never_an_exception(tmp_path):
    frame = _docsis(_eth(_handshake()[0]), ehdr=b"\x13\x01\x02\x03")
    path = write(tmp_path, "cut.pcap", [frame[:n] for n in range(0, 40)] + [frame], linktype=143)
    p = decoded(path)
    assert p.stats.empty_records + p.stats.non_ip + p.stats.malformed + len(p) == 41
    assert 23101 in set(analyze_file(path, RULES).flows.resp_p)


@pytest.mark.skipif(TSHARK is None, reason="needs tshark")
def test_docsis_gives_the_same_flows_in_both_engines(tmp_path):
    syn, synack, ack = _handshake()
    frames = [_docsis(_eth(syn)), _docsis(_eth(synack), ehdr=b"\x13\x01\x02\x03"), _docsis(_eth(ack), crc=False),
              _docsis(_eth(ack), fc=0xC0), _docsis(_eth(ack), hcs_ok=False)]
    path = write(tmp_path, "docsis.pcap", frames, linktype=143)
    a = analyze_file(path, RULES).flows
    b = analyze_file(path, RULES, engine="tshark").flows
    cols = ["orig_h", "orig_p", "resp_h", "resp_p", "proto", "conn_state", "history", "orig_pkts", "resp_pkts",
            "purpose", "verdict", "reason"]
    assert a[cols].to_dict("records") == b[cols].to_dict("records")
    assert len(a) == 1
