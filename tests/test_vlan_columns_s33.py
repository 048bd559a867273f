"""Session 33 (newcomer F4): the flow table's ``vlan`` was the encoded VLAN stack (16777316 for
VLAN 100, 17596516 for QinQ 200 + 100), so ``vlan == 100`` found nothing, under a name Zeek users
read as the VLAN ID. Now ``vlan`` and ``inner_vlan`` are the VLAN IDs Zeek's
``policy/protocols/conn/vlan-logging.zeek`` logs (outer tag, inner tag; 0 where Zeek leaves the
field unset), in every output and both engines, whole, chunked and live; the whole stack stays
the flow key internally (``vlan_stack``, never written out): two stacks that differ only in a
tag neither column shows are still two flows, and an ICMP error on one of them is attached to
that one."""
from __future__ import annotations

import csv
import io
import json
import shutil
import struct
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("scapy")

from scapy.all import ICMP, IP, TCP  # noqa: E402

from chunkcmp import RULES, assert_same, write  # noqa: E402
from conftest import ROOT  # noqa: E402
from kscc_traffic.analyze import analyze_file  # noqa: E402
from kscc_traffic.capture._slowpath import vlan_value  # noqa: E402
from kscc_traffic.flows import vlan_ids, vlan_key  # noqa: E402

AGENT, SERVER, ROUTER = "192.0.2.10", "203.0.113.10", "192.0.2.1"
CMAC, SMAC = bytes.fromhex("02000000000a"), bytes.fromhex("020000000014")
T0 = 1_772_442_000.0
TSHARK = shutil.which("tshark")


def _frame(ip, tags, up: bool = True) -> bytes:
    """Ethernet II with the tags ``((TPID, VID), …)``, outermost first, around ``ip``."""
    out = (SMAC + CMAC) if up else (CMAC + SMAC)
    for tpid, vid in tags:
        out += struct.pack("!HH", tpid, vid)
    return out + b"\x08\x00" + bytes(ip)


def _handshake(t: float, sport: int, tags) -> list:
    syn = IP(src=AGENT, dst=SERVER) / TCP(sport=sport, dport=23101, flags="S", seq=1000)
    sa = IP(src=SERVER, dst=AGENT) / TCP(sport=23101, dport=sport, flags="SA", seq=5000, ack=1001)
    ack = IP(src=AGENT, dst=SERVER) / TCP(sport=sport, dport=23101, flags="A", seq=1001, ack=5001)
    return [(t, _frame(syn, tags)), (t + 0.01, _frame(sa, tags, up=False)), (t + 0.02, _frame(ack, tags))]


QINQ = ((0x88A8, 200), (0x8100, 100))
THREE_A = ((0x9100, 5), (0x88A8, 300), (0x8100, 10))
THREE_B = ((0x9100, 5), (0x88A8, 400), (0x8100, 10))


def _capture(tmp_path):
    """The same agent handshake (50000 -> 23101) untagged, in VLAN 100 and in QinQ 200 + 100;
    a SYN from 50001 on two three-tag stacks differing only in the middle tag (5, 300|400, 10),
    1 s apart, and a firewall's ICMP 3/13 quoting the first SYN, on the first one's stack."""
    recs = _handshake(T0, 50000, ()) + _handshake(T0 + 0.1, 50000, ((0x8100, 100),)) \
        + _handshake(T0 + 0.2, 50000, QINQ)
    syn = IP(src=AGENT, dst=SERVER, id=7) / TCP(sport=50001, dport=23101, flags="S", seq=777)
    err = IP(src=ROUTER, dst=AGENT) / ICMP(type=3, code=13) / bytes(syn)[:28]
    recs += [(T0 + 1.0, _frame(syn, THREE_A)), (T0 + 2.0, _frame(syn, THREE_B)),
             (T0 + 2.5, _frame(err, THREE_A, up=False))]
    return write(tmp_path, sorted(recs, key=lambda r: r[0]), "vlans.pcap")


def _check(flows: pd.DataFrame) -> None:
    assert "vlan_stack" not in flows.columns
    assert (flows["vlan"].dtype, flows["inner_vlan"].dtype) == (np.int64, np.int64)
    got = sorted((int(r.orig_p), int(r.vlan), int(r.inner_vlan), r.conn_state, r.icmp_unreachable)
                 for r in flows.itertuples())
    assert got == [
        (50000, 0, 0, "S1", ""),
        (50000, 100, 0, "S1", ""),
        (50000, 200, 100, "S1", ""),
        (50001, 5, 10, "S0", ""),
        (50001, 5, 10, "S0", "administratively prohibited (3/13) from 192.0.2.1"),
    ]
    three = flows[flows["orig_p"] == 50001].sort_values("ts_ns")
    # the error came on the first attempt's stack: that one, though the later one shows the
    # same vlan and inner_vlan and is the nearer in time
    assert three["icmp_unreachable"].tolist() == ["administratively prohibited (3/13) from 192.0.2.1", ""]
    assert three["reason"].tolist() == ["icmp_unreachable", "no_answer"]
    assert (flows["vlan"] == 100).sum() == 1 and (flows["inner_vlan"] == 100).sum() == 1


def test_flow_columns_are_zeeks_vlan_ids_whole_and_chunked(tmp_path):
    path = _capture(tmp_path)
    flows = assert_same(path, [200, 400])
    _check(flows)
    if TSHARK:
        t = analyze_file(path, RULES, engine="tshark").flows
        _check(t)
        cols = ["uid", "vlan", "inner_vlan", "icmp_unreachable", "verdict", "reason"]
        a, b = (x[cols].sort_values("uid").reset_index(drop=True) for x in (flows, t))
        pd.testing.assert_frame_equal(a, b)


def test_live_session_matches_flows_by_the_whole_stack(tmp_path, monkeypatch):
    """Replayed into a live session (whose table rows are matched back to its flows by key):
    the file's table, these two look-alike rows each with its own error text."""
    from kscc_traffic.live import session as S
    from test_live_session import assert_live_same
    path = _capture(tmp_path)
    assert_live_same(path, monkeypatch, step=1, head_packets=S.HEAD_PACKETS)
    assert_live_same(path, monkeypatch, step=3, head_packets=2)


def test_jsonl_and_csv_write_the_vlan_ids(tmp_path):
    """What the newcomer ran: ``analyze -f csv`` (and JSON Lines) write plain VLAN IDs, 0 for
    untagged, and no encoded stack under any name."""
    path = _capture(tmp_path)
    run = [sys.executable, "-m", "kscc_traffic", "analyze", str(path)]
    out = subprocess.run(run + ["-f", "jsonl"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(rows) == 5 and all("vlan_stack" not in r for r in rows)
    assert sorted((r["vlan"], r["inner_vlan"]) for r in rows) == [(0, 0), (5, 10), (5, 10), (100, 0), (200, 100)]
    assert '"vlan":0,"inner_vlan":0,"cast"' in out.stdout
    out = subprocess.run(run + ["-f", "csv"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert sorted((r["vlan"], r["inner_vlan"]) for r in rows) == \
        [("0", "0"), ("100", "0"), ("200", "100"), ("5", "10"), ("5", "10")]
    assert "vlan_stack" not in rows[0] and "16777316" not in out.stdout


@pytest.mark.parametrize("tags,ids", [
    ((), (0, 0)), ((0,), (0, 0)), ((100,), (100, 0)), ((200, 100), (200, 100)),
    ((0, 100), (100, 0)),            # a priority tag outside: skipped, as Zeek's VLAN analyzer does
    ((100, 0), (100, 0)),            # a priority tag inside: no inner VLAN (Zeek: inner_vlan 0, unset)
    ((300, 200, 100), (300, 100)),   # Zeek: each tag after the first overwrites inner_vlan
    ((4095, 1, 2, 3, 4095), (4095, 4095)),
    (tuple(range(10, 19)), (10, 18)), (tuple(range(10, 30)), (10, 29)),
])
def test_vlan_ids_of_a_stack(tags, ids):
    v, i = vlan_ids(np.array([vlan_value(list(tags))], np.int64))
    assert (int(v[0]), int(i[0])) == ids


def test_vlan_key_rebuilds_the_stack_of_a_table_without_it():
    """A table read back (CSV, JSON Lines) has no ``vlan_stack``: its key is rebuilt from the two
    columns, the decoder's value for up to two tags; a table with the column reads that."""
    stacks = [(), (100,), (200, 100), (4095, 1)]
    enc = np.array([vlan_value(list(t)) for t in stacks], np.int64)
    v, i = vlan_ids(enc)
    assert vlan_key(pd.DataFrame({"vlan": v, "inner_vlan": i})).tolist() == enc.tolist()
    assert vlan_key(pd.DataFrame({"vlan": v})).tolist() == [0, enc[1], 1 << 24 | 200, 1 << 24 | 4095]
    three = vlan_value([5, 300, 10])
    assert vlan_key(pd.DataFrame({"vlan": [5], "inner_vlan": [10], "vlan_stack": [three]})).tolist() == [three]
    assert vlan_key(pd.DataFrame({"orig_h": ["192.0.2.10"]})) is None
