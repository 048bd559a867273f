"""Link types whose header says where the IP packet starts: NFLOG (239, Linux iptables/nftables
``-j NFLOG``, ``tcpdump -i nflog``), PFLOG (117, pf's log of passed/blocked packets), ENC (109,
OpenBSD IPsec), IPNET (226, Solaris), PKTAP (258, macOS ``tcpdump -i pktap``), PPI (192), C_HDLC
(104, Cisco HDLC) and ATM_RFC1483 (100, LLC/SNAP).

Each builds the TLS conversation of ``test_decode_more_encaps`` behind the link header, checks
the flow value by value (5-tuple, packets, payload and IP bytes each way, SNI, conn_state), the
fast decoder against the slow one, and — with tshark installed — the tshark engine against the
built-in one. Damaged headers are counted (malformed / non-IP), never raised.
"""
from __future__ import annotations

import struct

import pytest

pytest.importorskip("scapy")

from scapy.all import IP, TCP, Ether  # noqa: E402

from kscc_traffic.analyze import analyze_file  # noqa: E402
import test_decode_more_encaps as encaps  # noqa: E402
from test_decode_more_encaps import (  # noqa: E402
    CLIENT, ETH, RULES, SERVER, check_tls_flow, conversation, decoded, write)


def nflog(ip: bytes, family: int = 2, little: bool = True, payload_type: int = 9) -> bytes:
    """An NFLOG record: header (family, version 0, resource id 0 big-endian), then TLVs in the
    host's byte order: NFULA_PACKET_HDR (hw protocol, hook), NFULA_PREFIX, NFULA_PAYLOAD."""
    e = "<" if little else ">"

    def tlv(t: int, v: bytes) -> bytes:
        raw = struct.pack(e + "HH", 4 + len(v), t) + v
        return raw + b"\x00" * (-len(raw) % 4)
    hw = 0x0800 if family == 2 else 0x86DD
    return (bytes([family, 0]) + b"\x00\x00" + tlv(1, struct.pack("!HBB", hw, 1, 0))
            + tlv(10, b"kscc-drop\x00") + tlv(payload_type, ip))


def pflog(ip: bytes, af: int = 2, action: int = 1) -> bytes:
    """A pfloghdr (length 61, word-aligned to 64): length, af, action, reason, ifname, ruleset,
    rule numbers, uids, pids, direction, padding."""
    hdr = struct.pack("!BBBB16s16sIIIiIiB3s", 61, af, action, 0, b"em0", b"", 7, 0, 0, 0, 0, 0, 1, b"")
    assert len(hdr) == 64
    return hdr + ip


def pktap(frame: bytes, dlt: int = 1) -> bytes:
    """An Apple PKTAP header (108 bytes, little-endian): length, type_next, dlt, ifname, …"""
    hdr = struct.pack("<III24s", 108, 1, dlt, b"en0")
    return hdr + b"\x00" * (108 - len(hdr)) + frame


def ppi(frame: bytes, dlt: int = 1) -> bytes:
    """A PPI header without fields: version 0, flags 0, length 8, dlt (little-endian)."""
    return struct.pack("<BBHI", 0, 0, 8, dlt) + frame


def enc(ip: bytes, af: int = 2) -> bytes:
    return struct.pack("<III", af, 0x1234, 0) + ip


def ipnet(ip: bytes, family: int = 2) -> bytes:
    return struct.pack("!BBHIIIII", 2, family, 0, len(ip), 1, 0, 0, 0) + ip


def ether(ip: bytes, v6: bool = False) -> bytes:
    return bytes(Ether(src=ETH.src, dst=ETH.dst, type=0x86DD if v6 else 0x0800)) + ip


def c_hdlc(ip: bytes, v6: bool = False) -> bytes:
    return b"\x0f\x00" + (b"\x86\xdd" if v6 else b"\x08\x00") + ip


def atm_llc(ip: bytes, v6: bool = False) -> bytes:
    return b"\xaa\xaa\x03\x00\x00\x00" + (b"\x86\xdd" if v6 else b"\x08\x00") + ip


CASES = {
    "nflog-le": (239, lambda p, v6: nflog(p, 10 if v6 else 2)),
    "nflog-be": (239, lambda p, v6: nflog(p, 10 if v6 else 2, little=False)),
    "pflog": (117, lambda p, v6: pflog(p, 24 if v6 else 2)),
    "enc": (109, lambda p, v6: enc(p, 24 if v6 else 2)),
    "ipnet": (226, lambda p, v6: ipnet(p, 26 if v6 else 2)),
    "pktap-ether": (258, lambda p, v6: pktap(ether(p, v6))),
    "pktap-raw": (258, lambda p, v6: pktap(p, dlt=12)),
    "ppi-ether": (192, lambda p, v6: ppi(ether(p, v6))),
    "c_hdlc": (104, lambda p, v6: c_hdlc(p, v6)),
    "atm_rfc1483": (100, lambda p, v6: atm_llc(p, v6)),
}


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_tls_flow_behind_link_header(tmp_path, monkeypatch, case, v6):
    lt, wrap = CASES[case]
    if case == "nflog-be":   # tshark reads NFLOG TLVs in its own host's byte order only
        monkeypatch.setattr(encaps, "TSHARK", None)
    pkts = conversation(v6)
    path = write(tmp_path, f"{case}.pcap", [wrap(bytes(p), v6) for _, p in pkts], lt)
    r = check_tls_flow(path, pkts, v6=v6)
    assert r["purpose"] == "agent_connection"


def test_nflog_snaplen_cut_payload(tmp_path):
    """A record cut by the snaplen inside NFULA_PAYLOAD (its last TLV) still gives the packet:
    the ClientHello's flow keeps its 5-tuple and counts the bytes from the IP header."""
    pkts = conversation()
    frames = [nflog(bytes(p)) for _, p in pkts]
    path = tmp_path / "cut.pcap"
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 120, 239)]
    for k, f in enumerate(frames):
        out += [struct.pack("<IIII", 1_700_000_000, k * 10_000, min(len(f), 120), len(f)), f[:120]]
    path.write_bytes(b"".join(out))
    p = decoded(path)
    assert len(p) == len(pkts)
    flows = analyze_file(path, RULES).flows
    assert len(flows) == 1
    r = flows.iloc[0]
    assert (r["orig_h"], r["orig_p"], r["resp_h"], r["resp_p"]) == (CLIENT, 50000, SERVER, 23100)
    assert (r["orig_pkts"], r["resp_pkts"]) == (5, 3)
    ch = [p for up, p in pkts if up][2]
    assert r["orig_ip_bytes"] == sum(len(bytes(p)) for up, p in pkts if up)
    assert r["payload_cut"] and len(bytes(ch)) > 120


def test_damaged_and_packetless_link_headers(tmp_path):
    """An NFLOG record without a payload TLV and a PFLOG record of another family are non-IP;
    TLVs that parse in neither byte order, a PKTAP length past the frame, a PPI of an unknown
    version are malformed. The good record next to them is still analysed."""
    ip = bytes(IP(src=CLIENT, dst=SERVER) / TCP(sport=50000, dport=23100, flags="S"))
    cases = [
        (239, nflog(ip, payload_type=10)),                  # prefix only: a message, no packet
        (239, b"\x02\x00\x00\x00" + b"\x03\x00\x01\x00"),   # TLV length 3 (LE) / 768 (BE)
        (117, pflog(ip, af=17)),
        (258, struct.pack("<III", 5000, 1, 1) + ip),
        (192, b"\x01\x00\x08\x00\x01\x00\x00\x00" + ip),
    ]
    want = [("non_ip", 1), ("malformed", 1), ("non_ip", 1), ("malformed", 1), ("malformed", 1)]
    for (lt, bad), (counter, n) in zip(cases, want):
        good = {239: nflog(ip), 117: pflog(ip), 258: pktap(ip, 12), 192: ppi(ether(ip))}[lt]
        path = write(tmp_path, f"bad{lt}.pcap", [bad, good], lt)
        p = decoded(path)
        assert len(p) == 1, lt
        assert getattr(p.stats, counter) == n, (lt, p.stats)
        flows = analyze_file(path, RULES).flows
        assert flows["conn_state"].tolist() == ["S0"]


def prism(frame: bytes) -> bytes:
    """A Prism monitor header (linux-wlan-ng, LINKTYPE 119): message code, length 144 (host
    order: little-endian), device name, then 10 DID items of 12 bytes."""
    return struct.pack("<II16s", 0x41, 144, b"wlan0") + bytes(144 - 24) + frame


def avs(frame: bytes) -> bytes:
    """An AVS monitor header (LINKTYPE 163): version 0x80211001 and length 64, big-endian."""
    return struct.pack(">II", 0x80211001, 64) + bytes(56) + frame


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("lt, wrap, fcs", [(119, prism, False), (163, avs, False), (163, avs, True),
                                           (119, avs, False)],
                         ids=["prism", "avs", "avs-fcs", "avs-under-prism-linktype"])
def test_tls_flow_behind_a_monitor_header(tmp_path, lt, wrap, fcs, v6):
    """Old monitor-mode 802.11 captures (Prism, AVS headers): the 802.11 data frames carry the
    conversation (an AVS header under the Prism link type is read by its magic, as Wireshark);
    a trailing FCS does not change the flow (the IP length bounds the packet)."""
    pkts = conversation(v6)
    frames = [wrap(encaps.dot11(up, v6=v6) + bytes(p) + (b"\xde\xad\xbe\xef" if fcs else b""))
              for up, p in pkts]
    path = write(tmp_path, f"wlan{lt}.pcap", frames, lt)
    r = check_tls_flow(path, pkts, v6=v6)
    assert r["purpose"] == "agent_connection"


def test_monitor_header_length_past_the_frame_is_malformed(tmp_path):
    pkts = conversation()
    good = [prism(encaps.dot11(up) + bytes(p)) for up, p in pkts]
    bad = struct.pack("<II", 0x41, 5000) + bytes(40)          # a Prism length past the frame
    path = write(tmp_path, "bad.pcap", [bad] + good, 119)
    p = decoded(path)
    assert len(p) == len(pkts)
    assert p.stats.malformed == 1
