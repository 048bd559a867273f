"""ICMP / ICMPv6 destination-unreachable messages, attached to the flow they quote.

An error message quotes the IP header and the first 8+ bytes of the datagram that caused it
(RFC 792, RFC 1812 §4.3.2.3, RFC 4443 §3.1). We read the quoted 5-tuple and attach the error to
the latest flow with that 5-tuple (either direction) that started before the error arrived.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .capture.packets import Packets
from .flows import ICMP, ICMP6, address_text
from .protocols import icmp

#: seconds an error may precede the flow's first packet (clock jitter between interfaces)
SLACK_NS = 1_000_000_000


@dataclass
class IcmpError:
    row: int          # packet row
    ts_ns: int
    sender: str       # who sent the ICMP message (router or host)
    vlan: int
    proto: str
    src: str
    dst: str
    sport: int
    dport: int
    text: str         # e.g. "administratively prohibited (3/13)"


def find_errors(packets: Packets) -> list[IcmpError]:
    """ICMP type 3 / ICMPv6 type 1 messages whose quoted datagram could be read."""
    c = packets.cols
    cand = np.nonzero(((c["proto"] == ICMP) & (c["icmp_type"] == 3))
                      | ((c["proto"] == ICMP6) & (c["icmp_type"] == 1)))[0]
    if len(cand) == 0:
        return []
    senders = address_text(c["src_hi"][cand], c["src_lo"][cand], c["ipver"][cand] == 6)
    out = []
    for j, i in enumerate(cand.tolist()):
        ver = int(c["ipver"][i])
        q = icmp.quoted_datagram(packets.payload(i), ver)
        if q is None or q.proto not in (6, 17) or q.sport is None or q.dport is None:
            continue
        t, code = int(c["icmp_type"][i]), int(c["icmp_code"][i])
        out.append(IcmpError(i, int(c["ts_ns"][i]), str(senders[j]), int(c["vlan"][i]),
                             "tcp" if q.proto == 6 else "udp", q.src, q.dst, int(q.sport),
                             int(q.dport), f"{icmp.describe(ver, t, code)} ({t}/{code})"))
    return out


def attach(flows: pd.DataFrame, errors: list[IcmpError],
           matched: list[tuple[int, int]] | None = None) -> tuple[pd.DataFrame, list[IcmpError]]:
    """Fill ``icmp_unreachable`` of the flows the errors quote: the flow with the quoted 5-tuple on
    the error's VLAN stack, else on the only VLAN stack that has it (an error that came back on
    another VLAN: a mirror tagging one direction only, a router between VLANs).

    :param matched: when given, ``(packet row of the error, flow row it was attached to)`` is
        appended for every error that matched a flow.
    :returns: (the flows with ``icmp_unreachable`` set, the errors that matched no flow).
    """
    if not errors or len(flows) == 0:
        return flows, list(errors)
    index: dict[tuple, list[int]] = {}
    any_vlan: dict[tuple, list[int]] = {}
    vlans = flows["vlan"].tolist()
    for f, key in enumerate(zip(vlans, flows["proto"].tolist(), flows["orig_h"].tolist(),
                                flows["orig_p"].tolist(), flows["resp_h"].tolist(),
                                flows["resp_p"].tolist())):
        v, pr, oh, op, rh, rp = key
        index.setdefault((v, pr, oh, op, rh, rp), []).append(f)
        index.setdefault((v, pr, rh, rp, oh, op), []).append(f)
        any_vlan.setdefault((pr, oh, op, rh, rp), []).append(f)
        any_vlan.setdefault((pr, rh, rp, oh, op), []).append(f)
    first_ts = flows["ts_ns"].to_numpy()
    text = flows["icmp_unreachable"].to_numpy(dtype=object).copy()
    unmatched = []
    for e in errors:
        cands = index.get((e.vlan, e.proto, e.src, e.sport, e.dst, e.dport), [])
        if not cands:
            # the error on another VLAN stack than the flow (a mirror that tags one direction
            # only, routing between VLANs): the flow when only one VLAN stack has that 5-tuple
            other = any_vlan.get((e.proto, e.src, e.sport, e.dst, e.dport), [])
            if len({vlans[f] for f in other}) == 1:
                cands = other
        best = -1
        for f in cands:
            if int(first_ts[f]) <= e.ts_ns + SLACK_NS and (best < 0 or first_ts[f] >= first_ts[best]):
                best = f
        if best < 0:
            unmatched.append(e)
            continue
        if matched is not None:
            matched.append((e.row, best))
        if not text[best]:
            text[best] = f"{e.text} from {e.sender}"
    out = flows.copy()
    out["icmp_unreachable"] = text
    return out, unmatched
