"""Break-it s39 (net 2): the leftovers of s39-net's DNS advice and tunnel timing.

1. The DNS advice's kinds (REFUSED, SERVFAIL, responses matching no query by transaction ID or
   by question) come from data columns (``dns_rcode``, the new ``dns_unmatched``), never from the
   detail, which quotes names from the packets: a name holding the words of the other kind, or
   of the capture-end note, changes nothing.
2. A blocked REFUSED / SERVFAIL flow's own detail says what the advice says.
3. A truncated UDP answer with part of the addresses for a needed name, no retry over TCP
   answered: ``ok``, with a note (glibc-based agents fail it when DNS over TCP is blocked); none
   when a retry over TCP was answered.
4. ``tunnel_close_s`` is the time from the proxy's 2xx to the proxy's own FIN/RST.
"""
from __future__ import annotations

import pytest

from chunkcmp import assert_same, write
from test_breakit_s39_net import NAME, _dns_rows, _reports, _tcp_answer, _udp_tc

# --- 1. the kinds from columns ---------------------------------------------------------------


def _mismatched(t, port, qid, kind, name):
    """A UDP lookup of NAME answered only by a response matching no query: ``kind`` 'id' (another
    transaction ID, for ``name``) or 'question' (the same ID, for ``name``)."""
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether
    up = Ether() / IP(src="192.0.2.10", dst="203.0.113.53") / UDP(sport=port, dport=53)
    down = Ether() / IP(src="203.0.113.53", dst="192.0.2.10") / UDP(sport=53, dport=port)
    rid = qid + 0x1000 if kind == "id" else qid
    return [(t, up / DNS(id=qid, rd=1, qd=DNSQR(qname=NAME))),
            (t + 0.01, down / DNS(id=rid, qr=1, rd=1, ra=1, qd=DNSQR(qname=name),
                                  an=DNSRR(rrname=name, ttl=60, rdata="203.0.113.7")))]


def _flows(tmp_path, recs):
    from test_breakit_s38_net import _filler
    from kscc_traffic.analyze import analyze_file
    from kscc_traffic.rules import load_rules
    rules = load_rules()
    return analyze_file(write(tmp_path, sorted(recs + _filler(99.0, 110.0), key=lambda r: r[0])), rules).flows, rules


#: names crafted to hold the words by which the other kind's detail goes on
POSING = {"id": "x, another question than asked; asked: y.example",
          "question": "x, a transaction ID no query had; asked: y.example"}


@pytest.mark.parametrize("kind,said", [
    ("id", "1 query was answered only with a transaction ID no query had"),
    ("question", "1 query was answered only for another question than asked (another name or type)"),
])
def test_a_name_posing_as_the_other_mismatch_changes_no_advice(tmp_path, kind, said):
    from kscc_traffic.report import dns_advice, dns_blocked_kinds
    flows, rules = _flows(tmp_path, _mismatched(100.0, 52100, 0x400, kind, POSING[kind]))
    d = flows[flows["purpose"] == "dns"].iloc[0]
    assert (d["verdict"], d["reason"], d["dns_rcode"]) == ("blocked", "no_answer", "")
    assert POSING[kind] in d["detail"]      # (the name is quoted there: read from the column only)
    kinds = dns_blocked_kinds(flows)
    assert (kinds["mismatch_id"], kinds["mismatch_question"]) == ((1, 0) if kind == "id" else (0, 1))
    assert dns_advice(flows, rules)["fix"].startswith(said + ", which the client drops")
    assert d["dns_unmatched"] == kind


def test_a_name_holding_the_capture_end_note_is_not_cut_short(tmp_path):
    # (the capture goes on 10 s after the lookup: not cut short, whatever the name quoted says)
    from kscc_traffic.report import dns_blocked_kinds
    name = "x. the capture ended 0.500 s after its first packet, maybe before an answer could come.y"
    flows, _ = _flows(tmp_path, _mismatched(100.0, 52101, 0x401, "id", name))
    d = flows[flows["purpose"] == "dns"].iloc[0]
    assert "maybe before an answer could come" in d["detail"]
    assert dns_blocked_kinds(flows)["mismatch_cut"] == 0
    assert d["dns_unmatched"] == "id"


def test_the_kinds_need_no_detail_column(tmp_path):
    # (a table read back without its detail, or whose details were rewritten, gives the same kinds)
    from kscc_traffic.report import dns_blocked_kinds
    _, _, _, flows = _reports(tmp_path, [("rcode", 5), ("rcode", 2), ("id", 0), ("question", 0), ("none", 0)])
    want = {"refused": 1, "servfail": 1, "mismatch_id": 1, "mismatch_question": 1, "mismatch_cut": 0,
            "no_answer": 3, "v6_only": 0, "fragments": 0, "icmp": 0,
                                        "icmp_closed": 0, "nxdomain": 0, "nxdomain_vendor": 0}
    assert dns_blocked_kinds(flows) == want
    assert dns_blocked_kinds(flows.drop(columns=["detail"])) == want
    assert dns_blocked_kinds(flows.assign(detail="DNS answer REFUSED for x")) == want
    assert flows["dns_unmatched"].tolist().count("id") == 1


def _tcp_other_question(t, port, qid):
    """A DNS over TCP lookup of NAME answered (same ID) for another name."""
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether
    c, s = "192.0.2.10", "203.0.113.53"

    def p(src, dst, sp, dp, **kw):
        load = kw.pop("load", b"")
        return Ether() / IP(src=src, dst=dst) / TCP(sport=sp, dport=dp, **kw) / load
    q = bytes(DNS(id=qid, rd=1, qd=DNSQR(qname=NAME)))
    a = bytes(DNS(id=qid, qr=1, rd=1, ra=1, qd=DNSQR(qname="other.example"),
                  an=DNSRR(rrname="other.example", ttl=60, rdata="203.0.113.9")))
    q, a = len(q).to_bytes(2, "big") + q, len(a).to_bytes(2, "big") + a
    return [(t, p(c, s, port, 53, flags="S", seq=1)), (t + 0.01, p(s, c, 53, port, flags="SA", seq=100, ack=2)),
            (t + 0.02, p(c, s, port, 53, flags="A", seq=2, ack=101)),
            (t + 0.03, p(c, s, port, 53, flags="PA", seq=2, ack=101, load=q)),
            (t + 0.04, p(s, c, 53, port, flags="PA", seq=101, ack=2 + len(q), load=a))]


def test_the_unmatched_column_over_tcp_and_udp_in_chunks(tmp_path, monkeypatch):
    # (the same column by the whole, chunked and live readings; over TCP from the stream)
    recs = _mismatched(100.0, 52102, 0x402, "question", "other.example") + _tcp_other_question(100.5, 53040, 0x500)
    d = _dns_rows(tmp_path, recs, monkeypatch)
    assert list(zip(d["proto"], d["dns_unmatched"])) == [("udp", "question"), ("tcp", "question")]
    assert d["dns_rcode"].tolist() == ["", ""]


# --- 2. REFUSED / SERVFAIL: the flow's own detail says what the advice says -------------------

@pytest.mark.parametrize("rcode,name,tail", [
    (5, "REFUSED", "(the resolver refuses recursion for this client: set the client to a resolver that serves it, "
                   "or allow it on this one)"),
    (2, "SERVFAIL", "(the resolver failed upstream, it got no answer from the servers it asks: let the resolver's "
                    "own lookups out (UDP and TCP 53) and check its forwarders)"),
    (3, "NXDOMAIN", "(fix the resolver or the DNS filter)"),
])
def test_the_error_answer_detail_says_what_to_change(tmp_path, rcode, name, tail):
    d = _dns_rows(tmp_path, _udp_tc(100.0, 53050, 0x600, rcode=rcode, tc=0)).iloc[0]
    assert (d["verdict"], d["reason"], d["dns_rcode"]) == ("blocked", "rejected", name)
    assert d["detail"] == (f"DNS answer {name} for {NAME}; the agent needs this name: without its address it "
                           f"cannot connect {tail}")


def test_the_error_answer_detail_keeps_the_name_escaped(tmp_path):
    # (a name no agent needs is ok with the bare error; its bytes escaped as everywhere)
    from kscc_traffic.protocols.dns import host_text
    raw = b"a\x1b[31m.ksc.kaspersky.com"
    d = _dns_rows(tmp_path, _udp_tc(100.0, 53051, 0x601, rcode=5, tc=0, name=raw)).iloc[0]
    assert "\x1b" not in d["detail"] and d["detail"].startswith(f"DNS answer REFUSED for {host_text(raw)}")


# --- 3. a truncated answer with part of the addresses ----------------------------------------

PARTIAL = (f"DNS answer truncated over UDP for {NAME} (TC flag set: too large for UDP), holding part of the "
           "addresses; no retry of it over TCP (port 53/TCP) was seen answered: if DNS over TCP is blocked, "
           "glibc-based agents (and systemd-resolved) fail this lookup, as RFC 2181 §9 has them ask again over "
           "TCP; others use the partial answer")


def _two():
    from scapy.layers.dns import DNSRR
    return [DNSRR(rrname=NAME, ttl=60, rdata="203.0.113.7"), DNSRR(rrname=NAME, ttl=60, rdata="203.0.113.8")]


def test_a_truncated_partial_answer_without_a_tcp_retry_says_so(tmp_path, monkeypatch):
    d = _dns_rows(tmp_path, _udp_tc(100.0, 53060, 0x700, an=_two()), monkeypatch).iloc[0]
    assert (d["verdict"], d["reason"], d["dns_answers"]) == ("ok", "", "203.0.113.7;203.0.113.8")
    assert d["detail"] == PARTIAL


@pytest.mark.parametrize("later", [0.1, 12.0], ids=["at-once", "in-a-later-batch"])
def test_a_truncated_partial_answer_with_a_tcp_retry_says_nothing(tmp_path, monkeypatch, later):
    from scapy.layers.dns import DNSRR
    recs = _udp_tc(100.0, 53061, 0x701, an=_two()) + _tcp_answer(
        100.0 + later, 53062, 0x701, an=[DNSRR(rrname=NAME, ttl=60, rdata="203.0.113.7")])
    d = _dns_rows(tmp_path, recs, monkeypatch)
    assert list(zip(d["proto"], d["verdict"], d["detail"])) == [("udp", "ok", ""), ("tcp", "ok", "")]


def test_the_partial_note_only_for_needed_names_and_tc(tmp_path):
    from scapy.layers.dns import DNSRR
    other = "www.example.org"
    recs = (_udp_tc(100.0, 53063, 0x702, an=[DNSRR(rrname=other, ttl=60, rdata="203.0.113.9")], name=other)
            + _udp_tc(100.5, 53064, 0x703, an=_two(), tc=0))
    d = _dns_rows(tmp_path, recs)
    assert list(zip(d["verdict"], d["detail"])) == [("ok", ""), ("ok", "")]


def test_the_grouped_judgement_tells_the_partial_note(tmp_path):
    from kscc_traffic import analyze
    from kscc_traffic.rules import load_rules
    from test_classify_fast import assert_same as assert_same_as_reference
    from scapy.layers.dns import DNSRR
    recs = []
    for k, (name, tc) in enumerate([(NAME, 1), (NAME, 0), ("eu2.ksc.kaspersky.com", 1), ("www.example.org", 1)]):
        recs += _udp_tc(100.0 + k, 53070 + k, 0x710 + k, tc=tc, name=name,
                        an=[DNSRR(rrname=name, ttl=60, rdata="203.0.113.7")])
    flows = analyze(str(write(tmp_path, recs)))
    d = flows[flows["purpose"] == "dns"].sort_values("ts_ns")
    assert d["detail"].tolist() == [PARTIAL, "", PARTIAL.replace(NAME, "eu2.ksc.kaspersky.com"), ""]
    assert_same_as_reference(flows.drop(columns=["purpose", "verdict", "reason", "detail"]), load_rules())


# --- 4. tunnel_close_s: to the proxy's own close ---------------------------------------------

def _tunnel_close(path):
    from kscc_traffic.analyze import analyze_packets
    from kscc_traffic.capture.decode import decode
    from kscc_traffic.capture.files import read_frames
    from kscc_traffic.rules import load_rules
    table, _ = analyze_packets(decode(read_frames(path)), load_rules(), path.name, internal=True)
    return table[table["proto"] == "tcp"].iloc[0]


def test_the_client_closing_first_and_the_proxy_later(tmp_path):
    from test_proxy_connect import OK_200, _connect, _records, _write
    # the 200, the client's FIN 1 ms later, the proxy's FIN 0.501 s after that (its own close,
    # 0.502 s after the 200; the first close, the client's, was 0.001 s after it): ok (the
    # client ended it), the column the proxy's time
    recs = _records([_connect(), OK_200], close="c")
    fin_s, last = recs[-2:]
    recs = recs[:-2] + [(fin_s[0] + 0.5, fin_s[1]), (last[0] + 0.5, last[1])]
    path = _write(tmp_path, recs)
    r = _tunnel_close(path)
    from kscc_traffic.classify import TUNNEL_EMPTY
    assert (r["verdict"], r["reason"], r["detail"]) == ("ok", "", TUNNEL_EMPTY)    # (nothing through it: s54)
    assert r["tunnel_close_s"] == pytest.approx(0.502, abs=1e-6)
    assert_same(path, [150, 400])


def test_the_proxy_closing_first_is_timed_to_its_close(tmp_path):
    from test_proxy_connect import OK_200, _connect, _records, _write
    r = _tunnel_close(_write(tmp_path, _records([_connect(), OK_200, ("w", 0.2)], close="s")))
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed")
    assert r["tunnel_close_s"] == pytest.approx(0.201, abs=1e-6)
