"""A TLS-inspecting proxy's CA named after the organisation that runs it, not after the product
(newcomer 35: "CN=Muster AG SSL Inspection Root,OU=IT Security,O=Muster AG,C=DE" re-signing
*.ksc.kaspersky.com, the handshake completed: judged ok/verified, no word of the inspection): a
CA whose CN, O or OU names it for inspection ("SSL Inspection", "TLS Decryption", "Forward Trust"…,
:data:`kscc_traffic.classify.INSPECTION_WORDS`) is an inspecting device's, as a product's CA is."""
from __future__ import annotations

import pytest

from kscc_traffic.classify import INSPECTING_DEVICE, inspection_product
from test_cert_san_cn import _issued_by
from test_tls_view_cut import SNI


@pytest.mark.parametrize("issuer, product", [
    ("CN=Muster AG SSL Inspection Root,OU=IT Security,O=Muster AG,C=DE", INSPECTING_DEVICE),
    ("CN=Example Corp TLS-Inspection CA", INSPECTING_DEVICE),
    ("CN=Forward-Trust-CA,O=Example Corp", INSPECTING_DEVICE),       # (Palo Alto's default name)
    ("CN=Example Forward_Trust ECDSA,O=Example Corp", INSPECTING_DEVICE),
    ("CN=Corp Root,OU=SSL Decryption,O=Example Corp", INSPECTING_DEVICE),
    ("CN=HTTPS Interception CA,O=Example", INSPECTING_DEVICE),
    # a product's CA is still named as its product
    ("CN=Fortinet SSL Inspection CA,O=Fortinet", "a Fortinet FortiGate"),
    # not an inspection CA's words: a company called Inspection, a DC or locality, a public CA
    ("CN=Inspection Services Ltd CA,O=Inspection Services Ltd", ""),
    ("CN=Example Corp CA,L=SSL Inspection", ""),
    ("CN=Example Corp CA,O=Example Corp,OU=SSLInspection", ""),
    ("CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1,O=DigiCert Inc", ""),
    ("CN=R10,O=Let's Encrypt,C=US", ""),
])
def test_a_ca_named_for_inspection(issuer, product):
    assert inspection_product(issuer) == product


def test_a_completed_handshake_through_an_organisations_inspection_ca_is_intercepted(tmp_path):
    r = _issued_by(tmp_path, SNI, "Muster AG", "Muster AG SSL Inspection Root")
    assert r["tls_established"] and r["cert_names"] == SNI
    assert (r["verdict"], r["reason"]) == ("unexpected", "tls_intercepted")
    assert r["detail"] == (f"certificate for {SNI} issued by CN=Muster AG SSL Inspection Root,O=Muster AG: "
                           "a TLS-inspecting proxy or firewall (as its CA's name says) re-signs the connection "
                           "(TLS inspection)")
