"""Newcomer s63 #4: the same client's connections to the same server address and port worked and
failed in turn (one every 2 min; here 75 s apart, past the rate-limit window). The advice said "the others worked: compare clients, addresses
and ports" and "allow outbound TCP 23100-23199", though all three were the same and the port
worked: it is an intermittent block (report.RateWatch.intermittent, report.intermittent_fix)."""
from __future__ import annotations

from pcapbuild import syn_attempts
from test_breakit_s58_real import _checklist, _dns, _v4_session

SERVER = "198.51.100.10"


def _alternating(n: int = 3, gap: float = 150.0, last_ok: bool = True, other_fail: bool = False):
    """``n`` rounds ``gap`` s apart, each a worked connection to eu1 (SERVER:23101) then, ``gap``/2
    later, an attempt to it (its SYN sent 3 times, unanswered); ``last_ok``: a worked connection
    after the last attempt; ``other_fail``: one unanswered attempt to 203.0.113.11 too."""
    t0 = 1000.0
    recs = _dns("eu1.ksc.kaspersky.com", [SERVER], t0 - 1, 40001, 1)
    for k in range(n):
        recs += _v4_session(SERVER, 23101, t0 + k * gap, sport=46000 + k)
        recs += syn_attempts(47000 + k, SERVER, 23101, t0 + k * gap + gap / 2)
    if last_ok:
        recs += _v4_session(SERVER, 23101, t0 + n * gap, sport=46100)
    if other_fail:
        recs += syn_attempts(47100, "203.0.113.11", 23101, t0 + 5.0)
    return recs + _dns("eu1.ksc.kaspersky.com", [SERVER], t0 + (n + 1) * gap, 40002, 2)


def test_alternating_worked_and_failed_attempts_are_an_intermittent_block(tmp_path):
    flows, status, fix = _checklist(tmp_path, _alternating(), "agent_connection")
    tcp = flows[flows.proto == "tcp"].sort_values("ts_ns")
    assert tcp.verdict.tolist() == ["ok", "blocked"] * 3 + ["ok"]
    assert status == "blocked"
    assert fix == ("4 of 7 flows ok, 3 blocked: these 3 connection attempts were unanswered while the same client's "
                   "connections to the same server address and port worked at other times of the capture "
                   "(intermittent): the port is open and the path works, but not always: a member of a firewall "
                   "cluster or a load-balanced path without the rule, an address of a NAT pool without it, or a "
                   "device (or the server) dropping new connections at times; compare the firewall's logs and the "
                   "path at the failed attempts' times"), fix
    assert "compare clients, addresses and ports" not in fix and "allow outbound" not in fix


def test_the_last_attempt_without_a_worked_one_after_it_is_still_intermittent(tmp_path):
    """Worked and failed in turn: every attempt of that client to that server and port counts,
    the last one too."""
    _, _, fix = _checklist(tmp_path, _alternating(last_ok=False), "agent_connection")
    assert fix.startswith("3 of 6 flows ok, 3 blocked: these 3 connection attempts were unanswered while"), fix


def test_only_failures_after_the_worked_ones_keep_the_port_advice(tmp_path):
    """One round (worked, then failed, nothing after): the port may have been closed since."""
    _, _, fix = _checklist(tmp_path, _alternating(n=1, last_ok=False), "agent_connection")
    assert "intermittent" not in fix and "allow outbound TCP 23100-23199" in fix, fix


def test_failures_before_the_worked_ones_keep_the_port_advice(tmp_path):
    """Failed, failed, then worked, worked (the port opened meanwhile?): not said to alternate."""
    t0 = 1000.0
    recs = _dns("eu1.ksc.kaspersky.com", [SERVER], t0 - 1, 40001, 1)
    recs += syn_attempts(47000, SERVER, 23101, t0) + syn_attempts(47001, SERVER, 23101, t0 + 100)
    recs += _v4_session(SERVER, 23101, t0 + 200, sport=46000) + _v4_session(SERVER, 23101, t0 + 300, sport=46001)
    _, _, fix = _checklist(tmp_path, recs + _dns("eu1.ksc.kaspersky.com", [SERVER], t0 + 400, 40002, 2),
                           "agent_connection")
    assert "intermittent" not in fix and "allow outbound TCP 23100-23199" in fix, fix


def test_intermittent_attempts_beside_others_are_said_apart(tmp_path):
    _, _, fix = _checklist(tmp_path, _alternating(other_fail=True), "agent_connection")
    assert fix.startswith("4 of 8 flows ok, 4 blocked (the others worked: compare clients, addresses and ports): "
                          "allow outbound TCP 23100-23199"), fix
    assert fix.endswith("; 3 of them were unanswered while the same client's connections to the same server "
                        "address and port worked at other times of the capture (intermittent): the port is open "
                        "and the path works, but not always: a member of a firewall cluster or a load-balanced path "
                        "without the rule, an address of a NAT pool without it, or a device (or the server) "
                        "dropping new connections at times; compare the firewall's logs and the path at the failed "
                        "attempts' times"), fix
