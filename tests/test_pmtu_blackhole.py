"""A path-MTU black hole (break-it 13 s1: full-size segments dropped on the path, the ICMP
"fragmentation needed" / "packet too big" that should have shrunk them filtered, smaller ones
delivered): the flow's detail gets a hint, its verdict and reason stay what they were. Seen from
the receiver (the lost bytes never captured, later ones captured, a duplicate acknowledgement,
the receiver closing) and from the sender (the full-size segment sent again and again, never
acknowledged, a duplicate acknowledgement after its later bytes), over IPv4 and IPv6, in both
directions. No hint where path-MTU discovery works (an ICMP error, smaller segments sent
again and acknowledged), for a lost segment recovered, for a capture cut mid-transfer, nor for
a filter dropping all of the server's packets. Whole = chunked = live = tshark engine = grouped
judgement."""
from __future__ import annotations

import shutil

import pytest
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6PacketTooBig, IPv6

from chunkcmp import assert_same, whole, write
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth, ip_of
from test_classify_fast import assert_same as assert_same_as_reference
from kscc_traffic.analyze import analyze_file, analyze_packets
from kscc_traffic.capture.decode import decode
from kscc_traffic.capture.files import read_frames
from kscc_traffic.classify import CLASS_COLUMNS, classify
from kscc_traffic.inspect import MTU_HINT
from kscc_traffic.rules import load_rules

RULES = load_rules()
V4 = ("192.0.2.10", 50000), ("198.51.100.20", 23101)
V6 = ("2001:db8:1::10", 50000), ("2001:db8:2::20", 23101)
ISN_C, ISN_S = 1000, 5000
REC = b"\x17\x03\x03\x00\x3b" + bytes(59)      # a 64-byte TLS record
# (who closed and after what, newcomer 23 F20)
TAIL = {"server": "TLS handshake aborted: the client closed the connection (FIN, S2) after the server's last answer, "
                  "sending nothing after it, no alert either"}


class Conn:
    """Packets of one TCP connection: ``up`` client -> server, ``dn`` server -> client."""

    def __init__(self, v6: bool = False):
        (self.ch, self.cp), (self.sh, self.sp) = V6 if v6 else V4
        self.recs: list[tuple[float, bytes]] = []

    def up(self, t, data=b"", **kw):
        self.recs.append((t, bytes(eth(ip_of(self.ch, self.sh) / TCP(sport=self.cp, dport=self.sp, **kw) / data))))

    def dn(self, t, data=b"", **kw):
        self.recs.append((t, bytes(eth(ip_of(self.sh, self.ch) / TCP(sport=self.sp, dport=self.cp, **kw) / data,
                                       src=SERVER_MAC, dst=CLIENT_MAC))))

    def opened(self, rounds: int = 4):
        """Handshake and ``rounds`` request/answer exchanges of one record each (more packets
        than a chunked analysis keeps whole): (client seq, server seq, next time)."""
        self.up(1.0, flags="S", seq=ISN_C)
        self.dn(1.01, flags="SA", seq=ISN_S, ack=ISN_C + 1)
        self.up(1.02, flags="A", seq=ISN_C + 1, ack=ISN_S + 1)
        c, s, t = ISN_C + 1, ISN_S + 1, 1.03
        for _ in range(rounds):
            self.up(t, REC, flags="PA", seq=c, ack=s)
            c += len(REC)
            self.dn(t + .01, REC, flags="PA", seq=s, ack=c)
            s += len(REC)
            self.up(t + .02, flags="A", seq=c, ack=s)
            t += .03
        return c, s, t


def _download(side: str, v6: bool = False, big: int = 1448, small: int = 600, recovered: bool = False,
              closed: bool = True, dup: bool = True, resends: int = 5, closer: str = "client"):
    """The server answers with a ``big``-byte segment and a ``small`` one; the big one never
    arrives. ``side``: where the capture is, 'client' (the big segment not in it) or 'server'
    (it is, sent again ``resends`` times, 0.2 s after the first then doubling). ``recovered``:
    the big one gets through at its 2nd sending (acknowledged). ``closed``: ``closer`` closes
    12 s later ('client': FIN; 'server': FIN, 'server-rst': RST) (else the capture ends).
    ``dup``: the client sends a duplicate acknowledgement when the small one arrives."""
    k = Conn(v6)
    c, s, t = k.opened()
    payload = bytes(range(256)) * 8
    if side == "server":
        k.dn(t, payload[:big], flags="A", seq=s, ack=c)
    k.dn(t + .001, payload[:small], flags="PA", seq=s + big, ack=c)
    if dup:
        k.up(t + .002, flags="A", seq=c, ack=s)
    if recovered:
        k.dn(t + .2, payload[:big], flags="A", seq=s, ack=c)
        k.up(t + .201, flags="A", seq=c, ack=s + big + small)
        k.up(t + 1, flags="FA", seq=c, ack=s + big + small)
        k.dn(t + 1.01, flags="FA", seq=s + big + small, ack=c + 1)
        k.up(t + 1.02, flags="A", seq=c + 1, ack=s + big + small + 1)
        return k.recs
    if side == "server":
        for n in range(resends):
            k.dn(t + .2 * 2 ** n, payload[:big], flags="A", seq=s, ack=c)
    if closed and closer == "client":
        k.up(t + 12, flags="FA", seq=c, ack=s)
        k.dn(t + 12.05, flags="A", seq=s + big + small, ack=c + 1)
    elif closed and closer == "server":
        k.dn(t + 12, flags="FA", seq=s + big + small, ack=c)
    elif closed:
        k.dn(t + 12, flags="RA", seq=s + big + small, ack=c)
    return k.recs


def _check_same(path, tmp_path, monkeypatch) -> None:
    """Whole = chunked (small chunks) = live (2 packets kept whole per flow) = tshark engine;
    the grouped judgement = the per-row one on the table with the internal columns."""
    assert_same(path, [600, 1500, 4096])
    from test_live_session import assert_live_same
    assert_live_same(path, monkeypatch, step=3)
    table, _ = analyze_packets(decode(read_frames(path)), RULES, path.name, internal=True)
    assert "mtu_hint" in table.columns
    assert_same_as_reference(table.drop(columns=list(CLASS_COLUMNS)), RULES)
    if shutil.which("tshark"):
        a = analyze_file(path, RULES).flows.sort_values("uid").reset_index(drop=True)
        b = analyze_file(path, RULES, engine="tshark").flows.sort_values("uid").reset_index(drop=True)
        for col in a.columns:
            assert a[col].tolist() == b[col].tolist(), col


def _tcp_row(path):
    flows, _ = whole(path)
    tcp = flows[flows["proto"] == "tcp"]
    assert len(tcp) == 1, flows[["proto", "history"]]
    return tcp.iloc[0]


def _hint(side: str, size: int, at: int) -> str:
    return MTU_HINT.format(side=side, size=size, at=at)


def _assert_only_hint_added(path, hint: str) -> None:
    """The flow's verdict and reason are those judged without the hint, its detail theirs with
    ``hint`` appended."""
    table, _ = analyze_packets(decode(read_frames(path)), RULES, path.name, internal=True)
    tcp = table[table["proto"] == "tcp"]
    assert list(tcp["mtu_hint"]) == [hint]
    blank = classify(tcp.drop(columns=list(CLASS_COLUMNS)).assign(mtu_hint=""), RULES)
    (r,), (b,) = tcp.to_dict("records"), blank.to_dict("records")
    assert (r["verdict"], r["reason"]) == (b["verdict"], b["reason"])
    assert r["detail"] == (f"{b['detail']}; {hint}" if b["detail"] else hint)


@pytest.mark.parametrize("side", ["client", "server"])
@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
def test_full_size_segment_lost_gets_the_hint(tmp_path, monkeypatch, side, v6):
    big = 1428 if v6 else 1448
    path = write(tmp_path, _download(side, v6=v6, big=big), name=f"bh_{side}_{int(v6)}.pcap")
    # (4 records of 64 bytes came before: the lost bytes start at the server's 257th)
    hint = _hint("server", big, 257)
    assert _tcp_row(path)["detail"].endswith(hint)
    _assert_only_hint_added(path, hint)
    _check_same(path, tmp_path, monkeypatch)


def test_real_handshake_keeps_its_verdict(tmp_path, monkeypatch):
    """A ClientHello answered by a server flight whose first full-size segment never arrives
    (break-it 13's s1_blackhole_v4, client side): blocked/tls_failed as before, the hint after
    its detail."""
    k = Conn()
    hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(506)
    k.up(1.0, flags="S", seq=ISN_C)
    k.dn(1.01, flags="SA", seq=ISN_S, ack=ISN_C + 1)
    k.up(1.02, flags="A", seq=ISN_C + 1, ack=ISN_S + 1)
    k.up(1.03, hello, flags="PA", seq=ISN_C + 1, ack=ISN_S + 1)
    c = ISN_C + 1 + len(hello)
    k.dn(1.04, flags="A", seq=ISN_S + 1, ack=c)
    k.dn(1.07, bytes(715), flags="PA", seq=ISN_S + 1 + 1448, ack=c)
    k.up(1.071, flags="A", seq=c, ack=ISN_S + 1)
    k.up(13.05, flags="FA", seq=c, ack=ISN_S + 1)
    k.dn(13.1, flags="A", seq=ISN_S + 1 + 2163, ack=c + 1)
    path = write(tmp_path, k.recs)
    r = _tcp_row(path)
    hint = _hint("server", 1448, 1)
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed")
    assert r["detail"] == f"{TAIL['server']}; {hint}"
    _assert_only_hint_added(path, hint)
    _check_same(path, tmp_path, monkeypatch)


def test_upload_lost_on_the_way_to_the_server(tmp_path, monkeypatch):
    """The client's full-size segment lost (a capture at the server: not in it), its later bytes
    arrived (the server acknowledges its old point again), the server closes: the client's
    bytes named."""
    k = Conn()
    c, s, t = k.opened()
    k.up(t + .001, bytes(500), flags="PA", seq=c + 1448, ack=s)
    k.dn(t + .002, flags="A", seq=s, ack=c)
    k.dn(t + 10, flags="FA", seq=s, ack=c)
    k.up(t + 10.01, flags="A", seq=c + 1948, ack=s + 1)
    path = write(tmp_path, k.recs)
    assert _tcp_row(path)["detail"].endswith(_hint("client", 1448, 257))
    _assert_only_hint_added(path, _hint("client", 1448, 257))
    _check_same(path, tmp_path, monkeypatch)


def test_pmtud_working_gets_no_hint(tmp_path, monkeypatch):
    """Seen from the server: its full-size segment, the router's ICMP error, the same bytes sent
    again in smaller segments, all acknowledged; the connection closes normally."""
    for v6 in (False, True):
        k = Conn(v6)
        c, s, t = k.opened()
        data = bytes(2000)
        k.dn(t, data[:1448], flags="A", seq=s, ack=c)
        rtr = "2001:db8:2::1" if v6 else "198.51.100.1"
        quoted = bytes(ip_of(k.sh, k.ch) / TCP(sport=k.sp, dport=k.cp, flags="A", seq=s, ack=c) / data[:1448])
        err = (IPv6(src=rtr, dst=k.sh) / ICMPv6PacketTooBig(mtu=1280) / quoted[:1232] if v6 else
               IP(src=rtr, dst=k.sh) / ICMP(type=3, code=4, nexthopmtu=1280) / quoted[:548])
        k.recs.append((t + .001, bytes(eth(err, src=CLIENT_MAC, dst=SERVER_MAC))))
        k.dn(t + .002, data[:1200], flags="A", seq=s, ack=c)
        k.dn(t + .003, data[1200:1448], flags="A", seq=s + 1200, ack=c)
        k.dn(t + .004, data[1448:], flags="PA", seq=s + 1448, ack=c)
        k.up(t + .005, flags="A", seq=c, ack=s + 2000)
        k.up(t + .006, flags="FA", seq=c, ack=s + 2000)
        k.dn(t + .007, flags="FA", seq=s + 2000, ack=c + 1)
        k.up(t + .008, flags="A", seq=c + 1, ack=s + 2001)
        path = write(tmp_path, k.recs, name=f"pmtud{int(v6)}.pcap")
        r = _tcp_row(path)
        assert (r["verdict"], r["detail"]) == ("ok", ""), r["detail"]
        _check_same(path, tmp_path, monkeypatch)


@pytest.mark.parametrize("case", ["small-lost-recovered", "big-lost-recovered", "capture-cut", "all-dropped",
                                  "small-hole"])
def test_no_hint(tmp_path, monkeypatch, case):
    """A small segment lost and sent again (acknowledged); a full-size one likewise; the capture
    ending after the duplicate acknowledgement (no close); a filter dropping all the server's
    packets (seen from the server: no duplicate acknowledgement, the client closes); a hole of
    fewer bytes than a full-size segment (a lost small segment, the client closing)."""
    recs = {"small-lost-recovered": lambda: _download("client", big=300, small=300, recovered=True),
            "big-lost-recovered": lambda: _download("client", recovered=True),
            "capture-cut": lambda: _download("client", closed=False),
            "all-dropped": lambda: _download("server", dup=False),
            "small-hole": lambda: _download("client", big=700)}[case]()
    path = write(tmp_path, recs, name=f"{case}.pcap")
    r = _tcp_row(path)
    assert "black hole" not in r["detail"], r["detail"]
    _check_same(path, tmp_path, monkeypatch)


def _upload(closer, v6=True, resends=4, first=.3):
    """Break-it 25 F2 (s07 flow C): the client's 1,795-byte ClientHello in a full-size segment
    and a smaller one, seen where the client is; the server acknowledges its old point again
    when the smaller one arrives; the full-size one is sent ``resends`` more times (``first``
    seconds after, then doubling), never acknowledged; then ``closer`` closes 9 s after the
    start: 'client-rst', 'client-fin', 'server-rst' or None (the capture ends)."""
    k = Conn(v6)
    hello = b"\x16\x03\x01\x07\x03\x01\x00\x06\xff\x03\x03" + bytes(1795 - 11)
    mss = 1440 if v6 else 1460
    k.up(1.0, flags="S", seq=ISN_C)
    k.dn(1.03, flags="SA", seq=ISN_S, ack=ISN_C + 1)
    k.up(1.0302, flags="A", seq=ISN_C + 1, ack=ISN_S + 1)
    c, s = ISN_C + 1, ISN_S + 1
    k.up(1.031, hello[:mss], flags="PA", seq=c, ack=s)
    k.up(1.0311, hello[mss:], flags="PA", seq=c + mss, ack=s)
    k.dn(1.06, flags="A", seq=s, ack=c)
    for n in range(resends):
        k.up(1.031 + first * 2 ** n, hello[:mss], flags="PA", seq=c, ack=s)
    end = c + len(hello)
    if closer == "client-rst":
        k.up(10, flags="RA", seq=end, ack=s)
    elif closer == "client-fin":
        k.up(10, flags="FA", seq=end, ack=s)
    elif closer == "server-rst":
        k.dn(10, flags="RA", seq=s, ack=c)
    return k.recs, mss


@pytest.mark.parametrize("closer", ["client-rst", "client-fin", "server-rst", None])
@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
def test_upload_black_hole_whoever_closes(tmp_path, monkeypatch, closer, v6):
    """The full-size segment sent 5 times, never acknowledged, the smaller later one
    acknowledged (a duplicate acknowledgement): the hint, whether the client gives up (RST, FIN),
    the server resets or nobody closes (break-it 25 F2: only the server's reset got it)."""
    recs, mss = _upload(closer, v6)
    path = write(tmp_path, recs, name=f"up_{closer}_{int(v6)}.pcap")
    hint = _hint("client", mss, 1)
    r = _tcp_row(path)
    # (the capture ending 4.5 s after the ClientHello with nobody closing: not judged failed)
    assert (r["verdict"], r["reason"]) == (("ok", "") if closer is None else ("blocked", "tls_failed"))
    assert r["detail"].endswith(hint), r["detail"]
    _assert_only_hint_added(path, hint)
    _check_same(path, tmp_path, monkeypatch)


@pytest.mark.parametrize("closer", ["server", "server-rst"])
@pytest.mark.parametrize("closed", [True, False])
def test_download_black_hole_sender_closes_or_nobody(tmp_path, monkeypatch, closer, closed):
    """The other direction, seen where the server is: its full-size segment sent 6 times, the
    client's duplicate acknowledgement after the smaller one; the server gives up (FIN, RST)
    or the capture ends."""
    path = write(tmp_path, _download("server", closed=closed, closer=closer),
                 name=f"dn_{closer}_{int(closed)}.pcap")
    hint = _hint("server", 1448, 257)
    assert _tcp_row(path)["detail"].endswith(hint)
    _assert_only_hint_added(path, hint)
    _check_same(path, tmp_path, monkeypatch)


@pytest.mark.parametrize("case", ["one-resend", "two-resends-fast", "one-resend-download"])
def test_few_resends_without_a_close_get_no_hint(tmp_path, monkeypatch, case):
    """Where the receiver did not close: a full-size segment sent twice (one retransmission),
    or three times within less than a second, is an ordinary loss the capture ended on, not a
    black hole."""
    if case == "one-resend-download":
        recs = _download("server", closed=False, resends=1)
    else:
        recs, _ = _upload(None, resends=1 if case == "one-resend" else 2, first=.2 if case == "one-resend" else .25)
    path = write(tmp_path, recs, name=f"{case}.pcap")
    assert "black hole" not in _tcp_row(path)["detail"]
    _check_same(path, tmp_path, monkeypatch)


def test_sender_fin_then_a_long_capture_same_in_every_reading(tmp_path, monkeypatch):
    """The server's full-size segment sent 7 times, the client sending data of its own between
    (so its duplicate acknowledgement is neither first nor last of its time slot), the server's
    FIN and its copies, then 60 s more of another flow: a chunked analysis summarises the
    connection after the FIN and keeps the duplicate acknowledgement all the same (the client's
    first packet after the server's furthest data segment)."""
    k = Conn()
    c, s, t = k.opened()
    payload = bytes(range(256)) * 8
    k.dn(t, payload[:1448], flags="A", seq=s, ack=c)
    k.dn(t + .001, payload[:600], flags="PA", seq=s + 1448, ack=c)
    k.up(t + .002, flags="A", seq=c, ack=s)
    for n in range(6):
        k.dn(t + .2 * 2 ** n, payload[:1448], flags="A", seq=s, ack=c)
        k.up(t + .2 * 2 ** n + .001, b"y" * 50, flags="PA", seq=c, ack=s)
        c += 50
        k.dn(t + .2 * 2 ** n + .002, flags="A", seq=s + 2048, ack=c)
    for j in range(20):
        k.dn(t + 15 + j, flags="FA", seq=s + 2048, ack=c)
    other = eth(ip_of("192.0.2.77", "198.51.100.9") / UDP(sport=5000, dport=5001) / (b"u" * 100))
    recs = sorted(k.recs + [(t + 15 + j * .3, bytes(other)) for j in range(200)], key=lambda r: r[0])
    path = write(tmp_path, recs, name="fin_long.pcap")
    hint = _hint("server", 1448, 257)
    assert _tcp_row(path)["detail"].endswith(hint)
    _check_same(path, tmp_path, monkeypatch)
