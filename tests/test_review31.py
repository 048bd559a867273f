"""Review of session 30's work (session 31): findings with a test each."""
from __future__ import annotations

import hashlib
import importlib

import numpy as np
import pandas as pd
from hypothesis import given, settings, strategies as st
from scapy.layers.inet import IP, TCP

import chunkcmp
from conftest import ROOT
from kscc_traffic import load_rules
from kscc_traffic.analyze import analyze_file
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth

classify_module = importlib.import_module("kscc_traffic.classify")
flows_module = importlib.import_module("kscc_traffic.flows")

A, P = "192.0.2.10", "198.51.100.1"
REQ = b"CONNECT eu1.ksc.kaspersky.com:443 HTTP/1.1\r\nHost: eu1.ksc.kaspersky.com:443\r\n\r\n"


def _given_up_within(gone: float):
    """One CONNECT to a proxy on 3128, the client closing ``gone`` s after its SYN (no answer),
    then an unrelated SYN 50 s later (the capture goes on)."""
    sp, n, t0, step = 40000, len(REQ), 10.0, gone / 8
    up = lambda data=b"", **kw: bytes(eth(IP(src=A, dst=P) / TCP(sport=sp, dport=3128, **kw) / data))  # noqa: E731
    down = lambda **kw: bytes(eth(IP(src=P, dst=A) / TCP(sport=3128, dport=sp, **kw),  # noqa: E731
                                  src=SERVER_MAC, dst=CLIENT_MAC))
    return [(t0, up(flags="S", seq=100)),
            (t0 + step, down(flags="SA", seq=500, ack=101)),
            (t0 + 2 * step, up(flags="A", seq=101, ack=501)),
            (t0 + 3 * step, up(REQ, flags="PA", seq=101, ack=501)),
            (t0 + 4 * step, down(flags="A", seq=501, ack=101 + n)),
            (t0 + 6 * step, up(flags="FA", seq=101 + n, ack=501)),
            (t0 + 7 * step, down(flags="FA", seq=501, ack=102 + n)),
            (t0 + gone, up(flags="A", seq=102 + n, ack=502)),
            (60.0, bytes(eth(IP(src=A, dst="198.51.100.7") / TCP(sport=1, dport=9, flags="S"))))]


def test_seconds_text_never_a_bare_point():
    """A duration below half a millisecond printed "0." (f"{d:.3f}".rstrip("0")): it says
    "less than 0.001" (fails on 9ea40cb: '0.'); the others, 0 among them, as before."""
    text = classify_module._seconds_text
    assert text(0.0003) == "less than 0.001"
    assert text(0.0) == "0.0"     # (as before: test_classify_fast's CONNECT of duration 0)
    assert [text(d) for d in (0.0006, 0.064, 0.1, 0.9, 12.34)] == ["0.001", "0.064", "0.1", "0.9", "12.3"]


def test_connect_given_up_on_loopback_speed_says_so(tmp_path):
    """A CONNECT given up 0.0004 s after its SYN (a proxy on the same host): the detail said
    "the client gave up after 0. s" (fails on 9ea40cb); whole and chunked readings agree."""
    p = chunkcmp.write(tmp_path, _given_up_within(0.0004), "fast.pcap")
    whole, _ = chunkcmp.whole(p)
    asked = whole[whole["resp_p"] == 3128]
    assert asked["verdict"].tolist() == ["blocked"]
    assert asked["detail"].iat[0].endswith(
        "did not answer CONNECT eu1.ksc.kaspersky.com:443; the client gave up after less than 0.001 s")
    small, _ = chunkcmp.chunked(p, 600)
    assert small[small["resp_p"] == 3128]["detail"].tolist() == asked["detail"].tolist()


def _no_ports_pair():
    """Two TCP flows of a sample capture's table, alike but for the client port: one with no port
    known (-1, as the responder's), one with an undocumented client port and no server port."""
    rules = load_rules()
    flows = analyze_file(ROOT / "samples" / "captures" / "baseline_agent.pcap", rules).flows.drop(columns=list(classify_module.CLASS_COLUMNS))
    one = flows[flows["proto"] == "tcp"].head(1)
    both = pd.concat([one, one], ignore_index=True)
    both["resp_p"] = -1
    both.loc[0, "orig_p"] = 40001
    both.loc[1, "orig_p"] = -1
    return both, rules


def test_unknown_client_port_is_keyed_apart():
    """The judgement says "ports unknown" only when both ports are -1, but the grouping key held an
    undocumented client port and -1 alike (-1): judged once for both (grouped, and by the
    JudgementCache from one batch to the next). Fails on 9ea40cb: the second flow got the first's
    'no documented KSC port' detail."""
    both, rules = _no_ports_pair()
    one_by_one = [classify_module._judge(row, rules) for row in both.to_dict("records")]
    assert one_by_one[1][3].startswith("no packet of this flow kept its TCP header")
    assert not one_by_one[0][3].startswith("no packet of this flow kept its TCP header")
    assert [tuple(r) for r in classify_module._judge_all(both, rules)] == one_by_one
    judged = classify_module.JudgementCache()
    first = classify_module._judge_all(both.iloc[[0]].reset_index(drop=True), rules, judged)
    second = classify_module._judge_all(both.iloc[[1]].reset_index(drop=True), rules, judged)
    assert [tuple(first[0]), tuple(second[0])] == one_by_one


_EVENT_FLAGS = [0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x14, 0x01, 0x00, 0x118]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.booleans(), st.sampled_from(_EVENT_FLAGS), st.integers(-1, 3),
                          st.booleans()), max_size=60),
       st.sampled_from(["<i8", ">i8", "<i4", ">u2", "u1"]), st.booleans())
def test_event_rows_any_layout_is_the_numpy_rows(rows, dtype, strided):
    """state_event_rows (the compiled pass when built) on arrays of another byte order, width or
    a strided view (every other element of a longer array) keeps the rows the numpy version
    keeps on plain int64/bool arrays: the wrapper makes the compiled part's C-contiguous native
    buffers."""
    flow = np.array([r[0] for r in rows], np.int64)
    orig = np.array([r[1] for r in rows], bool)
    flags = np.array([r[2] for r in rows], np.int64)
    plen = np.array([r[3] for r in rows], np.int64)
    tcp = np.array([r[4] for r in rows], bool)
    want = flows_module.state_event_rows_py(flow, orig, flags, tcp, plen).tolist()

    def lay(a, dt):
        a = a.astype(dt)
        if not strided:
            return a
        wide = np.zeros(2 * len(a), a.dtype)
        wide[::2] = a
        return wide[::2]
    signed = dtype if dtype[-2] == "i" else "<i8"     # (plen holds -1)
    got = flows_module.state_event_rows(lay(flow, dtype), lay(orig, "u1"), lay(flags, dtype if dtype != "u1" else ">u2"),
                                        lay(tcp, "u1"), lay(plen, signed))
    assert got.dtype == bool and got.tolist() == want


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1), max_size=40), st.sampled_from(["<u8", ">u8", "<i8"]), st.booleans())
def test_uid_parts_of_any_layout(values, dtype, strided):
    """_uid of a part of another byte order or a strided view gives the texts of the plain uint64
    part, compiled or not."""
    plain = np.array(values, np.uint64)
    part = plain.astype(dtype) if dtype[1] == "u" else plain.view(np.int64).astype(dtype)
    if strided:
        wide = np.zeros(2 * len(part), part.dtype)
        wide[::2] = part
        part = wide[::2]
    assert flows_module._uid("a.pcap", part).tolist() == flows_module._uid("a.pcap", plain).tolist()
    assert flows_module._uids_py(*_hashes(plain)).tolist() == flows_module._uid("a.pcap", plain).tolist()


def _hashes(plain):
    """The two hashes _uid makes of one uint64 part, by the numpy rounds (flows._mix_py)."""
    s = int.from_bytes(hashlib.blake2b(b"a.pcap", digest_size=16).digest(), "big")
    h1 = np.full(len(plain), s & 0xFFFFFFFFFFFFFFFF, np.uint64)
    h2 = np.full(len(plain), s >> 64, np.uint64)
    return flows_module._mix_py(h1, plain), flows_module._mix_py(h2, plain ^ np.uint64(0x5DEECE66D))


def test_mix_of_a_big_endian_part_is_the_numpy_mix():
    """flows._mix on uint64/int64 arrays stored big-endian (as its docstring allows: uint64 or
    int64) gives _mix_py's numbers; the compiled call raised TypeError ('native 8-byte integers'
    expected) on 9ea40cb while the numpy fallback read them."""
    h = np.array([1, 2**63 + 5, 2**64 - 1], np.uint64)
    v = np.array([7, 2**40, 2**64 - 2], np.uint64)
    want = flows_module._mix_py(h, v).tolist()
    assert flows_module._mix(h.astype(">u8"), v.astype(">u8")).tolist() == want
    assert flows_module._mix(h, v.view(np.int64).astype(">i8")).tolist() == want
    assert flows_module._mix_py(h.astype(">u8"), v.astype(">u8")).tolist() == want
