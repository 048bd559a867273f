"""Session 55: leftovers of the session 54 break-it passes and this session's findings."""
from __future__ import annotations

import pytest

pytest.importorskip("scapy")

from kscc_traffic import load_rules  # noqa: E402
from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.report import readiness  # noqa: E402
from pcapbuild import pcap_bytes, tcp_session, udp  # noqa: E402

RULES = load_rules()


def _write(tmp_path, recs, name="c.pcap"):
    path = tmp_path / name
    path.write_bytes(pcap_bytes(sorted(recs, key=lambda r: r[0])))
    return str(path)


def _ksc(t0=1001.0):
    from test_newcomer30_findings import _hello
    return tcp_session(("192.0.2.10", 50100), ("203.0.113.10", 23101), t0=t0, c_data=_hello(b"eu1.ksc.kaspersky.com"))


@pytest.mark.parametrize("group,snooping", [("ff05::1:2", "(MLD snooping)"), ("239.255.1.2", "(IGMP snooping)")])
def test_multicast_seen_one_way_names_the_family_snooping(tmp_path, group, snooping):
    # (s54 v6 #7: an IPv6 distribution point's multicast seen one-way was advised IGMP snooping)
    src = "2001:db8::5" if ":" in group else "192.0.2.5"
    recs = [udp((src, 15001), (group, 15001), b"k" * 60, t=1000 + i) for i in range(3)] + _ksc()
    flows = analyze_file(_write(tmp_path, recs), RULES).flows
    row = readiness(flows, RULES).set_index("purpose").loc["dp_multicast"]
    assert row.status == "seen one-way"
    assert row.fix.endswith(f"let the multicast cross the switches {snooping}")

def test_mixed_families_name_both(tmp_path):
    recs = ([udp(("2001:db8::5", 15001), ("ff05::1:2", 15001), b"k" * 60, t=1000)]
            + [udp(("192.0.2.5", 15001), ("239.255.1.2", 15001), b"k" * 60, t=1000.5)] + _ksc())
    flows = analyze_file(_write(tmp_path, recs), RULES).flows
    row = readiness(flows, RULES).set_index("purpose").loc["dp_multicast"]
    assert row.fix.endswith("(IGMP/MLD snooping)")


def test_a_certificate_check_reset_unanswered_is_a_filters_refusal(tmp_path):
    # (s55 tls #3: the OCSP request reset unanswered was advised "allow outbound HTTP (TCP 80)",
    # though the handshake showed the port open)
    from scapy.all import IP, TCP, Ether, Raw
    agent, ocsp = "192.0.2.10", "198.51.100.80"
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    c = lambda **kw: eth / IP(src=agent, dst=ocsp, ttl=64) / TCP(sport=50300, dport=80, **kw)  # noqa: E731
    s = lambda ttl=52, **kw: eth / IP(src=ocsp, dst=agent, ttl=ttl) / TCP(sport=80, dport=50300, **kw)  # noqa: E731
    req = b"POST / HTTP/1.1\r\nHost: ocsp.digicert.com\r\nContent-Type: application/ocsp-request\r\n\r\n"
    recs = [(1000.0, c(flags="S", seq=100)), (1000.01, s(flags="SA", seq=900, ack=101)),
            (1000.02, c(flags="A", seq=101, ack=901)), (1000.03, c(flags="PA", seq=101, ack=901) / Raw(req)),
            (1000.04, s(flags="R", seq=901, ttl=62))] + _ksc()
    flows = analyze_file(_write(tmp_path, recs), RULES).flows
    row = flows[flows.resp_p == 80].iloc[0]
    assert (row.purpose, row.verdict, row.reason) == ("cert_check", "blocked", "rejected")
    assert row.detail.startswith(f"the server {ocsp}:80 reset the connection without answering the request for "
                                 "http://ocsp.digicert.com:80")
    fix = readiness(flows, RULES).set_index("purpose").loc["cert_check"].fix
    assert fix.startswith("this connection: the SYN on TCP 80 was answered by a SYN-ACK (the port is open: nothing to "
                          "open in the firewall)")
    assert "for one that refuses the request by its content or completes the handshake itself and gives up (its log " \
           "names the rule): allow *.digicert.com in its URL filter" in fix
    assert "allow outbound HTTP (TCP 80)" not in fix


def test_an_ech_outer_name_is_no_other_server_address(tmp_path):
    # (s55 tls #4: the detail said the outer name may not be the name asked, the advice said the
    # agent was configured with that name as its Administration Server)
    from test_breakit30_net import _conn, _dns, _hello
    recs = _dns(99.0, "eu1.ksc.kaspersky.com") + _conn(23101, _hello("cloudflare-ech.com"))
    flows = analyze_file(_write(tmp_path, recs), RULES).flows
    row = flows[flows.proto == "tcp"].iloc[0]
    assert (row.verdict, row.reason) == ("unexpected", "host_mismatch")
    fix = readiness(flows, RULES).set_index("purpose").loc["agent_connection"].fix
    assert "configured with another Administration Server address" not in fix
    assert fix.startswith("this flow on TCP 23100-23199 went to a name outside *.ksc.kaspersky.com")
    # (without the DNS name under the mask, the outer name is all there is: told as before)
    flows = analyze_file(_write(tmp_path, _conn(23101, _hello("cloudflare-ech.com")), "b.pcap"), RULES).flows
    fix = readiness(flows, RULES).set_index("purpose").loc["agent_connection"].fix
    assert fix.startswith("the agent is configured with another Administration Server address (cloudflare-ech.com")


def test_resets_injected_both_ways_end_a_working_session(tmp_path):
    # (s55 tls #2: a device on the path reset a working agent session in both names: ok and
    # verified, the reset hint only in the JSON detail)
    from scapy.all import IP, TCP, Ether, Raw
    from test_newcomer30_findings import _hello
    agent, cloud = "192.0.2.10", "203.0.113.10"
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    c = lambda ttl=64, **kw: eth / IP(src=agent, dst=cloud, ttl=ttl) / TCP(sport=50400, dport=23101, **kw)  # noqa: E731
    s = lambda ttl=52, **kw: eth / IP(src=cloud, dst=agent, ttl=ttl) / TCP(sport=23101, dport=50400, **kw)  # noqa: E731
    hello = _hello(b"eu1.ksc.kaspersky.com")
    from test_tls_stall import FLIGHT13 as sh
    cs, ss = 101 + len(hello), 901 + len(sh)
    recs = [(1000.0, c(flags="S", seq=100)), (1000.01, s(flags="SA", seq=900, ack=101)),
            (1000.02, c(flags="A", seq=101, ack=901)), (1000.03, c(flags="PA", seq=101, ack=901) / Raw(hello)),
            (1000.05, s(flags="PA", seq=901, ack=cs) / Raw(sh))]
    t = 1000.1
    for i in range(5):
        recs += [(t, c(flags="PA", seq=cs, ack=ss) / Raw(bytes.fromhex("1703030020") + bytes(32))),
                 (t + 0.02, s(flags="PA", seq=ss, ack=cs + 37) / Raw(bytes.fromhex("1703030020") + bytes(32)))]
        cs, ss, t = cs + 37, ss + 37, t + 30
    recs += [(t, c(ttl=250, flags="R", seq=cs)), (t + 0.003, s(ttl=40, flags="R", seq=ss))]
    flows = analyze_file(_write(tmp_path, recs), RULES).flows
    row = flows[flows.resp_p == 23101].iloc[0]
    assert (row.verdict, row.reason) == ("blocked", "rejected")
    assert row.detail.startswith("the connection worked, then a reset in the server's name ended it, sent by a "
                                 "device on the path")


@pytest.mark.parametrize("alert,version,said", [
    ("server: handshake_failure (40)", "", "accepts none of the cipher suites, key-exchange groups or signature"),
    ("server: insufficient_security (71)", "", "accepts none of the cipher suites"),
    ("server: handshake_failure (40)", "TLS 1.2", None),         # after its ServerHello: the exchange's own
    ("client: internal_error (80)", "TLS 1.2", "the client's own TLS stack failed (on the agent's device"),
    ("client: handshake_failure (40)", "", None),
])
def test_what_an_alert_means(alert, version, said):
    # (s55 tls #7: a server's handshake_failure to the ClientHello itself was advised as inspection alone)
    from kscc_traffic.classify import _old_version_note
    got = _old_version_note({"tls_version": version}, alert)
    assert got == alert if said is None else got.startswith(f"{alert}: ") and said in got


def _push_after_idle(tmp_path, reset: str | None):
    # an agent's push channel to its distribution point (TCP 13295): the handshake, some data both
    # ways, 600 s of silence, then the DP's push sent 5 times, never acknowledged (``reset``: then a
    # reset in the agent's name, ``"device"`` with another TTL)
    from scapy.all import IP, TCP, Ether, Raw
    agent, dp = "192.0.2.10", "192.0.2.5"
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    c = lambda ttl=128, **kw: eth / IP(src=agent, dst=dp, ttl=ttl) / TCP(sport=50500, dport=13295, **kw)  # noqa: E731
    s = lambda **kw: eth / IP(src=dp, dst=agent, ttl=128) / TCP(sport=13295, dport=50500, **kw)  # noqa: E731
    recs = [(1000.0, c(flags="S", seq=100)), (1000.01, s(flags="SA", seq=900, ack=101)),
            (1000.02, c(flags="A", seq=101, ack=901)), (1000.03, c(flags="PA", seq=101, ack=901) / Raw(b"a" * 50)),
            (1000.04, s(flags="PA", seq=901, ack=151) / Raw(b"b" * 40)), (1000.05, c(flags="A", seq=151, ack=941))]
    t = 1600.1
    for dt in (0.0, 0.2, 0.6, 1.4, 3.0):
        recs.append((t + dt, s(flags="PA", seq=941, ack=151) / Raw(b"p" * 17)))
    if reset:
        recs.append((t + 3.1, c(ttl=254, flags="R", seq=151)))
    recs.append((t + 6.5, udp(("192.0.2.10", 41000), ("192.0.2.53", 53), b"x" * 30, t=t + 6.5)[1]))
    path = _write(tmp_path, recs)
    from chunkcmp import assert_same
    assert_same(path, [300, 700])          # (the same in small chunks, every column)
    flows = analyze_file(path, RULES).flows
    return flows[(flows.resp_p == 13295) & flows.partial.astype(bool)].iloc[0], flows


@pytest.mark.parametrize("reset,verdict,said", [
    (None, ("blocked", "no_answer,partial"), "was never acknowledged: the connection no longer existed on the way"),
    ("device", ("blocked", "rejected,partial"), "was answered only by a reset in the originator's name"),
])
def test_a_push_after_an_idle_silence_never_taken(tmp_path, reset, verdict, said):
    # (s55 dp #5: the push channel's data after 600 s of silence, never acknowledged: ok/not judged)
    row, flows = _push_after_idle(tmp_path, reset)
    assert (row.verdict, row.reason) == verdict
    assert row.detail.startswith("goes on with the connection of this 5-tuple after 600.1 s") and said in row.detail
    fix = readiness(flows, RULES).set_index("purpose").loc["dp_push"].fix
    assert "a firewall or NAT on the path dropped the idle connection" in fix


def test_synacks_lost_on_the_way_back_are_no_port_to_open(tmp_path):
    # (s55 dp #2: captured on the distribution point, its SYN-ACKs never reached the agent, which
    # kept sending its SYN: the advice was to allow inbound TCP 13000, which the SYNs had passed)
    from scapy.all import IP, TCP, Ether
    agent, dp = "198.51.100.20", "192.0.2.5"
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    recs = []
    for i, t in enumerate((1000.0, 1001.0, 1003.0, 1007.0)):
        recs.append((t, eth / IP(src=agent, dst=dp, ttl=125) / TCP(sport=50600, dport=13000, flags="S", seq=100)))
        recs.append((t + 0.001, eth / IP(src=dp, dst=agent, ttl=128) / TCP(sport=13000, dport=50600, flags="SA",
                                                                           seq=900, ack=101)))
    flows = analyze_file(_write(tmp_path, recs), RULES).flows
    row = flows[flows.resp_p == 13000].iloc[0]
    assert (row.verdict, row.reason) == ("blocked", "no_answer")
    assert row.detail.startswith("the SYN-ACK never reached the originator: it sent its SYN 4 times")
    fix = readiness(flows, RULES).set_index("purpose").loc["dp_agent_connection"].fix
    assert fix.startswith("this connection attempt was answered: the server's SYN-ACKs (in the capture) never "
                          "reached the agent, which sent its SYN again and again: the SYNs got through")
    assert "allow inbound TCP 13000" not in fix


def test_an_overlapping_copy_with_other_bytes_is_told(tmp_path):
    # (s55 tls #5: a later segment starting inside an earlier one, with other bytes: only copies
    # starting at one sequence number were compared, so no note was given)
    from scapy.all import IP, TCP, Ether, Raw
    from test_newcomer30_findings import _hello
    a, b = _hello(b"eu1.ksc.kaspersky.com"), _hello(b"xx1.ksc.evil-host.com")
    assert len(a) == len(b)
    agent, cloud = "192.0.2.10", "203.0.113.10"
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    c = lambda seq, data, ttl=64: eth / IP(src=agent, dst=cloud, ttl=ttl) / TCP(  # noqa: E731
        sport=50700, dport=23101, flags="PA", seq=101 + seq, ack=901) / Raw(data)
    s = lambda **kw: eth / IP(src=cloud, dst=agent, ttl=52) / TCP(sport=23101, dport=50700, **kw)  # noqa: E731
    recs = [(1000.0, eth / IP(src=agent, dst=cloud) / TCP(sport=50700, dport=23101, flags="S", seq=100)),
            (1000.01, s(flags="SA", seq=900, ack=101)),
            (1000.02, eth / IP(src=agent, dst=cloud) / TCP(sport=50700, dport=23101, flags="A", seq=101, ack=901)),
            (1000.03, c(0, a[:60])), (1000.04, c(60, a[60:])), (1000.05, c(40, b[40:], ttl=3)),
            (1000.07, s(flags="A", seq=901, ack=101 + len(a)))]
    flows = analyze_file(_write(tmp_path, recs), RULES).flows
    row = flows[flows.resp_p == 23101].iloc[0]
    assert row.sni == "eu1.ksc.kaspersky.com"
    assert ("two different ClientHellos were sent for the same bytes: the first copy (TTL 64) names "
            "eu1.ksc.kaspersky.com, a later one (TTL 3) xx1.ksc.evil-host.com") in row.detail


def _worked(sport, t0, sttl, end):
    # (an agent's TLS session to 23101 whose server packets come with TTL ``sttl``; ``end`` "F" both
    # close, "R" the server's side resets)
    from scapy.all import IP, TCP, Ether, Raw
    from test_newcomer30_findings import _hello
    from test_tls_stall import FLIGHT13 as sh
    agent, cloud = "192.0.2.10", "203.0.113.10"
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    c = lambda **kw: eth / IP(src=agent, dst=cloud, ttl=64) / TCP(sport=sport, dport=23101, **kw)  # noqa: E731
    s = lambda **kw: eth / IP(src=cloud, dst=agent, ttl=sttl) / TCP(sport=23101, dport=sport, **kw)  # noqa: E731
    hello = _hello(b"eu1.ksc.kaspersky.com")
    cs, ss = 101 + len(hello), 901 + len(sh)
    recs = [(t0, c(flags="S", seq=100)), (t0 + .01, s(flags="SA", seq=900, ack=101)),
            (t0 + .02, c(flags="A", seq=101, ack=901)), (t0 + .03, c(flags="PA", seq=101, ack=901) / Raw(hello)),
            (t0 + .05, s(flags="PA", seq=901, ack=cs) / Raw(sh))]
    t = t0 + .1
    for _ in range(3):
        recs += [(t, c(flags="PA", seq=cs, ack=ss) / Raw(bytes.fromhex("1703030020") + bytes(32))),
                 (t + .02, s(flags="PA", seq=ss, ack=cs + 37) / Raw(bytes.fromhex("1703030020") + bytes(32)))]
        cs, ss, t = cs + 37, ss + 37, t + 5
    if end == "R":
        return recs + [(t, s(flags="R", seq=ss))]
    return recs + [(t, c(flags="FA", seq=cs, ack=ss)), (t + .01, s(flags="FA", seq=ss, ack=cs + 1)),
                   (t + .02, c(flags="A", seq=cs + 1, ack=ss + 1))]


def test_a_device_answering_in_the_servers_place_ending_its_connection_stays_ok(tmp_path):
    # (review s55 #3: the wider reset match also took the "answered in the server's place" hint,
    # making a session a transparent proxy carried and ended blocked)
    flows = analyze_file(_write(tmp_path, _worked(50001, 1000.0, 50, "F") + _worked(50002, 1100.0, 63, "R")),
                         RULES).flows
    row = flows[(flows.resp_p == 23101) & (flows.orig_p == 50002)].iloc[0]
    assert (row.conn_state, row.verdict) == ("RSTR", "ok")
    assert "answered the connection in the server's place" in row.detail


def test_a_certificate_check_reset_before_any_request_names_syn_proxies(tmp_path):
    # (review s55 #2: the reset right after the handshake, before any request, on cert_check)
    from scapy.all import IP, TCP, Ether
    agent, ocsp = "192.0.2.10", "198.51.100.80"
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    c = lambda **kw: eth / IP(src=agent, dst=ocsp) / TCP(sport=50310, dport=80, **kw)  # noqa: E731
    s = lambda **kw: eth / IP(src=ocsp, dst=agent) / TCP(sport=80, dport=50310, **kw)  # noqa: E731
    recs = [(1000.0, c(flags="S", seq=100)), (1000.01, s(flags="SA", seq=900, ack=101)),
            (1000.02, c(flags="A", seq=101, ack=901)), (1000.03, s(flags="R", seq=901))] + _ksc()
    flows = analyze_file(_write(tmp_path, recs), RULES).flows
    row = flows[flows.resp_p == 80].iloc[0]
    assert (row.verdict, row.reason) == ("blocked", "rejected")
    fix = readiness(flows, RULES).set_index("purpose").loc["cert_check"].fix
    assert "completes the handshake itself and gives up" in fix and "allow outbound HTTP" not in fix


def test_a_nameless_hello_refused_names_the_missing_name_first():
    # (fp s55 #4, #7)
    from kscc_traffic.classify import _old_version_note
    got = _old_version_note({"tls_version": "", "sni": ""}, "server: handshake_failure (40)")
    assert got.startswith("server: handshake_failure (40): the ClientHello carried no server name (SNI)")
    got = _old_version_note({"tls_version": "TLS 1.2"}, "client: internal_error (80)")
    assert "on what the server's side sent too" in got and "not on the path" not in got


def test_a_documented_port_over_the_other_transport_says_so(tmp_path):
    # (s55 dp #11: TCP to 15000, documented as UDP only, was "no documented KSC port")
    recs = tcp_session(("192.0.2.5", 50800), ("192.0.2.10", 15000), t0=1000.0, c_data=b"x" * 20) + _ksc()
    flows = analyze_file(_write(tmp_path, recs), RULES).flows
    row = flows[(flows.proto == "tcp") & (flows.resp_p == 15000)].iloc[0]
    assert (row.purpose, row.verdict) == ("", "unclassified")
    assert row.detail.startswith("TCP 15000: the page documents UDP 15000 (gateway_udp), not TCP: not judged")
    # (not for the well-known ports, which QUIC and others use over UDP)
    recs = [udp(("192.0.2.10", 50900), ("198.51.100.7", 443), b"q" * 1200, t=1000.0)] + _ksc()
    flows = analyze_file(_write(tmp_path, recs, "q.pcap"), RULES).flows
    assert "the page documents" not in flows[flows.proto == "udp"].iloc[0].detail


@pytest.mark.parametrize("ttl,ref,said", [
    (254, 127, "as many hops away but from another initial value (another device's stack: 255 vs 128)"),
    (63, 127, "as many hops away but from another initial value (another device's stack: 64 vs 128)"),
    (127, 127, "the reset came with the server's own TTL (127"),
    (58, 62, ""),                                       # (from farther: nothing said)
])
def test_a_reset_from_another_stack_at_the_same_distance(ttl, ref, said):
    # (s55 dp #10: a reset of initial TTL 255 in the name of a server whose packets start at 128,
    # both one hop away, got no hint)
    from kscc_traffic.inspect import refused_hint
    got = refused_hint(4, ttl, ref)
    assert (said in got) if said else got == ""


def test_a_long_flow_head_keeps_its_5_tuple_whole():
    # (newcomer s55 #1: at 80 columns the head wrapped inside the 5-tuple, the rest at column 0)
    from kscc_traffic.report import _flow_head_lines
    lead, pair, named = "11:06:25.742  [a.pcap]  ", "192.0.2.10:38685 -> tcp 203.0.113.10:27201", "  eu1.ksc.kaspersky.com"
    assert _flow_head_lines(lead, pair, named, 200) == [lead + pair + named]
    assert _flow_head_lines(lead, pair, named, 80) == [lead + pair, "    eu1.ksc.kaspersky.com"]
    assert _flow_head_lines(lead, pair, named, 50) == ["11:06:25.742  [a.pcap]", "    " + pair,
                                                       "    eu1.ksc.kaspersky.com"]
    assert _flow_head_lines(lead, pair, "", 50) == ["11:06:25.742  [a.pcap]", "    " + pair]


def test_an_empty_path_is_no_folder():
    # (newcomer s55 #11: analyze('') said ". is a directory, not a capture file")
    import kscc_traffic
    from kscc_traffic.errors import CaptureError
    with pytest.raises(CaptureError, match="no capture given: the path is empty"):
        kscc_traffic.analyze("")
