"""TCP simultaneous open (RFC 9293 §3.5: both sides send a SYN, then both a SYN-ACK) is one
connection, opened by the first SYN's sender; a SYN from a side that had already answered is
still a new connection."""
from __future__ import annotations

import pytest

pytest.importorskip("scapy")
from scapy.layers.inet import IP, TCP  # noqa: E402
from scapy.packet import Raw  # noqa: E402

from chunkcmp import assert_same, row, write  # noqa: E402
from kscc_traffic import build_flows, decode, read_frames  # noqa: E402
from pcapbuild import eth, pcap_bytes  # noqa: E402
from test_decode_more_encaps import CH, SH  # noqa: E402

C, S = ("192.0.2.10", 50001), ("198.51.100.7", 23101)
CI, SI = 1000, 5000       # the two sides' initial sequence numbers
APP = b"\x17\x03\x03\x00\x20" + bytes(32)       # one TLS 1.3 encrypted record
SERVER = SH + APP + APP   # ServerHello, then EncryptedExtensions…Finished (encrypted)


def up(t, flags, seq, ack=0, data=b"", cport=C[1]):
    p = IP(src=C[0], dst=S[0]) / TCP(sport=cport, dport=S[1], flags=flags, seq=seq, ack=ack)
    return (t, eth(p / Raw(data) if data else p))


def down(t, flags, seq, ack=0, data=b"", cport=C[1]):
    p = IP(src=S[0], dst=C[0]) / TCP(sport=S[1], dport=cport, flags=flags, seq=seq, ack=ack)
    return (t, eth(p / Raw(data) if data else p))


def simultaneous_open(t0=1000.0, client_retries=0):
    """Client SYN (retransmitted ``client_retries`` times), server SYN, both SYN-ACKs, client
    ACK, a TLS 1.3 handshake (ClientHello; ServerHello and the server's encrypted flight; the
    client's Finished), FIN both ways."""
    c1, s1 = CI + 1, SI + 1
    c2, s2 = c1 + len(CH), s1 + len(SERVER)
    recs = [up(t0, "S", CI)] + [up(t0 + 1 + k, "S", CI) for k in range(client_retries)]
    t = t0 + 1 + client_retries
    recs += [down(t, "S", SI),
             down(t + 0.01, "SA", SI, c1),
             up(t + 0.02, "SA", CI, s1),
             up(t + 0.03, "A", c1, s1),
             up(t + 0.04, "PA", c1, s1, CH),
             down(t + 0.05, "PA", s1, c2, SERVER),
             up(t + 0.06, "PA", c2, s2, APP),
             up(t + 0.07, "FA", c2 + len(APP), s2),
             down(t + 0.08, "FA", s2, c2 + len(APP) + 1),
             up(t + 0.09, "A", c2 + len(APP) + 1, s2 + 1)]
    return recs


def flows_of(recs):
    return build_flows(decode(read_frames(pcap_bytes(recs)))).flows


def test_simultaneous_open_is_one_connection_of_the_first_syns_sender():
    # and from another client port: the server refused (RST), then opened a connection of its
    # own on the same ports: two connections, the second the server's
    refused = [up(0.0, "S", CI, cport=50002), down(0.01, "RA", 0, CI + 1, cport=50002),
               down(1.0, "S", SI, cport=50002)]
    f = flows_of(simultaneous_open() + refused).sort_values("ts_ns").reset_index(drop=True)
    assert len(f) == 3
    r = row(f, orig_p=C[1])
    assert (r.orig_h, r.orig_p, r.resp_h, r.resp_p) == (C[0], C[1], S[0], S[1])
    # both sides' SYN (S s); their SYN-ACKs repeat their SYN's sequence number, so Zeek writes
    # no H/h for them (UpdateHistory: SYN and SYN-ACK share one letter mask, written again only
    # for another sequence number); each side's first ACK, data and FIN
    assert (r.conn_state, r.history) == ("SF", "SsADdFf")
    assert (r.orig_pkts, r.resp_pkts) == (7, 4)
    assert (r.orig_bytes, r.resp_bytes) == (len(CH) + len(APP), len(SERVER))
    assert not r.partial
    assert [(x.orig_h, x.conn_state, x.history) for x in f.itertuples() if x.orig_p != C[1]] == [
        (C[0], "REJ", "Sr"), (S[0], "S0", "S")]


def test_retransmitted_first_syn_then_the_peers_syn_is_still_one_connection():
    f = flows_of(simultaneous_open(client_retries=2))
    assert len(f) == 1
    assert (f.orig_h[0], f.conn_state[0], f.orig_pkts[0]) == (C[0], "SF", 9)


def test_simultaneous_open_is_ok_and_the_same_in_chunks(tmp_path):
    # ten retransmissions: the peer's SYN is not among the first packets a chunk boundary keeps
    # of the flow. And from another client port, the client's SYN (retransmitted), then much
    # later the server's own SYN; but the server had sent something since the client's last SYN
    # (stray packets without flags, which no other rule of the carry keeps), so its SYN is a
    # new connection, whole or in chunks of a packet
    other = dict(cport=50003)
    recs = [up(0.0, "S", CI, **other), down(0.1, "A", SI, CI + 1, **other)]
    recs += [up(1.0 + k, "S", CI, **other) for k in range(9)]
    recs += [down(10.5, "", SI, **other), down(10.6, "", SI, **other),
             up(11.0, "A", CI + 1, SI, **other), down(20.0, "S", SI + 7777, **other)]
    path = write(tmp_path, sorted(recs + simultaneous_open(t0=5.0, client_retries=10), key=lambda r: r[0]))
    w = assert_same(path, [60, 100, 300, 700])
    assert len(w) == 3
    r = row(w, orig_p=C[1])
    assert (r.orig_h, r.conn_state, r.history) == (C[0], "SF", "SsADdFf")
    assert (r.tls_established, r.purpose, r.verdict) == (True, "agent_connection", "ok")
    assert list(w[w.orig_p != C[1]].orig_h) == [C[0], S[0]]


@pytest.mark.parametrize("step", [1, 4])
def test_live_session_sees_the_same_connections(tmp_path, monkeypatch, step):
    from test_live_session import assert_live_same
    other = dict(cport=50003)
    recs = [up(0.0, "S", CI, **other), down(0.1, "A", SI, CI + 1, **other)]
    recs += [up(1.0 + k, "S", CI, **other) for k in range(9)]
    recs += [down(10.5, "", SI, **other), up(11.0, "A", CI + 1, SI, **other),
             down(20.0, "S", SI + 7777, **other)]
    path = write(tmp_path, sorted(recs + simultaneous_open(t0=5.0, client_retries=10), key=lambda r: r[0]))
    assert_live_same(path, monkeypatch, step)
