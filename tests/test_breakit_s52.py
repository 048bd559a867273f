"""Findings of session 52 (each test names its finding)."""
from __future__ import annotations

import pytest

pytest.importorskip("scapy")

from test_breakit_s51 import _idle_then  # noqa: E402

from kscc_traffic import load_rules  # noqa: E402


def _analysed(tmp_path, name: str, recs):
    """The flow table of a capture of ``recs`` ((time, frame) pairs, written in time order) in a
    file ``name`` under ``tmp_path``."""
    from pcapbuild import pcap_bytes

    from kscc_traffic import analyze
    path = tmp_path / name
    path.write_bytes(pcap_bytes(sorted(recs, key=lambda r: r[0])))
    return analyze(str(path))


def test_the_restart_note_does_not_count_an_idle_connections_reset_as_a_refusal(tmp_path):
    """s51 leftover: an agent connection reset with the server's TTL after a 400 s silence (it
    worked before it), a new connection accepted, then a SYN refused with the server's TTL: the
    note said "the port was refused 2 times from 00:23:20 … while it accepted 2 other
    connections" (the idle connection's reset counted as a refusal of the port: "intermittent").
    One refusal came after every accepted connection: the service was down or restarting."""
    from kscc_traffic.report import readiness
    flows = _idle_then(tmp_path, 52, True)
    fix = readiness(flows, load_rules()).set_index("rule").loc["agent_connection", "fix"]
    assert ("the port was accepted at 00:23:21.000 UTC and refused at 00:25:00.000 UTC (203.0.113.10 TCP 23101): "
            "the service was down or restarting (the port is right)") in fix
    assert "refused 2 times" not in fix


def test_a_511_is_a_captive_portal_on_port_80_and_on_the_clienthello(tmp_path):
    """Break-it s52 (IPv6/interception pass) #9: a guest network's portal answered both the CRL
    request on 80 and the agent's ClientHello on 23101 with 511 Network Authentication Required
    (RFC 6585 §6: a captive portal). The advice was "allow *.digicert.com in its URL filter" and
    "let the agent's TLS through uninspected"; both now say to log the network in to the portal."""
    from pcapbuild import tcp_session
    from test_newcomer30_findings import _hello

    from kscc_traffic.report import readiness, rejected_reason_text
    agent = "192.0.2.10"
    portal = b"HTTP/1.1 511 Network Authentication Required\r\nContent-Length: 0\r\n\r\n"
    recs = tcp_session((agent, 50024), ("203.0.113.20", 80), t0=1000.0, s_data=portal,
                       c_data=b"GET /x.crl HTTP/1.1\r\nHost: crl3.digicert.com\r\n\r\n")
    recs += tcp_session((agent, 50100), ("203.0.113.10", 23101), t0=1001.0, s_data=portal,
                        c_data=_hello(b"eu1.ksc.kaspersky.com"))
    flows = _analysed(tmp_path, "portal511.pcap", recs).set_index("resp_p")
    assert flows.loc[80, "detail"] == (
        'the server 203.0.113.20:80 answered 511 "Network Authentication Required" to the request for '
        "http://crl3.digicert.com:80 (a transparent web filter or captive portal: 511 is a captive portal's "
        "answer, the network wants a login first)")
    assert flows.loc[23101, "detail"] == (
        "the server answered HTTP 511 to the ClientHello where TLS is documented: a captive portal's answer "
        "(Network Authentication Required: the network wants a login first)")
    assert "captive portal answered it 511" in rejected_reason_text([flows.loc[23101, "detail"]])
    fixes = readiness(flows.reset_index(), load_rules()).set_index("rule")["fix"]
    assert fixes["cert_check"] == (
        "this request was answered HTTP 511 on TCP 80, which is open: a captive portal in the path (RFC 6585 §6: "
        "the network wants a login or its terms accepted first): authenticate this network in the portal, or "
        "exempt the agent's traffic (*.digicert.com) from it; no port is to be opened")
    assert ("then a captive portal's HTTP 511 (Network Authentication Required) answered its ClientHello instead of "
            "the TLS handshake: a captive portal in the path wants the network logged in first") in fixes["agent_connection"]
    assert "uninspected" not in fixes["agent_connection"] and "URL filter" not in fixes["cert_check"]


def _dns_lost_fragments(tmp_path, v6: bool):
    """An agent's three AAAA queries whose large answers leave the resolver in IP fragments, the
    last fragment of each lost; the capture ends 10 ms after the last answer's fragments."""
    from scapy.all import DNS, DNSQR, DNSRR, IP, UDP, IPv6, IPv6ExtHdrFragment, fragment, fragment6
    from pcapbuild import eth, pcap_bytes
    agent, resolver = ("2001:db8:10::20", "2001:db8:10::53") if v6 else ("192.0.2.10", "192.0.2.53")
    L3 = IPv6 if v6 else IP
    recs = []
    for k in range(3):
        t = 1000.0 + 2 * k
        q = DNS(id=100 + k, rd=1, qd=DNSQR(qname="eu1.ksc.kaspersky.com", qtype="AAAA"))
        recs.append((t, eth(L3(src=agent, dst=resolver) / UDP(sport=40000 + k, dport=53) / q)))
        an = DNS(id=100 + k, qr=1, rd=1, ra=1, qd=q.qd,
                 an=[DNSRR(rrname="eu1.ksc.kaspersky.com", type="AAAA", rdata=f"2001:db8:100::{j + 1:x}")
                     for j in range(60)])
        udp_an = UDP(sport=53, dport=40000 + k) / an
        frags = (fragment6(IPv6(src=resolver, dst=agent) / IPv6ExtHdrFragment(id=0x900 + k) / udp_an, 1280) if v6
                 else fragment(IP(src=resolver, dst=agent, id=0x900 + k) / udp_an, fragsize=1200))
        assert len(frags) >= 3
        recs += [(t + 0.02 + 0.0001 * j, eth(f, src="02:00:00:00:00:02", dst="02:00:00:00:00:01"))
                 for j, f in enumerate(frags[:-1])]
    path = tmp_path / f"dnsfrag{6 if v6 else 4}.pcap"
    path.write_bytes(pcap_bytes(recs))
    return path


@pytest.mark.parametrize("v6", [False, True])
def test_dns_answers_lost_as_fragments_are_advised_as_fragments(tmp_path, v6):
    """Break-it s52 (IPv6/interception pass) #1: DNS answers whose last IP fragment was lost on
    the way: each flow's detail said so, but the checklist said "allow DNS (UDP and TCP 53) …"
    and the HTML "a firewall drops DNS to the resolver", and the last query "maybe before an
    answer could come" (the capture ended 10 ms after its fragments). The resolver answered: the
    advice is now about the fragments, and no capture-end note is added to such a query."""
    from kscc_traffic import analyze
    from kscc_traffic.report import dns_advice, dns_blocked_kinds, dns_reason_texts
    flows = analyze(str(_dns_lost_fragments(tmp_path, v6)))
    dns = flows[flows["purpose"] == "dns"]
    assert (dns["reason"] == "no_answer").sum() == 3
    assert not dns["detail"].str.contains("maybe before an answer could come").any()
    kinds = dns_blocked_kinds(flows)
    assert (kinds["no_answer"], kinds["fragments"]) == (3, 3)
    fix = dns_advice(flows, load_rules())["fix"]
    assert fix.startswith("3 queries were answered, but each answer came back as IP fragments and not all of "
                          "them arrived"), fix
    assert "allow DNS (UDP and TCP 53)" not in fix and "capture longer" not in fix, fix
    assert dns_reason_texts(["no_answer"], kinds=kinds)["no_answer"].startswith(
        "the answer came back as IP fragments and not all of them arrived")


@pytest.mark.parametrize("linktype", [101, 0, 228])
@pytest.mark.parametrize("engine", ["builtin", "tshark"])
def test_a_broadcast_in_a_link_layer_without_destination_is_an_agent_broadcast(tmp_path, linktype, engine):
    """Break-it s52 (formats pass) #1: an agent's datagram 192.0.2.10 -> 192.0.2.255:15000 in a
    raw-IP, BSD loopback (or NFLOG) capture was unicast, gateway_udp (the checklist: agent_broadcast
    "not seen", advice for a connection gateway), while the same datagram in an SLL capture of the
    sending host was agent_broadcast. A link layer that records no destination is now read as SLL's
    outgoing packets: the sender's /24 broadcast address makes it a broadcast; a datagram to another
    network's x.y.z.127 stays unicast."""
    import shutil
    import struct

    from scapy.all import IP, UDP
    from pcapbuild import pcap_bytes
    if engine == "tshark" and not shutil.which("tshark"):
        pytest.skip("tshark not installed")
    from kscc_traffic.analyze import analyze_file
    head = struct.pack("<I", 2) if linktype == 0 else b""
    recs = [(1000.0 + k, head + bytes(IP(src="192.0.2.10", dst=dst) / UDP(sport=15000, dport=15000) / (b"x" * 40)))
            for k, dst in enumerate(("192.0.2.255", "198.51.100.127"))]
    path = tmp_path / f"bcast{linktype}.pcap"
    path.write_bytes(pcap_bytes(recs, linktype=linktype))
    flows = analyze_file(str(path), load_rules(), engine=engine).flows.set_index("resp_h")
    assert flows.loc["192.0.2.255", ["cast", "purpose"]].tolist() == ["broadcast", "agent_broadcast"]
    assert flows.loc["198.51.100.127", ["cast", "purpose"]].tolist() == ["unicast", "gateway_udp"]


def test_a_tls10_answer_refused_with_protocol_version_says_so(tmp_path):
    """Break-it s52 (IPv6/interception pass) #8: something answered the agent's ClientHello with
    a TLS 1.0 ServerHello and the client aborted with protocol_version (70): the detail quoted the
    alert alone ("TLS handshake aborted: client: protocol_version (70)"), though the capture
    shows why: the answer chose TLS 1.0, which the client does not accept."""
    import struct

    from scapy.all import TCP
    from pcapbuild import eth, ip_of, pcap_bytes, tcp_session
    from test_newcomer30_findings import _hello
    from test_tls_batch import rec

    from kscc_traffic import analyze
    body = struct.pack("!H", 0x0301) + bytes(32) + b"\x00" + struct.pack("!HB", 0x002F, 0)
    sh = rec(22, bytes([2]) + len(body).to_bytes(3, "big") + body)
    hello = _hello(b"eu1.ksc.kaspersky.com")
    agent, ksc = ("192.0.2.10", 50100), ("203.0.113.10", 23101)
    recs = tcp_session(agent, ksc, c_data=hello, s_data=sh, close=False)
    cs, ss = 1001 + len(hello), 5001 + len(sh)
    alert = rec(21, b"\x02\x46")
    recs += [(1000.06, eth(ip_of(agent[0], ksc[0]) / TCP(sport=agent[1], dport=ksc[1], flags="PA", seq=cs, ack=ss)
                           / alert)),
             (1000.07, eth(ip_of(agent[0], ksc[0]) / TCP(sport=agent[1], dport=ksc[1], flags="FA",
                                                          seq=cs + len(alert), ack=ss)))]
    path = tmp_path / "tls10.pcap"
    path.write_bytes(pcap_bytes(recs))
    row = analyze(str(path)).iloc[0]
    assert (row["tls_version"], row["verdict"], row["reason"]) == ("TLS 1.0", "blocked", "tls_failed")
    assert row["detail"] == (
        "TLS handshake aborted: client: protocol_version (70): the server's side answered with TLS 1.0, which the "
        "client does not accept (TLS 1.0 and 1.1 are deprecated, RFC 8996; the documented servers do not answer "
        "so): an old TLS-inspecting proxy or firewall answering in the server's place, most likely")


@pytest.mark.parametrize("sni, issuer, reason", [
    ("", "CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1,O=DigiCert Inc", "tls_failed"),
    ("eu1.ksc.kaspersky.com", "CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1,O=DigiCert Inc", "tls_failed"),
    ("", "CN=Corp Inspection CA,O=Corp", "tls_intercepted"),
])
def test_no_sni_answered_with_a_public_default_certificate_is_the_missing_sni(sni, issuer, reason):
    """Break-it s52 (IPv6/interception pass) #3: a ClientHello without SNI, answered by the
    server's default certificate (another name, a public CA) that the client refused, was
    "tls_intercepted … exclude these names from inspection", the missing SNI never said. Without
    SNI a server answers with its default certificate (RFC 6066 §3): the detail now says the SNI
    was missing. From a CA named for inspection it stays interception; with an SNI, from a public
    CA, another server answered (break-it real s57 #4: it was interception too)."""
    from kscc_traffic.classify import _interception
    row = {"sni": sni, "dns_name": "eu1.ksc.kaspersky.com", "cert_issuer": issuer, "service": "ssl",
           "tls_alert": "client: bad_certificate (42)", "tls_established": False, "conn_state": "SF",
           "partial": False}
    verdict, got, detail = _interception(row, ["default.kaspersky-labs.example"], "", False)
    assert (verdict, got) == ("blocked", reason)
    if reason == "tls_failed" and sni:
        assert detail.startswith(
            "certificate for default.kaspersky-labs.example presented for eu1.ksc.kaspersky.com, issued by "
            "CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1,O=DigiCert Inc (a public CA, DigiCert, not a TLS-inspection "
            "product): the agent reached another server than the one it asked for"), detail
    elif reason == "tls_failed":
        assert detail.startswith(
            "the ClientHello carried no SNI (server name): the server answered with its default certificate, for "
            "default.kaspersky-labs.example (issued by CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1,O=DigiCert "
            "Inc, a public CA), not for eu1.ksc.kaspersky.com (from DNS), and the handshake was aborted (client: "
            "bad_certificate (42))")
        assert detail.endswith("a device on the path that strips the SNI from the ClientHello, or a client that does "
                               "not send it (an old TLS library, or something rewriting its connection)")


def test_a_clienthello_never_acknowledged_is_told_from_one_acknowledged_and_ignored(tmp_path):
    """Break-it s52 (IPv6/interception pass) #6: a ClientHello sent 6 times over 15 s that the
    server never acknowledged (a filter dropping it after the handshake) and one the server
    acknowledged and never answered got the same detail ("ClientHello not answered: no byte from
    the server for 15.3 s, then the client reset the connection"); the first now says it was never
    acknowledged: dropped on the way."""
    from scapy.all import TCP
    from pcapbuild import eth, ip_of
    from test_newcomer30_findings import _hello
    hello = _hello(b"eu1.ksc.kaspersky.com")
    agent, ksc = "192.0.2.10", "203.0.113.10"
    recs = []
    for port, acked in ((23101, False), (23102, True)):
        t0 = 1000.0 if not acked else 1100.0

        def up(t, flags, seq, ack, data=b""):
            return (t0 + t, eth(ip_of(agent, ksc) / TCP(sport=50000 + port % 10, dport=port, flags=flags, seq=seq,
                                                         ack=ack) / data))

        def down(t, flags, seq, ack):
            return (t0 + t, eth(ip_of(ksc, agent) / TCP(sport=port, dport=50000 + port % 10, flags=flags, seq=seq,
                                                         ack=ack), src="02:00:00:00:00:02", dst="02:00:00:00:00:01"))
        recs += [up(0, "S", 100, 0), down(0.03, "SA", 700, 101), up(0.031, "A", 101, 701),
                 up(0.04, "PA", 101, 701, hello)]
        if acked:
            recs.append(down(0.07, "A", 701, 101 + len(hello)))
        else:
            recs += [up(0.04 + d, "PA", 101, 701, hello) for d in (0.3, 0.9, 2.1, 4.5, 9.3)]
        recs.append(up(15.34, "RA", 101 + len(hello), 701))
    flows = _analysed(tmp_path, "dropped.pcap", recs).set_index("resp_p")
    assert flows.loc[23101, "detail"] == (
        "ClientHello sent again, never acknowledged by the server (its only packet the SYN-ACK), no byte from it for "
        "15.3 s, then the client reset the connection: dropped on the way after the TCP handshake was let through (a "
        "firewall or IPS filtering on the ClientHello or its SNI, or a path that loses larger packets)")
    assert flows.loc[23102, "detail"] == ("ClientHello not answered: no byte from the server for 15.3 s, then the "
                                          "client reset the connection")
    assert (flows["reason"] == "tls_failed").sum() == 2


def test_later_fragments_of_datagrams_never_completed_blame_no_snaplen(tmp_path):
    """Break-it s52 (IPv6/interception pass) #5: the flow without ports made of the later
    fragments of UDP datagrams whose middle fragment was lost said "the snaplen cut each one
    before it, or fragments whose first fragment was not captured … (capture with a larger
    snaplen)", though the first fragments were captured and nothing was cut. It now says they are
    fragments of datagrams never captured whole."""
    from kscc_traffic import analyze
    flows = analyze(str(_dns_lost_fragments(tmp_path, True)))
    tails = flows[flows["resp_p"] < 0]
    assert len(tails) == 1
    assert tails.iloc[0]["detail"].startswith("this flow's packets are later IP fragments of UDP datagrams never "
                                              "captured whole")
    assert "snaplen" not in tails.iloc[0]["detail"]


def test_established_sessions_cut_by_a_forged_reset_are_blocked(tmp_path):
    """Break-it s52 (IPv6/interception pass) #7: every agent session worked (TLS data both ways for
    30 s), then a reset "from the server" with TTL 128 (the server's packets: 50) ended it: the
    flows were ok (only the JSONL detail told a device on the path sent it), the report "verified",
    exit 0. Such a flow is now blocked/rejected and the advice names the IPS/firewall policy; a
    session the server itself reset (its own TTL) stays ok."""
    from scapy.all import IP, TCP
    from pcapbuild import eth

    from kscc_traffic.report import TableSummary, readiness
    agent, ksc = "192.0.2.10", "203.0.113.10"
    recs = []
    for k, rst_ttl in enumerate((128, 128, 50)):
        t0, sp = 1000.0 + 100 * k, 50000 + k

        def up(t, flags, seq, ack, data=b""):
            return (t0 + t, eth(IP(src=agent, dst=ksc, ttl=64) / TCP(sport=sp, dport=23101, flags=flags, seq=seq,
                                                                    ack=ack) / data))

        def down(t, flags, seq, ack, data=b"", ttl=50):
            return (t0 + t, eth(IP(src=ksc, dst=agent, ttl=ttl) / TCP(sport=23101, dport=sp, flags=flags, seq=seq,
                                                                     ack=ack) / data,
                                src="02:00:00:00:00:02", dst="02:00:00:00:00:01"))
        recs += [up(0, "S", 100, 0), down(0.03, "SA", 700, 101), up(0.031, "A", 101, 701),
                 up(0.04, "PA", 101, 701, b"\x17\x03\x03\x00\x20" + bytes(32)),
                 down(0.07, "PA", 701, 138, b"\x17\x03\x03\x00\x30" + bytes(48)),
                 up(30.0, "PA", 138, 754, b"\x17\x03\x03\x07\xcb" + bytes(1995)),
                 down(30.002, "R", 754, 0, ttl=rst_ttl)]
    flows = _analysed(tmp_path, "forged.pcap", recs).sort_values("orig_p")
    assert flows["conn_state"].tolist() == ["RSTR"] * 3
    assert flows["verdict"].tolist() == ["blocked", "blocked", "ok"]
    assert (flows["reason"].tolist()[:2]) == ["rejected", "rejected"]
    assert flows["detail"].iloc[0].startswith(
        "the connection worked, then a reset in the server's name ended it, sent by a device on the path; the reset "
        "in the server's name came with TTL 128")
    for table in (readiness(flows, load_rules()), TableSummary.of(flows).readiness(load_rules())):
        fix = table.set_index("rule").loc["agent_connection", "fix"]
        assert ("these 2 connections worked, then a reset in the server's name ended them: a firewall or IPS on the "
                "path ended them (the reset's TTL is not the server's): check its IPS, application-control and "
                "session policies for *.ksc.kaspersky.com on TCP 23100-23199 (exempt the agent's traffic from "
                "them); no port is to be opened") in fix, fix
        assert "allow outbound" not in fix


@pytest.mark.parametrize("engine", ["builtin", "tshark"])
def test_unanswered_dns_to_a_dot255_resolver_in_raw_ip_stays_a_failed_lookup(tmp_path, engine):
    """Review s52 #1: with raw-IP frames read as recording no link-layer destination, three
    unanswered DNS queries to a resolver at 198.18.0.255 (a host of a larger network) became
    broadcasts, "ok": no lookup goes to a broadcast address, so DNS stays unicast and blocked."""
    import shutil

    from scapy.all import DNS, DNSQR, IP, UDP
    from pcapbuild import pcap_bytes
    if engine == "tshark" and not shutil.which("tshark"):
        pytest.skip("tshark not installed")
    from kscc_traffic.analyze import analyze_file
    recs = [(1000.0 + k, bytes(IP(src="198.18.0.10", dst="198.18.0.255") / UDP(sport=41000 + k, dport=53)
                               / DNS(id=k, rd=1, qd=DNSQR(qname="eu1.ksc.kaspersky.com")))) for k in range(3)]
    path = tmp_path / "dns255.pcap"
    path.write_bytes(pcap_bytes(recs, linktype=101))
    flows = analyze_file(str(path), load_rules(), engine=engine).flows
    assert flows[["cast", "purpose", "verdict", "reason"]].drop_duplicates().values.tolist() == [
        ["unicast", "dns", "blocked", "no_answer"]]
