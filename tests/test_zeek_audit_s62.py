"""Session 62: the Zeek conn.log columns (``conn_state``, ``history``, packet and byte counts,
``duration``, the originator) on TCP, UDP and ICMP edge cases, against Zeek's own logic.

Expected values reasoned from Zeek's source (zeek/zeek): scripts/base/protocols/conn/main.zeek
``conn_state()`` and ``set_conn`` (duration and sizes), src/packet_analysis/protocol/tcp/
TCPSessionAdapter.cc (``update_history``, ``update_window``, ``update_last_seq``, the
``Update*State`` functions, ``IsReuse``, ``ConnectionClosed`` and the close delay, the
``SetLastTime`` guard), src/packet_analysis/protocol/tcp/TCP.cc ``WantConnection`` (the
originator flipped by ``likely_server_ports``), TCP_Endpoint.cc ``SetState`` (the TCP inactivity
timeout once the handshake is over), src/Conn.cc ``FlipRoles`` (``^``), the UDP analyzer
(``D``/``d`` once per direction, S0/SF/SHR), the ICMP session adapter (no history; sizes after the
8-byte header). Where the table deviates on purpose (docs/flow-table.md, *Where the rows differ
from Zeek's conn.log*: the originator without a SYN on a port that is no Zeek likely server port)
the expected value is the table's, and the comment says what Zeek writes.

Each capture: the whole-file analysis and the chunked one agree (``tests/chunkcmp.py``); a few are
replayed in a live session too."""
from __future__ import annotations

import pytest

pytest.importorskip("scapy")

from scapy.layers.inet import ICMP, IP, TCP, UDP  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402

from chunkcmp import assert_same, write  # noqa: E402
from pcapbuild import CLIENT_MAC, SERVER_MAC  # noqa: E402
from test_live_session import assert_live_same  # noqa: E402

CH = "192.0.2.10"
SH = "203.0.113.10"
A, B = 1000, 5000        # the client's and the server's ISN
HS = [("c", "S", A), ("s", "SA", B, A + 1), ("c", "A", A + 1, B + 1)]


def _tcp(steps, sport=50000, dport=23101, t0=1000.0, gap=0.01):
    """(ts, frame) per step ``(side 'c'/'s', flags, seq[, ack[, data[, window[, ts]]]])``, each
    with its own IP id; ``("wait", s)`` adds ``s`` seconds before the next packet; a step's 7th
    item stamps it at that time instead (a capture out of time order)."""
    out, t = [], t0
    for k, st in enumerate(steps):
        if st[0] == "wait":
            t += st[1]
            continue
        side, flags, seq = st[:3]
        ack = st[3] if len(st) > 3 else 0
        data = st[4] if len(st) > 4 else b""
        win = st[5] if len(st) > 5 else 8192
        (s_h, s_p), (d_h, d_p) = ((CH, sport), (SH, dport)) if side == "c" else ((SH, dport), (CH, sport))
        p = IP(src=s_h, dst=d_h, id=k + 1) / TCP(sport=s_p, dport=d_p, flags=flags, seq=seq % 2 ** 32,
                                                 ack=ack % 2 ** 32, window=win)
        if data:
            p = p / data
        macs = (CLIENT_MAC, SERVER_MAC) if side == "c" else (SERVER_MAC, CLIENT_MAC)
        out.append((st[6] if len(st) > 6 else t, Ether(src=macs[0], dst=macs[1]) / p))
        t += gap
    return out


def _udp(dgrams, t0=1000.0, gap=0.01):
    """(ts, frame) per datagram ``(src, dst, sport, dport, payload[, dst MAC])``."""
    return [(t0 + k * gap, Ether(src=CLIENT_MAC, dst=(d[5] if len(d) > 5 else SERVER_MAC))
             / IP(src=d[0], dst=d[1], id=k + 1) / UDP(sport=d[2], dport=d[3]) / d[4])
            for k, d in enumerate(dgrams)]


def _icmp(msgs):
    """(ts, frame) per ICMP echo message ``(ts, src, dst, type, id)``, 32 bytes of payload."""
    return [(t, Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IP(src=s, dst=d, id=k + 1)
             / ICMP(type=ty, id=i, seq=1) / (b"p" * 32)) for k, (t, s, d, ty, i) in enumerate(msgs)]


C2S = (CH, SH, 50001, 15111)
S2C = (SH, CH, 15111, 50001)

#: name -> (records, [(orig_p, conn_state, history, orig_pkts, orig_bytes, resp_pkts, resp_bytes,
#: duration)] per flow in time order)
CASES = {
    # SF: FIN each way; the last ACK after both FINs counted as a packet, not in the duration
    # (SetLastTime only while one side has not closed)
    "normal": (_tcp(HS + [("c", "PA", A + 1, B + 1, b"x" * 10), ("s", "PA", B + 1, A + 11, b"y" * 20),
                          ("c", "FA", A + 11, B + 21), ("s", "FA", B + 21, A + 12), ("c", "A", A + 12, B + 22)]),
               [(50000, "SF", "ShADdFf", 5, 10, 3, 20, 0.06)]),
    # simultaneous open: the responder's SYN (no ACK) while the originator is SYN_SENT makes both
    # ESTABLISHED; each SYN-ACK carries its side's SYN number again: no H (rel_seq == hist_last_SYN)
    "simultaneous_open": (_tcp([("c", "S", A), ("s", "S", B), ("c", "SA", A, B + 1), ("s", "SA", B, A + 1),
                                ("c", "A", A + 1, B + 1), ("s", "A", B + 1, A + 1)]),
                          [(50000, "S1", "SsAa", 3, 0, 3, 0, 0.05)]),
    # a SYN sent again with a new ISN: IsReuse (base_seq != StartSeq) starts a new connection
    "syn_new_isn": (_tcp([("c", "S", A), ("wait", 1), ("c", "S", A + 777777)]),
                    [(50000, "S0", "S", 1, 0, 0, 0, 0.0), (50000, "S0", "S", 1, 0, 0, 0, 0.0)]),
    # the same ISN within tcp_attempt_delay (5 s): one connection, one S
    "syn_same_isn": (_tcp([("c", "S", A), ("wait", 1), ("c", "S", A), ("wait", 2), ("c", "S", A)]),
                     [(50000, "S0", "S", 3, 0, 0, 0, 3.02)]),
    # the client's RST after the SYN-ACK: responder ESTABLISHED, originator RESET: RSTO
    "synack_client_rst": (_tcp(HS[:2] + [("c", "R", A + 1)]), [(50000, "RSTO", "ShR", 2, 0, 1, 0, 0.02)]),
    # the client's RST, nothing from the responder: RSTOS0 (history /^?S[^HAFGIQ]*R.*/)
    "syn_client_rst": (_tcp([("c", "S", A), ("c", "R", A + 1)]), [(50000, "RSTOS0", "SR", 2, 0, 0, 0, 0.01)]),
    # the responder's RST to the SYN: REJ
    "syn_rej": (_tcp([("c", "S", A), ("s", "RA", 0, A + 1)]), [(50000, "REJ", "Sr", 1, 0, 1, 0, 0.01)]),
    # SYN then FIN, no answer: SH
    "syn_fin": (_tcp([("c", "S", A), ("c", "FA", A + 1, 0)]), [(50000, "SH", "SF", 2, 0, 0, 0, 0.01)]),
    # a lone SYN-ACK from 443 then FIN: flipped (443 is a likely server port): ^hf, SHR
    "synack_fin_443": (_tcp([("s", "SA", B, A + 1), ("s", "FA", B + 1, A + 1)], dport=443),
                       [(50000, "SHR", "^hf", 0, 0, 2, 0, 0.01)]),
    # FIN from the originator only: S2; from the responder only: S3
    "s2": (_tcp(HS + [("c", "PA", A + 1, B + 1, b"x" * 10), ("s", "A", B + 1, A + 11), ("c", "FA", A + 11, B + 1),
                      ("s", "A", B + 1, A + 12)]), [(50000, "S2", "ShADaF", 4, 10, 3, 0, 0.06)]),
    "s3": (_tcp(HS + [("c", "PA", A + 1, B + 1, b"x" * 10), ("s", "PA", B + 1, A + 11, b"y" * 5),
                      ("s", "FA", B + 6, A + 11), ("c", "A", A + 11, B + 7)]),
           [(50000, "S3", "ShADdf", 4, 10, 3, 5, 0.06)]),
    # data before the SYN-ACK (Zeek's weird data_before_established): counted, S1
    "data_before_handshake": (_tcp([("c", "S", A), ("c", "PA", A + 1, 0, b"x" * 10), ("s", "SA", B, A + 1),
                                    ("c", "A", A + 11, B + 1)]), [(50000, "S1", "SDhA", 3, 10, 1, 0, 0.03)]),
    # a SYN-ACK written before its SYN but stamped after it: time order (Zeek in file order
    # would flip at the SYN: Hs^A S1)
    "synack_first_in_file": (_tcp([("s", "SA", B, A + 1, b"", 8192, 1000.01), ("c", "S", A, 0, b"", 8192, 1000.0),
                                   ("c", "A", A + 1, B + 1, b"", 8192, 1000.02)]),
                             [(50000, "S1", "ShA", 2, 0, 1, 0, 0.02)]),
    # ... and stamped before it too: what Zeek logs on 443 (flipped at the SYN-ACK; the client's
    # SYN leaves it SYN_SENT, its ACK too): ^hSA OTH (Zeek on 23101: Hs^A S1)
    "synack_before_syn": (_tcp([("s", "SA", B, A + 1), ("c", "S", A), ("c", "A", A + 1, B + 1)]),
                          [(50000, "OTH", "^hSA", 2, 0, 1, 0, 0.02)]),
    # a RST carrying payload at the current number: r, then t (its payload not in the sequence
    # space: delta_last 0 with len > 0); not counted
    "rst_with_payload": (_tcp(HS + [("c", "PA", A + 1, B + 1, b"x" * 10), ("s", "RA", B + 1, A + 11, b"reset text")]),
                         [(50000, "RSTR", "ShADrt", 3, 10, 2, 0, 0.04)]),
    # out of order, and a retransmission with other bytes (Zeek writes no letter for the
    # inconsistency, a weird only; `I` is FIN+RST): T both
    "out_of_order": (_tcp(HS + [("c", "PA", A + 11, B + 1, b"y" * 10), ("c", "PA", A + 1, B + 1, b"x" * 10),
                                ("s", "A", B + 1, A + 21)]), [(50000, "S1", "ShADTa", 4, 20, 2, 0, 0.05)]),
    "overlap_other_bytes": (_tcp(HS + [("c", "PA", A + 1, B + 1, b"x" * 10), ("c", "PA", A + 1, B + 1, b"Q" * 10),
                                       ("s", "A", B + 1, A + 11)]), [(50000, "S1", "ShADTa", 4, 10, 2, 0, 0.05)]),
    # SYN+FIN: Q, SYN_SENT then CLOSED: SH; FIN+RST after data: I, RSTO
    "syn_fin_one_packet": (_tcp([("c", "SF", A)]), [(50000, "SH", "Q", 1, 0, 0, 0, 0.0)]),
    "fin_rst_one_packet": (_tcp(HS + [("c", "PA", A + 1, B + 1, b"x" * 10), ("c", "FRA", A + 11, B + 1)]),
                           [(50000, "RSTO", "ShADI", 4, 10, 1, 0, 0.04)]),
    # the server's packets alone on 23101: the table's originator is the client (Zeek: the
    # server, 23101 being no likely server port: DF SH with orig_bytes 200)
    "server_only_23101": (_tcp([("s", "PA", B + 1, A + 1, b"y" * 100), ("s", "PA", B + 101, A + 1, b"y" * 100),
                                ("s", "FA", B + 201, A + 1)]), [(50000, "SHR", "^df", 0, 0, 3, 200, 0.02)]),
    # sequence numbers across 2**32, a retransmission across the wrap: one T, bytes exact
    "wrap_retransmission": (_tcp([("c", "S", 2 ** 32 - 50), ("s", "SA", B, 2 ** 32 - 49), ("c", "A", 2 ** 32 - 49, B + 1),
                                  ("c", "PA", 2 ** 32 - 49, B + 1, b"x" * 100), ("c", "PA", 2 ** 32 - 49, B + 1, b"x" * 100),
                                  ("s", "A", B + 1, 51), ("c", "PA", 51, B + 1, b"y" * 10),
                                  ("c", "PA", 2 ** 32 - 9, B + 1, b"x" * 60), ("s", "A", B + 1, 61)]),
                            [(50000, "S1", "ShADTa", 6, 110, 3, 0, 0.08)]),
    # 600 s of silence after the handshake (tcp_inactivity_timeout 5 min): two connections, the
    # second partial (no SYN), its sequence space from its first packet
    "idle_600s": (_tcp(HS + [("c", "PA", A + 1, B + 1, b"x" * 10), ("s", "A", B + 1, A + 11), ("wait", 600),
                             ("c", "PA", A + 11, B + 1, b"z" * 10), ("s", "A", B + 1, A + 21), ("c", "FA", A + 21, B + 1),
                             ("s", "FA", B + 1, A + 22), ("c", "A", A + 22, B + 2)]),
                  [(50000, "S1", "ShADa", 3, 10, 2, 0, 0.04), (50000, "SF", "DaFfA", 3, 10, 2, 0, 0.03)]),
    # a client FIN then RST, then the server's FIN: the peer's FIN turns the RESET back to
    # CLOSED (UpdateEstablishedState): SF
    "fin_rst_then_peer_fin": (_tcp(HS + [("c", "FA", A + 1, B + 1), ("c", "R", A + 2), ("s", "FA", B + 1, A + 2)]),
                              [(50000, "SF", "ShAFRf", 4, 0, 2, 0, 0.05)]),
    # the resetting side's own RST sent again 1 s later at another number: R again, and in the
    # duration (the responder has not closed)
    "two_client_rsts": (_tcp(HS + [("c", "PA", A + 1, B + 1, b"x" * 10), ("c", "R", A + 11), ("wait", 1),
                                   ("c", "R", A + 500)]), [(50000, "RSTO", "ShADRR", 5, 10, 1, 0, 1.05)]),
    # after a FIN each way the connection is deleted tcp_close_delay (5 s) later: a packet 10 s
    # after is a connection of its own
    "stray_after_close": (_tcp(HS + [("c", "FA", A + 1, B + 1), ("s", "FA", B + 1, A + 2), ("c", "A", A + 2, B + 2),
                                     ("wait", 10), ("c", "A", A + 2, B + 2)]),
                          [(50000, "SF", "ShAFf", 4, 0, 2, 0, 0.04), (50000, "OTH", "A", 1, 0, 0, 0, 0.0)]),
    # data 2 s after the server's RST: same connection (close delay), counted, in the duration
    "data_2s_after_rst": (_tcp(HS + [("c", "PA", A + 1, B + 1, b"x" * 10), ("s", "R", B + 1), ("wait", 2),
                                     ("c", "PA", A + 11, B + 1, b"z" * 10)]),
                          [(50000, "RSTR", "ShADr", 4, 20, 2, 0, 2.05)]),
    # a SYN-ACK and an ACK with window 0: w then (2nd event) nothing; a SYN with window 0: W
    "synack_window_0": (_tcp([("c", "S", A), ("s", "SA", B, A + 1, b"", 0), ("c", "A", A + 1, B + 1),
                              ("s", "A", B + 1, A + 1, b"", 0)]), [(50000, "S1", "ShwAa", 2, 0, 2, 0, 0.03)]),
    # the RST's acknowledgement is not trusted (update_ack_seq skipped): the server's 10 bytes
    "rst_ack_not_counted": (_tcp(HS + [("s", "PA", B + 1, A + 1, b"y" * 10), ("c", "RA", A + 1, B + 111)]),
                            [(50000, "RSTO", "ShAdR", 3, 0, 2, 10, 0.04)]),
    # an ACK then the server's RST, no SYN: RSTRH
    "ack_then_rst": (_tcp([("c", "A", A, B), ("s", "R", B)]), [(50000, "RSTRH", "Ar", 1, 0, 1, 0, 0.01)]),
    # UDP: request and answer SF, one way S0 (two datagrams: 40 bytes), an empty datagram still D
    "udp_request_response": (_udp([C2S + (b"q" * 20,), S2C + (b"r" * 30,)]), [(50001, "SF", "Dd", 1, 20, 1, 30, 0.01)]),
    "udp_one_way": (_udp([C2S + (b"q" * 20,), C2S + (b"q" * 20,)]), [(50001, "S0", "D", 2, 40, 0, 0, 0.01)]),
    "udp_empty": (_udp([C2S + (b"",), S2C + (b"",)]), [(50001, "SF", "Dd", 1, 0, 1, 0, 0.01)]),
    # an answer from 53 alone: flipped (53 a likely server port): ^d SHR
    "udp_answer_only_53": (_udp([(SH, CH, 53, 50002, b"r" * 30)]), [(50002, "SHR", "^d", 0, 0, 1, 30, 0.0)]),
    # from 15111 alone (no Zeek likely server port): its sender stays the originator, as in Zeek
    "udp_one_way_15111": (_udp([S2C + (b"r" * 30,)]), [(15111, "S0", "D", 1, 30, 0, 0, 0.0)]),
    # 70 s apart: udp_inactivity_timeout (1 min) splits
    "udp_gap_70s": (_udp([C2S + (b"q" * 20,), C2S + (b"q" * 20,)], gap=70.0),
                    [(50001, "S0", "D", 1, 20, 0, 0, 0.0), (50001, "S0", "D", 1, 20, 0, 0, 0.0)]),
    # the KSC broadcast on UDP 15000
    "udp_15000_broadcast": (_udp([("192.0.2.10", "255.255.255.255", 15000, 15000, b"b" * 40, "ff:ff:ff:ff:ff:ff")] * 2),
                            [(15000, "S0", "D", 2, 80, 0, 0, 0.01)]),
    # ICMP echo: ports 8/0, OTH, no history, sizes after the 8-byte header; two identifiers are
    # one connection (the id is not in Zeek's key); a reply alone keeps its sender (0 -> 8)
    "icmp_echo_two_ids": (_icmp([(1000.0, CH, SH, 8, 7), (1000.01, SH, CH, 0, 7), (1010.0, CH, SH, 8, 8),
                                 (1010.01, SH, CH, 0, 8)]), [(8, "OTH", "", 2, 64, 2, 64, 10.01)]),
    "icmp_reply_only": (_icmp([(1000.0, SH, CH, 0, 7)]), [(0, "OTH", "", 1, 32, 0, 0, 0.0)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_zeek_columns(tmp_path, name):
    recs, expected = CASES[name]
    path = write(tmp_path, recs, f"{name}.pcap")
    w = assert_same(path, (150, 400))
    got = [(int(r.orig_p), r.conn_state, r.history, int(r.orig_pkts), int(r.orig_bytes), int(r.resp_pkts),
            int(r.resp_bytes), round(float(r.duration), 3)) for r in w.itertuples()]
    assert got == expected


#: SYN, FIN and RST in one packet (Zeek writes ``I`` for any FIN+RST): the flow began with that
#: SYN; nothing or only a reset answered it
XMAS = {
    "alone": ([("c", "SFR", A)], "OTH", "I", "one packet with SYN and FIN or RST set together"),
    "reset": ([("c", "SFR", A), ("s", "RA", 0, A + 1)], "REJ", "Ir", "answered by a reset only"),
}


@pytest.mark.parametrize("case", sorted(XMAS))
def test_christmas_tree_probe_not_judged(tmp_path, case):
    """Before: a lone SYN+FIN+RST to 23101 was ``ok`` with no detail, one answered by a reset
    ``blocked``/``rejected``; as the SYN+FIN probe (``Q``), it is not judged."""
    steps, state, history, said = XMAS[case]
    w = assert_same(write(tmp_path, _tcp(steps)), (150,))
    r = w.iloc[0]
    assert (len(w), r.conn_state, r.history, r.verdict, r.reason, r.purpose) == \
        (1, state, history, "unclassified", "", "agent_connection")
    assert said in r.detail


def test_fin_rst_without_syn_still_a_connections_end(tmp_path):
    """A FIN+RST whose connection's start was not captured (``I``, partial) is no probe."""
    w = assert_same(write(tmp_path, _tcp([("c", "FRA", A + 5, B + 5)])), (150,))
    r = w.iloc[0]
    assert (r.history, r.verdict, r.reason) == ("I", "unclassified", "partial")
    assert "SYN and FIN" not in r.detail and r.detail.startswith("capture started mid-connection")


@pytest.mark.parametrize("name", ["two_client_rsts", "stray_after_close", "synack_before_syn", "data_2s_after_rst",
                                  "idle_600s"])
def test_live_same(tmp_path, monkeypatch, name):
    """A live session's final table equals analyze's (``idle_600s`` too since zeek63: the live
    table's second flow has the detail's idle note, *goes on with the connection of this 5-tuple
    after …*, as analyze and the chunked reading write it)."""
    path = write(tmp_path, CASES[name][0], f"{name}.pcap")
    assert_live_same(path, monkeypatch, step=2)
