"""Session 63 (zeek63): Zeek conn_state/history leftovers, checked against Zeek's source (zeek/zeek
src/packet_analysis/protocol/tcp/TCPSessionAdapter.cc ``update_history`` and the ``Update*State``
functions, TCP.cc ``WantConnection``, scripts/base/protocols/conn/main.zeek ``conn_state()``).

Each capture is read whole and in chunks (``tests/chunkcmp.py``), and replayed into a live session."""
from __future__ import annotations

import pytest

pytest.importorskip("scapy")

from chunkcmp import assert_same, write  # noqa: E402
from test_live_session import assert_live_same  # noqa: E402
from test_zeek_audit_s62 import A, B, _tcp  # noqa: E402

#: name -> (steps, orig_p, conn_state, history, verdict, reason, words the detail holds)
CASES = {
    # 1. a SYN answered only by a bare ACK acknowledging it (no SYN-ACK, no reset): Zeek ``Sa`` S0
    # (the responder's pure ACK leaves it INACTIVE while the originator is SYN_SENT); was ok with
    # no detail
    "ack_only": ([("c", "S", A), ("s", "A", B, A + 1)],
                 50000, "S0", "Sa", "blocked", "rejected", "bare ACKs acknowledging it, never by a SYN-ACK"),
    "ack_only_retried": ([("c", "S", A), ("s", "A", B, A + 1), ("wait", 1), ("c", "S", A), ("s", "A", B, A + 1),
                          ("wait", 2), ("c", "S", A), ("s", "A", B, A + 1)],
                         50000, "S0", "Sa", "blocked", "rejected", "challenge ACK"),
    # 2. a lone packet with SYN, ACK, FIN and RST from the client's port: no SYN-ACK (Zeek writes
    # I for any FIN+RST; WantConnection keeps its sender the originator, 50000 being no likely
    # server port; SYN_ACK_SENT, CLOSED, RESET with the responder inactive: OTH); was taken as the
    # server's SYN-ACK (^i RSTRH, originator 23101)
    "safr_from_client": ([("c", "SAFR", A, B + 1)],
                         50000, "OTH", "I", "unclassified", "partial", "capture started mid-connection"),
    # ... answered by the server's RST: both RESET, no bytes: REJ (was ^iR REJ, originator 23101)
    "safr_from_client_reset": ([("c", "SAFR", A, B + 1), ("s", "R", B + 1)],
                               50000, "REJ", "Ir", "unclassified", "partial", "only resets"),
    # a SYN, then the client's own SYN+FIN+RST, nothing back: Zeek OTH (the I keeps it from
    # RSTOS0); an attempt without an answer, as SR is (was ok with no detail)
    "syn_then_own_xmas": ([("c", "S", A), ("c", "SAFR", A, B + 1)],
                          50000, "OTH", "SI", "blocked", "no_answer", "connection attempt without an answer (2 packets"),
    # a SYN answered by SYN+ACK+FIN+RST: Zeek RSTR (its SYN makes the originator ESTABLISHED, then
    # the responder CLOSED, RESET); a reset, no SYN-ACK (was ok with no detail)
    "syn_answered_xmas": ([("c", "S", A), ("s", "SAFR", B, A + 1)],
                          50000, "RSTR", "Si", "blocked", "rejected", "the SYN was answered by a TCP reset"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_zeek63_cases(tmp_path, name):
    steps, orig_p, state, history, verdict, reason, said = CASES[name]
    w = assert_same(write(tmp_path, _tcp(steps), f"{name}.pcap"), (150,))
    assert len(w) == 1
    r = w.iloc[0]
    assert (int(r.orig_p), r.conn_state, r.history, r.verdict, r.reason) == (orig_p, state, history, verdict, reason)
    assert said in r.detail, r.detail


@pytest.mark.parametrize("name", sorted(CASES))
def test_zeek63_live_same(tmp_path, monkeypatch, name):
    path = write(tmp_path, _tcp(CASES[name][0]), f"{name}.pcap")
    assert_live_same(path, monkeypatch, step=1)


def test_ack_only_why_flagged():
    """The HTML report's *Why flagged* for such a flow names the bare ACK, not a TCP reset."""
    from kscc_traffic.classify import ACK_ONLY_ANSWER
    from kscc_traffic.report import REJECTED_TEXT, rejected_kind
    assert rejected_kind(ACK_ONLY_ANSWER) == "ack_only"
    assert "bare ACK" in REJECTED_TEXT["ack_only"]

