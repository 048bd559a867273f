"""Break-it 23 F3, F4, F12: verdicts, details and checklist advice of TCP connections ended right
after the handshake, and of TCP to a broadcast or multicast address.

- F3: Zeek's REJ also covers a handshake that completed (or a SYN-ACK) which both sides then
  reset, nothing sent: not "the SYN was answered by a TCP reset". The responder's reset first is
  the "reset right after the handshake" case (blocked/rejected), the originator's first a port
  probe (ok: the port is open).
- F12: the responder's FIN right after the handshake, before the client sent a byte, is on a TLS
  purpose the same as its reset (blocked/rejected: the ClientHello never went out).
- F4: TCP to a broadcast or multicast address (``cast``) cannot connect (RFC 1122 §4.2.3.10):
  unexpected/not_unicast, no advice to open a port.

The checklist's advice for such flows is not the rule's firewall advice (the port is open, or
no port is the fix). Captures built with scapy; the grouped judgement is compared with the
per-row one, the chunked analysis with the whole-file one."""
from __future__ import annotations

from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from chunkcmp import assert_same as assert_same_chunked
from pcapbuild import CLIENT_MAC, SERVER_MAC
from test_classify_fast import assert_same
from test_newcomer23_verdicts import _internal
from test_tls_view_cut import _write

from kscc_traffic import analyze
from kscc_traffic.classify import HANDSHAKE_CLOSE, HANDSHAKE_RESET
from kscc_traffic.html_report import render_html
from kscc_traffic.report import TableSummary, readiness, rejected_kind, rejected_reason_text
from kscc_traffic.rules import load_rules

RULES = load_rules()
AGENT, CLOUD, DP = "192.0.2.10", "203.0.113.10", "192.0.2.20"
RESET_DETAIL = f"{HANDSHAKE_RESET} (a SYN proxy or load balancer with no server behind it?)"
PROBE_DETAIL = ("the SYN was answered by a SYN-ACK (the port is open), then the originator reset the connection "
                "before any data (a port probe or scan?) and the responder reset it too")
CLOSE_DETAIL = (f"{HANDSHAKE_CLOSE} (its ClientHello never went out: a SYN proxy or load balancer with no server "
                "behind it, or a service refusing the client?)")


def _conn(steps, client=(AGENT, 50000), server=(CLOUD, 23101), t0=100.0, gap=0.01):
    """(ts, frame) of a TCP connection: ``steps`` [(side 'c'/'s', flags)] in order, sequence
    numbers tracked (a SYN or FIN takes one), ``gap`` seconds apart."""
    seq, out, t = {"c": 1000, "s": 5000}, [], t0
    for side, flags in steps:
        src, dst = (client, server) if side == "c" else (server, client)
        other = "s" if side == "c" else "c"
        ip = IPv6 if ":" in src[0] else IP
        pkt = Ether(src=CLIENT_MAC if side == "c" else SERVER_MAC, dst=SERVER_MAC if side == "c" else CLIENT_MAC) \
            / ip(src=src[0], dst=dst[0]) / TCP(sport=src[1], dport=dst[1], flags=flags, seq=seq[side],
                                               ack=seq[other] if "A" in flags else 0)
        out.append((t, pkt))
        t += gap
        seq[side] += 1 if ("S" in flags or "F" in flags) else 0
    return out


def _flows(tmp_path, records, name="c.pcap"):
    path = _write(tmp_path / name, records)
    flows = analyze(str(path))
    return flows[flows["purpose"] != "dns"].reset_index(drop=True), path


def _checklist(flows, rule):
    """The checklist row of ``rule``, from both readiness paths (asserted equal)."""
    a = readiness(flows, RULES).set_index("rule").loc[rule]
    b = TableSummary.of(flows).readiness(RULES).set_index("rule").loc[rule]
    assert a.to_dict() == b.to_dict()
    return a


# --- F3: REJ after a SYN-ACK ------------------------------------------------------------------


def test_both_resets_after_a_completed_handshake_client_first_is_a_probe_not_a_closed_port(tmp_path):
    """s24c: SYN, SYN-ACK, ACK, the client's RST, the server's RST: REJ, but the port is open."""
    flows, path = _flows(tmp_path, _conn([("c", "S"), ("s", "SA"), ("c", "A"), ("c", "RA"), ("s", "RA")]))
    r = flows.iloc[0]
    assert (r["conn_state"], r["history"]) == ("REJ", "ShARr")
    assert (r["purpose"], r["verdict"], r["reason"], r["detail"]) == ("agent_connection", "ok", "", PROBE_DETAIL)
    row = _checklist(flows, "agent_connection")
    assert row["status"] == "port open" and "allow outbound" not in row["fix"]
    assert_same(_internal(path))


def test_a_synack_the_client_resets_then_the_server_resets_is_a_probe(tmp_path):
    """s24b: SYN, SYN-ACK, the client's RST (a half-open scan), the server's RST: REJ 'ShRr'."""
    flows, _ = _flows(tmp_path, _conn([("c", "S"), ("s", "SA"), ("c", "R"), ("s", "RA")]))
    r = flows.iloc[0]
    assert (r["conn_state"], r["history"]) == ("REJ", "ShRr")
    assert (r["verdict"], r["reason"], r["detail"]) == ("ok", "", PROBE_DETAIL)


def test_both_resets_after_the_handshake_server_first_is_the_reset_after_the_handshake(tmp_path):
    """s24d: the server's RST right after the handshake, then the client's: the detail of s08b
    (not "the SYN was answered by a TCP reset"), the advice not to open the port."""
    flows, path = _flows(tmp_path, _conn([("c", "S"), ("s", "SA"), ("c", "A"), ("s", "RA"), ("c", "RA")]))
    r = flows.iloc[0]
    assert (r["conn_state"], r["history"]) == ("REJ", "ShArR")
    assert (r["verdict"], r["reason"], r["detail"]) == ("blocked", "rejected", RESET_DETAIL)
    row = _checklist(flows, "agent_connection")
    assert (row["status"], row["blocked"]) == ("blocked", 1)
    assert row["fix"].startswith("this connection: the SYN on TCP 23100-23199 was answered by a SYN-ACK (the port "
                                 "is open: nothing to open in the firewall), then the server's side reset or closed "
                                 "the connection before any data")
    assert "a SYN proxy, a transparent proxy or load balancer" in row["fix"]
    assert row["fix"].endswith("report the server and port to Kaspersky support")
    assert "allow outbound" not in row["fix"]
    assert rejected_kind(r["detail"]) == "handshake"
    assert rejected_reason_text([r["detail"]]).startswith("the TCP handshake completed (the port is open)")
    # (the HTML report's "Why flagged" of rejected, and its checklist)
    page = render_html(flows, RULES)
    assert "<b>rejected</b>: the TCP handshake completed (the port is open), then the server&#x27;s side" in page
    assert "allow outbound" not in page
    assert_same(_internal(path))


def test_the_reset_right_after_the_handshake_rstr_gets_the_same_advice(tmp_path):
    """s08b (RSTR 'ShAr'): its detail was right; the checklist said "allow outbound …"."""
    flows, _ = _flows(tmp_path, _conn([("c", "S"), ("s", "SA"), ("c", "A"), ("s", "RA")]))
    r = flows.iloc[0]
    assert (r["conn_state"], r["verdict"], r["detail"]) == ("RSTR", "blocked", RESET_DETAIL)
    row = _checklist(flows, "agent_connection")
    assert row["fix"].startswith("this connection: the SYN on TCP 23100-23199 was answered by a SYN-ACK")
    assert "allow outbound" not in row["fix"]


def test_a_plain_rej_and_a_mix_keep_the_firewall_advice(tmp_path):
    """A SYN answered by a reset is still "the SYN was answered by a TCP reset"; with one reset
    after the handshake among the blocked flows, that advice is added to the firewall's."""
    recs = _conn([("c", "S"), ("s", "RA")]) + _conn([("c", "S"), ("s", "SA"), ("c", "A"), ("s", "RA"), ("c", "RA")],
                                                  client=(AGENT, 50001), t0=101.0)
    flows, path = _flows(tmp_path, recs)
    by_port = flows.set_index("orig_p")
    assert (by_port.loc[50000, "conn_state"], by_port.loc[50000, "detail"]) == ("REJ", "the SYN was answered by a "
                                                                                 "TCP reset")
    assert by_port.loc[50001, "detail"] == RESET_DETAIL
    row = _checklist(flows, "agent_connection")
    assert row["fix"].startswith("allow outbound TCP 23100-23199")
    assert "; 1 of them: the SYN on TCP 23100-23199 was answered by a SYN-ACK (the port is open" in row["fix"]
    assert_same(_internal(path))


def test_a_distribution_point_reset_after_the_handshake_is_not_its_closed_port(tmp_path):
    """On TCP 13000 (REJ 'ShArR'): the handshake reset's detail, not DP_RESET's; the advice names
    the service and what may stand in front of it, not the firewall."""
    flows, _ = _flows(tmp_path, _conn([("c", "S"), ("s", "SA"), ("c", "A"), ("s", "RA"), ("c", "RA")],
                                      server=(DP, 13000)))
    r = flows.iloc[0]
    assert (r["purpose"], r["conn_state"], r["verdict"], r["detail"]) == ("dp_agent_connection", "REJ", "blocked",
                                                                          RESET_DETAIL)
    row = _checklist(flows, "dp_agent_connection")
    assert row["fix"].startswith("this connection: the SYN on TCP 13000 was answered by a SYN-ACK")
    assert "check that the service for it is running and listening on TCP 13000 there" in row["fix"]
    assert "allow inbound" not in row["fix"]


# --- F12: the responder's FIN right after the handshake ---------------------------------------


def test_a_server_fin_right_after_the_handshake_on_a_tls_purpose_is_blocked_as_its_reset(tmp_path):
    """s26: SYN, SYN-ACK, ACK, the server's FIN, the client's FIN, ACK: 'ShAfFa'."""
    steps = [("c", "S"), ("s", "SA"), ("c", "A"), ("s", "FA"), ("c", "FA"), ("s", "A")]
    flows, path = _flows(tmp_path, _conn(steps))
    r = flows.iloc[0]
    assert (r["conn_state"], r["history"]) == ("SF", "ShAfFa")
    assert (r["verdict"], r["reason"], r["detail"]) == ("blocked", "rejected", CLOSE_DETAIL)
    row = _checklist(flows, "agent_connection")
    assert row["fix"].startswith("this connection: the SYN on TCP 23100-23199 was answered by a SYN-ACK")
    assert "allow outbound" not in row["fix"]
    assert rejected_kind(r["detail"]) == "handshake"
    assert_same(_internal(path))


def test_a_server_fin_after_the_handshake_elsewhere_or_later_or_after_the_client_is_ok(tmp_path):
    """Not TLS (KSN's TCP 1443: the server may speak first): ok, the detail told; the FIN 5 s
    after the handshake (a silent client timed out): ok as before; the client's FIN first: ok."""
    steps = [("c", "S"), ("s", "SA"), ("c", "A"), ("s", "FA"), ("c", "FA"), ("s", "A")]
    ksn = _conn(steps, server=(CLOUD, 1443))
    late = _conn(steps, client=(AGENT, 50001), t0=101.0, gap=2.0)
    client_first = _conn([("c", "S"), ("s", "SA"), ("c", "A"), ("c", "FA"), ("s", "FA"), ("c", "A")],
                         client=(AGENT, 50002), t0=120.0)
    flows, path = _flows(tmp_path, ksn + late + client_first)
    by_port = flows.set_index("orig_p")
    assert (by_port.loc[50000, "purpose"], by_port.loc[50000, "verdict"]) == ("ksn", "ok")
    assert by_port.loc[50000, "detail"] == (f"{HANDSHAKE_CLOSE} (a service with nothing to say, or a SYN proxy or "
                                            "load balancer with no server behind it?)")
    assert by_port.loc[50001, "history"] == "ShAfFa" and by_port.loc[50001, "duration"] >= 3
    assert (by_port.loc[50001, "verdict"], by_port.loc[50001, "detail"]) == ("ok", "")
    assert (by_port.loc[50002, "history"], by_port.loc[50002, "verdict"], by_port.loc[50002, "detail"]) == \
        ("ShAFf", "ok", "")
    assert_same(_internal(path))
    assert_same_chunked(path, [600])


# --- F4: TCP to a broadcast or multicast address -----------------------------------------------


def test_a_syn_to_a_broadcast_address_is_not_a_port_to_open(tmp_path):
    """s29: 3 SYNs to 192.0.2.255:13000 in link-layer broadcast frames (cast broadcast)."""
    recs = []
    for i in range(3):
        recs.append((100.0 + i, Ether(src=CLIENT_MAC, dst="ff:ff:ff:ff:ff:ff") / IP(src=AGENT, dst="192.0.2.255")
                     / TCP(sport=50000, dport=13000, flags="S", seq=1000)))
    flows, path = _flows(tmp_path, recs)
    r = flows.iloc[0]
    assert (r["cast"], r["purpose"], r["verdict"], r["reason"]) == ("broadcast", "dp_agent_connection", "unexpected",
                                                                    "not_unicast")
    assert r["detail"] == ("TCP to the broadcast address 192.0.2.255: TCP connects only to a unicast address (RFC 1122 "
                           "§4.2.3.10: no host accepts a SYN sent to a broadcast or multicast address), so no firewall "
                           "rule can make this work: the sender uses a wrong server address (a subnet's broadcast "
                           "address, or a mistyped one, set as the distribution point's or server's address?)")
    row = _checklist(flows, "dp_agent_connection")
    assert (row["status"], row["unexpected"], row["reasons"]) == ("unexpected", 1, "not_unicast")
    assert row["fix"].startswith("this flow was TCP to a broadcast or multicast address on TCP 13000")
    assert row["fix"].endswith("nothing to open")
    assert "allow inbound" not in row["fix"]
    assert_same(_internal(path))


def test_syns_to_multicast_addresses_and_a_working_flow_beside_them(tmp_path):
    """s17b: a SYN to 224.0.0.251:13000, one to ff02::fb: not_unicast, each address quoted; a
    distribution point answering on 13000 beside them is ok, and the advice counts both."""
    recs = [(100.0, Ether(src=CLIENT_MAC, dst="01:00:5e:00:00:fb") / IP(src=AGENT, dst="224.0.0.251")
             / TCP(sport=50000, dport=13000, flags="S", seq=1000)),
            (100.5, Ether(src=CLIENT_MAC, dst="33:33:00:00:00:fb") / IPv6(src="2001:db8::10", dst="ff02::fb")
             / TCP(sport=50001, dport=13000, flags="S", seq=1000))]
    steps = [("c", "S"), ("s", "SA"), ("c", "A"), ("c", "FA"), ("s", "FA"), ("c", "A")]
    recs += _conn(steps, client=(AGENT, 50002), server=(DP, 13000), t0=101.0)
    flows, path = _flows(tmp_path, recs)
    by_port = flows.set_index("orig_p")
    for port, cast, addr in ((50000, "multicast", "224.0.0.251"), (50001, "multicast", "ff02::fb")):
        assert (by_port.loc[port, "cast"], by_port.loc[port, "verdict"], by_port.loc[port, "reason"]) == \
            (cast, "unexpected", "not_unicast")
        assert by_port.loc[port, "detail"].startswith(f"TCP to the multicast address {addr}: TCP connects only")
        assert "(a multicast group's address, set as the distribution point's" in by_port.loc[port, "detail"]
    assert by_port.loc[50002, "verdict"] == "ok"
    row = _checklist(flows, "dp_agent_connection")
    assert (row["status"], row["ok"], row["unexpected"]) == ("unexpected", 1, 2)
    assert row["fix"].startswith("1 of 3 flows ok, 2 unexpected: these 2 flows were TCP to a broadcast or multicast "
                                 "address on TCP 13000")
    assert "allow inbound" not in row["fix"]
    assert_same(_internal(path))
    assert_same_chunked(path, [600])
