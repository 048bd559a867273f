#!/usr/bin/env python3
"""Peer: nfstream (nDPI flow meter in C, several processes) with its defaults; the flow table is
its records."""
import _common as c
from nfstream import NFStreamer

a = c.args(__doc__)
t = c.time.perf_counter()
n = flows = 0
with open(a.output, "w") as out:
    out.write("proto,src_ip,src_port,dst_ip,dst_port,packets,bytes,first_ms,last_ms,application\n")
    for f in NFStreamer(source=a.capture):
        flows += 1
        n += f.bidirectional_packets
        out.write(f"{f.protocol},{f.src_ip},{f.src_port},{f.dst_ip},{f.dst_port},{f.bidirectional_packets},"
                  f"{f.bidirectional_bytes},{f.bidirectional_first_seen_ms},{f.bidirectional_last_seen_ms},"
                  f"{f.application_name}\n")
loop_s = c.time.perf_counter() - t
c.json.dump({"packets": n, "flows": flows, "startup_s": round(t - c.T_START, 4), "loop_s": round(loop_s, 4)},
            c.sys.stdout)
print()
