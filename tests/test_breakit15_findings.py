"""Break-it round 15: findings fixed (see each test)."""
from __future__ import annotations

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.dns import DNS, DNSQR, DNSRR

from pcapbuild import eth, pcap_bytes, tcp_session

from kscc_traffic.analyze import analyze_file
from kscc_traffic.rules import load_rules

RULES = load_rules()
AGENT, DP, RESOLVER = "192.0.2.10", "192.0.2.50", "198.51.100.53"
T0 = 1_764_500_000.0


def _flows(tmp_path, recs, name="c.pcap"):
    p = tmp_path / name
    p.write_bytes(pcap_bytes(recs))
    return analyze_file(p, RULES)


def test_udp_from_client_port_1701_is_not_taken_for_l2tp(tmp_path):
    """F3: a datagram from port 1701 whose first bytes read as an L2TPv2 data header (00 02…)
    but carry no IP packet is the UDP datagram it is: KSN proxy 15111 unanswered is blocked,
    a DNS exchange from 1701 is a DNS flow (it vanished as "non-IP" before)."""
    recs = [(T0 + i, eth(IP(src=AGENT, dst=DP) / UDP(sport=1701, dport=15111) / (b"\x00\x02\x11\x11" + b"k" * 40)))
            for i in range(4)]
    q = DNS(id=2, rd=1, qd=DNSQR(qname="eu1.ksc.kaspersky.com"))
    a = DNS(id=2, qr=1, qd=DNSQR(qname="eu1.ksc.kaspersky.com"),
            an=DNSRR(rrname="eu1.ksc.kaspersky.com", rdata="203.0.113.10"))
    recs += [(T0 + 10, eth(IP(src=AGENT, dst=RESOLVER) / UDP(sport=1701, dport=53) / q)),
             (T0 + 10.01, eth(IP(src=RESOLVER, dst=AGENT) / UDP(sport=53, dport=1701) / a))]
    a = _flows(tmp_path, recs)
    f = a.flows.set_index("resp_p")
    assert list(f.index) == [15111, 53]
    assert (f.loc[15111, "purpose"], f.loc[15111, "verdict"], f.loc[15111, "reason"]) == \
        ("dp_ksn_proxy_udp", "blocked", "no_answer")
    assert f.loc[15111, "orig_pkts"] == 4
    assert (f.loc[53, "purpose"], f.loc[53, "verdict"], f.loc[53, "query"]) == ("dns", "ok", "eu1.ksc.kaspersky.com")
    assert not any("no IP packet" in w for w in a.warnings)


def test_real_l2tp_still_decodes_its_inner_packet(tmp_path):
    inner = IP(src=AGENT, dst="203.0.113.10") / TCP(sport=50000, dport=23101, flags="S", seq=1)
    l2tp = b"\x00\x02" + b"\x00\x01\x00\x01" + b"\xff\x03\x00\x21" + bytes(inner)   # data, tunnel/session 1; PPP IPv4
    recs = [(T0, eth(IP(src="198.51.100.1", dst="198.51.100.2") / UDP(sport=1701, dport=1701) / l2tp))]
    f = _flows(tmp_path, recs).flows
    assert list(zip(f.proto, f.resp_p, f.conn_state)) == [("tcp", 23101, "S0")]


def test_icmp_errors_quoting_no_captured_flow_have_default_columns(tmp_path):
    """F8: an ICMP error whose quoted flow is not in the capture becomes an ICMP flow of its own,
    with every application column at its default (it had payload_cut and tls_established True and
    name_source 'sni', from NaN)."""
    recs = tcp_session((AGENT, 50001), ("203.0.113.10", 23101), t0=T0)
    syn = IP(src=AGENT, dst="203.0.113.77") / TCP(sport=50009, dport=23101, flags="S", seq=9)
    recs.append((T0 + 1, eth(IP(src="192.0.2.1", dst=AGENT) / ICMP(type=3, code=13) / bytes(syn))))
    f = _flows(tmp_path, recs).flows
    icmp = f[f.proto == "icmp"].iloc[0]
    assert (icmp.orig_p, icmp.resp_p) == (3, 13)
    assert (icmp.payload_cut, icmp.tls_established, icmp.name_source, icmp.server_name, icmp.sni) == \
        (False, False, "", "", "")
    assert f.payload_cut.dtype == bool and f.tls_established.dtype == bool


def _hello_answered(tmp_path, answer: bytes, port=23101):
    from test_decode_more_encaps import client_hello
    recs = tcp_session((AGENT, 50003), ("203.0.113.10", port), t0=T0, c_data=client_hello("eu1.ksc.kaspersky.com"),
                       s_data=answer)
    return _flows(tmp_path, recs).flows.iloc[0]


def test_a_client_hello_answered_in_cleartext_that_is_not_http_is_not_tls(tmp_path):
    """F4: a text refusal, an SMTP or SSH line in answer to the ClientHello is another service
    (or a filter) on the port: not_tls, quoting what it said; it was tls_failed "connection
    closed", whose advice blames TLS inspection."""
    for answer, shown in [(b"Access denied by policy\r\n", "Access denied by policy"),
                          (b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", "SSH-2.0-OpenSSH_9.2p1 Debian-2"),
                          (b"\x1b[31mdenied" + b"x" * 60, "\\x1b[31mdenied" + "x" * 29 + "…")]:
        r = _hello_answered(tmp_path, answer)
        assert (r.client_proto, r.server_proto) == ("tls", "other")
        assert (r.verdict, r.reason) == ("unexpected", "not_tls")
        assert r.detail == (f'the server sent cleartext that is not TLS where TLS is documented: "{shown}" '
                            "(another service on the port, or a filter's refusal)")


def test_an_alert_record_with_two_alerts_names_the_fatal_one(tmp_path):
    """F5: one alert record holding a warning (unrecognized_name) and a fatal handshake_failure."""
    r = _hello_answered(tmp_path, b"\x15\x03\x03\x00\x04\x01\x70\x02\x28")
    assert r.tls_alert == "server: handshake_failure (40)"
    assert (r.verdict, r.reason) == ("blocked", "tls_failed")
    r = _hello_answered(tmp_path, b"\x15\x03\x03\x00\x04\x01\x70\x01\x00")      # two warnings: the first
    assert r.tls_alert == "server: unrecognized_name (112)"


def test_an_icmp_error_on_the_other_vlan_of_a_one_way_tagged_mirror_is_attached(tmp_path):
    """F7: the SYNs untagged, the firewall's ICMP admin-prohibited quoting them on VLAN 20 (a SPAN
    tagging one direction only): the flow is blocked by that ICMP error, named, as untagged."""
    from scapy.layers.l2 import Dot1Q, Ether
    syn = IP(src=AGENT, dst="203.0.113.10") / TCP(sport=50100, dport=23101, flags="S", seq=7)
    err = IP(src="192.0.2.1", dst=AGENT) / ICMP(type=3, code=13) / bytes(syn)
    recs = []
    for i in range(3):
        recs.append((T0 + i, Ether(src="02:00:00:00:00:10", dst="02:00:00:00:00:01") / syn))
        recs.append((T0 + i + 0.003, Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:10") / Dot1Q(vlan=20) / err))
    f = _flows(tmp_path, recs).flows
    assert list(f.proto) == ["tcp"]
    r = f.iloc[0]
    assert (r.verdict, r.reason, r.icmp_unreachable) == \
        ("blocked", "icmp_unreachable", "administratively prohibited (3/13) from 192.0.2.1")


def test_time_exceeded_and_parameter_problem_name_what_came_back(tmp_path):
    """F12: every SYN answered by ICMPv6 hop limit exceeded (a routing loop) or parameter problem
    (a router dropping extension headers): blocked, and the detail says it is not a firewall."""
    from scapy.layers.inet6 import ICMPv6ParamProblem, ICMPv6TimeExceeded, IPv6
    from scapy.layers.l2 import Ether
    c6, s6, r6 = "2001:db8:1::10", "2001:db8:2::10", "2001:db8:1::1"
    for i, (err, text, means) in enumerate([
            (ICMPv6TimeExceeded(code=0), "hop limit exceeded in transit (3/0)", "a routing loop"),
            (ICMPv6ParamProblem(code=1, ptr=40), "parameter problem (4/1)", "a router drops what it cannot parse")]):
        syn = IPv6(src=c6, dst=s6) / TCP(sport=50200 + i, dport=23101, flags="S", seq=7)
        recs = []
        for k in range(3):
            recs.append((T0 + k, Ether() / syn))
            recs.append((T0 + k + 0.003, Ether() / IPv6(src=r6, dst=c6) / err / bytes(syn)))
        f = _flows(tmp_path, recs, f"e{i}.pcap").flows
        r = f[f.proto == "tcp"].iloc[0]
        assert (r.verdict, r.reason, r.icmp_unreachable) == ("blocked", "icmp_unreachable", f"{text} from {r6}")
        assert r.detail.startswith(f"answered by ICMP {text} from {r6}: {means}") and "not a firewall" in r.detail
        assert list(f.proto) == ["tcp"]          # (the errors are the flow's, not flows of their own)


def test_a_client_hello_refused_by_icmp_says_so_in_the_detail(tmp_path):
    """F12 (related): an application firewall lets the handshake through and answers the
    ClientHello with ICMP admin-prohibited; the client resets: the detail names the ICMP error."""
    from test_decode_more_encaps import client_hello
    recs = tcp_session((AGENT, 50004), ("203.0.113.10", 23101), t0=T0, close=False)
    hello = IP(src=AGENT, dst="203.0.113.10") / TCP(sport=50004, dport=23101, flags="PA", seq=1001, ack=5001) \
        / client_hello("eu1.ksc.kaspersky.com")
    recs.append((T0 + 0.05, eth(hello)))
    recs.append((T0 + 0.053, eth(IP(src="192.0.2.1", dst=AGENT) / ICMP(type=3, code=13) / bytes(hello)[:60])))
    recs.append((T0 + 0.2, eth(IP(src=AGENT, dst="203.0.113.10") / TCP(sport=50004, dport=23101, flags="R",
                                                                       seq=1001 + len(hello[TCP].payload)))))
    r = _flows(tmp_path, recs).flows.iloc[0]
    assert (r.verdict, r.reason) == ("blocked", "tls_failed")
    assert r.detail.endswith("; its data was answered by ICMP administratively prohibited (3/13) from 192.0.2.1")


def test_ppp_with_direction_and_a_raw_link_type_written_wrong_are_read(tmp_path):
    """F11: LINKTYPE_PPP_WITH_DIR (204: a direction byte, then PPP) is read like PPP; a raw-IP
    capture whose link type says IPv4 (228) but holds IPv6 packets (or 229 holding IPv4) is read
    by the version nibble, as Wireshark does."""
    from scapy.layers.inet6 import IPv6
    recs = tcp_session((AGENT, 50005), ("203.0.113.10", 23101), t0=T0)
    ppp = [(t, b"\x01" + b"\xff\x03\x00\x21" + bytes(p[IP])) for t, p in recs]
    p = tmp_path / "ppp.pcap"
    p.write_bytes(pcap_bytes(ppp, linktype=204))
    f = analyze_file(p, RULES).flows
    assert list(zip(f.conn_state, f.verdict)) == [("SF", "ok")]
    v6 = tcp_session(("2001:db8:1::10", 50006), ("2001:db8:2::10", 23101), t0=T0)
    for lt, raw in ((228, [(t, bytes(q[IPv6])) for t, q in v6]), (229, [(t, bytes(q[IP])) for t, q in recs])):
        p = tmp_path / f"raw{lt}.pcap"
        p.write_bytes(pcap_bytes(raw, linktype=lt))
        f = analyze_file(p, RULES).flows
        assert list(zip(f.conn_state, f.verdict)) == [("SF", "ok")], lt


def test_cleartext_longer_than_the_inspection_window_is_still_not_tls(tmp_path):
    """(newcomer 19 F17) cleartext both ways on a TLS port, the client's part longer than the
    16 KiB inspected: its first bytes were read whole, so it is not_tls (it was ok, verifying
    dp_agent_connection); first bytes cut by a 68-byte snaplen still decide nothing."""
    def c2s(**kw):
        return eth(IP(src=AGENT, dst=DP) / TCP(sport=50007, dport=13000, **kw))

    def s2c(**kw):
        return eth(IP(src=DP, dst=AGENT) / TCP(sport=13000, dport=50007, **kw))
    recs = [(T0, c2s(flags="S", seq=1000)), (T0 + 0.001, s2c(flags="SA", seq=5000, ack=1001)),
            (T0 + 0.002, c2s(flags="A", seq=1001, ack=5001))]
    seq = 1001
    for i in range(30):                                    # 30 segments of 1000 bytes
        recs.append((T0 + 0.01 + i * 0.001, c2s(flags="PA", seq=seq, ack=5001) / (b"X" * 1000)))
        seq += 1000
    recs += [(T0 + 0.1, s2c(flags="PA", seq=5001, ack=seq) / b"BYE\r\n"),
             (T0 + 0.11, c2s(flags="FA", seq=seq, ack=5006)), (T0 + 0.12, s2c(flags="FA", seq=5006, ack=seq + 1)),
             (T0 + 0.13, c2s(flags="A", seq=seq + 1, ack=5007))]
    r = _flows(tmp_path, recs).flows.iloc[0]
    assert (r.client_proto, r.server_proto, r.payload_cut) == ("other", "other", True)
    assert (r.purpose, r.verdict, r.reason) == ("dp_agent_connection", "unexpected", "not_tls")
    cut = [(t, bytes(p)[:68]) for t, p in recs]            # (2 payload bytes kept of each segment)
    p = tmp_path / "cut.pcap"
    p.write_bytes(pcap_bytes([(t, b) for t, b in cut], snaplen=68))
    r = analyze_file(p, RULES).flows.iloc[0]
    assert r.payload_cut and r.reason != "not_tls"


def test_icmp_errors_on_a_client_hello_sent_again_are_named(tmp_path):
    """(newcomer 19 F15, F18) the ClientHello sent 3 times, each answered by ICMP admin-prohibited:
    the tls_failed detail names the ICMP error; a DNS query answered by time exceeded says what
    that means."""
    from test_decode_more_encaps import client_hello
    recs = tcp_session((AGENT, 50008), ("203.0.113.10", 23101), t0=T0, close=False)
    hello = IP(src=AGENT, dst="203.0.113.10") / TCP(sport=50008, dport=23101, flags="PA", seq=1001, ack=5001) \
        / client_hello("eu1.ksc.kaspersky.com")
    for k in range(3):
        recs.append((T0 + 0.05 + k, eth(hello)))
        recs.append((T0 + 0.053 + k, eth(IP(src="198.51.100.1", dst=AGENT) / ICMP(type=3, code=13) / bytes(hello)[:60])))
    r = _flows(tmp_path, recs).flows.iloc[0]
    assert (r.verdict, r.reason) == ("blocked", "tls_failed")
    assert r.detail.endswith("; its data was answered by ICMP administratively prohibited (3/13) from 198.51.100.1")
    q = IP(src=AGENT, dst=RESOLVER) / UDP(sport=40001, dport=53) / DNS(id=3, rd=1, qd=DNSQR(qname="eu1.ksc.kaspersky.com"))
    recs = [(T0, eth(q)), (T0 + 0.01, eth(IP(src="198.51.100.1", dst=AGENT) / ICMP(type=11, code=0) / bytes(q)[:28]))]
    r = _flows(tmp_path, recs, "dns.pcap").flows.iloc[0]
    assert (r.verdict, r.reason) == ("blocked", "icmp_unreachable")
    assert "a routing loop" in r.detail
