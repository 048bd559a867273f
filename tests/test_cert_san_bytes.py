"""A subjectAltName dNSName whose bytes are not UTF-8 (breakit6): ``cryptography`` refuses the
whole extension, and the certificate's names used to fall back to its subject CN — the other
SAN names lost, and a certificate for another name whose CN is the name asked passing as the
right one. Each dNSName is now read on its own (an undecodable one as ``\\xff``-style text) and
the CN counts only when there is no dNSName at all (RFC 6125 §6.4.4).

The certificates are real (Python's ssl in a TLS 1.2 handshake, ``test_cert_san_cn``'s helpers);
the hostile bytes replace a placeholder name of the same length in the captured server bytes and
in the DER, as a server sending such a certificate would."""
from __future__ import annotations

import datetime
import ipaddress
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kscc_traffic.classify import PRIVATE_CA_MEANS
from kscc_traffic.protocols.tls import _der_dns_names, certificate_names
from test_cert_san_cn import _DNS, _IP
from test_protocols_tls import run_handshake
from test_tls_view_cut import SNI, _interleaved, _one, _session, _write

BAD = b"\xff\xfe\xc3(.example"          # not UTF-8
C1 = b"\x85nel\x9b[2J.example"          # C1 bytes, not UTF-8 either
KEY = ec.generate_private_key(ec.SECP256R1())


def _placeholder(raw: bytes, i: int = 0) -> str:
    return f"p{i}".ljust(len(raw), "q")


def _der(sans, cn="x") -> bytes:
    """A DER certificate with ``sans`` (GeneralNames; bytes items are dNSNames put in after
    signing, over a placeholder of the same length)."""
    general, swaps = [], []
    for i, s in enumerate(sans):
        if isinstance(s, bytes):
            ph = _placeholder(s, i)
            general.append(x509.DNSName(ph))
            swaps.append((ph.encode(), s))
        else:
            general.append(s)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    b = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(KEY.public_key())
         .serial_number(7).not_valid_before(datetime.datetime(2025, 1, 1))
         .not_valid_after(datetime.datetime(2030, 1, 1)))
    if general:
        b = b.add_extension(x509.SubjectAlternativeName(general), critical=False)
    der = b.sign(KEY, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    for ph, s in swaps:
        assert der.count(ph) == 1
        der = der.replace(ph, s)
    return der


@pytest.mark.parametrize("sans, cn, names", [
    ([BAD, b"b.example"], "x", ["\udcff\udcfe\udcc3(.example", "b.example"]),
    ([b"a.example", C1, b"b.example"], "x", ["a.example", "\udc85nel\udc9b[2J.example", "b.example"]),
    ([BAD], SNI, ["\udcff\udcfe\udcc3(.example"]),                    # the CN is not a name then
    ([_IP, BAD, x509.UniformResourceIdentifier("https://u.example/"), b"b.example"], "x",
     ["\udcff\udcfe\udcc3(.example", "b.example"]),
    ([_IP], SNI, [SNI]),                                              # no dNSName: the CN
    ([], SNI, [SNI]),
])
def test_each_dns_name_read_on_its_own(sans, cn, names):
    assert certificate_names(_der(sans, cn)) == names


def test_the_text_of_an_undecodable_name():
    from kscc_traffic.inspect import _cert_name_text
    names = certificate_names(_der([BAD, C1, b"b.example"]))
    assert [_cert_name_text(n) for n in names] == ["\\xff\\xfe\\xc3(.example", "\\x85nel\\x9b[2J.example", "b.example"]


@pytest.mark.parametrize("sans", [
    [_DNS("a.example"), _IP, _DNS("*.ksc.kaspersky.com"), x509.RFC822Name("m@example.com")],
    [_DNS("x" * 300 + ".example")] + [_DNS(f"n{i}.example") for i in range(40)],   # long lengths
    [_IP],
    [],
])
def test_der_reader_agrees_with_cryptography(sans):
    der = _der(sans)
    want = [s.value.encode() for s in sans if isinstance(s, x509.DNSName)]
    assert _der_dns_names(der) == want
    assert certificate_names(der) == ([w.decode() for w in want] or ["x"])


@pytest.mark.parametrize("der", [b"", b"\x30", b"\x30\x84\xff\xff\xff\xff", b"\x30\x03\x30\x81\xff", b"\xa3\x00"])
def test_der_reader_on_garbage(der):
    assert _der_dns_names(der) == []


def _flow(tmp_path, sans_raw: list[bytes], cn: str):
    """A TLS 1.2 handshake asking SNI whose certificate has the dNSNames ``sans_raw`` (bytes put
    in the captured server flight over same-length placeholders) and CN ``cn``."""
    phs = [_placeholder(s, i) for i, s in enumerate(sans_raw)]
    cs, ss, err = run_handshake(tmp_path, ssl.TLSVersion.TLSv1_2, SNI, ["unused.example"], cn=cn,
                                san=[x509.DNSName(p) for p in phs])
    assert err is None
    ss = bytes(ss)
    for ph, raw in zip(phs, sans_raw):
        assert ss.count(ph.encode()) == 1
        ss = ss.replace(ph.encode(), raw)
    r = _one(_write(tmp_path / "c.pcap", _session(_interleaved(cs, ss))))
    assert r["tls_established"] and r["sni"] == SNI
    return r


def test_mismatched_certificate_does_not_pass_on_its_cn(tmp_path):
    """SAN: an undecodable name and proxy.corp.example; CN: the name asked. Was: cert_names = the
    CN, verdict ok."""
    r = _flow(tmp_path, [BAD, b"proxy.corp.example"], SNI)
    assert r["cert_names"] == "\\xff\\xfe\\xc3(.example;proxy.corp.example"
    assert (r["verdict"], r["reason"]) == ("unexpected", "tls_intercepted")
    assert r["detail"].startswith("certificate for \\xff\\xfe\\xc3(.example"), r["detail"]
    assert r["detail"].endswith(f"presented for {SNI}"), r["detail"]


def test_matching_name_beside_an_undecodable_one_passes(tmp_path):
    """SAN: an undecodable name and *.ksc.kaspersky.com; CN: 'Corp Proxy'. Was: cert_names =
    'Corp Proxy', tls_intercepted."""
    r = _flow(tmp_path, [C1, b"*.ksc.kaspersky.com"], "Corp Proxy")
    assert r["cert_names"] == "\\x85nel\\x9b[2J.example;*.ksc.kaspersky.com"
    # (a self-signed "Corp Proxy" certificate for the name asked: a private CA's, said; s62)
    assert (r["verdict"], r["reason"]) == ("ok", "")
    assert r["detail"] == f"the server's certificate for {SNI} was issued by CN=Corp Proxy: {PRIVATE_CA_MEANS}"


def test_ip_address_san_still_leaves_the_cn(tmp_path):
    cs, ss, err = run_handshake(tmp_path, ssl.TLSVersion.TLSv1_2, SNI, ["unused.example"], cn=SNI,
                                san=[x509.IPAddress(ipaddress.ip_address("192.0.2.7"))])
    assert err is None
    r = _one(_write(tmp_path / "c.pcap", _session(_interleaved(cs, ss))))
    assert (r["cert_names"], r["verdict"]) == (SNI, "ok")
