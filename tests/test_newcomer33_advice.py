"""Newcomer 33: advice and wording findings (captures built with scapy in tmp_path).

F2. A path-MTU error (ICMP fragmentation needed 3/4, ICMPv6 packet too big) that reached the
capture point while the client still sent packets as large: the flow's detail told of it (lower the
MTU / clamp the MSS), but the purpose's "what to change" said "a proxy, TLS inspection or an
application-aware firewall … through uninspected". It now gives the path-MTU advice (report.MTU_FIX),
from readiness() and the streamed summary alike; the IPv4 detail cites RFC 1191 (RFC 4890 is
ICMPv6's filtering; RFC 8201 IPv6's path MTU discovery)."""
from __future__ import annotations

import pytest

from checklistcheck import checklists
from chunkcmp import whole
from test_icmp_errors_breakit25 import _ptb_capture
from kscc_traffic.report import MTU_FIX


@pytest.mark.parametrize("v6", [True, False], ids=["v6", "v4"])
def test_ignored_path_mtu_error_is_advised_as_a_black_hole(tmp_path, v6):
    path, size = _ptb_capture(tmp_path, v6, honoured=False)
    flows, _ = whole(path)
    f = flows.iloc[0]
    assert (f["verdict"], f["reason"]) == ("blocked", "tls_failed")
    assert f"still sent {size}-byte packets after it (as large as the one it quoted)" in f["detail"]
    if v6:
        assert "ICMPv6 type 2 (RFC 4890 §4.3.1: it must not be filtered; IPv6 path MTU discovery, RFC 8201" \
            in f["detail"]
        assert "1191" not in f["detail"]
    else:
        assert "ICMP type 3 code 4 (path MTU discovery, RFC 1191, depends on it)" in f["detail"]
        assert "4890" not in f["detail"]
    for c in checklists(flows):
        row = c.loc["agent_connection"]
        assert row["status"] == "blocked"
        assert row["fix"] == ("this connection reached the server on TCP 23100-23199 (the TCP handshake completed: "
                              f"the port is open), then the TLS handshake failed: {MTU_FIX}")
        assert "uninspected" not in row["fix"] and "proxy" not in row["fix"]


def test_honoured_path_mtu_error_keeps_no_mtu_advice(tmp_path):
    """The client that sent smaller segments after the error (its TLS unanswered by the server,
    still blocked): no black hole, no MTU advice."""
    path, _ = _ptb_capture(tmp_path, False, honoured=True)
    flows, _ = whole(path)
    assert (flows["verdict"].tolist(), flows["reason"].tolist()) == (["blocked"], ["tls_failed"])
    assert "as large as" not in flows["detail"].iloc[0]
    for c in checklists(flows):
        assert MTU_FIX not in c.loc["agent_connection", "fix"]
