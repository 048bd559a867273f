"""Session 54: fixes of this session's break-it passes (IPv6/tunnels/ICMP, link types and bug-report
inputs, interception and proxies)."""
import pytest

from kscc_traffic.capture._ipfrag import RECENT_NS, Reassembler
from kscc_traffic.classify import FRAGS_LOST
from kscc_traffic.report import MTU_FIX
from kscc_traffic.unreachable import REASSEMBLY_NOTE

C4, S4, C6, S6 = "192.0.2.10", "203.0.113.10", "2001:db8:a::10", "2001:db8:cc::10"


def _hello():
    from test_newcomer30_findings import _hello as hello
    return hello(b"eu1.ksc.kaspersky.com")


def _ip(v6, src, dst, **kw):
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6
    return IPv6(src=src, dst=dst, **kw) if v6 else IP(src=src, dst=dst, **kw)


def _fragments(pkt, v6, size, ident):
    """The IP fragments of ``pkt`` (an IP/IPv6 packet) of at most ``size`` bytes of payload each."""
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment
    from scapy.packet import Raw
    whole = bytes(pkt)
    head = 40 if v6 else 20
    nh = whole[6] if v6 else whole[9]
    body = whole[head:]
    out = []
    for off in range(0, len(body), size):
        part, more = body[off:off + size], off + size < len(body)
        if v6:
            out.append(IPv6(src=pkt.src, dst=pkt.dst, hlim=pkt.hlim)
                       / IPv6ExtHdrFragment(nh=nh, offset=off // 8, m=int(more), id=ident) / Raw(part))
        else:
            out.append(IP(src=pkt.src, dst=pkt.dst, ttl=pkt.ttl, id=ident, proto=nh, frag=off // 8,
                          flags="MF" if more else 0) / Raw(part))
    return out


def _fragmented_hello(v6, lose, server_fragments=False, t0=1000.0):
    """(time, Ethernet frame) records: a TCP handshake to port 23101, then either the client's
    ClientHello in 3 IP fragments (``lose``: 'last' drops the last one, 'none' none; 'unfragmented':
    the ClientHello whole) and, unless
    the hello was lost, the server's answer; or (``server_fragments``) the ClientHello whole and
    the server's 1,400-byte answer in fragments of which only the first arrived 3 times. The client
    resets 30 s later when nothing came whole."""
    from scapy.layers.inet import TCP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
    c, s = (C6, S6) if v6 else (C4, S4)
    hello = _hello()
    pk = lambda src, dst, **kw: _ip(v6, src, dst) / TCP(**kw)  # noqa: E731
    recs = [(t0, pk(c, s, sport=50100, dport=23101, flags="S", seq=100)),
            (t0 + 0.02, pk(s, c, sport=23101, dport=50100, flags="SA", seq=900, ack=101)),
            (t0 + 0.021, pk(c, s, sport=50100, dport=23101, flags="A", seq=101, ack=901))]
    end = 101 + len(hello)
    data = pk(c, s, sport=50100, dport=23101, flags="PA", seq=101, ack=901) / Raw(hello)
    if server_fragments:
        recs.append((t0 + 0.022, data))
        answer = pk(s, c, sport=23101, dport=50100, flags="PA", seq=901, ack=end) / Raw(b"\x16\x03\x03" + bytes(1400))
        first = _fragments(answer, v6, 512, 77)[0]
        recs += [(t0 + 0.05 + k, first) for k in range(3)]
        recs.append((t0 + 30.0, pk(c, s, sport=50100, dport=23101, flags="RA", seq=end, ack=901)))
    else:
        frags = [data] if lose == "unfragmented" else _fragments(data, v6, 64, 0x300)
        if lose == "last":
            frags = frags[:-1]
        recs += [(t0 + 0.022 + k * 0.0001, f) for k, f in enumerate(frags)]
        if lose in ("none", "unfragmented"):
            recs += [(t0 + 0.05, pk(s, c, sport=23101, dport=50100, flags="PA", seq=901, ack=end)
                      / Raw(b"\x16\x03\x03\x00\x04\x0e\x00\x00\x00")),
                     (t0 + 0.06, pk(c, s, sport=50100, dport=23101, flags="FA", seq=end, ack=910)),
                     (t0 + 0.08, pk(s, c, sport=23101, dport=50100, flags="FA", seq=910, ack=end + 1)),
                     (t0 + 0.081, pk(c, s, sport=50100, dport=23101, flags="A", seq=end + 1, ack=911))]
        else:
            recs.append((t0 + 30.0, pk(c, s, sport=50100, dport=23101, flags="RA", seq=end, ack=901)))
    return [(t, bytes(Ether() / p)) for t, p in recs]


@pytest.mark.parametrize("v6", [False, True])
def test_a_client_hello_whose_fragments_never_all_arrived_is_no_working_connection(tmp_path, v6):
    """Break-it s54 (IPv6/ICMP pass) #1: the ClientHello went as IP fragments and the last never
    arrived; the server sent nothing for 30 s and the client reset. The flow was ``ok`` and the
    checklist said "verified" (exit 0): its data, never captured whole, hid from every TLS rule.
    Now blocked, tls_failed, saying the data came only as fragments, and advised the path's MTU and
    fragments; the same whole or read in chunks."""
    pytest.importorskip("scapy")
    import chunkcmp
    from pcapbuild import pcap_bytes
    from kscc_traffic import analyze_file, load_rules
    from kscc_traffic.report import readiness
    path = tmp_path / "frag.pcap"
    path.write_bytes(pcap_bytes(_fragmented_hello(v6, "last")))
    flows = chunkcmp.assert_same(path, [300, 700])
    row = flows[flows.resp_p == 23101].iloc[0]
    assert (row.verdict, row.reason, row.conn_state) == ("blocked", "tls_failed", "RSTO")
    assert row.detail.startswith(f"ClientHello never received: the client's data (of which {int(row.orig_bytes):,} bytes were captured) "
                                 f"{FRAGS_LOST} (a fragment lost on the way")
    assert row.detail.endswith("the server cannot have received it and sent no byte that arrived; "
                               "then the connection closed (RSTO)")
    table = readiness(analyze_file(path).flows, load_rules()).set_index("purpose")
    assert table.loc["agent_connection", "status"] == "blocked"
    assert MTU_FIX in table.loc["agent_connection", "fix"]


@pytest.mark.parametrize("v6", [False, True])
def test_a_client_hello_whose_fragments_all_arrived_is_judged_as_ever(tmp_path, v6):
    """The same ClientHello in fragments that all arrived, then answered and closed: judged as
    the ClientHello sent whole is (the rule reads only data that came as fragments never
    completed), nothing said of fragments."""
    pytest.importorskip("scapy")
    from pcapbuild import pcap_bytes
    from kscc_traffic import analyze_file
    rows = []
    for lose in ("none", "unfragmented"):
        path = tmp_path / f"{lose}.pcap"
        path.write_bytes(pcap_bytes(_fragmented_hello(v6, lose)))
        flows = analyze_file(path).flows
        assert (flows.resp_p >= 0).all()
        rows.append(flows[flows.resp_p == 23101].iloc[0])
    assert (rows[0].sni, rows[0].conn_state, rows[0].orig_bytes) == ("eu1.ksc.kaspersky.com", "SF", rows[1].orig_bytes)
    assert (rows[0].verdict, rows[0].reason, rows[0].detail) == (rows[1].verdict, rows[1].reason, rows[1].detail)
    assert FRAGS_LOST not in rows[0].detail


@pytest.mark.parametrize("v6", [False, True])
def test_a_server_answer_that_came_only_as_first_fragments_never_reached_the_client(tmp_path, v6):
    """Break-it s54 (IPv6/ICMP pass) #3: the server's answer came only as its first fragment (3
    times), the client acknowledged nothing and reset: the detail said the client reset "after
    the server's last answer" (TLS inspection advised). It now says that answer never arrived
    whole, so the client cannot have had it, and the advice is the path's MTU and fragments."""
    pytest.importorskip("scapy")
    import chunkcmp
    from pcapbuild import pcap_bytes
    path = tmp_path / "answer.pcap"
    path.write_bytes(pcap_bytes(_fragmented_hello(v6, "none", server_fragments=True)))
    flows = chunkcmp.assert_same(path, [300, 700])
    row = flows[flows.resp_p == 23101].iloc[0]
    assert (row.verdict, row.reason) == ("blocked", "tls_failed")
    assert row.detail.startswith(f"TLS handshake not completed: the server's answer (of which {int(row.resp_bytes):,} bytes were captured) "
                                 f"{FRAGS_LOST} ")
    assert row.detail.endswith("the client cannot have received it; then the connection closed (RSTO)")


@pytest.mark.parametrize("v6", [False, True])
def test_a_fragment_reassembly_timeout_from_the_server_is_told_and_advised(tmp_path, v6):
    """Break-it s54 (IPv6/ICMP pass) #4: the ClientHello's fragments all passed the capture point,
    the server (ICMP 11/1, ICMPv6 3/1, quoting the first fragment) never got them all: the error
    was an unjudged ICMP row and the advice a proxy or TLS inspection. It is now the flow's
    (``icmp_unreachable``), the detail says fragments were lost on the way (the verdict as
    before, judged from the TCP packets), and the advice is the path's MTU and fragments."""
    pytest.importorskip("scapy")
    from scapy.layers.inet import ICMP, TCP
    from scapy.layers.inet6 import ICMPv6TimeExceeded
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
    import chunkcmp
    from pcapbuild import pcap_bytes
    from kscc_traffic import analyze_file, load_rules
    from kscc_traffic.report import readiness
    c, s = (C6, S6) if v6 else (C4, S4)
    recs = _fragmented_hello(v6, "none")[:3]
    data = _ip(v6, c, s) / TCP(sport=50100, dport=23101, flags="PA", seq=101, ack=901) / Raw(_hello())
    frags = _fragments(data, v6, 64, 0x300)
    recs += [(1000.022 + k * 0.0001, bytes(Ether() / f)) for k, f in enumerate(frags)]
    quote = bytes(frags[0])[:48 + 8 if v6 else 28]
    error = _ip(v6, s, c) / (ICMPv6TimeExceeded(code=1) if v6 else ICMP(type=11, code=1)) / Raw(quote)
    recs.append((1060.0, bytes(Ether() / error)))
    end = 101 + len(_hello())
    recs.append((1061.0, bytes(Ether() / _ip(v6, c, s) / TCP(sport=50100, dport=23101, flags="RA", seq=end, ack=901))))
    path = tmp_path / "timeout.pcap"
    path.write_bytes(pcap_bytes(recs))
    flows = chunkcmp.assert_same(path, [300, 700])
    assert list(flows.proto) == ["tcp"]
    row = flows.iloc[0]
    code = "3/1" if v6 else "11/1"
    assert row.icmp_unreachable == f"fragment reassembly time exceeded ({code}) from {s}"
    assert (row.verdict, row.reason) == ("blocked", "tls_failed")
    assert row.detail.endswith(f"; ICMP fragment reassembly time exceeded ({code}) from {s}: it received the first "
                               f"fragment of a datagram of this flow, not all the others, so {REASSEMBLY_NOTE} (a "
                               "firewall or path that drops IP fragments, RFC 7872; the datagrams fragmented for a "
                               "tunnel or link with a smaller MTU)")
    table = readiness(analyze_file(path).flows, load_rules()).set_index("purpose")
    assert MTU_FIX in table.loc["agent_connection", "fix"]


def test_a_copy_of_a_fragment_after_its_datagram_completed_is_a_duplicate():
    """Break-it s54 (both packet passes): a span port's copy of the fragment that completed a
    datagram, written after it, started a datagram of its own that never completed (a phantom
    flow of "lost" fragments). A copy within RECENT_NS is a duplicate; a later one, or other
    bytes, is not."""
    r = Reassembler()
    key = (4, "a", "b", 6, 7, 0)
    assert r.add(key, 0, 0, True, 8, b"A" * 8, "r1", "head") is None
    done = r.add(key, 10, 8, False, 4, b"B" * 4, "r2", None)
    assert done is not None and done.data == b"A" * 8 + b"B" * 4
    assert r.add(key, 20, 8, False, 4, b"B" * 4, "r2'", None) is None
    assert r.add(key, 30, 0, True, 8, b"A" * 8, "r1'", "head") is None
    assert r.duplicates == 2 and not r.table
    assert r.add(key, 40, 0, True, 8, b"C" * 8, "r3", "head") is None      # other bytes: a datagram of its own
    r.finish()
    assert r.duplicates == 2 and r.flushed == ["r3"]
    late = Reassembler()
    late.add(key, 0, 0, True, 8, b"A" * 8, "r1", "head")
    assert late.add(key, 10, 8, False, 4, b"B" * 4, "r2", None) is not None
    assert late.add(key, 10 + RECENT_NS + 1, 8, False, 4, b"B" * 4, "r2'", None) is None
    late.finish()
    assert late.duplicates == 0 and late.flushed == ["r2'"]


@pytest.mark.parametrize("v6", [False, True])
def test_span_copies_of_a_fragmented_client_hello_leave_no_phantom_flow(tmp_path, v6):
    """The end-to-end case: every frame copied 5 microseconds later (a span port); the copy of the
    completing fragment made a portless row saying a firewall drops fragments."""
    pytest.importorskip("scapy")
    import chunkcmp
    from pcapbuild import pcap_bytes
    recs = _fragmented_hello(v6, "none")
    recs = sorted(recs + [(t + 0.000005, f) for t, f in recs], key=lambda r: r[0])
    path = tmp_path / "span.pcap"
    path.write_bytes(pcap_bytes(recs))
    flows = chunkcmp.assert_same(path, [300, 900])
    assert list(flows.resp_p) == [23101]
    assert (flows.iloc[0].sni, flows.iloc[0].orig_pkts) == ("eu1.ksc.kaspersky.com", 5)


def _snapped(records, snaplen):
    """A pcap of (time, frame) records each cut to ``snaplen`` bytes (its original length kept)."""
    import struct
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1)]
    for ts, data in records:
        usec = round(ts * 1_000_000)
        out.append(struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, min(len(data), snaplen), len(data)))
        out.append(data[:snaplen])
    return b"".join(out)


@pytest.mark.parametrize("snaplen, cut", [(128, True), (96, True), (65535, False)])
def test_a_dns_answer_the_snaplen_cut_before_its_records_is_not_an_answer_without_address(tmp_path, snaplen, cut):
    """Break-it s54 (link types pass) #1: under pktmon's default 128-byte snaplen the answer's
    CNAME and A records were cut; the flow was blocked, "NOERROR with no address … fix the
    resolver" (exit 1) while the agent's connection to that very address was verified. It is now
    ok, saying the answer was cut before its records (whether it held an address is not known);
    the same answer captured whole names the address, an empty NOERROR kept blocked."""
    pytest.importorskip("scapy")
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    from kscc_traffic import analyze_file
    from kscc_traffic.classify import DNS_CUT_ANSWER
    name = "eu1.ksc.kaspersky.com"
    q = IP(src=C4, dst="198.51.100.53") / UDP(sport=40000, dport=53) / DNS(id=7, rd=1, qd=DNSQR(qname=name))
    records = [DNSRR(rrname=name, type="CNAME", ttl=60, rdata="eu1-ksc.edgekey.example.net"),
               DNSRR(rrname="eu1-ksc.edgekey.example.net", type="A", ttl=60, rdata="203.0.113.5")]
    a = IP(src="198.51.100.53", dst=C4) / UDP(sport=53, dport=40000) / DNS(id=7, qr=1, rd=1, ra=1, qd=DNSQR(qname=name),
                                                                       an=records)
    empty = IP(src="198.51.100.53", dst=C4) / UDP(sport=53, dport=40001) / DNS(id=8, qr=1, rd=1, ra=1, qd=DNSQR(qname=name))
    q2 = IP(src=C4, dst="198.51.100.53") / UDP(sport=40001, dport=53) / DNS(id=8, rd=1, qd=DNSQR(qname=name))
    recs = [(1000.0, bytes(Ether() / q)), (1000.01, bytes(Ether() / a)),
            (1100.0, bytes(Ether() / q2)), (1100.01, bytes(Ether() / empty))]
    path = tmp_path / "dns.pcap"
    path.write_bytes(_snapped(recs, snaplen))
    flows = analyze_file(path).flows.set_index("orig_p")
    row = flows.loc[40000]
    if cut:
        assert (row.verdict, row.dns_answers) == ("ok", "")
        assert row.detail == (f"{DNS_CUT_ANSWER}{name}: the bytes read of it end before the answer records its "
                              "header announces (a snaplen such as pktmon's 128 bytes; over TCP also a stream longer "
                              "than the 16 KiB read of it), so whether it gave an address is not known (if the "
                              "snaplen cut it: capture whole packets, tcpdump -s 0, pktmon --pkt-size 0)")
    else:
        assert (row.verdict, row.dns_answers, row.detail) == ("ok", "203.0.113.5", "")
    # (an answer announcing no record is NODATA whatever the snaplen: another lookup of the name got an
    # address only when the first was read whole)
    other = flows.loc[40001]
    assert DNS_CUT_ANSWER not in other.detail
    assert other.verdict == ("blocked" if cut else "ok")


@pytest.mark.parametrize("order", ["<", ">"], ids=["little", "big"])
def test_packets_dropped_per_block_are_said_as_a_statistics_block_says_them(tmp_path, order):
    """Break-it s54 (link types pass) #3: ``epb_dropcount`` (pcapng §4.3.1: the packets lost
    between this block's packet and the one before; xdpdump writes it, tshark reads it) and the
    obsolete Packet Block's ``drops_count`` were ignored: an answer the capture lost read as one
    direction captured, without a word. Summed per interface into the dropped-packets warning;
    options before and after it (epb_flags) are still read; every packet is still analysed."""
    import struct
    pytest.importorskip("scapy")
    from test_capture_drops import SYN, _block, _opt, drop_lines
    from kscc_traffic.capture.files import iter_frames, read_frames
    shb = _block(order, 0x0A0D0D0A, struct.pack(order + "IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = _block(order, 1, struct.pack(order + "HHI", 1, 0, 65535))
    pad = SYN + b"\0" * (-len(SYN) % 4)

    def epb(opts):
        body = struct.pack(order + "IIIII", 0, 0, 1000, len(SYN), len(SYN)) + pad
        return _block(order, 6, body + b"".join(_opt(order, c, v) for c, v in opts) + _opt(order, 0, b""))

    def opb(drops):
        return _block(order, 2, struct.pack(order + "HHIIII", 0, drops, 0, 1000, len(SYN), len(SYN)) + pad)

    q = lambda v: struct.pack(order + "Q", v)  # noqa: E731
    flags = struct.pack(order + "I", 0)
    blocks = [epb([]), epb([(4, q(3))]), epb([(2, flags), (4, q(4))]), epb([(4, q((1 << 64) - 1))]),
              opb(5), opb(0xFFFF), epb([(4, q(0))])]
    path = tmp_path / "drops.pcapng"
    path.write_bytes(shb + idb + b"".join(blocks))
    fr = read_frames(path)
    assert len(fr) == len(blocks)
    (line,) = drop_lines(fr.stats)
    assert "12 packets dropped" in line
    assert "interface 0: 5 (drops_count of obsolete Packet Blocks); interface 0: 7 (epb_dropcount)" in line
    for chunk in iter_frames(path, 200):
        pass
    assert drop_lines(chunk.stats) == [line]


@pytest.mark.parametrize("records, nano", [(20, True), (12, False)])
def test_nanoseconds_in_a_microsecond_pcap_are_read_as_nanoseconds(tmp_path, records, nano):
    """Break-it s54 (link types pass) #5: a writer put nanoseconds into a microsecond pcap
    (magic a1b2c3d4): each 10 ms step read as 10 s, a TCP connection split in two rows. When the
    first records' ts_usec are nearly all a million or more and all below 10^9 the file is read
    in nanoseconds, with a warning; too few records to tell: read as the magic says (the old
    'kept as read' warning)."""
    import struct
    from kscc_traffic.capture.files import iter_frames, read_frames
    frame = bytes(60)
    t0 = 1_700_000_000
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for k in range(records):
        ns = 5_000_000 + k * 10_000_000            # 10 ms steps, in nanoseconds
        out.append(struct.pack("<IIII", t0, ns, len(frame), len(frame)) + frame)
    path = tmp_path / "nano.pcap"
    path.write_bytes(b"".join(out))
    fr = read_frames(path)
    steps = [b - a for a, b in zip(fr.ts_ns[:-1].tolist(), fr.ts_ns[1:].tolist())]
    if nano:
        assert set(steps) == {10_000_000}
        assert any("16 of its first 16 records have a ts_usec of a million or more" in w
                   for w in fr.stats.warnings)
        chunks = [c for c in iter_frames(path, 300)]      # (the first 16 records decide, however the file is cut)
        assert [t for c in chunks for t in c.ts_ns.tolist()] == fr.ts_ns.tolist()
    else:
        assert set(steps) == {10_000_000_000}
        assert any("with ts_usec ≥ 1000000 (kept as read)" in w for w in fr.stats.warnings)


def _tcp(parts, port=23101, server="203.0.113.10", lost=(), close=True, t0=100.0, server_ttl=64):
    """(time, frame) records of a TCP connection 192.0.2.10:50000 -> server:port: handshake,
    ``parts`` ([(side 'c'/'s', bytes)], one segment each; the indexes in ``lost`` sent, the
    sequence numbers moving on, but not captured), then FIN both ways."""
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    seq = {"c": 1000, "s": 5000}
    ends = {"c": ("192.0.2.10", 50000), "s": (server, port)}
    out, t = [], t0

    def seg(side, flags, data=b"", keep=True):
        nonlocal t
        other = "s" if side == "c" else "c"
        (src, sp), (dst, dp) = ends[side], ends[other]
        pkt = Ether() / IP(src=src, dst=dst, ttl=server_ttl if side == "s" else 64) / TCP(
            sport=sp, dport=dp, flags=flags, seq=seq[side], ack=seq[other] if "A" in flags else 0) / data
        if keep:
            out.append((t, bytes(pkt)))
        t += 0.001
        seq[side] += len(data) + (1 if "S" in flags or "F" in flags else 0)

    seg("c", "S")
    seg("s", "SA")
    seg("c", "A")
    for k, (side, data) in enumerate(parts):
        seg(side, "PA", data, keep=k not in lost)
    if close:
        seg("c", "FA")
        seg("s", "FA")
        seg("c", "A")
    return out


def _refused_flights(tmp_path, org="Example Corp", cn="Corp Inspection CA"):
    """A real TLS 1.2 handshake whose client (verifying, no CA loaded) refuses the certificate
    issued by ``O=org,CN=cn``: (ClientHello, the server's records, the client's alert)."""
    import ssl
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    from test_protocols_tls import run_handshake
    from test_tls_view_cut import _flights
    issuer = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                        x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cs, ss, err = run_handshake(tmp_path, ssl.TLSVersion.TLSv1_2, "eu1.ksc.kaspersky.com", ["eu1.ksc.kaspersky.com"],
                                verify=True, issuer=issuer)
    assert err is not None
    c, s = _flights(cs), _flights(ss)
    return c[0], s, b"".join(c[1:])


def test_a_tls12_certificate_the_capture_lost_is_not_said_to_be_a_proxys(tmp_path):
    """Break-it s54 (interception pass) #3: the server's TLS 1.2 Certificate lost by the capture
    (the client acknowledged it), then the client's unknown_ca: "a TLS-inspecting proxy sits in the
    path" was asserted. Now tls_failed, saying the certificate is not in the bytes captured and
    naming both causes, as for TLS 1.3; the same handshake captured whole stays intercepted."""
    pytest.importorskip("cryptography")
    from pcapbuild import pcap_bytes
    from kscc_traffic import analyze_file
    from kscc_traffic.classify import CERT_UNSEEN
    hello, server, alert = _refused_flights(tmp_path)
    cert = next(k for k, r in enumerate(server) if r[5] == 11)     # (the Certificate handshake message)
    parts = [("c", hello)] + [("s", r) for r in server] + [("c", alert)]
    rows = {}
    for name, lost in (("lost", (1 + cert,)), ("whole", ())):
        path = tmp_path / f"{name}.pcap"
        path.write_bytes(pcap_bytes(_tcp(parts, lost=lost)))
        rows[name] = analyze_file(path).flows.iloc[0]
    assert (rows["lost"].verdict, rows["lost"].reason) == ("blocked", "tls_failed")
    assert rows["lost"].detail.startswith(f"the client rejected the server's certificate (unknown_ca (48)): {CERT_UNSEEN}")
    assert (rows["whole"].verdict, rows["whole"].reason) == ("blocked", "tls_intercepted")


def test_an_inspection_products_certificate_with_no_name_asked_is_interception(tmp_path):
    """Break-it s54 (interception pass) #2: no SNI, no DNS answer in the capture, a FortiGate's
    own certificate (its serial number as the name) refused on TCP 23101: host_mismatch, "another
    program's traffic" (exit 0 with --fail-on blocked). The only name was the proxy's: now
    blocked, tls_intercepted, as with the DNS answer in the capture. On 443, shared with every
    browser, the certificate's name still says another server's traffic."""
    pytest.importorskip("cryptography")
    from pcapbuild import pcap_bytes
    from kscc_traffic import load_rules
    from kscc_traffic.analyze import analyze_packets
    from kscc_traffic.capture.decode import decode
    from kscc_traffic.capture.files import read_frames
    from kscc_traffic.classify import _judge
    hello, server, alert = _refused_flights(tmp_path, "Fortinet", "FGT60FTK2209XXXX")
    parts = [("c", hello)] + [("s", r) for r in server] + [("c", alert)]
    rules = load_rules()
    for port, want in ((23101, ("blocked", "tls_intercepted")), (443, ("unexpected", "host_mismatch"))):
        path = tmp_path / f"forti{port}.pcap"
        path.write_bytes(pcap_bytes(_tcp(parts, port=port)))
        table, _ = analyze_packets(decode(read_frames(path)), rules, path.name, internal=True)
        row = table.iloc[0].to_dict()
        assert row["sni"] == "eu1.ksc.kaspersky.com"
        # (the same flow with no name asked: its ClientHello without SNI, no lookup captured)
        row.update(sni="", server_name="", dns_name="", cert_names="FGT60FTK2209XXXX")
        purpose, verdict, reason, detail = _judge(row, rules)
        assert (verdict, reason) == want, detail
        if port == 23101:
            assert "a Fortinet FortiGate re-signs the connection (TLS inspection)" in detail


def _connect(target, answer, tunnel=()):
    """Parts of a CONNECT to ``target`` through a proxy, answered ``answer``, then ``tunnel``."""
    head = f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode()
    return [("c", head), ("s", answer)] + list(tunnel)


def test_a_connect_to_a_cloud_name_on_a_distribution_point_port_is_the_cloud_on_the_wrong_port(tmp_path):
    """Break-it s54 (interception pass) #1: CONNECT eu1.ksc.kaspersky.com:13000 through a proxy
    was dp_agent_connection ``ok`` ("verified"), a 403 advised as a proxy allow rule; sent
    directly it is host_mismatch, the agent set up for an on-premises server. Through the proxy
    now the same, the name from the proxy request."""
    from pcapbuild import pcap_bytes
    from kscc_traffic import analyze_file
    from kscc_traffic.classify import ONPREM_PORT
    for answer, failed in ((b"HTTP/1.1 200 Connection established\r\n\r\n", False),
                           (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", True)):
        path = tmp_path / "connect.pcap"
        path.write_bytes(pcap_bytes(_tcp(_connect("eu1.ksc.kaspersky.com:13000", answer), port=3128,
                                         server="198.51.100.1")))
        row = analyze_file(path).flows.iloc[0]
        assert (row.purpose, row.verdict, row.reason) == ("dp_agent_connection", "unexpected", "host_mismatch")
        assert row.detail.startswith(f"{ONPREM_PORT} (TCP 13000): eu1.ksc.kaspersky.com (from the proxy request) "
                                     "is a Kaspersky cloud name, not a distribution point")
        assert ("the connection itself failed (rejected)" in row.detail) == failed


def test_a_connect_tunnel_that_carried_nothing_shows_the_port_open_not_the_purpose_verified(tmp_path):
    """Break-it s54 (interception pass) #6: a CONNECT answered 200, then nothing through the tunnel:
    "verified". It shows the proxy reached the port, as a bare TCP handshake does: "port open"."""
    pytest.importorskip("cryptography")
    from pcapbuild import pcap_bytes
    from kscc_traffic import analyze_file, load_rules
    from kscc_traffic.classify import TUNNEL_EMPTY
    from kscc_traffic.report import readiness
    ok = b"HTTP/1.1 200 Connection established\r\n\r\n"
    path = tmp_path / "empty.pcap"
    path.write_bytes(pcap_bytes(_tcp(_connect("eu1.ksc.kaspersky.com:23101", ok), port=3128, server="198.51.100.1")))
    flows = analyze_file(path).flows
    assert (flows.iloc[0].verdict, flows.iloc[0].detail) == ("ok", TUNNEL_EMPTY)
    status = readiness(flows, load_rules()).set_index("purpose").loc["agent_connection", "status"]
    assert status == "port open"


def test_a_client_hello_answered_by_a_200_page_is_a_refusal(tmp_path):
    """Break-it s54 (interception pass) #7: a ClientHello on 443 answered "HTTP/1.1 200 OK" with an
    HTML page (a filter's block page): unexpected/not_tls, --fail-on blocked exit 0. No web server
    serves a page for a ClientHello: blocked/rejected, as a 403 there is."""
    from pcapbuild import pcap_bytes
    from kscc_traffic import analyze_file
    from kscc_traffic.classify import FILTER_ANSWER, PAGE_ANSWER
    page = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 30\r\n\r\n<html>Access denied</html>\r\n\r\n"
    path = tmp_path / "page.pcap"
    path.write_bytes(pcap_bytes(_tcp([("c", _hello()), ("s", page)], port=443)))
    row = analyze_file(path).flows.iloc[0]
    assert (row.purpose, row.verdict, row.reason) == ("discovery", "blocked", "rejected")
    assert row.detail == f"{FILTER_ANSWER}200 to the ClientHello where TLS is documented: {PAGE_ANSWER}"


@pytest.mark.parametrize("ends", ["server fin", "works"])
def test_a_device_nearer_than_the_server_answering_its_connection_is_told_on_a_failure(tmp_path, ends):
    """Break-it s54 (interception pass) #5: the hint that a device nearer than the server answered
    the connection in its place (its SYN-ACK 13 hops nearer than the server's packets on an
    earlier connection) was given only when it also reset it; a close right after the ClientHello
    (or a TLS 1.3 certificate refused, where it tells a proxy from the server's own certificate)
    got none. Now told on a failed connection; not on one that worked (the same whole or in chunks)."""
    pytest.importorskip("scapy")
    import chunkcmp
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from pcapbuild import pcap_bytes
    from test_breakit_s53 import _conn
    from kscc_traffic.inspect import SYNACK_IN_PLACE
    server = _conn(443, 53000, 1000.0, 50)
    if ends == "works":
        import ssl
        from test_protocols_tls import run_handshake
        from test_tls_view_cut import _flights, _interleaved
        cs, ss, err = run_handshake(tmp_path, ssl.TLSVersion.TLSv1_2, "eu1.ksc.kaspersky.com",
                                    ["eu1.ksc.kaspersky.com"])
        assert err is None
        proxied = _tcp(_interleaved(cs, ss), t0=1010.0, server_ttl=63)
    else:
        proxied = _conn(23101, 53001, 1010.0, 63, data=False)
        end = 101 + len(_hello())
        fin = Ether() / IP(src=S4, dst="192.0.2.20", ttl=63) / TCP(sport=23101, dport=53001, flags="FA", seq=901, ack=end)
        proxied.append((1010.04, bytes(fin)))
    path = tmp_path / "inplace.pcap"
    path.write_bytes(pcap_bytes(sorted(server + proxied, key=lambda r: r[0])))
    flows = chunkcmp.assert_same(path, [600, 1200])
    row = flows[flows.resp_p == 23101].iloc[0]
    said = (f"{SYNACK_IN_PLACE}TTL 63, the server's packets on an earlier connection with 50: probably sent by a "
            "device 13 hops nearer that answered the connection in the server's place (a transparent proxy, or a "
            "firewall terminating TCP), which then spoke for the server")
    if ends == "works":
        assert row.verdict == "ok" and said not in row.detail
    else:
        assert (row.verdict, row.reason) == ("blocked", "tls_failed")
        assert row.detail.startswith("TLS handshake aborted: the server closed the connection (FIN")
        assert row.detail.endswith(f"; {said}")


def test_fragment_lost_flows_grouped_are_judged_as_each_alone(tmp_path):
    """The verdicts are made once per group of flows whose judged columns agree: two ClientHellos
    lost as fragments, of different sizes, quote each its own byte count (the grouped judgement
    equals the per-row one); a third whose server acknowledged its fragments (a capture filtered
    by port keeps only first fragments) is no loss, judged as before (review s54 #1)."""
    pytest.importorskip("scapy")
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw
    from pcapbuild import pcap_bytes
    from test_classify_fast import assert_same as assert_same_as_reference
    from kscc_traffic import load_rules
    from kscc_traffic.analyze import analyze_packets
    from kscc_traffic.capture.decode import decode
    from kscc_traffic.capture.files import read_frames
    recs = []
    for k, (pad, acked) in enumerate(((0, False), (200, False), (0, True))):
        t0, sport = 1000.0 + 50 * k, 50100 + k
        hello = _hello() + bytes(pad)
        pk = lambda src, dst, **kw: IP(src=src, dst=dst) / TCP(**kw)  # noqa: E731
        end = 101 + len(hello)
        recs += [(t0, pk(C4, S4, sport=sport, dport=23101, flags="S", seq=100)),
                 (t0 + 0.02, pk(S4, C4, sport=23101, dport=sport, flags="SA", seq=900, ack=101)),
                 (t0 + 0.021, pk(C4, S4, sport=sport, dport=23101, flags="A", seq=101, ack=901))]
        data = pk(C4, S4, sport=sport, dport=23101, flags="PA", seq=101, ack=901) / Raw(hello)
        recs.append((t0 + 0.022, _fragments(data, False, 64, 0x300 + k)[0]))      # (the first fragment only)
        if acked:
            recs.append((t0 + 0.05, pk(S4, C4, sport=23101, dport=sport, flags="A", seq=901, ack=end)))
        recs.append((t0 + 31.0, pk(C4, S4, sport=sport, dport=23101, flags="RA", seq=end, ack=901)))
    path = tmp_path / "three.pcap"
    path.write_bytes(pcap_bytes([(t, bytes(Ether() / p)) for t, p in recs]))
    table, _ = analyze_packets(decode(read_frames(path)), load_rules(), path.name, internal=True)
    tcp = table[(table.proto == "tcp") & (table.resp_p == 23101)].sort_values("orig_p")
    got = [(r.verdict, FRAGS_LOST in r.detail, f"(of which {int(r.orig_bytes):,} bytes were captured)" in r.detail) for r in tcp.itertuples()]
    assert got == [("blocked", True, True), ("blocked", True, True), ("ok", False, False)], tcp.detail.tolist()
    assert tcp.orig_bytes.nunique() == 2
    assert_same_as_reference(table.drop(columns=["purpose", "verdict", "reason", "detail"]), load_rules())


@pytest.mark.parametrize("then", ["capture ends", "server resets it"])
def test_a_fragmented_client_hello_is_no_loss_before_anything_shows_one(tmp_path, then):
    """False-positive hunt s54 #1, #2: the ClientHello's later fragments missing (a capture
    filtered by port keeps only first fragments), then the capture ended at once, or the server
    reset the connection acknowledging the whole ClientHello (it had it): no "ClientHello never
    received" (the capture's end, as for a ClientHello sent whole, shows no loss; a reset's
    acknowledgement counts as one)."""
    pytest.importorskip("scapy")
    from scapy.layers.inet import TCP
    from scapy.layers.l2 import Ether
    from pcapbuild import pcap_bytes
    from kscc_traffic import analyze_file
    recs = _fragmented_hello(False, "last")[:-1]                   # (without the client's reset 30 s later)
    if then == "server resets it":
        end = 101 + len(_hello())
        recs.append((1000.05, bytes(Ether() / _ip(False, S4, C4) / TCP(sport=23101, dport=50100, flags="RA",
                                                                        seq=901, ack=end))))
    path = tmp_path / "tail.pcap"
    path.write_bytes(pcap_bytes(recs))
    row = analyze_file(path).flows.set_index("resp_p").loc[23101]
    assert FRAGS_LOST not in row.detail, row.detail


def test_another_route_to_the_server_is_no_device_answering_in_its_place(tmp_path):
    """False-positive hunt s54 #3: the server's packets 3 hops nearer on a later connection (another
    anycast site or route), no reset, that connection failed: no "answered in the server's place"
    hint (a SYN-ACK alone needs SYNACK_PLACE_HOPS)."""
    pytest.importorskip("scapy")
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    from pcapbuild import pcap_bytes
    from test_breakit_s53 import _conn
    from kscc_traffic import analyze_file
    from kscc_traffic.inspect import SYNACK_IN_PLACE, SYNACK_PLACE_HOPS
    assert SYNACK_PLACE_HOPS > 3
    proxied = _conn(23101, 53001, 1010.0, 53, data=False)
    end = 101 + len(_hello())
    proxied.append((1010.04, bytes(Ether() / IP(src=S4, dst="192.0.2.20", ttl=53)
                                   / TCP(sport=23101, dport=53001, flags="FA", seq=901, ack=end))))
    path = tmp_path / "route.pcap"
    path.write_bytes(pcap_bytes(sorted(_conn(443, 53000, 1000.0, 50) + proxied, key=lambda r: r[0])))
    row = analyze_file(path).flows.set_index("resp_p").loc[23101]
    assert row.verdict == "blocked" and SYNACK_IN_PLACE not in row.detail, row.detail
