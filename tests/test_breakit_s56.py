"""Session 56: fixes of leftovers noted in session 55 and of this session's break-it passes."""
import pytest

from kscc_traffic import load_rules

AGENT4, DP4, OTHER4 = "192.0.2.10", "192.0.2.20", "192.0.2.30"
AGENT6, DP6, OTHER6 = "2001:db8:10::10", "2001:db8:10::20", "2001:db8:10::30"


def _dp_towards_agent(v6: bool, port: int, answer: str, inbound_first: bool = False, opener: str = "dp",
                      own_port: int = 13000):
    """(time, frame) records: an agent connects to its distribution point's TCP ``own_port`` (a
    TLS 1.2 handshake), and then (10 s later, or 10 s before: ``inbound_first``) the
    distribution point (``opener`` "dp"; "other": a third host) opens TCP ``port`` of the agent
    three times, which the agent ``answer``s: "reset", "none" or "accept" (SYN-ACK)."""
    from pcapbuild import eth, ip_of, tcp_session
    from scapy.layers.inet import TCP
    from test_newcomer30_findings import SERVER_HELLO, _hello
    agent, dp, other = (AGENT6, DP6, OTHER6) if v6 else (AGENT4, DP4, OTHER4)
    src = dp if opener == "dp" else other
    done = b"\x16\x03\x03\x00\x04\x0e\x00\x00\x00"                       # ServerHelloDone
    finish = b"\x14\x03\x03\x00\x01\x01" + b"\x16\x03\x03\x00\x28" + b"\x5a" * 40   # CCS, Finished
    own = tcp_session((agent, 50000), (dp, own_port), t0=1000.0, c_data=_hello(b"dp.example.test"),
                      s_data=SERVER_HELLO + done, close=False)
    cs = 1001 + len(_hello(b"dp.example.test"))
    ss = 5001 + len(SERVER_HELLO + done)
    own += [(1000.05, eth(ip_of(agent, dp) / TCP(sport=50000, dport=own_port, flags="PA", seq=cs, ack=ss) / finish)),
            (1000.06, eth(ip_of(dp, agent) / TCP(sport=own_port, dport=50000, flags="PA", seq=ss, ack=cs + len(finish))
                          / finish)),
            (1000.07, eth(ip_of(agent, dp) / TCP(sport=50000, dport=own_port, flags="A", seq=cs + len(finish),
                                                 ack=ss + len(finish))))]
    t = 990.0 if inbound_first else 1010.0
    out = []
    for k in range(3):
        out.append((t + k, eth(ip_of(src, agent) / TCP(sport=41000, dport=port, flags="S", seq=7))))
        if answer == "reset":
            out.append((t + k + 0.001, eth(ip_of(agent, src) / TCP(sport=port, dport=41000, flags="RA", seq=0, ack=8))))
        elif answer == "accept" and k == 0:
            out.append((t + 0.001, eth(ip_of(agent, src) / TCP(sport=port, dport=41000, flags="SA", seq=90, ack=8))))
            out.append((t + 0.002, eth(ip_of(src, agent) / TCP(sport=41000, dport=port, flags="A", seq=8, ack=91))))
            break
    return sorted(own + out, key=lambda r: r[0])


@pytest.mark.parametrize("v6", [False, True])
@pytest.mark.parametrize("port, rule_id", [(13000, "dp_agent_connection"), (13295, "dp_push")])
@pytest.mark.parametrize("answer", ["reset", "none"])
def test_a_distribution_point_opening_its_port_towards_its_own_agent_is_wrong_direction(tmp_path, v6, port, rule_id,
                                                                                        answer):
    """Break-it s55 (distribution point pass) #6: an agent connected to its distribution point's
    TCP 13000; the distribution point then opened TCP 13000 (or 13295) of the agent, refused or
    unanswered: judged as the agent being a distribution point whose service is down ("nothing
    listens on the port there", advice "allow inbound TCP 13000 on the distribution point"). An
    agent opens these ports towards its distribution point, never the other way: wrong_direction,
    in a whole-file and a chunked reading alike, and advised as such (the agent's own connection
    to the other port, so that the purpose's only flow is the one the other way)."""
    import chunkcmp
    from pcapbuild import pcap_bytes

    from kscc_traffic.report import DP_INBOUND_TEXT, readiness
    path = tmp_path / "dp_to_agent.pcap"
    own_port = 13295 if port == 13000 else 13000
    path.write_bytes(pcap_bytes(_dp_towards_agent(v6, port, answer, own_port=own_port)))
    flows = chunkcmp.assert_same(path, [300, 700])
    own = flows[flows.orig_p == 50000].iloc[0]
    assert (own.resp_p, own.verdict) == (own_port, "ok")
    row = flows[flows.orig_p == 41000].iloc[0]
    agent, dp = ("[2001:db8:10::10]", "2001:db8:10::20") if v6 else (AGENT4, DP4)
    assert (row.purpose, row.verdict, row.reason) == (rule_id, "unexpected", "wrong_direction")
    assert row.detail.startswith(
        f"opened by a distribution point towards its own agent: from {dp} to {agent}:{port}, which had itself opened "
        f"TCP {own_port} of {dp} at 00:16:40.000 UTC, on a port the distribution point listens on ({rule_id})"), row.detail
    failed = ("(rejected): the SYN was answered by a TCP reset" if answer == "reset"
              else "(no_answer): SYN sent 3 times, no answer")
    assert f"the connection itself failed {failed}" in row.detail, row.detail
    check = readiness(flows, load_rules()).set_index("rule").loc[rule_id]
    assert (check.status, check.reasons) == ("unexpected", "wrong_direction")
    assert DP_INBOUND_TEXT in check.fix, check.fix
    assert "allow inbound" not in check.fix, check.fix


@pytest.mark.parametrize("case", ["inbound first", "third host", "accepted"])
def test_a_distribution_points_port_of_an_agent_stays_judged_as_before_without_that_evidence(tmp_path, case):
    """What shows the responder an agent of the originator is its own earlier SYN to such a port
    *of that originator*, refused or unanswered: before it (a chunked or live reading cannot know
    what comes later), from a third host (the device may be a distribution point itself, one that
    reaches the server through a connection gateway), or accepted by the device (it listens: a
    distribution point), the flow is judged as before."""
    import chunkcmp
    from pcapbuild import pcap_bytes
    recs = _dp_towards_agent(False, 13000, "accept" if case == "accepted" else "reset",
                             inbound_first=case == "inbound first", opener="other" if case == "third host" else "dp")
    path = tmp_path / "not_wrong.pcap"
    path.write_bytes(pcap_bytes(recs))
    flows = chunkcmp.assert_same(path, [300, 700])
    row = flows[flows.orig_p == 41000].iloc[0]
    assert row.reason != "wrong_direction"
    assert row.purpose == "dp_agent_connection"
    if case != "accepted":
        assert (row.verdict, row.reason) == ("blocked", "rejected")


def test_pair_keys_tell_ipv6_pairs_apart_and_keep_ipv4_ones_exact():
    """The (source, destination) keys of the distribution point's openers: an IPv4 address is its
    own 64-bit half, an IPv6 one a mix of both halves, so that two IPv6 addresses differing in one
    half only do not share a key."""
    import numpy as np

    from kscc_traffic.inspect import _pair_halves
    ver = np.array([4, 6, 6, 6], np.int64)
    hi = np.array([0, 0x20010DB800100000, 0x20010DB800100000, 0x20010DB800200000], np.uint64)
    lo = np.array([0xFFFFC000020A, 0x10, 0x20, 0x10], np.uint64)
    out = _pair_halves(ver, hi, lo)
    assert int(out[0]) == 0xFFFFC000020A
    assert len(set(out[1:].tolist())) == 3


def test_a_live_capture_tells_the_distribution_point_towards_its_agent_as_a_file_does(tmp_path):
    """The live session carries the agents' SYNs to their distribution point's ports from batch
    to batch (as ``cloud_openers``), so the flow the other way is ``wrong_direction`` live too."""
    from pcapbuild import pcap_bytes
    from test_live_session import RULES, _assert_same, _replay

    from kscc_traffic.live.session import LiveSession
    path = tmp_path / "dp_to_agent_live.pcap"
    path.write_bytes(pcap_bytes(_dp_towards_agent(False, 13000, "none", own_port=13295)))
    s = LiveSession(RULES, name=path.name)
    _replay(path, s, step=3)
    live = s.final()
    _assert_same(path, live)
    row = live[live.orig_p == 41000].iloc[0]
    assert (row.verdict, row.reason) == ("unexpected", "wrong_direction")


def _small_segment_flight(end: str, seg: int = 200, drop: int | None = None):
    """(time, frame) records: an agent's ClientHello to TCP 23101, a TLS 1.2 server flight
    (ServerHello, a 6 KB Certificate, ServerHelloDone) in ``seg``-byte segments (the one at index
    ``drop`` not captured), then the client ``end``s: "alert" (unknown_ca, then FIN) or "close"
    (FIN at once)."""
    import struct

    from pcapbuild import eth, ip_of
    from scapy.layers.inet import TCP
    from test_newcomer30_findings import SERVER_HELLO, _hello
    agent, server = "192.0.2.10", "203.0.113.10"
    hello = _hello(b"eu1.ksc.kaspersky.com")
    cert = b"\x30\x82" + struct.pack("!H", 5996) + b"\x41" * 5996
    certs = len(cert).to_bytes(3, "big") + cert
    body = len(certs).to_bytes(3, "big") + certs
    msg = b"\x0b" + len(body).to_bytes(3, "big") + body
    flight = SERVER_HELLO + b"\x16\x03\x03" + struct.pack("!H", len(msg)) + msg + b"\x16\x03\x03\x00\x04\x0e\x00\x00\x00"

    def c(**kw):
        return eth(ip_of(agent, server) / TCP(sport=50000, dport=23101, **kw))

    def s(**kw):
        return eth(ip_of(server, agent) / TCP(sport=23101, dport=50000, **kw))
    t = 1000.0
    out = [(t, c(flags="S", seq=1000)), (t + .01, s(flags="SA", seq=5000, ack=1001)),
           (t + .02, c(flags="A", seq=1001, ack=5001)), (t + .03, c(flags="PA", seq=1001, ack=5001) / hello)]
    cs, ss, t = 1001 + len(hello), 5001, t + .05
    for k, i in enumerate(range(0, len(flight), seg)):
        if k != drop:
            out.append((t, s(flags="A", seq=ss + i, ack=cs) / flight[i:i + seg]))
        t += .0005
    ss += len(flight)
    out.append((t, c(flags="A", seq=cs, ack=ss)))
    if end == "alert":
        alert = b"\x15\x03\x03\x00\x02\x02\x30"
        out.append((t + .01, c(flags="PA", seq=cs, ack=ss) / alert))
        cs += len(alert)
    t += .02
    out += [(t, c(flags="FA", seq=cs, ack=ss)), (t + .01, s(flags="FA", seq=ss, ack=cs + 1)),
            (t + .02, c(flags="A", seq=cs + 1, ack=ss + 1))]
    return out


@pytest.mark.parametrize("end", ["alert", "close"])
@pytest.mark.parametrize("cause", ["limit", "gap", "snaplen"])
def test_a_handshake_not_read_whole_says_why(tmp_path, end, cause):
    """False-positive hunt s55 #9: a server flight in 30 segments of 200 bytes (the capture holds
    it all; only the first 24 segments a direction are inspected) was said "cut by the snaplen",
    its certificate "not in the bytes captured". Each cause is told apart: more segments than are
    inspected, a segment the capture lost (600-byte segments, one missing), the snaplen (80
    bytes); in a whole-file and a chunked reading alike."""
    import chunkcmp
    from pcapbuild import pcap_bytes
    recs = _small_segment_flight(end, seg=600 if cause == "gap" else 200, drop=5 if cause == "gap" else None)
    path = tmp_path / f"{cause}_{end}.pcap"
    path.write_bytes(pcap_bytes(recs))
    if cause == "snaplen":
        import shutil
        import subprocess
        if shutil.which("editcap") is None:
            pytest.skip("editcap (Wireshark) not installed: the snaplen case cuts the capture with it")
        cut = tmp_path / f"snap_{end}.pcap"
        subprocess.run(["editcap", "-s", "80", str(path), str(cut)], check=True, capture_output=True)
        path = cut
    flows = chunkcmp.assert_same(path, [600, 1500])
    row = flows.iloc[0]
    assert (row.purpose, row.verdict, row.reason) == ("agent_connection", "blocked", "tls_failed")
    if end == "alert" and cause == "limit":
        assert "the server's certificate is past what is inspected of its flight (its first 24 segments, at " \
               "most 16 KiB), so whose it was is not read here (Wireshark shows it where the capture holds it)" \
            in row.detail, row.detail
    elif end == "alert" and cause == "gap":
        assert "the server's certificate is not in the bytes captured (lost by the capture), so the capture cannot " \
               "show whose it was" in row.detail, row.detail
    else:
        hows = {"limit": "the handshake longer than what is inspected of a direction (its first 24 TCP segments, "
                         "at most 16 KiB): judged from the TCP packets",
                "gap": "the handshake's bytes interrupted by a segment the capture lost: judged from the TCP packets",
                "snaplen": "the handshake cut by the snaplen: judged from the TCP packets"}
        assert row.detail.endswith(f"({hows[cause]})"), row.detail
    others = {"limit", "gap", "snaplen"} - {cause}
    for other in others:
        assert {"limit": "past what is inspected", "gap": "capture lost", "snaplen": "snaplen"}[other] \
            not in row.detail, (other, row.detail)


@pytest.mark.parametrize("literal, dns_name, names, verdict, reason", [
    # the certificate for the name the address was resolved from: the server's own
    ("203.0.113.10", "eu1.ksc.kaspersky.com", ["eu1.ksc.kaspersky.com", "*.ksc.kaspersky.com"], "ok", ""),
    ("2001:db8:a5::10", "eu1.ksc.kaspersky.com", ["*.ksc.kaspersky.com"], "ok", ""),
    # no DNS in the capture: nothing named, nothing to compare (the certificate says who answered)
    ("203.0.113.10", "", ["eu1.ksc.kaspersky.com"], "ok", ""),
    # a certificate for another name than the one resolved: still told
    ("203.0.113.10", "eu1.ksc.kaspersky.com", ["proxy.corp.example"], "unexpected", "tls_intercepted"),
])
def test_an_address_in_the_sni_names_no_host(tmp_path, literal, dns_name, names, verdict, reason):
    """Break-it s56 (IPv6 and interception pass) #1: a client that dialled an address put it in
    its SNI (RFC 6066 forbids it; OpenSSL-based clients set up with an address do it); the server
    sent its own certificate for the name DNS gave that address: "unexpected/tls_intercepted,
    certificate for eu1.ksc.kaspersky.com presented for 203.0.113.10", advised as TLS inspection.
    An address names no host: the name asked is the one from DNS, as without an SNI."""
    import ssl

    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from test_newcomer30_findings import _hello
    from test_protocols_tls import run_handshake
    from test_tls_view_cut import CLIENT, SERVER, _interleaved, _session, _write

    from kscc_traffic import analyze
    cs, ss, err = run_handshake(tmp_path, ssl.TLSVersion.TLSv1_2, "eu1.ksc.kaspersky.com", names)
    assert err is None
    parts = _interleaved(cs, ss)
    parts[0] = ("c", _hello(literal.encode()))
    recs = _session(parts)
    if dns_name:
        q = DNS(id=9, rd=1, qd=DNSQR(qname=dns_name))
        a = DNS(id=9, qr=1, rd=1, ra=1, qd=DNSQR(qname=dns_name), an=DNSRR(rrname=dns_name, ttl=60, rdata=SERVER[0]))
        resolver = "192.0.2.53"
        recs = [(99.0, Ether() / IP(src=CLIENT[0], dst=resolver) / UDP(sport=53001, dport=53) / q),
                (99.01, Ether() / IP(src=resolver, dst=CLIENT[0]) / UDP(sport=53, dport=53001) / a)] + recs
    flows = analyze(str(_write(tmp_path / "ip_sni.pcap", recs)))
    r = flows[flows.proto == "tcp"].iloc[0]
    assert r.sni == literal and r.dns_name == dns_name
    assert (r.purpose, r.verdict, r.reason) == ("agent_connection", verdict, reason), r.detail


@pytest.mark.parametrize("stamp", [0.0, 12.345, 3 * 86400.0])
@pytest.mark.parametrize("which", [3, 4, 7])
def test_one_record_with_a_damaged_stamp_stays_in_its_connection(tmp_path, stamp, which):
    """Break-it s56 (link types and damaged files) #1: one packet of a working connection stamped
    0, in 1970 or 3 days late (the records around it agree) was sorted away from it: the
    connection split in two, its first part "blocked, the client's first bytes lost by the
    capture". Such a record takes the time of the record before it (file order, as Wireshark
    shows it): one flow, ok, a warning that counts it, in a whole-file and a chunked reading
    alike (chunks of a few records: the record at a chunk's end is decided with the next)."""
    import chunkcmp
    from pcapbuild import pcap_bytes, tcp_session

    from kscc_traffic.analyze import analyze_file
    from test_newcomer30_findings import SERVER_HELLO, _hello
    recs = tcp_session(("192.0.2.10", 50000), ("203.0.113.10", 23101), t0=1_700_000_000.0,
                       c_data=_hello(b"eu1.ksc.kaspersky.com"), s_data=SERVER_HELLO)
    recs += tcp_session(("192.0.2.10", 50001), ("203.0.113.10", 23101), t0=1_700_000_001.0)
    good = tmp_path / "good.pcap"
    good.write_bytes(pcap_bytes(recs))
    recs[which] = (stamp, recs[which][1])
    path = tmp_path / "bad.pcap"
    path.write_bytes(pcap_bytes(recs))
    flows = chunkcmp.assert_same(path, [200, 300, 500, 900])
    ref = analyze_file(good, chunkcmp.RULES).flows
    assert len(flows) == len(ref) == 2
    cols = ["orig_p", "conn_state", "history", "orig_pkts", "resp_pkts", "orig_bytes", "verdict", "reason", "detail"]
    pd_ref = ref.sort_values("orig_p")[cols].reset_index(drop=True)
    pd_got = flows.sort_values("orig_p")[cols].reset_index(drop=True)
    assert pd_got.to_dict("records") == pd_ref.to_dict("records")
    warnings = analyze_file(path, chunkcmp.RULES).warnings
    assert any("1 record stamped where no packet of its place can be (more than 60 s ahead of the records around it"
               in w for w in warnings), warnings
    assert not any("go back by" in w or "jump forward" in w for w in warnings), warnings


@pytest.mark.parametrize("ts, want", [
    ([100, 101, 0, 102, 103], [2]),                     # stamped 0
    ([100, 101, 170, 102, 103], [2]),                   # 69 s ahead of both
    ([100, 101, 150, 102, 103], []),                    # 49 s ahead: not far enough
    ([100, 101, 30, 102, 103], []),                     # 71 s behind: a late write (pktmon's buffer), kept
    ([100, 101, -90_000, 102, 103], [2]),               # a day behind: no late write
    ([100, 101, 0, 0, 102], []),                        # two in a row: a clock, not one damaged stamp
    ([100, 101, 0, 102, 0, 103, 104], [2, 4]),          # damaged, good, damaged: the good one kept (review s56 #1)
    ([100, 500, 101, 501, 102, 502, 103], []),          # two clocks alternating (review s56 #2)
    ([100, 0, 101, 102], []),                           # the second record: no two records before it
    ([100, 101, 102, 0], []),                           # the last one: nothing after it
])
def test_lone_stamps_are_far_from_the_records_around_them_which_agree(ts, want):
    """stamps.LoneStamps: which records are mended (to the time of the one before), whole and fed
    one record at a time (a chunk's last record decided with the next)."""
    import numpy as np

    from kscc_traffic.stamps import LoneStamps
    s, base = 10**9, 1_700_000_000          # (times of 2023, 0 stays 0: 1970)
    t = np.array([x + base if x > 0 or x < -1000 else x for x in ts], np.int64) * s
    _, whole, k = LoneStamps().feed(t, final=True)
    assert np.flatnonzero(whole != t).tolist() == want and k == len(want)
    assert all(whole[i] == whole[i - 1] for i in want)
    one, got = LoneStamps(), []
    for i in range(len(t)):
        decided, part, _ = one.feed(t[i:i + 1], final=i == len(t) - 1)
        got += ([decided] if decided is not None else []) + (part.tolist() if i == len(t) - 1 else [])
    assert got == whole.tolist()


@pytest.mark.parametrize("org, cn, code, verdict, reason, said", [
    ("DigiCert Inc", "DigiCert Global G2 TLS RSA SHA256 2020 CA1", 44, "tls_failed", "tls_failed",
     "the agent's device found it revoked by DigiCert's revocation list or OCSP answer"),
    ("Example Corp", "Example Corp Issuing CA 2", 44, "tls_intercepted", "tls_intercepted",
     "revoked, as the client's revocation check found, and from a CA that is no public one: a TLS-inspecting proxy's?"),
    ("Example Corp", "Example Corp Issuing CA 2", 45, "tls_intercepted", "tls_intercepted",
     "out of date for the client (its clock wrong?), and from a CA that is no public one: a TLS-inspecting proxy's?"),
    ("DigiCert Inc", "DigiCert Global G2 TLS RSA SHA256 2020 CA1", 45, "tls_failed", "tls_failed",
     # (s60: the capture's clock, 1970 here, compared with the certificate's validity)
     "the capture's clock read 1970-01-01, before the certificate's start (valid "),
])
def test_a_revoked_or_expired_certificate_refusal_says_what_it_means(tmp_path, org, cn, code, verdict, reason, said):
    """Break-it s56 (IPv6 and interception pass) #2: a client's certificate_revoked (44) got the bare
    "TLS handshake aborted: client: certificate_revoked (44)" and the generic advice, and a
    certificate_expired (45) for a private CA's certificate the same: both are refusals of the
    certificate, told as the other certificate alerts are (a public CA's: what the device's
    revocation check or clock found; a private CA's: a TLS-inspecting proxy's?)."""
    pytest.importorskip("cryptography")
    from pcapbuild import pcap_bytes
    from test_breakit_s54 import _refused_flights, _tcp

    from kscc_traffic import analyze_file
    hello, server, _ = _refused_flights(tmp_path, org, cn)
    alert = bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, code])
    path = tmp_path / f"alert{code}.pcap"
    path.write_bytes(pcap_bytes(_tcp([("c", hello)] + [("s", r) for r in server] + [("c", alert)])))
    row = analyze_file(path).flows.iloc[0]
    assert (row.verdict, row.reason) == ("blocked", reason), row.detail
    assert said in row.detail, row.detail


def test_a_filters_http_refusal_beside_a_proxys_is_not_advised_as_a_port_to_open(tmp_path):
    """Break-it s56 (IPv6 and interception pass) #4: a CRL request refused 407 by the agent's
    explicit proxy, and a direct one answered 403 by a transparent filter: the advice said of the
    direct one "was blocked going direct: allow outbound HTTP (TCP 80) to *.digicert.com …; 1 of
    them was answered HTTP 403 … (the port is open for it)", contradicting itself. The proxy's
    advice first, then the filter's, and no port to open."""
    from test_proxy_connect import _records, _write
    from test_proxy_then_direct_n28 import ANSWERS, PROXY

    from kscc_traffic import analyze
    from kscc_traffic.report import readiness
    crl = b"/DigiCertGlobalG2TLSRSASHA2562020CA1-1.crl"
    proxied = _records([("c", b"GET http://crl3.digicert.com" + crl + b" HTTP/1.1\r\nHost: crl3.digicert.com\r\n\r\n"),
                        ("s", ANSWERS["407"])], port=53003, proxy=PROXY, close="s")
    direct = _records([("c", b"GET " + crl + b" HTTP/1.1\r\nHost: crl3.digicert.com\r\n\r\n"),
                       ("s", b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")],
                      port=53004, proxy=("203.0.113.80", 80), t0=105.0, close="s")
    from test_newcomer30_findings import SERVER_HELLO, _hello
    agent = _records([("c", _hello(b"eu1.ksc.kaspersky.com")), ("s", SERVER_HELLO)], port=53005,
                     proxy=("203.0.113.10", 23101), t0=110.0)     # (the agent's own traffic: KSC flows)
    flows = analyze(str(_write(tmp_path, proxied + direct + agent, "crl.pcap")))
    check = readiness(flows, load_rules()).set_index("rule").loc["cert_check"]
    assert check.status == "blocked"
    assert "allow outbound HTTP" not in check.fix, check.fix
    assert check.fix.startswith("1 of these 2 connections went through an HTTP proxy that refused or failed it: 407"), check.fix
    assert ("; the other one went direct (through no proxy): this request was answered HTTP 403 on TCP 80, which is "
            "open: a web filter or transparent proxy refused it by policy: allow *.digicert.com in its URL filter") \
        in check.fix, check.fix


@pytest.mark.parametrize("proxied", [True, False])
def test_a_silent_refusal_inside_a_connect_tunnel_is_told_as_a_direct_one(tmp_path, proxied):
    """Break-it s56 (IPv6 and interception pass) #3: through an explicit proxy (CONNECT answered
    200), the client closed without an alert after the server's certificate: "TLS handshake
    aborted: connection closed (SF)" only, where the same exchange direct says who closed, after
    which certificate and issuer. Now the same words inside the tunnel."""
    from test_proxy_connect import OK_200, _connect, _one, _records, _tls
    parts = _tls(tmp_path, verify=True)[:-1]             # (ClientHello, the server's flight; no alert)
    recs = _records(([_connect(), OK_200] if proxied else []) + parts,
                    **({} if proxied else {"proxy": ("203.0.113.10", 23101)}), close="c")
    r = _one(tmp_path, recs)
    assert (r.verdict, r.reason) == ("blocked", "tls_failed"), r.detail
    assert r.detail.startswith("TLS handshake aborted: the client closed the connection (FIN, SF) after the server's "
                               "last flight (its certificate, for *.ksc.kaspersky.com"), r.detail
    assert r.detail.endswith("sending nothing after it, no alert either: how an agent refuses a certificate it does "
                             "not trust without saying so (a TLS-inspecting proxy's?)"), r.detail


def test_a_tunnel_the_proxy_closed_after_a_silence_names_the_proxy(tmp_path):
    """Break-it s56 (IPv6 and interception pass) #5: CONNECT answered 200, the ClientHello, 30 s
    of nothing, then the proxy's FIN: "then the server closed", where the proxy closed the tunnel
    (its reset is said so: "the proxy … reset the tunnel")."""
    from test_newcomer30_findings import _hello
    from test_proxy_connect import OK_200, PROXY, _connect, _one, _records
    r = _one(tmp_path, _records([_connect(), OK_200, ("c", _hello(b"eu1.ksc.kaspersky.com")), ("w", 30.0)], close="s"))
    assert (r.verdict, r.reason) == ("blocked", "tls_failed"), r.detail
    assert r.detail == (f"ClientHello not answered: no byte from the server for 30.0 s, then the proxy "
                        f"{PROXY[0]}:{PROXY[1]} closed the tunnel"), r.detail


def test_a_zero_filled_region_is_told_alike_by_both_engines(tmp_path):
    """Break-it s56 (link types and damaged files) #5: 4,096 bytes of zeros between two records
    of a pcap: the builtin reader says "256 all-zero record headers … a zero-filled region", the
    tshark engine said "256 of the 273 frames were empty records … kept by the tool that wrote the
    file". Both now say the first, with the same flows."""
    import shutil

    from pcapbuild import pcap_bytes, tcp_session

    from kscc_traffic.analyze import analyze_file
    if shutil.which("tshark") is None:
        pytest.skip("tshark (Wireshark) not installed: the tshark engine is compared here")
    recs = tcp_session(("192.0.2.10", 50000), ("203.0.113.10", 23101), t0=1_700_000_000.0)
    data = pcap_bytes(recs)
    first = 24 + 16 + len(bytes(recs[0][1]))        # (the file header and the first record)
    path = tmp_path / "zeros.pcap"
    path.write_bytes(data[:first] + bytes(4096) + data[first:])
    want = "zeros.pcap: 256 all-zero record headers (4096 bytes of zeros: a zero-filled region, from a crash or a sparse copy?) skipped"
    runs = {e: analyze_file(path, load_rules(), engine=e) for e in ("builtin", "tshark")}
    for engine, a in runs.items():
        assert want in a.warnings, (engine, a.warnings)
        assert not any("empty records" in w for w in a.warnings), (engine, a.warnings)
    assert runs["builtin"].flows[["history", "orig_pkts", "resp_pkts"]].values.tolist() \
        == runs["tshark"].flows[["history", "orig_pkts", "resp_pkts"]].values.tolist()


@pytest.mark.parametrize("agent, server, said", [
    ("fd12:3456:789a::25", "2001:db8:a5::10", "a unique local IPv6 address (fc00::/7), which the Internet does not route"),
    ("169.254.7.9", "203.0.113.10", "a link-local IPv4 address (169.254.0.0/16: the device got no DHCP lease?)"),
    ("2001:db8:10::25", "2001:db8:a5::10", ""),          # a global source: nothing to add
    ("192.168.1.25", "203.0.113.10", ""),                # a private IPv4 source: NAT is the rule
    ("fd12:3456:789a::25", "fd12:3456:789a::99", ""),    # to a local address: routed inside
])
def test_syns_from_an_address_the_internet_does_not_route_say_so(tmp_path, agent, server, said):
    """Break-it s56 (IPv6 and interception pass) #6: SYNs from a unique local IPv6 address to a
    global cloud address, unanswered: "SYN sent 4 times, no answer" and "allow outbound …". Such a
    source has no way back without a NAT66/NPTv6 gateway: the detail says so."""
    from pcapbuild import eth, ip_of, pcap_bytes
    from scapy.layers.inet import TCP

    from kscc_traffic import analyze
    recs = [(1000.0 + dt, eth(ip_of(agent, server) / TCP(sport=50102, dport=23101, flags="S", seq=7)))
            for dt in (0, 1, 3, 7)]
    path = tmp_path / "unrouted.pcap"
    path.write_bytes(pcap_bytes(recs))
    row = analyze(str(path)).iloc[0]
    assert (row.verdict, row.reason) == ("blocked", "no_answer")
    if said:
        assert row.detail.startswith(f"SYN sent 4 times, no answer; the agent sent them from {agent}, {said}"), row.detail
    else:
        assert row.detail == "SYN sent 4 times, no answer", row.detail


@pytest.mark.parametrize("code", [44, 45])
def test_a_public_cas_certificate_refused_as_revoked_or_expired_with_no_name_asked(tmp_path, code):
    """Review s56 #4: with an address in the SNI (no name asked) a DigiCert certificate refused as
    revoked or expired was "tls_intercepted … from a CA that is no public one": a public CA's is
    the server's own, told as with a name asked."""
    pytest.importorskip("cryptography")
    from pcapbuild import pcap_bytes
    from test_breakit_s54 import _refused_flights, _tcp
    from test_newcomer30_findings import _hello

    from kscc_traffic import analyze_file
    _, server, _ = _refused_flights(tmp_path, "DigiCert Inc", "DigiCert Global G2 TLS RSA SHA256 2020 CA1")
    alert = bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, code])
    path = tmp_path / f"ip_sni_{code}.pcap"
    path.write_bytes(pcap_bytes(_tcp([("c", _hello(b"203.0.113.10"))] + [("s", r) for r in server] + [("c", alert)])))
    row = analyze_file(path).flows.iloc[0]
    assert (row.verdict, row.reason) == ("blocked", "tls_failed"), row.detail
    assert "(a public CA, DigiCert, not a TLS-inspection product)" in row.detail, row.detail
    assert "no public one" not in row.detail


@pytest.mark.parametrize("v6", [False, True])
def test_a_unicast_to_the_multicast_port_is_not_the_documented_multicast(tmp_path, v6):
    """Break-it s56 (IPv6 and interception pass) #7: a unicast datagram to UDP 15001 counted as
    "1 flow on UDP 15001 multicast seen" (a broadcast there was set apart, a unicast not). It is
    not the page's delivery either: said in its detail, counted apart, named as what it was."""
    from pcapbuild import eth, ip_of, pcap_bytes
    from scapy.layers.inet import UDP

    from kscc_traffic import analyze
    from kscc_traffic.report import TableSummary, readiness
    dp, agent = ("2001:db8:10::100", "2001:db8:10::25") if v6 else ("192.0.2.100", "192.0.2.25")
    recs = [(1000.0, eth(ip_of(dp, agent) / UDP(sport=40000, dport=15001) / (b"k" * 40)))]
    path = tmp_path / "uni15001.pcap"
    path.write_bytes(pcap_bytes(recs))
    flows = analyze(str(path))
    row = flows.iloc[0]
    assert (row.purpose, row.verdict) == ("dp_multicast", "ok")
    assert row.detail == (f"sent as a unicast (to {agent}), where the page documents UDP 15001 as a multicast: "
                          "another application's datagram on this port?")
    for check in (readiness(flows, load_rules()), TableSummary.of(flows).readiness(load_rules())):
        r = check.set_index("rule").loc["dp_multicast"]
        assert (r.status, r.status_note) == ("not seen", "1 unicast to the port, not the documented multicast")


def test_other_cast_kinds_are_read_from_the_details():
    from kscc_traffic.report import other_cast_kind
    d = "sent as a {} (to 192.0.2.25), where the page documents UDP 15001 as a multicast: another application's datagram on this port?"
    assert other_cast_kind([d.format("unicast")]) == "unicast"
    assert other_cast_kind([d.format("unicast"), d.format("broadcast")]) == "broadcast or unicast"
    assert other_cast_kind(["no such text"]) == ""


def _ntlm(kind: int) -> bytes:
    import base64
    return base64.b64encode(b"NTLMSSP\0" + bytes([kind, 0, 0, 0]) + b"\0" * 32)


@pytest.mark.parametrize("scheme, rounds", [("NTLM", 3), ("Basic", 2), ("none", 1)])
def test_a_407_to_a_request_that_carried_credentials_says_the_proxy_refused_them(tmp_path, scheme, rounds):
    """Break-it s56 (IPv6 and interception pass) #11: CONNECT answered 407, the agent's NTLM
    negotiate answered 407 with the challenge, its NTLM authenticate answered 407 again: told as a
    first 407 ("set the proxy account"), though the agent did send credentials. The detail and the
    advice now say that the proxy refused them (an NTLM negotiate message is no credentials)."""
    from test_proxy_connect import _one, _records
    from test_proxy_then_direct_n28 import ANSWERS

    from kscc_traffic import analyze
    from kscc_traffic.classify import PROXY_CREDENTIALS_REFUSED
    from kscc_traffic.report import readiness
    target = "eu1.ksc.kaspersky.com:23101"

    def connect(auth: bytes = b"") -> tuple:
        extra = b"Proxy-Authorization: " + auth + b"\r\n" if auth else b""
        return ("c", f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n".encode() + extra + b"\r\n")
    if scheme == "NTLM":
        parts = [connect(), ("s", ANSWERS["407"]), connect(b"NTLM " + _ntlm(1)), ("s", ANSWERS["407"]),
                 connect(b"NTLM " + _ntlm(3)), ("s", ANSWERS["407"])]
    elif scheme == "Basic":
        parts = [connect(), ("s", ANSWERS["407"]), connect(b"Basic dXNlcjp3cm9uZw=="), ("s", ANSWERS["407"])]
    else:
        parts = [connect(), ("s", ANSWERS["407"])]
    r = _one(tmp_path, _records(parts, close="s"))
    assert (r.verdict, r.reason) == ("blocked", "rejected"), r.detail
    if scheme == "none":
        assert PROXY_CREDENTIALS_REFUSED not in r.detail, r.detail
        return
    asked = f", request {rounds} of the connection"
    assert r.detail.endswith(f"carrying credentials (Proxy-Authorization: {scheme}{asked}): "
                             f"{PROXY_CREDENTIALS_REFUSED}"), r.detail
    flows = analyze(str(tmp_path / "p.pcap"))          # (the capture _one wrote)
    fix = readiness(flows, load_rules()).set_index("rule").loc["agent_connection"].fix
    assert "407 to requests that carried the agent's credentials (the proxy refused them)" in fix, fix
    assert "407 (the proxy wants authentication)" not in fix, fix


def test_an_ntlm_negotiate_message_is_no_credentials():
    from kscc_traffic.protocols.http import proxy_auth_scheme
    head = b"CONNECT a.example:443 HTTP/1.1\r\nProxy-Authorization: NTLM " + _ntlm(1) + b"\r\n\r\n"
    assert proxy_auth_scheme(head) == "NTLM negotiate"
    assert proxy_auth_scheme(head.replace(_ntlm(1), _ntlm(3))) == "NTLM"
    assert proxy_auth_scheme(b"CONNECT a.example:443 HTTP/1.1\r\nHost: a\r\n\r\n") == ""


def test_an_icmp_error_from_a_nat64_address_names_the_ipv4_router(tmp_path):
    """Break-it s56 (IPv6 and interception pass) #8: an SYN to a NAT64 address answered by ICMPv6
    administratively prohibited from 64:ff9b::c633:64fe: the sender is an IPv4 router's address
    translated by the NAT64 gateway, 198.51.100.254: said, so the engineer looks on the IPv4 side."""
    from pcapbuild import eth, pcap_bytes
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6

    from kscc_traffic import analyze
    syn = IPv6(src="2001:db8:10::25", dst="64:ff9b::cb00:710a") / TCP(sport=51200, dport=23101, flags="S", seq=7)
    err = IPv6(src="64:ff9b::c633:64fe", dst="2001:db8:10::25") / ICMPv6DestUnreach(code=1) / bytes(syn)
    path = tmp_path / "nat64.pcap"
    path.write_bytes(pcap_bytes([(1000.0, eth(syn)), (1000.01, eth(err))]))
    row = analyze(str(path)).iloc[0]
    assert (row.verdict, row.reason) == ("blocked", "icmp_unreachable"), row.detail
    assert "from 64:ff9b::c633:64fe (an IPv4 router, 198.51.100.254, its error translated by the NAT64 gateway)" \
        in row.detail, row.detail


@pytest.mark.parametrize("v6", [False, True])
@pytest.mark.parametrize("sender", ["router", "dp"])
def test_a_refusal_on_the_way_to_a_distribution_point_is_advised_there(tmp_path, v6, sender):
    """Break-it s55 (distribution point pass) #12: SYNs to a distribution point's TCP 13000 refused
    by ICMP administratively prohibited from the agent's own router were advised as "allow inbound
    TCP 13000 on the distribution point", the router named in the detail only. The refusing device
    is the one to change; an error from the distribution point's own address stays its own."""
    from pcapbuild import eth, pcap_bytes
    from scapy.layers.inet import ICMP, IP, TCP
    from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6

    from kscc_traffic import analyze
    from kscc_traffic.classify import DP_PATH_REFUSED
    from kscc_traffic.report import TableSummary, readiness
    agent, dp, router = (("2001:db8:10::25", "2001:db8:20::20", "2001:db8:10::1") if v6 else
                         ("192.0.2.25", "198.51.100.20", "192.0.2.1"))
    src = router if sender == "router" else dp
    recs = []
    for k in range(3):
        if v6:
            syn = IPv6(src=agent, dst=dp) / TCP(sport=51200 + k, dport=13000, flags="S", seq=7)
            err = IPv6(src=src, dst=agent) / ICMPv6DestUnreach(code=1) / bytes(syn)
        else:
            syn = IP(src=agent, dst=dp) / TCP(sport=51200 + k, dport=13000, flags="S", seq=7)
            err = IP(src=src, dst=agent) / ICMP(type=3, code=13) / bytes(syn)[:28]
        recs += [(1000.0 + k, eth(syn)), (1000.01 + k, eth(err))]
    path = tmp_path / "dp_refused.pcap"
    path.write_bytes(pcap_bytes(recs))
    flows = analyze(str(path))
    assert set(zip(flows.verdict, flows.reason)) == {("blocked", "icmp_unreachable")}
    on_way = sender == "router"
    assert all((DP_PATH_REFUSED in d) == on_way for d in flows.detail), flows.detail.tolist()
    for check in (readiness(flows, load_rules()), TableSummary.of(flows).readiness(load_rules())):
        fix = check.set_index("rule").loc["dp_agent_connection"].fix
        if on_way:
            assert fix.startswith("these 3 connections were refused by ICMP administratively prohibited from a router "
                                  "or firewall on the way, not by the distribution point"), fix
            assert "allow inbound TCP 13000 on the distribution point" not in fix, fix
        else:
            assert "on the way" not in fix, fix


def test_an_icmp_error_from_the_nat64_destination_itself_is_no_ipv4_router(tmp_path):
    """The NAT64 address of the server itself sending a port unreachable is not "an IPv4 router":
    the sender is named as the destination (the cloud server's own address), not translated."""
    from pcapbuild import eth, pcap_bytes
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6

    from kscc_traffic import analyze
    syn = IPv6(src="2001:db8:10::25", dst="64:ff9b::cb00:710a") / TCP(sport=51200, dport=23101, flags="S", seq=7)
    err = IPv6(src="64:ff9b::cb00:710a", dst="2001:db8:10::25") / ICMPv6DestUnreach(code=4) / bytes(syn)
    path = tmp_path / "nat64_own.pcap"
    path.write_bytes(pcap_bytes([(1000.0, eth(syn)), (1000.01, eth(err))]))
    row = analyze(str(path)).iloc[0]
    assert row.reason == "icmp_unreachable", row.detail
    assert "an IPv4 router" not in row.detail, row.detail
    assert "from 64:ff9b::cb00:710a, the cloud server's own address" in row.detail, row.detail
