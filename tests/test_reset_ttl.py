"""A TCP reset sent by a device on the path (break-it 19 F11: a firewall or IPS ending the
connection, a DPI reset injection): its TTL (IPv6: hop limit) is not the one of its sender's other
packets. The flow's detail gets a hint naming both values; verdict and reason stay what they were.
No hint when the reset's TTL is its sender's (within RESET_TTL_HOPS - 1 hops farther; from nearer,
RESET_NEARER_HOPS is enough), when the sender's
first packet is the reset, or without any TTL. Whole = chunked = live = tshark engine = grouped
judgement; the fast decoder's ``ttl`` column = the slow path's."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
from scapy.layers.inet import TCP

from chunkcmp import assert_same, whole, write
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth, ip_of
from test_classify_fast import assert_same as assert_same_as_reference
from kscc_traffic.analyze import analyze_file, analyze_packets
from kscc_traffic.capture.decode import decode
from kscc_traffic.capture.files import read_frames
from kscc_traffic.classify import CLASS_COLUMNS, classify
from kscc_traffic.inspect import RESET_TTL_HOPS
from kscc_traffic.rules import load_rules

RULES = load_rules()
V4 = ("192.0.2.10", 50000), ("198.51.100.20", 23101)
V6 = ("2001:db8:1::10", 50000), ("2001:db8:2::20", 23101)
ISN_C, ISN_S = 1000, 5000
HELLO = b"\x16\x03\x01\x00\xfc\x01\x00\x00\xf8\x03\x03" + bytes(248)
SERVER_FLIGHT = b"\x16\x03\x03\x00\x5a\x02\x00\x00\x56\x03\x03" + bytes(86)
WHERE = "probably sent by a device on the path (a firewall or IPS ending the connection)"


class Conn:
    """Packets of one TCP connection; ``up`` client -> server (TTL 64 unless given), ``dn`` server
    -> client (TTL 50: the server is 14 hops away, unless given)."""

    def __init__(self, v6: bool = False):
        (self.ch, self.cp), (self.sh, self.sp) = V6 if v6 else V4
        self.v6 = v6
        self.recs: list[tuple[float, bytes]] = []

    def _ip(self, src, dst, ttl):
        ip = ip_of(src, dst)
        if self.v6:
            ip.hlim = ttl
        else:
            ip.ttl = ttl
        return ip

    def up(self, t, data=b"", ttl=64, **kw):
        self.recs.append((t, bytes(eth(self._ip(self.ch, self.sh, ttl) / TCP(sport=self.cp, dport=self.sp, **kw)
                                       / data))))

    def dn(self, t, data=b"", ttl=50, **kw):
        self.recs.append((t, bytes(eth(self._ip(self.sh, self.ch, ttl) / TCP(sport=self.sp, dport=self.cp, **kw)
                                       / data, src=SERVER_MAC, dst=CLIENT_MAC))))

    def hello(self) -> int:
        """Handshake and ClientHello, acknowledged; returns the client's next sequence number."""
        self.up(1.0, flags="S", seq=ISN_C)
        self.dn(1.01, flags="SA", seq=ISN_S, ack=ISN_C + 1)
        self.up(1.02, flags="A", seq=ISN_C + 1, ack=ISN_S + 1)
        self.up(1.03, HELLO, flags="PA", seq=ISN_C + 1, ack=ISN_S + 1)
        c = ISN_C + 1 + len(HELLO)
        self.dn(1.04, flags="A", seq=ISN_S + 1, ack=c)
        return c


def _injected(v6: bool = False, rst_ttl: int = 250, server_answers: bool = True, both: bool = False):
    """ClientHello, a reset "from the server" with ``rst_ttl``; then (``server_answers``) the
    server's real first flight 25 ms later, which the client resets; ``both``: the device resets
    the server's side too (a reset "from the client" with ``rst_ttl`` right after)."""
    k = Conn(v6)
    c = k.hello()
    k.dn(1.043, ttl=rst_ttl, flags="R", seq=ISN_S + 1)
    if both:
        k.up(1.0431, ttl=rst_ttl, flags="R", seq=c)
    if server_answers:
        k.dn(1.068, SERVER_FLIGHT, flags="PA", seq=ISN_S + 1, ack=c)
        k.up(1.069, flags="R", seq=c)
    return k.recs


def _tcp_row(path):
    flows, _ = whole(path)
    tcp = flows[flows["proto"] == "tcp"]
    assert len(tcp) == 1, flows[["proto", "history"]]
    return tcp.iloc[0]


def _check(path, tmp_path, monkeypatch, hint: str) -> None:
    """The flow's detail is the one judged without the hint, ``hint`` appended ('' : no hint);
    whole = chunked = live = tshark engine; grouped judgement = per-row one."""
    table, _ = analyze_packets(decode(read_frames(path)), RULES, path.name, internal=True)
    tcp = table[table["proto"] == "tcp"]
    assert list(tcp["reset_hint"]) == [hint]
    blank = classify(tcp.drop(columns=list(CLASS_COLUMNS)).assign(reset_hint=""), RULES)
    (r,), (b,) = tcp.to_dict("records"), blank.to_dict("records")
    assert (r["verdict"], r["reason"]) == (b["verdict"], b["reason"])
    base = b["detail"]
    for side in ("server", "client"):
        # (newcomer 28 F7: a reset from a device on the path is no longer "the server reset the connection")
        if f"not by the {side}" in hint or "not by the endpoints" in hint:
            base = base.replace(f"the {side} reset the connection", f"a reset in the {side}'s name ended the connection")
    assert r["detail"] == ((f"{base}; {hint}" if base else hint) if hint else base)
    assert_same_as_reference(table.drop(columns=list(CLASS_COLUMNS)), RULES)
    assert_same(path, [400, 1000, 4096])
    from test_live_session import assert_live_same
    assert_live_same(path, monkeypatch, step=2)
    if shutil.which("tshark"):
        a = analyze_file(path, RULES).flows.sort_values("uid").reset_index(drop=True)
        t = analyze_file(path, RULES, engine="tshark").flows.sort_values("uid").reset_index(drop=True)
        for col in a.columns:
            assert a[col].tolist() == t[col].tolist(), col


@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
def test_reset_with_another_ttl_is_named(tmp_path, monkeypatch, v6):
    path = write(tmp_path, _injected(v6=v6), name=f"inj{int(v6)}.pcap")
    field = "hop limit" if v6 else "TTL"
    hint = (f"the reset in the server's name came with {field} 250, its SYN-ACK with 50 (it went on sending data after "
            f"it): {WHERE}, not by the server")
    r = _tcp_row(path)
    assert (r["verdict"], r["reason"], r["conn_state"]) == ("blocked", "tls_failed", "RSTR")
    # (who closed and after what, newcomer 23 F20: the reset counts as the server's, the hint says whose;
    # break-it 23 F5: the server's flight came only after that reset, so the reset came after the
    # ClientHello, not after "the client's next flight")
    assert r["detail"] == ("TLS handshake aborted: a reset in the server's name ended the connection (RST, RSTR) 0.01 s after the "
                           f"ClientHello, before the server sent a byte; {hint}")
    _check(path, tmp_path, monkeypatch, hint)


def test_reset_alone_and_both_ways(tmp_path, monkeypatch):
    """No server data after the reset: no "went on"; the device resetting both sides: both named,
    "not by the endpoints"."""
    path = write(tmp_path, _injected(server_answers=False), name="alone.pcap")
    hint = f"the reset in the server's name came with TTL 250, its SYN-ACK with 50: {WHERE}, not by the server"
    _check(path, tmp_path, monkeypatch, hint)
    path = write(tmp_path, _injected(server_answers=False, both=True), name="both.pcap")
    hint = (f"the reset in the client's name came with TTL 250, its SYN with 64 and the reset in the server's name came with TTL "
            f"250, its SYN-ACK with 50: {WHERE}, not by the endpoints")
    assert _tcp_row(path)["detail"].endswith(hint)
    _check(path, tmp_path, monkeypatch, hint)


@pytest.mark.parametrize("rst_ttl", [50, 50 - (RESET_TTL_HOPS - 1)])
def test_the_servers_own_reset_gets_no_hint(tmp_path, monkeypatch, rst_ttl):
    """The server's stack resets with its own TTL (or a hop or two farther: a longer way back): no
    hint, the detail as before. (A reset from nearer than the SYN-ACK, even by one hop, is a
    device's on the path: RESET_NEARER_HOPS, tests/test_breakit_s58_tls.py.)"""
    path = write(tmp_path, _injected(rst_ttl=rst_ttl, server_answers=False), name=f"own{rst_ttl}.pcap")
    r = _tcp_row(path)
    assert r["detail"] == ("TLS handshake aborted: the server reset the connection (RST, RSTR) 0.01 s after the "
                           "ClientHello, before the server sent a byte")
    _check(path, tmp_path, monkeypatch, "")


def test_threshold_is_inclusive(tmp_path, monkeypatch):
    path = write(tmp_path, _injected(rst_ttl=50 + RESET_TTL_HOPS, server_answers=False), name="edge.pcap")
    assert f"the reset in the server's name came with TTL {50 + RESET_TTL_HOPS}, its SYN-ACK with 50" in _tcp_row(path)["detail"]


def test_refused_connection_has_nothing_to_compare(tmp_path, monkeypatch):
    """SYN answered by a reset (REJ): the reset is the server's first packet, no hint, whatever
    its TTL."""
    k = Conn()
    k.up(1.0, flags="S", seq=ISN_C)
    k.dn(1.01, ttl=250, flags="RA", seq=0, ack=ISN_C + 1)
    path = write(tmp_path, k.recs, name="rej.pcap")
    r = _tcp_row(path)
    assert (r["verdict"], r["reason"], r["conn_state"]) == ("blocked", "rejected", "REJ")
    assert "TTL" not in r["detail"]
    _check(path, tmp_path, monkeypatch, "")


def test_ttl_column_fast_equals_slow(tmp_path):
    """The decoder's ``ttl``: IPv4 TTL, IPv6 hop limit, as captured; the fast path's column equals
    the pure-Python one's."""
    recs = _injected() + [(t + 5, b) for t, b in _injected(v6=True)]
    path = write(tmp_path, recs, name="mix.pcap")
    fast = decode(read_frames(path))
    assert fast["ttl"].tolist() == [64, 50, 64, 64, 50, 250, 50, 64] * 2
    assert fast["ttl"].dtype == np.int16
    assert decode(read_frames(path), fast=False)["ttl"].tolist() == fast["ttl"].tolist()


def _synproxy(synack_ttl: int, data_ttl: int, rst_ttl: int):
    """Handshake answered with ``synack_ttl``, ClientHello, the server's first flight with
    ``data_ttl``, then the client's next flight and a reset "from the server" with ``rst_ttl``."""
    k = Conn()
    k.up(1.0, flags="S", seq=ISN_C)
    k.dn(1.01, ttl=synack_ttl, flags="SA", seq=ISN_S, ack=ISN_C + 1)
    k.up(1.02, flags="A", seq=ISN_C + 1, ack=ISN_S + 1)
    k.up(1.03, HELLO, flags="PA", seq=ISN_C + 1, ack=ISN_S + 1)
    c = ISN_C + 1 + len(HELLO)
    k.dn(1.04, SERVER_FLIGHT, ttl=data_ttl, flags="PA", seq=ISN_S + 1, ack=c)
    s = ISN_S + 1 + len(SERVER_FLIGHT)
    k.up(1.05, b"\x16\x03\x03\x00\x05" + bytes(5), flags="PA", seq=c, ack=s)
    k.dn(1.06, ttl=rst_ttl, flags="R", seq=s)
    return k.recs


SYNPROXY = ("the server's SYN-ACK came with TTL 255, its data with 50: a SYN proxy (a firewall answering the "
            "handshake for the server) is on the path")


def test_a_syn_proxy_then_the_servers_own_reset(tmp_path, monkeypatch):
    """Break-it 24 F5: the SYN-ACK from a SYN proxy (TTL 255), the server's data and reset with
    TTL 50: the reset is compared with the data before it, the server's own; the SYN proxy named."""
    path = write(tmp_path, _synproxy(255, 50, 50), name="synproxy.pcap")
    hint = f"{SYNPROXY}; its reset came with 50, as its data: the server's own"
    assert "device on the path" not in _tcp_row(path)["detail"]
    _check(path, tmp_path, monkeypatch, hint)


def test_a_syn_proxy_and_a_reset_from_a_device(tmp_path, monkeypatch):
    path = write(tmp_path, _synproxy(255, 50, 250), name="synproxy_inj.pcap")
    hint = f"the reset in the server's name came with TTL 250, its data with 50: {WHERE}, not by the server; {SYNPROXY}"
    _check(path, tmp_path, monkeypatch, hint)


def test_data_injected_with_the_reset_compares_with_the_synack(tmp_path, monkeypatch):
    """A device on the path answers with data and a reset of its own TTL (nearer than the
    server's SYN-ACK): no SYN proxy; the reset is compared with the SYN-ACK."""
    path = write(tmp_path, _synproxy(50, 255, 255), name="inj_data.pcap")
    hint = f"the reset in the server's name came with TTL 255, its SYN-ACK with 50: {WHERE}, not by the server"
    _check(path, tmp_path, monkeypatch, hint)
