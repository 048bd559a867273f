"""Newcomer 33: advice and wording findings (captures built with scapy in tmp_path).

F2. A path-MTU error (ICMP fragmentation needed 3/4, ICMPv6 packet too big) that reached the
capture point while the client still sent packets as large: the flow's detail told of it (lower the
MTU / clamp the MSS), but the purpose's "what to change" said "a proxy, TLS inspection or an
application-aware firewall … through uninspected". It now gives the path-MTU advice (report.MTU_FIX),
from readiness() and the streamed summary alike; the IPv4 detail cites RFC 1191 (RFC 4890 is
ICMPv6's filtering; RFC 8201 IPv6's path MTU discovery).
F5. An ``undocumented_port`` flow (a Kaspersky name on a port no rule documents) whose connection
failed said only "no rule documents this port"; a ``host_mismatch`` one adds "the connection itself
failed (no_answer): …": now so does it, and a ``wrong_direction`` one. A flow without a purpose is
"(none)" in every text output (the per-purpose table, "What to change", the flagged flows), not "-"
in the flagged list (report.NO_PURPOSE).
F6. An agent purpose whose blocked flows were all answered (a reset with the server's own TTL, a
TLS handshake that failed) was still advised "allow outbound TCP 23100-23199 …" first, though no
firewall dropped anything: the advice now leads with what was seen; the firewall rule stays first
when a flow was dropped or refused by ICMP.
F7. A certificate for another name issued by an inspection product's CA (a Zscaler certificate for
gateway.zscalertwo.net presented for eu1.ksc.kaspersky.com) did not name the product, as a re-signed
one does ("a Fortinet FortiGate re-signs"): it now does ("…, issued by …: from Zscaler (TLS
inspection)"), the issuer text escaped; Kaspersky Web Traffic Security and Cisco Firepower added.
F8. README: the checklist's statuses include "port open"; the "From Python" merge keeps the flows
without a checklist row (DNS, no purpose) with ``how="left"``; the rules file says where the vendor's
page is instead of citing files a clone does not hold."""
from __future__ import annotations

import re

import pandas as pd
import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import ICMP, IP, TCP, UDP

from checklistcheck import RULES, checklists, write
from conftest import ROOT
from chunkcmp import whole
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth
from test_icmp_errors_breakit25 import _ptb_capture
from test_tls_batch import client_hello, rec, sni_ext
from test_fixp_interception import _rejected
from test_tls_view_cut import SNI
from kscc_traffic.analyze import analyze_file
from kscc_traffic.classify import inspection_product
from kscc_traffic.report import MTU_FIX, NO_PURPOSE, readiness, render_table


@pytest.mark.parametrize("v6", [True, False], ids=["v6", "v4"])
def test_ignored_path_mtu_error_is_advised_as_a_black_hole(tmp_path, v6):
    path, size = _ptb_capture(tmp_path, v6, honoured=False)
    flows, _ = whole(path)
    f = flows.iloc[0]
    assert (f["verdict"], f["reason"]) == ("blocked", "tls_failed")
    assert f"still sent {size}-byte packets after it (as large as the one it quoted)" in f["detail"]
    if v6:
        assert "ICMPv6 type 2 (RFC 4890 §4.3.1: it must not be filtered; IPv6 path MTU discovery, RFC 8201" \
            in f["detail"]
        assert "1191" not in f["detail"]
    else:
        assert "ICMP type 3 code 4 (path MTU discovery, RFC 1191, depends on it)" in f["detail"]
        assert "4890" not in f["detail"]
    for c in checklists(flows):
        row = c.loc["agent_connection"]
        assert row["status"] == "blocked"
        assert row["fix"] == ("this connection reached the server on TCP 23100-23199 (the TCP handshake completed: "
                              f"the port is open), then the TLS handshake failed: {MTU_FIX}")
        assert "uninspected" not in row["fix"] and "proxy" not in row["fix"]


def test_honoured_path_mtu_error_keeps_no_mtu_advice(tmp_path):
    """The client that sent smaller segments after the error (its TLS unanswered by the server,
    still blocked): no black hole, no MTU advice."""
    path, _ = _ptb_capture(tmp_path, False, honoured=True)
    flows, _ = whole(path)
    assert (flows["verdict"].tolist(), flows["reason"].tolist()) == (["blocked"], ["tls_failed"])
    assert "as large as" not in flows["detail"].iloc[0]
    for c in checklists(flows):
        assert MTU_FIX not in c.loc["agent_connection", "fix"]


# --- F5: a failed connection on an undocumented port says so --------------------------------------

C, S, NAME = "192.0.2.10", "203.0.113.10", "eu1.ksc.kaspersky.com"
UNDOC = "TCP 14000 to a Kaspersky name; no rule documents this port"


def _dns(t: float) -> list:
    """The resolver's answer NAME -> S to the client."""
    ans = DNS(id=7, qr=1, qd=DNSQR(qname=NAME), an=DNSRR(rrname=NAME, type="A", ttl=60, rdata=S))
    return [(t, bytes(eth(IP(src="192.0.2.53", dst=C) / UDP(sport=53, dport=41000) / ans,
                          src=SERVER_MAC, dst=CLIENT_MAC)))]


def _attempt(how: str, sport: int = 50000, dport: int = 14000, t: float = 1000.0) -> list:
    """A connection from C:``sport`` to S:``dport``: ``how`` "silent" (SYN x3), "reset" (REJ),
    "icmp" (3/13 from a router), "open" (handshake, FIN both ways)."""
    def up(dt, **kw):
        return (t + dt, bytes(eth(IP(src=C, dst=S) / TCP(sport=sport, dport=dport, **kw))))

    def dn(dt, **kw):
        return (t + dt, bytes(eth(IP(src=S, dst=C) / TCP(sport=dport, dport=sport, **kw),
                                  src=SERVER_MAC, dst=CLIENT_MAC)))
    if how == "silent":
        return [up(k, flags="S", seq=7) for k in (0, 1, 3)]
    if how == "reset":
        return [up(0, flags="S", seq=7), dn(0.01, flags="RA", seq=0, ack=8)]
    if how == "icmp":
        syn = IP(src=C, dst=S) / TCP(sport=sport, dport=dport, flags="S", seq=7)
        err = IP(src="198.51.100.1", dst=C) / ICMP(type=3, code=13) / bytes(syn)[:28]
        return [(t, bytes(eth(syn))), (t + 0.01, bytes(eth(err, src=SERVER_MAC, dst=CLIENT_MAC)))]
    return [up(0, flags="S", seq=7), dn(0.01, flags="SA", seq=100, ack=8), up(0.02, flags="A", seq=8, ack=101),
            up(0.5, flags="FA", seq=8, ack=101), dn(0.51, flags="FA", seq=101, ack=9),
            up(0.52, flags="A", seq=9, ack=102)]


@pytest.mark.parametrize("how,tail", [
    ("silent", "; the connection itself failed (no_answer): SYN sent 3 times, no answer"),
    ("reset", "; the connection itself failed (rejected): the SYN was answered by a TCP reset"),
    ("icmp", "; the connection itself failed (icmp_unreachable): answered by ICMP administratively "
             "prohibited (3/13) from 198.51.100.1"),
    ("open", "")])
def test_undocumented_port_failure_is_told(tmp_path, how, tail):
    path = write(tmp_path, f"{how}.pcap", _dns(999.0) + _attempt(how))
    flows, _ = whole(path)
    tcp = flows[flows["proto"] == "tcp"].iloc[0]
    assert (tcp["purpose"], tcp["verdict"], tcp["reason"]) == ("", "unexpected", "undocumented_port")
    assert tcp["detail"] == UNDOC + tail


def test_wrong_direction_failure_is_told(tmp_path):
    """A SYN from the documented port 23101 to a port >= 1024, never answered."""
    path = write(tmp_path, "wd.pcap", _attempt("silent", sport=23101, dport=5000))
    flows, _ = whole(path)
    tcp = flows.iloc[0]
    assert (tcp["purpose"], tcp["verdict"], tcp["reason"]) == ("agent_connection", "unexpected", "wrong_direction")
    assert tcp["detail"] == (f"connection opened from the documented port 23101 (agent_connection) towards {S}:5000; "
                             "the connection itself failed (no_answer): SYN sent 3 times, no answer")


def test_no_purpose_has_one_label_in_the_text_report(tmp_path):
    flows = analyze_file(write(tmp_path, "undoc.pcap", _dns(999.0) + _attempt("silent"))).flows
    text = render_table(flows, RULES, width=250)
    assert NO_PURPOSE == "(none)"
    flagged = [line for line in text.splitlines() if "14000" in line and "undocumented_port" in line]
    assert len(flagged) == 1 and "│ (none) " in flagged[0] and "│ - " not in flagged[0], flagged
    assert "(none) (unexpected: undocumented_port): 1 flow to Kaspersky names" in text
    per_purpose = text.split("Readiness checklist")[0]
    assert "│ (none) " in per_purpose


# --- F6: the advice leads with what the evidence shows -----------------------------------------

HELLO = rec(22, client_hello([sni_ext([(0, NAME.encode())])]), 0x0301)
ALLOW = "allow outbound TCP 23100-23199 to *.ksc.kaspersky.com"


def _server(dport: int, sport: int, t: float, **kw):
    return (t, bytes(eth(IP(src=S, dst=C, ttl=50) / TCP(sport=dport, dport=sport, **kw),
                         src=SERVER_MAC, dst=CLIENT_MAC)))


def _client(dport: int, sport: int, t: float, data=b"", **kw):
    return (t, bytes(eth(IP(src=C, dst=S) / TCP(sport=sport, dport=dport, **kw) / data)))


def _hello_unanswered(sport: int, t: float) -> list:
    """A ClientHello to S:23101 the server acknowledges and never answers; the client closes
    after 10 s (tls_failed)."""
    c = 8 + len(HELLO)
    return [_client(23101, sport, t, flags="S", seq=7), _server(23101, sport, t + 0.01, flags="SA", seq=100, ack=8),
            _client(23101, sport, t + 0.02, flags="A", seq=8, ack=101),
            _client(23101, sport, t + 0.03, HELLO, flags="PA", seq=8, ack=101),
            _server(23101, sport, t + 0.04, flags="A", seq=101, ack=c),
            _client(23101, sport, t + 10.0, flags="FA", seq=c, ack=101),
            _server(23101, sport, t + 10.01, flags="FA", seq=101, ack=c + 1),
            _client(23101, sport, t + 10.02, flags="A", seq=c + 1, ack=102)]


@pytest.mark.parametrize("refusal", ["own_reset", "silent"])
def test_advice_leads_with_the_evidence(tmp_path, refusal):
    second = ([_client(23102, 50002, 1020.0, flags="S", seq=7), _server(23102, 50002, 1020.01, flags="RA", seq=0, ack=8)]
              if refusal == "own_reset" else [_client(23102, 50002, 1020.0 + k, flags="S", seq=7) for k in (0, 1, 3)])
    path = write(tmp_path, f"{refusal}.pcap", _dns(999.0) + _hello_unanswered(50001, 1000.0) + second)
    flows, _ = whole(path)
    tcp = flows[flows["proto"] == "tcp"].sort_values("resp_p")
    assert tcp["reason"].tolist() == ["tls_failed", "rejected" if refusal == "own_reset" else "no_answer"]
    for c in checklists(flows):
        fix = c.loc["agent_connection", "fix"]
        if refusal == "own_reset":
            assert "the reset came with the server's own TTL (50" in tcp["detail"].iloc[1]
            assert fix.startswith("the 2 blocked connections were answered, none dropped (no firewall drop or ICMP "
                                  "refusal seen): 1 of them was answered by a TCP reset with the server's own TTL: "), fix
            assert ALLOW not in fix
            assert "; 1 of them reached the server (the TCP handshake completed), then the TLS handshake failed" in fix
        else:   # (a SYN dropped: the firewall rule leads)
            assert fix.startswith(f"{ALLOW} (the whole range"), fix
            assert "; 1 of them reached the server (the TCP handshake completed), then the TLS handshake failed" in fix


# --- F7: the inspection product named on a certificate for another name ------------------------

@pytest.mark.parametrize("org,cn,product", [
    ("Zscaler Inc.", "Zscaler Intermediate Root CA (zscalertwo.net)", "Zscaler"),
    ("Palo Alto Networks", "Forward-Trust-CA", "a Palo Alto Networks firewall"),
    ("Check Point Software Technologies", "HTTPS Inspection CA", "a Check Point gateway"),
    ("Sophos", "Sophos SSL CA", "a Sophos firewall"),
    ("Cisco", "Cisco Umbrella Secondary SubCA", "Cisco Umbrella"),
    ("Netskope Inc", "caadmin.netskope.com", "Netskope"),
    ("Forcepoint", "Forcepoint Cloud CA", "Forcepoint"),
    ("Blue Coat Systems", "ProxySG CA", "a Blue Coat ProxySG"),
    ("AO Kaspersky Lab", "Kaspersky Web Traffic Security CA", "Kaspersky Web Traffic Security"),
])
def test_inspection_product_named_on_a_certificate_for_another_name(tmp_path, org, cn, product):
    r = _rejected(tmp_path, org, cn, ["gateway.proxy.example"])
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_intercepted")
    assert r["detail"].startswith(f"certificate for gateway.proxy.example presented for {SNI}, issued by "
                                  f"CN={cn},O={org}: from {product} (TLS inspection); the handshake was aborted"), \
        r["detail"]


def test_unknown_issuer_on_a_certificate_for_another_name_names_no_product(tmp_path):
    # (no product named; another server than the one asked, most likely: break-it real s57 #4)
    r = _rejected(tmp_path, "Example Corp", "Corp Issuing CA", ["gateway.proxy.example"])
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed")
    assert r["detail"].startswith(f"certificate for gateway.proxy.example presented for {SNI}, issued by "
                                  "CN=Corp Issuing CA,O=Example Corp (a CA neither public nor a TLS-inspection "
                                  "product's): most likely the agent reached another server"), r["detail"]


def test_issuer_text_from_the_packet_is_escaped(tmp_path):
    r = _rejected(tmp_path, "Zscaler Inc.\x1b[2J", "Zscaler Root\x07", ["gateway.proxy.example"])
    assert "from Zscaler (TLS inspection)" in r["detail"]
    assert "\x1b" not in r["detail"] and "\x07" not in r["detail"]


@pytest.mark.parametrize("issuer,product", [
    ("CN=Cisco Firepower Decrypt CA,O=Example", "a Cisco Firepower device"),
    ("CN=Symantec Class 3 Secure Server CA,O=Symantec Corporation", ""),   # (a public CA once)
    ("CN=Philosophos Root,O=Example", ""),
])
def test_inspection_product_markers(issuer, product):
    assert inspection_product(issuer) == product


# --- F8: README ---------------------------------------------------------------------------------

def test_readme_lists_every_status_the_checklist_prints():
    guide = (ROOT / "README.md").read_text(encoding="utf-8")
    item = guide[guide.index("**Readiness checklist**"):guide.index("**Flagged flows**")]
    for status in ("verified", "blocked", "unexpected", "port open", "seen one-way", "not seen"):
        assert f"`{status}`" in " ".join(item.split()), status


def test_readme_merge_keeps_dns_and_unclassified_flows(tmp_path):
    guide = (ROOT / "README.md").read_text(encoding="utf-8")
    line = next(x for x in guide.splitlines() if x.startswith("flows.merge(kscc_traffic.readiness(flows)"))
    assert 'how="left"' in line
    # the README's merge on a capture with a DNS flow and a flow without a purpose keeps every flow
    flows = analyze_file(write(tmp_path, "m.pcap", _dns(999.0) + _attempt("silent"))).flows
    assert sorted(flows["purpose"].tolist()) == ["", "dns"]
    both = flows.merge(readiness(flows, RULES)[["purpose", "status"]], on="purpose", how="left")
    assert len(both) == len(flows) == 2 and both["status"].isna().all()
    assert len(flows.merge(readiness(flows, RULES)[["purpose", "status"]], on="purpose")) == 0   # (inner: lost)


def test_rules_file_cites_no_file_a_clone_lacks():
    for name in ("rules/kscc-cloud.toml", "rules/README.md", "README.md"):
        text = (ROOT / name).read_text(encoding="utf-8")
        for cited in re.findall(r"shared/(?:docs|seed)/[\w.-]+", text):
            # (named only as the development corpus's, outside the repository)
            assert "outside the repository" in " ".join(text.split()), (name, cited)
    toml = (ROOT / "rules" / "kscc-cloud.toml").read_text(encoding="utf-8")
    assert "Von Kaspersky Security Center Cloud Console verwendete Ports" in toml
    assert not pd.isna(RULES.meta.source) and "shared/" not in RULES.meta.source
