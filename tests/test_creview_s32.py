"""Session 32 review of the new C code (protocols/_tlswalk.c, _tcpstate.key_order): hostile
arguments through the Python entry points that read outside a buffer or looped for ever on
09f00e1 (s32-today). Each case runs in a child process (a crash must fail the test, not end
pytest) and must end in a ValueError that leaves the outputs unchanged."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

_tlswalk = pytest.importorskip("kscc_traffic.protocols._tlswalk")
_tcpstate = pytest.importorskip("kscc_traffic._tcpstate")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_PRELUDE = """
import numpy as np
from kscc_traffic.protocols import _tlswalk
from kscc_traffic import _tcpstate
"""

#: name -> (child code, the start of the ValueError text it must print)
_CASES = {
    # off + len wrapped past 2**63 passed the check (off + len <= len(cbuf)): a read at cbuf + 2**63 - 1
    "names_offset_overflow": ("""
cb = np.zeros(16, np.uint8)
sni = np.array([[2**63 - 1], [2]], np.int64)
try:
    _tlswalk.names(cb, sni, np.array([0], np.int64), {}, lambda b: "x")
except ValueError as e:
    print("ValueError", e)
""", "ValueError names: row 0 has no name inside cbuf"),
    # make (Python code) wrote sni after the rows were checked: row 1's name read 2**40 bytes on
    "names_make_writes_sni": ("""
cb = np.zeros(16, np.uint8)
sni = np.array([[0, 0], [1, 1]], np.int64)
def make(raw):
    sni[0, 1] = 1 << 40
    return "x"
try:
    _tlswalk.names(cb, sni, np.array([0, 1], np.int64), {}, make)
except ValueError as e:
    print("ValueError", e)
""", "ValueError names: row 1 has no name inside cbuf"),
    # res shares memory with cstart: row 0's server alert level (-1) made cstart[1] -2**32 after
    # the ranges were checked, and row 1's walk read cbuf[-2**32]
    "summarize_res_over_cstart": ("""
n = 16
base = np.zeros(68 * n, np.uint8)
res = base.view(np.int32)
cstart = base[16 * n - 12:24 * n - 12].view(np.int64)
cb = np.zeros(64, np.uint8)
z = np.zeros(n, np.int64)
sni = np.full(2 * n, 7, np.int64)
try:
    _tlswalk.summarize(cb, cstart, np.full(n, 64, np.int64), cb, z, z, res, sni)
except ValueError as e:
    print("ValueError", e, int(base.sum()), sni.tolist() == [7] * (2 * n))
""", "ValueError summarize: res shares memory with cstart 0 True"),
    # sni's length row over cstart: each row's -1 became the next row's start (cbuf[-1] read)
    "summarize_sni_over_cstart": ("""
n = 64
arr = np.zeros(2 * n + 1, np.int64)
cb = np.zeros(64, np.uint8)
z = np.zeros(n, np.int64)
res = np.full(17 * n, 7, np.int32)
try:
    _tlswalk.summarize(cb, arr[n - 1:2 * n - 1], np.full(n, 64, np.int64), cb, z, z, res, arr[:2 * n])
except ValueError as e:
    print("ValueError", e, int(arr.sum()), bool((res == 7).all()))
""", "ValueError summarize: sni shares memory with cstart 0 True"),
    # start over h's bytes: zeroing start changed the hashes the groups were then looked up by
    # (a probe that never met its hash: an endless loop, or grep[-1] at an empty slot)
    "key_order_start_over_h": ("""
m = 64
h = np.arange(1, m + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
keep = h.copy()
out = np.full(m, 7, np.int64)
try:
    _tcpstate.key_order(h, np.arange(m, dtype=np.int64), [], out, h.view(np.uint8)[:m])
except ValueError as e:
    print("ValueError", e, bool((h == keep).all()), bool((out == 7).all()))
""", "ValueError key_order: out or start shares memory with o, h or each other True True"),
    # out over part of o (not o itself, which was the one overlap refused)
    "key_order_out_over_o": ("""
m = 8
buf = np.arange(m + 1, dtype=np.int64)
o, out = buf[:m], buf[1:]
try:
    _tcpstate.key_order(np.arange(m, dtype=np.uint64), o, [], out, np.zeros(m, bool))
except ValueError as e:
    print("ValueError", e, buf.tolist() == list(range(m + 1)))
""", "ValueError key_order: out or start shares memory with o, h or each other True"),
    # start over a key column
    "key_order_start_over_col": ("""
m = 8
col = np.arange(m, dtype=np.int64)
try:
    _tcpstate.key_order(np.arange(m, dtype=np.uint64), np.arange(m, dtype=np.int64), [col],
                        np.empty(m, np.int64), col.view(np.uint8)[:m])
except ValueError as e:
    print("ValueError", e, col.tolist() == list(range(m)))
""", "ValueError key_order: out or start shares memory with a column True"),
}


@pytest.mark.parametrize("case", sorted(_CASES))
def test_hostile_arguments_raise_instead_of_reading_outside(case):
    """Each hostile call ends in its ValueError in a child that exits normally (on 09f00e1:
    segmentation faults for the names and summarize cases, an endless loop for
    key_order_start_over_h, wrong orders silently for the other two)."""
    code, want = _CASES[case]
    env = dict(os.environ, PYTHONPATH=ROOT, PYTHONDONTWRITEBYTECODE="1")
    try:
        r = subprocess.run([sys.executable, "-c", _PRELUDE + code], capture_output=True, text=True,
                           timeout=60, env=env, cwd=ROOT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{case}: no answer in 60 s (an endless loop)")
    assert r.returncode == 0, (r.returncode, r.stderr[-300:])
    assert r.stdout.startswith(want), r.stdout


def test_summarize_still_takes_one_buffer_for_both_sides():
    """cbuf and sbuf may be the same buffer (read only, they are not outputs)."""
    buf = np.frombuffer(b"\x16\x03\x01\x00\x00" * 2, np.uint8)
    res, sni = np.empty(17, np.int32), np.empty(2, np.int64)
    _tlswalk.summarize(buf, np.array([0]), np.array([5]), buf, np.array([5]), np.array([10]), res, sni)
    assert sni.tolist() == [-1, -1]
    assert res[14] == 0 and res[16] == 1   # (a 0-length handshake record: no ClientHello, left to tls.summarize)


def test_key_order_with_disjoint_views_of_one_block():
    """out and start taken from one block of memory, apart: still accepted and right."""
    block = np.zeros(8 * 4 + 4, np.uint8)
    out = block[:32].view(np.int64)
    start = block[32:].view(bool)
    h = np.array([5, 3, 5, 3], np.uint64)
    got = _tcpstate.key_order(h, np.arange(4, dtype=np.int64), [], out, start)
    assert got is False
    assert out.tolist() == [1, 3, 0, 2]
    assert start.tolist() == [True, False, True, False]
