"""Newcomer 28 findings (their captures' shapes, built here with scapy).

F9: ``live`` printed the whole default capture filter (~2,000 characters) at every start; it now
says how many ports it covers and where to see it whole, unless ``-v``.
"""
from __future__ import annotations

import sys

import pytest

import netns
from kscc_traffic.live.run import default_filter, default_filter_summary
from kscc_traffic.rules import load_rules

REASON = netns.why_unavailable()


def test_default_filter_summary_counts_the_rules_ports():
    rules = load_rules()
    ports = {(r.transport, r.port_range) for r in rules.rules}
    bpf = default_filter(rules, (8080, 23101))
    text = default_filter_summary(rules, (8080, 23101), vlan=True, chars=len(bpf))
    # (23101 is in a rule's range: nothing added; 8080 is)
    assert text == (f"the default: the rules' {len(ports)} ports/ranges, proxy port 8080, DNS, ICMP, IGMP, IP fragments, "
                    f"untagged, VLAN and QinQ frames ({len(bpf):,} characters: "
                    "`kscc-traffic rules --bpf --proxy-port 8080` prints it, `live -v` shows it here)")
    assert len(ports) == 14 and len(text) < 250 < len(bpf)


@pytest.mark.skipif(REASON is not None, reason=REASON or "")
@pytest.mark.parametrize("verbose", [False, True])
def test_live_start_line_summarises_the_default_filter(tmp_path, verbose):
    """The ``Capturing on lo`` line: the filter's summary, or (``-v``) the filter itself."""
    rc, text = netns.live_on_idle_lo(tmp_path, *(["-v"] if verbose else []))
    first = text.splitlines()[0]
    assert rc == 0, text
    assert first.startswith("Capturing on lo (engine scapy); filter: ")
    bpf = default_filter(load_rules())
    if verbose:
        assert first.endswith(bpf)
    else:
        assert "portrange" not in first and len(first) < 300, first
        assert first.endswith(f"({len(bpf):,} characters: `kscc-traffic rules --bpf` prints it, "
                              "`live -v` shows it here)"), first


# --- F6/F7: what a reset's TTL says, said once and hedged ----------------------------------------

def test_reset_from_nearer_is_not_said_to_be_the_servers(tmp_path):
    """fw_reset_23101: the server's SYN-ACK came with TTL 52, a reset after the ClientHello with 63
    (a device on the path): the detail no longer says "the server reset the connection", then that
    the server did not send it (newcomer 28 F7)."""
    from chunkcmp import whole, write
    from test_decode_more_encaps import client_hello
    from scapy.all import IP, TCP
    from pcapbuild import eth
    from test_newcomer27_advice import AGENT, SERVER, _dn, _up
    hello = client_hello("eu1.ksc.kaspersky.com")
    recs = [_up(1.0, 50000, 23101, flags="S", seq=100),
            _dn(1.02, 23101, 50000, ttl=52, flags="SA", seq=500, ack=101),
            _up(1.03, 50000, 23101, flags="A", seq=101, ack=501),
            (1.04, bytes(eth(IP(src=AGENT, dst=SERVER, ttl=64) / TCP(sport=50000, dport=23101, flags="PA", seq=101,
                                                                     ack=501) / hello))),
            _dn(1.043, 23101, 50000, ttl=63, flags="R", seq=501)]
    flows, _ = whole(write(tmp_path, recs, name="fwreset.pcap"))
    (d,) = flows.loc[flows["resp_p"] == 23101, "detail"].tolist()
    assert d.startswith("TLS handshake aborted: a reset in the server's name ended the connection (RST, RSTR) "), d
    assert "the server reset the connection" not in d and "the server's reset" not in d
    assert d.endswith("the reset in the server's name came with TTL 63, its SYN-ACK with 52: probably sent by a "
                      "device on the path (a firewall or IPS ending the connection), not by the server")


def test_distribution_points_reset_across_subnets_says_its_ttl_once(tmp_path):
    """A distribution point on another subnet (198.51.100.20) answered 13000 with TTL 126 and
    resets 13111 with TTL 126: the detail says what may answer once (its own stack or firewall, or one
    between the subnets) and what the TTL adds (most likely its own), not "the server itself
    refused — nothing listens" a second time (newcomer 28 F7)."""
    from chunkcmp import whole, write
    from test_newcomer27_advice import _dn, _ok, _up
    dp = "198.51.100.20"
    recs = _ok(1.0, 40000, sport=13000, ttl=126, server=dp) + [
        _up(2.0, 40001, 13111, flags="S", seq=900, dst=dp),
        _dn(2.001, 13111, 40001, ttl=126, flags="RA", seq=0, ack=901, src=dp)]
    flows, _ = whole(write(tmp_path, recs, name="dprst.pcap"))
    (d,) = flows.loc[flows["resp_p"] == 13111, "detail"].tolist()
    assert d == ("the SYN was answered by a TCP reset from the distribution point's address (198.51.100.20): "
                 "nothing listens on the port there (the service is not running or not enabled), or a firewall "
                 "rejects it (its own, or one between the subnets); its TTL is that of the distribution point's "
                 "packets on other connections: most likely its own answer (no listener, or its host firewall), "
                 "not a firewall between the subnets")
    assert d.count("nothing listens") == 1 and "server itself refused" not in d


# --- F3: a multicast seen one-way: the terminal says what the HTML report says --------------------

def test_terminal_says_what_a_one_way_multicast_does_not_show(tmp_path):
    """dp_multicast_on_dp: 15001 datagrams to 239.192.0.15 captured on the distribution point: the
    checklist's "seen one-way" comes with the same note as in the HTML report ("sent, not
    received … check on a receiving device"), under "To verify:", not "What to change"."""
    from chunkcmp import whole, write
    from pcapbuild import udp
    from kscc_traffic.html_report import render_html
    from kscc_traffic.report import render_table
    recs = [udp(("192.0.2.20", 15001), ("239.192.0.15", 15001), b"x" * 120, t=1000.0 + 10 * i,
                dst_mac="01:00:5e:40:00:0f") for i in range(5)]
    recs = [(t, bytes(p)) for t, p in recs]
    flows, _ = whole(write(tmp_path, recs, name="mc.pcap"))
    rules = load_rules()
    text = " ".join(render_table(flows, rules, width=400).split())
    assert "What to change" not in text
    assert ("To verify: dp_multicast (seen one-way): 1 flow on UDP 15001 seen, none answered (no answer is "
            "expected): this capture shows that they were sent, not that they were received") in text
    assert "To verify, check on a receiving device" in text
    page = render_html(flows, rules)
    assert "this capture shows that they were sent, not that they were received" in page


# --- F4: no KSC agent traffic: no advice, checklist or exit status built on other programs' flows --

def _run(path, *args):
    import subprocess
    from conftest import ROOT
    return subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", str(path), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env={"COLUMNS": "250", "PATH": ""})


def test_no_ksc_traffic_judges_no_purpose_on_other_programs_flows(tmp_path):
    """A browser's HTTPS: nameless 443 attempts never answered (discovery "blocked (no name
    seen…)", advice to allow 443 to *.ksc.kaspersky.com) and a DNS lookup of www.example.com never
    answered (dns blocked): under the "No KSC agent traffic" headline the checklist says discovery
    "not seen (no KSC flow …)", no advice is given, the flagged flows are said to be other
    programs', and the exit status is 0 (table, JSONL, --fail-on blocked); one KSC flow more and
    all of that is as before (exit 1)."""
    import html as h
    import re
    from chunkcmp import write
    from kscc_traffic import analyze, readiness
    from kscc_traffic.html_report import render_html
    from kscc_traffic.report import TableSummary, render_table
    from test_newcomer27_advice import _rej, _up
    rules = load_rules()
    web = [_up(1.0 + k, 40030 + k, 443, flags="S", seq=100, dst=f"198.51.100.{80 + k}") for k in range(3)]
    from pcapbuild import udp
    web += [(t, bytes(p)) for t, p in [udp(("192.0.2.10", 41000), ("192.0.2.53", 53),
                                           bytes.fromhex("12340100000100000000000003777777076578616d706c6503636f6d0000010001"),
                                           t=0.5)]]
    path = write(tmp_path, sorted(web), name="web.pcap")
    flows = analyze(path)
    assert sorted(set(zip(flows["purpose"], flows["verdict"]))) == [("discovery", "blocked"), ("dns", "blocked")]
    for chk in (readiness(flows, rules), TableSummary.of(flows).readiness(rules)):
        row = chk.set_index("rule").loc["discovery"]
        assert (row["status"], row["status_note"], row["reasons"], row["fix"], row["flows"], row["blocked"]) == \
            ("not seen", "no KSC flow: its port's flows are other programs'", "", "", 3, 3)
        assert set(chk["status"]) == {"not seen"}
    text = " ".join(render_table(flows, rules, width=400).split())
    assert text.startswith("No KSC agent traffic:")
    assert "not seen (no KSC flow: its port's flows are other programs')" in text
    assert "What to change" not in text and "allow outbound" not in text and "allow DNS" not in text
    assert ("Flagged flows (4): other programs' flows, not KSC agent traffic (see the headline)") in text
    page = h.unescape(re.sub(r"<[^>]+>", " ", render_html(flows, rules, charts=False)))
    assert "No KSC agent traffic" in page and "allow outbound HTTPS" not in page
    for args in ((), ("--format", "jsonl"), ("--fail-on", "blocked")):
        p = _run(path, *args)
        assert p.returncode == 0, (args, p.stdout[-2000:], p.stderr)
    # one KSC flow (a refused SYN to 23101): judged as before, exit 1
    path = write(tmp_path, sorted(web + _rej(5.0, 40040, 23101, 63)), name="ksc.pcap")
    flows = analyze(path)
    row = readiness(flows, rules).set_index("rule").loc["discovery"]
    assert row["status"] == "blocked" and "allow outbound HTTPS (TCP 443)" in row["fix"]
    for args in ((), ("--format", "jsonl")):
        p = _run(path, *args)
        assert p.returncode == 1, (args, p.stderr)


# --- F3: the agent joined the group (IGMP/MLD), no 15001 datagram came ------------------------------

def _joins(kind):
    """(t, frame) of a device at 192.0.2.10 / 2001:db8::10 joining 239.192.0.15 / ff15::15 three times."""
    from scapy.all import IP, Ether
    from scapy.contrib.igmp import IGMP
    from scapy.layers.igmp import IGMPv3_MR, IGMPv3_MR_Group
    from scapy.layers.inet6 import ICMPv6MLDMultAddrRec, ICMPv6MLReport2, IPv6, IPv6ExtHdrHopByHop, RouterAlert
    out = []
    for k in range(3):
        if kind == "igmpv3":
            # (scapy 2.8: IGMPv3_MR is the whole report; IGMPv3(type=0x22) / IGMPv3mr wrote two
            # headers, a report of no record, which session 29's reading of the records saw)
            p = (Ether(src="02:00:00:00:00:10", dst="01:00:5e:00:00:16")
                 / IP(src="192.0.2.10", dst="224.0.0.22", ttl=1, options=[b"\x94\x04\x00\x00"])
                 / IGMPv3_MR(records=[IGMPv3_MR_Group(rtype=4, maddr="239.192.0.15")]))
        elif kind == "igmpv2":
            p = (Ether(src="02:00:00:00:00:10", dst="01:00:5e:40:00:0f")
                 / IP(src="192.0.2.10", dst="239.192.0.15", ttl=1) / IGMP(type=0x16, gaddr="239.192.0.15"))
        else:
            p = (Ether(src="02:00:00:00:00:10", dst="33:33:00:00:00:16")
                 / IPv6(src="2001:db8::10", dst="ff02::16", hlim=1) / IPv6ExtHdrHopByHop(options=[RouterAlert()])
                 / ICMPv6MLReport2(records=[ICMPv6MLDMultAddrRec(rtype=4, dst="ff15::15")]))
        out.append((1030.0 + 30 * k, bytes(p)))
    return out


@pytest.mark.parametrize("kind", ["igmpv3", "igmpv2", "mldv2"])
def test_joined_the_group_but_no_multicast_datagram(tmp_path, kind):
    """dp_multicast_agent_igmp: a working agent (23101) that joins the group, no 15001 datagram in
    the capture: dp_multicast stays "not seen" with the note that the device joined a group and
    received nothing, and the advice (multicast routing, IGMP snooping), in the terminal (under "To
    verify:") and the HTML report; an IGMPv2 report names its group; with a 15001 datagram there,
    nothing of it."""
    import html as h
    import re
    from chunkcmp import write
    from kscc_traffic import analyze, readiness
    from kscc_traffic.html_report import render_html
    from kscc_traffic.report import TableSummary, render_table
    from pcapbuild import udp
    from test_newcomer27_advice import _ok
    rules = load_rules()
    base = _ok(1.0, 40000)
    flows = analyze(write(tmp_path, sorted(base + _joins(kind)), name=f"{kind}.pcap"))
    for chk in (readiness(flows, rules), TableSummary.of(flows).readiness(rules)):
        row = chk.set_index("rule").loc["dp_multicast"]
        assert (row["status"], row["status_note"], row["flows"]) == \
            ("not seen", "joined a multicast group by IGMP/MLD, no datagram received", 0)
        named = ": ff15::15" if kind == "mldv2" else ": 239.192.0.15"     # (session 29: the records are read)
        snooping = "MLD snooping (an MLD querier on the VLAN)" if kind == "mldv2" else \
            "IGMP snooping (an IGMP querier on the VLAN)"
        assert row["fix"].startswith(f"the capture holds IGMP/MLD membership reports (1 flow: this device joined "
                                     f"multicast groups{named}) but no UDP 15001 multicast datagram"), row["fix"]
        # (an IPv6 group is joined by MLD, filtered by MLD snooping: session 33)
        assert f"check the multicast routing and {snooping}" in row["fix"]
    text = " ".join(render_table(flows, rules, width=400).split())
    assert "not seen (joined a multicast group by IGMP/MLD, no datagram received)" in text
    assert "To verify: dp_multicast (not seen): the capture holds IGMP/MLD membership reports" in text
    page = " ".join(h.unescape(re.sub(r"<[^>]+>", " ", render_html(flows, rules, charts=False))).split())
    assert "joined a multicast group by IGMP/MLD, no datagram received" in page
    assert f"check the multicast routing and {snooping}" in page
    # the datagram came: dp_multicast is seen, no join note
    dgram = [(t, bytes(p)) for t, p in [udp(("198.51.100.20", 15001), ("239.192.0.15", 15001), b"x" * 50, t=1100.0,
                                            dst_mac="01:00:5e:40:00:0f")]]
    flows = analyze(write(tmp_path, sorted(base + _joins(kind) + dgram), name=f"{kind}_dg.pcap"))
    row = readiness(flows, rules).set_index("rule").loc["dp_multicast"]
    assert row["status"] != "not seen" and row["status_note"] == ""


def test_joins_of_the_systems_own_groups_make_no_multicast_note(tmp_path):
    """IGMPv2 reports for the groups every operating system joins for its own services (SSDP
    239.255.255.250, SLP, mDNS 224.0.0.251, LLMNR 224.0.0.252: a Windows host's) beside a working
    agent: dp_multicast is "not seen" with no join note (review 29: they made the note and its
    multicast-routing advice on ordinary captures); the KSC-looking group beside them still makes it,
    named alone."""
    from scapy.all import IP, Ether
    from scapy.contrib.igmp import IGMP
    from chunkcmp import write
    from kscc_traffic import analyze, readiness
    from kscc_traffic.report import TableSummary, group_joins, os_group
    from test_newcomer27_advice import _ok

    def report(group, t):
        return (t, bytes(Ether(src="02:00:00:00:00:10") / IP(src="192.0.2.10", dst=group, ttl=1)
                         / IGMP(type=0x16, gaddr=group)))

    assert [os_group(g) for g in ("239.255.255.250", "224.0.0.251", "224.0.0.22", "239.192.0.15")] == \
        [True, True, False, False]
    rules = load_rules()
    own = [report(g, 1030.0 + i) for i, g in enumerate(("239.255.255.250", "239.255.255.253", "224.0.0.251",
                                                          "224.0.0.252"))]
    flows = analyze(write(tmp_path, sorted(_ok(1.0, 40000) + own), name="own.pcap"))
    assert group_joins(flows) == (0, ())
    for chk in (readiness(flows, rules), TableSummary.of(flows).readiness(rules)):
        row = chk.set_index("rule").loc["dp_multicast"]
        assert (row["status"], row["status_note"]) == ("not seen", "")
    flows = analyze(write(tmp_path, sorted(_ok(1.0, 40000) + own + [report("239.192.0.15", 1040.0)]),
                          name="both.pcap"))
    assert group_joins(flows) == (1, ("239.192.0.15",))
    row = readiness(flows, rules).set_index("rule").loc["dp_multicast"]
    assert row["status_note"] == "joined a multicast group by IGMP/MLD, no datagram received"
