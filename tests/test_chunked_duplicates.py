"""Duplicated frames read in chunks (kscc_traffic.chunked): a capture where (almost) every frame
is written twice or more (Windows pktmon, one copy per network layer; some copies differing only
in the TCP checksum, taken before the NIC's checksum offload) must give, at every chunk size,
exactly the whole-file flows and the same number of duplicates.

A frame is a copy of the packet before it in its flow and direction (flows.build_flows; with
a packet of the other side between them, only within DUP_WINDOW_NOID_NS). Read in chunks, the
packets of open flows are carried from batch to batch summarised (chunked._summarise: many
dropped, payloads trimmed), and the copies of one packet, or the packets of one timestamp, can
be on both sides of a chunk boundary."""
from __future__ import annotations

import random
import struct

import numpy as np
import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from chunkcmp import assert_same, row, whole, write
from kscc_traffic.chunked import HOLD_FRAMES, _time_cut

C, S = "198.18.0.1", "203.0.113.5"
C6, S6 = "2001:db8::1", "2001:db8::5"
CM, SM = "02:00:00:00:00:10", "02:00:00:00:00:01"


def _frame(from_c, flags, seq, ack, data=b"", ipid=None, hosts=(C, S), ports=(40001, 443)):
    """Ethernet frame bytes of one TCP segment (IPv6 when the hosts are; ``ipid``: IPv4 id)."""
    (c, s), (cp, sp) = hosts, ports
    src, dst = (c, s) if from_c else (s, c)
    ip = IPv6(src=src, dst=dst) if ":" in c else IP(src=src, dst=dst, id=ipid or 0, flags="DF")
    p = Ether(src=CM if from_c else SM, dst=SM if from_c else CM) / ip / TCP(
        sport=cp if from_c else sp, dport=sp if from_c else cp, flags=flags, seq=seq, ack=ack, window=8192)
    return bytes(p / Raw(data) if data else p)


def _other_sum(b):
    """``b`` with another TCP checksum (a copy taken before the checksum offload)."""
    off = 14 + (40 if b[12:14] == b"\x86\xdd" else 20) + 16
    v = struct.unpack_from("!H", b, off)[0]
    return b[:off] + struct.pack("!H", (v ^ 0x5A5A) or 1) + b[off + 2:]


def _pktmon_like():
    """The shape of a pktmon capture (breakit13 s3): a TLS-sized exchange, the SYN-ACK (IP id 0)
    four times, copies next to each other and copies with an ACK of the other side between
    them, copies at one timestamp, a copy with another checksum, a RST (IP id 0) twice."""
    t, recs = 1000.0, []
    cs, ss = 1000, 90000

    def put(dt_us, b, copies=()):
        nonlocal t
        t += dt_us / 1e6
        recs.append((t, b))
        for d_us, cb in copies:
            recs.append((t + d_us / 1e6, cb))

    put(0, _frame(True, "S", cs, 0, ipid=0x100))
    cs += 1
    sa = _frame(False, "SA", ss, cs)
    put(90, sa, [(3, sa), (4, sa), (4, sa)])
    ss += 1
    put(14, _frame(True, "A", cs, ss, ipid=0x101))
    put(22, _frame(True, "A", cs, ss, ipid=0x102))
    hello = b"\x16\x03\x01" + b"h" * 514
    put(1778, _frame(True, "PA", cs, ss, hello, ipid=0x103))
    cs += len(hello)
    a1 = _frame(False, "A", ss, cs, ipid=0x200)
    put(40, a1, [(3, a1)])
    reply = b"\x16\x03\x03" + b"s" * 2160
    r1 = _frame(False, "PA", ss, cs, reply, ipid=0x201)
    put(10856, r1)
    put(11, _frame(True, "A", cs, ss + len(reply), ipid=0x104))
    recs.append((t + 1e-6, r1))                     # the copy after the other side's ACK
    recs.sort(key=lambda r: r[0])
    ss += len(reply)
    for k in range(30):                             # more than streams.MAX_SEGMENTS each way
        q = bytes([65 + k % 26]) * (29 + k)
        qf = _frame(True, "PA", cs, ss, q, ipid=0x110 + k)
        put(500, qf, [(1, _other_sum(qf))] if k % 3 == 0 else [])
        cs += len(q)
        a = _frame(False, "A", ss, cs, ipid=0x210 + 2 * k)
        put(8, a, [(0, a)])                         # a copy of the same timestamp
        d = bytes([97 + k % 26]) * (33 + 7 * k)
        df = _frame(False, "PA", ss, cs, d, ipid=0x211 + 2 * k)
        put(30, df)
        ss += len(d)
        put(2, _frame(True, "A", cs, ss, ipid=0x140 + k))
        recs.append((t + 1e-6, df))                 # the copy after the other side's ACK
        if k % 4 == 1:
            recs.append((t + 2e-6, df))             # and one more, next to it
    put(45, _frame(True, "FA", cs, ss, ipid=0x180))
    cs += 1
    a = _frame(False, "A", ss, cs, ipid=0x280)
    put(6, a, [(1, a)])
    late = _frame(False, "PA", ss, cs, b"x" * 24, ipid=0x281)
    put(2744, late)
    rst = _frame(True, "R", cs, 0)
    put(9, rst)
    recs.append((t + 3e-6, late))
    recs.append((t + 5e-6, rst))
    recs.sort(key=lambda r: r[0])
    return recs


def test_pktmon_copies_every_chunk_size(tmp_path):
    p = write(tmp_path, _pktmon_like(), "pktmon.pcap")
    size = p.stat().st_size
    sizes = [64, 200] + list(range(700, size, 1433)) + [size - 64, size]
    w = assert_same(p, sizes)      # (and the duplicates and warnings of each equal the whole's)
    f = row(w, resp_p=443)
    # 67 client packets and 65 server packets: a copy is one of the packet before it in its
    # direction, also when the other side's packet came between them (the RST's copy after the
    # server's last segment's; the reply's, the 30 data segments' and the last segment's copies
    # written after the client's ACK)
    assert (f.orig_pkts, f.resp_pkts, f.history) == (67, 65, "ShADadFR")
    assert (f.orig_ip_bytes, f.resp_ip_bytes) == (4502, 8822)
    # 10 other-checksum copies of client data (by their IP id), the SYN-ACK's 3 (id 0: same
    # checksum), 1 + 30 + 1 server ACKs' copies, 8 data segments' third copies; the RST's copy,
    # and the 32 server copies written after the client's ACK
    assert whole(p)[1].duplicates == 53 + 1 + 32


def _conversation(rng, hosts, port, t0, rounds):
    """Logical packets (ts, frame) of one TCP connection with random timing (IPv4 ids count up
    per side; the SYN-ACK and the RST without an id)."""
    ids = {True: 0x1000, False: 0x8000}
    out = []

    def pkt(t, from_c, flags, seq, ack, data=b"", noid=False):
        ids[from_c] += 1
        out.append((t, _frame(from_c, flags, seq, ack, data, None if noid else ids[from_c], hosts, (port, 443))))

    cs, ss, t = 1000, 90000, t0
    pkt(t, True, "S", cs, 0)
    cs += 1
    pkt(t + 1e-4, False, "SA", ss, cs, noid=True)
    ss += 1
    t += 1.2e-4
    pkt(t, True, "A", cs, ss)
    for r in range(rounds):
        n = rng.randint(5, 60)
        pkt(t, True, "PA", cs, ss, bytes([65 + r % 26]) * n)
        cs += n
        t += rng.choice((2e-6, 1e-5, 3e-5))
        for k in range(rng.randint(1, 3)):
            m = rng.randint(20, 300)
            pkt(t, False, "PA", ss, cs, bytes([97 + (r + k) % 26]) * m)
            ss += m
            t += rng.choice((0.0, 1e-6, 3e-6, 2e-5))
            pkt(t, True, "A", cs, ss)
            t += rng.choice((0.0, 1e-6, 1e-5))
        t += rng.choice((5e-4, 2e-3, 3e-2))
    pkt(t, True, "FA", cs, ss)
    cs += 1
    pkt(t + 1e-5, False, "A", ss, cs)
    pkt(t + 2e-3, False, "PA", ss, cs, b"late")
    pkt(t + 2.005e-3, True, "R", cs, 0, noid=True)
    return out


def _random_copies(seed, rounds):
    """An IPv4 and an IPv6 connection at once, each frame written 1 to 4 times (a third of the
    copies with another TCP checksum: IPv4 copies by their IP id, IPv6 ones not copies), a few
    written again 10 or 60 ms later; in time order (equal timestamps in file order)."""
    rng = random.Random(seed)
    lg = _conversation(rng, (C, S), 40001, 1000.0, rounds)
    lg += _conversation(rng, (C6, S6), 40002, 1000.00005, rounds)
    recs = []
    for i, (t, b) in enumerate(sorted(lg, key=lambda r: r[0])):
        recs.append((t, i, b))
        for k in range(rng.choice((0, 1, 1, 1, 2, 3))):
            d = rng.choice((0.0, 1e-6, 2e-6, 4e-6, 2e-5))
            recs.append((t + d * (k + 1), i, _other_sum(b) if rng.random() < 0.3 else b))
        if rng.random() < 0.03:
            recs.append((t + rng.choice((0.01, 0.06)), i, b))
    recs.sort(key=lambda r: (r[0], r[1]))
    return [(t, b) for t, _, b in recs]


@pytest.mark.parametrize("seed", [1, 7])
def test_random_copies_chunk_sizes(tmp_path, seed):
    p = write(tmp_path, _random_copies(seed, 14), f"copies{seed}.pcap")
    size = p.stat().st_size
    w = assert_same(p, (150, 700, 2000, 4096, 9001, size // 3, size))
    assert len(w) == 2


def test_random_copies_written_slightly_out_of_time_order(tmp_path):
    # one record in 20 swapped with the next (a record can move two places: 0.1-10 µs), so a
    # chunk's last records can be stamped after records of the next chunk
    recs = _random_copies(102, 12)
    rng = random.Random(2)
    for i in range(len(recs) - 1):
        if rng.random() < 0.05:
            recs[i], recs[i + 1] = recs[i + 1], recs[i]
    p = write(tmp_path, recs, "swapped.pcap")
    assert_same(p, (150, 500, 1234, 4096))


def test_time_cut():
    def cut(*ts, limit=HOLD_FRAMES):
        return _time_cut(np.array(ts, np.int64), limit)
    ms = 1_000_000
    assert cut() == 0
    assert cut(5) == 0                                  # all of it waits
    assert cut(0, 2 * ms, 2 * ms) == 1                  # the last timestamp's records
    assert cut(0, 2 * ms, 4 * ms) == 2
    assert cut(0, 3 * ms, 2 * ms, 4 * ms) == 1          # stamped in order from there on
    assert cut(0, 2 * ms, 2 * ms + 5, 2 * ms + 9) == 1  # the last millisecond waits
    assert cut(9 * ms, 1, 2, 3) == 0
    assert cut(9 * ms, 1, 2 * ms, 4 * ms, 4 * ms, limit=3) == 3   # no cut in order: the last run
    assert cut(1, *[2] * 10, limit=3) == 7                         # longer than limit: not held
    s = 10**9
    assert cut(0, 30 * s, 1, 2, 3 * ms) == 4            # after a step back of the clock
    assert cut(0, 1, 30 * s, 2 * ms, 3 * ms, 3 * ms + 1) == 4


def _data_then_copy(gap_us, ipid=0x300):
    """A client segment, the server's ACK 1 µs later, then the client segment again ``gap_us``
    after the first (same IP id, same checksum), then the server's answer."""
    cs, ss = 1000, 90000
    seg = _frame(True, "PA", cs, ss, b"q" * 100, ipid=ipid)
    return [(1000.0, _frame(True, "S", cs - 1, 0, ipid=1)), (1000.001, _frame(False, "SA", ss - 1, cs, ipid=2)),
            (1000.002, _frame(True, "A", cs, ss, ipid=3)),
            (1000.01, seg), (1000.01 + 1e-6, _frame(False, "A", ss, cs + 100, ipid=4)),
            (1000.01 + gap_us / 1e6, seg),
            (1000.05, _frame(False, "PA", ss, cs + 100, b"r" * 50, ipid=5))]


def test_a_copy_after_the_other_sides_packet_counts_once_a_retransmission_twice(tmp_path):
    """pktmon writes a packet at each component it crosses: its copy can follow the other side's
    answer by microseconds (a copy: counted once). Written 5 ms later with an ACK between them,
    the same bytes are a retransmission (a stack that keeps the IP id, as RFC 6864 allows for
    atomic datagrams): counted twice, as before."""
    p = write(tmp_path, _data_then_copy(3), "copy.pcap")
    w, a = whole(p)
    f = row(w, resp_p=443)
    assert (f.orig_pkts, f.orig_bytes, a.duplicates, f.history) == (3, 100, 1, "ShADad")
    assert_same(p, [120, 300, 500])
    p = write(tmp_path, _data_then_copy(5000), "retx.pcap")
    w, a = whole(p)
    f = row(w, resp_p=443)
    # (a retransmission: Zeek's T after the server's ACK, session 61)
    assert (f.orig_pkts, f.orig_bytes, a.duplicates, f.history) == (4, 100, 0, "ShADaTd")
