"""Newcomer pass s60, findings #3, #10, #11, #12 (fixed in session 61).

#3: a server that resets every TLS session right after the agent's first request (the handshake
completed, the agent sent its first application record, the server answered with a reset and
nothing else) was ``verified`` with no remark. The flows stay ``ok`` (the network path works), with
a detail saying what happened (:data:`kscc_traffic.classify.REFUSED_AFTER_REQUEST`), and the
checklist row gets :data:`kscc_traffic.report.REFUSED_NOTE` and a "To verify" line
(:func:`kscc_traffic.report.refused_fix`) in the table and HTML reports. Not for a session whose
server sent data before its reset, nor a reset long after (an idle close), nor a reset whose TTL
is not the server's (a device on the path: ``blocked``/``rejected`` as before).
"""
from __future__ import annotations

import datetime
import html

import pandas as pd
import pytest

from chunkcmp import RULES, chunked, whole, write
from pcapbuild import CLIENT_MAC, SERVER_MAC, dns_answer, udp

from kscc_traffic.classify import PATH_RESET, REFUSED_AFTER_REQUEST, REFUSED_MEANS
from kscc_traffic.html_report import render_html
from kscc_traffic.report import (INTERCEPT_CAUSES, REASON_TEXT, REFUSED_NOTE, VENDOR_NOTE, TableSummary,
                                 client_details, intercepted_cause, intercepted_text, readiness, refused_fix,
                                 render_table)

pytest.importorskip("cryptography")
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402
from scapy.layers.inet import IP, TCP  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402

AGENT, RESOLVER, SERVER = "192.0.2.10", "192.0.2.53", "198.51.100.77"
NAME = "us1.ksc.kaspersky.com"
T0 = 1764666000.0      # 2025-12-02
_NOW = datetime.datetime(2025, 12, 2, tzinfo=datetime.timezone.utc)


def _cert(issuer_cn="DigiCert Global G2 TLS RSA SHA256 2020 CA1", issuer_o="DigiCert Inc",
          sans=("*.ksc.kaspersky.com",)) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, sans[0])]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn),
                                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, issuer_o)]))
            .public_key(key.public_key()).serial_number(12345)
            .not_valid_before(_NOW - datetime.timedelta(days=100))
            .not_valid_after(_NOW + datetime.timedelta(days=200))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(s) for s in sans]), False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def client_hello(sni: str) -> bytes:
    from scapy.layers.tls.all import TLS, TLSClientHello, TLS_Ext_ServerName, ServerName
    exts = [TLS_Ext_ServerName(servernames=[ServerName(servername=sni.encode())])]
    return bytes(TLS(version=0x0301, msg=[TLSClientHello(version=0x0303, ciphers=[0xc02f, 0xc02b], ext=exts)]))


def server_flight(der: bytes) -> bytes:
    from scapy.layers.tls.all import TLS, TLSCertificate, TLSServerHello, TLSServerHelloDone
    from scapy.layers.tls.cert import Cert
    return bytes(TLS(version=0x0303, msg=[TLSServerHello(version=0x0303, cipher=0xc02f),
                                          TLSCertificate(certs=[Cert(der)]), TLSServerHelloDone()]))


CLIENT_FINISH = b"\x16\x03\x03\x00\x05xxxxx\x14\x03\x03\x00\x01\x01"
SERVER_FINISH = b"\x14\x03\x03\x00\x01\x01\x16\x03\x03\x00\x05yyyyy"
REQUEST = b"\x17\x03\x03\x00\x20" + b"a" * 32
ANSWER = b"\x17\x03\x03\x00\x40" + b"b" * 64


class Conv:
    """The packets of one TCP connection, client ``AGENT`` to ``SERVER``:``port``, 10 ms apart."""

    def __init__(self, out: list, cport: int, t: float, port: int = 23101, ttl_s: int = 52):
        self.out, self.cport, self.t, self.port, self.ttl_s = out, cport, t, port, ttl_s
        self.cs, self.ss = 1000, 5000

    def c2s(self, flags, data=b"", dt=0.01):
        p = Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IP(src=AGENT, dst=SERVER, ttl=64) / TCP(
            sport=self.cport, dport=self.port, flags=flags, seq=self.cs, ack=self.ss if "A" in flags else 0)
        self.t += dt
        self.out.append((self.t, p / data if data else p))
        self.cs += len(data) + (1 if "S" in flags or "F" in flags else 0)

    def s2c(self, flags, data=b"", dt=0.01, ttl=None):
        p = Ether(src=SERVER_MAC, dst=CLIENT_MAC) / IP(src=SERVER, dst=AGENT, ttl=ttl or self.ttl_s) / TCP(
            sport=self.port, dport=self.cport, flags=flags, seq=self.ss, ack=self.cs)
        self.t += dt
        self.out.append((self.t, p / data if data else p))
        self.ss += len(data) + (1 if "S" in flags or "F" in flags else 0)

    def tls(self, der: bytes, sni: str = NAME):
        """TCP and TLS 1.2 handshakes, then the agent's first request."""
        self.c2s("S", dt=0)
        self.s2c("SA")
        self.c2s("A")
        self.c2s("PA", client_hello(sni))
        self.s2c("PA", server_flight(der))
        self.c2s("PA", CLIENT_FINISH)
        self.s2c("PA", SERVER_FINISH)
        self.c2s("PA", REQUEST)


def _dns(recs):
    from scapy.layers.dns import DNS, DNSQR
    recs += [udp((AGENT, 41000), (RESOLVER, 53), bytes(DNS(id=41000, rd=1, qd=DNSQR(qname=NAME))), t=T0),
             dns_answer(NAME, SERVER, T0 + 0.02)]


def _capture(tmp_path, ending, n=3, name="c.pcap"):
    """A capture of ``n`` TLS sessions 30 s apart, each ended by ``ending(conv)``."""
    der, recs = _cert(), []
    _dns(recs)
    for i in range(n):
        c = Conv(recs, 54000 + i, T0 + 1 + 30 * i)
        c.tls(der)
        ending(c)
    return write(tmp_path, sorted(recs, key=lambda r: r[0]), name)


def _refused(c):
    c.s2c("RA")


def test_sessions_reset_at_the_first_request_stay_ok_with_a_detail_and_a_to_verify_line(tmp_path):
    path = _capture(tmp_path, _refused)
    flows, _ = whole(path)
    agent = flows[flows.purpose == "agent_connection"]
    assert agent.verdict.tolist() == ["ok"] * 3
    assert agent.conn_state.tolist() == ["RSTR"] * 3
    assert agent.detail.tolist() == [REFUSED_AFTER_REQUEST + REFUSED_MEANS] * 3
    assert REFUSED_AFTER_REQUEST == ("the TLS handshake completed, then the server reset the connection right after "
                                     "the agent's first request (within 1 s), having sent no data after the handshake")
    # (chunked: the same flows)
    parts, _ = chunked(path, 400)
    assert parts.detail.tolist() == flows.detail.tolist()
    assert parts.verdict.tolist() == flows.verdict.tolist()
    row = readiness(flows, RULES).set_index("rule").loc["agent_connection"]
    assert row.status == "verified"
    assert row.status_note == REFUSED_NOTE == "sessions reset at the agent's first request"
    fix = refused_fix(next(r for r in RULES.rules if r.id == "agent_connection"), 3, 3)
    assert row.fix == fix
    assert fix.startswith("the server reset each of the 3 sessions on TCP 23100-23199 right after the agent's first "
                          "request (within 1 s, no server data after the TLS handshake; see each flow's detail): the "
                          "network path works (nothing to open in the firewall); the server refused the agent at the "
                          "application level (an agent set up for another workspace or region, or its certificate): "
                          "check the Administration Server address and the installation package the agent uses.")
    # (batch by batch: the same row)
    summary = TableSummary()
    summary.add(parts)
    got = summary.readiness(RULES).set_index("rule").loc["agent_connection"]
    assert (got.status, got.status_note, got.fix) == ("verified", REFUSED_NOTE, fix)
    text = " ".join(x.strip() for x in render_table(flows, RULES, width=400).splitlines())
    assert f"To verify: agent_connection (verified): {fix}" in text
    assert "What to change" not in text
    page = html.unescape(render_html(flows, RULES))
    assert fix in page and REFUSED_NOTE in page


def test_one_session_of_two_reset_is_counted(tmp_path):
    der, recs = _cert(), []
    _dns(recs)
    c = Conv(recs, 54000, T0 + 1)
    c.tls(der)
    c.s2c("RA")
    c = Conv(recs, 54001, T0 + 31)
    c.tls(der)
    c.s2c("PA", ANSWER)
    c.c2s("FA")
    c.s2c("FA")
    c.c2s("A")
    flows, _ = whole(write(tmp_path, sorted(recs, key=lambda r: r[0])))
    row = readiness(flows, RULES).set_index("rule").loc["agent_connection"]
    assert row.status_note == REFUSED_NOTE
    assert row.fix.startswith("the server reset 1 of the 2 sessions on TCP 23100-23199 right after")


def _answered_then_reset(c):
    c.s2c("PA", ANSWER)
    c.s2c("RA")


def _reset_later(c):
    c.s2c("RA", dt=5.0)          # (an idle close, seconds after the request)


def _reset_by_a_device(c):
    c.s2c("RA", ttl=60)          # (8 hops nearer than the server's packets: a device on the path)


@pytest.mark.parametrize("ending", [_answered_then_reset, _reset_later])
def test_no_remark_when_the_server_answered_or_reset_long_after(tmp_path, ending):
    flows, _ = whole(_capture(tmp_path, ending))
    agent = flows[flows.purpose == "agent_connection"]
    assert agent.verdict.tolist() == ["ok"] * 3
    assert not agent.detail.str.contains(REFUSED_AFTER_REQUEST, regex=False).any()
    row = readiness(flows, RULES).set_index("rule").loc["agent_connection"]
    assert (row.status, row.status_note) == ("verified", "")


def test_a_reset_with_another_ttl_is_still_a_device_on_the_path(tmp_path):
    flows, _ = whole(_capture(tmp_path, _reset_by_a_device))
    agent = flows[flows.purpose == "agent_connection"]
    assert agent.verdict.tolist() == ["blocked"] * 3
    assert agent.reason.tolist() == ["rejected"] * 3
    assert agent.detail.str.startswith(PATH_RESET).all()
    assert not agent.detail.str.contains(REFUSED_AFTER_REQUEST, regex=False).any()
    assert readiness(flows, RULES).set_index("rule").loc["agent_connection"].status == "blocked"


def _server_hello_13() -> bytes:
    from scapy.layers.tls.all import TLS, TLSServerHello
    from scapy.layers.tls.extensions import TLS_Ext_SupportedVersion_SH
    return bytes(TLS(version=0x0303, msg=[TLSServerHello(version=0x0303, cipher=0x1301,
                                                         ext=[TLS_Ext_SupportedVersion_SH(version=0x0304)])]))


def _sealed(n: int, fill: bytes = b"e") -> bytes:
    return b"\x17\x03\x03" + n.to_bytes(2, "big") + fill * n


def _reset_13(c):
    c.s2c("RA")


def _answered_13(c):
    c.s2c("PA", _sealed(200) + _sealed(200))
    c.s2c("RA")


def _second_request_13(c):
    c.s2c("PA", _sealed(200))
    c.c2s("PA", _sealed(90, b"q"))
    c.s2c("RA")


@pytest.mark.parametrize("ending, remarked", [(_reset_13, True), (_answered_13, False), (_second_request_13, False)])
def test_tls13_sessions(tmp_path, ending, remarked):
    # (TLS 1.3: the server's flight, the client's Finished flight with its request; reset at once,
    # or after an answer, or at a second request after an answer)
    recs = []
    _dns(recs)
    for i in range(2):
        c = Conv(recs, 54000 + i, T0 + 1 + 30 * i)
        c.c2s("S", dt=0)
        c.s2c("SA")
        c.c2s("A")
        c.c2s("PA", client_hello(NAME))
        c.s2c("PA", _server_hello_13() + b"\x14\x03\x03\x00\x01\x01" + _sealed(1200) + _sealed(300) + _sealed(60))
        c.c2s("PA", b"\x14\x03\x03\x00\x01\x01" + _sealed(53) + _sealed(80, b"r"))
        ending(c)
    path = write(tmp_path, sorted(recs, key=lambda r: r[0]))
    flows, _ = whole(path)
    agent = flows[flows.purpose == "agent_connection"]
    assert agent[["tls_version", "conn_state", "verdict"]].values.tolist() == [["TLS 1.3", "RSTR", "ok"]] * 2
    assert agent.detail.tolist() == [REFUSED_AFTER_REQUEST + REFUSED_MEANS if remarked else ""] * 2
    assert chunked(path, 500)[0].detail.tolist() == flows.detail.tolist()


def test_the_report_mirrors_the_reference_checklist(tmp_path):
    from test_report_fast import assert_same_report
    flows, _ = whole(_capture(tmp_path, _refused))
    assert_same_report(flows)
    flows, _ = whole(_capture(tmp_path, _answered_then_reset, name="d.pcap"))
    assert_same_report(flows)


SAMPLES = __import__("pathlib").Path(__file__).resolve().parent.parent / "samples" / "captures"
VENDOR_FIX = ("this flow on TCP 443 went to a name outside *.ksc.kaspersky.com: Kaspersky names not on the KSC Cloud "
              "Console port page (its other services: updates, KSN, licensing…), not this purpose's servers; nothing "
              "to change for the Cloud Console (those services have their own port list)")


def test_another_kaspersky_service_is_said_under_nothing_to_change():
    flows, _ = whole(SAMPLES / "unexpected_agent.pcap")
    web = flows[flows.purpose == "discovery"]
    assert list(zip(web.server_name, web.verdict, web.reason)) == [("myksc.kaspersky.com", "unexpected", "host_mismatch")]
    chk = readiness(flows, RULES).set_index("rule")
    assert (chk.loc["discovery", "status"], chk.loc["discovery", "status_note"], chk.loc["discovery", "fix"]) == (
        "unexpected", VENDOR_NOTE, VENDOR_FIX)
    assert VENDOR_NOTE == "another Kaspersky service: nothing to change"
    # (the others keep theirs: another server's name on the agent's port is a change to make)
    assert chk.loc["agent_connection", "status_note"] == "" and chk.loc["cert_check", "status_note"] == ""
    summary = TableSummary()
    summary.add(flows)
    assert summary.readiness(RULES).set_index("rule").loc["discovery", "status_note"] == VENDOR_NOTE
    text = " ".join(x.strip() for x in render_table(flows, RULES, width=400).splitlines())
    change = text[text.index("What to change:"):text.index("Nothing to change:")]
    assert "cert_check (unexpected: host_mismatch)" in change and "discovery" not in change
    assert f"Nothing to change: discovery (unexpected: host_mismatch): {VENDOR_FIX}" in text
    page = html.unescape(render_html(flows, RULES))
    assert f"<dt>Nothing to change</dt><dd class=\"fix\">{VENDOR_FIX}</dd>" in page


def test_a_failed_connection_to_another_kaspersky_service_stays_under_what_to_change(tmp_path):
    from scapy.layers.dns import DNS, DNSQR
    from pcapbuild import syn_attempts
    recs = [udp((AGENT, 41000), (RESOLVER, 53), bytes(DNS(id=41000, rd=1, qd=DNSQR(qname="ds.kaspersky.com"))),
                t=T0), dns_answer("ds.kaspersky.com", "198.51.100.9", T0 + 0.02)]
    recs += syn_attempts(50000, "198.51.100.9", 443, T0 + 1)
    flows, _ = whole(write(tmp_path, recs))
    row = readiness(flows, RULES).set_index("rule").loc["discovery"]
    assert (row.status, row.status_note) == ("unexpected", "")
    assert "it failed" in row.fix and "nothing to change" not in row.fix
    text = " ".join(x.strip() for x in render_table(flows, RULES, width=400).splitlines())
    assert "What to change: discovery (unexpected: host_mismatch)" in text and "Nothing to change:" not in text


def _browser(tmp_path):
    """A browser on another host: HTTPS to www.example.com, answered with a certificate for
    *.ksc.kaspersky.com (the newcomer's wrong_machine.pcap), closed after the server's flight."""
    der, recs = _cert(), []
    c = Conv(recs, 55000, T0, port=443)
    c.c2s("S", dt=0)
    c.s2c("SA")
    c.c2s("A")
    c.c2s("PA", client_hello("www.example.com"))
    c.s2c("PA", server_flight(der))
    c.c2s("FA")
    c.s2c("FA")
    c.c2s("A")
    return write(tmp_path, recs, "browser.pcap")


def test_no_ksc_traffic_details_say_the_client(tmp_path):
    flows, _ = whole(_browser(tmp_path))
    web = flows[flows.purpose == "discovery"]
    assert list(zip(web.verdict, web.reason)) == [("unexpected", "host_mismatch")]
    detail = web.detail.iloc[0]
    # (the flow table keeps its words: JSON Lines readers may match them)
    assert "the agent reached another server than the one it asked for" in detail
    assert detail.endswith("the agent cannot connect this way")
    said = detail.replace("the agent reached", "the client reached").replace("the agent cannot", "the client cannot")
    assert client_details(web) == [said]
    for width in (400, 80):      # (the table, and the narrow list)
        text = " ".join(x.strip() for x in render_table(flows, RULES, width=width).splitlines())
        assert text.startswith("No KSC agent traffic")
        assert "the client reached another server than the one it asked for" in text
        assert "the client cannot connect this way" in text
        assert "the agent reached" not in text and "the agent cannot" not in text
    page = html.unescape(render_html(flows, RULES))
    assert page.count(said) == 2                    # (the finding's table and the flow table)
    assert "the agent reached" not in page


def test_with_ksc_traffic_the_details_keep_the_agent(tmp_path):
    recs = []
    _dns(recs)
    c = Conv(recs, 54000, T0 + 1)
    c.tls(_cert())
    c.s2c("PA", ANSWER)
    recs_b = []
    b = Conv(recs_b, 55000, T0 + 5, port=443)
    b.c2s("S", dt=0)
    b.s2c("SA")
    b.c2s("A")
    b.c2s("PA", client_hello("www.example.com"))
    b.s2c("PA", server_flight(_cert()))
    b.c2s("FA")
    b.s2c("FA")
    flows, _ = whole(write(tmp_path, sorted(recs + recs_b, key=lambda r: r[0])))
    text = " ".join(x.strip() for x in render_table(flows, RULES, width=400).splitlines())
    assert not text.startswith("No KSC agent traffic")
    assert "the agent reached another server than the one it asked for" in text


def test_client_details_leave_the_packets_names_and_quotes():
    flows = pd.DataFrame({
        "detail": ['The agent sent "GET /the agent HTTP/1.1" to x.the agent.example; the agent\'s TLS: the agents',
                   "nothing of it", "", "the agentless"],
        "server_name": ["x.the agent.example", "", "", ""]})
    assert client_details(flows) == [
        'The client sent "GET /the agent HTTP/1.1" to x.the agent.example; the client\'s TLS: the agents',
        "nothing of it", "", "the agentless"]
    assert client_details(flows.drop(columns="detail")) == ["", "", "", ""]


def test_the_headline_report_mirrors_the_reference(tmp_path):
    from test_report_fast import assert_same_report
    flows, _ = whole(_browser(tmp_path))
    assert_same_report(flows)


UNKNOWN_CA = b"\x15\x03\x03\x00\x02\x02\x30"       # (a client's fatal alert: unknown_ca)


def _intercepted(tmp_path, certs, name="i.pcap"):
    """One TLS connection to 23101 per ``(der, refused)`` of ``certs``: the client refuses the
    certificate (unknown_ca, then a reset) or completes the handshake and sends a request."""
    recs = []
    _dns(recs)
    for i, (der, refused) in enumerate(certs):
        c = Conv(recs, 54000 + i, T0 + 1 + 10 * i)
        if refused:
            c.c2s("S", dt=0)
            c.s2c("SA")
            c.c2s("A")
            c.c2s("PA", client_hello(NAME))
            c.s2c("PA", server_flight(der))
            c.c2s("PA", UNKNOWN_CA)
            c.c2s("RA")
        else:
            c.tls(der)
            c.s2c("PA", ANSWER)
            c.c2s("FA")
            c.s2c("FA")
            c.c2s("A")
    return write(tmp_path, sorted(recs, key=lambda r: r[0]), name)


FORTI = dict(issuer_cn="FortiGate CA", issuer_o="Fortinet", sans=(NAME,))
PRIVATE = dict(issuer_cn="Corp Root", issuer_o="Example Corp", sans=(NAME,))
ELSEWHERE = dict(issuer_cn="Corp Root", issuer_o="Example Corp", sans=("proxy.corp.example",))


def test_the_cause_of_each_kind_of_detail():
    assert intercepted_cause(["certificate for eu1.ksc.kaspersky.com issued by O=Fortinet,CN=FortiGate CA: a "
                              "Fortinet FortiGate re-signs the connection (TLS inspection)"]) == "product"
    assert intercepted_cause(["certificate for proxy.corp.example presented for eu1.ksc.kaspersky.com, issued by "
                              "CN=Corp CA: from a TLS-inspecting proxy or firewall (as its CA's name says) (TLS "
                              "inspection)"]) == "product_name"
    assert intercepted_cause(["certificate for proxy.corp.example presented for eu1.ksc.kaspersky.com"]) == "name"
    assert intercepted_cause(["the client rejected the server's certificate (unknown_ca (48)) for "
                              "eu1.ksc.kaspersky.com issued by CN=Corp Root: a TLS-inspecting proxy whose CA the "
                              "client does not trust?"]) == "untrusted"
    assert intercepted_cause(["certificate for a presented for b", "the client rejected the server's certificate"]) == ""
    assert intercepted_cause([]) == "" and intercepted_cause(["something else"]) == ""
    assert intercepted_text("") == intercepted_text("nonsense") == REASON_TEXT["tls_intercepted"]
    assert intercepted_text("untrusted") == (
        "the client rejected the server certificate, issued by a CA that is no public one: a TLS-inspecting proxy "
        "sits in the path; exclude these names from inspection")


@pytest.mark.parametrize("cert, refused, cause", [(FORTI, True, "product"), (PRIVATE, True, "untrusted"),
                                                  (ELSEWHERE, False, "name")])
def test_the_advice_names_the_cause_seen(tmp_path, cert, refused, cause):
    flows, _ = whole(_intercepted(tmp_path, [(_cert(**cert), refused)]))
    agent = flows[flows.purpose == "agent_connection"]
    assert agent.reason.tolist() == ["tls_intercepted"]
    assert agent.verdict.tolist() == ["blocked" if refused else "unexpected"]
    fix = readiness(flows, RULES).set_index("rule").loc["agent_connection", "fix"]
    said = f"tls_intercepted: {INTERCEPT_CAUSES[cause]}: a TLS-inspecting proxy sits in the path; exclude these names"
    assert said in fix
    assert REASON_TEXT["tls_intercepted"] not in fix
    summary = TableSummary()
    summary.add(flows)
    assert summary.readiness(RULES).set_index("rule").loc["agent_connection", "fix"] == fix
    page = html.unescape(render_html(flows, RULES))
    assert f"tls_intercepted: {intercepted_text(cause)}" in page      # (Why flagged)


def test_several_causes_keep_the_list(tmp_path):
    flows, _ = whole(_intercepted(tmp_path, [(_cert(**FORTI), True), (_cert(**PRIVATE), True)]))
    fix = readiness(flows, RULES).set_index("rule").loc["agent_connection", "fix"]
    assert f"tls_intercepted: {REASON_TEXT['tls_intercepted']}" in fix
    summary = TableSummary()
    for part in chunked(_intercepted(tmp_path, [(_cert(**FORTI), True), (_cert(**PRIVATE), True)], "j.pcap"),
                        300)[0].groupby("uid", sort=False):
        summary.add(part[1])       # (one flow a batch: the causes gathered across batches)
    assert summary.readiness(RULES).set_index("rule").loc["agent_connection", "fix"] == fix


def test_a_forged_http_host_is_said_as_one(tmp_path):
    recs = []
    c = Conv(recs, 56002, T0, port=80)
    c.c2s("S", dt=0)
    c.s2c("SA")
    c.c2s("A")
    c.c2s("PA", b'GET / HTTP/1.1\r\nHost: <b>x.digicert.com\r\n\r\n')
    c.s2c("PA", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    flows, _ = whole(write(tmp_path, recs))
    web = flows[flows.purpose == "cert_check"]
    assert web.detail.tolist() == ["<b>x.digicert.com is not a host name (an HTTP Host name holding characters no "
                                   "host name has: forged or damaged)"]
