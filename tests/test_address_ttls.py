"""inspect.address_ttls as arrays (AddressTtls) gives what the dict it replaced gave, and
AnswerStore.known tells the addresses it holds answers for (session 28, issue 5)."""
import numpy as np
import pytest

from kscc_traffic import inspect as ins
from kscc_traffic.answer_store import AnswerStore
from kscc_traffic.inspect import AddressTtls, DnsAnswers, address_ttls


def _reference(cols, prior, cap):
    """The dict loop address_ttls was before (main 82d4ca0: no reset, no SYN-ACK), with a cap of
    ``cap`` addresses."""
    out = dict(prior)
    m = ((cols["proto"] == 6) & ((cols["tcp_flags"] & 4) == 0) & ((cols["tcp_flags"] & 18) != 18)
         & (cols["ttl"] >= 0))
    rows = sorted(np.flatnonzero(m).tolist(),
                  key=lambda i: (int(cols["ipver"][i]), int(cols["src_hi"][i]), int(cols["src_lo"][i]),
                                 int(cols["ts_ns"][i]), i))
    seen = set()
    for i in rows:
        k = (int(cols["ipver"][i]), int(cols["src_hi"][i]), int(cols["src_lo"][i]))
        if k in seen:
            continue
        seen.add(k)
        v = (int(cols["ts_ns"][i]), int(cols["ttl"][i]))
        if k not in out:
            if len(out) < cap:
                out[k] = v
        elif v[0] < out[k][0]:
            out[k] = v
    return out


def _batch(rng, m, t0):
    return {"proto": rng.choice([6, 6, 6, 17], m), "tcp_flags": rng.choice([0, 2, 4, 16, 18, 20], m),
            "ttl": rng.choice([-1, 63, 64, 127, 128, 255], m).astype(np.int16),
            "ipver": rng.choice([4, 6], m).astype(np.uint8),
            "src_hi": (rng.integers(0, 3, m).astype(np.uint64) * np.uint64(2**63 + 5)),
            "src_lo": rng.integers(0, 40, m).astype(np.uint64) + np.uint64(2**64 - 41),
            "ts_ns": rng.integers(0, 30, m) + t0}


@pytest.mark.parametrize("cap", [50, 10_000])
def test_chained_batches_match_the_dict_loop(monkeypatch, cap):
    monkeypatch.setattr(ins, "MAX_TTL_ADDRESSES", cap)
    rng = np.random.default_rng(7)
    ref, table = {}, {}
    for k in range(25):
        cols = _batch(rng, 300, k * 10)       # (overlapping times: an earlier packet can come later)
        ref = _reference(cols, ref, cap)
        table = address_ttls(cols, table)
        assert isinstance(table, AddressTtls)
        assert dict(table.items()) == ref
    assert len(ref) == min(cap, 240) and len(table) == len(ref)


def test_mapping_and_find():
    t = address_ttls({"proto": np.array([6, 6, 6, 6]), "tcp_flags": np.array([2, 16, 4, 16]),
                      "ttl": np.array([64, 57, 250, 128]), "ipver": np.array([4, 6, 4, 4], np.uint8),
                      "src_hi": np.array([0, 2**64 - 1, 0, 0], np.uint64),
                      "src_lo": np.array([10, 11, 12, 10], np.uint64),
                      "ts_ns": np.array([5, 6, 7, 4])})
    # (the reset of 4/0/12 left out; 4/0/10's earlier packet, at 4, wins)
    assert address_ttls({k: v[1:2] for k, v in {"proto": np.array([6, 6]), "tcp_flags": np.array([16, 18]),
                                                 "ttl": np.array([64, 57]), "ipver": np.array([4, 4], np.uint8),
                                                 "src_hi": np.zeros(2, np.uint64), "src_lo": np.ones(2, np.uint64),
                                                 "ts_ns": np.array([1, 2])}.items()}) == {}   # (a SYN-ACK: no)
    assert dict(t) == {(4, 0, 10): (4, 128), (6, 2**64 - 1, 11): (6, 57)}
    assert t.get((4, 0, 12)) is None and (4, 0, 10) in t and t[(6, 2**64 - 1, 11)] == (6, 57)
    # both lookups (binary searches for a few keys, one sort for many) agree
    many = 100
    ver = np.array([4, 6, 4] * many, np.int64)
    hi = np.array([0, 2**64 - 1, 0] * many, np.uint64)
    lo = np.array([10, 11, 12] * many, np.uint64)
    assert t.find(ver[:3], hi[:3], lo[:3]).tolist() == [0, 1, -1]
    assert t.find(ver, hi, lo).tolist() == [0, 1, -1] * many
    # a prior given as a dict is not changed, and merges as the table made from it
    prior = {(4, 0, 10): (1, 99)}
    merged = address_ttls({k: np.asarray(v) for k, v in {"proto": [6], "tcp_flags": [16], "ttl": [64], "ipver": [4],
                                                        "src_hi": np.array([0], np.uint64),
                                                        "src_lo": np.array([10], np.uint64), "ts_ns": [3]}.items()},
                          prior)
    assert prior == {(4, 0, 10): (1, 99)} and dict(merged) == {(4, 0, 10): (1, 99)}


def test_answer_store_known():
    s = AnswerStore()
    s.add(DnsAnswers([10, 20], ["192.0.2.1", "192.0.2.2"], ["198.51.100.7", "203.0.113.9"],
                     ["a.example", "b.example"], [1, 2]))
    s.advance(15)           # (the first answer before the cutoff: folded into the slots)
    assert s.known({"198.51.100.7", "203.0.113.9", "::ffff:198.51.100.7", "64:ff9b::c633:6407"}) == \
        {"198.51.100.7", "203.0.113.9"}
    assert s.known([]) == set()


@pytest.mark.parametrize("lo_alone", [True, False])
def test_time_ordered_packets_match_the_dict_loop(lo_alone):
    """Packets in time order (ties included) take _first_per_address's path without a sort of
    the packets when ``src_lo`` alone tells the addresses apart, the sort otherwise (session 31):
    both as the dict loop, and the first positions as a stable sort by (ver, hi, lo, ts) gives."""
    rng = np.random.default_rng(31)
    ref, table = {}, {}
    for k in range(12):
        cols = _batch(rng, 400, k * 10)
        cols["ts_ns"] = np.sort(cols["ts_ns"])          # (equal times kept: ties by position)
        if lo_alone:    # (one version and upper half per lower half)
            cols["ipver"] = np.where(cols["src_lo"] % np.uint64(2) == 0, 4, 6).astype(np.uint8)
            cols["src_hi"] = (cols["src_lo"] % np.uint64(3)) * np.uint64(2**63 + 5)
        ref = _reference(cols, ref, 10_000)
        table = address_ttls(cols, table)
        assert dict(table.items()) == ref
        ver, hi, lo = cols["ipver"].astype(np.int64), cols["src_hi"], cols["src_lo"]
        ts = cols["ts_ns"].astype(np.int64)
        o = np.lexsort((ts, lo, hi, ver))
        head = np.r_[True, (ver[o][1:] != ver[o][:-1]) | (hi[o][1:] != hi[o][:-1]) | (lo[o][1:] != lo[o][:-1])]
        assert ins._first_per_address(ver, hi, lo, ts).tolist() == o[head].tolist()
    assert len(ref) == (40 if lo_alone else 240)
