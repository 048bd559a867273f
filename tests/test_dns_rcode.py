"""The DNS response code (``dns_rcode``, Zeek's rcode_name of a flow's responses: the first that is
not NOERROR, else NOERROR; see also test_dns_all_responses.py): filled
for DNS over UDP and TCP, the same whole and in chunks and with the tshark engine; an error
answer is told in ``detail`` (blocked/rejected for a name the agent needs, ok for another); the
table and HTML reports list the names
answered with an error, escaped and bounded."""
from __future__ import annotations

import io
import shutil
import struct

import pandas as pd
import pytest
from rich.console import Console
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP

from chunkcmp import assert_same, row, write
from kscc_traffic import report
from kscc_traffic.analyze import analyze_file
from kscc_traffic.html_report import MAX_DNS_ERROR_ROWS, render_html
from kscc_traffic.protocols import dns
from kscc_traffic.report import TableSummary, dns_errors, print_summary, render_table
from kscc_traffic.rules import load_rules
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth, tcp_session, udp

RULES = load_rules()
C, RES = "192.0.2.10", "203.0.113.53"
HOSTILE = "<script>alert(1)</script>.example"
#: what the detail of an error answer adds for a name the agent needs
NEED = "; the agent needs this name: without its address it cannot connect (fix the resolver or the DNS filter)"
#: (REFUSED: what the report advises for it, s39-net2)
NEED_REFUSED = "; the agent needs this name: without its address it cannot connect (the resolver refuses recursion for this client: set the client to a resolver that serves it, or allow it on this one)"


def _q(name: str, txid: int) -> DNS:
    return DNS(id=txid, rd=1, qd=DNSQR(qname=name))


def _r(name: str, txid: int, rcode: int, addr: str | None = None) -> DNS:
    an = [DNSRR(rrname=name, type="A", rdata=addr)] if addr else []
    return DNS(id=txid, qr=1, rd=1, ra=1, rcode=rcode, qd=DNSQR(qname=name), an=an)


def _tcp_msg(m: DNS) -> bytes:
    b = bytes(m)
    return struct.pack("!H", len(b)) + b


#: (name, rcode or None for no answer) of the lookups of :func:`_capture`, over UDP then TCP
CASES = [("eu1.ksc.kaspersky.com", 3), ("eu2.ksc.kaspersky.com", 5), ("eu3.ksc.kaspersky.com", 0),
         ("eu4.ksc.kaspersky.com", None)]


def _capture(tmp_path):
    """Four lookups over UDP (client ports 50000-50003) and four over TCP (51000-51003): an
    NXDOMAIN, a REFUSED, a NOERROR with an address, and a query without an answer."""
    recs, t = [], 1000.0
    for i, (name, rc) in enumerate(CASES):
        recs.append(udp((C, 50000 + i), (RES, 53), bytes(_q(name, i)), t=t))
        if rc is not None:
            resp = _r(name, i, rc, "203.0.113.10" if rc == 0 else None)
            recs.append(udp((RES, 53), (C, 50000 + i), bytes(resp), t=t + 0.01,
                            src_mac=SERVER_MAC, dst_mac=CLIENT_MAC))
        t += 1
    for i, (name, rc) in enumerate(CASES):
        answer = b"" if rc is None else _tcp_msg(_r(name, 100 + i, rc, "203.0.113.11" if rc == 0 else None))
        recs += tcp_session((C, 51000 + i), (RES, 53), t0=t, c_data=_tcp_msg(_q(name, 100 + i)), s_data=answer)
        t += 1
    return write(tmp_path, sorted(recs, key=lambda r: r[0]), "rcodes.pcap")


def test_rcode_names_are_zeeks():
    # Zeek's DNS::base_errors (base/protocols/dns/consts.zeek), its spelling kept
    assert [dns.rcode_name(i) for i in range(11)] == [
        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
        "NXRRSet", "NOTAUTH", "NOTZONE"]
    assert dns.rcode_name(15) == "unassigned-15" and dns.rcode_name(16) == "rcode-16"


@pytest.mark.parametrize("proto, base", [("udp", 50000), ("tcp", 51000)])
def test_rcode_verdict_and_detail(tmp_path, proto, base):
    flows = analyze_file(_capture(tmp_path), RULES).flows
    assert len(flows) == 8
    # the column sits right after query
    cols = list(flows.columns)
    assert cols[cols.index("query") + 1] == "dns_rcode" and flows["dns_rcode"].dtype == object
    got = {int(r.orig_p) - base: (r.query, r.service, r.dns_rcode, r.purpose, r.verdict, r.reason, r.detail)
           for r in flows[flows["proto"] == proto].itertuples()}
    assert got[0] == ("eu1.ksc.kaspersky.com", "dns", "NXDOMAIN", "dns", "blocked", "rejected",
                      "DNS answer NXDOMAIN for eu1.ksc.kaspersky.com" + NEED)
    assert got[1] == ("eu2.ksc.kaspersky.com", "dns", "REFUSED", "dns", "blocked", "rejected",
                      "DNS answer REFUSED for eu2.ksc.kaspersky.com" + NEED_REFUSED)
    assert got[2] == ("eu3.ksc.kaspersky.com", "dns", "NOERROR", "dns", "ok", "", "")
    if proto == "udp":
        assert got[3] == ("eu4.ksc.kaspersky.com", "dns", "", "dns", "blocked", "no_answer",
                          "DNS query without an answer")
    else:  # the connection was answered, the query was not
        assert got[3] == ("eu4.ksc.kaspersky.com", "dns", "", "dns", "ok", "", "")
    # the NOERROR answer still names the flows to its address (nothing else changed)
    assert set(flows.loc[flows["dns_rcode"] == "", "query"]) == {"eu4.ksc.kaspersky.com"}


def test_non_dns_flows_have_no_rcode(tmp_path):
    recs = tcp_session((C, 52000), ("203.0.113.10", 443), c_data=b"\x16\x03\x01\x00\x05hello")
    recs.append(udp((C, 52001), ("203.0.113.10", 15000), b"x" * 40, t=1001.0))
    flows = analyze_file(write(tmp_path, recs), RULES).flows
    assert len(flows) == 2 and (flows["dns_rcode"] == "").all()


def test_table_report_lists_error_names(tmp_path):
    flows = analyze_file(_capture(tmp_path), RULES).flows
    text = render_table(flows, RULES, width=200)
    _, _, rest = text.partition("DNS names answered with an error (4 flows)")
    assert rest, text
    section = rest.split("Flagged flows")[0]
    assert len([ln for ln in section.splitlines() if "kaspersky" in ln]) == 2
    errs = dns_errors(flows)
    assert errs.to_dict("records") == [
        {"name": "eu1.ksc.kaspersky.com", "rcode": "NXDOMAIN", "flows": 2},
        {"name": "eu2.ksc.kaspersky.com", "rcode": "REFUSED", "flows": 2}]
    assert "eu1.ksc.kaspersky.com │ NXDOMAIN │     2 │ the name does not exist" in section
    assert "eu2.ksc.kaspersky.com │ REFUSED  │     2 │ the resolver refuses" in section
    assert "eu3" not in section and "eu4" not in section
    # the unanswered UDP query and the four error answers for the agent's names are flagged
    assert "Flagged flows (5)" in text and "8 flows: 3 ok, 5 blocked" in text
    # and what to change says both: let DNS through, make the resolver answer the agent's names
    # (the 4 rejected flows are error answers, no TCP reset: no advice about DNS over TCP; newcomer 21 F3)
    # (entries wrap with a hanging indent: compare with the whitespace collapsed)
    # (s39: the 2 REFUSED answers advised apart, the resolver refusing this client; the 2 NXDOMAIN
    # apart too since newcomer s60 #7; newcomer s59 #6: the unanswered query went to the resolver that answered the
    # client's other queries: not "allow DNS", its upstream or a filter on that name)
    fix = report.dns_fix(["no_answer", "rejected"], resets=0, error_answers=4,
                         kinds={**report.dns_blocked_kinds(flows), "resolver_answered": 1})
    assert report.dns_blocked_kinds(flows)["refused"] == 2 and report.ResolverAnswers.of(flows) == 1
    assert fix.startswith("1 query was unanswered by a resolver that answered other queries of the same client") \
        and "2 queries were answered REFUSED" in fix and report.dns_nxdomain_fix(2) in fix \
        and "make the resolver answer the names the agent needs" not in fix
    assert "allow DNS" not in text
    assert " ".join(("dns (blocked: no_answer, rejected): " + fix).split()) in " ".join(text.split())
    assert "TCP reset" not in text and "allow TCP 53" not in text
    assert report.dns_fix(["no_answer", "rejected"]).startswith("allow DNS (UDP and TCP 53)") and \
        "make the resolver answer the names the agent needs" in report.dns_fix(["rejected"])


def test_no_section_without_error_answers(tmp_path):
    flows = analyze_file(_capture(tmp_path), RULES).flows
    ok = flows[~flows["dns_rcode"].isin(["NXDOMAIN", "REFUSED"])]
    assert "answered with an error" not in render_table(ok, RULES)
    assert 'id="dns-errors"' not in render_html(ok, RULES, charts=False)


def _hostile_capture(tmp_path):
    name = HOSTILE
    recs = [udp((C, 53000), (RES, 53), bytes(_q(name, 1)), t=1000.0),
            udp((RES, 53), (C, 53000), bytes(_r(name, 1, 3)), t=1000.01, src_mac=SERVER_MAC, dst_mac=CLIENT_MAC),
            udp((C, 53001), (RES, 53), bytes(_q("[bold]x\x1b[31m.example", 2)), t=1001.0),
            udp((RES, 53), (C, 53001), bytes(_r("[bold]x\x1b[31m.example", 2, 2)), t=1001.01,
                src_mac=SERVER_MAC, dst_mac=CLIENT_MAC)]
    return write(tmp_path, recs, "hostile.pcap")


def test_error_names_are_escaped(tmp_path):
    flows = analyze_file(_hostile_capture(tmp_path), RULES).flows
    assert set(flows["dns_rcode"]) == {"NXDOMAIN", "SERVFAIL"}
    html = render_html(flows, RULES, charts=False)
    section = html[html.index('<section id="dns-errors">'):]
    section = section[:section.index("</section>")]
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.example" in section
    assert "NXDOMAIN" in section and "SERVFAIL" in section
    assert '<a href="#dns-errors">' in html
    # the name's control character arrives as text (dns.text_from_bytes) and markup is printed
    buf = io.StringIO()
    print_summary(TableSummary.of(flows), RULES, Console(file=buf, width=200, color_system=None))
    out = buf.getvalue()
    assert "\x1b" not in out and "[bold]x\\x1b[31m.example" in out


def test_reports_are_bounded(monkeypatch):
    names = [f"n{i:02d}.example" for i in range(60)]
    flows = pd.DataFrame({"purpose": "dns", "verdict": "ok", "reason": "", "ts_ns": 0,
                          "query": names, "dns_rcode": "NXDOMAIN"})
    # the terminal: 20 names, the rest counted
    s = TableSummary.of(flows)
    buf = io.StringIO()
    report._print_dns_errors(s, Console(file=buf, width=200, color_system=None))
    out = buf.getvalue()
    assert "n19.example" in out and "n20.example" not in out
    assert "… 40 more names answered with an error" in out
    # memory: at most MAX_DNS_ERROR_KEYS pairs kept, the flows of the others only counted
    monkeypatch.setattr(report, "MAX_DNS_ERROR_KEYS", 5)
    s = TableSummary()
    s.add(flows.iloc[:30])
    s.add(flows)   # the 5 kept pairs count again, the others are dropped
    assert len(s.dns_errors()) == 5 and s.dns_errors()["flows"].tolist() == [2] * 5
    assert s.dns_errors_dropped == 25 + 55
    buf = io.StringIO()
    report._print_dns_errors(s, Console(file=buf, width=200, color_system=None))
    assert "(90 flows)" in buf.getvalue() and "… more names answered with an error" in buf.getvalue()


def test_html_rows_are_bounded():
    names = [f"n{i:03d}.example" for i in range(MAX_DNS_ERROR_ROWS + 7)]
    flows = pd.DataFrame({"query": names, "dns_rcode": "REFUSED"})
    from kscc_traffic.html_report import _dns_errors
    section = _dns_errors(dns_errors(flows))
    assert section.count("<tr>") == MAX_DNS_ERROR_ROWS + 1   # + the header row
    assert f"Showing {MAX_DNS_ERROR_ROWS} of {MAX_DNS_ERROR_ROWS + 7} names" in section


def _chunk_capture(tmp_path):
    """A UDP and a TCP DNS flow whose first response (NXDOMAIN) is far from their later packets
    (a NOERROR answer ~9 s on for UDP, within its 10 s idle timeout; ~30 s for TCP), with gateway datagrams of other flows in between, so the flows
    are carried over many chunk boundaries; a UDP flow whose only response (REFUSED) comes
    after its queries were retried more often than the packets a chunk always carries; and one
    whose server side sends 30 datagrams that are no response before its first response
    (NXDOMAIN), more payload than a chunk carries per direction, then NOERROR answers."""
    gw = ("203.0.113.99", 15000)
    recs = [udp((C, 40000), (RES, 53), bytes(_q("a.ksc.kaspersky.com", 1)), t=1000.0),
            udp((RES, 53), (C, 40000), bytes(_r("a.ksc.kaspersky.com", 1, 3)), t=1000.01,
                src_mac=SERVER_MAC, dst_mac=CLIENT_MAC),
            udp((C, 40000), (RES, 53), bytes(_q("b.ksc.kaspersky.com", 2)), t=1009.0),
            udp((RES, 53), (C, 40000), bytes(_r("b.ksc.kaspersky.com", 2, 0, "203.0.113.10")), t=1009.01,
                src_mac=SERVER_MAC, dst_mac=CLIENT_MAC)]
    for k in range(30):   # retried 30 times before the answer
        recs.append(udp((C, 40001), (RES, 53), bytes(_q("c.ksc.kaspersky.com", 3)), t=1000.5 + k))
    recs.append(udp((RES, 53), (C, 40001), bytes(_r("c.ksc.kaspersky.com", 3, 5)), t=1030.6,
                    src_mac=SERVER_MAC, dst_mac=CLIENT_MAC))
    recs.append(udp((C, 40002), (RES, 53), bytes(_q("d.ksc.kaspersky.com", 4)), t=1000.0))
    for k in range(30):
        recs.append(udp((RES, 53), (C, 40002), bytes(_q("odd.example", 100 + k)), t=1000.1 + k * 0.1,
                        src_mac=SERVER_MAC, dst_mac=CLIENT_MAC))
    for k in range(31):
        resp = _r("d.ksc.kaspersky.com", 4 + k, 0 if k else 3, "203.0.113.10" if k else None)
        recs.append(udp((RES, 53), (C, 40002), bytes(resp), t=1003.15 + k * 0.1, src_mac=SERVER_MAC,
                        dst_mac=CLIENT_MAC))
    # DNS over TCP: NXDOMAIN first, a NOERROR answer on the same connection 30 s later
    def c2s(ts, data=b"", **kw):
        return ts, eth(IP(src=C, dst=RES) / TCP(sport=41000, dport=53, **kw) / data)

    def s2c(ts, data=b"", **kw):
        return ts, eth(IP(src=RES, dst=C) / TCP(sport=53, dport=41000, **kw) / data, src=SERVER_MAC, dst=CLIENT_MAC)

    q1, r1 = _tcp_msg(_q("t1.ksc.kaspersky.com", 7)), _tcp_msg(_r("t1.ksc.kaspersky.com", 7, 3))
    q2, r2 = _tcp_msg(_q("t2.ksc.kaspersky.com", 8)), _tcp_msg(_r("t2.ksc.kaspersky.com", 8, 0, "203.0.113.12"))
    cs, ss = 1001, 5001
    recs += [c2s(1000.2, flags="S", seq=1000), s2c(1000.21, flags="SA", seq=5000, ack=cs),
             c2s(1000.22, flags="A", seq=cs, ack=ss), c2s(1000.23, q1, flags="PA", seq=cs, ack=ss)]
    cs += len(q1)
    recs.append(s2c(1000.24, r1, flags="PA", seq=ss, ack=cs))
    ss += len(r1)
    recs.append(c2s(1030.2, q2, flags="PA", seq=cs, ack=ss))
    cs += len(q2)
    recs.append(s2c(1030.21, r2, flags="PA", seq=ss, ack=cs))
    ss += len(r2)
    recs += [c2s(1030.3, flags="FA", seq=cs, ack=ss), s2c(1030.31, flags="FA", seq=ss, ack=cs + 1),
             c2s(1030.32, flags="A", seq=cs + 1, ack=ss + 1)]
    for k in range(400):   # filler: one gateway datagram every 0.25 s, each its own flow
        recs.append(udp(("192.0.2.20", 20000 + k), gw, b"g" * 300, t=1000.05 + k * 0.25))
    return write(tmp_path, sorted(recs, key=lambda r: r[0]), "chunks.pcap")


def test_first_response_in_an_earlier_chunk(tmp_path):
    path = _chunk_capture(tmp_path)
    w = assert_same(path, [1024, 2048, 4096, 16384])
    assert row(w, orig_p=40000)["dns_rcode"] == "NXDOMAIN"
    # (the flow's later answer gave an address: not blocked, whatever the first said)
    assert row(w, orig_p=40000)["detail"] == "DNS answer NXDOMAIN for a.ksc.kaspersky.com"
    assert row(w, orig_p=40001)["dns_rcode"] == "REFUSED"
    assert row(w, orig_p=40002)["dns_rcode"] == "NXDOMAIN"
    assert row(w, orig_p=41000)["dns_rcode"] == "NXDOMAIN"
    assert row(w, orig_p=41000)["detail"] == "DNS answer NXDOMAIN for t1.ksc.kaspersky.com"


def test_first_response_kept_by_a_live_capture(tmp_path, monkeypatch):
    """The live session keeps each flow's first DNS response even past its head packets."""
    from kscc_traffic.live import session as S
    from test_live_session import _assert_same, _replay
    monkeypatch.setattr(S, "HEAD_PACKETS", 2)
    path = _chunk_capture(tmp_path)
    s = S.LiveSession(RULES, name=path.name)
    _replay(path, s)
    assert s.dropped_rows > 0
    final = s.final()
    _assert_same(path, final)
    assert row(final, orig_p=40002)["dns_rcode"] == "NXDOMAIN"


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_tshark_engine_gives_the_same_rcodes(tmp_path):
    # the tshark engine hands the same payload bytes to the same inspection
    path = _capture(tmp_path)
    a = analyze_file(path, RULES).flows.sort_values("uid").reset_index(drop=True)
    b = analyze_file(path, RULES, engine="tshark").flows.sort_values("uid").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert sorted(b["dns_rcode"]) == ["", "", "NOERROR", "NOERROR", "NXDOMAIN", "NXDOMAIN", "REFUSED", "REFUSED"]
