"""A proxy's refusal quotes its status line's reason phrase (protocols.http.response_reason,
inspect's internal ``http_reason``, classify._proxy_refusal): some proxies say there why they
refuse (Microsoft TMG/ISA: the SSL port not allowed), which the code alone does not."""
from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP

from chunkcmp import assert_same, write
from kscc_traffic.protocols.http import REASON_CHARS, response_reason
from pcapbuild import eth

CLIENT, PROXY = "192.0.2.10", "192.0.2.1"
TMG = (b"Proxy Error ( The specified Secure Sockets Layer (SSL) port is not allowed. ISA Server is not "
       b"configured to allow SSL requests from this port. Most Web browsers use port 443 for SSL requests.  )")


def test_the_reason_phrase_of_the_status_asked():
    assert response_reason(b"HTTP/1.1 407 Proxy Authentication Required\r\nX: y\r\n\r\n", 407) == \
        "Proxy Authentication Required"
    # (the last answer with that code: a 407, the CONNECT asked again, another 407)
    two = b"HTTP/1.1 407 First\r\nContent-Length: 0\r\n\r\nHTTP/1.1 407 Second try\r\n\r\n"
    assert response_reason(two, 407) == "Second try"
    assert response_reason(b"HTTP/1.0 502 \r\n\r\n", 502) == ""          # an empty phrase
    assert response_reason(b"HTTP/1.1 502\r\n\r\n", 502) == ""
    assert response_reason(b"HTTP/1.1 403 Forbidden\r\n\r\n", 407) == ""  # another code
    # (a status line only at the start of a line: not one quoted in a body)
    assert response_reason(b"HTTP/1.1 500 Real\r\n\r\n<p>HTTP/1.1 500 Fake</p>", 500) == "Real"


def test_untrusted_bytes_are_escaped_and_the_length_bounded():
    got = response_reason(b"HTTP/1.1 500 <b>x</b>\x1b[31m\xff\x07\r\n\r\n", 500)
    assert got == "<b>x</b>\\x1b[31m\\xff\\x07"
    long = response_reason(b"HTTP/1.1 502 " + b"a" * 500 + b"\r\n\r\n", 502)
    assert long == "a" * REASON_CHARS + "\u2026"


def _connect(tmp_path, status_line: bytes, name: str):
    req = b"CONNECT a1.ksc.kaspersky.com:23101 HTTP/1.1\r\nHost: a1.ksc.kaspersky.com:23101\r\n\r\n"
    resp = status_line + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    c, s = (CLIENT, 50000), (PROXY, 3128)

    def pkt(src, dst, **kw):
        payload = kw.pop("load", b"")
        return bytes(eth(IP(src=src[0], dst=dst[0]) / TCP(sport=src[1], dport=dst[1], **kw) / payload))
    recs = [(1.00, pkt(c, s, flags="S", seq=1)),
            (1.01, pkt(s, c, flags="SA", seq=100, ack=2)),
            (1.02, pkt(c, s, flags="A", seq=2, ack=101)),
            (1.03, pkt(c, s, flags="PA", seq=2, ack=101, load=req)),
            (1.04, pkt(s, c, flags="PA", seq=101, ack=2 + len(req), load=resp)),
            (1.05, pkt(s, c, flags="FA", seq=101 + len(resp), ack=2 + len(req))),
            (1.06, pkt(c, s, flags="FA", seq=2 + len(req), ack=102 + len(resp))),
            (1.07, pkt(s, c, flags="A", seq=102 + len(resp), ack=3 + len(req)))]
    return write(tmp_path, recs, name=name)


@pytest.mark.parametrize("line,said", [
    (b"HTTP/1.1 502 " + TMG, ' "' + TMG.decode() + '"'),
    (b"HTTP/1.1 500 <script>x</script>\x1b[2J", ' "<script>x</script>\\x1b[2J"'),
    (b"HTTP/1.1 407", ""),
])
def test_the_detail_quotes_it_whole_and_in_chunks(tmp_path, line, said):
    w = assert_same(_connect(tmp_path, line, "px.pcap"), [150, 400])
    assert len(w) == 1
    r = w.iloc[0]
    code = line.split()[1].decode()
    assert (r["verdict"], r["reason"], r["http_status"]) == ("blocked", "rejected", code)
    assert r["detail"] == f"the proxy 192.0.2.1:3128 answered {code}{said} to CONNECT a1.ksc.kaspersky.com:23101"


def test_an_opened_tunnel_has_no_refusal_to_quote(tmp_path):
    w = assert_same(_connect(tmp_path, b"HTTP/1.1 200 Connection established", "ok.pcap"), [200])
    assert "answered 200" not in w.iloc[0]["detail"]
