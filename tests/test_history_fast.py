"""The vectorised Zeek history builder (flows._history) against the simple per-event loop it
replaced."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from kscc_traffic.flows import MAX_HISTORY_REPEATS, _history, after_own_reset


def _history_reference(flow_of, from_orig, flags, is_tcp, seq, plen, nflows, flipped):
    """Zeek's TCPSessionAdapter::UpdateHistory, packet by packet (UDP and the rest: D for payload),
    and its update_last_seq's retransmissions (``T``, scaled: the 1st, 10th … per side; the RESET
    state from flows.after_own_reset, which tests/test_zeek_reset_s60.py compares with Zeek's
    state machine)."""
    hist = ["^" if f else "" for f in flipped]
    reset = after_own_reset(flow_of, from_orig, flags, is_tcp, plen)
    last_seq, start1, rxmit = {}, {}, {}
    seen, last, reps = set(), {}, {}
    # per (flow, side): 0 no packet, 1 open, 2 closed (sent a FIN or RST), 3 its first packet a
    # RST alone; and the start of its sequence space, which init_endpoint sets at every SYN
    # until it closes (so a SYN's relative number is 0 there)
    state, start = {}, {}

    def check(f, o, key, ch):           # Connection::CheckHistory: write once per mask
        ch = ch if o else ch.lower()
        if (f, o, key) not in seen:
            seen.add((f, o, key))
            hist[f] += ch
            return False
        return True

    def again(f, o, key, ch, value):    # S/H, F, R: again when the sequence number changed
        if check(f, o, key, ch) and value != last.get((f, o, key)) \
                and reps.get((f, o, key), 0) < MAX_HISTORY_REPEATS:
            reps[(f, o, key)] = reps.get((f, o, key), 0) + 1
            hist[f] += ch if o else ch.lower()
        last[(f, o, key)] = value

    for r in range(len(flags)):           # packets in time order
        f, o, fl, ln = int(flow_of[r]), bool(from_orig[r]), int(flags[r]), int(plen[r])
        if not is_tcp[r]:
            if ln > 0:
                check(f, o, "D", "D")
            continue
        S, A, F, R = fl & 0x02, fl & 0x10, fl & 0x01, fl & 0x04
        bits = bool(S) + bool(F) + bool(R)
        sq = int(seq[r]) & 0xFFFFFFFF
        if bits > 1:
            if F and R:
                check(f, o, "I", "I")
            else:
                check(f, o, "Q", "Q")
        elif S:
            if state.get((f, o), 0) != 2:
                start[(f, o)] = sq
            again(f, o, "S", "H" if A else "S", (sq - start.setdefault((f, o), sq)) & 0xFFFFFFFF)
        elif F:
            again(f, o, "F", "F", (sq + max(ln, 0)) & 0xFFFFFFFF)
        elif R:
            again(f, o, "R", "R", sq)
        elif ln > 0:
            check(f, o, "D", "D")
        elif A:
            check(f, o, "A", "A")
        if ln >= 0:
            # update_last_seq (init_endpoint first: the side's first packet, or a SYN while open)
            end = (sq + ln + bool(S) + bool(F) - (ln if R else 0)) & 0xFFFFFFFF
            if (f, o) not in last_seq or (S and state.get((f, o), 0) != 2):
                last_seq[(f, o)] = end if S else sq
                start1[(f, o)] = (sq + 1) & 0xFFFFFFFF if S else sq
            delta = ((end - last_seq[(f, o)] + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)
            if (S or R) and abs(delta) > (1 << 20):
                pass
            elif F and last_seq[(f, o)] == start1[(f, o)]:
                last_seq[(f, o)] = end
            elif reset[r]:
                pass
            elif delta > 0:
                last_seq[(f, o)] = end
            elif ln > 0:
                rxmit[(f, o)] = rxmit.get((f, o), 0) + 1
                if str(rxmit[(f, o)]).rstrip("0") == "1":      # (1, 10, 100 …)
                    hist[f] += "T" if o else "t"
            st_ = state.get((f, o), 0)
            if st_ == 0:
                state[(f, o)] = 3 if R and not S and not F else (2 if F or R else 1)
            elif st_ == 1 and (F or R):
                state[(f, o)] = 2
    return hist


packets = st.lists(st.tuples(st.integers(0, 5), st.booleans(), st.integers(0, 0x3F), st.booleans(),
                             st.integers(-1, 3), st.sampled_from([0, 1, 2, 0xFFFFFFFF])), max_size=80)


@settings(max_examples=300, deadline=None)
@given(packets, st.lists(st.booleans(), min_size=6, max_size=6))
def test_history_equals_the_per_event_loop(pk, flipped):
    flow_of = np.array([p[0] for p in pk], np.int64)
    from_orig = np.array([p[1] for p in pk], bool)
    flags = np.array([p[2] for p in pk], np.int64)
    is_tcp = np.array([p[3] for p in pk], bool)
    plen = np.array([p[4] for p in pk], np.int64)
    seq = np.array([p[5] for p in pk], np.int64)
    flipped = np.array(flipped, bool)
    got = _history(flow_of, from_orig, flags, is_tcp, seq, plen, 6, flipped)
    assert got.dtype == object
    assert got.tolist() == _history_reference(flow_of, from_orig, flags, is_tcp, seq, plen, 6, flipped)


def test_every_event_both_ways_fits():
    # every letter of one flow both ways, after the flipped mark; FIN+RST is I, SYN+FIN Q, a
    # RST's or FIN's payload is no D
    n = 14
    flow_of = np.zeros(n, np.int64)
    from_orig = np.array([True] * 7 + [False] * 7)
    flags = np.array([0x02, 0x10, 0x18, 0x05, 0x03, 0x01, 0x04] * 2)
    plen = np.array([0, 0, 5, 0, 0, 3, 4] * 2)
    seq = np.zeros(n, np.int64)
    got = _history(flow_of, from_orig, flags, np.ones(n, bool), seq, plen, 1, np.array([True]))
    assert got.tolist() == ["^SADIQFRsadiqfr"]


def test_repeats_follow_the_sequence_number():
    # Zeek writes F and R again when the sequence number (a FIN's: after its payload) differs
    # from the last of that kind; the same number again writes nothing. S/H again only once the
    # side has closed: before, init_endpoint restarts its sequence space at each SYN (relative
    # number 0, as the first SYN's), so the SYN at 200 and the SYN-ACK at 250 write nothing; the
    # SYN-ACKs after the RSTs are compared (500: another number, written; 500 again: not)
    flags = np.array([0x02, 0x02, 0x02, 0x12, 0x04, 0x04, 0x04, 0x11, 0x19, 0x11, 0x12, 0x12])
    seq = np.array([100, 100, 200, 250, 300, 300, 301, 400, 398, 401, 500, 500])
    plen = np.array([0, 0, 0, 0, 0, 7, 0, 0, 2, 0, 0, 0])
    n = len(flags)
    got = _history(np.zeros(n, np.int64), np.ones(n, bool), flags, np.ones(n, bool), seq, plen, 1,
                   np.array([False]))
    assert got.tolist() == ["SRRFFH"]


def test_repeats_are_capped():
    n = 20
    got = _history(np.zeros(n, np.int64), np.ones(n, bool), np.full(n, 0x04), np.ones(n, bool),
                   np.arange(n) * 10, np.zeros(n, np.int64), 1, np.array([False]))
    assert got.tolist() == ["R" * (1 + MAX_HISTORY_REPEATS)]
