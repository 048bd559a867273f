"""Session 62 (dp): the newcomer test of session 61's findings on distribution points.

1. Unanswered SYNs to a distribution point on another subnet (another /24, IPv6 /64): the advice
   also names a firewall or router between the subnets.
2. A SYN answered by a reset from an initial TTL (hop limit) of 255 whose address sent nothing
   else: "the reset likely came from a device on the path"; a closed port's own reset (64/128
   less the hops) gets no such hint.
3. An agent retrying an unanswered connection every 5 minutes: one row in the table and HTML
   reports with a summary, a row per flow in JSON Lines.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from scapy.layers.inet import TCP

from chunkcmp import chunked, whole
from pcapbuild import CLIENT_MAC, eth, ip_of, pcap_bytes, tcp_session

from kscc_traffic.attempts import AttemptGroups, grouped, summary_text
from kscc_traffic.html_report import write_html
from kscc_traffic.inspect import REFUSED_LONE, lone_reset_hint
from kscc_traffic.report import TableSummary, readiness
from kscc_traffic.rules import load_rules

RULES = load_rules()
REPO = Path(__file__).resolve().parents[1]
GW = "02:00:00:00:00:fe"
T_2300 = 82800.0          # 1970-01-01 23:00:00 UTC


def _ttl(p, ttl):
    ip = p.payload
    if hasattr(ip, "hlim"):
        ip.hlim = ttl
    else:
        ip.ttl = ttl
    return p


def _syns(client, server, sport, t, port=13000, times=(0, 1, 3)):
    """An unanswered attempt: its SYN sent at ``t`` + each of ``times`` (TTL 128, a Windows agent)."""
    return [(t + g, _ttl(eth(ip_of(client, server) / TCP(sport=sport, dport=port, flags="S", seq=1000), dst=GW), 128))
            for g in times]


def _reset(server, client, sport, t, ttl):
    return (t, _ttl(eth(ip_of(server, client) / TCP(sport=13000, dport=sport, flags="RA", seq=0, ack=1001),
                        src=GW, dst=CLIENT_MAC), ttl))


def _session(client, server, t0, ttl_server, bare=False):
    """A connection to ``server``:13000 whose packets came with ``ttl_server`` (``bare``: a
    handshake and close with no byte, ``ok``; else cleartext bytes)."""
    recs = tcp_session((client, 50020), (server, 13000), t0=t0, c_data=b"" if bare else b"x" * 10,
                       s_data=b"" if bare else b"y" * 10)
    return [(t, _ttl(p, ttl_server if p.payload.src == server else 128)) for t, p in recs]


def _write(tmp_path, recs, name="c.pcap") -> Path:
    p = tmp_path / name
    p.write_bytes(pcap_bytes(sorted(recs, key=lambda x: x[0])))
    return p


def _table(path, width=200) -> str:
    env = {**os.environ, "COLUMNS": str(width)}
    done = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", str(path)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    return " ".join(done.stdout.split())     # (the words, not the terminal's line breaks)


def _fix(flows, rule="dp_agent_connection") -> tuple[str, str]:
    """The checklist's advice for ``rule`` from the whole table and from the batch summary."""
    a = readiness(flows, RULES)
    s = TableSummary.of(flows, rules=RULES).readiness(RULES)
    return (a.loc[a["rule"] == rule, "fix"].iloc[0], s.loc[s["rule"] == rule, "fix"].iloc[0])


# ---------------------------------------------------------------- 1. another subnet

@pytest.mark.parametrize("client,far,near", [("192.0.2.10", "198.51.100.20", "192.0.2.20"),
                                             ("2001:db8:1::10", "2001:db8:2::20", "2001:db8:1::20")])
def test_unanswered_syns_to_a_dp_on_another_subnet_name_a_device_between(tmp_path, client, far, near):
    p = _write(tmp_path, _syns(client, far, 50000, 1000.0))
    flows, _ = whole(p)
    assert flows["reason"].tolist() == ["no_answer"]
    whole_fix, batch_fix = _fix(flows)
    assert whole_fix == batch_fix
    assert whole_fix.startswith("allow inbound TCP 13000 on the distribution point, from the managed devices, or on "
                                "a firewall or router between the subnets (the distribution point is on another /24, "
                                "or IPv6 /64, than the agent's: judged from the two addresses)")
    # one of two on another subnet: said of that one
    p = _write(tmp_path, _syns(client, far, 50000, 1000.0) + _syns(client, near, 50001, 1010.0, ), "two.pcap")
    whole_fix, batch_fix = _fix(whole(p)[0])
    assert whole_fix == batch_fix
    assert "; 1 of these 2 blocked flows went to a distribution point on another subnet" in whole_fix
    assert whole_fix.endswith("for it, also on a firewall or router between the subnets")
    # one that worked (across the same subnets): nothing said of the devices between
    p = _write(tmp_path, _syns(client, far, 50000, 1000.0) + _session(client, far, 1010.0, 62, bare=True),
               "worked.pcap")
    flows, _ = whole(p)
    assert sorted(flows["verdict"]) == ["blocked", "ok"]
    whole_fix, batch_fix = _fix(flows)
    assert whole_fix == batch_fix
    assert whole_fix == ("1 of 2 flows ok, 1 blocked (the others worked: compare clients, addresses and ports): "
                         "allow inbound TCP 13000 on the distribution point, from the managed devices")
    # on the agent's own subnet alone: the distribution point's own firewall, nothing between
    p = _write(tmp_path, _syns(client, near, 50001, 1010.0), "near.pcap")
    whole_fix, batch_fix = _fix(whole(p)[0])
    assert whole_fix == batch_fix == "allow inbound TCP 13000 on the distribution point, from the managed devices"


def test_the_subnet_advice_is_in_the_table_report(tmp_path):
    p = _write(tmp_path, _syns("192.0.2.10", "198.51.100.20", 50000, 1000.0))
    out = _table(p)
    assert ("dp_agent_connection (blocked: no_answer): allow inbound TCP 13000 on the distribution point, from the "
            "managed devices, or on a firewall or router between the subnets") in out


# ---------------------------------------------------------------- 2. a reset from a device's stack

def _lone(tmp_path, client, server, other, ttl, name="lone.pcap", other_ttl=62):
    recs = _syns(client, server, 50010, 1000.0, times=(0,)) + [_reset(server, client, 50010, 1000.01, ttl)]
    if other:
        recs += _session(client, other, 1002.0, other_ttl)
    return _write(tmp_path, recs, name)


def _rej_detail(flows) -> str:
    rej = flows[flows["conn_state"] == "REJ"]
    assert len(rej) == 1
    return rej["detail"].iloc[0]


@pytest.mark.parametrize("client,server,other,field", [("192.0.2.10", "198.51.100.30", "198.51.100.40", "TTL"),
                                                       ("2001:db8:1::10", "2001:db8:2::30", "2001:db8:2::40",
                                                        "hop limit")])
def test_a_lone_reset_from_an_initial_255_is_a_device_on_the_path(tmp_path, client, server, other, field):
    flows, _ = whole(_lone(tmp_path, client, server, other, 254))
    d = _rej_detail(flows)
    assert (f"{REFUSED_LONE}{field} 254: 1 hop from an initial 255, as network devices send, where hosts send 64 "
            "or 128 as the other hosts' packets here came; the server's address sent nothing else to compare): a "
            "firewall refuses the port, not the server") in d
    # a closed port on a Linux host, 2 hops away: its own reset, no such hint
    flows, _ = whole(_lone(tmp_path, client, server, other, 62, "linux.pcap"))
    assert REFUSED_LONE not in _rej_detail(flows)
    # ... nor on a Windows host (128 less 3 hops)
    flows, _ = whole(_lone(tmp_path, client, server, other, 125, "windows.pcap"))
    assert REFUSED_LONE not in _rej_detail(flows)


def test_a_lone_255_reset_needs_other_hosts_sending_64_or_128(tmp_path):
    # only the client's own packets otherwise: nothing tells how hosts on the path send
    flows, _ = whole(_lone(tmp_path, "192.0.2.10", "198.51.100.30", None, 254))
    assert REFUSED_LONE not in _rej_detail(flows)
    # the other server sends with 255 too (a network of such stacks): no hint
    flows, _ = whole(_lone(tmp_path, "192.0.2.10", "198.51.100.30", "198.51.100.40", 254, "all255.pcap", 250))
    assert REFUSED_LONE not in _rej_detail(flows)


def test_a_reset_whose_server_answered_elsewhere_keeps_the_ttl_comparison(tmp_path):
    # the server's own packets on another connection came with 62: the reset's 254 from nearer
    recs = _syns("192.0.2.10", "198.51.100.30", 50010, 1000.0, times=(0,)) + \
        [_reset("198.51.100.30", "192.0.2.10", 50010, 1000.01, 254)] + _session("192.0.2.10", "198.51.100.30", 1002.0, 62)
    d = _rej_detail(whole(_write(tmp_path, recs))[0])
    assert "the reset came from a device 1 hop nearer than the server (TTL 254 vs 62" in d
    assert REFUSED_LONE not in d


def test_a_lone_reset_is_judged_at_the_capture_end_across_chunks(tmp_path):
    # the reset early, the other host's packets many chunks later: the hint of the whole capture
    recs = _syns("192.0.2.10", "198.51.100.30", 50010, 1000.0, times=(0,)) + \
        [_reset("198.51.100.30", "192.0.2.10", 50010, 1000.01, 254)]
    for i in range(40):          # (filler: unanswered SYNs elsewhere, a flow per chunk or two)
        recs += _syns("192.0.2.10", f"203.0.113.{i + 1}", 51000 + i, 1001.0 + i, port=23101, times=(0,))
    recs += _session("192.0.2.10", "198.51.100.40", 1100.0, 62)
    p = _write(tmp_path, recs)
    one, _ = whole(p)
    parts, _ = chunked(p, 600)
    assert REFUSED_LONE in _rej_detail(one)
    assert _rej_detail(parts) == _rej_detail(one)


def test_lone_reset_hint_values():
    table = {(4, 0, 0xC6336428): (1, 62)}
    assert lone_reset_hint(4, 254, table).startswith(REFUSED_LONE + "TTL 254: 1 hop")
    assert lone_reset_hint(4, 128, table) == ""                          # (Windows' own)
    assert lone_reset_hint(4, 250, {}) == ""                              # (no other host)
    assert lone_reset_hint(4, 250, table, (0, 0xC6336428)) == ""         # (the client alone)
    assert lone_reset_hint(6, 250, table) == ""                           # (another family)


# ---------------------------------------------------------------- 3. repeated attempts

def _retries(n=13, every=300.0, jitter=()):
    recs = []
    for i in range(n):
        recs += _syns("192.0.2.10", "198.51.100.20", 50100 + i, T_2300 + every * i + (jitter[i] if jitter else 0))
    return recs


def test_thirteen_retries_are_one_row_with_a_summary(tmp_path):
    p = _write(tmp_path, _retries())
    flows, _ = whole(p)
    assert len(flows) == 13 and set(flows["reason"]) == {"no_answer"}     # (the flow table: a row per flow)
    out = _table(p, 100)      # (the narrow list: the detail's words unbroken by table borders)
    assert "Flagged flows (13; repeated attempts in one row each)" in out
    assert ("13 attempts from 23:00:00 to 1970-01-02 00:00:00 UTC, every ~5 min, none answered; the first: SYN sent 3 "
            "times, no answer") in out
    assert out.count("192.0.2.10:501") == 1                               # (one row)
    assert "Flagged flows (13; repeated attempts in one row each)" in _table(p)   # (and the wide table)
    # JSON Lines keeps every flow
    done = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", str(p), "--format", "jsonl"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    rows = [json.loads(x) for x in done.stdout.splitlines()]
    assert len(rows) == 13 and len({r["orig_p"] for r in rows}) == 13


def test_the_summary_is_the_same_read_in_chunks(tmp_path):
    p = _write(tmp_path, _retries())
    parts, _ = chunked(p, 400)
    s = TableSummary(rules=RULES)
    for i in range(0, len(parts), 3):        # (added batch by batch)
        s.add(parts.iloc[i:i + 3])
    assert len(s.flagged) == 1 and s.flagged_total == 13 and s.flagged_more() == ""
    assert s.flagged_details() == ["13 attempts from 23:00:00 to 1970-01-02 00:00:00 UTC, every ~5 min, none "
                                   "answered; the first: SYN sent 3 times, no answer"]


def test_a_listing_cut_counts_the_flows_each_row_stands_for(tmp_path):
    # 13 retries and 3 single attempts elsewhere, 2 rows listed: the 13 and one more
    recs = _retries() + [r for i in range(3) for r in _syns("192.0.2.10", f"203.0.113.{i + 1}", 52000 + i,
                                                             T_2300 + 5000 + i, port=13000)]
    flows, _ = whole(_write(tmp_path, recs))
    s = TableSummary(max_flagged=2, rules=RULES)
    s.add(flows)
    assert len(s.flagged) == 2 and s.flagged_shown().tolist() == [13, 1]
    assert s.flagged_more().startswith("… 2 more flagged flows")


def test_irregular_retries_and_two_attempts():
    t0 = int(T_2300 * 1e9)
    ts = [t0 + int(x * 1e9) for x in (0, 10, 300, 310)]
    assert summary_text(4, ts[0], ts[-1], ts, "no_answer") == \
        "4 attempts from 23:00:00 to 23:05:10 UTC, from 10 s to 5 min apart, none answered"
    assert summary_text(2, t0, t0 + 21_000_000_000, [], "rejected") == \
        "2 attempts from 23:00:00 to 23:00:21 UTC, 21 s apart, each refused"
    assert summary_text(1, t0, t0, [t0], "no_answer") == ""
    assert summary_text(3, t0, t0 + 200_000_000, [t0, t0 + 100_000_000, t0 + 200_000_000], "no_answer") == \
        "3 attempts at 23:00:00 UTC within 200 ms, none answered"
    # (retries jittered by a few seconds: still every ~5 min)
    ts = [t0 + int((300 * i + (4 if i % 2 else -3)) * 1e9) for i in range(6)]
    assert ", every ~5 min, " in summary_text(6, min(ts), max(ts), ts, "no_answer")


def test_other_failures_are_not_grouped_with_the_retries(tmp_path):
    # a reset among the unanswered attempts (another reason): a row of its own
    recs = _retries(4) + _syns("192.0.2.10", "198.51.100.20", 50200, T_2300 + 5000, times=(0,)) + \
        [_reset("198.51.100.20", "192.0.2.10", 50200, T_2300 + 5000.01, 62)]
    flows, _ = whole(_write(tmp_path, recs))
    kept, texts = grouped(flows[flows["verdict"] == "blocked"])
    assert sorted(kept["reason"].tolist()) == ["no_answer", "rejected"]
    assert sorted(texts) == ["", "4 attempts from 23:00:00 to 23:15:00 UTC, every ~5 min, none answered"]
    g = AttemptGroups()
    g.add(flows)
    assert sorted(x[0] for x in g.groups.values()) == [1, 4]


def test_the_html_report_lists_the_group_once_and_every_flow_below(tmp_path):
    p = _write(tmp_path, _retries())
    flows, _ = whole(p)
    out = write_html(tmp_path / "r.html", flows, RULES).read_text()
    findings = out[out.index('id="flagged"'):]
    findings = findings[:findings.index("</section>")]
    assert findings.count("13 attempts from 23:00:00 to 1970-01-02 00:00:00 UTC, every ~5 min, none answered") == 1
    assert findings.count("<tr class=\"row-blocked\">") == 1
    assert out.count("50112") >= 1          # (the last attempt's port: in the table of all flows)


def test_a_lone_255_reset_with_no_syn_captured_gets_no_hint(tmp_path):
    # a capture begun mid-connection: the responder's reset is the flow's first packet (RSTRH)
    recs = [(1000.0, _ttl(eth(ip_of("198.51.100.30", "192.0.2.10") / TCP(sport=13000, dport=50010, flags="R", seq=5),
                             src=GW, dst=CLIENT_MAC), 248))] + _session("192.0.2.10", "198.51.100.40", 1002.0, 62)
    p = _write(tmp_path, recs)
    for flows in (whole(p)[0], chunked(p, 300)[0]):
        f = flows[flows["resp_h"] == "198.51.100.30"]
        assert f["conn_state"].tolist() == ["RSTRH"]
        assert REFUSED_LONE not in f["detail"].iloc[0]


def test_lookups_of_two_names_are_not_one_group(tmp_path):
    from pcapbuild import udp
    from scapy.layers.dns import DNS, DNSQR
    recs = []
    for i, name in enumerate(("a.example.com", "b.example.com", "a.example.com")):
        recs.append(udp(("192.0.2.10", 40000 + i), ("192.0.2.53", 53),
                        bytes(DNS(id=i + 1, rd=1, qd=DNSQR(qname=name))), t=1000.0 + i))
    recs += _syns("192.0.2.10", "198.51.100.20", 50000, 1030.0)     # (the capture goes on: none cut short)
    flows, _ = whole(_write(tmp_path, recs))
    flows = flows[flows["proto"] == "udp"]
    kept, texts = grouped(flows[flows["verdict"] == "blocked"])
    assert sorted(zip(kept["query"].tolist(), texts)) == [
        ("a.example.com", "2 attempts from 00:16:40 to 00:16:42 UTC, 2 s apart, none answered"), ("b.example.com", "")]


def test_the_lone_reset_hint_is_the_same_whole_in_chunks_and_live(tmp_path, monkeypatch):
    from chunkcmp import assert_same
    from test_live_session import assert_live_same
    recs = _syns("192.0.2.10", "198.51.100.30", 50010, 1.0, times=(0,)) + \
        [_reset("198.51.100.30", "192.0.2.10", 50010, 1.01, 254)] + _session("192.0.2.10", "198.51.100.40", 60.0, 62)
    path = _write(tmp_path, recs)
    flows = assert_same(path, [200, 500])
    assert REFUSED_LONE + "TTL 254" in _rej_detail(flows)
    assert_live_same(path, monkeypatch, step=2)
