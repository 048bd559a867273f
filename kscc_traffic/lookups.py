"""Kaspersky names looked up with no connection after them (newcomer 35 F1: a capture of an agent
whose own host firewall drops its connections holds only its DNS lookups of
``eu1.ksc.kaspersky.com``: every purpose "not seen", "3 flows: 3 ok", exit status 0).

A host firewall or security product that blocks an outbound connection drops it before the
capture point of a capture taken on that host (Npcap and libpcap capture below the Windows
Filtering Platform and netfilter's OUTPUT chain), so the capture shows the lookup and nothing
after it; so does an IPv6-only host given only IPv4 addresses. :class:`LookupsWatch` follows a
capture's flows, batch by batch, and says once per capture which Kaspersky names (under
kaspersky.com) were answered with addresses no captured connection went to, and that no
connection named them either (SNI, HTTP Host, a proxy's CONNECT target). An answer from another
address than the client asked (:func:`kscc_traffic.classify.wrong_source_answers`) resolved
nothing: the client dropped it, and its query is flagged ``wrong_source``, which says why. Nor
does a sinkhole answer (0.0.0.0, 127.0.0.1…: :func:`kscc_traffic.classify.sinkhole_address`):
there is nothing to connect to, and its DNS flow is flagged as blocked by a DNS filter; only a
name's other addresses count.
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from .addresses import shows_ipv4
from .classify import _SINKHOLES, VENDOR_DOMAIN, _under_domain, wrong_source_answers
from .flows import arrays_of
from .names import ORIG_CLOUD_NAME
from .text import escape_terminal

__all__ = ["LookupsWatch"]
#: distinct responder addresses and names remembered per capture at most (bounded memory: past
#: this, no line is given for the capture)
MAX_REMEMBERED = 1_000_000
#: names said at most in the line (the most looked up first)
MAX_NAMES = 5
#: the VPN tunnels a flow's protocol and responder port tell: (proto, port) -> the VPN's
#: name; ``esp`` and ``gre`` flows by their protocol alone (:data:`VPN_PROTOCOLS`). A capture
#: outside the tunnel shows these flows and not the connections inside them.
VPN_PORTS = {("udp", 500): "IPsec IKE", ("udp", 4500): "IPsec NAT-T", ("udp", 51820): "WireGuard",
             ("udp", 1194): "OpenVPN", ("tcp", 1194): "OpenVPN", ("udp", 1701): "L2TP",
             ("tcp", 1723): "PPTP"}
VPN_PROTOCOLS = {"esp": "IPsec ESP", "gre": "GRE (PPTP)"}
#: VPN endpoints remembered per capture at most (the line names the first few)
MAX_VPN = 16
#: the columns :meth:`LookupsWatch._add_vpn` reads
_VPN_COLUMNS = ("proto", "resp_h", "resp_p", "orig_h", "orig_p")


class LookupsWatch:
    """Kaspersky names resolved in a capture, and whether a connection followed.

    :meth:`add` takes each batch of flows (a flow table: ``query``, ``dns_answers``, ``resp_h``,
    ``orig_h``, ``server_name``, ``proxy_target``, ``proto``, ``resp_p``); :meth:`line`
    gives the warning line (starting with the capture's name) or None; where the capture holds
    VPN tunnel flows (:data:`VPN_PORTS`), the line says the connections may be inside the tunnel
    before it says the host firewall."""

    def __init__(self) -> None:
        self.lookups: dict[str, int] = {}            # name -> answered lookups (DNS flows)
        self.addresses: dict[str, set] = {}          # name -> the addresses it was answered with
        self.v6_clients: dict[str, bool] = {}        # name -> every lookup came from an IPv6 client
        self.contacted: set = set()                  # responders of flows that are not DNS (originators of wrong_direction ones)
        self.named: set = set()                      # names other flows were for (lower case)
        self.vpn: dict[str, str] = {}                # VPN endpoint ("198.51.100.7") -> its kind
        self.seen_v4 = False                         # some flow of the capture is IPv4
        self.overflow = False

    def add(self, flows: pd.DataFrame) -> None:
        """Follow one batch of flows (those leaving a chunked reading, or a whole table)."""
        if self.overflow or not len(flows) or "query" not in flows.columns or "resp_h" not in flows.columns:
            return
        if not self.seen_v4:     # (stops at the first IPv4 flow)
            self.seen_v4 = shows_ipv4(flows)
        query = flows["query"].to_numpy(dtype=object)
        dns = (query != "") & pd.notna(query)
        other = ~dns
        # (an answer from another address than asked resolved nothing: the client dropped it,
        # its query is flagged wrong_source)
        dns &= ~wrong_source_answers(flows)
        if dns.any() and "dns_answers" in flows.columns:
            answers = flows["dns_answers"].to_numpy(dtype=object)[dns].tolist()
            # (an IPv6 client's address text holds a colon; any value read as its text)
            v6 = ([":" in str(h) for h in flows["orig_h"].to_numpy(dtype=object)[dns].tolist()]
                  if "orig_h" in flows.columns else [False] * len(answers))
            # (each distinct lookup once: a batch repeats a few names and answers)
            for (q, a, six), k in Counter(zip(query[dns].tolist(), answers, v6)).items():
                if not a or not isinstance(a, str) or not _under_domain(q, VENDOR_DOMAIN):
                    continue
                # (a sinkhole answer, 0.0.0.0 or 127.0.0.1, is nothing to connect to: the DNS
                # flow's own verdict says the filter blocked it; the host firewall is not why)
                addrs = [x for x in a.split(";") if x and x not in _SINKHOLES]
                if not addrs:
                    continue
                name = q.lower().rstrip(".")
                self.lookups[name] = self.lookups.get(name, 0) + k
                self.addresses.setdefault(name, set()).update(addrs)
                self.v6_clients[name] = self.v6_clients.get(name, True) and six
        if other.any() and len(self.vpn) < MAX_VPN and "proto" in flows.columns:
            # (only the columns it reads, as arrays taken at the rows: not the batch's ~100
            # columns, nor a frame made of five, whose fixed cost is more for a small batch)
            cols = arrays_of(flows, [c for c in _VPN_COLUMNS if c in flows.columns])
            self._add_vpn({c: v[other] for c, v in cols.items()}, int(np.count_nonzero(other)))
        if other.any():
            # (each distinct value once: a batch's flows share a few responders and names)
            self.contacted.update(pd.unique(flows["resp_h"].to_numpy(dtype=object)[other]).tolist())
            if "orig_h" in flows.columns:
                # (a connection the cloud's address opened counts too: it was captured, and its own
                # flow says so, wrong_direction; s61 newcomer #1. Told by the internal
                # orig_cloud_name before classification, by the reason after)
                back = np.zeros(len(flows), bool)
                if ORIG_CLOUD_NAME in flows.columns:
                    back |= flows[ORIG_CLOUD_NAME].to_numpy(dtype=object) != ""
                if "reason" in flows.columns:
                    back |= flows["reason"].to_numpy(dtype=object) == "wrong_direction"
                back &= other
                if back.any():
                    self.contacted.update(pd.unique(flows["orig_h"].to_numpy(dtype=object)[back]).tolist())
            for col in ("server_name", "proxy_target", "sni", "http_host"):
                if col in flows.columns:
                    self.named.update(str(v).lower().rstrip(".").rsplit(":", 1)[0] if col == "proxy_target"
                                      else str(v).lower().rstrip(".")
                                      for v in pd.unique(flows[col].to_numpy(dtype=object)[other]).tolist()
                                      if isinstance(v, str) and v)
            if len(self.contacted) + len(self.named) > MAX_REMEMBERED:
                self.overflow = True
                self.contacted.clear()
                self.named.clear()

    def _add_vpn(self, cols: dict, n: int) -> None:
        """Remember the VPN endpoints (:data:`VPN_PORTS`, :data:`VPN_PROTOCOLS`) of ``n`` flows
        given by their columns ``cols`` (label -> 1-D array of ``n`` values, as
        :func:`~kscc_traffic.flows.arrays_of` reads them: ``proto``, ``resp_h``, ``resp_p``;
        ``orig_h``, ``orig_p``; a missing port column counts as unknown, -1): the responder of an ESP/GRE
        flow or of one to a VPN port (the responder's port only: a client's ephemeral source port
        may be 51820 or 4500), and the originator of a UDP flow from a VPN port to a high port (a
        tunnel captured from its middle, its first packet the server's). The ports are compared as
        integers first, the protocol texts then only where one matched (a batch's thousands of
        flows cost a few vectorised comparisons)."""
        def ints(col: str) -> np.ndarray:
            return (pd.to_numeric(pd.Series(cols[col]), errors="coerce").fillna(-1).to_numpy(np.int64) if col in cols
                    else np.full(n, -1, np.int64))
        proto = np.asarray(cols["proto"], dtype=object)
        rp, op = ints("resp_p"), ints("orig_p")
        ports = sorted({p for _, p in VPN_PORTS})
        cand = np.isin(rp, ports)
        for name in VPN_PROTOCOLS:
            cand |= proto == name
        back = np.isin(op, ports) & (rp >= 1024) & ~cand & (proto == "udp")
        hit = np.flatnonzero(cand | back)
        if not len(hit):
            return
        resp = np.asarray(cols["resp_h"], dtype=object)
        host = np.where(back, np.asarray(cols["orig_h"], dtype=object), resp) if back.any() else resp
        port = np.where(back, op, rp)
        for p, h, k in zip(proto[hit].tolist(), host[hit].tolist(), port[hit].tolist()):
            kind = VPN_PROTOCOLS.get(p) or VPN_PORTS.get((p, k), "")
            if kind:
                if len(self.vpn) >= MAX_VPN:
                    break
                self.vpn.setdefault(str(h), kind)

    def unfollowed(self) -> list[str]:
        """The names looked up (answered) that no connection followed, the most looked up first."""
        if self.overflow:
            return []
        out = [n for n in self.lookups if n not in self.named and not (self.addresses[n] & self.contacted)]
        return sorted(out, key=lambda n: (-self.lookups[n], n))

    def warn(self, stats, capture: str) -> None:
        """Add :meth:`line` to ``stats`` (a :class:`~kscc_traffic.capture.stats.ReadStats`), if any."""
        line = self.line(capture)
        if line:
            stats.warn(line)

    def line(self, capture: str) -> str | None:
        """The warning line about the names :meth:`unfollowed` (None when there is none)."""
        names = self.unfollowed()
        if not names:
            return None
        parts = []
        for n in names[:MAX_NAMES]:
            k = self.lookups[n]
            addrs = sorted(self.addresses[n])
            shown = ", ".join(addrs[:3]) + (f" and {len(addrs) - 3} more" if len(addrs) > 3 else "")
            parts.append(f"{n} ({k} time{'s' if k != 1 else ''}, to {shown})")
        more = f" and {len(names) - MAX_NAMES} more names" if len(names) > MAX_NAMES else ""
        v4only = [n for n in names if self.v6_clients.get(n) and all(":" not in a for a in self.addresses[n])]
        six = (f"; {', '.join(v4only[:MAX_NAMES])} {'was' if len(v4only) == 1 else 'were'} asked over IPv6 and "
               "answered with IPv4 addresses only: an IPv6-only host cannot reach them without NAT64/DNS64"
               if v4only else "")
        head = (f"{capture}: Kaspersky names were resolved but no connection to them was captured: "
                f"{'; '.join(parts)}{more}. ")
        if v4only and len(v4only) == len(names) and not self.seen_v4:
            # (no IPv4 flow at all: an IPv6-only network, the likelier cause; scenario pass s51 #2)
            return escape_terminal(
                f"{head}{'It was' if len(names) == 1 else 'They were'} asked over IPv6 and answered with IPv4 "
                "addresses only, and the capture shows no IPv4 traffic nor NAT64: an IPv6-only host cannot reach "
                "them without NAT64/DNS64 (give the resolver DNS64 with a NAT64 gateway, or the host IPv4). Else: a "
                "firewall or security product on this host drops a blocked connection before the capture point: "
                "check the agent host's own firewall and security software")
        why = ("A firewall or security product on this host drops a blocked connection before the capture "
               "point, so only the lookup shows: check the agent host's own firewall and security software "
               "(or whether the agent ran and tried to connect)")
        if self.vpn:
            # (the connections went into a tunnel the capture sees only from outside: break-it s51)
            shown_vpn = ", ".join(f"{k} with {h}" for h, k in list(self.vpn.items())[:3])
            why = (f"The capture holds VPN tunnel traffic ({shown_vpn}{' and more' if len(self.vpn) > 3 else ''}): "
                   "the agent's connections may go inside the tunnel, where this capture cannot see them; "
                   "capture on the tunnel's interface (tcpdump -i any, or Npcap's adapter of the VPN) or inside "
                   "the VPN. Else: " + why[0].lower() + why[1:])
        return escape_terminal(f"{head}{why}{six}")
