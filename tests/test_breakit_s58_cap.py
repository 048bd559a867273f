"""Session 58: a capture on a router (``tcpdump -i any``, Linux cooked capture) whose own firewall
rejects a port; a TCP reset with a wrong checksum; the tshark engine's order of flows that start at
one time."""
import shutil
import struct

import pytest
from scapy.layers.inet import IP, TCP

from pcapbuild import pcap_bytes

from kscc_traffic.analyze import analyze_file
from kscc_traffic.rules import load_rules

needs_tshark = pytest.mark.skipif(shutil.which("tshark") is None,
                                  reason="tshark (Wireshark) not installed: the tshark engine is compared here")

AGENT, SERVER = "192.0.2.10", "198.51.100.10"
#: interface indexes of the router's two sides (SLL2 records them)
AGENT_SIDE, SERVER_SIDE = 3, 4


def _sll(pkttype: int, ip: bytes, ifindex: int) -> bytes:
    """A LINUX_SLL (113) record: packet type, ARPHRD_ETHER, a 6-byte address, IPv4."""
    return struct.pack(">HHH8sH", pkttype, 1, 6, b"\x02\x00\x00\x00\x00\x01\x00\x00", 0x0800) + ip


def _sll2(pkttype: int, ip: bytes, ifindex: int) -> bytes:
    """A LINUX_SLL2 (276) record: IPv4, interface ``ifindex``, ARPHRD_ETHER, packet type."""
    return struct.pack(">HHIHBB8s", 0x0800, 0, ifindex, 1, pkttype, 6, b"\x02\x00\x00\x00\x00\x01\x00\x00") + ip


def _router_capture(tmp_path, link, forwarded_rst=False):
    """``tcpdump -i any`` on a router between the agent and the server: a connection to TCP 23101
    forwarded (each packet captured as it came in, packet type 0, TTL 64, and as it left, type 4,
    TTL 63), then the agent's SYN to TCP 27203 answered by the router's own firewall (``reject with
    tcp reset``: a RST in the server's name leaving on the agent's side, TTL 64). With
    ``forwarded_rst`` the reset is the server's own, forwarded as the other packets."""
    wrap, lt = (_sll, 113) if link == "sll" else (_sll2, 276)

    def both(t, ip, from_agent):
        came, left = (AGENT_SIDE, SERVER_SIDE) if from_agent else (SERVER_SIDE, AGENT_SIDE)
        b = bytes(ip)
        out = IP(b)
        out.ttl -= 1
        del out.chksum
        return [(t, wrap(0, b, came)), (t + 0.00001, wrap(4, bytes(out), left))]

    c2s = lambda **kw: IP(src=AGENT, dst=SERVER, ttl=64, id=kw.pop("id")) / TCP(sport=40000, dport=23101, **kw)  # noqa: E731
    s2c = lambda **kw: IP(src=SERVER, dst=AGENT, ttl=64, id=kw.pop("id")) / TCP(sport=23101, dport=40000, **kw)  # noqa: E731
    recs = []
    recs += both(1000.0, c2s(flags="S", seq=100, id=1), True)
    recs += both(1000.01, s2c(flags="SA", seq=500, ack=101, id=0), False)
    recs += both(1000.02, c2s(flags="A", seq=101, ack=501, id=2), True)
    recs += both(1000.03, c2s(flags="PA", seq=101, ack=501, id=3) / (b"q" * 40), True)
    recs += both(1000.04, s2c(flags="PA", seq=501, ack=141, id=7) / (b"r" * 60), False)
    recs += both(1000.05, c2s(flags="FA", seq=141, ack=561, id=4), True)
    recs += both(1000.06, s2c(flags="FA", seq=561, ack=142, id=8), False)
    recs += both(1000.07, c2s(flags="A", seq=142, ack=562, id=5), True)
    syn = IP(src=AGENT, dst=SERVER, ttl=64, id=9) / TCP(sport=40001, dport=27203, flags="S", seq=900)
    rst = IP(src=SERVER, dst=AGENT, ttl=64, id=0) / TCP(sport=27203, dport=40001, flags="RA", seq=0, ack=901)
    recs.append((1001.0, wrap(0, bytes(syn), AGENT_SIDE)))
    if forwarded_rst:
        recs.append((1001.00001, wrap(4, bytes(IP(bytes(syn), ttl=63)), SERVER_SIDE)))
        recs += both(1001.001, rst, False)
    else:
        recs.append((1001.00002, wrap(4, bytes(rst), AGENT_SIDE)))
    path = tmp_path / f"router_{link}{'_fwd' if forwarded_rst else ''}.pcap"
    path.write_bytes(pcap_bytes(recs, linktype=lt))
    return path


def _refused(a):
    rows = a.flows[a.flows.resp_p == 27203]
    assert len(rows) == 1
    return rows.iloc[0]


def _runs(path, tshark=False):
    """{mode: Analysis}: whole, chunked (each chunk a few records), and the tshark engine."""
    from kscc_traffic.chunked import ChunkedAnalysis
    rules = load_rules()
    out = {"whole": analyze_file(path, rules)}
    run = ChunkedAnalysis(path, rules, path.name, chunk_bytes=512)
    import pandas as pd
    flows = pd.concat(list(run.batches()), ignore_index=True)
    out["chunked"] = type(out["whole"])(flows, {str(path): run.stats}, run.duplicates)
    if tshark:
        out["tshark"] = analyze_file(path, rules, engine="tshark")
    return out


@pytest.mark.parametrize("link", ["sll", "sll2"])
def test_a_routers_own_reset_is_told_from_the_servers(tmp_path, link):
    """s57 real #2: the router's own reset (TTL 64, leaving) was compared with the server's packets
    as they came in (64) and called "the server's own TTL … nothing listens on this port there".
    It is compared with the server's packets as they left (63): a device 1 hop nearer, a firewall;
    and the duplicate warning says the copies are a forwarding host's."""
    path = _router_capture(tmp_path, link)
    for mode, a in _runs(path, tshark=shutil.which("tshark") is not None).items():
        row = _refused(a)
        assert (row.conn_state, row.verdict, row.reason) == ("REJ", "blocked", "rejected"), mode
        assert ("the reset came from a device 1 hop nearer than the server (TTL 64 vs 63 on the server's packets "
                "on other connections): a firewall refuses the port") in row.detail, (mode, row.detail)
        assert "server's own" not in row.detail, (mode, row.detail)
        assert a.duplicates == 8, mode
        dup = [w for w in a.warnings if "duplicated frames" in w]
        assert dup == [f"{path.name}: 8 duplicated frames counted once (8 of them packets the capturing host "
                       "forwarded, captured as they came in and again as they left one hop lower: a capture on a "
                       "router or firewall, tcpdump -i any; a TCP reset is compared with its sender's packets "
                       "captured the same way, so that one the router sent itself is not taken for the server's)"], \
            (mode, a.warnings)


@pytest.mark.parametrize("link", ["sll", "sll2"])
def test_the_servers_reset_forwarded_by_the_router_is_still_the_servers(tmp_path, link):
    """The contrast: the server's own reset, forwarded by the router (both copies captured), keeps
    "the server's own TTL" (its first copy, arriving with 64, against the server's arriving packets)."""
    path = _router_capture(tmp_path, link, forwarded_rst=True)
    for mode, a in _runs(path).items():
        row = _refused(a)
        assert "the reset came with the server's own TTL (64, as its packets on other connections)" in row.detail, \
            (mode, row.detail)


# ---------------------------------------------------------------------------- bad-checksum resets
CLIENT, CLOUD = "192.0.2.10", "203.0.113.10"
CLIENT6, CLOUD6 = "2001:db8::10", "2001:db8:1::10"


def _ip(src, dst, **kw):
    from scapy.layers.inet6 import IPv6
    return IPv6(src=src, dst=dst) if ":" in src else IP(src=src, dst=dst, **kw)


def _pseudo_sum(src, dst, length):
    """The folded one's complement sum of the TCP pseudo-header (what checksum offload leaves)."""
    import ipaddress
    a, b = ipaddress.ip_address(src).packed, ipaddress.ip_address(dst).packed
    ph = a + b + (struct.pack(">BBH", 0, 6, length) if len(a) == 4 else struct.pack(">I3xB", length, 6))
    v = sum(struct.unpack(f">{len(ph) // 2}H", ph))
    while v >> 16:
        v = (v & 0xFFFF) + (v >> 16)
    return v


def _refused_then_connected(tmp_path, rst_sum, v6=False, snaplen=65535, name="r.pcap", rst_payload=b""):
    """A SYN to TCP 23101, a RST from the server's address with TCP checksum ``rst_sum`` (None: the
    right one; "offload": the pseudo-header's sum, as a sending host offloading it leaves it) and
    ``rst_payload`` after its header, the same SYN (same ISN) 1 s later, and the connection
    completes (zeek #5277's case)."""
    from pcapbuild import eth
    c, s = (CLIENT6, CLOUD6) if v6 else (CLIENT, CLOUD)
    c2s = lambda **kw: eth(_ip(c, s) / TCP(sport=50000, dport=23101, **kw))  # noqa: E731
    s2c = lambda **kw: eth(_ip(s, c) / TCP(sport=23101, dport=50000, **kw))  # noqa: E731
    rst = s2c(flags="RA", seq=0, ack=1001) / rst_payload if rst_payload else s2c(flags="RA", seq=0, ack=1001)
    if rst_sum == "offload":
        rst[TCP].chksum = _pseudo_sum(s, c, 20)
    elif rst_sum is not None:
        rst[TCP].chksum = rst_sum
    recs = [(1000.0, c2s(flags="S", seq=1000)), (1000.01, rst), (1001.0, c2s(flags="S", seq=1000)),
            (1001.02, s2c(flags="SA", seq=5000, ack=1001)), (1001.03, c2s(flags="A", seq=1001, ack=5001)),
            (1001.04, c2s(flags="PA", seq=1001, ack=5001) / (b"x" * 30)),
            (1001.05, s2c(flags="PA", seq=5001, ack=1031) / (b"y" * 40)),
            (1001.06, c2s(flags="FA", seq=1031, ack=5041)), (1001.07, s2c(flags="FA", seq=5041, ack=1032)),
            (1001.08, c2s(flags="A", seq=1032, ack=5042))]
    if snaplen < 65535:
        recs = [(t, bytes(p)[:snaplen]) for t, p in recs]
    path = tmp_path / name
    path.write_bytes(pcap_bytes(recs, snaplen=snaplen))
    return path


def _states(a):
    return sorted(zip(a.flows.conn_state, a.flows.history))


@pytest.mark.parametrize("v6", [False, True])
def test_a_reset_with_a_wrong_checksum_refuses_nothing(tmp_path, v6):
    """s57 bugs #3 (zeek #5277): an incoming RST with a wrong TCP checksum, then the same SYN sent
    again and the connection completing, was a REJ flow (refused, the retry connected) besides the
    SF one: the receiver dropped the RST (it sent the SYN again), as Zeek does (bad_TCP_checksum).
    Skipped with a warning, whole file, chunked and tshark engine alike: one SF flow."""
    path = _refused_then_connected(tmp_path, 0x9999, v6)
    runs = _runs(path, tshark=shutil.which("tshark") is not None)
    for mode, a in runs.items():
        assert _states(a) == [("SF", "ShADdFf")], (mode, _states(a))
        assert (f"{path.name}: decode: 1 TCP reset with a wrong TCP checksum skipped (the receiver drops such a "
                "segment, as Zeek does: bad_TCP_checksum; it refused or ended no connection)") in a.warnings, \
            (mode, a.warnings)
        row = a.flows.iloc[0]
        assert (row.orig_pkts, row.resp_pkts, row.ts) == (6, 3, 1000.0), mode


@pytest.mark.parametrize("rst_sum", [None, "offload", 0])
@pytest.mark.parametrize("v6", [False, True])
def test_a_reset_with_a_right_or_offloaded_checksum_still_refuses(tmp_path, rst_sum, v6):
    """The contrast: the right checksum, the pseudo-header's sum a host offloading the checksum to
    its NIC leaves in what it sends (captured on it), or 0: the reset is read, a REJ flow."""
    path = _refused_then_connected(tmp_path, rst_sum, v6)
    for mode, a in _runs(path, tshark=shutil.which("tshark") is not None).items():
        assert ("REJ", "Sr") in _states(a), (mode, _states(a))
        assert not [w for w in a.warnings if "checksum" in w], (mode, a.warnings)


def test_a_reset_carrying_payload_is_not_checked(tmp_path):
    """A reset carrying payload (a stack's reset cause text) is not checked, whatever its checksum:
    the tshark engine cannot rebuild its bytes (Wireshark shows them as tcp.reset_cause text), and
    both engines give one answer: the REJ flow, no warning (s58 review F4)."""
    path = _refused_then_connected(tmp_path, 0x9999, rst_payload=b"connection refused by policy")
    for mode, a in _runs(path, tshark=shutil.which("tshark") is not None).items():
        # (t: the reset's text at the side's current number, Zeek's T, session 61)
        assert ("REJ", "Srt") in _states(a), (mode, _states(a))
        assert not [w for w in a.warnings if "checksum" in w], (mode, a.warnings)


def test_a_cut_reset_is_not_checked(tmp_path):
    """A reset the snaplen cut (its checksum cannot be computed) is read as it is."""
    path = _refused_then_connected(tmp_path, 0x9999, snaplen=14 + 20 + 18)
    a = analyze_file(path, load_rules())
    assert ("REJ", "Sr") in _states(a), _states(a)
    assert not [w for w in a.warnings if "checksum" in w], a.warnings


def test_bad_reset_checksums_fast_and_slow_paths_agree(tmp_path):
    """The decoder's fast and slow paths (and the compiled header decode) skip the same rows; a
    tunnelled reset (GRE: the slow path) is checked against its inner addresses."""
    from scapy.layers.inet import GRE
    from pcapbuild import eth
    from kscc_traffic.capture import decode as dec
    from kscc_traffic.capture.files import read_frames
    bad = eth(IP(src=CLOUD, dst=CLIENT) / TCP(sport=23101, dport=50000, flags="RA", seq=0, ack=1001, chksum=0x9999))
    good = eth(IP(src=CLOUD, dst=CLIENT) / TCP(sport=23101, dport=50001, flags="R", seq=7))
    inner_bad = eth(IP(src="10.0.0.1", dst="10.0.0.2") / GRE() / IP(src=CLOUD, dst=CLIENT)
                    / TCP(sport=23101, dport=50002, flags="RA", seq=0, ack=5, chksum=0x1234))
    inner_good = eth(IP(src="10.0.0.1", dst="10.0.0.2") / GRE() / IP(src=CLOUD, dst=CLIENT)
                     / TCP(sport=23101, dport=50003, flags="RA", seq=0, ack=5))
    path = tmp_path / "mix.pcap"
    path.write_bytes(pcap_bytes([(1000 + i * 0.01, p) for i, p in enumerate((bad, good, inner_bad, inner_good))]))
    frames = read_frames(path)
    outs = []
    for fast, compiled in ((True, True), (True, False), (False, True)):
        old = dec._compiled
        dec._compiled = compiled
        try:
            p = dec.decode(frames, fast=fast)
        finally:
            dec._compiled = old
        outs.append((p["dport"].tolist(), p.stats.warnings))
    assert outs[0] == outs[1] == outs[2], outs
    assert outs[0][0] == [50001, 50003]
    assert any("decode: 2 TCP resets with a wrong TCP checksum skipped" in w for w in outs[0][1]), outs[0][1]


# ---------------------------------------------------------------------------- flows of one time
def _suffix_lookups(tmp_path):
    """s57 bugs #4's capture: two lookups under a search suffix (NXDOMAIN), then an A and an AAAA
    query sent at one instant (999.1 s), the A answered, the AAAA answered without data, and a
    connection to the address."""
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import UDP
    from pcapbuild import eth, tcp_session
    c, r = "192.0.2.10", "192.0.2.53"

    def q(t, port, tid, name, qtype):
        return (t, eth(IP(src=c, dst=r) / UDP(sport=port, dport=53) / DNS(id=tid, rd=1, qd=DNSQR(qname=name, qtype=qtype))))

    def a(t, port, tid, name, qtype, an=(), rcode=0):
        return (t, eth(IP(src=r, dst=c) / UDP(sport=53, dport=port)
                       / DNS(id=tid, qr=1, aa=1, rcode=rcode, qd=DNSQR(qname=name, qtype=qtype), an=list(an))))

    long_ = "eu1.ksc.kaspersky.com.corp.example"
    name = "eu1.ksc.kaspersky.com"
    recs = [q(999.0, 41000, 1, long_, "A"), q(999.0, 41001, 2, long_, "AAAA"),
            a(999.01, 41000, 1, long_, "A", rcode=3), a(999.01, 41001, 2, long_, "AAAA", rcode=3),
            q(999.1, 41002, 3, name, "A"), q(999.1, 41003, 4, name, "AAAA"),
            a(999.11, 41002, 3, name, "A", an=[DNSRR(rrname=name, type="A", rdata="203.0.113.10")]),
            a(999.11, 41003, 4, name, "AAAA")]
    recs += tcp_session((c, 50000), ("203.0.113.10", 23101), t0=1000.0, c_data=b"x" * 20, s_data=b"y" * 20)
    path = tmp_path / "suffix.pcap"
    path.write_bytes(pcap_bytes(recs))
    return path


@needs_tshark
def test_flows_of_one_time_come_in_one_order_from_both_engines(tmp_path):
    """s57 bugs #4: the builtin engine wrote the lookups from 41002 then 41003 (started at one
    instant), the tshark engine 41003 then 41002, every value equal: rows of one time are now in
    order of their uid in both (and whole or chunked)."""
    from kscc_traffic.analyze import analyze_files
    path = _suffix_lookups(tmp_path)
    runs = _runs(path, tshark=True)
    rows = {m: list(zip(a.flows.ts_ns.tolist(), a.flows.uid.tolist(), a.flows.orig_p.tolist()))
            for m, a in runs.items()}
    assert rows["whole"] == rows["tshark"] == rows["chunked"], rows
    tied = [r for r in rows["whole"] if r[0] == 999_100_000_000]
    assert sorted(p for _, _, p in tied) == [41002, 41003]
    assert [u for _, u, _ in tied] == sorted(u for _, u, _ in tied)
    assert len(analyze_files([path]).flows) == 5


def test_a_capture_whose_addresses_were_rewritten_keeps_its_resets(tmp_path):
    """The guard: a capture whose addresses were rewritten (anonymised) without fixing the TCP
    checksums has every checksum wrong, the SYN-ACK's and the data's too: its resets are not
    checked (decode.SumClaim), the refusal stays a REJ flow, no warning; whole, chunked and the
    tshark engine alike."""
    from scapy.layers.l2 import Ether
    path = _refused_then_connected(tmp_path, None)
    from kscc_traffic.capture.files import read_frames
    fr = read_frames(path)
    recs = []
    for i in range(len(fr)):
        o, c = int(fr.offset[i]), int(fr.caplen[i])
        pkt = Ether(bytes(fr.buf[o:o + c]))
        keep = pkt[TCP].chksum
        for side in ("src", "dst"):
            a = getattr(pkt[IP], side)
            setattr(pkt[IP], side, {CLIENT: "10.1.1.1", CLOUD: "10.2.2.2"}[a])
        del pkt[IP].chksum
        pkt[TCP].chksum = keep                 # (the IP header fixed, the TCP checksum not)
        recs.append((int(fr.ts_ns[i]) / 1e9, pkt))
    anon = tmp_path / "anon.pcap"
    anon.write_bytes(pcap_bytes(recs))
    for mode, a in _runs(anon, tshark=shutil.which("tshark") is not None).items():
        assert ("REJ", "Sr") in _states(a), (mode, _states(a))
        assert not [w for w in a.warnings if "checksum" in w], (mode, a.warnings)


# ------------------------------------------------------------ a router's own reset in a connection
def _router_session(tmp_path, link, own_reset, v6=False):
    """``tcpdump -i any`` on a router between the agent and the server: a TLS 1.3 session to TCP
    23101 forwarded (each packet captured as it came in, packet type 0, TTL 64, and as it left,
    type 4, TTL 63), some application data both ways, then the agent's next record answered by a
    reset in the server's name. ``own_reset``: the router's own (an IPS-like ``reject with tcp
    reset``, or a conntrack-invalid one: leaving on the agent's side with TTL 64, the agent's record
    not forwarded); else the server's own, forwarded as its other packets."""
    from scapy.layers.inet import IP as IP4
    from scapy.layers.inet6 import IPv6
    from test_newcomer30_findings import _hello
    from test_tls_stall import FLIGHT13 as sh
    wrap, lt = (_sll, 113) if link == "sll" else (_sll2, 276)
    agent, server = ("2001:db8:a::10", "2001:db8:c::10") if v6 else (AGENT, SERVER)
    ethertype = 0x86DD if v6 else 0x0800

    def rec(pkttype, ip, ifindex):
        b = wrap(pkttype, bytes(ip), ifindex)
        # (the protocol field of the cooked header: IPv6 where the packet is)
        return b.replace(struct.pack(">H", 0x0800), struct.pack(">H", ethertype), 1) if v6 else b

    def ip(src, dst, ttl, ipid):
        return IPv6(src=src, dst=dst, hlim=ttl) if v6 else IP4(src=src, dst=dst, ttl=ttl, id=ipid)

    n = [0]

    def pkt(from_agent, ttl=64, **kw):
        n[0] += 1
        src, dst = (agent, server) if from_agent else (server, agent)
        sp, dp = (40100, 23101) if from_agent else (23101, 40100)
        raw = kw.pop("raw", b"")
        p = ip(src, dst, ttl, n[0]) / TCP(sport=sp, dport=dp, **kw)
        return p / raw if raw else p

    def both(t, from_agent, **kw):
        came, left = (AGENT_SIDE, SERVER_SIDE) if from_agent else (SERVER_SIDE, AGENT_SIDE)
        a = pkt(from_agent, **kw)
        out = a.copy()
        if v6:
            out.hlim -= 1
        else:
            out.ttl -= 1
            del out.chksum
        return [(t, rec(0, a, came)), (t + 0.00001, rec(4, out, left))]

    hello = _hello(b"eu1.ksc.kaspersky.com")
    cs, ss = 101 + len(hello), 901 + len(sh)
    recs = []
    recs += both(1000.0, True, flags="S", seq=100)
    recs += both(1000.01, False, flags="SA", seq=900, ack=101)
    recs += both(1000.02, True, flags="A", seq=101, ack=901)
    recs += both(1000.03, True, flags="PA", seq=101, ack=901, raw=hello)
    recs += both(1000.05, False, flags="PA", seq=901, ack=cs, raw=sh)
    rec_ = bytes.fromhex("1703030020") + bytes(32)
    t = 1000.1
    for _ in range(3):
        recs += both(t, True, flags="PA", seq=cs, ack=ss, raw=rec_)
        recs += both(t + 0.02, False, flags="PA", seq=ss, ack=cs + 37, raw=rec_)
        cs, ss, t = cs + 37, ss + 37, t + 0.5
    if own_reset:
        # the agent's record comes in, is not forwarded; the router answers it itself
        recs.append((t, rec(0, pkt(True, flags="PA", seq=cs, ack=ss, raw=rec_), AGENT_SIDE)))
        recs.append((t + 0.00002, rec(4, pkt(False, flags="R", seq=ss), AGENT_SIDE)))
    else:
        recs += both(t, True, flags="PA", seq=cs, ack=ss, raw=rec_)
        recs += both(t + 0.02, False, flags="R", seq=ss)
    path = tmp_path / f"session_{link}{'_v6' if v6 else ''}{'_own' if own_reset else '_srv'}.pcap"
    path.write_bytes(pcap_bytes(recs, linktype=lt))
    return path


@pytest.mark.parametrize("v6", [False, True])
@pytest.mark.parametrize("link", ["sll", "sll2"])
def test_a_routers_own_reset_ending_a_connection_is_told(tmp_path, link, v6):
    """s58 real #1: the router's own reset ending a working connection (leaving with TTL 64) was
    compared with the server's packets as they came in (64, the copies duplicate removal keeps):
    the connection stayed ok. It is compared with the server's packets as they left (63, their
    dropped copies): a device on the path, as on the agent's capture; whole file, chunked (the
    copies carried) and tshark engine alike."""
    path = _router_session(tmp_path, link, own_reset=True, v6=v6)
    field = "hop limit" if v6 else "TTL"
    for mode, a in _runs(path, tshark=shutil.which("tshark") is not None).items():
        rows = a.flows[a.flows.resp_p == 23101]
        assert len(rows) == 1, mode
        row = rows.iloc[0]
        assert (row.conn_state, row.verdict, row.reason) == ("RSTR", "blocked", "rejected"), (mode, row.detail)
        assert row.detail.startswith("the connection worked, then a reset in the server's name ended it, sent by a "
                                     "device on the path"), (mode, row.detail)
        assert f"the reset in the server's name came with {field} 64, its SYN-ACK with 63" in row.detail, \
            (mode, row.detail)


@pytest.mark.parametrize("v6", [False, True])
@pytest.mark.parametrize("link", ["sll", "sll2"])
def test_the_servers_reset_ending_a_connection_forwarded_stays_the_servers(tmp_path, link, v6):
    """The contrast: the server's own reset, forwarded by the router (captured arriving with 64 and
    leaving with 63, as its other packets): no device named, the connection ok."""
    path = _router_session(tmp_path, link, own_reset=False, v6=v6)
    for mode, a in _runs(path, tshark=shutil.which("tshark") is not None).items():
        row = a.flows[a.flows.resp_p == 23101].iloc[0]
        assert row.conn_state == "RSTR", mode
        assert row.verdict == "ok", (mode, row.reason, row.detail)
        assert "device on the path" not in row.detail, (mode, row.detail)
