"""Break-it s38 (net): a proxy that opened the CONNECT tunnel (200) and then closed or reset it
after the agent's ClientHello, no byte from the server: the detail names the proxy
(``classify._proxy_closed_tunnel``), not a bare "connection closed"; the client closing first
keeps the plain wording."""
from __future__ import annotations

import pytest

from chunkcmp import assert_same
from test_proxy_connect import OK_200, _connect, _records, _tls, _write


@pytest.mark.parametrize("close,how,state", [("s", "closed", "SF"), ("r", "reset", "RSTR")])
def test_proxy_closing_the_tunnel_after_the_hello_is_named(tmp_path, close, how, state):
    hello = ("c", _tls(tmp_path)[0][1])
    w = assert_same(_write(tmp_path, _records([_connect(), OK_200, hello], close=close)), [150, 400])
    r = w[w["proto"] == "tcp"].iloc[0]
    assert (r["verdict"], r["reason"], r["conn_state"]) == ("blocked", "tls_failed", state)
    assert r["detail"] == (f"TLS handshake aborted: the proxy 10.0.0.1:3128 {how} the tunnel ({state}) "
                           "without a byte from the server")


def test_client_closing_first_keeps_the_plain_wording(tmp_path):
    hello = ("c", _tls(tmp_path)[0][1])
    w = assert_same(_write(tmp_path, _records([_connect(), OK_200, hello], close="c")), [150])
    r = w[w["proto"] == "tcp"].iloc[0]
    assert "the proxy" not in r["detail"]


def _cases(tmp_path):
    """One capture: six CONNECTs to the same proxy from six client ports, each answered 200:
    the proxy closing / resetting the empty tunnel at once, after 3.5 s idle, the client
    closing first, the proxy closing / resetting after the ClientHello."""
    hello = ("c", _tls(tmp_path)[0][1])
    recs = []
    for k, (parts, close) in enumerate([([], "s"), ([], "r"), ([("w", 3.5)], "s"), ([], "c"),
                                        ([hello], "s"), ([hello], "r")]):
        recs += _records([_connect(), OK_200, *parts], port=50000 + k, t0=100.0 + 10 * k, close=close)
    return _write(tmp_path, recs, name="six.pcap")


EMPTY = ("TLS handshake not started: the proxy 10.0.0.1:3128 opened the tunnel of CONNECT "
         "eu1.ksc.kaspersky.com:23101 (200), then {how} it ({state}) {t} s after the connection began, "
         "before the client sent its ClientHello (the proxy failing to reach the target, or refusing it after all)")


def test_an_empty_tunnel_closed_by_the_proxy_at_once_is_blocked(tmp_path):
    w = assert_same(_cases(tmp_path), [150, 400, 4096]).sort_values("orig_p")
    got = list(zip(w["orig_p"], w["verdict"], w["reason"], w["conn_state"]))
    assert got == [(50000, "blocked", "tls_failed", "SF"), (50001, "blocked", "tls_failed", "RSTR"),
                   (50002, "ok", "", "SF"), (50003, "ok", "", "SF"),
                   (50004, "blocked", "tls_failed", "SF"), (50005, "blocked", "tls_failed", "RSTR")]
    d = w["detail"].tolist()
    # (1 ms between packets, the duration to the flow's last packet, stamps cut to whole µs: 6.99… ms)
    assert d[0] == EMPTY.format(how="closed", state="SF", t="0.006")
    assert d[1] == EMPTY.format(how="reset", state="RSTR", t="0.005")
    assert d[2] == "" and d[3] == ""
    assert d[4].startswith("TLS handshake aborted: the proxy 10.0.0.1:3128 closed the tunnel (SF)")


def test_its_grouped_judgement_equals_the_per_row_one(tmp_path):
    import pandas as pd
    from kscc_traffic import analyze
    from kscc_traffic.rules import load_rules
    from test_classify_fast import assert_same as assert_same_as_reference
    flows = analyze(str(_cases(tmp_path)))
    assert_same_as_reference(flows.drop(columns=["purpose", "verdict", "reason", "detail"]), load_rules())
    assert pd.Series(flows["proxy_target"] != "").sum() == 6


def test_the_advice_names_the_proxy_that_opened_the_tunnel(tmp_path):
    import subprocess
    import sys
    path = _write(tmp_path, _records([_connect(), OK_200], close="r"), name="one.pcap")
    out = subprocess.run([sys.executable, "-m", "kscc_traffic", "analyze", str(path)], capture_output=True,
                         text=True, env={**__import__("os").environ, "COLUMNS": "400"}).stdout
    assert ("agent_connection (blocked: tls_failed): this connection went through the proxy 10.0.0.1:3128, which "
            "opened the CONNECT tunnel") in out
    assert "check that the proxy 10.0.0.1:3128 reaches *.ksc.kaspersky.com on TCP 23100-23199" in out
