"""Test helpers shared by the decoder's break-it files: frames written as a pcap, and decoded by
both paths (the columnar fast path and the per-packet slow path), which must agree."""
from __future__ import annotations

import numpy as np

from kscc_traffic.capture.decode import decode
from kscc_traffic.capture.files import read_frames
from kscc_traffic.capture.packets import PACKET_COLUMNS
from pcapbuild import pcap_bytes


def write(tmp_path, name: str, frames: list[bytes], linktype: int = 1):
    """``frames`` (link-layer bytes) as ``tmp_path/name``, a pcap of ``linktype``, 10 ms apart."""
    path = tmp_path / name
    path.write_bytes(pcap_bytes([(1_700_000_000 + k * 0.01, f) for k, f in enumerate(frames)],
                                linktype))
    return path


def decoded(path):
    """Packets of ``path`` (a capture file, or its bytes), the fast path checked against the slow
    path: identical columns, payload buffer and counters (non-IP, malformed, warnings)."""
    fr = read_frames(path)
    p, q = decode(fr), decode(fr, fast=False)
    for k in PACKET_COLUMNS:
        np.testing.assert_array_equal(p.cols[k], q.cols[k], err_msg=k)
    assert bytes(p.buf) == bytes(q.buf)
    assert (p.stats.non_ip, p.stats.malformed, p.stats.warnings) == \
        (q.stats.non_ip, q.stats.malformed, q.stats.warnings)
    return p
