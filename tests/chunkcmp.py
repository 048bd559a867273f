"""Test helpers: write a capture, analyse it whole and in chunks, compare the flow tables."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from kscc_traffic.analyze import analyze_file
from kscc_traffic.chunked import ChunkedAnalysis
from kscc_traffic.rules import load_rules

from pcapbuild import pcap_bytes

RULES = load_rules()


def write(tmp_path, recs, name="c.pcap") -> Path:
    """``recs`` ([(ts, frame bytes)]) as a pcap file in ``tmp_path``."""
    p = tmp_path / name
    p.write_bytes(pcap_bytes(recs))
    return p


def _sorted(df):
    return df.sort_values(["ts_ns", "uid"], kind="stable").reset_index(drop=True)


def chunked(path, chunk_bytes):
    """(flows of the chunked analysis sorted by ts_ns/uid, the ChunkedAnalysis)."""
    run = ChunkedAnalysis(path, RULES, Path(path).name, chunk_bytes=chunk_bytes)
    parts = list(run.batches())
    assert parts
    return _sorted(pd.concat(parts, ignore_index=True)), run


def whole(path):
    """(flows of the whole-file analysis sorted by ts_ns/uid, the Analysis)."""
    a = analyze_file(path, RULES)
    return _sorted(a.flows), a


def assert_same(path, chunk_sizes):
    """Every column, the duplicates and the warnings equal to the whole-file analysis, in one
    chunk and at each of ``chunk_sizes``; returns the whole-file flows."""
    w, a = whole(path)
    big, _ = chunked(path, Path(path).stat().st_size * 4 + 4096)
    pd.testing.assert_frame_equal(big, w)
    for cb in chunk_sizes:
        parts, run = chunked(path, cb)
        assert len(parts) == len(w), cb
        pd.testing.assert_frame_equal(parts, w, obj=f"chunk_bytes={cb}")
        assert run.duplicates == a.duplicates, cb
        assert run.stats.warnings == a.warnings, cb
    return w


def row(df, **eq):
    """The one row of ``df`` whose columns equal ``eq``."""
    m = pd.Series(True, index=df.index)
    for k, v in eq.items():
        m &= df[k] == v
    assert m.sum() == 1, (eq, m.sum())
    return df[m].iloc[0]
