"""Session 63 newcomer (newcomer63): findings from troubleshooting captures read as a newcomer.

1. Repeated failed attempts are summarised in one row (``N attempts …, each refused``): for a DNS
   name answered NXDOMAIN again and again, "refused" read as the DNS answer code REFUSED; for a
   SYN answered by an old connection's ACK, nothing refused the port. They now say "each answered
   with an error" and "none connected"; a proxy's 407 or a reset keeps "each refused".
2. NXDOMAIN to both the A and the AAAA query of a needed name: the DNS-error table's meaning of the
   "(AAAA only)" row said "an agent connects over IPv4 with the A answer", though the A query failed
   too; it now says so. The HTML report's sentence on their verdicts gave the ok ones' causes as a
   name the agent does not need or one resolved elsewhere: neither; it now names the AAAA query.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import TCP

from chunkcmp import whole
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth, ip_of, pcap_bytes, udp

from kscc_traffic.attempts import outcome_words, summary_text
from kscc_traffic.report import TableSummary, dns_error_meanings, dns_errors
from kscc_traffic.rules import load_rules

RULES = load_rules()

REPO = Path(__file__).resolve().parents[1]
EU1 = "eu1.ksc.kaspersky.com"


def _write(tmp_path, recs, name="c.pcap") -> Path:
    p = tmp_path / name
    p.write_bytes(pcap_bytes(sorted(recs, key=lambda x: x[0])))
    return p


def _details(path) -> list[str]:
    """The flagged rows' details as the table report lists them."""
    flows, _ = whole(path)
    return TableSummary.of(flows, rules=RULES).flagged_details()


def _table(path) -> str:
    """The table report (narrow: each flagged flow a block of lines), its words."""
    env = {**os.environ, "COLUMNS": "100"}
    done = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", str(path)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    return " ".join(done.stdout.split())


def _nxdomain(port, t, qtype="A"):
    """A query for EU1 from ``port`` and the resolver's NXDOMAIN answer 10 ms later."""
    q = DNS(id=port, rd=1, qd=DNSQR(qname=EU1, qtype=qtype))
    a = DNS(id=port, qr=1, rd=1, ra=1, rcode=3, qd=DNSQR(qname=EU1, qtype=qtype))
    return [udp(("192.0.2.10", port), ("203.0.113.53", 53), bytes(q), t=t),
            udp(("203.0.113.53", 53), ("192.0.2.10", port), bytes(a), t=t + 0.01,
                src_mac=SERVER_MAC, dst_mac=CLIENT_MAC)]


def _syn_bare_ack(sport, t):
    """A SYN to EU1's address on 23101 answered by a bare ACK of another sequence, which the
    client resets."""
    c, s = "192.0.2.10", "203.0.113.10"
    return [(t, eth(ip_of(c, s) / TCP(sport=sport, dport=23101, flags="S", seq=1000))),
            (t + 0.03, eth(ip_of(s, c) / TCP(sport=23101, dport=sport, flags="A", seq=777, ack=99),
                           src=SERVER_MAC, dst=CLIENT_MAC)),
            (t + 0.031, eth(ip_of(c, s) / TCP(sport=sport, dport=23101, flags="R", seq=99)))]


def test_outcome_words():
    assert outcome_words("rejected") == "each refused"
    assert outcome_words("rejected,partial", "dns") == "each answered with an error"
    assert outcome_words("rejected", "agent_connection", "no connection was made: the SYN was answered only") \
        == "none connected"
    assert outcome_words("no_answer", "dns") == "none answered"
    t0 = 82_800 * 10**9
    assert summary_text(2, t0, t0 + 60 * 10**9, [], "rejected", "dns") == \
        "2 attempts from 23:00:00 to 23:01:00 UTC, 60 s apart, each answered with an error"


def test_repeated_nxdomain_is_not_called_refused(tmp_path):
    recs = _nxdomain(41000, 1000.0) + _nxdomain(41001, 1060.0) + _nxdomain(41002, 1120.0)
    p = _write(tmp_path, recs)
    assert _details(p) == ["3 attempts from 00:16:40 to 00:18:40 UTC, every ~60 s, each answered with an error; "
                           "the first: DNS answer NXDOMAIN for eu1.ksc.kaspersky.com; the agent needs this name: "
                           "without its address it cannot connect (fix the resolver or the DNS filter)"]
    text = _table(p)
    assert "3 attempts from 00:16:40 to 00:18:40 UTC, every ~60 s, each answered with an error; " \
           "the first: DNS answer NXDOMAIN for eu1.ksc.kaspersky.com" in text
    assert "each refused" not in text


def test_syn_answered_by_a_stale_ack_is_not_called_refused(tmp_path):
    recs = _syn_bare_ack(50000, 1000.0) + _syn_bare_ack(50001, 1020.0)
    p = _write(tmp_path, recs)
    (detail,) = _details(p)
    assert detail.startswith("2 attempts from 00:16:40 to 00:17:00 UTC, 20 s apart, none connected; the first: no "
                             "connection was made: the SYN was answered only by an ACK")
    text = _table(p)
    assert "2 attempts from 00:16:40 to 00:17:00 UTC, 20 s apart, none connected; the first: no connection " \
           "was made: the SYN was answered only by an ACK" in text
    assert "each refused" not in text


# ---------------------------------------------------------------- 2. AAAA-only error beside a failed A

def test_aaaa_only_error_does_not_promise_an_a_answer_that_failed_too(tmp_path):
    """NXDOMAIN to both the A and the AAAA query of a needed name (separate flows): the DNS-error
    row of the AAAA ones must not say the agent connects over IPv4 with the A answer."""
    recs = _nxdomain(41000, 1000.0) + _nxdomain(41001, 1000.1, "AAAA") \
        + _nxdomain(41002, 1060.0) + _nxdomain(41003, 1060.1, "AAAA")
    p = _write(tmp_path, recs)
    flows, _ = whole(p)
    errs = dns_errors(flows)
    assert errs[["name", "rcode", "flows"]].values.tolist() == [[EU1, "NXDOMAIN", 2], [EU1, "NXDOMAIN (AAAA only)", 2]]
    assert dns_error_meanings(errs) == [
        "the name does not exist (for this resolver)",
        "the name does not exist (for this resolver), for the AAAA (IPv6 address) query; its A query got an "
        "error answer too (the name's other row): not made up for by an IPv4 address"]
    text = _table(p)
    assert "an agent connects over IPv4 with the A answer (an IPv6-only network" not in text
    html = tmp_path / "r.html"
    done = subprocess.run([sys.executable, "-m", "kscc_traffic", "report", str(p), "--html", str(html)], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    page = html.read_text()
    assert "its A query got an error answer too (the name&#x27;s other row)" in page \
        or "its A query got an error answer too (the name's other row)" in page
    assert "for the AAAA (IPv6 address) query only: an agent connects" not in page
    # (the ok verdicts of the AAAA flows: neither a name the agent does not need nor one resolved elsewhere)
    assert ("Verdicts: 2 blocked (a name the agent needs: without its address it cannot connect), 2 ok (the resolver "
            "was reached and answered a name the agent does not need, one it got an address for from another query "
            "or a retry, or the AAAA (IPv6 address) query alone of a name it needs (the rows marked AAAA only)).") \
        in page


def test_aaaa_only_error_beside_a_working_a_keeps_its_words(tmp_path):
    from pcapbuild import dns_answer
    q = DNS(id=41000, rd=1, qd=DNSQR(qname=EU1, qtype="A"))
    recs = [udp(("192.0.2.10", 41000), ("203.0.113.53", 53), bytes(q), t=1000.0),
            dns_answer(EU1, "203.0.113.10", 1000.01, port=41000, resolver="203.0.113.53")] \
        + _nxdomain(41001, 1000.1, "AAAA")
    flows, _ = whole(_write(tmp_path, recs))
    errs = dns_errors(flows)
    assert errs["rcode"].tolist() == ["NXDOMAIN (AAAA only)"]
    assert dns_error_meanings(errs) == [
        "the name does not exist (for this resolver), for the AAAA (IPv6 address) query only: an agent connects "
        "over IPv4 with the A answer (an IPv6-only network would need the AAAA one)"]


def test_the_html_checklist_points_to_blocked_dns_when_no_purpose_is_blocked(tmp_path):
    """Newcomer s63 #8: only DNS failed (NXDOMAIN for the cloud's name, no connection tried): the
    HTML checklist said "0 verified · 0 blocked · …" alone; a line now points to the DNS flows."""
    from kscc_traffic import analyze
    from kscc_traffic.html_report import render_html
    path = _write(tmp_path, _nxdomain(40001, 1000.0) + _nxdomain(40002, 1060.0))
    flows = analyze(path, RULES)
    assert ((flows.purpose == "dns") & (flows.verdict == "blocked")).sum() == 2
    page = render_html(flows, RULES)
    checklist = page[page.index('<section id="checklist">'):page.index("</section>", page.index('<section id="checklist">'))]
    assert "0 blocked" in checklist
    assert ("Name resolution (not on the vendor's page, but every connection needs it): 2 blocked DNS flows "
            '(see <a href="#purpose-dns">dns</a>).') in checklist, checklist[-600:]
    assert 'id="purpose-dns"' in page
    assert "dns-blocked" not in render_html(flows[flows.verdict != "blocked"], RULES)
