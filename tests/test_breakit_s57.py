"""Session 57: leftovers of the s56 notes (public CA refused with no name asked, …)."""
import pytest


def _ip_literal_refusal(tmp_path, org, cn, code):
    """A TLS 1.2 flow to 203.0.113.10:23101 whose ClientHello's SNI is the address itself (no name
    asked, no DNS in the capture), the server's flight with a certificate issued by ``org``/``cn``,
    and the client's fatal alert ``code``; its one flow row."""
    pytest.importorskip("cryptography")
    from pcapbuild import pcap_bytes
    from test_breakit_s54 import _refused_flights, _tcp
    from test_newcomer30_findings import _hello

    from kscc_traffic import analyze_file
    _, server, _ = _refused_flights(tmp_path, org, cn)
    alert = bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, code])
    path = tmp_path / f"ip_sni_{code}.pcap"
    path.write_bytes(pcap_bytes(_tcp([("c", _hello(b"203.0.113.10"))] + [("s", r) for r in server] + [("c", alert)])))
    return analyze_file(path).flows.iloc[0]


@pytest.mark.parametrize("code,word", [(42, "bad_certificate"), (43, "unsupported_certificate"),
                                       (46, "certificate_unknown"), (48, "unknown_ca")])
def test_a_public_cas_certificate_refused_with_no_name_asked_is_no_proxys(tmp_path, code, word):
    """s56 note: with an address in the SNI (no name asked) a DigiCert certificate refused as
    unknown_ca (or bad/unsupported/unknown certificate) was ``tls_intercepted`` "a TLS-inspecting
    proxy whose CA the client does not trust?": a proxy re-signs with its own CA, not a public one;
    told as with a name asked, the device's root certificates."""
    row = _ip_literal_refusal(tmp_path, "DigiCert Inc", "DigiCert Global G2 TLS RSA SHA256 2020 CA1", code)
    assert (row.verdict, row.reason) == ("blocked", "tls_failed"), row.detail
    assert f"({word} ({code}))" in row.detail, row.detail
    assert "(a public CA, DigiCert, not a TLS-inspection product)" in row.detail, row.detail
    assert "does not trust DigiCert's root" in row.detail, row.detail
    assert "TLS-inspecting proxy whose CA" not in row.detail


def test_a_private_cas_certificate_refused_with_no_name_asked_is_still_a_proxys(tmp_path):
    """The contrast: the same refusal of a certificate from a CA that is no public one stays
    ``tls_intercepted``."""
    row = _ip_literal_refusal(tmp_path, "Example Corp", "Example Corp Issuing CA", 48)
    assert (row.verdict, row.reason) == ("blocked", "tls_intercepted"), row.detail
    assert "a TLS-inspecting proxy whose CA the client does not trust?" in row.detail, row.detail
