"""The decoder's per-frame pure-Python path.

Handles everything the vectorised fast path in :mod:`kscc_traffic.capture.decode` leaves out
(and, with ``decode(frames, fast=False)``, everything): every supported link type, VLAN stacks
of up to :data:`MAX_VLAN_TAGS` (20) tags, link-layer shims before the ethertype (Cisco MetaData, VN-Tag, E-Tag, Arista
timestamp, integrity-only MACsec: :data:`L2_SHIMS`, at most 8 a frame), 802.3 LLC/SNAP, PPPoE,
MPLS (up to :data:`MAX_MPLS_LABELS` labels), 802.11 (with or without radiotap), PPP, IPv4 options and fragments, IPv4 and IPv6
authentication headers (AH, walked to the transport inside), IPv6 extension headers and
fragments, tunnels (GRE incl. PPTP, RFC 1701 source routing, transparent Ethernet bridging, ERSPAN
II/III and WCCP redirection, the Network Service Header (RFC 8300: ethertype 0x894F), VXLAN (also on Linux's port 8472), VXLAN-GPE, Geneve, GTP-U, L2TPv2, IP-in-IP,
Ethernet in IP (protocol 143, SRv6 L2 services), Teredo, Ethernet over MPLS, 802.1ah PBB), and cut (snaplen) headers. Header layouts follow Wireshark's dissectors (named
where each is read).

It produces, per frame, either a row — a tuple in the order of :data:`ROW_FIELDS` — or a status
(:data:`NONIP`, :data:`MALFORMED`, :data:`PENDING` for a fragment held for reassembly (IP or
802.11), :data:`DAMAGED` for a frame the capture marks as damaged or whose FCS does not match:
radiotap's bad-FCS flag, PPI's FCS-invalid flag, :data:`TOO_DEEP` for a frame nested deeper
than the limits (:data:`MAX_TUNNEL_DEPTH` tunnels ...)); an 802.11
A-MSDU gives a list of them, one per subframe, so one frame may give several rows. Its rules
are the fast path's rules: on every frame the fast path accepts both give identical values (a
test checks this).

Offsets: ``d`` is the byte buffer being read (the capture buffer, or a reassembled datagram),
``pos``/``end`` positions in it, and ``base`` what to add to a position in ``d`` to get an
offset in ``Packets.buf`` (0 for the capture buffer).
"""
from __future__ import annotations

import struct
import zlib
from collections import Counter
from typing import Any, Iterator

from ._ipfrag import Completed, Reassembler

#: field order of a row (the Packets columns without ``frame`` and ``ts_ns``)
ROW_FIELDS = ("vlan", "ipver", "src_hi", "src_lo", "dst_hi", "dst_lo", "proto", "sport", "dport",
              "icmp_type", "icmp_code", "tcp_flags", "seq", "ack", "tcp_win", "ip_id", "ip_len",
              "ttl", "payload_len", "pl_off", "pl_cap", "l2_bcast", "l2_out", "l4_sum", "unreassembled")
_PL_OFF = ROW_FIELDS.index("pl_off")

NONIP = -1
MALFORMED = -2
#: :meth:`SlowDecoder._jumbo_length` of a Jumbo Payload option whose length is below 65,536
JUMBO_INVALID = -2
PENDING = -3
#: the capture marks the frame damaged (bad FCS flag), or its FCS does not match its bytes:
#: skipped (its bytes are not the bytes sent), counted in ``malformed`` and in
#: :attr:`SlowDecoder.bad_fcs` / :attr:`SlowDecoder.fcs_mismatch`
DAMAGED = -4
#: the frame nests deeper than the decoder reads (:data:`MAX_TUNNEL_DEPTH` tunnels,
#: :data:`MAX_VLAN_TAGS` VLAN tags, :data:`MAX_MPLS_LABELS` MPLS labels, :data:`MAX_L2_SHIMS`
#: link-layer shims): not decoded, counted in ``malformed`` and in :attr:`SlowDecoder.too_deep`
TOO_DEEP = -5
#: ``payload_len`` of a TCP row whose header the snaplen cut before its 16th byte (the end of the
#: window field, what Wireshark needs to show flags and length): unknown (``tcp_flags``/``seq``/
#: ``ack`` 0)
TCP_HDR_CUT = -1

TPIDS = frozenset((0x8100, 0x88A8, 0x9100))
#: ARPHRD types whose LINUX_SLL/SLL2 records keep the device's own link-layer header, read by it
#: when the protocol field is a Linux protocol type (below 0x600: ETH_P_802_2 from mac80211,
#: ETH_P_HDLC from a Frame Relay device), as Wireshark's sll.hatype table reads them (an ethertype
#: there is read as such): a monitor-mode interface's radiotap header and 802.11 frame, a Frame
#: Relay device's frame (:meth:`SlowDecoder._sll_hatype`)
ARPHRD_IEEE80211_RADIOTAP = 803
ARPHRD_FRAD = 770
SLL_HATYPES = frozenset((ARPHRD_IEEE80211_RADIOTAP, ARPHRD_FRAD))
#: ARPHRD type of a netlink monitor (``nlmon``) device: its LINUX_SLL/SLL2 records hold netlink
#: messages (the protocol field is the netlink family, or anything), never IP; Wireshark reads
#: them as netlink whatever the protocol field says. Not IP, on both paths
ARPHRD_NETLINK = 824
#: "jumbo frame" LLC (Wireshark's ETHERTYPE_JUMBO_LLC, scapy's ``Ether()/LLC()``): an LLC header
#: follows the ethertype as it follows an 802.3 length field
JUMBO_LLC = 0x8870
#: PPP protocols whose payload is compressed or encrypted (RFC 1962 CCP: 0x00fd, 0x00fb per
#: link; RFC 1968 ECP: 0x0053, 0x0055 per link): MPPE in a PPTP VPN (RFC 3078) sends every
#: packet as 0x00fd, so the IP packets inside cannot be read
PPP_SEALED = frozenset((0x00FD, 0x00FB, 0x0053, 0x0055))
#: IPv6 extension headers walked to reach the upper layer (44 fragment handled apart; a Shim6
#: header, :data:`SHIM6`, only when it is a payload extension header). Not the Mobility Header
#: (135) nor HIP (139), though IANA lists them as extension headers: RFC 6275 §6.1.1 has a
#: Mobility Header's Payload Proto be 59 (IPPROTO_NONE; other values are for "a future
#: extension"), RFC 7401 §5.1 a HIP header's Next Header be 59, and Wireshark ends the chain
#: there (its mipv6 and hip dissectors go no further): such a packet is a flow of protocol 135 /
#: 139 carrying that header's bytes, as the tshark engine shows it
IPV6_EXT = frozenset((0, 43, 44, 60, 51))
#: Shim6 (RFC 5533 §5): a payload extension header (P bit, the first of its third byte, set; 8
#: bytes) is followed by the upper layer and walked, as Wireshark walks it; a control message
#: (P clear, Next Header 59) ends the chain (a flow of protocol 140)
SHIM6 = 140
#: AF_INET6 in DLT_NULL / DLT_LOOP headers: Linux, Windows, NetBSD/OpenBSD, FreeBSD, Darwin
AF_INET6 = frozenset((10, 23, 24, 28, 30))
V4MAPPED = 0xFFFF_0000_0000
#: nesting limits: tunnels inside one another, VLAN tags in one stack, MPLS labels in one stack.
#: Real networks use 1-3 tunnels, 1-3 tags (QinQ) and up to about a dozen labels (segment
#: routing); the limits leave a wide margin and bound the work (and the recursion: one tunnel is
#: a few Python calls) a hostile frame can ask for. 20 VLAN tags is Wireshark's own limit
#: (``VLAN_MAX_NESTED_TAGS``: "Too many nested VLAN tags"); Wireshark has none for tunnels or
#: labels. A frame beyond one of them is :data:`TOO_DEEP`.
MAX_TUNNEL_DEPTH = 16
MAX_VLAN_TAGS = 20
MAX_MPLS_LABELS = 64
VXLAN_PORT = 4789
#: Linux's default VXLAN destination port (``ip link add … type vxlan`` without ``dstport``,
#: flannel): read as VXLAN only when the header and the frame inside pass
#: :meth:`SlowDecoder._vxlan_linux`'s checks, so other traffic on the port stays UDP
VXLAN_LINUX_PORT = 8472
#: IP protocol number of an Ethernet frame carried directly in IP (RFC 8986 §10.1: the SRv6
#: L2 services End.DX2 / End.DT2, after a Segment Routing Header or without one)
IPPROTO_ETHERNET = 143
#: IP protocol number of EtherIP (RFC 3378: a 2-byte header, then an Ethernet frame)
IPPROTO_ETHERIP = 97
GENEVE_PORT = 6081
L2TP_PORT = 1701
TEREDO_PORT = 3544
#: GTP-U (3GPP TS 29.281), either port; VXLAN-GPE (draft-ietf-nvo3-vxlan-gpe), destination port
GTPU_PORT = 2152
VXLAN_GPE_PORT = 4790
#: LISP data plane (RFC 9300 §5.1; either port, as Wireshark's packet-lisp-data.c reads it): an
#: 8-byte header, then an IPv4 or IPv6 packet; 4342 is LISP's control port
LISP_DATA_PORT = 4341
#: the protocol types of a Geneve payload read (Ethernet, IPv4, IPv6, MPLS, NSH); others: not Geneve
_GENEVE_TYPES = frozenset((0x6558, 0x0800, 0x86DD, 0x8847, 0x8848, 0x894F))
LISP_CONTROL_PORT = 4342
#: MPLS in UDP (RFC 7510; either port, as Wireshark's packet-mpls.c reads it): a label stack,
#: then the packet
MPLS_UDP_PORT = 6635
#: GRE in UDP (RFC 8086; either port, as Wireshark's packet-gre.c reads it): a GRE header, then
#: the packet
GRE_UDP_PORT = 4754
#: the ethertype of an Ethernet frame carried as a packet (Linux's ETH_P_TEB, "transparent
#: Ethernet bridging"): in a LINUX_SLL/SLL2 header of a GRE device (ARPHRD_IPGRE 778) whose
#: tunnel carries Ethernet, as Wireshark's ethertype table reads it (packet-eth.c)
ETH_BRIDGED = 0x6558
#: TZSP (TaZmen Sniffer Protocol: MikroTik's packet sniffer streams the frames it sees to this
#: port, and some sensors send from it): a 4-byte header and tagged fields, then the frame
TZSP_PORT = 37008
#: TZSP encapsulations (Wireshark's packet-tzsp.c) -> their name; 1 (Ethernet) and 7 (raw IP)
#: are read, the others counted (:attr:`SlowDecoder.tzsp_unread`), the datagram kept as UDP
TZSP_ENCAPS = {1: "Ethernet", 2: "Token Ring", 3: "SLIP", 4: "PPP", 5: "FDDI", 7: "raw IP",
               18: "802.11", 119: "802.11 with Prism headers", 126: "802.11 with radiotap headers",
               127: "802.11 with AVS headers"}
#: TZSP encapsulations read: Ethernet, raw IP
TZSP_READ = frozenset((1, 7))
#: UDP ports whose datagrams may carry a tunnel (either port: :meth:`SlowDecoder._udp_tunnel`)
_TUNNEL_UDP_PORTS = frozenset((VXLAN_PORT, VXLAN_LINUX_PORT, GENEVE_PORT, L2TP_PORT, TEREDO_PORT,
                               GTPU_PORT, VXLAN_GPE_PORT, LISP_DATA_PORT, MPLS_UDP_PORT, GRE_UDP_PORT,
                               TZSP_PORT))
#: ethertypes of the headers some switches and taps insert between the source address and the
#: packet's own ethertype, read as in Wireshark's dissectors: Cisco MetaData / TrustSec SGT
#: (0x8909: version, length, options, SGT: 6 bytes, then the ethertype; packet-cisco-metadata.c),
#: Cisco VN-Tag (0x8926: 4 bytes; packet-vntag.c), 802.1BR E-Tag (0x893F: 6 bytes;
#: packet-etag.c), Arista's timestamp header (0xD28B: subtype 1, version, a 64- or 48-bit
#: timestamp; packet-avsp.c), MACsec (0x88E5: the SecTAG, see ``SlowDecoder._macsec``) and
#: 802.1ah PBB's I-TAG (0x88E7: 4 bytes, then the customer's Ethernet header; read as a tunnel)
L2_SHIMS = frozenset((0x8909, 0x8926, 0x893F, 0xD28B, 0x88E5, 0x88E7))
#: shims walked at most in one frame (beyond: :data:`TOO_DEEP`)
MAX_L2_SHIMS = 8
#: ethertype of the Network Service Header (RFC 8300), read by :meth:`SlowDecoder._nsh`
NSH_ETHERTYPE = 0x894F
#: Arista timestamp header versions: 64-bit (8-byte) and 48-bit (6-byte) timestamps (TAI/UTC,
#: and their "J2" variants)
_ARISTA_TS64 = frozenset((0x0010, 0x0110, 0x0011, 0x0111))
_ARISTA_TS48 = frozenset((0x0020, 0x0120, 0x0021, 0x0121))
#: MACsec (IEEE 802.1AE) TCI bits: version (must be 0), SCI present, encrypted, changed text;
#: and the ICV length of every cipher suite that leaves the data unchanged (E and C clear)
MACSEC_V, MACSEC_SC, MACSEC_E, MACSEC_C = 0x80, 0x20, 0x08, 0x04
MACSEC_ICV = 16
#: ethertypes that make the bytes after an MPLS label stack look like an Ethernet header (a
#: pseudowire without control word): IPv4, IPv6, ARP, VLAN tags, PPPoE session, MPLS
PW_ETHERTYPES = frozenset((0x0800, 0x86DD, 0x0806, 0x8100, 0x88A8, 0x9100, 0x8864, 0x8847,
                           0x8848))
#: radiotap Flags field bits: the frame ends with the 4-byte FCS / the 802.11 header is padded
#: to a multiple of 4 bytes before the payload
RADIOTAP_F_FCS = 0x10
RADIOTAP_F_DATAPAD = 0x20
#: radiotap Flags bit: the frame failed its FCS check (the driver kept it: ``fcsfail``)
RADIOTAP_F_BADFCS = 0x40
#: PPI 802.11-common field (type 2, 20 bytes): its flags (little-endian, at byte 8) say the
#: 802.11 frame ends with its FCS (bit 0) / the FCS is invalid (bit 2)
PPI_80211_COMMON = 2
PPI_F_FCS = 0x01
PPI_F_FCS_INVALID = 0x04
#: 802.11 fragments (More Fragments bit, fragment number): MSDUs in reassembly at most (the
#: oldest is dropped beyond it) and fragments of one MSDU at most (a 4-bit fragment number)
DOT11_MAX_MSDUS = 256
DOT11_MAX_FRAGMENTS = 16
#: an MSDU not completed within this many ns of its first fragment is dropped: the receive
#: lifetime after which a receiver discards it (dot11MaxReceiveLifetime, 512 TU; a sequence
#: number used again after it is another MSDU)
DOT11_LIFETIME_NS = 512 * 1024 * 1000

_BCAST = b"\xff" * 6
_u16 = struct.Struct("!H").unpack_from
_u32 = struct.Struct("!I").unpack_from
_le16 = struct.Struct("<H").unpack_from
_le32 = struct.Struct("<I").unpack_from
_hhh = struct.Struct("!HHH").unpack_from
_ii = struct.Struct("!II").unpack_from
_hh = struct.Struct("!HH").unpack_from
_hhii = struct.Struct("!HHII").unpack_from
_qqqq = struct.Struct("!QQQQ").unpack_from
_qq = struct.Struct("!QQ").unpack_from


#: the shortest Apple PKTAP header (``struct pktap_header`` as first defined: Wireshark's
#: MIN_PKTAP_HDR_LEN); later ones are longer (156 bytes), the frame starting at pth_length
PKTAP_MIN_HEADER = 108
#: link types a PKTAP or PPI header may announce for the frame after it (those read here)
LINK_HEADER_INNER = frozenset((0, 1, 9, 12, 14, 50, 101, 104, 105, 108, 113, 127, 204, 228, 229, 276))
#: link types read by :meth:`SlowDecoder._other_link` (ERF, PPP_ETHER, FDDI, Token Ring, SUNATM,
#: IEEE 1394, IP over FC, Frame Relay, DOCSIS, Juniper Ethernet)
_OTHER_LINKS = frozenset((197, 51, 10, 6, 123, 138, 122, 107, 143, 178))
#: link types whose header records no link-layer destination of the packet (raw IP, BSD loopback,
#: NFLOG, PFLOG, ENC, IPNET, PPP and HDLC, Frame Relay, ATM RFC 1483, MPLS, PPPoE without its
#: Ethernet header): a frame of one is ``l2_out`` (as SLL's outgoing packets), so that a datagram
#: to a subnet's broadcast address is told a broadcast by its address (``flows._sent_cast``; break-it
#: s52 formats #1); so is an IP packet a tunnel carries directly (:meth:`SlowDecoder._tunnel`), not
#: one in a tunnel's Ethernet or 802.11 frame
#: ``_Ctx.out`` of a packet a tunnel carries until an Ethernet frame in it is read (true: an IP
#: packet right in the tunnel records no link-layer destination)
_IN_TUNNEL = 2
#: ... and of a frame of a link type in :data:`NO_L2_DST` until an Ethernet frame in it is read
#: (bridged Ethernet over HDLC or ATM records its destination: review s52 #5)
_NO_DST = 3
NO_L2_DST = frozenset((0, 108, 12, 14, 101, 228, 229, 239, 117, 109, 226, 9, 50, 104, 204, 205, 206, 107,
                       100, 11, 219, 51))
#: link types of Ethernet frames behind a capture device's or switch's own header, read by
#: :meth:`SlowDecoder._device_ether`: netANALYZER (240), netANALYZER transparent mode (241),
#: Linux DSA switch tags (DSA_TAG_BRCM 281, DSA_TAG_BRCM_PREPEND 282, DSA_TAG_DSA 284,
#: DSA_TAG_EDSA 285)
DEVICE_ETHER_LINKS = frozenset((240, 241, 281, 282, 284, 285))
#: netANALYZER status bits that say the frame's bytes are not what was sent (MII RX_ER,
#: alignment error, FCS error, no valid SFD, shorter than 64 bytes); "too long" and the preamble
#: length bits (0x08, 0x40, 0x80) leave the frame whole
NETANA_DAMAGED = 0x01 | 0x02 | 0x04 | 0x10 | 0x20
#: netANALYZER status word: a GPIO event, not a frame; the transparent-mode bit
NETANA_GPIO, NETANA_TRANSPARENT = 0x100, 0x200
#: the magic number of a Juniper header ("MGC"), and its flags: extensions follow, no link header
_JUNIPER_MAGIC = b"MGC"
_JUNIPER_EXT, _JUNIPER_NO_L2 = 0x80, 0x02
#: the payload of a Juniper frame without link header, by its protocol number (little-endian,
#: packet-juniper.h): IP (2, 3: MPLS->IPv4; 6, 7: IPv6, MPLS->IPv6; the version nibble decides,
#: as under the raw link types), an MPLS label stack (4, 5, 8), Ethernet (204)
_JUNIPER_IP, _JUNIPER_MPLS, _JUNIPER_ETHER = frozenset((2, 3, 6, 7)), frozenset((4, 5, 8)), 204
#: Token Ring's broadcast address (all stations, functional form)
_TR_BCAST = b"\xc0\x00\xff\xff\xff\xff"
#: NFLOG attribute carrying the packet (NFULA_PAYLOAD)
NFULA_PAYLOAD = 9


def _nflog_payload(d: Any, p: int, end: int, missing: int) -> tuple[int, int] | None:
    """Where an NFLOG record's packet is, from its TLVs at ``d[p:end]`` (length and type in
    the capturing host's byte order, each TLV padded to 4 bytes): ``(start, stop)``; ``(-1, -1)``
    when the record has no NFULA_PAYLOAD; None when the TLVs do not parse in either byte order.
    A payload the snaplen cut (``missing`` bytes not captured) stops at ``end``."""
    walked = False
    for unpack in (_le16, _u16):
        q = p
        while q + 4 <= end:
            ln, typ = unpack(d, q)[0], unpack(d, q + 2)[0] & 0x3FFF   # (less the NLA_F_* bits)
            if ln < 4:
                break
            if q + ln > end:
                if typ == NFULA_PAYLOAD and missing and q + ln <= end + missing:
                    return q + 4, end
                break
            if typ == NFULA_PAYLOAD:
                return q + 4, q + ln
            q += (ln + 3) & ~3
        else:
            walked = walked or q >= end
    return (-1, -1) if walked else None


def routing_final(d: Any, p: int, end: int) -> tuple[int, int] | None:
    """The final destination ``(hi, lo)`` (two 64-bit halves) that the IPv6 routing header at
    ``p`` (captured up to ``end``) sends the packet to, or ``None`` when the header's destination
    address already is the final one.

    Only while segments are left (``Segments Left`` > 0) does the header's destination differ
    from the final one: for type 0 (RFC 2460 §4.4, deprecated by RFC 5095 but still seen) the
    last address of its list, for type 2 (Mobile IPv6, RFC 6275 §6.4: a correspondent's packet
    to a mobile node's care-of address, one segment left) its home address, for type 4 (a
    Segment Routing Header, RFC 8754 §2: the list in reverse order) ``Segment List[0]``. This
    is the address the destination's transport layer sees (the checksum pseudo-header, RFC 8200
    §8.1, RFC 6275 §6.1) and the one Zeek keys the connection on
    (``IPv6_Hdr_Chain::ProcessRoutingHeader``) and Wireshark's conversations show, so the two
    directions of a connection with a routing header on one of them are one flow (the mobile
    node's own packets name the home address in a Home Address option: :func:`home_address`).
    Other types (3, RPL's compressed addresses) and a header the snaplen cut before the address
    keep the header's destination."""
    if end - p < 8 or d[p + 3] == 0:
        return None
    t = d[p + 2]
    if t == 0:
        n = d[p + 1] >> 1                       # addresses: 16 bytes = 2 length units each
        at = p + 8 + 16 * (n - 1)
    elif t == 4:
        n = d[p + 1] >> 1
        at = p + 8
    elif t == 2:
        n = 1 if d[p + 1] == 2 and d[p + 3] == 1 else 0
        at = p + 8
    else:
        return None
    if n < 1 or at + 16 > end:
        return None
    return _qq(d, at)


def home_address(d: Any, p: int, end: int) -> tuple[int, int] | None:
    """The home address ``(hi, lo)`` in a Home Address option (type 0xC9, 16 bytes: RFC 6275
    §6.3) of the IPv6 Destination Options header at ``p`` (captured up to ``end``), else
    ``None``. A mobile node away from home sends from its care-of address with this option; the
    receiver's transport layer sees the home address as the source (RFC 6275 §9.3.1), as Zeek
    keys the connection and Wireshark's conversations show it (the correspondent's answers
    reach the home address through a type 2 routing header: :func:`routing_final`)."""
    for t, q, ln, whole in v6_options(d, p, end):
        if t == 0xC9:
            return _qq(d, q) if ln == 16 and whole else None
    return None


def v6_options(d: Any, p: int, end: int) -> Iterator[tuple[int, int, int, bool]]:
    """The TLV options of the IPv6 Hop-by-Hop or Destination Options header at ``p`` (captured up
    to ``end``; RFC 8200 §4.2), in order: ``(type, data offset, data length, whole)``, ``whole``
    when the data lies within the header and the capture. Pad1 is skipped; the walk ends at
    the header's end or an option whose length byte was not captured."""
    if end - p < 2:
        return
    hend = min(end, p + ((d[p + 1] + 1) << 3))
    q = p + 2
    while q < hend:
        t = d[q]
        if t == 0:                              # Pad1
            q += 1
            continue
        if q + 2 > hend:
            return
        ln = d[q + 1]
        yield t, q + 2, ln, q + 2 + ln <= hend
        q += 2 + ln


def vlan_value(tags: list[int]) -> int:
    """Encode a VLAN stack (VIDs, outermost first) as the ``vlan`` column value.

    0 when untagged or when every tag has VID 0 (priority tags). Otherwise
    ``1 << 24 | outer << 12 | inner`` of the two innermost tags, and any tags further out
    packed 12 bits each from bit 25 up (innermost of them first; at most 5 tags are encoded:
    of a deeper stack the 3rd and 4th from the inside and the outermost, bits 49-60, so that
    :func:`kscc_traffic.flows.vlan_ids` reads the outermost tag's VLAN ID as Zeek's ``vlan``).
    """
    if not tags or not any(tags):
        return 0
    v = 1 << 24 | tags[-1]
    if len(tags) > 1:
        v |= tags[-2] << 12
    for k, t in enumerate(reversed(tags[-4:-2])):
        v |= t << (25 + 12 * k)
    if len(tags) >= 5:
        v |= tags[0] << 49
    return v


#: first word of an AVS monitor header (big-endian version 1 or 2; also found under the Prism
#: link type, as Wireshark's prism dissector checks)
_AVS_MAGIC = (0x80211001, 0x80211002)


def v4_options_ok(d: Any, p: int, end: int) -> bool:
    """The IPv4 options in ``d[p:end]`` (the header after its 20 fixed bytes, to its IHL) parse
    (RFC 791 §3.1; the generic checks of Linux's ``ip_options_compile``, BSD's ``ip_dooptions``,
    which drop a datagram failing them): end of options (0) ends them, no-operation (1) is one
    byte, any other option has a length byte of at least 2 that keeps it inside the header.
    False is a damaged header length (an IHL larger than the header: the transport header read
    as options) or damaged options."""
    while p < end:
        t = d[p]
        if t == 0:
            return True
        if t == 1:
            p += 1
            continue
        if end - p < 2:
            return False
        ln = d[p + 1]
        if ln < 2 or ln > end - p:
            return False
        p += ln
    return True


def docsis_hcs(header: bytes) -> int:
    """The header check sequence of a DOCSIS MAC header (``header``: its bytes before the HCS):
    CRC-16 X.25 (CCITT polynomial, reflected, initial and final 0xFFFF), as it is stored, read
    little-endian (DOCSIS RFI 1.1 §6.2.1.4; Wireshark's packet-docsis.c checks it so)."""
    crc = 0xFFFF
    for c in header:
        crc ^= c
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def _wlan_header_length(d: Any, pos: int, end: int) -> int:
    """Length of the monitor-mode header at ``pos`` of a Prism (LINKTYPE 119) or AVS (163)
    frame, before its 802.11 frame; -1 when it does not fit. AVS: version word, then its length
    (big-endian, at least 8); Prism: message code, then the message length (host byte order:
    little-endian unless that is absurd; 144 in practice). Neither says whether the 802.11 frame
    ends with its FCS: the IP header's length bounds the packet either way, as Ethernet padding."""
    if end - pos < 8:
        return -1
    word = _u32(d, pos)[0]
    if word in _AVS_MAGIC:
        hlen = _u32(d, pos + 4)[0]
    else:
        hlen = _le32(d, pos + 4)[0]
        if hlen > 0xFFFF:
            hlen = _u32(d, pos + 4)[0]
    return hlen if 8 <= hlen <= end - pos else -1


def fcs_ok(d: Any, pos: int, end: int) -> bool:
    """The 4-byte FCS at ``d[end-4:end]`` (CRC-32 of IEEE 802.3, as Ethernet and 802.11 send
    it: little-endian in the bytes) matches the bytes ``d[pos:end-4]``."""
    return zlib.crc32(memoryview(d)[pos:end - 4]) == _le32(d, end - 4)[0]


def _ppi_80211_flags(d: Any, pos: int, hend: int, align: bool) -> int:
    """The flags of the 802.11-common field among the PPI fields in ``d[pos:hend]`` (each:
    type and length, little-endian 16-bit, then the data, padded to 4 bytes when the header's
    ``align`` flag is set), or 0 without one."""
    while pos + 4 <= hend:
        ftype, flen = _le16(d, pos)[0], _le16(d, pos + 2)[0]
        if ftype == PPI_80211_COMMON and flen >= 20 and pos + 4 + flen <= hend:
            return _le16(d, pos + 12)[0]
        pos += 4 + ((flen + 3) & ~3 if align else flen)
    return 0


def radiotap_flags(d: Any, pos: int, rlen: int) -> int:
    """The Flags field of the radiotap header of ``rlen`` bytes at ``pos`` (0 when absent), or
    -1 when the header is inconsistent (present bitmaps or fields running past ``rlen``).

    The header is 8 bytes (version, pad, length, first ``present`` word, little-endian), then
    one more 32-bit present word for as long as bit 31 (extension) of the previous one is set;
    the fields follow in bit order, each aligned to its natural size from the start of the
    header. Only the first word's bits 0 (TSFT: 8 bytes, 8-aligned) and 1 (Flags: 1 byte)
    are needed to reach Flags.
    """
    present = _le32(d, pos + 4)[0]
    q = 8
    w = present
    while w & 0x8000_0000:                              # extended present bitmap
        if q + 4 > rlen:
            return -1
        w = _le32(d, pos + q)[0]
        q += 4
    if not present & 2:
        return 0
    if present & 1:                                     # TSFT, 8-byte aligned
        q = ((q + 7) & ~7) + 8
    if q + 1 > rlen:
        return -1
    return d[pos + q]


class _Ctx:
    """Per-frame context: the facts of the link layer that carries the packet being decoded
    (VLAN tags, broadcast destination), reset when a tunnel is entered (see
    :meth:`SlowDecoder._tunnel`)."""

    __slots__ = ("frame", "ts", "tags", "bcast", "out", "_vlan", "end", "missing", "start")

    def __init__(self, frame: int, ts: int, end: int = -1, missing: int = 0,
                 start: int = -1) -> None:
        self.frame = frame
        self.ts = ts
        self.start = start          # start of the frame in the capture buffer
        self.end = end              # end of the frame's captured bytes in the capture buffer
        self.missing = missing      # bytes of the frame not captured (original - captured length)
        self.tags: list[int] = []
        self.bcast = False
        self.out = False            # no link-layer destination: SLL/SLL2 packet type 4, NO_L2_DST
        self._vlan: int | None = None

    @property
    def vlan(self) -> int:
        if self._vlan is None:
            self._vlan = vlan_value(self.tags)
        return self._vlan



def _gre_sre_end(d: Any, q: int, dend: int) -> int:
    """Where the Source Route Entries of a GRE header with the R bit set (RFC 1701 §2.1; ``q``:
    the first entry, after the optional fields) end: each entry is address family (2 bytes),
    SRE offset (1), SRE length (1) and that many bytes of routing information, the list ends
    with an entry of family 0 and length 0 (as Wireshark's packet-gre.c reads them); -1 when
    the captured bytes (up to ``dend``) end first. Bounded: each entry moves ``q`` on by at
    least 4 bytes."""
    while dend - q >= 4:
        af, n = _u16(d, q)[0], d[q + 3]
        q += 4
        if af == 0 and n == 0:
            return q
        q += n
    return -1

class SlowDecoder:
    """Decode frames one at a time. Collect rows in :attr:`rows` as ``(frame, row)``."""

    def __init__(self, buf: Any) -> None:
        self.buf = buf
        self.nbuf = len(buf)
        self.extra = bytearray()             # reassembled datagram payloads, after buf
        self.frag = Reassembler()
        self.tunnels: Counter[str] = Counter()
        self.non_ip = 0
        self.malformed = 0
        #: 802.11 data frames skipped because their body is encrypted (the Protected bit)
        self.protected = 0
        #: MACsec frames skipped because their data is encrypted (E or C bit of the SecTAG)
        self.macsec_encrypted = 0
        #: IPv4 datagrams skipped (counted in ``malformed`` too) because their options do not
        #: parse (:func:`v4_options_ok`: a damaged header length or damaged options)
        self.bad_v4_options = 0
        #: IPv6 packets skipped (counted in ``malformed`` too) because their payload length is 0
        #: and the Jumbo Payload option of their hop-by-hop header gives a length below 65,536
        #: (RFC 2675 §3: invalid; Wireshark: malformed): the packet's length is not known
        self.bad_jumbo = 0
        #: frames not decoded because they nest deeper than the limits (:data:`TOO_DEEP`; also
        #: in ``malformed``)
        self.too_deep = 0
        #: PPP frames of Van Jacobson compressed or uncompressed TCP (protocol 0x002d/0x002f,
        #: RFC 1144): not read (counted in ``non_ip`` too)
        self.vj_tcp = 0
        #: PPP frames compressed or encrypted (protocol 0x00fd/0x00fb, CCP; 0x0053/0x0055, ECP:
        #: MPPE in a PPTP VPN): not read (counted in ``non_ip`` too; :func:`~.decode.ppp_sealed_note`)
        self.ppp_sealed = 0
        #: TZSP packets (type 0 or 1) of an encapsulation not read (802.11, PPP…): encapsulation
        #: -> count (the UDP datagram carrying each is the row)
        self.tzsp_unread: Counter[int] = Counter()
        #: frames skipped because the capture marks them damaged (radiotap bad-FCS flag, PPI
        #: FCS-invalid flag) / because their FCS does not match (both also in ``malformed``)
        self.bad_fcs = 0
        self.fcs_mismatch = 0
        #: 802.11 MSDUs in reassembly: (receiver, transmitter, sequence number) ->
        #: [next fragment number, body parts, frames, bcast, amsdu, mesh, cut, first time]
        self.dot11_frags: dict[tuple, list] = {}
        #: 802.11 fragments dropped (a fragment before them missing from the capture, or never
        #: completed; also in ``non_ip``) / repeated (a retransmission of one held; in ``non_ip``)
        self.dot11_frag_lost = 0
        self.dot11_frag_dup = 0
        #: ``(frame, row)`` in decoding order; a frame may give several rows (the subframes of
        #: an 802.11 A-MSDU, in their order)
        self.rows: list[tuple[int, tuple]] = []

    # ------------------------------------------------------------------ entry points
    def frame(self, i: int, ts: int, lt: int, off: int, cap: int, wire: int = -1) -> None:
        """Decode record ``i`` (``cap`` captured bytes at ``off`` in the buffer; ``wire``: the
        record's original length, -1 when unknown)."""
        ctx = _Ctx(i, ts, off + cap, max(wire - cap, 0), off)
        ctx.out = _NO_DST if lt in NO_L2_DST else False
        try:
            r = self._link(lt, self.buf, off, off + cap, ctx)
        except (IndexError, struct.error):      # a bound check missed: never raise
            r = MALFORMED
        if type(r) is list:                     # several packets (A-MSDU): see _amsdu
            rows = [x for x in r if type(x) is tuple]
            self.rows.extend((i, x) for x in rows)
            if rows or PENDING in r:
                return
            r = MALFORMED if MALFORMED in r else TOO_DEEP if TOO_DEEP in r else NONIP
        if type(r) is tuple:
            self.rows.append((i, r))
        elif r == NONIP:
            self.non_ip += 1
        elif r == MALFORMED or r == DAMAGED:
            self.malformed += 1
        elif r == TOO_DEEP:
            self.too_deep += 1
            self.malformed += 1

    def finish(self) -> None:
        """End of capture: fragments never reassembled become rows of their own, marked
        ``unreassembled`` and without payload bytes (``pl_off`` -1, ``pl_cap`` 0): their
        datagram never reached a transport layer whole, so nothing in it was delivered to an
        application (a DNS answer whose second fragment was dropped is no answer). Ports,
        flags and lengths stay: the packet still counts in its flow."""
        self.frag.finish()
        for e in self.dot11_frags.values():             # MSDUs never completed
            self._dot11_lost(e)
        self.dot11_frags.clear()
        k = _PL_OFF
        self.rows.extend((i, r[:k] + (-1, 0) + r[k + 2:-1] + (True,)) for i, r in self.frag.flushed)
        self.frag.flushed.clear()

    # ------------------------------------------------------------------ link layers
    def _link(self, lt: int, d: Any, pos: int, end: int, ctx: _Ctx) -> Any:
        if lt == 1:
            return self._ether(d, pos, end, 0, ctx, 0)
        if lt == 113:                                   # LINUX_SLL
            if end - pos < 16:
                return MALFORMED
            if _u16(d, pos + 2)[0] == ARPHRD_NETLINK:   # (nlmon: netlink messages, not IP)
                return NONIP
            if _u16(d, pos + 2)[0] in SLL_HATYPES and _u16(d, pos + 14)[0] < 0x600:
                return self._sll_hatype(_u16(d, pos + 2)[0], d, pos + 16, end, ctx)
            ptype = _u16(d, pos)[0]
            ctx.bcast, ctx.out = ptype == 1, ptype == 4
            return self._sll_proto(_u16(d, pos + 14)[0], d, pos + 16, end, ctx)
        if lt == 276:                                   # LINUX_SLL2
            if end - pos < 20:
                return MALFORMED
            if _u16(d, pos + 8)[0] == ARPHRD_NETLINK:
                return NONIP
            if _u16(d, pos + 8)[0] in SLL_HATYPES and _u16(d, pos)[0] < 0x600:
                return self._sll_hatype(_u16(d, pos + 8)[0], d, pos + 20, end, ctx)
            ctx.bcast, ctx.out = d[pos + 10] == 1, d[pos + 10] == 4
            return self._sll_proto(_u16(d, pos)[0], d, pos + 20, end, ctx)
        if lt in (101, 12, 14, 228, 229):
            # (228/229 say IPv4/IPv6; the version nibble decides, as Wireshark's IPv4 dissector
            # does under 228 (its IPv6 one, 4.0, calls IPv4 under 229 malformed): a tool that
            # wrote the wrong raw type loses nothing)
            return self._ip(d, pos, end, 0, ctx, 0, 0)
        if lt in (0, 108):                              # NULL (host order), LOOP (network order)
            if end - pos < 4:
                return MALFORMED
            h0, h1, h2, h3 = d[pos], d[pos + 1], d[pos + 2], d[pos + 3]
            if h1 or h2 or (h0 and h3):
                return NONIP
            fam = h0 | h3
            if fam == 2:
                return self._ip(d, pos + 4, end, 0, ctx, 4, 0)
            if fam in AF_INET6:
                return self._ip(d, pos + 4, end, 0, ctx, 6, 0)
            return NONIP
        if lt == 127:                                   # radiotap + 802.11
            return self._radiotap(d, pos, end, ctx)
        if lt == 105:
            return self._dot11(d, pos, end, ctx, False)
        if lt in (119, 163):                            # Prism or AVS monitor header + 802.11
            hlen = _wlan_header_length(d, pos, end)
            if hlen < 0:
                return MALFORMED
            return self._dot11(d, pos + hlen, end, ctx, False)
        if lt == 9:
            return self._ppp(d, pos, end, 0, ctx, 0)
        if lt == 204:                                   # PPP_WITH_DIR: a direction byte, then PPP
            if end - pos < 2:
                return MALFORMED
            return self._ppp(d, pos + 1, end, 0, ctx, 0)
        if lt == 205:                                   # C_HDLC_WITH_DIR: a direction byte, then C_HDLC
            if end - pos < 5:
                return MALFORMED
            return self._ethertype(_u16(d, pos + 3)[0], d, pos + 5, end, 0, ctx, 0)
        if lt == 206:                                   # FRELAY_WITH_DIR: a direction byte, then Q.922
            return self._frelay(d, pos + 1, end, ctx) if end - pos >= 2 else MALFORMED
        if lt == 50:                                    # PPP in HDLC framing, or Cisco HDLC
            if end - pos >= 4 and d[pos] in (0x0F, 0x8F) and d[pos + 1] == 0:
                return self._ethertype(_u16(d, pos + 2)[0], d, pos + 4, end, 0, ctx, 0)
            return self._ppp(d, pos, end, 0, ctx, 0)
        if lt == 104:                                   # C_HDLC: address, control, ethertype
            if end - pos < 4:
                return MALFORMED
            return self._ethertype(_u16(d, pos + 2)[0], d, pos + 4, end, 0, ctx, 0)
        if lt in (100, 11):                             # ATM_RFC1483: LLC/SNAP, then the packet
            # (11: the BSD DLT_ATM_RFC1483 number, kept in older files; Wireshark reads it so too)
            return self._llc(d, pos, end, 0, ctx, 0)
        if lt == 219:                                   # MPLS: a label stack, then the packet
            return self._ethertype(0x8847, d, pos, end, 0, ctx, 0)
        if lt in _OTHER_LINKS:
            return self._other_link(lt, d, pos, end, ctx)
        if lt in DEVICE_ETHER_LINKS:
            return self._device_ether(lt, d, pos, end, ctx)
        return self._link_headers(lt, d, pos, end, ctx)

    def _device_ether(self, lt: int, d: Any, pos: int, end: int, ctx: _Ctx) -> Any:
        """An Ethernet frame behind a capture device's or a switch's own header (units: bytes).

        - netANALYZER (240, Hilscher's capture hardware, as Wireshark's packet-netanalyzer.c
          reads it): a 32-bit little-endian status word, then the frame with its FCS (taken
          off, not checked: the status says whether it matched). A frame the status marks
          damaged (:data:`NETANA_DAMAGED`) is :data:`DAMAGED`; a GPIO event, or a version-2
          word announcing something else than Ethernet (PROFIBUS, buffer state, time tick), is
          not IP.
        - netANALYZER transparent mode (241): the same, with the preamble (0x55 bytes) and the
          SFD (0xD5) before the frame. Wireshark shows these frames as raw data only (its
          dissector leaves transparent mode to low-level analysis); the frame after the SFD is
          read here as in 240 (the tshark engine reads no packet in them).
        - Linux DSA switch tags (a capture on the conduit interface of a switch chip, as on an
          OpenWrt router; tcpdump.org's link-layer header types): DSA_TAG_BRCM (281: a 4-byte
          Broadcom tag between the source address and the type), DSA_TAG_BRCM_PREPEND (282: the
          tag before the destination address), DSA_TAG_DSA (284: a 4-byte Marvell DSA tag
          between the source address and the type) and DSA_TAG_EDSA (285: an 8-byte tag there,
          its own ethertype and 2 reserved bytes before the DSA tag). A Marvell tag with its
          Tagged bit (byte 0, 0x20) stands for the frame's 802.1Q tag (the switch took it
          off): its VID is the frame's VLAN tag, as tcpdump prints it.
        """
        if lt in (240, 241):
            if end - pos < 4:
                return MALFORMED
            word = _le32(d, pos)[0]
            if word & NETANA_GPIO or ((word >> 10) & 0xF == 2 and word >> 28):
                return NONIP
            if word & NETANA_DAMAGED:
                self.bad_fcs += 1
                return DAMAGED
            p = pos + 4
            if lt == 241:
                while p < end and d[p] == 0x55:
                    p += 1
                if p >= end or d[p] != 0xD5:
                    return MALFORMED
                p += 1
            return self._ether(d, p, self._strip_fcs(d, p, end, ctx, check=False), 0, ctx, 0)
        if lt == 282:
            return self._ether(d, pos + 4, end, 0, ctx, 0) if end - pos >= 4 else MALFORMED
        tag = 8 if lt == 285 else 4
        if end - pos < 14 + tag:
            return MALFORMED
        ctx.bcast = d[pos:pos + 6] == _BCAST
        if lt != 281:
            t = pos + 12 + tag - 4                      # the (Marvell) DSA tag's 4 bytes
            if d[t] & 0x20:
                ctx.tags.append(_u16(d, t + 2)[0] & 0xFFF)
        return self._ethertype(_u16(d, pos + 12 + tag)[0], d, pos + 14 + tag, end, 0, ctx, 0)

    def _other_link(self, lt: int, d: Any, pos: int, end: int, ctx: _Ctx) -> Any:
        """Link types older or rarer than Ethernet whose header is read as Wireshark's
        dissector reads it, down to the LLC/SNAP header, ethertype or PPP frame that carries
        the packet: ERF (197, Endace DAG), PPPoE sessions (51), FDDI (10), Token Ring (6),
        Sun ATM (123), IP over IEEE 1394 (138), IP over Fibre Channel (122), Frame Relay (107),
        DOCSIS (143), Juniper Ethernet (178)."""
        if lt == 197:
            return self._erf(d, pos, end, ctx)
        if lt == 51:                                    # PPP_ETHER: a PPPoE header, then PPP
            return self._ethertype(0x8864, d, pos, end, 0, ctx, 0)
        if lt == 10:                                    # FDDI: FC, destination, source, LLC
            if end - pos < 13:
                return MALFORMED
            if (d[pos] >> 4) & 3 != 1:                  # not an LLC frame (SMT, MAC, token)
                return NONIP
            ctx.bcast = d[pos + 1:pos + 7] == _BCAST
            return self._llc(d, pos + 13, end, 0, ctx, 0)
        if lt == 6:                                     # Token Ring: AC, FC, dst, src, RIF, LLC
            if end - pos < 14:
                return MALFORMED
            if d[pos + 1] & 0xC0 != 0x40:               # a MAC frame, not LLC
                return NONIP
            p = pos + 14
            if d[pos + 8] & 0x80:                       # routing information present
                if p >= end:
                    return MALFORMED
                rif = d[p] & 0x1F
                if rif < 2 or p + rif > end:
                    return MALFORMED
                p += rif
            ctx.bcast = d[pos + 2:pos + 8] in (_BCAST, _TR_BCAST)
            return self._llc(d, p, end, 0, ctx, 0)
        if lt == 123:                                   # SUNATM: flags, VPI, VCI; then the PDU
            if end - pos < 4:
                return MALFORMED
            kind = d[pos] & 0x0F
            if kind == 1:                               # LANE: LE header, then Ethernet
                return self._ether(d, pos + 6, end, 0, ctx, 0) if end - pos >= 6 else MALFORMED
            if kind == 2 or d[pos + 4:pos + 7] == b"\xaa\xaa\x03":
                return self._llc(d, pos + 4, end, 0, ctx, 0)
            return NONIP                                # signalling, OAM, other VCs
        if lt == 138:                                   # IEEE 1394: dst, src EUI-64, ethertype
            if end - pos < 18:
                return MALFORMED
            return self._ethertype(_u16(d, pos + 16)[0], d, pos + 18, end, 0, ctx, 0)
        if lt == 122:                                   # IP over FC: NAA dst, src; LLC/SNAP
            if end - pos < 16:
                return MALFORMED
            return self._llc(d, pos + 16, end, 0, ctx, 0)
        if lt == 143:
            return self._docsis(d, pos, end, ctx)
        if lt == 178:
            return self._juniper_ether(d, pos, end, ctx)
        return self._frelay(d, pos, end, ctx)           # 107

    def _juniper_ether(self, d: Any, pos: int, end: int, ctx: _Ctx) -> Any:
        """A frame of LINKTYPE_JUNIPER_ETHER (a Juniper router's or SRX firewall's capture,
        ``monitor traffic … write-file``), read as Wireshark's packet-juniper.c reads it: the
        magic ``MGC``, a flags byte (bit 0 the direction, 0x80 extensions follow, 0x02 no link
        header), with extensions their total length (2, big-endian) and the TLVs; then the
        Ethernet frame, or without link header a protocol number (4, little-endian) and the
        packet (:data:`_JUNIPER_IP`, :data:`_JUNIPER_MPLS`, 204 Ethernet; 0xA248: 4 more bytes,
        then IPv4, as recent Wireshark reads it; any other protocol is not IP). A frame without
        the magic is Ethernet from its first byte (older JUNOS releases wrote none: Wireshark
        reads them so)."""
        if end - pos < 4 or bytes(d[pos:pos + 3]) != _JUNIPER_MAGIC:
            return self._ether(d, pos, end, 0, ctx, 0)
        flags = d[pos + 3]
        hlen = 4
        if flags & _JUNIPER_EXT:
            if end - pos < 6:
                return MALFORMED
            hlen = 6 + _u16(d, pos + 4)[0]
        if not flags & _JUNIPER_NO_L2:
            if end - pos < hlen:
                return MALFORMED
            return self._ether(d, pos + hlen, end, 0, ctx, 0)
        if end - pos < hlen + 4:
            return MALFORMED
        proto, p = _le32(d, pos + hlen)[0], pos + hlen + 4
        if proto == 0xA248:
            proto, p = 2, p + 4
        if proto in _JUNIPER_IP:
            return self._ip(d, p, end, 0, ctx, 0, 0)
        if proto in _JUNIPER_MPLS:
            return self._ethertype(0x8847, d, p, end, 0, ctx, 0)
        if proto == _JUNIPER_ETHER:
            return self._ether(d, p, end, 0, ctx, 0)
        return NONIP

    def _docsis(self, d: Any, pos: int, end: int, ctx: _Ctx) -> Any:
        """A DOCSIS MAC frame (LINKTYPE_DOCSIS, a cable modem's or CMTS's capture): FC (type in
        its two high bits, EHDR_ON its low bit), MAC_PARM (the extended header's length when
        EHDR_ON), LEN (2), the extended header, HCS (2); a packet PDU (FC type 0) carries an
        Ethernet frame (its CRC after the IP packet, as a trailer), anything else (MAC management,
        requests, concatenations) is not IP. A header whose HCS does not match is damaged: not
        read, as Wireshark reads nothing after it."""
        if end - pos < 6:
            return MALFORMED
        fc = d[pos]
        hlen = 6 + (d[pos + 1] if fc & 1 else 0)
        if end - pos < hlen:
            return MALFORMED
        if docsis_hcs(bytes(d[pos:pos + hlen - 2])) != _le16(d, pos + hlen - 2)[0]:
            return MALFORMED
        if fc >> 6 != 0:
            return NONIP
        return self._ether(d, pos + hlen, end, 0, ctx, 0)

    def _erf(self, d: Any, pos: int, end: int, ctx: _Ctx) -> Any:
        """An ERF record (Endace; pcap/pcapng LINKTYPE_ERF): its 16-byte header (timestamp,
        type, flags, record length, loss counter, wire length), the extension headers its type's
        top bit announces (8 bytes each, bit 7 of each one's first byte: another follows), then
        by type: Ethernet (2, 11, 16, 20: 2 bytes of offset/pad first), PPP or Cisco HDLC over
        SONET (1, 10, 15, 19), IPv4 (22), IPv6 (23); other types (ATM cells, multichannel,
        InfiniBand, counters, meta records) are not IP. The header's record length is not
        read (as in Wireshark: some writers put the packet's length there); the record's
        padding and the frame's FCS, when the card kept it, are a trailer after the IP
        datagram, as Ethernet padding is."""
        if end - pos < 16:
            return MALFORMED
        typ = d[pos + 8]
        p = pos + 16
        if typ & 0x80:                                  # extension headers
            while True:
                if end - p < 8:
                    return MALFORMED
                more = d[p] & 0x80
                p += 8
                if not more:
                    break
        typ &= 0x7F
        if typ in (2, 11, 16, 20):
            return self._ether(d, p + 2, end, 0, ctx, 0)
        if typ in (1, 10, 15, 19):                      # PoS: PPP in HDLC framing, or Cisco HDLC
            if end - p >= 4 and d[p] in (0x0F, 0x8F) and d[p + 1] == 0:
                return self._ethertype(_u16(d, p + 2)[0], d, p + 4, end, 0, ctx, 0)
            return self._ppp(d, p, end, 0, ctx, 0)
        if typ in (22, 23):
            return self._ip(d, p, end, 0, ctx, 0, 0)
        return NONIP

    def _frelay(self, d: Any, pos: int, end: int, ctx: _Ctx) -> Any:
        """A Frame Relay frame (LINKTYPE_FRELAY): the Q.922 address (2 to 4 bytes, the last
        with its EA bit set), then RFC 2427 multiprotocol encapsulation (control 0x03, an
        optional 0x00 pad, the NLPID: 0xCC IPv4, 0x8E IPv6, 0x80 SNAP) or Cisco's (an
        ethertype straight after the address), told apart as Wireshark's ``fr`` dissector does."""
        p = pos
        while True:
            if p >= end or p - pos >= 4:
                return MALFORMED
            ea = d[p] & 1
            p += 1
            if ea:
                break
        if p - pos < 2 or p >= end:
            return MALFORMED
        if d[p] != 0x03:                                # Cisco: an ethertype
            if end - p < 2:
                return MALFORMED
            return self._ethertype(_u16(d, p)[0], d, p + 2, end, 0, ctx, 0)
        p += 1
        if p < end and d[p] == 0:                       # pad
            p += 1
        if p >= end:
            return MALFORMED
        nlpid = d[p]
        if nlpid == 0xCC:
            return self._ip(d, p + 1, end, 0, ctx, 4, 0)
        if nlpid == 0x8E:
            return self._ip(d, p + 1, end, 0, ctx, 6, 0)
        if nlpid == 0x80:                               # SNAP: OUI, PID
            if end - p < 6:
                return MALFORMED
            if d[p + 1] or d[p + 2] or d[p + 3]:
                return NONIP
            return self._ethertype(_u16(d, p + 4)[0], d, p + 6, end, 0, ctx, 0)
        return NONIP

    def _link_headers(self, lt: int, d: Any, pos: int, end: int, ctx: _Ctx) -> Any:
        """Link types whose header says where the packet starts (and its family): NFLOG,
        PFLOG, ENC, IPNET, PKTAP, PPI."""
        if lt == 239:                                   # NFLOG: family, version, res id, TLVs
            if end - pos < 4:
                return MALFORMED
            at = _nflog_payload(d, pos + 4, end, ctx.missing)
            if at is None:
                return MALFORMED
            if at[0] < 0:
                return NONIP                            # no packet attached (a message only)
            return self._ip(d, at[0], at[1], 0, ctx, {2: 4, 10: 6}.get(d[pos], 0), 0)
        if lt == 117:                                   # PFLOG: length, af, action, reason, …
            if end - pos < 4:
                return MALFORMED
            start = pos + ((d[pos] + 3) & ~3)           # BPF_WORDALIGN(length)
            if d[pos] < 4 or start > end:
                return MALFORMED
            af = d[pos + 1]
            if af != 2 and af not in AF_INET6:
                return NONIP
            return self._ip(d, start, end, 0, ctx, 4 if af == 2 else 6, 0)
        if lt == 109:                                   # ENC (OpenBSD IPsec): af, spi, flags
            if end - pos < 12:
                return MALFORMED
            h0, h1, h2, h3 = d[pos], d[pos + 1], d[pos + 2], d[pos + 3]
            fam = h0 | h3                               # host byte order
            if h1 or h2 or (h0 and h3) or (fam != 2 and fam not in AF_INET6):
                return NONIP
            return self._ip(d, pos + 12, end, 0, ctx, 4 if fam == 2 else 6, 0)
        if lt == 226:                                   # IPNET (Solaris): version, family, …
            if end - pos < 24:
                return MALFORMED
            fam = d[pos + 1]
            if fam not in (2, 26):
                return NONIP
            return self._ip(d, pos + 24, end, 0, ctx, 4 if fam == 2 else 6, 0)
        if lt in (258, 192, 149):                       # PKTAP (Apple), PPI: a header, then a frame
            if lt != 192:                               # length, type_next, dlt: host order (LE)
                if end - pos < 12:
                    return MALFORMED
                hlen, inner = _le32(d, pos)[0], _le32(d, pos + 8)[0]
                # Apple's struct pktap_header (xnu bsd/net/pktap.h; Wireshark's
                # packet-pktap.c): pth_length u32 (108 bytes in the first version, 156 since
                # pth_flowid … pth_euuid were added: the frame starts at pth_length), then
                # pth_type_next u32 (1: a packet follows; 0: nothing), pth_dlt u32, all
                # little-endian (host order, Apple's hosts are). A header shorter than 108
                # bytes (Wireshark: "Header length is too short"; also what a kernel
                # pktap_v2_hdr, a 1-byte length then offsets, reads as) or a record of another
                # type gives no packet, as Wireshark reads none. USER2 (149) is PKTAP as
                # macOS's tcpdump writes it (DLT_PKTAP == DLT_USER2 there; Wireshark's
                # user_dlt reads an unconfigured USER2 as PKTAP): the same test tells a PKTAP
                # header from someone's own format
                if hlen < PKTAP_MIN_HEADER or _le32(d, pos + 4)[0] != 1:
                    return NONIP
            else:                                       # version, flags, length, dlt (LE)
                if end - pos < 8 or d[pos] != 0:
                    return MALFORMED
                hlen, inner = _le16(d, pos + 2)[0], _le32(d, pos + 4)[0]
            if hlen < (8 if lt == 192 else 12) or pos + hlen > end:
                return MALFORMED
            if inner in (258, 192, 149) or inner not in LINK_HEADER_INNER:
                return NONIP
            if lt == 192 and inner == 105:              # PPI's 802.11-common flags
                flags = _ppi_80211_flags(d, pos + 8, pos + hlen, bool(d[pos + 1] & 1))
                if flags & PPI_F_FCS_INVALID:
                    self.bad_fcs += 1
                    return DAMAGED
                if flags & PPI_F_FCS:
                    end = self._strip_fcs(d, pos + hlen, end, ctx)
                    if end < 0:
                        return DAMAGED
            return self._link(inner, d, pos + hlen, end, ctx)
        return MALFORMED    # not reached: unsupported link types are filtered before

    def _strip_fcs(self, d: Any, pos: int, end: int, ctx: _Ctx, check: bool = True) -> int:
        """The frame ``d[pos:end]`` ends with its 4-byte FCS: the end without it, or -1 (counted
        in :attr:`fcs_mismatch`) when the FCS was captured whole and does not match (``check``;
        False: only taken off). A frame the snaplen cut loses what it kept of the FCS, unchecked."""
        if check and not ctx.missing and end - pos >= 4:
            if not fcs_ok(d, pos, end):
                self.fcs_mismatch += 1
                return -1
        end -= max(0, min(4 - ctx.missing, end - pos))  # the FCS, as far as it was captured
        ctx.end = end
        ctx.missing = max(0, ctx.missing - 4)
        return end

    def _sll_hatype(self, hatype: int, d: Any, pos: int, end: int, ctx: _Ctx) -> Any:
        """The payload at ``pos`` of a LINUX_SLL/SLL2 record whose ARPHRD type ``hatype`` (one of
        :data:`SLL_HATYPES`) says it keeps the device's link-layer header: radiotap + 802.11
        (803), a Frame Relay frame (770: no link-layer destination, ``l2_out`` as under link
        type 107). A row or a status, as :meth:`_link`."""
        if hatype == ARPHRD_FRAD:
            ctx.bcast, ctx.out = False, _NO_DST
            return self._frelay(d, pos, end, ctx)
        return self._radiotap(d, pos, end, ctx)

    def _radiotap(self, d: Any, pos: int, end: int, ctx: _Ctx) -> Any:
        """A radiotap header at ``pos``, then the 802.11 frame: LINKTYPE_IEEE802_11_RADIOTAP's
        frames, and a LINUX_SLL/SLL2 record of a monitor-mode interface (ARPHRD_IEEE80211_RADIOTAP,
        ``tcpdump -i any`` beside a ``wlan0mon``; its protocol field, ETH_P_802_2, says nothing of
        the frame; a protocol field that is an ethertype is read as one), as Wireshark reads both. MALFORMED when the header is cut or inconsistent,
        DAMAGED when its flags mark a bad FCS or the FCS it announces does not match."""
        if end - pos < 8 or d[pos] != 0:
            return MALFORMED
        rlen = _le16(d, pos + 2)[0]
        if rlen < 8 or rlen > end - pos:
            return MALFORMED
        flags = radiotap_flags(d, pos, rlen)
        if flags < 0:
            return MALFORMED
        if flags & RADIOTAP_F_BADFCS:                   # failed its FCS check: not what was sent
            self.bad_fcs += 1
            return DAMAGED
        if flags & RADIOTAP_F_FCS:                      # FCS: the last 4 bytes of the frame
            # (behind data padding the FCS covers the frame without the pad the driver
            # put in: not checked, only taken off; the bad-FCS flag above still counts)
            r = self._strip_fcs(d, pos + rlen, end, ctx, check=not flags & RADIOTAP_F_DATAPAD)
            if r < 0:
                return DAMAGED
            end = r
        return self._dot11(d, pos + rlen, end, ctx, bool(flags & RADIOTAP_F_DATAPAD))

    def _sll_proto(self, proto: int, d: Any, pos: int, end: int, ctx: _Ctx) -> Any:
        if proto < 0x600:
            return self._llc(d, pos, end, 0, ctx, 0) if proto == 4 else NONIP
        return self._ethertype(proto, d, pos, end, 0, ctx, 0)

    def _ether(self, d: Any, pos: int, end: int, base: int, ctx: _Ctx, depth: int) -> Any:
        if end - pos < 14:
            return MALFORMED
        ctx.bcast = d[pos:pos + 6] == _BCAST
        if ctx.out == _IN_TUNNEL or ctx.out == _NO_DST:
            ctx.out = False             # (a tunnel's Ethernet frame records its destination)
        return self._ethertype(_u16(d, pos + 12)[0], d, pos + 14, end, base, ctx, depth)

    def _ethertype(self, et: int, d: Any, pos: int, end: int, base: int, ctx: _Ctx,
                   depth: int) -> Any:
        ntags = nshims = 0
        while True:
            if et in TPIDS:
                if end - pos < 4:
                    return MALFORMED
                if ntags == MAX_VLAN_TAGS:
                    return TOO_DEEP
                ctx.tags.append(_u16(d, pos)[0] & 0xFFF)
                et = _u16(d, pos + 2)[0]
                pos += 4
                ntags += 1
                continue
            if et not in L2_SHIMS:
                break
            if nshims == MAX_L2_SHIMS:
                return TOO_DEEP
            nshims += 1
            if et == 0x88E7:                            # PBB I-TAG: a customer frame follows
                if end - pos < 18:
                    return MALFORMED
                return self._tunnel("PBB", self._ether, d, pos + 4, end, base, ctx, depth)
            r = self._shim(et, d, pos, end, ctx)
            if type(r) is int:
                return r
            et, pos, end = r
        if et == ETH_BRIDGED:                           # an Ethernet frame: its own tags and
            if depth >= MAX_TUNNEL_DEPTH:               # destination (the outer ones dropped,
                return TOO_DEEP                         # as for a tunnel), not counted as one
            ctx.tags, ctx._vlan = [], None
            return self._ether(d, pos, end, base, ctx, depth + 1)
        if et == 0x0800:                                # an IPv6 packet here is read as IPv6,
            return self._ip(d, pos, end, base, ctx, 0, depth)   # as Wireshark and Zeek do
        if et == 0x86DD:
            return self._ip(d, pos, end, base, ctx, 6, depth)
        if et < 0x600 or et == JUMBO_LLC:               # 802.3 length field (or 0x8870): LLC
            return self._llc(d, pos, end, base, ctx, depth)
        if et == NSH_ETHERTYPE:                         # Network Service Header (RFC 8300)
            return self._nsh(d, pos, end, base, ctx, depth)
        if et == 0x8864:                                # PPPoE session
            if end - pos < 8:
                return MALFORMED
            if d[pos] != 0x11 or d[pos + 1] != 0:
                return NONIP
            lim = min(end, pos + 6 + _u16(d, pos + 4)[0])
            return self._ppp_pfc(d, pos + 6, lim, base, ctx, depth)
        if et in (0x8847, 0x8848):                      # MPLS unicast / multicast
            for _ in range(MAX_MPLS_LABELS):
                if end - pos < 4:
                    return MALFORMED
                bos = d[pos + 2] & 1
                pos += 4
                if bos:
                    break
            else:
                return TOO_DEEP if end - pos >= 4 else MALFORMED
            if pos >= end:
                return MALFORMED
            v = d[pos] >> 4
            if v == 4 or v == 6:
                if self._pw_not_ip(d, pos, end, ctx, v):   # a frame whose address begins 4/6
                    return self._tunnel("MPLS-PW", self._ether, d, pos, end, base, ctx, depth)
                return self._ip(d, pos, end, base, ctx, v, depth)
            if v == 0:                                  # Ethernet pseudowire (RFC 4448)
                cw = 0 if self._pw_without_cw(d, pos, end) else 4
                return self._tunnel("MPLS-PW", self._ether, d, pos + cw, end, base, ctx, depth)
            if v != 1 and end - pos >= 14 and _u16(d, pos + 12)[0] in PW_ETHERTYPES:
                # no control word, destination address not beginning with 0, 1, 4 or 6 (a
                # broadcast, say); 1 is a PW associated channel (RFC 4385)
                return self._tunnel("MPLS-PW", self._ether, d, pos, end, base, ctx, depth)
            return NONIP
        return NONIP

    def _shim(self, et: int, d: Any, pos: int, end: int, ctx: _Ctx) -> Any:
        """The header of shim ethertype ``et`` (one of :data:`L2_SHIMS` but PBB) at ``pos``:
        ``(ethertype after it, position after that, end of its payload)``, or a status:
        MALFORMED when cut short, NONIP when the header is not one read here (an Arista
        subtype or version other than the timestamp header's, a MACsec version other than 0) or
        the payload is encrypted (MACsec, counted in :attr:`macsec_encrypted`)."""
        if et == 0x88E5:
            return self._macsec(d, pos, end, ctx)
        if et == 0xD28B:                                # Arista: subtype, version, timestamp
            if end - pos < 4:
                return MALFORMED
            sub, ver = _hh(d, pos)
            if sub != 1:
                return NONIP
            h = 4 + (8 if ver in _ARISTA_TS64 else 6 if ver in _ARISTA_TS48 else -99)
            if h < 0:
                return NONIP
        else:                                           # CMD 6 bytes, VN-Tag 4, E-Tag 6
            h = 4 if et == 0x8926 else 6
        if end - pos < h + 2:
            return MALFORMED
        return _u16(d, pos + h)[0], pos + h + 2, end

    def _macsec(self, d: Any, pos: int, end: int, ctx: _Ctx) -> Any:
        """MACsec (IEEE 802.1AE) SecTAG at ``pos``, as Wireshark's packet-macsec.c reads it:
        TCI/AN (1 byte), short length SL (1, low 6 bits), packet number (4), the SCI (8) when
        the SC bit is set; then the secure data, then the 16-byte ICV. With the E and C bits
        clear (integrity only) the secure data is the frame's ethertype and payload, unchanged:
        SL bytes when SL is not 0, else up to the ICV (the frame's original length, so a frame
        the snaplen cut keeps what was captured). With E or C set it cannot be read: counted
        (:attr:`macsec_encrypted`) and NONIP."""
        if end - pos < 1:
            return MALFORMED
        tci = d[pos]
        if tci & MACSEC_V:
            return NONIP                                # not a version-0 SecTAG
        if tci & (MACSEC_E | MACSEC_C):
            self.macsec_encrypted += 1
            return NONIP
        h = 14 if tci & MACSEC_SC else 6
        if end - pos < h + 2:
            return MALFORMED
        sl = d[pos + 1] & 0x3F
        n = sl if sl else end - pos + self._uncaptured(d, end, ctx) - h - MACSEC_ICV
        if n < 2:
            return MALFORMED
        return _u16(d, pos + h)[0], pos + h + 2, min(end, pos + h + n)

    def _pw_not_ip(self, d: Any, pos: int, end: int, ctx: _Ctx, v: int) -> bool:
        """After an MPLS label stack, bytes whose first nibble ``v`` is 4 or 6 are an IP header,
        unless they are an Ethernet pseudowire without control word whose destination address
        begins with that nibble (Wireshark's "pw_eth_heuristic" asks a similar question).
        Ethernet when the ethertype position (+12) holds one of :data:`PW_ETHERTYPES` and the
        IP header cannot be one: IPv4 with a header length under 20 bytes or a total length
        under it; either version with a datagram length (IPv4 total length, IPv6 40 + payload
        length; 0 is taken as fitting) beyond the bytes of the frame (captured + cut by the
        snaplen). A datagram shorter than the frame (a tap's trailer) or a wrong IPv4 checksum
        (offloading) is no proof: real IP over MPLS shows both (break-it 9), so a pseudowire
        whose destination address begins 6 and whose "payload length" (the 5th and 6th bytes of
        that address) fits the frame is still read as IPv6, as Wireshark does."""
        if end - pos < 14 or _u16(d, pos + 12)[0] not in PW_ETHERTYPES:
            return False
        room = end - pos + self._uncaptured(d, end, ctx)
        if v == 6:
            if end - pos < 40:
                return False
            return self._pw_length_off(_u16(d, pos + 4)[0] and 40 + _u16(d, pos + 4)[0], room,
                                       d, end, ctx)
        ihl = (d[pos] & 15) << 2
        if ihl < 20:
            return True
        if end - pos < ihl:
            return False                    # cut by the snaplen: left to the IP reader
        tot = _u16(d, pos + 2)[0]
        return bool(tot and tot < ihl or self._pw_length_off(tot, room, d, end, ctx))

    def _pw_length_off(self, length: int, room: int, d: Any, end: int, ctx: _Ctx) -> bool:
        """A datagram ``length`` bytes long (0: not given) does not fit the ``room`` bytes left
        in the frame: it is longer."""
        return bool(length) and length > room

    @staticmethod
    def _pw_without_cw(d: Any, pos: int, end: int) -> bool:
        """An Ethernet pseudowire payload whose first nibble is 0 (RFC 4448): a control word
        (4 bytes, first nibble 0) then the frame, or a frame whose destination address begins
        with a 0 nibble. Without a control word when the ethertype right after the two
        addresses is one of :data:`PW_ETHERTYPES` and either it is a VLAN tag or the ethertype
        read as if a control word came first is not. (Wireshark decides by whether both
        addresses begin with a vendor prefix it knows; scapy by whether the first two bytes
        are 0.)"""
        if end - pos < 18:
            return False
        et = _u16(d, pos + 12)[0]
        if et not in PW_ETHERTYPES:
            return False
        return et in TPIDS or _u16(d, pos + 16)[0] not in PW_ETHERTYPES

    def _llc(self, d: Any, pos: int, end: int, base: int, ctx: _Ctx, depth: int) -> Any:
        if end - pos < 3:
            return MALFORMED
        if d[pos] != 0xAA or d[pos + 1] != 0xAA or d[pos + 2] != 0x03:
            return NONIP                                # STP, NetBIOS, CDP ... (not SNAP)
        if end - pos < 8:
            return MALFORMED
        if d[pos + 3] or d[pos + 4] or d[pos + 5] not in (0, 0xF8):
            return NONIP                                # SNAP with a vendor OUI
        et = _u16(d, pos + 6)[0]
        if et < 0x600:
            return NONIP
        return self._ethertype(et, d, pos + 8, end, base, ctx, depth)

    def _dot11(self, d: Any, pos: int, end: int, ctx: _Ctx, datapad: bool) -> Any:
        if end - pos < 2:
            return MALFORMED
        fc0, fc1 = d[pos], d[pos + 1]
        if fc0 & 3:                                     # protocol version must be 0
            return MALFORMED
        if (fc0 >> 2) & 3 != 2:                         # management / control frame
            return NONIP
        sub = fc0 >> 4
        if sub & 4:                                     # no data (null function)
            return NONIP
        if fc1 & 0x40:                                  # protected: encrypted body (counted)
            self.protected += 1
            return NONIP
        tods, fromds = fc1 & 1, fc1 & 2
        h = 30 if tods and fromds else 24
        amsdu = mesh = False
        if sub & 8:                                     # QoS data: QoS control (+ HT control)
            if end - pos < h + 2:
                return MALFORMED
            amsdu = bool(d[pos + h] & 0x80)
            # 802.11s: "Mesh Control Present" (QoS control bit 8), in a frame with the FromDS
            # bit (4 addresses, or group-addressed from a mesh STA), as Wireshark reads it
            mesh = bool(d[pos + h + 1] & 1) and bool(fromds)
            h += 6 if fc1 & 0x80 else 2
        if datapad:                                     # radiotap: padded to 4 bytes
            h = (h + 3) & ~3
        if end - pos < h:
            return MALFORMED
        da = pos + 16 if tods else pos + 4
        bcast = d[da:da + 6] == _BCAST
        fno = d[pos + 22] & 15
        if fc1 & 0x04 or fno:                           # a fragment of an MSDU (More Fragments)
            return self._dot11_fragment(d, pos, pos + h, end, ctx, fno, bool(fc1 & 0x04),
                                        (bcast, amsdu, mesh))
        return self._msdu(d, pos + h, end, 0, ctx, bcast, amsdu, mesh)

    def _msdu(self, d: Any, p: int, end: int, base: int, ctx: _Ctx, bcast: bool, amsdu: bool,
              mesh: bool) -> Any:
        """The body ``d[p:end]`` of an 802.11 data frame (or of an MSDU reassembled from its
        fragments): an 802.11s Mesh Control field first when ``mesh`` (6 bytes, + 6 per address
        its Address Extension Mode adds: IEEE 802.11-2020 9.2.4.7.3; flags other than that mode,
        or mode 3, are no Mesh Control, as Wireshark's ``has_mesh_control``), then LLC/SNAP and
        the packet, or the A-MSDU subframes (in a mesh A-MSDU each subframe would hold its own
        Mesh Control: not read)."""
        if mesh and not amsdu and end - p >= 6:
            mf = d[p]
            if not mf & ~3 and mf & 3 != 3:
                p += 6 + 6 * (mf & 3)
                if p > end:
                    return MALFORMED
        if amsdu:
            return self._amsdu(d, p, end, ctx, base)
        ctx.bcast, ctx.out = bcast, False     # (an 802.11 frame records its destination)
        return self._llc(d, p, end, base, ctx, 0)

    def _dot11_fragment(self, d: Any, pos: int, body: int, end: int, ctx: _Ctx, fno: int,
                        more: bool, facts: tuple) -> Any:
        """Fragment ``fno`` of an 802.11 MSDU (IEEE 802.11-2020 10.5: the fragments of one MSDU
        share the transmitter and sequence number and come in order, fragment numbers 0, 1, …,
        More Fragments set on all but the last); ``facts`` (bcast, amsdu, mesh) of this
        fragment's header. Held until the last one arrives: the MSDU is then read as one body,
        a row of this (the last) frame, its bytes appended after the capture's (``extra``), as
        for IP fragments. A fragment number already held is a retransmission (Retry): ignored.
        A fragment whose predecessor is missing drops the MSDU (counted in ``dot11_frag_lost``,
        as Wireshark shows no packet either), and so does one that comes more than
        :data:`DOT11_LIFETIME_NS` after the MSDU's first. Returns PENDING while held."""
        key = (bytes(d[pos + 4:pos + 16]), _le16(d, pos + 22)[0] >> 4)   # RA, TA, sequence
        t = self.dot11_frags
        e = t.get(key)
        if e is not None and ctx.ts - e[7] > DOT11_LIFETIME_NS:    # stale: discarded by now
            self._dot11_lost(t.pop(key))
            e = None
        if e is not None and fno < e[0]:
            self.dot11_frag_dup += 1                    # a retransmitted fragment
            return NONIP
        if e is None and fno == 0:
            if len(t) >= DOT11_MAX_MSDUS:               # bounded: the oldest is dropped
                self._dot11_lost(t.pop(next(iter(t))))
            e = t[key] = [0, [], [], facts[0], facts[1], facts[2], False, ctx.ts]
        elif e is None or fno != e[0] or fno >= DOT11_MAX_FRAGMENTS - 1 and more:
            if e is not None:
                self._dot11_lost(t.pop(key))
            self.dot11_frag_lost += 1
            return NONIP
        e[0] = fno + 1
        if not e[6]:
            e[1].append(bytes(d[body:end]))
            e[6] = d is self.buf and end == ctx.end and ctx.missing > 0   # cut: the rest unknown
        e[2].append(ctx.frame)
        if more:
            return PENDING
        del t[key]
        data = b"".join(e[1])
        base = self.nbuf + len(self.extra)
        self.extra += data
        return self._msdu(data, 0, len(data), base, ctx, e[3], e[4], e[5])

    def _dot11_lost(self, e: list) -> None:
        """The fragments held of an MSDU that cannot be completed: counted as dropped."""
        self.dot11_frag_lost += len(e[2])
        self.non_ip += len(e[2])

    def open_dot11_frames(self) -> list[int]:
        """Frame indices holding fragments of 802.11 MSDUs still incomplete."""
        return [f for e in self.dot11_frags.values() for f in e[2]]

    def open_fragment_groups(self) -> list[tuple[int, list[int]]]:
        """The datagrams still incomplete (IP datagrams in reassembly, then 802.11 MSDUs), each
        as (the latest timestamp, epoch ns, at which a fragment still completes it: its first
        fragment's plus the timeout; a fragment stamped later starts afresh, the ones held are
        given up on; the frame indices holding its fragments, in arrival order)."""
        out = [(dg.first_ts + self.frag.timeout_ns, [int(f.row[0]) for f in dg.frags])
               for dg in self.frag.table.values()]
        out += [(e[7] + DOT11_LIFETIME_NS, list(e[2])) for e in self.dot11_frags.values()]
        return out

    def _amsdu(self, d: Any, pos: int, end: int, ctx: _Ctx, base: int = 0) -> list:
        """The subframes of an A-MSDU body at ``d[pos:end]`` (IEEE 802.11-2020 9.3.2.2.2; the
        QoS control's "A-MSDU present" bit): each is DA (6 bytes), SA (6), a big-endian length
        (2), then that many bytes of LLC/SNAP + packet, padded with 0-3 bytes to a multiple of 4
        from the subframe's start, except the last. Each subframe's packet is read like the body
        of a plain data frame, its own DA giving ``l2_bcast``. Returns one result per subframe
        (row or status) in order; a subframe whose length runs past the captured bytes is
        MALFORMED and ends the walk, unless the snaplen cut it (it then ends where the capture
        does, as a plain frame would)."""
        out: list = []
        while end - pos >= 14:
            ln = _u16(d, pos + 12)[0]
            q = pos + 14
            lim = q + ln
            if lim > end:
                if not (end == ctx.end and lim <= end + ctx.missing):
                    out.append(MALFORMED)
                    break
                lim = end
            ctx.tags, ctx._vlan = [], None
            ctx.bcast, ctx.out = d[pos:pos + 6] == _BCAST, False
            out.append(self._llc(d, q, lim, base, ctx, 0))
            pos += (14 + ln + 3) & ~3
        if not out or 0 < end - pos < 14:               # nothing, or bytes left that are no subframe
            out.append(MALFORMED)
        return out

    def _ppp(self, d: Any, pos: int, end: int, base: int, ctx: _Ctx, depth: int) -> Any:
        """A PPP frame at ``pos``: the HDLC address and control bytes (0xFF 0x03) when present
        (absent under Address-and-Control-Field-Compression), then :meth:`_ppp_pfc`."""
        if end - pos >= 2 and d[pos] == 0xFF and d[pos + 1] == 0x03:
            pos += 2                                    # HDLC address + control
        return self._ppp_pfc(d, pos, end, base, ctx, depth)

    def _ppp_pfc(self, d: Any, pos: int, end: int, base: int, ctx: _Ctx, depth: int) -> Any:
        """The PPP protocol field at ``pos`` and what follows: two bytes, or one when its low bit
        is set (Protocol-Field-Compression, RFC 1661 §6.5: a receiver that negotiated it accepts
        both; as Wireshark's ``dissect_ppp_common`` reads it). PPPoE (RFC 2516 §7: no address
        and control bytes) starts here; the other PPP paths after :meth:`_ppp`."""
        if pos >= end:
            return MALFORMED
        if d[pos] & 1:                                  # protocol field compression
            proto = d[pos]
            pos += 1
        else:
            if end - pos < 2:
                return MALFORMED
            proto = _u16(d, pos)[0]
            pos += 2
        return self._ppp_proto(proto, d, pos, end, base, ctx, depth)

    def _ppp_proto(self, proto: int, d: Any, pos: int, end: int, base: int, ctx: _Ctx,
                   depth: int) -> Any:
        if proto == 0x21:
            return self._ip(d, pos, end, base, ctx, 4, depth)
        if proto == 0x57:
            return self._ip(d, pos, end, base, ctx, 6, depth)
        if proto in (0x2D, 0x2F):       # Van Jacobson compressed / uncompressed TCP (RFC 1144)
            self.vj_tcp += 1            # (the header is a delta against state not kept here)
            return NONIP
        if proto in PPP_SEALED:         # compressed or encrypted datagram (MPPE): unreadable
            self.ppp_sealed += 1
            return NONIP
        return NONIP                                    # LCP, IPCP, CCP, ...

    # ------------------------------------------------------------------ IP
    def _uncaptured(self, d: Any, end: int, ctx: _Ctx) -> int:
        """Bytes of the datagram ending at ``end`` that the snaplen cut off: the frame's missing
        bytes when the datagram runs to the end of the captured frame, else 0. Used only when
        the IP header gives no length (TSO/GSO, BIG TCP)."""
        return ctx.missing if d is self.buf and end == ctx.end else 0

    def _ip(self, d: Any, pos: int, end: int, base: int, ctx: _Ctx, want: int,
            depth: int) -> Any:
        if pos >= end:
            return MALFORMED
        v = d[pos] >> 4
        if want and v != want:
            return MALFORMED
        if v == 4:
            return self._ipv4(d, pos, end, base, ctx, depth)
        if v == 6:
            return self._ipv6(d, pos, end, base, ctx, depth)
        return MALFORMED

    def _ipv4(self, d: Any, pos: int, end: int, base: int, ctx: _Ctx, depth: int) -> Any:
        if end - pos < 20:
            return MALFORMED
        ihl = (d[pos] & 15) << 2
        if ihl < 20 or end - pos < ihl:
            return MALFORMED
        if ihl > 20 and not v4_options_ok(d, pos + 20, pos + ihl):
            self.bad_v4_options += 1        # (what follows the header cannot be located)
            return MALFORMED
        tot, ident, frag = _hhh(d, pos + 2)
        proto = d[pos + 9]
        src, dst = _ii(d, pos + 12)
        if tot == 0:                    # TSO: length not filled in; the frame is the datagram
            tot = end - pos + self._uncaptured(d, end, ctx)
        if tot < ihl:
            return MALFORMED
        p = pos + ihl
        dend = min(end, pos + tot)
        hdr = (4, 0, V4MAPPED | src, 0, V4MAPPED | dst, ident, tot, d[pos + 8])
        if frag & 0x3FFF:
            fo = (frag & 0x1FFF) << 3
            if fo == 0:
                row = self._l4(d, p, dend, base, proto, tot - ihl, hdr, ctx, depth, False)
                if type(row) is int:    # (an AH header longer than the fragment: its own row)
                    row = self._row(hdr, ctx, proto, -1, -1, -1, -1, 0, 0, 0, tot - ihl, p, dend,
                                    base)
            else:
                row = self._row(hdr, ctx, proto, -1, -1, -1, -1, 0, 0, 0, tot - ihl, p, dend,
                                base)
            key = (4, src, dst, proto, ident, ctx.vlan)
            done = self.frag.add(key, ctx.ts, fo, bool(frag & 0x2000), tot - ihl,
                                 bytes(d[p:dend]), (ctx.frame, row),
                                 (4, hdr, ihl, proto) if fo == 0 else None)
            return PENDING if done is None else self._reassembled(done, ctx, depth)
        return self._l4(d, p, dend, base, proto, tot - ihl, hdr, ctx, depth, True)

    def _ipv6(self, d: Any, pos: int, end: int, base: int, ctx: _Ctx, depth: int) -> Any:
        if end - pos < 40:
            return MALFORMED
        plen = _u16(d, pos + 4)[0]
        nh = d[pos + 6]
        shi, slo, dhi, dlo = _qqqq(d, pos + 8)
        if plen == 0:                   # jumbogram (RFC 2675) / GSO: see _jumbo_length
            plen = self._jumbo_length(d, pos, end, nh)
            if plen == JUMBO_INVALID:
                self.bad_jumbo += 1
                return MALFORMED
            if plen < 0:
                plen = end - pos - 40 + self._uncaptured(d, end, ctx)
        tot = 40 + plen
        dgend = pos + tot
        dend = min(end, dgend)
        r = self._v6chain(d, pos + 40, dend, dgend, nh)
        if type(r) is int:
            return r
        nh, p, fr, final, home = r
        if final is not None:           # a routing header: the final destination (RFC 8200 §8.1)
            dhi, dlo = final
        if home is not None:            # a Mobile IPv6 Home Address option (RFC 6275 §9.3.1)
            shi, slo = home
        hdr = (6, shi, slo, dhi, dlo, -1, tot, d[pos + 7])
        if fr is None:
            return self._l4(d, p, dend, base, nh, dgend - p, hdr, ctx, depth, True)
        # fragment header at p: p + 8 starts the fragment data
        fo, more, ident = fr
        q = p + 8
        if fo == 0:
            row = self._l6upper(d, q, dend, dgend, base, nh, hdr, ctx, depth, False)
            if type(row) is int:
                row = self._row(hdr, ctx, nh, -1, -1, -1, -1, 0, 0, 0, dgend - q, q, dend, base)
        else:
            row = self._row(hdr, ctx, nh, -1, -1, -1, -1, 0, 0, 0, dgend - q, q, dend, base)
        # (no Next Header in the key: only the offset-0 fragment's counts, RFC 8200 §4.5, as
        # Linux keys on (id, src, dst); overlapping fragments drop the datagram, RFC 5722)
        key = (6, shi, slo, dhi, dlo, ident, ctx.vlan)
        done = self.frag.add(key, ctx.ts, fo, more, dgend - q, bytes(d[q:dend]),
                             (ctx.frame, row), (6, hdr, p - pos, nh) if fo == 0 else None,
                             drop_overlaps=True)
        return PENDING if done is None else self._reassembled(done, ctx, depth)

    @staticmethod
    def _jumbo_length(d: Any, pos: int, end: int, nh: int) -> int:
        """Payload length from a Jumbo Payload option (RFC 2675 §2: option 0xC2, 4 bytes, the
        packet length without the 40-byte IPv6 header) in a captured hop-by-hop header, else -1
        (none: the rest of the frame, TSO/GSO). :data:`JUMBO_INVALID` when the option's length
        is below 65,536 (RFC 2675 §3: a receiver discards the packet with an ICMP Parameter
        Problem; Wireshark calls it malformed): the packet's length is not known.
        """
        p = pos + 40
        if nh != 0 or end - p < 8:
            return -1
        for t, q, ln, whole in v6_options(d, p, end):
            if t == 0xC2 and ln == 4 and whole:
                v = _u32(d, q)[0]
                if v < 65536:
                    return JUMBO_INVALID
                return v if v <= 0x7FFFFFFF - 40 else -1    # (ip_len must fit the int32 column)
        return -1

    @staticmethod
    def _v6chain(d: Any, p: int, dend: int, dgend: int, nh: int) -> Any:
        """Walk IPv6 extension headers from ``p``.

        Returns ``(next_header, position, fragment, final, home)``: ``fragment`` is ``(offset,
        more, id)`` when a (non-atomic) fragment header sits at ``position``, else ``None``;
        ``final`` is the final destination ``(hi, lo)`` a routing header gives
        (:func:`routing_final`), else ``None``; ``home`` the source's home address a
        Destination Options header's Home Address option gives (:func:`home_address`), else
        ``None``. A chain cut by the snaplen stops where the capture ends (the upper layer
        is then the header type reached). MALFORMED when a header claims to run past the
        datagram.
        """
        final = home = None
        while nh in IPV6_EXT or (nh == SHIM6 and dend - p >= 3 and d[p + 2] & 0x80):
            if nh == 44:
                if dend - p < 8:
                    break
                fo_m = _u16(d, p + 2)[0]
                if fo_m & 0xFFF9:                   # offset != 0 or M set: a real fragment
                    return d[p], p, (fo_m & 0xFFF8, bool(fo_m & 1), _u32(d, p + 4)[0]), final, home
                hl = 8                              # atomic fragment: just skip it
            else:
                if dend - p < 2:
                    break
                hl = (d[p + 1] + 2) << 2 if nh == 51 else (d[p + 1] + 1) << 3
            if p + hl > dgend:
                return MALFORMED
            if nh == 43 and final is None:
                final = routing_final(d, p, min(dend, p + hl))
            elif nh == 60 and home is None:
                home = home_address(d, p, min(dend, p + hl))
            nh = d[p]
            p += hl
        return nh, p, None, final, home

    def _l6upper(self, d: Any, p: int, dend: int, dgend: int, base: int, nh: int, hdr: tuple,
                 ctx: _Ctx, depth: int, tunnels: bool) -> Any:
        """Upper layer of an IPv6 datagram part that starts with header ``nh`` at ``p``."""
        r = self._v6chain(d, p, dend, dgend, nh)
        if type(r) is int:
            return r
        nh, p, fr, final, home = r
        if final is not None:           # (a routing header after a fragment header: unusual)
            hdr = hdr[:3] + final + hdr[5:]
        if home is not None:
            hdr = hdr[:1] + home + hdr[3:]
        if fr is not None:              # a fragment header inside a fragment: give up there
            return self._row(hdr, ctx, 44, -1, -1, -1, -1, 0, 0, 0, dgend - p, p, dend, base)
        return self._l4(d, p, dend, base, nh, dgend - p, hdr, ctx, depth, tunnels)

    def _reassembled(self, done: Completed, ctx: _Ctx, depth: int) -> Any:
        ver, hdr, hlen, proto = done.head
        data = done.data
        base = self.nbuf + len(self.extra)
        self.extra += data
        hdr = hdr[:6] + (hlen + done.total,) + hdr[7:]
        if ver == 4:
            return self._l4(data, 0, len(data), base, proto, done.total, hdr, ctx, depth, True)
        return self._l6upper(data, 0, len(data), done.total, base, proto, hdr, ctx, depth, True)

    # ------------------------------------------------------------------ transport
    def _row(self, hdr: tuple, ctx: _Ctx, proto: int, sport: int, dport: int, it: int, ic: int,
             flags: int, seq: int, ack: int, plen: int, ploff: int, dend: int,
             base: int, csum: int = -1, win: int = -1) -> tuple:
        plcap = min(plen, dend - ploff)
        if plcap <= 0:
            plcap, ploff = 0, -1
        else:
            ploff += base
        return (ctx.vlan, hdr[0], hdr[1], hdr[2], hdr[3], hdr[4], proto, sport, dport, it, ic,
                flags, seq, ack, win, hdr[5], hdr[6], hdr[7], plen, ploff, plcap, ctx.bcast, bool(ctx.out), csum, False)

    def _l4(self, d: Any, p: int, dend: int, base: int, proto: int, ip_pl: int, hdr: tuple,
            ctx: _Ctx, depth: int, tunnels: bool) -> Any:
        """Transport header at ``p``; ``ip_pl`` = IP payload bytes from the headers;
        ``dend`` = end of the captured bytes of this datagram; ``tunnels`` False for a first
        fragment (only part of the datagram: no tunnel decoded, no TCP header judged whole)."""
        while proto == 51:          # IPv4 AH (RFC 4302; IPv6's is walked with the ext. headers)
            if dend - p < 2:        # cut by the snaplen: the upper layer stays AH
                break
            hl = (d[p + 1] + 2) << 2
            if hl > ip_pl:
                return MALFORMED
            proto = d[p]
            p += hl
            ip_pl -= hl
        avail = dend - p
        if proto == 6:
            if avail < 16:
                # the header cut (snaplen) before its window field: ports if captured, the rest
                # unknown, as Wireshark shows it (no flags nor tcp.len; Zeek skips the packet)
                sport, dport = _hh(d, p) if avail >= 4 else (-1, -1)
                return self._row(hdr, ctx, 6, sport, dport, -1, -1, 0, 0, 0, TCP_HDR_CUT, p,
                                 p, base)
            sport, dport, seq, ack = _hhii(d, p)
            flags = (d[p + 12] & 1) << 8 | d[p + 13]
            doff = (d[p + 12] >> 4) << 2
            if doff < 20:
                # a data offset below 5 (the fixed header is 20 bytes): malformed, skipped and
                # counted as Zeek (bad_TCP_header_len) and Wireshark ("Bogus TCP header length") do
                return MALFORMED
            if doff <= ip_pl:
                plen, hoff = ip_pl - doff, doff
            elif tunnels:
                # a data offset past the IP payload the IP header gives (a whole datagram: the
                # snaplen cuts captured bytes, not that length): malformed, as Zeek
                # (truncated_header) and Wireshark (malformed, out of its conversations) skip it
                return MALFORMED
            else:
                # (a first fragment, tunnels False: its fragment holds only part of the
                # datagram, the options may be in the next one)
                plen, hoff = 0, 0
            return self._row(hdr, ctx, 6, sport, dport, -1, -1, flags, seq, ack, plen, p + hoff,
                             dend, base, _u16(d, p + 16)[0] if avail >= 18 else -1, _u16(d, p + 14)[0])
        if proto == 17:
            sport = dport = -1
            if avail >= 4:
                sport, dport = _hh(d, p)
            ulen = _u16(d, p + 4)[0] if avail >= 6 else -1
            plen = ulen - 8 if 8 <= ulen <= ip_pl else max(0, ip_pl - 8)
            if tunnels and avail >= 8 and (dport in _TUNNEL_UDP_PORTS
                                           or sport in _TUNNEL_UDP_PORTS):
                r = self._udp_tunnel(d, p, dend, base, ctx, depth, sport, dport, plen)
                if r is not None and not (r == MALFORMED and dend < p + 8 + plen):
                    return r
                # (a tunnel whose inner packet the snaplen cut before its headers end: the
                # outer datagram is the row, as Wireshark's conversations keep it)
            return self._row(hdr, ctx, 17, sport, dport, -1, -1, 0, 0, 0, plen, p + 8, dend,
                             base, _u16(d, p + 6)[0] if avail >= 8 else -1)
        if proto == 1 or proto == 58:
            it = d[p] if avail >= 1 else -1
            ic = d[p + 1] if avail >= 2 else -1
            return self._row(hdr, ctx, proto, -1, -1, it, ic, 0, 0, 0, max(0, ip_pl - 8), p + 8,
                             dend, base, _u16(d, p + 2)[0] if avail >= 4 else -1)
        if tunnels and (proto == 47 or proto == 4 or proto == 41):
            if proto == 47:
                r = self._gre(d, p, dend, base, ctx, depth)
            else:
                r = self._tunnel("IP-in-IP", self._ip, d, p, dend, base, ctx, depth,
                                 4 if proto == 4 else 6)
            if r is not None and not (r == MALFORMED and dend < p + ip_pl):
                return r
            # (a tunnel whose inner packet the snaplen cut before its headers end: the outer
            # datagram is the row, as Wireshark's conversations keep it; as for UDP tunnels;
            # so is a GRE packet that carries none: _gre gives None)
        elif tunnels:
            if proto == IPPROTO_ETHERNET:       # an SRv6 L2 service (Wireshark: ip.proto 143)
                return self._tunnel("Ethernet-in-IP", self._ether, d, p, dend, base, ctx, depth)
            if proto == IPPROTO_ETHERIP and dend - p >= 2:
                # EtherIP (RFC 3378): a 2-byte header (version 3), then the frame; read
                # whatever the version says, as Wireshark's packet-etherip.c does
                return self._tunnel("EtherIP", self._ether, d, p + 2, dend, base, ctx, depth)
        return self._row(hdr, ctx, proto, -1, -1, -1, -1, 0, 0, 0, ip_pl, p, dend, base)

    def _udp_tunnel(self, d: Any, p: int, dend: int, base: int, ctx: _Ctx, depth: int,
                    sport: int, dport: int, plen: int) -> Any:
        """The packet inside the UDP datagram at ``p`` (header captured; ``plen``: its payload
        length) when its ports name a tunnel and its payload is one (a row, or PENDING /
        MALFORMED / NONIP / TOO_DEEP), else None (the datagram is the row)."""
        if dport == VXLAN_PORT:
            r = self._vxlan(d, p + 8, min(dend, p + 8 + plen), p + 8 + plen, base, ctx,
                            depth)
            if r is not None:
                return r
        if dport == VXLAN_LINUX_PORT:
            r = self._vxlan_linux(d, p + 8, min(dend, p + 8 + plen), p + 8 + plen, base,
                                  ctx, depth)
            if r is not None:
                return r
        if dport == GENEVE_PORT:
            r = self._geneve(d, p + 8, min(dend, p + 8 + plen), base, ctx, depth)
            if r is not None:
                return r
        if dport == TZSP_PORT or sport == TZSP_PORT:
            r = self._tzsp(d, p + 8, min(dend, p + 8 + plen), p + 8 + plen, base, ctx, depth,
                           dport == TZSP_PORT)
            if r is not None:
                return r
        if dport == VXLAN_GPE_PORT:
            r = self._vxlan_gpe(d, p + 8, min(dend, p + 8 + plen), base, ctx, depth)
            if r is not None:
                return r
        if sport == GTPU_PORT or dport == GTPU_PORT:
            r = self._gtpu(d, p + 8, min(dend, p + 8 + plen), base, ctx, depth)
            if r is not None:
                return r
        if sport == L2TP_PORT or dport == L2TP_PORT:
            # (between two 1701 ports, a tunnel's control and PPP link messages are not
            # IP; with one only, only an IP packet inside makes it L2TP: a client port of
            # 1701, behind a NAT or in an old dynamic range, is ordinary UDP whatever its
            # first bytes)
            r = self._l2tp(d, p + 8, min(dend, p + 8 + plen), base, ctx, depth)
            if type(r) is tuple or (type(r) is int and r == PENDING) or \
                    (r is not None and sport == dport):
                return r
        if (sport == LISP_DATA_PORT or dport == LISP_DATA_PORT) and dport != LISP_CONTROL_PORT:
            r = self._lisp(d, p + 8, min(dend, p + 8 + plen), p + 8 + plen, base, ctx, depth)
            if r is not None:
                return r
        if sport == MPLS_UDP_PORT or dport == MPLS_UDP_PORT:
            r = self._mpls_udp(d, p + 8, min(dend, p + 8 + plen), p + 8 + plen, base, ctx,
                               depth)
            if r is not None:
                return r
        if sport == GRE_UDP_PORT or dport == GRE_UDP_PORT:
            r = self._gre_udp(d, p + 8, min(dend, p + 8 + plen), p + 8 + plen, base, ctx, depth)
            if r is not None:
                return r
        if sport == TEREDO_PORT or dport == TEREDO_PORT:
            r = self._teredo(d, p + 8, min(dend, p + 8 + plen), p + 8 + plen, base, ctx,
                             depth)
            if r is not None:
                return r
        return None

    # ------------------------------------------------------------------ tunnels
    def _tunnel(self, name: str, fn: Any, d: Any, pos: int, end: int, base: int, ctx: _Ctx,
                depth: int, *args: Any) -> Any:
        """Decode the payload of tunnel ``name`` with ``fn``. The tunnelled packet gets the link
        layer it was carried in: when ``fn`` reads an Ethernet frame (VXLAN, Geneve and GRE
        transparent bridging, ERSPAN, MPLS pseudowire), that frame's VLAN tags and broadcast
        destination; when the tunnel carries IP directly (IP-in-IP, GRE or Geneve with an IP
        protocol type, PPP in PPTP/L2TP, Teredo), none: ``vlan`` 0, ``l2_bcast`` False and
        ``l2_out`` True (no link-layer destination recorded), as a raw-IP capture of it would give. The outer link layer's are restored afterwards. The
        packet is counted in :attr:`tunnels` under ``name`` only when ``fn`` gave a row (or a
        fragment held for reassembly), not when the payload was not IP or was malformed, and
        once a frame: under the outermost tunnel's name (``depth`` 0), nested tunnels not again
        (as the tshark engine counts). Beyond :data:`MAX_TUNNEL_DEPTH` tunnels: :data:`TOO_DEEP`."""
        if depth >= MAX_TUNNEL_DEPTH:
            return TOO_DEEP
        saved = ctx.tags, ctx._vlan, ctx.bcast, ctx.out
        ctx.tags, ctx._vlan, ctx.bcast, ctx.out = [], None, False, _IN_TUNNEL
        if args:
            r = fn(d, pos, end, base, ctx, *args, depth + 1)
        else:
            r = fn(d, pos, end, base, ctx, depth + 1)
        ctx.tags, ctx._vlan, ctx.bcast, ctx.out = saved
        if depth == 0 and (type(r) is tuple or (type(r) is int and r == PENDING)):
            self.tunnels[name] += 1                     # an inner packet came out of this frame
        return r

    def _gre(self, d: Any, p: int, dend: int, base: int, ctx: _Ctx, depth: int) -> Any:
        """The packet inside the GRE header at ``p`` (a row, or a status), or None when the
        GRE packet carries none (protocol type 0: a keepalive): the GRE datagram is the row."""
        if dend - p < 4:
            return MALFORMED
        flags, ptype = _hh(d, p)
        ver = flags & 7
        if ver == 0:
            # the checksum and offset field is there when the C or the R bit is set
            h = 4 + 4 * (((flags >> 15) | ((flags >> 14) & 1)) + ((flags >> 13) & 1)
                         + ((flags >> 12) & 1))
            if flags & 0x4000:                          # source routing (RFC 1701, obsolete)
                h = _gre_sre_end(d, p + h, dend)
                if h < 0:
                    return MALFORMED
                h -= p
            lim = dend
        elif ver == 1:                                  # PPTP enhanced GRE
            if dend - p < 8:
                return MALFORMED
            paylen = _u16(d, p + 4)[0]
            h = 8 + 4 * (((flags >> 12) & 1) + ((flags >> 7) & 1))
            if paylen == 0:                             # acknowledgement only
                return NONIP
            lim = min(dend, p + h + paylen)
        else:
            return NONIP
        q = p + h
        if q > dend:
            return MALFORMED
        if ptype == 0:
            # protocol type 0 (reserved): no packet inside; a Cisco GRE keepalive (the reply
            # an endpoint sends back, itself inside a GRE packet to it) or an empty GRE packet.
            # The GRE datagram is the row, as Wireshark shows it (gre, then data if any)
            return None
        if ptype == 0x6558 or (ptype == 0x6400 and ver == 1):
            # transparent Ethernet bridging; MikroTik EoIP (version 1, the key field holding
            # the payload length and the tunnel id, as Wireshark's packet-gre.c reads it)
            return self._tunnel("GRE", self._ether, d, q, lim, base, ctx, depth)
        if ptype == 0x880B:                             # PPP (PPTP)
            return self._tunnel("GRE", self._ppp, d, q, lim, base, ctx, depth)
        if ptype == 0x88BE:                             # ERSPAN type II (I without sequence)
            return self._tunnel("GRE", self._ether, d, q + (8 if flags & 0x1000 else 0), lim,
                                base, ctx, depth)
        if ptype == 0x883E:                             # WCCP redirection: IPv4 inside
            # WCCPv2 puts a 4-byte redirect header first; as Wireshark (packet-gre.c) does, it
            # is there unless the byte right after the 4-byte base header begins an IPv4 header
            if dend - p < 5:
                return MALFORMED
            if d[p + 4] & 0xF0 != 0x40:
                q += 4
            if q >= lim:
                return MALFORMED
            return self._tunnel("GRE", self._ip, d, q, lim, base, ctx, depth, 4)
        if ptype == 0x22EB:                             # ERSPAN type III
            if lim - q < 12:
                return MALFORMED
            return self._tunnel("GRE", self._ether, d, q + 12 + (8 if d[q + 11] & 1 else 0),
                                lim, base, ctx, depth)
        return self._tunnel("GRE", self._gre_ethertype, d, q, lim, base, ctx, depth, ptype)

    def _nsh(self, d: Any, pos: int, end: int, base: int, ctx: _Ctx, depth: int) -> Any:
        """A Network Service Header (RFC 8300: service function chaining; ethertype 0x894F, also
        as a GRE protocol type) at ``pos``: version 0, its length (6 bits, in 4-byte words, at
        least the 8-byte base and service path headers) and next protocol: 1 IPv4, 2 IPv6, 3
        Ethernet, 5 MPLS, as Wireshark's packet-nsh.c reads them; the packet after it is the
        row, counted as tunnelled under "NSH" (an Ethernet frame inside gives its VLAN tags and
        destination, IP inside none). Another version or next protocol (NSH in NSH, experimental
        ones) is not IP; a header cut before its length ends is malformed."""
        if end - pos < 8:
            return MALFORMED
        if d[pos] >> 6:
            return NONIP
        hlen = (d[pos + 1] & 0x3F) * 4
        nxt = d[pos + 3]
        if hlen < 8 or end - pos < hlen:
            return MALFORMED
        q = pos + hlen
        if nxt == 1 or nxt == 2:
            return self._tunnel("NSH", self._ip, d, q, end, base, ctx, depth, 4 if nxt == 1 else 6)
        if nxt == 3:
            return self._tunnel("NSH", self._ether, d, q, end, base, ctx, depth)
        if nxt == 5:
            return self._tunnel("NSH", self._gre_ethertype, d, q, end, base, ctx, depth, 0x8847)
        return NONIP

    def _gre_ethertype(self, d: Any, pos: int, end: int, base: int, ctx: _Ctx, ptype: int,
                       depth: int) -> Any:
        return self._ethertype(ptype, d, pos, end, base, ctx, depth)

    def _vxlan(self, d: Any, q: int, lim: int, uend: int, base: int, ctx: _Ctx,
               depth: int) -> Any:
        """VXLAN header at ``q`` (UDP payload to port 4789; ``uend``: where the UDP length says
        the datagram ends, ``lim``: its captured end); None (the UDP datagram stays as it is)
        when it is not VXLAN after all. With the I flag set (RFC 7348 §5) the 8-byte header is
        followed by an Ethernet frame, whatever it holds. A sender that leaves the I flag clear
        breaks the RFC, but Wireshark reads every datagram to 4789 as VXLAN all the same: such
        a datagram is read as VXLAN too when the frame after the header plainly carries IP
        (:meth:`_vxlan_ip_inside`), else it stays UDP (other traffic to the port)."""
        if lim - q < 8:
            return None
        if not d[q] & 0x08 and not self._vxlan_ip_inside(d, q, lim, uend):
            return None
        return self._tunnel("VXLAN", self._ether, d, q + 8, lim, base, ctx, depth)

    def _vxlan_linux(self, d: Any, q: int, lim: int, uend: int, base: int, ctx: _Ctx,
                     depth: int) -> Any:
        """VXLAN header at ``q`` of a datagram to Linux's default port 8472 (``uend``: where the
        UDP length says the datagram ends, ``lim``: its captured end); None (the UDP datagram
        stays as it is) unless it is plainly VXLAN carrying IP: the flags byte 0x08 (the I flag
        alone) with the reserved bytes 1-3 zero, or 0x88 (the I flag and the G flag of the Group
        Based Policy extension, Linux's ``gbp``: byte 1 holds only its D and A flags, bytes 2-3 the
        policy ID), the reserved byte 7 zero, and the frame inside carrying IP
        (:meth:`_vxlan_ip_inside`). The port is no IANA one (4789 is), so other traffic on it
        must not be taken for a tunnel."""
        if lim - q < 22 or d[q + 7] or not (
                (d[q] == 0x08 and not (d[q + 1] or d[q + 2] or d[q + 3]))
                or (d[q] == 0x88 and not d[q + 1] & ~0x48)):
            return None
        if not self._vxlan_ip_inside(d, q, lim, uend):
            return None
        return self._tunnel("VXLAN", self._ether, d, q + 8, lim, base, ctx, depth)

    def _tzsp(self, d: Any, q: int, lim: int, uend: int, base: int, ctx: _Ctx, depth: int,
              to_port: bool = True) -> Any:
        """TZSP header at ``q`` (UDP payload from or to port 37008, ``lim``: its captured end,
        ``uend``: where the UDP length says it ends), as Wireshark's packet-tzsp.c reads it:
        version 1, type 0 (received) or 1 (transmitted), a 16-bit encapsulation, then tagged
        fields (tag 0: one byte of padding, 1: the end, others: tag, length, value), then the
        frame. Encapsulation 1 (Ethernet) is read as a tunnel ("TZSP"), and 7 (raw IP) by its
        version nibble; another (802.11, PPP… :data:`TZSP_ENCAPS`) is counted in
        :attr:`tzsp_unread` and the datagram stays UDP. None (the datagram stays UDP) for
        another version or type, fields that run past the datagram, and, for a datagram from
        port 37008 to another port (``to_port`` False: a client's ephemeral port 37008 is
        ordinary UDP), unless the frame holds an IP packet captured whole that fits in the
        datagram (:meth:`_vxlan_ip_inside`, :meth:`_ip_fits`)."""
        if lim - q < 5 or d[q] != 1 or d[q + 1] > 1:
            return None
        encap = _u16(d, q + 2)[0]
        p = q + 4
        while True:
            if p >= lim:
                return None
            tag = d[p]
            if tag == 1:
                p += 1
                break
            if tag == 0:
                p += 1
                continue
            if p + 2 > lim:
                return None
            p += 2 + d[p + 1]
        if p > lim:
            return None
        if encap == 1:
            if not to_port and not self._vxlan_ip_inside(d, p - 8, lim, uend):
                return None
            return self._tunnel("TZSP", self._ether, d, p, lim, base, ctx, depth)
        if encap == 7:
            v = self._ip_fits(d, p, lim, uend) if not to_port else \
                {4: 4, 6: 6}.get(d[p] >> 4, 0) if p < lim else 0
            if not v:
                return None
            return self._tunnel("TZSP", self._ip, d, p, lim, base, ctx, depth, v)
        if to_port:
            self.tzsp_unread[encap] += 1
        return None

    @staticmethod
    def _vxlan_ip_inside(d: Any, q: int, lim: int, uend: int) -> bool:
        """The Ethernet frame after the 8-byte VXLAN header at ``q`` (up to
        :data:`MAX_VLAN_TAGS` tags) holds an IPv4 header (version 4, header length at least 20,
        total length at least that and not 0) or an IPv6 header (version 6, payload length not
        0) captured whole, whose datagram fits in the UDP datagram (``uend``: where its length
        says it ends; ``lim``: its captured end)."""
        if lim - q < 22:
            return False
        p = q + 20
        et = _u16(d, p)[0]
        p += 2
        ntags = 0
        while et in TPIDS:
            if lim - p < 4 or ntags == MAX_VLAN_TAGS:
                return False
            et = _u16(d, p + 2)[0]
            p += 4
            ntags += 1
        if et == 0x0800:
            if lim - p < 20 or d[p] >> 4 != 4:
                return False
            ihl = (d[p] & 15) << 2
            tot = _u16(d, p + 2)[0]
            return ihl >= 20 and tot >= ihl and p + tot <= uend
        if et == 0x86DD:
            if lim - p < 40 or d[p] >> 4 != 6:
                return False
            plen = _u16(d, p + 4)[0]
            return plen != 0 and p + 40 + plen <= uend
        return False

    @staticmethod
    def _ip_fits(d: Any, p: int, lim: int, uend: int) -> int:
        """The IP version (4 or 6) of the header at ``p`` when it was captured whole (``lim``:
        the captured end) and its datagram fits before ``uend`` (where the UDP length says the
        datagram carrying it ends): IPv4 with a header length of at least 20 and a total length
        of at least that, IPv6 with a payload length not 0; else 0."""
        if lim - p < 20:
            return 0
        v = d[p] >> 4
        if v == 4:
            ihl = (d[p] & 15) << 2
            tot = _u16(d, p + 2)[0]
            return 4 if 20 <= ihl <= tot and p + tot <= uend else 0
        if v == 6 and lim - p >= 40:
            plen = _u16(d, p + 4)[0]
            return 6 if plen and p + 40 + plen <= uend else 0
        return 0

    def _lisp(self, d: Any, q: int, lim: int, uend: int, base: int, ctx: _Ctx, depth: int) -> Any:
        """LISP data header at ``q`` (UDP payload; ``uend``: where the UDP length says it ends,
        ``lim``: its captured end): 8 bytes (flags, nonce or map version, instance ID or
        locator status bits), then an IPv4 or IPv6 packet, as Wireshark reads it by its first
        nibble. None (the UDP datagram stays as it is) unless that packet's header was captured
        and its length fits the datagram (:meth:`_ip_fits`), so other traffic on the port (a
        client's ephemeral port 4341) is not taken for LISP."""
        v = self._ip_fits(d, q + 8, lim, uend)
        if not v:
            return None
        return self._tunnel("LISP", self._ip, d, q + 8, lim, base, ctx, depth, v)

    def _mpls_udp(self, d: Any, q: int, lim: int, uend: int, base: int, ctx: _Ctx,
                  depth: int) -> Any:
        """MPLS in UDP (RFC 7510) at ``q``: a label stack (up to :data:`MAX_MPLS_LABELS`
        labels, the last with the bottom-of-stack bit), then an IPv4 or IPv6 packet, read as
        MPLS after an ethertype is. None (the UDP datagram stays as it is) unless that packet's
        header was captured and fits the datagram (:meth:`_ip_fits`; a pseudowire or anything
        else there stays UDP), so other traffic on the port is not taken for MPLS."""
        p = self._mpls_stack_end(d, q, lim)
        if p < 0 or not self._ip_fits(d, p, lim, uend):
            return None
        return self._tunnel("MPLS-in-UDP", self._gre_ethertype, d, q, lim, base, ctx, depth,
                            0x8847)

    @staticmethod
    def _mpls_stack_end(d: Any, p: int, lim: int) -> int:
        """Where the MPLS label stack at ``p`` ends (after the label with the bottom-of-stack bit,
        at most :data:`MAX_MPLS_LABELS` labels, captured before ``lim``); -1 when it does not."""
        for _ in range(MAX_MPLS_LABELS):
            if lim - p < 4:
                return -1
            p += 4
            if d[p - 2] & 1:
                return p
        return -1

    def _gre_udp(self, d: Any, q: int, lim: int, uend: int, base: int, ctx: _Ctx, depth: int) -> Any:
        """GRE in UDP (RFC 8086) at ``q``: a GRE header of version 0 (no routing, recursion or
        reserved bit set; the checksum, key and sequence number fields its bits announce), then
        an IPv4 or IPv6 packet, an MPLS label stack and its packet, or an Ethernet frame
        (0x6558) of IPv4 or IPv6, read as GRE in IP is (:meth:`_gre`, counted under "GRE").
        None (the UDP datagram stays as it is) unless that IP packet's header was captured and
        fits the datagram (:meth:`_ip_fits`), so other traffic on the port is not taken for GRE."""
        if lim - q < 4:
            return None
        flags, ptype = _hh(d, q)
        if flags & 0x4FFF:
            return None
        p = q + 4 + 4 * ((flags >> 15) + ((flags >> 13) & 1) + ((flags >> 12) & 1))
        if ptype in (0x8847, 0x8848):                   # MPLS: a label stack, then its packet
            p = self._mpls_stack_end(d, p, lim)
            if p < 0:
                return None
        elif ptype == ETH_BRIDGED:
            if lim - p < 14 or _u16(d, p + 12)[0] not in (0x0800, 0x86DD):
                return None
            p += 14
        elif ptype not in (0x0800, 0x86DD):
            return None
        if not self._ip_fits(d, p, lim, uend):
            return None
        return self._gre(d, q, lim, base, ctx, depth)

    def _vxlan_gpe(self, d: Any, q: int, lim: int, base: int, ctx: _Ctx, depth: int) -> Any:
        """VXLAN-GPE header at ``q`` (UDP payload, draft-ietf-nvo3-vxlan-gpe): flags (version
        0, the P bit: next protocol present), 2 reserved bytes, next protocol, VNI, reserved: 8
        bytes, then an IPv4 (next protocol 1), IPv6 (2) or Ethernet (3) packet, or an MPLS label
        stack (5) and its packet. None (the UDP datagram stays as it is) for anything else (NSH,
        another version)."""
        if lim - q < 8 or d[q] & 0x30 or not d[q] & 0x04:
            return None
        nxt = d[q + 3]
        if nxt == 3:
            return self._tunnel("VXLAN-GPE", self._ether, d, q + 8, lim, base, ctx, depth)
        if nxt == 1 or nxt == 2:
            return self._tunnel("VXLAN-GPE", self._ip, d, q + 8, lim, base, ctx, depth,
                                4 if nxt == 1 else 6)
        if nxt == 5:                                    # MPLS: a label stack, then its packet
            return self._tunnel("VXLAN-GPE", self._gre_ethertype, d, q + 8, lim, base, ctx,
                                depth, 0x8847)
        return None

    def _gtpu(self, d: Any, q: int, lim: int, base: int, ctx: _Ctx, depth: int) -> Any:
        """GTP-U header at ``q`` (UDP payload, 3GPP TS 29.281 §5): flags (version 1, PT 1, E, S,
        PN), message type, length (bytes after the first 8), TEID: 8 bytes; when E, S or PN is
        set, 4 more (sequence number, N-PDU number, next extension header type), then the
        extension headers while the type is not 0 (each: a length in 4-byte units counting
        itself, its content, the next type in its last byte). A G-PDU (type 255) is decoded as
        the IPv4 or IPv6 packet it carries. None (the UDP datagram stays) for other messages
        (echo, error indication, end marker), GTP' or version 0, and a T-PDU that is not IP;
        MALFORMED when the length or an extension header runs past the datagram."""
        if lim - q < 8:
            return None
        flags = d[q]
        if flags & 0xF0 != 0x30 or d[q + 1] != 255:
            return None
        end = min(lim, q + 8 + _u16(d, q + 2)[0])
        h = 8
        if flags & 0x07:
            h = 12
            if end - q < h:
                return MALFORMED
            nxt = d[q + 11]
            while nxt:
                if end - q < h + 1 or not d[q + h]:
                    return MALFORMED
                ln = d[q + h] << 2
                if end - q < h + ln:
                    return MALFORMED
                nxt = d[q + h + ln - 1]
                h += ln
        if end - q <= h:
            return MALFORMED
        v = d[q + h] >> 4
        if v != 4 and v != 6:
            return None
        return self._tunnel("GTP-U", self._ip, d, q + h, end, base, ctx, depth, v)

    @staticmethod
    def geneve_header(d: Any, q: int, lim: int) -> int:
        """The length in bytes (8 + its options) of the Geneve header at ``q`` (``d``: bytes or
        a buffer, ``lim``: the captured end of the UDP payload), or 0 when it is not Geneve
        version 0: its reserved bits set (RFC 8926 §3.4: zero when sent), a protocol type not in
        :data:`_GENEVE_TYPES`, or options past ``lim``. (The tshark engine asks the same of a
        datagram Wireshark reads as Geneve.)"""
        if lim - q < 8 or d[q] >> 6 or d[q + 1] & 0x3F or d[q + 7]:
            return 0
        if _u16(d, q + 2)[0] not in _GENEVE_TYPES:
            return 0
        h = 8 + ((d[q] & 0x3F) << 2)
        return h if q + h <= lim else 0

    def _geneve(self, d: Any, q: int, lim: int, base: int, ctx: _Ctx, depth: int) -> Any:
        """Geneve header at ``q`` (UDP payload, RFC 8926): 8 bytes + Opt Len * 4 bytes of
        options, then the payload of its protocol type (0x6558 Ethernet, else an ethertype:
        IPv4, IPv6 ...). None when it is not Geneve version 0 after all: its reserved bits set
        (RFC 8926 §3.4: zero when sent), a protocol type it does not carry here, or options
        running past the datagram — other traffic on port 6081 (a DNS answer to a client port
        6081 was lost as malformed: newcomer 2 31 F5) stays the UDP datagram it is."""
        h = self.geneve_header(d, q, lim)
        if not h:
            return None
        ptype = _u16(d, q + 2)[0]
        if ptype == 0x6558:
            return self._tunnel("Geneve", self._ether, d, q + h, lim, base, ctx, depth)
        return self._tunnel("Geneve", self._gre_ethertype, d, q + h, lim, base, ctx, depth, ptype)

    def _teredo(self, d: Any, q: int, lim: int, uend: int, base: int, ctx: _Ctx,
                depth: int) -> Any:
        """Teredo (RFC 4380 §5.1.1) UDP payload at ``q`` (``uend``: where the UDP length says it
        ends, ``lim``: its captured end): an optional authentication header (indicator 0x0001:
        4 bytes, client identifier and authentication value of the lengths given, 8-byte nonce,
        confirmation byte), an optional origin indication (indicator 0x0000, 8 bytes), then an
        IPv6 packet that fills the rest of the datagram. None (the UDP datagram stays as it is)
        unless there is an IPv6 header (version 6) whose payload length matches exactly, so other
        traffic on port 3544 is not taken for Teredo."""
        p = q
        if lim - p >= 4 and d[p] == 0 and d[p + 1] == 1:
            p += 13 + d[p + 2] + d[p + 3]
        if lim - p >= 8 and d[p] == 0 and d[p + 1] == 0:
            p += 8
        if lim - p < 40 or d[p] >> 4 != 6 or 40 + _u16(d, p + 4)[0] != uend - p:
            return None
        return self._tunnel("Teredo", self._ip, d, p, lim, base, ctx, depth, 6)

    def _l2tp(self, d: Any, q: int, lim: int, base: int, ctx: _Ctx, depth: int) -> Any:
        """L2TPv2 data message at ``q``: its inner IP packet; None for control messages, data
        messages whose PPP frame carries no IP (LCP, IPCP, CHAP, ...: the tunnel's own link
        traffic, which stays on the outer UDP flow, as tshark counts it; newcomer 32 F2) and
        anything else."""
        if lim - q < 6:
            return None
        flags = _u16(d, q)[0]
        if flags & 0x8000 or flags & 0xF != 2:
            return None
        h = 6 + (2 if flags & 0x4000 else 0) + (4 if flags & 0x0800 else 0)
        if flags & 0x0200:
            if lim - q < h + 2:
                return MALFORMED
            h += 2 + _u16(d, q + h)[0]
        if q + h > lim:
            return MALFORMED
        r = self._tunnel("L2TP", self._ppp, d, q + h, lim, base, ctx, depth)
        return None if type(r) is int and r == NONIP else r
