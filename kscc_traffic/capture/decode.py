"""Frames -> Packets: the columnar link/IP/transport decoder. See docs/architecture.md.

Two paths fill the same per-frame columns:

- a vectorised numpy **fast path** for the common case: Ethernet (up to 3 VLAN tags of TPID
  0x8100/0x88a8/0x9100), LINUX_SLL, LINUX_SLL2, raw IP (101, 12, 14, 228, 229), NULL/LOOP ->
  IPv4 (with or without options, not fragmented) or IPv6 without extension headers -> TCP, UDP,
  ICMP, ICMPv6 or any other protocol but tunnels and AH, headers fully captured; it also counts the
  common non-IP Ethernet frames (ARP, LLDP, STP ...). Per chunk of frames it copies the first
  96 bytes of each frame with one gather (overlapping 96-byte records over the buffer, so each
  copy is a memcpy), then reads every field as a strided big-endian view of that matrix
  (``_chunk``); when built, the same decode runs as one C loop over the frames instead
  (:mod:`._headers`, ``capture/_headers.c``: the same rows, ``tests/test_headers_compiled.py``);
- a per-frame pure-Python **slow path** (:mod:`._slowpath`) for everything else: other link types
  (802.11 with its fragments reassembled and 802.11s Mesh Control skipped, radiotap with its
  FCS, data-pad and bad-FCS flags (also behind a LINUX_SLL/SLL2 header of ARPHRD type 803, a
  monitor-mode interface in ``tcpdump -i any``, as a Frame Relay frame behind one of type 770:
  their protocol field, below 0x600, leaves such a frame to this path), PPI's FCS flags, PPP, Cisco HDLC, ATM LLC/SNAP; the headers
  that give the packet's start or family: NFLOG's TLVs in either byte order, PFLOG, ENC, IPNET,
  PKTAP and PPI with the frame they announce; ERF records, PPPoE sessions, FDDI, Token Ring, Sun
  ATM, IEEE 1394, IP over FC and Frame Relay: ``SlowDecoder._other_link``; Ethernet behind a
  netANALYZER status word, with or without preamble, or a Linux DSA switch tag:
  ``SlowDecoder._device_ether``), LLC/SNAP, PPPoE, MPLS, deeper VLAN
  stacks, the link-layer shims some switches insert before the ethertype (Cisco MetaData
  0x8909, VN-Tag 0x8926, E-Tag 0x893F, Arista timestamp 0xD28B, integrity-only MACsec 0x88E5:
  :data:`._slowpath.L2_SHIMS`), IPv6 extension headers, IPv4/IPv6 authentication headers (AH:
  the row is the transport inside; ESP is encrypted and stays protocol 50), IPv4/IPv6 fragments
  (reassembled, :mod:`._ipfrag`), tunnels (GRE incl. WCCP redirection, PPTP, ERSPAN, VXLAN
  (UDP 4789, and 8472 when it passes :meth:`._slowpath.SlowDecoder._vxlan_linux`'s checks),
  VXLAN-GPE, Geneve, GTP-U, L2TP, IP-in-IP, Ethernet in IP (protocol 143: SRv6 End.DX2/End.DT2),
  Teredo, LISP data (UDP 4341), MPLS in UDP (6635), TZSP (37008), Ethernet over MPLS, 802.1ah PBB: the inner
  packet is emitted; an Ethernet frame after ethertype 0x6558, as a LINUX_SLL header of a GRE
  device gives it, is read as the frame's own link layer), cut headers, and every
  frame the fast path is unsure of (UDP to or from the tunnel ports 4789, 8472, 4790, 6081,
  2152, 1701, 3544, 4341, 6635, 37008 included). These frames are rare: the
  fast path only recognises them and leaves them to the slow path.

``decode(frames, fast=False)`` sends every frame through the slow path; the result is identical
(tests check it on every test input and corpus file).

Rules both paths share (units: bytes):

- one row per IP datagram, in frame order; ``frame`` is the record index (an 802.11 A-MSDU gives
  one row per subframe, in their order, all with the frame's index and time). A reassembled datagram
  is one row with the timestamp and frame of the fragment that completed it; its payload is
  appended after the capture bytes, so ``Packets.buf`` is then ``frames.buf + extra``;
  fragments never completed become one row each (``sport``/``dport`` -1 except for a first
  fragment whose transport header was captured; ``payload_len`` = bytes the fragment carries),
  marked ``unreassembled`` and without payload (``pl_off`` -1, ``pl_cap`` 0): the datagram
  never reached a receiver's transport layer whole, so none of its bytes is read as DNS, TLS,
  HTTP (Wireshark dissects no application in it either, Zeek hands it to no analyzer);
- ``ip_len``: IPv4 total length / IPv6 40 + payload length, from the header. When that length
  is 0: for IPv6 the Jumbo Payload option (RFC 2675) if the hop-by-hop header carries one, else
  (TSO/GSO, Linux BIG TCP) the datagram is the rest of the frame, including the bytes the snaplen
  cut off (original minus captured length) when it runs to the frame's end; ``payload_len`` from
  the headers: TCP ip payload -
  data offset (0 when a first fragment is shorter than its data offset; past the IP payload of a
  whole datagram, or below 5, the packet is malformed; -1 if the TCP header was cut), UDP length - 8 (ip payload - 8 if the UDP
  length is inconsistent), ICMP/ICMPv6 ip payload - 8 (bytes after the 8-byte ICMP header),
  other protocols the whole IP payload ("ip payload": after IPv6 extension headers and AH);
- ``pl_off``/``pl_cap``: offset in ``Packets.buf`` and captured length of the payload
  (``pl_cap`` <= ``payload_len``); ``pl_off`` -1 when nothing of it was captured;
- cut headers keep what was captured: TCP/UDP ports when the first 4 transport bytes are there
  (else -1), ICMP type/code likewise; a cut IPv6 extension chain (or AH) gives the last header
  type reached as ``proto``. Ports are only ever set for TCP/UDP. A TCP header cut before
  its 16th byte (the end of the window field; a snaplen inside it) has ``payload_len`` -1
  (unknown: :data:`._slowpath.TCP_HDR_CUT`), ``tcp_flags``/``seq``/``ack`` 0, ``tcp_win`` and ``l4_sum`` -1,
  as Wireshark shows it (ports, no flags nor ``tcp.len``; Zeek skips such a packet). From 16
  bytes on, the fields captured are read and ``payload_len`` is the ip payload - data offset
  (Wireshark's ``tcp.len``, also when the options or the checksum are cut; ``l4_sum`` -1 without
  the checksum). A UDP or ICMP
  header cut keeps ``payload_len`` from the IP length (ip payload - 8);
- ``tcp_flags``: TCP byte 13, plus the NS bit (byte 12 bit 0) as 0x100;
- IPv6 ``dst_hi``/``dst_lo``: the final destination when a routing header still has segments
  left (type 0: the last address of its list; type 2, Mobile IPv6: its home address; type 4,
  an SRv6 Segment Routing Header: Segment List[0]; :func:`._slowpath.routing_final`), the
  address the destination's transport layer sees (RFC 8200 §8.1) and Zeek keys the connection
  on; else the header's destination. ``src_hi``/``src_lo``: the home address of a Mobile IPv6
  Home Address option in a Destination Options header (:func:`._slowpath.home_address`: a
  mobile node away from home, RFC 6275 §9.3.1, as Wireshark's conversations show it), else the
  header's source;
- ``vlan``: see :func:`._slowpath.vlan_value`; ``l2_bcast``: Ethernet/802.11 destination
  ff:ff:ff:ff:ff:ff, or SLL/SLL2 packet type 1; ``l2_out``: SLL/SLL2 packet type 4 (sent by
  the capturing host: the cooked header records no destination), False for other link layers
  and for a tunnelled packet. Both describe the link layer that carried the
  emitted packet. For a tunnelled packet that is the tunnel's, never the outer frame's: a
  tunnel that carries an Ethernet frame (VXLAN, VXLAN-GPE with next protocol 3, Geneve and
  GRE with protocol type 0x6558, ERSPAN II/III, Ethernet over MPLS with or without control
  word, 802.1ah PBB: the customer frame after the I-TAG, IP protocol 143) gives the inner frame's
  VLAN tags (the outer tags are dropped, not combined) and destination; a tunnel that carries
  IP directly (IP-in-IP, 6in4, GRE or Geneve with an IP protocol type, WCCP-redirected GRE,
  PPP in PPTP/L2TP, GTP-U, VXLAN-GPE with next protocol 1 or 2, Teredo) gives ``vlan`` 0 and
  ``l2_bcast`` False, as a raw-IP link would. A link-layer shim (CMD, VN-Tag, E-Tag, Arista,
  MACsec) changes neither: VLAN tags before and after it are the frame's. The inner frame is
  the real one (a mirrored or bridged frame; the outer header is the transport to the
  collector or the other end of the overlay, the same for unrelated traffic and possibly
  different for the two directions of one connection), which is also what Wireshark shows and
  Zeek analyses (a new packet of the tunnel's link type). ``vlan`` is part of the flow key
  (:func:`kscc_traffic.flows.build_flows`, the uid, the IP reassembly key, the match of ICMP
  errors): the two halves of a mirrored connection that reach the collector with different
  outer VLANs are one flow, and the same connection seen natively and through ERSPAN keys alike.
  (A 5-tuple whose directions come on different VLAN stacks, each stack one-way, is one flow
  all the same: ``flows._one_way_vlans_joined``.)

Counters added to the returned ``stats`` (a copy of ``frames.stats``): ``ip_packets`` (rows),
``non_ip``, ``malformed``, ``unsupported_linktypes``; warnings name unsupported link types,
frames skipped as damaged (the capture's bad-FCS / CRC-error marks, an FCS that does not match:
:func:`damaged_note`; also in ``malformed``), 802.11 fragments that could not be reassembled
(:func:`dot11_fragments_note`; also in ``non_ip``), malformed frames, frames nested deeper
than the decoder reads (:func:`too_deep_note`; also in ``malformed``), encrypted (Protected) 802.11 data frames and encrypted MACsec frames (both
also counted in ``non_ip``), tunnels (packets decoded as their inner packet, each frame once,
by its outermost tunnel's kind: a tunnel whose payload was not IP or was malformed is not
counted), overlapping fragments (IPv4: the first copy of each byte kept; IPv6: the datagram
dropped whole, RFC 5722: :func:`overlap_dropped_note`) and unreassembled fragments, TCP resets
skipped for a wrong checksum (:func:`bad_reset_checksums`, :func:`bad_reset_sum_note`: no row), and IPsec ESP packets (rows of protocol 50, kept: their payload is
encrypted, the connections inside cannot be seen; :func:`esp_note`). A damaged or cut shim or tunnel header is ``malformed`` (but a UDP tunnel's datagram
whose inner packet the snaplen cut before its headers end is the outer UDP row, as Wireshark's
conversations keep it); one that is
not what its ethertype or port suggests (another GTP message, VXLAN-GPE carrying NSH, an Arista
subtype other than the timestamp) leaves the frame not IP (shims) or the outer UDP datagram as
the row (UDP tunnels), as Wireshark shows it.
"""
from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass, field as dc_field, replace

import numpy as np

from ._slowpath import (AF_INET6, ARPHRD_NETLINK, ETH_BRIDGED, GENEVE_PORT, GTPU_PORT, IPPROTO_ETHERIP,
                        IPPROTO_ETHERNET, IPV6_EXT, SHIM6,
                        JUMBO_LLC, L2_SHIMS, L2TP_PORT, LISP_DATA_PORT, MAX_L2_SHIMS, MAX_MPLS_LABELS,
                        MAX_TUNNEL_DEPTH, MAX_VLAN_TAGS, MPLS_UDP_PORT, NSH_ETHERTYPE, GRE_UDP_PORT,
                        ROW_FIELDS, TEREDO_PORT, TZSP_PORT, VXLAN_GPE_PORT, VXLAN_LINUX_PORT, VXLAN_PORT,
                        SlowDecoder)
from .frames import LT_DAMAGED, LT_FCS, LT_FCS2, LT_MASK, Frames
from .packets import PACKET_COLUMNS, Packets
from .resync import sum16

try:   # the fast path's header decode compiled (optional: _chunk's numpy gives the same rows)
    from . import _headers
except ImportError:  # pragma: no cover - depends on the build
    _headers = None

__all__ = ["decode", "SUPPORTED_LINKTYPES", "LINKTYPE_NAMES", "esp_note"]

#: IP protocol number of IPsec ESP (RFC 4303): its payload is encrypted
IPPROTO_ESP = 50


def tunnel_note(tunnels: dict) -> str:
    """The warning line for packets decoded as the inner packet of a tunnel (``tunnels``: kind ->
    packets, each frame once, under its outermost tunnel's kind; both engines)."""
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(tunnels.items()))
    return (f"decode: {sum(tunnels.values())} tunnelled packets decoded as their inner packet, "
            f"outer headers dropped ({kinds})")


def esp_note(k: int) -> str:
    """The warning line (without the capture's name) about ``k`` IPsec ESP packets
    (:func:`esp_count`; both engines)."""
    return (f"decode: {k} IPsec ESP packet{'s' if k != 1 else ''} (IP protocol 50, or in UDP 4500) "
            f"{'were' if k != 1 else 'was'} encrypted: the connections inside cannot be seen nor "
            "classified (shown as esp flows, or UDP 4500 ones through a NAT, between the VPN endpoints; "
            "capture where the traffic "
            "is not encrypted: on the host, or inside the VPN gateway)")

#: LINKTYPE_* values the decoder reads, with their names
LINKTYPE_NAMES: dict[int, str] = {
    0: "NULL", 1: "ETHERNET", 9: "PPP", 12: "RAW (BSD)", 14: "RAW (OpenBSD)", 50: "PPP_HDLC",
    101: "RAW", 105: "IEEE802_11", 108: "LOOP", 113: "LINUX_SLL", 127: "IEEE802_11_RADIOTAP",
    228: "IPV4", 229: "IPV6", 276: "LINUX_SLL2", 204: "PPP_WITH_DIR",
    100: "ATM_RFC1483", 11: "ATM_RFC1483 (BSD DLT 11)", 219: "MPLS", 143: "DOCSIS", 178: "JUNIPER_ETHER", 104: "C_HDLC", 109: "ENC", 117: "PFLOG", 192: "PPI", 226: "IPNET",
    239: "NFLOG", 258: "PKTAP", 149: "USER2 (Apple PKTAP)", 119: "IEEE802_11_PRISM", 163: "IEEE802_11_AVS",
    197: "ERF", 51: "PPP_ETHER", 10: "FDDI", 6: "IEEE802_5", 123: "SUNATM",
    138: "APPLE_IP_OVER_IEEE1394", 122: "IP_OVER_FC", 107: "FRELAY",
    240: "NETANALYZER", 241: "NETANALYZER_TRANSPARENT", 281: "DSA_TAG_BRCM", 282: "DSA_TAG_BRCM_PREPEND",
    284: "DSA_TAG_DSA", 285: "DSA_TAG_EDSA", 205: "C_HDLC_WITH_DIR", 206: "FRELAY_WITH_DIR",
}
SUPPORTED_LINKTYPES = frozenset(LINKTYPE_NAMES)
#: link types that carry no IP at all (a capture of every interface, ``tshark -i any`` on a desktop,
#: ``dumpcap -i usbmon0 -i eth0``): their frames are skipped without the hint that the tshark
#: engine reads more link types, which would read nothing there either (newcomer 35 F7);
#: numbers from tcpdump.org's link-layer header types
NON_IP_LINKTYPES: dict[int, str] = {
    # (288 USB 2.0 from an Ellisys analyser, 293-295 its low/full/high-speed variants; 289 is ATSC
    # ALP, which carries IP, and 291 netANALYZER NG: neither is USB, break-it s59)
    **dict.fromkeys((186, 189, 220, 249, 266, 288, 293, 294, 295), "USB"),
    290: "Event Tracing for Windows events",
    **dict.fromkeys((187, 201, 251, 254, 255, 256, 272), "Bluetooth"),
    **dict.fromkeys((190, 227), "CAN bus"),
    **dict.fromkeys((195, 215, 230, 283), "IEEE 802.15.4"),
    231: "D-Bus", 253: "Linux netlink",
}
_FAST_LINKTYPES = frozenset((0, 1, 12, 14, 101, 108, 113, 228, 229, 276))

#: frames decoded together: few enough that a chunk's header bytes stay in cache (and TLB)
CHUNK = 8192
#: bytes read from the start of each frame: Ethernet + 3 VLAN tags (26) + IPv4 with options or
#: IPv6 (+ 20 transport bytes) fit; the IP window (_W3) always fits after the link header
_WH = 96
_W3 = 64
_W4 = 20
_MAX_LT = 1024          # link types at or above this are unsupported (table lookups below)
_LT_SUPPORTED = np.zeros(_MAX_LT, bool)
_LT_SUPPORTED[list(SUPPORTED_LINKTYPES)] = True
_LT_FAST = np.zeros(_MAX_LT, bool)
_LT_FAST[list(_FAST_LINKTYPES)] = True

# ethertype classes: 0 slow path decides, 1 IPv4, 2 IPv6, 3 not IP (counted)
_ETCLASS = np.full(65536, 3, np.int8)
_ETCLASS[:0x600] = 0
_ETCLASS[[0x8100, 0x88A8, 0x9100, 0x8864, 0x8847, 0x8848]] = 0
_ETCLASS[list(L2_SHIMS)] = 0                # CMD, VN-Tag, E-Tag, Arista, MACsec, PBB
_ETCLASS[JUMBO_LLC] = 0                     # LLC/SNAP without a length field
_ETCLASS[NSH_ETHERTYPE] = 0                 # NSH (RFC 8300): the slow path reads it
_ETCLASS[ETH_BRIDGED] = 0                   # an Ethernet frame (SLL of a GRE device)
_ETCLASS[0x0800] = 1
_ETCLASS[0x86DD] = 2
_TPID = np.zeros(65536, bool)
_TPID[[0x8100, 0x88A8, 0x9100]] = True
_V4_SLOW = np.zeros(256, bool)              # IPv4 protocols left to the slow path (tunnels, AH)
_V4_SLOW[[4, 41, 47, 51, IPPROTO_ETHERNET, IPPROTO_ETHERIP]] = True
_V6_SLOW = _V4_SLOW.copy()                  # ... and IPv6 extension headers
_V6_SLOW[list(IPV6_EXT)] = True
_V6_SLOW[SHIM6] = True                      # (a payload extension header is walked: the P bit)
# (for the compiled decode, _headers.fast_rows: the UDP ports _chunk leaves to the slow path, as
# destination and as source, and the Ethernet type/length values of an LLC header)
# (one table for both paths: _chunk's numpy reads them too)
_DPORT_SLOW = np.zeros(65536, bool)
_DPORT_SLOW[[VXLAN_PORT, GENEVE_PORT, VXLAN_LINUX_PORT, L2TP_PORT, VXLAN_GPE_PORT, GTPU_PORT,
             TEREDO_PORT, LISP_DATA_PORT, MPLS_UDP_PORT, GRE_UDP_PORT, TZSP_PORT]] = True
_SPORT_SLOW = np.zeros(65536, bool)
_SPORT_SLOW[[L2TP_PORT, GTPU_PORT, TEREDO_PORT, LISP_DATA_PORT, MPLS_UDP_PORT, GRE_UDP_PORT, TZSP_PORT]] = True
_LLC = np.zeros(65536, bool)
_LLC[:0x600] = True
_LLC[JUMBO_LLC] = True
_FAM = np.zeros(256, np.int8)               # NULL/LOOP address family -> IP version
_FAM[2] = 4
_FAM[list(AF_INET6)] = 6


# an IPv4 address as its IPv4-mapped IPv6 low half (::ffff:a.b.c.d), uint64 on both sides of the
# ``|``: numpy 1.x would promote a uint64 scalar with a uint32 array to int64, and that with the
# IPv6 rows' uint64 to float64, losing the low bits of IPv6 addresses
_V4MAPPED = np.uint64(0xFFFF_0000_0000)


@functools.lru_cache(maxsize=None)
def _fdt(width: int, col: int, fmt: str) -> np.dtype:
    return np.dtype({"names": ["f"], "formats": [fmt], "offsets": [col], "itemsize": width})


def _be(m: np.ndarray, col: int, fmt: str) -> np.ndarray:
    """Big-endian field ``fmt`` at byte ``col`` of each row of uint8 matrix ``m`` (a view)."""
    return m.view(_fdt(m.shape[1], col, fmt))["f"][:, 0]


def decode(frames: Frames, *, fast: bool = True, counters: "DecodeCounters | None" = None,
           fcs_claim: "FcsClaim | None" = None, sum_claim: "SumClaim | None" = None) -> Packets:
    """Decode every frame down to IP and transport headers.

    Parameters
    ----------
    frames:
        Records of one capture (:class:`~kscc_traffic.capture.frames.Frames`).
    fast:
        Use the vectorised fast path where it applies (default). ``False`` decodes every frame
        with the per-frame slow path; the columns are identical, only slower.
    counters:
        When given (a capture decoded chunk by chunk), the decoder's counts of what it skipped
        are added to it and its warning lines are left out of ``stats`` (see
        :meth:`DecodeCounters.warnings`).
    fcs_claim:
        When given (a capture decoded chunk by chunk), whether the file's FCS claim is taken as
        wrong is decided once, on the first frames checked, and kept for the following chunks
        (:class:`FcsClaim`), so the chunks read the frames as the whole file does.
    sum_claim:
        When given (a capture decoded chunk by chunk), whether the capture's TCP checksums are
        its packets' is decided once, on its first TCP segments, and kept for the following chunks
        (:class:`SumClaim`): a TCP reset whose checksum is wrong is skipped only then
        (:func:`bad_reset_checksums`).

    Returns
    -------
    Packets
        One row per IP datagram in frame order (but a TCP reset whose checksum is wrong:
        :func:`bad_reset_checksums`), columns as in
        :data:`~kscc_traffic.capture.packets.PACKET_COLUMNS`; ``stats`` is a copy of
        ``frames.stats`` with the decoder's counters and warnings added. Never raises on bad
        packet data: undecodable frames are counted (``malformed``, ``non_ip``,
        ``unsupported_linktypes``).
    """
    stats = replace(frames.stats, unsupported_linktypes=dict(frames.stats.unsupported_linktypes),
                    warnings=list(frames.stats.warnings))
    n = len(frames)
    buf = frames.buf
    if n == 0:
        stats.ip_packets = 0
        return Packets(buf, Packets.empty().cols, stats)
    b = np.frombuffer(buf, np.uint8)
    nb = len(b)
    off = np.asarray(frames.offset, np.int64)
    cap = np.asarray(frames.caplen, np.int64)
    lt = np.asarray(frames.linktype, np.int64)
    wire = None

    bad = (off < 0) | (cap < 0) | (off + cap > nb)
    lt0 = int(lt[0])
    uniform = bool((lt == lt0).all())
    damaged = None
    if lt0 > LT_MASK if uniform else bool((lt > LT_MASK).any()):
        # what the file says of the frames: an FCS at their end, damaged (Frames.linktype)
        lt, cap, wire, damaged, marked, mismatch, absent, absent2 = _file_flags(buf, off, cap, frames.wirelen, lt,
                                                                                    bad, fcs_claim)
        lt0 = int(lt[0])
        uniform = bool((lt == lt0).all())
    if uniform:                                     # one link type: the usual case
        ltc = np.full(1, min(max(lt0, 0), _MAX_LT - 1))
        supported = np.full(n, 0 <= lt0 < _MAX_LT and _LT_SUPPORTED[ltc[0]])
        fast_lt = np.full(n, bool(supported[0]) and _LT_FAST[ltc[0]])
    else:
        ok_range = (lt >= 0) & (lt < _MAX_LT)
        ltc = np.where(ok_range, lt, 0)
        supported = ok_range & _LT_SUPPORTED[ltc]
        fast_lt = ok_range & _LT_FAST[ltc]
    unsup = ~supported
    unsupported: dict[int, int] = {}
    if unsup.any():
        vals, counts = np.unique(lt[unsup], return_counts=True)
        for v, c in zip(vals.tolist(), counts.tolist()):
            stats.unsupported_linktypes[v] = stats.unsupported_linktypes.get(v, 0) + c
            unsupported[v] = c
    # (a record of captured length 0 holds nothing to decode: ReadStats.empty_records, not malformed)
    todo = supported & ~bad & (cap > 0)
    malformed = int(bad.sum())
    if damaged is not None:
        todo &= ~damaged
        malformed += marked + mismatch

    out = {k: np.empty(n, PACKET_COLUMNS[k]) for k in ROW_FIELDS}
    has_row = np.zeros(n, bool)
    non_ip = 0
    if fast and nb >= _WH:
        fast_rows = todo & fast_lt
        non_ip, nonip_mask = _fast(b, off, cap, lt, fast_rows, out, has_row)
        slow = todo & ~has_row & ~nonip_mask
    else:
        slow = todo

    sd = SlowDecoder(buf)
    idx = np.flatnonzero(slow)
    if len(idx):
        ts_l = frames.ts_ns[idx].tolist()
        lt_l = lt[idx].tolist()
        off_l = off[idx].tolist()
        cap_l = cap[idx].tolist()
        wire_l = np.asarray(frames.wirelen if wire is None else wire, np.int64)[idx].tolist()
        for k, i in enumerate(idx.tolist()):
            sd.frame(i, ts_l[k], lt_l[k], off_l[k], cap_l[k], wire_l[k])
    if counters is not None:
        counters.open_fragments = sd.open_fragment_groups()
        counters.open_fragment_frames = [i for _, fr in counters.open_fragments for i in fr]
    sd.finish()
    more = None                                     # rows after a frame's first (A-MSDU)
    if sd.rows:
        ridx = np.fromiter((r[0] for r in sd.rows), np.int64, len(sd.rows))
        cols = list(zip(*(r[1] for r in sd.rows)))
        first = np.ones(len(ridx), bool)
        if len(ridx) > 1:
            _, at = np.unique(ridx, return_index=True)
            if len(at) < len(ridx):
                first[:] = False
                first[at] = True
                more = (ridx[~first], {name: np.asarray(cols[k], PACKET_COLUMNS[name])[~first]
                                       for k, name in enumerate(ROW_FIELDS)})
        for k, name in enumerate(ROW_FIELDS):
            out[name][ridx[first]] = np.asarray(cols[k], PACKET_COLUMNS[name])[first]
        has_row[ridx] = True
    non_ip += sd.non_ip
    malformed += sd.malformed

    if has_row.all():
        frame_idx = np.arange(n, dtype=np.int64)
        cols_out = out
    else:
        frame_idx = np.flatnonzero(has_row).astype(np.int64)
        cols_out = {k: v[frame_idx] for k, v in out.items()}
    result = {"frame": frame_idx, "ts_ns": np.asarray(frames.ts_ns, np.int64)[frame_idx]}
    result.update(cols_out)
    if more is not None:                            # a frame's further rows follow its first
        mframe, mcols = more
        result["frame"] = np.concatenate([frame_idx, mframe])
        result["ts_ns"] = np.asarray(frames.ts_ns, np.int64)[result["frame"]]
        order = np.argsort(result["frame"], kind="stable")
        for k in ROW_FIELDS:
            result[k] = np.concatenate([result[k], mcols[k]])
        result = {k: v[order] for k, v in result.items()}
    result = {k: result[k] for k in PACKET_COLUMNS}
    bad_sum = bad_reset_checksums(buf, off, cap, result, sum_claim)
    if bad_sum.any():
        result = {k: v[~bad_sum] for k, v in result.items()}

    stats.ip_packets = len(result["frame"])
    stats.non_ip += non_ip
    stats.malformed += malformed
    if sd.extra:
        buf = b"".join((buf, bytes(sd.extra)))
    mine = counters if counters is not None else DecodeCounters()
    mine.add(sd, malformed, unsupported, esp_count(result, buf))
    mine.bad_reset_sum += int(np.count_nonzero(bad_sum))
    if damaged is not None:
        mine.damaged_marked += marked
        mine.fcs_mismatch += mismatch
        mine.fcs_absent += absent
        mine.fcs2_absent += absent2
    if counters is None:
        stats.warnings.extend(mine.warnings())
        stats.sealed += mine.sealed
    return Packets(buf, result, stats)


#: link types whose frames the file's FCS flag (:data:`~.frames.LT_FCS`) covers whole: Ethernet,
#: 802.11 without a monitor header (radiotap and PPI say it themselves: the slow path reads them)
_FCS_CHECKED = (1, 105)


class FcsClaim:
    """Whether a capture's FCS claim (:data:`~.frames.LT_FCS`) is taken as wrong, decided once
    for the file (:func:`_file_flags`) and carried from chunk to chunk.

    ``wrong``: None while not decided (no frame checked yet, or fewer than
    :data:`_FCS_ALL_FAIL` checked, all failing, none with the packet filling the frame: then
    ``waiting`` is True and the chunked reader holds those frames for the next chunk); True: every
    frame failing the check is read without the FCS; False: only those whose IP packet fills
    the frame are."""

    __slots__ = ("wrong", "waiting")

    def __init__(self) -> None:
        self.wrong: "bool | None" = None
        self.waiting = False


def _file_flags(buf, off: np.ndarray, cap: np.ndarray, wirelen: np.ndarray, lt: np.ndarray,
                bad: np.ndarray, claim: "FcsClaim | None" = None) -> tuple:
    """Read the flag bits of ``Frames.linktype`` (:data:`~.frames.LT_FCS`,
    :data:`~.frames.LT_DAMAGED`). Returns (link types without the bits, captured lengths and
    original lengths without the FCS (int64), the mask of damaged frames, how many the capture
    marks damaged, how many whose FCS does not match, how many read without the FCS the file
    claims, how many read without the 2-byte FCS their file claims). The FCS of an Ethernet or plain 802.11
    frame captured whole is checked (CRC-32, one ``zlib.crc32`` per frame: only the frames of
    a file that says they carry one); a frame the snaplen cut keeps it unchecked.

    A header that claims an FCS the frames do not carry (break-it 27 F3: tshark reads them) is
    told from frames damaged in the air: a frame that fails the check and whose IP packet ends
    exactly at the end of the captured bytes (nothing left for an FCS) is read without the FCS
    and counted (the last value) instead of skipped; so is every failing frame when the file's
    first checked frames all fail (:data:`_FCS_ALL_FAIL` of them, or fewer with one such
    frame among them, or all the file has). That decision is the file's: with ``claim``
    (:class:`FcsClaim`, a capture read in chunks) it is made on the first chunk that checks
    frames (or left waiting, ``claim.waiting``) and kept for the following ones.

    A 2-byte FCS (:data:`~.frames.LT_FCS2`, Ethernet) is taken off unchecked, as Wireshark
    does, except from a frame whose IP packet fills it: that one is read without it and counted
    (the last value)."""
    flags = np.where(lt > 0, lt & ~LT_MASK, 0)
    base = np.where(lt > 0, lt & LT_MASK, lt)
    damaged = (flags & LT_DAMAGED) != 0
    marked = int(np.count_nonzero(damaged & ~bad))
    wire = np.asarray(wirelen, np.int64)
    fcs = ((flags & LT_FCS) != 0) & ~damaged & ~bad & np.isin(base, _FCS_CHECKED) & (cap >= 4)
    mismatch = absent = absent2 = 0
    if fcs.any():
        mv = memoryview(buf)
        whole = fcs & (wire <= cap)
        checked = np.flatnonzero(whole).tolist()
        failed = []
        for i in checked:
            o, c = int(off[i]), int(cap[i])
            if zlib.crc32(mv[o:o + c - 4]) != int.from_bytes(mv[o + c - 4:o + c], "little"):
                failed.append(i)

        def fills(i):
            return base[i] == 1 and _ip_ends_frame(mv, int(off[i]), int(cap[i]))
        wrong = claim.wrong if claim is not None else None
        if wrong is None and checked:
            first = checked[:_FCS_ALL_FAIL]
            if failed[:len(first)] != first:
                wrong = False
            elif len(first) >= _FCS_ALL_FAIL or any(fills(i) for i in first):
                wrong = True
            elif claim is None:
                wrong = False               # all the file has: too few, no evidence
            else:
                claim.waiting = True        # the next chunk's frames decide
            if claim is not None and wrong is not None:
                claim.wrong, claim.waiting = wrong, False
        if failed:
            exact = failed if wrong else [i for i in failed if fills(i)]
            nofcs = np.array(exact, np.int64)
            fcs[nofcs] = False
            rest = np.setdiff1d(np.array(failed, np.int64), nofcs)
            damaged[rest] = True
            mismatch, absent = len(rest), len(nofcs)
        missing = np.maximum(wire - cap, 0)
        cap = np.where(fcs, cap - np.clip(4 - missing, 0, 4), cap)
        wire = np.where(fcs, np.maximum(wire - 4, cap), wire)
    fcs2 = ((flags & LT_FCS2) != 0) & ((flags & LT_FCS) == 0) & ~damaged & ~bad & (base == 1) & (cap >= 2)
    if fcs2.any():
        # a 2-byte FCS (LT_FCS2): taken off unchecked, as Wireshark does, but not from a frame
        # whose IP packet fills it (no room for it: read without it, counted as a wrong claim)
        mv = memoryview(buf)
        fill = [i for i in np.flatnonzero(fcs2 & (wire <= cap)).tolist()
                if _ip_ends_frame(mv, int(off[i]), int(cap[i]))]
        if fill:
            fcs2[fill] = False
            absent2 = len(fill)
        missing = np.maximum(wire - cap, 0)
        cap = np.where(fcs2, cap - np.clip(2 - missing, 0, 2), cap)
        wire = np.where(fcs2, np.maximum(wire - 2, cap), wire)
    return base, cap, wire, damaged, marked, mismatch, absent, absent2


def fcs_waiting(frames: Frames, claim: FcsClaim) -> bool:
    """True when ``frames`` (a chunk of a capture read in chunks) leave the file's FCS decision
    (:class:`FcsClaim`) still open: fewer than :data:`_FCS_ALL_FAIL` frames checked, all
    failing, none whose packet fills the frame; the reader then holds them for the next chunk.
    ``claim`` is not changed."""
    if claim.wrong is not None or not len(frames):
        return False
    lt = np.asarray(frames.linktype, np.int64)
    if not ((lt > 0) & ((lt & LT_FCS) != 0)).any():
        return False
    off, cap = np.asarray(frames.offset, np.int64), np.asarray(frames.caplen, np.int64)
    bad = (off < 0) | (cap < 0) | (off + cap > len(frames.buf))
    probe = FcsClaim()
    _file_flags(frames.buf, off, cap, frames.wirelen, lt, bad, probe)
    return probe.waiting


#: frames checked, all failing their FCS, from which the file's FCS claim is taken as wrong
#: (read without it) even with no frame showing that its IP packet fills it (:func:`_file_flags`)
_FCS_ALL_FAIL = 3


def _ip_ends_frame(mv, o: int, c: int) -> bool:
    """The Ethernet frame ``mv[o:o + c]`` (up to two VLAN tags) holds an IPv4 or IPv6 packet
    whose length field ends it exactly at ``c``: its last 4 bytes are the packet's, not an FCS."""
    h = 12
    et = int.from_bytes(mv[o + h:o + h + 2], "big") if c >= h + 2 else 0
    for _ in range(2):
        if et in (0x8100, 0x88A8) and c >= h + 6:
            h += 4
            et = int.from_bytes(mv[o + h:o + h + 2], "big")
    h += 2
    if et == 0x0800 and c >= h + 20 and mv[o + h] >> 4 == 4:
        return h + int.from_bytes(mv[o + h + 2:o + h + 4], "big") == c
    if et == 0x86DD and c >= h + 40 and mv[o + h] >> 4 == 6:
        n = int.from_bytes(mv[o + h + 4:o + h + 6], "big")
        return n > 0 and h + 40 + n == c
    return False


def fcs_absent_frames(frames: Frames, claim: "FcsClaim | None" = None) -> np.ndarray:
    """bool, one per record of ``frames``: the frames whose file claims a 4-byte FCS
    (:data:`~.frames.LT_FCS`) or a 2-byte one (:data:`~.frames.LT_FCS2`) that :func:`decode`
    reads without one, the claim taken as wrong
    (:func:`_file_flags`); the tshark engine drops the claim for them in its copy. ``claim``:
    the file's decision carried over its chunks (:class:`FcsClaim`), as :func:`decode` takes it."""
    lt = np.asarray(frames.linktype, np.int64)
    has = (lt > 0) & ((lt & LT_FCS) != 0) & ((lt & LT_DAMAGED) == 0)
    has2 = (lt > 0) & ((lt & LT_FCS2) != 0) & ((lt & (LT_DAMAGED | LT_FCS)) == 0) & ((lt & LT_MASK) == 1)
    if not (has | has2).any():
        return np.zeros(len(lt), bool)
    off, cap = np.asarray(frames.offset, np.int64), np.asarray(frames.caplen, np.int64)
    wire = np.asarray(frames.wirelen, np.int64)
    bad = (off < 0) | (cap < 0) | (off + cap > len(frames.buf))
    _, cap2, _, damaged, _, _, absent, absent2 = _file_flags(frames.buf, off, cap, wire, lt, bad, claim)
    if not absent and not absent2:
        return np.zeros(len(lt), bool)
    return (((has & (cap >= 4) & np.isin(lt & LT_MASK, _FCS_CHECKED)) | (has2 & (cap >= 2)))
            & ~bad & ~damaged & (cap2 == cap) & (wire <= cap))


def fcs_absent_note(k: int, two: bool = False) -> str:
    """The warning line (without the capture's name) for ``k`` frames whose file claims an FCS
    (pcap header FCS bits, pcapng ``if_fcslen`` / ``epb_flags``) they do not carry; ``two``: a
    2-byte FCS (:data:`~.frames.LT_FCS2`), which is not checked: the frames whose IP packet
    fills them."""
    s = "s" if k != 1 else ""
    if two:
        return (f"decode: {k} frame{s} the file says end{'s' if k == 1 else ''} with a 2-byte FCS (pcap header "
                f"FCS length 1, in 16-bit words, or pcapng if_fcslen 2) hold{'s' if k == 1 else ''} an IP packet "
                f"that fills {'it' if k == 1 else 'them'}: no room for an FCS, read without one (the other frames "
                "lose their last 2 bytes, unchecked, as Wireshark takes them off)")
    return (f"decode: {k} frame{s} the file says end{'s' if k == 1 else ''} with a 4-byte FCS (pcap "
            f"header FCS bits, pcapng if_fcslen or epb_flags) carr{'ies' if k == 1 else 'y'} none "
            "(the check fails and the packet fills the frame, or every frame fails it): the header's "
            "claim taken as wrong, read without an FCS")


def damaged_note(marked: int, mismatch: int) -> str:
    """The warning line (without the capture's name) for frames skipped as damaged: ``marked``
    that the capture flags (radiotap bad FCS, PPI FCS invalid, pcapng ``epb_flags`` CRC error, an
    ERF record's RX error),
    ``mismatch`` whose FCS does not match their bytes; both engines say it."""
    k = marked + mismatch
    how = []
    if marked:
        how.append(f"{marked} flagged by the capture")
    if mismatch:
        how.append(f"{mismatch} with an FCS that does not match {'its' if mismatch == 1 else 'their'} bytes")
    return (f"decode: {k} frame{'s' if k != 1 else ''} the capture marks as damaged (bad FCS/CRC "
            f"error) skipped ({', '.join(how)}): {'their' if k != 1 else 'its'} bytes are not the "
            "bytes that were sent (a monitor-mode capture keeps frames that failed their check; "
            "the good retransmission, when captured, is read)")


def bad_reset_sum_note(k: int) -> str:
    """The warning line (without the capture's name) for ``k`` TCP resets skipped for a wrong TCP
    checksum (:func:`bad_reset_checksums`); both engines say it."""
    return (f"decode: {k} TCP reset{'s' if k != 1 else ''} with a wrong TCP checksum skipped "
            f"(the receiver drops such a segment, as Zeek does: bad_TCP_checksum; {'they' if k != 1 else 'it'} "
            "refused or ended no connection)")


#: TCP flags: RST
_RST = 0x04


def tcp_checksum_state(seg: bytes, src: bytes, dst: bytes) -> int:
    """What the checksum of TCP segment ``seg`` (header and payload, whole) between addresses
    ``src`` and ``dst`` (4 bytes each for IPv4, 16 for IPv6: the pseudo-header's, RFC 9293 §3.1,
    RFC 8200 §8.1) says: 1 right; 0 not known to be wrong: 0 itself, or the sum of the pseudo-header
    alone or its complement (what a sender offloading the checksum to its NIC leaves in the packets
    captured on it, Linux's CHECKSUM_PARTIAL: not the bytes sent, nor a damage); -1 wrong."""
    n = len(seg)
    pseudo = src + dst + ((6).to_bytes(2, "big") + n.to_bytes(2, "big") if len(src) == 4
                          else n.to_bytes(4, "big") + (6).to_bytes(4, "big"))
    if sum16(pseudo + seg) == 0xFFFF:
        return 1
    field = int.from_bytes(seg[16:18], "big")
    partial = sum16(pseudo)
    return 0 if field in (0, partial, partial ^ 0xFFFF) else -1


#: TCP segments (no reset) whose checksums tell whether a capture's checksums are its packets'
#: (:class:`SumClaim`): right ones at least as many as wrong ones among the first of them
SUM_SAMPLE = 16
#: TCP rows looked at for them at most (a host offloading its checksums: its own segments tell nothing)
SUM_LOOK = 512


class SumClaim:
    """Whether a capture's TCP checksums are the ones its packets were sent with, decided once on
    its first :data:`SUM_SAMPLE` TCP segments that are no reset and whose checksum is right or wrong
    (:func:`tcp_checksum_state` 1 or -1; among its first :data:`SUM_LOOK` TCP rows), in frame
    order, and carried from chunk to chunk (:func:`decode`'s ``sum_claim``) so a capture read in
    chunks decides as the whole file does. A capture whose addresses were rewritten (anonymised)
    without fixing the checksums has every one wrong: its resets are then not checked
    (:func:`bad_reset_checksums`). ``right``, ``wrong``: the segments counted so far; ``looked``:
    the rows looked at; ``upto``: the last frame looked at (a chunk's frames decoded again are
    not counted twice)."""

    __slots__ = ("right", "wrong", "looked", "upto")

    def __init__(self) -> None:
        self.right = self.wrong = self.looked = 0
        self.upto = -1

    @property
    def decided(self) -> bool:
        """Enough segments counted (or rows looked at) to decide."""
        return self.right + self.wrong >= SUM_SAMPLE or self.looked >= SUM_LOOK

    @property
    def trusted(self) -> bool:
        """The checksums are taken as the packets' own: right ones at least as many as wrong ones
        (none of either: trusted)."""
        return self.wrong <= self.right

    def count(self, buf, off: np.ndarray, cap: np.ndarray, cols: dict[str, np.ndarray]) -> None:
        """Count the TCP segments of ``cols`` (rows in frame order; ``buf``, ``off``, ``cap`` as
        :func:`bad_reset_checksums`) after frame :attr:`upto` until :attr:`decided`."""
        if self.decided or not len(cols["frame"]):
            return
        rows = np.flatnonzero((cols["proto"] == 6) & ((cols["tcp_flags"] & _RST) == 0) & (cols["l4_sum"] > 0)
                              & (cols["payload_len"] >= 0) & ~cols["unreassembled"] & (cols["frame"] > self.upto))
        for i in rows[:SUM_LOOK - self.looked].tolist():
            self.upto = int(cols["frame"][i])
            self.add(_segment_state(buf, off, cap, cols, i))
            if self.decided:
                break

    def add(self, state: int | None) -> None:
        """Count one TCP segment looked at (no reset), its :func:`tcp_checksum_state` ``state``
        (None: not known)."""
        self.looked += 1
        self.right += state == 1
        self.wrong += state == -1


def _segment_state(buf, off: np.ndarray, cap: np.ndarray, cols: dict[str, np.ndarray], i: int) -> int | None:
    """:func:`tcp_checksum_state` of the TCP segment of row ``i`` of ``cols`` (see
    :func:`bad_reset_checksums`), None when it cannot be told: its header not found in its frame
    by its ports, numbers, flags and checksum, or the segment not whole there."""
    fr = int(cols["frame"][i])
    o, c = int(off[fr]), int(cap[fr])
    if o < 0 or c <= 0 or o + c > len(buf):
        return None
    data = bytes(buf[o:o + c])
    key = (int(cols["sport"][i]).to_bytes(2, "big") + int(cols["dport"][i]).to_bytes(2, "big")
           + int(cols["seq"][i]).to_bytes(4, "big") + int(cols["ack"][i]).to_bytes(4, "big"))
    p = data.find(key)
    if p < 0 or p + 20 > len(data):
        return None
    doff = (data[p + 12] >> 4) * 4
    plen = int(cols["payload_len"][i])
    if (doff < 20 or data[p + 13] != int(cols["tcp_flags"][i]) & 0xFF
            or int.from_bytes(data[p + 16:p + 18], "big") != int(cols["l4_sum"][i])
            or p + doff + plen > len(data)):
        return None
    if plen and int(cols["pl_off"][i]) != o + p + doff:
        return None                     # (the payload is elsewhere: not this header's)
    v = int(cols["ipver"][i])
    return tcp_checksum_state(data[p:p + doff + plen], address_bytes(v, int(cols["src_hi"][i]), int(cols["src_lo"][i])),
                              address_bytes(v, int(cols["dst_hi"][i]), int(cols["dst_lo"][i])))


def address_bytes(ipver: int, hi: int, lo: int) -> bytes:
    """An address of the packet columns (``src_hi``/``src_lo`` ints) as sent: 16 bytes for IPv6
    (``ipver`` 6), else the 4 of IPv4 (the low 32 bits of ``lo``)."""
    return hi.to_bytes(8, "big") + lo.to_bytes(8, "big") if ipver == 6 else (lo & 0xFFFFFFFF).to_bytes(4, "big")


def bad_reset_checksums(buf, off: np.ndarray, cap: np.ndarray, cols: dict[str, np.ndarray],
                        claim: SumClaim | None = None) -> np.ndarray:
    """Rows of the decoded columns ``cols`` (:data:`~.packets.PACKET_COLUMNS`, in frame order) that
    are TCP resets whose checksum is wrong (:func:`tcp_checksum_state` -1): a bool array of the
    rows. Only a reset carrying no payload is checked (a few rows; one with payload, such as a
    Windows stack's reset cause text, is not, as the tshark engine cannot rebuild its bytes), and
    only when its segment is in its frame whole
    (``buf``: the frames' bytes; ``off``/``cap``: int64 arrays, per frame, its offset and captured
    bytes): the TCP header is found in the frame by its ports, sequence and acknowledgement
    numbers, flags and checksum (the columns'), and the frame's captured bytes hold the header and
    the payload. A reset that is not (cut by a snaplen, in IP fragments, its header not found), or
    whose checksum field is 0 or the pseudo-header's sum (checksum offload on the host that sent it:
    the packets a host sends are captured before its NIC fills the checksum in), is never taken for
    wrong; nor is any when the capture's other TCP segments are mostly wrong too (``claim``, a
    :class:`SumClaim` carried from chunk to chunk, counted on these rows first; None: one of these
    rows alone): its checksums are not the packets' (addresses rewritten). A receiver drops a
    segment whose checksum is wrong (and Zeek does not analyse it, weird ``bad_TCP_checksum``), so
    such a reset refused or ended no connection; the decoder skips it (:func:`decode`,
    :attr:`DecodeCounters.bad_reset_sum`, :func:`bad_reset_sum_note`). Never raises on bad data."""
    n = len(cols["frame"])
    out = np.zeros(n, bool)
    if not n:
        return out
    claim = claim if claim is not None else SumClaim()
    claim.count(buf, off, cap, cols)
    # (a reset carrying no payload only: the tshark engine rebuilds a segment from its fields, and
    # Wireshark shows a reset's payload as tcp.reset_cause text, not its bytes; both engines so agree)
    cand = np.flatnonzero((cols["proto"] == 6) & ((cols["tcp_flags"] & _RST) != 0) & (cols["l4_sum"] > 0)
                          & (cols["payload_len"] == 0) & ~cols["unreassembled"])
    if not len(cand) or not claim.trusted:
        return out
    for i in cand.tolist():
        out[i] = _segment_state(buf, off, cap, cols, i) == -1
    return out


def overlap_dropped_note(k: int) -> str:
    """The warning line (without the capture's name) for ``k`` IPv6 datagrams whose fragments
    overlapped, given up on as RFC 5722 says a receiver does."""
    s = "s" if k != 1 else ""
    return (f"decode: {k} IPv6 datagram{s} had overlapping fragments and {'were' if k != 1 else 'was'} "
            "dropped whole, as the receiver does (RFC 5722): nothing in "
            f"{'them' if k != 1 else 'it'} reached an application (its fragments are counted "
            "below as not reassembled)")


def dot11_fragments_note(lost: int) -> str:
    """The warning line (without the capture's name) for ``lost`` 802.11 fragments dropped
    because their MSDU could not be reassembled (a fragment missing from the capture)."""
    s = "s" if lost != 1 else ""
    return (f"decode: {lost} 802.11 fragment{s} of MSDUs that could not be reassembled (a fragment "
            f"missing from the capture) dropped: the packets {'they' if lost != 1 else 'it'} "
            "carried are missing from the flows")


def bad_v4_options_note(k: int) -> str:
    """The warning line (without the capture's name) for ``k`` IPv4 datagrams skipped because
    their header options do not parse; both engines say it."""
    s = "s" if k != 1 else ""
    return (f"decode: {k} IPv4 packet{s} whose header options do not parse (an option length "
            "below 2 or past the header length: a damaged header length or options; receivers "
            f"drop such packets) skipped as malformed: what follows the header cannot be located")


def bad_jumbo_note(k: int) -> str:
    """The warning line (without the capture's name) for ``k`` IPv6 packets skipped because
    their payload length is 0 and their hop-by-hop Jumbo Payload option gives a length below
    65,536 (RFC 2675 §3: invalid, receivers discard such a packet; Wireshark shows it as
    malformed): the packet's length, so where its transport header ends, is not known."""
    s = "s" if k != 1 else ""
    return (f"decode: {k} IPv6 packet{s} with an invalid Jumbo Payload option (a jumbogram length "
            "below 65,536 where the payload length is 0; receivers discard such packets) skipped "
            "as malformed")


def too_deep_note(k: int) -> str:
    """The warning line (without the capture's name) for ``k`` frames not decoded because they
    nest deeper than the built-in decoder reads (``_slowpath.TOO_DEEP``; also in ``malformed``)."""
    s = "s" if k != 1 else ""
    return (f"decode: {k} frame{s} nested deeper than the decoder reads (more than "
            f"{MAX_TUNNEL_DEPTH} tunnels inside one another, {MAX_VLAN_TAGS} VLAN tags, "
            f"{MAX_MPLS_LABELS} MPLS labels or {MAX_L2_SHIMS} link-layer shims): not decoded "
            "(--engine tshark reads deeper tunnels and MPLS stacks)")


def tzsp_note(unread: dict) -> str:
    """The warning line (both engines) for TZSP packets whose encapsulation is not read:
    ``unread`` maps the encapsulation number to the count of such packets."""
    from ._slowpath import TZSP_ENCAPS
    k = sum(unread.values())
    kinds = ", ".join(f"{TZSP_ENCAPS.get(e, 'unknown')} (encapsulation {e}) {n}"
                      for e, n in sorted(unread.items(), key=lambda x: (-x[1], x[0])))
    return (f"decode: {k} TZSP packet{'s' if k != 1 else ''} carrying frames of a kind not read "
            f"({kinds}): the packets in them are missing from the flows, only the UDP datagrams "
            "to port 37008 are counted (have the sniffer stream Ethernet frames: a wired "
            "interface, or capture on the host itself)")


def protected_note(k: int) -> str:
    """The warning line (without the capture's name) for ``k`` 802.11 data frames with the
    Protected bit (WEP, WPA2/3: the body encrypted), which neither engine reads (the tshark engine
    those tshark did not decrypt)."""
    return (f"decode: {k} 802.11 data frame{'s were' if k != 1 else ' was'} encrypted "
            f"(Protected) and could not be read: the packets {'they' if k != 1 else 'it'} "
            "carried are missing from the flows (capture on the wired side, or decrypt "
            "first: Wireshark's 802.11 decryption keys, then File > Export)")


def macsec_note(k: int) -> str:
    """The warning line (without the capture's name) for ``k`` MACsec (IEEE 802.1AE) frames
    whose data is encrypted (SecTAG E or C bit), which neither engine reads (the tshark engine
    those tshark did not decrypt)."""
    return (f"decode: {k} MACsec frame{'s were' if k != 1 else ' was'} encrypted and "
            f"could not be read: the packets {'they' if k != 1 else 'it'} carried are "
            "missing from the flows (capture where the traffic is not encrypted: on "
            "the host, or on the other side of the MACsec link)")


def vj_note(k: int) -> str:
    """The warning line (without the capture's name) for ``k`` PPP frames of Van Jacobson
    compressed TCP (PPP protocol 0x002d / 0x002f, RFC 1144), which neither engine reads."""
    s, were = ("s", "were") if k != 1 else ("", "was")
    return (f"decode: {k} PPP frame{s} of Van Jacobson compressed TCP (PPP protocol 0x002d/0x002f, "
            f"RFC 1144) {were} not read: the TCP segments {'they' if k != 1 else 'it'} carried are "
            "missing from the flows (turn VJ compression off on the PPP link, e.g. pppd's novj, "
            "or capture on the host)")


def ppp_sealed_note(k: int) -> str:
    """The warning line (without the capture's name) for ``k`` PPP frames whose payload is
    compressed or encrypted (PPP protocol 0x00fd/0x00fb, RFC 1962 CCP, or 0x0053/0x0055, RFC 1968
    ECP): MPPE in a PPTP VPN (GRE version 1) sends every packet so. Neither engine reads them."""
    s, were = ("s", "were") if k != 1 else ("", "was")
    return (f"decode: {k} PPP frame{s} compressed or encrypted (PPP protocol 0x00fd/0x0053: MPPE in a "
            f"PPTP VPN, CCP/ECP) {were} not read: the packets {'they' if k != 1 else 'it'} carried are "
            "missing from the flows (capture on the VPN's own interface on the host, e.g. ppp0 or "
            "the VPN adapter, where they are plain IP)")


#: UDP port of IPsec NAT traversal (RFC 3948): ESP in UDP, and IKE after the non-ESP marker
NAT_T_PORT = 4500


def esp_count(cols: dict, buf) -> int:
    """Rows of IPsec ESP among packet columns ``cols`` (payloads in ``buf``): IP protocol 50,
    and UDP datagrams from or to port 4500 (NAT traversal, RFC 3948 §2.2) of at least 8 payload
    bytes (an SPI and a sequence number: more than a 1-byte NAT keepalive) whose first 4 bytes,
    the SPI, are not zero (zero is the non-ESP marker that IKE messages start with). The lower of
    the two ports decides, as Wireshark tries it first: a DNS query from source port 4500 (a
    random port that fell there) to 53 is DNS, not ESP."""
    proto = cols["proto"]
    n = int(np.count_nonzero(proto == IPPROTO_ESP))
    udp = np.flatnonzero((proto == 17) & (np.minimum(cols["sport"], cols["dport"]) == NAT_T_PORT)
                         & (cols["payload_len"] >= 8) & (cols["pl_cap"] >= 4) & (cols["pl_off"] >= 0))
    if len(udp):
        b = np.frombuffer(buf, np.uint8)
        off = cols["pl_off"][udp].astype(np.int64)
        n += int(np.count_nonzero(b[off] | b[off + 1] | b[off + 2] | b[off + 3]))
    return n


@dataclass
class DecodeCounters:
    """What the decoder skipped or changed, summed over the chunks of one capture (decode
    called with ``counters=`` leaves the warning lines to :meth:`warnings`, so a capture read in
    chunks gets one line per kind with the totals)."""

    malformed: int = 0
    unsupported: dict = dc_field(default_factory=dict)   # link type -> frames
    tunnels: dict = dc_field(default_factory=dict)       # tunnel kind -> packets
    #: IP datagrams with overlapping fragments reassembled, the first copy of each byte kept (IPv4)
    overlapping: int = 0
    #: IPv6 datagrams given up on for overlapping fragments (RFC 5722; their fragments are also
    #: in ``incomplete``)
    overlap_dropped: int = 0
    frag_duplicates: int = 0
    incomplete: int = 0
    #: 802.11 data frames with the Protected bit (encrypted: WEP, WPA2/3), not readable
    protected: int = 0
    #: MACsec frames whose data is encrypted (SecTAG E or C bit), not readable
    macsec_encrypted: int = 0
    #: rows of IPsec ESP (IP protocol 50): encrypted, the connections inside unseen
    esp: int = 0
    #: IPv4 datagrams whose options do not parse (also in ``malformed``): a damaged header
    #: length or damaged options (``_slowpath.v4_options_ok``)
    bad_v4_options: int = 0
    #: IPv6 packets whose Jumbo Payload option gives a length below 65,536 with a payload
    #: length of 0 (also in ``malformed``; :func:`bad_jumbo_note`)
    bad_jumbo: int = 0
    #: PPP frames of Van Jacobson compressed TCP (RFC 1144; also in ``non_ip``): not read
    vj_tcp: int = 0
    #: PPP frames compressed or encrypted (CCP/ECP: MPPE in a PPTP VPN; also in ``non_ip``): not read
    ppp_sealed: int = 0
    #: TZSP packets of an encapsulation not read (802.11, PPP…): encapsulation -> count (the
    #: UDP datagram carrying each is the row; :func:`tzsp_note`)
    tzsp_unread: dict = dc_field(default_factory=dict)
    #: frames nested deeper than the decoder reads (``_slowpath.TOO_DEEP``; also in
    #: ``malformed``)
    too_deep: int = 0
    #: frames skipped as damaged (also in ``malformed``): flagged by the capture (radiotap bad
    #: FCS, PPI FCS invalid, pcapng epb_flags CRC error) / their FCS does not match
    damaged_marked: int = 0
    fcs_mismatch: int = 0
    #: frames read without the FCS their file claims (:func:`_file_flags`; not skipped)
    fcs_absent: int = 0
    #: frames whose file claims a 2-byte FCS and whose IP packet fills them (read without it)
    fcs2_absent: int = 0
    #: 802.11 fragments dropped, their MSDU never completed (also in ``non_ip``)
    dot11_frag_lost: int = 0
    #: TCP resets skipped for a wrong TCP checksum (:func:`bad_reset_checksums`)
    bad_reset_sum: int = 0
    #: frame indices (of the last decode call) holding fragments of datagrams still incomplete
    #: when its frames ran out: a chunked reader may decode them again with the next chunk
    open_fragment_frames: list = dc_field(default_factory=list)
    #: the same by datagram: (the latest timestamp, epoch ns, at which a fragment still
    #: completes it, its frame indices) per datagram still incomplete
    #: (``SlowDecoder.open_fragment_groups``)
    open_fragments: list = dc_field(default_factory=list)

    def merge(self, other: "DecodeCounters") -> None:
        """Add ``other``'s counts to these."""
        self.malformed += other.malformed
        for mine, theirs in ((self.unsupported, other.unsupported), (self.tunnels, other.tunnels),
                             (self.tzsp_unread, other.tzsp_unread)):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + v
        self.overlapping += other.overlapping
        self.overlap_dropped += other.overlap_dropped
        self.frag_duplicates += other.frag_duplicates
        self.incomplete += other.incomplete
        self.protected += other.protected
        self.macsec_encrypted += other.macsec_encrypted
        self.esp += other.esp
        self.bad_v4_options += other.bad_v4_options
        self.bad_jumbo += other.bad_jumbo
        self.vj_tcp += other.vj_tcp
        self.ppp_sealed += other.ppp_sealed
        self.too_deep += other.too_deep
        self.damaged_marked += other.damaged_marked
        self.fcs_mismatch += other.fcs_mismatch
        self.fcs_absent += other.fcs_absent
        self.fcs2_absent += other.fcs2_absent
        self.dot11_frag_lost += other.dot11_frag_lost
        self.bad_reset_sum += other.bad_reset_sum

    def add(self, sd: SlowDecoder, malformed: int, unsupported: dict, esp: int = 0) -> None:
        """Count in one decode's figures: the slow path's (``sd``: tunnels and the rest), the
        malformed packets, those of unsupported link types (link type -> count) and ESP."""
        self.malformed += malformed
        self.esp += esp
        for k, v in unsupported.items():
            self.unsupported[k] = self.unsupported.get(k, 0) + v
        for k, v in sd.tunnels.items():
            self.tunnels[k] = self.tunnels.get(k, 0) + v
        for k, v in sd.tzsp_unread.items():
            self.tzsp_unread[k] = self.tzsp_unread.get(k, 0) + v
        self.overlapping += sd.frag.overlapping
        self.overlap_dropped += sd.frag.overlap_dropped
        self.frag_duplicates += sd.frag.duplicates
        self.incomplete += sd.frag.incomplete
        self.protected += sd.protected
        self.macsec_encrypted += sd.macsec_encrypted
        self.bad_v4_options += sd.bad_v4_options
        self.bad_jumbo += sd.bad_jumbo
        self.vj_tcp += sd.vj_tcp
        self.ppp_sealed += sd.ppp_sealed
        self.too_deep += sd.too_deep
        self.damaged_marked += sd.bad_fcs
        self.fcs_mismatch += sd.fcs_mismatch
        self.dot11_frag_lost += sd.dot11_frag_lost

    @property
    def sealed(self) -> int:
        """Frames not read because encrypted or compressed (802.11 Protected, MACsec, PPP CCP/ECP,
        Van Jacobson TCP): non-IP frames whose warning line says why
        (:attr:`~.stats.ReadStats.sealed`)."""
        return self.protected + self.macsec_encrypted + self.ppp_sealed + self.vj_tcp

    def warnings(self) -> list[str]:
        """One line per kind of thing skipped, with its count."""
        out = [f"decode: {c} {'frame' if c == 1 else 'frames'} of link type {v} ({NON_IP_LINKTYPES[v]}: no IP "
               "traffic) skipped" if v in NON_IP_LINKTYPES else
               f"decode: {c} {'frame' if c == 1 else 'frames'} of unsupported link type {v} skipped (--engine "
               "tshark reads more link types)" for v, c in self.unsupported.items()]
        if self.protected:
            out.append(protected_note(self.protected))
        if self.macsec_encrypted:
            out.append(macsec_note(self.macsec_encrypted))
        other = (self.malformed - self.bad_v4_options - self.bad_jumbo - self.damaged_marked
                 - self.fcs_mismatch - self.too_deep)
        if self.damaged_marked or self.fcs_mismatch:
            out.append(damaged_note(self.damaged_marked, self.fcs_mismatch))
        if self.fcs_absent:
            out.append(fcs_absent_note(self.fcs_absent))
        if self.fcs2_absent:
            out.append(fcs_absent_note(self.fcs2_absent, two=True))
        if self.dot11_frag_lost:
            out.append(dot11_fragments_note(self.dot11_frag_lost))
        if self.bad_reset_sum:
            out.append(bad_reset_sum_note(self.bad_reset_sum))
        if other > 0:
            out.append(f"decode: {other} {'frame' if other == 1 else 'frames'} too short or inconsistent to decode "
                       "(malformed) skipped")
        if self.too_deep:
            out.append(too_deep_note(self.too_deep))
        if self.bad_v4_options:
            out.append(bad_v4_options_note(self.bad_v4_options))
        if self.bad_jumbo:
            out.append(bad_jumbo_note(self.bad_jumbo))
        if self.vj_tcp:
            out.append(vj_note(self.vj_tcp))
        if self.ppp_sealed:
            out.append(ppp_sealed_note(self.ppp_sealed))
        if self.tunnels:
            out.append(tunnel_note(self.tunnels))
        if self.tzsp_unread:
            out.append(tzsp_note(self.tzsp_unread))
        if self.overlapping:
            out.append(f"decode: {self.overlapping} IP datagrams had overlapping fragments "
                       "(first copy of each byte kept)")
        if self.overlap_dropped:
            out.append(overlap_dropped_note(self.overlap_dropped))
        if self.frag_duplicates:
            out.append(f"decode: {self.frag_duplicates} duplicate IP fragments ignored")
        if self.incomplete:
            out.append(f"decode: {self.incomplete} IP fragments could not be reassembled "
                       "(kept as one row each; their datagrams never arrived whole, so nothing in "
                       "them is read as DNS, TLS or HTTP)")
        if self.esp:
            out.append(esp_note(self.esp))
        return out


# ---------------------------------------------------------------------------- fast path
#: use the compiled header decode (:mod:`._headers`) when built; False: _chunk's numpy (the
#: fallback; tests compare the two)
_compiled = True

def _fast(b: np.ndarray, off: np.ndarray, cap: np.ndarray, lt: np.ndarray, rows: np.ndarray,
          out: dict[str, np.ndarray], has_row: np.ndarray) -> tuple[int, np.ndarray]:
    """Vectorised decode of the frames in mask ``rows``; fills ``out``/``has_row`` in place.

    Returns (frames counted as not IP, their mask). Frames neither given a row nor counted are
    left to the slow path.
    """
    n = len(off)
    nonip_mask = np.zeros(n, bool)
    if not rows.any():
        return 0, nonip_mask
    if _headers is not None and _compiled:
        # one C loop over the frames, the same rows as the chunks below (tests/test_headers_compiled.py)
        _headers.fast_rows(b, off, cap, lt, rows, tuple(out[k] for k in ROW_FIELDS), has_row, nonip_mask,
                           _ETCLASS, _TPID, _V4_SLOW, _V6_SLOW, _FAM, _DPORT_SLOW, _SPORT_SLOW, _LLC)
        return int(nonip_mask.sum()), nonip_mask
    counts = np.bincount(np.clip(lt[rows], 0, _MAX_LT - 1), minlength=_MAX_LT)
    lts = np.flatnonzero(counts).tolist()
    uniform = len(lts) == 1 and bool(rows.all())
    # overlapping _WH-byte records starting at every byte: WH[o] copies _WH bytes at o (memcpy)
    WH = np.ndarray(shape=(len(b) - _WH + 1,), dtype=np.dtype(("V", _WH)), buffer=b,
                    strides=(1,))
    for s in range(0, n, CHUNK):
        e = min(n, s + CHUNK)
        if not uniform and not rows[s:e].any():
            continue
        _chunk(b, WH, off[s:e], cap[s:e], lt[s:e], rows[s:e], lts[0] if uniform else None,
               lts, s, out, has_row, nonip_mask)
    return int(nonip_mask.sum()), nonip_mask


def _rows_at(M: np.ndarray, col: np.ndarray, width: int) -> np.ndarray:
    """``width`` bytes of each row ``r`` of C-contiguous uint8 matrix ``M`` from column
    ``col[r]`` (``col[r] + width <= M.shape[1]``): a view when ``col`` is constant, else a copy."""
    if len(col) and col.min() == col.max():
        c0 = int(col[0])
        return M[:, c0:c0 + width]
    recs = np.ndarray(shape=(M.size - width + 1,), dtype=np.dtype(("V", width)), buffer=M,
                      strides=(1,))
    return recs[np.arange(len(col)) * M.shape[1] + col].view(np.uint8).reshape(len(col), width)


def _link_ether(H: np.ndarray, c: np.ndarray):
    m = len(c)
    et = _be(H, 12, ">u2").astype(np.int32)
    l3 = np.full(m, 14, np.int64)
    vlan = np.zeros(m, np.int64)
    t1 = _TPID[et]
    if t1.any():
        vid1 = (_be(H, 14, ">u2") & 0xFFF).astype(np.int64)
        et1 = _be(H, 16, ">u2").astype(np.int32)
        t2 = t1 & _TPID[et1]
        vid2 = (_be(H, 18, ">u2") & 0xFFF).astype(np.int64)
        et2 = _be(H, 20, ">u2").astype(np.int32)
        t3 = t2 & _TPID[et2]
        vid3 = (_be(H, 22, ">u2") & 0xFFF).astype(np.int64)
        et3 = _be(H, 24, ">u2").astype(np.int32)
        t4 = t3 & _TPID[et3]
        et = np.where(t3, et3, np.where(t2, et2, np.where(t1, et1, et)))
        et[t4] = 0x8100                                 # more than 3 tags: slow path
        l3 += 4 * (t1.astype(np.int64) + t2 + t3)
        flag = np.int64(1 << 24)
        v1 = flag | vid1
        v2 = flag | (vid1 << 12) | vid2
        v3 = flag | (vid2 << 12) | vid3 | (vid1 << 25)
        vlan = np.where(t3, v3, np.where(t2, v2, np.where(t1, v1, 0)))
        allzero = (vid1 == 0) & (~t2 | (vid2 == 0)) & (~t3 | (vid3 == 0))
        vlan[allzero] = 0
    bcast = (_be(H, 0, ">u4") == 0xFFFFFFFF) & (_be(H, 4, ">u2") == 0xFFFF)
    return et, l3, vlan, bcast


def _classify(et: np.ndarray, l3: np.ndarray, c: np.ndarray, H: np.ndarray | None = None):
    """Ethertype -> (kind, nonip). With ``H`` (Ethernet), an 802.3 length field followed by a
    non-SNAP LLC header (STP, NetBIOS ...) is counted as not IP too."""
    cls = _ETCLASS[et]
    full = c >= l3
    kind = np.where(full & (cls == 1), 4, np.where(full & (cls == 2), 6, 0)).astype(np.int8)
    nonip = full & (cls == 3)
    if H is not None:
        llc = (et < 0x600) | (et == JUMBO_LLC)
        if llc.any():
            L3 = _rows_at(H, np.minimum(l3, _WH - 3), 3)
            snap = (L3[:, 0] == 0xAA) & (L3[:, 1] == 0xAA) & (L3[:, 2] == 0x03)
            nonip |= llc & (c >= l3 + 3) & ~snap
    return kind, nonip


def _netlink(hatype: np.ndarray, kind: np.ndarray, nonip: np.ndarray, c: np.ndarray, l3: int):
    """LINUX_SLL/SLL2 records of a netlink monitor (ARPHRD type ``hatype`` 824,
    :data:`._slowpath.ARPHRD_NETLINK`) are not IP, whatever their protocol field: (kind, nonip)
    with those records' kind 0 and, when their cooked header is whole (``c >= l3``), counted not
    IP (a cut one is left to the slow path, which calls it malformed)."""
    nl = hatype == ARPHRD_NETLINK
    if not nl.any():
        return kind, nonip
    return np.where(nl, 0, kind).astype(np.int8), nonip | (nl & (c >= l3))


def _link(ltv: int, H: np.ndarray, c: np.ndarray):
    """Link layer of frames of one link type: (kind, l3, vlan, bcast, nonip).

    ``kind``: 4 / 6 IP version expected, 9 version from the first nibble, 0 slow path.
    """
    m = len(c)
    zeros_b = np.zeros(m, bool)
    zeros_i = np.zeros(m, np.int64)
    if ltv == 1:
        et, l3, vlan, bcast = _link_ether(H, c)
        kind, nonip = _classify(et, l3, c, H)
        return kind, l3, vlan, bcast, nonip
    if ltv == 113:
        l3 = np.full(m, 16, np.int64)
        kind, nonip = _classify(_be(H, 14, ">u2").astype(np.int32), l3, c)
        kind, nonip = _netlink(_be(H, 2, ">u2"), kind, nonip, c, 16)
        return kind, l3, zeros_i, _be(H, 0, ">u2") == 1, nonip
    if ltv == 276:
        l3 = np.full(m, 20, np.int64)
        kind, nonip = _classify(_be(H, 0, ">u2").astype(np.int32), l3, c)
        kind, nonip = _netlink(_be(H, 8, ">u2"), kind, nonip, c, 20)
        return kind, l3, zeros_i, H[:, 10] == 1, nonip
    if ltv in (0, 108):
        h0, h1, h2, h3 = H[:, 0], H[:, 1], H[:, 2], H[:, 3]
        good = (h1 == 0) & (h2 == 0) & ((h0 == 0) | (h3 == 0)) & (c >= 4)
        kind = np.where(good, _FAM[h0 | h3], 0).astype(np.int8)
        return kind, np.full(m, 4, np.int64), zeros_i, zeros_b, zeros_b
    # raw IP (101, 12, 14, and 228/229 too: a tool that wrote the wrong one loses nothing): the
    # version nibble decides
    return np.full(m, 9, np.int8), zeros_i, zeros_i, zeros_b, zeros_b


def _sent_by_host(ltv, lts, L: np.ndarray, H: np.ndarray, rows: np.ndarray) -> np.ndarray | bool:
    """Frames whose link layer records no destination (``l2_out``): LINUX_SLL/SLL2 packet type 4
    (OUTGOING: sent by the capturing host, the cooked header keeps none), and every frame of a
    link type without one (raw IP, BSD loopback: :data:`._slowpath.NO_L2_DST`); False for every
    other link type."""
    from ._slowpath import NO_L2_DST
    types = [ltv] if ltv is not None else list(lts)
    if ltv is not None and ltv in NO_L2_DST:
        return True
    bare = None if ltv is not None or not any(x in NO_L2_DST for x in types) else \
        np.isin(L, list(NO_L2_DST)) & rows
    if 113 not in types and 276 not in types:
        return False if bare is None else bare
    ptype = np.where(L == 113, _be(H, 0, ">u2"), np.where(L == 276, H[:, 10], 0)) if ltv is None \
        else (_be(H, 0, ">u2") if ltv == 113 else H[:, 10])
    sent = ptype == 4
    if bare is not None:
        sent |= bare
    return sent & rows if ltv is None else sent


def _chunk(b, WH, o, c, L, rows, ltv, lts, s, out, has_row, nonip_mask) -> None:
    m = len(o)
    e = s + m
    nb = len(b)
    inb = o <= nb - _WH
    H = WH[np.where(inb, o, 0)].view(np.uint8).reshape(m, _WH)
    if ltv is None and bool(rows.all()) and bool((L == L[0]).all()):
        ltv = int(L[0])                             # this chunk has a single link type
    if ltv is not None:
        kind, l3, vlan, bcast, nonip = _link(ltv, H, c)
    else:
        kind = np.zeros(m, np.int8)
        l3 = np.zeros(m, np.int64)
        vlan = np.zeros(m, np.int64)
        bcast = np.zeros(m, bool)
        nonip = np.zeros(m, bool)
        for x in lts:
            g = np.flatnonzero(rows & (L == x))
            if not len(g):
                continue
            r = _link(x, H[g], c[g])
            kind[g], l3[g], vlan[g], bcast[g], nonip[g] = r
        kind[~rows] = 0
        nonip &= rows
    kind[~inb] = 0
    nonip &= inb
    nonip_mask[s:e] = nonip

    # ---- IP header: _W3 bytes at l3 (l3 <= 26, so always inside H)
    ipm = kind != 0
    G = _rows_at(H, l3, _W3)
    g0 = G[:, 0]
    ver = g0 >> 4
    kind = np.where(kind == 9, ver, kind)
    is4 = ipm & (kind == 4) & (ver == 4)
    is6 = ipm & (kind == 6) & (ver == 6)
    l3cap = c - l3
    any6 = bool(is6.any())
    any4 = bool(is4.any())
    if any4:
        ihl = (g0 & 15).astype(np.int64) << 2
        tot = _be(G, 2, ">u2").astype(np.int64)
        frag = _be(G, 6, ">u2")
        proto4 = G[:, 9]
        # (a header with options is left to the slow path, which checks that they parse:
        # _slowpath.v4_options_ok)
        is4 &= (ihl == 20) & (l3cap >= ihl) & (tot >= ihl) & ((frag & 0x3FFF) == 0) \
            & ~_V4_SLOW[proto4]
    if any6:
        plen6 = _be(G, 4, ">u2").astype(np.int64)
        nh = G[:, 6]
        is6 &= (l3cap >= 40) & (plen6 > 0) & ~_V6_SLOW[nh]
    if any4 and any6:
        proto = np.where(is6, nh, proto4)
        l4 = np.where(is6, 40, ihl)
        ip_len = np.where(is6, 40 + plen6, tot)
    elif any6:
        proto, l4, ip_len = nh, np.full(m, 40, np.int64), 40 + plen6
    elif any4:
        proto, l4, ip_len = proto4, ihl, tot
    else:
        return
    ok = is4 | is6
    ip_pl = ip_len - l4
    a4 = o + l3 + l4
    l4cap = l3cap - l4

    # ---- transport header: _W4 bytes at l3 + l4, inside H unless IPv4 options are long
    p4 = np.where(ok, l3 + l4, 0)
    ok &= p4 <= _WH - _W4
    T = _rows_at(H, np.minimum(p4, _WH - _W4), _W4)
    tcp = ok & (proto == 6)
    udp = ok & (proto == 17)
    icmp = ok & ((proto == 1) | (proto == 58))
    sport = _be(T, 0, ">u2").astype(np.int32)
    dport = _be(T, 2, ">u2").astype(np.int32)
    doff = (T[:, 12] >> 4).astype(np.int64) << 2
    ulen = _be(T, 4, ">u2").astype(np.int64)
    tcp_bad = tcp & ((l4cap < 20) | (doff < 20) | (doff > ip_pl))
    # (the tunnel ports left to the slow path: the tables the compiled decode reads too)
    udp_bad = udp & ((l4cap < 8) | (ip_pl < 8) | _DPORT_SLOW[dport] | _SPORT_SLOW[sport])
    icmp_bad = icmp & ((l4cap < 8) | (ip_pl < 8))
    ok &= ~(tcp_bad | udp_bad | icmp_bad)
    tcp &= ok
    udp &= ok
    icmp &= ok
    ports = tcp | udp
    plen = np.where(tcp, ip_pl - doff,
                    np.where(udp, np.where((ulen >= 8) & (ulen <= ip_pl), ulen - 8, ip_pl - 8),
                             np.where(icmp, ip_pl - 8, ip_pl)))
    hoff = np.where(tcp, doff, np.where(udp | icmp, 8, 0))
    ploff = a4 + hoff
    plcap = np.minimum(plen, o + c - ploff)
    has = plcap > 0

    sl = slice(s, e)
    out["vlan"][sl] = vlan
    out["ipver"][sl] = np.where(is6, 6, 4)
    if any6:
        out["src_hi"][sl] = np.where(is6, _be(G, 8, ">u8"), 0)
        out["dst_hi"][sl] = np.where(is6, _be(G, 24, ">u8"), 0)
        lo_s, lo_d = _be(G, 16, ">u8"), _be(G, 32, ">u8")
        if any4:
            lo_s = np.where(is6, lo_s, _V4MAPPED | _be(G, 12, ">u4").astype(np.uint64))
            lo_d = np.where(is6, lo_d, _V4MAPPED | _be(G, 16, ">u4").astype(np.uint64))
        out["src_lo"][sl] = lo_s
        out["dst_lo"][sl] = lo_d
    else:
        out["src_hi"][sl] = 0
        out["dst_hi"][sl] = 0
        out["src_lo"][sl] = _V4MAPPED | _be(G, 12, ">u4").astype(np.uint64)
        out["dst_lo"][sl] = _V4MAPPED | _be(G, 16, ">u4").astype(np.uint64)
    out["proto"][sl] = proto
    out["sport"][sl] = np.where(ports, sport, -1)
    out["dport"][sl] = np.where(ports, dport, -1)
    out["icmp_type"][sl] = np.where(icmp, T[:, 0].astype(np.int16), -1)
    out["icmp_code"][sl] = np.where(icmp, T[:, 1].astype(np.int16), -1)
    out["tcp_flags"][sl] = np.where(tcp, (T[:, 12] & 1).astype(np.uint16) << 8 | T[:, 13], 0)
    out["seq"][sl] = np.where(tcp, _be(T, 4, ">u4"), 0)
    out["ack"][sl] = np.where(tcp, _be(T, 8, ">u4"), 0)
    out["tcp_win"][sl] = np.where(tcp, _be(T, 14, ">u2").astype(np.int32), -1)
    ip_id = _be(G, 4, ">u2").astype(np.int32)
    out["ip_id"][sl] = np.where(is6, -1, ip_id) if any6 else ip_id
    out["ip_len"][sl] = ip_len
    out["ttl"][sl] = np.where(is6, G[:, 7], G[:, 8]).astype(np.int16) if any6 else G[:, 8].astype(np.int16)
    out["payload_len"][sl] = plen
    out["pl_off"][sl] = np.where(has, ploff, -1)
    out["pl_cap"][sl] = np.where(has, plcap, 0)
    out["l2_bcast"][sl] = bcast
    out["l2_out"][sl] = _sent_by_host(ltv, lts, L, H, rows)
    out["unreassembled"][sl] = False
    out["l4_sum"][sl] = np.where(tcp, _be(T, 16, ">u2").astype(np.int32),
                                 np.where(udp, _be(T, 6, ">u2").astype(np.int32),
                                          np.where(icmp, _be(T, 2, ">u2").astype(np.int32), -1)))
    has_row[sl] = ok
