"""Port scans and address scans are not KSC traffic (session 33; newcomer 32 F3: a capture taken
while a security scanner ran said "blocked" for every documented port it probed).

Captures built with scapy: a SYN scan of 200 ports answered by resets and SYN-ACKs (the half-open
probes reset by the scanner), a sweep of 64 hosts on 23101, masscan-like SYNs of one ISN, a
connect() scan; and what must stay as it was: an agent retrying 23101, an agent trying the
documented ports of its server, agents connecting to a distribution point, a client connecting
to many ports of a server that answers them. Whole file and in chunks alike (the chunked reading
holds the probes until their scan is known: :class:`kscc_traffic.scans.ScanWatch`), the tshark
engine, the report's one line per scan."""
from __future__ import annotations

import random
import shutil
import subprocess
import sys

import pytest
from scapy.layers.inet import TCP

from chunkcmp import RULES, assert_same, write
from conftest import documentation
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth, ip_of

from kscc_traffic.classify import SCAN_DOCUMENTED, SCAN_NOT_KSC
from kscc_traffic.report import TableSummary, scan_lines
from kscc_traffic.scans import ADDRESS_SCAN_HOSTS, PORT_SCAN_PORTS, SCAN_WINDOW_S

SCANNER, VICTIM = "192.0.2.9", "198.51.100.5"
KSC_PORTS = (13000, 23101, 443, 80, 1443, 13111, 13295, 17111, 27201, 29201, 23102, 23700)


def _up(t, c, s, sp, dp, flags, seq, ack=0, data=b""):
    return t, bytes(eth(ip_of(c, s) / TCP(sport=sp, dport=dp, flags=flags, seq=seq, ack=ack) / data))


def _dn(t, c, s, sp, dp, flags, seq, ack=0, data=b""):
    return t, bytes(eth(ip_of(s, c) / TCP(sport=dp, dport=sp, flags=flags, seq=seq, ack=ack) / data,
                        src=SERVER_MAC, dst=CLIENT_MAC))


def _probe(t, c, s, sp, dp, answer, isn=777):
    """One probe: 'closed' (RST-ACK), 'open' (SYN-ACK, the scanner's RST), 'filtered' (nothing),
    'connect' (handshake, the scanner's RST at once)."""
    recs = [_up(t, c, s, sp, dp, "S", isn)]
    if answer == "closed":
        recs.append(_dn(t + .001, c, s, sp, dp, "RA", 0, isn + 1))
    elif answer == "open":
        recs += [_dn(t + .001, c, s, sp, dp, "SA", 5000, isn + 1), _up(t + .002, c, s, sp, dp, "R", isn + 1)]
    elif answer == "connect":
        recs += [_dn(t + .001, c, s, sp, dp, "SA", 5000, isn + 1), _up(t + .002, c, s, sp, dp, "A", isn + 1, 5001),
                 _up(t + .003, c, s, sp, dp, "RA", isn + 1, 5001)]
    return recs


def _port_scan(n=200, gap=0.016, answers=("closed", "closed", "filtered", "open"), t0=1000.0, connect=False):
    ports = [p for p in range(1, 1000) if p not in KSC_PORTS][:n - len(KSC_PORTS)] + list(KSC_PORTS)
    random.Random(7).shuffle(ports)
    recs = []
    for k, p in enumerate(ports):
        a = "open" if p in (80, 443) else answers[k % len(answers)]
        recs += _probe(t0 + k * gap, SCANNER, VICTIM, 40000 + (k if connect else 0), p, "connect" if connect else a)
    return sorted(recs, key=lambda r: r[0]), ports


def _tls_session(t, c, s, sp, dp):
    """A short connection that carried data both ways (an agent's that worked)."""
    return [_up(t, c, s, sp, dp, "S", 100), _dn(t + .01, c, s, sp, dp, "SA", 900, 101),
            _up(t + .02, c, s, sp, dp, "A", 101, 901), _up(t + .03, c, s, sp, dp, "PA", 101, 901, b"\x16\x03\x01hello"),
            _dn(t + .04, c, s, sp, dp, "PA", 901, 111, b"\x16\x03\x03answer"),
            _up(t + .05, c, s, sp, dp, "FA", 111, 909), _dn(t + .06, c, s, sp, dp, "FA", 909, 112),
            _up(t + .07, c, s, sp, dp, "A", 112, 910)]


def test_a_syn_scan_of_200_ports_is_one_port_scan_not_ksc_traffic(tmp_path):
    recs, ports = _port_scan()
    path = write(tmp_path, recs)
    w = assert_same(path, [1500, 4000, 20000])
    assert len(w) == 200 == len(set(ports))
    assert set(w.verdict) == {"unclassified"} and set(w.reason) == {"port_scan"} and set(w.purpose) == {""}
    states = w.groupby("conn_state").size().to_dict()
    assert states == {"REJ": 100, "S0": 49, "RSTO": 51}, states
    a = w[w.resp_p == 23101].iloc[0]
    assert a.conn_state in ("REJ", "S0", "RSTO")
    assert a.detail.startswith(f"a port scan probe from {SCANNER}: one of {PORT_SCAN_PORTS} or more ports of {VICTIM} "
                               f"probed within {SCAN_WINDOW_S:g} s ("), a.detail
    assert a.detail.endswith(f"; TCP 23101 {SCAN_DOCUMENTED}agent_connection, {SCAN_NOT_KSC}"), a.detail
    o = w[w.resp_p == 443].iloc[0]
    assert (o.conn_state, o.history) == ("RSTO", "ShR")
    assert "(open: the prober reset the SYN-ACK, a half-open SYN probe)" in o.detail
    c = w[(w.conn_state == "REJ")].iloc[0]
    assert "(closed: the SYN was answered by a reset)" in c.detail
    s = TableSummary.of(w, rules=RULES)
    assert scan_lines(s) == [f"a port scan from {SCANNER}: 200 ports of {VICTIM} in 3.2 s (12 documented KSC ports "
                             f"among them), {SCAN_NOT_KSC} (200 probes, reason port_scan)"]
    assert s.no_ksc_headline(RULES)      # (the scan alone: no KSC agent traffic)


def test_a_sweep_of_64_hosts_on_23101_is_an_address_scan(tmp_path):
    recs = []
    for k in range(64):
        recs += _probe(1000.0 + k * 0.01, SCANNER, f"198.51.100.{k + 1}", 41000, 23101, ("closed", "filtered")[k % 2])
    path = write(tmp_path, sorted(recs, key=lambda r: r[0]))
    w = assert_same(path, [800, 3000])
    assert len(w) == 64
    assert set(w.reason) == {"address_scan"} and set(w.verdict) == {"unclassified"}
    d = w.iloc[0].detail
    assert d.startswith(f"an address scan probe from {SCANNER}: one of {ADDRESS_SCAN_HOSTS} or more hosts on "
                        "TCP 23101 probed within 300 s (closed: the SYN was answered by a reset); TCP 23101 "
                        f"{SCAN_DOCUMENTED}agent_connection"), d
    assert scan_lines(TableSummary.of(w, rules=RULES)) == [
        f"an address scan from {SCANNER}: 64 hosts on TCP 23101 in 0.6 s (a documented KSC port), {SCAN_NOT_KSC} "
        "(64 probes, reason address_scan)"]


def test_masscan_like_syns_of_one_isn_and_source_port(tmp_path):
    """masscan: one SYN per port, all from one source port with one ISN; open ports answered by a
    SYN-ACK the scanner's stack resets."""
    recs = []
    for k, p in enumerate(range(20000, 20040)):
        recs += _probe(1000.0 + k * 0.0001, SCANNER, VICTIM, 61000, p, "open" if k % 10 == 0 else "filtered",
                       isn=0x5ca11ed)
    path = write(tmp_path, sorted(recs, key=lambda r: r[0]))
    w = assert_same(path, [600, 2000])
    assert len(w) == 40 and set(w.reason) == {"port_scan"}
    assert w.conn_state.value_counts().to_dict() == {"S0": 36, "RSTO": 4}


def test_a_connect_scan_closing_at_once(tmp_path):
    recs, _ = _port_scan(n=30, connect=True)
    w = assert_same(write(tmp_path, recs), [2000])
    assert len(w) == 30 and set(w.reason) == {"port_scan"}
    assert set(w.history) == {"ShAR"}
    assert "(open: connected and closed at once, no data, a connect() probe)" in w.iloc[0].detail


def test_a_slow_scan_across_batches_matches_whole_file(tmp_path):
    """Probes 2 s apart (30 ports in a minute): each probe's row leaves its batch long before the
    window is over; the chunked reading holds them until the count is reached."""
    recs, _ = _port_scan(n=30, gap=2.0)
    w = assert_same(write(tmp_path, recs), [300, 1000, 3000])
    assert len(w) == 30
    # the first refused probes: fewer than 15 attempts up to 5 s after them, judged as any flow;
    # the unanswered ones look 300 s ahead (they stay open that long): all in the scan
    scan = (w.reason == "port_scan").to_numpy()
    assert scan[12:].all() and scan.sum() == 21, w.reason.tolist()
    assert scan[(w.conn_state == "S0").to_numpy()].all()
    assert set(w.conn_state[~scan]) == {"REJ", "RSTO"}


def test_an_agent_retrying_23101_is_no_scan(tmp_path):
    """An agent's connect() to the cloud refused, retried every 2 s for two minutes (60 flows, one
    port), then S0 attempts with retransmissions: blocked, as before."""
    agent, cloud = "198.18.0.7", "203.0.113.20"
    recs = []
    for k in range(60):
        recs += _probe(1000.0 + 2 * k, agent, cloud, 50000 + k, 23101, "closed", isn=1000 + k)
    for k in range(5):
        t = 1200.0 + 10 * k
        recs += [_up(t + d, agent, cloud, 51000 + k, 23101, "S", 9000) for d in (0, 1, 3)]
    w = assert_same(write(tmp_path, sorted(recs, key=lambda r: r[0])), [3000])
    assert (w.reason == "rejected").sum() == 60 and (w.reason == "no_answer").sum() == 5
    assert set(w.verdict) == {"blocked"} and set(w.purpose) == {"agent_connection"}


def test_an_agent_trying_the_documented_ports_and_a_distribution_point_are_no_scan(tmp_path):
    """An agent trying every §A port of one cloud address, refused (9 ports); 40 agents to one
    distribution point on its four ports, half refused; the distribution point's own tries of the
    cloud: all judged as before."""
    cloud, dp = "203.0.113.20", "192.0.2.50"
    recs = []
    for k, p in enumerate((23101, 23102, 23103, 27201, 29201, 443, 1443, 80, 23701)):
        recs += _probe(1000.0 + k * .1, "198.18.0.7", cloud, 50000 + k, p, "closed")
    for a in range(40):
        for k, p in enumerate((13000, 13111, 13295, 17111)):
            t = 1001.0 + a * .05 + k * .01
            recs += _probe(t, f"198.18.1.{a + 1}", dp, 52000 + k, p, "closed") if a % 2 else \
                _tls_session(t, f"198.18.1.{a + 1}", dp, 52000 + k, p)
    for k, p in enumerate((23101, 443, 27201)):
        recs += _probe(1003.0 + k * .1, dp, cloud, 53000 + k, p, "filtered")
    w = assert_same(write(tmp_path, sorted(recs, key=lambda r: r[0])), [4000])
    assert not w.reason.isin(["port_scan", "address_scan"]).any()
    assert (w.verdict == "blocked").sum() == 9 + 80 + 3
    assert scan_lines(TableSummary.of(w, rules=RULES)) == []


def test_many_ports_of_a_server_that_answers_them_is_no_scan(tmp_path):
    """A client using 20 ports of one server (a domain controller that is also the distribution
    point: data on each) and refused on 13295 once: the refusal stays blocked (the attempts reach
    the count, the probes do not)."""
    client, dp = "198.18.0.9", "192.0.2.50"
    recs = []
    for k, p in enumerate((53, 88, 135, 139, 389, 445, 464, 636, 3268, 3269, 5985, 9389, 49664, 49665, 49666, 49667,
                           13000, 13111, 17111, 3389)):
        recs += _tls_session(1000.0 + k * .2, client, dp, 50000 + k, p)
    recs += _probe(1002.0, client, dp, 50100, 13295, "closed")
    w = assert_same(write(tmp_path, sorted(recs, key=lambda r: r[0])), [3000])
    r = w[w.resp_p == 13295].iloc[0]
    assert (r.verdict, r.reason, r.purpose) == ("blocked", "rejected", "dp_push"), dict(r)


def test_the_scan_beside_an_agent_that_works(tmp_path):
    """A scan of the agent's server while the agent connects: the agent's flow is judged (ok), the
    probes are not; the checklist verifies agent_connection from the agent's flow alone."""
    recs, _ = _port_scan(n=60)
    recs += _tls_session(1000.5, "198.18.0.7", VICTIM, 50000, 23101)
    w = assert_same(write(tmp_path, sorted(recs, key=lambda r: r[0])), [5000])
    agent = w[w.orig_h == "198.18.0.7"].iloc[0]
    assert (agent.purpose, agent.verdict, agent.reason) == ("agent_connection", "unexpected", "not_tls")
    assert (w.reason == "port_scan").sum() == 60
    s = TableSummary.of(w, rules=RULES)
    assert s.counts == {("agent_connection", "unexpected"): 1, ("", "unclassified"): 60}, s.counts
    assert not s.no_ksc_headline(RULES)


def test_cli_report_says_the_scan_once_and_exits_0(tmp_path):
    recs, _ = _port_scan()
    path = write(tmp_path, recs)
    r = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", str(path)], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    lines = [x for x in r.stdout.splitlines() if x.startswith("Scan: ")]
    assert lines == [f"Scan: a port scan from {SCANNER}: 200 ports of {VICTIM} in 3.2 s (12 documented KSC ports "
                     f"among them), {SCAN_NOT_KSC} (200 probes, reason port_scan)"], r.stdout
    assert "200 flows: 0 ok, 0 blocked, 0 unexpected, 200 unclassified" in r.stdout
    out = tmp_path / "f.csv"
    subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", str(path), "--format", "csv", "-o", str(out)],
                   check=True, timeout=300)
    import pandas as pd
    rows = pd.read_csv(out, keep_default_na=False)
    assert (rows.reason == "port_scan").sum() == 200
    assert rows[rows.resp_p == 13000].iloc[0].detail.endswith(f"{SCAN_DOCUMENTED}dp_agent_connection, {SCAN_NOT_KSC}")


def test_tshark_engine_the_same(tmp_path):
    if shutil.which("tshark") is None:
        pytest.skip("tshark is not installed")
    from kscc_traffic.analyze import analyze_file
    recs, _ = _port_scan(n=40)
    path = write(tmp_path, recs)
    t = analyze_file(path, RULES, engine="tshark").flows
    b = analyze_file(path, RULES).flows
    assert set(t.reason) == {"port_scan"} and len(t) == 40
    assert sorted(t.detail) == sorted(b.detail)


def test_documented():
    docs = documentation()
    assert "port_scan" in docs and "address_scan" in docs and "scan.zeek" in docs


def test_html_report_says_each_scan_once(tmp_path):
    from kscc_traffic.analyze import analyze_file
    from kscc_traffic.html_report import render_html
    recs, _ = _port_scan(n=40)
    flows = analyze_file(write(tmp_path, recs), RULES).flows
    page = render_html(flows, RULES, generated="x", charts=False)
    assert page.count("<b>Scans</b>") == 1
    assert (f"<li>a port scan from {SCANNER}: 40 ports of {VICTIM} in 0.6 s (12 documented KSC ports among them), "
            f"{SCAN_NOT_KSC} (40 probes, reason port_scan)</li>") in page


def test_live_session_the_same(tmp_path):
    """The live session's final table (each flow classified apart, then the table)."""
    from kscc_traffic.analyze import analyze_file
    from kscc_traffic.live import session as live
    from test_synretry_s31 import _replay_ticking
    recs, _ = _port_scan(n=30)
    path = write(tmp_path, recs)
    s = live.LiveSession(RULES, name=path.name)
    _replay_ticking(path, s)
    got = s.final().sort_values("ts_ns").reset_index(drop=True)
    want = analyze_file(path, RULES).flows.sort_values("ts_ns").reset_index(drop=True)
    assert set(got.reason) == {"port_scan"} and len(got) == 30
    assert got.detail.tolist() == want.detail.tolist()


def test_corpus_nmap_syn_scan_is_one_port_scan():
    """nfstream's synscan.pcap (an nmap SYN scan of scanme.nmap.org's top 1,000 ports): every flow a
    probe; the 12 open ports' SYN-ACKs never acknowledged (``S1``, history ``Sh``) count too."""
    from conftest import shared_corpus
    from kscc_traffic.analyze import analyze_file
    path = shared_corpus("public") / "synscan_2000-flows_rst.pcap"
    if not path.exists():
        pytest.skip(f"{path} not in the shared corpus")
    w = analyze_file(path, RULES).flows
    assert len(w) == 1994 and set(w.reason) == {"port_scan"}
    assert w.conn_state.value_counts().to_dict() == {"S0": 1986, "REJ": 5, "S1": 3}
    s = w[w.conn_state == "S1"].iloc[0]
    assert "(open: the prober never acknowledged the SYN-ACK, a half-open SYN probe)" in s.detail
    assert scan_lines(TableSummary.of(w, rules=RULES)) == [
        "a port scan from 172.16.0.8: 1,000 ports of 64.13.134.52 in 5.1 s (3 documented KSC ports among them), "
        f"{SCAN_NOT_KSC} (1,994 probes, reason port_scan)"]
