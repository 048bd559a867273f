"""ICMP errors whose quote the capture cut inside the quoted IP header (a small snaplen: 60 bytes
keep 18 of an IPv4 quote behind Ethernet, 96 keep 34 of an IPv6 quote): matched by the quote's
source, protocol and the destination bytes kept (unreachable.attach, icmp.cut_quote), whole
and in chunks; before, the error matched nothing and the blocked SYN read as no answer (S0)."""
from __future__ import annotations

import struct

import pytest
from scapy.layers.inet import ICMP, IP, TCP
from scapy.layers.inet6 import ICMPv6DestUnreach, IPv6

from chunkcmp import assert_same
from kscc_traffic.protocols.icmp import cut_quote
from kscc_traffic.unreachable import HEADER_CUT
from pcapbuild import eth

CLIENT, SERVER, ROUTER = "203.0.113.10", "198.51.100.20", "192.0.2.1"
CLIENT6, SERVER6, ROUTER6 = "2001:db8:1::10", "2001:db8:2::20", "2001:db8:1::1"


def _cut_pcap(path, frames, snaplen):
    """``frames`` ([(ts s, frame bytes)]) as a pcap keeping ``snaplen`` bytes of each (caplen
    below wirelen where cut), the header's snaplen that value."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1)]
    for ts, data in frames:
        us = round(ts * 1_000_000)
        out.append(struct.pack("<IIII", us // 1_000_000, us % 1_000_000, min(len(data), snaplen), len(data))
                   + data[:snaplen])
    path.write_bytes(b"".join(out))
    return path


def _v4(tmp_path, snaplen, servers=(SERVER,)):
    frames = []
    for k in range(3):
        for j, server in enumerate(servers):
            syn = IP(src=CLIENT, dst=server, id=10 + k) / TCP(sport=50000 + j, dport=23100, flags="S", seq=1000)
            frames.append((100.0 + k + j * 0.001, bytes(eth(syn))))
            err = IP(src=ROUTER, dst=CLIENT) / ICMP(type=3, code=13) / bytes(syn)[:28]
            frames.append((100.01 + k + j * 0.001, bytes(eth(err))))
    return _cut_pcap(tmp_path / f"v4_{snaplen}_{len(servers)}.pcap", sorted(frames, key=lambda f: f[0]), snaplen)


def _v6(tmp_path, snaplen):
    frames = []
    for k in range(3):
        syn = IPv6(src=CLIENT6, dst=SERVER6) / TCP(sport=50000, dport=23100, flags="S", seq=1000)
        frames.append((100.0 + k, bytes(eth(syn))))
        err = IPv6(src=ROUTER6, dst=CLIENT6) / ICMPv6DestUnreach(code=1) / bytes(syn)[:48]
        frames.append((100.01 + k, bytes(eth(err))))
    return _cut_pcap(tmp_path / f"v6_{snaplen}.pcap", frames, snaplen)


def test_cut_quote_reads_the_source_and_the_destination_bytes_kept():
    syn = bytes(IP(src=CLIENT, dst=SERVER, len=60) / TCP(dport=23100))
    assert cut_quote(syn[:18], 4) == (CLIENT, 6, 60, bytes([198, 51]))
    assert cut_quote(syn[:16], 4) == (CLIENT, 6, 60, b"")
    assert cut_quote(syn[:15], 4) is None           # the source address itself cut
    assert cut_quote(syn[:20], 4) is None           # the header whole: quoted_datagram reads it
    assert cut_quote(syn[:18], 6) is None           # another version
    syn6 = bytes(IPv6(src=CLIENT6, dst=SERVER6) / TCP(dport=23100))
    src, proto, length, prefix = cut_quote(syn6[:34], 6)
    assert (src, proto, length, prefix) == (CLIENT6, 6, 60, bytes.fromhex("20010db8000200000000"))


@pytest.mark.parametrize("snaplen", [60, 61])
def test_ipv4_error_cut_in_the_quoted_header_blocks_the_flow(tmp_path, snaplen):
    w = assert_same(_v4(tmp_path, snaplen), [200, 300])
    tcp = w[w["proto"] == "tcp"]
    assert len(tcp) == 1 and len(w) == 1, w[["proto", "orig_h", "resp_h"]]
    r = tcp.iloc[0]
    kept = snaplen - 14 - 20 - 8 - 16
    assert (r["conn_state"], r["verdict"], r["reason"]) == ("S0", "blocked", "icmp_unreachable")
    assert r["icmp_unreachable"] == ("administratively prohibited (3/13) from 192.0.2.1"
                                     + HEADER_CUT.format(kept=kept, size=4, proto="TCP"))


def test_ipv6_error_cut_in_the_quoted_header_blocks_the_flow(tmp_path):
    w = assert_same(_v6(tmp_path, 96), [200, 300])
    assert len(w) == 1
    r = w.iloc[0]
    assert (r["proto"], r["verdict"], r["reason"]) == ("tcp", "blocked", "icmp_unreachable")
    assert "10 of the destination address's 16 bytes kept" in r["icmp_unreachable"]


def test_two_servers_the_bytes_kept_cannot_tell_apart_stay_unmatched(tmp_path):
    """198.51.100.20 and 198.51.100.21 share the 2 bytes a 60-byte snaplen keeps: the error could
    be either's, so neither gets it (no answer, as before), and the errors stay ICMP flows."""
    w = assert_same(_v4(tmp_path, 60, servers=(SERVER, "198.51.100.21")), [200])
    tcp = w[w["proto"] == "tcp"]
    assert len(tcp) == 2
    assert set(tcp["reason"]) == {"no_answer"} and set(tcp["icmp_unreachable"]) == {""}
    assert (w["proto"] == "icmp").sum() >= 1


def test_servers_the_bytes_kept_tell_apart_each_get_theirs(tmp_path):
    """At snaplen 61, 3 of 4 destination bytes are kept: 198.51.100.20 and 198.51.101.20 differ
    in them, each SYN is matched to its own error."""
    w = assert_same(_v4(tmp_path, 61, servers=(SERVER, "198.51.101.20")), [200])
    tcp = w[w["proto"] == "tcp"]
    assert len(tcp) == 2 and set(tcp["reason"]) == {"icmp_unreachable"}, tcp[["resp_h", "reason"]]


def test_a_live_session_attaches_it_too(tmp_path):
    """The live session (packets fed two frames at a time, as test_capture_end does) gives the
    flow the same verdict and text as reading the file."""
    import numpy as np
    from kscc_traffic.capture.decode import decode
    from kscc_traffic.capture.files import read_frames
    from kscc_traffic.capture.frames import Frames
    from kscc_traffic.live.session import LiveSession
    from chunkcmp import RULES

    path = _v4(tmp_path, 60)
    s = LiveSession(RULES, name=path.name)
    fr = read_frames(path)
    for s0 in range(0, len(fr), 2):
        idx = np.arange(s0, min(s0 + 2, len(fr)))
        p = decode(Frames(fr.buf, fr.ts_ns[idx], fr.linktype[idx], fr.offset[idx], fr.caplen[idx], fr.wirelen[idx]))
        p.cols["frame"] = idx[p.cols["frame"]]
        s.ingest(p)
        s.tick(int(fr.ts_ns[idx[-1]]))
    out = s.final(None)
    assert len(out) == 1
    r = out.iloc[0]
    assert (r["proto"], r["verdict"], r["reason"]) == ("tcp", "blocked", "icmp_unreachable")
    assert r["icmp_unreachable"].endswith(HEADER_CUT.format(kept=2, size=4, proto="TCP"))
