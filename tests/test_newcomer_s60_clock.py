"""Newcomer pass s60, finding #9: a certificate_expired the capture's own clock explains.

A client's certificate_expired (45) on a public CA's certificate for the name asked said "the
agent's system time is probably wrong …, or the certificate was out of date" even where the
capture showed the agent's clock 5 years past the certificate's end. The server certificate's
validity (:func:`kscc_traffic.protocols.tls.certificate_validity`) is now compared with the
capture's clock at the flow's start (the internal ``cert_dated`` column) and the detail says
which: outside the validity, the capturing device's clock; inside it, the agent's own clock (if
captured elsewhere) or another certificate of the chain.
"""
from __future__ import annotations

import calendar
import datetime

import pytest

from chunkcmp import assert_same
from pcapbuild import pcap_bytes

from kscc_traffic.protocols import tls

pytest.importorskip("cryptography")


def _der(not_before: datetime.datetime, not_after: datetime.datetime) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "eu1.ksc.kaspersky.com")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(7).not_valid_before(not_before).not_valid_after(not_after).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


def test_certificate_validity_reads_utctime_and_generalizedtime():
    nb, na = datetime.datetime(2025, 8, 24, 1, 2, 3), datetime.datetime(2051, 1, 1)   # (2050+: GeneralizedTime)
    assert tls.certificate_validity(_der(nb, na)) == (calendar.timegm(nb.timetuple()), calendar.timegm(na.timetuple()))
    assert tls.certificate_validity(_der(datetime.datetime(1999, 12, 31), datetime.datetime(2000, 1, 2))) == (
        946598400, 946771200)                                            # (UTCTime 99: 1999)
    assert tls.certificate_validity(b"\x30\x03\x02\x01\x00") is None
    assert tls.certificate_validity(b"") is None


def _expired(tmp_path, t0: float):
    from test_breakit_s54 import _refused_flights, _tcp
    hello, server, _ = _refused_flights(tmp_path, "DigiCert Inc", "DigiCert Global G2 TLS RSA SHA256 2020 CA1")
    alert = bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 45])
    path = tmp_path / f"expired{int(t0)}.pcap"
    path.write_bytes(pcap_bytes(_tcp([("c", hello)] + [("s", r) for r in server] + [("c", alert)], t0=t0)))
    flows = assert_same(path, [300])               # (the same in small chunks)
    row = flows.iloc[0]
    assert (row.verdict, row.reason) == ("blocked", "tls_failed")
    return row.detail


def _day(s: float) -> str:
    return datetime.datetime.fromtimestamp(s, datetime.timezone.utc).strftime("%Y-%m-%d")


def test_a_capture_clock_past_the_certificates_end_names_the_clock(tmp_path):
    import time
    # (the test handshake's certificate: valid from a day ago for 30 days; the capture 5 years on)
    late = time.time() + 5 * 365 * 86400
    detail = _expired(tmp_path, late)
    assert f"the capture's clock read {_day(late)}, after its end (valid " in detail
    assert ("): the clock of the device that captured it, the agent's if captured on it, is wrong most likely (check "
            "the device's clock and time synchronisation)") in detail
    assert "probably wrong" not in detail


def test_a_capture_clock_within_the_validity_points_at_the_agents_own(tmp_path):
    import time
    now = time.time()
    detail = _expired(tmp_path, now)
    assert f"by the capture's clock ({_day(now)}) the certificate was valid (" in detail
    assert ("if captured on another device, the agent's own clock is wrong most likely (check it and its time "
            "synchronisation); if captured on the agent, another certificate of its chain was out of date") in detail
