"""A proxy's 407 answered on ANOTHER connection: the proxy closes after its ``407 Proxy
Authentication Required`` (``Connection: close``), the agent opens a new connection, sends
CONNECT with Proxy-Authorization, gets 200 and its TLS works (NTLM/Negotiate take 2-3 such
connections). The 407 is an authentication round (ok, its detail naming the retry), not a
refusal; a 407 with no accepted retry within AUTH_RETRY_S stays blocked/rejected. Whole-file,
chunked (the retry leaving with a later batch too) and readiness agree."""
from __future__ import annotations

import pandas as pd
import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether

import test_proxy_connect as pc
from chunkcmp import assert_same, chunked
from kscc_traffic import analyze
from kscc_traffic.chunked import _AuthRounds
from kscc_traffic.classify import AUTH_RETRY_S
from kscc_traffic.report import readiness
from test_classify_fast import assert_same as assert_same_as_reference
from test_proxy_connect import OK_200, RULES, TARGET, _connect, _records, _tls, _write

CHALLENGE = ("s", b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: NTLM\r\n"
                  b"Connection: close\r\nContent-Length: 0\r\n\r\n")
#: (the reason phrase of CHALLENGE quoted after the code)
REFUSED = "the proxy 10.0.0.1:3128 answered 407 \"Proxy Authentication Required\" to CONNECT eu1.ksc.kaspersky.com:23101"


def _with_auth(target=TARGET):
    return ("c", f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: NTLM TlRMTVNTUAAB\r\n\r\n"
            .encode())


def _tcp(flows):
    return flows[flows["proto"] == "tcp"].sort_values("ts_ns").reset_index(drop=True)


def _round(retry_uid):
    return (f"proxy authentication round; the retry on {retry_uid} was accepted "
            f"(the proxy 10.0.0.1:3128 answered 407 to CONNECT {TARGET})")


def test_407_then_accepted_retry_on_a_new_connection_is_an_authentication_round(tmp_path):
    recs = (_records([_connect(), CHALLENGE], port=50000, close="s")
            + _records([_with_auth(), OK_200, *_tls(tmp_path)], port=50001, t0=100.5))
    path = _write(tmp_path, recs)
    t = _tcp(analyze(str(path)))
    assert t["orig_p"].tolist() == [50000, 50001]
    assert t["http_status"].tolist() == ["407", "200"]
    assert t["verdict"].tolist() == ["ok", "ok"]
    assert t["reason"].tolist() == ["", ""]
    assert t.at[0, "detail"] == _round(t.at[1, "uid"])
    assert t.at[0, "purpose"] == "agent_connection"
    # the checklist: nothing blocked, no "the proxy wants authentication" advice
    r = readiness(t, RULES).set_index("rule").loc["agent_connection"]
    assert r.status == "verified"
    assert "407" not in r.fix
    assert_same(path, [2048, 65536])
    assert_same_as_reference(analyze(str(path)), RULES)


def test_ntlm_three_connections_each_407_names_the_accepted_retry(tmp_path):
    # type 1 -> 407 (close), type 3 -> 407 (close), then 200 on the third connection
    recs = (_records([_connect(), CHALLENGE], port=50000, close="s")
            + _records([_with_auth(), CHALLENGE], port=50001, t0=100.2, close="s")
            + _records([_with_auth(), OK_200, *_tls(tmp_path)], port=50002, t0=100.4))
    t = _tcp(analyze(str(_write(tmp_path, recs))))
    assert t["verdict"].tolist() == ["ok", "ok", "ok"]
    assert t["detail"].tolist()[:2] == [_round(t.at[2, "uid"])] * 2


@pytest.mark.parametrize("case", ["none", "late", "other_target", "other_client", "403", "retry_refused"])
def test_407_without_an_accepted_retry_stays_blocked(tmp_path, monkeypatch, case):
    first = CHALLENGE if case != "403" else ("s", b"HTTP/1.1 403 Forbidden\r\nConnection: close\r\n\r\n")
    recs = _records([_connect(), first], port=50000, close="s")
    t0 = 100.0 + AUTH_RETRY_S + 1.0 if case == "late" else 100.5
    retry = [_with_auth("other.ksc.kaspersky.com:23101" if case == "other_target" else TARGET),
             CHALLENGE if case == "retry_refused" else OK_200]
    if case == "other_client":
        monkeypatch.setattr(pc, "CLIENT", "192.0.2.11")
    if case != "none":
        recs += _records(retry, port=50001, t0=t0, close="s")
    t = _tcp(analyze(str(_write(tmp_path, recs))))
    status = "403" if case == "403" else "407"
    assert (t.at[0, "http_status"], t.at[0, "verdict"], t.at[0, "reason"]) == (status, "blocked", "rejected")
    assert t.at[0, "detail"] == (REFUSED if case != "403" else REFUSED.replace('407 "Proxy Authentication Required"', '403 "Forbidden"'))
    r = readiness(t, RULES).set_index("rule").loc["agent_connection"]
    assert r.status == "blocked"
    # (the advice for what the proxy answered: its account for a 407, the target allowed for a 403;
    # newcomer 28 F8)
    assert (("403 (the proxy's policy denies the target): allow *.ksc.kaspersky.com:23100-23199 on the proxy"
             if case == "403" else "407 (the proxy wants authentication): set the proxy account (user name and "
             "password) in the agent's proxy settings") in r.fix), r.fix
    assert "407 = the proxy wants authentication" not in r.fix


def _filler(t0, t1, step=0.5):
    """UDP datagrams between two other hosts, to move the capture's clock (and fill chunks)."""
    out, t = [], t0
    while t < t1:
        out.append((t, Ether(src="02:00:00:00:00:20", dst="02:00:00:00:00:21") / IP(src="192.0.2.50", dst="192.0.2.51")
                    / UDP(sport=40000, dport=40001) / (b"x" * 400)))
        t += step
    return out


def test_chunked_retry_leaving_with_a_later_batch(tmp_path, monkeypatch):
    """The 407's connection closes at once and leaves with an early batch; the retry's tunnel
    stays open (data every 5 s for 60 s) and leaves much later: the chunked reading holds the
    407 back and gives it the verdict of the whole-file analysis."""
    tunnel = [*_tls(tmp_path)]
    for _ in range(12):
        tunnel += [("w", 5.0), ("c", b"\x17\x03\x03\x00\x05hello"), ("s", b"\x17\x03\x03\x00\x05world")]
    recs = (_records([_connect(), CHALLENGE], port=50000, close="s")
            + _records([_with_auth(), OK_200, *tunnel], port=50001, t0=101.0)
            + _filler(99.0, 175.0))
    path = _write(tmp_path, recs)
    t = _tcp(analyze(str(path)))
    assert t["verdict"].tolist() == ["ok", "ok"]
    assert t.at[0, "detail"] == _round(t.at[1, "uid"])
    w = assert_same(path, [4096, 16384])
    assert len(w) == len(t) + 1
    # (the 407 does leave with an earlier batch than its retry: not held back, it is judged
    # without it, as before the hold)
    monkeypatch.setattr(_AuthRounds, "hold", lambda self, flows, clock: flows)
    flows, _ = chunked(path, 4096)
    assert (_tcp(flows).at[0, "verdict"], _tcp(flows).at[0, "detail"]) == ("blocked", REFUSED)


def test_chunked_407_alone_is_released_blocked(tmp_path):
    recs = _records([_connect(), CHALLENGE], port=50000, close="s") + _filler(99.0, 175.0)
    path = _write(tmp_path, recs)
    w = assert_same(path, [4096])
    t = _tcp(w)
    assert (t.at[0, "verdict"], t.at[0, "reason"], t.at[0, "detail"]) == ("blocked", "rejected", REFUSED)


def test_live_session_judges_the_407_as_the_file_analysis(tmp_path, monkeypatch):
    """The live session classifies each flow when it changes (the 407's connection and its retry
    apart): its final table and snapshot give the 407 the verdict of the file's analysis."""
    from kscc_traffic.live.session import LiveSession
    from test_live_session import _replay, assert_live_same
    recs = (_records([_connect(), CHALLENGE], port=50000, close="s")
            + _records([_with_auth(), OK_200, *_tls(tmp_path)], port=50001, t0=100.5))
    path = _write(tmp_path, recs)
    assert_live_same(path, monkeypatch, step=5)
    s = LiveSession(RULES, name=path.name)
    _replay(path, s, step=5)
    snap = _tcp(s.snapshot())
    assert (snap.at[0, "verdict"], snap.at[0, "detail"]) == ("ok", _round(snap.at[1, "uid"]))
    final = _tcp(s.final())
    assert (final.at[0, "verdict"], final.at[0, "reason"]) == ("ok", "")
    assert final.at[0, "detail"] == _round(final.at[1, "uid"])


def test_retry_whose_tls_then_fails_still_makes_the_407_a_round(tmp_path):
    """The proxy passed the retry on (200); the TLS inside its tunnel then met an inspecting
    proxy's certificate: that failure is the retry's own row (tls_intercepted, the TLS advice),
    the 407 was the login that let it through."""
    recs = (_records([_connect(), ("s", b"HTTP/1.1 407 Auth\r\nContent-Length: 0\r\n\r\n")], port=50000)
            + _records([_with_auth(), OK_200, *_tls(tmp_path, verify=True)], port=50001, t0=100.5))
    t = _tcp(analyze(str(_write(tmp_path, recs))))
    assert list(zip(t["verdict"], t["reason"])) == [("ok", ""), ("blocked", "tls_intercepted")]
    assert t.at[0, "detail"] == _round(t.at[1, "uid"])
    fix = readiness(t, RULES).set_index("rule").loc["agent_connection", "fix"]
    assert fix.startswith("1 of 2 flows ok, 1 blocked") and "refused or failed" not in fix, fix


def test_partial_407_keeps_partial_in_its_reason(tmp_path):
    """A 407 connection whose handshake was not captured (partial): ok, reason 'partial' (as every
    ok flow whose start was not seen), the round's detail."""
    recs = (_records([_connect(), CHALLENGE], port=50000, close="s")[3:]
            + _records([_with_auth(), OK_200, *_tls(tmp_path)], port=50001, t0=100.5))
    t = _tcp(analyze(str(_write(tmp_path, recs))))
    assert t["partial"].tolist() == [True, False]
    assert list(zip(t["verdict"], t["reason"])) == [("ok", "partial"), ("ok", "")]
    assert t.at[0, "detail"] == _round(t.at[1, "uid"])


def test_chunked_held_407_not_lost_when_the_last_batch_is_empty(tmp_path):
    """The 407 leaves while its retry window is open and nothing else is: the capture goes on
    with ARP frames only (no IP packet, no open flow), so the end batch holds no packet; the
    held 407 still comes out, judged as in the whole file."""
    from scapy.layers.l2 import ARP
    arp = [(100.1 + 0.25 * i, Ether(src="02:00:00:00:00:30", dst="ff:ff:ff:ff:ff:ff")
            / ARP(psrc="192.0.2.60", pdst="192.0.2.61") / (b"\0" * 400)) for i in range(80)]
    path = _write(tmp_path, _records([_connect(), CHALLENGE], port=50000, close="s") + arp)
    w = assert_same(path, [4096])
    assert len(w) == 1
    assert (w.at[0, "verdict"], w.at[0, "reason"], w.at[0, "detail"]) == ("blocked", "rejected", REFUSED)
