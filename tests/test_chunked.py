"""A capture read in chunks gives the flows of the whole-file analysis (kscc_traffic.chunked),
and the flow rules it relies on (Zeek's close delay) hold."""
from __future__ import annotations

import itertools
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


@pytest.mark.parametrize("path", SAMPLES[:4], ids=lambda p: p.name)
def test_samples_in_parts_of_few_records_equal_whole_file(path, monkeypatch):
    """A chunk of more than BATCH_RECORDS records is analysed in equal parts (break-it 21 F1:
    memory by records, not bytes): the same flows, stats and duplicates, whole chunks or parts."""
    monkeypatch.setattr(chunked, "BATCH_RECORDS", 7)
    monkeypatch.setattr(chunked, "BATCH_PACKETS", 0)
    seen = []
    first = chunked._first_part

    def counted(frames, most, slack=1.0):
        part, rest = first(frames, most, slack)
        seen.append(len(part))
        return part, rest
    monkeypatch.setattr(chunked, "_first_part", counted)
    _assert_same(path, 1 << 20)
    assert seen and max(seen) <= 7 * chunked.PART_SLACK      # (the chunks were cut)


def _parts(frames, most=None) -> list:
    """``frames`` (a chunk) in the parts batches take them, :func:`chunked._first_part` after
    :func:`chunked._first_part` (no slack); None: no part."""
    out = []
    while frames is not None:
        part, frames = chunked._first_part(frames, most or chunked.BATCH_RECORDS)
        out.append(part)
    return out


def test_parts_split_a_chunk_evenly_with_their_own_bytes():
    from kscc_traffic.capture.files import read_frames
    fr = read_frames(SAMPLES[0])
    n = len(fr)
    parts = list(_parts(fr, 10))
    assert len(parts) == -(-n // 10) and max(len(p) for p in parts) - min(len(p) for p in parts) <= 1
    assert max(len(p) for p in parts) <= 10 and sum(len(p) for p in parts) == n
    assert [p.data(0) for p in parts] == [fr.data(sum(len(q) for q in parts[:k])) for k in range(len(parts))]
    assert all(len(p.buf) < len(fr.buf) for p in parts)
    assert not any(p.last for p in parts[:-1]) and parts[-1].last == fr.last
    assert _parts(fr, n) == [fr] and _parts(None) == []


def test_batch_limit_counts_the_carried_packets():
    """A batch takes BATCH_PACKETS packets, carried ones included, never fewer than
    BATCH_RECORDS new ones; a chunk up to PART_SLACK times that is not cut in two."""
    assert chunked._batch_limit(0) == chunked.BATCH_PACKETS
    assert chunked._batch_limit(10_000) == chunked.BATCH_PACKETS - 10_000
    assert chunked._batch_limit(10**6) == chunked.BATCH_RECORDS
    from kscc_traffic.capture.files import read_frames
    fr = read_frames(SAMPLES[0])
    n = len(fr)
    whole, rest = chunked._first_part(fr, n - 1, 1.25)
    assert whole is fr and rest is None
    part, rest = chunked._first_part(fr, n - 1)                 # (no slack: two equal parts)
    assert len(part) == -(-n // 2) and len(rest) == n // 2
    assert [part.data(i) for i in range(len(part))] + [rest.data(i) for i in range(len(rest))] == \
        [fr.data(i) for i in range(n)]


def _big_capture(tmp_path, fmt: str) -> Path:
    """~700 KB of UDP datagrams of 300-1000 bytes (more than the reader's first 256 KiB, which
    it reads without room), as pcap or pcapng."""
    from pcapbuild import udp
    recs = [udp(("192.0.2.10", 40000 + i % 50), ("203.0.113.5", 15000), bytes([i % 256]) * (300 + i * 7 % 700),
                t=1000 + i * 0.01) for i in range(1100)]
    path = tmp_path / f"big.{fmt}"
    if fmt == "pcap":
        path.write_bytes(pcap_bytes(recs))
    else:
        from test_capture_files import end_of_options, epb, idb, shb, tsresol
        o = "<"
        path.write_bytes(shb(o) + idb(o, 1, 0, tsresol(o, 9) + end_of_options(o))
                         + b"".join(epb(o, 0, round(t * 1e9), bytes(pkt)) for t, pkt in recs))
    return path


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_chunks_read_with_room_before_them_hold_the_same_records(tmp_path, fmt):
    """iter_frames' room: every chunk after the first 256 KiB is a bytearray with that many free
    bytes before its records, which are those of the whole file, byte for byte; analysed in
    such chunks, the flows of the whole file."""
    from kscc_traffic.capture.files import iter_frames, read_frames
    src = _big_capture(tmp_path, fmt)
    whole = read_frames(src)
    asked = itertools.cycle([0, 5, 1, 4096, 3, 77])
    chunks = list(iter_frames(src, 20_000, room=lambda: next(asked)))
    assert len(chunks) > 10
    assert [c.data(i) for c in chunks for i in range(len(c))] == [whole.data(i) for i in range(len(whole))]
    assert np.array_equal(np.concatenate([c.ts_ns for c in chunks]), whole.ts_ns)
    rooms = [c.room for c in chunks]
    assert rooms[0] == 0 and 5 in rooms[1:] and 4096 in rooms[1:]
    for c in chunks:
        if c.room:
            assert isinstance(c.buf, bytearray) and int(c.offset.min()) >= c.room
            assert bytes(c.buf[:c.room]) == bytes(c.room)
    _assert_same(src, 20_000)


def test_join_writes_into_the_room_as_the_copy_would(tmp_path):
    """_join with a chunk whose room is just the prefix and the waiting records' bytes: the same
    records and buffer bytes as the copy it makes otherwise, in the chunk's own buffer."""
    from dataclasses import replace
    from kscc_traffic.capture.files import iter_frames
    src = _big_capture(tmp_path, "pcap")
    size = 0
    chunks = list(iter_frames(src, 300_000, room=lambda: size))
    head, nxt = chunks[0], chunks[1]
    head = replace(head, number=np.arange(len(head)))
    nxt = replace(nxt, number=np.arange(len(head), len(head) + len(nxt)))
    prefix = b"carried-bytes"
    size = len(prefix) + chunked._own_plan(head)[1]
    again = list(iter_frames(src, 300_000, room=lambda: size))[1]
    assert again.room == size
    again = replace(again, number=nxt.number)
    copied = chunked._join(head, nxt, prefix)
    inplace = chunked._join(head, again, prefix)
    assert inplace.buf is again.buf and copied.buf is not nxt.buf
    assert bytes(inplace.buf[:len(prefix)]) == prefix
    assert [inplace.data(i) for i in range(len(inplace))] == [copied.data(i) for i in range(len(copied))]
    assert np.array_equal(inplace.number, copied.number) and np.array_equal(inplace.ts_ns, copied.ts_ns)
    assert inplace.room == 0 and not inplace.last
    # a room of another size: copied as before
    other = chunked._join(head, again, prefix + b"!")
    assert other.buf is not again.buf and bytes(other.buf[:len(prefix) + 1]) == prefix + b"!"


def test_clock_ignores_a_few_far_off_stamps():
    """(break-it 21 F4) records stamped 0 (a NIC without hardware time) among a chunk's last ones
    do not set the capture's clock to 1970 (which held every flow in memory)."""
    t = np.arange(256, dtype=np.int64) * 10**6 + 1_772_000_000 * 10**9
    assert chunked._clock(t) == int(t[0])
    t0 = t.copy()
    t0[::50] = 0
    assert chunked._clock(t0) == int(t[1])
    # (a packet up to CLOCK_OUTLIER_NS late still counts: reordering, skewed merged interfaces)
    t1 = t.copy()
    t1[100] -= chunked.CLOCK_OUTLIER_NS - 10**9
    assert chunked._clock(t1) == int(t1[100])


def test_zero_stamped_records_let_flows_leave(tmp_path):
    """A capture with every 20th record stamped 0: the chunked reading lets flows leave batch by
    batch (before, none left until the end), and gives the whole-file analysis's flows."""
    recs = []
    for k in range(300):        # (UDP exchanges: they leave by the clock alone, idle 1 min)
        for d in range(2):
            a, b = ("192.0.2.10", 40000 + k), ("203.0.113.10", 15000)
            (sh, sp), (dh, dp) = (a, b) if d == 0 else (b, a)
            recs.append((1000.0 + 30 * k + d * .01, bytes(eth(IP(src=sh, dst=dh) / UDP(sport=sp, dport=dp) / Raw(b"x" * 40)))))
    recs = [(0.0 if i % 20 == 19 else t, b) for i, (t, b) in enumerate(recs)]
    path = tmp_path / "zeros.pcap"
    path.write_bytes(pcap_bytes(recs))
    run = ChunkedAnalysis(path, RULES, path.name, chunk_bytes=4096)
    sizes = [len(b) for b in run.batches()]
    assert len(sizes) > 5 and max(sizes) < sum(sizes) / 3
    whole, _ = _run(path, path.stat().st_size * 4 + 4096)
    parts, c = _run(path, 4096)
    pd.testing.assert_frame_equal(parts, whole)
    # (the zero-stamped records come after the clock moved on: said, as any late packets)
    assert any("written more than 2 s out of time order across a chunk boundary" in w for w in c.stats.warnings)


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
    from kscc_traffic.flows import FLOW_COLUMNS
    from kscc_traffic.inspect import APP_COLUMNS
    pk = decode(read_frames(ROOT / "samples" / "captures" / "blocked_agent.pcap"))
    every = analyze_batch(pk, RULES, "b").flows
    assert len(every) > 4 and set(every["verdict"]) >= {"ok", "blocked"}
    seen = []

    def judge(flows, last_ts):
        # (called before the flows are inspected: flow columns, ICMP errors attached)
        seen.append((len(flows), len(last_ts), "icmp_unreachable" in flows, "sni" in flows))
        return (flows["resp_p"].to_numpy() == 443) | (np.arange(len(flows)) == 0)

    b = analyze_batch(pk, RULES, "b", judge=judge)
    assert seen == [(len(every), len(every), True, False)]
    asked = (every["resp_p"].to_numpy() == 443) | (np.arange(len(every)) == 0)
    assert 0 < asked.sum() < len(every)
    pd.testing.assert_frame_equal(b.flows[asked], every[asked])
    others = b.flows[~asked]
    for k in CLASS_COLUMNS:
        assert (others[k] == "").all(), k
    # the others are not inspected (but the DNS flows, whose answers name the others): their
    # application columns at the defaults, their names from DNS only
    dns = (every["resp_p"].to_numpy() == 53) | (every["orig_p"].to_numpy() == 53)
    assert (~asked & dns).any() and (~asked & ~dns & (every["sni"] != "").to_numpy()).any()
    rest = [c for c in every.columns if c not in CLASS_COLUMNS]
    pd.testing.assert_frame_equal(b.flows.loc[asked | dns, rest], every.loc[asked | dns, rest])
    plain = b.flows[~asked & ~dns]
    for k, (dtype, _, _) in APP_COLUMNS.items():
        assert (plain[k] == ("" if dtype == "object" else False)).all(), k
    assert (plain["name_source"].isin(["dns", ""])).all()
    # (service: what inspecting finds, ssl, http…)
    same = [c for c in FLOW_COLUMNS if c != "service"] + ["dns_name"]
    pd.testing.assert_frame_equal(b.flows[same], every[same])


def test_judge_sees_attached_errors_and_the_flows_of_unmatched_ones(tmp_path):
    # the judge is called before inspection, on the flows in the order of Batch.flows: an ICMP
    # error attached to its flow extends that flow's last_ts, one quoting no flow seen is a flow
    # of its own among them
    from scapy.layers.inet import ICMP
    from kscc_traffic.analyze import analyze_batch
    from kscc_traffic.capture.decode import decode
    from kscc_traffic.capture.files import read_frames
    recs = tcp_session(("198.18.0.7", 40000), ("192.0.2.80", 80), t0=1000.0,
                       c_data=b"GET / HTTP/1.1\r\nHost: www.example.test\r\n\r\n",
                       s_data=b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    seen_udp = IP(src="198.18.0.7", dst="192.0.2.53") / UDP(sport=5001, dport=15000) / b"x"
    unseen = IP(src="198.18.0.9", dst="192.0.2.99") / UDP(sport=5000, dport=15000) / b"y"
    recs += [(999.0, eth(seen_udp)),
             (1001.0, eth(IP(src="192.0.2.53", dst="198.18.0.7") / ICMP(type=3, code=3) / bytes(seen_udp))),
             (999.5, eth(IP(src="192.0.2.99", dst="198.18.0.9") / ICMP(type=3, code=3) / bytes(unseen)))]
    recs.sort(key=lambda r: r[0])
    p = tmp_path / "e.pcap"
    p.write_bytes(pcap_bytes(recs))
    pk = decode(read_frames(p))
    every = analyze_batch(pk, RULES, "e").flows
    assert sorted(every["proto"]) == ["icmp", "tcp", "udp"]
    seen = {}

    def judge(flows, last_ts):
        seen.update(uid=flows["uid"].tolist(), last_ts=last_ts.copy(),
                    icmp=flows["icmp_unreachable"].tolist())
        return (flows["proto"] != "udp").to_numpy()

    b = analyze_batch(pk, RULES, "e", judge=judge)
    assert seen["uid"] == every["uid"].tolist()
    np.testing.assert_array_equal(seen["last_ts"], b.last_ts)
    u = every.index[every["proto"] == "udp"][0]
    assert seen["last_ts"][u] == 1001 * 10**9 and seen["icmp"][u].startswith("port unreachable")
    asked = (every["proto"] != "udp").to_numpy()
    pd.testing.assert_frame_equal(b.flows[asked], every[asked])
    assert every.loc[asked, "http_host"].tolist().count("www.example.test") == 1
    assert (b.flows.loc[~asked, "verdict"] == "").all()


def test_a_compressed_capture_reports_its_own_bytes_for_the_progress_bar(tmp_path):
    # break-it 21 F9: no progress bar for any compressed capture (the bytes read were the
    # decompressed ones, so the bar was left out); now they are the compressed file's
    import gzip
    from kscc_traffic.cli import _progress
    plain = ROOT / "samples" / "captures" / "baseline_agent.pcap"
    gz = tmp_path / "b.pcap.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (plain, gz):
        seen = []
        run = ChunkedAnalysis(path, RULES, path.name, chunk_bytes=2048, progress=seen.append)
        rows = sum(len(b) for b in run.batches())
        assert rows == len(analyze_file(plain, RULES).flows)
        assert len(seen) > 3 and seen == sorted(seen) and seen[-1] == path.stat().st_size, (path.name, seen[-3:])
        assert _progress([path]).total == path.stat().st_size
    assert run.stats.bytes_read == plain.stat().st_size       # (the decompressed bytes, as before)
    from kscc_traffic.capture.filesets import FileSet
    # a file set with a compressed file (its bytes read counted decompressed): no bar, as before
    assert _progress([FileSet((gz, gz))]).total is None
    assert _progress([FileSet((plain, plain))]).total == 2 * plain.stat().st_size


def _small_batch_spray(tmp_path, monkeypatch):
    """6,000 one-datagram UDP flows over 2 min, analysed 500 new packets a batch."""
    from pcapbuild import udp
    recs = [udp((f"198.18.{i >> 8 & 255}.{i & 255}", 1024 + i % 50000), ("203.0.113.5", 15000), b"x" * 18,
                t=1000 + i * 0.02) for i in range(6000)]
    monkeypatch.setattr(chunked, "BATCH_RECORDS", 500)
    monkeypatch.setattr(chunked, "BATCH_PACKETS", 0)
    return _write(tmp_path, recs, "spray.pcap")


def test_a_batchs_flow_tables_are_gone_when_the_next_batch_is_analysed(tmp_path, monkeypatch):
    """Memory whatever the capture: the flow table of a batch (every flow it saw, open ones
    included), the rows that left with it and their finished table are freed before the next
    batch is analysed. Session 47: ``_leaving`` kept the batch's table in ``pending`` (a cell
    shared with its chunk generator) and ``batches()`` its loop variable: on a spray of one
    datagram flows two batches' tables were alive at once (485 MiB peak, now 332)."""
    import weakref
    from kscc_traffic import finishing
    path = _small_batch_spray(tmp_path, monkeypatch)
    earlier: list = []
    calls = []
    real_batch, real_finish = chunked.analyze_batch, finishing._finish

    def batch(*a, **k):
        calls.append([r for r in earlier if r() is not None])     # alive when this batch starts
        b = real_batch(*a, **k)
        earlier.append(weakref.ref(b.flows))
        return b

    def finish(flows, *a, **k):
        out = real_finish(flows, *a, **k)
        earlier.extend([weakref.ref(flows), weakref.ref(out)])
        return out

    monkeypatch.setattr(chunked, "analyze_batch", batch)
    monkeypatch.setattr(finishing, "_finish", finish)
    run = ChunkedAnalysis(path, RULES, path.name, chunk_bytes=64 << 10)
    n = 0
    for part in run.batches():
        n += len(part)
        del part                  # (as the command line's loop does)
    assert n == 6000 and len(calls) > 10
    assert [len(alive) for alive in calls] == [0] * len(calls)


def test_a_batchs_flow_table_and_packets_are_gone_when_its_leaving_rows_are_finished(tmp_path, monkeypatch):
    """Session 48: the leaving rows are handed out once the batch's packets and flow table (every
    flow it saw, the open ones too) are freed, so that they are not alive while those rows are
    classified and written (-50 MiB on a spray of one-datagram flows, 90,000 flows a batch)."""
    import weakref
    from kscc_traffic import finishing
    path = _small_batch_spray(tmp_path, monkeypatch)
    tables: list = []
    alive_at_finish = []
    real_batch, real_finish = chunked.analyze_batch, finishing._finish

    def batch(packets, *a, **k):
        b = real_batch(packets, *a, **k)
        tables.extend([weakref.ref(b.flows), weakref.ref(packets)])
        return b

    def finish(flows, *a, **k):
        alive_at_finish.append(sum(r() is not None for r in tables))
        return real_finish(flows, *a, **k)

    monkeypatch.setattr(chunked, "analyze_batch", batch)
    monkeypatch.setattr(finishing, "_finish", finish)
    run = ChunkedAnalysis(path, RULES, path.name, chunk_bytes=64 << 10)
    n = sum(len(part) for part in run.batches())
    assert n == 6000 and len(alive_at_finish) >= 5 and len(tables) >= 20
    assert alive_at_finish == [0] * len(alive_at_finish)
