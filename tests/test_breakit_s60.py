"""Break-it s60: pcap records in the other byte order than the file header, the pcap header's
2-byte FCS, the wording of IP packets cut with frames 4 bytes short, IPv6 Mobility / HIP."""
from __future__ import annotations

import shutil
import struct

import numpy as np
import pytest

from pcapbuild import tcp_session

from kscc_traffic.analyze import analyze_file
from kscc_traffic.capture.files import iter_frames
from kscc_traffic.rules import load_rules

AGENT, SERVER = "192.0.2.10", "203.0.113.10"


def _records(recs, order: str) -> bytes:
    out = []
    for t, p in recs:
        d = bytes(p)
        us = round(t * 1e6)
        out.append(struct.pack(order + "IIII", us // 10**6, us % 10**6, len(d), len(d)) + d)
    return b"".join(out)


def _head(order: str, lt_field: int = 1) -> bytes:
    return struct.pack(order + "IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, lt_field)


def _engines(path):
    rules = load_rules()
    out = {"builtin": analyze_file(path, rules)}
    if shutil.which("tshark"):
        out["tshark"] = analyze_file(path, rules, engine="tshark")
    return out


def _warnings(analysis) -> list[str]:
    return [w for st in analysis.stats.values() for w in st.warnings]


@pytest.mark.parametrize("head, flip", [("<", ">"), (">", "<")])
def test_records_in_the_other_byte_order_than_the_header_are_read_in_it(tmp_path, head, flip):
    """Records written in the byte order opposite to the file header's (a writer's mistake, a
    capture joined without its header) were read as garbage: 'damaged record … resumed at offset
    27', 6 non-IP frames 'cut by the snaplen', timestamps jumping 7573 days, no flow (little-endian
    header), or 'no packet could be read' (big-endian header). They are read in their order, and
    a line counts them; back in the header's order further on, read on in it."""
    one = tcp_session((AGENT, 40020), (SERVER, 13000), c_data=b"a" * 30, s_data=b"b" * 20)
    two = tcp_session((AGENT, 40021), (SERVER, 13000), t0=1010.0, c_data=b"c" * 30, s_data=b"d" * 20)
    three = tcp_session((AGENT, 40022), (SERVER, 13000), t0=1020.0, c_data=b"e" * 30)
    path = tmp_path / "flip.pcap"
    first = len(_head(head)) + len(_records(one, head))
    path.write_bytes(_head(head) + _records(one, head) + _records(two, flip) + _records(three, head))
    for engine, a in _engines(path).items():
        f = a.flows.sort_values("orig_p")
        assert f.orig_p.tolist() == [40020, 40021, 40022], engine
        assert f.history.tolist() == ["ShADdFf", "ShADdFf", "ShADFf"], engine
        assert f.orig_bytes.tolist() == [30, 30, 30], engine
        lines = [w for w in _warnings(a) if "byte order" in w]
        order = {"<": "little", ">": "big"}
        assert lines and lines[0] == (
            f"flip.pcap: 8 records from offset {first} on are written in {order[flip]}-endian byte order, "
            f"not the {order[head]}-endian of the file header (a writer's mistake, or captures joined without "
            f"the second one's header): read in {order[flip]}-endian order (Wireshark stops there)"), engine
        assert not [w for w in _warnings(a) if "damaged" in w or "non-IP" in w], engine
    # every chunking reads the same records
    whole = [np.concatenate(c) for c in zip(*((fr.ts_ns, fr.caplen) for fr in iter_frames(path)))]
    for size in (100, 333, 700):
        parts = [np.concatenate(c) for c in zip(*((fr.ts_ns, fr.caplen) for fr in iter_frames(path, chunk_bytes=size)))]
        assert all((x == y).all() for x, y in zip(whole, parts)), size
    assert len(whole[0]) == 23


def test_a_header_with_every_record_in_the_other_order(tmp_path):
    """The whole file after the header (hdr_le_rec_be of break-it s59 #7)."""
    recs = tcp_session((AGENT, 40090), (SERVER, 13000), c_data=b"x" * 10)
    path = tmp_path / "all.pcap"
    path.write_bytes(_head("<") + _records(recs, ">"))
    a = analyze_file(path, load_rules())
    assert len(a.flows) == 1 and a.flows.iloc[0].history == "ShADFf"
    assert [w.split(" on are")[0] for w in _warnings(a) if "byte order" in w] == ["all.pcap: 7 records from offset 24"]


def test_damage_that_is_no_other_byte_order_is_still_read_past(tmp_path):
    """A damaged record header (garbage, not the other byte order) is still resynchronised
    past, as before: no 'byte order' line."""
    one = tcp_session((AGENT, 40020), (SERVER, 13000), c_data=b"a" * 30)
    two = tcp_session((AGENT, 40021), (SERVER, 13000), t0=1010.0, c_data=b"c" * 30)
    path = tmp_path / "dmg.pcap"
    path.write_bytes(_head("<") + _records(one, "<") + b"\xff" * 37 + _records(two, "<"))
    a = analyze_file(path, load_rules())
    assert sorted(a.flows.orig_p.tolist()) == [40020, 40021]
    assert not [w for w in _warnings(a) if "byte order" in w]
    assert [w for w in _warnings(a) if "reading resumed" in w]


def _fcs2_capture(tmp_path, name: str, trailer: bytes, tso: bool = False):
    """A TLS-looking connection under a pcap header whose FCS bits say 2 bytes (FCS length 1, in
    16-bit words); each frame followed by ``trailer``; ``tso``: the client's data packet with an
    IPv4 total length of 0 (a TSO capture: its length taken from the frame)."""
    recs = tcp_session((AGENT, 40010), (SERVER, 13000), c_data=b"\x16\x03\x01" + b"x" * 60, s_data=b"y" * 30)
    out = []
    for i, (t, p) in enumerate(recs):
        d = bytearray(bytes(p))
        if tso and i == 3:
            d[16:18] = b"\0\0"
        out.append(bytes(d) + trailer)
    path = tmp_path / name
    path.write_bytes(_head("<", 0x1400_0001) + _records(list(zip([t for t, _ in recs], out)), "<"))
    return path


def test_a_2_byte_fcs_in_the_pcap_header_is_taken_off(tmp_path):
    """The pcap header's FCS length 1 (16 bits) was ignored: a TSO packet (IP total length 0)
    counted the 2 FCS bytes as data (64 bytes, the tshark engine 63); they are taken off, as
    Wireshark does (both engines 63)."""
    path = _fcs2_capture(tmp_path, "fcs2.pcap", b"\xab\xcd", tso=True)
    for engine, a in _engines(path).items():
        row = a.flows.iloc[0]
        assert (row.orig_pkts, row.orig_bytes, row.orig_ip_bytes, row.resp_bytes) == (5, 63, 263, 30), engine
        assert not [w for w in _warnings(a) if "FCS" in w], engine


def test_a_2_byte_fcs_claim_on_frames_the_ip_packet_fills_is_dropped(tmp_path):
    """Frames without the FCS the header claims (their IP packet fills them): read whole and
    counted; tshark, which takes 2 bytes off each (the handshake's TCP headers cut: 'Short
    segment'), is given the copy without the claim, so both engines give the connection."""
    path = _fcs2_capture(tmp_path, "none.pcap", b"")
    for engine, a in _engines(path).items():
        row = a.flows.iloc[0]
        assert (row.history, row.orig_bytes, row.resp_bytes) == ("ShADdFf", 63, 30), engine
        assert [w for w in _warnings(a) if "2-byte FCS" in w] == [
            "none.pcap: decode: 8 frames the file says end with a 2-byte FCS (pcap header FCS length 1, in "
            "16-bit words, or pcapng if_fcslen 2) hold an IP packet that fills them: no room for an FCS, read "
            "without one (the other frames lose their last 2 bytes, unchecked, as Wireshark takes them off)"], engine
        assert not [w for w in _warnings(a) if "shorter than" in w], engine


def test_a_2_byte_fcs_applies_to_ethernet_alone(tmp_path):
    """Wireshark applies the header's FCS length to Ethernet alone: raw IP frames keep their
    bytes (an IP packet with total length 0 under link type 101 counts the 2 trailing bytes)."""
    from kscc_traffic.capture.files import read_frames
    from kscc_traffic.capture.frames import LT_FCS2
    recs = tcp_session((AGENT, 40011), (SERVER, 13000), c_data=b"z" * 20)
    path = tmp_path / "raw.pcap"
    path.write_bytes(_head("<", 0x1400_0065) + _records([(t, bytes(p)[14:] + b"\xab\xcd") for t, p in recs], "<"))
    fr = read_frames(path)
    assert ((fr.linktype & LT_FCS2) == 0).all() and (fr.linktype == 101).all()
    eth = tmp_path / "eth.pcap"
    eth.write_bytes(_head("<", 0x1400_0001) + _records(recs, "<"))
    assert (read_frames(eth).linktype == (1 | LT_FCS2)).all()


def test_pcapng_if_fcslen_2_is_a_2_byte_fcs(tmp_path):
    """pcapng if_fcslen 2 on Ethernet: tshark takes 2 bytes off; so does the builtin decoder
    (a TSO packet's data: 63 bytes, not 65), and a frame the packet fills keeps them."""
    recs = tcp_session((AGENT, 40012), (SERVER, 13000), c_data=b"\x16\x03\x01" + b"x" * 60)

    def block(kind, body):
        body += b"\0" * (-len(body) % 4)
        return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)
    out = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)),
           block(1, struct.pack("<HHI", 1, 0, 0) + struct.pack("<HHB3x", 13, 1, 2) + struct.pack("<HH", 0, 0))]
    for i, (t, p) in enumerate(recs):
        d = bytearray(bytes(p))
        if i == 3:
            d[16:18] = b"\0\0"
            d += b"\xab\xcd"
        us = int(t * 1e6)
        out.append(block(6, struct.pack("<IIIII", 0, us >> 32, us & 0xFFFFFFFF, len(d), len(d)) + bytes(d)))
    path = tmp_path / "ng.pcapng"
    path.write_bytes(b"".join(out))
    for engine, a in _engines(path).items():
        row = a.flows.iloc[0]
        assert (row.history, row.orig_pkts, row.orig_bytes) == ("ShADFf", 5, 63), engine
        assert [w.split(" frames the file")[0] for w in _warnings(a) if "2-byte FCS" in w] == ["ng.pcapng: decode: 6"], engine


def test_ip_packets_cut_in_frames_4_bytes_short_are_not_said_whole(tmp_path):
    """Frames that say they lost exactly 4 bytes (an FCS's worth: not counted as a snaplen cut)
    and whose IP packets are cut by them were said to 'claim to be whole' (break-it s59 #3); the
    line says they claim at most 4 bytes short, and counts them. Frames that say nothing keep
    the old line."""
    recs = tcp_session((AGENT, 40030), (SERVER, 13000), c_data=b"q" * 40, s_data=b"r" * 40)
    path = tmp_path / "cut4.pcap"
    out = []
    for t, p in recs:
        d = bytes(p)
        us = round(t * 1e6)
        keep = d[:-4] if len(d) > 60 else d
        out.append(struct.pack("<IIII", us // 10**6, us % 10**6, len(keep), len(d)) + keep)
    path.write_bytes(_head("<") + b"".join(out))
    for engine, a in _engines(path).items():
        lines = [w for w in _warnings(a) if "captured shorter than" in w]
        assert lines == [
            "cut4.pcap: 2 IP packets captured shorter than their IP length says, though the frames claim to be "
            "whole or at most 4 bytes short (2 frames: taken as an FCS left off, not a snaplen cut) (cut by the "
            "capturing tool without saying so, a snaplen just 4 bytes short of the packets, pktmon's 128-byte "
            "default?, or a bad IP length): TLS, HTTP and DNS checks see only the bytes kept (column payload_cut)"], engine
    whole = tmp_path / "whole.pcap"
    whole.write_bytes(_head("<") + b"".join(
        struct.pack("<IIII", 1000, i, len(bytes(p)[:-4]) if len(bytes(p)) > 60 else len(bytes(p)),
                    len(bytes(p)[:-4]) if len(bytes(p)) > 60 else len(bytes(p)))
        + (bytes(p)[:-4] if len(bytes(p)) > 60 else bytes(p)) for i, (t, p) in enumerate(recs)))
    lines = [w for w in _warnings(analyze_file(whole, load_rules())) if "captured shorter than" in w]
    assert [w.split(" (cut by")[0] for w in lines] == [
        "whole.pcap: 2 IP packets captured shorter than their IP length says, though the frames claim to be whole"]


def test_ipv6_mobility_hip_and_shim6_headers_end_the_chain(tmp_path):
    """The builtin decoder walked the Mobility Header (135), HIP (139) and Shim6 (140) as
    extension headers, to their Next Header / Payload Proto (59 by RFC 6275 §6.1.1 and RFC 7401
    §5.1: rows of protocol 59 and 0 bytes, a TCP flow behind a Mobility Header whose Payload
    Proto said 6), while Wireshark, and so the tshark engine, ends the chain there (one flow of
    protocol 135 with the headers' bytes). Both engines, and both decoder paths, now give the
    rows Wireshark gives: a Shim6 payload extension header (RFC 5533 §5.1, P bit set) is still
    walked to the TCP segment after it, a Shim6 control message ends the chain."""
    from scapy.layers.inet import TCP
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt
    from scapy.layers.l2 import Ether

    from decodecheck import decoded
    from pcapbuild import pcap_bytes
    src, dst = "2001:db8::10", "2001:db8:1::10"
    eth = Ether(src="02:00:00:00:00:10", dst="02:00:00:00:00:01")
    mh = bytes([59, 0, 0, 0, 0, 0, 0, 0])                       # Binding Refresh Request, proto 59
    mh_tcp = bytes([6, 0, 0, 0, 0, 0, 0, 0])                    # Payload Proto 6 ("a future extension")
    syn = bytes(IPv6(src=src, dst=dst) / TCP(sport=40000, dport=13000, flags="S"))[40:]
    hip = bytes([59, 4, 0x10, 0x02]) + bytes(36)                # HIP header: 40 bytes (4 + 1) * 8
    shim6 = bytes([59, 0, 0x01, 0]) + bytes(4)                  # a Shim6 control message (P clear)
    shim6_payload = bytes([6, 0, 0x80, 0]) + b"\0\0\0\x01"     # a payload extension header (P set)
    frames = [eth / IPv6(src=src, dst=dst, nh=135) / mh,
              eth / IPv6(src=src, dst=dst, nh=135) / (mh_tcp + syn),
              eth / IPv6(src=src, dst=dst) / IPv6ExtHdrDestOpt(nh=139) / hip,
              eth / IPv6(src=src, dst=dst, nh=140) / shim6,
              eth / IPv6(src=src, dst=dst, nh=140) / (shim6_payload + syn)]
    path = tmp_path / "mh.pcap"
    path.write_bytes(pcap_bytes([(1000 + k * 0.01, bytes(f)) for k, f in enumerate(frames)]))
    p = decoded(path)
    assert p.cols["proto"].tolist() == [135, 135, 139, 140, 6]
    assert p.stats.malformed == 0
    for engine, a in _engines(path).items():
        rows = sorted(zip(a.flows.proto, a.flows.orig_pkts, a.flows.orig_bytes, a.flows.orig_ip_bytes))
        assert rows == [("135", 2, 36, 116), ("139", 1, 40, 88), ("140", 1, 8, 48), ("tcp", 1, 0, 68)], engine


@pytest.mark.parametrize("magic, extra, writer", [
    (b"\xd4\xc3\xb2\xa1", struct.pack("<IHBx", 2, 0x0800, 0), "Red Hat 6.1's (the SS990417 patch)"),
    (b"\xd4\xc3\xb2\xa1", b"\0\0\0\0", "Nokia IPSO's"),
    (b"\x34\xcd\xb2\xa1", struct.pack("<IHBBBxxx", 2, 0x0800, 0, 0, 0), "SuSE 6.3's (the SS990915 patch)")])
def test_pcap_variants_with_longer_record_headers_are_told_from_their_records(tmp_path, magic, extra, writer):
    """pcap variants that put more bytes after the 16 standard ones of each record header (Red
    Hat 6.1 and Nokia IPSO under the standard magic, SuSE 6.3 under the modified one) were read
    with the header the magic implies: 'file cut mid-record', no IP packet, no flow (the tshark
    engine read the connection, as Wireshark guesses the variant from the first records). The
    reader now tells them the same way, and says so."""
    recs = tcp_session((AGENT, 40800), (SERVER, 13000), c_data=b"\x16\x03\x01" + b"x" * 60, s_data=b"y" * 20)
    body = [magic + struct.pack("<HHiIII", 2, 4, 0, 0, 65535, 1)]
    for t, p in recs:
        d = bytes(p)
        body.append(struct.pack("<IIII", int(t), round((t % 1) * 1e6), len(d), len(d)) + extra + d)
    path = tmp_path / "variant.pcap"
    path.write_bytes(b"".join(body))
    for engine, a in _engines(path).items():
        row = a.flows.iloc[0]
        assert len(a.flows) == 1 and (row.history, row.orig_bytes, row.resp_bytes) == ("ShADdFf", 63, 20), engine
    lines = [w for w in _warnings(analyze_file(path, load_rules())) if "variant" in w]
    n = 16 + len(extra)
    assert lines == [f"variant.pcap: records with {n}-byte headers, the pcap variant {writer} tcpdump wrote (the "
                     f"{n - 16} bytes after the standard 16 skipped), as Wireshark tells it from its first records: "
                     "read so"]
    sizes = {len(np.concatenate([fr.caplen for fr in iter_frames(path, chunk_bytes=c)])) for c in (64, 200, 1 << 20)}
    assert sizes == {8}


def test_a_standard_pcap_damaged_at_its_start_is_not_taken_for_a_variant(tmp_path):
    """A standard file whose second record header is damaged is not read as a variant: the
    damage is read past as before."""
    one = tcp_session((AGENT, 40020), (SERVER, 13000), c_data=b"a" * 30)
    raw = bytearray(_head("<") + _records(one, "<"))
    first = 24 + 16 + len(bytes(one[0][1]))
    raw[first + 8:first + 16] = b"\xff" * 8            # the second record's lengths
    path = tmp_path / "dmg.pcap"
    path.write_bytes(bytes(raw))
    a = analyze_file(path, load_rules())
    assert not [w for w in _warnings(a) if "variant" in w]
    assert [w for w in _warnings(a) if "damaged record at offset" in w]
    # one record and 8 bytes after it also chain as one 24-byte-header record: not taken for a variant
    lone = tmp_path / "lone.pcap"
    lone.write_bytes(_head("<") + _records(one[:1], "<") + b"\x01" * 8)
    a = analyze_file(lone, load_rules())
    assert len(a.flows) == 1 and a.flows.iloc[0].orig_p == 40020
    assert not [w for w in _warnings(a) if "variant" in w]


def test_a_pcap_fcs_length_no_link_layer_has_is_said_and_ignored_by_both_engines(tmp_path):
    """FCS bits giving 3 words (48 bits): the builtin reader ignored them without a word, tshark
    read the frames by them and the tshark engine dropped two as failing their FCS (the flow
    ShAFf, 4 packets, 'blocked tls_failed'). A line says it; both engines read the frames whole."""
    path = _fcs2_capture(tmp_path, "fcs6.pcap", b"\xab\xcd" * 3)
    raw = bytearray(path.read_bytes())
    struct.pack_into("<I", raw, 20, 0x3400_0001)
    path.write_bytes(bytes(raw))
    for engine, a in _engines(path).items():
        row = a.flows.iloc[0]
        assert (row.history, row.orig_pkts, row.orig_bytes, row.resp_bytes) == ("ShADdFf", 5, 63, 30), engine
        assert [w for w in _warnings(a) if "48-bit" in w] == [
            "fcs6.pcap: the pcap header's FCS bits say every frame ends with a 48-bit FCS (FCS length 3, in 16-bit "
            "words), which no link layer has (16 or 32 bits): a damaged header, ignored; the frames are read whole"], engine
        assert not [w for w in _warnings(a) if "damaged (bad FCS" in w], engine


def test_a_flipped_header_whose_length_reads_as_a_cut_record_is_read_in_its_order(tmp_path):
    """A record of 256 bytes written big-endian under a little-endian header reads as 65,536
    bytes: a record 'cut by the end of the file', not damage ("file cut mid-record at offset
    634: 812 of 65552 bytes present", the second connection lost). The records that follow in
    the other order are read in it there too."""
    one = tcp_session((AGENT, 40020), (SERVER, 13000), c_data=b"a" * 30, s_data=b"b" * 20)
    two = tcp_session((AGENT, 40021), (SERVER, 13000), t0=1010.0, c_data=b"c" * 30, s_data=b"d" * 20)
    two[0] = (two[0][0], bytes(two[0][1]) + bytes(256 - len(bytes(two[0][1]))))   # (Ethernet padding)
    path = tmp_path / "flip256.pcap"
    path.write_bytes(_head("<") + _records(one, "<") + _records(two, ">"))
    for engine, a in _engines(path).items():
        assert sorted(a.flows.orig_p.tolist()) == [40020, 40021], engine
        assert [w.split(" on are")[0] for w in _warnings(a) if "byte order" in w] == [
            "flip256.pcap: 8 records from offset 634"], engine
        assert not [w for w in _warnings(a) if "cut mid-record" in w], engine
