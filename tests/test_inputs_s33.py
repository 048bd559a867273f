"""Session 33 newcomer / break-it findings on inputs (captures built with scapy or raw bytes here,
no binary files).

N2: a DNS answer whose question name is a compression pointer looping on itself, for a name no
agent needs, gave NOERROR with empty answers and an empty detail, as if the server had answered
NODATA; the detail now says the answer is unreadable (malformed), both engines, whole and in chunks.
"""
from __future__ import annotations

import shutil
import struct

import pytest

pytest.importorskip("scapy")

from scapy.layers.inet import IP, UDP  # noqa: E402

from chunkcmp import RULES, assert_same, write  # noqa: E402
from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.classify import DNS_UNREADABLE_ANSWER  # noqa: E402
from pcapbuild import eth  # noqa: E402

HAVE_TSHARK = shutil.which("tshark") is not None
AGENT, RESOLVER = "192.0.2.10", "198.51.100.53"


# ------------------------------------------------------------------------------ N2
def _loop_exchange(tmp_path, looping: bool):
    """An A query for loop.example and its NOERROR response with one A record; ``looping``: the
    response's question name is a pointer to itself (offset 12), its answer's owner a pointer to it."""
    qname = b"\x04loop\x07example\x00"
    q = struct.pack("!HHHHHH", 0x1094, 0x0100, 1, 0, 0, 0) + qname + struct.pack("!HH", 1, 1)
    r = struct.pack("!HHHHHH", 0x1094, 0x8180, 1, 1, 0, 0) + (b"\xc0\x0c" if looping else qname) \
        + struct.pack("!HH", 1, 1) + b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([198, 51, 100, 68])
    recs = [(5.0, bytes(eth(IP(src=AGENT, dst=RESOLVER) / UDP(sport=5557, dport=53) / q))),
            (5.01, bytes(eth(IP(src=RESOLVER, dst=AGENT) / UDP(sport=53, dport=5557) / r)))]
    return write(tmp_path, recs, name="loop_dns.pcap")


def test_looping_dns_answer_is_unreadable_not_empty(tmp_path):
    """N2: NOERROR and no address as before (the header says NOERROR; nothing could be read), verdict
    ok (no agent needs the name), but the detail says the answer is unreadable (it was '' on d7ab08e)."""
    path = _loop_exchange(tmp_path, True)
    w = assert_same(path, [60, 80])
    assert len(w) == 1
    r = w.iloc[0]
    assert (r["query"], r["dns_rcode"], r["dns_answers"], r["verdict"], r["reason"]) == \
        ("loop.example", "NOERROR", "", "ok", "")
    assert r["detail"].startswith(DNS_UNREADABLE_ANSWER + "loop.example: the answer is malformed"), r["detail"]
    if HAVE_TSHARK:
        t = analyze_file(path, RULES, "tshark").flows.iloc[0]
        assert (t["dns_answers"], t["verdict"], t["detail"]) == ("", "ok", r["detail"])


def test_readable_dns_answer_keeps_empty_detail(tmp_path):
    """N2's control: the same exchange with a readable question name resolves, no detail."""
    r = assert_same(_loop_exchange(tmp_path, False), [80]).iloc[0]
    assert (r["dns_answers"], r["verdict"], r["detail"]) == ("198.51.100.68", "ok", "")
