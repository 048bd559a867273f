"""A slow, simple reference for :func:`kscc_traffic.capture.decode.decode`, built on scapy.

For each frame it asks scapy to dissect the bytes by link type and returns the core fields the
decoder must agree on::

    {frame index: (ts_ns, src, dst, proto, sport, dport, tcp_flags, ip_len)}

``src``/``dst`` as text (IPv4 dotted, IPv6 compressed); ports -1 when absent; ``tcp_flags`` with
the NS bit as 0x100 (scapy's 9-bit flags field).

What the reference does itself, on top of scapy, because scapy's dissection does not do it:

- DLT_NULL: the 4-byte address family is in the *capturing host's* byte order; scapy's
  ``Loopback`` reads it little-endian only, so big-endian files would come out as Raw;
- IPv4 fragments are reassembled (scapy dissects packets one at a time): the completed datagram
  is rebuilt from the first fragment's header and dissected again by scapy, and reported at the
  frame of the fragment that completed it; fragments never completed are reported one by one;
- a transport header cut by the snaplen is left as Raw by scapy: ports (and TCP flags) are read
  from the first captured bytes, which is the decoder's documented rule for cut headers;
- tunnels (GRE, ERSPAN, VXLAN, Geneve, L2TP, IP-in-IP, MPLS pseudowires): scapy dissects
  through them (``scapy.contrib`` erspan/geneve/mpls loaded); the *innermost* IP layer is
  reported, as the decoder emits the inner packet;
- Teredo (RFC 4380): scapy leaves UDP port 3544 as Raw; the reference reads the optional
  authentication header and origin indication itself and dissects the IPv6 packet after them when
  it fills the rest of the UDP datagram exactly (the decoder's rule against taking other UDP 3544
  traffic for Teredo);
- TZSP (UDP port 37008; Wireshark's packet-tzsp.c): scapy leaves it as Raw (unless
  ``scapy.contrib.tzsp`` was loaded); the reference reads the header itself (version 1, type 0
  or 1, the tagged fields to the end tag) and dissects the frame after it when it is Ethernet
  (encapsulation 1) or raw IP (7), for a datagram to 37008; one from 37008 to another port only
  when that frame holds an IP packet whose length fits in the datagram (the decoder's rule
  against taking a client's ephemeral port 37008 for TZSP); other encapsulations stay UDP;
- 802.11 A-MSDU (QoS control "A-MSDU present"): scapy reads the body as one LLC header; the
  reference walks the subframes itself (DA, SA, 2-byte big-endian length, LLC/SNAP + packet,
  padded to 4 bytes but the last) and dissects each as LLC. A frame that holds several packets
  has them under the keys ``i``, ``(i, 1)``, ``(i, 2)`` ... (:func:`decoded_fields` keys its rows
  alike).

:func:`link_reference` gives ``(vlan, l2_bcast)`` per Ethernet frame: of the link layer that
carried the reported IP layer (the last Ethernet header before it with no IP layer in between and
its 802.1Q/802.1ad tags; none for a tunnel that carries IP directly: ``(0, False)``).

Also here: :func:`frames_from_records` (Frames from ``(ts_ns, linktype, bytes)`` tuples or scapy
packets) and :func:`read_capture` (``read_frames`` when available, else scapy's raw readers).
"""
from __future__ import annotations

import ipaddress
import struct
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from kscc_traffic.capture.frames import Frames

TS_DEFAULT = 1_700_000_000_000_000_000


def frames_from_records(records: Iterable[Any]) -> Frames:
    """Build Frames from ``(ts_ns, linktype, data)`` tuples, or scapy packets (linktype taken
    from scapy's table for the packet's first layer, ts from ``pkt.time``); one buffer."""
    S = _scapy()
    linktypes = {S.Ether: 1, S.CookedLinux: 113, S.CookedLinuxV2: 276, S.Loopback: 0,
                 S.IP: 101, S.IPv6: 101, S.RadioTap: 127, S.Dot11: 105, S.PPP: 9}
    recs: list[tuple[int, int, bytes]] = []
    for k, r in enumerate(records):
        if isinstance(r, tuple):
            recs.append((int(r[0]), int(r[1]), bytes(r[2])))
        else:
            recs.append((TS_DEFAULT + k * 1000, linktypes[type(r)], bytes(r)))
    lens = np.array([len(r[2]) for r in recs], np.int64)
    off = np.zeros(len(recs), np.int64)
    if len(recs):
        off[1:] = np.cumsum(lens)[:-1]
    return Frames(b"".join(r[2] for r in recs), np.array([r[0] for r in recs], np.int64),
                  np.array([r[1] for r in recs], np.int32), off, lens.astype(np.int32),
                  lens.astype(np.int32))


def read_capture(path: str | Path) -> Frames:
    """Frames of a capture file: the project's reader if present, else scapy's raw readers."""
    try:
        from kscc_traffic.capture.files import read_frames
    except ImportError:     # files.py not written yet
        return _scapy_read(path)
    return read_frames(path)


def _scapy_read(path: str | Path) -> Frames:
    from scapy.utils import RawPcapNgReader, RawPcapReader

    with open(path, "rb") as f:
        magic = f.read(4)
    recs = []
    try:
        if magic == b"\x0a\x0d\x0d\x0a":
            for data, meta in RawPcapNgReader(str(path)):
                ts = ((meta.tshigh << 32) | meta.tslow) * 10**9 // meta.tsresol
                recs.append((ts, meta.linktype, data))
        else:
            rd = RawPcapReader(str(path))
            for data, meta in rd:
                recs.append((meta.sec * 10**9 + meta.usec * (1 if rd.nano else 1000),
                             rd.linktype, data))
    except Exception:       # damaged file: keep what was read
        pass
    return frames_from_records(recs)


# ---------------------------------------------------------------------------- dissection
def _scapy():
    import scapy.all as S
    from scapy.contrib.erspan import ERSPAN  # noqa: F401  (binds GRE 0x88be/0x22eb -> ERSPAN)
    from scapy.contrib.geneve import GENEVE  # noqa: F401  (binds UDP 6081 -> Geneve)
    from scapy.contrib.mpls import MPLS  # noqa: F401  (binds Ether 0x8847 -> MPLS -> IP)
    return S


TEREDO_PORT = 3544


def _teredo(udp: Any) -> Any:
    """The IPv6 packet a Teredo UDP datagram carries (RFC 4380 §5.1.1), or None.

    Authentication header: 0x0001, ID-len, AU-len, client identifier, authentication value,
    8-byte nonce, confirmation byte; origin indication: 0x0000, port, address (8 bytes); then
    the IPv6 packet, which must fill the rest of the datagram.
    """
    S = _scapy()
    data = bytes(udp.payload)                   # as captured
    n = udp.len - 8 if udp.len >= 8 else len(data)      # the datagram's payload, from its header
    p = 0
    if data[:2] == b"\x00\x01" and len(data) >= 4:
        p = 13 + data[2] + data[3]
    if data[p:p + 2] == b"\x00\x00" and len(data) - p >= 8:
        p += 8
    if len(data) - p < 40 or data[p] >> 4 != 6 \
            or 40 + struct.unpack("!H", data[p + 4:p + 6])[0] != n - p:
        return None
    return S.IPv6(data[p:n])


TZSP_PORT = 37008


def _tzsp(udp: Any) -> Any:
    """The frame a TZSP datagram carries, dissected (Ether or IP/IPv6), or None."""
    S = _scapy()
    data = bytes(udp.payload)
    n = min(len(data), udp.len - 8) if udp.len >= 8 else len(data)
    if n < 5 or data[0] != 1 or data[1] > 1:
        return None
    encap = struct.unpack("!H", data[2:4])[0]
    p = 4
    while True:
        if p >= n:
            return None
        if data[p] == 1:
            p += 1
            break
        p += 1 if data[p] == 0 else 2 + (data[p + 1] if p + 1 < n else 255)
    if p > n or encap not in (1, 7):
        return None
    frame = data[p:n]
    inner = S.Ether(frame) if encap == 1 else S.IPv46(frame) if frame[:1] and frame[0] >> 4 in (4, 6) else None
    if inner is None or udp.dport == TZSP_PORT:
        return inner
    ip, room = inner, n - p
    while type(ip) in (S.Ether, S.Dot1Q, S.Dot1AD):
        room -= 14 if type(ip) is S.Ether else 4
        ip = ip.payload
    if type(ip) is S.IP:
        return inner if 20 <= ip.ihl * 4 <= ip.len <= room else None
    if type(ip) is S.IPv6:
        return inner if ip.plen and 40 + ip.plen <= room else None
    return None


def _dissect(lt: int, data: bytes) -> Any:
    S = _scapy()
    if lt == 0:
        if len(data) < 4:
            return None
        fam = data[0] | data[3]
        if data[1] or data[2] or (data[0] and data[3]):
            return None
        if fam == 2:
            return S.IP(data[4:])
        if fam in (10, 23, 24, 28, 30):
            return S.IPv6(data[4:])
        return None
    if lt in (12, 14):
        return S.IPv46(data)
    cls = S.conf.l2types.get(lt)
    return cls(data) if cls is not None else None


def _inner_ip(pkt: Any) -> Any:
    """The innermost IP/IPv6 layer that is not an ICMP-quoted header.

    None for a tunnel whose payload is not IP (PPP LCP/IPCP in PPTP GRE or L2TP, a GRE
    keepalive ...): the decoder counts such frames as ``non_ip`` and never emits the outer
    header of a tunnel, so there is no row to compare with.
    """
    return _walk(pkt)[0]


def _walk(pkt: Any) -> tuple[Any, tuple[list[int], bool]]:
    """(innermost IP layer as :func:`_inner_ip`, (VLAN tags, broadcast destination) of the
    link layer that carried it)."""
    S = _scapy()
    from scapy.contrib.erspan import ERSPAN
    from scapy.contrib.geneve import GENEVE
    from scapy.layers.l2tp import L2TP
    from scapy.layers.vxlan import VXLAN
    tunnels = (S.GRE, L2TP, VXLAN, ERSPAN, GENEVE)
    found, found_link = None, ([], False)
    link: tuple[list[int], bool] = ([], False)
    layer = pkt
    while layer is not None and not isinstance(layer, S.NoPayload):
        if type(layer) in (S.IP, S.IPv6):
            found, found_link = layer, link
            link = ([], False)                  # what an IP layer carries has no link layer
        elif type(layer) in (S.Ether, S.Dot3):
            link = ([], layer.dst.lower() == "ff:ff:ff:ff:ff:ff")
        elif type(layer) in (S.Dot1Q, S.Dot1AD):
            link = (link[0] + [layer.vlan], link[1])
        elif isinstance(layer, tunnels):
            ppp = layer.payload.payload if isinstance(layer.payload, S.HDLC) else layer.payload
            if isinstance(layer, L2TP) and (bytes(layer)[:1] >= b"\x80" or (
                    isinstance(ppp, S.PPP) and ppp.proto not in (0x21, 0x57))):
                pass        # an L2TP control message, or PPP carrying no IP (LCP, IPCP, ...): plain UDP
            else:
                found = None
        elif (type(layer) is S.UDP and TEREDO_PORT in (layer.sport, layer.dport)
              and type(layer.payload) is S.Raw):
            inner = _teredo(layer)
            if inner is not None:
                layer = inner
                continue
        elif (type(layer) is S.UDP and TZSP_PORT in (layer.sport, layer.dport)
              and type(layer.payload) is S.Raw):
            inner = _tzsp(layer)
            if inner is not None:
                found = None                    # (a tunnel: its packet, or none)
                link = ([], False)
                layer = inner
                continue
        layer = layer.payload
    return found, found_link


def _upper(ip: Any) -> tuple[int, Any]:
    """(protocol number, upper layer) of an IP/IPv6 layer, walking IPv6 extension headers."""
    S = _scapy()
    if type(ip) is S.IP:
        return ip.proto, ip.payload
    ext = (S.IPv6ExtHdrHopByHop, S.IPv6ExtHdrDestOpt, S.IPv6ExtHdrRouting,
           S.IPv6ExtHdrFragment, S.AH, S.IPv6ExtHdrSegmentRouting)
    nh, layer = ip.nh, ip.payload
    while isinstance(layer, ext):
        nh, layer = layer.nh, layer.payload
    return nh, layer


def _fields(ts: int, ip: Any) -> tuple:
    S = _scapy()
    proto, up = _upper(ip)
    sport = dport = -1
    flags = 0
    if type(ip) is S.IP:
        ip_len = ip.len
        first = ip.frag == 0
    else:
        ip_len = 40 + ip.plen
        fh = ip.getlayer(S.IPv6ExtHdrFragment)
        first = fh is None or fh.offset == 0
    if proto == 6 and isinstance(up, S.TCP):
        sport, dport, flags = up.sport, up.dport, int(up.flags)
    elif proto == 17 and isinstance(up, S.UDP):
        sport, dport = up.sport, up.dport
    elif proto in (6, 17) and first and isinstance(up, S.Raw):
        raw = bytes(up)                                 # transport header cut by the snaplen
        if len(raw) >= 4:
            sport, dport = struct.unpack("!HH", raw[:4])
        if proto == 6 and len(raw) >= 16:      # (Wireshark's rule: flags from 16 bytes on)
            flags = (raw[12] & 1) << 8 | raw[13]
    src, dst = str(ipaddress.ip_address(ip.src)), str(ipaddress.ip_address(ip.dst))
    if type(ip) is not S.IP:
        dst = _final_destination(ip) or dst
        src = _home_address(ip) or src
    return (ts, src, dst, proto, sport, dport, flags, ip_len)


def _home_address(ip: Any) -> str | None:
    """The home address of a Mobile IPv6 Home Address option (RFC 6275 §6.3) in a Destination
    Options header, the source the receiver's transport layer sees; None otherwise."""
    S = _scapy()
    do = ip.getlayer(S.IPv6ExtHdrDestOpt)
    for opt in (do.options if do is not None else ()):
        if isinstance(opt, S.HAO):
            return str(ipaddress.ip_address(opt.hoa))
    return None


def _final_destination(ip: Any) -> str | None:
    """The final destination an IPv6 routing header with segments left names (type 0: its last
    address; type 2, Mobile IPv6: its home address; type 4, SRv6: Segment List[0]), as Zeek
    keys the connection; None otherwise."""
    S = _scapy()
    for cls in (S.IPv6ExtHdrRouting, S.IPv6ExtHdrSegmentRouting):
        rh = ip.getlayer(cls)
        if rh is None or not rh.segleft or not rh.addresses:
            continue
        if cls is S.IPv6ExtHdrSegmentRouting:
            return str(ipaddress.ip_address(rh.addresses[0]))
        if rh.type == 0:
            return str(ipaddress.ip_address(rh.addresses[-1]))
        if rh.type == 2 and rh.segleft == 1 and len(rh.addresses) == 1:   # Mobile IPv6
            return str(ipaddress.ip_address(rh.addresses[0]))
    return None


def _bad_tcp_offset(ip: Any) -> bool:
    """A TCP header whose data offset is below 5 (shorter than the fixed 20 bytes)."""
    S = _scapy()
    proto, up = _upper(ip)
    return proto == 6 and isinstance(up, S.TCP) and up.dataofs is not None and up.dataofs < 5


def reference(frames: Frames) -> dict[int, tuple]:
    """Core fields per frame index, for the frames scapy sees an IP datagram in."""
    S = _scapy()
    out: dict[int, tuple] = {}
    pending: dict[tuple, list] = {}
    for i in range(len(frames)):
        ts = int(frames.ts_ns[i])
        try:
            pkt = _dissect(int(frames.linktype[i]), frames.data(i))
        except Exception:
            continue
        subs = _amsdu(pkt) if pkt is not None else None
        if subs is not None:                # several packets: no fragments in these tests
            ips = [ip for ip in map(_inner_ip, subs) if ip is not None]
            for k, ip in enumerate(ips):
                out[i if k == 0 else (i, k)] = _fields(ts, ip)
            continue
        ip = _inner_ip(pkt) if pkt is not None else None
        if ip is None:
            continue
        if type(ip) is S.IP and (ip.flags.MF or ip.frag):
            key = (ip.src, ip.dst, ip.proto, ip.id)
            frags = pending.setdefault(key, [])
            data = bytes(ip.payload)[:max(0, ip.len - ip.ihl * 4)]
            frags.append((i, ts, ip, ip.frag * 8, bool(ip.flags.MF), data))
            whole = _reassemble(frags)
            if whole is not None:
                del pending[key]
                if not _bad_tcp_offset(whole):
                    out[i] = _fields(ts, whole)
            continue
        if _bad_tcp_offset(ip):             # (malformed: skipped, as Zeek and Wireshark)
            continue
        out[i] = _fields(ts, ip)
    for frags in pending.values():          # never completed: one row per fragment
        for i, ts, ip, *_ in frags:
            out[i] = _fields(ts, ip)
    return out


def _amsdu(pkt: Any) -> list | None:
    """The subframes of an 802.11 A-MSDU data frame, each dissected from its LLC header on (a
    subframe running past the frame ends the walk); None when ``pkt`` is no A-MSDU."""
    S = _scapy()
    qos = pkt.getlayer(S.Dot11QoS)
    if qos is None or not qos.A_MSDU_Present or pkt[S.Dot11].FCfield & 0x40:
        return None
    body = bytes(qos.payload)          # (a trailing FCS is shorter than a subframe header)
    subs, p = [], 0
    while len(body) - p >= 14:
        n = struct.unpack("!H", body[p + 12:p + 14])[0]
        if p + 14 + n > len(body):
            break
        subs.append(S.LLC(body[p + 14:p + 14 + n]))
        p += (14 + n + 3) & ~3
    return subs


def link_reference(frames: Frames) -> dict[int, tuple[int, bool]]:
    """``(vlan, l2_bcast)`` per Ethernet frame (link type 1) whose IP datagram scapy finds and
    is not a fragment; ``vlan`` encoded as the decoder's column
    (:func:`kscc_traffic.capture._slowpath.vlan_value`)."""
    from kscc_traffic.capture._slowpath import vlan_value
    S = _scapy()
    out: dict[int, tuple[int, bool]] = {}
    for i in range(len(frames)):
        if int(frames.linktype[i]) != 1:
            continue
        try:
            ip, (tags, bcast) = _walk(_dissect(1, frames.data(i)))
        except Exception:
            continue
        if ip is None:
            continue
        if type(ip) is S.IP and (ip.flags.MF or ip.frag):
            continue
        if type(ip) is S.IPv6 and ip.getlayer(S.IPv6ExtHdrFragment) is not None:
            continue
        if _bad_tcp_offset(ip):
            continue
        out[i] = (vlan_value(tags), bool(bcast))
    return out


def link_fields(packets: Any) -> dict[int, tuple[int, bool]]:
    """``(vlan, l2_bcast)`` from a :class:`Packets`, keyed by frame index."""
    c = packets.cols
    return {int(f): (int(v), bool(b)) for f, v, b in zip(c["frame"], c["vlan"], c["l2_bcast"])}


def _reassemble(frags: list) -> Any:
    S = _scapy()
    last = [f for f in frags if not f[4]]
    firsts = [f for f in frags if f[3] == 0]
    if not last or not firsts:
        return None
    total = last[0][3] + len(last[0][5])
    payload = bytearray(total)
    covered = 0
    for _, _, _, off, _, data in sorted(frags, key=lambda f: f[3]):
        if off > covered:
            return None
        payload[off:off + len(data)] = data
        covered = max(covered, off + len(data))
    if covered < total:
        return None
    head = firsts[0][2].copy()
    head.remove_payload()
    head.flags, head.frag, head.chksum = 0, 0, None
    head.len = head.ihl * 4 + total
    return S.IP(bytes(head) + bytes(payload))


def decoded_fields(packets: Any) -> dict[int, tuple]:
    """The same core fields from a :class:`Packets`, keyed by frame index."""
    c = packets.cols

    def addr(hi: int, lo: int) -> str:
        if hi == 0 and lo >> 32 == 0xFFFF:
            return str(ipaddress.IPv4Address(lo & 0xFFFFFFFF))
        return str(ipaddress.IPv6Address(hi << 64 | lo))

    out: dict = {}
    seen: dict[int, int] = {}
    for k in range(len(packets)):
        f = int(c["frame"][k])
        seen[f] = seen.get(f, -1) + 1
        out[f if not seen[f] else (f, seen[f])] = (
            int(c["ts_ns"][k]), addr(int(c["src_hi"][k]), int(c["src_lo"][k])),
            addr(int(c["dst_hi"][k]), int(c["dst_lo"][k])), int(c["proto"][k]),
            int(c["sport"][k]), int(c["dport"][k]), int(c["tcp_flags"][k]),
            int(c["ip_len"][k]))
    return out
