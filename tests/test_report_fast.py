"""The column-wise JSON Lines / CSV writers, the grouped readiness checklist and the table report
must write exactly what the row-by-row code they replace wrote (kept below as the reference; for
JSON Lines pandas' ``to_json`` with floats to 6 decimals), on every sample capture, on the shared
corpus, and on hypothesis-made tables full of hostile text (control characters, quotes, newlines,
markup, lone surrogates, commas, formula starts) and unusual columns (extreme integers, NaN/inf
floats, missing values, other dtypes)."""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from conftest import ROOT, shared_corpus
from kscc_traffic import load_rules, report
from kscc_traffic.analyze import analyze_file
from kscc_traffic.errors import CaptureError
from kscc_traffic.names import is_ip_literal
from kscc_traffic.flows import carried_data
from kscc_traffic.report import clean_utf8, escape_csv, escape_terminal
from kscc_traffic.unreachable import NOT_REFUSALS, REJECTS



def _service_said(r) -> str:
    """The reference's name of the service on a managed network's own device (s60: named)."""
    if "KSN Proxy service" in (r.condition or ""):
        return "; the service: KSN Proxy on the distribution point"
    return "; the service: the Network Agent service, klnagent" if r.section in ("§B", "§C") else ""

def _carried(sub):
    """The reference's "carried a byte": flows.carried_data where the table has its columns."""
    if "partial" in sub and "proto" in sub:
        return carried_data(sub)
    return ((sub["orig_bytes"] > 0) | (sub["resp_bytes"] > 0)).to_numpy()

RULES = load_rules()
CAPTURES = sorted(p for p in (ROOT / "samples" / "captures").rglob("*") if p.suffix in (".pcap", ".pcapng"))


# --- the reference: the row-by-row code as it was -------------------------------------------------

def old_clean_frame(flows: pd.DataFrame) -> pd.DataFrame:
    out = flows
    for col in flows.columns:
        if flows[col].dtype != object:
            continue
        values = flows[col].tolist()
        try:
            "\x00".join(v for v in values if isinstance(v, str)).encode("utf-8")
        except UnicodeEncodeError:
            if out is flows:
                out = flows.copy()
            out[col] = [clean_utf8(v) for v in values]
    return out


def old_write_jsonl(flows: pd.DataFrame, out) -> None:
    if len(flows) == 0:
        return
    text = old_clean_frame(flows).to_json(orient="records", lines=True, force_ascii=False,
                                          double_precision=6, date_unit="ns")
    out.write(text if text.endswith("\n") else text + "\n")


def json_float_text(v) -> str:
    """A float as JSON Lines writes it (pandas, 6 decimals); '' for NaN/inf (JSON null)."""
    t = pd.Series([v]).to_json(orient="values", double_precision=6)[1:-1]
    return "" if t == "null" else t


def old_write_csv(flows: pd.DataFrame, out) -> None:
    # the row-by-row reference; float columns hold the numbers of JSON Lines (newcomer 17 #8)
    w = csv.writer(out, lineterminator="\n")
    w.writerow(list(flows.columns))
    floats = [flows.dtypes.iloc[j].kind == "f" if isinstance(flows.dtypes.iloc[j], np.dtype) else False
              for j in range(flows.shape[1])]
    for row in flows.itertuples(index=False):
        w.writerow([json_float_text(np.asarray([v], dtype=flows.dtypes.iloc[j])[0]) if floats[j]
                    else escape_csv(v) for j, v in enumerate(row)])


def failed_tls(r) -> str:
    # (session 55, break-it dp #4: on a distribution point's port, its service first)
    if r.opener == "agent_to_dp":
        return ("the distribution point's service or a device between (see each flow's detail): check that its "
                "Network Agent service is running and answering there, and accepts this agent's TLS version and "
                "ciphers (update an old Network Agent), then any proxy, TLS inspection or application-aware "
                "firewall between the agent and the distribution point")
    return ("a proxy, TLS inspection or an application-aware firewall in the path (see each flow's detail): let the "
            f"agent's TLS to {r.host_mask or 'the documented servers'} through uninspected")


def _resolver_answered(flows: pd.DataFrame) -> int:
    """Row by row: the blocked no_answer DNS flows (not cut short, no mismatched response, no
    answer lost as fragments) whose client got a response from the same resolver, port and
    protocol in another flow of the table."""
    if any(c not in flows for c in ("orig_h", "resp_h", "orig_p", "resp_p", "proto", "dns_rcode", "detail")):
        return 0

    def key(r):
        if int(r.orig_p) == 53 and int(r.resp_p) != 53:
            return (r.resp_h, r.orig_h, int(r.orig_p), r.proto)
        return (r.orig_h, r.resp_h, int(r.resp_p), r.proto)
    dns = [r for r in flows.itertuples(index=False) if r.purpose == "dns"]
    answered = {key(r) for r in dns if isinstance(r.dns_rcode, str) and r.dns_rcode}
    n = 0
    for r in dns:
        if r.verdict != "blocked" or str(r.reason).split(",")[0] != "no_answer":
            continue
        if getattr(r, "dns_unmatched", "") or "maybe before an answer could come" in str(r.detail) \
                or "never captured whole" in str(r.detail):
            continue
        n += key(r) in answered
    return n


def old_readiness(flows: pd.DataFrame, rules) -> pd.DataFrame:
    rows = []
    several = "capture" in flows and flows["capture"].nunique() > 1
    for r in rules.rules:
        sub = flows[flows["purpose"] == r.id] if len(flows) else flows
        counts = sub["verdict"].value_counts() if len(sub) else pd.Series(dtype=int)
        ok, bl, un = (int(counts.get(k, 0)) for k in ("ok", "blocked", "unexpected"))
        other = int(((sub["verdict"] == "unexpected")
                     & sub["reason"].str.split(",").str[0].isin(["host_mismatch", "wrong_direction"])).sum()) \
            if len(sub) else 0
        # newcomer 22 F2: TCP connections captured one way only (reason one_way) and nothing else
        one_way = int(((sub["verdict"] == "unclassified") & (sub["reason"].str.split(",").str[0] == "one_way")).sum()) \
            if len(sub) else 0
        # (newcomer 27 F3: a non-Kaspersky name on a KSC-only port: the agent pointed at another server)
        ksc_only = (r.transport == "tcp" and r.port_lo >= 1024 and r.opener != "agent_to_dp"
                    and str(r.host_mask or "").lower().endswith(".kaspersky.com"))
        # (review 28: a flow with a name: '' is one judged by the server's certificate alone)
        away = ((sub["verdict"] == "unexpected") & (sub["reason"].str.split(",").str[0] == "host_mismatch")
                & (sub["server_name"] != "")
                & ~sub["server_name"].str.lower().str.rstrip(".").map(
                    lambda n: n == "kaspersky.com" or n.endswith(".kaspersky.com")).astype(bool)) \
            if ksc_only and len(sub) and "server_name" in sub else pd.Series(False, index=sub.index, dtype=bool)
        k_away = int(away.sum())
        away_names = list(dict.fromkeys(sub.loc[away, "server_name"]))[:3] if k_away else []
        status = ("blocked" if bl else "unexpected" if un > other - k_away or (other - k_away and not ok)
                  else "verified" if ok else "seen one-way" if one_way else "not seen")
        reasons = sorted({x.split(",")[0] for x in sub["reason"] if x and x != "partial"}) if len(sub) else []
        fix = r.fix
        if status == "seen one-way":
            fix = (f"{one_way} connection{'s' if one_way != 1 else ''} on {r.transport.upper()} {r.port_text} seen "
                   "in one direction only: the agent's packets acknowledge the server's answers (its SYN-ACK, and "
                   "data), but the capture holds none of the server's packets (a mirror port or tap that sees one "
                   "direction, or asymmetric routing), so it shows that the server answered, not what it said. To "
                   f"verify, capture both directions (on the agent itself); what it needs: {r.fix}")
        # (newcomer 23 F2: not a certificate refused inside the tunnel, tls_intercepted; break-it 24 F2:
        # nor any flow its proxy passed on, a 2xx, a 3xx to a request in absolute-form)
        def passed(t, c, x):
            return t != "" and (str(c)[:1] == "2" or str(t).startswith(("http://", "https://")) and str(c)[:1] == "3"
                                or x.split(",")[0] == "tls_intercepted")

        statuses = (sub["http_status"] if "http_status" in sub else [""] * len(sub)) if len(sub) else []
        proxied = sum(1 for v, t, c, x in zip(sub["verdict"], sub["proxy_target"], statuses, sub["reason"])
                      if v == "blocked" and t != "" and not passed(t, c, x)) \
            if len(sub) and "proxy_target" in sub else 0
        # (break-it 24 F2-F4: the blocked flows whose TLS failed inside a proxy's tunnel, the ok ones
        # through a proxy, the blocked ones direct)
        px = None
        if "proxy_target" in flows:
            tun, ok_px, direct = [], [], 0
            for i in range(len(sub)):
                row = sub.iloc[i]
                t, x = row["proxy_target"], row["reason"].split(",")[0]
                c = row["http_status"] if "http_status" in sub else ""
                at = old_endpoint(row["resp_h"], row["resp_p"]) if "resp_p" in sub else ""
                if row["verdict"] == "ok" and t != "":
                    ok_px.append(at)
                if row["verdict"] == "blocked" and t == "":
                    direct += 1
                if row["verdict"] == "blocked" and t != "" and not t.startswith(("http://", "https://")) \
                        and passed(t, c, row["reason"]) \
                        and (x in ("tls_failed", "tls_intercepted")
                             or str(row.get("detail", "")).startswith("the server answered HTTP ")):
                    tun.append((at, x == "tls_intercepted"))
            px = report.ProxyPaths(len(tun), sum(1 for _, y in tun if y),
                                   tuple(sorted({a for a, _ in tun if a}))[:8], len(ok_px),
                                   tuple(sorted({a for a in ok_px if a}))[:8], direct)
        bl_tls = int(((sub["verdict"] == "blocked") & (sub["reason"].str.split(",").str[0] == "tls_failed")).sum()) \
            if len(sub) else 0
        # (newcomer 20 F6: a filter's HTTP refusal of the ClientHello counts as a failed TLS)
        bl_tls += int(((sub["verdict"] == "blocked") & sub["detail"].str.startswith("the server answered HTTP ")).sum()) \
            if len(sub) and "detail" in sub else 0
        # (newcomer 23 F2: a TLS-inspecting proxy's certificate refused, the handshake aborted: blocked,
        # the port open as for tls_failed)
        bl_icpt = int(((sub["verdict"] == "blocked") & (sub["reason"].str.split(",").str[0] == "tls_intercepted")).sum()) \
            if len(sub) else 0
        bl_tls += bl_icpt

        # (newcomer s60 #10: the one cause the tls_intercepted flows' details show, when one)
        def cause(d):
            other = d.startswith("certificate for ") and " presented for " in d
            return (("product_name" if other else "product") if "(TLS inspection)" in d
                    else "name" if other
                    else "untrusted" if d.startswith("the client rejected the server's certificate") else "")
        causes = {cause(str(d)) for d in sub.loc[(sub["verdict"] != "ok")
                                                 & (sub["reason"].str.split(",").str[0] == "tls_intercepted"),
                                                 "detail"]} if len(sub) and "detail" in sub else set()
        icpt_text = report.intercepted_text(next(iter(causes)) if len(causes) == 1 else "")
        icpt_note = (f" ({bl_icpt} of them aborted on a TLS-inspecting proxy's certificate: exclude these names from "
                     "inspection)" if bl_icpt else "")
        if status == "blocked" and bl == bl_tls and bl != proxied and bl == bl_icpt:
            fix = (f"{'this connection' if bl == 1 else f'these {bl} connections'} reached the server on "
                   f"{r.transport.upper()} {r.port_text} (the TCP handshake completed: the port is open, nothing to "
                   "open in the firewall), then the TLS handshake was aborted on a TLS-inspecting proxy's certificate "
                   f"(see each flow's detail): tls_intercepted: {icpt_text}"
                   + (f" ({r.host_mask})" if r.host_mask else ""))
        elif status == "blocked" and bl == bl_tls and bl != proxied:
            fix = (f"{'this connection' if bl == 1 else f'these {bl} connections'} reached the server on "
                   f"{r.transport.upper()} {r.port_text} (the TCP handshake completed: the port is open), then the "
                   f"TLS handshake failed: {failed_tls(r)}" + icpt_note)
        # break-it v6 32 F1: TLS failed on a path-MTU black hole (the detail's hint): its own advice
        # (newcomer 33 F2: a path-MTU error the client ignored, advised the same; session 40: read from
        # the icmp_unreachable column, not from the detail's words)
        bl_mtu = int(((sub["verdict"] == "blocked").to_numpy()
                      & np.array([report.mtu_holed(x, y, z) for x, y, z in
                                  zip(sub["detail"].astype(str), sub["reason"].astype(str),
                                      sub["icmp_unreachable"] if "icmp_unreachable" in sub else [""] * len(sub))],
                                 bool)).sum()) \
            if len(sub) and "detail" in sub else 0
        if status == "blocked" and bl == bl_tls and bl != proxied and bl_mtu == bl and not bl_icpt:
            fix = (f"{'this connection' if bl == 1 else f'these {bl} connections'} reached the server on "
                   f"{r.transport.upper()} {r.port_text} (the TCP handshake completed: the port is open), then the "
                   f"TLS handshake failed: {report.MTU_FIX}")
        elif status == "blocked" and bl == bl_tls and bl != proxied and bl_mtu:
            fix += f"; {bl_mtu} of them: {report.MTU_FIX}"
        # (newcomer s58 #2: every blocked flow a handshake_failure answering the ClientHello, none of
        # the cipher suites offered accepted: the agent's TLS policy first, as the flows' detail says;
        # newcomer s59 #3: where the offer was a current one, what answered in the server's place first)
        refused = ((sub["verdict"] == "blocked") & (sub["reason"].str.split(",").str[0] == "tls_failed")
                   & sub["detail"].str.contains(": the server's side accepts none of the cipher suites",
                                                regex=False)) if len(sub) and "detail" in sub else None
        suites = int(refused.sum()) if refused is not None else 0
        current = int((refused & sub["detail"].str.contains(
            "the client offered, though the offer is a current one (", regex=False)).sum()) if suites else 0
        if status == "blocked" and bl == bl_tls == suites and bl != proxied and not bl_icpt and not bl_mtu:
            mask = r.host_mask or "the documented servers"
            policy = ("the server's side accepted none of the cipher suites, key-exchange groups or signature "
                      "algorithms the agent offered (see each flow's detail): check the agent's TLS settings (a "
                      "cipher-suite policy (GPO) or FIPS mode restricting them, an old operating system lacking "
                      "current ones), then any proxy or firewall answering in the server's place (an old one: update "
                      f"it, or let the agent's TLS to {mask} through it uninspected)")
            answered = ("the server's side accepted none of the cipher suites, key-exchange groups or signature "
                        "algorithms the agent offered, though its offer was a current one, which any current server "
                        "accepts (see each flow's detail): look first at what answered in the server's place, an old "
                        f"proxy, firewall or TLS-inspecting device (update it, or let the agent's TLS to {mask} "
                        "through it uninspected) or another server at that address; the agent's TLS settings are the "
                        "unlikely cause")
            said = (answered if current == suites else policy if not current else
                    f"{suites - current} of them: {policy}; {current} of them: {answered}")
            fix = (f"{'this connection' if bl == 1 else f'these {bl} connections'} reached the server on "
                   f"{r.transport.upper()} {r.port_text} (the TCP handshake completed: the port is open, nothing to "
                   f"open in the firewall), then {said}")
        if status == "blocked" and bl == bl_tls and bl != proxied and px and px.tunnel:
            fix = report._tunnel_fix(r, bl, bl_icpt, px, "this connection" if bl == 1 else f"these {bl} connections")
        # break-it 16 F2: SYNs answered by an old connection's packets: clear it, no port to open
        bl_stale = int(((sub["verdict"] == "blocked")
                        & sub["detail"].str.startswith("no connection was made: the SYN was answered ")).sum()) \
            if len(sub) and "detail" in sub else 0
        if status == "blocked" and bl == bl_stale:
            fix = (f"{'this connection' if bl == 1 else f'these {bl} connections'} on {r.transport.upper()} "
                   f"{r.port_text}: the SYN was answered by an old connection's packets (a challenge ACK, a "
                   "SYN-ACK for another sequence number), which the agent reset: a firewall, NAT or the server "
                   "still holds a stale connection on that address and port. Clear it there (or shorten the "
                   "device's TCP timeouts); no port is to be opened")
        if status == "blocked" and proxied and bl - proxied == bl_tls:
            fix = report._proxy_fix(r, bl, proxied, bl_tls, bl_icpt, px)
        # (newcomer 23 F1: a distribution point's port towards a cloud name, host_mismatch)
        onprem = int(((sub["verdict"] == "unexpected") & sub["detail"].astype(str).str.startswith(
            "the agent uses an on-premises Administration Server/distribution point port against the cloud "
            "server")).sum()) if len(sub) and "detail" in sub else 0

        # (audit s25: host_mismatch flows whose connection itself failed: said, never "nothing to change")
        mism_failed = ((sub["verdict"] == "unexpected") & (sub["reason"].str.split(",").str[0] == "host_mismatch")
                       & sub["detail"].astype(str).str.contains("the connection itself failed", regex=False)
                       & ~sub["detail"].astype(str).str.startswith("the agent uses an on-premises Administration")) \
            if len(sub) and "detail" in sub else pd.Series(False, index=sub.index, dtype=bool)
        failed_all = int(mism_failed.sum())
        failed_vendor = int((mism_failed & sub["server_name"].str.lower().str.rstrip(".").map(
            lambda n: n == "kaspersky.com" or n.endswith(".kaspersky.com"))).sum()) \
            if len(sub) and "server_name" in sub else 0

        # (audit s25: wrong_direction flows opened from outside towards a local address on a cloud port)
        wrong_rows = ((sub["verdict"] == "unexpected") & (sub["reason"].str.split(",").str[0] == "wrong_direction")) \
            if len(sub) else pd.Series(False, index=sub.index, dtype=bool)
        # (s56: and a distribution point's port opened by the distribution point towards its agent)
        inbound = int((wrong_rows & sub["detail"].astype(str).str.startswith(
            ("an inbound connection: opened from outside", "opened by a distribution point towards its own agent")
        )).sum()) if len(sub) and "detail" in sub else 0
        dp_rule = r.opener == "agent_to_dp"
        inbound_text = ("opened by a distribution point towards its own agent, on a port of the distribution point "
                        "(agents open these ports towards their distribution point, never the other way): a "
                        "distribution point that takes that device for one (check which devices are distribution "
                        "points in the Cloud Console), or another program") if dp_rule else \
            ("opened from outside towards an agent's address on a cloud server's port (an inbound connection: "
             "the cloud server is never at a local address and never connects to agents): a port "
             "forwarding to that host, or another program listening there")

        def failed_text(k):
            return (f"; {k} of them failed (no answer, a reset, an ICMP error or an aborted TLS handshake: see each "
                    "flow's detail)" if k else "")

        def onprem_fix(k):
            return (f"{'this flow' if k == 1 else f'these {k} flows'} on {r.transport.upper()} {r.port_text} went "
                    "to the cloud Administration Server (a Kaspersky cloud name), not to a distribution point: the "
                    "agent uses an on-premises Administration Server/distribution point port against the cloud "
                    "server, which takes agents on its own ports (each flow's detail names them). Check the "
                    "Administration Server address and port the agent is set to use (a setting left over from an "
                    "on-premises Kaspersky Security Center: move the agent to the cloud, e.g. with the cloud's "
                    f"installation package); nothing to open on {r.transport.upper()} {r.port_text} for "
                    f"{'it' if k == 1 else 'them'}")

        def other_fix(kinds):
            if onprem:
                rest = (f"; {other - onprem} more went to names outside {r.host_mask or 'the documented ones'} or "
                        "had the documented port on the side that opened the connection: not this purpose's traffic"
                        if other > onprem else "")
                return onprem_fix(onprem) + rest + failed_text(failed_all)
            names = (f"went to names outside {r.host_mask}: not this purpose's servers. If an agent "
                     "made them, check the Administration Server address, DNS and proxy it uses; else "
                     "they are another program's traffic")
            reverse = ("had the documented port on the side that opened the connection: a source port "
                       "the OS or a NAT picked in the range, or a server connecting back; nothing to open "
                       "for them")
            if inbound and inbound >= int(wrong_rows.sum()):
                reverse = f"were {inbound_text}; nothing to open for them" + (
                    "" if dp_rule else " (close such a port forwarding if it is not wanted)")
            elif inbound:
                reverse += f" ({inbound} of them {inbound_text})"
            # newcomer 23 F7: Kaspersky names outside the mask are its other services
            mism = (sub["verdict"] == "unexpected") & (sub["reason"].str.split(",").str[0] == "host_mismatch")
            vendor = int((mism & sub["server_name"].str.lower().str.rstrip(".").map(
                lambda n: n == "kaspersky.com" or n.endswith(".kaspersky.com"))).sum()) \
                if len(sub) and "server_name" in sub else 0
            other_kl = ("Kaspersky names not on the KSC Cloud Console port page (its other services: updates, "
                        "KSN, licensing…)")
            rest = failed_all
            # newcomer 29 F7: the Cloud Console's own names (*.ksc.kaspersky.com) on a port not theirs
            console = int((mism & sub["server_name"].str.lower().str.rstrip(".").map(
                lambda n: n == "ksc.kaspersky.com" or n.endswith(".ksc.kaspersky.com"))).sum()) if vendor else 0
            if console and console >= un:
                names = ("went to the Cloud Console server (*.ksc.kaspersky.com) on a port the KSC Cloud Console "
                         "port page does not document for it: not this purpose's servers, and no port the agent "
                         "needs for the Cloud Console. If an agent made them, check the Administration Server port "
                         "it is set to use; else they are another program's traffic")
            elif vendor and vendor >= un and failed_vendor:
                names = (f"went to names outside {r.host_mask}: {other_kl}, not this purpose's servers; "
                         f"{failed_vendor} of them failed (no answer, a reset, an ICMP error or an aborted TLS "
                         "handshake: see each flow's detail): a firewall or proxy on the path blocks that Kaspersky "
                         "service, which the agent may need: allow it as that service's own port list says (it is "
                         "not a Cloud Console port)")
                rest -= failed_vendor
            elif vendor and vendor >= un:
                names = (f"went to names outside {r.host_mask}: {other_kl}, not this purpose's servers; nothing "
                         "to change for the Cloud Console (those services have their own port list)")
            elif vendor:
                names = (f"went to names outside {r.host_mask}: not this purpose's servers ({vendor} of them "
                         f"{other_kl}). If an agent made the others, check the Administration Server address, DNS "
                         "and proxy it uses; else they are another program's traffic")
            kinds = set(kinds) & {"host_mismatch", "wrong_direction"}
            text = f"these flows on {r.transport.upper()} {r.port_text} " + (
                reverse if kinds == {"wrong_direction"}
                else f"{names.split(':')[0]} or {reverse}" if len(kinds) == 2 else names) + failed_text(rest)
            if un == 1:   # newcomer 30 F5: one flow said in the singular
                for many, one in (("these flows on", "this flow on"), ("went to names outside", "went to a name outside"),
                                  ("If an agent made them", "If an agent made it"), ("else they are", "else it is"),
                                  ("nothing to open for them", "nothing to open for it"),
                                  ("were opened from", "was opened from"), ("were opened by", "was opened by"),
                                  ("1 of them failed", "it failed")):
                    text = text.replace(many, one)
            return text

        def away_fix(k):
            from kscc_traffic.protocols.tls import is_host_name
            shown = [x[1:] if x.startswith("'") and x[1:].lstrip(" \u3000").startswith(report._FORMULA_START) else x
                     for x in away_names]
            good = [escape_terminal(x) for x in shown if is_host_name(x)]
            bad = [escape_terminal(x) for x in shown if not is_host_name(x)]
            where = f"{r.transport.upper()} {r.port_text}, ports only a KSC agent uses"
            # newcomer 30 F5: a name that is no host name is said forged or damaged
            forged = (f"{report._list_text(bad, 'name')} {'is not a host name' if len(bad) == 1 else 'are not host names'}"
                      " (an SNI or DNS name holding characters no host name has: forged or damaged, see each flow's "
                      "detail)")
            if bad and not good:
                return (f"{'1 flow' if k == 1 else f'{k} flows'} on {where}: {forged}: no agent is given such "
                        "an address; look for a device on the path that alters the traffic, or the "
                        "program that sent it")
            said = report._list_text(good, "name") if good else "another name"
            return (f"the agent is configured with another Administration Server address ({said}, on {where}; "
                    f"{'1 flow' if k == 1 else f'{k} flows'}): check the address in the agent's settings / "
                    f"installation package (it must be a name under {r.host_mask})" + (f"; {forged}" if bad else ""))

        def with_away(make):
            # (the others' advice, counted without the flows elsewhere; the flows elsewhere said first)
            nonlocal un, other
            if not k_away:
                return make()
            un, other = un - k_away, other - k_away
            try:
                rest = make() if un else None
            finally:
                un, other = un + k_away, other + k_away
            return away_fix(k_away) + ((f". For the other {'one' if un - k_away == 1 else un - k_away}: {rest}") if rest else "")

        if status == "unexpected" and un == other:
            fix = with_away(lambda: other_fix(reasons) if un == other else None) or fix
        # ok flows none of which names a server, on a port below 1024 that browsers share: not proof
        # newcomer 23 F4: an IP literal (Host: 198.51.100.99) names no server
        real = sub["server_name"].map(lambda n: n != "" and not is_ip_literal(n)) \
            if len(sub) and "server_name" in sub else None
        named = int(((sub["verdict"] == "ok") & real).sum()) \
            if len(sub) and "server_name" in sub else None
        if status == "verified" and named == 0 and r.host_mask and r.port_hi < 1024:
            status = "port open"
            # (audit s25: plain HTTP, cert_check, has a Host header and an HTTP request, no TLS)
            http = r.app_protocol == "http"
            fix = (f"{ok} flow{'s' if ok != 1 else ''} on {r.transport.upper()} {r.port_text} answered, but "
                   "none named a server ("
                   + ("no host name in an HTTP Host header or DNS answer" if http
                      else "no SNI, DNS answer or certificate") + " seen): they may be another "
                   "program's traffic. To verify the purpose, capture from the agent's start (its DNS lookup "
                   f"and {'HTTP request' if http else 'TLS handshake'} to {r.host_mask})")
        # newcomer 23 F12: a TLS purpose whose ok flows are all bare TCP handshakes: port open
        data_ok = int(((sub["verdict"] == "ok").to_numpy() & _carried(sub)).sum()) \
            if len(sub) and "orig_bytes" in sub and "resp_bytes" in sub else None
        if status == "verified" and data_ok == 0 and r.app_protocol in ("tls", "https"):
            status = "port open"
            fix = (f"{ok} flow{'s' if ok != 1 else ''} on {r.transport.upper()} {r.port_text} answered, but none "
                   "carried a byte (a bare TCP handshake: a port probe such as Test-NetConnection, or a connection "
                   "closed before its TLS began): the port is open, the TLS connection itself is not shown. To "
                   f"verify the purpose, capture the agent connecting (its TLS handshake to "
                   f"{r.host_mask or 'the documented servers'})")
        # UDP datagrams nothing answered (broadcasts, multicasts): seen, not shown to be received
        answered_ok = int(((sub["verdict"] == "ok") & (sub["resp_pkts"] > 0)).sum()) \
            if len(sub) and "resp_pkts" in sub else None
        if status == "verified" and answered_ok == 0 and r.transport == "udp":
            status = "seen one-way"
            fix = (f"{ok} flow{'s' if ok != 1 else ''} on UDP {r.port_text} seen, none answered (no answer is "
                   "expected): this capture shows that they were sent, not that they were received (one taken on "
                   "a receiving device shows that they reached its interface; its host firewall may still drop "
                   "them). To verify, check on a receiving device (a capture there, if this is not one, and its "
                   f"firewall log); what it needs: {r.fix}")
            # (session 55: the multicast's snooping named for the groups' family, MLD for IPv6 ones)
            six = {":" in str(h) for h in sub.loc[sub["verdict"] == "ok", "resp_h"]} if "resp_h" in sub else set()
            if True in six:
                fix = fix.replace("IGMP snooping", "MLD snooping" if six == {True} else "IGMP/MLD snooping")
        # newcomer 21 F4: a port unreachable from the destination itself: nothing listens there
        bl_closed = int(((sub["verdict"] == "blocked") & sub["detail"].str.contains(
            "the packet arrived, but nothing listens on that port there", regex=False)).sum()) \
            if len(sub) and "detail" in sub else 0
        # (audit s25: the detail of one carrying a cloud server's own address says it is most likely forged)
        forged_text = "most likely forged by a firewall on the path (a reject rule answers in the name of the address"
        bl_forged = int(((sub["verdict"] == "blocked") & sub["detail"].str.contains(forged_text, regex=False)).sum()) \
            if len(sub) and "detail" in sub else 0
        if status == "blocked" and bl_forged:
            # newcomer 23 F3: a cloud server's address: a firewall's forged answer, or Kaspersky's to know
            cl = sub[(sub["verdict"] == "blocked") & sub["detail"].str.contains(forged_text, regex=False)]
            hosts, ports = sorted(set(cl["resp_h"].astype(str)))[:8], sorted(set(cl["resp_p"].astype(int)))

            def listed(items, what):
                items = [str(x) for x in items]
                if len(items) > 3:
                    return f"{', '.join(items[:3])} and {len(items) - 3} more {what}{'s' if len(items) > 4 else ''}"
                return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
            where = f"{r.transport.upper()} {listed(ports, 'port')} on {listed(hosts, 'server')}"
            tell = f"if none does, report the server and port ({where}) to Kaspersky support"
            if bl == bl_forged:
                fix = (f"{'this flow was' if bl == 1 else f'these {bl} flows were'} answered by ICMP port "
                       f"unreachable carrying the cloud server's own address, refusing {where}: most likely forged "
                       "by a firewall on the path (a reject rule answers in the name of the address it blocks). "
                       "Check the firewalls and proxies between the agent and the Internet for a rule that "
                       f"rejects it: {fix}; {tell}")
            else:
                fix += (f"; {bl_forged} of them {'was' if bl_forged == 1 else 'were'} answered by ICMP port "
                        f"unreachable carrying the cloud server's own address ({where}): most likely forged by a "
                        f"firewall on the path; {tell}")
        if status == "blocked" and bl_closed:
            service = (f"check that the service for it is running and listening on {r.transport.upper()} "
                       f"{r.port_text} there ({r.purpose[0].lower()}{r.purpose[1:].rstrip('.')}{_service_said(r)})")
            if bl == bl_closed:
                fix = (f"{'this flow was' if bl == 1 else f'these {bl} flows were'} answered by the destination "
                       f"host itself with ICMP port unreachable: {r.transport.upper()} {r.port_text} reached it, "
                       f"but nothing listens there: {service}; if it is, the host's own firewall rejects it: {fix}")
            else:
                fix += (f"; {bl_closed} of them {'was' if bl_closed == 1 else 'were'} answered by the destination "
                        f"host itself with ICMP port unreachable (nothing listens there): {service}")
        # newcomer 22 F5: a distribution point's reset: the service first (its own firewall after)
        dp_detail = sub["detail"].astype(str) if len(sub) and "detail" in sub else pd.Series(dtype=str)
        blocked_rows = (sub["verdict"] == "blocked") if len(sub) else pd.Series(dtype=bool)
        resets = int((blocked_rows & dp_detail.str.startswith(
            "the SYN was answered by a TCP reset from the distribution point")).sum()) if len(dp_detail) else 0
        own = int((blocked_rows & dp_detail.str.startswith(
            "the SYN was answered by a TCP reset from the distribution point itself")).sum()) if len(dp_detail) else 0
        # newcomer 23 F11: the DP's own resets all over one family, the ok flows over the other
        fam = ""
        if status == "blocked" and ok and bl == resets == own:
            six = sub["resp_h"].astype(str).str.contains(":", regex=False)
            ok6, bl6 = (int((six & (sub["verdict"] == k)).sum()) for k in ("ok", "blocked"))
            fam = "IPv6" if bl6 == bl and ok6 == 0 else "IPv4" if bl6 == 0 and ok6 == ok else ""
        if status == "blocked" and resets:
            service = (f"check that the service for it is running and listening on {r.transport.upper()} "
                       f"{r.port_text} there ({r.purpose[0].lower()}{r.purpose[1:].rstrip('.')}{_service_said(r)})")
            them = 'this connection attempt was' if bl == 1 else f'these {bl} connection attempts were'
            if fam:
                good = "IPv4" if fam == "IPv6" else "IPv6"
                fix = (f"{them} answered by a TCP reset from the distribution point itself over {fam} (on the "
                       f"client's subnet: no router between them), while {good} worked: the service may listen on "
                       f"{good} only, or the distribution point's host firewall lacks the {fam} rule: let the "
                       f"service listen on {fam} too, or add the {fam} rule ({fix})")
            elif bl == resets == own:
                fix = (f"{them} answered by a TCP reset from the distribution point itself (on the client's subnet: "
                       f"no router between them): {r.transport.upper()} {r.port_text} reached it, but nothing listens "
                       f"there: {service}; if it is, its own firewall rejects it: {fix}")
            elif bl == resets:
                fix = (f"{them} answered by a TCP reset from the distribution point's address: nothing listens there, "
                       f"or a firewall rejects it (its own, or one between the subnets): {service}; if it is: {fix}")
            else:
                fix += (f"; {resets} of them {'was' if resets == 1 else 'were'} answered by a TCP reset from the "
                        f"distribution point{' itself' if own == resets else ''} (nothing listens there?): {service}")
        # newcomer 27 F1: a refused SYN's reset told by the TTL of its address's other packets
        plain = blocked_rows & ~dp_detail.str.startswith("the SYN was answered by a TCP reset from the distribution "
                                                         "point") if len(dp_detail) else pd.Series(dtype=bool)
        own_rst = int((plain & dp_detail.str.contains("the reset came with the server's own ", regex=False)).sum()) \
            if len(dp_detail) else 0
        nearer = int((plain & dp_detail.str.contains("nearer than the server (", regex=False)).sum()) \
            if len(dp_detail) else 0
        them = 'this connection attempt was' if bl == 1 else f'these {bl} connection attempts were'
        # (session 55: the agent's port setting only where the page documents a range)
        ranged = r.port_hi > r.port_lo
        if status == "blocked" and own_rst and bl == own_rst:
            fix = (f"{them} answered by a TCP reset with the server's own TTL (as its packets on other connections): "
                   "most likely the server's own answer: nothing listens on this port there (a wrong port? the "
                   "service down?), or its host firewall rejects it (a firewall on the path that copies the server's "
                   "TTL looks the same)." + (" Check first the port the agent is set to use (the Administration "
                   "Server's address and port in the agent's settings or installation package: the documented ones "
                   f"are {r.transport.upper()} {r.port_text}, the server's own port within them); if it is right, "
                   "the service is not running there or a firewall rejects the port (the server's own, or one on "
                   "the path)" if ranged else f" The service on {r.transport.upper()} {r.port_text} is not running "
                   "there, or a firewall rejects the port (the server's own, or one on the path)"))
        elif status == "blocked" and own_rst:
            fix += (f"; {own_rst} of them {'was' if own_rst == 1 else 'were'} answered by a TCP reset with the "
                    "server's own TTL: most likely the server's own answer (nothing listens on that port there, "
                    "or its host firewall rejects it)" + (": check the port in the agent's settings" if ranged else ""))
        if status == "blocked" and nearer and bl == nearer:
            fix = (f"{them} answered by a TCP reset from a device nearer than the server (fewer hops than the "
                   f"server's own packets on other connections): a firewall refuses the port: {fix}")
        elif status == "blocked" and nearer:
            fix += (f"; {nearer} of them {'was' if nearer == 1 else 'were'} answered by a TCP reset from a device "
                    "nearer than the server: a firewall refuses the port")
        # newcomer 23 F13: network/host unreachable (no route) from a router: a routing hint
        bl_route = int(((sub["verdict"] == "blocked") & sub["detail"].astype(str).str.contains(
            r"by ICMP (?:(?:network|host) unreachable(?: for TOS)?|destination (?:network|host) unknown) \(3/\d+\)"
            r"|by ICMP (?:no route to destination \(1/0\)|address unreachable \(1/3\))")).sum()) \
            if len(sub) and "detail" in sub else 0
        # break-it v6 32 F2: such an error from the server's own address: a reject rule's, not a router's
        own = 0
        if bl_route:
            for x, h in zip(sub["detail"][sub["verdict"] == "blocked"].astype(str),
                            sub["resp_h"][sub["verdict"] == "blocked"].astype(str)):
                m = re.search(r"\) from ([^\s,;()]+)", x[x.find("by ICMP"):]) if "by ICMP" in x else None
                own += bool(m and m.group(1) == h and re.search(
                    r"by ICMP (?:(?:network|host) unreachable(?: for TOS)?|destination (?:network|host) unknown) "
                    r"\(3/\d+\)|by ICMP (?:no route to destination \(1/0\)|address unreachable \(1/3\))", x))
            bl_route -= own
        if status == "blocked" and bl_route:
            route = ("no route to the destination, an ARP/neighbour failure at the last hop, or an upstream "
                     "outage: check the routes (default gateway, VPN split tunnel) and that the router reaches "
                     "the server")
            if bl == bl_route:
                fix = (f"{'this flow was' if bl == 1 else f'these {bl} flows were'} answered by ICMP network or "
                       f"host unreachable (or no route) from a router: {route}; a firewall rejecting it may answer "
                       f"the same: {fix}")
            else:
                fix += (f"; {bl_route} of them {'was' if bl_route == 1 else 'were'} answered by ICMP network or "
                        f"host unreachable (or no route) from a router: {route}")
        if status == "blocked" and own:
            if bl == own:
                fix = (f"{'this flow was' if bl == 1 else f'these {bl} flows were'} answered by ICMP network, host or "
                       f"address unreachable (or no route) {report.ROUTE_OWN}: {fix}")
            else:
                fix += (f"; {own} of them {'was' if own == 1 else 'were'} answered by ICMP network, host or address "
                        f"unreachable (or no route) {report.ROUTE_OWN}")
        # break-it 25 F1: ICMP errors that are not a firewall's refusal (a routing loop, extension
        # headers dropped, the source address refused…): their advice, not opening the port
        kinds: dict = {}
        if len(sub) and "detail" in sub:
            for x in sub["detail"][sub["verdict"] == "blocked"].astype(str):
                k = next((k for k, v in {**NOT_REFUSALS, **REJECTS}.items() if "by ICMP" in x and v[0].search(x)), "")
                if k:
                    kinds[k] = kinds.get(k, 0) + 1
        if status == "blocked" and kinds:
            fix = report._icmp_fix(bl, kinds, fix)
        # newcomer 23 F5: a plain HTTP request refused by an HTTP answer (a web filter's 403): its URL policy
        http = sub["detail"].astype(str).str.extract(
            r"^the server \S+ answered (\d{3})\b.* to the request for \S+ \(a transparent web filter",
            expand=False)[sub["verdict"] == "blocked"].dropna() if len(sub) and "detail" in sub else pd.Series([])
        if status == "blocked" and len(http):
            said = "HTTP " + "/".join(sorted(set(http)))
            if bl == len(http):
                fix = (f"{'this request was' if bl == 1 else f'these {bl} requests were'} answered {said} on "
                       f"{r.transport.upper()} {r.port_text}, which is open: a web filter or transparent proxy "
                       f"refused {'it' if bl == 1 else 'them'} by policy"
                       + (" (502-504: or it could not reach the server)" if any(x[0] == "5" for x in http) else "")
                       + f": allow {r.host_mask or 'the documented servers'} in its URL filter (the agent's plain "
                       "HTTP requests there); no port is to be opened")
            else:
                fix += (f"; {len(http)} of them {'was' if len(http) == 1 else 'were'} answered {said} by a web "
                        f"filter or transparent proxy (the port is open for {'it' if len(http) == 1 else 'them'}): "
                        f"allow {r.host_mask or 'the documented servers'} in its URL filter")
        # newcomer 21 F1: some blocked flows completed the TCP handshake, then their TLS failed
        if status == "blocked" and 0 < bl_tls < bl and bl != proxied and bl != bl_stale and px and px.tunnel \
                and bl != proxied + bl_tls:
            fix += "; " + report._tunnel_fix(r, bl_tls, bl_icpt, px, f"{bl_tls} of them")
        elif status == "blocked" and 0 < bl_tls < bl and bl != proxied and bl != bl_stale and bl != proxied + bl_tls:
            if bl_tls > bl_mtu:
                fix += (f"; {bl_tls - bl_mtu} of them reached the server (the TCP handshake completed), then the TLS "
                        f"handshake failed: {failed_tls(r)}" + icpt_note)
            if bl_mtu:
                fix += (f"; {bl_mtu} of them reached the server (the TCP handshake completed), then the TLS "
                        f"handshake failed: {report.MTU_FIX}")

        def answered_fix(kinds, blocked_too):
            # newcomer 17 #5: answered but unexpected flows get their reason's advice
            answered = [x for x in ("tls_intercepted", "not_tls") if x in kinds]
            if not answered:
                return None
            k = un - other
            out = (f"{'this connection' if k == 1 else f'these {k} connections'} on {r.transport.upper()} "
                   f"{r.port_text} {'was' if k == 1 else 'were'} answered (the port is open"
                   + ((" for it" if k == 1 else " for them") if blocked_too else "")
                   # (newcomer 19 F19: a cleartext answer may be a filter's refusal)
                   + ("; nothing to open in the firewall" if answered == ["tls_intercepted"] and not blocked_too
                      else "")
                   + "): " + "; ".join(f"{x}: {icpt_text if x == 'tls_intercepted' else report.REASON_TEXT[x]}"
                                       + (f" ({r.host_mask})" if x == "tls_intercepted" and r.host_mask else "")
                                       for x in answered))
            if other > onprem:
                out += (f"; {other - onprem} more went to names outside {r.host_mask or 'the documented ones'} or "
                        "had the documented port on the side that opened the connection: not this purpose's traffic"
                        + failed_text(failed_all))
            if onprem:
                out += f"; {onprem} more: {onprem_fix(onprem)}"
            return out

        if status == "unexpected":
            fix = with_away(lambda: answered_fix(reasons, False) or (other_fix(reasons) if k_away and un == other
                                                                    else None)) or fix
        # (newcomer 26 F1: no_answer attempts the capture's end cut short: said apart from the others'
        # advice; all of them: capture longer)
        cut = int(((sub["verdict"] == "blocked") & (sub["reason"].str.split(",").str[0] == "no_answer")
                   & sub["detail"].astype(str).str.contains("maybe before an answer could come", regex=False)).sum()) \
            if len(sub) and "detail" in sub else 0
        note = ""
        # (newcomer s60 #3: ok TLS sessions the server reset right after the agent's first request)
        refused = int(((sub["verdict"] == "ok") & sub["detail"].astype(str).str.startswith(
            "the TLS handshake completed, then the server reset the connection right after the agent's first request"))
            .sum()) if len(sub) and "detail" in sub else 0
        if status == "verified" and refused:
            note = "sessions reset at the agent's first request"
            which = (f"each of the {refused} sessions" if refused == ok and ok > 1 else "the session" if refused == ok
                     else f"{refused} of the {ok} sessions")
            fix = (f"the server reset {which} on {r.transport.upper()} {r.port_text} right after the agent's first "
                   "request (within 1 s, no server data after the TLS handshake; see each flow's detail): the network "
                   "path works (nothing to open in the firewall); the server refused the agent at the application "
                   "level (an agent set up for another workspace or region, or its certificate): check the "
                   "Administration Server address and the installation package the agent uses. A firewall that "
                   "inspects the traffic can reset sessions in the server's name the same way: if the address is "
                   "right, check its logs")
        # (newcomer s61 #5: ok sessions the server answered slowly, or stopped reading)
        # (break-it s62 #1: ok sessions with a private CA's certificate for the Kaspersky name)
        slow, held, private = (int(((sub["verdict"] == "ok") & sub["detail"].astype(str).str.contains(t, regex=False)).sum())
                               if len(sub) and "detail" in sub else 0
                               for t in ("the server answered the ClientHello after ",
                                         "the server held its receive window closed (zero) for ",
                                         "a private CA, no public one (the cloud's servers have public CAs' certificates"))
        if status == "verified" and (slow or held or private):
            parts = [(note, fix)] if note else []
            if private:
                parts.append(("a server certificate from a private CA (TLS inspection?)", report.private_fix(r, private, ok)))
            if slow:
                parts.append(("a server slow to answer the TLS handshake", report.slow_fix(r, slow, ok)))
            if held:
                parts.append(("a server that stopped reading (zero window)", report.held_fix(r, held, ok)))
            note = "; ".join(x for x, _ in parts)
            fix = ". ".join(f if not i else f[0].upper() + f[1:] for i, (_, f) in enumerate(parts))
        if status == "blocked" and cut >= bl:
            note = "the capture ended before an answer could come"
            fix = (f"{'this attempt on' if bl == 1 else f'these {bl} attempts on'} {r.transport.upper()} "
                   f"{r.port_text} {'was' if bl == 1 else 'were'} unanswered when the capture ended, less than 1 s "
                   f"after {'it' if bl == 1 else 'they'} began (see the flow's detail): nothing shows a block, the "
                   "answer may simply not be in the capture. Capture longer (go on a few seconds after the agent "
                   "connects) and analyse again")
        bl_named = int(((sub["verdict"] == "blocked") & real).sum()) \
            if len(sub) and "server_name" in sub else None
        # (newcomer 26 F5: said first, before the counts of the other flows too, and in the status note)
        nameless = status == "blocked" and bl_named == 0 and bool(r.host_mask) and r.port_hi < 1024
        why = ""
        if ok and bl:
            six = sub["resp_h"].astype(str).str.contains(":", regex=False)
            ok6, bl6 = (int((six & (sub["verdict"] == k)).sum()) for k in ("ok", "blocked"))

            def names_of(rows):
                got = [str(x) for x in rows["server_name"]] if "server_name" in rows else [""]
                return None if any(x == "" or is_ip_literal(x) for x in got) else {x.lower() for x in got}

            def other_servers(bad6):
                # (s57 #10: every flow named, the failing family's and the working one's names
                # disjoint: the families went to other servers, not compared)
                a = names_of(sub[(sub["verdict"] == "blocked") & (six if bad6 else ~six)])
                b = names_of(sub[(sub["verdict"] == "ok") & (~six if bad6 else six)])
                return a is not None and b is not None and not (a & b)
            if bl6 == bl and ok6 == 0 and other_servers(True) or bl6 == 0 and ok6 == ok and other_servers(False):
                pass
            elif bl6 == bl and ok6 == 0:
                why = ("all blocked over IPv6, the ok ones over IPv4: the IPv6 path is blocked; allow the ports "
                       "for IPv6 too, or check its routes; a dual-stack agent tries IPv6 first")
            elif bl6 == 0 and ok6 == ok:
                why = ("all blocked over IPv4, the ok ones over IPv6: the IPv4 path is blocked; allow the ports "
                       "for IPv4 too, or check its routes; a dual-stack agent tries IPv6 first")
            # (no path to check: the DP on the client's subnet answered; or every blocked flow was a
            # TLS session the server answered, s62 #3: nothing dropped or refused on the way)
            if fam or (status == "blocked" and 0 < bl <= bl_tls):
                why = why.split(":")[0]
        if note or cut:   # (no address family told from attempts the capture's end cut short)
            why = ""
        if status == "blocked" and cut and cut < bl:
            fix += (f"; of the {bl} blocked, {cut} {'was' if cut == 1 else 'were'} unanswered when the capture ended "
                    "less than 1 s "
                    f"after {'it' if cut == 1 else 'they'} began (maybe before an answer could come: not counted "
                    "in this advice)")
        # (newcomer 26 F4: several captures: where the flagged flows are, whether the ok ones were elsewhere)
        where, shared, good = "", False, []
        if several and (bl or un):
            names = list(dict.fromkeys(sub.loc[sub["verdict"] == ("blocked" if bl else "unexpected"), "capture"]))
            good = list(dict.fromkeys(sub.loc[sub["verdict"] == "ok", "capture"]))
            shared = bool(set(names) & set(good))
            where = "in " + (names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
                             if len(names) <= 3 else
                             f"{', '.join(names[:3])} and {len(names) - 3} more capture{'s' if len(names) > 4 else ''}")
        # (session 33: the ok ones whose start the capture missed, reason partial, said apart)
        k = int(((sub["verdict"] == "ok") & sub["reason"].str.split(",").apply(lambda x: "partial" in x)).sum())
        started = f" ({k} of them started before the capture)" if k else ""
        def family_fix(fix, why):
            # (session 60: the firewall advice said for the one family whose path is blocked)
            for bad in ("IPv6", "IPv4"):
                if f"the {bad} path is blocked" in why and r.fix in fix:
                    return fix.replace(r.fix, report.ip_family_fix(r, bad))
            return fix
        if status == "blocked" and un:
            why = "; ".join(x for x in (where, why) if x)
            fix = family_fix(fix, why)
            # newcomer 21 F1: blocked and unexpected flows, each kind counted with its own advice
            unx = sub[(sub["verdict"] == "unexpected") & (sub["reason"] != "") & (sub["reason"] != "partial")]
            kinds = unx["reason"].str.split(",").str[0].value_counts().sort_index()
            un_fix = with_away(lambda: answered_fix(list(kinds.index), True)
                               or (other_fix(set(kinds.index)) if un == other else None))
            if un_fix and "exclude these names from inspection" in fix:
                # (newcomer 26, duplicated advice: the exclusion said once, for the blocked ones)
                said = f"tls_intercepted: {icpt_text}" + (
                    f" ({r.host_mask})" if r.host_mask else "")
                un_fix = un_fix.replace(said, "tls_intercepted: a TLS-inspecting proxy's certificate, as for the "
                                              f"blocked one{'s' if bl != 1 else ''} (see there)")
            fix = (f"{ok} of {len(sub)} flows ok{started}, {bl} blocked, {un} unexpected"
                   + (f" ({', '.join(f'{c} {x}' for x, c in kinds.items())})" if len(kinds) else "")
                   + f". For the blocked one{'s' if bl != 1 else ''}{f' ({why})' if why else ''}: {fix}"
                   + f". For the unexpected one{'s' if un != 1 else ''}: "
                   + (un_fix or "see each flow's detail (what answered instead of the documented server)"))
        elif ok and status in ("blocked", "unexpected"):
            others = status == "blocked" and ok + bl == len(sub) and not note
            if status == "blocked" and not why and others:
                why = "the others worked: compare clients, addresses and ports"
            if status != "blocked":
                why = ""
            if status == "blocked" and px and bl == px.bl_direct and ok == px.ok_proxied:
                why, fix = report._path_split(ok, bl, px), report._direct_fix(fix)
            if where:
                if why.startswith("the others worked"):
                    why = ""
                if others and not shared:
                    where += (f"; the others worked, in {'another capture' if len(good) == 1 else f'{len(good)} other captures'}"
                              ": compare the machines, addresses and ports")
                elif others:
                    where += "; the others worked (some in the same capture): compare clients, addresses and ports"
                why = "; ".join(x for x in (where, why) if x)
            fix = family_fix(fix, why)
            fix = (f"{ok} of {len(sub)} flows ok{started}, {bl or un} {status}" + (f" ({why})" if why else "") + f": {fix}")
        elif where and status in ("blocked", "unexpected"):
            fix = f"{status} {where}: {fix}"
        six = sub["resp_h"].astype(str).str.contains(":", regex=False)
        v4 = ~flows["resp_h"].astype(str).str.contains(":", regex=False)
        if "cast" in flows:
            v4 &= flows["cast"].astype(str) == "unicast"
        if status == "blocked" and not ok and not un and bl == len(sub) and not cut and six.all() and not v4.any() \
                and r.fix in fix and r.fix.startswith(("allow outbound ", "allow inbound ")) and " to " in r.fix:
            # (session 60: every flow over IPv6, none worked, no unicast IPv4 flow in the run (review
            # s60 #3: a dual-stack host): the advice says the family)
            fix = fix.replace(r.fix, r.fix.replace(" to ", " over IPv6 to ", 1))
        if status == "blocked" and bl_tls and len(sub) and "detail" in sub and "resp_h" in sub:
            # (newcomer s61 #5: a ClientHello left unanswered by a server that answered one slowly)
            d = sub["detail"].astype(str)
            slow_at = set(sub["resp_h"][(sub["verdict"] == "ok")
                                        & d.str.contains("the server answered the ClientHello after ", regex=False)])
            silent_at = set(sub["resp_h"][(sub["verdict"] == "blocked") & d.str.startswith("ClientHello not answered")])
            if slow_at & silent_at:
                fix += report.slow_server_text(min(slow_at & silent_at))
        if nameless:
            seen = ("no DNS answer or host name in an HTTP Host header" if r.app_protocol == "http"
                    else "no DNS answer, SNI or certificate")
            them = ('this server' if bl == 1 else 'these servers') if not (ok or un) else \
                ("the blocked flow's server" if bl == 1 else "the blocked flows' servers")
            fix = (f"no name was seen for {them} ({seen}): "
                   f"{'it' if bl == 1 else 'they'} may be another program's, or the agent's with its "
                   f"DNS answer cached (capture from the agent's start to tell); if the agent's: {fix}")
            note = "; ".join(x for x in ("no name seen on the blocked flows: maybe another program's", note) if x)
        if status == "unexpected" and not bl and "For the other" not in fix and fix.endswith(
                "nothing to change for the Cloud Console (those services have their own port list)"):
            note = "another Kaspersky service: nothing to change"   # (newcomer s60 #11)
        rows.append({"rule": r.id, "transport": r.transport, "ports": r.port_text, "section": r.section,
                     "purpose_text": r.purpose, "status": status, "status_note": note, "flows": len(sub), "ok": ok,
                     "blocked": bl, "unexpected": un, "reasons": ", ".join(reasons), "fix": fix})
    # (newcomer 28 F4: no flow of KSC agent traffic: no purpose judged on other programs' flows)
    if len(flows) and not _old_ksc(flows, rules):
        rows = [{**x, "status": "not seen", "status_note": "no KSC flow: its port's flows are other programs'",
                 "reasons": "", "fix": ""} if x["flows"] and x["status"] != "not seen" else x for x in rows]
    elif len(flows) and "proto" in flows and "resp_h" in flows:
        # (newcomer 28 F3: IGMP/MLD joins, no multicast datagram of the purpose)
        # (not the groups the system joins for its own services: 224.0.0.0/24 but the IGMPv3
        # reports' 224.0.0.22, SSDP, SLP; review 29)
        # (session 29: the groups a flow's reports join, named in its detail, IGMPv3/MLDv2 records
        # included; not the system's own, IPv6 of link-local scope and SSDP/mDNS of any scope too;
        # a table without details: an IGMP flow's resp_h)
        from kscc_traffic.report import os_group
        mc = (flows["proto"].isin(["igmp", "icmp"]))
        if "detail" in flows:
            found = flows.loc[mc, "detail"].astype(str).str.extract(
                r"IGMP/MLD membership reports join ([0-9A-Fa-f.:]+(?:, [0-9A-Fa-f.:]+)*)")[0]
            cells = [str(x).split(", ") for x in found.dropna()]
        else:
            cells = [[str(x)] for x in flows.loc[mc & (flows["proto"] == "igmp"), "resp_h"]
                     if str(x) not in ("224.0.0.1", "224.0.0.2", "224.0.0.22")]
        mine = [[g for g in c if not os_group(g)] for c in cells]
        joins = sum(1 for m in mine if m)
        groups = sorted({g for m in mine for g in m})[:5]
        for i, (x, r) in enumerate(zip(rows, rules.rules)):
            if joins and x["status"] == "not seen" and not x["flows"] and r.cast == "multicast":
                named = f": {', '.join(groups)}" if groups else ""
                # (IPv6 groups by MLD, IPv4 ones by IGMP: each filtered by its own snooping)
                six = {":" in g for g in groups}
                snooping = ("MLD snooping (an MLD querier on the VLAN)" if six == {True} else
                            "IGMP/MLD snooping (an IGMP and an MLD querier on the VLAN)" if six == {True, False} else
                            "IGMP snooping (an IGMP querier on the VLAN)")
                rows[i] = {**x, "status_note": "joined a multicast group by IGMP/MLD, no datagram received", "fix": (
                    f"the capture holds IGMP/MLD membership reports ({joins} flow{'s' if joins != 1 else ''}: this "
                    f"device joined multicast groups{named}) but "
                    f"no {r.transport.upper()} {r.port_text} multicast datagram: if this is a device with the agent "
                    "of a distribution point that sends by multicast, the datagrams did not reach it: check the "
                    f"multicast routing and {snooping} between the distribution "
                    "point and this device, and that the distribution point sends them (a capture there); what it "
                    f"needs: {r.fix}")}
    # (the text columns object, as the flow table's: session 31)
    t = pd.DataFrame(rows)
    t["purpose"] = t["rule"]        # (newcomer 32 F5: the flow table's name for the id, last)
    return t.astype({c: object for c in t.columns if t[c].dtype != "int64"})


def _old_ksc(flows, rules) -> bool:
    """A flow to a KSC-only port or a Kaspersky name (newcomer 27 F2)."""
    high = {r.id for r in rules.rules if r.port_lo >= 1024}
    vendor = any(str(n).lower().rstrip(".") == "kaspersky.com" or str(n).lower().rstrip(".").endswith(".kaspersky.com")
                 for col in ("server_name", "query") if col in flows for n in flows[col])
    # (a name only a third party's mask accepts, ocsp.digicert.com on 80, is every browser's: not the agent's)
    return vendor or bool(flows["purpose"].isin(high).any())


_STATUS_STYLE = {"verified": "green", "blocked": "bold red", "unexpected": "yellow", "port open": "cyan",
                 "seen one-way": "cyan", "not seen": "dim"}
_VERDICT_STYLE = {"ok": "green", "blocked": "bold red", "unexpected": "yellow", "unclassified": "dim"}


def old_endpoint(host, port) -> str:
    # IPv6 in brackets, as the HTML report (newcomer 17 #9)
    return str(host) if int(port) < 0 else f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"


def old_print_table(flows, rules, console, max_flagged: int = 40) -> None:
    # (newcomer 27 F2: no flow of KSC agent traffic at all: a headline first)
    headline = bool(len(flows)) and not _old_ksc(flows, rules)
    if headline:
        several = "capture" in flows and flows["capture"].nunique() > 1
        # (newcomer 36 F5: flows cut by the snaplen before a name was read, counted row by row)
        cut = sum(1 for c, p, n in zip(flows["payload_cut"], flows["proto"], flows["server_name"])
                  if c and p == "tcp" and not n)
        lost = (f" Or a name was lost: {cut} TCP flow{'s' if cut != 1 else ''} had {'their' if cut != 1 else 'its'} "
                "first bytes cut by the snaplen before a server name could be read; capture again with the whole "
                "packets (tcpdump -s 0) to see the names") if cut else ""
        console.print(Text(f"No KSC agent traffic: no flow in {'these captures' if several else 'this capture'} goes "
                           "to a Kaspersky name or a KSC-only port: captured on the wrong "
                           f"machine, or at the wrong time?{lost}", style="bold yellow"))
    elif not len(flows):
        # (newcomer s60 #5: no flow at all: a headline too)
        console.print(Text("No KSC agent traffic: no flow at all to judge: capture again on the agent itself, on the "
                           "interface its traffic uses, while it connects", style="bold yellow"))
    # (newcomer 31 F3: no KSC agent traffic: the title says whose flows the counts are)
    t = Table(title="Flows per purpose" + (": other programs' flows on the purposes' ports, not KSC agent traffic "
                                           "(see the headline)" if headline else ""), title_justify="left")
    for col in ("purpose", "flows", "ok", "blocked", "unexpected", "unclassified"):
        t.add_column(col, justify="left" if col == "purpose" else "right")
    oks = {}
    if len(flows):
        g = flows.assign(purpose=flows["purpose"].replace("", "(none)")) \
            .groupby("purpose")["verdict"].value_counts().unstack(fill_value=0)
        for purpose, row in g.iterrows():
            oks[purpose] = int(row.get("ok", 0))
            t.add_row(Text(escape_terminal(purpose)), str(int(row.sum())),
                      *(str(int(row.get(v, 0))) for v in ("ok", "blocked", "unexpected", "unclassified")))
    console.print(t)
    chk = old_readiness(flows, rules)
    # (newcomer 31 F13: ok flows of a purpose seen one-way: a line says what each word means)
    one_way = [r.rule for r in chk.itertuples(index=False) if r.status == "seen one-way" and oks.get(r.rule)]
    if one_way:
        console.print(Text(f"{', '.join(one_way)}: ok = each flow is as the rules document it; the checklist's "
                           "seen one-way = the capture holds one direction only, so it cannot show that the other "
                           "side received them (see To verify)", style="italic"))
    # (session 33: each port or address scan once, under the table: its lines from the flows alone)
    for line in report.scan_lines_of(flows):
        console.print(Text(escape_terminal(f"Scan: {line}"), style="yellow"))
    c = Table(title="Readiness checklist (documented purposes)", title_justify="left")
    # (the layout, not the content: a long status note, newcomer 26 F5, makes the checklist wider
    # than the console, which then takes report's column widths)
    # (session 32: on a narrow console the notes are footnotes, "[1]" in the cell)
    suffixes, notes = report.checklist_status_notes(chk, rules, console.width)
    widths = report._checklist_widths(chk, rules, console.width, suffixes)
    for col in ("section", "purpose", "transport/ports", "status", "flows", "reasons"):
        c.add_column(col, **({} if col == "purpose" else {"overflow": "fold"}), **widths.get(col, {}))
    for r, suffix in zip(chk.itertuples(index=False), suffixes):
        c.add_row(r.section, r.rule, rules.by_id(r.rule).label(),   # (the cast shown: newcomer 23 F15)
                  Text.assemble((r.status, _STATUS_STYLE[r.status]), suffix),
                  str(r.flows), r.reasons)
    console.print(c)
    for note in notes:
        console.print(Text(note, style="italic"))
    if len(flows) and flows["capture"].nunique() > 1:
        k = flows["capture"].nunique()
        console.print(Text(f"The checklist is over {'both' if k == 2 else f'all {k}'} captures together: a purpose is "
                           "blocked when a flow of any of them is; its advice names the captures of the flagged "
                           "flows (analyse a capture on its own for its own checklist).", style="italic"))
    todo = chk[chk.status.isin(["blocked", "unexpected", "port open"])
               & (chk.status_note != "another Kaspersky service: nothing to change")]
    nothing = chk[chk.status_note == "another Kaspersky service: nothing to change"]   # (newcomer s60 #11)
    dns_bl = flows[(flows["purpose"] == "dns") & (flows["verdict"] == "blocked")] if len(flows) else flows
    undoc = flows[(flows["purpose"] == "") & (flows["verdict"] == "unexpected")] if len(flows) else flows
    if headline:   # (newcomer 28 F4: no advice built on other programs' flows)
        dns_bl, undoc = dns_bl.iloc[:0], undoc.iloc[:0]
    if len(todo) or len(dns_bl) or len(undoc):
        console.print(Text("What to change:", style="bold"))
    for r in todo.itertuples(index=False):
        report.print_entry(console, f"{r.rule} ({r.status}{': ' + r.reasons if r.reasons else ''}): {r.fix}")
    if len(dns_bl):
        why = sorted({x.split(",")[0] for x in flows.loc[flows["purpose"] == "dns", "reason"]
                      if x and x != "partial"})
        counts = ()
        if "detail" in flows:   # (newcomer 21 F3: rejected by a TCP reset or by an error answer)
            rejected = dns_bl[dns_bl["reason"].str.split(",").str[0] == "rejected"]
            resets = int((rejected["detail"] == "DNS over TCP rejected with RST").sum())
            counts = (resets, len(rejected) - resets)
        # (newcomer 26 F1: queries the capture's end cut short)
        no_answer = dns_bl[dns_bl["reason"].str.split(",").str[0] == "no_answer"]
        cut = int(no_answer["detail"].astype(str).str.contains("maybe before an answer could come",
                                                                regex=False).sum()) if "detail" in flows else 0
        # (s39: REFUSED, SERVFAIL and responses matching no query told apart, from the details)
        kinds = report.dns_blocked_kinds(flows) if "detail" in flows else None
        if kinds is not None:   # (newcomer s59 #6: queries to a resolver that answered their client)
            kinds = {**kinds, "resolver_answered": _resolver_answered(flows)}
        report.print_entry(console, f"dns (blocked: {', '.join(why)}): "
                           f"{report.dns_fix(why, *(counts or (None, None)), cut=(cut, len(no_answer)), kinds=kinds)}")
    if len(undoc):
        why = sorted({x for r in undoc["reason"] for x in r.split(",") if x})
        report.print_entry(console, f"(none) (unexpected: {', '.join(why)}): {report.undocumented_fix(len(undoc))}")
    if len(nothing):
        console.print(Text("Nothing to change:", style="bold"))
    for r in nothing.itertuples(index=False):
        report.print_entry(console, f"{r.rule} ({r.status}{': ' + r.reasons if r.reasons else ''}): {r.fix}")
    seen = chk[(chk.status == "seen one-way")
               | (chk.status_note == "joined a multicast group by IGMP/MLD, no datagram received")   # (newcomer 28 F3)
               | chk.status_note.map(lambda x: bool({"sessions reset at the agent's first request",   # (newcomer s60 #3)
                                                   "a server slow to answer the TLS handshake",   # (s61 #5)
                                                   "a server certificate from a private CA (TLS inspection?)",   # (s62 #1)
                                                   "a server that stopped reading (zero window)"}
                                                  & set(str(x).split("; "))))]
    if len(seen):
        console.print(Text("To verify:", style="bold"))
    for r in seen.itertuples(index=False):
        report.print_entry(console, f"{r.rule} ({r.status}): {r.fix}")
    old_print_dns_errors(flows, console)
    flagged = flows[flows["verdict"].isin(["blocked", "unexpected"])] if len(flows) else flows
    # (newcomer 30 F2: blocked first, then KSC agent traffic — a KSC-only port or a Kaspersky
    # name —, then the rest, in time order inside each; the cut line counts the blocked left out)
    ksc_ids = {r.id for r in rules.rules if r.port_lo >= 1024}

    def kaspersky(name) -> bool:
        name = name.lower().rstrip(".") if isinstance(name, str) else ""
        return name == "kaspersky.com" or name.endswith(".kaspersky.com")

    rank = np.array([0 if r.verdict == "blocked" else 1 if r.purpose in ksc_ids or kaspersky(r.server_name)
                     or kaspersky(r.query) else 2 for r in flagged.itertuples(index=False)], int)
    order = np.lexsort((flagged["ts_ns"].to_numpy(), rank)) if len(flagged) else np.zeros(0, int)
    flagged = flagged.iloc[order] if len(flagged) else flagged
    rank = rank[order]
    # (session 62: the failed attempts of one client to one server, port, name, purpose and reason,
    # the detail alike but for its numbers, listed as their first flow led by their summary)
    from kscc_traffic.attempts import summary_text

    def attempt_key(r):
        if r.verdict != "blocked" or str(r.reason).split(",")[0] not in ("no_answer", "rejected", "icmp_unreachable"):
            return None
        return (getattr(r, "capture", ""), r.orig_h, r.resp_h, r.resp_p, r.proto, r.server_name, r.query, r.purpose,
                r.reason, re.sub(r"\d+", "#", str(r.detail)))
    keys = [attempt_key(r) for r in flagged.itertuples(index=False)]
    times: dict = {}
    for k, t in zip(keys, flagged["ts_ns"].tolist() if len(flagged) else []):
        if k is not None:
            times.setdefault(k, []).append(int(t))
    seen: set = set()
    first = []
    for k in keys:
        first.append(k is None or k not in seen)
        seen.add(k)
    first = np.array(first, bool)
    stands = [len(times[k]) if k is not None else 1 for k, f in zip(keys, first) if f]
    lead = [summary_text(len(times[k]), min(times[k]), max(times[k]), times[k], k[8]) if k is not None else ""
            for k, f in zip(keys, first) if f]
    n_flagged = len(flagged)
    if len(flagged):
        flagged = flagged[first].copy()
        flagged["detail"] = [f"{x}; the first: {d}" if x and d else x or d
                             for x, d in zip(lead, flagged["detail"].astype(str).tolist())]
        rank = rank[first]
    grouped_note = "; repeated attempts in one row each" if any(n > 1 for n in stands[:max_flagged]) else ""
    # (newcomer 31 F12: the groups listed, when more than one, are named)
    shown = rank[:max_flagged].tolist()
    names = ("blocked", "KSC agent traffic", "other flows")
    kinds = sorted(set(shown))
    # (session 32: a group the list cut says how many it has, "2 of 6 shown")
    def count(k):
        # (flows: a row of repeated attempts stands for them all)
        n = sum(w for w, x in zip(stands[:max_flagged], shown) if x == k)
        total = sum(w for w, x in zip(stands, rank.tolist()) if x == k)
        return f"{n} of {total} shown" if total > n else str(n)
    all_rank = np.array([0 if r.verdict == "blocked" else 1 for r in
                         (flows[flows["verdict"].isin(["blocked", "unexpected"])] if len(flows) else flows)
                         .itertuples(index=False)], int)
    represented = sum(stands[:max_flagged])
    represented_blocked = sum(n for n, k in zip(stands[:max_flagged], shown) if k == 0)
    groups = ("In groups (a line between them): " + ", then ".join(f"{names[k]} ({count(k)})" for k in kinds)
              + "; time order inside each group") if len(kinds) > 1 else ""
    hidden_blocked = int((all_rank == 0).sum()) - represented_blocked
    more_line = (f"… {n_flagged - represented} more flagged flows, {hidden_blocked} of them blocked (--verdict "
                 "blocked lists the blocked ones; all of them: --format csv or jsonl)" if hidden_blocked else
                 f"… {n_flagged - represented} more flagged flows (use --format csv or jsonl)")
    # (session 32: the date, unless every flow is of today (UTC): in the heading when the rows
    # listed are of one date, else with each time; the compact list a date line per group)
    day_of = lambda ns: pd.Timestamp(int(ns), unit="ns").strftime("%Y-%m-%d")  # noqa: E731

    def said(detail):
        # (newcomer s60 #12: under the headline "the client", not "the agent"; texts quoted in
        # double quotes as they are)
        if not headline:
            return detail
        parts = re.split(r'("(?:[^"\\]|\\.)*")', detail)
        return "".join(x if k % 2 else re.sub(r"\b([Tt])he agent\b", r"\1he client", x) for k, x in enumerate(parts))
    days = [day_of(r.ts_ns) for r in flagged.head(max_flagged).itertuples(index=False)]
    today = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d")
    ends = {day_of(flows["ts_ns"].min()), day_of(flows["ts_ns"].max())} if len(flows) else set()
    dated = bool(days) and (ends | set(days)) != {today}
    heading = f"time (UTC)\n{days[0]}" if dated and len(set(days)) == 1 else "time (UTC)"
    full = dated and len(set(days)) > 1
    rows = [[pd.Timestamp(int(r.ts_ns), unit="ns").strftime("%Y-%m-%d %H:%M:%S.%f" if full else "%H:%M:%S.%f")[:-3],
             old_endpoint(r.orig_h, r.orig_p),
             f"{r.proto} {old_endpoint(r.resp_h, r.resp_p)}", escape_terminal(r.server_name or r.query),
             r.purpose or report.NO_PURPOSE, r.verdict, r.reason] for r in flagged.head(max_flagged).itertuples(index=False)]
    # (newcomer 29 F9: one block per flow when the columns would cut a value: each column but the
    # detail as wide as its longest value, the detail at least as wide as they and its longest word)
    widths = [max([len(h), *(len(x[k]) for x in rows)]) for k, h in
              enumerate(("time (UTC)", "client", "server", "name", "purpose", "verdict", "reason"))]
    words = [len(w) for d in flagged.head(max_flagged)["detail"] for w in escape_terminal(d).split()] if len(rows) else []
    if len(flagged) and sum(widths) + max([6, *words, *widths]) + 25 > console.width:
        note = ": other programs' flows, not KSC agent traffic (see the headline)" if headline else ""
        console.print(Text(f"Flagged flows ({n_flagged}{grouped_note}){note}", style="italic"))
        if groups:
            console.print(Text(groups.replace(" (a line between them)", ""), style="italic"))
        day = ""
        for i, (x, r) in enumerate(zip(rows, flagged.head(max_flagged).itertuples(index=False))):
            if groups and (i == 0 or shown[i] != shown[i - 1]):
                console.print(Text(f"— {names[shown[i]]} —", style="bold"))
                day = ""
            if dated and days[i] != day:
                day = days[i]
                console.print(Text(f"{day} (UTC)", style="bold"))
            console.print(Text(f"{x[0][-12:]}  {x[1]} -> {x[2]}" + (f"  {x[3]}" if x[3] else "")))
            console.print(Text("    " + "  ".join(filter(None, x[4:7]))))
            if r.detail:
                console.print(Padding(Text(escape_terminal(said(r.detail)), overflow="fold"), (0, 0, 0, 4),
                                      expand=False))
        if n_flagged > represented:
            console.print(more_line)
    elif len(flagged):
        note = ": other programs' flows, not KSC agent traffic (see the headline)" if headline else ""
        f = Table(title=f"Flagged flows ({n_flagged}{grouped_note}){note}", title_justify="left",
                  **({"caption": groups, "caption_justify": "left"} if groups else {}))
        for col in (heading, "client", "server", "name", "purpose", "verdict", "reason", "detail"):
            f.add_column(col, overflow="fold")
        for i, r in enumerate(flagged.head(max_flagged).itertuples(index=False)):
            f.add_row(rows[i][0],
                      Text(old_endpoint(r.orig_h, r.orig_p)),
                      Text(f"{r.proto} {old_endpoint(r.resp_h, r.resp_p)}"),
                      Text(escape_terminal(r.server_name or r.query)),
                      Text(r.purpose or report.NO_PURPOSE),
                      Text(r.verdict, style=_VERDICT_STYLE.get(r.verdict, "")),
                      Text(r.reason), Text(escape_terminal(said(r.detail))),
                      end_section=bool(groups) and i + 1 < len(shown) and shown[i + 1] != shown[i])
        console.print(f)
        if n_flagged > represented:
            console.print(more_line)
    total = len(flows)
    counts = flows["verdict"].value_counts() if total else {}
    console.print(Text(f"{total} flow{'s' if total != 1 else ''}: " + ", ".join(f"{int(counts.get(v, 0))} {v}" for v in
                                                     ("ok", "blocked", "unexpected", "unclassified"))))


def old_print_dns_errors(flows, console, shown: int = 20) -> None:
    """The DNS error names, counted row by row (the report's section added with dns_rcode)."""
    counts: dict = {}
    for q, rc in zip(flows["query"], flows["dns_rcode"]) if len(flows) else ():
        if rc not in ("", "NOERROR"):
            counts[(q, rc)] = counts.get((q, rc), 0) + 1
    if not counts:
        return
    rows = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    total = sum(counts.values())
    t = Table(title=f"DNS names answered with an error ({total} flow{'s' if total != 1 else ''})",
              title_justify="left")
    for col in ("name", "answer", "flows", "meaning"):
        t.add_column(col, justify="right" if col == "flows" else "left", overflow="fold")
    for (q, rc), n in rows[:shown]:
        t.add_row(Text(escape_terminal(q) if q else "(no question)"), Text(escape_terminal(rc)), str(n),
                  Text(report.DNS_RCODE_TEXT.get(rc, "")))
    console.print(t)
    if len(rows) > shown:
        more = len(rows) - shown
        console.print(Text(f"… {more} more name{'s' if more != 1 else ''} answered with an error "
                           "(column dns_rcode: use --format csv or jsonl)"))


def old_render_table(flows, rules, width: int = 160) -> str:
    buf = io.StringIO()
    old_print_table(flows, rules, Console(file=buf, width=width, color_system=None, force_terminal=False))
    return buf.getvalue()


# --- comparing -------------------------------------------------------------------------------------

def written(write, flows: pd.DataFrame):
    """What ``write(flows, buffer)`` wrote, or the type of the exception it raised."""
    buf = io.StringIO()
    try:
        write(flows, buf)
    except Exception as e:  # noqa: BLE001 - the same failure is what is compared
        return type(e)
    return buf.getvalue()


def assert_same_output(flows: pd.DataFrame) -> None:
    assert written(report.write_jsonl, flows) == written(old_write_jsonl, flows)
    assert written(report.write_csv, flows) == written(old_write_csv, flows)


def assert_same_report(flows: pd.DataFrame) -> None:
    assert_same_output(flows)
    pd.testing.assert_frame_equal(report.readiness(flows, RULES), old_readiness(flows, RULES))
    assert report.render_table(flows, RULES) == old_render_table(flows, RULES)


def _tables(paths: list[Path]):
    for p in paths:
        try:
            yield p, analyze_file(p, RULES).flows
        except CaptureError:
            continue


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: str(p.relative_to(ROOT / "samples" / "captures")))
def test_sample_captures_write_like_the_reference(path):
    flows = analyze_file(path, RULES).flows
    assert_same_report(flows)
    assert report._write_csv_fast(flows, io.StringIO()), "the column-wise CSV writer was not used"
    assert report._write_jsonl_columns(flows, io.StringIO()), "the column-wise JSON writer was not used"
    # the same table with undecodable bytes, formula starts and separators in its names
    hostile = flows.assign(server_name=flows["server_name"] + "\udcff,\"x\"\n",
                           query="=" + flows["query"], detail=flows["detail"] + "},{")
    assert_same_output(hostile)
    assert report._write_csv_fast(hostile, io.StringIO())
    assert report._write_jsonl_columns(hostile, io.StringIO())
    # with pandas' text dtype, as the stages before the final schema leave the table
    text = flows.astype({c: "str" for c in flows.columns if flows[c].dtype == object})
    assert_same_output(text)
    assert report._write_csv_fast(text, io.StringIO())
    assert report._write_jsonl_columns(text, io.StringIO())
    # every column written cell by cell (no run of columns of few values), and every one in runs
    for sample in (1, 10 ** 6):
        with mock.patch.object(report, "_JSON_SAMPLE", sample):
            assert_same_output(hostile)


@pytest.mark.parametrize("sub", ["ksc", "public"])
def test_shared_corpus_writes_like_the_reference(sub):
    folder = shared_corpus(sub)
    paths = sorted(p for p in folder.rglob("*") if p.suffix in (".pcap", ".pcapng"))
    assert paths, f"no captures under {folder}"
    seen = 0
    for path, flows in _tables(paths):
        assert_same_report(flows)
        seen += 1
    assert seen > 0


def test_many_chunks_of_rows():
    """Slices of a few rows, one with a ``},{`` inside a name (written by pandas' line splitter)."""
    flows = analyze_file(ROOT / "samples" / "captures" / "hostile_names.pcap", RULES).flows
    flows = pd.concat([flows] * 3, ignore_index=True)
    flows.loc[4, "server_name"] = 'a"},{"b'
    with mock.patch.object(report, "_CHUNK_ROWS", 3):
        assert_same_output(flows)


def test_json_lines_joins_rows_as_the_row_by_row_join():
    """``_json_lines`` (one join of a list filled piece by piece) gives each row the join of its
    pieces' texts then ``}\\n``, as a tuple and a join per row did: empty texts, one row, one piece."""
    pieces = [['{"a":1', '{"a":22', '{"a":"'], ["", ',"b":"x}"', ""], [',"c":false', ',"c":true', ',"c":null']]
    want = "".join("".join(row) + "}\n" for row in zip(*pieces))
    assert report._json_lines(pieces) == want
    assert want == '{"a":1,"c":false}\n{"a":22,"b":"x}","c":true}\n{"a":","c":null}\n'
    assert report._json_lines([["{"]]) == "{}\n"
    assert report._json_lines([['{"a":1', '{"a":2'], [',"b":3', ',"b":4']]) == '{"a":1,"b":3}\n{"a":2,"b":4}\n'


def test_cells_that_are_no_text_in_a_text_column():
    """A slice whose object column holds something else than ``str`` (missing values, numbers,
    bytes, lists, dicts: pandas writes each its own way) is written by pandas; the other slices
    column by column; the text is the same."""
    odd = [None, float("nan"), 3, 2.5, True, b"xy", ["a", 1], {"k": "v"}, "\udcff"]
    flows = pd.DataFrame({"a": ["x/y"] * 12 + odd + ["z"] * 7, "n": range(28)}, dtype=object).astype({"n": "int64"})
    with mock.patch.object(report, "_CHUNK_ROWS", 4):
        assert report._write_jsonl_columns(flows, io.StringIO())
        assert written(report.write_jsonl, flows) == written(old_write_jsonl, flows)


def test_empty_and_single_column_tables():
    assert_same_output(analyze_file(CAPTURES[0], RULES).flows.iloc[:0])
    assert_same_output(pd.DataFrame({"a": ["", "x,y", "=1"]}, dtype=object))
    assert_same_output(pd.DataFrame({"a": pd.Series([], dtype=object), "b": pd.Series([], dtype=float)}))


# --- hypothesis-made tables -------------------------------------------------------------------------

HOSTILE = ["", "<script>alert(1)</script>", "=1+2", "+x", "-5", "@SUM(A1)", "\tx", "\rx", "a\r\nb", "line\nbreak",
           "},{", '{"a":1},{"b":2}', '"quoted"', "a,b", " lead", "trail ", "é", "😀", "\x00", "\x7f", "\x1b[31m",
           "\u2028", "\u202e", "/", "\\", "a/b\\c", "\udcff", "\ud800", "%s", "'", "NaN", "null", "True"]
TEXT = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=8), st.text(st.characters(exclude_categories=()), max_size=5))
PLAIN = st.text("abcXYZ019.:_", max_size=8)
COLUMN_NAMES = st.one_of(st.sampled_from(["ts", "a,b", 'x"y', "line\nname", "=f", "/k", "\udcff", "%d", "é"]),
                         st.text(max_size=5), st.integers(-3, 3))

KINDS = {
    "text": lambda n: st.lists(TEXT, min_size=n, max_size=n).map(lambda v: pd.Series(v, dtype=object)),
    "plain": lambda n: st.lists(PLAIN, min_size=n, max_size=n).map(lambda v: pd.Series(v, dtype=object)),
    "int64": lambda n: st.lists(st.integers(-2**63, 2**63 - 1), min_size=n, max_size=n)
    .map(lambda v: pd.Series(v, dtype="int64")),
    "uint64": lambda n: st.lists(st.integers(0, 2**64 - 1), min_size=n, max_size=n)
    .map(lambda v: pd.Series(v, dtype="uint64")),
    "int8": lambda n: st.lists(st.integers(-128, 127), min_size=n, max_size=n).map(lambda v: pd.Series(v, dtype="int8")),
    "float64": lambda n: st.lists(st.floats(), min_size=n, max_size=n).map(lambda v: pd.Series(v, dtype="float64")),
    "float32": lambda n: st.lists(st.floats(width=32), min_size=n, max_size=n)
    .map(lambda v: pd.Series(v, dtype="float32")),
    "bool": lambda n: st.lists(st.booleans(), min_size=n, max_size=n).map(lambda v: pd.Series(v, dtype=bool)),
    "missing": lambda n: st.lists(st.one_of(st.none(), st.just(float("nan")), TEXT), min_size=n, max_size=n)
    .map(lambda v: pd.Series(v, dtype=object)),
    "mixed": lambda n: st.lists(st.one_of(st.integers(-5, 5), st.booleans(), st.floats(), TEXT), min_size=n, max_size=n)
    .map(lambda v: pd.Series(v, dtype=object)),
    "pandas_str": lambda n: st.lists(st.text(max_size=6), min_size=n, max_size=n).map(lambda v: pd.Series(v, dtype="str")),
    "pandas_str_missing": lambda n: st.lists(st.one_of(st.none(), st.sampled_from(HOSTILE[:12])), min_size=n, max_size=n)
    .map(lambda v: pd.Series(v, dtype="str")),
    "datetime": lambda n: st.lists(st.integers(0, 2**62), min_size=n, max_size=n)
    .map(lambda v: pd.Series(np.array(v, dtype="datetime64[ns]"))),
}
FAST_KINDS = {"text", "plain", "int64", "uint64", "int8", "float64", "float32", "bool", "pandas_str"}


@st.composite
def tables(draw, kinds=tuple(KINDS)):
    n = draw(st.integers(0, 12))
    names = draw(st.lists(COLUMN_NAMES, min_size=1, max_size=6, unique_by=lambda x: (type(x), x)))
    chosen = [draw(st.sampled_from(kinds)) for _ in names]
    flows = pd.DataFrame({j: draw(KINDS[k](n)) for j, k in enumerate(chosen)})
    flows.columns = pd.Index(names, dtype=object)  # names may hold lone surrogates
    return flows, chosen


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tables(), st.sampled_from([8192, 1, 3]), st.sampled_from([256, 4, 1]))
def test_generated_tables_write_like_the_reference(table, chunk, sample):
    flows, kinds = table
    with mock.patch.object(report, "_CHUNK_ROWS", chunk), mock.patch.object(report, "_JSON_SAMPLE", sample):
        assert_same_output(flows)
        fast = report._write_csv_fast(flows, io.StringIO())
    text_only = [(flows.iloc[:, j].dtype == object or isinstance(flows.iloc[:, j].dtype, pd.StringDtype))
                 and all(isinstance(v, str) for v in flows.iloc[:, j]) for j in range(flows.shape[1])]
    assert fast == (len(kinds) >= 2 and all(k in FAST_KINDS or t for k, t in zip(kinds, text_only)))


@settings(max_examples=150, deadline=None)
@given(tables(kinds=("text", "plain", "int64", "float64", "bool")))
def test_generated_text_and_number_tables_use_the_fast_csv_writer(table):
    flows, kinds = table
    assert_same_output(flows)
    assert report._write_csv_fast(flows, io.StringIO()) == (len(kinds) >= 2)


JSON_FAST_KINDS = ("text", "plain", "int64", "uint64", "int8", "float64", "float32", "bool", "pandas_str")
TEXT_NAMES = st.one_of(st.sampled_from(["ts", "a,b", 'x"y', "line\nname", "=f", "/k", "%d", "é", '"},{"', "\x7f"]),
                       st.text(max_size=5))


@st.composite
def json_tables(draw):
    """Tables the column-wise JSON writer takes: the kinds it handles, unique text column names
    (lone surrogates left out: pandas cannot write them), runs of repeated rows."""
    n = draw(st.integers(1, 40))
    names = draw(st.lists(TEXT_NAMES.filter(lambda s: clean_utf8(s) == s), min_size=1, max_size=6, unique=True))
    columns = {}
    for j, _ in enumerate(names):
        distinct = draw(KINDS[draw(st.sampled_from(JSON_FAST_KINDS))](draw(st.integers(1, 4))))
        columns[j] = distinct.iloc[draw(st.lists(st.integers(0, len(distinct) - 1), min_size=n, max_size=n))] \
            .reset_index(drop=True)
    flows = pd.DataFrame(columns)
    flows.columns = pd.Index(names, dtype=object)
    return flows


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_tables(), st.sampled_from([8192, 7]), st.sampled_from([256, 4, 1]), st.sampled_from([2 ** 62, 3]))
def test_generated_tables_use_the_column_wise_json_writer(flows, chunk, sample, combinations):
    """Few distinct values per column (runs of columns made one text per combination, numbered
    again when they pass ``combinations``), and as many as rows (cell by cell); the text is
    pandas' byte for byte."""
    with mock.patch.object(report, "_CHUNK_ROWS", chunk), mock.patch.object(report, "_JSON_SAMPLE", sample), \
            mock.patch.object(report._JsonRun, "MAX", combinations):
        assert report._write_jsonl_columns(flows, io.StringIO())
        assert written(report.write_jsonl, flows) == written(old_write_jsonl, flows)


# --- what pandas escapes in JSON text, and the 6 decimals of ts / duration -----------------------

#: pandas (force_ascii=False) escapes the ASCII controls, '"', '\\' and '/' (as '\/'), nothing else:
#: not DEL, not U+0085, U+2028/U+2029 (JavaScript's line separators), not a BOM or an emoji
ESCAPED_BY_PANDAS = {**{chr(c): None for c in range(0x20)}, '"': '\\"', "\\": "\\\\", "/": "\\/",
                     "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
WRITTEN_AS_THEY_ARE = ["\x7f", "\x85", "\u2028", "\u2029", "\ufeff", "é", "😀", "<", ">", "&", "'", "%", "{", "}"]


def _pandas_json(value: str) -> str:
    return pd.Series([value], dtype=object).to_json(orient="values", force_ascii=False)[1:-1]


def test_what_pandas_escapes():
    """The facts the column-wise writer is built on (checked at run time by ``_json_ok`` too)."""
    for c in map(chr, range(0x80)):
        want = ESCAPED_BY_PANDAS.get(c, c) or f"\\u{ord(c):04x}"
        assert _pandas_json(c) == f'"{want}"', repr(c)
    for c in WRITTEN_AS_THEY_ARE:
        assert _pandas_json(c) == f'"{c}"', repr(c)
    assert report._json_ok()


@pytest.mark.parametrize("sample", [256, 1])
def test_every_character_class_in_values_and_names(sample):
    """Each ASCII character, the ones pandas leaves as they are beyond ASCII, and text made of
    escapes, in values and in column names: the column-wise writer (used) writes pandas' text."""
    odd = [*map(chr, range(0x80)), *WRITTEN_AS_THEY_ARE[:7], '",', '","', "\\\\", '\\"', 'a\\",', "},{", "\\u0000"]
    flows = pd.DataFrame({"v": odd, "w": [f"x{c}y" for c in odd], "n": range(len(odd))}, dtype=object) \
        .astype({"n": "int64"})
    named = pd.DataFrame({c: ["x"] for c in odd if c}, dtype=object)
    with mock.patch.object(report, "_JSON_SAMPLE", sample):
        for f in (flows, named, pd.concat([flows] * 3, ignore_index=True)):
            assert report._write_jsonl_columns(f, io.StringIO())
            assert written(report.write_jsonl, f) == written(old_write_jsonl, f)
    # split at "\n" only: str.splitlines would also cut at the U+0085, U+2028, U+2029 pandas leaves
    rows = [json.loads(line) for line in written(report.write_jsonl, flows)[:-1].split("\n")]
    assert [r["v"] for r in rows] == odd


def test_keys_as_pandas_writes_them():
    """pandas writes a column name as a key its own way: escaped as a value, but cut at its first
    NUL (a value keeps it as \\u0000); the column-wise writer takes pandas' key text."""
    assert report._json_keys(("a\x00b", 'x"/y', "é")) == ('{"a":', ',"x\\"\\/y":', ',"é":')
    flows = pd.DataFrame({"a\x00b": ["a\x00b"], "c": [1]}, dtype=object).astype({"c": "int64"})
    assert written(report.write_jsonl, flows) == written(old_write_jsonl, flows) == '{"a":"a\\u0000b","c":1}\n'


def test_json_strings_read_string_by_string():
    """pandas' text of several strings is read string by string, in one ``to_json``, not cut at
    each '","': ``'",'`` then ``'b'`` gives ``["\\",","b"]``, whose first '","' is inside the
    first value (and cutting there gives as many pieces as values)."""
    tricky = ['",', "b", "\\", '"', 'a","b', "", "\\\\", '\\",', ",", "\\u0022", '"]', "["]
    text = pd.Series(tricky[:2], dtype=object).to_json(orient="values", force_ascii=False)
    assert text == '["\\",","b"]' and len(text[2:-2].split('","')) == 2
    for values in (tricky, tricky[:2], tricky[::-1], ["plain", "a/b"], [""]):
        want = [_pandas_json(v) for v in values]
        with mock.patch.object(pd.Series, "to_json", autospec=True, side_effect=pd.Series.to_json) as to_json:
            assert report._json_strings(values) == want
        assert to_json.call_count == 1


TS_TEXT = re.compile(r'"(ts|duration)":(-?\d+(?:\.(\d+))?)[,}]')


def test_ts_and_duration_have_6_decimals():
    """As Zeek writes them: 1772442000.039271 for the float 1772442000.039270877838135 (15
    decimals before), ``ts_ns`` keeps the exact time."""
    flows = pd.DataFrame({"ts": [1772442000.039270877838135, 1772442000.5], "duration": [0.002878000000001, 1e-7],
                          "ts_ns": [1772442000039270878, 1772442000500000000]})
    assert written(report.write_jsonl, flows) == (
        '{"ts":1772442000.039271,"duration":0.002878,"ts_ns":1772442000039270878}\n'
        '{"ts":1772442000.5,"duration":0.0,"ts_ns":1772442000500000000}\n')


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: str(p.relative_to(ROOT / "samples" / "captures")))
def test_sample_ts_within_half_a_microsecond(path):
    """Every flow of the samples: ``ts`` and ``duration`` with at most 6 decimals (never an
    exponent: the table has none below 1 ns but 0), within half a microsecond of the float."""
    flows = analyze_file(path, RULES).flows
    lines = written(report.write_jsonl, flows)[:-1].split("\n") if len(flows) else []
    assert len(lines) == len(flows)
    for line, ts, duration, ts_ns in zip(lines, flows["ts"], flows["duration"], flows["ts_ns"]):
        got = {m.group(1): m for m in TS_TEXT.finditer(line)}
        assert all(len(m.group(3) or "") <= 6 for m in got.values()), line
        assert abs(float(got["ts"].group(2)) - ts) <= 5e-7 and abs(float(got["duration"].group(2)) - duration) <= 5e-7
        assert json.loads(line)["ts_ns"] == ts_ns


PURPOSES = [r.id for r in RULES.rules] + ["", "dns", "<script>", "\x1b[1m"]
ONPREM_DETAIL = ("the agent uses an on-premises Administration Server/distribution point port against the cloud "
                 "server (TCP 13000): eu1.ksc.kaspersky.com (from SNI) is a Kaspersky cloud name")
# (audit s25: a host_mismatch flow whose connection itself failed)
MISMATCH_DETAIL = ("dnl-03.geo.kaspersky.com is not under *.digicert.com; the connection itself failed (no_answer): "
                   "SYN sent 3 times, no answer")
# (audit s25: a connection opened from outside to a cloud server's port on a local address)
INBOUND_DETAIL = ("an inbound connection: opened from outside (203.0.113.10, not a local address) to 192.168.1.10:23101, "
                  "a local address, on a port the cloud server listens on (agent_connection)")
# (s56: a distribution point's port opened by the distribution point towards its own agent)
DP_INBOUND_DETAIL = ("opened by a distribution point towards its own agent: from 192.0.2.20 to 192.0.2.10:13000, which "
                     "had itself opened TCP 13000 of 192.0.2.20 at 10:00:00.000 UTC, on a port the distribution point "
                     "listens on (dp_agent_connection)")
# (newcomer s60 #10: tls_intercepted details of two causes: an inspection product's CA, an untrusted CA)
ICPT_PRODUCT = ("certificate for eu1.ksc.kaspersky.com issued by O=Fortinet,CN=FortiGate CA: a Fortinet FortiGate "
                "re-signs the connection (TLS inspection)")
ICPT_UNTRUSTED = ("the client rejected the server's certificate (unknown_ca (48)) for eu1.ksc.kaspersky.com issued by "
                  "CN=Corp CA: a TLS-inspecting proxy whose CA the client does not trust?; the handshake was aborted "
                  "and never completed: the agent cannot connect this way")
# (newcomer s60 #3: an ok TLS session the server reset right after the agent's first request)
REFUSED_DETAIL = ("the TLS handshake completed, then the server reset the connection right after the agent's first "
                  "request (within 1 s), having sent no data after the handshake: the network path works; the server "
                  "refused the agent at the application level (another workspace or region, or the agent's "
                  "certificate), or a firewall that inspects the traffic reset it in the server's name")
# (newcomer s61 #5: an ok session the server answered slowly, or stopped reading)
SLOW_DETAIL = ("the server answered the ClientHello after 20.0 s: a slow or overloaded server, or a proxy in the "
               "path; an agent may give up before (its timeout)")
# (break-it s62 #1: an ok session with a private CA's certificate for the Kaspersky name)
PRIVATE_DETAIL = ("the server's certificate for eu1.ksc.kaspersky.com was issued by CN=Contoso Issuing CA 01: a private "
                  "CA, no public one (the cloud's servers have public CAs' certificates: the agents check them on "
                  "*.digicert.com): most likely a TLS-inspecting proxy re-signs the connection with a CA this device "
                  "trusts (or the server is a test one)")
HELD_DETAIL = ("the server held its receive window closed (zero) for 61.2 s; the client then reset the connection: "
               "the server (or a proxy) stopped reading")
VERDICTS = ["ok", "blocked", "unexpected", "unclassified"]
REASONS = ["", "partial", "no_answer", "no_answer,partial", "rejected", "tls_failed", "host_mismatch,partial",
           "wrong_direction", "x,y,z", "tls_intercepted", "not_tls", "icmp_unreachable", "host_mismatch"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(PURPOSES), st.sampled_from(VERDICTS), st.sampled_from(REASONS),
                          st.sampled_from(["", "eu1.ksc.kaspersky.com", "dnl-03.geo.kaspersky.com",
                                           "ksc.corp.example"]),
                          st.sampled_from(["203.0.113.10", "2001:db8::10"]),
                          # (newcomer 23 F1: a distribution point's port towards a cloud name)
                          st.sampled_from(["", "", "", ONPREM_DETAIL, MISMATCH_DETAIL, INBOUND_DETAIL, DP_INBOUND_DETAIL,
                                           REFUSED_DETAIL, SLOW_DETAIL, HELD_DETAIL, PRIVATE_DETAIL, ICPT_PRODUCT, ICPT_UNTRUSTED,
                                           ONPREM_DETAIL + "; the connection itself failed (no_answer): SYN sent"])),
                max_size=60), st.booleans(), st.booleans(), st.booleans())
def test_generated_checklists_like_the_reference(rows, pandas_text, names, details):
    flows = pd.DataFrame(rows, columns=["purpose", "verdict", "reason", "server_name", "resp_h", "detail"],
                         dtype="str" if pandas_text else object)
    if not names:     # (a table without names: ok flows verify as before)
        flows = flows.drop(columns="server_name")
    if not details:   # (a table without details, as before)
        flows = flows.drop(columns="detail")
    pd.testing.assert_frame_equal(report.readiness(flows, RULES), old_readiness(flows, RULES))
    summary = report.TableSummary.of(flows.assign(ts_ns=0))
    pd.testing.assert_frame_equal(summary.readiness(RULES), old_readiness(flows, RULES))


def test_cut_short_attempts_write_like_the_reference(tmp_path):
    # newcomer 26 F1: a SYN that is the capture's last packet, alone and beside a real block
    from scapy.all import IP, TCP
    from pcapbuild import eth, pcap_bytes
    syn = lambda sp, port, t: (t, eth(IP(src="192.0.2.10", dst="203.0.113.10") / TCP(sport=sp, dport=port,  # noqa: E731
                                                                                      flags="S", seq=7)))
    for name, recs in (("alone.pcap", [syn(50000, 23101, 1000.0)]),
                       ("beside.pcap", [syn(50001, 27201, 990.0), syn(50001, 27201, 991.0),
                                        syn(50000, 23101, 995.0), syn(50002, 23102, 1000.0)])):
        path = tmp_path / name
        path.write_bytes(pcap_bytes(recs))
        flows = analyze_file(path, RULES).flows
        assert flows["detail"].str.contains("maybe before an answer could come").any()
        assert_same_report(flows)
