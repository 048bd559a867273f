"""Session 32, testers' findings on details (scapy-built captures).

F1: a client that sends only 1-4 bytes starting a TLS handshake record's header (``16``,
``16 03``, ``16 03 01``, ``16 03 01 02``) to a TLS port, then a reset (or nothing more on an open
connection), was ``unexpected``/``not_tls`` "first bytes 16": too few bytes to call cleartext
(Wireshark shows a TCP segment of a PDU never finished, Zeek names no service). Closed by either
side it is ``blocked``/``tls_failed`` "TLS handshake aborted: …" as a ClientHello so closed is;
still open it is ``ok``, the detail saying what was sent. Bytes that start no TLS handshake
record (``17``, ``GET ``) stay ``not_tls``.

F2: the closed-window (tarpit) detail "window stayed closed (0)" did not say that the server
then reset or closed the connection (a RST/FIN CLOSED_THEN_SHUT_S or more after its SYN-ACK,
session 31): it now ends "; then the server reset the connection (RSTR)" and the like (from the
conn_state), nothing added while the connection stays open.

F3: the flagged list's group caption counted the rows listed, not the group's flows ("other
flows (3)" of 6 in the group when the list was cut): a cut group says both, "3 of 6 shown".

F4: ``help(kscc_traffic.FLOW_COLUMNS)`` named no column (the class's docstring only): a table's
docstring now lists its columns with dtype, unit and meaning, made from its entries.

F5: ``live --list-interfaces`` did not mark interfaces that are down: ``kd0  (down)`` when
administratively down, ``kd0  (no carrier)`` when up but its veth peer is down (operstate
lowerlayerdown), as ``ip link`` tells them (real namespaces, tests/netns.py).

F6: the flagged flows' times showed no date: unless every flow is of today (UTC), the table's
time heading holds the date on a second line when the rows listed are of one date, each time
carries it when they are of several (``2026-03-02 23:59:59.000``); the compact list prints the
date on a line of its own, once per group and where it changes.

F7: on an 80-column terminal a long status note in the checklist ("not seen (no KSC flow: its
port's flows are other programs')") wrapped in the status column over ~10 lines: when the table
does not fit with every cell on one line, the cell says ``not seen [1]`` and the note follows the
table, ``[1] no KSC flow: …`` (the same number for the same note); a wide terminal keeps it inline.
"""
from __future__ import annotations

import datetime as dt
import io
import os
import re
import pydoc
import sys

import pytest
from rich.console import Console

import netns
from chunkcmp import RULES, assert_same, row, write
from test_breakit31_tcp import HELLO, _dn, _tarpit, _up
from test_fixverdicts_s31 import _check
from conftest import ROOT
from test_newcomer30_flagged import _workstation
from test_newcomer31_present import _web

import kscc_traffic as kt
from kscc_traffic import analyze
from kscc_traffic.columns import Columns
from kscc_traffic.live.sources import interface_state
from kscc_traffic.classify import TLS_RECORD_START, WINDOW_CLOSED, window_close_end
from kscc_traffic.report import NOT_KSC_NOTE, checklist_status_notes, flagged_groups_text, print_table, render_table

# F1 ------------------------------------------------------------------------------------------

def _first_bytes(data: bytes, end: str, port: int = 23101) -> list:
    """Handshake, the client's ``data``, the server's ACK of it, then ``end``: ``R`` the server's
    RST at 1 s, ``cR`` the client's RST at 2 s, ``FA`` the server's FIN at 1 s (answered), ``''``
    nothing more."""
    n = 1001 + len(data)
    recs = [_up(0, "S", 1000, port=port), _dn(.01, "SA", 5000, 1001, port=port), _up(.02, "A", 1001, 5001, port=port),
            _up(.03, "PA", 1001, 5001, data, port=port), _dn(.04, "A", 5001, n, port=port)]
    if end == "R":
        recs.append(_dn(1.0, "R", 5001, 0, port=port))
    elif end == "cR":
        recs.append(_up(2.0, "R", n, 0, port=port))
    elif end == "FA":
        recs += [_dn(1.0, "FA", 5001, n, port=port), _up(1.01, "FA", n, 5002, port=port),
                 _dn(1.02, "A", 5002, n + 1, port=port)]
    return recs


PREFIXES = [(b"\x16", "1 byte (16)"), (b"\x16\x03", "2 bytes (16 03)"), (b"\x16\x03\x01", "3 bytes (16 03 01)"),
            (b"\x16\x03\x01\x02", "4 bytes (16 03 01 02)")]


@pytest.mark.parametrize("port", [23101, 443])
@pytest.mark.parametrize("data,said", PREFIXES)
def test_a_tls_record_start_then_a_server_reset_is_an_aborted_handshake(tmp_path, data, said, port):
    # (fails on 649be23: unexpected/not_tls "... first bytes 16 ...")
    _check(tmp_path, _first_bytes(data, "R", port), ("blocked", "tls_failed", "RSTR"),
           f"TLS handshake aborted: the server reset the connection (RST, RSTR); the client sent only {said}, "
           f"{TLS_RECORD_START}, and the server sent no byte")


@pytest.mark.parametrize("end,want,did", [
    ("cR", ("blocked", "tls_failed", "RSTO"), "the client reset the connection (RST, RSTO)"),
    ("FA", ("blocked", "tls_failed", "SF"), "the server closed the connection (FIN, SF)")])
def test_a_tls_record_start_then_a_close_says_who_closed(tmp_path, end, want, did):
    _check(tmp_path, _first_bytes(b"\x16", end), want,
           f"TLS handshake aborted: {did}; the client sent only 1 byte (16), {TLS_RECORD_START}, "
           "and the server sent no byte")


def test_a_tls_record_start_on_an_open_connection_is_too_few_bytes_to_tell(tmp_path):
    _check(tmp_path, _first_bytes(b"\x16\x03\x01", ""), ("ok", "", "S1"),
           f"the client sent only 3 bytes (16 03 01), {TLS_RECORD_START}; nothing more came from either side "
           "(the connection still open)")


@pytest.mark.parametrize("data,quoted", [(b"\x17", "first bytes 17"), (b"\x16\x04", "first bytes 16 04"),
                                         (b"GET ", '"GET "')])
def test_bytes_that_start_no_tls_handshake_record_stay_cleartext(tmp_path, data, quoted):
    p = write(tmp_path, _first_bytes(data, "R"))
    r = row(assert_same(p, [300, 700]), proto="tcp")
    assert (r["verdict"], r["reason"]) == ("unexpected", "not_tls")
    assert quoted in r["detail"]


# F2 ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("close,state,end", [
    ("R", "RSTR", "; then the server reset the connection (RSTR)"),
    ("FA", "S3", "; then the server closed the connection (FIN, S3)")])
def test_a_tarpit_detail_says_the_server_then_closed(tmp_path, close, state, end):
    # (fails on 649be23: the detail stops at "... (a tarpit, or a server too loaded to read)")
    recs = _tarpit(HELLO[:1]) + [_dn(17.01, close, 5001, 1001, win=0)]
    _check(tmp_path, recs, ("blocked", "no_answer", state), WINDOW_CLOSED.format(s="16.0") + end)


def test_a_tarpit_whose_client_resets_says_so(tmp_path):
    recs = _tarpit(b"") + [_up(17.0, "R", 1000, 0)]
    # (the seconds run to the client's last packet, its RST)
    _check(tmp_path, recs, ("blocked", "no_answer", "RSTO"),
           WINDOW_CLOSED.format(s="17.0") + "; then the client reset the connection (RSTO)")


def test_an_open_tarpit_adds_nothing(tmp_path):
    _check(tmp_path, _tarpit(HELLO[:1]), ("blocked", "no_answer", "S1"), WINDOW_CLOSED.format(s="16.0"))
    assert window_close_end("S1") == "" and window_close_end("OTH") == ""
    assert window_close_end("SF") == "; then the connection was closed (FIN both ways, SF)"


# F3 ------------------------------------------------------------------------------------------

def _flat(text: str) -> str:
    return " ".join(text.replace("│", " ").split())


def _console_text(flows, width, max_flagged) -> str:
    buf = io.StringIO()
    print_table(flows, RULES, Console(file=buf, width=width, color_system=None, force_terminal=False),
                max_flagged=max_flagged)
    return buf.getvalue()


@pytest.mark.parametrize("width,lead", [(250, "In groups (a line between them): "), (100, "In groups: ")])
def test_a_cut_group_says_how_many_it_has(tmp_path, width, lead):
    # (fails on 649be23: "... then other flows (2); ..." of the 6 other flows)
    flows = analyze(str(_workstation(tmp_path, blocked=1, browsing=6)))
    text = _flat(_console_text(flows, width, max_flagged=4))
    assert f"{lead}blocked (1), then KSC agent traffic (1), then other flows (2 of 6 shown); time order inside each" \
        in text
    assert "… 4 more flagged flows (use --format csv or jsonl)" in text
    # (a list not cut: the counts alone, as before)
    whole = _flat(_console_text(flows, width, max_flagged=40))
    assert f"{lead}blocked (1), then KSC agent traffic (1), then other flows (6); time" in whole


def test_flagged_groups_text_counts():
    assert flagged_groups_text([0, 2, 2], [1, 0, 75]) == ("In groups (a line between them): blocked (1), then other "
                                                          "flows (2 of 75 shown); time order inside each group")
    assert flagged_groups_text([1, 2], None) == ("In groups (a line between them): KSC agent traffic (1), then other "
                                                 "flows (1); time order inside each group")
    assert flagged_groups_text([2, 2], [0, 0, 9]) == ""


# F4 ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["FLOW_COLUMNS", "COLUMNS"])
def test_help_of_a_column_table_lists_its_columns(name):
    # (fails on 649be23: help() showed Columns' docstring, no column named)
    table = getattr(kt, name)
    text = pydoc.render_doc(table, renderer=pydoc.plaintext)
    assert "name -> (dtype, unit, description)" in text
    assert f"Columns ({len(table)}): name  dtype [unit]: description" in text
    lines = text.splitlines()
    for col, (dtype, unit, meaning) in table.items():
        head = f"  {col}  {dtype}" + (f" [{unit}]" if unit else "")
        at = [i for i, x in enumerate(lines) if x.rstrip() == "    " + head]
        assert len(at) == 1, head
        assert lines[at[0] + 1].strip() == meaning
    assert "      time of the flow's first packet, exact" in text   # (ts_ns)


def test_a_table_made_later_describes_its_own_entries():
    t = Columns({"a": ("int64", "bytes", "what a is"), "b": ("object", "", "what b is")})
    assert t.describe() == ("Columns (2): name  dtype [unit]: description\n  a  int64 [bytes]\n      what a is\n"
                            "  b  object\n      what b is")
    t["c"] = ("bool", "", "what c is")
    assert t.__doc__.endswith("  c  bool\n      what c is")
    assert Columns.__doc__.startswith("A table's columns, in order")
    assert isinstance(t, dict) and dict(t) == {"a": ("int64", "bytes", "what a is"), "b": ("object", "", "what b is"),
                                              "c": ("bool", "", "what c is")}


# F5 ------------------------------------------------------------------------------------------

def _interfaces(ns: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = netns.run_in(ns, [sys.executable, "-m", "kscc_traffic", "live", "--list-interfaces"], cwd=ROOT, env=env)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    return r.stdout.splitlines()


@pytest.mark.skipif(netns.why_unavailable() is not None, reason=str(netns.why_unavailable()))
def test_list_interfaces_marks_the_ones_down():
    # (fails on 649be23: "kd0" unmarked whether down or up)
    a, b = netns.new_ns("c"), netns.new_ns("s")
    try:
        netns._run(["ip", "link", "add", "kd0", "netns", a, "type", "veth", "peer", "name", "kd1", "netns", b])
        netns._run(["ip", "-n", a, "addr", "add", "192.0.2.10/24", "dev", "kd0"])
        first_up = "lo  (default: no default route, no other interface up)"
        assert _interfaces(a) == ["kd0  (down)", first_up]
        netns._run(["ip", "-n", a, "link", "set", "kd0", "up"])     # (its peer kd1 still down)
        assert _interfaces(a) == ["kd0  (no carrier)", first_up]
        netns._run(["ip", "-n", b, "link", "set", "kd1", "up"])
        assert _interfaces(a) == ["kd0  (default: no default route: the first interface up)", "lo"]
        netns._run(["ip", "-n", a, "link", "set", "lo", "down"])
        assert _interfaces(a) == ["kd0  (default: no default route: the first interface up)", "lo  (down)"]
    finally:
        for ns in (a, b):
            netns.kill_ns_processes(ns)
            netns.delete_ns(ns)


def test_interface_state_of_odd_names():
    assert interface_state("") == "" and interface_state("../lo") == "" and interface_state("..") == ""
    assert interface_state("kscct-no-such0") == ""


# F6 ------------------------------------------------------------------------------------------

def _syns(tmp_path, times: list[float]):
    """A capture of unanswered SYNs to 23101 (blocked), one flow per epoch second in ``times``."""
    recs = [_up(t, "S", 1000 + i) for i, t in enumerate(times)]
    for i, (t, frame) in enumerate(recs):   # (a client port per flow)
        recs[i] = (t, frame[:34] + (50001 + i).to_bytes(2, "big") + frame[36:])
    return analyze(str(write(tmp_path, recs)))


def _epoch(day: str, hms: str = "09:00:00") -> float:
    return dt.datetime.fromisoformat(f"{day}T{hms}+00:00").timestamp()


def test_flagged_times_of_another_day_say_the_date_once(tmp_path):
    # (fails on 649be23: "time (UTC)" alone, no date anywhere)
    flows = _syns(tmp_path, [_epoch("2026-03-02"), _epoch("2026-03-02", "09:00:05")])
    lines = _console_text(flows, 250, 40).splitlines()
    head = next(i for i, x in enumerate(lines) if "time (UTC)" in x)
    assert lines[head].startswith("┃ time (UTC)   ┃") and lines[head + 1].startswith("┃ 2026-03-02   ┃")
    assert sum(bool(re.match(r"│ 09:00:0[05]\.000 ", x)) for x in lines) == 2
    compact = _console_text(flows, 80, 40).splitlines()
    at = next(i for i, x in enumerate(compact) if x.startswith("Flagged flows (2)"))
    assert compact[at + 1] == "2026-03-02 (UTC)" and compact[at + 2].startswith("09:00:00.000  192.0.2.10:50001 -> tcp")
    assert sum(x == "2026-03-02 (UTC)" for x in compact) == 1


def test_flagged_times_over_two_days_carry_the_date(tmp_path):
    flows = _syns(tmp_path, [_epoch("2026-03-02", "23:59:59"), _epoch("2026-03-03", "00:00:02")])
    text = _console_text(flows, 250, 40)
    assert re.search(r"│ 2026-03-02 23:59:59\.000 │", text) and re.search(r"│ 2026-03-03 00:00:02\.000 │", text)
    compact = _console_text(flows, 80, 40).splitlines()
    days = [i for i, x in enumerate(compact) if x.endswith("(UTC)") and x[:4] == "2026"]
    assert [compact[i] for i in days] == ["2026-03-02 (UTC)", "2026-03-03 (UTC)"]
    assert compact[days[0] + 1].startswith("23:59:59.000  ") and compact[days[1] + 1].startswith("00:00:02.000  ")


def test_flagged_times_of_today_have_no_date(tmp_path):
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    if now.hour == 0 and now.minute < 2:    # (too near midnight for both flows to be of today)
        pytest.skip("too near midnight UTC")
    t = now.timestamp() - 60
    flows = _syns(tmp_path, [t, t + 1])
    text = _console_text(flows, 250, 40)
    assert now.date().isoformat() not in text
    assert "┃ time (UTC)   ┃" in text


# F7 ------------------------------------------------------------------------------------------

def _checklist_lines(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, x in enumerate(lines) if x.startswith("Readiness checklist"))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("└"))
    return lines[start:end + 2]


def test_a_long_status_note_at_80_columns_is_a_footnote(tmp_path):
    # (fails on 649be23: "not seen (no KSC flow: its port's flows are other programs')" over 10 lines)
    flows = _web(tmp_path)
    lines = _checklist_lines(render_table(flows, RULES, width=80))
    assert max(map(len, lines)) <= 80
    rows = [[c.strip() for c in x.strip("│").split("│")] for x in lines if x.startswith("│")]
    at = next(i for i, c in enumerate(rows) if c[1] == "discovery")
    assert rows[at][3] == "not seen [1]" and (at + 1 == len(rows) or rows[at + 1][1])   # (one line)
    assert lines[-1] == f"[1] {NOT_KSC_NOTE}"
    assert sum("[1]" in x for x in lines) == 2
    wide = " ".join(render_table(flows, RULES, width=400).split())
    assert f"not seen ({NOT_KSC_NOTE})" in wide and "[1]" not in wide


def test_checklist_status_notes_number_each_note_once():
    chk = kt.readiness(analyze(str(ROOT / "samples" / "captures" / "blocked_agent.pcap")), RULES)
    chk = chk.copy()
    notes = [""] * len(chk)
    notes[0], notes[2], notes[3] = "note a", "note b", "note a"
    chk["status_note"] = notes
    suffixes, under = checklist_status_notes(chk, RULES, 80)
    assert suffixes[:4] == [" [1]", "", " [2]", " [1]"] and set(suffixes[4:]) == {""}
    assert under == ["[1] note a", "[2] note b"]
    suffixes, under = checklist_status_notes(chk, RULES, 400)
    assert suffixes[:4] == [" (note a)", "", " (note b)", " (note a)"] and under == []
