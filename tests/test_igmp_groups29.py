"""Session 29: the groups inside IGMPv3 / MLDv2 reports (and MLDv1 reports) are read, and a report
counts as a join of a distribution point's multicast only when it names a group that is not the
operating system's own (SSDP, mDNS, LLMNR, solicited-node…): every Windows/Linux host sends such
reports, so the "joined a multicast group" note came on plain captures beside a working agent."""
from __future__ import annotations

import html as h
import re

import pytest

from kscc_traffic.rules import load_rules

JOINED = "joined a multicast group by IGMP/MLD, no datagram received"
MAC = "02:00:00:00:00:10"


def _igmpv3(records, t):
    """(t, frame): an IGMPv3 report of 192.0.2.10 with ``records`` [(rtype, group, sources)]."""
    from scapy.all import IP, Ether
    from scapy.layers.igmp import IGMPv3_MR, IGMPv3_MR_Group
    recs = [IGMPv3_MR_Group(rtype=r, maddr=g, srcaddrs=list(s)) for r, g, s in records]
    p = (Ether(src=MAC, dst="01:00:5e:00:00:16")
         / IP(src="192.0.2.10", dst="224.0.0.22", ttl=1, options=[b"\x94\x04\x00\x00"])
         / IGMPv3_MR(records=recs))
    return t, bytes(p)


def _mldv2(records, t):
    """(t, frame): an MLDv2 report of 2001:db8::10 with ``records`` [(rtype, group, sources)]."""
    from scapy.all import Ether
    from scapy.layers.inet6 import ICMPv6MLDMultAddrRec, ICMPv6MLReport2, IPv6, IPv6ExtHdrHopByHop, RouterAlert
    recs = [ICMPv6MLDMultAddrRec(rtype=r, dst=g, sources=list(s)) for r, g, s in records]
    p = (Ether(src=MAC, dst="33:33:00:00:00:16")
         / IPv6(src="2001:db8::10", dst="ff02::16", hlim=1) / IPv6ExtHdrHopByHop(options=[RouterAlert()])
         / ICMPv6MLReport2(records=recs))
    return t, bytes(p)


def _mldv1(group, t, kind=131):
    """(t, frame): an MLDv1 report (131) or done (132) of ``group`` by 2001:db8::10."""
    from scapy.all import Ether
    from scapy.layers.inet6 import ICMPv6MLDone, ICMPv6MLReport, IPv6, IPv6ExtHdrHopByHop, RouterAlert
    msg = ICMPv6MLReport(mladdr=group) if kind == 131 else ICMPv6MLDone(mladdr=group)
    p = (Ether(src=MAC) / IPv6(src="fe80::10", dst=group if kind == 131 else "ff02::2", hlim=1)
         / IPv6ExtHdrHopByHop(options=[RouterAlert()]) / msg)
    return t, bytes(p)


def _windows(t):
    """What a Windows host sends on its own: IGMPv3 joins of SSDP, mDNS, LLMNR, an MLDv2 report of
    SSDP (ff02::c, ff05::c), mDNS, LLMNR and its solicited-node group."""
    return [_igmpv3([(4, "239.255.255.250", ()), (4, "224.0.0.251", ()), (4, "224.0.0.252", ())], t),
            _igmpv3([(2, "239.255.255.250", ()), (2, "224.0.0.251", ()), (2, "224.0.0.252", ())], t + 1),
            _mldv2([(4, "ff02::c", ()), (4, "ff05::c", ()), (4, "ff02::fb", ()), (4, "ff02::1:3", ()),
                    (4, "ff02::1:ff00:10", ())], t + 2),
            _mldv1("ff02::1:ff00:10", t + 3)]


def _readings(path, rules):
    """The checklist of a capture by every reading: readiness of the whole-file table,
    TableSummary of it, TableSummary of a chunked reading (chunks of 1 KiB), as (name, frame)."""
    from chunkcmp import chunked, whole
    from kscc_traffic import readiness
    from kscc_traffic.report import TableSummary
    w, _ = whole(path)
    c, _ = chunked(path, 1024)
    summary = TableSummary()
    for k in range(0, len(c), 2):
        summary.add(c.iloc[k:k + 2])
    return w, [("readiness", readiness(w, rules)), ("summary", TableSummary.of(w).readiness(rules)),
               ("chunked", summary.readiness(rules))]


def test_joined_groups_parser():
    """IGMPv1/v2/v3 and MLDv1/v2 reports: the groups their joining records name; leaves,
    BLOCK_OLD_SOURCES, an INCLUDE with no source, queries and short bytes name none."""
    from scapy.layers.igmp import IGMP, IGMPv3_MQ, IGMPv3_MR
    from scapy.layers.igmp import IGMPv3_MR_Group as IGMPv3gr
    from scapy.layers.inet6 import ICMPv6MLDMultAddrRec, ICMPv6MLReport2
    from kscc_traffic.protocols.mcast import joined_groups
    # (scapy 2.8: IGMPv3_MR is the whole report; IGMPv3(type=0x22) / IGMPv3_MR writes two headers)
    v3 = bytes(IGMPv3_MR(records=[
        IGMPv3gr(rtype=1, maddr="239.1.1.1"),                                   # INCLUDE, no source
        IGMPv3gr(rtype=1, maddr="239.1.1.2", srcaddrs=["198.51.100.1"]),        # INCLUDE with a source
        IGMPv3gr(rtype=2, maddr="239.1.1.3"), IGMPv3gr(rtype=3, maddr="239.1.1.4"),   # leave
        IGMPv3gr(rtype=3, maddr="239.1.1.5", srcaddrs=["198.51.100.1", "198.51.100.2"]),
        IGMPv3gr(rtype=4, maddr="239.1.1.6"),
        IGMPv3gr(rtype=5, maddr="239.1.1.7", srcaddrs=["198.51.100.3"]),
        IGMPv3gr(rtype=6, maddr="239.1.1.8", srcaddrs=["198.51.100.3"])]))
    assert joined_groups(4, v3) == ["239.1.1.2", "239.1.1.3", "239.1.1.5", "239.1.1.6", "239.1.1.7"]
    assert joined_groups(4, v3[:8 + 8 + 4]) == []              # (the second record cut: the first is a leave)
    assert joined_groups(4, bytes(IGMP(type=0x16, gaddr="239.192.0.15"))) == ["239.192.0.15"]
    assert joined_groups(4, bytes(IGMP(type=0x12, gaddr="239.192.0.15"))) == ["239.192.0.15"]
    assert joined_groups(4, bytes(IGMP(type=0x17, gaddr="239.192.0.15"))) == []      # IGMPv2 leave
    assert joined_groups(4, bytes(IGMPv3_MQ(gaddr="239.192.0.15"))) == []   # query
    assert joined_groups(4, b"\x16\x00\x00") == []
    # (aux data length in 32-bit words, RFC 3810 §5.2.6: scapy would write its bytes, 4)
    mld = bytes(ICMPv6MLReport2(records=[ICMPv6MLDMultAddrRec(rtype=2, dst="ff15::15", auxdata_len=1, auxdata=b"abcd"),
                                         ICMPv6MLDMultAddrRec(rtype=3, dst="ff15::16"),
                                         ICMPv6MLDMultAddrRec(rtype=1, dst="ff15::17", sources=["2001:db8::1"])]))
    assert joined_groups(6, mld[8:], 143) == ["ff15::15", "ff15::17"]
    assert joined_groups(6, mld[8:], 130) == []
    assert joined_groups(6, bytes(16 * [0xFF]), 131) == ["ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]
    assert joined_groups(6, bytes(15), 131) == []


def test_os_groups_of_ipv6():
    """ff02::/16 (and the interface-local scope) and the services' groups of any scope (SSDP, mDNS,
    NTP, all routers, DHCPv6 servers: a Linux router's MLD reports name ff05::2, break-it s50 #6) are
    the system's own; another site- or organisation-local group is not."""
    from kscc_traffic.report import os_group
    assert [os_group(g) for g in ("ff02::fb", "ff02::1:3", "ff02::c", "ff02::1:ff00:10", "ff01::1", "ff05::c",
                                  "ff15::fb", "ff15::15", "ff05::1:3", "ff05::2", "ff05::101", "ff0e::1234",
                                  "ff05::3", "2001:db8::1", "junk")] == \
        [True, True, True, True, True, True, True, False, True, True, True, False, False, False, False]
    assert [os_group(g) for g in ("224.0.1.1", "239.192.0.15")] == [True, False]
    # (the same low bits in a transient or prefix-based group are anyone's group)
    assert [os_group(g) for g in ("ff15::1", "ff15::2", "ff15::101", "ff3e::101", "ff35::1:3")] == [False] * 5


def test_windows_reports_beside_a_working_agent_make_no_note(tmp_path):
    """A working agent connection and a Windows host's IGMPv3 and MLDv2/MLDv1 reports of its own
    groups (SSDP, mDNS, LLMNR, solicited-node): dp_multicast is "not seen" with no join note, in
    every reading (whole file, summary, chunks of 1 KiB, HTML); the flows' details name the groups.""" 
    from chunkcmp import write
    from kscc_traffic.html_report import render_html
    from kscc_traffic.report import group_joins
    from test_newcomer27_advice import _ok
    rules = load_rules()
    path = write(tmp_path, sorted(_ok(1.0, 40000) + _windows(1030.0)), name="windows.pcap")
    w, checks = _readings(path, rules)
    head = "neither TCP nor UDP: no documented KSC port applies; not judged; IGMP/MLD membership reports join "
    assert w.loc[w["resp_h"] == "224.0.0.22", "detail"].tolist() == [head + "239.255.255.250, 224.0.0.251, 224.0.0.252"]
    assert w.loc[w["resp_h"] == "ff02::16", "detail"].tolist() == \
        [head + "ff02::c, ff05::c, ff02::fb, ff02::1:3, ff02::1:ff00:10"]
    assert group_joins(w) == (0, ())
    # (the tshark engine rebuilds the reports from Wireshark's igmp/icmpv6.mldr fields: the same details)
    from kscc_traffic.analyze import analyze_file
    ts = analyze_file(path, rules, engine="tshark").flows
    assert sorted(ts["detail"]) == sorted(w["detail"])
    for name, chk in checks:
        row = chk.set_index("rule").loc["dp_multicast"]
        assert (row["status"], row["status_note"]) == ("not seen", ""), name
        assert row["status"] == "not seen"
        assert chk.set_index("rule").loc["agent_connection"]["status"] != "not seen"
    page = render_html(w, rules, charts=False)
    assert JOINED not in h.unescape(page)


@pytest.mark.parametrize("kind", ["igmpv3", "mldv2", "mldv1"])
def test_a_report_joining_a_dp_group_makes_the_note(tmp_path, kind):
    """The same captures with one more report joining a routed group (239.192.0.15 by IGMPv3,
    ff15::15 by MLDv2 or MLDv1) and no UDP 15001 datagram: the note, naming that group alone, in
    every reading and the HTML report; the terminal table says it."""
    from chunkcmp import write
    from kscc_traffic.html_report import render_html
    from kscc_traffic.report import render_table
    from test_newcomer27_advice import _ok
    rules = load_rules()
    if kind == "igmpv3":
        join, group = _igmpv3([(2, "239.255.255.250", ()), (4, "239.192.0.15", ())], 1040.0), "239.192.0.15"
    elif kind == "mldv2":
        join, group = _mldv2([(4, "ff02::fb", ()), (4, "ff15::15", ())], 1040.0), "ff15::15"
    else:
        join, group = _mldv1("ff15::15", 1040.0), "ff15::15"
    path = write(tmp_path, sorted(_ok(1.0, 40000) + _windows(1030.0) + [join]), name=f"{kind}.pcap")
    w, checks = _readings(path, rules)
    for name, chk in checks:
        row = chk.set_index("rule").loc["dp_multicast"]
        assert (row["status"], row["status_note"]) == ("not seen", JOINED), name
        assert row["fix"].startswith("the capture holds IGMP/MLD membership reports (1 flow: this device joined "
                                     f"multicast groups: {group}) but no UDP 15001 multicast datagram"), row["fix"]
    assert JOINED in " ".join(render_table(w, rules, width=400).split())
    page = " ".join(h.unescape(re.sub(r"<[^>]+>", " ", render_html(w, rules, charts=False))).split())
    assert JOINED in page and f"joined multicast groups: {group})" in page


def test_a_leave_makes_no_note(tmp_path):
    """Leaves of a routed group (IGMPv3 CHANGE_TO_INCLUDE with no source, MLDv2 likewise, MLDv1
    done, IGMPv3 BLOCK_OLD_SOURCES) beside the Windows reports: no join, no note."""
    from chunkcmp import write
    from kscc_traffic.report import group_joins
    from test_newcomer27_advice import _ok
    rules = load_rules()
    leaves = [_igmpv3([(3, "239.192.0.15", ()), (6, "239.192.0.16", ("198.51.100.1",))], 1040.0),
              _mldv2([(3, "ff15::15", ())], 1041.0), _mldv1("ff15::15", 1042.0, kind=132)]
    path = write(tmp_path, sorted(_ok(1.0, 40000) + _windows(1030.0) + leaves), name="leave.pcap")
    w, checks = _readings(path, rules)
    assert group_joins(w) == (0, ())
    for name, chk in checks:
        assert chk.set_index("rule").loc["dp_multicast"]["status_note"] == "", name


def test_tables_with_and_without_details():
    """The groups are read from the details (a leave's flow, a TCP flow saying the same: none); a
    table without ``detail`` (made elsewhere): an IGMP flow to a routed group (an IGMPv2 report)
    counts, one to 224.0.0.22 (groups unreadable) or to the system's groups does not, nor an MLDv2
    report to ff02::16."""
    import pandas as pd
    from kscc_traffic.report import group_joins
    flows = pd.DataFrame({"proto": ["igmp", "igmp", "igmp", "icmp", "tcp"],
                          "resp_h": ["224.0.0.22", "239.255.255.250", "239.192.0.15", "ff02::16", "198.51.100.1"]})
    assert group_joins(flows) == (1, ("239.192.0.15",))
    said = "x; IGMP/MLD membership reports join "
    assert group_joins(flows.assign(detail=[said + "239.1.2.3, ff02::fb", "x", "", said + "ff15::15",
                                            said + "239.9.9.9"])) == (2, ("239.1.2.3", "ff15::15"))


def test_tshark_rebuild_of_group_records_is_bounded():
    """A record claiming 65,535 sources (hostile, or cut by the snaplen) is rebuilt with at most
    an IP payload's bytes of zeros (review 30 F3: 200 such records cost 200 MiB under
    --engine tshark); small records are rebuilt byte for byte as before."""
    import tracemalloc
    from kscc_traffic.engines.tshark import _group_records
    small = _group_records(["4", "2"], ["2", "1"], ["239.1.2.3", "239.1.2.4"], 4)
    assert small == bytes([4, 0, 0, 2, 239, 1, 2, 3]) + bytes(8) + bytes([2, 0, 0, 1, 239, 1, 2, 4]) + bytes(4)
    tracemalloc.start()
    try:
        big = _group_records(["4"] * 200, ["65535"] * 200, ["ff02::1:3"] * 200, 16)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(big) == 65535 and big[:4] == bytes([4, 0, 0xFF, 0xFF])
    assert peak < 1 << 20
