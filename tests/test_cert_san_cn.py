"""The server certificate's names (``cert_names``) are compared with the name asked as a TLS
client does (RFC 6125 §6.4.4): when the certificate has a subjectAltName dNSName, its subject CN
is not one of its names. A certificate for another name whose CN happens to be the name asked
(what a careless TLS-inspecting proxy mints) is ``tls_intercepted``; a certificate without a
dNSName is still matched on its CN.

Real TLS 1.2 handshakes (Python's ssl in memory, ``test_protocols_tls.run_handshake``) to an agent
port, in TCP sessions (``test_tls_view_cut``)."""
from __future__ import annotations

import ipaddress
import ssl

import pytest
from cryptography import x509

from kscc_traffic.classify import PRIVATE_CA_MEANS
from test_protocols_tls import run_handshake
from test_tls_view_cut import SNI, _interleaved, _one, _session, _write

_DNS = x509.DNSName
_IP = x509.IPAddress(ipaddress.ip_address("203.0.113.10"))


def _flow(tmp_path, sni, san, cn):
    cs, ss, err = run_handshake(tmp_path, ssl.TLSVersion.TLSv1_2, sni, ["unused.example"], cn=cn, san=san)
    assert err is None
    r = _one(_write(tmp_path / "c.pcap", _session(_interleaved(cs, ss))))
    assert r["tls_established"] and r["sni"] == (sni or "")
    return r


@pytest.mark.parametrize("san, cn, names, verdict, reason, detail", [
    # another name in the subjectAltName, the name asked only in the CN: not for that name
    ([_DNS("proxy.corp.example")], SNI, "proxy.corp.example", "unexpected", "tls_intercepted",
     f"certificate for proxy.corp.example presented for {SNI}"),
    ([_IP, _DNS("proxy.corp.example")], SNI, "proxy.corp.example", "unexpected", "tls_intercepted",
     f"certificate for proxy.corp.example presented for {SNI}"),
    # the name asked in the subjectAltName, another CN: for that name
    # (issued by "Corp Proxy", a private CA: said, the flow kept ok; break-it s62 #1)
    ([_DNS("*.ksc.kaspersky.com")], "Corp Proxy", "*.ksc.kaspersky.com", "ok", "",
     f"the server's certificate for {SNI} was issued by CN=Corp Proxy: {PRIVATE_CA_MEANS}"),
    # no dNSName: the CN is the certificate's name (self-signed, its issuer naming Kaspersky: no
    # private CA's remark)
    ([], SNI, SNI, "ok", "", ""),
    ([_IP], SNI, SNI, "ok", "", ""),
    ([], "proxy.corp.example", "proxy.corp.example", "unexpected", "tls_intercepted",
     f"certificate for proxy.corp.example presented for {SNI}"),
])
def test_cn_counts_only_without_a_dns_name(tmp_path, san, cn, names, verdict, reason, detail):
    r = _flow(tmp_path, SNI, san, cn)
    assert r["cert_names"] == names
    assert (r["verdict"], r["reason"], r["detail"]) == (verdict, reason, detail)


@pytest.mark.parametrize("san, cn, verdict, reason", [
    # no name asked: the certificate says who answered, from its subjectAltName names only
    ([_DNS("proxy.corp.example")], SNI, "unexpected", "host_mismatch"),
    ([_DNS("proxy.corp.example"), _DNS("*.ksc.kaspersky.com")], "Corp Proxy", "ok", ""),
    ([], SNI, "ok", ""),
])
def test_without_sni_the_cn_counts_only_without_a_dns_name(tmp_path, san, cn, verdict, reason):
    r = _flow(tmp_path, None, san, cn)
    assert (r["verdict"], r["reason"]) == (verdict, reason), r["detail"]


def test_without_sni_an_inspection_certificate_name_is_told_as_such(tmp_path):
    """A CN that is no host name ("Fortinet SSL Inspection"), no SNI, on TCP 23101: the
    certificate a TLS-inspection product issued names the proxy, not the server asked for
    (break-it s54 interception #2: it was host_mismatch, another program's traffic): judged as
    interception, the product named."""
    r = _flow(tmp_path, None, [], "Fortinet SSL Inspection")
    assert (r["verdict"], r["reason"]) == ("unexpected", "tls_intercepted")
    assert r["detail"] == ("certificate for Fortinet SSL Inspection issued by CN=Fortinet SSL Inspection: a "
                           "Fortinet FortiGate re-signs the connection (TLS inspection)")


def _issued_by(tmp_path, sni, org, cn):
    from cryptography.x509.oid import NameOID
    issuer = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                        x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cs, ss, err = run_handshake(tmp_path, ssl.TLSVersion.TLSv1_2, sni, [sni], issuer=issuer)
    assert err is None
    return _one(_write(tmp_path / "c.pcap", _session(_interleaved(cs, ss))))


@pytest.mark.parametrize("org, cn, product", [
    ("Fortinet", "FortiGate CA", "a Fortinet FortiGate"),
    ("Zscaler Inc.", "Zscaler Intermediate Root CA (zscaler.net)", "Zscaler"),
    ("Palo Alto Networks", "Forward-Trust-CA", "a Palo Alto Networks firewall"),
])
def test_an_inspection_products_certificate_with_the_right_name_is_intercepted(tmp_path, org, cn, product):
    """A TLS-inspecting firewall that keeps the server's names (FortiGate's certificate
    inspection) is known by its CA: the issuer is read and named."""
    r = _issued_by(tmp_path, SNI, org, cn)
    assert r["cert_names"] == SNI and r["tls_established"]
    assert r["cert_issuer"] == f"CN={cn},O={org}"
    assert (r["verdict"], r["reason"]) == ("unexpected", "tls_intercepted")
    assert r["detail"] == (f"certificate for {SNI} issued by CN={cn},O={org}: {product} re-signs the "
                           "connection (TLS inspection)")


def test_a_public_ca_or_an_unknown_private_one_is_not_judged(tmp_path):
    r = _issued_by(tmp_path, SNI, "DigiCert Inc", "DigiCert Global G2 TLS RSA SHA256 2020 CA1")
    assert r["cert_issuer"] == "CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1,O=DigiCert Inc"
    assert (r["verdict"], r["reason"]) == ("ok", "")
    (tmp_path / "b").mkdir()
    r = _issued_by(tmp_path / "b", SNI, "Corp\x1b[31m", "Corp CA")    # (untrusted text: escaped)
    assert r["cert_issuer"] == "CN=Corp CA,O=Corp\\1B[31m" and r["verdict"] == "ok"


def test_the_issuer_is_rfc4514_text_escaped_once(tmp_path):
    """Newcomer 19 F10: RFC 4514's own escapes are shown once (``Systems\\, Inc.``, a trailing
    space ``\\ ``), as ``openssl x509 -issuer -nameopt RFC2253`` prints them; controls, invisible
    characters and bytes that are not UTF-8 as ``\\XX`` per byte, so the text is safe as it is."""
    r = _issued_by(tmp_path, SNI, "Checkpoint Systems, Inc.", "Zscaler Intermediate Root CA (t) ")
    assert r["cert_issuer"] == "CN=Zscaler Intermediate Root CA (t)\\ ,O=Checkpoint Systems\\, Inc."
    assert (r["verdict"], r["reason"]) == ("unexpected", "tls_intercepted")
    (tmp_path / "b").mkdir()
    r = _issued_by(tmp_path / "b", SNI, "a\\b\u202e", "#CA")
    assert r["cert_issuer"] == "CN=\\#CA,O=a\\\\b\\E2\\80\\AE"


@pytest.mark.parametrize("issuer, product", [
    ("CN=FortiGate CA,OU=Certificate Authority,O=Fortinet,C=US", "a Fortinet FortiGate"),
    ("CN=Philosophos Issuing CA 1,O=Philosophos Verlag GmbH", ""),      # (inside a word)
    ("O=Checkpoint Systems\\\\, Inc.", ""),                              # (another company)
    ("DC=example,DC=kerio,CN=Example Corp CA", ""),                      # (not in CN, O or OU)
    ("CN=Zscaler Intermediate Root CA (zscaler.net) (t)\\\\ ,O=Zscaler Inc.", "Zscaler"),
    ("CN=DO_NOT_TRUST_FiddlerRoot,O=DO_NOT_TRUST,OU=Created by http://www.fiddler2.com", "Fiddler"),
    # (endpoint products filtering TLS on the device; newcomer 20 F10)
    ("CN=ESET SSL Filter CA,O=ESET spol. s r. o.,C=SK", "ESET's SSL/TLS filtering on the device"),
    ("CN=Avast Web/Mail Shield Root,O=Avast Web/Mail Shield,OU=generated by Avast Antivirus for SSL/TLS scanning",
     "Avast's Web Shield on the device"),
    ("CN=Bitdefender Personal CA.Net-Defender,OU=IDS,O=Bitdefender", "Bitdefender's encrypted web scan on the device"),
    ("CN=Kaspersky Anti-Virus Personal Root Certificate,O=AO Kaspersky Lab",
     "a Kaspersky endpoint product's encrypted connections scan on the device"),
    ("CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1,O=DigiCert Inc", ""),
    ("", ""),
])
def test_inspection_markers_are_whole_words_of_the_cn_o_or_ou(issuer, product):
    """(newcomer 19 F9)"""
    from kscc_traffic.classify import inspection_product
    assert inspection_product(issuer) == product


def test_issuer_and_names_of_certificates_cryptography_refuses():
    """(newcomer 19 F7, F8) FortiGate's CA is named Fortinet_CA_SSL in a PrintableString, where
    '_' is not allowed: ``cryptography`` refuses the certificate, a TLS client does not. The names
    and the issuer are read from the DER; a value that is not UTF-8 keeps its other bytes."""
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID
    from test_protocols_tls import make_cert
    from kscc_traffic.protocols import tls
    import tempfile
    from pathlib import Path
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fortinet-CA-SSL"),
                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Fortinet")])
    with tempfile.TemporaryDirectory() as d:
        cert, _, _ = make_cert(Path(d), [SNI], issuer=issuer)
    der = bytearray(cert.public_bytes(Encoding.DER))
    at = der.find(b"Fortinet-CA-SSL")
    assert der[at - 2] == 0x0C                      # UTF8String
    der[at - 2] = 0x13                              # PrintableString, with a '_' (not allowed)
    der[at:at + 15] = b"Fortinet_CA_SSL"
    with pytest.raises(Exception):
        x509.load_der_x509_certificate(bytes(der))
    assert tls.certificate_issuer(bytes(der)) == "O=Fortinet,CN=Fortinet_CA_SSL"   # (RFC 4514: last RDN first)
    assert tls.certificate_names(bytes(der)) == [SNI]
    from kscc_traffic.classify import inspection_product
    assert inspection_product(tls.certificate_issuer(bytes(der))) == "a Fortinet FortiGate"
    o = der.find(b"Fortinet", at + 15)
    der[o + 6:o + 8] = b"\xff\xfe"                  # two bytes that are not UTF-8
    assert tls.certificate_issuer(bytes(der)) == "O=Fortin\\FF\\FE,CN=Fortinet_CA_SSL"   # (RFC 4514 hex pairs)
    assert inspection_product(tls.certificate_issuer(bytes(der))) == "a Fortinet FortiGate"


@pytest.mark.parametrize("asn1_type, tag", [("BMPString", 0x1E), ("UniversalString", 0x1C), ("T61String", 0x14)])
def test_issuer_in_other_string_types_reads_as_openssl_prints_it(asn1_type, tag):
    # newcomer 20 F16: a T61String (Latin-1) or BMPString (UTF-16) issuer showed its raw bytes
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.name import _ASN1Type
    from cryptography.x509.oid import NameOID
    from test_protocols_tls import make_cert
    from kscc_traffic.classify import inspection_product
    from kscc_traffic.protocols import tls
    import tempfile
    from pathlib import Path
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "FortiGate CA"),
                        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Fortinet",
                                           _type=getattr(_ASN1Type, asn1_type))])
    with tempfile.TemporaryDirectory() as d:
        cert, _, _ = make_cert(Path(d), [SNI], issuer=issuer)
    der = bytearray(cert.public_bytes(Encoding.DER))
    codec = {0x1E: "utf-16-be", 0x1C: "utf-32-be", 0x14: "latin-1"}[tag]
    at = der.find("Fortinet".encode(codec))
    assert at > 0 and der[at - 2] == tag            # (the value really is of that type)
    text = tls.certificate_issuer(bytes(der))
    assert text == "O=Fortinet,CN=FortiGate CA"
    assert inspection_product(text) == "a Fortinet FortiGate"
    # a character outside ASCII, in the type's own encoding: é (U+00E9)
    der[at:at + len("Fortinet".encode(codec))] = "Fortinét".encode(codec)
    assert tls.certificate_issuer(bytes(der)) == "O=Fortinét,CN=FortiGate CA"


def test_issuer_keeps_every_attribute_as_openssl_prints_it():
    # newcomer 20 F18: emailAddress and unknown attribute types were left out (two CAs that differ
    # only there printed the same; an issuer of emailAddress alone printed '')
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID, ObjectIdentifier
    from test_protocols_tls import make_cert
    from kscc_traffic.classify import inspection_product
    from kscc_traffic.protocols import tls
    rdn = x509.RelativeDistinguishedName
    issuer = x509.Name([
        rdn([x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "corp")]),
        rdn([x509.NameAttribute(NameOID.COMMON_NAME, "Sophos SSL CA"),
             x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "IT")]),
        rdn([x509.NameAttribute(NameOID.EMAIL_ADDRESS, "ca@corp.example")]),
        rdn([x509.NameAttribute(ObjectIdentifier("1.2.3.4.5"), "weird,val")]),
        rdn([x509.NameAttribute(NameOID.SERIAL_NUMBER, "42")]),
    ])
    with tempfile.TemporaryDirectory() as d:
        cert, pem, _ = make_cert(Path(d), [SNI], issuer=issuer)
        text = tls.certificate_issuer(cert.public_bytes(Encoding.DER))
        want = ("serialNumber=42,1.2.3.4.5=#0C0977656972642C76616C,emailAddress=ca@corp.example,"
                "CN=Sophos SSL CA+OU=IT,DC=corp")
        assert text == want
        if shutil.which("openssl"):
            got = subprocess.run(["openssl", "x509", "-in", str(pem), "-noout", "-issuer", "-nameopt", "RFC2253"],
                                 capture_output=True, text=True, check=True).stdout.strip()
            assert got.removeprefix("issuer=").strip() == want
    assert inspection_product(text) == "a Sophos firewall"
    only_mail = x509.Name([x509.NameAttribute(NameOID.EMAIL_ADDRESS, "ca@corp.example")])
    with tempfile.TemporaryDirectory() as d:
        cert, _, _ = make_cert(Path(d), [SNI], issuer=only_mail)
    assert tls.certificate_issuer(cert.public_bytes(Encoding.DER)) == "emailAddress=ca@corp.example"
