"""Flows: 5-tuple assembly, originator, Zeek conn_state/history, duplicates, port reuse, casts."""
from __future__ import annotations

import pandas as pd
import pytest

pytest.importorskip("scapy")
from scapy.layers.inet import ICMP, IP, TCP, UDP  # noqa: E402
from scapy.layers.inet6 import IPv6, ICMPv6DestUnreach  # noqa: E402

from kscc_traffic import build_flows, decode, load_rules, read_frames  # noqa: E402
from kscc_traffic.analyze import server_port_fn  # noqa: E402
from pcapbuild import eth, pcap_bytes, tcp_session, udp  # noqa: E402

C, S = ("192.0.2.10", 50000), ("203.0.113.10", 23101)


SERVER_PORT = server_port_fn(load_rules())


def flows_of(records, **kw):
    kw.setdefault("server_port", SERVER_PORT)
    return build_flows(decode(read_frames(pcap_bytes(records))), **kw).flows


def syn(t, seq=1000, src=C, dst=S):
    return (t, eth(IP(src=src[0], dst=dst[0]) / TCP(sport=src[1], dport=dst[1], flags="S", seq=seq)))


def from_server(t, flags, seq=5000, ack=1001, src=S, dst=C):
    return (t, eth(IP(src=src[0], dst=dst[0]) / TCP(sport=src[1], dport=dst[1], flags=flags, seq=seq, ack=ack)))


def test_full_session_is_sf_with_zeek_history():
    f = flows_of(tcp_session(C, S, c_data=b"hello", s_data=b"world!"))
    assert len(f) == 1
    r = f.iloc[0]
    assert (r.orig_h, r.orig_p, r.resp_h, r.resp_p, r.proto) == ("192.0.2.10", 50000, "203.0.113.10", 23101, "tcp")
    assert r.conn_state == "SF"
    assert r.history == "ShADdFf"  # the server never sent a pure ACK
    assert (r.orig_pkts, r.orig_bytes, r.resp_pkts, r.resp_bytes) == (5, 5, 3, 6)
    assert r.orig_ip_bytes == 4 * 40 + 45
    # (as Zeek: the client's last ACK, after both FINs, does not lengthen the duration)
    assert r.duration == pytest.approx(0.06)
    assert not r.partial
    # (plain object labels: flows.label_index)
    assert f.columns.dtype == object and f.columns[0] == "ts"


def test_retransmitted_syns_are_one_s0_flow():
    f = flows_of([syn(0.0), syn(1.0), syn(3.0), syn(7.0)])
    assert len(f) == 1
    assert (f.conn_state[0], f.history[0], f.orig_pkts[0], f.resp_pkts[0]) == ("S0", "S", 4, 0)
    assert f.duration[0] == pytest.approx(7.0)


def closing(t0=0.0, *after):
    """A connection closed by both sides' FINs (the server's at ``t0`` + 0.03), then ``after``
    (records)."""
    return [syn(t0), from_server(t0 + 0.01, "SA", ack=1001),
            (t0 + 0.02, eth(IP(src=C[0], dst=S[0]) / TCP(sport=C[1], dport=S[1], flags="FA", seq=1001, ack=5001))),
            from_server(t0 + 0.03, "FA", seq=5001, ack=1002), *after]


def client(t, flags, seq=1002, ack=5002):
    return (t, eth(IP(src=C[0], dst=S[0]) / TCP(sport=C[1], dport=S[1], flags=flags, seq=seq, ack=ack)))


def test_duration_stops_when_both_sides_have_closed():
    """break-it 23 F6: Zeek moves a TCP connection's last time only while one side has not yet
    closed (TCPSessionAdapter::Process: SetLastTime unless both endpoints did_close, by a FIN or
    a RST): the packet that closes the second side counts, the last ACK, FINs sent again and a
    late RST after it do not. The flow itself still ends at its real last packet (one flow: the
    close delay counts from there)."""
    f = flows_of(closing(0.0, client(0.05, "A")))
    assert (len(f), f.conn_state[0], f.orig_pkts[0], f.resp_pkts[0]) == (1, "SF", 3, 2)
    assert f.duration[0] == pytest.approx(0.03)
    # FINs sent again and a late RST, each less than the close delay after the packet before
    late = [from_server(3.0, "FA", seq=5001, ack=1002), client(6.0, "A"), client(9.5, "R", ack=0)]
    f = flows_of(closing(0.0, *late))
    assert (len(f), f.orig_pkts[0], f.resp_pkts[0]) == (1, 4, 3)
    assert f.duration[0] == pytest.approx(0.03)
    # a FIN+RST closing the second side is the closing packet itself: it counts
    f = flows_of(closing(0.0)[:3] + [from_server(0.5, "FR", seq=5001, ack=1002), client(1.0, "R", ack=0)])
    assert f.duration[0] == pytest.approx(0.5)


def test_duration_goes_on_while_one_side_has_not_closed():
    """One side's RST (or FIN) closes only that side: the other side's packets after it still
    lengthen the duration (Zeek: did_close of both endpoints), up to its own FIN or RST."""
    est = [syn(0.0), from_server(0.01, "SA", ack=1001), client(0.02, "A", seq=1001, ack=5001)]
    f = flows_of(est + [client(0.1, "R", seq=1001, ack=0), from_server(0.4, "PA", seq=5001, ack=1001),
                        from_server(0.9, "PA", seq=5001, ack=1001)])
    assert f.duration[0] == pytest.approx(0.9)
    f = flows_of(est + [client(0.1, "FA", seq=1001, ack=5001), from_server(0.4, "A", seq=5001, ack=1002),
                        from_server(0.6, "RA", seq=5001, ack=1002), client(2.0, "A", seq=1002, ack=5001)])
    assert f.duration[0] == pytest.approx(0.6)
    # UDP: every datagram counts
    f = flows_of([udp(C, ("203.0.113.10", 53), t=0.0), udp(("203.0.113.10", 53), C, t=0.3),
                  udp(C, ("203.0.113.10", 53), t=0.8)])
    assert f.duration[0] == pytest.approx(0.8)


def test_duration_after_close_alike_in_chunks(tmp_path):
    """The chunked analysis (packets after the close carried across chunk boundaries) gives the
    durations of the whole-file analysis: the close of each side is in what it carries."""
    from chunkcmp import assert_same, write
    recs = []
    for i in range(40):
        c = ("192.0.2.10", 40000 + i)
        t0 = i * 0.5
        for t, frame in tcp_session(c, S, t0=t0, c_data=b"x" * 300, s_data=b"y" * 900):
            recs.append((t, frame))
        # the server's FIN sent again 1 s and 2 s after the close, a late client RST
        ip = lambda a, b: IP(src=a[0], dst=b[0])  # noqa: E731
        recs.append((t0 + 1.05, eth(ip(S, c) / TCP(sport=S[1], dport=c[1], flags="FA", seq=5901, ack=1302))))
        recs.append((t0 + 2.05, eth(ip(S, c) / TCP(sport=S[1], dport=c[1], flags="FA", seq=5901, ack=1302))))
        recs.append((t0 + 2.5, eth(ip(c, S) / TCP(sport=c[1], dport=S[1], flags="R", seq=1302))))
    recs.sort(key=lambda r: r[0])
    p = write(tmp_path, recs)
    w = assert_same(p, (2048, 6000))
    assert len(w) == 40 and set(w.conn_state) == {"SF"}
    assert w.duration.to_numpy() == pytest.approx([0.06] * 40)


@pytest.mark.parametrize("t", [0.0, 4294967295.0])
def test_syn_retries_at_one_frozen_time_are_not_copies(t):
    """break-it 21 F10: a NIC that writes no time (every timestamp 0) or times clamped to one
    value: the SYN retries of S0 flows (same bytes, same IP id, same timestamp) were taken for
    capture copies, 3 SYNs shown as 1 and the retries lost. Retries are not the next frame of the
    file (the other flows' SYNs are between them): each flow keeps its 3 SYNs."""
    clients = [("192.0.2.10", 50000), ("192.0.2.11", 50001), ("192.0.2.12", 50002)]
    recs = [syn(t, src=c) for _ in range(3) for c in clients]
    ft = build_flows(decode(read_frames(pcap_bytes(recs))), server_port=SERVER_PORT)
    f = ft.flows
    assert ft.duplicates == 0 and len(f) == 3
    assert f.orig_pkts.tolist() == [3, 3, 3] and set(f.conn_state) == {"S0"}


def test_copies_at_a_time_that_is_no_clock_are_the_next_frame():
    """At a time that is no clock (0, a clamped time) the time cannot tell a copy (written right
    after its packet) from a retransmission, the file order does: the next frame with an IP id
    that repeats is a copy; with a frame between them, or without an IP id, the same bytes are
    counted twice. At an ordinary time shared by both (a coarse clock, a span port writing its
    copies after the exchange: test_tie_client_side) the rule is the one of other times."""
    def other(t):
        return from_server(t, "R", seq=0, ack=0, src=("203.0.113.99", 80), dst=("192.0.2.99", 40000))

    def dups(recs):
        return build_flows(decode(read_frames(pcap_bytes(recs))), server_port=SERVER_PORT).duplicates
    assert dups([syn(5.0), syn(5.0)]) == 1                       # a real clock: a copy
    assert dups([syn(5.0), other(5.0), syn(5.0)]) == 1            # ... also with a frame between
    assert dups([syn(5.0), other(5.0), syn(5.000001)]) == 1       # 1 µs apart: a copy, as before
    no_id = (0.0, eth(IP(src=C[0], dst=S[0], id=0) / TCP(sport=C[1], dport=S[1], flags="S", seq=1000)))
    for t in (0.0, 4294967295.0, 4294967295.5):
        assert dups([syn(t), syn(t)]) == 1                        # no clock, IP id 1 repeated
        assert dups([syn(t), other(t), syn(t)]) == 0              # another frame between them
    assert dups([no_id, no_id]) == 0                              # time 0, no IP id: no proof
    assert dups([syn(0.0), syn(0.000001)]) == 1                   # 1 µs: a clock, however early


def test_syn_retries_at_the_readers_clamp_are_not_copies():
    """A pcapng time beyond the years the reader keeps is clamped to one value
    (capture.files.TS_MAX_NS, either way): no clock either."""
    from kscc_traffic.capture.files import TS_MAX_NS
    clients = [("192.0.2.10", 50000), ("192.0.2.11", 50001)]
    for clamp in (TS_MAX_NS, -TS_MAX_NS):
        p = decode(read_frames(pcap_bytes([syn(0.5, src=c) for _ in range(3) for c in clients]
                                          + [syn(0.5, src=clients[0]), syn(0.5, src=clients[0])])))
        p.cols["ts_ns"][:] = clamp
        ft = build_flows(p, server_port=SERVER_PORT)
        # (the last two frames: the next frame, its IP id repeated: one copy)
        assert ft.duplicates == 1 and sorted(ft.flows.orig_pkts.tolist()) == [3, 4]


def test_frozen_clock_retries_alike_in_chunks(tmp_path):
    """Every record at time 0: the chunked analysis keeps the same SYN retries and copies as the
    whole-file one (frame numbers run on across chunks)."""
    from chunkcmp import assert_same, whole, write
    clients = [("192.0.2.%d" % (10 + i), 50000 + i) for i in range(30)]
    recs = [syn(0.0, src=c) for _ in range(3) for c in clients]
    recs += [syn(0.0, src=clients[-1])]         # the next frame after the same SYN: a copy
    p = write(tmp_path, recs)
    w = assert_same(p, (1024, 4096))
    assert len(w) == 30 and w.orig_pkts.tolist() == [3] * 30 and whole(p)[1].duplicates == 1


def test_syn_answered_by_rst_is_rej():
    f = flows_of([syn(0.0), from_server(0.001, "RA", seq=0)])
    assert (f.conn_state[0], f.history[0]) == ("REJ", "Sr")


def test_lone_rst_is_not_a_rejected_connection():
    f = flows_of([from_server(0.0, "R", seq=77, ack=0)])
    assert len(f) == 1
    # Zeek's conn_state(): responder RESET, originator inactive -> RSTRH (not REJ: no SYN)
    assert f.conn_state[0] == "RSTRH"
    # the documented port is the responder, so the RST came from the responder
    assert (f.resp_p[0], f.history[0]) == (23101, "^r")


def test_lone_syn_ack_makes_the_receiver_the_originator():
    f = flows_of([from_server(0.0, "SA")])
    assert (f.orig_h[0], f.orig_p[0], f.resp_p[0]) == ("192.0.2.10", 50000, 23101)
    assert f.conn_state[0] == "OTH"
    assert f.history[0] == "^h"


def test_midstream_flow_orients_by_the_documented_port_and_is_partial():
    # first packet seen is the server's data: the capture started mid-connection
    recs = [(0.0, eth(IP(src=S[0], dst=C[0]) / TCP(sport=S[1], dport=C[1], flags="PA", seq=9, ack=5) / b"abc")),
            (0.1, eth(IP(src=C[0], dst=S[0]) / TCP(sport=C[1], dport=S[1], flags="A", seq=5, ack=12)))]
    f = flows_of(recs)
    assert (f.orig_h[0], f.resp_p[0], f.conn_state[0], bool(f.partial[0])) == ("192.0.2.10", 23101, "OTH", True)
    assert f.history[0] == "^dA"
    assert (f.orig_bytes[0], f.resp_bytes[0]) == (0, 3)


def test_new_syn_on_a_closed_tuple_starts_a_new_flow():
    first = tcp_session(C, S, t0=0.0, isn_c=1000)
    second = tcp_session(C, S, t0=10.0, isn_c=900000)
    f = flows_of(first + second)
    assert len(f) == 2
    assert list(f.conn_state) == ["SF", "SF"]
    assert list(f.orig_pkts) == [4, 4]


def test_duplicated_frames_count_once():
    sess = tcp_session(C, S, c_data=b"x" * 10)
    dup = []
    for t, p in sess:
        dup.append((t, p))
        dup.append((t + 0.000002, p))  # span-port copy 2 µs later
    ft = build_flows(decode(read_frames(pcap_bytes(dup))))
    assert len(ft.flows) == 1
    assert ft.duplicates == len(sess)
    assert ft.flows.orig_pkts[0] + ft.flows.resp_pkts[0] == len(sess)
    assert ft.flows.orig_bytes[0] == 10


def test_udp_broadcast_multicast_and_unicast_are_marked():
    recs = [udp(("192.0.2.10", 35454), ("192.0.2.255", 15000), dst_mac="ff:ff:ff:ff:ff:ff", t=0.0),
            udp(("192.0.2.11", 35455), ("255.255.255.255", 15000), dst_mac="ff:ff:ff:ff:ff:ff", t=0.1),
            udp(("192.0.2.20", 41428), ("239.192.0.15", 15001), dst_mac="01:00:5e:40:00:0f", t=0.2),
            udp(("2001:db8::20", 41429), ("ff15::15", 15001), dst_mac="33:33:00:00:00:15", t=0.3),
            udp(("192.0.2.20", 52340), ("192.0.2.10", 15000), t=0.4)]
    f = flows_of(recs)
    assert list(f.cast) == ["broadcast", "broadcast", "multicast", "multicast", "unicast"]
    assert list(f.conn_state) == ["S0"] * 5
    assert list(f.orig_h) == ["192.0.2.10", "192.0.2.11", "192.0.2.20", "2001:db8::20", "192.0.2.20"]


def test_udp_reply_is_the_same_flow_and_sf():
    recs = [udp(("192.0.2.10", 5353), ("203.0.113.53", 53), t=0.0),
            udp(("203.0.113.53", 53), ("192.0.2.10", 5353), data=b"yy", t=0.01)]
    f = flows_of(recs)
    assert len(f) == 1
    assert (f.orig_p[0], f.resp_p[0], f.conn_state[0], f.history[0]) == (5353, 53, "SF", "Dd")


def test_udp_response_seen_first_is_still_oriented_to_the_server_port():
    f = flows_of([udp(("203.0.113.53", 53), ("192.0.2.10", 40000), t=0.0)])
    assert (f.orig_h[0], f.resp_h[0], f.resp_p[0], f.conn_state[0]) == ("192.0.2.10", "203.0.113.53", 53, "SHR")


def test_vlans_keep_identical_tuples_apart():
    from scapy.layers.l2 import Dot1Q, Ether
    a = [(t, Ether(p) if False else p) for t, p in tcp_session(C, S)]
    tagged = [(t + 0.5, Ether(src=p.src, dst=p.dst) / Dot1Q(vlan=42) / p.payload) for t, p in a]
    f = flows_of(a + tagged)
    assert len(f) == 2
    assert sorted(zip(f.vlan.tolist(), f.inner_vlan.tolist())) == [(0, 0), (42, 0)]


def test_one_way_halves_on_two_vlans_are_one_connection():
    """A mirror that tags the answers only (VLAN 20), or each direction with its own VLAN, gives
    one connection, as Zeek's connection key and Wireshark's conversations (break-it 14 F1:
    every connection was split in two one-way halves, every purpose blocked); the flow's vlan is
    its first packet's. Copies that carry both directions on each VLAN stay apart (a router on
    a stick seeing every packet twice, the same flow replayed on another VLAN)."""
    from scapy.layers.l2 import Dot1Q, Ether
    sess = tcp_session(C, S)

    def tag(p, vid):
        return Ether(src=p.src, dst=p.dst) / Dot1Q(vlan=vid) / p.payload

    cols = ["conn_state", "history", "orig_pkts", "resp_pkts"]
    plain = flows_of(sess)[cols].values.tolist()
    assert plain == [["SF", "ShAFf", 4, 2]]
    answers_tagged = [(t, tag(p, 20) if p[IP].src == S[0] else p) for t, p in sess]
    both_tagged = [(t, tag(p, 20) if p[IP].src == S[0] else tag(p, 10)) for t, p in sess]
    for recs, first_vlan in ((answers_tagged, 0), (both_tagged, 10)):
        f = flows_of(recs)
        assert f[cols].values.tolist() == plain and f["vlan"].tolist() == [first_vlan]
    on_a_stick = sorted([(t, tag(p, 10)) for t, p in sess] + [(t + 20e-6, tag(p, 20)) for t, p in sess],
                        key=lambda r: r[0])
    f = flows_of(on_a_stick)
    assert f[cols].values.tolist() == plain * 2 and sorted(f["vlan"]) == [10, 20]
    # one way only on two VLANs (no answer anywhere): two attempts, not joined
    syns = [syn(0.0), (1.0, tag(syn(1.0)[1], 20))]
    assert len(flows_of(syns)) == 2


def test_empty_input_gives_the_full_schema():
    from kscc_traffic import FLOW_COLUMNS
    f = flows_of([])
    assert len(f) == 0
    assert list(f.columns) == list(FLOW_COLUMNS)


def test_icmp_error_packets_can_be_left_out_and_ipv6_works():
    syn6 = (0.0, eth(IPv6(src="2001:db8::10", dst="2001:db8:cc::10") / TCP(sport=40000, dport=1443, flags="S")))
    err = (0.001, eth(IPv6(src="2001:db8::1", dst="2001:db8::10") / ICMPv6DestUnreach(code=1)
                      / IPv6(src="2001:db8::10", dst="2001:db8:cc::10") / TCP(sport=40000, dport=1443, flags="S")))
    packets = decode(read_frames(pcap_bytes([syn6, err])))
    exclude = packets["proto"] == 58
    f = build_flows(packets, exclude=exclude).flows
    assert len(f) == 1
    assert (f.orig_h[0], f.resp_h[0], f.resp_p[0], f.conn_state[0]) == ("2001:db8::10", "2001:db8:cc::10", 1443, "S0")


def test_icmp_echo_is_one_icmp_flow():
    recs = [(0.0, eth(IP(src="192.0.2.10", dst="203.0.113.1") / ICMP(type=8))),
            (0.01, eth(IP(src="203.0.113.1", dst="192.0.2.10") / ICMP(type=0)))]
    f = flows_of(recs)
    assert len(f) == 1
    assert (f.proto[0], f.orig_p[0], f.resp_p[0], f.orig_pkts[0], f.resp_pkts[0]) == ("icmp", 8, 0, 1, 1)


def test_hash_collisions_fall_back_to_the_exact_sort(monkeypatch):
    """Flows are grouped on a 64-bit hash of the key; if two keys collide, the exact lexsort is
    used. Forcing every key onto one hash must give exactly the same table."""
    import kscc_traffic.flows as fl
    recs = tcp_session(C, S, t0=0.0) + tcp_session(("192.0.2.11", 40000), S, t0=0.0) + [syn(0.5, src=("192.0.2.12", 1))]
    normal = flows_of(recs)
    real_mix = fl._mix
    monkeypatch.setattr(fl, "_mix", lambda h, v: real_mix(h, v) * 0)  # every key hashes to 0
    collided = flows_of(recs)
    assert len(normal) == 3
    # (uids use the hash too; flows starting at the same time come in key order, which is the
    # hash's or the exact sort's)

    def by_key(f):
        return f.drop(columns="uid").sort_values(["ts_ns", "orig_h", "orig_p"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(by_key(normal), by_key(collided))


def test_one_way_vlan_halves_joined_alike_in_chunks(tmp_path):
    """40 connections with data, the answers on VLAN 20, interleaved over 20 s: the same 40
    ok flows whole and in small chunks (the carried packets keep both halves in every batch)."""
    from scapy.layers.l2 import Dot1Q, Ether
    from chunkcmp import assert_same, write
    recs = []
    for k in range(40):
        for t, p in tcp_session(("192.0.2.10", 40000 + k), S, t0=1000.0 + k * 0.5, c_data=b"q" * 300,
                                s_data=b"a" * 900):
            if p[IP].src == S[0]:
                p = Ether(src=p.src, dst=p.dst) / Dot1Q(vlan=20) / p.payload
            recs.append((t, p))
    path = write(tmp_path, sorted(((t, bytes(p)) for t, p in recs), key=lambda r: r[0]))
    flows = assert_same(path, [2048, 8192])
    assert len(flows) == 40 and set(flows["conn_state"]) == {"SF"} and set(flows["vlan"]) == {0}


def test_copies_that_differ_only_in_the_transport_checksum_are_duplicates(tmp_path):
    """A packet logged before and after the NIC filled its checksum (pktmon's components, 3 µs
    apart, checksum offload): same IP id, headers and bytes, another TCP checksum: a copy, not a
    retransmission (break-it 14 F4b: the copy of a last segment read as 'sent again' made a
    connection 'stalled'). Without an IP id the checksum still has to match. Whole, chunked and
    live alike."""
    from kscc_traffic.capture.decode import decode as dec
    from kscc_traffic.live.session import LiveSession
    from kscc_traffic.rules import load_rules
    sess = tcp_session(C, S, c_data=b"x" * 200, s_data=b"y" * 300)
    recs = []
    for t, p in sess:
        recs.append((t, p))
        q = p.copy()
        q[TCP].chksum = (p[TCP].chksum or 0) ^ 0x5A5A if p[TCP].chksum else 0x1234
        q[IP].id = p[IP].id
        recs.append((t + 3e-6, q))
    for r in recs:
        r[1][IP].id = 777 + recs.index(r) // 2
    ft = build_flows(decode(read_frames(pcap_bytes(recs))), server_port=SERVER_PORT)
    ref = flows_of(sess)
    assert ft.duplicates == len(sess) and len(ft.flows) == 1
    assert ft.flows[["conn_state", "history", "orig_pkts", "resp_pkts"]].values.tolist() == \
        ref[["conn_state", "history", "orig_pkts", "resp_pkts"]].values.tolist()
    live = LiveSession(load_rules(), name="c")
    live.ingest(dec(read_frames(pcap_bytes(recs))))
    got = live.final()[["conn_state", "history", "orig_pkts", "resp_pkts"]].values.tolist()
    assert got == ref[["conn_state", "history", "orig_pkts", "resp_pkts"]].values.tolist()
    no_id = [(t, p.copy()) for t, p in recs]
    for _, p in no_id:
        p[IP].id = 0
    assert build_flows(decode(read_frames(pcap_bytes(no_id))), server_port=SERVER_PORT).duplicates == 0
