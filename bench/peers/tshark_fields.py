#!/usr/bin/env python3
"""Peer: ``tshark -T fields`` piped into pandas, grouped by flow (a common notebook recipe)."""
import subprocess

import _common as c
import pandas as pd

a = c.args(__doc__)
t = c.time.perf_counter()
cmd = ["tshark", "-r", a.capture, "-T", "fields", "-E", "separator=,", "-E", "occurrence=f",
       "-e", "frame.time_epoch", "-e", "ip.src", "-e", "ip.dst", "-e", "ip.proto",
       "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "udp.srcport", "-e", "udp.dstport", "-e", "frame.len"]
if a.limit:
    cmd[3:3] = ["-c", str(a.limit)]
p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
df = pd.read_csv(p.stdout, header=None, names=["ts", "src", "dst", "proto", "tsp", "tdp", "usp", "udp", "len"])
p.wait()
n = len(df)
df = df.dropna(subset=["src"])
sp = df["tsp"].fillna(df["usp"]).fillna(0).astype(int)
dp = df["tdp"].fillna(df["udp"]).fillna(0).astype(int)
a_side = df["src"] + ":" + sp.astype(str)
b_side = df["dst"] + ":" + dp.astype(str)
swap = a_side > b_side
df["lo"] = a_side.where(~swap, b_side)
df["hi"] = b_side.where(~swap, a_side)
g = df.groupby(["proto", "lo", "hi"]).agg(packets=("len", "size"), bytes=("len", "sum"),
                                           first=("ts", "min"), last=("ts", "max"))
g.to_csv(a.output)
c.json.dump({"packets": n, "flows": len(g), "startup_s": round(t - c.T_START, 4),
             "loop_s": round(c.time.perf_counter() - t, 4)}, c.sys.stdout)
print()
