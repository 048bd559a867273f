"""Newcomer 36 findings 2 and 4.

F2: an agent whose own host firewall (or security software, a filter driver) drops the inbound
SYN-ACKs: captured on the agent's host, every SYN is answered by a correct SYN-ACK while the agent
sends its SYN again and again. The detail said "a capture on the server's side of a filter?" and
the advice "allow outbound TCP 23100-23199". The SYNs' TTL is an initial value (as sent, no router
decremented it): the capture is on the originator's host, the answers reached it, the host dropped
them; the advice now points at the agent host's firewall and security software.

F4: a two-port tap (one direction on each capture interface) whose clocks differ slightly: the
server-to-client port's clock behind stamps the SYN-ACK before its SYN, and a reset before the
ClientHello it acknowledges. The SYN-ACK made the flow "the SYN was answered by a TCP reset"
(REJ); the reset's detail said "and the client sent more after it". A SYN-ACK stamped a little
before the SYN it acknowledges is now taken as after it (its side's clock behind), and client
data a reset acknowledges was sent before it whatever its stamp.
"""
from __future__ import annotations

import shutil

import pytest

pytest.importorskip("scapy")

from scapy.layers.inet import IP, TCP  # noqa: E402
from scapy.layers.inet6 import IPv6  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402
from scapy.utils import wrpcap  # noqa: E402

from kscc_traffic import load_rules  # noqa: E402
from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.classify import SYNACK_NOT_TAKEN  # noqa: E402
from kscc_traffic.report import readiness  # noqa: E402

import chunkcmp  # noqa: E402
from test_newcomer30_findings import _hello  # noqa: E402

RULES = load_rules()
AGENT, SERVER = "192.0.2.10", "203.0.113.10"
AGENT6, SERVER6 = "2001:db8::10", "2001:db8:1::10"
MC, MS = "02:00:00:00:00:0a", "02:00:00:00:00:01"
T0 = 1764748800.0
HELLO = _hello(b"eu1.ksc.kaspersky.com")


def _pkt(src, dst, sport, dport, t, ttl, **tcp):
    """An Ethernet/IP(v6)/TCP frame at time ``t`` (Ether addresses given: no ARP lookup)."""
    six = ":" in src
    mac = (MC, MS) if src in (AGENT, AGENT6) else (MS, MC)
    ip = IPv6(src=src, dst=dst, hlim=ttl) if six else IP(src=src, dst=dst, ttl=ttl)
    p = Ether(src=mac[0], dst=mac[1]) / ip / TCP(sport=sport, dport=dport, **tcp)
    p.time = t
    return p


def _write(tmp_path, pkts, name="c.pcap"):
    path = tmp_path / name
    wrpcap(str(path), sorted(pkts, key=lambda p: float(p.time)))
    return path


def _flows(path, engine="builtin"):
    return analyze_file(str(path), RULES, engine=engine).flows


def _engine(engine):
    if engine == "tshark" and not shutil.which("tshark"):
        pytest.skip("tshark not installed")


def _ignored_synacks(port, syn_ttl, synack_ttl=52, agent=AGENT, server=SERVER, t0=T0, tries=(0, 1, 2, 4)):
    """The agent's SYN sent again at ``tries`` (s, cumulative gaps), each answered 20 ms later by a
    SYN-ACK acknowledging it that the agent never takes."""
    out, t = [], t0
    for d in tries:
        t += d
        out.append(_pkt(agent, server, port, 23101, t, syn_ttl, flags="S", seq=1000))
        out.append(_pkt(server, agent, 23101, port, t + 0.02, synack_ttl, flags="SA", seq=5000, ack=1001))
    return out


# --- F2: SYN-ACKs captured on the agent's host, never taken ---------------------------------------

@pytest.mark.parametrize("engine", ["builtin", "tshark"])
def test_synacks_captured_on_the_agents_host_are_dropped_there(tmp_path, engine):
    _engine(engine)
    # the agent's host (its SYNs with TTL 64 as sent) and, on another port, a capture past a router
    # (TTL 57): only the first is the host's own drop; the second keeps the server-side wording
    path = _write(tmp_path, _ignored_synacks(50026, 64) + _ignored_synacks(50027, 57, t0=T0 + 0.5))
    flows = _flows(path, engine)
    host = flows[flows.orig_p == 50026].iloc[0]
    assert (host.conn_state, host.history, host.verdict, host.reason) == ("S1", "Sh", "blocked", "no_answer")
    assert host.detail == (
        f"{SYNACK_NOT_TAKEN}: it sent its SYN 4 times and never acknowledged the 4 SYN-ACKs answering it, though "
        "they were captured where it sends from (its SYNs carry TTL 64, as sent: no router decremented it, so the "
        "capture was taken on its host or its own network segment): its own firewall, security software or a "
        "filter driver drops them")
    routed = flows[flows.orig_p == 50027].iloc[0]
    assert routed.detail == ("the SYN-ACK never reached the originator: it sent its SYN 4 times and never "
                             "acknowledged the 4 answers (a capture on the server's side of a filter dropping "
                             "that direction?)")


def test_ipv6_hop_limit_128(tmp_path):
    # a Windows agent over IPv6: hop limit 128 as sent
    path = _write(tmp_path, _ignored_synacks(50030, 128, 55, agent=AGENT6, server=SERVER6))
    row = _flows(path).iloc[0]
    assert row.detail.startswith(SYNACK_NOT_TAKEN)
    assert "its SYNs carry hop limit 128, as sent" in row.detail


def test_the_advice_is_the_agent_hosts_firewall_not_outbound_ports(tmp_path):
    path = _write(tmp_path, _ignored_synacks(50026, 64))
    row = readiness(_flows(path), RULES).set_index("purpose").loc["agent_connection"]
    assert row.status == "blocked"
    assert row.fix == (
        "this connection attempt was answered: the server's SYN-ACKs reached the agent's host (the capture, taken "
        "there or on its network segment, holds them) but were never taken, the SYN sent again and again: check the "
        "agent host's own firewall "
        "(its rules and log for the agent's program), its security software's network protection (an exclusion for "
        "the agent) and packet-filter drivers (VPN clients, traffic inspection) for what drops the inbound SYN-ACKs "
        "(from *.ksc.kaspersky.com on TCP 23100-23199); nothing is to be opened on the network path")
    assert "allow outbound" not in row.fix
    # the table report (TableSummary) says the same
    from kscc_traffic.report import render_table
    text = " ".join(render_table(_flows(path), RULES, width=400).split())
    assert "check the agent host's own firewall" in text
    assert "allow outbound TCP 23100-23199" not in text


def test_with_other_blocked_flows_the_host_drop_is_said_apart(tmp_path):
    # one attempt whose SYN-ACKs the host dropped, one never answered at all (dropped on the way)
    silent = [_pkt(AGENT, SERVER, 50040, 23101, T0 + 1 + d, 64, flags="S", seq=7000) for d in (0, 1, 3)]
    path = _write(tmp_path, _ignored_synacks(50026, 64) + silent)
    row = readiness(_flows(path), RULES).set_index("purpose").loc["agent_connection"]
    assert row.fix.startswith("allow outbound TCP 23100-23199 to *.ksc.kaspersky.com")
    assert row.fix.endswith(
        "; 1 of them was answered, the SYN-ACKs reaching the agent's host but never taken: check the agent host's "
        "own firewall (its rules and log for the agent's program), its security software's network protection (an "
        "exclusion for the agent) and packet-filter drivers (VPN clients, traffic inspection) for what drops the "
        "inbound SYN-ACKs (from *.ksc.kaspersky.com on TCP 23100-23199)")


# --- F4: a two-port tap whose clocks differ ---------------------------------------------------------

def _rst_after_hello(port=43340, rtt=0.000032, reset_after=0.00004):
    """A connection reset by the server's side right after the ClientHello, as one clock sees it:
    SYN, SYN-ACK, ACK, ClientHello, the server's ACK of it, its RST."""
    t = T0
    c = lambda dt, **kw: _pkt(AGENT, SERVER, port, 23101, t + dt, 64, **kw)  # noqa: E731
    s = lambda dt, **kw: _pkt(SERVER, AGENT, 23101, port, t + dt, 64, **kw)  # noqa: E731
    end, hello = 1001 + len(HELLO), rtt + 0.0003
    return [c(0, flags="S", seq=1000),
            s(rtt, flags="SA", seq=5000, ack=1001),
            c(rtt + 0.00005, flags="A", seq=1001, ack=5001),
            c(hello, flags="PA", seq=1001, ack=5001) / HELLO,
            s(hello + rtt, flags="A", seq=5001, ack=end),
            s(hello + rtt + reset_after, flags="RA", seq=5001, ack=end)]


def _tapped(pkts, skew):
    """The server's packets stamped ``skew`` s earlier (the server-to-client tap port's clock
    behind), the capture merged in time order."""
    out = []
    for p in pkts:
        if p[IP].src == SERVER:
            p = p.copy()
            p.time = float(p.time) - skew
        out.append(p)
    return out


@pytest.mark.parametrize("skew", [0.00005, 0.002])
def test_a_synack_stamped_before_its_syn_is_taken_after_it(tmp_path, skew):
    ref = _flows(_write(tmp_path, _rst_after_hello(), "ref.pcap")).iloc[0]
    assert (ref.verdict, ref.reason) == ("blocked", "tls_failed")
    path = _write(tmp_path, _tapped(_rst_after_hello(), skew), "tap.pcap")
    row = _flows(path).iloc[0]
    assert (row.conn_state, row.verdict, row.reason, row.detail) == ("RSTR", "blocked", "tls_failed", ref.detail)
    assert row.detail == ("TLS handshake aborted: the server reset the connection (RST, RSTR) less than 0.001 s "
                          "after the ClientHello, before the server sent a byte")
    assert (row.orig_pkts, row.resp_pkts, row.orig_bytes) == (3, 3, len(HELLO))
    assert row.ts_ns == ref.ts_ns        # (the flow begins at its SYN; every packet keeps its stamp)
    # chunked readings agree with the whole file's
    chunkcmp.assert_same(path, [200, 400, 700])


def test_tshark_engine_agrees(tmp_path):
    _engine("tshark")
    path = _write(tmp_path, _tapped(_rst_after_hello(), 0.00005), "tap.pcap")
    row = _flows(path, "tshark").iloc[0]
    assert (row.conn_state, row.verdict, row.reason) == ("RSTR", "blocked", "tls_failed")


def test_a_reset_acknowledging_the_hello_was_sent_after_it(tmp_path):
    # an IPS just past the tap resets 30 us after the ClientHello; the server 20 ms away; the
    # server-to-client port's clock 100 us behind: the reset is stamped 70 us before the ClientHello
    pkts = _rst_after_hello(port=50060, rtt=0.02, reset_after=0.00003)
    pkts = [p for p in pkts if not (p[IP].src == SERVER and p[TCP].flags == "A")]   # (no server ACK)
    pkts[-1].time = float(pkts[-2].time) + 0.00003
    ref = _flows(_write(tmp_path, pkts, "ref.pcap")).iloc[0]
    path = _write(tmp_path, _tapped(pkts, 0.0001), "tap.pcap")
    row = _flows(path).iloc[0]
    assert (row.verdict, row.reason) == ("blocked", "tls_failed")
    assert "sent more after it" not in row.detail
    assert row.detail == ref.detail == ("TLS handshake aborted: the server reset the connection (RST, RSTR) less than "
                                        "0.001 s after the ClientHello, before the server sent a byte")
    chunkcmp.assert_same(path, [200, 400])


def test_several_tapped_connections_at_once(tmp_path):
    # four connections in one capture, three stamped with their SYN-ACK before the SYN (the
    # reordering of several 5-tuples at once), one in order
    pkts = []
    for k, skew in enumerate((0.00005, 0.0, 0.001, 0.004)):
        conn = _rst_after_hello(port=43340 + k)
        for p in conn:
            p.time = float(p.time) + 0.01 * k
        pkts += _tapped(conn, skew)
    path = _write(tmp_path, pkts)
    flows = _flows(path).sort_values("orig_p")
    assert flows.orig_p.tolist() == [43340, 43341, 43342, 43343]
    assert set(zip(flows.conn_state, flows.verdict, flows.reason)) == {("RSTR", "blocked", "tls_failed")}
    assert set(flows.detail) == {"TLS handshake aborted: the server reset the connection (RST, RSTR) less than 0.001 s "
                                 "after the ClientHello, before the server sent a byte"}
    # (every chunk size of a few records: a key whose SYN-ACK moved after its SYN begins with the
    # other side, and its packets were compared as copies with the key's before it, s57)
    chunkcmp.assert_same(path, [64, 200, 300, 364, 820, 900, 1496])


@pytest.mark.parametrize("syn_ttl,start", [(64, SYNACK_NOT_TAKEN + ": it sent its SYN 2 times and never acknowledged "
                                                  "the SYN-ACK answering it, though it was captured where"),
                                           (57, "the SYN-ACK never reached the originator: it sent its SYN 2 times "
                                                "and never acknowledged the answer (a capture")])
def test_one_synack_is_said_in_the_singular(tmp_path, syn_ttl, start):
    # (session 41: "the 1 SYN-ACKs", "the 1 answers" before) two SYNs, only the first answered
    pkts = _ignored_synacks(50031, syn_ttl, tries=(0, 3.5))[:-1]
    d = _flows(_write(tmp_path, pkts)).iloc[0].detail
    assert d.startswith(start), d
    assert d.endswith("drops it") if syn_ttl == 64 else d.endswith("dropping that direction?)")
