"""Break-it session 63 (breaker63, crafted captures in /tmp/s63/breaker63/cap): the fixes' checks.

#1 a TCP header whose data offset reaches past the IP payload its own IP header gives (a whole
frame, not cut by the snaplen: ``dmg_tcp_doff15_short.pcap``, data offset 60 in a 40-byte
datagram) is malformed: Zeek skips it (``truncated_header``), Wireshark calls it a malformed
packet and leaves it out of its conversation table. It is no SYN sent, and the warning counts it.
"""
from __future__ import annotations

import warnings

from scapy.layers.inet import IP, TCP

from kscc_traffic import analyze
from pcapbuild import eth, pcap_bytes

C4, S4 = "192.0.2.10", "203.0.113.10"


def _bogus_offset_syn() -> bytes:
    """A SYN whose data offset says 60 bytes in a datagram (IP total length 40) with 20."""
    frame = bytearray(bytes(eth(IP(src=C4, dst=S4) / TCP(sport=50300, dport=23101, flags="S", seq=1))))
    frame[14 + 20 + 12] = 0xF0
    return bytes(frame)


def test_a_tcp_data_offset_past_the_ip_payload_is_malformed_not_a_syn(tmp_path):
    good = eth(IP(src=C4, dst=S4) / TCP(sport=50300, dport=23101, flags="S", seq=1))
    path = tmp_path / "doff.pcap"
    path.write_bytes(pcap_bytes([(1000.0, _bogus_offset_syn()), (1001.0, _bogus_offset_syn()),
                                 (1002.0, _bogus_offset_syn()), (1005.0, good)]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        flows = analyze(path)
    tcp = flows[flows.proto == "tcp"]
    assert len(tcp) == 1
    row = tcp.iloc[0]
    assert (row.orig_pkts, row.history, row.ts) == (1, "S", 1005.0)
    assert row.detail.startswith("SYN sent 1 time, no answer")
    said = " ".join(str(w.message) for w in caught)
    assert "3 frames too short or inconsistent to decode (malformed) skipped" in said


def test_a_first_fragment_too_short_for_its_tcp_options_keeps_its_ports(tmp_path):
    # a first IP fragment (More Fragments) of 24 bytes whose TCP header says 40: never reassembled,
    # it stays a row of its own with its ports (a fragment holds a part of the datagram only)
    syn = IP(src=C4, dst=S4, flags="MF", id=77, proto=6) / TCP(sport=50301, dport=23101, flags="S", seq=1,
                                                                options=[("NOP", None)] * 20)
    raw = bytearray(bytes(syn))
    raw[2:4] = (20 + 24).to_bytes(2, "big")
    raw = raw[:20 + 24]
    raw[10:12] = b"\x00\x00"
    path = tmp_path / "frag.pcap"
    path.write_bytes(pcap_bytes([(1000.0, eth(IP(bytes(raw))))]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flows = analyze(path)
    assert list(flows.resp_p) == [23101]
