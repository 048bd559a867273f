"""Break-it round 16: findings fixed (see each test)."""
from __future__ import annotations

import pytest
from scapy.layers.inet import TCP

from chunkcmp import assert_same, whole, write
from pcapbuild import eth, ip_of
from test_classify_fast import assert_same as assert_same_as_reference
from kscc_traffic.rules import load_rules

RULES = load_rules()
C, S = ("192.0.2.10", 50000), ("203.0.113.10", 23101)


def _up(t, data=b"", **kw):
    return t, bytes(eth(ip_of(C[0], S[0]) / TCP(sport=C[1], dport=S[1], **kw) / data))


def _dn(t, data=b"", **kw):
    return t, bytes(eth(ip_of(S[0], C[0]) / TCP(sport=S[1], dport=C[1], **kw) / data,
                        src="02:00:00:00:00:01", dst="02:00:00:00:00:10"))


def _wrong_answers(kind: str, rounds: int = 3, then_ok: bool = False, foreign: int = 555555):
    """The agent's SYN (ISN 700000) answered by a bare ACK of an old connection (``kind``
    'ack') or by a SYN-ACK acknowledging another number ('synack'); the agent resets each
    answer (RFC 9293 §3.10.7.3) and tries again 1 s later."""
    recs, t = [], 1000.0
    for _ in range(rounds):
        recs.append(_up(t, flags="S", seq=700000))
        if kind == "ack":
            recs.append(_dn(t + .01, flags="A", seq=123456, ack=foreign))
        else:
            recs.append(_dn(t + .01, flags="SA", seq=900000, ack=foreign))
        recs.append(_up(t + .02, flags="R", seq=foreign))
        t += 1
    if then_ok:
        recs += [_up(t, flags="S", seq=700000), _dn(t + .01, flags="SA", seq=900000, ack=700001),
                 _up(t + .02, flags="A", seq=700001, ack=900001),
                 _up(t + .03, b"\x16\x03\x01\x00\x01x", flags="PA", seq=700001, ack=900001),
                 _dn(t + .04, flags="A", seq=900001, ack=700007)]
    return recs


@pytest.mark.parametrize("kind, words", [
    ("ack", "no connection was made: the SYN was answered only by an ACK of another connection (an RFC 5961 "
            "challenge ACK"),
    ("synack", "no connection was made: the SYN was answered by a SYN-ACK acknowledging another sequence "
               "number than the SYN's"),
])
@pytest.mark.parametrize("foreign", [555555, 1123457], ids=["ack-below-isn", "ack-above-isn"])
def test_a_syn_answered_by_a_packet_that_does_not_acknowledge_it_is_blocked(tmp_path, kind, words, foreign):
    """F2: the agent resets such an answer and never connects: it was ``ok`` (``RSTOS0 SaR``,
    ``RSTO ShR``) and verified the purpose. The foreign acknowledgement number, above the SYN's
    or below, counts no bytes (newcomer 20 F3: 423,241 bytes "sent" by the client)."""
    path = write(tmp_path, _wrong_answers(kind, foreign=foreign))
    flows, _ = whole(path)
    (r,) = flows.to_dict("records")
    assert (r["verdict"], r["reason"], r["orig_bytes"], r["resp_bytes"]) == ("blocked", "rejected", 0, 0)
    assert r["detail"].startswith(words) and r["detail"].endswith("on this address and port, or a broken SYN "
                                                                  "proxy)" if kind == "synack" else
                                                                  "on this address and port)")
    assert_same(path, [200, 400])
    assert_same_as_reference(flows, RULES)


def test_a_retry_that_gets_a_real_syn_ack_is_ok(tmp_path):
    """The retry (same ISN) accepted is a flow of its own, ok (session 31: it was one flow
    ``SaRhAD``, whose RST made a TLS handshake after it "aborted by the client"); the attempt
    the stale connection answered keeps its state and, its retry connected, is ``ok`` too: a
    stale connection cleared (session 32: it stayed ``blocked``/``rejected``)."""
    path = write(tmp_path, _wrong_answers("ack", rounds=1, then_ok=True))
    rows = whole(path)[0].to_dict("records")
    got = [(r["conn_state"], r["history"], r["verdict"], r["reason"]) for r in rows]
    assert got == [("RSTOS0", "SaR", "ok", ""), ("S1", "ShADa", "ok", "")]
    assert rows[0]["detail"].startswith("stale connection cleared: ") and rows[0]["detail"].endswith(
        f"on {rows[1]['uid']}) connected"), rows[0]["detail"]


def test_a_half_open_scan_stays_ok(tmp_path):
    """SYN, a SYN-ACK acknowledging it, RST: the port answered (a scan, a health check)."""
    recs = [_up(1000.0, flags="S", seq=700000), _dn(1000.01, flags="SA", seq=900000, ack=700001),
            _up(1000.02, flags="R", seq=700001)]
    (r,) = whole(write(tmp_path, recs))[0].to_dict("records")
    assert (r["conn_state"], r["verdict"]) == ("RSTO", "ok")


#: a TLS 1.3 client's flight after the server's: CCS and its Finished alone (a 53-byte record,
#: SHA-256 suites), or with the empty Certificate that answers a CertificateRequest (25 bytes)
#: before it, as OpenSSL sends them
FINISHED13 = b"\x14\x03\x03\x00\x01\x01" + b"\x17\x03\x03\x00\x35" + bytes(53)
NO_CERT13 = b"\x14\x03\x03\x00\x01\x01" + b"\x17\x03\x03\x00\x19" + bytes(25) + b"\x17\x03\x03\x00\x35" + bytes(53)


def _tls13(after: list[tuple[bool, bytes]], closer_server: bool = True, gap: float = 0.0,
           fin: bytes = FINISHED13):
    """A TLS 1.3 handshake read whole (ClientHello; ServerHello, CCS, its encrypted flight; the
    client's flight ``fin``), then ``after`` [(from the server, bytes)], then the closer's FIN.
    Packets 10 ms apart (the TCP handshake's round trip is 20 ms), ``gap`` s more before
    ``after``."""
    from test_tls_batch import SV13, client_hello, ext, rec, server_hello, sni_ext
    ch = rec(22, client_hello([sni_ext([(0, b"eu1.ksc.kaspersky.com")]), ext(43, b"\x02\x03\x04")]), 0x0301)
    sh = rec(22, server_hello([SV13])) + rec(20, b"\x01") + rec(23, bytes(700))
    t, cs, ss = 1000.0, 700001, 900001
    recs = [_up(t, flags="S", seq=cs - 1), _dn(t + .01, flags="SA", seq=ss - 1, ack=cs),
            _up(t + .02, flags="A", seq=cs, ack=ss)]
    t += .03
    for k, (server, data) in enumerate([(False, ch), (True, sh), (False, fin)] + after):
        if k == 3:
            t += gap                # (the time before ``after``)
        if server:
            recs.append(_dn(t, data, flags="PA", seq=ss, ack=cs))
            ss += len(data)
        else:
            recs.append(_up(t, data, flags="PA", seq=cs, ack=ss))
            cs += len(data)
        t += .01
    if closer_server:
        recs += [_dn(t, flags="FA", seq=ss, ack=cs), _up(t + .01, flags="FA", seq=cs, ack=ss + 1),
                 _dn(t + .02, flags="A", seq=ss + 1, ack=cs + 1)]
    else:
        recs += [_up(t, flags="FA", seq=cs, ack=ss), _dn(t + .01, flags="FA", seq=ss, ack=cs + 1),
                 _up(t + .02, flags="A", seq=cs + 1, ack=ss + 1)]
    return recs


ALERT13 = b"\x17\x03\x03\x00\x13" + bytes(19)        # an encrypted alert: 24 bytes


def test_tls13_server_refusing_the_client_after_its_finished_is_tls_failed(tmp_path):
    """F3: after the client's Finished (and its empty Certificate: the server asked for one) the
    server sends one encrypted alert's size (its certificate_required: a client certificate it
    asked for and did not get) and closes: it was ``ok``, ``tls_established`` and verified the
    purpose. Also when the client's first data went with its Finished (the alert acknowledges it)."""
    for after in ([(True, ALERT13)], [(False, b"\x17\x03\x03\x00\x40" + bytes(64)), (True, ALERT13)]):
        path = write(tmp_path, _tls13(after, fin=NO_CERT13))
        flows, _ = whole(path)
        (r,) = flows.to_dict("records")
        assert (r["tls_version"], r["verdict"], r["reason"]) == ("TLS 1.3", "blocked", "tls_failed")
        assert r["detail"].startswith("TLS 1.3: after the client's Finished the server sent only 24 bytes, "
                                      "an encrypted alert's size, and closed the connection (SF)")
        assert_same(path, [300, 900])
        assert_same_as_reference(flows, RULES)


@pytest.mark.parametrize("after, closer_server", [
    ([(True, b"\x17\x03\x03\x00\xd0" + bytes(208)), (True, ALERT13)], True),   # a session ticket, then its close
    ([(False, ALERT13), (True, ALERT13)], False),                             # a health check: the client closes
    ([], True),                                                               # nothing after: not this case
], ids=["ticket", "client-closes", "no-bytes"])
def test_tls13_sessions_that_close_normally_stay_ok(tmp_path, after, closer_server):
    (r,) = whole(write(tmp_path, _tls13(after, closer_server)))[0].to_dict("records")
    assert (r["tls_version"], r["tls_established"], r["verdict"]) == ("TLS 1.3", True, "ok"), r["detail"]


def test_tls13_idle_close_a_minute_later_is_no_refusal(tmp_path):
    """Newcomer 20 F4: a server closing an idle connection with its close_notify a minute after
    the handshake (the same 24 bytes as an alert) is a normal close: the refusal is read only
    within 3 s of the client's Finished (even from a server that asked for a certificate)."""
    (r,) = whole(write(tmp_path, _tls13([(True, ALERT13)], gap=60.0, fin=NO_CERT13)))[0].to_dict("records")
    assert (r["tls_version"], r["tls_established"], r["verdict"]) == ("TLS 1.3", True, "ok"), r["detail"]


def test_a_clock_that_never_moves_is_warned_about(tmp_path):
    """F4: every packet with one timestamp (a writer that stamped none): the time rules cannot
    apply and no flow ends by time (memory grows with the capture): one warning line, whole and
    chunked alike; a capture whose clock moves gets none."""
    one = _tls13([(True, b"\x17\x03\x03\x00\xd0" + bytes(208))])
    (r,) = whole(write(tmp_path, [(1000.0, b) for _, b in one], name="few.pcap"))[1].warnings or [None]
    assert r is None                     # (a few packets in one tick of a coarse clock: no warning)
    recs = [(1000.0, b) for _ in range(10) for _, b in one]      # (ten such sessions, one timestamp)
    path = write(tmp_path, recs)
    _, a = whole(path)
    frozen = [w for w in a.warnings if "same timestamp" in w]
    assert frozen == [f"{path.name}: all {len(recs)} packets have the same timestamp: durations are 0 and the "
                      "time rules (3 s without an answer, idle timeouts, the 5 s close delay) cannot apply; no "
                      "flow ends by time, so a large capture's flows are all held in memory"]
    assert_same(path, [300, 900])
    _, a = whole(write(tmp_path, _tls13([]), name="moving.pcap"))
    assert not [w for w in a.warnings if "same timestamp" in w]


def test_the_advice_for_a_stale_connection_is_not_to_open_a_port(tmp_path):
    """F2's checklist line: the SYNs reached something holding an old connection; "allow outbound
    TCP …" would send the admin to a firewall rule that is already there. The table's running
    counts (TableSummary) give the same line as readiness()."""
    from kscc_traffic.report import TableSummary, readiness
    flows, _ = whole(write(tmp_path, _wrong_answers("ack")))
    want = ("this connection on TCP 23100-23199: the SYN was answered by an old connection's packets (a "
            "challenge ACK, a SYN-ACK for another sequence number), which the agent reset: a firewall, NAT or "
            "the server still holds a stale connection on that address and port. Clear it there (or shorten "
            "the device's TCP timeouts); no port is to be opened")
    for chk in (readiness(flows, RULES), TableSummary.of(flows).readiness(RULES)):
        row = chk.set_index("rule").loc["agent_connection"]
        assert (row["status"], row["fix"]) == ("blocked", want)
    # (a SYN answered by a reset, REJ, keeps the advice to open the port)
    recs = [_up(1000.0, flags="S", seq=700000), _dn(1000.01, flags="RA", seq=0, ack=700001)]
    flows, _ = whole(write(tmp_path, recs, name="rej.pcap"))
    assert flows.iloc[0]["detail"] == "the SYN was answered by a TCP reset"
    fix = readiness(flows, RULES).set_index("rule").loc["agent_connection", "fix"]
    assert fix.startswith("allow outbound TCP 23100-23199")


def _dns_pair(name: str, qtype: int, rcode: int, port: int, t: float, qid: int, answer: bytes = b""):
    import struct as st
    from pcapbuild import udp
    qs = b"".join(bytes([len(x)]) + x.encode() for x in name.split(".")) + b"\0" + st.pack("!HH", qtype, 1)
    ask = st.pack("!6H", qid, 0x0100, 1, 0, 0, 0) + qs
    reply = st.pack("!6H", qid, 0x8180 | rcode, 1, 1 if answer else 0, 0, 0) + qs + answer
    return [udp(("192.0.2.10", port), ("198.51.100.53", 53), ask, t=t),
            udp(("198.51.100.53", 53), ("192.0.2.10", port), reply, t=t + .01)]


A_RR = bytes.fromhex("c00c0001000100000e100004cb00710a")       # eu1 -> 203.0.113.10


def test_only_the_aaaa_query_refused_is_not_blocking(tmp_path):
    """A resolver or filter that fails AAAA queries (SERVFAIL) while A works: Windows asks both
    from separate source ports, so the AAAA flow had no usable address and was "blocked: the
    agent needs this name". Only the IPv6 address was refused: ok, the detail says so. An A
    query refused (alone, or after an AAAA one in the same flow) stays blocked, whole and in
    small chunks."""
    name = "eu1.ksc.kaspersky.com"
    recs = _dns_pair(name, 1, 0, 40001, 1000.0, 1, A_RR) + _dns_pair(name, 28, 2, 40002, 1000.001, 2)
    path = write(tmp_path, sorted(recs, key=lambda r: r[0]))
    flows, _ = whole(path)
    r = flows[flows.orig_p == 40002].iloc[0]
    assert (r["dns_rcode"], r["verdict"], r["reason"]) == ("SERVFAIL", "ok", "")
    assert r["detail"] == (f"DNS answer SERVFAIL for {name}: only its AAAA (IPv6 address) query; an agent "
                           "connects over IPv4 with the A answer (an IPv6-only network would need it)")
    # one flow (glibc's one socket): AAAA refused, then A refused too; and an A refused alone
    # (more datagrams than a carried flow keeps whole, 24 a direction: the A error must be kept
    # for the next batch)
    both = _dns_pair(name, 28, 2, 40003, 1000.0, 3) \
        + [r for k in range(26) for r in _dns_pair(name, 28, 0, 40003, 1000.02 + k / 100, 10 + k)] \
        + _dns_pair(name, 1, 2, 40003, 1000.3, 4) \
        + [r for k in range(5) for r in _dns_pair(name, 28, 0, 40003, 1000.32 + k / 100, 50 + k)] \
        + _dns_pair(name, 1, 2, 40004, 1000.6, 6)
    path = write(tmp_path, sorted(both, key=lambda r: r[0]), name="both.pcap")
    flows, _ = whole(path)
    for port in (40003, 40004):
        r = flows[flows.orig_p == port].iloc[0]
        assert (r["verdict"], r["reason"]) == ("blocked", "rejected"), port
    assert_same(path, [120, 250, 400])
    assert_same_as_reference(flows, RULES)
