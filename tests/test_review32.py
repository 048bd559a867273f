"""Review 32 of session 31's changes: the tshark engine against the builtin decoder on UDP
tunnel ports (the engine reads a datagram as the builtin decoder does, whatever Wireshark's
dissector makes of it)."""
from __future__ import annotations

import shutil

import pytest
from scapy.all import IP, UDP, Ether

import kscc_traffic
from decodecheck import write
from kscc_traffic.analyze import analyze_file

RULES = kscc_traffic.load_rules()
ENGINES = ("builtin", "tshark") if shutil.which("tshark") else ("builtin",)


@pytest.mark.parametrize("engine", ENGINES)
def test_a_datagram_to_4789_shorter_than_a_vxlan_header_is_the_udp_row(tmp_path, engine):
    """7 bytes to UDP 4789, the first with the I flag (0x08 of 0x4f): no 8-byte VXLAN header,
    so the builtin decoder keeps the UDP datagram as the row; Wireshark reads a VXLAN layer all
    the same (on 649be23 the tshark engine counted the frame not IP: no flow)."""
    frames = [bytes(Ether() / IP(src="192.0.2.1", dst="198.51.100.7") / UDP(sport=45039, dport=4789)
                    / bytes.fromhex("4fed4cacf4bddc"))]
    a = analyze_file(write(tmp_path, "short4789.pcap", frames), RULES, engine=engine)
    assert [(r.proto, r.orig_p, r.resp_p, r.orig_bytes) for r in a.flows.itertuples()] == [("udp", 45039, 4789, 7)]
    assert not [w for w in a.warnings if "not IP" in w or "VXLAN" in w], a.warnings


@pytest.mark.parametrize("engine", ENGINES)
def test_a_vxlan_packet_to_4789_still_gives_the_inner_flow(tmp_path, engine):
    """(the check above leaves real VXLAN alone: the inner connection, the tunnel named)"""
    inner = Ether() / IP(src="203.0.113.1", dst="203.0.113.2") / UDP(sport=5353, dport=15000) / b"hello"
    frames = [bytes(Ether() / IP(src="192.0.2.1", dst="198.51.100.7") / UDP(sport=45039, dport=4789)
                    / (bytes.fromhex("0800000000000100") + bytes(inner)))]
    a = analyze_file(write(tmp_path, "vxlan.pcap", frames), RULES, engine=engine)
    assert [(r.proto, r.orig_h, r.resp_p) for r in a.flows.itertuples()] == [("udp", "203.0.113.1", 15000)]
