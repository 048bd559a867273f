"""Break-it on session 29's features (s29-breaktoday): defects found, each test failing before its fix."""
from __future__ import annotations

import numpy as np
import pandas as pd

from kscc_traffic import chunked, inspect
from kscc_traffic.inspect import REFUSED_WAIT, AddressTtls


def _held_rows(n: int, t0: int = 0) -> pd.DataFrame:
    """``n`` refused flows waiting for a packet of their reset's sender 198.18.x.y (TTL 64)."""
    waits = [(4, 0, (198 << 24) | (18 << 16) | i, 64) for i in range(n)]
    return pd.DataFrame({"ts_ns": np.arange(t0, t0 + n, dtype=np.int64),
                         "reset_hint": pd.Series([""] * n, dtype=object),
                         REFUSED_WAIT: pd.Series(waits, dtype=object)})


def test_held_refused_flows_are_looked_up_in_one_find_per_batch(monkeypatch):
    """A SYN flood refused by thousands of hosts never heard otherwise: chunked._Refused.release
    looked every held row's sender up one by one in every batch (AddressTtls.__contains__, a
    binary search each: ~0.1 ms; 65,536 held rows over 16 batches of a 15 MB capture took 70 s
    of a 35 s run under the profiler). Now one find of all of them per release, same hints."""
    refused = chunked._Refused()
    assert len(refused.hold(_held_rows(3000))) == 0
    # the first 10 senders' later packets (TTL 50: the resets came from 14 hops nearer)
    ttls = AddressTtls.of({(4, 0, (198 << 24) | (18 << 16) | i): (10**9 + i, 50) for i in range(10)})
    calls = []
    real = AddressTtls.find
    monkeypatch.setattr(AddressTtls, "find", lambda self, *a: calls.append(1) or real(self, *a))
    out = refused.release(pd.DataFrame(), ttls, last=False)
    assert len(calls) <= 1
    assert len(out) == 10 and refused._count == 2990
    assert out["reset_hint"].str.contains("14 hops nearer").all()
    assert out[REFUSED_WAIT].isna().all()
    calls.clear()
    rest = refused.release(pd.DataFrame(), ttls, last=True)       # the capture's end: all leave
    assert len(calls) <= 1 and len(rest) == 2990 and not refused.held
    assert (rest["reset_hint"] == "").all()                          # nothing else heard: no hint


def test_release_gives_the_hint_refused_hint_later_gives():
    """The vectorised release writes what inspect.refused_hint_later says for each held row
    (the same TTL: the server's own; fewer hops: a firewall; none heard: nothing)."""
    rows = _held_rows(4)
    rows.loc[2, "reset_hint"] = "before"
    refused = chunked._Refused()
    refused.hold(rows)
    key = lambda i: (4, 0, (198 << 24) | (18 << 16) | i)
    ttl_map = {key(0): (5, 64), key(1): (6, 50), key(2): (7, 120)}
    out = refused.release(pd.DataFrame(), AddressTtls.of(ttl_map), last=True)
    want = [inspect.refused_hint_later(w, ttl_map) for w in rows[REFUSED_WAIT]]
    assert want[0].startswith(inspect.REFUSED_OWN) and "14 hops" in want[1] and want[3] == ""
    assert out["reset_hint"].tolist() == [want[0], want[1], "before" + ("; " + want[2] if want[2] else ""), ""]
