"""Frames: one row per capture record, in columns. See docs/architecture.md."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .stats import ReadStats

#: the LINKTYPE_* value in ``Frames.linktype`` (the bits above it are :data:`LT_FCS`,
#: :data:`LT_DAMAGED`, :data:`LT_FCS2`)
LT_MASK = 0xFFFF
#: the frame ends with a 4-byte FCS, as the file says: the pcap header's FCS bits, pcapng
#: ``if_fcslen`` 4 or the ``epb_flags`` FCS length 4 (the decoder checks it on Ethernet and
#: plain 802.11 frames)
LT_FCS = 1 << 16
#: the capture marks the frame damaged: pcapng ``epb_flags`` bit 24 (CRC error); the decoder
#: skips it and counts it
LT_DAMAGED = 1 << 17
#: the Ethernet frame ends with a 2-byte (16-bit) FCS, as the file says: the pcap header's FCS
#: length 1 (libpcap's ``LT_FCS_LENGTH``, in 16-bit units) or pcapng ``if_fcslen`` 2; the
#: decoder takes those 2 bytes off (not checked: no CRC-16 is defined for Ethernet), as
#: Wireshark does, except where the IP packet fills the frame (no room for them: the claim
#: is wrong for it)
LT_FCS2 = 1 << 18


@dataclass
class Frames:
    """Records of one capture file, in columns.

    ``buf`` holds the bytes the offsets point into. Columns (all the same length):

    - ``ts_ns`` int64: timestamp, epoch nanoseconds (exact, no float rounding)
    - ``linktype`` int32: LINKTYPE_* of the record's interface (pcapng: per interface) in the
      low 16 bits (:data:`LT_MASK`); above them what the file says of the frame: :data:`LT_FCS`
      (it ends with a 4-byte FCS), :data:`LT_DAMAGED` (the capture marks it damaged),
      :data:`LT_FCS2` (it ends with a 2-byte FCS)
    - ``offset`` int64: where the record's captured bytes start in ``buf``
    - ``caplen`` int32: captured bytes
    - ``wirelen`` int32: original length on the wire, bytes
    """

    buf: bytes | memoryview
    ts_ns: np.ndarray
    linktype: np.ndarray
    offset: np.ndarray
    caplen: np.ndarray
    wirelen: np.ndarray
    stats: ReadStats = field(default_factory=ReadStats)
    #: set by :func:`~kscc_traffic.capture.files.iter_frames` on the file's last chunk
    last: bool = False
    #: int64, one per record: its index among the capture's records (0-based), where the
    #: records are not a contiguous run of the capture (a chunked reader holding some back for
    #: the next chunk: :mod:`kscc_traffic.chunked`); None: not set (the decoder's ``frame`` is
    #: the index in these Frames either way)
    number: "np.ndarray | None" = None
    #: bytes at the start of ``buf`` (a ``bytearray``) before any record's, left free for the
    #: caller to fill (:func:`~kscc_traffic.capture.files.iter_frames`' ``room``); 0: none
    room: int = 0

    def __len__(self) -> int:
        return len(self.ts_ns)

    def data(self, i: int) -> bytes:
        """Captured bytes of record ``i``."""
        o = int(self.offset[i])
        return bytes(self.buf[o:o + int(self.caplen[i])])

    @classmethod
    def empty(cls, stats: ReadStats | None = None) -> "Frames":
        """A Frames object with no records."""
        return cls(b"", np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int64),
                   np.zeros(0, np.int32), np.zeros(0, np.int32), stats or ReadStats())


def concat_frames(parts: "list[Frames]", prefix=b"") -> Frames:
    """The records of ``parts`` one after the other, in one new buffer that starts with the bytes
    of ``prefix`` (bytes-like; no record points into them).

    Columns are joined in order and the offsets moved to the new buffer; ``stats`` and ``last`` are
    the last part's; ``number`` is joined when every part has it, else None. One part and no
    prefix: that part itself (no copy). Each part's whole ``buf`` is copied, so parts whose
    records are a few of a large buffer are best made to own theirs first.

    :raises ValueError: ``parts`` is empty.
    """
    if not parts:
        raise ValueError("concat_frames: no parts")
    if len(parts) == 1 and not len(prefix):
        return parts[0]
    bases, at = [], len(prefix)
    for p in parts:
        bases.append(at)
        at += len(p.buf)
    cat = np.concatenate
    numbers = [p.number for p in parts]
    return Frames(b"".join([prefix, *(p.buf for p in parts)]),
                  cat([p.ts_ns for p in parts]), cat([p.linktype for p in parts]),
                  cat([np.asarray(p.offset, np.int64) + b for p, b in zip(parts, bases)]),
                  cat([p.caplen for p in parts]), cat([p.wirelen for p in parts]),
                  parts[-1].stats, last=parts[-1].last,
                  number=cat(numbers) if all(n is not None for n in numbers) else None)
