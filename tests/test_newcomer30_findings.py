"""Newcomer 30's findings F1, F5, F7, on captures built here with scapy:

- F1: a direct SYN to 23101 unanswered, a proxy's 403 to ``CONNECT eu1.ksc.kaspersky.com:23101``,
  TLS on 23102 to another server's name and TLS on 23102 to another Kaspersky name made the
  readiness advice raise a TypeError (``_readiness_row`` reused ``other``, a count, for a text);
  every subset of those flows gives advice, in both readiness paths, in the CLI (exit 1: flagged)
  and in the HTML report; an internal error of analyze exits 2 (an ``Error:`` line), not 1;
- F5: a name that is not a host name (an RLO character before ``eu1.ksc.kaspersky.com``) is said
  as its flow's detail says it (forged or damaged) in the advice, not as Kaspersky's other
  services, nor as the address the agent was given; one flow is "this flow", not "these flows";
- F7: a certificate the client rejects, issued by an unknown CA, names that issuer (bounded) in
  the ``tls_intercepted`` detail."""
from __future__ import annotations

import itertools
import struct

import pytest
from scapy.all import DNS, DNSQR, DNSRR, IP, TCP, UDP

from pcapbuild import CLIENT_MAC, SERVER_MAC, eth, pcap_bytes, tcp_session

from kscc_traffic import analyze, load_rules, readiness
from kscc_traffic.report import TableSummary

RULES = load_rules()
AGENT, RESOLVER, KSC, PROXY = "192.0.2.50", "192.0.2.1", "203.0.113.10", "192.0.2.3"
KSC_NAME = "eu1.ksc.kaspersky.com"
RLO_NAME = "\u202eeu1.ksc.kaspersky.com".encode()


def _hello(sni: bytes) -> bytes:
    """A TLS 1.2-style ClientHello record asking ``sni`` (raw bytes: any byte goes)."""
    entry = b"\x00" + struct.pack("!H", len(sni)) + sni
    ext = struct.pack("!HH", 0, len(entry) + 2) + struct.pack("!H", len(entry)) + entry
    body = b"\x03\x03" + b"\x11" * 32 + b"\x00" + struct.pack("!H", 2) + b"\xc0\x2f" + b"\x01\x00" \
        + struct.pack("!H", len(ext)) + ext
    msg = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(msg)) + msg


#: a ServerHello record (TLS 1.2, ECDHE-RSA-AES128-GCM): the server answered
SERVER_HELLO = (lambda b: b"\x16\x03\x03" + struct.pack("!H", len(b) + 4) + b"\x02" + len(b).to_bytes(3, "big") + b)(
    b"\x03\x03" + b"\x22" * 32 + b"\x00" + b"\xc0\x2f" + b"\x00" + b"\x00\x00")


def _dns(t: float) -> list:
    q = DNS(id=7, rd=1, qd=DNSQR(qname=KSC_NAME))
    a = DNS(id=7, qr=1, rd=1, ra=1, qd=DNSQR(qname=KSC_NAME), an=DNSRR(rrname=KSC_NAME, ttl=60, rdata=KSC))
    return [(t, eth(IP(src=AGENT, dst=RESOLVER) / UDP(sport=53000, dport=53) / q)),
            (t + .01, eth(IP(src=RESOLVER, dst=AGENT) / UDP(sport=53, dport=53000) / a, src=SERVER_MAC, dst=CLIENT_MAC))]


def _part(kind: str, t: float) -> list:
    """The packets of one of the newcomer's flows, starting at ``t``."""
    if kind == "drop":     # a direct SYN to 23101, sent 4 times, never answered
        return _dns(t) + [(t + .1 + d, eth(IP(src=AGENT, dst=KSC) / TCP(sport=50001, dport=23101, flags="S", seq=10)))
                          for d in (0, 1, 3, 7)]
    if kind == "p403":     # the proxy refuses the CONNECT
        return tcp_session((AGENT, 50002), (PROXY, 3128), t0=t,
                           c_data=f"CONNECT {KSC_NAME}:23101 HTTP/1.1\r\n\r\n".encode(),
                           s_data=b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
    sni = {"other": b"ksc.other.example", "kname": b"ds.kaspersky.com", "rlo": RLO_NAME}[kind]
    port = {"other": 50003, "kname": 50004, "rlo": 50005}[kind]
    return tcp_session((AGENT, port), (KSC, 23102), t0=t, c_data=_hello(sni), s_data=SERVER_HELLO)


def _capture(tmp_path, kinds) -> str:
    recs = []
    for i, kind in enumerate(kinds):
        recs += _part(kind, 1000.0 + 20 * i)
    path = tmp_path / ("_".join(kinds) + ".pcap")
    path.write_bytes(pcap_bytes(sorted(recs, key=lambda r: r[0])))
    return str(path)


def _fixes(flows, rule="agent_connection") -> list[str]:
    """The rule's advice from both readiness paths (they must agree)."""
    a = readiness(flows, RULES).set_index("rule").loc[rule, "fix"]
    b = TableSummary.of(flows).readiness(RULES).set_index("rule").loc[rule, "fix"]
    assert a == b
    return a


FOUR = ("drop", "p403", "other", "kname")


@pytest.mark.parametrize("kinds", [FOUR] + list(itertools.combinations(FOUR, 3)), ids="_".join)
def test_every_subset_gives_advice(tmp_path, kinds):
    """F1: the 4-flow capture and its 3-flow subsets: advice in both paths, CLI exit 1 (flagged,
    no traceback), the HTML report written (exit 1)."""
    from typer.testing import CliRunner

    from kscc_traffic.cli import app
    path = _capture(tmp_path, kinds)
    flows = analyze(path)
    fix = _fixes(flows)
    assert fix and "nothing to change" not in fix.split("For the blocked")[0]
    runner = CliRunner()
    p = runner.invoke(app, ["analyze", path], catch_exceptions=False)
    assert p.exit_code == 1, p.stderr
    assert "What to change" in p.stdout and "internal error" not in p.stderr
    html = tmp_path / "r.html"
    p = runner.invoke(app, ["report", path, "--html", str(html)], catch_exceptions=False)
    assert p.exit_code == 1, p.stderr
    assert "ksc.other.example" in html.read_text() if "other" in kinds else html.stat().st_size > 0


def test_four_flow_advice(tmp_path):
    """F1: the advice of the newcomer's capture: the proxy's refusal, the direct attempt, the
    agent pointed at another server, and one flow to another Kaspersky name, in the singular."""
    fix = _fixes(analyze(_capture(tmp_path, FOUR)))
    assert fix.startswith("0 of 4 flows ok, 2 blocked, 2 unexpected (2 host_mismatch). For the blocked ones: "
                          "1 of these 2 connections went through an HTTP proxy that refused or failed it: 403"), fix
    assert ("the other one was blocked going direct (through no proxy): allow outbound TCP 23100-23199 to "
            "*.ksc.kaspersky.com") in fix, fix
    assert fix.endswith(
        "For the unexpected ones: the agent is configured with another Administration Server address "
        "(ksc.other.example, on TCP 23100-23199, ports only a KSC agent uses; 1 flow): check the address in the "
        "agent's settings / installation package (it must be a name under *.ksc.kaspersky.com). For the other one: "
        "this flow on TCP 23100-23199 went to a name outside *.ksc.kaspersky.com: Kaspersky names not on the KSC "
        "Cloud Console port page (its other services: updates, KSN, licensing…), not this purpose's servers; "
        "it failed (no answer, a reset, an ICMP error or an aborted TLS handshake: see each flow's detail): a "
        "firewall or proxy on the path blocks that Kaspersky service, which the agent may need: allow it as that "
        "service's own port list says (it is not a Cloud Console port)"), fix   # (said once: not "; it failed" again)


def test_an_internal_error_exits_2_not_1(tmp_path, monkeypatch):
    """F1: a bug while writing analyze's report is an ``Error: … internal error`` line and exit 2
    (1 is "flagged"), as report's; a bug no command maps gives 2 from ``main`` too."""
    from typer.testing import CliRunner

    from kscc_traffic import cli, report
    from kscc_traffic.cli import app

    def broken(*a, **k):
        raise TypeError("boom")
    monkeypatch.setattr(report, "print_summary", broken)
    monkeypatch.setattr("kscc_traffic.output.print_summary", broken, raising=False)
    path = _capture(tmp_path, ("other",))
    p = CliRunner().invoke(app, ["analyze", path], catch_exceptions=False)
    assert p.exit_code == 2, (p.exit_code, p.stderr)
    assert p.stderr.startswith("Error: internal error while writing the report (TypeError: boom)"), p.stderr
    monkeypatch.setattr(cli, "app", lambda **k: (_ for _ in ()).throw(ValueError("bad")))
    with pytest.raises(SystemExit) as e:
        cli._main(["analyze", path])
    assert e.value.code == 2


def test_a_forged_kaspersky_name_is_said_forged(tmp_path):
    """F5: TLS on 23102 asking an RLO character before eu1.ksc.kaspersky.com: the detail says
    "not a host name"; so does the advice, in the singular (not "Kaspersky names … nothing to
    change", not the Cloud Console on another port)."""
    flows = analyze(_capture(tmp_path, ("rlo",)))
    row = flows[flows["resp_p"] == 23102].iloc[0]
    assert row["detail"].startswith("\\xe2\\x80\\xaeeu1.ksc.kaspersky.com is not a host name"), row["detail"]
    fix = _fixes(flows)
    assert fix == ("1 flow on TCP 23100-23199, ports only a KSC agent uses: \\xe2\\x80\\xaeeu1.ksc.kaspersky.com is "
                   "not a host name (an SNI or DNS name holding characters no host name has: forged or damaged, see "
                   "each flow's detail): no agent is given such an address; look for a device on "
                   "the path that alters the traffic, or the program that sent it"), fix


def test_a_forged_name_beside_another_server_and_a_kaspersky_name(tmp_path):
    """F5: the agent pointed at another server and a forged name: both said, each as what it is;
    the Kaspersky name after them, one flow in the singular."""
    fix = _fixes(analyze(_capture(tmp_path, ("other", "rlo", "kname"))))
    assert fix.startswith("the agent is configured with another Administration Server address (ksc.other.example, "
                          "on TCP 23100-23199, ports only a KSC agent uses; 2 flows): check the address in the "
                          "agent's settings / installation package (it must be a name under *.ksc.kaspersky.com); "
                          "\\xe2\\x80\\xaeeu1.ksc.kaspersky.com is not a host name (an SNI or DNS name holding "
                          "characters no host name has: forged or damaged, see each flow's detail). For the other "
                          "one: this flow on TCP 23100-23199 went to a name outside *.ksc.kaspersky.com: Kaspersky "
                          "names not on"), fix


def test_two_kaspersky_names_stay_plural(tmp_path):
    """F5: two flows to other Kaspersky names: "these flows … names" (the plural kept)."""
    recs = _part("kname", 1000.0) + tcp_session((AGENT, 50006), (KSC, 23103), t0=1010.0,
                                                c_data=_hello(b"dnl-01.kaspersky.com"), s_data=SERVER_HELLO)
    path = tmp_path / "two.pcap"
    path.write_bytes(pcap_bytes(sorted(recs, key=lambda r: r[0])))
    fix = _fixes(analyze(str(path)))
    assert fix.startswith("these flows on TCP 23100-23199 went to names outside *.ksc.kaspersky.com: Kaspersky "
                          "names not on"), fix


# ---------------------------------------------------------------------------------------- F7
@pytest.mark.parametrize("org, cn, shown", [
    # (a CA's name that says inspection names the device: test_inspection_words_s35)
    ("Contoso Corp", "Contoso Issuing CA 2", "CN=Contoso Issuing CA 2,O=Contoso Corp"),
    ("O" * 64, "C" * 64, "CN=" + "C" * 64 + ",O=" + "O" * 64),     # (135 characters: cut)
], ids=["contoso", "long"])
def test_the_unknown_issuer_is_named(tmp_path, org, cn, shown):
    """F7: a certificate the client rejects (unknown_ca), issued by a CA no product list knows:
    the detail names the issuer (RFC 4514 text), cut to 120 characters."""
    from test_fixp_interception import _rejected
    from test_tls_view_cut import SNI

    from kscc_traffic.classify import MAX_ISSUER_TEXT
    r = _rejected(tmp_path, org, cn)
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_intercepted")
    assert r["cert_issuer"] == shown
    said = shown if len(shown) <= MAX_ISSUER_TEXT else shown[:MAX_ISSUER_TEXT - 1] + "…"
    assert r["detail"] == (f"the client rejected the server's certificate (unknown_ca (48)) for {SNI} issued by "
                           f"{said}: a TLS-inspecting proxy whose CA the client does not trust?; the handshake was "
                           "aborted and never completed: the agent cannot connect this way"), r["detail"]
