"""What the report says of NAT in the path of a blocked purpose (newcomer s61 A and B).

A. A capture on a NAT gateway that holds both of its sides (``tcpdump -i any``, or the inside and
outside captures given together, ``--file-set join``) lists each connection twice: the client's
copy and the NAT's translated one (:class:`kscc_traffic.natpairs.NatWatch` pairs them by their
SYN's ISN; :func:`kscc_traffic.classify.nat_copy_note` says so in each copy's detail). The advice
counts each connection once, and where the translated copy shows the SYNs leaving unanswered, it
says the block is beyond the capturing device (:func:`nat_fix`), not "allow outbound" on it.

B. An IPv6-only agent whose blocked attempts went to NAT64 addresses (64:ff9b::/96, or the
local-use 64:ff9b:1::/48: :func:`kscc_traffic.addresses.nat64_text`, said in the detail by
:func:`kscc_traffic.classify._note_nat64`): the advice names the NAT64 translation, its prefix and
the IPv4 server addresses embedded, so the admin checks the NAT64 gateway and its IPv4 side
(:func:`nat64_fix`).

Both read the flows' ``detail`` texts only (as every advice of :func:`kscc_traffic.report.readiness`
does): a table read back from CSV gets the same advice.
"""
from __future__ import annotations

import re
from typing import Iterable

from .classify import NAT_LEFT, NAT_OUTSIDE_COPY

__all__ = ["nat_counts", "nat_fix", "copies_text", "nat64_seen", "nat64_fix", "NAT64_SAID", "MAX_NAT64_SERVERS"]

#: the NAT64 note of a detail (:func:`kscc_traffic.addresses.nat64_text`): its prefix (group 1) and
#: the IPv4 address it carries (group 2)
NAT64_SAID = re.compile(r"is a NAT64 address \((?:the local-use prefix )?([0-9a-f:]+/\d+), RFC \d+\) of the IPv4 "
                        r"address (\d{1,3}(?:\.\d{1,3}){3})( if its translator's prefix is a /96)?")
#: IPv4 server addresses :func:`nat64_fix` names at most (then "and N more")
MAX_NAT64_SERVERS = 3


def nat_counts(details: Iterable[str]) -> tuple[int, int]:
    """Of blocked flows' ``details`` (texts): ``(copies, left)``, the NAT's translated copies of
    connections whose inside copy is listed too (:data:`~kscc_traffic.classify.NAT_OUTSIDE_COPY`),
    and the inside copies whose SYNs left the device translated, unanswered on both sides
    (:data:`~kscc_traffic.classify.NAT_LEFT`)."""
    copies = left = 0
    for d in details:
        d = str(d)
        if NAT_OUTSIDE_COPY in d:
            copies += 1
        elif NAT_LEFT in d:
            left += 1
    return copies, left


def copies_text(copies: int, flows: int) -> str:
    """How a count of ``flows`` says that ``copies`` of them are a NAT's translated copies of others
    (captured on both sides of the NAT): ``3 of them are the NAT's translated copies of others, both
    sides of a NAT captured: 4 connections``; '' for none."""
    if copies <= 0:
        return ""
    return (f"{copies} of them {'is the NAT' if copies == 1 else 'are the NAT'}'s translated "
            f"{'copy of another' if copies == 1 else 'copies of others'}, both sides of a NAT captured: "
            f"{flows - copies} connection{'s' if flows - copies != 1 else ''}")


def nat_fix(fix: str, bl: int, copies: int, left: int) -> str:
    """A blocked purpose's advice ``fix`` for its ``bl`` blocked flows, ``copies`` of them a NAT's
    translated copies and ``left`` inside copies whose SYNs were seen leaving the device
    unanswered (:func:`nat_counts`): when every blocked connection is such a one, the block is
    said to be beyond the device (the firewall rule is to be changed upstream), else how many
    were; the count of copies said first. ``fix`` unchanged when both are 0."""
    if not copies and not left:
        return fix
    attempts = bl - copies
    if left:
        where = ("the block is beyond this device (an upstream firewall, the provider or the server; "
                 "this device forwarded them)")
        if left >= attempts:
            fix = (f"{'its SYNs were' if left == 1 else 'their SYNs were'} captured leaving this device translated "
                   f"by its NAT, unanswered: {where}; there: {fix}")
        else:
            fix += (f"; {left} of them {'was' if left == 1 else 'were'} captured leaving this device translated "
                    f"by its NAT, unanswered: for {'it' if left == 1 else 'them'}, {where}")
    if copies:
        fix = (f"{bl} blocked flows are {attempts} connection attempt{'s' if attempts != 1 else ''} captured "
               f"on both sides of a NAT ({copies} of them the NAT's translated cop{'y' if copies == 1 else 'ies'}, "
               f"see each flow's detail): {fix}")
    return fix


def nat64_seen(details: Iterable[str]) -> tuple[int, tuple[str, ...], tuple[str, ...]]:
    """Of blocked flows' ``details``: ``(k, prefixes, servers)``, the number whose detail says
    their server is a NAT64 address (:data:`NAT64_SAID`), the prefixes and the IPv4 server
    addresses they carry (each once, in order of first appearance)."""
    k = 0
    prefixes: dict = {}
    servers: dict = {}
    for d in details:
        m = NAT64_SAID.search(str(d))
        if m:
            k += 1
            prefixes[m.group(1)] = None
            # (in the local-use prefix the address is the last 32 bits only when the translator's
            # prefix is a /96: said so, never as a fact; newcomer s62 #1 was told "0.0.0.0")
            if not (m.group(3) and m.group(2).startswith("0.")):   # (0.0.0.0/8 is no server: another length)
                servers[m.group(2) + (" (if the translator's prefix is a /96)" if m.group(3) else "")] = None
    return k, tuple(prefixes), tuple(servers)


def nat64_fix(fix: str, bl: int, seen: tuple[int, tuple[str, ...], tuple[str, ...]], transport: str,
              ports: str) -> str:
    """A blocked purpose's advice ``fix`` for its ``bl`` blocked flows when some went to NAT64
    addresses (``seen``, :func:`nat64_seen`): the NAT64 translation named (prefix, the IPv4 server
    addresses embedded) where the advice says ``over IPv6 to``, and what to check: the gateway and
    its IPv4 side for ``transport`` (``tcp``) ``ports`` (``23100-23199``). ``fix`` unchanged
    without such flows."""
    k, prefixes, servers = seen
    if not k:
        return fix
    named = ", ".join(servers[:MAX_NAT64_SERVERS]) + (
        f" and {len(servers) - MAX_NAT64_SERVERS} more" if len(servers) > MAX_NAT64_SERVERS else "")
    via = (f"through a NAT64 gateway (prefix {' and '.join(prefixes)}"
           + (f", the IPv4 server address{'es' if len(servers) != 1 else ''} {named} embedded)" if servers else ")"))
    check = (f"check the NAT64 gateway and its IPv4 side: it must reach {named or 'the server'} on {transport.upper()} "
             f"{ports} (its IPv4 firewall rules and route)")
    if k >= bl and " over IPv6 to " in fix:
        return fix.replace(" over IPv6 to ", f" over IPv6 {via} to ", 1) + f"; {check}"
    if k >= bl:
        return f"{fix}; all of them went {via}: {check}"
    return f"{fix}; {k} of them went {via}: {check}"
