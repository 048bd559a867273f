"""Session 58 real-stack pass #2: a hosts-file entry sent the agent (curl, OpenSSL backend) to
another TLS server, whose certificate is for www.example.com from a private CA that is no
inspection product's. curl completes the handshake, then checks the name itself and drops the
session: an encrypted alert right after its Finished, no request, the connection closed. The TLS
1.2 flow was ``unexpected``/``tls_intercepted`` advised as TLS inspection, the TLS 1.3 one ``ok``.

Crafted here with Python's ssl (in memory: the client accepts the certificate in the handshake,
then sends its close_notify at once, as curl sends its alert) and scapy; no file of that pass is
read. Whole = chunked = tshark engine."""
from __future__ import annotations

import ssl

import pytest
from scapy.layers.inet import TCP

from chunkcmp import write
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth, ip_of
from kscc_traffic.classify import CLIENT_QUIT, OTHER_SERVER, TLS13_HIDDEN
from kscc_traffic.report import OTHER_SERVER_FIX, readiness
from kscc_traffic.rules import load_rules

RULES = load_rules()
SNI = "eu1.ksc.kaspersky.com"
AGENT, CLOUD = "192.0.2.10", "198.51.100.12"


def _session(tmp_path, version, names=("www.example.com",), use=False):
    """A real TLS handshake (Python's ssl in memory) for SNI eu1.ksc.kaspersky.com, the server's
    certificate for ``names`` from "CN=S57 Public TLS CA,O=S57 Trust Services" (a private CA),
    accepted by the client (it verifies nothing in the handshake); then, with ``use``, a request
    and its answer; then the client's close_notify (an encrypted alert). Returns the flights in
    order, [(side 'c'/'s', bytes)], each as the BIO gave it."""
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    from test_protocols_tls import make_cert
    issuer = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "S57 Trust Services"),
                        x509.NameAttribute(NameOID.COMMON_NAME, "S57 Public TLS CA")])
    _, cp, kp = make_cert(tmp_path, list(names), issuer=issuer)
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(cp, kp)
    sctx.minimum_version = sctx.maximum_version = version
    cctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cctx.maximum_version = version
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_NONE
    cin, cout, sin, sout = (ssl.MemoryBIO() for _ in range(4))
    client = cctx.wrap_bio(cin, cout, server_hostname=SNI)
    server = sctx.wrap_bio(sin, sout, server_side=True)
    out = []

    def move(side):
        src, dst = (cout, sin) if side == "c" else (sout, cin)
        chunk = src.read()
        if chunk:
            out.append((side, chunk))
            dst.write(chunk)

    cdone = sdone = False
    for _ in range(10):
        if not cdone:
            try:
                client.do_handshake()
                cdone = True
            except ssl.SSLWantReadError:
                pass
        move("c")
        if not sdone:
            try:
                server.do_handshake()
                sdone = True
            except ssl.SSLWantReadError:
                pass
        move("s")
        if cdone and sdone:
            break
    assert cdone and sdone
    if use:
        client.write(b"GET / HTTP/1.1\r\nHost: eu1.ksc.kaspersky.com\r\n\r\n")
        move("c")
        server.read()
        server.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        move("s")
        client.read()
    try:
        client.unwrap()
    except ssl.SSLWantReadError:
        pass
    move("c")
    return out


def _conn(parts, wait=0.0, reset=True):
    """(time, frame) records of one TCP connection from the agent to TCP 23112: handshake,
    ``parts`` (one segment each), ``wait`` seconds, then the client's FIN and its RST (``reset``)
    or the server's FIN and the client's ACK."""
    seq = {"c": 1000, "s": 5000}
    ends = {"c": (AGENT, 50930), "s": (CLOUD, 23112)}
    out, t = [], 100.0

    def seg(side, flags, data=b"", dt=0.0005):
        nonlocal t
        other = "s" if side == "c" else "c"
        (src, sp), (dst, dp) = ends[side], ends[other]
        ip = ip_of(src, dst)
        ip.ttl = 64
        pkt = ip / TCP(sport=sp, dport=dp, flags=flags, seq=seq[side], ack=seq[other] if "A" in flags else 0) / data
        out.append((t, bytes(eth(pkt) if side == "c" else eth(pkt, src=SERVER_MAC, dst=CLIENT_MAC))))
        t += dt
        seq[side] += len(data) + (1 if "S" in flags or "F" in flags else 0)

    seg("c", "S")
    seg("s", "SA")
    seg("c", "A")
    for side, data in parts:
        seg(side, "PA", data)
    t += wait
    seg("c", "FA")
    if reset:
        seg("c", "R")
    else:
        seg("s", "FA")
        seg("c", "A")
    return out


def _row(path):
    """The connection's row, whole = chunked = tshark engine (when installed)."""
    from test_breakit_s58_tls import _engines_agree
    flows = _engines_agree(path)
    tcp = flows[flows["proto"] == "tcp"]
    assert len(tcp) == 1
    return tcp.iloc[0], flows


@pytest.mark.parametrize("reset", [True, False], ids=["rst", "fin"])
def test_tls12_another_names_certificate_dropped_after_the_handshake_is_another_server(tmp_path, reset):
    """TLS 1.2: the client's Finished, the server's, the client's encrypted alert, the close: the
    client refused the certificate after the handshake; from no inspection product's CA and for
    another name: another server (tls_failed, advised where the name leads), not TLS inspection."""
    parts = _session(tmp_path, ssl.TLSVersion.TLSv1_2)
    r, flows = _row(write(tmp_path, _conn(parts, reset=reset), name="q12.pcap"))
    assert (r.tls_version, r.cert_names, bool(r.tls_established)) == ("TLS 1.2", "www.example.com", True)
    assert (r.verdict, r.reason) == ("blocked", "tls_failed"), r.detail
    assert r.detail.startswith(f"certificate for www.example.com presented for {SNI}, issued by CN=S57 Public TLS "
                               f"CA,O=S57 Trust Services (a CA neither public nor a TLS-inspection product's): most "
                               f"likely {OTHER_SERVER}"), r.detail
    assert f"; {CLIENT_QUIT}: after its Finished it sent only 31 bytes, an encrypted alert, no request, " \
           "and the connection closed (" in r.detail, r.detail
    assert r.detail.endswith("the agent cannot use this connection"), r.detail
    fix = readiness(flows, RULES).set_index("rule").loc["agent_connection", "fix"]
    assert OTHER_SERVER_FIX.format(mask="*.ksc.kaspersky.com") in fix and "exclude" not in fix, fix


def test_tls12_another_names_certificate_used_stays_interception(tmp_path):
    """The contrast: the same certificate accepted and the session used (a request, an answer)
    stays unexpected/tls_intercepted (the connection works, whatever presented it)."""
    parts = _session(tmp_path, ssl.TLSVersion.TLSv1_2, use=True)
    r, _ = _row(write(tmp_path, _conn(parts), name="u12.pcap"))
    assert (r.verdict, r.reason) == ("unexpected", "tls_intercepted"), r.detail
    assert r.detail == f"certificate for www.example.com presented for {SNI}"


def test_tls12_another_names_certificate_closed_late_stays_interception(tmp_path):
    """Nor a session closed long after the handshake (an idle connection's close_notify)."""
    parts = _session(tmp_path, ssl.TLSVersion.TLSv1_2)
    parts = parts[:-1]
    recs = _conn(parts, reset=False)
    r, _ = _row(write(tmp_path, recs, name="i12.pcap"))
    assert (r.verdict, r.reason) == ("unexpected", "tls_intercepted"), r.detail


def test_tls13_a_session_dropped_right_after_the_handshake_is_refused(tmp_path):
    """TLS 1.3: the client's Finished, then only an alert's size (24 bytes) and its reset, no
    request: the session refused after the handshake (the certificate hidden: said so, hedged
    with a health check), not ok."""
    parts = _session(tmp_path, ssl.TLSVersion.TLSv1_3)
    r, _ = _row(write(tmp_path, _conn(parts, reset=True), name="q13.pcap"))
    assert (r.tls_version, bool(r.tls_established)) == ("TLS 1.3", True)
    assert (r.verdict, r.reason) == ("blocked", "tls_failed"), r.detail
    assert r.detail.startswith(f"TLS 1.3: {CLIENT_QUIT}: after its Finished it sent only 24 bytes, an encrypted "
                               "alert, no request, and the connection closed ("), r.detail
    assert "or it only tested the connection (a health check)" in r.detail and TLS13_HIDDEN in r.detail


@pytest.mark.parametrize("use,wait,reset", [(True, 0.0, True), (False, 10.0, True), (False, 0.0, False)],
                         ids=["used", "idle", "graceful"])
def test_tls13_a_session_used_or_closed_late_stays_ok(tmp_path, use, wait, reset):
    """The contrast: a request and its answer before the close, the close_notify of a connection
    left idle 10 s, or one sent at once and the connection closed gracefully (FINs both ways: a
    health check's, an alert's size too in TLS 1.3): ok, as before."""
    parts = _session(tmp_path, ssl.TLSVersion.TLSv1_3, use=use)
    if not reset:
        recs = _conn(parts, reset=False)
    elif not use:
        parts, alert = parts[:-1], parts[-1]
        recs = _conn(parts, wait=wait)
        # (the alert sent after the wait, just before the close)
        r0 = _conn(parts + [alert], wait=0.0)
        recs = recs[:len(parts) + 3] + [(t + wait, f) for t, f in r0[len(parts) + 3:]]
    else:
        recs = _conn(parts)
    r, _ = _row(write(tmp_path, recs, name=f"ok13_{int(use)}{int(reset)}.pcap"))
    assert (r.verdict, r.reason) == ("ok", ""), r.detail
