"""Packets of one flow with equal timestamps (coarse clocks: 1 s or 10 ms resolution, Simple
Packet Blocks) are ordered with the client's side first, the client side of a 5-tuple being
decided from its packets as a set (the only side that sent a SYN, a client port talking to a
server port, a DNS query's sender), never from their order in the file. The former rule, "the
packets towards the lower port first", put a server's packets first when the client's port was
the lower one (a PAT client on port 2000 to 23101) and could not order DNS between two port 53s.
Each test fails with that rule."""
from __future__ import annotations

import random

import pandas as pd
import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP

from chunkcmp import assert_same, row, whole, write
from pcapbuild import SERVER_MAC, eth, tcp_session, udp

CLOUD = "203.0.113.10"
RESOLVER_LOW, RESOLVER_HIGH = "192.0.2.53", "203.0.113.200"
#: (client address) the client's address below the server's, and above it (the canonical
#: endpoint order of a 5-tuple is by address: both ways round must give the same)
CLIENTS = ("192.0.2.10", "203.0.113.99")
#: what does not depend on the packets' times
COLS = ["orig_h", "orig_p", "resp_h", "resp_p", "proto", "service", "orig_pkts", "orig_bytes",
        "resp_pkts", "resp_bytes", "conn_state", "history", "orig_ip_bytes", "resp_ip_bytes", "partial"]


def _coarse(recs, t=1000.0):
    """Every record at the one time ``t`` (a 1 s clock), frames as bytes."""
    return [(t, bytes(p)) for _, p in recs]


def _orders(recs, n=4):
    """``recs`` in file order, reversed, and shuffled ``n`` ways (seeded)."""
    out = [("file", list(recs)), ("reversed", list(recs[::-1]))]
    for seed in range(n):
        r = list(recs)
        random.Random(seed).shuffle(r)
        out.append((f"shuffled{seed}", r))
    return out


def _folder(tmp_path, name):
    """A new folder ``name``: every capture is called c.pcap, in a folder of its own (the uids
    are made from the capture's name)."""
    (tmp_path / name).mkdir()
    return tmp_path / name


def _flows(tmp_path, recs, name):
    """The whole-file flows, checked equal to the chunked analysis'."""
    return assert_same(write(_folder(tmp_path, name), recs), [300])


def _pat_session(client):
    """A PAT client on port 2000 (below the server's) to 23101: handshake, data both ways,
    FINs both ways."""
    return tcp_session((client, 2000), (CLOUD, 23101), c_data=b"\x16\x03\x01hello", s_data=b"\x16\x03\x03world")


@pytest.mark.parametrize("client", CLIENTS)
def test_a_pat_client_on_a_lower_port_at_one_timestamp_reads_as_with_distinct_times(tmp_path, client):
    recs = _pat_session(client)
    fine = row(_flows(tmp_path, [(t, bytes(p)) for t, p in recs], "fine"), resp_p=23101)
    assert (fine.orig_h, fine.orig_p, fine.history, fine.conn_state) == (client, 2000, "ShADdFf", "SF")
    coarse = row(_flows(tmp_path, _coarse(recs), "coarse"), resp_p=23101)
    assert coarse[COLS].to_dict() == fine[COLS].to_dict()


@pytest.mark.parametrize("client", CLIENTS)
def test_a_pat_client_at_one_timestamp_gives_the_same_flows_whatever_the_file_order(tmp_path, client):
    """... and with every frame seen twice (a span port mirroring both ways): each copy is
    found next to its packet and counted once."""
    recs = _coarse(_pat_session(client))
    for copies in (1, 2):
        first = None
        for name, order in _orders(recs * copies):
            path = write(_folder(tmp_path, f"{copies}{name}"), order)
            flows, run = whole(path)
            r = row(flows, resp_p=23101)
            assert (r.orig_h, r.orig_p, r.history, r.conn_state, r.orig_pkts, r.resp_pkts, run.duplicates) == (
                client, 2000, "ShADdFf", "SF", 5, 3, 8 * (copies - 1)), (copies, name)
            if first is None:
                first = flows
            else:
                pd.testing.assert_frame_equal(flows, first, obj=name)
        assert_same(path, [300])


def test_dns_between_two_port_53s_at_one_timestamp_has_the_querier_as_originator(tmp_path):
    """Two resolvers talking from port 53 to port 53 (no port tells the client): the query's
    sender is the originator, whichever address is the lower, whatever the file order."""
    name = "ksc.example"
    for querier, other in ((RESOLVER_LOW, RESOLVER_HIGH), (RESOLVER_HIGH, RESOLVER_LOW)):
        q = udp((querier, 53), (other, 53), bytes(DNS(id=9, rd=1, qd=DNSQR(qname=name))))
        a = udp((other, 53), (querier, 53), bytes(DNS(id=9, qr=1, qd=DNSQR(qname=name),
                                                      an=DNSRR(rrname=name, rdata=CLOUD))),
                src_mac=SERVER_MAC)
        for label, order in (("query_first", [q, a]), ("answer_first", [a, q])):
            r = row(_flows(tmp_path, _coarse(order), f"{querier}_{label}"), proto="udp")
            got = (r.orig_h, r.orig_p, r.resp_h, r.resp_p, r.history, r.conn_state, r.orig_pkts, r.resp_pkts, r.service)
            assert got == (querier, 53, other, 53, "Dd", "SF", 1, 1, "dns"), (querier, label)


def _mid_stream(client):
    """A PAT client's connection (2000 -> 23101) caught mid-stream: no SYN, data both ways (the
    client's in two segments, the server's after a pure ACK), then FINs."""
    def c(t, load=b"", **kw):
        return t, eth(IP(src=client, dst=CLOUD) / TCP(sport=2000, dport=23101, **kw) / load)

    def s(t, load=b"", **kw):
        return t, eth(IP(src=CLOUD, dst=client) / TCP(sport=23101, dport=2000, **kw) / load, src=SERVER_MAC)
    return [c(1.0, b"a" * 40, flags="PA", seq=7000, ack=9000),
            s(1.01, flags="A", seq=9000, ack=7040),
            s(1.02, b"b" * 60, flags="PA", seq=9000, ack=7040),
            c(1.03, b"c" * 20, flags="PA", seq=7040, ack=9060),
            c(1.04, flags="FA", seq=7060, ack=9060),
            s(1.05, flags="FA", seq=9060, ack=7061)]


@pytest.mark.parametrize("client", CLIENTS)
def test_a_mid_stream_connection_at_one_timestamp_is_read_as_with_distinct_times_whatever_the_file_order(
        tmp_path, client):
    recs = _mid_stream(client)
    fine = row(_flows(tmp_path, [(t, bytes(p)) for t, p in recs], "fine"), resp_p=23101)
    assert (fine.orig_h, fine.orig_p, fine.history, fine.conn_state, fine.partial) == (
        client, 2000, "DadFf", "SF", True)
    first = None
    for name, order in _orders(_coarse(recs)):
        flows = _flows(tmp_path, order, name)
        assert row(flows, resp_p=23101)[COLS].to_dict() == fine[COLS].to_dict(), name
        if first is None:
            first = flows
        else:
            pd.testing.assert_frame_equal(flows, first, obj=name)


def test_ties_are_ordered_the_same_when_flow_keys_collide(monkeypatch):
    """On a collision of the flow keys' hash the exact sort is used; the tie order (client
    first) is the same there."""
    import kscc_traffic.flows as fl
    from kscc_traffic import build_flows, decode, read_frames
    from test_flows import SERVER_PORT
    from pcapbuild import pcap_bytes

    recs = _coarse(_pat_session(CLIENTS[0]) + _pat_session(CLIENTS[1])
                   + tcp_session(("192.0.2.11", 40000), (CLOUD, 23101)))
    random.Random(1).shuffle(recs)

    def flows():   # (every flow starts at the one time: rows in address order)
        f = build_flows(decode(read_frames(pcap_bytes(recs))), server_port=SERVER_PORT).flows
        return f.sort_values("orig_h").reset_index(drop=True)
    normal = flows()
    real_mix = fl._mix
    monkeypatch.setattr(fl, "_mix", lambda h, v: real_mix(h, v) * 0)  # every key hashes to 0
    collided = flows()
    assert sorted(normal.history) == ["ShADdFf", "ShADdFf", "ShAFf"]
    pd.testing.assert_frame_equal(normal.drop(columns="uid"), collided.drop(columns="uid"))
