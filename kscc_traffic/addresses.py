"""Address text as Wireshark writes it.

IPv4 in dotted quads; IPv6 by RFC 5952 (``ipaddress``), except that the addresses RFC 4291
marks as carrying an IPv4 address end in a dotted quad (RFC 5952 §5), as Wireshark (glibc's
``inet_ntop``) writes them: an IPv4-mapped address (``::ffff:198.51.100.7``; Python before 3.13
writes ``::ffff:c633:6407``) and an IPv4-compatible one, the first 96 bits zero and the 16 bits
after them not (``::192.0.2.11``; ``::1``, ``::2``, ``::100`` stay hexadecimal). Other prefixes
(IPv4-translated ``::ffff:0:0:0/96``, NAT64 ``64:ff9b::/96``, ISATAP) stay hexadecimal, as
Wireshark writes them (break-it 25 F11).
An IPv6 packet whose addresses are IPv4-mapped (SIIT/NAT46 boxes, some tunnels) is not the IPv4
packet of the same numbers: its text keeps the ``::ffff:`` prefix.
"""
from __future__ import annotations

import functools
import ipaddress

import numpy as np

__all__ = ["ipv6_text", "endpoint_text", "dotted_quads", "embedded_ipv4", "ipv4_forms", "nat64_text", "NAT64_PREFIX",
           "NAT64_LOCAL_PREFIX"]

#: the well-known NAT64 prefix 64:ff9b::/96 (RFC 6052 §2.1): what DNS64 synthesises AAAA answers
#: in and a NAT64 (or a 464XLAT CLAT) sends an IPv4 destination to, its last 32 bits the IPv4 address
NAT64_PREFIX = 0x0064_FF9B << 96
#: the local-use NAT64 prefix 64:ff9b:1::/48 (RFC 8215): an operator's own translator, the IPv4
#: address in its last 32 bits when (as usual) a /96 of it is the translator's prefix
NAT64_LOCAL_PREFIX = 0x0064_FF9B_0001 << 80


def ipv6_text(value: int | bytes) -> str:
    """The text of an IPv6 address (a 128-bit integer or 16 bytes, network order), as the module
    docstring says: ``::ffff:192.0.2.1`` (mapped), ``::192.0.2.11`` (compatible), else RFC 5952."""
    n = int.from_bytes(value, "big") if isinstance(value, (bytes, bytearray, memoryview)) else int(value)
    if n >> 32 == 0xFFFF:
        return "::ffff:" + str(ipaddress.IPv4Address(n & 0xFFFFFFFF))
    if n >> 32 == 0 and n >> 16:
        return "::" + str(ipaddress.IPv4Address(n))
    return str(ipaddress.IPv6Address(n))


@functools.lru_cache(maxsize=1 << 14)
def embedded_ipv4(text: str) -> str | None:
    """The IPv4 address (dotted-quad text) an address text stands for: the address itself when it
    is IPv4; the last 32 bits of an IPv4-mapped IPv6 address (``::ffff:203.0.113.5``: SIIT, a
    resolver's mapped AAAA answer) or of one in the NAT64 well-known prefix
    (``64:ff9b::cb00:7105``, :data:`NAT64_PREFIX`: a DNS64-synthesised AAAA answer, a flow through
    NAT64 or 464XLAT); None for any other text (another IPv6 address, not an address at all).
    Network-specific NAT64 prefixes are not known from the address alone and give None."""
    try:
        a = ipaddress.ip_address(text)
    except ValueError:
        return None
    if a.version == 4:
        return str(a)
    n = int(a)
    if n >> 32 == 0xFFFF or n >> 32 == NAT64_PREFIX >> 32:
        return str(ipaddress.IPv4Address(n & 0xFFFFFFFF))
    return None


def shows_ipv4(flows) -> bool:
    """Whether a flow table (``orig_h``, ``resp_h``; ``cast`` where present) shows its capture's
    host reaching IPv4: a unicast IPv4 flow from a real source address (not 0.0.0.0 nor a
    link-local 169.254.0.0/16 one: a DHCP discover, an LLMNR query of a host with no IPv4 network
    send those), or a flow to a NAT64 address (``64:ff9b::/96``: IPv4 through NAT64, 464XLAT).
    Stops at the first such flow. (classify._note_resolved: an IPv6-only network's A answers.)"""
    if not len(flows) or "orig_h" not in flows.columns:
        return False
    orig = flows["orig_h"].tolist()
    resp = flows["resp_h"].tolist() if "resp_h" in flows.columns else [""] * len(orig)
    cast = flows["cast"].tolist() if "cast" in flows.columns else ["unicast"] * len(orig)
    for o, r, c in zip(orig, resp, cast):
        if not isinstance(o, str) or not o:
            continue
        if ":" not in o:
            if c == "unicast" and o != "0.0.0.0" and not o.startswith("169.254."):
                return True
        elif isinstance(r, str) and r.lower().startswith(_NAT64_TEXT):
            return True
    return False


#: how a NAT64 well-known-prefix address's text starts (:data:`NAT64_PREFIX`)
_NAT64_TEXT = "64:ff9b::"


@functools.lru_cache(maxsize=1 << 14)
def nat64_text(text: str) -> str:
    """What an address text is when it is a NAT64 address, with the IPv4 address it carries, as
    a detail names it: ``64:ff9b::cb00:7105 is a NAT64 address (64:ff9b::/96, RFC 6052) of the
    IPv4 address 203.0.113.5``; in the local-use prefix 64:ff9b:1::/48 (RFC 8215), ``… (the
    local-use prefix 64:ff9b:1::/48, RFC 8215) of the IPv4 address 203.0.113.5 if its translator's
    prefix is a /96`` (the prefix length is the operator's: the last 32 bits hold the IPv4 address
    only in a /96); '' for any other text."""
    try:
        a = ipaddress.ip_address(text)
    except ValueError:
        return ""
    if a.version != 6:
        return ""
    n = int(a)
    v4 = str(ipaddress.IPv4Address(n & 0xFFFFFFFF))
    if n >> 32 == NAT64_PREFIX >> 32:
        return f"{ipv6_text(n)} is a NAT64 address (64:ff9b::/96, RFC 6052) of the IPv4 address {v4}"
    if n >> 80 == NAT64_LOCAL_PREFIX >> 80:
        return (f"{ipv6_text(n)} is a NAT64 address (the local-use prefix 64:ff9b:1::/48, RFC 8215) of the IPv4 "
                f"address {v4} if its translator's prefix is a /96")
    return ""


@functools.lru_cache(maxsize=1 << 14)
def ipv4_forms(text: str) -> tuple[str, ...]:
    """The texts of every address that stands for the same IPv4 address as ``text`` (see
    :func:`embedded_ipv4`): ``(a.b.c.d, ::ffff:a.b.c.d, 64:ff9b::xxxx:xxxx)``, written as
    :func:`ipv6_text` writes them; ``()`` when ``text`` stands for no IPv4 address."""
    v4 = embedded_ipv4(text)
    if v4 is None:
        return ()
    n = int(ipaddress.IPv4Address(v4))
    return (v4, "::ffff:" + v4, ipv6_text(NAT64_PREFIX | n))


def endpoint_text(host, port) -> str:
    """An address and port as one text: ``192.0.2.10:443``, an IPv6 address in brackets
    (``[2001:db8::1]:443``, RFC 3986; without them ``2001:db8:cc::10:27201`` reads as an
    address), the address alone when the port is unknown (negative: no transport header)."""
    host = str(host)
    try:
        port = int(port)
    except (TypeError, ValueError):
        return host
    if port < 0:
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


#: the decimal text of each octet value, for :func:`dotted_quads`
_OCTETS = np.array([str(i) for i in range(256)], dtype=object)


def dotted_quads(a: np.ndarray) -> np.ndarray:
    """IPv4 addresses -> object array of their dotted-quad texts (``198.51.100.7``, as
    ``str(ipaddress.IPv4Address(a))``), built column-wise. ``a``: an integer array of addresses
    (0 … 2**32-1, shape (n,)), or a uint8 array of their 4 octets in network order (shape (n, 4))."""
    a = np.asarray(a)
    if a.ndim == 2:
        o = [a[:, j] for j in range(4)]
    else:
        a = a.astype(np.uint32)
        o = [(a >> s) & 0xFF for s in (24, 16, 8, 0)]
    out = _OCTETS[o[0]]
    for x in o[1:]:
        out = out + "." + _OCTETS[x]
    return out
