"""Leftovers of session 62's testers (session 63): each test crafts the case, checks the texts."""
from __future__ import annotations

import re

from scapy.all import IPv6, TCP, ICMPv6DestUnreach

from kscc_traffic import analyze, load_rules
from kscc_traffic.analyze import analyze_file
from kscc_traffic.live.session import LiveSession
from checklistcheck import checklists, finding, write
from chunkcmp import assert_same
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth, tcp_session
from test_live_session import _replay

RULES = load_rules()


def _live(path):
    """The flows of ``path`` replayed into a live session 3 frames a batch."""
    s = LiveSession(RULES, name=path.name)
    _replay(path, s, step=3)
    return s.final()


# --- 1: a port unreachable with the cloud server's own hop limit is the server's refusal ----------
C6, S6 = "2001:db8::10", "2001:db8:1::10"


def _server_443_hlim52():
    """(ts, frame) of an IPv6 connection to the server's 443 whose packets carry hop limit 52."""
    recs = []
    for t, p in tcp_session((C6, 50000), (S6, 443), t0=1000.0):
        if p[IPv6].src == S6:
            p[IPv6].hlim = 52
        recs.append((t, p))
    return recs


def _own_hop_limit(err_hlim: int):
    """IPv6: a connection to the server's 443 (its packets hop limit 52), then a SYN to 23101
    answered by ICMPv6 port unreachable from the server's address with ``err_hlim``; IPv4 to
    23101 works."""
    recs = _server_443_hlim52()
    syn = IPv6(src=C6, dst=S6) / TCP(sport=50001, dport=23101, flags="S", seq=7)
    err = IPv6(src=S6, dst=C6, hlim=err_hlim) / ICMPv6DestUnreach(code=4) / bytes(syn)
    recs += [(1001.0, eth(syn)), (1001.01, eth(err, src=SERVER_MAC, dst=CLIENT_MAC))]
    return recs + tcp_session(("192.0.2.10", 50002), ("203.0.113.10", 23101), t0=1002.0)


def test_port_unreachable_with_the_servers_own_hop_limit_is_the_servers_refusal(tmp_path):
    path = write(tmp_path, "own.pcap", _own_hop_limit(52))
    flows = analyze(path, RULES)
    row = flows[flows.resp_p == 23101].set_index("resp_h").loc[S6]
    assert row.icmp_unreachable == ("port unreachable (1/4) from 2001:db8:1::10 with its own hop limit (52, as its "
                                    "earlier packets), the destination itself")
    assert row.detail.startswith("answered by ICMP port unreachable (1/4) from 2001:db8:1::10 with its own hop limit "
                                 "(52, as its earlier packets), the cloud server's own address: most likely the "
                                 "cloud server's own answer")
    assert "forged" not in row.detail
    for rows in checklists(flows):
        fix = rows.loc["agent_connection", "fix"]
        assert fix.startswith("1 of 2 flows ok, 1 blocked (all blocked over IPv6, the ok ones over IPv4): this flow "
                              "was answered by ICMP port unreachable from the cloud server itself, refusing TCP 23101 "
                              "on 2001:db8:1::10: it came with the server's own hop limit"), fix
        assert "forged" not in fix and "path is blocked" not in fix
    assert "from the cloud server itself (with its own TTL or hop limit" in finding(flows, "agent_connection")
    # chunked and live say the same
    assert_same(path, [300, 700])
    live = _live(path).sort_values("uid").reset_index(drop=True)
    ref = analyze_file(path, RULES).flows.sort_values("uid").reset_index(drop=True)
    assert live["icmp_unreachable"].tolist() == ref["icmp_unreachable"].tolist()
    assert live["detail"].tolist() == ref["detail"].tolist()


def test_port_unreachable_with_another_hop_limit_stays_a_forged_answer(tmp_path):
    flows = analyze(write(tmp_path, "other.pcap", _own_hop_limit(61)), RULES)
    row = flows[flows.resp_p == 23101].set_index("resp_h").loc[S6]
    assert row.icmp_unreachable == "port unreachable (1/4) from 2001:db8:1::10, the destination itself"
    for rows in checklists(flows):
        assert "most likely forged by a firewall on the path" in rows.loc["agent_connection", "fix"]


# --- 2: the advice names the IPv6 field as the detail does: hop limit ------------------------------
def _reset_own_hop_limit(more: bool):
    """IPv6: a connection to the server's 443 (its packets hop limit 52), a SYN to 23101 refused by a
    reset with hop limit 52; with ``more``, a connection to 23102 that works."""
    recs = _server_443_hlim52()
    syn = IPv6(src=C6, dst=S6) / TCP(sport=50001, dport=23101, flags="S", seq=7)
    rst = IPv6(src=S6, dst=C6, hlim=52) / TCP(sport=23101, dport=50001, flags="RA", seq=0, ack=8)
    recs += [(1001.0, eth(syn)), (1001.01, eth(rst, src=SERVER_MAC, dst=CLIENT_MAC))]
    return recs + (tcp_session((C6, 50002), (S6, 23102), t0=1002.0) if more else [])


def test_an_ipv6_reset_is_advised_by_its_hop_limit(tmp_path):
    for more in (False, True):
        flows = analyze(write(tmp_path, f"rst{more}.pcap", _reset_own_hop_limit(more)), RULES)
        detail = flows[flows.resp_p == 23101].detail.iloc[0]
        assert "the reset came with the server's own hop limit (52" in detail
        assert "copies the server's hop limit looks the same" in detail and "TTL" not in detail
        for rows in checklists(flows):
            fix = rows.loc["agent_connection", "fix"]
            assert ("this connection attempt was answered by a TCP reset with the server's own hop limit (as its "
                    "packets on other connections): most likely the server's own answer") in fix, fix
            assert "copies the server's hop limit looks the same" in fix
            assert "TTL" not in fix


# --- 3: a NAT's two copies of one connection counted once -----------------------------------------
def _nat_rate_limited():
    """A capture on a NAT gateway (both sides, PAT): a connection that worked, then two attempts
    unanswered within 60 s of it (a rate-limit remark), each listed twice."""
    from scapy.layers.inet import IP
    from test_nat_capture_s62 import INSIDE, KSC, LAG, NAME, OUTSIDE, nat_attempt
    from pcapbuild import dns_answer
    recs = [dns_answer(NAME, KSC, 999.9)]
    isn, t0 = 0x2222_0000, 1000.0
    for src, sp, ttl, lag in ((INSIDE, 50000, 128, 0), (OUTSIDE, 61000, 127, LAG)):
        recs.append((t0 + lag, eth(IP(src=src, dst=KSC, ttl=ttl, id=50) / TCP(sport=sp, dport=23101, flags="S", seq=isn))))
        recs.append((t0 + 0.02 + lag, eth(IP(src=src, dst=KSC, ttl=ttl, id=51)
                                          / TCP(sport=sp, dport=23101, flags="A", seq=isn + 1, ack=9001))))
    for dst, dp, ttl, lag in ((OUTSIDE, 61000, 50, 0.01), (INSIDE, 50000, 49, 0.01 + LAG)):
        recs.append((t0 + lag, eth(IP(src=KSC, dst=dst, ttl=ttl, id=60)
                                   / TCP(sport=23101, dport=dp, flags="SA", seq=9000, ack=isn + 1),
                                   src=SERVER_MAC, dst=CLIENT_MAC)))
    recs += nat_attempt(1010.0, 50001, 61001, 0x1111_0001) + nat_attempt(1020.0, 50002, 61002, 0x1111_0002)
    return sorted(recs, key=lambda r: r[0])


def test_nat_copies_are_counted_once_in_the_checklist_and_the_flows_per_purpose(tmp_path):
    from kscc_traffic.report import render_table
    flows = analyze(write(tmp_path, "nat.pcap", _nat_rate_limited()), RULES)
    agent = flows[flows.purpose == "agent_connection"]
    assert sorted(agent.verdict) == ["blocked"] * 4 + ["ok"] * 2
    for rows in checklists(flows):
        row = rows.loc["agent_connection"]
        assert (row.flows, row.ok, row.blocked) == (3, 1, 2)
        assert row.fix.startswith(
            "4 blocked flows are 2 connection attempts captured on both sides of a NAT (2 of them the NAT's translated "
            "copies, see each flow's detail): their SYNs were captured leaving this device translated by its NAT, "
            "unanswered: the block is beyond this device (an upstream firewall, the provider or the server; this "
            "device forwarded them); there: 1 of 3 flows ok, 2 blocked: these 2 connection attempts were unanswered "
            "within 60 s after the same client's connection"), row.fix
    text = render_table(flows, RULES, width=250)
    assert re.search(r"│ agent_connection +│ +3 │ +1 │ +2 │ +0 │ +0 │", text), text
    assert ("NAT copies not counted here nor in the checklist: 3 flows (agent_connection 3) are the NAT's translated "
            "copies of connections counted") in text
    assert re.search(r"│ §A +│ agent_connection +│ tcp 23100-23199 +│ blocked +│ 3 +│", text)
    # (the count line counts every flow listed, and says how many are copies)
    assert "7 flows: 3 ok, 4 blocked, 0 unexpected, 0 unclassified (3 of them are the NAT's translated copies" in text
    assert "NAT copies not counted in the checklist: 3 flows" in finding_page(flows)
    from kscc_traffic.html_report import render_html
    from checklistcheck import page_text
    assert "NAT copies not counted in this chart: 3 flows (agent_connection 3)" in page_text(
        render_html(flows, RULES, charts=True))


def finding_page(flows) -> str:
    """The HTML report's text."""
    from kscc_traffic.html_report import render_html
    from checklistcheck import page_text
    return page_text(render_html(flows, RULES, charts=False))


# --- 4: a file cut mid-record: the lost last record may have held the answer -----------------------
def _cut_after_syn(cut: bool) -> bytes:
    """A connection to 443 that works, a SYN to 23101, then its SYN-ACK, the file cut inside that
    last record (``cut``) or whole."""
    from pcapbuild import pcap_bytes
    from scapy.all import IP
    recs = tcp_session(("192.0.2.10", 50000), ("203.0.113.10", 443), t0=1000.0)
    recs.append((1001.0, eth(IP(src="192.0.2.10", dst="203.0.113.10") / TCP(sport=50001, dport=23101, flags="S", seq=7))))
    recs.append((1001.05, eth(IP(src="203.0.113.10", dst="192.0.2.10")
                              / TCP(sport=23101, dport=50001, flags="SA", seq=9, ack=8), src=SERVER_MAC, dst=CLIENT_MAC)))
    data = pcap_bytes(recs)
    return data[:-20] if cut else pcap_bytes(recs[:-1])


def test_a_file_cut_mid_record_says_the_lost_record_may_have_held_the_answer(tmp_path):
    path = tmp_path / "cut.pcap"
    path.write_bytes(_cut_after_syn(True))
    flows = analyze_file(path, RULES).flows
    row = flows[flows.resp_p == 23101].iloc[0]
    assert row.detail == ("SYN sent 1 time, no answer; the capture ended 0.000 s after its first packet, maybe before "
                          "an answer could come, or the answer was in the capture's last record, lost where the file "
                          "was cut mid-record")
    for rows in checklists(flows):
        fix = rows.loc["agent_connection", "fix"]
        assert ("nothing shows a block, the answer may simply not be in the capture; the file was cut mid-record "
                "right after it (its last record skipped, as the warning says): that lost record may have held the "
                "answer. Copy the capture file whole, or capture longer") in fix, fix
    assert_same(path, [200, 400])
    # a whole file ending the same way: no such words
    whole = tmp_path / "whole.pcap"
    whole.write_bytes(_cut_after_syn(False))
    flows = analyze_file(whole, RULES).flows
    assert flows[flows.resp_p == 23101].iloc[0].detail.endswith("maybe before an answer could come")
    for rows in checklists(flows):
        assert "cut mid-record" not in rows.loc["agent_connection", "fix"]


# --- 5: a narrow terminal folds the checklist at spaces; a forged Host is no IPv6 literal ------------
def test_a_60_column_checklist_keeps_port_ranges_whole(tmp_path):
    from typer.testing import CliRunner

    from kscc_traffic.cli import app
    path = write(tmp_path, "own.pcap", _own_hop_limit(61))
    for columns in ("60", "66", "72"):
        out = CliRunner().invoke(app, ["analyze", str(path)], env={"COLUMNS": columns}).output
        table = out[out.index("Readiness checklist"):out.index("What to change")]
        assert max(len(x) for x in table.splitlines()) <= int(columns)
        for label in ("23100-23199", "23700-23799", "27200-27299", "29200-29299"):
            assert label in table, (columns, table)
        assert "agent_connection" in table and "2319\n" not in table and "231 " not in table


def test_a_forged_host_holding_colons_is_shown_as_its_text(tmp_path):
    from pcapbuild import pcap_bytes
    recs = tcp_session(("192.0.2.10", 50000), ("203.0.113.10", 80), t0=1000.0,
                       c_data=b"GET /x.crl HTTP/1.1\r\nHost: evil:crl:digicert.com\r\n\r\n",
                       s_data=b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    recs += tcp_session(("192.0.2.10", 50003), ("203.0.113.11", 80), t0=1003.0,
                        c_data=b"GET /x.crl HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n\r\n",
                        s_data=b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    path = tmp_path / "host.pcap"
    path.write_bytes(pcap_bytes(recs))
    flows = analyze(path, RULES).set_index("resp_h")
    assert "to the request for http://evil:crl:digicert.com:80 (" in flows.loc["203.0.113.10", "detail"]
    assert "[evil" not in flows.loc["203.0.113.10", "detail"]
    assert "to the request for http://[2001:db8::1]:80 (" in flows.loc["203.0.113.11", "detail"]


# --- 6: times beyond 2116 keep their order and differences ------------------------------------------
def test_syns_stamped_in_the_year_2300_stay_four_syns_seven_seconds_apart(tmp_path):
    from scapy.all import IP
    from scapy.layers.l2 import Ether
    from scapy.utils import PcapNgWriter

    from kscc_traffic.capture.files import TS_MAX_NS
    path = tmp_path / "y2300.pcapng"
    w = PcapNgWriter(str(path))
    for dt in (0, 1, 3, 7):      # (one IP id: a SYN sent again, as Windows does)
        p = Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IP(src="192.0.2.10", dst="203.0.113.10", id=4242) \
            / TCP(sport=50000, dport=23101, flags="S", seq=7)
        p.time = 10_472_799_600 + dt      # (the year 2301)
        w.write(p)
    w.close()
    a = analyze_file(path, RULES)
    row = a.flows.iloc[0]
    assert len(a.flows) == 1 and row.orig_pkts == 4 and row.duration == 7.0
    assert row.detail == "SYN sent 4 times, no answer"
    assert not any("duplicated" in x for x in a.warnings), a.warnings
    assert ("y2300.pcapng: 4 timestamps beyond the years 1823-2116 that times are kept in (moved inside it, keeping "
            "their order and the time between them)") in a.warnings
    assert TS_MAX_NS - 2**59 < row.ts_ns < TS_MAX_NS
    assert_same(path, [150, 300])
