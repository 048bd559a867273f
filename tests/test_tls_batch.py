"""The vectorised TLS path (:mod:`kscc_traffic.protocols.tls_batch`) gives exactly what the per-flow
reference :func:`kscc_traffic.protocols.tls.summarize` gives.

Two levels: every summary field, row by row (:func:`assert_same`), and every column of
:func:`kscc_traffic.inspect.inspect_flows` (:func:`check_capture`: the batch run against a run
with the per-flow reference patched in, plus the TLS columns recomputed per flow with the formula
inspect used before the batch path). Inputs: the sample captures, the shared corpus, bench-like
traffic from ``bench/make_capture.py``, real handshakes cut at every length, and generated,
fragmented, cut and damaged handshakes (hypothesis).
"""
from __future__ import annotations

import os
import random
import ssl
import struct
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT, shared_corpus
from kscc_traffic import build_flows, decode, load_rules, read_frames
from kscc_traffic import inspect as insp
from kscc_traffic.analyze import server_port_fn
from kscc_traffic.errors import KsccTrafficError
from kscc_traffic.protocols import http, tls, tls_batch
from test_protocols_tls import pq_client_hello, run_handshake

SERVER_PORT = server_port_fn(load_rules())
FIELDS = ["client_hello", "sni", "version", "cipher", "server_hello", "hello_retry", "client_alert",
          "server_alert", "client_encrypted_alert", "client_app_data", "server_app_data",
          "client_ccs", "server_ccs", "established", "ech", "cert_request", "client_certs"]
CAPTURE_SUFFIXES = (".pcap", ".pcapng")


def reference_kind(data: bytes) -> str:
    """``client_proto``/``server_proto`` as inspect_flows computed them before the batch path."""
    if not data:
        return ""
    if tls.looks_like_tls(data):
        return "tls"
    if http.parse_request(data) is not None or http.looks_like_http_response(data):
        return "http"
    return "other"


def captures(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in CAPTURE_SUFFIXES)


def assert_same(cs: list[bytes], ss: list[bytes], **kw) -> tls_batch.TlsBatch:
    """summarize_many and summarize_at (on buffers that end exactly where the last stream ends)
    == summarize_reference on every field of every row; returns the summarize_many batch."""
    r = tls_batch.summarize_reference(cs, ss)
    b = tls_batch.summarize_many(cs, ss, **kw)
    cbuf, cstart, cend = tight(cs)
    sbuf, sstart, send = tight(ss)
    for batch in (b, tls_batch.summarize_at(cbuf, cstart, cend, sbuf, sstart, send)):
        assert len(batch) == len(r) == len(cs)
        for name in FIELDS:
            x, y = getattr(batch, name), getattr(r, name)
            eq = (x == y) if x.ndim == 1 else (x == y).all(axis=1)
            if not eq.all():
                i = int(np.nonzero(~eq)[0][0])
                pytest.fail(f"{name} differs in row {i} (fallback {batch.fallback[i]}): batch "
                            f"{x[i]!r}, reference {y[i]!r}\nclient {cs[i].hex()}\nserver {ss[i].hex()}")
        assert batch.certificates.keys() == r.certificates.keys()
        for i, certs in r.certificates.items():
            assert batch.certificates[i] == certs
    return b


def tight(streams: list[bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The streams back to back in reverse order (the first stream ends the buffer), read-only,
    with their (start, end)."""
    rev = streams[::-1]
    lens = np.array([len(x) for x in rev], np.int64)
    end = np.cumsum(lens)
    buf = np.frombuffer(b"".join(rev), np.uint8)
    return buf, (end - lens)[::-1].copy(), end[::-1].copy()


# --------------------------------------------------------------------------- whole captures

def check_capture(path: Path, monkeypatch) -> tuple[int, int]:
    """inspect_flows with the batch path == with the per-flow reference, on every output column
    and on the DNS answers, both with the streams as initial_streams gives them and as plain
    dicts flow -> bytes. Returns (TLS flows, of which fallback)."""
    try:
        packets = decode(read_frames(path))
    except KsccTrafficError:
        return 0, 0  # unreadable capture: nothing to inspect (the analyzer reports it)
    ft = build_flows(packets, SERVER_PORT, seed=path.name)
    seen: dict[str, object] = {}
    summarize_at, columns, streams_of = tls_batch.summarize_at, insp._tls_columns, insp.initial_streams

    def spy_at(cbuf, cstart, cend, sbuf, sstart, send):
        seen["cs"] = [cbuf[a:b].tobytes() for a, b in zip(cstart.tolist(), cend.tolist())]
        seen["ss"] = [sbuf[a:b].tobytes() for a, b in zip(sstart.tolist(), send.tolist())]
        seen["batch"] = summarize_at(cbuf, cstart, cend, sbuf, sstart, send)
        return seen["batch"]

    def spy_columns(rows, b, cols, service):
        seen["rows"] = rows
        return columns(rows, b, cols, service)

    def reference_at(cbuf, cstart, cend, sbuf, sstart, send):
        return tls_batch.summarize_reference(
            [cbuf[a:b].tobytes() for a, b in zip(cstart.tolist(), cend.tolist())],
            [sbuf[a:b].tobytes() for a, b in zip(sstart.tolist(), send.tolist())])

    def reference_kinds(buf, start, end):
        return np.array([reference_kind(buf[a:b].tobytes()) for a, b in zip(start, end)], object)

    def dict_streams(ft, deep):
        s = streams_of(ft, deep)
        # (with which streams stop early: the per-stream arrays that say so)
        return SimpleNamespace(client=dict(s.client), server=dict(s.server), flow=s.flow, cut=s.cut,
                               cut_why=s.cut_why, from_orig=s.from_orig)

    with monkeypatch.context() as m:
        m.setattr(tls_batch, "summarize_at", spy_at)
        m.setattr(insp, "_tls_columns", spy_columns)
        out, answers = insp.inspect_flows(ft)
    with monkeypatch.context() as m:
        m.setattr(tls_batch, "summarize_at", reference_at)
        m.setattr(insp, "_kinds", reference_kinds)
        ref, ref_answers = insp.inspect_flows(ft)
    with monkeypatch.context() as m:
        m.setattr(insp, "initial_streams", dict_streams)
        from_dicts, dict_answers = insp.inspect_flows(ft)
    pd.testing.assert_frame_equal(out, ref)
    pd.testing.assert_frame_equal(out, from_dicts)
    pd.testing.assert_frame_equal(answers.frame(), ref_answers.frame())
    pd.testing.assert_frame_equal(answers.frame(), dict_answers.frame())
    if "rows" not in seen:
        return 0, 0
    # the TLS columns as inspect_flows computed them flow by flow before the batch path
    rows, cs_list, ss_list = seen["rows"], seen["cs"], seen["ss"]
    assert len(rows) == len(cs_list) == len(ss_list)
    # (a direction whose start was not captured: '' rather than 'other', break-it 30 F3)
    lost = insp._first_segment_hints(ft, len(ft.flows))[5]

    def kind(data: bytes, f: int, side: int) -> str:
        k = reference_kind(data)
        return "" if lost[side][f] and k not in ("tls", "http") else k
    for f, cs, ss in zip(rows.tolist(), cs_list, ss_list):
        s = tls.summarize(cs, ss)
        row = out.loc[f]
        assert kind(cs, f, 0) == row["client_proto"] and kind(ss, f, 1) == row["server_proto"]
        if s.client_hello is not None:
            assert row["service"] == "ssl" and row["sni"] == (s.client_hello.sni or "")
        else:
            assert row["sni"] == ""
        assert row["tls_version"] == insp._version_text(s.version)
        assert row["tls_established"] == bool(s.established)
        assert row["tls_alert"] == (insp._alert_text("client", s.client_alert)
                                    or insp._alert_text("server", s.server_alert))
        names = [insp._cert_name_text(x) for x in tls.certificate_names(s.certificates[0])] \
            if s.certificates else []
        assert row["cert_names"] == ";".join(names)
    # and once more through summarize_many with tiny chunks (a few flows per numpy pass)
    assert_same(cs_list, ss_list, chunk_bytes=4096)
    return len(rows), int(seen["batch"].fallback.sum())


SAMPLE_DIR = ROOT / "samples" / "captures"
SAMPLES = captures(SAMPLE_DIR)


@pytest.mark.parametrize("path", SAMPLES, ids=[str(p.relative_to(SAMPLE_DIR)) for p in SAMPLES])
def test_sample_captures(path, monkeypatch):
    check_capture(path, monkeypatch)


@pytest.mark.parametrize("sub", ["ksc", "public"])
def test_shared_corpus(sub, monkeypatch):
    files = captures(shared_corpus(sub))
    assert files, f"no captures in the shared corpus folder {sub}"
    for path in files:
        check_capture(path, monkeypatch)


def test_bench_traffic_takes_the_vectorised_path(tmp_path, monkeypatch):
    out = tmp_path / "bench.pcap"
    subprocess.run([sys.executable, str(ROOT / "bench" / "make_capture.py"), "--packets", "5000",
                    "--out", str(out), "--quiet"], check=True, timeout=300)
    n, fallback = check_capture(out, monkeypatch)
    assert n > 100
    assert fallback <= n // 100, f"{fallback} of {n} bench handshakes took the reference path"


# --------------------------------------------------------------------------- real handshakes cut

@pytest.fixture(scope="module")
def handshakes(tmp_path_factory):
    """Real (client, server) streams from OpenSSL: TLS 1.3, TLS 1.2 with its certificate, a
    HelloRetryRequest, a rejected certificate (alerts), a refused version."""
    d = tmp_path_factory.mktemp("hs")
    v13, v12 = ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2
    runs = [run_handshake(d, v13, "ksc.example.com", ["ksc.example.com"]),
            run_handshake(d, v12, "ksc.example.com", ["ksc.example.com", "*.ksc.example.com"]),
            run_handshake(d, v13, "hrr.example.com", ["hrr.example.com"], server_curve="secp384r1"),
            run_handshake(d, v13, "ksc.example.com", ["ksc.example.com"], verify=True),
            run_handshake(d, v12, "ksc.example.com", ["ksc.example.com"], verify=True),
            run_handshake(d, v13, "ksc.example.com", ["ksc.example.com"], client_version=v12)]
    return [(cs, ss) for cs, ss, _ in runs]


def test_real_handshakes_cut_at_every_length(handshakes):
    cs_list, ss_list = [], []
    for cs, ss in handshakes:
        for cut in range(len(cs) + 1):
            cs_list.append(cs[:cut])
            ss_list.append(ss)
        for cut in range(len(ss) + 1):
            cs_list.append(cs)
            ss_list.append(ss[:cut])
    b = assert_same(cs_list, ss_list)
    assert 0 < b.fallback.sum() < len(b)  # both paths taken (a ClientHello cut short: fallback)


def test_simple_shapes_take_the_vectorised_path(handshakes):
    cs, ss = handshakes[0]  # TLS 1.3: ClientHello in one record, ServerHello alone in its record
    b = assert_same([cs], [ss])
    assert not b.fallback[0] and b.established[0] and b.sni[0] == "ksc.example.com"
    cs, ss = handshakes[1]  # TLS 1.2: ServerHello + Certificate + ... in the server's records
    b = assert_same([cs], [ss])
    assert b.fallback[0] and 0 in b.certificates


# --------------------------------------------------------------------------- crafted corners

def rec(ct: int, body: bytes, version: int = 0x0303) -> bytes:
    return struct.pack("!BHH", ct, version, len(body)) + body


def msg(mt: int, body: bytes) -> bytes:
    return bytes([mt]) + len(body).to_bytes(3, "big") + body


def ext(et: int, body: bytes) -> bytes:
    return struct.pack("!HH", et, len(body)) + body


def sni_ext(entries: list[tuple[int, bytes]], list_len: int | None = None) -> bytes:
    e = b"".join(struct.pack("!BH", t, len(n)) + n for t, n in entries)
    return ext(0, struct.pack("!H", len(e) if list_len is None else list_len) + e)


def client_hello(exts: list[bytes], *, sid: bytes = b"", ciphers: bytes = b"\x13\x01",
                 comp: bytes = b"\x00", ext_len: int | None = None, legacy: int = 0x0303) -> bytes:
    e = b"".join(exts)
    body = (struct.pack("!H", legacy) + bytes(32) + bytes([len(sid)]) + sid
            + struct.pack("!H", len(ciphers)) + ciphers + bytes([len(comp)]) + comp
            + struct.pack("!H", len(e) if ext_len is None else ext_len) + e)
    return msg(1, body)


def server_hello(exts: list[bytes], *, hrr: bool = False, sid: bytes = b"", legacy: int = 0x0303,
                 cipher: int = 0x1301, ext_len: int | None = None) -> bytes:
    e = b"".join(exts)
    body = (struct.pack("!H", legacy) + (tls.HRR_RANDOM if hrr else bytes(range(32)))
            + bytes([len(sid)]) + sid + struct.pack("!HB", cipher, 0)
            + struct.pack("!H", len(e) if ext_len is None else ext_len) + e)
    return msg(2, body)


SV13 = ext(43, b"\x03\x04")


def test_crafted_corners():
    ch = client_hello([sni_ext([(0, b"ksc.example.com")])])
    sh = server_hello([SV13])
    fin = rec(20, b"\x01") + rec(23, bytes(60))
    cases = [
        (rec(22, ch) + fin, rec(22, sh) + fin),
        (rec(22, pq_client_hello()) + fin, rec(22, sh) + fin),
        (rec(22, pq_client_hello(ech=True)) + fin, rec(22, sh) + fin),
        # names: escaping, non-UTF-8, a type-1 entry first, an empty name, a cut entry
        (rec(22, client_hello([sni_ext([(0, b"a\\b\x00\xff\xc3\xa9.x;y")])])), b""),
        (rec(22, client_hello([sni_ext([(1, b"x"), (0, b"")])])), b""),
        (rec(22, client_hello([sni_ext([(0, b"cut")], list_len=4)])), b""),
        (rec(22, client_hello([sni_ext([(2, b"a")]), sni_ext([(0, b"second.example")])])), b""),
        (rec(22, client_hello([sni_ext([(0, b"x")] * 3)] * 2 + [ext(0x0A0A, b"")])), b""),
        (rec(22, client_hello([ext(0, b"\x00")])), b""),
        # more extensions / names / records than the caps: the reference does them
        (rec(22, client_hello([ext(0x0A0A, b"")] * 70 + [sni_ext([(0, b"late.example")])])), b""),
        (rec(22, client_hello([sni_ext([(7, b"n")] * 9 + [(0, b"ninth.example")])])), b""),
        (rec(22, ch) + rec(23, b"x") * 300 + rec(21, b"\x02\x28"), rec(21, b"\x02\x28") * 300),
        (rec(22, ch), rec(22, server_hello([ext(0x1234, b"")] * 70 + [SV13]))),
        # ServerHello shapes: HRR, HRR then ServerHello, version from the last extension 43,
        # body too short, lengths that lie, legacy versions
        (rec(22, ch), rec(22, server_hello([SV13], hrr=True)) + rec(20, b"\x01") + rec(22, sh)),
        (rec(22, ch), rec(22, server_hello([SV13], hrr=True)) + rec(20, b"\x01")),
        (rec(22, ch), rec(22, server_hello([SV13, ext(43, b"\x03\x03"), ext(43, b"\x03")]))),
        (rec(22, ch), rec(22, msg(2, b"\x03"))),
        (rec(22, ch), rec(22, msg(2, b""))),
        (rec(22, ch), rec(22, msg(2, b"\x03\x03" + bytes(32)))),
        (rec(22, ch), rec(22, server_hello([SV13], ext_len=200))),
        (rec(22, ch), rec(22, server_hello([SV13], sid=bytes(40)))),
        (rec(22, ch), rec(22, server_hello([], legacy=0x0300)) + rec(20, b"\x01") + rec(22, bytes(40))),
        (rec(22, ch) + rec(20, b"\x01"), rec(22, sh + msg(11, b"\x00\x00\x00")) + rec(20, b"\x01")),
        (rec(22, ch), rec(22, msg(11, b"\x00\x00\x00"))),
        (rec(22, ch), rec(20, b"\x01") + rec(22, sh)),
        (rec(22, ch), rec(21, b"\x02\x46") + rec(22, sh)),
        # alerts: levels, lengths, before/after CCS, TLS 1.3 after CCS, a 2-byte cut body
        (rec(22, ch) + rec(21, b"\x03\x28") + rec(21, b"\x01\x00"), rec(21, b"\x02\x28\x00")),
        (rec(22, ch) + rec(20, b"\x01") + rec(21, b"\x02\x30"), rec(22, sh) + rec(20, b"\x01")
         + rec(21, b"\x01\x00")),
        (rec(22, ch) + rec(20, b"\x01") + rec(21, b"\x02\x30"),
         rec(22, server_hello([])) + rec(20, b"\x01") + rec(21, b"\x01\x00")),
        (rec(22, ch), rec(22, sh) + rec(21, b"\x02\x28\x00\x00")[:7]),
        # the encrypted-alert guess, application data both ways without CCS, heartbeat
        (rec(22, ch) + rec(20, b"\x01") + rec(23, bytes(19)) + rec(23, bytes(60)), rec(22, sh)),
        (rec(22, ch) + rec(23, bytes(19)), rec(22, server_hello([])) + rec(23, bytes(1))),
        (rec(22, ch) + rec(24, b"\x01") + rec(23, b""), rec(24, b"") + rec(23, b"")),
        # client streams that are not the common shape
        (rec(23, b"x") + rec(22, ch), rec(22, sh)),
        (rec(22, ch[:50]) + rec(22, ch[50:]), rec(22, sh)),
        (rec(22, ch[:3]) + rec(22, ch[3:]), rec(22, sh)),
        (rec(22, ch + msg(16, b"\x00")), rec(22, sh)),
        (rec(22, msg(2, bytes(50))), b""),
        (rec(22, msg(1, b"\x03")), b""),
        (rec(22, msg(1, b"\x03\x03")), b""),
        (b"\x80\x2e\x01\x03\x01\x00\x15\x00\x00\x00\x10" + bytes(37), b""),
        (b"\x16\x03\x05\x00\x01\x00", rec(22, sh)),
        (rec(22, ch)[:-1], b"GET / HTTP/1.1\r\n\r\n"),
        (b"", rec(22, sh)), (b"", b""), (b"\x16\x03", b"\x16"),
        (rec(22, bytes(tls.MAX_RECORD + 1)), rec(22, bytes(5))),
    ]
    b = assert_same([c for c, _ in cases], [s for _, s in cases])
    assert not b.fallback[0] and b.sni[0] == "ksc.example.com" and b.version[0] == tls.TLS1_3
    assert b.fallback[9] and b.fallback[10] and b.fallback[11] and b.fallback[12]
    assert_same([c for c, _ in cases], [s for _, s in cases], chunk_bytes=1)


def test_empty_and_mismatched_input():
    assert len(tls_batch.summarize_many([], [])) == 0
    assert len(tls_batch.looks_like_tls_many([])) == 0
    with pytest.raises(ValueError):
        tls_batch.summarize_many([b""], [])
    with pytest.raises(ValueError):
        tls_batch.summarize_reference([], [b""])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=12), max_size=20))
def test_looks_like_tls_many(heads):
    prefixes = [b"", b"\x16\x03\x01", b"\x17\x03\x04\x00", b"\x80", b"\x15\x03\x03\x48", b"GET "]
    rnd = random.Random(len(heads))
    streams = [rnd.choice(prefixes) + h for h in heads]
    got = tls_batch.looks_like_tls_many(streams)
    assert got.tolist() == [tls.looks_like_tls(s) for s in streams]


# --------------------------------------------------------------------------- generated handshakes
# Plain ``random`` seeded by hypothesis: thousands of flows per second (a failure names its seed),
# biased towards the common shape so that the vectorised path is the one mostly exercised.

NAMES = [b"ksc.example.com", b"eu1.ksc.kaspersky.com", b"a\\b", b"\xff\xfe", b"x\x00y",
         "\u00e9.example".encode(), b"", b"x;y", b"\x1b[31m"]


def _bytes(r: random.Random, n: int) -> bytes:
    return bytes(r.getrandbits(8) for _ in range(r.randint(0, n)))


def _name(r: random.Random) -> bytes:
    return r.choice(NAMES) if r.random() < 0.7 else _bytes(r, 24)


def _extension(r: random.Random, side: str) -> bytes:
    kind = r.choice(["sni", "sni", "sv", "grease", "other", "raw"])
    if kind == "sni" and side == "client":
        entries = [(r.choice([0, 0, 0, 1, 255]), _name(r)) for _ in range(r.choice([1, 1, 1, 0, 2, 3]))]
        e = b"".join(struct.pack("!BH", t, len(n)) + n for t, n in entries)
        ln = len(e) if r.random() < 0.8 else r.randint(0, len(e) + 4)
        return ext(0, struct.pack("!H", ln) + e) if r.random() < 0.95 else ext(0, _bytes(r, 3))
    if kind in ("sni", "sv"):
        if side == "server":
            return ext(43, r.choice([b"\x03\x04", b"\x03\x04", b"\x03\x03", b"\x03", b"\x03\x04\x00",
                                     b"\x7f\x1c", b"\x03\x02"]))
        return ext(43, b"\x04\x03\x04\x03\x03")
    if kind == "grease":
        return ext(r.choice([0x0A0A, 0x3A3A, 0xFAFA]), _bytes(r, 3))
    if kind == "other":
        return ext(r.choice([10, 16, 51, 0xFE0D, 13, 45, 41]), _bytes(r, 30))
    return _bytes(r, 6)  # raw bytes: lengths that lie


def _hello(r: random.Random, side: str) -> bytes:
    exts = [_extension(r, side) for _ in range(r.randint(0, 8))]
    r.shuffle(exts)
    sid = bytes(r.choice([0, 0, 32, r.randint(0, 33)]))
    ext_len = None if r.random() < 0.85 else r.randint(0, 300)
    legacy = r.choice([0x0303, 0x0303, 0x0301, 0x0300, 0x0304, 0x0002])
    if side == "client":
        ciphers = b"\x13\x01\x13\x02" if r.random() < 0.8 else _bytes(r, 9)
        comp = b"\x00" if r.random() < 0.8 else _bytes(r, 2)
        return client_hello(exts, sid=sid, ciphers=ciphers, comp=comp, ext_len=ext_len, legacy=legacy)
    return server_hello(exts, hrr=r.random() < 0.15, sid=sid, ext_len=ext_len, legacy=legacy,
                        cipher=r.choice([0x1301, 0xC02F, 0x0A0A]))


def _other_record(r: random.Random) -> bytes:
    kind = r.choice(["ccs", "ccs", "app", "app", "alert", "alert", "alert_odd", "hb", "hs"])
    if kind == "ccs":
        return rec(20, b"\x01")
    if kind == "app":
        return rec(23, bytes(19) if r.random() < 0.3 else _bytes(r, 80))
    if kind == "alert":
        return rec(21, bytes([r.choice([1, 2, 2, 0, 3]), r.choice([0, 40, 42, 48, 70, 112, 255])]))
    if kind == "alert_odd":
        return rec(21, _bytes(r, 4))
    if kind == "hb":
        return rec(24, _bytes(r, 3))
    return rec(22, _bytes(r, 12))


def flight(r: random.Random, side: str) -> bytes:
    """One direction: the hello (mostly alone in one record; else fragmented over records or
    followed by more messages), other records after or around it, then maybe cut or damaged."""
    hs = _hello(r, side)
    shape = r.choice(["simple"] * 6 + ["fragmented", "coalesced", "around", "late_hs"])
    if shape == "coalesced":
        hs += b"".join(msg(r.choice([1, 2, 11, 14, 16, 4]), _bytes(r, 40)) if r.random() < 0.7
                       else msg(11, b"\x00\x00\x05\x00\x00\x02\x30\x00") for _ in range(r.randint(1, 2)))
    cuts = sorted(r.randint(0, len(hs)) for _ in range(r.randint(1, 3))) if shape == "fragmented" else []
    pieces = [hs[a:b] for a, b in zip([0, *cuts], [*cuts, len(hs)])]
    records = [rec(22, p, r.choice([0x0301, 0x0303])) for p in pieces]
    for _ in range(r.choice([0, 1, 2, 2, 3, 5, 8])):
        at = r.randint(0, len(records)) if shape == "around" else len(records)
        records.insert(at, _other_record(r))
    if shape == "late_hs":
        records.append(rec(22, hs if r.random() < 0.5 else _bytes(r, 30)))
    if r.random() < 0.05:
        records.insert(r.randint(0, len(records)), _bytes(r, 5))  # a header that may not be TLS
    data = b"".join(records)
    how = r.choice(["whole"] * 5 + ["cut", "flip"])
    if how == "cut" and data:
        data = data[:r.randint(0, len(data))]
    elif how == "flip" and data:
        b = bytearray(data)
        b[r.randrange(len(b))] = r.getrandbits(8)
        data = bytes(b)
    return data


@settings(max_examples=int(os.environ.get("KSCC_FUZZ_EXAMPLES", "60")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**64 - 1))
def test_generated_handshakes(seed):
    r = random.Random(seed)
    pairs = [(flight(r, "client"), flight(r, "server")) for _ in range(100)]
    b = assert_same([c for c, _ in pairs], [s for _, s in pairs])
    assert b.fallback.sum() < len(b)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=80), st.binary(max_size=80)), min_size=1, max_size=10),
       st.sampled_from([b"", b"\x16\x03\x03", b"\x16\x03\x01\x00\x30\x01", b"\x15\x03\x03\x00\x02"]))
def test_random_bytes(pairs, prefix):
    assert_same([prefix + c for c, _ in pairs], [prefix + s for _, s in pairs])


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([b"", b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", b"HTTP/1.1 200 OK\r\n", b"GET /",
                        b"CONNECT h:443 HTTP/1.0\n", b"\x16\x03\x03\x00\x10", b"SSH-2.0-x\r\n",
                        b"POST http://[::1]:99999/ HTTP/1.1\r\nHost: \xff\r\n"]),
       st.binary(max_size=40))
def test_kind_matches_reference(prefix, tail):
    data = prefix + tail
    assert insp._kind(data) == reference_kind(data)
    buf, start, end = tight([data, b"", data[:3]])
    assert insp._kinds(buf, start, end).tolist() == [reference_kind(x) for x in (data, b"", data[:3])]
