"""Newcomer 20 F2, F4: verdicts that read a normal close or a closed window as a failure, or
the other way round (see each test)."""
from __future__ import annotations

import pytest

from chunkcmp import assert_same, whole, write
from test_breakit16_findings import ALERT13, FINISHED13, NO_CERT13, RULES, _tls13
from test_classify_fast import assert_same as assert_same_as_reference

#: the client's flight after a CertificateRequest packed in one record (BoringSSL, NSS): the
#: empty Certificate (8 bytes) and the Finished (36), SHA-256: 61 bytes; and a Finished alone
#: under TLS_AES_256_GCM_SHA384 (69 bytes)
PACKED13 = b"\x14\x03\x03\x00\x01\x01" + b"\x17\x03\x03\x00\x3d" + bytes(61)
FINISHED13_384 = b"\x14\x03\x03\x00\x01\x01" + b"\x17\x03\x03\x00\x45" + bytes(69)
DATA13 = b"\x17\x03\x03\x00\x15" + bytes(21)          # the client's 4-byte request ("PING")


def _one(path):
    flows, _ = whole(path)
    (r,) = flows.to_dict("records")
    return flows, r


REFUSAL = "TLS 1.3: after the client's Finished the server sent only 24 bytes, an encrypted alert's size"


@pytest.mark.parametrize("after, fin, gap", [
    ([(True, ALERT13)], NO_CERT13, 0.0),                       # certificate_required at once
    ([(True, ALERT13)], PACKED13, 0.0),                        # the same, one record for both
    ([(True, ALERT13)], NO_CERT13, 0.5),                       # 0.5 s: under the 1 s floor
    ([(False, DATA13), (True, ALERT13)], NO_CERT13, 0.0),      # data sent with the Finished, refused
], ids=["empty-certificate", "packed-record", "half-a-second", "data-with-finished"])
def test_a_refusal_after_a_certificate_request_stays_tls_failed(tmp_path, after, fin, gap):
    """The server asked for a client certificate (the client's flight holds its Certificate
    before the Finished), sent an alert's size within max(3 round trips, 1 s) of the Finished
    and closed: refused, whole and in chunks."""
    path = write(tmp_path, _tls13(after, fin=fin, gap=gap))
    flows, r = _one(path)
    assert (r["tls_version"], r["verdict"], r["reason"]) == ("TLS 1.3", "blocked", "tls_failed")
    assert r["detail"].startswith(REFUSAL)
    assert_same(path, [300, 900])
    assert_same_as_reference(flows, RULES)


@pytest.mark.parametrize("after, fin, gap", [
    ([(True, ALERT13)], FINISHED13, 0.0),                      # 50704: close_notify at once, no request
    ([(True, ALERT13)], FINISHED13_384, 0.0),                  # the same, SHA-384 suite
    ([(False, DATA13), (True, ALERT13)], FINISHED13, 0.0),     # 50706: "PING", "OK", server closes
    ([(True, ALERT13)], NO_CERT13, 2.0),                       # a close_notify 2 s later: idle
    ([(False, DATA13), (True, ALERT13)], NO_CERT13, 0.02),     # data a round trip later, answered
], ids=["close-at-once", "close-at-once-sha384", "two-byte-answer", "two-seconds", "answered"])
def test_a_normal_close_after_the_handshake_is_ok(tmp_path, after, fin, gap):
    """Newcomer 20 F4: the server's 24 bytes after the client's Finished, then its close, were
    read as a refusal whatever came before: a close_notify from a server that asked for no
    certificate (nothing of the client's to refuse), a 2-byte answer to the client's request,
    an idle close seconds later, an answer to data the client sent a round trip after its
    Finished (which a refusal of the Finished cannot have read) are normal closes."""
    path = write(tmp_path, _tls13(after, fin=fin, gap=gap))
    flows, r = _one(path)
    assert (r["tls_version"], r["tls_established"], r["verdict"], r["reason"]) == ("TLS 1.3", True, "ok", ""), \
        r["detail"]
    assert_same(path, [300, 900])


@pytest.mark.parametrize("after, fin, want", [
    ([(True, ALERT13)], NO_CERT13, "tls_failed"),                   # t7b 50711: refused, the client closes
    ([(True, ALERT13)], FINISHED13, ""),                            # no certificate asked for
    ([(False, ALERT13), (True, ALERT13)], NO_CERT13, ""),           # mTLS health check: close_notify both ways
    ([(True, ALERT13), (False, ALERT13)], NO_CERT13, ""),           # the client answers a close_notify
], ids=["refused", "no-request", "health-check", "close-notify-answered"])
def test_a_refusal_the_client_closes_first(tmp_path, after, fin, want):
    """Newcomer 20 F4 (t7b 50711): the same refusal, the client's FIN first (it read the alert and
    closed; the server's FIN crossed it: who closes first is a race) is tls_failed too, when the
    client sent nothing after its flight: a client ending a session gracefully sends its own
    close_notify (an alert's size), a client reading a fatal alert none."""
    path = write(tmp_path, _tls13(after, closer_server=False, fin=fin))
    flows, r = _one(path)
    assert (r["tls_version"], r["reason"]) == ("TLS 1.3", want), r["detail"]
    if want:
        assert r["detail"].startswith(REFUSAL)
    assert_same(path, [300, 900])
    assert_same_as_reference(flows, RULES)


# ---- F2: the zero-window exception of the stall rule

from test_stalled_connections import REC, _dn, _opened, _up  # noqa: E402

STALLED = "the connection stalled: the responder acknowledged none of the originator's last bytes, sent again, in the "


def _retried(tail):
    """After the request and its answer, the client sends a record 5 times (0.3, 0.6, 1.2, 2.4 s
    apart) that the server never acknowledges; ``tail(records, client seq, server seq, t)`` adds
    the server's packets (t: the first sending)."""
    recs, c, s, t = _opened()
    t += 0.5
    for k, dt in enumerate((0, 0.3, 0.6, 1.2, 2.4)):
        t += dt
        recs.append(_up(t, REC, flags="PA", seq=c, ack=s))
    tail(recs, c, s, t - 4.5)
    return sorted(recs, key=lambda r: r[0])


def _dup_ack(window):
    return lambda recs, c, s, t: recs.append(_dn(t + 7.5, flags="A", seq=s, ack=c, window=window))


def _own_data_again(window):
    """The server sends 300 bytes of its own just after the client's record, acknowledging none
    of it, then sends them again 4 times though the client acknowledges each (those
    acknowledgements lost too)."""
    def tail(recs, c, s, t):
        for dt in (0.01, 0.8, 1.4, 2.6, 5.0):
            recs.append(_dn(t + dt, b"S" * 300, flags="PA", seq=s, ack=c, window=window))
            recs.append(_up(t + dt + 0.001, flags="A", seq=c + len(REC), ack=s + 300))
    return tail


def _partly_taken(recs, c, s, t):
    recs.append(_dn(t + 7.5, flags="A", seq=s, ack=c + 20, window=1000))


@pytest.mark.parametrize("tail, want", [
    (_dup_ack(64240), "blocked 7.5"),      # a duplicate ACK late, window open: takes nothing
    (_dup_ack(0), "ok"),                   # the same with its window closed: a zero-window answer
    (_own_data_again(64240), "blocked 5.0"),  # its own data again, never the client's taken
    (_own_data_again(0), "ok"),            # the same with its window closed: the path works
    (_partly_taken, "ok"),                 # takes 20 of the bytes late: the path works
], ids=["dup-ack-open-window", "dup-ack-zero-window", "own-data-open-window", "own-data-zero-window",
        "partly-taken"])
def test_the_silent_side_answering_is_no_stall_only_with_its_window_closed(tmp_path, tail, want):
    """Newcomer 20 F2: the stall rule's exception (the silent side's later packets: ACKs to
    zero-window probes) took any later packet of the silent side: a duplicate ACK with its
    window open, or its own data sent again with an acknowledgement stuck before the client's
    bytes (the client -> server direction broken), read ``ok``. The exception now needs a zero
    window or a new acknowledgement; whole = chunked."""
    path = write(tmp_path, _retried(tail))
    flows, r = _one(path)
    assert r["verdict"] == want.split()[0], r["detail"]
    if want != "ok":
        assert r["reason"] == "no_answer"
        assert r["detail"].startswith(STALLED + f"{want.split()[1]} s after their first sending (a firewall")
    assert_same(path, [300, 900])
    assert_same_as_reference(flows, RULES)
