"""TLS handshake inspection over reassembled byte streams (RFC 5246 TLS 1.2, RFC 8446 TLS 1.3).

The flow builder hands over the first ~16 KiB of each TCP direction in sequence order; these
functions walk the TLS records (5-byte header: content type, version, length — RFC 8446 §5.1) of
each direction, reassemble handshake messages that span records, and stop at the first record
header that is not TLS (a desynchronised or non-TLS stream) — everything seen before is kept.

All parsers are total: any input gives a partial result, ``None`` or ``False``; nothing raises,
work is linear in the input. Names (SNI, ALPN) are decoded with
:func:`kscc_traffic.protocols.dns.text_from_bytes` (UTF-8, ``\\xNN`` for anything else — see the
module docstring of :mod:`.dns`).

GREASE values (RFC 8701: 0x?A?A with both bytes equal) are dropped from every list.

Version numbers are the wire values: 0x0300 SSL 3.0, 0x0301 TLS 1.0, 0x0302 TLS 1.1,
0x0303 TLS 1.2, 0x0304 TLS 1.3; 0x0002 for an SSLv2-compatible hello.
"""
from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from .dns import host_text, text_from_bytes
from ..text import CONTROL

__all__ = [
    "ClientHello",
    "ServerHello",
    "TlsSummary",
    "looks_like_tls",
    "parse_client_hello",
    "parse_server_hello",
    "hello_copies",
    "offer_text",
    "certificate_validity",
    "version_name",
    "summarize",
    "flight_short",
    "certificate_names",
    "name_matches",
    "under_mask",
    "is_grease",
    "TLS1_2",
    "TLS1_3",
]

TLS1_0 = 0x0301
TLS1_2 = 0x0303
TLS1_3 = 0x0304

CT_CCS = 20
CT_ALERT = 21
CT_HANDSHAKE = 22
CT_APP_DATA = 23
CT_HEARTBEAT = 24

HS_CLIENT_HELLO = 1
HS_SERVER_HELLO = 2
HS_CERTIFICATE = 11
HS_CERTIFICATE_REQUEST = 13

EXT_SERVER_NAME = 0
EXT_SUPPORTED_GROUPS = 10
EXT_ALPN = 16
EXT_SUPPORTED_VERSIONS = 43
EXT_KEY_SHARE = 51
EXT_ECH = 0xFE0D  # draft-ietf-tls-esni (encrypted_client_hello)

#: RFC 8446 §4.1.3: the ServerHello.random of a HelloRetryRequest (SHA-256 of "HelloRetryRequest")
HRR_RANDOM = bytes.fromhex("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C")

#: largest record body we accept: 2^14 + 2048 (TLSCiphertext limit of RFC 5246 §6.2.3)
MAX_RECORD = (1 << 14) + 2048


def is_grease(v: int) -> bool:
    """RFC 8701 GREASE code point (0x0a0a, 0x1a1a, ..., 0xfafa)."""
    return (v & 0x0F0F) == 0x0A0A and (v >> 8) == (v & 0xFF)


def _u16(b: bytes, i: int) -> int:
    return (b[i] << 8) | b[i + 1]


def _u24(b: bytes, i: int) -> int:
    return (b[i] << 16) | (b[i + 1] << 8) | b[i + 2]


# --------------------------------------------------------------------------- records

def _sslv2_hello_header(data: bytes) -> tuple[int, int] | None:
    """(message length, version) of an SSLv2-compatible ClientHello (RFC 5246 Appendix E.2)."""
    if len(data) < 5 or not data[0] & 0x80 or data[2] != 1:
        return None
    ln = ((data[0] & 0x7F) << 8) | data[1]
    ver = _u16(data, 3)
    if ver != 0x0002 and not (0x0300 <= ver <= TLS1_3):
        return None
    if ln < 9:  # msg_type + version + three 2-byte lengths
        return None
    return ln, ver


#: empty records of other types than application data a stream may start with and still be TLS
#: when a hello follows them (RFC 8446 §5.1 forbids them for handshake, alert and change_cipher_spec,
#: yet OpenSSL accepts up to 32 in a row and Wireshark dissects them as TLS records:
#: :func:`looks_like_tls`; Skype's look-alike, an empty handshake record and then no hello, is not TLS)
MAX_EMPTY_RECORDS = 32


def looks_like_tls(data: bytes | bytearray | memoryview) -> bool:
    """True when ``data`` starts with a plausible TLS record header: content type 20-24, version
    0x0300-0x0304, length 1..2^14+2048 (0 allowed for application data; for the other types
    when, past at most :data:`MAX_EMPTY_RECORDS` such empty records, a handshake record follows
    whose first byte is a ClientHello's or ServerHello's (1, 2): the record parse reads on past
    them too) — or with an SSLv2-compatible ClientHello (2-byte header with the high bit set,
    msg_type 1, version 0x0002/0x0300-0x0304). Needs at least 5 bytes."""
    try:
        off = 0
        for _ in range(MAX_EMPTY_RECORDS + 1):
            b = bytes(data[off:off + 5])
            if len(b) < 5:
                return False
            ct, major, minor, ln = b[0], b[1], b[2], _u16(b, 3)
            if not (CT_CCS <= ct <= CT_HEARTBEAT and major == 3 and minor <= 4):
                return off == 0 and _sslv2_hello_header(b) is not None
            if ln > 0 or ct == CT_APP_DATA:
                return ln <= MAX_RECORD and (off == 0 or (ct == CT_HANDSHAKE and len(data) > off + 5
                                                          and data[off + 5] in (1, 2)))
            off += 5                                    # an empty record: the next one decides
        return False
    except Exception:  # pragma: no cover
        return False


def _records(data: bytes) -> Iterator[tuple[int, int, bytes, bool]]:
    """Yield ``(content_type, record_version, body, whole)`` for each record until the data ends
    or a header is not TLS. The last body may be cut (``whole`` False)."""
    n = len(data)
    off = 0
    while off + 5 <= n:
        ct = data[off]
        if not (CT_CCS <= ct <= CT_HEARTBEAT) or data[off + 1] != 3 or data[off + 2] > 4:
            return
        ln = _u16(data, off + 3)
        if ln > MAX_RECORD:
            return
        body = data[off + 5:off + 5 + ln]
        yield ct, _u16(data, off + 1), body, len(body) == ln
        off += 5 + ln


# --------------------------------------------------------------------------- ClientHello

@dataclass
class ClientHello:
    """What a ClientHello says (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2).

    ``sni``: the first host_name (type 0) entry of server_name (RFC 6066 §3); with ECH this is the
    *outer* (public) name, which is what we report. ``legacy_version``: the hello's version field.
    ``supported_versions``: from extension 43 (GREASE removed), in the client's order.
    ``alpn``: protocol names offered (RFC 7301). ``ech``: extension 0xfe0d present.
    ``complete``: the whole handshake message was present (else the fields come from the part we
    had; an extension cut in the middle is ignored). ``cipher_suites``/``extensions``/
    ``supported_groups``/``key_share_groups``: code points in order, GREASE removed (e.g. 0x11ec
    X25519MLKEM768). ``sslv2``: an SSLv2-compatible hello (no extensions, so no SNI).
    """

    sni: str | None
    legacy_version: int
    supported_versions: list[int] = field(default_factory=list)
    alpn: list[str] = field(default_factory=list)
    ech: bool = False
    complete: bool = False
    cipher_suites: list[int] = field(default_factory=list)
    extensions: list[int] = field(default_factory=list)
    supported_groups: list[int] = field(default_factory=list)
    key_share_groups: list[int] = field(default_factory=list)
    sslv2: bool = False
    #: entries of the cipher suite list as sent (its length field / 2: GREASE and signalling values
    #: included, as Wireshark's "Cipher Suites (N suites)"); 0 for an SSLv2-compatible hello
    suites_listed: int = 0

    @property
    def max_version(self) -> int:
        """Highest version offered: max(supported_versions) or legacy_version."""
        return max(self.supported_versions) if self.supported_versions else self.legacy_version


_GREASE = frozenset(0x0A0A + 0x1010 * i for i in range(16))


def _u16_list(b: bytes, start: int, end: int) -> list[int]:
    k = (min(end, len(b)) - start) // 2
    if k <= 0:
        return []
    return [v for v in struct.unpack_from(f"!{k}H", b, start) if v not in _GREASE]


def _parse_sni(ext: bytes) -> str | None:
    if len(ext) < 2:
        return None
    end = min(len(ext), 2 + _u16(ext, 0))
    i = 2
    while i + 3 <= end:
        typ = ext[i]
        ln = _u16(ext, i + 1)
        if i + 3 + ln > end:
            return None
        if typ == 0:
            return host_text(ext[i + 3:i + 3 + ln])
        i += 3 + ln
    return None


def _parse_alpn(ext: bytes) -> list[str]:
    out: list[str] = []
    if len(ext) < 2:
        return out
    end = min(len(ext), 2 + _u16(ext, 0))
    i = 2
    while i < end:
        ln = ext[i]
        if i + 1 + ln > end:
            break
        proto = ext[i + 1:i + 1 + ln]
        if not (ln == 2 and is_grease(_u16(proto, 0))):
            out.append(text_from_bytes(proto))
        i += 1 + ln
    return out


def _parse_key_share_ch(ext: bytes) -> list[int]:
    out: list[int] = []
    if len(ext) < 2:
        return out
    end = min(len(ext), 2 + _u16(ext, 0))
    i = 2
    while i + 4 <= end:
        grp = _u16(ext, i)
        ln = _u16(ext, i + 2)
        if i + 4 + ln > end:
            break
        if not is_grease(grp):
            out.append(grp)
        i += 4 + ln
    return out


def _client_hello_body(body: bytes, complete: bool) -> ClientHello | None:
    n = len(body)
    if n < 2:
        return None
    ch = ClientHello(sni=None, legacy_version=_u16(body, 0), complete=complete)
    i = 2 + 32
    if i + 1 > n:
        return ch
    i += 1 + body[i]  # legacy_session_id
    if i + 2 > n:
        return ch
    cs_len = _u16(body, i)
    ch.cipher_suites = _u16_list(body, i + 2, min(n, i + 2 + cs_len))
    ch.suites_listed = cs_len // 2
    i += 2 + cs_len
    if i + 1 > n:
        return ch
    i += 1 + body[i]  # legacy_compression_methods
    if i + 2 > n:
        return ch
    ext_end = min(n, i + 2 + _u16(body, i))
    i += 2
    while i + 4 <= ext_end:
        et = _u16(body, i)
        ln = _u16(body, i + 2)
        if i + 4 + ln > ext_end:
            break  # cut extension: ignored
        ext = body[i + 4:i + 4 + ln]
        i += 4 + ln
        if is_grease(et):
            continue
        ch.extensions.append(et)
        if et == EXT_SERVER_NAME:
            if ch.sni is None:
                ch.sni = _parse_sni(ext)
        elif et == EXT_ALPN:
            ch.alpn = _parse_alpn(ext)
        elif et == EXT_SUPPORTED_VERSIONS:
            if ext:
                ch.supported_versions = _u16_list(ext, 1, min(len(ext), 1 + ext[0]))
        elif et == EXT_SUPPORTED_GROUPS:
            if len(ext) >= 2:
                ch.supported_groups = _u16_list(ext, 2, min(len(ext), 2 + _u16(ext, 0)))
        elif et == EXT_KEY_SHARE:
            ch.key_share_groups = _parse_key_share_ch(ext)
        elif et == EXT_ECH:
            ch.ech = True
    return ch


def _sslv2_client_hello(data: bytes) -> ClientHello | None:
    hdr = _sslv2_hello_header(data)
    if hdr is None:
        return None
    ln, ver = hdr
    complete = len(data) >= 2 + ln
    ch = ClientHello(sni=None, legacy_version=ver, complete=complete, sslv2=True)
    if len(data) >= 11:
        cs_len = _u16(data, 5)
        specs = data[11:min(len(data), 11 + cs_len, 2 + ln)]
        # 3-byte SSLv2 cipher specs; those with a zero first byte are TLS suites
        ch.cipher_suites = [_u16(specs, j + 1) for j in range(0, len(specs) - 2, 3)
                            if specs[j] == 0 and not is_grease(_u16(specs, j + 1))]
    return ch


def _handshake_bytes(data: bytes, want_first: int | None = None) -> bytes:
    """Concatenate the bodies of the leading handshake records (other record types in between
    are skipped). With ``want_first``: stop as soon as the first message is whole."""
    parts: list[bytes] = []
    have = 0
    for ct, _ver, body, _whole in _records(data):
        if ct == CT_HANDSHAKE:
            parts.append(body)
            have += len(body)
            if want_first is not None and have >= 4:
                buf = b"".join(parts)
                if len(buf) >= 4 + _u24(buf, 1):
                    return buf
        elif ct in (CT_APP_DATA,) and parts:
            break
    return b"".join(parts)


def parse_client_hello(client_stream: bytes | bytearray | memoryview) -> ClientHello | None:
    """Parse the first ClientHello of a client byte stream (TLS records, possibly one handshake
    message fragmented over several records, possibly cut at any byte). Also reads an
    SSLv2-compatible ClientHello. None when the stream does not start with a ClientHello."""
    try:
        data = bytes(client_stream)
        if not data:
            return None
        if data[0] & 0x80:
            return _sslv2_client_hello(data)
        hs = _handshake_bytes(data, want_first=HS_CLIENT_HELLO)
        if len(hs) < 4 or hs[0] != HS_CLIENT_HELLO:
            return None
        ln = _u24(hs, 1)
        body = hs[4:4 + ln]
        return _client_hello_body(body, complete=len(body) == ln)
    except Exception:  # pragma: no cover - defensive
        return None


#: the names of the SSL/TLS version numbers (wire values)
VERSION_NAMES = {0x0304: "TLS 1.3", 0x0303: "TLS 1.2", 0x0302: "TLS 1.1", 0x0301: "TLS 1.0", 0x0300: "SSL 3.0"}


def version_name(v) -> str:
    """The name of the SSL/TLS version number ``v`` (``0x0303``: ``TLS 1.2``; :data:`VERSION_NAMES`),
    '' for None, 0 or a number no version has."""
    return VERSION_NAMES.get(v, "") if v else ""


#: the TLS 1.3 cipher suites (RFC 8446 §B.4, RFC 8998): 0x1301-0x1305, 0x00C6-0x00C7
TLS13_SUITES = frozenset((0x1301, 0x1302, 0x1303, 0x1304, 0x1305, 0x00C6, 0x00C7))
#: TLS_AES_128_GCM_SHA256, the cipher suite every TLS 1.3 implementation must support (RFC 8446 §9.1)
TLS13_MANDATORY = 0x1301
#: the four ECDHE AES-GCM suites RFC 9325 §4.2 recommends for TLS 1.2 (ECDHE_ECDSA and ECDHE_RSA,
#: AES-128-GCM-SHA256 and AES-256-GCM-SHA384): a current TLS 1.2 client offers them all
TLS12_ECDHE_GCM = (0xC02B, 0xC02C, 0xC02F, 0xC030)
#: the key-exchange groups x25519 and secp256r1 (RFC 8446 §9.1: secp256r1 MUST, X25519 SHOULD;
#: both are what current clients offer first, and a FIPS-mode client lacks x25519)
OFFER_GROUPS = ((0x001D, "x25519"), (0x0017, "secp256r1"))
#: the signalling values in a cipher suite list that are no suite (RFC 5746, RFC 7507)
_SCSVS = frozenset((0x00FF, 0x5600))


def _offer_versions(ch: ClientHello) -> tuple[bool, bool, str]:
    """(TLS 1.3 offered, TLS 1.2 offered, how the versions offered read) of ``ch``."""
    if ch.supported_versions:
        v13, v12 = TLS1_3 in ch.supported_versions, TLS1_2 in ch.supported_versions
    else:
        v13, v12 = False, ch.legacy_version >= TLS1_2
    if v13:
        return True, v12, "TLS 1.3 and 1.2" if v12 else "TLS 1.3 only"
    top = ch.max_version if ch.max_version <= TLS1_2 else TLS1_2
    return False, v12, f"{version_name(top) or 'SSL 2'} at most"


def offer_text(ch: ClientHello | None) -> tuple[bool, str] | None:
    """Whether the ClientHello ``ch`` makes a current, unrestricted offer, and what it offers:
    ``(current, text)``, or None when ``ch`` is None or not whole (``complete`` False: its lists
    may be cut, nothing is said of them).

    ``current`` is True when it offers both groups of :data:`OFFER_GROUPS` (x25519 and secp256r1,
    supported_groups extension) and either TLS 1.3 (supported_versions) with
    :data:`TLS13_MANDATORY` among its suites, or TLS 1.2 with all four suites of
    :data:`TLS12_ECDHE_GCM`: a server that speaks current TLS accepts such an offer, so its
    refusal is the server side's (what answered in its place), not the client's TLS policy.
    Anything else is narrow: no TLS 1.3 and fewer ECDHE AES-GCM suites, no ECDHE, a group
    missing (a FIPS-mode client offers no x25519), an SSLv2-compatible hello (no extensions).
    Signature algorithms are not read.

    ``text`` (str, made of numbers and fixed words only, no byte of the packet): the versions
    (``TLS 1.3 and 1.2``, ``TLS 1.3 only``, ``TLS 1.2 at most``…), how many cipher suites (every
    entry of the list, as Wireshark counts them: RFC 5746/7507's signalling values and GREASE
    included; they are left out of what follows; an SSLv2-compatible hello's TLS suites only),
    then for a current offer ``(ECDHE AES-GCM among them), the x25519 and secp256r1 groups``, for a narrow one what it lacks (``no TLS_AES_128_GCM_SHA256``,
    ``2 of the 4 ECDHE AES-GCM suites`` or ``no ECDHE AES-GCM suite``, ``no x25519 group``…), e.g.
    ``(True, "TLS 1.3 and 1.2, 17 cipher suites (ECDHE AES-GCM among them), the x25519 and
    secp256r1 groups")``."""
    if ch is None or not ch.complete:
        return None
    v13, v12, versions = _offer_versions(ch)
    suites = [s for s in ch.cipher_suites if s not in _SCSVS]
    n = ch.suites_listed or len(ch.cipher_suites)    # (as Wireshark's "Cipher Suites (N suites)")
    head = f"{versions}, {n} cipher suite{'s' if n != 1 else ''}"
    has13 = v13 and TLS13_MANDATORY in suites
    gcm = sum(1 for s in TLS12_ECDHE_GCM if s in suites)
    missing = [name for code, name in OFFER_GROUPS if code not in ch.supported_groups]
    if not missing and (has13 or (v12 and gcm == len(TLS12_ECDHE_GCM))):
        return True, f"{head} (ECDHE AES-GCM among them), the x25519 and secp256r1 groups"
    lacks = []
    if v13 and not has13:
        lacks.append("no TLS_AES_128_GCM_SHA256")
    if gcm < len(TLS12_ECDHE_GCM):
        lacks.append(f"{gcm} of the {len(TLS12_ECDHE_GCM)} ECDHE AES-GCM suites" if gcm else "no ECDHE AES-GCM suite")
    if not ch.supported_groups:
        lacks.append("no key-exchange group named")
    else:
        lacks.extend(f"no {name} group" for name in missing)
    return False, ", ".join([head] + lacks)


#: bytes of the client's stream :func:`hello_copies` compares (what streams.MAX_BYTES keeps)
HELLO_COPIES_BYTES = 16384


def hello_copies(segments) -> tuple[str, int, str, int] | None:
    """Two different ClientHellos sent for the same bytes of a TCP stream (break-it 24 F7).

    ``segments``: the client's data segments in the order read, each ``(offset, payload, ttl)``
    (``offset``: sequence number relative to the stream's first byte, int >= 0; ``payload``:
    bytes; ``ttl``: the IP TTL or hop limit, -1 unknown). The stream is read twice, from its
    first byte up to its first gap (at most :data:`HELLO_COPIES_BYTES`): keeping the first copy
    of each byte (as Zeek and Wireshark reassemble, and the ``sni`` column reads), and with each
    later copy of other bytes written over it. When both give a ClientHello whose SNIs differ:
    ``(first SNI, TTL of the first copy, other SNI, TTL of the later copy)`` (the TTLs of the
    segments holding the first differing byte; SNIs escaped as the ``sni`` column is), else None.
    A DPI-evasion tool sends a decoy this way: a copy with another SNI and a TTL too small to
    reach the server, then the real one (Zeek raises ``rexmit_inconsistency`` for it)."""
    first = bytearray(HELLO_COPIES_BYTES)
    later = bytearray(HELLO_COPIES_BYTES)
    seen = bytearray(HELLO_COPIES_BYTES)       # (1 where a byte was captured)
    placed = []
    for k, (off, data, _ttl) in enumerate(segments):
        if off < 0 or off >= HELLO_COPIES_BYTES or not data:
            continue
        data = bytes(data[:HELLO_COPIES_BYTES - off])
        end = off + len(data)
        if not any(seen[off:end]):
            first[off:end] = data
            seen[off:end] = b"\x01" * len(data)
        else:
            for i in range(off, end):            # (an overlap: byte by byte, few flows and bytes)
                if not seen[i]:
                    seen[i] = 1
                    first[i] = data[i - off]
        later[off:end] = data
        placed.append((off, end, k))
    n = seen.find(0)
    n = HELLO_COPIES_BYTES if n < 0 else n
    if n == 0 or first[:n] == later[:n]:
        return None
    a, b = parse_client_hello(bytes(first[:n])), parse_client_hello(bytes(later[:n]))
    if a is None or b is None or not a.sni or not b.sni or a.sni == b.sni:
        return None
    d = next(i for i in range(n) if first[i] != later[i])
    cover = [k for off, end, k in placed if off <= d < end]
    ttl_a = int(segments[cover[0]][2])
    ttl_b = next((int(segments[k][2]) for k in reversed(cover)
                  if bytes(segments[k][1])[d - segments[k][0]] != first[d]), -1)
    return a.sni, ttl_a, b.sni, ttl_b


# --------------------------------------------------------------------------- ServerHello

@dataclass
class ServerHello:
    """A ServerHello (RFC 8446 §4.1.3) or HelloRetryRequest.

    ``version``: negotiated version — the supported_versions extension's value when present
    (0x0304 for TLS 1.3), else ``legacy_version``. ``cipher``: the selected cipher suite.
    ``hello_retry``: the random is the HelloRetryRequest constant. ``alpn``: selected protocol
    (visible here only up to TLS 1.2; TLS 1.3 sends it encrypted). ``complete``: whole message.
    """

    legacy_version: int
    version: int
    cipher: int | None = None
    hello_retry: bool = False
    alpn: str | None = None
    extensions: list[int] = field(default_factory=list)
    complete: bool = False


def _server_hello_body(body: bytes, complete: bool) -> ServerHello | None:
    n = len(body)
    if n < 2:
        return None
    legacy = _u16(body, 0)
    sh = ServerHello(legacy_version=legacy, version=legacy, complete=complete)
    if n >= 34:
        sh.hello_retry = body[2:34] == HRR_RANDOM
    i = 34
    if i + 1 > n:
        return sh
    i += 1 + body[i]
    if i + 2 > n:
        return sh
    sh.cipher = _u16(body, i)
    i += 3  # cipher + compression method
    if i + 2 > n:
        return sh
    ext_end = min(n, i + 2 + _u16(body, i))
    i += 2
    while i + 4 <= ext_end:
        et = _u16(body, i)
        ln = _u16(body, i + 2)
        if i + 4 + ln > ext_end:
            break
        ext = body[i + 4:i + 4 + ln]
        i += 4 + ln
        sh.extensions.append(et)
        if et == EXT_SUPPORTED_VERSIONS and ln == 2:
            sh.version = _u16(ext, 0)
        elif et == EXT_ALPN:
            names = _parse_alpn(ext)
            sh.alpn = names[0] if names else None
    return sh


def _messages(hs: bytes) -> Iterator[tuple[int, bytes, bool]]:
    """Yield ``(msg_type, body, whole)`` for the handshake messages in ``hs``; the last may be
    cut."""
    i = 0
    n = len(hs)
    while i + 4 <= n:
        mt = hs[i]
        ln = _u24(hs, i + 1)
        body = hs[i + 4:i + 4 + ln]
        yield mt, body, len(body) == ln
        i += 4 + ln


def parse_server_hello(server_stream: bytes | bytearray | memoryview) -> ServerHello | None:
    """The first ServerHello (or HelloRetryRequest) of a server byte stream, else None."""
    try:
        hs = _handshake_bytes(bytes(server_stream), want_first=HS_SERVER_HELLO)
        for mt, body, whole in _messages(hs):
            if mt == HS_SERVER_HELLO:
                return _server_hello_body(body, whole)
            return None
        return None
    except Exception:  # pragma: no cover
        return None


# --------------------------------------------------------------------------- summary

@dataclass
class TlsSummary:
    """What both directions of one TLS connection show in cleartext. See :func:`summarize`.

    ``version``: negotiated version from the (last, non-HRR if any) ServerHello, else None.
    ``client_alert``/``server_alert``: the first *cleartext* alert ``(level, description)``
    (RFC 8446 §6: level 1 warning, 2 fatal; e.g. 40 handshake_failure, 42 bad_certificate,
    46 certificate_unknown, 48 unknown_ca, 112 unrecognized_name).
    ``client_encrypted_alert``: TLS 1.3 heuristic — the client's first type-23 record after the
    ServerHello is exactly 19 bytes (2-byte alert + 1 content-type byte + 16-byte AEAD tag), which
    is how an encrypted alert (e.g. the client rejecting the certificate) looks; a Finished is
    at least 53 bytes.
    ``certificates``: DER certificates from a cleartext Certificate message (TLS ≤ 1.2 only),
    leaf first; with a cut stream only the whole certificates.
    ``cert_request``: the server's cleartext handshake messages hold a CertificateRequest (RFC
    5246 §7.4.4: TLS ≤ 1.2, where it is sent in the clear; TLS 1.3 encrypts it): the server asks
    the client for a certificate.
    ``client_certificates``: with ``cert_request`` only (else None), the client's answer, its
    cleartext Certificate message (RFC 5246 §7.4.6) before its ChangeCipherSpec: how many
    certificates it holds (0: empty, the client has none to send; a list cut by the end of the
    stream counts its whole certificates, at least 1 when its length says it is not empty);
    None when no such message was seen.
    """

    client_hello: ClientHello | None = None
    server_hello: bool = False
    version: int | None = None
    cipher: int | None = None
    hello_retry: bool = False
    alpn: str | None = None
    client_alert: tuple[int, int] | None = None
    server_alert: tuple[int, int] | None = None
    client_encrypted_alert: bool = False
    client_app_data: bool = False
    server_app_data: bool = False
    client_ccs: bool = False
    server_ccs: bool = False
    certificates: list[bytes] = field(default_factory=list)
    established: bool = False
    cert_request: bool = False
    client_certificates: int | None = None


def _certificate_list(body: bytes) -> list[bytes]:
    """RFC 5246 §7.4.2 Certificate: 3-byte list length, then 3-byte length + DER each."""
    out: list[bytes] = []
    if len(body) < 3:
        return out
    end = min(len(body), 3 + _u24(body, 0))
    i = 3
    while i + 3 <= end:
        ln = _u24(body, i)
        if ln == 0 or i + 3 + ln > end:
            break
        out.append(body[i + 3:i + 3 + ln])
        i += 3 + ln
    return out


def _certificate_count(body: bytes) -> int | None:
    """How many certificates a (possibly cut) Certificate message body lists (RFC 5246 §7.4.2):
    0 for an empty list; the whole ones, at least 1 when the list's length says it is not empty;
    None when even the 3-byte list length is missing."""
    if len(body) < 3:
        return None
    if _u24(body, 0) == 0:
        return 0
    return max(1, len(_certificate_list(body)))


def summarize(client_stream: bytes | bytearray | memoryview,
              server_stream: bytes | bytearray | memoryview) -> TlsSummary:
    """Walk the records of both directions and summarize the handshake.

    Heuristics (each direction is a separate byte stream, so ordering *between* directions is not
    known):

    * Server direction first: handshake records are reassembled into messages until the server's
      ChangeCipherSpec (TLS ≤ 1.2: its Finished is encrypted; in TLS 1.3 a compatibility CCS
      may come between a HelloRetryRequest and the ServerHello and is not a boundary);
      ServerHello gives ``version``, ``cipher``, HRR; a cleartext Certificate message gives
      ``certificates`` (TLS ≤ 1.2 — in TLS 1.3 the certificate is encrypted and never seen).
    * Cleartext alert: a type-21 record of at least 2 bytes sent before that side's
      ChangeCipherSpec (TLS ≤ 1.2, where alerts after CCS are encrypted but keep type 21). In
      TLS 1.3 every alert after the ServerHello is encrypted and is a type-23 record like
      application data, so it is *not* reported as an alert (a type-21 record in TLS 1.3 is
      always cleartext and is reported — OpenSSL 3 clients that reject the server certificate
      send their alert this way, other stacks encrypt it); see ``client_encrypted_alert`` for
      the one encrypted case we guess.
    * ``client_app_data``/``server_app_data``: any type-23 record from that side. In TLS 1.3 this
      includes the encrypted handshake (the server's EncryptedExtensions..Finished, the client's
      Finished), so ``server_app_data`` is True for every TLS 1.3 server flight.
    * ``established``: TLS 1.3 — a ServerHello (not only an HRR) was seen and the client sent a
      type-23 record that is not the 19-byte encrypted alert; TLS ≤ 1.2 or unknown version —
      both sides sent ChangeCipherSpec, or application data went both ways. With 0-RTT early
      data the client's type-23 records may precede the ServerHello; that is counted as
      established (rare false positive).
    """
    out = TlsSummary()
    try:
        cdata = bytes(client_stream)
        sdata = bytes(server_stream)
        _summarize_server(sdata, out)
        _summarize_client(cdata, out)
        if out.version == TLS1_3:
            out.established = (out.server_hello and out.client_app_data
                               and not out.client_encrypted_alert)
        else:
            out.established = ((out.client_ccs and out.server_ccs)
                               or (out.client_app_data and out.server_app_data))
    except Exception:  # pragma: no cover - defensive
        pass
    return out


def _summarize_server(data: bytes, out: TlsSummary) -> None:
    hs = bytearray()
    pos = 0
    cert_seen = False
    for ct, _ver, body, _whole in _records(data):
        if ct == CT_CCS:
            out.server_ccs = True
        elif ct == CT_APP_DATA:
            out.server_app_data = True
        elif ct == CT_ALERT:
            if out.server_alert is None and (not out.server_ccs or out.version == TLS1_3):
                out.server_alert = alert_of(body)
        elif ct == CT_HANDSHAKE and (not out.server_ccs or out.version == TLS1_3):
            # TLS <= 1.2: handshake records after CCS are encrypted (Finished). TLS 1.3: every
            # encrypted record is type 23, and a compatibility-mode CCS may sit between a
            # HelloRetryRequest and the real ServerHello (RFC 8446 appendix D.4).
            hs += body
            n = len(hs)
            while pos + 4 <= n:
                mt = hs[pos]
                ln = _u24(hs, pos + 1)
                if pos + 4 + ln > n:
                    break
                msg = bytes(hs[pos + 4:pos + 4 + ln])
                pos += 4 + ln
                if mt == HS_SERVER_HELLO:
                    sh = _server_hello_body(msg, True)
                    if sh is not None:
                        out.version = sh.version
                        out.cipher = sh.cipher
                        out.alpn = sh.alpn
                        if sh.hello_retry:
                            out.hello_retry = True
                        else:
                            out.server_hello = True
                elif mt == HS_CERTIFICATE and not cert_seen:
                    cert_seen = True
                    out.certificates = _certificate_list(msg)
                elif mt == HS_CERTIFICATE_REQUEST:
                    out.cert_request = True
    # a Certificate message cut by the end of the capture: keep its whole certificates
    if not cert_seen and pos + 4 <= len(hs) and hs[pos] == HS_CERTIFICATE:
        out.certificates = _certificate_list(bytes(hs[pos + 4:]))
    # a ServerHello cut in the middle still tells the version if its extension made it; cut
    # before it, a legacy_version of TLS 1.2 is no answer (every TLS 1.3 ServerHello has it):
    # the version is unknown
    if not out.server_hello and not out.hello_retry and pos + 4 <= len(hs) \
            and hs[pos] == HS_SERVER_HELLO:
        sh = _server_hello_body(bytes(hs[pos + 4:]), False)
        if sh is not None:
            unknown = sh.version == TLS1_2 and EXT_SUPPORTED_VERSIONS not in sh.extensions
            out.version = None if unknown else sh.version
            out.cipher = sh.cipher
            if sh.hello_retry:
                out.hello_retry = True
            else:
                out.server_hello = True


#: ServerHelloDone (RFC 5246 §7.4.5): the end of a TLS <= 1.2 server's first flight
HS_SERVER_HELLO_DONE = 14


def flight_short(server_stream: bytes | bytearray | memoryview, version: int | None) -> str:
    """What is missing of a server's first flight (the server's initial stream as captured,
    ``version`` the ServerHello's negotiated version), for a detail; '' when it looks whole or
    cannot be told (no TLS, an alert, a HelloRetryRequest alone, a version unknown or older than
    TLS 1.2):

    - its last record cut: ``its last record, of N bytes, arrived only in part: M bytes`` (the
      record's length field announces more than the stream holds; a header cut counts too);
    - TLS 1.3, a whole ServerHello and no encrypted record after it (RFC 8446 §4.1.3: the
      server's EncryptedExtensions, Certificate, CertificateVerify and Finished follow at once,
      as type-23 records): ``no encrypted record came after its ServerHello, where TLS 1.3 sends
      the certificate``;
    - TLS 1.2, its handshake messages without a ServerHelloDone (RFC 5246 §7.3: it ends the
      flight; a resumed session's ChangeCipherSpec ends it instead): ``the rest of its flight never
      came after its ServerHello (no ServerHelloDone, nor a resumed session's ChangeCipherSpec)``
      (not for an older version, whose ServerHello the client may have refused itself).

    After a HelloRetryRequest the flight of the ServerHello that follows it is judged.

    Never raises."""
    try:
        data = bytes(server_stream)
        n = len(data)
        off, hs, ccs, sealed = 0, bytearray(), False, False
        while off < n:
            if n - off < 5:
                return f"its last record's header arrived only in part, {n - off} of 5 bytes"
            ct = data[off]
            if not (CT_CCS <= ct <= CT_HEARTBEAT) or data[off + 1] != 3 or data[off + 2] > 4:
                return ""
            ln = _u16(data, off + 3)
            if ct == CT_ALERT or ln > MAX_RECORD:
                return ""
            if off + 5 + ln > n:
                return f"its last record, of {5 + ln:,} bytes, arrived only in part: {n - off:,} bytes"
            if ct == CT_CCS:
                ccs = True
            elif ct == CT_APP_DATA:
                sealed = True
            elif ct == CT_HANDSHAKE and (not ccs or version == TLS1_3):
                # (TLS 1.3: a compatibility ChangeCipherSpec may follow a HelloRetryRequest)
                hs += data[off + 5:off + 5 + ln]
            off += 5 + ln
        types, hello = [], False
        for mt, body, whole in _messages(bytes(hs)):
            if not whole:
                return "its flight ended inside a handshake message"
            if mt == HS_SERVER_HELLO:
                # (after a HelloRetryRequest, the flight of the real ServerHello that follows)
                sh = _server_hello_body(body, True)
                hello = sh is not None and not sh.hello_retry
                types = []
            types.append(mt)
        if not hello:
            return ""
        if version == TLS1_3:
            return ("" if sealed else
                    "no encrypted record came after its ServerHello, where TLS 1.3 sends the certificate")
        if version == TLS1_2 and HS_SERVER_HELLO_DONE not in types and not ccs:
            # (a full handshake's flight ends with its ServerHelloDone, a resumed session's with its
            # ChangeCipherSpec and Finished; an older version's ServerHello the client may refuse
            # itself: not told)
            return ("the rest of its flight never came after its ServerHello (no ServerHelloDone, nor a resumed "
                    "session's ChangeCipherSpec)")
        return ""
    except Exception:  # pragma: no cover - defensive
        return ""


def _summarize_client(data: bytes, out: TlsSummary) -> None:
    out.client_hello = parse_client_hello(data)
    first_app = True
    if out.client_hello is not None and out.client_hello.sslv2:
        # an SSLv2-compatible hello is one 2-byte-header record; TLS records follow it
        # (RFC 5246 Appendix E.2)
        data = data[2 + _sslv2_hello_header(data)[0]:]
    for ct, _ver, body, _whole in _records(data):
        if ct == CT_CCS:
            out.client_ccs = True
        elif ct == CT_APP_DATA:
            if first_app and out.version == TLS1_3 and out.server_hello:
                # 19 = 2-byte alert + inner content type + 16-byte AEAD tag (RFC 8446 §5.2)
                out.client_encrypted_alert = len(body) == 19
            first_app = False
            out.client_app_data = True
        elif ct == CT_ALERT:
            if out.client_alert is None and (not out.client_ccs or out.version == TLS1_3):
                out.client_alert = alert_of(body)
    if out.cert_request:
        out.client_certificates = _client_certificate(data)


def _client_certificate(data: bytes) -> int | None:
    """The client's answer to a CertificateRequest in its records ``data``: the certificates of
    its first cleartext Certificate message among the handshake messages it sent before its
    ChangeCipherSpec (:func:`_certificate_count`), None when there is none."""
    hs = bytearray()
    for ct, _ver, body, _whole in _records(data):
        if ct == CT_CCS:
            break
        if ct == CT_HANDSHAKE:
            hs += body
    i, n = 0, len(hs)
    while i + 4 <= n:
        mt, ln = hs[i], _u24(hs, i + 1)
        if mt == HS_CERTIFICATE:
            return _certificate_count(bytes(hs[i + 4:i + 4 + ln]))
        i += 4 + ln
    return None


#: cleartext alerts one alert record may hold (RFC 8446 §5.1 lets a record carry several)
MAX_ALERTS = 8


def alert_of(body: bytes) -> tuple[int, int] | None:
    """The (level, description) an alert record's body stands for: its first fatal alert (level
    2), else its first; None unless it is 1 to :data:`MAX_ALERTS` whole alerts of level 1 or 2
    (an encrypted record is not: its bytes are no such pairs)."""
    n = len(body)
    if not n or n % 2 or n > 2 * MAX_ALERTS:
        return None
    pairs = [(body[i], body[i + 1]) for i in range(0, n, 2)]
    if any(level not in (1, 2) for level, _ in pairs):
        return None
    return next((p for p in pairs if p[0] == 2), pairs[0])


# --------------------------------------------------------------------------- certificates

def certificate_names(der: bytes | bytearray | memoryview) -> list[str]:
    """The DNS names a DER X.509 certificate is for, as a TLS client matches them: its
    subjectAltName dNSName entries (RFC 5280 §4.2.1.6) in their order, distinct; only when it
    has none, its subject commonName(s) (RFC 6125 §6.4.4: a client must not use the CN when a
    DNS name is presented; as OpenSSL's ``X509_check_host`` does, which Python's ``ssl`` uses, other
    subjectAltName types, such as an IP address or a URI, leave the CN in use). Uses
    ``cryptography``. Each dNSName is read on its own: one whose bytes are not UTF-8 (which
    ``cryptography`` refuses, and with it the whole extension) is read from the DER here, its
    bytes that are not UTF-8 kept as surrogates (``surrogateescape``: its text is
    ``dns.text_from_bytes(name.encode("utf-8", "surrogateescape"))``, ``\\xff``-style), and the
    other names are kept; the CN is not used then. A certificate that does not load gives ``[]``;
    a subjectAltName extension too damaged to read at all is skipped (the CN is then given)."""
    try:
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        cert = x509.load_der_x509_certificate(bytes(der))
    except Exception:
        # a certificate ``cryptography`` refuses (a ``_`` in a PrintableString…): its names read
        # from the DER here, as a TLS client that accepts it would
        names = list(dict.fromkeys(v.decode("utf-8", "surrogateescape") for v in _der_dns_names(bytes(der))))
        if names:
            return names
        cn = bytes([0x55, 0x04, 0x03])
        return list(dict.fromkeys(v.decode("utf-8", "surrogateescape") for rdn in _der_name(bytes(der), 4)
                                  for oid, v, _ in rdn if oid == cn))
    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        values = [v if isinstance(v, str) else bytes(v).decode("utf-8", "surrogateescape")
                  for v in san.value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        values = []
    except Exception:           # cryptography could not read the extensions: read the SAN here
        values = [v.decode("utf-8", "surrogateescape") for v in _der_dns_names(bytes(der))]
    for s in values:
        if s not in names:
            names.append(s)
    if names:
        return names
    try:
        for attr in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
            v = attr.value
            s = v if isinstance(v, str) else bytes(v).decode("utf-8", "surrogateescape")
            if s not in names:
                names.append(s)
    except Exception:
        pass
    return names


#: attribute types named in :func:`certificate_issuer`'s text (RFC 4514 §3), by DER OID
_NAME_ATTRS = {bytes([0x55, 0x04, k]): n for k, n in ((3, "CN"), (6, "C"), (7, "L"), (8, "ST"), (10, "O"), (11, "OU"))}
_NAME_ATTRS[bytes.fromhex("0992268993f22c640119")] = "DC"
#: other attribute types openssl names by its short name (the rest: dotted OID = #hex of the
#: value's DER, as RFC 4514 §2.4 and openssl write them)
_NAME_ATTRS.update({bytes([0x55, 0x04, k]): n for k, n in (
    (4, "SN"), (5, "serialNumber"), (9, "street"), (12, "title"), (15, "businessCategory"),
    (17, "postalCode"), (42, "GN"), (43, "initials"), (44, "generationQualifier"), (46, "dnQualifier"),
    (65, "pseudonym"), (97, "organizationIdentifier"))})
_NAME_ATTRS[bytes.fromhex("2a864886f70d010901")] = "emailAddress"
_NAME_ATTRS[bytes.fromhex("0992268993f22c640101")] = "UID"
_NAME_ATTRS.update({bytes.fromhex("2b0601040182373c0201") + bytes([k]): n
                    for k, n in ((1, "jurisdictionL"), (2, "jurisdictionST"), (3, "jurisdictionC"))})


def _oid_text(oid: bytes) -> str:
    """A DER OBJECT IDENTIFIER's content bytes as dotted text (``1.2.840.113549.1.9.1``)."""
    arcs, v = [], 0
    for b in oid:
        v = (v << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(v)
            v = 0
    if not arcs:
        return "#" + oid.hex().upper()
    first = arcs[0]
    head = [min(first // 40, 2), first - 40 * min(first // 40, 2)]
    return ".".join(str(a) for a in head + arcs[1:])


def certificate_issuer(der: bytes | bytearray | memoryview) -> str:
    """The issuer of a DER X.509 certificate as RFC 4514-style text (``CN=FortiGate CA,O=Fortinet``:
    most specific attribute first; CN, O, OU, C, ST, L, DC and the others openssl knows by name:
    ``emailAddress``, ``serialNumber``…; an unknown type as its dotted OID and the value as ``#``
    and the hex of its DER, as openssl and RFC 4514 §2.4 write them),
    read from the DER here (:func:`_der_name`): a certificate the ``cryptography`` package refuses
    (a ``_`` in a PrintableString, FortiGate's ``Fortinet_CA_SSL``) or a value that is not UTF-8
    still gives it. Values are escaped as RFC 4514 §2.4 says (and ``openssl x509 -issuer -nameopt
    RFC2253`` prints, but a character beyond ASCII kept as UTF-8 text where openssl writes its
    bytes, ``\\C3\\A9``): ``,+"\\<>;`` after a backslash (``O=Checkpoint Systems\\, Inc.``), a
    leading space or ``#`` and a trailing space too; bytes that are not UTF-8, controls and the
    invisible or bidi characters of :data:`kscc_traffic.text.CONTROL` as ``\\XX`` per byte (``\\1B``
    for ESC). So the text is safe to show as it is (not escaped again) and different issuers give
    different texts. '' when the structure cannot be followed."""
    rdns = _der_name(bytes(der), 2)
    parts = []
    for attrs in reversed(rdns):
        vals = []
        for oid, raw, tlv in reversed(attrs):     # (openssl reverses a multi-valued RDN's too)
            name = _NAME_ATTRS.get(oid)
            if name is None:
                vals.append(f"{_oid_text(oid)}=#{tlv.hex().upper()}")
                continue
            vals.append(f"{name}={_rfc4514_value(raw)}")
        if vals:
            parts.append("+".join(vals))
    return ",".join(parts)


def _rfc4514_value(raw: bytes) -> str:
    """An attribute value's bytes as RFC 4514 §2.4 text, safe to show (see
    :func:`certificate_issuer`)."""
    v = raw.decode("utf-8", "surrogateescape")
    out = []
    for i, ch in enumerate(v):
        if "\udc80" <= ch <= "\udcff":            # (a byte that is not UTF-8)
            out.append("\\%02X" % (ord(ch) - 0xDC00))
        elif CONTROL.match(ch) or "\ud800" <= ch <= "\udfff":
            out.append("".join("\\%02X" % b for b in ch.encode("utf-8", "surrogatepass")))
        elif ch in ',+"\\<>;' or (i == 0 and ch in " #") or (i == len(v) - 1 and ch == " "):
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def _tbs_fields(der: bytes) -> list[tuple[int, int, int]]:
    """(tag, content start, content end) of a DER certificate's tbsCertificate fields after its
    optional [0] version (serialNumber, signature, issuer, validity, subject…); [] when the bytes
    hold no tbsCertificate."""
    tbs = _der_tbs(der)
    if tbs is None:
        return []
    fields = list(_der_items(der, tbs[1], tbs[2]))
    return fields[1:] if fields and fields[0][0] == 0xA0 else fields


def _der_tbs(der: bytes):
    """(tag, content start, content end) of a DER certificate's tbsCertificate SEQUENCE; None
    when the bytes are not a Certificate SEQUENCE holding one."""
    cert = next(_der_items(der, 0, len(der)), None)
    if cert is None or cert[0] != 0x30:
        return None
    tbs = next(_der_items(der, cert[1], cert[2]), None)
    return tbs if tbs is not None and tbs[0] == 0x30 else None


#: ASN.1 string types whose bytes are not UTF-8 (or ASCII) text: tag -> codec. A T61String is
#: read as Latin-1 and a BMPString / UniversalString as UTF-16 / UTF-32 big-endian, as openssl
#: prints them (an old Windows CA's issuer is often a BMPString)
_STRING_CODECS = {0x14: "latin-1", 0x1E: "utf-16-be", 0x1C: "utf-32-be"}


def _as_utf8(tag: int, raw: bytes) -> bytes:
    """An attribute value's bytes as UTF-8 (:data:`_STRING_CODECS`); as they are for the other
    string types, and when they do not decode (an odd-length BMPString)."""
    codec = _STRING_CODECS.get(tag)
    if codec is None:
        return raw
    try:
        return raw.decode(codec).encode("utf-8", "surrogatepass")
    except (UnicodeDecodeError, UnicodeEncodeError):
        return raw


def certificate_validity(der: bytes | bytearray | memoryview) -> tuple[int, int] | None:
    """(notBefore, notAfter) of a DER X.509 certificate, epoch seconds (int, UTC): its
    tbsCertificate's validity (RFC 5280 §4.1.2.5: UTCTime ``YYMMDDHHMMSSZ``, years 50-99 read as
    19xx, or GeneralizedTime ``YYYYMMDDHHMMSSZ``), read from the DER here; None when the structure
    cannot be followed or a time is not of those forms."""
    try:
        b = bytes(der)
        fields = _tbs_fields(b)
        if len(fields) < 4 or fields[3][0] != 0x30:
            return None
        times = [(tag, b[a:z]) for tag, a, z in _der_items(b, fields[3][1], fields[3][2])]
        if len(times) != 2:
            return None
        out = [_der_time(tag, raw) for tag, raw in times]
        return None if None in out else (out[0], out[1])
    except Exception:  # noqa: BLE001 - bytes from the network: nothing read
        return None


def _der_time(tag: int, raw: bytes) -> int | None:
    """A DER UTCTime (tag 0x17) or GeneralizedTime (0x18) in its RFC 5280 form as epoch seconds."""
    import calendar
    text = raw.decode("ascii", "replace")
    if tag == 0x17 and len(text) == 13 and text.endswith("Z") and text[:12].isdigit():
        yy = int(text[:2])
        text = ("19" if yy >= 50 else "20") + text
    elif not (tag == 0x18 and len(text) == 15 and text.endswith("Z") and text[:14].isdigit()):
        return None
    y, mo, d, h, mi, s = (int(text[0:4]), int(text[4:6]), int(text[6:8]), int(text[8:10]), int(text[10:12]),
                          int(text[12:14]))
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h <= 23 and mi <= 59 and s <= 60):
        return None
    return calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))


def _der_name(der: bytes, which: int) -> list[list[tuple[bytes, bytes, bytes]]]:
    """The RDNs of a DER certificate's issuer (``which`` 2) or subject (4): fields 2 and 4 of its
    tbsCertificate after an optional [0] version (serialNumber, signature, issuer, validity,
    subject), each RDN a list of (attribute type OID bytes, value bytes as UTF-8 where its string
    type is another encoding: :func:`_as_utf8`, the value's whole DER: tag, length, contents);
    [] when the structure cannot be followed."""
    out: list[list[tuple[bytes, bytes, bytes]]] = []
    try:
        fields = _tbs_fields(der)
        if len(fields) < which + 1 or fields[which][0] != 0x30:
            return out
        for set_tag, a, z in _der_items(der, fields[which][1], fields[which][2]):
            if set_tag != 0x31:
                continue
            rdn = []
            for seq_tag, sa, sz in _der_items(der, a, z):
                parts = list(_der_items(der, sa, sz)) if seq_tag == 0x30 else []
                if len(parts) == 2 and parts[0][0] == 0x06:
                    tlv_start = parts[0][2]         # (the value's tag follows the OID's contents)
                    rdn.append((der[parts[0][1]:parts[0][2]], _as_utf8(parts[1][0], der[parts[1][1]:parts[1][2]]),
                                der[tlv_start:parts[1][2]]))
            out.append(rdn)
    except (IndexError, ValueError):
        return []
    return out


#: DER of the subjectAltName extension's OID, 2.5.29.17
_SAN_OID = b"\x06\x03\x55\x1d\x11"


def _der_items(b: bytes, start: int, end: int):
    """(tag, content start, content end) of each DER element in ``b[start:end]``; stops at the
    first malformed one (indefinite or too long length, element past ``end``)."""
    i = start
    while i + 2 <= end:
        tag, ln = b[i], b[i + 1]
        i += 2
        if ln & 0x80:
            k = ln & 0x7F
            if not 1 <= k <= 4 or i + k > end:
                return
            ln = int.from_bytes(b[i:i + k], "big")
            i += k
        if i + ln > end:
            return
        yield tag, i, i + ln
        i += ln


def _der_dns_names(der: bytes) -> list[bytes]:
    """The raw bytes of every dNSName ([2] IMPLICIT IA5String) of every subjectAltName extension
    of a DER certificate, read without decoding them; [] when there is none or the certificate's
    structure cannot be followed (Certificate -> tbsCertificate -> [3] extensions -> Extension ->
    extnValue OCTET STRING -> GeneralNames)."""
    out: list[bytes] = []
    try:
        tbs = _der_tbs(der)
        if tbs is None:
            return out
        for tag, a, z in _der_items(der, tbs[1], tbs[2]):
            if tag != 0xA3:                                    # [3] EXPLICIT extensions
                continue
            for seq_tag, sa, sz in _der_items(der, a, z):      # SEQUENCE OF Extension
                if seq_tag != 0x30:
                    continue
                for ext_tag, ea, ez in _der_items(der, sa, sz):
                    if ext_tag != 0x30 or der[ea:ea + len(_SAN_OID)] != _SAN_OID:
                        continue
                    octets = [(t, x, y) for t, x, y in _der_items(der, ea, ez) if t == 0x04]
                    for _t, oa, oz in octets[:1]:              # extnValue
                        for gn_tag, ga, gz in _der_items(der, oa, oz):   # GeneralNames SEQUENCE
                            if gn_tag == 0x30:
                                out.extend(der[na:nz] for t, na, nz in _der_items(der, ga, gz) if t == 0x82)
    except (IndexError, ValueError):
        return out
    return out


# --------------------------------------------------------------------------- name matching

_UPPER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _norm(name: str) -> str:
    """ASCII-only lower-casing (RFC 4343), one trailing dot removed."""
    s = name.translate(_UPPER)
    return s[:-1] if s.endswith(".") else s


def name_matches(name: str, pattern: str) -> bool:
    """Certificate name matching (RFC 6125 §6.4): case-insensitive (ASCII), one trailing dot
    ignored on both sides. ``*`` is honoured only as the whole left-most label and then matches
    exactly one non-empty label: ``*.ksc.kaspersky.com`` matches ``a.ksc.kaspersky.com`` but not
    ``ksc.kaspersky.com``, ``a.b.ksc.kaspersky.com`` or ``myksc.kaspersky.com``. A wildcard needs
    at least two labels after it (``*.com`` matches nothing). Partial-label wildcards (``f*.x``)
    and ``*`` elsewhere match nothing. Empty labels never match."""
    try:
        n = _norm(name)
        p = _norm(pattern)
        if not n or not p:
            return False
        nl = n.split(".")
        pl = p.split(".")
        if any(not lab for lab in nl) or any(not lab for lab in pl):
            return False
        if "*" not in p:
            return n == p
        if pl[0] != "*" or any("*" in lab for lab in pl[1:]) or len(pl) < 3:
            return False
        return len(nl) == len(pl) and nl[1:] == pl[1:] and "*" not in nl[0]
    except Exception:  # pragma: no cover
        return False


#: a host name's label (RFC 952/1123 letters, digits, hyphens; underscores as in real DNS
#: names such as ``_dmarc``; ``*`` as a whole label for certificate patterns)
_LABEL = re.compile(r"(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?|\*)")


def is_host_name(name: str) -> bool:
    """Is ``name`` a DNS host name (one trailing dot allowed): labels of at most 63 letters,
    digits, hyphens (not first or last) or underscores, or ``*`` (a certificate pattern's label),
    253 characters at most? An SNI must be one (RFC 6066 §3); a name from a packet holding
    anything else (spaces, ``<``, ``=``, ``"``, escaped control bytes, escaped dots) is not a
    name any agent asked for."""
    n = name[:-1] if name.endswith(".") else name
    return 0 < len(n) <= 253 and all(_LABEL.fullmatch(lab) for lab in n.split("."))


def under_mask(name: str, mask: str) -> bool:
    """Rule-mask matching (vendor port/host lists): ``*.ksc.kaspersky.com`` (or
    ``.ksc.kaspersky.com``) means any name strictly *below* ``ksc.kaspersky.com`` at any depth —
    ``a.b.ksc.kaspersky.com`` is under it; ``ksc.kaspersky.com`` itself, ``myksc.kaspersky.com``
    and ``ksc.kaspersky.com.evil.com`` are not. A mask without a leading ``*.``/``.`` is an exact
    (case-insensitive, trailing-dot-insensitive) name. Any other ``*`` in the mask matches
    nothing. In ``name`` a ``*`` is an ordinary label, so a certificate pattern
    ``*.ksc.kaspersky.com`` is itself under the mask ``*.ksc.kaspersky.com``. A ``name`` that is
    not a host name (:func:`is_host_name`: ``<img src=x>.ksc.kaspersky.com``) is under no mask."""
    try:
        if not is_host_name(name):
            return False
        n = _norm(name)
        m = mask.translate(_UPPER)
        if m.endswith("."):
            m = m[:-1]
        if not n or not m or any(not lab for lab in n.split(".")):
            return False
        if m.startswith("*."):
            base = m[2:]
        elif m.startswith("."):
            base = m[1:]
        else:
            return "*" not in m and n == m
        if not base or "*" in base or any(not lab for lab in base.split(".")):
            return False
        return n.endswith("." + base) and len(n) > len(base) + 1
    except Exception:  # pragma: no cover
        return False
