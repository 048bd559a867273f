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
    # (t: the reset's text at the side's current number, Zeek's T, session 61)
    assert (r.conn_state, r.history, r.orig_bytes, r.resp_bytes) == ("RSTR", "ShArt", 0, 0)
    assert (r.verdict, r.reason) == ("blocked", "rejected")


def test_midstream_data_answered_by_a_reset_with_text_is_rejected(tmp_path):
    # F1 b: a capture that began mid-connection; the agent's data answered only by a RST that
    # carries "session expired"
    recs = [up(0.0, "PA", 7000, 9000, b"\x17\x03\x03\x00\x64" + bytes(100)),
            down(0.01, "R", 9000, 0, b"session expired")]
    w = assert_same(write(tmp_path, recs), [200])
    r = row(w, orig_p=C[1])
    assert (r.history, r.orig_bytes, r.resp_bytes) == ("Drt", 105, 0)   # (t: the reset's text, Zeek's T)
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
    # data carried on a FIN: F only, no D (F7 a); the FIN sent again (same end) writes no f, but
    # its data repeated is Zeek's t (session 61)
    (lambda c, s: [down(0.1, "FPA", s, c, b"bye"), down(0.2, "FPA", s, c, b"bye"), up(0.3, "FA", c, s + 4),
                   down(0.4, "A", s + 4, c + 1)], "ShADdftFa"),
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
    assert (r.conn_state, r.history) == ("S0", "ST")    # (T: the SYN's data, Zeek's init_endpoint, session 61)
    assert "SYN sent 2 times" in r.detail


def test_fin_rst_keeps_its_last_byte(tmp_path):
    # F8: the originator's last packet is FIN+RST: its bytes as with any other close (Zeek's
    # get_segment_len keeps the FIN's octet of a FIN+RST, Size() removes it again)
    c1, s1, recs = _conn()
    w = assert_same(write(tmp_path, recs + [up(0.1, "FRA", c1 + len(CH), s1 + 50)]), [200])
    r = row(w, orig_p=C[1])
    assert (r.history, r.orig_bytes, r.resp_bytes) == ("ShADdI", len(CH), 50)


def test_rej_reads_sequence_sizes(tmp_path):
    # F9: SYN, SYN-ACK, the client's RST, the server's RST carrying text: both sizes 0 (a RST's
    # payload is not in the sequence space): REJ as Zeek
    recs = [up(0.0, "S", CI), down(0.01, "SA", SI, CI + 1), up(0.02, "R", CI + 1),
            down(0.03, "RA", SI + 1, CI + 1, b"bye")]
    w = assert_same(write(tmp_path, recs), [200])
    r = row(w, orig_p=C[1])
    # (t: the reset's text at the side's current number, Zeek's T, session 61)
    assert (r.conn_state, r.history, r.orig_bytes, r.resp_bytes) == ("REJ", "ShRrt", 0, 0)


def test_midstream_keepalive_then_resets_is_not_rej(tmp_path):
    # F9: a capture that began on an idle connection: a keep-alive at SND.NXT - 1, its ACK, the
    # server's RST and the client's: the originator's size is 1 (as Zeek's), so RSTR, not REJ
    recs = [up(0.0, "A", 1999, 8000), down(0.01, "A", 8000, 2000),
            down(0.02, "R", 8000), up(0.03, "R", 2000)]
    w = assert_same(write(tmp_path, recs), [200])
    r = row(w, orig_p=C[1])
    assert (r.conn_state, r.orig_bytes) == ("RSTR", 1)


@pytest.mark.parametrize("ka", [b"", b"x"])
def test_keepalives_alone_carry_no_data(tmp_path, ka):
    # F2: keep-alives (Linux: 0 bytes at SND.NXT - 1; Windows: 1 old byte) and their ACKs on a
    # connection whose start was not captured: orig_bytes is 1 as in Zeek, but no data carried
    from kscc_traffic.flows import carried_data
    recs = []
    for k in range(3):
        recs += [up(k * 10.0, "A", 1999, 8000, ka), down(k * 10.0 + 0.01, "A", 8000, 2000)]
    recs += [up(40.0, "A", 7000, 9000, sport=50001), down(40.01, "A", 9000, 7000, sport=50001),
             up(41.0, "PA", 7000, 9000, b"\x17\x03\x03\x00\x05hello", sport=50001)]
    w = assert_same(write(tmp_path, recs), [200])
    ka_row, data_row = row(w, orig_p=C[1]), row(w, orig_p=50001)
    assert (ka_row.partial, ka_row.orig_bytes, ka_row.resp_bytes) == (True, 1, 0)
    assert carried_data(w).tolist() == [r.orig_p == 50001 for r in w.itertuples()]
    assert data_row.orig_bytes == 10


@pytest.mark.parametrize("gap", [0.5, 6.0])
def test_refused_then_same_isn_retry_accepted_is_rej_then_sf(tmp_path, gap):
    # F10: SYN -> RST; the same SYN (same port and ISN, as Windows retries) 0.5 s or 6 s later
    # is accepted: the same two rows either way, REJ and SF (as Zeek), not one RSTR
    c1, s1, hs = _conn(gap)
    recs = [up(0.0, "S", CI), down(0.01, "RA", 0, CI + 1)] + hs
    c, s = c1 + len(CH), s1 + 50
    recs += [up(gap + 0.1, "FA", c, s), down(gap + 0.11, "FA", s, c + 1), up(gap + 0.12, "A", c + 1, s + 1)]
    w = assert_same(write(tmp_path, recs), [150, 300])
    assert [(r.conn_state, r.history) for r in w.itertuples()] == [("REJ", "Sr"), ("SF", "ShADdFf")]
    # (session 33: the refused attempt whose retry connected is a passing refusal, ok, its detail
    # naming the retry; it was blocked)
    assert (list(w.verdict)[0], list(w.reason)[0]) == ("ok", "") and list(w.verdict)[1] != "blocked"
    assert w.iloc[0].detail.startswith("refused at ") and f"connected (on {w.iloc[1].uid})" in w.iloc[0].detail


def test_refused_retries_stay_one_rej(tmp_path):
    # the Windows case the merge is for: the same SYN refused three times is one REJ flow
    recs = []
    for k in range(3):
        recs += [up(k * 0.5, "S", CI), down(k * 0.5 + 0.01, "RA", 0, CI + 1)]
    w = assert_same(write(tmp_path, recs), [150])
    assert [(r.conn_state, r.history, r.orig_pkts) for r in w.itertuples()] == [("REJ", "Sr", 3)]


@pytest.mark.parametrize("engine", ["builtin", "tshark"])
def test_tcp_data_offset_below_5_is_malformed(tmp_path, engine):
    # F11: a SYN whose data offset is 0 is a malformed packet for both engines (Zeek:
    # bad_TCP_header_len; Wireshark: "Bogus TCP header length"): no blocked SYN row from it,
    # and counted; a good SYN next to it is read as ever
    import shutil
    from kscc_traffic.analyze import analyze_file
    from kscc_traffic.rules import load_rules
    if engine == "tshark" and shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    bad = IP(src=C[0], dst=S[0]) / TCP(sport=50003, dport=S[1], flags="S", seq=CI, dataofs=0)
    recs = [(0.0, eth(bad)), up(0.5, "S", CI, sport=50009)]
    a = analyze_file(write(tmp_path, recs), load_rules(), **({} if engine == "builtin" else {"engine": "tshark"}))
    assert sorted(a.flows.orig_p) == [50009]
    assert sum(st.malformed for st in a.stats.values()) == 1
    if engine == "builtin":
        assert any("1 frame too short or inconsistent" in w for st in a.stats.values() for w in st.warnings)



def test_lone_syn_rst_packet_is_not_judged(tmp_path):
    """A single packet with SYN and RST set (history ``Q``, Zeek's OTH), nothing back, to the
    agents' port: not a connection that verifies or fails the purpose."""
    from scapy.layers.inet import IP, TCP as TCPL
    from chunkcmp import assert_same, row, write
    from kscc_traffic.classify import INVALID_SYN
    from pcapbuild import eth
    path = write(tmp_path, [(1000.0, eth(IP(src="198.18.0.5", dst="203.0.113.10") / TCPL(sport=50005, dport=23101, flags="SR", seq=7))),
                            (1001.0, eth(IP(src="198.18.0.5", dst="203.0.113.10") / TCPL(sport=50006, dport=23101, flags="S", seq=9)))])
    w = assert_same(path, [150])
    r = row(w, orig_p=50005)
    assert (r.history, r.conn_state, r.purpose, r.verdict, r.detail) == ("Q", "OTH", "agent_connection", "unclassified", INVALID_SYN)
    assert row(w, orig_p=50006).verdict == "blocked"
