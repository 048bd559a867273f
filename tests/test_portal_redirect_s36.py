"""A captive portal's redirect on port 80 (newcomer 36 F6): a certificate check (GET
http://crl3.digicert.com/…) answered `302 Location: http://portal.corp.example/login` was
`cert_check ok`, and the checklist counted it as a working check, though the CRL was never
fetched. A redirect to another site is now blocked/rejected as a filter's refusal is, and the
advice names the portal; the site's own redirects stay ok."""
from __future__ import annotations

import pytest

pytest.importorskip("scapy")

from kscc_traffic import load_rules  # noqa: E402
from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.report import readiness  # noqa: E402
from pcapbuild import pcap_bytes, tcp_session  # noqa: E402

AGENT, CRL = "192.0.2.10", "203.0.113.20"
RULES = load_rules()


def crl_fetch(location: str | None, host: str = "crl3.digicert.com", status: str = "302 Found", t0=1000.0, port=50024):
    req = f"GET /DigiCertGlobalRootG2.crl HTTP/1.1\r\nHost: {host}\r\nUser-Agent: agent\r\n\r\n".encode()
    loc = f"Location: {location}\r\n" if location is not None else ""
    resp = f"HTTP/1.1 {status}\r\n{loc}Content-Length: 0\r\n\r\n".encode()
    return tcp_session((AGENT, port), (CRL, 80), t0=t0, c_data=req, s_data=resp)


def judged(tmp_path, records, name="c.pcap", engine="builtin"):
    path = tmp_path / name
    path.write_bytes(pcap_bytes(sorted(records, key=lambda r: r[0])))
    flows = analyze_file(str(path), RULES, engine=engine).flows
    row = flows[flows.resp_p == 80].iloc[0]
    return row.verdict, row.reason, row.detail, flows


PORTAL = "http://portal.corp.example/login?url=http%3A%2F%2Fcrl3.digicert.com%2F"


@pytest.mark.parametrize("engine", ["builtin", "tshark"])
def test_a_redirect_to_another_site_is_a_portal(tmp_path, engine):
    if engine == "tshark":
        import shutil
        if not shutil.which("tshark"):
            pytest.skip("tshark not installed")
    verdict, reason, detail, _ = judged(tmp_path, crl_fetch(PORTAL), engine=engine)
    assert (verdict, reason) == ("blocked", "rejected")
    assert detail == (f'the server {CRL}:80 answered 302 "Found" to the request for http://crl3.digicert.com:80 (a '
                      f"transparent web filter or captive portal: a redirect to {PORTAL}, another site)")


@pytest.mark.parametrize("location", ["http://crl4.digicert.com/DigiCertGlobalRootG2.crl",
                                      "https://crl3.digicert.com/DigiCertGlobalRootG2.crl",
                                      "/other/DigiCertGlobalRootG2.crl", None])
def test_the_sites_own_redirects_stay_ok(tmp_path, location):
    verdict, reason, detail, _ = judged(tmp_path, crl_fetch(location))
    assert (verdict, reason, detail) == ("ok", "", "")


def test_the_advice_names_the_portal(tmp_path):
    from test_newcomer30_findings import _hello
    recs = crl_fetch(PORTAL) + tcp_session((AGENT, 50100), ("203.0.113.10", 23101), t0=1001.0,
                                           c_data=_hello(b"eu1.ksc.kaspersky.com"))
    _, _, _, flows = judged(tmp_path, recs)
    row = readiness(flows, RULES).set_index("purpose").loc["cert_check"]
    assert row.status == "blocked"
    assert ("this request was answered HTTP 302 on TCP 80, which is open: a web filter or transparent proxy refused "
            "it by policy; a redirect (3xx) to another site is a captive portal or filter sending the request to its "
            "own page: authenticate this network in the portal, or allow *.digicert.com in its URL filter") in row.fix
