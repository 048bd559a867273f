"""Jumps forward of the capture's clock (kscc_traffic.chunked.jumps_forward): one warning line,
whole-file and chunked alike, as for steps back (break-it 21 F7)."""
from __future__ import annotations

import numpy as np
import pytest

from kscc_traffic.analyze import analyze_file
from kscc_traffic.chunked import JUMP_FORWARD_NS, ChunkedAnalysis, jumps_forward
from kscc_traffic.rules import load_rules

from pcapbuild import pcap_bytes, udp

RULES = load_rules()
AGENT, CLOUD = "192.0.2.10", "203.0.113.20"
YEAR_S = 365 * 86_400
S = 10**9


def test_jumps_forward_counts_against_the_latest_stamp_so_far():
    t = np.array([100, 200, 200 + 2 * 86_400, 300], np.int64) * S
    assert jumps_forward(t) == (1, 2 * 86_400 * S, (200 + 2 * 86_400) * S)
    # a record stamped 0 among others is a step back, not a jump forward when the clock comes back
    z = np.array([1_700_000_000, 0, 1_700_000_001, 0, 1_700_000_002], np.int64) * S
    assert jumps_forward(z) == (0, 0, 1_700_000_002 * S)
    # across chunks: the latest stamp of the chunks before counts
    assert jumps_forward(np.array([5 * S]), None) == (0, 0, 5 * S)
    assert jumps_forward(np.array([5 * S + JUMP_FORWARD_NS + 1, 6 * S]), 5 * S) == (1, JUMP_FORWARD_NS + 1,
                                                                                  5 * S + JUMP_FORWARD_NS + 1)
    assert jumps_forward(np.array([5 * S + JUMP_FORWARD_NS]), 5 * S)[0] == 0     # (one day exactly: no)
    assert jumps_forward(np.array([], np.int64), 7) == (0, 0, 7)


def _write(tmp_path, name, times):
    recs = [udp((AGENT, 40000 + i), (CLOUD, 15000), b"x" * 200, t=t) for i, t in enumerate(times)]
    path = tmp_path / name
    path.write_bytes(pcap_bytes(recs))
    return path


@pytest.mark.parametrize("name, times, want", [
    ("fwd10y.pcap", [1.7e9 + i for i in range(20)] + [1.7e9 + 10 * YEAR_S + i for i in range(20)],
     "fwd10y.pcap: the timestamps jump forward by more than 1 day at 1 place (the largest: 3650 days; "),
    ("twice.pcap", [1.7e9 + i for i in range(10)] + [1.7e9 + 2.5 * 86_400 + i for i in range(10)]
     + [1.7e9 + 5 * 86_400 + i for i in range(20)],
     "twice.pcap: the timestamps jump forward by more than 1 day at 2 places (the largest: 2.5 days; "),
    ("silent_hours.pcap", [1.7e9 + i for i in range(20)] + [1.7e9 + 20 * 3600 + i for i in range(20)], None),
    ("zeros.pcap", [0.0 if i % 7 == 3 else 1.7e9 + i for i in range(40)], None),
])
def test_a_clock_jump_forward_is_warned_about(tmp_path, name, times, want):
    path = _write(tmp_path, name, times)
    for chunk in (1 << 20, 20 * 258 + 24):          # whole; a chunk boundary at the jump
        run = ChunkedAnalysis(path, RULES, name=name, chunk_bytes=chunk)
        flows = sum(len(b) for b in run.batches())
        assert flows == 40, (name, chunk)
        lines = [w for w in run.stats.warnings if "jump forward" in w]
        if want is None:
            assert lines == [] and run.jumps_forward == 0, (name, chunk)
        else:
            assert len(lines) == 1 and lines[0].startswith(want), (chunk, lines)
            assert "split in two flows" in lines[0]
    if want is not None:
        assert [w for w in analyze_file(path, RULES).warnings if "jump forward" in w] == lines
        assert "go back" not in " ".join(run.stats.warnings)
