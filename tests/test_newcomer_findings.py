"""Cases a newcomer found by trying to break the tool; each was wrong before its fix."""
from __future__ import annotations

import os
import struct
import subprocess
import sys

import pytest

pytest.importorskip("scapy")
from scapy.layers.inet import IP, TCP, UDP  # noqa: E402

from conftest import ROOT  # noqa: E402
from kscc_traffic import CaptureError, analyze  # noqa: E402
from pcapbuild import eth, pcap_bytes, tcp_session  # noqa: E402

C, S = ("192.0.2.10", 45000), ("203.0.113.10", 23101)
HELLO = bytes.fromhex("16030100") + b"\x2f" + bytes.fromhex("0100002b0303") + b"\x11" * 32 + \
    bytes.fromhex("000002130101000000")  # a minimal TLS ClientHello record (no extensions)


def one(tmp_path, records, name="c.pcap"):
    p = tmp_path / name
    p.write_bytes(pcap_bytes(records))
    f = analyze(p)
    return f[f.proto == "tcp"].iloc[0] if (f.proto == "tcp").any() else f.iloc[0]


def seg(t, src, dst, flags, seq, ack, data=b""):
    return (t, eth(IP(src=src[0], dst=dst[0]) / TCP(sport=src[1], dport=dst[1], flags=flags, seq=seq, ack=ack) / data))


def test_an_encrypted_alert_mid_session_is_not_a_failed_handshake(tmp_path):
    # capture starts mid-session: the server's encrypted close_notify (type 21, 22 bytes), FINs
    alert = bytes.fromhex("1503030016") + bytes(range(22))
    r = one(tmp_path, [seg(0.0, S, C, "PA", 100, 5, alert), seg(0.01, C, S, "FA", 5, 127),
                       seg(0.02, S, C, "FA", 127, 6)])
    assert (r.verdict, r.reason, r.tls_alert) == ("ok", "partial", "")


def test_a_client_hello_never_answered_is_blocked(tmp_path):
    hs = tcp_session(C, S, t0=0.0, close=False)
    hellos = [seg(0.05 + k, C, S, "PA", 1001, 5001, HELLO) for k in range(5)]  # retransmitted, silence
    r = one(tmp_path, hs + hellos)
    assert (r.conn_state, r.verdict, r.reason) == ("S1", "blocked", "tls_failed")
    # (sent again and never acknowledged by the server, which had answered the SYN: said so since
    # break-it 31 F5, a path-MTU black hole's sign; was "ClientHello not answered for 4.0 s")
    assert "ClientHello sent again, never acknowledged by the server" in r.detail


def test_someone_elses_server_on_443_is_not_a_blocked_ksc_purpose(tmp_path):
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    dns = [(0.0, eth(IP(src="192.0.2.10", dst="203.0.113.53") / UDP(sport=5000, dport=53)
                     / DNS(id=1, qd=DNSQR(qname="accounts.google.com")))),
           (0.01, eth(IP(src="203.0.113.53", dst="192.0.2.10") / UDP(sport=53, dport=5000)
                      / DNS(id=1, qr=1, qd=DNSQR(qname="accounts.google.com"),
                            an=DNSRR(rrname="accounts.google.com", rdata="203.0.113.99"))))]
    syns = [seg(0.1 + k, ("192.0.2.10", 40000), ("203.0.113.99", 443), "S", 7, 0) for k in range(3)]
    r = one(tmp_path, dns + syns)
    assert (r.purpose, r.verdict, r.reason, r.server_name) == ("discovery", "unexpected", "host_mismatch",
                                                               "accounts.google.com")


def test_a_lost_syn_ack_does_not_make_an_answered_connection_no_answer(tmp_path):
    recs = [seg(0.0, C, S, "S", 1000, 0), seg(0.02, C, S, "A", 1001, 5001),
            seg(0.03, C, S, "PA", 1001, 5001, HELLO), seg(0.04, S, C, "PA", 5001, 1053, b"\x16\x03\x03\x00\x01\x02"),
            seg(0.05, C, S, "FA", 1053, 5007), seg(0.06, S, C, "FA", 5007, 1054)]
    r = one(tmp_path, recs)
    assert r.resp_pkts == 2
    assert r.reason != "no_answer"


def test_x_255_without_a_link_layer_broadcast_is_unicast(tmp_path):
    recs = [(0.0 + k, eth(IP(src="198.18.0.10", dst="198.18.1.255") / UDP(sport=40000, dport=15111) / b"q"))
            for k in range(3)]
    r = one(tmp_path, recs)
    assert (r.cast, r.purpose, r.verdict, r.reason) == ("unicast", "dp_ksn_proxy_udp", "blocked", "no_answer")


def test_icmp_flows_are_oth_like_zeek(tmp_path):
    from scapy.layers.inet import ICMP
    r = one(tmp_path, [(0.0, eth(IP(src="192.0.2.10", dst="203.0.113.1") / ICMP(type=8)))])
    assert (r.proto, r.conn_state) == ("icmp", "OTH")


def test_devices_and_non_captures_are_refused_before_reading(tmp_path):
    with pytest.raises(CaptureError, match="not a regular file"):
        analyze("/dev/zero")
    text = tmp_path / "notes.pcap"
    text.write_text("just text\n" * 1000)
    with pytest.raises(CaptureError, match="notes.pcap.*not a pcap"):
        analyze(text)
    with pytest.raises(CaptureError, match="no such file"):
        analyze(tmp_path / "missing.pcap")


@pytest.mark.parametrize("target,expect", [("nodir/out.txt", "does not exist"), (".", "is a directory"),
                                           ("/dev/full", "cannot write")])
def test_output_that_cannot_be_written_exits_2_in_one_line(tmp_path, target, expect):
    if target == "/dev/full" and not os.path.exists("/dev/full"):
        pytest.skip("/dev/full not present")
    out = target if target.startswith("/") else str(tmp_path / target)
    p = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze",
                        str(ROOT / "samples" / "captures" / "blocked_agent.pcap"), "-o", out],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and expect in lines[0], p.stderr


def test_the_python_api_warns_about_skipped_parts(tmp_path):
    from kscc_traffic import CaptureWarning
    data = pcap_bytes(tcp_session(C, S))
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[:-10])  # the last record is cut short
    with pytest.warns(CaptureWarning, match="cut mid-record"):
        f = analyze(cut)
    assert len(f) == 1
