"""Break-it 32 findings (captures built with scapy here, no binary files).

F1: a server's RST that carries text after the server had answered (RFC 1122 §4.2.2.12, a
firewall's "Connection reset by policy"): Wireshark dissects such a payload as ``tcp.reset_cause``
text, with no ``tcp.payload``, so the tshark engine took the RST's bytes for bytes the capture
lacks and warned "1 IP packet captured shorter than its IP length says … (cut by the capturing
tool without saying so …)" about a capture in which nothing was cut; the builtin engine gives no
such line. Both engines now give the same rows and the same (no) warning.
"""
from __future__ import annotations

import shutil

import pytest

pytest.importorskip("scapy")

from scapy.layers.inet import IP, TCP  # noqa: E402

from chunkcmp import RULES, write  # noqa: E402
from kscc_traffic.analyze import analyze_file  # noqa: E402
from pcapbuild import eth  # noqa: E402
from test_decode_more_encaps import client_hello, server_hello  # noqa: E402

HAVE_TSHARK = shutil.which("tshark") is not None
AGENT, CLOUD = "192.0.2.10", "203.0.113.10"


def _rst_after_answer(tmp_path, text: bytes):
    hello, answer = client_hello("eu1.ksc.kaspersky.com"), server_hello()

    def c(t, load=b"", **kw):
        return t, bytes(eth(IP(src=AGENT, dst=CLOUD) / TCP(sport=50000, dport=23100, **kw) / load))

    def s(t, load=b"", **kw):
        return t, bytes(eth(IP(src=CLOUD, dst=AGENT) / TCP(sport=23100, dport=50000, **kw) / load))
    recs = [c(1.0, flags="S", seq=999), s(1.01, flags="SA", seq=4999, ack=1000),
            c(1.02, flags="A", seq=1000, ack=5000), c(1.03, flags="PA", seq=1000, ack=5000, load=hello),
            s(1.04, flags="PA", seq=5000, ack=1000 + len(hello), load=answer),
            s(1.05, flags="R", seq=5000 + len(answer), load=text)]
    return write(tmp_path, recs, name="rst_text_after_answer.pcap")


COLS = ["conn_state", "history", "orig_bytes", "resp_bytes", "payload_cut", "verdict", "reason", "detail"]
WANT = ("RSTR", "ShADdr", len(client_hello("eu1.ksc.kaspersky.com")), len(server_hello()), False,
        "blocked", "tls_failed",
        "TLS handshake aborted: the server reset the connection (RST, RSTR) after its own answer to the "
        "ClientHello, before the client's next flight")


@pytest.mark.parametrize("text", [b"Connection reset by policy <b>deny</b>\x1b[31m", b"\xff\xfe\x00 reset" * 20])
def test_rst_text_is_no_cut_packet_either_engine(tmp_path, text):
    """F1: the RST's text is neither data nor a cut packet: no 'captured shorter' warning (it
    failed under the tshark engine on 649be23), the same row with both engines."""
    path = _rst_after_answer(tmp_path, text)
    b = analyze_file(path, RULES)
    assert len(b.flows) == 1
    assert tuple(b.flows.iloc[0][k] for k in COLS) == WANT
    assert b.flows.iloc[0]["sni"] == "eu1.ksc.kaspersky.com"
    assert not [w for w in b.warnings if "captured shorter" in w], b.warnings
    if not HAVE_TSHARK:
        pytest.skip("tshark not installed: the tshark engine's half not run")
    t = analyze_file(path, RULES, "tshark")
    assert len(t.flows) == 1
    assert tuple(t.flows.iloc[0][k] for k in COLS) == WANT
    assert t.flows.iloc[0]["sni"] == "eu1.ksc.kaspersky.com"
    assert not [w for w in t.warnings if "captured shorter" in w], t.warnings
    assert t.warnings == b.warnings
