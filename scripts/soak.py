#!/usr/bin/env python3
"""Soak test of ``kscc-traffic live`` (not a unit test): does memory stay flat on a long capture?

Builds the two-namespace lab of ``tests/netns.py`` (root needed; addresses 192.0.2.0/24 and
203.0.113.0/24 inside namespaces this script creates and removes), starts ``kscc-traffic live``
on the agent side with short idle timeouts, and sends traffic for ``--seconds`` (default 60):
short TCP connections to 1443 and 27200 (dropped by nftables: blocked), TLS connections to
23101, UDP datagrams to 15000 and one long TCP connection (1443) streaming data the whole time. Prints
the live process's RSS at the start and at the end (and its peak), packets seen and packets
dropped by the kernel. Everything is bounded in time and cleaned up, also on Ctrl-C.

    sudo python3 scripts/soak.py [--seconds 60] [--engine scapy|tshark] [--rate 40]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def _rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of ``pid`` in KiB."""
    vals = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            vals[k] = int(v.split()[0])
    return vals.get("VmRSS", 0), vals.get("VmHWM", 0)


def gen_main(server: str, seconds: float, rate: float) -> None:
    """Traffic from the agent namespace for ``seconds``; prints a JSON summary."""
    stop = time.monotonic() + seconds
    counts = {"tcp": 0, "tls": 0, "drop": 0, "udp": 0, "bulk_bytes": 0}
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def bulk():
        try:
            with socket.create_connection((server, 1443), timeout=5) as t:
                chunk = b"x" * 1000
                t.sendall(chunk)
                t.recv(64)
                while time.monotonic() < stop:
                    t.sendall(chunk)
                    counts["bulk_bytes"] += len(chunk)
                    time.sleep(0.002)
        except (OSError, ssl.SSLError):
            pass

    threading.Thread(target=bulk, daemon=True).start()
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    i = 0
    while time.monotonic() < stop:
        t0 = time.monotonic()
        i += 1
        try:
            with socket.create_connection((server, 1443), timeout=2) as s:
                s.sendall(b"ksn")
                s.recv(64)
            counts["tcp"] += 1
        except OSError:
            pass
        u.sendto(b"soak", (server, 15000))
        counts["udp"] += 1
        if i % 10 == 0:
            try:
                with socket.create_connection((server, 23101), timeout=2) as s:
                    with ctx.wrap_socket(s, server_hostname="eu1.ksc.kaspersky.com") as t:
                        t.sendall(b"hi")
                        t.recv(64)
                counts["tls"] += 1
            except (OSError, ssl.SSLError):
                pass
        if i % 25 == 0:
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect_ex((server, 27200))    # dropped: a SYN or two, then closed
            finally:
                threading.Timer(1.5, s.close).start()
            counts["drop"] += 1
        time.sleep(max(0.0, 1.0 / rate - (time.monotonic() - t0)))
    print(json.dumps(counts), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--engine", default="scapy", choices=["scapy", "tshark"])
    ap.add_argument("--rate", type=float, default=40.0, help="short connections per second")
    args = ap.parse_args()

    import netns
    reason = netns.why_unavailable()
    if reason:
        print(f"soak: cannot run: {reason}", file=sys.stderr)
        return 2
    work = Path(os.environ.get("TMPDIR", "/tmp")) / f"kscc-soak-{os.getpid()}"
    work.mkdir(parents=True, exist_ok=True)
    lab = netns.Lab(work)
    live = None
    try:
        lab.up()
        err = work / "live.stderr"
        live = netns.popen_in(lab.client, [
            sys.executable, "-m", "kscc_traffic", "live", "-i", "kc0", "--engine", args.engine,
            "--duration", str(args.seconds + 30), "--no-answer-timeout", "2",
            "--idle-timeout", "tcp=10", "--idle-timeout", "udp=5", "--idle-timeout", "close=2",
            "--format", "jsonl", "--output", str(work / "flows.jsonl")],
            stdout=open(work / "live.stdout", "w"), stderr=open(err, "w"))
        netns.wait_for_line(err, r"^Capturing on", 60, live)
        gen = netns.popen_in(lab.client, [sys.executable, __file__, "gen", netns.SERVER_ADDR,
                                          str(args.seconds), str(args.rate)])
        time.sleep(min(5.0, args.seconds / 4))
        rss0, _ = _rss_kib(live.pid)
        t0 = time.monotonic()
        samples = [(0.0, rss0)]
        while gen.poll() is None and time.monotonic() - t0 < args.seconds + 30:
            time.sleep(5)
            if live.poll() is None:
                samples.append((time.monotonic() - t0, _rss_kib(live.pid)[0]))
        sent = json.loads(gen.stdout.read().decode().strip().splitlines()[-1])
        rss1, hwm = _rss_kib(live.pid)
        live.send_signal(signal.SIGTERM)
        live.wait(60)
        text = err.read_text()
        summary = next((ln for ln in text.splitlines() if ln.startswith("Captured ")), text[-300:])
        flows = sum(1 for _ in open(work / "flows.jsonl"))
        print(f"traffic sent: {sent}")
        print(f"RSS at start: {rss0 / 1024:.1f} MiB, at end: {rss1 / 1024:.1f} MiB, peak: {hwm / 1024:.1f} MiB")
        print("RSS every 5 s (MiB): " + " ".join(f"{r / 1024:.0f}" for _, r in samples))
        print(summary)
        print(f"flows in the final report: {flows}")
        return 0
    finally:
        if live is not None:
            netns.stop_process(live)
        lab.down()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "gen":
        gen_main(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))
    else:
        sys.exit(main())
