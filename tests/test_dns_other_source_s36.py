"""A DNS answer from another address than the one the client asked (a multihomed resolver
answering from its other address, a DNS redirect/NAT rule that does not rewrite the source) is
dropped by stub resolvers ("reply from unexpected source"): the query was judged
``blocked``/``no_answer`` and the report advised "allow DNS (UDP and TCP 53)", while the answer
had arrived, as a flow of its own judged ``ok`` (newcomer 35's
ipv6_dns_answer_from_other_addr.pcap). Now the query is ``blocked``/``wrong_source`` naming the
address the answer came from, that answer's flow ``unclassified``/``wrong_source`` (no answered
lookup of its own), and the advice is the resolver's source address or the NAT rule; IPv4 and
IPv6, whole, in chunks (the two flows leaving with different batches too) and with the tshark
engine."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR

from chunkcmp import RULES, assert_same, chunked, row, whole, write
from kscc_traffic import chunked as chunked_mod
from kscc_traffic.analyze import analyze_file
from kscc_traffic.classify import OTHER_SOURCE, OTHER_SOURCE_ANSWER, OTHER_SOURCE_WHY
from kscc_traffic.report import DNS_WRONG_SOURCE_FIX, dns_advice
from pcapbuild import CLIENT_MAC, SERVER_MAC, udp

NAME = "eu1.ksc.kaspersky.com"
V4 = dict(c="192.0.2.10", res="203.0.113.53", other="192.0.2.1", addr="203.0.113.10", qtype="A")
V6 = dict(c="2001:db8:1::10", res="2001:db8:cafe::53", other="2001:db8:1::1", addr="2001:db8:cafe::10",
          qtype="AAAA")


def _q(txid, qtype, name=NAME):
    return bytes(DNS(id=txid, rd=1, qd=DNSQR(qname=name, qtype=qtype)))


def _r(txid, qtype, addr, name=NAME):
    return bytes(DNS(id=txid, qr=1, rd=1, ra=1, qd=DNSQR(qname=name, qtype=qtype),
                     an=DNSRR(rrname=name, type=qtype, rdata=addr, ttl=60)))


def _query(net, port, txid, t):
    return udp((net["c"], port), (net["res"], 53), _q(txid, net["qtype"]), t=t)


def _answer(net, port, txid, t, src=None):
    """The answer to ``txid`` from ``src`` (default: the other address, not the one asked)."""
    return udp((src or net["other"], 53), (net["c"], port), _r(txid, net["qtype"], net["addr"]), t=t,
               src_mac=SERVER_MAC, dst_mac=CLIENT_MAC)


def _dns(df):
    return df[(df["resp_p"] == 53) & (df["proto"] == "udp")]


def _filler(t0, t1, step=0.25):
    """Datagrams of another client (not DNS) every ``step`` s: the capture's clock moves, chunk by chunk."""
    out, t, k = [], t0, 0
    while t < t1:
        out.append(udp(("192.0.2.77", 50000 + k % 7), ("198.51.100.7", 9999), b"f" * 40, t=t))
        t += step
        k += 1
    return out


@pytest.mark.parametrize("net", [V4, V6], ids=["ipv4", "ipv6"])
def test_an_answer_from_another_address_is_named(tmp_path, net):
    recs = [_query(net, 40001, 0x2976, 1000.0), _answer(net, 40001, 0x2976, 1000.0002)]
    path = write(tmp_path, recs, "other.pcap")
    fl, _ = whole(path)
    q = row(fl, orig_h=net["c"], resp_h=net["res"])
    a = row(fl, orig_h=net["c"], resp_h=net["other"])
    what = f"ID 0x2976 for {NAME} {net['qtype']}"
    assert (q["purpose"], q["verdict"], q["reason"]) == ("dns", "blocked", "wrong_source")
    assert q["detail"] == (f"{OTHER_SOURCE}: its answer ({what}) came from {net['other']} (flow {a['uid']}), not "
                           f"from {net['res']}, the address asked; {OTHER_SOURCE_WHY}")
    assert (a["purpose"], a["verdict"], a["reason"]) == ("dns", "unclassified", "wrong_source")
    client = f"[{net['c']}]:40001" if ":" in net["c"] else f"{net['c']}:40001"
    assert a["detail"] == (f"{OTHER_SOURCE_ANSWER}: the answer ({what}) to the query from {client} to {net['res']} "
                           f"(flow {q['uid']}), which the client drops; judged on that query's flow, not counted "
                           "as an answered lookup")
    # (the answer's own columns stay what it held)
    assert (a["dns_rcode"], a["dns_answers"]) == ("NOERROR", net["addr"])
    # no DNS exchange counted ok; the advice is the resolver's source, not allowing DNS
    assert sorted(_dns(fl)["verdict"]) == ["blocked", "unclassified"]
    advice = dns_advice(fl, RULES)
    assert advice["reasons"] == "wrong_source"
    assert advice["fix"] == DNS_WRONG_SOURCE_FIX
    assert "allow DNS" not in advice["fix"]


def test_the_report_says_so(tmp_path):
    from kscc_traffic.cli import app
    from typer.testing import CliRunner
    recs = [_query(V4, 40002, 0x1111, 1000.0), _answer(V4, 40002, 0x1111, 1000.0003)]
    path = write(tmp_path, recs, "report.pcap")
    out = CliRunner().invoke(app, ["analyze", str(path)], env={"COLUMNS": "400"}).output
    flat = " ".join(out.split())    # (the advice's lines wrapped at the terminal's width)
    assert f"dns (blocked: wrong_source): {DNS_WRONG_SOURCE_FIX} Flagged flows" in flat
    assert "allow DNS" not in out


def test_another_transaction_id_stays_no_answer(tmp_path):
    """Paired by transaction ID: of two queries answered from another address, the one whose
    answer has another ID stays no_answer (and that answer ok: no query of its own to pair)."""
    recs = [_query(V4, 40003, 0x1234, 1000.0), _answer(V4, 40003, 0x4321, 1000.0002),
            _query(V4, 40013, 0x1313, 1000.5), _answer(V4, 40013, 0x1313, 1000.5002)] + _filler(1002.0, 1002.1)
    fl, _ = whole(write(tmp_path, recs, "id.pcap"))
    q = row(fl, orig_h=V4["c"], orig_p=40003, resp_h=V4["res"])
    a = row(fl, orig_h=V4["c"], orig_p=40003, resp_h=V4["other"])
    assert (q["verdict"], q["reason"], q["detail"]) == ("blocked", "no_answer", "DNS query without an answer")
    assert (a["verdict"], a["reason"], a["detail"]) == ("ok", "", "")
    assert row(fl, orig_p=40013, resp_h=V4["res"])["reason"] == "wrong_source"
    assert row(fl, orig_p=40013, resp_h=V4["other"])["reason"] == "wrong_source"


def test_another_question_or_port_or_a_late_answer_stays_no_answer(tmp_path):
    recs = [_query(V4, 40004, 0x0101, 1000.0),
            udp((V4["other"], 53), (V4["c"], 40004), _r(0x0101, "A", V4["addr"], name="other.example"),
                t=1000.0002, src_mac=SERVER_MAC, dst_mac=CLIENT_MAC),
            _query(V4, 40005, 0x0202, 1001.0), _answer(V4, 40006, 0x0202, 1001.0002),
            _query(V4, 40007, 0x0303, 1002.0), _answer(V4, 40007, 0x0303, 1008.0),
            _query(V4, 40014, 0x1414, 1003.0), _answer(V4, 40014, 0x1414, 1007.9)] + _filler(1010.0, 1010.1)
    fl, _ = whole(write(tmp_path, sorted(recs, key=lambda r: r[0]), "miss.pcap"))
    qs = fl[(fl["resp_h"] == V4["res"])]
    # (the last one's answer came 4.9 s after it: within OTHER_SOURCE_S, paired)
    assert qs["reason"].tolist() == ["no_answer"] * 3 + ["wrong_source"]
    assert fl[fl["resp_h"] == V4["other"]]["verdict"].tolist() == ["ok", "ok", "unclassified", "ok"]


def test_an_answer_from_the_address_asked_is_ok(tmp_path):
    """A lookup answered from the address asked is ok as before, beside one answered from another
    address (the client asking both resolvers from one port: the answer is the asked one's)."""
    recs = [_query(V4, 40008, 0x5555, 1000.0), _answer(V4, 40008, 0x5555, 1000.0002, src=V4["res"]),
            _query(V4, 40015, 0x1515, 1000.5), _answer(V4, 40015, 0x1515, 1000.5002),
            udp((V4["c"], 40016), ("203.0.113.54", 53), _q(0x1616, "A"), t=1001.0),
            _query(V4, 40016, 0x1616, 1001.0001),
            _answer(V4, 40016, 0x1616, 1001.0002, src="203.0.113.54")] + _filler(1003.0, 1003.1)
    fl, _ = whole(write(tmp_path, sorted(recs, key=lambda r: r[0]), "ok.pcap"))
    r = row(fl, orig_p=40008)      # (one flow: the answer is the query's own)
    assert (r["purpose"], r["verdict"], r["reason"], r["detail"], r["dns_answers"]) == ("dns", "ok", "", "", V4["addr"])
    assert row(fl, orig_p=40015, resp_h=V4["res"])["reason"] == "wrong_source"
    # (answered by the other resolver asked: its flow is two-way, no answer from another address;
    # the copy of the question sent to the first resolver got nothing, the client had its answer:
    # ok, session 36's retries of failed lookups, tests/test_dns_retry_s36.py)
    assert row(fl, orig_p=40016, resp_h="203.0.113.54")["verdict"] == "ok"
    q = row(fl, orig_p=40016, resp_h=V4["res"])
    assert (q["verdict"], q["reason"]) == ("ok", "")
    assert q["detail"].startswith("DNS query without an answer; the same name, asked of 203.0.113.54 ")


@pytest.mark.parametrize("net", [V4, V6], ids=["ipv4", "ipv6"])
def test_chunked_equals_whole_also_across_batches(tmp_path, net):
    """In small chunks the same as whole, also when the query and its answer would leave with
    different batches: the answer's flow ends before the query's (the query sent again 4 s later,
    same port and ID), or after it (the answer sent twice)."""
    recs = [_query(net, 41001, 0x0a0a, 1000.0), _answer(net, 41001, 0x0a0a, 1000.001),
            _query(net, 41001, 0x0a0a, 1004.0),
            _query(net, 41002, 0x0b0b, 1001.0), _answer(net, 41002, 0x0b0b, 1001.001),
            _answer(net, 41002, 0x0b0b, 1005.0)]
    recs += _filler(999.0, 1030.0)
    path = write(tmp_path, sorted(recs, key=lambda r: r[0]), "chunks.pcap")
    fl = assert_same(path, [300, 700, 2000])
    qs = fl[fl["resp_h"] == net["res"]]
    assert qs["reason"].tolist() == ["wrong_source", "wrong_source"]
    assert fl[fl["resp_h"] == net["other"]]["verdict"].tolist() == ["unclassified", "unclassified"]



def test_the_chunks_do_split_them_without_holding(tmp_path, monkeypatch):
    """(The capture above does cross batches: with nothing held, chunks of 300 bytes judge the
    query that was sent again without its answer, which left with an earlier batch.)"""
    recs = [_query(V4, 41001, 0x0a0a, 1000.0), _answer(V4, 41001, 0x0a0a, 1000.001),
            _query(V4, 41001, 0x0a0a, 1004.0)] + _filler(999.0, 1030.0)
    path = write(tmp_path, sorted(recs, key=lambda r: r[0]), "split.pcap")
    parts, _ = chunked(path, 300)
    assert row(parts, orig_p=41001, resp_h=V4["res"])["reason"] == "wrong_source"
    monkeypatch.setattr(chunked_mod._OtherSource, "hold", lambda self, flows, pending: flows)
    parts, _ = chunked(path, 300)
    assert row(parts, orig_p=41001, resp_h=V4["res"])["reason"] == "no_answer"
    assert row(parts, orig_p=41001, resp_h=V4["other"])["verdict"] == "ok"


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_the_tshark_engine_agrees(tmp_path):
    recs = [_query(V4, 40010, 0x0c0c, 1000.0), _answer(V4, 40010, 0x0c0c, 1000.0002),
            _query(V6, 40011, 0x0d0d, 1000.5), _answer(V6, 40011, 0x0d0d, 1000.5002),
            _query(V4, 40012, 0x0e0e, 1001.0), _answer(V4, 40012, 0x0f0f, 1001.0002)] + _filler(1003.0, 1003.1)
    path = write(tmp_path, recs, "ts.pcap")
    cols = ["uid", "purpose", "verdict", "reason", "detail"]
    a = analyze_file(path, RULES).flows[cols].reset_index(drop=True)
    b = analyze_file(path, RULES, engine="tshark").flows[cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert a["reason"].tolist() == ["wrong_source", "wrong_source", "wrong_source", "wrong_source", "no_answer", "", ""]


def test_an_answer_from_another_address_resolves_no_name_for_the_lookups_warning(tmp_path):
    """The answers the client dropped resolved nothing: no "Kaspersky names were resolved but no
    connection …" warning (which blames the host's own firewall), whole or in chunks; a lookup
    answered from the address asked still gives it."""
    recs = []
    for k in range(6):
        recs += [_query(V4, 42000 + k, 0x4200 + k, 1000.0 + 3 * k), _answer(V4, 42000 + k, 0x4200 + k, 1000.001 + 3 * k)]
    recs += _filler(1000.5, 1030.0, step=0.5)
    path = write(tmp_path, sorted(recs, key=lambda r: r[0]), "lookups.pcap")

    def said(a_warnings):
        return [w for w in a_warnings if "Kaspersky names were resolved" in w]
    _, a = whole(path)
    assert said(a.warnings) == []
    _, run = chunked(path, 400)
    assert said(run.stats.warnings) == []
    recs.append(_answer(V4, 42000, 0x4200, 1000.002, src=V4["res"]))
    path = write(tmp_path, sorted(recs, key=lambda r: r[0]), "lookups2.pcap")
    _, a = whole(path)
    # (that query answered, its copy from the other address pairs with nothing: both count)
    assert len(said(a.warnings)) == 1 and "(2 times, to 203.0.113.10)" in said(a.warnings)[0]
