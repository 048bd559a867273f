"""Session 60: a handshake_failure answering a ClientHello without a server name (SNI).

The detail of such a refusal said "the ClientHello carried no server name (SNI), which a server or
front end that routes by name refuses so; else … (a TLS policy on the agent's device)" whatever the
hello offered, also on a distribution point's port, which the agent reaches by address (no SNI is
its normal hello): the checklist then gave the generic "distribution point's service" advice, not
the one that follows the offer (s59 leftover: the no-SNI branch ignored the offer).
"""
from __future__ import annotations

from chunkcmp import RULES, assert_same, write
from pcapbuild import tcp_session
from test_newcomer_s59_advice import CLIENT, CURRENT_SUITES, FIPS_SUITES, HANDSHAKE_FAILURE, SERVER, client_hello

from kscc_traffic import report
from kscc_traffic.classify import OFFER_CURRENT_SAID, OFFER_NARROW_SAID, SUITES_REFUSED
from kscc_traffic.report import readiness

DP = "192.0.2.20"


def nameless_hello(suites, groups, versions=()) -> bytes:
    """A whole ClientHello record without the server_name extension."""
    return client_hello(suites, groups, versions, sni=None)


CURRENT = nameless_hello(CURRENT_SUITES, (0x001D, 0x0017), (0x0304, 0x0303))
NARROW = nameless_hello(FIPS_SUITES, (0x0017,))


def _refused(tmp_path, server, port, hello):
    path = write(tmp_path, tcp_session((CLIENT, 50100), (server, port), t0=1000.0, isn_c=1000, c_data=hello,
                                       s_data=HANDSHAKE_FAILURE))
    flows = assert_same(path, [300])            # (the same in small chunks)
    row = flows[flows.resp_p == port].iloc[0]
    assert (row.verdict, row.reason) == ("blocked", "tls_failed")
    return row, readiness(flows, RULES).set_index("rule").at[row.purpose, "fix"]


def test_a_distribution_points_refusal_of_a_current_nameless_offer_follows_the_offer(tmp_path):
    row, fix = _refused(tmp_path, DP, 13000, CURRENT)
    assert row.purpose == "dp_agent_connection"
    assert row.detail == (
        f"TLS handshake aborted: server: handshake_failure (40): {SUITES_REFUSED}, {OFFER_CURRENT_SAID} (TLS 1.3 and "
        "1.2, 14 cipher suites (ECDHE AES-GCM among them), the x25519 and secp256r1 groups): not a TLS policy on the "
        "agent's device most likely, but what answered in the server's place (an old proxy or firewall, a "
        "TLS-inspecting device) or a server restricted to other ones")
    assert fix == ("this connection reached the server on TCP 13000 (the TCP handshake completed: the port is open, "
                   "nothing to open in the firewall), then " + report.SUITES_CURRENT_FIX_DP)


def test_a_distribution_points_refusal_of_a_narrow_nameless_offer_puts_the_tls_settings_first(tmp_path):
    row, fix = _refused(tmp_path, DP, 13000, NARROW)
    assert f"{OFFER_NARROW_SAID} (TLS 1.2 at most, 4 cipher suites" in row.detail
    assert "carried no server name" not in row.detail
    assert fix.endswith("then " + report.SUITES_FIX_DP)


def test_a_cloud_servers_refusal_of_a_nameless_hello_names_the_missing_sni_first(tmp_path):
    # (the cloud's front ends route by name: the missing SNI stays the first cause; the offer follows)
    row, fix = _refused(tmp_path, SERVER, 23101, CURRENT)
    assert row.detail.startswith(
        "TLS handshake aborted: server: handshake_failure (40): the ClientHello carried no server name (SNI), which a "
        f"server or front end that routes by name refuses so; else {SUITES_REFUSED}, {OFFER_CURRENT_SAID} (TLS 1.3 "
        "and 1.2, 14 cipher suites")
    assert "let the agent's TLS to *.ksc.kaspersky.com through uninspected" in fix
