"""Shared bits of the Python peers: argument parsing, the flow key, the summary line.

Every peer reads the capture, builds a dict of bidirectional flows keyed by
(protocol, lower endpoint, higher endpoint) with packets, bytes, first and last time, writes the
per-flow table as CSV to ``--output`` (default /dev/null) and prints one JSON line to stdout:
``{"packets": N, "flows": M, "startup_s": import time, "loop_s": time of the packet loop}``
(``loop_s`` covers reading, dissecting and the dict; the harness extrapolates from it when
``--limit`` stopped the loop early).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

T_START = time.perf_counter()


def args(description: str):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("capture")
    ap.add_argument("--limit", type=int, default=0, help="stop after this many packets (0: all)")
    ap.add_argument("--output", default="/dev/null", help="per-flow table (CSV)")
    return ap.parse_args()


def key(proto, a, pa, b, pb):
    x, y = (a, pa), (b, pb)
    return (proto, x, y) if x <= y else (proto, y, x)


def add(flows: dict, k, ts: float, nbytes: int) -> None:
    f = flows.get(k)
    if f is None:
        flows[k] = [1, nbytes, ts, ts]
    else:
        f[0] += 1
        f[1] += nbytes
        f[3] = ts


def finish(flows: dict, packets: int, t_loop: float, output: str, addr=str) -> None:
    loop_s = time.perf_counter() - t_loop
    with open(output, "w") as out:
        out.write("proto,addr_a,port_a,addr_b,port_b,packets,bytes,first,last\n")
        for (proto, (a, pa), (b, pb)), (n, nb, t0, t1) in flows.items():
            out.write(f"{proto},{addr(a)},{pa},{addr(b)},{pb},{n},{nb},{t0:.6f},{t1:.6f}\n")
    json.dump({"packets": packets, "flows": len(flows), "startup_s": round(t_loop - T_START, 4),
               "loop_s": round(loop_s, 4)}, sys.stdout)
    print()
