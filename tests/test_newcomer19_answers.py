"""Newcomer 19 F11, F12, F19: what a server answered to a ClientHello that is not TLS."""
from __future__ import annotations

import pytest
from scapy.layers.inet import TCP

from pcapbuild import CLIENT_MAC, SERVER_MAC, eth, ip_of, pcap_bytes, tcp_session

from kscc_traffic.analyze import analyze_file
from kscc_traffic.report import readiness
from kscc_traffic.rules import load_rules
from test_classify_fast import assert_same as assert_same_as_reference

RULES = load_rules()
AGENT, SERVER = "192.0.2.10", "203.0.113.10"
T0 = 1_764_500_000.0


def _hello():
    from test_decode_more_encaps import client_hello
    return client_hello("eu1.ksc.kaspersky.com")


def _answered_in_segments(tmp_path, segments, port=23101):
    """A ClientHello answered by the server's ``segments`` [(seq offset from the stream's first
    byte, bytes)], in that order, then both sides close."""
    hello = _hello()
    recs = tcp_session((AGENT, 50003), (SERVER, port), t0=T0, c_data=hello, close=False)
    cs, ss = 1001 + len(hello), 5001
    t = T0 + 0.1
    s2c = lambda **kw: eth(ip_of(SERVER, AGENT) / TCP(sport=port, dport=50003, **kw),  # noqa: E731
                           src=SERVER_MAC, dst=CLIENT_MAC)
    c2s = lambda **kw: eth(ip_of(AGENT, SERVER) / TCP(sport=50003, dport=port, **kw))  # noqa: E731
    end = ss
    for off, data in segments:
        recs.append((t, s2c(flags="PA", seq=ss + off, ack=cs) / data))
        end = max(end, ss + off + len(data))
        t += 0.01
    recs += [(t, c2s(flags="FA", seq=cs, ack=end)), (t + 0.01, s2c(flags="FA", seq=end, ack=cs + 1)),
             (t + 0.02, c2s(flags="A", seq=cs + 1, ack=end + 1))]
    p = tmp_path / "c.pcap"
    p.write_bytes(pcap_bytes(recs))
    return analyze_file(p, RULES).flows


NOT_TLS = "the server sent cleartext that is not TLS where TLS is documented: "
WHO = " (another service on the port, or a filter's refusal)"


def test_the_quote_follows_the_servers_segments(tmp_path):
    """F11: a banner sent in two segments ("220 ", then the rest) is quoted whole, not "220 "."""
    f = _answered_in_segments(tmp_path, [(0, b"220 "), (4, b"mail.example ESMTP Postfix\r\n")])
    r = f.iloc[0]
    assert (r.verdict, r.reason) == ("unexpected", "not_tls")
    assert r.detail == NOT_TLS + '"220 mail.example ESMTP Postfix"' + WHO


def test_a_retransmitted_segment_adds_nothing_and_a_gap_ends_the_quote(tmp_path):
    """The same first segment twice is read once; bytes after a gap (a segment not captured)
    are not joined to the quote, which ends with … (the stream went on)."""
    f = _answered_in_segments(tmp_path, [(0, b"220 "), (0, b"220 "), (4, b"mail.example\r\n")])
    assert f.iloc[0].detail == NOT_TLS + '"220 mail.example"' + WHO
    f = _answered_in_segments(tmp_path, [(0, b"220 "), (10, b"mail.example\r\n")])
    assert f.iloc[0].detail == NOT_TLS + '"220 …"' + WHO


def test_the_quote_stops_at_40_bytes_across_segments(tmp_path):
    f = _answered_in_segments(tmp_path, [(0, b"a" * 30), (30, b"b" * 30)])
    assert f.iloc[0].detail == NOT_TLS + '"' + "a" * 30 + "b" * 10 + '…"' + WHO


def test_a_binary_answer_is_mentioned_in_the_tls_failed_detail(tmp_path):
    """F12: bytes that are neither TLS nor text stay tls_failed (an obfuscated protocol on 443 is
    no proof of another service), but the detail says the server answered, and with what."""
    answer = b"\xff\xfe\x00\x00ACCESS DENIED\xc3\x28 by filter\x00\x07"
    r = _answered_in_segments(tmp_path, [(0, answer)]).iloc[0]
    assert (r.verdict, r.reason, r.server_proto) == ("blocked", "tls_failed", "other")
    assert r.detail.endswith("; the server answered with bytes that are not TLS (31 bytes, the first 8: "
                             "ff fe 00 00 41 43 43 45)")
    # (who closed, newcomer 23 F20)
    assert r.detail.startswith("TLS handshake aborted: the client closed the connection (FIN, SF) after the "
                               "server's last answer, sending nothing after it, no alert either")


@pytest.mark.parametrize("segments, said", [
    ([(0, bytes(range(0x80, 0xC0)) + b"\x00\x01\x02")], "67 bytes, the first 8: 80 81 82 83 84 85 86 87"),
    ([(0, bytes(range(0x80, 0xA0))), (32, bytes(range(0xA0, 0xC0)) + b"\x00\x01\x02")],
     "67 bytes, the first 8: 80 81 82 83 84 85 86 87"),
    ([(0, b"\x00\x00\x00")], "3 bytes: 00 00 00"),
    ([(0, b"\x80\x00\x01\x02\x03\x04\x05\x06")], "8 bytes: 80 00 01 02 03 04 05 06"),
], ids=["67-one-segment", "67-two-segments", "3-bytes", "8-bytes"])
def test_a_binary_answer_says_how_many_bytes_and_which_are_shown(tmp_path, segments, said):
    """Newcomer 20 F11: a 67-byte binary answer read "(40 bytes: 80 81 …)", then "(first bytes 80
    81 …)", as if that were its size: the detail gives the server's byte count and says which of
    them are shown."""
    f = _answered_in_segments(tmp_path, segments)
    r = f.iloc[0]
    assert (r.verdict, r.reason) == ("blocked", "tls_failed")
    assert r.detail.endswith(f"; the server answered with bytes that are not TLS ({said})")


def test_binary_answers_of_other_sizes_are_judged_apart(tmp_path):
    """The grouped judgement keys the byte count of a binary answer: two flows alike but for it
    get their own count (the fast path equals the per-row reference)."""
    import pandas as pd
    from kscc_traffic.analyze import analyze_packets
    from kscc_traffic.capture.decode import decode
    from kscc_traffic.capture.files import read_frames
    tables = []
    for k, size in enumerate((64, 16)):
        _answered_in_segments(tmp_path, [(0, bytes(range(0x80, 0x80 + size)))])
        table, _ = analyze_packets(decode(read_frames(tmp_path / "c.pcap")), RULES, "c.pcap", internal=True)
        tables.append(table)
    both = pd.concat(tables, ignore_index=True)
    assert [d.rsplit("(", 1)[1] for d in both["detail"]] == [
        "64 bytes, the first 8: 80 81 82 83 84 85 86 87)", "16 bytes, the first 8: 80 81 82 83 84 85 86 87)"]
    assert_same_as_reference(both.drop(columns=["verdict", "reason", "detail", "rule"], errors="ignore"), RULES)


def test_a_cleartext_refusal_is_not_told_nothing_to_open(tmp_path):
    """F19: a filter's text refusal quoted in the detail; the checklist's advice no longer says
    there is nothing to change in the firewall (the filter's policy must let the TLS through)."""
    f = _answered_in_segments(tmp_path, [(0, b"Connection refused by security policy 42\r\n")])
    assert f.iloc[0].reason == "not_tls"
    fix = readiness(f, RULES).set_index("rule").loc["agent_connection", "fix"]
    assert fix.startswith("this connection on TCP 23100-23199 was answered (the port is open): not_tls: ")
    assert "nothing to open" not in fix and "a filter refusing by policy must let the agent's TLS through" in fix


def test_a_quote_in_one_byte_segments_is_the_same_read_in_chunks(tmp_path):
    """Newcomer 20 F17: the quote reads the server's first MAX_SEGMENTS data segments (a chunked
    reading keeps them with their bytes, and one more), then ends with …: whole and chunked agree."""
    from chunkcmp import assert_same
    from kscc_traffic.streams import MAX_SEGMENTS
    text = b"Connection refused by policy 42 (contact your administrator)\r\n"
    f = _answered_in_segments(tmp_path, [(k, text[k:k + 1]) for k in range(len(text))])
    quoted = text[:MAX_SEGMENTS].decode()
    assert f.iloc[0].detail == NOT_TLS + f'"{quoted}…"' + WHO
    assert_same(tmp_path / "c.pcap", [300, 900])


@pytest.mark.parametrize("text", ["Доступ запрещён политикой безопасности\r\n",
                                  "Zugriff verweigert – Richtlinie “Kaspersky” blockiert\r\n"],
                         ids=["russian", "german"])
def test_a_localised_refusal_in_utf8_is_quoted(tmp_path, text):
    """Newcomer 20 F5: UTF-8 text (a localised block page) is text: not_tls, quoted, the
    40-byte quote cut before a character it would split."""
    f = _answered_in_segments(tmp_path, [(0, text.encode())])
    r = f.iloc[0]
    assert (r.verdict, r.reason) == ("unexpected", "not_tls")
    raw = text.encode()[:40]
    while True:
        try:
            shown = raw.decode()
            break
        except UnicodeDecodeError:
            raw = raw[:-1]
    assert r.detail == NOT_TLS + f'"{shown}…"' + WHO


def test_an_http_403_to_the_client_hello_is_not_told_to_open_the_port(tmp_path):
    """Newcomer 20 F6: a filter's 403 to the ClientHello (blocked/rejected) came over an open
    port: the advice is the failed TLS handshake's, in readiness() and in the table's counts."""
    from kscc_traffic.report import TableSummary
    f = _answered_in_segments(tmp_path, [(0, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")])
    assert (f.iloc[0].verdict, f.iloc[0].reason) == ("blocked", "rejected")
    for chk in (readiness(f, RULES), TableSummary.of(f).readiness(RULES)):
        fix = chk.set_index("rule").loc["agent_connection", "fix"]
        assert fix.startswith("this connection reached the server on TCP 23100-23199 (the TCP handshake "
                              "completed: the port is open), then the TLS handshake failed"), fix
