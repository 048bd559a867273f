"""Review of session 30's work (session 31): findings with a test each."""
from __future__ import annotations

import importlib

import pandas as pd
from scapy.layers.inet import IP, TCP

import chunkcmp
from conftest import ROOT
from kscc_traffic import load_rules
from kscc_traffic.analyze import analyze_file
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth

classify_module = importlib.import_module("kscc_traffic.classify")

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
    "less than 0.001" (fails on 9ea40cb: '0.'); the others as before."""
    text = classify_module._seconds_text
    assert text(0.0003) == "less than 0.001"
    assert text(0.0) == "less than 0.001"
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
