"""Break-it pass of session 50 (KSC scenarios the corpus does not show): each test names its finding."""
from __future__ import annotations

import pytest

pytest.importorskip("scapy")

from pcapbuild import pcap_bytes, tcp_session  # noqa: E402
from test_newcomer30_findings import AGENT, KSC, SERVER_HELLO, _fixes, _hello  # noqa: E402

from kscc_traffic import analyze, load_rules  # noqa: E402
from kscc_traffic.html_report import render_html  # noqa: E402
from kscc_traffic.report import console_names, vendor_names  # noqa: E402

RULES = load_rules()


def test_the_bare_console_domain_is_a_wrong_server_address(tmp_path):
    """#5: an SNI of ksc.kaspersky.com itself on 23102 is host_mismatch (``*.`` needs a
    sub-domain); the advice was "the Cloud Console server on a port the page does not document",
    on a documented port: it is the agent's Administration Server address that is wrong."""
    assert console_names(["ksc.kaspersky.com", "KSC.Kaspersky.com.", "eu1.ksc.kaspersky.com"]).tolist() == \
        [False, False, True]
    assert vendor_names(["ksc.kaspersky.com", "ds.kaspersky.com", "kaspersky.com"]).tolist() == [False, True, True]
    path = tmp_path / "bare.pcap"
    path.write_bytes(pcap_bytes(tcp_session((AGENT, 50003), (KSC, 23102), t0=1000.0,
                                            c_data=_hello(b"ksc.kaspersky.com"), s_data=SERVER_HELLO)))
    flows = analyze(str(path))
    row = flows.iloc[0]
    assert (row["purpose"], row["verdict"], row["reason"]) == ("agent_connection", "unexpected", "host_mismatch")
    fix = _fixes(flows)
    assert fix.startswith("the agent is configured with another Administration Server address (ksc.kaspersky.com, "
                          "on TCP 23100-23199"), fix
    assert "does not document for it" not in fix
    assert "does not document for it" not in render_html(flows, RULES)


def _local_answer(tmp_path, name: str, v6: bool, extra=()) -> str:
    """An agent (global address) looks eu1.ksc.kaspersky.com up and gets a local one (ULA fd00:5::40,
    10.20.30.40); its SYN to 23101 there goes unanswered; ``extra`` records added."""
    from scapy.all import DNS, DNSQR, DNSRR, TCP
    from pcapbuild import eth, ip_of, udp
    agent, resolver, server = (("2001:db8::10", "2001:db8::53", "fd00:5::40") if v6
                               else ("198.51.100.10", "198.51.100.53", "10.20.30.40"))
    kind = "AAAA" if v6 else "A"
    ans = DNS(id=7, qr=1, qd=DNSQR(qname="eu1.ksc.kaspersky.com", qtype=kind),
              an=DNSRR(rrname="eu1.ksc.kaspersky.com", type=kind, ttl=60, rdata=server))
    recs = [udp((agent, 41000), (resolver, 53), bytes(DNS(id=7, rd=1, qd=DNSQR(qname="eu1.ksc.kaspersky.com",
                                                                                   qtype=kind))), t=999.0),
            udp((resolver, 53), (agent, 41000), bytes(ans), t=999.01)]
    recs += [(1000.0 + k, eth(ip_of(agent, server) / TCP(sport=50000, dport=23101, flags="S", seq=7)))
             for k in (0, 1, 3, 7)]
    path = tmp_path / name
    path.write_bytes(pcap_bytes(sorted(recs + list(extra), key=lambda r: r[0])))
    return str(path)


@pytest.mark.parametrize("v6", [True, False])
def test_a_cloud_name_resolved_to_a_local_address_is_a_dns_fault_not_an_inbound_connection(tmp_path, v6):
    """#1: the agent (a global address) was given a local address for the cloud's name (a split DNS
    zone, a DNS filter): its SYN there was "an inbound connection: opened from outside" with "close such
    a port forwarding" advice; it is the agent's own attempt, blocked, and the advice is the DNS's."""
    flows = analyze(_local_answer(tmp_path, "local.pcap", v6))
    row = flows[flows["resp_p"] == 23101].iloc[0]
    assert (row["verdict"], row["reason"]) == ("blocked", "no_answer")
    server = "fd00:5::40" if v6 else "10.20.30.40"
    assert row["detail"] == (f"SYN sent 4 times, no answer; eu1.ksc.kaspersky.com was resolved to {server}, a local "
                             "address, where the cloud server never is: a split DNS, a DNS filter or a hosts file "
                             "entry points the name elsewhere (check what the agent's resolver answers for it, and "
                             "the hosts file)")
    assert _fixes(flows) == ("this connection on TCP 23100-23199 went to a local address a cloud name was resolved "
                             "to, where the cloud server never is: make the agent's resolver (and hosts file) give "
                             "*.ksc.kaspersky.com the cloud's own public addresses (a split DNS zone, a DNS filter or "
                             "a hosts entry answers with a local one); no port is to be opened for it")


def test_beside_other_blocked_flows_the_dns_advice_is_added_and_a_true_inbound_stays(tmp_path):
    """#1: a direct attempt blocked at a cloud address keeps the firewall advice, the local one adds
    the DNS's; a connection from outside to a local address with no lookup before it is still
    wrong_direction (the client resolved nothing)."""
    from pcapbuild import syn_attempts
    extra = syn_attempts(50001, "203.0.113.10", 23101, 1010.0, client="198.51.100.10")
    extra += syn_attempts(50002, "10.20.30.41", 23101, 1020.0, client="203.0.113.77")
    flows = analyze(_local_answer(tmp_path, "mixed.pcap", False, extra))
    fix = _fixes(flows)
    assert fix.startswith("0 of 3 flows ok, 2 blocked, 1 unexpected (1 wrong_direction). For the blocked ones: "
                          "allow outbound TCP 23100-23199 to *.ksc.kaspersky.com"), fix
    assert ("; 1 of them went to a local address a cloud name was resolved to, where the cloud server never is: make "
            "the agent's resolver (and hosts file) give *.ksc.kaspersky.com the cloud's own public addresses (a split "
            "DNS zone, a DNS filter or a hosts entry answers with a local one). For the unexpected one: this flow on "
            "TCP 23100-23199 was opened from outside towards a local address") in fix, fix
    inbound = flows[flows["resp_h"] == "10.20.30.41"].iloc[0]
    assert (inbound["verdict"], inbound["reason"]) == ("unexpected", "wrong_direction")
    assert "where the cloud server never is" not in inbound["detail"]


def test_a_client_side_capture_shows_the_clients_certificate_refusal(tmp_path):
    """#3: only the agent's packets captured; they acknowledge the server's 465 bytes and then send a
    cleartext unknown_ca alert: was ``unclassified``/``one_way`` ("the server answered … not judged")
    although the alert proves the handshake failed on the certificate; now ``blocked``/``tls_failed``
    with the certificate advice (whose it was not shown). A one-way flow without such an alert
    stays one_way."""
    from scapy.all import IP, TCP
    from pcapbuild import eth
    from test_newcomer30_findings import _hello
    hello = _hello(b"eu1.ksc.kaspersky.com")
    def c(t, data=b"", **kw):
        return t, eth(IP(src=AGENT, dst=KSC) / TCP(sport=50010, dport=23101, **kw) / data)

    alert = b"\x15\x03\x03\x00\x02\x02\x30"       # fatal unknown_ca (48)
    s0 = 1000 + 1 + len(hello)
    recs = [c(1000.0, flags="S", seq=1000), c(1000.02, flags="A", seq=1001, ack=5001),
            c(1000.03, hello, flags="PA", seq=1001, ack=5001), c(1000.2, alert, flags="PA", seq=s0, ack=5466),
            c(1000.21, flags="FA", seq=s0 + len(alert), ack=5466)]
    path = tmp_path / "client_side.pcap"
    path.write_bytes(pcap_bytes(recs))
    flows = analyze(str(path))
    row = flows.iloc[0]
    assert (row["verdict"], row["reason"], row["tls_alert"]) == ("blocked", "tls_failed", "client: unknown_ca (48)")
    assert row["detail"].startswith("TLS handshake aborted: client: unknown_ca (48): the client refused the server's "
                                    "certificate; only the originator's packets were captured: they acknowledge the "
                                    "responder's SYN-ACK and 465 bytes of its answers, and the server's side was not "
                                    "captured"), row["detail"]
    fix = _fixes(flows)
    assert "the client refused the server's certificate, which TLS 1.3 hides or the capture lacks" in fix, fix
    # (the same packets without the alert: the server answered, what it said is not in the capture)
    path.write_bytes(pcap_bytes(recs[:3] + [c(1000.21, flags="FA", seq=s0, ack=5466)]))
    row = analyze(str(path)).iloc[0]
    assert (row["verdict"], row["reason"]) == ("unclassified", "one_way")
