"""(flows, rules) -> purpose, verdict and reason per flow. Pure: no I/O, no packets.

Verdicts and reasons (first match wins, in this order):

- ``blocked`` — ``icmp_unreachable`` (an ICMP/ICMPv6 destination-unreachable quotes the flow and
  the responder never answered), ``rejected`` (the SYN was answered by a RST: conn_state REJ),
  ``no_answer`` (SYN and retransmissions met silence: S0, SH, RSTOS0; or a UDP request to a
  request/response service with no reply), ``tls_failed`` (the TLS handshake was aborted by
  either side — alert, FIN or RST — before it completed).
- ``unexpected`` — ``tls_intercepted`` (the server certificate, visible up to TLS 1.2, is not for
  the name asked), ``not_tls`` (cleartext where the rule documents TLS/HTTPS),
  ``host_mismatch`` (a known name outside the rule's host mask), ``wrong_direction`` (the
  documented port was on the side that opened the connection), ``undocumented_port`` (a name
  under kaspersky.com on a port no rule documents).
- ``ok`` — a documented purpose that worked; a one-way UDP broadcast/multicast or inbound
  datagram is normal.
- ``unclassified`` — no rule covers the flow.

A TCP flow whose start was not captured (``partial``) is judged on what was seen: it cannot be
``no_answer`` or ``rejected``, and ``partial`` is added to its reason (``partial`` alone when ok).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .inspect import split_cert_names
from .names import is_ip_literal
from .protocols.tls import name_matches, under_mask
from .rules import RuleSet

CLASS_COLUMNS: dict[str, tuple[str, str, str]] = {
    "purpose": ("object", "", "rule id of the documented purpose, 'dns', or '' (none)"),
    "verdict": ("object", "", "ok, blocked, unexpected or unclassified"),
    "reason": ("object", "", "why: no_answer, rejected, icmp_unreachable, tls_failed, tls_intercepted, not_tls, host_mismatch, wrong_direction, undocumented_port; 'partial' added when the start was not captured"),
    "detail": ("object", "", "one sentence for a human: what was seen"),
}

VENDOR_DOMAIN = "kaspersky.com"
_NO_ANSWER_STATES = {"S0", "SH", "RSTOS0"}
#: a ClientHello with no server byte for this long (s, until the flow's last packet) is blocked
TLS_SILENCE_S = 3.0
_CLOSED_STATES = {"SF", "S2", "S3", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR", "REJ"}


def _under_domain(name: str, domain: str) -> bool:
    n = name.lower().rstrip(".")
    return n == domain or n.endswith("." + domain)


def _judge(row: dict, rules: RuleSet) -> tuple[str, str, str, str]:
    """(purpose, verdict, reason, detail) for one flow given as a dict of its columns."""
    proto = row["proto"]
    if proto not in ("tcp", "udp"):
        return "", "unclassified", "", ""
    resp_p, orig_p = int(row["resp_p"]), int(row["orig_p"])
    name = row.get("server_name") or ""
    partial = bool(row.get("partial"))
    state = row["conn_state"]
    answered = int(row["resp_pkts"]) > 0
    icmp_text = row.get("icmp_unreachable") or ""

    if resp_p == 53 or row.get("service") == "dns" and orig_p != 53:
        if icmp_text and not answered:
            return "dns", "blocked", "icmp_unreachable", f"DNS query answered by ICMP {icmp_text}"
        if proto == "tcp" and state == "REJ":
            return "dns", "blocked", "rejected", "DNS over TCP rejected with RST"
        if not answered and row["cast"] == "unicast" and not partial:
            return "dns", "blocked", "no_answer", "DNS query without an answer"
        return "dns", "ok", "partial" if partial else "", ""

    rule = rules.match(proto, resp_p, row["cast"])
    if rule is None:
        back = rules.match(proto, orig_p, row["cast"]) if orig_p >= 0 else None
        if back is not None and proto == "tcp" and "S" in row["history"].lstrip("^")[:1]:
            return (back.id, "unexpected", "wrong_direction",
                    f"connection opened from the documented port {orig_p} ({back.id}) towards "
                    f"{row['resp_h']}:{resp_p}")
        if name and not is_ip_literal(name) and _under_domain(name, VENDOR_DOMAIN):
            return ("", "unexpected", "undocumented_port",
                    f"{proto.upper()} {resp_p} to a Kaspersky name; no rule documents this port")
        return "", "unclassified", "", ""

    def done(verdict: str, reason: str, detail: str) -> tuple[str, str, str, str]:
        if partial:
            reason = f"{reason},partial" if reason else "partial"
        return rule.id, verdict, reason, detail

    # a known name outside the rule's mask: another service on a shared port (443, 80…), whatever
    # happened to it; judged before "blocked" so it never counts as a failure of this purpose
    check = name
    if check and is_ip_literal(check):
        check = row.get("dns_name") or ""
    certs = split_cert_names(row.get("cert_names") or "")
    if not check and not (row.get("sni") or "") and certs and rule.host_mask:
        check = certs[0].removeprefix("*.")  # no name asked: the certificate says who answered
    if rule.host_mask and check and not under_mask(check, rule.host_mask):
        return done("unexpected", "host_mismatch", f"{check} is not under {rule.host_mask}")

    # blocked
    if icmp_text and not (proto == "tcp" and state not in _NO_ANSWER_STATES | {"REJ"}) \
            and not (proto == "udp" and answered):
        return done("blocked", "icmp_unreachable", f"answered by ICMP {icmp_text}")
    if proto == "tcp" and not partial:
        if state == "REJ":
            return done("blocked", "rejected", "the SYN was answered by a TCP reset")
        if state in _NO_ANSWER_STATES and not answered:
            n = int(row["orig_pkts"])
            if state == "S0" and row.get("history", "").lstrip("^") == "S":
                return done("blocked", "no_answer", f"SYN sent {n} time{'s' if n != 1 else ''}, no answer")
            return done("blocked", "no_answer",
                        f"connection attempt without an answer ({n} packet{'s' if n != 1 else ''} sent)")
    if proto == "udp" and not answered and row["cast"] == "unicast" \
            and rule.opener != "inbound_to_agent" and not partial:
        return done("blocked", "no_answer", "UDP request without a reply")

    # what the payload says
    tls_rule = rule.app_protocol in ("tls", "https")
    cproto, sproto = row.get("client_proto", ""), row.get("server_proto", "")
    if tls_rule and (cproto == "tls" or sproto == "tls"):
        asked = row.get("sni") or ""
        if certs:
            if asked and not any(name_matches(asked, c) for c in certs):
                return done("unexpected", "tls_intercepted",
                            f"certificate for {certs[0]} presented for {asked}")
            dns_asked = row.get("dns_name") or ""
            if not asked and dns_asked and not any(name_matches(dns_asked, c) for c in certs):
                return done("unexpected", "tls_intercepted",
                            f"certificate for {certs[0]} presented for {dns_asked} (from DNS)")
        hello = row.get("service") == "ssl"  # the ClientHello was captured: the handshake was seen
        if hello and not row.get("tls_established"):
            if row.get("tls_alert") or state in _CLOSED_STATES:
                why = row.get("tls_alert") or f"connection closed ({state})"
                return done("blocked", "tls_failed", f"TLS handshake aborted: {why}")
            if int(row.get("resp_bytes", 0)) == 0 and float(row.get("duration", 0)) >= TLS_SILENCE_S:
                return done("blocked", "tls_failed",
                            f"ClientHello not answered for {float(row['duration']):.1f} s")
    # mid-stream (partial) bytes need not start on a TLS record boundary: only HTTP is proof there
    cleartext = (cproto and cproto != "tls") or (not cproto and sproto and sproto != "tls")
    if tls_rule and cleartext and (not partial or "http" in (cproto, sproto)):
        return done("unexpected", "not_tls",
                    f"{'HTTP' if 'http' in (cproto, sproto) else 'cleartext'} where TLS is documented")

    return done("ok", "", "")


#: the flow columns _judge reads
_JUDGE_COLUMNS = ("proto", "resp_p", "orig_p", "resp_h", "server_name", "dns_name", "partial", "conn_state",
                  "resp_bytes", "duration",
                  "resp_pkts", "orig_pkts", "icmp_unreachable", "service", "cast", "history", "client_proto",
                  "server_proto", "cert_names", "sni", "tls_established", "tls_alert")


def classify(flows: pd.DataFrame, rules: RuleSet) -> pd.DataFrame:
    """Return a copy of ``flows`` with the :data:`CLASS_COLUMNS` columns added.

    :param flows: a flow table with the flow, application and name columns
        (``kscc_traffic.flows.FLOW_COLUMNS``, ``inspect.APP_COLUMNS``, ``names.NAME_COLUMNS``).
    :param rules: the documented purposes (:func:`kscc_traffic.rules.load_rules`).
    """
    out = flows.copy()
    n = len(out)
    res = np.empty((n, 4), dtype=object)
    needed = [c for c in _JUDGE_COLUMNS if c in out.columns]
    cols = [out[c].tolist() for c in needed]
    for i, values in enumerate(zip(*cols)):
        res[i] = _judge(dict(zip(needed, values)), rules)
    for j, k in enumerate(CLASS_COLUMNS):
        out[k] = res[:, j] if n else pd.Series(dtype=object)
    return out
