"""Cases from a third break-it pass (captures a support engineer brings); each was wrong before
its fix."""
from __future__ import annotations

import pytest

pytest.importorskip("scapy")

from test_newcomer_findings import C, HELLO, S, one, seg  # noqa: E402


def _hello_then(tmp_path, tail, name="c.pcap"):
    hs = [seg(0.0, C, S, "S", 1000, 0), seg(0.01, S, C, "SA", 5000, 1001), seg(0.02, C, S, "A", 1001, 5001)]
    return one(tmp_path, hs + tail, name)


def test_a_client_hello_sent_again_and_never_acknowledged_is_blocked_before_3_s(tmp_path):
    # a filter drops the ClientHello (by SNI): the client sends it 4 times in 2.1 s, the server
    # never acknowledges it; the capture ends at 2.8 s
    hellos = [seg(0.05 + d, C, S, "PA", 1001, 5001, HELLO) for d in (0.0, 0.3, 0.9, 2.1)]
    r = _hello_then(tmp_path, hellos + [seg(2.8, ("192.0.2.10", 45001), ("203.0.113.10", 443), "S", 1, 0)])
    assert (r.verdict, r.reason) == ("blocked", "tls_failed")
    assert r.detail == "ClientHello sent again, never acknowledged by the server"


def test_a_client_hello_acknowledged_but_unanswered_for_under_3_s_is_not_judged(tmp_path):
    # the server acknowledged the ClientHello and had less than 3 s to answer: not a failure
    tail = [seg(0.05, C, S, "PA", 1001, 5001, HELLO), seg(0.06, S, C, "A", 5001, 1001 + len(HELLO)),
            seg(1.05, C, S, "A", 1001 + len(HELLO), 5001)]
    r = _hello_then(tmp_path, tail)
    assert r.verdict == "ok"


def test_a_client_alert_other_than_a_certificate_rejection_stays_tls_failed(tmp_path):
    # handshake_failure (40) from the client: a failed handshake, not an interception
    alert = bytes.fromhex("15030300020228")
    tail = [seg(0.05, C, S, "PA", 1001, 5001, HELLO),
            seg(0.06, S, C, "PA", 5001, 1001 + len(HELLO), bytes.fromhex("160303000402000000")),
            seg(0.07, C, S, "PA", 1001 + len(HELLO), 5010, alert),
            seg(0.08, C, S, "RA", 1001 + len(HELLO) + len(alert), 5010)]
    r = _hello_then(tmp_path, tail)
    assert r.tls_alert == "client: handshake_failure (40)"
    assert (r.verdict, r.reason) == ("blocked", "tls_failed")
    # the same with unknown_ca (48): the client rejected the certificate
    tail[2] = seg(0.07, C, S, "PA", 1001 + len(HELLO), 5010, bytes.fromhex("15030300020230"))
    r = _hello_then(tmp_path, tail, "ca.pcap")
    # (the handshake aborted: the agent cannot connect; newcomer 23 F2)
    assert (r.verdict, r.reason) == ("blocked", "tls_intercepted")
    assert r.detail.startswith("the client rejected the server's certificate (unknown_ca (48))")


@pytest.mark.parametrize("dport, flagged", [(853, False), (22, False), (443, False), (50000, True)])
def test_a_documented_source_port_towards_a_well_known_port_is_not_a_wrong_direction(tmp_path, dport, flagged):
    # outside a PAT firewall: source ports are picked from 1024-65535, some in documented ranges
    src, dst = ("198.51.100.1", 23150), ("203.0.113.8", dport)
    recs = [seg(0.0, src, dst, "S", 1, 0), seg(0.01, dst, src, "SA", 9, 2), seg(0.02, src, dst, "A", 2, 10),
            seg(0.03, src, dst, "FA", 2, 10), seg(0.04, dst, src, "FA", 10, 3), seg(0.05, src, dst, "A", 3, 11)]
    r = one(tmp_path, recs)
    assert (r.reason == "wrong_direction") is flagged, (r.purpose, r.verdict, r.reason)
    if flagged:
        assert (r.purpose, r.verdict) == ("agent_connection", "unexpected")


def test_bytes_come_from_sequence_numbers_as_zeek_counts_them(tmp_path):
    # the server never answers the ClientHello; it sends Windows-style keep-alive probes (1 byte
    # at seq - 1) for 600 s; the client retransmits the hello twice and sends a zero-window probe
    n = len(HELLO)
    tail = [seg(0.05, C, S, "PA", 1001, 5001, HELLO), seg(0.06, S, C, "A", 5001, 1001 + n)]
    tail += [seg(0.5 + k, C, S, "PA", 1001, 5001, HELLO) for k in range(2)]           # retransmissions
    tail += [seg(60.0 * (k + 1), S, C, "A", 5000, 1001 + n, b"\x00") for k in range(10)]  # keep-alives
    tail += [seg(600.5, C, S, "A", 1001 + n - 1, 5001, b"\x00")]                       # client's probe
    r = _hello_then(tmp_path, tail)
    assert (r.orig_bytes, r.resp_bytes) == (n, 0)          # (was 4 * n + 1 and 10)
    assert (r.orig_pkts, r.resp_pkts) == (6, 12)
    assert (r.verdict, r.reason) == ("blocked", "tls_failed")
    assert r.detail.startswith("ClientHello not answered for")
    # the same when read in chunks (the packets the counts read are carried)
    from chunkcmp import assert_same
    from pcapbuild import pcap_bytes
    hs = [seg(0.0, C, S, "S", 1000, 0), seg(0.01, S, C, "SA", 5000, 1001), seg(0.02, C, S, "A", 1001, 5001)]
    p = tmp_path / "k.pcap"
    p.write_bytes(pcap_bytes(hs + tail))
    assert_same(p, [200, 400, 900])


def test_bytes_acknowledged_but_not_captured_count(tmp_path):
    # the capture missed the server's 3000-byte answer; the client's ACK tells it was sent
    n = len(HELLO)
    tail = [seg(0.05, C, S, "PA", 1001, 5001, HELLO), seg(0.2, C, S, "A", 1001 + n, 8001),
            seg(0.3, C, S, "FA", 1001 + n, 8001), seg(0.31, S, C, "FA", 8001, 1002 + n),
            seg(0.32, C, S, "A", 1002 + n, 8002)]
    r = _hello_then(tmp_path, tail)
    assert (r.orig_bytes, r.resp_bytes) == (n, 3000)


def test_a_tls13_client_ending_with_an_encrypted_alert_says_so(tmp_path):
    import ssl
    from test_protocols_tls import record, run_handshake
    cs, ss, err = run_handshake(tmp_path, ssl.TLSVersion.TLSv1_3, "eu1.ksc.kaspersky.com",
                                ["eu1.ksc.kaspersky.com"])
    assert err is None
    hello = cs[:5 + int.from_bytes(cs[3:5], "big")]
    after = record(20, b"\x01", 0x0303) + record(23, b"\x99" * 19, 0x0303)   # CCS, 19-byte alert
    c1, s1 = 1001 + len(hello), 5001 + len(ss)
    tail = [seg(0.05, C, S, "PA", 1001, 5001, hello), seg(0.06, S, C, "PA", 5001, c1, ss),
            seg(0.07, C, S, "PA", c1, s1, after), seg(0.08, C, S, "FA", c1 + len(after), s1),
            seg(0.09, S, C, "FA", s1, c1 + len(after) + 1), seg(0.1, C, S, "A", c1 + len(after) + 1, s1 + 1)]
    r = _hello_then(tmp_path, tail)
    assert r.tls_version == "TLS 1.3" and not r.tls_established
    assert r.tls_alert == "client: encrypted alert (TLS 1.3, before its Finished)"
    assert (r.verdict, r.reason) == ("blocked", "tls_failed")
    # (the certificate the flight held is encrypted: break-it net 33 F3 says so)
    assert r.detail == ("TLS handshake aborted: client: encrypted alert (TLS 1.3, before its Finished): an alert a "
                        "client sends there most often refuses the server's certificate; TLS 1.3 encrypts the "
                        "certificate, so the capture cannot show whose it was: a TLS-inspecting proxy's, whose CA "
                        "the agent does not trust, or the server's own, whose root the agent's device lacks (or its "
                        "system time is wrong)")


def test_a_client_hello_in_two_segments_or_after_a_lost_syn_is_not_sent_again(tmp_path):
    # four client packets without a byte sent twice: not the never-acknowledged rule
    half = len(HELLO) // 2
    two = _hello_then(tmp_path, [seg(0.05, C, S, "PA", 1001, 5001, HELLO[:half]),
                                 seg(0.051, C, S, "PA", 1001 + half, 5001, HELLO[half:])], "two.pcap")
    assert two.orig_pkts == 4 and two.verdict == "ok", two.detail
    lost = one(tmp_path, [seg(0.0, C, S, "S", 1000, 0), seg(1.0, C, S, "S", 1000, 0),
                          seg(1.01, S, C, "SA", 5000, 1001), seg(1.02, C, S, "A", 1001, 5001),
                          seg(1.03, C, S, "PA", 1001, 5001, HELLO)], "lost.pcap")
    assert lost.orig_pkts == 4 and lost.verdict == "ok", lost.detail


def test_bytes_restart_at_a_syn_ack_with_another_isn_and_ignore_ack_zero(tmp_path):
    # a SYN proxy answers first (ISN 5000), the server's SYN-ACK follows with ISN 3e9; the
    # client's ACK of the first one and a stray ACK with ack number 0 count for nothing
    isn = 3_000_000_000
    n = len(HELLO)
    data = b"\x16\x03\x03\x00\x05" + b"s" * 5
    recs = [seg(0.0, C, S, "S", 1000, 0), seg(0.01, S, C, "SA", 5000, 1001), seg(0.02, C, S, "A", 1001, 5001),
            seg(0.5, S, C, "SA", isn, 1001), seg(0.51, C, S, "A", 1001, isn + 1),
            seg(0.52, C, S, "PA", 1001, isn + 1, HELLO), seg(0.53, S, C, "A", isn + 1, 0),
            seg(0.54, C, S, "A", 1001 + n, 0),
            seg(0.55, S, C, "PA", isn + 1, 1001 + n, data),
            seg(0.56, C, S, "FA", 1001 + n, isn + 1 + len(data)), seg(0.57, S, C, "FA", isn + 1 + len(data), 1002 + n),
            seg(0.58, C, S, "A", 1002 + n, isn + 2 + len(data))]
    r = one(tmp_path, recs)
    assert (r.orig_bytes, r.resp_bytes) == (n, len(data))
