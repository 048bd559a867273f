"""Session 34 breakit: what a skeptical newcomer found in session 33's additions, each reproduced
on a capture built with scapy in tmp_path, whole and in chunks."""
from __future__ import annotations

import pytest

from chunkcmp import assert_same, chunked, write
from kscc_traffic import readiness
from kscc_traffic.report import family_fix
from kscc_traffic.rules import load_rules


def test_family_fix_names_the_groups_protocol():
    """The rule's "(IGMP snooping)" becomes MLD snooping for IPv6 groups only, IGMP/MLD for both,
    unchanged for IPv4 or no groups."""
    fix = "let the multicast cross the switches (IGMP snooping)"
    assert family_fix(fix, ("ff15::15",)) == "let the multicast cross the switches (MLD snooping)"
    assert family_fix(fix, ("ff15::15", "239.192.0.15")) == \
        "let the multicast cross the switches (IGMP/MLD snooping)"
    assert family_fix(fix, ("239.192.0.15",)) == fix
    assert family_fix(fix, ()) == fix


@pytest.mark.parametrize("kind", ["igmpv3", "mldv2"])
def test_joined_row_fix_names_mld_for_ipv6_groups(tmp_path, kind):
    """An agent that joined ff15::15 by MLD and received no UDP 15001 datagram: the whole advice,
    the rule's own fix text at its end included, names MLD snooping, not IGMP snooping (the
    rule's text said "(IGMP snooping)" after "check ... MLD snooping"); IPv4 keeps IGMP. Whole
    and chunked reading agree."""
    from test_newcomer27_advice import _ok
    from test_newcomer28_findings import _joins
    rules = load_rules()
    path = write(tmp_path, sorted(_ok(1.0, 40000) + _joins(kind)), name=f"{kind}.pcap")
    whole = assert_same(path, [2000, 5000])
    parts, _ = chunked(path, 2000)
    for flows in (whole, parts):
        row = readiness(flows, rules).set_index("rule").loc["dp_multicast"]
        if kind == "mldv2":
            assert row["fix"].endswith("let the multicast cross the switches (MLD snooping)"), row["fix"]
            assert "IGMP snooping" not in row["fix"]
        else:
            assert row["fix"].endswith("let the multicast cross the switches (IGMP snooping)"), row["fix"]
            assert "MLD snooping" not in row["fix"]
