"""The tshark engine: Wireshark's dissectors -> the same :class:`Packets` columns as
:func:`kscc_traffic.capture.decode.decode`, so flows, inspection, names, classification and the
report are shared with the builtin engine.

Two front ends feed one converter (:class:`PacketBuilder`):

- **files** (:func:`read_packets`): ``tshark -2 -r FILE -T fields -E occurrence=a -e …`` run through
  :mod:`subprocess`, read line by line. pyshark's ``FileCapture`` is impractical here: it parses
  a JSON/XML tree into Python objects for every field of every packet (tens of kilobytes per
  packet, ~100x slower than ``-T fields``) and offers no field projection. One ``tshark``
  process per file, killed if we stop early; its stderr becomes warnings.
- **live capture** (:mod:`kscc_traffic.live.sources`): pyshark's ``LiveCapture`` (``dumpcap``
  piped into ``tshark -T json -x``); :func:`fields_from_json_layers` flattens each pyshark
  packet into the same field lists.

How a dissection becomes one row (units: bytes, nanoseconds):

- ``frame.protocols`` (e.g. ``eth:ethertype:ip:icmp:ip:tcp``) locates the layers. The packet's IP
  layer is the last ``ip``/``ipv6`` before any ``icmp``/``icmpv6`` (so a tunnel gives its inner
  packet, as the builtin decoder does, and the datagram an ICMP error quotes is not taken for the
  packet); its transport is the next layer after IPv6 extension headers and IPv4/IPv6
  authentication headers (``ah``, length ``(ah.length + 2) * 4`` bytes, as the builtin decoder
  walks them; ``esp`` is encrypted and stays the transport). Every field is read at
  the occurrence of its layer (``-E occurrence=a`` lists all occurrences in tree order).
- TCP sequence numbers are absolute (``tcp.relative_sequence_numbers:FALSE``); ``tcp_flags`` is
  ``tcp.flags & 0x1ff`` (NS/AE as 0x100, like the builtin decoder).
- payload bytes come from ``tcp.payload`` / ``udp.payload`` (so the application columns, DNS
  ``query`` and ``dns_rcode`` included, come from the same inspection as with the builtin engine;
  Wireshark's ``dns.*`` fields such as ``dns.flags.rcode`` are not read), and from ``data.data``
  for a payload Wireshark shows as data (IP fragments, unknown protocols). For an ICMP/ICMPv6 error (:data:`_QUOTING`: destination
  unreachable, time exceeded, parameter problem, redirect…) the quoted datagram is rebuilt from Wireshark's dissection of the quoted IP and transport headers
  (a 20-byte IPv4 or 40-byte IPv6 header + the first 8 transport bytes), which is all
  :func:`kscc_traffic.protocols.icmp.quoted_datagram` reads.
- ``payload_len`` and ``pl_cap`` are the builtin decoder's also where Wireshark gives no bytes
  (an ICMP body, ESP, IGMP…): ``payload_len`` from the headers, ``pl_cap`` the bytes of it the
  frame holds — all of it less what the snaplen cut off the frame's end (frame length - captured
  length) and what the IP length says beyond the frame (Wireshark's expert message "IPv4 total
  length exceeds packet length (N bytes)" / "IPv6 payload length exceeds framing length (N
  bytes)", taken only with the IP layer's own expert field, never from a packet comment
  reading the same); the bytes kept for it are zeros after the rebuilt quote, as nothing else reads them.
  A TCP ``payload_len`` is likewise the IP length's, not ``tcp.len`` (which stops at the frame's
  end). So :meth:`ReadStats.warn_short_packets` counts the same packets with both engines.
- IP fragments: Wireshark reassembles them (``ip.defragment``); frames whose datagram is
  reassembled in a later frame give no row, the completing frame gives the whole datagram
  (``ip_len`` = the headers before the fragment header + the reassembled length), as the
  builtin decoder does; files are read in
  two passes (``tshark -2``) so that early fragments know where they are completed. Fragments
  never completed give one row each (counted in the builtin decoder's warning line), of the
  protocol their fragment header names (``ipv6.fraghdr.nxt``, not 44), with their bytes.
  Where Wireshark (4.0) differs from the builtin decoder, this engine follows Wireshark: an
  IPv6 datagram whose later fragment names another Next Header than the first (RFC 8200 §4.5:
  only the offset-0 fragment's counts; the builtin decoder and Linux key on (id, src, dst)) is
  reassembled but dissected by the completing fragment's Next Header (59: a row of protocol 44
  with the data, the transport inside unread); an IPv6 datagram whose fragments overlap is
  reassembled by Wireshark (first copy kept, ``ipv6.fragment.overlap``) where the builtin
  decoder drops it whole as the receiver does (RFC 5722). Fragments the snaplen cut: the
  builtin decoder completes a datagram from the fragment headers' offsets and lengths (the bytes
  cut are not needed to know it arrived whole), Wireshark does not reassemble them, so this
  engine gives the fragments as rows of their own ("never captured whole") and may split the
  flow (break-it, session 47; not changed).
  Copies of fragments (a SPAN port or a second interface copying each frame) are dropped as the
  builtin decoder drops them: the fragments also go through its reassembly table
  (:class:`~kscc_traffic.capture._ipfrag.Reassembler`, :meth:`PacketBuilder._fragment_copy`; their
  bytes from ``data.data``, the completing one's from ``ip.reassembled.data`` /
  ``ipv6.reassembled.data``) beside Wireshark's, which still gives the rows; a fragment it finds
  an exact copy of one held, or of one of a datagram completed at most 2 s before, gives no row
  and is counted ("N duplicate IP fragments ignored"). Without it, Wireshark completed a datagram
  at the first copy of its last fragment and left the second copy a fragment never completed (a
  made-up flow of "lost" fragments), and reassembled a whole set captured twice twice (an IPv6
  datagram then counted twice: no IP id for the frame dedup; break-it s56 #4). The same table
  counts the datagrams whose fragments overlap (the builtin decoder's line).
- An ICMP error whose quote the snaplen cut after the quoted IP header but before the ports
  (IPv4 options or IPv6 extension headers in the quote): the builtin decoder attaches it to the
  only TCP flow between the quoted addresses (``icmp_unreachable``); this engine leaves it an
  ICMP flow of its own, the TCP flow judged without it (break-it, session 47; not changed).
- ``vlan``, ``l2_bcast``: of the link layer that carried the packet's IP layer, as the builtin
  decoder (:mod:`kscc_traffic.capture.decode`): the ``vlan.id``/``ieee8021ad.id`` tags after the
  last ``eth`` between the IP layer before it and it, and that ``eth``'s ``eth.dst``
  ff:ff:ff:ff:ff:ff (so a tunnel that carries an Ethernet frame — VXLAN, Geneve, GRE bridging,
  ERSPAN, an MPLS pseudowire — gives the inner frame's; an 802.1ah PBB I-TAG, which Wireshark
  shows without an ``eth`` layer for the customer frame, gives that frame's tags and its
  ``ieee8021ah.cdst``: see :func:`_pbb_layers`); with no IP layer before it, the
  frame's own link layer (SLL ``sll.pkttype`` 1, 802.11 ``wlan.da`` broadcast); a tunnel that
  carries IP directly (IP-in-IP, GRE with an IP protocol type, PPP, Teredo) gives 0 and False.
  ``l2_out``: the frame's SLL/SLL2 ``sll.pkttype`` is 4 (sent by the capturing host), for the
  packet of the frame's own link layer (no IP layer before it). A cooked record that keeps its
  device's link layer (``sll:radiotap``, ``sll:fr``: ARPHRD 803 and 770) takes both from that
  layer instead, as the builtin decoder (802.11's destination; Frame Relay records none).

A TCP header the snaplen cut before its 16th byte (Wireshark: ports only, no ``tcp.flags`` nor
``tcp.len``) gives ``payload_len`` -1 and flags, seq, ack 0, as the builtin
decoder.

Frames the builtin decoder skips as malformed that Wireshark also cannot read (an IPv4 header
length below 20 or beyond the packet, a total length below the header, another version under
ethertype 0x0800: no ``ip.src``; a TCP data offset below 5) are counted in the builtin decoder's
line ("N frames too short or inconsistent to decode (malformed) skipped",
:attr:`PacketBuilder.other_malformed`); those with a line of their own (bad IPv4 options, a bad
FCS…) are not in it. Wireshark's ``_ws.malformed`` is not read: it also marks an application
layer that does not parse, which the builtin decoder does not look at.

BSD loopback (NULL, LOOP): Wireshark reads neither family 10 (Linux's AF_INET6) nor 23
(Windows', which it reads as IPX) as IPv6, and a LOOP family only big-endian; the builtin decoder
reads all of them (and 24, 28, 30) in either byte order. Such frames are counted
(:attr:`PacketBuilder.loop_families`) and :func:`read_packets` has tshark dissect a copy of the
records with the family written as Wireshark reads it (:func:`_loop_header`), with one warning
line. A family naming the other IP version than the packet's (24 on IPv4, 2 on IPv6) is
malformed, as the builtin decoder asks the version its family names.

A first fragment never completed is shown by Wireshark as ``data``; its AH, IPv6 extension
headers and transport header (TCP, UDP, ICMP) are read from those bytes (``data.data``), as the
builtin decoder does, its protocol for IPv6 from the fragment header (``ipv6.fraghdr.nxt``), and,
as every fragment of a datagram never completed, it is ``unreassembled`` and carries no payload
(Wireshark dissects no application in it either).

VXLAN on Linux's default port 8472, which Wireshark does not read by itself, is asked for with
``-d udp.port==8472,vxlan`` (:data:`DECODE_AS`); a datagram there is taken as VXLAN only when it
passes the builtin decoder's checks (:func:`_vxlan_fits`), else it stays the UDP datagram.
LISP data (``lisp-data``, UDP 4341) and MPLS in UDP (``udp:mpls`` on port 6635), which Wireshark
reads for any IP-looking payload on the port, are taken as the builtin decoder takes them: the
inner IP header whole and its datagram within the UDP one (:func:`_udp_ip_fits`), else the
datagram stays UDP. A datagram to 6081 Wireshark reads as Geneve is one only when its header
passes the builtin decoder's checks (:func:`_geneve_fits`: version 0, reserved bits zero, a
protocol type it carries, options within the bytes), and one to 4789 only with the 8-byte VXLAN
header captured; else it stays UDP. A tunnel the builtin decoder reads whatever it carries (GRE,
VXLAN to 4789, Geneve, VXLAN-GPE) that carries no IP packet (ARP in VXLAN, a PPTP acknowledgement) makes the
frame not IP, as with the builtin decoder (:func:`_tunnel_without_ip`); a GRE keepalive (protocol
type 0) is the GRE packet.
TZSP (``tzsp``, UDP port 37008 either way) is read as the builtin decoder reads it
(:meth:`PacketBuilder._tzsp_read`): Ethernet and raw IP inside; a datagram from 37008 to another
port only with an IP packet inside that fits; other encapsulations (802.11…, which Wireshark
dissects) stay the UDP datagram and are counted in the builtin decoder's warning line
(``capture.decode.tzsp_note``).
IPsec ESP rows (protocol 50) are counted in the builtin decoder's warning line
(``capture.decode.esp_note``); a pcap record whose original length Wireshark clamps (``frame.len``
2147483647) is said as the builtin reader says it, and not counted as cut by the snaplen.

Times: ``frame.time_epoch``; for a pcapng file they are checked against the built-in reader's
(:func:`_check_times`: tshark 4.0 misreads an ``if_tsresol`` finer than a nanosecond) and, when
they differ, the built-in reader's are taken, with one warning line.

A file tshark opens but that holds no packets — a JSON document, an image, an ELF binary, a PEM
file (Wireshark's readers for them give one frame of the whole file, :data:`_NOT_PACKETS`) — is
refused (:class:`UnsupportedFormat`), as the built-in reader refuses what is not a capture.

An 802.11 A-MSDU (``wlan.qos.amsdupresent``) gives one row per subframe, as the builtin decoder
does: Wireshark lists the subframes' layers one after the other, and the list is cut at each
subframe's ``llc`` layer (:func:`_subframes`); each subframe's ``l2_bcast`` is its own ``wlan.da``.

Known differences from the builtin decoder (none occurs in ``../shared/corpus/ksc``): IPv4 packets with total length 0 (TSO) keep
``ip_len`` 0. An Ethernet pseudowire (MPLS) without control word: Wireshark reads a frame there
only when both its addresses have a vendor prefix it knows (else it assumes a control word) and
its first nibble is 0 (4 or 6 when the IP length does not fit; other nibbles, a broadcast
destination say, it shows as data); the builtin decoder looks at the ethertype instead
(``_slowpath.SlowDecoder._pw_without_cw``), and for a first nibble of 4 or 6 also at an IP
header that is shorter than the frame, or has a bad checksum (``_pw_not_ip``). Protected
(encrypted) 802.11 data frames and encrypted MACsec frames of the capture's link are counted in
a warning, as by the builtin engine (:func:`_link_sealed`), unless tshark decrypted them (keys in
the user's Wireshark profile): then they are read. IPv4 options that do not parse are malformed for both engines; the builtin
decoder checks the generic option layout (``_slowpath.v4_options_ok``), Wireshark also each known
option's own length rules (``ip.opt.len.invalid``), so an option of a valid layout but a length
wrong for its kind is malformed with this engine only. A UDP length field below 8 (Wireshark:
"Bad length value", nothing after the header dissected): the payload is the rest of the IP
packet as with the builtin decoder (``payload_len``, ``pl_cap``: not taken for bytes a capture
cut), but its bytes are zeros with this engine (no receiver delivers such a datagram).
"""
from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

from ..capture.files import TS_FOLDED_TEXT, TS_MAX_NS, TS_RANGE_TEXT, fold_ts, no_timestamp_note
from ..capture.packets import PACKET_COLUMNS, Packets
from ..capture.decode import SumClaim
from ..capture._ipfrag import Reassembler
from ..capture._slowpath import GENEVE_PORT, GRE_UDP_PORT, TZSP_PORT, SlowDecoder
from ..capture.frames import LT_DAMAGED, LT_FCS, LT_FCS2
from ..capture.stats import WIRELEN_CLAMP, WIRELEN_DAMAGED, ReadStats, wirelen_damaged_note
from ..errors import CaptureError, EngineError, UnsupportedFormat
from ..text import name_text, path_text

__all__ = ["FIELDS", "PREFS", "PacketBuilder", "find_tool", "read_packets", "check_is_capture",
           "fields_from_json_layers", "INSTALL_HINT"]

INSTALL_HINT = ("install Wireshark's command-line tools: `sudo apt-get install tshark` "
                "(Debian/Ubuntu), `sudo dnf install wireshark-cli` (Fedora), "
                "`brew install wireshark` (macOS)")

#: tshark preferences the converter relies on
PREFS: list[str] = ["-o", "tcp.relative_sequence_numbers:FALSE",
                    "-o", "tcp.analyze_sequence_numbers:FALSE",
                    "-o", "ip.defragment:TRUE", "-o", "ipv6.defragment:TRUE",
                    # an FCS the file says is there is checked (wlan.fcs.status, eth.fcs.status:
                    # 0 is bad), and only then: Ethernet's heuristic would take 4 bytes of
                    # trailer for an FCS ("Never" leaves the file's own FCS length in force)
                    "-o", "wlan.check_checksum:TRUE", "-o", "eth.check_fcs:TRUE",
                    "-o", "eth.fcs:Never"]

#: tshark preferences for reading files that older tshark versions may not know: each is
#: dropped (and tshark run again) when tshark says it does not (:func:`_dissect`).
#: ``ipv6.tso_support``: an IPv6 payload length of 0 without a Jumbo Payload option (Linux BIG
#: TCP, TSO/GSO as captured on the sending host) is the rest of the frame, as the builtin
#: decoder reads it (without it Wireshark calls the packet malformed and reads no TCP header)
OPTIONAL_PREFS: list[str] = ["-o", "ipv6.tso_support:TRUE"]
#: names of :data:`OPTIONAL_PREFS` the installed tshark said it does not know
_unknown_prefs: set[str] = set()

#: dissectors tshark is told to use where it would not by itself ("Decode As"): VXLAN on Linux's
#: default port 8472, as the builtin decoder reads it (only what passes its checks is taken for
#: VXLAN: :func:`_vxlan_fits`; other datagrams there stay UDP)
DECODE_AS: list[str] = ["-d", "udp.port==8472,vxlan"]
#: the VXLAN port only :data:`DECODE_AS` makes Wireshark read (4789 it reads by itself)
_VXLAN_LINUX_PORT = 8472
#: dissectors tshark is told not to use: Juniper's packet mirror (jmirror) takes every UDP
#: datagram on port 30030 for a mirrored IP packet and makes up an inner flow from its payload
#: (0x66 bytes gave 6666:…:6666 → 6666:…:6666), which the builtin decoder does not read
#: (break-it s51 pass 4): both engines keep such a datagram a UDP flow
DISABLED: list[str] = ["--disable-protocol", "jmirror"]

#: fields read from the dissection (every occurrence, in tree order)
FIELDS: list[str] = [
    "frame.number", "frame.time_epoch", "frame.protocols", "frame.cap_len",
    "eth.dst", "sll.pkttype", "wlan.da", "wlan.qos.amsdupresent", "vlan.id", "ieee8021ad.id",
    "ip.version", "ipv6.version",
    "ip.src", "ip.dst", "ip.proto", "ip.id", "ip.len", "ip.hdr_len", "ip.flags.mf", "ip.ttl",
    "ip.frag_offset", "ip.reassembled_in", "ip.reassembled.length",
    "ipv6.src", "ipv6.dst", "ipv6.nxt", "ipv6.plen", "ipv6.hlim", "ipv6.reassembled.in",
    "ipv6.reassembled.length", "ipv6.hopopts.len_oct", "ipv6.routing.len_oct",
    "ipv6.dstopts.len_oct", "ipv6.opt.jumbo", "ipv6.fraghdr.offset", "ipv6.fraghdr.more", "ipv6.fraghdr.nxt",
    "ipv6.routing.type", "ipv6.routing.segleft", "ipv6.routing.len", "ipv6.routing.src.addr",
    "ipv6.routing.srh.addr", "ipv6.routing.srh.last_entry", "ipv6.routing.mipv6.home_address",
    "ipv6.opt.mipv6.home_address",
    "ah.next_header", "ah.length",
    "tcp.srcport", "tcp.dstport", "tcp.flags", "tcp.seq", "tcp.ack", "tcp.len", "tcp.payload",
    "tcp.window_size_value", "tcp.hdr_len", "tcp.urgent_pointer", "tcp.options",
    "udp.srcport", "udp.dstport", "udp.length", "udp.payload", "tcp.checksum", "udp.checksum",
    "icmp.checksum", "icmpv6.checksum",
    "icmp.type", "icmp.code", "icmpv6.type", "icmpv6.code", "data.data", "frame.len",
    "igmp.type", "igmp.maddr", "igmp.record_type", "igmp.num_src", "icmpv6.mld.multicast_address",
    "icmpv6.mldr.mar.record_type", "icmpv6.mldr.mar.nb_sources", "icmpv6.mldr.mar.multicast_address",
    "teredo.auth.idlen", "teredo.auth.aulen", "teredo.orig.port",
    "vxlan.flags", "vxlan.gbp", "vxlan.reserved8", "mpls.bottom", "gre.proto", "gre.flags_and_version",
    "ieee8021ah.isid", "ieee8021ah.cdst", "frame.interface_id", "frame.encap_type",
    "_ws.expert.message", "ip.bogus_ip_length", "ipv6.plen_exceeds_framing", "frame.comment",
    "ip.opt.len.invalid",
    "radiotap.flags.badfcs", "ppi.80211-common.flags.fcs-invalid", "frame.packet_flags_crc_error",
    "erf.flags.rxe", "wlan.fcs.status", "eth.fcs.status",
    "tzsp.version", "tzsp.type", "tzsp.encap", "tzsp.option_tag", "tzsp.option_length",
    "ppp.protocol",
    "wlan.fc.version", "wlan.fc.type", "wlan.fc.subtype", "wlan.fc.protected",
    "macsec.TCI.V", "macsec.TCI.E", "macsec.TCI.C",
    "ipv6.fraghdr.ident", "ip.reassembled.data", "ipv6.reassembled.data", "null.family",
]
#: fields by which the capture marks a frame damaged (radiotap's bad-FCS flag, PPI's FCS
#: invalid, pcapng epb_flags CRC error, an ERF record's RX error); and those that give an FCS
#: check's result (0: bad)
_DAMAGE_FLAGS = ("radiotap.flags.badfcs", "ppi.80211-common.flags.fcs-invalid",
                 "frame.packet_flags_crc_error", "erf.flags.rxe")
_FCS_STATUS = ("wlan.fcs.status", "eth.fcs.status")


def _ppp_sealed(f: Mapping) -> bool:
    """The frame's last PPP layer (``ppp.protocol``, every occurrence: PPP in PPP) carries a
    compressed or encrypted datagram (:data:`~kscc_traffic.capture._slowpath.PPP_SEALED`)."""
    from ..capture._slowpath import PPP_SEALED
    vals = f.get("ppp.protocol") or []
    if not vals:
        return False
    try:
        return int(vals[-1], 0) in PPP_SEALED
    except ValueError:
        return False


def _link_sealed(protos: Sequence[str], f: Mapping) -> str:
    """``"wlan"``: the frame is an 802.11 data frame (version 0, a subtype that carries data)
    with the Protected bit; ``"macsec"``: a MACsec frame (SecTAG version 0) with the E or C bit
    (its data encrypted or changed); ``""``: neither. Only the frame's own link (no IP layer
    before the ``wlan`` / ``macsec`` one: 802.11 in TZSP is counted there, :attr:`PacketBuilder.tzsp_unread`)
    and only when tshark did not decrypt it (no IP layer at all), as the builtin decoder
    counts them (``_slowpath.SlowDecoder._dot11``, ``_macsec``)."""
    if "ip" in protos or "ipv6" in protos:
        return ""
    if "wlan" in protos:
        if ("udp" not in protos[:protos.index("wlan")] and _at(f, "wlan.fc.version", 0) == "0"
                and _at(f, "wlan.fc.type", 0) == "2" and not _int(_at(f, "wlan.fc.subtype", 0), 0) & 4
                and _at(f, "wlan.fc.protected", 0) in ("1", "True")):
            return "wlan"
        return ""
    if "macsec" in protos and "udp" not in protos[:protos.index("macsec")]:
        if (_int(_at(f, "macsec.TCI.V", 0), 1) == 0
                and any(_at(f, k, 0) in ("1", "True") for k in ("macsec.TCI.E", "macsec.TCI.C"))):
            return "macsec"
    return ""


_WANTED = frozenset(FIELDS)

_PROTO_NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58, "igmp": 2, "sctp": 132,
                  "gre": 47, "esp": 50, "ah": 51, "ospf": 89, "vrrp": 112, "pim": 103,
                  "dccp": 33, "udplite": 136,
                  # (IPv6 headers the chain ends at, as in the builtin decoder: _slowpath.IPV6_EXT)
                  "mipv6": 135, "hip": 139, "shim6": 140}
_ICMP = ("icmp", "icmpv6")
#: ICMP / ICMPv6 error types whose quoted datagram is rebuilt (:func:`_quoted`): destination
#: unreachable, source quench, redirect, time exceeded, parameter problem (ICMP 3, 4, 5, 11, 12);
#: destination unreachable, packet too big, time exceeded, parameter problem (ICMPv6 1-4), as the
#: builtin decoder keeps every error's quote (:mod:`kscc_traffic.unreachable` reads them)
_QUOTING = {"icmp": frozenset({3, 4, 5, 11, 12}), "icmpv6": frozenset({1, 2, 3, 4})}
_IP = ("ip", "ipv6")
#: Wireshark protocols of a tunnel -> the builtin decoder's name for it (its warning line:
#: ``capture.decode.tunnel_note``); a link-layer tunnel (PBB, MPLS pseudowire) needs no outer IP
#: layers Wireshark shows between an IP header and the IP header of the packet an IP-protocol
#: tunnel carries (GRE, with or without an Ethernet frame: 0x6558 bridging, ERSPAN, MPLS; EtherIP;
#: IP-in-IP and 6in4 show none)
_IP_TUNNEL_LAYERS = frozenset(("gre", "erspan", "etherip", "eth", "ethertype", "vlan", "ieee8021ad", "mpls"))
_TUNNELS = {"gre": "GRE", "erspan": "GRE", "pptp": "GRE", "vxlan": "VXLAN", "geneve": "Geneve",
            "gtp": "GTP-U", "teredo": "Teredo", "l2tp": "L2TP", "lisp-data": "LISP",
            "etherip": "EtherIP", "tzsp": "TZSP"}
_LINK_TUNNELS = {"ieee8021ah": "PBB", "pwethheuristic": "MPLS-PW", "pwethcw": "MPLS-PW",
                 "pwethnocw": "MPLS-PW", "pweth": "MPLS-PW", "nsh": "NSH"}


#: UDP destination ports of tunnels Wireshark leaves out of ``frame.protocols`` (VXLAN-GPE)
_UDP_TUNNEL_PORTS = {4790: "VXLAN-GPE", 4789: "VXLAN", 8472: "VXLAN", 6081: "Geneve"}
#: MPLS in UDP (RFC 7510), either port: Wireshark shows ``udp:mpls``
_MPLS_UDP_PORT = 6635


def _tunnel_kind(protos: list[str], f: Mapping[str, Sequence[str]], start: int, ip_idx: int) -> str:
    """The tunnel the packet at ``protos[ip_idx]`` came out of, by the builtin decoder's names
    (GRE, VXLAN, IP-in-IP, Ethernet-in-IP…); '' when it was not tunnelled."""
    before = protos[start:ip_idx]
    outer = next((i for i, p in enumerate(before) if p in _IP), -1)
    if outer < 0:
        if any(start <= k < ip_idx for k in _pbb_layers(protos, f)):
            return "PBB"        # (an I-TAG may be shown inside the B-TAG's ieee8021ad layer)
        return next((_LINK_TUNNELS[p] for p in before if p in _LINK_TUNNELS), "")
    inner = before[outer + 1:]
    kind = next((_TUNNELS[p] for p in inner if p in _TUNNELS), "")
    if not kind and "udp" in inner:
        k = protos[:start + outer + 1 + inner.index("udp")].count("udp")
        kind = _UDP_TUNNEL_PORTS.get(_int(_at(f, "udp.dstport", k), -1), "")
        if not kind and _MPLS_UDP_PORT in (_int(_at(f, "udp.dstport", k)),
                                           _int(_at(f, "udp.srcport", k))):
            kind = "MPLS-in-UDP"
    return kind or ("Ethernet-in-IP" if "eth" in inner else "IP-in-IP")
_V6_EXT = {"ipv6.hopopts": "ipv6.hopopts.len_oct", "ipv6.routing": "ipv6.routing.len_oct",
           "ipv6.dstopts": "ipv6.dstopts.len_oct", "ipv6.fraghdr": None}
_V4MAPPED = 0xFFFF_0000_0000
_BCAST = "ff:ff:ff:ff:ff:ff"
#: ``pl_off`` of a row whose payload bytes are not dissected, until :meth:`PacketBuilder.packets`
#: points it at a block of zeros
_ZEROS = -2
#: Wireshark's expert messages when an IP length says more than the frame holds (with the
#: bytes it holds: the whole IPv4 datagram / the IPv6 payload)
_BEYOND = {"ip": "IPv4 total length exceeds packet length (",
           "ipv6": "IPv6 payload length exceeds framing length ("}
#: the IP dissectors' expert fields of those messages (present only when the IP layer itself
#: says so; a packet comment reading like the message has neither)
_BEYOND_FIELD = {"ip": "ip.bogus_ip_length", "ipv6": "ipv6.plen_exceeds_framing"}

#: Wireshark encapsulations (``frame.encap_type``, wiretap's WTAP_ENCAP_*) of files that are no
#: packet capture, which tshark opens as one frame holding the whole file: what they are
_NOT_PACKETS = {96: "an MPEG audio or video file", 123: "a JPEG image", 134: "a file of type {}",
                175: "a JSON document", 201: "Ruby marshal data", 202: "a PEM (RFC 7468) file",
                203: "a systemd journal (log entries)", 209: "an MP4 video"}

# the Packets columns this builder fills per row (frame and ts_ns included)
_COLS = list(PACKET_COLUMNS)


def find_tool(name: str = "tshark") -> str:
    """Path of Wireshark's ``name`` (``tshark`` or ``dumpcap``) on ``PATH``.

    :raises EngineError: not installed; the message says how to install it.
    """
    path = shutil.which(name)
    if not path:
        raise EngineError(f"{name} not found (the tshark engine needs Wireshark's {name}): "
                          f"{INSTALL_HINT}")
    return path


def _int(v: str, default: int = -1) -> int:
    try:
        return int(v, 0) if v[:2] in ("0x", "0X") else int(v)
    except (ValueError, TypeError):
        return default


def _ts_ns(text: str) -> int:
    """tshark's ``frame.time_epoch`` text -> epoch ns, exact (any size: the caller brings it inside
    the kept range, :func:`~kscc_traffic.capture.files.fold_ts`)."""
    s, _, frac = text.partition(".")
    neg = s.startswith("-")
    sec = int(s) if s not in ("", "-") else 0
    if sec >= 1 << 63:                      # an unsigned rendering of a negative time
        sec -= 1 << 64
    # (a pcap record's ts_usec ≥ 10^6: tshark prints its nanoseconds, 10^9 or more, in full:
    # "1764000001.1500000000" is 1.5 s after the second, as the built-in reader keeps it)
    ns = (int(frac) if len(frac) > 9 else int((frac + "000000000")[:9])) if frac else 0
    v = sec * 1_000_000_000 - ns if neg else sec * 1_000_000_000 + ns
    return v


def _addr(text: str) -> tuple[int, int]:
    a = ipaddress.ip_address(text)
    if a.version == 4:
        return 0, _V4MAPPED | int(a)
    n = int(a)
    return n >> 64, n & 0xFFFF_FFFF_FFFF_FFFF


def _hex(text: str) -> bytes:
    try:
        return bytes.fromhex(text.replace(":", ""))
    except ValueError:
        return b""


def _group_records(types, counts, groups, width: int, limit: int = 65535) -> bytes:
    """Group records (RFC 3376 §4.2.4, RFC 3810 §5.2.4) rebuilt from Wireshark's fields: record
    type, the number of sources, the group; the sources zeros, no aux data (what
    :func:`kscc_traffic.protocols.mcast.joined_groups` reads of them). At most ``limit`` bytes:
    the callers cut it to the IP payload's length, and a record claiming 65,535 sources of a
    short packet (hostile) would otherwise cost 1 MiB of zeros each."""
    out = bytearray()
    for rt, ns, g in zip(types, counts, groups):
        if len(out) >= limit:
            break
        try:
            addr = ipaddress.ip_address(g).packed
        except ValueError:
            break
        n = _int(ns, 0) & 0xFFFF
        out += bytes([_int(rt, 0) & 0xFF, 0, (n >> 8) & 0xFF, n & 0xFF]) + addr
        out += bytes(max(0, min(n * width, limit - len(out))))
    return bytes(out[:limit])


def _igmp_report(f: Mapping[str, Sequence[str]]) -> bytes:
    """The IGMP membership report of the frame as the builtin decoder's payload would hold it
    (the whole message; rebuilt from ``igmp.*`` fields, checksum and sources zeros: what
    :mod:`kscc_traffic.protocols.mcast` reads), b"" for any other IGMP message."""
    t = _int(_at(f, "igmp.type", 0), -1)
    if t in (0x12, 0x16):
        try:
            return bytes([t, 0, 0, 0]) + ipaddress.IPv4Address(_at(f, "igmp.maddr", 0)).packed
        except ValueError:
            return b""
    if t == 0x22:
        types = f.get("igmp.record_type") or ()
        recs = _group_records(types, f.get("igmp.num_src") or (), f.get("igmp.maddr") or (), 4)
        return bytes([0x22, 0, 0, 0, 0, 0, (len(types) >> 8) & 0xFF, len(types) & 0xFF]) + recs
    return b""


def _mld_report(f: Mapping[str, Sequence[str]], it: int) -> bytes:
    """What follows the 8-byte ICMPv6 header of an MLDv1 (131) or MLDv2 (143) report, rebuilt from
    ``icmpv6.mld*`` fields (sources zeros, no aux data), as the builtin decoder's payload holds it."""
    if it == 131:
        try:
            return ipaddress.IPv6Address(_at(f, "icmpv6.mld.multicast_address", 0)).packed
        except ValueError:
            return b""
    return _group_records(f.get("icmpv6.mldr.mar.record_type") or (), f.get("icmpv6.mldr.mar.nb_sources") or (),
                          f.get("icmpv6.mldr.mar.multicast_address") or (), 16)


def _at(f: Mapping[str, Sequence[str]], name: str, k: int, default: str = "") -> str:
    v = f.get(name)
    if not v or k >= len(v) or k < 0:
        return default
    return v[k]


class PacketBuilder:
    """Collects one :class:`Packets` row per dissected IP datagram.

    Call :meth:`add` once per frame, in capture order, then :meth:`packets`. Memory: one Python
    int per column per row plus the payload bytes (``tcp.payload``/``udp.payload``, rebuilt ICMP
    quotes) in one ``bytearray``.
    """

    def __init__(self) -> None:
        self.rows: dict[str, list] = {k: [] for k in _COLS}
        self.buf = bytearray()
        self.records = 0
        self.non_ip = 0
        self.malformed = 0
        self.tunnels: dict[str, int] = {}       # tunnel kind -> packets (_tunnel_kind)
        #: frames cut by the snaplen (count, longest kept length): ReadStats.count_cut
        self.cut = ReadStats()
        #: frames without a time (a pcapng Simple Packet Block: ``frame.time_epoch`` empty)
        self.no_ts = 0
        #: frames that are no packet (a pcapng custom block Wireshark lists as a frame: no
        #: interface, no time)
        self.not_packets = 0
        self._last_ts = 0           # the time of the last frame that had one
        #: the latest time of any frame, IP or not (ReadStats.last_frame_ns); None: no frame
        self.latest_ns: int | None = None
        #: the earliest time after 1970 of any frame (ReadStats.first_frame_ns); None: no frame
        self.earliest_ns: int | None = None
        self._no_ts_run = 0         # frames without a time since that frame
        #: frames timed beyond the int64 nanosecond range (clamped to it)
        self.ts_clamped = 0
        #: records whose fraction of a second is a second or more (pcap ts_usec ≥ 10^6)
        self.frac_over = 0
        #: frames whose original length is 2**31 - 1 or more (a damaged length field Wireshark
        #: clamps: ``frame.len`` 2147483647; not counted as cut by the snaplen)
        self.wirelen_clamped = 0
        #: frames whose original length is WIRELEN_DAMAGED or more, below that (kept as read)
        self.wirelen_damaged = 0
        self.zero_headers = 0       # records all zeros: a zero-filled region (see row)
        #: IP fragments whose datagram was never completed (one row each)
        self.incomplete = 0
        #: IPv4 datagrams whose options do not parse (``ip.opt.len.invalid``), skipped as
        #: malformed
        self.bad_v4_options = 0
        #: PPP frames of Van Jacobson compressed TCP (``vjc``), not read
        self.vj_tcp = 0
        #: PPP frames compressed or encrypted (``ppp.protocol`` in PPP_SEALED: MPPE), not read
        self.ppp_sealed = 0
        #: 802.11 data frames with the Protected bit that tshark did not decrypt, not read
        self.protected = 0
        #: MACsec frames whose data is encrypted (E or C bit) that tshark did not decrypt, not read
        self.macsec_encrypted = 0
        #: TZSP packets to port 37008 of an encapsulation the builtin decoder does not read
        #: (802.11, PPP…): encapsulation -> count; the UDP datagram is the row, as there
        self.tzsp_unread: dict[int, int] = {}
        #: frames skipped (also in ``malformed``) that the capture marks damaged
        #: (:data:`_DAMAGE_FLAGS`) / whose FCS does not match (:data:`_FCS_STATUS` 0)
        self.damaged_marked = 0
        #: whether the capture's TCP checksums are its packets' (the builtin decoder's
        #: ``capture.decode.SumClaim``, counted on the first TCP segments here)
        self.sums = SumClaim()
        #: the rows of TCP resets whose checksum is wrong (dropped by :meth:`packets` when
        #: :attr:`sums` trusts the checksums)
        self._bad_sum_rows: list[int] = []
        self.fcs_mismatch = 0
        #: MPLS frames whose payload Wireshark read as an IPv4 header of a bogus length (also
        #: in ``malformed``): an Ethernet pseudowire without control word, most likely
        self.mpls_misread = 0
        #: MPLS frames whose payload Wireshark left as bare data (also in ``non_ip``): an
        #: Ethernet pseudowire whose inner destination MAC does not begin with 0, or whose
        #: control word Wireshark guessed wrong, most likely
        self.mpls_unread = 0
        #: BSD loopback (NULL, LOOP) frames whose address family the builtin decoder reads as IP
        #: (:data:`~kscc_traffic.capture._slowpath.AF_INET6`, 2; either byte order) but Wireshark
        #: does not: 10 (Linux's AF_INET6) and 23 (Windows', IPX to Wireshark) in any order, any
        #: family in little-endian order under LINKTYPE_LOOP (big-endian by definition). Also in
        #: ``non_ip``; by family (``loop_families``: family -> frames, little-endian LOOP ones
        #: under ``-family``). :func:`read_packets` dissects a copy with the family rewritten.
        self.loop_unread = 0
        self.loop_families: dict[int, int] = {}
        #: frames of a raw IPv6 link (LINKTYPE_IPV6, 229) holding an IPv4 packet, which
        #: Wireshark 4.0 reads as a malformed IPv6 header ("Bogus IPv6 version"; also in
        #: ``malformed``): not read by this engine, the builtin one reads them
        self.v4_as_v6 = 0
        #: frames that are a whole file of a kind that holds no packets (JSON, an image…:
        #: :data:`_NOT_PACKETS`), and what the last one is
        self.not_capture = 0
        self.file_kind = ""
        #: the IP fragments seen, as the builtin decoder's reassembly table holds them
        #: (:meth:`_fragment_copy`): it tells the exact copies of a fragment (a SPAN port's, a
        #: second interface's), dropped and counted in ``frag.duplicates``, and counts the
        #: datagrams whose fragments overlap (``frag.overlapping``); Wireshark's own reassembly
        #: still gives the rows
        self.frag = Reassembler()
        self._ts = 0                # the time of the frame being added (epoch ns)

    def add(self, protocols: Sequence[str], f: Mapping[str, Sequence[str]],
            frame: int | None = None, ts_ns: int | None = None) -> bool:
        """Add one frame's dissection.

        :param protocols: ``frame.protocols`` split on ``:``.
        :param f: field name -> every occurrence (strings, tree order), see :data:`FIELDS`.
        :param frame: record index (0-based); default ``frame.number - 1``.
        :param ts_ns: timestamp, epoch ns; default from ``frame.time_epoch``. A frame without
            one (``frame.time_epoch`` empty: a pcapng Simple Packet Block) is timed 1 ns after
            the frame before it (the last one with a time, 0 when none), as the built-in reader
            does, and counted in ``no_ts``; a frame with neither a time nor an interface (a
            pcapng custom block, which Wireshark lists as a frame) is no packet: counted in
            ``not_packets``, given the last time.
        :returns: True when a row was added (an IP datagram), False otherwise (not IP, a
            fragment completed later, or undecodable — counted in ``non_ip``/``malformed``).
        """
        self.records += 1
        kind = _NOT_PACKETS.get(_int(_at(f, "frame.encap_type", 0)))
        if kind is not None:
            self.not_capture += 1
            sub = protocols[1] if len(protocols) > 1 and protocols[0] == "mime_dlt" else "MIME"
            self.file_kind = kind.format(sub)
        record = kind is None       # (a packet record, not a block Wireshark lists as a frame)
        if ts_ns is None and not _at(f, "frame.time_epoch", 0):
            if not _at(f, "frame.interface_id", 0):
                record = False
                self.not_packets += 1
                ts_ns = self._last_ts
            else:
                self.no_ts += 1
                self._no_ts_run += 1
                ts_ns = min(self._last_ts + self._no_ts_run, TS_MAX_NS)
        else:
            if ts_ns is None:
                text = _at(f, "frame.time_epoch", 0)
                raw = _ts_ns(text)
                ts_ns = fold_ts(raw)
                self.ts_clamped += ts_ns != raw
                self.frac_over += len(text.partition(".")[2]) > 9
            self._last_ts, self._no_ts_run = ts_ns, 0
            self.latest_ns = ts_ns if self.latest_ns is None else max(self.latest_ns, ts_ns)
            if ts_ns > 0 and (self.earliest_ns is None or ts_ns < self.earliest_ns):
                self.earliest_ns = ts_ns
        wirelen = _int(_at(f, "frame.len", 0), 0)
        self.wirelen_clamped += wirelen >= WIRELEN_CLAMP
        self.wirelen_damaged += WIRELEN_DAMAGED <= wirelen < WIRELEN_CLAMP
        caplen = _int(_at(f, "frame.cap_len", 0), -1)
        if caplen == 0 and wirelen == 0 and not ts_ns and record:
            # (a pcap record header of zeros: a zero-filled region, from a crash or a sparse copy,
            # not a frame; the builtin reader skips them so, files._drop_zero_headers; break-it
            # s56 link #5)
            self.zero_headers += 1
            self.records -= 1
            return False
        if caplen >= 0 and record:
            self.cut.count_cut(caplen, wirelen)
            if caplen == 0:     # (an empty record: ReadStats.empty_records, not a frame that is not IP)
                return False
        protos = list(protocols)
        if any(_at(f, k, 0) in ("1", "True") for k in _DAMAGE_FLAGS):
            # the frame failed its FCS check where it was captured: its bytes are not the
            # bytes sent (the builtin decoder skips it alike: capture.decode.damaged_note)
            self.malformed += 1
            self.damaged_marked += 1
            return False
        if any(_at(f, k, 0) == "0" for k in _FCS_STATUS):
            self.malformed += 1
            self.fcs_mismatch += 1
            return False
        if "vjc" in protos:
            # Van Jacobson compressed TCP (PPP 0x002d/0x002f): not read, counted, as the
            # builtin decoder does (Wireshark rebuilds no IP header of a compressed one)
            self.non_ip += 1
            self.vj_tcp += 1
            return False
        if "ppp" in protos and _ppp_sealed(f):
            # a compressed or encrypted PPP datagram (MPPE in PPTP: Wireshark's comp_data, or
            # data under ECP): not read, counted, as the builtin decoder does
            self.non_ip += 1
            self.ppp_sealed += 1
            return False
        sealed = _link_sealed(protos, f)
        if sealed:
            # an encrypted 802.11 data frame (Protected bit) or MACsec frame (E or C bit) of the
            # link, which tshark did not decrypt: not read, counted, as the builtin decoder does
            self.non_ip += 1
            if sealed == "wlan":
                self.protected += 1
            else:
                self.macsec_encrypted += 1
            return False
        if f.get("ip.opt.len.invalid") and not any(p in _ICMP for p in protos):
            # IPv4 options that do not parse (Wireshark: "Invalid length for option"; a damaged
            # header length reads the transport header as options): malformed, as the builtin
            # decoder skips it (_slowpath.v4_options_ok). (With an ICMP layer the flag may be
            # the quote's: not looked at.)
            self.malformed += 1
            self.bad_v4_options += 1
            return False
        if protos[:1] in ([], ["ipv6"]) and _at(f, "ipv6.version", 0) == "4":
            # LINKTYPE_IPV6 (229) holding IPv4: Wireshark reads an IPv6 header of version 4
            # (and, the dissection stopped by it, lists no protocols for the frame)
            self.malformed += 1
            self.v4_as_v6 += 1
            return False
        if protos[:3] == ["null", "ip", "ipv6"] and _int(_at(f, "null.family", 0), -1) in (2, 0x02000000) \
                and _at(f, "ip.version", 0) == "6":
            # a BSD loopback header saying IPv4 on an IPv6 packet (Wireshark's IPv4 dissector
            # hands it on by its version): malformed, as the builtin decoder asks the version
            # its family names
            self.malformed += 1
            return False
        if "ipv6" in protos and f.get("ip.version"):
            protos = _without_version_handoffs(protos, f)
        self._ts = ts_ns
        starts = _subframes(protos, f)
        rows = []
        counts = self.non_ip, self.malformed
        for k, start in enumerate(starts):
            stop = starts[k + 1] if k + 1 < len(starts) else len(protos)
            try:
                row = self._row(protos[:stop], f, start, k if len(starts) > 1 else -1)
            except (ValueError, IndexError, KeyError):
                self.malformed += 1
                continue
            if row is not None:
                rows.append(row)
        if len(starts) > 1:         # an A-MSDU: a frame counted once, as IP when a row came
            self.non_ip, self.malformed = counts
            if not rows:
                self.non_ip += 1
        if not rows:
            return False
        if frame is None:
            frame = _int(_at(f, "frame.number", 0), 0) - 1
        for row in rows:
            if row["_tunnel"]:
                self.tunnels[row["_tunnel"]] = self.tunnels.get(row["_tunnel"], 0) + 1
            row["frame"] = frame
            row["ts_ns"] = ts_ns
            if row.get("_bad_sum"):
                self._bad_sum_rows.append(len(self.rows["frame"]))
            for k in _COLS:
                self.rows[k].append(row[k])
        return True

    def packets(self, stats: ReadStats | None = None) -> Packets:
        """The rows added so far as :class:`Packets` (``buf``: the collected payload bytes,
        then one block of zeros that the rows whose bytes are not dissected point to)."""
        cols = {k: np.asarray(self.rows[k], dtype=PACKET_COLUMNS[k]) for k in _COLS}
        if self.bad_reset_sum:          # (resets whose checksum is wrong: no rows)
            keep = np.ones(len(cols["frame"]), bool)
            keep[self._bad_sum_rows] = False
            cols = {k: v[keep] for k, v in cols.items()}
        buf = bytes(self.buf)
        zeros = cols["pl_off"] == _ZEROS
        if zeros.any():
            cols["pl_off"][zeros] = len(buf)
            buf += bytes(int(cols["pl_cap"][zeros].max()))
        st = stats or ReadStats()
        st.ip_packets = len(cols["frame"])
        st.non_ip += self.non_ip
        st.sealed += self.vj_tcp + self.ppp_sealed + self.protected + self.macsec_encrypted
        st.malformed += self.malformed
        st.cut_frames += self.cut.cut_frames
        st.fcs_short += self.cut.fcs_short
        st.empty_records += self.cut.empty_records
        st.cut_caplen = max(st.cut_caplen, self.cut.cut_caplen)
        if self.latest_ns is not None:
            st.saw_frame(self.latest_ns)
        if self.earliest_ns is not None:
            st.saw_frame(self.earliest_ns)
        return Packets(buf, cols, st)

    # ------------------------------------------------------------------------------------
    @staticmethod
    def _first_fragment(row: dict, data: bytes, proto: int, ip_pl: int, v6: bool) -> None:
        got = _first_fragment_fields(data, proto, ip_pl, v6)
        got.pop("_pl", None)    # (never delivered: no payload, as the builtin decoder)
        row.update(got)

    def _unseen(self, row: dict, plen: int, missing: int, head: bytes = b"") -> None:
        """Payload of ``plen`` bytes (by the headers) whose bytes the dissection does not give
        (an ICMP body, ESP, IGMP…): ``pl_cap`` = the bytes of it the frame holds (``plen`` less
        the datagram's ``missing`` bytes; at least ``len(head)``), as the builtin decoder counts
        them; the bytes kept are ``head`` (an ICMP error's rebuilt quote) then zeros (nothing
        reads them: only TCP and UDP payloads and ICMP error quotes are inspected)."""
        cap = max(min(plen - missing, plen), len(head), 0)
        if cap <= 0:
            return
        if head:
            row["pl_off"], row["pl_cap"] = self._payload(head + bytes(cap - len(head)))
        else:
            row["pl_off"], row["pl_cap"] = _ZEROS, cap

    def _loop_unread(self, protos: list[str], f: Mapping[str, Sequence[str]]) -> None:
        """Count a BSD loopback frame (``null``) in which Wireshark found no IP packet as the
        builtin decoder counts it (``_slowpath.SlowDecoder`` for link types 0 and 108): a family
        it reads as IP that Wireshark does not (:attr:`loop_unread`), or an IPv6 family whose
        packet Wireshark's IPv6 dissector refused (another version: malformed, moved from
        ``non_ip``); other families stay not IP."""
        from ..capture._slowpath import AF_INET6
        fam = _int(_at(f, "null.family", 0), -1)
        if fam < 0:
            return
        v = fam if fam < 0x10000 else int.from_bytes((fam & 0xFFFFFFFF).to_bytes(4, "big"), "little")
        if v != 2 and v not in AF_INET6:
            return
        if fam != v or v in (10, 23):
            self.loop_unread += 1
            key = -v if fam != v else v
            self.loop_families[key] = self.loop_families.get(key, 0) + 1
        elif protos == ["null", "data"]:
            self.non_ip -= 1
            self.malformed += 1

    @property
    def other_malformed(self) -> int:
        """Frames skipped as malformed that no line of their own tells (the builtin decoder's
        "too short or inconsistent to decode" line)."""
        return (self.malformed - self.bad_v4_options - self.damaged_marked - self.fcs_mismatch
                - self.mpls_misread - self.v4_as_v6)

    def _fragment_copy(self, protos: list[str], f: Mapping[str, Sequence[str]], ip_idx: int,
                       start: int, sub: int) -> bool:
        """Hand the IP fragment of the layer at ``protos[ip_idx]`` (if it is one: see
        :func:`_fragment_part`) to :attr:`frag`, keyed as the builtin decoder keys it (IPv4:
        addresses, protocol, id and VLAN; IPv6: addresses, id and VLAN); True when it is an
        exact copy (same place, same bytes) of a fragment of the datagram held, or of one
        completed at most :data:`~kscc_traffic.capture._ipfrag.RECENT_NS` before (counted in
        ``frag.duplicates``). Overlaps are counted in ``frag.overlapping``, the first copy kept,
        as Wireshark reassembles them (IPv6 too: the builtin decoder drops such a datagram)."""
        part = _fragment_part(protos, f, ip_idx)
        if part is None:
            return False
        key, off, more, length, data = part
        vlan = _link_facts(protos, f, ip_idx, start, sub)[0]
        before = self.frag.duplicates
        self.frag.add((*key, vlan), self._ts, off, more, length, data, None, True if off == 0 else None)
        self.frag.flushed.clear()       # (the rows are Wireshark's: nothing to hand back)
        return self.frag.duplicates > before

    def _payload(self, data: bytes) -> tuple[int, int]:
        if not data:
            return -1, 0
        off = len(self.buf)
        self.buf += data
        return off, len(data)

    def _tzsp_read(self, protos: list[str], f: Mapping[str, Sequence[str]], t: int, ip_idx: int) -> bool:
        """Whether the ``tzsp`` layer at ``t`` (after a ``udp`` layer) is TZSP as the builtin
        decoder reads it (``_slowpath.SlowDecoder._tzsp``): version 1, type 0 or 1, encapsulation
        1 (Ethernet) or 7 (raw IP), and, for a datagram from port 37008 to another port, the IP
        packet inside captured whole and within the datagram. A packet to 37008 of another
        encapsulation is counted in :attr:`tzsp_unread`."""
        k = protos[:t].count("tzsp")
        u = protos[:t].count("udp") - 1
        if _int(_at(f, "tzsp.version", k)) != 1 or not 0 <= _int(_at(f, "tzsp.type", k)) <= 1:
            return False
        encap = _int(_at(f, "tzsp.encap", k))
        to_port = _int(_at(f, "udp.dstport", u)) == TZSP_PORT
        if encap not in (1, 7):
            if to_port:
                self.tzsp_unread[encap] = self.tzsp_unread.get(encap, 0) + 1
            return False
        if to_port:
            return True
        # (the header: 4 bytes, the tags' bytes, a length byte and the value of each tag but
        # the padding and the end)
        lens = [_int(x, 0) for x in f.get("tzsp.option_length", ())]
        room = _int(_at(f, "udp.length", u), 0) - 8 - 4 - len(f.get("tzsp.option_tag", ())) - len(lens) - sum(lens)
        j = t + 1
        if encap == 1:
            if j >= len(protos) or protos[j] != "eth":
                return False
            room -= 14
            j += 1
            while j < len(protos) and protos[j] in ("ethertype", "vlan", "ieee8021ad"):
                room -= 4 * (protos[j] != "ethertype")
                j += 1
        return j == ip_idx and j < len(protos) and protos[j] in _IP and _ip_fits(protos, f, j, room)

    @property
    def bad_reset_sum(self) -> int:
        """TCP resets skipped for a wrong checksum (the builtin decoder's
        ``capture.decode.DecodeCounters.bad_reset_sum``): none when the capture's checksums are
        not taken as its packets' (:attr:`sums`)."""
        return len(self._bad_sum_rows) if self.sums.trusted else 0

    @staticmethod
    def _sum_state(f: Mapping[str, Sequence[str]], k: int, row: dict, hdr_len: int, plen: int,
                   payload: bytes) -> int | None:
        """:func:`kscc_traffic.capture.decode.tcp_checksum_state` of the TCP segment of ``row``
        (the ``k``-th TCP layer of frame ``f``, whole in it): its segment rebuilt from the fields
        (:func:`_segment_of`); None when it cannot be."""
        from ..capture.decode import address_bytes, tcp_checksum_state
        seg = _segment_of(f, k, row, hdr_len, plen, payload)
        if seg is None:
            return None
        v = row["ipver"]
        return tcp_checksum_state(seg, address_bytes(v, row["src_hi"], row["src_lo"]),
                                  address_bytes(v, row["dst_hi"], row["dst_lo"]))

    def _row(self, protos: list[str], f: Mapping[str, Sequence[str]], start: int = 0,
             sub: int = -1) -> dict | None:
        """The row of the packet in ``protos[start:]`` (``start`` > 0: A-MSDU subframe ``sub``,
        see :func:`_subframes`; the layers before ``start`` only count occurrences), or None."""
        cut = next((i for i in range(start, len(protos)) if protos[i] in _ICMP), len(protos))
        ip_idx = max((i for i in range(start, cut) if protos[i] in _IP), default=-1)
        if ip_idx > 0 and protos[ip_idx - 1] == "teredo" and not _teredo_fits(protos, f, ip_idx):
            # Wireshark decodes any IPv6-looking payload on UDP port 3544 as Teredo; the builtin
            # decoder asks the IPv6 packet to fill the datagram exactly: else it stays UDP
            protos = protos[:ip_idx - 1]
            cut = min(cut, len(protos))
            ip_idx = max((i for i in range(start, cut) if protos[i] in _IP), default=-1)
        u = ip_idx - 2
        if u > 0 and protos[u] == "udp" and protos[u + 1] in ("lisp-data", "mpls") \
                and not _udp_ip_fits(protos, f, u, ip_idx):
            # Wireshark reads any IP-looking payload on UDP port 4341 / 6635 as LISP / MPLS; the
            # builtin decoder asks the IP packet's header to be captured and its datagram to fit
            # the UDP one (_slowpath.SlowDecoder._ip_fits): else it stays UDP
            protos = protos[:u + 1]
            cut = min(cut, len(protos))
            ip_idx = max((i for i in range(start, cut) if protos[i] in _IP), default=-1)
        u = next((i for i in range(start, ip_idx) if protos[i] == "udp" and protos[i + 1] == "gre"), -1)
        if u >= 0 and not _gre_udp_fits(protos, f, u, ip_idx):
            # Wireshark reads any datagram on UDP port 4754 as GRE; the builtin decoder asks
            # for a GRE header of version 0 carrying an IP packet that fits
            # (_slowpath.SlowDecoder._gre_udp): else it stays UDP
            protos = protos[:u + 1]
            cut = min(cut, len(protos))
            ip_idx = max((i for i in range(start, cut) if protos[i] in _IP), default=-1)
        g = next((i for i in range(start + 1, cut) if protos[i] == "geneve" and protos[i - 1] == "udp"), -1)
        if g > 0 and not _geneve_fits(protos, f, g):
            # Wireshark reads any datagram to (or from) UDP port 6081 as Geneve; the builtin
            # decoder asks its header to be one (_slowpath.SlowDecoder._geneve: reserved bits
            # zero, a protocol type it carries, options within the datagram): else it stays
            # UDP (a KSN answer from a distribution point to a client port 6081 was lost)
            protos = protos[:g]
            cut = min(cut, len(protos))
            ip_idx = max((i for i in range(start, cut) if protos[i] in _IP), default=-1)
        v = max((i for i in range(start, ip_idx) if protos[i] == "vxlan"), default=-1)
        if v > 0 and not _vxlan_fits(protos, f, v):
            # a datagram to port 8472 (read as VXLAN by DECODE_AS) that is not plainly VXLAN
            # carrying IP, as the builtin decoder asks: it stays UDP
            protos = protos[:v]
            cut = min(cut, len(protos))
            ip_idx = max((i for i in range(start, cut) if protos[i] in _IP), default=-1)
        t = next((i for i in range(start + 1, len(protos)) if protos[i] == "tzsp" and protos[i - 1] == "udp"),
                 -1) if "tzsp" in protos else -1
        if t > 0 and not self._tzsp_read(protos, f, t, ip_idx):
            # TZSP the builtin decoder does not read (_slowpath.SlowDecoder._tzsp): another
            # version or type, an encapsulation other than Ethernet and raw IP (counted), or,
            # from port 37008 to another, no IP packet that fits: the datagram stays UDP
            protos = protos[:t]
            cut = min(cut, len(protos))
            ip_idx = max((i for i in range(start, cut) if protos[i] in _IP), default=-1)
        u = _by_source_port(protos, f, start, ip_idx)
        if u > 0:
            # Geneve or VXLAN-GPE Wireshark read for the datagram's source port only: the
            # builtin decoder looks at the destination port, the datagram stays UDP
            protos = protos[:u + 1]
            cut = min(cut, len(protos))
            ip_idx = max((i for i in range(start, cut) if protos[i] in _IP), default=-1)
        prev = max((i for i in range(start, ip_idx) if protos[i] in _IP), default=-1)
        between = protos[prev + 1:ip_idx]
        if prev >= 0 and ("udp" in between or all(x in _IP_TUNNEL_LAYERS for x in between)):
            occ = protos[:ip_idx].count(protos[ip_idx])
            if not _at(f, protos[ip_idx] + ".src", occ) or not _at(f, protos[ip_idx] + ".dst", occ):
                # a UDP tunnel (VXLAN, Geneve, GTP-U…) or an IP-protocol one (GRE, IP-in-IP,
                # 6in4) whose inner IP header the snaplen cut before its addresses end: the
                # outer datagram is the row, as the builtin decoder keeps it
                # (_slowpath.SlowDecoder._l4) and Wireshark's conversations do
                protos = protos[:protos.index("udp", prev + 1) + 1] if "udp" in between else protos[:ip_idx]
                cut = min(cut, len(protos))
                ip_idx = prev
        if ip_idx >= 0 and _tunnel_without_ip(protos, f, ip_idx, cut):
            # a tunnel whose inner frame is no IP packet (ARP in VXLAN, a PPTP acknowledgement):
            # the builtin decoder drops the outer headers of a tunnelled packet, and with
            # nothing inside to show the frame is not IP
            self.non_ip += 1
            return None
        if ip_idx < 0:
            self.non_ip += 1
            if "mpls" in protos[start:] and protos[-1] == "data":
                # Wireshark 4.0 reads an MPLS payload as an Ethernet pseudowire only when its
                # first nibble is 0 (and then guesses the control word: a destination MAC like
                # 02:00:… reads as one), as IPv4/IPv6 on 4/6, else as bare data: a pseudowire
                # whose inner destination MAC begins with another nibble (b4:96:…) is lost
                # (the builtin decoder reads it: _slowpath.SlowDecoder._pw_not_ip)
                self.mpls_unread += 1
            elif protos[start:start + 1] == ["null"] and start == 0:
                self._loop_unread(protos, f)
            return None
        number = _at(f, "frame.number", 0)
        # a fragment whose datagram is completed in a later frame gives no row of its own
        for name in ("ip.reassembled_in", "ipv6.reassembled.in"):
            if any(v != number for v in f.get(name, ())):
                self._fragment_copy(protos, f, ip_idx, start, sub)    # (counted if a copy)
                return None
        ipn = protos[ip_idx]
        occ = protos[:ip_idx].count(ipn)
        vlan, bcast, sent = _link_facts(protos, f, ip_idx, start, sub)

        # transport layer: after IPv6 extension headers and authentication headers (AH)
        j = ip_idx + 1
        ext_bytes = 0
        frag6 = False
        frag_nxt = -1           # next header of the (non-atomic) IPv6 fragment header
        frag_first = True       # ... and that fragment is the first (offset 0)
        pre_frag = -1           # extension header bytes before that fragment header
        ah_bytes = 0            # AH after a fragment header: inside the reassembled payload
        ah_next = -1            # next header of the last AH walked
        while j < len(protos) and (protos[j].startswith("ipv6.") or protos[j] == "ah"
                                   or (protos[j] == "shim6" and j + 1 < len(protos))):
            name = protos[j]
            if name == "shim6":
                # (a Shim6 payload extension header, 8 bytes, with the upper layer after it; a
                # control message ends the chain: protocol 140, as _slowpath.SHIM6 says)
                ext_bytes += 8
            elif name == "ah":
                k = protos[:j].count("ah")
                n = (_int(_at(f, "ah.length", k), 0) + 2) * 4
                ah_next = _int(_at(f, "ah.next_header", k), -1)
                if "ipv6.fraghdr" in protos[ip_idx:j]:
                    ah_bytes += n
                else:
                    ext_bytes += n
            elif name in _V6_EXT:
                k = protos[:j].count(name)
                lf = _V6_EXT[name]
                if lf is None:
                    ext_bytes += 8
                    off6 = _int(_at(f, "ipv6.fraghdr.offset", k), 0)
                    if off6 != 0 or _at(f, "ipv6.fraghdr.more", k) in ("1", "True"):
                        frag6 = True
                        pre_frag = ext_bytes - 8
                        frag_nxt = _int(_at(f, "ipv6.fraghdr.nxt", k), -1)
                        frag_first = off6 == 0
                else:
                    ext_bytes += _int(_at(f, lf, k), 0)
            j += 1
        t = protos[j] if j < len(protos) else ""

        if ipn == "ip":
            src, dst = _at(f, "ip.src", occ), _at(f, "ip.dst", occ)
            hdr = _int(_at(f, "ip.hdr_len", occ), 20)
            if hdr < 20 and protos[ip_idx - 1] == "mpls":
                # Wireshark takes an MPLS payload whose first nibble is 4 for IPv4: an Ethernet
                # pseudowire without control word whose destination MAC begins with 4 reads as
                # an IPv4 header of a bogus length (the builtin decoder tells them apart:
                # _slowpath.SlowDecoder._pw_not_ip); counted, with its own warning line
                self.malformed += 1
                self.mpls_misread += 1
                return None
            total = _int(_at(f, "ip.len", occ), 0)
            proto = _int(_at(f, "ip.proto", occ), 0)
            ip_id = _int(_at(f, "ip.id", occ), 0)
            ttl = _int(_at(f, "ip.ttl", occ), -1)
            reas = f.get("ip.reassembled.length")
            fragment = (_at(f, "ip.flags.mf", occ) in ("1", "True")
                        or _int(_at(f, "ip.frag_offset", occ), 0) != 0)
            if reas and fragment:
                # (this layer's datagram was reassembled: the last reassembly dissected; an
                # outer datagram reassembled around a whole inner one leaves the inner as it is)
                total = hdr + _int(reas[-1], 0)
                fragment = False
            ip_pl = max(total - hdr - ext_bytes, 0)
            if ah_next >= 0:
                proto = ah_next
            ipver = 4
        else:
            src, dst = _at(f, "ipv6.src", occ), _at(f, "ipv6.dst", occ)
            dst = _routing_final(protos, f, ip_idx) or dst
            src = _home_address(protos, f, ip_idx) or src
            plen6 = _int(_at(f, "ipv6.plen", occ), 0)
            if plen6 == 0 and ip_idx + 1 < len(protos) and protos[ip_idx + 1] == "ipv6.hopopts" \
                    and f.get("ipv6.opt.jumbo"):
                # a jumbogram (RFC 2675): the Jumbo Payload option's length (this layer's
                # hop-by-hop header directly after it: the last option dissected)
                plen6 = max(_int(f["ipv6.opt.jumbo"][-1], 0), 0)
            reas = f.get("ipv6.reassembled.length")
            ip_id = -1
            ttl = _int(_at(f, "ipv6.hlim", occ), -1)
            ipver = 6
            fragment = frag6
            if reas and frag6:
                # (the builtin decoder's: the headers before the fragment header and the
                # reassembled payload, whose extension headers and AH come off ip_pl; only
                # when this layer's datagram is the one reassembled, as for IPv4)
                before = pre_frag if pre_frag >= 0 else ext_bytes
                total = 40 + before + _int(reas[-1], 0)
                after = ext_bytes - before - (8 if pre_frag >= 0 else 0)
                ip_pl = max(_int(reas[-1], 0) - after - ah_bytes, 0)
                fragment = False
            else:
                total = 40 + plen6
                ip_pl = max(plen6 - ext_bytes - ah_bytes, 0)
            proto = _PROTO_NUMBERS.get(t, -1)
            if fragment:
                # the fragment header's next header, as the builtin decoder (not 44)
                proto = frag_nxt if frag_nxt >= 0 else 44
            elif proto < 0:
                proto = ah_next if ah_next >= 0 else _int(_at(f, "ipv6.nxt", occ), 0)
        if not src or not dst:
            self.malformed += 1
            return None
        if (fragment or reas) and self._fragment_copy(protos, f, ip_idx, start, sub):
            # an exact copy of a fragment already seen, or of one of a datagram completed
            # lately (a SPAN port copying each frame: Wireshark reassembles the copies of a
            # whole datagram again, and leaves a copy of the completing fragment that comes
            # after it a fragment of its own): dropped, as the builtin decoder drops it
            return None
        sh, sl = _addr(src)
        dh, dl = _addr(dst)
        row = {"_tunnel": _tunnel_kind(protos, f, start, ip_idx),
               "vlan": vlan, "ipver": ipver, "src_hi": sh, "src_lo": sl, "dst_hi": dh,
               "dst_lo": dl, "proto": proto, "sport": -1, "dport": -1, "icmp_type": -1,
               "icmp_code": -1, "tcp_flags": 0, "seq": 0, "ack": 0, "tcp_win": -1, "ip_id": ip_id,
               "ip_len": total, "ttl": ttl, "payload_len": ip_pl, "pl_off": -1, "pl_cap": 0,
               "l2_bcast": bcast, "l2_out": sent, "l4_sum": -1, "unreassembled": fragment}
        # bytes of the datagram its IP length gives that the frame does not hold: what the IP
        # length says beyond the frame ("exceeds packet/framing length": a tool that cut the
        # frame without saying so, or a bad length), plus what the snaplen cut off the frame's
        # end (the datagram taken to end the frame); none in a reassembled datagram
        beyond = 0 if reas else _beyond_frame(f, ipn, total if ipn == "ip" else plen6)
        missing = 0 if reas else beyond + max(
            _int(_at(f, "frame.len", 0), 0) - _int(_at(f, "frame.cap_len", 0), 0), 0)
        data = _hex(_at(f, "data.data", protos[:j].count("data"))) if t == "data" else b""
        if fragment:
            self.incomplete += 1
            first = frag_first if ipn == "ipv6" else not _int(_at(f, "ip.frag_offset", occ), 0)
            # (a first fragment is shown as data, its header read here; unless Wireshark
            # dissected its transport itself, as it does when the frame holds less than the IP
            # length says: then read as any packet below)
            # (a fragment of a datagram never completed: no payload, nothing in it was delivered)
            if not (first and t in ("tcp", "udp", *_ICMP)):
                if first and data:
                    self._first_fragment(row, data, proto, ip_pl, ipn == "ipv6")
                return row
        if t == "tcp" and proto == 6:
            k = protos[:j].count("tcp")
            row["sport"] = _int(_at(f, "tcp.srcport", k))
            row["dport"] = _int(_at(f, "tcp.dstport", k))
            hdr_len = _int(_at(f, "tcp.hdr_len", k), -1)
            if 0 <= hdr_len < 20:
                # a data offset below 5 ("Bogus TCP header length"): a malformed packet, as the
                # builtin decoder and Zeek (bad_TCP_header_len) skip it, not a cut header
                raise ValueError("TCP data offset below 5")
            if hdr_len > ip_pl and not fragment:
                # a data offset past the IP payload the IP header gives (Wireshark: a malformed
                # packet, left out of its conversations; Zeek: truncated_header): malformed, as
                # the builtin decoder skips it (a first fragment holds part of the datagram only)
                raise ValueError("TCP data offset past the IP payload")
            if not _at(f, "tcp.flags", k):
                # the snaplen cut the fixed header ("Packet size limited during capture": ports,
                # no flags nor tcp.len): length unknown, as the builtin decoder's TCP_HDR_CUT
                row["payload_len"] = -1
                return row
            row["tcp_flags"] = _int(_at(f, "tcp.flags", k), 0) & 0x1FF
            row["seq"] = _int(_at(f, "tcp.seq", k), 0)
            row["ack"] = _int(_at(f, "tcp.ack", k), 0)
            row["tcp_win"] = _int(_at(f, "tcp.window_size_value", k), -1)
            row["l4_sum"] = _int(_at(f, "tcp.checksum", k), -1)
            plen = _int(_at(f, "tcp.len", k), 0)
            # (Wireshark's tcp.len stops at the frame's end when the IP length says more: the
            # builtin decoder's, from the IP length, counts the bytes beyond it too)
            row["payload_len"] = max(plen, 0) + beyond
            if plen > 0:
                pls = f.get("tcp.payload") or ()
                data = _hex(pls[min(k, len(pls) - 1)]) if pls else b""
                if not data and row["tcp_flags"] & 0x04:
                    # a RST's payload (RFC 1122 §4.2.2.12, "Connection reset by policy"): Wireshark
                    # shows it as tcp.reset_cause text, no tcp.payload; its bytes are in the frame
                    # (not cut), and nothing reads them (a RST's payload is no data, break-it 23 F1)
                    self._unseen(row, plen, 0)
                else:
                    row["pl_off"], row["pl_cap"] = self._payload(data[:plen])
            if row["l4_sum"] > 0 and not reas and not beyond and (row["tcp_flags"] & 0x04 or not self.sums.decided):
                # (the builtin decoder's capture.decode.bad_reset_checksums: a reset with a wrong
                # checksum, skipped once the capture's checksums are taken as its packets' own)
                state = self._sum_state(f, k, row, hdr_len, plen, data[:plen] if plen > 0 else b"")
                if row["tcp_flags"] & 0x04:
                    row["_bad_sum"] = state == -1
                else:
                    self.sums.add(state)
        elif t == "udp" and proto == 17:
            k = protos[:j].count("udp")
            row["sport"] = _int(_at(f, "udp.srcport", k))
            row["dport"] = _int(_at(f, "udp.dstport", k))
            ulen = _int(_at(f, "udp.length", k), 0)
            plen = ulen - 8 if 8 <= ulen <= ip_pl else ip_pl - 8
            row["payload_len"] = max(plen, 0)
            row["l4_sum"] = _int(_at(f, "udp.checksum", k), -1)
            if plen > 0:
                pls = f.get("udp.payload") or ()
                data = _hex(pls[min(k, len(pls) - 1)]) if pls else b""
                if not data and 0 <= ulen < 8:
                    # a UDP length field below 8 (Wireshark: "Bad length value", nothing after
                    # the header dissected): the datagram's bytes are the IP payload's, held in
                    # the frame as far as it goes, as the builtin decoder counts them; their
                    # content is not in the dissection (zeros kept; no receiver delivers such
                    # a datagram), and they are not taken for bytes the capture cut
                    self._unseen(row, plen, missing)
                else:
                    row["pl_off"], row["pl_cap"] = self._payload(data[:plen])
        elif t in _ICMP and proto in (1, 58):
            k = protos[:j].count(t)
            it = _int(_at(f, f"{t}.type", k), -1)
            ic = _int(_at(f, f"{t}.code", k), -1)
            row["icmp_type"], row["icmp_code"] = it, ic
            row["l4_sum"] = _int(_at(f, f"{t}.checksum", k), -1)
            plen = max(ip_pl - 8, 0)
            row["payload_len"] = plen
            quote = b""
            if it in _QUOTING[t]:
                quote = _quoted(protos, f, j)[:plen]
            elif t == "icmpv6" and it in (131, 143):
                quote = _mld_report(f, it)[:plen]
            self._unseen(row, plen, missing, quote)
        elif data:                  # a protocol Wireshark shows as data: its bytes
            row["pl_off"], row["pl_cap"] = self._payload(data[:ip_pl])
        elif t == "igmp" and proto == 2:
            self._unseen(row, ip_pl, missing, _igmp_report(f)[:ip_pl])
        else:
            self._unseen(row, ip_pl, missing)
        if fragment:            # (a first fragment Wireshark dissected: no payload all the same)
            row["pl_off"], row["pl_cap"] = -1, 0
        return row


def _segment_of(f: Mapping[str, Sequence[str]], k: int, row: dict, hdr_len: int, plen: int,
                payload: bytes) -> bytes | None:
    """The bytes of the ``k``-th TCP segment of frame ``f`` (tshark's fields), rebuilt from its
    fields (``row``: its ports, numbers, window and checksum as read; ``tcp.flags`` with the
    reserved bits, ``tcp.urgent_pointer``, ``tcp.options``), ``hdr_len`` bytes of header and the
    ``plen`` bytes of ``payload``; None when a part is missing (a field not shown, the options or
    the payload not all there)."""
    flags = _at(f, "tcp.flags", k)
    urg = _at(f, "tcp.urgent_pointer", k)
    if not flags or not urg or hdr_len < 20 or len(payload) != plen:
        return None
    opts = _hex(_at(f, "tcp.options", k)) if hdr_len > 20 else b""
    if len(opts) != hdr_len - 20:
        return None
    word = ((hdr_len // 4) << 12) | (_int(flags, 0) & 0xFFF)
    return b"".join((row["sport"].to_bytes(2, "big"), row["dport"].to_bytes(2, "big"),
                     (row["seq"] & 0xFFFFFFFF).to_bytes(4, "big"), (row["ack"] & 0xFFFFFFFF).to_bytes(4, "big"),
                     word.to_bytes(2, "big"), (row["tcp_win"] & 0xFFFF).to_bytes(2, "big"),
                     row["l4_sum"].to_bytes(2, "big"), (_int(urg, 0) & 0xFFFF).to_bytes(2, "big"), opts, payload))


def loop_families_text(fams: Mapping[int, int]) -> str:
    """The BSD loopback address families of :attr:`PacketBuilder.loop_families` in words, e.g.
    ``23: Windows' AF_INET6, which Wireshark reads as IPX``."""
    words = {10: "10: Linux's AF_INET6", 23: "23: Windows' AF_INET6, which Wireshark reads as IPX"}
    out = []
    for v in sorted(fams, key=lambda x: (x < 0, abs(x))):
        out.append(f"{-v} written little-endian under LINKTYPE_LOOP, which is big-endian" if v < 0
                   else words.get(v, str(v)))
    return "; ".join(out)


def mpls_unread_note(k: int) -> str:
    """The warning line (without the capture's name) about ``k`` MPLS frames whose payload
    tshark left as bare data (``_Builder.mpls_unread``)."""
    return (f"{k} MPLS frame{'s' if k != 1 else ''} whose payload tshark could not read past the "
            "label stack (most likely an Ethernet pseudowire: Wireshark reads one only when the "
            "inner destination MAC begins with 0, and may guess its control word wrong) "
            f"{'are' if k != 1 else 'is'} missing from the flows of this engine: the builtin "
            "engine (the default, without --engine tshark) reads Ethernet pseudowires with or "
            "without control word")


def _routing_final(protos: list[str], f: Mapping[str, Sequence[str]], ip_idx: int) -> str:
    """The final destination (address text) that a routing header of the IPv6 layer at
    ``ip_idx`` names while segments are left, as the builtin decoder keys the flow
    (``_slowpath.routing_final``: type 0, the last address of its list; type 2, Mobile IPv6,
    its home address when one segment is left; type 4, an SRv6 Segment Routing Header,
    ``Segment List[0]``, its first address); '' when there is none (the header's ``ipv6.dst``
    is the final destination). Wireshark 4.0 has no field for it: it is read from
    ``ipv6.routing.src.addr`` / ``ipv6.routing.mipv6.home_address`` /
    ``ipv6.routing.srh.addr``, whose occurrences are those of every routing header of the frame
    one after the other (counted with ``ipv6.routing.len`` / one per type 2 header /
    ``ipv6.routing.srh.last_entry``)."""
    j = ip_idx + 1
    while j < len(protos) and protos[j].startswith("ipv6."):
        if protos[j] == "ipv6.routing":
            k = protos[:j].count("ipv6.routing")
            t = _int(_at(f, "ipv6.routing.type", k))
            segleft = _int(_at(f, "ipv6.routing.segleft", k), 0)
            if t not in (0, 2, 4) or segleft <= 0:
                return ""
            # the addresses of the routing headers of this type before this one
            types = [_int(_at(f, "ipv6.routing.type", i)) for i in range(k)]
            if t == 0:
                before = sum(_int(_at(f, "ipv6.routing.len", i), 0) >> 1 for i in range(k) if types[i] == 0)
                n = _int(_at(f, "ipv6.routing.len", k), 0) >> 1
                return _at(f, "ipv6.routing.src.addr", before + n - 1) if n > 0 else ""
            if t == 2:
                if segleft != 1 or _int(_at(f, "ipv6.routing.len", k), 0) != 2:
                    return ""
                return _at(f, "ipv6.routing.mipv6.home_address", types.count(2))
            srh = [i for i in range(k) if types[i] == 4]
            before = sum(_int(_at(f, "ipv6.routing.srh.last_entry", m), -1) + 1 for m in range(len(srh)))
            return _at(f, "ipv6.routing.srh.addr", before)
        j += 1
    return ""


def _home_address(protos: list[str], f: Mapping[str, Sequence[str]], ip_idx: int) -> str:
    """The home address (text) of a Mobile IPv6 Home Address option (RFC 6275 §6.3) in a
    Destination Options header of the IPv6 layer at ``ip_idx``: the source its transport layer
    sees, as the builtin decoder keys the flow (``_slowpath.home_address``); '' when there is
    none. Read from ``ipv6.opt.mipv6.home_address`` when the frame has one such option per
    Destination Options header (its occurrence then that header's), or a single one and a
    single Destination Options header."""
    hao = f.get("ipv6.opt.mipv6.home_address") or ()
    if not hao:
        return ""
    j = ip_idx + 1
    while j < len(protos) and protos[j].startswith("ipv6."):
        if protos[j] == "ipv6.dstopts":
            if len(hao) == protos.count("ipv6.dstopts"):
                return _at(f, "ipv6.opt.mipv6.home_address", protos[:j].count("ipv6.dstopts"))
            return ""
        j += 1
    return ""


def _teredo_fits(protos: list[str], f: Mapping[str, Sequence[str]], ip_idx: int) -> bool:
    """The IPv6 layer at ``ip_idx``, right after a ``teredo`` layer, fills the UDP datagram
    exactly after the Teredo authentication header and origin indication (the builtin decoder's
    test, ``_slowpath.SlowDecoder._teredo``). Nested Teredo layers are taken as they are."""
    if protos.count("teredo") != 1:
        return True
    ulen = _int(_at(f, "udp.length", protos[:ip_idx].count("udp") - 1), -1)
    plen = _int(_at(f, "ipv6.plen", protos[:ip_idx].count("ipv6")), -1)
    hdr = 0
    if f.get("teredo.auth.idlen"):
        hdr += 13 + _int(_at(f, "teredo.auth.idlen", 0), 0) + _int(_at(f, "teredo.auth.aulen", 0), 0)
    if f.get("teredo.orig.port"):
        hdr += 8
    return ulen - 8 - hdr == 40 + plen


def _tunnel_without_ip(protos: list[str], f: Mapping[str, Sequence[str]], ip_idx: int,
                       cut: int) -> bool:
    """The layers after the packet's IP layer at ``ip_idx`` (up to ``cut``, an ICMP layer or
    the end; no IP layer among them) are a tunnel the builtin decoder reads whatever it
    carries, that carries no IP packet: GRE with a protocol type other than 0 (0: a keepalive,
    the GRE packet is the row), VXLAN to port 4789 with the I flag, Geneve to 6081, VXLAN-GPE
    to 4790 carrying Ethernet or MPLS. The builtin decoder counts such a frame as not IP.
    False for a frame the snaplen cut, or whose IP length says more than the frame holds (the
    builtin decoder then keeps the outer datagram)."""
    after = protos[ip_idx + 1:cut]
    if not after or _int(_at(f, "frame.cap_len", 0)) < _int(_at(f, "frame.len", 0)) \
            or any(f.get(name) for name in _BEYOND_FIELD.values()):
        return False
    if after[0] == "gre":
        return _int(_at(f, "gre.proto", protos[:ip_idx].count("gre")), 0) != 0
    if after[0] != "udp" or len(after) < 2:
        return False
    k = protos[:ip_idx].count("udp")
    dport = _int(_at(f, "udp.dstport", k))
    if after[1] == "vxlan" and dport == 4789:
        # (a payload shorter than the 8-byte VXLAN header, which Wireshark reads all the same, is
        # no VXLAN to the builtin decoder: the UDP datagram is the row, _slowpath's _vxlan)
        return bool(_int(_at(f, "vxlan.flags", protos[:ip_idx].count("vxlan")), 0) & 0x0800) \
            and len(_hex(_at(f, "udp.payload", k))) >= 8
    return (after[1] == "geneve" and dport == 6081) or (after[1] in ("eth", "mpls") and dport == 4790)


def _by_source_port(protos: list[str], f: Mapping[str, Sequence[str]], start: int,
                    ip_idx: int) -> int:
    """The index of the ``udp`` layer before the packet's IP layer at ``ip_idx`` when Wireshark
    read the tunnel after it for its source port only (a Geneve layer from port 6081, a
    VXLAN-GPE payload, shown right after ``udp``, from 4790, to another port), else -1."""
    prev = max((i for i in range(start, ip_idx) if protos[i] in _IP), default=-1)
    if prev < 0 or "udp" not in protos[prev + 1:ip_idx]:
        return -1
    u = protos.index("udp", prev + 1)
    k = protos[:u].count("udp")
    sport, dport = _int(_at(f, "udp.srcport", k)), _int(_at(f, "udp.dstport", k))
    nxt = protos[u + 1]
    if nxt == "geneve" and sport == 6081 and dport != 6081:
        return u
    if nxt in ("eth", "ip", "ipv6", "mpls") and sport == 4790 and dport != 4790:
        return u
    return -1


def _udp_ip_fits(protos: list[str], f: Mapping[str, Sequence[str]], u: int, ip_idx: int) -> bool:
    """The IP layer at ``ip_idx``, after the ``udp`` layer at ``u`` and one ``lisp-data`` (8
    bytes) or ``mpls`` layer (its labels, 4 bytes each), is what the builtin decoder takes for
    a LISP or MPLS-in-UDP packet (``_slowpath.SlowDecoder._ip_fits``): IPv4 with a header length
    of at least 20 and a total length of at least that, IPv6 with a payload length not 0, the
    datagram within the UDP datagram. An ``mpls`` layer not on port 6635 (VXLAN-GPE's next
    protocol 5) is taken as Wireshark reads it."""
    k = protos[:u].count("udp")
    if protos[u + 1] == "mpls":
        if _MPLS_UDP_PORT not in (_int(_at(f, "udp.dstport", k)), _int(_at(f, "udp.srcport", k))):
            return True
        if protos[:u].count("mpls"):
            return True                 # (MPLS in UDP under another MPLS stack: as Wireshark reads it)
        labels = next((i + 1 for i, b in enumerate(f.get("mpls.bottom", ())) if b in ("1", "True")), 0)
        hdr = 4 * labels
    else:
        hdr = 8
    return _ip_fits(protos, f, ip_idx, _int(_at(f, "udp.length", k), 0) - 8 - hdr)


def _gre_udp_fits(protos: list[str], f: Mapping[str, Sequence[str]], u: int, ip_idx: int) -> bool:
    """The ``gre`` layer after the ``udp`` layer at ``u`` is GRE in UDP as the builtin decoder
    reads it (``_slowpath.SlowDecoder._gre_udp``): version 0 without routing, recursion or
    reserved bits, and an IP layer at ``ip_idx`` right after it (protocol type IPv4 or IPv6),
    after its MPLS labels (0x8847/0x8848) or after an Ethernet header (0x6558), captured whole
    and fitting the UDP datagram. GRE Wireshark read on another UDP port is taken as it reads it."""
    k = protos[:u].count("udp")
    if GRE_UDP_PORT not in (_int(_at(f, "udp.dstport", k)), _int(_at(f, "udp.srcport", k))):
        return True
    if ip_idx <= u + 1:
        return False
    kg = protos[:u + 1].count("gre")
    fv = _int(_at(f, "gre.flags_and_version", kg), -1)
    if fv < 0 or fv & 0x4FFF:
        return False
    hdr = 4 + 4 * ((fv >> 15) + ((fv >> 13) & 1) + ((fv >> 12) & 1))
    ptype = _int(_at(f, "gre.proto", kg), -1)
    inner = protos[u + 2:ip_idx]
    if ptype in (0x8847, 0x8848):
        if protos[:u].count("mpls") or set(inner) != {"mpls"}:
            return False
        hdr += 4 * next((i + 1 for i, b in enumerate(f.get("mpls.bottom", ())) if b in ("1", "True")), 0)
    elif ptype == 0x6558:
        if inner != ["eth", "ethertype"]:
            return False
        hdr += 14
    elif ptype not in (0x0800, 0x86DD) or inner:
        return False
    return _ip_fits(protos, f, ip_idx, _int(_at(f, "udp.length", k), 0) - 8 - hdr)


def _ip_fits(protos: list[str], f: Mapping[str, Sequence[str]], j: int, room: int) -> bool:
    """The IP layer at ``j`` (``ip`` or ``ipv6``) as the builtin decoder takes a tunnelled
    datagram: IPv4 with a header length of at least 20 bytes and a total length of at least
    that, IPv6 with a payload length not 0, the datagram within ``room`` bytes."""
    occ = protos[:j].count(protos[j])
    if protos[j] == "ip":
        ihl, tot = _int(_at(f, "ip.hdr_len", occ), 0), _int(_at(f, "ip.len", occ), 0)
        return 20 <= ihl <= tot <= room
    plen = _int(_at(f, "ipv6.plen", occ), 0)
    return 0 < plen and 40 + plen <= room


def _geneve_fits(protos: list[str], f: Mapping[str, Sequence[str]], g: int) -> bool:
    """Whether the ``geneve`` layer at ``g`` (after a ``udp`` layer) is what the builtin decoder
    takes for Geneve: a datagram to port 6081 whose captured payload (``udp.payload``) passes
    :meth:`._slowpath.SlowDecoder.geneve_header`'s checks (version 0, reserved bits zero, a
    protocol type it carries, options within the bytes). A datagram from 6081 to another port
    is left to :func:`_by_source_port` (True here)."""
    k = protos[:g - 1].count("udp")
    if _int(_at(f, "udp.dstport", k)) != GENEVE_PORT:
        return True
    pls = f.get("udp.payload") or ()
    data = _hex(pls[k]) if k < len(pls) else b""
    return SlowDecoder.geneve_header(data, 0, len(data)) > 0


def _vxlan_fits(protos: list[str], f: Mapping[str, Sequence[str]], v: int) -> bool:
    """The ``vxlan`` layer at ``v`` is VXLAN as the builtin decoder reads it. Only a datagram
    to port 8472 (:data:`DECODE_AS`) is checked, as ``_slowpath.SlowDecoder._vxlan_linux``
    does: the flags the I flag alone (``vxlan.flags`` 0x0800) and the reserved bytes zero, or the I
    and G flags (Group Based Policy, 0x88 with only the D and A flags in byte 1), and an
    Ethernet frame (with VLAN tags or not) holding an IPv4 header (header length at least 20,
    total length at least that) or an IPv6 header (payload length not 0) whose datagram fits
    in the UDP datagram. False also for a datagram Wireshark read as VXLAN for its source port
    8472 or 4789 only (the builtin decoder looks at the destination port). Datagrams to 4789 are
    taken as Wireshark reads them."""
    u = protos[:v].count("udp") - 1
    if v < 1 or protos[v - 1] != "udp" or u < 0:
        return True
    sport, dport = _int(_at(f, "udp.srcport", u)), _int(_at(f, "udp.dstport", u))
    if dport == 4789:
        return True
    if dport != _VXLAN_LINUX_PORT:
        # (read by Wireshark for its source port only: the builtin decoder looks at the
        # destination port, for 4789 as for 8472)
        return sport not in (4789, _VXLAN_LINUX_PORT)
    k = protos[:v].count("vxlan")
    # (bytes 2-3 are ``vxlan.gbp`` to Wireshark 4.0 whatever the G flag says; with the G flag,
    # the Group Based Policy extension, byte 1 may hold its D and A flags and bytes 2-3 the policy)
    flags = _int(_at(f, "vxlan.flags", k))
    plain = flags == 0x0800 and _int(_at(f, "vxlan.gbp", k)) == 0
    gbp = flags & 0xFF00 == 0x8800 and not flags & 0xFF & ~0x48
    if not (plain or gbp) or _int(_at(f, "vxlan.reserved8", k)) != 0:
        return False
    j = v + 1
    if j >= len(protos) or protos[j] != "eth":
        return False
    tags = 0
    j += 1
    while j < len(protos) and protos[j] in ("ethertype", "vlan", "ieee8021ad"):
        tags += protos[j] != "ethertype"
        j += 1
    if j >= len(protos) or protos[j] not in _IP:
        return False
    return _ip_fits(protos, f, j, _int(_at(f, "udp.length", u), 0) - 8 - 8 - 14 - 4 * tags)


def _subframes(protos: list[str], f: Mapping[str, Sequence[str]]) -> list[int]:
    """Where each packet of the frame starts in ``protos``: ``[0]``, or for an 802.11 A-MSDU
    (``wlan.qos.amsdupresent``) the index of each subframe's ``llc`` layer (Wireshark lists the
    subframes' layers one after the other: ``wlan:llc:ip:udp:llc:ip:tcp``). A subframe whose
    packet holds an ``llc`` layer of its own (a tunnelled 802.3 frame) would be split there."""
    if _at(f, "wlan.qos.amsdupresent", 0) not in ("1", "True") or "wlan" not in protos:
        return [0]
    w = protos.index("wlan")
    starts = [i for i in range(w + 1, len(protos)) if protos[i] == "llc"]
    return starts or [0]


#: the layers before an IP layer of a link type that records no link-layer destination
#: (:data:`kscc_traffic.capture._slowpath.NO_L2_DST`: raw IP, BSD loopback, NFLOG, PFLOG, ENC,
#: IPNET, PPP, Cisco HDLC, Frame Relay, ATM RFC 1483's LLC/SNAP, MPLS, PPPoE): a frame whose link
#: layer is one of these (or whose first layer is IP: LINKTYPE_IPV4/IPV6) is ``l2_out``
_NO_L2_DST = frozenset(("raw", "null", "loop", "nflog", "pflog", "enc", "ipnet", "ppp", "chdlc", "fr", "llc", "mpls",
                        "pppoes", "pppoe"))


def _link_facts(protos: list[str], f: Mapping[str, Sequence[str]], ip_idx: int, start: int = 0,
                sub: int = -1) -> tuple[int, bool, bool]:
    """(``vlan``, ``l2_bcast``, ``l2_out``) of the link layer that carried the IP layer at ``ip_idx``: the
    last ``eth`` between the IP layer before it (a tunnel's outer packet) and it, with the
    VLAN tags after that ``eth``; without such an ``eth``, the frame's own link layer when no
    IP layer comes before, else none (a tunnel carrying IP directly: 0, False). The builtin
    decoder's rule (``kscc_traffic.capture.decode``). ``start``/``sub``: the packet is A-MSDU
    subframe ``sub`` whose layers start at ``start`` (the layers before are other subframes')."""
    from ..capture._slowpath import vlan_value
    prev_ip = max((i for i in range(start, ip_idx) if protos[i] in _IP), default=-1)
    lo = max(prev_ip + 1, start)
    eth = max((i for i in range(lo, ip_idx) if protos[i] == "eth"), default=-1)
    pbb = _pbb_layers(protos, f)
    tags = []
    pbb_dst = None
    for k in range(eth if eth >= 0 else lo, ip_idx):
        p = protos[k]
        if k in pbb:            # 802.1ah I-TAG: the customer frame's tags and destination
            tags, pbb_dst = [], _at(f, "ieee8021ah.cdst", pbb[k])
            continue
        if p in ("vlan", "ieee8021ad"):
            tags.append(_int(_at(f, f"{p}.id", protos[:k].count(p)), 0))
    bcast = sent = False
    # a cooked record that keeps its device's own link layer (ARPHRD 803 radiotap, 770 Frame Relay:
    # _slowpath.SLL_HATYPES): that layer's destination, not the cooked header's packet type
    kept = len(protos) > 1 and protos[0] in ("sll", "sll2") and protos[1] in ("radiotap", "fr")
    cooked = bool(protos) and protos[0] in ("sll", "sll2") and not kept
    if pbb_dst is not None:
        bcast = pbb_dst.lower() == _BCAST
    elif eth >= 0:
        bcast = _at(f, "eth.dst", protos[:eth].count("eth")).lower() == _BCAST
    elif prev_ip < 0 and protos:
        if cooked:
            bcast = _at(f, "sll.pkttype", 0) == "1"
        elif "wlan" in protos[:ip_idx]:
            # 802.11, after any monitor header (radiotap, PPI, Prism, AVS ``wlancap``…); an
            # A-MSDU subframe's own destination follows the header's (``sub`` >= 0)
            bcast = _at(f, "wlan.da", sub + 1).lower() == _BCAST
    if prev_ip < 0 and cooked:
        # sent by the capturing host (packet type 4 OUTGOING): the cooked header keeps no
        # link-layer destination (whatever it carries: the builtin decoder's ``l2_out``)
        sent = _at(f, "sll.pkttype", 0) == "4"
    elif prev_ip < 0:
        # a link layer that records no destination (raw IP, BSD loopback, NFLOG, PPP…: the
        # builtin decoder's _slowpath.NO_L2_DST), no Ethernet or 802.11 frame in it (an A-MSDU
        # subframe's layers start with its LLC: review s52 #2)
        sent = eth < 0 and pbb_dst is None and "wlan" not in protos[:ip_idx] and \
            (ip_idx == start or protos[start + kept] in _NO_L2_DST)
    else:
        # a tunnel that carries IP directly (as a raw-IP capture of it), not in a frame of its own
        sent = eth < 0 and pbb_dst is None and "wlan" not in protos[prev_ip:ip_idx]
    return vlan_value(tags), bcast, sent


def _pbb_layers(protos: list[str], f: Mapping[str, Sequence[str]]) -> dict[int, int]:
    """The layers of ``protos`` that hold an 802.1ah (PBB) I-TAG, each mapped to its occurrence
    in the ``ieee8021ah.*`` fields. Wireshark shows an I-TAG as an ``ieee8021ah`` layer, or,
    after a B-TAG (0x88A8), inside that ``ieee8021ad`` layer: the ``ieee8021ad`` layers that
    hold one are taken to be the first ones (the B-TAG is the outermost tag). The customer
    frame inside has no ``eth`` layer of its own: its destination is ``ieee8021ah.cdst``."""
    n = len(f.get("ieee8021ah.isid", ()))
    if not n:
        return {}
    in_ad = n - protos.count("ieee8021ah")
    out: dict[int, int] = {}
    for k, p in enumerate(protos):
        if p == "ieee8021ah" or (p == "ieee8021ad" and in_ad > 0):
            in_ad -= p == "ieee8021ad"
            out[k] = len(out)
    return out


def _fragment_part(protos: list[str], f: Mapping[str, Sequence[str]],
                   ip_idx: int) -> tuple[tuple, int, bool, int, bytes] | None:
    """The fragment the IP layer at ``protos[ip_idx]`` carries, as the builtin decoder hands it
    to its reassembly (``_slowpath.SlowDecoder._ipv4`` / ``_ipv6``): (key without the VLAN,
    offset in the datagram's payload, more fragments, declared length, captured bytes), offset
    and length in bytes. IPv4 key ``(4, src, dst, protocol, id)``, IPv6 ``(6, src, dst, id)``
    (the final destination of a routing header, a home address option's source). The bytes are
    ``data.data`` (a fragment Wireshark does not complete a datagram with) or, for the fragment
    that completes one, its slice of ``ip.reassembled.data`` / ``ipv6.reassembled.data``. None:
    not a fragment (nor an atomic one's), or its bytes are not in the dissection (a fragment
    whose transport Wireshark dissected: the snaplen cut it)."""
    ipn = protos[ip_idx]
    occ = protos[:ip_idx].count(ipn)
    j = ip_idx + 1
    if ipn == "ip":
        more = _at(f, "ip.flags.mf", occ) in ("1", "True")
        off = _int(_at(f, "ip.frag_offset", occ), 0) * 8      # (shown in 8-byte units)
        if not more and not off:
            return None
        length = _int(_at(f, "ip.len", occ), 0) - _int(_at(f, "ip.hdr_len", occ), 20)
        key: tuple = (4, _at(f, "ip.src", occ), _at(f, "ip.dst", occ), _int(_at(f, "ip.proto", occ), 0),
                      _int(_at(f, "ip.id", occ), 0))
        whole = "ip.reassembled.data"
    else:
        pre = 0
        while j < len(protos) and (protos[j].startswith("ipv6.") or protos[j] == "ah"):
            name = protos[j]
            k = protos[:j].count(name)
            if name == "ipv6.fraghdr":
                off = _int(_at(f, "ipv6.fraghdr.offset", k), 0) * 8
                more = _at(f, "ipv6.fraghdr.more", k) in ("1", "True")
                if off or more:
                    break
                pre += 8
            elif name == "ah":
                pre += (_int(_at(f, "ah.length", k), 0) + 2) * 4
            elif _V6_EXT.get(name):
                pre += _int(_at(f, _V6_EXT[name], k), 0)
            j += 1
        else:
            return None
        length = _int(_at(f, "ipv6.plen", occ), 0) - pre - 8
        src = _home_address(protos, f, ip_idx) or _at(f, "ipv6.src", occ)
        dst = _routing_final(protos, f, ip_idx) or _at(f, "ipv6.dst", occ)
        key = (6, src, dst, _int(_at(f, "ipv6.fraghdr.ident", protos[:j].count("ipv6.fraghdr")), 0))
        j += 1
        whole = "ipv6.reassembled.data"
    if length < 0 or not key[1] or not key[2]:
        return None
    number = _at(f, "frame.number", 0)
    later = any(v != number for v in f.get("ip.reassembled_in", ())) or \
        any(v != number for v in f.get("ipv6.reassembled.in", ()))
    if not later and f.get(whole):
        data = _hex(f[whole][-1])[off:off + length]
        if len(data) != length:
            return None
    elif j < len(protos) and protos[j] == "data":
        data = _hex(_at(f, "data.data", protos[:j].count("data")))[:length]
    else:
        return None
    return key, off, more, length, data


def _first_fragment_fields(data: bytes, proto: int, ip_pl: int, v6: bool = False) -> dict:
    """Fields of a first IP fragment whose datagram was never completed (Wireshark shows its
    bytes as ``data``), read as the builtin decoder reads them (``_slowpath.SlowDecoder._l4``):
    past AH and, in IPv6, the extension headers of the fragmentable part; then the TCP, UDP or
    ICMP header, else the rest as the payload of ``proto``. ``ip_pl``: the bytes the fragment
    carries after the IP header (and the IPv6 fragment header)."""
    from ..capture._slowpath import IPV6_EXT
    out: dict = {}
    while len(data) >= 2 and (proto == 51 or (v6 and proto in IPV6_EXT and proto != 44)):
        n = (data[1] + 2) * 4 if proto == 51 else (data[1] + 1) * 8
        if n > ip_pl:
            break
        proto, data, ip_pl = data[0], data[n:], ip_pl - n
    out["proto"], out["payload_len"] = proto, max(ip_pl, 0)
    if proto == 6:
        if len(data) >= 4:
            out["sport"] = int.from_bytes(data[0:2], "big")
            out["dport"] = int.from_bytes(data[2:4], "big")
        if len(data) < 16:
            out["payload_len"] = -1       # the TCP header is cut: length unknown (TCP_HDR_CUT)
            return out
        doff = (data[12] >> 4) * 4
        out["seq"] = int.from_bytes(data[4:8], "big")
        out["ack"] = int.from_bytes(data[8:12], "big")
        out["tcp_flags"] = data[13] | ((data[12] & 1) << 8)
        out["tcp_win"] = int.from_bytes(data[14:16], "big")
        if len(data) >= 18:
            out["l4_sum"] = int.from_bytes(data[16:18], "big")
        plen, hoff = (ip_pl - doff, doff) if 20 <= doff <= ip_pl else (0, 0)
        out["payload_len"] = plen
        out["_pl"] = data[hoff:hoff + plen]
    elif proto == 17:
        if len(data) >= 4:
            out["sport"] = int.from_bytes(data[0:2], "big")
            out["dport"] = int.from_bytes(data[2:4], "big")
        ulen = int.from_bytes(data[4:6], "big") if len(data) >= 6 else -1
        plen = ulen - 8 if 8 <= ulen <= ip_pl else max(ip_pl - 8, 0)
        out["payload_len"] = plen
        if len(data) >= 8:
            out["l4_sum"] = int.from_bytes(data[6:8], "big")
        out["_pl"] = data[8:8 + plen]
    elif proto in (1, 58):
        if len(data) >= 2:
            out["icmp_type"], out["icmp_code"] = data[0], data[1]
        if len(data) >= 4:
            out["l4_sum"] = int.from_bytes(data[2:4], "big")
        plen = max(ip_pl - 8, 0)
        out["payload_len"] = plen
        out["_pl"] = data[8:8 + plen]
    else:
        out["_pl"] = data[:ip_pl]
    return out


def _without_version_handoffs(protos: list[str], f: Mapping[str, Sequence[str]]) -> list[str]:
    """``protos`` without each ``ip`` layer that only handed an IPv6 packet on (Wireshark's IPv4
    dissector, given a packet of version 6 — the raw IPv4 link type 228 holding IPv6 —, shows
    an ``ip`` layer with ``ip.version`` 6 and nothing else, then the ``ipv6`` layer): it is no
    IP-in-IP tunnel. ``ip.version`` has one value per ``ip`` layer, in order."""
    vers = f.get("ip.version") or ()
    k = -1
    drop = set()
    for i, name in enumerate(protos):
        if name == "ip":
            k += 1
            if k < len(vers) and vers[k] == "6" and i + 1 < len(protos) and protos[i + 1] == "ipv6":
                drop.add(i)
    return [x for i, x in enumerate(protos) if i not in drop] if drop else protos


def _beyond_frame(f: Mapping[str, Sequence[str]], ipn: str, claimed: int) -> int:
    """Bytes the IP length (``claimed``: IPv4 total length, IPv6 payload length) says beyond
    what the frame holds, from Wireshark's expert message on the last ``ipn`` layer flagged
    (an ICMP error's quote is never flagged); 0 when none is.

    Only the IP dissector's own expert info counts: the packet must carry its expert field
    (:data:`_BEYOND_FIELD`), and messages that are a packet comment's text (Wireshark lists
    each pcapng comment among the expert messages, ``frame.comment``: untrusted text written
    by whoever edited the file) are set aside, one per comment piece (break-it 18 F5)."""
    if not f.get(_BEYOND_FIELD[ipn]):
        return 0
    pat = _BEYOND[ipn]
    comments: dict[str, int] = {}
    for c in f.get("frame.comment", ()):
        comments[c] = comments.get(c, 0) + 1
    last = ""
    for m in f.get("_ws.expert.message", ()):
        if comments.get(m):
            comments[m] -= 1        # (a comment's copy: Wireshark lists it before the IP's own)
            continue
        if m.startswith(pat):
            last = m
    if not last:
        return 0
    held = _int(last[len(pat):].split(" ", 1)[0], -1)
    return max(claimed - held, 0) if held >= 0 else 0


def _quoted(protos: list[str], f: Mapping[str, Sequence[str]], icmp_idx: int) -> bytes:
    """Rebuild the start of the datagram an ICMP error quotes from its dissected headers."""
    q = icmp_idx + 1
    while q < len(protos) and protos[q] not in _IP:
        q += 1
    if q >= len(protos):
        return b""
    first = q
    while True:
        # a tunnel's packet quoted (IP-in-IP, 6in4, GRE): its inner packet, which the flow is
        # keyed by (as protocols.icmp.quoted_datagram follows it), behind an outer header of
        # the quoted version (IP-in-IP / IPv6-in-IP framing: what is read of it is the inner one)
        n = q + 1
        while n < len(protos) and (protos[n].startswith("ipv6.") or protos[n] == "gre"):
            n += 1
        if n >= len(protos) or protos[n] not in _IP:
            break
        q = n
    outer = b""
    if q != first:
        inner = 4 if protos[q] == "ip" else 41
        k0 = protos[:first].count(protos[first])
        if protos[first] == "ip":
            src, dst = _at(f, "ip.src", k0), _at(f, "ip.dst", k0)
            if src and dst:
                outer = bytes([0x45, 0, 0, 0, 0, 0, 0, 0, 64, inner, 0, 0]) \
                    + ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed
        else:
            src, dst = _at(f, "ipv6.src", k0), _at(f, "ipv6.dst", k0)
            if src and dst:
                outer = bytes([0x60, 0, 0, 0, 0, 0, inner, 64]) \
                    + ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed
        if not outer:
            return b""
    qn = protos[q]
    k = protos[:q].count(qn)
    t = q + 1
    while t < len(protos) and protos[t].startswith("ipv6."):
        t += 1
    tn = protos[t] if t < len(protos) else ""
    if qn == "ip":
        src, dst = _at(f, "ip.src", k), _at(f, "ip.dst", k)
        if not src or not dst:
            return b""
        proto = _int(_at(f, "ip.proto", k), 0)
        tot = _int(_at(f, "ip.len", k), 0) & 0xFFFF
        ident = _int(_at(f, "ip.id", k), 0) & 0xFFFF
        frag = _int(_at(f, "ip.frag_offset", k), 0)
        frag_units = frag & 0x1FFF              # Wireshark shows it in 8-byte units
        head = bytes([0x45, 0]) + tot.to_bytes(2, "big") + ident.to_bytes(2, "big") \
            + frag_units.to_bytes(2, "big") + bytes([64, proto, 0, 0]) \
            + ipaddress.IPv4Address(src).packed + ipaddress.IPv4Address(dst).packed
    else:
        src, dst = _at(f, "ipv6.src", k), _at(f, "ipv6.dst", k)
        dst = _routing_final(protos, f, q) or dst
        if not src or not dst:
            return b""
        proto = _PROTO_NUMBERS.get(tn, _int(_at(f, "ipv6.nxt", k), 0))
        plen = _int(_at(f, "ipv6.plen", k), 0) & 0xFFFF
        head = bytes([0x60, 0, 0, 0]) + plen.to_bytes(2, "big") + bytes([proto, 64]) \
            + ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed
        fh = next((i for i in range(q + 1, t) if protos[i] == "ipv6.fraghdr"), -1)
        if fh >= 0 and _int(_at(f, "ipv6.fraghdr.offset", protos[:fh].count("ipv6.fraghdr")), 0):
            # a later fragment quoted: its fragment header rebuilt (no transport header in it)
            kf = protos[:fh].count("ipv6.fraghdr")
            off6 = _int(_at(f, "ipv6.fraghdr.offset", kf), 0) & 0x1FFF
            head = head[:6] + bytes([44]) + head[7:] + bytes([_int(_at(f, "ipv6.fraghdr.nxt", kf), 0) & 0xFF, 0]) \
                + (off6 << 3).to_bytes(2, "big") + bytes(4)
            return outer + head
    if tn in ("tcp", "udp"):
        kt = protos[:t].count(tn)
        sp = _int(_at(f, f"{tn}.srcport", kt))
        dp = _int(_at(f, f"{tn}.dstport", kt))
        if 0 <= sp <= 0xFFFF and 0 <= dp <= 0xFFFF:
            seq = _int(_at(f, "tcp.seq", kt), 0) & 0xFFFFFFFF if tn == "tcp" else 0
            return outer + head + sp.to_bytes(2, "big") + dp.to_bytes(2, "big") + seq.to_bytes(4, "big")
    return outer + head


# ---------------------------------------------------------------------------------- files
def _tshark_args(tshark: str, path: str) -> list[str]:
    extra = [x for i in range(0, len(OPTIONAL_PREFS), 2)
             if OPTIONAL_PREFS[i + 1].split(":", 1)[0] not in _unknown_prefs
             for x in OPTIONAL_PREFS[i:i + 2]]
    args = [tshark, "-2", "-r", path, "-n", *PREFS, *extra, *DECODE_AS, *DISABLED, "-T", "fields", "-E", "occurrence=a",
            "-E", "aggregator=,", "-E", "separator=/t", "-E", "quote=n"]
    for name in FIELDS:
        args += ["-e", name]
    return args


def _is_pcapng(path: Path) -> bool:
    """The file is a pcapng capture (gzip-compressed or not), by its first bytes."""
    import gzip
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
            if head[:2] == b"\x1f\x8b":
                fh.seek(0)
                with gzip.GzipFile(fileobj=fh) as gz:
                    head = gz.read(4)
    except (OSError, EOFError):
        return False
    return head == b"\x0a\x0d\x0d\x0a"


#: ns by which tshark's time of a packet may differ from the built-in reader's before the
#: built-in reader's times are taken (:func:`_check_times`; rounding of binary resolutions)
_TS_TOLERANCE_NS = 1000


def _check_times(b: PacketBuilder, p: Path, name: str) -> str | None:
    """Compare the packets' times (``b``'s rows, tshark's ``frame.time_epoch``) with the
    built-in reader's times of the same records, for a pcapng file (plain or gzip): tshark 4.0
    misreads an interface's ``if_tsresol`` finer than a nanosecond (10^-12: picoseconds from
    hardware capture cards; break-it 18 F6). When some differ by more than
    :data:`_TS_TOLERANCE_NS`, the rows take the built-in reader's times (epoch ns, the file's
    ``if_tsresol``/``if_tsoffset``) and the warning line saying so is returned; None when they
    agree, or when the two readers do not read the same number of records (nothing changed).
    A pcap file is compared too when tshark gives a time before 1970: the format's seconds are
    unsigned (draft-ietf-opsawg-pcap), and tshark gives 1833 for seconds and µs both 0xffffffff
    (2106 and 4295 s, as the built-in reader reads them: break-it 27 F5)."""
    if not b.rows["frame"]:
        return None
    pcapng = _is_pcapng(p)
    if not pcapng and min(b.rows["ts_ns"]) >= 0:
        return None
    from ..capture.files import iter_frames
    try:
        parts = [fr.ts_ns for fr in iter_frames(p, name=name)]
    except (CaptureError, OSError):
        return None
    ts = np.concatenate(parts) if parts else np.zeros(0, np.int64)
    frames = np.asarray(b.rows["frame"], np.int64)
    if len(ts) != b.records or frames.min() < 0 or frames.max() >= len(ts):
        return None
    got = np.asarray(b.rows["ts_ns"], np.int64)
    want = ts[frames]
    lo, hi = np.iinfo(np.int64).min + _TS_TOLERANCE_NS, np.iinfo(np.int64).max - _TS_TOLERANCE_NS
    w = np.clip(want, lo, hi)
    bad = (got > w + _TS_TOLERANCE_NS) | (got < w - _TS_TOLERANCE_NS)
    k = int(bad.sum())
    if not k:
        return None
    b.rows["ts_ns"] = want.tolist()
    b.latest_ns = int(ts.max())
    b.earliest_ns = int(ts[ts > 0].min()) if (ts > 0).any() else None
    n = len(frames)
    if not pcapng:
        return (f"{name}: tshark gives {k} of the {n} packet{'s' if n != 1 else ''} times before 1970 "
                "where the record headers say later (pcap seconds are unsigned, and a fraction of a "
                "second or more adds to them): the built-in reader's times "
                "are used")
    worst = max(abs(int(x) - int(y)) for x, y in zip(got[bad].tolist(), want[bad].tolist()))
    return (f"{name}: tshark gives {k} of the {n} packet{'s' if n != 1 else ''} other times than "
            f"the file's interface timestamps say (by up to {worst / 1e9:.6f} s; tshark 4.0 "
            "misreads a pcapng if_tsresol finer than a nanosecond): the built-in reader's times "
            "are used")


@contextmanager
def _clean_profile() -> Iterator[dict]:
    """The environment tshark runs in: the caller's, with ``WIRESHARK_CONFIG_DIR`` an empty
    folder made for the run (and removed after it), so that the personal Wireshark settings of
    whoever runs the analysis (disabled protocols, Decode As entries, user link types,
    preferences in ``~/.config/wireshark``) cannot change what the engine reads: a personal
    ``disabled_protos`` holding ``tcp`` made every TCP packet undissected data. The system-wide
    settings (Wireshark's own folder) still apply."""
    with tempfile.TemporaryDirectory(prefix="kscc-tshark-") as d:
        yield {**os.environ, "WIRESHARK_CONFIG_DIR": d}


def _error_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines()
             if ln.strip() and not ln.startswith("Running as user")]
    return lines[-1] if lines else ""


def _dissect(exe: str, path: Path) -> tuple[PacketBuilder, int, str]:
    """Run tshark on ``path``: (the rows built from its lines, its exit status, the last line of
    its stderr). tshark is killed if reading stops early (an exception)."""
    b = PacketBuilder()
    with _clean_profile() as env:
        return _dissect_in(exe, path, b, env)


def _dissect_in(exe: str, path: Path, b: "PacketBuilder", env: dict) -> tuple[PacketBuilder, int, str]:
    """:func:`_dissect` in the environment ``env`` (:func:`_clean_profile`)."""
    proc = subprocess.Popen(_tshark_args(exe, str(path)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            encoding="utf-8", errors="surrogateescape", env=env)
    import threading
    err_chunks: list[str] = []
    t = threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True)
    t.start()
    nf = len(FIELDS)
    try:
        for line in proc.stdout:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < nf:
                parts += [""] * (nf - len(parts))
            f = {name: (parts[i].split(",") if parts[i] else []) for i, name in enumerate(FIELDS)}
            protos = parts[2].split(":") if parts[2] else []
            b.add(protos, f)
        rc = proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        t.join(timeout=5)
        proc.stdout.close()
        proc.stderr.close()
    err = "".join(err_chunks)
    if rc != 0 and b.records == 0 and "unknown preference" in err:
        # (an older tshark without one of the optional preferences: run again without it)
        for i in range(1, len(OPTIONAL_PREFS), 2):
            name = OPTIONAL_PREFS[i].split(":", 1)[0]
            if name not in _unknown_prefs and f'"{OPTIONAL_PREFS[i]}"' in err:
                _unknown_prefs.add(name)
                return _dissect(exe, path)
    if str(path):
        # (tshark quotes the file name as given: a name with a newline would split its message,
        # and a control character in it would reach the terminal)
        err = err.replace(str(path), path_text(path))
    return b, rc, _error_line(err)


def _loop_header(lt: int, d: bytes) -> bytes | None:
    """The 4-byte BSD loopback header (link type ``lt`` 0, NULL, or 108, LOOP) that Wireshark
    reads as the family the builtin decoder reads at the start of ``d`` (2, or one of
    :data:`~kscc_traffic.capture._slowpath.AF_INET6` in either byte order:
    ``_slowpath.SlowDecoder`` for these link types), where Wireshark would not: 10 and 23
    become 24 (an AF_INET6 Wireshark reads), in the header's byte order; under LOOP the family
    is written big-endian. None when the header is left as it is (another link type, a family
    neither reads as IP, or one Wireshark reads already)."""
    from ..capture._slowpath import AF_INET6
    if lt not in (0, 108) or len(d) < 4:
        return None
    h0, h1, h2, h3 = d[0], d[1], d[2], d[3]
    if h1 or h2 or (h0 and h3):
        return None
    fam = h0 | h3
    if fam != 2 and fam not in AF_INET6:
        return None
    want = 2 if fam == 2 else (24 if fam in (10, 23) else fam)
    new = want.to_bytes(4, "big" if lt == 108 or not h0 else "little")
    return None if new == bytes(d[:4]) else new


def _readable_copy(path: Path, name: str, have: int, dest: Path,
                   fcs_overlong: bool = False, fcs_absent: bool = False,
                   loop_family: bool = False, odd_fcs: bool = False) -> tuple[ReadStats, int, int] | None:
    """Write to ``dest`` a pcapng holding the records the built-in reader reads in ``path``
    (:func:`kscc_traffic.capture.files.iter_frames`: past the blocks it skips, such as a packet
    block naming an undefined interface), with their times (ns, ``if_tsresol`` 9) and link
    types (one interface per link type); return the reader's stats (its warnings name
    ``name``, its fields alone) and the number of frames read without the FCS their file claims
    (0 unless ``fcs_absent``). None, and nothing written, when it reads no more than ``have`` records and read
    past no damage, or cannot read the file at all. ``fcs_overlong``: instead, None when no record
    has an FCS length longer than itself (:func:`~kscc_traffic.capture.files.fcs_overlong_note`).
    ``fcs_absent``: instead, None when the built-in decoder reads no frame without the FCS its
    file claims (:func:`~kscc_traffic.capture.decode.fcs_absent_frames`); those frames lose the
    claim in the copy. ``loop_family``: instead, None when no BSD loopback frame has a family
    Wireshark does not read as the builtin decoder does (:func:`_loop_header`); the count
    returned is then that of those frames. In every copy such a frame's header is written as
    :func:`_loop_header` gives it (its IP packet is left as it is). ``odd_fcs``: the copy
    always (a pcap header whose FCS length no link layer has: tshark reads the frames by it, the
    copy has no FCS claim).
    An interface whose frames end with a 4-byte FCS keeps ``if_fcslen`` 4 in the copy; the others
    have none."""
    import struct
    from ..capture.decode import FcsClaim, fcs_absent_frames
    from ..capture.files import iter_frames
    try:
        n, lo, absent, absent2 = 0, 0, 0, 0
        stats = None
        claim = FcsClaim()                  # the file's FCS decision, carried over the chunks
        for fr in iter_frames(path, name=name):
            stats = fr.stats
            n += len(fr)
            if len(fr):
                lo = min(lo, int(fr.ts_ns.min()))
                if fcs_absent:
                    nofcs = fcs_absent_frames(fr, claim)
                    absent += int(nofcs.sum())
                    absent2 += int((nofcs & ((fr.linktype & (LT_FCS | LT_FCS2)) == LT_FCS2)).sum())
                if loop_family:
                    lts = (fr.linktype & 0xFFFF).tolist()
                    absent += sum(1 for i in np.flatnonzero(np.isin(fr.linktype & 0xFFFF, (0, 108))).tolist()
                                  if _loop_header(lts[i], fr.data(i)[:4]) is not None)
    except (CaptureError, OSError):
        return None
    if (fcs_absent or loop_family) and not absent:
        return None
    # (more records, or damage read past: tshark may have counted a zero-filled region's
    # headers as frames, and stopped at the misaligned record after it)
    read_past = stats is not None and stats.damage_offset is None and stats.skipped_bytes > 0
    if fcs_overlong:
        from ..capture.files import FCS_OVERLONG_TEXT
        if stats is None or not any(FCS_OVERLONG_TEXT in w for w in stats.warnings):
            return None
    elif not fcs_absent and not loop_family and not odd_fcs and (stats is None or (n <= have and not read_past)):
        return None
    # times before 1970 (if_tsoffset < 0): an interface offset so that every raw time is >= 0
    off_s = -((-lo + 999_999_999) // 1_000_000_000) if lo < 0 else 0
    off_ns = off_s * 1_000_000_000

    def block(kind: int, body: bytes) -> bytes:
        body += b"\0" * (-len(body) % 4)
        return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)
    idb_opts = struct.pack("<HH", 9, 1) + b"\x09\0\0\0"              # if_tsresol 10^-9
    if off_s:
        idb_opts += struct.pack("<HHq", 14, 8, off_s)                 # if_tsoffset
    idb_opts += struct.pack("<HH", 0, 0)
    ifaces: dict[int, int] = {}
    epb = struct.Struct("<IIIII").pack
    with open(dest, "wb") as out:
        claim = FcsClaim()
        out.write(block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)))
        for fr in iter_frames(path, name=name):
            parts = []
            lts = fr.linktype.tolist()
            if fcs_absent or ((fr.linktype & LT_FCS2) != 0).any():
                # (a 2-byte FCS claim is dropped for the frames the builtin decoder reads without
                # it in every copy: tshark would take the bytes off)
                nofcs = fcs_absent_frames(fr, claim)
                if not fcs_absent:
                    nofcs &= (fr.linktype & LT_FCS2) != 0
                if nofcs.any():
                    lts = np.where(nofcs, fr.linktype & ~(LT_FCS | LT_FCS2), fr.linktype).tolist()
            tss = (fr.ts_ns.astype(object) - off_ns).tolist() if off_ns else fr.ts_ns.tolist()
            wls = fr.wirelen.tolist()
            for i, (lt, ts) in enumerate(zip(lts, tss)):
                # (a frame the file marks damaged keeps the mark: epb_flags with the CRC error
                # bit, which tshark shows as frame.packet_flags_crc_error)
                damaged, lt = lt & LT_DAMAGED, lt & ~LT_DAMAGED
                if lt not in ifaces:
                    ifaces[lt] = len(ifaces)
                    fcs4 = (struct.pack("<HH", 13, 1) + b"\x04\0\0\0" if lt & LT_FCS else      # if_fcslen 4
                            struct.pack("<HH", 13, 1) + b"\x02\0\0\0" if lt & LT_FCS2 else b"")  # 2 (tshark: 2 bytes)
                    parts.append(block(1, struct.pack("<HHI", lt & 0xFFFF, 0, 0) + fcs4 + idb_opts))
                d = fr.data(i)
                if lt & 0xFFFF in (0, 108):
                    head = _loop_header(lt & 0xFFFF, d[:4])
                    if head is not None:
                        d = head + bytes(d[4:])
                d += b"\0" * (-len(d) % 4)
                if damaged:
                    d += struct.pack("<HHIHH", 2, 4, 1 << 24, 0, 0)   # epb_flags, opt_endofopt
                parts.append(block(6, epb(ifaces[lt], ts >> 32, ts & 0xFFFFFFFF, len(fr.data(i)), wls[i]) + d))
            out.write(b"".join(parts))
    return stats, absent, absent2


def _odd_fcs_file(path: Path, name: str = "") -> bool:
    """Whether ``path`` is a pcap file whose header's FCS bits give a length no link layer has
    (:func:`~kscc_traffic.capture.files.odd_fcs_words`), or a pcapng file whose first records'
    interfaces give such an ``if_fcslen`` (:func:`~kscc_traffic.capture.files.fcs_option_bytes`:
    the builtin reader reads the frames whole, tshark takes up to 31 bytes off them); a compressed
    or unreadable file: no."""
    from ..capture.files import FCSLEN_ODD_TEXT, iter_frames, odd_fcs_words
    try:
        with open(path, "rb") as fh:
            head = fh.read(24)
        if odd_fcs_words(head) > 0:
            return True
        if head[:4] != b"\x0a\x0d\x0d\x0a":
            return False
        fr = next(iter(iter_frames(path, 1 << 16, name=name)), None)
    except (CaptureError, OSError):
        return False
    return fr is not None and any(FCSLEN_ODD_TEXT in w and "if_fcslen" in w for w in fr.stats.warnings)


def _claims_fcs2(path: Path, name: str) -> bool:
    """Whether the first records the built-in reader reads in ``path`` claim a 2-byte FCS
    (:data:`~kscc_traffic.capture.frames.LT_FCS2`: the pcap header's FCS length 1, pcapng
    ``if_fcslen`` 2): the frames whose IP packet fills them are read without it by the builtin
    decoder, while tshark takes 2 bytes off every frame (the copy drops the claim for them)."""
    from ..capture.files import iter_frames
    try:
        fr = next(iter(iter_frames(path, 1 << 16, name=name)), None)
    except (CaptureError, OSError):
        return False
    return fr is not None and bool(((np.asarray(fr.linktype, np.int64) & LT_FCS2) != 0).any())


def _builtin_refusal(path: Path, name: str) -> CaptureError | None:
    """The error the built-in reader gives for a file whose header it refuses (a pcapng cut
    inside its Section Header Block, a damaged byte-order magic, an unsupported version…), when
    the file begins as a pcap, pcapng or compressed file; else None. tshark reads such a file as
    a one-frame "file-pcapng"/MIME file or says it is no capture, neither of which is the cause."""
    from ..capture.compressed import CODEC_MAGICS
    from ..capture.files import _PCAP_MAGICS, iter_frames
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return None
    if head and not head.startswith((b"\x0a\x0d\x0d\x0a", *_PCAP_MAGICS, *CODEC_MAGICS)):
        return None                 # (an empty file: the reader's "empty file (0 bytes)" error)
    try:
        next(iter_frames(path, 64, name=name), None)
    except CaptureError as e:
        return e
    except OSError:
        return None
    return None


def _not_packets_error(name: str, b: PacketBuilder) -> UnsupportedFormat | None:
    """The error for a file tshark reads as a whole non-capture file (JSON, an image, an ELF
    binary, a PEM file…: every frame of an encapsulation in :data:`_NOT_PACKETS`), else None."""
    if not b.records or b.not_capture != b.records:
        return None
    n = b.records
    return UnsupportedFormat(f"{name}: not a packet capture: tshark reads it as {b.file_kind} "
                             f"(its content as {n} frame{'s' if n != 1 else ''}, no packet)")


def check_is_capture(path: str | os.PathLike, tshark: str | None = None, *,
                     magics: Sequence[bytes] = (), name: str | None = None) -> None:
    """Refuse, before any analysis, a file that tshark opens but that holds no packets (JSON, an
    image…: see :func:`read_packets`), dissecting only its first frame. A file starting with one
    of ``magics`` (pcap, pcapng, gzip…) is not looked at; nor is anything when tshark is not
    installed or cannot read the file (:func:`read_packets` says so).

    :raises UnsupportedFormat: one line naming the file and what tshark reads it as.
    """
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return
    if any(head.startswith(m) for m in magics):
        # (a pcap/pcapng file whose header the built-in reader refuses: its error, as that
        # engine gives it)
        err = _builtin_refusal(p, name or name_text(p.name))
        if err is not None:
            raise err
        return
    exe = tshark or shutil.which("tshark")
    if not exe:
        return
    try:
        with _clean_profile() as env:
            r = subprocess.run([exe, "-r", str(p), "-n", "-c", "1", "-T", "fields", "-E", "separator=/t",
                                "-e", "frame.protocols", "-e", "frame.encap_type"],
                               capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
                               encoding="utf-8", errors="replace", env=env)
    except (OSError, subprocess.TimeoutExpired):
        return
    b = PacketBuilder()
    for line in r.stdout.splitlines()[:1]:
        protos, _, encap = line.partition("\t")
        b.add(protos.split(":"), {"frame.encap_type": [encap], "frame.time_epoch": ["0"],
                                 "frame.interface_id": ["0"]})
    err = _not_packets_error(name or name_text(p.name), b)
    if err is not None:
        raise err


def read_packets(path: str | os.PathLike, tshark: str | None = None, *, name: str | None = None) -> Packets:
    """Dissect a capture file with tshark into :class:`Packets` (columns as the builtin
    decoder's; see the module docstring for how fields map).

    When tshark stops reading before the end of the file (it gives up at a damaged block, for
    example a pcapng packet block naming an interface the section does not define, which the
    built-in reader skips and reads on after), and the built-in reader reads more records in
    the file, tshark dissects a pcapng copy of those records instead (:func:`_readable_copy`:
    their times, link types and bytes, written to a temporary file and removed), so the two
    engines see the same records; the warnings are then the built-in reader's (naming what it
    skipped) and one line saying tshark stopped where and read the copy. Otherwise the frames
    before tshark stopped are kept and one warning line says how many and that the rest of the
    file is not analysed.

    :param path: pcap/pcapng file (anything tshark reads, gzip included).
    :param tshark: path of the tshark binary (default: found on ``PATH``).
    :param name: the text naming the capture in warning and error lines (default: its file name,
        escaped by :func:`kscc_traffic.text.name_text`).
    :returns: Packets with ``stats``: ``records`` (frames tshark reported; with a copy, the
        records the built-in reader read), ``bytes_read`` (file size, bytes), ``ip_packets``,
        ``non_ip``, ``malformed`` and ``warnings`` (tshark's complaints about the file, e.g. a
        cut last packet).
    :raises EngineError: tshark is not installed, or it crashed.
    :raises CaptureError: the file is missing, or neither tshark nor the built-in reader can
        read any of it (:class:`UnsupportedFormat` when it is not a capture).
    """
    p = Path(path)
    if not p.exists():
        raise CaptureError(f"{path_text(path)}: no such file")
    if p.is_dir():
        raise CaptureError(f"{path_text(path)}: is a directory, not a capture file")
    if name is None:
        name = name_text(p.name)
    exe = tshark or find_tool("tshark")
    if p.stat().st_size == 0:
        # an empty file is an error, as with the built-in engine (tshark reads it as no frames)
        err = _builtin_refusal(p, name)
        if err is not None:
            raise err
    codec = _codec(p)
    if codec == "lz4-legacy":
        # (refused as the built-in reader refuses it, saying how to convert it; tshark is not run)
        err = _builtin_refusal(p, name)
        if err is not None:
            raise err
    if codec in TSHARK_UNREAD_CODECS:
        return _read_decompressed(exe, p, name, codec)
    b, rc, msg = _dissect(exe, p)
    if rc != 0 and b.records == 0 and codec in ("zstd", "lz4"):
        # (a tshark built without zstd or lz4 support: it says the file is no capture)
        return _read_decompressed(exe, p, name, codec)
    err = _not_packets_error(name, b)  # (tshark's readers for JSON, images…: the whole file)
    if err is not None or (rc != 0 and b.records == 0):
        # (a pcapng cut inside its header is a one-frame "file-pcapng" to tshark: the built-in
        # reader's error says what is wrong, as with the built-in engine)
        err = _builtin_refusal(p, name) or err
    if err is not None:
        raise err
    stats = ReadStats(records=b.records, bytes_read=p.stat().st_size)
    stopped = rc != 0 or bool(msg and ("cut short" in msg or "damaged" in msg or "corrupt" in msg))
    if stopped and rc >= 0:
        copied = _read_copy(exe, p, name, b.records, msg or f"exit status {rc}")
        if copied is not None:
            return copied
    if rc == 0 and (b.malformed or b.non_ip) and _is_pcapng(p):
        # frames whose FCS length in the file is longer than they are: tshark reads them as
        # malformed (nothing above the link layer), the built-in reader without an FCS
        # (break-it 22 F6): the copy of the records the built-in reader reads is dissected
        copied = _read_copy(exe, p, name, b.records, "", fcs_overlong=True)
        if copied is not None:
            return copied
    if rc == 0 and _odd_fcs_file(p, name):
        # a pcap header FCS length no link layer has (3 words or more): the builtin reader
        # ignores it, tshark reads frames by it (and drops some as failing their FCS)
        copied = _read_copy(exe, p, name, b.records, "", odd_fcs=True)
        if copied is not None:
            return copied
    if rc == 0 and (b.fcs_mismatch or _claims_fcs2(p, name)):
        # frames whose FCS does not match: when the built-in decoder reads some of them as
        # carrying none (the file's claim wrong: break-it 27 F3), the copy without the claim
        copied = _read_copy(exe, p, name, b.records, "", fcs_absent=True)
        if copied is not None:
            return copied
    if rc == 0 and b.loop_unread:
        # BSD loopback frames of a family the builtin decoder reads as IP and Wireshark does not
        # (10, 23; a little-endian LOOP header: break-it s56 #8): the copy with the family
        # written as Wireshark reads it
        copied = _read_copy(exe, p, name, b.records, "", loop_families=b.loop_families)
        if copied is not None:
            return copied
    if rc != 0 and b.records == 0:
        text = f"{name}: tshark cannot read it: {msg or f'exit status {rc}'}"
        if "format" in msg or "isn't a capture file" in msg or "understands" in msg:
            raise UnsupportedFormat(text)
        if rc < 0:
            raise EngineError(f"{name}: tshark was killed (signal {-rc})")
        raise CaptureError(text)
    if stopped:
        rest = "" if "cut short" in msg else \
            "; the rest of the file is not analysed"
        stats.warn(f"{name}: tshark stopped reading after {b.records} frames: "
                   f"{msg or f'exit status {rc}'}{rest}")
    return _finish(b, stats, p, name, rc, check_times=True)


#: compressed formats (:data:`kscc_traffic.capture.compressed.CODEC_MAGICS`) tshark does not open
#: (Wireshark reads gzip, and zstd and lz4 from 4.0 when built with them): decompressed by
#: :func:`_read_decompressed` first
TSHARK_UNREAD_CODECS = frozenset({"xz", "bzip2"})


def _codec(p: Path) -> str | None:
    """The compressed format ``p`` begins with (:func:`kscc_traffic.capture.compressed.codec_of`),
    or None (not compressed, or unreadable)."""
    from ..capture.compressed import codec_of
    try:
        with open(p, "rb") as fh:
            return codec_of(fh.read(8))
    except OSError:
        return None


def _read_decompressed(exe: str, p: Path, name: str, codec: str) -> Packets:
    """Dissect a capture compressed in a format tshark does not open (``codec``: xz, bzip2, or
    zstd/lz4 for a tshark built without them): decompressed by the built-in reader's
    decompressor (:class:`kscc_traffic.capture.compressed.DecompressingReader`: several
    streams, padding) into a temporary file (as large as the capture uncompressed; removed
    after), which :func:`read_packets` dissects. The warnings and errors name ``name``, as the
    built-in engine's do; where the compressed data ends early (cut short, corrupt) the warning
    line is the built-in reader's (``…; capture data ends at offset N``).

    :raises CaptureError: as :func:`read_packets`; a :class:`~kscc_traffic.errors.TruncatedCapture`
        (the built-in reader's "…; no capture data") when nothing decompresses.
    """
    import tempfile
    from ..capture.compressed import DecompressingReader
    from ..errors import TruncatedCapture
    fd, tmp = tempfile.mkstemp(prefix="kscc-traffic-", suffix=".pcap")
    try:
        made = 0
        with open(p, "rb") as f, os.fdopen(fd, "wb") as out:
            reader = DecompressingReader(f, codec)
            while True:
                piece = reader.read(1 << 20)
                if not piece:
                    break
                out.write(piece)
                made += len(piece)
        problem = reader.problem
        if problem and not made:
            raise TruncatedCapture(f"{name}: {problem}; no capture data")
        shown = path_text(tmp)
        try:
            pk = read_packets(tmp, exe, name=name)
        except CaptureError as e:
            raise type(e)(str(e).replace(shown, name)) from None
    finally:
        os.unlink(tmp)
    st = pk.stats
    st.warnings[:] = [w.replace(shown, name) for w in st.warnings]
    if problem:
        st.warn(f"{name}: {problem}; capture data ends at offset {made}")
    st.bytes_read = p.stat().st_size
    return pk


def _pcap_ns(p: Path) -> bool:
    """Whether ``p`` begins as a pcap file with nanosecond times (magic a1b23c4d, either order)."""
    try:
        with open(p, "rb") as f:
            return f.read(4) in (b"\xa1\xb2\x3c\x4d", b"\x4d\x3c\xb2\xa1")
    except OSError:
        return False


#: the built-in reader's warning lines about a capture file's own records and blocks that tshark's
#: output does not tell, by how they read (key: what :func:`_container_notes` files them under)
_CONTAINER_NOTES = {"dropped": "packets dropped, not written to the file",
                    "over_snaplen": ("longer than their interface's snaplen", "longer than the header's snaplen"),
                    "wirelen_short": "whose original length is below the captured length",
                    "frac": ("with ts_usec ≥", "with ts_nsec ≥"),
                    "odd_version": "is none libpcap writes",
                    "rounded": "though the block is padded to one",
                    "unknown_block": "of a type this reader does not know",
                    "compressed": "; capture data ends at offset "}


def _container_notes(p: Path, name: str) -> dict[str, str]:
    """The built-in reader's warning lines about the file itself that the tshark engine has no
    way to tell (:data:`_CONTAINER_NOTES`: a pcapng Interface Statistics Block's dropped packets,
    records longer than the snaplen, original lengths below the captured ones, fractions of a
    second of a second or more, a pcap header's unknown version, pcapng blocks read by their
    length rounded up, pcapng blocks of an unknown type, which tshark skips without a word, a
    compressed stream (gzip, zstd, lz4: tshark opens them) that is cut short, damaged or
    followed by other bytes, which tshark reads up to where its data ends without saying why),
    read by walking the file with it (one pass, in chunks: the
    engine's own dissection costs far more; break-it s50); {} when it cannot read the file."""
    from ..capture.files import iter_frames
    warnings: list[str] = []
    try:
        for fr in iter_frames(p, name=name):
            warnings = list(fr.stats.warnings) if fr.stats is not None else warnings
    except (CaptureError, OSError):
        return {}
    out: dict[str, str] = {}
    for key, marks in _CONTAINER_NOTES.items():
        for line in warnings:
            if any(m in line for m in ((marks,) if isinstance(marks, str) else marks)):
                out[key] = line
                break
    return out


def _finish(b: PacketBuilder, stats: ReadStats, p: Path, name: str, rc: int,
            check_times: bool = False) -> Packets:
    if check_times:         # (the file itself, not a copy the engine wrote with ns times)
        line = _check_times(b, p, name)
        if line:
            stats.warn(line)
    if b.ts_clamped:        # (the built-in reader's lines, where it has them)
        k = b.ts_clamped
        stats.warn(f"{name}: {k} timestamp{'s' if k != 1 else ''} {TS_RANGE_TEXT} ({TS_FOLDED_TEXT})")
    container = _container_notes(p, name) if check_times else {}
    if b.frac_over or "frac" in container:  # (the built-in reader's line: break-it 27 leftover, none was said)
        unit = "ts_nsec ≥ 1000000000" if _pcap_ns(p) else "ts_usec ≥ 1000000"
        # (the built-in reader's count when it read the file: tshark prints a record it gives a
        # time before 1970 in another form, break-it s50)
        line = container.pop("frac", None) or \
            f"{name}: {b.frac_over} record{'s' if b.frac_over != 1 else ''} with {unit} (kept as read)"
        if line not in stats.warnings:      # (already the built-in reader's, for a copy)
            stats.warn(line)
    for line in container.values():     # (the file's own oddities tshark does not tell)
        if line not in stats.warnings:
            stats.warn(line)
    if b.wirelen_damaged:
        line = f"{name}: {wirelen_damaged_note(b.wirelen_damaged)}"
        if line not in stats.warnings:      # (already the built-in reader's, for a copy)
            stats.warn(line)
    if b.wirelen_clamped:
        k = b.wirelen_clamped
        line = (f"{name}: {k} record{'s' if k != 1 else ''} with an original length above "
                f"{WIRELEN_CLAMP} (clamped to it)")
        if line not in stats.warnings:      # (already the built-in reader's, for a copy)
            stats.warn(line)
    if b.protected:         # (the builtin decoder's lines, in its order)
        from ..capture.decode import protected_note
        stats.warn(f"{name}: {protected_note(b.protected)}")
    if b.macsec_encrypted:
        from ..capture.decode import macsec_note
        stats.warn(f"{name}: {macsec_note(b.macsec_encrypted)}")
    if b.bad_v4_options:
        from ..capture.decode import bad_v4_options_note
        stats.warn(f"{name}: {bad_v4_options_note(b.bad_v4_options)}")
    if b.vj_tcp:
        from ..capture.decode import vj_note
        stats.warn(f"{name}: {vj_note(b.vj_tcp)}")
    if b.ppp_sealed:
        from ..capture.decode import ppp_sealed_note
        stats.warn(f"{name}: {ppp_sealed_note(b.ppp_sealed)}")
    if b.tzsp_unread:
        from ..capture.decode import tzsp_note
        stats.warn(f"{name}: {tzsp_note(b.tzsp_unread)}")
    if b.mpls_misread:
        k = b.mpls_misread
        stats.warn(f"{name}: {k} MPLS frame{'s' if k != 1 else ''} whose payload tshark reads as an "
                   "IPv4 header of a bogus length (most likely an Ethernet pseudowire without "
                   "control word whose destination MAC begins with 4) could not be read by this "
                   "engine: the builtin engine (the default, without --engine tshark) reads them")
    if b.mpls_unread:
        k = b.mpls_unread
        stats.warn(f"{name}: {mpls_unread_note(k)}")
    if b.loop_unread:
        k = b.loop_unread
        stats.warn(f"{name}: {k} loopback frame{'s' if k != 1 else ''} of an address family tshark "
                   f"does not read as IP ({loop_families_text(b.loop_families)}) could not be read by "
                   "this engine: the builtin engine (the default, without --engine tshark) reads them")
    if b.v4_as_v6:
        k = b.v4_as_v6
        stats.warn(f"{name}: {k} frame{'s' if k != 1 else ''} of the raw IPv6 link type (229) "
                   f"{'hold' if k != 1 else 'holds'} an IPv4 packet, which tshark reads as a "
                   f"malformed IPv6 header: {'they are' if k != 1 else 'it is'} missing from the "
                   "flows of this engine; the builtin engine (the default, without --engine "
                   "tshark) reads them by their version nibble")
    if b.damaged_marked or b.fcs_mismatch:
        from ..capture.decode import damaged_note
        stats.warn(f"{name}: {damaged_note(b.damaged_marked, b.fcs_mismatch)}")
    if b.bad_reset_sum:     # (in the builtin decoder's order: after the damaged frames)
        from ..capture.decode import bad_reset_sum_note
        stats.warn(f"{name}: {bad_reset_sum_note(b.bad_reset_sum)}")
    k = b.other_malformed
    if k > 0:               # (the builtin decoder's line: capture.decode.DecodeCounters.warnings)
        stats.warn(f"{name}: decode: {k} {'frame' if k == 1 else 'frames'} too short or inconsistent "
                   "to decode (malformed) skipped")
    if b.frag.overlapping:     # (the builtin decoder's lines: capture.decode.DecodeCounters)
        stats.warn(f"{name}: decode: {b.frag.overlapping} IP datagrams had overlapping fragments "
                   "(first copy of each byte kept)")
    if b.frag.duplicates:
        stats.warn(f"{name}: decode: {b.frag.duplicates} duplicate IP fragments ignored")
    if b.incomplete:
        stats.warn(f"{name}: decode: {b.incomplete} IP fragments could not be reassembled "
                   "(kept as one row each; their datagrams never arrived whole, so nothing in "
                   "them is read as DNS, TLS or HTTP)")
    if b.no_ts:
        what = "packets in Simple Packet Blocks" if _is_pcapng(p) else "frames"
        stats.warn(f"{name}: {no_timestamp_note(b.no_ts, b.records - b.not_packets, what)}")
    out = b.packets(stats)
    if b.tunnels:
        from ..capture.decode import tunnel_note
        stats.warn(f"{name}: {tunnel_note(b.tunnels)}")
    from ..capture.decode import esp_count
    esp = esp_count(out.cols, out.buf)
    if esp:
        from ..capture.decode import esp_note
        stats.warn(f"{name}: {esp_note(esp)}")
    if b.zero_headers:
        if _is_pcapng(p):
            stats.empty_records += b.zero_headers
        else:
            from ..capture.files import zero_note
            stats.warn(zero_note(name, b.zero_headers, 16))
    stats.warn_cut(name)
    stats.warn_empty_records(name)
    if not b.records and rc == 0:
        stats.warn_empty(name)
    return out


def _read_copy(exe: str, p: Path, name: str, have: int, why: str,
               fcs_overlong: bool = False, fcs_absent: bool = False,
               loop_families: Mapping[int, int] | None = None, odd_fcs: bool = False) -> Packets | None:
    """tshark stopped after ``have`` frames (``why``: its message): dissect the copy of the
    records the built-in reader reads (:func:`_readable_copy`) when it holds more; None when it
    does not, or when tshark cannot read the copy to its end either. ``fcs_overlong``: tshark
    read the file to its end, but records have an FCS length longer than themselves: dissect the
    copy when the built-in reader finds such records (else None). ``fcs_absent``: tshark found
    frames whose FCS does not match: dissect the copy when the built-in decoder reads some of
    them without the FCS their file claims (a wrong claim: break-it 27 F3), the claim dropped
    for those (else None). ``loop_families``: tshark read BSD loopback frames of these address
    families as no IP (:attr:`PacketBuilder.loop_families`): dissect the copy, their headers
    written as Wireshark reads the family the builtin decoder reads (:func:`_loop_header`),
    when the built-in reader finds such frames (else None). ``odd_fcs``: the pcap header's FCS
    length is none a link layer has (:func:`~kscc_traffic.capture.files.odd_fcs_words`): dissect
    the copy, which has no FCS claim, as the builtin decoder reads the frames."""
    import tempfile
    fd, tmp = tempfile.mkstemp(prefix="kscc-traffic-", suffix=".pcapng")
    os.close(fd)
    try:
        copied = _readable_copy(p, name, have, Path(tmp), fcs_overlong, fcs_absent,
                                bool(loop_families), odd_fcs)
        if copied is None:
            return None
        rstats, absent, absent2 = copied
        b, rc, msg = _dissect(exe, Path(tmp))
        if rc != 0 or b.records != rstats.records:
            return None
    finally:
        os.unlink(tmp)
    cut = ReadStats(records=rstats.records, cut_frames=rstats.cut_frames, cut_caplen=rstats.cut_caplen,
                    empty_records=rstats.empty_records, fcs_short=rstats.fcs_short)
    cut.warn_cut(name)              # (said again below, with tshark's count)
    cut.warn_empty_records(name)
    stats = ReadStats(records=b.records, bytes_read=p.stat().st_size, malformed=rstats.malformed,
                      skipped_records=rstats.skipped_records, skipped_bytes=rstats.skipped_bytes,
                      damage_offset=rstats.damage_offset, end_ns=rstats.end_ns)
    for line in rstats.warnings:
        if line not in cut.warnings:
            stats.warn(line)
    if fcs_absent:
        from ..capture.decode import fcs_absent_note
        if absent - absent2:
            stats.warn(f"{name}: {fcs_absent_note(absent - absent2)}")
        if absent2:
            stats.warn(f"{name}: {fcs_absent_note(absent2, two=True)}")
        stats.warn(f"{name}: tshark {'checks' if absent - absent2 else 'takes off'} the FCS the file claims on those frames: it dissected "
                   f"instead a copy of the {b.records} records the built-in reader reads in the file, "
                   "without that claim for them, so both engines read them")
        return _finish(b, stats, p, name, rc)
    if loop_families:
        k = absent
        stats.warn(f"{name}: tshark does not read the address family of {k} loopback frame{'s' if k != 1 else ''} "
                   f"as IP ({loop_families_text(loop_families)}): it dissected instead a copy of the "
                   f"{b.records} records the built-in reader reads in the file, with the family written as "
                   "Wireshark reads it (2 for IPv4, 24 for IPv6; big-endian under LINKTYPE_LOOP), so both "
                   "engines read them")
        return _finish(b, stats, p, name, rc)
    if odd_fcs:
        stats.warn(f"{name}: tshark reads the frames by that FCS length (some then fail its check): it "
                   f"dissected instead a copy of the {b.records} records the built-in reader reads in the "
                   "file, without the claim, so both engines read them")
        return _finish(b, stats, p, name, rc)
    if fcs_overlong:
        stats.warn(f"{name}: tshark reads the frames whose FCS length is longer than themselves as "
                   f"malformed: it dissected instead a copy of the {b.records} records the built-in "
                   "reader reads in the file, without that FCS length, so both engines read them")
        return _finish(b, stats, p, name, rc)
    lost = have and f"after {have} frame{'s' if have != 1 else ''}" or "at its first frame"
    if why.startswith("(") and why.endswith(")"):
        why = why[1:-1]
    said = ("what that reader skipped is said above" if stats.warnings else
            "that reader reads the file whole, skipping nothing")
    stats.warn(f"{name}: tshark stopped reading {lost}: {why}; it dissected instead a copy of "
               f"the {b.records} records the built-in reader reads in the file ({said})")
    return _finish(b, stats, p, name, rc)


# ---------------------------------------------------------------------------------- pyshark
def _walk(node, out: dict[str, list[str]]) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k.endswith("_raw") or k == "filtered":
                continue
            if isinstance(v, dict):
                _walk(v, out)
            elif isinstance(v, list):
                for item in v:
                    if isinstance(item, dict):
                        _walk(item, out)
                    elif k in _WANTED and not isinstance(item, list):
                        out.setdefault(k, []).append(str(item))
            elif k in _WANTED:
                out.setdefault(k, []).append(str(v))


def fields_from_json_layers(layers: Iterable[tuple[str, object]]) -> tuple[list[str], dict[str, list[str]]]:
    """Flatten tshark JSON layers (``-T json``; pyshark ``JsonLayer._all_fields`` dicts, in
    protocol order) into (``frame.protocols`` list, field name -> occurrences in tree order),
    the input of :meth:`PacketBuilder.add`.

    :param layers: (layer name, layer dict or list of dicts for a repeated layer) pairs;
        the ``frame`` layer must be among them.
    """
    out: dict[str, list[str]] = {}
    for _, d in layers:
        _walk(d, out)
    protos = out.get("frame.protocols", [""])[0].split(":")
    return [p for p in protos if p], out
