"""Kaspersky names resolved with no connection after them (newcomer 35 F1): a capture holding only
an agent's lookups of eu1.ksc.kaspersky.com (its own host firewall drops the connections before
the capture point) gave every purpose "not seen", all flows ok and no word. One warning line per
capture now names them (kscc_traffic.lookups), whole and chunked alike, and says nothing when a
connection went to an answered address or named the name."""
from __future__ import annotations

import pytest

pytest.importorskip("scapy")

from scapy.all import DNS, DNSQR, DNSRR, IP, UDP, Ether, IPv6  # noqa: E402

from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.lookups import LookupsWatch  # noqa: E402
from pcapbuild import pcap_bytes, tcp_session  # noqa: E402

AGENT, AGENT6, RESOLVER, RESOLVER6 = "192.0.2.10", "2001:db8::10", "198.51.100.53", "2001:db8:53::53"
KSC = "203.0.113.10"
NAME = "eu1.ksc.kaspersky.com"
#: (addresses given: scapy would look the destination's up on the network)
ETH = dict(src="02:00:00:00:00:10", dst="02:00:00:00:00:01")


def lookup(t: float, name: str = NAME, answer: str = KSC, v6: bool = False, sport: int = 40000):
    ip = (lambda s, d: IPv6(src=s, dst=d)) if v6 else (lambda s, d: IP(src=s, dst=d))
    c, r = (AGENT6, RESOLVER6) if v6 else (AGENT, RESOLVER)
    q = DNS(id=sport, rd=1, qd=DNSQR(qname=name))
    a = DNS(id=sport, qr=1, rd=1, ra=1, qd=DNSQR(qname=name), an=DNSRR(rrname=name, type="A", rdata=answer, ttl=60))
    return [(t, Ether(**ETH) / ip(c, r) / UDP(sport=sport, dport=53) / q),
            (t + 0.002, Ether(**ETH) / ip(r, c) / UDP(sport=53, dport=sport) / a)]


def lines(path, **kw) -> list[str]:
    a = analyze_file(str(path), **kw)
    return [w for st in a.stats.values() for w in st.warnings if "Kaspersky names were resolved" in w]


def _write(tmp_path, records, name="c.pcap"):
    path = tmp_path / name
    path.write_bytes(pcap_bytes(sorted(records, key=lambda r: r[0])))
    return path


def test_lookups_alone_are_said(tmp_path):
    recs = lookup(1000.0) + lookup(1030.0, sport=40001) + lookup(1090.0, sport=40002)
    path = _write(tmp_path, recs)
    want = [f"c.pcap: Kaspersky names were resolved but no connection to them was captured: {NAME} (3 times, to "
            f"{KSC}). A firewall or security product on this host drops a blocked connection before the capture "
            "point, so only the lookup shows: check the agent host's own firewall and security software (or "
            "whether the agent ran and tried to connect)"]
    assert lines(path) == want


def test_said_the_same_in_chunks(tmp_path):
    from kscc_traffic.chunked import ChunkedAnalysis
    from kscc_traffic import load_rules
    recs = []
    for k in range(12):
        recs += lookup(1000.0 + k * 20, sport=41000 + k)
    path = _write(tmp_path, recs)
    whole = lines(path)
    ca = ChunkedAnalysis(path, load_rules(), "c.pcap", chunk_bytes=4096)
    for _ in ca.batches():
        pass
    assert [w for w in ca.stats.warnings if "Kaspersky names" in w] == whole
    assert whole and "(12 times, to 203.0.113.10)" in whole[0]


def test_a_connection_to_an_answered_address_or_by_name_is_enough(tmp_path):
    recs = lookup(1000.0) + tcp_session((AGENT, 50000), (KSC, 23101), t0=1000.1)
    assert lines(_write(tmp_path, recs)) == []
    # another address, the name in its SNI: followed (a load balancer's other address)
    from test_newcomer30_findings import _hello
    recs = lookup(1000.0) + tcp_session((AGENT, 50000), ("203.0.113.99", 23101), t0=1000.1, c_data=_hello(NAME.encode()))
    assert lines(_write(tmp_path, recs, "b.pcap")) == []


def test_an_ipv6_client_given_ipv4_addresses_only(tmp_path):
    # (an IPv4 flow in the capture: the host may be dual-stack, the firewall first)
    path = _write(tmp_path, lookup(1000.0, v6=True) + lookup(1010.0, name="www.example.com", sport=40001))
    (line,) = lines(path)
    assert line.endswith(f"; {NAME} was asked over IPv6 and answered with IPv4 addresses only: an IPv6-only host "
                         "cannot reach them without NAT64/DNS64")
    # no IPv4 flow at all: an IPv6-only network, said first (s51 scenario pass #2)
    (line,) = lines(_write(tmp_path, lookup(1000.0, v6=True), name="v6.pcap"))
    assert line == (f"v6.pcap: Kaspersky names were resolved but no connection to them was captured: {NAME} (1 time, "
                    f"to {KSC}). It was asked over IPv6 and answered with IPv4 addresses only, and the capture shows no "
                    "IPv4 traffic nor NAT64: an IPv6-only host cannot reach them without NAT64/DNS64 (give the resolver DNS64 "
                    "with a NAT64 gateway, or the host IPv4). Else: a firewall or security product on this host drops "
                    "a blocked connection before the capture point: check the agent host's own firewall and security "
                    "software")


def test_other_names_and_unanswered_lookups_are_not_said(tmp_path):
    recs = lookup(1000.0, name="www.example.com", answer="203.0.113.80")
    q = DNS(id=7, rd=1, qd=DNSQR(qname=NAME))
    recs.append((1001.0, Ether(**ETH) / IP(src=AGENT, dst=RESOLVER) / UDP(sport=40007, dport=53) / q))
    assert lines(_write(tmp_path, recs)) == []


def test_a_hostile_name_is_escaped():
    w = LookupsWatch()
    import pandas as pd
    w.add(pd.DataFrame({"query": ["x\x1b[31m.kaspersky.com"], "dns_answers": [KSC], "resp_h": [RESOLVER],
                        "orig_h": [AGENT], "proto": ["udp"]}))
    line = w.line("c.pcap")
    assert "\x1b" not in line and "x\\x1b[31m.kaspersky.com (1 time, to 203.0.113.10)" in line


def test_sinkhole_answers_are_no_address_to_connect_to(tmp_path):
    """A DNS filter's 0.0.0.0 / 127.0.0.1 answers (break-it s50 #4): nothing to connect to, so no line
    sends the reader to the host firewall (the DNS flows are flagged as the filter's block); a name
    answered with a sinkhole and a real address is said with the real one only."""
    recs = lookup(1000.0, answer="0.0.0.0") + lookup(1030.0, answer="127.0.0.1", sport=40001)
    assert lines(_write(tmp_path, recs)) == []
    recs += lookup(1060.0, sport=40002)
    (line,) = lines(_write(tmp_path, recs, "b.pcap"))
    assert f"{NAME} (1 time, to {KSC})" in line
