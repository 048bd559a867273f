"""Whose a port unreachable from a flow's destination is, told by its TTL (IPv6 hop limit).

A port unreachable (ICMP 3/3, ICMPv6 1/4) carrying the quoted datagram's destination address
(:data:`~kscc_traffic.unreachable.FROM_DESTINATION`) was sent either by that host's own stack
(nothing listens on the port, or its host firewall rejects it) or by a firewall on the path
answering in its name. The host's own stack sends it with the TTL (hop limit) of its other
packets, over the same path: when the error came with exactly the TTL of the first TCP packet
that is no reset nor SYN-ACK the same address sent before it (captured the same way: arriving,
or leaving the capturing host; :func:`kscc_traffic.inspect.address_ttls`), the text gets
:data:`OWN_TTL` (before ``FROM_DESTINATION``), and classify tells it as the server's own refusal
(:func:`kscc_traffic.unreachable.answered_by`). Only packets before the error are compared, so a
chunked or live analysis, which has the packets read so far, says the same as a whole-file one.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .capture.packets import Packets
from .inspect import AddressTtls, address_ttls, ttl_key_ver
from .unreachable import FROM_DESTINATION, OWN_TTL, IcmpError


def own_ttl_evidence(flows: pd.DataFrame, errors: list[IcmpError], matched: list[tuple[int, int]],
                     packets: Packets, prior=None) -> pd.DataFrame:
    """``flows`` with :data:`OWN_TTL` added to the ``icmp_unreachable`` text of each flow whose
    first delivery error is a port unreachable from its destination itself (the text's first part
    ends with :data:`~kscc_traffic.unreachable.FROM_DESTINATION`) whose TTL (hop limit) equals that
    of the first TCP packet that is no reset nor SYN-ACK its sender sent before it (captured the
    same way, ``l2_out``), among ``packets`` (the errors' rows index them) and ``prior`` (the
    same of earlier batches: an :class:`~kscc_traffic.inspect.AddressTtls`, a dict as it maps, or
    None). ``matched``: ``(error packet row, flow row)`` as :func:`kscc_traffic.unreachable.attach`
    gives it. Errors or packets without a known TTL (-1, or no ``ttl`` column) add nothing; the
    flows are returned as they are when nothing is added."""
    c = packets.cols
    if not matched or len(flows) == 0 or "ttl" not in c:
        return flows
    by_row = {e.row: e for e in errors}
    text = flows["icmp_unreachable"].to_numpy(dtype=object)
    todo = []
    seen = set()
    for row, f in matched:
        e = by_row.get(row)
        if e is None or f in seen or e.too_big or e.reassembly:
            continue
        first = str(text[f] or "").split("; ")[0]
        if not first.endswith(FROM_DESTINATION) or not first.startswith(e.text + " from " + e.sender):
            continue
        seen.add(f)
        if int(c["ttl"][row]) >= 0:
            todo.append((row, f, e))
    if not todo:
        return flows
    rows = np.array([r for r, _, _ in todo], np.int64)
    ver = ttl_key_ver(c["ipver"][rows], c["l2_out"][rows] if "l2_out" in c else None)
    hi, lo = c["src_hi"][rows].astype(np.uint64), c["src_lo"][rows].astype(np.uint64)
    # (the earlier of this batch's and the earlier batches' first packet of each sender)
    here, before = address_ttls(c), AddressTtls.of(prior)
    out = text.copy()
    changed = False
    for k, (row, f, e) in enumerate(todo):
        ref = None
        for table in (here, before):
            i = int(table.find(ver[k:k + 1], hi[k:k + 1], lo[k:k + 1])[0])
            if i >= 0 and (ref is None or int(table.ts[i]) < ref[0]):
                ref = (int(table.ts[i]), int(table.ttl[i]))
        ttl = int(c["ttl"][row])
        if ref is None or ref[0] >= e.ts_ns or ref[1] != ttl:
            continue
        parts = str(out[f]).split("; ")
        field = "hop limit" if int(c["ipver"][row]) == 6 else "TTL"
        parts[0] = parts[0][:-len(FROM_DESTINATION)] + OWN_TTL.format(field=field, ttl=ttl) + FROM_DESTINATION
        out[f] = "; ".join(parts)
        changed = True
    if not changed:
        return flows
    res = flows.copy()
    res["icmp_unreachable"] = out
    return res
