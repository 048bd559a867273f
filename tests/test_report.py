"""Output of untrusted names: terminal, CSV and JSON, on a crafted capture with hostile names."""
from __future__ import annotations

import csv
import html
import io
import json

import pandas as pd
import pytest

from conftest import ROOT
from kscc_traffic import analyze, load_rules, readiness
from kscc_traffic.report import (clean_utf8, escape_csv, escape_terminal, render_table, undocumented_fix, write_csv,
                                 write_jsonl)

HOSTILE = ROOT / "samples" / "captures" / "hostile_names.pcap"


@pytest.fixture(scope="module")
def flows():
    return analyze(HOSTILE)


def test_the_capture_really_carries_hostile_names(flows):
    names = " ".join(flows.server_name.tolist() + flows["query"].tolist())
    assert "<script>alert(1)</script>" in names
    assert "=HYPERLINK" in names
    assert "\\x1b" in names  # the parser already keeps ESC as text, never as a raw byte


def test_table_output_has_no_control_characters(flows):
    text = render_table(flows, load_rules(), width=250)
    assert "\x1b" not in text and "\x07" not in text and "\x08" not in text
    assert "<script>alert(1)</script>" in text  # shown, as text


def test_escape_terminal_neutralises_raw_sequences():
    assert escape_terminal("a\x1b[31mred\x1b]0;t\x07") == "a\\x1b[31mred\\x1b]0;t\\x07"
    assert escape_terminal("ok\u202eevil") == "ok\\u202eevil"  # right-to-left override


def test_csv_cells_cannot_become_formulas(flows):
    buf = io.StringIO()
    write_csv(flows, buf)
    rows = list(csv.DictReader(io.StringIO(buf.getvalue())))
    names = [r["server_name"] for r in rows if "HYPERLINK" in r["server_name"]]
    assert names and all(n.startswith("'=") for n in names)
    for r in rows:
        for v in r.values():
            assert not v.startswith(("=", "+", "@")), v
    assert escape_csv("-2+3") == "'-2+3" and escape_csv(5) == 5


@pytest.mark.parametrize("name", [" =cmd|' /C calc'!A0", "  @SUM(1+1)", "\uff1dHYPERLINK(\"x\")",
                                  "\u3000\uff0b1", "\t=1"])
def test_csv_formulas_behind_spaces_or_in_full_width_are_neutralised(flows, name):
    """Leading spaces (some spreadsheets trim them) and the full-width = + - @ (some Excel
    locales take them as formulas) do not hide a formula; the column writer and the reference
    cell-by-cell writer agree."""
    assert escape_csv(name) == "'" + name
    t = flows.head(3).copy()
    t["server_name"] = [name, "eu1.ksc.kaspersky.com", name]
    buf = io.StringIO()
    write_csv(t, buf)
    got = [r["server_name"] for r in csv.DictReader(io.StringIO(buf.getvalue()))]
    assert got == ["'" + name, "eu1.ksc.kaspersky.com", "'" + name]


def test_jsonl_is_valid_utf8_even_for_undecodable_bytes(flows):
    buf = io.StringIO()
    write_jsonl(flows.assign(server_name=flows.server_name + "\udcff"), buf)
    raw = buf.getvalue().encode("utf-8")  # would raise on a lone surrogate
    rows = [json.loads(line) for line in raw.decode("utf-8").splitlines()]
    assert all(r["server_name"].endswith("\\xff") for r in rows)
    assert clean_utf8("a\udcfeb") == "a\\xfeb"


def test_readiness_lists_every_rule_with_a_status():
    flows = analyze(ROOT / "samples" / "captures" / "blocked_agent.pcap")
    chk = readiness(flows, load_rules()).set_index("rule")
    assert len(chk) == 15
    assert chk.loc["activation", "status"] == "blocked"
    assert chk.loc["activation", "reasons"] == "no_answer"
    assert chk.loc["klsctunnel", "status"] == "blocked"
    assert chk.loc["mobile_connection", "status"] == "not seen"
    assert chk.loc["dp_ksn_proxy_udp", "reasons"] == "icmp_unreachable"


def test_flows_to_other_hosts_on_a_shared_port_do_not_undo_a_verified_purpose():
    from kscc_traffic.report import TableSummary
    flows = analyze(ROOT / "samples" / "captures" / "baseline_agent.pcap")
    rules = load_rules()
    assert readiness(flows, rules).set_index("rule").loc["cert_check", "status"] == "verified"
    # another program's HTTP to example.org on port 80, and HTTPS to www.google.com on 443
    other = flows[flows.purpose == "cert_check"].head(1).assign(
        server_name="example.org", verdict="unexpected", reason="host_mismatch")
    google = other.assign(purpose="discovery", server_name="www.google.com")
    mixed = flows[flows.purpose != "discovery"]
    table = pd.concat([mixed, other, google], ignore_index=True)
    for chk in (readiness(table, rules), TableSummary.of(table).readiness(rules)):
        chk = chk.set_index("rule")
        assert chk.loc["cert_check", "status"] == "verified"          # it worked as well
        assert chk.loc["cert_check", "unexpected"] == 1
        assert chk.loc["cert_check", "reasons"] == "host_mismatch"
        assert chk.loc["discovery", "status"] == "unexpected"         # nothing else seen
        assert chk.loc["discovery", "fix"].startswith("this flow on TCP 443 went to a name outside "
                                                      "*.ksc.kaspersky.com")
    # a host_mismatch next to a cleartext answer: the advice of not_tls (answered: not the
    # firewall; newcomer 17 #5), the host_mismatch flow counted apart, and how many were ok
    nottls = other.assign(reason="not_tls", server_name="crl3.digicert.com")
    chk = readiness(pd.concat([mixed, other, nottls], ignore_index=True), rules).set_index("rule")
    assert chk.loc["cert_check", "status"] == "unexpected"
    ok = int(chk.loc["cert_check", "ok"])
    assert chk.loc["cert_check", "fix"] == (
        f"{ok} of {ok + 2} flows ok, 2 unexpected: this connection on TCP 80 was answered (the port is open): "
        "not_tls: cleartext where the documentation says TLS: a proxy, another service or a filter answered "
        "instead of the documented server, or the client itself sent cleartext (not an agent's TLS: another "
        "program, or something rewriting its connection); each flow's detail says which side spoke cleartext "
        "and what it sent (a filter refusing by policy must let the agent's TLS through); 1 more went to names outside *.digicert.com or had the "
        "documented port on the side that opened the connection: not this purpose's traffic")


def test_wrong_direction_flows_do_not_undo_a_verified_purpose(tmp_path):
    """A connection FROM a port of the agent_connection range (a source port the OS or a NAT
    picked) to an unrelated service: ``unexpected``/``wrong_direction`` on its own row, but the
    purpose verified by a good connection stays verified and no firewall change is advised; with
    only such flows the fix says what they are (break-it 6 F6)."""
    from pcapbuild import pcap_bytes, tcp_session
    from kscc_traffic.analyze import analyze_file
    from conftest import ROOT
    rules = load_rules()
    cap = tmp_path / "pat.pcap"
    cap.write_bytes(pcap_bytes(tcp_session(("192.0.2.10", 23150), ("198.51.100.7", 8443), c_data=b"\x16\x03\x01x")))
    odd = analyze_file(cap, rules).flows
    assert odd[["purpose", "verdict", "reason"]].values.tolist() == [["agent_connection", "unexpected", "wrong_direction"]]
    good = analyze_file(ROOT / "samples" / "captures" / "baseline_agent.pcap", rules).flows
    row = readiness(pd.concat([good, odd], ignore_index=True), rules).set_index("rule").loc["agent_connection"]
    assert row["status"] == "verified" and row["unexpected"] == 1 and "wrong_direction" in row["reasons"]
    alone = readiness(odd, rules).set_index("rule").loc["agent_connection"]
    assert alone["status"] == "unexpected"
    assert alone["fix"].startswith("this flow on TCP 23100-23199 had the documented port on the side that "
                                   "opened the connection")
    assert "allow outbound" not in alone["fix"]


def test_times_shown_are_the_exact_ts_ns_in_utc():
    # a flow starting at .050 s showed .049 in the table: the float ts (…000.04999995) cut to ms
    from kscc_traffic.report import time_texts
    rules = load_rules()
    flows = analyze(ROOT / "samples" / "captures" / "blocked_agent.pcap", rules)
    first = flows[flows.verdict == "blocked"].sort_values("ts_ns").iloc[0]
    assert first.ts_ns == 1772442000050000000
    assert pd.Timestamp(first.ts, unit="s").strftime("%H:%M:%S.%f")[:-3] == "09:00:00.049"  # the old way
    text = render_table(flows, rules, width=220)
    assert "time (UTC)" in text and "09:00:00.050" in text and "09:00:00.049" not in text
    assert time_texts([1772442000050000000, 1772442000999999999, -(2 ** 63)], "%Y-%m-%d %H:%M:%S.%f") == [
        "2026-03-02 09:00:00.050", "2026-03-02 09:00:00.999", "1677-09-21 00:12:43.145"]


def test_readme_says_what_jsonl_writes_for_ts_and_duration():
    # README said "with 6 decimals (… as Zeek writes them)"; the writer drops trailing zeros
    buf = io.StringIO()
    write_jsonl(pd.DataFrame({"ts": [1772442000.05], "duration": [0.0]}), buf)
    assert buf.getvalue() == '{"ts":1772442000.05,"duration":0.0}\n'
    from conftest import documentation
    readme = " ".join(documentation().split())
    assert "at most 6 decimals and no trailing zeros (`1772442000.05`, `0.0`;" in readme


def _handshake_to(tmp_path, port: int, with_dns: bool, name: str):
    """A TCP handshake (and FINs) from an agent to 203.0.113.80:``port``, preceded when
    ``with_dns`` by the agent's DNS lookup of ``name`` answered with that address."""
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import TCP, UDP
    from chunkcmp import write
    from pcapbuild import eth, ip_of
    c, s, dns = "192.0.2.10", "203.0.113.80", "192.0.2.53"
    recs = []
    if with_dns:
        recs += [(0.9, bytes(eth(ip_of(c, dns) / UDP(sport=40000, dport=53) / DNS(id=7, qd=DNSQR(qname=name))))),
                 (0.95, bytes(eth(ip_of(dns, c) / UDP(sport=53, dport=40000)
                                  / DNS(id=7, qr=1, qd=DNSQR(qname=name), an=DNSRR(rrname=name, rdata=s)))))]
    up = lambda **kw: bytes(eth(ip_of(c, s) / TCP(sport=50000, dport=port, **kw)))  # noqa: E731
    dn = lambda **kw: bytes(eth(ip_of(s, c) / TCP(sport=port, dport=50000, **kw)))  # noqa: E731
    recs += [(1.0, up(flags="S", seq=100)), (1.01, dn(flags="SA", seq=900, ack=101)),
             (1.02, up(flags="A", seq=101, ack=901)), (1.03, up(flags="FA", seq=101, ack=901)),
             (1.04, dn(flags="FA", seq=901, ack=102)), (1.05, up(flags="A", seq=102, ack=902))]
    return write(tmp_path, recs, name=f"p{port}{int(with_dns)}.pcap")


@pytest.mark.parametrize("port, rule, with_dns, name, want", [
    # a bare handshake to 80 or 443 with no name: any browser's; alone in a capture, no KSC agent
    # traffic: no purpose judged on it (newcomer 28 F4; beside an agent's flow: "port open",
    # test_audit25_advice, test_newcomer23_advice)
    (80, "cert_check", False, "", "not seen"),
    (443, "discovery", False, "", "not seen"),
    # the same after a lookup of a name under the mask: still any browser's (every browser asks
    # ocsp.digicert.com), not seen alone (newcomer 29 F1; beside an agent's flow verified,
    # test_newcomer23_advice)
    (80, "cert_check", True, "ocsp.digicert.com", "not seen"),
    # a TLS purpose whose only flow is a bare handshake (no TLS byte): the port is open, the TLS
    # not shown, named or not, on a port only KSC uses too (newcomer 23 F12; it verified before)
    (443, "discovery", True, "eu1.ksc.kaspersky.com", "port open"),
    (23101, "agent_connection", False, "", "port open"),
])
def test_unnamed_flows_on_shared_ports_are_port_open(tmp_path, port, rule, with_dns, name, want):
    """Newcomer 17 #2: an nmap SYN scan to 80, a browser's mid-stream HTTPS made cert_check or
    discovery "verified"; on ports below 1024 the ok flows must name a server (SNI, DNS, cert)."""
    from kscc_traffic.report import TableSummary
    path = _handshake_to(tmp_path, port, with_dns, name)
    flows = analyze(str(path))
    rules = load_rules()
    row = readiness(flows, rules).set_index("rule").loc[rule]
    assert (row["status"], row["ok"]) == (want, 1)
    assert TableSummary.of(flows).readiness(rules).set_index("rule").loc[rule, "status"] == want
    if want == "port open" and not with_dns and port < 1024:
        assert row["fix"].startswith(f"1 flow on TCP {port} answered, but none named a server")
    elif want == "port open":
        assert row["fix"].startswith(f"1 flow on TCP {rules.by_id(rule).port_text} answered, but none carried a "
                                     "byte (a bare TCP "
                                     "handshake: a port probe such as Test-NetConnection")
    if want == "port open":
        out = render_table(flows, rules, width=250)
        assert f"{rule} (port open): 1 flow on TCP {rules.by_id(rule).port_text} answered" in " ".join(out.split())


def test_undocumented_ports_get_a_what_to_change_line():
    """A Kaspersky name on a port no rule documents: the table and the HTML report say what to
    do about it (nothing to open; compare the agent's settings), with the count."""
    from kscc_traffic.html_report import render_html
    flows = analyze(ROOT / "samples" / "captures" / "unexpected_port_direction_agent.pcap")
    n = int(((flows["purpose"] == "") & (flows["reason"] == "undocumented_port")).sum())
    assert n == 1
    text = render_table(flows, load_rules(), width=400)
    line = f"  (none) (unexpected: undocumented_port): {undocumented_fix(1)}"
    assert line in text.splitlines()
    assert undocumented_fix(1).startswith("1 flow to Kaspersky names on ports no rule documents")
    assert "asks to open them" in undocumented_fix(2) and "asks to open it" in undocumented_fix(1)
    assert html.escape(undocumented_fix(1)) in render_html(flows, load_rules(), charts=False)
