"""Break-it pass of session 50 (KSC scenarios the corpus does not show): each test names its finding."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("scapy")

from pcapbuild import pcap_bytes, tcp_session  # noqa: E402
from test_newcomer30_findings import AGENT, KSC, SERVER_HELLO, _fixes, _hello  # noqa: E402

from kscc_traffic import analyze, load_rules  # noqa: E402
from kscc_traffic.html_report import render_html  # noqa: E402
from kscc_traffic.report import console_names, vendor_names  # noqa: E402

RULES = load_rules()


def test_the_bare_console_domain_is_a_wrong_server_address(tmp_path):
    """#5: an SNI of ksc.kaspersky.com itself on 23102 is host_mismatch (``*.`` needs a
    sub-domain); the advice was "the Cloud Console server on a port the page does not document",
    on a documented port: it is the agent's Administration Server address that is wrong."""
    assert console_names(["ksc.kaspersky.com", "KSC.Kaspersky.com.", "eu1.ksc.kaspersky.com"]).tolist() == \
        [False, False, True]
    assert vendor_names(["ksc.kaspersky.com", "ds.kaspersky.com", "kaspersky.com"]).tolist() == [False, True, True]
    path = tmp_path / "bare.pcap"
    path.write_bytes(pcap_bytes(tcp_session((AGENT, 50003), (KSC, 23102), t0=1000.0,
                                            c_data=_hello(b"ksc.kaspersky.com"), s_data=SERVER_HELLO)))
    flows = analyze(str(path))
    row = flows.iloc[0]
    assert (row["purpose"], row["verdict"], row["reason"]) == ("agent_connection", "unexpected", "host_mismatch")
    fix = _fixes(flows)
    assert fix.startswith("the agent is configured with another Administration Server address (ksc.kaspersky.com, "
                          "on TCP 23100-23199"), fix
    assert "does not document for it" not in fix
    assert "does not document for it" not in render_html(flows, RULES)


def _local_answer(tmp_path, name: str, v6: bool, extra=()) -> str:
    """An agent (global address) looks eu1.ksc.kaspersky.com up and gets a local one (ULA fd00:5::40,
    10.20.30.40); its SYN to 23101 there goes unanswered; ``extra`` records added."""
    from scapy.all import DNS, DNSQR, DNSRR, TCP
    from pcapbuild import eth, ip_of, udp
    agent, resolver, server = (("2001:db8::10", "2001:db8::53", "fd00:5::40") if v6
                               else ("198.51.100.10", "198.51.100.53", "10.20.30.40"))
    kind = "AAAA" if v6 else "A"
    ans = DNS(id=7, qr=1, qd=DNSQR(qname="eu1.ksc.kaspersky.com", qtype=kind),
              an=DNSRR(rrname="eu1.ksc.kaspersky.com", type=kind, ttl=60, rdata=server))
    recs = [udp((agent, 41000), (resolver, 53), bytes(DNS(id=7, rd=1, qd=DNSQR(qname="eu1.ksc.kaspersky.com",
                                                                                   qtype=kind))), t=999.0),
            udp((resolver, 53), (agent, 41000), bytes(ans), t=999.01)]
    recs += [(1000.0 + k, eth(ip_of(agent, server) / TCP(sport=50000, dport=23101, flags="S", seq=7)))
             for k in (0, 1, 3, 7)]
    path = tmp_path / name
    path.write_bytes(pcap_bytes(sorted(recs + list(extra), key=lambda r: r[0])))
    return str(path)


@pytest.mark.parametrize("v6", [True, False])
def test_a_cloud_name_resolved_to_a_local_address_is_a_dns_fault_not_an_inbound_connection(tmp_path, v6):
    """#1: the agent (a global address) was given a local address for the cloud's name (a split DNS
    zone, a DNS filter): its SYN there was "an inbound connection: opened from outside" with "close such
    a port forwarding" advice; it is the agent's own attempt, blocked, and the advice is the DNS's."""
    flows = analyze(_local_answer(tmp_path, "local.pcap", v6))
    row = flows[flows["resp_p"] == 23101].iloc[0]
    assert (row["verdict"], row["reason"]) == ("blocked", "no_answer")
    server = "fd00:5::40" if v6 else "10.20.30.40"
    assert row["detail"] == (f"SYN sent 4 times, no answer; eu1.ksc.kaspersky.com was resolved to {server}, a local "
                             "address, where the cloud server never is: a split DNS, a DNS filter or a hosts file "
                             "entry points the name elsewhere (check what the agent's resolver answers for it, and "
                             "the hosts file)")
    assert _fixes(flows) == ("this connection on TCP 23100-23199 went to a local address for a cloud server's name, "
                             "where the cloud server never is: make the agent's resolver (and hosts file) give "
                             "*.ksc.kaspersky.com the cloud's own public addresses (a split DNS zone, a DNS filter or "
                             "a hosts entry answers with a local one); no port is to be opened for it")


def test_beside_other_blocked_flows_the_dns_advice_is_added_and_a_true_inbound_stays(tmp_path):
    """#1: a direct attempt blocked at a cloud address keeps the firewall advice, the local one adds
    the DNS's; a connection from outside to a local address with no lookup before it is still
    wrong_direction (the client resolved nothing)."""
    from pcapbuild import syn_attempts
    extra = syn_attempts(50001, "203.0.113.10", 23101, 1010.0, client="198.51.100.10")
    extra += syn_attempts(50002, "10.20.30.41", 23101, 1020.0, client="203.0.113.77")
    flows = analyze(_local_answer(tmp_path, "mixed.pcap", False, extra))
    fix = _fixes(flows)
    assert fix.startswith("0 of 3 flows ok, 2 blocked, 1 unexpected (1 wrong_direction). For the blocked ones: "
                          "allow outbound TCP 23100-23199 to *.ksc.kaspersky.com"), fix
    assert ("; 1 of them went to a local address for a cloud server's name, where the cloud server never is: make "
            "the agent's resolver (and hosts file) give *.ksc.kaspersky.com the cloud's own public addresses (a split "
            "DNS zone, a DNS filter or a hosts entry answers with a local one). For the unexpected one: this flow on "
            "TCP 23100-23199 was opened from outside towards an agent's address") in fix, fix
    inbound = flows[flows["resp_h"] == "10.20.30.41"].iloc[0]
    assert (inbound["verdict"], inbound["reason"]) == ("unexpected", "wrong_direction")
    assert "where the cloud server never is" not in inbound["detail"]


def test_a_client_side_capture_shows_the_clients_certificate_refusal(tmp_path):
    """#3: only the agent's packets captured; they acknowledge the server's 465 bytes and then send a
    cleartext unknown_ca alert: was ``unclassified``/``one_way`` ("the server answered … not judged")
    although the alert proves the handshake failed on the certificate; now ``blocked``/``tls_failed``
    with the certificate advice (whose it was not shown). A one-way flow without such an alert
    stays one_way."""
    from scapy.all import IP, TCP
    from pcapbuild import eth
    from test_newcomer30_findings import _hello
    hello = _hello(b"eu1.ksc.kaspersky.com")
    def c(t, data=b"", **kw):
        return t, eth(IP(src=AGENT, dst=KSC) / TCP(sport=50010, dport=23101, **kw) / data)

    alert = b"\x15\x03\x03\x00\x02\x02\x30"       # fatal unknown_ca (48)
    s0 = 1000 + 1 + len(hello)
    recs = [c(1000.0, flags="S", seq=1000), c(1000.02, flags="A", seq=1001, ack=5001),
            c(1000.03, hello, flags="PA", seq=1001, ack=5001), c(1000.2, alert, flags="PA", seq=s0, ack=5466),
            c(1000.21, flags="FA", seq=s0 + len(alert), ack=5466)]
    path = tmp_path / "client_side.pcap"
    path.write_bytes(pcap_bytes(recs))
    flows = analyze(str(path))
    row = flows.iloc[0]
    assert (row["verdict"], row["reason"], row["tls_alert"]) == ("blocked", "tls_failed", "client: unknown_ca (48)")
    assert row["detail"].startswith("TLS handshake aborted: client: unknown_ca (48): the client refused the server's "
                                    "certificate; only the originator's packets were captured: they acknowledge the "
                                    "responder's SYN-ACK and 465 bytes of its answers, and the server's side was not "
                                    "captured"), row["detail"]
    fix = _fixes(flows)
    assert "the client refused the server's certificate, which TLS 1.3 hides or the capture lacks" in fix, fix
    # (the same packets without the alert: the server answered, what it said is not in the capture)
    path.write_bytes(pcap_bytes(recs[:3] + [c(1000.21, flags="FA", seq=s0, ack=5466)]))
    row = analyze(str(path)).iloc[0]
    assert (row["verdict"], row["reason"]) == ("unclassified", "one_way")


def _idle_capture(tmp_path, name: str, dead: bool, idle: float = 3600.0) -> str:
    """A TLS-port connection opened and used, idle for ``idle`` s, then data again: answered (an
    agent's session going on), or sent again and again with no answer and reset (``dead``: a
    firewall dropped the idle session)."""
    from scapy.all import IP, TCP
    from pcapbuild import SERVER_MAC, CLIENT_MAC, eth, udp

    def c(t, data=b"", port=50020, **kw):
        return t, eth(IP(src=AGENT, dst=KSC) / TCP(sport=port, dport=23101, **kw) / data)

    def s(t, data=b"", port=50020, **kw):
        return t, eth(IP(src=KSC, dst=AGENT) / TCP(sport=23101, dport=port, **kw) / data, src=SERVER_MAC,
                      dst=CLIENT_MAC)
    recs = tcp_session((AGENT, 50020), (KSC, 23101), t0=1000.0, c_data=_hello(b"eu1.ksc.kaspersky.com"),
                       s_data=SERVER_HELLO, close=False)
    cs, ss = recs[-1][1]["TCP"].seq, recs[-1][1]["TCP"].ack
    if recs[-1][1]["IP"].src == KSC:
        cs, ss = recs[-1][1]["TCP"].ack, recs[-1][1]["TCP"].seq + len(SERVER_HELLO)
    data = b"\x17\x03\x03\x00\x05hello"
    # (the client's next flight and the server's answer: the handshake went on, a working session)
    flight = b"\x14\x03\x03\x00\x01\x01" + data
    recs += [c(1000.06, flight, flags="PA", seq=cs, ack=ss), s(1000.08, data, flags="PA", seq=ss, ack=cs + len(flight)),
             c(1000.09, flags="A", seq=cs + len(flight), ack=ss + len(data))]
    cs, ss = cs + len(flight), ss + len(data)
    t = 1000.1 + idle
    if dead:
        recs += [c(t + d, data, flags="PA", seq=cs, ack=ss) for d in (0, 0.3, 0.9, 2.1, 4.5, 9.3)]
        recs.append(c(t + 15, flags="R", seq=cs + len(data)))
    else:
        recs += [c(t, data, flags="PA", seq=cs, ack=ss), s(t + 0.05, data, flags="PA", seq=ss, ack=cs + len(data)),
                 c(t + 0.1, flags="FA", seq=cs + len(data), ack=ss + len(data)),
                 s(t + 0.15, flags="FA", seq=ss + len(data), ack=cs + len(data) + 1),
                 c(t + 0.2, flags="A", seq=cs + len(data) + 1, ack=ss + len(data) + 1)]
    # (another program's datagrams through the silence, one per chunk of a chunked reading: its
    # clock goes on, so the connection's first part leaves memory before it goes on)
    recs += [udp((AGENT, 40000), ("198.51.100.7", 9999), b"f" * 700, t=1000.0 + k * 200) for k in range(1, 18)]
    path = tmp_path / name
    path.write_bytes(pcap_bytes(sorted(recs, key=lambda r: r[0])))
    return str(path)


def _rows(table):
    return sorted(zip(table["ts"].round(6), table["orig_p"], table["verdict"], table["reason"], table["detail"]))


@pytest.mark.parametrize("dead", [False, True])
def test_a_connection_going_on_after_an_idle_time_is_not_begun_before_the_capture(tmp_path, dead):
    """#2: a connection whose SYN was captured, silent for an hour (split by the 300 s idle timeout,
    as Zeek splits it): its second part was "capture started mid-connection" and counted among the
    flows begun before the capture; died there, the advice was to allow the port. Now its detail
    says it goes on after the silence, the checklist counts no flow begun before the capture, and a
    dead one is advised as a firewall or NAT that forgets idle connections; a chunked reading (the
    first part gone from memory by then) says the same; the silence is no output column."""
    from kscc_traffic.chunked import ChunkedAnalysis
    from kscc_traffic.flows import IDLE_BEFORE
    import pandas as pd
    path = _idle_capture(tmp_path, f"idle{int(dead)}.pcap", dead)
    flows = analyze(path)
    assert IDLE_BEFORE not in flows.columns
    went_on = flows[flows["detail"].str.startswith("goes on with the connection")]
    assert len(went_on) == 1
    row = went_on.iloc[0]
    gap = "3,600 s"
    if dead:
        assert (row["verdict"], row["reason"]) == ("blocked", "no_answer,partial")
        assert row["detail"].startswith(f"goes on with the connection of this 5-tuple after {gap} without a packet "
                                        "(longer than the 300 s TCP idle timeout: a flow of its own, as Zeek's "
                                        "conn.log splits it, not a capture started mid-connection); "), row["detail"]
        fix = _fixes(flows)
        assert "this connection worked, then went on after a silence longer than the idle timeout and got no " \
               "answer any more: a firewall or NAT on the path dropped the idle connection" in fix, fix
        assert "allow outbound" not in fix
    else:
        assert (row["verdict"], row["reason"]) == ("ok", "partial")
        assert row["detail"].startswith(f"goes on with the connection of this 5-tuple after {gap}"), row["detail"]
        fix = _fixes(flows)
        assert "started before the capture" not in fix
    ca = ChunkedAnalysis(path, RULES, "c", chunk_bytes=1024)
    parts = list(ca.batches())
    # (the connection's first part left in an earlier batch than the part going on)
    where = [i for i, p in enumerate(parts) for port in p.loc[p["resp_p"] == 23101, "orig_p"] if port == 50020]
    assert len(where) == 2 and where[0] < where[1], where
    assert _rows(pd.concat(parts, ignore_index=True)) == _rows(flows)


def test_idle_before_marks_only_tcp_flows_split_by_the_idle_timeout(tmp_path):
    """build_flows: the silence before a TCP flow split off by the idle timeout (ns); 0 for the
    first part, for a flow of another 5-tuple and for UDP after a silence past its own timeout."""
    from kscc_traffic.capture.decode import decode
    from kscc_traffic.capture.files import read_frames
    from kscc_traffic.flows import build_flows
    from pcapbuild import udp
    recs = tcp_session((AGENT, 50030), (KSC, 23101), t0=1000.0, close=False)
    from scapy.all import IP, TCP
    from pcapbuild import eth
    recs.append((1400.0, eth(IP(src=AGENT, dst=KSC) / TCP(sport=50030, dport=23101, flags="PA", seq=1001,
                                                           ack=5001) / b"x")))
    recs += [udp((AGENT, 40000), (KSC, 15000), t=1000.0), udp((AGENT, 40000), (KSC, 15000), t=1100.0)]
    path = tmp_path / "split.pcap"
    path.write_bytes(pcap_bytes(sorted(recs, key=lambda r: r[0])))
    ft = build_flows(decode(read_frames(str(path))))
    got = sorted(zip(ft.flows["proto"], ft.flows["ts_ns"] // 10**9, ft.idle_before.tolist()))
    assert got == [("tcp", 1000, 0), ("tcp", 1400, 399_980_000_000), ("udp", 1000, 0), ("udp", 1100, 0)]


def test_idle_splits_stay_bounded():
    """IdleSplits remembers at most MAX_KEPT 5-tuples, the oldest forgotten first, and only open
    TCP connections that left idle."""
    import pandas as pd
    from kscc_traffic.idlesplits import IdleSplits
    w = IdleSplits()
    w.MAX_KEPT = 3
    n = 5
    flows = pd.DataFrame({"proto": ["tcp"] * n + ["udp"], "orig_h": [AGENT] * (n + 1),
                          "orig_p": list(range(50000, 50000 + n)) + [1], "resp_h": [KSC] * (n + 1),
                          "resp_p": [23101] * (n + 1), "conn_state": ["S1"] * (n - 1) + ["SF", "S1"]})
    w.add(flows, np.arange(n + 1, dtype=np.int64), np.ones(n + 1, bool))
    assert len(w) == 3      # (50000 forgotten first; 50004 closed, SF; the UDP flow not TCP)
    later = pd.DataFrame({"proto": ["tcp"] * 3, "orig_h": [KSC] * 3, "orig_p": [23101] * 3, "resp_h": [AGENT] * 3,
                          "resp_p": [50000, 50003, 50002], "partial": [1, 1, 0], "ts_ns": [10**9, 10**9, 10**9],
                          "idle_before_s": [0.0, 0.0, 0.0]})
    w.mark(later)
    assert later["idle_before_s"].tolist() == [0.0, 1.0 - 3e-9, 0.0]
    assert len(w) == 1      # (50002 ended by its later flow, a new connection: not marked)


def _snapped(version: tuple[int, int], swap) -> bytes:
    """A TCP session as a pcap with snaplen 64 (records cut), of ``version``, each record header's
    two lengths written original length first where ``swap(caplen, len)`` says."""
    import struct
    whole = pcap_bytes(tcp_session((AGENT, 50040), (KSC, 23101), t0=1000.0, c_data=b"q" * 300, s_data=b"r" * 500))
    out = bytearray(whole[:24])
    struct.pack_into("<HH", out, 4, *version)
    struct.pack_into("<I", out, 16, 64)
    pos = 24
    while pos < len(whole):
        sec, frac, cl, wl = struct.unpack_from("<IIII", whole, pos)
        data = whole[pos + 16:pos + 16 + cl][:64]
        a, b = (wl, len(data)) if swap(len(data), wl) else (len(data), wl)
        out += struct.pack("<IIII", sec, frac, a, b) + data
        pos += 16 + cl
    return bytes(out)


@pytest.mark.parametrize("version, swap", [((2, 4), lambda c, w: False), ((543, 0), lambda c, w: True),
                                           ((2, 2), lambda c, w: True), ((2, 0), lambda c, w: True),
                                           ((2, 3), lambda c, w: c % 2 == 0)])
def test_old_pcap_versions_read_their_lengths_as_libpcap_does(tmp_path, version, swap):
    """Break-it s50 #9 (third pass): libpcap reads the original length first in a record header
    of versions 2.0-2.2 and DG/UX's 543.0, and in 2.3 takes the smaller length as the captured
    one; read in the 2.4 order, cut records were "damaged" and packets lost. Every version gives
    the 2.4 file's flows (the same counts: captured and original lengths right)."""
    want = analyze(_write_bytes(tmp_path, "v24.pcap", _snapped((2, 4), lambda c, w: False)))
    got = analyze(_write_bytes(tmp_path, "v.pcap", _snapped(version, swap)))
    cols = ["orig_p", "resp_p", "conn_state", "orig_pkts", "orig_bytes", "resp_bytes", "orig_ip_bytes",
            "resp_ip_bytes"]
    assert got[cols].values.tolist() == want[cols].values.tolist()
    assert want[cols].values.tolist() == [[50040, 23101, "SF", 5, 300, 500, 500, 620]]


def _write_bytes(tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("version, ok", [((543, 0), True), ((2, 4), True), ((3, 0), True), ((543, 1), True),
                                         ((1, 0), False), ((0, 4), False)])
def test_dgux_pcap_version_is_read_as_libpcap_reads_it(tmp_path, version, ok):
    """Break-it s50 (inputs) #4: a pcap whose header says version 543.0 (DG/UX tcpdump; libpcap's
    sf-pcap.c accepts it, and Wireshark) was refused; a major version below 2 still is, with one
    line; another above 2 is read as 2.4 with a warning since s51 (fuzz #2), as Wireshark reads it."""
    import struct
    from kscc_traffic.errors import CaptureError
    data = bytearray(pcap_bytes(tcp_session((AGENT, 50040), (KSC, 23101), t0=1000.0)))
    struct.pack_into("<HH", data, 4, *version)
    path = tmp_path / "v.pcap"
    path.write_bytes(bytes(data))
    if ok:
        flows = analyze(str(path))
        assert flows[["orig_p", "resp_p", "conn_state"]].values.tolist() == [[50040, 23101, "SF"]]
    else:
        with pytest.raises(CaptureError, match=f"version {version[0]}.{version[1]} is not supported"):
            analyze(str(path))


@pytest.mark.parametrize("answered", [False, True, "client_fin", "keepalive"])
def test_a_plain_tcp_request_reset_unanswered_is_rejected(tmp_path, answered):
    """Break-it s50 (smaller): KSN on TCP 1443 (a plain TCP purpose) whose SYN-ACK came, whose
    request was acknowledged and then reset with no byte back (an application-aware firewall lets
    the handshake through, then refuses by content) was ``ok``; it is ``rejected``, advised as the
    port open and what answered to be checked. Answered before the reset: still ok."""
    from scapy.all import IP, TCP
    from pcapbuild import CLIENT_MAC, SERVER_MAC, eth
    req = b"K" * 76

    def c(t, data=b"", **kw):
        return t, eth(IP(src=AGENT, dst=KSC) / TCP(sport=50050, dport=1443, **kw) / data)

    def s(t, data=b"", **kw):
        return t, eth(IP(src=KSC, dst=AGENT) / TCP(sport=1443, dport=50050, **kw) / data, src=SERVER_MAC, dst=CLIENT_MAC)
    recs = [c(1000.0, flags="S", seq=100), s(1000.01, flags="SA", seq=900, ack=101), c(1000.02, flags="A", seq=101, ack=901)]
    if answered == "keepalive":     # (no request: 1-byte keep-alive probes, then the reset)
        recs += [c(1000.03 + k, b"\x00", flags="A", seq=100, ack=901) for k in range(3)]
        recs.append(s(1003.2, flags="RA", seq=901, ack=101))
    else:
        recs += [c(1000.03, req, flags="PA", seq=101, ack=901), s(1000.05, flags="A", seq=901, ack=177)]
        back = b"ok" if answered is True else b""
        if answered is True:
            recs.append(s(1000.06, back, flags="PA", seq=901, ack=177))
        if answered == "client_fin":    # (the client closed first: the reset answers its FIN)
            recs.append(c(1000.1, flags="FA", seq=177, ack=901))
        recs.append(s(1000.2, flags="RA", seq=901 + len(back), ack=177 + (answered == "client_fin")))
    path = tmp_path / f"ksn{answered}.pcap"
    path.write_bytes(pcap_bytes(recs))
    flows = analyze(str(path))
    row = flows.iloc[0]
    assert (row["purpose"], row["conn_state"]) == ("ksn", "RSTR")
    if answered:
        assert row["verdict"] == "ok", (answered, row["detail"])
        return
    assert (row["verdict"], row["reason"]) == ("blocked", "rejected")
    assert row["detail"].startswith("the responder reset the connection after the client's request, answering none "
                                    "of it (76 bytes)"), row["detail"]
    fix = _fixes(flows, "ksn")
    assert fix.startswith("this connection: the SYN on TCP 1443 was answered by a SYN-ACK (the port is open: nothing "
                          "to open in the firewall)"), fix
