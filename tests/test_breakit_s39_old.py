"""Older leftovers (s39): a late duplicate of a TCP data segment (one datagram captured twice, its
copy written after later data was acknowledged) is a copy, not a retransmission; the CSV (and
JSON Lines) output read back with the documented dtypes (``kscc_traffic.read_flows``)."""
from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP

from chunkcmp import assert_same, whole, write
from pcapbuild import eth
from test_classify_fast import assert_same as assert_same_as_reference
from kscc_traffic.flows import DUP_LATE_NS
from kscc_traffic.rules import load_rules

RULES = load_rules()
C, S = ("192.0.2.10", 50000), ("198.51.100.20", 23101)
REC = b"\x17\x03\x03\x00\x3b" + bytes(59)      # a 64-byte TLS record


def _up(t, data=b"", ipid=1, **kw):
    return t, bytes(eth(IP(src=C[0], dst=S[0], id=ipid, flags="DF") / TCP(sport=C[1], dport=S[1], **kw) / data))


def _dn(t, data=b"", ipid=1, **kw):
    return t, bytes(eth(IP(src=S[0], dst=C[0], id=ipid, flags="DF") / TCP(sport=S[1], dport=C[1], **kw) / data,
                        src="02:00:00:00:00:01", dst="02:00:00:00:00:10"))


def _late_copy_capture(copy: str):
    """Handshake, a request answered, a second request never acknowledged, the server's
    acknowledgement of the first 10 s later. ``copy``: what comes 0.2 s after the second request:
    "" nothing, "same" the first request's frame again (same IP id and checksum: captured twice),
    "resent" the first request sent again by the stack (a new IP id: a spurious retransmission)."""
    recs = [_up(1.0, flags="S", seq=1000, ipid=10), _dn(1.01, flags="SA", seq=5000, ack=1001, ipid=50),
            _up(1.02, flags="A", seq=1001, ack=5001, ipid=11)]
    first = _up(1.03, REC, flags="PA", seq=1001, ack=5001, ipid=12)
    recs += [first, _dn(1.04, REC, flags="PA", seq=5001, ack=1065, ipid=51),
             _up(1.05, REC, flags="PA", seq=1065, ack=5065, ipid=13)]
    if copy == "same":
        recs.append((1.25, first[1]))
    elif copy == "resent":
        recs.append(_up(1.25, REC, flags="PA", seq=1001, ack=5001, ipid=14))
    recs.append(_dn(11.0, flags="A", seq=5065, ack=1065, ipid=52))
    return recs


def test_a_late_copy_of_acknowledged_data_is_a_duplicate_not_a_retransmission(tmp_path):
    base, _ = whole(write(tmp_path, _late_copy_capture(""), name="base.pcap"))
    path = write(tmp_path, _late_copy_capture("same"))
    flows, a = whole(path)
    (r,) = flows.to_dict("records")
    (b,) = base.to_dict("records")
    # before: counted as the client's 5th packet and "sent again": blocked/no_answer (stalled)
    assert (r["verdict"], r["reason"], r["detail"]) == (b["verdict"], b["reason"], b["detail"]) == ("ok", "", "")
    assert (r["orig_pkts"], r["orig_bytes"], r["history"]) == (4, 128, "ShADda") == (
        b["orig_pkts"], b["orig_bytes"], b["history"])
    assert a.duplicates == 1
    assert_same(path, [700, 1024, 4096])
    assert_same_as_reference(flows, RULES)


def test_a_spurious_retransmission_with_a_new_ip_id_stays_one(tmp_path):
    """The stack sending the acknowledged request again (a new IP id) is a retransmission: counted
    (no copy), but a spurious one (Wireshark's tcp.analysis.spurious_retransmission: its bytes
    acknowledged already): the second request's bytes, not acknowledged, were never sent again,
    so the connection is judged as without it (s40: it was blocked/no_answer, a stall)."""
    base, _ = whole(write(tmp_path, _late_copy_capture(""), name="base.pcap"))
    path = write(tmp_path, _late_copy_capture("resent"))
    flows, a = whole(path)
    (r,) = flows.to_dict("records")
    (b,) = base.to_dict("records")
    assert a.duplicates == 0 and r["orig_pkts"] == 5 and r["orig_bytes"] == 128
    assert (r["verdict"], r["reason"], r["detail"]) == (b["verdict"], b["reason"], b["detail"]) == ("ok", "", "")
    assert_same(path, [700, 1024, 4096])


def _resent_unacknowledged(same_id: bool):
    """A request sent three times (1, 2 s apart), never acknowledged; the server's keep-alive
    later. ``same_id``: every sending with one IP id (a stack that keeps it, RFC 6864)."""
    recs = [_up(1.0, flags="S", seq=1000, ipid=10), _dn(1.01, flags="SA", seq=5000, ack=1001, ipid=50),
            _up(1.02, flags="A", seq=1001, ack=5001, ipid=11)]
    t = 1.03
    for k in range(3):
        recs.append(_up(t, REC, flags="PA", seq=1001, ack=5001, ipid=12 if same_id else 12 + k))
        t += 1 + k * 0.5
    recs.append(_dn(9.0, flags="A", seq=5001, ack=1001, ipid=51))
    return recs


def test_an_equal_segment_never_acknowledged_is_a_retransmission(tmp_path):
    """The same bytes, IP id and checksum sent again, but not acknowledged before: a real
    retransmission (the blocked-signal), never taken for a copy, whatever the IP id."""
    for same in (True, False):
        path = write(tmp_path, _resent_unacknowledged(same), name=f"r{same}.pcap")
        flows, a = whole(path)
        (r,) = flows.to_dict("records")
        assert a.duplicates == 0 and r["orig_pkts"] == 5
        assert (r["verdict"], r["reason"]) == ("blocked", "no_answer"), r["detail"]
        assert_same(path, [700, 2048])


def test_late_copies_beyond_the_window_or_first_segments_stay(tmp_path):
    """A copy more than DUP_LATE_NS after its original, and a copy of a segment past the first 24
    data segments (a chunked analysis does not carry its payload), are counted as sent again; the
    ones within are copies: the same whole and in chunks of every size."""
    recs = [_up(1.0, flags="S", seq=1000, ipid=10), _dn(1.01, flags="SA", seq=5000, ack=1001, ipid=50),
            _up(1.02, flags="A", seq=1001, ack=5001, ipid=11)]
    seq, t, sent = 1001, 1.03, []
    for k in range(30):
        seg = _up(t, REC, flags="PA", seq=seq, ack=5001, ipid=100 + k)
        sent.append(seg)
        recs += [seg, _dn(t + .005, flags="A", seq=5001, ack=seq + len(REC), ipid=200 + k)]
        seq += len(REC)
        t += .01
    late = [(t + .1, sent[0][1]), (t + .2, sent[3][1]), (t + .3, sent[27][1]),
            (sent[1][0] + DUP_LATE_NS / 1e9 + .5, sent[1][1])]
    recs += late
    recs.append(_up(sent[1][0] + DUP_LATE_NS / 1e9 + 1, flags="FA", seq=seq, ack=5001, ipid=300))
    recs.append(_dn(sent[1][0] + DUP_LATE_NS / 1e9 + 1.01, flags="FA", seq=5001, ack=seq + 1, ipid=301))
    recs.append(_up(sent[1][0] + DUP_LATE_NS / 1e9 + 1.02, flags="A", seq=seq + 1, ack=5002, ipid=301))
    recs.sort(key=lambda r: r[0])
    path = write(tmp_path, recs)
    flows, a = whole(path)
    (r,) = flows.to_dict("records")
    assert a.duplicates == 2                       # sent[0] and sent[3]
    assert r["orig_pkts"] == 2 + 30 + 2 + 2        # the copies of sent[27] and the late one of sent[1] counted
    assert r["orig_bytes"] == 30 * len(REC)
    assert_same(path, [600, 900, 1500, 4096])


# --- 2. the CSV read back: http_status and the other text columns keep their dtype -----------------

def _proxy_capture(tmp_path):
    """Two CONNECTs through a proxy, answered 407 and 200, and one flow without HTTP (a DNS
    query whose name is all digits): ``http_status`` '407', '200' and ''."""
    from scapy.layers.dns import DNS, DNSQR
    from scapy.layers.inet import UDP
    from test_proxy_connect import OK_200, _connect, _records
    from pcapbuild import pcap_bytes
    recs = _records([_connect(), ("s", b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")], port=50000)
    recs += _records([_connect(), OK_200], port=50001, t0=110.0)
    recs.append((120.0, eth(IP(src=C[0], dst="192.0.2.53") / UDP(sport=5353, dport=53)
                            / DNS(id=7, rd=1, qd=DNSQR(qname="12345")))))
    path = tmp_path / "proxy.pcap"
    path.write_bytes(pcap_bytes(sorted(recs, key=lambda r: r[0])))
    return path


def _export(tmp_path, path, fmt):
    import os
    import subprocess
    import sys
    from conftest import ROOT
    out = tmp_path / f"flows.{fmt}"
    r = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", str(path), "--format", fmt, "-o", str(out)],
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True, timeout=300)
    assert r.returncode in (0, 1), r.stderr
    return out


def test_http_status_and_text_columns_read_back_with_their_dtypes(tmp_path):
    import pandas as pd
    import kscc_traffic
    path = _proxy_capture(tmp_path)
    want = kscc_traffic.analyze(str(path))
    assert sorted(want["http_status"]) == ["", "200", "407"]
    csv = _export(tmp_path, path, "csv")
    plain = pd.read_csv(csv)
    assert str(plain["http_status"].dtype) == "float64"            # what pandas alone makes of it: 407.0, NaN
    for fmt, src in (("csv", csv), ("jsonl", _export(tmp_path, path, "jsonl"))):
        got = kscc_traffic.read_flows(src)
        assert list(got.columns) == list(kscc_traffic.COLUMNS), fmt
        for k, (dtype, _, _) in kscc_traffic.COLUMNS.items():
            assert str(got[k].dtype) == dtype, (fmt, k, got[k].dtype)
        assert sorted(got["http_status"]) == ["", "200", "407"]
        assert all(type(v) is str for v in got["http_status"]) and all(type(v) is str for v in got["query"])
        assert (got["query"] == "12345").sum() == 1                 # (digits stay text, not the number 12345)
        assert (got["proxy_target"] != "").sum() == 2 and (got["tls_alert"] == "").all()
        pd.testing.assert_frame_equal(got, want, check_exact=False)
    # and the table helpers read it as the analysis' own
    pd.testing.assert_frame_equal(kscc_traffic.readiness(kscc_traffic.read_flows(csv)), kscc_traffic.readiness(want))


# --- 3. scans._warm_all: one pass per key instead of every query against every attempt ----------

def _warm_all_before(att, q, q_named, lead, bound=None):
    """scans._warm_all as it was (every query against the attempts of its key: quadratic on a
    sweep of one key), the reference the new one must equal."""
    import numpy as np
    from kscc_traffic.scans import ADDRESS_SCAN_HOSTS, PORT_SCAN_PORTS, SCAN_WINDOW_NS
    out = []
    for j, (key, qkey, val, threshold) in enumerate((("pkey", q.pkey, "port", PORT_SCAN_PORTS),
                                                     ("akey", q.akey, "host", ADDRESS_SCAN_HOSTS))):
        res = np.zeros(len(q.ts), bool)
        if bound is not None:
            qkey = np.where(bound[j] >= threshold, qkey, np.uint64(0))
            if not qkey.any():
                out.append(res)
                continue
        akeys = getattr(att, key)
        sel = np.isin(akeys, qkey)
        if sel.sum() >= threshold:
            k, t, v = akeys[sel], att.ts[sel], getattr(att, val)[sel]
            uk, counts = np.unique(k, return_counts=True)
            hot = uk[counts >= threshold]
            for i in np.flatnonzero(np.isin(qkey, hot) & (qkey != 0)).tolist():
                m = (k == qkey[i]) & (t >= q.ts[i] - SCAN_WINDOW_NS) & (t <= lead[i])
                res[i] = len(np.unique(v[m])) >= threshold
        out.append(res)
    return out[0], out[1] & ~q_named


def _sweep_rows(seed):
    """Attempts of a crafted capture: a sweep of 600 hosts on 443 from one scanner (each probe
    2-400 ms apart, some hosts probed twice, pauses longer than the window), a port scan of 40
    ports of one host (some twice), a few agents' ordinary attempts, two VLANs, ties in time."""
    import random
    rng = random.Random(seed)
    rows, t = [], 10**18
    for i in range(600):
        t += rng.choice((0, 2, 40, 400)) * 10**6 + (6 * 60 * 10**9 if i in (200, 450) else 0)
        host = f"10.0.{i % 250 // 1}.{rng.randint(1, 254)}"
        rows.append((t, "192.0.2.9", host, 443, rng.choice((0, 0, 0, 7)), rng.random() < 0.05, rng.random() < 0.1))
    t2 = 10**18 + 5 * 10**9
    for i in range(80):
        t2 += rng.choice((0, 1, 30)) * 10**6
        rows.append((t2, "192.0.2.77", "198.51.100.5", rng.randint(20, 60), 0, False, rng.random() < 0.3))
    for i in range(30):
        rows.append((10**18 + rng.randint(0, 900) * 10**9, f"192.0.2.{rng.randint(10, 14)}", "203.0.113.1",
                     rng.choice((13000, 13292, 14000)), 0, True, False))
    rng.shuffle(rows)
    return rows


def test_warm_all_gives_what_it_gave_before():
    import numpy as np
    from kscc_traffic import scans
    for seed in range(4):
        rows = _sweep_rows(seed)
        att = scans._Attempts(rows)
        q = scans._Attempts(rows[::3])
        named = np.array([r[5] for r in rows[::3]])
        rng = np.random.default_rng(seed)
        lead = q.ts + rng.integers(-10, 400, len(q.ts)) * 10**9          # (some leads before the start)
        bounds = (None, (rng.integers(0, 60, len(q.ts)), rng.integers(0, 60, len(q.ts))))
        for bound in bounds:
            new = scans._warm_all(att, q, named, lead, bound)
            old = _warm_all_before(att, q, named, lead, bound)
            assert (new[0] == old[0]).all() and (new[1] == old[1]).all(), seed
            assert new[1].sum() > 0 and new[0].sum() > 0      # (both scans found: the comparison says something)
        assert not scans._warm_all(att, scans._Attempts([]), np.zeros(0, bool), np.zeros(0, np.int64))[0].size


def test_reach():
    from kscc_traffic.scans import _reach
    big = 2**63 - 1
    assert _reach([1, 1, 2, 3, 3, 4], 3).tolist() == [4, 4, 6, big, big, big]
    assert _reach([], 2).tolist() == []
    assert _reach([5], 1).tolist() == [1]


# --- 4. an address shared by several names: the documented KSC name looked up before the flow ----

R_DNS, SHARED = "192.0.2.53", "203.0.113.5"


def _lookup(t, name, qid, client=C[0], address=SHARED):
    """A DNS query of ``client`` and its answer (``name`` A ``address``) 10 ms later."""
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import UDP
    port = 30000 + qid
    return [(t, bytes(eth(IP(src=client, dst=R_DNS) / UDP(sport=port, dport=53)
                          / DNS(id=qid, rd=1, qd=DNSQR(qname=name))))),
            (t + .01, bytes(eth(IP(src=R_DNS, dst=client) / UDP(sport=53, dport=port)
                                / DNS(id=qid, qr=1, ra=1, qd=DNSQR(qname=name),
                                      an=DNSRR(rrname=name, type="A", ttl=300, rdata=address)),
                                src="02:00:00:00:00:01", dst="02:00:00:00:00:10")))]


def _syns(t, port, client=C[0], sport=50000, n=3):
    """A connection attempt: ``n`` SYNs 1 s apart, unanswered."""
    return [(t + k, bytes(eth(IP(src=client, dst=SHARED, id=100 + k) / TCP(sport=sport, dport=port, flags="S",
                                                                         seq=1000))))
            for k in range(n)]


def _filler(t0, t1):
    """Other traffic between ``t0`` and ``t1`` (s): a DNS exchange every 2 s with another
    resolver, so that a chunked analysis moves on and keeps only the latest answers."""
    from scapy.layers.dns import DNS, DNSQR
    from scapy.layers.inet import UDP
    out, t, k = [], t0, 0
    while t < t1:
        out.append((t, bytes(eth(IP(src=C[0], dst="192.0.2.54") / UDP(sport=20000 + k, dport=53)
                                 / DNS(id=k, rd=1, qd=DNSQR(qname=f"n{k}.example.org"))))))
        t, k = t + 2, k + 1
    return out


def _names_of(tmp_path, recs, name):
    path = write(tmp_path, sorted(recs, key=lambda r: r[0]), name=name)
    w = assert_same(path, [300, 900, 2500])
    return w[w["proto"] == "tcp"].sort_values("orig_p")


def test_a_shared_address_keeps_the_ksc_name_looked_up_before_the_flow(tmp_path):
    """The agent looks up eu1.ksc.kaspersky.com (203.0.113.5), 30 s later a browser on the same
    host cdn.example.net (the same CDN address), 30 s later the agent's SYNs to 23101 go unanswered:
    before, the flow was named by the later lookup, unexpected/host_mismatch "cdn.example.net is
    not under *.ksc.kaspersky.com"; it is the agent's connection, blocked/no_answer. A flow on a
    port no rule gives a host mask (13000, a distribution point's) keeps the latest name. (A chunked
    analysis keeps, past its cutoff, the latest answer under each mask besides the latest.)"""
    recs = (_lookup(1.0, "eu1.ksc.kaspersky.com", 1) + _filler(2.0, 30.0) + _lookup(31.0, "cdn.example.net", 2)
            + _filler(32.0, 60.0) + _syns(62.0, 23101) + _syns(62.5, 13000, sport=50001, n=1) + _filler(66.0, 70.0))
    f = _names_of(tmp_path, recs, "shared.pcap")
    r, dp = f.iloc[0], f.iloc[1]
    assert (r["dns_name"], r["server_name"], r["name_source"]) == ("eu1.ksc.kaspersky.com",) * 2 + ("dns",)
    assert (r["purpose"], r["verdict"], r["reason"]) == ("agent_connection", "blocked", "no_answer"), r["detail"]
    assert dp["resp_p"] == 13000 and dp["dns_name"] == "cdn.example.net"


def test_a_ksc_lookup_after_the_flow_or_by_another_host_does_not_rename_it(tmp_path):
    """The most recent name BEFORE the flow: a KSC lookup after the flow started names only the
    flows after it; a KSC lookup by another host does not replace the host's own lookup (its
    browser's flow is no agent's); with no lookup of its own, another host's KSC name wins over
    another host's later name."""
    other = "192.0.2.11"
    recs = (_lookup(1.0, "cdn.example.net", 1) + _syns(2.0, 23101)                   # (a) KSC looked up after
            + _lookup(2.5, "eu1.ksc.kaspersky.com", 2) + _syns(3.0, 23101, sport=50001)   # (b) after it
            + _lookup(10.0, "eu2.ksc.kaspersky.com", 3, client=other, address="203.0.113.6")
            + _lookup(11.0, "cdn2.example.net", 4, address="203.0.113.6")
            + _lookup(11.5, "cdn3.example.net", 5, client="192.0.2.12", address="203.0.113.6"))
    # (c) the host's own later cdn2 lookup stands against another host's earlier KSC one
    recs += [(12.0, bytes(eth(IP(src=C[0], dst="203.0.113.6") / TCP(sport=50002, dport=23101, flags="S"))))]
    # (d) a host without a lookup: another host's KSC name, not the later cdn3
    recs += [(12.5, bytes(eth(IP(src="192.0.2.13", dst="203.0.113.6") / TCP(sport=50003, dport=23101, flags="S"))))]
    f = _names_of(tmp_path, recs + _filler(13.0, 20.0), "order.pcap")
    assert f["dns_name"].tolist() == ["cdn.example.net", "eu1.ksc.kaspersky.com", "cdn2.example.net",
                                      "eu2.ksc.kaspersky.com"]


@pytest.mark.parametrize("seed", [3, 11])
def test_shared_addresses_named_the_same_whole_and_in_chunks(tmp_path, seed):
    """Random lookups by three hosts of KSC, DigiCert and other names for four shared addresses
    (some answers written late, out of time order), connection attempts to them on 23101, 80 and
    13000 from time to time, other traffic between: every flow named the same whole and in
    chunks of every size (the chunked analysis keeps of the older answers only the latest per
    (client, address), per address, and per host mask)."""
    import random
    rng = random.Random(seed)
    hosts = ["192.0.2.10", "192.0.2.11", "192.0.2.12"]
    addrs = ["203.0.113.5", "203.0.113.6", "203.0.113.7", "203.0.113.8"]
    names = ["eu1.ksc.kaspersky.com", "eu2.ksc.kaspersky.com", "ocsp.digicert.com", "cdn.example.net",
             "www.example.org"]
    recs, t, qid, sport = [], 1.0, 1, 50000
    for _ in range(70):
        t += rng.choice((0.5, 2.0, 7.0))
        if rng.random() < 0.55:
            lk = _lookup(t, rng.choice(names), qid, client=rng.choice(hosts), address=rng.choice(addrs))
            qid += 1
            if rng.random() < 0.1:          # (the answer written 0.3 s late, after later packets)
                lk = [lk[0], (lk[1][0] + 0.3, lk[1][1])]
            recs += lk
        else:
            recs.append((t, bytes(eth(IP(src=rng.choice(hosts), dst=rng.choice(addrs))
                                      / TCP(sport=sport, dport=rng.choice((23101, 80, 13000)), flags="S")))))
            sport += 1
    recs += _filler(t + 1, t + 20)
    path = write(tmp_path, sorted(recs, key=lambda r: r[0]), name="mix.pcap")
    w = assert_same(path, [400, 1100, 3000])
    tcp = w[w["proto"] == "tcp"]
    assert (tcp["dns_name"] != "").sum() > 10
