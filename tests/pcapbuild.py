"""Build small captures in memory for tests: scapy packets (or raw bytes) -> pcap bytes.

``pcap_bytes([(ts_seconds, packet_or_bytes), …], linktype=1)`` returns a classic pcap
(little-endian, microseconds). Timestamps are given in seconds (float or int) and converted to
exact microseconds. ``tcp_session`` builds the packets of a whole TCP connection,
``syn_attempts`` a connection attempt unanswered or refused, ``dns_answer`` a resolver's answer.
"""
from __future__ import annotations

import struct

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

CLIENT_MAC = "02:00:00:00:00:10"
SERVER_MAC = "02:00:00:00:00:01"


def pcap_bytes(records, linktype: int = 1, snaplen: int = 65535) -> bytes:
    out = [struct.pack("<IHHiIII",
                       0xA1B2C3D4,  # magic: little-endian, microseconds
                       2, 4,        # version 2.4
                       0, 0,        # thiszone, sigfigs
                       snaplen,     # snaplen
                       linktype)]   # link type
    for ts, pkt in records:
        data = bytes(pkt)
        usec_total = round(ts * 1_000_000)
        out.append(struct.pack("<IIII", usec_total // 1_000_000, usec_total % 1_000_000,
                               len(data), len(data)))  # ts_sec, ts_usec, caplen, wirelen
        out.append(data)
    return b"".join(out)


def eth(ip_pkt, src=CLIENT_MAC, dst=SERVER_MAC):
    return Ether(src=src, dst=dst) / ip_pkt


def ip_of(src: str, dst: str):
    return IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst)


def tcp_session(client, server, t0=1000.0, isn_c=1000, isn_s=5000, c_data=b"", s_data=b"",
                close=True):
    """(ts, Ether/IP/TCP) for SYN, SYN-ACK, ACK, optional data each way, FIN/ACK both ways.

    ``client``/``server`` are (address, port)."""
    (ch, cp), (sh, sp) = client, server
    c2s = lambda **kw: eth(ip_of(ch, sh) / TCP(sport=cp, dport=sp, **kw))  # noqa: E731
    s2c = lambda **kw: eth(ip_of(sh, ch) / TCP(sport=sp, dport=cp, **kw), src=SERVER_MAC, dst=CLIENT_MAC)  # noqa: E731
    t = t0
    out = [(t, c2s(flags="S", seq=isn_c)),
           (t + 0.01, s2c(flags="SA", seq=isn_s, ack=isn_c + 1)),
           (t + 0.02, c2s(flags="A", seq=isn_c + 1, ack=isn_s + 1))]
    cs, ss = isn_c + 1, isn_s + 1
    t += 0.03
    if c_data:
        out.append((t, c2s(flags="PA", seq=cs, ack=ss) / c_data))
        cs += len(c_data)
        t += 0.01
    if s_data:
        out.append((t, s2c(flags="PA", seq=ss, ack=cs) / s_data))
        ss += len(s_data)
        t += 0.01
    if close:
        out += [(t, c2s(flags="FA", seq=cs, ack=ss)),
                (t + 0.01, s2c(flags="FA", seq=ss, ack=cs + 1)),
                (t + 0.02, c2s(flags="A", seq=cs + 1, ack=ss + 1))]
    return out


def udp(src, dst, data=b"x", t=1000.0, src_mac=CLIENT_MAC, dst_mac=SERVER_MAC):
    (sh, sp), (dh, dp) = src, dst
    return (t, eth(ip_of(sh, dh) / UDP(sport=sp, dport=dp) / data, src=src_mac, dst=dst_mac))


def syn_attempts(client_port, server, port, t, reset=False, client="192.0.2.10"):
    """(ts, frame) of a SYN from ``client`` to ``server``:``port`` sent 3 times without an
    answer (at ``t``, ``t`` + 1 s, ``t`` + 3 s), or answered by a reset (``reset``)."""
    syn = eth(IP(src=client, dst=server) / TCP(sport=client_port, dport=port, flags="S", seq=7))
    if reset:
        rst = IP(src=server, dst=client) / TCP(sport=port, dport=client_port, flags="RA", seq=0, ack=8)
        return [(t, syn), (t + 0.01, eth(rst, src=SERVER_MAC, dst=CLIENT_MAC))]
    return [(t + k, syn) for k in (0, 1, 3)]


def dns_answer(name, address, t, port=41000, client="192.0.2.10", resolver="192.0.2.53"):
    """(ts, frame) of the resolver's answer ``name`` -> ``address`` (A, TTL 60) to the client's
    ``port`` (also the transaction ID)."""
    ans = DNS(id=port, qr=1, qd=DNSQR(qname=name), an=DNSRR(rrname=name, type="A", ttl=60, rdata=address))
    return udp((resolver, 53), (client, port), bytes(ans), t=t, src_mac=SERVER_MAC, dst_mac=CLIENT_MAC)


def step_records(steps, t0=1000.0, gap=0.1, client=("192.0.2.10", 50000), server=("203.0.113.10", 23101)):
    """(ts, frame) of TCP packets between ``client`` and ``server`` ((address, port) each), one per
    step ``(side 'c'/'s', flags, seq[, ack[, data]])``, ``gap`` seconds apart from ``t0``."""
    def one(side, flags, seq, ack=0, data=b""):
        (sh, sp), (dh, dp) = (client, server) if side == "c" else (server, client)
        p = IP(src=sh, dst=dh) / TCP(sport=sp, dport=dp, flags=flags, seq=seq, ack=ack)
        src, dst = (CLIENT_MAC, SERVER_MAC) if side == "c" else (SERVER_MAC, CLIENT_MAC)
        return eth(p / data if data else p, src=src, dst=dst)
    return [(t0 + k * gap, one(*s)) for k, s in enumerate(steps)]
