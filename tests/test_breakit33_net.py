"""Break-it net 33 (TLS interception and certificate refusals on real network stacks): findings fixed.

Found on captures of real stacks in network namespaces (Python/OpenSSL and GnuTLS clients, a
transparent mitmproxy re-signing with its own CA or a corporate-looking one, the server's own
certificate refused); the tests rebuild the same byte sequences with scapy from real TLS
handshakes made in memory (``run_handshake``).

F1. A TLS 1.2 client that refused the certificate without an alert (a FIN or RST after the
server's flight) got a detail naming the certificate's name but not its issuer, the one piece a
support engineer needs to tell which device inspects (or that it is the public CA's own).
F2. A TLS 1.3 client's cleartext certificate alert (OpenSSL sends unknown_ca in cleartext before
its Finished) was ``tls_intercepted`` "a TLS-inspecting proxy whose CA the client does not trust?",
but TLS 1.3 encrypts the certificate: the real server's own certificate refused by an agent that
lacks its root gives the same bytes (seen: no proxy at all, called a proxy). Now ``tls_failed``,
the detail saying what cannot be seen and both possibilities.
F3. A TLS 1.3 client's encrypted alert before its Finished, and a TLS 1.3 client closing after
the server's flight without its Finished, said nothing of the certificate the flight held.
F6. The checklist advised a proxy / TLS inspection ("let the agent's TLS … through uninspected")
for a handshake the detail itself said was the server's own public-CA certificate refused (the
agent's root certificates or clock); now it advises the root certificates, the clock and TCP 80 to
*.digicert.com, and for a certificate TLS 1.3 hid, both that and the inspection exemption."""
from __future__ import annotations

import json
import ssl

from cryptography import x509
from cryptography.x509.oid import NameOID
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from typer.testing import CliRunner

from chunkcmp import assert_same, write
from test_protocols_tls import record, run_handshake
from test_tls_view_cut import _flights

from kscc_traffic import analyze
from kscc_traffic.classify import TLS13_HIDDEN
from kscc_traffic.cli import app
from kscc_traffic.report import readiness
from kscc_traffic.rules import load_rules

C, S, SNI, PORT = "192.0.2.10", "198.51.100.20", "eu1.ksc.kaspersky.com", 23101
MC, MS = "02:00:00:00:00:10", "02:00:00:00:00:01"
ROOTS = ("check the agent's root certificates (DigiCert Global Root G2 among them, for the cloud's DigiCert "
         "certificates) and its system time")


def _session(parts, close="c", t0=100.0):
    """A TCP connection C -> S:PORT carrying ``parts`` ([(side 'c'|'s', bytes)]), each answered
    by an ACK, then closed: ``c`` the client's FIN first, ``r`` the client's RST, ``s`` the
    server's FIN first. Returns [(ts, frame)]."""
    t = [t0]
    out = []

    def pkt(side, flags, seq, ack, data=b""):
        t[0] += 0.01
        if side == "c":
            p = Ether(src=MC, dst=MS) / IP(src=C, dst=S, ttl=64) / TCP(sport=50000, dport=PORT, flags=flags,
                                                                        seq=seq, ack=ack, window=64240)
        else:
            p = Ether(src=MS, dst=MC) / IP(src=S, dst=C, ttl=51) / TCP(sport=PORT, dport=50000, flags=flags,
                                                                        seq=seq, ack=ack, window=64240)
        out.append((t[0], bytes(p / data) if data else bytes(p)))
    cs, ss = 1000, 5000
    pkt("c", "S", cs, 0)
    pkt("s", "SA", ss, cs + 1)
    cs, ss = cs + 1, ss + 1
    pkt("c", "A", cs, ss)
    for side, data in parts:
        if side == "c":
            pkt("c", "PA", cs, ss, data)
            cs += len(data)
            pkt("s", "A", ss, cs)
        else:
            pkt("s", "PA", ss, cs, data)
            ss += len(data)
            pkt("c", "A", cs, ss)
    if close == "c":
        pkt("c", "FA", cs, ss)
        pkt("s", "FA", ss, cs + 1)
        pkt("c", "A", cs + 1, ss + 1)
    elif close == "r":
        pkt("c", "R", cs, 0)
    else:
        pkt("s", "FA", ss, cs)
        pkt("c", "FA", cs, ss + 1)
        pkt("s", "A", ss + 1, cs + 1)
    return out


def _refused(tmp_path, version, alert=True, close="c", issuer=None, names=("*.ksc.kaspersky.com",)):
    """A real handshake whose client refuses the (self-signed, or ``issuer``-named) certificate:
    the ClientHello, the server's first flight, then the client's alert (``alert``) or nothing,
    and the close ``close``."""
    cs, ss, err = run_handshake(tmp_path, version, SNI, list(names), verify=True, issuer=issuer)
    assert err is not None
    c, s = _flights(cs), _flights(ss)
    assert c[1][0] == 21   # (OpenSSL's certificate alert, in cleartext for TLS 1.3 too)
    parts = [("c", c[0]), ("s", b"".join(s))] + ([("c", c[1])] if alert else [])
    return _session(parts, close)


def _one(tmp_path, recs, name="c.pcap"):
    path = write(tmp_path, recs, name)
    flows = assert_same(path, [300, 1000])
    tcp = flows[flows["proto"] == "tcp"]
    assert len(tcp) == 1
    return path, tcp.iloc[0]


def _advice(flows) -> str:
    rows = readiness(flows, load_rules())
    return " ".join(rows[rows["purpose"] == "agent_connection"]["fix"].tolist())


def test_tls13_certificate_alert_is_no_proof_of_interception(tmp_path):
    path, r = _one(tmp_path, _refused(tmp_path, ssl.TLSVersion.TLSv1_3))
    assert (r["tls_version"], r["tls_alert"], r["cert_names"], r["cert_issuer"]) == \
        ("TLS 1.3", "client: unknown_ca (48)", "", "")
    assert (r["purpose"], r["verdict"], r["reason"]) == ("agent_connection", "blocked", "tls_failed")
    assert r["detail"] == (f"the client rejected the server's certificate (unknown_ca (48)): {TLS13_HIDDEN}; "
                           "the handshake was aborted and never completed: the agent cannot connect this way")
    assert "TLS 1.3 encrypts the certificate, so the capture cannot show whose it was" in r["detail"]
    fix = _advice(analyze(str(path)))
    assert "then the client refused the server's certificate, which TLS 1.3 hides or the capture lacks" in fix
    assert "if a TLS-inspecting proxy is in the path, exclude *.ksc.kaspersky.com from inspection; else " + ROOTS in fix
    assert "through uninspected" not in fix


def test_tls12_certificate_alert_still_names_the_proxy(tmp_path):
    # (the certificate seen: a private CA's for the right name, refused: a proxy, as before)
    # (a CA with no name of inspection: "… Inspection CA" is one named for it now, break-it real s57 #4)
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Example Corp Issuing CA")])
    _, r = _one(tmp_path, _refused(tmp_path, ssl.TLSVersion.TLSv1_2, issuer=issuer))
    assert (r["verdict"], r["reason"], r["cert_issuer"]) == ("blocked", "tls_intercepted",
                                                            "CN=Example Corp Issuing CA")
    assert r["detail"].startswith("the client rejected the server's certificate (unknown_ca (48)) for "
                                  "*.ksc.kaspersky.com issued by CN=Example Corp Issuing CA: a TLS-inspecting "
                                  "proxy whose CA the client does not trust?")


def test_tls12_silent_refusal_names_the_issuer(tmp_path):
    issuer = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Corp, Inc."),
                        x509.NameAttribute(NameOID.COMMON_NAME, "Inspect <b>\u202e")])
    for close, how in (("c", "closed the connection (FIN, SF)"), ("r", "reset the connection (RST, RSTO)")):
        _, r = _one(tmp_path, _refused(tmp_path, ssl.TLSVersion.TLSv1_2, alert=False, close=close, issuer=issuer),
                    f"{close}.pcap")
        assert r["cert_issuer"] == "CN=Inspect \\<b\\>\\E2\\80\\AE,O=Corp\\, Inc."   # (RFC 4514 text, escaped)
        assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed")
        assert r["detail"] == (f"TLS handshake aborted: the client {how} after the server's last flight (its "
                               "certificate, for *.ksc.kaspersky.com issued by CN=Inspect \\<b\\>\\E2\\80\\AE,O=Corp\\, "
                               "Inc., seen), sending nothing after it, no alert either: how an agent refuses a "
                               "certificate it does not trust without saying so (a TLS-inspecting proxy's?)")


def test_tls12_silent_refusal_of_a_public_ca_points_at_the_roots(tmp_path):
    issuer = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "DigiCert Inc"),
                        x509.NameAttribute(NameOID.COMMON_NAME, "DigiCert Global G2 TLS RSA SHA256 2020 CA1")])
    _, r = _one(tmp_path, _refused(tmp_path, ssl.TLSVersion.TLSv1_2, alert=False, issuer=issuer))
    assert r["detail"].endswith("without saying so (a public CA's, DigiCert, for the name asked: the agent's "
                                "root certificates or system time?)")


def test_public_ca_refused_is_advised_as_roots_not_inspection(tmp_path):
    issuer = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "DigiCert Inc"),
                        x509.NameAttribute(NameOID.COMMON_NAME, "DigiCert Global G2 TLS RSA SHA256 2020 CA1")])
    path, r = _one(tmp_path, _refused(tmp_path, ssl.TLSVersion.TLSv1_2, issuer=issuer))
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed")
    assert r["detail"].startswith("the client rejected the server's own certificate (unknown_ca (48))")
    fix = _advice(analyze(str(path)))
    assert fix == ("this connection reached the server on TCP 23100-23199 (the TCP handshake completed: the port is "
                   "open, nothing to open in the firewall), then the client refused the server's own certificate, "
                   f"from a public CA (see each flow's detail): {ROOTS}; the page documents TCP 80 to *.digicert.com "
                   "for checking the certificates' validity (CRL, OCSP): allow it too")


def test_tls13_silent_close_after_the_server_flight_says_what_it_hides(tmp_path):
    _, r = _one(tmp_path, _refused(tmp_path, ssl.TLSVersion.TLSv1_3, alert=False))
    assert (r["tls_version"], r["tls_alert"], r["verdict"], r["reason"]) == ("TLS 1.3", "", "blocked", "tls_failed")
    assert r["detail"] == ("TLS handshake aborted: the client closed the connection (FIN, SF) after the server's "
                           "last flight, sending nothing after it, no alert either: how an agent refuses a "
                           f"certificate it does not trust without saying so; {TLS13_HIDDEN}")


def test_tls13_encrypted_alert_before_finished(tmp_path):
    # (GnuTLS encrypts its alert: a CCS, then a 19-byte application_data record)
    cs, ss, err = run_handshake(tmp_path, ssl.TLSVersion.TLSv1_3, SNI, ["*.ksc.kaspersky.com"], verify=True)
    after = record(20, b"\x01", 0x0303) + record(23, b"\x99" * 19, 0x0303)
    _, r = _one(tmp_path, _session([("c", _flights(cs)[0]), ("s", ss), ("c", after)]))
    assert r["tls_alert"] == "client: encrypted alert (TLS 1.3, before its Finished)"
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed")
    assert r["detail"] == ("TLS handshake aborted: client: encrypted alert (TLS 1.3, before its Finished): an alert "
                           "a client sends there most often refuses the server's certificate; " + TLS13_HIDDEN)


def test_outputs_agree_and_mixed_counts(tmp_path):
    """The table, JSON Lines and HTML say the same; two kinds in one purpose get both parts."""
    issuer = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "DigiCert Inc"),
                        x509.NameAttribute(NameOID.COMMON_NAME, "DigiCert Global G2 TLS RSA SHA256 2020 CA1")])
    recs = _refused(tmp_path, ssl.TLSVersion.TLSv1_3) + \
        [(t + 10, f) for t, f in _refused(tmp_path, ssl.TLSVersion.TLSv1_2, issuer=issuer)]
    # (the second connection from another source port)
    recs = recs[:len(recs) // 2] + [(t, bytes(_sport(f, 50001))) for t, f in recs[len(recs) // 2:]]
    path = write(tmp_path, recs, "two.pcap")
    runner = CliRunner()
    out = tmp_path / "o.jsonl"
    assert runner.invoke(app, ["analyze", str(path), "--format", "jsonl", "-o", str(out)]).exit_code == 1
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted((x["reason"], x["detail"][:44]) for x in rows) == [
        ("tls_failed", "the client rejected the server's certificate"),
        ("tls_failed", "the client rejected the server's own certifi")]
    table = runner.invoke(app, ["analyze", str(path)], env={"COLUMNS": "400"})
    assert table.exit_code == 1
    text = " ".join(table.output.split())
    assert ("1 of them: the client refused the server's own certificate, from a public CA (see each flow's "
            "detail): " + ROOTS) in text
    assert ("1 of them: the client refused the server's certificate, which TLS 1.3 hides or the capture lacks (see each flow's "
            "detail): if a TLS-inspecting proxy is in the path, exclude *.ksc.kaspersky.com from inspection") in text
    fix = _advice(analyze(str(path)))
    assert fix in text
    html = tmp_path / "r.html"
    assert runner.invoke(app, ["report", str(path), "--html", str(html)]).exit_code in (0, 1)
    page = html.read_text()
    assert "which TLS 1.3 hides or the capture lacks (see each flow&#x27;s detail)" in page
    assert "TLS 1.3 encrypts the certificate, so the capture cannot show whose it was" in page


def _sport(frame: bytes, port: int) -> Ether:
    p = Ether(frame)
    if p[IP].src == C:
        p[TCP].sport = port
    else:
        p[TCP].dport = port
    del p[IP].chksum, p[TCP].chksum
    return p
