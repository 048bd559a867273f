"""ICMP / ICMPv6 error messages: the quoted datagram and what the type/code means.

Sources: RFC 792 (ICMP), RFC 1122 §3.2.2.1 and RFC 1812 §5.2.7.1 (destination unreachable codes
6-15), RFC 4443 (ICMPv6), RFC 6550 / RFC 8883 (ICMPv6 unreachable codes 7-8), RFC 8200 (IPv6
extension headers).

An ICMP error carries, after its 8-byte ICMP header, the start of the datagram that caused it:
the whole IP header (IPv4 with options; IPv6 with any extension headers) and at least 8 bytes of
the transport header (RFC 792 minimum; routers following RFC 1812 / RFC 4443 quote more).
:func:`quoted_datagram` takes the bytes *after* the 8-byte ICMP header — exactly what
``Packets.payload(i)`` gives for an ICMP row.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ..addresses import ipv6_text
from ..capture._slowpath import home_address, routing_final

__all__ = ["Quoted", "quoted_datagram", "is_unreachable", "is_too_big", "describe"]

#: transport protocols whose first 4 bytes are source and destination port
_PORT_PROTOS = frozenset({6, 17, 33, 132, 136})  # TCP, UDP, DCCP, SCTP, UDP-Lite
#: IPv6 extension headers with the generic (next header, length in 8-octet units - 1) layout
_V6_EXT_GENERIC = frozenset({0, 43, 60, 135, 139, 140})
_V6_FRAGMENT = 44
_V6_AH = 51
_MAX_EXT = 16
#: IP protocols of a tunnel whose inner packet a quote is followed into (as Wireshark dissects
#: it): IP-in-IP (4), IPv6 in IP (41, 6in4), GRE (47) carrying IPv4 or IPv6
_TUNNEL_PROTOS = frozenset({4, 41, 47})
#: GRE protocol type -> the IP version it carries
_GRE_IP = {0x0800: 4, 0x86DD: 6}
#: tunnels followed inside one quote at most
_MAX_TUNNELS = 3


@dataclass
class Quoted:
    """The datagram quoted by an ICMP error, seen from its sender.

    ``src``/``dst``: address text (:func:`kscc_traffic.addresses.ipv6_text` for IPv6) of the
    original datagram — ``src`` is normally the host that receives the error; where the quoted
    datagram is a tunnel's (IP-in-IP, 6in4, GRE carrying IP) and the quote reaches the inner
    packet's header, those of the inner packet, as the decoder keys the flow of a tunnelled
    packet by its inner packet (``tunnel``: the outer protocol number(s), e.g. ``(41,)``); ``dst`` is the
    final destination a type 0 or type 4 routing header with segments left names
    (:func:`kscc_traffic.capture._slowpath.routing_final`), as the decoder keys the flow. ``proto``: IP protocol of the quoted transport
    header (after IPv6 extension headers; if the quote ends inside an extension header, that
    header's number). ``sport``/``dport``: for TCP/UDP/SCTP/DCCP/UDP-Lite when the first 4
    transport bytes are present and the datagram is not a non-first fragment, else None.
    ``length``: the quoted (innermost) IP datagram's length from its header (IPv4 total length,
    IPv6 40 + payload length; of a tunnel's inner packet: the inner one's), -1 when unknown (an
    IPv6 jumbogram's 0). ``fragment``: the quoted (innermost) datagram is a fragment other than
    the first (IPv4 fragment offset, IPv6 fragment header's offset not 0): it carries no
    transport header, so no ports. ``seq``: the quoted TCP segment's sequence number when its
    first 8 bytes are present, else -1.
    """

    ipver: int
    src: str
    dst: str
    proto: int
    sport: int | None = None
    dport: int | None = None
    length: int = field(default=-1, compare=False)
    tunnel: tuple = field(default=(), compare=False)
    fragment: bool = field(default=False, compare=False)
    seq: int = field(default=-1, compare=False)


def _seq(data: bytes, off: int, proto: int) -> int:
    return int.from_bytes(data[off + 4:off + 8], "big") if proto == 6 and off + 8 <= len(data) else -1


def _ports(data: bytes, off: int, proto: int) -> tuple[int | None, int | None]:
    if proto in _PORT_PROTOS and off + 4 <= len(data):
        return (data[off] << 8) | data[off + 1], (data[off + 2] << 8) | data[off + 3]
    return None, None


def _inner(q: Quoted, b: bytes, off: int, proto: int, depth: int) -> Quoted:
    """``q`` (a tunnel's quoted datagram, its payload at ``off``), or the quoted inner packet
    when the quote reaches its whole IP header (and, for GRE, version 0 carrying IPv4/IPv6)."""
    if depth >= _MAX_TUNNELS:
        return q
    ver = {4: 4, 41: 6}.get(proto)
    at = off
    if proto == 47:
        if off + 4 > len(b) or b[off + 1] & 0x07:
            return q   # (version 1: PPTP's enhanced GRE carries PPP)
        ver = _GRE_IP.get((b[off + 2] << 8) | b[off + 3])
        flags = b[off]
        at = off + 4 + 4 * (bool(flags & 0xC0) + bool(flags & 0x20) + bool(flags & 0x10))
    inner = _quoted_v4(b[at:], depth + 1) if ver == 4 else _quoted_v6(b[at:], depth + 1) if ver == 6 else None
    if inner is None:
        return q
    inner.tunnel = (proto, *inner.tunnel)
    return inner


def _quoted_v4(b: bytes, depth: int = 0) -> Quoted | None:
    if len(b) < 20 or b[0] >> 4 != 4:
        return None
    ihl = (b[0] & 0x0F) * 4
    if ihl < 20:
        return None
    proto = b[9]
    q = Quoted(4, str(ipaddress.IPv4Address(b[12:16])), str(ipaddress.IPv4Address(b[16:20])),
               proto, length=(b[2] << 8) | b[3])
    frag_off = ((b[6] & 0x1F) << 8) | b[7]
    q.fragment = frag_off != 0
    if frag_off == 0 and len(b) >= ihl:
        if proto in _TUNNEL_PROTOS:
            return _inner(q, b, ihl, proto, depth)
        q.sport, q.dport = _ports(b, ihl, proto)
        q.seq = _seq(b, ihl, proto)
    return q


def _quoted_v6(b: bytes, depth: int = 0) -> Quoted | None:
    if len(b) < 40 or b[0] >> 4 != 6:
        return None
    plen = (b[4] << 8) | b[5]
    q = Quoted(6, ipv6_text(b[8:24]), ipv6_text(b[24:40]), b[6], length=40 + plen if plen else -1)
    nh = b[6]
    off = 40
    n = len(b)
    final = home = False
    for _ in range(_MAX_EXT):
        if nh in _V6_EXT_GENERIC:
            if off + 2 > n:
                break
            nxt, ln = b[off], (b[off + 1] + 1) * 8
            if nh == 43 and not final:
                # a routing header: the final destination is the datagram's (the decoder's rule)
                at = routing_final(b, off, min(n, off + ln))
                if at is not None:
                    q.dst = ipv6_text(((at[0] << 64) | at[1]).to_bytes(16, "big"))
                    final = True
            elif nh == 60 and not home:
                # a Home Address option (Mobile IPv6): the source is the home address, as the
                # decoder keys the datagram (the slow path's home_address)
                at = home_address(b, off, min(n, off + ln))
                if at is not None:
                    q.src = ipv6_text(((at[0] << 64) | at[1]).to_bytes(16, "big"))
                    home = True
        elif nh == _V6_FRAGMENT:
            if off + 8 > n:
                break
            frag_off = ((b[off + 2] << 8) | b[off + 3]) >> 3
            if frag_off != 0:
                q.proto = b[off]
                q.fragment = True
                return q  # non-first fragment: no transport header
            nxt, ln = b[off], 8
        elif nh == _V6_AH:
            if off + 2 > n:
                break
            nxt, ln = b[off], (b[off + 1] + 2) * 4
        else:
            q.proto = nh
            if nh in _TUNNEL_PROTOS:
                return _inner(q, b, off, nh, depth)
            q.sport, q.dport = _ports(b, off, nh)
            q.seq = _seq(b, off, nh)
            return q
        nh = nxt
        off += ln
        q.proto = nh
    q.proto = nh
    return q


def quoted_datagram(icmp_payload: bytes | bytearray | memoryview, ipver: int) -> Quoted | None:
    """Parse the quoted datagram of an ICMP (``ipver`` 4) or ICMPv6 (``ipver`` 6) error.

    ``icmp_payload``: the bytes after the 8-byte ICMP header. None when the quoted IP header is
    not whole or its version is not ``ipver``. A tunnel's datagram (IP-in-IP, 6in4, GRE carrying
    IP; nested up to 3 deep) is followed into its inner packet when the quote holds the inner
    IP header whole (:attr:`Quoted.tunnel` says which), as Wireshark does. Works when the quote stops right after the first
    8 transport bytes; ports need only the first 4.
    """
    try:
        b = bytes(icmp_payload)
        if ipver == 4:
            return _quoted_v4(b)
        if ipver == 6:
            return _quoted_v6(b)
        return None
    except Exception:  # pragma: no cover - defensive
        return None


def cut_quote(icmp_payload: bytes | bytearray | memoryview, ipver: int) -> tuple[str, int, int, bytes] | None:
    """A quote :func:`quoted_datagram` cannot read because the capture cut it inside the quoted IP
    header (a snaplen of 60 keeps 18 bytes of an IPv4 quote behind Ethernet, one of 96 keeps 34 of
    an IPv6 quote): ``(src, proto, length, dst_prefix)`` when the source address is whole and the
    destination is not (IPv4: 16 to 19 bytes; IPv6: 24 to 39 bytes): the source's text, the IP
    protocol (IPv4's protocol field, IPv6's next header), the datagram's IP length (IPv4 total
    length; IPv6 40 + payload length, -1 for a jumbogram's 0) and the destination's first bytes
    (0 to 3 of IPv4's 4, 0 to 15 of IPv6's 16). None for anything else (a whole header, a shorter
    quote, another version, an IPv4 header length below 20)."""
    b = bytes(icmp_payload)
    if ipver == 4 and 16 <= len(b) < 20 and b[0] >> 4 == 4 and (b[0] & 0x0F) * 4 >= 20:
        return str(ipaddress.IPv4Address(b[12:16])), b[9], (b[2] << 8) | b[3], b[16:]
    if ipver == 6 and 24 <= len(b) < 40 and b[0] >> 4 == 6:
        plen = (b[4] << 8) | b[5]
        return ipv6_text(b[8:24]), b[6], 40 + plen if plen else -1, b[24:]
    return None


def is_unreachable(ipver: int, type: int, code: int) -> bool:  # noqa: A002 - wire field name
    """True for a destination-unreachable error (ICMP type 3, ICMPv6 type 1) that means the
    destination cannot be reached. ICMP type 3 code 4 (fragmentation needed, RFC 1191 path MTU
    discovery) is *not* counted: it asks for smaller packets, the destination is reachable."""
    if ipver == 4:
        return type == 3 and code != 4
    if ipver == 6:
        return type == 1
    return False


def is_reassembly_timeout(ipver: int, type: int, code: int) -> bool:  # noqa: A002 - wire field name
    """True for a fragment reassembly timeout: ICMP time exceeded code 1 (RFC 792), ICMPv6 time
    exceeded code 1 (RFC 4443): its sender had the quoted datagram's first fragment, not all the
    others (RFC 8200 §4.5)."""
    return code == 1 and ((ipver == 4 and type == 11) or (ipver == 6 and type == 3))


def is_too_big(ipver: int, type: int, code: int) -> bool:  # noqa: A002 - wire field name
    """True for an error that asks for smaller packets (path MTU discovery): ICMP fragmentation
    needed and DF set (type 3 code 4, RFC 1191) or ICMPv6 packet too big (type 2, RFC 8201). The
    destination is reachable; such an error must not be filtered (RFC 4890 §4.3.1)."""
    return (ipver == 4 and type == 3 and code == 4) or (ipver == 6 and type == 2)


_V4_UNREACH = {
    0: "network unreachable",
    1: "host unreachable",
    2: "protocol unreachable",
    3: "port unreachable",
    4: "fragmentation needed and DF set",
    5: "source route failed",
    6: "destination network unknown",
    7: "destination host unknown",
    8: "source host isolated",
    9: "network administratively prohibited",
    10: "host administratively prohibited",
    11: "network unreachable for TOS",
    12: "host unreachable for TOS",
    13: "administratively prohibited",
    14: "host precedence violation",
    15: "precedence cutoff in effect",
}

_V6_UNREACH = {
    0: "no route to destination",
    1: "administratively prohibited",
    2: "beyond scope of source address",
    3: "address unreachable",
    4: "port unreachable",
    5: "source address failed ingress/egress policy",
    6: "reject route to destination",
    7: "error in source routing header",
    8: "headers too long",
}

_V4_TYPES = {
    0: "echo reply",
    3: "destination unreachable",
    4: "source quench",
    5: "redirect",
    8: "echo request",
    9: "router advertisement",
    10: "router solicitation",
    11: "time exceeded",
    12: "parameter problem",
    13: "timestamp request",
    14: "timestamp reply",
}
_V4_TIME = {0: "TTL exceeded in transit", 1: "fragment reassembly time exceeded"}

_V6_TYPES = {
    1: "destination unreachable",
    2: "packet too big",
    3: "time exceeded",
    4: "parameter problem",
    128: "echo request",
    129: "echo reply",
    133: "router solicitation",
    134: "router advertisement",
    135: "neighbor solicitation",
    136: "neighbor advertisement",
    137: "redirect",
}
_V6_TIME = {0: "hop limit exceeded in transit", 1: "fragment reassembly time exceeded"}


def describe(ipver: int, type: int, code: int) -> str:  # noqa: A002 - wire field name
    """Short English text for an ICMP/ICMPv6 type and code, e.g. ``"port unreachable"``,
    ``"administratively prohibited"``. Unreachable codes per RFC 792/1812 (IPv4) and RFC 4443
    (IPv6); a few other types get their name; anything else ``"ICMP type T code C"``
    (``"ICMPv6 ..."`` for IPv6)."""
    if ipver == 4:
        if type == 3:
            return _V4_UNREACH.get(code, f"destination unreachable (code {code})")
        if type == 11 and code in _V4_TIME:
            return _V4_TIME[code]
        if type in _V4_TYPES:
            return _V4_TYPES[type]
        return f"ICMP type {type} code {code}"
    if ipver == 6:
        if type == 1:
            return _V6_UNREACH.get(code, f"destination unreachable (code {code})")
        if type == 3 and code in _V6_TIME:
            return _V6_TIME[code]
        if type in _V6_TYPES:
            return _V6_TYPES[type]
        return f"ICMPv6 type {type} code {code}"
    return f"ICMP type {type} code {code}"
