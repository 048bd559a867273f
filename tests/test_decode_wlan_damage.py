"""Frames the capture marks as damaged, FCS checks, 802.11 fragments and 802.11s mesh data
(break-it 19 F1-F4).

- A frame the capture flags as damaged (radiotap Flags bit 0x40 "bad FCS", PPI 802.11-common
  flag "FCS invalid", pcapng ``epb_flags`` bit 24 "CRC error"), or whose FCS is there (radiotap
  flag 0x10, PPI flag "FCS present", the pcap header's FCS bits, pcapng ``if_fcslen`` 4) but does
  not match its bytes, is skipped and counted in one ``decode:`` warning line; both engines.
- 802.11 fragments (More Fragments, fragment number) are reassembled per (receiver,
  transmitter, sequence number); a fragment whose predecessor is missing is dropped and counted.
- 802.11s mesh data (QoS "Mesh Control Present" + Mesh Control field of 6, 12 or 18 bytes).
- The tshark engine reads ``wlan.da`` behind every 802.11 pseudo-header (PPI, Prism, AVS).

The captures are built here (struct + scapy for the IP packets); each is decoded by the fast
and the slow path (identical columns), and with tshark installed also by the tshark engine.
"""
from __future__ import annotations

import shutil
import struct
import zlib

import pytest

pytest.importorskip("scapy")

from scapy.all import IP, TCP, UDP, Raw  # noqa: E402

from kscc_traffic.capture.decode import DecodeCounters, decode  # noqa: E402
from kscc_traffic.capture.files import read_frames  # noqa: E402
from kscc_traffic.capture.frames import LT_DAMAGED, LT_FCS, LT_MASK  # noqa: E402
from decodecheck import decoded  # noqa: E402
from pcapbuild import pcap_bytes  # noqa: E402

AP = bytes.fromhex("02000000000a")
STA = bytes.fromhex("020000000001")
GW = bytes.fromhex("02000000000b")
BCAST = b"\xff" * 6
SNAP_V4 = b"\xaa\xaa\x03\x00\x00\x00\x08\x00"
needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")


def udp(dport: int, payload: bytes = b"x" * 40, dst: str = "203.0.113.5") -> bytes:
    return bytes(IP(src="192.0.2.10", dst=dst, id=1) / UDP(sport=50000, dport=dport) / Raw(payload))


def dot11(body: bytes, *, seq: int = 1, frag: int = 0, more: bool = False, da: bytes = GW,
          qos: bytes | None = None, fromds: bool = False) -> bytes:
    """An 802.11 data frame: ToDS (addr1 BSSID, addr2 SA, addr3 DA), or with ``fromds`` both DS
    bits (4 addresses: addr3 DA, addr4 SA); QoS data when ``qos`` (2 bytes of QoS control)."""
    fc0 = 0x88 if qos is not None else 0x08
    fc1 = (0x03 if fromds else 0x01) | (0x04 if more else 0)
    hdr = bytes([fc0, fc1]) + b"\x00\x00" + AP + STA + da + struct.pack("<H", seq << 4 | frag)
    if fromds:
        hdr += STA
    return hdr + (qos if qos is not None else b"") + body


def with_fcs(frame: bytes, good: bool = True) -> bytes:
    fcs = zlib.crc32(frame)
    return frame + struct.pack("<I", fcs if good else fcs ^ 0x10)


def radiotap(frame: bytes, flags: int) -> bytes:
    """Radiotap: version 0, length 9, present = Flags only, the Flags byte."""
    return struct.pack("<BBHIB", 0, 0, 9, 0x2, flags) + frame


def ppi80211(frame: bytes, flags: int) -> bytes:
    """PPI (link type 192) with one 802.11-common field (type 2, 20 bytes; flags at byte 8),
    then the 802.11 frame (DLT 105)."""
    common = struct.pack("<QHHHHBBbb", 0, flags, 0, 2412, 0, 0, 0, -40, -90)
    return struct.pack("<BBHI", 0, 0, 8 + 4 + len(common), 105) + struct.pack("<HH", 2, 20) \
        + common + frame


def pcap_file(records: list[bytes], linktype: int) -> bytes:
    return pcap_bytes([(1_700_000_000 + k * 0.001, r) for k, r in enumerate(records)], linktype)




def tshark_packets(tmp_path, data: bytes, name: str = "t.pcap"):
    from kscc_traffic.engines.tshark import read_packets
    path = tmp_path / name
    path.write_bytes(data)
    return read_packets(path)


def damaged_lines(stats) -> list[str]:
    return [w for w in stats.warnings if "marks as damaged" in w]


# ------------------------------------------------------------------------ damaged frames
def test_radiotap_bad_fcs_flag_skips_the_damaged_copy(tmp_path):
    """A copy of a datagram whose port was bit-flipped, flagged bad FCS (0x50), before the good
    one (0x10): only the good one is read; one warning line gives the count and the reason."""
    bad = radiotap(with_fcs(dot11(SNAP_V4 + udp(23103))), 0x50)
    good = radiotap(with_fcs(dot11(SNAP_V4 + udp(23101))), 0x10)
    data = pcap_file([bad, good], 127)
    p = decoded(data)
    assert p["dport"].tolist() == [23101] and p["frame"].tolist() == [1]
    assert p.stats.malformed == 1 and p.stats.non_ip == 0
    assert damaged_lines(p.stats) == [
        "decode: 1 frame the capture marks as damaged (bad FCS/CRC error) skipped (1 flagged by the "
        "capture): its bytes are not the bytes that were sent (a monitor-mode capture keeps frames "
        "that failed their check; the good retransmission, when captured, is read)"]
    # the FCS is not part of the packet: the datagram's bytes are all there, no more
    assert p["pl_cap"].tolist() == [40] and p.payload(0) == b"x" * 40
    assert not any("malformed) skipped" in w for w in p.stats.warnings)


def test_radiotap_fcs_present_but_wrong_is_skipped():
    good = radiotap(with_fcs(dot11(SNAP_V4 + udp(23101))), 0x10)
    wrong = radiotap(with_fcs(dot11(SNAP_V4 + udp(23101)), good=False), 0x10)
    p = decoded(pcap_file([wrong, good, wrong], 127))
    assert p["frame"].tolist() == [1] and p.stats.malformed == 2
    assert "(2 with an FCS that does not match their bytes)" in damaged_lines(p.stats)[0]


def test_radiotap_fcs_cut_by_the_snaplen_is_not_checked():
    """A frame the snaplen cut keeps its bytes unchecked (its FCS is not all there)."""
    frame = radiotap(with_fcs(dot11(SNAP_V4 + udp(23101)), good=False), 0x10)
    rec = struct.pack("<IIII", 1_700_000_000, 0, len(frame) - 2, len(frame)) + frame[:-2]
    hdr = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 127)
    p = decoded(hdr + rec)
    assert p["dport"].tolist() == [23101] and not damaged_lines(p.stats)


def test_ppi_fcs_invalid_flag_and_fcs_present(tmp_path):
    """PPI 802.11-common flags: 0x0005 (FCS present, FCS invalid) is skipped; 0x0001 with a
    matching FCS is read, the FCS stripped; 0x0001 with a wrong FCS is skipped."""
    bad = ppi80211(with_fcs(dot11(SNAP_V4 + udp(23103))), 0x0005)
    good = ppi80211(with_fcs(dot11(SNAP_V4 + udp(23101))), 0x0001)
    wrong = ppi80211(with_fcs(dot11(SNAP_V4 + udp(23105)), good=False), 0x0001)
    data = pcap_file([bad, good, wrong], 192)
    p = decoded(data)
    assert p["dport"].tolist() == [23101] and p["pl_cap"].tolist() == [40]
    line = damaged_lines(p.stats)[0]
    assert line.startswith("decode: 2 frames the capture marks as damaged") and \
        "(1 flagged by the capture, 1 with an FCS that does not match its bytes)" in line


def test_pcap_header_fcs_bits_check_ethernet_fcs():
    """pcap link-type field 0x24000001 (FCS length 2 x 16 bits present): every Ethernet frame
    ends with its FCS; a frame whose FCS does not match is skipped, and the FCS of the others
    is not read as bytes of the packet."""
    eth = GW + STA + b"\x08\x00"
    big = udp(23101, b"y" * 100)
    frames = [with_fcs(eth + udp(23101)), with_fcs(eth + udp(23103), good=False),
              with_fcs(eth + big)]
    p = decoded(pcap_file(frames, 0x24000001))
    assert p["dport"].tolist() == [23101, 23101] and p["frame"].tolist() == [0, 2]
    assert p["pl_cap"].tolist() == [40, 100]
    assert "(1 with an FCS that does not match its bytes)" in damaged_lines(p.stats)[0]
    # the same bytes without the FCS bits: Ethernet padding/trailer, nothing checked
    p = decoded(pcap_file(frames, 1))
    assert p["dport"].tolist() == [23101, 23103, 23101] and not damaged_lines(p.stats)


def test_linktype_flag_bits_from_the_pcap_header():
    fr = read_frames(pcap_file([GW + STA + b"\x08\x00" + udp(1)], 0x24000001))
    assert fr.linktype.tolist() == [1 | LT_FCS]
    fr = read_frames(pcap_file([GW + STA + b"\x08\x00" + udp(1)], 1))
    assert fr.linktype.tolist() == [1]


def _opt(code: int, value: bytes, order: str = "<") -> bytes:
    return struct.pack(order + "HH", code, len(value)) + value + b"\x00" * (-len(value) % 4)


def pcapng(frames: list[tuple[bytes, bytes]], order: str = "<", idb_opts: bytes = b"") -> bytes:
    """A pcapng file: one Ethernet interface (options ``idb_opts``), then one Enhanced Packet
    Block per (frame, options)."""
    def block(kind: int, body: bytes) -> bytes:
        n = 12 + len(body)
        return struct.pack(order + "II", kind, n) + body + struct.pack(order + "I", n)
    out = [block(0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1)),
           block(1, struct.pack(order + "HHI", 1, 0, 0) + idb_opts
                 + (_opt(0, b"", order) if idb_opts else b""))]
    for k, (data, opts) in enumerate(frames):
        ts = 1_700_000_000_000_000 + k * 1000
        body = struct.pack(order + "IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data))
        body += data + b"\x00" * (-len(data) % 4) + opts
        out.append(block(6, body))
    return b"".join(out)


@pytest.mark.parametrize("order", ["<", ">"])
def test_pcapng_epb_flags_crc_error_and_if_fcslen(tmp_path, order):
    """``epb_flags`` bit 24 (CRC error) marks the frame damaged, wherever the option is among
    the block's options (after a comment here); ``if_fcslen`` 4 makes every frame's FCS
    checked; a block without options is read as before."""
    eth = GW + STA + b"\x08\x00"
    crc_err = _opt(1, b"kept by the tap", order) + _opt(2, struct.pack(order + "I", 0x0100_0001), order) \
        + _opt(0, b"", order)
    inbound = _opt(2, struct.pack(order + "I", 0x1), order) + _opt(0, b"", order)
    frames = [(with_fcs(eth + udp(23103)), crc_err), (with_fcs(eth + udp(23101)), inbound),
              (with_fcs(eth + udp(23101, b"z" * 40)), b""),
              (with_fcs(eth + udp(23107), good=False), b"")]
    data = pcapng(frames, order, _opt(13, b"\x04", order))
    fr = read_frames(data)
    assert fr.linktype.tolist() == [1 | LT_FCS | LT_DAMAGED, 1 | LT_FCS, 1 | LT_FCS, 1 | LT_FCS]
    assert (fr.linktype & LT_MASK).tolist() == [1] * 4
    p = decoded(data)
    assert p["dport"].tolist() == [23101, 23101] and p["frame"].tolist() == [1, 2]
    assert p.stats.malformed == 2
    assert "(1 flagged by the capture, 1 with an FCS that does not match its bytes)" in \
        damaged_lines(p.stats)[0]
    # without if_fcslen: the CRC error flag alone, the FCS not checked (the heuristics of
    # Wireshark's "trailer or FCS" are not followed)
    data = pcapng(frames, order)
    assert read_frames(data).linktype.tolist() == [1 | LT_DAMAGED, 1, 1, 1]
    p = decoded(data)
    assert p["dport"].tolist() == [23101, 23101, 23107]


@needs_tshark
def test_tshark_engine_skips_the_same_damaged_frames(tmp_path):
    eth = GW + STA + b"\x08\x00"
    order = "<"
    crc_err = _opt(2, struct.pack("<I", 0x0100_0001)) + _opt(0, b"")
    frames = [(with_fcs(eth + udp(23103)), crc_err), (with_fcs(eth + udp(23101)), b""),
              (with_fcs(eth + udp(23107), good=False), b"")]
    cases = {
        "ng.pcapng": pcapng(frames, order, _opt(13, b"\x04")),
        "rt.pcap": pcap_file([radiotap(with_fcs(dot11(SNAP_V4 + udp(23103))), 0x50),
                              radiotap(with_fcs(dot11(SNAP_V4 + udp(23101))), 0x10),
                              radiotap(with_fcs(dot11(SNAP_V4 + udp(23107)), good=False), 0x10)], 127),
        "ppi.pcap": pcap_file([ppi80211(with_fcs(dot11(SNAP_V4 + udp(23103))), 0x0005),
                               ppi80211(with_fcs(dot11(SNAP_V4 + udp(23101))), 0x0001),
                               ppi80211(with_fcs(dot11(SNAP_V4 + udp(23107)), good=False), 0x0001)],
                              192),
        "fcsbits.pcap": pcap_file([with_fcs(eth + udp(23101)), with_fcs(eth + udp(23107), good=False)],
                                  0x24000001),
    }
    for name, data in cases.items():
        ours = decoded(data)
        theirs = tshark_packets(tmp_path, data, name)
        assert theirs["dport"].tolist() == ours["dport"].tolist() == [23101], name
        assert theirs["frame"].tolist() == ours["frame"].tolist(), name
        assert [w.split(": ", 1)[1] for w in damaged_lines(theirs.stats)] == damaged_lines(ours.stats), name


# ------------------------------------------------------------------------ 802.11 fragments
def fragments(msdu: bytes, size: int, seq: int = 7, **kw) -> list[bytes]:
    parts = [msdu[i:i + size] for i in range(0, len(msdu), size)]
    return [dot11(part, seq=seq, frag=k, more=k + 1 < len(parts), **kw) for k, part in enumerate(parts)]


def test_dot11_fragments_are_reassembled():
    """An MSDU in 3 fragments (the TLS certificate of a real capture was in the second): one
    row, of the last fragment's frame, with the whole payload; a retransmitted fragment (Retry)
    is ignored; frames of other MSDUs in between keep their rows."""
    payload = bytes(range(256)) * 3
    msdu = SNAP_V4 + bytes(IP(src="192.0.2.10", dst="203.0.113.5", id=9)
                           / TCP(sport=50000, dport=23101, flags="PA", seq=5, ack=6) / Raw(payload))
    fr = fragments(msdu, 300)
    assert len(fr) == 3
    other = dot11(SNAP_V4 + udp(53), seq=8)
    p = decoded(pcap_file([fr[0], other, fr[1], fr[1], fr[2]], 105))
    assert p["frame"].tolist() == [1, 4] and p["dport"].tolist() == [53, 23101]
    assert p["pl_cap"].tolist() == [40, len(payload)] and p.payload(1) == payload
    assert p.stats.non_ip == 1 and p.stats.malformed == 0     # the retransmitted copy
    assert not any("802.11 fragment" in w for w in p.stats.warnings)


def test_dot11_fragment_missing_drops_the_msdu_with_a_warning():
    msdu = SNAP_V4 + udp(23101, b"q" * 700)
    fr = fragments(msdu, 256)
    assert len(fr) == 3
    p = decoded(pcap_file([fr[0], fr[2], dot11(SNAP_V4 + udp(53), seq=9)], 105))
    assert p["dport"].tolist() == [53]
    assert p.stats.non_ip == 2
    assert ("decode: 2 802.11 fragments of MSDUs that could not be reassembled (a fragment missing "
            "from the capture) dropped: the packets they carried are missing from the flows") \
        in p.stats.warnings
    # a first fragment never followed by the rest: dropped at the end, counted
    p = decoded(pcap_file([fr[0], fr[1]], 105))
    assert len(p) == 0 and p.stats.non_ip == 2
    assert any(w.startswith("decode: 2 802.11 fragments") for w in p.stats.warnings)


def test_dot11_fragments_radiotap_fcs_and_broadcast():
    """Fragments behind radiotap with FCS: each fragment's FCS is checked and stripped before
    the bodies are joined; the destination of the first fragment gives l2_bcast."""
    msdu = SNAP_V4 + udp(15000, b"b" * 500, dst="192.0.2.255")
    fr = [radiotap(with_fcs(f), 0x10) for f in fragments(msdu, 200, da=BCAST)]
    p = decoded(pcap_file(fr, 127))
    assert p["dport"].tolist() == [15000] and p["l2_bcast"].tolist() == [True]
    assert p.payload(0) == b"b" * 500


def test_dot11_fragments_across_chunks_are_carried():
    """The frames of an MSDU still open when a chunk's frames run out are named in
    ``open_fragment_frames`` (the chunked reader decodes them again with the next chunk)."""
    msdu = SNAP_V4 + udp(23101, b"c" * 600)
    fr = fragments(msdu, 256)
    c = DecodeCounters()
    p = decode(read_frames(pcap_file([dot11(SNAP_V4 + udp(53), seq=3), fr[0], fr[1]], 105)),
               counters=c)
    assert p["dport"].tolist() == [53] and c.open_fragment_frames == [1, 2]


def test_dot11_fragments_whole_capture_chunked(tmp_path):
    """Read in chunks of 1 KiB (the MSDU's fragments straddle chunk boundaries), the
    fragmented MSDU gives the same flow as read whole."""
    import pandas as pd

    from kscc_traffic.chunked import ChunkedAnalysis
    from kscc_traffic.rules import load_rules
    payload = b"k" * 1800                    # 10 fragments: more than one chunk
    recs = [dot11(SNAP_V4 + udp(2000 + k), seq=100 + k) for k in range(40)]
    recs[20:20] = fragments(SNAP_V4 + udp(23101, payload), 200, seq=5)
    path = tmp_path / "frag.pcap"
    path.write_bytes(pcap_file(recs, 105))
    got = []
    for chunk in (1 << 20, 1024):
        run = ChunkedAnalysis(path, load_rules(), "frag.pcap", chunk_bytes=chunk)
        flows = pd.concat(list(run.batches()), ignore_index=True)
        got.append(sorted(zip(flows["resp_p"].tolist(), flows["orig_bytes"].tolist())))
        assert not any("802.11 fragment" in w for w in run.stats.warnings), run.stats.warnings
    assert got[0] == got[1] and len(got[0]) == 41 and (23101, len(payload)) in got[0]


@needs_tshark
def test_tshark_engine_agrees_on_fragments(tmp_path):
    msdu = SNAP_V4 + udp(23101, b"f" * 700)
    data = pcap_file(fragments(msdu, 256), 105)
    ours, theirs = decoded(data), tshark_packets(tmp_path, data)
    assert theirs["dport"].tolist() == ours["dport"].tolist() == [23101]
    assert theirs["payload_len"].tolist() == ours["payload_len"].tolist() == [700]
    assert theirs["frame"].tolist() == ours["frame"].tolist() == [2]


# ------------------------------------------------------------------------ 802.11s mesh
def mesh_control(ae: int, seq: int = 1) -> bytes:
    return bytes([ae, 5]) + struct.pack("<I", seq) + b"\x02\x00\x00\x00\x00\x0c" * ae


@pytest.mark.parametrize("ae", [0, 1, 2])
def test_mesh_data_frames_are_read(ae):
    """QoS data with Mesh Control Present (QoS control bit 8), 4 addresses: the Mesh Control
    field (6 + 6 x address extension mode bytes) is skipped; the same QoS bit in a frame
    without FromDS is no mesh frame (a plain QoS TXOP value): LLC/SNAP follows directly."""
    body = mesh_control(ae) + SNAP_V4 + udp(23701)
    p = decoded(pcap_file([dot11(body, qos=b"\x00\x01", fromds=True),
                           dot11(SNAP_V4 + udp(23702), qos=b"\x00\x01")], 105))
    assert p["dport"].tolist() == [23701, 23702] and p.stats.non_ip == 0


def test_mesh_group_addressed_broadcast():
    """A group-addressed mesh frame (FromDS only: addr1 the destination) keeps l2_bcast."""
    hdr = bytes([0x88, 0x02]) + b"\x00\x00" + BCAST + AP + STA + struct.pack("<H", 3 << 4)
    frame = hdr + b"\x00\x01" + mesh_control(1) + SNAP_V4 + udp(15000, dst="192.0.2.255")
    p = decoded(pcap_file([frame], 105))
    assert p["dport"].tolist() == [15000] and p["l2_bcast"].tolist() == [True]


@needs_tshark
def test_tshark_engine_agrees_on_mesh(tmp_path):
    data = pcap_file([dot11(mesh_control(2) + SNAP_V4 + udp(23701), qos=b"\x00\x01", fromds=True)], 105)
    ours, theirs = decoded(data), tshark_packets(tmp_path, data)
    assert theirs["dport"].tolist() == ours["dport"].tolist() == [23701]


# ------------------------------------------------------------------------ tshark: wlan.da
def prism(frame: bytes) -> bytes:
    """A Prism monitor header: message code, length 144 (little-endian), device name, items."""
    return struct.pack("<II16s", 0x41, 144, b"wlan0") + b"\x00" * (144 - 24) + frame


def avs(frame: bytes) -> bytes:
    """An AVS (wlancap) v1 header: version 0x80211001, length 64 (big-endian), the rest 0."""
    return struct.pack(">II", 0x80211001, 64) + b"\x00" * 56 + frame


@needs_tshark
@pytest.mark.parametrize("linktype,wrap", [(192, lambda f: ppi80211(f, 0)), (119, prism), (163, avs),
                                           (127, lambda f: radiotap(f, 0)), (105, lambda f: f)])
def test_tshark_engine_broadcast_behind_every_80211_header(tmp_path, linktype, wrap):
    frames = [wrap(dot11(SNAP_V4 + udp(15000, dst="192.0.2.255"), da=BCAST)),
              wrap(dot11(SNAP_V4 + udp(15000, dst="192.0.2.255"), da=GW))]
    data = pcap_file(frames, linktype)
    ours, theirs = decoded(data), tshark_packets(tmp_path, data)
    assert ours["l2_bcast"].tolist() == theirs["l2_bcast"].tolist() == [True, False]


# ------------------------------------------------------------------------ tshark: MPLS misread
@needs_tshark
def test_tshark_engine_names_the_ethernet_pseudowire_it_reads_as_bogus_ip(tmp_path):
    """Ethernet over MPLS without control word whose inner destination MAC begins with 4: the
    builtin decoder reads the inner packet; Wireshark takes the payload for IPv4 of a bogus
    header length. The tshark engine says so in its own line, and its no-IP line counts the
    malformed frames (break-it 19 F5: '149 frames (3 non-IP)' left 146 unaccounted)."""
    inner = bytes.fromhex("42000000000c") + STA + b"\x08\x00" + udp(23101)
    mpls = struct.pack("!I", 100 << 12 | 1 << 8 | 64)
    frame = GW + STA + b"\x88\x47" + mpls + inner
    arp = BCAST + STA + b"\x08\x06" + bytes(28)
    data = pcap_file([frame, frame, arp], 1)
    assert decoded(data)["dport"].tolist() == [23101, 23101]
    theirs = tshark_packets(tmp_path, data, "pw.pcap")
    assert len(theirs) == 0 and theirs.stats.malformed == 2 and theirs.stats.non_ip == 1
    lines = [w for w in theirs.stats.warnings if "MPLS frames whose payload tshark reads" in w]
    assert lines and lines[0].startswith("pw.pcap: 2 MPLS frames") and "builtin engine" in lines[0]
    theirs.stats.records = 3
    theirs.stats.warn_no_ip("pw.pcap")
    assert "pw.pcap: no IP packet among its 3 frames (1 non-IP, 2 malformed): nothing to analyse " \
        "(a capture on the wrong interface, or of another link type?)" in theirs.stats.warnings


def test_dot11_fragments_past_the_receive_lifetime_are_another_msdu():
    """A sequence number used again after the receive lifetime (512 TU) starts a new MSDU: the
    stale first fragment is dropped and counted, the new MSDU is read."""
    old = fragments(SNAP_V4 + udp(23103, b"o" * 500), 256, seq=4)
    new = fragments(SNAP_V4 + udp(23101, b"n" * 400), 256, seq=4)
    assert len(new) == 2
    recs = [(1_700_000_000.0, old[0]), (1_700_000_001.0, new[0]), (1_700_000_001.001, new[1])]
    p = decoded(pcap_bytes(recs, 105))
    assert p["dport"].tolist() == [23101] and p["frame"].tolist() == [2]
    assert any(w.startswith("decode: 1 802.11 fragment of MSDUs") for w in p.stats.warnings)
