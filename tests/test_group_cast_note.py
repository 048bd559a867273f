"""A datagram to UDP 15000 sent as a multicast, or to UDP 15001 sent as a broadcast (break-it 19
F9): the port's purpose, still ``ok`` (seen one-way), but not the delivery the page documents
(15000 "UDP broadcast" between agents, 15001 multicast from a distribution point): the detail
says so. IPv6's all-nodes group (ff02::1) stands for a broadcast. Grouped judgement = per-row."""
from __future__ import annotations

import pytest

from chunkcmp import whole, write
from pcapbuild import udp
from test_classify_fast import assert_same as assert_same_as_reference
from kscc_traffic.analyze import analyze_packets
from kscc_traffic.capture.decode import decode
from kscc_traffic.capture.files import read_frames
from kscc_traffic.classify import CLASS_COLUMNS
from kscc_traffic.rules import load_rules

RULES = load_rules()
BCAST_MAC = "ff:ff:ff:ff:ff:ff"


def _mac(dst: str) -> str:
    if dst == "255.255.255.255":
        return BCAST_MAC
    if ":" in dst:                                   # 33:33 + the group's low 32 bits
        low = int.from_bytes(__import__("ipaddress").IPv6Address(dst).packed[-4:], "big")
        return "33:33:" + ":".join(f"{(low >> s) & 0xFF:02x}" for s in (24, 16, 8, 0))
    o = [int(x) for x in dst.split(".")]            # 01:00:5e + the group's low 23 bits
    return f"01:00:5e:{o[1] & 0x7F:02x}:{o[2]:02x}:{o[3]:02x}"


CASES = [  # (destination, port, cast, purpose, note expected)
    ("239.255.255.250", 15000, "multicast", "agent_broadcast", True),
    ("ff05::c", 15000, "multicast", "agent_broadcast", True),
    ("ff02::1", 15000, "multicast", "agent_broadcast", False),
    ("255.255.255.255", 15000, "broadcast", "agent_broadcast", False),
    ("255.255.255.255", 15001, "broadcast", "dp_multicast", True),
    ("239.192.0.15", 15001, "multicast", "dp_multicast", False),
]


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    recs = []
    for k, (dst, port, *_rest) in enumerate(CASES):
        src = "2001:db8:1::10" if ":" in dst else "192.0.2.10"
        t, pkt = udp((src, 40000 + k), (dst, port), b"k" * 24, t=1000.0 + k, dst_mac=_mac(dst))
        recs.append((t, bytes(pkt)))
    return write(tmp_path_factory.mktemp("casts"), recs, name="casts.pcap")


@pytest.mark.parametrize("dst,port,cast,purpose,note", CASES)
def test_the_other_group_delivery_is_said(capture, dst, port, cast, purpose, note):
    flows, _ = whole(capture)
    (r,) = flows[(flows["resp_h"] == dst) & (flows["resp_p"] == port)].to_dict("records")
    assert (r["cast"], r["purpose"], r["verdict"], r["reason"]) == (cast, purpose, "ok", "")
    other = "broadcast" if cast == "multicast" else "multicast"
    want = (f"sent as a {cast} (to {dst}), where the page documents UDP {port} as a {other}: another "
            "application's datagram on this port?")
    assert r["detail"] == (want if note else "")


def test_grouped_judgement_equals_per_row(capture):
    table, _ = analyze_packets(decode(read_frames(capture)), RULES, capture.name, internal=True)
    assert len(table) == len(CASES)
    assert_same_as_reference(table.drop(columns=list(CLASS_COLUMNS)), RULES)
