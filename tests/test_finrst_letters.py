"""A FIN and a RST in one packet (Zeek's history letter ``I``/``i``) is judged as the same FIN and
RST sent one after the other (``F`` then ``R``): the verdict, reason and detail do not depend on
whether the closing side put both flags in one packet."""
from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP

from chunkcmp import RULES
from kscc_traffic.analyze import analyze_file
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth, pcap_bytes, tcp_session

C, S = ("198.18.0.9", 50123), ("203.0.113.10", 23101)
DP = ("192.168.1.5", 13000)


def closing(server, who: str, data: bool, together: bool):
    """A handshake (with a little data both ways when ``data``), then ``who`` ("client" or
    "server") closes with FIN+RST in one packet (``together``) or a FIN then a RST."""
    recs = tcp_session(C, server, c_data=b"\x16\x03\x01hello" if data else b"",
                       s_data=b"\x16\x03\x03world" if data else b"", close=False)
    cs = 1001 + (10 if data else 0)
    ss = 5001 + (10 if data else 0)
    t = recs[-1][0] + 0.01
    if who == "client":
        mk = lambda **kw: eth(IP(src=C[0], dst=server[0]) / TCP(sport=C[1], dport=server[1], **kw))  # noqa: E731
        seq, ack = cs, ss
    else:
        mk = lambda **kw: eth(IP(src=server[0], dst=C[0]) / TCP(sport=server[1], dport=C[1], **kw),  # noqa: E731
                              src=SERVER_MAC, dst=CLIENT_MAC)
        seq, ack = ss, cs
    if together:
        recs.append((t, mk(flags="FRA", seq=seq, ack=ack)))
    else:
        recs += [(t, mk(flags="FA", seq=seq, ack=ack)), (t + 0.001, mk(flags="RA", seq=seq + 1, ack=ack))]
    return recs


@pytest.mark.parametrize("server", [S, DP])
@pytest.mark.parametrize("who", ["client", "server"])
@pytest.mark.parametrize("data", [False, True])
def test_fin_rst_in_one_packet_judged_as_fin_then_rst(tmp_path, server, who, data):
    got = []
    for together in (True, False):
        p = tmp_path / f"{together}.pcap"
        p.write_bytes(pcap_bytes(closing(server, who, data, together)))
        f = analyze_file(p, RULES).flows
        r = f[f["resp_p"] == server[1]].iloc[0]
        got.append((r.history, r.verdict, r.reason, r.detail))
    one, two = got
    assert ("I" in one[0] or "i" in one[0]) and "R" in two[0].upper()
    assert one[1:] == two[1:], (one, two)


def test_chunked_reads_a_finrst_letter_as_a_closed_connection():
    """The chunked analysis lets a closed TCP connection leave CLOSE_DELAY_NS after its last
    packet (build_flows splits the 5-tuple then): a FIN+RST packet's ``I``/``i`` is a RST there,
    as ``R``/``r`` is; a lone FIN is not a close, a SYN+FIN (``Q``) is not read as one either."""
    import pandas as pd

    from kscc_traffic.chunked import _closed_and_idle
    flows = pd.DataFrame({"history": ["ShADdI", "ShADadi", "ShADdFR", "ShADdF", "Q", "ShADadFf"],
                          "proto": ["tcp"] * 6, "orig_p": [50000] * 6, "resp_p": [23101] * 6})
    closed, _ = _closed_and_idle(flows)
    assert closed.tolist() == [True, True, True, False, False, True]
