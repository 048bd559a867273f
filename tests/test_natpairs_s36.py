"""Connections captured twice, before and after a NAT (newcomer 35 F7: `tcpdump -i any` on a NAT
gateway counted each agent connection twice, from the client's and from the gateway's address,
with no word). kscc_traffic.natpairs says so in one warning line per capture, whole and chunked
alike, and stays silent for two clients' connections that merely look alike."""
from __future__ import annotations

import pytest

pytest.importorskip("scapy")

from kscc_traffic import load_rules  # noqa: E402
from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.chunked import ChunkedAnalysis  # noqa: E402
from kscc_traffic.natpairs import NatWatch  # noqa: E402
from pcapbuild import pcap_bytes, tcp_session, udp  # noqa: E402
from scapy.layers.inet import IP, TCP  # noqa: E402
from scapy.packet import Raw  # noqa: E402
from scapy.layers.inet6 import IPv6  # noqa: E402

INSIDE, OUTSIDE, KSC = "192.0.2.10", "198.51.100.129", "203.0.113.10"


def forwarded(records, sender: str, hops: int = 1):
    """``records`` with the TTL of the packets ``sender`` sent ``hops`` less (what a router forwarded)."""
    for _, frame in records:
        if IPv6 in frame and frame[IPv6].src == sender:
            frame[IPv6].hlim -= hops
        elif IP in frame and frame[IP].src == sender:
            frame[IP].ttl -= hops
            del frame[IP].chksum
    return records


def both_sides(t0: float, port: int, inside: str = INSIDE, outside: str = OUTSIDE, out_port: int | None = None,
               lag: float = 0.00007):
    """One connection as a gateway's every interface sees it: inside, then translated (the client's
    packets one hop less in TTL on the outside, the server's on the inside)."""
    data = dict(c_data=b"\x16\x03\x01\x00\x05hello", s_data=b"\x16\x03\x03\x00\x02ok")
    return (forwarded(tcp_session((inside, port), (KSC, 23101), t0=t0, **data), KSC)
            + forwarded(tcp_session((outside, out_port or port), (KSC, 23101), t0=t0 + lag, **data), outside))


def _write(tmp_path, records, name="gw.pcap"):
    path = tmp_path / name
    path.write_bytes(pcap_bytes(sorted(records, key=lambda r: r[0])))
    return path


def lines(path) -> list[str]:
    a = analyze_file(str(path))
    return [w for st in a.stats.values() for w in st.warnings if "captured twice" in w]


def test_connections_seen_before_and_after_nat_are_said(tmp_path):
    recs = [r for k in range(3) for r in both_sides(1000.0 + 5 * k, 40000 + k)]
    path = _write(tmp_path, recs)
    assert lines(path) == [
        "gw.pcap: 3 connections were captured twice, before and after a NAT (the same ports, packets and bytes a "
        f"few ms apart from two addresses; {INSIDE} -> {OUTSIDE} 3 times): a capture on every interface of a NAT "
        "gateway (tcpdump -i any) counts each such connection twice, once per side; capture on one interface (-i "
        "the inside one, for the clients' addresses) to count each once"]
    a = analyze_file(str(path))
    assert len(a.flows) == 6                      # (the flows themselves are kept: each side is judged)


def test_said_the_same_in_chunks(tmp_path):
    recs = [r for k in range(10) for r in both_sides(1000.0 + 30 * k, 41000 + k)]
    path = _write(tmp_path, recs)
    whole = lines(path)
    ca = ChunkedAnalysis(path, load_rules(), "gw.pcap", chunk_bytes=4096)
    for _ in ca.batches():
        pass
    assert [w for w in ca.stats.warnings if "captured twice" in w] == whole
    assert whole and "10 connections were captured twice" in whole[0]


def test_look_alikes_are_not_pairs(tmp_path):
    # another source port after the NAT (a NAT that changes ports: not recognised), too late, one pair only,
    # and pairs a small share of the flows
    port_changed = [r for k in range(3) for r in both_sides(1000.0 + 5 * k, 40000 + k, out_port=50000 + k)]
    assert lines(_write(tmp_path, port_changed, "a.pcap")) == []
    late = [r for k in range(3) for r in both_sides(1000.0 + 5 * k, 40000 + k, lag=0.5)]
    assert lines(_write(tmp_path, late, "b.pcap")) == []
    one = both_sides(1000.0, 40000)
    assert lines(_write(tmp_path, one, "c.pcap")) == []
    crowd = [r for k in range(2) for r in both_sides(1000.0 + 5 * k, 40000 + k)]
    crowd += [r for k in range(20) for r in tcp_session((f"192.0.2.{100 + k}", 45000 + k), (KSC, 23101), t0=1100.0 + k)]
    assert lines(_write(tmp_path, crowd, "d.pcap")) == []           # 4 of 24 flows: below MIN_SHARE


def test_a_spray_from_many_addresses_is_no_nat(tmp_path):
    # session 48: look-alike datagrams (one port, one size, one target) from consecutive addresses a
    # millisecond apart paired among themselves, each "outside" address once: 1 M of them said
    # "499,991 connections captured twice", and their Python tuples were the run's peak memory
    recs = [udp((f"198.18.{i >> 8}.{i & 255}", 40000), (KSC, 15000), b"x" * 18, t=1000 + i * 0.001)
            for i in range(400)]
    assert lines(_write(tmp_path, recs, "spray.pcap")) == []
    # a gateway's copies among them are still said (its one outside address recurs)
    gw = [r for k in range(150) for r in both_sides(1001.0 + 0.002 * k, 42000 + k)]
    got = lines(_write(tmp_path, recs + gw, "both.pcap"))
    assert len(got) == 1 and got[0].startswith(f"both.pcap: 150 connections were captured twice") \
        and f"{INSIDE} -> {OUTSIDE} 150 times)" in got[0]


def test_broadcasts_are_no_nat(tmp_path):
    # agents' gateway broadcasts (UDP 15000, one size) from two agents a few ms apart: a router
    # forwards no broadcast, so no NAT copy
    recs = [r for k in range(5) for r in (
        udp((INSIDE, 15000 + k), ("255.255.255.255", 15000), b"k" * 40, t=1000.0 + k, dst_mac="ff:ff:ff:ff:ff:ff"),
        udp((OUTSIDE, 15000 + k), ("255.255.255.255", 15000), b"k" * 40, t=1000.002 + k, dst_mac="ff:ff:ff:ff:ff:ff"))]
    assert lines(_write(tmp_path, recs, "bcast.pcap")) == []
    unicast = [r for k in range(5) for r in (
        udp((INSIDE, 15000 + k), (KSC, 15000), b"k" * 40, t=1000.0 + k),
        *forwarded([udp((OUTSIDE, 15000 + k), (KSC, 15000), b"k" * 40, t=1000.002 + k)], OUTSIDE))]
    assert "5 connections were captured twice" in lines(_write(tmp_path, unicast, "ucast.pcap"))[0]


def test_copies_pair_in_twos(tmp_path):
    # three copies of a connection a few ms apart: the first two pair, the third is alone; four: two pairs
    def copies(k, n):
        return [r for j in range(n) for r in forwarded(tcp_session((f"198.51.100.{130 + j}", 43000 + k),
                                                                    (KSC, 23101), t0=1000.0 + 5 * k + 0.002 * j),
                                                        f"198.51.100.{130 + j}", j)]
    w = NatWatch()
    three = analyze_file(str(_write(tmp_path, [r for k in range(4) for r in copies(k, 3)], "three.pcap"))).flows
    w.add(three)
    assert w.pairs == 4 and w.translations == {("198.51.100.130", "198.51.100.131"): 4}
    w = NatWatch()
    four = analyze_file(str(_write(tmp_path, [r for k in range(4) for r in copies(k, 4)], "four.pcap"))).flows
    w.add(four)
    assert w.pairs == 8 and w.translations == {("198.51.100.130", "198.51.100.131"): 4,
                                               ("198.51.100.132", "198.51.100.133"): 4}


def test_memory_stays_bounded_and_a_gateway_after_a_spray_is_still_found(monkeypatch):
    # beyond TRACKED outside addresses the single ones are forgotten: a gateway's recurring address stays
    import numpy as np
    import pandas as pd
    from kscc_traffic import natpairs
    monkeypatch.setattr(natpairs, "TRACKED", 64)

    def table(origins, t0):
        n = len(origins)
        return pd.DataFrame({"proto": ["udp"] * n, "resp_h": [KSC] * n, "resp_p": [15000] * n,
                             "orig_p": [40000 + i // 2 for i in range(n)], "orig_pkts": [1] * n,
                             "orig_bytes": [18] * n, "orig_h": origins,
                             "ts_ns": t0 + np.arange(n, dtype=np.int64) * 1_000_000, "cast": ["unicast"] * n})
    w = NatWatch()
    for b in range(5):      # a spray: 500 pairs, each "outside" address once
        w.add(table([f"198.18.{b}.{i}" for i in range(200)], b * 10**12))
        assert len(w._outside) <= 64
    w.add(table([x for i in range(30) for x in (f"192.0.2.{i + 1}", OUTSIDE)], 10**13))
    assert w.pairs == 530 and w._outside[OUTSIDE] == 30 and len(w._outside) <= 64
    w.flows = 100
    assert "30 connections were captured twice" in w.line("gw.pcap")
    assert "192.0.2.1 -> 198.51.100.129 1 time, and 29 other translations" in w.line("gw.pcap")
    # pairs the packets prove (a one-to-one NAT: each client its outside address, in two pairs) are
    # counted beyond the OUTSIDE_ADDRESSES most common, in bounded memory
    w = NatWatch()
    for b in range(5):
        t = table([f"198.18.{b}.{i % 2 * 128 + i // 4}" for i in range(200)], b * 10**12)
        t["orig_ttl"], t["first_ip_id"] = [64, 63] * 100, np.arange(200) // 2 + 1
        w.add(t)
        assert len(w._strong) <= 64 and len(w._outside) <= 64
    w.flows = 200
    import re
    said = int(re.match(r"gw.pcap: (\d+) connections were captured twice", w.line("gw.pcap")).group(1))
    assert 64 // 2 <= said <= 500          # (a lower bound beyond TRACKED addresses: the most common kept)
    w = NatWatch()
    w.add(t)
    w.flows = 200
    assert w.line("gw.pcap").startswith("gw.pcap: 100 connections were captured twice")
    assert "198.18.4.0 -> 198.18.4.128 2 times, and 49 other translations" in w.line("gw.pcap")


def _without_ttls(monkeypatch):
    from kscc_traffic import natpairs
    monkeypatch.setattr(natpairs, "ORIG_TTL", "no such column")
    monkeypatch.setattr(natpairs, "RESP_TTL", "nor such column")


def test_look_alikes_of_one_ttl_are_no_nat(tmp_path, monkeypatch):
    # session 49 (break-it 48): hosts of one system doing the same thing together pair among
    # themselves, by ports, packets and bytes alone; a gateway's copy is one hop less in TTL
    ntp = "203.0.113.123"

    def polls(hops):
        """6 NTP clients polling from port 123 together, 2 ms apart (client i ``hops[i]`` routers
        away), each answered; captured beside the server"""
        recs = []
        for k in range(20):
            for i in range(6):
                t = 1000.0 + 200 * k + 0.002 * ((i + k) % 6)
                recs += forwarded([udp((f"192.0.2.{20 + i}", 123), (ntp, 123), b"\x23" + b"\0" * 47, t=t)],
                                  f"192.0.2.{20 + i}", hops[i])
                recs.append(udp((ntp, 123), (f"192.0.2.{20 + i}", 123), b"\x24" + b"\0" * 47, t=t + 0.0005))
        return recs
    one = _write(tmp_path, polls([0] * 6), "ntp.pcap")
    # (break-it 49: three of them a router away, one hop less: the server's answers, one TTL, tell)
    two = _write(tmp_path, polls([0, 1] * 3), "ntp2.pcap")
    assert lines(one) == [] and lines(two) == []
    _without_ttls(monkeypatch)      # (what the rule stops: the same captures without it)
    assert "connections were captured twice" in lines(one)[0]
    assert "connections were captured twice" in lines(two)[0]


def test_agents_answering_one_broadcast_are_no_nat(tmp_path, monkeypatch):
    # agents answering a repeated broadcast from UDP 15000, unicast back to its sender, 1-10 ms apart
    recs = []
    for k in range(15):
        t = 1000.0 + 70 * k
        recs.append(udp(("192.0.2.5", 15000), ("255.255.255.255", 15000), b"q" * 30, t=t, dst_mac="ff:ff:ff:ff:ff:ff"))
        recs += [udp((f"192.0.2.{40 + i}", 15000), ("192.0.2.5", 15000), b"a" * 60, t=t + 0.001 * (1 + i))
                 for i in range(10)]
    path = _write(tmp_path, recs, "agents.pcap")
    assert lines(path) == []
    _without_ttls(monkeypatch)
    assert "connections were captured twice" in lines(path)[0]


def test_look_alikes_a_router_apart_are_no_nat(tmp_path, monkeypatch):
    # break-it 49: agents of two subnets, one a router away (TTL 128 and 127), answering one
    # broadcast together, one way: the TTLs look like a gateway's copies; two hosts' packets have
    # other IPv4 identifications (each host its own counter), a NAT's copy the same
    import random
    rnd = random.Random(49)
    agents = [(f"192.0.2.{40 + i}", 0) for i in range(5)] + [(f"198.51.100.{40 + i}", 1) for i in range(5)]
    ident = {h: rnd.randrange(1, 60000) for h, _ in agents}
    recs = []
    for k in range(15):
        t = 1000.0 + 70 * k
        recs.append(udp(("192.0.2.5", 15000), ("255.255.255.255", 15000), b"q" * 30, t=t, dst_mac="ff:ff:ff:ff:ff:ff"))
        rnd.shuffle(agents)
        for i, (h, hops) in enumerate(agents):
            (r,) = forwarded([udp((h, 15000), ("192.0.2.5", 15000), b"a" * 60, t=t + 0.001 * (1 + i))], h, hops)
            ident[h] += 1
            r[1][IP].id = ident[h]
            recs.append(r)
    path = _write(tmp_path, recs, "agents2.pcap")
    assert lines(path) == []
    from kscc_traffic import natpairs
    monkeypatch.setattr(natpairs, "FIRST_IP_ID", "no such column")
    assert lines(path) == []        # (without the identifications: each agent paired with several others)
    monkeypatch.setattr(natpairs, "ONE_TRANSLATION", 0)
    assert "connections were captured twice" in lines(path)[0]     # (and without that either: the TTLs alone)


def test_look_alikes_a_router_apart_without_identifications_are_no_nat(tmp_path, monkeypatch):
    # break-it 49 (2): the same with what real stacks send: Linux an identification 0 (DF, an
    # unconnected UDP socket), IPv6 none; each "inside" agent pairs with several "outside" ones
    # by chance, a NAT translates a client to one address
    import random
    from kscc_traffic import natpairs
    for v6 in (False, True):
        rnd = random.Random(5)
        agents = [(f"2001:db8:1::{40 + i}" if v6 else f"192.0.2.{40 + i}", 0) for i in range(5)] \
            + [(f"2001:db8:2::{40 + i}" if v6 else f"198.51.100.{40 + i}", 1) for i in range(5)]
        server = "2001:db8:1::5" if v6 else "192.0.2.5"
        recs = []
        for k in range(15):
            rnd.shuffle(agents)
            for i, (h, hops) in enumerate(agents):
                (r,) = forwarded([udp((h, 15000), (server, 15000), b"a" * 60, t=1000.0 + 70 * k + 0.001 * (1 + i))],
                                 h, hops)
                if not v6:
                    r[1][IP].id, r[1][IP].flags = 0, "DF"
                recs.append(r)
        path = _write(tmp_path, recs, "agents3.pcap")
        assert lines(path) == [], v6
        monkeypatch.setattr(natpairs, "ONE_TRANSLATION", 0)
        assert "connections were captured twice" in lines(path)[0], v6
        monkeypatch.undo()


def through_nat(session, lag: float = 0.00007, inside_h: str = INSIDE, outside_h: str = OUTSIDE):
    """A connection seen inside (``inside_h`` <-> the server, each packet as sent) captured on both
    sides of the gateway: the client's packets inside, then outside from ``outside_h`` one hop
    less; the server's outside (to ``outside_h``), then inside one hop less (IPv4 or IPv6)."""
    out = []
    for t, f in session:
        inside, outside = f.copy(), f.copy()
        ip = IPv6 if IPv6 in f else IP
        hop = "hlim" if ip is IPv6 else "ttl"
        if f[ip].src == inside_h:
            outside[ip].src, first = outside_h, (inside, outside)
            setattr(outside[ip], hop, getattr(f[ip], hop) - 1)
        else:
            outside[ip].dst, first = outside_h, (outside, inside)
            setattr(inside[ip], hop, getattr(f[ip], hop) - 1)
        for p in first:
            if ip is IP:
                del p[IP].chksum
            del p[TCP].chksum
        out += [(t, first[0]), (t + lag, first[1])]
    return out


def test_a_one_to_one_nat_s_many_addresses_count_when_the_packets_prove_them(tmp_path):
    # break-it 49: a one-to-one NAT (NPTv6 too) gives each client its own outside address: 20
    # addresses in two pairs each, beyond the 8 most common; the packets prove each pair (the
    # client's TTLs one hop apart and one IPv4 identification; IPv6: the server's TTLs as well)
    import random
    rnd = random.Random(7)
    for inside_of, outside_of, server in ((lambda i: f"192.0.2.{i + 1}", lambda i: f"198.51.100.{i + 1}", KSC),
                                          (lambda i: f"2001:db8:1::{i + 1:x}", lambda i: f"2001:db8:ffff::{i + 1:x}",
                                           "2001:db8:5::10")):
        recs = []
        for i in range(20):
            for k in range(2):
                session = tcp_session((inside_of(i), 44000 + k), (server, 23101), t0=1000.0 + 5 * k + 0.1 * i,
                                      c_data=b"\x16\x03\x01\x00\x05hello", s_data=b"\x16\x03\x03\x00\x02ok")
                for _, f in session:
                    if IP in f:
                        f[IP].id = rnd.randrange(1, 65536)
                recs += through_nat(session, inside_h=inside_of(i), outside_h=outside_of(i))
        got = lines(_write(tmp_path, recs, "one2one.pcap"))
        assert len(got) == 1 and got[0].startswith("one2one.pcap: 40 connections were captured twice") \
            and f"{inside_of(0)} -> {outside_of(0)} 2 times, and 19 other translations)" in got[0], got


def test_a_connection_captured_midway_is_a_pair_whichever_side_spoke_first(tmp_path):
    # a long-lived agent connection (no handshake in the capture): when the server's packet comes
    # first, it is captured outside, then inside; the inside copy is still the client's, also when
    # both copies have one time (a fast gateway, a coarse clock)
    for c_data, lag in ((b"\x17\x03\x03\x00\x05hello", 0.00007), (b"", 0.00007), (b"", 0.0),
                        (b"\x17\x03\x03\x00\x05hello", 0.0)):
        recs = [r for k in range(4) for r in through_nat(
            tcp_session((INSIDE, 44000 + k), (KSC, 23101), t0=1000.0 + 5 * k, c_data=c_data,
                        s_data=b"\x17\x03\x03\x00\x02ok")[3:-3], lag)]
        got = lines(_write(tmp_path, recs, "mid.pcap"))
        assert len(got) == 1 and f"{INSIDE} -> {OUTSIDE} 4 times)" in got[0], (c_data, lag, got)
        if not c_data:
            a = analyze_file(str(_write(tmp_path, recs, "mid.pcap")))
            assert a.flows["history"].str.startswith("^d").all() and len(a.flows) == 8   # (the server spoke first)


def test_a_server_first_on_a_port_not_known_as_a_server_s_is_a_pair(tmp_path):
    # break-it 49: no handshake, the server's packet first, its port not one a server is known by:
    # the server is taken as the originator, the two copies differ in the responder's address
    recs = [r for k in range(4) for r in through_nat(
        tcp_session((INSIDE, 44000 + k), (KSC, 45000), t0=1000.0 + 5 * k, s_data=b"\x17\x03\x03\x00\x02ok")[3:-3])]
    path = _write(tmp_path, recs, "srv.pcap")
    a = analyze_file(str(path))
    assert set(a.flows["orig_h"]) == {KSC} and set(a.flows["resp_h"]) == {INSIDE, OUTSIDE}
    got = lines(path)
    assert len(got) == 1 and f"4 connections were captured twice" in got[0] \
        and f"{INSIDE} -> {OUTSIDE} 4 times)" in got[0]


def test_ttls_tell_pairs_and_their_inside_copy():
    import numpy as np
    import pandas as pd

    def table(orig, resp, ip_id=(-1, -1)):
        n = len(orig)
        return pd.DataFrame({"proto": ["udp"] * n, "resp_h": [KSC] * n, "resp_p": [15000] * n,
                             "orig_p": [40000 + i // 2 for i in range(n)], "orig_pkts": [1] * n,
                             "orig_bytes": [18] * n, "orig_h": [(INSIDE, OUTSIDE)[i % 2] for i in range(n)],
                             "ts_ns": np.arange(n, dtype=np.int64) * 1_000_000, "cast": ["unicast"] * n,
                             "orig_ttl": np.array(orig, np.int16), "resp_ttl": np.array(resp, np.int16),
                             "first_ip_id": np.array(ip_id * (n // 2), np.int32), "history": ["Dd"] * n})
    ahead, behind = {(INSIDE, OUTSIDE): 5}, {(OUTSIDE, INSIDE): 5}   # (the earlier copy inside, or the later)
    for orig, resp, found in (
            ([64, 63], [-1, -1], ahead), ([-1, 63], [-1, -1], ahead), ([64, -1], [-1, -1], ahead),
            ([-1, -1], [-1, -1], ahead),                     # (no TTL: the earlier copy)
            ([64, 63], [119, 120], ahead), ([-1, -1], [119, 120], ahead),
            ([63, 64], [-1, -1], behind), ([63, 64], [120, 119], behind), ([-1, -1], [120, 119], behind),
            ([64, 64], [-1, -1], {}), ([128, 126], [-1, -1], {}), ([64, 63], [120, 120], {}),
            ([64, 63], [120, 119], {}), ([64, 64], [119, 120], {})):
        w = NatWatch()
        w.add(table(orig * 5, resp * 5))
        assert w.pairs == sum(found.values()) and w.translations == found, (orig, resp)
    for ip_id, found in (((777, 777), ahead), ((-1, 5), ahead), ((0, 0), ahead), ((0, 777), {}), ((777, 0), {}),
                         ((777, 778), {})):
        w = NatWatch()
        w.add(table([64, 63] * 5, [119, 120] * 5, ip_id))
        assert w.translations == found, ip_id


def test_a_gateway_that_merges_segments_inside_is_still_said(tmp_path):
    # break-it 49 (2): a Linux gateway whose inside NIC merges a client's segments (GRO) and whose
    # outside device cannot split them in hardware (PPPoE, a modem) is captured with one 2,800-byte
    # segment inside and two of 1,400 outside: the bytes agree, not the packets
    def split(session):
        at = next(i for i, (_, f) in enumerate(session) if len(f[TCP].payload) == 2800)
        t, f = session[at]
        halves = []
        for k in range(2):
            g = f.copy()
            g[TCP].seq, g[TCP].payload = f[TCP].seq + 1400 * k, Raw(bytes(f[TCP].payload)[1400 * k:1400 * (k + 1)])
            del g[IP].len, g[IP].chksum, g[TCP].chksum
            halves.append((t + 0.00001 * k, g))
        return session[:at] + halves + session[at + 1:]
    recs = []
    for k in range(4):
        data = dict(c_data=b"\x17\x03\x03\x0a\xeb" + b"u" * 2795, s_data=b"\x17\x03\x03\x00\x02ok")
        recs += forwarded(tcp_session((INSIDE, 44000 + k), (KSC, 23101), t0=1000.0 + 5 * k, **data), KSC)
        recs += split(forwarded(tcp_session((OUTSIDE, 44000 + k), (KSC, 23101), t0=1000.00007 + 5 * k, **data),
                                OUTSIDE))
    path = _write(tmp_path, recs, "gro.pcap")
    a = analyze_file(str(path))
    assert sorted(a.flows["orig_pkts"]) == [5] * 4 + [6] * 4 and set(a.flows["orig_bytes"]) == {2800}
    got = lines(path)
    assert len(got) == 1 and f"4 connections were captured twice" in got[0] and f"{INSIDE} -> {OUTSIDE} 4 times)" in got[0]
