"""Finding the next whole record after damage in a pcap or pcapng file.

A capture damaged in the middle (a page of zeros written by a crash, a torn copy, bytes
overwritten) is readable again after the damage: the records there are whole, only their start
is lost. :func:`find_pcap_record` and :func:`find_pcapng_block` look for that start, as
``pcapfix`` does: an offset where a run of :data:`CHAIN` plausible records (or blocks) follow
one another, each starting where the one before ends (or the run reaches the end of the file).

- pcap record header (16 bytes, 24 in the modified format): a time within :data:`WINDOW_S`
  of the last record read before the damage (any nonzero time when there was none), the
  fraction below a second (µs or ns as the file says), ``0 < caplen <= `` the reader's bound
  and ``caplen <= origlen <= 16 MiB``.
- pcapng block (§3.1): a known block type (SHB, IDB, EPB, SPB, NRB, ISB, DSB, custom, obsolete
  PB), a length of at least 12 bytes, a multiple of 4 and at most the reader's bound, repeated
  after its body (the trailing length); an EPB or obsolete PB naming an interface the section
  defined. At a 4-byte aligned file offset, as the format puts blocks; at any other offset (a
  torn copy that lost or added a number of bytes that is not a multiple of 4, as ``pcapfix``
  finds blocks byte by byte) the run must also begin with a block with a time and each block
  with a time must have one within :data:`WINDOW_S` of the last record read, on an interface
  with a usable clock.

Only the bytes given are looked at; the result tells the caller to read more when a candidate's
run goes past them. The first test is done with numpy over every offset of a window, so a large
damaged region costs little; only the offsets that pass it are followed in Python.
"""
from __future__ import annotations

import struct

import numpy as np

from ._slowpath import AF_INET6

__all__ = ["CHAIN", "WINDOW_S", "find_pcap_record", "pcap_records_at", "find_pcapng_block", "MORE", "headers_proven"]

#: plausible records that must follow one another from a candidate offset
CHAIN = 3
#: a record's time may be this far (seconds) from the last time read before the damage
WINDOW_S = 7 * 86400
#: bytes looked at per numpy pass
_STEP = 1 << 20
#: returned with an offset when the bytes given end before a candidate could be checked
MORE = "more"

_ORIGLEN_MAX = 16 << 20
#: pcapng block types a file may hold (§4, Appendix A; custom 0xBAD / 0x40000BAD)
_BLOCK_TYPES = (0x0A0D0D0A, 1, 2, 3, 4, 5, 6, 0x0BAD, 0x40000BAD, 9, 10)


def _u32_at(buf: np.ndarray, offs: np.ndarray, big: bool) -> np.ndarray:
    """The 32-bit words at byte offsets ``offs`` of ``buf`` (uint8), as int64."""
    b = [buf[offs + i].astype(np.int64) for i in range(4)]
    if big:
        return (b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]
    return b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)


def _first_run(candidates: np.ndarray, run_from):
    """The first candidate offset a run starts from, ``(offset, None)``; ``(offset, MORE)`` when
    its run needs bytes not given yet; None when no candidate is one."""
    for p in candidates.tolist():
        r = run_from(p)
        if r:
            return p, None
        if r is None:
            return p, MORE
    return None


def _pcap_run(data, *, big: bool, hdr_len: int, ns: bool, bound: int, last_sec: int | None, at_eof: bool):
    """The test of :func:`find_pcap_record` at one offset: ``run_from(p)`` is True when a run of
    :data:`CHAIN` plausible records (or records to the end of the file) starts at ``data[p]``,
    False when not, None when more bytes are needed to tell."""
    end = len(data)
    frac_max = 10**9 if ns else 10**6
    hdr = struct.Struct((">" if big else "<") + "IIII").unpack_from

    def plausible(sec, frac, cl, ol) -> bool:
        return (0 < cl <= bound and cl <= ol <= _ORIGLEN_MAX and frac < frac_max
                and (abs(sec - last_sec) <= WINDOW_S if last_sec is not None else sec != 0))

    def run_from(p: int):
        """True: a run of CHAIN records (or to the end of the file); False: no; None: more bytes needed."""
        for _ in range(CHAIN):
            if p == end:
                return True if at_eof else None
            if p + hdr_len > end:
                return None if not at_eof else False
            if not plausible(*hdr(data, p)):
                return False
            p += hdr_len + hdr(data, p)[2]
            if p > end:
                return None if not at_eof else False
        return True
    return run_from


def pcap_records_at(data, p: int, *, big: bool, hdr_len: int, ns: bool, bound: int,
                    last_sec: int | None, at_eof: bool) -> bool | None:
    """Whether whole pcap records in the byte order ``big`` start at ``data[p]``: a run of
    :data:`CHAIN` plausible records as :func:`find_pcap_record` judges them (True), not (False),
    or more bytes are needed to tell (None, only when ``at_eof`` is false)."""
    return _pcap_run(data, big=big, hdr_len=hdr_len, ns=ns, bound=bound, last_sec=last_sec, at_eof=at_eof)(p)


def find_pcap_record(data, start: int, *, big: bool, hdr_len: int, ns: bool, bound: int,
                     last_sec: int | None, at_eof: bool):
    """The offset in ``data`` (at or after ``start``) where whole pcap records start again.

    :returns: ``(offset, None)`` when found; ``(None, MORE)`` with ``offset`` replaced by where
        to look again once more bytes are read (``(keep_from, MORE)``) when a candidate's run goes
        past the end of ``data`` and ``at_eof`` is false; ``(None, None)`` when there is none.
    """
    buf = np.frombuffer(data, np.uint8)
    end = len(buf)
    frac_max = 10**9 if ns else 10**6
    run_from = _pcap_run(data, big=big, hdr_len=hdr_len, ns=ns, bound=bound, last_sec=last_sec, at_eof=at_eof)

    pos = start
    while pos + hdr_len <= end:
        stop = min(end - hdr_len + 1, pos + _STEP)
        offs = np.arange(pos, stop)
        sec, frac = _u32_at(buf, offs, big), _u32_at(buf, offs + 4, big)
        cl, ol = _u32_at(buf, offs + 8, big), _u32_at(buf, offs + 12, big)
        ok = (cl > 0) & (cl <= bound) & (cl <= ol) & (ol <= _ORIGLEN_MAX) & (frac < frac_max)
        ok &= (np.abs(sec - last_sec) <= WINDOW_S) if last_sec is not None else (sec != 0)
        hit = _first_run(offs[ok], run_from)
        if hit is not None:
            return hit
        pos = stop
    if not at_eof:
        return max(start, end - hdr_len + 1), MORE
    return None, None


def find_pcapng_block(data, start: int, base: int, *, big: bool, bound: int, interfaces: int,
                      at_eof: bool, clocks=None, last_sec: int | None = None):
    """The offset in ``data`` (at or after ``start``; the file offset of ``data[0]`` is ``base``)
    where whole pcapng blocks start again. ``interfaces``: how many the current section defined
    (an EPB must name one of them).

    Blocks start on 4-byte boundaries of the file (§3.1), and those offsets are tried with the
    checks of the module docstring. A torn copy that lost or added a number of bytes that is not
    a multiple of 4 leaves the blocks after it off that boundary: ``clocks`` given, every other
    offset is tried too, with more checks (such a start is not expected, so a run of random
    bytes must not pass for one): the run's first block is a Section Header Block or a block
    with a time (EPB, obsolete PB, ISB), and every block with a time in the run names an
    interface of the section with a usable clock, has a time within :data:`WINDOW_S` of
    ``last_sec`` (any time from 1 s on when None) and, for a packet block, a captured length
    that fits in it. The first offset in file order that passes its checks wins, whatever
    the boundary, so the result does not depend on how many bytes are given at a time.

    :param clocks: per interface of the current section, ``(ticks per second, if_tsoffset
        seconds)`` of its timestamps, or None for an interface that cannot be used; None (the
        default): 4-byte-aligned offsets only.
    :param last_sec: the time (epoch seconds) of the records read before the damage, or None.
    :returns: as :func:`find_pcap_record`.
    """
    end = len(data)
    word = struct.Struct((">" if big else "<") + "I").unpack_from
    timed = struct.Struct((">" if big else "<") + "III").unpack_from
    dt = np.dtype(">u4" if big else "<u4")

    def u32(b, o: int) -> int:
        return word(b, o)[0]

    first = start + (-(base + start) % 4)

    def block_ok(p: int):
        """True / False / None (more bytes needed) for the block at ``p``."""
        if p + 12 > end:
            return None
        t, n = u32(data, p), u32(data, p + 4)
        if t == 0x0A0D0D0A:
            # a Section Header Block: its own byte order (the magic at +8), length checked in it
            bom = bytes(data[p + 8:p + 12])
            order = "<" if bom == b"\x4d\x3c\x2b\x1a" else ">" if bom == b"\x1a\x2b\x3c\x4d" else None
            if order is None:
                return False
            n = struct.unpack_from(order + "I", data, p + 4)[0]
            if n < 28 or n % 4 or n > bound:
                return False
            if p + n > end:
                return None
            return struct.unpack_from(order + "I", data, p + n - 4)[0] == n
        if t not in _BLOCK_TYPES or n < 12 or n % 4 or n > bound:
            return False
        if p + n > end:
            return None
        if u32(data, p + n - 4) != n:
            return False
        if t in (6, 2) and n >= 16:
            ifid = u32(data, p + 8) & (0xFFFF if t == 2 else 0xFFFFFFFF)
            if ifid >= interfaces:
                return False
        return True

    def time_ok(p: int) -> bool:
        """(off the 4-byte boundary) the block at ``p``, whole and well framed, is a block with
        a time: interface, time and captured length plausible."""
        t, n = u32(data, p), u32(data, p + 4)
        if n < (32 if t != 5 else 24):
            return False
        ifid, hi, lo = timed(data, p + 8)
        if t == 2:
            ifid &= 0xFFFF
        clock = clocks[ifid] if ifid < min(interfaces, len(clocks)) else None
        if clock is None:
            return False
        sec = ((hi << 32) | lo) // clock[0] + clock[1]
        if not (abs(sec - last_sec) <= WINDOW_S if last_sec is not None else sec != 0):
            return False
        return t == 5 or u32(data, p + 20) <= n - 32

    def run_from(p: int):
        strict = (base + p) % 4 != 0
        for i in range(CHAIN):
            if p == end:
                return True if at_eof else None
            r = block_ok(p)
            if not r:
                return r if r is not None or not at_eof else False
            t = u32(data, p)
            if t == 0x0A0D0D0A:
                return True        # (a new section: its blocks are the walk's to check)
            if strict and (t in (2, 5, 6) and not time_ok(p) or i == 0 and t not in (2, 5, 6)):
                return False
            p += u32(data, p + 4)
        return True

    any_offset = clocks is not None
    types = np.array(_BLOCK_TYPES, np.uint32)
    timed_types = np.array((2, 5, 6), np.uint32)
    pos = start
    while pos + 12 <= end:
        stop = min(end - 11, pos + _STEP)       # offsets [pos, stop) are tried in this pass
        found = []
        for o0 in range(pos, min(pos + 4, stop)):
            aligned = (base + o0) % 4 == 0
            if not (aligned or any_offset):
                continue
            m = (stop - o0 + 3) // 4            # offsets o0, o0 + 4, … below stop
            w = np.frombuffer(data, dt, count=m + 1, offset=o0)
            t, n = w[:-1], w[1:]
            idx = np.flatnonzero((n >= 12) & (n & 3 == 0) & (n <= bound))
            idx = idx[np.isin(t[idx], types if aligned else timed_types)]
            shb = np.flatnonzero(t == 0x0A0D0D0A)
            found.append(o0 + 4 * np.union1d(idx, shb))
        offs = np.sort(np.concatenate(found)) if found else np.zeros(0, np.int64)
        hit = _first_run(offs, run_from)
        if hit is not None:
            return hit
        pos = stop
    if not at_eof:
        if any_offset:
            return max(start, end - 11), MORE
        return max(first, end - 11 - (-(base + end - 11) % 4) if end > 11 else first), MORE
    return None, None


#: Ethernet types of VLAN tags (802.1Q, 802.1ad, the older QinQ) read past to the network layer
_VLAN_TYPES = (0x8100, 0x88A8, 0x9100)


def _network_at(frame: bytes, linktype: int) -> tuple[int, int] | None:
    """``(offset, IP version)`` of the IPv4 or IPv6 header a frame of ``linktype`` carries
    directly (Ethernet with VLAN tags, raw IP, Linux cooked v1/v2, BSD loopback), or None."""
    n = len(frame)
    if linktype == 1:
        if n < 14:
            return None
        p, et = 14, int.from_bytes(frame[12:14], "big")
        while et in _VLAN_TYPES and p + 4 <= n:
            et, p = int.from_bytes(frame[p + 2:p + 4], "big"), p + 4
    elif linktype in (101, 12, 14, 228, 229):
        if not n:
            return None
        v = frame[0] >> 4
        return (0, v) if v in (4, 6) and (linktype < 228 or v == linktype - 224) else None
    elif linktype in (113, 276):
        p = 16 if linktype == 113 else 20
        if n < p:
            return None
        if int.from_bytes(frame[2:4] if linktype == 113 else frame[8:10], "big") == 824:
            return None                             # (nlmon, ARPHRD_NETLINK: never IP)
        et = int.from_bytes(frame[14:16] if linktype == 113 else frame[0:2], "big")
    elif linktype in (0, 108):
        if n < 4:
            return None
        af = int.from_bytes(frame[:4], "big" if linktype == 108 else "little")
        if linktype == 0 and af > 0xFFFF:         # (another host's order)
            af = int.from_bytes(frame[:4], "big")
        return (4, 4) if af == 2 else (4, 6) if af in AF_INET6 else None
    else:
        return None
    return (p, 4) if et == 0x0800 else (p, 6) if et == 0x86DD else None


def sum16(data) -> int:
    """The ones' complement sum (folded to 16 bits) of ``data`` as big-endian 16-bit words."""
    b = bytes(data)
    if len(b) % 2:
        b += b"\0"
    t = int(np.frombuffer(b, ">u2").sum(dtype=np.uint64)) if b else 0
    while t >> 16:
        t = (t & 0xFFFF) + (t >> 16)
    return t


def headers_proven(frame, linktype: int) -> bool:
    """Whether the checksums of a frame prove its addresses and protocol as captured, and its
    TCP or UDP header reads whole, for a record the walk finds just before damage
    (:mod:`.files`: analysed only when they do).

    IPv4: the header checksum is right (Zeek drops a packet whose checksum is not:
    ``bad_IP_checksum``) and a TCP or UDP header reads whole (a TCP data offset of 5 to 15
    words within the segment, a UDP length equal to the datagram's: bytes lost or added in it
    break them, 15 times in 16 for a TCP header, nearly always for a UDP one). A wrong TCP or
    UDP checksum does not leave the record out: the damage may lie in a field that changes
    nothing (a SYN's urgent pointer) or in the payload alone, and losing the packet would lose
    what the flow carried (its SYN, a client's first bytes). IPv6, which has no header
    checksum: the TCP, UDP or ICMPv6 checksum (its pseudo-header covers the addresses) is
    right, the packet not cut. False for anything else (other link types, no IP packet).
    Never used on an undamaged capture: a wrong checksum alone (offload) is no damage."""
    net = _network_at(frame, linktype & 0xFFFF)
    if net is None:
        return False
    p, v = net
    n = len(frame)
    if v == 4:
        if p + 20 > n or frame[p] >> 4 != 4:
            return False
        ihl = (frame[p] & 15) * 4
        total = int.from_bytes(frame[p + 2:p + 4], "big")
        if ihl < 20 or total < ihl or p + ihl > n or sum16(frame[p:p + ihl]) != 0xFFFF:
            return False
        proto, seg = frame[p + 9], total - ihl
        if int.from_bytes(frame[p + 6:p + 8], "big") & 0x3FFF or proto not in (6, 17):
            return True             # (a fragment, another protocol: the IPv4 header is what is checked)
        body = frame[p + ihl:p + total]
        if proto == 6:
            return seg >= 20 and len(body) >= 13 and 20 <= (body[12] >> 4) * 4 <= seg
        return seg >= 8 and len(body) >= 8 and int.from_bytes(body[4:6], "big") == seg
    if p + 40 > n or frame[p] >> 4 != 6:
        return False
    plen = int.from_bytes(frame[p + 4:p + 6], "big")
    if p + 40 + plen > n:
        return False
    proto, body = frame[p + 6], frame[p + 40:p + 40 + plen]
    if proto not in (6, 17, 58):
        return False
    pseudo = bytes(frame[p + 8:p + 40]) + plen.to_bytes(4, "big") + bytes((0, 0, 0, proto))
    return sum16(pseudo + bytes(body)) == 0xFFFF
