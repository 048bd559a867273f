"""Break-it session 63 (breaker63, crafted captures in /tmp/s63/breaker63/cap): the fixes' checks.

#1 a TCP header whose data offset reaches past the IP payload its own IP header gives (a whole
frame, not cut by the snaplen: ``dmg_tcp_doff15_short.pcap``, data offset 60 in a 40-byte
datagram) is malformed: Zeek skips it (``truncated_header``), Wireshark calls it a malformed
packet and leaves it out of its conversation table. It is no SYN sent, and the warning counts it
(with either engine).
#2 a client stream led by empty TLS records of another type than application data (a ClientHello
after ``16 03 01 00 00``) is TLS (client_proto ``tls``), as the record parse that reads its SNI
already took it, not "cleartext, not a TLS ClientHello" (``not_tls``); only when a hello follows
them (Skype's look-alike, an empty handshake record and then no hello, stays ``not_tls``).
"""
from __future__ import annotations

import shutil
import warnings

import pytest
from scapy.layers.inet import IP, TCP

from kscc_traffic import analyze, load_rules
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


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_the_tshark_engine_skips_a_tcp_data_offset_past_the_ip_payload_alike(tmp_path):
    from kscc_traffic.analyze import analyze_file
    good = eth(IP(src=C4, dst=S4) / TCP(sport=50300, dport=23101, flags="S", seq=1))
    path = tmp_path / "doff.pcap"
    path.write_bytes(pcap_bytes([(1000.0, _bogus_offset_syn()), (1001.0, _bogus_offset_syn()), (1005.0, good)]))
    result = analyze_file(path, load_rules(), engine="tshark")
    tcp = result.flows[result.flows.proto == "tcp"]
    assert list(zip(tcp.orig_pkts, tcp.ts)) == [(1, 1005.0)]
    assert "2 frames too short or inconsistent to decode (malformed) skipped" in " ".join(result.warnings)


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


# --------------------------------------------------------------------------- #2 empty records
# A ClientHello after an empty handshake record (16 03 01 00 00: RFC 8446 §5.1 forbids it, OpenSSL
# accepts up to 32, Wireshark dissects it as TLS; ch_zero_rec_first.pcap): the flow's SNI was
# read, the handshake completed, yet the client was said to send "cleartext, not a TLS ClientHello".

def _hello_after_empty_records(n: int) -> bytes:
    from test_breakit_s62 import _hello
    return b"\x16\x03\x01\x00\x00" * n + _hello()


def test_a_hello_after_an_empty_handshake_record_is_tls(tmp_path, monkeypatch):
    import test_breakit_s62 as s62
    plain = s62._hello
    monkeypatch.setattr(s62, "_hello", lambda sni=s62.NAME: b"\x16\x03\x01\x00\x00" + plain(sni))
    path = tmp_path / "empty.pcap"
    path.write_bytes(pcap_bytes(s62._session((C4, 50500), (S4, 23101), 1000.0)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        flows = analyze(path)
    row = flows.iloc[0]
    assert (row.client_proto, row.sni, row.verdict, row.reason) == ("tls", "eu1.ksc.kaspersky.com", "ok", "")


def test_empty_records_before_a_record_scalar_and_batch_agree():
    from kscc_traffic.protocols import tls, tls_batch
    app0 = b"\x17\x03\x03\x00\x00"
    streams = [_hello_after_empty_records(n) for n in (0, 1, 2, 32, 33)] + [
        b"\x16\x03\x01\x00\x00", b"\x16\x03\x01\x00\x00GET / HTTP/1.1\r\n", b"\x15\x03\x03\x00\x00" + app0,
        b"\x16\x03\x01\x00\x00\x80\x2e\x01\x03\x01", b"\x14\x03\x03\x00\x00\x16\x03\x03\xff\xff",
        # Skype's look-alike (public corpus skype_many-flows.pcap): an empty handshake record, then
        # a handshake record that is no hello (type 0x42); cut before the type byte; a ServerHello
        b"\x16\x03\x01\x00\x00\x16\x03\x01\x00\xeb\x42\xcd\xef", b"\x16\x03\x01\x00\x00\x16\x03\x01\x00\xeb",
        b"\x16\x03\x03\x00\x00\x16\x03\x03\x00\x50\x02\x00"]
    want = [True, True, True, True, False, False, False, False, False, False, False, False, True]
    assert [tls.looks_like_tls(s) for s in streams] == want
    assert tls_batch.looks_like_tls_many(streams).tolist() == want
