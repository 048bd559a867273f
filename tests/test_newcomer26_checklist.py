"""Newcomer of session 26 (a support engineer): what the readiness checklist says of a capture cut
short, of a table read back from the tool's own CSV, of several captures, of nameless traffic of
other programs on 443, and advice said twice. Each test builds small captures and checks the
checklist (readiness() and the streamed TableSummary), the table report and the HTML report."""
from __future__ import annotations

import re

from scapy.all import IP, TCP
from scapy.layers.dns import DNS, DNSQR, DNSRR

from kscc_traffic import analyze, load_rules, readiness
from kscc_traffic.html_report import render_html
from kscc_traffic.report import CUT_SHORT_NOTE, render_table
from conftest import ROOT
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth, pcap_bytes, udp
from checklistcheck import checklists as _rows, finding as _finding, page_text as _text

RULES = load_rules()


def _write(tmp_path, name, records):
    path = tmp_path / name
    path.write_bytes(pcap_bytes(sorted(records, key=lambda x: x[0])))
    return path


def _write_tmp(name, records):
    """``records`` as a pcap in a fresh temporary folder (removed at exit)."""
    import atexit
    import shutil
    import tempfile
    from pathlib import Path
    d = Path(tempfile.mkdtemp())
    atexit.register(shutil.rmtree, d, True)
    return _write(d, name, records)


def _checklist_html(flows):
    page = render_html(flows, RULES, charts=False)
    return page, _text(re.search(r'<section id="checklist">(.*?)</section>', page, re.S).group(1))


def _dns(name, address, t, port=41000):
    """The resolver's answer ``name`` -> ``address`` to the client."""
    ans = DNS(id=port, qr=1, qd=DNSQR(qname=name), an=DNSRR(rrname=name, type="A", ttl=60, rdata=address))
    return udp(("192.0.2.53", 53), ("192.0.2.10", port), bytes(ans), t=t, src_mac=SERVER_MAC, dst_mac=CLIENT_MAC)


def _query(name, t, port=42000):
    """A DNS query for ``name`` from the client (no answer follows)."""
    return udp(("192.0.2.10", port), ("192.0.2.53", 53), bytes(DNS(id=port, rd=1, qd=DNSQR(qname=name))), t=t)


def _syn(client_port, server, port, t):
    return (t, eth(IP(src="192.0.2.10", dst=server) / TCP(sport=client_port, dport=port, flags="S", seq=7)))


# --- 1: a capture that ends right after a SYN / a DNS query ------------------------------------------
def test_a_capture_cut_right_after_a_syn_asks_for_a_longer_capture_not_an_open_port(tmp_path):
    # the name resolved, then the agent's SYN is the capture's last packet (cut_after_syn1.pcap)
    flows = analyze(_write(tmp_path, "cut.pcap", [_dns("eu1.ksc.kaspersky.com", "203.0.113.10", 1000.0),
                                                  _syn(50000, "203.0.113.10", 23101, 1000.05)]), RULES)
    f = flows[flows.purpose == "agent_connection"].iloc[0]
    # the flow keeps its verdict (Zeek's S0), its detail says the capture ended
    assert (f.verdict, f.reason) == ("blocked", "no_answer")
    assert "the capture ended 0.000 s after its first packet" in f.detail
    for row in _rows(flows):
        r = row.loc["agent_connection"]
        assert (r.status, r.status_note, r.blocked) == ("blocked", CUT_SHORT_NOTE, 1)
        assert "allow outbound" not in r.fix and "firewall" not in r.fix
        assert r.fix.startswith("this attempt on TCP 23100-23199 was unanswered when the capture ended, less "
                                "than 1 s after it began")
        assert "Capture longer" in r.fix
        assert row.loc["activation", "status_note"] == ""
    text = render_table(flows, RULES, width=200)
    assert "blocked (the capture ended before an answer could come)" in text
    assert "allow outbound" not in text
    assert "agent_connection (blocked: no_answer): this attempt" \
        in " ".join(text.split())
    page, chk = _checklist_html(flows)
    assert "allow outbound" not in page
    assert "✕ blocked the capture ended before an answer could come" in " ".join(chk.split())
    why = " ".join(_finding(flows, "agent_connection").split())
    assert "a firewall drops it" not in why and "began less than 1 s before the capture ended" in why


def test_other_blocked_flows_of_the_purpose_are_advised_the_cut_one_said_apart(tmp_path):
    # a SYN sent 3 times without an answer 10 s before the end (a real block), and one cut short
    syns = [_syn(50001, "203.0.113.10", 23102, 990.0 + k) for k in (0, 1, 3)]
    flows = analyze(_write(tmp_path, "mixed.pcap", [_dns("eu1.ksc.kaspersky.com", "203.0.113.10", 989.0),
                                                    *syns, _syn(50000, "203.0.113.10", 23101, 1000.05)]), RULES)
    for row in _rows(flows):
        r = row.loc["agent_connection"]
        assert (r.status, r.status_note, r.blocked) == ("blocked", "", 2)
        assert r.fix.startswith("allow outbound TCP 23100-23199 to *.ksc.kaspersky.com")
        assert r.fix.endswith("; of the 2 blocked, 1 was unanswered when the capture ended less than 1 s after it began "
                              "(maybe before an answer could come: not counted in this advice)")


def test_the_ok_ones_are_not_called_the_others_that_worked_beside_a_cut_attempt(tmp_path):
    # the sample's agent connection worked, then a SYN of another is the capture's last packet:
    # not "the others worked: compare clients, addresses and ports"
    from scapy.utils import rdpcap
    base = [(float(p.time), bytes(p)) for p in rdpcap(str(ROOT / "samples" / "captures" / "baseline_agent.pcap"))]
    end = max(t for t, _ in base)
    flows = analyze(_write(tmp_path, "ok_cut.pcap", [*base, _syn(50000, "203.0.113.10", 23101, end + 0.05)]), RULES)
    for row in _rows(flows):
        r = row.loc["agent_connection"]
        assert (r.ok, r.blocked, r.status_note) == (1, 1, CUT_SHORT_NOTE)
        assert r.fix.startswith("1 of 2 flows ok, 1 blocked: this attempt on TCP 23100-23199 was unanswered")
        assert "compare clients" not in r.fix and "allow outbound" not in r.fix


def test_a_dns_query_the_capture_cut_short_asks_for_a_longer_capture(tmp_path):
    flows = analyze(_write(tmp_path, "dnscut.pcap", [_dns("eu1.ksc.kaspersky.com", "203.0.113.10", 1000.0),
                                                     _query("eu1.ksc.kaspersky.com", 1000.2)]), RULES)
    f = flows[(flows.purpose == "dns") & (flows.verdict == "blocked")].iloc[0]
    assert f.reason == "no_answer" and "the capture ended" in f.detail
    text = " ".join(render_table(flows, RULES, width=200).split())
    assert "dns (blocked: no_answer): 1 query was unanswered when the capture ended, less than 1 s after it " \
           "was sent (maybe before an answer could come): capture longer" in text
    assert "allow DNS" not in text
    why = " ".join(_finding(flows, "dns").split())
    assert "allow DNS" not in why and "capture longer" in why


# --- 2: the public helpers on a table read back from the tool's own CSV -------------------------------
SAMPLES = ROOT / "samples" / "captures"


def _csv_round_trip(flows):
    import io

    import pandas as pd

    from kscc_traffic.report import write_csv
    buf = io.StringIO()
    write_csv(flows, buf)
    buf.seek(0)
    return pd.read_csv(buf)


def test_readiness_and_server_names_read_the_tools_own_csv_back():
    flows = analyze([SAMPLES / "blocked_agent.pcap", SAMPLES / "hostile_names.pcap",
                     SAMPLES / "intercepted_tls12.pcap"], RULES)
    back = _csv_round_trip(flows)
    assert back["sni"].isna().any() and back["detail"].isna().any()   # (empty cells: NaN)
    # readiness(): an AttributeError 'float' object has no attribute 'split' before; now the same
    # checklist as the table's, and the rules may be left out (the bundled ones)
    want = readiness(flows, RULES)
    for got in (readiness(back, RULES), readiness(back)):
        assert got.to_dict("records") == want.to_dict("records")
    assert "blocked" in set(want["status"])
    # server_names(): a TypeError "sequence item 0: expected str instance, float found" before
    import kscc_traffic
    names, names_back = kscc_traffic.server_names(flows, RULES), kscc_traffic.server_names(back, RULES)
    assert len(names_back) == len(names) > 0
    cols = ["purpose", "name_source", "addresses", "flows", "ok", "blocked", "unexpected"]
    assert names_back[cols].to_dict("records") == names[cols].to_dict("records")
    assert "eu1.ksc.kaspersky.com" in set(names_back["server_name"])
    assert not names_back["server_name"].isna().any()


def test_readiness_of_a_table_without_its_columns_says_which():
    import pandas as pd
    import pytest
    with pytest.raises(ValueError, match=r"no column 'purpose', 'verdict', 'reason'"):
        readiness(pd.DataFrame(), RULES)      # 15 × "not seen" before
    with pytest.raises(ValueError, match=r"no column 'reason' \(it needs purpose, verdict, reason"):
        readiness(pd.DataFrame({"purpose": ["discovery"], "verdict": ["ok"]}))
    import kscc_traffic
    with pytest.raises(ValueError, match=r"server_names: the flow table has no column 'query'"):
        kscc_traffic.server_names(pd.DataFrame({"purpose": ["dns"], "verdict": ["ok"], "server_name": [""],
                                                "name_source": [""], "resp_h": ["192.0.2.53"]}))
    # an empty flow table of analyze() has its columns: every purpose "not seen"
    empty = pd.DataFrame({c: [] for c in kscc_traffic.COLUMNS})
    assert set(readiness(empty)["status"]) == {"not seen"}


def test_the_public_docs_say_what_readiness_takes_and_where_the_columns_are_described():
    import pydoc

    import kscc_traffic
    doc = kscc_traffic.readiness.__doc__
    assert ":raises ValueError:" in doc and "``transport``" in doc and "``purpose_text``" in doc
    assert "``status_note``" in doc
    style = kscc_traffic.style_readiness.__doc__
    assert "Now the same" not in style and "raised ``AttributeError" not in style
    # help(kscc_traffic.COLUMNS) showed dict's help: now the columns' own type says what they hold
    text = pydoc.render_doc(kscc_traffic.COLUMNS, renderer=pydoc.plaintext)
    assert "name -> (dtype, unit, description)" in text and "The flow table" in text
    assert isinstance(kscc_traffic.COLUMNS, dict) and kscc_traffic.COLUMNS["verdict"][0] == "object"


# --- 3: several captures, one checklist: the advice names where the flagged flows are ---------------
def test_several_captures_name_the_capture_of_the_blocked_flows():
    files = [SAMPLES / "baseline_agent.pcap", SAMPLES / "blocked_agent.pcap"]
    flows = analyze(files, RULES)
    for row in _rows(flows):
        # "1 of 2 flows ok, 1 blocked (the others worked: compare clients, addresses and ports)" before,
        # the ok one being in the other capture
        assert row.loc["activation", "fix"].startswith(
            "1 of 2 flows ok, 1 blocked (in blocked_agent.pcap; the others worked, in another capture: compare the "
            "machines, addresses and ports): allow outbound TCP 27200-27299")
        # a purpose blocked in one capture only, nothing ok: where, then the advice
        assert row.loc["dp_ksn_proxy_tcp", "fix"].startswith("blocked in blocked_agent.pcap: this connection attempt")
        assert "compare clients" not in " ".join(row["fix"])
    text = " ".join(render_table(flows, RULES, width=200).split())
    assert ("The checklist is over both captures together: a purpose is blocked when a flow of any of them is"
            in text)
    page, chk = _checklist_html(flows)
    assert "The checklist is over both captures together" in " ".join(chk.split())
    assert "in blocked_agent.pcap; the others worked, in another capture" in " ".join(_finding(flows, "activation").split())
    # one capture: as before, no capture named, no note
    one = analyze(files[1:], RULES)
    for row in _rows(one):
        assert "blocked_agent.pcap" not in " ".join(row["fix"])
    assert "The checklist is over" not in render_table(one, RULES, width=200)


def test_blocked_and_ok_flows_in_the_same_capture_are_told_so():
    # the same blocked capture twice (two names): each purpose's ok and blocked flows in both
    import shutil
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:
        a, b = Path(d) / "a.pcap", Path(d) / "b.pcap"
        shutil.copy(SAMPLES / "baseline_agent.pcap", a)
        shutil.copy(SAMPLES / "blocked_agent.pcap", b)
        flows = analyze([a, b], RULES)
    # the blocked capture's agent_connection: one tls_failed, so ok ones elsewhere only; a copy of
    # the table with the blocked one moved to a.pcap has its ok one in the same capture
    moved = flows.copy()
    moved.loc[(moved.purpose == "activation") & (moved.verdict == "blocked"), "capture"] = "a.pcap"
    moved.loc[(moved.purpose == "activation") & (moved.verdict == "ok"), "capture"] = "a.pcap"
    for row in _rows(moved):
        assert row.loc["activation", "fix"].startswith(
            "1 of 2 flows ok, 1 blocked (in a.pcap; the others worked (some in the same capture): compare clients, "
            "addresses and ports): allow outbound")


# --- 4: nameless traffic of other programs on 443: the caveat in the row and first in the advice -----
def test_nameless_blocked_flows_on_443_say_so_in_the_row_and_first():
    from pcapbuild import tcp_session

    from kscc_traffic.report import NAMELESS_NOTE
    nameless = [_syn(50000, "198.51.100.7", 443, 1000.0 + k) for k in (0, 1, 3)]
    # (beside an agent's connection on a KSC-only port: with no KSC agent traffic at all, no purpose
    # is judged on other programs' flows, newcomer 28 F4)
    agent = tcp_session(("192.0.2.10", 50100), ("203.0.113.10", 23101), t0=990.0)
    alone = analyze(_write_tmp("alone.pcap", agent + nameless), RULES)
    for row in _rows(alone):
        r = row.loc["discovery"]
        assert (r.status, r.status_note) == ("blocked", NAMELESS_NOTE)
        assert r.fix.startswith("no name was seen for this server (no DNS answer, SNI or certificate): it may be "
                                "another program's")
    # beside another program's named HTTPS (host_mismatch): the caveat first, not after "For the blocked one"
    other = tcp_session(("192.0.2.10", 50001), ("198.51.100.8", 443), t0=1001.0)
    both = analyze(_write_tmp("both.pcap", [*agent, _dns("www.example.org", "198.51.100.8", 1000.5), *nameless,
                                            *other]), RULES)
    for row in _rows(both):
        r = row.loc["discovery"]
        assert (r.status, r.status_note, r.blocked, r.unexpected) == ("blocked", NAMELESS_NOTE, 1, 1)
        assert r.fix.startswith("no name was seen for the blocked flow's server (no DNS answer, SNI or certificate): "
                                "it may be another program's, or the agent's with its DNS answer cached (capture "
                                "from the agent's start to tell); if the agent's: 0 of 2 flows ok, 1 blocked, "
                                "1 unexpected (1 host_mismatch). For the blocked one: allow outbound HTTPS")
    text = " ".join(render_table(both, RULES, width=200).split())
    assert "blocked (no name seen on the blocked flows: maybe another program's)" in text
    page, chk = _checklist_html(both)
    assert "blocked no name seen on the blocked flows: maybe another program's" in " ".join(chk.split())
    from kscc_traffic.report import NOT_KSC_NOTE
    for row in _rows(analyze(_write_tmp("other.pcap", nameless), RULES)):
        assert (row.loc["discovery", "status"], row.loc["discovery", "status_note"]) == ("not seen", NOT_KSC_NOTE)


# --- 5: "exclude these names from inspection" said once for blocked and unexpected intercepted flows ---
def test_the_inspection_exclusion_is_said_once():
    flows = analyze(SAMPLES / "intercepted_tls12.pcap", RULES)
    for row in _rows(flows):
        fix = row.loc["activation", "fix"]
        assert fix.startswith("0 of 2 flows ok, 1 blocked, 1 unexpected (1 tls_intercepted). For the blocked one:")
        assert fix.count("exclude these names from inspection") == 1
        assert fix.count("a TLS-inspecting proxy sits in the path") == 1
        assert fix.endswith("For the unexpected one: this connection on TCP 27200-27299 was answered (the port is "
                            "open for it): tls_intercepted: a TLS-inspecting proxy's certificate, as for the blocked "
                            "one (see there)")
    text = " ".join(render_table(flows, RULES, width=200).split())
    assert text.count("exclude these names from inspection") == 1
    assert " ".join(_finding(flows, "activation").split()).count("exclude these names from inspection (*.ksc") == 1
