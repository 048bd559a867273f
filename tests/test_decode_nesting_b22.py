"""Break-it 22 F2-F5, end to end with both engines where tshark is installed (the fast path held
equal to the slow path):

- F2: nesting up to the decoder's limits (16 tunnels inside one another, 20 VLAN tags, 64 MPLS
  labels) is decoded; a frame beyond them is counted in its own warning line, not "malformed";
- F3: a frame with nested tunnels counts once in the tunnel line, under its outermost tunnel;
- F4: PPPoE with PPP Protocol-Field-Compression (a one-byte protocol field) is read;
- F5: VXLAN (UDP 4789) with the I flag clear is read as VXLAN when the frame inside carries IP,
  as Wireshark reads it; other datagrams to 4789 without the flag stay UDP.
"""
from __future__ import annotations

import pytest

pytest.importorskip("scapy")

from scapy.all import GRE, IP, UDP, Dot1Q, Ether, Raw  # noqa: E402
from scapy.contrib.mpls import MPLS  # noqa: E402
from scapy.layers.vxlan import VXLAN  # noqa: E402

from test_decode_leftovers20 import (  # noqa: E402
    FAR, NEAR, OUTER, T0, TSHARK, _agent_ok, _both, _decoded, _flows, _session, _up, _write)

MAC = dict(src="02:00:00:00:09:01", dst="02:00:00:00:09:02")
TOO_DEEP = ("decode: 8 frames nested deeper than the decoder reads (more than 16 tunnels inside "
            "one another, 20 VLAN tags, 64 MPLS labels or 8 link-layer shims): not decoded "
            "(--engine tshark reads deeper tunnels and MPLS stacks)")


def _lines(w):
    return [x.split(": ", 1)[1] for x in w]


def _wrap(kind: str, n: int):
    """A function wrapping an IPv4 packet of the agent session in ``n`` nested tunnels."""
    def f(pkt):
        a, b = OUTER if _up(pkt) else OUTER[::-1]
        if kind == "vxlan":
            fr = Ether(src=NEAR if _up(pkt) else FAR, dst=FAR if _up(pkt) else NEAR) / pkt
            for _ in range(n):
                fr = Ether(**MAC) / IP(src=a, dst=b) / UDP(sport=40000, dport=4789) / \
                    VXLAN(vni=42) / fr
            return fr
        for _ in range(n):
            pkt = IP(src=a, dst=b) / GRE() / pkt if kind == "gre" else IP(src=a, dst=b) / pkt
        return Ether(**MAC) / pkt
    return f


def _capture(tmp_path, name, wrap):
    return _write(tmp_path, name, [(t, wrap(p)) for t, p in _session()])


@pytest.mark.parametrize("kind,n,name", [("ipip", 5, "IP-in-IP"), ("gre", 5, "GRE"),
                                         ("vxlan", 5, "VXLAN"), ("ipip", 16, "IP-in-IP"),
                                         ("vxlan", 16, "VXLAN")])
def test_nested_tunnels_decoded_and_counted_once_a_frame(tmp_path, kind, n, name):
    """5 and 16 nested tunnels: the agent connection inside, by both engines; the tunnel line
    counts the 8 frames once (it said 40 for 5 IP-in-IP layers; 4 layers was the limit, 5 gave
    "8 frames too short or inconsistent (malformed)" and no flow)."""
    path = _capture(tmp_path, f"{kind}{n}.pcap", _wrap(kind, n))
    p = _decoded(path)
    assert (len(p), p.stats.malformed) == (8, 0)
    f, w = _both(path)
    _agent_ok(f)
    assert f"decode: 8 tunnelled packets decoded as their inner packet, outer headers dropped " \
        f"({name} 8)" in _lines(w)


@pytest.mark.parametrize("kind", ["ipip", "vxlan"])
def test_tunnels_beyond_the_limit_have_their_own_line(tmp_path, kind):
    """17 nested tunnels: not decoded, counted as nested too deep (in ``malformed`` still), no
    "malformed" line; the tshark engine reads them (it has no such limit)."""
    path = _capture(tmp_path, f"{kind}17.pcap", _wrap(kind, 17))
    p = _decoded(path)
    assert (len(p), p.stats.malformed, p.stats.non_ip) == (0, 8, 0)
    assert p.stats.warnings == [TOO_DEEP]
    f, w = _flows(path)
    assert len(f) == 0 and _lines(w) == [TOO_DEEP]
    if TSHARK:
        _agent_ok(_flows(path, "tshark")[0])


def _vlans(n):
    def f(pkt):
        fr = Ether(src=NEAR if _up(pkt) else FAR, dst=FAR if _up(pkt) else NEAR)
        for k in range(n):
            fr = fr / Dot1Q(vlan=10 + k)
        return fr / pkt
    return f


def test_deep_vlan_stacks_decoded_up_to_20_tags(tmp_path):
    """9 and 20 tags (8 was the limit): decoded, the packets' ``vlan`` value of the four
    innermost tags and the outermost one, the flow's ``vlan`` the outermost tag's VLAN ID and
    ``inner_vlan`` the innermost's (as Zeek: each tag after the first overwrites its
    ``inner_vlan``), equal in both engines; 21 tags (Wireshark's limit is 20 too: "Too many
    nested VLAN tags") are counted nested too deep."""
    path = _capture(tmp_path, "v9.pcap", _vlans(9))                 # tags 10 … 18
    f, w = _both(path)
    _agent_ok(f, vlan=10, inner_vlan=18)
    assert set(_decoded(path).cols["vlan"].tolist()) == {1 << 24 | 17 << 12 | 18 | 16 << 25 | 15 << 37 | 10 << 49}
    assert w == []
    path = _capture(tmp_path, "v20.pcap", _vlans(20))               # tags 10 … 29
    f, _ = _both(path)
    _agent_ok(f, vlan=10, inner_vlan=29)
    assert set(_decoded(path).cols["vlan"].tolist()) == {1 << 24 | 28 << 12 | 29 | 27 << 25 | 26 << 37 | 10 << 49}
    path = _capture(tmp_path, "v21.pcap", _vlans(21))
    p = _decoded(path)
    assert (len(p), p.stats.malformed, p.stats.warnings) == (0, 8, [TOO_DEEP])


def _labels(n):
    def f(pkt):
        fr = Ether(**MAC, type=0x8847)
        for k in range(n):
            fr = fr / MPLS(label=100 + k, s=int(k == n - 1), ttl=64)
        return fr / pkt
    return f


def test_deep_mpls_stacks_decoded_up_to_64_labels(tmp_path):
    """17 and 64 labels (16 was the limit): the agent connection, both engines; 65: counted
    nested too deep."""
    for n in (17, 64):
        f, w = _both(_capture(tmp_path, f"m{n}.pcap", _labels(n)))
        _agent_ok(f)
        assert w == []
    p = _decoded(_capture(tmp_path, "m65.pcap", _labels(65)))
    assert (len(p), p.stats.malformed, p.stats.warnings) == (0, 8, [TOO_DEEP])


def test_too_many_shims_counted_nested_too_deep(tmp_path):
    """9 VN-Tags (0x8926, 4 bytes each) before the ethertype: beyond the 8 shims walked."""
    def f(pkt, n):
        return Ether(**MAC, type=0x8926) / Raw(b"".join(
            bytes(4) + (b"\x89\x26" if k < n - 1 else b"\x08\x00") for k in range(n))) / pkt
    p = _decoded(_write(tmp_path, "s8.pcap", [(t, f(x, 8)) for t, x in _session()]))
    assert (len(p), p.stats.malformed) == (8, 0)
    p = _decoded(_write(tmp_path, "s9.pcap", [(t, f(x, 9)) for t, x in _session()]))
    assert (len(p), p.stats.malformed, p.stats.warnings) == (0, 8, [TOO_DEEP])


def test_too_deep_and_malformed_counted_apart(tmp_path):
    """One frame of 21 tags and one cut inside its IP header: one line each."""
    syn = IP(src="192.0.2.10", dst="203.0.113.10") / UDP(sport=5, dport=6)
    recs = [(T0, _vlans(21)(syn)), (T0 + 1, Ether(**MAC) / Raw(bytes(syn)[:12]))]
    recs[1][1].type = 0x0800
    p = _decoded(_write(tmp_path, "mix.pcap", recs))
    assert (len(p), p.stats.malformed) == (0, 2)
    assert p.stats.warnings == [
        "decode: 1 frame too short or inconsistent to decode (malformed) skipped",
        TOO_DEEP.replace("8 frames", "1 frame")]


# ------------------------------------------------------------------ F4: PPPoE PFC
def _pppoe(pkt, proto: bytes):
    body = proto + bytes(pkt)
    hdr = b"\x11\x00\x00\x03" + len(body).to_bytes(2, "big")
    return Ether(src=NEAR if _up(pkt) else FAR, dst=FAR if _up(pkt) else NEAR, type=0x8864) / \
        Raw(hdr + body)


@pytest.mark.parametrize("proto", [b"\x21", b"\x00\x21"])
def test_pppoe_with_protocol_field_compression(tmp_path, proto):
    """A one-byte PPP protocol field (RFC 1661 §6.5) in PPPoE is read, as in L2TP's PPP and
    Wireshark (it was "no IP packet among its 8 frames"); the two-byte field still is."""
    path = _write(tmp_path, "pfc.pcap", [(t, _pppoe(p, proto)) for t, p in _session()])
    p = _decoded(path)
    assert (len(p), p.stats.non_ip, p.stats.malformed) == (8, 0, 0)
    f, w = _both(path)
    _agent_ok(f)
    assert w == []


def test_pppoe_compressed_non_ip_protocol_is_not_ip(tmp_path):
    """A one-byte protocol that is not IP (0x3d, multilink) stays not IP."""
    syn = IP(src="192.0.2.10", dst="203.0.113.10") / UDP(sport=5, dport=6)
    p = _decoded(_write(tmp_path, "mp.pcap", [(T0, _pppoe(syn, b"\x3d"))]))
    assert (len(p), p.stats.non_ip, p.stats.malformed) == (0, 1, 0)


# ------------------------------------------------------------------ F5: VXLAN without I flag
def test_vxlan_without_i_flag_carrying_ip_is_decoded(tmp_path):
    """Flags 0x00 on UDP 4789 (breaks RFC 7348, but Wireshark reads it as VXLAN): the agent
    connection inside, by both engines, counted as VXLAN (it was one silent outer udp flow)."""
    def f(pkt):
        fr = _wrap("vxlan", 1)(pkt)
        fr[VXLAN].flags = 0
        return fr
    path = _capture(tmp_path, "noi.pcap", f)
    f, w = _both(path)
    _agent_ok(f)
    assert "decode: 8 tunnelled packets decoded as their inner packet, outer headers dropped " \
        "(VXLAN 8)" in _lines(w)


def test_udp_4789_without_i_flag_and_no_ip_inside_stays_udp(tmp_path):
    """Without the I flag, a datagram whose bytes after 8 are no Ethernet frame carrying IP
    (here 40 bytes of text) stays the UDP datagram it is, payload included."""
    pl = b"\x00" * 8 + b"not a frame at all, just text here......"
    recs = [(T0, Ether(**MAC) / IP(src="192.0.2.20", dst="198.51.100.30")
             / UDP(sport=50500, dport=4789) / Raw(pl))]
    path = _write(tmp_path, "txt.pcap", recs)
    p = _decoded(path)
    assert (p.cols["proto"].tolist(), p.cols["payload_len"].tolist()) == ([17], [len(pl)])
    f, w = _flows(path)
    assert (f.proto.tolist(), f.resp_p.tolist(), f.orig_bytes.tolist()) == \
        (["udp"], [4789], [len(pl)])
    assert not any("tunnelled" in x for x in w)


# ------------------------------------------------------------------ found on the way
def test_first_fragment_with_ah_longer_than_it_is_kept_not_a_crash(tmp_path):
    """A first IPv4 fragment (MF) holding AH whose length runs past the fragment's bytes, never
    completed: an internal error (TypeError) stopped the analysis; it is now the unreassembled
    fragment's row (protocol 51, 16 payload bytes), as the tshark engine shows it."""
    ah = bytes([6, 200, 0, 0]) + bytes(12)
    pkt = Ether(**MAC) / IP(src="192.0.2.1", dst="192.0.2.2", proto=51, flags="MF", id=7) / Raw(ah)
    path = _write(tmp_path, "ahfrag.pcap", [(T0, pkt)])
    p = _decoded(path)
    assert (p.cols["proto"].tolist(), p.cols["payload_len"].tolist(),
            p.cols["unreassembled"].tolist()) == ([51], [16], [True])
    for engine in ("builtin", "tshark") if TSHARK else ("builtin",):
        f, w = _flows(path, engine)
        assert (f.proto.tolist(), f.orig_bytes.tolist(), f.orig_ip_bytes.tolist()) == \
            (["ah"], [16], [36])
        assert _lines(w) == ["decode: 1 IP fragments could not be reassembled (kept as one row "
                             "each; their datagrams never arrived whole, so nothing in them is "
                             "read as DNS, TLS or HTTP)"]
