"""Shared test set-up: the tests folder is importable (pcapbuild), and the shared corpus path."""
from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

import pytest

# GNU readline (imported by pytest's pdb support) exports the terminal's width as COLUMNS to the
# processes started from here (80 without a terminal), though os.environ does not show it; the
# command line's tables take COLUMNS in a pipe: without it they are the pipe's 200 columns, as a
# user's run gets them. A test that wants a width gives COLUMNS itself.
os.unsetenv("COLUMNS")

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
#: the shared folder (corpus, acceptance tool): beside the checkout, or where KSCC_SHARED says
#: (a checkout elsewhere: ``KSCC_SHARED=/work/shared python -m pytest``)
SHARED = Path(os.environ.get("KSCC_SHARED") or ROOT.parent / "shared")
sys.path.insert(0, str(TESTS))

#: the user documentation: the README (the short guide) and the reference pages it points to
DOCS = (ROOT / "README.md", ROOT / "docs" / "analyze.md", ROOT / "docs" / "flow-table.md", ROOT / "docs" / "live.md",
        ROOT / "docs" / "performance.md")


def documentation() -> str:
    """The text of the README and of the reference pages under docs/ (:data:`DOCS`), one after the
    other: what a test about the documented behaviour reads (the README holds the short version)."""
    return "\n".join(p.read_text(encoding="utf-8") for p in DOCS)


def shared_corpus(sub: str) -> Path:
    """``../shared/corpus/<sub>`` or a pytest skip saying why (a user's fresh clone has no
    shared folder beside it)."""
    path = SHARED / "corpus" / sub
    if not path.is_dir():
        pytest.skip(f"{path} not present (the shared corpus lives beside the project checkout, ../shared, or where "
                    "KSCC_SHARED=/path/to/shared says)")
    return path


def inet_checksum(b: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``b``, for headers built by hand in tests."""
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b) // 2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


#: the Ethernet addresses a frame built in a test gets where it gives none (RFC 7042's
#: documentation range 00-00-5E-00-53-00/24): source, and unicast destination
TEST_SRC_MAC = "00:00:5e:00:53:01"
TEST_DST_MAC = "00:00:5e:00:53:02"


def _offline_scapy_addresses() -> None:
    """Frames built in tests without Ethernet addresses get fixed ones, found without the network.

    scapy fills a missing ``Ether().dst`` from the routing table and ARP (``getmacbyip``): on a
    host whose interface is in 192.0.2.0/24 each such frame to that network waited ~2 s for an
    ARP answer and then got ff:ff:ff:ff:ff:ff, other destinations the gateway's address, and the
    source was the interface's own address. So the bytes a test built, its run time and possibly
    its result (a link-layer broadcast decides some classifications) depended on the host. Here,
    without any lookup: IPv4/IPv6 multicast gets its mapped address and 255.255.255.255 (and an
    ARP request) ff:ff:ff:ff:ff:ff, as scapy gives them; any other destination, a directed
    broadcast included (no subnet is known), :data:`TEST_DST_MAC`; a missing source
    :data:`TEST_SRC_MAC`. A test that means a broadcast frame says ``dst="ff:ff:ff:ff:ff:ff"``.
    Frames sent by the live tests are built in their own processes (not affected)."""
    try:
        from scapy.config import conf
        from scapy.layers import l2
        from scapy.layers.inet import IP
        from scapy.layers.inet6 import IPv6
        from scapy.utils import in4_getnsmac, inet_aton
    except ImportError:     # (scapy is a dependency; a test needing it says so itself)
        return

    def ipv4(l2inst, l3inst):
        dst = l3inst.dst
        dst = str(next(iter(dst))) if not isinstance(dst, str) else dst   # (a Net: its first address)
        if 224 <= int(dst.split(".")[0]) <= 239:
            return in4_getnsmac(inet_aton(dst))
        return "ff:ff:ff:ff:ff:ff" if dst == "255.255.255.255" else TEST_DST_MAC

    def ipv6(l2inst, l3inst):
        import ipaddress
        dst = ipaddress.IPv6Address(str(l3inst.dst))
        return "33:33:" + ":".join(f"{b:02x}" for b in dst.packed[-4:]) if dst.is_multicast else TEST_DST_MAC

    def arp(l2inst, l3inst):
        return "ff:ff:ff:ff:ff:ff" if l3inst.op == 1 else TEST_DST_MAC

    for lower in (l2.Ether, l2.Dot3):
        conf.neighbor.register_l3(lower, IP, ipv4)
    conf.neighbor.register_l3(l2.Ether, IPv6, ipv6)
    conf.neighbor.register_l3(l2.Ether, l2.ARP, arp)
    own_source = l2.SourceMACField.i2h

    def source(self, pkt, x):
        return own_source(self, pkt, TEST_SRC_MAC if x is None else x)

    l2.SourceMACField.i2h = source


_offline_scapy_addresses()
