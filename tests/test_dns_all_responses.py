"""``dns_rcode`` / ``dns_answers`` read every DNS response of a flow, not only its first.

glibc's resolver asks for A and AAAA from one UDP socket (one flow); the AAAA answer (NOERROR,
no address) often comes first and the A answer (a DNS filter's 0.0.0.0, or the real address)
second. ``dns_answers`` holds the distinct addresses of all responses in order of arrival, the
sinkhole note fires for any of them, and ``dns_rcode`` is the first code that is not NOERROR
(else NOERROR): the same whole, in chunks (the responses that matter carried between batches),
in a live session and over TCP."""
from __future__ import annotations

import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP

from chunkcmp import RULES, assert_same, row, write
from kscc_traffic import inspect as insp
from kscc_traffic.analyze import analyze_file
from kscc_traffic.report import dns_errors
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth, udp
from test_dns_rcode import _tcp_msg

C, RES = "192.0.2.10", "203.0.113.53"
HOLE = (": a sinkhole address (nowhere, or the client itself), as a DNS filter answers for a name it "
        "blocks")


def _q(name: str, txid: int, qtype: str = "A") -> DNS:
    return DNS(id=txid, rd=1, qd=DNSQR(qname=name, qtype=qtype))


def _r(name: str, txid: int, qtype: str = "A", addrs=(), rcode: int = 0) -> DNS:
    an = [DNSRR(rrname=name, type="AAAA" if ":" in a else "A", rdata=a) for a in addrs]
    return DNS(id=txid, qr=1, rd=1, ra=1, rcode=rcode, qd=DNSQR(qname=name, qtype=qtype), an=an)


#: per client port: the name asked, then the responses in the order they arrive (query type,
#: addresses, rcode); each flow asks A then AAAA (glibc), and is answered in that order
FLOWS = {
    50000: ("eu1.ksc.kaspersky.com", [("AAAA", (), 0), ("A", ("0.0.0.0",), 0)]),      # filtered
    50001: ("eu2.ksc.kaspersky.com", [("AAAA", (), 0), ("A", ("203.0.113.10",), 0)]),
    50002: ("eu3.ksc.kaspersky.com", [("AAAA", ("2001:db8::10",), 0), ("A", ("203.0.113.10",), 0)]),
    50003: ("eu4.ksc.kaspersky.com", [("A", ("203.0.113.10",), 0), ("AAAA", (), 2)]),   # SERVFAIL
    50004: ("eu5.ksc.kaspersky.com", [("A", (), 5), ("AAAA", (), 3)]),                 # REFUSED, NXDOMAIN
    50005: ("eu6.ksc.kaspersky.com", [("A", ("203.0.113.10", "203.0.113.11"), 0),
                                      ("A", ("203.0.113.11", "203.0.113.12"), 0),      # a retry's answer
                                      ("A", ("203.0.113.10", "203.0.113.11"), 0)]),    # the first again
    50006: ("eu7.ksc.kaspersky.com", [("AAAA", ("::",), 0), ("A", ("0.0.0.0",), 0)]),
}

#: what the detail of an error answer adds for a name the agent needs that got no usable address
NEED = "; the agent needs this name: without its address it cannot connect (fix the resolver or the DNS filter)"
#: (REFUSED: what the report advises for it, s39-net2)
NEED_REFUSED = "; the agent needs this name: without its address it cannot connect (the resolver refuses recursion for this client: set the client to a resolver that serves it, or allow it on this one)"

#: client port -> (dns_rcode, dns_answers, detail) expected
EXPECTED = {
    50000: ("NOERROR", "0.0.0.0", "DNS answer 0.0.0.0 for eu1.ksc.kaspersky.com" + HOLE + NEED),
    50001: ("NOERROR", "203.0.113.10", ""),
    50002: ("NOERROR", "2001:db8::10;203.0.113.10", ""),
    # (break-it s57 #11: only the AAAA question failed, the A one answered in the same flow: said)
    50003: ("SERVFAIL", "203.0.113.10", "DNS answer SERVFAIL for eu4.ksc.kaspersky.com: only its AAAA (IPv6 address) "
            "query; its A (IPv4 address) query was answered in this flow: an agent connects over IPv4 with that answer "
            "(an IPv6-only network would need the AAAA one)"),
    50004: ("REFUSED", "", "DNS answer REFUSED for eu5.ksc.kaspersky.com" + NEED_REFUSED),
    50005: ("NOERROR", "203.0.113.10;203.0.113.11;203.0.113.12", ""),
    50006: ("NOERROR", "::;0.0.0.0", "DNS answer :: for eu7.ksc.kaspersky.com" + HOLE + NEED),
    51000: ("NOERROR", "0.0.0.0", "DNS answer 0.0.0.0 for eu1.ksc.kaspersky.com" + HOLE + NEED),
}
#: the flows above whose name the agent needs and that gave it no usable address (the SERVFAIL
#: of 50003 came with another response's address): blocked/rejected
BLOCKED = {50000, 50004, 50006, 51000}


def _tcp_glibc(t: float, port: int = 51000) -> list:
    """glibc over TCP (after a truncated answer): A and AAAA asked on one connection, the AAAA
    answer (NOERROR, no address) first, then the A answer 0.0.0.0."""
    name = FLOWS[50000][0]
    c2s = lambda **kw: eth(IP(src=C, dst=RES) / TCP(sport=port, dport=53, **kw))  # noqa: E731
    s2c = lambda **kw: eth(IP(src=RES, dst=C) / TCP(sport=53, dport=port, **kw),  # noqa: E731
                           src=SERVER_MAC, dst=CLIENT_MAC)
    q = _tcp_msg(_q(name, 70)) + _tcp_msg(_q(name, 71, "AAAA"))
    a1, a2 = _tcp_msg(_r(name, 71, "AAAA")), _tcp_msg(_r(name, 70, "A", ("0.0.0.0",)))
    cs, ss = 101, 901
    out = [(t, c2s(flags="S", seq=100)), (t + 0.01, s2c(flags="SA", seq=900, ack=cs)),
           (t + 0.02, c2s(flags="PA", seq=cs, ack=ss) / q),
           (t + 0.03, s2c(flags="PA", seq=ss, ack=cs + len(q)) / a1),
           (t + 0.04, s2c(flags="PA", seq=ss + len(a1), ack=cs + len(q)) / a2)]
    cs, ss = cs + len(q), ss + len(a1) + len(a2)
    out += [(t + 0.05, c2s(flags="FA", seq=cs, ack=ss)), (t + 0.06, s2c(flags="FA", seq=ss, ack=cs + 1)),
            (t + 0.07, c2s(flags="A", seq=cs + 1, ack=ss + 1))]
    return [(ts, bytes(p)) for ts, p in out]


def _capture(tmp_path, padding: int = 0, filler: int = 0):
    """The :data:`FLOWS` over UDP (one a second from t = 1000 s) and the TCP lookup (port
    51000). ``padding``: after a flow's first response, the AAAA question asked again this many
    times over 8 s, each answered NOERROR without an address (nothing for the columns), before
    its other responses (at +8 s) and three times more after them (+9 s to +10 s): the
    responses that matter are then far past the packets a chunk or a live session always keeps
    (the first of each direction, 24 payload datagrams per direction, the first and last of
    each 30 s slot, the last); ``filler``: datagrams of other flows (one every 0.25 s, 300
    bytes) so tiny chunks cut between the responses."""
    recs, t = [], 1000.0
    for port, (name, answers) in FLOWS.items():
        recs.append(udp((C, port), (RES, 53), bytes(_q(name, port)), t=t))
        recs.append(udp((C, port), (RES, 53), bytes(_q(name, port + 1, "AAAA")), t=t + 0.0001))
        empty = bytes(_r(name, port + 1, "AAAA"))
        later = [t + 0.02 + 8.0 * k / padding for k in range(padding)] + (
            [t + 9.0, t + 9.5, t + 10.0] if padding else [])
        for at in later:
            recs.append(udp((C, port), (RES, 53), bytes(_q(name, port + 1, "AAAA")), t=at))
            recs.append(udp((RES, 53), (C, port), empty, t=at + 0.001, src_mac=SERVER_MAC, dst_mac=CLIENT_MAC))
        for k, (qtype, addrs, rc) in enumerate(answers):
            txid = port + (qtype == "AAAA")
            # (0.1 s apart: a live session takes packets of equal headers within 50 ms for copies)
            at = t + 0.01 if k == 0 else t + (8.0 if padding else 0.01) + 0.1 * k
            recs.append(udp((RES, 53), (C, port), bytes(_r(name, txid, qtype, addrs, rc)), t=at,
                            src_mac=SERVER_MAC, dst_mac=CLIENT_MAC))
        t += 1
    recs += _tcp_glibc(t)
    for k in range(filler):
        recs.append(udp(("192.0.2.20", 20000 + k), ("203.0.113.99", 15000), b"g" * 300,
                        t=1000.05 + k * 0.25))
    return write(tmp_path, sorted(recs, key=lambda r: r[0]), "glibc.pcap")


def _columns(flows) -> dict:
    dns = flows[flows["purpose"] == "dns"]
    return {int(r.orig_p): (r.dns_rcode, r.dns_answers, r.detail) for r in dns.itertuples()}


def test_all_responses_of_a_flow_count(tmp_path):
    flows = analyze_file(_capture(tmp_path), RULES).flows
    assert _columns(flows) == EXPECTED
    dns = flows[flows["purpose"] == "dns"]
    assert {int(p): (v, r) for p, v, r in zip(dns.orig_p, dns.verdict, dns.reason)} == \
        {p: ("blocked", "rejected") if p in BLOCKED else ("ok", "") for p in EXPECTED}
    # the table report lists the filtered names (the sinkhole in the second response too)
    errs = dns_errors(flows)
    assert sorted(zip(errs.name, errs.rcode, errs.flows)) == [
        ("eu1.ksc.kaspersky.com", "sinkhole 0.0.0.0", 2), ("eu4.ksc.kaspersky.com", "SERVFAIL (AAAA only)", 1),
        ("eu5.ksc.kaspersky.com", "REFUSED", 1), ("eu7.ksc.kaspersky.com", "sinkhole ::", 1)]


def test_flow_columns_the_same_in_chunks(tmp_path):
    """The later responses come 8 s and 30 empty answers after the first, with other flows'
    datagrams in between: tiny chunks carry the flows over many boundaries, and the responses
    that bring an address or an error are carried with them."""
    path = _capture(tmp_path, padding=30, filler=200)
    w = assert_same(path, [1024, 2048, 4096, 16384])
    assert _columns(w) == EXPECTED
    assert row(w, orig_p=50000)["resp_pkts"] == 1 + 33 + 1


def test_flow_columns_the_same_in_a_live_session(tmp_path, monkeypatch):
    """The live session keeps the responses that bring something, past its head packets."""
    from kscc_traffic.live import session as S
    from test_live_session import _assert_same, _replay
    monkeypatch.setattr(S, "HEAD_PACKETS", 2)
    path = _capture(tmp_path, padding=30, filler=200)
    s = S.LiveSession(RULES, name=path.name)
    _replay(path, s)
    assert s.dropped_rows > 0
    final = s.final()
    _assert_same(path, final)
    assert _columns(final) == EXPECTED


def test_response_rows_carried(tmp_path):
    """dns_response_rows: per flow the first response, the first error and those bringing an
    address first; a response repeating what the flow already had is not needed."""
    from kscc_traffic import build_flows, decode, read_frames
    from kscc_traffic.analyze import server_port_fn
    ft = build_flows(decode(read_frames(_capture(tmp_path))), server_port_fn(RULES), seed="x")
    c = ft.packets.cols
    rows = (c["proto"] == 17).nonzero()[0]
    need = insp.dns_response_rows(ft.packets, rows, ft.pkt_flow[rows])
    port = dict(zip(ft.flows.index, ft.flows["orig_p"]))
    kept: dict[int, int] = {}
    for r in rows[need].tolist():
        kept[port[ft.pkt_flow[r]]] = kept.get(port[ft.pkt_flow[r]], 0) + 1
    # 50000-50002, 50006: both (the first, then an address); 50003: an address, then the error;
    # 50004: both (the first, an error to the A question; the first to the AAAA question:
    # dns_asked); 50005: the two that bring addresses, not the repeat
    assert kept == {50000: 2, 50001: 2, 50002: 2, 50003: 2, 50004: 2, 50005: 2, 50006: 2}


def test_addresses_are_bounded(tmp_path, monkeypatch):
    """At most MAX_DNS_ANSWERS distinct addresses per flow (the first ones), whole and in chunks
    (a forwarder's 53-to-53 flow must not grow a cell, nor what a chunk carries, without end)."""
    monkeypatch.setattr(insp, "MAX_DNS_ANSWERS", 5)
    recs, name = [], "many.example"
    for k in range(8):   # two new addresses per response, one repeated
        addrs = (f"203.0.113.{k}", f"203.0.113.{k + 100}", "203.0.113.100")
        recs.append(udp((C, 50000), (RES, 53), bytes(_q(name, k)), t=1000 + k))
        recs.append(udp((RES, 53), (C, 50000), bytes(_r(name, k, "A", addrs)), t=1000.01 + k,
                        src_mac=SERVER_MAC, dst_mac=CLIENT_MAC))
    for k in range(200):
        recs.append(udp(("192.0.2.20", 20000 + k), ("203.0.113.99", 15000), b"g" * 300, t=1000.05 + k * 0.05))
    w = assert_same(write(tmp_path, sorted(recs, key=lambda r: r[0])), [1024, 4096])
    assert row(w, orig_p=50000)["dns_answers"] == "203.0.113.0;203.0.113.100;203.0.113.1;203.0.113.101;203.0.113.2"


@pytest.mark.parametrize("rcodes, name", [([], ""), ([0], "NOERROR"), ([0, 0], "NOERROR"), ([0, 3], "NXDOMAIN"),
                                          ([5, 3, 0], "REFUSED"), ([2], "SERVFAIL")])
def test_flow_rcode(rcodes, name):
    assert insp.flow_rcode(rcodes) == name
