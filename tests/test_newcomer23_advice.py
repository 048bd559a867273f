"""Newcomer 23: the advice, checklist and report texts say what happened (see each test)."""
from __future__ import annotations

import re
import warnings

from scapy.all import ICMP, IP, TCP
from scapy.layers.dns import DNS, DNSQR

from kscc_traffic import analyze, load_rules
from kscc_traffic.html_report import render_html
from kscc_traffic.report import render_table
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth, tcp_session, udp
from checklistcheck import checklists as _rows, page_text as _text, write as _write

RULES = load_rules()


# --- F6: the HTML's DNS-error sentence follows the verdicts ---------------------------------------
def _nxdomain(name, port, t):
    q = udp(("192.0.2.10", port), ("192.0.2.53", 53), bytes(DNS(id=port, rd=1, qd=DNSQR(qname=name))), t=t)
    a = udp(("192.0.2.53", 53), ("192.0.2.10", port),
            bytes(DNS(id=port, qr=1, rd=1, ra=1, rcode=3, qd=DNSQR(qname=name))), t=t + 0.01,
            src_mac=SERVER_MAC, dst_mac=CLIENT_MAC)
    return [q, a]


def _dns_section(flows):
    page = render_html(flows, RULES, charts=False)
    m = re.search(r'<section id="dns-errors">(.*?)</section>', page, re.S)
    return _text(m.group(1))


def test_dns_error_sentence_follows_the_verdicts(tmp_path):
    """An NXDOMAIN for a name the agent needs is blocked: the HTML must not say "Their verdict is
    ok"; with another name answered NXDOMAIN too, each verdict is counted."""
    one = analyze(_write(tmp_path, "one.pcap", _nxdomain("eu1.ksc.kaspersky.com", 41000, 1000.0)), RULES)
    assert list(zip(one.verdict, one.reason)) == [("blocked", "rejected")]
    text = _dns_section(one)
    assert "verdict is ok" not in text
    assert ("1 DNS flow got an error answer instead of an address. Its verdict: blocked (a name the agent "
            "needs: without its address it cannot connect). A client cannot connect") in text
    recs = (_nxdomain("eu1.ksc.kaspersky.com", 41000, 1000.0) + _nxdomain("eu2.ksc.kaspersky.com", 41001, 1001.0)
            + _nxdomain("www.example.com", 41002, 1002.0))
    three = analyze(_write(tmp_path, "three.pcap", recs), RULES)
    assert sorted(three.verdict) == ["blocked", "blocked", "ok"]
    assert ("3 DNS flows got an error answer instead of an address. Verdicts: 2 blocked (a name the agent needs: "
            "without its address it cannot connect), 1 ok (the resolver was reached and answered a name the agent "
            "does not need, or one it got an address for from another query or a retry).") in _dns_section(three)


# --- F15: the cast is shown (gateway_udp and agent_broadcast differ) -------------------------------
def test_rules_listing_and_checklist_show_the_cast(tmp_path):
    from typer.testing import CliRunner

    from kscc_traffic.cli import app
    out = CliRunner().invoke(app, ["rules"], env={"COLUMNS": "250"}).output
    cells = {c[0]: c for c in ([x.strip() for x in re.split("[│┃]", line)[1:-1]]
                                for line in out.splitlines() if len(re.findall("[│┃]", line)) > 5)}
    assert cells["id"][:6] == ["id", "section", "transport", "ports", "cast", "protocol"]
    assert cells["gateway_udp"][2:5] == ["udp", "15000", "unicast"]
    assert cells["agent_broadcast"][2:5] == ["udp", "15000", "broadcast"]
    assert cells["dp_multicast"][2:5] == ["udp", "15001", "multicast"]
    with warnings.catch_warnings():   # (the checklist of no flows: "no packets in the capture")
        warnings.simplefilter("ignore")
        empty = analyze(_write(tmp_path, "none.pcap", []), RULES)
    table = render_table(empty, RULES, width=200)
    ports = {line.split("│")[2].strip(): line.split("│")[3].strip() for line in table.splitlines()
             if line.count("│") >= 7 and "§" in line}
    assert (ports["gateway_udp"], ports["agent_broadcast"], ports["dp_multicast"], ports["agent_connection"]) == (
        "udp 15000", "udp 15000 broadcast", "udp 15001 multicast", "tcp 23100-23199")
    page = render_html(empty, RULES, charts=False)
    assert '<tr data-rule="agent_broadcast" data-status="not seen"><td>§B</td><td>agent_broadcast</td>' \
           '<td class="nowrap">udp 15000 broadcast</td>' in page


# --- F16: the mobile range's fix has the page's range note -----------------------------------------
def test_every_range_fix_says_any_port_and_address_can_be_used():
    ranges = [r for r in RULES.rules if r.port_lo != r.port_hi]
    assert [r.id for r in ranges] == ["agent_connection", "mobile_connection", "activation", "klsctunnel"]
    for r in ranges:
        assert "(the whole range and any address in the mask; both can change" in r.fix, r.id
    assert RULES.by_id("mobile_connection").fix == (
        "allow outbound TCP 23700-23799 to *.ksc.kaspersky.com from mobile devices (the whole range and any "
        "address in the mask; both can change; only needed if mobile devices are managed)")


# --- F4: an IP literal names no server (port open, not verified) -----------------------------------
def _http(host, t0, port=80, status=b"200 OK", server="198.51.100.99", cport=50790):
    req = b"GET / HTTP/1.1\r\n" + (b"Host: " + host.encode() + b"\r\n" if host else b"") + b"\r\n"
    return tcp_session(("192.0.2.10", cport), (server, port), t0=t0, c_data=req,
                       s_data=b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\n\r\n")


def test_an_ip_literal_in_the_host_header_does_not_verify_cert_check(tmp_path):
    # (beside an agent's connection on a KSC-only port: alone, a flow named by no host name is no KSC
    # agent traffic and no purpose is judged on it, newcomer 28 F4: test_audit25_advice)
    from pcapbuild import tcp_session
    agent = tcp_session(("192.0.2.10", 50100), ("203.0.113.10", 23101), t0=990.0)
    literal = analyze(_write(tmp_path, "lit.pcap", agent + _http("198.51.100.99", 1000.0)), RULES)
    web = literal[literal.resp_p == 80]
    assert list(zip(web.purpose, web.verdict, web.server_name)) == [("cert_check", "ok", "198.51.100.99")]
    named = analyze(_write(tmp_path, "named.pcap", agent + _http("crl3.digicert.com", 1000.0)), RULES)
    web = named[named.resp_p == 80]
    assert list(zip(web.purpose, web.verdict, web.server_name)) == [("cert_check", "ok", "crl3.digicert.com")]
    for row in _rows(literal):
        assert row.loc["cert_check", "status"] == "port open"
        assert row.loc["cert_check", "fix"].startswith("1 flow on TCP 80 answered, but none named a server")
    for row in _rows(named):
        assert row.loc["cert_check", "status"] == "verified"
    # a blocked flow named by an IP literal is "no name seen" as well
    from kscc_traffic.report import _names_a_server
    assert _names_a_server(["198.51.100.99", "[2001:db8::99]", "", "crl3.digicert.com"]).tolist() == [
        False, False, False, True]


# --- F3 / F13: ICMP errors: a cloud server's port unreachable; a router's host unreachable ----------
def _syn_icmp(client_port, server, port, sender, code, t):
    """A SYN from 192.0.2.10 to ``server``:``port`` answered by ICMP 3/``code`` from ``sender``
    (None: no answer)."""
    syn = IP(src="192.0.2.10", dst=server) / TCP(sport=client_port, dport=port, flags="S", seq=7)
    recs = [(t, eth(syn))]
    if sender:
        err = IP(src=sender, dst="192.0.2.10") / ICMP(type=3, code=code) / bytes(syn)[:28]
        recs.append((t + 0.01, eth(err, src=SERVER_MAC, dst=CLIENT_MAC)))
    else:
        recs += [(t + k, eth(syn)) for k in (1, 3)]
    return recs


def test_a_port_unreachable_from_a_cloud_server_is_a_forged_answer_not_a_service_to_check(tmp_path):
    flows = analyze(_write(tmp_path, "cloud.pcap", _syn_icmp(50000, "203.0.113.10", 23101, "203.0.113.10", 3,
                                                             1000.0)), RULES)
    assert list(zip(flows.purpose, flows.verdict, flows.reason)) == [
        ("agent_connection", "blocked", "icmp_unreachable")]
    want = ("this flow was answered by ICMP port unreachable carrying the cloud server's own address, refusing TCP "
            "23101 on 203.0.113.10: most likely forged by a firewall on the path (a reject rule answers in the name "
            "of the address it blocks). Check the firewalls and proxies between the agent and the Internet for a "
            "rule that rejects it: " + RULES.by_id("agent_connection").fix + "; if none does, report the server and "
            "port (TCP 23101 on 203.0.113.10) to Kaspersky support")
    for row in _rows(flows):
        assert row.loc["agent_connection", "fix"] == want
    assert "check that the service" not in want and "host's own firewall" not in want
    page = render_html(flows, RULES, charts=False)
    finding = _text(re.search(r'id="purpose-agent_connection">(.*?)</article>', page, re.S).group(1))
    assert "icmp_unreachable : an ICMP port unreachable carrying the cloud server's own address answered: most " \
           "likely forged by a firewall on the path" in finding
    assert "check that the service" not in finding
    # one refused, one unanswered: the refused port is named after the firewall advice
    recs = (_syn_icmp(50000, "203.0.113.10", 23105, "203.0.113.10", 3, 1000.0)
            + _syn_icmp(50001, "203.0.113.11", 23101, None, 0, 1010.0))
    two = analyze(_write(tmp_path, "two.pcap", recs), RULES)
    assert sorted(two.reason) == ["icmp_unreachable", "no_answer"]
    for row in _rows(two):
        assert row.loc["agent_connection", "fix"] == (
            RULES.by_id("agent_connection").fix + "; 1 of them was answered by ICMP port unreachable carrying the "
            "cloud server's own address (TCP 23105 on 203.0.113.10): most likely forged by a firewall on the path; "
            "if none does, report the server and port (TCP 23105 on 203.0.113.10) to Kaspersky support")


def test_a_port_unreachable_from_a_distribution_point_still_asks_for_its_service(tmp_path):
    """(§C: the DP is the customer's own host: checking its service is the advice)"""
    flows = analyze(_write(tmp_path, "dp.pcap", _syn_icmp(50000, "192.0.2.20", 13111, "192.0.2.20", 3, 1000.0)),
                    RULES)
    for row in _rows(flows):
        assert row.loc["dp_ksn_proxy_tcp", "fix"].startswith(
            "this flow was answered by the destination host itself with ICMP port unreachable: TCP 13111 reached "
            "it, but nothing listens there: check that the service for it is running")


def test_host_unreachable_from_a_router_gets_a_routing_hint(tmp_path):
    flows = analyze(_write(tmp_path, "route.pcap", _syn_icmp(50000, "203.0.113.13", 1443, "192.0.2.1", 1, 1000.0)),
                    RULES)
    assert list(zip(flows.purpose, flows.verdict, flows.detail)) == [
        ("ksn", "blocked", "answered by ICMP host unreachable (3/1) from 192.0.2.1")]
    want = ("this flow was answered by ICMP network or host unreachable (or no route) from a router: no route to "
            "the destination, an ARP/neighbour failure at the last hop, or an upstream outage: check the routes "
            "(default gateway, VPN split tunnel) and that the router reaches the server; a firewall rejecting it may "
            "answer the same: " + RULES.by_id("ksn").fix)
    for row in _rows(flows):
        assert row.loc["ksn", "fix"] == want
    # administratively prohibited (3/13) is a firewall's refusal: the rule's advice alone
    prohibited = analyze(_write(tmp_path, "admin.pcap", _syn_icmp(50000, "203.0.113.13", 1443, "192.0.2.1", 13,
                                                                  1000.0)), RULES)
    for row in _rows(prohibited):
        assert row.loc["ksn", "fix"] == RULES.by_id("ksn").fix


def test_which_icmp_errors_count_as_routing():
    from kscc_traffic.report import ROUTE_ICMP
    said = {t: bool(ROUTE_ICMP.search(f"answered by ICMP {t} from 2001:db8::1")) for t in (
        "network unreachable (3/0)", "host unreachable (3/1)", "host unreachable for TOS (3/12)",
        "no route to destination (1/0)", "address unreachable (1/3)", "port unreachable (3/3)",
        "administratively prohibited (3/13)", "administratively prohibited (1/1)", "port unreachable (1/4)")}
    assert [t for t, v in said.items() if v] == [
        "network unreachable (3/0)", "host unreachable (3/1)", "host unreachable for TOS (3/12)",
        "no route to destination (1/0)", "address unreachable (1/3)"]


# --- F5: a web filter's 403 on port 80: the URL filter, and no "TCP reset" in the HTML -------------
def test_a_web_filters_403_on_port_80_is_advised_as_its_url_policy(tmp_path):
    # (beside an agent's connection on a KSC-only port: alone, a certificate check is any program's,
    # ocsp.digicert.com being every browser's, and judges no purpose: newcomer 29 F1)
    from pcapbuild import tcp_session
    agent = tcp_session(("192.0.2.10", 50100), ("203.0.113.10", 23101), t0=990.0)
    everything = analyze(_write(tmp_path, "f403.pcap", agent + _http("ocsp.digicert.com", 1000.0,
                                                                     status=b"403 Forbidden", server="198.18.0.81")), RULES)
    flows = everything[everything.resp_p == 80]
    assert list(zip(flows.purpose, flows.verdict, flows.reason, flows.detail)) == [
        ("cert_check", "blocked", "rejected", "the server 198.18.0.81:80 answered 403 \"Forbidden\" to the request for "
         "http://ocsp.digicert.com:80 (a transparent web filter, or the server refusing it)")]
    want = ("this request was answered HTTP 403 on TCP 80, which is open: a web filter or transparent proxy refused "
            "it by policy: allow *.digicert.com in its URL filter (the agent's plain HTTP requests there); no port "
            "is to be opened")
    for row in _rows(everything):
        assert row.loc["cert_check", "fix"] == want
    alone = analyze(_write(tmp_path, "alone.pcap", _http("ocsp.digicert.com", 1000.0, status=b"403 Forbidden",
                                                         server="198.18.0.81")), RULES)
    for row in _rows(alone):
        assert (row.loc["cert_check", "status"], row.loc["cert_check", "status_note"], row.loc["cert_check", "fix"]) == (
            "not seen", "no KSC flow: its port's flows are other programs'", "")
    page = render_html(everything, RULES, charts=False)
    finding = _text(re.search(r'id="purpose-cert_check">(.*?)</article>', page, re.S).group(1))
    assert "rejected : an HTTP answer refused the request (403, 451, 511: a web filter, transparent proxy or " \
           "captive portal refusing it by policy; 502-504: a gateway that could not reach the server); the TCP " \
           "port is open" in finding
    assert "TCP reset" not in finding
    # with a SYN answered by a reset too: each kind counted in "Why flagged", both pieces of advice
    rst = [(1010.0, eth(IP(src="192.0.2.10", dst="198.18.0.82") / TCP(sport=50001, dport=80, flags="S", seq=7))),
           (1010.01, eth(IP(src="198.18.0.82", dst="192.0.2.10") / TCP(sport=80, dport=50001, flags="RA", seq=0,
                                                                        ack=8), src=SERVER_MAC, dst=CLIENT_MAC))]
    dns = udp(("192.0.2.53", 53), ("192.0.2.10", 41000), bytes(DNS(id=1, qr=1, qd=DNSQR(qname="crl4.digicert.com"),
                                                                    an=_a("crl4.digicert.com", "198.18.0.82"))),
              t=1009.0, src_mac=SERVER_MAC, dst_mac=CLIENT_MAC)
    both = analyze(_write(tmp_path, "both.pcap", agent + _http("ocsp.digicert.com", 1000.0, status=b"403 Forbidden",
                                                               server="198.18.0.81") + [dns] + rst), RULES)
    assert sorted(both.loc[both.purpose == "cert_check", "reason"]) == ["rejected", "rejected"]
    for row in _rows(both):
        assert row.loc["cert_check", "fix"] == (
            RULES.by_id("cert_check").fix + "; 1 of them was answered HTTP 403 by a web filter or transparent proxy "
            "(the port is open for it): allow *.digicert.com in its URL filter")
    finding = _text(re.search(r'id="purpose-cert_check">(.*?)</article>',
                              render_html(both, RULES, charts=False), re.S).group(1))
    assert "rejected : 1 of them: an HTTP answer refused the request" in finding
    assert "; 1 of them: a TCP reset answered the connection attempt" in finding


def _a(name, address):
    from scapy.layers.dns import DNSRR
    return DNSRR(rrname=name, type="A", ttl=60, rdata=address)


# --- F7: Kaspersky names outside a purpose's mask are its other services ----------------------------
def test_kaspersky_names_outside_the_mask_are_told_as_kasperskys_other_services(tmp_path):
    upd = analyze(_write(tmp_path, "upd.pcap", _http("dnl-03.geo.kaspersky.com", 1000.0, server="198.18.1.3")),
                  RULES)
    assert list(zip(upd.purpose, upd.verdict, upd.reason)) == [("cert_check", "unexpected", "host_mismatch")]
    want = ("this flow on TCP 80 went to a name outside *.digicert.com: Kaspersky names not on the KSC Cloud "
            "Console port page (its other services: updates, KSN, licensing…), not this purpose's servers; nothing "
            "to change for the Cloud Console (those services have their own port list)")
    for row in _rows(upd):
        assert (row.loc["cert_check", "status"], row.loc["cert_check", "fix"]) == ("unexpected", want)
    assert "Administration Server address" not in want
    finding = _text(re.search(r'id="purpose-cert_check">(.*?)</article>',
                              render_html(upd, RULES, charts=False), re.S).group(1))
    assert ("host_mismatch : the server name is outside the documented host mask: Kaspersky names not on the KSC "
            "Cloud Console port page") in finding and "not Kaspersky's service" not in finding
    # with another program's name too: both told
    recs = _http("dnl-03.geo.kaspersky.com", 1000.0, server="198.18.1.3") + \
        _http("www.example.com", 1010.0, server="198.51.100.7", cport=50791)
    mixed = analyze(_write(tmp_path, "mixed.pcap", recs), RULES)
    assert sorted(mixed.reason) == ["host_mismatch", "host_mismatch"]
    for row in _rows(mixed):
        assert row.loc["cert_check", "fix"] == (
            "these flows on TCP 80 went to names outside *.digicert.com: not this purpose's servers (1 of them "
            "Kaspersky names not on the KSC Cloud Console port page (its other services: updates, KSN, licensing…))."
            " If an agent made the others, check the Administration Server address, DNS and proxy it uses; else "
            "they are another program's traffic")


# --- F11: a distribution point's own reset over IPv6 only: IPv4-only service or firewall rule -------
def test_a_dps_ipv6_only_reset_on_the_same_subnet_names_the_ipv6_listener_or_rule(tmp_path):
    from scapy.layers.inet6 import IPv6
    v4 = tcp_session(("192.0.2.10", 50000), ("192.0.2.20", 13111), t0=1000.0)
    syn = IPv6(src="2001:db8:1::10", dst="2001:db8:1::20") / TCP(sport=50001, dport=13111, flags="S", seq=7)
    rst = IPv6(src="2001:db8:1::20", dst="2001:db8:1::10") / TCP(sport=13111, dport=50001, flags="RA", seq=0, ack=8)
    flows = analyze(_write(tmp_path, "dp6.pcap", v4 + [(1010.0, eth(syn)),
                                                      (1010.001, eth(rst, src=SERVER_MAC, dst=CLIENT_MAC))]), RULES)
    dp = flows[flows.purpose == "dp_ksn_proxy_tcp"]
    assert sorted(zip(dp.resp_h, dp.verdict, dp.reason)) == [("192.0.2.20", "ok", ""),
                                                             ("2001:db8:1::20", "blocked", "rejected")]
    want = ("1 of 2 flows ok, 1 blocked (all blocked over IPv6, the ok ones over IPv4): this connection attempt was "
            "answered by a TCP reset from the distribution point itself over IPv6 (on the client's subnet: no router "
            "between them), while IPv4 worked: the service may listen on IPv4 only, or the distribution point's host "
            "firewall lacks the IPv6 rule: let the service listen on IPv6 too, or add the IPv6 rule ("
            + RULES.by_id("dp_ksn_proxy_tcp").fix + ")")
    for row in _rows(flows):
        assert row.loc["dp_ksn_proxy_tcp", "fix"] == want
    assert "check its routes" not in want and "nothing listens" not in want


# --- F12: a bare TCP handshake on a TLS port shows the port open, not the TLS ----------------------
def test_a_bare_handshake_on_a_tls_port_is_port_open_and_a_tls_byte_verifies(tmp_path):
    bare = analyze(_write(tmp_path, "bare.pcap", tcp_session(("192.0.2.10", 50000), ("203.0.113.10", 23101))
                          + tcp_session(("192.0.2.10", 50001), ("192.0.2.20", 13000), t0=1010.0)), RULES)
    assert sorted(zip(bare.purpose, bare.verdict, bare.orig_bytes)) == [
        ("agent_connection", "ok", 0), ("dp_agent_connection", "ok", 0)]
    for row in _rows(bare):
        assert (row.loc["agent_connection", "status"], row.loc["dp_agent_connection", "status"]) == (
            "port open", "port open")
        assert row.loc["agent_connection", "fix"] == (
            "1 flow on TCP 23100-23199 answered, but none carried a byte (a bare TCP handshake: a port probe such as "
            "Test-NetConnection, or a connection closed before its TLS began): the port is open, the TLS connection "
            "itself is not shown. To verify the purpose, capture the agent connecting (its TLS handshake to "
            "*.ksc.kaspersky.com)")
    assert "agent_connection (port open): 1 flow on TCP 23100-23199 answered, but none carried a byte" in \
        render_table(bare, RULES, width=2000)
    # KSN (TCP, no TLS documented): a bare handshake verifies as before
    other = analyze(_write(tmp_path, "other.pcap", tcp_session(("192.0.2.10", 50002), ("203.0.113.13", 1443))), RULES)
    for row in _rows(other):
        assert row.loc["ksn", "status"] == "verified"


# --- F17: an 80-column terminal: the flagged flows one block each, purpose ids whole ----------------
def test_an_80_column_terminal_gets_flagged_flows_without_broken_addresses(tmp_path):
    recs = (_syn_icmp(56435, "203.0.113.10", 23101, "192.0.2.1", 13, 1000.0)
            + _syn_icmp(52773, "203.0.113.13", 1443, "192.0.2.1", 1, 1001.0))
    flows = analyze(_write(tmp_path, "narrow.pcap", recs), RULES)
    out = render_table(flows, RULES, width=80)
    lines = [x.rstrip() for x in out.splitlines()]
    at = lines.index("Flagged flows (2)")
    # (session 32: a capture not of today has its date on a line of its own first)
    assert lines[at + 1] == "1970-01-01 (UTC)"
    at += 1
    assert lines[at + 1:at + 7] == [
        "00:16:40.000  192.0.2.10:56435 -> tcp 203.0.113.10:23101",
        "    agent_connection  blocked  icmp_unreachable",
        "    answered by ICMP administratively prohibited (3/13) from 192.0.2.1",
        "00:16:41.000  192.0.2.10:52773 -> tcp 203.0.113.13:1443",
        "    ksn  blocked  icmp_unreachable",
        "    answered by ICMP host unreachable (3/1) from 192.0.2.1"]
    assert max(len(x) for x in lines) <= 80
    assert "agent_connection    │" in out and "agent_connect…" not in out   # (the checklist's ids whole)
    # a wide console keeps the table
    assert "┃ time (UTC)" in render_table(flows, RULES, width=160)
