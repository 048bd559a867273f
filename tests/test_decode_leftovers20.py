"""Decoder leftovers of break-it 15 (F11), each end to end with both engines where tshark is
installed, and the fast path held equal to the slow path:

- an Ethernet frame carried directly in IPv6 (IP protocol 143, SRv6 End.DX2/End.DT2), after a
  Segment Routing Header or without one, is a tunnel: the inner packet with the inner frame's
  VLAN and broadcast destination, counted in the tunnel warning;
- VXLAN on Linux's default port 8472 is read as VXLAN only when it plainly is (flags 0x08,
  reserved bytes zero, an IPv4/IPv6 header that fits inside): other datagrams there stay UDP;
- a pcap record whose original length is 0xFFFFFFFF is clamped, not counted as cut;
- IPsec ESP packets (protocol 50) are counted in one warning line.
"""
from __future__ import annotations

import shutil
import struct

import numpy as np
import pytest

pytest.importorskip("scapy")

from scapy.all import IP, TCP, UDP, Dot1Q, Ether, IPv6, Raw  # noqa: E402
from scapy.layers.inet6 import IPv6ExtHdrSegmentRouting  # noqa: E402
from scapy.layers.ipsec import ESP  # noqa: E402
from scapy.layers.vxlan import VXLAN  # noqa: E402

import kscc_traffic  # noqa: E402
from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.capture.decode import decode  # noqa: E402
from kscc_traffic.capture.files import read_frames  # noqa: E402
from kscc_traffic.capture.packets import PACKET_COLUMNS  # noqa: E402
from kscc_traffic.chunked import ChunkedAnalysis  # noqa: E402
from pcapbuild import pcap_bytes, tcp_session  # noqa: E402
from test_decode_more_encaps import client_hello, server_hello  # noqa: E402

RULES = kscc_traffic.load_rules()
#: a TLS 1.2 handshake both sides ended with ChangeCipherSpec (established)
CCS = b"\x14\x03\x03\x00\x01\x01"
CH, SH = client_hello("eu1.ksc.kaspersky.com") + CCS, server_hello() + CCS
TSHARK = shutil.which("tshark")
T0 = 1_764_500_000.0
AGENT, SERVER = "192.0.2.10", "203.0.113.10"
OUTER = ("198.51.100.1", "198.51.100.2")
OUTER6 = ("2001:db8:a::1", "2001:db8:b::1")
NEAR, FAR = "02:00:00:00:01:01", "02:00:00:00:01:02"
FLOW = ["proto", "orig_h", "orig_p", "resp_h", "resp_p", "orig_pkts", "resp_pkts", "orig_bytes",
        "resp_bytes", "orig_ip_bytes", "resp_ip_bytes", "conn_state", "vlan", "cast", "purpose",
        "verdict"]


def _session():
    """(ts, IPv4/TCP) of a whole agent connection (a TLS 1.2 handshake for
    eu1.ksc.kaspersky.com), both sides closed: 8 packets, 5 from the agent."""
    return [(t, p[IP]) for t, p in tcp_session((AGENT, 50000), (SERVER, 23101), t0=T0,
                                                c_data=CH, s_data=SH)]


def _up(pkt) -> bool:
    return pkt[IP].src == AGENT


def _write(tmp_path, name, recs):
    p = tmp_path / name
    p.write_bytes(pcap_bytes(recs))
    return p


def _decoded(path):
    """Packets of ``path``; the fast path gives what the slow path gives, column for column."""
    fr = read_frames(path)
    p, q = decode(fr), decode(fr, fast=False)
    for k in PACKET_COLUMNS:
        np.testing.assert_array_equal(p.cols[k], q.cols[k], err_msg=k)
    assert bytes(p.buf) == bytes(q.buf)
    assert (p.stats.non_ip, p.stats.malformed, p.stats.warnings) == \
        (q.stats.non_ip, q.stats.malformed, q.stats.warnings)
    return p


def _flows(path, engine="builtin"):
    a = analyze_file(path, RULES, engine=engine)
    return a.flows.sort_values(["orig_h", "orig_p"]).reset_index(drop=True), a.warnings


def _both(path):
    """Flows and warnings of the builtin engine; the tshark engine's flows are the same."""
    f, w = _flows(path)
    if TSHARK:
        t, _ = _flows(path, "tshark")
        assert t[FLOW].to_dict("records") == f[FLOW].to_dict("records")
    return f, w


def _agent_ok(f, vlan=0, cast="unicast"):
    assert len(f) == 1
    r = f.iloc[0]
    assert (r.proto, r.orig_h, r.orig_p, r.resp_h, r.resp_p) == ("tcp", AGENT, 50000, SERVER, 23101)
    assert (r.orig_pkts, r.resp_pkts, r.orig_bytes, r.resp_bytes) == (5, 3, len(CH), len(SH))
    assert r.sni == "eu1.ksc.kaspersky.com"
    assert (r.conn_state, r.purpose, r.verdict, r.vlan, r.cast) == \
        ("SF", "agent_connection", "ok", vlan, cast)


# ------------------------------------------------------------------ clamped original length
def test_clamped_original_length_is_not_a_snaplen_cut(tmp_path):
    """A record whose original length field is 0xFFFFFFFF: one warning that it was clamped, and
    no "cut by the snaplen" line (the record was whole), with either engine."""
    recs = [(t, Ether(src=NEAR, dst=FAR) / p) for t, p in _session()]
    data = pcap_bytes(recs)
    # the 4th record's orig_len (its header: 24-byte file header + the records before it)
    at = 24 + sum(16 + len(bytes(p)) for _, p in recs[:3]) + 12
    data = data[:at] + struct.pack("<I", 0xFFFFFFFF) + data[at + 4:]
    path = tmp_path / "wl.pcap"
    path.write_bytes(data)
    fr = read_frames(path)
    assert (fr.wirelen[3], fr.stats.cut_frames) == (2**31 - 1, 0)
    for engine in ("builtin", "tshark") if TSHARK else ("builtin",):
        f, w = _flows(path, engine)
        _agent_ok(f)
        assert w == ["wl.pcap: 1 record with an original length above 2147483647 (clamped to it)"], \
            (engine, w)


def test_a_real_snaplen_cut_is_still_counted(tmp_path):
    recs = [(t, Ether(src=NEAR, dst=FAR) / p) for t, p in _session()]
    data = pcap_bytes(recs)
    at = 24 + sum(16 + len(bytes(p)) for _, p in recs[:3]) + 12
    data = data[:at] + struct.pack("<I", 9000) + data[at + 4:]     # "9000 bytes on the wire"
    path = tmp_path / "cut.pcap"
    path.write_bytes(data)
    assert read_frames(path).stats.cut_frames == 1
    _, w = _flows(path)
    assert any("1 of the 8 frames was cut by the snaplen" in x for x in w)
