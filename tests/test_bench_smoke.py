"""Smoke test of the benchmark's capture generator (bench/make_capture.py): a tiny capture is a
valid pcap/pcapng with the packet count asked for, the analyzer finds the flow mix it is made of,
and the same seed gives the same bytes."""
from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

import kscc_traffic

GENERATOR = Path(__file__).resolve().parent.parent / "bench" / "make_capture.py"
PACKETS = 2000


def _make(out: Path, fmt: str = "pcap", seed: int = 1) -> dict:
    """Through the command line, as bench/run.py and people use it."""
    subprocess.run([sys.executable, str(GENERATOR), "--packets", str(PACKETS), "--format", fmt,
                    "--seed", str(seed), "--out", str(out), "--quiet"], check=True, timeout=60)
    return json.loads(Path(str(out) + ".json").read_text())


@pytest.fixture(scope="module")
def make_capture():
    spec = importlib.util.spec_from_file_location("bench_make_capture", GENERATOR)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_generated_capture_parses_with_the_requested_count_and_flow_mix(tmp_path):
    out = tmp_path / "small.pcap"
    meta = _make(out)
    assert meta["packets"] == PACKETS and out.stat().st_size == meta["bytes"]

    frames = kscc_traffic.read_frames(out)
    assert len(frames.ts_ns) == PACKETS
    assert not frames.stats.warnings
    assert (frames.ts_ns[1:] >= frames.ts_ns[:-1]).all()  # in time order

    flows = kscc_traffic.analyze(out)
    assert len(flows) == meta["flows"]  # every generated flow is one flow, no more
    assert {"agent_connection", "dns", "ksn", "dp_agent_connection"} <= set(flows.purpose)
    agent = flows[(flows.purpose == "agent_connection") & (flows.verdict == "ok")]
    assert len(agent) and (agent.sni == "eu1.ksc.kaspersky.com").any()
    assert agent.tls_established.any()
    assert set(flows[flows.verdict == "blocked"].reason) >= {"no_answer", "rejected"}
    assert (flows.loc[flows.purpose == "dns", "query"] != "").all()
    assert "ok" in set(flows.verdict)


def test_pcapng_holds_the_same_packets(tmp_path):
    a, b = tmp_path / "small.pcap", tmp_path / "small.pcapng"
    _make(a, "pcap")
    _make(b, "pcapng")
    fa, fb = kscc_traffic.read_frames(a), kscc_traffic.read_frames(b)
    assert len(fb.ts_ns) == PACKETS and not fb.stats.warnings
    assert (fa.ts_ns == fb.ts_ns).all() and (fa.caplen == fb.caplen).all()
    # same headers (payload filler bytes, and so TCP/UDP checksums, differ between the formats)
    assert all(bytes(fa.buf[int(oa):int(oa) + 40]) == bytes(fb.buf[int(ob):int(ob) + 40])
               for oa, ob in zip(fa.offset[::37], fb.offset[::37]))


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, make_capture):
    a, b, c = tmp_path / "a.pcap", tmp_path / "b.pcap", tmp_path / "c.pcap"
    make_capture.generate(a, PACKETS, "pcap", seed=7)
    make_capture.generate(b, PACKETS, "pcap", seed=7)
    make_capture.generate(c, PACKETS, "pcap", seed=8)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    # a shorter capture is a prefix of a longer one (same seed and format)
    short = tmp_path / "short.pcap"
    make_capture.generate(short, PACKETS // 2, "pcap", seed=7)
    assert a.read_bytes().startswith(short.read_bytes())


@pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="no /proc/PID/smaps_rollup (not Linux ≥ 4.14)")
def test_measure_sees_a_forked_childs_memory_once_in_pss(tmp_path):
    # bench/run.py's peak PSS: a parent and its forked child sharing 200 MiB count it ~once
    # (RSS twice); run.py imports make_capture from its own folder
    sys.path.insert(0, str(GENERATOR.parent))
    try:
        spec = importlib.util.spec_from_file_location("bench_run", GENERATOR.parent / "run.py")
        run = importlib.util.module_from_spec(spec)
        sys.modules["bench_run"] = run          # (its dataclasses look their module up)
        spec.loader.exec_module(run)
    finally:
        sys.path.remove(str(GENERATOR.parent))
    code = ("import os, time; b = bytearray(200 << 20); b[::4096] = b'x' * len(b[::4096]); "
            "pid = os.fork(); time.sleep(1.0); os._exit(0) if pid == 0 else os.waitpid(pid, 0)")
    r = run.measure([sys.executable, "-c", code], subprocess.DEVNULL, subprocess.DEVNULL, 30,
                    tmp_path / "ru")
    assert r.status == 0
    mib = 2 ** 20
    assert r.sampled_rss > 400 * mib            # parent + child, each with the 200 MiB resident
    # the shared pages once; a sample taken across the fork may read the parent just before it
    # (200 MiB its own) and the child just after (half of them): up to ~1.6 times, never twice
    assert 200 * mib < r.sampled_pss < 360 * mib


def test_the_spray_is_one_flow_a_datagram(tmp_path):
    """bench/make_spray.py (session 48): the memory figures' UDP spray, each datagram a flow of its
    own, valid IPv4 checksums, deterministic."""
    spray = Path(__file__).resolve().parent.parent / "bench" / "make_spray.py"
    out, again = tmp_path / "s.pcap", tmp_path / "t.pcap"
    for o in (out, again):
        subprocess.run([sys.executable, str(spray), "--packets", "3000", "--seconds", "30", "--out", str(o)],
                       check=True, timeout=60, capture_output=True)
    assert out.read_bytes() == again.read_bytes() and out.stat().st_size == 24 + 3000 * 76
    frames = kscc_traffic.read_frames(out)
    assert len(frames.ts_ns) == 3000 and not frames.stats.warnings
    assert (frames.ts_ns[1:] >= frames.ts_ns[:-1]).all()
    flows = kscc_traffic.analyze(out)
    assert len(flows) == 3000 and set(flows.proto) == {"udp"} and set(flows.orig_pkts) == {1}
    assert set(flows.resp_p) == {15000} and flows.orig_h.str.startswith("198.1").all()
    raw = out.read_bytes()[24 + 16 + 14:24 + 16 + 34]          # the first IPv4 header
    words = sum(int.from_bytes(raw[i:i + 2], "big") for i in range(0, 20, 2))
    assert (words & 0xFFFF) + (words >> 16) == 0xFFFF         # its checksum adds up
