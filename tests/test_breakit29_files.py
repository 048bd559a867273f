"""Break-it 29, inputs modelled on public bug reports (scapy, dpkt, Zeek, Wireshark/libpcap):
what tshark's conversations (and Zeek's conn.log) show vs our flows.

- Ethertype 0x8870 ("jumbo frame" LLC, IEEE 802.3 draft; Wireshark's ``ETHERTYPE_JUMBO_LLC``,
  the ethertype scapy gives an ``Ether()/LLC()`` frame): an LLC/SNAP header follows in place of
  an 802.3 length field. Wireshark reads the IP packet inside; we counted every such frame as
  not IP ("no IP packet among its frames") and lost the connection.
- An IPv6 packet behind ethertype 0x0800: Wireshark's "ip" dissector and Zeek's IP analyzer
  read the version from the packet; we counted it as malformed.
- A pcapng IDB that gives ``if_tsresol`` (or ``if_tsoffset``, ``if_fcslen``) twice (the spec
  allows each once): Wireshark keeps the first; we kept the last, so a file whose first
  resolution is milliseconds and a stray second one nanoseconds put every packet in 1970.

Captures are built here with scapy and struct (addresses from the documentation ranges).
"""
from __future__ import annotations

import shutil
import struct

import pytest

pytest.importorskip("scapy")

from scapy.all import IP, TCP, Ether, Raw  # noqa: E402

import kscc_traffic  # noqa: E402
from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.capture.files import read_frames  # noqa: E402
from decodecheck import decoded, write  # noqa: E402

RULES = kscc_traffic.load_rules()
TSHARK = shutil.which("tshark")
C, S = "192.0.2.10", "203.0.113.10"
MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}






def handshake() -> list:
    """SYN, SYN-ACK, ACK, 5 bytes of data from the client: IP packets, no link layer."""
    return [IP(src=C, dst=S) / TCP(sport=50000, dport=13000, flags="S", seq=100),
            IP(src=S, dst=C) / TCP(sport=13000, dport=50000, flags="SA", seq=500, ack=101),
            IP(src=C, dst=S) / TCP(sport=50000, dport=13000, flags="A", seq=101, ack=501),
            IP(src=C, dst=S) / TCP(sport=50000, dport=13000, flags="PA", seq=101, ack=501)
            / Raw(b"hello")]


# ---------------------------------------------------------------------------- 0x8870 LLC
def jumbo_llc(ip_pkt, oui: bytes = b"\x00\x00\x00", ethertype: int = 0x0800) -> bytes:
    return (bytes(Ether(type=0x8870, **MACS))
            + b"\xaa\xaa\x03" + oui + struct.pack("!H", ethertype) + bytes(ip_pkt))


def test_jumbo_llc_ethertype_carries_ip(tmp_path):
    path = write(tmp_path, "jumbo_llc.pcap", [jumbo_llc(p) for p in handshake()])
    p = decoded(path)
    assert len(p) == 4
    a = analyze_file(path, RULES)
    f = a.flows
    assert len(f) == 1
    r = f.iloc[0]
    assert (r["orig_h"], r["orig_p"], r["resp_h"], r["resp_p"]) == (C, 50000, S, 13000)
    assert (r["orig_pkts"], r["resp_pkts"], r["orig_bytes"], r["history"]) == (3, 1, 5, "ShAD")
    assert not [w for st in a.stats.values() for w in st.warnings if "no IP packet" in w]


def test_jumbo_llc_not_snap_is_not_ip(tmp_path):
    """An 0x8870 frame of another LLC (STP's 42 42 03) stays a non-IP frame, as after an
    802.3 length field."""
    stp = bytes(Ether(type=0x8870, **MACS)) + b"\x42\x42\x03" + b"\x00" * 35
    path = write(tmp_path, "jumbo_stp.pcap", [stp, jumbo_llc(handshake()[0])])
    assert len(decoded(path)) == 1
    a = analyze_file(path, RULES)
    assert len(a.flows) == 1 and a.flows.iloc[0]["orig_pkts"] == 1


# ---------------------------------------------------------------------------- IPv6 under 0x0800
def test_ipv6_packet_under_the_ipv4_ethertype_is_read_by_its_version(tmp_path):
    """Wireshark's "ip" dissector and Zeek's IP analyzer both take the version from the
    packet's first nibble, so an IPv6 packet behind ethertype 0x0800 (a writer that fills in
    the wrong type) is read; we counted it as malformed and lost the connection. The reverse
    (IPv4 behind 0x86DD) Wireshark does not read: it stays malformed here too."""
    from scapy.layers.inet6 import IPv6
    c6, s6 = "2001:db8:1::10", "2001:db8:2::10"
    pk = [IPv6(src=c6, dst=s6) / TCP(sport=50001, dport=13000, flags="S", seq=100),
          IPv6(src=s6, dst=c6) / TCP(sport=13000, dport=50001, flags="SA", seq=500, ack=101)]
    frames = [bytes(Ether(type=0x0800, **MACS) / p) for p in pk]
    path = write(tmp_path, "v6_as_v4.pcap", frames)
    assert len(decoded(path)) == 2
    a = analyze_file(path, RULES)
    assert len(a.flows) == 1
    r = a.flows.iloc[0]
    assert (r["orig_h"], r["resp_h"], r["orig_pkts"], r["resp_pkts"], r["conn_state"]) == \
        (c6, s6, 1, 1, "S1")
    assert not [w for st in a.stats.values() for w in st.warnings if "malformed" in w]
    v4 = [bytes(Ether(type=0x86DD, **MACS) / p) for p in handshake()[:2]]
    path = write(tmp_path, "v4_as_v6.pcap", v4)
    assert len(decoded(path)) == 0
    warn = [w for st in analyze_file(path, RULES).stats.values() for w in st.warnings]
    assert [w for w in warn if "2 frames too short or inconsistent to decode (malformed)" in w], warn


# ---------------------------------------------------------------------------- pcapng IDB options
def _block(btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<II", btype, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))


def _opt(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + b"\0" * (-len(value) % 4)


def _pcapng(idb_options: bytes, frames: list[bytes], ts: list[int]) -> bytes:
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = _block(1, struct.pack("<HHI", 1, 0, 0) + idb_options + struct.pack("<HH", 0, 0))
    epbs = b"".join(_block(6, struct.pack("<IIIII", 0, t >> 32, t & 0xFFFFFFFF, len(f), len(f)) + f)
                    for f, t in zip(frames, ts))
    return shb + idb + epbs


@pytest.mark.parametrize("options, ts, first_ns", [
    # if_tsresol 10^-3, then 10^-9: milliseconds, as the first says
    (_opt(9, b"\x03") + _opt(9, b"\x09"), [1_700_000_000_000, 1_700_000_000_250],
     1_700_000_000_000_000_000),
    # if_tsoffset 100 s, then 5000 s: 100 s added
    (_opt(14, struct.pack("<q", 100)) + _opt(14, struct.pack("<q", 5000)),
     [1_700_000_000_000_000, 1_700_000_000_250_000], 1_700_000_100_000_000_000),
    # an if_tsresol too short to hold a value is no first one: the next counts
    (_opt(9, b"") + _opt(9, b"\x03"), [1_700_000_000_000, 1_700_000_000_250],
     1_700_000_000_000_000_000),
], ids=["tsresol", "tsoffset", "empty-tsresol-then-one"])
def test_idb_option_given_twice_the_first_counts(tmp_path, options, ts, first_ns):
    frames = [bytes(Ether(**MACS) / p) for p in handshake()[:2]]
    path = tmp_path / "twice.pcapng"
    path.write_bytes(_pcapng(options, frames, ts))
    fr = read_frames(path)
    assert fr.ts_ns.tolist() == [first_ns, first_ns + 250_000_000]
    f = analyze_file(path, RULES).flows
    assert len(f) == 1 and f.iloc[0]["ts_ns"] == first_ns
    assert f.iloc[0]["duration"] == pytest.approx(0.25)


# ---------------------------------------------------------------------------- all blocks malformed
def test_only_malformed_packet_blocks_are_not_called_an_empty_capture(tmp_path):
    """Simple Packet Blocks whose original length claims more than the block holds (no IDB
    snaplen to explain it; tshark: "total block length 68 of an SPB is too small for 84 bytes
    of packet data"): each is skipped with a count. The capture then has no packet, but it
    is not "no packets in the capture ... a capture filter that matched nothing" (that hint
    contradicted the line before it)."""
    frames = [bytes(Ether(**MACS) / p) for p in handshake()]
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = _block(1, struct.pack("<HHI", 1, 0, 0))
    spbs = b"".join(_block(3, struct.pack("<I", len(f)) + f[:50]) for f in frames)
    path = tmp_path / "spb_cut.pcapng"
    path.write_bytes(shb + idb + spbs)
    a = analyze_file(path, RULES)
    warn = [w for st in a.stats.values() for w in st.warnings]
    assert [w for w in warn if ": 4 malformed packet blocks (captured length beyond the block" in w], warn
    assert not [w for w in warn if "no packets in the capture" in w], warn
    assert len(a.flows) == 0
