"""``--fail-on no-ksc``: exit status 1 when no flow is KSC agent traffic (newcomer 28 F5).

A capture taken on the wrong machine (a browser's HTTPS, a DNS lookup of www.example.com) gets the
report's "No KSC agent traffic" headline and exit status 0 (its flagged flows are other programs',
newcomer 28 F4), so a gate ``kscc-traffic analyze x.pcap && echo OK`` passed it. ``--fail-on``
now takes conditions (repeatable, or a comma list; any one that holds gives 1): ``flagged``
(default), ``blocked``, ``no-ksc``; under no-ksc the run says why on stderr. Several captures:
the run's (the report's one headline): 1 only when none of them shows KSC agent traffic. Today's
statuses without the option are unchanged.

Captures built here with scapy; addresses from the documentation ranges."""
from __future__ import annotations

import subprocess
import sys

import pytest

from chunkcmp import write
from conftest import ROOT
from pcapbuild import udp
from test_newcomer27_advice import _rej, _up

LINE = ("Warning: no KSC agent traffic: no flow in the capture goes to a Kaspersky name or a KSC-only port "
        "(captured on the wrong machine, or at the wrong time?): exit status 1 (--fail-on no-ksc)\n")
LINES = LINE.replace("in the capture", "in these captures")
NOTE = ("Note: {} flows in the capture, but no flow is KSC agent traffic (none goes to a Kaspersky name or a "
        "KSC-only port): they are other programs' and do not fail the run: exit status 0 (--fail-on no-ksc fails "
        "a run without KSC agent traffic)\n")
#: a DNS query for www.example.com (A), never answered
QUERY = bytes.fromhex("12340100000100000000000003777777076578616d706c6503636f6d0000010001")


def _web():
    """(t, frame) of a browser's traffic: three nameless SYNs to 443 never answered, one DNS query."""
    recs = [_up(1.0 + k, 40030 + k, 443, flags="S", seq=100, dst=f"198.51.100.{80 + k}") for k in range(3)]
    recs += [(t, bytes(p)) for t, p in [udp(("192.0.2.10", 41000), ("192.0.2.53", 53), QUERY, t=0.5)]]
    return sorted(recs)


def _run(*args):
    return subprocess.run([sys.executable, "-m", "kscc_traffic", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=180, env={"COLUMNS": "250", "PATH": ""})


@pytest.fixture()
def caps(tmp_path):
    web = write(tmp_path, _web(), name="web.pcap")
    web2 = write(tmp_path, [(t + 100, f) for t, f in _web()], name="web2.pcap")
    # one KSC flow more: a SYN to the agent port 23101 refused (blocked)
    ksc = write(tmp_path, sorted(_web() + _rej(5.0, 40040, 23101, 63)), name="ksc.pcap")
    return web, web2, ksc


@pytest.mark.parametrize("mode", [("-f", "table"), ("-f", "jsonl", "-j", "2"), ("-f", "csv", "--chunk-mib", "1")])
def test_analyze_fails_on_no_ksc_traffic_only_when_asked(caps, mode):
    web, web2, ksc = caps
    # today's statuses: other programs' flagged flows never fail (F4); the KSC capture's do;
    # a --fail-on given says on stderr why its flagged flows gave 0 (newcomer 31 F2: it was silent)
    for args, said in (((), ""), (("--fail-on", "blocked"), NOTE.format("blocked")),
                       (("--fail-on", "flagged"), NOTE.format("blocked"))):
        p = _run("analyze", web, *mode, *args)
        assert (p.returncode, p.stderr) == (0, said), (args, p.stderr)
    for given in (("--fail-on", "no-ksc"), ("--fail-on", "blocked", "--fail-on", "no-ksc"),
                  ("--fail-on", " no-ksc , flagged ")):
        p = _run("analyze", web, *mode, *given)
        assert (p.returncode, p.stderr) == (1, LINE), (given, p.stderr)
        if mode[1] == "table":
            assert p.stdout.startswith("No KSC agent traffic:")
        elif mode[1] == "jsonl":
            assert len(p.stdout.splitlines()) == 4      # (the report itself as without the option)
    # KSC agent traffic seen: no-ksc does not hold; the flagged flows fail only when asked
    p = _run("analyze", ksc, *mode, "--fail-on", "no-ksc")
    assert (p.returncode, p.stderr) == (0, "")
    for given in ((), ("--fail-on", "no-ksc", "--fail-on", "blocked")):
        p = _run("analyze", ksc, *mode, *given)
        assert (p.returncode, p.stderr) == (1, ""), (given, p.stderr)


def test_several_captures_fail_only_when_none_shows_ksc_traffic(caps):
    web, web2, ksc = caps
    for jobs in ("1", "2"):
        p = _run("analyze", web, web2, "-f", "jsonl", "-j", jobs, "--fail-on", "no-ksc")
        assert (p.returncode, p.stderr) == (1, LINES)
        assert len(p.stdout.splitlines()) == 8
        p = _run("analyze", web, ksc, "-f", "jsonl", "-j", jobs, "--fail-on", "no-ksc")
        assert (p.returncode, p.stderr) == (0, "")
        p = _run("analyze", web, web2, "-f", "jsonl", "-j", jobs, "--fail-on", "blocked")
        assert (p.returncode, p.stderr) == (0, NOTE.format("blocked").replace("the capture", "these captures"))


def test_report_fails_on_no_ksc_traffic(caps, tmp_path):
    web, web2, ksc = caps
    html = tmp_path / "r.html"
    assert _run("report", web, "--html", html).returncode == 0
    p = _run("report", web, "--html", html, "--fail-on", "flagged,no-ksc")
    assert (p.returncode, p.stderr) == (1, LINE + f"Wrote {html} (4 flows: 4 blocked, 0 unexpected)\n")
    assert "No KSC agent traffic" in html.read_text()
    p = _run("report", web, web2, "--html", html, "--fail-on", "no-ksc")
    assert p.returncode == 1 and p.stderr.startswith(LINES) and p.stderr.count("\n") == LINES.count("\n") + 1
    p = _run("report", web, ksc, "--html", html, "--fail-on", "no-ksc")
    assert p.returncode == 0 and p.stderr.startswith(f"Wrote {html} (") and p.stderr.count("\n") == 1


def test_an_empty_capture_shows_nothing_and_fails_under_no_ksc(tmp_path):
    # a capture of no packet at all (the pcap header only): nothing to judge
    empty = write(tmp_path, [], name="empty.pcap")
    p = _run("analyze", empty, "-f", "jsonl")
    assert (p.returncode, p.stdout) == (0, "")
    p = _run("analyze", empty, "-f", "jsonl", "--fail-on", "blocked,no-ksc")
    assert (p.returncode, p.stdout) == (1, "")
    assert p.stderr == ("Warning: empty.pcap: no packets in the capture: nothing to analyse (a capture filter that "
                        "matched nothing, or a capture stopped at once?)\n" + LINE)


@pytest.mark.parametrize("bad, said", [("never", "unknown condition 'never'; valid: flagged, blocked, no-ksc"),
                                       ("flagged,nothing", "unknown condition 'nothing'; valid: flagged, blocked, "
                                                           "no-ksc"),
                                       (",", "give one or more of: flagged, blocked, no-ksc")])
def test_unknown_fail_on_condition_is_a_usage_error(caps, bad, said):
    for cmd in (("analyze", caps[0]), ("report", caps[0], "--html", caps[0].with_suffix(".html")), ("live",)):
        p = _run(*cmd, "--fail-on", bad)
        assert p.returncode == 2 and p.stdout == ""
        assert p.stderr.startswith(f"Error: Invalid value for '--fail-on': {said}\n"), p.stderr


def test_live_that_captured_nothing_fails_under_no_ksc(tmp_path):
    import netns
    if netns.why_unavailable() is not None:
        pytest.skip(netns.why_unavailable())
    rc, text = netns.live_on_idle_lo(tmp_path)
    assert rc == 0 and "Warning: no KSC agent traffic" not in text, text
    rc, text = netns.live_on_idle_lo(tmp_path, "--fail-on", "flagged,no-ksc")
    lines = text.splitlines(keepends=True)
    assert rc == 1, text
    assert lines[-2].startswith("Captured 0 packets on lo (scapy)") and lines[-1] == LINE, text
    assert (tmp_path / "out.jsonl").read_text() == ""
