"""Newcomer of session 27 (a support engineer): a SYN answered by a TCP reset (REJ) told by the
reset's TTL against the same address's packets on other connections (a firewall nearer than the
server, or the server itself refusing: nothing listens there); an agent pointed at another
Administration Server (a non-Kaspersky name on a KSC-only port); a capture with no KSC agent
traffic at all; ``--verdict unclassified`` and the detail of unclassified flows. Captures are built
with scapy here; the corpus checks skip when ../shared/corpus is absent."""
from __future__ import annotations

import html as h
import re

import pytest
from scapy.all import IP, TCP

from chunkcmp import assert_same, whole, write
from conftest import shared_corpus
from kscc_traffic import analyze, load_rules, readiness
from kscc_traffic.html_report import render_html
from kscc_traffic.report import TableSummary, render_table
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth

RULES = load_rules()
AGENT, SERVER = "192.0.2.10", "203.0.113.10"
NEARER = ("the reset came from a device 1 hop nearer than the server (TTL 64 vs 63 on the server's packets on "
          "other connections): a firewall refuses the port")
OWN = ("the reset came with the server's own TTL (63, as its packets on other connections): most likely the "
       "server's own answer: nothing listens on this port there (a wrong port? the service down?), or its host "
       "firewall rejects it (a firewall on the path that copies the server's TTL looks the same)")


def _up(t, sport, dport, ttl=64, dst=SERVER, **kw):
    return t, bytes(eth(IP(src=AGENT, dst=dst, ttl=ttl) / TCP(sport=sport, dport=dport, **kw)))


def _dn(t, sport, dport, ttl=63, src=SERVER, data=b"", **kw):
    return t, bytes(eth(IP(src=src, dst=AGENT, ttl=ttl) / TCP(sport=sport, dport=dport, **kw) / data,
                        src=SERVER_MAC, dst=CLIENT_MAC))


def _ok(t, cport, sport=23101, ttl=63, server=SERVER):
    """A connection the server (``ttl`` on its packets) answered, closed (a bare handshake)."""
    return [_up(t, cport, sport, flags="S", seq=100, dst=server),
            _dn(t + 0.01, sport, cport, ttl=ttl, flags="SA", seq=500, ack=101, src=server),
            _up(t + 0.02, cport, sport, flags="A", seq=101, ack=501, dst=server),
            _up(t + 0.05, cport, sport, flags="FA", seq=101, ack=501, dst=server),
            _dn(t + 0.06, sport, cport, ttl=ttl, flags="FA", seq=501, ack=102, src=server),
            _up(t + 0.07, cport, sport, flags="A", seq=102, ack=502, dst=server)]


def _rej(t, cport, sport, rst_ttl):
    return [_up(t, cport, sport, flags="S", seq=900), _dn(t + 0.001, sport, cport, ttl=rst_ttl, flags="RA", seq=0,
                                                        ack=901)]


def _detail(flows, port):
    (d,) = flows.loc[flows["resp_p"] == port, "detail"].tolist()
    return d


def _checklist(flows):
    """readiness() and the streamed summary's fix per rule: both must say the same."""
    a = readiness(flows, RULES).set_index("rule")["fix"]
    b = TableSummary.of(flows).readiness(RULES).set_index("rule")["fix"]
    assert a.to_dict() == b.to_dict()
    return a


def test_refused_syn_told_by_the_servers_ttl_on_other_flows(tmp_path):
    """The server answered 23101 with TTL 63; the 29201 reset came with 64 (a device one hop
    nearer: a firewall), the 23199 one with 63 (the server itself: nothing listens there). Verdicts
    stay blocked/rejected; the checklist's advice differs per purpose."""
    recs = _ok(1.0, 40000) + _rej(8.0, 40001, 29201, 64) + _rej(8.1, 40002, 23199, 63)
    path = write(tmp_path, recs, name="rej.pcap")
    flows, _ = whole(path)
    for port in (29201, 23199):
        r = flows[flows["resp_p"] == port].iloc[0]
        assert (r["verdict"], r["reason"], r["conn_state"]) == ("blocked", "rejected", "REJ")
    assert _detail(flows, 29201) == f"the SYN was answered by a TCP reset; {NEARER}"
    assert _detail(flows, 23199) == f"the SYN was answered by a TCP reset; {OWN}"
    fix = _checklist(flows)
    assert fix["klsctunnel"].startswith("this connection attempt was answered by a TCP reset from a device nearer "
                                        "than the server")
    assert "a firewall refuses the port: allow outbound TCP 29200-29299" in fix["klsctunnel"]
    own = fix["agent_connection"]
    assert own.startswith("1 of 2 flows ok, 1 blocked")
    # (newcomer 28 F6: hedged as the ICMP-from-the-server advice: a host firewall on the server, or
    # a firewall copying its TTL, answers the same; the agent's port is checked first)
    assert ("most likely the server's own answer: nothing listens on this port there (a wrong port? the service "
            "down?), or its host firewall rejects it") in own
    assert "the server itself refused" not in own and "no firewall is to be opened" not in own
    assert own.endswith("if it is right, the service is not running there or a firewall rejects the port (the "
                        "server's own, or one on the path)")
    assert "allow outbound" not in own
    # chunked (the server's SYN-ACK in an earlier batch than the resets) = whole
    assert_same(path, [300, 700, 1500])


def test_refused_syn_live_equals_whole(tmp_path, monkeypatch):
    """A live session gives the same details (the server's flow evicted or not)."""
    from test_live_session import assert_live_same
    recs = _ok(1.0, 40000) + _rej(8.0, 40001, 29201, 64) + _rej(8.1, 40002, 23199, 63)
    path = write(tmp_path, recs, name="rejlive.pcap")
    assert_live_same(path, monkeypatch, step=2)


def test_hint_from_a_later_packet_of_the_address_none_from_farther(tmp_path):
    """The reset before any other packet of its address (the server heard only later): told by
    that later packet as by an earlier one (newcomer 29 F2: the order does not matter; every
    analysis gives the same); from farther than the server: nothing said, the detail as before."""
    recs = _rej(1.0, 40001, 29201, 64) + _ok(2.0, 40000) + _rej(8.0, 40003, 29202, 50)
    path = write(tmp_path, recs, name="late.pcap")
    flows = assert_same(path, [300, 900])
    assert _detail(flows, 29201) == (
        "the SYN was answered by a TCP reset; the reset came from a device 1 hop nearer than the server (TTL 64 vs 63 "
        "on the server's packets on other connections): a firewall refuses the port")
    assert _detail(flows, 29202) == "the SYN was answered by a TCP reset"
    assert _checklist(flows)["klsctunnel"].startswith("allow outbound TCP 29200-29299")
    assert _checklist(flows)["klsctunnel"].endswith(
        "1 of them was answered by a TCP reset from a device nearer than the server: a firewall refuses the port")


def test_refused_syn_html_report(tmp_path):
    recs = _ok(1.0, 40000) + _rej(8.0, 40001, 29201, 64) + _rej(8.1, 40002, 23199, 63)
    flows = analyze(write(tmp_path, recs, name="rejh.pcap"))
    page = h.unescape(re.sub(r"<[^>]+>", " ", render_html(flows, RULES, charts=False)))
    assert ("most likely the server's own answer: nothing listens on this port there (a wrong port? the "
            "service down?), or its host firewall rejects it") in page
    assert "a firewall refuses the port" in page


def test_corpus_blocked_agent_resets():
    """ns_blocked_agent.pcap: its labels say the 29201 reset is the router firewall's (spoofed
    from the server address), the 23199 one the server's own."""
    import json
    path = shared_corpus("ksc") / "ns_blocked_agent.pcap"
    labels = json.loads((path.parent / (path.name + ".labels.json")).read_text())
    notes = {x["server_port"]: x["notes"] for x in labels}
    assert "firewall" in notes[29201]
    flows = analyze(path)
    assert _detail(flows, 29201).endswith(NEARER)
    assert _detail(flows, 23199).endswith(OWN)
    # (a distribution point's own reset on the client's subnet: said once, by its own detail)
    assert "server's own TTL" not in _detail(flows, 13111)
    text = render_table(flows, RULES, width=400)
    assert "a firewall refuses the port: allow outbound TCP 29200-29299" in text
    assert "Check first the port the agent is set to use" in text


def _answer(name, address, t, port=41000):
    """The resolver's answer ``name`` -> ``address`` to the agent (a query before it)."""
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from pcapbuild import udp
    q = udp((AGENT, port), ("192.0.2.53", 53), bytes(DNS(id=port, rd=1, qd=DNSQR(qname=name))), t=t - 0.001)
    a = DNS(id=port, qr=1, qd=DNSQR(qname=name), an=DNSRR(rrname=name, type="A", ttl=60, rdata=address))
    r = udp(("192.0.2.53", 53), (AGENT, port), bytes(a), t=t, src_mac=SERVER_MAC, dst_mac=CLIENT_MAC)
    return [(q[0], bytes(q[1])), (r[0], bytes(r[1]))]


def _other_server(tmp_path, name="ksc-eu1.example.net", ok_too=True):
    """The agent resolving ``name`` and connecting to it on 23101 (answered); with ``ok_too`` also
    a working connection to eu1.ksc.kaspersky.com."""
    recs = _answer(name, "203.0.113.66", 0.5, 41001)
    recs += _ok(1.0, 40010, server="203.0.113.66")
    if ok_too:
        recs += _answer("eu1.ksc.kaspersky.com", SERVER, 1.9, 41002) + _ok(2.0, 40011)
    return write(tmp_path, sorted(recs, key=lambda x: x[0]), name="other.pcap")


def test_agent_pointed_at_another_server(tmp_path):
    """A flow to a non-Kaspersky name on a KSC-only port (23101) is the agent's, pointed at another
    Administration Server: the purpose is unexpected even beside a working flow, and its advice
    names the address first (ports 443/80 are not KSC-only: there such a flow stays another program's)."""
    path = _other_server(tmp_path)
    flows = analyze(path)
    r = flows[flows["resp_h"] == "203.0.113.66"].iloc[0]
    assert (r["server_name"], r["verdict"], r["reason"]) == ("ksc-eu1.example.net", "unexpected", "host_mismatch")
    fix = _checklist(flows)["agent_connection"]
    assert readiness(flows, RULES).set_index("rule").loc["agent_connection", "status"] == "unexpected"
    assert ("the agent is configured with another Administration Server address (ksc-eu1.example.net, on TCP "
            "23100-23199, ports only a KSC agent uses; 1 flow): check the address in the agent's settings / "
            "installation package") in fix
    assert "not this purpose's traffic" not in fix


def test_corpus_unexpected_agent_other_server():
    path = shared_corpus("ksc") / "ns_unexpected_agent.pcap"
    flows = analyze(path)
    fix = _checklist(flows)["agent_connection"]
    assert fix.startswith("1 of 3 flows ok, 2 unexpected: the agent is configured with another Administration "
                          "Server address (ksc-eu1.example.net,")
    assert "more went to names outside" not in fix
    # the harmless CRL flow on 80 keeps its advice (another program's, maybe)
    assert "If an agent made it" in _checklist(flows)["cert_check"]   # (one flow: newcomer 30 F5)
    text = render_table(flows, RULES, width=400)
    assert "configured with another Administration Server address (ksc-eu1.example.net" in text


HEADLINE = ("no flow in this capture goes to a Kaspersky name or a KSC-only port: captured on "
            "the wrong machine, or at the wrong time?")


def test_no_ksc_traffic_headline(tmp_path):
    """A browser's HTTPS to www.example.com only: the terminal and HTML reports say first that the
    capture shows no KSC agent traffic; a capture with one KSC flow (or a Kaspersky name) does not."""
    web = _answer("www.example.com", "198.51.100.80", 0.5, 41003) + _ok(1.0, 40020, sport=443,
                                                                          server="198.51.100.80")
    flows = analyze(write(tmp_path, sorted(web), name="web.pcap"))
    assert set(flows["purpose"]) == {"dns", "discovery"}
    text = render_table(flows, RULES, width=400)
    assert text.lstrip().startswith(f"No KSC agent traffic: {HEADLINE}")
    page = h.unescape(re.sub(r"<[^>]+>", " ", render_html(flows, RULES, charts=False)))
    assert HEADLINE in page
    # one flow to a KSC-only port (no name at all), or a DNS lookup of a Kaspersky name: KSC traffic
    ksc = web + _rej(3.0, 40021, 23101, 63)
    flows = analyze(write(tmp_path, sorted(ksc), name="ksc.pcap"))
    assert "No KSC agent traffic" not in render_table(flows, RULES, width=400)
    assert HEADLINE not in render_html(flows, RULES, charts=False)
    named = web + _answer("eu1.ksc.kaspersky.com", SERVER, 3.0, 41004)
    flows = analyze(write(tmp_path, sorted(named), name="named.pcap"))
    assert "No KSC agent traffic" not in render_table(flows, RULES, width=400)


def test_corpus_public_capture_without_ksc_traffic():
    path = shared_corpus("public") / "synretx-unanswered_443-80_mixed.pcap"
    assert HEADLINE in render_table(analyze(path), RULES, width=400)
    assert HEADLINE not in render_table(analyze(shared_corpus("ksc") / "ns_blocked_agent.pcap"), RULES, width=400)


def test_verdict_unclassified_lists_those_flows(tmp_path):
    """``analyze --verdict unclassified`` lists the unclassified flows (not "0 of 0"), each with a
    detail saying why nothing applies."""
    import subprocess
    import sys
    from scapy.all import ICMP, UDP
    from conftest import ROOT
    recs = [(1.0, bytes(eth(IP(src=AGENT, dst="192.0.2.1") / ICMP(type=8, id=1, seq=1)))),
            (1.5, bytes(eth(IP(src=AGENT, dst="224.0.0.252", ttl=1) / UDP(sport=50000, dport=5355) / b"llmnr")))]
    path = write(tmp_path, recs, name="uncl.pcap")
    flows = analyze(path)
    assert sorted(flows["detail"]) == ["neither TCP nor UDP: no documented KSC port applies; not judged",
                                       "no documented KSC port, no Kaspersky name: not judged"]
    p = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", str(path), "--verdict", "unclassified"],
                       cwd=ROOT, capture_output=True, text=True, timeout=120, env={"COLUMNS": "250", "PATH": ""})
    assert p.returncode == 0, p.stderr
    assert "Flagged and unclassified flows (2)" in p.stdout
    assert "Flagged and unclassified flows shown: 2 of 2 (--verdict unclassified)" in p.stdout
    assert "no documented KSC port, no Kaspersky name" in p.stdout
