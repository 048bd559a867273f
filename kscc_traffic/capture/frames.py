"""Frames: one row per capture record, in columns. See docs/architecture.md."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .stats import ReadStats


@dataclass
class Frames:
    """Records of one capture file, in columns.

    ``buf`` holds the bytes the offsets point into. Columns (all the same length):

    - ``ts_ns`` int64: timestamp, epoch nanoseconds (exact, no float rounding)
    - ``linktype`` int32: LINKTYPE_* of the record's interface (pcapng: per interface)
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
