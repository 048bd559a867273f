"""A stall needs unacknowledged bytes sent again at the end (s40): a spurious retransmission of
bytes the receiver had acknowledged (Wireshark's ``tcp.analysis.spurious_retransmission``: an
RTO fired while the ACK was merely late) followed by normal progress is no stall, however the
connection ends; the last bytes sent again 3+ times and never acknowledged still are
(``blocked``/``no_answer``, the stall's detail). IPv4 and IPv6, sequence numbers wrapping past
2^32, whole = chunked (small chunks and batches, flows carried across them) = live = tshark."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest
from scapy.layers.inet import TCP

from chunkcmp import assert_same, chunked, whole, write
from pcapbuild import eth, ip_of
from kscc_traffic import chunked as chunked_mod
from kscc_traffic.analyze import analyze_file
from kscc_traffic.rules import load_rules

RULES = load_rules()
REC = b"\x17\x03\x03\x00\x3b" + bytes(59)      # a 64-byte TLS record
M32 = 0xFFFFFFFF
STALL = ("the connection stalled: the responder acknowledged none of the originator's last bytes, sent again, "
         "in the {gap} s after their first sending (a firewall that dropped the connection: an idle session timed "
         "out, a path broken)")
ADDRS = {4: (("192.0.2.10", 50000), ("198.51.100.20", 13000)),
         6: (("2001:db8::10", 50000), ("2001:db8:1::20", 13000))}


class _Conv:
    """One TCP connection's records ((ts, frame bytes)), built packet by packet."""

    def __init__(self, ver: int = 4, isn_c: int = 1000, isn_s: int = 5000, t: float = 1.0):
        self.c_addr, self.s_addr = ADDRS[ver]
        self.recs: list = []
        self.c, self.s = (isn_c + 1) & M32, (isn_s + 1) & M32    # next sequence numbers
        self.t = t
        self.up(flags="S", seq=isn_c)
        self.dn(flags="SA", seq=isn_s, ack=self.c)
        self.up(flags="A", seq=self.c, ack=self.s)

    def _add(self, frame, dt):
        if frame.payload.version == 4:
            frame.payload.id = 100 + len(self.recs)      # (each packet its own IP id, as a stack sends)
        self.recs.append((round(self.t, 6), bytes(frame)))
        self.t += dt

    def up(self, data=b"", dt=.01, **kw):
        (ch, cp), (sh, sp) = self.c_addr, self.s_addr
        self._add(eth(ip_of(ch, sh) / TCP(sport=cp, dport=sp, **kw) / data), dt)

    def dn(self, data=b"", dt=.01, **kw):
        (ch, cp), (sh, sp) = self.c_addr, self.s_addr
        self._add(eth(ip_of(sh, ch) / TCP(sport=sp, dport=cp, **kw) / data,
                      src="02:00:00:00:00:01", dst="02:00:00:00:00:10"), dt)

    def request(self) -> int:
        """The client's record (its sequence number returned), not acknowledged yet."""
        seq = self.c
        self.up(REC, flags="PA", seq=seq, ack=self.s)
        self.c = (seq + len(REC)) & M32
        return seq

    def answer(self) -> None:
        """The server's record acknowledging all of the client's, and the client's ACK."""
        self.dn(REC, flags="PA", seq=self.s, ack=self.c)
        self.s = (self.s + len(REC)) & M32
        self.up(flags="A", seq=self.c, ack=self.s)

    def rounds(self, n: int) -> None:
        for _ in range(n):
            self.request()
            self.answer()

    def spurious(self, ack_late: bool) -> None:
        """A request whose ACK is late: the client sends it again (an RTO fired too soon) before
        (``ack_late``) or after that ACK arrives (both spurious: Wireshark's)."""
        seq = self.request()
        if ack_late:
            self.up(REC, flags="PA", seq=seq, ack=self.s, dt=.02)
            self.answer()
        else:
            self.answer()
            self.up(REC, flags="PA", seq=seq, ack=self.s)

    def resend(self, seq: int, times: int, first_gap: float = 1.0) -> None:
        """The record at ``seq`` sent again ``times`` times (``first_gap`` s later, then 2, 4, 8… s
        apart: an RTO backing off), never acknowledged."""
        self.t += first_gap - .01
        for k in range(times):
            self.up(REC, flags="PA", seq=seq, ack=self.s, dt=2 ** (k + 1) - .01 if k + 1 < times else .01)

    def close(self) -> None:
        self.up(flags="FA", seq=self.c, ack=self.s)
        self.dn(flags="FA", seq=self.s, ack=(self.c + 1) & M32)
        self.up(flags="A", seq=(self.c + 1) & M32, ack=(self.s + 1) & M32)


def _case(kind: str, ver: int = 4, isn_c: int = 1000, isn_s: int = 5000, ack_late: bool = True,
          before: int = 1, spurious: int = 1, keepalives: int = 1) -> tuple[list, float | None]:
    """The records of one connection and, for a stall, the seconds its detail tells. ``kind``:

    - ``close``: a spurious retransmission, a request answered, both sides close (SF);
    - ``tail``: a spurious retransmission, a request answered, a last request never acknowledged
      nor sent again, the server's ACK of the earlier bytes 10 s later (its last packet);
    - ``stall``: a spurious retransmission, a request answered, the last request sent again 4
      times and never acknowledged (the capture goes on: ``keepalives`` keep-alives of the
      server, 15 s apart, each acknowledged by the client);
    - ``stall_una``: two requests in flight, the first (SND.UNA: what an RTO sends again) sent
      again 4 times, neither acknowledged;
    - ``stall_close``: as ``stall``, then the client closes (its FIN, sent once after the
      request's last sending: no new byte), then ``keepalives`` - 1 keep-alives;
    - ``fin_resent``: every request acknowledged, the client's FIN sent 4 times, never
      acknowledged (no byte of data unacknowledged: no stall, as before);
    - ``fin_after``: a last request sent once, then the client's FIN sent 4 times, neither
      acknowledged (the FIN octet sent again at the end: a stall).

    ``before``: request/answer rounds before the spurious retransmission; ``spurious``: how many
    of them (each of another request)."""
    cv = _Conv(ver, isn_c, isn_s)
    cv.rounds(before)
    for _ in range(spurious):
        cv.spurious(ack_late)
    cv.rounds(1)
    gap = None
    if kind == "close":
        cv.close()
    elif kind == "tail":
        cv.request()
        cv.t += 10
        cv.dn(flags="A", seq=cv.s, ack=(cv.c - len(REC)) & M32)
    elif kind in ("fin_resent", "fin_after"):
        t_first = cv.t
        if kind == "fin_after":
            cv.request()
        for k in range(4):
            cv.up(flags="FA", seq=cv.c, ack=cv.s, dt=2 ** (k + 1) if k < 3 else .01)
        gap = cv.t - .01 - t_first
    elif kind == "stall_close":
        t_first = cv.t
        seq = cv.request()
        cv.resend(seq, 4)
        cv.up(flags="FA", seq=cv.c, ack=cv.s)
        for _ in range(keepalives - 1):     # (the server's keep-alives, the client's ACKs)
            cv.t += 15
            cv.dn(flags="A", seq=(cv.s - 1) & M32, ack=seq)
            cv.up(flags="A", seq=(cv.c + 1) & M32, ack=cv.s)
        gap = cv.t - .01 - t_first
    elif kind in ("stall", "stall_una"):
        t_first = cv.t             # (the first sending of the last new byte: from it the seconds count)
        seq = cv.request()
        if kind == "stall_una":
            t_first = cv.t
            cv.request()
        cv.resend(seq, 4)
        for _ in range(keepalives):
            # (the server's keep-alive, one byte behind its end, and the client's ACK of it)
            cv.t += 15
            cv.dn(flags="A", seq=(cv.s - 1) & M32, ack=seq)
            cv.up(flags="A", seq=cv.c, ack=cv.s)
        gap = cv.t - .01 - t_first
    else:
        raise ValueError(kind)
    return cv.recs, gap


def _verdict(flows: pd.DataFrame) -> tuple:
    (r,) = flows.to_dict("records")
    return r["verdict"], r["reason"], r["detail"], r["conn_state"]


def _want(kind: str, gap: float | None) -> tuple:
    if kind == "close":
        return "ok", "", "", "SF"
    if kind == "tail":
        return "ok", "", "", "S1"
    if kind == "fin_resent":
        return "ok", "", "", "S2"
    return "blocked", "no_answer", STALL.format(gap=f"{gap:.1f}"), "S2" if kind in ("stall_close", "fin_after") else "S1"


CASES = [("close", 4, 1000, 5000), ("tail", 4, 1000, 5000), ("stall", 4, 1000, 5000), ("stall_una", 4, 1000, 5000),
         ("tail", 6, 1000, 5000), ("stall", 6, 1000, 5000),
         # (sequence numbers wrapping past 2^32 in the middle of the requests, and of the answers)
         ("tail", 4, M32 - 150, M32 - 100), ("stall", 4, M32 - 150, M32 - 100),
         ("stall_una", 6, M32 - 220, M32 - 30), ("close", 6, M32 - 220, M32 - 30),
         ("stall_close", 4, 1000, 5000), ("stall_close", 6, M32 - 90, 5000), ("fin_resent", 4, 1000, 5000),
         ("fin_resent", 6, M32 - 200, 5000), ("fin_after", 4, 1000, 5000), ("fin_after", 6, M32 - 240, M32)]


@pytest.mark.parametrize("ack_late", [True, False], ids=["resent-before-the-late-ack", "resent-after-the-ack"])
@pytest.mark.parametrize("kind, ver, isn_c, isn_s", CASES,
                         ids=[f"{k}-v{v}-{'wrap' if i > M32 // 2 else 'low'}" for k, v, i, _ in CASES])
def test_spurious_retransmission_is_no_stall_a_true_one_is(tmp_path, kind, ver, isn_c, isn_s, ack_late):
    recs, gap = _case(kind, ver, isn_c, isn_s, ack_late)
    path = write(tmp_path, recs)
    flows, a = whole(path)
    assert a.duplicates == 0
    r = flows.iloc[0]
    assert r["orig_pkts"] + r["resp_pkts"] == len(recs)
    assert _verdict(flows) == _want(kind, gap), r["history"]
    assert (":" in r["orig_h"]) == (ver == 6)
    # (in chunks of a few packets each: the flow carried from batch to batch)
    assert_same(path, [400, 900, 2500])


@pytest.mark.parametrize("before, spurious", [(30, 1), (2, 10)], ids=["30-rounds", "10-spurious"])
@pytest.mark.parametrize("kind", ["tail", "stall", "stall_una", "stall_close", "fin_after"])
def test_long_connections_whole_chunked_small_batches_and_live_agree(tmp_path, monkeypatch, kind, before, spurious):
    """More than 25 data segments of the client before the end (more than the packets a
    chunked or live analysis keeps of a flow: the first 8, the first 25 data segments per
    direction), so its bytes sent again at the end are among the packets summarised away unless
    kept for the rule: the same verdict whole, in chunks, in batches of 5 records, and live
    too (s41: what the packets it did not keep stand for reaches the analysis, so it sees bytes
    sent again past the first 25 segments as well)."""
    from test_live_session import assert_live_same
    recs, gap = _case(kind, 4, M32 - 1000, 77, before=before, spurious=spurious, keepalives=4)
    path = write(tmp_path, recs)
    flows, _ = whole(path)
    assert _verdict(flows) == _want(kind, gap)
    assert_same(path, [600, 1500, 5000])
    big = path.stat().st_size * 4 + 4096
    monkeypatch.setattr(chunked_mod, "BATCH_RECORDS", 5)
    monkeypatch.setattr(chunked_mod, "BATCH_PACKETS", 0)
    small, _ = chunked(path, big)
    pd.testing.assert_frame_equal(small, flows)
    monkeypatch.undo()
    assert_live_same(path, monkeypatch, step=7)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
@pytest.mark.parametrize("kind, ver", [("tail", 4), ("stall", 4), ("stall_una", 6), ("tail", 6)])
def test_tshark_engine_same_verdict(tmp_path, kind, ver):
    recs, gap = _case(kind, ver, M32 - 150, M32 - 100)
    path = write(tmp_path, recs)
    got = analyze_file(path, RULES, engine="tshark").flows
    assert _verdict(got) == _want(kind, gap)
