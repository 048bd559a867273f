"""PPP frames whose payload is compressed or encrypted (MPPE in a PPTP VPN: PPP protocol 0x00fd;
ECP 0x0053) cannot be read: both engines count them in one warning line, and the readable
traffic beside them is analysed (they were counted as non-IP without a word, and a capture of
nothing else was called one "on the wrong interface")."""
from __future__ import annotations

import shutil

import pytest

from kscc_traffic.analyze import analyze_file
from kscc_traffic.rules import load_rules
from pcapbuild import eth, pcap_bytes, tcp_session

RULES = load_rules()
ENGINES = ["builtin"] + (["tshark"] if shutil.which("tshark") else [])


def _pptp(ppp_proto: bytes, inner: bytes, call_id: int, seq: int, up: bool) -> bytes:
    """An Ethernet frame of PPTP's enhanced GRE (version 1, key and sequence present) between
    192.0.2.1 and 192.0.2.2 carrying PPP (address/control, then ``ppp_proto``) + ``inner``."""
    from scapy.all import IP, Raw
    ppp = b"\xff\x03" + ppp_proto + inner
    gre = (bytes([0x30, 0x01, 0x88, 0x0B]) + len(ppp).to_bytes(2, "big") + call_id.to_bytes(2, "big")
           + seq.to_bytes(4, "big"))
    src, dst = ("192.0.2.1", "192.0.2.2") if up else ("192.0.2.2", "192.0.2.1")
    return bytes(eth(IP(src=src, dst=dst, proto=47) / Raw(gre + ppp)))


def _capture(tmp_path, sealed: bytes, n_sealed: int):
    recs = [(t, bytes(p)) for t, p in tcp_session(("198.18.0.10", 50000), ("203.0.113.10", 23101))]
    t0 = recs[-1][0]
    for i in range(n_sealed):
        recs.append((t0 + 0.01 * (i + 1), _pptp(sealed, bytes(range(40)) * 2, 7, i + 1, i % 2 == 0)))
    path = tmp_path / "vpn.pcap"
    path.write_bytes(pcap_bytes(recs))
    return path, len(recs) - n_sealed


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("proto,n", [(b"\x00\xfd", 5), (b"\x00\x53", 1)], ids=["mppe", "ecp"])
def test_sealed_ppp_counted_readable_traffic_kept(tmp_path, engine, proto, n):
    path, plain = _capture(tmp_path, proto, n)
    a = analyze_file(path, RULES, engine=engine)
    s, were, they = ("s", "were", "they") if n != 1 else ("", "was", "it")
    want = (f"vpn.pcap: decode: {n} PPP frame{s} compressed or encrypted (PPP protocol 0x00fd/0x0053: MPPE "
            f"in a PPTP VPN, CCP/ECP) {were} not read: the packets {they} carried are missing from the "
            "flows (capture on the VPN's own interface on the host, e.g. ppp0 or the VPN adapter, where "
            "they are plain IP)")
    assert [w for w in a.warnings if "PPP frame" in w] == [want]
    (r,) = a.flows.to_dict("records")
    assert (r["resp_p"], r["conn_state"], r["orig_pkts"] + r["resp_pkts"]) == (23101, "SF", plain)


@pytest.mark.parametrize("engine", ENGINES)
def test_plain_ip_in_pptp_is_still_read(tmp_path, engine):
    """PPTP without MPPE (PPP protocol 0x0021): the connection inside is the row, no such warning."""
    recs = []
    for k, (t, p) in enumerate(tcp_session(("198.18.0.10", 50000), ("203.0.113.10", 23101))):
        ipb = bytes(p)[14:]
        recs.append((t, _pptp(b"\x00\x21", ipb, 7, k + 1, ipb[12:16] == bytes([198, 18, 0, 10]))))
    path = tmp_path / "plain.pcap"
    path.write_bytes(pcap_bytes(recs))
    a = analyze_file(path, RULES, engine=engine)
    assert not [w for w in a.warnings if "PPP frame" in w]
    (r,) = a.flows.to_dict("records")
    assert (r["orig_h"], r["resp_p"], r["conn_state"]) == ("198.18.0.10", 23101, "SF")
