"""The DNS answer store of a chunked analysis (kscc_traffic.answer_store) and the carried packets'
own buffer (Packets.compact)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings, strategies as st

from kscc_traffic.answer_store import AnswerStore
from kscc_traffic.capture.packets import PACKET_COLUMNS, Packets
from kscc_traffic.inspect import DnsAnswers
from kscc_traffic.names import _dns_names


def _answers(rows):
    return DnsAnswers([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows])


def test_select_gives_the_rows_of_the_addresses():
    s = AnswerStore()
    s.add(_answers([(1, "c1", "a1", "n1"), (2, "c1", "a2", "n2"), (3, "c2", "a1", "n3")]))
    got = s.select({"a1", "zz"})
    assert (got.ts_ns, got.client, got.address, got.name) == ([1, 3], ["c1", "c2"], ["a1", "a1"], ["n1", "n3"])
    assert len(s.select(set())) == 0


def test_answers_of_carried_packets_are_kept_once_and_old_ones_are_not_remembered():
    s = AnswerStore()
    batch = _answers([(10, "c", "a", "n"), (20, "c", "b", "m")])
    s.add(batch, again_ts=[20, 5])      # only the packet at 20 (and one without answers) is carried
    s.add(batch, again_ts=[20])         # it comes again (and so does 10: it was not carried, so it is new)
    assert sorted(s.answers().ts_ns) == [10, 10, 20]
    assert len(s._again) == 1           # only the answer that can still come again is remembered


def test_before_the_cutoff_only_the_latest_per_client_and_address_and_per_address_are_kept():
    s = AnswerStore()
    s.add(_answers([(1, "c1", "a", "old"), (2, "c2", "a", "x"), (3, "c1", "a", "new"),
                    (4, "c1", "b", "b1"), (100, "c3", "a", "late")]))
    s.advance(50)
    assert len(s) == 4                  # (c1, a) once, (c2, a), (c1, b), and the answer after the cutoff
    got = s.select({"a"}, [("c1", "a")])
    # (c1, a)'s latest, then a's latest (c1 at 3 again), then everything after the cutoff
    assert list(zip(got.ts_ns, got.client, got.name)) == [(3, "c1", "new"), (3, "c1", "new"), (100, "c3", "late")]
    s.add(_answers([(7, "c2", "a", "late-arrival")]))   # a late answer goes straight into the latest
    assert s.select({"a"}, [("c2", "a")]).name == ["late-arrival", "late-arrival", "late"]
    s.advance(20)                       # the cutoff never goes back
    assert len(s) == 4


rows = st.lists(st.tuples(st.integers(0, 40), st.sampled_from(["c1", "c2", "c3"]),
                          st.sampled_from(["a1", "a2", "a3", "a4"]), st.sampled_from(["n1", "n2", "n3"])),
                max_size=60)


@settings(max_examples=200, deadline=None)
@given(rows, st.lists(st.integers(0, 45), max_size=3),
       st.lists(st.tuples(st.integers(0, 60), st.sampled_from(["c1", "c2", "c4"]),
                          st.sampled_from(["a1", "a2", "a3", "a5"])), max_size=20))
def test_the_store_names_every_flow_that_starts_after_the_cutoff_as_all_answers_do(answers, cuts, flows):
    # answers arrive in time order, as a capture's do, in batches between the cutoffs
    answers = sorted(answers, key=lambda r: r[0])
    s = AnswerStore()
    cuts = sorted(cuts)
    for i, cut in enumerate(cuts + [None]):
        lo = cuts[i - 1] if i else -1
        s.add(_answers([r for r in answers if lo <= r[0] < (cut if cut is not None else 10**9)]))
        s.advance(cut)
    cut = cuts[-1] if cuts else 0
    f = pd.DataFrame({"ts_ns": np.array([max(t, cut) for t, _, _ in flows], np.int64),
                      "orig_h": np.array([c for _, c, _ in flows], object),
                      "resp_h": np.array([a for _, _, a in flows], object)})
    pairs = set(zip(f["orig_h"], f["resp_h"]))
    got = s.select(set(f["resp_h"]), pairs)
    assert _dns_names(f, got).tolist() == _dns_names(f, _answers(answers)).tolist()
    assert len(s) <= len(answers)


def test_compact_keeps_the_rows_payload_bytes_in_a_buffer_of_their_own():
    n = 6
    cols = {k: np.zeros(n, v) for k, v in PACKET_COLUMNS.items()}
    buf = bytes(range(256)) * 2
    cols["pl_off"] = np.array([0, -1, 100, 300, 7, 400], np.int64)
    cols["pl_cap"] = np.array([5, 0, 20, 0, 3, 60], np.int32)
    cols["ts_ns"] = np.arange(n, dtype=np.int64)
    p = Packets(buf, cols)
    keep = np.array([0, 1, 2, 3, 5])
    c = p.compact(keep)
    assert len(c.buf) == 5 + 20 + 60               # only the kept payloads
    assert [c.payload(i) for i in range(len(keep))] == [p.payload(i) for i in keep.tolist()]
    assert c.cols["pl_off"][1] == -1               # "no payload" stays so
    assert c.cols["ts_ns"].tolist() == keep.tolist()


def test_the_store_keeps_one_slot_per_pair_and_shares_it_with_the_address_latest():
    s = AnswerStore()
    s.add(_answers([(1, "c1", "a1", "n1"), (2, "c1", "a1", "n2"), (3, "c2", "a1", "n3"), (4, "c1", "a2", "m")]))
    s.advance(10)
    assert len(s) == 3 and list(s._ts) == [2, 3, 4]      # (c1, a1) updated in place, (c2, a1), (c1, a2)
    assert s._multi == {"a1": {"c1": 0, "c2": 1}} and s._addr == {"a1": 1, "a2": 2}
    got = list(zip(*(lambda a: (a.ts_ns, a.client, a.address, a.name))(
        s.select({"a1", "a2"}, {("c1", "a1"), ("c2", "a2")}))))
    # (c1, a1)'s latest ((c2, a2) has none), then each address's latest (in the set's order)
    assert got[0] == (2, "c1", "a1", "n2") and sorted(got[1:]) == [(3, "c2", "a1", "n3"), (4, "c1", "a2", "m")]
    assert s.dropped == 0 and s.warning("x.pcap") is None


def test_past_max_pairs_the_oldest_pairs_are_forgotten_with_a_count():
    s = AnswerStore(max_pairs=8)
    s.add(_answers([(t, "c1", f"a{t}", f"n{t}") for t in range(10)]
                   + [(9, "c2", "a0", "late-a0")]))           # a0's latest is new: a0 stays whole
    s.advance(100)                                             # 11 pairs > 8: the oldest go, 6 stay
    assert s.dropped == 5 and s.dropped_until_ns == 4 and len(s) == 6
    kept = s.answers()
    # (each address twice, as answers() gives them: its pairs', then its latest)
    assert sorted(zip(kept.ts_ns, kept.client, kept.address)) == sorted(
        2 * [(5, "c1", "a5"), (6, "c1", "a6"), (7, "c1", "a7"), (8, "c1", "a8"), (9, "c1", "a9"), (9, "c2", "a0")])
    assert s._multi == {}                                      # (a0's old pair with c1 went)
    assert len(s.select({"a1"})) == 0
    assert s.select({"a0"}, {("c1", "a0")}).name == ["late-a0"]   # only the address's latest
    assert s.warning("x.pcap").startswith(
        "x.pcap: 5 DNS answers forgotten (their (client, address) pairs' latest, the last at 1970-01-01 "
        "00:00:00 UTC): the analysis keeps at most 8 pairs")


def _dns_capture(path, n):
    """``n`` DNS answers 10 s apart, each naming its own address for one client, then one UDP
    datagram from that client to the first and to the last address."""
    from scapy.layers.dns import DNS, DNSQR, DNSRR
    from scapy.layers.inet import IP, UDP
    from pcapbuild import eth, pcap_bytes
    recs = []
    for i in range(n):
        dns = DNS(id=i, qr=1, rd=1, ra=1, qd=DNSQR(qname=f"h{i}.example"),
                  an=DNSRR(rrname=f"h{i}.example", rdata=f"203.0.113.{i + 1}", ttl=60))
        recs.append((1000.0 + 10 * i, bytes(eth(IP(src="198.51.100.53", dst="192.0.2.10")
                                                / UDP(sport=53, dport=40000 + i) / dns))))
    for k, a in enumerate((1, n)):
        recs.append((1000.0 + 10 * n + k, bytes(eth(IP(src="192.0.2.10", dst=f"203.0.113.{a}")
                                                     / UDP(sport=50000 + k, dport=15000) / (b"x" * 40)))))
    path.write_bytes(pcap_bytes(recs))
    return path


def test_a_chunked_analysis_under_the_cap_names_as_whole_and_over_it_warns(tmp_path, monkeypatch):
    from kscc_traffic import answer_store
    from kscc_traffic.chunked import ChunkedAnalysis
    from kscc_traffic.rules import load_rules
    path = _dns_capture(tmp_path / "dns.pcap", 30)
    rules = load_rules()

    def names(chunk):
        run = ChunkedAnalysis(path, rules, "dns.pcap", chunk_bytes=chunk)
        flows = pd.concat(list(run.batches()), ignore_index=True)
        late = flows[flows["resp_p"] == 15000].sort_values("resp_h")
        return late["dns_name"].tolist(), [w for w in run.stats.warnings if "DNS answers forgotten" in w]

    whole = names(1 << 20)
    assert whole == (["h0.example", "h29.example"], [])
    assert names(2048) == whole                                 # under the cap: as the whole file
    monkeypatch.setattr(answer_store, "MAX_PAIRS", 8)
    got, warned = names(2048)
    assert got[1] == "h29.example" and got[0] in (None, "")    # h0's answer was forgotten
    assert len(warned) == 1 and warned[0].startswith("dns.pcap: ") and "at most 8 pairs" in warned[0]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 3), st.sampled_from(["c1", "c2", "c3"]),
                          st.sampled_from(["a1", "a2", "a3"]), st.sampled_from(["n1", "n2", "n3"])),
                max_size=40),
       st.lists(st.tuples(st.integers(0, 6), st.integers(0, 3), st.sampled_from(["c1", "c2", "c4"]),
                          st.sampled_from(["a1", "a2", "a4"]), st.sampled_from(["n1", "n4"])),
                max_size=20))
def test_fold_all_leaves_the_store_as_folding_each_row_does(first, then):
    """advance's one loop (_fold_all) gives the very state (slots, their order, the address and
    per-client maps) that _fold row by row gives, also on a store holding slots already."""
    def state(s):
        return (list(s._ts), list(s._frame), s._client, s._name, s._addr, s._multi,
                [list(d) for d in s._multi.values()], list(s._addr))
    a, b = AnswerStore(), AnswerStore()
    for rows in (sorted(first), sorted(then)):
        a._fold_all(rows)
        for r in rows:
            b._fold(r)
        assert state(a) == state(b)
