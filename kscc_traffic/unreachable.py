"""ICMP / ICMPv6 errors that say a datagram did not arrive, attached to the flow they quote:
destination unreachable, time exceeded in transit (a routing loop, a TTL too small) and
parameter problem (a router that drops what it cannot parse, RFC 9098: IPv6 extension headers).

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
    """The ICMP errors that mean the quoted datagram was dropped on its way, whose quoted datagram
    could be read: destination unreachable (ICMP 3, ICMPv6 1), time exceeded in transit (ICMP
    11/0, ICMPv6 3/0; not a fragment reassembly timeout) and parameter problem (ICMP 12, ICMPv6 4)."""
    c = packets.cols
    t, k = c["icmp_type"], c["icmp_code"]
    cand = np.nonzero(((c["proto"] == ICMP) & ((t == 3) | ((t == 11) & (k == 0)) | (t == 12)))
                      | ((c["proto"] == ICMP6) & ((t == 1) | ((t == 3) & (k == 0)) | (t == 4))))[0]
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


#: what ends the ``icmp_unreachable`` text of a port unreachable sent by the quoted datagram's
#: destination itself (ICMP 3/3, ICMPv6 1/4): the datagram arrived, nothing listens on the port
FROM_DESTINATION = ", the destination itself"
#: what a detail says of such an error (see :func:`what_it_means`)
NOT_LISTENING = ("the packet arrived, but nothing listens on that port there (the service is not running), or the "
                 "host's own firewall rejects it")


#: how the detail of such an error carrying a cloud server's own address goes on after the error
#: (a rule of the cloud's, opener ``client_to_cloud``, and an address not of a local network):
#: Kaspersky's cloud is nothing the customer can check, a firewall's reject rule answers in the
#: name of the address it blocks (newcomer 23 F3; the report advises the same)
CLOUD_ADDRESS = ", the cloud server's own address"
#: what a detail says of such an error instead of :data:`NOT_LISTENING` (see :func:`answered_by`;
#: report.readiness counts such flows by it)
CLOUD_FORGED = ("most likely forged by a firewall on the path (a reject rule answers in the name of the address it "
                "blocks); if no firewall rejects it, the cloud server refused the port")


def error_text(e: IcmpError) -> str:
    """The ``icmp_unreachable`` text of an error: what it is and who sent it (``port unreachable
    (3/3) from 198.51.100.10``), plus :data:`FROM_DESTINATION` for a port unreachable (ICMP 3/3,
    ICMPv6 1/4) sent by the quoted datagram's destination itself (a router's refusal, 3/13 or
    another sender, is not)."""
    own = e.sender == e.dst and (e.text.endswith("(3/3)") or e.text.endswith("(1/4)"))
    return f"{e.text} from {e.sender}{FROM_DESTINATION if own else ''}"


def what_it_means(text: str) -> str:
    """What an attached ICMP error (``icmp_unreachable`` text) tells beyond a firewall's refusal,
    for a detail: '' for destination unreachable from a router; :data:`NOT_LISTENING` for a port
    unreachable from the destination itself."""
    if text.endswith(FROM_DESTINATION):
        return ": " + NOT_LISTENING
    if "exceeded in transit" in text:
        return ": a routing loop, or a hop limit too small for the path, not a firewall's refusal"
    if "parameter problem" in text or "unrecognized Next Header" in text:
        return (": a router drops what it cannot parse (IPv6 extension headers, RFC 9098; IP "
                "options), not a firewall's refusal")
    return ""


def answered_by(text: str, cloud: bool = False) -> str:
    """The ``detail`` of a flow answered by an ICMP error (``icmp_unreachable`` text ``text``):
    ``answered by ICMP <text>`` and :func:`what_it_means`; with ``cloud`` (the flow's server is a
    cloud server's address: the caller knows its rule and address), a port unreachable from the
    destination itself (:data:`FROM_DESTINATION`) reads ``…from 203.0.113.10, the cloud server's own
    address: <CLOUD_FORGED>`` instead of :data:`NOT_LISTENING` (no service of the customer's to
    check there)."""
    if cloud and text.endswith(FROM_DESTINATION):
        return f"answered by ICMP {text[:-len(FROM_DESTINATION)]}{CLOUD_ADDRESS}: {CLOUD_FORGED}"
    return f"answered by ICMP {text}{what_it_means(text)}"


def from_destination(detail: str) -> bool:
    """Whether a flow's ``detail`` tells of a port unreachable sent from its destination's own
    address (:data:`NOT_LISTENING` or, for a cloud server, :data:`CLOUD_FORGED`)."""
    detail = str(detail)
    return NOT_LISTENING in detail or CLOUD_FORGED in detail


def attach(flows: pd.DataFrame, errors: list[IcmpError],
           matched: list[tuple[int, int]] | None = None) -> tuple[pd.DataFrame, list[IcmpError]]:
    """Fill ``icmp_unreachable`` of the flows the errors quote: the flow with the quoted 5-tuple on
    the error's VLAN stack, else on the only VLAN stack that has it (an error that came back on
    another VLAN: a mirror tagging one direction only, a router between VLANs).

    :param matched: when given, ``(packet row of the error, flow row it was attached to)`` is
        appended for every error that matched a flow.
    A flow whose ``cast`` is ``broadcast`` and that an error came back for from its own
    destination address becomes ``unicast``: no broadcast address sends, so that address is a
    host (a sent datagram on ``-i any`` taken for a subnet broadcast:
    :func:`kscc_traffic.flows._sent_cast`; break-it 20 F1).

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
    resp_h = flows["resp_h"].tolist()
    host = []                       # flows whose destination itself sent an error about them
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
            text[best] = error_text(e)
        if e.sender == resp_h[best]:
            host.append(best)
    out = flows.copy()
    out["icmp_unreachable"] = text
    if host and "cast" in out.columns:
        cast = out["cast"].to_numpy(dtype=object).copy()
        at = np.array(host)
        cast[at[cast[at] == "broadcast"]] = "unicast"
        out["cast"] = pd.Series(cast, index=out.index, dtype=out["cast"].dtype)
    return out, unmatched
