"""A CONNECT cut by the snaplen (newcomer 36 F5): `editcap -s 96` of an agent refused by its proxy
kept `CONNECT eu1.ksc.kaspersky.com:` (the port cut), no name was read, and the report said "No KSC
agent traffic … captured on the wrong machine?" with exit 0. The headline now says that a name may
have been lost to the snaplen, and how to capture it."""
from __future__ import annotations

import pytest

pytest.importorskip("scapy")

from kscc_traffic import load_rules  # noqa: E402
from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.report import NO_KSC_TRAFFIC, cut_unnamed, no_ksc_traffic  # noqa: E402
from pcapbuild import pcap_bytes, tcp_session  # noqa: E402

RULES = load_rules()


def _cut(pcap: bytes, snaplen: int) -> bytes:
    """The pcap with each record cut to ``snaplen`` bytes (its original length kept), as tcpdump -s writes."""
    import struct
    out, pos = [pcap[:24]], 24
    while pos < len(pcap):
        sec, usec, caplen, wirelen = struct.unpack_from("<IIII", pcap, pos)
        keep = min(caplen, snaplen)
        out.append(struct.pack("<IIII", sec, usec, keep, wirelen) + pcap[pos + 16:pos + 16 + keep])
        pos += 16 + caplen
    return b"".join(out)


def proxied(tmp_path, snaplen):
    req = b"CONNECT eu1.ksc.kaspersky.com:23101 HTTP/1.1\r\nHost: eu1.ksc.kaspersky.com:23101\r\n\r\n"
    resp = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"
    recs = tcp_session(("192.0.2.10", 50000), ("198.51.100.8", 8080), c_data=req, s_data=resp)
    path = tmp_path / f"p{snaplen}.pcap"
    path.write_bytes(_cut(pcap_bytes(recs, snaplen=snaplen), snaplen))
    return analyze_file(str(path), RULES).flows


def test_a_cut_connect_is_said_in_the_headline(tmp_path):
    flows = proxied(tmp_path, 84)          # (14 + 20 + 20 header bytes: 30 of the request kept)
    assert cut_unnamed(flows) == 1
    head = no_ksc_traffic(len(flows), 0, 1, cut_unnamed(flows))
    assert head == (NO_KSC_TRAFFIC + " Or a name was lost: 1 TCP flow had its first bytes cut by the snaplen before "
                    "a server name could be read; capture again with the whole packets (tcpdump -s 0) to see the names")


def test_the_whole_connect_is_ksc_traffic(tmp_path):
    flows = proxied(tmp_path, 65535)
    assert cut_unnamed(flows) == 0
    assert flows.iloc[0].server_name == "eu1.ksc.kaspersky.com"
    assert no_ksc_traffic(len(flows), 0, 1, 0) == NO_KSC_TRAFFIC
