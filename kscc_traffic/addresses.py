"""Address text as Wireshark writes it.

IPv4 in dotted quads; IPv6 by RFC 5952 (``ipaddress``), except that an IPv4-mapped IPv6 address
ends in a dotted quad (``::ffff:198.51.100.7``; Python before 3.13 writes ``::ffff:c633:6407``).
An IPv6 packet whose addresses are IPv4-mapped (SIIT/NAT46 boxes, some tunnels) is not the IPv4
packet of the same numbers: its text keeps the ``::ffff:`` prefix.
"""
from __future__ import annotations

import ipaddress

import numpy as np

__all__ = ["ipv6_text", "endpoint_text", "dotted_quads"]


def ipv6_text(value: int | bytes) -> str:
    """The text of an IPv6 address (a 128-bit integer or 16 bytes, network order)."""
    n = int.from_bytes(value, "big") if isinstance(value, (bytes, bytearray, memoryview)) else int(value)
    if n >> 32 == 0xFFFF:
        return "::ffff:" + str(ipaddress.IPv4Address(n & 0xFFFFFFFF))
    return str(ipaddress.IPv6Address(n))


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
