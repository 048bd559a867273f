#!/usr/bin/env python3
"""Deterministic synthetic capture of KSC-like traffic, for benchmarks.

    python bench/make_capture.py                         # 1,000,000 packets, pcap, bench/out/
    python bench/make_capture.py --packets 10000000      # the 10 M variant (~5 GB)
    python bench/make_capture.py --format pcapng --out /tmp/x.pcapng --seed 7

What is in it (per 1 M packets: ~85,000 flows, ~506 MB, ~37 minutes of traffic at ~450 packets/s):

* ~20,000 agents in 198.18.0.0/15 talking to the cloud (203.0.113.0/24), to a distribution point
  (192.0.2.20) and to a DNS server (192.0.2.53).
* DNS: real wire-format query/answer pairs (UDP 53) for eu1.ksc.kaspersky.com, ksn-a.kaspersky.com,
  ocsp.digicert.com, dnl-07.geo.kaspersky.com, with A answers (the address the agent then connects
  to); most TCP sessions to a named server are preceded by their lookup; a few queries go unanswered.
* TCP sessions on the documented ports 23101, 27201, 29201, 443, 1443 (cloud, TLS with SNI),
  13000, 13111, 13295, 17111 (distribution point, TLS without SNI) and 80 (HTTP, OCSP GETs with a
  Host header; a few to a Kaspersky update host, which the analyzer reports as host_mismatch):
  SYN (MSS/WS/SACK options) / SYN-ACK / ACK, a valid TLS 1.3 ClientHello as first client data, a
  ServerHello + ChangeCipherSpec + encrypted flight, the client's CCS + Finished, request/response
  records, FIN teardown; consistent sequence/acknowledgement numbers; segments cut at MSS 1460.
  A small share are long-lived agent connections (heartbeats for up to an hour and more).
* Blocked: SYN + 2 retransmissions and silence (S0), SYN answered by RST (REJ).
* UDP 15000 broadcasts from agents to 198.19.255.255 and UDP 15001 multicast from the distribution
  point to 239.192.0.15 (the one address outside the documentation ranges: multicast needs 224/4).

Addresses otherwise only from 192.0.2.0/24, 198.18.0.0/15 and 203.0.113.0/24; MAC addresses
00:00:5e:00:53:xx (RFC 7042) and locally administered 02:00:c6:12:xx:xx for the agents.
Checksums (IPv4, TCP, UDP) are correct. Timestamps start 2026-03-02 09:00:00 UTC (microseconds).

How: traffic is generated in 120-second windows of session start times, all columns at once with
numpy (no Python object per packet); packets of sessions still running at a window's end wait for
the next window, so the file is in time order and long flows span windows. Each window's records are
assembled into one byte buffer (headers scattered in by header shape, payload templates by
template, checksums from prefix sums) and written. Memory stays bounded whatever ``--packets``.

Deterministic: window w uses ``numpy.random.default_rng([seed, w])``; the same seed gives a
byte-identical file, and a shorter capture is a prefix (in packets) of a longer one with the same
seed and format. A sidecar ``<capture>.json`` records what was generated.
"""
from __future__ import annotations

import argparse
import json
import struct
import sys
import time
from pathlib import Path

import numpy as np

GENERATOR_VERSION = 2
DEFAULT_PACKETS = 1_000_000
DEFAULT_SEED = 20260302
OUT_DIR = Path(__file__).resolve().parent / "out"

T0_US = 1_772_442_000 * 1_000_000  # 2026-03-02 09:00:00 UTC
WINDOW_US = 120 * 1_000_000
MSS = 1460
N_CLIENTS = 20_000
POOL_BYTES = (1 << 20) - 3  # filler pool (odd length so that tiles do not line up with records)

# --------------------------------------------------------------------------- addresses


def ip4(text: str) -> int:
    a, b, c, d = (int(x) for x in text.split("."))
    return (a << 24) | (b << 16) | (c << 8) | d


DNS_SERVER = ip4("192.0.2.53")
DP = ip4("192.0.2.20")
BROADCAST = ip4("198.19.255.255")    # directed broadcast of 198.18.0.0/15
MCAST_GROUP = ip4("239.192.0.15")
GATEWAY_MAC = 0x00005E005301
DP_MAC = 0x00005E005314
BCAST_MAC = 0xFFFFFFFFFFFF
MCAST_MAC = 0x01005E40000F           # 01:00:5e + low 23 bits of 239.192.0.15
CLIENT_MAC_BASE = 0x0200C6120000


def client_ip(idx: np.ndarray) -> np.ndarray:
    """Agent index -> address in 198.18.0.0/15, never .0 or .255 in the last octet."""
    idx = idx.astype(np.int64)
    return (ip4("198.18.0.0") + (idx // 254) * 256 + idx % 254 + 1).astype(np.uint32)


#: DNS names, the addresses their A answers give
NAMES = [
    ("eu1.ksc.kaspersky.com", ["203.0.113.10", "203.0.113.11"]),
    ("ksn-a.kaspersky.com", ["203.0.113.20", "203.0.113.21", "203.0.113.22"]),
    ("ocsp.digicert.com", ["203.0.113.80"]),
    ("dnl-07.geo.kaspersky.com", ["203.0.113.90", "203.0.113.91"]),
]
N_EU1, N_KSN, N_OCSP, N_DNL = range(4)

#: TLS services: (port, name index or -1 for the distribution point, share of TLS sessions)
TLS_SERVICES = [
    (23101, N_EU1, 0.42),  # agent_connection
    (27201, N_EU1, 0.03),  # activation
    (29201, N_EU1, 0.02),  # klsctunnel
    (443, N_EU1, 0.08),    # discovery
    (1443, N_KSN, 0.17),   # ksn
    (13000, -1, 0.16),     # dp_agent_connection
    (13111, -1, 0.04),     # dp_ksn_proxy_tcp
    (13295, -1, 0.05),     # dp_push
    (17111, -1, 0.03),     # dp_ksn_proxy_https
]

#: session starts per second, by kind (tuned so that 1 M packets hold ~85,000 flows in ~500 MB)
RATES = {
    "tls": 19.5,        # short TLS sessions
    "tls_long": 0.045,  # long-lived agent connections (heartbeats)
    "http": 2.0,        # HTTP on 80
    "syn_only": 1.1,    # SYN + retransmissions, no answer
    "rst": 0.7,         # SYN answered by RST
    "dns_alone": 3.5,   # DNS lookups not followed by a connection in the capture
    "bcast": 0.8,       # UDP 15000 broadcast
    "mcast": 0.25,      # UDP 15001 multicast from the DP
}
DNS_BEFORE_SESSION = 0.6   # share of named TCP sessions preceded by their DNS lookup
DNS_UNANSWERED = 0.005

# TCP flags
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
SYN_OPTIONS = bytes.fromhex("020405b4010303080101" "0402")  # MSS 1460, NOP, WS 8, NOP, NOP, SACK-permitted

# families (for the sidecar's flow counts)
FAMILIES = ["tls", "tls_long", "http", "syn_only", "rst", "dns", "bcast", "mcast"]
FAM = {k: i for i, k in enumerate(FAMILIES)}


# --------------------------------------------------------------------------- payload templates

class Templates:
    """Payload prefixes written at the start of a packet's payload; the rest is filler bytes.

    Each template may have a 16-bit big-endian field patched per packet (``patch_off``: DNS id,
    a TLS record length) and 32 bytes of per-packet randomness (``rand_off``: hello randoms)."""

    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.patch_off: list[int] = []
        self.rand_off: list[int] = []

    def add(self, data: bytes, patch_off: int = -1, rand_off: int = -1) -> int:
        self.data.append(data)
        self.patch_off.append(patch_off)
        self.rand_off.append(rand_off)
        return len(self.data) - 1

    def arrays(self):
        self.length = np.array([len(d) for d in self.data], np.int64)
        self.patch = np.array(self.patch_off, np.int64)
        self.rand = np.array(self.rand_off, np.int64)


def dns_name(name: str) -> bytes:
    return b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"


def dns_query(name: str) -> bytes:
    # id (patched), RD, 1 question, A IN
    return struct.pack(">HHHHHH", 0, 0x0100, 1, 0, 0, 0) + dns_name(name) + struct.pack(">HH", 1, 1)


def dns_answer(name: str, addrs: list[str]) -> bytes:
    out = struct.pack(">HHHHHH", 0, 0x8180, 1, len(addrs), 0, 0) + dns_name(name) + struct.pack(">HH", 1, 1)
    for a in addrs:
        out += struct.pack(">HHHIH", 0xC00C, 1, 1, 300, 4) + struct.pack(">I", ip4(a))
    return out


def _ext(kind: int, body: bytes) -> bytes:
    return struct.pack(">HH", kind, len(body)) + body


def client_hello(sni: str | None, rng: np.random.Generator, pad_to: int = 0) -> bytes:
    """A TLS 1.3 ClientHello record (as a browser-like TLS stack would send it)."""
    rnd = lambda n: rng.integers(0, 256, n, dtype=np.uint8).tobytes()  # noqa: E731
    suites = [0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC013,
              0xC014, 0x009C, 0x009D, 0x002F, 0x0035]
    exts = b""
    if sni is not None:
        host = sni.encode()
        exts += _ext(0x0000, struct.pack(">HBH", len(host) + 3, 0, len(host)) + host)
    exts += _ext(0x0017, b"")                                             # extended_master_secret
    exts += _ext(0xFF01, b"\0")                                           # renegotiation_info
    exts += _ext(0x000A, struct.pack(">H", 8) + struct.pack(">4H", 0x001D, 0x0017, 0x0018, 0x0019))
    exts += _ext(0x000B, b"\x01\x00")                                     # ec_point_formats
    exts += _ext(0x0023, b"")                                             # session_ticket
    exts += _ext(0x0010, b"\x00\x0c\x02h2\x08http/1.1")                   # ALPN
    exts += _ext(0x0005, b"\x01\x00\x00\x00\x00")                         # status_request
    sig = [0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601]
    exts += _ext(0x000D, struct.pack(">H", 2 * len(sig)) + struct.pack(f">{len(sig)}H", *sig))
    exts += _ext(0x0033, struct.pack(">HHH", 36, 0x001D, 32) + rnd(32))  # key_share x25519
    exts += _ext(0x002D, b"\x01\x01")                                     # psk_key_exchange_modes
    exts += _ext(0x002B, b"\x04\x03\x04\x03\x03")                         # supported_versions 1.3, 1.2
    body = (b"\x03\x03" + b"\0" * 32 + b"\x20" + rnd(32)
            + struct.pack(">H", 2 * len(suites)) + struct.pack(f">{len(suites)}H", *suites)
            + b"\x01\x00")
    if pad_to:
        base = 4 + len(body) + 2 + len(exts)
        if base + 4 < pad_to:
            exts += _ext(0x0015, b"\0" * (pad_to - base - 4))            # padding
    body += struct.pack(">H", len(exts)) + exts
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack(">H", len(hs)) + hs


def server_flight_head(rng: np.random.Generator) -> bytes:
    """ServerHello (TLS 1.3, x25519) record + ChangeCipherSpec + the header of the application
    data record carrying the encrypted flight (length patched per packet)."""
    rnd = lambda n: rng.integers(0, 256, n, dtype=np.uint8).tobytes()  # noqa: E731
    exts = _ext(0x002B, b"\x03\x04") + _ext(0x0033, struct.pack(">HH", 0x001D, 32) + rnd(32))
    body = (b"\x03\x03" + b"\0" * 32 + b"\x20" + rnd(32) + b"\x13\x01\x00"
            + struct.pack(">H", len(exts)) + exts)
    hs = b"\x02" + len(body).to_bytes(3, "big") + body
    return (b"\x16\x03\x03" + struct.pack(">H", len(hs)) + hs + b"\x14\x03\x03\x00\x01\x01"
            + b"\x17\x03\x03\x00\x00")


def build_templates(seed: int) -> dict:
    rng = np.random.default_rng([seed, 1 << 30])
    T = Templates()
    t: dict = {"dns_q": [], "dns_a": {}, "ch": {}}
    for i, (name, addrs) in enumerate(NAMES):
        t["dns_q"].append(T.add(dns_query(name), patch_off=0))
        for j in range(len(addrs)):
            rot = addrs[j:] + addrs[:j]  # the address used first comes first
            t["dns_a"][(i, j)] = T.add(dns_answer(name, rot), patch_off=0)
    t["dns_a_tab"] = np.array([[t["dns_a"][(i, min(j, len(a) - 1))] for j in range(3)]
                               for i, (_, a) in enumerate(NAMES)], np.int64)
    # ClientHellos: per name (and none for the DP), unpadded and padded to 512 bytes
    for key, sni in [(N_EU1, NAMES[N_EU1][0]), (N_KSN, NAMES[N_KSN][0]), (-1, None)]:
        t["ch"][key] = [T.add(client_hello(sni, rng, pad), rand_off=11) for pad in (0, 517)]
    head = server_flight_head(rng)
    t["sf"] = T.add(head, patch_off=len(head) - 2, rand_off=11)
    t["fin"] = T.add(b"\x14\x03\x03\x00\x01\x01\x17\x03\x03\x00\x35")   # CCS + Finished (53) header
    t["app"] = T.add(b"\x17\x03\x03\x00\x00", patch_off=3)            # application data record header
    # HTTP: OCSP GETs to ocsp.digicert.com, update downloads from a Kaspersky host
    t["http_req"], t["http_resp"] = [], []
    for k in range(4):
        path = "/" + "".join(chr(c) for c in rng.integers(0, 26, 60) + 65) + "%3D"
        req = (f"GET {path} HTTP/1.1\r\nHost: ocsp.digicert.com\r\nUser-Agent: klnagent\r\n"
               "Accept: */*\r\nConnection: close\r\n\r\n").encode()
        t["http_req"].append(T.add(req))
    t["http_req_dnl"] = T.add(b"GET /bases/av/kdb/i386/kdb-i386-0607g.xml.dif HTTP/1.1\r\n"
                              b"Host: dnl-07.geo.kaspersky.com\r\nUser-Agent: klnagent\r\n"
                              b"Accept: */*\r\n\r\n")
    t["http_body"] = [471, 1489, 5120, 23861]
    for size in t["http_body"]:
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {size}\r\n"
                "Cache-Control: max-age=86400\r\nConnection: close\r\n\r\n").encode()
        t["http_resp"].append(T.add(head))
    t["dnl_body"] = 60211
    t["http_resp_dnl"] = T.add(f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                               f"Content-Length: {t['dnl_body']}\r\n\r\n".encode())
    T.arrays()
    t["T"] = T
    return t


# --------------------------------------------------------------------------- helpers

def group_starts(key: np.ndarray) -> np.ndarray:
    s = np.ones(len(key), bool)
    s[1:] = key[1:] != key[:-1]
    return s


def group_excl_cumsum(x: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Exclusive cumulative sum of ``x`` within consecutive groups (``starts`` marks group heads)."""
    x = x.astype(np.int64)
    excl = np.cumsum(x) - x
    gid = np.cumsum(starts) - 1
    return excl - excl[np.flatnonzero(starts)][gid]


def group_arange(counts: np.ndarray) -> np.ndarray:
    """[0..c0-1, 0..c1-1, ...]"""
    counts = counts.astype(np.int64)
    total = int(counts.sum())
    ends = np.cumsum(counts)
    return np.arange(total) - np.repeat(ends - counts, counts)


def lognormal_int(rng, n, median, sigma, lo, hi) -> np.ndarray:
    return np.clip(np.round(median * np.exp(sigma * rng.standard_normal(n))), lo, hi).astype(np.int64)


PKT_COLUMNS = {  # name -> dtype of the packet table
    "ts": np.int64, "src": np.uint32, "dst": np.uint32, "smac": np.uint64, "dmac": np.uint64,
    "proto": np.uint8, "sport": np.uint16, "dport": np.uint16, "flags": np.uint8,
    "seq": np.uint32, "ack": np.uint32, "win": np.uint16, "ttl": np.uint8, "ipid": np.uint16,
    "plen": np.int64, "tpl": np.int32, "patch": np.uint16, "first": np.bool_, "fam": np.int8,
}


def empty_packets() -> dict:
    return {k: np.zeros(0, v) for k, v in PKT_COLUMNS.items()}


def concat(parts: list[dict]) -> dict:
    return {k: np.concatenate([p[k] for p in parts]).astype(v, copy=False) for k, v in PKT_COLUMNS.items()}


def take(p: dict, idx) -> dict:
    return {k: v[idx] for k, v in p.items()}


# --------------------------------------------------------------------------- session builders

class Sessions:
    """TCP sessions described as messages, expanded to packets (:meth:`packets`)."""

    def __init__(self) -> None:
        self.s: dict[str, list[np.ndarray]] = {k: [] for k in
                                               ("cip", "sip", "cmac", "cport", "sport", "start", "isn_c", "isn_s", "fam")}
        self.m: dict[str, list[np.ndarray]] = {k: [] for k in
                                               ("sess", "pos", "dir", "flags", "size", "tpl", "patch", "gap")}
        self.n = 0

    def add_sessions(self, **cols) -> np.ndarray:
        n = len(cols["cip"])
        for k in self.s:
            self.s[k].append(np.broadcast_to(cols[k], (n,)))
        ids = np.arange(self.n, self.n + n)
        self.n += n
        return ids

    def msg(self, sess, pos, dir, flags, size=0, tpl=-1, patch=0, gap=0) -> None:
        n = len(sess)
        for k, v in (("sess", sess), ("pos", pos), ("dir", dir), ("flags", flags), ("size", size),
                     ("tpl", tpl), ("patch", patch), ("gap", gap)):
            self.m[k].append(np.broadcast_to(np.asarray(v), (n,)).astype(np.int64))

    def packets(self, rng) -> dict:
        if self.n == 0 or not self.m["sess"]:
            return empty_packets()
        S = {k: np.concatenate(v) for k, v in self.s.items()}
        M = {k: np.concatenate(v) for k, v in self.m.items()}
        order = np.lexsort((M["pos"], M["sess"]))
        M = {k: v[order] for k, v in M.items()}
        # messages -> segments of at most MSS bytes
        nseg = np.maximum(1, -(-M["size"] // MSS))
        mi = np.repeat(np.arange(len(nseg)), nseg)
        k = group_arange(nseg)
        last = k == nseg[mi] - 1
        sess = M["sess"][mi]
        d = M["dir"][mi]
        plen = np.minimum(MSS, M["size"][mi] - k * MSS)
        flags = M["flags"][mi]
        flags = np.where(last, flags, flags & ~PSH)
        tpl = np.where(k == 0, M["tpl"][mi], -1)
        gap = np.where(k == 0, M["gap"][mi], rng.integers(20, 300, len(mi)))
        st = group_starts(sess)
        gap[st] = 0
        ts = S["start"][sess] + np.cumsum(gap) - np.cumsum(gap)[np.flatnonzero(st)][np.cumsum(st) - 1]
        # sequence numbers: what each side consumed before this packet
        is_syn = (flags & SYN) != 0
        cons = plen + ((flags & FIN) != 0)
        c = d == 0
        cum_c = group_excl_cumsum(np.where(c, cons, 0), st)
        cum_s = group_excl_cumsum(np.where(c, 0, cons), st)
        syn_c = group_excl_cumsum(is_syn & c, st) > 0
        syn_s = group_excl_cumsum(is_syn & ~c, st) > 0
        isn_c, isn_s = S["isn_c"][sess], S["isn_s"][sess]
        seq_c = isn_c + cum_c + syn_c
        seq_s = isn_s + cum_s + syn_s
        seq = np.where(is_syn, np.where(c, isn_c, isn_s), np.where(c, seq_c, seq_s))
        ack = np.where((flags & ACK) != 0, np.where(c, seq_s, seq_c), 0)
        cip, sip = S["cip"][sess], S["sip"][sess]
        cmac = S["cmac"][sess]
        smac = np.full(len(sess), GATEWAY_MAC, np.uint64)  # servers are behind the agents' router
        cport, sport = S["cport"][sess], S["sport"][sess]
        n = len(sess)
        return {
            "ts": ts, "src": np.where(c, cip, sip), "dst": np.where(c, sip, cip),
            "smac": np.where(c, cmac, smac), "dmac": np.where(c, smac, cmac),
            "proto": np.full(n, 6), "sport": np.where(c, cport, sport), "dport": np.where(c, sport, cport),
            "flags": flags, "seq": (seq & 0xFFFFFFFF), "ack": (ack & 0xFFFFFFFF),
            "win": np.where(is_syn, np.where(c, 64240, 65535), np.where(c, 1026, 501)),
            "ttl": np.where(c, 128, 52), "ipid": rng.integers(0, 65536, n),
            "plen": plen, "tpl": tpl, "patch": M["patch"][mi], "first": st, "fam": S["fam"][sess],
        }


class Window:
    """Everything that starts in one window of time."""

    def __init__(self, gen: "Generator", w: int) -> None:
        self.g = gen
        self.rng = np.random.default_rng([gen.seed, w])
        self.t0 = T0_US + w * WINDOW_US
        self.tcp = Sessions()
        self.udp: list[dict] = []

    def count(self, kind: str) -> int:
        return int(self.rng.poisson(RATES[kind] * WINDOW_US / 1e6))

    def starts(self, n: int) -> np.ndarray:
        return np.sort(self.t0 + self.rng.integers(0, WINDOW_US, n))

    def clients(self, n: int) -> np.ndarray:
        return self.rng.integers(0, N_CLIENTS, n)

    # ---------------------------------------------------------------- UDP
    def udp_packets(self, ts, src, dst, smac, dmac, sport, dport, plen, tpl, patch, first, fam, ttl):
        n = len(ts)
        b = lambda v: np.broadcast_to(np.asarray(v), (n,))  # noqa: E731
        self.udp.append({
            "ts": b(ts), "src": b(src), "dst": b(dst), "smac": b(smac), "dmac": b(dmac),
            "proto": b(17), "sport": b(sport), "dport": b(dport), "flags": b(0), "seq": b(0), "ack": b(0),
            "win": b(0), "ttl": b(ttl), "ipid": self.rng.integers(0, 65536, n), "plen": b(plen),
            "tpl": b(tpl), "patch": b(patch), "first": b(first), "fam": b(fam)})

    def dns(self, cli: np.ndarray, t: np.ndarray, name: np.ndarray, addr: np.ndarray) -> np.ndarray:
        """Lookups by agents ``cli`` at times ``t``; returns the time the answer arrives."""
        tp = self.g.tpl
        T = tp["T"]
        n = len(cli)
        port = self.g.ports(cli, t)
        qid = self.rng.integers(0, 65536, n)
        rtt = lognormal_int(self.rng, n, 3000, 0.8, 300, 80000)
        qt = np.array(tp["dns_q"])[name]
        at = tp["dns_a_tab"][name, addr]
        cip, cmac = client_ip(cli), CLIENT_MAC_BASE + cli.astype(np.uint64)
        self.udp_packets(t, cip, DNS_SERVER, cmac, GATEWAY_MAC, port, 53, T.length[qt], qt, qid, True,
                         FAM["dns"], 128)
        ok = self.rng.random(n) >= DNS_UNANSWERED
        self.udp_packets(t[ok] + rtt[ok], DNS_SERVER, cip[ok], GATEWAY_MAC, cmac[ok], 53, port[ok],
                         T.length[at[ok]], at[ok], qid[ok], False, FAM["dns"], 60)
        return t + rtt

    def dns_alone(self) -> None:
        n = self.count("dns_alone")
        cli = self.clients(n)
        name = self.rng.choice(len(NAMES), n, p=[0.55, 0.3, 0.1, 0.05])
        addr = (self.rng.integers(0, 1 << 20, n) % np.array([len(a) for _, a in NAMES])[name])
        self.dns(cli, self.starts(n), name, addr)

    def bcast(self) -> None:
        n = self.count("bcast")
        cli, t = self.clients(n), self.starts(n)
        port = self.g.ports(cli, t)
        k = self.rng.integers(1, 4, n)  # 1-3 datagrams per flow, a second apart
        i = np.repeat(np.arange(n), k)
        j = group_arange(k)
        self.udp_packets(t[i] + j * 1_000_000 + self.rng.integers(0, 5000, len(i)), client_ip(cli)[i], BROADCAST,
                         CLIENT_MAC_BASE + cli[i].astype(np.uint64), BCAST_MAC, port[i], 15000,
                         lognormal_int(self.rng, len(i), 180, 0.5, 40, 1400), -1, 0, j == 0, FAM["bcast"], 128)

    def mcast(self) -> None:
        n = self.count("mcast")
        t = self.starts(n)
        port = self.rng.integers(49152, 65536, n)
        k = self.rng.integers(1, 5, n)
        i = np.repeat(np.arange(n), k)
        j = group_arange(k)
        self.udp_packets(t[i] + j * 200_000, DP, MCAST_GROUP, DP_MAC, MCAST_MAC, port[i], 15001,
                         lognormal_int(self.rng, len(i), 600, 0.6, 60, 1400), -1, 0, j == 0, FAM["mcast"], 64)

    # ---------------------------------------------------------------- TCP
    def _tcp(self, n: int, fam: str, port: np.ndarray, name: np.ndarray, lookup: bool):
        """Common part of TCP sessions: clients, server addresses, DNS before, ports, ISNs."""
        rng = self.rng
        cli = self.clients(n)
        t = self.starts(n)
        addr_n = np.array([len(a) for _, a in NAMES])
        addr = rng.integers(0, 1 << 20, n) % addr_n[np.maximum(name, 0)]
        addr_tab = np.array([[ip4(a) for a in (addrs + addrs[:1] * 3)[:3]] for _, addrs in NAMES], np.uint32)
        sip = np.where(name >= 0, addr_tab[np.maximum(name, 0), addr], DP).astype(np.uint32)
        if lookup:
            look = (name >= 0) & (rng.random(n) < DNS_BEFORE_SESSION)
            if look.any():
                t_ans = self.dns(cli[look], t[look], name[look], addr[look])
                t[look] = t_ans + rng.integers(100, 2000, int(look.sum()))
        cport = self.g.ports(cli, t)
        ids = self.tcp.add_sessions(cip=client_ip(cli), sip=sip, cmac=CLIENT_MAC_BASE + cli.astype(np.uint64),
                                    cport=cport, sport=port, start=t, isn_c=rng.integers(0, 1 << 32, n),
                                    isn_s=rng.integers(0, 1 << 32, n), fam=FAM[fam])
        rtt = np.where(sip == DP, lognormal_int(rng, n, 600, 0.5, 100, 5000),
                       lognormal_int(rng, n, 28000, 0.4, 8000, 150000))
        return ids, rtt

    def handshake(self, ids, rtt) -> None:
        n = len(ids)
        m = self.tcp.msg
        m(ids, 0, 0, SYN)
        m(ids, 1, 1, SYN | ACK, gap=rtt)
        m(ids, 2, 0, ACK, gap=self.rng.integers(20, 120, n))

    def teardown(self, ids, rtt, after) -> None:
        rng, m = self.rng, self.tcp.msg
        n = len(ids)
        server_first = rng.random(n) < 0.1
        first, second = np.where(server_first, 1, 0), np.where(server_first, 0, 1)
        idle = lognormal_int(rng, n, 50_000, 1.5, 1000, 20_000_000)
        m(ids, 1 << 40, first, FIN | ACK, gap=after + idle)
        m(ids, (1 << 40) + 1, second, FIN | ACK, gap=np.where(server_first, 100, rtt))
        m(ids, (1 << 40) + 2, first, ACK, gap=np.where(server_first, rtt, 60))

    def data(self, ids, pos, dir, size, tpl, patch, gap, rtt) -> None:
        """One message; the receiver ACKs it separately when it took several segments."""
        n = len(ids)
        pos, dir, size, tpl, patch, gap, rtt = (np.broadcast_to(np.asarray(v), (n,)).astype(np.int64)
                                                for v in (pos, dir, size, tpl, patch, gap, rtt))
        self.tcp.msg(ids, pos, dir, PSH | ACK, size, tpl, patch, gap)
        big = size > MSS
        if big.any():
            # seen from the agents' side: our ACK leaves at once, the server's comes after a round trip
            self.tcp.msg(ids[big], pos[big] + 1, 1 - dir[big], ACK,
                         gap=np.where(dir[big] == 0, rtt[big], self.rng.integers(20, 200, int(big.sum()))))

    def tls(self, long: bool = False) -> None:
        rng, tp = self.rng, self.g.tpl
        T = tp["T"]
        n = self.count("tls_long" if long else "tls")
        if long:
            svc = np.zeros(n, np.int64)  # agent connection
        else:
            svc = rng.choice(len(TLS_SERVICES), n, p=[s[2] for s in TLS_SERVICES])
        port = np.array([s[0] for s in TLS_SERVICES])[svc]
        name = np.array([s[1] for s in TLS_SERVICES])[svc]
        ids, rtt = self._tcp(n, "tls_long" if long else "tls", port, name, lookup=True)
        self.handshake(ids, rtt)
        ch_tab = np.array([tp["ch"][N_EU1], tp["ch"][N_KSN], tp["ch"][-1]])
        ch = ch_tab[np.where(name == N_EU1, 0, np.where(name == N_KSN, 1, 2)), rng.integers(0, 2, n)]
        self.data(ids, 3, 0, T.length[ch], ch, 0, rng.integers(100, 800, n), rtt)
        flight = lognormal_int(rng, n, 2300, 0.35, 900, 12000)  # encrypted extensions .. finished
        sf_len = T.length[tp["sf"]] + flight
        self.data(ids, 5, 1, sf_len, tp["sf"], flight, rtt + rng.integers(200, 3000, n), rtt)
        self.data(ids, 7, 0, 64, tp["fin"], 0, rng.integers(500, 3000, n), rtt)
        # request/response exchanges
        if long:
            nx = rng.integers(40, 400, n)
        else:
            nx = rng.geometric(0.39, n)
        e = np.repeat(np.arange(n), nx)
        j = group_arange(nx)
        ne = len(e)
        if long:
            think = lognormal_int(rng, ne, 15_000_000, 0.5, 2_000_000, 60_000_000)
            req = lognormal_int(rng, ne, 180, 0.6, 40, 2000)
            resp = lognormal_int(rng, ne, 260, 0.8, 40, 4000)
        else:
            think = np.where(j == 0, rng.integers(100, 2000, ne), lognormal_int(rng, ne, 20_000, 2.0, 200, 30_000_000))
            req = lognormal_int(rng, ne, 350, 0.9, 60, 16000)
            resp = lognormal_int(rng, ne, 1100, 1.1, 60, 16000)
        pos = 10 + 4 * j
        eids, ertt = ids[e], rtt[e]
        self.data(eids, pos, 0, req, tp["app"], req - 5, think, ertt)
        self.data(eids, pos + 2, 1, resp, tp["app"], resp - 5, ertt + rng.integers(100, 20000, ne), ertt)
        self.teardown(ids, rtt, np.zeros(n, np.int64))

    def http(self) -> None:
        rng, tp = self.rng, self.g.tpl
        T = tp["T"]
        n = self.count("http")
        dnl = rng.random(n) < 0.05
        name = np.where(dnl, N_DNL, N_OCSP)
        ids, rtt = self._tcp(n, "http", np.full(n, 80), name, lookup=True)
        self.handshake(ids, rtt)
        req = np.where(dnl, tp["http_req_dnl"], np.array(tp["http_req"])[rng.integers(0, 4, n)])
        self.data(ids, 3, 0, T.length[req], req, 0, rng.integers(100, 800, n), rtt)
        k = rng.choice(4, n, p=[0.55, 0.3, 0.1, 0.05])
        resp = np.where(dnl, tp["http_resp_dnl"], np.array(tp["http_resp"])[k])
        body = np.where(dnl, tp["dnl_body"], np.array(tp["http_body"])[k])
        self.data(ids, 5, 1, T.length[resp] + body, resp, 0, rtt + rng.integers(500, 20000, n), rtt)
        self.teardown(ids, rtt, np.zeros(n, np.int64))

    def blocked(self) -> None:
        rng = self.rng
        m = self.tcp.msg
        for kind in ("syn_only", "rst"):
            n = self.count(kind)
            svc = rng.choice(len(TLS_SERVICES), n, p=[s[2] for s in TLS_SERVICES])
            port = np.array([s[0] for s in TLS_SERVICES])[svc]
            name = np.array([s[1] for s in TLS_SERVICES])[svc]
            ids, rtt = self._tcp(n, kind, port, name, lookup=True)
            m(ids, 0, 0, SYN)
            if kind == "syn_only":
                m(ids, 1, 0, SYN, gap=1_000_000 + rng.integers(0, 3000, n))
                m(ids, 2, 0, SYN, gap=2_000_000 + rng.integers(0, 3000, n))
            else:
                m(ids, 1, 1, RST | ACK, gap=rtt)
        # a rejected SYN has a zero sequence number in the RST: the "server ISN" of these is 0
        # (set after the fact, below, for sessions of family rst)

    def build(self) -> dict:
        self.tls()
        self.tls(long=True)
        self.http()
        self.blocked()
        self.dns_alone()
        self.bcast()
        self.mcast()
        # REJ sessions: RST with sequence number 0
        fam = np.concatenate(self.tcp.s["fam"]) if self.tcp.n else np.zeros(0, np.int8)
        if self.tcp.n:
            isn_s = np.concatenate(self.tcp.s["isn_s"])
            isn_s[fam == FAM["rst"]] = 0
            self.tcp.s["isn_s"] = [isn_s]
        parts = [self.tcp.packets(self.rng)] + [{k: np.asarray(v) for k, v in u.items()} for u in self.udp]
        return concat(parts)


# --------------------------------------------------------------------------- writing bytes

def pcap_file_header() -> bytes:
    return struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)


def pcapng_file_header() -> bytes:
    appl = b"kscc-traffic bench/make_capture.py"
    opt = struct.pack("<HH", 4, len(appl)) + appl + b"\0" * (-len(appl) % 4) + b"\0\0\0\0"
    shb_len = 28 + len(opt)
    shb = struct.pack("<IIIHHq", 0x0A0D0D0A, shb_len, 0x1A2B3C4D, 1, 0, -1) + opt + struct.pack("<I", shb_len)
    idb = struct.pack("<IIHHI", 1, 20, 1, 0, 262144) + struct.pack("<I", 20)
    return shb + idb


def _put(H: np.ndarray, col: int, values: np.ndarray, fmt: str) -> None:
    v = np.ascontiguousarray(values.astype(fmt))
    H[:, col:col + v.dtype.itemsize] = v.view(np.uint8).reshape(len(v), v.dtype.itemsize)


def _fold(s: np.ndarray) -> np.ndarray:
    for _ in range(3):
        s = (s & 0xFFFF) + (s >> 16)
    return s


def records(p: dict, fmt: str, pool: np.ndarray, pool_at: int, T: Templates, first_index: int) -> np.ndarray:
    """The packet table -> the bytes of its records (one uint8 array). ``first_index``: number of
    the first packet in the file."""
    n = len(p["ts"])
    udp = p["proto"] == 17
    syn = (~udp) & ((p["flags"] & SYN) != 0)
    l4h = np.where(udp, 8, np.where(syn, 32, 20))
    frame = 14 + 20 + l4h + p["plen"]
    R = 16 if fmt == "pcap" else 28
    rec = R + frame if fmt == "pcap" else R + frame + (-frame % 4) + 4
    end = np.cumsum(rec)
    off = end - rec
    total = int(end[-1]) if n else 0
    buf = np.empty(total + 2 + total % 2, np.uint8)  # even length and a spare word for the checksums
    buf[total:] = 0
    # filler: the pool, tiled
    pos, at = 0, pool_at % len(pool)
    while pos < total:  # (the spare bytes at the end stay zero)
        k = min(len(pool) - at, total - pos)
        buf[pos:pos + k] = pool[at:at + k]
        pos += k
        at = 0
    # headers, built as rows of a matrix, then scattered by shape
    W = R + 14 + 20 + 32
    H = np.zeros((n, W), np.uint8)
    ts = p["ts"]
    if fmt == "pcap":
        _put(H, 0, ts // 1_000_000, "<u4")
        _put(H, 4, ts % 1_000_000, "<u4")
        _put(H, 8, frame, "<u4")
        _put(H, 12, frame, "<u4")
    else:
        _put(H, 0, np.full(n, 6), "<u4")
        _put(H, 4, rec, "<u4")
        _put(H, 8, np.zeros(n), "<u4")
        _put(H, 12, ts >> 32, "<u4")
        _put(H, 16, ts & 0xFFFFFFFF, "<u4")
        _put(H, 20, frame, "<u4")
        _put(H, 24, frame, "<u4")
    e = R
    _put(H, e, p["dmac"] >> np.uint64(16), ">u4")
    _put(H, e + 4, p["dmac"] & np.uint64(0xFFFF), ">u2")
    _put(H, e + 6, p["smac"] >> np.uint64(16), ">u4")
    _put(H, e + 10, p["smac"] & np.uint64(0xFFFF), ">u2")
    H[:, e + 12] = 0x08
    i = e + 14
    H[:, i] = 0x45
    iplen = 20 + l4h + p["plen"]
    _put(H, i + 2, iplen, ">u2")
    _put(H, i + 4, p["ipid"], ">u2")
    H[:, i + 6] = np.where(udp, 0, 0x40)  # DF on TCP
    H[:, i + 8] = p["ttl"]
    H[:, i + 9] = p["proto"]
    _put(H, i + 12, p["src"], ">u4")
    _put(H, i + 16, p["dst"], ">u4")
    words = H[:, i:i + 20].copy().view(">u2").astype(np.int64).sum(axis=1)
    _put(H, i + 10, (~_fold(words)) & 0xFFFF, ">u2")
    t = i + 20
    _put(H, t, p["sport"], ">u2")
    _put(H, t + 2, p["dport"], ">u2")
    # UDP: length at +4 (checksum at +6 later); TCP: seq, ack, offset, flags, window
    tcp = ~udp
    _put(H, t + 4, np.where(udp, 8 + p["plen"], p["seq"] >> 16), ">u2")
    _put(H, t + 6, np.where(udp, 0, p["seq"] & 0xFFFF), ">u2")
    _put(H, t + 8, p["ack"], ">u4")
    H[:, t + 12] = np.where(syn, 0x80, 0x50)
    H[:, t + 13] = p["flags"]
    _put(H, t + 14, p["win"], ">u2")
    H[np.ix_(syn, np.arange(t + 20, t + 32))] = np.frombuffer(SYN_OPTIONS, np.uint8)
    H[udp, t + 8:] = 0
    for width in (8, 20, 32):
        rows = np.flatnonzero(l4h == width)
        if len(rows):
            hl = t + width
            buf[off[rows, None] + np.arange(hl)] = H[rows, :hl]
    # pcapng trailer: padding zeros and the repeated block length
    if fmt == "pcapng":
        fend = off + R + frame
        pad = rec - R - frame - 4
        for k in range(3):
            m = pad > k
            buf[fend[m] + k] = 0
        tl = np.ascontiguousarray(rec.astype("<u4")).view(np.uint8).reshape(n, 4)
        buf[(end - 4)[:, None] + np.arange(4)] = tl
    # payload templates, patched fields, per-packet randomness
    pl = off + R + 14 + 20 + l4h
    tpl = p["tpl"]
    has = tpl >= 0
    for tid in np.unique(tpl[has]):
        rows = np.flatnonzero(tpl == tid)
        data = np.frombuffer(T.data[tid], np.uint8)
        buf[pl[rows, None] + np.arange(len(data))] = data
        if T.patch[tid] >= 0:
            v = p["patch"][rows].astype(np.int64)
            buf[pl[rows] + T.patch[tid]] = v >> 8
            buf[pl[rows] + T.patch[tid] + 1] = v & 0xFF
        if T.rand[tid] >= 0:
            # 32 "random" bytes from the pool, chosen by the packet's number in the file (not drawn
            # from the generator, so that a shorter capture stays a prefix of a longer one)
            at = ((first_index + rows) * 7907) % (len(pool) - 32)
            buf[pl[rows, None] + T.rand[tid] + np.arange(32)] = pool[at[:, None] + np.arange(32)]
    # TCP/UDP checksums (RFC 1071). The buffer is summed as native (little-endian) 16-bit words
    # with one reduceat; the ones' complement sum does not depend on byte order up to a swap, so a
    # segment that starts at an even offset gets its sum byte-swapped, one at an odd offset (whose
    # words straddle the buffer's words) does not. The bytes outside the segment that share its
    # first or last word are taken out again.
    l4 = off + R + 34
    l4len = l4h + p["plen"]
    s, e_ = l4, l4 + l4len
    words = buf.view(np.uint16)  # buf has an even length (see above)
    bounds = np.empty(2 * n, np.int64)
    bounds[0::2] = s // 2
    bounds[1::2] = (e_ + 1) // 2
    wsum = np.add.reduceat(words, bounds, dtype=np.uint64)[0::2].astype(np.int64)
    odd_s, odd_e = (s % 2) == 1, (e_ % 2) == 1
    wsum -= np.where(odd_s, buf[s - odd_s], 0).astype(np.int64)
    wsum -= np.where(odd_e, buf[e_ - 1 + odd_e], 0).astype(np.int64) << 8
    f = _fold(wsum)
    data_sum = np.where(odd_s, f, ((f & 0xFF) << 8) | (f >> 8))
    src, dst = p["src"].astype(np.int64), p["dst"].astype(np.int64)
    pseudo = (src >> 16) + (src & 0xFFFF) + (dst >> 16) + (dst & 0xFFFF) + p["proto"].astype(np.int64) + l4len
    ck = (~_fold(data_sum + pseudo)) & 0xFFFF
    ck = np.where(udp & (ck == 0), 0xFFFF, ck)
    co = np.where(udp, l4 + 6, l4 + 16)
    buf[co] = ck >> 8
    buf[co + 1] = ck & 0xFF
    return buf[:total]


# --------------------------------------------------------------------------- driver

class Generator:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.tpl = build_templates(seed)
        self.next_port = np.zeros(N_CLIENTS, np.int64)

    def ports(self, cli: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Ephemeral ports 49152-65535, handed out in turn per agent (no 5-tuple reuse while open).
        Calls within a window happen in a fixed order, so this is deterministic."""
        n = len(cli)
        if n == 0:
            return np.zeros(0, np.int64)
        order = np.lexsort((np.arange(n), t, cli))
        c = cli[order]
        rank = np.empty(n, np.int64)
        rank[order] = group_arange(np.diff(np.flatnonzero(np.r_[group_starts(c), True])))
        port = 49152 + (self.next_port[cli] + rank) % 16384
        np.add.at(self.next_port, cli, 1)
        return port


def generate(out: str | Path, packets: int = DEFAULT_PACKETS, fmt: str = "pcap", seed: int = DEFAULT_SEED,
             progress: bool = False) -> dict:
    """Write the capture; return its description (also written to ``<out>.json``)."""
    if fmt not in ("pcap", "pcapng"):
        raise ValueError(f"format must be pcap or pcapng, not {fmt!r}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    g = Generator(seed)
    pool = np.random.default_rng([seed, 1 << 31]).integers(0, 256, POOL_BYTES, dtype=np.uint8)
    pending = empty_packets()
    written = 0
    size = 0
    flows = np.zeros(len(FAMILIES), np.int64)
    first_ts = last_ts = None
    tmp = out.with_name(out.name + ".part")
    with open(tmp, "wb") as f:
        head = pcap_file_header() if fmt == "pcap" else pcapng_file_header()
        f.write(head)
        size += len(head)
        w = 0
        while written < packets:
            win = Window(g, w)
            new = win.build()
            allp = concat([pending, new])
            order = np.argsort(allp["ts"], kind="stable")
            allp = take(allp, order)
            cut = int(np.searchsorted(allp["ts"], win.t0 + WINDOW_US, side="left"))
            cut = min(cut, packets - written)
            emit = take(allp, slice(0, cut))
            pending = take(allp, slice(cut, None))
            if cut:
                buf = records(emit, fmt, pool, w * 7919 + written, g.tpl["T"], written)
                f.write(memoryview(buf))
                size += len(buf)
                written += cut
                flows += np.bincount(emit["fam"][emit["first"]], minlength=len(FAMILIES))
                first_ts = int(emit["ts"][0]) if first_ts is None else first_ts
                last_ts = int(emit["ts"][-1])
            if progress:
                print(f"\r  {written:,}/{packets:,} packets, {size / 1e6:,.0f} MB", end="", file=sys.stderr)
            w += 1
    tmp.replace(out)
    if progress:
        print(file=sys.stderr)
    meta = {
        "generator": "bench/make_capture.py", "generator_version": GENERATOR_VERSION,
        "format": fmt, "seed": seed, "packets": written, "bytes": size,
        "flows": int(flows.sum()), "flows_by_kind": dict(zip(FAMILIES, map(int, flows))),
        "first_ts": (first_ts or 0) / 1e6, "last_ts": (last_ts or 0) / 1e6,
        "duration_s": ((last_ts or 0) - (first_ts or 0)) / 1e6,
        "seconds_to_generate": round(time.perf_counter() - t_start, 2),
    }
    Path(str(out) + ".json").write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def default_path(packets: int, fmt: str, seed: int) -> Path:
    return OUT_DIR / f"ksc-{packets}-s{seed}.{fmt}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=DEFAULT_PACKETS, help="packets to write (default 1,000,000)")
    ap.add_argument("--format", choices=["pcap", "pcapng"], default="pcap")
    ap.add_argument("--out", type=Path, help="output file (default bench/out/ksc-N-sSEED.FORMAT)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    if a.packets < 1:
        ap.error("--packets must be at least 1")
    out = a.out or default_path(a.packets, a.format, a.seed)
    meta = generate(out, a.packets, a.format, a.seed, progress=not a.quiet and sys.stderr.isatty())
    if not a.quiet:
        print(f"{out}: {meta['packets']:,} packets, {meta['flows']:,} flows, {meta['bytes'] / 1e6:,.1f} MB, "
              f"{meta['duration_s']:,.0f} s of traffic; generated in {meta['seconds_to_generate']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
