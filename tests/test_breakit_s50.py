"""Break-it pass of session 50 (KSC scenarios the corpus does not show): each test names its finding."""
from __future__ import annotations

import pytest

pytest.importorskip("scapy")

from pcapbuild import pcap_bytes, tcp_session  # noqa: E402
from test_newcomer30_findings import AGENT, KSC, SERVER_HELLO, _fixes, _hello  # noqa: E402

from kscc_traffic import analyze, load_rules  # noqa: E402
from kscc_traffic.html_report import render_html  # noqa: E402
from kscc_traffic.report import console_names, vendor_names  # noqa: E402

RULES = load_rules()


def test_the_bare_console_domain_is_a_wrong_server_address(tmp_path):
    """#5: an SNI of ksc.kaspersky.com itself on 23102 is host_mismatch (``*.`` needs a
    sub-domain); the advice was "the Cloud Console server on a port the page does not document",
    on a documented port: it is the agent's Administration Server address that is wrong."""
    assert console_names(["ksc.kaspersky.com", "KSC.Kaspersky.com.", "eu1.ksc.kaspersky.com"]).tolist() == \
        [False, False, True]
    assert vendor_names(["ksc.kaspersky.com", "ds.kaspersky.com", "kaspersky.com"]).tolist() == [False, True, True]
    path = tmp_path / "bare.pcap"
    path.write_bytes(pcap_bytes(tcp_session((AGENT, 50003), (KSC, 23102), t0=1000.0,
                                            c_data=_hello(b"ksc.kaspersky.com"), s_data=SERVER_HELLO)))
    flows = analyze(str(path))
    row = flows.iloc[0]
    assert (row["purpose"], row["verdict"], row["reason"]) == ("agent_connection", "unexpected", "host_mismatch")
    fix = _fixes(flows)
    assert fix.startswith("the agent is configured with another Administration Server address (ksc.kaspersky.com, "
                          "on TCP 23100-23199"), fix
    assert "does not document for it" not in fix
    assert "does not document for it" not in render_html(flows, RULES)
