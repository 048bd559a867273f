"""A distribution point's own certificate (break-it s55 dp #1, #3). The agent compares the
certificate of its distribution point or on-premises Administration Server (TCP 13000…) with the one
it keeps, not by name: that certificate names the server's own host (KSC-DP01), issued by Kaspersky
Security Center. A working connection to it by a DNS name or SNI was unexpected/tls_intercepted ("a
TLS-inspecting proxy sits in the path"), and the agent refusing it was advised as TLS inspection.
Now the name is not compared there, and a refusal is told as not the certificate the agent keeps;
an inspection product's certificate is still interception."""
from __future__ import annotations

import datetime

import pytest

pytest.importorskip("scapy")

from chunkcmp import write  # noqa: E402
from kscc_traffic import load_rules  # noqa: E402
from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.classify import PINNED_REFUSED, PINNED_SILENT  # noqa: E402
from kscc_traffic.report import readiness  # noqa: E402
from test_client_cert_s36 import HELLO12, UNKNOWN_CA, certificate, session  # noqa: E402
from test_tls_batch import client_hello, ext, msg, rec, server_hello, sni_ext  # noqa: E402

RULES = load_rules()
DP = "192.0.2.1"


def _issued(subject: str, issuer: str, issuer_o: str | None = None) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    attrs = ([x509.NameAttribute(NameOID.ORGANIZATION_NAME, issuer_o)] if issuer_o else []) + \
        [x509.NameAttribute(NameOID.COMMON_NAME, issuer)]
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name(attrs)).public_key(key.public_key()).serial_number(9)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=365)).sign(key, hashes.SHA256()))
    return cert.public_bytes(Encoding.DER)


KSC_CERT = _issued("KSC-DP01", "Kaspersky Security Center")
FORTI_CERT = _issued("KSC-DP01", "FortiGate CA", "Fortinet")


def _flight(der: bytes) -> bytes:
    return rec(22, server_hello([ext(0xFF01, b"\x00")], cipher=0xC02F) + certificate(der)
               + msg(12, bytes(300)) + msg(14, b""))


def _hello(name: str | None) -> bytes:
    exts = [ext(0xFF01, b"\x00")] + ([sni_ext([(0, name.encode())])] if name else [])
    return rec(22, client_hello(exts, ciphers=b"\xc0\x2f", legacy=0x0303), 0x0301)


def _done(name: str | None, der: bytes = KSC_CERT):
    return [(False, _hello(name)), (True, _flight(der)),
            (False, rec(22, msg(16, b"\x41" + bytes(65))) + rec(20, b"\x01") + rec(22, bytes(40))),
            (True, rec(20, b"\x01") + rec(22, bytes(40))), (False, rec(23, bytes(200))), (True, rec(23, bytes(300)))]


def _flows(tmp_path, exchange, name="c.pcap"):
    return analyze_file(str(write(tmp_path, session(exchange, server=(DP, 13000)), name=name)), RULES).flows


@pytest.mark.parametrize("name", ["dp01.corp.example", None])
def test_a_working_connection_to_the_dp_by_name_is_ok(tmp_path, name):
    (row,) = _flows(tmp_path, _done(name)).to_dict("records")
    assert (row["purpose"], row["verdict"], row["reason"]) == ("dp_agent_connection", "ok", "")


def test_the_dp_certificate_refused_is_not_the_one_kept(tmp_path):
    flows = _flows(tmp_path, [(False, _hello("dp01.corp.example")), (True, _flight(KSC_CERT)), (False, UNKNOWN_CA)])
    (row,) = flows.to_dict("records")
    assert (row["verdict"], row["reason"]) == ("blocked", "tls_failed")
    assert row["detail"] == ("the client rejected the server's certificate (unknown_ca (48)) for KSC-DP01 issued by "
                             f"CN=Kaspersky Security Center: {PINNED_REFUSED}")
    fix = readiness(flows, RULES).set_index("purpose").loc["dp_agent_connection"].fix
    assert "as not the one it keeps for its Administration Server" in fix and "klmover" in fix
    assert "a proxy, TLS inspection or an application-aware firewall in the path" not in fix
    assert "if a TLS-inspecting device sits between the agent and the distribution point" in fix


def test_a_silent_refusal_of_the_dp_certificate(tmp_path):
    # (the client closes right after the server's flight, no alert)
    recs = session([(False, _hello(None)), (True, _flight(KSC_CERT))], server=(DP, 13000), closer_server=False)
    flows = analyze_file(str(write(tmp_path, recs)), RULES).flows
    (row,) = flows.to_dict("records")
    assert (row["verdict"], row["reason"]) == ("blocked", "tls_failed")
    assert row["detail"].endswith(f"how an agent refuses a certificate it does not trust without saying so "
                                  f"({PINNED_SILENT})")
    fix = readiness(flows, RULES).set_index("purpose").loc["dp_agent_connection"].fix
    assert "as not the one it keeps for its Administration Server" in fix


def test_an_inspection_products_certificate_is_still_interception(tmp_path):
    flows = _flows(tmp_path, [(False, _hello("dp01.corp.example")), (True, _flight(FORTI_CERT)), (False, UNKNOWN_CA)])
    (row,) = flows.to_dict("records")
    assert (row["verdict"], row["reason"]) == ("blocked", "tls_intercepted")
    assert "FortiGate" in row["detail"]
    (row,) = _flows(tmp_path, _done("dp01.corp.example", FORTI_CERT), "b.pcap").to_dict("records")
    assert (row["verdict"], row["reason"]) == ("unexpected", "tls_intercepted")


def test_the_cloud_still_compares_names(tmp_path):
    # (the cloud's certificate is a public CA's for its name: another name there is a proxy's)
    recs = session(_done("eu1.ksc.kaspersky.com"), server=("203.0.113.10", 23101))
    (row,) = analyze_file(str(write(tmp_path, recs)), RULES).flows.to_dict("records")
    assert (row["verdict"], row["reason"]) == ("unexpected", "tls_intercepted")


def test_tls13_dp_refusals_are_not_the_one_kept(tmp_path):
    # (review s55 #4: over TLS 1.3, the certificate hidden, the pinned wording never applied)
    from test_decode_more_encaps import client_hello as hello13
    from test_tls_stall import CCS, T0, _V13, _Conv, _record, _server_hello, _write
    sh13 = _record(22, _server_hello(exts=_V13, cipher=0x1301)) + CCS + _record(23, bytes(900))

    def conv(sport, alert):
        c = _Conv(T0, sport, 13000)
        c.send(T0 + .03, "c", hello13("dp01.corp.example"))
        c.send(T0 + .05, "s", sh13)
        c.send(T0 + .051, "c")
        if alert:
            c.send(T0 + .06, "c", b"\x15\x03\x03\x00\x02\x02\x30")
        c.recs.append((T0 + .07, c._pkt("c", "FA", c.seq["c"], c.seq["s"])))
        return c
    path = _write(tmp_path, [conv(50001, True), conv(50002, False)], 5, "d.pcap")
    flows = analyze_file(path, RULES).flows
    by = {r.orig_p: r for r in flows[flows.resp_p == 13000].itertuples()}
    assert by[50001].detail.startswith("the client rejected the server's certificate (unknown_ca (48)) (TLS 1.3 "
                                       f"encrypts the certificate): {PINNED_REFUSED}")
    assert by[50002].detail.endswith(f"({PINNED_SILENT})")
    fix = readiness(flows, RULES).set_index("purpose").loc["dp_agent_connection"].fix
    assert "as not the one it keeps for its Administration Server" in fix and "DigiCert" not in fix


def test_the_ksn_proxy_https_port_still_compares_names(tmp_path):
    # (fp s55 #2: 17111 is the KSN proxy's HTTPS for the security application, not documented to
    # pin the distribution point's certificate: a certificate for another name stays told)
    recs = session(_done("dp01.corp.example"), server=(DP, 17111))
    (row,) = analyze_file(str(write(tmp_path, recs)), RULES).flows.to_dict("records")
    assert (row["purpose"], row["verdict"], row["reason"]) == ("dp_ksn_proxy_https", "unexpected", "tls_intercepted")
