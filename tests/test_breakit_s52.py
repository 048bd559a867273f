"""Findings of session 52 (each test names its finding)."""
from __future__ import annotations

import pytest

pytest.importorskip("scapy")

from test_breakit_s51 import _idle_then  # noqa: E402

from kscc_traffic import load_rules  # noqa: E402


def test_the_restart_note_does_not_count_an_idle_connections_reset_as_a_refusal(tmp_path):
    """s51 leftover: an agent connection reset with the server's TTL after a 400 s silence (it
    worked before it), a new connection accepted, then a SYN refused with the server's TTL: the
    note said "the port was refused 2 times from 00:23:20 … while it accepted 2 other
    connections" (the idle connection's reset counted as a refusal of the port: "intermittent").
    One refusal came after every accepted connection: the service was down or restarting."""
    from kscc_traffic.report import readiness
    flows = _idle_then(tmp_path, 52, True)
    fix = readiness(flows, load_rules()).set_index("rule").loc["agent_connection", "fix"]
    assert ("the port was accepted at 00:23:21.000 UTC and refused at 00:25:00.000 UTC (203.0.113.10 TCP 23101): "
            "the service was down or restarting (the port is right)") in fix
    assert "refused 2 times" not in fix
