"""Newcomer pass s61, finding #5: slowness made visible.

A TLS session whose server answered the ClientHello only after a long wait (``SLOW_HELLO_S``, 5 s,
from the client's last copy of it) stays ``ok`` with a detail saying so, and a connection whose
server held its receive window closed (zero) for ``WINDOW_HELD_S`` (10 s) or more until the client
reset it (or the capture ended) likewise; the checklist's verified row gets a note and a "To
verify" line for each (:func:`kscc_traffic.report.slow_fix`, :func:`kscc_traffic.report.held_fix`).
A blocked attempt whose ClientHello went unanswered, to a server that answered another one slowly,
says so in its purpose's advice (:func:`kscc_traffic.report.slow_server_text`). Not remarked: a
ClientHello answered at once after it was sent again (a loss), a session idle after its handshake,
a window closed for a moment and opened again.
"""
from __future__ import annotations

import html

import pytest

from chunkcmp import RULES, chunked, whole, write
from pcapbuild import CLIENT_MAC, SERVER_MAC

from kscc_traffic.classify import SLOW_HELLO, SLOW_HELLO_MEANS, WINDOW_HELD, WINDOW_HELD_MEANS, slow_hello_text, \
    window_held_text
from kscc_traffic.html_report import render_html
from kscc_traffic.report import HELD_NOTE, REFUSED_NOTE, SLOW_NOTE, TableSummary, held_fix, readiness, render_table, \
    slow_fix, slow_server_text

pytest.importorskip("cryptography")
from scapy.layers.inet import IP, TCP  # noqa: E402
from scapy.layers.l2 import Ether  # noqa: E402
from test_live_session import _assert_same, _replay  # noqa: E402
from test_newcomer_s61_fixes import (AGENT, ANSWER, CLIENT_FINISH, NAME, REQUEST, SERVER, SERVER_FINISH, T0,  # noqa: E402
                                     _cert, _dns, client_hello, server_flight)

AGENT_RULE = next(r for r in RULES.rules if r.id == "agent_connection")
def _live(path, step=5):
    """The flows of a live session fed ``path`` ``step`` packets at a time."""
    from kscc_traffic.live.session import LiveSession
    s = LiveSession(RULES, name=path.name)
    _replay(path, s, step=step)
    return s.final()


SLOW_DETAIL = ("the server answered the ClientHello after 20.0 s: a slow or overloaded server, or a proxy in the "
               "path; an agent may give up before (its timeout)")


class Conv:
    """The packets of one TCP connection, client ``AGENT`` to ``SERVER``:23101, 10 ms apart, the
    server's window as given (``win``)."""

    def __init__(self, out: list, cport: int, t: float):
        self.out, self.cport, self.t = out, cport, t
        self.cs, self.ss = 1000, 5000

    def c2s(self, flags, data=b"", dt=0.01, seq=None):
        p = Ether(src=CLIENT_MAC, dst=SERVER_MAC) / IP(src=AGENT, dst=SERVER, ttl=64) / TCP(
            sport=self.cport, dport=23101, flags=flags, seq=self.cs if seq is None else seq,
            ack=self.ss if "A" in flags else 0, window=64000)
        self.t += dt
        self.out.append((self.t, p / data if data else p))
        if seq is None:
            self.cs += len(data) + (1 if "S" in flags or "F" in flags else 0)

    def s2c(self, flags, data=b"", dt=0.01, win=64000):
        p = Ether(src=SERVER_MAC, dst=CLIENT_MAC) / IP(src=SERVER, dst=AGENT, ttl=52) / TCP(
            sport=23101, dport=self.cport, flags=flags, seq=self.ss, ack=self.cs, window=win)
        self.t += dt
        self.out.append((self.t, p / data if data else p))
        self.ss += len(data) + (1 if "S" in flags or "F" in flags else 0)

    def session(self, der, wait=0.01, resent=False, idle=0.0):
        """A TLS 1.2 session: its server's flight ``wait`` s after the ClientHello (sent again
        just before it when ``resent``), then a request (``idle`` s later) answered."""
        self.c2s("S", dt=0)
        self.s2c("SA")
        self.c2s("A")
        self.c2s("PA", client_hello(NAME))
        if resent:
            hello = client_hello(NAME)
            self.c2s("PA", hello, dt=wait - 0.03, seq=self.cs - len(hello))
            wait = 0.03
        self.s2c("PA", server_flight(der), dt=wait)
        self.c2s("PA", CLIENT_FINISH)
        self.s2c("PA", SERVER_FINISH)
        self.c2s("PA", REQUEST, dt=0.01 + idle)
        self.s2c("PA", ANSWER)

    def close(self):
        self.c2s("FA")
        self.s2c("FA")
        self.c2s("A")


def _slow_capture(tmp_path, blocked=False, name="s.pcap"):
    """A session answered 20 s after its ClientHello; with ``blocked``, 40 s later another whose
    ClientHello the server leaves unanswered for 30 s, the client then resetting."""
    der, recs = _cert(), []
    _dns(recs)
    c = Conv(recs, 54000, T0 + 1)
    c.session(der, wait=20.0)
    c.close()
    if blocked:
        c = Conv(recs, 54001, T0 + 60)
        c.c2s("S", dt=0)
        c.s2c("SA")
        c.c2s("A")
        c.c2s("PA", client_hello(NAME))
        c.s2c("A")
        c.c2s("RA", dt=30.0)
    return write(tmp_path, sorted(recs, key=lambda r: r[0]), name)


def test_a_slow_server_hello_is_said_and_to_verify(tmp_path):
    path = _slow_capture(tmp_path)
    flows, _ = whole(path)
    agent = flows[flows.purpose == "agent_connection"]
    assert agent[["verdict", "conn_state"]].values.tolist() == [["ok", "SF"]]
    assert agent.detail.tolist() == [SLOW_DETAIL]
    assert slow_hello_text(20.0) == SLOW_DETAIL == f"{SLOW_HELLO}20.0 s: {SLOW_HELLO_MEANS}"
    assert slow_hello_text(4.9) == ""
    # (chunked, the flow spanning many chunks: the same)
    for size in (300, 700):
        parts, _ = chunked(path, size)
        assert parts.detail.tolist() == flows.detail.tolist(), size
        assert parts.verdict.tolist() == flows.verdict.tolist(), size
    _assert_same(path, _live(path))
    row = readiness(flows, RULES).set_index("rule").loc["agent_connection"]
    fix = slow_fix(AGENT_RULE, 1, 1)
    assert (row.status, row.status_note, row.fix) == ("verified", SLOW_NOTE, fix)
    assert SLOW_NOTE == "a server slow to answer the TLS handshake"
    assert fix == ("the server answered the ClientHello of the session on TCP 23100-23199 only after 5 s or more (see "
                   "each flow's detail): the network path works (nothing to open in the firewall), but a slow or "
                   "overloaded server, or a proxy in the path, delays the handshake, and an agent whose timeout is "
                   "shorter gives up (a later attempt can fail so): check the proxy or TLS-inspecting device in the "
                   "path, if any, and how long the agent waits; a cloud server slow on its own is a matter for "
                   "Kaspersky's support")
    summary = TableSummary()
    summary.add(chunked(path, 300)[0])
    got = summary.readiness(RULES).set_index("rule").loc["agent_connection"]
    assert (got.status, got.status_note, got.fix) == ("verified", SLOW_NOTE, fix)
    text = " ".join(x.strip() for x in render_table(flows, RULES, width=400).splitlines())
    assert f"To verify: agent_connection (verified): {fix}" in text
    assert "What to change" not in text
    page = html.unescape(render_html(flows, RULES))
    assert fix in page and SLOW_NOTE in page


def test_a_blocked_attempt_to_a_server_slow_before_says_so(tmp_path):
    path = _slow_capture(tmp_path, blocked=True)
    flows, _ = whole(path)
    agent = flows[flows.purpose == "agent_connection"]
    assert agent.verdict.tolist() == ["ok", "blocked"]
    assert agent.detail.tolist()[0] == SLOW_DETAIL
    assert agent.detail.tolist()[1].startswith("ClientHello not answered")
    said = slow_server_text(SERVER)
    assert said == ("; the same server (198.51.100.77) answered the ClientHello of another connection only after 5 s "
                    "or more (see that flow's detail): it may be slow rather than blocked, the agent giving up before "
                    "its answer (its timeout)")
    row = readiness(flows, RULES).set_index("rule").loc["agent_connection"]
    assert row.status == "blocked" and row.fix.endswith(said)
    summary = TableSummary()
    for part in (chunked(path, 300)[0], ):
        summary.add(part)
    assert summary.readiness(RULES).set_index("rule").loc["agent_connection"].fix == row.fix
    # (no slow session: no such remark)
    der, recs = _cert(), []
    _dns(recs)
    c = Conv(recs, 54000, T0 + 1)
    c.session(der)
    c.close()
    c = Conv(recs, 54001, T0 + 60)
    c.c2s("S", dt=0)
    c.s2c("SA")
    c.c2s("A")
    c.c2s("PA", client_hello(NAME))
    c.c2s("RA", dt=30.0)
    flows, _ = whole(write(tmp_path, sorted(recs, key=lambda r: r[0]), "f.pcap"))
    row = readiness(flows, RULES).set_index("rule").loc["agent_connection"]
    assert row.status == "blocked" and "the same server" not in row.fix


@pytest.mark.parametrize("how", ["resent", "idle", "fast"])
def test_no_remark_for_a_resent_hello_an_idle_session_or_a_fast_one(tmp_path, how):
    # (a ClientHello lost and sent again 20 s later, answered at once: a loss, not a slow server;
    # a session idle for 60 s after its handshake: its answer came at once)
    der, recs = _cert(), []
    _dns(recs)
    c = Conv(recs, 54000, T0 + 1)
    c.session(der, wait=20.0 if how == "resent" else 0.01, resent=how == "resent", idle=60.0 if how == "idle" else 0)
    c.close()
    path = write(tmp_path, sorted(recs, key=lambda r: r[0]))
    flows, _ = whole(path)
    agent = flows[flows.purpose == "agent_connection"]
    assert agent[["verdict", "tls_established", "detail"]].values.tolist() == [["ok", True, ""]]
    assert agent.duration.iloc[0] > (19 if how != "fast" else 0)
    assert chunked(path, 300)[0].detail.tolist() == flows.detail.tolist()
    row = readiness(flows, RULES).set_index("rule").loc["agent_connection"]
    assert (row.status, row.status_note) == ("verified", "")


def _held_capture(tmp_path, ending, name="z.pcap", before=0):
    """A session whose server then acknowledges the client's next record with a zero window and
    answers its probes 10 s apart so for 60 s; ``ending``: 'reset' (the client resets), 'capture'
    (nothing more captured), 'opened' (the server opens its window and answers)."""
    der, recs = _cert(), []
    _dns(recs)
    c = Conv(recs, 54000, T0 + 1)
    c.session(der)
    for _ in range(before):          # (a session past the packets a live session keeps whole)
        c.c2s("PA", REQUEST)
        c.s2c("PA", ANSWER)
    c.c2s("PA", REQUEST)
    c.s2c("A", win=0)
    for _ in range(6):
        c.c2s("A", dt=10.0, seq=c.cs - 1)
        c.s2c("A", win=0)
    if ending == "reset":
        c.c2s("RA", dt=1.0)
    elif ending == "opened":
        c.s2c("A", dt=1.0)
        c.s2c("PA", ANSWER)
        c.close()
    return write(tmp_path, sorted(recs, key=lambda r: r[0]), name)


@pytest.mark.parametrize("ending, state, said, before", [
    ("reset", "RSTO", "the server held its receive window closed (zero) for 61.1 s; the client then reset the "
                      "connection: the server (or a proxy) stopped reading", 0),
    ("reset", "RSTO", "the server held its receive window closed (zero) for 61.1 s; the client then reset the "
                      "connection: the server (or a proxy) stopped reading", 60),
    ("capture", "S1", "the server held its receive window closed (zero) for 60.1 s, until the capture ended: the "
                      "server (or a proxy) stopped reading", 0),
    ("opened", "SF", "", 0)])
def test_a_window_held_closed_is_said_and_to_verify(tmp_path, ending, state, said, before):
    path = _held_capture(tmp_path, ending, before=before)
    flows, _ = whole(path)
    agent = flows[flows.purpose == "agent_connection"]
    assert agent[["verdict", "conn_state", "detail"]].values.tolist() == [["ok", state, said]]
    for size in (300, 700):
        assert chunked(path, size)[0].detail.tolist() == flows.detail.tolist(), size
    _assert_same(path, _live(path))
    row = readiness(flows, RULES).set_index("rule").loc["agent_connection"]
    if not said:
        assert (row.status, row.status_note) == ("verified", "")
        return
    assert said.startswith(WINDOW_HELD) and said.endswith(WINDOW_HELD_MEANS)
    assert window_held_text(9.9, "RSTO") == ""
    fix = held_fix(AGENT_RULE, 1, 1)
    assert (row.status, row.status_note, row.fix) == ("verified", HELD_NOTE, fix)
    assert fix == ("the server held its receive window closed (zero) for 10 s or more in the connection on TCP "
                   "23100-23199, taking none of the agent's bytes, until the agent reset the connection or the "
                   "capture ended (see each flow's detail): the connection opened (nothing to open in the firewall), "
                   "then the server, or a proxy in the path, stopped reading: check the proxy or TLS-inspecting "
                   "device in the path, if any (its load, its connection to the server); a cloud server stalling on "
                   "its own is a matter for Kaspersky's support")
    text = " ".join(x.strip() for x in render_table(flows, RULES, width=400).splitlines())
    assert f"To verify: agent_connection (verified): {fix}" in text
    summary = TableSummary()
    summary.add(chunked(path, 300)[0])
    assert summary.readiness(RULES).set_index("rule").loc["agent_connection"].status_note == HELD_NOTE


def test_several_notes_are_joined(tmp_path):
    from kscc_traffic.report import _readiness_row, refused_fix
    row = _readiness_row(AGENT_RULE, 3, 3, 0, 0, 0, [], ok_refused=1, ok_slow=1, ok_held=1)
    assert row["status"] == "verified"
    assert row["status_note"] == f"{REFUSED_NOTE}; {SLOW_NOTE}; {HELD_NOTE}"
    slow, held = slow_fix(AGENT_RULE, 1, 3), held_fix(AGENT_RULE, 1, 3)
    assert row["fix"] == f"{refused_fix(AGENT_RULE, 1, 3)}. {slow[0].upper()}{slow[1:]}. {held[0].upper()}{held[1:]}"
    assert slow.startswith("the server answered the ClientHello of 1 of the 3 sessions on TCP")
    assert held.startswith("the server held its receive window closed (zero) for 10 s or more in 1 of the 3 "
                           "connections on TCP")


def test_a_name_quoted_from_the_packets_counts_for_nothing(tmp_path):
    # (an SNI holding the words of the detail, quoted in an ok flow's detail: no note, whole or
    # batch by batch)
    der, recs = _cert(), []
    _dns(recs)
    c = Conv(recs, 54000, T0 + 1)
    c.session(der)
    c.close()
    flows, _ = whole(write(tmp_path, sorted(recs, key=lambda r: r[0])))
    name = "x.ksc.kaspersky.com the server answered the ClientHello after 9.0 s: a slow"
    at = flows.index[flows.purpose == "agent_connection"]
    flows.loc[at, "server_name"] = name
    flows.loc[at, "detail"] = f"quoting {name}"
    assert readiness(flows, RULES).set_index("rule").loc["agent_connection"].status_note == ""
    summary = TableSummary()
    summary.add(flows)
    assert summary.ok_slow == {}
    assert summary.readiness(RULES).set_index("rule").loc["agent_connection"].status_note == ""
    # (the same detail not quoting a name: counted)
    flows.loc[at, "server_name"] = "x.ksc.kaspersky.com"
    summary = TableSummary()
    summary.add(flows)
    assert summary.ok_slow == {"agent_connection": 1}
