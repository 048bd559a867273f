#!/usr/bin/env python3
"""Generate the sample captures in samples/captures/ and their labels.

    python samples/generate.py                    # (re)write samples/captures/
    python samples/generate.py --out DIR          # write somewhere else (tests do this)
    python samples/generate.py --update-expected  # also write samples/expected/<capture>.flows.csv:
                                                  # `kscc-traffic analyze <capture> --format csv`

Everything is made here, in memory, from fixed seeds: addresses from the documentation ranges
(RFC 5737 / RFC 3849 / RFC 7042), fixed timestamps, keys derived from fixed labels, TCP built with
scapy packet by packet. The TLS bytes are GENUINE: every TLS flow is a real handshake between two
Python ``ssl.SSLObject`` instances (client and server, over ``ssl.MemoryBIO``), and the bytes each side
wrote are cut into TCP segments. To make those byte-identical from run to run, OpenSSL's random
generator (in the libcrypto that the ``ssl`` module uses) is replaced, for the duration of the run, by
a SHA-256 counter stream seeded per flow (see ``DeterministicOpenSSLRand``); session tickets are
turned off because their contents depend on the clock. If that hook cannot be installed the captures
are still written, with the same structure and sizes, but the TLS record contents differ per run
(the generator prints a warning and MANIFEST.tsv says ``tls_deterministic no``).

Only the Python standard library, scapy and cryptography are used; no network access.
"""
from __future__ import annotations

import argparse
import base64
import ctypes
import ctypes.util
import datetime as _dt
import hashlib
import ipaddress
import json
import logging
import os
import re
import platform
import random
import ssl
import struct
import sys
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

logging.getLogger("scapy.runtime").setLevel(logging.ERROR)

import scapy  # noqa: E402
from scapy.layers.dns import DNS, DNSQR, DNSRR  # noqa: E402
from scapy.layers.inet import ICMP, IP, TCP, UDP  # noqa: E402
from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6  # noqa: E402
from scapy.layers.l2 import CookedLinuxV2, Dot1AD, Dot1Q, Ether, Loopback  # noqa: E402
from scapy.packet import Raw  # noqa: E402
from scapy.utils import RawPcapNgWriter, RawPcapWriter  # noqa: E402

import cryptography  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509 import ocsp  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "captures"
DEFAULT_EXPECTED = HERE / "expected"

# 2026-03-02 09:00:00 UTC: every capture starts at a fixed offset from this instant.
BASE_NS = 1_772_442_000 * 10**9
MS = 1_000_000
US = 1_000
S = 10**9


# ---------------------------------------------------------------------------------------------
# Deterministic OpenSSL randomness
# ---------------------------------------------------------------------------------------------

_RAND_BYTES = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_ubyte), ctypes.c_int)
_RAND_SEED = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int)
_RAND_ADD = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_double)
_RAND_STATUS = ctypes.CFUNCTYPE(ctypes.c_int)


class _RandMethod(ctypes.Structure):  # OpenSSL's RAND_METHOD (deprecated in 3.0, still honoured)
    _fields_ = [
        ("seed", _RAND_SEED),
        ("bytes", _RAND_BYTES),
        ("cleanup", ctypes.c_void_p),
        ("add", _RAND_ADD),
        ("pseudorand", _RAND_BYTES),
        ("status", _RAND_STATUS),
    ]


def _loaded_libcrypto() -> str | None:
    """Path of the libcrypto that the already imported _ssl module is linked with."""
    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as fh:
            for line in fh:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                if os.path.basename(path).startswith("libcrypto.so"):
                    return path
    except OSError:
        pass
    return ctypes.util.find_library("crypto")


class DeterministicOpenSSLRand:
    """Context manager: make OpenSSL's RAND_bytes/RAND_priv_bytes a SHA-256 counter stream.

    ``reseed(label)`` restarts the stream from a label, so each TLS flow gets the same random
    values (client/server random, session ids, ECDHE key shares, ECDSA nonces) whatever else the
    generator did before it. The default method is restored on exit (leaving Python callbacks
    installed past interpreter shutdown would crash OpenSSL's atexit cleanup).
    """

    def __init__(self) -> None:
        self.active = False
        self.problem = ""
        self._key = b"unseeded"
        self._counter = 0
        self._lib = None
        self._method = None

    def reseed(self, label: str) -> None:
        self._key = hashlib.sha256(b"kscc-samples drbg\0" + label.encode()).digest()
        self._counter = 0

    def _fill(self, buf, num: int) -> int:
        out = bytearray()
        while len(out) < num:
            self._counter += 1
            out += hashlib.sha256(self._key + self._counter.to_bytes(8, "big")).digest()
        ctypes.memmove(buf, bytes(out[:num]), num)
        return 1

    def __enter__(self) -> "DeterministicOpenSSLRand":
        path = _loaded_libcrypto()
        try:
            if not path:
                raise OSError("libcrypto not found")
            lib = ctypes.CDLL(path)
            setter = lib.RAND_set_rand_method
            setter.argtypes = [ctypes.c_void_p]
            setter.restype = ctypes.c_int
            fill = _RAND_BYTES(self._fill)
            self._method = _RandMethod(
                _RAND_SEED(lambda _b, _n: 1), fill, None,
                _RAND_ADD(lambda _b, _n, _r: 1), fill, _RAND_STATUS(lambda: 1),
            )
            if setter(ctypes.addressof(self._method)) != 1:
                raise OSError("RAND_set_rand_method failed")
            self._lib = lib
            # check that the hook really drives the ssl module's RNG
            self.reseed("self-test")
            first = ssl.RAND_bytes(16)
            self.reseed("self-test")
            if ssl.RAND_bytes(16) != first:
                self.__exit__(None, None, None)
                raise OSError("ssl module does not use the hooked libcrypto")
            self.active = True
        except (OSError, AttributeError) as exc:
            self.problem = str(exc)
            self.active = False
        return self

    def __exit__(self, *exc) -> None:
        if self._lib is not None:
            self._lib.RAND_set_rand_method(None)
            self._lib = None
        self.active = False


RAND = DeterministicOpenSSLRand()


# ---------------------------------------------------------------------------------------------
# Certificates (fixed keys derived from labels, deterministic ECDSA signatures)
# ---------------------------------------------------------------------------------------------

_P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
NOT_BEFORE = _dt.datetime(2025, 1, 1, tzinfo=_dt.timezone.utc)
NOT_AFTER = _dt.datetime(2045, 1, 1, tzinfo=_dt.timezone.utc)
SAMPLE_ORG = "kscc-traffic samples (not a real CA)"
OCSP_TIME = _dt.datetime(2026, 3, 2, 6, 0, tzinfo=_dt.timezone.utc)


def fixed_key(label: str) -> ec.EllipticCurvePrivateKey:
    seed = int.from_bytes(hashlib.sha256(b"kscc-samples key\0" + label.encode()).digest(), "big")
    return ec.derive_private_key(seed % (_P256_N - 1) + 1, ec.SECP256R1())


def _sign(builder: x509.CertificateBuilder, key) -> x509.Certificate:
    try:
        return builder.sign(key, hashes.SHA256(), ecdsa_deterministic=True)
    except TypeError:  # cryptography < 44: random ECDSA nonce, the certificate bytes vary per run
        return builder.sign(key, hashes.SHA256())


def _der(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def _seq(*parts: bytes) -> bytes:
    return _der(0x30, b"".join(parts))


def _int(value: int) -> bytes:
    raw = value.to_bytes(value.bit_length() // 8 + 1, "big", signed=False)
    return _der(0x02, raw)


def _oid(dotted: str) -> bytes:
    nums = [int(x) for x in dotted.split(".")]
    out = bytes([40 * nums[0] + nums[1]])
    for n in nums[2:]:
        chunk = [n & 0x7F]
        n >>= 7
        while n:
            chunk.append(0x80 | (n & 0x7F))
            n >>= 7
        out += bytes(reversed(chunk))
    return _der(0x06, out)


def _gtime(when: _dt.datetime) -> bytes:
    return _der(0x18, when.strftime("%Y%m%d%H%M%SZ").encode())


@dataclass
class Cert:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    chain: tuple["Cert", ...] = ()  # issuers to send after the leaf (not the root)

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


class PKI:
    """All certificates the samples use; PEM files live in a temporary directory for ssl."""

    def __init__(self, tmpdir: Path) -> None:
        self.tmp = tmpdir
        self.root = self._ca("kscc-samples Root CA G1", None)
        self.issuing = self._ca("kscc-samples TLS Issuing CA 2025", self.root)
        self.corp_root = self._ca("Corp Inspection CA", None, org="Example Corp Security Gateway")
        self._leaves: dict[str, Cert] = {}
        self._files: dict[str, str] = {}

    def _name(self, cn: str, org: str) -> x509.Name:
        return x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ])

    def _serial(self, label: str) -> int:
        return int.from_bytes(hashlib.sha256(b"serial\0" + label.encode()).digest()[:15], "big") | 1

    def _ca(self, cn: str, issuer: Cert | None, org: str = SAMPLE_ORG) -> Cert:
        key = fixed_key("ca:" + cn)
        name = self._name(cn, org)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer.cert.subject if issuer else name)
            .public_key(key.public_key())
            .serial_number(self._serial("ca:" + cn))
            .not_valid_before(NOT_BEFORE)
            .not_valid_after(NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None if issuer is None else 0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        )
        if issuer is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
        return Cert(_sign(builder, issuer.key if issuer else key), key)

    def leaf(self, names: Iterable[str], issuer: Cert | None = None, cn: str | None = None) -> Cert:
        names = list(names)
        issuer = issuer or self.issuing
        label = f"{issuer.cert.subject.rfc4514_string()}|{'|'.join(names)}|{cn}"
        if label in self._leaves:
            return self._leaves[label]
        key = fixed_key("leaf:" + label)
        cn = cn or names[0]
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(issuer.cert.subject)
            .public_key(key.public_key())
            .serial_number(self._serial("leaf:" + label))
            .not_valid_before(NOT_BEFORE)
            .not_valid_after(NOT_AFTER)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
        )
        # send the issuing CA after the leaf; the inspection proxy sends its (untrusted) root along
        chain = () if issuer is self.root else (issuer,)
        leaf = Cert(_sign(builder, issuer.key), key, chain)
        self._leaves[label] = leaf
        return leaf

    # -- revocation data served on port 80 (real DER, deterministic) -----------------------
    def ocsp_request_path(self, leaf: Cert) -> str:
        """RFC 6960 appendix A GET path: base64 of a real OCSPRequest for leaf, URL-encoded."""
        issuer = leaf.chain[0] if leaf.chain else self.root
        req = ocsp.OCSPRequestBuilder().add_certificate(leaf.cert, issuer.cert, hashes.SHA1()).build()
        b64 = base64.b64encode(req.public_bytes(serialization.Encoding.DER)).decode()
        return "/" + urllib.parse.quote(b64, safe="")

    def ocsp_response(self, leaf: Cert, this_update: _dt.datetime) -> bytes:
        """A successful OCSP response, status good, signed by the issuing CA itself (responderID
        byKey), with a fixed producedAt. Hand-built DER: cryptography's builder stamps producedAt
        with the current time, which would make the capture differ on every run."""
        issuer = leaf.chain[0] if leaf.chain else self.root
        ipub = issuer.key.public_key().public_bytes(serialization.Encoding.X962,
                                                     serialization.PublicFormat.UncompressedPoint)
        name_hash = hashlib.sha1(issuer.cert.subject.public_bytes()).digest()
        key_hash = hashlib.sha1(ipub).digest()
        cert_id = _seq(_seq(_oid("1.3.14.3.2.26"), b"\x05\x00"), _der(0x04, name_hash), _der(0x04, key_hash),
                       _int(leaf.cert.serial_number))
        single = _seq(cert_id, b"\x80\x00", _gtime(this_update),
                      _der(0xA0, _gtime(this_update + _dt.timedelta(days=7))))
        tbs = _seq(_der(0xA2, _der(0x04, key_hash)), _gtime(this_update), _seq(single))
        try:
            sig = issuer.key.sign(tbs, ec.ECDSA(hashes.SHA256(), deterministic_signing=True))
        except TypeError:  # cryptography < 44
            sig = issuer.key.sign(tbs, ec.ECDSA(hashes.SHA256()))
        basic = _seq(tbs, _seq(_oid("1.2.840.10045.4.3.2")), _der(0x03, b"\x00" + sig))
        der = _seq(_der(0x0A, b"\x00"),
                   _der(0xA0, _seq(_oid("1.3.6.1.5.5.7.48.1.1"), _der(0x04, basic))))
        parsed = ocsp.load_der_ocsp_response(der)
        assert parsed.certificate_status == ocsp.OCSPCertStatus.GOOD
        return der

    def crl(self, issuer: Cert, this_update: _dt.datetime) -> bytes:
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(issuer.cert.subject)
            .last_update(this_update)
            .next_update(this_update + _dt.timedelta(days=7))
            .add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(self._serial("revoked"))
                .revocation_date(this_update - _dt.timedelta(days=30)).build())
            .add_extension(x509.CRLNumber(42), critical=False)
        )
        try:
            crl = builder.sign(issuer.key, hashes.SHA256(), ecdsa_deterministic=True)
        except TypeError:
            crl = builder.sign(issuer.key, hashes.SHA256())
        return crl.public_bytes(serialization.Encoding.DER)

    def chain_file(self, leaf: Cert) -> str:
        """PEM file with leaf certificate, the chain to send, and the private key (for ssl)."""
        pem = leaf.pem + b"".join(c.pem for c in leaf.chain) + leaf.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        digest = hashlib.sha256(pem).hexdigest()[:16]
        if digest not in self._files:
            path = self.tmp / f"{digest}.pem"
            path.write_bytes(pem)
            self._files[digest] = str(path)
        return self._files[digest]


# ---------------------------------------------------------------------------------------------
# In-memory TLS between two real OpenSSL endpoints
# ---------------------------------------------------------------------------------------------

TLS12 = ssl.TLSVersion.TLSv1_2
TLS13 = ssl.TLSVersion.TLSv1_3


@dataclass
class TlsSpec:
    """What one TLS connection looks like."""
    server_cert: Cert
    sni: str | None                  # None: no server_name extension (agents talking to a DP)
    max_version: ssl.TLSVersion = TLS13
    trust: tuple[Cert, ...] = ()     # client trust anchors (empty: do not verify at all)
    check_hostname: bool = True
    server_ciphers: str | None = None  # TLS 1.2 cipher list of the server (to provoke failures)


class TlsPair:
    """A client SSLObject and a server SSLObject wired together through MemoryBIOs."""

    def __init__(self, pki: PKI, spec: TlsSpec, label: str) -> None:
        RAND.reseed(label)
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(pki.chain_file(spec.server_cert))
        server_ctx.minimum_version = TLS12
        server_ctx.maximum_version = spec.max_version
        server_ctx.options |= ssl.OP_NO_TICKET   # tickets carry the issue time: not reproducible
        server_ctx.num_tickets = 0
        if spec.server_ciphers:
            server_ctx.set_ciphers(spec.server_ciphers)
        client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client_ctx.minimum_version = TLS12
        client_ctx.options |= ssl.OP_NO_TICKET
        if spec.trust:
            client_ctx.load_verify_locations(cadata="".join(c.pem.decode() for c in spec.trust))
            client_ctx.check_hostname = spec.check_hostname and spec.sni is not None
        else:
            client_ctx.check_hostname = False
            client_ctx.verify_mode = ssl.CERT_NONE
        self.bio = {side: (ssl.MemoryBIO(), ssl.MemoryBIO()) for side in "cs"}  # (incoming, outgoing)
        self.obj = {
            "c": client_ctx.wrap_bio(*self.bio["c"], server_side=False, server_hostname=spec.sni),
            "s": server_ctx.wrap_bio(*self.bio["s"], server_side=True),
        }
        self.failed: tuple[str, ssl.SSLError] | None = None

    @staticmethod
    def other(side: str) -> str:
        return "s" if side == "c" else "c"

    def _flush(self, side: str) -> bytes:
        data = self.bio[side][1].read()
        if data:
            self.bio[self.other(side)][0].write(data)
        return data

    def handshake(self) -> list[tuple[str, bytes]]:
        """Run the handshake; return the flights as (side, bytes) in the order they were sent.

        Stops at the first side that fails; its alert (if any) is the last flight."""
        flights: list[tuple[str, bytes]] = []
        done = {"c": False, "s": False}
        for _ in range(12):
            progressed = False
            for side in "cs":
                if not done[side]:
                    try:
                        self.obj[side].do_handshake()
                        done[side] = True
                    except ssl.SSLWantReadError:
                        pass
                    except ssl.SSLError as exc:
                        self.failed = (side, exc)
                data = self._flush(side)
                if data:
                    flights.append((side, data))
                    progressed = True
                if self.failed:
                    return flights
            if done["c"] and done["s"] and not progressed:
                return flights
        raise RuntimeError("TLS handshake did not converge")

    def feed_plaintext_to_server(self, data: bytes) -> bytes:
        """Give the server raw (non-TLS) bytes; return what it writes back (possibly nothing)."""
        self.bio["s"][0].write(data)
        try:
            self.obj["s"].do_handshake()
        except ssl.SSLError as exc:
            self.failed = ("s", exc)
        return self.bio["s"][1].read()

    def app(self, side: str, data: bytes) -> bytes:
        self.obj[side].write(data)
        out = self._flush(side)
        peer = self.obj[self.other(side)]
        got = b""
        while len(got) < len(data):
            got += peer.read(len(data) - len(got))
        assert got == data
        return out

    def close_notify(self, side: str) -> bytes:
        try:
            self.obj[side].unwrap()
        except (ssl.SSLWantReadError, ssl.SSLError):
            pass
        return self.bio[side][1].read()

    def server_alert_description(self) -> str:
        """The server's OpenSSL error text, without the ``(_ssl.c:NNNN)`` source line of Python's
        ssl module (it differs between Python versions: the labels would too)."""
        return re.sub(r" \(_ssl\.c:\d+\)", "", str(self.failed[1])) if self.failed else ""


def rewrite_sni(record: bytes, sni: bytes) -> bytes:
    """Hand-craft: replace the server_name in a ClientHello record, fixing every length field.

    ssl refuses names like '<script>' or escape sequences, so the flow is run with a placeholder
    name and the ClientHello bytes are edited afterwards. The rest of the handshake is the genuine one
    (its Finished MACs cover the placeholder, which only the endpoints could notice)."""
    assert record[0] == 22 and record[5] == 1, "not a ClientHello record"
    body = record[9:]
    pos = 2 + 32
    pos += 1 + body[pos]                                   # session id
    pos += 2 + int.from_bytes(body[pos:pos + 2], "big")   # cipher suites
    pos += 1 + body[pos]                                   # compression methods
    ext_len = int.from_bytes(body[pos:pos + 2], "big")
    exts, rest = body[pos + 2:pos + 2 + ext_len], body[pos + 2 + ext_len:]
    assert not rest
    new_exts = b""
    i = 0
    while i < len(exts):
        etype = int.from_bytes(exts[i:i + 2], "big")
        elen = int.from_bytes(exts[i + 2:i + 4], "big")
        edata = exts[i + 4:i + 4 + elen]
        if etype == 0:
            entry = b"\x00" + len(sni).to_bytes(2, "big") + sni
            edata = len(entry).to_bytes(2, "big") + entry
        new_exts += etype.to_bytes(2, "big") + len(edata).to_bytes(2, "big") + edata
        i += 4 + elen
    new_body = body[:pos] + len(new_exts).to_bytes(2, "big") + new_exts
    handshake = b"\x01" + len(new_body).to_bytes(3, "big") + new_body
    return record[:3] + len(handshake).to_bytes(2, "big") + handshake


# ---------------------------------------------------------------------------------------------
# Hosts, packets, flows
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Host:
    name: str
    ip: str
    mac: str = ""          # empty: a remote host, reached through the router
    ttl: int = 64

    @property
    def v6(self) -> bool:
        return ":" in self.ip

    @property
    def local(self) -> bool:
        return bool(self.mac)


# RFC 7042 documentation MAC addresses 00:00:5e:00:53:xx
ROUTER = Host("router", "192.0.2.1", "00:00:5e:00:53:01", 64)
AGENT = Host("agent", "192.0.2.10", "00:00:5e:00:53:0a", 128)
AGENT2 = Host("agent2", "192.0.2.11", "00:00:5e:00:53:0b", 128)
DP = Host("dp", "192.0.2.20", "00:00:5e:00:53:14", 64)
MOBILE = Host("mobile", "192.0.2.30", "00:00:5e:00:53:1e", 64)
DNS_SRV = Host("dns", "203.0.113.53", ttl=57)
KSC_EU1 = Host("eu1.ksc", "203.0.113.10", ttl=52)
KSC_DISCOVERY = Host("discovery.ksc", "203.0.113.11", ttl=52)
DIGICERT = Host("ocsp.digicert", "203.0.113.12", ttl=55)
KSN_A = Host("ksn-a", "203.0.113.13", ttl=53)
KSC_EU2 = Host("eu2.ksc", "203.0.113.15", ttl=52)
BCAST_NET = Host("bcast", "192.0.2.255", "ff:ff:ff:ff:ff:ff")
BCAST_ALL = Host("bcast-all", "255.255.255.255", "ff:ff:ff:ff:ff:ff")
MCAST = Host("dp-mcast", "239.192.0.15", "01:00:5e:40:00:0f")

ROUTER6 = Host("router6", "2001:db8:a::1", ROUTER.mac, 64)
AGENT6 = Host("agent6", "2001:db8:a::10", AGENT.mac, 128)
DP6 = Host("dp6", "2001:db8:a::20", DP.mac, 64)
DNS6 = Host("dns6", "2001:db8:cc::53", ttl=57)
KSC6 = Host("eu1.ksc6", "2001:db8:cc::10", ttl=52)
KSN6 = Host("ksn-a6", "2001:db8:cc::13", ttl=53)
MCAST6 = Host("dp-mcast6", "ff15::15", "33:33:00:00:00:15")

CLOUD_RTT = 28 * MS
LAN_RTT = 400 * US
DNS_RTT = 9 * MS


@dataclass
class Rec:
    """One captured packet, link layer not yet chosen."""
    ts_ns: int
    l3: bytes
    ipver: int
    src_mac: str
    dst_mac: str
    outgoing: bool     # sent by the capturing host (SLL2 packet type)
    incoming: bool     # addressed to the capturing host
    iface: int
    order: int


class Capture:
    """Packets and labels of one capture file."""

    def __init__(self, name: str, vantage: Iterable[Host] = (AGENT,), t0: int = BASE_NS) -> None:
        self.name = name
        self.rng = random.Random(f"kscc-samples:{name}")
        self.recs: list[Rec] = []
        self.labels: list[tuple[int, int, dict]] = []   # (first_ts, order, label)
        self.extra: list[tuple[int, int, dict]] = []
        self.vantage = {h.ip for h in vantage}
        self.t0 = t0
        self._ports: set[int] = set()
        self._ipid: dict[str, int] = {}
        self._order = 0

    # -- numbers ---------------------------------------------------------------------------
    def port(self) -> int:
        while True:
            p = self.rng.randint(49152, 65535)
            if p not in self._ports:
                self._ports.add(p)
                return p

    def isn(self) -> int:
        return self.rng.getrandbits(32)

    def at(self, seconds: float) -> int:
        return self.t0 + round(seconds * S)

    def _next_ipid(self, host: Host) -> int:
        if host.ip not in self._ipid:
            self._ipid[host.ip] = self.rng.randint(0x1000, 0xE000)
        self._ipid[host.ip] = (self._ipid[host.ip] + 1) & 0xFFFF
        return self._ipid[host.ip]

    # -- packets ---------------------------------------------------------------------------
    def emit(self, ts: int, src: Host, dst: Host, l4, iface: int = 0, ttl: int | None = None) -> bytes:
        """Add one IP packet; return its IP-layer bytes (for ICMP errors that quote it)."""
        if src.v6:
            hlim = ttl if ttl is not None else (1 if dst.ip.startswith("ff") else src.ttl)
            pkt = IPv6(src=src.ip, dst=dst.ip, hlim=hlim) / l4
        else:
            multicast = ipaddress.ip_address(dst.ip).is_multicast
            pkt = IP(src=src.ip, dst=dst.ip, ttl=ttl if ttl is not None else (1 if multicast else src.ttl),
                     id=self._next_ipid(src), flags="DF" if isinstance(l4, TCP) else 0) / l4
        raw = bytes(pkt)
        src_mac = src.mac if src.local else ROUTER.mac
        dst_mac = dst.mac if dst.local else ROUTER.mac
        self._order += 1
        self.recs.append(Rec(ts, raw, 6 if src.v6 else 4, src_mac, dst_mac,
                             src.ip in self.vantage, dst.ip in self.vantage, iface, self._order))
        return raw

    # -- labels ----------------------------------------------------------------------------
    def label(self, flow: "Flow", purpose: str, verdict: str, name: str | None, notes: str,
              reason: str | None = None, extra: bool = False) -> None:
        label = {
            "client_ip": flow.client.ip,
            "client_port": flow.cport,
            "server_ip": flow.server.ip,
            "server_port": flow.sport,
            "transport": flow.transport,
            "expected_purpose": purpose,
            "expected_verdict": verdict,
            "sni_or_host": name,
            "notes": notes,
            "expected_reason": reason if reason is not None else DEFAULT_REASON.get(verdict),
        }
        self._order += 1
        (self.extra if extra else self.labels).append((flow.first_ts, self._order, label))

    def cut_before(self, ts: int) -> None:
        """Drop every packet captured before ts (capture started late)."""
        self.recs = [r for r in self.recs if r.ts_ns >= ts]

    def sorted_recs(self) -> list[Rec]:
        return sorted(self.recs, key=lambda r: (r.ts_ns, r.order))

    def label_list(self, which: str = "labels") -> list[dict]:
        return [lab for _, _, lab in sorted(getattr(self, which), key=lambda x: (x[0], x[1]))]


# label verdict -> the analyzer reason it implies (None: any reason is accepted)
DEFAULT_REASON = {
    "ok": None,
    "ok_partial_capture": None,
    "blocked_no_answer": "no_answer",
    "blocked_rejected_rst": "rejected",
    "blocked_icmp": "icmp_unreachable",
    "unexpected_host": "host_mismatch",
    "unexpected_protocol": "not_tls",
    "tls_intercepted": "tls_intercepted",
    "tls_failed": "tls_failed",
    "unexpected_undocumented_port": "undocumented_port",
    "unexpected_wrong_direction": "wrong_direction",
    "unclassified": None,
}


class Flow:
    transport = ""

    def __init__(self, cap: Capture, client: Host, cport: int, server: Host, sport: int,
                 t: int, iface: int = 0) -> None:
        self.cap = cap
        self.client, self.cport, self.server, self.sport = client, cport, server, sport
        self.t = t
        self.iface = iface
        self.first_ts: int | None = None

    def ends(self, side: str) -> tuple[Host, int, Host, int]:
        if side == "c":
            return self.client, self.cport, self.server, self.sport
        return self.server, self.sport, self.client, self.cport

    def _stamp(self, ts: int) -> None:
        if self.first_ts is None or ts < self.first_ts:
            self.first_ts = ts


class Udp(Flow):
    transport = "udp"

    def send(self, side: str, payload: bytes, delay: int = 0, dst: Host | None = None) -> None:
        self.t += delay
        src, sport, peer, dport = self.ends(side)
        self._stamp(self.t)
        self.cap.emit(self.t, src, dst or peer, UDP(sport=sport, dport=dport) / Raw(payload), self.iface)

    def last_packet(self) -> bytes:
        return self.cap.recs[-1].l3


class Tcp(Flow):
    """A TCP connection with consistent sequence numbers, as seen from near the client."""
    transport = "tcp"

    def __init__(self, cap: Capture, client: Host, cport: int, server: Host, sport: int,
                 t: int, rtt: int = CLOUD_RTT, iface: int = 0, near: str = "c") -> None:
        super().__init__(cap, client, cport, server, sport, t, iface)
        self.rtt = rtt
        self.near = near
        self.nxt = {"c": cap.isn(), "s": cap.isn()}
        self.isn = dict(self.nxt)
        self.last: str | None = None
        self.mss = 1440 if client.v6 else 1460
        self.packets: list[bytes] = []

    def other(self, side: str) -> str:
        return "s" if side == "c" else "c"

    def _advance(self, side: str, delay: int | None) -> None:
        if delay is not None:
            self.t += delay
        elif self.last is None:
            pass
        elif self.last == side:
            self.t += 15 * US                      # back-to-back segments
        elif side == self.near:
            self.t += 250 * US                     # local stack reacts quickly
        else:
            self.t += self.rtt                     # the far side answers one round trip later
        self.last = side

    def seg(self, side: str, flags: str, payload: bytes = b"", delay: int | None = None,
            seq: int | None = None, ack: int | None = None, options=None, window: int | None = None,
            ttl: int | None = None) -> bytes:
        self._advance(side, delay)
        src, sport, dst, dport = self.ends(side)
        if seq is None:
            seq = self.nxt[side]
        if ack is None:
            ack = self.nxt[self.other(side)] if "A" in flags else 0
        if window is None:
            if "S" in flags:
                window = 64240 if side == "c" else 65160
            else:
                window = 1026 if side == "c" else 509
        tcp = TCP(sport=sport, dport=dport, seq=seq & 0xFFFFFFFF, ack=ack & 0xFFFFFFFF,
                  flags=flags, window=window, options=options or [])
        if payload:
            tcp = tcp / Raw(payload)
        self._stamp(self.t)
        raw = self.cap.emit(self.t, src, dst, tcp, self.iface, ttl=ttl)
        self.packets.append(raw)
        grow = len(payload) + (1 if "S" in flags else 0) + (1 if "F" in flags else 0)
        if seq == self.nxt[side]:
            self.nxt[side] = (seq + grow) & 0xFFFFFFFF
        return raw

    def syn_options(self, side: str):
        if side == "c":
            return [("MSS", self.mss), ("NOP", None), ("WScale", 8), ("NOP", None), ("NOP", None), ("SAckOK", b"")]
        return [("MSS", self.mss), ("NOP", None), ("NOP", None), ("SAckOK", b""), ("NOP", None), ("WScale", 7)]

    def syn(self, delay: int | None = None) -> bytes:
        return self.seg("c", "S", seq=self.isn["c"], delay=delay, options=self.syn_options("c"))

    def open(self) -> None:
        self.syn()
        self.seg("s", "SA", options=self.syn_options("s"))
        self.seg("c", "A")

    def send(self, side: str, data: bytes, ack: bool = True) -> None:
        """Send data in MSS-sized segments (PSH on the last); the peer ACKs unless it answers."""
        chunks = [data[i:i + self.mss] for i in range(0, len(data), self.mss)] or [b""]
        for n, chunk in enumerate(chunks):
            last = n == len(chunks) - 1
            self.seg(side, "PA" if last else "A", chunk)
            if not last and n % 10 == 9:            # initial cwnd: wait for an ACK every 10 segments
                self.seg(self.other(side), "A")
        if ack:
            self.seg(self.other(side), "A")

    def talk(self, items: list, final_ack: bool = True) -> None:
        """items: (side, bytes) messages and ("pause", seconds) gaps, in order.

        final_ack=False: the last message is not ACKed on its own (a FIN follows at once)."""
        for i, item in enumerate(items):
            if item[0] == "pause":
                self.t += round(item[1] * S)
                self.last = None
                continue
            side, data = item
            nxt = items[i + 1] if i + 1 < len(items) else None
            answered = nxt is not None and nxt[0] == self.other(side)
            self.send(side, data, ack=not answered and (nxt is not None or final_ack))

    def close(self, side: str = "c") -> None:
        self.seg(side, "FA")
        self.seg(self.other(side), "FA")
        self.seg(side, "A")

    def reset(self, side: str) -> None:
        self.seg(side, "RA")


# ---------------------------------------------------------------------------------------------
# Application payloads (made up, deterministic)
# ---------------------------------------------------------------------------------------------

def blob(label: str, size: int) -> bytes:
    out = b""
    counter = 0
    while len(out) < size:
        counter += 1
        out += hashlib.sha256(f"{label}:{counter}".encode()).digest()
    return out[:size]


def name_text(raw: bytes, dns: bool = False) -> str:
    """Packet bytes of a name -> the project's name text (see kscc_traffic/protocols/dns.py, "Name
    text"): valid UTF-8 kept; a backslash becomes two; bytes that are not UTF-8 and ASCII control
    characters become ``\\xNN``; in DNS names a dot inside a label becomes ``\\.``. Written here
    independently of the analyzer so the labels say what the analyzer must produce."""
    if dns:
        return ".".join(name_text(label).replace(".", "\\.") for label in raw.split(b"."))
    out = []
    for ch in raw.decode("utf-8", "surrogateescape"):
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif ch == "\\":
            out.append("\\\\")
        else:
            out.append(ch)
    return "".join(out)


def printable(name: str | bytes) -> str:
    """The name as is when it is plain printable ASCII, else its escaped Python repr."""
    if isinstance(name, str) and name.isascii() and name.isprintable():
        return name
    return repr(name)


def http_request(method: str, path: str, host: str | bytes, extra: str = "", body: bytes = b"") -> bytes:
    host_b = host if isinstance(host, bytes) else host.encode()
    head = (f"{method} {path} HTTP/1.1\r\n").encode() + b"Host: " + host_b + b"\r\n" + (
        "User-Agent: klnagent/15.1\r\nAccept: */*\r\nConnection: close\r\n" + extra).encode()
    if body:
        head += f"Content-Length: {len(body)}\r\n".encode()
    return head + b"\r\n" + body


def http_response(status: str, ctype: str, body: bytes) -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            "Cache-Control: max-age=3600\r\nConnection: close\r\n\r\n").encode() + body


# ---------------------------------------------------------------------------------------------
# Building blocks used by the scenarios
# ---------------------------------------------------------------------------------------------

class Builder:
    def __init__(self, cap: Capture, pki: PKI) -> None:
        self.cap = cap
        self.pki = pki
        self.ksc_cert = pki.leaf(["*.ksc.kaspersky.com", "ksc.kaspersky.com"])
        self.dp_cert = pki.leaf(["dp01.corp.example"], cn="KLSRV-DP01")
        self._tls_count = 0

    def tls_label(self, what: str) -> str:
        self._tls_count += 1
        return f"{self.cap.name}:{self._tls_count}:{what}"

    # -- DNS -------------------------------------------------------------------------------
    def dns(self, client: Host, name: str | bytes, answers: list[str] | None, t: float | int,
            server: Host | None = None, qtype: str = "A", label: bool = True,
            answered: bool = True, rcode: int = 0, iface: int = 0, retries: int = 0) -> Udp:
        server = server or (DNS6 if client.v6 else DNS_SRV)
        ts = t if isinstance(t, int) and t > 10**15 else self.cap.at(t)
        flow = Udp(self.cap, client, self.cap.port(), server, 53, ts, iface)
        qid = self.cap.rng.getrandbits(16)
        qname = name if isinstance(name, bytes) else name.encode()
        query = DNS(id=qid, rd=1, qd=DNSQR(qname=qname, qtype=qtype))
        flow.send("c", bytes(query))
        for _ in range(retries):
            flow.send("c", bytes(query), delay=5 * S if answered is False else 1 * S)
        if answered:
            rrs = [DNSRR(rrname=qname, type=qtype, ttl=300, rdata=a) for a in (answers or [])]
            resp = DNS(id=qid, qr=1, rd=1, ra=1, rcode=rcode, qd=DNSQR(qname=qname, qtype=qtype))
            if rrs:
                an = rrs[0]
                for rr in rrs[1:]:
                    an = an / rr
                resp.an = an
            flow.send("s", bytes(resp), delay=DNS_RTT)
        if label:
            shown = name_text(qname, dns=True)
            if not answered:
                self.cap.label(flow, "dns", "blocked_no_answer", shown,
                               f"DNS {qtype} query for {printable(name)}, sent {1 + retries} times "
                               "(same id and port), never answered")
            else:
                what = ", ".join(answers) if answers else ("NXDOMAIN" if rcode == 3 else "no data")
                self.cap.label(flow, "dns", "ok", shown, f"DNS {qtype} query for {printable(name)} -> {what}")
        return flow

    # -- TLS over TCP ------------------------------------------------------------------------
    def tls_session(self, tcp: Tcp, spec: TlsSpec, script: list, close: str | None = "c",
                    what: str = "", sni_override: bytes | None = None) -> TlsPair:
        """TCP handshake, genuine TLS handshake, application data script, close_notify + FIN."""
        pair = TlsPair(self.pki, spec, self.tls_label(what or f"{tcp.server.ip}:{tcp.sport}"))
        flights = pair.handshake()
        if pair.failed:
            raise RuntimeError(f"unexpected TLS failure in {what}: {pair.failed}")
        if sni_override is not None:
            flights[0] = (flights[0][0], rewrite_sni(flights[0][1], sni_override))
        items: list = list(flights)
        for step in script:
            if step[0] == "pause":
                items.append(step)
            else:
                items.append((step[0], pair.app(step[0], step[1])))
        tcp.open()
        tcp.talk(items)
        if close:
            tcp.talk([(close, pair.close_notify(close))], final_ack=False)
            tcp.close(close)
        return pair

    def tcp(self, client: Host, server: Host, sport: int, t: float | int, rtt: int | None = None,
            iface: int = 0, near: str = "c", cport: int | None = None) -> Tcp:
        ts = t if isinstance(t, int) and t > 10**15 else self.cap.at(t)
        if rtt is None:
            rtt = LAN_RTT if (server.local and client.local) else CLOUD_RTT
        return Tcp(self.cap, client, cport or self.cap.port(), server, sport, ts, rtt, iface, near)

    def heartbeat_script(self, count: int, every: float, label: str, sizes=(64, 96)) -> list:
        script: list = []
        for i in range(count):
            script.append(("pause", every))
            script.append(("c", blob(f"{label}:hb-req:{i}", sizes[0])))
            script.append(("s", blob(f"{label}:hb-resp:{i}", sizes[1])))
        return script

    def ksn_plain(self, client: Host, server: Host, sport: int, t: float, iface: int = 0,
                  near: str = "c") -> Tcp:
        """Plain TCP KSN-style exchange: the server speaks first (greeting)."""
        tcp = self.tcp(client, server, sport, t, iface=iface, near=near)
        tcp.open()
        tcp.talk([
            ("s", b"KSN1" + blob(f"{tcp.cport}:greeting", 28)),
            ("c", b"KSNQ" + blob(f"{tcp.cport}:query", 412)),
            ("s", b"KSNA" + blob(f"{tcp.cport}:answer", 1876)),
        ])
        tcp.close("c")
        return tcp


# ---------------------------------------------------------------------------------------------
# Scenarios (one function per capture)
# ---------------------------------------------------------------------------------------------

def ksc_spec(b: Builder, version=TLS13, sni: str | None = "eu1.ksc.kaspersky.com") -> TlsSpec:
    return TlsSpec(b.ksc_cert, sni, version, trust=(b.pki.root,))


def build_baseline_agent(pki: PKI) -> Capture:
    cap = Capture("baseline_agent.pcap", vantage=(AGENT,))
    b = Builder(cap, pki)
    eu1 = "eu1.ksc.kaspersky.com"

    b.dns(AGENT, eu1, [KSC_EU1.ip], 0.0)
    tcp = b.tcp(AGENT, KSC_EU1, 23101, 0.05)
    b.tls_session(tcp, ksc_spec(b), [
        ("c", blob("agent:login", 612)),
        ("s", blob("agent:policy", 3950)),
        *b.heartbeat_script(8, 2.0, "agent"),
    ], what="agent_connection")
    cap.label(tcp, "agent_connection", "ok", eu1,
              "long-lived agent session to the cloud Administration Server, TLS 1.3, heartbeat every 2 s")

    b.dns(AGENT, "discovery.ksc.kaspersky.com", [KSC_DISCOVERY.ip], 1.0)
    tcp = b.tcp(AGENT, KSC_DISCOVERY, 443, 1.05)
    b.tls_session(tcp, ksc_spec(b, sni="discovery.ksc.kaspersky.com"), [
        ("c", http_request("GET", "/v1/discovery?tenant=sample", "discovery.ksc.kaspersky.com")),
        ("s", http_response("200 OK", "application/json",
                            b'{"servers":["eu1.ksc.kaspersky.com:23101"],"ttl":3600}')),
    ], what="discovery")
    cap.label(tcp, "discovery_https", "ok", "discovery.ksc.kaspersky.com", "HTTPS discovery request, TLS 1.3")

    b.dns(AGENT, eu1, [KSC_EU1.ip], 2.5)
    tcp = b.tcp(AGENT, KSC_EU1, 27201, 2.55)
    b.tls_session(tcp, ksc_spec(b, TLS12), [
        ("c", blob("activation:request", 1320)),
        ("s", blob("activation:ticket", 2210)),
    ], what="activation")
    cap.label(tcp, "activation", "ok", eu1,
              "activation over TLS 1.2; the server certificate (*.ksc.kaspersky.com, issued by "
              "'kscc-samples TLS Issuing CA 2025') is visible in the capture")

    b.dns(AGENT, eu1, [KSC_EU1.ip], 4.0)
    tcp = b.tcp(AGENT, KSC_EU1, 29201, 4.05)
    b.tls_session(tcp, ksc_spec(b), [
        ("c", blob("tunnel:open", 220)),
        ("s", blob("tunnel:accept", 140)),
        ("c", blob("tunnel:rdp-1", 5200)),
        ("s", blob("tunnel:rdp-2", 9100)),
    ], what="klsctunnel")
    cap.label(tcp, "klsctunnel", "ok", eu1, "klsctunnel session, TLS 1.3")

    b.dns(AGENT, "ksn-a.kaspersky.com", [KSN_A.ip], 6.0)
    tcp = b.ksn_plain(AGENT, KSN_A, 1443, 6.05)
    cap.label(tcp, "ksn", "ok", None,
              "plain TCP KSN exchange to ksn-a.kaspersky.com (resolved just before); the SERVER speaks first")

    b.dns(AGENT, "ocsp.digicert.com", [DIGICERT.ip], 7.0)
    tcp = b.tcp(AGENT, DIGICERT, 80, 7.05)
    tcp.open()
    tcp.talk([
        ("c", http_request("GET", pki.ocsp_request_path(b.ksc_cert), "ocsp.digicert.com")),
        ("s", http_response("200 OK", "application/ocsp-response", pki.ocsp_response(b.ksc_cert, OCSP_TIME))),
    ])
    tcp.close("s")
    cap.label(tcp, "cert_check_http", "ok", "ocsp.digicert.com",
              "OCSP GET on port 80 (RFC 6960 GET form) for the *.ksc.kaspersky.com certificate, 200 answer "
              "with a signed 'good' OCSP response")

    b.dns(MOBILE, eu1, [KSC_EU1.ip], 8.0)
    tcp = b.tcp(MOBILE, KSC_EU1, 23701, 8.05)
    b.tls_session(tcp, ksc_spec(b), [
        ("c", blob("mobile:sync", 800)),
        ("s", blob("mobile:commands", 1200)),
    ], what="mobile")
    cap.label(tcp, "mobile_connection", "ok", eu1, "mobile device 192.0.2.30 to the cloud server, TLS 1.3")

    udp = Udp(cap, DP, cap.port(), AGENT, 15000, cap.at(9.0))
    udp.send("c", b"KLGW" + blob("gateway:1", 180))
    udp.send("c", b"KLGW" + blob("gateway:2", 180), delay=1 * S)
    cap.label(udp, "gateway_udp", "ok", None,
              "unicast UDP from the distribution point acting as connection gateway to the agent (one-way)")

    udp = Udp(cap, AGENT, cap.port(), BCAST_NET, 15000, cap.at(10.0))
    udp.send("c", b"KLBC" + blob("bcast:1", 120))
    udp.send("c", b"KLBC" + blob("bcast:2", 120), delay=3 * S)
    cap.label(udp, "agent_broadcast_udp", "ok", None,
              "agent announces itself to the subnet broadcast 192.0.2.255, Ethernet dst ff:ff:ff:ff:ff:ff (one-way)")

    udp = Udp(cap, AGENT2, cap.port(), BCAST_ALL, 15000, cap.at(10.5))
    udp.send("c", b"KLBC" + blob("bcast2:1", 120))
    cap.label(udp, "agent_broadcast_udp", "ok", None,
              "agent2 (192.0.2.11) broadcasts to 255.255.255.255 (limited broadcast, one-way)")

    udp = Udp(cap, DP, cap.port(), MCAST, 15001, cap.at(11.0))
    udp.send("c", b"KLMC" + blob("mcast:1", 260))
    udp.send("c", b"KLMC" + blob("mcast:2", 260), delay=2 * S)
    cap.label(udp, "dp_multicast_udp", "ok", None,
              "multicast from the distribution point to 239.192.0.15:15001, Ethernet dst 01:00:5e:40:00:0f")
    return cap


def build_baseline_dp(pki: PKI) -> Capture:
    """Captured on the distribution point: interface 0 eth0 (Ethernet, us), 1 any (SLL2, ns)."""
    cap = Capture("baseline_dp.pcapng", vantage=(DP,))
    b = Builder(cap, pki)
    dp_spec = TlsSpec(b.dp_cert, None, TLS13)

    tcp = b.tcp(AGENT, DP, 13000, 0.0, near="s", iface=0)
    b.tls_session(tcp, dp_spec, [
        ("c", blob("dp:sync", 700)),
        ("s", blob("dp:tasks", 2600)),
        *b.heartbeat_script(5, 2.0, "dp"),
    ], what="dp_agent_connection")
    cap.label(tcp, "dp_agent_connection", "ok", None, "agent to distribution point, TLS 1.3 without SNI (eth0)")

    tcp = b.tcp(AGENT, DP, 13295, 0.4, near="s", iface=0)
    b.tls_session(tcp, dp_spec, [
        ("c", b"SUBSCRIBE " + blob("push:sub", 90)),
        ("s", blob("push:ack", 40)),
        ("pause", 3.0), ("s", blob("push:1", 180)),
        ("pause", 4.5), ("s", blob("push:2", 180)),
    ], close="s", what="dp_push")
    cap.label(tcp, "dp_push", "ok", None,
              "push-notification session; after SUBSCRIBE only the server (DP) sends data (eth0)")

    udp = Udp(cap, AGENT, cap.port(), DP, 15111, cap.at(1.0), iface=0)
    for i in range(2):
        udp.send("c", b"KSNU" + blob(f"ksnu:q{i}", 160), delay=0 if i == 0 else 700 * MS)
        udp.send("s", b"KSNU" + blob(f"ksnu:a{i}", 420), delay=180 * MS)
    cap.label(udp, "dp_ksn_proxy_udp", "ok", None, "KSN proxy UDP request/response, twice (eth0)")

    tcp = b.ksn_plain(AGENT2, DP, 13111, 1.5, iface=1, near="s")
    cap.label(tcp, "dp_ksn_proxy_tcp", "ok", None, "KSN proxy request over plain TCP from agent2 (any, SLL2)")

    tcp = b.tcp(AGENT2, DP, 17111, 2.0, near="s", iface=1)
    b.tls_session(tcp, dp_spec, [
        ("c", http_request("POST", "/ksn/v2/query", "192.0.2.20:17111", "Content-Type: application/octet-stream\r\n",
                           blob("ksnh:q", 350))),
        ("s", http_response("200 OK", "application/octet-stream", blob("ksnh:a", 980))),
    ], what="dp_ksn_proxy_https")
    cap.label(tcp, "dp_ksn_proxy_https", "ok", None, "KSN proxy over HTTPS, TLS 1.3 without SNI (any, SLL2)")

    b.dns(DP, "eu1.ksc.kaspersky.com", [KSC_EU1.ip], 2.5, iface=1)
    tcp = b.tcp(DP, KSC_EU1, 23101, 2.55, iface=1)
    b.tls_session(tcp, ksc_spec(b), [
        ("c", blob("dpself:login", 580)),
        ("s", blob("dpself:policy", 1900)),
        *b.heartbeat_script(3, 2.0, "dpself"),
    ], what="dp own agent_connection")
    cap.label(tcp, "agent_connection", "ok", "eu1.ksc.kaspersky.com",
              "the distribution point's own agent connection to the cloud (any, SLL2)")

    b.dns(DP, "ksn-a.kaspersky.com", [KSN_A.ip], 3.0, iface=1)
    tcp = b.ksn_plain(DP, KSN_A, 1443, 3.05, iface=1)
    cap.label(tcp, "ksn", "ok", None, "KSN proxy on the DP forwarding upstream to ksn-a.kaspersky.com; server speaks first (any, SLL2)")
    return cap


def build_blocked_agent(pki: PKI) -> Capture:
    cap = Capture("blocked_agent.pcap", vantage=(AGENT,))
    b = Builder(cap, pki)
    eu1 = "eu1.ksc.kaspersky.com"

    # tls_failed: the server accepts TCP, reads the ClientHello, answers a handshake_failure alert
    b.dns(AGENT, eu1, [KSC_EU1.ip], 0.0)
    tcp = b.tcp(AGENT, KSC_EU1, 23101, 0.05)
    spec = TlsSpec(b.ksc_cert, eu1, TLS12, trust=(pki.root,), server_ciphers="ECDHE-RSA-AES256-GCM-SHA384")
    pair = TlsPair(pki, spec, b.tls_label("tls_failed"))
    flights = pair.handshake()
    assert pair.failed and pair.failed[0] == "s" and flights[-1][0] == "s", pair.failed
    alert = flights[-1][1]
    assert alert[0] == 21 and alert[-1] == 40, alert.hex()   # alert(21), fatal, handshake_failure(40)
    tcp.open()
    tcp.talk(flights, final_ack=False)   # alert, then FIN right behind it
    tcp.close("s")
    cap.label(tcp, "agent_connection", "tls_intercepted", eu1,
              "TLS failed: the server answered the ClientHello with a fatal handshake_failure alert "
              "(no shared cipher) and closed. Precise verdict tls_failed (see expected_reason); "
              "the shared tool accepts reason tls_failed under this label", reason="tls_failed")

    # no_answer: SYN + 3 retransmissions (1 s, 2 s, 4 s backoff), same ISN, silence
    b.dns(AGENT, eu1, [KSC_EU1.ip], 1.0)
    tcp = b.tcp(AGENT, KSC_EU1, 27201, 1.05)
    tcp.syn()
    for backoff in (1, 2, 4):
        tcp.syn(delay=backoff * S)
    cap.label(tcp, "activation", "blocked_no_answer", None,
              "firewall DROPs 27201: SYN + 3 retransmissions with the same ISN, 1/2/4 s backoff, no answer "
              "(client intended eu1.ksc.kaspersky.com; no ClientHello was ever sent)")

    # rejected: RST-ACK to the SYN
    b.dns(AGENT, eu1, [KSC_EU1.ip], 9.0)
    tcp = b.tcp(AGENT, KSC_EU1, 29201, 9.05)
    tcp.syn()
    # (the agent's gateway sends it: the TTL of a device next to the agent, not the server's 52)
    tcp.seg("s", "RA", seq=0, ack=tcp.isn["c"] + 1, window=0, ttl=64)
    cap.label(tcp, "klsctunnel", "blocked_rejected_rst", None,
              "firewall rejects with a TCP reset (RST-ACK spoofed from the server address) "
              "(client intended eu1.ksc.kaspersky.com)")

    tcp = b.tcp(AGENT, DP, 13111, 9.5)
    tcp.syn()
    tcp.seg("s", "RA", seq=0, ack=tcp.isn["c"] + 1, window=0)
    cap.label(tcp, "dp_ksn_proxy_tcp", "blocked_rejected_rst", None,
              "KSN proxy not running on the DP: RST-ACK from the DP kernel")

    # ICMP admin-prohibited quoting the SYN to 1443
    b.dns(AGENT, "ksn-a.kaspersky.com", [KSN_A.ip], 10.0)
    tcp = b.tcp(AGENT, KSN_A, 1443, 10.05)
    syn = tcp.syn()
    cap.emit(tcp.t + 2 * MS, ROUTER, AGENT, ICMP(type=3, code=13) / Raw(syn))
    cap.label(tcp, "ksn", "blocked_icmp", None,
              "the router answers the SYN with ICMP type 3 code 13 (communication administratively "
              "prohibited) quoting the whole SYN; the client gives up (client resolved ksn-a.kaspersky.com)")

    # ICMP port unreachable quoting a UDP datagram to 15111
    udp = Udp(cap, AGENT, cap.port(), DP, 15111, cap.at(11.0))
    udp.send("c", b"KSNU" + blob("blocked:ksnu", 160))
    cap.emit(udp.t + 300 * US, DP, AGENT, ICMP(type=3, code=3) / Raw(udp.last_packet()))
    cap.label(udp, "dp_ksn_proxy_udp", "blocked_icmp", None,
              "KSN proxy not running: ICMP type 3 code 3 (port unreachable) from the DP quoting the datagram")

    # DNS without an answer (sent twice, same id and port)
    b.dns(AGENT, "eu2.ksc.kaspersky.com", None, 12.0, answered=False, retries=1)
    return cap


def build_unexpected_agent(pki: PKI) -> Capture:
    cap = Capture("unexpected_agent.pcap", vantage=(AGENT,))
    b = Builder(cap, pki)
    eu1 = "eu1.ksc.kaspersky.com"
    trust = (pki.root,)

    b.dns(AGENT, eu1, [KSC_EU1.ip], 0.0)
    tcp = b.tcp(AGENT, KSC_EU1, 23101, 0.05)
    b.tls_session(tcp, ksc_spec(b), [("c", blob("u:ok", 400)), ("s", blob("u:ok2", 900))], what="control")
    cap.label(tcp, "agent_connection", "ok", eu1, "control flow")

    other = Host("ksc-eu1.example.net", "203.0.113.66", ttl=50)
    b.dns(AGENT, "ksc-eu1.example.net", [other.ip], 1.0)
    tcp = b.tcp(AGENT, other, 23101, 1.05)
    b.tls_session(tcp, TlsSpec(pki.leaf(["ksc-eu1.example.net"]), "ksc-eu1.example.net", TLS13, trust),
                  [("c", blob("u:foreign", 400)), ("s", blob("u:foreign2", 700))], what="foreign 23101")
    cap.label(tcp, "agent_connection", "unexpected_host", "ksc-eu1.example.net",
              "KSC agent port on a host that is not under ksc.kaspersky.com (DNS + SNI say ksc-eu1.example.net)")

    trap = Host("myksc.kaspersky.com", "203.0.113.67", ttl=50)
    b.dns(AGENT, "myksc.kaspersky.com", [trap.ip], 2.0)
    tcp = b.tcp(AGENT, trap, 443, 2.05)
    b.tls_session(tcp, TlsSpec(pki.leaf(["myksc.kaspersky.com"]), "myksc.kaspersky.com", TLS13, trust), [
        ("c", http_request("GET", "/v1/discovery", "myksc.kaspersky.com")),
        ("s", http_response("200 OK", "application/json", b'{"servers":[]}')),
    ], what="suffix trap")
    cap.label(tcp, "discovery_https", "unexpected_host", "myksc.kaspersky.com",
              "suffix trap: 'myksc.kaspersky.com' ends with the string 'ksc.kaspersky.com' but is not under it")

    crl = Host("crl.example.com", "203.0.113.68", ttl=50)
    b.dns(AGENT, "crl.example.com", [crl.ip], 3.0)
    tcp = b.tcp(AGENT, crl, 80, 3.05)
    tcp.open()
    tcp.talk([("c", http_request("GET", "/root.crl", "crl.example.com")),
              ("s", http_response("200 OK", "application/pkix-crl", pki.crl(pki.issuing, OCSP_TIME)))])
    tcp.close("s")
    cap.label(tcp, "cert_check_http", "unexpected_host", "crl.example.com",
              "plain HTTP on port 80 to a host that is not under digicert.com")

    b.dns(AGENT, eu1, [KSC_EU1.ip], 4.0)
    tcp = b.tcp(AGENT, KSC_EU1, 23110, 4.05)
    tcp.open()
    tcp.talk([("c", http_request("GET", "/", eu1)),
              ("s", http_response("200 OK", "text/html", b"<html><body>It works</body></html>\n"))])
    tcp.close("s")
    cap.label(tcp, "agent_connection", "unexpected_protocol", eu1,
              "plaintext HTTP GET on an agent TLS port; a plain HTTP server answers 200 (no TLS at all)")

    tcp = b.tcp(AGENT, DP, 13000, 5.0)
    pair = TlsPair(pki, TlsSpec(b.dp_cert, None, TLS13), b.tls_label("not_tls 13000"))
    request = http_request("GET", "/", "192.0.2.20:13000")
    answer = pair.feed_plaintext_to_server(request)
    tcp.open()
    tcp.send("c", request, ack=not answer)
    if answer:
        tcp.send("s", answer)
    tcp.close("s")
    cap.label(tcp, "dp_agent_connection", "unexpected_protocol", "192.0.2.20",
              "plaintext HTTP GET to the distribution point's TLS port (Host: 192.0.2.20:13000); the real "
              "OpenSSL server rejects it (" + (pair.server_alert_description() or "no alert")
              + ") and closes")
    return cap


def build_unexpected_port_direction(pki: PKI) -> Capture:
    """Flows whose verdicts acceptance.py has no name for: only an .extra-labels.json file."""
    cap = Capture("unexpected_port_direction_agent.pcap", vantage=(AGENT,))
    b = Builder(cap, pki)

    flow = b.dns(AGENT, "eu2.ksc.kaspersky.com", [KSC_EU2.ip], 0.0, label=False)
    cap.label(flow, "dns", "ok", "eu2.ksc.kaspersky.com",
              f"DNS A query for eu2.ksc.kaspersky.com -> {KSC_EU2.ip}", extra=True)
    tcp = b.tcp(AGENT, KSC_EU2, 8443, 0.05)
    b.tls_session(tcp, TlsSpec(b.ksc_cert, "eu2.ksc.kaspersky.com", TLS13, (pki.root,)), [
        ("c", blob("p:8443", 500)), ("s", blob("p:8443b", 1500)),
    ], what="undocumented port")
    cap.label(tcp, "", "unexpected_undocumented_port", "eu2.ksc.kaspersky.com",
              "TLS with SNI eu2.ksc.kaspersky.com (a KSC name) to port 8443, which no documented rule has",
              extra=True)

    # wrong direction: the cloud opens a connection FROM its port 23101 TO the agent
    tcp = Tcp(cap, KSC_EU1, 23101, AGENT, 40001, cap.at(1.0), CLOUD_RTT, near="s")
    tcp.open()
    tcp.talk([("c", blob("wrongdir:hello", 48)), ("s", blob("wrongdir:reply", 32))])
    tcp.close("s")
    cap.label(tcp, "agent_connection", "unexpected_wrong_direction", None,
              "SYN from 203.0.113.10:23101 to the agent 192.0.2.10:40001, answered: the cloud's documented "
              "server port used as the SOURCE of a connection the cloud opened (inbound to the agent)",
              extra=True)

    ntp = Host("time.example.org", "203.0.113.123", ttl=54)
    flow = b.dns(AGENT, "time.example.org", [ntp.ip], 2.0, label=False)
    cap.label(flow, "dns", "ok", "time.example.org",
              f"DNS A query for time.example.org -> {ntp.ip}", extra=True)
    udp = Udp(cap, AGENT, 123, ntp, 123, cap.at(2.05))
    udp.send("c", b"\x23" + bytes(39) + blob("ntp:xmt", 8))
    udp.send("s", b"\x24\x02\x00\xe7" + blob("ntp:resp", 44), delay=CLOUD_RTT)
    cap.label(udp, "", "unclassified", None,
              "NTP (UDP 123 -> 123) to time.example.org: no documented KSC rule covers it", extra=True)
    return cap


def build_intercepted(pki: PKI) -> Capture:
    cap = Capture("intercepted_tls12.pcap", vantage=(AGENT,))
    b = Builder(cap, pki)
    eu1 = "eu1.ksc.kaspersky.com"
    proxy_cert = pki.leaf(["proxy.corp.example"], issuer=pki.corp_root)

    # 1: the agent does not trust the inspection CA: fatal alert from the client
    b.dns(AGENT, eu1, [KSC_EU1.ip], 0.0)
    tcp = b.tcp(AGENT, KSC_EU1, 27201, 0.05, rtt=3 * MS)   # the proxy sits close to the agent
    pair = TlsPair(pki, TlsSpec(proxy_cert, eu1, TLS12, trust=(pki.root,)), b.tls_label("intercepted abort"))
    flights = pair.handshake()
    assert pair.failed and pair.failed[0] == "c" and flights[-1][0] == "c", pair.failed
    alert = flights[-1][1]
    assert alert[0] == 21 and alert[5] == 2, alert.hex()          # alert record, level fatal
    alert_name = {42: "bad_certificate", 46: "certificate_unknown", 48: "unknown_ca"}.get(alert[6], str(alert[6]))
    tcp.open()
    tcp.talk(flights, final_ack=False)   # the client's alert, then its FIN
    tcp.close("c")
    cap.label(tcp, "activation", "tls_intercepted", eu1,
              "TLS-inspecting proxy answers for 203.0.113.10 (TLS 1.2) with a certificate for proxy.corp.example "
              f"issued by 'Corp Inspection CA'; the agent does not trust it and aborts with a fatal {alert_name} "
              "alert, then FIN")

    # 2: this client trusts the inspection CA: the handshake completes, data flows
    b.dns(AGENT, eu1, [KSC_EU1.ip], 5.0)
    tcp = b.tcp(AGENT, KSC_EU1, 27201, 5.05, rtt=3 * MS)
    spec = TlsSpec(proxy_cert, eu1, TLS12, trust=(pki.corp_root,), check_hostname=False)
    b.tls_session(tcp, spec, [
        ("c", blob("activation:request", 1320)),
        ("s", blob("activation:proxied-ticket", 2210)),
    ], what="intercepted accepted")
    cap.label(tcp, "activation", "tls_intercepted", eu1,
              "same proxy, but this client trusts 'Corp Inspection CA' (and skips the name check): the TLS 1.2 "
              "handshake completes and application data flows, yet the certificate is for proxy.corp.example, "
              "not the name asked (eu1.ksc.kaspersky.com)")
    return cap


def build_ipv6(pki: PKI) -> Capture:
    cap = Capture("ipv6_agent.pcap", vantage=(AGENT6,))
    b = Builder(cap, pki)
    eu1 = "eu1.ksc.kaspersky.com"

    b.dns(AGENT6, eu1, [KSC6.ip], 0.0, qtype="AAAA")
    tcp = b.tcp(AGENT6, KSC6, 23101, 0.05)
    b.tls_session(tcp, ksc_spec(b), [
        ("c", blob("v6:login", 612)),
        ("s", blob("v6:policy", 3950)),
        *b.heartbeat_script(3, 2.0, "v6"),
    ], what="agent_connection v6")
    cap.label(tcp, "agent_connection", "ok", eu1, "agent session over IPv6, TLS 1.3 (MSS 1440)")

    b.dns(AGENT6, eu1, [KSC6.ip], 1.0, qtype="AAAA")
    tcp = b.tcp(AGENT6, KSC6, 27201, 1.05)
    tcp.syn()
    for backoff in (1, 2, 4):
        tcp.syn(delay=backoff * S)
    cap.label(tcp, "activation", "blocked_no_answer", None,
              "IPv6 SYN + 3 retransmissions (same ISN), no answer (client intended eu1.ksc.kaspersky.com)")

    b.dns(AGENT6, "ksn-a.kaspersky.com", [KSN6.ip], 9.0, qtype="AAAA")
    tcp = b.tcp(AGENT6, KSN6, 1443, 9.05)
    syn = tcp.syn()
    cap.emit(tcp.t + 2 * MS, ROUTER6, AGENT6, ICMPv6DestUnreach(code=1) / Raw(syn))
    cap.label(tcp, "ksn", "blocked_icmp", None,
              "ICMPv6 destination unreachable type 1 code 1 (administratively prohibited) from the router, "
              "quoting the SYN (client resolved ksn-a.kaspersky.com)")

    udp = Udp(cap, DP6, cap.port(), MCAST6, 15001, cap.at(10.0))
    udp.send("c", b"KLMC" + blob("mcast6:1", 260))
    udp.send("c", b"KLMC" + blob("mcast6:2", 260), delay=2 * S)
    cap.label(udp, "dp_multicast_udp", "ok", None,
              "IPv6 multicast from the distribution point to ff15::15 port 15001, Ethernet dst 33:33:00:00:00:15")
    return cap


def build_linktype_base(pki: PKI) -> Capture:
    cap = Capture("linktypes", vantage=(AGENT,))
    b = Builder(cap, pki)
    eu1 = "eu1.ksc.kaspersky.com"
    b.dns(AGENT, eu1, [KSC_EU1.ip], 0.0)
    tcp = b.tcp(AGENT, KSC_EU1, 23101, 0.05)
    b.tls_session(tcp, ksc_spec(b), [
        ("c", blob("lt:login", 612)),
        ("s", blob("lt:policy", 2900)),
        *b.heartbeat_script(2, 1.0, "lt"),
    ], what="linktype agent_connection")
    cap.label(tcp, "agent_connection", "ok", eu1, "agent session, TLS 1.3")
    return cap


def build_midstream(pki: PKI) -> Capture:
    cap = Capture("midstream_agent.pcap", vantage=(AGENT,), t0=BASE_NS - 60 * S)
    b = Builder(cap, pki)
    eu1 = "eu1.ksc.kaspersky.com"

    # A: began a minute before the capture started: handshake long gone
    b.dns(AGENT, eu1, [KSC_EU1.ip], 0.0, label=False)
    long = b.tcp(AGENT, KSC_EU1, 23101, 0.05)
    b.tls_session(long, ksc_spec(b), [
        ("c", blob("mid:login", 612)),
        ("s", blob("mid:policy", 3950)),
        *b.heartbeat_script(45, 2.0, "mid"),
    ], what="midstream long")

    # B: its SYN left just before the capture started; the capture's first packet is the SYN-ACK
    start = cap.at(60.0)
    while any(start - 5 * MS <= r.ts_ns <= start + 100 * MS for r in cap.recs):
        start += 50 * MS
    tunnel = b.tcp(AGENT, KSC_EU1, 29201, start)
    b.tls_session(tunnel, ksc_spec(b), [
        ("c", blob("mid:tunnel", 300)), ("s", blob("mid:tunnel2", 2400)),
    ], what="midstream synack")
    synack_ts = next(r.ts_ns for r in cap.recs
                     if r.l3 == tunnel.packets[1])
    cap.cut_before(synack_ts)
    first = cap.sorted_recs()[0]
    assert first.l3 == tunnel.packets[1], "capture must start with the SYN-ACK"

    b.dns(AGENT, "discovery.ksc.kaspersky.com", [KSC_DISCOVERY.ip], 70.0)
    tcp = b.tcp(AGENT, KSC_DISCOVERY, 443, 70.05)
    b.tls_session(tcp, ksc_spec(b, sni="discovery.ksc.kaspersky.com"), [
        ("c", http_request("GET", "/v1/discovery", "discovery.ksc.kaspersky.com")),
        ("s", http_response("200 OK", "application/json", b'{"servers":["eu1.ksc.kaspersky.com:23101"]}')),
    ], what="midstream discovery")
    cap.label(tcp, "discovery_https", "ok", "discovery.ksc.kaspersky.com", "complete HTTPS discovery flow, TLS 1.3")

    long.first_ts = synack_ts  # sort position in the labels: present from the capture start
    cap.label(long, "agent_connection", "ok_partial_capture", None,
              "long-lived agent session (TLS 1.3 heartbeats every 2 s) whose SYN and TLS handshake happened "
              "before the capture started; only application data and the final FIN exchange are captured. "
              "True name eu1.ksc.kaspersky.com is NOT visible in this capture")
    tunnel.first_ts = synack_ts
    cap.label(tunnel, "klsctunnel", "ok_partial_capture", eu1,
              "the capture starts with this flow's SYN-ACK (the SYN was sent before capture start); "
              "the ClientHello with SNI is captured")
    return cap


HOSTILE = {
    "escape_red": "\x1b[31mred\x1b[0m.example.net",
    "osc_title": "\x1b]0;title\x07.example.org",
    "script": "<script>alert(1)</script>",
    "csv": '=HYPERLINK("http://x")',
    "backspace_host": "ocsp.digicert.com" + "\x08" * 17 + "evil.example",
    "ctrl_dns": "nul\x00tab\tcr\rlf\n.example.net",
}
INVALID_UTF8_NAME = b"\xff\xfe.example.net"


def build_hostile(pki: PKI) -> Capture:
    cap = Capture("hostile_names.pcap", vantage=(AGENT,))
    b = Builder(cap, pki)
    hosts = {k: Host(k, f"203.0.113.{70 + i}", ttl=49) for i, k in enumerate(HOSTILE)}
    placeholder = "placeholder.invalid"

    def hostile_tls(key: str, port: int, version, purpose: str, t: float, why: str) -> None:
        name = HOSTILE[key]
        b.dns(AGENT, name, [hosts[key].ip], t)
        tcp = b.tcp(AGENT, hosts[key], port, t + 0.05)
        # the server's certificate is for the hostile name itself (visible in TLS 1.2): no interception
        spec = TlsSpec(pki.leaf([name]), placeholder, version, trust=())
        b.tls_session(tcp, spec, [("c", blob(f"hostile:{key}", 300)), ("s", blob(f"hostile:{key}:r", 600))],
                      what=f"hostile {key}", sni_override=name.encode("latin-1"))
        cap.label(tcp, purpose, "unexpected_host", name_text(name.encode("latin-1")),
                  f"SNI {name!r} (hand-crafted ClientHello): {why}; the server certificate names the same "
                  "string; the name is not under the documented mask")

    hostile_tls("escape_red", 23101, TLS13, "agent_connection", 0.0,
                "ANSI colour escape sequences (ESC [31m / ESC [0m) in the name")
    hostile_tls("osc_title", 27201, TLS12, "activation", 1.0,
                "OSC terminal-title sequence (ESC ]0;title BEL) in the name, TLS 1.2")
    hostile_tls("script", 443, TLS13, "discovery_https", 2.0, "HTML/script injection as the server name")
    hostile_tls("csv", 29201, TLS13, "klsctunnel", 3.0, "spreadsheet formula (CSV injection) as the server name")

    key = "backspace_host"
    name = HOSTILE[key]
    b.dns(AGENT, name, [hosts[key].ip], 4.0)
    tcp = b.tcp(AGENT, hosts[key], 80, 4.05)
    tcp.open()
    tcp.talk([("c", http_request("GET", pki.ocsp_request_path(b.ksc_cert), name.encode("latin-1"))),
              ("s", http_response("200 OK", "application/ocsp-response", pki.ocsp_response(b.ksc_cert, OCSP_TIME)))])
    tcp.close("s")
    cap.label(tcp, "cert_check_http", "unexpected_host", name_text(name.encode("latin-1")),
              "HTTP Host with 17 backspaces: a terminal shows 'evil.example' written over "
              "'ocsp.digicert.com'; the name ends with evil.example, not digicert.com")

    b.dns(AGENT, HOSTILE["ctrl_dns"], None, 5.0, rcode=3)

    bad = Host("invalid-utf8", "203.0.113.79", ttl=49)
    flow = b.dns(AGENT, INVALID_UTF8_NAME, [bad.ip], 6.0, label=False)
    cap.label(flow, "dns", "ok", name_text(INVALID_UTF8_NAME, dns=True),
              r"DNS A query for a name whose first label is the bytes \xff\xfe (invalid UTF-8): "
              r"b'\xff\xfe.example.net' -> 203.0.113.79 (in name text: \xff\xfe.example.net)")
    tcp = b.ksn_plain(AGENT, bad, 1443, 6.05)
    cap.label(tcp, "ksn", "ok", None,
              r"plain TCP KSN exchange to the address that b'\xff\xfe.example.net' resolved to; KSN has no "
              "documented destination mask, so the name does not matter")
    return cap


# ---------------------------------------------------------------------------------------------
# Writers
# ---------------------------------------------------------------------------------------------

LINKTYPE = {"ether": 1, "vlan": 1, "qinq": 1, "raw": 101, "null": 0, "sll2": 276}


def _mac(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def frame(rec: Rec, link: str) -> bytes:
    etype = 0x86DD if rec.ipver == 6 else 0x0800
    if link == "ether":
        return bytes(Ether(dst=rec.dst_mac, src=rec.src_mac, type=etype)) + rec.l3
    if link == "vlan":
        return bytes(Ether(dst=rec.dst_mac, src=rec.src_mac, type=0x8100) / Dot1Q(vlan=100, type=etype)) + rec.l3
    if link == "qinq":
        return bytes(Ether(dst=rec.dst_mac, src=rec.src_mac, type=0x88A8)
                     / Dot1AD(vlan=200, type=0x8100) / Dot1Q(vlan=100, type=etype)) + rec.l3
    if link == "raw":
        return rec.l3
    if link == "null":
        return bytes(Loopback(type=2 if rec.ipver == 4 else 30)) + rec.l3
    if link == "sll2":
        if rec.outgoing:
            pkttype = 4
        elif rec.dst_mac == "ff:ff:ff:ff:ff:ff":
            pkttype = 1
        elif _mac(rec.dst_mac)[0] & 1:
            pkttype = 2
        elif rec.incoming:
            pkttype = 0
        else:
            pkttype = 3
        return bytes(CookedLinuxV2(proto=etype, ifindex=2, lladdrtype=1, pkttype=pkttype, lladdrlen=6,
                                   src=_mac(rec.src_mac) + b"\0\0")) + rec.l3
    raise ValueError(link)


def write_pcap(path: Path, recs: list[Rec], link: str, nano: bool = False) -> None:
    writer = RawPcapWriter(str(path), linktype=LINKTYPE[link], endianness="<", nano=nano, snaplen=262144)
    writer.linktype = LINKTYPE[link]   # scapy ignores a falsy linktype (NULL is 0)
    try:
        writer._write_header(None)     # write_packet() alone does not write the file header
        for rec in recs:
            sec, frac = divmod(rec.ts_ns, S)
            writer.write_packet(frame(rec, link), sec=sec, usec=frac if nano else frac // US)
    finally:
        writer.close()


class MultiInterfacePcapNgWriter(RawPcapNgWriter):
    """scapy's pcapng writer, with interfaces declared up front, each with its own if_tsresol, and an
    SHB that names the generator (scapy writes one tsresol and no SHB options)."""

    def __init__(self, filename: str, interfaces: list[tuple[str, int, int]]) -> None:
        super().__init__(filename)
        self.ifaces = interfaces  # (name, linktype, tsresol exponent of 10)

    def _opt(self, code: int, value: bytes) -> bytes:
        return struct.pack("<HH", code, len(value)) + self._add_padding(value)

    def write_headers(self) -> None:
        shb = self.endian_magic + struct.pack("<HHq", 1, 0, -1)
        opts = self._opt(4, b"kscc-traffic samples/generate.py") + struct.pack("<HH", 0, 0)
        self.f.write(self.build_block(b"\x0A\x0D\x0D\x0A", shb, options=opts))
        for name, linktype, resol in self.ifaces:
            idb = struct.pack("<HHI", linktype, 0, 262144)
            opts = self._opt(2, name.encode()) + self._opt(9, bytes([resol])) + struct.pack("<HH", 0, 0)
            self.f.write(self.build_block(struct.pack("<I", 1), idb, options=opts))
        self.header_present = True

    def write_epb(self, data: bytes, iface: int, ts_ns: int) -> None:
        resol = self.ifaces[iface][2]
        ticks = ts_ns // 10 ** (9 - resol)
        body = struct.pack("<IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF, len(data), len(data)) + data
        self.f.write(self.build_block(struct.pack("<I", 6), body))


def write_pcapng(path: Path, recs: list[Rec], ifaces: list[tuple[str, str, int]]) -> None:
    writer = MultiInterfacePcapNgWriter(str(path), [(n, LINKTYPE[link], r) for n, link, r in ifaces])
    try:
        writer.write_headers()
        for rec in recs:
            writer.write_epb(frame(rec, ifaces[rec.iface][1]), rec.iface, rec.ts_ns)
    finally:
        writer.f.close()


def write_labels(path: Path, labels: list[dict]) -> None:
    path.write_text(json.dumps(labels, indent=1, ensure_ascii=True) + "\n", encoding="ascii")


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

LINKTYPE_VARIANTS = [
    ("agent_ether.pcap", "ether", "Ethernet II (linktype 1), reference"),
    ("agent_vlan.pcap", "vlan", "Ethernet + 802.1Q VLAN 100"),
    ("agent_qinq.pcap", "qinq", "Ethernet + 802.1ad S-tag 200 (0x88a8) + 802.1Q C-tag 100 (QinQ)"),
    ("agent_sll2.pcap", "sll2", "Linux cooked capture v2 (SLL2, linktype 276)"),
    ("agent_raw.pcap", "raw", "raw IP (linktype 101), no link header"),
    ("agent_null.pcap", "null", "BSD loopback NULL (linktype 0), 4-byte little-endian family AF_INET"),
]


def generate(out: Path) -> list[Path]:
    """Write every capture and label file into out; return the written paths (relative to out)."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def put_labels(cap: Capture, rel: str, labels=None, extra=None) -> None:
        labels = cap.label_list("labels") if labels is None else labels
        extra = cap.label_list("extra") if extra is None else extra
        if labels:
            write_labels(out / f"{rel}.labels.json", labels)
            written.append(Path(f"{rel}.labels.json"))
        if extra:
            write_labels(out / f"{rel}.extra-labels.json", extra)
            written.append(Path(f"{rel}.extra-labels.json"))

    with tempfile.TemporaryDirectory(prefix="kscc-samples-") as tmp:
        pki = PKI(Path(tmp))
        simple = [
            (build_baseline_agent, "ether", False),
            (build_blocked_agent, "ether", False),
            (build_unexpected_agent, "ether", False),
            (build_unexpected_port_direction, "ether", False),
            (build_intercepted, "ether", False),
            (build_ipv6, "ether", True),
            (build_midstream, "ether", False),
            (build_hostile, "ether", False),
        ]
        for build, link, nano in simple:
            cap = build(pki)
            write_pcap(out / cap.name, cap.sorted_recs(), link, nano=nano)
            written.append(Path(cap.name))
            put_labels(cap, cap.name)

        cap = build_baseline_dp(pki)
        write_pcapng(out / cap.name, cap.sorted_recs(), [("eth0", "ether", 6), ("any", "sll2", 9)])
        written.append(Path(cap.name))
        put_labels(cap, cap.name)

        cap = build_linktype_base(pki)
        (out / "linktypes").mkdir(exist_ok=True)
        for fname, link, what in LINKTYPE_VARIANTS:
            rel = f"linktypes/{fname}"
            write_pcap(out / rel, cap.sorted_recs(), link)
            written.append(Path(rel))
            labels = [dict(lab, notes=f"{lab['notes']} [{what}]") for lab in cap.label_list()]
            put_labels(cap, rel, labels=labels, extra=[])

    manifest = write_manifest(out, written)
    written.append(manifest)
    # remove stale files that an earlier version of this script wrote
    keep = {str(p) for p in written}
    for path in sorted(out.rglob("*")):
        rel = str(path.relative_to(out))
        if path.is_file() and rel not in keep and path.suffix in (".pcap", ".pcapng", ".json", ".tsv"):
            path.unlink()
    return written


def environment() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "openssl": ssl.OPENSSL_VERSION,
        "scapy": scapy.VERSION,
        "cryptography": cryptography.__version__,
        "tls_deterministic": "yes" if RAND.active else "no",
    }


def write_manifest(out: Path, written: list[Path]) -> Path:
    env = environment()
    lines = ["# samples/captures written by samples/generate.py; do not edit by hand"]
    lines += [f"# {k}\t{v}" for k, v in env.items()]
    lines.append("file\tbytes\tsha256")
    for rel in sorted(written, key=str):
        data = (out / rel).read_bytes()
        lines.append(f"{rel}\t{len(data)}\t{hashlib.sha256(data).hexdigest()}")
    path = Path("MANIFEST.tsv")
    (out / path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def update_expected(out: Path, expected: Path, captures: list[Path]) -> int:
    """Write ``expected/<capture>.flows.csv``: what ``kscc-traffic analyze <capture> --format csv``
    writes (the command line of this checkout, run on the capture alone), byte for byte.
    Returns 0, or 1 when the command line fails on a capture (its stderr printed)."""
    import subprocess
    root = HERE.parent
    if not (root / "kscc_traffic" / "cli.py").is_file():
        print("--update-expected: kscc_traffic's command line not found; skipped")
        return 0
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    expected.mkdir(parents=True, exist_ok=True)
    for rel in captures:
        target = expected / f"{rel}.flows.csv"
        target.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", str(out / rel),
                               "--format", "csv", "--output", str(target), "--jobs", "1"],
                              env=env, cwd=root, capture_output=True, text=True, timeout=300)
        if proc.returncode not in (0, 1):      # 1: something blocked or unexpected (expected)
            print(f"--update-expected: kscc-traffic analyze {rel} failed ({proc.returncode}): "
                  f"{proc.stderr.strip()}", file=sys.stderr)
            return 1
        print(f"wrote {target}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default samples/captures)")
    parser.add_argument("--update-expected", action="store_true",
                        help="also write <expected-dir>/<capture>.flows.csv: what "
                             "`kscc-traffic analyze <capture> --format csv` writes")
    parser.add_argument("--expected-dir", type=Path, default=DEFAULT_EXPECTED)
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)

    with RAND:
        if not RAND.active:
            print(f"warning: OpenSSL RNG hook unavailable ({RAND.problem}): TLS record contents will "
                  "differ between runs (sizes and structure do not)", file=sys.stderr)
        written = generate(args.out)
        tls_ok = RAND.active
    if not args.quiet:
        for rel in written:
            print(f"wrote {args.out / rel}")
        print(f"tls_deterministic: {'yes' if tls_ok else 'no'}")
    if args.update_expected:
        captures = [p for p in written if p.suffix in (".pcap", ".pcapng")]
        return update_expected(args.out, args.expected_dir, captures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
