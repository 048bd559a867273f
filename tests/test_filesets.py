"""File sets (ring buffers, tcpdump -C): found by name, read one after the other as one capture,
giving what the files concatenated give (mergecap -a)."""
from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, UDP

from conftest import ROOT, SHARED
from pcapbuild import eth, pcap_bytes, tcp_session

from kscc_traffic.analyze import analyze_file, analyze_files, capture_names
from kscc_traffic.capture.filesets import FileSet, group_file_sets, iter_capture
from kscc_traffic.chunked import ChunkedAnalysis
from kscc_traffic.rules import load_rules

T0 = 1_764_500_000.0
CLIENT, SERVER, RESOLVER = "192.0.2.10", "203.0.113.5", "198.51.100.53"
SAME = ["ts", "orig_h", "orig_p", "resp_h", "resp_p", "proto", "conn_state", "history", "orig_pkts",
        "resp_pkts", "orig_bytes", "resp_bytes", "server_name", "name_source", "purpose", "verdict",
        "reason", "detail"]


def _records():
    """Three files' records of one capture: a finished connection, then a DNS answer naming the
    server and a SYN that end file 1; the SYN-ACK and the rest in file 2; a third connection in
    file 3."""
    dns = eth(IP(src=RESOLVER, dst=CLIENT) / UDP(sport=53, dport=40000) /
              DNS(id=7, qr=1, qd=DNSQR(qname="eu1.ksc.kaspersky.com"),
                  an=DNSRR(rrname="eu1.ksc.kaspersky.com", rdata=SERVER, ttl=60)))
    query = eth(IP(src=CLIENT, dst=RESOLVER) / UDP(sport=40000, dport=53) /
                DNS(id=7, rd=1, qd=DNSQR(qname="eu1.ksc.kaspersky.com")))
    first = tcp_session((CLIENT, 50000), (SERVER, 23101), t0=T0)
    split = tcp_session((CLIENT, 50001), (SERVER, 23101), t0=T0 + 10)
    last = tcp_session((CLIENT, 50002), (SERVER, 23101), t0=T0 + 20)
    f1 = first + [(T0 + 9.9, query), (T0 + 9.95, dns)] + split[:1]
    return [f1, split[1:], last]


def _write(folder: Path, names, parts, compress=()):
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, recs in zip(names, parts):
        data = pcap_bytes(recs)
        p = folder / name
        p.write_bytes(gzip.compress(data) if name in compress else data)
        paths.append(p)
    return paths


def _table(flows):
    return flows[SAME].sort_values(["ts", "orig_p"]).reset_index(drop=True)


DUMPCAP = ["ring_00001_20261130101500.pcap", "ring_00002_20261130101510.pcap",
           "ring_00003_20261130101520.pcap"]


def test_a_ring_buffer_reads_as_the_files_concatenated(tmp_path):
    parts = _records()
    paths = _write(tmp_path / "ring", DUMPCAP, parts)
    whole = tmp_path / "whole.pcap"
    whole.write_bytes(pcap_bytes([r for p in parts for r in p]))
    rules = load_rules()
    ref = analyze_file(whole, rules).flows
    got = analyze_files(paths[::-1], rules)       # (given in any order)
    assert len(ref) == 4
    assert _table(got.flows).equals(_table(ref))
    assert set(got.flows["capture"]) == {f"{DUMPCAP[0]} .. {DUMPCAP[2]}"}
    split = got.flows[got.flows["orig_p"] == 50001].iloc[0]
    assert (split["conn_state"], split["verdict"], split["server_name"]) == ("SF", "ok", "eu1.ksc.kaspersky.com")
    st = next(iter(got.stats.values()))
    assert st.records == sum(len(p) for p in parts)
    # file by file, the SYN ending file 1 has no answer, and file 2's rest is a flow of its own
    apart = analyze_files(paths, rules, file_sets="separate").flows
    assert len(apart) == 5
    assert sorted(apart[apart["orig_p"] == 50001]["verdict"]) == ["blocked", "ok"]


def test_tiny_chunks_and_the_tshark_engine_give_the_same(tmp_path):
    parts = _records()
    paths = _write(tmp_path, DUMPCAP, parts)
    rules = load_rules()
    fs = FileSet(tuple(paths), "dumpcap")
    ref = _table(analyze_file(fs, rules).flows)
    run = ChunkedAnalysis(fs, rules, "r", chunk_bytes=200)
    import pandas as pd
    assert _table(pd.concat(list(run.batches()), ignore_index=True)).equals(ref)
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed (apt-get install tshark)")
    ts = _table(analyze_file(fs, rules, engine="tshark").flows)
    assert ts[["orig_p", "conn_state", "history", "verdict", "server_name"]].equals(
        ref[["orig_p", "conn_state", "history", "verdict", "server_name"]])


def test_dumpcap_runs_gaps_and_order(tmp_path):
    parts = _records()
    # two runs of the same prefix (dumpcap numbers each run from 1), the second a day later
    a = _write(tmp_path, DUMPCAP[:2], parts[:2])
    later = [[(t + 86400, p) for t, p in recs] for recs in parts]
    b = _write(tmp_path, ["ring_00001_20261201101500.pcap", "ring_00003_20261201101520.pcap"],
               [later[0], later[2]])
    other = _write(tmp_path, ["agent.pcap"], parts[2:])
    units, notes = group_file_sets([other[0], *b, *a])
    assert units == [other[0], FileSet((b[0], b[1]), "dumpcap"), FileSet((a[0], a[1]), "dumpcap")]
    assert len(notes) == 1 and "file number 2 of the set missing" in notes[0] and "20261201101500" in notes[0]
    # first packets against the names' order: not joined, said
    c = _write(tmp_path / "c", ["x_00001_20261130101500.pcap", "x_00002_20261130101510.pcap"],
               [parts[2], parts[0]])
    units, notes = group_file_sets(c)
    assert units == c and "not in the order of the names" in notes[0]


def test_tcpdump_C_sets_in_packet_order_and_what_is_not_a_set(tmp_path):
    parts = _records()
    # tcpdump -C -W 3 after a wrap: x.pcap1 holds the oldest packets
    p = _write(tmp_path, ["x.pcap1", "x.pcap2", "x.pcap0"], parts)
    units, notes = group_file_sets(sorted(p))
    assert units == [FileSet((p[0], p[1], p[2]), "tcpdump")] and notes == []
    # dumpcap -b nametimenum:2, and editcap's names for packets without a time
    t = _write(tmp_path / "t", ["y_20261130101510_00002.pcap", "y_20261130101500_00001.pcap",
                                "z_00002.pcapng", "z_00001.pcapng"], [parts[1], parts[0], parts[1], parts[0]])
    assert group_file_sets(t)[0] == [FileSet((t[1], t[0]), "dumpcap"), FileSet((t[3], t[2]), "dumpcap")]
    # names that merely end in digits, a file given twice, one file: each on its own
    q = _write(tmp_path / "q", ["trace1", "trace2", "a.pcap"], parts)
    assert group_file_sets(q)[0] == q
    assert group_file_sets([q[2], q[2]])[0] == [q[2], q[2]]
    assert group_file_sets(p[:1])[0] == p[:1]
    assert group_file_sets(p, "separate")[0] == p
    assert group_file_sets([q[2], p[0]], "join")[0] == [FileSet((p[0], q[2]), "join")]
    with pytest.raises(ValueError, match="unknown file-set mode"):
        group_file_sets(p, "merge")


def test_set_names_and_a_member_that_cannot_be_read(tmp_path):
    parts = _records()
    paths = _write(tmp_path / "d1", DUMPCAP, parts, compress={DUMPCAP[2]})
    fs = FileSet(tuple(paths), "dumpcap")
    other = tmp_path / "d2" / DUMPCAP[0]
    other.parent.mkdir()
    shutil.copy(paths[0], other)
    assert capture_names([fs, other]) == [f"d1/{DUMPCAP[0]} .. {DUMPCAP[2]}", f"d2/{DUMPCAP[0]}"]
    assert str(fs).endswith(f"{DUMPCAP[0]} .. {DUMPCAP[2]}")
    # the middle file damaged beyond reading: skipped with a warning, the rest analysed
    paths[1].write_bytes(b"not a capture at all, just text\n" * 4)
    a = analyze_file(fs, load_rules())
    assert len(a.flows) == 4       # (file 1's connection, DNS and SYN; file 3's connection)
    assert a.flows.set_index("orig_p").loc[50001, "conn_state"] == "S0"   # (its answer was in file 2)
    assert any(w.startswith(f"{DUMPCAP[1]}: skipped (part of") for w in a.warnings)
    chunks = list(iter_capture(fs, 1 << 20))
    assert [c.last for c in chunks] == [False] * (len(chunks) - 1) + [True]
    assert chunks[-1].stats.records == len(parts[0]) + len(parts[2])


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "kscc_traffic", *map(str, args)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_cli_reads_a_ring_buffer_folder_as_one_capture(tmp_path):
    parts = _records()
    _write(tmp_path / "ring", DUMPCAP, parts)
    p = _cli("analyze", "-f", "jsonl", tmp_path / "ring")
    assert p.returncode == 0, p.stderr
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    assert len(rows) == 4 and {r["verdict"] for r in rows} == {"ok"}
    assert {r["capture"] for r in rows} == {f"{DUMPCAP[0]} .. {DUMPCAP[2]}"}
    p = _cli("analyze", "-f", "jsonl", "--file-set", "separate", tmp_path / "ring")
    assert p.returncode == 1 and len(p.stdout.splitlines()) == 5
    html = tmp_path / "r.html"
    p = _cli("report", "--html", html, tmp_path / "ring")
    assert p.returncode == 0, p.stderr
    assert f"{DUMPCAP[0]} .. {DUMPCAP[2]} (4 flows)" in html.read_text()


def _split_and_compare(capture: Path, tmp_path: Path) -> None:
    """editcap -c splits ``capture`` into 2-3 files named as dumpcap names them; read as a set they
    give the flows of the whole file (all columns but uid and capture)."""
    rules = load_rules()
    ref = analyze_file(capture, rules).flows
    out = subprocess.run(["capinfos", "-c", "-M", str(capture)], capture_output=True, text=True, timeout=60).stdout
    records = int(re.search(r"Number of packets:\s*(\d+)", out)[1])
    if records < 2:
        pytest.skip(f"{records} record: nothing to split")
    ext = ".pcapng" if capture.suffix == ".pcapng" else ".pcap"
    subprocess.run(["editcap", "-c", str(-(-records // 3)), str(capture), str(tmp_path / f"part{ext}")],
                   check=True, capture_output=True, timeout=60)
    parts = sorted(tmp_path.glob("part_*"))
    assert len(parts) >= 2
    units, notes = group_file_sets(parts[::-1])
    assert units == [FileSet(tuple(parts), "dumpcap")] and notes == []
    got = analyze_files(parts, rules).flows
    cols = [c for c in ref.columns if c not in ("uid", "capture")]
    key = ["ts", "orig_h", "orig_p", "resp_h", "resp_p"]
    a = _uids_as_keys(ref, key)[cols].sort_values(key).reset_index(drop=True).astype(str)
    b = _uids_as_keys(got, key)[cols].sort_values(key).reset_index(drop=True).astype(str)
    assert a.equals(b)


def _uids_as_keys(flows, key):
    """``flows`` with each uid cited in a detail (a stale connection's retry, say) written as that
    flow's ``key`` values: uids are drawn from the capture's name, so a split set cites other ones."""
    by_uid = {u: "/".join(map(str, k)) for u, *k in flows[["uid", *key]].itertuples(index=False)}
    out = flows.copy()
    out["detail"] = out["detail"].astype(str).str.replace(
        r"\bC[0-9A-Za-z]{17}\b", lambda m: by_uid.get(m[0], m[0]), regex=True)
    return out


def _split_cases():
    caps = sorted(p for p in (ROOT / "samples" / "captures").iterdir() if p.suffix in (".pcap", ".pcapng"))
    shared = SHARED / "corpus"
    caps += sorted(p for p in shared.glob("*/*") if p.suffix in (".pcap", ".pcapng")
                   and not p.name.startswith(("bad_", "empty_", "cut-")))
    return caps


#: packets without a time (pcapng Simple Packet Blocks) are timed from the packet before them
#: in their file, so a file of them split off starts again from 0: not the whole file's times
NO_TIME = {"pcapng-be_5if-ether-null_testsuite.pcapng"}


@pytest.mark.parametrize("capture", _split_cases(), ids=lambda p: p.name)
def test_a_capture_split_by_editcap_reads_as_the_whole(capture, tmp_path):
    if shutil.which("editcap") is None or shutil.which("capinfos") is None:
        pytest.skip("editcap/capinfos are not installed (apt-get install wireshark-common)")
    if capture.name in NO_TIME:
        pytest.skip("Simple Packet Blocks: their times start again in each file split off")
    _split_and_compare(capture, tmp_path)


def test_members_compressed_later_stay_in_their_set_and_a_copy_is_read_once(tmp_path):
    """(newcomer 19 F2) a ring buffer whose older members were gzipped is one set; a member kept
    both as it is and gzipped (gzip -k) is read once, with a warning."""
    parts = _records()
    paths = _write(tmp_path / "r", [DUMPCAP[0] + ".gz", DUMPCAP[1], DUMPCAP[2]], parts, compress={DUMPCAP[0] + ".gz"})
    units, notes = group_file_sets(paths)
    assert units == [FileSet(tuple(paths), "dumpcap")] and notes == []
    copy = tmp_path / "r" / (DUMPCAP[1] + ".gz")
    copy.write_bytes(gzip.compress(paths[1].read_bytes()))
    units, notes = group_file_sets([*paths, copy])
    assert units == [FileSet(tuple(paths), "dumpcap")]
    assert len(notes) == 1 and "the same member of a file set as" in notes[0] and "not read again" in notes[0]


def test_cli_skips_a_file_of_a_set_that_cannot_be_read(tmp_path):
    """(newcomer 19 F1) a ring buffer whose last file a crash cut inside its header: the others
    are read, with a warning (no --lenient needed); a file on its own still stops the run."""
    parts = _records()
    paths = _write(tmp_path / "ring", DUMPCAP[:2], parts[:2])
    (tmp_path / "ring" / DUMPCAP[2]).write_bytes(pcap_bytes([])[:20])         # (its header cut)
    p = _cli("analyze", "-f", "jsonl", tmp_path / "ring")
    assert p.returncode == 0, p.stderr
    assert len(p.stdout.splitlines()) == 3          # (the connection across files 1-2, DNS, the first)
    assert f"Warning: skipped {tmp_path / 'ring' / DUMPCAP[2]}: " in p.stderr and "its other files are read" in p.stderr
    lone = tmp_path / "lone.pcap"
    lone.write_bytes(pcap_bytes([])[:20])
    p = _cli("analyze", "-f", "jsonl", lone, paths[0])
    assert p.returncode == 2 and p.stdout == ""


def test_a_set_given_twice_is_two_sets_and_a_file_given_again_stays_in_its_set(tmp_path):
    """(newcomer 19 F13, F16) `analyze dir dir` and `analyze dir dir/x_00002…`: each occurrence
    layer is grouped on its own (it was every file alone, with invented no_answer flows); a
    prefix holding a newline is still a prefix."""
    parts = _records()
    paths = _write(tmp_path / "r", DUMPCAP, parts)
    fs = FileSet(tuple(paths), "dumpcap")
    assert group_file_sets([*paths, *paths]) == ([fs, fs], [])
    assert group_file_sets([*paths, paths[1]]) == ([fs, paths[1]], [])
    odd = _write(tmp_path / "n", ["a\nb_00001_20261130101500.pcap", "a\nb_00002_20261130101510.pcap"], parts[:2])
    assert group_file_sets(odd)[0] == [FileSet(tuple(odd), "dumpcap")]
    names = capture_names([fs, fs])
    assert names[0] != names[1] and names[1].startswith(DUMPCAP[0] + " (2)")


def test_a_file_of_a_set_failing_mid_way_keeps_its_counters(tmp_path, monkeypatch):
    """A file of the set whose reading raises OSError after some chunks (an I/O error on a bad
    disk): the frames it gave were analysed, so its records and bytes stay in the set's stats,
    with a warning saying where it stopped; the next file is read on."""
    import errno
    from kscc_traffic.capture import files as files_mod
    parts = _records()
    big = [tcp_session((CLIENT, 51000 + i), (SERVER, 23101), t0=T0 + 10.5 + i / 100, s_data=b"s" * 900)
           for i in range(20)]
    parts[1] = parts[1] + [r for s in big for r in s]
    parts[1].sort(key=lambda r: r[0])
    paths = _write(tmp_path / "d", DUMPCAP, parts)
    fs = FileSet(tuple(paths), "dumpcap")
    real = files_mod._open_path
    fail_after = 8192

    def failing(path):
        f, reader = real(path)
        if Path(path).name != DUMPCAP[1]:
            return f, reader
        got = [0]
        plain = reader.read

        def read(n):
            if got[0] >= fail_after:
                raise OSError(errno.EIO, "Input/output error")
            out = plain(n)
            got[0] += len(out)
            return out
        reader.read = read
        return f, reader
    monkeypatch.setattr(files_mod, "_open_path", failing)
    chunks = list(iter_capture(fs, 4096))
    st = chunks[-1].stats
    yielded = [len(c) for c in chunks]
    middle = sum(n for c, n in zip(chunks, yielded)) - len(parts[0]) - len(parts[2])
    assert 0 < middle < len(parts[1])
    assert st.records == sum(yielded) == len(parts[0]) + middle + len(parts[2])
    sizes = [p.stat().st_size for p in paths]
    # (file 2's bytes read: its header and the records handed out before the error)
    assert st.bytes_read == sizes[0] + sizes[2] + 24 + sum(16 + len(bytes(r)) for _, r in parts[1][:middle])
    assert fail_after <= st.bytes_read - sizes[0] - sizes[2] < fail_after + 4096
    line = [w for w in st.warnings if w.startswith(DUMPCAP[1])]
    assert line == [f"{DUMPCAP[1]}: reading stopped after {middle} records ({st.bytes_read - sizes[0] - sizes[2]} "
                    f"bytes; part of {fs}): Input/output error; the rest of the file is not analysed"]
    assert [c.last for c in chunks] == [False] * (len(chunks) - 1) + [True]
    # the analysis: file 3's connection and file 1's still there, the counters the frames read
    a = ChunkedAnalysis(fs, load_rules(), "set", chunk_bytes=4096)
    flows = list(a.batches())
    assert a.stats.records == a.stats.ip_packets == st.records
    assert f"{DUMPCAP[1]}: reading stopped after {middle} records ({st.bytes_read - sizes[0] - sizes[2]} bytes; " \
        "part of set): Input/output error; the rest of the file is not analysed" in a.stats.warnings
    assert sum(len(f) for f in flows) >= 3


def test_small_files_of_a_set_share_chunks(tmp_path):
    """A ring buffer of many small files (editcap -c 50, dumpcap -b packets:N) is read in chunks
    of up to chunk_bytes that join several files' records (each chunk costs a batch of the
    analysis: 220 files of 50 packets took ten times the CPU of the file they were cut from).
    The records, their link types and numbers, and the flows are those of the files one by one."""
    from kscc_traffic.capture.files import read_frames
    sessions = [tcp_session((CLIENT, 52000 + i), (SERVER, 23101), t0=T0 + i, c_data=b"c" * 40 * i)
                for i in range(40)]
    names = [f"ring_{i:05d}_20261130{101500 + i:06d}.pcap" for i in range(40)]
    paths = _write(tmp_path / "ring", names, sessions)
    # file 7 is raw IP (LINKTYPE_RAW 101): each record keeps its own link type in a joined chunk
    paths[7].write_bytes(pcap_bytes([(t, p.payload) for t, p in sessions[7]], linktype=101))
    fs = FileSet(tuple(paths), "dumpcap")
    one_by_one = [read_frames(p) for p in paths]
    want = [(int(f.ts_ns[i]), int(f.linktype[i]), f.data(i)) for f in one_by_one for i in range(len(f))]
    sizes = [p.stat().st_size for p in paths]
    for chunk_bytes in (1 << 20, 3 * max(sizes), min(sizes) // 2):
        chunks = list(iter_capture(fs, chunk_bytes))
        got = [(int(c.ts_ns[i]), int(c.linktype[i]), c.data(i)) for c in chunks for i in range(len(c))]
        assert got == want
        assert [c.last for c in chunks] == [False] * (len(chunks) - 1) + [True]
        assert all(len(c.buf) <= chunk_bytes for c in chunks if chunk_bytes > max(sizes))
        if chunk_bytes == 1 << 20:
            assert len(chunks) == 1
        elif chunk_bytes > max(sizes):
            assert 1 < len(chunks) <= len(paths) // 2
        else:       # (files larger than a chunk: each read in several, none joined with another's)
            assert len(chunks) > len(paths)
        assert chunks[-1].stats.records == len(want)
    assert {int(c) & 0xFFFF for c in read_frames(paths[7]).linktype} == {101}
    rules = load_rules()
    whole = tmp_path / "whole.pcap"
    whole.write_bytes(pcap_bytes([r for s in sessions for r in s]))
    ref = _table(analyze_file(whole, rules).flows)
    got = _table(analyze_file(fs, rules).flows)
    assert len(ref) == 40 and got.equals(ref)
    apart = [analyze_file(p, rules).flows for p in paths[:3]]
    assert [f["orig_p"].tolist() for f in apart] == [[52000], [52001], [52002]]
