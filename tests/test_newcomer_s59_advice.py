"""Newcomer pass s59, findings #3 and #6: advice that follows what the capture shows.

#3: a ClientHello the server's side refused with handshake_failure (40) was advised "check the
agent's TLS settings (a cipher-suite policy (GPO) or FIPS mode …)" first, also when the ClientHello
was a full, current offer (TLS 1.3, x25519: the Quick-start sample's). The detail and the advice now
follow the offer (:func:`kscc_traffic.protocols.tls.offer_text`, the internal ``tls_offer`` column):
a current one puts what answered in the server's place first, a narrow one the agent's policy.

#6: a DNS query nothing answered was advised "allow DNS (UDP and TCP 53) …" although the same
resolver answered the same client's other queries in the capture: DNS to it is open; the advice
now names the resolver's upstream lookup and a DNS filter on that name
(:func:`kscc_traffic.report.dns_answered_fix`), from the whole run's flows (also batch by batch).
"""
from __future__ import annotations

import html
import shutil
import struct

import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR

from chunkcmp import RULES, assert_same, chunked, whole, write
from pcapbuild import syn_attempts, tcp_session, udp, SERVER_MAC, CLIENT_MAC

from kscc_traffic.classify import OFFER_CURRENT_SAID, OFFER_NARROW_SAID, SUITES_REFUSED
from kscc_traffic.protocols import tls
from kscc_traffic import report
from kscc_traffic.report import ResolverAnswers, TableSummary, dns_advice, dns_answered_fix, dns_fix, readiness

SNI = "eu1.ksc.kaspersky.com"
CLIENT = "192.0.2.10"
SERVER = "203.0.113.10"
RESOLVER = "192.0.2.53"

#: what a current client offers (a browser's or Windows 11's order, shortened): TLS 1.3's suites,
#: the ECDHE AES-GCM and ChaCha20 ones, older CBC ones
CURRENT_SUITES = (0x1302, 0x1303, 0x1301, 0xC02C, 0xC030, 0xC02B, 0xC02F, 0xCCA9, 0xCCA8, 0xC024, 0xC028, 0x009F,
                  0x009E, 0x00FF)
#: a FIPS-mode-like TLS 1.2 offer: NIST curves only, no x25519, RSA GCM suites only
FIPS_SUITES = (0xC030, 0xC02F, 0x009D, 0x009C)


def _ext(kind: int, data: bytes) -> bytes:
    return struct.pack("!HH", kind, len(data)) + data


def client_hello(suites, groups, versions=(), sni: str | None = SNI) -> bytes:
    """A whole ClientHello record offering ``suites`` and ``groups`` (code points), TLS 1.3 when
    ``versions`` (supported_versions) holds 0x0304 (a key share of its first group then); no
    server_name extension when ``sni`` is None."""
    exts = b""
    if sni is not None:
        name = sni.encode()
        exts = _ext(0, struct.pack("!HBH", len(name) + 3, 0, len(name)) + name)
    exts += _ext(10, struct.pack("!H", 2 * len(groups)) + b"".join(struct.pack("!H", g) for g in groups))
    exts += _ext(13, bytes.fromhex("000404030804"))   # (signature_algorithms: 2 of them)
    if versions:
        exts += _ext(43, bytes([2 * len(versions)]) + b"".join(struct.pack("!H", v) for v in versions))
        exts += _ext(51, struct.pack("!HHH", 36, groups[0], 32) + bytes(range(32)))
    body = (b"\x03\x03" + bytes(32) + b"\x00" + struct.pack("!H", 2 * len(suites))
            + b"".join(struct.pack("!H", s) for s in suites) + b"\x01\x00" + struct.pack("!H", len(exts)) + exts)
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


#: the server's answer: a fatal handshake_failure (40) alert, then its close
HANDSHAKE_FAILURE = bytes.fromhex("15030300020228")

CURRENT_13 = client_hello(CURRENT_SUITES, (0x001D, 0x0017, 0x0018), (0x0304, 0x0303))
CURRENT_12 = client_hello(CURRENT_SUITES[3:], (0x001D, 0x0017, 0x0018))
FIPS_12 = client_hello(FIPS_SUITES, (0x0017, 0x0018))


def _refused(hellos, t0=1000.0):
    recs = []
    for k, hello in enumerate(hellos):
        recs += tcp_session((CLIENT, 50100 + k), (SERVER, 23101), t0=t0 + k, isn_c=1000 + k, c_data=hello,
                            s_data=HANDSHAKE_FAILURE)
    return recs


def _fix(flows) -> str:
    return readiness(flows, RULES).set_index("rule").at["agent_connection", "fix"]


# --- #3: what the ClientHello offered ----------------------------------------------------------------

def test_offer_text_reads_a_current_and_a_narrow_offer():
    assert tls.offer_text(tls.parse_client_hello(CURRENT_13)) == (
        True, "TLS 1.3 and 1.2, 14 cipher suites (ECDHE AES-GCM among them), the x25519 and secp256r1 groups")
    # (TLS 1.2 alone, the four ECDHE AES-GCM suites of RFC 9325 and both groups: current too)
    assert tls.offer_text(tls.parse_client_hello(CURRENT_12)) == (
        True, "TLS 1.2 at most, 11 cipher suites (ECDHE AES-GCM among them), the x25519 and secp256r1 groups")
    # (a FIPS-mode-like offer: no x25519, 2 of the 4 ECDHE AES-GCM suites)
    assert tls.offer_text(tls.parse_client_hello(FIPS_12)) == (
        False, "TLS 1.2 at most, 4 cipher suites, 2 of the 4 ECDHE AES-GCM suites, no x25519 group")
    # (TLS 1.3 without its mandatory suite, and no ECDHE at all in the TLS 1.2 part)
    odd = client_hello((0x1302, 0x009C), (0x001D, 0x0017), (0x0304, 0x0303))
    assert tls.offer_text(tls.parse_client_hello(odd)) == (
        False, "TLS 1.3 and 1.2, 2 cipher suites, no TLS_AES_128_GCM_SHA256, no ECDHE AES-GCM suite")
    no_groups = client_hello((0xC02B, 0xC02C, 0xC02F, 0xC030), ())
    assert tls.offer_text(tls.parse_client_hello(no_groups))[1].endswith(", no key-exchange group named")
    # (a ClientHello cut short: its lists may be cut, nothing said; none at all)
    assert tls.offer_text(tls.parse_client_hello(CURRENT_13[:60])) is None
    assert tls.offer_text(None) is None
    # (an SSLv2-compatible hello: no extensions, no group)
    specs = bytes.fromhex("00c02f" "00c030" "010080")
    msg = b"\x01\x03\x01" + struct.pack("!HHH", len(specs), 0, 16) + specs + bytes(16)
    got = tls.offer_text(tls.parse_client_hello(struct.pack("!H", 0x8000 | len(msg)) + msg))
    assert got == (False, "TLS 1.0 at most, 2 cipher suites, 2 of the 4 ECDHE AES-GCM suites, no key-exchange "
                          "group named")


def test_offer_text_counts_the_suites_as_wireshark_does():
    # (every entry of the list, as Wireshark's "Cipher Suites (N suites)": GREASE (RFC 8701) and the
    # signalling values counted; neither makes an offer current nor narrow)
    greased = client_hello((0x0A0A,) + CURRENT_SUITES, (0x2A2A, 0x001D, 0x0017), (0x3A3A, 0x0304, 0x0303))
    assert tls.offer_text(tls.parse_client_hello(greased)) == (
        True, "TLS 1.3 and 1.2, 15 cipher suites (ECDHE AES-GCM among them), the x25519 and secp256r1 groups")
    only_signals = client_hello((0x0A0A, 0x00FF, 0x5600), (0x001D, 0x0017))
    assert tls.offer_text(tls.parse_client_hello(only_signals)) == (
        False, "TLS 1.2 at most, 3 cipher suites, no ECDHE AES-GCM suite")


def test_a_current_offer_refused_is_advised_as_what_answered_in_the_servers_place(tmp_path):
    """The Quick-start sample's case, on a synthetic capture: TLS 1.3 offered with x25519. The detail
    says the offer was a current one; the checklist puts the device answering in the server's
    place first and the agent's TLS settings last, and no longer ends on "; not the firewall's
    ports"."""
    path = write(tmp_path, _refused([CURRENT_13]))
    flows = assert_same(path, [300])       # (the same in small chunks: the offer read per flow)
    tls_row = flows[flows.resp_p == 23101].iloc[0]
    assert (tls_row.verdict, tls_row.reason) == ("blocked", "tls_failed")
    assert tls_row.detail == (
        f"TLS handshake aborted: server: handshake_failure (40): {SUITES_REFUSED}, {OFFER_CURRENT_SAID} (TLS 1.3 "
        "and 1.2, 14 cipher suites (ECDHE AES-GCM among them), the x25519 and secp256r1 groups): not a TLS policy "
        "on the agent's device most likely, but what answered in the server's place (an old proxy or firewall, a "
        "TLS-inspecting device) or a server restricted to other ones")
    assert "tls_offer" not in flows.columns    # (internal: not a column of the output)
    fix = _fix(flows)
    assert fix == (
        "this connection reached the server on TCP 23100-23199 (the TCP handshake completed: the port is open, "
        "nothing to open in the firewall), then " + report.SUITES_CURRENT_FIX.format(mask="*.ksc.kaspersky.com"))
    assert "look first at what answered in the server's place" in fix
    assert "check the agent's TLS settings" not in fix and not fix.endswith("not the firewall's ports")


def test_a_current_tls12_offer_is_current_too(tmp_path):
    flows, _ = whole(write(tmp_path, _refused([CURRENT_12])))
    assert f"{OFFER_CURRENT_SAID} (TLS 1.2 at most, 11 cipher suites" in flows.detail[flows.resp_p == 23101].iloc[0]
    assert "though its offer was a current one" in _fix(flows)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_the_tshark_engine_reads_the_same_offer(tmp_path):
    from kscc_traffic.analyze import analyze_file
    path = write(tmp_path, _refused([FIPS_12, CURRENT_13]))
    a = analyze_file(path, RULES).flows.sort_values("orig_p")
    b = analyze_file(path, RULES, engine="tshark").flows.sort_values("orig_p")
    assert a.detail.tolist() == b.detail.tolist()
    assert OFFER_NARROW_SAID in a.detail.iloc[0] and OFFER_CURRENT_SAID in a.detail.iloc[1]


def test_a_narrow_offer_refused_keeps_the_agents_policy_first(tmp_path):
    """A FIPS-mode-like TLS 1.2 offer: the agent's policy first, as before, and the detail says what
    the offer lacks."""
    path = write(tmp_path, _refused([FIPS_12]))
    flows = assert_same(path, [300])
    detail = flows.detail[flows.resp_p == 23101].iloc[0]
    assert detail == (
        f"TLS handshake aborted: server: handshake_failure (40): {SUITES_REFUSED}, {OFFER_NARROW_SAID} (TLS 1.2 at "
        "most, 4 cipher suites, 2 of the 4 ECDHE AES-GCM suites, no x25519 group): a TLS policy on the agent's device "
        "restricting them most likely (a cipher-suite GPO or FIPS mode, an old operating system), or a device "
        "answering in the server's place")
    fix = _fix(flows)
    assert fix == (
        "this connection reached the server on TCP 23100-23199 (the TCP handshake completed: the port is open, "
        "nothing to open in the firewall), then the server's side accepted none of the cipher suites, key-exchange "
        "groups or signature algorithms the agent offered (see each flow's detail): check the agent's TLS settings "
        "(a cipher-suite policy (GPO) or FIPS mode restricting them, an old operating system lacking current ones), "
        "then any proxy or firewall answering in the server's place (an old one: update it, or let the agent's TLS "
        "to *.ksc.kaspersky.com through it uninspected)")


def test_both_offers_in_one_capture_are_advised_apart(tmp_path):
    flows, _ = whole(write(tmp_path, _refused([FIPS_12, CURRENT_13])))
    fix = _fix(flows)
    assert fix.startswith("these 2 connections reached the server on TCP 23100-23199")
    assert "then 1 of them: the server's side accepted none of the cipher suites, key-exchange groups or signature " \
           "algorithms the agent offered (see each flow's detail): check the agent's TLS settings" in fix, fix
    assert fix.endswith("; 1 of them: " + report.SUITES_CURRENT_FIX.format(mask="*.ksc.kaspersky.com")), fix
    counts = report.cert_counts(flows.detail.tolist(), flows.reason.tolist())
    assert counts == (0, 0, 0, 0, 0, 0, 0, 1, 1)


def test_the_offer_is_read_only_on_such_a_refusal(tmp_path):
    """Another alert (a client's, the server's after a ServerHello) reads no offer: the internal
    column stays '' and the detail as it was."""
    from kscc_traffic import build_flows, decode, read_frames
    from kscc_traffic.analyze import server_port_fn
    from kscc_traffic.inspect import inspect_flows, OFFER_CURRENT
    unknown_ca = bytes.fromhex("15030300020230")     # (the server's unknown_ca: not a suites refusal)
    recs = _refused([CURRENT_13]) + tcp_session((CLIENT, 50200), (SERVER, 23101), t0=1010.0, c_data=CURRENT_13,
                                                 s_data=unknown_ca)
    ft = build_flows(decode(read_frames(str(write(tmp_path, recs)))), server_port_fn(RULES))
    cols = inspect_flows(ft)[0].set_index("orig_p")["tls_offer"]
    assert cols[50100].startswith(OFFER_CURRENT) and cols[50200] == ""


# --- #6: a DNS query unanswered by a resolver that answered the same client -------------------------

def _query(name, port, t, client=CLIENT, resolver=RESOLVER):
    q = DNS(id=port, rd=1, qd=DNSQR(qname=name))
    return udp((client, port), (resolver, 53), bytes(q), t=t)


def _answer(name, port, t, client=CLIENT, resolver=RESOLVER):
    a = DNS(id=port, qr=1, ra=1, qd=DNSQR(qname=name), an=DNSRR(rrname=name, type="A", ttl=60, rdata=SERVER))
    return udp((resolver, 53), (client, port), bytes(a), t=t, src_mac=SERVER_MAC, dst_mac=CLIENT_MAC)


def _lookups(t_answered: float, t_lost: float, other_resolver: str = RESOLVER, other_client: str = CLIENT):
    """Four answered lookups of KSC names at ``t_answered`` on (from ``other_client`` to
    ``other_resolver``), one query of eu2.ksc.kaspersky.com nothing answered (sent twice) at
    ``t_lost``, and the agent's connection, unanswered, so that the capture is the agent's and goes
    on well past the lost query."""
    recs = []
    for k, name in enumerate(("eu1.ksc.kaspersky.com", "ksn-a.kaspersky.com", "eu3.ksc.kaspersky.com",
                              "dnl-01.geo.kaspersky.com")):
        recs += [_query(name, 41000 + k, t_answered + k, other_client, other_resolver),
                 _answer(name, 41000 + k, t_answered + k + 0.01, other_client, other_resolver)]
    recs += [_query("eu2.ksc.kaspersky.com", 42000, t_lost), _query("eu2.ksc.kaspersky.com", 42000, t_lost + 5)]
    recs += syn_attempts(50000, SERVER, 23101, max(t_answered, t_lost) + 20)
    return sorted(recs, key=lambda r: r[0])


def test_a_lookup_unanswered_by_a_resolver_that_answered_the_client_is_not_advised_allow_dns(tmp_path):
    flows, _ = whole(write(tmp_path, _lookups(1000.0, 1010.0)))
    lost = flows[(flows.purpose == "dns") & (flows.verdict == "blocked")]
    assert lost["query"].tolist() == ["eu2.ksc.kaspersky.com"] and lost.reason.tolist() == ["no_answer"]
    advice = dns_advice(flows, RULES)
    assert advice["fix"] == dns_answered_fix(1)
    assert advice["fix"].startswith("1 query was unanswered by a resolver that answered other queries of the same "
                                    "client in the capture (DNS to it is open: no port to allow): most likely the "
                                    "resolver got no answer for that name upstream")
    assert "allow DNS" not in advice["fix"]
    assert ResolverAnswers.of(flows) == 1


def test_the_answers_may_come_after_the_lost_query(tmp_path):
    flows, _ = whole(write(tmp_path, _lookups(1030.0, 1000.0)))
    assert dns_advice(flows, RULES)["fix"] == dns_answered_fix(1)


@pytest.mark.parametrize("other", [dict(other_resolver="192.0.2.54"), dict(other_client="192.0.2.11")])
def test_answers_from_another_resolver_or_to_another_client_keep_allow_dns(tmp_path, other):
    flows, _ = whole(write(tmp_path, _lookups(1000.0, 1010.0, **other)))
    assert ResolverAnswers.of(flows) == 0
    assert dns_advice(flows, RULES)["fix"] == ("allow DNS (UDP and TCP 53) from the clients to their resolver, "
                                               "and the resolver's own lookups")


def test_batch_by_batch_the_whole_runs_answers_count(tmp_path):
    """A chunked reading: the lost query and the answers in different batches, the answers last;
    the report's summary adds the batches up and says the same as the whole table."""
    path = write(tmp_path, _lookups(1100.0, 1000.0))
    from kscc_traffic.chunked import ChunkedAnalysis
    flows, _ = chunked(path, 300)
    parts = list(ChunkedAnalysis(path, RULES, path.name, chunk_bytes=300).batches())
    lost = [i for i, b in enumerate(parts) if ((b.purpose == "dns") & (b.verdict == "blocked")).any()]
    good = [i for i, b in enumerate(parts) if ((b.purpose == "dns") & (b.verdict == "ok")).any()]
    assert len(lost) == 1 and good and lost[0] not in good, (lost, good)
    s = TableSummary()
    for b in parts:
        s.add(b)
    assert report._dns_advice(s)[1] == dns_answered_fix(1)
    assert dns_advice(flows, RULES)["fix"] == dns_answered_fix(1)


def test_dns_fix_with_some_queries_to_a_resolver_that_answered():
    """Of 3 unanswered queries, 1 to a resolver that answered its client: both advices, that one first."""
    kinds = {**dict.fromkeys(report.DNS_KINDS, 0), "no_answer": 3, "resolver_answered": 1}
    fix = dns_fix(["no_answer"], 0, 0, cut=(0, 3), kinds=kinds)
    assert fix == (dns_answered_fix(1) + "; allow DNS (UDP and TCP 53) from the clients to their resolver, and the "
                   "resolver's own lookups")
    kinds["resolver_answered"] = 3
    assert dns_fix(["no_answer"], 0, 0, cut=(0, 3), kinds=kinds) == dns_answered_fix(3)
    assert dns_answered_fix(3).startswith("3 queries were unanswered by a resolver")
    # (why flagged, the HTML report's: the firewall cause left out when every one is so)
    text = report.dns_reason_texts(["no_answer"], kinds=kinds)["no_answer"]
    assert text.startswith("the resolver answered the same client's other queries in the capture, not this one")
    assert "a firewall drops DNS" not in text


def test_the_html_report_says_the_same(tmp_path):
    from kscc_traffic.html_report import render_html
    flows, _ = whole(write(tmp_path, _lookups(1000.0, 1010.0)))
    page = render_html(flows, RULES)
    assert html.escape(dns_answered_fix(1)) in page
    assert "allow DNS (UDP and TCP 53)" not in page
