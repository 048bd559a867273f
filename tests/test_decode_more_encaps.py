"""Encapsulations the decoder walks to reach the TCP/UDP inside, end to end (capture -> flows ->
SNI): 802.11 behind radiotap with the Flags field's data-pad (0x20) and FCS (0x10) bits, read
through extended present bitmaps and the TSFT field's 8-byte alignment; IPv4 (and IPv6)
transport-mode AH (RFC 4302); Geneve (RFC 8926, UDP 6081) with options and an Ethernet or IP
payload.

Each case is built with scapy / struct here, written as a pcap, analysed, and its flow checked
value by value (5-tuple, packets and bytes each way, SNI); its frames are also decoded by the
fast and the slow path, which must agree column for column. With tshark installed, the tshark
engine must give the same flow (the columns of FLOW_KEYS).
"""
from __future__ import annotations

import shutil
import struct
import zlib

import pytest

pytest.importorskip("scapy")

from scapy.all import (  # noqa: E402
    IP, LLC, SNAP, TCP, UDP, Dot11, Dot11QoS, Ether, IPv6, RadioTap, Raw, fragment)
from scapy.layers.ipsec import AH  # noqa: E402

import kscc_traffic  # noqa: E402
from kscc_traffic.analyze import analyze_file  # noqa: E402
from decodecheck import decoded, write  # noqa: E402
from pcapbuild import pcap_bytes  # noqa: E402

RULES = kscc_traffic.load_rules()
TSHARK = shutil.which("tshark")

CLIENT, SERVER = "10.0.0.5", "203.0.113.10"
CLIENT6, SERVER6 = "2001:db8::5", "2001:db8:1::10"
CPORT, SPORT = 50000, 23100
SNI = "eu1.ksc.kaspersky.com"
CMAC, SMAC, APMAC = "00:11:22:33:44:55", "00:66:77:88:99:aa", "00:11:22:33:44:66"
#: an Ethernet header with both addresses given (scapy would otherwise look them up by ARP)
ETH = Ether(src=CMAC, dst=SMAC)


# ---------------------------------------------------------------------------- TLS conversation
def client_hello(name: str = SNI) -> bytes:
    """A TLS 1.2 ClientHello record with one extension: server_name ``name``."""
    n = name.encode()
    ext = struct.pack("!HHHBH", 0, len(n) + 5, len(n) + 3, 0, len(n)) + n
    body = (b"\x03\x03" + bytes(range(32)) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
            + struct.pack("!H", len(ext)) + ext)
    hs = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def server_hello() -> bytes:
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x13\x01" + b"\x00" + b"\x00\x00"
    hs = b"\x02" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x03" + struct.pack("!H", len(hs)) + hs


CH, SH = client_hello(), server_hello()


def conversation(v6: bool = False) -> list[tuple[bool, object]]:
    """(from_client, IP/TCP packet) of a whole TLS connection: 5 packets from the client
    (SYN, ACK, ClientHello, FIN, ACK), 3 from the server (SYN-ACK, ServerHello, FIN)."""
    c, s = (CLIENT6, SERVER6) if v6 else (CLIENT, SERVER)
    ip = IPv6 if v6 else IP
    up = lambda **kw: ip(src=c, dst=s) / TCP(sport=CPORT, dport=SPORT, **kw)  # noqa: E731
    dn = lambda **kw: ip(src=s, dst=c) / TCP(sport=SPORT, dport=CPORT, **kw)  # noqa: E731
    ci, si = 1000, 5000
    return [
        (True, up(flags="S", seq=ci)),
        (False, dn(flags="SA", seq=si, ack=ci + 1)),
        (True, up(flags="A", seq=ci + 1, ack=si + 1)),
        (True, up(flags="PA", seq=ci + 1, ack=si + 1) / Raw(CH)),
        (False, dn(flags="PA", seq=si + 1, ack=ci + 1 + len(CH)) / Raw(SH)),
        (True, up(flags="FA", seq=ci + 1 + len(CH), ack=si + 1 + len(SH))),
        (False, dn(flags="FA", seq=si + 1 + len(SH), ack=ci + 2 + len(CH))),
        (True, up(flags="A", seq=ci + 2 + len(CH), ack=si + 2 + len(SH))),
    ]


def ip_bytes(pkts, from_client: bool, ah: int = 0) -> int:
    """IP bytes (header lengths included) one way; ``ah``: AH bytes added to each packet."""
    return sum(len(bytes(p)) + ah for up, p in pkts if up == from_client)


# ---------------------------------------------------------------------------- helpers




#: flow columns compared between the builtin and the tshark engine
FLOW_KEYS = ("uid", "proto", "orig_h", "orig_p", "resp_h", "resp_p", "orig_pkts", "resp_pkts",
             "orig_bytes", "resp_bytes", "orig_ip_bytes", "resp_ip_bytes", "sni", "conn_state",
             "purpose", "verdict")


def only_flow(path, engine: str = "builtin") -> dict:
    flows = analyze_file(path, RULES, engine=engine).flows
    assert len(flows) == 1, flows[["proto", "orig_h", "orig_p", "resp_h", "resp_p"]]
    return flows.iloc[0].to_dict()


def check_tls_flow(path, pkts, v6: bool = False, ah_up: int = 0, ah_down: int = 0) -> dict:
    """The one flow of ``path`` is the TLS conversation ``pkts``, by both engines."""
    c, s = (CLIENT6, SERVER6) if v6 else (CLIENT, SERVER)
    p = decoded(path)
    assert len(p) == len(pkts)
    assert set(p.cols["proto"].tolist()) == {6}
    r = only_flow(path)
    assert (r["proto"], r["orig_h"], r["orig_p"], r["resp_h"], r["resp_p"]) == \
        ("tcp", c, CPORT, s, SPORT)
    assert (r["orig_pkts"], r["resp_pkts"]) == (5, 3)
    assert (r["orig_bytes"], r["resp_bytes"]) == (len(CH), len(SH))
    assert (r["orig_ip_bytes"], r["resp_ip_bytes"]) == \
        (ip_bytes(pkts, True, ah_up), ip_bytes(pkts, False, ah_down))
    assert r["sni"] == SNI and r["conn_state"] == "SF"
    if TSHARK:
        t = only_flow(path, "tshark")
        for k in FLOW_KEYS:
            assert t[k] == r[k], (k, t[k], r[k])
    return r


# ---------------------------------------------------------------------------- radiotap
def dot11(from_client: bool, qos: bool = True, pad: bool = False, v6: bool = False) -> bytes:
    """802.11 data frame header (QoS data: 26 bytes) + ``pad`` 2 bytes + LLC/SNAP."""
    fc = 1 if from_client else 2                # to-DS / from-DS
    a1, a2, a3 = (SMAC, CMAC, APMAC) if from_client else (CMAC, SMAC, APMAC)
    hdr = bytes(Dot11(type=2, subtype=8 if qos else 0, FCfield=fc, addr1=a1, addr2=a2,
                      addr3=a3) / (Dot11QoS() if qos else b""))
    return hdr + (b"\x00\x00" if pad else b"") + bytes(LLC() / SNAP(code=0x86DD if v6 else 0x0800))


def _with_fcs(mac_frame: bytes) -> bytes:
    """An 802.11 frame followed by its FCS (CRC-32, little-endian, as radiotap captures it)."""
    return mac_frame + struct.pack("<I", zlib.crc32(mac_frame))


def radiotap_ext(flags: int) -> bytes:
    """Radiotap with two present words (ext bit 31 + radiotap namespace bit 29), TSFT (8-byte
    aligned: 4 bytes of padding after the 12-byte bitmap), Flags, Rate, Channel, dBm signal,
    and in the second word dBm signal + antenna: 33 bytes."""
    p0 = 1 << 31 | 1 << 29 | 0b101111          # TSFT, Flags, Rate, Channel, dBm_AntSignal
    p1 = 1 << 5 | 1 << 11                       # dBm_AntSignal, Antenna
    fields = (b"\x00" * 4                       # pad TSFT to offset 16
              + struct.pack("<Q", 0x1122334455667788) + bytes([flags, 0x0C])
              + struct.pack("<HH", 2412, 0x00A0) + b"\xc4" + b"\xc2\x01")
    hdr = struct.pack("<BBHII", 0, 0, 12 + len(fields), p0, p1) + fields
    assert len(hdr) == 33
    return hdr


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
@pytest.mark.parametrize("case", ["plain", "datapad", "fcs", "ext_datapad_fcs", "ext_nopad"])
def test_radiotap_qos_data(tmp_path, case, v6):
    pkts = conversation(v6)
    frames = []
    for up, p in pkts:
        if case == "plain":                     # no Flags field: nothing to skip
            f = bytes(RadioTap()) + dot11(up, v6=v6) + bytes(p)
        elif case == "datapad":                 # Flags = data pad: 26-byte header padded to 28
            f = bytes(RadioTap(present="Flags", Flags="pad")) + dot11(up, pad=True, v6=v6) \
                + bytes(p)
        elif case == "fcs":                     # Flags = FCS: 4 bytes after the datagram
            # (the FCS right: one that does not match makes the frame damaged, skipped)
            f = bytes(RadioTap(present="Flags", Flags="FCS")) + _with_fcs(dot11(up, v6=v6) + bytes(p))
        elif case == "ext_datapad_fcs":     # (the FCS covers the frame without the driver's pad)
            fcs = _with_fcs(dot11(up, v6=v6) + bytes(p))[-4:]
            f = radiotap_ext(0x30) + dot11(up, pad=True, v6=v6) + bytes(p) + fcs
        else:                                   # same header, Flags 0: no padding
            f = radiotap_ext(0x00) + dot11(up, v6=v6) + bytes(p)
        frames.append(f)
    path = write(tmp_path, f"rt_{case}.pcap", frames, 127)
    check_tls_flow(path, pkts, v6)


def test_radiotap_datapad_matters_only_with_the_flag(tmp_path):
    """Padding present but the flag clear (or the reverse): the LLC header is not where the
    decoder looks, so no IP packet comes out (counted as not IP), not a wrong flow."""
    up, p = conversation()[0]
    f1 = bytes(RadioTap(present="Flags", Flags=0)) + dot11(up, pad=True) + bytes(p)
    f2 = bytes(RadioTap(present="Flags", Flags="pad")) + dot11(up) + bytes(p)
    pk = decoded(write(tmp_path, "rt_mismatch.pcap", [f1, f2], 127))
    assert len(pk) == 0 and pk.stats.non_ip == 2 and pk.stats.malformed == 0


def test_radiotap_present_words_past_header_length_is_malformed(tmp_path):
    up, p = conversation()[0]
    bad = struct.pack("<BBHI", 0, 0, 8, 1 << 31) + dot11(up) + bytes(p)   # ext word missing
    flags_out = struct.pack("<BBHI", 0, 0, 8, 0b11) + dot11(up) + bytes(p)  # TSFT+Flags, len 8
    pk = decoded(write(tmp_path, "rt_bad.pcap", [bad, flags_out], 127))
    assert len(pk) == 0 and pk.stats.malformed == 2


def test_radiotap_fcs_cut_by_snaplen_keeps_datagram(tmp_path):
    """Snaplen cutting the frame inside the FCS: the captured FCS bytes are dropped, the
    datagram is intact (its ip_len from the header)."""
    up, p = conversation()[3]                   # the ClientHello
    f = bytes(RadioTap(present="Flags", Flags="FCS")) + dot11(up) + bytes(p) + b"\xde\xad\xbe\xef"
    path = tmp_path / "rt_fcs_cut.pcap"
    data = bytearray(pcap_bytes([(1_700_000_000, f[:-2])], 127))
    struct.pack_into("<I", data, 24 + 12, len(f))          # original length: FCS included
    path.write_bytes(bytes(data))
    pk = decoded(path)
    assert len(pk) == 1 and pk.cols["ip_len"][0] == len(bytes(p))
    assert pk.payload(0) == CH


# ---------------------------------------------------------------------------- AH
def ah_header(nh: int, icv: int = 12, spi: int = 0x1000, seq: int = 1) -> bytes:
    """Authentication header (RFC 4302): next header, payload length = (bytes / 4) - 2."""
    n = 12 + icv
    return bytes([nh, n // 4 - 2, 0, 0]) + struct.pack("!II", spi, seq) + b"\xab" * icv


def with_ah(p, icv: int = 12):
    """IP/TCP or IP/UDP ``p`` rebuilt with a transport-mode AH before its transport header."""
    if IP in p:
        t = p[IP].payload
        return IP(src=p[IP].src, dst=p[IP].dst, proto=51) / Raw(ah_header(p[IP].proto, icv)
                                                                + bytes(t))
    t = p[IPv6].payload
    return IPv6(src=p[IPv6].src, dst=p[IPv6].dst, nh=51) / Raw(ah_header(p[IPv6].nh, icv)
                                                               + bytes(t))


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
def test_ah_tcp_both_directions(tmp_path, v6):
    pkts = conversation(v6)
    frames = [bytes(Ether(src=CMAC, dst=SMAC) / with_ah(p)) for _, p in pkts]
    path = write(tmp_path, "ah_tcp.pcap", frames)
    r = check_tls_flow(path, pkts, v6, ah_up=24, ah_down=24)
    assert r["resp_p"] == SPORT


def test_ah_client_side_only_one_flow(tmp_path):
    """As in the break-it repro: only the client's packets carry AH (ICV 16 bytes)."""
    pkts = conversation()
    frames = [bytes(ETH / (with_ah(p, 16) if up else p)) for up, p in pkts]
    check_tls_flow(write(tmp_path, "ah_half.pcap", frames), pkts, ah_up=28)


def test_ah_udp(tmp_path):
    q = [(True, IP(src=CLIENT, dst=SERVER) / UDP(sport=40000, dport=15111) / Raw(b"q" * 30)),
         (False, IP(src=SERVER, dst=CLIENT) / UDP(sport=15111, dport=40000) / Raw(b"r" * 50)),
         (True, IP(src=CLIENT, dst=SERVER) / UDP(sport=40000, dport=15111) / Raw(b"q" * 10))]
    path = write(tmp_path, "ah_udp.pcap", [bytes(ETH / with_ah(p)) for _, p in q])
    pk = decoded(path)
    assert pk.cols["proto"].tolist() == [17, 17, 17]
    assert pk.cols["payload_len"].tolist() == [30, 50, 10]
    assert pk.cols["ip_len"].tolist() == [20 + 24 + 8 + 30, 20 + 24 + 8 + 50, 20 + 24 + 8 + 10]
    assert pk.payload(1) == b"r" * 50
    r = only_flow(path)
    assert (r["proto"], r["orig_h"], r["orig_p"], r["resp_h"], r["resp_p"]) == \
        ("udp", CLIENT, 40000, SERVER, 15111)
    assert (r["orig_pkts"], r["orig_bytes"], r["resp_pkts"], r["resp_bytes"]) == (2, 40, 1, 50)
    assert (r["orig_ip_bytes"], r["resp_ip_bytes"]) == (82 + 62, 102)
    if TSHARK:
        t = only_flow(path, "tshark")
        for k in FLOW_KEYS:
            assert t[k] == r[k], (k, t[k], r[k])


def test_ah_scapy_layer_and_fragmented_first_fragment(tmp_path):
    """scapy's own AH layer; an AH datagram fragmented after AH (RFC 4302 §3.3.3): reassembled,
    then walked."""
    p = IP(src=CLIENT, dst=SERVER) / AH(nh=6, payloadlen=4, spi=7, seq=1, icv=b"\x00" * 12) / TCP(
        sport=CPORT, dport=SPORT, flags="PA") / Raw(CH)
    whole = IP(bytes(p))
    frags = fragment(whole, fragsize=64)
    assert len(frags) > 1
    path = write(tmp_path, "ah_frag.pcap", [bytes(ETH / whole)] + [bytes(ETH / f)
                                                                        for f in frags])
    pk = decoded(path)
    assert len(pk) == 2
    assert pk.cols["proto"].tolist() == [6, 6] and pk.cols["dport"].tolist() == [SPORT, SPORT]
    assert pk.cols["payload_len"].tolist() == [len(CH)] * 2
    assert pk.payload(0) == CH and pk.payload(1) == CH


def test_ah_cut_and_bad_length(tmp_path):
    """AH cut after its first byte: protocol 51 kept, no ports. AH claiming more bytes than
    the datagram: malformed. ESP (50) is encrypted: left as protocol 50."""
    inner = bytes(TCP(sport=CPORT, dport=SPORT))
    cut = bytes(ETH / IP(src=CLIENT, dst=SERVER, proto=51) / Raw(ah_header(6) + inner))
    cut = cut[:14 + 20 + 1]
    bad = bytes(ETH / IP(src=CLIENT, dst=SERVER, proto=51) / Raw(b"\x06\x20" + bytes(22)
                                                                    + inner))
    esp = bytes(ETH / IP(src=CLIENT, dst=SERVER, proto=50) / Raw(bytes(40)))
    pk = decoded(write(tmp_path, "ah_odd.pcap", [cut, bad, esp]))
    assert pk.stats.malformed == 1
    assert pk.cols["proto"].tolist() == [51, 50]
    assert pk.cols["sport"].tolist() == [-1, -1]


# ---------------------------------------------------------------------------- Geneve
def geneve(ptype: int, options: bytes = b"", vni: int = 0x1234, ver: int = 0, oam: bool = False
           ) -> bytes:
    assert len(options) % 4 == 0
    return struct.pack("!BBHI", ver << 6 | len(options) // 4, 0x80 if oam else 0, ptype,
                       vni << 8) + options


OPTS = (struct.pack("!HBB", 0x0103, 0x80, 1) + b"\x01\x02\x03\x04"   # class, type, len 1 word
        + struct.pack("!HBB", 0xFFFF, 0x05, 0))                     # ... and 0 words: 12 bytes
OUTER4 = (IP(src="192.0.2.1", dst="192.0.2.2"), IP(src="192.0.2.2", dst="192.0.2.1"))
OUTER6 = (IPv6(src="2001:db8:ff::1", dst="2001:db8:ff::2"),
          IPv6(src="2001:db8:ff::2", dst="2001:db8:ff::1"))


def geneve_frames(pkts, payload: str, outer=OUTER4, options: bytes = OPTS) -> list[bytes]:
    out = []
    for up, p in pkts:
        o = outer[0 if up else 1]
        if payload == "ether":
            inner = bytes(Ether(src=CMAC if up else SMAC, dst=SMAC if up else CMAC) / p)
            g = geneve(0x6558, options) + inner
        else:
            g = geneve(0x86DD if IPv6 in p else 0x0800, options) + bytes(p)
        out.append(bytes(ETH / o.copy() / UDP(sport=54321 if up else 54322, dport=6081)
                         / Raw(g)))
    return out


@pytest.mark.parametrize("outer", ["outer4", "outer6"])
@pytest.mark.parametrize("payload", ["ether", "ip"])
@pytest.mark.parametrize("v6", [False, True], ids=["inner4", "inner6"])
def test_geneve_inner_connection(tmp_path, payload, v6, outer):
    pkts = conversation(v6)
    frames = geneve_frames(pkts, payload, OUTER4 if outer == "outer4" else OUTER6)
    path = write(tmp_path, "geneve.pcap", frames)
    check_tls_flow(path, pkts, v6)
    st = analyze_file(path, RULES).stats
    warn = [w for s in st.values() for w in s.warnings if "tunnelled" in w]
    assert warn == ["geneve.pcap: decode: 8 tunnelled packets decoded as their inner packet, outer headers "
                    "dropped (Geneve 8)"]


def test_geneve_without_options_scapy_layer(tmp_path):
    from scapy.contrib.geneve import GENEVE
    pkts = conversation()
    frames = [bytes(ETH / OUTER4[0] / UDP(sport=1, dport=6081) / GENEVE(proto=0x6558, vni=9)
                    / ETH / p) for _, p in pkts]
    check_tls_flow(write(tmp_path, "geneve_scapy.pcap", frames), pkts)


def test_geneve_not_decodable_stays_udp_or_non_ip(tmp_path):
    """Version 1, or a protocol type below 0x600: not Geneve, the UDP datagram stays. Options
    running past the datagram: the UDP datagram stays too (it was skipped as malformed: other
    traffic on port 6081 was lost so, newcomer 2 31 F5). An ARP payload: not IP."""
    ip = bytes(conversation()[0][1])
    udp = lambda g: bytes(ETH / OUTER4[0] / UDP(sport=1, dport=6081) / Raw(g))  # noqa: E731
    arp = bytes.fromhex("0001080006040001") + bytes(20)
    frames = [udp(geneve(0x0800, ver=1) + ip), udp(geneve(0x0100) + ip),
              udp(struct.pack("!BBHI", 10, 0, 0x0800, 0) + ip[:20]),
              udp(geneve(0x6558) + bytes(Ether(src=CMAC, dst=SMAC, type=0x0806)) + arp)]
    pk = decoded(write(tmp_path, "geneve_odd.pcap", frames))
    assert pk.cols["proto"].tolist() == [17, 17, 17]
    assert pk.cols["dport"].tolist() == [6081, 6081, 6081]
    assert pk.stats.malformed == 0 and pk.stats.non_ip == 1
