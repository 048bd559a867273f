"""Properties (hypothesis): conservation of packets and bytes, independence from the order of
simultaneous packets and from the link layer, and a fuzzer feeding damaged captures to the whole
analysis. The fuzz budget is small in CI; ``KSCC_FUZZ_EXAMPLES=5000 python -m pytest
tests/test_properties.py`` runs it longer (README, Development)."""
from __future__ import annotations

import os
import random
import signal
import struct
import tracemalloc
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT, inet_checksum
from kscc_traffic import build_flows, decode, load_rules, read_frames
from kscc_traffic.analyze import analyze_packets, server_port_fn
from kscc_traffic.errors import CaptureError

RULES = load_rules()
SERVER_PORT = server_port_fn(RULES)
FUZZ_EXAMPLES = int(os.environ.get("KSCC_FUZZ_EXAMPLES", "60"))
SAMPLES = sorted((ROOT / "samples" / "captures").rglob("*.pcap*"))
SAMPLES = [p for p in SAMPLES if p.suffix in (".pcap", ".pcapng")]

# --- raw packet building (fast, no scapy) ------------------------------------------------------

def ipv4(src: int, dst: int, proto: int, payload: bytes, ident: int) -> bytes:
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, 0x4000, 64, proto, 0,
                      struct.pack("!I", src), struct.pack("!I", dst))
    hdr = hdr[:10] + struct.pack("!H", inet_checksum(hdr)) + hdr[12:]
    return hdr + payload


def tcp(sport: int, dport: int, seq: int, ack: int, flags: int, data: bytes = b"") -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + data


def udp(sport: int, dport: int, data: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def pcap(records: list[tuple[int, bytes]], linktype: int) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, linktype)]  # ns pcap
    for ts_ns, data in records:
        out.append(struct.pack("<IIII", ts_ns // 10**9, ts_ns % 10**9, len(data), len(data)) + data)
    return b"".join(out)


def link(ip: bytes, linktype: int) -> bytes:
    if linktype == 1:  # Ethernet: dst, src, type
        return b"\x02\0\0\0\0\x01" + b"\x02\0\0\0\0\x10" + b"\x08\x00" + ip
    if linktype == 276:  # SLL2: protocol, reserved, ifindex, hatype, pkttype, addr len, addr(8)
        return struct.pack("!HHIHBB8s", 0x0800, 0, 1, 1, 0, 6, b"\x02\0\0\0\0\x10\0\0") + ip
    return ip  # 101 raw IP


HOSTS = [0xC000020A, 0xC000020B, 0xCB00710A, 0xCB00710D]  # 192.0.2.10/11, 203.0.113.10/13
PORTS = [23101, 27201, 1443, 443, 53, 15000, 40000, 40001, 50000]


@st.composite
def traffic(draw):
    """A list of (ts_ns, IPv4 bytes) with few distinct timestamps (so many ties)."""
    n = draw(st.integers(1, 40))
    recs = []
    for i in range(n):
        src, dst = draw(st.sampled_from(HOSTS)), draw(st.sampled_from(HOSTS))
        sp, dp = draw(st.sampled_from(PORTS)), draw(st.sampled_from(PORTS))
        ts = 1_700_000_000 * 10**9 + draw(st.integers(0, 5)) * 1_000_000
        if draw(st.booleans()):
            flags = draw(st.sampled_from([0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14]))
            data = b"d" * draw(st.integers(0, 30)) if flags & 0x08 else b""
            seg = tcp(sp, dp, draw(st.integers(0, 2**32 - 1)), draw(st.integers(0, 2**32 - 1)), flags, data)
            recs.append((ts, ipv4(src, dst, 6, seg, i + 1)))
        else:
            recs.append((ts, ipv4(src, dst, 17, udp(sp, dp, b"u" * draw(st.integers(0, 30))), i + 1)))
    return recs


def _flows(recs, linktype=1):
    packets = decode(read_frames(pcap([(t, link(ip, linktype)) for t, ip in recs], linktype)))
    return packets, build_flows(packets, SERVER_PORT)


KEY = ["orig_h", "orig_p", "resp_h", "resp_p", "proto", "orig_pkts", "orig_bytes", "resp_pkts", "resp_bytes",
       "conn_state", "history", "ts_ns", "duration", "uid"]


def _norm(df: pd.DataFrame) -> pd.DataFrame:
    return df[KEY].sort_values(KEY).reset_index(drop=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traffic())
def test_packets_and_bytes_are_conserved(recs):
    packets, ft = _flows(recs)
    f = ft.flows
    assert int(f.orig_pkts.sum() + f.resp_pkts.sum()) + ft.duplicates == len(packets) == len(recs)
    ip_bytes = sum(len(ip) for _, ip in recs)
    dup_bytes = int(packets["ip_len"][(ft.pkt_flow >= 0) == False].sum())  # noqa: E712 (dropped rows)
    assert int(f.orig_ip_bytes.sum() + f.resp_ip_bytes.sum()) + dup_bytes == ip_bytes


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traffic(), st.randoms(use_true_random=False))
def test_shuffling_simultaneous_packets_changes_nothing(recs, rnd):
    shuffled = sorted(recs, key=lambda r: (r[0], rnd.random()))
    _, a = _flows(sorted(recs, key=lambda r: r[0]))
    _, b = _flows(shuffled)
    pd.testing.assert_frame_equal(_norm(a.flows), _norm(b.flows))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traffic())
def test_ethernet_sll2_and_raw_ip_give_the_same_flows(recs):
    tables = [_norm(_flows(recs, lt)[1].flows) for lt in (1, 276, 101)]
    pd.testing.assert_frame_equal(tables[0], tables[1])
    pd.testing.assert_frame_equal(tables[0], tables[2])


# --- fuzzing the whole analysis -----------------------------------------------------------------

class Hang(Exception):
    pass


@contextmanager
def time_limit(seconds: int):
    def boom(signum, frame):
        raise Hang(f"analysis took more than {seconds} s")
    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def mutate(data: bytes, how: str, rnd: random.Random, other: bytes) -> bytes:
    b = bytearray(data)
    if how == "flip":
        for _ in range(rnd.randint(1, 20)):
            i = rnd.randrange(len(b))
            b[i] ^= 1 << rnd.randrange(8)
    elif how == "cut":
        b = b[:rnd.randrange(len(b))]
    elif how == "splice":
        i, j = rnd.randrange(len(b)), rnd.randrange(len(other))
        b = b[:i] + other[j:j + rnd.randint(1, 4000)] + b[i:]
    elif how == "bytes":
        i = rnd.randrange(len(b))
        b[i:i + 4] = rnd.choice([b"\xff\xff\xff\xff", b"\0\0\0\0", b"\x7f\xff\xff\xff", b"\0\0\x01\0"])
    return bytes(b)


@pytest.mark.skipif(not SAMPLES, reason="samples/captures missing")
@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(SAMPLES), st.sampled_from(["flip", "cut", "splice", "bytes"]),
       st.randoms(use_true_random=False))
def test_mutated_captures_never_crash_hang_or_balloon(sample: Path, how, rnd):
    data = mutate(sample.read_bytes(), how, rnd, SAMPLES[rnd.randrange(len(SAMPLES))].read_bytes())
    tracemalloc.start()
    try:
        with time_limit(20):
            try:
                frames = read_frames(data)
            except CaptureError:
                return  # the header itself is damaged: a clean one-line error, by design
            flows, _ = analyze_packets(decode(frames), RULES, sample.name)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert set(flows.verdict) <= {"ok", "blocked", "unexpected", "unclassified"}
