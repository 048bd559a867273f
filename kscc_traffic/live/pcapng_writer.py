"""A small pcapng writer for live captures that keeps the file valid at every moment.

Layout (draft-ietf-opsawg-pcapng): one Section Header Block, one Interface Description Block
per link type seen (``if_tsresol`` = 9: nanosecond timestamps, ``if_name``), one Enhanced Packet
Block per packet, and on :meth:`PcapngWriter.close` one Interface Statistics Block per interface
with ``isb_endtime`` (when the capture stopped) and ``isb_ifrecv`` / ``isb_ifdrop`` (packets the
kernel received / dropped) when known.

Blocks are assembled in memory and handed to the OS with one ``os.write`` each flush, so the
file always ends on a block boundary: whatever stops the capture (Ctrl-C, SIGTERM, --duration,
--count, even a crash after a flush), tshark/capinfos read it without complaint and it holds
exactly the packets written so far.
"""
from __future__ import annotations

import os
import struct

__all__ = ["PcapngWriter"]

_SHB = 0x0A0D0D0A
_IDB = 0x00000001
_EPB = 0x00000006
_ISB = 0x00000005
_BOM = 0x1A2B3C4D


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def _opt(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + _pad(value)


def _block(btype: int, body: bytes) -> bytes:
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


class PcapngWriter:
    """Write captured frames to a pcapng file (little endian, nanosecond timestamps).

    :param path: file to create (truncated if it exists).
    :param interface: interface name recorded in each IDB (``if_name``).
    :param snaplen: snapshot length recorded in the IDBs, bytes.
    :param flush_bytes: buffered bytes that trigger a write on their own (default 1 MiB);
        :meth:`flush` writes whatever is buffered.
    :raises OSError: the file cannot be created.
    """

    def __init__(self, path: str | os.PathLike, interface: str = "", snaplen: int = 262144,
                 flush_bytes: int = 1 << 20, application: str = "kscc-traffic live") -> None:
        self.path = os.fspath(path)
        self.interface = interface
        self.snaplen = snaplen
        self.flush_bytes = flush_bytes
        self.packets = 0
        self._ifaces: dict[int, int] = {}       # linktype -> interface id
        self._buf = bytearray()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        shb_opts = _opt(4, application.encode()) + _opt(0, b"")
        self._buf += _block(_SHB, struct.pack("<IHHq", _BOM, 1, 0, -1) + shb_opts)
        self.flush()

    def _iface(self, linktype: int) -> int:
        i = self._ifaces.get(linktype)
        if i is None:
            i = len(self._ifaces)
            self._ifaces[linktype] = i
            opts = b""
            if self.interface:
                opts += _opt(2, self.interface.encode())
            opts += _opt(9, bytes([9])) + _opt(0, b"")
            self._buf += _block(_IDB, struct.pack("<HHI", linktype, 0, self.snaplen) + opts)
        return i

    def write(self, ts_ns: int, linktype: int, data: bytes, wirelen: int | None = None) -> None:
        """Append one frame: ``ts_ns`` epoch nanoseconds, ``linktype`` LINKTYPE_*, ``data`` the
        captured bytes, ``wirelen`` the original length in bytes (default ``len(data)``)."""
        i = self._iface(linktype)
        data = bytes(data[:self.snaplen])
        wl = len(data) if wirelen is None else max(int(wirelen), len(data))
        body = struct.pack("<IIIII", i, (ts_ns >> 32) & 0xFFFFFFFF, ts_ns & 0xFFFFFFFF,
                           len(data), wl) + _pad(data)
        self._buf += _block(_EPB, body)
        self.packets += 1
        if len(self._buf) >= self.flush_bytes:
            self.flush()

    def flush(self) -> None:
        """Hand the buffered blocks to the OS (whole blocks only)."""
        if self._fd is None or not self._buf:
            return
        data = bytes(self._buf)
        self._buf.clear()
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]

    def close(self, ts_ns: int | None = None, received: int | None = None,
              dropped: int | None = None) -> None:
        """Write the statistics blocks (``ts_ns``: when the capture stopped, epoch ns, also as
        ``isb_endtime``; ``received``/``dropped``: packets, when known), flush, fsync and close.
        Safe to call twice."""
        if self._fd is None:
            return
        if ts_ns is not None:
            for i in self._ifaces.values():
                opts = _opt(3, struct.pack("<II", (ts_ns >> 32) & 0xFFFFFFFF, ts_ns & 0xFFFFFFFF))
                if received is not None:
                    opts += _opt(4, struct.pack("<Q", received))
                if dropped is not None:
                    opts += _opt(5, struct.pack("<Q", dropped))
                opts += _opt(0, b"")
                self._buf += _block(_ISB, struct.pack("<III", i, (ts_ns >> 32) & 0xFFFFFFFF,
                                                      ts_ns & 0xFFFFFFFF) + opts)
        self.flush()
        try:
            os.fsync(self._fd)
        except OSError:
            pass
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "PcapngWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
