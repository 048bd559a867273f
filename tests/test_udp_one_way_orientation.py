"""A UDP flow only one side of which sent: the sender is the originator (Zeek: the first
packet's sender) unless its port is a well-known one (< 1024: a DNS or NTP answer whose request
was not captured stays oriented towards the server, ``^d``). A documented high port as a source
(a port the OS or a NAT picked) no longer turns the flow round into "a datagram to 15001",
which made dp_multicast / gateway_udp verified with nothing received (break-it 6 F5)."""
from __future__ import annotations

import pytest

pytest.importorskip("scapy")

from scapy.all import DNS, DNSQR, DNSRR  # noqa: E402

from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.report import readiness  # noqa: E402
from kscc_traffic.rules import load_rules  # noqa: E402
from pcapbuild import pcap_bytes, udp  # noqa: E402

RULES = load_rules()
AGENT, PEER = "192.0.2.10", "198.51.100.9"


def _flows(tmp_path, recs, name="u.pcap"):
    path = tmp_path / name
    path.write_bytes(pcap_bytes(recs))
    return analyze_file(path, RULES).flows


COLS = ["orig_h", "orig_p", "resp_h", "resp_p", "orig_pkts", "resp_pkts", "history", "purpose", "verdict"]


@pytest.mark.parametrize("port", [15000, 15001, 15111])
def test_one_way_datagram_from_a_documented_port(tmp_path, port):
    f = _flows(tmp_path, [udp((AGENT, port), (PEER, 4500), b"x" * 20, t=1000.0 + k) for k in range(3)])
    assert f[COLS].values.tolist() == [[AGENT, port, PEER, 4500, 3, 0, "D", "", "unclassified"]]
    st = readiness(f, RULES).set_index("rule")["status"]
    assert (st == "not seen").all()


def test_one_way_datagram_to_a_documented_port_is_that_purpose(tmp_path):
    f = _flows(tmp_path, [udp((PEER, 40000), (AGENT, 15000), b"x" * 20)])
    assert f[COLS].values.tolist()[0][:7] == [PEER, 40000, AGENT, 15000, 1, 0, "D"]
    assert f["purpose"].iloc[0] == "gateway_udp" and f["verdict"].iloc[0] == "ok"


def test_a_dns_answer_alone_is_still_turned_towards_the_server(tmp_path):
    """Port 53 is well known: the answer whose query was not captured reads querier -> server,
    as Zeek's ``^d``."""
    ans = DNS(id=7, qr=1, qd=DNSQR(qname="eu1.ksc.kaspersky.com"),
              an=DNSRR(rrname="eu1.ksc.kaspersky.com", rdata="203.0.113.10"))
    f = _flows(tmp_path, [udp(("192.0.2.53", 53), (AGENT, 41000), bytes(ans))])
    r = f.iloc[0]
    assert (r["orig_h"], r["orig_p"], r["resp_h"], r["resp_p"]) == (AGENT, 41000, "192.0.2.53", 53)
    assert (r["orig_pkts"], r["resp_pkts"], r["history"]) == (0, 1, "^d")


def test_two_way_flows_keep_the_port_rule(tmp_path):
    """Both sides sent: the documented port is still taken as the server's (a capture that
    started between a request and its answer reads the same as one that did not)."""
    recs = [udp((AGENT, 15111), (PEER, 50000), b"a", t=1000.0), udp((PEER, 50000), (AGENT, 15111), b"b", t=1000.1)]
    f = _flows(tmp_path, recs)
    assert f[["orig_h", "orig_p", "resp_h", "resp_p"]].values.tolist() == [[PEER, 50000, AGENT, 15111]]


def test_checklist_says_seen_one_way_when_nothing_answered_the_datagrams(tmp_path):
    """UDP 15000/15001 expect no answer: datagrams sent and nothing back are ok flows, but the
    capture cannot show they were received, so their purposes are "seen one-way", not
    "verified" (break-it 13 W7), in the grouped checklist and the table report's alike. One
    answered flow of a UDP purpose (15111 to the KSN proxy) verifies it."""
    from kscc_traffic.report import TableSummary, render_table
    recs = [udp((PEER, 40000), (AGENT, 15000), b"x" * 20, t=1000.0),              # gateway_udp
            udp((AGENT, 40001), ("198.51.100.255", 15000), b"x" * 20, t=1000.1,
                dst_mac="ff:ff:ff:ff:ff:ff"),                                      # agent_broadcast
            udp((AGENT, 15111), (PEER, 50000), b"a", t=1000.2),
            udp((PEER, 50000), (AGENT, 15111), b"b", t=1000.3)]                   # answered
    f = _flows(tmp_path, recs)
    assert sorted(f.loc[f.verdict == "ok", "purpose"]) == ["agent_broadcast", "dp_ksn_proxy_udp", "gateway_udp"]
    for chk in (readiness(f, RULES), TableSummary.of(f).readiness(RULES)):
        st = chk.set_index("rule")
        assert st.loc[["gateway_udp", "agent_broadcast", "dp_ksn_proxy_udp", "dp_multicast"], "status"].tolist() == \
            ["seen one-way", "seen one-way", "verified", "not seen"]
        assert st.loc["agent_broadcast", "fix"].startswith(
            "1 flow on UDP 15000 seen, none answered (no answer is expected): this capture shows "
            "that they were sent, not that they were received")
    text = render_table(f, RULES)
    assert "seen one-way" in text and "What to change" not in text
