"""The compiled TLS record walk (kscc_traffic.protocols._tlswalk, built by setup.py) against its
numpy fallback (tls_batch._vectorised_numpy): every field of every row equal — the rows handed to
the reference parser (``fallback``) included — on the sample captures' streams, generated and
damaged handshakes, and hostile byte streams (truncated records, lengths past the end, 0-length
records, SSLv2-looking bytes, alerts, more records / extensions / names than the caps)."""
from __future__ import annotations

import random
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT
from kscc_traffic import build_flows, decode, read_frames
from kscc_traffic.errors import KsccTrafficError
from kscc_traffic.protocols import tls, tls_batch
from kscc_traffic.streams import initial_streams
from test_tls_batch import (SERVER_PORT, SV13, client_hello, ext, flight, rec, server_hello, sni_ext,
                            tight)

_tlswalk = pytest.importorskip("kscc_traffic.protocols._tlswalk")

FIELDS = ["client_hello", "sni", "version", "cipher", "server_hello", "hello_retry", "client_alert",
          "server_alert", "client_encrypted_alert", "client_app_data", "server_app_data",
          "client_ccs", "server_ccs", "established", "ech", "fallback"]


def both(cs: list[bytes], ss: list[bytes], base: int = 3) -> tls_batch.TlsBatch:
    """_vectorised by the C walk and by numpy, on tight read-only buffers, rows ``base`` on of
    two batches: assert every field of every row equal; returns the compiled one."""
    n = len(cs)
    cbuf, cstart, cend = tight(cs)
    sbuf, sstart, send = tight(ss)
    got, want = tls_batch.TlsBatch.empty(n + base), tls_batch.TlsBatch.empty(n + base)
    assert tls_batch._compiled(got, base, cbuf, cstart, cend, sbuf, sstart, send, {})
    tls_batch._vectorised_numpy(want, base, cbuf, cstart, cend, sbuf, sstart, send, {})
    for name in FIELDS:
        x, y = getattr(got, name), getattr(want, name)
        assert x.dtype == y.dtype, name
        eq = (x == y) if x.ndim == 1 else (x == y).all(axis=1)
        if not eq.all():
            i = int(np.nonzero(~eq)[0][0])
            pytest.fail(f"{name} differs in row {i}: compiled {x[i]!r}, numpy {y[i]!r}\n"
                        f"client {cs[i - base].hex()}\nserver {ss[i - base].hex()}")
    return got


def test_known_handshake_fields():
    """A TLS 1.3 handshake with an SNI and ECH, answered, then an encrypted alert-sized record:
    the values themselves (not only equal to numpy's)."""
    ch = client_hello([sni_ext([(0, b"ksc.example.com")]), ext(tls.EXT_ECH, b"\x00")])
    sh = server_hello([SV13], cipher=0x1302)
    cs = rec(22, ch) + rec(20, b"\x01") + rec(23, bytes(19))
    ss = rec(22, sh) + rec(20, b"\x01") + rec(23, bytes(50)) + rec(21, b"\x01\x00\x02\x28")
    b = both([cs, b"", bytes([0x80, 0x2e, 0x01, 0x03, 0x01])], [ss, b"", b""], base=0)
    assert b.sni[0] == "ksc.example.com" and b.ech[0] and b.client_hello[0]
    assert b.version[0] == 0x0304 and b.cipher[0] == 0x1302 and b.server_hello[0] and not b.hello_retry[0]
    assert b.client_encrypted_alert[0] and not b.established[0] and b.client_app_data[0]
    # a cleartext alert after the server's CCS counts under TLS 1.3: the first fatal one
    assert b.server_alert[0].tolist() == [2, 40] and b.client_alert[0].tolist() == [-1, -1]
    assert not b.fallback[0] and not b.fallback[1] and b.version[1] == -1 and b.sni[1] is None
    assert b.fallback[2]  # an SSLv2-compatible hello: the reference parses it


def test_samples_streams():
    """Every TCP flow's initial streams of the sample captures (TLS or not)."""
    cs, ss = [], []
    for path in sorted((ROOT / "samples" / "captures").rglob("*.pcap*")):
        try:
            packets = decode(read_frames(path))
        except KsccTrafficError:
            continue
        ft = build_flows(packets, SERVER_PORT, seed=path.name)
        streams = initial_streams(ft)
        client, server = dict(streams.client), dict(streams.server)
        for f in sorted(set(client) | set(server)):
            cs.append(client.get(f, b""))
            ss.append(server.get(f, b""))
    assert len(cs) > 20
    b = both(cs, ss)
    assert b.client_hello.sum() > 5 and (~b.fallback[3:]).sum() > 5


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**64 - 1))
def test_generated_handshakes(seed):
    r = random.Random(seed)
    pairs = [(flight(r, "client"), flight(r, "server")) for _ in range(60)]
    both([c for c, _ in pairs], [s for _, s in pairs])


def _hostile_record(draw) -> bytes:
    kind = draw(st.sampled_from(["rec", "rec", "zero", "long", "alert", "sslv2", "raw", "hs"]))
    ct = draw(st.sampled_from([20, 21, 22, 23, 24, 19, 25, 0x80]))
    ver = draw(st.sampled_from([0x0301, 0x0303, 0x0304, 0x0305, 0x0203]))
    if kind == "zero":
        return struct.pack("!BHH", ct, ver, 0)
    if kind == "long":      # a length past the end of the stream, or past MAX_RECORD
        return struct.pack("!BHH", ct, ver, draw(st.sampled_from([40, 0x4800, 0x4801, 0xFFFF])))
    if kind == "alert":     # 0 to 9 (level, description) pairs, mostly of level 1 or 2; or odd bytes
        pairs = draw(st.lists(st.tuples(st.sampled_from([1, 2, 2, 1, 0, 3]), st.integers(0, 255)), max_size=9))
        body = b"".join(bytes(p) for p in pairs)
        return rec(21, body if draw(st.integers(0, 4)) else body + b"\x02")
    if kind == "sslv2":
        return bytes([0x80 | draw(st.integers(0, 127))]) + draw(st.binary(min_size=0, max_size=8))
    if kind == "raw":
        return draw(st.binary(max_size=8))
    if kind == "hs":
        mt = draw(st.sampled_from([1, 2, 11]))
        body = draw(st.binary(max_size=60))
        mlen = len(body) + draw(st.sampled_from([0, 0, 1, -1, 100]))
        return rec(22, bytes([mt]) + max(mlen, 0).to_bytes(3, "big") + body, ver)
    return rec(ct, draw(st.binary(max_size=24)), ver)


@st.composite
def hostile_stream(draw) -> bytes:
    parts = [_hostile_record(draw) for _ in range(draw(st.integers(0, 6)))]
    data = b"".join(parts)
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(hostile_stream(), hostile_stream()), min_size=1, max_size=12))
def test_hostile_streams(pairs):
    both([c for c, _ in pairs], [s for _, s in pairs])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.binary(max_size=80), st.binary(max_size=80)), min_size=1, max_size=10),
       st.sampled_from([b"", b"\x16\x03\x03", b"\x16\x03\x01\x00\x30\x01", b"\x15\x03\x03\x00\x02",
                        b"\x16\x03\x03\x00\x00", b"\x80\x2e\x01"]))
def test_random_bytes(pairs, prefix):
    both([prefix + c for c, _ in pairs], [prefix + s for _, s in pairs])


def test_caps():
    """More records, extensions and server_name entries than the caps (and exactly the caps):
    the same rows handed to the reference."""
    ch = rec(22, client_hello([sni_ext([(0, b"a.example")])]))
    sh = rec(22, server_hello([SV13]))
    n_rec = tls_batch.MAX_RECORDS
    cs = [ch + rec(23, b"x") * (n_rec - 1), ch + rec(23, b"x") * n_rec,
          ch + rec(23, b"x") * (n_rec - 1) + b"\x17\x03", ch,
          rec(22, client_hello([ext(0x0A0A, b"")] * (tls_batch.MAX_EXTENSIONS - 1)
                               + [sni_ext([(0, b"last.example")])])),
          rec(22, client_hello([ext(0x0A0A, b"")] * tls_batch.MAX_EXTENSIONS + [sni_ext([(0, b"x")])])),
          rec(22, client_hello([sni_ext([(7, b"n")] * (tls_batch.MAX_NAMES - 1) + [(0, b"eighth.example")])])),
          rec(22, client_hello([sni_ext([(7, b"n")] * tls_batch.MAX_NAMES + [(0, b"ninth.example")])])),
          ch]
    ss = [sh] * 4 + [sh, sh, b"", b"",
                     rec(22, server_hello([ext(0x1234, b"")] * tls_batch.MAX_EXTENSIONS + [SV13]))]
    b = both(cs, ss, base=0)
    assert b.fallback.tolist() == [False, True, False, False, False, True, False, True, True]
    assert b.sni[4] == "last.example" and b.sni[6] == "eighth.example"
    assert b.client_app_data[0] and b.version[0] == 0x0304


def test_bad_input_goes_to_numpy(monkeypatch):
    """Ranges outside the buffer, or a buffer that is not bytes: the C walk says no (ValueError,
    TypeError) and leaves its outputs alone; _vectorised then runs the numpy walk. Caps changed
    from the compiled ones: numpy too."""
    buf = np.frombuffer(rec(21, b"\x02\x28"), np.uint8)
    res, sni = np.full((len(tls_batch._COLUMNS), 1), 7, np.int32), np.full((2, 1), 7, np.int64)
    one, zero, far = (np.array([v], np.int64) for v in (1, 0, len(buf) + 1))
    with pytest.raises(ValueError):
        _tlswalk.summarize(buf, zero, far, buf, zero, zero, res, sni)
    with pytest.raises(ValueError):
        _tlswalk.summarize(buf, one, zero, buf, zero, zero, res, sni)
    with pytest.raises(ValueError):
        _tlswalk.summarize(buf, zero, zero, buf, zero, zero, res[:, :0].copy(), sni)
    with pytest.raises(TypeError):
        _tlswalk.summarize(buf.astype(np.int16), zero, zero, buf, zero, zero, res, sni)
    with pytest.raises(TypeError):
        _tlswalk.summarize(buf, zero.astype(np.int32), zero, buf, zero, zero, res, sni)
    assert (res == 7).all() and (sni == 7).all()
    calls = []
    monkeypatch.setattr(tls_batch, "_vectorised_numpy",
                        lambda *a: calls.append(a[0]) or None)
    out = tls_batch.TlsBatch.empty(1)
    assert not tls_batch._compiled(out, 0, buf, zero, far, buf, zero, zero, {})
    tls_batch._vectorised(out, 0, buf, zero, far, buf, zero, zero, {})
    assert calls == [out]
    tls_batch._vectorised(out, 0, buf, zero, np.array([len(buf)]), buf, zero, zero, {})
    assert len(calls) == 1 and out.client_alert[0].tolist() == [2, 40]
    monkeypatch.setattr(tls_batch, "MAX_NAMES", 3)
    tls_batch._vectorised(out, 0, buf, zero, np.array([len(buf)]), buf, zero, zero, {})
    assert len(calls) == 2


def test_summarize_at_with_and_without_the_module(monkeypatch):
    """summarize_at gives the same batch when the module is not there (the numpy walk)."""
    r = random.Random(5)
    cs = [flight(r, "client") for _ in range(200)]
    ss = [flight(r, "server") for _ in range(200)]
    cbuf, cstart, cend = tight(cs)
    sbuf, sstart, send = tight(ss)
    with_c = tls_batch.summarize_at(cbuf, cstart, cend, sbuf, sstart, send)
    monkeypatch.setattr(tls_batch, "_tlswalk", None)
    without = tls_batch.summarize_at(cbuf, cstart, cend, sbuf, sstart, send)
    for name in FIELDS:
        assert (getattr(with_c, name) == getattr(without, name)).all(), name
    assert with_c.certificates.keys() == without.certificates.keys()


def test_names_through_the_cache(monkeypatch):
    """Server names come from the cache (bytes -> text) when there, else are made (escaped) and
    added to it; an empty cached text is made again, as the numpy path's ``get(x) or ...``."""
    cs = [rec(22, client_hello([sni_ext([(0, n)])])) for n in (b"a.example", b"b\xff.example", b"c.example")]
    cbuf, cstart, cend = tight(cs)
    sbuf, sstart, send = tight([b""] * 3)
    cache = {b"a.example": "from-cache", b"c.example": ""}
    out = tls_batch.TlsBatch.empty(3)
    assert tls_batch._compiled(out, 0, cbuf, cstart, cend, sbuf, sstart, send, cache)
    assert out.sni.tolist() == ["from-cache", "b\\xff.example", "c.example"]
    assert cache == {b"a.example": "from-cache", b"b\xff.example": "b\\xff.example", b"c.example": "c.example"}
    # the same name twice in one batch: made once
    calls = []
    monkeypatch.setattr(tls_batch, "_name_text", lambda raw, names: calls.append(raw) or names.setdefault(raw, "t"))
    cbuf, cstart, cend = tight([cs[0], cs[0], cs[2]])
    assert tls_batch._compiled(out, 0, cbuf, cstart, cend, sbuf, sstart, send, {})
    assert calls == [b"a.example", b"c.example"] and out.sni.tolist() == ["t", "t", "t"]
    sni = np.array([[0], [3]], np.int64)
    made = []

    def make(raw):
        made.append(raw)
        return "made"
    for rows in ([1], [-1]):
        with pytest.raises(ValueError):
            _tlswalk.names(cbuf, sni, np.array(rows, np.int64), {}, make)
    with pytest.raises(ValueError):        # bytes past the buffer's end
        _tlswalk.names(cbuf, np.array([[len(cbuf) - 1], [3]], np.int64), np.array([0], np.int64), {}, make)
    with pytest.raises(TypeError):
        _tlswalk.names(cbuf, sni, np.array([0], np.int64), {}, lambda raw: raw)
    assert made == []
    head = bytes(cbuf[:3])
    assert _tlswalk.names(cbuf, sni, np.array([0, 0], np.int64), {head: "x"}, make) == ["x", "x"]
    assert _tlswalk.names(cbuf, sni, np.array([0, 0], np.int64), {}, make) == ["made", "made"]
    assert made == [head, head]            # (this make does not fill the cache)
