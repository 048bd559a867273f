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
    if case.startswith("syn_ack"):
        # (the SYN-ACK is the connection's start: not a capture started mid-connection)
        assert r["detail"] == (f"only the responder's SYN-ACK seen ({n} packets), none from the originator: its "
                               "SYN was not captured (the capture began after it, or only one direction captured?); "
                               "not judged")
    else:
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


# the originator's data (or FIN) answered only by connection ends (break-it 12, F2: it was ok and
# verified the purpose)
DATA = [bytes(eth(ip_of(C[0], S[0]) / TCP(sport=C[1], dport=S[1], flags="PA", seq=1001 + 40 * i, ack=5000)
                 / (b"\x17\x03\x03\x00\x23" + b"y" * 35))) for i in range(3)]
ENDS = {
    # a firewall that dropped the idle session: each data segment answered by a bare reset
    "idle_firewall_rst": ([f for d in DATA for f in (d, _dn(flags="R", seq=5000))],
                          ("blocked", "rejected,partial"), "answered only by TCP resets (3 packets)"),
    "one_data_one_rst": ([DATA[0], _dn(flags="RA", seq=5000, ack=1041)],
                         ("blocked", "rejected,partial"), "data (1 packet) was answered only by TCP resets"),
    # a capture that began as the connection ended: FINs and the last ACK
    "fins_only": ([_up(flags="FA", seq=1001, ack=5000), _dn(flags="FA", seq=5000, ack=1002),
                   _up(flags="A", seq=1002, ack=5001)],
                  ("unclassified", "partial"), "the responder sent only FINs (1 packet)"),
    # an ACK answered by a reset: no data was refused
    "ack_then_rst": ([_up(flags="A", seq=1001, ack=5000), _dn(flags="R", seq=5000)],
                     ("unclassified", "partial"), "the responder sent only resets (1 packet)"),
}


@pytest.mark.parametrize("case", sorted(ENDS))
def test_responder_only_closing(tmp_path, case):
    frames, want, detail = ENDS[case]
    flows, _ = whole(write(tmp_path, [(1.0 + 0.3 * i, f) for i, f in enumerate(frames)]))
    (r,) = flows.to_dict("records")
    assert (r["orig_h"], r["resp_p"], r["partial"]) == (C[0], 23101, True)
    assert (r["verdict"], r["reason"]) == want
    assert detail in r["detail"]
    assert_same(flows)


def test_data_acknowledged_before_a_reset_is_an_answer(tmp_path):
    """The responder acknowledged the data (a pure ACK), then reset: it was reached: ok."""
    frames = [DATA[0], _dn(flags="A", seq=5000, ack=1041), _dn(flags="R", seq=5000)]
    flows, _ = whole(write(tmp_path, [(1.0 + 0.3 * i, f) for i, f in enumerate(frames)]))
    (r,) = flows.to_dict("records")
    assert (r["verdict"], r["reason"]) == ("ok", "partial")
    assert_same(flows)


@pytest.mark.parametrize("synacks", [1, 4])
def test_a_synack_the_originator_resets_is_not_judged(tmp_path, synacks):
    """A SYN-ACK the client resets, its SYN not in the capture (``^hR``: a load balancer or NAT
    answering from another address or port than the one the client's SYN went to): not an
    answer to anything the client asked, so the flow is not judged and does not verify its
    purpose (it was ok/verified; break-it 14 F4), whole and grouped alike."""
    from kscc_traffic.classify import UNASKED_SYNACK_DETAIL
    recs = []
    for k in range(synacks):
        recs += [(1000.0 + k, _dn(flags="SA", seq=5000, ack=1001)), (1000.0 + k + 0.001, _up(flags="R", seq=1001))]
    f, _ = whole(write(tmp_path, recs))
    r = f.iloc[0]
    assert (len(f), r["history"], r["partial"], r["verdict"], r["reason"], r["detail"]) == \
        (1, "^hR", True, "unclassified", "partial", UNASKED_SYNACK_DETAIL)
    assert_same(f)
