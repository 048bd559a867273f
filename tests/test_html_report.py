"""The HTML report (kscc_traffic.html_report, ``kscc-traffic report``): content, escaping, CLI exit
codes, and the page as a real browser shows it (headless Chromium over the DevTools protocol).

The browser tests need Debian's ``chromium`` (``.ci/run`` installs it); without it they skip with
the reason. They talk to Chromium through ``--remote-debugging-pipe`` (file descriptors 3 and 4,
NUL-separated JSON): no port, no websocket library, nothing else to install. Screenshots go to
``$KSCC_TEST_ARTIFACTS`` (default ``build/test-artifacts/`` in the repository, git-ignored).
"""
from __future__ import annotations

import fcntl
import html
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest

import kscc_traffic
from kscc_traffic.html_report import render_html, write_html

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples" / "captures"
BLOCKED = SAMPLES / "blocked_agent.pcap"
HOSTILE = SAMPLES / "hostile_names.pcap"
BASELINE = SAMPLES / "baseline_agent.pcap"
ARTIFACTS = Path(os.environ.get("KSCC_TEST_ARTIFACTS", ROOT / "build" / "test-artifacts"))
SCRIPT_SNI = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def rules():
    return kscc_traffic.load_rules()


@pytest.fixture(scope="module")
def reports(tmp_path_factory, rules):
    """name -> (path of the written report, flows) for the samples the tests look at."""
    out = tmp_path_factory.mktemp("reports")
    made = {}
    for cap in (BLOCKED, HOSTILE):
        flows = kscc_traffic.analyze(cap, rules)
        made[cap.stem] = (write_html(out / f"{cap.stem}.html", flows, rules, generated="test"), flows)
    return made


# ------------------------------------------------------------------------------------------------
# the document as text
# ------------------------------------------------------------------------------------------------
class _Tags(HTMLParser):
    """Collects tags with their attributes, script bodies and every URL-bearing attribute."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


def _parse(text: str) -> _Tags:
    p = _Tags()
    p.feed(text)
    p.close()
    return p


def test_report_has_checklist_fix_and_german_original(reports, rules):
    path, flows = reports["blocked_agent"]
    text = path.read_text(encoding="utf-8")
    chk = kscc_traffic.readiness(flows, rules)
    for r in chk.itertuples(index=False):  # one row per documented purpose, status as text
        m = re.search(rf'<tr data-rule="{r.rule}" data-status="{r.status}">.*?</tr>', text)
        assert m, r.rule
        assert f"{r.status}</span>" in m.group(0)
    assert set(chk.loc[chk.rule.isin(["activation", "klsctunnel", "ksn"]), "status"]) == {"blocked"}
    act = rules.by_id("activation")
    assert html.escape(act.fix) in text and "allow outbound TCP 27200-27299 to *.ksc.kaspersky.com" in text
    assert f'<blockquote lang="de">{html.escape(act.purpose_de)}</blockquote>' in text
    assert html.escape(act.purpose) in text
    # every flagged flow sits under its purpose's finding
    for purpose, n in flows[flows.verdict == "blocked"].groupby("purpose").size().items():
        block = text.split(f'id="purpose-{purpose}"', 1)[1].split("</article>", 1)[0]
        assert block.count("<tr class=\"row-blocked\">") == n, purpose
    assert text.count('<img src="data:image/png;base64,') == 4


def test_report_is_self_contained(reports):
    text = reports["blocked_agent"][0].read_text(encoding="utf-8")
    p = _parse(text)
    for tag, attrs in p.tags:
        for k in ("src", "href", "action", "data", "poster"):
            v = attrs.get(k)
            if v is not None:
                assert v.startswith(("data:", "#")), (tag, k, v[:80])
    assert "@import" not in text and "url(" not in text
    csp = next(a["content"] for t, a in p.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp


def test_hostile_names_are_text_not_markup(reports):
    path, flows = reports["hostile_names"]
    assert SCRIPT_SNI in set(flows["sni"])  # the sample really carries it
    text = path.read_text(encoding="utf-8")
    assert SCRIPT_SNI not in text
    assert html.escape(SCRIPT_SNI) in text
    p = _parse(text)
    assert len(p.scripts) == 1 and "alert" not in p.scripts[0]  # only our own script
    assert "\x1b" not in text and "\x07" not in text and "\x08" not in text
    text.encode("utf-8")  # no lone surrogates from undecodable names


def test_every_string_column_is_escaped(rules):
    """A flow whose every text column is hostile: nothing reaches the page unescaped."""
    flows = kscc_traffic.analyze(BLOCKED, rules)
    evil = '"><img src=x onerror=alert(2)><script>alert(3)</script>\x1b[31m\u202e $\\frac{a}{$'
    for col, (dtype, _, _) in kscc_traffic.COLUMNS.items():
        if dtype == "object" and col not in ("verdict", "purpose", "proto", "reason"):
            flows[col] = pd.Series([evil] * len(flows), index=flows.index, dtype=object)
    text = render_html(flows, rules, captures=[evil], warnings=[evil], title=evil)
    assert "<img src=x" not in text and "<script>alert" not in text and "\x1b" not in text
    assert "\u202e" not in text and "\\u202e" in text
    p = _parse(text)
    assert [t for t, _ in p.tags].count("script") == 1
    assert all(not k.startswith("on") for _, a in p.tags for k in a)


def test_escape_helper_keeps_utf8_valid():
    from kscc_traffic.html_report import _e

    assert _e("a\udcffb<") == "a\\xffb&lt;"  # an undecodable byte (surrogateescape) as text
    assert _e("\x00\x1b\u2028") == "\\x00\\x1b\\u2028"
    assert _e(None) == "" and _e(float("nan")) == "" and _e(3) == "3"


def test_times_are_the_exact_ts_ns_in_utc(reports):
    # flows starting at 09:00:00.050 showed .049 (the float ts cut to milliseconds)
    path, flows = reports["blocked_agent"]
    text = path.read_text(encoding="utf-8")
    from datetime import datetime, timezone
    expected = {datetime.fromtimestamp(int(t) // 10 ** 9, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
                + f".{int(t) % 10 ** 9 // 10 ** 6:03d}" for t in flows["ts_ns"]}
    assert "2026-03-02 09:00:00.050" in expected
    assert set(re.findall(r'<td class="time"[^>]*>([^<]*)</td>', text)) == expected
    assert "time (UTC)" in text and "09:00:00.049" not in text


def test_empty_flow_table(rules):
    flows = kscc_traffic.analyze(BLOCKED, rules).iloc[:0]
    text = render_html(flows, rules)
    assert "Nothing is blocked or unexpected." in text
    assert text.count('data-status="not seen"') == len(rules.rules)


def test_row_cap_keeps_flagged_flows(rules):
    flows = kscc_traffic.analyze(BLOCKED, rules)
    text = render_html(flows, rules, max_rows=3, charts=False)
    tbody = text.split('<table id="flow-table">', 1)[1].split("</tbody>", 1)[0]
    assert tbody.count("<tr ") == 3 and 'data-verdict="ok"' not in tbody
    assert f"Showing 3 of {len(flows)} flows" in text


# ------------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------------
def test_cli_report_flagged_is_one(tmp_path):
    """End to end through a new interpreter: two captures, something blocked -> exit 1."""
    out = tmp_path / "report.html"
    r = subprocess.run([sys.executable, "-m", "kscc_traffic", "report", str(BLOCKED), str(BASELINE),
                        "--html", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    text = out.read_text(encoding="utf-8")
    assert "blocked_agent.pcap (11 flows)" in text and "baseline_agent.pcap (" in text
    assert not list(tmp_path.glob(".*.tmp"))


def _invoke(*args):
    from typer.testing import CliRunner

    from kscc_traffic.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_cli_report_ok_is_zero(tmp_path):
    r = _invoke("report", BASELINE, "--html", tmp_path / "ok.html")
    assert r.exit_code == 0, r.stderr
    assert (tmp_path / "ok.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("case", ["missing", "directory", "not_a_capture", "no_dir", "bad_rules"])
def test_cli_report_unusable_is_two(tmp_path, case):
    out, extra = tmp_path / "x.html", []
    cap = BLOCKED
    if case == "missing":
        cap = tmp_path / "missing.pcap"
    elif case == "directory":
        cap = tmp_path
    elif case == "not_a_capture":
        cap = ROOT / "README.md"
    elif case == "no_dir":
        out = tmp_path / "no-dir" / "x.html"
    else:
        bad = tmp_path / "bad.toml"
        bad.write_text("[[rule]]\nid = 1\n")
        extra = ["--rules", bad]
    r = _invoke("report", cap, "--html", out, *extra)
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert r.stderr.startswith("Error: ") and r.stderr.strip().count("\n") == 0, r.stderr
    assert "Traceback" not in r.stderr and not out.exists()


# ------------------------------------------------------------------------------------------------
# headless Chromium over the DevTools protocol (pipe transport)
# ------------------------------------------------------------------------------------------------
def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        exe = shutil.which(name)
        if exe:
            return exe
    return None


class Browser:
    """A headless Chromium driven over ``--remote-debugging-pipe`` (fd 3: commands in, fd 4:
    replies and events out, NUL-separated JSON messages)."""

    FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-extensions", "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
             "--force-color-profile=srgb", "--remote-debugging-pipe", "about:blank"]

    def __init__(self, exe: str):
        self.profile = tempfile.mkdtemp(prefix="kscc-chromium-")
        cmd_r, self._cmd_w = os.pipe()
        self._out_r, out_w = os.pipe()

        def wire():  # in the child: the pipe ends on exactly fd 3 and fd 4
            a = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(out_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen([exe, *self.FLAGS, f"--user-data-dir={self.profile}"],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, pass_fds=(3, 4), preexec_fn=wire,
                                     start_new_session=True)  # its helpers share our new group
        os.close(cmd_r)
        os.close(out_w)
        self._next = 0
        self._replies: dict[int, dict] = {}
        self._events: "queue.Queue[dict]" = queue.Queue()
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._stderr: list[str] = []
        threading.Thread(target=lambda: self._stderr.extend(self.proc.stderr), daemon=True).start()

    def _read(self):
        buf = b""
        while True:
            chunk = os.read(self._out_r, 1 << 16)
            if not chunk:
                break
            buf += chunk
            while b"\0" in buf:
                msg, buf = buf.split(b"\0", 1)
                m = json.loads(msg)
                if "id" in m:
                    with self._cond:
                        self._replies[m["id"]] = m
                        self._cond.notify_all()
                else:
                    self._events.put(m)
        with self._cond:
            self._cond.notify_all()

    def send(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30):
        self._next += 1
        i = self._next
        msg = {"id": i, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._cmd_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cond:
            while i not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise RuntimeError(f"no reply to {method} (chromium stderr: {''.join(self._stderr)[-2000:]})")
                self._cond.wait(min(left, 0.5))
            reply = self._replies.pop(i)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def events(self, until: str | None = None, session: str | None = None, timeout: float = 30) -> list[dict]:
        """Drain queued events; with ``until``, wait for that event (of ``session``) first."""
        got: list[dict] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                ev = self._events.get(timeout=0.05 if until is None else max(0.0, min(0.5, deadline - time.monotonic())))
            except queue.Empty:
                if until is None:
                    return got
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no {until} event within {timeout} s")
                continue
            got.append(ev)
            if until and ev.get("method") == until and (session is None or ev.get("sessionId") == session):
                return got + self.events()

    def close(self):
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # the group started above: chromium and its helpers
            self.proc.wait()
        self._reader.join(timeout=5)
        for fd in (self._cmd_w, self._out_r):
            os.close(fd)
        self.proc.stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    """One tab with the report loaded; ``problems`` holds console errors, uncaught exceptions,
    error log entries (CSP violations, failed loads), dialogs and non-local requests."""

    def __init__(self, browser: Browser, path: Path, width: int = 1400, height: int = 1000):
        self.b = browser
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.s = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable", session=self.s)
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=self.s)
        browser.events()
        browser.send("Page.navigate", {"url": path.resolve().as_uri()}, session=self.s)
        self.log = browser.events(until="Page.loadEventFired", session=self.s)
        time.sleep(0.2)
        self.log += browser.events()

    def eval(self, expression: str):
        r = self.b.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                             "awaitPromise": True}, session=self.s)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression!r}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def problems(self) -> list[str]:
        self.log += self.b.events()
        out = []
        for ev in self.log:
            if ev.get("sessionId") != self.s:
                continue
            m, p = ev.get("method"), ev.get("params", {})
            if m == "Runtime.exceptionThrown":
                out.append(f"exception: {p['exceptionDetails'].get('text')} "
                           f"{p['exceptionDetails'].get('exception', {}).get('description', '')}")
            elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert", "warning"):
                out.append(f"console.{p['type']}: {[a.get('value', a.get('description')) for a in p.get('args', [])]}")
            elif m == "Log.entryAdded" and p["entry"]["level"] in ("error", "warning"):
                out.append(f"log {p['entry']['level']}: {p['entry'].get('text')} {p['entry'].get('url', '')}")
            elif m == "Page.javascriptDialogOpening":
                out.append(f"dialog: {p.get('message')}")
            elif m == "Network.requestWillBeSent" and not p["request"]["url"].startswith(("file:", "data:")):
                out.append(f"request: {p['request']['url']}")
        return out

    def screenshot(self, dest: Path, full: bool = False) -> Path:
        """PNG of the viewport, or of the whole page (``full``, at most 8000 px tall)."""
        params: dict = {"format": "png"}
        if full:
            size = self.b.send("Page.getLayoutMetrics", session=self.s)["cssContentSize"]
            params.update(captureBeyondViewport=True, clip={
                "x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 8000), "scale": 1})
        data = self.b.send("Page.captureScreenshot", params, session=self.s)["data"]
        import base64

        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(base64.b64decode(data))
        return dest


@pytest.fixture(scope="module")
def browser():
    exe = _chromium()
    if exe is None:
        pytest.skip("chromium is not installed (CI installs Debian's chromium package via .ci/run; "
                    "locally: apt-get install chromium)")
    b = Browser(exe)
    try:
        b.send("Browser.getVersion", timeout=60)
        yield b
    finally:
        b.close()


def test_browser_shows_checklist_without_errors(browser, reports, rules):
    path, flows = reports["blocked_agent"]
    page = Page(browser, path)
    rows = page.eval("""Array.from(document.querySelectorAll('table.checklist tbody tr')).map(
        tr => [tr.dataset.rule, tr.cells[4].innerText.trim(), getComputedStyle(tr.cells[4].firstElementChild).backgroundColor])""")
    chk = kscc_traffic.readiness(flows, rules)
    assert [r[0] for r in rows] == list(chk["rule"])
    for (rule, status_text, colour), status in zip(rows, chk["status"]):
        assert status_text.endswith(status), rule
        if status == "blocked":
            assert colour == "rgb(198, 40, 40)", (rule, colour)
        if status == "verified":
            assert colour == "rgb(46, 125, 50)", (rule, colour)
    body = page.eval("document.body.innerText")
    assert "allow outbound TCP 27200-27299 to *.ksc.kaspersky.com" in body
    assert rules.by_id("activation").purpose_de in body
    # the charts decoded as images
    sizes = page.eval("Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
    assert len(sizes) == 4 and all(ok and w > 100 for ok, w in sizes)

    # filter: verdict select and free text
    total = len(flows)
    assert page.eval("document.getElementById('flow-count').textContent") == f"{total} of {total} flows shown"
    n_blocked = int((flows.verdict == "blocked").sum())
    visible = page.eval("""(() => { const s = document.getElementById('flow-verdict'); s.value = 'blocked';
        s.dispatchEvent(new Event('change'));
        return Array.from(document.querySelectorAll('#flow-table tbody tr')).filter(r => !r.hidden).length; })()""")
    assert visible == n_blocked
    visible = page.eval("""(() => { document.getElementById('flow-verdict').value = '';
        document.getElementById('flow-verdict').dispatchEvent(new Event('change'));
        const q = document.getElementById('flow-filter'); q.value = 'KLSCTUNNEL'; q.dispatchEvent(new Event('input'));
        return Array.from(document.querySelectorAll('#flow-table tbody tr')).filter(r => !r.hidden)
            .map(r => r.dataset.purpose); })()""")
    assert visible == ["klsctunnel"]
    # sort: "bytes out" descending after two clicks
    col = page.eval("""(() => { const q = document.getElementById('flow-filter'); q.value = ''; q.dispatchEvent(new Event('input'));
        const th = Array.from(document.querySelectorAll('#flow-table thead th')).findIndex(h => h.innerText.startsWith('bytes out'));
        const b = document.querySelectorAll('#flow-table thead th')[th].querySelector('button'); b.click(); b.click();
        return Array.from(document.querySelectorAll('#flow-table tbody tr')).map(r => Number(r.cells[th].textContent)); })()""")
    assert col == sorted(flows["orig_bytes"], reverse=True)
    assert page.problems() == []
    # no horizontal scrolling of the page itself (wide tables scroll in their own box)
    assert page.eval("document.documentElement.scrollWidth <= window.innerWidth")
    page.eval("window.scrollTo(0, 0)")
    shot = page.screenshot(ARTIFACTS / "report_blocked_agent.png")
    assert shot.stat().st_size > 10_000
    page.screenshot(ARTIFACTS / "report_blocked_agent_full.png", full=True)


def test_browser_harness_sees_errors(browser, tmp_path):
    """The checks above mean something: console errors, exceptions and blocked loads are caught."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
                   "script-src 'unsafe-inline'\"><img src=\"http://192.0.2.1/x.png\">"
                   "<script>console.error('boom'); null.x;</script>")
    problems = "\n".join(Page(browser, bad).problems())
    assert "boom" in problems and "exception" in problems and "192.0.2.1" in problems, problems


def test_browser_script_injection_shows_as_text(browser, reports):
    path, flows = reports["hostile_names"]
    page = Page(browser, path)
    assert page.problems() == []  # no console error, no dialog (alert(1) did not run), no request
    assert page.eval("document.scripts.length") == 1
    body = page.eval("document.body.innerText")
    assert SCRIPT_SNI in body
    cells = page.eval("Array.from(document.querySelectorAll('#flow-table td.name')).map(td => td.textContent)")
    assert SCRIPT_SNI in cells
    # the visible escape of a terminal control sequence, not the control character
    assert "\\x1b[31mred\\x1b[0m.example.net" in body and "\x1b" not in body
    rows = page.eval("document.querySelectorAll('table.checklist tbody tr').length")
    assert rows == len(kscc_traffic.load_rules().rules)
    page.eval("document.getElementById('chart-verdicts').scrollIntoView()")  # a view with the names
    page.eval("document.getElementById('flows').scrollIntoView()")
    page.screenshot(ARTIFACTS / "report_hostile_names.png")
