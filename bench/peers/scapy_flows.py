#!/usr/bin/env python3
"""Peer: scapy's PcapReader (pcap and pcapng) and a dict of flows."""
import _common as c
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6
from scapy.utils import PcapReader

a = c.args(__doc__)
flows: dict = {}
n = 0
t = c.time.perf_counter()
with PcapReader(a.capture) as rd:
    for pkt in rd:
        n += 1
        ip = pkt.getlayer(IP) or pkt.getlayer(IPv6)
        if ip is not None:
            proto = ip.proto if ip.version == 4 else ip.nh
            l4 = pkt.getlayer(TCP) or pkt.getlayer(UDP)
            sp, dp = (l4.sport, l4.dport) if l4 is not None else (0, 0)
            c.add(flows, c.key(proto, ip.src, sp, ip.dst, dp), float(pkt.time), len(pkt))
        if n == a.limit:
            break
c.finish(flows, n, t, a.output)
