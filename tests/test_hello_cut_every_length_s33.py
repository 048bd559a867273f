"""A ClientHello the capture cut (its frame's captured length shorter than on the wire) at any
length of its TLS record, 1 to the record's length, whose server sent no byte: the detail says who
closed the connection and when, as for the same ClientHello captured whole, and adds how it was
judged (session 33: a ClientHello cut at 1-191 bytes said only "connection closed (RSTR) before
the server sent a byte", the whole one "the server reset the connection (RST, RSTR) 0.0 s after
the ClientHello, …"). Every cut length from 1 to 300 bytes of the record, one connection each
(the ClientHello is 192 bytes: beyond, captured whole), in one capture, whole and in chunks."""
from __future__ import annotations

import struct

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from chunkcmp import assert_same
from test_tls_batch import client_hello, ext, rec, sni_ext

NAME = "eu1.ksc.kaspersky.com"
#: a ClientHello of 192 bytes (a padding extension first, the SNI near its end)
CH = rec(22, client_hello([ext(21, bytes(99)), sni_ext([(0, NAME.encode())]), ext(43, b"\x02\x03\x04")]), 0x0301)
HEADERS = 14 + 20 + 20
CUT = "(the handshake cut by the snaplen: judged from the TCP packets)"


def _records(k: int, close: str, t: float) -> list[tuple[float, bytes, int]]:
    """(ts, frame, captured length) of a connection from port 40000 + k whose ClientHello frame
    keeps ``k`` bytes of its TLS record (all of it from 192 on), the server acknowledging it and
    sending nothing; then ``close``: 'server-rst', 'client-rst', or 'client-fin' 25 s later."""
    client, server = ("192.0.2.10", 40000 + k), ("203.0.113.10", 23101)
    seq = {"c": 1000, "s": 5000}
    out = []

    def seg(side, flags, data=b"", dt=0.01):
        nonlocal t
        src, dst = (client, server) if side == "c" else (server, client)
        other = "s" if side == "c" else "c"
        frame = bytes(Ether(src="02:00:00:00:00:10", dst="02:00:00:00:00:01") / IP(src=src[0], dst=dst[0])
                      / TCP(sport=src[1], dport=dst[1], flags=flags, seq=seq[side],
                            ack=seq[other] if "A" in flags else 0) / data)
        out.append((t, frame, min(len(frame), HEADERS + k) if data else len(frame)))
        t += dt
        seq[side] += len(data) + (1 if "S" in flags or "F" in flags else 0)
    seg("c", "S"), seg("s", "SA"), seg("c", "A"), seg("c", "PA", CH), seg("s", "A", dt=25.0 if close == "client-fin" else 0.01)
    if close == "server-rst":
        seg("s", "RA")
    elif close == "client-rst":
        seg("c", "RA")
    else:
        seg("c", "FA"), seg("s", "FA"), seg("c", "A")
    return out


def _pcap(records) -> bytes:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for ts, frame, cap in sorted(records, key=lambda r: r[0]):
        us = round(ts * 1e6)
        out.append(struct.pack("<IIII", us // 10**6, us % 10**6, cap, len(frame)) + frame[:cap])
    return b"".join(out)


WANT = {
    "server-rst": "TLS handshake aborted: the server reset the connection (RST, RSTR) 0.02 s after the ClientHello, "
                  "before the server sent a byte",
    "client-rst": "TLS handshake aborted: the client reset the connection (RST, RSTO) 0.02 s after the ClientHello, "
                  "before the server sent a byte",
    "client-fin": "ClientHello not answered: no byte from the server for 25.0 s, then the client closed",
}


@pytest.mark.parametrize("close", sorted(WANT))
def test_every_cut_length_says_who_closed_and_when(tmp_path, close):
    assert len(CH) == 192
    recs = [r for k in range(1, 301) for r in _records(k, close, 1000.0 + k * 0.5)]
    path = tmp_path / f"{close}.pcap"
    path.write_bytes(_pcap(recs))
    w = assert_same(path, [1 << 14, 1 << 16])
    assert len(w) == 300
    for k, r in zip(range(1, 301), w.itertuples()):
        assert r.orig_p == 40000 + k
        assert (r.verdict, r.reason, bool(r.payload_cut)) == ("blocked", "tls_failed", k < 192), (k, r.detail)
        assert r.detail == (WANT[close] if k >= 192 else f"{WANT[close]} {CUT}"), (k, r.detail)
        # (no SNI where the cut leaves none of the name)
        if k < CH.find(NAME.encode()) or k >= 192:
            assert r.sni == (NAME if k >= 192 else ""), (k, r.sni)
