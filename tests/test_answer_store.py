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
