"""A capture begun after the ClientHello (the flow ``partial``) that holds the server's TLS flight
and the client's cleartext refusal of its certificate (unknown_ca…), the handshake never
completed: the handshake was aborted, as with the ClientHello seen (newcomer 35: judged ok/partial,
the checklist saying "verified" for the purpose). Real handshakes (Python's ssl in memory), the
capture's first packets (SYN, SYN-ACK, ACK, ClientHello) left out."""
from __future__ import annotations

import ssl

from test_protocols_tls import run_handshake
from test_tls_view_cut import _flights, _one, _session, _write

#: a TLS 1.x fatal alert record, unknown_ca (48), in cleartext
UNKNOWN_CA = bytes.fromhex("15030300020230")


def _midstream(tmp_path, version, client_alert=None, verify=True):
    cs, ss, err = run_handshake(tmp_path, version, "eu1.ksc.kaspersky.com", ["*.ksc.kaspersky.com"], verify=verify)
    c, s = _flights(cs), _flights(ss)
    alert = client_alert or next(r for r in c[1:] if r[0] == 21)
    parts = [("c", c[0])] + [("s", r) for r in s] + [("c", alert)]
    records = _session(parts)
    return _one(_write(tmp_path / "mid.pcap", records[4:]))     # (no SYN, SYN-ACK, ACK, ClientHello)


def test_tls12_refusal_after_a_missed_clienthello_is_blocked(tmp_path):
    r = _midstream(tmp_path, ssl.TLSVersion.TLSv1_2)
    assert r["partial"] and not r["tls_established"] and r["tls_alert"] == "client: unknown_ca (48)"
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_intercepted,partial")
    assert r["detail"].startswith("the client rejected the server's certificate (unknown_ca (48)) for "
                                  "*.ksc.kaspersky.com")
    assert "the handshake was aborted and never completed" in r["detail"]


def test_tls13_refusal_after_a_missed_clienthello_is_blocked(tmp_path):
    r = _midstream(tmp_path, ssl.TLSVersion.TLSv1_3, client_alert=UNKNOWN_CA, verify=False)
    assert r["partial"] and r["tls_version"] == "TLS 1.3" and r["tls_alert"] == "client: unknown_ca (48)"
    assert (r["verdict"], r["reason"]) == ("blocked", "tls_failed,partial")
    assert r["detail"].startswith("the client rejected the server's certificate (unknown_ca (48)): TLS 1.3 "
                                  "encrypts the certificate")


def test_a_midstream_flow_without_such_an_alert_stays_ok(tmp_path):
    """A clean close_notify-less end of a connection seen from its middle: ok, partial, as before."""
    cs, ss, err = run_handshake(tmp_path, ssl.TLSVersion.TLSv1_2, "eu1.ksc.kaspersky.com", ["*.ksc.kaspersky.com"])
    assert err is None
    c, s = _flights(cs), _flights(ss)
    parts = [("c", c[0])] + [("s", r) for r in s] + [("c", b"".join(c[1:]))]
    r = _one(_write(tmp_path / "ok.pcap", _session(parts)[4:]))
    assert r["partial"] and (r["verdict"], r["reason"]) == ("ok", "partial")
