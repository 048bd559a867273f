"""Connections captured twice: before and after a NAT, or on two VLANs (:meth:`NatWatch._vlan_pairs`)
(newcomer 35 F7: ``tcpdump -i any`` on a NAT
gateway sees each of a client's connections on the inside interface, from the client, and again
on the outside one, from the gateway's address: every flow, and every count of the report, is
doubled, and nothing says why).

:class:`NatWatch` follows a capture's flows, batch by batch, and finds such pairs: two flows of
one transport protocol to a unicast address (a router forwards no broadcast nor multicast),
started at most :data:`PAIR_WINDOW_NS` apart, with the same payload bytes from the originator
(and, UDP, packets: a gateway whose inside NIC merges TCP segments (GRO) and whose outside device
cannot split them in hardware is captured with fewer inside), the same ports (a NAT that keeps
the source port, as Linux masquerading and most home and office routers do while it is free),
the same server address and two client addresses (the client, the translated side, is the
originator; or the responder, for a connection open before the capture whose server spoke first
on a port not known as a server's), where the packets agree (each side's first TTL, ``orig_ttl``
and ``resp_ttl``; the first packet's IPv4 identification, ``first_ip_id``): a router forwards
each packet one hop less in TTL (IPv6 hop limit), so the client's first packet leaves one hop
lower than it came in and the server's comes in one hop lower than it arrived, and a NAT keeps
the identification of the one packet both copies start with. A TTL unknown in either copy, or
an identification (IPv6), tells nothing. The inside copy is the one the TTLs say; when none is
known, the earlier (the packet is captured as it arrives from the client, then as it leaves
translated), or the later when the first packet is the responder's (``history`` ``^d…``: it
came in from the outside).

One ``Warning:`` per capture gives their count and the most common address translation, when
the pairs are more than coincidences: their outside address must recur (in two pairs or more)
and be one of the :data:`OUTSIDE_ADDRESSES` most common (a gateway has one address, or a few; a
spray of look-alike datagrams from many addresses pairs them among themselves, each address
once) or of a pair the packets prove (a one-to-one NAT's, NPTv6: the client's TTLs one hop apart
with one identification, not 0, or, without one, the server's TTLs one hop apart as well); and
an inside address counts only when one translation holds :data:`ONE_TRANSLATION` of its pairs (a
NAT translates a client to one address; look-alike traffic of hosts a router apart, agents
answering together with identifications 0 or none, pairs each with several). They must be
:data:`MIN_PAIRS` at least, and :data:`MIN_SHARE` of the flows. By these checks a NAT that
changes the source port is not recognised (two clients' connections cannot be told from one
connection translated), nor one that leaves the TTL or draws new identifications (pf's ``scrub
random-id``), nor copies through more than one router, and a pool NAT that gives a client another
address per server (Linux ``SNAT --to-source`` a range, without ``--persistent``) may count too few.

A TCP connection whose first packet is its SYN is recognised by that SYN's ISN as well
(:meth:`NatWatch._isn_pairs`; newcomer s61 A: a firewall's capture of both its interfaces listed
each unanswered agent attempt twice and advised to allow it outbound, though the outside copy
showed the SYNs leaving): one ISN (not 0: a packet tool's, many clients alike), server and port, the same originator bytes, a few ms apart, the
client's first TTLs one hop apart: a NAT keeps the ISN also when it changes the source port (PAT;
Linux, most routers; not pf's ``modulate state`` nor a Cisco ASA's sequence randomisation). Such
pairs are marked on the rows (:data:`NAT_SIDE`, :data:`NAT_PEER`, :data:`NAT_PEER_ANSWERED`): each
copy's detail says what it is (:func:`kscc_traffic.classify.nat_copy_note`), the report counts each
connection once and, when the outside copy left unanswered, says the block is beyond the capturing
device (:mod:`kscc_traffic.natadvice`); :meth:`NatWatch.isn_line` says them in one warning (those
whose port the NAT changed alone when :meth:`NatWatch.line` says the others). The verdicts are not
changed: each copy is judged as the connection it is on its side. A chunked reading pairs the
copies that leave in one batch (the two copies of a connection end together: they leave together
but for a batch cut between their last packets, a few ms apart); a NAT captured on one side only
shows nothing to pair. Captures given as a list are analysed apart: give the two sides of a NAT
together as one capture (``--file-set join``) to pair them.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from .addresses import endpoint_text
from .flows import FIRST_IP_ID, FIRST_ISN, ORIG_TTL, RESP_TTL
from .text import escape_terminal

__all__ = ["NatWatch", "NAT_SIDE", "NAT_PEER", "NAT_PEER_ANSWERED", "INSIDE", "OUTSIDE", "PAIR_WINDOW_NS", "MIN_PAIRS", "MIN_SHARE", "ONE_TRANSLATION", "OUTSIDE_ADDRESSES"]

#: the longest time (ns) between the first packets of a connection's two copies (a gateway
#: forwards in microseconds; a loaded one in a few milliseconds)
PAIR_WINDOW_NS = 20_000_000
#: pairs from which a capture is said to hold connections twice
MIN_PAIRS = 2
#: the outside addresses whose pairs count: a NAT has one address, or a few (a spray of look-alike
#: datagrams from many addresses pairs them among themselves, the "outside" ones as many as the pairs)
OUTSIDE_ADDRESSES = 8
#: outside addresses counted at most (beyond, those of one pair are forgotten)
TRACKED = 16_384
#: the share of the TCP and UDP flows (both copies counted) the pairs must make at least
MIN_SHARE = 0.2
#: the share of an inside address's pairs its most common translation must hold for them to count
#: (a NAT translates a client to one address; look-alike traffic pairs it with several)
ONE_TRANSLATION = 0.75
#: the internal columns (never written out) :meth:`NatWatch.add` gives a batch with connections
#: captured on both sides of a NAT (their SYN's ISN: :meth:`NatWatch._isn_pairs`): ``nat_side``,
#: int8, :data:`INSIDE` for the client's own copy, :data:`OUTSIDE` for the NAT's translated one,
#: 0 for the other flows; ``nat_peer``, the other copy's originator endpoint text
#: (``198.51.100.129:61000``, ``[2001:db8::1]:50000``), '' for none; ``nat_peer_answered``, bool,
#: the other copy's responder sent a packet (:func:`kscc_traffic.classify` reads them)
NAT_SIDE, NAT_PEER, NAT_PEER_ANSWERED = "nat_side", "nat_peer", "nat_peer_answered"
INSIDE, OUTSIDE = 1, 2
_KEYS = ("proto", "resp_h", "resp_p", "orig_p", "orig_pkts", "orig_bytes", "orig_h", "ts_ns")


#: candidate SYNs (:meth:`NatWatch._isn_pairs`) a capture keeps for :func:`across_captures` (its first ones)
SAMPLE_SYNS = 4096
#: the columns of those candidates (:func:`isn_matches`)
_SYN_KEYS = ("resp_h", "resp_p", "isn", "orig_bytes", "orig_h", "ts_ns", "ttl", "ip_id")


def isn_matches(cols: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Of candidate TCP flows whose first packet is their SYN (``cols``: equal-length arrays
    ``resp_h`` and ``orig_h`` (address texts), ``resp_p``, ``isn``, ``orig_bytes``, ``ts_ns``,
    ``ttl`` (the originator's first TTL, > 0) and ``ip_id`` (-1 unknown)), the copies of one
    connection on both sides of a NAT (:meth:`NatWatch._isn_pairs`): ``(a, b, a_inside)``, the
    positions of each pair's copies (``a`` the earlier) and whether ``a`` is the inside one (the
    higher TTL); None when there is none. Each row pairs once."""
    resp_h = pd.factorize(np.asarray(cols["resp_h"], dtype=object))[0]
    orig_h = pd.factorize(np.asarray(cols["orig_h"], dtype=object))[0]
    t, c, ids = (np.asarray(cols[k], dtype=np.int64) for k in ("ts_ns", "ttl", "ip_id"))
    keys = (resp_h, np.asarray(cols["resp_p"], np.int64), np.asarray(cols["isn"], np.int64),
            np.asarray(cols["orig_bytes"], np.int64))
    if len(t) < 2:
        return None
    o = np.lexsort((t, *keys[::-1]))
    equal = np.ones(len(o) - 1, bool)
    for k in keys:
        k = k[o]
        equal &= k[1:] == k[:-1]
    h, tt, c, ids = orig_h[o], t[o], c[o], ids[o]
    match = equal & (h[1:] != h[:-1]) & (tt[1:] - tt[:-1] <= PAIR_WINDOW_NS) & (np.abs(c[1:] - c[:-1]) == 1)
    match &= (ids[:-1] < 0) | (ids[1:] < 0) | (ids[:-1] == ids[1:])
    # (a row pairs once: along a run of matches, the first, third…)
    idx = np.arange(len(match))
    starts = np.maximum.accumulate(np.where(match & ~np.concatenate([[False], match[:-1]]), idx, 0))
    chosen = np.flatnonzero(match & ((idx - starts) % 2 == 0))
    if not len(chosen):
        return None
    return o[chosen], o[chosen + 1], c[chosen] > c[chosen + 1]


def across_captures(samples) -> list[str]:
    """The warning lines about captures analysed apart that hold two sides of a NAT: ``samples``
    holds (capture name, :meth:`NatWatch.sample` or None) per capture; for each two captures
    whose candidate SYNs pair (:func:`isn_matches`, one copy in each), one line naming both with
    the count and the most common translation. [] when there is none (or one capture)."""
    named = [(name, smp) for name, smp in samples if smp and len(smp.get("isn", ())) > 0]
    if len(named) < 2:
        return []
    cols = {k: np.concatenate([np.asarray(smp[k], dtype=object if k in ("resp_h", "orig_h") else np.int64)
                               for _, smp in named]) for k in _SYN_KEYS}
    cap = np.concatenate([np.full(len(smp["isn"]), i, np.int64) for i, (_, smp) in enumerate(named)])
    # (the same capture's pairs were said by its own warning: only pairs across captures here)
    cols["orig_h"] = np.array([f"{c}\t{h}" for c, h in zip(cap.tolist(), cols["orig_h"].tolist())], dtype=object)
    found = isn_matches(cols)
    if found is None:
        return []
    a, b, a_in = found
    across = cap[a] != cap[b]
    ins, outs = np.where(a_in, a, b)[across], np.where(a_in, b, a)[across]
    by: dict = {}
    for i, j in zip(ins.tolist(), outs.tolist()):
        key = (int(cap[i]), int(cap[j]))
        pair = tuple(str(cols["orig_h"][x]).split("\t", 1)[1] for x in (i, j))
        by.setdefault(key, Counter())[pair] += 1
    lines = []
    for (ci, co), trans in sorted(by.items()):
        n = sum(trans.values())
        (inside, outside), k = min(trans.items(), key=lambda tk: (-tk[1], tk[0]))
        lines.append(escape_terminal(
            f"{named[ci][0]} and {named[co][0]}: {n} TCP connection{'s' if n != 1 else ''} appear{'' if n != 1 else 's'} "
            f"in both (the same SYN ISN, server and port a few ms apart, one hop less in TTL on the second; {inside} -> "
            f"{outside} {k} time{'s' if k != 1 else ''}): they are the inside and outside of a NAT, each connection "
            "listed once in each; analyse them together (--file-set join) to have each pair said, counted once, and "
            "an unanswered SYN seen leaving told from a block on the NAT"))
    return lines


class NatWatch:
    """Connections of a capture seen twice, before and after a NAT.

    :meth:`add` takes each batch of flows (a flow table with ``proto``, ``orig_h``, ``orig_p``,
    ``resp_h``, ``resp_p``, ``orig_pkts``, ``orig_bytes``, ``ts_ns`` (epoch ns), and optionally
    ``cast``, ``history``, ``orig_ttl``, ``resp_ttl`` and ``first_ip_id``, -1 unknown); :meth:`line`
    gives the warning line (starting with the capture's name) or None. Pairs whose copies leave
    in different batches are not counted (the two copies of a connection end together). With the
    internal columns ``first_isn`` and ``orig_ttl`` (and ``resp_pkts``), :meth:`add` marks the
    copies of TCP connections paired by their SYN (:meth:`_isn_pairs`) in the table it is given:
    it adds :data:`NAT_SIDE`, :data:`NAT_PEER` and :data:`NAT_PEER_ANSWERED` in place."""

    def __init__(self) -> None:
        #: connections seen on two VLAN stacks with one 5-tuple (:meth:`_vlan_pairs`), and the
        #: most common pair of (vlan, inner_vlan) texts -> pairs
        self.vlan_pairs = 0
        self.vlan_stacks: Counter = Counter()
        self.pairs = 0
        self.flows = 0                              # TCP and UDP flows seen
        self.translations: Counter = Counter()      # (inside address, outside address) -> pairs
        self._outside: Counter = Counter()          # outside address -> pairs
        self._strong: Counter = Counter()           # outside address -> pairs the packets prove
        #: connections seen on both sides of a NAT by their SYN's ISN (:meth:`_isn_pairs`), those of
        #: them whose source port the NAT changed (PAT), and their (inside, outside) addresses
        self.isn_pairs = 0
        self.isn_ported = 0
        self.isn_translations: Counter = Counter()
        self.pat_translations: Counter = Counter()
        self._sample: dict = {k: [] for k in _SYN_KEYS}    # candidate SYNs kept for across_captures
        self._sampled = 0

    def add(self, flows: pd.DataFrame) -> None:
        """Follow one batch of flows (those leaving a chunked reading, or a whole table)."""
        if not len(flows) or any(k not in flows.columns for k in _KEYS):
            return
        proto = flows["proto"].to_numpy(dtype=object)
        ports = (proto == "tcp") | (proto == "udp")
        n = int(ports.sum())
        self.flows += n
        if "cast" in flows.columns:     # (a router forwards no broadcast nor multicast: no NAT copy)
            ports &= flows["cast"].to_numpy(dtype=object) == "unicast"
            n = int(ports.sum())
        if n < 2:
            return
        if "vlan" in flows.columns and "inner_vlan" in flows.columns:
            self._vlan_pairs(flows, ports)
        if FIRST_ISN in flows.columns:  # (the port-keeping ones counted by the checks below too: line())
            self._isn_pairs(flows, ports)
        # (candidates first, on integers: rows whose ports, packets and bytes another row repeats;
        # a hash collision only adds a candidate, checked exactly below)
        # (TCP: the bytes alone, counted from sequence numbers; the packets may differ: a gateway
        # whose inside NIC merges segments (GRO) and whose outside one cannot split them in
        # hardware, PPPoE, a modem, is captured with fewer packets inside)
        pkts = np.where(proto == "tcp", 0, flows["orig_pkts"].to_numpy().astype(np.int64))
        ints = [flows[k].to_numpy()[ports].astype(np.int64) for k in ("resp_p", "orig_p")]
        ints += [pkts[ports], flows["orig_bytes"].to_numpy()[ports].astype(np.int64)]
        key = ((ints[0] << 16) | ints[1]) ^ (ints[2] * 1_000_003 + ints[3]) * 0x9E3779B1
        ts = flows["ts_ns"].to_numpy()[ports].astype(np.int64)
        order = np.lexsort((ts, key))
        k, t = key[order], ts[order]
        near = (k[1:] == k[:-1]) & (t[1:] - t[:-1] <= PAIR_WINDOW_NS)   # (a row and the next)
        if not near.any():
            return
        maybe = np.zeros(n, bool)
        maybe[1:] |= near
        maybe[:-1] |= near
        rows = np.flatnonzero(ports)[order[maybe]]
        # (in columns, not Python tuples: a spray of one-datagram flows makes every row a candidate)
        col = {c: flows[c].to_numpy()[rows] for c in _KEYS}
        col["orig_pkts"] = pkts[rows]

        def optional(c):        # (-1: unknown)
            return flows[c].to_numpy()[rows].astype(np.int64) if c in flows.columns else np.full(len(rows), -1)
        ttl = {"orig": optional(ORIG_TTL), "resp": optional(RESP_TTL)}
        col["ip_id"] = optional(FIRST_IP_ID)
        hist = flows["history"].to_numpy()[rows] if "history" in flows.columns else None
        # the translated side (the client) the originator, then the responder (a connection open
        # before the capture whose server spoke first, on a port not known as a server's)
        for client, server in (("orig", "resp"), ("resp", "orig")):
            found = self._pairs(col, client, server, ttl[client], ttl[server], hist)
            if found is not None:
                self._count(*found)

    def _isn_pairs(self, flows: pd.DataFrame, ports: np.ndarray) -> np.ndarray | None:
        """Find the TCP connections of ``flows`` (rows ``ports``: TCP and UDP, unicast) captured on
        both sides of a NAT by their first SYN: one ISN (``first_isn``, kept by a NAT, also one that
        changes the source port, PAT), one responder address and port, the same originator bytes,
        started at most :data:`PAIR_WINDOW_NS` apart from two originator addresses whose first TTLs
        are one hop apart (the translated copy, outside, the lower: a router forwards one hop
        less; two clients' look-alike SYNs with one TTL pair nothing) and, IPv4, one
        identification when both copies carry one. Marks the rows (:data:`NAT_SIDE`,
        :data:`NAT_PEER`, :data:`NAT_PEER_ANSWERED`, added to ``flows`` in place when any pair
        is found) and counts them; returns the bool mask of the paired rows (len(flows)), or None
        when there is none. A NAT that draws new ISNs (pf ``modulate state``, a Cisco ASA's
        sequence randomisation) is not recognised here."""
        isn = flows[FIRST_ISN].to_numpy()
        if not isinstance(isn, np.ndarray) or isn.dtype.kind not in "iu":
            isn = pd.to_numeric(flows[FIRST_ISN], errors="coerce").fillna(-1).to_numpy(np.int64)
        proto = flows["proto"].to_numpy(dtype=object)
        # (ISN 0: a packet tool's or scanner's, which many clients send alike, no stack's random
        # choice: two clients' SYNs with it paired as a NAT's copies, newcomer s62 #5)
        cand = ports & (isn > 0) & (proto == "tcp")
        if ORIG_TTL in flows.columns:
            c_ttl = pd.to_numeric(flows[ORIG_TTL], errors="coerce").fillna(-1).to_numpy(np.int64)
            cand &= c_ttl > 0
        else:
            return None
        rows = np.flatnonzero(cand)
        if not len(rows):
            return None
        cols = {"resp_h": flows["resp_h"].to_numpy(dtype=object)[rows],
                "resp_p": flows["resp_p"].to_numpy()[rows].astype(np.int64),
                "isn": isn[rows].astype(np.int64),
                "orig_bytes": flows["orig_bytes"].to_numpy()[rows].astype(np.int64),
                "orig_h": flows["orig_h"].to_numpy(dtype=object)[rows],
                "ts_ns": flows["ts_ns"].to_numpy()[rows].astype(np.int64),
                "ttl": c_ttl[rows],
                "ip_id": (pd.to_numeric(flows[FIRST_IP_ID], errors="coerce").fillna(-1).to_numpy(np.int64)[rows]
                          if FIRST_IP_ID in flows.columns else np.full(len(rows), -1, np.int64))}
        self._keep_sample(cols)
        if len(rows) < 2:
            return None
        found = isn_matches(cols)
        if found is None:
            return None
        a, b, first_in = rows[found[0]], rows[found[1]], found[2]
        inside, outside = np.where(first_in, a, b), np.where(first_in, b, a)
        n = len(flows)
        side = np.zeros(n, np.int8)
        side[inside], side[outside] = INSIDE, OUTSIDE
        oh, op = flows["orig_h"].to_numpy(dtype=object), flows["orig_p"].to_numpy()
        peer = np.full(n, "", dtype=object)
        peer[inside] = [endpoint_text(str(oh[i]), int(op[i])) for i in outside.tolist()]
        peer[outside] = [endpoint_text(str(oh[i]), int(op[i])) for i in inside.tolist()]
        answered = flows["resp_pkts"].to_numpy().astype(np.int64) > 0 if "resp_pkts" in flows.columns \
            else np.zeros(n, bool)
        peer_answered = np.zeros(n, bool)
        peer_answered[inside], peer_answered[outside] = answered[outside], answered[inside]
        flows[NAT_SIDE] = side
        flows[NAT_PEER] = pd.Series(peer, dtype=object, index=flows.index)
        flows[NAT_PEER_ANSWERED] = peer_answered
        self.isn_pairs += len(inside)
        moved = op[inside].astype(np.int64) != op[outside].astype(np.int64)
        self.isn_ported += int(np.count_nonzero(moved))
        for pair, pat in zip(zip(oh[inside].tolist(), oh[outside].tolist()), moved.tolist()):
            pair = tuple(map(str, pair))
            for into in (self.isn_translations, self.pat_translations) if pat else (self.isn_translations,):
                if len(into) < TRACKED or pair in into:
                    into[pair] += 1
        mask = np.zeros(n, bool)
        mask[inside] = mask[outside] = True
        return mask

    def _keep_sample(self, cols: dict) -> None:
        """Keep the first :data:`SAMPLE_SYNS` candidate SYNs (``cols``: :data:`_SYN_KEYS` arrays)."""
        room = SAMPLE_SYNS - self._sampled
        if room <= 0:
            return
        for k in _SYN_KEYS:
            self._sample[k].append(np.asarray(cols[k])[:room])
        self._sampled += min(room, len(cols["isn"]))

    def sample(self) -> dict | None:
        """The candidate SYNs kept (the first :data:`SAMPLE_SYNS`: their :data:`_SYN_KEYS`, lists
        of plain values, picklable) for :func:`across_captures`, or None for none."""
        if not self._sampled:
            return None
        return {k: np.concatenate(v).tolist() for k, v in self._sample.items()}

    def isn_line(self, capture: str, ported_only: bool = False) -> str | None:
        """The warning line about the connections captured on both sides of a NAT by their SYN's
        ISN (:meth:`_isn_pairs`), or None when there is none; ``ported_only``: those whose source
        port the NAT changed (PAT) alone (the others said by :meth:`line`)."""
        n = self.isn_ported if ported_only else self.isn_pairs
        table = self.pat_translations if ported_only else self.isn_translations
        if not n or not table:
            return None
        (inside, outside), k = min(table.items(), key=lambda tk: (-tk[1], tk[0]))
        more = len(table) - 1
        others = f", and {more} other translation{'s' if more != 1 else ''}" if more else ""
        pat = self.isn_ported
        ported = ("" if not pat else f"; the source port translated (PAT) in {'all' if pat == n else pat}"
                  f"{' of them' if pat != n else ''}")
        if ported_only:
            ported = "; the source port translated (PAT)"
        return escape_terminal(
            f"{capture}: {n} TCP connection{'s were' if n != 1 else ' was'} captured on both sides of a NAT "
            f"(the inside copy and the NAT's translated one: the same SYN ISN, server and port a few ms apart, "
            f"one hop less in TTL{ported}; {inside} -> {outside} {k} time{'s' if k != 1 else ''}{others}): "
            f"each is listed twice, its outside copy's detail naming the inside one: count each once; a SYN "
            "seen leaving unanswered on the outside left this device, the block is beyond it")

    def _vlan_pairs(self, flows: pd.DataFrame, ports: np.ndarray) -> None:
        """Count the connections of ``flows`` (rows ``ports``: TCP and UDP, unicast) seen twice
        with one 5-tuple on two VLAN stacks (``vlan``, ``inner_vlan``), started at most
        :data:`PAIR_WINDOW_NS` apart with the same originator bytes (and UDP packets):
        ``tcpdump -i any`` on a host with a VLAN sub-interface sees each packet on the trunk,
        tagged, and on the sub-interface, untagged (break-it s53 DP pass #5: every count doubled,
        nothing said); a router between two VLANs captured on its trunk likewise."""
        rows = np.flatnonzero(ports)
        vlan = flows["vlan"].to_numpy()[rows].astype(np.int64) * 4096 + flows["inner_vlan"].to_numpy()[rows].astype(np.int64)
        if len(np.unique(vlan)) < 2:
            return
        keys = [pd.factorize(flows[c].to_numpy(dtype=object)[rows])[0] for c in ("proto", "orig_h", "resp_h")]
        keys += [flows[c].to_numpy()[rows].astype(np.int64) for c in ("orig_p", "resp_p", "orig_bytes")]
        keys.append(np.where(flows["proto"].to_numpy(dtype=object)[rows] == "tcp", 0,
                             flows["orig_pkts"].to_numpy()[rows].astype(np.int64)))
        t = flows["ts_ns"].to_numpy()[rows].astype(np.int64)
        o = np.lexsort((t, *keys[::-1]))
        equal = np.ones(len(o) - 1, bool)
        for k in keys:
            k = k[o]
            equal &= k[1:] == k[:-1]
        v, t = vlan[o], t[o]
        match = equal & (v[1:] != v[:-1]) & (t[1:] - t[:-1] <= PAIR_WINDOW_NS)
        # (a row pairs once: along a run of matches, the first, third…)
        idx = np.arange(len(match))
        starts = np.maximum.accumulate(np.where(match & ~np.concatenate([[False], match[:-1]]), idx, 0))
        chosen = np.flatnonzero(match & ((idx - starts) % 2 == 0))
        if not len(chosen):
            return
        self.vlan_pairs += len(chosen)
        for a, b in zip(v[chosen].tolist(), v[chosen + 1].tolist()):
            self.vlan_stacks[tuple(sorted((a, b)))] += 1

    @staticmethod
    def _vlan_text(code: int) -> str:
        """A (vlan, inner_vlan) code of :meth:`_vlan_pairs` as the warning names it."""
        outer, inner = divmod(code, 4096)
        return "untagged" if not outer and not inner else f"VLAN {outer}" + (f"/{inner}" if inner else "")

    def vlan_line(self, capture: str) -> str | None:
        """The warning line about connections seen on two VLAN stacks (:meth:`_vlan_pairs`), or
        None when there is none."""
        if not self.vlan_pairs:
            return None
        (a, b), k = min(self.vlan_stacks.items(), key=lambda sk: (-sk[1], sk[0]))
        n = self.vlan_pairs
        return escape_terminal(
            f"{capture}: {n} connection{'s were' if n != 1 else ' was'} captured twice, with one 5-tuple on two VLANs "
            f"({self._vlan_text(a)} and {self._vlan_text(b)}: {k} of them; at most a few ms apart, the same bytes): a capture on every interface of a host with a VLAN sub-interface (tcpdump -i any sees each "
            "packet on the trunk, tagged, and on the sub-interface), or of a router between the VLANs, counts each "
            "such connection twice; capture on one interface to count each once")

    @staticmethod
    def _pairs(col: dict, client: str, server: str, c_ttl: np.ndarray, s_ttl: np.ndarray, hist):
        """Of the candidate rows (``col``: their :data:`_KEYS` columns), the copies of one
        connection whose ``client`` side (``"orig"`` or ``"resp"``) differs in address alone:
        ``(hosts, inside, outside)`` (codes into ``hosts``), or None. ``c_ttl``, ``s_ttl``: the
        first TTL of each row's client and server side (-1 unknown); ``hist`` the histories or
        None."""
        fixed = [col["proto"], col[f"{server}_h"], col["resp_p"], col["orig_p"], col["orig_pkts"], col["orig_bytes"]]
        same = [pd.factorize(v.astype(object))[0] if i < 2 else v.astype(np.int64) for i, v in enumerate(fixed)]
        host_codes, hosts = pd.factorize(col[f"{client}_h"].astype(object))
        t = col["ts_ns"].astype(np.int64)
        # sorted by everything but the client's address (a connection's two copies side by side),
        # then by time; stable, so rows of one time keep their order
        o = np.lexsort((t, *same[::-1]))
        equal = np.ones(len(o) - 1, bool)
        for v in same:
            v = v[o]
            equal &= v[1:] == v[:-1]
        h, t, c, s, ip_id = host_codes[o], t[o], c_ttl[o], s_ttl[o], col["ip_id"][o]
        match = equal & (h[1:] != h[:-1]) & (t[1:] - t[:-1] <= PAIR_WINDOW_NS)
        # (both copies' first packet is one packet, whose IPv4 identification a NAT keeps)
        match &= (ip_id[:-1] < 0) | (ip_id[1:] < 0) | (ip_id[:-1] == ip_id[1:])
        # which copy is inside, from the TTLs: the client's packets leave one hop less, the
        # server's come in one hop less; a side whose TTL is unknown in either copy tells nothing
        c_any, s_any = (c[:-1] < 0) | (c[1:] < 0), (s[:-1] < 0) | (s[1:] < 0)
        first_in = (c_any | (c[1:] == c[:-1] - 1)) & (s_any | (s[:-1] == s[1:] - 1))
        second_in = (c_any | (c[:-1] == c[1:] - 1)) & (s_any | (s[1:] == s[:-1] - 1))
        match &= first_in | second_in
        if client == "resp":            # (no TTL, no pair: look-alike datagrams one server sent)
            match &= ~(c_any & s_any)
        # a row pairs once: along a run of matches (row i with i + 1), the first, third, fifth…
        # (of three copies in a row, the first two), as a walk that skips a paired row would
        idx = np.arange(len(match))
        starts = np.maximum.accumulate(np.where(match & ~np.concatenate([[False], match[:-1]]), idx, 0))
        chosen = match & ((idx - starts) % 2 == 0)
        if not chosen.any():
            return None
        swap = (second_in & ~first_in)[chosen]
        if hist is not None and client == "orig":
            # no TTL either side: the earlier copy is inside, unless the responder's packet came
            # first (history ``^d…``: it came in from the outside, the later copy is inside)
            guess = (first_in & second_in)[chosen]
            first = pd.Series(hist[o][:-1][chosen], dtype=object).str.lstrip("^").str[:1]
            swap |= guess & (first.str.islower() == True).to_numpy(bool)  # noqa: E712 (element-wise)
        # (proven: the client's TTLs one hop apart and one IPv4 identification, not 0, in both
        # copies; without identifications, IPv6, the server's TTLs one hop apart as well)
        c_ok, s_ok = ~c_any & (c[:-1] != c[1:]), ~s_any & (s[:-1] != s[1:])
        same_id = (ip_id[:-1] > 0) & (ip_id[:-1] == ip_id[1:])
        strong = (c_ok & (same_id | s_ok))[chosen]
        a, b = h[:-1][chosen], h[1:][chosen]
        return hosts, np.where(swap, b, a), np.where(swap, a, b), strong

    def _count(self, hosts, inside: np.ndarray, outside: np.ndarray, strong: np.ndarray) -> None:
        """Count a batch's pairs (codes into ``hosts``; ``strong``: the packets prove the pair) by
        outside address and by translation. Beyond :data:`TRACKED` outside addresses, those of a
        single pair are forgotten (then the least common, down to half of it), with their
        translations: a NAT's address recurs; those of proven pairs likewise, counted apart."""
        self.pairs += len(inside)
        (a, b, p), k = np.unique(np.stack([inside, outside, strong]), axis=1, return_counts=True)
        for a, b, p, k in zip(a.tolist(), b.tolist(), p.tolist(), k.tolist()):
            ins, out = str(hosts[a]), str(hosts[b])
            self._outside[out] += k
            self.translations[(ins, out)] += k
            if p:
                self._strong[out] += k
        if len(self._outside) > TRACKED or len(self._strong) > TRACKED:
            keep = {a: k for a, k in self._outside.items() if k > 1}
            if len(keep) > TRACKED // 2:
                keep = dict(Counter(keep).most_common(TRACKED // 2))
            self._outside = Counter(keep)
            if len(self._strong) > TRACKED:
                self._strong = Counter(dict(self._strong.most_common(TRACKED // 2)))
            self.translations = Counter({t: k for t, k in self.translations.items()
                                         if t[1] in keep or t[1] in self._strong})

    def warn(self, stats, capture: str) -> None:
        """Add :meth:`isn_line`, :meth:`line` and :meth:`vlan_line` to ``stats`` (a
        :class:`~kscc_traffic.capture.stats.ReadStats`), those that say something; the ISN pairs
        that keep their port said by :meth:`line` when it says anything, not twice."""
        kept = self.line(capture)           # (the port-keeping pairs, when more than coincidences)
        for line in (self.isn_line(capture, ported_only=kept is not None), kept, self.vlan_line(capture)):
            if line:
                stats.warn(line)

    def line(self, capture: str) -> str | None:
        """The warning line about the connections seen twice (None when they are too few): the
        pairs whose outside address is in more than one pair (a gateway's address recurs) and
        one of the :data:`OUTSIDE_ADDRESSES` most common or of a pair the packets prove (the
        module's docstring), of the inside addresses translated to one outside address (one
        translation holds :data:`ONE_TRANSLATION` of their pairs or more: look-alike traffic
        pairs an address with several others), their one translation's pairs."""
        nat = {a for a, k in self._outside.most_common(OUTSIDE_ADDRESSES) if k > 1}
        nat |= {a for a in self._strong if self._outside[a] > 1}
        by_inside: dict = {}
        for (inside, outside), k in self.translations.items():
            if outside in nat:
                by_inside.setdefault(inside, []).append((k, outside))
        kept = Counter()
        for inside, outs in by_inside.items():
            k, outside = min(outs, key=lambda ko: (-ko[0], ko[1]))     # (a tie: the first text)
            if k >= ONE_TRANSLATION * sum(n for n, _ in outs):
                kept[(inside, outside)] = k
        pairs = sum(kept.values())
        if pairs < MIN_PAIRS or 2 * pairs < MIN_SHARE * self.flows:
            return None
        (inside, outside), k = min(kept.items(), key=lambda tk: (-tk[1], tk[0]))   # (a tie: the first text)
        more = len(kept) - 1
        others = f", and {more} other translation{'s' if more != 1 else ''}" if more else ""
        return escape_terminal(
            f"{capture}: {pairs} connection{'s were' if pairs != 1 else ' was'} captured twice, before and "
            f"after a NAT (the same ports, packets and bytes a few ms apart from two addresses; {inside} -> "
            f"{outside} {k} time{'s' if k != 1 else ''}{others}): a capture on every interface of a NAT gateway "
            "(tcpdump -i any) counts each such connection twice, once per side; capture on one interface "
            "(-i the inside one, for the clients' addresses) to count each once")
