"""Session 27 review of the ICMP error handling (break-it 25 leftovers): protocol unreachable
(3/2) is most likely a reject rule's, said with the port advice; host precedence violation
(3/14) and precedence cutoff (3/15) refuse the packets' IP precedence, not the port (their
own advice, no port to open)."""
from __future__ import annotations

import pytest
from scapy.layers.inet import ICMP

from chunkcmp import whole
from test_icmp_errors_breakit25 import ALLOW, _agent_fix, _syn_error
from kscc_traffic.unreachable import NOT_REFUSALS, REJECTS


@pytest.mark.parametrize("code", [14, 15])
def test_precedence_errors_advise_the_marking_not_the_port(tmp_path, code):
    flows, _ = whole(_syn_error(tmp_path, False, ICMP(type=3, code=code)))
    assert flows["verdict"].tolist() == ["blocked"]
    status, fix = _agent_fix(flows)
    assert status == "blocked" and ALLOW not in fix, fix
    assert fix == (f"this flow was answered by ICMP {NOT_REFUSALS['precedence'][1]}, not a firewall's refusal: "
                   f"{NOT_REFUSALS['precedence'][3]}; no port is to be opened")
    assert flows["detail"].iloc[0].endswith(f"from 192.0.2.1: {NOT_REFUSALS['precedence'][2]}")


def test_protocol_unreachable_names_a_reject_rule_and_keeps_the_port(tmp_path):
    flows, _ = whole(_syn_error(tmp_path, False, ICMP(type=3, code=2)))
    assert flows["detail"].iloc[0] == ("answered by ICMP protocol unreachable (3/2) from 192.0.2.1: "
                                       f"{REJECTS['protocol'][2]}")
    status, fix = _agent_fix(flows)
    assert status == "blocked"
    assert fix.startswith(f"this flow was answered by ICMP protocol unreachable (3/2): {REJECTS['protocol'][3]}: "
                          + ALLOW), fix
