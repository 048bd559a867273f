"""Session 57: leftovers of the s56 notes (public CA refused with no name asked, …)."""
import pytest


def _ip_literal_refusal(tmp_path, org, cn, code):
    """A TLS 1.2 flow to 203.0.113.10:23101 whose ClientHello's SNI is the address itself (no name
    asked, no DNS in the capture), the server's flight with a certificate issued by ``org``/``cn``,
    and the client's fatal alert ``code``; its one flow row."""
    pytest.importorskip("cryptography")
    from pcapbuild import pcap_bytes
    from test_breakit_s54 import _refused_flights, _tcp
    from test_newcomer30_findings import _hello

    from kscc_traffic import analyze_file
    _, server, _ = _refused_flights(tmp_path, org, cn)
    alert = bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, code])
    path = tmp_path / f"ip_sni_{code}.pcap"
    path.write_bytes(pcap_bytes(_tcp([("c", _hello(b"203.0.113.10"))] + [("s", r) for r in server] + [("c", alert)])))
    return analyze_file(path).flows.iloc[0]


@pytest.mark.parametrize("code,word", [(42, "bad_certificate"), (43, "unsupported_certificate"),
                                       (46, "certificate_unknown"), (48, "unknown_ca")])
def test_a_public_cas_certificate_refused_with_no_name_asked_is_no_proxys(tmp_path, code, word):
    """s56 note: with an address in the SNI (no name asked) a DigiCert certificate refused as
    unknown_ca (or bad/unsupported/unknown certificate) was ``tls_intercepted`` "a TLS-inspecting
    proxy whose CA the client does not trust?": a proxy re-signs with its own CA, not a public one;
    told as with a name asked, the device's root certificates."""
    row = _ip_literal_refusal(tmp_path, "DigiCert Inc", "DigiCert Global G2 TLS RSA SHA256 2020 CA1", code)
    assert (row.verdict, row.reason) == ("blocked", "tls_failed"), row.detail
    assert f"({word} ({code}))" in row.detail, row.detail
    assert "(a public CA, DigiCert, not a TLS-inspection product)" in row.detail, row.detail
    assert "does not trust DigiCert's root" in row.detail, row.detail
    assert "TLS-inspecting proxy whose CA" not in row.detail


def test_a_private_cas_certificate_refused_with_no_name_asked_is_still_a_proxys(tmp_path):
    """The contrast: the same refusal of a certificate from a CA that is no public one stays
    ``tls_intercepted``."""
    row = _ip_literal_refusal(tmp_path, "Example Corp", "Example Corp Issuing CA", 48)
    assert (row.verdict, row.reason) == ("blocked", "tls_intercepted"), row.detail
    assert "a TLS-inspecting proxy whose CA the client does not trust?" in row.detail, row.detail


def _gz_cut_in_first_record(tmp_path):
    """A gzip capture (stored, level 0) of one record of 70 bytes (86 with its header), cut so that its first 58 bytes
    decompress: the pcap header and 34 bytes of the record."""
    import gzip

    from pcapbuild import eth, ip_of, pcap_bytes
    from scapy.layers.inet import TCP
    raw = pcap_bytes([(1000.0, eth(ip_of("192.0.2.10", "203.0.113.10") / TCP(dport=23101, flags="S")
                                   / (b"x" * 16)))])
    assert len(raw) == 24 + 16 + 70
    packed = gzip.compress(raw, compresslevel=0, mtime=0)
    path = tmp_path / "e.pcap.gz"
    path.write_bytes(packed[:10 + 5 + 58])         # gzip header, stored block header, 58 bytes
    return path


def test_a_compressed_capture_cut_in_its_first_record_says_the_stream_was_cut(tmp_path):
    """Break-it s56 link #10: the error gave an offset of the decompressed data (24 in a file of
    73 bytes) without the line that says the gzip stream was cut."""
    import subprocess
    import sys
    path = _gz_cut_in_first_record(tmp_path)
    for args, stdin in (([str(path)], None), (["-"], path.read_bytes())):
        run = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", *args], input=stdin,
                             capture_output=True, timeout=120)
        err = run.stderr.decode()
        assert run.returncode == 2, err
        assert err.count("\n") == 1 and err.startswith("Error: "), err
        assert "no packet could be read: " in err and "at offset 24: 34 of 86 bytes present" in err, err
        assert err.rstrip().endswith("; gzip stream ends before its end marker (file cut short); "
                                     "capture data ends at offset 58"), err


def test_later_fragments_of_overlapping_datagrams_name_the_overlap_as_a_cause(tmp_path):
    """Break-it s56 v6 #9: the row of the later fragments of an IPv6 datagram whose fragments
    overlapped (dropped whole, RFC 5722, as the warning says) named only a lost fragment or the
    capture's edges as why it was never captured whole."""
    import warnings

    from pcapbuild import eth, pcap_bytes
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment

    from kscc_traffic import analyze
    c, s = "2001:db8:10::25", "2001:db8:a5::10"
    seg = bytes(TCP(sport=50710, dport=23101, flags="PA", seq=1, ack=1) / (b"\x16\x03\x01" + b"A" * 61))
    first = IPv6(src=c, dst=s, nh=44) / IPv6ExtHdrFragment(nh=6, offset=0, m=1, id=77) / seg[:48]
    over = IPv6(src=c, dst=s, nh=44) / IPv6ExtHdrFragment(nh=6, offset=3, m=0, id=77) / seg[24:]
    path = tmp_path / "v6overlap.pcap"
    path.write_bytes(pcap_bytes([(1000.0, eth(first)), (1000.001, eth(over))]))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        flows = analyze(str(path))
    assert any("1 IPv6 datagram had overlapping fragments and was dropped whole" in str(w.message) for w in seen), \
        [str(w.message) for w in seen]
    tails = flows[flows["orig_p"] == -1]
    assert len(tails) == 1, flows[["orig_p", "resp_p", "detail"]]
    assert "overlapping fragments dropped whole (RFC 5722" in tails.iloc[0]["detail"]
    assert tails.iloc[0]["verdict"] == "unclassified"


def _answered_elsewhere_capture(tmp_path, v6=False, other_port=False, filler=0, name="elsewhere.pcap",
                                right_ack=True, spacing=0.01):
    """An agent's SYNs (sent 3 times, one source port) to a distribution point's TCP 13000, each
    answered by a SYN-ACK acknowledging it from another address (or, ``other_port``, the same
    address's port 13001), which the agent resets; ``filler`` answered TLS-less connections of
    other agents, ``spacing`` s apart, from the first SYN on (so that a chunked reading meets the
    flows in several batches).
    ``right_ack`` False: the SYN-ACKs acknowledge another sequence number (no answer to it)."""
    from pcapbuild import eth, ip_of, pcap_bytes
    from scapy.layers.inet import TCP
    if v6:
        agent, dp, other = "2001:db8:10::25", "2001:db8:10::20", "2001:db8:10::21"
    else:
        agent, dp, other = "192.0.2.25", "198.51.100.20", "192.0.2.20"
    if other_port:
        other = dp
    oport = 13001 if other_port else 13000
    recs = []
    for k, dt in enumerate((0.0, 1.0, 3.0)):
        t = 1000.0 + dt
        recs.append((t, eth(ip_of(agent, dp) / TCP(sport=50123, dport=13000, flags="S", seq=7000))))
        ack = 7001 if right_ack else 9999
        recs.append((t + 0.0005, eth(ip_of(other, agent) / TCP(sport=oport, dport=50123, flags="SA", seq=500,
                                                                ack=ack))))
        recs.append((t + 0.0006, eth(ip_of(agent, other) / TCP(sport=50123, dport=oport, flags="R", seq=ack))))
    for j in range(filler):
        c = f"2001:db8:30::{j % 200 + 1:x}" if v6 else f"203.0.113.{j % 200 + 1}"
        s = "2001:db8:40::1" if v6 else "198.51.100.99"
        t = 1000.0 + j * spacing
        p = 40000 + j
        recs += [(t, eth(ip_of(c, s) / TCP(sport=p, dport=8080, flags="S", seq=1))),
                 (t + 0.001, eth(ip_of(s, c) / TCP(sport=8080, dport=p, flags="SA", seq=5, ack=2))),
                 (t + 0.002, eth(ip_of(c, s) / TCP(sport=p, dport=8080, flags="A", seq=2, ack=6))),
                 (t + 0.003, eth(ip_of(c, s) / TCP(sport=p, dport=8080, flags="FA", seq=2, ack=6))),
                 (t + 0.004, eth(ip_of(s, c) / TCP(sport=8080, dport=p, flags="FA", seq=6, ack=3))),
                 (t + 0.005, eth(ip_of(c, s) / TCP(sport=p, dport=8080, flags="A", seq=3, ack=7)))]
    recs.sort(key=lambda r: r[0])
    path = tmp_path / name
    path.write_bytes(pcap_bytes(recs))
    return path, agent, dp, other, oport


@pytest.mark.parametrize("v6", [False, True])
@pytest.mark.parametrize("other_port", [False, True])
def test_syns_answered_from_another_address_are_not_a_port_to_open(tmp_path, v6, other_port):
    """s55 DP pass #8 (left then): an agent's SYNs to its distribution point answered by SYN-ACKs
    from the DP's other address (a hairpin NAT missing, a server answering from another of its
    addresses), which the agent reset, were "SYN sent 3 times, no answer" and the checklist said
    "allow inbound TCP 13000 on the distribution point". The answers are in the capture: the flow
    is blocked/wrong_source, its detail names where the answer came from, and the advice is the
    address translation, no port."""
    from kscc_traffic import analyze, load_rules
    from kscc_traffic.addresses import endpoint_text
    from kscc_traffic.classify import ANSWERED_ELSEWHERE
    from kscc_traffic.report import TableSummary, readiness
    path, agent, dp, other, oport = _answered_elsewhere_capture(tmp_path, v6, other_port)
    flows = analyze(str(path))
    syn = flows[flows["resp_h"] == dp].iloc[0] if not other_port else flows[flows["resp_p"] == 13000].iloc[0]
    assert (syn.conn_state, syn.history, syn.verdict, syn.reason) == ("S0", "S", "blocked", "wrong_source")
    assert syn.detail.startswith(f"{ANSWERED_ELSEWHERE}: SYN sent 3 times; a SYN-ACK acknowledging it came from "
                                 f"{endpoint_text(other, oport)}, not from {endpoint_text(dp, 13000)}, the address "
                                 "and port contacted: "), syn.detail
    assert "no firewall rule is the fix" in syn.detail
    stray = flows[flows.index != syn.name].iloc[0]
    assert (stray.history, stray.verdict) == ("^hR", "unclassified")
    for check in (readiness(flows, load_rules()), TableSummary.of(flows).readiness(load_rules())):
        fix = check.set_index("rule").loc["dp_agent_connection"].fix
        assert fix.startswith("this connection attempt was answered from another address or port than the one "
                              "contacted"), fix
        assert "allow inbound" not in fix, fix


def test_a_syn_ack_for_another_sequence_number_is_no_answer_from_elsewhere(tmp_path):
    """The SYN-ACKs of another address that acknowledge another sequence number answer something
    else: the SYNs stay unanswered (no_answer), as before."""
    from kscc_traffic import analyze
    path, agent, dp, other, _ = _answered_elsewhere_capture(tmp_path, right_ack=False)
    syn = analyze(str(path)).set_index("resp_h").loc[dp]
    assert (syn.verdict, syn.reason, syn.detail) == ("blocked", "no_answer", "SYN sent 3 times, no answer")


def test_answered_from_elsewhere_in_chunks_live_and_tshark(tmp_path):
    """The same in a chunked reading (the stray SYN-ACK's own flow leaves minutes before the
    unanswered SYN's), a live session and the tshark engine."""
    import shutil
    import sys
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    import chunkcmp
    # (400 s of other connections: the reset SYN-ACK's flow leaves within seconds, the unanswered
    # SYN's 5 minutes after its last packet, batches later)
    path, agent, dp, *_ = _answered_elsewhere_capture(tmp_path, filler=400, spacing=1.0)
    whole = chunkcmp.assert_same(path, [20_000, 60_000])
    assert whole.set_index("resp_h").loc[dp].reason == "wrong_source"
    from test_live_session import RULES, _replay

    from kscc_traffic.live.session import LiveSession
    s = LiveSession(RULES, name=path.name)
    _replay(path, s, step=50)
    assert s.final().set_index("resp_h").loc[dp].reason == "wrong_source"
    if shutil.which("tshark"):
        from kscc_traffic import analyze_file
        row = analyze_file(path, engine="tshark").flows.set_index("resp_h").loc[dp]
        assert (row.reason, row.detail) == ("wrong_source", whole.set_index("resp_h").loc[dp].detail)


def _sixteen_ports(tmp_path, named: bool):
    """An agent trying 16 ports of the cloud's range 23100-23199 of one address, one every 10 s,
    each SYN unanswered and sent again at +1 s and +3 s; ``named``: a DNS lookup of
    eu1.ksc.kaspersky.com answering that address before the first."""
    from pcapbuild import eth, ip_of, pcap_bytes
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import TCP, UDP
    agent, resolver, cloud, name = "192.0.2.10", "192.0.2.53", "203.0.113.10", "eu1.ksc.kaspersky.com"
    recs = []
    if named:
        recs += [(999.0, eth(ip_of(agent, resolver) / UDP(sport=5353, dport=53) / DNS(id=7, rd=1, qd=DNSQR(qname=name)))),
                 (999.01, eth(ip_of(resolver, agent) / UDP(sport=53, dport=5353)
                              / DNS(id=7, qr=1, rd=1, ra=1, qd=DNSQR(qname=name), an=DNSRR(rrname=name, ttl=600, rdata=cloud))))]
    for k in range(16):
        for dt in (0.0, 1.0, 3.0):
            recs.append((1000.0 + 10 * k + dt, eth(ip_of(agent, cloud) / TCP(sport=50000 + k, dport=23100 + k,
                                                                              flags="S", seq=1000 * k))))
    path = tmp_path / f"sixteen_{'named' if named else 'bare'}.pcap"
    path.write_bytes(pcap_bytes(recs))
    return path


@pytest.mark.parametrize("named", [True, False])
def test_an_agent_trying_sixteen_ports_of_a_name_it_looked_up_is_no_port_scan(tmp_path, named):
    """Break-it s57 (public bug reports) #1, #2: an agent that looked up the cloud's name and tried
    16 ports of its range (the page: "may use ANY port in each range"), every SYN unanswered, was a
    "port scan": every flow unclassified, agent_connection "not seen", exit 0. Probes to a name the
    originator looked up are no port-scan probes, as they were no address-scan probes; without the
    lookup the same attempts are still a scan's (Zeek's scan.zeek threshold, 15 ports)."""
    import sys
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    import chunkcmp
    path = _sixteen_ports(tmp_path, named)
    flows = chunkcmp.assert_same(path, [600, 1500])
    tcp = flows[flows["proto"] == "tcp"]
    assert len(tcp) == 16
    if named:
        assert set(zip(tcp.purpose, tcp.verdict, tcp.reason)) == {("agent_connection", "blocked", "no_answer")}
    else:
        assert set(zip(tcp.verdict, tcp.reason)) == {("unclassified", "port_scan")}


def test_a_stalled_connection_is_advised_as_a_dropped_session_not_a_port_to_open(tmp_path):
    """Break-it s57 (real stacks) #1: a connection whose handshake and first exchange worked, then
    whose next bytes were never acknowledged (a firewall's state table flushed: conntrack -F with
    ``ct state invalid drop``) was advised "allow outbound TCP 23100-23199": a port the same flow
    shows open. Advised as a session dropped on the way; with an unanswered SYN beside it, both."""
    from chunkcmp import whole, write
    from pcapbuild import eth, ip_of
    from scapy.layers.inet import TCP
    from test_stalled_connections import _stalled

    from kscc_traffic import load_rules
    from kscc_traffic.report import TableSummary, readiness
    rules = load_rules()
    path = write(tmp_path, _stalled(None))
    flows, _ = whole(path)
    assert (flows.iloc[0].verdict, flows.iloc[0].reason) == ("blocked", "no_answer")
    for check in (readiness(flows, rules), TableSummary.of(flows).readiness(rules)):
        fix = check.set_index("rule").loc["agent_connection"].fix
        assert fix.startswith("this connection was made (the port is open), then stalled, the last bytes sent never "
                              "acknowledged (see each flow's detail): a firewall or NAT on the path lost or dropped "
                              "the established connection"), fix
        assert fix.endswith("; no port is to be opened") and "allow outbound" not in fix, fix
    recs = _stalled(None) + [(200.0 + k, bytes(eth(ip_of("192.0.2.11", "198.51.100.20")
                                                 / TCP(sport=50001, dport=23101, flags="S", seq=9))))
                             for k in (0, 1, 3)]
    flows, _ = whole(write(tmp_path, sorted(recs, key=lambda r: r[0]), "both.pcap"))
    assert sorted(flows.reason) == ["no_answer", "no_answer"]
    for check in (readiness(flows, rules), TableSummary.of(flows).readiness(rules)):
        fix = check.set_index("rule").loc["agent_connection"].fix
        assert fix.startswith("allow outbound TCP 23100-23199"), fix
        assert "; 1 of them was made (the port is open), then stalled, the last bytes sent never acknowledged: a " \
               "firewall or NAT on the path lost" in fix, fix


def test_a_reset_to_data_of_a_connection_begun_before_the_capture_is_no_refused_port(tmp_path):
    """Break-it s57 (real stacks) #3: the data of a connection begun before the capture answered by
    a reset with the server's own TTL (the server's other connection in the capture) said "most
    likely the server's own answer: nothing listens on this port there", and the checklist "the port
    was accepted at … and refused at …: the service was down or restarting". No SYN was refused:
    the session was gone; advised as a session dropped on the way, no port to open."""
    from chunkcmp import whole, write
    from pcapbuild import eth, ip_of
    from scapy.layers.inet import IP, TCP
    from test_stalled_connections import _opened

    from kscc_traffic import load_rules
    from kscc_traffic.report import TableSummary, readiness
    rules = load_rules()
    recs, _, _, t = _opened()           # (a working connection, 192.0.2.10:50000 -> 198.51.100.20:23101)
    c, s = "192.0.2.10", "198.51.100.20"
    rec = b"\x17\x03\x03\x00\x3b" + bytes(59)
    recs += [(t + 1.0, bytes(eth(IP(src=c, dst=s, ttl=64) / TCP(sport=50999, dport=23101, flags="PA", seq=77,
                                                                 ack=99) / rec))),
             (t + 1.01, bytes(eth(IP(src=s, dst=c, ttl=64) / TCP(sport=23101, dport=50999, flags="R", seq=99))))]
    flows, _ = whole(write(tmp_path, recs))
    gone = flows[flows["orig_p"] == 50999].iloc[0]
    assert (gone.verdict, gone.reason, gone.history) == ("blocked", "rejected,partial", "Dr"), gone.detail
    assert gone.detail.endswith("the connection no longer existed on the other side (a firewall that dropped an "
                                "idle session?); the reset came with the server's own TTL (64, as its packets on other "
                                "connections): the server itself no longer knew the connection (or a firewall that "
                                "copies its TTL dropped it)"), gone.detail
    assert "nothing listens" not in gone.detail
    for check in (readiness(flows, rules), TableSummary.of(flows).readiness(rules)):
        fix = check.set_index("rule").loc["agent_connection"].fix
        assert "this connection was begun before the capture, its data answered only by TCP resets: the session no " \
               "longer existed on the other side: the server itself no longer knew it (restarted, or it timed the " \
               "session out), or a firewall or NAT on the path lost or dropped" in fix, fix
        assert "restarting" not in fix and "allow outbound" not in fix, fix
