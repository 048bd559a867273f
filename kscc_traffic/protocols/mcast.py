"""IGMP / MLD membership reports: the multicast groups a host joins.

Sources: RFC 1112 appendix I (IGMPv1 report, type 0x12), RFC 2236 §2 (IGMPv2 report 0x16),
RFC 3376 §4.2 (IGMPv3 report 0x22 with group records), RFC 2710 §3 (MLDv1 report, ICMPv6 type
131), RFC 3810 §5.2 (MLDv2 report, ICMPv6 type 143 with multicast address records).

A group record (RFC 3376 §4.2.4, RFC 3810 §5.2.4): record type (1 byte), aux data length (1
byte, in 32-bit words), number of sources (2 bytes), the multicast address (4 or 16 bytes),
the sources (4 or 16 bytes each), the aux data. Record types (RFC 3376 §4.2.12): 1
MODE_IS_INCLUDE, 2 MODE_IS_EXCLUDE, 3 CHANGE_TO_INCLUDE_MODE, 4 CHANGE_TO_EXCLUDE_MODE, 5
ALLOW_NEW_SOURCES, 6 BLOCK_OLD_SOURCES. A record joins when the host then receives from the
group: EXCLUDE mode (2, 4: every source but those listed), new sources allowed (5), or INCLUDE
mode with sources (1, 3 naming sources: source-specific multicast); an INCLUDE record with no
source (a CHANGE_TO_INCLUDE with none is how an IGMPv3/MLDv2 host leaves) and BLOCK_OLD_SOURCES
do not.
"""
from __future__ import annotations

import ipaddress

from ..addresses import ipv6_text

__all__ = ["joined_groups", "MAX_RECORDS"]

#: IGMP message types of a report naming one group at offset 4 (IGMPv1, IGMPv2)
_IGMP_V1V2_REPORTS = frozenset({0x12, 0x16})
_IGMP_V3_REPORT = 0x22
_MLD_V1_REPORT = 131
_MLD_V2_REPORT = 143
#: record types that join whatever the sources (EXCLUDE mode, new sources allowed)
_JOIN_ANY = frozenset({2, 4, 5})
#: record types that join only when they name a source (INCLUDE mode)
_JOIN_WITH_SOURCES = frozenset({1, 3})
#: group records read per report at most (a report of more is read up to there)
MAX_RECORDS = 256


def _records(data: bytes, off: int, count: int, width: int) -> list[bytes]:
    """The group addresses (``width`` bytes each) of the joining records of the ``count`` records
    from ``off`` (count -1: until the bytes end); a record cut short ends the reading."""
    out = []
    n = 0
    while (count < 0 or n < count) and n < MAX_RECORDS and off + 4 + width <= len(data):
        rtype, aux = data[off], data[off + 1]
        nsrc = (data[off + 2] << 8) | data[off + 3]
        group = bytes(data[off + 4:off + 4 + width])
        if rtype in _JOIN_ANY or (rtype in _JOIN_WITH_SOURCES and nsrc > 0):
            out.append(group)
        off += 4 + width + nsrc * width + 4 * aux
        n += 1
    return out


def joined_groups(ipver: int, data: bytes, icmp_type: int = -1) -> list[str]:
    """The multicast groups a membership report joins, as address text (dotted IPv4; IPv6 as
    :func:`kscc_traffic.addresses.ipv6_text`), in record order, repeats left in; [] for any
    other message, a leave, a query or bytes too short.

    :param ipver: 4 (``data`` is the whole IGMP message, IP protocol 2) or 6 (``data`` is what
        follows the 8-byte ICMPv6 header of an MLD message, as ``Packets.payload`` gives it).
    :param icmp_type: the ICMPv6 type (IPv6 only): 131 MLDv1 report (its one group), 143 MLDv2
        report (its records, read until the bytes end: their count is in the header's last two
        bytes, not in ``data``).
    """
    if ipver == 4:
        if len(data) < 8:
            return []
        t = data[0]
        if t in _IGMP_V1V2_REPORTS:
            groups = [bytes(data[4:8])]
        elif t == _IGMP_V3_REPORT:
            groups = _records(data, 8, (data[6] << 8) | data[7], 4)
        else:
            return []
        return [str(ipaddress.IPv4Address(g)) for g in groups if g[0] >> 4 == 0xE]
    if icmp_type == _MLD_V1_REPORT:
        groups = [bytes(data[:16])] if len(data) >= 16 else []
    elif icmp_type == _MLD_V2_REPORT:
        groups = _records(data, 0, -1, 16)
    else:
        return []
    return [ipv6_text(g) for g in groups if g[0] == 0xFF]
