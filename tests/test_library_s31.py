"""The notebook user's view of the library (session 31): the checklist's text columns are
``object`` as the flow table's, the column tables document themselves in ``help()``, and the
tables the notebook shows keep "$…$" of names from packets from being typeset by MathJax even
where a front end ignores the tables' ``mathjax_ignore`` class (jupyterlab#17935)."""
from __future__ import annotations

import pydoc
import warnings
from pathlib import Path

import pandas as pd
import pytest

import kscc_traffic as kt

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples" / "captures" / "blocked_agent.pcap"
CHECKLIST_TEXT = ["rule", "transport", "ports", "section", "purpose_text", "status", "status_note", "reasons", "fix",
                  "purpose"]


@pytest.fixture(scope="module")
def flows():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kt.CaptureWarning)
        return kt.analyze(SAMPLE)


@pytest.mark.parametrize("rows", [True, False])
def test_readiness_text_columns_are_object_as_the_flow_table(flows, rows):
    # the flow table's text columns are object (COLUMNS says so); readiness gave pandas' default
    # string dtype ("str" under pandas 3), so a merge or concat of the two changed dtypes and
    # `checklist.dtypes` disagreed with the flow table's
    chk = kt.readiness(flows if rows else flows.iloc[:0])
    assert list(chk.columns) == ["rule", "transport", "ports", "section", "purpose_text", "status",
                                 "status_note", "flows", "ok", "blocked", "unexpected", "reasons", "fix", "purpose"]
    assert {c: str(chk[c].dtype) for c in CHECKLIST_TEXT} == dict.fromkeys(CHECKLIST_TEXT, "object")
    assert {c: str(chk[c].dtype) for c in ("flows", "ok", "blocked", "unexpected")} == dict.fromkeys(
        ("flows", "ok", "blocked", "unexpected"), "int64")
    assert all(type(v) is str for c in CHECKLIST_TEXT for v in chk[c])
    assert (chk["status"] == "blocked").sum() == (6 if rows else 0)



@pytest.mark.parametrize("rows", [True, False])
def test_server_names_text_columns_are_object_too(flows, rows):
    # as readiness's: server_names gave pandas 3's "str" for its text columns
    t = kt.server_names(flows if rows else flows.iloc[:0])
    assert {c: str(d) for c, d in t.dtypes.items()} == {
        "purpose": "object", "server_name": "object", "name_source": "object", "addresses": "object",
        "flows": "int64", "ok": "int64", "blocked": "int64", "unexpected": "int64"}
    assert len(t) == (9 if rows else 0) and all(type(v) is str for v in t["server_name"])


def test_flow_columns_documents_itself_in_help():
    # help(kscc_traffic.FLOW_COLUMNS) showed dict's own help ("dict() -> new empty dictionary"):
    # now the same documented type as COLUMNS, still a dict, the first columns of COLUMNS
    for table in (kt.FLOW_COLUMNS, kt.COLUMNS):
        text = pydoc.render_doc(table, renderer=pydoc.plaintext)
        assert "name -> (dtype, unit, description)" in text and "new empty dictionary" not in text
        assert "FLOW_COLUMNS" in text and "build_flows" in text
        assert isinstance(table, dict) and type(table).__name__ == "Columns"
    assert list(kt.COLUMNS)[:len(kt.FLOW_COLUMNS)] == list(kt.FLOW_COLUMNS)
    assert kt.FLOW_COLUMNS["ts_ns"] == ("int64", "ns, epoch", "time of the flow's first packet, exact")
    assert dict(kt.FLOW_COLUMNS) == {k: kt.COLUMNS[k] for k in kt.FLOW_COLUMNS}


@pytest.mark.parametrize("name", ["classify", "dns_advice"])
def test_classify_and_dns_advice_say_what_they_return_and_raise(name):
    doc = getattr(kt, name).__doc__
    assert ":returns:" in doc and ":raises" in doc, name



@pytest.mark.parametrize("which", ["file set", "IPv6 only", "no flow"])
def test_analyze_table_is_as_its_docstring_says(which):
    # analyze's :returns: now says index, order, dtypes and the empty case: hold it to them
    caps = {"file set": [SAMPLE, ROOT / "samples" / "captures" / "ipv6_agent.pcap"],
            "IPv6 only": ROOT / "samples" / "captures" / "ipv6_agent.pcap", "no flow": []}[which]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kt.CaptureWarning)
        f = kt.analyze(caps)
    doc = kt.analyze.__doc__
    assert "index 0…n-1" in doc and "``object`` of Python ``str``" in doc and ":raises ValueError:" in doc
    assert list(f.columns) == list(kt.COLUMNS)
    assert {c: str(t) for c, t in f.dtypes.items()} == {c: v[0] for c, v in kt.COLUMNS.items()}
    assert f.index.equals(pd.RangeIndex(len(f)))
    assert len(f) == {"file set": 18, "IPv6 only": 7, "no flow": 0}[which]
    text = [c for c, v in kt.COLUMNS.items() if v[0] == "object"]
    assert all(type(v) is str for c in text for v in f[c])
    for _, g in f.groupby("capture", sort=False):
        assert g["ts_ns"].is_monotonic_increasing
    if which == "IPv6 only":
        assert f["orig_h"].str.contains(":").all() and f["resp_h"].str.contains(":").all()


# --- tables shown in Jupyter: names from packets stay text ------------------------------------------
#: names as a ClientHello's SNI and a DNS query carry them (bytes), each with MathJax's delimiters
#: or markup: "$x^2$" typeset would show x², "$$…$$" a displayed formula
HOSTILE = [b"$x^2$.ksc.kaspersky.com", b"a$\\color{red}{evil}$b.example", b"<script>alert(1)</script>.example",
           b"\x1b[31mred\x1b[0m.example", b"new\nline.example", "rtl\u202emoc.elgoog.example".encode(),
           b"$$E=mc^2$$.example"]


def dollar_capture(folder: Path) -> Path:
    """A capture whose SNIs and DNS queries (answered NXDOMAIN) are :data:`HOSTILE`, and an HTTP
    request with ``Host: $a$b$.digicert.com`` answered 403: every name flagged or listed."""
    import struct

    pytest.importorskip("scapy")
    from scapy.layers.dns import DNS, DNSQR

    from pcapbuild import pcap_bytes, tcp_session, udp

    def hello(n: bytes) -> bytes:
        ext = struct.pack("!HHHBH", 0, len(n) + 5, len(n) + 3, 0, len(n)) + n
        body = (b"\x03\x03" + bytes(range(32)) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
                + struct.pack("!H", len(ext)) + ext)
        hs = b"\x01" + len(body).to_bytes(3, "big") + body
        return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs

    recs, t = [], 1000.0
    for i, n in enumerate(HOSTILE):
        recs += tcp_session(("192.0.2.10", 50000 + i), ("203.0.113.10", 23101 if i % 2 == 0 else 443), t0=t,
                            c_data=hello(n), close=False)
        q = DNSQR(qname=n.replace(b"\n", b"_"), qtype="A")
        recs += [udp(("192.0.2.10", 40000 + i), ("198.51.100.53", 53), bytes(DNS(id=100 + i, rd=1, qd=q)), t=t + 1),
                 udp(("198.51.100.53", 53), ("192.0.2.10", 40000 + i),
                     bytes(DNS(id=100 + i, qr=1, rd=1, ra=1, rcode=3, qd=q)), t=t + 1.01)]
        t += 2
    recs += tcp_session(("192.0.2.10", 51000), ("203.0.113.20", 80), t0=t,
                        c_data=b"GET /x.crl HTTP/1.1\r\nHost: $a$b$.digicert.com\r\n\r\n",
                        s_data=b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    path = folder / "dollar_names.pcap"
    path.write_bytes(pcap_bytes(sorted(recs, key=lambda r: r[0])))
    return path


def maths_runs(html_text: str) -> list[str]:
    """The runs of text (between tags) of an HTML output holding two ``$`` or more: what MathJax
    could pair into mathematics (it pairs delimiters only within one run)."""
    import html
    import re

    return [r for r in re.split(r"<[^>]+>", html_text) if html.unescape(r).count("$") >= 2]


def _cells(out: str) -> list[str]:
    """The text of each <td> of a Styler's HTML, tags removed and unescaped."""
    import html
    import re

    return [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", out, re.S)]


@pytest.fixture(scope="module")
def hostile_flows(tmp_path_factory):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", kt.CaptureWarning)
        return kt.analyze(dollar_capture(tmp_path_factory.mktemp("dollar")))


def test_style_table_shows_names_from_packets_as_text(hostile_flows):
    pytest.importorskip("jinja2", reason="jinja2 (pandas Styler) is in the test extra")
    f = hostile_flows
    assert {"$x^2$.ksc.kaspersky.com", "<script>alert(1)</script>.example", "$a$b$.digicert.com"} <= set(f["server_name"])
    # pandas' own table: escaped, but "$…$" pairs in one run of text (typeset where the front end
    # ignores the mathjax_ignore class, jupyterlab#17935)
    cols = ["server_name", "query", "detail"]
    assert maths_runs(f[cols].to_html())
    before = f[cols].copy()
    out = kt.style_table(f[cols], max_colwidth=None).to_html()
    assert not maths_runs(out)
    assert "<script>" not in out and "&lt;script&gt;alert(1)&lt;/script&gt;.example" in out
    assert "\x1b" not in out and "\u202e" not in out and "\\x1b[31mred" in out
    assert 'class="tex2jax_ignore mathjax_ignore"' in out
    # each cell reads as its value (the spans are no text)
    assert _cells(out) == [str(v) for row in f[cols].itertuples(index=False) for v in row]
    pd.testing.assert_frame_equal(f[cols], before)          # the table itself not changed
    # the server names table and the flow table itself
    for t in (kt.server_names(f), f):
        assert not maths_runs(kt.style_table(t, max_rows=None, max_colwidth=None).to_html())


def test_style_table_labels_numbers_rows_and_empty_tables(hostile_flows):
    pytest.importorskip("jinja2", reason="jinja2 (pandas Styler) is in the test extra")
    t = pd.DataFrame({"$a$": ["<b>$x$</b>", "y"], "n": [3, 4], "f": [0.5, 1.25]},
                     index=pd.Index(["$r$", "<i>s</i>"], name="<u>$k$</u>"))
    t.columns.name = "$c$"
    out = kt.style_table(t).to_html()
    assert not maths_runs(out) and "<b>" not in out and "<i>" not in out and "<u>" not in out
    assert _cells(out) == ["<b>$x$</b>", "3", "0.500000", "y", "4", "1.250000"]
    # a missing text value (a CSV read back) as pandas shows it
    assert _cells(kt.style_table(pd.DataFrame({"q": ["$a$", float("nan")]})).to_html()) == ["$a$", "NaN"]
    # rows cut to max_rows (a caption says so), cells to max_colwidth; pandas' options by default
    f = hostile_flows
    out = kt.style_table(f[["server_name"]], max_rows=3, max_colwidth=10).to_html()
    assert "<caption>the first 3 of 15 rows</caption>" in out
    assert _cells(out) == ["$x^2$.ksc…", "", "a$\\\\color…"]
    with pd.option_context("display.max_rows", 4, "display.max_colwidth", 6):
        assert _cells(kt.style_table(f[["server_name"]]).to_html()) == ["$x^2$…", "", "a$\\\\c…", ""]
    assert "row_heading" not in kt.style_table(f[["verdict"]], hide_index=True).to_html()
    # empty tables: the flow table without rows, the host table (0, 0)
    for empty in (f.iloc[:0], kt.host_status(f.iloc[:0])):
        out = kt.style_table(empty).to_html()
        assert "<table" in out and "<td" not in out
    with pytest.raises(TypeError, match="series.to_frame"):
        kt.style_table(f["server_name"])


def test_style_table_without_jinja2_is_a_plain_table(monkeypatch, hostile_flows):
    import sys
    monkeypatch.setitem(sys.modules, "jinja2", None)
    with pytest.warns(UserWarning, match="jinja2 is not installed"):
        t = kt.style_table(hostile_flows[["server_name", "query"]], max_rows=5)
    assert isinstance(t, pd.DataFrame) and t.shape == (5, 2)
    assert t["server_name"].tolist() == hostile_flows["server_name"].head(5).tolist()
