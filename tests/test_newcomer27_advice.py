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
OWN = ("the reset came with the server's own TTL (63, as its packets on other connections): the server itself "
       "refused — nothing listens on this port there (a wrong port? the service down?)")


def _up(t, sport, dport, ttl=64, dst=SERVER, **kw):
    return t, bytes(eth(IP(src=AGENT, dst=dst, ttl=ttl) / TCP(sport=sport, dport=dport, **kw)))


def _dn(t, sport, dport, ttl=63, src=SERVER, data=b"", **kw):
    return t, bytes(eth(IP(src=src, dst=AGENT, ttl=ttl) / TCP(sport=sport, dport=dport, **kw) / data,
                        src=SERVER_MAC, dst=CLIENT_MAC))


def _ok(t, cport, sport=23101, ttl=63):
    """A connection the server (``ttl`` on its packets) answered, closed (a bare handshake)."""
    return [_up(t, cport, sport, flags="S", seq=100),
            _dn(t + 0.01, sport, cport, ttl=ttl, flags="SA", seq=500, ack=101),
            _up(t + 0.02, cport, sport, flags="A", seq=101, ack=501),
            _up(t + 0.05, cport, sport, flags="FA", seq=101, ack=501),
            _dn(t + 0.06, sport, cport, ttl=ttl, flags="FA", seq=501, ack=102),
            _up(t + 0.07, cport, sport, flags="A", seq=102, ack=502)]


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
    assert "the server itself refused — nothing listens on this port there (a wrong port? the service down?)" in own
    assert "no firewall is to be opened" in own and "allow outbound" not in own
    # chunked (the server's SYN-ACK in an earlier batch than the resets) = whole
    assert_same(path, [300, 700, 1500])


def test_refused_syn_live_equals_whole(tmp_path, monkeypatch):
    """A live session gives the same details (the server's flow evicted or not)."""
    from test_live_session import assert_live_same
    recs = _ok(1.0, 40000) + _rej(8.0, 40001, 29201, 64) + _rej(8.1, 40002, 23199, 63)
    path = write(tmp_path, recs, name="rejlive.pcap")
    assert_live_same(path, monkeypatch, step=2)


def test_no_hint_without_an_earlier_packet_of_the_address(tmp_path):
    """The reset before any other packet of its address (the server heard only later), or from
    farther than the server: nothing said, the detail as before (every analysis gives the same)."""
    recs = _rej(1.0, 40001, 29201, 64) + _ok(2.0, 40000) + _rej(8.0, 40003, 29202, 50)
    path = write(tmp_path, recs, name="late.pcap")
    flows = assert_same(path, [300, 900])
    assert _detail(flows, 29201) == "the SYN was answered by a TCP reset"
    assert _detail(flows, 29202) == "the SYN was answered by a TCP reset"
    assert _checklist(flows)["klsctunnel"].startswith("allow outbound TCP 29200-29299")


def test_refused_syn_html_report(tmp_path):
    recs = _ok(1.0, 40000) + _rej(8.0, 40001, 29201, 64) + _rej(8.1, 40002, 23199, 63)
    flows = analyze(write(tmp_path, recs, name="rejh.pcap"))
    page = h.unescape(re.sub(r"<[^>]+>", " ", render_html(flows, RULES, charts=False)))
    assert "nothing listens on this port there (a wrong port? the service down?)" in page
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
    assert "no firewall is to be opened" in text
