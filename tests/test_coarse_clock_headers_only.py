"""A coarse clock (10 ms, 15.6 ms, 1 s ticks: imported captures, Windows' timer) stamps a whole TLS
exchange with one time; captured headers-only (pktmon's 128 bytes, ``tcpdump -s 96``) its
handshake is judged from the TCP packets (``inspect._went_on``). Packets of one timestamp were
put in the client's-first order, which put the client's next flight before the server's answer it
acknowledges: a working connection to a distribution point read as ``blocked/tls_failed`` "no next
flight from the client after the server's answer" (break-it 18 F2). Both the flow order
(``flows._exchange_progress``) and the headers-only judgement now read who answered whom from the
acknowledgement numbers."""
from __future__ import annotations

import random
import struct

import pytest
from scapy.layers.inet import TCP

from chunkcmp import assert_same
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth, ip_of

AGENT, DP = ("192.0.2.10", 60100), ("192.0.2.20", 13000)
#: a TLS 1.3 ClientHello's, the server's flight's, the client's Finished flight's and
#: application records' sizes (the bytes themselves are cut away: only headers are captured)
CH, SFLIGHT, CFLIGHT, APP_C, APP_S = 517, 1453, 80, 634, 1460


def _records(frm: str, n: int) -> bytes:
    """``n`` bytes of TLS records as such a session sends them (the handshake's records' headers
    and first bytes right; what follows is zeros: a headers-only capture cuts it away)."""
    def rec(kind: int, body: bytes, total: int) -> bytes:
        return bytes([kind, 3, 3]) + (total - 5).to_bytes(2, "big") + body + bytes(total - 5 - len(body))
    if n == CH:         # ClientHello (record version 3.1, as clients send it)
        r = rec(0x16, b"\x01" + (n - 9).to_bytes(3, "big") + b"\x03\x03", n)
        return r[:1] + b"\x03\x01" + r[3:]
    if n == SFLIGHT:    # ServerHello, then ChangeCipherSpec and the encrypted rest
        sh = rec(0x16, b"\x02" + (118 - 9).to_bytes(3, "big") + b"\x03\x03", 118)
        return sh + bytes([0x14, 3, 3, 0, 1, 1]) + rec(0x17, b"", n - 118 - 6)
    if n == CFLIGHT:    # ChangeCipherSpec and the encrypted Finished
        return bytes([0x14, 3, 3, 0, 1, 1]) + rec(0x17, b"", n - 6)
    return rec(0x17, b"", n)        # application data


def _session():
    """(ts seconds, frame bytes) of a LAN TLS session, exact times (RTT 0.4 ms)."""
    (ch, cp), (sh, sp) = AGENT, DP
    c_seq, s_seq = 1000, 5000
    t = 1000.0
    out = []

    def send(frm, flags, n=0, dt=0.0):
        nonlocal t, c_seq, s_seq
        t += dt
        if frm == "c":
            p = eth(ip_of(ch, sh) / TCP(sport=cp, dport=sp, flags=flags, seq=c_seq,
                                        ack=s_seq if "A" in flags else 0))
        else:
            p = eth(ip_of(sh, ch) / TCP(sport=sp, dport=cp, flags=flags, seq=s_seq, ack=c_seq),
                    src=SERVER_MAC, dst=CLIENT_MAC)
        data = bytes(p) + _records(frm, n) if n else bytes(p)
        if n:   # (an IP total length that counts the payload)
            data = bytearray(data)
            struct.pack_into("!H", data, 14 + 2, len(data) - 14)
            data = bytes(data)
        out.append((t, data))
        step = n + ("S" in flags) + ("F" in flags)
        if frm == "c":
            c_seq += step
        else:
            s_seq += step

    send("c", "S")
    send("s", "SA", dt=0.0002)
    send("c", "A", dt=0.00005)
    send("c", "PA", CH, dt=0.00005)
    send("s", "PA", SFLIGHT, dt=0.0004)
    send("c", "PA", CFLIGHT, dt=0.0002)
    send("s", "A", dt=0.0002)
    send("c", "PA", APP_C, dt=0.0003)
    send("s", "PA", APP_S, dt=0.0003)
    send("c", "A", dt=0.0001)
    send("c", "FA", dt=0.002)
    send("s", "FA", dt=0.0002)
    send("c", "A", dt=0.0001)
    return out


def _pcap(path, recs, snap, tick):
    """``recs`` with times floored to ``tick`` seconds and frames cut at ``snap`` bytes (0: whole),
    as a microsecond pcap; the IP checksums are left as scapy made them (before the payload)."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snap or 65535, 1)]
    for ts, frame in recs:
        us = round(ts * 1e6)
        us -= us % round(tick * 1e6)
        cut = frame[:snap] if snap else frame
        out.append(struct.pack("<IIII", us // 1_000_000, us % 1_000_000, len(cut), len(frame)) + cut)
    path.write_bytes(b"".join(out))
    return path


@pytest.mark.parametrize("tick", [1e-6, 0.010, 0.015625, 1.0])
@pytest.mark.parametrize("snap", [0, 128, 96])
def test_coarse_clock_headers_only_handshake_is_ok(tmp_path, tick, snap):
    recs = _session()
    flows = assert_same(_pcap(tmp_path / "c.pcap", recs, snap, tick), [400])
    (f,) = flows.itertuples()
    assert (f.orig_p, f.resp_p, f.conn_state) == (AGENT[1], DP[1], "SF")
    # the order the connection had, whatever the clock
    assert f.history == "ShADdaFf"
    assert bool(f.payload_cut) == bool(snap)
    assert (f.verdict, f.reason) == ("ok", "")


@pytest.mark.parametrize("seed", range(3))
def test_coarse_clock_order_does_not_depend_on_the_file(tmp_path, seed):
    """The same records in another file order (one timestamp: a tool's choice) give the same flow
    order, hence the same history and counts. (Not yet the same headers-only judgement:
    ``inspect._went_on`` reads a direction's segments of one timestamp in file order.)"""
    recs = _session()
    base = assert_same(_pcap(tmp_path / "a.pcap", recs, 96, 1.0), [400])
    mixed = list(recs)
    random.Random(seed).shuffle(mixed)
    # (times floored to one second: every record has the same time, their order is free)
    (tmp_path / "m").mkdir()
    other = assert_same(_pcap(tmp_path / "m" / "a.pcap", mixed, 96, 1.0), [400])
    cols = ["history", "conn_state", "orig_pkts", "orig_bytes", "resp_pkts", "resp_bytes"]
    assert other[cols].to_dict("records") == base[cols].to_dict("records")
    assert base["history"].iloc[0] == "ShADdaFf"
