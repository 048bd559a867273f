"""Session 61 newcomer pass #1: a connection opened *from* the address a cloud server's name was
resolved to in the capture, towards an agent's TCP 23101, is the cloud server connecting in (which
it never does): ``wrong_direction``, whatever the addresses (documentation-range agents are not
"local"). It was judged the agent's own connection, ``blocked``, advised "allow outbound", and the
lookup's Warning said no connection to that address was captured."""
import pytest
from scapy.layers.inet import TCP

import chunkcmp
from pcapbuild import dns_answer, eth, ip_of, pcap_bytes, syn_attempts, CLIENT_MAC, SERVER_MAC

from kscc_traffic.classify import INBOUND
from kscc_traffic.report import readiness
from kscc_traffic.rules import load_rules

AGENT, CLOUD = "192.0.2.10", "203.0.113.10"


def _refused_inbound(t, sport, src=CLOUD):
    """A SYN from ``src`` to the agent's TCP 23101, refused by the agent's reset."""
    syn = eth(ip_of(src, AGENT) / TCP(sport=sport, dport=23101, flags="S", seq=7), src=SERVER_MAC, dst=CLIENT_MAC)
    rst = eth(ip_of(AGENT, src) / TCP(sport=23101, dport=sport, flags="RA", seq=0, ack=8))
    return [(t, syn), (t + 0.001, rst)]


def _write(tmp_path, recs):
    path = tmp_path / "inbound.pcap"
    path.write_bytes(pcap_bytes(sorted(recs, key=lambda r: r[0])))
    return path


@pytest.mark.parametrize("name", ["eu1.ksc.kaspersky.com", "www.example.com"])
def test_a_connection_from_a_resolved_cloud_address_is_wrong_direction(tmp_path, name):
    recs = [dns_answer(name, CLOUD, 1000.0)]
    for k in range(3):
        recs += _refused_inbound(1001.0 + 10 * k, 40000 + k)
    flows = chunkcmp.assert_same(_write(tmp_path, recs), [200, 400])
    rows = flows[flows.resp_p == 23101]
    assert len(rows) == 3
    if name == "www.example.com":
        # (a name under no mask of the port: nothing tells the originator is the cloud; as before)
        assert set(zip(rows.verdict, rows.reason)) == {("blocked", "rejected")}
        return
    assert set(zip(rows.purpose, rows.verdict, rows.reason)) == {("agent_connection", "unexpected", "wrong_direction")}
    assert rows.iloc[0].detail.startswith(
        f"{INBOUND} ({CLOUD}, the address eu1.ksc.kaspersky.com was resolved to in this capture) to {AGENT}:23101, "
        "on a port the cloud server listens on (agent_connection): the cloud server never connects to agents")
    check = readiness(flows, load_rules()).set_index("rule").loc["agent_connection"]
    assert (check.status, check.reasons) == ("unexpected", "wrong_direction")
    assert "allow outbound" not in check.fix


def test_the_lookup_warning_counts_the_connection_from_the_address(tmp_path):
    recs = [dns_answer("eu1.ksc.kaspersky.com", CLOUD, 1000.0)] + _refused_inbound(1001.0, 40000)
    w, a = chunkcmp.whole(_write(tmp_path, recs))
    assert not [x for x in a.warnings if "no connection to them was captured" in x]
    # (the same lookup with nothing after it still warns)
    w, a = chunkcmp.whole(_write(tmp_path, [dns_answer("eu1.ksc.kaspersky.com", CLOUD, 1000.0)]
                                 + syn_attempts(50000, "198.51.100.9", 443, 1001.0)))
    assert [x for x in a.warnings if "no connection to them was captured" in x]


def test_the_agents_own_connection_and_a_later_lookup_stay_as_they_were(tmp_path):
    # the agent's own SYNs to the resolved address: its connection, blocked (no originator named);
    # an inbound attempt *before* the lookup: nothing tells yet, judged as before
    recs = (_refused_inbound(999.0, 39000) + [dns_answer("eu1.ksc.kaspersky.com", CLOUD, 1000.0)]
            + syn_attempts(50000, CLOUD, 23101, 1001.0))
    flows = chunkcmp.assert_same(_write(tmp_path, recs), [200, 400])
    own = flows[flows.orig_p == 50000].iloc[0]
    assert (own.verdict, own.reason) == ("blocked", "no_answer")
    early = flows[flows.orig_p == 39000].iloc[0]
    assert (early.verdict, early.reason) == ("blocked", "rejected")


def test_the_originators_name_is_kept_for_a_long_connection_across_chunks(tmp_path):
    # accepted by a program on the agent's host, 60 data packets over 6 s, while the agent looks the
    # name up again to another address and back (the store then holds only the later answers):
    # every chunk size says the same
    recs = [dns_answer("eu1.ksc.kaspersky.com", CLOUD, 1000.0)]
    syn = eth(ip_of(CLOUD, AGENT) / TCP(sport=41000, dport=23101, flags="S", seq=1000), src=SERVER_MAC, dst=CLIENT_MAC)
    synack = eth(ip_of(AGENT, CLOUD) / TCP(sport=23101, dport=41000, flags="SA", seq=5000, ack=1001))
    recs += [(1001.0, syn), (1001.01, synack)]
    for k in range(60):
        data = eth(ip_of(CLOUD, AGENT) / TCP(sport=41000, dport=23101, flags="PA", seq=1001 + 50 * k, ack=5001)
                   / (b"x" * 50), src=SERVER_MAC, dst=CLIENT_MAC)
        ack = eth(ip_of(AGENT, CLOUD) / TCP(sport=23101, dport=41000, flags="A", seq=5001, ack=1051 + 50 * k))
        recs += [(1001.1 + 0.1 * k, data), (1001.1 + 0.1 * k + 0.001, ack)]
    recs.append(dns_answer("eu1.ksc.kaspersky.com", "203.0.113.99", 1003.0, port=41001))
    recs.append(dns_answer("other.example.com", CLOUD, 1004.0, port=41002))
    flows = chunkcmp.assert_same(_write(tmp_path, recs), [300, 600, 1500])
    row = flows[flows.resp_p == 23101].iloc[0]
    assert (row.verdict, row.reason) == ("unexpected", "wrong_direction")


def test_a_forged_name_under_the_mask_is_not_quoted(tmp_path):
    name = "a b.ksc.kaspersky.com"
    recs = [dns_answer(name, CLOUD, 1000.0)] + _refused_inbound(1001.0, 40000)
    flows = chunkcmp.assert_same(_write(tmp_path, recs), [300])
    row = flows[flows.resp_p == 23101].iloc[0]
    assert row.reason == "wrong_direction"
    assert "an address a cloud server's name was resolved to in this capture" in row.detail
    assert "a b" not in row.detail
