"""A server that asks for a client certificate and refuses the client's answer (newcomer 36 F3):
a TLS 1.2 distribution point whose flight holds a CertificateRequest, answered by an empty
Certificate (or an untrusted one), then its fatal alert, was told as a TLS-inspecting proxy in
the path ("let the agent's TLS … through uninspected"). The request and the client's answer are
cleartext in TLS 1.2: the detail names them now and the advice is the agent's own certificate.
TLS 1.3 hides the request: a server's certificate_required alert, or its alert-sized refusal
right after the client's Finished, is advised the same (and TLS inspection, which TLS 1.3 cannot
rule out). Also newcomer 36 F7: on a LAN of a few tens of microseconds' round trip, the agent's
request sent 0.1 ms after its Finished counted as sent "a round trip or more later", so the
server's refusal acknowledging it read as an answer to it (ok)."""
from __future__ import annotations

import datetime
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("scapy")

from chunkcmp import assert_same, whole, write  # noqa: E402
from kscc_traffic import load_rules  # noqa: E402
from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.protocols import tls  # noqa: E402
from kscc_traffic.report import readiness  # noqa: E402
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth, ip_of  # noqa: E402
from scapy.layers.inet import TCP  # noqa: E402
from test_tls_batch import SV13, assert_same as batch_same, client_hello, ext, msg, rec, server_hello, sni_ext  # noqa: E402

RULES = load_rules()
AGENT, DP, CLOUD = "192.0.2.10", "192.0.2.1", "203.0.113.10"


def _certificate(name: str = "ksc.corp.example") -> bytes:
    """A self-signed DER certificate for ``name`` (EC P-256)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(7).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(Encoding.DER)


SERVER_CERT = _certificate()
CLIENT_CERT = _certificate("agent-7f3a")


def certificate(*ders: bytes) -> bytes:
    """A TLS 1.2 Certificate message (RFC 5246 §7.4.2) holding ``ders`` (none: empty)."""
    body = b"".join(len(d).to_bytes(3, "big") + d for d in ders)
    return msg(11, len(body).to_bytes(3, "big") + body)


#: a CertificateRequest (RFC 5246 §7.4.4): types rsa_sign and ecdsa_sign, two signature
#: algorithms, no CA names
CERT_REQUEST = msg(13, b"\x02\x01\x40" + b"\x00\x04\x04\x03\x08\x04" + b"\x00\x00")


def server_flight12(request: bool = True) -> bytes:
    """A TLS 1.2 server's first flight: ServerHello (ECDHE-RSA-AES128-GCM-SHA256), Certificate,
    ServerKeyExchange, [CertificateRequest,] ServerHelloDone, in one record."""
    return rec(22, server_hello([ext(0xFF01, b"\x00")], cipher=0xC02F) + certificate(SERVER_CERT)
               + msg(12, bytes(300)) + (CERT_REQUEST if request else b"") + msg(14, b""))


def client_flight12(*ders: bytes, verify: bool = True) -> bytes:
    """A TLS 1.2 client's second flight: Certificate (``ders``; none: empty), ClientKeyExchange,
    CertificateVerify (when it sent a certificate), ChangeCipherSpec, its encrypted Finished."""
    return (rec(22, certificate(*ders) + msg(16, b"\x41" + bytes(65))
                + (msg(15, b"\x04\x03\x00\x40" + bytes(64)) if ders and verify else b""))
            + rec(20, b"\x01") + rec(22, bytes(40)))


HELLO12 = rec(22, client_hello([ext(0xFF01, b"\x00")], ciphers=b"\xc0\x2f", legacy=0x0303), 0x0301)
HANDSHAKE_FAILURE = rec(21, b"\x02\x28")
UNKNOWN_CA = rec(21, b"\x02\x30")


def session(exchange, server=(DP, 13000), closer_server=True, t0=1000.0, step=0.01, port=50100):
    """(ts, frame) of a TCP connection from the agent: SYN, SYN-ACK, ACK (``step`` s apart), then
    ``exchange`` [(from the server, bytes[, seconds more before it])] each ``step`` s apart, then the closer's FIN, the
    other's FIN and the last ACK."""
    (sh, sp) = server
    up = lambda **kw: eth(ip_of(AGENT, sh) / TCP(sport=port, dport=sp, **kw))  # noqa: E731
    dn = lambda **kw: eth(ip_of(sh, AGENT) / TCP(sport=sp, dport=port, **kw), src=SERVER_MAC, dst=CLIENT_MAC)  # noqa: E731
    cs, ss, t = 700001, 900001, t0
    out = [(t, up(flags="S", seq=cs - 1)), (t + step, dn(flags="SA", seq=ss - 1, ack=cs)),
           (t + 2 * step, up(flags="A", seq=cs, ack=ss))]
    t += 3 * step
    for from_server, data, *later in exchange:
        t += later[0] if later else 0.0
        if from_server:
            out.append((t, dn(flags="PA", seq=ss, ack=cs) / data))
            ss += len(data)
        else:
            out.append((t, up(flags="PA", seq=cs, ack=ss) / data))
            cs += len(data)
        t += step
    if closer_server:
        out += [(t, dn(flags="FA", seq=ss, ack=cs)), (t + step, up(flags="FA", seq=cs, ack=ss + 1)),
                (t + 2 * step, dn(flags="A", seq=ss + 1, ack=cs + 1))]
    else:
        out += [(t, up(flags="FA", seq=cs, ack=ss)), (t + step, dn(flags="FA", seq=ss, ack=cs + 1)),
                (t + 2 * step, up(flags="A", seq=cs + 1, ack=ss + 1))]
    return out


def refused12(*ders: bytes, alert: bytes = HANDSHAKE_FAILURE):
    """The TLS 1.2 mutual-TLS handshake refused: ClientHello; the server's flight with its
    CertificateRequest; the client's Certificate (``ders``) flight; the server's fatal alert."""
    return [(False, HELLO12), (True, server_flight12()), (False, client_flight12(*ders)), (True, alert)]


def judged(tmp_path, recs, engine="builtin", name="c.pcap"):
    path = write(tmp_path, recs, name=name)
    flows = analyze_file(str(path), RULES, engine=engine).flows
    (row,) = flows.to_dict("records")
    return row, flows, path


def client_cert_column(path) -> list[str]:
    """The internal ``tls_client_cert`` column of the capture's flows (inspect_flows)."""
    from kscc_traffic import build_flows, decode, read_frames
    from kscc_traffic.analyze import server_port_fn
    from kscc_traffic.inspect import inspect_flows

    ft = build_flows(decode(read_frames(str(path))), server_port_fn(RULES))
    return inspect_flows(ft)[0]["tls_client_cert"].tolist()


ENGINES = ["builtin", pytest.param("tshark", marks=pytest.mark.skipif(not shutil.which("tshark"),
                                                                       reason="tshark not installed"))]
ASKED = "TLS handshake aborted: the server asked for a client certificate (CertificateRequest)"
FIX12 = ("this connection reached the server on TCP 13000 (the TCP handshake completed: the port is open, nothing "
         "to open in the firewall), then the server requires a client certificate and refused the agent's (none "
         "sent, or one it does not trust; its CertificateRequest seen, see each flow's detail): check the agent's "
         "own certificate (have it re-issued, or reinstall the agent so that it gets a new one) and the server's "
         "client-certificate requirement (the CA it trusts for its clients); not the firewall, nor TLS inspection")


# ---- the summary: the request and the client's answer

def test_the_summary_reads_the_request_and_the_answer():
    """tls.summarize: a CertificateRequest in the server's cleartext flight (cert_request) and the
    certificates of the client's Certificate answering it (client_certificates: 0 empty, 1 one;
    None when the request came and no Certificate was seen; None without a request)."""
    cases = [
        (HELLO12 + client_flight12(), True, 0),
        (HELLO12 + client_flight12(CLIENT_CERT), True, 1),
        (HELLO12 + client_flight12(CLIENT_CERT, SERVER_CERT), True, 2),
        (HELLO12, True, None),
        # (a cut Certificate: its list's length says it is not empty)
        (HELLO12 + rec(22, certificate(CLIENT_CERT))[:20], True, 1),
    ]
    for client, asked, certs in cases:
        s = tls.summarize(client, server_flight12() + HANDSHAKE_FAILURE)
        assert (s.cert_request, s.client_certificates, s.server_alert) == (asked, certs, (2, 40))
    s = tls.summarize(HELLO12 + client_flight12(CLIENT_CERT), server_flight12(request=False))
    assert (s.cert_request, s.client_certificates) == (False, None)
    # (a Certificate after the client's ChangeCipherSpec is encrypted: not read)
    late = HELLO12 + rec(22, msg(16, bytes(66))) + rec(20, b"\x01") + rec(22, certificate())
    assert tls.summarize(late, server_flight12()).client_certificates is None


def test_the_batch_gives_what_the_reference_gives():
    """TlsBatch.cert_request / client_certs: equal to the reference, row by row (such flights
    always go to it), -1 where not asked; a TLS 1.3 handshake (whose request is encrypted) and
    a ServerHello alone (the walk's own rows) have neither."""
    cs = [HELLO12 + client_flight12(), HELLO12 + client_flight12(CLIENT_CERT), HELLO12, HELLO12 + client_flight12(),
          rec(22, client_hello([sni_ext([(0, b"eu1.ksc.kaspersky.com")]), ext(43, b"\x02\x03\x04")]))
          + rec(20, b"\x01") + rec(23, bytes(25)) + rec(23, bytes(53))]
    ss = [server_flight12() + HANDSHAKE_FAILURE, server_flight12() + UNKNOWN_CA, server_flight12(),
          server_flight12(request=False), rec(22, server_hello([SV13])) + rec(20, b"\x01") + rec(23, bytes(700))]
    b = batch_same(cs, ss)
    assert b.cert_request.tolist() == [True, True, True, False, False]
    assert b.client_certs.tolist() == [0, 1, -1, -1, -1]
    assert not b.fallback[4]


# ---- TLS 1.2: refused, whole and in chunks, both engines

@pytest.mark.parametrize("engine", ENGINES)
def test_tls12_no_client_certificate(tmp_path, engine):
    row, flows, path = judged(tmp_path, session(refused12()), engine)
    assert (row["verdict"], row["reason"], row["detail"]) == (
        "blocked", "tls_failed", f"{ASKED} and the client sent none; the server then aborted: handshake_failure (40)")
    assert readiness(flows, RULES).set_index("purpose").loc["dp_agent_connection"].fix == FIX12
    if engine == "builtin":
        assert_same(path, [300, 900])


@pytest.mark.parametrize("engine", ENGINES)
def test_tls12_client_certificate_refused(tmp_path, engine):
    row, flows, path = judged(tmp_path, session(refused12(CLIENT_CERT, alert=UNKNOWN_CA)), engine)
    assert client_cert_column(path) == ["sent"]
    assert (row["verdict"], row["reason"], row["detail"]) == (
        "blocked", "tls_failed", f"{ASKED}, the client sent one and the server refused it: unknown_ca (48)")
    assert readiness(flows, RULES).set_index("purpose").loc["dp_agent_connection"].fix == FIX12


def test_tls12_refused_by_a_close_without_an_alert(tmp_path):
    """A server that closes after the client's empty Certificate flight, sending no alert."""
    exchange = refused12()[:3]
    row, _, _ = judged(tmp_path, session(exchange))
    assert row["verdict"] == "blocked" and row["reason"] == "tls_failed"
    assert row["detail"].startswith(f"{ASKED} and the client sent none; then the server closed the connection "
                                    "(FIN, SF)"), row["detail"]


def test_tls12_without_a_request_keeps_its_detail(tmp_path):
    """The same alert with no CertificateRequest in the server's flight: the handshake's own
    failure, detail and advice as before (a proxy, TLS inspection or an application-aware firewall)."""
    exchange = [(False, HELLO12), (True, server_flight12(request=False)), (False, client_flight12()),
                (True, HANDSHAKE_FAILURE)]
    row, flows, path = judged(tmp_path, session(exchange))
    assert (row["verdict"], row["reason"], row["detail"]) == (
        "blocked", "tls_failed", "TLS handshake aborted: server: handshake_failure (40)")
    assert client_cert_column(path) == [""]
    # (on a distribution point's port: its service first, then a device between; break-it s55 dp #4)
    fix = readiness(flows, RULES).set_index("purpose").loc["dp_agent_connection"].fix
    assert "check that its Network Agent service is running and answering there" in fix
    assert "application-aware firewall between the agent and the distribution point" in fix


@pytest.mark.parametrize("engine", ENGINES)
def test_tls12_with_a_request_that_succeeds_is_ok(tmp_path, engine):
    """The client sends its certificate, the server its ChangeCipherSpec and Finished, data
    both ways: a working mutual-TLS connection."""
    exchange = [(False, HELLO12), (True, server_flight12()), (False, client_flight12(CLIENT_CERT)),
                (True, rec(20, b"\x01") + rec(22, bytes(40))), (False, rec(23, bytes(120))),
                (True, rec(23, bytes(300)))]
    row, flows, path = judged(tmp_path, session(exchange, closer_server=False), engine)
    assert (row["verdict"], row["reason"], row["detail"], row["tls_established"]) == ("ok", "", "", True)
    assert client_cert_column(path) == ["sent"]   # (the request noted, and the certificate answering it)
    assert readiness(flows, RULES).set_index("purpose").loc["dp_agent_connection"].status == "verified"


def test_the_cli_table_advises_the_agents_certificate(tmp_path):
    """The table report (its streaming readiness) says the same as readiness()."""
    path = write(tmp_path, session(refused12()))
    out = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", str(path)], capture_output=True,
                         text=True, env={"COLUMNS": "2000", "PATH": "/usr/bin:/bin",
                                         "PYTHONPATH": str(__import__("pathlib").Path(__file__).parents[1])})
    assert out.returncode == 1, out.stderr
    text = " ".join(out.stdout.split())
    assert ("then the server requires a client certificate and refused the agent's (none sent, or one it does not "
            "trust; its CertificateRequest seen, see each flow's detail): check the agent's own certificate") in text
    assert "through uninspected" not in text


# ---- TLS 1.3: certificate_required

HELLO13 = rec(22, client_hello([sni_ext([(0, b"eu1.ksc.kaspersky.com")]), ext(43, b"\x02\x03\x04")]), 0x0301)
FLIGHT13 = rec(22, server_hello([SV13])) + rec(20, b"\x01") + rec(23, bytes(700))
#: the client's flight after a CertificateRequest: CCS, its empty Certificate (25), its Finished (53)
NO_CERT13 = rec(20, b"\x01") + rec(23, bytes(25)) + rec(23, bytes(53))
GET13 = rec(23, bytes(80))
ALERT13 = rec(23, bytes(19))
FIX13 = ("this connection reached the server on TCP 23100-23199 (the TCP handshake completed: the port is open, "
         "nothing to open in the firewall), then the server refused the client as one that requires a client "
         "certificate does (certificate_required; see each flow's detail): check the agent's own certificate (have "
         "it re-issued, or reinstall the agent so that it gets a new one) and the server's client-certificate "
         "requirement (the CA it trusts for its clients); TLS 1.3 hides the request and the agent's answer: if a "
         "TLS-inspecting proxy is in the path, it cannot present the agent's certificate: exclude "
         "*.ksc.kaspersky.com from inspection")


@pytest.mark.parametrize("engine", ENGINES)
def test_tls13_refusal_after_the_finished(tmp_path, engine):
    """The server's encrypted alert right after the client's flight (which holds a Certificate: a
    request it could not see), then its close: the certificate_required advice, not the generic
    TLS one."""
    row, flows, _ = judged(tmp_path, session([(False, HELLO13), (True, FLIGHT13), (False, NO_CERT13),
                                              (True, ALERT13)], server=(CLOUD, 23101)), engine)
    assert (row["verdict"], row["reason"]) == ("blocked", "tls_failed")
    assert "certificate_required" in row["detail"]
    assert readiness(flows, RULES).set_index("purpose").loc["agent_connection"].fix == FIX13


def test_tls13_cleartext_certificate_required_alert(tmp_path):
    """A server's certificate_required (116) alert read in the clear after the client's flight."""
    row, flows, _ = judged(tmp_path, session([(False, HELLO13), (True, FLIGHT13), (False, NO_CERT13),
                                              (True, rec(21, b"\x02\x74"))], server=(CLOUD, 23101)))
    assert (row["verdict"], row["reason"]) == ("blocked", "tls_failed")
    assert row["detail"] == ("TLS 1.3: after the client's Finished the server sent the alert certificate_required "
                             "(116) in the clear and closed the connection (SF): it refused the client after the "
                             "handshake: the server requires a client certificate, and the client sent none it accepts")
    assert readiness(flows, RULES).set_index("purpose").loc["agent_connection"].fix == FIX13


def test_tls13_refusal_on_a_fast_lan(tmp_path):
    """Newcomer 36 F7: packets 30 µs apart (the round trip 60 µs): the agent's request 100 µs after
    its Finished, which the server's refusal acknowledges, was read as answered (ok); a request
    sent 20 ms after it (well past any certificate check) still is."""
    recs = session([(False, HELLO13), (True, FLIGHT13), (False, NO_CERT13), (False, GET13, 0.00007),
                    (True, ALERT13)], server=(CLOUD, 23101), step=0.00003)
    row, _, path = judged(tmp_path, recs)
    assert (row["verdict"], row["reason"]) == ("blocked", "tls_failed"), row["detail"]
    assert row["detail"].startswith("TLS 1.3: after the client's Finished the server sent only 24 bytes")
    assert_same(path, [300, 900])
    recs = session([(False, HELLO13), (True, FLIGHT13), (False, NO_CERT13), (False, GET13, 0.02),
                    (True, ALERT13)], server=(CLOUD, 23101), step=0.00003)
    row, _, _ = judged(tmp_path, recs, name="late.pcap")
    assert (row["verdict"], row["reason"], row["detail"]) == ("ok", "", "")
