"""A needed KSC name whose every lookup in the capture got no address (newcomer 28 F2).

NOERROR answers with no address (NODATA) for eu1.ksc.kaspersky.com, AAAA from an IPv6-only
agent or A from an IPv4 one, and no connection after: the run said "3 flows: 3 ok". Now such a
DNS flow is ``blocked``/``rejected`` (detail :data:`~kscc_traffic.classify.DNS_NO_ADDRESS`, the
DNS64/NAT64 advice when asked over IPv6), unless another lookup of that name in the capture got
an address (a dual-stack host: its AAAA empty, its A answered): then it stays ``ok``. Whole-file
and chunked readings agree (the answer may come in another chunk than the empty one).

Captures built here with scapy; addresses from the documentation ranges."""
from __future__ import annotations

import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, UDP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Ether

from chunkcmp import assert_same, write
from kscc_traffic.classify import DNS_NO_ADDRESS
from test_live_session import assert_live_same

NAME = "eu1.ksc.kaspersky.com"
V4 = ("192.0.2.10", "203.0.113.53")
V6 = ("2001:db8:1::10", "2001:db8:2::53")
#: link-layer addresses given (documentation range, RFC 7042): an Ether() without them makes scapy
#: ask the host's ARP for the destination, ~2 s per packet where nothing answers
MAC = ("00:00:5e:00:53:01", "00:00:5e:00:53:02", "00:00:5e:00:53:03", "00:00:5e:00:53:04")


def _lookup(t, qtype, port, ip=V4, name=NAME, address=None, qid=0x100):
    """A query and its NOERROR answer (with ``address`` when given, else none: NODATA)."""
    net = IPv6 if ":" in ip[0] else IP
    q = Ether(src=MAC[0], dst=MAC[1]) / net(src=ip[0], dst=ip[1]) / UDP(sport=port, dport=53) / DNS(id=qid, rd=1, qd=DNSQR(qname=name,
                                                                                                     qtype=qtype))
    an = DNSRR(rrname=name, type=qtype, ttl=60, rdata=address) if address else []
    r = (Ether(src=MAC[1], dst=MAC[0]) / net(src=ip[1], dst=ip[0]) / UDP(sport=53, dport=port)
         / DNS(id=qid, qr=1, rd=1, ra=1, rcode=0, qd=DNSQR(qname=name, qtype=qtype), an=an))
    return [(t, q), (t + 0.02, r)]


def _filler(t0, t1, step=0.25):
    """UDP datagrams between two other hosts: the capture spans several chunks."""
    out, t = [], t0
    while t < t1:
        out.append((t, Ether(src=MAC[2], dst=MAC[3]) / IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=40000, dport=40001)
                    / (b"x" * 600)))
        t += step
    return out


def _dns(flows):
    return flows[flows.purpose == "dns"].reset_index(drop=True)


@pytest.mark.parametrize("qtype, ip", [("AAAA", V6), ("A", V4)])
def test_every_lookup_without_an_address_is_blocked(tmp_path, monkeypatch, qtype, ip):
    recs = sum((_lookup(100.0 + 2 * i, qtype, 53020 + i, ip, qid=0x100 + i) for i in range(3)), [])
    path = write(tmp_path, recs + _filler(90.0, 120.0))
    w = assert_same(path, [4096, 16384])
    assert_live_same(path, monkeypatch, step=7)
    d = _dns(w)
    assert d.verdict.tolist() == ["blocked"] * 3
    assert d.reason.tolist() == ["rejected"] * 3
    assert all(x.startswith(f"{DNS_NO_ADDRESS}{NAME}: no lookup of it in the capture got an address") for x in d.detail)
    # (asked over IPv6: the agent may have no IPv4; DNS64/NAT64 said only then)
    assert all(("DNS64 with a NAT64 gateway" in x) == (ip == V6) for x in d.detail), d.detail.tolist()


@pytest.mark.parametrize("answered_first", [True, False])
def test_dual_stack_empty_aaaa_beside_an_answered_a_stays_ok(tmp_path, monkeypatch, answered_first):
    # the two lookups far apart (other chunks), in either order; the live session's final table too
    a = _lookup(100.0 if answered_first else 115.0, "A", 53040, V4, address="203.0.113.10", qid=1)
    aaaa = _lookup(115.0 if answered_first else 100.0, "AAAA", 53041, V4, qid=2)
    path = write(tmp_path, a + aaaa + _filler(90.0, 130.0))
    w = assert_same(path, [4096, 16384])
    assert_live_same(path, monkeypatch, step=7)
    d = _dns(w)
    assert d.verdict.tolist() == ["ok", "ok"]
    assert d.detail.tolist() == ["", ""]


def test_names_the_agent_does_not_need_stay_ok_and_are_told_apart(tmp_path):
    # the same answers but for the name: only the needed one is blocked (judged apart)
    recs = (_lookup(100.0, "A", 53050, V4, name="www.example.com", qid=1)
            + _lookup(100.5, "A", 53051, V4, qid=2))
    d = _dns(assert_same(write(tmp_path, recs), [2048]))
    by = dict(zip(d["query"], d["verdict"]))
    assert by == {"www.example.com": "ok", NAME: "blocked"}


# --- NODATA only for an address question (newc-a, session 28) -------------------------------------
# A NOERROR answer with no address to an HTTPS (type 65) question, as browsers and
# systemd-resolved ask beside A/AAAA, says nothing of the name's addresses: the flow carries
# dns_other_qtypes (no response of it answered an A or AAAA question) and stays ok.

HTTPS = 65


def _cli(path, *args):
    import subprocess
    import sys
    from conftest import ROOT
    return subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", str(path), "-f", "jsonl", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)


def _cli_dns(path, *args):
    import json
    p = _cli(path, *args)
    rows = [json.loads(x) for x in p.stdout.splitlines()]
    return p.returncode, [(r["query"], r["verdict"], r["reason"]) for r in rows if r["purpose"] == "dns"]


@pytest.mark.parametrize("ip", [V4, V6])
def test_https_question_without_an_address_alone_is_not_blocked(tmp_path, monkeypatch, ip):
    recs = sum((_lookup(100.0 + 2 * i, HTTPS, 53060 + i, ip, qid=0x200 + i) for i in range(3)), [])
    path = write(tmp_path, recs + _filler(90.0, 120.0))
    w = assert_same(path, [4096, 16384])
    assert_live_same(path, monkeypatch, step=7)
    d = _dns(w)
    assert d.verdict.tolist() == ["ok"] * 3 and d.reason.tolist() == [""] * 3 and d.detail.tolist() == [""] * 3
    assert d.dns_rcode.tolist() == ["NOERROR"] * 3 and d.dns_answers.tolist() == [""] * 3
    for chunk in ((), ("--chunk-mib", "1"), ("-j", "2")):
        assert _cli_dns(path, *chunk) == (0, [(NAME, "ok", "")] * 3)


def test_an_a_question_without_an_address_beside_https_ones_is_still_blocked(tmp_path, monkeypatch):
    # one flow (the same source port, as a stub resolver asks): 30 HTTPS lookups with no
    # address, then an A lookup with none either, then three HTTPS lookups more: the A response
    # is past the packets a chunked or live reading keeps of any flow (its first packets, its
    # first streams.MAX_SEGMENTS + 1 with payload per direction) and must be carried to the
    # flow's end in later chunks (inspect.dns_response_rows, live _Flow.dns_brings); and a flow
    # of its own with an HTTPS lookup only (ok)
    recs = sum((_lookup(100.0 + 0.3 * i, HTTPS, 53070, V4, qid=0x300 + i) for i in range(30)), [])
    recs += _lookup(109.5, "A", 53070, V4, qid=0x340)
    recs += sum((_lookup(110.0 + i, HTTPS, 53070, V4, qid=0x341 + i) for i in range(3)), [])
    recs += _lookup(101.0, HTTPS, 53071, V4, qid=0x320)
    path = write(tmp_path, recs + _filler(90.0, 130.0))
    w = assert_same(path, [4096, 16384])
    assert_live_same(path, monkeypatch, step=5)
    d = _dns(w)
    by = dict(zip(d.orig_p, zip(d.verdict, d.reason)))
    assert by == {53070: ("blocked", "rejected"), 53071: ("ok", "")}
    (detail,) = d.loc[d.orig_p == 53070, "detail"]
    assert detail.startswith(f"{DNS_NO_ADDRESS}{NAME}: no lookup of it in the capture got an address")
    for chunk in ((), ("--chunk-mib", "1")):
        rc, got = _cli_dns(path, *chunk)
        assert (rc, sorted(got)) == (1, [(NAME, "blocked", "rejected"), (NAME, "ok", "")])

