"""TLS parsers on real handshakes (Python ssl over MemoryBIO pairs) and hand-built hellos."""
from __future__ import annotations

import datetime
import ipaddress
import ssl
import struct

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kscc_traffic.protocols import tls
from kscc_traffic.protocols.tls import (
    certificate_names,
    looks_like_tls,
    name_matches,
    parse_client_hello,
    parse_server_hello,
    summarize,
    under_mask,
)

# --------------------------------------------------------------------------- helpers


def make_cert(tmp_path, names, cn=None, san=None, issuer=None):
    """A self-signed certificate: subjectAltName dNSName ``names`` (``san``: these
    ``x509.GeneralName`` entries instead, or ``[]`` for no subjectAltName at all), subject CN
    ``cn`` (default ``names[0]``), issuer ``issuer`` (an ``x509.Name``; default the subject: still
    signed by its own key); returns (certificate, PEM path, key PEM path)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subj = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn or names[0])])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subj)
        .issuer_name(issuer or subj)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
    )
    entries = [x509.DNSName(n) for n in names] if san is None else san
    if entries:
        builder = builder.add_extension(x509.SubjectAlternativeName(entries), False)
    cert = builder.sign(key, hashes.SHA256())
    cp = tmp_path / "cert.pem"
    kp = tmp_path / "key.pem"
    cp.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    kp.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    return cert, str(cp), str(kp)


def run_handshake(tmp_path, version, sni, cert_names, *, verify=False, server_curve=None,
                  cn=None, client_version=None, san=None, issuer=None):
    """Client and server in memory; returns (client bytes, server bytes, error or None)."""
    cert, cp, kp = make_cert(tmp_path, cert_names, cn=cn, san=san, issuer=issuer)
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(cp, kp)
    sctx.minimum_version = sctx.maximum_version = version
    if server_curve:
        sctx.set_ecdh_curve(server_curve)
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.maximum_version = client_version or version
    if verify:
        cctx.check_hostname = True
        cctx.verify_mode = ssl.CERT_REQUIRED  # no CA loaded: the self-signed cert is rejected
    else:
        cctx.check_hostname = False
        cctx.verify_mode = ssl.CERT_NONE
    cin, cout, sin, sout = (ssl.MemoryBIO() for _ in range(4))
    client = cctx.wrap_bio(cin, cout, server_hostname=sni)
    server = sctx.wrap_bio(sin, sout, server_side=True)
    cs, ss = bytearray(), bytearray()
    cdone = sdone = False
    err = None
    for _ in range(20):
        if not cdone:
            try:
                client.do_handshake()
                cdone = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as e:
                err = e
        chunk = cout.read()
        cs += chunk
        sin.write(chunk)
        if err:
            break
        if not sdone:
            try:
                server.do_handshake()
                sdone = True
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as e:
                err = e
        chunk = sout.read()
        ss += chunk
        cin.write(chunk)
        if err or (cdone and sdone):
            break
    if cdone and sdone:
        client.write(b"ping")
        chunk = cout.read()
        cs += chunk
        sin.write(chunk)
        assert server.read() == b"ping"
        server.write(b"pong")
        chunk = sout.read()
        ss += chunk
        cin.write(chunk)
        assert client.read() == b"pong"
    return bytes(cs), bytes(ss), err


def record(ct, body, version=0x0301):
    return struct.pack("!BHH", ct, version, len(body)) + body


def ext(etype, body):
    return struct.pack("!HH", etype, len(body)) + body


def u16list(values):
    b = b"".join(struct.pack("!H", v) for v in values)
    return struct.pack("!H", len(b)) + b


def sni_ext(names):
    entries = b"".join(struct.pack("!BH", t, len(n)) + n for t, n in names)
    return ext(0, struct.pack("!H", len(entries)) + entries)


def build_client_hello(extensions, ciphers=(0x1301, 0x1302)):
    """Handshake message (type 1 + 3-byte length + body) from raw extension bytes."""
    body = (b"\x03\x03" + bytes(range(32)) + b"\x20" + b"\x11" * 32 + u16list(ciphers)
            + b"\x01\x00")
    exts = b"".join(extensions)
    body += struct.pack("!H", len(exts)) + exts
    return b"\x01" + len(body).to_bytes(3, "big") + body


def pq_client_hello(sni=b"ksc.example.com", *, ech=False, extra_names=()):
    """A Chrome-like hello: GREASE everywhere, X25519MLKEM768 (0x11ec) 1216-byte key share."""
    grease_ext = ext(0x3A3A, b"")
    key_share = (struct.pack("!HH", 0x2A2A, 1) + b"\x00"
                 + struct.pack("!HH", 0x11EC, 1216) + b"\xab" * 1216
                 + struct.pack("!HH", 0x001D, 32) + b"\xcd" * 32)
    alpn_list = b"\x02\x5a\x5a" + b"\x02h2" + b"\x08http/1.1"  # "ZZ" = GREASE ALPN 0x5a5a
    sv = b"\x06" + struct.pack("!HHH", 0x7A7A, 0x0304, 0x0303)
    exts = [
        grease_ext,
        sni_ext([(1, b"not-a-host"), (0, sni), *extra_names]),
        ext(10, u16list([0x9A9A, 0x11EC, 0x001D, 0x0017])),
        ext(16, struct.pack("!H", len(alpn_list)) + alpn_list),
        ext(43, sv),
        ext(51, struct.pack("!H", len(key_share)) + key_share),
    ]
    if ech:
        exts.append(ext(0xFE0D, b"\x00" + b"\x00\x01\x00\x01" + b"\x07" + b"\x20\x00"
                        + b"\x00" * 32 + struct.pack("!H", 200) + b"\xee" * 200))
    exts.append(ext(0xDADA, b"\x00"))
    return build_client_hello(exts, ciphers=(0x4A4A, 0x1301, 0x1302, 0x1303, 0xC02B))


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tls13(tmp_path_factory):
    return run_handshake(tmp_path_factory.mktemp("t13"), ssl.TLSVersion.TLSv1_3,
                         "ksc.example.com", ["ksc.example.com", "*.ksc.example.com"])


@pytest.fixture(scope="module")
def tls12(tmp_path_factory):
    return run_handshake(tmp_path_factory.mktemp("t12"), ssl.TLSVersion.TLSv1_2,
                         "ksc.example.com", ["ksc.example.com", "*.ksc.example.com"])


# --------------------------------------------------------------------------- real handshakes


def test_tls13_handshake(tls13):
    cs, ss, err = tls13
    assert err is None
    assert looks_like_tls(cs) and looks_like_tls(ss)
    ch = parse_client_hello(cs)
    assert ch is not None and ch.complete
    assert ch.sni == "ksc.example.com"
    assert tls.TLS1_3 in ch.supported_versions and ch.max_version == tls.TLS1_3
    sh = parse_server_hello(ss)
    assert sh is not None and sh.version == tls.TLS1_3 and not sh.hello_retry
    assert sh.cipher in (0x1301, 0x1302, 0x1303)
    sm = summarize(cs, ss)
    assert sm.client_hello is not None and sm.client_hello.sni == "ksc.example.com"
    assert sm.server_hello and sm.version == tls.TLS1_3
    assert sm.established
    assert sm.client_app_data and sm.server_app_data
    assert sm.client_alert is None and sm.server_alert is None
    assert sm.certificates == []  # encrypted in TLS 1.3


def test_tls12_handshake_and_certificate(tls12):
    cs, ss, err = tls12
    assert err is None
    sm = summarize(cs, ss)
    assert sm.client_hello.sni == "ksc.example.com"
    assert sm.version == tls.TLS1_2
    assert sm.client_ccs and sm.server_ccs
    assert sm.established
    assert len(sm.certificates) == 1
    names = certificate_names(sm.certificates[0])
    assert names == ["ksc.example.com", "*.ksc.example.com"]
    assert any(name_matches(sm.client_hello.sni, n) for n in names)
    assert any(name_matches("a.ksc.example.com", n) for n in names)


def test_tls12_cut_stream_keeps_prefix_facts(tls12):
    cs, ss, _ = tls12
    off = ccs_end = 0
    while off < len(ss):
        ln = int.from_bytes(ss[off + 3:off + 5], "big")
        if ss[off] == 20:
            ccs_end = off + 5 + ln
        off += 5 + ln
    assert ccs_end
    for cut in range(0, len(ss) + 1, 7):
        assert summarize(cs, ss[:cut]).established == (cut >= ccs_end)
    # a server stream cut inside the Certificate message still gives the version
    sm = summarize(cs, ss[:150])
    assert sm.server_hello and sm.version == tls.TLS1_2 and not sm.established


def test_certificate_for_another_name(tmp_path):
    cs, ss, err = run_handshake(tmp_path, ssl.TLSVersion.TLSv1_2, "ksc.example.com",
                                ["other.example.net"], cn="Other CN")
    assert err is None
    sm = summarize(cs, ss)
    names = certificate_names(sm.certificates[0])
    assert names == ["other.example.net"]    # (a subjectAltName dNSName: the CN is not a name)
    assert not any(name_matches(sm.client_hello.sni, n) for n in names)


_IP = x509.IPAddress(ipaddress.ip_address("203.0.113.10"))


@pytest.mark.parametrize("san, cn, names", [
    # RFC 6125 §6.4.4: with a subjectAltName dNSName the CN is not one of the certificate's names
    ([x509.DNSName("other.example.net")], "eu1.ksc.kaspersky.com", ["other.example.net"]),
    ([x509.DNSName("*.ksc.kaspersky.com")], "Other CN", ["*.ksc.kaspersky.com"]),
    ([x509.DNSName("a.example"), x509.DNSName("b.example")], "b.example", ["a.example", "b.example"]),
    ([_IP, x509.DNSName("other.example.net")], "eu1.ksc.kaspersky.com", ["other.example.net"]),
    # without one, the CN is (a legacy certificate)
    ([], "eu1.ksc.kaspersky.com", ["eu1.ksc.kaspersky.com"]),
    ([_IP], "eu1.ksc.kaspersky.com", ["eu1.ksc.kaspersky.com"]),
    ([x509.UniformResourceIdentifier("https://x.example/")], "eu1.ksc.kaspersky.com", ["eu1.ksc.kaspersky.com"]),
])
def test_certificate_names_leave_the_cn_out_when_a_dns_name_is_there(tmp_path, san, cn, names):
    cert, _, _ = make_cert(tmp_path, ["unused.example"], cn=cn, san=san)
    assert certificate_names(cert.public_bytes(serialization.Encoding.DER)) == names


def test_client_rejects_certificate_tls12(tmp_path):
    cs, ss, err = run_handshake(tmp_path, ssl.TLSVersion.TLSv1_2, "ksc.example.com",
                                ["ksc.example.com"], verify=True)
    assert isinstance(err, ssl.SSLCertVerificationError)
    sm = summarize(cs, ss)
    assert sm.client_alert == (2, 48)  # fatal unknown_ca
    assert sm.server_alert is None
    assert not sm.established and not sm.client_ccs
    assert sm.certificates and certificate_names(sm.certificates[0]) == ["ksc.example.com"]


def test_client_rejects_certificate_tls13(tmp_path):
    cs, ss, err = run_handshake(tmp_path, ssl.TLSVersion.TLSv1_3, "ksc.example.com",
                                ["ksc.example.com"], verify=True)
    assert isinstance(err, ssl.SSLCertVerificationError)
    sm = summarize(cs, ss)
    # OpenSSL sends this alert before its own handshake keys are in use: cleartext
    assert sm.client_alert == (2, 48)
    assert sm.version == tls.TLS1_3 and sm.server_hello
    assert not sm.established and not sm.client_app_data


def test_server_rejects_old_version(tmp_path):
    cs, ss, err = run_handshake(tmp_path, ssl.TLSVersion.TLSv1_3, "ksc.example.com",
                                ["ksc.example.com"], client_version=ssl.TLSVersion.TLSv1_2)
    assert err is not None
    sm = summarize(cs, ss)
    assert sm.client_hello.sni == "ksc.example.com"
    assert sm.client_hello.supported_versions == []  # a TLS 1.2-only client omits extension 43
    assert sm.server_alert == (2, 70)  # fatal protocol_version
    assert not sm.server_hello and sm.version is None and not sm.established


def test_tls13_encrypted_alert_heuristic(tls13):
    cs, ss, _ = tls13
    ch_len = 5 + int.from_bytes(cs[3:5], "big")
    aborted = cs[:ch_len] + record(20, b"\x01", 0x0303) + record(23, b"\x99" * 19, 0x0303)
    sm = summarize(aborted, ss)
    assert sm.client_encrypted_alert and not sm.established and sm.client_alert is None


def test_hello_retry_request(tmp_path):
    # the client's only key share is x25519; a server limited to P-384 answers with an HRR
    cs, ss, err = run_handshake(tmp_path, ssl.TLSVersion.TLSv1_3, "hrr.example.com",
                                ["hrr.example.com"], server_curve="secp384r1")
    assert err is None
    sh = parse_server_hello(ss)
    assert sh.hello_retry and sh.version == tls.TLS1_3
    sm = summarize(cs, ss)
    assert sm.hello_retry and sm.server_hello and sm.version == tls.TLS1_3
    assert sm.client_hello.sni == "hrr.example.com"
    assert sm.established


# --------------------------------------------------------------------------- fragmentation


def test_client_hello_split_over_records_and_segments(tls13):
    cs, _, _ = tls13
    msg = cs[5:5 + int.from_bytes(cs[3:5], "big")]
    assert msg[0] == 1
    stream = record(22, msg[:60]) + record(22, msg[60:300]) + record(22, msg[300:])
    ch = parse_client_hello(stream)
    assert ch.complete and ch.sni == "ksc.example.com"
    sni_seen_at = None
    for cut in range(len(stream) + 1):
        part = parse_client_hello(stream[:cut])
        if part is None:
            continue
        assert part.complete == (cut == len(stream))
        if part.sni is not None and sni_seen_at is None:
            sni_seen_at = cut
            assert part.sni == "ksc.example.com"
    assert sni_seen_at is not None and sni_seen_at < len(stream)


def test_pq_grease_client_hello_split():
    msg = pq_client_hello()
    assert 1300 < len(msg) < 2000
    stream = record(22, msg[:700]) + record(22, msg[700:])
    ch = parse_client_hello(stream)
    assert ch.complete
    assert ch.sni == "ksc.example.com"  # host_name entry, not the type-1 one before it
    assert ch.supported_versions == [0x0304, 0x0303]
    assert ch.alpn == ["h2", "http/1.1"]
    assert ch.key_share_groups == [0x11EC, 0x001D]
    assert ch.supported_groups == [0x11EC, 0x001D, 0x0017]
    assert ch.cipher_suites == [0x1301, 0x1302, 0x1303, 0xC02B]
    assert not any(tls.is_grease(e) for e in ch.extensions)
    assert not ch.ech
    # fed in TCP-segment-sized pieces the caller concatenates
    acc = b""
    for i in range(0, len(stream), 536):
        acc += stream[i:i + 536]
        part = parse_client_hello(acc)
        assert part is not None
    assert part.complete and part.sni == "ksc.example.com"


def test_ech_reports_outer_sni():
    msg = pq_client_hello(sni=b"public.example.com", ech=True)
    ch = parse_client_hello(record(22, msg))
    assert ch.ech and ch.sni == "public.example.com"


def test_sni_untrusted_bytes_are_escaped():
    msg = build_client_hello([sni_ext([(0, b"bad\xff\x00name\\x")])])
    ch = parse_client_hello(record(22, msg))
    assert ch.sni == "bad\\xff\\x00name\\\\x"


def test_sslv2_client_hello():
    specs = b"\x01\x00\x80" + b"\x00\x00\x2f"
    body = b"\x01\x03\x01" + struct.pack("!HHH", len(specs), 0, 16) + specs + b"\x42" * 16
    data = bytes([0x80 | (len(body) >> 8), len(body) & 0xFF]) + body
    assert looks_like_tls(data)
    ch = parse_client_hello(data)
    assert ch.sslv2 and ch.complete and ch.sni is None and ch.legacy_version == 0x0301
    assert ch.cipher_suites == [0x002F]


def test_sslv2_hello_then_tls_records_is_established(tls12):
    """An old client's SSLv2-compatible hello, then its TLS 1.2 records (ClientKeyExchange, CCS,
    Finished, data): the records after the hello are read, so the handshake is established."""
    cs, ss, err = tls12
    assert err is None
    specs = b"\x00\xc0\x2f" + b"\x00\x00\x2f"
    body = b"\x01\x03\x03" + struct.pack("!HHH", len(specs), 0, 16) + specs + b"\x42" * 16
    v2 = bytes([0x80 | (len(body) >> 8), len(body) & 0xFF]) + body
    first = 5 + int.from_bytes(cs[3:5], "big")   # the real ClientHello record, replaced
    sm = summarize(v2 + cs[first:], ss)
    assert sm.client_hello.sslv2 and sm.client_ccs and sm.established
    assert not summarize(v2, ss).established      # (the hello alone: not established)


def test_looks_like_tls_rejects_other_protocols():
    assert not looks_like_tls(b"GET / HTTP/1.1\r\n")
    assert not looks_like_tls(b"SSH-2.0-OpenSSH_9.6\r\n")
    assert not looks_like_tls(b"\x16\x03\x01")  # too short to judge
    assert not looks_like_tls(b"\x16\x03\x01\xff\xff")  # absurd length
    assert looks_like_tls(b"\x17\x03\x03\x00\x20")
    assert parse_client_hello(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") is None
    assert summarize(b"", b"").established is False


# --------------------------------------------------------------------------- names


def test_certificate_names_garbage():
    assert certificate_names(b"") == []
    assert certificate_names(b"\x30\x82\x01\x00" + b"\x00" * 10) == []


@pytest.mark.parametrize("name,pattern,ok", [
    ("a.ksc.kaspersky.com", "*.ksc.kaspersky.com", True),
    ("A.KSC.Kaspersky.COM.", "*.ksc.kaspersky.com", True),
    ("ksc.kaspersky.com", "*.ksc.kaspersky.com", False),
    ("myksc.kaspersky.com", "*.ksc.kaspersky.com", False),
    ("a.b.ksc.kaspersky.com", "*.ksc.kaspersky.com", False),
    ("ksc.kaspersky.com", "ksc.kaspersky.com.", True),
    ("ksc.kaspersky.com.evil.com", "*.ksc.kaspersky.com", False),
    ("example.com", "*.com", False),
    ("foo.example.com", "f*.example.com", False),
    ("a.example.com", "a.*.com", False),
    ("", "*.example.com", False),
    (".example.com", "*.example.com", False),
])
def test_name_matches(name, pattern, ok):
    assert name_matches(name, pattern) is ok


@pytest.mark.parametrize("name,mask,ok", [
    ("a.ksc.kaspersky.com", "*.ksc.kaspersky.com", True),
    ("a.b.ksc.kaspersky.com", "*.ksc.kaspersky.com", True),
    ("A.B.KSC.kaspersky.com.", "*.ksc.kaspersky.com", True),
    ("ksc.kaspersky.com", "*.ksc.kaspersky.com", False),
    ("myksc.kaspersky.com", "*.ksc.kaspersky.com", False),
    ("ksc.kaspersky.com.evil.com", "*.ksc.kaspersky.com", False),
    ("x.ksc.kaspersky.com", ".ksc.kaspersky.com", True),
    ("ksc.kaspersky.com", "ksc.kaspersky.com", True),
    ("a.ksc.kaspersky.com", "ksc.kaspersky.com", False),
    ("a..ksc.kaspersky.com", "*.ksc.kaspersky.com", False),
    ("a.ksc.kaspersky.com", "*ksc.kaspersky.com", False),
])
def test_under_mask(name, mask, ok):
    assert under_mask(name, mask) is ok


# --------------------------------------------------------------------------- robustness


def _check_all(data: bytes) -> None:
    looks_like_tls(data)
    ch = parse_client_hello(data)
    assert ch is None or isinstance(ch.sni, (str, type(None)))
    parse_server_hello(data)
    summarize(data, data)
    certificate_names(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_random_bytes_never_raise(data):
    _check_all(data)
    _check_all(b"\x16\x03\x01" + data)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mutated_hello_never_raises(d):
    base = bytearray(record(22, pq_client_hello(ech=True)))
    for _ in range(d.draw(st.integers(0, 8))):
        i = d.draw(st.integers(0, len(base) - 1))
        base[i] = d.draw(st.integers(0, 255))
    cut = d.draw(st.integers(0, len(base)))
    _check_all(bytes(base[:cut]))
    name_matches(d.draw(st.text(max_size=30)), d.draw(st.text(max_size=30)))
    under_mask(d.draw(st.text(max_size=30)), d.draw(st.text(max_size=30)))


def test_a_serverhello_cut_before_its_supported_versions_has_no_version():
    """A TLS 1.3 ServerHello says 0x0303 until its supported_versions extension (RFC 8446
    §4.1.3): cut by the snaplen before that extension, the version is unknown, not "TLS 1.2";
    cut after it, TLS 1.3."""
    import struct as st
    key_share = st.pack("!HH", 51, 36) + st.pack("!HH", 29, 32) + bytes(32)
    sv = st.pack("!HHH", 43, 2, 0x0304)
    exts = key_share + sv
    body = b"\x03\x03" + bytes(32) + b"\x00" + st.pack("!HB", 0x1301, 0) + st.pack("!H", len(exts)) + exts
    hs = b"\x02" + len(body).to_bytes(3, "big") + body
    record = b"\x16\x03\x03" + st.pack("!H", len(hs)) + hs
    assert tls.summarize(b"", record).version == tls.TLS1_3
    assert tls.summarize(b"", record[:-1]).version is None          # (its last extension cut)
    assert tls.summarize(b"", record[:50]).version is None
    legacy12 = b"\x03\x03" + bytes(32) + b"\x00" + st.pack("!HB", 0xC02F, 0) + st.pack("!H", 4) + st.pack("!HH", 0xFF01, 0)
    hs12 = b"\x02" + len(legacy12).to_bytes(3, "big") + legacy12
    rec12 = b"\x16\x03\x03" + st.pack("!H", len(hs12)) + hs12
    assert tls.summarize(b"", rec12).version == tls.TLS1_2           # (whole: no extension, TLS 1.2)
