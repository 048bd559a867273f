"""Server names per flow: TLS SNI, then HTTP Host, then DNS answers seen earlier in the capture.

``server_name`` is the name the client asked for; ``name_source`` says where it came from
(``sni``, ``http_host``, ``dns`` or ``''``). For DNS, an address maps to the name at the head of
the CNAME chain that led to it (the name the client looked up), taken from the latest answer
received before the flow started, preferring answers received by the flow's own originator.
Names are untrusted text from packets; they are stored as they are and escaped on output.
"""
from __future__ import annotations

import ipaddress

import numpy as np
import pandas as pd

from .inspect import DnsAnswers

NAME_COLUMNS: dict[str, tuple[str, str, str]] = {
    "server_name": ("object", "", "name the client asked for (SNI, HTTP Host or DNS), '' if unknown"),
    "name_source": ("object", "", "where server_name comes from: sni, http_host, dns, or ''"),
    "dns_name": ("object", "", "name the responder's address was resolved from (DNS), '' if none"),
}

#: a DNS answer received up to this long after the flow's first packet still names it (ns)
DNS_SLACK_NS = 1_000_000


def is_ip_literal(name: str) -> bool:
    """True when ``name`` is an IPv4/IPv6 address rather than a host name."""
    try:
        ipaddress.ip_address(name.strip("[]"))
        return True
    except ValueError:
        return False


def assign_names(flows: pd.DataFrame, answers: DnsAnswers) -> pd.DataFrame:
    """Return ``flows`` with :data:`NAME_COLUMNS` added (see module docstring)."""
    n = len(flows)
    out = flows.copy()
    dns_name = np.full(n, "", dtype=object)
    if n and answers.address:
        table = answers.frame().sort_values("ts_ns", kind="stable")
        by_addr: dict[str, list[tuple[int, str, str]]] = {}
        for ts, client, addr, name in table.itertuples(index=False):
            by_addr.setdefault(addr, []).append((ts, client, name))
        first_ts = flows["ts_ns"].to_numpy()
        for f, (resp, orig) in enumerate(zip(flows["resp_h"].tolist(), flows["orig_h"].tolist())):
            cands = by_addr.get(resp)
            if not cands:
                continue
            limit = int(first_ts[f]) + DNS_SLACK_NS
            best = ""
            best_any = ""
            for ts, client, name in cands:
                if ts > limit:
                    break
                best_any = name
                if client == orig:
                    best = name
            dns_name[f] = best or best_any
    sni = out["sni"].to_numpy(dtype=object) if "sni" in out else np.full(n, "", object)
    host = out["http_host"].to_numpy(dtype=object) if "http_host" in out else np.full(n, "", object)
    name = np.full(n, "", dtype=object)
    source = np.full(n, "", dtype=object)
    for f in range(n):
        if sni[f]:
            name[f], source[f] = sni[f], "sni"
        elif host[f]:
            name[f], source[f] = host[f], "http_host"
        elif dns_name[f]:
            name[f], source[f] = dns_name[f], "dns"
    out["server_name"] = name
    out["name_source"] = source
    out["dns_name"] = dns_name
    return out
