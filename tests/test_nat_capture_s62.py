"""A capture taken on a NAT gateway itself, both sides in one file (newcomer s61 A), and an
IPv6-only agent through NAT64 (newcomer s61 B).

A. ``tcpdump -i any`` on a firewall that translates the agents' connections (PAT: another source
port outside) lists each attempt twice, from the client's address and from the NAT's; the SYNs
seen leaving on the outside, unanswered, prove the block is beyond this device. The two copies
are paired by the SYN's ISN (kscc_traffic.natpairs), each copy's detail says what it is, the
advice counts each attempt once and says where the block is (kscc_traffic.natadvice), one warning
gives the pair count. Look-alikes (two clients' SYNs with one ISN and one TTL, one side only, a
copy too late) pair nothing.

B. The blocked attempts of an IPv6-only agent to a NAT64 address: the advice names the NAT64
translation (prefix, the IPv4 server embedded) and says to check the gateway's IPv4 side.
"""
from __future__ import annotations

import io
import re

import pandas as pd
import pytest

pytest.importorskip("scapy")

from kscc_traffic import load_rules  # noqa: E402
from kscc_traffic.analyze import analyze_file, analyze_files  # noqa: E402
from kscc_traffic.chunked import ChunkedAnalysis  # noqa: E402
from kscc_traffic.classify import NAT_DROPPED, NAT_LEFT, NAT_OUTSIDE_COPY  # noqa: E402
from kscc_traffic.natadvice import nat64_fix, nat_counts, nat_fix  # noqa: E402
from kscc_traffic.report import readiness  # noqa: E402
from pcapbuild import dns_answer, eth, pcap_bytes  # noqa: E402
from scapy.layers.dns import DNS, DNSQR, DNSRR  # noqa: E402
from scapy.layers.inet import IP, TCP, UDP  # noqa: E402
from scapy.layers.inet6 import IPv6  # noqa: E402

INSIDE, OUTSIDE, KSC = "192.0.2.10", "198.51.100.129", "203.0.113.10"
INSIDE6, OUTSIDE6, KSC6 = "2001:db8:1::10", "2001:db8:ff::1", "2001:db8:ab::10"
NAME = "eu-ksc-xyz.ksc.kaspersky.com"
LAG = 0.00008                   # (the gateway forwards in 80 µs)


def _ip(src, dst, ttl, ip_id=None):
    if ":" in src:
        return IPv6(src=src, dst=dst, hlim=ttl)
    return IP(src=src, dst=dst, ttl=ttl, id=ip_id if ip_id is not None else 1)


def syns(src, sport, t0, isn, ttl, dst=KSC, dport=23101, id0=100):
    """(ts, frame) of an unanswered SYN sent 3 times (0, 1, 3 s after ``t0``) with one ISN."""
    return [(t0 + k, eth(_ip(src, dst, ttl, id0 + i) / TCP(sport=sport, dport=dport, flags="S", seq=isn)))
            for i, k in enumerate((0, 1, 3))]


def nat_attempt(t0, port, out_port, isn, inside=INSIDE, outside=OUTSIDE, server=KSC, ttl=128, lag=LAG):
    """One unanswered attempt as the gateway's every interface sees it: inside with the client's
    TTL, then translated (another source port, PAT) one hop less, ``lag`` s later."""
    inner = syns(inside, port, t0, isn, ttl, dst=server)
    outer = syns(outside, out_port, t0 + lag, isn, ttl - 1, dst=server)
    return inner + outer


def write(tmp_path, records, name="fw.pcap"):
    path = tmp_path / name
    path.write_bytes(pcap_bytes(sorted(records, key=lambda r: r[0])))
    return path


def write_pcapng(tmp_path, records, name="fw.pcapng"):
    from scapy.utils import PcapNgWriter
    path = tmp_path / name
    w = PcapNgWriter(str(path))
    for ts, frame in sorted(records, key=lambda r: r[0]):
        frame.time = ts
        w.write(frame)
    w.close()
    return path


def agent_rows(a):
    f = a.flows
    return f[f["purpose"] == "agent_connection"].sort_values(["ts_ns", "orig_h"]).reset_index(drop=True)


def nat_warnings(a) -> list[str]:
    return [w for st in a.stats.values() for w in st.warnings if "sides of a NAT" in w or "captured twice" in w]


def three_pat_attempts():
    recs = [dns_answer(NAME, KSC, 999.9)]
    for n in range(3):
        recs += nat_attempt(1000.0 + 10 * n, 50000 + n, 61000 + n, 0x1111_0000 + n)
    return recs


# --- A: both sides of a NAT in one capture ---------------------------------------------------------

def test_pat_copies_paired_said_once_and_advised_beyond_the_device(tmp_path):
    a = analyze_file(str(write(tmp_path, three_pat_attempts())))
    rows = agent_rows(a)
    assert len(rows) == 6 and set(rows["verdict"]) == {"blocked"}          # (each copy judged on its side)
    inside = rows[rows["orig_h"] == INSIDE].reset_index(drop=True)
    outside = rows[rows["orig_h"] == OUTSIDE].reset_index(drop=True)
    assert inside.loc[0, "detail"] == (
        "SYN sent 3 times, no answer; its SYNs left this device translated by its NAT as 198.51.100.129:61000, "
        "unanswered there too (the outside copy shows them leaving): the block is beyond this device, in an upstream "
        "firewall, at the provider or at the server")
    assert outside.loc[2, "detail"] == (
        "SYN sent 3 times, no answer; the NAT's translated copy of 192.0.2.10:50002's connection (captured on both "
        "sides of the NAT: the same SYN, one hop on; one connection, counted with its inside copy)")
    assert nat_warnings(a) == [
        "fw.pcap: 3 TCP connections were captured on both sides of a NAT (the inside copy and the NAT's translated "
        "one: the same SYN ISN, server and port a few ms apart, one hop less in TTL; the source port translated "
        "(PAT) in all; 192.0.2.10 -> 198.51.100.129 3 times): each is listed twice, its outside copy's detail naming "
        "the inside one: count each once; a SYN seen leaving unanswered on the outside left this device, the block "
        "is beyond it"]
    fix = readiness(a.flows).set_index("rule").loc["agent_connection", "fix"]
    assert fix == (
        "6 blocked flows are 3 connection attempts captured on both sides of a NAT (3 of them the NAT's translated "
        "copies, see each flow's detail): their SYNs were captured leaving this device translated by its NAT, "
        "unanswered: the block is beyond this device (an upstream firewall, the provider or the server; this device "
        "forwarded them); there: allow outbound TCP 23100-23199 to *.ksc.kaspersky.com (the whole range and any "
        "address in the mask; both can change)")


def test_table_summary_and_what_to_change_count_each_attempt_once(tmp_path):
    from typer.testing import CliRunner

    from kscc_traffic.cli import app
    path = write(tmp_path, three_pat_attempts())
    out = CliRunner().invoke(app, ["analyze", str(path)], catch_exceptions=False, terminal_width=400).output
    flat = re.sub(r"\s+", " ", out)
    assert ("7 flows: 1 ok, 6 blocked, 0 unexpected, 0 unclassified (3 of them are the NAT's translated copies of "
            "others, both sides of a NAT captured: 4 connections)") in flat
    assert "6 blocked flows are 3 connection attempts captured on both sides of a NAT" in flat
    # (the chunked summary's advice is the whole table's)
    assert "the block is beyond this device (an upstream firewall, the provider or the server" in flat


def test_jsonl_and_csv_read_back_give_the_same_advice(tmp_path):
    from typer.testing import CliRunner

    from kscc_traffic.cli import app
    path = write(tmp_path, three_pat_attempts())
    csv = CliRunner().invoke(app, ["analyze", str(path), "--format", "csv"], catch_exceptions=False).stdout
    back = pd.read_csv(io.StringIO(csv), keep_default_na=False)
    assert "nat_side" not in back.columns                  # (internal: no column added to the outputs)
    whole = readiness(analyze_file(str(path)).flows).set_index("rule").loc["agent_connection", "fix"]
    assert readiness(back).set_index("rule").loc["agent_connection", "fix"] == whole
    assert sum(NAT_OUTSIDE_COPY in d for d in back["detail"]) == 3


def test_html_report_says_the_copies(tmp_path):
    from kscc_traffic.html_report import render_html
    a = analyze_file(str(write(tmp_path, three_pat_attempts())))
    html = render_html(a.flows, load_rules(), captures={"fw.pcap": len(a.flows)})
    assert ('<p class="meta nat-copies">7 flows: 3 of them are the NAT&#x27;s translated copies of others, both '
            'sides of a NAT captured: 4 connections</p>') in html
    assert "6 blocked flows are 3 connection attempts captured on both sides of a NAT" in html


def test_pcapng_ipv6_and_chunks_pair_the_same(tmp_path):
    # IPv6 (no identification, hop limits), pcapng, 40 attempts: read in chunks of 4 KiB, the
    # copies leaving in one batch are paired as in the whole file
    recs = []
    for n in range(40):
        recs += nat_attempt(1000.0 + 7 * n, 40000 + n, 1024 + n, 0x0100_0000 * (n + 1) + 77,
                            inside=INSIDE6, outside=OUTSIDE6, server=KSC6, ttl=64)
    path = write_pcapng(tmp_path, recs)
    a = analyze_file(str(path))
    rows = agent_rows(a)
    assert len(rows) == 80
    assert sum(NAT_LEFT in d for d in rows["detail"]) == 40
    assert sum(NAT_OUTSIDE_COPY in d for d in rows["detail"]) == 40
    first = rows[rows["orig_p"] == 40000]["detail"].iloc[0]
    assert f"translated by its NAT as [{OUTSIDE6}]:1024," in first
    whole = sorted(rows["detail"])
    ca = ChunkedAnalysis(path, load_rules(), "fw.pcapng", chunk_bytes=4096)
    parts = pd.concat(list(ca.batches()), ignore_index=True)
    parts = parts[parts["purpose"] == "agent_connection"]
    assert len(parts) == 80
    assert sorted(parts["detail"]) == whole
    assert [w for w in ca.stats.warnings if "sides of a NAT" in w] == [
        w for w in nat_warnings(a) if "sides of a NAT" in w]
    assert "fw.pcapng: 40 TCP connections were captured on both sides of a NAT" in ca.stats.warnings[-1] or any(
        w.startswith("fw.pcapng: 40 TCP connections were captured on both sides of a NAT") for w in ca.stats.warnings)


def test_answered_outside_but_not_inside_the_nat_kept_the_answer(tmp_path):
    recs = [dns_answer(NAME, KSC, 999.9)]
    recs += nat_attempt(1000.0, 50000, 61000, 0x2222)
    # (the server's SYN-ACK reaches the outside three times; nothing goes back inside)
    synack = IP(src=KSC, dst=OUTSIDE, ttl=50) / TCP(sport=23101, dport=61000, flags="SA", seq=9, ack=0x2223)
    recs += [(1000.0 + k + 0.02, eth(synack)) for k in (0, 1, 3)]
    a = analyze_file(str(write(tmp_path, recs)))
    rows = agent_rows(a)
    inside = rows[rows["orig_h"] == INSIDE]["detail"].iloc[0]
    assert inside.endswith(f"; {NAT_DROPPED} (198.51.100.129:61000), but no answer came out on the inside: this "
                           "device (the NAT) did not forward it")
    assert NAT_LEFT not in inside
    # (no "the block is beyond this device" for it: the answer came back to this device)
    fix = readiness(a.flows).set_index("rule").loc["agent_connection", "fix"]
    assert "beyond this device" not in fix


def test_port_kept_pairs_said_once(tmp_path):
    # a NAT keeping the source port: the older warning says them (the same ports…), not a second
    # line; each copy's detail is marked all the same
    recs = [dns_answer(NAME, KSC, 999.9)]
    for n in range(3):
        recs += nat_attempt(1000.0 + 10 * n, 50000 + n, 50000 + n, 0x3333 + n)
    a = analyze_file(str(write(tmp_path, recs)))
    said = nat_warnings(a)
    assert len(said) == 1 and said[0].startswith("fw.pcap: 3 connections were captured twice, before and after a NAT")
    rows = agent_rows(a)
    assert sum(NAT_OUTSIDE_COPY in d for d in rows["detail"]) == 3


def test_look_alikes_pair_nothing(tmp_path):
    recs = [dns_answer(NAME, KSC, 999.9)]
    # two clients, one ISN (a fixed one), one TTL, the same moment: not a NAT's copy
    recs += syns("192.0.2.21", 50000, 1000.0, 7, 128) + syns("192.0.2.22", 50001, 1000.0 + LAG, 7, 128)
    # one hop apart but 50 ms late (past the 20 ms window)
    recs += syns("192.0.2.31", 50000, 1010.0, 99, 128) + syns(OUTSIDE, 60000, 1010.05, 99, 127)
    # another ISN
    recs += syns("192.0.2.41", 50000, 1020.0, 1234, 128) + syns(OUTSIDE, 60001, 1020.0 + LAG, 4321, 127)
    # IPv4 identifications that differ (a NAT keeps them)
    recs += syns("192.0.2.51", 50000, 1030.0, 555, 128, id0=10) + syns(OUTSIDE, 60002, 1030.0 + LAG, 555, 127, id0=90)
    a = analyze_file(str(write(tmp_path, recs)))
    rows = agent_rows(a)
    assert len(rows) == 8
    assert not any(NAT_OUTSIDE_COPY in d or NAT_LEFT in d for d in rows["detail"])
    assert nat_warnings(a) == []
    assert readiness(a.flows).set_index("rule").loc["agent_connection", "fix"].startswith("allow outbound TCP")


def test_one_side_only_gives_nothing(tmp_path):
    # only the outside of a PAT: nothing shows the translation
    recs = [dns_answer(NAME, KSC, 999.9)] + [r for n in range(3)
                                             for r in syns(OUTSIDE, 61000 + n, 1000.0 + 10 * n, 5000 + n, 127)]
    a = analyze_file(str(write(tmp_path, recs)))
    assert nat_warnings(a) == []
    assert not any(NAT_OUTSIDE_COPY in d for d in a.flows["detail"])


def test_the_two_sides_as_two_files_joined(tmp_path):
    recs = three_pat_attempts()
    ins = write(tmp_path, [r for r in recs if IP not in r[1] or r[1][IP].src != OUTSIDE], "inside.pcap")
    out = write(tmp_path, [r for r in recs if IP in r[1] and r[1][IP].src == OUTSIDE], "outside.pcap")
    a = analyze_files([str(ins), str(out)], file_sets="join")
    said = nat_warnings(a)
    assert len(said) == 1 and said[0].startswith(
        "inside.pcap .. outside.pcap: 3 TCP connections were captured on both sides of a NAT")
    assert sum(NAT_OUTSIDE_COPY in d for d in a.flows["detail"]) == 3
    # analysed apart, each file holds one side: nothing to pair
    apart = analyze_files([str(ins), str(out)], file_sets="separate")
    assert nat_warnings(apart) == []


def test_nat_fix_counts():
    base = "allow outbound TCP 23100-23199 to *.ksc.kaspersky.com"
    assert nat_fix(base, 5, 0, 0) == base
    some = nat_fix(base, 5, 1, 1)      # (4 attempts, 1 of them seen leaving)
    assert some == ("5 blocked flows are 4 connection attempts captured on both sides of a NAT (1 of them the NAT's "
                    "translated copy, see each flow's detail): allow outbound TCP 23100-23199 to *.ksc.kaspersky.com; 1 "
                    "of them was captured leaving this device translated by its NAT, unanswered: for it, the block is "
                    "beyond this device (an upstream firewall, the provider or the server; this device forwarded them)")


# --- B: NAT64 ----------------------------------------------------------------------------------------

def nat64_capture(tmp_path, gw="64:ff9b::cb00:710a"):
    v6 = "2001:db8::10"
    ans = DNS(id=5, qr=1, qd=DNSQR(qname=NAME, qtype="AAAA"), an=DNSRR(rrname=NAME, type="AAAA", ttl=60, rdata=gw))
    recs = [(999.9, eth(IPv6(src="2001:db8::53", dst=v6) / UDP(sport=53, dport=41000) / ans))]
    recs += [(1000.0 + k, eth(IPv6(src=v6, dst=gw) / TCP(sport=50000, dport=23101, flags="S", seq=9)))
             for k in (0, 1, 3)]
    return write(tmp_path, recs, "v6only.pcap")


def test_nat64_advice_names_the_translation(tmp_path):
    a = analyze_file(str(nat64_capture(tmp_path)))
    fix = readiness(a.flows).set_index("rule").loc["agent_connection", "fix"]
    assert fix == (
        "allow outbound TCP 23100-23199 over IPv6 through a NAT64 gateway (prefix 64:ff9b::/96, the IPv4 server "
        "address 203.0.113.10 embedded) to *.ksc.kaspersky.com (the whole range and any address in the mask; both "
        "can change); check the NAT64 gateway and its IPv4 side: it must reach 203.0.113.10 on TCP 23100-23199 (its "
        "IPv4 firewall rules and route)")


def test_nat64_local_use_prefix_and_table_summary(tmp_path):
    from typer.testing import CliRunner

    from kscc_traffic.cli import app
    path = nat64_capture(tmp_path, gw="64:ff9b:1::cb00:710b")
    out = CliRunner().invoke(app, ["analyze", str(path)], catch_exceptions=False, terminal_width=400).output
    flat = re.sub(r"\s+", " ", out)
    # (the last 32 bits are the IPv4 address only in a /96: said as a condition; newcomer s62 #1)
    assert ("over IPv6 through a NAT64 gateway (prefix 64:ff9b:1::/48, the IPv4 server address 203.0.113.11 "
            "(if the translator's prefix is a /96) embedded) to *.ksc.kaspersky.com") in flat


def test_nat64_fix_some_of_them():
    fix = nat64_fix("allow outbound TCP 23100-23199 to *.ksc.kaspersky.com", 3,
                    (1, ("64:ff9b::/96",), ("203.0.113.10",)), "tcp", "23100-23199")
    assert fix == ("allow outbound TCP 23100-23199 to *.ksc.kaspersky.com; 1 of them went through a NAT64 gateway "
                   "(prefix 64:ff9b::/96, the IPv4 server address 203.0.113.10 embedded): check the NAT64 gateway "
                   "and its IPv4 side: it must reach 203.0.113.10 on TCP 23100-23199 (its IPv4 firewall rules and "
                   "route)")


def test_the_two_sides_given_apart_are_named(tmp_path):
    # a list analysed capture by capture: each file holds one side, nothing is paired in it; one
    # warning names both files and says to join them
    recs = three_pat_attempts()
    ins = write(tmp_path, [r for r in recs if IP not in r[1] or r[1][IP].src != OUTSIDE], "inside.pcap")
    out = write(tmp_path, [r for r in recs if IP in r[1] and r[1][IP].src == OUTSIDE], "outside.pcap")
    a = analyze_files([str(ins), str(out)], file_sets="separate")
    assert a.stats[""].warnings == [
        "inside.pcap and outside.pcap: 3 TCP connections appear in both (the same SYN ISN, server and port a few ms "
        "apart, one hop less in TTL on the second; 192.0.2.10 -> 198.51.100.129 3 times): they are the inside and "
        "outside of a NAT, each connection listed once in each; analyse them together (--file-set join) to have each "
        "pair said, counted once, and an unanswered SYN seen leaving told from a block on the NAT"]
    # (the other way round: the inside still named first)
    b = analyze_files([str(out), str(ins)], file_sets="separate")
    assert b.stats[""].warnings[0].startswith("inside.pcap and outside.pcap: 3 TCP connections appear in both")
    # two captures of unrelated clients: nothing
    other = write(tmp_path, syns("192.0.2.77", 50000, 1000.0, 0x1111_0000, 64), "other.pcap")
    assert "" not in analyze_files([str(ins), str(other)], file_sets="separate").stats


def test_tshark_engine_and_reference(tmp_path):
    # the tshark engine's whole-capture path marks the copies too; and Wireshark's own dissection
    # shows each pair's two SYNs with one raw ISN (tcp.seq_raw), another source port, one hop apart
    import shutil
    import subprocess
    if not shutil.which("tshark"):
        pytest.skip("tshark is not installed")
    path = write(tmp_path, three_pat_attempts())
    a = analyze_file(str(path), engine="tshark")
    rows = agent_rows(a)
    assert sum(NAT_OUTSIDE_COPY in d for d in rows["detail"]) == 3
    assert sum(NAT_LEFT in d for d in rows["detail"]) == 3
    out = subprocess.run(["tshark", "-r", str(path), "-Y", "tcp.flags.syn == 1", "-T", "fields", "-e", "ip.src",
                          "-e", "tcp.srcport", "-e", "tcp.seq_raw", "-e", "ip.ttl"],
                         capture_output=True, text=True, check=True).stdout.split("\n")
    seen = {}
    for line in filter(None, out):
        src, port, isn, ttl = line.split("\t")
        seen.setdefault(int(isn), set()).add((src, int(port), int(ttl)))
    assert seen[0x1111_0000] == {(INSIDE, 50000, 128), (OUTSIDE, 61000, 127)}


def test_second_process_gives_the_same(tmp_path):
    from typer.testing import CliRunner

    from kscc_traffic.cli import app
    path = write(tmp_path, three_pat_attempts())
    one = CliRunner().invoke(app, ["analyze", str(path), "--format", "jsonl"], catch_exceptions=False).stdout
    two = CliRunner().invoke(app, ["analyze", str(path), "--format", "jsonl", "--jobs", "2"],
                             catch_exceptions=False).stdout
    assert one == two and one.count(NAT_OUTSIDE_COPY) == 3
