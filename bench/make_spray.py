"""A UDP spray for the memory benchmark: one-datagram UDP flows, the worst case for memory per
packet (each datagram is a flow of its own, open for the 60 s UDP idle timeout).

Writes a classic pcap (Ethernet, microseconds) of ``--packets`` datagrams (default 1,000,000)
over ``--seconds`` (default 1200: ~50,000 flows open at a time), each from its own (address,
port) of 198.18.0.0/15 to 203.0.113.5 port 15000, 18 payload bytes (76 bytes a record), at
random times (seeded, sorted). Deterministic: the same options give the same bytes. Time it with
``/usr/bin/time -v kscc-traffic analyze FILE --format jsonl > /dev/null`` (bench/README.md)."""
from __future__ import annotations

import argparse
import struct
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "out"


def spray(n: int, seconds: int, seed: int) -> bytes:
    """The pcap's bytes: ``n`` one-datagram flows over ``seconds`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    us = np.sort(rng.integers(0, seconds * 10**6, n))
    rec = np.dtype([("sec", "<u4"), ("usec", "<u4"), ("cap", "<u4"), ("wire", "<u4"), ("dmac", "S6"), ("smac", "S6"),
                    ("etype", ">u2"), ("vihl", "u1"), ("tos", "u1"), ("iplen", ">u2"), ("ipid", ">u2"),
                    ("frag", ">u2"), ("ttl", "u1"), ("proto", "u1"), ("csum", ">u2"), ("src", ">u4"), ("dst", ">u4"),
                    ("sport", ">u2"), ("dport", ">u2"), ("ulen", ">u2"), ("ucsum", ">u2"), ("data", "S18")])
    r = np.zeros(n, rec)
    i = np.arange(n, dtype=np.int64)
    r["sec"], r["usec"] = 1_700_000_000 + us // 10**6, us % 10**6
    r["cap"] = r["wire"] = rec.itemsize - 16
    r["dmac"], r["smac"], r["etype"] = bytes.fromhex("020000000001"), bytes.fromhex("020000000002"), 0x0800
    r["vihl"], r["iplen"], r["ipid"], r["ttl"], r["proto"] = 0x45, 46, i & 0xFFFF, 64, 17
    r["src"] = (198 << 24 | 18 << 16) + (i % (1 << 17))         # 198.18.0.0/15
    r["dst"] = 203 << 24 | 113 << 8 | 5
    r["sport"], r["dport"], r["ulen"], r["data"] = 1024 + i // (1 << 17), 15000, 26, b"x" * 18
    words = (0x4500 + 46 + r["ipid"].astype(np.int64) + (64 << 8 | 17) + (r["src"] >> 16) + (r["src"] & 0xFFFF)
             + (r["dst"] >> 16) + (r["dst"] & 0xFFFF))
    words = (words & 0xFFFF) + (words >> 16)
    r["csum"] = ~((words & 0xFFFF) + (words >> 16)) & 0xFFFF    # (the IPv4 header checksum; UDP's left 0: none)
    head = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    return head + r.tobytes()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=1_000_000, help="datagrams (flows) to write")
    ap.add_argument("--seconds", type=int, default=1200, help="the capture's length (s)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", type=Path, help="output file (default bench/out/spray-N.pcap)")
    a = ap.parse_args()
    out = a.out or OUT / f"spray-{a.packets}.pcap"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(spray(a.packets, a.seconds, a.seed))
    print(out)


if __name__ == "__main__":
    main()
