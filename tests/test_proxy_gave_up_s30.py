"""Two CONNECTs to one proxy, each given up by the client before any answer, after 0.063 s and
0.071 s: each flow's detail says its own time (review 30 F2: the grouping key printed durations
to a tenth, "0.1" for both, while the detail prints them to the millisecond, so a whole read
said 0.063 s of both and a chunked one 0.063 and 0.071)."""
from __future__ import annotations

from scapy.layers.inet import IP, TCP

import chunkcmp
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth

A, P = "192.0.2.10", "198.51.100.1"
REQ = b"CONNECT eu1.ksc.kaspersky.com:443 HTTP/1.1\r\nHost: eu1.ksc.kaspersky.com:443\r\n\r\n"


def _records():
    recs = []
    for k, (t0, gone) in enumerate([(10.0, 0.063), (20.0, 0.071)]):
        sp = 40000 + k
        up = lambda data=b"", **kw: bytes(eth(IP(src=A, dst=P) / TCP(sport=sp, dport=3128, **kw) / data))  # noqa: E731
        down = lambda **kw: bytes(eth(IP(src=P, dst=A) / TCP(sport=3128, dport=sp, **kw),  # noqa: E731
                                      src=SERVER_MAC, dst=CLIENT_MAC))
        n = len(REQ)
        recs += [(t0, up(flags="S", seq=100)),
                 (t0 + .001, down(flags="SA", seq=500, ack=101)),
                 (t0 + .002, up(flags="A", seq=101, ack=501)),
                 (t0 + .003, up(REQ, flags="PA", seq=101, ack=501)),
                 (t0 + .004, down(flags="A", seq=501, ack=101 + n)),
                 (t0 + gone, up(flags="FA", seq=101 + n, ack=501)),
                 (t0 + gone + .001, down(flags="FA", seq=501, ack=102 + n)),
                 (t0 + gone + .002, up(flags="A", seq=102 + n, ack=502))]
    # (the capture goes on: no "capture ended" reading of the two)
    recs.append((60.0, bytes(eth(IP(src=A, dst="198.51.100.7") / TCP(sport=1, dport=9, flags="S")))))
    return recs


def test_each_given_up_request_says_its_own_time(tmp_path):
    p = chunkcmp.write(tmp_path, _records(), "px.pcap")
    whole, _ = chunkcmp.whole(p)
    asked = whole[whole["resp_p"] == 3128].sort_values("ts_ns")
    assert asked["verdict"].tolist() == ["blocked", "blocked"]
    details = asked["detail"].tolist()
    own = [f"{d:.3f}".rstrip("0") for d in asked["duration"].tolist()]
    assert own[0] != own[1] and own[0].startswith("0.06") and own[1].startswith("0.07")
    for text, d in zip(details, own):
        assert text.endswith(f"did not answer CONNECT eu1.ksc.kaspersky.com:443; the client gave up after {d} s")
    small, _ = chunkcmp.chunked(p, 600)
    got = small[small["resp_p"] == 3128].sort_values("ts_ns")["detail"].tolist()
    assert got == details
