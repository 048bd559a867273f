"""Break-it 24 F1: a certificate for the name asked, issued by a public CA, that the agent
rejects (unknown_ca, bad_certificate, certificate_expired) is the agent's trust store or clock,
not a TLS-inspecting proxy: ``blocked``/``tls_failed``, the detail naming the issuer and the
root certificates to check. An unknown issuer, an inspection product's, or a certificate for
another name from an inspection product's CA stays ``tls_intercepted`` (for another name from a
public CA or an unknown one: another server answered, ``tls_failed``; break-it real s57 #4,
tests/test_breakit_s58_tls.py).

Real TLS 1.2 handshakes (Python's ssl in memory) in TCP sessions, as test_cert_san_cn."""
from __future__ import annotations

import ssl

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from test_protocols_tls import run_handshake
from test_tls_view_cut import SNI, _flights, _one, _session, _write

from kscc_traffic.classify import public_ca


def _rejected(tmp_path, org, cn, names=None):
    """The client (verifying, no CA loaded) rejects a certificate issued by ``O=org,CN=cn``."""
    issuer = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                        x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cs, ss, err = run_handshake(tmp_path, ssl.TLSVersion.TLSv1_2, SNI, names or [SNI], verify=True, issuer=issuer)
    assert err is not None
    c, s = _flights(cs), _flights(ss)
    parts = [("c", c[0])] + [("s", b"".join(s))] + [("c", b"".join(c[1:]))]
    return _one(_write(tmp_path / "alert.pcap", _session(parts)))


def test_a_public_cas_certificate_for_the_name_rejected_is_the_trust_store(tmp_path):
    r = _rejected(tmp_path, "DigiCert Inc", "DigiCert Global G2 TLS RSA SHA256 2020 CA1", ["*.ksc.kaspersky.com"])
    assert r["tls_alert"] == "client: unknown_ca (48)"
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed")
    issuer = "CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1,O=DigiCert Inc"
    assert r["detail"] == (
        f"the client rejected the server's own certificate (unknown_ca (48)) for *.ksc.kaspersky.com, issued by "
        f"{issuer} (a public CA, DigiCert, not a TLS-inspection product): the agent's device does not trust "
        "DigiCert's root: check its root certificates (DigiCert Global Root G2 among them) and its system time; "
        "the page documents TCP 80 to *.digicert.com for checking the validity of KSC certificates (CRL, OCSP): "
        "allow it too; the handshake was aborted and never completed: the agent cannot connect this way")


@pytest.mark.parametrize("org, cn, names, detail_start", [
    # an unknown private CA: a TLS-inspecting proxy's, maybe
    ("Example Corp", "Corp Issuing CA", None, "the client rejected the server's certificate (unknown_ca (48)) "
     f"for {SNI} issued by CN=Corp Issuing CA,O=Example Corp: a TLS-inspecting proxy whose CA the client does "
     "not trust?"),
    # a CA named for inspection (break-it real s57 #4: "Inspection CA" among INSPECTION_WORDS)
    ("Example Corp", "Corp Inspection CA", None, "the client rejected the server's certificate (unknown_ca (48)) "
     f"for {SNI} issued by CN=Corp Inspection CA,O=Example Corp: a TLS-inspecting proxy or firewall (as its CA's "
     "name says) re-signs"),
    # an inspection product's CA
    ("Fortinet", "FortiGate CA", None, "the client rejected the server's certificate (unknown_ca (48)) "
     f"for {SNI} issued by CN=FortiGate CA,O=Fortinet: a Fortinet FortiGate re-signs"),
    # a certificate for another name from an inspection product's CA: its own (a block page's)
    ("Zscaler Inc.", "Zscaler Root CA", ["proxy.corp.example"],
     f"certificate for proxy.corp.example presented for {SNI}, issued by CN=Zscaler Root CA,O=Zscaler Inc.: from "
     "Zscaler (TLS inspection)"),
])
def test_other_rejected_certificates_stay_intercepted(tmp_path, org, cn, names, detail_start):
    r = _rejected(tmp_path, org, cn, names)
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_intercepted")
    assert r["detail"].startswith(detail_start), r["detail"]


@pytest.mark.parametrize("issuer, ca", [
    ("CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1,O=DigiCert Inc", "DigiCert"),
    ("CN=R11,O=Let's Encrypt,C=US", "Let's Encrypt"),
    ("CN=GlobalSign GCC R6 AlphaSSL CA 2023,O=GlobalSign nv-sa,C=BE", "GlobalSign"),
    ("CN=Corp Inspection CA,O=Example Corp", ""),
    ("CN=DigiCertified Proxy,O=Example", ""),                                 # (inside a word)
    ("CN=Zscaler Intermediate Root CA,O=Zscaler Inc.,OU=DigiCert", ""),      # (an inspection product first)
    ("", ""),
])
def test_public_ca_markers(issuer, ca):
    assert public_ca(issuer) == ca
