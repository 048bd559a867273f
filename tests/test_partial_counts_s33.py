"""The checklist's "N of M flows ok" says how many of the ok flows began before the capture
(session 33): a connection whose SYN was not captured (reason ``partial``) still counts among the
flows and the ok ones, as Zeek's conn.log and Wireshark's conversations count it, but it shows a
connection that had worked, not one opened now; so the figure reads ``2 of 3 flows ok (1 of them
started before the capture), 1 blocked``. Whole table and the streaming summary alike."""
from __future__ import annotations

from checklistcheck import checklists
from chunkcmp import write
from test_synretry_s31 import CH, FINISHED13, SH, _pkt

from kscc_traffic import analyze
from kscc_traffic.report import ok_of_text

C, S, PORT = "192.0.2.10", "203.0.113.10", 23100


def _capture(partial=True):
    """A connection with its handshake (port 50002), a refused attempt after it (50001: no
    connection after it, so it stays blocked), and, when ``partial``, one already open when the
    capture began (50003: data both ways, no SYN)."""
    recs = []
    h = ((C, 50001), (S, PORT))
    recs += [_pkt(h, 1003.0, True, "S", 1000), _pkt(h, 1003.02, False, "RA", 0, 1001)]
    h = ((C, 50002), (S, PORT))
    c, s = 2001 + len(CH), 7001 + len(SH)
    recs += [_pkt(h, 1001.0, True, "S", 2000), _pkt(h, 1001.02, False, "SA", 7000, 2001),
             _pkt(h, 1001.03, True, "A", 2001, 7001), _pkt(h, 1001.04, True, "PA", 2001, 7001, CH),
             _pkt(h, 1001.06, False, "PA", 7001, c, SH), _pkt(h, 1001.065, True, "PA", c, s, FINISHED13),
             _pkt(h, 1001.07, True, "FA", c + len(FINISHED13), s),
             _pkt(h, 1001.08, False, "FA", s, c + len(FINISHED13) + 1), _pkt(h, 1001.09, True, "A", c + len(FINISHED13) + 1, s + 1)]
    if partial:
        h = ((C, 50003), (S, PORT))
        recs += [_pkt(h, 999.0, True, "PA", 3000, 8000, b"z" * 40), _pkt(h, 999.02, False, "PA", 8000, 3040, b"w" * 50),
                 _pkt(h, 999.03, True, "A", 3040, 8050)]
    return sorted(recs, key=lambda r: r[0])


def test_ok_flows_begun_before_the_capture_are_said(tmp_path):
    flows = analyze(str(write(tmp_path, _capture())))
    part = flows[flows.orig_p == 50003].iloc[0]
    assert (part.verdict, part.reason) == ("ok", "partial"), dict(part)
    for table in checklists(flows):
        row = table.loc["agent_connection"]
        assert (row["flows"], row["ok"], row["blocked"]) == (3, 2, 1)
        assert row["fix"].startswith("2 of 3 flows ok (1 of them started before the capture), 1 blocked"), row["fix"]


def test_without_partial_flows_the_figure_is_as_before(tmp_path):
    flows = analyze(str(write(tmp_path, _capture(partial=False))))
    for table in checklists(flows):
        row = table.loc["agent_connection"]
        assert row["fix"].startswith("1 of 2 flows ok, 1 blocked"), row["fix"]


def test_ok_of_text():
    assert ok_of_text(395, 436) == "395 of 436 flows ok"
    assert ok_of_text(395, 436, 12) == "395 of 436 flows ok (12 of them started before the capture)"

