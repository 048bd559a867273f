"""A capture of one direction only (a SPAN port mirroring one direction, asymmetric routing:
newcomer 22, F2). The client's packets alone of a working connection acknowledge a SYN-ACK and
the server's bytes that are not in the capture: the responder's bytes come from those
acknowledgements (its ISN taken as the first acknowledgement - 1, as Zeek's init_peer guesses
it), the flow is not blocked but ``unclassified``/``one_way`` (the purpose "seen one-way" in the
checklist, never verified), and a capture whose every TCP flow is so gets a ``Warning:``. What
the acknowledgements prove of a failure still counts: a SYN sent again and again with no ACK
after it stays ``no_answer``; a ClientHello sent again while the client's acknowledgement never
went past the SYN-ACK is ``tls_failed``. The same in chunks and with ``--engine tshark``.

And (F5): a SYN to a distribution point answered by a TCP reset from its own address, on the
client's subnet, is told as "nothing listens there (the service), or its own firewall", as an
ICMP port unreachable from it is, not only "open the firewall"."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest

pytest.importorskip("scapy")

from scapy.all import IP, TCP, Raw  # noqa: E402

from pcapbuild import eth as Ether  # noqa: E402
from chunkcmp import RULES, assert_same as assert_chunks_same, whole, write  # noqa: E402
from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.report import TableSummary, readiness  # noqa: E402
from test_classify_fast import assert_same as assert_classify_same  # noqa: E402
from test_decode_more_encaps import client_hello  # noqa: E402

AGENT, CLOUD, DP = "192.0.2.60", "203.0.113.10", "192.0.2.5"
T0 = 1_772_442_000.0
HINT = "only one direction captured (a mirror port or tap that sees one direction, or asymmetric routing?)"
HELLO = client_hello("eu1.ksc.kaspersky.com")


def _pair(sport: int, dport: int, server: str = CLOUD):
    c = lambda **kw: Ether(IP(src=AGENT, dst=server) / TCP(sport=sport, dport=dport, **kw))  # noqa: E731
    s = lambda **kw: Ether(IP(src=server, dst=AGENT) / TCP(sport=dport, dport=sport, **kw))  # noqa: E731
    return c, s


def session(t: float, sport: int, dport: int = 23101) -> list[tuple[float, bool, object]]:
    """(ts, from the client, frame) of a working TLS-like connection: handshake, ClientHello,
    the server's 2,118 bytes, the client's 93-byte next flight, the server's 242, the client's
    31, the server's 31, then FIN both ways (client first). Client ISN 1000, server ISN 5000."""
    c, s = _pair(sport, dport)
    h = len(HELLO)
    cs = 1001 + h
    return [(t, True, c(flags="S", seq=1000)),
            (t + 0.020, False, s(flags="SA", seq=5000, ack=1001)),
            (t + 0.021, True, c(flags="A", seq=1001, ack=5001)),
            (t + 0.031, True, c(flags="PA", seq=1001, ack=5001) / Raw(HELLO)),
            (t + 0.041, False, s(flags="PA", seq=5001, ack=cs) / Raw(b"\x16" * 2118)),
            (t + 0.051, True, c(flags="PA", seq=cs, ack=7119) / Raw(b"\x17" * 93)),
            (t + 0.061, False, s(flags="PA", seq=7119, ack=cs + 93) / Raw(b"\x17" * 242)),
            (t + 0.071, True, c(flags="PA", seq=cs + 93, ack=7361) / Raw(b"\x17" * 31)),
            (t + 0.081, False, s(flags="PA", seq=7361, ack=cs + 124) / Raw(b"\x17" * 31)),
            (t + 0.091, True, c(flags="A", seq=cs + 124, ack=7392)),
            (t + 0.591, True, c(flags="FA", seq=cs + 124, ack=7392)),
            (t + 0.601, False, s(flags="FA", seq=7392, ack=cs + 125)),
            (t + 0.612, True, c(flags="A", seq=cs + 125, ack=7393))]


def dropped_syn(t: float, sport: int, dport: int = 27201) -> list[tuple[float, bool, object]]:
    """A SYN sent 4 times, nothing after it (a firewall dropping it: also in a one-way capture)."""
    c, _ = _pair(sport, dport)
    return [(t + d, True, c(flags="S", seq=777)) for d in (0, 1, 3, 7)]


def client_only(recs) -> list[tuple[float, object]]:
    return [(t, f) for t, up, f in recs if up]


def server_only(recs) -> list[tuple[float, object]]:
    return [(t, f) for t, up, f in recs if not up]


def both(recs) -> list[tuple[float, object]]:
    return [(t, f) for t, _, f in recs]


def _one(flows, port):
    rows = flows[flows["resp_p"] == port].to_dict("records")
    assert len(rows) == 1, rows
    return rows[0]


def test_the_client_side_of_a_working_session_is_seen_one_way_not_blocked(tmp_path):
    recs = session(T0, 52000)
    flows, a = whole(write(tmp_path, client_only(recs)))
    r = _one(flows, 23101)
    assert (r["history"], r["conn_state"], r["orig_pkts"], r["resp_pkts"]) == ("SADF", "SH", 8, 0)
    # the responder's bytes from the client's acknowledgements: 7393 - 5001 (its FIN, not
    # captured, cannot be told from a byte of data); the client's own from its sequence numbers
    assert (r["orig_bytes"], r["resp_bytes"]) == (len(HELLO) + 93 + 31, 2392)
    assert (r["purpose"], r["verdict"], r["reason"]) == ("agent_connection", "unclassified", "one_way")
    assert r["detail"] == ("only the originator's packets were captured: they acknowledge the responder's SYN-ACK "
                           f"and 2,392 bytes of its answers, so the server answered; {HINT}; not judged")
    assert_classify_same(flows)
    # the same capture with both directions: the server's bytes as captured (its FIN seen), no warning
    full, b = whole(write(tmp_path, both(recs), "both.pcap"))
    assert _one(full, 23101)["resp_bytes"] == 2391
    assert not [w for w in b.warnings if "one direction" in w]


def test_every_flow_one_way_warns_and_the_checklist_says_seen_one_way(tmp_path):
    recs = session(T0, 52000) + dropped_syn(T0 + 2, 52001) + session(T0 + 12, 52002, 29201)
    path = write(tmp_path, client_only(recs))
    flows = assert_chunks_same(path, [600, 1500])
    got = {r["resp_p"]: (r["verdict"], r["reason"], r["resp_bytes"]) for r in flows.to_dict("records")}
    assert got == {23101: ("unclassified", "one_way", 2392), 27201: ("blocked", "no_answer", 0),
                   29201: ("unclassified", "one_way", 2392)}
    _, a = whole(path)
    assert a.warnings == [
        "c.pcap: every TCP flow (3) shows one direction only, 2 of them acknowledging packets of the other side "
        "that are not in the capture: a mirror port or tap that sees one direction, or asymmetric routing? "
        "Attempts without an answer here may have had one (a DNS query's answer too); capture both directions "
        "(on the agent itself) to judge them"]
    chk = readiness(flows, RULES).set_index("rule")
    # (the table's running counts give the same checklist)
    pd.testing.assert_frame_equal(TableSummary.of(flows).readiness(RULES).set_index("rule"), chk)
    assert chk.loc["agent_connection", "status"] == "seen one-way"
    assert chk.loc["klsctunnel", "status"] == "seen one-way"
    assert chk.loc["agent_connection", "reasons"] == "one_way"
    assert chk.loc["agent_connection", "fix"].startswith(
        "1 connection on TCP 23100-23199 seen in one direction only: the agent's packets acknowledge the server's "
        "answers (its SYN-ACK, and data), but the capture holds none of the server's packets")
    # the SYN that nothing answered stays blocked, with the firewall advice
    assert chk.loc["activation", "status"] == "blocked"
    assert chk.loc["activation", "fix"].startswith("allow outbound TCP 27200-27299")


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_the_tshark_engine_agrees(tmp_path):
    recs = session(T0, 52000) + dropped_syn(T0 + 2, 52001) + session(T0 + 12, 52002, 29201)
    path = write(tmp_path, client_only(recs))
    cols = ["uid", "history", "conn_state", "orig_bytes", "resp_bytes", "verdict", "reason", "detail"]
    a, t = analyze_file(path, RULES), analyze_file(path, RULES, engine="tshark")
    assert t.flows[cols].sort_values("uid").values.tolist() == a.flows[cols].sort_values("uid").values.tolist()
    assert [w for w in t.warnings if "one direction" in w] == [w for w in a.warnings if "one direction" in w] != []


def test_the_server_side_only_names_its_syn_ack_not_a_mid_connection_start(tmp_path):
    recs = session(T0, 52000) + session(T0 + 12, 52002, 29201)
    path = write(tmp_path, server_only(recs))
    flows = assert_chunks_same(path, [500])
    for r in flows.to_dict("records"):
        assert (r["history"], r["verdict"], r["reason"]) == ("^hdf", "unclassified", "partial")
        # the client's bytes from the server's acknowledgements (its FIN, not captured, counted)
        assert (r["resp_bytes"], r["orig_bytes"]) == (2391, len(HELLO) + 93 + 31 + 1)
        assert r["detail"] == (f"only the responder's 5 packets seen (its SYN-ACK among them), none from the "
                               f"originator: {HINT}; not judged")
    _, a = whole(path)
    assert [w.split(":", 1)[1][:57] for w in a.warnings] == [" every TCP flow (2) shows one direction only, 2 of them a"]


def test_a_syn_sent_again_and_again_stays_blocked_in_a_one_way_capture(tmp_path):
    flows, a = whole(write(tmp_path, client_only(dropped_syn(T0, 52001) + dropped_syn(T0 + 10, 52003))))
    assert [(r["verdict"], r["reason"], r["detail"]) for r in flows.to_dict("records")] == \
        [("blocked", "no_answer", "SYN sent 4 times, no answer")] * 2
    # (nothing acknowledges anything: no sign of a one-way capture)
    assert not [w for w in a.warnings if "one direction" in w]


def _hello_not_acked(t: float, sport: int, resend: bool, close: str):
    """Handshake, then the ClientHello: sent again 5 times (``resend``) or once; the server
    acknowledges it (or not) and never answers; the client then resets (``close`` 'R'), closes
    ('F') or waits ('')."""
    c, s = _pair(sport, 23101)
    h = len(HELLO)
    out = [(t, True, c(flags="S", seq=100)), (t + 0.02, False, s(flags="SA", seq=900, ack=101)),
           (t + 0.021, True, c(flags="A", seq=101, ack=901)), (t + 0.03, True, c(flags="PA", seq=101, ack=901) / Raw(HELLO))]
    out += [(t + d, True, c(flags="PA", seq=101, ack=901) / Raw(HELLO)) for d in ((0.25, 0.7, 1.5, 3.1, 6.3) if resend else ())]
    if not resend:
        out.append((t + 0.05, False, s(flags="A", seq=901, ack=101 + h)))
    if close == "R":
        out.append((t + 12, True, c(flags="RA", seq=101 + h, ack=901)))
    elif close == "F":
        out += [(t + 0.5, True, c(flags="FA", seq=101 + h, ack=901)),
                (t + 0.51, False, s(flags="FA", seq=901, ack=102 + h)),
                (t + 0.52, True, c(flags="A", seq=102 + h, ack=902))]
    return out


def test_a_clienthello_sent_again_never_acknowledged_is_tls_failed(tmp_path):
    flows, _ = whole(write(tmp_path, client_only(_hello_not_acked(T0, 52100, resend=True, close="R"))))
    (r,) = flows.to_dict("records")
    assert (r["resp_bytes"], r["verdict"], r["reason"]) == (0, "blocked", "tls_failed")
    assert r["detail"] == ("ClientHello sent again, never acknowledged by the server (only the originator's packets "
                           "were captured: they acknowledge the responder's SYN-ACK, nothing of the server's after it: "
                           "the ClientHello or its answers dropped on the way)")
    assert_classify_same(flows)


def test_a_clienthello_the_server_never_answered_before_the_client_closed_is_tls_failed(tmp_path):
    # (the server's FIN moved the client's acknowledgement by one: at most a FIN, no answer)
    flows, _ = whole(write(tmp_path, client_only(_hello_not_acked(T0, 52101, resend=False, close="F"))))
    (r,) = flows.to_dict("records")
    assert (r["resp_bytes"], r["verdict"], r["reason"]) == (1, "blocked", "tls_failed")
    assert r["detail"] == ("ClientHello not answered: only the originator's packets were captured: they acknowledge "
                           "the responder's SYN-ACK, no byte of the server's after it but maybe a FIN, then the "
                           "client closed")


def test_a_clienthello_answered_with_an_alerts_size_then_closed_is_tls_failed(tmp_path):
    # the server's 7-byte alert and its FIN, acknowledged by the client, which then closes
    c, _ = _pair(52102, 23101)
    h = len(HELLO)
    recs = [(T0, c(flags="S", seq=100)), (T0 + 0.021, c(flags="A", seq=101, ack=901)),
            (T0 + 0.03, c(flags="PA", seq=101, ack=901) / Raw(HELLO)),
            (T0 + 0.06, c(flags="A", seq=101 + h, ack=909)), (T0 + 0.07, c(flags="FA", seq=101 + h, ack=909))]
    flows, _ = whole(write(tmp_path, recs))
    (r,) = flows.to_dict("records")
    assert (r["resp_bytes"], r["verdict"], r["reason"]) == (8, "blocked", "tls_failed")
    assert r["detail"] == ("TLS handshake aborted: only the originator's packets were captured: they acknowledge the "
                           "responder's SYN-ACK and 8 bytes of its answers, a cleartext alert's size (a FIN included), "
                           "then the client closed")
    assert_classify_same(flows)


def test_a_mid_connection_one_way_capture_whose_acknowledgements_go_on_is_not_judged(tmp_path):
    # the client's data of a long-lived connection, its acknowledgement going on: the server's
    # bytes arrive, the capture misses them (it was "nothing came back")
    c, _ = _pair(52200, 23101)
    recs = [(T0 + i, c(flags="PA", seq=10_000 + 40 * i, ack=70_000 + 500 * i) / Raw(b"\x17" * 40)) for i in range(6)]
    flows, _ = whole(write(tmp_path, recs))
    (r,) = flows.to_dict("records")
    assert (r["partial"], r["resp_bytes"], r["verdict"], r["reason"]) == (True, 2500, "unclassified", "one_way,partial")
    assert r["detail"] == ("capture started mid-connection; only the originator's 6 packets captured, whose "
                           f"acknowledgements show 2,500 bytes of the responder's arriving: {HINT}; not judged")
    assert_classify_same(flows)


def test_lone_acks_prove_nothing_no_warning(tmp_path):
    # an ACK scan (nmap -sA) nothing answered: one ACK per port, no SYN before it, nothing going on
    recs = []
    for i, port in enumerate((23101, 27201, 29201)):
        c, _ = _pair(40000 + i, port)
        recs.append((T0 + i, c(flags="A", seq=500, ack=9000)))
    flows, a = whole(write(tmp_path, recs))
    assert [(r["verdict"], r["reason"], r["resp_bytes"]) for r in flows.to_dict("records")] == \
        [("unclassified", "partial", 0)] * 3
    assert not [w for w in a.warnings if "one direction" in w]
    # two long-lived connections seen from the middle, the client's acknowledgements going on: warned
    recs = []
    for i, port in enumerate((23101, 29201)):
        c, _ = _pair(40100 + i, port)
        recs += [(T0 + 10 * i + k, c(flags="PA", seq=10_000 + 40 * k, ack=70_000 + 500 * k) / Raw(b"\x17" * 40))
                 for k in range(3)]
    _, a = whole(write(tmp_path, recs, "mid.pcap"))
    assert [w[:60] for w in a.warnings] == ["mid.pcap: every TCP flow (2) shows one direction only, 2 of "]


def _rejected(client: str, dp: str, dport: int = 13295, sport: int = 50100):
    c = Ether(IP(src=client, dst=dp) / TCP(sport=sport, dport=dport, flags="S", seq=10))
    s = Ether(IP(src=dp, dst=client) / TCP(sport=dport, dport=sport, flags="RA", seq=0, ack=11))
    return [(T0, c), (T0 + 0.001, s)]


def test_a_reset_from_the_distribution_point_on_the_clients_subnet_says_nothing_listens(tmp_path):
    flows, _ = whole(write(tmp_path, _rejected("192.0.2.23", DP)))
    (r,) = flows.to_dict("records")
    assert (r["conn_state"], r["purpose"], r["verdict"], r["reason"]) == ("REJ", "dp_push", "blocked", "rejected")
    assert r["detail"] == ("the SYN was answered by a TCP reset from the distribution point itself (192.0.2.5, on the "
                           "client's subnet: no router between them): nothing listens on the port there (the service "
                           "is not running or not enabled), or its own firewall rejects it")
    assert_classify_same(flows)
    fix = readiness(flows, RULES).set_index("rule").loc["dp_push", "fix"]
    assert TableSummary.of(flows).readiness(RULES).set_index("rule").loc["dp_push", "fix"] == fix
    assert fix == ("this connection attempt was answered by a TCP reset from the distribution point itself (on the "
                   "client's subnet: no router between them): TCP 13295 reached it, but nothing listens there: check "
                   "that the service for it is running and listening on TCP 13295 there (the distribution point sends "
                   "push notifications to managed devices; the service: the Network Agent service, klnagent); if it "
                   "is, its own firewall rejects it: allow inbound TCP "
                   "13295 on the distribution point, from the managed devices (only if it is used as a push server)")


def test_a_reset_from_a_distribution_point_on_another_subnet_keeps_the_firewall_in_view(tmp_path):
    flows, _ = whole(write(tmp_path, _rejected("198.51.100.23", DP, dport=13000)))
    (r,) = flows.to_dict("records")
    assert r["detail"] == ("the SYN was answered by a TCP reset from the distribution point's address (192.0.2.5): "
                           "nothing listens on the port there (the service is not running or not enabled), or a "
                           "firewall rejects it (its own, or one between the subnets)")
    fix = readiness(flows, RULES).set_index("rule").loc["dp_agent_connection", "fix"]
    assert fix.startswith("this connection attempt was answered by a TCP reset from the distribution point's address: "
                          "nothing listens there, or a firewall rejects it (its own, or one between the subnets): "
                          "check that the service for it is running and listening on TCP 13000 there")
    assert fix.endswith("if it is: allow inbound TCP 13000 on the distribution point, from the managed devices")
    # a reset from a cloud server (not a LAN purpose) keeps its words and advice
    flows, _ = whole(write(tmp_path, _rejected(AGENT, CLOUD, dport=23101), "cloud.pcap"))
    (r,) = flows.to_dict("records")
    assert r["detail"] == "the SYN was answered by a TCP reset"
    assert readiness(flows, RULES).set_index("rule").loc["agent_connection", "fix"].startswith(
        "allow outbound TCP 23100-23199")
