"""Variants of real traffic no earlier session tested (session 35 helper `variants`), in
captures built with scapy, whole file and in chunks alike.

1. An agent behind a blocking firewall trying 30 cloud addresses on one port within 5 minutes, no
   DNS lookup captured (its names cached, or looked up over HTTPS): its system retries each
   unanswered SYN (Windows 0, 1, 3 s; Linux 1, 2, 4, 8 s with the program's 20 s timeout):
   ``blocked``/``no_answer`` as any unanswered connection, no address scan (it was one before:
   the probes of a sweep send one SYN per address). A sweep of 30 addresses, one SYN each, stays
   an address scan, beside the agent's retried attempts on the same port.
2. IPv6 scans: a SYN scan of 200 ports of one IPv6 host, a sweep of 40 hosts of 2001:db8::/64 on
   23101: told as the IPv4 ones (kind, detail, the report's line; the tshark engine alike).
3. A refused SYN retried from its own source port (a program that binds it: the same 5-tuple),
   IPv4 and IPv6: ok within REFUSED_RETRY_S as a retry from another port, blocked 31 s later.
   Scan probes as ``nmap -f`` and ``nmap -6`` with an extension header send them (item 2).
4. VLAN tags as switches write them: priority bits (PCP, DEI) differing per direction, a priority
   tag (VLAN ID 0) on one direction only or inside a VLAN, QinQ as 802.1ad + 802.1Q, 0x9100 +
   802.1Q and 802.1Q twice, three tags, under Ethernet and Linux cooked captures (SLL, SLL2, the
   tag put back by libpcap): one flow each, its ``vlan``/``inner_vlan`` as Zeek logs them, both
   engines alike, IPv4 and IPv6.
"""
from __future__ import annotations

import shutil
import struct

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6

from chunkcmp import RULES, assert_same, write
from pcapbuild import eth, ip_of, pcap_bytes

from kscc_traffic.analyze import analyze_file
from kscc_traffic.report import TableSummary, scan_lines
from test_scans_s33 import _probe

AGENT = "192.0.2.10"


def _syn(t, c, s, sp, dp, seq=100):
    return t, bytes(eth(ip_of(c, s) / TCP(sport=sp, dport=dp, flags="S", seq=seq)))


def _tries(n, schedule, port, t0=1000.0, gap=8.0, net="203.0.113", sport=50000, origin=AGENT):
    """``n`` addresses of ``net`` tried one after the other, ``gap`` s apart, each SYN sent at
    the offsets ``schedule`` (s) from one source port."""
    return [_syn(t0 + k * gap + d, origin, f"{net}.{k + 1}", sport + k, port, 1000 + k)
            for k in range(n) for d in schedule]


def test_an_agent_retrying_syns_to_30_cloud_addresses_is_blocked_not_an_address_scan(tmp_path):
    for name, schedule, port, purpose in (("windows", (0, 1, 3), 23101, "agent_connection"),
                                          ("linux", (0, 1, 3, 7, 15), 443, "discovery")):
        recs = sorted(_tries(30, schedule, port), key=lambda r: r[0])
        w = assert_same(write(tmp_path, recs, name + ".pcap"), [1500, 6000])
        assert len(w) == 30, name
        assert set(w.conn_state) == {"S0"} and set(w.orig_pkts) == {len(schedule)}, name
        assert set(w.verdict) == {"blocked"} and set(w.reason) == {"no_answer"}, (name, set(w.reason))
        assert set(w.purpose) == {purpose}, (name, set(w.purpose))
        assert set(w.detail) == {f"SYN sent {len(schedule)} times, no answer"}, (name, set(w.detail))


def test_a_sweep_of_30_addresses_stays_an_address_scan_beside_an_agents_retries(tmp_path):
    # (the same originator: the sweep's one-SYN probes make the scan, the retried attempts stay
    # blocked; a slow sweep interleaved with the agent's tries, across batches)
    sweep = _tries(30, (0,), 23101, t0=1000.0, gap=4.0, net="198.51.100", sport=41000)
    agent = _tries(30, (0, 1, 3), 23101, t0=1000.5, gap=4.0)
    w = assert_same(write(tmp_path, sorted(sweep + agent, key=lambda r: r[0])), [300, 900, 2500, 6000])
    assert len(w) == 60
    swept = w[w.resp_h.str.startswith("198.51.100.")]
    tried = w[w.resp_h.str.startswith("203.0.113.")]
    assert set(swept.reason) == {"address_scan"} and set(swept.verdict) == {"unclassified"}
    assert set(swept.purpose) == {""}
    assert set(tried.reason) == {"no_answer"} and set(tried.verdict) == {"blocked"}
    assert set(tried.purpose) == {"agent_connection"}


def test_tshark_engine_the_same_for_the_agent_and_the_sweep(tmp_path):
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    sweep = _tries(30, (0,), 23101, t0=1000.0, gap=0.05, net="198.51.100", sport=41000)
    agent = _tries(30, (0, 1, 3), 23101, t0=1000.5, gap=8.0)
    path = write(tmp_path, sorted(sweep + agent, key=lambda r: r[0]))
    t = analyze_file(path, RULES, engine="tshark").flows
    b = analyze_file(path, RULES).flows
    assert t.groupby("reason").size().to_dict() == {"address_scan": 30, "no_answer": 30}
    assert sorted(t.detail) == sorted(b.detail)


S6, V6 = "2001:db8::9", "2001:db8:1::5"


def test_ipv6_port_scan_and_address_sweep_as_the_ipv4_ones(tmp_path):
    recs = []
    for k, p in enumerate(list(range(1, 190)) + [443, 1443, 13000, 13111, 13295, 17111, 23101, 23102, 23700, 27201,
                                                29201]):
        recs += _probe(1000 + k * .016, S6, V6, 40000, p, ("closed", "filtered", "open")[k % 3])
    w = assert_same(write(tmp_path, sorted(recs, key=lambda r: r[0]), "p6.pcap"), [1500, 6000])
    assert len(w) == 200 and set(w.reason) == {"port_scan"} and set(w.verdict) == {"unclassified"}
    assert w[w.resp_p == 23101].detail.iloc[0].startswith(
        f"a port scan probe from {S6}: one of 15 or more ports of {V6} probed within 300 s (")
    assert scan_lines(TableSummary.of(w, rules=RULES)) == [
        f"a port scan from {S6}: 200 ports of {V6} in 3.2 s (12 documented KSC ports among them), not counted as KSC "
        "traffic (200 probes, reason port_scan)"]
    recs = []
    for k in range(40):
        recs += _probe(1000 + k * .01, S6, f"2001:db8::{k + 0x100:x}", 41000, 23101, ("closed", "filtered")[k % 2])
    w = assert_same(write(tmp_path, sorted(recs, key=lambda r: r[0]), "a6.pcap"), [1500, 6000])
    assert len(w) == 40 and set(w.reason) == {"address_scan"} and set(w.purpose) == {""}
    assert w.detail.iloc[0] == (f"an address scan probe from {S6}: one of 25 or more hosts on TCP 23101 probed within "
                                "300 s (closed: the SYN was answered by a reset); TCP 23101 is the documented port of "
                                "agent_connection, not counted as KSC traffic")
    assert scan_lines(TableSummary.of(w, rules=RULES)) == [
        f"an address scan from {S6}: 40 hosts on TCP 23101 in 0.4 s (a documented KSC port), not counted as KSC "
        "traffic (40 probes, reason address_scan)"]
    if shutil.which("tshark") is not None:
        for name in ("p6.pcap", "a6.pcap"):
            t = analyze_file(tmp_path / name, RULES, engine="tshark").flows
            b = analyze_file(tmp_path / name, RULES).flows
            assert sorted(t.detail) == sorted(b.detail), name


CMAC, SMAC = bytes.fromhex("02000000000a"), bytes.fromhex("020000000014")


def _tagged(ip, tags, up: bool, link: int) -> bytes:
    """``ip`` in a frame with the 802.1Q-style tags ``((TPID, TCI), …)``, outermost first: Ethernet
    II (``link`` 1), or LINUX_SLL (113) / LINUX_SLL2 (276) with the tags after its header, as
    libpcap puts them back (its protocol field the outer TPID)."""
    tail = 0x86DD if ip.version == 6 else 0x0800
    types = [t for t, _ in tags] + [tail]
    body = b"".join(struct.pack("!HH", tci, types[k + 1]) for k, (_, tci) in enumerate(tags)) + bytes(ip)
    if link == 113:
        return struct.pack("!HHH8sH", 0 if not up else 4, 1, 6, CMAC + b"\0\0", types[0]) + body
    if link == 276:
        return struct.pack("!HHIHBB8s", types[0], 0, 2, 1, 0 if not up else 4, 6, CMAC + b"\0\0") + body
    return ((SMAC + CMAC) if up else (CMAC + SMAC)) + struct.pack("!H", types[0]) + body


def _closed_connection(a, s, up_tags, down_tags, link):
    ip = IPv6 if ":" in a else IP
    pk = [(ip(src=a, dst=s) / TCP(sport=50000, dport=23101, flags="S", seq=1000), True),
          (ip(src=s, dst=a) / TCP(sport=23101, dport=50000, flags="SA", seq=5000, ack=1001), False),
          (ip(src=a, dst=s) / TCP(sport=50000, dport=23101, flags="A", seq=1001, ack=5001), True),
          (ip(src=a, dst=s) / TCP(sport=50000, dport=23101, flags="FA", seq=1001, ack=5001), True),
          (ip(src=s, dst=a) / TCP(sport=23101, dport=50000, flags="FA", seq=5001, ack=1002), False),
          (ip(src=a, dst=s) / TCP(sport=50000, dport=23101, flags="A", seq=1002, ack=5002), True)]
    return [(1000.0 + k * .01, _tagged(p, up_tags if up else down_tags, up, link)) for k, (p, up) in enumerate(pk)]


_TAGS = [
    (((0x8100, 0x6000),), (), (0, 0)),                                   # priority tag (PCP 3, VID 0) one way
    (((0x8100, 0xA000),), ((0x8100, 0x6000),), (0, 0)),                  # priority tags of two priorities
    (((0x8100, 0xA064),), ((0x8100, 0x1064),), (100, 0)),                # VLAN 100: PCP 5 one way, DEI the other
    (((0x88A8, 0x20C8), (0x8100, 0xA064)), ((0x88A8, 0xC8), (0x8100, 0x64)), (200, 100)),
    (((0x9100, 200), (0x8100, 100)),) * 2 + ((200, 100),),
    (((0x8100, 200), (0x8100, 100)),) * 2 + ((200, 100),),
    (((0x88A8, 0), (0x8100, 100)),) * 2 + ((100, 0),),                   # a priority S-tag outside
    (((0x8100, 100), (0x8100, 0x6000)), ((0x8100, 100),), (100, 0)),     # a priority tag inside, one way
    (((0x88A8, 7), (0x8100, 300), (0x8100, 10)),) * 2 + ((7, 10),),
]
_NAMES = ["prio-one-way", "prio-both", "pcp-dei", "qinq-pcp", "qinq-9100", "qinq-8100-twice", "prio-s-tag",
          "prio-inner-one-way", "three"]
# (a cooked capture's tags are the interface's: the same both ways)
_CASES = [pytest.param(*c, link, id=f"{n}-{name}") for link, n in ((1, "ether"), (113, "sll"), (276, "sll2"))
          for c, name in zip(_TAGS, _NAMES) if link == 1 or c[0] == c[1]]


@pytest.mark.parametrize("up,down,ids,link", _CASES)
def test_vlan_tags_as_switches_write_them(tmp_path, up, down, ids, link):
    for a, s in (("192.0.2.10", "203.0.113.10"), ("2001:db8::a", "2001:db8:1::14")):
        path = tmp_path / f"v{len(a)}.pcap"
        path.write_bytes(pcap_bytes(_closed_connection(a, s, up, down, link), linktype=link))
        w = assert_same(path, [150, 300])
        got = [(int(r.vlan), int(r.inner_vlan), r.conn_state, r.history, r.verdict) for r in w.itertuples()]
        assert got == [(*ids, "SF", "ShAFf", "ok")], (a, got)
        if shutil.which("tshark") is not None:
            t = analyze_file(path, RULES, engine="tshark").flows
            assert [(int(r.vlan), int(r.inner_vlan), r.conn_state, r.history, r.verdict)
                    for r in t.itertuples()] == got, a


def test_scan_probes_under_extension_headers_and_in_fragments(tmp_path):
    """Probes as ``nmap -f`` (IPv4 SYNs in 8-byte fragments) and ``nmap -6`` with a destination
    options header send them: the port scan as the plain one's, both engines."""
    from scapy.layers.inet import fragment
    from scapy.layers.inet6 import IPv6ExtHdrDestOpt
    from pcapbuild import CLIENT_MAC, SERVER_MAC
    for name, (src, dst) in (("opts6", (S6, V6)), ("frag4", ("192.0.2.9", "198.51.100.5"))):
        recs = []
        for k, p in enumerate(range(1, 41)):
            t = 1000 + k * .02
            syn = TCP(sport=40000, dport=p, flags="S", seq=7)
            if name == "opts6":
                recs.append((t, bytes(eth(IPv6(src=src, dst=dst) / IPv6ExtHdrDestOpt() / syn))))
            else:
                recs += [(t + j * 1e-4, bytes(eth(f)))
                         for j, f in enumerate(fragment(IP(src=src, dst=dst, id=100 + k) / syn, fragsize=8))]
            recs.append((t + .001, bytes(eth(ip_of(dst, src) / TCP(sport=p, dport=40000, flags="RA", seq=0, ack=8),
                                             src=SERVER_MAC, dst=CLIENT_MAC))))
        path = write(tmp_path, recs, name + ".pcap")
        w = assert_same(path, [600, 2000])
        assert len(w) == 40 and set(w.conn_state) == {"REJ"} and set(w.reason) == {"port_scan"}, name
        if shutil.which("tshark") is not None:
            t = analyze_file(path, RULES, engine="tshark").flows
            assert sorted(t.detail) == sorted(w.detail), name


# 3. refused-then-connected retries: IPv6, and a retry from the refused attempt's own source port
@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("retry,ok", [(0.5, True), (13.0, True), (31.0, False)])
def test_refused_attempt_retried_from_its_own_port_and_over_ipv6(tmp_path, monkeypatch, v6, retry, ok):
    """A program that binds its source port retries on the same 5-tuple (a new flow after the
    reset): within REFUSED_RETRY_S ok as a retry from another port, later blocked; IPv6 alike."""
    import test_refused_retry_s33 as R
    from kscc_traffic.classify import REFUSED_CLEARED, REJ_DETAIL
    c, s = ("2001:db8::a", "2001:db8:1::10") if v6 else (R.C, R.S)
    monkeypatch.setattr(R, "C", c)
    monkeypatch.setattr(R, "S", s)
    recs = R._capture(retry=retry, retry_server=s)
    # (the refused SYN from 50001, the retry from 50100: make it 50001 too)
    from scapy.layers.l2 import Ether
    out = []
    for t, frame in recs:
        e = Ether(frame)
        tcp = e[TCP]
        tcp.sport, tcp.dport = (50001 if p == 50100 else p for p in (tcp.sport, tcp.dport))
        del tcp.chksum
        out.append((t, bytes(e)))
    w = assert_same(write(tmp_path, out), [150, 400, 900])
    assert [(int(r.orig_p), r.conn_state) for r in w.itertuples()] == [(50001, "REJ"), (50001, "SF")]
    a, b = w.iloc[0], w.iloc[1]
    assert b.verdict == "ok"
    if ok:
        assert (a.verdict, a.reason) == ("ok", "") and a.detail.startswith(REFUSED_CLEARED), a.detail
        assert f"the retry {retry:.1f} s later connected (on {b.uid})" in a.detail, a.detail
    else:
        assert (a.verdict, a.reason) == ("blocked", "rejected") and a.detail.startswith(REJ_DETAIL), a.detail
