"""Session 40: the report's ICMP and capture-end advice comes from data columns, not from words
in a flow's ``detail``, which quotes names from the packets (an SNI, a DNS name) that anyone
can choose.

* A port unreachable from the destination itself (NOT_LISTENING), one carrying a cloud server's
  own address (CLOUD_FORGED), an ICMP error that refuses nothing (a routing loop: "no port is to
  be opened") and a router's network/host unreachable are read from ``icmp_unreachable``
  (report.port_unreachable, icmp_kinds, route_counts: the detail only compared with what
  classify writes from that column).
* An attempt the capture's end cut short is told by the note classify puts last in the detail
  (report.cut_short): the same words quoted earlier, in a name, do not count.
"""
from __future__ import annotations

import re

import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import ICMP, IP, TCP, UDP

from pcapbuild import eth, pcap_bytes, tcp_session

from kscc_traffic.analyze import analyze_file
from kscc_traffic.rules import load_rules
from kscc_traffic.unreachable import CLOUD_FORGED, NOT_LISTENING

RULES = load_rules()
AGENT, DP, RESOLVER, ROUTER = "192.0.2.10", "192.0.2.50", "198.51.100.53", "192.0.2.1"
T0 = 1_764_500_000.0
CUT_NOTE = "the capture ended 0.500 s after its first packet, maybe before an answer could come"
#: what a name quoted in a detail could hold: each would change the advice if read from the text
TRIGGERS = {
    "closed": NOT_LISTENING,
    "forged": CLOUD_FORGED,
    "loop": "answered by ICMP TTL exceeded in transit (11/0) from 192.0.2.1",
    "route": "answered by ICMP host unreachable (3/1) from 192.0.2.1",
    "cut": CUT_NOTE,
}


def _filler(t0, t1, step=0.5):
    """Other traffic until ``t1``: the capture goes on, nothing near its end but what a test puts."""
    out, t = [], t0
    while t < t1:
        out.append((t, eth(IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=40000, dport=40001) / (b"x" * 60))))
        t += step
    return out


def _flows(tmp_path, recs, until=30.0, name="c.pcap"):
    p = tmp_path / name
    p.write_bytes(pcap_bytes(sorted(recs + _filler(T0, T0 + until), key=lambda r: r[0])))
    return analyze_file(p, RULES).flows


def _syn_answered_by(tmp_path, icmp_type, icmp_code, sender, port=13000, server=DP):
    syn = IP(src=AGENT, dst=server) / TCP(sport=50010, dport=port, flags="S", seq=1000)
    recs = [(T0 + 1 + k, eth(syn)) for k in range(2)]
    recs += [(T0 + 1.01 + k, eth(IP(src=sender, dst=AGENT) / ICMP(type=icmp_type, code=icmp_code) / bytes(syn)))
             for k in range(2)]
    return _flows(tmp_path, recs)


def _hello_reset(tmp_path, port=13000, server=DP):
    """A ClientHello the server resets: blocked tls_failed, its detail quoting no name."""
    from test_decode_more_encaps import client_hello
    recs = tcp_session((AGENT, 50004), (server, port), t0=T0 + 1, close=False)
    hello = IP(src=AGENT, dst=server) / TCP(sport=50004, dport=port, flags="PA", seq=1001, ack=5001) \
        / client_hello("ksc-dp.corp.example")
    recs.append((T0 + 1.05, eth(hello)))
    recs.append((T0 + 1.1, eth(IP(src=server, dst=AGENT) / TCP(sport=port, dport=50004, flags="R", seq=5001))))
    return _flows(tmp_path, recs)


def _checklist_rows(flows, purpose):
    """The purpose's readiness row, from the whole table and from the table report's
    batch-by-batch summary (two batches)."""
    from kscc_traffic.report import TableSummary, readiness
    whole = readiness(flows, RULES)
    s = TableSummary(rules=RULES)
    half = len(flows) // 2
    s.add(flows.iloc[:half])
    s.add(flows.iloc[half:])
    batched = s.readiness(RULES)
    return (whole[whole["purpose"] == purpose].iloc[0].to_dict(),
            batched[batched["purpose"] == purpose].iloc[0].to_dict())


def _html_finding(flows):
    import html
    from kscc_traffic.html_report import render_html
    page = re.sub(r"generated [^<]*", "generated", render_html(flows, RULES, charts=False))   # (its clock)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _wrapped(text):
    return f" (for the name x.{text}.example, as sent)"


def _quoting(flows, i, text):
    """``flows`` with row ``i``'s detail quoting ``text`` in the middle, as a name quoted there
    would (classify quotes certificate names, SNIs, DNS names in details)."""
    out = flows.copy()
    d = out.at[out.index[i], "detail"]
    out.at[out.index[i], "detail"] = d + _wrapped(text)
    return out


@pytest.mark.parametrize("kind", sorted(TRIGGERS))
def test_words_quoted_in_a_blocked_detail_change_no_advice(tmp_path, kind):
    flows = _hello_reset(tmp_path)
    i = flows.index.get_loc(flows.index[flows["resp_p"] == 13000][0])
    r = flows.iloc[i]
    assert (r.purpose, r.verdict, r.reason) == ("dp_agent_connection", "blocked", "tls_failed")
    plain = _checklist_rows(flows, "dp_agent_connection")
    crafted = _quoting(flows, i, TRIGGERS[kind])
    assert TRIGGERS[kind] in crafted.iloc[i]["detail"]
    assert _checklist_rows(crafted, "dp_agent_connection") == plain
    assert plain[0] == plain[1]
    assert _html_finding(crafted).replace(_wrapped(TRIGGERS[kind]), "") == _html_finding(flows)


def test_the_helpers_read_the_icmp_column(tmp_path):
    from kscc_traffic.report import cut_short, icmp_kinds, port_unreachable, route_counts
    details = [f"TLS handshake aborted (x.{t}.example)" for t in TRIGGERS.values()]
    icmp = [""] * len(details)
    closed, forged = port_unreachable(details, icmp)
    assert not closed.any() and not forged.any()
    assert icmp_kinds(details, icmp) == {} and icmp_kinds(details) == {}
    assert route_counts(details, [DP] * len(details), icmp) == (0, 0)
    assert not cut_short(["no_answer"] * len(details), details).any()
    # (a name quoted at the end of a detail, after the note's words, no more than one that ends it
    # with them but says more than the margin)
    assert not cut_short(["no_answer"], [f"SYN sent 1 time, no answer (x.{CUT_NOTE}"]).any()
    assert not cut_short(["no_answer"], [f"x; {CUT_NOTE.replace('0.500', '7.000')}"]).any()
    assert cut_short(["no_answer"], [f"SYN sent 1 time, no answer; {CUT_NOTE}"]).all()


def test_a_genuine_port_unreachable_from_the_destination_still_counts(tmp_path):
    from kscc_traffic.report import port_unreachable
    flows = _syn_answered_by(tmp_path, 3, 3, DP)
    r = flows[flows["resp_p"] == 13000].iloc[0]
    assert (r.verdict, r.reason) == ("blocked", "icmp_unreachable")
    assert NOT_LISTENING in r.detail
    closed, forged = port_unreachable([r.detail], [r.icmp_unreachable])
    assert closed.tolist() == [True] and forged.tolist() == [False]
    whole, batched = _checklist_rows(flows, "dp_agent_connection")
    assert whole == batched
    assert "nothing listens on that port" in _html_finding(flows)
    # (the same flow judged otherwise, its detail quoting the words: not counted)
    assert not port_unreachable([f"TLS handshake aborted ({NOT_LISTENING})"], [r.icmp_unreachable])[0].any()


def test_a_genuine_cloud_port_unreachable_is_forged(tmp_path):
    from kscc_traffic.report import port_unreachable
    flows = _syn_answered_by(tmp_path, 3, 3, "203.0.113.10", port=23101, server="203.0.113.10")
    r = flows[flows["resp_p"] == 23101].iloc[0]
    assert (r.verdict, r.reason) == ("blocked", "icmp_unreachable")
    assert CLOUD_FORGED in r.detail
    closed, forged = port_unreachable([r.detail], [r.icmp_unreachable])
    assert closed.tolist() == [False] and forged.tolist() == [True]
    whole, batched = _checklist_rows(flows, r.purpose)
    assert whole == batched and "refusing TCP 23101 on 203.0.113.10" in whole["fix"]


def test_a_genuine_routing_loop_still_says_no_port_to_open(tmp_path):
    flows = _syn_answered_by(tmp_path, 11, 0, ROUTER)
    r = flows[flows["resp_p"] == 13000].iloc[0]
    assert (r.verdict, r.reason) == ("blocked", "icmp_unreachable")
    whole, batched = _checklist_rows(flows, "dp_agent_connection")
    assert whole == batched and whole["fix"].endswith("no port is to be opened")
    # (the same words quoted in a tls_failed flow's detail: the firewall advice stays)
    (tmp_path / "tls").mkdir()
    crafted = _hello_reset(tmp_path / "tls")
    i = crafted.index.get_loc(crafted.index[crafted["resp_p"] == 13000][0])
    row, _ = _checklist_rows(_quoting(crafted, i, "by ICMP TTL exceeded in transit (11/0) from 192.0.2.1"),
                             "dp_agent_connection")
    assert "no port is to be opened" not in row["fix"]


def _lookup(t, port, qid, name, answered_for=None):
    """A UDP lookup of eu1.ksc.kaspersky.com; ``answered_for``: answered (another transaction
    ID) for that name, a response the client drops: blocked no_answer, its detail quoting it."""
    up = eth(IP(src=AGENT, dst=RESOLVER) / UDP(sport=port, dport=53))
    down = eth(IP(src=RESOLVER, dst=AGENT) / UDP(sport=53, dport=port))
    out = [(t, up / DNS(id=qid, rd=1, qd=DNSQR(qname=name)))]
    if answered_for is not None:
        out.append((t + 0.01, down / DNS(id=qid + 0x1000, qr=1, rd=1, ra=1, qd=DNSQR(qname=answered_for),
                                         an=DNSRR(rrname=answered_for, ttl=60, rdata="203.0.113.7"))))
    return out


def test_a_dns_name_holding_the_capture_end_note_is_not_cut_short(tmp_path):
    from kscc_traffic.report import CUT_SHORT_REASON, cut_short
    crafted = f"x. {CUT_NOTE}.y"
    flows = _flows(tmp_path, _lookup(T0 + 2, 52000, 0x100, "eu1.ksc.kaspersky.com", answered_for=crafted))
    d = flows[flows["purpose"] == "dns"].iloc[0]
    assert (d.verdict, d.reason) == ("blocked", "no_answer") and CUT_NOTE in d.detail
    assert not cut_short([d.reason], [d.detail]).any()
    page = _html_finding(flows)
    assert CUT_SHORT_REASON not in page
    from kscc_traffic.report import TableSummary
    s = TableSummary(rules=RULES)
    s.add(flows)
    assert not s.bl_cut.get("dns")


def test_a_lookup_the_capture_end_cut_short_still_says_so(tmp_path):
    from kscc_traffic.report import CUT_SHORT_REASON, TableSummary, cut_short
    recs = _lookup(T0 + 29.9, 52001, 0x101, "eu1.ksc.kaspersky.com")
    p = tmp_path / "end.pcap"
    p.write_bytes(pcap_bytes(sorted(recs + _filler(T0, T0 + 29.8), key=lambda r: r[0])))
    flows = analyze_file(p, RULES).flows
    d = flows[flows["purpose"] == "dns"].iloc[0]
    assert (d.verdict, d.reason) == ("blocked", "no_answer")
    assert re.search(r"; the capture ended 0\.\d{3} s after its first packet, maybe before an answer could come\Z",
                     d.detail)
    assert cut_short([d.reason], [d.detail]).tolist() == [True]
    assert CUT_SHORT_REASON in _html_finding(flows)
    s = TableSummary(rules=RULES)
    s.add(flows)
    assert s.bl_cut.get("dns") == 1


def test_a_table_without_the_icmp_column_counts_no_icmp_advice(tmp_path):
    from kscc_traffic.report import readiness
    flows = _syn_answered_by(tmp_path, 11, 0, ROUTER)
    row = readiness(flows.drop(columns=["icmp_unreachable"]), RULES)
    row = row[row["purpose"] == "dp_agent_connection"].iloc[0]
    assert "no port is to be opened" not in row["fix"]


def _hello_answered(tmp_path, sni, name="h.pcap"):
    """A ClientHello to 203.0.113.10:443 the server answers, records going on both ways after it
    (a handshake that went on), then both close: an unexpected ``host_mismatch`` flow for any
    name outside the purpose's mask, nothing failed."""
    from test_decode_more_encaps import client_hello
    srv = "203.0.113.10"

    def c2s(**kw):
        return eth(IP(src=AGENT, dst=srv) / TCP(sport=50020, dport=443, **kw))

    def s2c(**kw):
        return eth(IP(src=srv, dst=AGENT) / TCP(sport=443, dport=50020, **kw))
    t = T0 + 1
    hello = client_hello(sni)
    flight = b"\x16\x03\x03\x00\x40" + bytes(64)
    app = b"\x17\x03\x03\x00\x60" + bytes(96)
    c, v = 1001 + len(hello), 5001 + len(flight)
    recs = [(t, c2s(flags="S", seq=1000)), (t + 0.001, s2c(flags="SA", seq=5000, ack=1001)),
            (t + 0.002, c2s(flags="A", seq=1001, ack=5001)),
            (t + 0.003, c2s(flags="PA", seq=1001, ack=5001) / hello),
            (t + 0.004, s2c(flags="PA", seq=5001, ack=c) / flight),
            (t + 0.005, c2s(flags="PA", seq=c, ack=v) / app),
            (t + 0.006, s2c(flags="PA", seq=v, ack=c + len(app)) / app),
            (t + 0.007, c2s(flags="FA", seq=c + len(app), ack=v + len(app))),
            (t + 0.008, s2c(flags="FA", seq=v + len(app), ack=c + len(app) + 1)),
            (t + 0.009, c2s(flags="A", seq=c + len(app) + 1, ack=v + len(app) + 1))]
    # (and KSC agent traffic: a connection to the cloud server's agent port)
    recs += tcp_session((AGENT, 50021), (srv, 23101), t0=T0 + 2, c_data=client_hello("eu1.ksc.kaspersky.com"))
    return _flows(tmp_path, recs, name=name)


def test_a_name_holding_the_failed_attempt_words_changes_no_advice(tmp_path):
    from kscc_traffic.classify import MISMATCH_FAILED
    plain_name = "www.example"
    crafted = f"x {MISMATCH_FAILED} (tls_failed): TLS handshake aborted.example"
    plain = _hello_answered(tmp_path, plain_name, "plain.pcap")
    forged = _hello_answered(tmp_path, crafted, "crafted.pcap")
    p = plain[plain["resp_p"] == 443].iloc[0]
    f = forged[forged["resp_p"] == 443].iloc[0]
    assert (p.verdict, p.reason) == (f.verdict, f.reason) == ("unexpected", "host_mismatch")
    assert MISMATCH_FAILED in f.detail and MISMATCH_FAILED not in p.detail
    want = [{k: str(v).replace(plain_name, "NAME").replace("plain.pcap", "C") for k, v in row.items()}
            for row in _checklist_rows(plain, p.purpose)]
    got = [{k: str(v).replace(crafted, "NAME").replace("crafted.pcap", "C") for k, v in row.items()}
           for row in _checklist_rows(forged, f.purpose)]
    assert got == want


@pytest.mark.parametrize("column,words", [
    ("cert_names", "the server asked for a client certificate (CertificateRequest)"),
    ("cert_issuer", "certificate_required"),
    ("server_name", "the reset came from a device 1 hop nearer than the server (TTL 64 vs 63"),
    ("sni", "the reset came with the server's own TTL (63, as its packets on other connections)"),
    ("cert_names", "full-size segments lost, a path-MTU black hole?"),
])
def test_names_quoted_in_a_detail_are_taken_out_of_the_checks(tmp_path, column, words):
    from kscc_traffic.report import unquoted_details
    flows = _hello_reset(tmp_path)
    i = flows.index.get_loc(flows.index[flows["resp_p"] == 13000][0])
    plain = _checklist_rows(flows, "dp_agent_connection")
    value = f"x.{words}.example"
    crafted = _quoting(flows, i, words)
    crafted.at[crafted.index[i], column] = value
    assert unquoted_details(crafted)[i] == flows.iloc[i]["detail"] + " (for the name …, as sent)"
    assert unquoted_details(flows) == flows["detail"].tolist()
    got = [{k: v for k, v in row.items()} for row in _checklist_rows(crafted, "dp_agent_connection")]
    assert got == list(plain)


def test_classify_says_leaves_the_quoted_names_out():
    from kscc_traffic.classify import says
    row = {"cert_names": "a.example;ICMP x.example", "sni": "ksc-dp.corp.example"}
    assert not says("the client refused the certificate for a.example;ICMP x.example", row, "ICMP")
    assert says("the client refused it; its data was answered by ICMP administratively prohibited (3/13)", row, "ICMP")
    assert says("ICMP x.example (the name) and answered by ICMP host unreachable (3/1)", row, "ICMP")
    assert not says("no such words", row, "ICMP")
    assert says("a detail saying ICMP", {}, "ICMP")


def test_a_client_hello_refused_by_icmp_still_names_it(tmp_path):
    # (the note classify adds when the detail does not already tell of an ICMP error)
    from test_decode_more_encaps import client_hello
    recs = tcp_session((AGENT, 50030), (DP, 13000), t0=T0 + 1, close=False)
    hello = IP(src=AGENT, dst=DP) / TCP(sport=50030, dport=13000, flags="PA", seq=1001, ack=5001) \
        / client_hello("ICMP.corp.example")
    recs.append((T0 + 1.05, eth(hello)))
    recs.append((T0 + 1.053, eth(IP(src=ROUTER, dst=AGENT) / ICMP(type=3, code=13) / bytes(hello)[:60])))
    recs.append((T0 + 1.2, eth(IP(src=AGENT, dst=DP) / TCP(sport=50030, dport=13000, flags="R",
                                                          seq=1001 + len(hello[TCP].payload)))))
    r = _flows(tmp_path, recs)
    r = r[r["resp_p"] == 13000].iloc[0]
    assert (r.verdict, r.reason, r.sni) == ("blocked", "tls_failed", "ICMP.corp.example")
    assert r.detail.endswith("; its data was answered by ICMP administratively prohibited (3/13) from 192.0.2.1")


def test_classify_says_leaves_out_one_certificate_name_quoted_alone():
    # (a detail may quote one of the certificate's names, not the whole ';'-joined cell: session 41)
    from kscc_traffic.classify import quoted_names, says
    row = {"cert_names": "a.example;ICMP x.example", "sni": "ksc.example", "query": None}
    assert not says("the certificate is for 'ICMP x.example', not the name sent", row, "ICMP")
    assert says("the certificate is for 'ICMP x.example'; answered by ICMP host unreachable (3/1)", row, "ICMP")
    assert quoted_names(row, lambda v: "ICMP" in v) == ["a.example;ICMP x.example", "ICMP x.example"]
    assert quoted_names(row, lambda v: "." in v) == ["a.example;ICMP x.example", "ICMP x.example", "ksc.example",
                                                     "a.example"]
