"""ICMP / ICMPv6 errors that say a datagram did not arrive, attached to the flow they quote:
destination unreachable, time exceeded in transit (a routing loop, a TTL too small) and
parameter problem (a router that drops what it cannot parse, RFC 9098: IPv6 extension headers);
and those that ask for smaller packets (ICMP fragmentation needed 3/4, ICMPv6 packet too big:
path MTU discovery), which say the destination is reachable: informational (:func:`delivery_error`
leaves them out of what classify judges; :func:`too_big_note` says when the sender ignored them).

An error message quotes the IP header and the first 8+ bytes of the datagram that caused it
(RFC 792, RFC 1812 §4.3.2.3, RFC 4443 §3.1). We read the quoted 5-tuple and attach the error to
the latest flow with that 5-tuple (either direction) that started before the error arrived. A
quote of a tunnel's packet (IP-in-IP, 6in4, GRE) is read for its inner packet, as the decoder
keys the flow by it (:func:`kscc_traffic.protocols.icmp.quoted_datagram`); a quote cut before
the ports is attached to the one flow of its protocol between its two addresses open then.
"""
from __future__ import annotations

from dataclasses import dataclass

import ipaddress
import re

import numpy as np
import pandas as pd

from .addresses import endpoint_text
from .capture.packets import Packets
from .flows import ICMP, ICMP6, address_text, vlan_key
from .protocols import icmp

#: seconds an error may precede the flow's first packet (clock jitter between interfaces)
SLACK_NS = 1_000_000_000
#: a TTL / hop limit at most this on the first packet the capture saw of a flow's side makes a
#: time exceeded quoting it a traceroute probe's (traceroute, tracert, mtr, tcptraceroute stop
#: at 30 hops by default); a host's own packets start at 64, 128 or 255
TRACEROUTE_MAX_TTL = 30


@dataclass
class IcmpError:
    """One ICMP or ICMPv6 error that quotes a dropped datagram (:func:`find_errors`): who sent it
    and when (``ts_ns`` epoch ns), the quoted datagram's 5-tuple as the quote gives it (``src``,
    ``dst`` address texts; ports -1 when the quote stops before them) and what the message
    says (``text``), matched to its flow by :func:`attach`."""
    row: int          # packet row
    ts_ns: int
    sender: str       # who sent the ICMP message (router or host)
    vlan: int
    proto: str
    src: str
    dst: str
    sport: int
    dport: int        # -1 (and sport -1): the quote stops before the ports
    text: str         # e.g. "administratively prohibited (3/13)"
    too_big: bool = False   # path MTU discovery (ICMP 3/4, ICMPv6 2): informational
    # a fragment reassembly timeout (ICMP 11/1, ICMPv6 3/1): the quoted datagram's first fragment
    # arrived, not all the others; informational too (the flow is judged by its own packets)
    reassembly: bool = False
    length: int = -1        # the quoted datagram's IP length from its header (-1 unknown)
    fragment: bool = False  # the quote is of a later fragment (no transport header: ports -1)
    seq: int = -1           # the quoted TCP segment's sequence number (-1 unknown, not TCP)
    # the quote cut inside its IP header (a small snaplen): the destination's first bytes (dst ''
    # until attach matches a flow, then that flow's address); None: the quote's header is whole
    dst_prefix: bytes | None = None


def find_errors(packets: Packets) -> list[IcmpError]:
    """The ICMP errors that mean the quoted datagram was dropped on its way, whose quoted datagram
    could be read: destination unreachable (ICMP 3, ICMPv6 1), time exceeded in transit (ICMP
    11/0, ICMPv6 3/0) and parameter problem (ICMP 12, ICMPv6 4); and those of path MTU discovery
    (ICMP 3/4, ICMPv6 packet too big 2: ``too_big``) and a fragment reassembly timeout (ICMP 11/1,
    ICMPv6 3/1: ``reassembly``; its sender got the quoted first fragment, not all the others,
    RFC 792, RFC 8200 §4.5), which say no more than that. A quote of a
    TCP or UDP datagram cut before its ports (or of a non-first fragment) gives ports -1; one cut
    inside the quoted IP header after the source address (:func:`~kscc_traffic.protocols.icmp.cut_quote`)
    gives ``dst`` '' and ``dst_prefix``, the destination's bytes kept (:func:`attach`)."""
    c = packets.cols
    t, k = c["icmp_type"], c["icmp_code"]
    cand = np.nonzero(((c["proto"] == ICMP) & ((t == 3) | ((t == 11) & (k <= 1)) | (t == 12)))
                      | ((c["proto"] == ICMP6) & ((t == 1) | (t == 2) | ((t == 3) & (k <= 1)) | (t == 4))))[0]
    if len(cand) == 0:
        return []
    senders = address_text(c["src_hi"][cand], c["src_lo"][cand], c["ipver"][cand] == 6)
    out = []
    for j, i in enumerate(cand.tolist()):
        ver = int(c["ipver"][i])
        q = icmp.quoted_datagram(packets.payload(i), ver)
        if q is None:
            part = icmp.cut_quote(packets.payload(i), ver)
            if part is not None and part[1] in (6, 17):
                t, code = int(c["icmp_type"][i]), int(c["icmp_code"][i])
                out.append(IcmpError(i, int(c["ts_ns"][i]), str(senders[j]), int(c["vlan"][i]),
                                     "tcp" if part[1] == 6 else "udp", part[0], "", -1, -1,
                                     f"{icmp.describe(ver, t, code)} ({t}/{code})", icmp.is_too_big(ver, t, code),
                                     icmp.is_reassembly_timeout(ver, t, code), int(part[2]), dst_prefix=bytes(part[3])))
            continue
        if q.proto not in (6, 17):
            continue
        cut = q.sport is None or q.dport is None
        t, code = int(c["icmp_type"][i]), int(c["icmp_code"][i])
        out.append(IcmpError(i, int(c["ts_ns"][i]), str(senders[j]), int(c["vlan"][i]),
                             "tcp" if q.proto == 6 else "udp", q.src, q.dst, -1 if cut else int(q.sport),
                             -1 if cut else int(q.dport), f"{icmp.describe(ver, t, code)} ({t}/{code})",
                             icmp.is_too_big(ver, t, code), icmp.is_reassembly_timeout(ver, t, code), int(q.length),
                             bool(q.fragment), int(q.seq)))
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


#: what an ``icmp_unreachable`` text says after a port unreachable's sender (before
#: :data:`FROM_DESTINATION`; :func:`kscc_traffic.icmpttl.own_ttl_evidence`) when it came with its sender's own TTL
#: (hop limit): {field} "TTL" or "hop limit", {ttl} the value
OWN_TTL = " with its own {field} ({ttl}, as its earlier packets)"
#: :data:`OWN_TTL` as found in a text
OWN_TTL_RX = re.compile(r" with its own (?:TTL|hop limit) \(\d+, as its earlier packets\)(?=, )")
#: what a detail says of a port unreachable carrying a cloud server's own address that came with
#: that server's own TTL (:data:`OWN_TTL`) instead of :data:`CLOUD_FORGED` (see :func:`answered_by`;
#: report.readiness counts such flows by it): the server's own stack refused the port
CLOUD_OWN = ("most likely the cloud server's own answer: nothing listens on that port there, or its host firewall "
             "rejects it (a firewall on the path that copies the server's {field} looks the same)")


#: what an ``icmp_unreachable`` text says after the sender of an error whose quote stopped before
#: the ports (matched by its addresses and protocol: :func:`attach`)
NO_PORTS = " (its quote stops before the ports: the only {proto} flow between these addresses then)"
#: the same for an error whose quote the capture cut inside the quoted IP header, after its source
#: address (a small snaplen): matched by that source, the protocol and the destination's bytes kept
HEADER_CUT = (" (its quote is cut by the capture inside the quoted IP header, {kept} of the destination address's "
              "{size} bytes kept, no ports: the only {proto} flow from this source to such an address then)")
#: the same for an error quoting a fragment other than the first (which carries no ports: it is
#: not cut, and a firewall may drop such fragments alone)
LATER_FRAGMENT = (" (it quotes a later fragment of a datagram, which carries no ports: the only {proto} flow "
                  "between these addresses then)")


#: what ends the ``icmp_unreachable`` text of a port unreachable (ICMP 3/3, ICMPv6 1/4) sent by the
#: flow's own originator about a datagram of the responder's (a DNS client that asked two
#: resolvers, took the first answer and refuses the slower one's: newcomer 32 F1): the server
#: answered, the client no longer listened; it says nothing of the server being unreachable
#: (:func:`delivery_error` leaves it out, classify judges the flow by its answer)
FROM_ORIGINATOR = (", sent by the client itself, refusing the server's late answer (the client had stopped "
                   "listening)")


def error_text(e: IcmpError, reverse: bool = False) -> str:
    """The ``icmp_unreachable`` text of an error: what it is and who sent it (``port unreachable
    (3/3) from 198.51.100.10``), plus :data:`NO_PORTS` for a quote cut before the ports (or
    :data:`LATER_FRAGMENT` for a quote of a fragment other than the first), plus
    :data:`FROM_DESTINATION` for a port unreachable (ICMP 3/3, ICMPv6 1/4) sent by the quoted
    datagram's destination itself (a router's refusal, 3/13 or another sender, is not), or
    :data:`FROM_ORIGINATOR` instead when ``reverse`` (the quoted datagram went from the flow's
    responder to its originator: the destination that refused it is the flow's own client)."""
    own = e.sender == e.dst and (e.text.endswith("(3/3)") or e.text.endswith("(1/4)"))
    cut = (LATER_FRAGMENT if e.fragment else NO_PORTS).format(proto=e.proto.upper()) if e.sport < 0 else ""
    if e.dst_prefix is not None:
        cut = HEADER_CUT.format(proto=e.proto.upper(), kept=len(e.dst_prefix), size=4 if ":" not in e.src else 16)
    tail = (FROM_ORIGINATOR if reverse else FROM_DESTINATION) if own else ""
    return f"{e.text} from {e.sender}{cut}{tail}"


#: an ``icmp_unreachable`` part that is path MTU discovery's (ICMP 3/4, ICMPv6 2), not an
#: error that the datagram did not arrive
TOO_BIG_PART = re.compile(r"^(?:fragmentation needed and DF set \(3/4\)|packet too big \(2/\d+\)) from ")
#: how an ``icmp_unreachable`` text goes on after a path-MTU error whose quoted datagram's sender
#: went on sending datagrams as large after it (:func:`packet_evidence`); {side}: client or server
KEPT_SENDING = ", after which the {side} still sent {size}-byte packets"
_KEPT = re.compile(r", after which the (client|server) still sent (\d+)-byte packets$")
#: how an ``icmp_unreachable`` text goes on after a time exceeded quoting a traceroute probe
#: (:func:`packet_evidence`; after :data:`NO_PORTS` or :data:`LATER_FRAGMENT` when the quote has
#: no ports)
PROBE = ", sent with {field} {ttl} (a traceroute probe)"
_PROBE = re.compile(r"^((?:TTL|hop limit) exceeded in transit \((?:11|3)/0\)) from (\S+)"
                    r"(?: \([^()]*\))?, sent with (TTL|hop limit) (\d+) \(a traceroute probe\)$")


#: an ``icmp_unreachable`` part that is a fragment reassembly timeout (ICMP 11/1, ICMPv6 3/1): its
#: sender had the first fragment of the quoted datagram, not all the others (:func:`reassembly_note`)
REASSEMBLY_PART = re.compile(r"^fragment reassembly time exceeded \((?:11|3)/1\) from ")


def _informational(part: str) -> bool:
    return bool(TOO_BIG_PART.match(part) or REASSEMBLY_PART.match(part))


def delivery_error(text: str) -> str:
    """The part of an ``icmp_unreachable`` text that says the datagram did not arrive (what
    classify judges), without any path-MTU error (:data:`TOO_BIG_PART`: it asks for smaller
    packets, the destination is reachable), fragment reassembly timeout (:data:`REASSEMBLY_PART`:
    the destination had the datagram's first fragment; told by :func:`reassembly_note`) nor a
    client's refusal of the server's late answer (:data:`FROM_ORIGINATOR`: the server answered);
    '' when there is none."""
    text = str(text or "")
    if "; " not in text and not _informational(text) and not text.endswith(FROM_ORIGINATOR):
        return text
    return "; ".join(p for p in text.split("; ") if not _informational(p) and not p.endswith(FROM_ORIGINATOR))


#: what :func:`reassembly_note` says (report.mtu_holed advises the path's MTU and fragments for it)
REASSEMBLY_NOTE = "IP fragments were lost on the way"


def reassembly_note(text: str) -> str:
    """A sentence for a flow's detail when its ``icmp_unreachable`` text holds a fragment
    reassembly timeout (:data:`REASSEMBLY_PART`): its sender, the quoted datagram's destination,
    had the datagram's first fragment but not all the others in its reassembly time (RFC 792,
    RFC 8200 §4.5): :data:`REASSEMBLY_NOTE` after the capture point, whatever the capture shows
    of them; '' otherwise."""
    part = next((p for p in str(text or "").split("; ") if REASSEMBLY_PART.match(p)), "")
    if not part:
        return ""
    return (f"ICMP {part}: it received the first fragment of a datagram of this flow, not all the others, so "
            f"{REASSEMBLY_NOTE} (a firewall or path that drops IP fragments, RFC 7872; the datagrams fragmented "
            "for a tunnel or link with a smaller MTU)")


#: what :func:`too_big_note` says of the packets its sender still sent (the sign, in a flow's
#: detail, of a path-MTU error ignored: report advises :data:`kscc_traffic.report.MTU_FIX` for it)
TOO_BIG_IGNORED = "(as large as the one it quoted)"


def too_big_note(text: str) -> str:
    """A sentence for a flow's detail when its ``icmp_unreachable`` text holds a path-MTU error
    (ICMP 3/4, ICMPv6 packet too big) after which the quoted datagram's sender still sent
    datagrams as large (:data:`KEPT_SENDING`): the error reached the capture point but not the
    sender's TCP/IP stack, or it ignored it; '' otherwise."""
    for part in str(text or "").split("; "):
        m = _KEPT.search(part) if TOO_BIG_PART.match(part) else None
        if m:
            v6 = part.startswith("packet too big")
            # (RFC 4890 is ICMPv6 filtering only; IPv4's path MTU discovery is RFC 1191: newcomer 33 F2)
            what = ("ICMPv6 type 2 (RFC 4890 §4.3.1: it must not be filtered; IPv6 path MTU discovery, RFC 8201, "
                    "depends on it)" if v6 else
                    "ICMP type 3 code 4 (path MTU discovery, RFC 1191, depends on it)")
            return (f"ICMP {part[:m.start()]} reached the capture point, yet the {m.group(1)} still sent "
                    f"{m.group(2)}-byte packets after it {TOO_BIG_IGNORED}: a host firewall on the "
                    f"{m.group(1)} dropping {what}, or an MTU/MSS to "
                    "fix on a tunnel or link on the path (lower the interface MTU, or clamp the TCP MSS)")
    return ""


#: how the hint of a path-MTU black hole ends (:data:`kscc_traffic.inspect.MTU_HINT`): the path's
#: ICMP errors asking for smaller packets filtered (:func:`mtu_hint` says so otherwise)
MTU_FILTERED = " (ICMP 'fragmentation needed'/'packet too big' filtered)"
#: how :func:`mtu_hint` ends that hint when such an error of the flow's was captured
MTU_SEEN = " (ICMP {part} was captured: not filtered before the capture point)"


def mtu_hint(hint: str, text: str) -> str:
    """A flow's path-MTU black hole hint (``hint``, :data:`kscc_traffic.inspect.MTU_HINT`) told
    with its ``icmp_unreachable`` text: when that holds a path-MTU error (:data:`TOO_BIG_PART`),
    the hint ends :data:`MTU_SEEN` naming it instead of :data:`MTU_FILTERED` (the error reached the
    capture point), or with neither when its sender still sent packets as large (:func:`too_big_note`
    says it all then);
    ``hint`` unchanged otherwise ('' for a missing one)."""
    hint = hint if isinstance(hint, str) else ""
    part = next((p for p in str(text or "").split("; ") if TOO_BIG_PART.match(p)), "")
    if not part or not hint.endswith(MTU_FILTERED):
        return hint
    if _KEPT.search(part):
        # (its sender still sent packets as large: too_big_note, which follows in the detail,
        # names the error and says it reached the capture point; not said twice, break-it s62 #8)
        return hint[:-len(MTU_FILTERED)]
    return hint[:-len(MTU_FILTERED)] + MTU_SEEN.format(part=part)


def traceroute_probe(text: str) -> str:
    """The detail of a flow whose ``icmp_unreachable`` text is a time exceeded quoting a
    traceroute probe (:data:`PROBE`: its first packet was sent with a TTL / hop limit of at most
    :data:`TRACEROUTE_MAX_TTL`): it shows the path, not whether the port is open; '' otherwise."""
    m = _PROBE.match(delivery_error(text))
    if not m:
        return ""
    return (f"a traceroute probe: its {m.group(3)} ({m.group(4)}) ran out at {m.group(2)} (ICMP {m.group(1)}): "
            "it shows the path, not whether the port is open")


#: ICMP errors that refuse nothing (no firewall rule answered: the packet could not be
#: delivered as it was sent), by kind: (how a flow's detail names it, the words for it, what
#: it means in a flow's detail, what to change). The checklist gives their advice instead of
#: opening the port (report.readiness); a refusal (administratively prohibited 3/9, 3/10, 3/13,
#: 1/1; a port unreachable from a router) and network/host unreachable (routing or a firewall's
#: reject: report.ROUTE_ICMP) are not among them, nor protocol unreachable (3/2: most likely a
#: reject rule's, :data:`REJECTS`)
NOT_REFUSALS: dict[str, tuple[re.Pattern, str, str, str]] = {
    "loop": (re.compile(r"by ICMP (?:TTL|hop limit) exceeded in transit \((?:11|3)/0\)"),
             "time exceeded in transit",
             "a routing loop, or a hop limit too small for the path, not a firewall's refusal",
             "the packet's TTL / hop limit ran out on the way: a routing loop (routers passing it back and forth: a "
             "traceroute to the server shows the same hops again and again) or a TTL / hop limit set too small on "
             "the agent's host: fix the routes between the agent and the server (or the host's default hop limit)"),
    "headers": (re.compile(r"by ICMP (?:parameter problem \((?:12|4)/\d+\)|headers too long \(1/8\))"),
                "parameter problem (or headers too long)",
                "a router drops what it cannot parse (IPv6 extension headers, RFC 9098; IP options), not a "
                "firewall's refusal",
                "a router could not process the packet's headers: IPv6 extension headers (hop-by-hop or destination "
                "options, routing or fragment headers, or a header chain too long: many routers and firewalls drop "
                "them, RFC 9098, RFC 8883) or IPv4 options: find what adds them on the agent's side (a VPN, IPsec or "
                "security client, a host setting) and stop it, or let the router that answered pass them"),
    "source": (re.compile(r"by ICMP (?:beyond scope of source address \(1/2\)|source address failed "
                          r"ingress/egress policy \(1/5\))"),
               "errors refusing the agent's source address (beyond scope 1/2, ingress/egress policy 1/5)",
               "the agent's source address is refused on the path (RFC 4443 §3.1: an address beyond its scope, or "
               "one an ingress/egress filter does not accept), not the port",
               "a router refused the agent's source address (RFC 4443 §3.1): one beyond its scope (a link-local or "
               "unique local IPv6 address sent towards the Internet) or one its ingress/egress filter does not "
               "accept (BCP 38: an address of another prefix, a stale prefix after renumbering, the wrong uplink): "
               "check the agent's addresses and source address selection (a global address of this network's "
               "prefix)"),
    "reject_route": (re.compile(r"by ICMP reject route to destination \(1/6\)"),
                     "reject route to destination",
                     "a router holds a reject route for the server's prefix, not a firewall rule for the port",
                     "a router holds a reject (null) route for the server's prefix: check that router's routes "
                     "for the server's prefix (a route left from a block list or an old network)"),
    "precedence": (re.compile(r"by ICMP (?:host precedence violation \(3/14\)|precedence cutoff in effect "
                              r"\(3/15\))"),
                   "precedence errors (host precedence violation 3/14, precedence cutoff 3/15)",
                   "a router refuses the IP precedence the packet was sent with (the top 3 bits of its ToS / DSCP "
                   "byte, RFC 1812 §5.3.3.3), not the port",
                   "a router refused the IP precedence the agent's packets carry (RFC 1812 §5.3.3.3: a precedence "
                   "not allowed for this source, destination and port, 3/14, or one below the cutoff the network "
                   "requires, 3/15): check the DSCP / ToS marking the agent's host gives them (a QoS policy, a VPN "
                   "or security client) and the precedence policy of the router that answered"),
    "source_route": (re.compile(r"by ICMP (?:error in source routing header \(1/7\)|source route failed "
                                r"\(3/5\))"),
                     "source route errors (error in source routing header 1/7, source route failed 3/5)",
                     "the packet's source route (an IPv6 routing header, an IPv4 source route option) could not "
                     "be followed, not a firewall's refusal",
                     "the packet carried a source route (an IPv6 routing header, an IPv4 source route option) that "
                     "a router could not follow: find what adds it on the agent's side (a VPN or SD-WAN client, "
                     "segment routing) and stop it"),
}


#: ICMP errors that are most likely a firewall's reject rule although their words say otherwise,
#: by kind, with the same layout as :data:`NOT_REFUSALS`: the checklist adds their advice to
#: opening the port (report.readiness). Protocol unreachable (3/2, RFC 1122 §3.2.2.1) says the
#: destination host carries no such transport protocol: no host that serves a TCP or UDP port
#: sends it for TCP or UDP, a reject rule set to answer with it does (iptables ``REJECT
#: --reject-with icmp-proto-unreachable``)
REJECTS: dict[str, tuple[re.Pattern, str, str, str]] = {
    "protocol": (re.compile(r"by ICMP protocol unreachable \(3/2\)"),
                 "protocol unreachable (3/2)",
                 "no host that serves the port sends it for TCP or UDP: most likely a firewall's reject rule "
                 "answering with it (such as iptables --reject-with icmp-proto-unreachable)",
                 "a host that serves the port never sends it for TCP or UDP: most likely a firewall's reject rule "
                 "answering with it (such as iptables REJECT --reject-with icmp-proto-unreachable) on the device "
                 "that sent it or behind it: that rule is the one to change"),
}


def icmp_kind(detail: str) -> str:
    """The kind (a key of :data:`NOT_REFUSALS` or of :data:`REJECTS`) of the ICMP error a flow's
    ``detail`` tells of, '' when it tells of none such."""
    kind = not_refusal(detail)
    if kind or "by ICMP" not in str(detail):
        return kind
    return next((k for k, (rx, *_rest) in REJECTS.items() if rx.search(str(detail))), "")


def not_refusal(detail: str) -> str:
    """The kind (a key of :data:`NOT_REFUSALS`) of the ICMP error a flow's ``detail`` tells of,
    '' when it tells of none such."""
    detail = str(detail)
    if "by ICMP" not in detail:
        return ""
    return next((k for k, (rx, *_rest) in NOT_REFUSALS.items() if rx.search(detail)), "")


def what_it_means(text: str) -> str:
    """What an attached ICMP error (``icmp_unreachable`` text) tells beyond a firewall's refusal,
    for a detail: '' for destination unreachable from a router; :data:`NOT_LISTENING` for a port
    unreachable from the destination itself; for an error that refuses nothing its meaning
    (:data:`NOT_REFUSALS`), for one most likely a firewall's in other words its meaning too
    (:data:`REJECTS`)."""
    if text.endswith(FROM_DESTINATION):
        return ": " + NOT_LISTENING
    kind = icmp_kind("by ICMP " + text)
    if kind:
        return ": " + {**NOT_REFUSALS, **REJECTS}[kind][2]
    if "unrecognized Next Header" in text:
        return ": " + NOT_REFUSALS["headers"][2]
    return ""


def answered_by(text: str, cloud: bool = False) -> str:
    """The ``detail`` of a flow answered by an ICMP error (``icmp_unreachable`` text ``text``):
    ``answered by ICMP <text>`` and :func:`what_it_means`; with ``cloud`` (the flow's server is a
    cloud server's address: the caller knows its rule and address), a port unreachable from the
    destination itself (:data:`FROM_DESTINATION`) reads ``…from 203.0.113.10, the cloud server's own
    address: <CLOUD_FORGED>`` instead of :data:`NOT_LISTENING` (no service of the customer's to
    check there); when the error came with the server's own TTL (:data:`OWN_TTL`), :data:`CLOUD_OWN`
    instead of :data:`CLOUD_FORGED` (the server's own stack refused the port)."""
    if cloud and text.endswith(FROM_DESTINATION):
        m = OWN_TTL_RX.search(text)
        means = CLOUD_OWN.format(field="hop limit" if "own hop limit" in m.group(0) else "TTL") if m else CLOUD_FORGED
        return f"answered by ICMP {text[:-len(FROM_DESTINATION)]}{CLOUD_ADDRESS}: {means}"
    return f"answered by ICMP {text}{what_it_means(text)}"


def attach(flows: pd.DataFrame, errors: list[IcmpError],
           matched: list[tuple[int, int]] | None = None) -> tuple[pd.DataFrame, list[IcmpError]]:
    """Fill ``icmp_unreachable`` of the flows the errors quote: the flow with the quoted 5-tuple on
    the error's VLAN stack (the flows' internal ``vlan_stack`` column, else their ``vlan`` and
    ``inner_vlan``: :func:`kscc_traffic.flows.vlan_key`), else on the only VLAN stack that has
    it (an error that came back on another VLAN: a mirror tagging one direction only, a router
    between VLANs). An error whose
    quote stops before the ports (ports -1) goes to the one flow of its protocol between its two
    addresses (either direction, same VLAN rule) open at its time (from :data:`SLACK_NS` before
    its first packet to :data:`SLACK_NS` after its last), if there is exactly one (:data:`NO_PORTS`
    in its text). A flow's text is its first error that says the datagram did not arrive
    (:func:`error_text`), then, after ``"; "``, its first path-MTU error (``too_big``), if any, and
    after that its first fragment reassembly timeout (``reassembly``), if any.

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
    pairs: dict[tuple, list[int]] = {}
    vlans = _vlans(flows)
    for f, key in enumerate(zip(vlans, flows["proto"].tolist(), flows["orig_h"].tolist(),
                                flows["orig_p"].tolist(), flows["resp_h"].tolist(),
                                flows["resp_p"].tolist())):
        v, pr, oh, op, rh, rp = key
        index.setdefault((v, pr, oh, op, rh, rp), []).append(f)
        index.setdefault((v, pr, rh, rp, oh, op), []).append(f)
        any_vlan.setdefault((pr, oh, op, rh, rp), []).append(f)
        any_vlan.setdefault((pr, rh, rp, oh, op), []).append(f)
        pairs.setdefault((pr, oh, rh), []).append(f)
        if oh != rh:
            pairs.setdefault((pr, rh, oh), []).append(f)
    first_ts = flows["ts_ns"].to_numpy()
    text = flows["icmp_unreachable"].to_numpy(dtype=object).copy()
    too_big = [""] * len(flows)
    reassembly = [""] * len(flows)
    resp_h = flows["resp_h"].tolist()
    resp_p = flows["resp_p"].tolist()
    orig_h, orig_p = flows["orig_h"].tolist(), flows["orig_p"].tolist()
    host = []                       # flows whose destination itself sent an error about them
    unmatched = []
    for e in errors:
        if e.dst_prefix is not None:
            cands = _open_between(flows, [f for (pr, a, b), fs in pairs.items() if pr == e.proto and a == e.src
                                          and _starts(b, e.dst_prefix) for f in fs], vlans, e)
            if len(cands) == 1:
                e.dst = orig_h[cands[0]] if orig_h[cands[0]] != e.src else resp_h[cands[0]]
        elif e.sport < 0:
            cands = _open_between(flows, pairs.get((e.proto, e.src, e.dst), []), vlans, e)
        else:
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
        if e.too_big or e.reassembly:
            info = too_big if e.too_big else reassembly
            if not info[best]:
                info[best] = error_text(e)
            continue
        if not text[best]:
            # (a quote of the responder's datagram to the originator, refused by the originator:
            # the flow's own client refusing an answer; the quoted source is the responder)
            reverse = ((e.src, e.dst) == (resp_h[best], orig_h[best])
                       and ((e.sport, e.dport) == (resp_p[best], orig_p[best]) if e.sport >= 0 else e.src != e.dst))
            text[best] = error_text(e, reverse)
        if e.sender == resp_h[best]:
            host.append(best)
    for info in (too_big, reassembly):
        for f, t in enumerate(info):
            if t:
                text[f] = f"{text[f]}; {t}" if text[f] else t
    out = flows.copy()
    out["icmp_unreachable"] = text
    if host and "cast" in out.columns:
        cast = out["cast"].to_numpy(dtype=object).copy()
        at = np.array(host)
        cast[at[cast[at] == "broadcast"]] = "unicast"
        out["cast"] = pd.Series(cast, index=out.index, dtype=out["cast"].dtype)
    return out, unmatched


def _starts(address, prefix: bytes) -> bool:
    """Whether the address text ``address`` (IPv4 or IPv6) begins with the bytes ``prefix``."""
    try:
        return ipaddress.ip_address(str(address)).packed.startswith(prefix)
    except ValueError:
        return False


def _vlans(flows: pd.DataFrame) -> list[int]:
    """Each flow's VLAN stack as the errors' ``vlan`` holds it (the packets' ``vlan`` column):
    :func:`kscc_traffic.flows.vlan_key` (0 for a table without VLAN columns)."""
    key = vlan_key(flows)
    return key.tolist() if key is not None else [0] * len(flows)


def _open_between(flows: pd.DataFrame, cands: list[int], vlans: list, e: IcmpError) -> list[int]:
    """Of ``cands`` (flows of the error's protocol between its two addresses), the one open at
    the error's time on its VLAN stack (else on the only VLAN stack that has such flows), as a
    list: [] when none is, or more than one (the quote cannot tell them apart)."""
    same = [f for f in cands if vlans[f] == e.vlan]
    if not same and len({vlans[f] for f in cands}) == 1:
        same = cands
    ts = flows["ts_ns"].to_numpy()
    dur = flows["duration"].to_numpy(dtype=float) if "duration" in flows.columns else np.zeros(len(flows))
    open_ = []
    for f in same:
        start = int(ts[f])
        d = float(dur[f])
        end = start + int(d * 1e9) if np.isfinite(d) and d > 0 else start
        if start - SLACK_NS <= e.ts_ns <= end + SLACK_NS:
            open_.append(f)
    return open_ if len(open_) == 1 else []


def _resent(seq: int, quoted: int) -> bool:
    """Whether a TCP segment starting at ``seq`` sends the byte at ``quoted`` (a quoted segment's
    sequence number) again: it starts at or before it (modulo 2**32, RFC 9293 §3.4); True when
    ``quoted`` is unknown (-1)."""
    return quoted < 0 or ((quoted - seq) & 0xFFFFFFFF) < 0x80000000


def packet_evidence(flows: pd.DataFrame, errors: list[IcmpError], matched: list[tuple[int, int]],
                    packets: Packets, pkt_flow: np.ndarray) -> pd.DataFrame:
    """``flows`` with the ``icmp_unreachable`` texts :func:`attach` made told more from the
    flows' own packets (``pkt_flow``: flow row per packet row, -1 none; ``matched`` as
    :func:`attach` gives it):

    - a path-MTU error (ICMP 3/4, ICMPv6 packet too big) after which the quoted datagram's sender
      sent its next datagram (TCP: its next segment with payload, which must send the quoted
      segment's first byte again, :attr:`IcmpError.seq`: new data may have left the sender before
      the error reached it when the capture is taken on the path) as large as the quoted one or
      larger (:attr:`IcmpError.length`, the quote's IP length, which the MTU announced is below)
      gets :data:`KEPT_SENDING` (:func:`too_big_note` tells it in the detail);
    - a time exceeded in transit (ICMP 11/0, ICMPv6 3/0) that is the flow's error, whose quoted
      side's first packet was captured with a TTL / hop limit from 1 to :data:`TRACEROUTE_MAX_TTL`,
      gets :data:`PROBE` (:func:`traceroute_probe`: a traceroute probe, not a refusal).

    Reads only packets a chunked or live analysis keeps of a flow (each side's first packet, and
    each side's first payload packet after an ICMP error attached to it)."""
    if not matched or len(flows) == 0:
        return flows
    by_row = {e.row: e for e in errors}
    c = packets.cols
    orig_h, orig_p = flows["orig_h"].tolist(), flows["orig_p"].tolist()
    proto = flows["proto"].tolist()
    firsts: dict[int, IcmpError] = {}
    ptbs: dict[int, list[IcmpError]] = {}
    for row, f in matched:
        e = by_row.get(row)
        if e is None:
            continue
        if e.too_big:
            ptbs.setdefault(f, []).append(e)
        elif not e.reassembly and f not in firsts:
            firsts[f] = e
    firsts = {f: e for f, e in firsts.items() if e.text.endswith(("(11/0)", "(3/0)")) and "exceeded" in e.text}
    involved = sorted(set(firsts) | set(ptbs))
    if not involved:
        return flows
    at = np.flatnonzero(np.isin(pkt_flow, involved) & (c["proto"] != ICMP) & (c["proto"] != ICMP6))
    at = at[np.lexsort((c["ts_ns"][at], pkt_flow[at]))]
    rows_of: dict[int, list[int]] = {}
    for r, f in zip(at.tolist(), pkt_flow[at].tolist()):
        rows_of.setdefault(f, []).append(r)
    src_txt = address_text(c["src_hi"][at], c["src_lo"][at], c["ipver"][at] == 6) if len(at) else []
    src_of = dict(zip(at.tolist(), (str(x) for x in src_txt)))
    text = flows["icmp_unreachable"].to_numpy(dtype=object).copy()

    def side_of(f: int, e: IcmpError) -> str:
        return "client" if e.src == orig_h[f] and (e.sport < 0 or e.sport == orig_p[f]) else "server"

    def from_side(f: int, r: int, side: str) -> bool:
        return (src_of[r] == orig_h[f] and int(c["sport"][r]) == orig_p[f]) == (side == "client")

    for f in involved:
        rows = rows_of.get(f, [])
        parts = str(text[f]).split("; ")
        e = firsts.get(f)
        if e is not None and rows:
            side = side_of(f, e)
            first = next((r for r in rows if from_side(f, r, side)), None)
            ttl = int(c["ttl"][first]) if first is not None and "ttl" in c else -1
            if 1 <= ttl <= TRACEROUTE_MAX_TTL and not TOO_BIG_PART.match(parts[0]):
                field = "hop limit" if e.text.endswith("(3/0)") else "TTL"
                parts[0] += PROBE.format(field=field, ttl=ttl)
        for e in sorted(ptbs.get(f, []), key=lambda x: x.ts_ns):
            if e.length <= 0 or not rows:
                continue
            side = side_of(f, e)
            nxt = next((r for r in rows if c["ts_ns"][r] > e.ts_ns and from_side(f, r, side)
                        and (proto[f] != "tcp" or c["payload_len"][r] > 0)), None)
            if nxt is not None and proto[f] == "tcp" and not _resent(int(c["seq"][nxt]), e.seq):
                continue    # new data, maybe sent before the error reached the sender (capture mid-path)
            if nxt is not None and int(c["ip_len"][nxt]) >= e.length:
                parts[-1] += KEPT_SENDING.format(side=side, size=int(c["ip_len"][nxt]))
                break
        text[f] = "; ".join(parts)
    out = flows.copy()
    out["icmp_unreachable"] = text
    return out


#: what an ``icmp_unreachable`` text says after the sender of an error whose quote carries another
#: source than the flow's originator, the NAT's outside address (:func:`attach_nat_quotes`)
NAT_QUOTE = (", its quote carrying the source {quoted} instead of the client's {client}: a NAT's outside "
             "address (the NAT passed the error back without translating the quoted header)")


def attach_nat_quotes(flows: pd.DataFrame, errors: list[IcmpError], packets: Packets,
                      matched: list[tuple[int, int]] | None = None) -> tuple[pd.DataFrame, list[IcmpError]]:
    """Attach the errors :func:`attach` left unmatched that quote a datagram a NAT translated and
    did not translate back (break-it 24 F11): the quote's protocol, destination address and port
    are those of the flow's responder, the error was sent to the flow's originator, but the
    quoted source (address, and port too behind a PAT) is the NAT's outside one. Such an error
    goes to the one flow (same VLAN rule as :func:`attach`) of that originator, protocol,
    responder address and port open at its time (from :data:`SLACK_NS` before its first packet
    to :data:`SLACK_NS` after its last), if there is exactly one; its text is
    :func:`error_text`'s with :data:`NAT_QUOTE` after the sender (before
    :data:`FROM_DESTINATION`). Path-MTU errors (``too_big``), reassembly timeouts (``reassembly``) and quotes cut before the ports are
    left alone. Only flows without an ``icmp_unreachable`` text yet are given one.

    :param packets: the packets the errors' rows index (the error's own destination address).
    :param matched: as :func:`attach`'s: ``(packet row, flow row)`` appended per error attached.
    :returns: (the flows, the errors still unmatched).
    """
    if not errors or len(flows) == 0:
        return flows, list(errors)
    todo = [e for e in errors if not e.too_big and not e.reassembly and e.sport >= 0]
    if not todo:
        return flows, list(errors)
    c = packets.cols
    rows = np.array([e.row for e in todo], np.int64)
    to = address_text(c["dst_hi"][rows], c["dst_lo"][rows], c["ipver"][rows] == 6).tolist()
    index: dict[tuple, list[int]] = {}
    for f, key in enumerate(zip(flows["proto"].tolist(), flows["orig_h"].tolist(), flows["resp_h"].tolist(),
                                flows["resp_p"].tolist())):
        index.setdefault(key, []).append(f)
    vlans = _vlans(flows)
    first_ts = flows["ts_ns"].to_numpy()
    last_ts = first_ts + np.round(flows["duration"].to_numpy(dtype=float) * 1e9).astype(np.int64)
    orig_h, orig_p = flows["orig_h"].tolist(), flows["orig_p"].tolist()
    text = flows["icmp_unreachable"].to_numpy(dtype=object).copy()
    done = set()
    for e, client in zip(todo, to):
        if e.src == client:
            continue            # (the quote's source is the client's own: not a NAT's)
        cands = [f for f in index.get((e.proto, client, e.dst, e.dport), [])
                 if int(first_ts[f]) - SLACK_NS <= e.ts_ns <= int(last_ts[f]) + SLACK_NS]
        same = [f for f in cands if vlans[f] == e.vlan]
        if not same and len({vlans[f] for f in cands}) == 1:
            same = cands
        if len(same) != 1:
            continue
        f = same[0]
        done.add(id(e))
        if matched is not None:
            matched.append((e.row, f))
        if text[f]:
            continue
        base = error_text(e)
        own = base.endswith(FROM_DESTINATION)
        core = base[:-len(FROM_DESTINATION)] if own else base
        quoted = endpoint_text(e.src, e.sport)
        mine = endpoint_text(orig_h[f], orig_p[f]) if e.sport != orig_p[f] else orig_h[f]
        quoted = quoted if e.sport != orig_p[f] else e.src
        text[f] = core + NAT_QUOTE.format(quoted=quoted, client=mine) + (FROM_DESTINATION if own else "")
    if not done:
        return flows, list(errors)
    out = flows.copy()
    out["icmp_unreachable"] = text
    return out, [e for e in errors if id(e) not in done]
