"""Address kinds of IPv6 (session 33): the multicast advice's snooping for IPv6 groups of any
scope (ff05:: site-local and the others: joined by MLD, not IGMP) is MLD snooping; a flagged
flow to a NAT64 address (64:ff9b::/96, RFC 6052; the local-use 64:ff9b:1::/48, RFC 8215) names
it so, with the IPv4 address it carries, whole and in chunks."""
from __future__ import annotations

import pytest

from chunkcmp import assert_same, write
from test_synretry_s31 import _pkt

from kscc_traffic.addresses import nat64_text
from kscc_traffic.classify import NAT64_NOTE
from kscc_traffic.report import snooping_text


def test_snooping_by_group_family():
    """IPv6 groups of any scope (ff05:: site-local, ff0e:: global, ff15:: transient) are MLD's."""
    assert snooping_text(("239.192.0.15",)) == "IGMP snooping (an IGMP querier on the VLAN)"
    for g in ("ff05::101", "ff0e::1:2", "ff15::15", "ff08::fb:1"):
        assert snooping_text((g,)) == "MLD snooping (an MLD querier on the VLAN)", g
    assert snooping_text(("239.192.0.15", "ff05::101")) == \
        "IGMP/MLD snooping (an IGMP and an MLD querier on the VLAN)"



def test_nat64_text():
    assert nat64_text("64:ff9b::cb00:7105") == \
        "64:ff9b::cb00:7105 is a NAT64 address (64:ff9b::/96, RFC 6052) of the IPv4 address 203.0.113.5"
    assert nat64_text("64:ff9b:1::cb00:7105") == (
        "64:ff9b:1::cb00:7105 is a NAT64 address (the local-use prefix 64:ff9b:1::/48, RFC 8215) of the IPv4 "
        "address 203.0.113.5 if its translator's prefix is a /96")
    for other in ("2001:db8::cb00:7105", "64:ff9c::cb00:7105", "::ffff:203.0.113.5", "203.0.113.5", "eu1.example"):
        assert nat64_text(other) == "", other


@pytest.mark.parametrize("server,v4,kind", [("64:ff9b::cb00:710b", "203.0.113.11", "64:ff9b::/96, RFC 6052"),
                                            ("64:ff9b:1::cb00:710b", "203.0.113.11",
                                             "the local-use prefix 64:ff9b:1::/48, RFC 8215")])
def test_a_blocked_flow_to_a_nat64_address_names_it(tmp_path, server, v4, kind):
    """An unanswered SYN to the agent port of a NAT64 address: blocked, the detail naming the
    IPv4 server; an answered one from another client port: ok, no note."""
    hosts = (("2001:db8::10", 50001), (server, 23101))
    ok = (("2001:db8::10", 50002), (server, 23101))
    recs = [_pkt(hosts, 1000.0 + k, True, "S", 1000) for k in (0, 1, 3)]
    recs += [_pkt(ok, 1010.0, True, "S", 5000), _pkt(ok, 1010.02, False, "SA", 9000, 5001),
             _pkt(ok, 1010.03, True, "A", 5001, 9001), _pkt(ok, 1010.04, True, "FA", 5001, 9001),
             _pkt(ok, 1010.05, False, "FA", 9001, 5002), _pkt(ok, 1010.06, True, "A", 5002, 9002)]
    w = assert_same(write(tmp_path, recs), [150, 400])
    a, b = w.iloc[0], w.iloc[1]
    assert (a.verdict, a.reason) == ("blocked", "no_answer")
    assert a.detail == (f"SYN sent 3 times, no answer; {server} is a NAT64 address ({kind}) of the IPv4 address {v4}"
                        + (" if its translator's prefix is a /96" if ":1::" in server else "") + f": {NAT64_NOTE}"), a.detail
    assert NAT64_NOTE not in b.detail
