"""Packets: one row per IP datagram, in columns. See docs/architecture.md for each column."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .ranges import gather
from .stats import ReadStats

#: column name -> numpy dtype, in order
PACKET_COLUMNS: dict[str, str] = {
    "frame": "int64",
    "ts_ns": "int64",
    "vlan": "int64",
    "ipver": "uint8",
    "src_hi": "uint64",
    "src_lo": "uint64",
    "dst_hi": "uint64",
    "dst_lo": "uint64",
    "proto": "uint8",
    "sport": "int32",
    "dport": "int32",
    "icmp_type": "int16",
    "icmp_code": "int16",
    "tcp_flags": "uint16",
    "seq": "int64",
    "ack": "int64",
    "tcp_win": "int32",
    "ip_id": "int32",
    "ip_len": "int32",
    "ttl": "int16",
    "payload_len": "int32",
    "pl_off": "int64",
    "pl_cap": "int32",
    "l2_bcast": "bool",
    "l2_out": "bool",
    "l4_sum": "int32",
    "unreassembled": "bool",
}


def short_payloads(cols: dict[str, np.ndarray]) -> int:
    """Rows whose captured payload is shorter than their headers say (``pl_cap`` <
    ``payload_len``: cut by a snaplen), not counting fragments never reassembled
    (``unreassembled``), whose bytes are left out on purpose."""
    if not len(cols["pl_cap"]):
        return 0
    short = cols["pl_cap"] < cols["payload_len"]
    if "unreassembled" in cols:
        short &= ~cols["unreassembled"]
    return int(np.count_nonzero(short))


@dataclass
class Packets:
    """Decoded IP packets in columns (``cols``: name -> 1-D numpy array, see PACKET_COLUMNS).

    ``buf`` is the byte buffer ``pl_off`` points into (the capture bytes, followed by any
    reassembled fragment payloads). ``stats`` carries the reader's and decoder's counters.
    """

    buf: bytes | memoryview
    cols: dict[str, np.ndarray]
    stats: ReadStats = field(default_factory=ReadStats)

    def __len__(self) -> int:
        return len(self.cols["ts_ns"])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.cols[name]

    def payload(self, i: int) -> bytes:
        """Captured transport payload of row ``i`` (b"" when none).

        For ICMP/ICMPv6 this is what follows the 8-byte ICMP header (the quoted datagram of an
        error message).
        """
        off = int(self.cols["pl_off"][i])
        if off < 0:
            return b""
        return bytes(self.buf[off:off + int(self.cols["pl_cap"][i])])

    @classmethod
    def empty(cls, stats: ReadStats | None = None) -> "Packets":
        """No packets, full schema."""
        return cls(b"", {k: np.zeros(0, v) for k, v in PACKET_COLUMNS.items()}, stats or ReadStats())

    def take(self, index: np.ndarray) -> "Packets":
        """Rows at ``index`` (integer array or boolean mask), same buffer."""
        return Packets(self.buf, {k: v[index] for k, v in self.cols.items()}, self.stats)

    def compact(self, index: np.ndarray) -> "Packets":
        """Rows at ``index`` with a buffer of their own that holds only their payload bytes
        (``pl_off`` re-pointed into it), so the rest of the original buffer can be freed.
        Memory: the kept rows' columns plus the sum of their ``pl_cap`` bytes."""
        cols = {k: v[index] for k, v in self.cols.items()}
        off, cap = cols["pl_off"], cols["pl_cap"].astype(np.int64)
        has = (off >= 0) & (cap > 0)
        lens = np.where(has, cap, 0)
        ends = np.cumsum(lens)
        new_off = ends - lens
        total = int(ends[-1]) if len(ends) else 0
        if total:
            # one range per kept payload (no per-byte index arrays: a carried chunk's payloads
            # are megabytes; an int64 gather index would be eight times that)
            rows = np.nonzero(has)[0]
            data = gather(self.buf, off[rows], lens[rows])
        else:
            data = b""
        cols["pl_off"] = np.where(off >= 0, np.where(has, new_off, 0), off).astype(off.dtype)
        return Packets(data, cols, self.stats)

    @classmethod
    def concat_shared(cls, head: "Packets", rest: "Packets") -> "Packets":
        """What ``concat([head, rest])`` gives (rows of ``head``, then of ``rest``; ``rest``'s
        stats), without copying a buffer, when ``rest.buf`` begins with the bytes of
        ``head.buf`` (the caller's promise, not checked: ``head``'s ``pl_off`` are used as they
        are): the result's buffer is ``rest.buf``. Both must have rows."""
        if not len(head) or not len(rest):
            raise ValueError("concat_shared: both parts must have rows")
        cols = {k: np.concatenate([head.cols[k], rest.cols[k]]).astype(PACKET_COLUMNS[k], copy=False)
                for k in PACKET_COLUMNS}
        return cls(rest.buf, cols, rest.stats)

    @classmethod
    def concat(cls, parts: "list[Packets]", stats: ReadStats | None = None) -> "Packets":
        """Rows of ``parts`` one after the other, in one buffer (each part's ``pl_off`` shifted
        by the length of the buffers before it)."""
        parts = [p for p in parts if len(p)] or parts[:1]
        if not parts:
            return cls.empty(stats)
        if len(parts) == 1:
            p = parts[0]
            return Packets(p.buf, p.cols, stats or p.stats)
        shift, cols = 0, {k: [] for k in PACKET_COLUMNS}
        for p in parts:
            for k in PACKET_COLUMNS:
                v = p.cols[k]
                if k == "pl_off":
                    v = np.where(v >= 0, v + shift, v)
                cols[k].append(v)
            shift += len(p.buf)
        # (join takes any bytes-like part as it is: a memoryview part copied once, not twice)
        buf = b"".join(p.buf for p in parts)
        return cls(buf, {k: np.concatenate(v).astype(PACKET_COLUMNS[k], copy=False) for k, v in cols.items()},
                   stats or parts[-1].stats)
