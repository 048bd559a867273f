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
- pcapng block (§3.1), at a 4-byte aligned file offset: a known block type (SHB, IDB, EPB, SPB,
  NRB, ISB, DSB, custom, obsolete PB), a length of at least 12 bytes, a multiple of 4 and at
  most the reader's bound, repeated after its body (the trailing length); an EPB or obsolete PB
  naming an interface the section defined.

Only the bytes given are looked at; the result tells the caller to read more when a candidate's
run goes past them. The first test is done with numpy over every offset of a window, so a large
damaged region costs little; only the offsets that pass it are followed in Python.
"""
from __future__ import annotations

import struct

import numpy as np

__all__ = ["CHAIN", "WINDOW_S", "find_pcap_record", "find_pcapng_block", "MORE"]

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
                      at_eof: bool):
    """The offset in ``data`` (at or after ``start``, on a 4-byte boundary of the file whose
    offset ``data[0]`` has is ``base``) where whole pcapng blocks start again. ``interfaces``:
    how many the current section defined (an EPB must name one of them). Returns as
    :func:`find_pcap_record`."""
    buf = np.frombuffer(data, np.uint8)
    end = len(buf)
    word = struct.Struct((">" if big else "<") + "I").unpack_from

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

    def run_from(p: int):
        for _ in range(CHAIN):
            if p == end:
                return True if at_eof else None
            r = block_ok(p)
            if not r:
                return r if r is not None or not at_eof else False
            if u32(data, p) == 0x0A0D0D0A:
                return True        # (a new section: its blocks are the walk's to check)
            p += u32(data, p + 4)
        return True

    pos = first
    while pos + 12 <= end:
        stop = min(end - 11, pos + _STEP)
        offs = np.arange(pos, stop, 4)
        if not len(offs):
            break
        t = _u32_at(buf, offs, big)
        n = _u32_at(buf, offs + 4, big)
        shb = (buf[offs] == 0x0A) & (buf[offs + 1] == 0x0D) & (buf[offs + 2] == 0x0D) & (buf[offs + 3] == 0x0A)
        ok = (np.isin(t, _BLOCK_TYPES) & (n >= 12) & (n % 4 == 0) & (n <= bound)) | shb
        hit = _first_run(offs[ok], run_from)
        if hit is not None:
            return hit
        pos = int(offs[-1]) + 4
    if not at_eof:
        return max(first, end - 11 - (-(base + end - 11) % 4) if end > 11 else first), MORE
    return None, None
