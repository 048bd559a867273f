"""Session 58: the TLS findings of the real-stack break-it pass (s57 "real", openssl/curl/nftables in
network namespaces), crafted here with scapy and Python's ssl (no file of that pass is read).

- #4: a certificate for another name than the one asked, refused by the client, issued by no
  TLS-inspection product's CA, was ``tls_intercepted`` "exclude these names from inspection": an
  inspecting proxy mints one for the name asked, so another server answered (``tls_failed``, the
  advice where the name leads); from an inspection product's CA (or one named for inspection) it
  stays interception. An out-of-date certificate from a private CA: the advice adds the clock.
- #5: a reset 1 hop nearer than the same connection's SYN-ACK was "the server reset the
  connection" (3 hops needed), while a REJ from the same device is told from 1 hop.
- #6: a certificate seen in a server flight the client never acknowledged (a path-MTU black hole)
  was said refused "without saying so (a TLS-inspecting proxy's?)".
- #7: a server's protocol_version alert was advised as a proxy or TLS inspection.

Whole = chunked = tshark engine where the flows are compared."""
from __future__ import annotations

import shutil

import pytest
from scapy.layers.inet import TCP

from chunkcmp import assert_same, write
from pcapbuild import CLIENT_MAC, SERVER_MAC, eth, ip_of
from kscc_traffic.analyze import analyze_file
from kscc_traffic.report import OTHER_SERVER_FIX, VERSION_FIX, TableSummary, readiness
from kscc_traffic.rules import load_rules

RULES = load_rules()
SNI = "eu1.ksc.kaspersky.com"
MASK = "*.ksc.kaspersky.com"
AGENT = {False: "192.0.2.10", True: "2001:db8:a::10"}
CLOUD = {False: "198.51.100.10", True: "2001:db8:c::10"}
#: how the checklist's advice starts for one connection whose TCP handshake completed
OPEN = ("this connection reached the server on TCP 23100-23199 (the TCP handshake completed: the port is open, "
        "nothing to open in the firewall), then ")


def _conn(parts, v6=False, port=23101, server_ttl=63, close=True, t0=100.0):
    """(time, frame) records of one TCP connection from the agent to the cloud server's ``port``:
    handshake, ``parts`` ([(side 'c'/'s', bytes)], one segment each, acknowledged), then the
    client's FIN and the server's (``close``). The server's packets come with ``server_ttl``."""
    seq = {"c": 1000, "s": 5000}
    ends = {"c": (AGENT[v6], 50000), "s": (CLOUD[v6], port)}
    out, t = [], t0

    def seg(side, flags, data=b""):
        nonlocal t
        other = "s" if side == "c" else "c"
        (src, sp), (dst, dp) = ends[side], ends[other]
        ip = ip_of(src, dst)
        ttl = server_ttl if side == "s" else 64
        if v6:
            ip.hlim = ttl
        else:
            ip.ttl = ttl
        pkt = ip / TCP(sport=sp, dport=dp, flags=flags, seq=seq[side], ack=seq[other] if "A" in flags else 0) / data
        out.append((t, bytes(eth(pkt) if side == "c" else eth(pkt, src=SERVER_MAC, dst=CLIENT_MAC))))
        t += 0.001
        seq[side] += len(data) + (1 if "S" in flags or "F" in flags else 0)

    seg("c", "S")
    seg("s", "SA")
    seg("c", "A")
    for side, data in parts:
        seg(side, "PA", data)
    if close:
        seg("c", "FA")
        seg("s", "FA")
        seg("c", "A")
    return out


def _handshake(tmp_path, org, cn, names):
    """A real TLS 1.2 handshake (Python's ssl in memory) whose client, verifying the name
    eu1.ksc.kaspersky.com, refuses the server's certificate for ``names`` issued by ``O=org,CN=cn``:
    its parts for :func:`_conn` (the ClientHello, the server's records, the client's alert)."""
    pytest.importorskip("cryptography")
    import ssl
    from cryptography import x509
    from cryptography.x509.oid import NameOID
    from test_protocols_tls import run_handshake
    from test_tls_view_cut import _flights
    issuer = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                        x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cs, ss, err = run_handshake(tmp_path, ssl.TLSVersion.TLSv1_2, SNI, names, verify=True, issuer=issuer)
    assert err is not None
    c, s = _flights(cs), _flights(ss)
    return [("c", c[0])] + [("s", r) for r in s] + [("c", b"".join(c[1:]))]


def _engines_agree(path):
    """Whole = chunked (small chunks) = tshark engine (when installed); the whole-file flows."""
    flows = assert_same(path, [700, 2000])
    if shutil.which("tshark"):
        a = analyze_file(path, RULES).flows.sort_values("uid").reset_index(drop=True)
        b = analyze_file(path, RULES, engine="tshark").flows.sort_values("uid").reset_index(drop=True)
        for col in a.columns:
            assert a[col].tolist() == b[col].tolist(), col
    return flows


def _fix(flows, rule="agent_connection"):
    """The checklist's advice for ``rule``, the same from readiness() and the table's summary."""
    fixes = {chk.set_index("rule").loc[rule, "fix"]
             for chk in (readiness(flows, RULES), TableSummary.of(flows).readiness(RULES))}
    assert len(fixes) == 1, fixes
    return fixes.pop()


def _tls_row(flows):
    tcp = flows[flows["proto"] == "tcp"]
    assert len(tcp) == 1, tcp[["resp_p", "history"]]
    return tcp.iloc[0]


# --- #4: a certificate for another name from no inspection product's CA --------------------------

@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
def test_a_public_cas_certificate_for_another_name_is_another_server(tmp_path, v6):
    parts = _handshake(tmp_path, "DigiCert Inc", "DigiCert Global G2 TLS RSA SHA256 2020 CA1", ["www.example.com"])
    path = write(tmp_path, _conn(parts, v6=v6), name=f"pub{int(v6)}.pcap")
    r = _tls_row(_engines_agree(path))
    assert (r.verdict, r.reason, r.cert_names) == ("blocked", "tls_failed", "www.example.com")
    assert r.detail == (
        f"certificate for www.example.com presented for {SNI}, issued by CN=DigiCert Global G2 TLS RSA SHA256 2020 "
        "CA1,O=DigiCert Inc (a public CA, DigiCert, not a TLS-inspection product): the agent reached another "
        "server than the one it asked for (a wrong DNS answer or hosts-file entry, a NAT or port forward to another "
        "host, a load balancer's or web server's default certificate, a captive portal); a TLS-inspecting proxy "
        "presents a certificate for the name asked, made by its own CA; the handshake was aborted (client: "
        "unknown_ca (48)) and never completed: the agent cannot connect this way")
    fix = _fix(analyze_file(path, RULES).flows)
    assert fix == OPEN + OTHER_SERVER_FIX.format(mask=MASK)
    assert "exclude" not in fix and "check what the name resolves to on the agent" in fix


def test_a_private_cas_certificate_for_another_name_is_most_likely_another_server(tmp_path):
    """The lab's case (break-it real s57 #4: a CA of its own, not in the public list): hedged."""
    parts = _handshake(tmp_path, "S57 Trust Services", "S57 Public TLS CA", ["www.example.com"])
    path = write(tmp_path, _conn(parts), name="private.pcap")
    r = _tls_row(_engines_agree(path))
    assert (r.verdict, r.reason) == ("blocked", "tls_failed")
    assert r.detail.startswith(
        f"certificate for www.example.com presented for {SNI}, issued by CN=S57 Public TLS CA,O=S57 Trust Services (a "
        "CA neither public nor a TLS-inspection product's): most likely the agent reached another server than the "
        "one it asked for (a wrong DNS answer or hosts-file entry, a NAT or port forward to another host, a load "
        "balancer's or web server's default certificate), or a device on the path answered with its own "
        "certificate (a captive portal, a filter's block page); a TLS-inspecting proxy presents a certificate "
        "for the name asked"), r.detail
    assert _fix(analyze_file(path, RULES).flows) == OPEN + OTHER_SERVER_FIX.format(mask=MASK)


@pytest.mark.parametrize("org,cn,product", [
    ("Fortinet", "FortiGate CA", "a Fortinet FortiGate"),
    ("Example Corp Security Gateway", "Corp Inspection CA", "a TLS-inspecting proxy or firewall (as its CA's name says)"),
])
def test_an_inspection_cas_certificate_for_another_name_stays_interception(tmp_path, org, cn, product):
    """An inspection product's CA (or one its owner named for inspection: "Corp Inspection CA", the
    samples' intercepted_tls12.pcap) on a certificate for another name: its own, a block page's."""
    parts = _handshake(tmp_path, org, cn, ["proxy.corp.example"])
    path = write(tmp_path, _conn(parts), name="icpt.pcap")
    r = _tls_row(_engines_agree(path))
    assert (r.verdict, r.reason) == ("blocked", "tls_intercepted")
    assert r.detail.startswith(f"certificate for proxy.corp.example presented for {SNI}, issued by CN={cn},O={org}: "
                               f"from {product} (TLS inspection); the handshake was aborted"), r.detail
    fix = _fix(analyze_file(path, RULES).flows)
    assert "exclude these names from inspection" in fix and OTHER_SERVER_FIX.format(mask=MASK) not in fix


def test_the_other_servers_issuer_from_the_packet_stays_escaped(tmp_path):
    parts = _handshake(tmp_path, "DigiCert Inc\x1b[2J", "DigiCert Root\x07", ["www.example.com"])
    path = write(tmp_path, _conn(parts), name="esc.pcap")
    r = _tls_row(analyze_file(path, RULES).flows)
    assert r.reason == "tls_failed" and "another server than the one it asked for" in r.detail
    assert "\x1b" not in r.detail and "\x07" not in r.detail, r.detail
    assert "O=DigiCert Inc\\1B[2J" in r.detail and "CN=DigiCert Root\\07" in r.detail, r.detail   # (RFC 4514)


def _alert(level: int, code: int) -> bytes:
    return bytes([0x15, 0x03, 0x03, 0x00, 0x02, level, code])


def test_an_out_of_date_certificate_from_a_private_ca_advises_the_clock(tmp_path):
    """Break-it real s57 #4 (tls_expired_12): the detail said "out of date for the client (its clock
    wrong?)", the advice only "exclude these names from inspection"."""
    parts = _handshake(tmp_path, "S57 Trust Services", "S57 Public TLS CA", [SNI])
    parts[-1] = ("c", _alert(2, 45))        # (certificate_expired, as openssl sends it)
    path = write(tmp_path, _conn(parts), name="expired.pcap")
    flows = _engines_agree(path)
    r = _tls_row(flows)
    assert (r.verdict, r.reason) == ("blocked", "tls_intercepted")
    assert "(certificate_expired (45))" in r.detail and ": out of date for the client (its clock wrong?)" in r.detail
    fix = _fix(analyze_file(path, RULES).flows)
    # (every one out of date: the clock first, then the certificate; newcomer s63 #6 had the
    # inspection first, the clock after it)
    assert fix.endswith(
        "then the TLS handshake was aborted: the client refused the server's certificate as out of date (see each "
        "flow's detail): check the agent's system time and time synchronisation first (a wrong clock makes every "
        "certificate out of date); else the certificate, from a CA that is no public one, is a TLS-inspecting "
        f"proxy's: renew the inspecting device's CA or certificate, or exclude these names from inspection ({MASK})"), fix


# --- #7: the server's side accepts none of the TLS versions offered -------------------------------

@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
def test_a_servers_protocol_version_alert_is_advised_as_the_versions(tmp_path, v6):
    from test_newcomer30_findings import _hello
    path = write(tmp_path, _conn([("c", _hello(SNI.encode())), ("s", _alert(2, 70))], v6=v6), name=f"ver{int(v6)}.pcap")
    r = _tls_row(_engines_agree(path))
    assert (r.verdict, r.reason) == ("blocked", "tls_failed")
    assert r.detail == ("TLS handshake aborted: server: protocol_version (70): the server's side accepts none of the "
                        "TLS versions the client offered")
    fix = _fix(analyze_file(path, RULES).flows)
    assert fix == OPEN + VERSION_FIX.format(mask=MASK)
    assert "TLS 1.2 and 1.3 enabled" in fix and "TLS inspection or an application-aware firewall" not in fix


# --- #5: a reset 1 hop nearer than the connection's own SYN-ACK ------------------------------------

@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
@pytest.mark.parametrize("rst_ttl", [51, 52])
def test_a_reset_from_one_or_two_hops_nearer_than_the_synack_is_a_devices(tmp_path, monkeypatch, v6, rst_ttl):
    """Break-it real s57 #5 (an IPS resetting after the ClientHello, SYN-ACK TTL 63, the reset 64):
    "the server reset the connection"; the REJ from that device said "1 hop nearer … a firewall"."""
    from test_reset_ttl import WHERE, _check, _injected
    path = write(tmp_path, _injected(v6=v6, rst_ttl=rst_ttl, server_answers=False), name=f"near{rst_ttl}{int(v6)}.pcap")
    field = "hop limit" if v6 else "TTL"
    hint = f"the reset in the server's name came with {field} {rst_ttl}, its SYN-ACK with 50: {WHERE}, not by the server"
    r = _tls_row(analyze_file(path, RULES).flows)
    assert (r.verdict, r.reason, r.conn_state) == ("blocked", "tls_failed", "RSTR")
    assert r.detail == ("TLS handshake aborted: a reset in the server's name ended the connection (RST, RSTR) 0.01 s "
                        f"after the ClientHello, before the server sent a byte; {hint}")
    _check(path, tmp_path, monkeypatch, hint)


def test_a_reset_one_hop_farther_than_the_synack_is_still_the_servers(tmp_path, monkeypatch):
    """Farther (a longer way back) stays within RESET_TTL_HOPS: the server's own."""
    from test_reset_ttl import _check, _injected
    path = write(tmp_path, _injected(rst_ttl=49, server_answers=False), name="far.pcap")
    assert "the server reset the connection (RST, RSTR)" in _tls_row(analyze_file(path, RULES).flows).detail
    _check(path, tmp_path, monkeypatch, "")


# --- #6: a certificate in a server flight the client never acknowledged ---------------------------

@pytest.mark.parametrize("v6", [False, True], ids=["v4", "v6"])
def test_a_certificate_in_a_flight_never_acknowledged_is_no_silent_refusal(tmp_path, v6):
    """Seen where the server is (a router's server-side interface): its flight's first full-size
    segment, holding the certificate, sent again and again, never acknowledged, the smaller later
    one acknowledged (a duplicate acknowledgement); the client closes 12 s later. The client never
    had the certificate: no "how an agent refuses a certificate … (a TLS-inspecting proxy's?)"."""
    # (60 more names: a flight larger than a full-size segment, as a real chain is)
    parts = _handshake(tmp_path, "S57 Trust Services", "S57 Public TLS CA",
                       [SNI] + [f"n{k}.example.com" for k in range(60)])
    hello, flight = parts[0][1], b"".join(d for side, d in parts[1:] if side == "s")
    big = 1200
    assert len(flight) > big + 100, len(flight)
    recs = _conn([("c", hello)], v6=v6, close=False)
    c, s, t = 1001 + len(hello), 5001, 101.0

    def dn(at, data, seq):
        pkt = ip_of(CLOUD[v6], AGENT[v6]) / TCP(sport=23101, dport=50000, flags="PA", seq=seq, ack=c) / data
        recs.append((at, bytes(eth(pkt, src=SERVER_MAC, dst=CLIENT_MAC))))

    def up(at, flags):
        recs.append((at, bytes(eth(ip_of(AGENT[v6], CLOUD[v6]) / TCP(sport=50000, dport=23101, flags=flags,
                                                                             seq=c, ack=s)))))
    dn(t, flight[:big], s)
    dn(t + .001, flight[big:], s + big)
    up(t + .002, "A")                         # (its old point again: the big one never arrived)
    for n in range(5):
        dn(t + .2 * 2 ** n, flight[:big], s)
    up(t + 12, "FA")
    path = write(tmp_path, recs, name=f"mtu{int(v6)}.pcap")
    r = _tls_row(_engines_agree(path))
    assert (r.verdict, r.reason) == ("blocked", "tls_failed")
    assert r.detail.startswith("TLS handshake aborted: the client closed the connection (FIN, "), r.detail
    assert f"after the server's last flight (its certificate, for {SNI} issued by CN=S57 Public TLS CA,O=S57 Trust " \
           "Services, seen), sending nothing after it, no alert either; the server's 1200 bytes from offset 1 were " \
           "never acknowledged though later bytes arrived: full-size segments lost, a path-MTU black hole?" in r.detail, \
        r.detail
    assert "refuses a certificate" not in r.detail and "TLS-inspecting proxy" not in r.detail
    assert "path-MTU black hole" in _fix(analyze_file(path, RULES).flows)


@pytest.mark.parametrize("sni", ["", SNI])
def test_no_sni_and_a_private_cas_certificate_for_another_name_says_both(sni):
    """Without an SNI (the name asked is the one resolved), a private CA's certificate for another
    name: another server, most likely, and the missing SNI said too (a server hosting several
    names answers with its default one); with one, not said."""
    from kscc_traffic.classify import NO_SNI_MEANS, _interception
    row = {"sni": sni, "dns_name": SNI, "cert_issuer": "CN=Corp Issuing CA,O=Corp", "service": "ssl",
           "tls_alert": "client: bad_certificate (42)", "tls_established": False, "conn_state": "SF", "partial": False}
    verdict, reason, detail = _interception(row, ["default.example"], "", False)
    assert (verdict, reason) == ("blocked", "tls_failed")
    assert detail.startswith(f"certificate for default.example presented for {SNI}{'' if sni else ' (from DNS)'}, "
                             "issued by CN=Corp Issuing CA,O=Corp (a CA neither public nor a TLS-inspection "
                             "product's): most likely the agent reached another server"), detail
    assert (f"; the ClientHello carried no SNI (server name): {NO_SNI_MEANS}; the handshake was aborted" in detail) \
        == (not sni), detail
