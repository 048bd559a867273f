"""Deep look at the few payloads that matter: TLS handshakes, HTTP request heads, DNS messages.

Adds application columns to a flow table (see :data:`APP_COLUMNS`). Only flows with payload are
touched, and only their first bytes (:mod:`kscc_traffic.streams`); DNS is parsed per datagram on
port 53.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .flows import TCP, UDP, FlowTable
from .protocols import dns, http, tls
from .streams import initial_streams

#: name -> (dtype, unit, meaning) of the application columns added by :func:`inspect_flows`
APP_COLUMNS: dict[str, tuple[str, str, str]] = {
    "query": ("object", "", "DNS flows: the first query name"),
    "sni": ("object", "", "TLS ClientHello server name (the outer name under ECH)"),
    "http_host": ("object", "", "HTTP request Host header (or absolute-form target host)"),
    "client_proto": ("object", "", "what the originator's first bytes are: tls, http, other, or '' (sent nothing)"),
    "server_proto": ("object", "", "what the responder's first bytes are: tls, http, other, or ''"),
    "tls_version": ("object", "", "negotiated TLS version (TLS 1.2, TLS 1.3), '' if unknown"),
    "tls_established": ("bool", "", "the TLS handshake completed (see protocols.tls.summarize)"),
    "tls_alert": ("object", "", "cleartext TLS alert before completion, e.g. 'server: handshake_failure (40)'"),
    "cert_names": ("object", "", "names in the server certificate (TLS <= 1.2 only), ';'-joined"),
}


@dataclass
class DnsAnswers:
    """Addresses learnt from DNS answers: one row per (answer time, client, address, name)."""

    ts_ns: list[int] = field(default_factory=list)
    client: list[str] = field(default_factory=list)
    address: list[str] = field(default_factory=list)
    name: list[str] = field(default_factory=list)

    def add(self, ts_ns: int, client: str, msg) -> None:
        for address, name in dns.resolved_names(msg):
            self.ts_ns.append(ts_ns)
            self.client.append(client)
            self.address.append(address)
            self.name.append(name)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({"ts_ns": np.array(self.ts_ns, np.int64), "client": self.client,
                             "address": self.address, "name": self.name})


def _kind(data: bytes) -> str:
    if not data:
        return ""
    if tls.looks_like_tls(data):
        return "tls"
    if http.parse_request(data) is not None or http.looks_like_http_response(data):
        return "http"
    return "other"


_ALERTS = {0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 40: "handshake_failure",
           42: "bad_certificate", 43: "unsupported_certificate", 44: "certificate_revoked",
           45: "certificate_expired", 46: "certificate_unknown", 47: "illegal_parameter",
           48: "unknown_ca", 49: "access_denied", 50: "decode_error", 51: "decrypt_error",
           70: "protocol_version", 71: "insufficient_security", 80: "internal_error",
           86: "inappropriate_fallback", 90: "user_canceled", 109: "missing_extension",
           110: "unsupported_extension", 112: "unrecognized_name", 116: "certificate_required",
           120: "no_application_protocol"}


def _alert_text(side: str, alert) -> str:
    if not alert:
        return ""
    desc = alert[1] if isinstance(alert, (tuple, list)) and len(alert) > 1 else alert
    try:
        d = int(desc)
        return f"{side}: {_ALERTS.get(d, 'alert')} ({d})"
    except (TypeError, ValueError):
        return f"{side}: {desc}"


def _cert_name_text(name: str) -> str:
    """A certificate name as untrusted text, escaped like SNI and DNS names (``;`` is our list
    separator in ``cert_names``, so it is escaped too)."""
    raw = name.encode("utf-8", "surrogateescape")
    return dns.text_from_bytes(raw).replace(";", "\\x3b")


def split_cert_names(value: str) -> list[str]:
    """The names of a ``cert_names`` cell, as escaped text comparable with ``sni``."""
    return [n.replace("\\x3b", ";") for n in value.split(";") if n] if value else []


def _version_text(v) -> str:
    return {0x0304: "TLS 1.3", 0x0303: "TLS 1.2", 0x0302: "TLS 1.1", 0x0301: "TLS 1.0",
            0x0300: "SSL 3.0"}.get(v, "") if v else ""


def _first_segment_hints(ft: FlowTable, nflows: int):
    """Per flow and direction: whether its first TCP data segment could start TLS or HTTP (a
    TLS/SSLv2 record header, an upper-case letter, or fewer than 5 bytes captured), and whether
    the direction sent data at all. Decided on whole columns; only "maybe" flows are parsed."""
    c = ft.packets.cols
    maybe = np.zeros((2, nflows), bool)
    seen = np.zeros((2, nflows), bool)
    rows = np.nonzero((ft.pkt_flow >= 0) & (c["proto"] == TCP) & (c["pl_cap"] > 0) & (c["pl_off"] >= 0))[0]
    if len(rows):
        key = ft.pkt_flow[rows] * 2 + (~ft.pkt_from_orig[rows]).astype(np.int64)
        order = np.lexsort((c["ts_ns"][rows], key))
        rows, key = rows[order], key[order]
        first = np.r_[True, key[1:] != key[:-1]]
        rows, key = rows[first], key[first]
        buf = np.frombuffer(ft.packets.buf, np.uint8)
        off, cap = c["pl_off"][rows], c["pl_cap"][rows]
        k = np.arange(5)
        valid = k[None, :] < cap[:, None]
        b = np.where(valid, buf[np.where(valid, off[:, None] + k, 0)], 0).astype(np.int64)
        tls_like = (b[:, 0] >= 20) & (b[:, 0] <= 24) & (b[:, 1] == 3) & (b[:, 2] <= 4)
        sslv2 = ((b[:, 0] & 0x80) != 0) & (b[:, 2] == 1)
        letter = (b[:, 0] >= ord("A")) & (b[:, 0] <= ord("Z"))
        m = (cap < 5) | tls_like | sslv2 | letter
        d = (key % 2).astype(np.intp)  # 0 originator, 1 responder
        f = key // 2
        maybe[d, f] = m
        seen[d, f] = True
    return maybe[0], maybe[1], seen[0], seen[1]


def inspect_flows(ft: FlowTable) -> tuple[pd.DataFrame, DnsAnswers]:
    """Parse application payloads and return (flows with :data:`APP_COLUMNS` and ``service``
    filled in, the DNS answers seen in the capture)."""
    flows = ft.flows
    n = len(flows)
    cols = {k: np.full(n, "" if v[0] == "object" else False, dtype=object if v[0] == "object" else bool)
            for k, v in APP_COLUMNS.items()}
    service = flows["service"].to_numpy(dtype=object).copy() if n else np.zeros(0, object)
    answers = DnsAnswers()
    if n == 0:
        out = flows.copy()
        for k, v in cols.items():
            out[k] = v
        return out, answers

    proto = flows["proto"].to_numpy()
    resp_p = flows["resp_p"].to_numpy()
    orig_p = flows["orig_p"].to_numpy()
    dns_flow = ((resp_p == 53) | (orig_p == 53)) & ((proto == "udp") | (proto == "tcp"))

    # DNS datagrams (UDP) parsed one by one; DNS over TCP from the reassembled streams
    p = ft.packets
    c = p.cols
    rows = np.nonzero((ft.pkt_flow >= 0) & (c["proto"] == UDP) & (c["pl_cap"] > 0)
                      & ((c["sport"] == 53) | (c["dport"] == 53)))[0]
    dst_text = None
    if len(rows):
        from .flows import address_text
        dst_text = address_text(c["dst_hi"][rows], c["dst_lo"][rows])
    cache: dict[bytes, object] = {}
    for j, i in enumerate(rows):
        data = p.payload(int(i))
        # answers to the same question differ only in the 2-byte id: parse each shape once
        key = data[2:]
        msg = cache.get(key)
        if msg is None and key not in cache:
            msg = cache[key] = dns.parse_message(data)
            if len(cache) > 65536:
                cache.clear()
        if msg is None:
            continue
        f = int(ft.pkt_flow[i])
        if msg.questions and not cols["query"][f]:
            cols["query"][f] = msg.questions[0][0]
        service[f] = "dns"
        if msg.is_response:
            answers.add(int(c["ts_ns"][i]), str(dst_text[j]), msg)

    # a cheap look at each direction's first data segment decides which flows need a deep look
    maybe_c, maybe_s, seen_c, seen_s = _first_segment_hints(ft, n)
    cols["client_proto"][seen_c & ~maybe_c] = "other"
    cols["server_proto"][seen_s & ~maybe_s] = "other"
    deep = maybe_c | maybe_s | (dns_flow & (proto == "tcp"))
    streams = initial_streams(ft, deep)
    first_ts = flows["ts_ns"].to_numpy()
    for f in set(streams.client) | set(streams.server):
        cs = streams.client.get(f, b"")
        ss = streams.server.get(f, b"")
        cols["client_proto"][f] = _kind(cs)
        cols["server_proto"][f] = _kind(ss)
        if dns_flow[f] and proto[f] == "tcp":
            for side, data in ((True, cs), (False, ss)):
                for msg in dns.parse_tcp_stream(data):
                    service[f] = "dns"
                    if msg.questions and not cols["query"][f]:
                        cols["query"][f] = msg.questions[0][0]
                    if msg.is_response:
                        ts = int(first_ts[f]) if first_ts is not None else 0
                        answers.add(ts, str(flows.at[f, "orig_h"]), msg)
            continue
        if cols["client_proto"][f] == "tls" or cols["server_proto"][f] == "tls":
            s = tls.summarize(cs, ss)
            ch = s.client_hello
            if ch is not None:
                service[f] = "ssl"
                cols["sni"][f] = ch.sni or ""
            cols["tls_version"][f] = _version_text(s.version)
            cols["tls_established"][f] = bool(s.established)
            cols["tls_alert"][f] = (_alert_text("client", s.client_alert)
                                    or _alert_text("server", s.server_alert))
            names: list[str] = []
            if s.certificates:
                names = [_cert_name_text(x) for x in tls.certificate_names(s.certificates[0])]
            cols["cert_names"][f] = ";".join(names)
        else:
            req = http.parse_request(cs)
            if req is not None:
                service[f] = "http"
                cols["http_host"][f] = req.host or ""
            elif cols["server_proto"][f] == "http":
                service[f] = "http"
    out = flows.copy()
    out["service"] = service
    for k, v in cols.items():
        out[k] = v
    return out, answers
