"""A TCP flow whose start was not captured and whose originator sent nothing in the capture
(a lone RST or SYN-ACK from the server, server data only: one captured direction, or a capture
that began as the connection ended) is not judged: nothing in it shows the documented purpose
works, so it never verifies it (it was ok). As the lone client RST, which was already not judged."""
from __future__ import annotations

import pytest
from scapy.layers.inet import TCP

from chunkcmp import whole, write
from pcapbuild import eth, ip_of
from test_classify_fast import assert_same

C, S = ("192.0.2.10", 50000), ("198.51.100.20", 23101)


def _up(**kw):
    return bytes(eth(ip_of(C[0], S[0]) / TCP(sport=C[1], dport=S[1], **kw)))


def _dn(**kw):
    return bytes(eth(ip_of(S[0], C[0]) / TCP(sport=S[1], dport=C[1], **kw)))


CASES = {
    "rst": ([_dn(flags="R", seq=5000)], "RSTRH", 1),
    "rst_ack": ([_dn(flags="RA", seq=5000, ack=1001)], "RSTRH", 1),
    "syn_ack_3": ([_dn(flags="SA", seq=5000, ack=1001)] * 3, "OTH", 3),
    "data": ([_dn(flags="PA", seq=5000 + 100 * i, ack=1001) + b"x" * 100 for i in range(4)], "OTH", 4),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_only_the_responder_is_not_judged(tmp_path, case):
    frames, state, n = CASES[case]
    flows, _ = whole(write(tmp_path, [(1.0 + i, f) for i, f in enumerate(frames)]))
    (r,) = flows.to_dict("records")
    assert (r["orig_h"], r["resp_p"], r["conn_state"], r["partial"]) == (C[0], 23101, state, True)
    assert (r["verdict"], r["reason"]) == ("unclassified", "partial")
    assert r["detail"] == (f"capture started mid-connection; only the responder's {n} "
                           f"packet{'s' if n != 1 else ''} seen, none from the originator: not judged")
    assert_same(flows)


def test_an_answer_to_the_originator_is_still_judged(tmp_path):
    """The originator's data and the responder's answer, start not captured: ok as before."""
    frames = [_up(flags="PA", seq=1001, ack=5000) + b"y" * 50, _dn(flags="PA", seq=5000, ack=1051) + b"x" * 80]
    flows, _ = whole(write(tmp_path, [(1.0 + i, f) for i, f in enumerate(frames)]))
    (r,) = flows.to_dict("records")
    assert (r["partial"], r["verdict"], r["reason"]) == (True, "ok", "partial")
    assert_same(flows)
