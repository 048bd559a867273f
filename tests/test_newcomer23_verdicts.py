"""Newcomer 23 F1, F2, F8, F10, F19, F20: verdicts and details checked against the vendor's page.

- F1: a distribution point's port (§C) towards a Kaspersky cloud name is the cloud server
  contacted on an on-premises port, not a distribution point: ``unexpected``/``host_mismatch``;
  to a local address it stays a distribution point's flow.
- F2: a TLS-inspecting proxy whose certificate the client refused (the handshake aborted) is
  ``blocked``/``tls_intercepted`` (the agent cannot connect); accepted, ``unexpected``.
- F8: cleartext sent by the client on a TLS port: the detail says so and quotes its first bytes.
- F10: TLS on TCP 1443 (KSN) re-signed by an inspection product's CA is ``tls_intercepted``.
- F19: a host_mismatch named by the server's certificate says so.
- F20: a handshake closed without an alert says who closed, and after what.

Real TLS 1.2 handshakes (Python's ssl in memory, ``test_protocols_tls.run_handshake``) in TCP
sessions built with scapy."""
from __future__ import annotations

import ssl

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from pcapbuild import eth, ip_of, pcap_bytes
from test_protocols_tls import run_handshake
from test_tls_view_cut import _flights, _write

from kscc_traffic import analyze
from kscc_traffic.analyze import analyze_packets
from kscc_traffic.capture.decode import decode
from kscc_traffic.capture.files import read_frames
from kscc_traffic.classify import CLIENT_CLEARTEXT, ONPREM_PORT, local_address
from kscc_traffic.output import fails, flagged_verdicts
from kscc_traffic.report import TableSummary, readiness
from kscc_traffic.rules import load_rules
from test_classify_fast import assert_same
from chunkcmp import assert_same as assert_same_chunked

RULES = load_rules()
AGENT, CLOUD, DP = "192.0.2.10", "203.0.113.10", "192.0.2.20"
SNI = "eu1.ksc.kaspersky.com"
FORTI = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Fortinet"),
                   x509.NameAttribute(NameOID.COMMON_NAME, "FortiGate CA")])


def _session(parts, client=(AGENT, 50000), server=(CLOUD, 23101), close="c", t0=100.0):
    """(ts, frame) of a TCP connection: handshake, ``parts`` = [(side 'c'/'s', bytes)] one
    segment each, then FIN both ways, ``close`` ('c' or 's') first."""
    seq = {"c": 1000, "s": 5000}
    out, t = [], t0

    def seg(side, flags, data=b""):
        nonlocal t
        src, dst = (client, server) if side == "c" else (server, client)
        other = "s" if side == "c" else "c"
        pkt = Ether(src="02:00:00:00:00:10", dst="02:00:00:00:00:01") / IP(src=src[0], dst=dst[0]) / TCP(
            sport=src[1], dport=dst[1], flags=flags, seq=seq[side], ack=seq[other] if "A" in flags else 0) / data
        out.append((t, pkt))
        t += 0.001
        seq[side] += len(data) + (1 if "S" in flags or "F" in flags else 0)

    seg("c", "S")
    seg("s", "SA")
    seg("c", "A")
    for side, data in parts:
        seg(side, "PA", data)
    first, second = (("c", "s") if close == "c" else ("s", "c"))
    seg(first, "FA")
    seg(second, "FA")
    seg(first, "A")
    return out


def _tls12(tmp_path, sni=SNI, names=(SNI,), **kw):
    """(client records, server records) of a TLS 1.2 handshake (``verify``: the client refuses
    the self-signed certificate with an alert)."""
    cs, ss, err = run_handshake(tmp_path, ssl.TLSVersion.TLSv1_2, sni, list(names), **kw)
    return _flights(cs), _flights(ss), err


def _first_flight(s):
    """The server's records up to its ServerHelloDone (before its ChangeCipherSpec)."""
    ccs = next((i for i, r in enumerate(s) if r[0] == 20), len(s))
    return b"".join(s[:ccs])


def _complete(c, s, **kw):
    """A whole TLS 1.2 handshake: the client's and the server's records in handshake order."""
    ccs = next(i for i, r in enumerate(s) if r[0] == 20)
    return _session([("c", c[0]), ("s", b"".join(s[:ccs])), ("c", b"".join(c[1:])), ("s", b"".join(s[ccs:]))],
                    **kw)


def _flows(tmp_path, records, name="c.pcap"):
    path = _write(tmp_path / name, records)
    flows = analyze(str(path))
    return flows[flows["purpose"] != "dns"].reset_index(drop=True), path


def _internal(path):
    """The flow table with the internal columns classify reads (for the grouped-path check)."""
    table, _ = analyze_packets(decode(read_frames(path)), RULES, path.name, internal=True)
    return table


# --- F2: interception refused by the client is blocked ----------------------------------------


def test_a_certificate_the_client_rejects_is_blocked_intercepted(tmp_path):
    """s38: the client's unknown_ca alert after the proxy's certificate: no connection."""
    c, s, err = _tls12(tmp_path, verify=True)
    assert err is not None and len(c) == 2          # ClientHello, then the client's alert
    flows, path = _flows(tmp_path, _session([("c", c[0]), ("s", b"".join(s)), ("c", c[1])]))
    r = flows.iloc[0]
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_intercepted")
    assert r["tls_alert"] == "client: unknown_ca (48)" and not r["tls_established"]
    # (the issuer named, newcomer 30 F7: this self-signed certificate's own name)
    assert r["detail"] == (f"the client rejected the server's certificate (unknown_ca (48)) for {SNI} issued by "
                           f"CN={SNI}: a TLS-inspecting proxy whose CA the client does not trust?; the handshake was aborted "
                           "and never completed: the agent cannot connect this way")
    # --fail-on blocked now says so
    assert fails(flagged_verdicts(flows), "blocked")
    # the advice: the port is open, the inspection has to change (not "allow outbound")
    for chk in (readiness(flows, RULES), TableSummary.of(flows).readiness(RULES)):
        row = chk.set_index("rule").loc["agent_connection"]
        assert (row["status"], row["blocked"], row["reasons"]) == ("blocked", 1, "tls_intercepted")
        assert row["fix"].startswith("this connection reached the server on TCP 23100-23199 (the TCP handshake "
                                     "completed: the port is open, nothing to open in the firewall), then the TLS "
                                     "handshake was aborted on a TLS-inspecting proxy's certificate")
        assert row["fix"].endswith("exclude these names from inspection (*.ksc.kaspersky.com)")
        assert "allow outbound" not in row["fix"]
    assert_same(_internal(path))
    assert_same_chunked(path, [600])


def test_an_inspection_certificate_closed_on_is_blocked_accepted_one_unexpected(tmp_path):
    """A FortiGate-issued certificate: the client closing after it (no alert) could not connect;
    a completed handshake through it works, inspected (unexpected, as before)."""
    c, s, err = _tls12(tmp_path, issuer=FORTI)
    assert err is None
    closed, path = _flows(tmp_path, _session([("c", c[0]), ("s", _first_flight(s))]))
    r = closed.iloc[0]
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_intercepted")
    assert r["detail"] == (f"certificate for {SNI} issued by CN=FortiGate CA,O=Fortinet: a Fortinet FortiGate "
                           "re-signs the connection (TLS inspection); the handshake was aborted (connection "
                           "closed (SF)) and never completed: the agent cannot connect this way")
    assert_same(_internal(path))
    ccs = next(i for i, r in enumerate(s) if r[0] == 20)
    ok, _ = _flows(tmp_path, _session([("c", c[0]), ("s", b"".join(s[:ccs])), ("c", b"".join(c[1:])),
                                       ("s", b"".join(s[ccs:]))]), "ok.pcap")
    r = ok.iloc[0]
    assert r["tls_established"]
    assert (r["verdict"], r["reason"]) == ("unexpected", "tls_intercepted")
    assert r["detail"] == (f"certificate for {SNI} issued by CN=FortiGate CA,O=Fortinet: a Fortinet FortiGate "
                           "re-signs the connection (TLS inspection)")


# --- F10: KSN on 1443 -------------------------------------------------------------------------


def test_ksn_re_signed_by_an_inspection_ca_is_intercepted(tmp_path):
    """s30: TLS to 1443 whose certificate a FortiGate issued: as on the TLS purposes."""
    name = "ksn-a.kaspersky.com"
    c, s, _ = _tls12(tmp_path, sni=name, names=(name,), issuer=FORTI)
    flows, path = _flows(tmp_path, _complete(c, s, server=("203.0.113.13", 1443)))
    r = flows.iloc[0]
    assert (r["purpose"], r["verdict"], r["reason"]) == ("ksn", "unexpected", "tls_intercepted")
    assert r["detail"] == (f"certificate for {name} issued by CN=FortiGate CA,O=Fortinet: a Fortinet FortiGate "
                           "re-signs the connection (TLS inspection)")
    assert_same(_internal(path))
    # a certificate from another CA, for the name asked: ok as before
    (tmp_path / "b").mkdir()
    c, s, _ = _tls12(tmp_path / "b", sni=name, names=(name,))
    flows, _ = _flows(tmp_path, _complete(c, s, server=("203.0.113.13", 1443)), "plain.pcap")
    assert tuple(flows.iloc[0][["purpose", "verdict", "reason", "detail"]]) == ("ksn", "ok", "", "")


# --- F20: who closed the handshake -------------------------------------------------------------


def test_the_client_closing_after_the_servers_certificate_is_told(tmp_path):
    """s34: no alert, the client closes after the server's first flight."""
    c, s, _ = _tls12(tmp_path, names=("*.ksc.kaspersky.com", SNI))
    flows, path = _flows(tmp_path, _session([("c", c[0]), ("s", _first_flight(s))]))
    r = flows.iloc[0]
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed")
    assert r["detail"] == ("TLS handshake aborted: the client closed the connection (FIN, SF) after the server's "
                           "last flight (its certificate, for *.ksc.kaspersky.com issued by CN=*.ksc.kaspersky.com, seen), sending nothing after it, "
                           "no alert either: how an agent refuses a certificate it does not trust without saying "
                           "so (a TLS-inspecting proxy's?)")
    assert_same(_internal(path))
    assert_same_chunked(path, [500])      # (a chunked or live analysis: the same detail)


def test_the_server_closing_after_the_client_hello_is_told(tmp_path):
    c, _, _ = _tls12(tmp_path)
    flows, _ = _flows(tmp_path, _session([("c", c[0])], close="s"))
    r = flows.iloc[0]
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed")
    # (0.001 s between the ClientHello and the server's FIN: its wait, to the millisecond below 5 ms)
    assert r["detail"] == ("TLS handshake aborted: the server closed the connection (FIN, SF) 0.001 s after the "
                           "ClientHello, before the server sent a byte")


# --- F19: the name from the certificate --------------------------------------------------------


def test_a_host_mismatch_named_by_the_certificate_says_so(tmp_path):
    """s25: no SNI, no DNS: the certificate's name is outside the mask."""
    c, s, _ = _tls12(tmp_path, sni=None, names=("www.example.com",))
    flows, _ = _flows(tmp_path, _complete(c, s))
    r = flows.iloc[0]
    assert (r["server_name"], r["verdict"], r["reason"]) == ("", "unexpected", "host_mismatch")
    assert r["detail"] == "www.example.com is not under *.ksc.kaspersky.com (from the server's certificate)"


# --- F8: the client's cleartext ----------------------------------------------------------------


@pytest.mark.parametrize("data, quoted", [
    (b"GET / HTTP/1.1\r\nHost: eu1.ksc.kaspersky.com:23101\r\n\r\n",
     'an HTTP request, "GET / HTTP/1.1\\x0d\\x0aHost: eu1.ksc.kaspersky.…"'),
    (bytes(range(1, 41)), "bytes that are no valid TLS record nor HTTP, first bytes 01 02 03 04 05 06 07 08"),
    # (untrusted text: a terminal escape is escaped, never passed on)
    (b"\x1b]0;owned\x07 hello there, this is text\n",
     'bytes that are no valid TLS record nor HTTP, "\\x1b]0;owned\\x07 hello there, this is text"'),
])
def test_the_clients_cleartext_is_quoted(tmp_path, data, quoted):
    """s03/s03b: the client (not a server or proxy) sent cleartext on a TLS port."""
    flows, path = _flows(tmp_path, _session([("c", data), ("s", b"HTTP/1.1 200 OK\r\n\r\n")]))
    r = flows.iloc[0]
    assert (r["purpose"], r["verdict"], r["reason"]) == ("agent_connection", "unexpected", "not_tls")
    assert r["detail"] == (f"{CLIENT_CLEARTEXT}: {quoted} (not an agent's TLS: another program, or something on "
                           "the way rewriting the agent's connection)")
    assert_same(_internal(path))
    assert_same_chunked(path, [200])      # (the client's first bytes kept by a chunked analysis too)


def test_a_server_answering_a_client_hello_in_http_keeps_its_detail(tmp_path):
    """s40 (not the client's cleartext): the server's answer quoted (a redirect: blocked/rejected,
    break-it 24 F12)."""
    c, _, _ = _tls12(tmp_path)
    flows, _ = _flows(tmp_path, _session([("c", c[0]), ("s", b"HTTP/1.1 302 Found\r\nLocation: x\r\n\r\n")],
                                         close="s"))
    r = flows.iloc[0]
    assert (r["verdict"], r["reason"]) == ("blocked", "rejected")
    assert r["detail"] == ("the server answered HTTP 302 to the ClientHello where TLS is documented: a redirect to x "
                           "(a captive portal or web filter?)")


# --- F1: a distribution point's port towards the cloud ------------------------------------------


def _dns_answer(name, address, t=99.0):
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import UDP
    q = eth(ip_of(AGENT, "192.0.2.53") / UDP(sport=40000, dport=53) / DNS(id=7, rd=1, qd=DNSQR(qname=name)))
    a = eth(ip_of("192.0.2.53", AGENT) / UDP(sport=53, dport=40000) / DNS(
        id=7, qr=1, ra=1, qd=DNSQR(qname=name), an=DNSRR(rrname=name, type="A", rdata=address, ttl=60)))
    return [(t, q), (t + 0.01, a)]


def _syns(client, server, t=110.0, n=3):
    return [(t + i, eth(ip_of(client[0], server[0]) / TCP(sport=client[1], dport=server[1], flags="S", seq=77)))
            for i in range(n)]


def test_a_dp_port_to_a_cloud_name_is_an_on_premises_leftover(tmp_path):
    """s16: TLS to 13000 with the cloud's SNI, and SYNs to 13000 of the address DNS gave for it:
    not a distribution point (neither ok nor blocked), host_mismatch; a DP on the LAN unchanged."""
    c, s, _ = _tls12(tmp_path)
    records = (_dns_answer(SNI, CLOUD) + _complete(c, s, server=(CLOUD, 13000))
               + _syns(("192.0.2.11", 50001), (CLOUD, 13000)))
    (tmp_path / "b").mkdir()
    c2, s2, _ = _tls12(tmp_path / "b", sni=None, names=("dp1.corp.example",))
    records += _complete(c2, s2, client=(AGENT, 50002), server=(DP, 13000), t0=120.0)
    path = tmp_path / "s16.pcap"
    path.write_bytes(pcap_bytes(records))
    flows = analyze(str(path))
    flows = flows[flows["purpose"] != "dns"].set_index("orig_p")
    want = (f"{ONPREM_PORT} (TCP 13000): {SNI} (from {{}}) is a Kaspersky cloud name, not a distribution point; "
            "the cloud server takes agents on TCP 23100-23199 (agent_connection): a setting left over from an "
            "on-premises Kaspersky Security Center, after a migration?")
    # (audit s25: the unanswered SYNs' detail says the connection itself failed, too)
    failed = "; the connection itself failed (no_answer): SYN sent 3 times, no answer"
    for port, source, more in ((50000, "SNI", ""), (50001, "DNS", failed)):
        r = flows.loc[port]
        assert (r["purpose"], r["verdict"], r["reason"]) == ("dp_agent_connection", "unexpected", "host_mismatch")
        assert r["detail"] == want.format(source) + more
    assert tuple(flows.loc[50002, ["purpose", "verdict", "reason"]]) == ("dp_agent_connection", "ok", "")
    assert_same(_internal(path))
    assert_same_chunked(path, [700])
    # the checklist: the DP verified by the LAN flow, the two leftovers not counted as its failures
    for chk in (readiness(flows.reset_index(), RULES), TableSummary.of(flows.reset_index()).readiness(RULES)):
        row = chk.set_index("rule").loc["dp_agent_connection"]
        assert (row["status"], row["ok"], row["blocked"], row["unexpected"]) == ("verified", 1, 0, 2)
    # without the DP on the LAN: unexpected, and the advice is about the agent's settings
    alone = flows.drop(index=50002).reset_index()
    for chk in (readiness(alone, RULES), TableSummary.of(alone).readiness(RULES)):
        row = chk.set_index("rule").loc["dp_agent_connection"]
        assert row["status"] == "unexpected"
        assert row["fix"].startswith("these 2 flows on TCP 13000 went to the cloud Administration Server (a "
                                     f"Kaspersky cloud name), not to a distribution point: {ONPREM_PORT}")
        assert row["fix"].endswith("nothing to open on TCP 13000 for them")
        assert "None" not in row["fix"] and "allow inbound" not in row["fix"]


def test_a_cloud_name_on_a_local_address_stays_a_dp_flow(tmp_path):
    """A distribution point in a private network answering for a Kaspersky name (split DNS, a
    certificate of its own): its port is the DP's, judged as before."""
    c, s, _ = _tls12(tmp_path)
    flows, path = _flows(tmp_path, _complete(c, s, server=("10.1.2.3", 13000)))
    assert tuple(flows.iloc[0][["purpose", "verdict", "reason"]]) == ("dp_agent_connection", "ok", "")
    assert_same(_internal(path))


@pytest.mark.parametrize("text, local", [
    ("10.1.2.3", True), ("172.31.0.1", True), ("192.168.0.9", True), ("100.64.1.1", True), ("169.254.1.1", True),
    ("fd12::1", True), ("fe80::1", True), ("::ffff:192.168.1.1", True),
    ("203.0.113.10", False), ("192.0.2.20", False), ("2001:db8::1", False), ("<h>", False), ("", False),
])
def test_local_addresses(text, local):
    assert local_address(text) is local


@pytest.mark.parametrize("sni, names, port", [
    (None, (SNI,), 13000),                           # the cloud's name in the certificate alone
    ("ksn.kaspersky.com", ("ksn.kaspersky.com",), 17111),   # KSN's name on the DP's KSN proxy port
])
def test_names_the_client_did_not_ask_for_the_cloud_stay_a_dp_flow(tmp_path, sni, names, port):
    """Only a name the client asked for (SNI, Host, DNS) under the cloud's mask makes a DP port's
    flow the cloud's: a certificate is the distribution point's own business, and other
    kaspersky.com names (KSN through the DP's proxy ports) are not the Administration Server."""
    c, s, _ = _tls12(tmp_path, sni=sni, names=names)
    flows, path = _flows(tmp_path, _complete(c, s, server=(DP, port)))
    r = flows.iloc[0]
    assert r["verdict"] == "ok" and r["purpose"].startswith("dp_") and not r["detail"].startswith(ONPREM_PORT)
    assert_same(_internal(path))
