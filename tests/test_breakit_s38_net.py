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
