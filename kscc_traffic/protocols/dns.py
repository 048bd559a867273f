"""DNS messages over UDP and TCP (RFC 1035, RFC 3596 AAAA, RFC 7766 DNS over TCP).

Pure, total parsers: any input (truncated, garbage, hostile) gives a partial result or ``None``;
nothing raises, work is linear in the input length.

Name text
---------
Names (here and in :mod:`.tls` / :mod:`.http`, which use :func:`text_from_bytes`) are untrusted
bytes turned into ``str`` with one rule, ``backslashreplace``-style, so the result is always
valid, printable-safe UTF-8 text and never ambiguous:

* valid UTF-8 is kept as is;
* a literal backslash becomes ``\\\\``; bytes that are not valid UTF-8 become ``\\xNN``;
  ASCII control characters (0x00-0x1f, 0x7f) become ``\\xNN`` too;
* in DNS names only, a ``.`` *inside* a label becomes ``\\.`` (RFC 1035 §5.1 presentation
  format), so a single label ``"ksc.kaspersky"`` can never pass for two labels.

Host names (DNS names, the TLS SNI, an HTTP request's host) go one step further,
:func:`host_text`: every byte above 0x7F is ``\\xNN`` too, as Zeek logs them. A name on the
wire is ASCII (an internationalised one travels as ``xn--`` A-labels, RFC 5890), so a name
holding other bytes is forged or damaged and must not read as the name it imitates:
``eu1.ksc.k\\xd0\\xb0spersky.com`` (a Cyrillic ``а``), ``eu1\\xe3\\x80\\x82ksc…`` (an
ideographic full stop, which IDNA would map to a dot).

Names are returned without the trailing dot and in the case found on the wire; the root name is
``"."``. Compare them with :func:`kscc_traffic.protocols.tls.name_matches` / ``under_mask``
(case-insensitive).

Compression pointers (RFC 1035 §4.1.4) must point strictly backwards (before the pointer itself),
at most 64 hops are followed and a name longer than 255 octets is refused. A name that breaks these
rules (a loop, a forward pointer, an unknown label type) is rejected: the question or record that
carries it is dropped (a CNAME/NS/PTR target becomes ``None``), and the rest of the message is
still read because the owner name's end in the byte stream is known from its first pointer.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from ..addresses import ipv6_text
from ..text import CONTROL

__all__ = [
    "DnsMessage",
    "DnsRecord",
    "parse_message",
    "parse_tcp_stream",
    "rcode_name",
    "RCODE_NAMES",
    "resolved_names",
    "text_from_bytes",
    "host_text",
    "ascii_text",
    "TYPE_A",
    "TYPE_AAAA",
    "TYPE_CNAME",
]

TYPE_A = 1
TYPE_NS = 2
TYPE_CNAME = 5
TYPE_PTR = 12
TYPE_AAAA = 28
TYPE_DNAME = 39
TYPE_OPT = 41
TYPE_HTTPS = 65

#: Zeek's ``rcode_name`` of each 4-bit header RCODE (``DNS::base_errors`` in Zeek's
#: ``base/protocols/dns/consts.zeek``, spelling included: 8 is ``NXRRSet`` there; 11-15
#: ``unassigned-N``). Index = :attr:`DnsMessage.rcode` (0-15; the EDNS extended RCODE is not merged,
#: as Zeek's ``rcode`` is the header's).
RCODE_NAMES: tuple[str, ...] = (
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
    "NXRRSet", "NOTAUTH", "NOTZONE", "unassigned-11", "unassigned-12", "unassigned-13",
    "unassigned-14", "unassigned-15",
)


def rcode_name(rcode: int) -> str:
    """Zeek's ``rcode_name`` of a response code (:data:`RCODE_NAMES`; any other number as Zeek's
    default, ``rcode-N``)."""
    return RCODE_NAMES[rcode] if 0 <= rcode < len(RCODE_NAMES) else f"rcode-{rcode}"


#: record types whose RDATA is a single (possibly compressed) domain name
_NAME_TYPES = frozenset({TYPE_NS, TYPE_CNAME, TYPE_PTR, TYPE_DNAME})

_MAX_HOPS = 64
_MAX_NAME = 255
#: what is escaped in a name's text: C0 controls, DEL, C1 controls, line/paragraph separators,
#: bidi marks, embeddings, overrides and isolates (a right-to-left override in an SNI would show
#: a spoofed name in a spreadsheet or editor), zero-width and other invisible format characters
#: (U+200B before a name would hide that it is not the name): the set
#: :data:`kscc_traffic.text.CONTROL`
_CTRL = CONTROL


def _esc_ctrl(m: re.Match[str]) -> str:
    c = ord(m.group())
    if c < 0x80:
        return "\\x%02x" % c
    return "\\u%04x" % c if c < 0x10000 else "\\U%08x" % c   # C1 as \u0085: \x85 is the byte 0x85


#: printable ASCII other than a backslash: the bytes text_from_bytes keeps as they are (a text
#: made only of them is its own text; protocols.http reads plain header lines on that basis)
PLAIN_BYTES = bytes(range(0x20, 0x5c)) + bytes(range(0x5d, 0x7f))


def text_from_bytes(raw: bytes | bytearray | memoryview) -> str:
    """Untrusted bytes -> ``str``: UTF-8, ``\\\\`` for a backslash, ``\\xNN`` for bytes that are
    not UTF-8 and for C0 controls and DEL, ``\\uNNNN`` (``\\UNNNNNNNN`` past U+FFFF) for C1
    controls, line/paragraph separators, bidi controls and invisible format characters
    (:data:`_CTRL`). Different bytes give different texts. Never
    raises."""
    b = bytes(raw)
    if not b.translate(None, PLAIN_BYTES):  # printable ASCII other than a backslash: as it is
        return b.decode("ascii")
    if b"\\" in b:
        b = b.replace(b"\\", b"\\\\")
    s = b.decode("utf-8", "backslashreplace")
    if _CTRL.search(s):
        s = _CTRL.sub(_esc_ctrl, s)
    return s


#: in a text of text_from_bytes: a doubled (literal) backslash, or the escape of a character
#: (_esc_ctrl: \\uNNNN, \\UNNNNNNNN); read left to right, so an escape is never a literal's tail
_U_ESCAPE = re.compile(r"(\\\\)|\\u([0-9a-f]{4})|\\U([0-9a-f]{8})")


def _u_as_bytes(m: re.Match[str]) -> str:
    if m.group(1):
        return m.group(1)
    c = chr(int(m.group(2) or m.group(3), 16))
    return "".join("\\x%02x" % b for b in c.encode("utf-8", "surrogatepass"))


def ascii_text(s: str) -> str:
    """Text made by :func:`text_from_bytes` -> the same with every character above U+007F
    written as the ``\\xNN`` of each of its UTF-8 bytes, those text_from_bytes wrote as
    ``\\uNNNN`` too (a no-break space is ``\\xc2\\xa0``, as Zeek logs it): so every byte
    above 0x7F of the original bytes is ``\\xNN`` (still one text per bytes: backslashes are
    doubled)."""
    if "\\u" in s or "\\U" in s:
        s = _U_ESCAPE.sub(_u_as_bytes, s)
    if s.isascii():
        return s
    return "".join(c if c < "\x80" else "".join("\\x%02x" % b for b in c.encode("utf-8", "surrogatepass"))
                   for c in s)


def host_text(raw: bytes | bytearray | memoryview) -> str:
    """Untrusted bytes of a host name (SNI, HTTP host) -> text: as :func:`text_from_bytes`, with
    every byte above 0x7F as ``\\xNN`` (see the module's "Name text"). Never raises."""
    return ascii_text(text_from_bytes(raw))


_LDH = re.compile(rb"[A-Za-z0-9_\-*]+\Z")


def _label_text(b: bytes) -> str:
    if _LDH.match(b):
        return b.decode("ascii")
    # text_from_bytes never emits "." in its escapes, so escaping dots afterwards is unambiguous
    return host_text(b).replace(".", "\\.")


@dataclass
class DnsRecord:
    """One resource record (RFC 1035 §4.1.3).

    ``value``: for A/AAAA the address text (:func:`kscc_traffic.addresses.ipv6_text` for AAAA:
    an IPv4-mapped one as ``::ffff:a.b.c.d``; ``None`` if the RDATA has the wrong length); for
    CNAME/NS/PTR/DNAME the target name (``None`` if it is malformed); for every other type the
    raw RDATA bytes. ``ttl`` is in seconds.
    """

    name: str
    rtype: int
    ttl: int
    value: str | bytes | None
    rclass: int = 1


@dataclass
class DnsMessage:
    """A DNS message (RFC 1035 §4.1).

    ``flags`` is the raw 16-bit flags word; ``rcode`` its low 4 bits (the EDNS extended RCODE is
    not merged). ``truncated`` is the TC bit (the *server* truncated the answer).
    ``partial`` is True when the bytes ended before the header's counts were satisfied or a
    record could not be delimited (our copy is cut); every complete record before the cut is kept.
    ``bad_names`` counts questions/records dropped because their name was rejected.
    ``questions`` are ``(name, qtype)`` pairs. ``ancount``: the header's answer count (more than
    ``answers`` holds when the message is ``partial`` or names were rejected). ``cut``: a message
    of a TCP stream whose length prefix runs past the bytes there (:func:`parse_tcp_stream`).
    """

    id: int
    is_response: bool
    opcode: int
    rcode: int
    truncated: bool
    flags: int
    questions: list[tuple[str, int]] = field(default_factory=list)
    answers: list[DnsRecord] = field(default_factory=list)
    authority: list[DnsRecord] = field(default_factory=list)
    additional: list[DnsRecord] = field(default_factory=list)
    partial: bool = False
    bad_names: int = 0
    ancount: int = 0
    cut: bool = False


#: suffix cache of one message: pointer target -> (text, wire octets incl. the root, hops used)
_Cache = dict[int, tuple[str, int, int]]


def _read_name(data: bytes, off: int, n: int,
               cache: _Cache | None = None) -> tuple[str | None, int]:
    """Read a possibly compressed name at ``off``.

    Returns ``(name, end)``: ``end`` is the offset just after the name *at its original place*
    (after the terminating zero or the first pointer), or -1 if even that is unknown (data cut,
    unknown label type before any pointer). ``name`` is None when the name is rejected.
    ``cache`` (one per message) remembers the names found at pointer targets, so hostile
    messages whose names all end in a deep pointer chain stay linear.
    """
    labels: list[str] = []
    pos = off
    end = -1
    hops = 0
    total = 1
    targets: list[tuple[int, int, int, int]] = []  # (target, len(labels), total, hops) at jump
    suffix: str | None = None
    while True:
        if pos >= n:
            return None, end
        ln = data[pos]
        if ln == 0:
            if end < 0:
                end = pos + 1
            break
        kind = ln & 0xC0
        if kind == 0xC0:
            if pos + 1 >= n:
                return None, end
            ptr = ((ln & 0x3F) << 8) | data[pos + 1]
            if end < 0:
                end = pos + 2
            hops += 1
            if ptr >= pos or hops > _MAX_HOPS:
                return None, end
            hit = cache.get(ptr) if cache is not None else None
            if hit is not None:
                text, wire, more = hit
                if total - 1 + wire > _MAX_NAME or hops + more > _MAX_HOPS:
                    return None, end
                targets.append((ptr, len(labels), total, hops))
                total += wire - 1
                hops += more
                suffix = text
                break
            targets.append((ptr, len(labels), total, hops))
            pos = ptr
            continue
        if kind != 0:  # 0x40 extended / 0x80 reserved label types (RFC 6891 §5)
            return None, end
        if pos + 1 + ln > n:
            return None, end
        total += ln + 1
        if total > _MAX_NAME:
            return None, end
        labels.append(_label_text(data[pos + 1:pos + 1 + ln]))
        pos += 1 + ln
    if suffix is not None and suffix != ".":
        labels.append(suffix)
    if cache is not None:
        for target, idx, tot_at, hops_at in targets:
            if target not in cache:
                rest = labels[idx:]
                cache[target] = ((".".join(rest) if rest else "."), total - tot_at + 1,
                                 hops - hops_at)
    return (".".join(labels) if labels else "."), end


def _rdata_value(data: bytes, rtype: int, start: int, rdlen: int,
                 cache: _Cache | None = None) -> str | bytes | None:
    rd = data[start:start + rdlen]
    if rtype == TYPE_A:
        return str(ipaddress.IPv4Address(rd)) if rdlen == 4 else None
    if rtype == TYPE_AAAA:
        return ipv6_text(rd) if rdlen == 16 else None
    if rtype in _NAME_TYPES:
        name, end = _read_name(data, start, start + rdlen, cache)
        if name is None or end != start + rdlen:
            return None
        return name
    return rd


def parse_message(data: bytes | bytearray | memoryview) -> DnsMessage | None:
    """Parse one DNS message (the UDP payload, or one TCP message without its length prefix).

    Returns None only when fewer than the 12 header bytes are present. Records of types we do not
    interpret (e.g. HTTPS/SVCB 65, RFC 9460) are kept with raw RDATA and skipped by RDLENGTH, so
    the A/AAAA records around them survive.
    """
    try:
        return _parse_message(bytes(data))
    except Exception:  # pragma: no cover - defensive: the parser is meant to be total
        return None


def _parse_message(data: bytes) -> DnsMessage | None:
    n = len(data)
    if n < 12:
        return None
    ident = (data[0] << 8) | data[1]
    flags = (data[2] << 8) | data[3]
    qd = (data[4] << 8) | data[5]
    an = (data[6] << 8) | data[7]
    ns = (data[8] << 8) | data[9]
    ar = (data[10] << 8) | data[11]
    msg = DnsMessage(
        id=ident,
        is_response=bool(flags & 0x8000),
        opcode=(flags >> 11) & 0xF,
        rcode=flags & 0xF,
        truncated=bool(flags & 0x0200),
        flags=flags,
        ancount=an,
    )
    pos = 12
    cache: _Cache = {}
    for _ in range(qd):
        name, end = _read_name(data, pos, n, cache)
        if end < 0 or end + 4 > n:
            msg.partial = True
            return msg
        qtype = (data[end] << 8) | data[end + 1]
        pos = end + 4
        if name is None:
            msg.bad_names += 1
        else:
            msg.questions.append((name, qtype))
    for count, section in ((an, msg.answers), (ns, msg.authority), (ar, msg.additional)):
        for _ in range(count):
            name, end = _read_name(data, pos, n, cache)
            if end < 0 or end + 10 > n:
                msg.partial = True
                return msg
            rtype = (data[end] << 8) | data[end + 1]
            rclass = (data[end + 2] << 8) | data[end + 3]
            ttl = int.from_bytes(data[end + 4:end + 8], "big")
            rdlen = (data[end + 8] << 8) | data[end + 9]
            start = end + 10
            if start + rdlen > n:
                msg.partial = True
                return msg
            pos = start + rdlen
            if name is None:
                msg.bad_names += 1
                continue
            value = _rdata_value(data, rtype, start, rdlen, cache)
            section.append(DnsRecord(name, rtype, ttl, value, rclass))
    return msg


def parse_tcp_stream(data: bytes | bytearray | memoryview) -> list[DnsMessage]:
    """DNS over TCP (RFC 1035 §4.2.2, RFC 7766): 2-byte big-endian length, message, repeated.

    The last message may be cut: what is there is parsed (``partial`` and ``cut`` set). A zero length prefix
    is skipped. Returns the messages in stream order.
    """
    buf = bytes(data)
    n = len(buf)
    out: list[DnsMessage] = []
    pos = 0
    while pos + 2 <= n:
        ln = (buf[pos] << 8) | buf[pos + 1]
        pos += 2
        if ln == 0:
            continue
        chunk = buf[pos:pos + ln]
        m = parse_message(chunk)
        if m is not None:
            if len(chunk) < ln:
                m.partial = m.cut = True
            out.append(m)
        pos += ln
    return out


def _key(name: str) -> str:
    k = name.lower() if name.isascii() else "".join(
        c.lower() if "A" <= c <= "Z" else c for c in name)
    return k.rstrip(".") or "."


def resolved_names(msg: DnsMessage | None) -> list[tuple[str, str]]:
    """``(address, name)`` pairs from the answer section of a response.

    ``name`` is the head of the CNAME chain that ends at the A/AAAA record's owner: the CNAME
    links in the answer section are followed backwards (case-insensitively, loop-safe) to a name
    that no CNAME in the answer points to. When the message has a question, only the records
    whose chain reaches a question name count, and that name is reported (so the name the client
    asked for is reported even if the chain loops or branches): an address record for another
    name (``evil.example A 203.0.113.10`` in the answer to ``eu1.ksc.kaspersky.com``) is one a stub
    resolver skips (glibc's ``getanswer_r``), whatever its place. Without a question every head
    found is reported. Duplicates removed, answer order kept. Empty for queries.
    """
    if msg is None or not msg.is_response:
        return []
    parents: dict[str, list[str]] = {}
    display: dict[str, str] = {}
    addrs: list[tuple[str, str]] = []
    for rr in msg.answers:
        k = _key(rr.name)
        display.setdefault(k, rr.name.rstrip(".") or ".")
        if rr.rtype == TYPE_CNAME and isinstance(rr.value, str):
            t = _key(rr.value)
            display.setdefault(t, rr.value.rstrip(".") or ".")
            if k != t:
                parents.setdefault(t, []).append(k)
        elif rr.rtype in (TYPE_A, TYPE_AAAA) and isinstance(rr.value, str):
            addrs.append((rr.value, k))
    qnames = {_key(q): (q.rstrip(".") or ".") for q, _ in msg.questions}
    out: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    memo: dict[str, list[str]] = {}
    budget = 200_000  # total graph steps for the whole message (hostile CNAME webs)
    for addr, owner in addrs:
        names = memo.get(owner)
        if names is None:
            # breadth-first walk up the reverse CNAME graph
            visited = {owner}
            frontier = [owner]
            heads: list[str] = []
            while frontier and budget > 0:
                nxt: list[str] = []
                for node in frontier:
                    ps = parents.get(node)
                    if not ps:
                        heads.append(node)
                        continue
                    for p in ps:
                        budget -= 1
                        if p not in visited:
                            visited.add(p)
                            nxt.append(p)
                frontier = nxt
            on_chain_q = [k for k in visited if k in qnames]
            if on_chain_q:
                names = [qnames[k] for k in sorted(on_chain_q)]
            elif qnames:     # not an answer to the question asked
                names = []
            elif heads:
                names = [display.get(h, h) for h in heads]
            else:  # a pure loop with no head (or the budget ran out): the owner itself
                names = [display.get(owner, owner)]
            memo[owner] = names
        for nm in names:
            if (addr, nm) not in seen:
                seen.add((addr, nm))
                out.append((addr, nm))
    return out
