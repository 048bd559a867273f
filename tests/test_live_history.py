"""A live session keeps, of a flow's packets past its head, every packet that writes a Zeek
history letter (``flows.HistoryState``, the rules of ``flows.history_codes`` one packet at a
time), so its rows' ``history`` is what ``analyze`` gives for the same packets.

Its own bit mask kept only the first packet of each of S H A D F R per direction, with ``D`` for
any payload: a letter written again at another sequence number (``RRRR``, ``FFFF``) or a ``D``
after payload carried on FINs was lost once the flag and payload-segment budgets were spent."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from test_live_session import _scapy_pcap, assert_live_same

from kscc_traffic.analyze import analyze_file
from kscc_traffic.flows import ACK, FIN, RST, SYN, HistoryState, history_codes
from kscc_traffic.rules import load_rules

RULES = load_rules()
C, S = 1000, 5000

CASES = {
    # the client's 33 RSTs at one sequence number (the flag budget spent), then 3 at others
    "rst_repeats": ("DaRRRR", [(True, "PA", C, S, b"x" * 10), (False, "A", S, C + 10, b"")]
                    + [(True, "R", C + 10, 0, b"")] * 33 + [(True, "R", C + 10 + k, 0, b"") for k in (5, 9, 13)]),
    # 40 FINs at one number, then 3 at others
    "fin_repeats": ("DFFFF", [(True, "PA", C, S, b"x" * 10)] + [(True, "FA", C + 10, S, b"")] * 40
                    + [(True, "FA", C + 10 - k, S, b"") for k in (1, 2, 3)]),
    # 40 FINs carrying 10 bytes (no D: Zeek's letter for them is F; the 2nd to 40th repeat the
    # bytes: Zeek's T at the 1st and 10th, session 61), then older bytes without FIN
    "data_after_fins_with_payload": ("FTTD", [(True, "FA", C + 20, S, b"y" * 10)] * 40
                                     + [(True, "PA", C + 5, S, b"z" * 5)]),
    # FIN+RST packets (I), then a FIN alone at an older number (its first F)
    "fin_after_finrst": ("DIF", [(True, "PA", C, S, b"x" * 10)] + [(True, "FRA", C + 10, S, b"")] * 40
                         + [(True, "FA", C + 5, S, b"")]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_live_history_is_analyzes(tmp_path, monkeypatch, name):
    """At most 2 packets of head kept per flow, 5 frames a batch: the live table (history
    included, every column) is analyze's."""
    history, steps = CASES[name]
    path = tmp_path / f"{name}.pcap"
    _scapy_pcap(path, steps)
    assert list(analyze_file(path, RULES).flows["history"]) == [history]
    assert_live_same(path, monkeypatch, step=5)


# --- HistoryState is history_codes, one packet at a time -----------------------------------------

FLAGS = st.sampled_from([SYN, SYN | ACK, ACK, ACK, ACK | 0x08, FIN | ACK, FIN, RST, RST | ACK, FIN | RST | ACK,
                         SYN | FIN, SYN | RST, SYN | FIN | RST, 0, 0x08])
PACKET = st.tuples(st.booleans(), FLAGS, st.sampled_from([0, 1, 5, 0xFFFF_FFFF, 1 << 32]),
                   st.sampled_from([-1, 0, 0, 1, 10]), st.booleans())


def _columns(packets):
    d = np.array([p[0] for p in packets], bool)
    flags = np.array([p[1] for p in packets], np.int64)
    seq = np.array([p[2] for p in packets], np.int64)
    plen = np.array([p[3] for p in packets], np.int64)
    tcp = np.array([p[4] for p in packets], bool)
    # (a TCP header cut by the snaplen: no flags, payload -1, as the decoder gives it)
    flags = np.where(tcp & (plen < 0), 0, np.where(tcp, flags, 0))
    plen = np.where(~tcp, np.maximum(plen, 0), plen)
    return d, flags, seq, plen, tcp


def _letters(code) -> str:
    letters = "SHADFRIQ" + "shadfriq"
    return "".join(letters[c] for c in code if c >= 0)


@settings(max_examples=300, deadline=None)
@given(st.lists(PACKET, max_size=40), st.lists(st.booleans(), min_size=40, max_size=40))
def test_history_state_writes_history_codes_letters(packets, extra):
    """Per packet, HistoryState's letter is history_codes' (one flow; direction False: the
    originator); and the packets that write one, with any others, write the same letters."""
    d, flags, seq, plen, tcp = _columns(packets)
    n = len(packets)
    code, _ = history_codes(np.zeros(n, np.int64), ~d, flags, tcp, seq, plen)
    h = HistoryState()
    got = [h.step(int(x), int(f), bool(t), int(q), int(p)) for x, f, t, q, p in
           zip(d.tolist(), flags.tolist(), tcp.tolist(), seq.tolist(), plen.tolist())]
    assert got == code.tolist()
    sub = np.flatnonzero((code >= 0) | np.array(extra[:n], bool))
    code2, _ = history_codes(np.zeros(len(sub), np.int64), ~d[sub], flags[sub], tcp[sub], seq[sub], plen[sub])
    assert _letters(code2) == _letters(code)


def test_history_state_examples():
    """Zeek's letters: a FIN's payload writes no D, FIN+RST is I, SYN+FIN Q, a FIN again at the
    number after its payload (seq + length) nothing, at another one F again."""
    h = HistoryState()
    steps = [(0, SYN, 100, 0), (1, SYN | ACK, 500, 0), (0, ACK, 101, 0), (0, FIN | ACK, 101, 5),
             (0, FIN | ACK, 101, 5), (0, FIN | ACK, 106, 0), (0, FIN | ACK, 107, 0), (1, FIN | RST | ACK, 501, 0),
             (1, SYN | FIN, 9, 0),
             (1, ACK, 502, 3), (1, ACK, 502, 3)]
    got = [h.step(d, f, True, q, p) for d, f, q, p in steps]
    assert _letters(got) == "ShAFFiqd"
