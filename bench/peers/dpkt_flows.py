#!/usr/bin/env python3
"""Peer: a dpkt read loop and a dict of flows (the usual quick Python script)."""
import socket

import _common as c
import dpkt

a = c.args(__doc__)
flows: dict = {}
n = 0
t = c.time.perf_counter()
with open(a.capture, "rb") as fh:
    for ts, buf in dpkt.pcap.UniversalReader(fh):
        n += 1
        eth = dpkt.ethernet.Ethernet(buf)
        ip = eth.data
        if isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)):
            l4 = ip.data
            if isinstance(l4, (dpkt.tcp.TCP, dpkt.udp.UDP)):
                k = c.key(ip.p, ip.src, l4.sport, ip.dst, l4.dport)
            else:
                k = c.key(ip.p, ip.src, 0, ip.dst, 0)
            c.add(flows, k, float(ts), len(buf))
        if n == a.limit:
            break
c.finish(flows, n, t, a.output,
         addr=lambda b: socket.inet_ntop(socket.AF_INET if len(b) == 4 else socket.AF_INET6, b))
