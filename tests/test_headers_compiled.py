"""The compiled header decode of the fast path (kscc_traffic/capture/_headers.c) against its numpy
twin (decode._chunk, the fallback when the module is not built): the same rows, the same frames
counted not IP, the same frames left to the slow path, on the samples and on hostile bytes."""
from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from kscc_traffic.capture import decode as dec
from kscc_traffic.capture.files import read_frames
from kscc_traffic.capture.frames import Frames
from kscc_traffic.capture.packets import PACKET_COLUMNS

pytest.importorskip("kscc_traffic.capture._headers")

SAMPLES = sorted(p for p in (Path(__file__).resolve().parents[1] / "samples" / "captures").rglob("*")
                 if p.is_file() and (".pcap" in p.name) and not p.name.endswith(".json"))


def _fast_both(frames: Frames, monkeypatch, chunk: int = dec.CHUNK):
    """decode._fast of ``frames`` (every frame of a fast link type), compiled and numpy (with
    chunks of ``chunk`` frames): (non_ip, nonip_mask, has_row, out) of each."""
    b = np.frombuffer(frames.buf, np.uint8)
    off = np.asarray(frames.offset, np.int64)
    cap = np.asarray(frames.caplen, np.int64)
    lt = np.asarray(frames.linktype, np.int64)
    rows = (off >= 0) & (cap > 0) & (off + cap <= len(b)) & np.isin(lt, list(dec._FAST_LINKTYPES))
    res = []
    for compiled in (True, False):
        monkeypatch.setattr(dec, "_compiled", compiled)
        monkeypatch.setattr(dec, "CHUNK", chunk)
        out = {k: np.zeros(len(off), PACKET_COLUMNS[k]) for k in dec.ROW_FIELDS}
        has_row = np.zeros(len(off), bool)
        non_ip, mask = dec._fast(b, off, cap, lt, rows, out, has_row)
        res.append((non_ip, mask, has_row, out))
    return res


def _same(res):
    (n1, m1, h1, o1), (n2, m2, h2, o2) = res
    assert n1 == n2
    np.testing.assert_array_equal(m1, m2)
    np.testing.assert_array_equal(h1, h2)
    for k in o1:
        np.testing.assert_array_equal(o1[k][h1], o2[k][h2], err_msg=k)
    return int(h1.sum())


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_samples_same_rows(path, monkeypatch):
    fr = read_frames(path)
    if len(fr) == 0 or len(fr.buf) < dec._WH:
        pytest.skip("no frames")
    _same(_fast_both(fr, monkeypatch))
    # and the whole decode (with the slow path after it): identical columns
    monkeypatch.setattr(dec, "_compiled", True)
    p = dec.decode(fr)
    monkeypatch.setattr(dec, "_compiled", False)
    q = dec.decode(fr)
    for k in PACKET_COLUMNS:
        np.testing.assert_array_equal(p.cols[k], q.cols[k], err_msg=k)
    assert (p.stats.non_ip, p.stats.malformed, p.stats.warnings) == \
        (q.stats.non_ip, q.stats.malformed, q.stats.warnings)


def test_samples_give_rows():
    """(the comparison above is not vacuous: the compiled path gives the baseline's rows)"""
    fr = read_frames(Path(__file__).resolve().parents[1] / "samples" / "captures" / "baseline_agent.pcap")
    b = np.frombuffer(fr.buf, np.uint8)
    out = {k: np.zeros(len(fr), PACKET_COLUMNS[k]) for k in dec.ROW_FIELDS}
    has_row = np.zeros(len(fr), bool)
    dec._fast(b, np.asarray(fr.offset, np.int64), np.asarray(fr.caplen, np.int64),
              np.asarray(fr.linktype, np.int64), np.ones(len(fr), bool), out, has_row)
    # (every frame but the last, whose 96-byte window passes the buffer's end: the slow path's)
    assert has_row[:-1].all() and not has_row[-1] and set(out["proto"][has_row].tolist()) >= {6, 17}


# ---- hostile frames: valid headers of every fast link type, then bytes overwritten and cut
def _ip4(proto: int, l4: bytes, ihl: int = 5, frag: int = 0) -> bytes:
    tot = 4 * ihl + len(l4)
    return struct.pack(">BBHHHBBH4s4s", 0x40 | ihl, 0, tot, 0x1234, frag, 64, proto, 0,
                       bytes([192, 0, 2, 1]), bytes([198, 51, 100, 7])) + b"\x01" * (4 * ihl - 20) + l4


def _ip6(nh: int, l4: bytes) -> bytes:
    return struct.pack(">IHBB16s16s", 0x60000000, len(l4), nh, 57,
                       bytes.fromhex("20010db8000000000000000000000001"),
                       bytes.fromhex("20010db8000000000000000000000002")) + l4


_TCP = struct.pack(">HHIIBBHHH", 49152, 443, 1000, 2000, 0x50, 0x18, 512, 0xBEEF, 0) + b"hello"
_UDP = struct.pack(">HHHH", 5353, 53, 8 + 6, 0xCAFE) + b"query!"
_ICMP = struct.pack(">BBHI", 8, 0, 0xF00D, 7) + b"ping"
_L4 = [(6, _TCP), (17, _UDP), (1, _ICMP), (58, _ICMP), (47, b"\x00" * 8)]


def _link(lt: int, ip: bytes, tags: int, ethertype: int | None) -> bytes:
    v6 = ip[0] >> 4 == 6
    et = ethertype if ethertype is not None else (0x86DD if v6 else 0x0800)
    if lt == 1:
        head = b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x10"
        for k in range(tags):
            head += struct.pack(">HH", (0x8100, 0x88A8, 0x9100)[k % 3], (k * 7) & 0xFFF)
        return head + struct.pack(">H", et) + ip
    if lt == 113:
        return struct.pack(">HHH8sH", 4, 1, 6, b"\x02" * 8, et) + ip
    if lt == 276:
        return struct.pack(">HHIHBB8s", et, 0, 2, 1, 4, 6, b"\x02" * 8) + ip
    if lt in (0, 108):
        fam = 30 if v6 else 2
        return (struct.pack(">I", fam) if lt == 108 else struct.pack("<I", fam)) + ip
    return ip


_FRAME = st.builds(
    lambda lt, l4, v6, tags, et, ihl, frag, edits, cut:
        (lt, _cut(_edit(_link(lt, _ip6(l4[0], l4[1]) if v6 else _ip4(l4[0], l4[1], ihl, frag),
                             tags, et), edits), cut)),
    st.sampled_from(sorted(dec._FAST_LINKTYPES)),
    st.sampled_from(_L4), st.booleans(), st.integers(0, 4),
    st.one_of(st.none(), st.sampled_from([0x0800, 0x86DD, 0x0806, 0x05DC, 0x8870, 0x8847, 0x88E5, 0x0000])),
    st.sampled_from([5, 5, 5, 6]), st.sampled_from([0, 0, 0x4000, 0x2000, 1]),
    st.lists(st.tuples(st.integers(0, 110), st.integers(0, 255)), max_size=4),
    st.integers(0, 200))


def _edit(data: bytes, edits) -> bytes:
    d = bytearray(data)
    for at, v in edits:
        if at < len(d):
            d[at] = v
    return bytes(d)


def _cut(data: bytes, cut: int) -> bytes:
    return data[:cut] if cut < len(data) else data


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.lists(st.tuples(_FRAME, st.binary(max_size=5)), min_size=1, max_size=12),
       chunk=st.sampled_from([dec.CHUNK, 1, 3]), tail=st.binary(max_size=120))
def test_hostile_frames_same_rows(frames, chunk, tail, monkeypatch):
    """Mixed link types, cut headers, overwritten bytes, junk between records and after the last
    (a frame near the buffer's end is left to the slow path by both): the same rows."""
    buf, off, cap, lt = b"", [], [], []
    for (t, data), junk in frames:
        buf += junk
        off.append(len(buf))
        cap.append(len(data))
        lt.append(t)
        buf += data
    buf += tail
    n = len(off)
    fr = Frames(buf, np.arange(n, dtype=np.int64) * 10**6, np.array(lt, np.int32),
                np.array(off, np.int64), np.array(cap, np.int32), np.array(cap, np.int32))
    if len(buf) < dec._WH:
        return
    _same(_fast_both(fr, monkeypatch, chunk))
    p = [None, None]
    for k, compiled in enumerate((True, False)):
        monkeypatch.setattr(dec, "_compiled", compiled)
        p[k] = dec.decode(fr)
    for k in PACKET_COLUMNS:
        np.testing.assert_array_equal(p[0].cols[k], p[1].cols[k], err_msg=k)
    assert (p[0].stats.non_ip, p[0].stats.malformed) == (p[1].stats.non_ip, p[1].stats.malformed)


def test_random_bytes_same_rows(monkeypatch):
    """Frames of random bytes (seeded), every fast link type: the same rows and non-IP counts."""
    rng = np.random.default_rng(31)
    n = 3000
    caps = rng.integers(0, 140, n)
    buf = rng.integers(0, 256, int(caps.sum()) + 200, dtype=np.uint8)
    # a version nibble 4 / 6 and an IPv4 ethertype now and then, so that some frames decode
    starts = np.concatenate([[0], np.cumsum(caps)[:-1]])
    buf[starts[::3] + 14] = 0x45
    buf[starts[::3] + 12], buf[starts[::3] + 13] = 0x08, 0x00
    buf[starts[1::3]] = 0x60
    lt = rng.choice(sorted(dec._FAST_LINKTYPES), n)
    fr = Frames(buf.tobytes(), np.arange(n, dtype=np.int64), lt.astype(np.int32), starts.astype(np.int64),
                caps.astype(np.int32), caps.astype(np.int32))
    assert _same(_fast_both(fr, monkeypatch, 257)) > 0


def test_bad_arguments_raise():
    from kscc_traffic.capture import _headers
    n = 2
    z = np.zeros(n, np.int64)
    out = tuple(np.zeros(n, PACKET_COLUMNS[k]) for k in dec.ROW_FIELDS)
    args = [b"\0" * 200, z, z, z, np.ones(n, bool), out, np.zeros(n, bool), np.zeros(n, bool),
            dec._ETCLASS, dec._TPID, dec._V4_SLOW, dec._V6_SLOW, dec._FAM, dec._DPORT_SLOW,
            dec._SPORT_SLOW, dec._LLC]
    _headers.fast_rows(*args)
    bad = list(args)
    bad[5] = out[:-1]                                       # a column missing
    with pytest.raises(ValueError):
        _headers.fast_rows(*bad)
    bad = list(args)
    bad[5] = out[:1] + (np.zeros(n, np.int32),) + out[2:]   # ipver of another dtype
    with pytest.raises(TypeError):
        _headers.fast_rows(*bad)
    bad = list(args)
    bad[2] = np.zeros(n + 1, np.int64)                      # cap of another length
    with pytest.raises(ValueError):
        _headers.fast_rows(*bad)
    bad = list(args)
    bad[8] = dec._ETCLASS[:100]                             # a short table
    with pytest.raises(ValueError):
        _headers.fast_rows(*bad)
    ro = out[0].copy()
    ro.flags.writeable = False
    bad = list(args)
    bad[5] = (ro,) + out[1:]
    with pytest.raises((BufferError, ValueError)):          # (numpy's ValueError: read-only)
        _headers.fast_rows(*bad)
