"""HTTP/1.x request lines and Host headers (RFC 9112 message syntax, RFC 9110 semantics).

Only a real request line is recognised: a known method, one space, a target of visible bytes, one
space, ``HTTP/1.0`` or ``HTTP/1.1``, then CRLF (a bare LF is tolerated); a CONNECT's target may
also hold spaces and control bytes other than CR and LF (hostile text, kept escaped to be judged). TLS records, SSH banners
and binary protocols therefore never look like HTTP. Parsers are total (partial result or None,
never an exception) and look at no more than the first 64 KiB.

Text (method, target, header names/values, host) is decoded with
:func:`kscc_traffic.protocols.dns.text_from_bytes` (UTF-8, ``\\xNN`` for anything else).
"""
from __future__ import annotations

import base64
import ipaddress
import re
from dataclasses import dataclass, field

from .dns import PLAIN_BYTES, ascii_text, text_from_bytes

__all__ = [
    "HttpRequest",
    "METHODS",
    "parse_request",
    "looks_like_http_request",
    "looks_like_http_response",
    "response_status",
    "response_location",
    "page_media_type",
    "later_answers",
    "revocation_asked",
    "head_length",
    "connect_target",
    "proxy_target",
    "split_host_port",
]

#: RFC 9110 §9 methods, PATCH (RFC 5789) and the common WebDAV ones (RFC 4918)
METHODS = (
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
    "PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "REPORT", "SEARCH",
)

_LIMIT = 64 * 1024
_MAX_HEADERS = 256
#: the first bytes a request line can start with (each method's first letter): any other stream
#: (TLS, most of a capture's) is told apart without copying its first 64 KiB for the patterns
_METHOD_FIRST = frozenset(m[:1].encode() for m in METHODS)
_REQ_LINE = re.compile(
    rb"(" + b"|".join(m.encode() for m in METHODS) + rb") ([\x21-\x7e\x80-\xff]{1,16384}) "
    rb"(HTTP/1\.[01])\r?\n")
#: a CONNECT request line whose target holds what no authority has (spaces, control bytes, not
#: CR or LF): kept, to be judged as the hostile text it is (break-it 24 F10); the line still
#: ends in `` HTTP/1.x`` and CRLF
_CONNECT_LINE = re.compile(rb"(CONNECT) ([^\r\n ][^\r\n]{0,16383}) (HTTP/1\.[01])\r?\n")
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-5][0-9][0-9])[ \r\n]")
_PORT = re.compile(r"[0-9]{1,5}\Z")


@dataclass
class HttpRequest:
    """An HTTP/1.x request head.

    ``host``: from an absolute-form (``GET http://host/...``) or authority-form (``CONNECT h:443``)
    target if present (RFC 9112 §3.2.2: it takes precedence), else from the first ``Host`` header
    (name matched case-insensitively). Port, brackets of an IPv6 literal and userinfo are removed;
    ``port`` is the explicit port if one was given. ``None`` when neither gives a host.
    ``headers``: ``(name, value)`` pairs in order, values stripped (at most 256).
    ``complete``: the empty line ending the head was present.
    """

    method: str
    target: str
    version: str
    host: str | None = None
    port: int | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    complete: bool = False

    def header(self, name: str) -> str | None:
        """First header value with this name (case-insensitive), else None."""
        low = name.lower()
        for k, v in self.headers:
            if k.lower() == low:
                return v
        return None


def split_host_port(authority: str) -> tuple[str | None, int | None]:
    """``host[:port]`` / ``[v6]:port`` -> ``(host, port)``; a bare IPv6 literal without brackets
    is taken whole; a leading ``[`` is an IPv6 literal's only when it parses as one
    (:func:`_bracketed_v6`: ``[bold]x.example:443`` is the host ``[bold]x.example``). Invalid ports give ``None``; an empty host gives None. Userinfo (``user@``)
    is kept in the host: a Host header and a CONNECT target cannot carry it (RFC 9110 §7.2,
    §9.3.6), so the text is shown as the packet has it (and is no host name); an absolute-form
    URI's userinfo is dropped by its caller. The host's characters above U+007F are written as
    the ``\\xNN`` of their UTF-8 bytes (:func:`.dns.ascii_text`: a host name on the wire is
    ASCII; a Cyrillic ``а`` must not pass for a Latin one)."""
    s = ascii_text(authority.strip())
    host: str | None
    port: int | None = None
    if s.startswith("[") and _bracketed_v6(s):
        close = s.find("]")
        if close < 0:
            return (s[1:] or None), None
        host = s[1:close]
        rest = s[close + 1:]
        if rest.startswith(":") and _PORT.match(rest[1:]):
            port = int(rest[1:])
    elif s.count(":") == 1:
        host, p = s.split(":", 1)
        if _PORT.match(p):
            port = int(p)
    else:
        host = s
    if port is not None and port > 65535:
        port = None
    return (host or None), port


def _bracketed_v6(s: str) -> bool:
    """Whether ``s`` (starting with ``[``) is an IPv6 literal in brackets, maybe followed by
    ``:port``: what is inside the brackets parses as an IPv6 address and nothing but a colon
    follows them (else ``[bold]eu1…`` is text, not an address; an unclosed ``[`` is kept as
    the literal it starts)."""
    close = s.find("]")
    if close < 0:
        return True
    try:
        ok = ipaddress.ip_address(s[1:close]).version == 6
    except ValueError:
        return False
    return ok and (close + 1 == len(s) or s[close + 1] == ":")


def _target_authority(target: str) -> str | None:
    """Authority of an absolute-form (``scheme://authority/...``) target."""
    i = target.find("://")
    if i <= 0 or not target[:i].replace("+", "").replace("-", "").replace(".", "").isalnum():
        return None
    rest = target[i + 3:]
    for sep in "/?#":
        j = rest.find(sep)
        if j >= 0:
            rest = rest[:j]
    return rest


def looks_like_http_request(data: bytes | bytearray | memoryview) -> bool:
    """True when ``data`` starts with a complete HTTP/1.x request line."""
    if bytes(data[:1]) not in _METHOD_FIRST:
        return False
    try:
        buf = bytes(data[:_LIMIT])
        return _REQ_LINE.match(buf) is not None or _CONNECT_LINE.match(buf) is not None
    except Exception:  # pragma: no cover
        return False


def parse_request(data: bytes | bytearray | memoryview) -> HttpRequest | None:
    """Parse the request head at the start of a client stream; None if it does not start with a
    request line. Header lines may be cut by the end of the data (the cut line is ignored)."""
    if bytes(data[:1]) not in _METHOD_FIRST:
        return None
    try:
        return _parse_request(bytes(data[:_LIMIT]))
    except Exception:  # pragma: no cover - defensive
        return None


def _parse_request(buf: bytes) -> HttpRequest | None:
    m = _REQ_LINE.match(buf) or _CONNECT_LINE.match(buf)
    if m is None:
        return None
    req = HttpRequest(method=m.group(1).decode("ascii"), target=text_from_bytes(m.group(2)),
                      version=m.group(3).decode("ascii"))
    host_hdr = _plain_headers(buf, m.end(), req)
    if host_hdr is False:
        host_hdr = _headers(buf, m.end(), req)
    auth = _target_authority(req.target)
    if auth is not None:
        auth = auth.rsplit("@", 1)[-1]            # (an absolute URI's userinfo)
    elif req.method == "CONNECT":
        auth = req.target
    if auth is not None:
        req.host, req.port = split_host_port(auth)
    if req.host is None and host_hdr is not None:
        req.host, req.port = split_host_port(host_hdr)
    return req


def _headers(buf: bytes, pos: int, req: HttpRequest) -> str | None:
    """Read the header lines of ``buf`` from ``pos`` into ``req`` (``headers``, ``complete``);
    returns the first Host header's value, None if there is none."""
    n = len(buf)
    host_hdr: str | None = None
    while pos < n and len(req.headers) < _MAX_HEADERS:
        eol = buf.find(b"\n", pos)
        if eol < 0:
            break  # cut header line
        line = buf[pos:eol]
        pos = eol + 1
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            req.complete = True
            break
        if line[:1] in (b" ", b"\t"):
            continue  # obsolete line folding: ignored
        colon = line.find(b":")
        if colon <= 0:
            continue
        name = text_from_bytes(line[:colon].strip())
        value = text_from_bytes(line[colon + 1:].strip(b" \t"))
        req.headers.append((name, value))
        if host_hdr is None and name.lower() == "host":
            host_hdr = value
    return host_hdr


#: the bytes of a plain head line: what text_from_bytes leaves as it is, and the line ends
_PLAIN_LINE_BYTES = PLAIN_BYTES + b"\r\n"
#: a header line of such a head (CR only before LF): name (not starting with a space or a colon),
#: colon, value. (Greedy groups without a choice between them: linear in the line's length)
_PLAIN_HEADER = re.compile(r"^([^ :\r\n][^:\r\n]*):([^\r\n]*)\r?$", re.M)


def _plain_headers(buf: bytes, pos: int, req: HttpRequest) -> str | None | bool:
    """:func:`_headers` for the common head of plain lines (printable ASCII other than a
    backslash, each ending in LF or CRLF), on text decoded at once: the same ``req.headers``,
    ``req.complete`` and result, as such a line's pieces are their own text
    (:func:`.dns.text_from_bytes`) and ``str.strip`` strips from them what ``bytes.strip`` would
    (only spaces can be at their ends). ``False`` (``req`` untouched) when the head is not such
    (a byte that text_from_bytes would escape, a tab, a CR not before LF, ...), for
    :func:`_headers` to read."""
    # the lines up to the empty one (or every complete line when there is none)
    crlf = buf.find(b"\n\r\n", pos - 1)
    lf = buf.find(b"\n\n", pos - 1)
    ended = True
    if crlf >= 0 and (lf < 0 or crlf < lf):
        stop = crlf + 3
    elif lf >= 0:
        stop = lf + 2
    else:
        stop = max(buf.rfind(b"\n", pos) + 1, pos)
        ended = False
    head = buf[pos:stop]
    if head.translate(None, _PLAIN_LINE_BYTES) or head.count(b"\r") != head.count(b"\r\n"):
        return False
    # only the last line can be empty (the head stops at the first empty one); a line starting
    # with a space (folding) or a colon, or without one, is no header: the others are read by
    # one pattern, at most _MAX_HEADERS of them (the empty line after that many is not reached)
    found = _PLAIN_HEADER.findall(head.decode("ascii"))
    if len(found) >= _MAX_HEADERS:
        del found[_MAX_HEADERS:]
        ended = False
    headers = [(name.strip(), value.strip(" ")) for name, value in found]
    req.headers.extend(headers)
    if ended:
        req.complete = True
    for name, value in headers:
        if name.lower() == "host":
            return value
    return None


def response_status(data: bytes | bytearray | memoryview) -> int | None:
    """Status code of an ``HTTP/1.x NNN`` status line at the start of ``data``, else None."""
    try:
        m = _STATUS_LINE.match(bytes(data[:32]))
        return int(m.group(1)) if m else None
    except Exception:  # pragma: no cover
        return None


#: at most this many characters of a reason phrase are kept (:func:`response_reason`)
REASON_CHARS = 256
#: a status line at the start of the data or of a line: its code and reason phrase
_REASON_LINE = re.compile(rb"(?:^|\n)HTTP/1\.[01] ([1-5][0-9][0-9])(?: ([^\r\n]*))?(?:\r?\n|$)")


def response_reason(data: bytes | bytearray | memoryview, status: int) -> str:
    """The reason phrase (RFC 9112 §4) of the last status line with code ``status`` in the first
    64 KiB of ``data`` (a server's stream: after a 407 and a request asked again, the last
    answer), as escaped text (:func:`.dns.text_from_bytes`; at most :data:`REASON_CHARS`
    characters, ``…`` added when longer, spaces at its ends dropped): what a proxy says of its
    refusal beyond the code (Microsoft TMG/ISA: *Proxy Error ( The specified Secure Sockets
    Layer (SSL) port is not allowed … )*). '' when there is no such line or its phrase is empty.
    Never raises."""
    try:
        found = b""
        for m in _REASON_LINE.finditer(bytes(data[:_LIMIT])):
            if int(m.group(1)) == status:
                found = m.group(2) or b""
        text = text_from_bytes(found.strip(b" \t"))
        return text if len(text) <= REASON_CHARS else text[:REASON_CHARS] + "\u2026"
    except Exception:  # pragma: no cover - defensive
        return ""


#: at most this many characters of a ``Location`` are kept (:func:`response_location`)
LOCATION_CHARS = 200


def _final_head_lines(buf: bytes, status: int | None = None) -> tuple[int, list[bytes], int | None] | None:
    """The first final (non-1xx) response at the start of ``buf`` (``status``: the first whose code
    is that one, the answers before it stepped over by their length: a proxy's 407 before the
    request asked again): ``(status, header lines, head end)`` (its lines after the status line,
    LF split, CR kept; a line cut by the end of ``buf`` left out; the head end None when the empty
    line ending it is not in ``buf``), None when ``buf`` starts with no status line or no such
    answer is reached."""
    pos = 0
    while True:
        code = response_status(buf[pos:pos + 32])
        if code is None:
            return None
        hl = head_length(buf[pos:])
        head = buf[pos:pos + hl] if hl is not None else buf[pos:]
        if hl is None or (code >= 200 and (status is None or code == status)):
            break
        if code >= 200:
            end = _body_end(head, buf, pos + hl, len(buf))
            if end is None:
                return None
            pos = end
            continue
        pos += hl
    if status is not None and code != status:
        return None
    lines = head.split(b"\n")[1:]
    if hl is None:
        lines.pop()                  # (after the last line end: a line cut, or nothing)
    return code, lines, None if hl is None else pos + hl


def _header_bytes(lines: list[bytes], name: bytes) -> bytes | None:
    """The value (spaces, tabs and CR at its ends stripped) of the first of ``lines`` that is a
    header named ``name`` (lower case, matched case-insensitively), else None."""
    for line in lines:
        key, colon, value = line.partition(b":")
        if colon and key.strip().lower() == name:
            return value.strip(b" \t\r")
    return None


def response_location(data: bytes | bytearray | memoryview) -> str | None:
    """The ``Location`` header (RFC 9110 §10.2.2) of the first final (non-1xx) response at the
    start of ``data``, as escaped text (:func:`.dns.text_from_bytes`; at most
    :data:`LOCATION_CHARS` characters, ``…`` added when longer); None when ``data`` starts with no
    status line, the head has no such header, or its line is cut. Never raises."""
    try:
        found = _final_head_lines(bytes(data[:_LIMIT]))
        value = _header_bytes(found[1], b"location") if found else None
        if value is None:
            return None
        text = text_from_bytes(value)
        return text if len(text) <= LOCATION_CHARS else text[:LOCATION_CHARS] + "…"
    except Exception:  # pragma: no cover - defensive
        return None


#: media types of a page (RFC 9110 §8.3): what a web filter's block page or a captive portal
#: answers with (:func:`page_media_type`)
PAGE_TYPES = ("text/html", "application/xhtml+xml")
#: how a page's body starts when its answer names no Content-Type (after white space; compared in
#: lower case): an HTML document (the WHATWG sniffing's first signatures)
_PAGE_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<title", b"<script")
#: how a body starts that is no page whatever its Content-Type: DER (a SEQUENCE: a CRL, an OCSP
#: response, a certificate) or PEM
_NOT_PAGE_STARTS = (b"\x30", b"-----BEGIN")


def page_media_type(data: bytes | bytearray | memoryview, status: int | None = None) -> str:
    """The media type of the first final (non-1xx) response at the start of ``data`` (``status``:
    the first with that code, :func:`exchange`'s outcome; '' when it is not reached) when it is
    a page: its ``Content-Type`` (RFC 9110 §8.3; lower case, parameters such as ``charset``
    dropped, escaped as :func:`.dns.text_from_bytes`) when one of :data:`PAGE_TYPES`, or
    ``text/html, no Content-Type`` when it names none (or an empty one) and its body starts as
    an HTML document does (``<!DOCTYPE html``, ``<html``…). '' when no body byte is in view (the
    answer to a HEAD, a 204, a head cut) or the body starts as DER (``0x30``) or PEM does, whatever
    its type (a misconfigured server's CRL as ``text/html``), and otherwise: another type (``application/pkix-crl``,
    ``application/ocsp-response``), no status line, or a head cut before its Content-Type could
    be read. Never raises."""
    try:
        buf = bytes(data[:_LIMIT])
        found = _final_head_lines(buf, status)
        if found is None:
            return ""
        _, lines, end = found
        if end is None:
            return ""
        # (no body in view, a HEAD's answer or a 204, is no page; nor one a CRL, an OCSP response or
        # a certificate starts as, DER or PEM, whatever type a misconfigured server gives it)
        body = buf[end:end + 256].lstrip(b" \t\r\n\xef\xbb\xbf")
        if not body or body.startswith(_NOT_PAGE_STARTS):
            return ""
        value = _header_bytes(lines, b"content-type")
        if value:
            kind = value.split(b";", 1)[0].strip(b" \t").lower()
            return text_from_bytes(kind) if text_from_bytes(kind) in PAGE_TYPES else ""
        return "text/html, no Content-Type" if body.lower().startswith(_PAGE_STARTS) else ""
    except Exception:  # pragma: no cover - defensive
        return ""


#: what a plain HTTP request asks for when it fetches certificate status or a certificate
#: (:func:`revocation_asked`): a CRL (RFC 5280 §4.2.1.13, ``.crl``), a CA certificate
#: (§4.2.2.1's caIssuers: ``.crt``, ``.cer``, ``.der``, ``.p7c``), an OCSP response (RFC 6960
#: Appendix A: a POST of ``application/ocsp-request``, or a GET of the request's base64 DER,
#: which starts ``M`` as a SEQUENCE does)
_REVOCATION_SUFFIXES = ((".crl", "a certificate revocation list (CRL)"),
                        (".crt", "a CA certificate"), (".cer", "a CA certificate"),
                        (".der", "a CA certificate"), (".p7c", "a CA certificate"),
                        (".p7b", "a CA certificate"))
_OCSP_GET = re.compile(r"/M[A-Za-z0-9+/=%]{40,}\Z")


def revocation_asked(req: HttpRequest) -> str:
    """What ``req`` (a plain HTTP request) asks for when it fetches certificate status data or a
    certificate, for a detail: ``an OCSP response``, ``a certificate revocation list (CRL)``, ``a
    CA certificate``; '' for anything else (a page, ``/``, an API). The path of an origin-form
    or absolute-form target, its query left out."""
    target = req.target
    if "://" in target[:12]:
        slash = target.find("/", target.index("://") + 3)
        target = target[slash:] if slash >= 0 else "/"
    path = target.split("?", 1)[0].split("#", 1)[0]
    ctype = (req.header("Content-Type") or "").split(";", 1)[0].strip().lower()
    if ctype == "application/ocsp-request" or (req.method == "GET" and _OCSP_GET.search(path)):
        return "an OCSP response"
    low = path.lower()
    for suffix, what in _REVOCATION_SUFFIXES:
        if low.endswith(suffix):
            return what
    return ""


def looks_like_http_response(data: bytes | bytearray | memoryview) -> bool:
    """True when ``data`` starts with an HTTP/1.0 or HTTP/1.1 status line (``HTTP/1.1 200 ``)."""
    return response_status(data) is not None


def head_length(data: bytes | bytearray | memoryview) -> int | None:
    """Length in bytes of the HTTP/1.x head (request or response) at the start of ``data``: up to
    and including the empty line that ends it (CRLF CRLF; a bare LF is tolerated as for the
    header lines). None when that end is not within the first 64 KiB of ``data``."""
    try:
        buf = bytes(data[:_LIMIT])
    except Exception:  # pragma: no cover
        return None
    crlf = buf.find(b"\n\r\n")
    lf = buf.find(b"\n\n")
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return crlf + 3
    return lf + 2 if lf >= 0 else None


_CONTENT_LENGTH = re.compile(rb"\r?\ncontent-length[ \t]*:[ \t]*(\d{1,12})[ \t]*\r?\n", re.IGNORECASE)
_TRANSFER_ENCODING = re.compile(rb"\r?\ntransfer-encoding[ \t]*:([^\r\n]*)", re.IGNORECASE)
#: a chunk-size line (RFC 9112 §7.1): hex digits, then optional whitespace and chunk extensions
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,15})[ \t]*(?:;[^\r\n]*)?\r?\n")


def _chunked_end(data: bytes | memoryview, pos: int, end: int) -> int | None:
    """Where a chunked body (RFC 9112 §7.1) starting at ``data[pos]`` ends: after its last-chunk
    (``0``), trailer section and final CRLF. None when that end is not within ``data[:end]``
    (not fully captured) or the bytes are no chunked body."""
    while True:
        m = _CHUNK_SIZE.match(bytes(data[pos:min(pos + 4096, end)]))
        if m is None:
            return None
        size = int(m.group(1), 16)
        pos += m.end()
        if size == 0:
            break
        pos += size
        if bytes(data[pos:pos + 2]) == b"\r\n":
            pos += 2
        elif bytes(data[pos:pos + 1]) == b"\n":
            pos += 1
        else:
            return None            # cut, or no CRLF after the data
        if pos > end:
            return None
    # the trailer section: field lines up to an empty line
    while pos < end:
        eol = bytes(data[pos:min(pos + 16384, end)]).find(b"\n")
        if eol < 0:
            return None
        line = bytes(data[pos:pos + eol])
        pos += eol + 1
        if line in (b"", b"\r"):
            return pos
    return None


def _body_end(head: bytes, data: bytes | memoryview, pos: int, end: int) -> int | None:
    """Where the body of the message whose ``head`` ends at ``data[pos]`` ends (RFC 9112 §6.3):
    a chunked transfer coding is walked (it overrides Content-Length), a Content-Length is
    stepped over, no length at all is taken as no body (lenient: a keep-alive answer such as
    ``407`` without a length is followed by the next answer head, if any). None when the end is
    not within ``data[:end]`` or cannot be known (a transfer coding other than chunked last: the
    body runs to the close)."""
    te = _TRANSFER_ENCODING.findall(head)
    if te:
        codings = [c.strip(b" \t").lower() for c in b",".join(te).split(b",") if c.strip(b" \t")]
        if not codings or codings[-1] != b"chunked":
            return None
        return _chunked_end(data, pos, end)
    m = _CONTENT_LENGTH.search(head)
    pos += int(m.group(1)) if m else 0
    return pos if pos <= end else None


def exchange(client: bytes | bytearray | memoryview, server: bytes | bytearray | memoryview,
             connect: bool = False, proxy: bool = False,
             auth: list[str] | None = None) -> tuple[int | None, int | None, int | None]:
    """The outcome of the HTTP/1.x exchange at the start of a connection: ``(status, client_at,
    server_at)``.

    ``status``: the first final (non-1xx) response's status code, as Zeek's ``status_code``
    (1xx answers are informational); for a CONNECT (``connect``) whose first answers asked for
    something (407 proxy authentication, 401) and the client asked again on the same connection,
    the answer to the last request seen; the same for a request sent to a proxy in absolute-form
    (``proxy``: ``GET http://host/...``) answered ``407`` (the proxy's login) and asked again.
    None when the server's bytes start with no status line. ``client_at``/``server_at``: where
    the bytes inside the tunnel start (after the last CONNECT head and after the 2xx answer's
    head, bytes) when a CONNECT was answered 2xx, else None (always for ``proxy``: no tunnel).
    ``auth`` (a list, for ``connect`` or ``proxy``): gets, per request answered, the scheme of its
    Proxy-Authorization header (:func:`proxy_auth_scheme`: ``NTLM``, ``Basic``…; '' without one):
    the last one is the request ``status`` answers.
    Response bodies are stepped over (Content-Length, or a chunked transfer coding walked chunk
    by chunk; a request's body as well before the request asked again); a head or body not
    complete in view ends the walk."""
    walk = connect or proxy
    client = bytes(client[:_LIMIT]) if walk else b""
    end = min(len(server), _LIMIT)
    status, so, co = None, 0, 0
    while so < end:
        code = response_status(server[so:so + 32])
        if code is None:
            break
        if code >= 200 and not walk:
            return code, None, None      # (the common case: no head to walk)
        hl = head_length(server[so:end])
        if hl is None:
            return (code if code >= 200 else status), None, None
        head = bytes(server[so:so + hl])
        so += hl
        if code < 200:
            continue                     # 100 Continue, 102, 103: informational
        status = code
        # the request this answers
        ch = head_length(client[co:]) if co < len(client) else None
        if ch is None:
            break
        request = client[co:co + ch]
        co += ch
        if auth is not None:
            auth.append(proxy_auth_scheme(request))
        if connect:
            if 200 <= code < 300:
                return status, co, so
        else:
            if code != 407:
                break                    # a proxy's answer other than its login: the outcome
            after = _body_end(request, client, co, len(client))
            if after is None:
                break
            co = after
        body = _body_end(head, server, so, end)
        if body is None:
            break                        # (the next answer, if any, is not in view)
        so = body
        if not (client[co:].startswith(b"CONNECT ") if connect else looks_like_http_request(client[co:])):
            break                        # no new request after this answer
    return status, None, None


def proxy_auth_scheme(head: bytes) -> str:
    """The scheme of a request head's Proxy-Authorization header (RFC 9110 §11.7.1: ``NTLM``,
    ``Negotiate``, ``Basic``, ``Digest``…, as written, at most 20 letters, digits or dashes; an
    NTLM or Negotiate token that is an NTLM negotiate message (type 1, no credentials yet):
    ``NTLM negotiate``), '' without one. Never raises."""
    try:
        for line in bytes(head).split(b"\r\n")[1:]:
            name, sep, value = line.partition(b":")
            if sep and name.strip().lower() == b"proxy-authorization":
                parts = value.strip().split(None, 1)
                scheme = parts[0].decode("ascii", "replace")[:20] if parts else ""
                if not scheme or not all(c.isalnum() or c == "-" for c in scheme):
                    return "other"
                if scheme.lower() in ("ntlm", "negotiate") and len(parts) > 1:
                    token = base64.b64decode(parts[1].strip()[:64] + b"==", validate=False)
                    if token[:8] == b"NTLMSSP\0" and token[8:12] == b"\x01\0\0\0":
                        return f"{scheme} negotiate"
                return scheme
    except Exception:  # pragma: no cover - defensive
        return ""
    return ""


#: answers to plain HTTP sent straight to the server that say the request did not get through:
#: a filter's refusal (403 Forbidden, 407 Proxy Authentication Required, 451 Unavailable For
#: Legal Reasons, 511 Network Authentication Required: a captive portal) or a gateway in the way
#: failing to reach the server (502, 503, 504). Any other answer (404, 400, 500…) comes from a
#: server that was reached; through an explicit proxy every answer but 2xx/3xx is a refusal
#: (classify judges the first answer by them, inspect reads the later ones of a connection)
FILTER_STATUSES = ("403", "407", "451", "511", "502", "503", "504")
#: requests of one keep-alive connection read at most by :func:`later_answers`
MAX_EXCHANGES = 16


def later_answers(client: bytes | bytearray | memoryview,
                  server: bytes | bytearray | memoryview) -> list[tuple[int, int, str]]:
    """The answers after the first on a keep-alive (or pipelined) HTTP/1.x connection, paired with
    the requests they answer: ``[(k, status, target), …]`` for the ``k``-th request (1-based, from
    2), its final answer's status code (1xx skipped) and its request target (escaped text, as
    :attr:`HttpRequest.target`), in order, at most :data:`MAX_EXCHANGES` requests. A request's and
    an answer's body are stepped over by their length (Content-Length, chunked; a HEAD's answer
    and a 204 or 304 have none); the walk stops where a head or body is not whole in view, or the
    bytes are no HTTP. [] when there is one exchange or none. Never raises (a filter can allow
    one URL of a host and refuse another on the same connection: the first answer alone hides
    it; Zeek's http.log has a row per request)."""
    out: list[tuple[int, int, str]] = []
    try:
        cbuf = bytes(client[:_LIMIT])
        first = head_length(cbuf)
        if first is None or first == len(cbuf):
            return out          # (one request without a body, the common case: nothing after it)
        sbuf = bytes(server[:_LIMIT])
        co = so = 0
        for k in range(1, MAX_EXCHANGES + 1):
            req = parse_request(cbuf[co:])
            ch = head_length(cbuf[co:]) if req is not None else None
            if req is None or ch is None:
                break
            after = _body_end(cbuf[co:co + ch], cbuf, co + ch, len(cbuf))
            # the answer: 1xx heads skipped, then the final one
            code = None
            while so < len(sbuf):
                code = response_status(sbuf[so:so + 32])
                hl = head_length(sbuf[so:]) if code is not None else None
                if code is None or hl is None:
                    return out
                head = sbuf[so:so + hl]
                so += hl
                if code >= 200:
                    break
            if code is None or code < 200:
                break
            if k > 1:
                out.append((k, code, req.target))
            no_body = req.method == "HEAD" or code in (204, 304)
            end = so if no_body else _body_end(head, sbuf, so, len(sbuf))
            if end is None or after is None:
                break
            so, co = end, after
    except Exception:  # pragma: no cover - defensive
        return out
    return out


def connect_target(req: HttpRequest) -> str | None:
    """``host:port`` of a CONNECT request in authority-form (RFC 9110 §9.3.6: ``CONNECT
    server.example.com:443 HTTP/1.1``), an IPv6 literal in brackets; None for another method,
    a target in another form (``/path``, ``scheme://…``) or one without a valid port. The host is
    the request's (escaped) text, as :attr:`HttpRequest.host`."""
    if req.method != "CONNECT" or req.target.startswith("/") or _target_authority(req.target) is not None:
        return None
    host, port = split_host_port(req.target)
    if host is None or port is None:
        return None
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


#: schemes of an absolute-form request target taken for a request to a proxy, and their default ports
PROXY_SCHEMES = {"http": 80, "https": 443}


def proxy_target(req: HttpRequest) -> str | None:
    """The target of a request sent to an explicit proxy: for a CONNECT, ``host:port`` as
    :func:`connect_target`; for a request in absolute-form (RFC 9112 §3.2.2, what a client sends
    to a proxy: ``GET http://crl3.digicert.com/x.crl HTTP/1.1``) with scheme ``http`` or
    ``https``, ``scheme://host:port`` (scheme in lower case, the URI's port or else the scheme's
    default, 80 or 443; an IPv6 literal in brackets; userinfo dropped). None for another form, an
    empty host or an invalid port. The host is the request's (escaped) text, as
    :attr:`HttpRequest.host`. (A CONNECT target never starts with a scheme: the two forms are
    told apart by the ``scheme://`` prefix.)"""
    if req.method == "CONNECT":
        return connect_target(req)
    auth = _target_authority(req.target)
    if auth is None:
        return None
    scheme = req.target[:req.target.find("://")].lower()
    default = PROXY_SCHEMES.get(scheme)
    if default is None:
        return None
    s = auth.strip().rsplit("@", 1)[-1]
    host, port = split_host_port(s)
    if host is None:
        return None
    if port is None:   # no port, an empty one (RFC 3986 §3.2.3: the default), or an invalid one
        if s.startswith("["):
            tail = s[s.find("]") + 1:] if "]" in s else "x"
        else:
            tail = ":" + s.split(":", 1)[1] if s.count(":") == 1 else ""
        if tail not in ("", ":"):
            return None
        port = default
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
