"""Break-it round 12: findings 6, 7 and 9 (pcapng Simple Packet Blocks without a time, a packet
block naming an undefined interface under the tshark engine, a RST carrying text). Each test
fails without its fix; both engines are checked where tshark is installed."""
from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from chunkcmp import RULES, assert_same
from kscc_traffic.analyze import analyze_file
from kscc_traffic.capture import files
from kscc_traffic.capture.files import iter_frames, read_frames

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "captures"
BASELINE = SAMPLES / "baseline_agent.pcap"
HAVE_TSHARK = shutil.which("tshark") is not None
ENGINES = ["builtin"] + (["tshark"] if HAVE_TSHARK else [])
needs_tshark = pytest.mark.skipif(not HAVE_TSHARK, reason="tshark is not installed")


# ------------------------------------------------------------------------------ pcapng writer
def _blk(kind: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    return struct.pack("<II", kind, len(body) + 12) + body + struct.pack("<I", len(body) + 12)


SHB = _blk(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))


def _idb(linktype: int = 1, snaplen: int = 65535) -> bytes:
    return _blk(1, struct.pack("<HHI", linktype, 0, snaplen))


def _epb(ifid: int, ts_ns: int, data: bytes) -> bytes:
    us = ts_ns // 1000                                   # default if_tsresol: microseconds
    return _blk(6, struct.pack("<IIIII", ifid, us >> 32, us & 0xFFFFFFFF, len(data), len(data)) + data)


def _spb(data: bytes) -> bytes:
    return _blk(3, struct.pack("<I", len(data)) + data)


def _baseline_frames() -> list[tuple[int, bytes]]:
    fr = read_frames(BASELINE)
    return [(int(fr.ts_ns[i]), fr.data(i)) for i in range(len(fr))]


def _histories(flows) -> dict[tuple[str, int], str]:
    return {(r.proto, r.resp_p): r.history for r in flows.itertuples() if r.proto == "tcp"}


# ------------------------------------------------------------------------------ finding 7
def test_spb_only_pcapng_keeps_file_order_and_warns(tmp_path):
    """F7: every packet in a Simple Packet Block (no time): the packets keep their file order
    (1 ns apart from 1970-01-01), so the TCP histories are the baseline's, not the content order
    of equal timestamps; one warning says so. Both engines give the same flows."""
    recs = _baseline_frames()
    path = tmp_path / "spb_only.pcapng"
    # (with two custom blocks, which Wireshark lists as frames without a time: no packets)
    custom = [_blk(0xBAD, struct.pack("<I", 32473) + b"custom data"),
              _blk(0x40000BAD, struct.pack("<I", 32473) + b"do not copy")]
    path.write_bytes(SHB + _idb() + b"".join(_spb(d) + (custom[i % 2] if i in (20, 90) else b"")
                                             for i, (_, d) in enumerate(recs)))
    base = analyze_file(BASELINE, RULES).flows
    want = _histories(base)
    assert want[("tcp", 23101)] == "ShADdaFf" and want[("tcp", 1443)] == "ShAdDFf"
    assert want[("tcp", 80)] == "ShADdfFa"
    line = (f"{path.name}: 149 packets in Simple Packet Blocks carry no timestamp (every packet of the "
            "capture): each is timed 1 ns after the packet before it, from 1970-01-01 00:00:00 UTC, "
            "so they keep their file order; flow times and durations are not real, the time rules (3 s "
            "without an answer, idle timeouts, the 5 s close delay) cannot apply, and no flow ends by time, "
            "so a large capture's flows are all held in memory")
    got = {}
    for engine in ENGINES:
        a = analyze_file(path, RULES, engine)
        f = a.flows
        assert len(f) == 18, engine
        assert _histories(f) == want, engine
        assert (f.verdict == "ok").all(), engine
        assert a.warnings == [line], (engine, a.warnings)
        # the flow's first packet is the n-th record of the file: ts_ns n (1-based)
        assert f.sort_values("ts_ns").ts_ns.tolist()[:4] == [1, 3, 15, 17], engine
        assert int(f.ts_ns.max()) == 134 and float(f.duration.max()) < 1e-6, engine
        got[engine] = f.drop(columns=["uid"]).sort_values(["ts_ns"]).reset_index(drop=True)
    if HAVE_TSHARK:
        import pandas as pd
        pd.testing.assert_frame_equal(got["builtin"], got["tshark"])


def test_spb_times_read_whole_in_chunks_and_without_the_compiled_walk(tmp_path, monkeypatch):
    """F7: the times given to Simple Packet Blocks are the same read whole, in chunks (the count
    since the last timed packet carries over a chunk boundary) and with the Python walk."""
    data = (SHB + _idb() + _spb(b"a" * 40) + _spb(b"b" * 40) + _epb(0, 5_000_000_000, b"c" * 40)
            + b"".join(_spb(bytes([i]) * 40) for i in range(6)) + _epb(0, 6_000_000_000, b"d" * 40)
            + _spb(b"e" * 40))
    want = [1, 2, 5 * 10**9, *(5 * 10**9 + k for k in range(1, 7)), 6 * 10**9, 6 * 10**9 + 1]
    whole = read_frames(data)
    assert whole.ts_ns.tolist() == want
    assert whole.stats.warnings == [
        "<bytes>: 9 packets in Simple Packet Blocks carry no timestamp: each is timed 1 ns after "
        "the packet before it, so they keep their file order; the times and durations of their "
        "flows are approximate (from 1970-01-01 00:00:00 UTC when no packet before them has a time)"]
    for chunk in (64, 100, 150, 333):
        parts = list(iter_frames(data, chunk))
        assert len(parts) > 2, chunk
        assert np.concatenate([p.ts_ns for p in parts]).tolist() == want, chunk
        assert parts[-1].stats.warnings == whole.stats.warnings, chunk
    monkeypatch.setattr(files, "_walk", None)
    assert read_frames(data).ts_ns.tolist() == want


def test_spb_only_pcapng_chunked_equals_whole(tmp_path):
    """F7: the analysis of a Simple-Packet-Block capture read in small chunks equals the whole
    read, warnings included."""
    recs = _baseline_frames()
    path = tmp_path / "spb_chunks.pcapng"
    path.write_bytes(SHB + _idb() + b"".join(_spb(d) for _, d in recs))
    flows = assert_same(path, [2000, 9000])
    assert _histories(flows)[("tcp", 443)] == "ShADdaFf"


def test_spb_mixed_with_epbs_follow_the_packet_before(tmp_path):
    """F7: Simple Packet Blocks among Enhanced Packet Blocks take the time of the packet before
    + 1 ns each: flows as the baseline's, times to the microsecond, one warning (both engines)."""
    recs = _baseline_frames()
    spb_at = {3, 4, 60}                      # client ACK, ClientHello, and a later packet
    path = tmp_path / "spb_mixed.pcapng"
    path.write_bytes(SHB + _idb() + b"".join(_spb(d) if i in spb_at else _epb(0, t, d)
                                             for i, (t, d) in enumerate(recs)))
    base = analyze_file(BASELINE, RULES).flows
    for engine in ENGINES:
        a = analyze_file(path, RULES, engine)
        f = a.flows
        assert _histories(f) == _histories(base), engine
        assert sorted(f.ts_ns.tolist()) == sorted(base.ts_ns.tolist()), engine
        assert (f.verdict == "ok").all(), engine
        assert len(a.warnings) == 1 and a.warnings[0].startswith(
            f"{path.name}: 3 packets in Simple Packet Blocks carry no timestamp: each is timed 1 ns"), engine


# ------------------------------------------------------------------------------ finding 6
def _missing_idb(tmp_path, bad: set[int], name: str) -> Path:
    """The baseline's frames as EPBs on interface 0, except those at ``bad``, which name an
    interface 1 the section does not define."""
    recs = _baseline_frames()
    path = tmp_path / name
    path.write_bytes(SHB + _idb() + b"".join(_epb(1 if i in bad else 0, t, d)
                                             for i, (t, d) in enumerate(recs)))
    return path


@needs_tshark
def test_undefined_interface_tshark_reads_on_through_a_copy(tmp_path, monkeypatch):
    """F6: a packet block naming an undefined interface (frame 3, the agent's SYN): tshark gives
    up there (2 frames read); the tshark engine then dissects a copy of the 148 records the
    built-in reader reads, so both engines give the same 18 flows, and it says so in one line."""
    path = _missing_idb(tmp_path, {2}, "missing_idb.pcapng")
    import tempfile
    tmpd = tmp_path / "tmpd"
    tmpd.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmpd))      # (where the copy is written)
    skipped = (f"{path.name}: 1 packet block names an interface not defined in its section "
               "(first at offset 316); skipped")
    b = analyze_file(path, RULES, "builtin")
    t = analyze_file(path, RULES, "tshark")
    assert b.warnings == [skipped]
    assert t.warnings == [skipped, f"{path.name}: tshark stopped reading after 2 frames: pcapng: "
                          "interface index 1 is not less than section interface count 1; it dissected "
                          "instead a copy of the 148 records the built-in reader reads in the file (what "
                          "that reader skipped is said above)"]
    assert len(b.flows) == len(t.flows) == 18
    for a in (b, t):
        r = a.flows[a.flows.resp_p == 23101].iloc[0]
        assert (r.history, bool(r.partial), r.verdict) == ("^hADdaFf", True, "ok")
    cols = ["ts_ns", "orig_p", "resp_p", "history", "orig_bytes", "resp_bytes", "verdict", "reason"]
    key = ["ts_ns", "orig_p"]
    assert (b.flows[cols].sort_values(key).values.tolist()
            == t.flows[cols].sort_values(key).values.tolist())
    st = t.stats[str(path)]
    assert (st.records, st.malformed) == (148, 1)
    assert list(tmpd.iterdir()) == []                         # the copy is removed


@needs_tshark
def test_undefined_interface_in_the_first_block_is_no_error_for_tshark(tmp_path):
    """F6: tshark reads no frame at all (the first packet block names an undefined interface):
    the tshark engine no longer fails, it reads the copy (148 records), as the builtin one."""
    path = _missing_idb(tmp_path, {0}, "missing_first.pcapng")
    t = analyze_file(path, RULES, "tshark")
    b = analyze_file(path, RULES, "builtin")
    assert t.warnings[-1].startswith(f"{path.name}: tshark stopped reading at its first frame: pcapng: "
                                     "interface index 1 is not less than section interface count 1; it "
                                     "dissected instead a copy of the 148 records")
    assert sorted(t.flows.history) == sorted(b.flows.history)
    assert len(t.flows) == 18


@needs_tshark
def test_tshark_stopping_where_the_builtin_reader_reads_past_damage_reads_its_copy(tmp_path):
    """F6: damage the built-in reader reads past (a block whose trailing length is wrong: the next
    block is whole) and tshark does not: the tshark engine dissects the built-in reader's
    records, so both engines analyse the 148 whole records."""
    recs = _baseline_frames()
    blocks = [_epb(0, t, d) for t, d in recs]
    bad = bytearray(blocks[50])
    bad[-4:] = struct.pack("<I", len(bad) + 4)           # trailing length != block length
    blocks[50] = bytes(bad)
    path = tmp_path / "damaged.pcapng"
    path.write_bytes(SHB + _idb() + b"".join(blocks))
    b = analyze_file(path, RULES, "builtin")
    t = analyze_file(path, RULES, "tshark")
    assert b.stats[str(path)].records == t.stats[str(path)].records == len(recs) - 1
    assert "reading resumed at offset" in b.warnings[0] and t.warnings[0] == b.warnings[0]
    assert t.warnings[1].startswith(f"{path.name}: tshark stopped reading after 50 frames: ")
    assert "a copy of the 148 records the built-in reader reads" in t.warnings[1]
    assert sorted(t.flows.history) == sorted(b.flows.history)


def test_tshark_stopping_where_the_builtin_reader_stops_too_says_what_is_lost(tmp_path):
    """F6: damage neither reader reads past (nothing whole after it): no copy; the tshark engine
    keeps the frames before it and its warning says the rest is not analysed."""
    recs = _baseline_frames()
    blocks = [_epb(0, t, d) for t, d in recs[:51]]
    bad = bytearray(blocks[50])
    bad[-4:] = struct.pack("<I", len(bad) + 4)           # trailing length != block length
    blocks[50] = bytes(bad)
    path = tmp_path / "damaged.pcapng"
    path.write_bytes(SHB + _idb() + b"".join(blocks) + b"\xee" * 300)
    b = analyze_file(path, RULES, "builtin")
    t = analyze_file(path, RULES, "tshark")
    assert b.stats[str(path)].records == t.stats[str(path)].records == 50
    assert "reading stopped there" in b.warnings[0]
    assert len(t.warnings) == 1
    w = t.warnings[0]
    assert w.startswith(f"{path.name}: tshark stopped reading after 50 frames: ")
    assert w.endswith("; the rest of the file is not analysed")
    assert sorted(t.flows.history) == sorted(b.flows.history)


# ------------------------------------------------------------------------------ finding 9
def test_rst_text_is_not_the_servers_answer_nor_a_cut(tmp_path):
    """F9: a server answers the ClientHello with a RST carrying text (RFC 1122 §4.2.2.12). The
    text is not the server's first bytes (builtin said server_proto 'other') and nothing was cut
    (tshark, which shows the text as the reset cause, said payload_cut and blamed the snaplen):
    both engines give the same row, whole and chunked."""
    from scapy.layers.inet import IP, TCP
    from chunkcmp import row, write
    from pcapbuild import eth
    from test_decode_more_encaps import client_hello
    agent, cloud = "192.0.2.10", "203.0.113.10"
    hello = client_hello("eu1.ksc.kaspersky.com")

    def c(t, load=b"", **kw):
        return t, bytes(eth(IP(src=agent, dst=cloud) / TCP(sport=50000, dport=23101, **kw) / load))

    def s(t, load=b"", **kw):
        return t, bytes(eth(IP(src=cloud, dst=agent) / TCP(sport=23101, dport=50000, **kw) / load))
    text = b"Connection refused by policy 17\r\n"
    recs = [c(1.0, flags="S", seq=99), s(1.01, flags="SA", seq=499, ack=100),
            c(1.02, flags="A", seq=100, ack=500), c(1.03, flags="PA", seq=100, ack=500, load=hello),
            s(1.06, flags="RA", seq=500, ack=100 + len(hello), load=text)]
    path = write(tmp_path, recs, name="rst_text.pcap")
    r = row(assert_same(path, [300]), resp_p=23101)
    # (history: Zeek writes no d for a RST's payload, only r: break-it 23 F1/F7; then t: the
    # payload at the server's current number, Zeek's T, session 61)
    want = ("RSTR", "ShADrt", 0, "tls", "", False, "blocked", "tls_failed",
            # (who closed and when, newcomer 23 F20)
            "TLS handshake aborted: the server reset the connection (RST, RSTR) 0.03 s after the ClientHello, "
            "before the server sent a byte")
    cols = ["conn_state", "history", "resp_bytes", "client_proto", "server_proto", "payload_cut",
            "verdict", "reason", "detail"]
    assert tuple(getattr(r, k) for k in cols) == want
    assert r.sni == "eu1.ksc.kaspersky.com"
    if HAVE_TSHARK:
        t = row(analyze_file(path, RULES, "tshark").flows, resp_p=23101)
        assert tuple(getattr(t, k) for k in cols) == want
