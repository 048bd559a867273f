"""Session 33 newcomer / break-it findings on inputs (captures built with scapy or raw bytes here,
no binary files).

N2: a DNS answer whose question name is a compression pointer looping on itself, for a name no
agent needs, gave NOERROR with empty answers and an empty detail, as if the server had answered
NODATA; the detail now says the answer is unreadable (malformed), both engines, whole and in chunks.

N3: a byte-identical copy of a capture under another name given beside it (``analyze a.pcap
copy_of_a.pcap``) was read twice without a word (every flow counted twice); it is now read once
with a warning line naming the copy and what it copies, like a capture given twice by path. Files
holding only their headers (a ring buffer's just-opened files: the same bytes) are all read, no line.
"""
from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys

import pytest

pytest.importorskip("scapy")

from scapy.layers.inet import IP, UDP  # noqa: E402

from chunkcmp import RULES, assert_same, write  # noqa: E402
from conftest import ROOT  # noqa: E402
from kscc_traffic.capture.folders import expand_folders  # noqa: E402
from pcapbuild import pcap_bytes, tcp_session  # noqa: E402
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


# ------------------------------------------------------------------------------ N3
COPY_LINE = "1 capture with the same bytes as another one given (a copy under another name), read once: "


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "kscc_traffic", *map(str, args)], capture_output=True, text=True,
                          timeout=180, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def _capture(tmp_path, name, port=50000, n=1):
    recs = [r for i in range(n) for r in tcp_session((AGENT, port + i), ("203.0.113.10", 23101), t0=10.0 + i)]
    p = tmp_path / name
    p.write_bytes(pcap_bytes(recs))
    return p


def test_a_copy_under_another_name_is_read_once(tmp_path):
    """N3: 'analyze a.pcap copy_of_a.pcap' gave every flow twice with no warning on d7ab08e."""
    a = _capture(tmp_path, "a.pcap", n=3)
    copy = tmp_path / "copy_of_a.pcap"
    shutil.copy(a, copy)
    once = _cli("analyze", "-f", "jsonl", a)
    p = _cli("analyze", "-f", "jsonl", a, copy)
    assert p.returncode == 0
    rows = [json.loads(x) for x in p.stdout.splitlines()]
    assert len(rows) == len(once.stdout.splitlines()) == 3
    assert {r["capture"] for r in rows} == {"a.pcap"}
    assert p.stderr == f"Warning: {COPY_LINE}{copy} (the bytes of {a})\n"
    import kscc_traffic
    from kscc_traffic.errors import CaptureWarning
    with pytest.warns(CaptureWarning, match="a copy under another name"):
        assert len(kscc_traffic.analyze([a, copy])) == 3


def test_same_size_different_bytes_are_both_read(tmp_path):
    """N3's control: two captures of the same size whose first and last 64 KiB agree but whose
    middles differ (the block-by-block comparison decides) are both read, no line."""
    a = _capture(tmp_path, "a.pcap", n=800)
    data = bytearray(a.read_bytes())
    assert len(data) > 3 * 65536
    mid = len(data) // 2
    data[mid] ^= 0xFF
    b = tmp_path / "b.pcap"
    b.write_bytes(bytes(data))
    assert b.stat().st_size == a.stat().st_size
    paths, notes = expand_folders([a, b])
    assert (paths, notes) == ([a, b], [])


def test_header_only_ring_files_are_not_copies(tmp_path):
    """N3's control: a ring buffer's files holding only their headers (pcap, pcapng) have the same
    bytes; they are all kept (reading them changes nothing) and no line says 'copy'; a pcapng
    copy holding a packet is a copy."""
    from scapy.layers.l2 import Ether
    from scapy.utils import PcapNgWriter
    empty = [tmp_path / f"ring_0000{i}_20261130101500.pcap" for i in (1, 2)]
    for p in empty:
        p.write_bytes(pcap_bytes([]))
    ng = []
    for i, pkts in enumerate(([], [], [Ether() / IP(src=AGENT, dst=RESOLVER) / UDP()] * 2)):
        p = tmp_path / f"n{i}.pcapng"
        w = PcapNgWriter(str(p))
        for k in pkts:
            w.write(k)
        if not pkts:        # (the headers only: a section and an interface)
            w.write_header(Ether())
        w.close()
        ng.append(p)
    assert ng[0].read_bytes() == ng[1].read_bytes()
    paths, notes = expand_folders([*empty, ng[0], ng[1]])
    assert (paths, notes) == ([*empty, ng[0], ng[1]], [])
    shutil.copy(ng[2], tmp_path / "n2_copy.pcapng")
    paths, notes = expand_folders([ng[2], tmp_path / "n2_copy.pcapng"])
    assert paths == [ng[2]]
    assert notes == [f"{COPY_LINE}{tmp_path / 'n2_copy.pcapng'} (the bytes of {ng[2]})"]
