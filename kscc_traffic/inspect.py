"""Deep look at the few payloads that matter: TLS handshakes, HTTP request heads, DNS messages.

Adds application columns to a flow table (see :data:`APP_COLUMNS`). Only flows with payload are
touched, and only their first bytes (:mod:`kscc_traffic.streams`); DNS datagrams on port 53 are
parsed once per distinct message (answers to the same question differ only in their id) and the
results spread over the packets with numpy.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from .addresses import endpoint_text
from .flows import (ACK, FIN, ICMP6, RST, SKEW_MAX_NS, SYN, TCP, UDP, ColumnRows, FlowTable, address_text, content_rows,
                    first_rows, history_plain, other_way_copies, frame_of, isin_texts, label_index, repeated, resent,
                    seq_extents)
from .protocols import dns, dns_batch, http, mcast, tls, tls_batch
from .streams import CUT_GAP, CUT_LIMIT, CUT_SNAPLEN, MAX_SEGMENTS, _syn_rows, initial_streams, stable_order
from .unreachable import MTU_FILTERED, TRACEROUTE_MAX_TTL

#: new bytes the client must send after the server's first data, and the server after that
#: client flight, for a handshake cut from view to count as gone on (:func:`_went_on`): more than
#: any alert (7 bytes in clear, 24 encrypted, 30 with a TLS 1.3 ChangeCipherSpec), less than a
#: TLS 1.2 ClientKeyExchange/Finished flight or a TLS 1.3 client Finished (58) and the server's
#: ChangeCipherSpec + Finished (51), ticket or data
CLIENT_NEXT_BYTES = 48
SERVER_NEXT_BYTES = 32
#: the shortest encrypted TLS record: a TLS 1.3 record of one byte (5-byte header, the inner
#: content type, a 16-byte tag); fewer bytes can only be cleartext alerts (7 bytes each)
SMALLEST_SEALED = 22
#: how soon (ns) after the client's TLS 1.3 Finished flight the server closes, having sent only
#: an alert's size, for that to be its refusal of the client (certificate_required)
REFUSAL_WITHIN_NS = 3 * 10**9
#: the server's alert-sized record must follow the client's TLS 1.3 Finished flight within
#: max(REFUSAL_RTTS x the TCP handshake's round trip, REFUSAL_FLOOR_NS) to be a refusal
#: (:func:`_tls13_refusals`): a refusal answers the Finished, so it comes one round trip after it
#: where the client is captured, at once where the server is; the floor leaves a server time to
#: check a client certificate, and is still well below an idle connection's timeout (seconds to
#: minutes), whose close_notify is the same 24 bytes
REFUSAL_RTTS = 3
REFUSAL_FLOOR_NS = 10**9
#: client bytes first sent max(the TCP handshake's round trip, this) or more after the client's
#: TLS 1.3 Finished flight count as sent after it (:func:`_tls13_refusals`: a refusal that
#: acknowledges them answered them): on a LAN of a few tens of microseconds' round trip, the
#: agent's request sent 0.1 ms after its Finished reaches the server while it is still checking
#: the client's certificate (or its absence), and the server's alert then acknowledges it
#: without having read it (newcomer 36 F7)
REFUSAL_LATE_NS = 5 * 10**6
#: record lengths (header left out) of a TLS 1.3 client's encrypted Finished alone: 4-byte
#: message header, the verify_data (32 bytes, or 48 for TLS_AES_256_GCM_SHA384), the inner content
#: type and the AEAD tag (16 bytes, or 8 for TLS_AES_128_CCM_8_SHA256), no padding; a client that
#: answers a CertificateRequest sends its Certificate first (an empty one: a 25-byte record, or
#: 8 bytes more where a stack packs it with the Finished)
LONE_FINISHED_LENGTHS = (4 + 32 + 1 + 16, 4 + 48 + 1 + 16, 4 + 32 + 1 + 8)
#: record length (header left out) of a TLS 1.3 encrypted alert: 2 bytes, the inner content
#: type, a 16-byte tag (a close_notify is one)
ALERT_SEALED = 2 + 1 + 16
#: the most bytes a TLS 1.3 client sends after the server's first data when it drops the session
#: right after its handshake (:func:`_sessions_quit`): a ChangeCipherSpec (6), its Finished (the
#: longest of :data:`LONE_FINISHED_LENGTHS` and its 5-byte header) and an alert (5 + ALERT_SEALED)
QUIT_BYTES_13 = 6 + 5 + max(LONE_FINISHED_LENGTHS) + 5 + ALERT_SEALED
#: IP bytes from which a TCP segment counts as full-size for a path-MTU black hole
#: (:func:`_mtu_holes`): below any Ethernet MTU's segment (1500), above any a 1280-byte IPv6
#: link's MTU lets through once the headers are taken off (1220 bytes of payload)
FULL_SIZE_BYTES = 1200
#: sendings at least (the first and its retransmissions) of a full-size segment never
#: acknowledged, over at least :data:`MTU_RESEND_NS`, for :func:`_mtu_holes` to call it a path-MTU
#: black hole from the sender's side whoever closed (or if nobody did): an ordinary loss is
#: recovered by the first retransmission (a lost segment sent twice and the capture ending is
#: no black hole); three sendings over a second are two retransmission timeouts (RFC 6298's
#: minimum RTO is 1 s, Linux's 200 ms doubling)
MTU_RESENDS = 3
#: nanoseconds at least from the first to the last sending of that segment (see
#: :data:`MTU_RESENDS`)
MTU_RESEND_NS = 1_000_000_000
#: the hint :func:`_mtu_holes` gives (``mtu_hint``; classify appends it to the detail)
MTU_HINT = ("the {side}'s {size} bytes from offset {at} were never acknowledged though later bytes "
            "arrived: full-size segments lost, a path-MTU black hole?" + MTU_FILTERED)
#: distinct addresses kept in a flow's ``dns_answers`` (the first ones, in order of arrival): a
#: client's lookups give a few; a flow with more (a forwarder's long-lived 53-to-53 flow) would
#: otherwise make a cell, and the responses a chunked analysis carries for it, grow without end
MAX_DNS_ANSWERS = 64

#: groups named in a flow's ``mcast_groups`` at most (the first ones, in order of first report)
MAX_MCAST_GROUPS = 16

#: name -> (dtype, unit, meaning) of the application columns added by :func:`inspect_flows`
APP_COLUMNS: dict[str, tuple[str, str, str]] = {
    "query": ("object", "", "DNS flows: the first query name"),
    "dns_rcode": ("object", "", "DNS flows: Zeek's rcode_name (NOERROR, NXDOMAIN, SERVFAIL, REFUSED, …) of "
                  "the flow's DNS responses taken together: the first response code that is not NOERROR "
                  "if any response has one (e.g. NXDOMAIN after a NOERROR answer to the other query of "
                  "glibc's A+AAAA pair), else NOERROR; '' when no response was seen"),
    "dns_answers": ("object", "", "DNS flows: the distinct addresses (A/AAAA) of all the flow's DNS "
                    "responses, ';'-joined in order of arrival (answer order within a response; Zeek's "
                    f"answers, addresses only, at most the first {MAX_DNS_ANSWERS}), '' when none"),
    "sni": ("object", "", "TLS ClientHello server name (the outer name under ECH)"),
    "http_host": ("object", "", "HTTP request Host header (or absolute-form target host)"),
    "client_proto": ("object", "", "what the originator's first bytes are: tls, http, other, or '' (sent nothing, "
                     "or no byte of it captured); a few bytes cut by the snaplen: what they start (inspect._cut_kind); a "
                     "client's whole stream of 1-4 bytes starting a TLS handshake record header (16 03 01): tls"),
    "server_proto": ("object", "", "what the responder's first bytes are: tls, http, other, or '' (as client_proto); "
                     "a whole answer to a ClientHello of 1-4 bytes starting a TLS record header (16, 15 03 03): tls"),
    "payload_cut": ("bool", "", "TCP: the first bytes inspected stop before a direction's data did (an inspection "
                    "limit, a segment cut by the snaplen, or one not captured), so a handshake not seen "
                    "to its end was not seen, rather than failed (see streams.initial_streams)"),
    "tls_version": ("object", "", "negotiated TLS version (TLS 1.2, TLS 1.3), '' if unknown (also when the "
                    "snaplen cut the ServerHello before its supported_versions extension: a TLS 1.3 "
                    "ServerHello reads 1.2 until then)"),
    "tls_established": ("bool", "", "the TLS handshake completed (see protocols.tls.summarize); when "
                        "payload_cut, also when the packets show it went on (inspect._went_on)"),
    "tls_alert": ("object", "", "cleartext TLS alert before completion, e.g. 'server: handshake_failure (40)'; "
                  "'client: encrypted alert (TLS 1.3, before its Finished)' when a TLS 1.3 client sent one"),
    "cert_names": ("object", "", "the DNS names the server certificate is for (TLS <= 1.2 only), ';'-joined: "
                   "its subjectAltName dNSNames, its subject CN only when it has none (RFC 6125 §6.4.4; "
                   "protocols.tls.certificate_names)"),
    "cert_issuer": ("object", "", "the issuer of the server certificate (TLS <= 1.2 only) as RFC 4514 text, "
                    "e.g. 'CN=FortiGate CA,O=Fortinet' (protocols.tls.certificate_issuer), escaped as RFC 4514 "
                    "says: 'O=Corp\\, Inc.', controls and bytes not UTF-8 as '\\1B'"),
    "http_status": ("object", "", "status code of the server's first final HTTP/1.x response (e.g. '200', "
                    "'407'; 1xx skipped, as Zeek's status_code; for a request to a proxy asked again after a "
                    "407 on the same connection, the last answer), '' when its first bytes are no HTTP status line"),
    "proxy_target": ("object", "", "host:port of an HTTP CONNECT request in authority-form at the start of "
                     "the client's bytes, or scheme://host:port (http or https, the default port filled "
                     "in) of a request in absolute-form there (GET http://host/..., a plain request to a "
                     "proxy): an explicit proxy (escaped text as http_host), '' otherwise. When a CONNECT "
                     "was answered 2xx, the TLS columns and client_proto/server_proto describe the bytes "
                     "inside the tunnel"),
    "dns_unmatched": ("object", "", "DNS flows with responses that match none of their queries (by transaction ID "
                      "and first question; not counted as answers): what the first of them mismatched, 'id' (a "
                      "transaction ID no query had) or 'question' (a query's ID, another question); '' otherwise. "
                      "A flow whose every response is so is blocked/no_answer"),
}


@dataclass
class DnsAnswers:
    """Addresses learnt from DNS answers: one row per (answer time, client, address, name).

    ``frame_no`` is the frame number (capture order) of the packet that carried the answer, -1
    where not known; answers at the same time are ordered by it (:mod:`kscc_traffic.names`).
    Code that appends to the four other lists without it leaves ``frame_no`` shorter; it then
    counts as all -1 (:meth:`frames`)."""

    ts_ns: list[int] = field(default_factory=list)
    client: list[str] = field(default_factory=list)
    address: list[str] = field(default_factory=list)
    name: list[str] = field(default_factory=list)
    frame_no: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ts_ns)

    def frames(self) -> list[int]:
        """``frame_no`` when it has a value per answer, else -1 for every answer."""
        return self.frame_no if len(self.frame_no) == len(self.ts_ns) else [-1] * len(self.ts_ns)

    def add(self, ts_ns: int, client: str, msg, resolved: list | None = None, frame_no: int = -1) -> None:
        """Add the (address, name) pairs of DNS message ``msg`` answered to ``client`` at
        ``ts_ns`` in frame ``frame_no`` (``resolved``: ``dns.resolved_names(msg)`` when already
        known)."""
        if len(self.frame_no) != len(self.ts_ns):
            self.frame_no = self.frames()
        for address, name in (dns.resolved_names(msg) if resolved is None else resolved):
            self.ts_ns.append(ts_ns)
            self.client.append(client)
            self.address.append(address)
            self.name.append(name)
            self.frame_no.append(frame_no)

    def extend(self, other: "DnsAnswers") -> None:
        """Append ``other``'s rows."""
        fr = self.frames() + other.frames()
        self.ts_ns.extend(other.ts_ns)
        self.client.extend(other.client)
        self.address.extend(other.address)
        self.name.extend(other.name)
        self.frame_no = fr

    def select(self, addresses: set, pairs=None) -> "DnsAnswers":
        """The answers whose address is in ``addresses`` (a new object). ``pairs`` (the
        (client, address) pairs of the flows to name) is accepted for
        :meth:`kscc_traffic.answer_store.AnswerStore.select`'s sake and not needed here."""
        at = [i for i, a in enumerate(self.address) if a in addresses]
        fr = self.frames()
        return DnsAnswers([self.ts_ns[i] for i in at], [self.client[i] for i in at],
                          [self.address[i] for i in at], [self.name[i] for i in at], [fr[i] for i in at])

    def frame(self) -> pd.DataFrame:
        """Columns ``ts_ns`` int64 (epoch ns), ``client``, ``address``, ``name`` (object),
        ``frame_no`` int64."""
        return pd.DataFrame({"ts_ns": np.array(self.ts_ns, np.int64),
                             "client": np.array(self.client, dtype=object),
                             "address": np.array(self.address, dtype=object),
                             "name": np.array(self.name, dtype=object),
                             "frame_no": np.array(self.frames(), np.int64)})


def _kind(data: bytes) -> str:
    """What a stream's first bytes are: ``""`` (nothing), ``tls``, ``http`` (a request line —
    exactly when :func:`.http.parse_request` gives a request — or a status line), ``other``."""
    if not data:
        return ""
    if tls.looks_like_tls(data):
        return "tls"
    if http.looks_like_http_request(data) or http.looks_like_http_response(data):
        return "http"
    return "other"


#: request methods a cut HTTP request line may show (RFC 9110 §9, and PATCH)
_METHODS = frozenset((b"GET", b"HEAD", b"POST", b"PUT", b"DELETE", b"CONNECT", b"OPTIONS", b"TRACE",
                      b"PATCH"))
_STATUS_TEMPLATE = (b"H", b"T", b"T", b"P", b"/", b"1", b".", b"01", b" ", b"12345", b"0123456789",
                    b"0123456789", b" \r\n")


def tls_record_start(data: bytes) -> bool:
    """Whether ``data`` (bytes) is a prefix of a TLS record header too short to be one whole:
    1-4 bytes, content type 20-24, major version 3, minor 0-4 (``16``, ``16 03``, ``16 03 01``…).
    Such bytes cannot be told from a record whose rest never came: Wireshark waits for the rest
    of the PDU ("TCP segment of a reassembled PDU"), Zeek names no service; neither calls them
    cleartext."""
    n = len(data)
    return 0 < n < 5 and 20 <= data[0] <= 24 and (n < 2 or data[1] == 3) and (n < 3 or data[2] <= 4)


def tls_record_cut_text(head: bytes, n: int) -> str:
    """The internal ``client_binary`` text of a client's whole stream of ``n`` bytes (int, 5 or
    more) that is a TLS record never finished, ``head`` its first bytes (at most 8): their hex,
    then `` …`` when ``n`` is more, then `` /n`` (``"16 03 01 00 54 /5"``,
    ``"16 03 01 00 54 01 00 00 … /9"``); read back by :func:`tls_record_cut_parse`."""
    return f"{head.hex(' ')}{' …' if n > len(head) else ''} /{n}"


def tls_record_cut_parse(text: str) -> tuple[str, int, int] | None:
    """(the bytes shown as text, the stream's length in bytes, the record body's announced length
    in bytes) of a :func:`tls_record_cut_text` text; None for any other text (1-4 bytes' hex, a
    cleartext's first bytes)."""
    shown, sep, n = str(text).rpartition(" /")
    parts = shown.split()
    hexed = [b for b in parts if b != "…"]
    if not sep or not n.isdigit() or len(hexed) < 5 or parts[:2] != ["16", "03"] \
            or not all(len(b) == 2 and all(c in "0123456789abcdef" for c in b) for b in hexed):
        return None
    return shown, int(n), int(parts[3], 16) << 8 | int(parts[4], 16)


def _cut_kind(data: bytes) -> str:
    """:func:`_kind` of the first bytes of a direction whose data went on beyond them (cut by
    the snaplen), when they are too few to be sure: ``tls`` for a prefix of a TLS record header
    (content type 20-24, major version 3, minor 0-4: ``16 03`` under a 68-byte snaplen), ``http``
    for a prefix of an HTTP/1.x status line or a request method and a space with the line not
    ended, else what :func:`_kind` says."""
    n = len(data)
    if tls_record_start(data):
        return "tls"
    if 0 < n < 13 and all(data[i] in _STATUS_TEMPLATE[i] for i in range(n)):
        return "http"
    method, sp, _ = data.partition(b" ")
    if sp and method in _METHODS and b"\n" not in data:
        return "http"
    return _kind(data)


def _kinds(buf: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """:func:`_kind` of the streams ``buf[start[i]:end[i]]`` (object array (n,)): TLS decided on
    whole arrays, only the rest (HTTP or other) looked at one by one."""
    out = repeated("tls", len(start))
    mv = memoryview(buf).cast("B")
    rest = np.nonzero(~tls_batch.looks_like_tls_at(buf, start, end))[0]
    # an HTTP status line (what http.looks_like_http_response matches: "HTTP/1.x NNN" and a
    # space or line end, 13 bytes) on whole arrays: such a stream is neither TLS nor a request
    status = _status_line_at(buf, start[rest], end[rest])
    out[rest[status]] = "http"
    # (the rest is neither TLS nor a status line: only a request line is left to look for)
    for i in rest[~status].tolist():
        data = mv[start[i]:end[i]]
        out[i] = "" if not len(data) else "http" if http.looks_like_http_request(data) else "other"
    return out


_STATUS_PREFIX = np.frombuffer(b"HTTP/1.", np.uint8)


def _status_line_at(buf: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """:func:`.http.looks_like_http_response` of the streams ``buf[start[i]:end[i]]`` (bool
    array (n,)): ``HTTP/1.`` ``0``|``1`` space, a status code 100-599, then a space, CR or LF."""
    ok = (end - start) >= 13
    if not ok.any():
        return ok
    h = buf[np.where(ok, start, 0)[:, None] + np.arange(13)]
    digit = (h[:, 10:12] >= ord("0")) & (h[:, 10:12] <= ord("9"))
    return (ok & (h[:, :7] == _STATUS_PREFIX).all(axis=1) & ((h[:, 7] == ord("0")) | (h[:, 7] == ord("1")))
            & (h[:, 8] == ord(" ")) & (h[:, 9] >= ord("1")) & (h[:, 9] <= ord("5")) & digit.all(axis=1)
            & ((h[:, 12] == ord(" ")) | (h[:, 12] == ord("\r")) | (h[:, 12] == ord("\n"))))


def _stream_ranges(streams, flows: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(buf, client_start, client_end, server_start, server_end)``: where the streams of flow
    rows ``flows`` lie in one uint8 buffer (int64 arrays (n,); an empty range for a direction
    without payload). Uses the concatenated buffer of :class:`.streams.Streams` (``buf``,
    ``flow``, ``from_orig``, ``start``, ``end``) when it has one, else copies the bytes of its
    ``client``/``server`` mappings into a new buffer."""
    if all(hasattr(streams, a) for a in ("buf", "flow", "from_orig", "start", "end")):
        fl, fo = np.asarray(streams.flow, np.int64), np.asarray(streams.from_orig, bool)
        start, end = np.asarray(streams.start, np.int64), np.asarray(streams.end, np.int64)
        size = int(max(fl.max(initial=-1), flows.max(initial=-1))) + 1
        out: list[np.ndarray] = []
        for side in (fo, ~fo):
            at = np.full(size, -1, np.int64)
            at[fl[side]] = np.nonzero(side)[0]
            i = at[flows]
            have = i >= 0
            out += [np.where(have, start[i], 0), np.where(have, end[i], 0)]
        return (np.asarray(streams.buf, np.uint8), *out)
    data = [streams.client.get(f, b"") for f in flows.tolist()]
    data += [streams.server.get(f, b"") for f in flows.tolist()]
    lens = np.fromiter(map(len, data), np.int64, len(data))
    end = np.cumsum(lens)
    start = end - lens
    n = len(flows)
    return np.frombuffer(b"".join(data), np.uint8), start[:n], end[:n], start[n:], end[n:]


_ALERTS = {0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 40: "handshake_failure",
           42: "bad_certificate", 43: "unsupported_certificate", 44: "certificate_revoked",
           45: "certificate_expired", 46: "certificate_unknown", 47: "illegal_parameter",
           48: "unknown_ca", 49: "access_denied", 50: "decode_error", 51: "decrypt_error",
           70: "protocol_version", 71: "insufficient_security", 80: "internal_error",
           86: "inappropriate_fallback", 90: "user_canceled", 109: "missing_extension",
           110: "unsupported_extension", 112: "unrecognized_name", 116: "certificate_required",
           120: "no_application_protocol"}


#: ``tls_alert`` of a TLS 1.3 handshake the client ended with an encrypted alert (its kind is not
#: visible; a certificate the client does not trust is the usual cause)
_ENCRYPTED_ALERT = "client: encrypted alert (TLS 1.3, before its Finished)"


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


_version_text = tls.version_name



#: ``x & _SEQ_MASK`` is ``x % 2**32`` of an integer array (two's complement: negative ones
#: too), some 20 times faster than numpy's remainder of int64 (an integer division per element)
_SEQ_MASK = (1 << 32) - 1


def _member(values: np.ndarray, of: np.ndarray, size: int) -> np.ndarray:
    """``np.isin(values, of)`` (bool array like ``values``) for ints that are flow rows or (flow,
    direction) groups: ``of`` in ``[0, size)``, ``values`` in ``[-1, size)`` (-1, a packet of no
    flow: never a member), by a table of ``size + 1`` flags rather than a sort."""
    table = np.zeros(size + 1, bool)
    table[of] = True
    return table[values]


def _in_sorted(values: np.ndarray, of: np.ndarray) -> np.ndarray:
    """``np.isin(values, of)`` (bool array like ``values``) for ``of`` sorted ascending (ints of
    any range, one dtype with ``values``): by binary search, without sorting ``values``."""
    if not len(of):
        return np.zeros(len(values), bool)
    at = np.minimum(np.searchsorted(of, values), len(of) - 1)
    return of[at] == values


def _tcp_rows_of(ft: FlowTable, flows: np.ndarray, also: np.ndarray | None = None) -> np.ndarray:
    """Rows (int array, in capture order) of the TCP packets of ``ft`` in the flows ``flows``
    (flow numbers), and where ``also`` (bool per packet) when given."""
    c, pf = ft.packets.cols, ft.pkt_flow
    want = np.zeros(len(ft.flows) + 1, bool)
    want[flows] = True
    keep = (pf >= 0) & (c["proto"] == TCP)
    rows = np.flatnonzero(keep if also is None else keep & also)
    return rows[want[pf[rows]]]

def _went_on(ft: FlowTable, flows: np.ndarray, server_skip: np.ndarray | None = None,
             parts: bool = False):
    """Per flow row of ``flows`` (int array, distinct): whether its TCP packets show a handshake
    that went on past the ClientHello although its end was not in the bytes inspected
    (``payload_cut``): after the server's first data the client sent at least
    :data:`CLIENT_NEXT_BYTES` new bytes (its next flight, by sequence numbers, so
    retransmissions do not count and a payload cut by the snaplen counts whole), and after that
    the server sent at least :data:`SERVER_NEXT_BYTES` new bytes. An alert is smaller than
    either, so a handshake that one side aborted does not pass.

    Only the first ``MAX_SEGMENTS + 1`` data segments (``payload_len`` > 0, captured or not) of
    each direction are read, in capture order: what a chunked or live analysis keeps of a flow,
    so all give the same answer (a ClientHello spread over more segments than that leaves no
    room to see the next flight).

    ``server_skip`` (int array (len(flows),), bytes; None: 0): how many bytes at the start of
    each flow's server stream come before the handshake (the proxy's answer head of a CONNECT
    tunnel): the server's segments that end within them are not its first data.

    When the client's first ``MAX_SEGMENTS + 1`` data segments hold none sent after the server's
    first data (a ClientHello spread over that many segments: a DPI-evasion tool's splitting,
    SpoofDPI, GoodbyeDPI, zapret), the server's first data segments tell it instead, by their
    acknowledgement numbers: the client's new bytes are those the server acknowledged past what
    it had at its first data (what it received: a flight it never acknowledged does not count),
    and the server's new bytes after that flight those it sent from its first data segment
    acknowledging at least :data:`CLIENT_NEXT_BYTES` of them on (both within the server's
    inspected segments, which every analysis keeps).

    ``parts``: instead, ``(client_next, server_next_bytes, client_next_ns, past_window)``: per
    flow of ``flows``, whether the client sent its next flight (the first test), the new bytes
    the server sent after it (int64; the second test is >= SERVER_NEXT_BYTES), when the
    client's first segment after the server's first data was sent (epoch ns, -1: none; by the
    acknowledgements above: when the server's first data acknowledging that flight was), and
    whether the client's inspected segments ended before the server's first data (bool: the
    acknowledgements above were read)."""
    out = np.zeros(len(flows), bool)
    if parts:
        none = (out, np.zeros(len(flows), np.int64), np.full(len(flows), -1, np.int64), out.copy())
    if not len(flows):
        return none if parts else out
    c, pf = ft.packets.cols, ft.pkt_flow
    n_f = len(ft.flows)
    rows = _tcp_rows_of(ft, flows, c["payload_len"] > 0)
    if not len(rows):
        return none if parts else out
    grp = pf[rows].astype(np.int64) * 2 + (~np.asarray(ft.pkt_from_orig[rows], bool))
    o = stable_order(grp)                            # by (flow, direction), capture order
    rows, grp = rows[o], grp[o]
    first = np.r_[True, grp[1:] != grp[:-1]]
    k = np.arange(len(rows))
    rank = k - np.maximum.accumulate(np.where(first, k, 0))
    keep = rank <= MAX_SEGMENTS
    rows, grp, first, rank = rows[keep], grp[keep], first[keep], rank[keep]
    gid = np.cumsum(first) - 1
    seq0 = (c["seq"][rows].astype(np.int64) + ((c["tcp_flags"][rows] & 0x02) != 0)) & _SEQ_MASK
    end = (seq0 + np.maximum(c["payload_len"][rows].astype(np.int64), 0) - seq0[first][gid]) & _SEQ_MASK
    end = np.where(end < 1 << 31, end, 0)           # (before the first segment: nothing new)
    ts = c["ts_ns"][rows].astype(np.int64)
    ack = c["ack"][rows].astype(np.int64)
    flow, client = grp >> 1, (grp & 1) == 0
    base = np.zeros(2 * n_f + 2, np.int64)          # first data segment's sequence number per group
    base[grp[first]] = seq0[first]
    big = np.iinfo(np.int64).max

    def first_at(side: np.ndarray) -> np.ndarray:
        """Per flow: the first ``side`` row in capture order (-1: none)."""
        at = np.full(n_f, len(rows), np.int64)
        np.minimum.at(at, flow[side], np.flatnonzero(side))
        return np.where(at < len(rows), at, -1)

    def later(side: np.ndarray, after: np.ndarray, mark: np.ndarray) -> np.ndarray:
        """Rows of ``side`` sent after time ``after[flow]`` (ns): later, or at that very time
        (a coarse clock stamps a whole exchange with one time) acknowledging more than
        ``mark[flow]`` of the other direction (relative: the bytes of what was sent then), an
        answer to it whatever the rows' order."""
        return side & ((ts > after[flow]) | ((ts == after[flow]) & (ack_rel > mark[flow])))

    def advance(side: np.ndarray, after: np.ndarray, acked: np.ndarray, mark: np.ndarray) -> np.ndarray:
        """Per flow: new bytes of ``side`` rows sent after time ``after[flow]`` (ns) (:func:`later`),
        past what was sent before it or acknowledged by the other side then (``acked``, relative;
        so a segment missing from the capture but received does not count as new)."""
        late = later(side, after, mark)
        before = np.maximum(acked, 0)
        np.maximum.at(before, flow[side & ~late], end[side & ~late])
        most = np.full(n_f, -1, np.int64)
        np.maximum.at(most, flow[late], end[late])
        return np.where(most >= 0, most - before, 0)

    def acked_by(at: np.ndarray, other_grp: np.ndarray) -> np.ndarray:
        """Per flow: the acknowledgement number of row ``at[flow]``, relative to the other
        direction's first data byte (-1 where none)."""
        ok = at >= 0
        rel = np.full(n_f, -1, np.int64)
        a = at[ok]
        r = (ack[a] - base[other_grp[ok]]) & _SEQ_MASK
        rel[ok] = np.where(r < 1 << 31, r, -1)
        return rel

    fl = np.arange(n_f, dtype=np.int64)
    # each row's acknowledgement relative to the other direction's first data byte (-1: none, or
    # before it)
    ack_rel = (ack - base[np.where(client, flow * 2 + 1, flow * 2)]) & _SEQ_MASK
    has_other = np.zeros(2 * n_f + 2, bool)
    has_other[grp[first]] = True
    ack_ok = has_other[np.where(client, flow * 2 + 1, flow * 2)] & ((c["tcp_flags"][rows] & 0x10) != 0)
    ack_rel = np.where(ack_ok & (ack_rel < 1 << 31), ack_rel, -1)
    server_data = ~client
    if server_skip is not None:
        skip = np.zeros(n_f, np.int64)
        skip[flows] = np.asarray(server_skip, np.int64)
        server_data &= end > skip[flow]
    s1_at = first_at(server_data)
    s1 = np.where(s1_at >= 0, ts[np.maximum(s1_at, 0)], big)
    zero = np.zeros(n_f, np.int64)
    c_new = advance(client, s1, acked_by(s1_at, fl * 2), zero)
    c2_at = first_at(later(client, s1, zero))
    c2 = np.where(c2_at >= 0, ts[np.maximum(c2_at, 0)], big)
    # (the client's next flight's first byte, relative: a server row at its time acknowledging
    # past it answered it)
    c2_start = np.full(n_f, np.iinfo(np.int64).max, np.int64)
    ok = c2_at >= 0
    c2_start[ok] = end[c2_at[ok]] - np.maximum(c["payload_len"][rows[c2_at[ok]]].astype(np.int64), 0)
    s_new = advance(~client, c2, acked_by(c2_at, fl * 2 + 1), c2_start)
    # the client's inspected segments full, none after the server's first data: read the
    # server's acknowledgements of what came after them
    full = np.zeros(n_f, bool)
    full[flow[client & (rank == MAX_SEGMENTS)]] = True
    past = full & (c2_at < 0) & (s1_at >= 0)
    if past.any():
        had = np.maximum(acked_by(s1_at, fl * 2), 0)        # the client's bytes at the server's first data
        early = client & (ts <= s1[flow])
        np.maximum.at(had, flow[early], end[early])
        srv = server_data & past[flow] & ((c["tcp_flags"][rows] & ACK) != 0)
        got = (ack - base[flow * 2]) & _SEQ_MASK
        got = np.where(srv & (got < 1 << 31), got - had[flow], -1)   # client bytes acknowledged past `had`
        heard = np.full(n_f, -1, np.int64)
        np.maximum.at(heard, flow[srv], got[srv])
        # the server's first data acknowledging the client's next flight, and its bytes from then on
        at = first_at(srv & (got >= CLIENT_NEXT_BYTES))
        t_at = np.where(at >= 0, ts[np.maximum(at, 0)], big)
        before = np.zeros(n_f, np.int64)
        late = server_data & (ts >= t_at[flow])
        np.maximum.at(before, flow[server_data & ~late], end[server_data & ~late])
        most = np.full(n_f, -1, np.int64)
        np.maximum.at(most, flow[late], end[late])
        c_new = np.where(past, np.maximum(heard, 0), c_new)
        s_new = np.where(past & (at >= 0), np.maximum(most - before, 0), np.where(past, 0, s_new))
        c2 = np.where(past & (at >= 0), t_at, c2)
    if parts:
        return (c_new[flows] >= CLIENT_NEXT_BYTES, s_new[flows],
                np.where(c2[flows] < big, c2[flows], -1), past[flows])
    return (c_new[flows] >= CLIENT_NEXT_BYTES) & (s_new[flows] >= SERVER_NEXT_BYTES)


def _first_close(ft: FlowTable, flows: np.ndarray, server_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Per flow of ``flows`` (int array): who sent the flow's first FIN or RST (``client``,
    ``server``, or '' when none: object array) and when (epoch ns, -1 when none).
    ``server_only``: the responder's first FIN or RST, whatever the client sent before it."""
    c, pf = ft.packets.cols, ft.pkt_flow
    who = repeated("", len(flows))
    when = np.full(len(flows), -1, np.int64)
    closing = (c["tcp_flags"] & (FIN | RST)) != 0
    rows = _tcp_rows_of(ft, flows, closing & ~ft.pkt_from_orig if server_only else closing)
    if not len(rows):
        return who, when
    pos = np.full(len(ft.flows) + 1, -1, np.int64)
    pos[flows] = np.arange(len(flows))
    o = np.lexsort((rows, c["ts_ns"][rows], pf[rows]))
    rows = rows[o]
    first = rows[np.r_[True, pf[rows][1:] != pf[rows][:-1]]]
    at = pos[pf[first]]
    who[at] = np.where(ft.pkt_from_orig[first], "client", "server")
    when[at] = c["ts_ns"][first]
    return who, when


#: hops by which a TCP reset's TTL (hop limit) must differ from its sender's first packet's for
#: :func:`_reset_hints` to name another device as its sender: one connection keeps its path (ECMP
#: hashes the 5-tuple), and an endpoint's stack sends its resets with the TTL of its other packets;
#: a route change of a hop or two is left alone where the reset came from farther (a longer way
#: back); from nearer, one hop is enough (:data:`RESET_NEARER_HOPS`)
RESET_TTL_HOPS = 3
#: hops by which a TCP reset must have come from nearer than its sender's own packet on the same
#: connection (its SYN-ACK, its data nearest before; :func:`_hops`) for :func:`_reset_hints` to name
#: a device on the path as its sender: the endpoint's stack sends its reset with the TTL of its other
#: packets, over the route they took (one 5-tuple, ECMP keeps it; the reset comes within the same
#: connection), so a reset from even one hop nearer was sent between the capture point and that
#: endpoint: an IPS or firewall resetting it (a REJ's reset is told from one hop too,
#: :func:`refused_hint`; break-it real s57 #5: a reset 1 hop nearer than the SYN-ACK right after
#: the ClientHello was "the server reset the connection")
RESET_NEARER_HOPS = 1
#: seconds within which the packet a reset is compared with (:data:`RESET_NEARER_HOPS`) must have
#: come before it for one hop to count: a connection kept for hours (an agent's to the cloud) may
#: meet a route one hop shorter in between, or an IPv6 flow label rehashed onto another path after
#: a timeout, and its endpoint's own reset would be "a device on the path" by one hop (s58 review
#: F2); older, :data:`RESET_TTL_HOPS` still tells one
RESET_NEARER_WINDOW_NS = 60_000_000_000


def _hops(ttl: np.ndarray) -> np.ndarray:
    """Hops a packet came over, guessed from its TTL (hop limit) ``ttl`` (int64 array): the
    smallest usual initial value (32, 64, 128, 255) not below it, less it."""
    initial = np.select([ttl <= 32, ttl <= 64, ttl <= 128], [32, 64, 128], 255)
    return initial - ttl


def _ttl_as_sent(ft: FlowTable, rows: np.ndarray, way: np.ndarray) -> np.ndarray:
    """The TTL (hop limit) of each packet of ``rows`` (kept rows of ``ft``: int array) as captured
    ``way`` (bool array like ``rows``: leaving the capturing host, ``l2_out``, or arriving): its
    own where it was captured so, else that of its copy captured so (a duplicate build_flows
    dropped: ``dup_of``; a forwarded packet, captured arriving and again leaving one hop lower),
    -1 when there is none (int64 array like ``rows``)."""
    c = ft.packets.cols
    out = c["ttl"][rows].astype(np.int64)
    other = c["l2_out"][rows] != way
    if not other.any():
        return out
    out[other] = -1
    if ft.dup_of is None:
        return out
    cp = other_way_copies(ft.dup_of, c["l2_out"])
    og = ft.dup_of[cp]
    if not len(cp):
        return out
    o = np.lexsort((cp, og))                 # (per original its first copy the other way)
    cp, og = cp[o], og[o]
    want = rows[other]
    i = np.minimum(np.searchsorted(og, want), len(og) - 1)
    found = og[i] == want
    got = np.full(len(want), -1, np.int64)
    got[found] = c["ttl"][cp[i[found]]]
    out[other] = got
    return out


def resp_ttl_leaving(ft: FlowTable) -> np.ndarray:
    """Per flow of ``ft`` (int16 array of ``len(ft.flows)``): the TTL (hop limit) of the
    responder's first kept packet as captured leaving the capturing host (:func:`_ttl_as_sent`
    with ``l2_out`` True: its own when it left, else its forwarded copy's that left), -1 where
    none was (it only arrived, the responder sent nothing, no ``l2_out`` or ``ttl`` column, or no
    packet of the capture left: every value -1 then, at no cost per packet). The internal column
    :data:`~kscc_traffic.flows.RESP_TTL_OUT`."""
    n = len(ft.flows)
    out = np.full(n, -1, np.int16)
    c = ft.packets.cols
    if not n or "l2_out" not in c or "ttl" not in c or not c["l2_out"].any():
        return out
    at = np.flatnonzero((ft.pkt_flow >= 0) & ~ft.pkt_from_orig)
    if not len(at):
        return out
    flow, rows = first_rows(ft.pkt_flow, at)
    out[flow] = _ttl_as_sent(ft, rows, np.ones(len(rows), bool))
    return out


def _reset_hints(ft: FlowTable, n: int) -> np.ndarray:
    """Per flow (object array of ``n`` texts, '' where none): a hint that a TCP reset came from a
    device on the path (a firewall or IPS ending the connection, a DPI reset injection), not from
    the endpoint whose address it carries. A side's first RST is compared with that side's data
    packet nearest before it (among its first ``MAX_SEGMENTS + 1`` data segments: what every
    analysis, chunked or live, keeps), else, when it sent none before, with its first packet (the
    SYN, the SYN-ACK; the first packet and the first RST of each direction are kept too, so all
    analyses give the same answer): when that packet is no RST and the two TTLs (IPv6: hop limits)
    differ by :data:`RESET_TTL_HOPS` or more, or the reset came from :data:`RESET_NEARER_HOPS` or
    more hops nearer (:func:`_hops`, and a higher TTL: a reset with a lower one came a longer way,
    also where the two values straddle an initial one, 33 and 32) with that packet at most
    :data:`RESET_NEARER_WINDOW_NS` before it, the hint gives both values, and says whether that
    side went on sending data after the reset. When the server's SYN-ACK's TTL differs as much
    from its data's and says it came from nearer (:func:`_hops`: a SYN proxy, a firewall answering
    the handshake for the server, break-it 24 F5), the hint says so too, also when the reset is
    the server's own (its data's TTL); data from nearer than the SYN-ACK (injected by a device on
    the path, as its reset) is not compared: the reset is compared with the first packet. Packets
    without a known TTL (``ttl`` -1, or no such column) give no hint, nor does a client's reset
    compared with its first packet sent with a TTL (hop limit) of at most
    :data:`~kscc_traffic.unreachable.TRACEROUTE_MAX_TTL` (a traceroute probe's). The packet compared
    with is taken as captured the reset's way (``l2_out``: arriving at or leaving the capturing
    host, :func:`_ttl_as_sent`): on a router's ``tcpdump -i any`` its forwarded copy that left
    (a duplicate, dropped) stands for the kept one that came in, so that the router's own reset,
    which only leaves, is told (s58 real #1); none captured that way, no hint."""
    out = repeated("", n)
    c, pf = ft.packets.cols, ft.pkt_flow
    if "ttl" not in c or not n:
        return out
    tcp = (pf >= 0) & (c["proto"] == TCP)
    rst = tcp & ((c["tcp_flags"] & RST) != 0)
    if not rst.any():
        return out
    rows = np.flatnonzero(tcp & _member(pf, pf[rst], len(ft.flows)))
    grp = pf[rows].astype(np.int64) * 2 + (~np.asarray(ft.pkt_from_orig[rows], bool))
    o = np.lexsort((rows, c["ts_ns"][rows], grp))
    rows, grp = rows[o], grp[o]
    first = np.r_[True, grp[1:] != grp[:-1]]
    start = np.flatnonzero(first)
    head = rows[start[np.cumsum(first) - 1]]            # per row: its group's first packet
    is_rst = rst[rows]
    _, at = np.unique(grp[is_rst], return_index=True)
    p_rst = np.flatnonzero(is_rst)[at]                   # each group's first RST (its position)
    r = rows[p_rst]
    g, h = grp[p_rst], head[p_rst]
    # each side's first MAX_SEGMENTS + 1 data segments (as kept by every analysis), those no RST:
    # the one nearest before the side's first RST (the same group, an earlier position)
    d = np.flatnonzero(c["payload_len"][rows] > 0)
    if len(d):
        dg = grp[d]
        dfirst = np.r_[True, dg[1:] != dg[:-1]]
        rank = np.arange(len(d)) - np.flatnonzero(dfirst)[np.cumsum(dfirst) - 1]
        d = d[(rank <= MAX_SEGMENTS) & ~is_rst[d]]
    i = np.searchsorted(d, p_rst) - 1
    near = (i >= 0) & (grp[d[np.maximum(i, 0)]] == g) if len(d) else np.zeros(len(g), bool)
    data = np.where(near, rows[d[np.maximum(i, 0)]] if len(d) else h, h)
    ttl = c["ttl"]
    t_rst, t_data, t_head = ttl[r].astype(np.int64), ttl[data].astype(np.int64), ttl[h].astype(np.int64)
    # the server's SYN-ACK from nearer than its data (fewer hops from the initial TTL its value
    # suggests): a SYN proxy answered the handshake, the data is the server's; data from nearer
    # than the SYN-ACK is a device's on the path injecting it (the SYN-ACK is then the server's)
    odd = (near & (t_head >= 0) & (t_data >= 0) & (np.abs(t_head - t_data) >= RESET_TTL_HOPS))
    proxy = (odd & (g % 2 == 1) & ((c["tcp_flags"][h] & (SYN | ACK)) == (SYN | ACK))
             & (_hops(t_head) < _hops(t_data)))
    near &= ~odd | proxy
    ref = np.where(near, data, h)
    t_ref = ttl[ref].astype(np.int64)
    # a reset is compared with its sender's packets captured the same way: both arriving at the
    # capturing host or both leaving it (``l2_out``: tcpdump -i any on a router keeps the copy of
    # each forwarded packet that came in, one hop higher than the one that left, and the router's
    # own reset only leaves); the other way, the copy of that packet captured as the reset was
    # (a duplicate, dropped) stands for it, and without one there is no like-for-like value
    t_said_head = t_head
    if "l2_out" in c:
        way = c["l2_out"]
        if (way[ref] != way[r]).any() or (way[h] != way[r]).any():
            t_ref, t_said_head = np.split(_ttl_as_sent(ft, np.r_[ref, h], np.r_[way[r], way[r]]), 2)
    # (from nearer: fewer hops and a higher TTL; a lower TTL is a longer way back, whatever initial
    # value the two suggest across a boundary: 33 -> 32 is one hop farther, not "31 nearer")
    # (one hop only against a packet of the last RESET_NEARER_WINDOW_NS: the route of a long
    # connection may have changed since)
    recent = c["ts_ns"][r] - c["ts_ns"][ref] <= RESET_NEARER_WINDOW_NS
    keep = ~rst[ref] & (t_rst >= 0) & (t_ref >= 0) & (
        (np.abs(t_rst - t_ref) >= RESET_TTL_HOPS)
        | ((_hops(t_ref) - _hops(t_rst) >= RESET_NEARER_HOPS) & (t_rst > t_ref) & recent))
    # the originator's first packet sent with a traceroute probe's TTL (tcptraceroute's SYN with TTL
    # 3, answered by time exceeded): its own stack's reset after it carries its usual TTL
    keep &= ~((g % 2 == 0) & (ref == h) & (t_ref >= 1) & (t_ref <= TRACEROUTE_MAX_TTL))
    lo = np.searchsorted(grp, g)
    parts: dict[int, list[str]] = {}
    notes: dict[int, str] = {}
    for k in np.flatnonzero(keep | proxy).tolist():
        gk, rk, hk = int(g[k]), int(r[k]), int(h[k])
        side = "client" if gk % 2 == 0 else "server"
        field_name = "hop limit" if int(c["ipver"][rk]) == 6 else "TTL"
        synproxy = (f"the server's SYN-ACK came with {field_name} {int(t_head[k])}, its data with "
                    f"{int(t_data[k])}: a SYN proxy (a firewall answering the handshake for the server) is on the path")
        if not keep[k]:
            notes[gk // 2] = f"{synproxy}; its reset came with {int(t_rst[k])}, as its data: the server's own"
            continue
        if near[k] and t_ref[k] != t_said_head[k]:   # (the same TTL as its first packet: that one named)
            first_pkt, t_said = "data", int(t_ref[k])
        else:
            first_pkt = ("SYN" if side == "client" else "SYN-ACK") if c["tcp_flags"][hk] & SYN else "first packet"
            t_said = int(t_said_head[k])
        mine = rows[lo[k]:np.searchsorted(grp, gk, side="right")]
        mine = mine[c["payload_len"][mine] > 0][:MAX_SEGMENTS + 1]
        after = " (it went on sending data after it)" if np.any(c["ts_ns"][mine] > c["ts_ns"][rk]) else ""
        parts.setdefault(gk // 2, []).append(f"the reset in the {side}'s name came with {field_name} {int(t_rst[k])}, "
                                             f"its {first_pkt} with {t_said}{after}")
        if proxy[k]:
            notes[gk // 2] = synproxy
    for f in set(parts) | set(notes):
        said = parts.get(f, [])
        text = ""
        if said:
            who = "by the server" if len(said) == 1 and said[0].startswith("the reset in the server's") else \
                "by the client" if len(said) == 1 else "by the endpoints"
            text = (f"{' and '.join(said)}: probably sent by a device on the path (a firewall or IPS "
                    f"ending the connection), not {who}")
        out[f] = "; ".join(x for x in (text, notes.get(f, "")) if x)
    return out


#: addresses whose first packet :func:`address_ttls` keeps (beyond: new addresses not kept, so a
#: reset from one of them gets no hint: bounded memory in a chunked or live analysis)
MAX_TTL_ADDRESSES = 65_536
#: how the hint of a SYN answered by a reset from a device nearer than the server begins (after
#: the hop count; report.readiness counts such flows: :data:`REFUSED_NEARER` is in their detail)
REFUSED_NEARER = "nearer than the server ("
#: ... and that of a reset from as many hops away but another initial TTL (hop limit): another
#: device's stack (report.refused_counts counts it with the nearer ones)
REFUSED_OTHER = "as many hops away but from another initial value (another device's stack:"
#: ... and that of a reset with the server's own TTL (hop limit): most likely the server's own answer
REFUSED_OWN = "the reset came with the server's own "
#: what :func:`refused_hint` says a nearer device's reset means (a SYN's: the port refused;
#: classify's idle note says another meaning for a connection going on after a silence)
REFUSED_PORT = "a firewall refuses the port"
#: what such a reset most likely means (after the TTL; hedged: a host firewall on the server, or a
#: firewall on the path that copies the server's TTL, answers the same: newcomer 28 F6)
REFUSED_OWN_MEANS = ("most likely the server's own answer: nothing listens on this port there (a wrong port? the "
                     "service down?), or its host firewall rejects it (a firewall on the path that copies the "
                     "server's TTL looks the same)")
#: :data:`REFUSED_OWN_MEANS` of an IPv6 reset: the field is its hop limit
REFUSED_OWN_MEANS_V6 = REFUSED_OWN_MEANS.replace("server's TTL", "server's hop limit")


class AddressTtls(Mapping):
    """What :func:`address_ttls` returns: the first TCP packet that is no reset each source
    address sent, a read-only mapping ``(ipver, src_hi, src_lo)`` (ints) -> ``(ts_ns, ttl)``
    (ints: epoch ns, TTL or IPv6 hop limit). Kept as five arrays, one row per address in
    (ipver, src_hi, src_lo) order: ``ver`` int64, ``hi`` and ``lo`` uint64 (the address's
    halves, as the packet columns), ``ts`` int64 and ``ttl`` int64, so that a batch's packets
    are merged in (:meth:`merged`) and looked up (:meth:`find`) by whole columns."""

    __slots__ = ("ver", "hi", "lo", "ts", "ttl", "_keys")

    #: the three key columns as one structured row (compared field by field, as they are sorted)
    _KEY = np.dtype([("ver", np.int64), ("hi", np.uint64), ("lo", np.uint64)])

    def __init__(self, ver=None, hi=None, lo=None, ts=None, ttl=None) -> None:
        self._keys = None
        self.ver = np.zeros(0, np.int64) if ver is None else ver
        self.hi = np.zeros(0, np.uint64) if hi is None else hi
        self.lo = np.zeros(0, np.uint64) if lo is None else lo
        self.ts = np.zeros(0, np.int64) if ts is None else ts
        self.ttl = np.zeros(0, np.int64) if ttl is None else ttl

    @classmethod
    def of(cls, prior) -> "AddressTtls":
        """``prior`` as an :class:`AddressTtls`: itself, or a new one from a mapping
        ``(ipver, src_hi, src_lo) -> (ts_ns, ttl)`` (a dict); None: empty."""
        if isinstance(prior, AddressTtls):
            return prior
        if not prior:
            return cls()
        keys = sorted(prior)
        ver, hi, lo = (np.array(x, dt) for x, dt in zip(zip(*keys), (np.int64, np.uint64, np.uint64)))
        ts, ttl = (np.array(x, np.int64) for x in zip(*(prior[k] for k in keys)))
        return cls(ver, hi, lo, ts, ttl)

    def __len__(self) -> int:
        return len(self.ver)

    def __iter__(self):
        return zip(self.ver.tolist(), self.hi.tolist(), self.lo.tolist())

    def __getitem__(self, key) -> tuple[int, int]:
        ver, hi, lo = key
        i = int(self.find(np.array([ver], np.int64), np.array([hi], np.uint64), np.array([lo], np.uint64))[0])
        if i < 0:
            raise KeyError(key)
        return int(self.ts[i]), int(self.ttl[i])

    def find(self, ver: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        """Per address of ``ver`` (int64), ``hi``, ``lo`` (uint64; equal lengths): its row
        here (int64 array), -1 where none. One sort of both sets of keys together."""
        n, m = len(self), len(ver)
        out = np.full(m, -1, np.int64)
        if not n or not m:
            return out
        if m <= 64:
            # a few keys (a batch's refused resets): binary searches in the table's keys, which
            # cost less than sorting the table with them
            if self._keys is None:
                self._keys = self._rows(self.ver, self.hi, self.lo)
            want = self._rows(ver, hi, lo)
            i = np.searchsorted(self._keys, want)
            hit = (i < n) & (self._keys[np.minimum(i, n - 1)] == want)
            out[hit] = i[hit]
            return out
        query = np.r_[np.zeros(n, bool), np.ones(m, bool)]
        o = np.lexsort((query, np.r_[self.lo, lo], np.r_[self.hi, hi], np.r_[self.ver, ver]))
        # (each row of this table sorts before the queries of its key: the last row of the table
        # at or before a query's position is the only one that can be its key)
        last = np.maximum.accumulate(np.where(query[o], -1, o))
        at = np.flatnonzero(query[o])
        row, q = last[at], o[at] - n
        r = np.maximum(row, 0)
        hit = (row >= 0) & (self.ver[r] == ver[q]) & (self.hi[r] == hi[q]) & (self.lo[r] == lo[q])
        out[q[hit]] = row[hit]
        return out

    @classmethod
    def _rows(cls, ver: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
        rows = np.empty(len(ver), cls._KEY)
        rows["ver"], rows["hi"], rows["lo"] = ver, hi, lo
        return rows

    def merged(self, ver: np.ndarray, hi: np.ndarray, lo: np.ndarray, ts: np.ndarray,
               ttl: np.ndarray) -> "AddressTtls":
        """A new table: this one with the first packets ``ver``, ``hi``, ``lo``, ``ts``, ``ttl``
        (arrays as the columns, one row per address, in address order) merged in: the earlier
        packet wins (a tie: the one kept), and new addresses are added in address order while
        there are fewer than :data:`MAX_TTL_ADDRESSES`."""
        at = self.find(ver, hi, lo)
        old = np.flatnonzero(at >= 0)
        won = old[ts[old] < self.ts[at[old]]]
        t, tt = self.ts.copy(), self.ttl.copy()
        t[at[won]], tt[at[won]] = ts[won], ttl[won]
        new = np.flatnonzero(at < 0)[:max(0, MAX_TTL_ADDRESSES - len(self))]
        if not len(new):
            return AddressTtls(self.ver, self.hi, self.lo, t, tt)
        V, H, L = np.r_[self.ver, ver[new]], np.r_[self.hi, hi[new]], np.r_[self.lo, lo[new]]
        o = np.lexsort((L, H, V))
        return AddressTtls(V[o], H[o], L[o], np.r_[t, ts[new]][o], np.r_[tt, ttl[new]][o])


#: added to the IP version of a key of :func:`address_ttls`' table for the packets the capture records
#: as sent by the capturing host (``l2_out``: a Linux cooked capture's packet type 4 OUTGOING; every
#: packet of a link layer that records no destination, raw IP, alike): a host that forwards (a
#: router, a firewall, captured with ``tcpdump -i any``) is captured receiving each packet and
#: sending it again one hop lower, and a reset it sends itself leaves as the forwarded copies do; a
#: reset is compared with its sender's packets captured the same way (break-it s57 real #2: the
#: router's own reset, TTL 64 leaving, was compared with the server's packets arriving, 64, not
#: leaving, 63, and called the server's own)
SENT_KEY = 10


def ttl_key_ver(ipver: np.ndarray, l2_out: np.ndarray | None) -> np.ndarray:
    """The version part of :func:`address_ttls`' keys (int64 array): ``ipver`` (4 or 6, any int
    array), plus :data:`SENT_KEY` where ``l2_out`` (bool array of the same length; None: no such
    column, nothing added)."""
    ver = np.asarray(ipver).astype(np.int64)
    if l2_out is None:
        return ver
    return ver + SENT_KEY * np.asarray(l2_out, bool)


def ip_version_of_key(ver: int) -> int:
    """The IP version (4 or 6) of a key version of :func:`address_ttls` (:func:`ttl_key_ver`)."""
    return int(ver) % SENT_KEY


def address_ttls(cols: dict[str, np.ndarray], prior=None) -> AddressTtls:
    """The first TCP packet that is no reset nor SYN-ACK each source address sent, among the
    packets of ``cols`` (a :class:`Packets`' columns, any flow or none), merged with ``prior`` (the
    same from earlier batches of the capture, an :class:`AddressTtls` or a dict as it maps, or None: the
    earlier packet wins): an :class:`AddressTtls`, ``(ipver, src_hi, src_lo)`` (ints) ->
    ``(ts_ns, ttl)`` of that packet (TTL, IPv6 hop limit). The packets the capture records as
    sent by the capturing host (``l2_out``) are kept apart, under ``ipver +`` :data:`SENT_KEY`
    (:func:`ttl_key_ver`; no ``l2_out`` column: all under ``ipver``): a forwarding host captures
    each packet twice, arriving and leaving one hop lower. Packets without a known TTL (-1, or
    no ``ttl`` column) are left out; at most :data:`MAX_TTL_ADDRESSES` keys (the later ones
    not added). What :func:`_refused_hints` compares a refused SYN's reset with. ``prior`` is
    not changed."""
    table = AddressTtls.of(prior)
    if "ttl" not in cols or not len(cols["ttl"]):
        return table
    # (no SYN-ACK: a SYN proxy's, a firewall answering the handshake for the server, comes with
    # the firewall's TTL, which its own resets share; the server's ACKs and data come with its own)
    m = ((cols["proto"] == TCP) & ((cols["tcp_flags"] & RST) == 0)
         & ((cols["tcp_flags"] & (SYN | ACK)) != (SYN | ACK)) & (cols["ttl"] >= 0))
    at = np.flatnonzero(m)
    if not len(at):
        return table
    # (one index for the five columns: a boolean mask is read again for each)
    hi, lo = (cols[k][at].astype(np.uint64, copy=False) for k in ("src_hi", "src_lo"))
    ver = ttl_key_ver(cols["ipver"][at], cols["l2_out"][at] if "l2_out" in cols else None)
    ts, ttl = cols["ts_ns"][at].astype(np.int64, copy=False), cols["ttl"][at].astype(np.int64, copy=False)
    head = _first_per_address(ver, hi, lo, ts)
    return table.merged(ver[head], hi[head], lo[head], ts[head], ttl[head])


def cloud_ports(rules) -> np.ndarray | None:
    """uint8 array of 65536 (indexed by port): :data:`CLOUD_PORT` for the TCP ports of ``rules``
    (a :class:`~kscc_traffic.rules.RuleSet`) that a client opens towards the cloud (``opener``
    client_to_cloud) and that are no well-known port (1024 and above: 23100-23199, 1443…; 443 and
    80 are any web server's), :data:`DP_PORT` for those an agent opens towards its distribution
    point (``opener`` agent_to_dp: 13000, 13111, 13295, 17111), 0 for the others; None when there
    is none (or ``rules`` is None)."""
    if rules is None:
        return None
    ports = np.zeros(65536, np.uint8)
    for r in rules.rules:
        if r.transport != "tcp":
            continue
        if r.opener == "client_to_cloud" and r.port_lo >= 1024:
            ports[r.port_lo:r.port_hi + 1] = CLOUD_PORT
        elif r.opener == "agent_to_dp":
            ports[r.port_lo:r.port_hi + 1] = DP_PORT
    return ports if ports.any() else None


#: :func:`cloud_ports`' mark of a cloud server's port, and of a distribution point's
CLOUD_PORT, DP_PORT = 1, 2
#: added to the IP version of a key of :func:`cloud_openers`' table that names an (originator,
#: responder) pair (a connection to a distribution point's port), not one address
PAIR_KEY = 100


def _pair_halves(ver: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """One uint64 per address (``ver`` int64, ``hi``/``lo`` uint64 columns): an IPv4 address
    itself (``lo``), an IPv6 one mixed into 64 bits (a splitmix64 finaliser of both halves: two
    addresses share one with a chance of 2^-64), for the pair keys of :func:`cloud_openers`."""
    with np.errstate(over="ignore"):
        x = hi * np.uint64(0x9E3779B97F4A7C15) ^ lo
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return np.where(ver == 6, x, lo)


def _opener_keys(ver: np.ndarray, src: tuple[np.ndarray, np.ndarray], dst: tuple[np.ndarray, np.ndarray],
                 pair: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The keys ``(ver, hi, lo)`` of :func:`cloud_openers`' table for SYNs from ``src`` to ``dst``
    (``(hi, lo)`` uint64 columns; ``ver`` int64, all of one length): the source address itself,
    and where ``pair`` (a distribution point's port) the (source, destination) pair, ``ver +
    PAIR_KEY`` and :func:`_pair_halves` of each. New arrays; the inputs are not changed."""
    ver, hi, lo = ver.copy(), src[0].copy(), src[1].copy()
    if pair.any():
        v = ver[pair]
        hi[pair], lo[pair] = _pair_halves(v, src[0][pair], src[1][pair]), _pair_halves(v, dst[0][pair], dst[1][pair])
        ver[pair] += PAIR_KEY
    return ver, hi, lo


def cloud_openers(cols: dict[str, np.ndarray], ports: np.ndarray | None, prior=None) -> AddressTtls:
    """The first SYN (no ACK, no RST) each source address sent to a cloud server's port of
    ``ports`` (from :func:`cloud_ports`; None: none), and the first each (source, destination)
    pair sent to a distribution point's port, among the packets of ``cols`` (a :class:`Packets`'
    columns), merged with ``prior`` (the same from earlier batches: an :class:`AddressTtls` or
    None; the earlier SYN wins): an :class:`AddressTtls` whose ``ttl`` is that SYN's destination
    port, ``(ipver, src_hi, src_lo)`` -> ``(ts_ns, port)`` for an address, ``(ipver +
    PAIR_KEY, src, dst)`` -> ``(ts_ns, port)`` for a pair (:func:`_pair_halves` of each
    address). An address in it opened a connection to a cloud server's port itself: an agent, not
    the cloud; a pair's source is an agent of its destination, a distribution point
    (:func:`_opener_notes`). At most :data:`MAX_TTL_ADDRESSES` keys. ``prior`` is not changed."""
    table = AddressTtls.of(prior)
    if ports is None or not len(cols["ts_ns"]):
        return table
    m = (cols["proto"] == TCP) & ((cols["tcp_flags"] & (SYN | ACK | RST)) == SYN)
    at = np.flatnonzero(m)
    if not len(at):
        return table
    kind = ports[cols["dport"][at].astype(np.int64) & 0xFFFF] * (cols["dport"][at] >= 0)
    at, kind = at[kind != 0], kind[kind != 0]
    if not len(at):
        return table
    ver, hi, lo = (cols[k][at].astype(np.int64 if k == "ipver" else np.uint64, copy=False)
                   for k in ("ipver", "src_hi", "src_lo"))
    ts, port = cols["ts_ns"][at].astype(np.int64, copy=False), cols["dport"][at].astype(np.int64)
    pair = kind == DP_PORT
    if pair.any():
        ver, hi, lo = _opener_keys(ver, (hi, lo), (cols["dst_hi"][at].astype(np.uint64, copy=False),
                                                   cols["dst_lo"][at].astype(np.uint64, copy=False)), pair)
    head = _first_per_address(ver, hi, lo, ts)
    return table.merged(ver[head], hi[head], lo[head], ts[head], port[head])


def _opener_notes(ft: FlowTable, n: int, ports: np.ndarray | None, prior=None) -> np.ndarray:
    """Per flow (object array of ``n`` texts, '' where none): for a TCP flow whose originator's
    SYN was captured to a cloud server's port of ``ports`` (:func:`cloud_ports`), whose responder
    had itself sent a SYN to such a port *before* this flow's first packet (:func:`cloud_openers`
    of these packets and ``prior``): ``it had itself opened TCP 23101 at 08:00:00.000 UTC``.
    Such a responder is an agent connecting to the cloud, so the flow was opened towards an
    agent: classify tells it ``wrong_direction`` whatever the addresses (break-it s53 DP pass #1:
    an inbound connection to a public-address or global IPv6 agent's TCP 23101 was judged its
    own ``agent_connection``). For a SYN to a distribution point's port whose responder had itself
    opened such a port *of this originator* before: ``it had itself opened TCP 13000 of
    192.0.2.20 at 08:00:00.000 UTC`` (an agent of the originator, a distribution point, which
    never connects to its agents on these ports: s55 DP pass #6). Not a flow from the responder's
    own address (a host connecting to itself, on loopback), nor one the responder accepted (a
    SYN-ACK of its: a relay or proxy listening on the cloud's port, connecting there itself; a
    distribution point that is itself another's). Only earlier SYNs count, so that a chunked or
    live analysis, which has only the packets read so far, says the same."""
    out = repeated("", n)
    if ports is None or not n:
        return out
    c, pf = ft.packets.cols, ft.pkt_flow
    syn = np.flatnonzero((pf >= 0) & (c["proto"] == TCP) & ((c["tcp_flags"] & (SYN | ACK | RST)) == SYN)
                         & np.asarray(ft.pkt_from_orig, bool))
    if not len(syn):
        return out
    # (to a port of ``ports``; not from the responder's own address: a host connecting to itself,
    # on loopback, is no connection towards an agent)
    syn = syn[(ports[c["dport"][syn].astype(np.int64) & 0xFFFF] != 0)
              & ((c["src_lo"][syn] != c["dst_lo"][syn]) | (c["src_hi"][syn] != c["dst_hi"][syn]))]
    if not len(syn):
        return out
    syn = syn[np.lexsort((syn, c["ts_ns"][syn], pf[syn]))]
    syn = syn[np.r_[True, pf[syn][1:] != pf[syn][:-1]]]          # each flow's first such SYN
    # (not a connection the responder accepted, its SYN-ACK sent: a host listening on the cloud's
    # port that connects there itself is a relay or a proxy for it, not an agent; review s53 #2)
    synack = (pf >= 0) & (c["proto"] == TCP) & ((c["tcp_flags"] & (SYN | ACK)) == (SYN | ACK)) \
        & ~np.asarray(ft.pkt_from_orig, bool)
    accepted = np.zeros(len(ft.flows) + 1, bool)
    accepted[pf[synack]] = True
    syn = syn[~accepted[pf[syn]]]
    if not len(syn):
        return out
    # (the responder's own SYN: from it, to the originator where it is a distribution point's port)
    pair = ports[c["dport"][syn].astype(np.int64) & 0xFFFF] == DP_PORT
    key = _opener_keys(c["ipver"][syn].astype(np.int64),
                       (c["dst_hi"][syn].astype(np.uint64), c["dst_lo"][syn].astype(np.uint64)),
                       (c["src_hi"][syn].astype(np.uint64), c["src_lo"][syn].astype(np.uint64)), pair)
    ts_ref, port = _earliest(cloud_openers(c, ports), prior, key)
    for k in np.flatnonzero(ts_ref < c["ts_ns"][syn]).tolist():
        at = pd.Timestamp(int(ts_ref[k]), unit="ns", tz="UTC")
        of = ""
        if pair[k]:
            i = syn[k:k + 1]
            of = f" of {address_text(c['src_hi'][i], c['src_lo'][i], c['ipver'][i] == 6)[0]}"
        out[int(pf[syn[k]])] = (f"it had itself opened TCP {int(port[k])}{of} at "
                                f"{at.strftime('%H:%M:%S')}.{at.microsecond // 1000:03d} UTC")
    return out


#: how long (ns) after a SYN a SYN-ACK from another address or port that acknowledges it still
#: counts as its answer (:func:`_answered_elsewhere`): a server sends its SYN-ACK again for about a
#: minute (Linux: 5 times, 1 + 2 + 4 + 8 + 16 s)
ELSEWHERE_AFTER_NS = 60_000_000_000
#: ... and how long before it (ns): the interfaces of one capture stamped by different clocks
ELSEWHERE_BEFORE_NS = 1_000_000_000
#: the SYN-ACKs a :class:`StraySynAcks` keeps at most (beyond, new ones are not kept)
MAX_STRAY_SYNACKS = 65_536
#: ... and those older than this (ns) before the newest packet it was given are forgotten (once it
#: holds :data:`STRAY_PRUNE_FROM` or more): an unanswered SYN's flow leaves 5 minutes after its
#: last packet
STRAY_KEEP_NS = 900_000_000_000
#: the size from which a :class:`StraySynAcks` forgets its old SYN-ACKs
STRAY_PRUNE_FROM = 4_096


class StraySynAcks:
    """The SYN-ACKs whose own flow holds no SYN (:func:`add_stray_synacks`): answers from another
    address or port than the one a client contacted (a NAT that translates the destination of the
    client's packets but not the source of the answers, a server with several addresses), or
    answers whose SYN the capture missed. What tells an unanswered SYN that was answered from
    elsewhere (:func:`_answered_elsewhere`), kept from batch to batch of a chunked or live analysis,
    which meets the SYN's flow only when it leaves, minutes after that answer's own flow left.

    ``table``: ``(ipver, dst_hi, dst_lo, dport, ack)`` (ints: the address and port the SYN-ACK went
    to, its acknowledgement number) -> ``(ts_ns, src_hi, src_lo, sport)`` (ints: epoch ns of the
    first such SYN-ACK, the address and port it came from). ``newest_ns``: the newest packet time
    given (epoch ns; None: none). At most :data:`MAX_STRAY_SYNACKS` keys."""

    __slots__ = ("table", "newest_ns")

    def __init__(self) -> None:
        self.table: dict[tuple[int, int, int, int, int], tuple[int, int, int, int]] = {}
        self.newest_ns: int | None = None

    def __len__(self) -> int:
        return len(self.table)

    def add(self, keys: list, values: list, newest_ns: int | None) -> None:
        """Add SYN-ACKs (``keys`` and ``values`` as :attr:`table`'s, equal lengths): the earlier one
        of a key kept (re-analysed packets add nothing new); then, past
        :data:`STRAY_PRUNE_FROM` keys, those older than :data:`STRAY_KEEP_NS` before ``newest_ns``
        (the newest packet of the batch, epoch ns) forgotten."""
        t = self.table
        for k, v in zip(keys, values):
            had = t.get(k)
            if had is None:
                if len(t) < MAX_STRAY_SYNACKS:
                    t[k] = v
            elif v[0] < had[0]:
                t[k] = v
        if newest_ns is not None:
            self.newest_ns = newest_ns if self.newest_ns is None else max(self.newest_ns, newest_ns)
        if len(t) >= STRAY_PRUNE_FROM and self.newest_ns is not None:
            old = self.newest_ns - STRAY_KEEP_NS
            for k in [k for k, v in t.items() if v[0] < old]:
                del t[k]


def add_stray_synacks(ft: FlowTable, strays: StraySynAcks) -> None:
    """Add to ``strays`` (in place) the SYN-ACKs (SYN and ACK, no RST) of ``ft``'s packets whose
    flow holds no SYN without ACK: answers no SYN of their own 5-tuple asked for. Reads every
    packet of a flow (``ft.pkt_flow``), so call it before the inspection leaves any out."""
    c, pf = ft.packets.cols, ft.pkt_flow
    if not len(pf):
        return
    tcp = (pf >= 0) & (c["proto"] == TCP)
    flags = c["tcp_flags"] & (SYN | ACK | RST)
    synack = tcp & (flags == (SYN | ACK))
    if not synack.any():
        return
    asked = np.zeros(len(ft.flows) + 1, bool)
    asked[pf[tcp & (flags == SYN)]] = True
    at = np.flatnonzero(synack & ~asked[pf])
    if not len(at):
        return
    cols = [c[k][at].tolist() for k in ("ipver", "dst_hi", "dst_lo", "dport", "ack", "ts_ns", "src_hi", "src_lo",
                                          "sport")]
    keys = list(zip(*cols[:5]))
    values = list(zip(*cols[5:]))
    strays.add(keys, values, int(c["ts_ns"].max()))


def _answered_elsewhere(ft: FlowTable, n: int, strays: StraySynAcks | None) -> np.ndarray:
    """Per flow (object array of ``n`` texts, '' where none): for a TCP flow its responder sent no
    packet in, one of whose originator's SYNs (no ACK) was acknowledged by a SYN-ACK of
    ``strays`` from another address or port than the SYN's destination (to the SYN's source
    address and port, acknowledging its sequence number + 1, from :data:`ELSEWHERE_BEFORE_NS`
    before the SYN to :data:`ELSEWHERE_AFTER_NS` after it): where that answer came from,
    ``192.0.2.21:13000`` (:func:`~kscc_traffic.addresses.endpoint_text`; the first SYN's first
    answer). The client takes no answer from elsewhere (RFC 9293 §3.10.7.3: a SYN-ACK matches a
    connection by its four addresses and ports), so for it the SYN went unanswered."""
    out = repeated("", n)
    if strays is None or not len(strays) or not n:
        return out
    c, pf = ft.packets.cols, ft.pkt_flow
    fo = np.asarray(ft.pkt_from_orig, bool)
    heard = np.zeros(n + 1, bool)
    heard[pf[(pf >= 0) & ~fo]] = True
    syn = np.flatnonzero((pf >= 0) & fo & (c["proto"] == TCP) & ((c["tcp_flags"] & (SYN | ACK | RST)) == SYN))
    syn = syn[~heard[pf[syn]]]
    if not len(syn):
        return out
    # (a first sieve by the address answered, its low half, and port: most SYNs have no stray answer)
    wanted = np.array(sorted({((k[2] << 16) ^ k[3]) & 0xFFFF_FFFF_FFFF_FFFF for k in strays.table}), np.uint64)
    probe = (c["src_lo"][syn].astype(np.uint64) << np.uint64(16)) ^ c["sport"][syn].astype(np.uint64)
    syn = syn[np.isin(probe, wanted)]
    if not len(syn):
        return out
    syn = syn[np.lexsort((syn, c["ts_ns"][syn]))]
    table = strays.table
    for r in syn.tolist():
        f = int(pf[r])
        if out[f]:
            continue
        got = table.get((int(c["ipver"][r]), int(c["src_hi"][r]), int(c["src_lo"][r]), int(c["sport"][r]),
                         (int(c["seq"][r]) + 1) & 0xFFFFFFFF))
        if got is None:
            continue
        ts, hi, lo, port = got
        if (hi, lo, port) == (int(c["dst_hi"][r]), int(c["dst_lo"][r]), int(c["dport"][r])):
            continue
        if not -ELSEWHERE_BEFORE_NS <= ts - int(c["ts_ns"][r]) <= ELSEWHERE_AFTER_NS:
            continue
        host = address_text(np.array([hi], np.uint64), np.array([lo], np.uint64), np.array([c["ipver"][r] == 6]))[0]
        out[f] = endpoint_text(host, port)
    return out


def _first_per_address(ver: np.ndarray, hi: np.ndarray, lo: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Positions (int array, in (ver, hi, lo) order, one per distinct address): each address's
    earliest packet, the first of equal times (``ver`` int64, ``hi``/``lo`` uint64, ``ts`` int64
    epoch ns, equal lengths, > 0). What a stable sort by (ver, hi, lo, ts) takes first per address;
    without a sort of the packets when they are in time order (the usual case) and ``lo`` alone
    tells the addresses apart (one hash of it: the distinct addresses are sorted, not the
    packets)."""
    if bool((ts[1:] >= ts[:-1]).all()):
        code = pd.factorize(lo)[0]
        # (codes are numbered in order of first appearance: an address's first packet is where
        # its code first shows, the earliest as the times do not go back)
        first = np.flatnonzero(np.r_[True, code[1:] > np.maximum.accumulate(code)[:-1]])
        if bool((ver == ver[first][code]).all()) and bool((hi == hi[first][code]).all()):
            return first[np.lexsort((lo[first], hi[first], ver[first]))]
    o = np.lexsort((ts, lo, hi, ver))
    v, h, low = ver[o], hi[o], lo[o]
    return o[np.r_[True, (v[1:] != v[:-1]) | (h[1:] != h[:-1]) | (low[1:] != low[:-1])]]


#: what :func:`_first_of` gives where an address has no row (later than any time, any TTL)
_NO_ROW = np.iinfo(np.int64).max


def _first_of(table: AddressTtls, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The time (epoch ns) and TTL (int64 arrays) of rows ``at`` of ``table`` (from
    :meth:`AddressTtls.find`), :data:`_NO_ROW` where ``at`` is -1."""
    if not len(table):
        return np.full(len(at), _NO_ROW), np.full(len(at), _NO_ROW)
    k = np.maximum(at, 0)
    return np.where(at >= 0, table.ts[k], _NO_ROW), np.where(at >= 0, table.ttl[k], _NO_ROW)


def _senders_ttls(c: dict[str, np.ndarray], rows: np.ndarray) -> AddressTtls:
    """:func:`address_ttls` of the packets of ``c`` (a :class:`Packets`' columns) sent by the
    sources of packet rows ``rows`` (the addresses' halves matched apart: a superset, looked up
    exactly by :meth:`AddressTtls.find`). (Of what address_ttls reads, TCP, no reset, a TTL,
    first: the addresses are then looked up on fewer rows, and one index taken of the columns.)"""
    mine = np.flatnonzero((c["proto"] == TCP) & ((c["tcp_flags"] & RST) == 0) & (c["ttl"] >= 0))
    mine = mine[np.isin(c["src_lo"][mine], np.unique(c["src_lo"][rows]))]
    mine = mine[np.isin(c["src_hi"][mine], np.unique(c["src_hi"][rows]))]
    return address_ttls({k: c[k][mine] for k in ("proto", "tcp_flags", "ttl", "ipver", "src_hi", "src_lo", "ts_ns",
                                                 "l2_out") if k in c})


def _earliest(here: AddressTtls, prior, key) -> tuple[np.ndarray, np.ndarray]:
    """Per address of ``key`` (``(ver, hi, lo)`` arrays, :meth:`AddressTtls.find`'s), the earlier
    ``(ts, value)`` of its rows in ``here`` (this batch's packets) and ``prior`` (earlier batches':
    an :class:`AddressTtls`, a dict as it maps, or None; a tie: the smaller value), as int64
    arrays, :data:`_NO_ROW` where neither has the address."""
    before = AddressTtls.of(prior)
    ts_h, v_h = _first_of(here, here.find(*key))
    ts_b, v_b = _first_of(before, before.find(*key))
    earlier = (ts_b < ts_h) | ((ts_b == ts_h) & (v_b < v_h))
    return np.where(earlier, ts_b, ts_h), np.where(earlier, v_b, v_h)


def _refused_hints(ft: FlowTable, n: int, prior: dict | None = None,
                   waiting: np.ndarray | None = None, final: bool = False) -> np.ndarray:
    """Per flow (object array of ``n`` texts, '' where none): for a TCP flow whose responder sent
    only resets (a SYN answered by a reset, Zeek's REJ), which device sent the reset, told by its
    TTL (IPv6: hop limit) against the first packet that is no reset the same address sent on any
    flow, before or after the reset, captured as the reset was (arriving, or leaving the
    capturing host: :data:`SENT_KEY`) (:func:`address_ttls` of these packets and ``prior``: an ACK,
    data; no SYN-ACK, which a SYN proxy may have sent for the server with its own resets' TTL):
    :func:`refused_hint` (fewer hops, a firewall refusing the port; the same TTL, most likely the
    server's own stack; as many hops from another initial TTL, another device's stack). No hint
    when the address sent nothing else in these packets nor ``prior``, nor for a reset from
    farther (nothing said). Packet order does not matter (newcomer 29 F2: an agent tries 23101 first and
    443 later, or the other way round): a chunked or live analysis whose flow leaves before the
    address's later packets are read holds it back (:data:`REFUSED_WAIT`).

    :param waiting: an object array of ``n`` (filled in place) or None: where the address sent
        nothing else in these packets nor ``prior`` (a refused flow whose reset has a TTL),
        ``(ver, src_hi, src_lo, ttl, dst_hi, dst_lo)`` of its reset (ints, the destination only
        where the originator's SYN was captured: a refused attempt; ``ver`` the key version,
        :func:`ttl_key_ver`: its sender's packets captured as it was are looked up), for
        :func:`refused_hint_later`.
    :param final: these are the capture's last packets (nothing more will come): where the address
        sent nothing else, :func:`lone_reset_hint` (with :func:`address_ttls` of these packets and
        ``prior``), and no ``waiting`` entry."""
    out = repeated("", n)
    c, pf = ft.packets.cols, ft.pkt_flow
    if "ttl" not in c or not n:
        return out
    tcp = (pf >= 0) & (c["proto"] == TCP)
    rst = tcp & ((c["tcp_flags"] & RST) != 0)
    resp = tcp & ~np.asarray(ft.pkt_from_orig, bool)
    if not (rst & resp).any():
        return out
    # flows whose responder sent resets and nothing else
    other = np.zeros(len(ft.flows) + 1, bool)
    other[pf[resp & ~rst]] = True
    rows = np.flatnonzero(rst & resp & ~other[pf])
    if not len(rows):
        return out
    rows = rows[np.lexsort((rows, c["ts_ns"][rows], pf[rows]))]
    rows = rows[np.r_[True, pf[rows][1:] != pf[rows][:-1]]]      # each flow's first reset
    # (compared with its sender's packets captured as it was: arriving, or leaving the capturing
    # host, ttl_key_ver; a forwarding host's own reset leaves as the copies it forwards)
    ver = ttl_key_ver(c["ipver"][rows], c["l2_out"][rows] if "l2_out" in c else None)
    key = (ver, c["src_hi"][rows].astype(np.uint64), c["src_lo"][rows].astype(np.uint64))
    # per reset, the earlier (time, TTL) of this batch's first packet of its sender and the
    # earlier batches' (_NO_ROW: no such packet)
    ts_ref, t_ref = _earliest(_senders_ttls(c, rows), prior, key)
    t = c["ttl"][rows].astype(np.int64)
    said = (t >= 0) & (ts_ref != _NO_ROW)      # (before or after the reset: newcomer 29 F2)
    lone = np.flatnonzero((t >= 0) & (ts_ref == _NO_ROW))
    # (the lone reset hint only for a reset answering the originator's SYN, a refused attempt: not
    # a connection the capture began in the middle of, whose first packet seen is the responder's
    # reset; such a held row's REFUSED_WAIT has no destination, lone_reset_hint is not asked)
    asked = np.zeros(len(ft.flows) + 1, bool)
    if len(lone):
        asked[pf[tcp & np.asarray(ft.pkt_from_orig, bool) & ((c["tcp_flags"] & (SYN | ACK)) == SYN)]] = True
    lone_syn = lone[asked[pf[rows[lone]]] & (t[lone] > 128)]
    if final and len(lone_syn):
        table = address_ttls(c, prior)     # (the whole capture's: what the other hosts sent with)
        for k in lone_syn.tolist():
            out[int(pf[rows[k]])] = lone_reset_hint(int(ver[k]), int(t[k]), table,
                                                    (int(c["dst_hi"][rows[k]]), int(c["dst_lo"][rows[k]])))
    elif waiting is not None and not final:
        for k in lone.tolist():
            f = int(pf[rows[k]])
            waiting[f] = (int(ver[k]), int(key[1][k]), int(key[2][k]), int(t[k])) + \
                ((int(c["dst_hi"][rows[k]]), int(c["dst_lo"][rows[k]])) if asked[f] else ())
    t_ref = np.where(said, t_ref, t)
    h, h_ref = _hops(t), _hops(t_ref)
    for k in np.flatnonzero(said & ((t == t_ref) | (h <= h_ref))).tolist():
        out[int(pf[rows[k]])] = refused_hint(int(ver[k]), int(t[k]), int(t_ref[k]))
    return out


def refused_hint(ver: int, ttl: int, ref: int) -> str:
    """The hint of a SYN answered by a reset of TTL (IPv6: hop limit) ``ttl`` from an address
    whose first packet that is no reset came with ``ref`` (ints; ``ver`` 4 or 6, or a key version
    of :func:`address_ttls`, :func:`ttl_key_ver`): the same,
    :data:`REFUSED_OWN` (most likely the server's own answer); from fewer hops (:func:`_hops`),
    a device :data:`REFUSED_NEARER` (a firewall refusing the port); at the same distance from
    another initial value (255 against 128: another stack), a device too, :data:`REFUSED_OTHER`
    (break-it s55 dp #10); else '' (farther)."""
    field_name = "hop limit" if ip_version_of_key(ver) == 6 else "TTL"
    if ttl == ref:
        means = REFUSED_OWN_MEANS_V6 if field_name == "hop limit" else REFUSED_OWN_MEANS
        return f"{REFUSED_OWN}{field_name} ({ttl}, as its packets on other connections): {means}"
    h, h_ref = (int(x) for x in _hops(np.array([ttl, ref], np.int64)))
    if h == h_ref:
        return (f"the reset came with {field_name} {ttl}, the server's packets on other connections with {ref}: "
                f"{REFUSED_OTHER} {ttl + h} vs {ref + h_ref}), not the server's: {REFUSED_PORT}")
    if h > h_ref:
        return ""
    d = h_ref - h
    return (f"the reset came from a device {d} hop{'s' if d != 1 else ''} {REFUSED_NEARER}{field_name} "
            f"{ttl} vs {ref} on the server's packets on other connections): {REFUSED_PORT}")


#: how the hint of a SYN answered by a reset whose sender sent nothing else begins when the reset
#: came from an initial TTL (hop limit) of 255 (:func:`lone_reset_hint`)
REFUSED_LONE = "the reset likely came from a device on the path ("


def lone_reset_hint(ver: int, ttl: int, ttls, to: tuple[int, int] | None = None) -> str:
    """The hint of a SYN answered by a reset of TTL (IPv6: hop limit) ``ttl`` whose sender sent
    nothing else in the whole capture (``ver``: the key version of :func:`address_ttls`,
    :func:`ttl_key_ver`; ``ttls``: :func:`address_ttls` of the whole capture, an
    :class:`AddressTtls` or a dict as it maps): when ``ttl`` is above 128 (an initial 255, what
    network devices, routers and firewalls, send with; hosts' stacks send 64, Linux and macOS, or
    128, Windows) and another address's packets captured the same way came from 64 or 128 (TTL 1
    to 128: hosts here send so; not ``to``, the reset's destination ``(hi, lo)``, the client whose
    own stack says nothing of the path), :data:`REFUSED_LONE` (a firewall or IPS on the path answering in
    the server's name, Wireshark users' rule); else '' (a closed port on a Linux or Windows host
    answers with 64 or 128 less the hops: no hint; nothing else captured to tell by, none)."""
    if ttl <= 128:
        return ""
    table = AddressTtls.of(ttls)
    hosts = (table.ver == int(ver)) & (table.ttl >= 1) & (table.ttl <= 128)
    if to is not None:
        hosts &= (table.hi != np.uint64(to[0])) | (table.lo != np.uint64(to[1]))
    if not hosts.any():
        return ""
    field_name = "hop limit" if ip_version_of_key(ver) == 6 else "TTL"
    h = int(_hops(np.array([ttl], np.int64))[0])
    return (f"{REFUSED_LONE}{field_name} {ttl}: {h} hop{'s' if h != 1 else ''} from an initial 255, as network devices "
            f"send, where hosts send 64 or 128 as the other hosts' packets here came; the server's address sent "
            f"nothing else to compare): {REFUSED_PORT}, not the server")


def _answered_in_place_hints(ft: FlowTable, n: int, prior=None) -> np.ndarray:
    """Per flow (object array of ``n`` texts, '' where none): for a TCP flow whose responder
    sent a SYN-ACK from :data:`RESET_TTL_HOPS` (with no reset after it: :data:`SYNACK_PLACE_HOPS`)
    or more hops nearer (:func:`_hops`) than the first
    packet that is no reset nor SYN-ACK the same address sent *before* this flow's first packet
    (:func:`address_ttls` of these packets and ``prior``: the server's own packets on an earlier
    connection): a hint that a device nearer than the server answered the connection in its place
    (a transparent proxy, or a firewall terminating TCP). When the responder's first reset came
    with a TTL (IPv6: hop limit) within :data:`RESET_TTL_HOPS` of the SYN-ACK's (one device sent
    both), the hint says that device reset it, not the server (break-it s52 v6 #2: the detail said
    "the server reset the connection"); when the responder sent no reset, it starts
    :data:`SYNACK_IN_PLACE` (classify tells it only on a failed connection: a TLS 1.3
    certificate refused, a close right after the ClientHello, where it tells a proxy from the
    server; icept s54 #5); a reset from elsewhere than the SYN-ACK gets none (what
    :func:`_reset_hints` tells within the flow). No hint when the address sent nothing earlier (a
    first connection cannot be compared: a later one is not used, so that a chunked or live
    analysis, which has only the packets read so far, says the same)."""
    out = repeated("", n)
    c, pf = ft.packets.cols, ft.pkt_flow
    if "ttl" not in c or not n:
        return out
    tcp = (pf >= 0) & (c["proto"] == TCP)
    resp = tcp & ~np.asarray(ft.pkt_from_orig, bool) & (c["ttl"] >= 0)
    fl = c["tcp_flags"]
    sa = np.flatnonzero(resp & ((fl & (SYN | ACK)) == (SYN | ACK)))
    if not len(sa):
        return out
    # each flow's first SYN-ACK and first reset of its responder (by time, then position)
    sa = sa[np.lexsort((sa, c["ts_ns"][sa], pf[sa]))]
    sa = sa[np.r_[True, pf[sa][1:] != pf[sa][:-1]]]
    rst = np.flatnonzero(resp & ((fl & RST) != 0))
    f_rst = np.full(len(ft.flows) + 1, -1, np.int64)
    if len(rst):
        rst = rst[np.lexsort((rst, c["ts_ns"][rst], pf[rst]))]
        rst = rst[np.r_[True, pf[rst][1:] != pf[rst][:-1]]]
        f_rst[pf[rst]] = rst
    r = f_rst[pf[sa]]
    t_sa = c["ttl"][sa].astype(np.int64)
    t_rst = np.where(r >= 0, c["ttl"][np.maximum(r, 0)].astype(np.int64), -1)
    keep = (r < 0) | (np.abs(t_rst - t_sa) < RESET_TTL_HOPS)
    sa, r, t_sa, t_rst = sa[keep], r[keep], t_sa[keep], t_rst[keep]
    if not len(sa):
        return out
    # the flows' first packets (the originator's, as a rule: the SYN)
    f = pf[sa].astype(np.int64)
    start = np.full(len(ft.flows) + 1, np.iinfo(np.int64).max, np.int64)
    rows = np.flatnonzero(tcp & _member(pf, f, len(ft.flows)))
    np.minimum.at(start, pf[rows], c["ts_ns"][rows])
    ver = ttl_key_ver(c["ipver"][sa], c["l2_out"][sa] if "l2_out" in c else None)
    key = (ver, c["src_hi"][sa].astype(np.uint64), c["src_lo"][sa].astype(np.uint64))
    ts_ref, t_ref = _earliest(_senders_ttls(c, sa), prior, key)
    said = (ts_ref < start[f]) & (t_ref >= 0) & (t_ref != _NO_ROW)
    # (a SYN-ACK alone, no reset of the same device: a larger difference than another route or
    # anycast site gives, fp s54 #3)
    said &= _hops(np.where(said, t_ref, 0)) - _hops(t_sa) >= np.where(r < 0, SYNACK_PLACE_HOPS, RESET_TTL_HOPS)
    for k in np.flatnonzero(said).tolist():
        field_name = "hop limit" if ip_version_of_key(ver[k]) == 6 else "TTL"
        d = int(_hops(np.array([t_ref[k]]))[0] - _hops(np.array([t_sa[k]]))[0])
        if r[k] < 0:
            out[int(f[k])] = (f"{SYNACK_IN_PLACE}{field_name} {int(t_sa[k])}, the server's packets on an earlier "
                              f"connection with {int(t_ref[k])}: probably sent by a device {d} hops nearer "
                              f"{ANSWERED_IN_PLACE}, which then spoke for the server")
            continue
        values = (f"{field_name} {int(t_sa[k])}" if t_sa[k] == t_rst[k] else
                  f"{field_name} {int(t_sa[k])} and {int(t_rst[k])}")
        out[int(f[k])] = (f"the SYN-ACK and the reset in the server's name came with {values}, the server's packets "
                          f"on an earlier connection with {int(t_ref[k])}: probably sent by a device {d} hops nearer "
                          f"{ANSWERED_IN_PLACE}, not by the server")
    return out


#: how the hint of a connection whose SYN-ACK, no reset, came from a device nearer than the server
#: starts (:func:`_answered_in_place_hints`; classify appends it to a failed connection's detail only)
SYNACK_IN_PLACE = "the SYN-ACK came with "
#: hops nearer than the server's earlier packets such a SYN-ACK must come from: more than another
#: route or anycast site of the server gives (a TLS-inspecting device sits near the client)
SYNACK_PLACE_HOPS = 6


#: what :func:`_answered_in_place_hints` says answered a connection in the server's place
ANSWERED_IN_PLACE = "that answered the connection in the server's place (a transparent proxy, or a firewall terminating TCP)"


#: the internal column (object: None, or ``(ipver, src_hi, src_lo, ttl, dst_hi, dst_lo)`` ints) of a SYN answered
#: by a reset whose sender sent no other packet in the packets read so far (:func:`_refused_hints`):
#: a chunked or live analysis holds such a flow until one comes or the capture ends, then gives
#: it :func:`refused_hint_later` (newcomer 29 F2)
REFUSED_WAIT = "refused_wait"


def refused_hint_later(wait, ttls) -> str:
    """The hint of a held refused flow (its :data:`REFUSED_WAIT` value ``wait``) from ``ttls``
    (:func:`address_ttls` of the capture so far: an :class:`AddressTtls` or a dict as it maps):
    as :func:`refused_hint` with its sender's first packet; '' when ``ttls`` holds none (or
    ``wait`` is not a tuple)."""
    if not isinstance(wait, tuple):
        return ""
    ver, hi, lo, ttl = wait[:4]
    try:
        _, ref = AddressTtls.of(ttls)[(ver, hi, lo)]
    except KeyError:
        return ""
    return refused_hint(ver, ttl, ref)


def _tls_columns(rows: np.ndarray, b: tls_batch.TlsBatch, cols: dict[str, np.ndarray],
                 service: np.ndarray) -> None:
    """Fill the TLS columns (and ``service`` = ssl when there is a ClientHello) of flow rows
    ``rows`` from their summaries ``b`` (row *i* of ``b`` is flow ``rows[i]``); texts as
    :func:`_version_text`, :func:`_alert_text` and :func:`_cert_name_text` make them, each
    computed once per distinct value."""
    if not len(rows):
        return
    ch = b.client_hello
    service[rows[ch]] = "ssl"
    cols["sni"][rows[ch]] = np.array([s or "" for s in b.sni[ch].tolist()], object)
    cols["tls_ech"][rows] = b.ech & ch
    u, inv = np.unique(b.version, return_inverse=True)
    cols["tls_version"][rows] = np.array([_version_text(None if v < 0 else v) for v in u.tolist()],
                                         object)[inv]
    cols["tls_established"][rows] = b.established
    cols["tls_no_app"][rows] = ~np.asarray(b.client_app_data, bool) & ~np.asarray(b.server_app_data, bool) \
        & (b.version >= 0) & (b.version != tls.TLS1_3)
    cols["tls_server_app"][rows] = np.asarray(b.server_app_data, bool)
    # one code per (side, level, description); 0 = no alert (the client's is reported first)
    ca, sa = b.client_alert.astype(np.int64), b.server_alert.astype(np.int64)
    code = np.where(ca[:, 0] >= 0, (1 << 17) | (ca[:, 0] << 8) | ca[:, 1],
                    np.where(sa[:, 0] >= 0, (2 << 17) | (sa[:, 0] << 8) | sa[:, 1], 0))
    # else a TLS 1.3 client's encrypted alert before its Finished (protocols.tls: a 19-byte
    # record): which alert is not visible (code 3 << 17)
    enc = np.asarray(b.client_encrypted_alert, bool) & ~np.asarray(b.established, bool)
    code = np.where((code == 0) & enc, 3 << 17, code)
    u, inv = np.unique(code, return_inverse=True)
    texts = [(_ENCRYPTED_ALERT if c >> 17 == 3 else
              _alert_text("client" if c >> 17 == 1 else "server", ((c >> 8) & 0xFF, c & 0xFF)))
             if c else "" for c in u.tolist()]
    cols["tls_alert"][rows] = np.array(texts, object)[inv]
    # the client's flight that awaits the server's answer, if any (_tls_waits): a second
    # ClientHello after a HelloRetryRequest; up to TLS 1.2, its key exchange flight ended by its
    # ChangeCipherSpec (the server owes its ChangeCipherSpec and Finished). (TLS 1.3 owes none
    # after the ServerHello: the server's Finished is in its first flight.)
    hrr, sh = np.asarray(b.hello_retry, bool), np.asarray(b.server_hello, bool)
    ccs12 = sh & np.asarray(b.client_ccs, bool) & (b.version >= 0) & (b.version != tls.TLS1_3)
    cols["tls_wait_after"][rows] = _CLIENT_FLIGHTS[np.where(hrr & ~sh, 1, np.where(ccs12, 2, 0))]
    cols["tls_hrr"][rows] = hrr & ~sh
    # the server's cleartext CertificateRequest (TLS <= 1.2) and the client's answer to it
    asked = np.asarray(b.cert_request, bool)
    if asked.any():
        k = np.asarray(b.client_certs, np.int64)
        cols["tls_client_cert"][rows[asked]] = _CLIENT_CERTS[np.minimum(k[asked] + 1, 2)]
    for i, certs in b.certificates.items():
        names = [_cert_name_text(x) for x in tls.certificate_names(certs[0])]
        cols["cert_names"][rows[i]] = ";".join(names)
        cols["cert_issuer"][rows[i]] = tls.certificate_issuer(certs[0])   # (escaped: RFC 4514)
        valid = tls.certificate_validity(certs[0])
        if valid is not None and "cert_valid" in cols:
            cols["cert_valid"][rows[i]] = f"{valid[0]} {valid[1]}"


#: how the internal ``cert_dated`` column starts (:func:`_cert_dated`): the flow began after the
#: server certificate's notAfter, before its notBefore, or within them, by the capture's clock
CERT_DATED_AFTER, CERT_DATED_BEFORE, CERT_DATED_WITHIN = "after", "before", "within"


def _cert_dated(valid: np.ndarray, start_ns: np.ndarray) -> np.ndarray:
    """The internal ``cert_dated`` column of flows whose server certificate's validity was read
    (``valid``: "notBefore notAfter" epoch seconds texts; ``start_ns``: the flows' first packets,
    epoch ns): ``"<after|before|within> <notBefore> <notAfter> <start>"``, the three as UTC dates
    (``YYYY-MM-DD``; object array of str): how the capture's clock at the flow's start compares with
    the certificate's validity, which classify says for a client's certificate_expired (newcomer
    s60 #9: "the agent's system time is probably wrong" where the capture could tell)."""
    import datetime as _dt

    def day(s: float) -> str:
        try:
            return _dt.datetime.fromtimestamp(s, _dt.timezone.utc).strftime("%Y-%m-%d")
        except (OverflowError, OSError, ValueError):
            return "?"
    out = np.full(len(valid), "", object)
    for k, (v, ns) in enumerate(zip(valid.tolist(), start_ns.tolist())):
        nb, na = (int(x) for x in str(v).split())
        s = ns / 1e9
        kind = CERT_DATED_AFTER if s > na else CERT_DATED_BEFORE if s < nb else CERT_DATED_WITHIN
        out[k] = f"{kind} {day(nb)} {day(na)} {day(s)}"
    return out


#: the internal ``tls_client_cert`` column of a flow whose server sent a cleartext CertificateRequest
#: (TLS <= 1.2): the client's Certificate answering it not seen, empty, or holding certificates
#: ('' where no CertificateRequest was seen; classify names them in the detail)
CLIENT_CERT_UNSEEN, CLIENT_CERT_NONE, CLIENT_CERT_SENT = "asked", "none", "sent"
_CLIENT_CERTS = np.array([CLIENT_CERT_UNSEEN, CLIENT_CERT_NONE, CLIENT_CERT_SENT], object)


#: how the internal ``tls_offer`` column starts (:func:`_tls_offers`): the ClientHello's offer is a
#: current, unrestricted one, or a narrow one (:func:`.protocols.tls.offer_text`); the rest is
#: that function's text
OFFER_CURRENT, OFFER_NARROW = "current: ", "narrow: "
#: the server's alerts (descriptions) answering a ClientHello whose offer :func:`_tls_offers` reads:
#: handshake_failure (40), insufficient_security (71)
_OFFER_ALERTS = (40, 71)


def _tls_offers(rows: np.ndarray, b: tls_batch.TlsBatch, buf, start: np.ndarray, end: np.ndarray,
                cols: dict[str, np.ndarray]) -> None:
    """Fill the internal ``tls_offer`` column (in place) of the flow rows ``rows`` (row *i* of the
    summaries ``b`` and of the client stream ranges ``start``/``end``, offsets into ``buf``: a
    uint8 array or memoryview) whose server answered their ClientHello, no ServerHello sent, with
    one of :data:`_OFFER_ALERTS`: :data:`OFFER_CURRENT` or :data:`OFFER_NARROW` followed by
    :func:`.protocols.tls.offer_text`'s text, '' when the ClientHello is not whole in the bytes
    read. Only those few flows are parsed again (classify words the refusal's detail on it)."""
    if not len(rows):
        return
    alert = np.asarray(b.server_alert)[:, 1]
    pick = np.flatnonzero(np.isin(alert, _OFFER_ALERTS) & np.asarray(b.client_hello, bool)
                          & ~np.asarray(b.server_hello, bool))
    for i in pick.tolist():
        got = tls.offer_text(tls.parse_client_hello(bytes(buf[int(start[i]):int(end[i])])))
        if got is not None:
            cols["tls_offer"][rows[i]] = (OFFER_CURRENT if got[0] else OFFER_NARROW) + got[1]


#: how a detail names the client's flight that awaits the server's answer (``tls_wait_after``):
#: none (''), the second ClientHello, the TLS <= 1.2 key exchange flight
_CLIENT_FLIGHTS = np.array(["", "second ClientHello (after a HelloRetryRequest)",
                            "ClientKeyExchange/ChangeCipherSpec/Finished"], object)


@dataclass
class _SeqView:
    """The TCP packets of some flows in (flow, time) order with where they put their sequence
    spaces (:func:`.flows.seq_extents`): ``rows`` (packet rows), ``ts`` (epoch ns), ``f`` (flow
    numbers), ``fo`` (from the originator), ``plen`` (payload bytes, -1: header cut), ``flags``,
    ``end``/``acked`` (relative sequence end, acknowledgement; -1: none), ``win`` (the TCP window
    field as sent, unscaled; -1: the header cut before it). All int64/bool arrays."""
    rows: np.ndarray
    ts: np.ndarray
    f: np.ndarray
    fo: np.ndarray
    plen: np.ndarray
    flags: np.ndarray
    end: np.ndarray
    acked: np.ndarray
    win: np.ndarray


def _seq_view(ft: FlowTable, flows: np.ndarray) -> _SeqView | None:
    """The :class:`_SeqView` of the TCP packets of ``flows`` (flow numbers), None when none."""
    c, pf = ft.packets.cols, ft.pkt_flow
    rows = _tcp_rows_of(ft, flows)
    if not len(rows):
        return None
    ts = c["ts_ns"][rows].astype(np.int64)
    o = np.lexsort((rows, ts, pf[rows]))            # (flow, time) order, as seq_extents wants
    rows, ts = rows[o], ts[o]
    f = pf[rows].astype(np.int64)
    fo = np.asarray(ft.pkt_from_orig[rows], bool)
    plen = c["payload_len"][rows].astype(np.int64)
    flags = c["tcp_flags"][rows].astype(np.int64)
    end, acked = seq_extents(f, fo, flags, np.ones(len(rows), bool), c["seq"][rows], c["ack"][rows], plen)
    # (a table of packets made without the window column: unknown, -1)
    win = c["tcp_win"][rows].astype(np.int64) if "tcp_win" in c else np.full(len(rows), -1, np.int64)
    return _SeqView(rows, ts, f, fo, plen, flags, end, acked, win)


def _tls_waits(ft: FlowTable, flows: np.ndarray, responder: bool = False,
               view: _SeqView | None = None) -> np.ndarray:
    """Per flow row of ``flows`` (int array, distinct; TCP flows): seconds from the flow's first
    packet to the first sending of the client's last new data byte, when the server sent no new
    byte after it; -1 when the server did (or sent none at all, or the client sent no data).
    ``responder``: the same with the roles swapped (the responder's last new byte, the
    originator's silence). ``view``: the :func:`_seq_view` of flows including these (None: made).

    By sequence numbers (:func:`.flows.seq_extents`), so retransmissions and keep-alive probes
    are no new bytes: the server's furthest byte is the furthest end of its data segments or of
    the client's acknowledgements (a segment missing from the capture but acknowledged counts).
    It came before the client's last byte when a server segment reached it earlier, or a
    client segment acknowledged it no later (a server segment with the same timestamp counts as
    after it: coarse clocks do not make an answer disappear).

    Reads only the packets that a chunked or live analysis keeps of a flow whose inspected bytes
    are not cut (``payload_cut`` False): its first and last packets, the first packet of each
    direction reaching its furthest sequence end and acknowledgement (so all readings agree)."""
    out = np.full(len(flows), -1.0)
    v = view if view is not None or not len(flows) else _seq_view(ft, flows)
    if v is None:
        return out
    n_f = len(ft.flows)
    big = np.iinfo(np.int64).max
    f = v.f
    _, t_c, top_s, before = _last_byte_and_answer(v, n_f, responder)
    silent = np.zeros(n_f, bool)
    silent[f[before]] = True
    fl = np.asarray(flows, np.int64)
    first = ft.flows["ts_ns"].to_numpy(np.int64)[fl]
    ok = silent[fl] & (top_s[fl] > 0) & (t_c[fl] < big)
    out[ok] = (t_c[fl][ok] - first[ok]) / 1e9
    return out


def _last_byte_and_answer(v: _SeqView, n_f: int, responder: bool = False):
    """What :func:`_tls_waits` and :func:`_close_waits` read of a :func:`_seq_view` ``v`` (over
    flows numbered below ``n_f``): ``(data_c, t_c, top_s, reached)``.

    ``data_c`` (bool, per row of ``v``): a data segment of the client (``responder``: of the
    responder) with a known sequence end; ``t_c`` (int64 epoch ns, per flow; int64 max where
    none): when the client's furthest data byte was first sent; ``top_s`` (int64, per flow; -1
    where none): the server's furthest byte, the furthest end of its data segments or of the
    client's acknowledgements (a segment missing from the capture but acknowledged counts);
    ``reached`` (bool, per row): the rows that reach ``top_s`` before the client's last byte (a
    server segment strictly before it, a client acknowledgement no later)."""
    ts, f, plen, end, acked = v.ts, v.f, v.plen, v.end, v.acked
    fo = ~v.fo if responder else v.fo
    big = np.iinfo(np.int64).max
    data_c = fo & (plen > 0) & (end >= 0)
    top_c = np.full(n_f, -1, np.int64)
    np.maximum.at(top_c, f[data_c], end[data_c])
    t_c = np.full(n_f, big, np.int64)
    at = data_c & (end == top_c[f])
    np.minimum.at(t_c, f[at], ts[at])
    # the server's bytes: the ends of its data segments, the client's acknowledgements
    sv = np.where(fo, acked, np.where(plen > 0, end, -1))
    top_s = np.full(n_f, -1, np.int64)
    np.maximum.at(top_s, f[sv >= 0], sv[sv >= 0])
    reached = (sv >= 0) & (sv == top_s[f]) & np.where(fo, ts <= t_c[f], ts < t_c[f])
    return data_c, t_c, top_s, reached


def _close_waits(ft: FlowTable, flows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per flow row of ``flows`` (int array, distinct; TCP flows): ``(close, wait, served)``.

    ``close`` (object array): who sent the flow's first FIN or RST and which, ``client FIN``,
    ``client RST``, ``server FIN`` or ``server RST`` (a RST when the packet has both), with
    `` answered`` added when the other side sent new data after it (by sequence numbers: an
    alert answering a FIN); '' when none. ``wait`` (float, seconds; -1 where not): from the first sending
    of the client's last new data byte before that FIN or RST to it, when the server sent no new
    byte in between (a server that sent no byte at all counts, from the client's first data
    segment: a ClientHello never answered);
    -1 when there was no close, no client data before it, or a server byte after it.
    ``served`` (int64, bytes; -1 where no close): the server's bytes before that FIN or RST, by
    sequence numbers (its data segments, or the client's acknowledgements of them: 0 when the
    server had sent nothing yet, whatever it sent after the close: break-it 23 F5).

    By sequence numbers, as :func:`_tls_waits` on the packets before the close only (what the
    client sent after it, an alert answering the server's FIN, does not count), so it reads the
    packets a chunked or live analysis keeps of a flow whose inspected bytes are not cut: its
    first data segments, the first FIN or RST of each direction."""
    who, when = _first_close(ft, flows)
    out = np.full(len(flows), -1.0)
    served = np.full(len(flows), -1, np.int64)
    closed = when >= 0
    if not closed.any():
        return who, out, served
    fl = np.asarray(flows, np.int64)
    c = ft.packets.cols
    # which: the closer's packets at that time (a RST among them makes it a reset)
    rows = _tcp_rows_of(ft, fl[closed], (c["tcp_flags"] & RST) != 0)
    pos = np.full(len(ft.flows) + 1, -1, np.int64)
    pos[fl] = np.arange(len(fl))
    at_r = pos[ft.pkt_flow[rows]]
    side = np.where(ft.pkt_from_orig[rows], "client", "server")
    reset = np.zeros(len(fl), bool)
    reset[at_r[(c["ts_ns"][rows] == when[at_r]) & (side == who[at_r])]] = True
    # the other side's furthest data end, before the close and overall
    full = _seq_view(ft, fl[closed])
    close = np.array([f"{w} {'RST' if r else 'FIN'}" if w else "" for w, r in zip(who.tolist(), reset.tolist())],
                     object)
    # (the packets before the close; a packet of no flow, pkt_flow -1, reads the appended slot)
    close_at = np.full(len(ft.flows) + 1, np.iinfo(np.int64).min, np.int64)
    close_at[fl[closed]] = when[closed]
    pf = ft.pkt_flow
    before = ft.packets.cols["ts_ns"].astype(np.int64) < close_at[pf]
    if full is not None:
        before |= _acked_by_close(ft, full, fl[closed], who[closed], close_at)
    ft2 = replace(ft, pkt_flow=np.where(before, pf, -1))
    v = _seq_view(ft2, fl[closed])
    served[closed] = 0
    if v is None:
        return who, out, served
    n_f = len(ft.flows)
    ts, f = v.ts, v.f
    big = np.iinfo(np.int64).max
    # (the server's furthest byte reached before the client's last one: none after it, one at
    # the same time counting as after it, as _tls_waits)
    data_c, t_c, top_s, first = _last_byte_and_answer(v, n_f)
    mute = top_s <= 0           # (no server byte at all: counted from the client's first data)
    served[closed] = np.maximum(top_s[fl[closed]], 0)
    silent = mute.copy()
    silent[f[first]] = True
    t_1 = np.full(n_f, big, np.int64)
    np.minimum.at(t_1, f[data_c], ts[data_c])
    since = np.where(mute, t_1, t_c)
    ok = closed & (t_c[fl] < big) & silent[fl]
    # (not below 0: the client's last data stamped after a close that acknowledges it, _acked_by_close)
    out[ok] = np.maximum(when[ok] - since[fl][ok], 0) / 1e9
    # the other side's new data after the close: its furthest data end overall past the one before
    if full is not None:
        def tops(view: _SeqView) -> np.ndarray:     # (n_f, 2): each direction's furthest data end
            d = (view.plen > 0) & (view.end >= 0)
            top = np.full((n_f, 2), -1, np.int64)
            np.maximum.at(top, (view.f[d], (~view.fo[d]).astype(np.int64)), view.end[d])
            return top
        other = np.where(who == "client", 1, 0)
        answered = closed & (tops(full)[fl, other] > tops(v)[fl, other])
        close[answered] = close[answered] + " answered"
    return close, out, served


def _acked_by_close(ft: FlowTable, v: "_SeqView", fl: np.ndarray, who: np.ndarray,
                    close_at: np.ndarray) -> np.ndarray:
    """A mask over the packets of ``ft``: the data segments of the other side of each flow of
    ``fl`` (int array; ``who`` its first closer, ``client`` or ``server``, ``close_at`` per flow
    number the time of that close, the last slot for packets of no flow) stamped at or up to
    :data:`~kscc_traffic.flows.SKEW_MAX_NS` after the closing packet (a FIN or RST) whose
    acknowledgement covers their bytes: they were sent before it, whatever their stamps say (a
    capture of two interfaces whose clocks differ slightly: a two-port tap, one direction each;
    newcomer 36 F4: an IPS's reset 70 µs before the ClientHello it acknowledges). ``v`` is the
    :class:`_SeqView` of those flows."""
    out = np.zeros(len(ft.pkt_flow), bool)
    n_f = len(ft.flows)
    closer_orig = np.zeros(n_f + 1, bool)
    closer_orig[fl] = who == "client"
    t_close = close_at[v.f]
    # the closing packets (the closer's FIN or RST with ACK at the close's time): what the first
    # acknowledges (32-bit: seq_extents gives a reset no acknowledgement)
    c = ft.packets.cols
    mine = ((v.fo == closer_orig[v.f]) & (v.ts == t_close) & ((v.flags & (FIN | RST)) != 0)
            & ((v.flags & ACK) != 0))
    if not mine.any():
        return out
    at = np.flatnonzero(mine)
    at = at[np.r_[True, v.f[at][1:] != v.f[at][:-1]]]
    has = np.zeros(n_f + 1, bool)
    has[v.f[at]] = True
    cack = np.zeros(n_f + 1, np.int64)
    cack[v.f[at]] = c["ack"][v.rows[at]].astype(np.int64) & 0xFFFFFFFF
    late = np.flatnonzero(has[v.f] & (v.fo != closer_orig[v.f]) & (v.plen > 0) & (v.ts >= t_close)
                          & (v.ts - t_close <= SKEW_MAX_NS))
    if not len(late):
        return out
    r = v.rows[late]
    end = (c["seq"][r].astype(np.int64) + v.plen[late]) & 0xFFFFFFFF
    # (its end at or before the acknowledgement, in 32-bit sequence space)
    late = late[((cack[v.f[late]] - end) & 0xFFFFFFFF) < (1 << 31)]
    out[v.rows[late]] = True
    return out


def _client_last_flight(ft: FlowTable, flows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per flow row of ``flows`` (int array, distinct; TCP flows): ``(final, unacked)``.

    ``final`` (int64, bytes; -1 where the server sent no data): the client's new data bytes past
    what the server's last data acknowledged, by sequence numbers: the server's furthest data
    segment (the first one reaching its furthest end) carries that acknowledgement, so this is
    what the client sent after the server's last flight (a cleartext alert is 7 bytes).
    ``unacked`` (bool): the server never acknowledged the client's furthest data byte (its
    furthest acknowledgement stops short: a flight dropped on its way to the server).

    Only for flows with at most :data:`~kscc_traffic.streams.MAX_SEGMENTS` data segments (captured
    or not) in each direction (else -1, False): a chunked or live analysis keeps all of those, and
    the packet acknowledging furthest, so all readings agree."""
    final = np.full(len(flows), -1, np.int64)
    unacked = np.zeros(len(flows), bool)
    v = _seq_view(ft, flows) if len(flows) else None
    if v is None:
        return final, unacked
    n_f = len(ft.flows)
    rows, f, fo, plen, flags, end, acked = v.rows, v.f, v.fo, v.plen, v.flags, v.end, v.acked
    data = (plen > 0) & (end >= 0)
    end = end - ((flags & FIN) != 0)               # (the data's end, without a FIN octet)
    top_c = np.full(n_f, -1, np.int64)
    np.maximum.at(top_c, f[data & fo], end[data & fo])
    top_s = np.full(n_f, -1, np.int64)
    np.maximum.at(top_s, f[data & ~fo], end[data & ~fo])
    # the server's first data segment reaching its furthest end: what it acknowledged then
    at = np.full(n_f, len(rows), np.int64)
    last_s = data & ~fo & (end == top_s[f])
    np.minimum.at(at, f[last_s], np.flatnonzero(last_s))
    ack_s = np.full(n_f, -1, np.int64)
    ok = at < len(rows)
    ack_s[ok] = acked[at[ok]]
    most_ack = np.full(n_f, -1, np.int64)
    np.maximum.at(most_ack, f[~fo], acked[~fo])
    fl = np.asarray(flows, np.int64)
    segs = np.bincount(f[plen > 0] * 2 + ~fo[plen > 0], minlength=2 * n_f)
    few = (segs[0::2] <= MAX_SEGMENTS) & (segs[1::2] <= MAX_SEGMENTS)
    has = (top_s[fl] >= 0) & (ack_s[fl] >= 0) & (top_c[fl] >= 0) & few[fl]
    final[has] = np.maximum(top_c[fl][has] - ack_s[fl][has], 0)
    unacked[:] = (top_c[fl] > 0) & (most_ack[fl] < top_c[fl]) & few[fl]
    return final, unacked


def _first_segment_hints(ft: FlowTable, nflows: int):
    """Per flow and direction: whether its first TCP data segment could start TLS or HTTP (a
    TLS/SSLv2 record header, an upper-case letter, or fewer than 5 bytes captured), and whether
    the direction sent data at all. Decided on whole columns; only "maybe" flows are parsed.
    Also, per flow: whether a direction's first data segment kept fewer bytes than
    :data:`HEAD_WHOLE` (or than it had) captured: its first bytes were cut by the snaplen, so
    they cannot tell cleartext from TLS (``first_bytes_cut``).

    Returns ``(maybe_c, maybe_s, seen_c, seen_s, first_bytes_cut, start_lost)``: bool arrays of
    ``nflows``, and ``start_lost`` int8 ``(2, nflows)`` (row 0 the client's direction, 1 the
    server's): 0, or the direction's stream start was not captured (:func:`_start_off`'s
    ``lost``), 1 never acknowledged by the peer (lost on the path), 2 acknowledged (lost by the
    capture)."""
    c = ft.packets.cols
    maybe = np.zeros((2, nflows), bool)
    seen = np.zeros((2, nflows), bool)
    short = np.zeros((2, nflows), bool)
    start_lost = np.zeros((2, nflows), np.int8)
    # (not a fragment after the first, nor a header cut before its ports: sport -1, no segment)
    rows = np.nonzero((ft.pkt_flow >= 0) & (c["proto"] == TCP) & content_rows(c)
                      & (c["sport"] >= 0))[0]
    if len(rows):
        key = ft.pkt_flow[rows] * 2 + (~ft.pkt_from_orig[rows]).astype(np.int64)
        ts = c["ts_ns"][rows]
        if bool((ts[1:] >= ts[:-1]).all()):
            # rows in time order (the usual case): the first of each key is its earliest, no
            # sort needed (in key order, as below)
            at = np.full(2 * nflows, len(rows), np.int64)
            np.minimum.at(at, key, np.arange(len(rows)))
            at = at[at < len(rows)]
            rows, key = rows[at], key[at]
        else:
            order = np.lexsort((ts, key))
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
        short[d, f] = cap < np.minimum(c["payload_len"][rows], HEAD_WHOLE)
        lost, later, acked = _start_off(ft, key, _data_seq(c, rows))
        # (a segment sent before the first one captured: its stream is looked at from its start)
        maybe[d[later], f[later]] = True
        start_lost[d[lost], f[lost]] = np.where(acked[lost], 2, 1)
    return maybe[0], maybe[1], seen[0], seen[1], short[0] | short[1], start_lost


def _start_off(ft: FlowTable, key: np.ndarray,
               first_seq: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For (flow, direction) groups ``key`` (flow row * 2 + 1 for the responder) whose earliest
    data segment starts at ``first_seq``: ``(lost, later, acked)`` bool arrays like ``key``
    (``acked``: :func:`_start_acked`, read only where ``lost``; all False when no group is
    ``lost`` nor ``later``). ``lost`` and ``later`` only
    where the direction's SYN (the client's SYN, the server's SYN-ACK) was captured and that
    segment does not start at its sequence number + 1 (the stream's first byte): ``lost`` when no
    captured data segment of the direction starts there (the stream's start was not captured: a
    capture drop, its bytes neither TLS nor cleartext to anyone), ``later`` when one does (sent
    earlier, captured later: reordered on the way to the capture)."""
    lost = np.zeros(len(key), bool)
    later = np.zeros(len(key), bool)
    srows, sgrp = _syn_rows(ft)
    if not len(srows) or not len(key):
        return lost, later, lost
    c = ft.packets.cols
    anchor = sgrp * _SEQ_SPACE + ((c["seq"][srows].astype(np.int64) + 1) & _SEQ_MASK)
    first = key * _SEQ_SPACE + (first_seq.astype(np.int64) & _SEQ_MASK)
    size = 2 * len(ft.flows)
    has_syn = _member(key, sgrp, size)
    anchor = np.sort(anchor)
    off = has_syn & ~_in_sorted(first, anchor)
    if not off.any():
        return lost, later, lost
    # (the groups' data segments that start at a SYN's sequence number + 1)
    rows = np.nonzero((ft.pkt_flow >= 0) & (c["proto"] == TCP) & content_rows(c) & (c["sport"] >= 0))[0]
    g = ft.pkt_flow[rows] * 2 + (~ft.pkt_from_orig[rows]).astype(np.int64)
    sel = _member(g, key[off], size)
    at = g[sel] * _SEQ_SPACE + (_data_seq(c, rows[sel]) & _SEQ_MASK)
    starts = g[sel][_in_sorted(at, anchor)]
    there = _member(key, starts, size)
    return off & ~there, off & there, _start_acked(ft, key, srows, sgrp)


def _start_acked(ft: FlowTable, key: np.ndarray, srows: np.ndarray, sgrp: np.ndarray) -> np.ndarray:
    """bool array like ``key`` ((flow, direction) groups: flow row * 2 + 1 for the responder):
    the other side acknowledged a byte past the direction's first (an ACK number after its SYN's
    sequence number + 1, mod 2**32, within 2**31), given its SYN packets ``srows`` of groups
    ``sgrp`` (:func:`kscc_traffic.streams._syn_rows`)."""
    c = ft.packets.cols
    rows = np.nonzero((ft.pkt_flow >= 0) & (c["proto"] == TCP) & ((c["tcp_flags"] & ACK) != 0)
                      & (c["sport"] >= 0))[0]
    # (an ACK of the originator acknowledges the responder's bytes, and the other way round)
    g = ft.pkt_flow[rows].astype(np.int64) * 2 + np.asarray(ft.pkt_from_orig[rows], bool)
    size = 2 * len(ft.flows)
    sel = _member(g, key, size)
    rows, g = rows[sel], g[sel]
    if not len(rows):
        return np.zeros(len(key), bool)
    order = np.argsort(sgrp, kind="stable")
    sg, sv = sgrp[order], (c["seq"][srows[order]].astype(np.int64) + 1) & _SEQ_MASK
    at = np.minimum(np.searchsorted(sg, g), len(sg) - 1)
    mine = sg[at] == g
    delta = (c["ack"][rows[mine]].astype(np.int64) - sv[at[mine]]) & _SEQ_MASK
    acked = g[mine][(delta > 0) & (delta < 1 << 31)]
    return _member(key, acked, size)


#: sequence numbers (mod 2**32) combined with a group number into one int64 key
_SEQ_SPACE = 1 << 32


def _data_seq(c: dict, rows: np.ndarray) -> np.ndarray:
    """int64 array: the sequence number of the first data byte of packet ``rows`` (a SYN's data,
    TCP Fast Open, starts at its sequence number + 1)."""
    return c["seq"][rows].astype(np.int64) + ((c["tcp_flags"][rows] & SYN) != 0)


#: bytes of the responder's first data shown by :func:`_first_bytes_text`
HEAD_BYTES = 40
#: bytes of a direction's first data segment that tell cleartext from TLS (a TLS record header
#: is 5; an old 68-byte snaplen kept 2): fewer captured is ``first_bytes_cut``
HEAD_WHOLE = 16


#: bytes that make text: printable ASCII, tab, CR, LF
_TEXT_BYTES = bytes(range(0x20, 0x7F)) + b"\t\r\n"


def _first_bytes_text(ft: FlowTable, flows: np.ndarray, client: bool = False) -> tuple[list[str], list[str]]:
    """Per flow of ``flows`` (indices): the first bytes (at most :data:`HEAD_BYTES`) of the
    responder's stream (``client``: the originator's), followed across its data segments in sequence
    order (from the byte after its SYN-ACK's sequence number, the originator's SYN's; a
    retransmission adds nothing, a gap or a segment the snaplen
    cut ends them; only the first :data:`~kscc_traffic.streams.MAX_SEGMENTS` data segments, which a
    chunked or live analysis keeps with their bytes). Returns two lists of ``str``, one per flow:

    - the bytes as escaped text (:func:`dns.text_from_bytes`; a line end at their end left out,
      ``…`` when the stream went on) when they are text (:func:`_text_head`: a banner, a status
      line, a page, a localised refusal in UTF-8), else '';
    - when they are not text (:func:`_text_head`): the first 8 of them (fewer when the stream had
      fewer) in hex, space-separated (``"80 81 82 83 84 85 86 87"``; classify says how many bytes
      the server sent in all), else ''.

    Both are '' where the responder's earliest data segment does not start its stream (its SYN-ACK
    not captured, or the start lost; ``client``: the originator's, its SYN)."""
    c = ft.packets.cols
    want = np.zeros(len(ft.flows), bool)
    want[flows] = True
    side = ft.pkt_from_orig if client else ~ft.pkt_from_orig
    mine = (ft.pkt_flow >= 0) & side & (c["proto"] == TCP) & (c["sport"] >= 0)
    rows = np.nonzero(mine & content_rows(c) & (c["pl_cap"] > 0))[0]
    rows = rows[want[ft.pkt_flow[rows]]]
    # (each flow's first MAX_SEGMENTS data segments in capture order, then in time order: a
    # chunked or live analysis keeps them with their bytes, and one more, which says the quote
    # ends there)
    pf = ft.pkt_flow
    rows = rows[stable_order(pf[rows])]             # (by flow, capture order)
    fl = pf[rows]
    head = np.r_[True, fl[1:] != fl[:-1]] if len(rows) else np.zeros(0, bool)
    k = np.arange(len(rows))
    rank = k - np.maximum.accumulate(np.where(head, k, 0))
    extra = set(fl[rank == MAX_SEGMENTS].tolist())
    rows, fl = rows[rank < MAX_SEGMENTS], fl[rank < MAX_SEGMENTS]
    by_time = np.lexsort((rows, c["ts_ns"][rows], fl))
    rows, fl = rows[by_time], fl[by_time]
    # (flow -> the range of its segments in these rows, and their columns as lists)
    lo = np.flatnonzero(np.r_[True, fl[1:] != fl[:-1]]) if len(rows) else np.zeros(0, np.int64)
    segs = dict(zip(fl[lo].tolist(), zip(lo.tolist(), np.r_[lo[1:], len(rows)].astype(np.int64).tolist())))
    seq_l = (c["seq"][rows].astype(np.int64) & 0xFFFFFFFF).tolist()
    cap_l, plen_l = c["pl_cap"][rows].tolist(), c["payload_len"][rows].tolist()
    off_l = c["pl_off"][rows].tolist()
    synack = np.nonzero(mine & ((c["tcp_flags"] & (SYN | ACK)) == (SYN if client else SYN | ACK)))[0]
    start = {int(ft.pkt_flow[r]): (int(c["seq"][r]) + 1) & 0xFFFFFFFF for r in synack[want[ft.pkt_flow[synack]]].tolist()}
    buf = ft.packets.buf
    texts, binary = [], []
    for f in flows.tolist():
        a, b = segs.get(int(f), (0, 0))
        expect = start.get(int(f))
        if a == b or expect != seq_l[a]:
            texts.append("")
            binary.append("")
            continue
        raw, more = b"", False
        for j in range(a, b):
            seq, cap, plen = seq_l[j], cap_l[j], plen_l[j]
            if seq != expect:
                if (seq - expect) & 0xFFFFFFFF < 0x80000000:
                    more = True     # (a gap: bytes not captured follow)
                    break
                continue            # (a retransmission of bytes already read)
            o = off_l[j]
            raw += bytes(buf[o:o + min(cap, HEAD_BYTES - len(raw) + 1)])
            expect = (expect + max(plen, cap)) & 0xFFFFFFFF
            if len(raw) > HEAD_BYTES or cap < plen:
                more = True
                break
        more = more or len(raw) > HEAD_BYTES or j != b - 1 or int(f) in extra
        raw = raw[:HEAD_BYTES]
        head = _text_head(raw)
        if head is None:
            texts.append("")
            binary.append(raw[:8].hex(' '))
            continue
        more = more or len(head) < len(raw)
        texts.append(dns.text_from_bytes(head if more else head.rstrip(b"\r\n")) + ("…" if more else ""))
        binary.append("")
    return texts, binary


def _quoted(raw: bytes, more: bool) -> tuple[str, str]:
    """A stream's first bytes ``raw`` (at most :data:`HEAD_BYTES`; ``more``: the stream went on)
    as :func:`_first_bytes_text` gives them: (escaped text with ``…`` when it went on, '') when
    they are text (:func:`_text_head`), else ('', the first 8 in hex)."""
    head = _text_head(raw)
    if head is None:
        return "", raw[:8].hex(" ")
    more = more or len(head) < len(raw)
    return dns.text_from_bytes(head if more else head.rstrip(b"\r\n")) + ("…" if more else ""), ""


def _text_head(raw: bytes) -> bytes | None:
    """``raw`` (a server's first bytes) when they are text, else None: at least 90 % printable
    ASCII, tab, CR, LF (a banner, a status line), or valid UTF-8 whose characters are at least
    90 % printable or tab/CR/LF (a localised refusal: "Доступ запрещён…"), then without a last
    character the cut left incomplete (at most 3 bytes dropped)."""
    if len(raw.translate(None, _TEXT_BYTES)) * 10 <= len(raw):
        return raw
    for cut in range(4):
        try:
            text = raw[:len(raw) - cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
        if text and sum(1 for ch in text if not (ch.isprintable() or ch in "\t\r\n")) * 10 <= len(text):
            return raw[:len(raw) - cut]
        return None
    return None


def _unreassembled(ft: FlowTable, nflows: int) -> np.ndarray:
    """Per flow (object array (nflows,)): which direction's packets were all fragments of IP
    datagrams the capture never completed (packet column ``unreassembled``): 'orig', 'resp',
    'both', or '' (none, or a direction with a datagram that arrived whole). Of a TCP flow only
    the segments that carry data count (``payload_len`` > 0: its handshake and bare
    acknowledgements arrive whole, its ClientHello in fragments lost or overlapping; s54 v6 #1).
    Such datagrams reached no receiver's transport layer: what they carried was not delivered (a
    DNS answer whose second fragment was dropped on the way is no answer, nor a ClientHello that
    came only as first fragments), unless the other side acknowledged them (:func:`_delivered`:
    a capture that missed the later fragments). Exact from the packets a chunked or live analysis
    keeps (each direction's first packet and first data segment, and its first one of each that
    is not such a fragment: ``chunked._summarise``)."""
    out = repeated("", nflows)
    c = ft.packets.cols
    if "unreassembled" not in c or not nflows or not c["unreassembled"].any():
        return out
    own = (ft.pkt_flow >= 0) & ((c["proto"] != TCP) | (c["payload_len"] > 0))
    key = ft.pkt_flow[own] * 2 + (~ft.pkt_from_orig[own]).astype(np.int64)
    frag = c["unreassembled"][own]
    has = np.zeros(2 * nflows, bool)
    whole = np.zeros(2 * nflows, bool)
    has[key] = True
    whole[key[~frag]] = True
    only = has & ~whole
    tcp = np.flatnonzero(only & np.repeat(ft.flows["proto"].to_numpy(dtype=object)[:nflows] == "tcp", 2))
    if len(tcp):
        only[tcp[_delivered(ft, tcp)]] = False
    only = only.reshape(nflows, 2)
    out[only[:, 0]] = "orig"
    out[only[:, 1]] = "resp"
    out[only[:, 0] & only[:, 1]] = "both"
    return out


def _delivered(ft: FlowTable, keys: np.ndarray) -> np.ndarray:
    """Per (flow, direction) key of ``keys`` (flow * 2 + 1 for the responder's; TCP, its data
    only in fragments never captured whole: :func:`_unreassembled`), whether the other side
    acknowledged the end of that direction's first data segment (its furthest acknowledgement,
    :func:`.flows.seq_extents`): the datagram reached it, the capture (a port filter keeps only
    first fragments, or its own loss), not the path, missed the rest (review s54 #1). Reads each
    direction's first data segment and furthest acknowledgement: what a chunked or live analysis
    keeps."""
    flows = np.unique(keys // 2)
    v = _seq_view(ft, flows)
    out = np.zeros(len(keys), bool)
    if v is None:
        return out
    n = len(ft.flows) + 1
    side = v.f * 2 + (~v.fo).astype(np.int64)
    first_end = np.full(2 * n, -1, np.int64)
    data = np.flatnonzero((v.plen > 0) & (v.end >= 0))
    if len(data):
        # (in (flow, time) order: each key's first data segment)
        _, at = np.unique(side[data], return_index=True)
        first_end[side[data][at]] = v.end[data][at]
    acked = np.full(2 * n, -1, np.int64)
    got = v.acked >= 0
    # (an acknowledgement is of the other direction's data: the peer's key)
    np.maximum.at(acked, (side[got] ^ 1), v.acked[got])
    # a reset's acknowledgement too (seq_extents leaves resets out: a server refusing the
    # ClientHello it received; fp s54 #2), relative to the start its side's other
    # acknowledgements count from (the raw number minus the relative one)
    rst = np.flatnonzero(((v.flags & (RST | ACK)) == (RST | ACK)))
    if len(rst) and got.any():
        raw = ft.packets.cols["ack"][v.rows].astype(np.int64)
        base = np.full(2 * n, -1, np.int64)
        base[side[got]] = (raw[got] - v.acked[got]) & 0xFFFFFFFF
        b = base[side[rst]]
        rel = (raw[rst] - b) & 0xFFFFFFFF
        ok = (b >= 0) & (rel < (1 << 31))
        np.maximum.at(acked, side[rst][ok] ^ 1, rel[ok])
    e = first_end[keys]
    return (e >= 0) & (acked[keys] >= e)


def _acked_unseen(ft: FlowTable, nflows: int) -> np.ndarray:
    """Per flow (object array (nflows,)): ``'resp'`` for a TCP flow none of whose responder's
    packets was captured while the originator sent a packet acknowledging it (ACK flag, not a
    RST, acknowledgement number not 0: after its SYN, the ACK of a SYN-ACK that reached it),
    ``'orig'`` for the reverse (only the responder's packets, one of them acknowledging: the
    SYN-ACK acknowledges the SYN), else ''. What one captured direction shows (a mirror of one
    direction, asymmetric routing): the other side's packets arrived, the capture missed them.
    Exact from the packets a chunked or live analysis keeps (each direction's first packet and
    its first acknowledging one: ``chunked._summarise``)."""
    out = repeated("", nflows)
    c = ft.packets.cols
    own = (ft.pkt_flow >= 0) & (c["proto"] == TCP)
    if not nflows or not own.any():
        return out
    key = ft.pkt_flow[own] * 2 + (~ft.pkt_from_orig[own]).astype(np.int64)
    fl = c["tcp_flags"][own].astype(np.int64)
    acking = ((fl & ACK) != 0) & ((fl & RST) == 0) & (c["ack"][own] != 0) & (c["payload_len"][own] >= 0)
    has = np.zeros(2 * nflows, bool)
    acks = np.zeros(2 * nflows, bool)
    has[key] = True
    acks[key[acking]] = True
    has, acks = has.reshape(nflows, 2), acks.reshape(nflows, 2)
    out[has[:, 0] & ~has[:, 1] & acks[:, 0]] = "resp"
    out[has[:, 1] & ~has[:, 0] & acks[:, 1]] = "orig"
    return out


def _first_data_uncaptured(ft: FlowTable, nflows: int) -> np.ndarray:
    """Per flow (bool array (nflows,)): a direction's first TCP data segment (``payload_len`` >
    0, the earliest) has no byte captured (a snaplen at or before the end of its headers: the
    classic "headers only" capture), so nothing of that direction was inspected. (The first
    data segment of each direction is what a chunked or live analysis always keeps: the history
    event ``D``.)"""
    c = ft.packets.cols
    out = np.zeros(nflows, bool)
    data = (ft.pkt_flow >= 0) & (c["proto"] == TCP) & (c["payload_len"] > 0) & (c["sport"] >= 0) \
        & ((c["tcp_flags"] & RST) == 0)             # (a RST's text is not content: content_rows)
    if "unreassembled" in c:        # (a segment never delivered whole: lost, not cut)
        data &= ~c["unreassembled"]
    if not (data & ((c["pl_cap"] <= 0) | (c["pl_off"] < 0))).any():
        return out      # (every data segment has bytes: the usual capture)
    rows = np.flatnonzero(data)
    key = ft.pkt_flow[rows] * 2 + (~ft.pkt_from_orig[rows]).astype(np.int64)
    ts = c["ts_ns"][rows]
    if bool((ts[1:] >= ts[:-1]).all()):
        first = rows[first_rows(key, np.arange(len(key)))[1]]   # (in time order: each key's first, its earliest)
    else:
        order = np.lexsort((ts, key))
        rows, key = rows[order], key[order]
        first = rows[np.r_[True, key[1:] != key[:-1]]]
    blind = (c["pl_cap"][first] <= 0) | (c["pl_off"][first] < 0)
    out[ft.pkt_flow[first[blind]]] = True
    return out


def _data_uncaptured(ft: FlowTable, flows: pd.DataFrame, acked_unseen: np.ndarray) -> np.ndarray:
    """bool array (2, len(flows)): per TCP flow not ``partial``, whether its originator's (row 0)
    or responder's (row 1) bytes were all lost by the capture: by sequence numbers the direction
    sent bytes (``seq_bytes`` above 0: its own later packets or the peer's acknowledgements show
    them) while no captured packet carried any (``byte_sums`` 0), its SYN (SYN-ACK) captured.
    Not a direction none of whose packets was captured (``acked_unseen`` 'orig'/'resp': one
    direction captured, said otherwise)."""
    n = len(flows)
    out = np.zeros((2, n), bool)
    if ft.seq_bytes is None or not n:
        return out
    tcp = (flows["proto"].to_numpy(dtype=object) == "tcp") & ~flows["partial"].to_numpy(dtype=bool)
    hist = flows["history"].to_numpy(dtype=object)
    for side, syn, unseen in ((0, "S", "orig"), (1, "h", "resp")):
        cand = tcp & (ft.seq_bytes[:, side] > 0) & (ft.byte_sums[:, side] == 0) & (acked_unseen != unseen)
        at = np.flatnonzero(cand)
        out[side, at] = [syn in str(h) for h in hist[at].tolist()]
    return out


def _mcast_groups(ft: FlowTable, out: np.ndarray) -> None:
    """Fill ``out`` (object array, one per flow, in place) with the groups the flow's IGMP/MLD
    membership reports join (:func:`kscc_traffic.protocols.mcast.joined_groups`), ';'-joined in
    order of first report, at most :data:`MAX_MCAST_GROUPS`; flows with none keep ''. Only each
    direction's first ``MAX_SEGMENTS + 1`` messages with payload (in time order) are read: what a
    chunked reading carries of a flow (:func:`kscc_traffic.chunked._summarise`), so every
    reading gets the same groups."""
    c = ft.packets.cols
    proto = c["proto"]
    cand = np.flatnonzero(((proto == 2) | (proto == ICMP6)) & (ft.pkt_flow >= 0))
    if not len(cand) or not ((proto[cand] == 2) | np.isin(c["icmp_type"][cand], (131, 143))).any():
        return
    cand = cand[content_rows(c, cand)]
    # (ranked among each direction's messages with payload, in time order, as chunked ranks them)
    fd = ft.pkt_flow[cand].astype(np.int64) * 2 + (~ft.pkt_from_orig[cand]).astype(np.int64)
    o = np.lexsort((cand, c["ts_ns"][cand], fd))
    cand, fd = cand[o], fd[o]
    start = np.r_[True, fd[1:] != fd[:-1]]
    k = np.arange(len(cand))
    rank = k - np.maximum.accumulate(np.where(start, k, 0))
    cand = cand[(rank <= MAX_SEGMENTS) & ((proto[cand] == 2) | np.isin(c["icmp_type"][cand], (131, 143)))]
    cand = cand[np.lexsort((cand, c["ts_ns"][cand]))]     # (time order: the groups' order of first report)
    found: dict[int, dict[str, None]] = {}
    for i in cand.tolist():
        groups = mcast.joined_groups(int(c["ipver"][i]), ft.packets.payload(i), int(c["icmp_type"][i]))
        if groups:
            seen = found.setdefault(int(ft.pkt_flow[i]), {})
            for g in groups:
                if len(seen) < MAX_MCAST_GROUPS:
                    seen[g] = None
    for f, seen in found.items():
        out[f] = ";".join(seen)


def dns_flows(flows: pd.DataFrame) -> np.ndarray:
    """Per flow of ``flows`` (bool array): a DNS flow, UDP or TCP with port 53 on either side
    (:func:`inspect_flows` reads its DNS messages; their answers name other flows)."""
    proto = flows["proto"].to_numpy()
    return (((flows["resp_p"].to_numpy() == 53) | (flows["orig_p"].to_numpy() == 53))
            & ((proto == "udp") | (proto == "tcp")))


def inspect_flows(ft: FlowTable, only: np.ndarray | None = None,
                  ttls: dict | None = None, opener_ports: np.ndarray | None = None,
                  openers=None, strays: StraySynAcks | None = None,
                  final: bool = False) -> tuple[pd.DataFrame, DnsAnswers]:
    """Parse application payloads and return (flows with :data:`APP_COLUMNS` and ``service``
    filled in, the DNS answers seen in the capture).

    :param only: bool array (len(ft.flows),): inspect only these flows. The other flows' packets
        are not looked at (as if their ``pkt_flow`` were -1), so those flows get the columns of a
        flow without packets: the application columns (and the internal ones classify reads) at
        their defaults ('' / False / -1 / 0), ``service`` and the counters as ``ft.flows`` has
        them; no DNS answer of theirs. Every column of a flow is found from its own packets and
        row, so the flows inspected get what inspecting every flow gives them. None: every flow.
    :param ttls: the first packet each address sent in earlier batches of the capture
        (:func:`address_ttls`), for the hint of a SYN answered by a reset (:func:`_refused_hints`); None: none.
    :param opener_ports: the cloud servers' ports (:func:`cloud_ports`) and ``openers`` the first
        SYN to one of them each address sent in earlier batches (:func:`cloud_openers`), for the
        internal ``opened_cloud`` column (:func:`_opener_notes`); None: none.
    :param strays: the SYN-ACKs no SYN of their own flow asked for, of these packets and earlier
        batches (:class:`StraySynAcks`, :func:`add_stray_synacks`), for the internal
        ``answered_from`` column (:func:`_answered_elsewhere`); None: none.
    :param final: these are the capture's last packets (:func:`_refused_hints`: a refused SYN
        whose reset's sender sent nothing else is judged now, not held).
    """
    if only is not None:
        # (the appended False: a packet of no flow, pkt_flow -1, stays -1)
        ft = replace(ft, pkt_flow=np.where(np.append(np.asarray(only, bool), False)[ft.pkt_flow], ft.pkt_flow, -1))
    flows = ft.flows
    n = len(flows)
    fills = {k: "" if v[0] == "object" else False for k, v in APP_COLUMNS.items()}
    # (for classify, not a column of the output: the server's bytes inside a CONNECT tunnel by
    # sequence numbers, its answer head left out, so bytes acknowledged but not captured count;
    # -1 where no tunnel opened)
    fills["tunnel_resp_bytes"] = -1
    # (likewise: the status of an HTTP answer inside a CONNECT tunnel, e.g. a filter's 403 to the
    # ClientHello after the proxy's 200; '' where none)
    fills["tunnel_http_status"] = ""
    # (likewise: seconds from the proxy's 2xx answer to a CONNECT (the server segment that
    # completed its head) to the flow's first FIN or RST, -1 where no tunnel opened or nothing
    # closed after it: _tunnel_close)
    fills["tunnel_close_s"] = -1.0
    # (for classify, not columns of the output: a TLS handshake left waiting on the server, see
    # _tls_waits; -1 and '' where not)
    fills["tls_wait_from_s"] = -1.0
    # (likewise: a TCP connection whose originator sent its last bytes again and the responder
    # acknowledged none of them nor sent anything new since: seconds from the flow's first packet
    # to their first sending, -1 where not: _stalled)
    fills["stall_from_s"] = -1.0
    # (likewise, a TCP flow whose SYNs were each answered by a packet acknowledging something
    # else: 'ack' (an ACK of another connection, RFC 5961's challenge ACK) or 'synack' (a SYN-ACK
    # acknowledging another number); '' where not: _syn_answers)
    fills["syn_answer"] = ""
    # (likewise, a TCP flow whose originator sent its SYN again after correct SYN-ACKs, captured
    # on its own host (its SYNs with an initial TTL): "TTL 64" (IPv6: "hop limit 64"), '' where
    # not: _synack_not_taken)
    fills["synack_not_taken"] = ""
    # (likewise, "<bytes> bytes in <n> segments" for a ClientHello record longer than the
    # client's first data segment; '' where not: _hello_split)
    fills["hello_split"] = ""
    # (likewise, two different ClientHellos sent for the same bytes: the hint for the detail,
    # naming both SNIs, '' where not: _hello_copies)
    fills["hello_copies"] = ""
    # (likewise, the ClientHello carries an encrypted_client_hello extension: its SNI may be the
    # ECH provider's public name, the name asked being encrypted; classify says so)
    fills["tls_ech"] = False
    # (likewise, a DNS flow whose every error answer was to an AAAA question: _udp_dns)
    fills["dns_error_aaaa_only"] = False
    # (likewise, the address types its matched responses answered questions for: DNS_ASKED_A,
    # DNS_ASKED_AAAA bits, 0 where none: _udp_dns, and below for DNS over TCP)
    fills["dns_asked"] = 0
    # (likewise, a DNS flow with responses that match none of its queries by transaction ID and
    # question, not counted as answers: what they were, dns_mismatch_text; '' where not)
    fills["dns_mismatch"] = ""
    # (... and the public dns_unmatched: the first such response's kind, dns_mismatch_kind)
    fills["dns_unmatched"] = ""
    # (likewise, a UDP DNS flow whose packets all went one way, queries alone or answers alone:
    # its messages' transaction IDs and questions, dns_keys_text; '' where not: classify pairs a
    # query nothing answered with its answer from another address, _note_other_source)
    fills[DNS_KEYS] = ""
    # (likewise, a TLS 1.3 connection whose server, after the client's Finished, sent only an
    # encrypted alert's size and closed first: those bytes, 0 where not; see below)
    fills["tls13_refused"] = 0
    # (likewise: a TLS session the client completed and then dropped at once, unused: the bytes
    # of the encrypted alert record it sent right after its Finished, no application data, then
    # the connection closed; 0 where not: _sessions_quit. classify reads it with the certificate)
    fills["tls_client_quit"] = 0
    # (likewise: a TLS session the server reset right after the client's first records past the
    # handshake, with nothing of its own after its handshake flights; False where not:
    # _refused_after_request. classify says it in an ok flow's detail)
    fills["refused_after_request"] = False
    # (for classify, not a column of the output: seconds from the client's last data segment sent
    # before the server's first to that first server data segment of a TLS session that
    # completed, -1 where not: _hello_waits. classify says a long one in an ok flow's detail)
    fills["hello_wait_s"] = -1.0
    # (likewise: seconds the responder held its receive window closed (zero), taking no byte, up
    # to the flow's last packet (the originator's reset, or the capture's end), after data both
    # ways; -1 where not: _window_held)
    fills["window_held_s"] = -1.0
    fills["resp_stall_from_s"] = -1.0                  # (the same, roles swapped)
    fills["tls_wait_after"] = ""
    # (likewise, a TLS handshake not completed on a closed connection: who sent the first FIN or
    # RST and which ("server FIN", "client RST"…, " answered" added when the other side sent new
    # data after it; '' where none), and the server's silence before it, see _close_waits; -1
    # where not)
    fills["tls_close"] = ""
    fills["tls_close_wait_s"] = -1.0
    # (likewise: the server's bytes before that FIN or RST, -1 where not: what it sent after the
    # close is no answer the client had, see _close_waits)
    fills["tls_close_served"] = -1
    # (likewise: a TCP connection that ended with full-size segments of one side lost while its
    # later bytes arrived, a path-MTU black hole: the hint for the detail, '' where not: _mtu_holes)
    fills["mtu_hint"] = ""
    # (likewise: a TCP reset whose TTL is not its sender's, a device on the path sent it: the hint
    # for the detail, '' where not: _reset_hints)
    fills["reset_hint"] = _reset_hints(ft, n)
    # (and, for a SYN answered by a reset, whose it is: the TTL of the address's other packets)
    # (appended to the reset's hint, "; " between: only the few flows with one are joined)
    # (and for a chunked or live analysis, not for classify: such a flow whose reset's sender sent
    # nothing else yet, REFUSED_WAIT)
    fills[REFUSED_WAIT] = np.full(n, None, object)
    refused = _refused_hints(ft, n, ttls, fills[REFUSED_WAIT], final)
    # (and, for a connection opened to a cloud server's port of an address that had itself opened
    # one before: that, classify's evidence of an inbound connection to an agent)
    fills["opened_cloud"] = _opener_notes(ft, n, opener_ports, openers)
    # (and, for an unanswered SYN that a SYN-ACK from another address or port acknowledged: where
    # that answer came from, which the client does not take)
    fills["answered_from"] = _answered_elsewhere(ft, n, strays)
    hint = fills["reset_hint"]
    # (and, for a connection whose SYN-ACK and reset came from a device nearer than the server's
    # earlier packets: that device's hint, where the flow itself gave none)
    for i, said in enumerate(_answered_in_place_hints(ft, n, ttls).tolist()):
        if said and not hint[i]:
            hint[i] = said
    for i in np.flatnonzero(refused.astype(bool)).tolist():
        hint[i] = f"{hint[i]}; {refused[i]}" if hint[i] else refused[i]
    # (likewise: a ClientHello answered in cleartext HTTP, also inside a CONNECT tunnel: the
    # Location of that answer, escaped, '' where none: http.response_location)
    fills["http_location"] = ""
    # (internal) the reason phrase of a proxy's (or a filter's) answer other than 2xx to a request
    # through it, escaped: classify quotes it (protocols.http.response_reason)
    fills["http_reason"] = ""
    # (likewise: a 2xx answer to a plain HTTP request for certificate status data or a CA
    # certificate (a CRL, an OCSP response) that is an HTML page, said as classify quotes it
    # ("an HTML page (text/html) where an OCSP response was asked for", escaped), '' where not:
    # http.revocation_asked, http.page_media_type)
    fills["http_page"] = ""
    # (likewise: a later request of a keep-alive connection whose first answer was 2xx/3xx refused
    # by a filter's status (http.FILTER_STATUSES): "403 2 /DigiCertGlobalRootG2.crl" (status, which
    # request, its target, escaped), '' where none: http.later_answers)
    fills["http_later"] = ""
    # (likewise: a proxy's 407 to a request that carried credentials, "<scheme> <requests>", ''
    # where not: http.exchange's auth)
    fills["proxy_auth"] = ""
    # (likewise: a TLS connection whose server's first flight, as captured, stopped short and whose
    # client then closed first without acknowledging more: what was missing and how long the
    # client waited, for classify's detail (packets lost on the way, not a certificate refused);
    # '' where not: tls.flight_short, _flight_lost)
    fills["flight_cut"] = ""
    # (likewise: why a TCP flow's first bytes inspected stop before its data did (payload_cut),
    # told from its streams: CUT_WHY_TEXT's "snaplen", "gap" or "limit"; '' where not cut, or cut
    # otherwise: its start lost, start_lost; the client's segments ending first, blind_window)
    fills["cut_why"] = ""
    fills["cut_why_resp"] = ""                  # (the same of the responder's bytes alone)
    # (likewise: a ClientHello answered in cleartext that is neither TLS nor HTTP, an SSH or SMTP
    # banner, a filter's text: the responder's first bytes as escaped text, '' where not:
    # _first_bytes_text)
    fills["server_head"] = ""
    # (likewise, when those first bytes are not text: the first 8 in hex)
    fills["server_binary"] = ""
    # (likewise: a TCP flow whose originator's first bytes are cleartext, HTTP or other, not a
    # ClientHello: those bytes as escaped text, or the first 8 in hex, '' where not)
    fills["client_head"] = ""
    fills["client_binary"] = ""
    # (likewise: a direction's first data segment kept fewer than HEAD_WHOLE bytes, the snaplen
    # cut its first bytes: whether they are cleartext cannot be told; _first_segment_hints)
    fills["first_bytes_cut"] = False
    # (likewise: the direction whose every packet was a fragment of an IP datagram never
    # reassembled, 'orig', 'resp' or 'both'; '' where not: _unreassembled)
    fills["unreassembled"] = _unreassembled(ft, n)
    # (likewise: a TCP flow one direction of which has no packet in the capture while the other
    # acknowledges it, 'resp' (the originator acknowledged a SYN-ACK or data of the responder) or
    # 'orig' (the reverse): one direction captured; '' where not: _acked_unseen)
    fills["acked_unseen"] = _acked_unseen(ft, n)
    # (for classify, not a column of the output: a flow whose first data of a direction has no
    # byte captured, whether its packets show a conversation that went on, _went_on; what
    # tls_established says of a flow read as TLS)
    fills["went_on"] = False
    # (likewise, for a TCP flow whose payload was cut (payload_cut): whether the client
    # sent its next flight after the server's first data, who closed first, client/server/'', and
    # the seconds from that flight to the first FIN or RST, -1 where not both)
    fills["blind_client_next"] = False
    fills["blind_closer"] = ""
    fills["blind_wait_s"] = -1.0
    fills["blind_server_next"] = 0                      # (the server's new bytes after that flight)
    # (and whether the client's inspected data segments, MAX_SEGMENTS + 1, ended before the
    # server's first data: a ClientHello in that many segments; judged from the server's
    # acknowledgements, _went_on)
    fills["blind_window"] = False
    # (and the client's new bytes after the server's last data when the client then closed first
    # and they were fewer than any encrypted record: a cleartext alert, its handshake aborted; 0
    # where not: _client_last_flight)
    fills["blind_client_alert"] = 0
    # (and whether the server never acknowledged the client's furthest data byte)
    fills["blind_unacked"] = False
    # (for classify, not a column of the output: an IGMP/MLD flow's groups its membership reports
    # join, ';'-joined, '' where none: _mcast_groups; classify says them in the detail)
    fills["mcast_groups"] = ""
    # (for classify, not a column of the output: a TCP connection whose responder held its receive
    # window at zero from its SYN-ACK on and took no byte, while the originator went on trying
    # (a tarpit): the seconds from the SYN-ACK to the originator's last packet as the detail
    # prints them, '' where not: _window_closed)
    fills["window_closed"] = ""
    # (likewise: the direction(s) whose first bytes the capture lost, the peer acknowledging them,
    # 'orig', 'resp' or 'both', '' where not; payload_cut then: judged from the packets, and the
    # details say the capture lost them, not the snaplen)
    fills["start_lost"] = ""
    # (likewise: the server's answer to the ClientHello was a HelloRetryRequest, no ServerHello
    # after it; classify names it when the client then closed)
    fills["tls_hrr"] = False
    # (likewise: the server asked for a client certificate in cleartext, a TLS <= 1.2
    # CertificateRequest, and what the client answered: CLIENT_CERT_UNSEEN/_NONE/_SENT, '' where
    # not asked; classify names it when the server then aborted)
    fills["tls_client_cert"] = ""
    # (likewise: a ClientHello the server answered with handshake_failure or insufficient_security,
    # no ServerHello: whether its offer is a current one, OFFER_CURRENT/OFFER_NARROW + what it
    # offers, '' where not read: _tls_offers; classify words the refusal's detail on it)
    fills["tls_offer"] = ""
    # (likewise: the server certificate's validity, "notBefore notAfter" epoch seconds where read
    # (_tls_columns), and how it compares with the flow's start by the capture's clock (CERT_DATED_*
    # and the three dates, _cert_dated; classify says it for a client's certificate_expired))
    fills["cert_dated"] = ""
    fills["cert_valid"] = ""        # (the last text column: popped once read, its row left out)
    # (likewise: the sequence number of the originator's first SYN (without ACK), -1 where none;
    # classify pairs a stale answer's reset attempt with its same-ISN retry: _syn_isns)
    fills["syn_isn"] = _syn_isns(ft) if n else np.full(0, -1, np.int64)
    # (for _sessions_quit: a TLS <= 1.2 flow read as TLS with no application-data record either
    # way; the last bool column: popped once read, its row left out)
    fills["tls_no_app"] = False
    # (for _refused_after_request: a flow whose server sent an application-data record; popped
    # once read, as tls_no_app)
    fills["tls_server_app"] = False
    # (the columns of each dtype made as the rows of one block: the frame of them made at the
    # end takes them as they are, flows.ColumnRows; on a spray's batch they are 45 MiB)
    cols = ColumnRows(n, fills)
    del fills, hint
    service = flows["service"].to_numpy(dtype=object).copy() if n else np.zeros(0, object)
    answers = DnsAnswers()
    if n == 0:
        cols.pop("tls_no_app")
        cols.pop("tls_server_app")
        cols.pop("cert_valid")
        if flows.index.is_unique and not any(k in flows.columns for k in cols):
            # (the columns joined at once: one by one, 100 of them leave pandas a frame of as many
            # blocks, which it warns of on the next insert: a PerformanceWarning on stderr)
            out = pd.concat([flows, frame_of(cols, flows.index)], axis=1)
            out.columns = label_index(out.columns)
            return out, answers
        out = flows.copy()
        for k, v in cols.items():
            out[k] = pd.Series(v, dtype=v.dtype, index=out.index)
        return out, answers

    proto = flows["proto"].to_numpy()
    dns_flow = dns_flows(flows)
    # (read once: the flows' protocol and partial flag do not change below)
    tcp = proto == "tcp"
    partial = flows["partial"].to_numpy(dtype=bool)

    # DNS datagrams (UDP): each distinct message parsed once, the rest on whole columns;
    # DNS over TCP from the reassembled streams (_deep_look)
    _udp_dns(ft, cols["query"], service, answers, cols["dns_rcode"], cols["dns_answers"],
             cols["dns_error_aaaa_only"], cols["dns_mismatch"], cols["dns_asked"], cols[DNS_KEYS],
             cols["dns_unmatched"])
    _udp_quic(ft, service)
    _mcast_groups(ft, cols["mcast_groups"])

    # headers only: a direction's first data not captured at all was not inspected
    blind = _first_data_uncaptured(ft, n) & tcp
    cols["payload_cut"][blind] = True
    # a cheap look at each direction's first data segment decides which flows need a deep look
    maybe_c, maybe_s, seen_c, seen_s, first_cut, start_lost = _first_segment_hints(ft, n)
    cols["first_bytes_cut"][:] = first_cut
    cols["client_proto"][seen_c & ~maybe_c & (start_lost[0] == 0)] = "other"
    cols["server_proto"][seen_s & ~maybe_s & (start_lost[1] == 0)] = "other"
    deep = maybe_c | maybe_s | (dns_flow & tcp)
    # a slice of flows at a time: their streams (up to 2 x MAX_BYTES each) are in memory together
    deep_idx = np.nonzero(deep)[0]
    for k in range(0, len(deep_idx), STREAM_SLICE):
        part = np.zeros(n, bool)
        part[deep_idx[k:k + STREAM_SLICE]] = True
        _deep_look(ft, part, flows, cols, service, answers, dns_flow, proto)
    valid = np.flatnonzero(cols["cert_valid"] != "")
    if len(valid):
        cols["cert_dated"][valid] = _cert_dated(cols["cert_valid"][valid], flows["ts_ns"].to_numpy()[valid])
    cols.pop("cert_valid")
    # a direction whose first bytes were not captured (its SYN was, no data segment starts after
    # it): what it sent is not known, not "other" (break-it 30 F3)
    # Only a start the peer acknowledged was lost by the capture alone (payload_cut: judged from
    # the packets); one it never acknowledged was lost on the path (a path-MTU black hole, the
    # peer's acknowledgements stuck before it: the packets tell that story themselves)
    # A direction of which no data segment was captured at all, while the peer acknowledged its
    # bytes (its SYN captured, not a direction seen only by the peer's acknowledgements:
    # acked_unseen), lost them to the capture too
    gone = _data_uncaptured(ft, flows, cols["acked_unseen"])
    lost_by = np.zeros((2, n), bool)
    for side, col in ((0, "client_proto"), (1, "server_proto")):
        lost = (start_lost[side] > 0) & ~isin_texts(cols[col], ("tls", "http"))
        cols[col][lost] = ""
        lost_by[side] = (lost & (start_lost[side] == 2)) | gone[side]
        cols["payload_cut"][lost_by[side]] = True
    cols["start_lost"][lost_by[0]] = "orig"
    cols["start_lost"][lost_by[1]] = "resp"
    cols["start_lost"][lost_by[0] & lost_by[1]] = "both"
    # a ClientHello spread over several TCP segments, its handshake not completed
    split = np.flatnonzero(tcp & (cols["client_proto"] == "tls")
                           & ~cols["tls_established"].astype(bool) & ~partial)
    if len(split):
        cols["hello_split"][split] = _hello_split(ft, split)
    odd = np.flatnonzero(tcp & (cols["client_proto"] == "tls") & (cols["server_proto"] == "other"))
    if len(odd):
        cols["server_head"][odd], cols["server_binary"][odd] = _first_bytes_text(ft, odd)
    # the client's cleartext (HTTP, or other bytes) where a TLS purpose would have a ClientHello:
    # quoted by classify (not a plain HTTP request, which names its Host; not DNS over TCP)
    clear = np.flatnonzero(tcp & isin_texts(cols["client_proto"], ("http", "other")) & ~dns_flow
                           & (cols["proxy_target"] == ""))
    if len(clear):
        cols["client_head"][clear], cols["client_binary"][clear] = _first_bytes_text(ft, clear, client=True)
    # a handshake not completed whose client flight awaits the server, on an open connection
    # whose inspected bytes are whole
    # (a FIN+RST packet's letter I/i is both: flows.history_plain)
    hist = flows["history"].to_numpy(dtype=object)
    wait = np.flatnonzero(tcp & isin_texts(service, ("ssl", "http,ssl"))
                          & (cols["tls_wait_after"] != "") & ~cols["tls_established"].astype(bool)
                          & ~cols["payload_cut"].astype(bool))
    wait = wait[~_history_has(hist[wait], "FfRr")]
    cols["tls_wait_from_s"][wait] = _tls_waits(ft, wait)
    # the same on a closed connection: the server's silence up to the first FIN or RST (a
    # ClientHello never answered, a next flight never answered, then one side gave up)
    shut = np.flatnonzero(tcp & (isin_texts(service, ("ssl", "http,ssl"))
                                              | ((cols["client_proto"] == "tls") & (cols["client_binary"] != "")))
                          & ~cols["tls_established"].astype(bool) & ~cols["payload_cut"].astype(bool))
    # (and a ClientHello the capture cut or lost before it could be read, the server silent: who
    # closed and when is in its packets, by sequence numbers, as for one read whole)
    blind = np.flatnonzero(tcp & cols["payload_cut"].astype(bool)
                           & isin_texts(cols["client_proto"], ("", "tls")) & isin_texts(cols["server_proto"], ("", "tls"))
                           & (flows["resp_bytes"].to_numpy() == 0) & (flows["orig_bytes"].to_numpy() > 0)
                           & (cols["proxy_target"] == ""))
    shut = np.union1d(shut, blind)
    shut = shut[_history_has(hist[shut], "FfRr")]
    if len(shut):
        cols["tls_close"][shut], cols["tls_close_wait_s"][shut], cols["tls_close_served"][shut] = \
            _close_waits(ft, shut)
    cols["tls_wait_after"][(cols["tls_wait_from_s"] < 0) & (cols["tls_close_wait_s"] < 0)] = ""
    # a TCP flow whose payload was cut, not seen established, not a CONNECT tunnel (judged with
    # the proxy's answer skipped: _tunnel_columns): what its packets show of a handshake
    cand = np.flatnonzero(tcp & cols["payload_cut"].astype(bool)
                          & ~cols["tls_established"].astype(bool) & (cols["proxy_target"] == ""))
    if len(cand):
        nxt, srv, c2, cols["blind_window"][cand] = _went_on(ft, cand, parts=True)
        who, when = _first_close(ft, cand)
        final, unacked = _client_last_flight(ft, cand)
        # the client's last bytes before it closed first, after the server's last flight, fewer
        # than any encrypted record: a cleartext alert (a certificate rejected after a
        # HelloRetryRequest round): the handshake did not go on, whatever came before
        alert = (who == "client") & (final > 0) & (final < SMALLEST_SEALED)
        went = nxt & (srv >= SERVER_NEXT_BYTES) & ~alert
        cols["went_on"][cand] = went
        # (read as TLS: the handshake went on, tls_established)
        tls = ((cols["client_proto"][cand] == "tls") | (cols["server_proto"][cand] == "tls")) & ~dns_flow[cand]
        cols["tls_established"][cand[went & tls]] = True
        cols["blind_client_next"][cand] = nxt
        cols["blind_server_next"][cand] = np.where(nxt, srv, 0)
        cols["blind_client_alert"][cand] = np.where(alert, final, 0)
        cols["blind_unacked"][cand] = unacked
        cols["blind_closer"][cand] = who
        cols["blind_wait_s"][cand] = np.where((c2 >= 0) & (when >= c2), (when - c2) / 1e9, -1.0)
        # a connection left open whose client sent its next flight, none of which the server
        # acknowledged nor answered: the wait after it, as for a handshake read whole (a flight
        # dropped on its way; a TLS 1.3 session left idle has its Finished acknowledged)
        hold = cand[nxt & (srv <= 0) & (who == "") & unacked & ~dns_flow[cand]]
        if len(hold):
            waits = _tls_waits(ft, hold)
            cols["tls_wait_from_s"][hold] = waits
            cols["tls_wait_after"][hold[waits >= 0]] = "next flight (its bytes cut by the snaplen; never acknowledged)"
    # TLS 1.3 read whole, the handshake complete on the client's side: a server that then sent
    # an encrypted alert's size (24 bytes; fewer than SERVER_NEXT_BYTES, which no session ticket
    # nor answer is) and closed first, within REFUSAL_WITHIN_NS, refused the client after
    # the handshake (certificate_required, RFC 8446 §4.4.2.4: it asked for a client certificate
    # the agent did not send). A normal server sends its session tickets or its answer, and a
    # health check's close is the client's first. Also when the client closed first, the server
    # closing too, and the client had sent nothing after its flight (no close_notify of its
    # own: a client that reads a fatal alert sends none; who closes first is a race there)
    cand = np.flatnonzero(tcp & cols["tls_established"].astype(bool)
                          & (cols["tls_version"] == "TLS 1.3") & ~cols["payload_cut"].astype(bool)
                          & (cols["proxy_target"] == "") & ~partial)
    if len(cand):
        who, when = _first_close(ft, cand)
        hist = flows["history"].to_numpy(dtype=object)[cand]
        server_closed = _history_has(hist, "fr")
        pick = (who == "server") | ((who == "client") & server_closed)
        cand, when, client_first = cand[pick], when[pick], (who == "client")[pick]
    if len(cand):
        nxt, srv, c2, _ = _went_on(ft, cand, parts=True)
        # (and closed soon after the client's flight: an idle connection's close_notify, a
        # minute later, is a normal close)
        soon = (c2 >= 0) & (when >= c2) & (when - c2 <= REFUSAL_WITHIN_NS)
        refused = nxt & (srv > 0) & (srv < SERVER_NEXT_BYTES) & soon
        # (and looks like one: asked for a certificate, at once, not an answer: _tls13_refusals)
        refused[refused] = _tls13_refusals(ft, cand[refused], c2[refused], client_first[refused])
        cols["tls13_refused"][cand[refused]] = srv[refused]
    # a TLS session read whole that the client completed and then dropped unused, closing right
    # after an alert (curl with OpenSSL checks the certificate's name only after the handshake,
    # then quits: s58 real #2): TLS <= 1.2 with no application data either way, TLS 1.3 whose
    # client sent nothing after its Finished but an alert's size; closed soon after the client's
    # Finished flight (an idle connection's close is not this)
    version = cols["tls_version"]
    # a TLS session read whole that the server reset right after the client's first records past
    # the handshake, having sent nothing after its own handshake flights (its first close a RST,
    # no FIN either way): the server (or something in its name) refused the client after the
    # handshake (_refused_after_request)
    server_app = cols.pop("tls_server_app")
    cand = np.flatnonzero(tcp & cols["tls_established"].astype(bool) & ~cols["payload_cut"].astype(bool)
                          & (cols["proxy_target"] == "") & ~partial
                          & (flows["conn_state"].to_numpy(dtype=object) == "RSTR")
                          & ((version == "TLS 1.3") | (isin_texts(version, ("TLS 1.0", "TLS 1.1", "TLS 1.2"))
                                                       & ~server_app)))
    if len(cand):
        cand = cand[~_history_has(flows["history"].to_numpy(dtype=object)[cand], "Ff")]
    if len(cand):
        cols["refused_after_request"][cand] = _refused_after_request(ft, cand, version[cand] == "TLS 1.3")
    # a TLS session whose server sent its first byte (its answer to the ClientHello) long after
    # the client's last data segment before it (a slow server: _hello_waits)
    cand = np.flatnonzero(tcp & cols["tls_established"].astype(bool) & (cols["proxy_target"] == "") & ~partial
                          & (cols["client_proto"] == "tls"))
    if len(cand):
        cols["hello_wait_s"][cand] = _hello_waits(ft, cand)
    # a responder that stopped taking bytes after data went both ways, its window held at zero
    # until the originator reset the connection or the capture ended (_window_held)
    state = flows["conn_state"].to_numpy(dtype=object)
    cand = np.flatnonzero(tcp & ~partial & ((state == "RSTO") | (state == "S1"))
                          & (flows["orig_bytes"].to_numpy() > 0) & (flows["resp_bytes"].to_numpy() > 0))
    if len(cand):
        cols["window_held_s"][cand] = _window_held(ft, cand)
    cand = np.flatnonzero(tcp & cols["tls_established"].astype(bool) & ~cols["payload_cut"].astype(bool)
                          & (cols["proxy_target"] == "") & ~partial
                          & ((version == "TLS 1.3") | cols.pop("tls_no_app")))
    if len(cand):
        cand = cand[_history_has(flows["history"].to_numpy(dtype=object)[cand], "FR")]
    if len(cand):
        # (TLS 1.3: no more client bytes after the server's first data than a ChangeCipherSpec, a
        # Finished and an alert: most sessions go no further, at the cost of a few array passes)
        v13 = version[cand] == "TLS 1.3"
        cand = cand[~v13 | (_client_bytes_after_server(ft, cand) <= QUIT_BYTES_13)]
    if len(cand):
        _, _, c2, _ = _went_on(ft, cand, parts=True)
        _, when = _first_close(ft, cand)
        soon = (c2 >= 0) & (when >= c2) & (when - c2 <= REFUSAL_WITHIN_NS)
        cand = cand[soon]
    if len(cand):
        cols["tls_client_quit"][cand] = _sessions_quit(ft, cand, version[cand] == "TLS 1.3")
    # a responder that never opened its receive window (a tarpit): by the SYN-ACK and the last
    # packets (no data either way by the byte counts, the originator's packets after its ACK)
    cand = np.flatnonzero(tcp & ~partial
                          & (flows["orig_pkts"].to_numpy() >= 3) & (flows["resp_pkts"].to_numpy() > 0)
                          & (flows["resp_bytes"].to_numpy() == 0))
    if len(cand):
        cols["window_closed"][cand] = _window_closed(ft, cand)
    # SYNs answered by packets that acknowledge something else (no handshake, no data)
    # (no payload either way, by the history: the byte counts read sequence numbers, which the
    # foreign acknowledgement number of such an answer puts anywhere)
    hist_all = flows["history"].to_numpy(dtype=object)
    # SYN-ACKs the originator did not take though they reached its host (Zeek's S1, history Sh:
    # the originator's SYN sent again, its answers never acknowledged)
    cand = np.flatnonzero(tcp & (flows["conn_state"].to_numpy(dtype=object) == "S1")
                          & ~partial & (flows["orig_pkts"].to_numpy() >= 2)
                          & (flows["resp_pkts"].to_numpy() > 0))
    cand = cand[np.fromiter((history_plain(str(h)).lstrip("^") == "Sh" for h in hist_all[cand].tolist()),
                            bool, len(cand))]
    if len(cand):
        cols["synack_not_taken"][cand] = _synack_not_taken(ft, cand)
    opened = isin_texts(flows["conn_state"].to_numpy(dtype=object), ("S1", "SF", "S2", "S3", "REJ"))
    cand = np.flatnonzero(tcp & ~opened & ~partial
                          & (flows["resp_pkts"].to_numpy() > 0))
    # (the history read only for those: a SYN first, no data either way)
    cand = cand[np.fromiter((str(h).startswith("S") and "D" not in str(h) and "d" not in str(h)
                             for h in hist_all[cand].tolist()), bool, len(cand))]
    if len(cand):
        cols["syn_answer"][cand] = _syn_answers(ft, cand)
        # (no connection, no payload: the sequence-number byte counts read the foreign
        # acknowledgement as data acknowledged, 423,241 bytes "sent" by a client that sent none)
        wrong = cand[cols["syn_answer"][cand] != ""]
        if len(wrong):
            flows = flows.copy()
            for k in ("orig_bytes", "resp_bytes"):
                col = flows[k].to_numpy().copy()
                col[wrong] = 0
                flows[k] = col
    # a direction's last bytes sent again and never acknowledged (the responder's: a capture on
    # the server's side of a filter dropping the answers)
    again = resent(ft) & tcp[:, None]
    stall = np.flatnonzero(again[:, 0])
    if len(stall):
        cols["stall_from_s"][stall] = _stalled(ft, stall)
    stall = np.flatnonzero(again[:, 1] & (cols["stall_from_s"] < 0))
    if len(stall):
        cols["resp_stall_from_s"][stall] = _stalled(ft, stall, responder=True)
    # a side's bytes never acknowledged at the end though later ones arrived (not for a flow
    # whose start was not captured: its sequence spaces start at an arbitrary packet); only
    # where a direction's payloads do not add up to its size by sequence numbers (bytes sent
    # again, or missing from the capture: the same in every reading for a direction of at most
    # MAX_SEGMENTS data segments, all of which are kept)
    if ft.seq_bytes is not None:
        uneven = (ft.seq_bytes >= 0) & (ft.byte_sums != ft.seq_bytes)
        cand = np.flatnonzero(tcp & uneven.any(axis=1) & ~partial
                              & (flows["orig_pkts"].to_numpy() > 0) & (flows["resp_pkts"].to_numpy() > 0))
        if len(cand):
            cols["mtu_hint"][cand] = _mtu_holes(ft, cand, uneven[cand])
    # a server's first flight that stopped short (_deep_look): kept where the client closed first
    # without acknowledging more than was captured, no path-MTU hole told already
    lost = np.flatnonzero((cols["flight_cut"] != "") & (cols["mtu_hint"] == ""))
    cols["flight_cut"][np.flatnonzero(cols["mtu_hint"] != "")] = ""
    if len(lost):
        cols["flight_cut"][lost] = _flight_lost(ft, lost, cols["flight_cut"][lost], cols["tls_close"][lost],
                                                cols["tls_close_served"][lost])
    # two different ClientHellos for the same bytes (a DPI-evasion decoy): _hello_copies
    hello = np.flatnonzero(tcp & (cols["client_proto"] == "tls") & (cols["sni"] != ""))
    if len(hello):
        cols["hello_copies"][hello] = _hello_copies(ft, hello)
    return _with_columns(flows, service, cols), answers


#: the hint :func:`_hello_copies` gives (``hello_copies``; classify appends it to the detail)
HELLO_COPIES = ("two different ClientHellos were sent for the same bytes: the first copy (TTL {ttl_a}) names "
                "{sni_a}, a later one (TTL {ttl_b}) {sni_b}; the SNI read is the first copy's, as Zeek "
                "(rexmit_inconsistency) and Wireshark reassemble the stream: a DPI-evasion tool's decoy (a copy "
                "whose small TTL expires before the server) or a forged segment")


def _hello_copies(ft: FlowTable, flows: np.ndarray) -> np.ndarray:
    """Per flow row of ``flows`` (int array, distinct; TCP flows whose client sent a ClientHello
    with an SNI): :data:`HELLO_COPIES` filled in when the client's data segments hold two
    different ClientHellos for the same sequence numbers, naming other SNIs
    (:func:`kscc_traffic.protocols.tls.hello_copies`; break-it 24 F7: a decoy with a small TTL
    and another SNI, then the real one, and the first copy silently won), else '' (object array
    of str). Only flows where two of the client's first ``MAX_SEGMENTS + 1`` data segments
    (capture order, what every analysis keeps) overlap by sequence numbers (the same start sent
    again, or other cuts of the same bytes: break-it s55 tls #5) are read."""
    out = np.full(len(flows), "", object)
    c, pf = ft.packets.cols, ft.pkt_flow
    rows = _tcp_rows_of(ft, flows, (c["payload_len"] > 0) & np.asarray(ft.pkt_from_orig, bool))
    if len(rows) < 2:
        return out
    f = pf[rows].astype(np.int64)
    o = np.lexsort((rows, f))                        # by flow, capture order
    rows, f = rows[o], f[o]
    first = np.r_[True, f[1:] != f[:-1]]
    k = np.arange(len(rows))
    rank = k - np.maximum.accumulate(np.where(first, k, 0))
    keep = rank <= MAX_SEGMENTS
    rows, f = rows[keep], f[keep]
    # (segments overlapping an earlier one of the flow, by sequence numbers from its first
    # segment's: the same start sent again, or another cut of the same bytes, break-it s55 tls #5;
    # each flow's values lifted by its number so that one running maximum serves all flows)
    seq = c["seq"][rows].astype(np.int64)
    head = np.r_[True, f[1:] != f[:-1]]
    base = seq[np.flatnonzero(head)][np.cumsum(head) - 1]
    rel = (seq - base) & 0xFFFFFFFF
    lift = f << 34
    pair = np.lexsort((rel, f))
    lo = lift[pair] + rel[pair]
    hi = lo + c["payload_len"][rows][pair].astype(np.int64)
    reach = np.maximum.accumulate(hi)
    over = np.r_[False, lo[1:] < reach[:-1]]
    cand = np.unique(f[pair][over])
    if not len(cand):
        return out
    where = {int(x): i for i, x in enumerate(flows.tolist())}
    content = content_rows(c, rows)
    ttl = c["ttl"] if "ttl" in c else None
    pkts = ft.packets
    for fl in cand.tolist():
        rs = rows[(f == fl) & content]
        if len(rs) < 2:
            continue
        base = int(c["seq"][rs[0]])
        segs = []
        for r in rs.tolist():
            off = (int(c["seq"][r]) - base) & 0xFFFFFFFF
            if off < 1 << 31:
                segs.append((off, pkts.payload(r), int(ttl[r]) if ttl is not None else -1))
        found = tls.hello_copies(segs)
        if found is not None:
            sni_a, ttl_a, sni_b, ttl_b = found
            out[where[fl]] = HELLO_COPIES.format(sni_a=sni_a, ttl_a=ttl_a if ttl_a >= 0 else "unknown",
                                                 sni_b=sni_b, ttl_b=ttl_b if ttl_b >= 0 else "unknown")
    return out


def _tcp_rows_by_flow(ft: FlowTable, flows: np.ndarray, also: np.ndarray | None = None) -> dict[int, list[int]]:
    """The rows of :func:`_tcp_rows_of` (the TCP packets of ``flows``, and where ``also``), as
    flow number -> its rows in time order (capture order within a time): for the few flows a
    rule walks packet by packet."""
    c, pf = ft.packets.cols, ft.pkt_flow
    rows = _tcp_rows_of(ft, flows, also)
    per: dict[int, list[int]] = {}
    for r in rows[np.lexsort((rows, c["ts_ns"][rows], pf[rows]))].tolist():
        per.setdefault(int(pf[r]), []).append(r)
    return per


def _client_bytes_after_server(ft: FlowTable, flows: np.ndarray) -> np.ndarray:
    """Per flow row of ``flows`` (int array, distinct; TCP flows): the payload bytes of the
    client's TCP segments captured after the server's first data segment (retransmissions
    counted again; 0 where the server sent none): int64 array like ``flows``."""
    c, pf = ft.packets.cols, ft.pkt_flow
    rows = _tcp_rows_of(ft, flows, c["payload_len"] > 0)
    out = np.zeros(len(flows), np.int64)
    if not len(rows):
        return out
    pos = np.full(len(ft.flows) + 1, -1, np.int64)
    pos[flows] = np.arange(len(flows))
    fl = pos[pf[rows]]
    orig = np.asarray(ft.pkt_from_orig, bool)[rows]
    ts = c["ts_ns"][rows]
    s1 = np.full(len(flows), np.iinfo(np.int64).max, np.int64)
    np.minimum.at(s1, fl[~orig], ts[~orig])
    m = orig & (ts > s1[fl])
    np.add.at(out, fl[m], c["payload_len"][rows][m].astype(np.int64))
    return out


def _client_stream(ft: FlowTable, rs: list[int], isn: int) -> tuple[bytes, list[tuple[int, int]], bool]:
    """The client's stream of one TCP flow (``rs``: its TCP packet rows in time order; ``isn``:
    the sequence number of its first byte) from its first :data:`~kscc_traffic.streams.MAX_SEGMENTS`
    data segments, followed in sequence order: its bytes, ``(offset, first sent ns)`` per segment,
    and whether it was followed to the end of those segments (no gap, nothing cut) and they were
    all the client's data segments."""
    c, buf = ft.packets.cols, ft.packets.buf
    orig = ft.pkt_from_orig
    raw, spans, expect = b"", [], isn
    data = [r for r in rs if orig[r] and int(c["payload_len"][r]) > 0]
    whole = len(data) <= MAX_SEGMENTS
    for r in data[:MAX_SEGMENTS]:
        seq, cap, plen = int(c["seq"][r]) & 0xFFFFFFFF, int(c["pl_cap"][r]), int(c["payload_len"][r])
        if seq != expect:
            if (seq - expect) & 0xFFFFFFFF < 0x80000000:
                return raw, spans, False    # (a gap: the rest cannot be followed)
            continue                        # (bytes already read)
        if cap < plen or int(c["pl_off"][r]) < 0:
            return raw, spans, False
        o = int(c["pl_off"][r])
        spans.append((len(raw), int(c["ts_ns"][r])))
        raw += bytes(buf[o:o + cap])
        expect = (expect + plen) & 0xFFFFFFFF
    return raw, spans, whole


def _sessions_quit(ft: FlowTable, flows: np.ndarray, v13: np.ndarray) -> np.ndarray:
    """Per flow row of ``flows`` (int array, distinct; TCP flows read whole whose TLS handshake
    completed and that closed soon after the client's Finished flight; ``v13``, bool array like
    it: TLS 1.3, else TLS <= 1.2 with no application-data record either way): the bytes (header
    included) of the encrypted alert record with which the client dropped the session right after
    its handshake, unused, else 0 (int64 array). That is the client's last record, sent within
    :data:`REFUSAL_FLOOR_NS` of its Finished, and:

    - TLS <= 1.2: a type-21 record after its ChangeCipherSpec and Finished (an alert, encrypted);
    - TLS 1.3: the second and last encrypted record it sent after the server's first data, of an
      alert's length (:data:`ALERT_SEALED`), the first being its Finished (no request between);

    and the client closed the connection too (a FIN or RST of its own), the first close coming
    within :data:`REFUSAL_WITHIN_NS` of the alert; in TLS 1.3, where that alert's size is also a
    close_notify's, the client aborted: it reset the connection within as long (closing with the
    server's tickets or alert unread), while a health check that sends its close_notify and closes
    gracefully (a FIN) is left alone. What curl with OpenSSL (and programs built like it) does on a
    certificate for another name: it checks the name only after the handshake. A health check
    that resets at once looks the same (classify hedges).
    Reads the client's first :data:`~kscc_traffic.streams.MAX_SEGMENTS` data segments (all of
    them: a client that sent more gives 0), which a chunked or live analysis keeps."""
    out = np.zeros(len(flows), np.int64)
    c = ft.packets.cols
    orig = np.asarray(ft.pkt_from_orig, bool)
    where = {int(x): k for k, x in enumerate(flows.tolist())}
    for fl, rs in _tcp_rows_by_flow(ft, flows).items():
        k = where[fl]
        flags = [int(c["tcp_flags"][r]) for r in rs]
        syn = next((i for i, r in enumerate(rs) if orig[r] and (flags[i] & (SYN | ACK)) == SYN), None)
        s_data = [r for r in rs if not orig[r] and int(c["payload_len"][r]) > 0]
        closes = [int(c["ts_ns"][r]) for i, r in enumerate(rs) if flags[i] & (FIN | RST)]
        if syn is None or not s_data or not closes \
                or not any(orig[r] and flags[i] & (FIN | RST) for i, r in enumerate(rs)):
            continue
        raw, spans, whole = _client_stream(ft, rs, (int(c["seq"][rs[syn]]) + 1) & 0xFFFFFFFF)
        if not whole or not spans:
            continue
        s1 = int(c["ts_ns"][s_data[0]])

        def sent_at(off: int) -> int:
            return next(t for o, t in reversed(spans) if o <= off)

        recs, p = [], 0         # (content type, length, first sent) of each whole record
        for ct, _, body, whole in tls._records(raw):
            if not whole:
                break
            recs.append((ct, len(body), sent_at(p)))
            p += 5 + len(body)
        if p != len(raw) or not recs:
            continue                        # (not records to the end: not judged)
        last_type, last_len, last_t = recs[-1]
        if v13[k]:
            sealed = [(n, t) for ct, n, t in recs if ct == 23 and t > s1]
            if len(sealed) != 2 or last_type != 23 or last_len != ALERT_SEALED or sealed[0][0] == ALERT_SEALED:
                continue
            finished_t = sealed[0][1]
        else:
            ccs = [i for i, (ct, _, _) in enumerate(recs) if ct == 20]
            if not ccs or last_type != 21 or [ct for ct, _, _ in recs[ccs[-1] + 1:]] != [22, 21]:
                continue
            finished_t = recs[ccs[-1] + 1][2]
        if last_t - finished_t > REFUSAL_FLOOR_NS or min(closes) < last_t or min(closes) - last_t > REFUSAL_WITHIN_NS:
            continue
        if v13[k] and not any(orig[r] and flags[i] & RST and 0 <= int(c["ts_ns"][r]) - last_t <= REFUSAL_WITHIN_NS
                              for i, r in enumerate(rs)):
            continue                        # (TLS 1.3: closed gracefully, a FIN: a health check's close_notify)
        out[k] = 5 + last_len
    return out


#: how soon (ns) after the client's first TCP segment past the server's handshake flights the
#: server's reset must come for :func:`_refused_after_request` to count it as the answer to it (a
#: server refusing the request at once; an idle connection's reset comes seconds to minutes later)
REQUEST_RESET_NS = 10**9


def _refused_after_request(ft: FlowTable, flows: np.ndarray, v13: np.ndarray) -> np.ndarray:
    """Per flow row of ``flows`` (int array, distinct; TCP flows read whole whose TLS handshake
    completed, the responder's reset their first close (``RSTR``, no FIN either way); ``v13``,
    bool array like it: TLS 1.3, else TLS <= 1.2 whose server sent no application-data record):
    whether the server reset the connection within :data:`REQUEST_RESET_NS` of the client's first
    data segment sent after the server's last one (its first request past the handshake; in TLS
    1.3 its Finished flight, which may carry the request), having sent nothing after it (bool
    array like ``flows``): the data segments in time order make 3 runs of one side's (the
    ClientHello, the server's flight, the client's next one: TLS 1.3, a resumed TLS 1.2 session)
    or 5 (a full TLS <= 1.2 handshake, then the request), the client's first and last; a session
    that went on past its first request has more. Flows with more than
    :data:`~kscc_traffic.streams.MAX_SEGMENTS` data segments either way give False (a chunked or live analysis keeps no more, so all give
    the same answer). What a server that refuses the client at the application level (another
    workspace or region, the client's certificate) does, and also an application-aware firewall
    resetting in its name with its TTL (classify hedges; one with another TTL is told by
    :func:`_reset_hints`)."""
    out = np.zeros(len(flows), bool)
    c = ft.packets.cols
    orig = np.asarray(ft.pkt_from_orig, bool)
    where = {int(x): k for k, x in enumerate(flows.tolist())}
    for fl, rs in _tcp_rows_by_flow(ft, flows).items():
        k = where[fl]
        data = [(bool(orig[r]), int(c["ts_ns"][r])) for r in rs if int(c["payload_len"][r]) > 0]
        resets = [int(c["ts_ns"][r]) for r in rs if not orig[r] and int(c["tcp_flags"][r]) & RST]
        if not resets or sum(x for x, _ in data) > MAX_SEGMENTS or sum(not x for x, _ in data) > MAX_SEGMENTS:
            continue
        # (the turns of the exchange, each side's runs of data segments: the ClientHello, the
        # server's flight, the client's (TLS 1.3: its Finished and request), and in a full TLS
        # <= 1.2 handshake the server's ChangeCipherSpec/Finished and the client's request; a
        # session that went on has more)
        runs = [i for i, (x, _) in enumerate(data) if i == 0 or x != data[i - 1][0]]
        if len(runs) not in ((3,) if v13[k] else (3, 5)) or not data[0][0] or not data[-1][0]:
            continue
        out[k] = 0 <= resets[0] - data[runs[-1]][1] <= REQUEST_RESET_NS
    return out


def _hello_waits(ft: FlowTable, flows: np.ndarray) -> np.ndarray:
    """Per flow row of ``flows`` (int array, distinct; TCP flows whose TLS handshake completed):
    the seconds from the client's last data segment sent before the server's first data segment
    to that segment (float array like ``flows``; -1 where the server sent none, or the client
    none before it, or more than :data:`~kscc_traffic.streams.MAX_SEGMENTS`): how long the server
    took to answer the ClientHello. From the client's last copy of it, so a ClientHello sent
    again after a loss (the server answering its retransmission) is no slow server. Reads the
    first data segments of each direction, which a chunked or live analysis keeps, so all
    readings agree; a session's later idle gaps do not count."""
    out = np.full(len(flows), -1.0)
    v = _seq_view(ft, flows) if len(flows) else None
    if v is None:
        return out
    n_f = len(ft.flows)
    big = np.iinfo(np.int64).max
    data = v.plen > 0
    srv = data & ~v.fo
    t_s = np.full(n_f, big, np.int64)               # the server's first data segment
    np.minimum.at(t_s, v.f[srv], v.ts[srv])
    before = data & v.fo & (v.ts <= t_s[v.f])
    t_c = np.full(n_f, -1, np.int64)                # the client's last one before it
    np.maximum.at(t_c, v.f[before], v.ts[before])
    n_c = np.bincount(v.f[before], minlength=n_f)
    fl = np.asarray(flows, np.int64)
    ok = (t_s[fl] < big) & (t_c[fl] >= 0) & (n_c[fl] <= MAX_SEGMENTS)
    out[ok] = (t_s[fl][ok] - t_c[fl][ok]) / 1e9
    return out


def _window_held(ft: FlowTable, flows: np.ndarray) -> np.ndarray:
    """Per flow row of ``flows`` (int array, distinct; TCP flows with data both ways): the seconds
    (float array like ``flows``; -1 where not) from the responder's first packet reaching its
    furthest acknowledgement and sequence end (when it last took or sent a new byte) to the
    flow's last packet, when the responder's last packet (not a FIN or RST) advertises a zero
    receive window: it stopped reading and held its window closed (RFC 9293 §3.8.6.1; Zeek's
    history has a ``W``) up to the originator's reset or the capture's end (-1 also where the
    window field was not captured). Reads the packets a chunked or live analysis keeps (each direction's
    first and last packets, the first packet reaching each furthest sequence end and
    acknowledgement), so all readings agree."""
    out = np.full(len(flows), -1.0)
    v = _seq_view(ft, flows) if len(flows) else None
    if v is None:
        return out
    n_f = len(ft.flows)
    f, fo = v.f, v.fo
    idx = np.arange(len(f))
    last_r = np.full(n_f, -1, np.int64)             # the responder's last packet
    np.maximum.at(last_r, f[~fo], idx[~fo])
    last = np.full(n_f, -1, np.int64)               # the flow's last packet
    np.maximum.at(last, f, idx)
    top = np.maximum(v.acked, v.end - ((v.flags & FIN) != 0))
    took = np.full(n_f, -1, np.int64)               # the responder's furthest acknowledgement, data end
    np.maximum.at(took, f[~fo], top[~fo])
    at = ~fo & (top == took[f]) & (took[f] >= 0)
    since = np.full(n_f, len(f), np.int64)          # the first responder packet reaching it
    np.minimum.at(since, f[at], idx[at])
    fl = np.asarray(flows, np.int64)
    lr, ls, sn = last_r[fl], last[fl], since[fl]
    ok = (lr >= 0) & (ls >= 0) & (sn < len(f))
    lr, ls, sn = np.maximum(lr, 0), np.maximum(ls, 0), np.minimum(sn, max(len(f) - 1, 0))
    ok &= (v.win[lr] == 0) & ((v.flags[lr] & (FIN | RST | SYN)) == 0)
    out[ok] = (v.ts[ls][ok] - v.ts[sn][ok]) / 1e9
    return out


def _tls13_refusals(ft: FlowTable, flows: np.ndarray, finished_ns: np.ndarray,
                    client_first: np.ndarray | None = None) -> np.ndarray:
    """Per flow row of ``flows`` (int array, distinct; TCP flows read whole, TLS 1.3 established,
    whose server sent fewer than :data:`SERVER_NEXT_BYTES` new bytes after the client's Finished
    flight, first sent at ``finished_ns`` (epoch ns, int array), and closed first): whether
    that looks like the server refusing the client after the handshake (certificate_required,
    bad_certificate…: bool array), that is all of:

    - the server asked for a client certificate: the client's first encrypted record sent after
      the server's first data is not a Finished alone (:data:`LONE_FINISHED_LENGTHS`), so it
      holds the client's Certificate (empty or not). Without that request a server has nothing
      of the client's to refuse after the handshake: its 24 bytes are a close_notify (a server
      ending a connection at once, or a 2-byte answer);
    - the server's first data after ``finished_ns`` came within max(:data:`REFUSAL_RTTS` x the
      round trip, :data:`REFUSAL_FLOOR_NS`) of it: a refusal answers the Finished. The round
      trip is the TCP handshake's, from the originator's first SYN to its first packet after the
      first SYN-ACK (a capture at either end sees a whole round trip there); 0 when not captured
      (the floor applies);
    - it does not acknowledge client bytes first sent a round trip or more after the Finished
      flight (and at least :data:`REFUSAL_LATE_NS` after it: the time a server may take to check
      the client's certificate): a refusal sent on reading the Finished cannot have read those
      (the client's data sent with its Finished can be, and still be refused), so it answered them.

    ``client_first`` (bool array; None: all False): the flows whose client closed first (the
    server closing too); those also need the client to have sent nothing after the server's
    bytes and its last record not to be an alert's size (19 bytes: its own close_notify, the
    graceful close of a health check): a client that reads a fatal alert closes without one.

    Reads the client's first :data:`~kscc_traffic.streams.MAX_SEGMENTS` data segments, the
    server's first after the Finished flight and the flow's first packets (SYN, SYN-ACK, the
    ACK after it), all of which a chunked or live analysis keeps. A client stream that cannot be
    followed to that record (a segment missing) gives False."""
    out = np.zeros(len(flows), bool)
    if not len(flows):
        return out
    c = ft.packets.cols
    buf = ft.packets.buf
    orig = np.asarray(ft.pkt_from_orig, bool)
    where = {int(x): k for k, x in enumerate(flows.tolist())}
    for fl, rs in _tcp_rows_by_flow(ft, flows).items():
        k = where[fl]
        fin_ns = int(finished_ns[k])
        flags = [int(c["tcp_flags"][r]) for r in rs]
        ts = [int(c["ts_ns"][r]) for r in rs]
        syn = next((i for i, r in enumerate(rs) if orig[r] and (flags[i] & (SYN | ACK)) == SYN), None)
        synack = next((i for i, r in enumerate(rs) if not orig[r] and (flags[i] & (SYN | ACK)) == (SYN | ACK)), None)
        if syn is None:
            continue
        after = next((i for i, r in enumerate(rs) if synack is not None and i > synack and orig[r]
                      and (flags[i] & ACK) and not (flags[i] & SYN)), None)
        rtt = ts[after] - ts[syn] if after is not None and ts[after] >= ts[syn] else 0
        isn = (int(c["seq"][rs[syn]]) + 1) & 0xFFFFFFFF
        # the server's first data: its flight's time; its first data after the Finished flight
        s_data = [i for i, r in enumerate(rs) if not orig[r] and int(c["payload_len"][r]) > 0]
        if not s_data:
            continue
        s1 = ts[s_data[0]]
        alert = next((i for i in s_data if ts[i] > fin_ns), None)
        if alert is None or ts[alert] - fin_ns > max(REFUSAL_RTTS * rtt, REFUSAL_FLOOR_NS):
            continue
        # the client's stream, followed in sequence order: (offset, first sent) per segment
        raw, spans, expect = b"", [], isn
        c_data = [i for i, r in enumerate(rs) if orig[r] and int(c["payload_len"][r]) > 0][:MAX_SEGMENTS]
        for i in c_data:
            r = rs[i]
            seq, cap, plen = int(c["seq"][r]) & 0xFFFFFFFF, int(c["pl_cap"][r]), int(c["payload_len"][r])
            if seq != expect:
                if (seq - expect) & 0xFFFFFFFF < 0x80000000:
                    break               # (a gap: the rest cannot be followed)
                continue                # (bytes already read)
            if cap < plen or int(c["pl_off"][r]) < 0:
                break
            o = int(c["pl_off"][r])
            spans.append((len(raw), ts[i]))
            raw += bytes(buf[o:o + cap])
            expect = (expect + plen) & 0xFFFFFFFF

        def sent_at(off: int) -> int:
            return next(t for o, t in reversed(spans) if o <= off)

        # the client's first encrypted record sent after the server's first data
        p, first_sealed = 0, None
        while p + 5 <= len(raw):
            n = int.from_bytes(raw[p + 3:p + 5], "big")
            if raw[p] == 23 and sent_at(p) > s1:
                first_sealed = n
                break
            p += 5 + n
        if first_sealed is None or first_sealed in LONE_FINISHED_LENGTHS:
            continue
        # client bytes first sent a round trip or more after its Finished flight, acknowledged
        late = [o for o, t in spans if t - fin_ns >= max(rtt, REFUSAL_LATE_NS) and t < ts[alert]] if rtt > 0 else []
        acked = (int(c["ack"][rs[alert]]) - isn) & 0xFFFFFFFF
        if late and acked < 0x80000000 and acked > late[0]:
            continue
        if client_first is not None and client_first[k]:
            last, q = -1, 0
            while q + 5 <= len(raw):
                last = int.from_bytes(raw[q + 3:q + 5], "big")
                q += 5 + last
            if last == ALERT_SEALED or any(t > ts[alert] for _, t in spans):
                continue
        out[k] = True
    return out


def _hello_split(ft: FlowTable, flows: np.ndarray) -> np.ndarray:
    """Per flow row of ``flows`` (int array, distinct; TCP flows whose client spoke TLS): when
    the client's first data segment starts a TLS handshake record longer than itself, ``"<n>
    bytes in <k> segments"`` (the record's bytes, header included; the client's data segments
    starting before its end, counted once per sequence number; "more than <k>" when the
    client's first ``MAX_SEGMENTS + 1`` data segments, all that are read, end before it), else
    ''. A ClientHello that large
    (a post-quantum key share, X25519MLKEM768, adds 1,216 bytes) is what some middleboxes fail
    on. Reads the client's first data segments, which a chunked or live analysis keeps.

    When the server, having sent no data, acknowledged some of the record's segments but never
    its rest, which the client sent again (newcomer 29 F6), the text goes on with
    :data:`HELLO_UNACKED` and what that tells: something on the path drops the later segment, an
    MTU/MSS problem when it is larger than every one delivered (the server's furthest
    acknowledgement and its first data segment are kept by every analysis)."""
    out = np.full(len(flows), "", object)
    c = ft.packets.cols
    where = {int(x): k for k, x in enumerate(flows.tolist())}
    buf = ft.packets.buf
    also = (c["payload_len"] > 0) & np.asarray(ft.pkt_from_orig, bool)
    # (the server's packets acknowledging something, and whether it sent data)
    back = ~np.asarray(ft.pkt_from_orig, bool) & ((c["tcp_flags"] & ACK) != 0)
    acks: dict[int, list[int]] = {}
    talked: set[int] = set()
    for fl, rs in _tcp_rows_by_flow(ft, flows, back).items():
        acks[fl] = [int(c["ack"][r]) for r in rs]       # (relative below, modulo 2**32)
        if any(int(c["payload_len"][r]) > 0 for r in rs):
            talked.add(fl)
    for fl, rs in _tcp_rows_by_flow(ft, flows, also).items():
        r0 = rs[0]
        o, cap, plen = int(c["pl_off"][r0]), int(c["pl_cap"][r0]), int(c["payload_len"][r0])
        if o < 0 or cap < 1 or buf[o] != 0x16:
            continue
        start = int(c["seq"][r0])
        rs = rs[:MAX_SEGMENTS + 1]                  # (what every analysis keeps)
        rel = [(int(c["seq"][r]) - start) & 0xFFFFFFFF for r in rs]
        # the record header's 5 bytes, from the segments that hold them (a first segment of 1-4
        # bytes: the header itself split, as DPI-evasion tools split a ClientHello at byte 1 or 2)
        head = _stream_head(buf, c, rs, rel, 5)
        if head is None:
            continue
        size = 5 + int.from_bytes(head[3:5], "big")
        if size <= plen:
            continue
        k = sum(1 for x in set(rel) if x < size)
        reach = max(x + int(c["payload_len"][r]) for x, r in zip(rel, rs) if x < 1 << 31)
        if k >= 2:
            more = "more than " if len(rs) > MAX_SEGMENTS and reach < size else ""
            pq = _pq_share(buf, [(x, int(c["pl_off"][r]), int(c["pl_cap"][r])) for x, r in zip(rel, rs)], size)
            out[where[fl]] = f"{pq}{size:,} bytes in {more}{k} segments" + _unacked_rest(
                size, rel, [int(c["payload_len"][r]) for r in rs],
                max((x for x in ((a - start) & 0xFFFFFFFF for a in acks.get(fl, ())) if x < 1 << 31), default=-1)
                if fl not in talked else -1)
    return out


def _stream_head(buf, c: dict, rs: list[int], rel: list[int], n: int) -> bytes | None:
    """The first ``n`` bytes (bytes) of a direction's stream from its data segments ``rs`` (packet
    rows) at ``rel`` (their offsets in the stream, relative sequence numbers), each byte from any
    segment holding it captured; None when one of them is not captured."""
    got: list[int | None] = [None] * n
    for x, r in zip(rel, rs):
        if x >= n:
            continue
        o, cap = int(c["pl_off"][r]), int(c["pl_cap"][r])
        if o < 0:
            continue
        for k in range(x, min(n, x + cap)):
            if got[k] is None:
                got[k] = int(buf[o + k - x])
    return None if any(b is None for b in got) else bytes(got)


#: post-quantum (hybrid) key exchange groups a ClientHello's key share may carry (IANA TLS
#: Supported Groups): its key share is what makes a ClientHello larger than one segment
PQ_GROUPS = {0x11EC: "X25519MLKEM768", 0x11EB: "SecP256r1MLKEM768", 0x11ED: "SecP384r1MLKEM1024",
             0x6399: "X25519Kyber768Draft00", 0x0200: "MLKEM512", 0x0201: "MLKEM768", 0x0202: "MLKEM1024"}
#: how ``hello_split`` starts when the ClientHello's key share carries a group of :data:`PQ_GROUPS`:
#: ``"pq:<group name>:"`` (classify reads it off, :func:`.classify.split_text`)
HELLO_PQ = "pq:"


def _pq_share(buf: np.ndarray, segs: list[tuple[int, int, int]], size: int) -> str:
    """:data:`HELLO_PQ` + the group's name + ":" when the ClientHello record of ``size`` bytes,
    from its segments ``segs`` ((offset from its first byte, payload offset in ``buf``, bytes
    captured)), has a key share of a group of :data:`PQ_GROUPS` in its captured start (the bytes
    up to the first one not captured); else '' (none, or the key share not captured whole)."""
    data = bytearray(size)
    have = np.zeros(size, bool)
    for rel, off, cap in segs:
        if off < 0 or rel >= size or cap <= 0:
            continue
        n = min(cap, size - rel)
        data[rel:rel + n] = bytes(buf[off:off + n])
        have[rel:rel + n] = True
    gap = np.flatnonzero(~have)
    ch = tls.parse_client_hello(bytes(data[:int(gap[0]) if len(gap) else size]))
    found = [PQ_GROUPS[g] for g in (ch.key_share_groups if ch is not None else []) if g in PQ_GROUPS]
    return f"{HELLO_PQ}{found[0]}:" if found else ""


#: what follows ``"<n> bytes in <k> segments"`` (``hello_split``) when the server acknowledged only
#: the first part of a split ClientHello (:func:`_hello_split`; classify words the detail on it)
HELLO_UNACKED = ", of which the server acknowledged only the first "


#: the TCP payload every path carries in one segment (bytes): RFC 9293 §3.7.1's default send MSS
#: (576-byte IPv4 datagrams; IPv6's 1,280 carry more): a lost segment no larger is no MTU problem
MIN_MSS = 536


def _unacked_rest(size: int, rel: list[int], plen: list[int], acked: int) -> str:
    """The rest of ``hello_split`` for a ClientHello record of ``size`` bytes sent in segments at
    ``rel`` (sequence offsets from its first byte) of ``plen`` bytes, of which the server
    acknowledged up to ``acked`` (-1: unknown, or the server sent data): when 0 < ``acked`` <
    ``size`` and the segment at ``acked`` was sent again, :data:`HELLO_UNACKED` and what it tells;
    else ''."""
    if not 0 < acked < size or sum(1 for x in rel if x == acked) < 2:
        return ""
    lost = max(n for x, n in zip(rel, plen) if x >= acked and x < size)
    got = max((n for x, n in zip(rel, plen) if x + n <= acked), default=0)
    why = (f"the later, larger segment ({lost:,} bytes vs {got:,} delivered): an MTU/MSS problem (a tunnel or "
           "PPPoE link whose ICMP 'fragmentation needed' is filtered), or a firewall failing on it"
           if lost > max(got, MIN_MSS) else
           f"the later segment: a firewall or proxy failing on a ClientHello split across segments (that segment, "
           f"{lost:,} bytes, is no larger than the {got:,} delivered: no MTU problem)" if lost <= got else
           f"the later segment: a firewall or proxy failing on a ClientHello split across segments (that segment, "
           f"{lost:,} bytes, is no larger than the {MIN_MSS} bytes every path carries: no MTU problem)")
    return (f"{HELLO_UNACKED}{acked:,} byte{'s' if acked != 1 else ''}; the rest ({size - acked:,} bytes), sent "
            f"again, was never acknowledged: something on the path drops {why}")


def _syn_isns(ft: FlowTable) -> np.ndarray:
    """Per flow of ``ft`` (int64 array, len(ft.flows)): the sequence number (32-bit value) of
    the originator's first SYN without ACK among the flow's packets (in their row order), -1
    for a flow without one (not TCP, its SYN not captured). A chunked or live analysis keeps a
    flow's first packets, so its SYN is there. Packets outside every flow (``pkt_flow`` -1) are
    not read."""
    out = np.full(len(ft.flows), -1, np.int64)
    c, pf = ft.packets.cols, ft.pkt_flow
    if not len(pf):
        return out
    rows = np.flatnonzero((pf >= 0) & (c["proto"] == TCP) & ((c["tcp_flags"] & (SYN | ACK)) == SYN)
                          & np.asarray(ft.pkt_from_orig, bool))
    if len(rows):
        fl, first = first_rows(pf.astype(np.int64, copy=False), rows)
        out[fl] = c["seq"][first].astype(np.int64) & 0xFFFFFFFF
    return out


def _syn_answers(ft: FlowTable, flows: np.ndarray) -> np.ndarray:
    """Per flow row of ``flows`` (int array, distinct; TCP flows with an originator's SYN and no
    data): 'ack' when the responder's first packet after each of the originator's SYNs (those
    followed by one) is an ACK without SYN that does not acknowledge that SYN (an RFC 5961 §4
    challenge ACK: the server, or a firewall or NAT on the way, still holds an old connection on
    this address and port), 'synack' when such a first packet is a SYN-ACK acknowledging
    another number than the SYN's (some of them may be 'ack'); '' otherwise (a SYN acknowledged,
    a reset, no answer). A SYN carrying data (TCP Fast Open, RFC 7413 §4.2: a ClientHello in the
    SYN) is acknowledged by its sequence number + 1 (the data refused) or + 1 + its payload
    length (the data accepted): either is its own answer. Reads each SYN and the responder's
    first packet after it, which a chunked or live analysis keeps (object array of str)."""
    out = np.full(len(flows), "", object)
    c = ft.packets.cols
    where = {int(x): k for k, x in enumerate(flows.tolist())}
    flags, seq, ack, orig = c["tcp_flags"], c["seq"], c["ack"], ft.pkt_from_orig
    plen = c["payload_len"]
    for fl, rs in _tcp_rows_by_flow(ft, flows).items():
        kinds = set()
        syn_seq = None
        for r in rs:
            fg = int(flags[r])
            if orig[r]:
                if fg & SYN and not fg & ACK:
                    syn_seq = (int(seq[r]) + 1) & 0xFFFFFFFF
                    syn_end = (syn_seq + max(int(plen[r]), 0)) & 0xFFFFFFFF   # (TFO: its data accepted)
                continue
            if syn_seq is None:
                continue
            if fg & RST or not fg & ACK or (int(ack[r]) & 0xFFFFFFFF) in (syn_seq, syn_end):
                kinds = {"no"}          # (reset, or the SYN acknowledged: not this case)
                break
            kinds.add("synack" if fg & SYN else "ack")
            syn_seq = None              # (only the first packet after each SYN)
        if kinds and "no" not in kinds:
            out[where[fl]] = "synack" if "synack" in kinds else "ack"
    return out


#: TTLs (IPv6: hop limits) a host's stack sends its packets with (Linux, macOS 64; Windows 128;
#: some network stacks 255): a packet captured with one of them left its sender's host and was
#: not routed yet (:func:`_synack_not_taken`)
INITIAL_TTLS = (64, 128, 255)


def _synack_not_taken(ft: FlowTable, flows: np.ndarray) -> np.ndarray:
    """Per flow row of ``flows`` (int array, distinct; TCP flows, Zeek's S1 with history ``Sh``:
    SYNs and SYN-ACKs only): "TTL 64" (IPv6: "hop limit 64") when the originator's first SYN
    carries an initial TTL (:data:`INITIAL_TTLS`: as sent, no router has decremented it, so the
    capture was taken on the originator's host or its own network segment) and a SYN-ACK that
    acknowledges the SYN (sequence number + 1, or + 1 + its payload length: TCP Fast Open) came
    before a later SYN of the originator (its SYN sent again though the answer was there: the
    originator's host did not take it: its own firewall, security software or filter driver);
    '' otherwise, or where the TTL is not known. Reads each SYN, the responder's first packet
    after it and the flow's first packets, which a chunked or live analysis keeps (object array
    of str)."""
    out = np.full(len(flows), "", object)
    c = ft.packets.cols
    if "ttl" not in c:
        return out
    where = {int(x): k for k, x in enumerate(flows.tolist())}
    flags, seq, ack, orig, ttl = c["tcp_flags"], c["seq"], c["ack"], ft.pkt_from_orig, c["ttl"]
    plen = c["payload_len"]
    for fl, rs in _tcp_rows_by_flow(ft, flows).items():
        first = next((r for r in rs if orig[r] and (int(flags[r]) & (SYN | ACK)) == SYN), None)
        if first is None or int(ttl[first]) not in INITIAL_TTLS:
            continue
        answered = False
        for r in rs:
            fg = int(flags[r])
            if orig[r]:
                if answered and (fg & (SYN | ACK)) == SYN:
                    field_name = "hop limit" if int(c["ipver"][first]) == 6 else "TTL"
                    out[where[fl]] = f"{field_name} {int(ttl[first])}"
                    break
                continue
            if (fg & (SYN | ACK | RST)) == (SYN | ACK):
                syn_seq = int(seq[first]) + 1
                answered = (int(ack[r]) & 0xFFFFFFFF) in (syn_seq & 0xFFFFFFFF,
                                                           (syn_seq + max(int(plen[first]), 0)) & 0xFFFFFFFF) \
                    or answered
    return out


def _stalled(ft: FlowTable, flows: np.ndarray, responder: bool = False) -> np.ndarray:
    """Per flow row of ``flows`` (int array, distinct; TCP flows whose originator sent bytes
    again): seconds from the flow's first packet to the first sending of the originator's last
    new byte when the responder acknowledged none of it (its furthest acknowledgement stops short
    of the originator's furthest sequence end, FIN included) and sent no new byte after it
    (:func:`_tls_waits`), and the originator's last data packet sent unacknowledged bytes
    again: its data ends no further than an earlier data packet's (a retransmission, no new
    byte) and past the responder's furthest acknowledgement (so past the one it had sent by then: the
    retransmissions stayed at the end, without progress), or a FIN without data after it was
    sent again so (a first FIN after the data, an application closing the connection, is no new
    byte); -1 where not. A spurious retransmission of bytes acknowledged already (Wireshark's
    ``tcp.analysis.spurious_retransmission``: a late ACK, an RTO fired too soon) followed by
    other packets, or new bytes sent last, are no stall. A connection a firewall dropped in the
    middle (an idle session timed out, a TLS 1.3 client's Finished never delivered) looks so;
    classify calls it stalled after :data:`TLS_SILENCE_S`. Reads the packets a chunked or live
    analysis keeps (the first packet of each direction reaching its furthest sequence end and
    acknowledgement, the first reaching its furthest data end, its last data packet and last FIN
    without data).
    ``responder``: the same with the roles swapped (the responder's last bytes unacknowledged).

    Not where the silent side's last packet is a bare acknowledgement at its own furthest
    sequence end (no data, no SYN/FIN/RST; not a keep-alive, which is one byte behind) sent in the
    last three quarters of the time from the first sending of those bytes to the sender's last
    packet (*late*: an ACK of earlier data still on its way when the bytes were first sent comes
    at the start of that time) that advertises a zero window or comes after the silent side
    acknowledged something new late (its furthest acknowledgement first reached then): it went on
    answering what it was sent, only without taking the bytes (a receive window closed, its ACKs
    to zero-window probes: RFC 9293 §3.8.6.1), so the path works. A later packet of the silent
    side with an open window that takes nothing (a duplicate ACK) is no such answer.

    And also where the silent side sent new bytes after the sender's last ones, when its last
    packet is late, advertises an open window and comes after no new acknowledgement of its:
    it went on sending, or sending its own bytes again, without receiving the sender's (nor its
    acknowledgements: one direction of the path broken); the seconds are counted the same way.
    (Each direction's last packet, its first one reaching its furthest acknowledgement and the
    flow's first packet are kept by a chunked or live analysis, so all readings agree.)"""
    out = np.full(len(flows), -1.0)
    v = _seq_view(ft, flows) if len(flows) else None
    if v is None:
        return out
    n_f = len(ft.flows)
    f, end, acked = v.f, v.end, v.acked
    fo = ~v.fo if responder else v.fo
    top = np.full(n_f, -1, np.int64)
    np.maximum.at(top, f[fo], end[fo])
    most = np.full(n_f, -1, np.int64)
    np.maximum.at(most, f[~fo], acked[~fo])
    fl = np.asarray(flows, np.int64)
    short = (top[fl] > 0) & (most[fl] < top[fl])
    # the sender's last data packet sent bytes again that are not all acknowledged: its data
    # ends no further than an earlier data packet's (a retransmission) and past the silent
    # side's furthest acknowledgement (so past the one it had sent by then); or its last FIN
    # without data after it, so sent again; a spurious retransmission of acknowledged bytes
    # (Wireshark's tcp.analysis.spurious_retransmission) or new bytes sent last are no stall (a
    # first FIN after them is no new byte). (Data ends, FIN octet left out: the first packet
    # reaching the furthest data end is kept, a FIN may reach further after it.)
    idx = np.arange(len(f))
    sent = fo & (end >= 0)
    data = sent & (v.plen > 0)
    lasts, again = [], []
    for kind, ends in ((data, np.where(data, end - ((v.flags & FIN) != 0), -1)),
                       (sent & (v.plen <= 0) & ((v.flags & FIN) != 0), np.where(sent, end, -1))):
        last = np.full(n_f, -1, np.int64)
        np.maximum.at(last, f[kind], idx[kind])
        earlier = (ends >= 0) & (idx < last[f])
        before = np.full(n_f, -1, np.int64)         # the furthest end before it
        np.maximum.at(before, f[earlier], ends[earlier])
        lo = last[fl]
        e = np.where(lo >= 0, ends[np.maximum(lo, 0)], -1)
        lasts.append(lo)
        again.append((lo >= 0) & (e <= before[fl]) & (e > most[fl]))
    short &= np.where(again[1] & (lasts[1] > lasts[0]), True, again[0])
    # the silent side still answering: its last packet (rows are in (flow, time) order)
    big = np.iinfo(np.int64).max
    t_first = np.full(n_f, big, np.int64)           # the first sending of the sender's last byte
    at = fo & (end == top[f])
    np.minimum.at(t_first, f[at], v.ts[at])
    t_last = np.full(n_f, -1, np.int64)             # the sender's last packet
    np.maximum.at(t_last, f[fo], v.ts[fo])
    s_top = np.full(n_f, -1, np.int64)              # the silent side's furthest sequence end
    np.maximum.at(s_top, f[~fo], end[~fo])
    t_most = np.full(n_f, big, np.int64)            # when the silent side first acknowledged `most`
    reach = ~fo & (acked >= 0) & (acked == most[f])
    np.minimum.at(t_most, f[reach], v.ts[reach])
    pos = np.full(n_f, -1, np.int64)
    np.maximum.at(pos, f[~fo], np.flatnonzero(~fo))
    p = pos[fl]
    has = p >= 0
    p = np.maximum(p, 0)
    bare = has & (v.plen[p] == 0) & ((v.flags[p] & (SYN | FIN | RST)) == 0) & (end[p] == s_top[fl]) & (end[p] >= 0)
    known = t_first[fl] < big
    after = t_first[fl] + (t_last[fl] - t_first[fl]) // 4
    late = has & known & (v.ts[p] > after)
    news = (t_most[fl] < big) & (t_most[fl] > after)       # a new acknowledgement, late
    closed_win = v.win[p] == 0
    short &= ~(bare & late & (closed_win | news))
    if short.any():
        out[short] = _tls_waits(ft, fl[short], responder, view=v)
    # (sending on without receiving: its new bytes are no answer)
    alive = short & (out < 0) & late & (v.win[p] > 0) & ~news & ((v.flags[p] & (SYN | FIN | RST)) == 0)
    if alive.any():
        first = ft.flows["ts_ns"].to_numpy(np.int64)[fl]
        out[alive] = (t_first[fl][alive] - first[alive]) / 1e9
    return out


#: seconds a responder must have held its window closed from its SYN-ACK before a FIN or RST of
#: its own for :func:`_window_closed` to still call it closed (classify's TLS_SILENCE_S): a reset
#: sooner is a server refusing the connection, not a tarpit giving up (newcomer2 31 F1)
CLOSED_THEN_SHUT_S = 3.0


def _window_closed(ft: FlowTable, flows: np.ndarray) -> np.ndarray:
    """Per flow row of ``flows`` (int array, distinct; TCP flows): the seconds, as text to a tenth
    ("12.0"; to the millisecond below 0.95 s, "less than 0.001" below half a millisecond, as
    ``classify._seconds_text``), from the responder's SYN-ACK to the originator's
    last packet when the responder held its receive window closed all that time and took nothing:
    its SYN-ACK and its last packet advertise a zero window (a last RST's window not read: a
    tarpit may end with a reset, or a FIN, :data:`CLOSED_THEN_SHUT_S` or more after its SYN-ACK),
    it acknowledged no byte of the originator's and sent
    none of its own (its FIN octet aside), and the originator sent a packet after its
    first ACK (a zero-window probe: RFC 9293 §3.8.6.1; Windows puts one byte of its data in it,
    Linux none). A tarpit (iptables TARPIT, LaBrea) or a server too loaded to read answers so;
    Zeek's history has a ``W`` (zero window) then. '' where not (also where a packet's window
    field was not captured). Reads the packets a chunked or live analysis keeps (each direction's
    first and last packets, the first SYN-ACK, the first packet reaching each furthest sequence
    end and acknowledgement), so all readings agree."""
    out = repeated("", len(flows))
    v = _seq_view(ft, flows) if len(flows) else None
    if v is None:
        return out
    n_f = len(ft.flows)
    f, fo = v.f, v.fo
    idx = np.arange(len(f))
    synack = ~fo & ((v.flags & (SYN | ACK)) == (SYN | ACK))
    first_sa = np.full(n_f, -1, np.int64)           # the responder's first SYN-ACK (rows in time order)
    at = np.flatnonzero(synack)[::-1]
    first_sa[f[at]] = at
    last_r = np.full(n_f, -1, np.int64)             # the responder's last packet
    np.maximum.at(last_r, f[~fo], idx[~fo])
    last_o = np.full(n_f, -1, np.int64)             # the originator's last packet
    np.maximum.at(last_o, f[fo], idx[fo])
    first_ack = np.full(n_f, len(f), np.int64)      # the originator's first ACK (its handshake's end)
    oa = fo & ((v.flags & ACK) != 0) & ((v.flags & SYN) == 0)
    np.minimum.at(first_ack, f[oa], idx[oa])
    took = np.full(n_f, -1, np.int64)               # the responder's furthest acknowledgement, data end
    data_end = v.end - ((v.flags & FIN) != 0)       # (its FIN octet no data: a tarpit may close so)
    np.maximum.at(took, f[~fo], np.maximum(v.acked[~fo], data_end[~fo]))
    fl = np.asarray(flows, np.int64)
    sa, lr, lo = first_sa[fl], last_r[fl], last_o[fl]
    ok = (sa >= 0) & (lr >= 0) & (lo > first_ack[fl]) & (lo > sa) & (took[fl] <= 0)
    sa, lr, lo = np.maximum(sa, 0), np.maximum(lr, 0), np.maximum(lo, 0)
    # (a last RST's window field means nothing: a tarpit ending in a reset or a FIN is still one
    # when it held the window closed CLOSED_THEN_SHUT_S or more before; sooner, a server refusing)
    shut = (v.flags[lr] & (FIN | RST)) != 0
    ok &= (v.win[sa] == 0) & ((v.win[lr] == 0) | ((v.flags[lr] & RST) != 0))
    ok &= ~shut | ((v.ts[lr].astype(np.int64) - v.ts[sa].astype(np.int64)) >= int(CLOSED_THEN_SHUT_S * 1e9))
    for i in np.flatnonzero(ok).tolist():
        d = (int(v.ts[lo[i]]) - int(v.ts[sa[i]])) / 1e9
        # (as classify._seconds_text prints a duration: below half a millisecond "0.000" would
        # lose its zeros to "0.", a probe on loopback right after the ACK)
        out[i] = ("less than 0.001" if 0 < d < 0.0005 else f"{d:.3f}".rstrip("0") if 0 < d < 0.95
                  else f"{d:.1f}")
    return out


#: nanoseconds at least from the server's last data segment to the client's close for
#: :func:`_flight_lost` to say the client waited for the rest of a flight that stopped short: a
#: retransmission timeout (RFC 6298's minimum RTO is 1 s); clients give up after 10-30 s
FLIGHT_WAIT_NS = 1_000_000_000


def _flight_lost(ft: FlowTable, flows: np.ndarray, missing: np.ndarray, close: np.ndarray,
                 served: np.ndarray) -> np.ndarray:
    """Per flow row of ``flows`` (int array, distinct; TLS over TCP, whose server's first flight as
    captured stopped short: ``missing``, :func:`.tls.flight_short`'s text): ``"N.N s after the
    server's first flight stopped short (<missing>)"`` (seconds from the server's last data
    segment to the client's close) where the rest of the flight was lost on the way, '' where not
    told:

    the client sent the flow's first FIN or RST (``close``, :func:`_close_waits`), acknowledging
    no server byte beyond those captured (``served``, the server's bytes before that close by
    sequence numbers, is at most the bytes its captured segments reach: a capture that merely
    missed segments the client had shows them acknowledged), with at most
    :data:`~kscc_traffic.streams.MAX_SEGMENTS` server data segments (all of them kept by a chunked
    or live analysis, so all readings agree), at least :data:`FLIGHT_WAIT_NS` after the server's
    last data segment (a client that closes at once refused what it had: it was not waiting)."""
    out = np.full(len(flows), "", object)
    v = _seq_view(ft, flows) if len(flows) else None
    if v is None or ft.seq_bytes is None:
        return out
    n_f = len(ft.flows)
    srv = ~v.fo & (v.plen > 0)
    few = np.bincount(v.f[srv], minlength=n_f) <= MAX_SEGMENTS
    last = np.full(n_f, -1, np.int64)
    np.maximum.at(last, v.f[srv], v.ts[srv])
    _, when = _first_close(ft, np.asarray(flows, np.int64))
    fl = np.asarray(flows, np.int64)
    by_client = np.array([str(x).split(" ")[0] == "client" for x in close.tolist()], bool)
    ok = (by_client & few[fl] & (np.asarray(served, np.int64) <= ft.seq_bytes[fl, 1])
          & (last[fl] >= 0) & (when - last[fl] >= FLIGHT_WAIT_NS))
    for i in np.flatnonzero(ok).tolist():
        out[i] = (f"{(when[i] - last[fl[i]]) / 1e9:.1f} s after the server's first flight stopped short "
                  f"({missing[i]})")
    return out


def _mtu_holes(ft: FlowTable, flows: np.ndarray, sides: np.ndarray | None = None) -> np.ndarray:
    """Per flow row of ``flows`` (int array, distinct; TCP flows whose SYN was captured): the
    :data:`MTU_HINT` text ('' where not) when one side's bytes were lost as a path-MTU black
    hole loses them: full-size segments dropped on the path (the ICMP "fragmentation needed" /
    "packet too big" that should have shrunk them filtered), smaller ones delivered.

    By sequence numbers (:func:`.flows.seq_extents`), per direction, the sender X and the
    receiver Y: X's furthest data byte lies past Y's furthest acknowledgement ``a`` (bytes never
    acknowledged). Then either Y closed (its first FIN or RST) after X's furthest packet (the
    first one reaching X's furthest sequence end): Y lost those bytes, the capture was not merely
    cut; and the capture shows that later bytes arrived, either way:

    - seen where Y is: no captured X segment holds byte ``a`` while a later one was captured:
      the first :data:`FULL_SIZE_BYTES` or more bytes from ``a`` never came;
    - seen where X is: X sent the segment holding byte ``a`` twice or more, one of them of
      :data:`FULL_SIZE_BYTES` IP bytes or more, and Y's first packet after X's furthest packet
      is a duplicate acknowledgement (no payload, no SYN/FIN/RST, acknowledging ``a`` again):
      a later segment reached it.

    Or, seen where X is, whoever closed and whether anyone did (X gave up with a RST or a FIN,
    or the capture ends with X still trying; not Y closing before X's furthest packet): X sent
    the segment holding byte ``a`` :data:`MTU_RESENDS` times or more, each of
    :data:`FULL_SIZE_BYTES` IP bytes or more, the first and the last :data:`MTU_RESEND_NS` or
    more apart, and Y's first packet after X's furthest *data* segment (the first reaching X's
    furthest data byte) is a duplicate acknowledgement: the smaller later bytes reached Y, the
    full-size ones never did however often they were sent.

    The size quoted is the bytes from ``a`` to the first captured later segment (the first way)
    or to the end of the last segment holding byte ``a`` (the second); the offset is 1-based, as
    Wireshark's relative sequence numbers.

    Only for directions with at most :data:`~kscc_traffic.streams.MAX_SEGMENTS` data segments and
    flows none of whose TCP headers was cut: reads those segments, the first packet of each
    direction reaching its furthest sequence end and acknowledgement, the first FIN and RST per
    direction and each direction's first packet after the other's furthest packet and after the
    other's furthest data segment, all of which a chunked or live analysis keeps, so all
    readings agree. ``sides`` (bool (len(flows), 2):
    originator, responder; None: all True): the directions to look at as the sender."""
    out = np.full(len(flows), "", object)
    v = _seq_view(ft, flows) if len(flows) else None
    if v is None:
        return out
    c = ft.packets.cols
    n_f = len(ft.flows)
    f, plen, flags, end, acked = v.f, v.plen, v.flags, v.end, v.acked
    pos = np.arange(len(f))
    iplen = c["ip_len"][v.rows].astype(np.int64)
    ts = v.ts
    cut = np.zeros(n_f, bool)
    cut[f[plen < 0]] = True
    fl = np.asarray(flows, np.int64)
    big = np.iinfo(np.int64).max
    look = np.ones((len(flows), 2), bool) if sides is None else np.asarray(sides, bool)
    for responder in (True, False):
        x = ~v.fo if responder else v.fo          # the sender's packets
        y = ~x
        data = x & (plen > 0) & (end >= 0)
        dend = end - ((flags & FIN) != 0)
        start = dend - plen
        few = np.bincount(f[x & (plen > 0)], minlength=n_f) <= MAX_SEGMENTS
        top = np.full(n_f, -1, np.int64)
        np.maximum.at(top, f[x], end[x])
        top_d = np.full(n_f, -1, np.int64)
        np.maximum.at(top_d, f[data], dend[data])
        a = np.full(n_f, -1, np.int64)
        np.maximum.at(a, f[y], acked[y])
        # X's furthest packet; Y's first close, first packet after it, first acknowledging a
        p_x = np.full(n_f, big, np.int64)
        reach = x & (end >= 0) & (end == top[f])
        np.minimum.at(p_x, f[reach], pos[reach])
        closing = y & ((flags & (FIN | RST)) != 0)
        q_y = np.full(n_f, big, np.int64)
        np.minimum.at(q_y, f[closing], pos[closing])
        nxt = np.full(n_f, big, np.int64)
        later = y & (pos > p_x[f])
        np.minimum.at(nxt, f[later], pos[later])
        first_a = np.full(n_f, big, np.int64)
        at_a = y & (acked >= 0) & (acked == a[f])
        np.minimum.at(first_a, f[at_a], pos[at_a])
        ok = few & ~cut & (a >= 0) & (top_d > a) & (p_x < big) & (q_y < big) & (q_y > p_x)
        # the segments holding byte a, and the first captured one after it
        holds = data & (start <= a[f]) & (dend > a[f])
        n_hold = np.bincount(f[holds], minlength=n_f)
        big_hold = np.zeros(n_f, bool)
        big_hold[f[holds & (iplen >= FULL_SIZE_BYTES)]] = True
        last_hold = np.full(n_f, -1, np.int64)
        np.maximum.at(last_hold, f[holds], pos[holds])
        beyond = data & (start > a[f])
        s_min = np.full(n_f, big, np.int64)
        np.minimum.at(s_min, f[beyond], start[beyond])
        gap = (n_hold == 0) & (s_min < big) & (s_min - a >= FULL_SIZE_BYTES)
        k = np.clip(nxt, 0, len(f) - 1)
        dup = (nxt < big) & (plen[k] == 0) & ((flags[k] & (SYN | FIN | RST)) == 0) \
            & ((flags[k] & ACK) != 0) & (acked[k] == a) & (first_a < nxt)
        sent = (n_hold >= 2) & big_hold & dup
        # X still sending the full-size segment holding a, again and again, whoever closed: Y's
        # first packet after X's furthest data segment a duplicate acknowledgement
        p_xd = np.full(n_f, big, np.int64)
        reach_d = data & (dend == top_d[f])
        np.minimum.at(p_xd, f[reach_d], pos[reach_d])
        nxt_d = np.full(n_f, big, np.int64)
        later_d = y & (pos > p_xd[f])
        np.minimum.at(nxt_d, f[later_d], pos[later_d])
        kd = np.clip(nxt_d, 0, len(f) - 1)
        dup_d = (nxt_d < big) & (plen[kd] == 0) & ((flags[kd] & (SYN | FIN | RST)) == 0) \
            & ((flags[kd] & ACK) != 0) & (acked[kd] == a) & (first_a < nxt_d)
        full = holds & (iplen >= FULL_SIZE_BYTES)
        n_full = np.bincount(f[full], minlength=n_f)
        t0 = np.full(n_f, big, np.int64)
        np.minimum.at(t0, f[full], ts[full])
        t1 = np.full(n_f, -1, np.int64)
        np.maximum.at(t1, f[full], ts[full])
        again = few & ~cut & (a >= 0) & (top_d > a) & (p_x < big) & ((q_y == big) | (q_y > p_x)) \
            & (n_full == n_hold) & (n_full >= MTU_RESENDS) & (t1 - t0 >= MTU_RESEND_NS) & dup_d
        size = np.where(gap, s_min - a, np.where(last_hold >= 0, dend[np.maximum(last_hold, 0)] - a, 0))
        hit = (ok & (gap | sent) | again)[fl] & (out == "") & look[:, int(responder)]
        side = "server" if responder else "client"
        for i in np.flatnonzero(hit).tolist():
            out[i] = MTU_HINT.format(side=side, size=int(size[fl[i]]), at=int(a[fl[i]]) + 1)
    return out


def _history_has(hist: np.ndarray, letters: str) -> np.ndarray:
    """Bool array: per flow ``history`` (an object array; a non-text taken as ``str`` of it),
    whether its :func:`~kscc_traffic.flows.history_plain` has one of ``letters`` (a FIN+RST
    packet's letter I/i is both). Judged once per distinct history (most flows of a batch share
    a few)."""
    texts = list(map(str, hist.tolist()))
    memo = {h: any(ch in p for ch in letters) for h in set(texts) for p in (history_plain(h),)}
    return np.fromiter(map(memo.__getitem__, texts), bool, len(texts))


def _with_columns(flows: pd.DataFrame, service: np.ndarray, cols: dict[str, np.ndarray]) -> pd.DataFrame:
    """A new frame: ``flows`` with ``service`` replaced and the columns ``cols`` (name -> array
    (len(flows),)) set, each with the dtype of its array (object stays object). The new columns
    are joined in one step when none of them is in ``flows`` yet (one column at a time costs
    more than the rest of this)."""
    if flows.index.is_unique and flows.columns.is_unique and not any(k in flows.columns for k in cols) \
            and "service" in flows.columns \
            and all(isinstance(t, np.dtype) and t.kind in "biufO" for t in flows.dtypes):
        # every column a numpy array: the columns of ``flows`` as they are (slices of its
        # blocks, not copied: the caller's FlowTable keeps ``flows`` alive, so a frame of them all
        # at once held the table twice, +54 MiB on a spray's 90,000 flows), service replaced in
        # its place, the new ones a frame of their own (flows.frame_of)
        i = flows.columns.get_loc("service")
        idx = flows.index
        out = pd.concat([flows.iloc[:, :i], frame_of({"service": np.asarray(service, object)}, idx),
                         flows.iloc[:, i + 1:], frame_of(cols, idx)], axis=1)
        out.columns = label_index(out.columns)     # (concat makes them pandas 3's str labels)
        return out
    if flows.index.is_unique and not any(k in flows.columns for k in cols):
        # (a numeric or bool array goes in as it is, keeping its dtype: a Series of each first
        # costs ~40% more; an object array as a Series of dtype object, which pandas 3 would
        # otherwise infer as its str dtype; that Series not a copy, copy=False: the frame copies
        # each column into its block of columns of one dtype anyway, ~25% of this step)
        idx = flows.index
        extra = pd.DataFrame({k: v if v.dtype.kind in "biuf" else pd.Series(v, dtype=v.dtype, index=idx, copy=False)
                              for k, v in cols.items()}, index=idx)
        out = pd.concat([flows, extra], axis=1)
    else:
        out = flows.copy()
        for k, v in cols.items():
            out[k] = pd.Series(v, dtype=v.dtype, index=out.index)
    out["service"] = pd.Series(service, dtype=object, index=out.index)
    return out


#: QUIC versions whose long-header Initial packet is recognised (RFC 9000 version 1, RFC 9369
#: version 2, the IETF drafts 0xff0000xx): version -> the packet type bits (0x30) of an Initial
QUIC_INITIAL_TYPE = {0x00000001: 0x00, 0x6B3343CF: 0x10}
_QUIC_DRAFT = 0xFF000000


def _udp_quic(ft: FlowTable, service: np.ndarray) -> None:
    """``service`` = quic (in place, as Zeek's QUIC analyzer names it) for each UDP flow whose
    originator's first datagram is a QUIC long-header Initial packet (RFC 9000 §17.2: header
    form and fixed bits set, a known version, :data:`QUIC_INITIAL_TYPE`, a Destination
    Connection ID of at most 20 bytes) of at least 1200 bytes, as a client's first datagram
    must be (RFC 9000 §14.1) and left as it is elsewhere (a DNS flow stays dns). Only the
    originator's first datagram is read: a flow split by the idle timeout, whose first datagram
    has a short header, is not recognised."""
    c = ft.packets.cols
    rows = np.flatnonzero((ft.pkt_flow >= 0) & (c["proto"] == UDP) & ft.pkt_from_orig
                          & (c["pl_cap"] >= 6) & (c["pl_off"] >= 0))
    if not len(rows):
        return
    f = ft.pkt_flow[rows]
    # the first datagram of each flow's originator, in packet row order (the flows' order)
    _, first = np.unique(f, return_index=True)
    rows, f = rows[first], f[first]
    buf = np.frombuffer(ft.packets.buf, np.uint8)
    b = buf[c["pl_off"][rows][:, None] + np.arange(6)].astype(np.int64)
    version = (b[:, 1] << 24) | (b[:, 2] << 16) | (b[:, 3] << 8) | b[:, 4]
    kind = np.where((version & 0xFFFFFF00) == _QUIC_DRAFT, 0x00, -1)
    for v, t in QUIC_INITIAL_TYPE.items():
        kind = np.where(version == v, t, kind)
    quic = ((b[:, 0] & 0xC0) == 0xC0) & (kind >= 0) & ((b[:, 0] & 0x30) == kind) & (b[:, 5] <= 20) \
        & (c["payload_len"][rows] >= 1200) & (service[f] == "")
    service[f[quic]] = "quic"


#: the responses among the first this many packets of a flow (both ways, time order) are matched
#: with its queries among them (:func:`stray_responses`): those are the packets of a flow that a
#: chunked analysis always keeps (:data:`kscc_traffic.chunked.HEAD_PACKETS`), so every analysis
#: agrees; a response after them (a client asking everything from one source port) counts
DNS_MATCH_PACKETS = 8

#: the DNS messages of the common shape are read all at once (:func:`.dns_batch.parse_simple`);
#: False: each one by the reference parser (:func:`.dns.parse_message`), as the tests compare
DNS_BATCH = True


#: DNS question types by name, for the ``dns_mismatch`` text (others: ``type <n>``)
_QTYPE_NAMES = {dns.TYPE_A: "A", dns.TYPE_AAAA: "AAAA", dns.TYPE_CNAME: "CNAME", 12: "PTR", 33: "SRV",
                65: "HTTPS", 16: "TXT", 15: "MX", 2: "NS", 6: "SOA"}


def _qtype_text(t: int) -> str:
    return _QTYPE_NAMES.get(t, f"type {t}")


#: what :func:`dns_mismatch_text` says of a first response matching no query by its transaction
#: ID, and of one whose ID a query had but not its question (the detail's text; the report reads
#: the ``dns_unmatched`` column instead, never the detail: names quoted there could pose as either)
MISMATCH_ID = "a transaction ID no query had"
MISMATCH_QUESTION = "another question than asked"
#: the ``dns_unmatched`` values (:func:`dns_mismatch_kind`): the first response matching no query
#: of its flow had a transaction ID no query had, or a query's ID with another question
UNMATCHED_ID, UNMATCHED_QUESTION = "id", "question"


def dns_mismatch_kind(unmatched: list[tuple[int, str, int]], asked: list[tuple[int, str, int]]) -> str:
    """The ``dns_unmatched`` value of a flow (``unmatched``, ``asked`` as for
    :func:`dns_mismatch_text`): :data:`UNMATCHED_QUESTION` when the first response matching no
    query has the transaction ID of one of ``asked``, else :data:`UNMATCHED_ID`."""
    return UNMATCHED_QUESTION if unmatched[0][0] in {t[0] for t in asked} else UNMATCHED_ID


def dns_mismatch_text(unmatched: list[tuple[int, str, int]], asked: list[tuple[int, str, int]]) -> str:
    """The ``dns_mismatch`` text of a flow: ``unmatched`` its responses that match no query
    (``(id, first question name, its type)``, name '' / type -1 without a question; in order of
    arrival) and ``asked`` its queries (the same triples). Names are the escaped texts of
    :func:`.dns.host_text`."""
    def one(t: tuple[int, str, int]) -> str:
        return f"ID 0x{t[0]:04x}" + (f" for {t[1]} {_qtype_text(t[2])}" if t[1] else "")
    first = unmatched[0]
    why = MISMATCH_QUESTION if dns_mismatch_kind(unmatched, asked) == UNMATCHED_QUESTION else MISMATCH_ID
    n = len(unmatched)
    queries = ", ".join(one(t) for t in dict.fromkeys(asked[:3]))
    return (f"{n} response{'s' if n != 1 else ''} matching no query of the flow (the first: {one(first)}, "
            f"{why}; asked: {queries}{', …' if len(dict.fromkeys(asked)) > 3 else ''})")


def stray_responses(p, rows: np.ndarray, flow: np.ndarray,
                    parsed: tuple[np.ndarray, "_DnsMessages"] | None = None) -> tuple[np.ndarray, dict]:
    """Which of the packet rows ``rows`` of ``p`` (:class:`Packets`, in capture order, every
    packet of their flows ``flow``, an int array of the same length) are DNS responses that match
    no query of their flow: bool array (len(rows),), and flow -> (its ``dns_mismatch`` text,
    :func:`dns_mismatch_text`; its ``dns_unmatched`` value, :func:`dns_mismatch_kind`).
    ``parsed``: (packet rows, ascending, and their :func:`_dns_messages`) already parsed,
    holding every DNS datagram of ``rows`` (None: parsed here).

    A response matches a query with its transaction ID and, when it has a question, the same
    first question (name case-insensitively, as 0x20 case randomisation asks it, and type): what
    a stub resolver accepts (and how Wireshark and Zeek pair them). Only the UDP datagrams (port
    53) among the first :data:`DNS_MATCH_PACKETS` packets of each flow (time order, capture order
    within a time) are read, and only in flows with a query among them (a capture of the answers
    alone names what it can)."""
    out = np.zeros(len(rows), bool)
    texts: dict = {}
    if not len(rows):
        return out, texts
    c = p.cols
    flow = np.asarray(flow, np.int64)
    ts = c["ts_ns"][rows]
    o = np.lexsort((np.arange(len(rows)), ts, flow))
    fo = flow[o]
    start = np.r_[True, fo[1:] != fo[:-1]]
    k = np.arange(len(o))
    head = np.zeros(len(rows), bool)
    head[o[(k - np.maximum.accumulate(np.where(start, k, 0))) < DNS_MATCH_PACKETS]] = True
    off, cap = c["pl_off"][rows], c["pl_cap"][rows]
    at = np.flatnonzero(head & (c["proto"][rows] == UDP) & (cap >= 12) & (off >= 0)
                        & ((c["sport"][rows] == 53) | (c["dport"][rows] == 53)))
    if not len(at):
        return out, texts
    if parsed is None:
        m = _dns_messages(p, rows[at])
        kid = m.kid
    else:
        m = parsed[1]
        kid = m.kid[np.searchsorted(parsed[0], rows[at])]
    isq = m.valid[kid] & ~m.is_resp[kid] & m.has_q[kid]
    isr = m.valid[kid] & m.is_resp[kid]
    f = flow[at]
    pick = np.flatnonzero((isq | isr) & _member(f, f[isq], int(f.max()) + 1))
    if not len(pick) or not isr[pick].any():
        return out, texts
    at, kid, isq, isr, f = at[pick], kid[pick], isq[pick], isr[pick], f[pick]
    b = np.frombuffer(p.buf, np.uint8) if not isinstance(p.buf, np.ndarray) else p.buf
    o2 = off[at].astype(np.int64)
    tx = b[o2].astype(np.int64) << 8 | b[o2 + 1].astype(np.int64)
    # each message's question (lower-case name, type) as a number, -1 without
    # (numbered by (lower-case name, type): only which are equal counts)
    # (the distinct names lower-cased, not every message's: answers repeat their query's name)
    code, names = pd.factorize(np.asarray(m.qname, dtype=object))
    low = np.where(code >= 0, pd.factorize(pd.Series(names, dtype=object).str.lower())[0][code], -1)
    qc_k, types = pd.factorize(low.astype(np.int64) * 65537 + (m.qtype + 1))
    qc_k = np.where(m.has_q, qc_k, -1).astype(np.int64)
    ncodes = len(types)
    qc = qc_k[kid]
    who = f * 65536 + tx
    if (int(who.max()) + 1) * (ncodes + 1) < 1 << 62:
        _, full = np.unique(who * (ncodes + 1) + (qc + 1), return_inverse=True)
    else:
        _, full = np.unique(np.stack([who, qc]), axis=1, return_inverse=True)
    full = full.ravel()
    asked_full = np.zeros(int(full.max()) + 1, bool)
    asked_full[full[isq]] = True
    bad = isr & np.where(qc >= 0, ~asked_full[full], ~np.isin(who, who[isq]))
    out[at[bad]] = True
    if not bad.any():
        return out, texts
    # (the datagrams of the flows with a stray, grouped by flow in their order)
    sel = np.flatnonzero(np.isin(f, f[bad]))
    sel = sel[np.argsort(f[sel], kind="stable")]
    cuts = np.flatnonzero(np.r_[True, f[sel][1:] != f[sel][:-1]])
    for mine in np.split(sel, cuts[1:]):
        fi = int(f[mine[0]])
        triple = [(int(tx[i]), m.qname[kid[i]] if qc[i] >= 0 else "", int(m.qtype[kid[i]]) if qc[i] >= 0 else -1)
                  for i in mine.tolist()]
        unmatched = [t for i, t in zip(mine.tolist(), triple) if bad[i]]
        queries = [t for i, t in zip(mine.tolist(), triple) if isq[i]]
        texts[fi] = (dns_mismatch_text(unmatched, queries), dns_mismatch_kind(unmatched, queries))
    return out, texts


def _udp_dns(ft: FlowTable, query: np.ndarray, service: np.ndarray, answers: DnsAnswers,
             rcode: np.ndarray | None = None, addresses: np.ndarray | None = None,
             aaaa_only: np.ndarray | None = None, mismatch: np.ndarray | None = None,
             asked: np.ndarray | None = None, keys: np.ndarray | None = None,
             unmatched: np.ndarray | None = None) -> None:
    """The DNS datagrams of the flows of ``ft`` (UDP with payload, port 53 on either side), in
    place: ``service`` = dns for every flow with a datagram that parses as DNS, ``query`` = the
    first question name of the flow's first datagram that has a question (packet row order),
    ``rcode`` (when given) = the flow's response code over all its response datagrams (QR bit
    set; :func:`flow_rcode`: the first that is not NOERROR, else NOERROR; left as it is for flows
    without one), ``addresses`` (when given) = the distinct answer addresses of all of them, in
    packet row order (:func:`flow_addresses`), and the (address, name) pairs of every response
    appended to ``answers`` in packet row order (time and frame of the packet, client = the
    packet's destination address).

    Answers to the same question differ only in their 2-byte id, so each distinct rest of a
    payload is parsed once (:func:`_dns_messages`) and its results spread over its packets with
    numpy; no Python object per packet beyond its payload key (the flags word, hence the RCODE,
    is part of that key), and a Python step per distinct (flow, message) only for the flows with
    answers in more than one response. ``query``/``service``/``rcode``/``addresses``: object
    arrays (n_flows,); ``answers`` is assumed empty. ``aaaa_only`` (when given; bool (n_flows,)):
    True for the flows whose every response with an error code answered an AAAA question (the
    IPv6 address only: :data:`.dns.TYPE_AAAA`), False for the others. ``asked`` (when given;
    int64 (n_flows,)): OR-ed in, :data:`DNS_ASKED_A` / :data:`DNS_ASKED_AAAA` for the flows with a
    response to an A / AAAA question (:func:`asked_bits`).

    A response that matches no query of its flow (:func:`stray_responses`: its transaction ID or
    question differ; a stub resolver drops it) counts for none of these: ``mismatch`` (when
    given; object array (n_flows,)) says what they were (:func:`dns_mismatch_text`), ``unmatched``
    (when given; likewise) what the first of them mismatched (:func:`dns_mismatch_kind`). ``keys``
    (when given; object array (n_flows,)): for the flows whose packets all went one way,
    :func:`one_way_dns_keys`."""
    p = ft.packets
    c = p.cols
    rows = np.nonzero((ft.pkt_flow >= 0) & (c["proto"] == UDP) & (c["pl_cap"] > 0)
                      & ((c["sport"] == 53) | (c["dport"] == 53)))[0]
    if not len(rows):
        return
    m = _dns_messages(p, rows)
    kid = m.kid
    ok = m.valid[kid]
    f = ft.pkt_flow[rows]
    if keys is not None:
        one_way_dns_keys(ft, rows, m, keys)
    service[f[ok]] = "dns"
    # query: the first datagram with a question, per flow (question names are never empty)
    asks = np.nonzero(m.has_q[kid])[0]
    if len(asks):
        _, at = np.unique(f[asks], return_index=True)
        at = asks[at]
        query[f[at]] = m.qname[kid[at]]
    # answers: each response's pairs, in row order (not those matching no query of the flow)
    resp = np.nonzero(m.is_resp[kid])[0]
    if len(resp):
        # (read on every packet of the flows with a response: the first ones of each flow)
        want = np.zeros(len(ft.flows) + 1, bool)
        want[f[resp]] = True
        every = np.flatnonzero(ft.pkt_flow >= 0)
        every = every[want[ft.pkt_flow[every]]]
        got, texts = stray_responses(p, every, ft.pkt_flow[every], parsed=(rows, m))
        stray = np.zeros(len(ft.pkt_flow), bool)
        stray[every] = got
        stray = stray[rows]
        if stray.any():
            resp = resp[~stray[resp]]
            for fi, (t, kind) in texts.items():
                if mismatch is not None:
                    mismatch[fi] = t
                if unmatched is not None:
                    unmatched[fi] = kind
    if rcode is not None and len(resp):
        # NOERROR for every flow with a response, then the first other code where there is one
        # (rows are in capture order)
        rcode[f[resp]] = _RCODE_TEXT[0]
        bad = resp[m.rc[kid[resp]] != 0]
        if len(bad):
            _, at = np.unique(f[bad], return_index=True)
            at = bad[at]
            rcode[f[at]] = _RCODE_TEXT[m.rc[kid[at]]]
            if aaaa_only is not None:
                aaaa_only[f[bad]] = True
                aaaa_only[f[bad[m.qtype[kid[bad]] != dns.TYPE_AAAA]]] = False
    if asked is not None and len(resp):
        np.bitwise_or.at(asked, f[resp], asked_bits(m.qtype[kid[resp]]))
        bad = resp[m.unreadable[kid[resp]]]
        if len(bad):
            asked[f[bad]] |= DNS_UNREADABLE
        bad = resp[m.cut[kid[resp]]]
        if len(bad):
            asked[f[bad]] |= DNS_CUT
        cut = resp[m.tc[kid[resp]]]
        if len(cut):
            asked[f[cut]] |= DNS_TRUNCATED
    count = m.n_res[kid[resp]]
    resp, count = resp[count > 0], count[count > 0]
    if not len(resp):
        return
    fp = f[resp]
    if addresses is not None:
        # the flows with answers in one response (most): that response's text; the others
        # folded message by message (flow_addresses)
        many = np.bincount(fp)[fp] > 1
        one = resp[~many]
        addresses[f[one]] = m.addr_text[kid[one]]
        if many.any():
            folded, _ = flow_addresses(fp[many], kid[resp[many]], m.addrs)
            for fl, addrs in folded.items():
                addresses[fl] = ";".join(addrs)
    pos = rows[resp]
    # the client is the packet's destination: the flow's responder when the originator sent it
    flows = ft.flows
    client = np.where(ft.pkt_from_orig[pos], flows["resp_h"].to_numpy(dtype=object)[fp],
                      flows["orig_h"].to_numpy(dtype=object)[fp])
    n_res = m.n_res
    k_start = np.cumsum(n_res) - n_res
    total = int(count.sum())
    # flat index of each answer: its key's first pair + its rank among its response's pairs
    at = np.repeat(k_start[kid[resp]] - (np.cumsum(count) - count), count) + np.arange(total)
    answers.ts_ns.extend(np.repeat(c["ts_ns"][pos], count).tolist())
    answers.client.extend(np.repeat(client, count).tolist())
    answers.address.extend(np.array(m.addr_flat, object)[at].tolist())
    answers.name.extend(np.array(m.name_flat, object)[at].tolist())
    answers.frame_no.extend(np.repeat(c["frame"][pos], count).tolist())


#: the internal column of a UDP DNS flow whose packets all went one way (only queries, or only
#: answers): its messages' keys (:func:`one_way_dns_keys`), '' for the other flows
DNS_KEYS = "dns_keys"


def dns_key_text(is_response: bool, txid: int, qtype: int, qname: str) -> str:
    """One key of :data:`DNS_KEYS`: ``Q`` (query) or ``R`` (response), the transaction ID in
    4 hex digits, the first question's type (a number) and name (the escaped text of
    :func:`.dns.host_text`, as asked: compare it case-insensitively), space-separated:
    ``Q 1a2b 28 eu1.ksc.kaspersky.com``."""
    return f"{'R' if is_response else 'Q'} {txid:04x} {qtype} {qname}"


def split_dns_key(key: str) -> tuple[bool, int, int, str]:
    """(is a response, transaction ID, question type, question name) of a :func:`dns_key_text`."""
    kind, txid, qtype, name = key.split(" ", 3)
    return kind == "R", int(txid, 16), int(qtype), name


def one_way_dns_keys(ft: FlowTable, rows: np.ndarray, m: "_DnsMessages", keys: np.ndarray) -> None:
    """Fill ``keys`` (object array (n_flows,), in place) for the UDP flows of ``ft`` whose every
    packet went one way (``orig_pkts`` or ``resp_pkts`` 0, port 53 on either side): the
    :func:`dns_key_text` of each DNS message with a question among the flow's first
    :data:`DNS_MATCH_PACKETS` packets (time order, capture order within a time: what a chunked
    analysis always keeps, :data:`kscc_traffic.chunked.HEAD_PACKETS`), distinct, in that order,
    ``\n``-joined (a name's text holds no line end: it is escaped). ``rows``: the flows' UDP
    port 53 datagrams with payload (ascending), ``m`` their :func:`_dns_messages`. A query
    nothing answered is paired with its answer from another address by these
    (:func:`kscc_traffic.classify._note_other_source`)."""
    flows = ft.flows
    if not len(rows) or not len(flows):
        return
    one = (((flows["orig_pkts"].to_numpy() == 0) | (flows["resp_pkts"].to_numpy() == 0))
           & (flows["proto"].to_numpy(dtype=object) == "udp"))
    if not one.any():
        return
    f = ft.pkt_flow[rows]
    mine = one[f] & m.valid[m.kid] & m.has_q[m.kid]
    if not mine.any():
        return
    # (the first DNS_MATCH_PACKETS packets of each such flow, every packet of it counted)
    c = ft.packets.cols
    every = np.flatnonzero(ft.pkt_flow >= 0)
    every = every[one[ft.pkt_flow[every]]]
    fe = ft.pkt_flow[every]
    o = np.lexsort((every, c["ts_ns"][every], fe))
    start = np.r_[True, fe[o][1:] != fe[o][:-1]]
    k = np.arange(len(o))
    head = np.zeros(len(ft.pkt_flow), bool)
    head[every[o[(k - np.maximum.accumulate(np.where(start, k, 0))) < DNS_MATCH_PACKETS]]] = True
    at = np.flatnonzero(mine & head[rows])
    if not len(at):
        return
    # (in time order within a flow, as the head)
    at = at[np.lexsort((rows[at], c["ts_ns"][rows[at]], f[at]))]
    b = np.frombuffer(ft.packets.buf, np.uint8) if not isinstance(ft.packets.buf, np.ndarray) else ft.packets.buf
    off = c["pl_off"][rows[at]].astype(np.int64)
    tx = (b[off].astype(np.int64) << 8 | b[off + 1].astype(np.int64)).tolist()
    got: dict[int, dict[str, None]] = {}
    for fl, t, kd in zip(f[at].tolist(), tx, m.kid[at].tolist()):
        got.setdefault(fl, {})[dns_key_text(bool(m.is_resp[kd]), t, int(m.qtype[kd]), m.qname[kd])] = None
    for fl, texts in got.items():
        keys[fl] = "\n".join(texts)


@dataclass
class _DnsMessages:
    """The DNS datagrams at some packet rows, each distinct message parsed once
    (:func:`_dns_messages`). ``kid``: int64 (rows,), the message (key) of each row, numbered in
    order of first appearance; per key (arrays (keys,)): ``valid`` (parses as DNS), ``is_resp``
    (a response), ``has_q`` / ``qname`` (its first question name), ``rc`` (int64 RCODE, 0-15),
    ``n_res`` (its :func:`.dns.resolved_names` pairs), ``addrs`` (list of tuples: its distinct
    answer addresses, answer order), ``addr_text`` (the ``dns_answers`` text of that one
    response: the first :data:`MAX_DNS_ANSWERS` of ``addrs``, ';'-joined);
    ``addr_flat``/``name_flat``: the pairs of all keys one after the other (key *k*'s start at
    ``cumsum(n_res) - n_res``); ``qtype`` (int64 (keys,)): its first question's type, -1 without."""

    kid: np.ndarray
    valid: np.ndarray
    is_resp: np.ndarray
    has_q: np.ndarray
    qname: np.ndarray
    rc: np.ndarray
    n_res: np.ndarray
    addrs: list
    addr_text: np.ndarray
    addr_flat: list
    name_flat: list
    #: per key: its first question's QTYPE (int64), -1 without a question
    qtype: np.ndarray | None = None
    #: per key: a response holding a name the parser rejected (:data:`DNS_UNREADABLE`)
    unreadable: np.ndarray | None = None
    #: per key: a response with the TC (truncated) flag (:data:`DNS_TRUNCATED`)
    tc: np.ndarray | None = None
    #: per key: a response the capture cut before its answer records all were (:data:`DNS_CUT`)
    cut: np.ndarray | None = None


def _dns_messages(p, rows: np.ndarray) -> _DnsMessages:
    """Parse the payloads of packet rows ``rows`` of ``p`` (:class:`Packets`; rows with captured
    payload) as DNS messages, each distinct payload without its 2-byte id once."""
    c = p.cols
    buf = p.buf
    off = c["pl_off"][rows].astype(np.int64)
    end = np.where(off >= 0, off + c["pl_cap"][rows], 0)
    off = np.maximum(off, 0)
    # the payload without its 2-byte id (Packets.payload(i)[2:]) is the key
    k0, k1 = (off + 2).tolist(), end.tolist()
    if isinstance(buf, bytes):
        keys = [buf[i:j] for i, j in zip(k0, k1)]
    else:
        mv = memoryview(buf).cast("B")
        keys = [mv[i:j].tobytes() for i, j in zip(k0, k1)]
    kid = pd.factorize(np.array(keys, dtype=object))[0].astype(np.int64)   # (order of first appearance)
    del keys
    # each key's first packet (ids are numbered in order of first appearance)
    first = np.nonzero(np.r_[True, kid[1:] > np.maximum.accumulate(kid)[:-1]])[0]
    nk = len(first)
    m = _DnsMessages(kid, np.zeros(nk, bool), np.zeros(nk, bool), np.zeros(nk, bool),
                     repeated("", nk), np.zeros(nk, np.int64), np.zeros(nk, np.int64),
                     [()] * nk, repeated("", nk), [], [], np.full(nk, -1, np.int64), np.zeros(nk, bool),
                     cut=np.zeros(nk, bool))
    # the TC flag (bit 0x02 of the flags' first byte, the key's first byte) of each response (QR,
    # 0x80 of that byte), read from the bytes: the same for the messages parsed either way
    f0 = off[first] + 2
    has = end[first] > f0
    flags0 = np.zeros(nk, np.int64)
    if has.any():
        b = np.frombuffer(buf, np.uint8) if isinstance(buf, bytes) else np.asarray(memoryview(buf).cast("B"))
        flags0[has] = b[f0[has]]
    m.tc = (flags0 & 0x82) == 0x82
    # the common shape of all of them at once (dns_batch), the others one by one
    s = dns_batch.parse_simple(buf, off[first], end[first]) if DNS_BATCH else None
    pair_key: list = []
    pair_addr: list = []
    pair_name: list = []
    if s is not None:
        easy = s.simple
        m.valid[easy] = s.valid[easy]
        m.is_resp[easy] = s.is_response[easy]
        m.rc[easy] = np.where(s.is_response[easy], s.rcode[easy], 0)
        m.has_q[easy] = s.qtype[easy] >= 0
        m.qname[easy] = s.qname[easy]
        m.qtype[easy] = s.qtype[easy]
        pair_key.append(s.pair_msg)
        pair_addr.append(s.pair_addr)
        pair_name.append(s.qname[s.pair_msg])
        hard = np.flatnonzero(~easy)
    else:
        hard = np.arange(nk)
    keys_h: list[int] = []
    addr_h: list[str] = []
    name_h: list[str] = []
    for k in hard.tolist():
        j = int(first[k])
        msg = dns.parse_message(bytes(buf[int(off[j]):int(end[j])]))
        if msg is None:
            continue
        m.valid[k] = True
        if msg.questions:
            m.has_q[k] = True
            m.qname[k] = msg.questions[0][0]
            m.qtype[k] = msg.questions[0][1]
        if msg.is_response:
            m.is_resp[k] = True
            m.rc[k] = msg.rcode
            # (records not read: a name the parser rejected, or the message stops being readable
            # before its records end though the whole datagram was captured)
            whole = not msg.partial or c["pl_cap"][rows[j]] >= c["payload_len"][rows[j]]
            m.unreadable[k] = msg.bad_names > 0 or (msg.partial and whole)
            # (the snaplen cut it before its answer records: whether they held an address is not
            # known; links s54 #1)
            m.cut[k] = msg.partial and not whole and msg.ancount > len(msg.answers)
            for a, nm in dns.resolved_names(msg):
                keys_h.append(k)
                addr_h.append(a)
                name_h.append(nm)
    if keys_h:
        pair_key.append(np.array(keys_h, np.int64))
        pair_addr.append(np.array(addr_h, dtype=object))
        pair_name.append(np.array(name_h, dtype=object))
    key = np.concatenate(pair_key) if pair_key else np.zeros(0, np.int64)
    if len(key):
        order = np.argsort(key, kind="stable")      # (key order; answer order within a key)
        key = key[order]
        addr = np.concatenate(pair_addr)[order]
        name = np.concatenate(pair_name)[order]
        m.n_res[:] = np.bincount(key, minlength=nk)
        m.addr_flat = addr.tolist()
        m.name_flat = name.tolist()
        cuts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]).tolist() + [len(key)]
        flat = m.addr_flat
        for k, i, j in zip(key[cuts[:-1]].tolist(), cuts[:-1], cuts[1:]):
            m.addrs[k] = tuple(dict.fromkeys(flat[i:j]))
            m.addr_text[k] = ";".join(m.addrs[k][:MAX_DNS_ANSWERS])
    return m


#: ``dns_asked`` bit: a response of the flow answered an A (IPv4 address) question
DNS_ASKED_A = 1
#: ``dns_asked`` bit: a response of the flow answered an AAAA (IPv6 address) question
DNS_ASKED_AAAA = 2
#: ``dns_asked`` bit: a response of the flow was malformed: it held a record or question whose
#: name breaks the DNS rules (:func:`.dns.parse_message`'s ``bad_names``: a compression pointer
#: that loops or points forward), or stopped being readable before its records ended though the
#: whole datagram was captured (its ``partial``: a reserved label type, a record running past the
#: end); those records were not read, and a resolver drops such an answer (break-it 32 F2)
DNS_UNREADABLE = 4
#: ``dns_asked`` bit: a response of the flow carried over UDP had the TC (truncated) flag set
#: (RFC 1035 §4.1.1): the answer did not fit and the client is to ask again over TCP (RFC 7766)
DNS_TRUNCATED = 8
#: ``dns_asked`` bit: a response of the flow was cut by the capture (the snaplen, or a TCP stream
#: whose end was not captured) before its answer records, more of which its header announces
#: than were read: whether they held an address is not known (links s54 #1: pktmon's 128 bytes)
DNS_CUT = 16


def asked_has(asked, bit: int) -> bool:
    """Whether a flow's ``dns_asked`` value (an int of bits; anything else, a bool or a missing
    value from a table read back, is none) has ``bit`` (:data:`DNS_UNREADABLE`,
    :data:`DNS_TRUNCATED`, :data:`DNS_CUT`…)."""
    return isinstance(asked, (int, np.integer)) and not isinstance(asked, (bool, np.bool_)) \
        and bool(asked & bit)


def truncated_answer(asked) -> bool:
    """Whether a flow's ``dns_asked`` value has :data:`DNS_TRUNCATED` (:func:`asked_has`): a UDP
    response with the TC flag."""
    return asked_has(asked, DNS_TRUNCATED)


def asked_bits(qtypes: np.ndarray) -> np.ndarray:
    """int64 array (len(qtypes),): for each DNS question type of ``qtypes`` (ints; -1: no
    question), :data:`DNS_ASKED_A` for an A question, :data:`DNS_ASKED_AAAA` for an AAAA one, 0
    for any other (HTTPS, SVCB, TXT, PTR…, which ask for no address)."""
    q = np.asarray(qtypes, np.int64)
    return np.where(q == dns.TYPE_A, DNS_ASKED_A, np.where(q == dns.TYPE_AAAA, DNS_ASKED_AAAA, 0)).astype(np.int64)


def flow_rcode(rcodes) -> str:
    """The ``dns_rcode`` of a flow whose responses had the header RCODEs ``rcodes`` (ints, in
    order of arrival): Zeek's rcode_name (:func:`.dns.rcode_name`) of the first that is not
    NOERROR, else ``NOERROR``; '' when there is none. (Zeek's dns.log has one rcode per query; a
    flow carries several queries, e.g. glibc's A and AAAA from one socket, and an error among
    them is what this column is read for.)"""
    rcodes = list(rcodes)
    return dns.rcode_name(next((r for r in rcodes if r), 0)) if rcodes else ""


def flow_addresses(flow: np.ndarray, key: np.ndarray, addrs: list) -> tuple[dict, np.ndarray]:
    """The ``dns_answers`` addresses of flows from their responses, and the responses needed.

    :param flow: int array (m,): the flow of each response, in order of arrival.
    :param key: int array (m,): each response's message, an index into ``addrs``.
    :param addrs: per message, its distinct answer addresses (tuple of str, answer order).
    :returns: (flow -> list of its distinct addresses in order of arrival, at most
        :data:`MAX_DNS_ANSWERS`, for the flows with any; bool array (m,): the responses that
        bring one of those addresses first). A response repeating a message already seen in its
        flow brings nothing: one Python step per distinct (flow, message)."""
    need = np.zeros(len(flow), bool)
    out: dict[int, list[str]] = {}
    if not len(flow):
        return out, need
    flow = np.asarray(flow, np.int64)
    key = np.asarray(key, np.int64)
    _, first = np.unique(flow * (int(key.max()) + 1) + key, return_index=True)
    first.sort()
    seen: dict[int, dict[str, None]] = {}
    for i, fl, k in zip(first.tolist(), flow[first].tolist(), key[first].tolist()):
        have = seen.setdefault(fl, {})
        if len(have) >= MAX_DNS_ANSWERS:
            continue
        for a in addrs[k]:
            if a not in have:
                have[a] = None
                need[i] = True
                if len(have) >= MAX_DNS_ANSWERS:
                    break
    for fl, have in seen.items():
        if have:
            out[fl] = list(have)
    return out, need


def dns_response_rows(p, rows: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Bool array (len(rows),): of the packet rows ``rows`` of ``p`` (:class:`Packets`, in
    capture order) whose flows are ``flow`` (int array, same length), the DNS responses that
    :func:`_udp_dns` reads for ``dns_rcode`` and ``dns_answers``: per flow its first response,
    its first response that is not NOERROR (and its first such to another question than
    AAAA: ``dns_error_aaaa_only``), its first to an A and to an AAAA question (``dns_asked``),
    and each response that brings one of its
    ``dns_answers`` addresses first (:func:`flow_addresses`). Those columns are the same from
    these rows alone (what :mod:`kscc_traffic.chunked` carries for a flow still open: at most
    :data:`MAX_DNS_ANSWERS` + 2 responses per flow), less the responses matching no query of
    their flow (:func:`stray_responses`).

    A response is a UDP datagram on port 53 with the QR bit set (and at least the 12 header
    bytes captured); the flows with one such datagram (most) keep it without a look, only those
    of flows with more are parsed (:func:`_dns_messages`)."""
    c = p.cols
    out = np.zeros(len(rows), bool)
    off, cap = c["pl_off"][rows], c["pl_cap"][rows]
    at = np.nonzero((c["proto"][rows] == UDP) & (cap >= 12) & (off >= 0)
                    & ((c["sport"][rows] == 53) | (c["dport"][rows] == 53)))[0]
    if len(at):
        at = at[(np.frombuffer(p.buf, np.uint8)[off[at] + 2] & 0x80) != 0]
    if not len(at):
        return out
    f = np.asarray(flow, np.int64)[at]
    _, inv, count = np.unique(f, return_inverse=True, return_counts=True)
    many = count[inv] > 1
    out[at[~many]] = True
    at, f = at[many], f[many]
    if not len(at):
        return out
    # (not those matching no query: _udp_dns reads none of them; read on every packet of
    # these flows)
    mine = np.isin(np.asarray(flow, np.int64), f)
    stray = np.zeros(len(rows), bool)
    stray[mine] = stray_responses(p, rows[mine], np.asarray(flow, np.int64)[mine])[0]
    at, f = at[~stray[at]], f[~stray[at]]
    if not len(at):
        return out
    m = _dns_messages(p, rows[at])
    resp = np.nonzero(m.is_resp[m.kid])[0]
    if not len(resp):
        return out
    _, first = np.unique(f[resp], return_index=True)
    out[at[resp[first]]] = True
    bad = resp[m.rc[m.kid[resp]] != 0]
    if len(bad):
        _, first = np.unique(f[bad], return_index=True)
        out[at[bad[first]]] = True
        # (and its first error response to another question than AAAA: dns_error_aaaa_only)
        bad = bad[m.qtype[m.kid[bad]] != dns.TYPE_AAAA]
        if len(bad):
            _, first = np.unique(f[bad], return_index=True)
            out[at[bad[first]]] = True
    # (and its first response to an A and to an AAAA question, its first response holding a
    # name the parser rejected and its first truncated one: dns_asked)
    for to in (resp[m.qtype[m.kid[resp]] == dns.TYPE_A], resp[m.qtype[m.kid[resp]] == dns.TYPE_AAAA],
               resp[m.unreadable[m.kid[resp]]], resp[m.tc[m.kid[resp]]], resp[m.cut[m.kid[resp]]]):
        if len(to):
            _, first = np.unique(f[to], return_index=True)
            out[at[to[first]]] = True
    ans = resp[m.n_res[m.kid[resp]] > 0]
    if len(ans):
        _, need = flow_addresses(f[ans], m.kid[ans], m.addrs)
        out[at[ans[need]]] = True
    return out


def _first_data_packets(ft: FlowTable, flows: np.ndarray) -> dict:
    """(flow, from originator) -> (ts_ns, frame) of the first packet with payload in that
    direction, for the flows ``flows``."""
    if not len(flows):
        return {}
    c = ft.packets.cols
    want = np.zeros(len(ft.flows), bool)
    want[flows] = True
    rows = np.nonzero((ft.pkt_flow >= 0) & (c["payload_len"] > 0))[0]
    rows = rows[want[ft.pkt_flow[rows]]]
    out: dict = {}
    order = np.lexsort((c["frame"][rows], c["ts_ns"][rows]))
    for r in rows[order].tolist():
        out.setdefault((int(ft.pkt_flow[r]), bool(ft.pkt_from_orig[r])), (int(c["ts_ns"][r]), int(c["frame"][r])))
    return out


#: :data:`.dns.RCODE_NAMES` as an object array, indexed by the 4-bit RCODE
_RCODE_TEXT = np.array(dns.RCODE_NAMES, dtype=object)


#: flows whose streams are reassembled and parsed together (bounds the memory of one call)
STREAM_SLICE = 1024
#: the internal ``cut_why`` of a flow by :attr:`.streams.Streams.cut_why`: a segment cut short by
#: the snaplen, a segment not captured before more data, more segments or bytes than inspected
CUT_WHY_TEXT = {CUT_SNAPLEN: "snaplen", CUT_GAP: "gap", CUT_LIMIT: "limit"}


def _deep_look(ft: FlowTable, deep: np.ndarray, flows: pd.DataFrame, cols: dict, service: np.ndarray,
               answers: DnsAnswers, dns_flow: np.ndarray, proto: np.ndarray) -> None:
    """TLS / HTTP / DNS-over-TCP columns of the flows in mask ``deep``, from their streams
    (fills ``cols``, ``service`` and ``answers`` in place)."""
    streams = initial_streams(ft, deep)
    first_ts = flows["ts_ns"].to_numpy()
    if all(hasattr(streams, a) for a in ("flow", "from_orig")):
        # the flows in the order of set(streams.client) | set(streams.server), without
        # building those mappings
        fl, fo = np.asarray(streams.flow, np.int64), np.asarray(streams.from_orig, bool)
        keys = list(set(fl[fo].tolist()) | set(fl[~fo].tolist()))
    else:
        keys = list(set(streams.client) | set(streams.server))
    fidx = np.array(keys, np.int64)
    buf, cst, cen, sst, sen = _stream_ranges(streams, fidx)
    ckind = _kinds(buf, cst, cen)
    skind = _kinds(buf, sst, sen)
    cut = getattr(streams, "cut", None)
    if cut is not None and len(cut):
        cols["payload_cut"][np.asarray(streams.flow, np.int64)[np.asarray(cut, bool)]] = True
    why = getattr(streams, "cut_why", None)
    if why is not None and len(why) and bool(np.any(why)):
        # (per flow, the strongest cause of either direction: streams.CUT_SNAPLEN > CUT_GAP > CUT_LIMIT;
        # and the server's own, for its certificate: review s56 #6)
        at = np.flatnonzero(why)
        code = np.zeros(len(cols["payload_cut"]), np.int8)
        np.maximum.at(code, np.asarray(streams.flow, np.int64)[at], np.asarray(why)[at])
        fo = getattr(streams, "from_orig", None)
        resp = at[~np.asarray(fo, bool)[at]] if fo is not None else at[:0]
        code_resp = np.zeros(len(cols["payload_cut"]), np.int8)
        code_resp[np.asarray(streams.flow, np.int64)[resp]] = np.asarray(why)[resp]
        for k, text in CUT_WHY_TEXT.items():
            cols["cut_why"][np.flatnonzero(code == k)] = text
            cols["cut_why_resp"][np.flatnonzero(code_resp == k)] = text
    # first bytes too few to tell, of a payload cut short: what they may start
    mv = memoryview(buf).cast("B")
    cutf = cols["payload_cut"][fidx].astype(bool)
    for kind, st, en in ((ckind, cst, cen), (skind, sst, sen)):
        for i in np.flatnonzero(cutf & (kind == "other")).tolist():
            kind[i] = _cut_kind(mv[st[i]:en[i]].tobytes())
    # a whole client stream of 1-4 bytes that starts a TLS handshake record's header (a lone 16,
    # 16 03 01…: what a ClientHello starts with): a record never finished, too few bytes to call
    # cleartext (client_proto tls; the bytes in client_binary, which classify quotes: its
    # ``TLS_RECORD_START`` details)
    for i in np.flatnonzero(~cutf & (ckind == "other")).tolist():
        data = mv[cst[i]:cen[i]].tobytes()
        if data[:1] == b"\x16" and tls_record_start(data):
            ckind[i] = "tls"
            cols["client_binary"][fidx[i]] = data.hex(" ")
    # a whole client stream that is a TLS handshake record's header and less than the body it
    # announces (16 03 01 00 54 and nothing more, or a ClientHello cut short by the client, not by
    # the snaplen, nor by the capture: the server acknowledged no byte beyond them, by sequence
    # numbers): client_binary ``tls_record_cut_text`` (the classify details of _record_start)
    # (on whole arrays: the streams of 5 bytes or more whose header says 16 03 and a body longer
    # than the rest; only those few are then written one by one)
    sent = ft.seq_bytes
    tls_c = np.flatnonzero(~cutf & (ckind == "tls"))
    tls_n = (cen[tls_c] - cst[tls_c]).astype(np.int64)
    five = tls_n >= 5
    tls_c, tls_n = tls_c[five], tls_n[five]
    if len(tls_c):
        s0 = cst[tls_c].astype(np.int64)
        b = np.asarray(buf, np.uint8)
        body = b[s0 + 3].astype(np.int64) << 8 | b[s0 + 4]
        hit = (b[s0] == 0x16) & (b[s0 + 1] == 3) & (tls_n < 5 + body)
        if sent is not None:
            hit &= sent[fidx[tls_c], 0] <= tls_n
        for i, n in zip(tls_c[hit].tolist(), tls_n[hit].tolist()):
            cols["client_binary"][fidx[i]] = tls_record_cut_text(mv[cst[i]:cst[i] + min(n, 8)].tobytes(), n)
    # a whole server stream of 1-4 bytes starting a TLS record header (16, 15 03 03…) after a
    # ClientHello: TLS too few bytes to tell, not cleartext (server_proto tls, the bytes in
    # server_binary, which classify then quotes as such)
    for i in np.flatnonzero(~cutf & (skind == "other") & (ckind == "tls")).tolist():
        data = mv[sst[i]:sen[i]].tobytes()
        if tls_record_start(data):
            skind[i] = "tls"
            cols["server_binary"][fidx[i]] = data.hex(" ")
    cols["client_proto"][fidx] = ckind
    cols["server_proto"][fidx] = skind
    # TLS: all flows at once (protocols.tls_batch); DNS over TCP and HTTP flow by flow below
    dns_tcp = dns_flow[fidx] & (proto[fidx] == "tcp")
    is_tls = ((ckind == "tls") | (skind == "tls")) & ~dns_tcp
    pos = np.nonzero(is_tls)[0]
    summary = tls_batch.summarize_at(buf, cst[pos], cen[pos], buf, sst[pos], sen[pos])
    _tls_columns(fidx[pos], summary, cols, service)
    _tls_offers(fidx[pos], summary, mv, cst[pos], cen[pos], cols)
    # a server's first flight that stopped short, as captured, where the handshake did not go on
    # (no alert, a ServerHello, after a HelloRetryRequest too, the server's bytes captured without
    # a hole):
    # what is missing of it (tls.flight_short; kept by inspect_flows only when the client closed
    # first without acknowledging more: _flight_lost)
    rows = fidx[pos]
    short = np.flatnonzero(~np.asarray(summary.established, bool) & np.asarray(summary.server_hello, bool)
                           & (cols["tls_alert"][rows] == "")
                           & ~cols["payload_cut"][rows].astype(bool) & (skind[pos] == "tls"))
    short = short[sent[rows[short], 1] == (sen[pos][short] - sst[pos][short])] if sent is not None else short[:0]
    for i in short.tolist():
        version = int(summary.version[i])
        cols["flight_cut"][rows[i]] = tls.flight_short(mv[sst[pos[i]]:sen[pos[i]]], version if version >= 0 else None)
    # (a handshake cut from view that went on: inspect_flows, with the other cut flows)
    # a ClientHello answered in cleartext HTTP (a web server or captive portal on the port): the
    # status of that answer (1xx skipped)
    for f, s0, s1 in zip(*(x[pos][skind[pos] == "http"].tolist() for x in (fidx, sst, sen))):
        status = http.exchange(b"", mv[s0:s1])[0]
        cols["http_status"][f] = "" if status is None else str(status)
        cols["http_location"][f] = http.response_location(mv[s0:s1]) or ""
    first_data = _first_data_packets(ft, fidx[~is_tls & dns_tcp])
    rest = np.nonzero(~is_tls)[0]
    tunnels: list[tuple[int, ...]] = []
    for i, f, d, c0, c1, s0, s1 in zip(rest.tolist(), fidx[rest].tolist(), dns_tcp[rest].tolist(),
                                       cst[rest].tolist(), cen[rest].tolist(),
                                       sst[rest].tolist(), sen[rest].tolist()):
        cs = mv[c0:c1].tobytes()
        if d:
            ss = mv[s0:s1].tobytes()
            # the responses of both sides: (side's first data time, frame, side, rank in its
            # stream, rcode, addresses)
            got = []
            msgs = [(side, msg) for side, data in ((True, cs), (False, ss)) for msg in dns.parse_tcp_stream(data)]
            # (a response matching no query of the stream by ID and question is no answer the
            # client accepts: stray_responses; a stream without a query read counts them all)
            asked = [(q.id, q.questions[0][0], q.questions[0][1]) for _, q in msgs
                     if not q.is_response and q.questions]
            full = {(t[0], t[1].lower(), t[2]) for t in asked}
            ids = {t[0] for t in asked}
            stray = []
            for side, msg in msgs:
                service[f] = "dns"
                if msg.questions and not cols["query"][f]:
                    cols["query"][f] = msg.questions[0][0]
                if msg.is_response and asked and (
                        (msg.id, msg.questions[0][0].lower(), msg.questions[0][1]) not in full if msg.questions
                        else msg.id not in ids):
                    stray.append((msg.id, msg.questions[0][0], msg.questions[0][1]) if msg.questions
                                 else (msg.id, "", -1))
                    continue
                if msg.is_response:
                    # received with the sender's first data segment (the first message's
                    # time, as the stream is not mapped back to packets message by message)
                    ts, fno = first_data.get((f, side), (int(first_ts[f]), -1))
                    resolved = dns.resolved_names(msg)
                    got.append((ts, fno, side, len(got), msg.rcode,
                                tuple(dict.fromkeys(a for a, _ in resolved))))
                    if msg.questions:
                        cols["dns_asked"][f] |= int(asked_bits(np.array([msg.questions[0][1]]))[0])
                    # (a message framed whole but short of its records is malformed, the cut last one
                    # of a stream is not: its answer records past the bytes there, DNS_CUT; review s54 #4)
                    if msg.bad_names or (msg.partial and not msg.cut):
                        cols["dns_asked"][f] |= DNS_UNREADABLE
                    if msg.cut and msg.ancount > len(msg.answers):
                        cols["dns_asked"][f] |= DNS_CUT
                    answers.add(ts, str(flows.at[f, "orig_h"]), msg, resolved, frame_no=fno)
            if got:
                # in order of arrival: the side that sent its data first (the responder's on a
                # tie: False sorts first), each side's messages in stream order
                got.sort()
                cols["dns_rcode"][f] = flow_rcode(g[4] for g in got)
                folded, _ = flow_addresses(np.zeros(len(got), np.int64), np.arange(len(got)),
                                           [g[5] for g in got])
                cols["dns_answers"][f] = ";".join(folded.get(0, ()))
            if stray:
                cols["dns_mismatch"][f] = dns_mismatch_text(stray, asked)
                cols["dns_unmatched"][f] = dns_mismatch_kind(stray, asked)
            continue
        req = http.parse_request(cs)
        if req is not None:
            service[f] = "http"
            cols["http_host"][f] = req.host or ""
        elif skind[i] == "http":
            service[f] = "http"
        # (a CONNECT, or a request to a proxy in absolute-form: GET http://host/...)
        target = http.proxy_target(req) if req is not None else None
        connect = target is not None and req.method == "CONNECT"
        if skind[i] == "http":
            # (1xx answers skipped; a request asked again after a 407 on the same connection: the
            # answer to the last one, for a CONNECT the answer that opened the tunnel)
            asked: list[str] = []
            status, ch, sh = http.exchange(cs, mv[s0:s1], connect=connect,
                                           proxy=target is not None and not connect, auth=asked)
            cols["http_status"][f] = "" if status is None else str(status)
            if (status == 407 or status == 401 and connect) and asked and asked[-1] \
                    and not asked[-1].endswith(" negotiate"):
                # (the request the proxy refused carried credentials: their scheme and how many
                # requests asked, "NTLM 3"; classify says the proxy refused them, break-it s56 v6 #11;
                # a 401 to a CONNECT is the proxy's login too, tinyproxy's: break-it s57 #8)
                cols["proxy_auth"][f] = f"{asked[-1]} {len(asked)}"
            if status is not None and not 200 <= status < 300:
                cols["http_reason"][f] = http.response_reason(mv[s0:s1], status)
            if status is not None and 300 <= status < 400 and not connect:
                # (where a redirect sends the request: a captive portal's page, classify._foreign_redirect)
                cols["http_location"][f] = http.response_location(mv[s0:s1]) or ""
            if status is not None and 200 <= status < 400 and target is None:
                # (a later request of the same connection refused: a filter allowing one URL of a host
                # and refusing another, classify._later_refusal; "status k target", escaped)
                later = next(((k, code, t) for k, code, t in http.later_answers(cs, mv[s0:s1])
                              if str(code) in http.FILTER_STATUSES), None)
                if later is not None:
                    cols["http_later"][f] = f"{later[1]} {later[0]} {later[2]}"
            if status is not None and 200 <= status < 300 and not connect:
                # (a page where certificate status data was asked for: a filter's block page or a
                # captive portal's, classify._page_answer)
                asked = http.revocation_asked(req) if req is not None else ""
                page = http.page_media_type(mv[s0:s1], status) if asked else ""
                if page:
                    cols["http_page"][f] = f"an HTML page ({page}) where {asked} was asked for"
            if target is not None and ch is not None:
                # the tunnel: the bytes after the last CONNECT head and after the 2xx answer's head
                tunnels.append((f, c0 + ch, c1, s0 + sh, s1, sh))
                cols["tunnel_resp_bytes"][f] = max(int(flows["resp_bytes"].iat[f]) - sh, 0)
        if target is not None:
            cols["proxy_target"][f] = target
    if tunnels:
        _tunnel_columns(ft, buf, np.array(tunnels, np.int64), cols, service)


def _tunnel_close(ft: FlowTable, flows: np.ndarray, head: np.ndarray) -> np.ndarray:
    """Per flow row of ``flows`` (int array, distinct; TCP flows whose CONNECT was answered 2xx):
    seconds (float) from the proxy's answer, the first sending of the server data segment that
    reached the end of its head (``head``: int array, bytes from the start of the server's
    stream, 1xx answers included), to the proxy's own first FIN or RST (the responder's,
    :func:`_first_close`, whether or not the client closed before it); -1 where the segment is
    not among the packets or the proxy closed nothing at or after it.

    By sequence numbers (:func:`.flows.seq_extents`), so a head split over several segments
    counts from its last one. Reads the server's first data segments and the first FIN or RST of
    each direction: what a chunked or live analysis keeps of a flow (all readings agree)."""
    out = np.full(len(flows), -1.0)
    v = _seq_view(ft, flows) if len(flows) else None
    if v is None:
        return out
    pos = np.full(len(ft.flows) + 1, -1, np.int64)
    pos[flows] = np.arange(len(flows))
    at = pos[v.f]
    big = np.iinfo(np.int64).max
    reach = ~v.fo & (v.plen > 0) & (v.end >= np.asarray(head, np.int64)[at])
    opened = np.full(len(flows), big, np.int64)
    np.minimum.at(opened, at[reach], v.ts[reach])
    _, when = _first_close(ft, np.asarray(flows, np.int64), server_only=True)
    ok = (opened < big) & (when >= opened)
    out[ok] = (when[ok] - opened[ok]) / 1e9
    return out


def _tunnel_columns(ft: FlowTable, buf: np.ndarray, tunnels: np.ndarray, cols: dict[str, np.ndarray],
                    service: np.ndarray) -> None:
    """The columns of flows that opened a CONNECT tunnel (answered 2xx), from the bytes inside it,
    in place: ``client_proto``/``server_proto`` of those bytes (and the internal
    ``tunnel_http_status``: the status of an HTTP answer in the tunnel; ``tunnel_close_s``: how
    soon after its 2xx answer the proxy closed or reset the connection, :func:`_tunnel_close`)
    and, when they are TLS, the TLS columns as for a direct connection (``service`` becomes ``http,ssl`` when a ClientHello is in
    the tunnel; a handshake whose end is cut from view is judged by :func:`_went_on` from the
    server's first segment past its answer head).

    :param buf: uint8 array, the streams' bytes.
    :param tunnels: int64 array (k, 6): flow row, client tunnel start, client stream end, server
        tunnel start, server stream end (offsets into ``buf``), length of the server's answer
        head (bytes)."""
    f, c0, c1, s0, s1, skip = tunnels.T
    cols["tunnel_close_s"][f] = _tunnel_close(ft, f, skip)
    ck, sk = _kinds(buf, c0, c1), _kinds(buf, s0, s1)
    cols["client_proto"][f] = ck
    cols["server_proto"][f] = sk
    # (the client's cleartext in the tunnel, where a ClientHello would be: quoted by classify as
    # a direct connection's client_head is)
    for row, start, stop in zip(*(x[(ck == "http") | (ck == "other")].tolist() for x in (f, c0, c1))):
        cols["client_head"][row], cols["client_binary"][row] = _quoted(
            bytes(buf[start:min(stop, start + HEAD_BYTES)]), stop - start > HEAD_BYTES)
    for row, start, stop in zip(*(x[sk == "http"].tolist() for x in (f, s0, s1))):
        status = http.exchange(b"", buf[start:stop].tobytes())[0]
        cols["tunnel_http_status"][row] = "" if status is None else str(status)
        cols["http_location"][row] = http.response_location(buf[start:stop].tobytes()) or ""
    tl = np.flatnonzero((ck == "tls") | (sk == "tls"))
    if not len(tl):
        return
    rows = f[tl]
    summary = tls_batch.summarize_at(buf, c0[tl], c1[tl], buf, s0[tl], s1[tl])
    _tls_columns(rows, summary, cols, service)
    _tls_offers(rows, summary, buf, c0[tl], c1[tl], cols)
    hello = rows[service[rows] == "ssl"]
    service[hello] = "http,ssl"
    unseen = cols["payload_cut"][rows].astype(bool) & ~cols["tls_established"][rows].astype(bool)
    if unseen.any():
        went = _went_on(ft, rows[unseen], skip[tl][unseen])
        cols["tls_established"][rows[unseen][went]] = True
