"""Session 59's IPv6 fallback rule (classify.family_fallbacks, chunked._FamilyFallbacks): the
bounds and guards added after its review (/tmp/s59/rev/FINDINGS.md items 5 and 8)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from test_newcomer_s58_verdicts import NAME, SRV4, SRV6


def _rows(ts, v6: bool, first: int = 0) -> pd.DataFrame:
    """Flow rows to NAME port 80: refused IPv6 attempts (``v6``) or IPv4 connections that connected."""
    from kscc_traffic.flows import VLAN_STACK
    n = len(ts)
    return pd.DataFrame({
        "proto": "tcp", "uid": [f"C{first + i:06d}" for i in range(n)], "ts_ns": np.asarray(ts, np.int64),
        "duration": 0.0005 if v6 else 0.08, "resp_h": SRV6 if v6 else SRV4, "resp_p": 80, VLAN_STACK: 0,
        "conn_state": "REJ" if v6 else "SF", "history": "Sr" if v6 else "ShADdFf", "server_name": NAME})


def test_the_fallback_holder_forgets_the_connections_no_waiting_attempt_can_take():
    """Review s59 #8: a refused IPv6 attempt another holder keeps to the capture's end (its reset's
    hint waits for a packet of its IPv6 address) made _FamilyFallbacks remember every IPv4
    connection to its name in every batch until then (a gateway's clients connect to it all
    day). Now only the first connection after each attempt held or expected is kept: 200
    batches of 50 connections each leave at most SLACK + 2 remembered, and the attempts (the
    one waiting from the start, and two that join it later) still find the same fallbacks."""
    from kscc_traffic.chunked import _FamilyFallbacks
    from kscc_traffic.classify import FALLBACK
    t0 = 1_000 * 10**9
    waiting = _rows([t0], True)                     # (kept back by another holder all along)
    # (two more kept back from batch 150 on, begun among batch 150's connections, as an attempt
    # the other holder keeps is expected here before its fallback leaves)
    late = t0 + 10**7 + (150 * 50 + np.array([10, 30])) * 10**8 + 5 * 10**7
    h = _FamilyFallbacks()
    key = (NAME, 80, 0)
    first = 1
    for b in range(200):
        ts = t0 + 10**7 + (b * 50 + np.arange(50)) * 10**8   # (one every 0.1 s)
        kept = waiting if b < 150 else pd.concat([waiting, _rows(late, True, 90_000)], ignore_index=True)
        assert len(h.hold(_rows(ts, False, first), elsewhere=[kept])) == 50
        first += 50
        assert len(h.retries.get(key, ())) <= _FamilyFallbacks.SLACK + 2 * len(kept), b
    assert h.pruned >= 200 * 50 - _FamilyFallbacks.SLACK - 6
    rest = h.hold(kept)                             # (the other holder lets them go at the end)
    assert len(rest) == 0 and h.count == 3
    out = h.release(rest, [], None, True).sort_values("ts_ns")
    assert out[FALLBACK].tolist() == [(t0 + 10**7, "C000001"),
                                      (int(late[0]) + 5 * 10**7, f"C{1 + 150 * 50 + 11:06d}"),
                                      (int(late[1]) + 5 * 10**7, f"C{1 + 150 * 50 + 31:06d}")]
    assert h.count == 0 and not h.retries
