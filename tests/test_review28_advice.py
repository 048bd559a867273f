"""Review of session 28 (session 27's new advice read again): the hint of a SYN answered by a
reset (REJ), told by the TTL of the address's packets on other connections
(inspect.address_ttls, _refused_hints); the agent pointed at another Administration Server
(report.elsewhere_rows). Captures are built with scapy (and Python's ssl) here."""
from __future__ import annotations

import pytest
from scapy.all import IP, TCP

from chunkcmp import assert_same, whole, write
from kscc_traffic import analyze, load_rules, readiness
from kscc_traffic.report import TableSummary
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth
from test_proxy_connect import _records, _tls, _write

AGENT, SERVER = "192.0.2.10", "203.0.113.10"


def _up(t, sport, dport, **kw):
    return t, bytes(eth(IP(src=AGENT, dst=SERVER, ttl=64) / TCP(sport=sport, dport=dport, **kw)))


def _dn(t, sport, dport, ttl, data=b"", **kw):
    return t, bytes(eth(IP(src=SERVER, dst=AGENT, ttl=ttl) / TCP(sport=sport, dport=dport, **kw) / data,
                        src=SERVER_MAC, dst=CLIENT_MAC))


def _detail(flows, port):
    (d,) = flows.loc[flows["resp_p"] == port, "detail"].tolist()
    return d


def test_syn_proxy_synack_is_not_the_servers_ttl(tmp_path):
    """A SYN proxy (a firewall answering the handshake for the server, TTL 254) in front of a server
    whose own packets come with TTL 50; the firewall then refuses 29201 with a reset of its own TTL
    (254). Compared with the SYN-ACK (the address's first packet) the reset looked like the
    server's own ('nothing listens on this port there'); it is a device 13 hops nearer than the
    server's data: a firewall refusing the port."""
    recs = [_up(1.00, 40000, 23101, flags="S", seq=100),
            _dn(1.01, 23101, 40000, 254, flags="SA", seq=500, ack=101),
            _up(1.02, 40000, 23101, flags="A", seq=101, ack=501),
            _dn(1.04, 23101, 40000, 50, flags="PA", seq=501, ack=101, data=b"x" * 10),
            _up(1.05, 40000, 23101, flags="FA", seq=101, ack=511),
            _dn(1.06, 23101, 40000, 50, flags="FA", seq=511, ack=102),
            _up(1.07, 40000, 23101, flags="A", seq=102, ack=512),
            _up(8.00, 40001, 29201, flags="S", seq=900),
            _dn(8.001, 29201, 40001, 254, flags="RA", seq=0, ack=901)]
    path = write(tmp_path, recs, name="synproxy.pcap")
    flows, _ = whole(path)
    assert _detail(flows, 29201) == (
        "the SYN was answered by a TCP reset; the reset came from a device 13 hops nearer than the server (TTL 254 "
        "vs 50 on the server's packets on other connections): a firewall refuses the port")
    assert_same(path, [300, 700])


@pytest.mark.parametrize("cert", ["klserver.corp.example", "FortiGate SSL Inspection"])
def test_no_name_asked_is_not_another_administration_server(tmp_path, cert):
    """TLS on TCP 23101 with no SNI and no DNS answer (an agent set up with an IP address, a
    TLS-inspecting proxy's certificate): host_mismatch from the server's certificate alone, but
    no name the agent was configured with. The advice does not say the agent is configured with
    another Administration Server address ('(, on TCP 23100-23199' with an empty name); it keeps
    the advice on other names."""
    recs = _records(_tls(tmp_path, names=(cert,), sni=None), port=50000, proxy=("203.0.113.10", 23101))
    flows = analyze(str(_write(tmp_path, recs, name="nosni.pcap")))
    (r,) = flows.to_dict("records")
    # (a TLS-inspection product's own certificate names the proxy: interception, break-it s54 #2)
    inspected = "FortiGate" in cert
    assert (r["server_name"], r["verdict"], r["reason"]) == (
        "", "unexpected", "tls_intercepted" if inspected else "host_mismatch")
    rules = load_rules()
    a = readiness(flows, rules).set_index("rule").loc["agent_connection", "fix"]
    b = TableSummary.of(flows).readiness(rules).set_index("rule").loc["agent_connection", "fix"]
    assert a == b
    assert "another Administration Server address" not in a and "(," not in a, a
    if inspected:
        assert "a TLS-inspecting proxy sits in the path; exclude these names from inspection" in a, a
    else:
        assert a.startswith("this flow on TCP 23100-23199 went to a name outside *.ksc.kaspersky.com"), a


def test_a_name_asked_elsewhere_is_still_named(tmp_path):
    """The same with the SNI the agent was set up with (ksc.corp.example): named first, as before."""
    recs = _records(_tls(tmp_path, names=("ksc.corp.example",), sni="ksc.corp.example"), port=50000,
                    proxy=("203.0.113.10", 23101))
    flows = analyze(str(_write(tmp_path, recs, name="sni.pcap")))
    fix = readiness(flows, load_rules()).set_index("rule").loc["agent_connection", "fix"]
    assert fix.startswith("the agent is configured with another Administration Server address (ksc.corp.example, "
                          "on TCP 23100-23199"), fix


def test_own_ttl_reset_may_be_the_servers_own_firewall(tmp_path):
    """A reset with the server's own TTL is its stack's, which also answers for a host firewall's
    reject rule (iptables/nftables 'reject with tcp reset', ufw reject): the hint does not say
    flatly that nothing listens there (as the distribution point's reset already does not)."""
    recs = [_up(1.00, 40000, 23101, flags="S", seq=100),
            _dn(1.01, 23101, 40000, 50, flags="SA", seq=500, ack=101),
            _up(1.02, 40000, 23101, flags="A", seq=101, ack=501),
            _dn(1.04, 23101, 40000, 50, flags="PA", seq=501, ack=101, data=b"x" * 10),
            _up(8.00, 40001, 23199, flags="S", seq=900),
            _dn(8.001, 23199, 40001, 50, flags="RA", seq=0, ack=901)]
    flows, _ = whole(write(tmp_path, recs, name="own.pcap"))
    assert _detail(flows, 23199) == (
        "the SYN was answered by a TCP reset; the reset came with the server's own TTL (50, as its packets on "
        "other connections): most likely the server's own answer: nothing listens on this port there (a wrong "
        "port? the service down?), or its host firewall rejects it (a firewall on the path that copies the "
        "server's TTL looks the same)")
    fix = readiness(flows, load_rules()).set_index("rule").loc["agent_connection", "fix"]
    assert "nothing listens on this port there (a wrong port? the service down?), or its host firewall rejects it" in fix, fix
    assert "if it is right, the service is not running there or a firewall rejects the port (the server's own" in fix, fix
