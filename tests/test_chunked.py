"""A capture read in chunks gives the flows of the whole-file analysis (kscc_traffic.chunked),
and the flow rules it relies on (Zeek's close delay) hold."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scapy.layers.inet import IP, TCP, UDP, fragment
from scapy.packet import Raw

from kscc_traffic.analyze import analyze_file
from kscc_traffic import chunked
from kscc_traffic.chunked import ChunkedAnalysis
from kscc_traffic.rules import load_rules

from conftest import shared_corpus
from pcapbuild import eth, pcap_bytes, tcp_session

ROOT = Path(__file__).resolve().parents[1]
RULES = load_rules()
SAMPLES = sorted(p for p in (ROOT / "samples" / "captures").rglob("*") if p.suffix in (".pcap", ".pcapng"))


def _run(path, chunk_bytes):
    run = ChunkedAnalysis(path, RULES, Path(path).name, chunk_bytes=chunk_bytes)
    parts = list(run.batches())
    flows = pd.concat(parts, ignore_index=True) if parts else None
    if flows is not None:
        flows = flows.sort_values(["ts_ns", "uid"], kind="stable").reset_index(drop=True)
    return flows, run


def _assert_same(path, chunk_bytes):
    whole, w = _run(path, Path(path).stat().st_size * 4 + 4096)
    parts, c = _run(path, chunk_bytes)
    if whole is None:
        assert parts is None
    else:
        assert parts is not None and len(parts) == len(whole)
        pd.testing.assert_frame_equal(parts, whole)
    for k in ("records", "ip_packets", "non_ip", "malformed", "skipped_records", "skipped_bytes",
              "damage_offset", "warnings", "unsupported_linktypes"):
        assert getattr(c.stats, k) == getattr(w.stats, k), k
    assert c.duplicates == w.duplicates
    return whole, c


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_samples_in_small_chunks_equal_whole_file(path):
    _assert_same(path, 2048)


def test_corpus_in_small_chunks_equal_whole_file():
    files = sorted(p for p in shared_corpus("").rglob("*") if p.suffix in (".pcap", ".pcapng", ".gz"))
    assert files
    checked = 0
    for p in files:
        try:
            analyze_file(p, RULES)
        except Exception:  # not a capture at all (the damaged ones that cannot be opened)
            continue
        _assert_same(p, 65536)
        checked += 1
    assert checked > 30


def test_bench_capture_chunked_equals_whole_and_evicts(tmp_path):
    # the answer store forgets old answers at every batch: names must not change
    out = tmp_path / "b.pcap"
    subprocess.run([sys.executable, str(ROOT / "bench" / "make_capture.py"), "--packets", "20000",
                    "--out", str(out), "--quiet"], check=True)
    whole, c = _assert_same(out, 256 << 10)
    assert len(whole) > 1000
    assert (whole["dns_name"] != "").sum() > 500   # names from DNS answers of earlier chunks
    # finished flows left memory: far fewer packets were carried than the capture has
    assert 0 < c.max_carried < c.stats.ip_packets / 3


def _write(tmp_path, records, name="c.pcap"):
    p = tmp_path / name
    p.write_bytes(pcap_bytes(records))
    return p


def test_packet_after_close_delay_is_a_new_connection(tmp_path):
    recs = tcp_session(("198.18.0.1", 40000), ("203.0.113.5", 443), t0=1000.0, c_data=b"x" * 10,
                       s_data=b"y" * 10)
    last_t = max(t for t, _ in recs)
    late = eth(IP(src="198.18.0.1", dst="203.0.113.5") / TCP(sport=40000, dport=443, flags="A",
                                                                seq=5000, ack=9000))
    for delay, flows_expected in ((4.0, 1), (6.0, 2)):
        p = _write(tmp_path, recs + [(last_t + delay, late)], f"d{delay}.pcap")
        flows = analyze_file(p, RULES).flows
        assert len(flows) == flows_expected, (delay, flows[["history", "conn_state"]])
        if flows_expected == 2:
            assert flows.iloc[0]["conn_state"] == "SF"
            assert flows.iloc[1]["orig_pkts"] + flows.iloc[1]["resp_pkts"] == 1


def test_fragments_straddling_chunks_are_reassembled(tmp_path):
    recs = []
    t = 1000.0
    for i in range(40):
        big = IP(src="198.18.0.7", dst="192.0.2.53", id=100 + i) / UDP(sport=5353 + i, dport=15000) / Raw(
            bytes([i]) * 3000)
        for f in fragment(big, fragsize=1000):
            recs.append((t, eth(f)))
            t += 0.001
    p = _write(tmp_path, recs)
    whole, c = _assert_same(p, 1500)
    assert len(whole) == 40
    assert (whole["orig_bytes"] == 3000).all()
    assert not any("could not be reassembled" in w for w in c.stats.warnings)


def test_analyze_batch_judges_only_the_flows_asked():
    # (chunked: flows still open are carried and judged with the next batch)
    from kscc_traffic.analyze import analyze_batch
    from kscc_traffic.capture.decode import decode
    from kscc_traffic.capture.files import read_frames
    from kscc_traffic.classify import CLASS_COLUMNS
    pk = decode(read_frames(ROOT / "samples" / "captures" / "blocked_agent.pcap"))
    every = analyze_batch(pk, RULES, "b").flows
    assert len(every) > 4 and set(every["verdict"]) >= {"ok", "blocked"}
    seen = []

    def judge(flows, last_ts):
        seen.append((len(flows), len(last_ts)))
        return (flows["resp_p"].to_numpy() == 443) | (np.arange(len(flows)) == 0)

    b = analyze_batch(pk, RULES, "b", judge=judge)
    assert seen == [(len(every), len(every))]
    asked = (every["resp_p"].to_numpy() == 443) | (np.arange(len(every)) == 0)
    assert 0 < asked.sum() < len(every)
    pd.testing.assert_frame_equal(b.flows[asked], every[asked])
    others = b.flows[~asked]
    for k in CLASS_COLUMNS:
        assert (others[k] == "").all(), k
    rest = [c for c in every.columns if c not in CLASS_COLUMNS]
    pd.testing.assert_frame_equal(b.flows[rest], every[rest])
