"""conn_state as Zeek computes it: its endpoint state machine (TCPSessionAdapter.cc,
``UpdateStateMachine`` and the ``Update*State`` functions; TCP_Endpoint.cc ``SetState`` keeps the
previous state) and ``conn_state()`` in scripts/base/protocols/conn/main.zeek. Each case is a
small scapy conversation; the whole-file and chunked analyses must agree on it."""
from __future__ import annotations

import pytest

pytest.importorskip("scapy")
from scapy.layers.inet import IP, TCP  # noqa: E402

from chunkcmp import assert_same, write  # noqa: E402
from kscc_traffic import build_flows, decode, load_rules, read_frames  # noqa: E402
from kscc_traffic.analyze import server_port_fn  # noqa: E402
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth, pcap_bytes  # noqa: E402

C, S = ("192.0.2.10", 50000), ("203.0.113.10", 23101)
SERVER_PORT = server_port_fn(load_rules())
CHUNKS = (200, 400, 900, 2000)


def conv(spec, t0=1000.0, step=0.001, isn_c=1000, isn_s=5000):
    """(ts, frame) for ``spec``: [(side 'c'|'s', scapy flags, payload), …] with consistent
    sequence numbers; ``step`` seconds apart (a number, or a list per packet)."""
    seq = {"c": isn_c, "s": isn_s}
    out, t = [], t0
    for k, item in enumerate(spec):
        side, flags = item[0], item[1]
        data = item[2] if len(item) > 2 else b""
        (sh, sp), (dh, dp) = (C, S) if side == "c" else (S, C)
        other = "s" if side == "c" else "c"
        ack = seq[other] if "A" in flags else 0
        pkt = IP(src=sh, dst=dh, id=k + 1) / TCP(sport=sp, dport=dp, flags=flags, seq=seq[side], ack=ack)
        if data:
            pkt = pkt / data
        src, dst = (CLIENT_MAC, SERVER_MAC) if side == "c" else (SERVER_MAC, CLIENT_MAC)
        out.append((t, eth(pkt, src=src, dst=dst)))
        seq[side] += len(data) + ("S" in flags) + ("F" in flags)
        t += step[k] if isinstance(step, list) else step
    return out


def flows_of(records):
    return build_flows(decode(read_frames(pcap_bytes(records))), server_port=SERVER_PORT).flows


def one(records):
    f = flows_of(records)
    assert len(f) == 1, f[["conn_state", "history"]]
    return f.iloc[0]


HS = [("c", "S"), ("s", "SA"), ("c", "A")]
CASES = {
    # UpdateClosedState: a RST after FINs from both sides changes nothing (peer CLOSED) -> SF
    "fin_fin_rst": (HS + [("c", "PA", b"hello"), ("s", "PA", b"world"), ("c", "FA"), ("s", "FA"),
                          ("c", "R")], "SF", "ShADdFfR"),
    # UpdateEstablishedState: FIN, then RST from the originator, then the responder's FIN turns
    # the originator's RESET (prev_state CLOSED) back to CLOSED -> SF
    "fin_rst_fin": (HS + [("c", "PA", b"hello"), ("c", "FA"), ("c", "R"), ("s", "FA")], "SF", "ShADFRf"),
    # midstream: both endpoints PARTIAL, a FIN each -> both CLOSED -> SF
    "mid_fin_both": ([("c", "PA", b"x" * 10), ("s", "PA", b"y" * 20), ("c", "FA"), ("s", "FA"), ("c", "A")],
                     "SF", "DdFfA"),
    # conn_state(): responder RESET, originator inactive (PARTIAL) -> RSTRH
    "mid_rst_resp": ([("c", "PA", b"x" * 10), ("s", "PA", b"y" * 20), ("s", "RA")], "RSTRH", "Ddr"),
    # SYN missed: the SYN-ACK makes the responder ESTABLISHED, the originator's ACK then
    # establishes it too (UpdateInactiveState) -> FINs -> SF
    "synack_first": ([("s", "SA"), ("c", "A"), ("c", "PA", b"abc"), ("s", "PA", b"def"), ("c", "FA"),
                      ("s", "FA"), ("c", "A")], "SF", "^hADdFf"),
    # Zeek's own baseline (conn_state-RST-behavior): 'SaFR, OTH' - the FIN breaks the RSTOS0
    # history pattern /^?S[^HAFGIQ]*R.*/; responder INACTIVE (its ACK came while SYN_SENT)
    "SaFR": ([("c", "S"), ("s", "A"), ("c", "F"), ("c", "R")], "OTH", "SaFR"),
    # same baseline: 'SaR, RSTOS0' and 'SR, RSTOS0'
    "SaR": ([("c", "S"), ("s", "A"), ("c", "R")], "RSTOS0", "SaR"),
    "SR": ([("c", "S"), ("c", "R")], "RSTOS0", "SR"),
    # conn_state(): responder RESET while the originator is SYN_SENT -> REJ
    "rej": ([("c", "S"), ("s", "RA")], "REJ", "Sr"),
    # the originator's FIN while the responder is inactive -> SH; the responder's -> SHR
    "SH": ([("c", "S"), ("c", "F")], "SH", "SF"),
    "established_S1": (HS + [("c", "PA", b"x"), ("s", "PA", b"y")], "S1", "ShADd"),
    "S2": (HS + [("c", "FA")], "S2", "ShAF"),
    "S3": (HS + [("s", "FA")], "S3", "ShAf"),
    # established then a RST each way
    "RSTO": (HS + [("c", "PA", b"x"), ("c", "RA")], "RSTO", "ShADR"),
    "RSTR": (HS + [("s", "PA", b"y"), ("s", "RA")], "RSTR", "ShAdr"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_conn_state_like_zeek(name):
    spec, state, history = CASES[name]
    r = one(conv(spec))
    assert (r.conn_state, r.history) == (state, history)


def test_responder_ack_after_the_originators_fin_counts_whole_and_chunked(tmp_path):
    """The responder's pure ACKs while the originator is SYN_SENT leave it INACTIVE
    (UpdateInactiveState); its first one after the originator's FIN makes it PARTIAL, so its FIN
    later turns the originator's RESET (prev_state CLOSED) back to CLOSED
    (UpdateEstablishedState) -> SF. That ACK is far from the flow's head and followed by many
    packets: the chunked analysis must carry it (flows.state_event_rows)."""
    spec = ([("c", "S")] + [("s", "A")] * 12 + [("c", "F"), ("s", "A")] + [("c", "A")] * 12
            + [("c", "R"), ("s", "FA")])
    recs = conv(spec)
    r = one(recs)
    assert (r.conn_state, r.history) == ("SF", "SaFARf")
    # without that ACK the responder stays INACTIVE and its FIN revives nothing -> RSTO
    # (conn_state(): originator RESET, responder CLOSED is not inactive)
    r = one(recs[:14] + recs[15:])
    assert (r.conn_state, r.history) == ("RSTO", "SaFARf")
    w = assert_same(write(tmp_path, recs), CHUNKS)
    assert list(w.conn_state) == ["SF"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_whole_and_chunked_agree(tmp_path, name):
    spec, state, _ = CASES[name]
    if spec[:3] == HS:
        # a long middle (data changes no endpoint state), so the packets that matter are not all
        # among the few always carried from chunk to chunk
        spec = HS + [("c", "PA", b"x" * 40), ("s", "A")] * 8 + spec[3:]
    w = assert_same(write(tmp_path, conv(spec)), CHUNKS)
    assert list(w.conn_state) == [state]


def _rej_retry(gaps=(0.0, 0.5, 1.5)):
    """A Windows connect retry: SYN answered by RST, the same SYN (same ISN) again later."""
    recs = []
    for k, d in enumerate(gaps):
        recs += conv([("c", "S"), ("s", "RA")], t0=1000.0 + d)
    return recs


def test_syn_retried_after_a_reset_with_the_same_isn_is_one_attempt(tmp_path):
    """Zeek's TCPSessionAdapter::IsReuse would make each SYN on the reset connection a new one
    (three REJ); the same ISN says it is one connection attempt retried (Windows retries a SYN
    answered by a RST twice), so it stays one flow, as Wireshark shows it: REJ, three SYNs."""
    f = flows_of(_rej_retry())
    assert list(f.conn_state) == ["REJ"] and list(f.orig_pkts) == [3] and list(f.resp_pkts) == [3]
    w = assert_same(write(tmp_path, _rej_retry()), CHUNKS)
    assert list(w.conn_state) == ["REJ"]


def test_syn_retry_after_the_originators_rst_alone_is_rstos0():
    """SYN, the responder's bare ACK (a stale connection), the originator's RST: Zeek's baseline
    says 'SaR, RSTOS0'."""
    f = flows_of(conv([("c", "S"), ("s", "A"), ("c", "R")]))
    assert f[["conn_state", "history"]].values.tolist() == [["RSTOS0", "SaR"]]


def test_retransmitted_syn_without_close_stays_one_flow():
    f = flows_of(conv([("c", "S")]) + conv([("c", "S"), ("s", "SA"), ("c", "A")], t0=1000.5))
    assert (len(f), f.conn_state[0], f.orig_pkts[0]) == (1, "S1", 3)


@pytest.mark.parametrize("case", ["rej_retry", "resp_ack_after_fin", "SaR_retry"])
def test_live_session_gives_the_same_states(tmp_path, monkeypatch, case):
    """The live session keys flows and keeps packets by its own per-packet code: same table as
    ``analyze`` (a SYN retried after a RST; the responder's ACK after the originator's FIN
    carried even when almost every packet is summarised into counters)."""
    from kscc_traffic.live import session as live
    from test_live_session import RULES, _assert_same, _replay
    monkeypatch.setattr(live, "HEAD_PACKETS", 2)
    if case == "rej_retry":
        recs = _rej_retry()
    elif case == "resp_ack_after_fin":
        recs = conv([("c", "S")] + [("s", "A")] * 12 + [("c", "F"), ("s", "A")] + [("c", "A")] * 12
                    + [("c", "R"), ("s", "FA")])
    else:
        recs = conv([("c", "S"), ("s", "A"), ("c", "R")])
        recs += conv([("c", "S"), ("s", "SA"), ("c", "A"), ("c", "FA"), ("s", "FA")], t0=1001.0)
    path = write(tmp_path, recs, f"{case}.pcap")
    s = live.LiveSession(RULES, name=path.name)
    _replay(path, s, step=3)
    _assert_same(path, s.final())
