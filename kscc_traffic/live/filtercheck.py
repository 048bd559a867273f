"""Which documented purposes a custom capture filter (``live --filter``) leaves out.

Each purpose is probed with a few packets on each of its ports (to the port and from it, IPv4
and IPv6, from and to documentation addresses), run through the filter as libpcap compiles it
(``pcap_compile`` on an Ethernet handle, then ``pcap_offline_filter``). A purpose none of whose
probes pass is "filtered out": the capture could not show it, so "not seen" says nothing about
it. A filter that names hosts rejects probes to other hosts: when no purpose passes, which ones
are left out cannot be told (None).
"""
from __future__ import annotations

import ctypes
import ctypes.util

from ..rules import RuleSet

__all__ = ["purposes_outside"]

#: Ethernet (the link type the probes are built for)
_DLT_EN10MB = 1
#: netmask for pcap_compile when unknown (PCAP_NETMASK_UNKNOWN)
_NETMASK_UNKNOWN = 0xFFFFFFFF
#: (client, server) addresses of the probes
_PROBE_HOSTS = (("192.0.2.10", "203.0.113.10"), ("2001:db8::10", "2001:db8:1::10"))
#: the client's port of the probes
_CLIENT_PORT = 50000


class _BpfProgram(ctypes.Structure):
    _fields_ = [("bf_len", ctypes.c_uint), ("bf_insns", ctypes.c_void_p)]


class _PktHdr(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long), ("caplen", ctypes.c_uint32),
                ("len", ctypes.c_uint32)]


def _templates(transport: str) -> list[tuple[bytearray, int, int]]:
    """Probe packets of a transport, as (bytes, offset of the port to set, offset of the client's
    port): a SYN (TCP) or a datagram (UDP) to the port and the answer from it, over IPv4 and IPv6
    (the ports are then set in place: the filter reads no checksum)."""
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    out = []
    for client, server in _PROBE_HOSTS:
        ip, l4_at = (IPv6, 14 + 40) if ":" in client else (IP, 14 + 20)
        for src, dst, to_server in ((client, server, True), (server, client, False)):
            l4 = TCP(flags="S") if transport == "tcp" else UDP()
            pkt = bytearray(bytes(Ether(src="02:00:00:00:00:10", dst="02:00:00:00:00:01") / ip(src=src, dst=dst) / l4))
            out.append((pkt, l4_at + 2, l4_at) if to_server else (pkt, l4_at, l4_at + 2))
    return out


def _passes(lib, prog, pkt: bytearray, at: int, other: int, port: int) -> bool:
    pkt[at:at + 2] = port.to_bytes(2, "big")
    pkt[other:other + 2] = _CLIENT_PORT.to_bytes(2, "big")
    data = bytes(pkt)
    hdr = _PktHdr(0, 0, len(data), len(data))
    return bool(lib.pcap_offline_filter(ctypes.byref(prog), ctypes.byref(hdr), data))


def purposes_outside(rules: RuleSet, bpf: str) -> list[str] | None:
    """The ids of the rules of ``rules`` none of whose probe packets pass the capture filter
    ``bpf`` (tcpdump syntax), in the rules' order; None when that cannot be told (libpcap or
    scapy missing, a filter libpcap does not compile for Ethernet, or one that no probe passes:
    a filter naming hosts, say)."""
    try:
        lib = ctypes.CDLL(ctypes.util.find_library("pcap") or "libpcap.so.0.8")
        lib.pcap_open_dead.restype = ctypes.c_void_p
        lib.pcap_open_dead.argtypes = [ctypes.c_int, ctypes.c_int]
        lib.pcap_compile.argtypes = [ctypes.c_void_p, ctypes.POINTER(_BpfProgram), ctypes.c_char_p, ctypes.c_int,
                                     ctypes.c_uint32]
        lib.pcap_offline_filter.argtypes = [ctypes.POINTER(_BpfProgram), ctypes.POINTER(_PktHdr), ctypes.c_char_p]
        lib.pcap_freecode.argtypes = [ctypes.POINTER(_BpfProgram)]
        lib.pcap_close.argtypes = [ctypes.c_void_p]
    except (OSError, AttributeError):
        return None
    handle = lib.pcap_open_dead(_DLT_EN10MB, 65535)
    if not handle:
        return None
    prog = _BpfProgram()
    try:
        if lib.pcap_compile(handle, ctypes.byref(prog), bpf.encode("utf-8", "surrogateescape"), 1,
                            _NETMASK_UNKNOWN) != 0:
            return None
        try:
            out = []
            templates = {t: _templates(t) for t in {r.transport for r in rules.rules}}
            for r in rules.rules:
                if not any(_passes(lib, prog, pkt, at, other, port)
                           for port in range(r.port_lo, r.port_hi + 1) for pkt, at, other in templates[r.transport]):
                    out.append(r.id)
            # (no purpose passes: a filter that names hosts, or none of the ports: cannot tell which)
            return None if len(out) == len(rules.rules) else out
        finally:
            lib.pcap_freecode(ctypes.byref(prog))
    except ImportError:
        return None
    finally:
        lib.pcap_close(handle)
