"""Newcomer 32: findings of a newcomer on a clean clone (see each test)."""
from __future__ import annotations

from scapy.all import DNS, DNSQR, DNSRR, ICMP, IP, UDP

from kscc_traffic import analyze, load_rules
from pcapbuild import eth
from checklistcheck import write as _write

RULES = load_rules()


# --- F1: a port unreachable sent by the flow's own client about the server's late answer -------
def _late_answer(tmp_path):
    """A client 192.0.2.10:40000 asks two resolvers, takes the first answer and refuses the slower
    one's with ICMP port unreachable (3/3) quoting that answer (resolver → client)."""
    q = DNS(id=7, rd=1, qd=DNSQR(qname="example.com"))
    a = DNS(id=7, qr=1, rd=1, ra=1, qd=DNSQR(qname="example.com"),
            an=DNSRR(rrname="example.com", rdata="203.0.113.80"))
    recs = []
    for k, res in enumerate(("198.51.100.53", "198.51.100.54")):
        recs.append((1000.0 + k * 0.0001, eth(IP(src="192.0.2.10", dst=res) / UDP(sport=40000, dport=53) / q)))
    fast = IP(src="198.51.100.53", dst="192.0.2.10") / UDP(sport=53, dport=40000) / a
    slow = IP(src="198.51.100.54", dst="192.0.2.10") / UDP(sport=53, dport=40000) / a
    err = IP(src="192.0.2.10", dst="198.51.100.54") / ICMP(type=3, code=3) / bytes(slow)
    recs += [(1000.03, eth(fast)), (1000.2, eth(slow)), (1000.2001, eth(err))]
    return _write(tmp_path, "late.pcap", recs)


def test_a_client_refusing_a_late_answer_is_not_the_server_unreachable(tmp_path):
    from kscc_traffic.unreachable import FROM_DESTINATION, delivery_error
    flows = analyze(_late_answer(tmp_path), RULES).set_index("resp_h")
    slow, fast = flows.loc["198.51.100.54"], flows.loc["198.51.100.53"]
    assert slow.icmp_unreachable == ("port unreachable (3/3) from 192.0.2.10, sent by the client itself, refusing "
                                     "the server's late answer (the client had stopped listening)")
    assert not slow.icmp_unreachable.endswith(FROM_DESTINATION)
    assert (slow.verdict, slow.reason, slow.detail) == ("ok", "", "")
    assert (fast.verdict, fast.icmp_unreachable) == ("ok", "")
    # (classify never sees it as an error that the datagram did not arrive)
    assert delivery_error(slow.icmp_unreachable) == ""
    assert delivery_error(slow.icmp_unreachable + "; packet too big (2/0) from 2001:db8::1") == ""
    assert delivery_error("port unreachable (3/3) from 198.51.100.54" + FROM_DESTINATION) \
        == "port unreachable (3/3) from 198.51.100.54" + FROM_DESTINATION


# --- F2: an L2TP data message carrying PPP LCP (no IP) stays on the outer UDP flow ---------------
def test_l2tp_ppp_lcp_stays_on_the_outer_udp_flow(tmp_path):
    """Between two 1701 ports: a control message (ZLB), two data messages carrying PPP LCP echo
    request/reply (protocol 0xC021, no IP) and one carrying IPv4 (a DNS query inside). The LCP
    frames are counted on the tunnel's UDP flow (as tshark does), not dropped; the IP one is
    decoded as its inner packet."""
    a, b = "198.51.100.1", "198.51.100.2"
    ctrl = b"\xc8\x02\x00\x0c\x00\x01\x00\x00\x00\x00\x00\x00"
    lcp_req = b"\x00\x02\x00\x01\x00\x02" + b"\xff\x03\xc0\x21" + b"\x09\x01\x00\x08\x00\x00\x00\x00"
    lcp_rep = b"\x00\x02\x00\x01\x00\x02" + b"\xff\x03\xc0\x21" + b"\x0a\x01\x00\x08\x00\x00\x00\x00"
    inner = IP(src="192.0.2.10", dst="192.0.2.53") / UDP(sport=40000, dport=53) / DNS(id=1, qd=DNSQR(qname="a.example"))
    data = b"\x00\x02\x00\x01\x00\x02" + b"\xff\x03\x00\x21" + bytes(inner)
    recs = [(1000.0, eth(IP(src=a, dst=b) / UDP(sport=1701, dport=1701) / ctrl)),
            (1001.0, eth(IP(src=a, dst=b) / UDP(sport=1701, dport=1701) / lcp_req)),
            (1001.1, eth(IP(src=b, dst=a) / UDP(sport=1701, dport=1701) / lcp_rep)),
            (1002.0, eth(IP(src=a, dst=b) / UDP(sport=1701, dport=1701) / data))]
    flows = analyze(_write(tmp_path, "l2tp.pcap", recs), RULES).set_index("resp_p")
    tun = flows.loc[1701]
    assert (tun.orig_h, tun.orig_pkts, tun.orig_bytes, tun.resp_pkts, tun.resp_bytes) == (a, 2, 30, 1, 18)
    assert round(float(tun.duration), 3) == 1.1
    assert flows.loc[53].orig_h == "192.0.2.10"


# --- F3: a missing capture fails before the heavy imports ----------------------------------------
def test_a_missing_capture_fails_before_pandas_is_imported(tmp_path):
    """``analyze``/``report`` of one capture that does not exist: the same ``Error:`` line and
    status 2 as before, without importing pandas, numpy or the classifier (~2 s of CPU)."""
    import os
    import subprocess
    import sys
    from conftest import ROOT
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("PYTHONWARNINGS", None)
    for args in (["analyze", "nope.pcap"], ["report", "nope.pcap", "--html", "r.html"]):
        r = subprocess.run([sys.executable, "-X", "importtime", "-m", "kscc_traffic", *args], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
        lines = r.stderr.splitlines()
        imported = {x.rsplit("|", 1)[1].strip() for x in lines if x.startswith("import time:")}
        assert (r.returncode, [x for x in lines if not x.startswith("import time:")]) == \
            (2, ["Error: nope.pcap: no such file"])
        assert not {m for m in imported if m.split(".")[0] in ("pandas", "numpy")}
        assert "kscc_traffic.classify" not in imported
        assert not (tmp_path / "r.html").exists()


# --- F4: the default capture filter passes IGMP (IPv4 multicast group joins) ---------------------
def test_default_filter_passes_igmp_reports(tmp_path):
    """An IGMPv2 membership report (IP protocol 2, router alert option) to 239.255.255.250 and an
    IGMPv3 report to 224.0.0.22 pass the default filter (libpcap through tcpdump, and scapy's
    compile: the text compiles); TCP 22 does not."""
    import shutil
    import subprocess
    import pytest
    from scapy.all import Ether, TCP, rdpcap, wrpcap
    from scapy.arch.common import compile_filter
    from scapy.contrib.igmp import IGMP
    from scapy.layers.inet import IPOption_Router_Alert
    from kscc_traffic.rules import bpf_filter
    expr = bpf_filter(RULES)
    assert " or igmp or " in expr and compile_filter(expr, linktype=1).bf_len > 0
    tcpdump = shutil.which("tcpdump")
    if not tcpdump:
        pytest.skip("tcpdump not installed")
    frames = [Ether() / IP(src="192.0.2.10", dst="239.255.255.250", ttl=1, options=[IPOption_Router_Alert()])
              / IGMP(type=0x16, gaddr="239.255.255.250"),
              Ether() / IP(src="192.0.2.10", dst="224.0.0.22", ttl=1, proto=2, options=[IPOption_Router_Alert()])
              / bytes.fromhex("2200f9fb0000000104000000efffffa"  "0"),
              Ether() / IP(src="192.0.2.10", dst="192.0.2.20") / TCP(sport=50000, dport=22, flags="S")]
    for i, f in enumerate(frames):
        f.time = 1772442000 + i
    src, dst = tmp_path / "in.pcap", tmp_path / "out.pcap"
    wrpcap(str(src), frames)
    r = subprocess.run([tcpdump, "-r", str(src), "-w", str(dst), expr], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert sorted(int(p.time) - 1772442000 for p in rdpcap(str(dst))) == [0, 1]


# --- F5: the checklist names a purpose's id `purpose`, as the flow table; `rule` kept ------------
def test_readiness_has_a_purpose_column_for_a_merge(tmp_path):
    from conftest import ROOT
    from kscc_traffic import readiness
    flows = analyze(ROOT / "samples" / "captures" / "blocked_agent.pcap", RULES)
    for chk in (readiness(flows, RULES), readiness(flows.iloc[:0], RULES)):
        assert chk["purpose"].tolist() == chk["rule"].tolist() == [r.id for r in RULES.rules]
        assert str(chk["purpose"].dtype) == "object"
    chk = readiness(flows, RULES)
    both = flows.merge(chk[["purpose", "status"]], on="purpose")
    known = flows[flows.purpose.isin(chk.purpose)]
    assert len(both) == len(known) > 0
    assert set(both.loc[both.verdict == "blocked", "status"]) == {"blocked"}


# --- F6: "What to change" entries wrap with a hanging indent --------------------------------------
def test_advice_entries_wrap_with_a_hanging_indent():
    """At 80 and 200 columns each entry starts 2 columns in, its continuation lines 4: no line of
    the lists starts at column 0, and every entry (one per purpose) starts with its purpose."""
    from conftest import ROOT
    from kscc_traffic.report import render_table
    flows = analyze(ROOT / "samples" / "captures" / "blocked_agent.pcap", RULES)
    for width in (80, 200):
        text = render_table(flows, RULES, width=width).splitlines()
        at = text.index("What to change:")
        end = next(i for i in range(at + 1, len(text)) if not text[i].startswith(" "))
        block = text[at + 1:end]
        starts = [x for x in block if not x.startswith("    ")]
        assert [x.split(" (")[0].strip() for x in starts][:3] == ["agent_connection", "activation", "klsctunnel"]
        assert all(x.startswith("  ") and x[2] != " " for x in starts)
        assert len(block) > len(starts) and all(len(x) <= width for x in block)


# --- F7: an output file whose extension names another format: a warning --------------------------
def test_output_extension_naming_another_format_warns(tmp_path):
    import json
    import os
    import subprocess
    import sys
    from conftest import ROOT
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    sample = ROOT / "samples" / "captures" / "blocked_agent.pcap"

    def run(*args):
        return subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", str(sample), *args], env=env,
                              capture_output=True, text=True, timeout=300)
    out = tmp_path / "x.csv"
    r = run("-f", "jsonl", "-o", str(out))
    assert (r.returncode, r.stderr) == (1, f"Warning: {out}: its extension .csv names csv, but --output gets jsonl "
                                           "(--format jsonl); --format csv writes that\n")
    assert json.loads(out.read_text().splitlines()[0])["orig_h"] == "192.0.2.10"
    r = run("-f", "csv", "-o", str(out))
    assert (r.returncode, r.stderr) == (1, "")
    page = tmp_path / "x.html"
    r = run("-o", str(page))
    assert r.returncode == 1 and r.stderr == (
        f"Warning: {page}: its extension .html names html, but --output gets table (--format table); the HTML "
        "report is `kscc-traffic report CAPTURE --html FILE`\n")


# --- F8: TLS-looking bytes that hold no ClientHello are not called one --------------------------
def test_http_answer_to_bytes_that_are_no_client_hello(tmp_path):
    """A bogus record (16 03 01, 16 bytes of 0xff: no ClientHello can be read) answered HTTP 400:
    "to the client's TLS-looking bytes"; a real ClientHello answered so keeps "to the ClientHello"."""
    from scapy.layers.tls.all import TLS, TLSClientHello
    from scapy.layers.tls.extensions import ServerName, TLS_Ext_ServerName
    from pcapbuild import tcp_session
    ans = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
    bogus = b"\x16\x03\x01\x00\x10" + b"\xff" * 16
    hello = bytes(TLS(msg=[TLSClientHello(ext=[TLS_Ext_ServerName(
        servernames=[ServerName(servername=b"x.ksc.kaspersky.com")])])]))
    recs = (tcp_session(("192.0.2.10", 50000), ("203.0.113.10", 23101), c_data=bogus, s_data=ans)
            + tcp_session(("192.0.2.10", 50001), ("203.0.113.10", 23101), t0=1001.0, c_data=hello, s_data=ans))
    flows = analyze(_write(tmp_path, "tls400.pcap", recs), RULES).set_index("orig_p")
    assert flows.loc[50000, "detail"] == ("the server answered HTTP (400) to the client's TLS-looking bytes where "
                                          "TLS is documented")
    assert flows.loc[50001, "detail"] == "the server answered HTTP (400) to the ClientHello where TLS is documented"
    assert list(flows.verdict) == ["unexpected", "unexpected"]
