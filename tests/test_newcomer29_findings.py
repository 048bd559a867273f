"""Newcomer 29's findings (a support engineer's first day with the tool), one section each."""
from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("scapy")

from scapy.all import DNS, DNSQR, DNSRR  # noqa: E402

from conftest import ROOT, shared_corpus  # noqa: E402
from kscc_traffic import analyze, readiness  # noqa: E402
from kscc_traffic.report import TableSummary, render_table  # noqa: E402
from kscc_traffic.rules import load_rules  # noqa: E402
from pcapbuild import pcap_bytes, tcp_session, udp  # noqa: E402

RULES = load_rules()


def _run(path, *args):
    return subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", str(path), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env={"COLUMNS": "250", "PATH": ""})


# --- F1: a browser's certificate check to DigiCert is no KSC agent traffic ---------------------------

def _browsing(ocsp: bool) -> list:
    """Five HTTPS sites (a TLS record each way, no name) and, with ``ocsp``, a
    lookup of ocsp.digicert.com and an OCSP POST to it on TCP 80 answered 200: what a browser does."""
    from test_newcomer23_advice import _http
    recs = []
    for k in range(5):
        hello = bytes.fromhex("16030100") + bytes([0x20]) + b"\x01" + b"\x00" * 0x1f   # a TLS record, any body
        recs += tcp_session(("192.0.2.10", 50200 + k), (f"198.51.100.{20 + k}", 443), t0=1000.0 + k,
                            c_data=hello, s_data=bytes.fromhex("1603030004") + b"\x0e\x00\x00\x00")
    if ocsp:
        dns = DNS(id=7, qr=1, rd=1, ra=1, qd=DNSQR(qname="ocsp.digicert.com"),
                  an=DNSRR(rrname="ocsp.digicert.com", type="A", rdata="198.18.0.81", ttl=60))
        recs.append(udp(("192.0.2.53", 53), ("192.0.2.10", 41000), bytes(dns), t=1009.0))
        recs += _http("ocsp.digicert.com", 1010.0, server="198.18.0.81")
    return sorted(recs, key=lambda r: r[0])


def test_a_browsers_ocsp_request_makes_no_ksc_agent_traffic(tmp_path):
    """Newcomer 29 F1: browsing plus one OCSP request to ocsp.digicert.com on TCP 80 (the
    certificate check's host mask, but every browser's and Windows' own) got no "No KSC agent
    traffic" headline: cert_check verified, discovery unexpected for the five sites, exit 1. The
    same capture without the OCSP request had the headline and exit 0: both must."""
    for ocsp in (False, True):
        path = tmp_path / f"browse{int(ocsp)}.pcap"
        path.write_bytes(pcap_bytes(_browsing(ocsp)))
        flows = analyze(str(path))
        assert (flows["resp_p"] == 80).sum() == int(ocsp)
        text = " ".join(render_table(flows, RULES, width=400).split())
        assert text.startswith("No KSC agent traffic:"), (ocsp, text[:300])
        for chk in (readiness(flows, RULES), TableSummary.of(flows).readiness(RULES)):
            assert set(chk["status"]) == {"not seen"}
        p = _run(path)
        assert p.returncode == 0, (ocsp, p.stdout[-1500:], p.stderr)
    # beside an agent's connection the certificate check is judged: verified
    path = tmp_path / "agent.pcap"
    path.write_bytes(pcap_bytes(sorted(_browsing(True) + tcp_session(("192.0.2.10", 50100), ("203.0.113.10", 23101),
                                                                      t0=990.0), key=lambda r: r[0])))
    flows = analyze(str(path))
    chk = readiness(flows, RULES).set_index("rule")
    assert chk.loc["cert_check", "status"] == "verified"
    assert not " ".join(render_table(flows, RULES, width=400).split()).startswith("No KSC agent traffic")


def test_the_public_browsing_capture_with_ocsp_is_no_ksc_agent_traffic():
    """The public capture newcomer 29 used (Windows browsing, ocsp.pki.goog and DigiCert's OCSP,
    no Kaspersky name): the headline, every purpose not seen, exit 0."""
    path = shared_corpus("public") / "tls-san_many-flows_ocsp.pcap"
    if not path.exists():
        pytest.skip(f"{path} not in this corpus")
    p = _run(path)
    assert p.returncode == 0, p.stdout[-1500:]
    assert p.stdout.lstrip().startswith("No KSC agent traffic"), p.stdout[:500]
