"""Break-it 33 (files and link types nobody had tried): findings fixed.

F1. Link types Wireshark reads and the builtin decoder skipped whole ("N frames of unsupported
link type … skipped", nothing analysed): ERF (197: an Endace DAG card's records in a pcap, as
Endace probes and ``dagsnap -o x.pcap`` write them; Ethernet, PPP/Cisco HDLC over SONET, IPv4,
IPv6 records, extension headers), PPPoE sessions (51, BSD's ``pppoe`` interfaces), FDDI (10),
Token Ring (6, source-routed or not), Sun ATM (123, LLC and LANE), IP over IEEE 1394 (138), IP
over Fibre Channel (122) and Frame Relay (107, RFC 2427 NLPID/SNAP and Cisco encapsulation).
Each now gives the TLS connection
behind it, value by value, the fast path equal to the slow one and, with tshark installed, the
tshark engine equal to the builtin one.

F2. MikroTik EoIP (GRE version 1, protocol 0x6400) and EtherIP (IP protocol 97) carry Ethernet
frames: every EoIP frame was "not IP", every EtherIP packet a protocol-97 flow between the
tunnel ends; Wireshark reads the connection inside, now the builtin decoder too.

F3. A pcap record of link type ERF is timed by its ERF header, as Wireshark does (the record
header's time of some writers is wrong or whole seconds); the ERF record length is not a bound
on the frame (some writers put the packet's length there).
"""
from __future__ import annotations

import struct
import zlib

import pytest

pytest.importorskip("scapy")

from scapy.all import IP, TCP, Ether  # noqa: E402

from test_decode_more_encaps import (  # noqa: E402
    CLIENT, ETH, check_tls_flow, conversation, decoded, write)
from kscc_traffic.analyze import analyze_file  # noqa: E402
from test_decode_more_encaps import RULES  # noqa: E402

SNAP4, SNAP6 = bytes.fromhex("aaaa030000000800"), bytes.fromhex("aaaa0300000086dd")


def ether(ip: bytes, v6: bool, dst: str = ETH.dst) -> bytes:
    return bytes(Ether(src=ETH.src, dst=dst, type=0x86DD if v6 else 0x0800)) + ip


def with_fcs(frame: bytes) -> bytes:
    return frame + struct.pack("<I", zlib.crc32(frame))


def erf(payload: bytes, typ: int, ext: int = 0, pad_to: int = 8, wlen: int | None = None) -> bytes:
    """An ERF record: timestamp (LE), type (| 0x80 with ``ext`` extension headers), flags
    (interface 0, varlen), record length, loss counter, wire length (big-endian), the
    extension headers (each 8 bytes, bit 7 of the first byte: another follows), the payload,
    padded to ``pad_to`` bytes as DAG cards align records."""
    exts = b"".join(bytes([(0x80 if k < ext - 1 else 0) | 0x0C]) + b"\x00" * 7 for k in range(ext))
    body = exts + payload
    body += b"\x00" * (-(16 + len(body)) % pad_to)
    return (struct.pack("<Q", 0x6543210F00000000) + bytes([typ | (0x80 if ext else 0), 0x04])
            + struct.pack(">HHH", 16 + len(body), 0, len(payload) if wlen is None else wlen)
            + body)


def erf_times(frames: list[bytes]) -> list[bytes]:
    """The records of :func:`erf` stamped with the times ``decodecheck.write`` gives their pcap
    records (1_700_000_000 s + 10 ms each), as the files DAG cards write them (both readers take
    a pcap ERF record's time from its ERF header: :func:`test_erf_time_is_the_erf_headers`)."""
    out = []
    for k, f in enumerate(frames):
        ts = (1_700_000_000 << 32) | round(k * 0.01 * 2**32)
        out.append(struct.pack("<Q", ts) + f[8:])
    return out


def erf_eth(ip: bytes, v6: bool) -> bytes:
    """ERF type 2 (Ethernet): 2 bytes of offset/pad, the frame with its FCS (cards keep it)."""
    return erf(b"\x00\x00" + with_fcs(ether(ip, v6)), 2)


def token_ring(ip: bytes, v6: bool, rif: bytes = b"") -> bytes:
    src = bytes.fromhex("020000000010")
    if rif:
        src = bytes([src[0] | 0x80]) + src[1:]
    return b"\x10\x40" + bytes.fromhex("020000000001") + src + rif + (SNAP6 if v6 else SNAP4) + ip


def fddi(ip: bytes, v6: bool, dst: bytes = bytes.fromhex("020000000001")) -> bytes:
    return b"\x50" + dst + bytes.fromhex("020000000010") + (SNAP6 if v6 else SNAP4) + ip


CASES = {
    "erf-ether": (197, erf_eth),
    "erf-ether-extension-headers": (197, lambda p, v6: erf(b"\x00\x00" + ether(p, v6), 20, ext=2)),
    "erf-ip": (197, lambda p, v6: erf(p, 23 if v6 else 22)),
    "erf-pos-ppp": (197, lambda p, v6: erf(b"\xff\x03" + (b"\x00\x57" if v6 else b"\x00\x21") + p, 1)),
    "erf-pos-chdlc": (197, lambda p, v6: erf(b"\x0f\x00" + (b"\x86\xdd" if v6 else b"\x08\x00") + p, 1)),
    "ppp_ether": (51, lambda p, v6: struct.pack(">BBHH", 0x11, 0, 0x2a, len(p) + 2)
                  + (b"\x00\x57" if v6 else b"\x00\x21") + p),
    "fddi": (10, fddi),
    "token_ring": (6, token_ring),
    "token_ring-source-routed": (6, lambda p, v6: token_ring(p, v6, rif=b"\x06\x30\x00\x11\x00\x20")),
    "sunatm-llc": (123, lambda p, v6: b"\x02\x00\x00\x20" + (SNAP6 if v6 else SNAP4) + p),
    "sunatm-lane": (123, lambda p, v6: b"\x01\x00\x00\x20" + b"\x00\x01" + ether(p, v6)),
    "ieee1394": (138, lambda p, v6: b"\x01" * 8 + b"\x02" * 8 + (b"\x86\xdd" if v6 else b"\x08\x00") + p),
    "ip_over_fc": (122, lambda p, v6: b"\x10\x00" + b"\x01" * 6 + b"\x10\x00" + b"\x02" * 6
                   + (SNAP6 if v6 else SNAP4) + p),
    "frelay-nlpid": (107, lambda p, v6: b"\x04\x01\x03" + (b"\x8e" if v6 else b"\xcc") + p),
    "frelay-snap": (107, lambda p, v6: b"\x04\x01\x03\x00\x80\x00\x00\x00"
                    + (b"\x86\xdd" if v6 else b"\x08\x00") + p),
    "frelay-cisco": (107, lambda p, v6: b"\x04\x01" + (b"\x86\xdd" if v6 else b"\x08\x00") + p),
}


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_tls_flow_behind_the_link_type(tmp_path, case, v6):
    """Before: no flow, one warning "8 frames of unsupported link type N skipped"."""
    lt, wrap = CASES[case]
    pkts = conversation(v6)
    frames = [wrap(bytes(p), v6) for _, p in pkts]
    path = write(tmp_path, f"{case}.pcap", erf_times(frames) if lt == 197 else frames, lt)
    r = check_tls_flow(path, pkts, v6=v6)
    assert r["purpose"] == "agent_connection"
    assert not any("unsupported link type" in w for w in decoded(path).stats.warnings)


def test_link_layer_broadcast_of_the_new_link_types(tmp_path):
    """FDDI's and Token Ring's all-ones destination (and Token Ring's functional broadcast
    c0:00:ff:ff:ff:ff) is a link-layer broadcast, as Ethernet's; a unicast one is not."""
    ip = bytes(IP(src=CLIENT, dst="10.0.0.255") / TCP(sport=50000, dport=13000, flags="S"))
    bc = b"\xff" * 6
    frames = {10: [fddi(ip, False, dst=bc), fddi(ip, False)],
              6: [b"\x10\x40" + bc + bytes(6) + SNAP4 + ip,
                  b"\x10\x40" + bytes.fromhex("c000ffffffff") + bytes(6) + SNAP4 + ip,
                  token_ring(ip, False)]}
    for lt, fr in frames.items():
        p = decoded(write(tmp_path, f"b{lt}.pcap", fr, lt))
        assert p.cols["l2_bcast"].tolist() == [True] * (len(fr) - 1) + [False], lt


def test_non_ip_and_damaged_records_of_the_new_link_types(tmp_path):
    """An ERF record of another type (an ATM cell, a counter), an FDDI SMT frame, a Token Ring
    MAC frame, a Sun ATM signalling PDU and a Frame Relay LMI frame are not IP; a cut header is
    malformed. The good record beside each is analysed."""
    ip = bytes(IP(src=CLIENT, dst="203.0.113.10") / TCP(sport=50000, dport=13000, flags="S"))
    good = {197: erf(ip, 22), 10: fddi(ip, False), 6: token_ring(ip, False),
            123: b"\x02\x00\x00\x20" + SNAP4 + ip, 107: b"\x04\x01\x03\xcc" + ip}
    bad = {197: [("non_ip", erf(b"\x00" * 52, 3)), ("malformed", erf(ip, 22 | 0x80)[:20]),
                 ("malformed", b"\x00" * 10)],
           10: [("non_ip", b"\x41" + bytes(12) + ip), ("malformed", b"\x50" + bytes(5))],
           6: [("non_ip", b"\x10\x00" + bytes(12) + ip),
               ("malformed", token_ring(ip, False, rif=b"\x1f\x30")[:18])],
           123: [("non_ip", b"\x00\x00\x00\x05" + bytes(48))],
           107: [("non_ip", b"\xfc\xf1\x03\x08" + bytes(10)), ("malformed", b"\x04\x00\x00\x00\x00")]}
    for lt, cases in bad.items():
        for counter, frame in cases:
            path = write(tmp_path, f"bad{lt}.pcap", [frame, good[lt]], lt)
            p = decoded(path)
            assert len(p) == 1 and p.cols["dport"].tolist() == [13000], (lt, counter)
            assert getattr(p.stats, counter) == 1, (lt, counter)


def test_erf_record_padding_and_a_record_length_written_wrong(tmp_path):
    """The padding a card adds to a record (and bytes after it) is a trailer after the
    datagram, as Ethernet padding: the flow's IP bytes are the datagram's. The header's record
    length is not read: a writer that put the packet's length there (opapacketcapture before
    its fix, cornelisnetworks/opa-ff#3) loses nothing, as in Wireshark; a bound at the record
    length cut every frame 16 bytes short ("captured shorter than its IP length says")."""
    pkts = conversation()
    frames = [erf(b"\x00\x00" + with_fcs(ether(bytes(p), False)), 2, pad_to=64) + b"\xee" * 7
              for _, p in pkts]
    r = check_tls_flow(write(tmp_path, "erfpad.pcap", erf_times(frames), 197), pkts)
    assert r["conn_state"] == "SF"
    short = []
    for f in erf_times(frames):
        b = bytearray(f)
        struct.pack_into(">H", b, 10, struct.unpack_from(">H", b, 14)[0])   # rlen := wlen
        short.append(bytes(b))
    path = write(tmp_path, "erfrlen.pcap", short, 197)
    check_tls_flow(path, pkts)
    assert not any("shorter" in w for w in analyze_file(path, RULES).stats[str(path)].warnings)


def test_erf_time_is_the_erf_headers(tmp_path):
    """A pcap record of link type ERF is timed by its ERF header (2^-32 s units), as Wireshark
    does: a writer that stamped the pcap records with whole seconds only (or a wrong fraction,
    opa-ff#3) gave every packet of a connection one time. Each engine gives the ERF times
    (ts, duration and uid equal); in a pcapng file the block's own time stays (as Wireshark)."""
    pkts = conversation()
    base = 1_700_000_000
    recs = []
    for k, (_, p) in enumerate(pkts):
        f = erf(b"\x00\x00" + ether(bytes(p), False), 2)
        erf_ts = (base << 32) | round((0.25 + k * 0.0375) * 2**32)
        recs.append(struct.pack("<IIII", base, 0, len(f), len(f)) + struct.pack("<Q", erf_ts) + f[8:])
    path = tmp_path / "erfsec.pcap"
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 197) + b"".join(recs))
    r = check_tls_flow(path, pkts)
    assert r["ts_ns"] == base * 10**9 + 250_000_000
    control = tmp_path / "erfcontrol.pcap"                  # the same, pcap records at the ERF times
    control.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 197) + b"".join(
        struct.pack("<IIII", base, 250_000 + k * 37_500, len(x) - 16, len(x) - 16) + x[16:]
        for k, x in enumerate(recs)))
    c = check_tls_flow(control, pkts)
    assert (r["ts_ns"], r["duration"]) == (c["ts_ns"], c["duration"])   # (uids draw on the name)
    assert r["duration"] > 0.2
    from kscc_traffic.capture.files import read_frames
    ts = read_frames(path).ts_ns.tolist()
    assert ts[0] == base * 10**9 + 250_000_000 and ts[1] == base * 10**9 + 287_500_000
    # pcapng: the Enhanced Packet Block's time, not the ERF header's
    def blk(t, body):
        body += b"\x00" * (-len(body) % 4)
        return struct.pack("<II", t, len(body) + 12) + body + struct.pack("<I", len(body) + 12)
    ng = blk(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)) + blk(1, struct.pack("<HHI", 197, 0, 0))
    for k, rec in enumerate(recs):
        us = (base + 100 + k) * 10**6
        data = rec[16:]
        ng += blk(6, struct.pack("<IIIII", 0, us >> 32, us & 0xFFFFFFFF, len(data), len(data)) + data)
    ngp = tmp_path / "erf.pcapng"
    ngp.write_bytes(ng)
    assert read_frames(ngp).ts_ns.tolist()[:2] == [(base + 100) * 10**9, (base + 101) * 10**9]
    check_tls_flow(ngp, pkts)


# ---------------------------------------------------------------------------- F2: tunnels
OUT4 = IP(src="198.51.100.1", dst="198.51.100.2")


def eoip(frame: bytes, tunnel_id: int = 7) -> bytes:
    """MikroTik EoIP: GRE version 1 with the K bit (0x2001), protocol 0x6400, the key field
    holding the payload length (big-endian) and the tunnel id (little-endian), the frame."""
    return struct.pack(">HHH", 0x2001, 0x6400, len(frame)) + struct.pack("<H", tunnel_id) + frame


def etherip(frame: bytes) -> bytes:
    return b"\x30\x00" + frame                          # version 3, reserved


TUNNELS = {"eoip": (47, eoip, "GRE 8"), "etherip": (97, etherip, "EtherIP 8")}


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("case", sorted(TUNNELS))
def test_ethernet_tunnels_give_the_inner_connection(tmp_path, case, v6):
    """F2: MikroTik's EoIP (GRE 0x6400, version 1; common on MikroTik routers) and EtherIP (IP
    protocol 97, RFC 3378; FreeBSD/OpenBSD ``gif``/``etherip`` bridges) carry Ethernet frames.
    Before: every EoIP frame "not IP" (the capture had "no IP packet among its 8 frames"), every
    EtherIP packet a protocol-97 flow between the tunnel ends; Wireshark reads the connection
    inside. Now the inner connection, by both engines, counted in the tunnel line."""
    proto, wrap, note = TUNNELS[case]
    pkts = conversation(v6)
    frames = [bytes(Ether(src="02:00:00:00:00:aa", dst="02:00:00:00:00:bb")
                    / IP(src="198.51.100.1", dst="198.51.100.2", proto=proto)) + wrap(ether(bytes(p), v6))
              for _, p in pkts]
    for k, f in enumerate(frames):                      # the outer IPv4 total length, checksum
        b = bytearray(f)
        struct.pack_into(">H", b, 16, len(b) - 14)
        struct.pack_into(">H", b, 24, 0)
        frames[k] = bytes(Ether(b))
    path = write(tmp_path, f"{case}.pcap", frames)
    check_tls_flow(path, pkts, v6=v6)
    warnings = analyze_file(path, RULES).stats[str(path)].warnings
    assert any(w.endswith(f"outer headers dropped ({note})") for w in warnings), warnings


def test_eoip_keepalive_and_cut_tunnel(tmp_path):
    """An EoIP keepalive (payload length 0) carries nothing: not IP, as a PPTP acknowledgement;
    an EtherIP packet cut inside its header stays the protocol-97 datagram."""
    ip = bytes(IP(src=CLIENT, dst="203.0.113.10") / TCP(sport=50000, dport=13000, flags="S"))
    keep = bytes(Ether() / IP(src="198.51.100.1", dst="198.51.100.2", proto=47)
                 / struct.pack(">HHHH", 0x2001, 0x6400, 0, 7))
    good = bytes(Ether() / IP(src="198.51.100.1", dst="198.51.100.2", proto=47) / eoip(ether(ip, False)))
    p = decoded(write(tmp_path, "keep.pcap", [keep, good]))
    assert p.cols["dport"].tolist() == [13000] and p.stats.non_ip == 1
    cut = bytes(Ether() / IP(src="198.51.100.1", dst="198.51.100.2", proto=97) / b"\x30")
    p = decoded(write(tmp_path, "cut.pcap", [cut]))
    assert p.cols["proto"].tolist() == [97] and p.cols["payload_len"].tolist() == [1]


def test_erf_capture_read_in_chunks_is_the_whole(tmp_path):
    """ERF times come from the records' bytes, whatever the chunk a record falls in: a capture of
    several connections (pcap record times whole seconds, the ERF headers the real ones) read in
    chunks of 256 bytes to 4 KiB gives the flows of one whole read."""
    from chunkcmp import assert_same
    recs = []
    for c in range(6):
        for k, (_, p) in enumerate(conversation()):
            p = p.copy()
            p[TCP].sport += c if p[TCP].sport == 50000 else 0
            p[TCP].dport += c if p[TCP].dport == 50000 else 0
            t = 0.5 + c * 0.3 + k * 0.011
            f = erf(b"\x00\x00" + ether(bytes(p), False), 2)
            recs.append(struct.pack("<IIII", 1_700_000_000, 0, len(f), len(f))
                        + struct.pack("<Q", (1_700_000_000 << 32) | round(t * 2**32)) + f[8:])
    path = tmp_path / "erfchunks.pcap"
    path.write_bytes(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 197) + b"".join(recs))
    assert_same(path, [256, 1000, 4096])
    flows = analyze_file(path, RULES).flows
    assert len(flows) == 6 and sorted(flows["orig_p"].tolist()) == list(range(50000, 50006))
    assert sorted(flows["ts_ns"].tolist())[1] - sorted(flows["ts_ns"].tolist())[0] == 300_000_000
