"""Session 59: Zeek writes a second ``S``/``H`` for a SYN or SYN-ACK at another sequence number
only once that side has closed (sent a FIN or RST). Before, ``init_endpoint``
(src/packet_analysis/protocol/tcp/TCPSessionAdapter.cc) restarts the side's sequence space at
every SYN (SYN_SENT / SYN_ACK_SENT: ``SYN_seq_jump``; ESTABLISHED / PARTIAL: always), so the
SYN's relative number is 0, as the first one's was, and ``update_history`` compares it with
``hist_last_SYN`` (0): no letter. A SYN-ACK sent again with a new ISN (a SYN cookie, a SYN proxy
or load balancer answering the retried SYN) gave ``ShhAFf`` where Zeek writes ``ShAFf``."""
from __future__ import annotations

import shutil

import pytest

pytest.importorskip("scapy")

from chunkcmp import assert_same, write  # noqa: E402
from test_live_session import assert_live_same  # noqa: E402

from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.rules import load_rules  # noqa: E402
from pcapbuild import step_records  # noqa: E402

C, S = ("192.0.2.10", 50000), ("203.0.113.10", 23101)
RULES = load_rules()


def _records(steps, t0=1000.0, gap=0.1):
    return step_records(steps, t0, gap, C, S)


#: SYN, SYN-ACK (ISN 5000), the SYN-ACK again with ISN 7000 (a new one), ACK, FIN each way
NEW_ISN = [("c", "S", 1000), ("s", "SA", 5000, 1001), ("s", "SA", 7000, 1001), ("c", "A", 1001, 7001),
           ("c", "FA", 1001, 7001), ("s", "FA", 7001, 1002), ("c", "A", 1002, 7002)]
#: the server's RST, then a SYN-ACK at another number: the closed side's letter is written again
AFTER_RST = [("c", "S", 1000), ("s", "SA", 5000, 1001), ("s", "RA", 5001, 1001), ("s", "SA", 9000, 1001)]
CASES = {"synack_new_isn": (NEW_ISN, "SF", "ShAFf"), "synack_after_own_rst": (AFTER_RST, "RSTR", "Shrh")}


@pytest.mark.parametrize("name", sorted(CASES))
def test_syn_letters_like_zeek_whole_and_chunked(tmp_path, name):
    steps, state, history = CASES[name]
    path = write(tmp_path, _records(steps))
    f = analyze_file(path, RULES).flows
    assert (list(f.conn_state), list(f.history)) == ([state], [history])
    w = assert_same(path, (200, 400))
    assert list(w.history) == [history]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark (Wireshark) not installed")
@pytest.mark.parametrize("name", sorted(CASES))
def test_syn_letters_like_zeek_tshark_engine(tmp_path, name):
    steps, state, history = CASES[name]
    f = analyze_file(write(tmp_path, _records(steps)), RULES, engine="tshark").flows
    assert (list(f.conn_state), list(f.history)) == ([state], [history])


@pytest.mark.parametrize("name", sorted(CASES))
def test_syn_letters_like_zeek_live(tmp_path, monkeypatch, name):
    steps, _, history = CASES[name]
    path = write(tmp_path, _records(steps))
    assert list(analyze_file(path, RULES).flows.history) == [history]
    assert_live_same(path, monkeypatch, step=2)


# --- a SYN after another connection's packets on the 5-tuple: a new flow (Zeek's IsReuse) -------

#: the capture begins inside a connection (data each way), which closes (FINs, or the server's
#: RST, or nothing), then the client opens a new one from the same port 1 s later (ISN 1000);
#: Zeek: two connections, the first partial ('DdFfA' SF, 'Ddr' RSTRH, 'Dd' OTH), the second 'ShAFf'
_OLD = [("c", "PA", 400, 9000, b"abc"), ("s", "PA", 9000, 403, b"defg")]
_NEW = [("c", "S", 1000), ("s", "SA", 5000, 1001), ("c", "A", 1001, 5001), ("c", "FA", 1001, 5001),
        ("s", "FA", 5001, 1002), ("c", "A", 1002, 5002)]
REUSE = {
    "fins": (_OLD + [("c", "FA", 403, 9004), ("s", "FA", 9004, 404), ("c", "A", 404, 9005)], "SF", "DdFfA"),
    "rst": (_OLD + [("s", "RA", 9004, 403)], "RSTRH", "Ddr"),
    "silent": (_OLD, "OTH", "Dd"),
}


def _reuse_records(name):
    old, _, _ = REUSE[name]
    return _records(old, gap=0.01) + _records(_NEW, t0=1001.0, gap=0.01)


def _rows(f):
    return sorted(zip(f.conn_state, f.history, f.orig_bytes, f.resp_bytes, f.partial))


@pytest.mark.parametrize("name", sorted(REUSE))
def test_syn_after_another_connection_is_a_new_flow(tmp_path, name):
    _, state, history = REUSE[name]
    path = write(tmp_path, _reuse_records(name))
    f = analyze_file(path, RULES).flows
    assert _rows(f) == sorted([(state, history, 3, 4, True), ("SF", "ShAFf", 0, 0, False)])
    assert list(f.sort_values("ts").verdict)[1] == "ok"
    w = assert_same(path, (200, 400))
    assert _rows(w) == _rows(f)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark (Wireshark) not installed")
@pytest.mark.parametrize("name", sorted(REUSE))
def test_syn_after_another_connection_tshark_engine(tmp_path, name):
    path = write(tmp_path, _reuse_records(name))
    assert _rows(analyze_file(path, RULES, engine="tshark").flows) == _rows(analyze_file(path, RULES).flows)


@pytest.mark.parametrize("name", sorted(REUSE))
def test_syn_after_another_connection_live(tmp_path, monkeypatch, name):
    path = write(tmp_path, _reuse_records(name))
    assert len(analyze_file(path, RULES).flows) == 2
    assert_live_same(path, monkeypatch, step=2)


@pytest.mark.parametrize("steps", [
    # the SYN-ACK captured before the SYN it answers; the client's ACK before its SYN: one flow
    [("s", "SA", 5000, 1001), ("c", "S", 1000), ("c", "A", 1001, 5001)],
    [("c", "A", 1001, 5001), ("c", "S", 1000), ("s", "SA", 5000, 1001), ("c", "A", 1001, 5001)],
    # the server's refusal captured before the SYN: one REJ flow
    [("s", "RA", 0, 1001), ("c", "S", 1000)],
])
def test_packets_of_the_same_connection_before_its_syn_stay_one_flow(tmp_path, monkeypatch, steps):
    path = write(tmp_path, _records(steps, gap=0.005))
    assert len(analyze_file(path, RULES).flows) == 1
    assert_live_same(path, monkeypatch, step=1)
