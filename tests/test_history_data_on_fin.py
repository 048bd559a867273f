"""Payload carried only on a FIN or a SYN (TCP Fast Open) is data sent, though Zeek's history
writes no ``D`` for it (the packet writes only its ``F``/``S``: ``flows.history_codes``).

classify asks "did the originator send data?" (``classify._orig_sent_data``) where it judges
a partial flow nothing came back in, a partial flow answered only by resets, a flow seen one way
and a ClientHello the snaplen cut: a ``D`` in the history, or ``orig_bytes`` (above 1 in a partial
flow, where one byte may be a keep-alive's size). Each capture is built with scapy; the verdict,
reason and detail are asserted, the grouped judgement compared with the per-row one and the
chunked analysis with the whole-file one."""
from __future__ import annotations

import pandas as pd
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from chunkcmp import assert_same as assert_same_chunked
from pcapbuild import CLIENT_MAC, SERVER_MAC
from test_classify_fast import RULES, assert_same
from test_newcomer23_verdicts import _internal
from test_tls_view_cut import _write

from kscc_traffic import analyze
from kscc_traffic.classify import classify

AGENT, CLOUD = "192.0.2.10", "203.0.113.10"
DATA = b"x" * 40
#: the first bytes of a ClientHello (a record header, a handshake type), the rest any bytes
HELLO = b"\x16\x03\x01\x01\x2d\x01" + b"y" * 300


def _pkt(side, flags, seq, ack=0, data=b"", dport=23101):
    if side == "c":
        return (Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IP(src=AGENT, dst=CLOUD)
                / TCP(sport=50000, dport=dport, flags=flags, seq=seq, ack=ack) / data)
    return (Ether(src=SERVER_MAC, dst=CLIENT_MAC) / IP(src=CLOUD, dst=AGENT)
            / TCP(sport=dport, dport=50000, flags=flags, seq=seq, ack=ack) / data)


def _judged(tmp_path, records, name, snaplen=65535, chunks=True):
    path = _write(tmp_path / name, records, snaplen=snaplen)
    flows = analyze(str(path))
    flows = flows[flows["purpose"] != "dns"].reset_index(drop=True)
    assert len(flows) == 1
    assert_same(_internal(path))
    if chunks:
        assert_same_chunked(path, [300])
    r = flows.iloc[0]
    return r["history"], int(r["orig_bytes"]), (r["verdict"], r["reason"], r["detail"])


# --- a partial flow nothing came back in (_partial_silence) ---------------------------------------

SILENCE = ("blocked", "no_answer,partial", "capture started mid-connection; 3 packets sent, nothing came back "
           "(the connection died: a firewall that dropped an idle session?)")


def test_partial_flow_whose_data_rode_only_on_its_fins_died_unanswered(tmp_path):
    """A capture begun mid-connection: the client's FIN with 40 bytes, sent 3 times over 6 s,
    nothing back: the connection died (was "3 packets without data sent ... not judged")."""
    fins = [(100 + t, _pkt("c", "FA", 1000, 5000, DATA)) for t in (0, 2, 6)]
    hist, sent, got = _judged(tmp_path, fins, "fin.pcap")
    # (the 2nd and 3rd FIN repeat the bytes: Zeek's T at the 1st retransmission, session 61)
    assert (hist, sent) == ("FT", 40)
    assert got == SILENCE
    # (the same bytes in their own packets, then a FIN: the same judgement)
    own = [(100, _pkt("c", "PA", 1000, 5000, DATA)), (102, _pkt("c", "PA", 1000, 5000, DATA)),
           (106, _pkt("c", "FA", 1040, 5000))]
    assert _judged(tmp_path, own, "own.pcap")[2] == SILENCE


def test_partial_flow_of_fins_without_payload_is_still_not_judged(tmp_path):
    """The same FINs without payload: a connection's end, not judged (unchanged)."""
    fins = [(100 + t, _pkt("c", "FA", 1000, 5000)) for t in (0, 2, 6)]
    hist, sent, got = _judged(tmp_path, fins, "fin.pcap")
    assert (hist, sent) == ("F", 0)
    assert got == ("unclassified", "partial", "capture started mid-connection; 3 packets without data sent (FIN, "
                   "RST or ACK: a connection's end), nothing came back: not judged")


# --- a partial flow answered only by resets (_partial_closes) -------------------------------------


def test_partial_flow_whose_fin_carried_data_answered_by_a_reset_is_rejected(tmp_path):
    """Mid-connection: the client's FIN with 40 bytes answered by a RST: the connection no longer
    existed on the other side (was "a connection's end, not judged")."""
    recs = [(100, _pkt("c", "FA", 1000, 5000, DATA)), (100.01, _pkt("s", "R", 5000))]
    hist, sent, got = _judged(tmp_path, recs, "fin.pcap")
    assert (hist, sent) == ("Fr", 40)
    assert got == ("blocked", "rejected,partial", "capture started mid-connection; the originator's data (1 packet) "
                   "was answered only by TCP resets (1 packet): the connection no longer existed on the other side "
                   "(a firewall that dropped an idle session?)")


def test_partial_flow_whose_fin_carried_one_byte_answered_by_a_reset_is_not_judged(tmp_path):
    """One byte on the FIN of a partial flow: a size of 1 may be a keep-alive's (flows.carried_data),
    not taken for data; a FIN without payload likewise."""
    for i, data in enumerate((b"z", b"")):
        recs = [(100, _pkt("c", "FA", 1000, 5000, data)), (100.01, _pkt("s", "R", 5000))]
        hist, sent, got = _judged(tmp_path, recs, f"fin{i}.pcap")
        assert (hist, sent) == ("Fr", len(data))
        assert got == ("unclassified", "partial", "capture started mid-connection; the responder sent only resets "
                       "(1 packet), no data nor acknowledgement: a connection's end, not judged")


# --- a flow seen one way (_one_way) ---------------------------------------------------------------

ONE_WAY = ("blocked", "no_answer", "data sent again, never acknowledged by the server (only the originator's "
           "packets were captured: they acknowledge the responder's SYN-ACK, nothing of the server's after it: "
           "the data or its answers dropped on the way)")


def test_one_way_flow_whose_data_rode_only_on_its_fin(tmp_path):
    """SYN, ACK of the (unseen) SYN-ACK, then the client's FIN with 40 bytes sent twice, never
    acknowledged: no answer (was "unclassified/one_way ... not judged")."""
    recs = [(100, _pkt("c", "S", 999)), (100.02, _pkt("c", "A", 1000, 5001)),
            (100.03, _pkt("c", "FA", 1000, 5001, DATA)), (101, _pkt("c", "FA", 1000, 5001, DATA))]
    hist, sent, got = _judged(tmp_path, recs, "fin.pcap")
    assert (hist, sent) == ("SAFT", 40)     # (the FIN sent again: Zeek's T, session 61)
    assert got == ONE_WAY


def test_one_way_flow_whose_data_rode_only_on_its_syn(tmp_path):
    """TCP Fast Open-like: 40 bytes on the SYN, the SYN sent again, then the ACK of the (unseen)
    SYN-ACK acknowledging only the SYN: the data never acknowledged (history ``STA``, no ``D``:
    Zeek's T for the SYN's data, as its init_endpoint puts LastSeq at the SYN's end, session 61)."""
    recs = [(100, _pkt("c", "S", 999, 0, DATA)), (101, _pkt("c", "S", 999, 0, DATA)),
            (101.02, _pkt("c", "A", 1040, 5001))]
    hist, sent, got = _judged(tmp_path, recs, "syn.pcap")
    assert (hist, sent) == ("STA", 40)
    assert got == ONE_WAY


# --- a ClientHello the snaplen cut (classify's ``unread``) ----------------------------------------

#: (session 33: who closed and when told as for a ClientHello read whole, then how it was judged)
HOW = "(the handshake cut by the snaplen: judged from the TCP packets)"


def test_cut_clienthello_on_the_fin_is_judged_from_the_tcp_packets(tmp_path):
    """The ClientHello on the client's FIN, cut by a 56-byte snaplen (2 bytes kept), the server
    acknowledging it, sending nothing, closing 4 s later: the handshake aborted (was ``ok``)."""
    recs = [(100, _pkt("c", "S", 999)), (100.01, _pkt("s", "SA", 5000, 1000)), (100.02, _pkt("c", "A", 1000, 5001)),
            (100.03, _pkt("c", "FA", 1000, 5001, HELLO)), (100.04, _pkt("s", "A", 5001, 1307)),
            (104.05, _pkt("s", "FA", 5001, 1307)), (104.06, _pkt("c", "A", 1307, 5002))]
    hist, sent, got = _judged(tmp_path, recs, "fin.pcap", snaplen=56)
    assert (hist, sent) == ("ShAFaf", len(HELLO))
    assert got == ("blocked", "tls_failed", "TLS handshake aborted: the client closed the connection (FIN, SF) before "
                   f"the server sent a byte {HOW}")


def test_cut_clienthello_on_the_syn_is_judged_from_the_tcp_packets(tmp_path):
    """TCP Fast Open-like: the ClientHello on the SYN, cut by the snaplen, the SYN-ACK
    acknowledging it, nothing more from the server until it closes 4 s later (history
    ``ShAf``...: no ``D``)."""
    n = len(HELLO)
    recs = [(100, _pkt("c", "S", 999, 0, HELLO)), (100.01, _pkt("s", "SA", 5000, 1000 + n)),
            (100.02, _pkt("c", "A", 1000 + n, 5001)),
            (104.05, _pkt("s", "FA", 5001, 1000 + n)), (104.06, _pkt("c", "FA", 1000 + n, 5002)),
            (104.07, _pkt("s", "A", 5002, 1001 + n))]
    hist, sent, got = _judged(tmp_path, recs, "syn.pcap", snaplen=56)
    assert "D" not in hist and sent == n
    assert got == ("blocked", "tls_failed", f"ClientHello not answered: no byte from the server for 4.0 s, then the "
                   f"server closed {HOW}")


def test_grouped_judgement_keys_partial_resets_on_data_sent(tmp_path):
    """Two partial flows answered only by a reset, alike but for whether the originator sent
    data (history ``Dr``/``Ar``; ``Fr`` with 40 bytes/none): the grouped judgement keys them
    apart, as the per-row one judges them (it keyed only the count of packets)."""
    recs = [(100, _pkt("c", "FA", 1000, 5000, DATA)), (100.01, _pkt("s", "R", 5000))]
    table = _internal(_write(tmp_path / "c.pcap", recs))
    table = table[table["resp_p"] == 23101]
    rows = pd.concat([table] * 4, ignore_index=True)
    rows["history"] = ["Dr", "Ar", "Fr", "Fr"]
    rows["orig_bytes"] = [40, 0, 40, 0]
    assert_same(rows)
    got = classify(rows, RULES)["verdict"].tolist()
    assert got == ["blocked", "unclassified", "blocked", "unclassified"]
