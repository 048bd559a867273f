#!/usr/bin/env python3
"""Peer: pyshark FileCapture (tshark dissects, Python gets one object per packet) and a dict of
flows."""
import _common as c
import pyshark

a = c.args(__doc__)
flows: dict = {}
n = 0
t = c.time.perf_counter()
cap = pyshark.FileCapture(a.capture, keep_packets=False)
try:
    for pkt in cap:
        n += 1
        ip = getattr(pkt, "ip", None) or getattr(pkt, "ipv6", None)
        if ip is not None:
            l4 = getattr(pkt, "tcp", None) or getattr(pkt, "udp", None)
            sp, dp = (int(l4.srcport), int(l4.dstport)) if l4 is not None else (0, 0)
            proto = int(ip.proto) if hasattr(ip, "proto") else int(ip.nxt)
            c.add(flows, c.key(proto, ip.src, sp, ip.dst, dp), float(pkt.sniff_timestamp), int(pkt.length))
        if n == a.limit:
            break
finally:
    cap.close()
c.finish(flows, n, t, a.output)
