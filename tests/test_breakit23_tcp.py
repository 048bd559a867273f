"""Break-it 23 (TCP state machine against Zeek's semantics): a RST's payload is no data (F1),
history letters as Zeek's UpdateHistory (F7), whole = chunked."""
from __future__ import annotations

import pytest

pytest.importorskip("scapy")
from scapy.layers.inet import IP, TCP  # noqa: E402
from scapy.packet import Raw  # noqa: E402

from chunkcmp import assert_same, row, write  # noqa: E402
from test_decode_more_encaps import CH  # noqa: E402

C, S = ("192.0.2.10", 50000), ("203.0.113.10", 23101)
CI, SI = 1000, 5000


def up(t, flags, seq, ack=0, data=b"", sport=C[1], dport=S[1]):
    p = IP(src=C[0], dst=S[0], ttl=64) / TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack)
    return (t, eth(p / Raw(data) if data else p))


def down(t, flags, seq, ack=0, data=b"", sport=C[1], dport=S[1]):
    p = IP(src=S[0], dst=C[0], ttl=64) / TCP(sport=dport, dport=sport, flags=flags, seq=seq, ack=ack)
    return (t, eth(p / Raw(data) if data else p, src=SERVER_MAC, dst=CLIENT_MAC))


from pcapbuild import CLIENT_MAC, SERVER_MAC, eth  # noqa: E402

TEXT = b"Connection refused by policy"


def test_rst_with_text_after_the_handshake_is_still_rejected(tmp_path):
    # F1: a SYN proxy's reset carrying a diagnostic text (RFC 1122 4.2.2.12) right after the
    # handshake: no d in the history (Zeek writes only r for a RST), so the same verdict as
    # without the text
    recs = [up(0.0, "S", CI), down(0.01, "SA", SI, CI + 1), up(0.02, "A", CI + 1, SI + 1),
            down(0.03, "RA", SI + 1, CI + 1, TEXT)]
    w = assert_same(write(tmp_path, recs), [200, 400])
    r = row(w, orig_p=C[1])
    assert (r.conn_state, r.history, r.orig_bytes, r.resp_bytes) == ("RSTR", "ShAr", 0, 0)
    assert (r.verdict, r.reason) == ("blocked", "rejected")


def test_midstream_data_answered_by_a_reset_with_text_is_rejected(tmp_path):
    # F1 b: a capture that began mid-connection; the agent's data answered only by a RST that
    # carries "session expired"
    recs = [up(0.0, "PA", 7000, 9000, b"\x17\x03\x03\x00\x64" + bytes(100)),
            down(0.01, "R", 9000, 0, b"session expired")]
    w = assert_same(write(tmp_path, recs), [200])
    r = row(w, orig_p=C[1])
    assert (r.history, r.orig_bytes, r.resp_bytes) == ("Dr", 105, 0)
    assert (r.verdict, r.reason) == ("blocked", "rejected,partial")


def _conn(t0=0.0):
    c1, s1 = CI + 1, SI + 1
    return c1, s1, [up(t0, "S", CI), down(t0 + 0.01, "SA", SI, c1), up(t0 + 0.02, "A", c1, s1),
                    up(t0 + 0.03, "PA", c1, s1, CH), down(t0 + 0.04, "PA", s1, c1 + len(CH), b"x" * 50)]


@pytest.mark.parametrize("tail, history", [
    # FIN+RST is I (F7 b)
    (lambda c, s: [up(0.1, "FRA", c, s)], "ShADdI"),
    # a second RST 100 further on is written again (F7 c); the same sequence number again is not
    (lambda c, s: [up(0.1, "RA", c, s), up(0.2, "RA", c, s), up(0.3, "R", c + 100, 0)], "ShADdRR"),
    # data carried on a FIN: F only, no D (F7 a); the FIN sent again (same end) writes nothing
    (lambda c, s: [down(0.1, "FPA", s, c, b"bye"), down(0.2, "FPA", s, c, b"bye"), up(0.3, "FA", c, s + 4),
                   down(0.4, "A", s + 4, c + 1)], "ShADdfFa"),
])
def test_history_letters_follow_zeek(tmp_path, tail, history):
    c1, s1, recs = _conn()
    c, s = c1 + len(CH), s1 + 50
    w = assert_same(write(tmp_path, recs + tail(c, s)), [150, 300])
    assert row(w, orig_p=C[1]).history == history


def test_syn_fin_is_q_and_tfo_data_is_not_d(tmp_path):
    # SYN+FIN: Q, and the flow is not RSTOS0-like 'SR' (F7); a TFO SYN carrying the ClientHello,
    # sent twice, never answered: only S, so it is read as SYN retries
    recs = [up(0.0, "SF", CI, sport=50005), down(0.01, "RA", 0, CI + 1, sport=50005),
            up(1.0, "S", CI, data=CH, sport=50006), up(2.0, "S", CI, data=CH, sport=50006)]
    w = assert_same(write(tmp_path, recs), [150, 300])
    assert row(w, orig_p=50005).history == "Qr"
    r = row(w, orig_p=50006)
    assert (r.conn_state, r.history) == ("S0", "S")
    assert "SYN sent 2 times" in r.detail
